//! The steps of a run that look at or change the brokers themselves: preparing the new broker
//! and the gate before a wave, the drain wait, the check after a wave, and the shovel that
//! moves leftovers.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use super::{Move, Report, Run, Schedule, Shovelled};
use crate::backend::broker::{topology, Definition, Depth, Shovel};
use crate::config::BrokerAlias;
use crate::error::Result;
use crate::journal::{Declared, Entry, Outcome, Step};
use crate::model::{Broker, World};
use crate::plan::{Action, Drain, Plan};

/// What the check after a wave expects of one service it moved: that it consumes again, on
/// the broker it moved to, the queues it consumed on the broker it left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub wave: usize,
    /// `cluster/service`.
    pub service: String,
    /// The broker it moved to.
    pub broker: BrokerAlias,
    /// `(vhost, queue)`: the queues it consumes that had consumers where it came from.
    pub queues: Vec<(String, String)>,
}

/// How long the check after a wave looks for a moved publisher's connection before it warns.
const PUBLISHER_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether warren can see the consumers of `broker`'s queues: the world simulates it, or the
/// plan gives its management URL in a variable that is set.
pub(super) fn can_check(broker: &crate::discovery::ResolvedBroker, world: &World) -> bool {
    let simulated = broker
        .index_in(world)
        .is_some_and(|i| world.brokers[i].queues.is_some() && !world.brokers[i].observed);
    simulated
        || broker
            .management_url_env
            .as_ref()
            .is_some_and(|var| crate::backend::broker::url_in(var).is_some())
}

/// The changes a run moves (`waves`) whose broker after the move warren can look at (see
/// [`can_check`]).
fn checkable<'p>(
    plan: &'p Plan,
    world: &'p World,
    waves: &[Vec<Move>],
) -> impl Iterator<Item = &'p crate::plan::Change> {
    let moving: std::collections::HashSet<String> = waves.iter().flatten().map(Move::id).collect();
    plan.changes
        .iter()
        .filter(move |c| c.action == Action::Update && moving.contains(&c.id()))
        .filter(move |c| can_check(plan.brokers.get(c.to), world))
}

/// The publishers each wave moves, as `(wave, cluster/service, the broker it moves to)`: the
/// check after their wave warns when one has no connection there yet. As for consumers, a
/// world file that names no connection of the publisher where it comes from says nothing
/// about whether it connects.
pub(super) fn publishers_of(
    plan: &Plan,
    world: &World,
    waves: &[Vec<Move>],
) -> Vec<(usize, String, BrokerAlias)> {
    checkable(plan, world, waves)
        .filter(|c| !c.publishes.is_empty())
        .filter(|c| {
            plan.brokers
                .get(c.to.other())
                .in_world(world)
                .is_some_and(|source| {
                    source.observed
                        || source.connections.iter().any(|k| {
                            crate::clients::names_service(&k.client, &c.cluster, &c.service)
                        })
                })
        })
        .filter_map(|c| Some((c.wave?, c.id(), c.to)))
        .collect()
}

/// The checks after each wave: every service a wave moves that consumes, on the broker it
/// leaves, a queue with consumers (per `world`, read before the run) must consume it on the
/// broker it moves to. Consumers count where the broker itself was read (observed), or where
/// the world file names the service among a queue's `consumed_by`; a queue nobody consumed
/// before, or whose consumers a world file does not name, proves nothing either way.
pub(super) fn checks_of(plan: &Plan, world: &World, waves: &[Vec<Move>]) -> Vec<Check> {
    checkable(plan, world, waves)
        .filter_map(|c| {
            let source = plan.brokers.get(c.to.other()).in_world(world)?;
            let named =
                |client: &String| crate::clients::names_service(client, &c.cluster, &c.service);
            let queues: Vec<(String, String)> = c
                .consumes
                .iter()
                .filter_map(|name| source.queue(name))
                .filter(|q| q.consumers > 0 && (source.observed || q.consumed_by.iter().any(named)))
                .map(|q| (q.vhost.clone(), q.name.clone()))
                .collect();
            let wave = c.wave?;
            (!queues.is_empty()).then(|| Check {
                wave,
                service: c.id(),
                broker: c.to,
                queues,
            })
        })
        .collect()
}

/// `e` naming the service `cluster/service`.
pub(super) fn with_service(e: Entry, id: &str) -> Entry {
    match id.split_once('/') {
        Some((cluster, service)) => e.service(cluster, service),
        None => e,
    }
}

/// "12 messages", "3 messages (1 unacknowledged)": what a queue still holds.
pub(super) fn held(depth: Depth) -> String {
    let total = depth.total();
    let plural = if total == 1 { "" } else { "s" };
    if depth.unacked == 0 {
        format!("{total} message{plural}")
    } else {
        format!("{total} message{plural} ({} unacknowledged)", depth.unacked)
    }
}

impl Run<'_> {
    /// The check after wave `number`: each service it moved that consumed queues where it came
    /// from has consumers on them where it went, within [`Options::wave_check`]. Returns why
    /// the run stops, if it does. A service whose rollout failed is not checked (it did not
    /// move).
    pub(super) fn check_wave(
        &mut self,
        schedule: &Schedule,
        number: usize,
        report: &Report,
    ) -> Result<Option<String>> {
        let Some(timeout) = self.options.wave_check else {
            return Ok(None);
        };
        let moved: Vec<&Check> = schedule
            .checks
            .iter()
            .filter(|c| c.wave == number && report.moved.iter().any(|m| m.service == c.service))
            .collect();
        if moved.is_empty() {
            return Ok(None);
        }
        let start = SystemTime::now();
        let began = Instant::now();
        // (check, queue) pairs still without consumers, by index.
        let mut waiting: Vec<(usize, usize)> = moved
            .iter()
            .enumerate()
            .flat_map(|(c, check)| (0..check.queues.len()).map(move |q| (c, q)))
            .collect();
        loop {
            let mut still = Vec::new();
            for (c, q) in waiting {
                let (check, (vhost, queue)) = (moved[c], &moved[c].queues[q]);
                let broker = self.brokers.get(check.broker);
                let depth = self.backend.broker(broker)?.depth(vhost, queue)?;
                if depth.is_none_or(|d| d.consumers == 0) {
                    still.push((c, q));
                }
            }
            if still.is_empty() {
                self.progress.done_waiting();
                for check in &moved {
                    let mut e = Entry::new(self.migration, Step::Check, start, Outcome::Ok)
                        .wave(Some(number));
                    e = with_service(e, &check.service);
                    self.journal.append(&e)?;
                }
                return Ok(None);
            }
            if began.elapsed() >= timeout {
                self.progress.done_waiting();
                let mut whys = Vec::new();
                for &(c, q) in &still {
                    let (check, (_, queue)) = (moved[c], &moved[c].queues[q]);
                    let why = format!(
                        "{} moved to the {} broker but nothing consumes {queue} there after {}s",
                        check.service,
                        check.broker,
                        timeout.as_secs()
                    );
                    let e = Entry::new(self.migration, Step::Check, start, Outcome::Failed)
                        .wave(Some(number));
                    let mut e = with_service(e, &check.service);
                    e.queue = Some(queue.clone());
                    self.journal.append(&e.detail(why.clone()))?;
                    whys.push(why);
                }
                return Ok(Some(format!(
                    "the check after wave {number} failed: {}; later waves were not started (is the service running and connected? `--no-wave-check` skips this check)",
                    whys.join("; ")
                )));
            }
            self.progress.waiting(&format!(
                "Wave {number}: waiting for {} moved consumer queue{} to have consumers on the new broker",
                still.len(),
                if still.len() == 1 { "" } else { "s" }
            ));
            waiting = still;
            std::thread::sleep(self.backend.poll_interval());
        }
    }

    /// Moves what is left in `leftover`'s queue on its broker to the same queue on the other
    /// broker with a shovel that deletes itself once done, and counts: the messages the source
    /// held before must be on the destination after (when nothing consumes there meanwhile).
    /// A queue that still has consumers is left to them. Returns why the run stops, if it does.
    pub(super) fn shovel(
        &mut self,
        leftover: &Drain,
        report: &mut Report,
    ) -> Result<Option<String>> {
        let (from, to) = (
            self.brokers.get(leftover.broker),
            self.brokers.get(leftover.broker.other()),
        );
        let (vhost, queue) = (&leftover.vhost, &leftover.queue);
        let Some(source) = self.backend.broker(from)?.depth(vhost, queue)? else {
            return Ok(None);
        };
        if source.drained() {
            return Ok(None);
        }
        if source.consumers > 0 {
            self.progress.line(&format!(
                "  {queue} on the {} broker still has {} consumer{}: left to drain there",
                leftover.broker,
                source.consumers,
                if source.consumers == 1 { "" } else { "s" }
            ));
            return Ok(None);
        }
        let start = SystemTime::now();
        let entry = |outcome, messages: u64| {
            let mut e =
                Entry::new(self.migration, Step::Shovel, start, outcome).wave(leftover.wave);
            e.queue = Some(queue.clone());
            e.messages = Some(messages);
            e
        };
        let Some(before) = self.backend.broker(to)?.depth(vhost, queue)? else {
            let why = format!(
                "{} is left in {queue} on the {} broker, and the {} broker has no queue {queue} to shovel it to",
                held(source),
                leftover.broker,
                leftover.broker.other()
            );
            self.journal
                .append(&entry(Outcome::Refused, source.total()).detail(why.clone()))?;
            return Ok(Some(why));
        };
        let name = format!("warren-{}-{queue}", self.migration);
        self.journal
            .append(&entry(Outcome::Started, source.total()))?;
        self.progress.line(&format!(
            "  shovelling {} left in {queue} from the {} broker to the {} broker",
            held(source),
            leftover.broker,
            leftover.broker.other()
        ));
        self.backend.broker(from)?.start_shovel(&Shovel {
            name: name.clone(),
            vhost: vhost.clone(),
            queue: queue.clone(),
            to,
        })?;
        let began = Instant::now();
        loop {
            let left = self.backend.broker(from)?.depth(vhost, queue)?;
            let running = self
                .backend
                .broker(from)?
                .links()?
                .iter()
                .any(|l| l.name == name && l.vhost == *vhost);
            if !running && left.is_none_or(|d| d.drained()) {
                break;
            }
            if began.elapsed() >= self.options.drain_timeout {
                let why = format!(
                    "shovel {name} still had {} to move from {queue} on the {} broker after {}s (drain timeout); it keeps running on that broker",
                    left.map_or_else(|| "messages".to_owned(), held),
                    leftover.broker,
                    self.options.drain_timeout.as_secs()
                );
                self.journal
                    .append(&entry(Outcome::Failed, source.total()).detail(why.clone()))?;
                return Ok(Some(why));
            }
            self.progress.waiting(&format!(
                "shovelling {queue}: {} left on the {} broker",
                left.map_or_else(|| "0 messages".to_owned(), held),
                leftover.broker
            ));
            std::thread::sleep(self.backend.poll_interval());
        }
        self.progress.done_waiting();
        let after = self
            .backend
            .broker(to)?
            .depth(vhost, queue)?
            .unwrap_or_default();
        let arrived = after.total().saturating_sub(before.total());
        if after.consumers == 0 && arrived != source.total() {
            let why = format!(
                "shovel {name} took {} from {queue} on the {} broker, but {arrived} arrived on the {} broker",
                source.total(),
                leftover.broker,
                leftover.broker.other()
            );
            self.journal
                .append(&entry(Outcome::Failed, source.total()).detail(why.clone()))?;
            return Ok(Some(why));
        }
        self.journal
            .append(&entry(Outcome::Ok, source.total()).detail(format!(
                "{} before on the {} broker, {arrived} arrived on the {} broker",
                source.total(),
                leftover.broker,
                leftover.broker.other()
            )))?;
        report.shovelled.push(Shovelled {
            queue: queue.clone(),
            from: leftover.broker,
            messages: source.total(),
        });
        Ok(None)
    }

    /// Warns about each publisher wave `number` moved that has no connection on the broker it
    /// moved to: publishers may connect only when they send, so this never stops the run.
    pub(super) fn check_publishers(
        &mut self,
        schedule: &Schedule,
        number: usize,
        report: &mut Report,
    ) -> Result<()> {
        if self.options.wave_check.is_none() {
            return Ok(());
        }
        for alias in [BrokerAlias::Old, BrokerAlias::New] {
            let moved: Vec<&String> = schedule
                .publishers
                .iter()
                .filter(|(wave, id, to)| {
                    *wave == number && *to == alias && report.moved.iter().any(|m| &m.service == id)
                })
                .map(|(_, id, _)| id)
                .collect();
            if moved.is_empty() {
                continue;
            }
            // A task that has just started takes a moment to connect: look again for a while
            // before warning.
            let began = Instant::now();
            let grace = PUBLISHER_GRACE.min(self.options.wave_check.unwrap_or_default());
            let mut missing = moved;
            loop {
                let mut seen = crate::model::Broker::default();
                self.backend
                    .broker(self.brokers.get(alias))?
                    .read_into(&mut seen)?;
                missing.retain(|id| {
                    let (cluster, service) = id.split_once('/').unwrap_or(("", id));
                    !seen
                        .connections
                        .iter()
                        .any(|c| crate::clients::names_service(&c.client, cluster, service))
                });
                if missing.is_empty() || began.elapsed() >= grace {
                    break;
                }
                std::thread::sleep(self.backend.poll_interval());
            }
            for id in missing {
                let warning = format!(
                    "{id} moved to the {alias} broker and has no connection there yet (a publisher may connect only when it sends)"
                );
                self.progress.line(&format!("  warning: {warning}"));
                report.warnings.push(warning);
            }
        }
        Ok(())
    }

    /// Shovels what is left in the queues of `schedule.leftovers` due after wave `after`
    /// (`None`: after the last wave) from the broker they were drained on to the other one,
    /// and waits until the shovel has moved it. Returns why the run stops, if it does.
    pub(super) fn shovel_leftovers(
        &mut self,
        schedule: &Schedule,
        after: Option<usize>,
        report: &mut Report,
    ) -> Result<Option<String>> {
        for leftover in schedule.leftovers.iter().filter(|l| l.wave == after) {
            if let Some(why) = self.shovel(leftover, report)? {
                return Ok(Some(why));
            }
        }
        Ok(None)
    }

    /// Creates `definitions` on the new broker (each one it has already is left as it is),
    /// journalling each as a `topology` step, started before it is made.
    pub(super) fn prepare(&mut self, definitions: &[Definition]) -> Result<()> {
        self.progress.line(&format!(
            "Preparing the new broker: {} definition{}",
            definitions.len(),
            if definitions.len() == 1 { "" } else { "s" }
        ));
        // One batch: every definition journalled `started`, all created, each result journalled.
        let start = SystemTime::now();
        let entry = |definition: &Definition, result| {
            Entry::new(self.migration, Step::Topology, start, result).detail(definition.to_string())
        };
        let intents: Vec<Entry> = definitions
            .iter()
            .map(|d| entry(d, Outcome::Started))
            .collect();
        self.journal.append_all(&intents)?;
        let results = self
            .backend
            .broker(&self.brokers.new)?
            .create_all(definitions);
        let mut ends = Vec::with_capacity(results.len());
        let mut failure = None;
        for (definition, result) in definitions.iter().zip(results) {
            match result {
                Ok(()) => ends.push(entry(definition, Outcome::Ok)),
                Err(e) => {
                    ends.push(
                        entry(definition, Outcome::Failed).detail(format!("{definition}: {e}")),
                    );
                    failure.get_or_insert(e);
                }
            }
        }
        self.journal.append_all(&ends)?;
        if let Some(e) = failure {
            return Err(e);
        }
        for definition in definitions {
            self.progress.line(&format!("  + {definition}"));
        }
        Ok(())
    }

    /// The gate before wave `number`: every service of `wave` that moves to the new broker
    /// finds there what it needs (`gates`), read once for the wave. Returns why the wave may
    /// not start, journalled as a refused `topology` step naming the service.
    pub(super) fn gate(
        &mut self,
        wave: &[Move],
        number: usize,
        gates: &BTreeMap<String, Vec<Definition>>,
    ) -> Result<Option<String>> {
        let gated: Vec<(&Move, &Vec<Definition>)> = wave
            .iter()
            .filter_map(|m| gates.get(&m.id()).map(|needs| (m, needs)))
            .collect();
        if gated.is_empty() {
            return Ok(None);
        }
        let mut seen = Broker::default();
        self.backend
            .broker(&self.brokers.new)?
            .read_into(&mut seen)?;
        for (m, needs) in gated {
            let lacks = topology::missing(&seen, needs);
            if lacks.is_empty() {
                continue;
            }
            let why = format!(
                "service {} cannot move: the new broker lacks {} (gate); later waves were not started",
                m.id(),
                lacks.join(", ")
            );
            self.journal.append(
                &Entry::new(
                    self.migration,
                    Step::Topology,
                    SystemTime::now(),
                    Outcome::Refused,
                )
                .wave(Some(number))
                .service(&m.cluster, &m.service)
                .detail(why.clone()),
            )?;
            self.progress.line(&format!("  {}: held: {why}", m.id()));
            return Ok(Some(why));
        }
        Ok(None)
    }

    /// Waits until the queues of `drains` hold nothing (no message ready or unacknowledged), up
    /// to the drain timeout, each journalled as a `drain` step once it is empty (or gone).
    /// Returns `None` once they all are, or why it stopped waiting: the first queue, in order,
    /// still holding messages at the timeout. Each look asks every queue still waited for in
    /// one batch per broker, and the queues that look found empty are journalled together,
    /// with one sync.
    pub(super) fn wait_drained(&mut self, drains: &[&Drain]) -> Result<Option<String>> {
        let start = SystemTime::now();
        let began = Instant::now();
        let entry = |drain: &Drain, result, messages| {
            drain_entry(self.migration, drain, start, result, messages)
        };
        // The messages each queue held at the first look.
        let mut first: Vec<Option<u64>> = vec![None; drains.len()];
        let mut waiting: Vec<usize> = (0..drains.len()).collect();
        while !waiting.is_empty() {
            let looks = self.depths_of(drains, &waiting)?;
            let mut emptied = Vec::new();
            let mut lines = Vec::new();
            let mut left = Vec::new();
            for (i, look) in waiting.into_iter().zip(looks) {
                let drain = drains[i];
                let Some(depth) = look else {
                    emptied.push(entry(drain, Outcome::Ok, None).detail(format!(
                        "no queue {} on the {} broker",
                        drain.queue, drain.broker
                    )));
                    continue;
                };
                let messages = *first[i].get_or_insert(depth.total());
                if depth.drained() {
                    emptied.push(entry(drain, Outcome::Ok, Some(messages)));
                    if messages > 0 {
                        lines.push(format!(
                            "  {} on the {} broker drained ({messages} messages)",
                            drain.queue, drain.broker
                        ));
                    }
                } else {
                    left.push((i, depth));
                }
            }
            if !emptied.is_empty() {
                self.progress.done_waiting();
            }
            self.journal.append_all(&emptied)?;
            for line in &lines {
                self.progress.line(line);
            }
            let Some(&(i, depth)) = left.first() else {
                break;
            };
            let drain = drains[i];
            if began.elapsed() >= self.options.drain_timeout {
                self.progress.done_waiting();
                let why = format!(
                    "queue {} on the {} broker {} still holds {} after {}s (drain timeout); later waves were not started",
                    drain.queue,
                    drain.broker,
                    self.brokers.get(drain.broker).id,
                    held(depth),
                    self.options.drain_timeout.as_secs()
                );
                self.journal.append(
                    &entry(drain, Outcome::Failed, Some(depth.total())).detail(why.clone()),
                )?;
                return Ok(Some(why));
            }
            // The depth falling, where a terminal shows it.
            let more = match left.len() - 1 {
                0 => String::new(),
                n => format!(" and {n} more queue{}", if n == 1 { "" } else { "s" }),
            };
            self.progress.waiting(&format!(
                "waiting for {} on the {} broker to drain: {}{more}",
                drain.queue,
                drain.broker,
                held(depth)
            ));
            waiting = left.into_iter().map(|(i, _)| i).collect();
            std::thread::sleep(self.backend.poll_interval());
        }
        self.progress.done_waiting();
        Ok(None)
    }

    /// What the queues `which` (indexes into `drains`) hold now, in that order: one batch of
    /// looks per broker.
    fn depths_of(&mut self, drains: &[&Drain], which: &[usize]) -> Result<Vec<Option<Depth>>> {
        let mut out = vec![None; which.len()];
        for alias in [BrokerAlias::Old, BrokerAlias::New] {
            let on: Vec<usize> = (0..which.len())
                .filter(|&k| drains[which[k]].broker == alias)
                .collect();
            if on.is_empty() {
                continue;
            }
            let queues: Vec<(String, String)> = on
                .iter()
                .map(|&k| {
                    (
                        drains[which[k]].vhost.clone(),
                        drains[which[k]].queue.clone(),
                    )
                })
                .collect();
            let looks = self
                .backend
                .broker(self.brokers.get(alias))?
                .depths(&queues);
            for (k, look) in on.into_iter().zip(looks) {
                out[k] = look?;
            }
        }
        Ok(out)
    }

    /// Waits until `drain`'s queue holds nothing (no message ready or unacknowledged), up to
    /// the drain timeout, journalled as a `drain` step, while `policy` (under `federate`) federates
    /// it to the new broker: a queue that has not shrunk for [`super::Options::stall`] loses its
    /// policy and a shovel moves the rest, once. A queue with nothing federating it is waited
    /// for by [`Run::wait_drained`].
    pub(super) fn wait_emptied(
        &mut self,
        drain: &Drain,
        (policy, report): (&Declared, &mut Report),
    ) -> Result<Waited> {
        let broker = self.brokers.get(drain.broker);
        let start = SystemTime::now();
        let began = Instant::now();
        let entry = |result, messages| drain_entry(self.migration, drain, start, result, messages);
        let how = "to empty through federation";
        let mut first = None;
        let mut lowest = u64::MAX;
        let mut since = Instant::now();
        let mut unfederated = false;
        self.progress.waiting(&format!(
            "waiting for {} on the {} broker {how}",
            drain.queue, drain.broker
        ));
        loop {
            let depth = self
                .backend
                .broker(broker)?
                .depth(&drain.vhost, &drain.queue)?;
            let Some(depth) = depth else {
                self.progress.done_waiting();
                self.journal
                    .append(&entry(Outcome::Ok, None).detail(format!(
                        "no queue {} on the {} broker",
                        drain.queue, drain.broker
                    )))?;
                return Ok(Waited::Emptied);
            };
            let messages = *first.get_or_insert(depth.total());
            if depth.drained() {
                self.progress.done_waiting();
                self.journal.append(&entry(Outcome::Ok, Some(messages)))?;
                if messages > 0 {
                    let how = if unfederated {
                        "emptied through federation and a shovel"
                    } else {
                        "emptied through federation"
                    };
                    self.progress.line(&format!(
                        "  {} on the {} broker {how} ({messages} messages)",
                        drain.queue, drain.broker
                    ));
                }
                return Ok(if unfederated {
                    Waited::Unfederated
                } else {
                    Waited::Emptied
                });
            }
            if depth.total() < lowest {
                lowest = depth.total();
                since = Instant::now();
            } else if !unfederated && since.elapsed() >= self.options.stall {
                if let Some(why) = self.unfederate_stalled(drain, policy, depth, report)? {
                    return Ok(Waited::Stopped(why));
                }
                unfederated = true;
                continue;
            }
            if began.elapsed() >= self.options.drain_timeout {
                self.progress.done_waiting();
                let then = if unfederated {
                    format!(
                        "its federation policy was removed when it stalled, and {} consumer{} still read it there: apply again to go on waiting",
                        depth.consumers,
                        if depth.consumers == 1 { "" } else { "s" }
                    )
                } else {
                    "the federation stays declared so the moved consumers keep receiving it: apply again to go on waiting".to_owned()
                };
                let why = format!(
                    "queue {} on the {} broker {} still holds {} after {}s (drain timeout); {then}",
                    drain.queue,
                    drain.broker,
                    broker.id,
                    held(depth),
                    self.options.drain_timeout.as_secs()
                );
                self.journal
                    .append(&entry(Outcome::Failed, Some(depth.total())).detail(why.clone()))?;
                return Ok(Waited::Stopped(why));
            }
            // The depth falling, where a terminal shows it.
            self.progress.waiting(&format!(
                "waiting for {} on the {} broker {how}: {}",
                drain.queue,
                drain.broker,
                held(depth)
            ));
            std::thread::sleep(self.backend.poll_interval());
        }
    }
}

/// The journal's `drain` entry for `drain`'s queue in `migration`, waited for since `start`.
fn drain_entry(
    migration: &str,
    drain: &Drain,
    start: SystemTime,
    result: Outcome,
    messages: Option<u64>,
) -> Entry {
    let mut e = Entry::new(migration, Step::Drain, start, result).wave(drain.wave);
    e.queue = Some(drain.queue.clone());
    e.messages = messages;
    e
}

/// How a wait for a queue to empty ended.
pub(super) enum Waited {
    /// The queue is empty (or gone); a federation policy on it still stands.
    Emptied,
    /// The queue stalled: its federation policy was removed and a shovel moved the rest.
    Unfederated,
    /// Why the run stops.
    Stopped(String),
}
