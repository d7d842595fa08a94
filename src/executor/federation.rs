//! The `federate` strategy's steps on the new broker, after RabbitMQ's blue-green guide:
//! declaring the upstreams and policies before the first wave and checking that every link
//! runs; after the last wave, waiting until the old queues are empty (finishing a stalled one
//! with a shovel), then removing what was declared. Rollback removes it too: a queue's policy
//! before that queue drains on the new broker, the upstreams once every service is back.

use std::time::{Instant, SystemTime};

use super::brokers::{held, Waited};
use super::{Report, Run, Schedule};
use crate::backend::broker::Definition;
use crate::error::Result;
use crate::journal::{Declared, DeclaredKind, Entry, Outcome, Step};
use crate::model::{LinkKind, Policy};
use crate::plan::{Drain, Federation};

/// The queue a federation policy of warren's federates.
fn queue_of(policy: &Policy) -> &str {
    crate::backend::broker::federation::federated_queue(policy).unwrap_or(&policy.name)
}

/// What `policy` is, as the journal names it.
fn declared_policy(policy: &Policy) -> Declared {
    Declared {
        kind: DeclaredKind::Policy,
        vhost: policy.vhost.clone(),
        name: policy.name.clone(),
    }
}

/// What apply declared for federation and nothing has removed since, per the journal
/// `entries`, with the queue each policy federates: a declaration whose call failed or whose
/// end was not recorded may have been made all the same, and so may a removal that failed.
#[must_use]
pub fn declared_by_apply(entries: &[Entry]) -> Vec<(Declared, Option<String>)> {
    let mut standing: std::collections::BTreeMap<Declared, Option<String>> =
        std::collections::BTreeMap::new();
    for e in entries.iter().filter(|e| e.step == Step::Federation) {
        if let Some(d) = &e.declared {
            standing.insert(d.clone(), e.queue.clone());
        }
        if let Some(d) = &e.removed {
            if e.result == Outcome::Ok {
                standing.remove(d);
            }
        }
    }
    standing.into_iter().collect()
}

impl Run<'_> {
    /// Declares `federation` on the new broker (the upstreams, then the policies), each a
    /// `federation` step journalled as started before it is made, then waits until every
    /// federated queue's link is `running`. Returns why the run stops before the first wave, if
    /// it does.
    pub(super) fn declare(&mut self, federation: &Federation) -> Result<Option<String>> {
        self.progress.line(&format!(
            "Federating {} queue{} from the old broker",
            federation.policies.len(),
            if federation.policies.len() == 1 {
                ""
            } else {
                "s"
            }
        ));
        for upstream in &federation.upstreams {
            let declared = Declared {
                kind: DeclaredKind::Upstream,
                vhost: upstream.vhost.clone(),
                name: upstream.name.clone(),
            };
            let detail = format!(
                "{declared} -> the old broker (URL from ${})",
                upstream.url_env
            );
            let brokers = self.brokers;
            self.declaring(&declared, None, &detail, |run| {
                run.backend
                    .broker(&brokers.new)?
                    .create_upstream(upstream, &brokers.old)
            })?;
        }
        for policy in &federation.policies {
            let declared = declared_policy(policy);
            let detail = format!(
                "{declared} (pattern {}, priority {})",
                policy.pattern, policy.priority
            );
            let definition = Definition::Policy(policy.clone());
            self.declaring(&declared, Some(queue_of(policy)), &detail, |run| {
                run.backend.broker(&run.brokers.new)?.create(&definition)
            })?;
        }
        self.links_running(federation)
    }

    /// Makes one declaration through `make`, journalled before and after.
    fn declaring(
        &mut self,
        declared: &Declared,
        queue: Option<&str>,
        detail: &str,
        make: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()> {
        let start = SystemTime::now();
        let entry = |result| {
            let mut e = Entry::new(self.migration, Step::Federation, start, result).detail(detail);
            e.declared = Some(declared.clone());
            e.queue = queue.map(str::to_owned);
            e
        };
        self.journal.append(&entry(Outcome::Started))?;
        if let Err(e) = make(self) {
            self.journal
                .append(&entry(Outcome::Failed).detail(format!("{detail}: {e}")))?;
            return Err(e);
        }
        self.journal.append(&entry(Outcome::Ok))?;
        self.progress.line(&format!("  + {detail}"));
        Ok(())
    }

    /// Waits up to [`super::Options::link_check`] until the new broker shows a `running`
    /// federation link for every queue `federation` federates.
    fn links_running(&mut self, federation: &Federation) -> Result<Option<String>> {
        let start = SystemTime::now();
        let began = Instant::now();
        loop {
            let links = self.backend.broker(&self.brokers.new)?.links()?;
            let not_running: Vec<String> = federation
                .policies
                .iter()
                .filter_map(|policy| {
                    let queue = queue_of(policy);
                    let upstream = policy
                        .definition
                        .get("federation-upstream")
                        .and_then(serde_json::Value::as_str);
                    let link = links.iter().find(|l| {
                        l.kind == LinkKind::Federation
                            && l.vhost == policy.vhost
                            && l.queue.as_deref() == Some(queue)
                            && Some(l.name.as_str()) == upstream
                    });
                    match link {
                        Some(l) if l.state == "running" => None,
                        Some(l) => Some(format!("{queue} ({})", l.state)),
                        None => Some(format!("{queue} (no link)")),
                    }
                })
                .collect();
            if not_running.is_empty() {
                self.progress.done_waiting();
                self.journal.append(
                    &Entry::new(self.migration, Step::Federation, start, Outcome::Ok).detail(
                        format!(
                            "{} federation link{} running",
                            federation.policies.len(),
                            if federation.policies.len() == 1 {
                                ""
                            } else {
                                "s"
                            }
                        ),
                    ),
                )?;
                return Ok(None);
            }
            if began.elapsed() >= self.options.link_check {
                self.progress.done_waiting();
                let why = format!(
                    "the federation links of {} are not running on the new broker after {}s; no service was moved (the upstreams and policies stay declared: `warren rollback` removes them, or fix the link and apply again)",
                    not_running.join(", "),
                    self.options.link_check.as_secs()
                );
                self.journal.append(
                    &Entry::new(self.migration, Step::Federation, start, Outcome::Failed)
                        .detail(why.clone()),
                )?;
                return Ok(Some(why));
            }
            self.progress.waiting(&format!(
                "waiting for {} federation link{} to run: {}",
                not_running.len(),
                if not_running.len() == 1 { "" } else { "s" },
                not_running.join(", ")
            ));
            std::thread::sleep(self.backend.poll_interval());
        }
    }

    /// Removes `declared` from the new broker, journalled before and after; `why` goes into
    /// the journal.
    fn remove(&mut self, declared: &Declared, queue: Option<&str>, why: &str) -> Result<()> {
        let start = SystemTime::now();
        let entry = |result| {
            let mut e = Entry::new(self.migration, Step::Federation, start, result)
                .detail(format!("{declared} removed: {why}"));
            e.removed = Some(declared.clone());
            e.queue = queue.map(str::to_owned);
            e
        };
        self.journal.append(&entry(Outcome::Started))?;
        let mut broker = self.backend.broker(&self.brokers.new)?;
        let result = match declared.kind {
            DeclaredKind::Upstream => broker.remove_upstream(&declared.vhost, &declared.name),
            DeclaredKind::Policy => broker.remove_policy(&declared.vhost, &declared.name),
        };
        drop(broker);
        if let Err(e) = result {
            self.journal
                .append(&entry(Outcome::Failed).detail(format!("{declared}: {e}")))?;
            return Err(e);
        }
        self.journal.append(&entry(Outcome::Ok))?;
        self.progress.line(&format!("  - {declared}"));
        Ok(())
    }

    /// After the last wave of a `federate` apply: waits until each federated queue on the old
    /// broker is empty (those of the plan's `federation`, and those an earlier run declared
    /// and did not remove), then removes the policies and the upstreams. Returns why the run
    /// stops, if it does (what was declared then stays, so the moved consumers keep receiving
    /// what is left on the old broker).
    pub(super) fn finish_federation(
        &mut self,
        schedule: &Schedule,
        report: &mut Report,
    ) -> Result<Option<String>> {
        let mut policies: Vec<(Declared, String)> = Vec::new();
        let mut upstreams: Vec<Declared> = Vec::new();
        if let Some(federation) = &schedule.federation {
            for policy in &federation.policies {
                policies.push((declared_policy(policy), queue_of(policy).to_owned()));
            }
            for upstream in &federation.upstreams {
                upstreams.push(Declared {
                    kind: DeclaredKind::Upstream,
                    vhost: upstream.vhost.clone(),
                    name: upstream.name.clone(),
                });
            }
        }
        for (declared, queue) in &schedule.undeclare {
            match (declared.kind, queue) {
                (DeclaredKind::Policy, Some(queue)) => {
                    if !policies.iter().any(|(d, _)| d == declared) {
                        policies.push((declared.clone(), queue.clone()));
                    }
                }
                _ => {
                    if !upstreams.contains(declared) {
                        upstreams.push(declared.clone());
                    }
                }
            }
        }
        // The policies a stalled queue's shovel already removed.
        let mut unfederated: Vec<Declared> = Vec::new();
        for drain in schedule.drains.iter().filter(|d| d.wave.is_none()) {
            let policy = policies
                .iter()
                .find(|(d, queue)| d.vhost == drain.vhost && *queue == drain.queue);
            match policy {
                Some((declared, _)) => {
                    let declared = declared.clone();
                    match self.wait_emptied(drain, (&declared, report))? {
                        Waited::Emptied => {}
                        Waited::Unfederated => unfederated.push(declared),
                        Waited::Stopped(why) => return Ok(Some(why)),
                    }
                }
                None => {
                    if let Some(why) = self.wait_drained(&[drain])? {
                        return Ok(Some(why));
                    }
                }
            }
        }
        for (declared, queue) in &policies {
            let drained = schedule
                .drains
                .iter()
                .any(|d| d.wave.is_none() && d.vhost == declared.vhost && d.queue == *queue);
            if drained {
                continue;
            }
            let drain = Drain {
                wave: None,
                broker: crate::config::BrokerAlias::Old,
                vhost: declared.vhost.clone(),
                queue: queue.clone(),
            };
            match self.wait_emptied(&drain, (declared, report))? {
                Waited::Emptied => {}
                Waited::Unfederated => unfederated.push(declared.clone()),
                Waited::Stopped(why) => return Ok(Some(why)),
            }
        }
        for (declared, queue) in policies.iter().filter(|(d, _)| !unfederated.contains(d)) {
            self.remove(
                declared,
                Some(queue),
                "its queue on the old broker is empty",
            )?;
        }
        for declared in &upstreams {
            self.remove(declared, None, "every federated queue is empty")?;
        }
        Ok(None)
    }

    /// A federated queue on the old broker that stopped shrinking (`depth`): a federated
    /// queue pulls only while its consumers keep it empty on the new broker, so once every
    /// publisher has moved and the consumers cannot keep up, the old queue stops shrinking.
    /// Removes the queue's `policy`, waits for its link to go, and shovels what is left
    /// instead. Returns why the run stops, if it does.
    pub(super) fn unfederate_stalled(
        &mut self,
        drain: &Drain,
        policy: &Declared,
        depth: crate::backend::broker::Depth,
        report: &mut Report,
    ) -> Result<Option<String>> {
        self.progress.done_waiting();
        self.progress.line(&format!(
            "  {} on the {} broker stopped shrinking at {} for {}s (a federated queue pulls only while the new queue is empty): shovelling the rest",
            drain.queue,
            drain.broker,
            held(depth),
            self.options.stall.as_secs()
        ));
        self.remove(
            policy,
            Some(&drain.queue),
            &format!(
                "{} stalled at {} on the old broker; a shovel moves the rest",
                drain.queue,
                held(depth)
            ),
        )?;
        self.link_gone(drain)?;
        self.shovel(drain, report)
    }

    /// Waits up to [`super::Options::link_check`] until the queue of `drain` has no consumer
    /// left on its broker once its federation policy is gone (the link was one), so that the
    /// shovel's count is its own.
    fn link_gone(&mut self, drain: &Drain) -> Result<()> {
        let began = Instant::now();
        let broker = self.brokers.get(drain.broker);
        while began.elapsed() < self.options.link_check {
            let depth = self
                .backend
                .broker(broker)?
                .depth(&drain.vhost, &drain.queue)?;
            if depth.is_none_or(|d| d.consumers == 0) {
                break;
            }
            std::thread::sleep(self.backend.poll_interval());
        }
        Ok(())
    }

    /// On rollback, before wave `number`'s drains: removes the federation policy of each
    /// queue that drains on the new broker in that wave, so that nothing more comes in
    /// from the old broker while it drains.
    pub(super) fn unfederate_wave(&mut self, schedule: &Schedule, number: usize) -> Result<()> {
        for drain in schedule.drains.iter().filter(|d| d.wave == Some(number)) {
            for (declared, queue) in &schedule.undeclare {
                if declared.kind == DeclaredKind::Policy
                    && declared.vhost == drain.vhost
                    && queue.as_deref() == Some(drain.queue.as_str())
                {
                    self.remove(
                        declared,
                        queue.as_deref(),
                        "rollback: its consumers go back to the old broker",
                    )?;
                }
            }
        }
        Ok(())
    }

    /// On rollback, after the last wave: removes whatever of apply's federation is still
    /// declared (the policies no wave's drain removed, then the upstreams).
    pub(super) fn unfederate_rest(&mut self, schedule: &Schedule) -> Result<()> {
        let removed_in_a_wave = |declared: &Declared, queue: &Option<String>| {
            declared.kind == DeclaredKind::Policy
                && schedule.drains.iter().any(|d| {
                    d.wave.is_some()
                        && d.vhost == declared.vhost
                        && queue.as_deref() == Some(d.queue.as_str())
                })
        };
        let mut rest: Vec<&(Declared, Option<String>)> = schedule
            .undeclare
            .iter()
            .filter(|(d, q)| !removed_in_a_wave(d, q))
            .collect();
        rest.sort_by_key(|(d, _)| d.kind == DeclaredKind::Upstream);
        for (declared, queue) in rest {
            self.remove(declared, queue.as_deref(), "rollback")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::memory::chain::{self, Start, MOVING};
    use crate::backend::memory::MemoryBackend;
    use crate::journal::{DeclaredKind, Entry, Journal, Outcome, Step};
    use std::time::Duration;

    /// Limits under which the link check and the stall wait give up at once.
    fn no_waiting() -> super::super::Options {
        super::super::Options {
            drain_timeout: Duration::from_secs(3600),
            rollout_timeout: Duration::from_secs(3600),
            wave_check: None,
            link_check: Duration::ZERO,
            stall: Duration::ZERO,
        }
    }

    fn entries(journal: &str) -> Vec<Entry> {
        journal
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// What the new broker of `backend` holds of warren's federation: its policies' names and
    /// its upstreams' names.
    fn federation_left(backend: &MemoryBackend) -> (Vec<String>, Vec<String>) {
        let new = &backend.world().brokers[1];
        (
            new.policies.iter().map(|p| p.name.clone()).collect(),
            new.upstreams.iter().map(|u| u.name.clone()).collect(),
        )
    }

    #[test]
    fn a_federate_apply_declares_checks_moves_consumers_first_and_removes_what_it_declared() {
        let end = Start::fresh().after(chain::apply_federated);
        let placement = chain::placement(end.backend.world());
        for name in MOVING {
            assert_eq!(placement[&format!("c/{name}")], format!("{name}:2"));
        }
        let entries = entries(&end.journal);
        let first_update = entries.iter().position(|e| e.step == Step::Update).unwrap();
        let declared: Vec<String> = entries[..first_update]
            .iter()
            .filter(|e| e.step == Step::Federation && e.result == Outcome::Ok)
            .filter_map(|e| e.declared.as_ref().map(ToString::to_string))
            .collect();
        assert_eq!(
            declared,
            [
                "upstream warren-chain",
                "policy warren-federate-q1",
                "policy warren-federate-q2"
            ],
            "declared before any service moves"
        );
        assert!(
            entries[..first_update]
                .iter()
                .any(|e| e.step == Step::Federation
                    && e.result == Outcome::Ok
                    && e.detail.as_deref() == Some("2 federation links running")),
            "the links are checked before the first wave"
        );
        let waves: Vec<(usize, String)> = entries
            .iter()
            .filter(|e| e.step == Step::Update && e.result == Outcome::Ok)
            .map(|e| (e.wave.unwrap(), e.service.clone().unwrap()))
            .collect();
        assert_eq!(waves[0].0, 1);
        assert!(
            waves
                .iter()
                .filter(|(_, s)| s.starts_with('s'))
                .all(|(w, _)| *w == 1),
            "consumers of q2 first: {waves:?}"
        );
        assert!(
            waves
                .iter()
                .filter(|(_, s)| s.starts_with('p'))
                .all(|(w, _)| *w == 3),
            "publishers last: {waves:?}"
        );
        let last_update = entries
            .iter()
            .rposition(|e| e.step == Step::Update)
            .unwrap();
        let removed: Vec<String> = entries[last_update..]
            .iter()
            .filter(|e| e.step == Step::Federation && e.result == Outcome::Ok)
            .filter_map(|e| e.removed.as_ref().map(ToString::to_string))
            .collect();
        assert_eq!(
            removed,
            [
                "policy warren-federate-q1",
                "policy warren-federate-q2",
                "upstream warren-chain"
            ],
            "removed after the last wave, policies first"
        );
        let drains = entries[last_update..]
            .iter()
            .filter(|e| e.step == Step::Drain && e.result == Outcome::Ok)
            .count();
        assert_eq!(drains, 2, "q1 and q2 emptied on the old broker at the end");
        assert_eq!(
            federation_left(&end.backend),
            (vec![], vec![]),
            "nothing of warren's is left on the new broker"
        );
        for queue in end.backend.world().brokers[0].queues.as_ref().unwrap() {
            assert_eq!(
                queue.messages, 0,
                "{} emptied on the old broker",
                queue.name
            );
        }
    }

    /// A federated queue whose old copy stops shrinking (here: nothing consumes the new copy,
    /// so federation never pulls) is finished with a shovel once the stall timeout passes.
    #[test]
    fn an_old_queue_that_stops_shrinking_is_shovelled_after_its_policy_is_removed() {
        let mut world = chain::world();
        for broker in &mut world.brokers {
            for q in broker.queues.as_mut().unwrap() {
                q.consumers = 0;
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(&dir.path().join("j.jsonl"));
        let mut backend = MemoryBackend::new(world);
        let options = no_waiting();
        let report =
            chain::apply_config(&chain::federate_config(), &mut backend, &journal, options)
                .unwrap();
        assert!(report.succeeded(), "{report:?}");
        let shovelled: Vec<(&str, u64)> = report
            .shovelled
            .iter()
            .map(|s| (s.queue.as_str(), s.messages))
            .collect();
        assert_eq!(shovelled, [("q1", 4), ("q2", 3)]);
        let old = backend.world().brokers[0].queues.clone().unwrap();
        let new = backend.world().brokers[1].queues.clone().unwrap();
        assert!(old.iter().all(|q| q.messages == 0), "{old:?}");
        let total: u64 = new.iter().map(|q| q.messages).sum();
        assert_eq!(total, 2 + 5 + 4 + 3, "every message is on the new broker");
        let entries = journal.entries("chain").unwrap().list;
        let stalled = entries
            .iter()
            .filter(|e| {
                e.step == Step::Federation
                    && e.result == Outcome::Ok
                    && e.removed.is_some()
                    && e.detail.as_deref().is_some_and(|d| d.contains("stalled"))
            })
            .count();
        assert_eq!(stalled, 2, "each queue's policy removed before its shovel");
        let removed: Vec<String> = entries
            .iter()
            .filter(|e| e.step == Step::Federation && e.result == Outcome::Ok)
            .filter_map(|e| e.removed.as_ref().map(ToString::to_string))
            .collect();
        assert_eq!(
            removed,
            [
                "policy warren-federate-q1",
                "policy warren-federate-q2",
                "upstream warren-chain"
            ],
            "each policy removed once, when its queue stalled"
        );
        assert_eq!(federation_left(&backend), (vec![], vec![]));
    }

    /// Links that do not run stop apply before the first wave; what was declared stays for
    /// rollback, which removes it.
    #[test]
    fn links_that_do_not_run_stop_apply_before_any_move_and_rollback_removes_the_declarations() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(&dir.path().join("j.jsonl"));
        let mut backend = MemoryBackend::new(chain::world());
        let options = no_waiting();
        // The policies name an upstream that is never declared: no link runs.
        let config = chain::federate_config();
        let world =
            crate::backend::Backend::read(&mut backend, &crate::backend::ReadScope::default())
                .unwrap();
        let plan = crate::plan::make(&config, &world).unwrap();
        let (mut schedule, _) = crate::executor::schedule(&plan, &world).unwrap();
        schedule.federation.as_mut().unwrap().upstreams.clear();
        let stopped = crate::executor::execute(
            &schedule,
            &plan.brokers,
            &mut backend,
            &journal,
            options,
            &mut crate::progress::Progress::quiet(),
        )
        .unwrap();
        let why = stopped.stopped.as_deref().unwrap_or_default();
        assert!(
            why.contains("the federation links of q1 (no link), q2 (no link) are not running")
                && why.contains("no service was moved"),
            "{why}"
        );
        assert_eq!(stopped.not_started.len(), MOVING.len());
        assert!(stopped.moved.is_empty());
        let (policies, _) = federation_left(&backend);
        assert_eq!(policies, ["warren-federate-q1", "warren-federate-q2"]);

        let back = chain::rollback_federated(&mut backend, &journal).unwrap();
        assert!(back.succeeded(), "{back:?}");
        assert_eq!(federation_left(&backend), (vec![], vec![]));
        let removed: Vec<DeclaredKind> = journal
            .entries("chain")
            .unwrap()
            .list
            .iter()
            .filter(|e| e.result == Outcome::Ok)
            .filter_map(|e| e.removed.as_ref().map(|d| d.kind))
            .collect();
        assert_eq!(removed, [DeclaredKind::Policy, DeclaredKind::Policy]);
    }

    /// Rollback of a finished federate apply: publishers back first; a queue's consumers go
    /// back once it drained on the new broker; nothing of the federation is left (apply
    /// removed it already, so rollback removes nothing).
    #[test]
    fn rollback_after_a_federate_apply_puts_publishers_back_first_and_declares_nothing() {
        let end = Start::fresh()
            .after(chain::apply_federated)
            .after(chain::rollback_federated);
        for name in MOVING {
            assert_eq!(
                chain::placement(end.backend.world())[&format!("c/{name}")],
                format!("{name}:1")
            );
        }
        let entries = entries(&end.journal);
        let back: Vec<(usize, String)> = entries
            .iter()
            .filter(|e| e.step == Step::Rollback && e.result == Outcome::Ok)
            .map(|e| (e.wave.unwrap(), e.service.clone().unwrap()))
            .collect();
        assert!(
            back.iter()
                .filter(|(_, s)| s.starts_with('p'))
                .all(|(w, _)| *w == 1),
            "publishers back first: {back:?}"
        );
        let removals_in_rollback = entries
            .iter()
            .skip_while(|e| e.step != Step::Rollback)
            .filter(|e| e.step == Step::Federation)
            .count();
        assert_eq!(removals_in_rollback, 0);
        assert_eq!(federation_left(&end.backend), (vec![], vec![]));
    }

    /// Every kind of fault at every backend call of a federate apply; each re-run converges to
    /// the end of an uninterrupted apply (the federation removed), and a rollback after it to
    /// the end of an uninterrupted rollback.
    #[test]
    fn a_fault_at_any_call_of_a_federate_apply_is_repaired_by_a_rerun() {
        let sweep = chain::sweep(
            &Start::fresh(),
            chain::apply_federated,
            Some(chain::rollback_federated),
        );
        sweep.assert_converged("federate apply");
    }
}
