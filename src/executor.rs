//! Executes moves wave by wave through a [`Backend`]: `apply` (new revisions) and `rollback`
//! (previous revisions) share this one executor.
//!
//! Within a wave every service is pointed at its target first and the rollouts are then awaited
//! side by side. Before a wave, the queues its services consume are drained on the broker they
//! leave. The first failed rollout stops the run after its wave; every step is journalled.

use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use std::collections::BTreeMap;

use crate::backend::broker::Definition;
use crate::backend::{Backend, Rollout, RolloutQuery, ServiceUpdate};
use crate::config::BrokerAlias;
use crate::error::{Error, Result};
use crate::journal::{Entry, Journal, Outcome, Step};
use crate::model::{TaskDefinition, World};
use crate::plan::{Action, Brokers, Drain, Plan};
use crate::progress::Progress;

mod brokers;
mod federation;
mod schedules;

pub use brokers::Check;
use brokers::{checks_of, publishers_of};
pub use federation::declared_by_apply;

pub use schedules::{Retargeted, ScheduleMove};

/// Limits of one run.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub drain_timeout: Duration,
    pub rollout_timeout: Duration,
    /// How long the check after a wave waits for each moved consumer's queues to have
    /// consumers on the new broker; `None`: no check (`--no-wave-check`, and rollback).
    pub wave_check: Option<Duration>,
    /// Under `federate`: how long apply waits, before the first wave, for every federation
    /// link to be running.
    pub link_check: Duration,
    /// Under `federate`: how long a federated queue on the old broker may stop shrinking after
    /// the last wave before warren shovels what is left in it.
    pub stall: Duration,
}

impl Options {
    /// How long apply waits for the federation links by default (`--link-check-timeout`).
    pub const LINK_CHECK: Duration = Duration::from_secs(60);
    /// How long an old federated queue may stop shrinking by default (`--stall-timeout`).
    pub const STALL: Duration = Duration::from_secs(30);
}

/// What a service is moved onto.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A new revision with this content.
    Register(TaskDefinition),
    /// A revision that exists already (`family:revision`).
    Existing(String),
}

/// One service to move.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    pub cluster: String,
    pub service: String,
    pub wave: usize,
    /// The revision it runs now.
    pub from: String,
    pub target: Target,
}

impl Move {
    /// `cluster/service`.
    #[must_use]
    pub fn id(&self) -> String {
        format!("{}/{}", self.cluster, self.service)
    }
}

/// Everything one run does, in order.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub migration: String,
    /// The journal step for pointing a service at its target: `update` or `rollback`.
    pub step: Step,
    pub waves: Vec<Vec<Move>>,
    pub drains: Vec<Drain>,
    /// Rollouts an interrupted earlier run started, awaited before the first wave.
    pub in_flight: Vec<Move>,
    /// Scheduled tasks to point at another revision: on apply after their service's rollout
    /// completed, on rollback before their service goes back.
    pub retargets: Vec<ScheduleMove>,
    /// What the check after each wave expects of the services it moved.
    pub checks: Vec<Check>,
    /// Publishers each wave moves, by wave: `(wave, cluster/service, the broker it moves to)`.
    /// The check after their wave warns when one has no connection there yet.
    pub publishers: Vec<(usize, String, BrokerAlias)>,
    /// Queues whose leftovers a shovel moves to the other broker: after their wave (`wave`),
    /// or after the last wave (`None`).
    pub leftovers: Vec<Drain>,
    /// Definitions the new broker lacks, created before the first wave (apply only: rollback
    /// leaves what apply copied in place, and creates nothing).
    pub topology: Vec<Definition>,
    /// What each service needs on the new broker before it moves there, by `cluster/service`:
    /// the gate. A service without an entry has nothing to check.
    pub gates: BTreeMap<String, Vec<Definition>>,
    /// Under `federate` (apply): the upstreams and policies declared on the new broker before
    /// the first wave, and removed after the last once the federated queues on the old broker
    /// are empty.
    pub federation: Option<crate::plan::Federation>,
    /// What an earlier apply declared for federation and nothing removed since, per the
    /// journal, with the queue each policy federates. Apply waits for those queues on the old
    /// broker too and removes them with its own; rollback removes a policy before its queue
    /// drains on the new broker, the rest after the last wave.
    pub undeclare: Vec<(crate::journal::Declared, Option<String>)>,
}

impl Schedule {
    /// The same schedule, which first awaits the rollouts an interrupted earlier run started
    /// (per `entries`, the journal, and `world`, the state now) on services it does not move
    /// itself.
    #[must_use]
    pub fn resuming(mut self, entries: &[Entry], world: &World) -> Schedule {
        self.in_flight = in_flight(entries, world)
            .into_iter()
            .filter(|m| !self.waves.iter().flatten().any(|w| w.id() == m.id()))
            .collect();
        if self.step == Step::Update {
            // What an earlier run declared for federation is finished and removed by this one,
            // even where this run's plan no longer federates it (its consumers moved then).
            self.undeclare = federation::declared_by_apply(entries);
        }
        self
    }
}

/// A service that reached its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Moved {
    pub service: String,
    pub wave: usize,
    pub from: String,
    pub to: String,
}

/// A service whose rollout failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failed {
    pub service: String,
    pub wave: usize,
    /// The revision it runs now.
    pub running: String,
    pub reason: String,
}

/// A service left alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub service: String,
    pub reason: String,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub moved: Vec<Moved>,
    pub failed: Vec<Failed>,
    pub skipped: Vec<Skipped>,
    pub not_started: Vec<String>,
    /// Scheduled tasks pointed at another revision.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retargeted: Vec<Retargeted>,
    /// Queues whose leftovers a shovel moved to the other broker.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shovelled: Vec<Shovelled>,
    /// What the run noticed and did not stop for (a moved publisher not yet connected).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Why the run stopped before the end, if it did.
    pub stopped: Option<String>,
}

/// What a shovel moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shovelled {
    pub queue: String,
    /// The broker it was taken from.
    pub from: BrokerAlias,
    pub messages: u64,
}

impl Report {
    /// Whether everything scheduled reached its target.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty() && self.stopped.is_none()
    }
}

/// Turns a plan into the moves that carry it out against `world` (the state now).
///
/// # Errors
/// [`Error::Refused`] when a change is `manual`, or a service or its task definition is gone.
pub fn schedule(plan: &Plan, world: &World) -> Result<(Schedule, Vec<Skipped>)> {
    let manual: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Manual)
        .map(|c| format!("{} ({})", c.id(), c.reason.as_deref().unwrap_or("manual")))
        .collect();
    if !manual.is_empty() {
        return Err(Error::Refused(format!(
            "the plan has changes warren cannot make; nothing was changed: {}",
            manual.join("; ")
        )));
    }
    // The brokers as read now, not as when a saved plan was made.
    let preparation = crate::plan::preparation(world, &plan.brokers, &plan.changes);
    if let Some(preparation) = &preparation {
        if !preparation.conflicts.is_empty() {
            let conflicts: Vec<String> = preparation
                .conflicts
                .iter()
                .map(ToString::to_string)
                .collect();
            return Err(Error::Refused(format!(
                "the new broker {} disagrees with the old broker {}, and warren never changes what the new broker has; nothing was changed: {}",
                plan.brokers.new.id,
                plan.brokers.old.id,
                conflicts.join("; ")
            )));
        }
    }
    let mut waves = Vec::new();
    let mut skipped = Vec::new();
    for (i, ids) in plan.waves.iter().enumerate() {
        let mut wave = Vec::new();
        for id in ids {
            let Some(change) = plan
                .changes
                .iter()
                .find(|c| &c.id() == id && c.action == Action::Update)
            else {
                continue;
            };
            let service = world
                .service(&change.cluster, &change.service)
                .ok_or_else(|| {
                    Error::Refused(format!(
                        "service {id} no longer exists; nothing was changed"
                    ))
                })?;
            let current = world
                .task_definition(&service.task_definition)
                .ok_or_else(|| {
                    Error::Refused(format!(
                        "service {id} runs {}, which does not exist; nothing was changed",
                        service.task_definition
                    ))
                })?;
            let Some(wanted) = crate::moves::moved(
                world,
                current,
                change,
                &plan.brokers,
                plan.scope.broker_env.as_deref(),
            ) else {
                skipped.push(Skipped {
                    service: id.clone(),
                    reason: format!("already points at the {} broker", change.to),
                });
                continue;
            };
            let target = match crate::moves::already_registered(world, current, &wanted) {
                Some(existing) => Target::Existing(existing.key()),
                None => Target::Register(wanted),
            };
            wave.push(Move {
                cluster: change.cluster.clone(),
                service: change.service.clone(),
                wave: i + 1,
                from: service.task_definition.clone(),
                target,
            });
        }
        waves.push(wave);
    }
    let retargets = schedules::retargets_of(plan, world, &mut skipped);
    let checks = checks_of(plan, world, &waves);
    let publishers = publishers_of(plan, world, &waves);
    Ok((
        Schedule {
            migration: plan.migration.clone(),
            step: Step::Update,
            waves,
            drains: plan.drains.clone(),
            in_flight: Vec::new(),
            retargets,
            checks,
            publishers,
            leftovers: plan.leftovers.clone(),
            topology: plan.topology.iter().map(|t| t.definition()).collect(),
            gates: if preparation.is_some() {
                crate::plan::gates(world, &plan.brokers, &plan.changes)
            } else {
                BTreeMap::new()
            },
            federation: plan.federation.clone(),
            undeclare: Vec::new(),
        },
        skipped,
    ))
}

/// Runs `schedule` through `backend`, journalling every step.
///
/// A failed rollout or a queue that does not drain ends the run early with a [`Report`] that
/// says so; only a backend that cannot be reached is an error.
///
/// # Errors
/// [`Error::Backend`] or [`Error::Io`] when a step cannot be made at all.
pub fn execute(
    schedule: &Schedule,
    brokers: &Brokers,
    backend: &mut dyn Backend,
    journal: &Journal,
    options: Options,
    progress: &mut Progress,
) -> Result<Report> {
    Run {
        brokers,
        backend,
        journal,
        migration: &schedule.migration,
        options,
        progress,
    }
    .execute(schedule)
}

/// What one run works with.
struct Run<'a> {
    brokers: &'a Brokers,
    backend: &'a mut dyn Backend,
    journal: &'a Journal,
    migration: &'a str,
    options: Options,
    progress: &'a mut Progress,
}

impl Run<'_> {
    fn execute(&mut self, schedule: &Schedule) -> Result<Report> {
        let mut report = Report::default();
        if !schedule.in_flight.is_empty() {
            // Rollouts an earlier, interrupted run started: they finish (or fail) before anything new.
            self.progress.line(&format!(
                "Waiting for {} rollout{} an earlier run started",
                schedule.in_flight.len(),
                if schedule.in_flight.len() == 1 {
                    ""
                } else {
                    "s"
                }
            ));
            let pending = schedule
                .in_flight
                .iter()
                .map(|m| Pending {
                    m: m.clone(),
                    to: match &m.target {
                        Target::Existing(key) => key.clone(),
                        Target::Register(td) => td.key(),
                    },
                    began: Instant::now(),
                    began_at: SystemTime::now(),
                })
                .collect();
            if self.await_rollouts(pending, 0, &mut report)? {
                report.stopped =
                    Some("a rollout an earlier run started failed; no new wave was started".into());
                report.not_started = schedule.waves.iter().flatten().map(Move::id).collect();
                return Ok(report);
            }
        }
        if !schedule.topology.is_empty() {
            self.prepare(&schedule.topology)?;
        }
        if let (Step::Update, Some(federation)) = (schedule.step, &schedule.federation) {
            if let Some(why) = self.declare(federation)? {
                report.stopped = Some(why);
                report.not_started = schedule.waves.iter().flatten().map(Move::id).collect();
                return Ok(report);
            }
        }
        // Scheduled tasks whose services need no move in this run.
        for sm in schedule.retargets.iter().filter(|r| r.wave.is_none()) {
            if let Some(to) = &sm.to {
                self.retarget(sm, to, schedule.step, &mut report)?;
            }
        }
        for (index, wave) in schedule.waves.iter().enumerate() {
            let number = index + 1;
            let later = |report: &mut Report| {
                report.not_started = schedule.waves[index..]
                    .iter()
                    .flatten()
                    .map(Move::id)
                    .collect();
            };
            if schedule.step != Step::Update {
                self.unfederate_wave(schedule, number)?;
            }
            let drains: Vec<&Drain> = schedule
                .drains
                .iter()
                .filter(|d| d.wave == Some(number))
                .collect();
            if let Some(left) = self.wait_drained(&drains)? {
                report.stopped = Some(left);
                later(&mut report);
                return Ok(report);
            }
            if schedule.step != Step::Update {
                // Rollback: a scheduled task goes back before the service it follows.
                for sm in schedule.retargets.iter().filter(|r| r.wave == Some(number)) {
                    if let Some(to) = &sm.to {
                        self.retarget(sm, to, schedule.step, &mut report)?;
                    }
                }
            }
            if wave.is_empty() {
                continue;
            }
            if let Some(why) = self.gate(wave, number, &schedule.gates)? {
                report.stopped = Some(why);
                later(&mut report);
                return Ok(report);
            }
            self.progress.line(&format!(
                "Wave {number}: {} service{}",
                wave.len(),
                if wave.len() == 1 { "" } else { "s" }
            ));

            let (pending, refused) = self.start(wave, number, schedule.step)?;

            self.progress.waiting(&format!(
                "Wave {number}: waiting for {} rollout{}",
                pending.len(),
                if pending.len() == 1 { "" } else { "s" }
            ));
            let started: Vec<String> = pending.iter().map(|p| p.m.id()).collect();
            let failed_here = self.await_rollouts(pending, number, &mut report)?;
            self.progress.done_waiting();
            if schedule.step == Step::Update {
                self.retarget_moved(schedule, number, &mut report)?;
            }
            if let Some(why) = refused {
                // The rollouts already under way in this wave were seen to their end first.
                report.stopped = Some(why);
                report.not_started = schedule.waves[index..]
                    .iter()
                    .flatten()
                    .map(Move::id)
                    .filter(|id| !started.contains(id))
                    .collect();
                return Ok(report);
            }
            if !failed_here {
                self.check_publishers(schedule, number, &mut report)?;
                if let Some(why) = self.check_wave(schedule, number, &report)? {
                    report.stopped = Some(why);
                    report.not_started = schedule.waves[index + 1..]
                        .iter()
                        .flatten()
                        .map(Move::id)
                        .collect();
                    return Ok(report);
                }
                if let Some(why) = self.shovel_leftovers(schedule, Some(number), &mut report)? {
                    report.stopped = Some(why);
                    later(&mut report);
                    report
                        .not_started
                        .retain(|id| !wave.iter().any(|m| &m.id() == id));
                    return Ok(report);
                }
            }
            if failed_here {
                report.stopped = Some(format!(
                    "a rollout in wave {number} failed; later waves were not started"
                ));
                report.not_started = schedule.waves[index + 1..]
                    .iter()
                    .flatten()
                    .map(Move::id)
                    .collect();
                return Ok(report);
            }
        }
        // What is left where nobody consumes any more goes first: a final drain would wait for
        // it in vain.
        if let Some(why) = self.shovel_leftovers(schedule, None, &mut report)? {
            report.stopped = Some(why);
            return Ok(report);
        }
        if schedule.step == Step::Update
            && (schedule.federation.is_some() || !schedule.undeclare.is_empty())
        {
            if let Some(why) = self.finish_federation(schedule, &mut report)? {
                report.stopped = Some(why);
                return Ok(report);
            }
        } else {
            let drains: Vec<&Drain> = schedule
                .drains
                .iter()
                .filter(|d| d.wave.is_none())
                .collect();
            if let Some(left) = self.wait_drained(&drains)? {
                report.stopped = Some(left);
                return Ok(report);
            }
        }
        if schedule.step != Step::Update {
            self.unfederate_rest(schedule)?;
        }
        Ok(report)
    }

    /// Starts the moves of wave `number` in three phases, each one batch call of the backend:
    /// registers the targets that need it, checks that the services still run the revisions the
    /// plan expected, and points them at their targets. Every change is journalled as `started`
    /// before its batch is called (a journal that cannot be written stops the run before the
    /// change) and with its result only after the batch returned, when the backend has made the
    /// change durable. Services from the first one found deployed by someone else on are left
    /// alone. Returns the rollouts to wait for and, when services were left alone, why.
    fn start(
        &mut self,
        wave: &[Move],
        number: usize,
        step: Step,
    ) -> Result<(Vec<Pending>, Option<String>)> {
        let targets = self.register(wave, number)?;

        // Someone may have deployed a service since the state was read: never revert that.
        let start = SystemTime::now();
        let services: Vec<(String, String)> = wave
            .iter()
            .map(|m| (m.cluster.clone(), m.service.clone()))
            .collect();
        let running = self.backend.running_task_definitions(&services)?;
        let mut starting = wave.len();
        let mut refused = None;
        for (i, ((m, to), running)) in wave.iter().zip(&targets).zip(running).enumerate() {
            if running.as_deref() == Some(m.from.as_str()) {
                continue;
            }
            let why = match running {
                Some(running) => format!(
                    "{} runs {running}, not {} as when the state was read: it was deployed by someone else in the meantime, so warren left it alone; re-plan to include that change",
                    m.id(),
                    m.from
                ),
                None => format!("{} no longer exists", m.id()),
            };
            self.journal.append(
                &Entry::new(self.migration, step, start, Outcome::Refused)
                    .wave(Some(number))
                    .service(&m.cluster, &m.service)
                    .task_definitions(&m.from, to)
                    .detail(why.clone()),
            )?;
            self.progress
                .line(&format!("  {}: left alone: {why}", m.id()));
            starting = i;
            refused = Some(why);
            break;
        }
        let pending = self.update(&wave[..starting], &targets[..starting], number, step)?;
        Ok((pending, refused))
    }

    /// Registers the targets of `wave` that need it, in one batch; returns every move's target
    /// (`family:revision`), in order. A registration that failed is journalled with the others
    /// and ends the run with its error before any service is changed.
    fn register(&mut self, wave: &[Move], number: usize) -> Result<Vec<String>> {
        let start = SystemTime::now();
        let entry = |m: &Move, result: Outcome| {
            Entry::new(self.migration, Step::Register, start, result)
                .wave(Some(number))
                .service(&m.cluster, &m.service)
        };
        let registering: Vec<(&Move, &TaskDefinition)> = wave
            .iter()
            .filter_map(|m| match &m.target {
                Target::Register(td) => Some((m, td)),
                Target::Existing(_) => None,
            })
            .collect();
        let intents: Vec<Entry> = registering
            .iter()
            .map(|(m, _)| {
                let mut intent = entry(m, Outcome::Started);
                intent.from_task_definition = Some(m.from.clone());
                intent
            })
            .collect();
        self.journal.append_all(&intents)?;
        let tds: Vec<&TaskDefinition> = registering.iter().map(|(_, td)| *td).collect();
        let results = self.backend.register_task_definitions(&tds);
        let mut registered = BTreeMap::new();
        let mut ends = Vec::with_capacity(results.len());
        let mut failure = None;
        for ((m, _), result) in registering.iter().zip(results) {
            match result {
                Ok(key) => {
                    ends.push(entry(m, Outcome::Ok).task_definitions(&m.from, &key));
                    registered.insert(m.id(), key);
                }
                Err(e) => {
                    ends.push(entry(m, Outcome::Failed).detail(e.to_string()));
                    failure.get_or_insert(e);
                }
            }
        }
        self.journal.append_all(&ends)?;
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(wave
            .iter()
            .map(|m| match &m.target {
                Target::Existing(key) => key.clone(),
                Target::Register(_) => registered.remove(&m.id()).unwrap_or_default(),
            })
            .collect())
    }

    /// Points each of `moves` at its target (`targets`, in the same order) in one batch, and
    /// returns the rollouts to wait for. An update that failed is journalled with the others
    /// and ends the run with its error (the rollouts of the others are awaited by the next run).
    fn update(
        &mut self,
        moves: &[Move],
        targets: &[String],
        number: usize,
        step: Step,
    ) -> Result<Vec<Pending>> {
        let start = SystemTime::now();
        let entry = |m: &Move, to: &str, result: Outcome| {
            Entry::new(self.migration, step, start, result)
                .wave(Some(number))
                .service(&m.cluster, &m.service)
                .task_definitions(&m.from, to)
        };
        let intents: Vec<Entry> = moves
            .iter()
            .zip(targets)
            .map(|(m, to)| entry(m, to, Outcome::Started))
            .collect();
        self.journal.append_all(&intents)?;
        let updates: Vec<ServiceUpdate> = moves
            .iter()
            .zip(targets)
            .map(|(m, to)| ServiceUpdate {
                cluster: m.cluster.clone(),
                service: m.service.clone(),
                task_definition: to.clone(),
            })
            .collect();
        let results = self.backend.update_services(&updates);
        let mut ends = Vec::with_capacity(results.len());
        let mut failure = None;
        for ((m, to), result) in moves.iter().zip(targets).zip(results) {
            match result {
                Ok(()) => ends.push(entry(m, to, Outcome::Ok)),
                Err(e) => {
                    ends.push(entry(m, to, Outcome::Failed).detail(e.to_string()));
                    failure.get_or_insert(e);
                }
            }
        }
        self.journal.append_all(&ends)?;
        if let Some(e) = failure {
            return Err(e);
        }
        let began = Instant::now();
        let began_at = SystemTime::now();
        Ok(moves
            .iter()
            .zip(targets)
            .map(|(m, to)| {
                self.progress
                    .line(&format!("  {}: {} -> {to}, rolling out", m.id(), m.from));
                Pending {
                    m: m.clone(),
                    to: to.clone(),
                    began,
                    began_at,
                }
            })
            .collect())
    }

    /// Waits for `pending` rollouts side by side, journalling each end, and records them in
    /// `report`. Returns whether any failed. A rollout past the timeout counts as failed and its
    /// service is pointed back at the revision it ran before.
    fn await_rollouts(
        &mut self,
        mut pending: Vec<Pending>,
        number: usize,
        report: &mut Report,
    ) -> Result<bool> {
        let wave = (number > 0).then_some(number);
        let mut failed = false;
        while !pending.is_empty() {
            let mut still = Vec::new();
            let asked: Vec<RolloutQuery> = pending
                .iter()
                .map(|p| RolloutQuery {
                    cluster: p.m.cluster.clone(),
                    service: p.m.service.clone(),
                    task_definition: p.to.clone(),
                })
                .collect();
            let states = self.backend.rollouts(&asked)?;
            // The ends seen in this round, journalled together (the backend has recorded them
            // already), and what to print once they are.
            let mut ends = Vec::new();
            let mut lines = Vec::new();
            for (p, state) in pending.into_iter().zip(states) {
                let Pending {
                    m,
                    to,
                    began,
                    began_at,
                } = p;
                let entry = |result: Outcome| {
                    Entry::new(self.migration, Step::Rollout, began_at, result)
                        .wave(wave)
                        .service(&m.cluster, &m.service)
                        .task_definitions(&m.from, &to)
                };
                match state {
                    Rollout::Completed => {
                        ends.push(entry(Outcome::Ok));
                        lines.push(format!(
                            "  {}: rolled out ({:.1}s)",
                            m.id(),
                            began.elapsed().as_secs_f64()
                        ));
                        report.moved.push(Moved {
                            service: m.id(),
                            wave: m.wave,
                            from: m.from.clone(),
                            to,
                        });
                    }
                    Rollout::Failed { running, reason } => {
                        failed = true;
                        ends.push(entry(Outcome::Failed).detail(reason.clone()));
                        lines.push(format!("  {}: rollout failed: {reason}", m.id()));
                        report.failed.push(Failed {
                            service: m.id(),
                            wave: m.wave,
                            running,
                            reason,
                        });
                    }
                    Rollout::InProgress if began.elapsed() >= self.options.rollout_timeout => {
                        failed = true;
                        let reason = format!(
                            "the rollout did not finish within {}s; the service was pointed back at {}",
                            self.options.rollout_timeout.as_secs(),
                            m.from
                        );
                        ends.push(entry(Outcome::Failed).detail(reason.clone()));
                        self.journal.append_all(&ends)?;
                        ends.clear();
                        let start = SystemTime::now();
                        let back = |result: Outcome| {
                            Entry::new(self.migration, Step::Rollback, start, result)
                                .wave(wave)
                                .service(&m.cluster, &m.service)
                                .task_definitions(&to, &m.from)
                                .detail("rollout timed out")
                        };
                        self.journal.append(&back(Outcome::Started))?;
                        self.backend
                            .update_service(&m.cluster, &m.service, &m.from)?;
                        self.journal.append(&back(Outcome::Ok))?;
                        lines.push(format!("  {}: {reason}", m.id()));
                        report.failed.push(Failed {
                            service: m.id(),
                            wave: m.wave,
                            running: m.from.clone(),
                            reason,
                        });
                    }
                    Rollout::InProgress => still.push(Pending {
                        m,
                        to,
                        began,
                        began_at,
                    }),
                }
            }
            self.journal.append_all(&ends)?;
            for line in &lines {
                self.progress.line(line);
            }
            pending = still;
            if !pending.is_empty() {
                std::thread::sleep(self.backend.poll_interval());
            }
        }
        self.progress.done_waiting();
        Ok(failed)
    }
}

/// A rollout being waited for.
struct Pending {
    m: Move,
    to: String,
    began: Instant,
    began_at: SystemTime,
}

/// Services an earlier run pointed at a new revision without seeing the rollout end (it was
/// killed, or the call's reply was lost): per the journal, their last step is an `update` or
/// `rollback` (done, only started, or failed: a call that failed may still have been made, so
/// the real state says whether it was) with no `rollout` after it, and they run that revision
/// now.
#[must_use]
pub fn in_flight(entries: &[Entry], world: &World) -> Vec<Move> {
    crate::journal::last_by_service(entries, |e| {
        matches!(e.step, Step::Update | Step::Rollback | Step::Rollout)
    })
    .into_iter()
    .filter(|(_, e)| {
        matches!(e.step, Step::Update | Step::Rollback)
            && matches!(e.result, Outcome::Ok | Outcome::Started | Outcome::Failed)
    })
    .filter_map(|((cluster, service), e)| {
        let to = e.to_task_definition.clone()?;
        let from = e.from_task_definition.clone()?;
        let runs = world.service(&cluster, &service)?.task_definition == to;
        runs.then(|| Move {
            cluster,
            service,
            wave: e.wave.unwrap_or(0),
            from,
            target: Target::Existing(to),
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use crate::backend::memory::chain::{self, Start, MOVING};
    use crate::journal::{Outcome, Step};

    #[test]
    fn an_uninterrupted_apply_moves_three_waves_with_drains_between() {
        let end = Start::fresh().after(chain::apply);
        let placement = chain::placement(end.backend.world());
        for name in MOVING {
            assert_eq!(placement[&format!("c/{name}")], format!("{name}:2"));
        }
        assert_eq!(placement["c/other"], "other:1");
        let entries: Vec<crate::journal::Entry> = end
            .journal
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let waves: Vec<usize> = entries
            .iter()
            .filter(|e| e.step == Step::Update && e.result == Outcome::Ok)
            .filter_map(|e| e.wave)
            .collect();
        assert_eq!(waves, vec![1, 1, 2, 2, 3, 3]);
        let drains = entries.iter().filter(|e| e.step == Step::Drain).count();
        assert_eq!(drains, 2, "q1 before wave 2, q2 before wave 3");
        for queue in end.backend.world().brokers[0].queues.as_ref().unwrap() {
            assert_eq!(
                queue.messages, 0,
                "{} drained on the old broker",
                queue.name
            );
        }
    }

    /// Applies the chain to `world` with the check after each wave waiting `check`; the report
    /// and the journal's check entries.
    fn apply_checked(
        world: crate::model::World,
        check: Option<std::time::Duration>,
    ) -> (super::Report, Vec<crate::journal::Entry>) {
        let dir = tempfile::tempdir().unwrap();
        let journal = crate::journal::Journal::new(&dir.path().join("warren-journal.jsonl"));
        let mut backend = crate::backend::memory::MemoryBackend::new(world);
        let options = super::Options {
            drain_timeout: std::time::Duration::from_secs(3600),
            rollout_timeout: std::time::Duration::from_secs(3600),
            wave_check: check,
            link_check: super::Options::LINK_CHECK,
            stall: super::Options::STALL,
        };
        let report = chain::apply_with(&mut backend, &journal, options).unwrap();
        let checks = journal
            .entries("chain")
            .unwrap()
            .list
            .into_iter()
            .filter(|e| e.step == Step::Check)
            .collect();
        (report, checks)
    }

    /// The chain, where the old broker names `m1` as q1's consumer and the new broker's q1 has
    /// `new_consumers`.
    fn consumed_by_m1(new_consumers: u64) -> crate::model::World {
        let mut world = chain::world();
        fn q1(b: &mut crate::model::Broker) -> &mut crate::model::Queue {
            b.queues
                .as_mut()
                .unwrap()
                .iter_mut()
                .find(|q| q.name == "q1")
                .unwrap()
        }
        q1(&mut world.brokers[0]).consumed_by = vec!["m1".into()];
        q1(&mut world.brokers[1]).consumers = new_consumers;
        world
    }

    #[test]
    fn a_moved_consumer_with_no_consumer_on_the_new_broker_stops_apply_after_its_wave() {
        let (report, checks) = apply_checked(consumed_by_m1(0), Some(std::time::Duration::ZERO));
        let stopped = report.stopped.as_deref().unwrap_or_default();
        assert!(
            stopped.contains("the check after wave 2 failed")
                && stopped.contains("c/m1 moved to the new broker but nothing consumes q1 there"),
            "{stopped}"
        );
        assert_eq!(
            report.not_started,
            vec!["c/s1", "c/s2"],
            "wave 3 did not start"
        );
        assert!(
            checks.iter().any(|e| e.result == Outcome::Failed
                && e.service.as_deref() == Some("m1")
                && e.queue.as_deref() == Some("q1")),
            "{checks:?}"
        );
    }

    #[test]
    fn a_moved_consumer_that_consumes_on_the_new_broker_passes_the_check() {
        let (report, checks) = apply_checked(consumed_by_m1(1), Some(std::time::Duration::ZERO));
        assert!(report.succeeded(), "{report:?}");
        assert_eq!(checks.len(), 1, "one check, for m1: {checks:?}");
        assert_eq!(checks[0].result, Outcome::Ok);
    }

    #[test]
    fn without_the_check_a_consumer_missing_on_the_new_broker_does_not_stop_apply() {
        let (report, checks) = apply_checked(consumed_by_m1(0), None);
        assert!(report.succeeded(), "{report:?}");
        assert!(checks.is_empty(), "{checks:?}");
    }

    /// An update whose call failed may have been made all the same (its reply was lost): the
    /// real state says so, and its rollout is awaited like that of one journalled `ok`.
    #[test]
    fn a_failed_update_that_was_made_is_in_flight() {
        use crate::journal::Entry;
        use std::time::SystemTime;
        let world = chain::world();
        let update = |result| {
            Entry::new("chain", Step::Update, SystemTime::now(), result)
                .wave(Some(1))
                .service("c", "p1")
                .task_definitions("p1:1", "p1:2")
        };
        let mut moved = world.clone();
        moved.task_definitions.push(crate::model::TaskDefinition {
            family: "p1".into(),
            revision: 2,
            ..Default::default()
        });
        moved.clusters[0].services[0].task_definition = "p1:2".into();

        let entries = [update(Outcome::Started), update(Outcome::Failed)];
        let flying = super::in_flight(&entries, &moved);
        assert_eq!(flying.len(), 1, "{flying:?}");
        assert_eq!(flying[0].target, super::Target::Existing("p1:2".into()));
        assert!(
            super::in_flight(&entries, &world).is_empty(),
            "a failed update that was not made leaves nothing in flight"
        );
    }

    /// Every kind of fault at every backend call of an apply; each re-run converges to the
    /// end of an uninterrupted apply, and a rollback after it to the end of an uninterrupted
    /// rollback.
    #[test]
    fn a_fault_at_any_call_of_apply_is_repaired_by_a_rerun() {
        let sweep = chain::sweep(&Start::fresh(), chain::apply, Some(chain::rollback));
        sweep.assert_converged("apply");
    }

    /// A world whose old broker has exchange `events` (topic) bound to `q`: `pub` publishes
    /// to `events`, `sub` consumes `q`. The new broker has `q` only.
    fn events_world() -> (crate::config::Config, crate::model::World) {
        let plan = r#"
[migration]
name = "events"
[brokers.old]
id = "b-old"
[brokers.new]
id = "b-new"
[[services]]
cluster = "c"
name = "pub"
broker = "new"
publishes = ["events"]
[[services]]
cluster = "c"
name = "sub"
broker = "new"
consumes = ["q"]
"#;
        let mut services = Vec::new();
        let mut task_definitions = Vec::new();
        for name in ["pub", "sub"] {
            services
                .push(serde_json::json!({"name": name, "task_definition": format!("{name}:1")}));
            task_definitions.push(serde_json::json!({"family": name, "revision": 1,
                "containers": [{"name": "app",
                    "environment": {"SPRING_RABBITMQ_HOST": "old.mq.test"}}]}));
        }
        let world = serde_json::from_value(serde_json::json!({
            "version": 1,
            "brokers": [
                {"id": "b-old", "endpoints": ["amqps://old.mq.test:5671"],
                 "exchanges": [{"name": "events", "type": "topic"}],
                 "queues": [{"name": "q", "consumers": 1}],
                 "bindings": [{"exchange": "events", "queue": "q", "routing_key": "#"}]},
                {"id": "b-new", "endpoints": ["amqps://new.mq.test:5671"],
                 "queues": [{"name": "q"}]},
            ],
            "clusters": [{"name": "c", "services": services}],
            "task_definitions": task_definitions,
        }))
        .unwrap();
        let config =
            crate::config::Config::parse(std::path::Path::new("events.toml"), plan.to_owned())
                .unwrap();
        (config, world)
    }

    /// Runs apply of `events_world` on `backend`, with `prepare` deciding whether the schedule
    /// keeps the definitions the plan creates.
    fn apply_events(
        backend: &mut crate::backend::memory::MemoryBackend,
        journal: &crate::journal::Journal,
        prepare: bool,
    ) -> crate::error::Result<super::Report> {
        let (config, world) = events_world();
        let plan = crate::plan::make(&config, &world)?;
        let (mut schedule, _) = super::schedule(&plan, &world)?;
        if !prepare {
            schedule.topology.clear();
        }
        super::execute(
            &schedule,
            &plan.brokers,
            backend,
            journal,
            super::Options {
                drain_timeout: std::time::Duration::from_secs(60),
                rollout_timeout: std::time::Duration::from_secs(60),
                wave_check: None,
                link_check: super::Options::LINK_CHECK,
                stall: super::Options::STALL,
            },
            &mut crate::progress::Progress::quiet(),
        )
    }

    #[test]
    fn the_gate_holds_a_publisher_whose_exchange_the_new_broker_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let journal = crate::journal::Journal::new(&dir.path().join("j.jsonl"));
        let mut backend = crate::backend::memory::MemoryBackend::new(events_world().1);

        let report = apply_events(&mut backend, &journal, false).unwrap();

        assert_eq!(
            report.stopped.as_deref(),
            Some("service c/pub cannot move: the new broker lacks exchange events (topic), binding events -> q (key #) (gate); later waves were not started")
        );
        assert!(report.moved.is_empty());
        assert_eq!(report.not_started, ["c/pub", "c/sub"]);
        let placement = chain::placement(backend.world());
        assert_eq!(placement["c/pub"], "pub:1", "held on the old broker");
        let entries = journal.entries("events").unwrap().list;
        let held: Vec<_> = entries
            .iter()
            .filter(|e| e.step == Step::Topology && e.result == Outcome::Refused)
            .collect();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].service.as_deref(), Some("pub"));
        assert!(!entries.iter().any(|e| e.step == Step::Update));
    }

    #[test]
    fn a_definition_that_cannot_be_created_stops_apply_before_any_move() {
        use crate::backend::memory::{Fault, Verb};
        let dir = tempfile::tempdir().unwrap();
        let journal = crate::journal::Journal::new(&dir.path().join("j.jsonl"));
        let mut backend = crate::backend::memory::MemoryBackend::new(events_world().1);
        backend.inject(Verb::Create, 2, Fault::Fail);

        let error = apply_events(&mut backend, &journal, true).unwrap_err();

        assert!(
            error.to_string().contains("create call 2 failed"),
            "{error}"
        );
        let entries = journal.entries("events").unwrap().list;
        assert!(!entries.iter().any(|e| e.step == Step::Update));
        let failed: Vec<_> = entries
            .iter()
            .filter(|e| e.step == Step::Topology && e.result == Outcome::Failed)
            .collect();
        assert_eq!(failed.len(), 1);
        assert!(failed[0]
            .detail
            .as_deref()
            .unwrap()
            .starts_with("binding events -> q (key #): "));

        // Run again: what was created stays, the rest is created, and both services move.
        let report = apply_events(&mut backend, &journal, true).unwrap();
        assert!(report.succeeded(), "{report:?}");
        let new = &backend.world().brokers[1];
        assert_eq!(new.exchanges.len(), 1);
        assert_eq!(new.bindings.len(), 1);
    }
}
