//! A three-wave migration for unit tests, run through the [`MemoryBackend`] the way `warren
//! apply` and `warren rollback` run it (read, plan, schedule, resume from the journal, execute),
//! and a sweep that injects every kind of fault at every backend call of such a run.
//!
//! The chain: `p1` and `p2` publish to `q1`; `m1` and `m2` consume `q1` and publish to `q2`;
//! `s1` and `s2` consume `q2`; `other` points at neither broker. Both brokers hold messages in
//! both queues (with consumers), so apply drains the old broker's queues before waves 2 and 3
//! and rollback drains the new broker's. Some rollouts are seen in progress before they end.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use super::{Fault, MemoryBackend, Script, Verb};
use crate::backend::{Backend, ReadScope};
use crate::config::Config;
use crate::error::Result;
use crate::executor::{self, Options, Report};
use crate::journal::Journal;
use crate::model::World;
use crate::plan::Brokers;
use crate::progress::Progress;

const PLAN: &str = r#"
[migration]
name = "chain"

[brokers.old]
id = "b-old"
[brokers.new]
id = "b-new"

[[services]]
cluster = "c"
name = "p1"
broker = "new"
publishes = ["q1"]

[[services]]
cluster = "c"
name = "p2"
broker = "new"
publishes = ["q1"]

[[services]]
cluster = "c"
name = "m1"
broker = "new"
consumes = ["q1"]
publishes = ["q2"]

[[services]]
cluster = "c"
name = "m2"
broker = "new"
consumes = ["q1"]
publishes = ["q2"]

[[services]]
cluster = "c"
name = "s1"
broker = "new"
consumes = ["q2"]

[[services]]
cluster = "c"
name = "s2"
broker = "new"
consumes = ["q2"]
"#;

/// The services that move, in wave order.
pub const MOVING: [&str; 6] = ["p1", "p2", "m1", "m2", "s1", "s2"];

/// The chain's plan file.
#[must_use]
pub fn config() -> Config {
    Config::parse(Path::new("chain.toml"), PLAN.to_owned()).expect("the chain's plan is valid")
}

/// The chain's plan file with `strategy = "federate"` (and the old broker's AMQP URL named,
/// which federation needs; a simulated broker never reads it).
#[must_use]
pub fn federate_config() -> Config {
    let text = PLAN
        .replace(
            "name = \"chain\"\n",
            "name = \"chain\"\nstrategy = \"federate\"\n",
        )
        .replace(
            "id = \"b-old\"\n",
            "id = \"b-old\"\namqp_url_env = \"CHAIN_OLD_AMQP_URL\"\n",
        );
    Config::parse(Path::new("chain.toml"), text).expect("the federate chain's plan is valid")
}

/// The chain's world before anything moved: every moving service on revision 1, pointing at
/// the old broker.
#[must_use]
pub fn world() -> World {
    let queues = |q1: u64, q2: u64| {
        serde_json::json!([
            {"name": "q1", "messages": q1, "consumers": 1},
            {"name": "q2", "messages": q2, "consumers": 1},
        ])
    };
    let mut services = Vec::new();
    let mut task_definitions = Vec::new();
    for name in MOVING {
        services.push(serde_json::json!({"name": name, "task_definition": format!("{name}:1"), "desired": 1, "running": 1}));
        task_definitions.push(serde_json::json!({
            "family": name, "revision": 1, "status": "ACTIVE",
            "containers": [{"name": "app", "image": format!("{name}:latest"),
                "environment": {"SPRING_RABBITMQ_HOST": "old.mq.test", "LOG_LEVEL": "INFO"}}],
        }));
    }
    services.push(serde_json::json!({"name": "other", "task_definition": "other:1"}));
    task_definitions.push(serde_json::json!({
        "family": "other", "revision": 1,
        "containers": [{"name": "app", "environment": {"DATABASE_HOST": "db.test"}}],
    }));
    serde_json::from_value(serde_json::json!({
        "version": 1,
        "brokers": [
            {"id": "b-old", "endpoints": ["amqps://old.mq.test:5671"], "queues": queues(4, 3)},
            {"id": "b-new", "endpoints": ["amqps://new.mq.test:5671"], "queues": queues(2, 5)},
        ],
        "clusters": [{"name": "c", "services": services}],
        "task_definitions": task_definitions,
        "schedules": schedules(),
    }))
    .expect("the chain's world is a world")
}

/// The chain's scheduled tasks: a rule target on a custom bus pinning `m1:1` and a Scheduler
/// schedule pinning `s2:1` (both retargeted, their overrides rewritten), a rule on the bare
/// family `p1` (it follows the latest revision) and one pinning `other:1` (nothing moves it).
fn schedules() -> serde_json::Value {
    serde_json::json!([
        {"name": "m1-nightly", "kind": "rule", "bus": "jobs", "target": "t1", "cluster": "c",
         "task_definition": "m1:1",
         "overrides": {"app": {"SPRING_RABBITMQ_HOST": "old.mq.test", "MODE": "batch"}}},
        {"name": "s2-hourly", "kind": "schedule", "group": "ops", "cluster": "c",
         "task_definition": "s2:1",
         "overrides": {"app": {"RABBIT_URL": "amqps://job:pa/ss@old.mq.test:5671"}}},
        {"name": "p1-any", "cluster": "c", "task_definition": "p1"},
        {"name": "other-daily", "cluster": "c", "task_definition": "other:1"},
    ])
}

/// A backend holding [`world`], whose rollouts of `p1`, `m2` and `s1` are seen in progress
/// once or twice before they complete, and whose crashes cut back the journal at `journal`.
#[must_use]
pub fn backend(journal: &Path) -> MemoryBackend {
    MemoryBackend::new(world())
        .script("c", "p1", Script::Complete { after: 1 })
        .script("c", "m2", Script::Complete { after: 2 })
        .script("c", "s1", Script::Complete { after: 1 })
        .journal(journal)
}

/// Generous limits: with a zero poll interval no run comes near them.
const OPTIONS: Options = Options {
    drain_timeout: Duration::from_secs(3600),
    rollout_timeout: Duration::from_secs(3600),
    wave_check: None,
    link_check: Options::LINK_CHECK,
    stall: Options::STALL,
};

/// Everything a run reads or writes besides the world: its journal.
pub type Run = fn(&mut MemoryBackend, &Journal) -> Result<Report>;

/// `warren apply chain.toml`: read, plan, schedule, resume what the journal says is in flight,
/// execute.
///
/// # Errors
/// Whatever the backend or the journal fails with.
pub fn apply(backend: &mut MemoryBackend, journal: &Journal) -> Result<Report> {
    apply_with(backend, journal, OPTIONS)
}

/// As [`apply`], with other limits (a check after each wave, say).
///
/// # Errors
/// Whatever the backend or the journal fails with.
pub fn apply_with(
    backend: &mut MemoryBackend,
    journal: &Journal,
    options: Options,
) -> Result<Report> {
    apply_config(&config(), backend, journal, options)
}

/// [`apply`] of the [`federate_config`] plan.
///
/// # Errors
/// Whatever the backend or the journal fails with.
pub fn apply_federated(backend: &mut MemoryBackend, journal: &Journal) -> Result<Report> {
    apply_config(&federate_config(), backend, journal, OPTIONS)
}

/// [`rollback`] of the [`federate_config`] plan.
///
/// # Errors
/// Whatever the backend or the journal fails with.
pub fn rollback_federated(backend: &mut MemoryBackend, journal: &Journal) -> Result<Report> {
    rollback_config(&federate_config(), backend, journal)
}

/// `warren apply` of `config` with `options`.
///
/// # Errors
/// Whatever the backend or the journal fails with.
pub fn apply_config(
    config: &Config,
    backend: &mut MemoryBackend,
    journal: &Journal,
    options: Options,
) -> Result<Report> {
    let world = backend.read(&ReadScope::default())?;
    let plan = crate::plan::make(config, &world)?;
    crate::precondition::preconditions(&plan, &world)?;
    let (schedule, _) = executor::schedule(&plan, &world)?;
    let entries = journal.entries(&plan.migration)?;
    let schedule = schedule.resuming(&entries.list, &world);
    executor::execute(
        &schedule,
        &plan.brokers,
        backend,
        journal,
        options,
        &mut Progress::quiet(),
    )
}

/// `warren rollback chain.toml`: read the journal and the world, schedule the way back, resume
/// what the journal says is in flight, execute.
///
/// # Errors
/// Whatever the backend or the journal fails with.
pub fn rollback(backend: &mut MemoryBackend, journal: &Journal) -> Result<Report> {
    rollback_config(&config(), backend, journal)
}

fn rollback_config(
    config: &Config,
    backend: &mut MemoryBackend,
    journal: &Journal,
) -> Result<Report> {
    let entries = journal.entries(&config.migration.name)?;
    let world = backend.read(&ReadScope::default())?;
    config.check_against(&world)?;
    let [old, new] = crate::discovery::resolve_brokers(config, &world);
    let brokers = Brokers { old, new };
    let (schedule, _) = crate::rollback::schedule(config, &world, &brokers, &entries.list)?;
    let schedule = schedule.resuming(&entries.list, &world);
    executor::execute(
        &schedule,
        &brokers,
        backend,
        journal,
        OPTIONS,
        &mut Progress::quiet(),
    )
}

/// The revision each service of `world` runs, by `cluster/service`.
#[must_use]
pub fn placement(world: &World) -> BTreeMap<String, String> {
    world
        .clusters
        .iter()
        .flat_map(|c| {
            c.services
                .iter()
                .map(move |s| (format!("{}/{}", c.name, s.name), s.task_definition.clone()))
        })
        .collect()
}

/// The registered revisions of each family of `world`.
#[must_use]
pub fn revisions(world: &World) -> BTreeMap<String, Vec<u32>> {
    let mut out: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for td in &world.task_definitions {
        out.entry(td.family.clone()).or_default().push(td.revision);
    }
    out
}

/// A state a run starts from: the backend (world, rollouts under way) and the journal's text.
#[derive(Debug, Clone)]
pub struct Start {
    pub backend: MemoryBackend,
    pub journal: String,
}

impl Start {
    /// The chain before anything moved, with an empty journal.
    #[must_use]
    pub fn fresh() -> Start {
        Start {
            backend: backend(Path::new("unused")),
            journal: String::new(),
        }
    }

    /// A copy of this state in folder `dir`: its backend and its journal.
    fn copy_in(&self, dir: &Path) -> (MemoryBackend, Journal) {
        let path = dir.join("warren-journal.jsonl");
        std::fs::write(&path, &self.journal).expect("write the journal copy");
        (self.backend.clone().journal(&path), Journal::new(&path))
    }

    /// Runs `run` from this state without faults and returns the state it ends in.
    ///
    /// # Panics
    /// When the run does not succeed.
    #[must_use]
    pub fn after(&self, run: Run) -> Start {
        let dir = scratch();
        let (mut backend, journal) = self.copy_in(dir.path());
        let report = run(&mut backend, &journal).expect("an uninterrupted run");
        assert!(report.succeeded(), "an uninterrupted run: {report:?}");
        backend.restart().expect("no crash to repair");
        Start {
            backend,
            journal: std::fs::read_to_string(journal.path()).expect("read the journal"),
        }
    }
}

/// A temporary folder, in memory where the system has one: a sweep appends (and syncs)
/// thousands of journal lines.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().expect("a temporary folder")
}

/// One fault point: the `nth` call of `verb` in a run, and what goes wrong there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultPoint {
    pub verb: Verb,
    pub nth: usize,
    pub fault: Fault,
}

impl fmt::Display for FaultPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} at {} call {}", self.fault, self.verb, self.nth)
    }
}

/// What a sweep found.
#[derive(Debug, Default)]
pub struct Sweep {
    /// Every fault point tried.
    pub points: Vec<FaultPoint>,
    /// Each fault point whose re-run did not converge, and how.
    pub failures: Vec<String>,
}

impl Sweep {
    /// Says how many fault points `what` was tried at, and fails the test unless there were
    /// at least 60 and every one converged.
    pub fn assert_converged(&self, what: &str) {
        eprintln!("{what}: {} fault points", self.points.len());
        assert!(
            self.points.len() >= 60,
            "{} fault points",
            self.points.len()
        );
        assert!(
            self.failures.is_empty(),
            "{} of {} fault points did not converge:\n{}",
            self.failures.len(),
            self.points.len(),
            self.failures.join("\n")
        );
    }
}

/// Runs `run` from `start` once per fault point (every kind of fault at every backend call an
/// uninterrupted run makes), then restarts and runs it again with no fault; the re-run must
/// succeed and end exactly where an uninterrupted run ends: the same world (services on the
/// same revisions, no revision registered twice, queues drained), no rollout left unwatched,
/// and a journal that reads back whole. `then`, if given, runs after each re-run and must end
/// where it ends after an uninterrupted run too (a rollback after an apply, say).
#[must_use]
pub fn sweep(start: &Start, run: Run, then: Option<Run>) -> Sweep {
    let end = start.after(run);
    let end_then = then.map(|then| end.after(then));
    let calls: Vec<(Verb, usize)> = {
        let dir = scratch();
        let (mut backend, journal) = start.copy_in(dir.path());
        run(&mut backend, &journal).expect("an uninterrupted run");
        backend.calls().to_vec()
    };
    let mut out = Sweep::default();
    for (verb, nth) in calls {
        for fault in Fault::ALL {
            let point = FaultPoint { verb, nth, fault };
            out.points.push(point);
            if let Err(why) = one_point(start, run, point, &end, then.zip(end_then.as_ref())) {
                out.failures.push(format!("{point}: {why}"));
            }
        }
    }
    out
}

fn one_point(
    start: &Start,
    run: Run,
    point: FaultPoint,
    end: &Start,
    then: Option<(Run, &Start)>,
) -> std::result::Result<(), String> {
    let dir = scratch();
    let (mut backend, journal) = start.copy_in(dir.path());
    backend.inject(point.verb, point.nth, point.fault);
    let first = run(&mut backend, &journal);
    if !backend.fired() {
        return Err("the fault was never reached".into());
    }
    if let Ok(report) = &first {
        if report.succeeded() {
            return Err(format!("the faulty run reported success: {report:?}"));
        }
    }
    backend.restart().map_err(|e| e.to_string())?;
    let second = run(&mut backend, &journal).map_err(|e| format!("the re-run failed: {e}"))?;
    if !second.succeeded() {
        return Err(format!("the re-run did not succeed: {second:?}"));
    }
    converged(&backend, &journal, &end.backend, "the re-run")?;
    if let Some((then, end_then)) = then {
        backend.restart().map_err(|e| e.to_string())?;
        let report =
            then(&mut backend, &journal).map_err(|e| format!("the next run failed: {e}"))?;
        if !report.succeeded() {
            return Err(format!("the next run did not succeed: {report:?}"));
        }
        converged(&backend, &journal, &end_then.backend, "the next run")?;
    }
    Ok(())
}

/// Whether `backend` ended where `expected` did, with a journal that reads back whole.
fn converged(
    backend: &MemoryBackend,
    journal: &Journal,
    expected: &MemoryBackend,
    what: &str,
) -> std::result::Result<(), String> {
    let (now, wanted) = (backend.world(), expected.world());
    if placement(now) != placement(wanted) {
        return Err(format!(
            "after {what} services run {:?}, not {:?}",
            placement(now),
            placement(wanted)
        ));
    }
    if revisions(now) != revisions(wanted) {
        return Err(format!(
            "after {what} the revisions are {:?}, not {:?} (a duplicate was registered)",
            revisions(now),
            revisions(wanted)
        ));
    }
    if now != wanted {
        return Err(format!(
            "after {what} the world differs from an uninterrupted run's"
        ));
    }
    let underway = backend.rollouts_underway();
    if !underway.is_empty() {
        return Err(format!(
            "after {what} nobody watched the rollouts of {underway:?} to their end"
        ));
    }
    let entries = journal
        .entries("chain")
        .map_err(|e| format!("the journal does not read back: {e}"))?;
    if let Some(torn) = entries.torn {
        return Err(format!("the journal is torn: {torn}"));
    }
    Ok(())
}
