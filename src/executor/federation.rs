//! The `federate` strategy's steps on the new broker, after RabbitMQ's blue-green guide:
//! declaring the upstreams and policies before the first wave and checking that every link
//! runs; after the last wave, waiting until the old queues are empty (finishing a stalled one
//! with a shovel), then removing what was declared. Rollback removes it too: a queue's policy
//! before that queue drains on the new broker, the upstreams once every service is back.

use std::time::{Instant, SystemTime};

use super::{Report, Run, Schedule};
use crate::backend::broker::federation::POLICY_PREFIX;
use crate::backend::broker::Definition;
use crate::error::Result;
use crate::journal::{Declared, DeclaredKind, Entry, Outcome, Step};
use crate::model::{LinkKind, Policy};
use crate::plan::{Drain, Federation};

/// The queue a federation policy of warren's federates (its name is the policy's, less the
/// prefix).
fn queue_of(policy: &Policy) -> &str {
    policy
        .name
        .strip_prefix(POLICY_PREFIX)
        .unwrap_or(&policy.name)
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
            let detail = format!("{declared} -> the old broker (URL from ${})", upstream.url_env);
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
                run.backend
                    .broker(&run.brokers.new)?
                    .create(&definition)
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
    /// broker is empty, then removes the policies and the upstreams. Returns why the run
    /// stops, if it does (what was declared then stays, so the moved consumers keep receiving
    /// what is left on the old broker).
    pub(super) fn finish_federation(
        &mut self,
        schedule: &Schedule,
        federation: &Federation,
        report: &mut Report,
    ) -> Result<Option<String>> {
        for drain in schedule.drains.iter().filter(|d| d.wave.is_none()) {
            let policy = federation
                .policies
                .iter()
                .find(|p| p.vhost == drain.vhost && queue_of(p) == drain.queue);
            let stopped = match policy {
                Some(policy) => self.wait_federated(drain, &declared_policy(policy), report)?,
                None => self.wait_drained(drain)?,
            };
            if stopped.is_some() {
                return Ok(stopped);
            }
        }
        for policy in &federation.policies {
            self.remove(
                &declared_policy(policy),
                Some(queue_of(policy)),
                "its queue on the old broker is empty",
            )?;
        }
        for upstream in &federation.upstreams {
            let declared = Declared {
                kind: DeclaredKind::Upstream,
                vhost: upstream.vhost.clone(),
                name: upstream.name.clone(),
            };
            self.remove(&declared, None, "every federated queue is empty")?;
        }
        Ok(None)
    }

    /// Waits until `drain`'s queue on the old broker is empty while federation pulls it to
    /// the new broker. A federated queue pulls only while its consumers keep it empty on the
    /// new broker, so once every publisher has moved and the consumers cannot keep up, the
    /// old queue stops shrinking: after [`super::Options::stall`] without shrinking, warren
    /// removes the queue's policy and shovels what is left instead. Returns why it stopped
    /// waiting, if it did.
    fn wait_federated(
        &mut self,
        drain: &Drain,
        policy: &Declared,
        report: &mut Report,
    ) -> Result<Option<String>> {
        let broker = self.brokers.get(drain.broker);
        let start = SystemTime::now();
        let began = Instant::now();
        let entry = |result, messages: Option<u64>| {
            let mut e = Entry::new(self.migration, Step::Drain, start, result);
            e.queue = Some(drain.queue.clone());
            e.messages = messages;
            e
        };
        let mut first = None;
        let mut lowest = u64::MAX;
        let mut since = Instant::now();
        let mut shovelled = false;
        loop {
            let Some(depth) = self
                .backend
                .broker(broker)?
                .depth(&drain.vhost, &drain.queue)?
            else {
                self.progress.done_waiting();
                self.journal
                    .append(&entry(Outcome::Ok, None).detail(format!(
                        "no queue {} on the {} broker",
                        drain.queue, drain.broker
                    )))?;
                return Ok(None);
            };
            let messages = *first.get_or_insert(depth.total());
            if depth.drained() {
                self.progress.done_waiting();
                self.journal.append(&entry(Outcome::Ok, Some(messages)))?;
                if messages > 0 {
                    self.progress.line(&format!(
                        "  {} on the {} broker is empty ({messages} messages federated{})",
                        drain.queue,
                        drain.broker,
                        if shovelled { " or shovelled" } else { "" }
                    ));
                }
                return Ok(None);
            }
            if depth.total() < lowest {
                lowest = depth.total();
                since = Instant::now();
            } else if !shovelled && since.elapsed() >= self.options.stall {
                self.progress.done_waiting();
                self.progress.line(&format!(
                    "  {} on the {} broker stopped shrinking at {} for {}s (a federated queue pulls only while the new queue is empty): shovelling the rest",
                    drain.queue,
                    drain.broker,
                    super::brokers::held(depth),
                    self.options.stall.as_secs()
                ));
                self.remove(
                    policy,
                    Some(&drain.queue),
                    &format!(
                        "{} stalled at {} on the old broker; a shovel moves the rest",
                        drain.queue,
                        super::brokers::held(depth)
                    ),
                )?;
                self.link_gone(drain)?;
                if let Some(why) = self.shovel(drain, report)? {
                    return Ok(Some(why));
                }
                shovelled = true;
                continue;
            }
            if began.elapsed() >= self.options.drain_timeout {
                self.progress.done_waiting();
                let why = format!(
                    "queue {} on the {} broker {} still holds {} after {}s (drain timeout); the federation stays declared so the moved consumers keep receiving it: apply again to go on waiting",
                    drain.queue,
                    drain.broker,
                    broker.id,
                    super::brokers::held(depth),
                    self.options.drain_timeout.as_secs()
                );
                self.journal
                    .append(&entry(Outcome::Failed, Some(depth.total())).detail(why.clone()))?;
                return Ok(Some(why));
            }
            self.progress.waiting(&format!(
                "waiting for {} on the {} broker to empty through federation: {}",
                drain.queue,
                drain.broker,
                super::brokers::held(depth)
            ));
            std::thread::sleep(self.backend.poll_interval());
        }
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
