//! `apply` and `rollback` killed (SIGKILL) at every step their journal records, on a rehearsal
//! world: each kill waits until the journal file shows its step, then the same command is run
//! again and must end exactly where an uninterrupted run ends: the same world file (services on
//! the same revisions, no revision registered twice, queues drained, no rollout left open), a
//! journal of whole lines, and the lock released.
//!
//! The migration is a three-wave chain with drains between the waves; every rollout takes
//! [`ROLLOUT_SECONDS`], so that the run is still under way when the kill lands. A kill lands as
//! soon as the journal shows the step (polled every few milliseconds), before the run's next
//! slow wait ends; where the killed run actually stopped is reported with any failure.

mod common;

use std::os::unix::process::ExitStatusExt as _;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{
    new_broker, old_broker, pretty, revisions, Declared, Plan, Queue, Scenario, Service, TaskDef,
    World, JOURNAL, OLD_HOST,
};
use serde_json::Value;

const C: &str = "c";
const SERVICES: [&str; 3] = ["ingest", "enrich", "store"];
/// How long each rollout takes in the rehearsal world.
const ROLLOUT_SECONDS: f64 = 0.3;
/// Kill points tried side by side.
const AT_ONCE: usize = 6;

/// `ingest` publishes to `q.raw`; `enrich` consumes it and publishes to `q.enriched`; `store`
/// consumes that. Both brokers hold messages in both queues, with consumers: apply drains the
/// old broker's before waves 2 and 3, rollback the new broker's.
fn chain() -> (Plan, World) {
    let busy = |name: &str, messages: u64| Queue::new(name).messages(messages).consumers(1);
    let mut world = World::new()
        .broker(
            old_broker()
                .queue(busy("q.raw", 4))
                .queue(busy("q.enriched", 3)),
        )
        .broker(
            new_broker()
                .queue(busy("q.raw", 2))
                .queue(busy("q.enriched", 5)),
        );
    for name in SERVICES {
        world = world
            .service(
                C,
                Service::new(name, &format!("{name}:1")).rollout_seconds(ROLLOUT_SECONDS),
            )
            .task_definition(
                TaskDef::new(name, 1)
                    .container("app")
                    .env("SPRING_RABBITMQ_HOST", OLD_HOST),
            );
    }
    let plan = Plan::new()
        .service(Declared::new(C, "ingest").publishes(&["q.raw"]))
        .service(
            Declared::new(C, "enrich")
                .consumes(&["q.raw"])
                .publishes(&["q.enriched"]),
        )
        .service(Declared::new(C, "store").consumes(&["q.enriched"]));
    (plan, world)
}

/// A world file and a journal, as a run starts from them or leaves them.
#[derive(Debug, Clone)]
struct State {
    world: Value,
    journal: Vec<Value>,
}

/// What uninterrupted runs leave: after `apply`, then after `rollback`.
struct Reference {
    plan: String,
    before: State,
    applied: State,
    rolled_back: State,
}

fn state(s: &Scenario) -> State {
    State {
        world: s.world_json(),
        journal: s.journal(),
    }
}

fn reference() -> &'static Reference {
    static REFERENCE: OnceLock<Reference> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let (plan, world) = chain();
        let s = Scenario::new(&plan, &world);
        let before = state(&s);
        s.warren(&args("apply")).assert().success();
        let applied = state(&s);
        s.warren(&args("rollback")).assert().success();
        let rolled_back = state(&s);
        Reference {
            plan: plan.to_toml(),
            before,
            applied,
            rolled_back,
        }
    })
}

/// The command line of a run: the same for the killed run and the re-run. The drain timeout is
/// far above what a drain takes here (two looks), even on a machine busy with other builds.
fn args(command: &str) -> Vec<&str> {
    vec![
        command,
        "plan.toml",
        "--world",
        "world.json",
        "--auto-approve",
        "--drain-timeout",
        "60",
    ]
}

/// A journal step, as a person reads it: `update ok of c/enrich (wave 2)`.
fn describe(entry: &Value) -> String {
    let mut out = format!(
        "{} {}",
        entry["step"].as_str().unwrap_or("?"),
        entry["result"].as_str().unwrap_or("?")
    );
    if let Some(service) = entry["service"].as_str() {
        out.push_str(&format!(" of {C}/{service}"));
    }
    if let Some(queue) = entry["queue"].as_str() {
        out.push_str(&format!(" of {queue}"));
    }
    if let Some(wave) = entry["wave"].as_u64() {
        out.push_str(&format!(" (wave {wave})"));
    }
    out
}

/// Whether `entry` records the same step as `expected` (times aside).
fn same_step(entry: &Value, expected: &Value) -> bool {
    [
        "step",
        "result",
        "service",
        "queue",
        "wave",
        "to_task_definition",
    ]
    .iter()
    .all(|key| entry[key] == expected[key])
}

/// One kill point: `command` run from `start`, killed once its journal shows `step` (the
/// `index`-th entry this run writes); then `command` again, which must end in `end`.
struct KillPoint<'a> {
    command: &'static str,
    start: &'a State,
    index: usize,
    step: &'a Value,
    last: bool,
    end: &'a State,
}

impl KillPoint<'_> {
    fn name(&self) -> String {
        format!(
            "{} killed at step {} ({})",
            self.command,
            self.index + 1,
            describe(self.step)
        )
    }

    /// Runs the kill point. `Ok` says how many entries the killed run had written when it died;
    /// `Err` says how the re-run failed to converge.
    fn run(&self) -> Result<usize, String> {
        let s = Scenario::from_texts(&reference().plan, &pretty(&self.start.world));
        let lines: Vec<String> = self.start.journal.iter().map(Value::to_string).collect();
        if !lines.is_empty() {
            s.write(JOURNAL, &(lines.join("\n") + "\n"));
        }
        let base = self.start.journal.len();

        let output =
            |name: &str| std::fs::File::create(s.path(name)).map_err(|e| format!("{name}: {e}"));
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_warren"))
            .current_dir(s.dir())
            .args(args(self.command))
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(output("killed.stdout")?)
            .stderr(output("killed.stderr")?)
            .spawn()
            .map_err(|e| format!("start warren: {e}"))?;
        let said = || {
            format!(
                "{}{}",
                std::fs::read_to_string(s.path("killed.stdout")).unwrap_or_default(),
                std::fs::read_to_string(s.path("killed.stderr")).unwrap_or_default()
            )
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let journal = s.journal_so_far();
            if let Some(entry) = journal.get(base + self.index) {
                if !same_step(entry, self.step) {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "the journal showed {} where an uninterrupted run had {}",
                        describe(entry),
                        describe(self.step)
                    ));
                }
                break;
            }
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!(
                    "the run ended ({status}) before its journal showed the step; it said:\n{}",
                    said()
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("the journal did not show the step within a minute".into());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().map_err(|e| format!("SIGKILL: {e}"))?;
        let status = child.wait().map_err(|e| e.to_string())?;
        let killed = status.signal() == Some(9);
        if !killed && !self.last {
            return Err(format!(
                "the run finished ({status}) before the kill landed"
            ));
        }
        let at_death = whole_journal(&s).map_err(|e| format!("after the kill, {e}"))?;
        let landed = at_death
            .last()
            .map_or_else(|| "nothing".to_owned(), describe);

        let again = s
            .warren(&args(self.command))
            .output()
            .map_err(|e| e.to_string())?;
        let context = || {
            format!(
                "(the killed run's last entry: {landed}; the re-run said: {}{})",
                String::from_utf8_lossy(&again.stdout),
                String::from_utf8_lossy(&again.stderr)
            )
        };
        if again.status.code() != Some(0) {
            return Err(format!("the re-run exited {} {}", again.status, context()));
        }
        let world = s.world_json();
        for name in SERVICES {
            if revisions(&world, name) != revisions(&self.end.world, name) {
                return Err(format!(
                    "{name} has revisions {:?}, not {:?}: a duplicate was registered {}",
                    revisions(&world, name),
                    revisions(&self.end.world, name),
                    context()
                ));
            }
        }
        if world != self.end.world {
            return Err(format!(
                "the world differs from an uninterrupted run's {}:\n{}",
                context(),
                pretty(&world)
            ));
        }
        whole_journal(&s).map_err(|e| format!("after the re-run, {e}"))?;
        let locks: Vec<String> = std::fs::read_dir(s.dir())
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".lock"))
            .collect();
        if !locks.is_empty() {
            return Err(format!("the lock was not released: {locks:?}"));
        }
        Ok(at_death.len() - base)
    }
}

/// The journal's entries, when every line is one whole JSON object.
fn whole_journal(s: &Scenario) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(s.path(JOURNAL)).unwrap_or_default();
    text.lines()
        .enumerate()
        .map(|(i, line)| match serde_json::from_str::<Value>(line) {
            Ok(entry) if entry.is_object() => Ok(entry),
            _ => Err(format!("journal line {} is not an entry: {line}", i + 1)),
        })
        .collect()
}

/// Every step of the uninterrupted run from `start` to `end` is a kill point; they run
/// [`AT_ONCE`] at a time. Returns how many there were, and panics naming every one that did not
/// converge.
fn kill_at_every_step(command: &'static str, start: &State, end: &State) -> usize {
    let steps = &end.journal[start.journal.len()..];
    let points: Vec<KillPoint> = steps
        .iter()
        .enumerate()
        .map(|(index, step)| KillPoint {
            command,
            start,
            index,
            step,
            last: index + 1 == steps.len(),
            end,
        })
        .collect();
    let mut failures = Vec::new();
    let mut landed = Vec::new();
    for batch in points.chunks(AT_ONCE) {
        std::thread::scope(|scope| {
            let running: Vec<_> = batch
                .iter()
                .map(|point| (point, scope.spawn(|| point.run())))
                .collect();
            for (point, handle) in running {
                match handle.join() {
                    Ok(Ok(written)) => landed.push(written),
                    Ok(Err(why)) => failures.push(format!("{}: {why}", point.name())),
                    Err(_) => failures.push(format!("{}: panicked", point.name())),
                }
            }
        });
    }
    assert!(
        failures.is_empty(),
        "{} of {} kill points did not converge:\n{}",
        failures.len(),
        points.len(),
        failures.join("\n\n")
    );
    landed.sort_unstable();
    landed.dedup();
    eprintln!(
        "{command}: {} kill points converged; the killed runs had written {landed:?} of {} entries",
        points.len(),
        steps.len()
    );
    points.len()
}

#[test]
fn the_uninterrupted_runs_move_every_wave_and_back() {
    let r = reference();
    for name in SERVICES {
        assert_eq!(
            common::running(&r.applied.world, C, name),
            format!("{name}:2")
        );
        assert_eq!(
            common::running(&r.rolled_back.world, C, name),
            format!("{name}:1")
        );
        assert_eq!(revisions(&r.rolled_back.world, name), vec![1, 2]);
    }
    let drains = |journal: &[Value]| journal.iter().filter(|e| e["step"] == "drain").count();
    assert_eq!(drains(&r.applied.journal), 2, "q.raw and q.enriched drain");
    assert_eq!(
        drains(&r.rolled_back.journal) - 2,
        2,
        "and drain again on the new broker before rollback's consumers"
    );
    let steps = (r.applied.journal.len() - r.before.journal.len())
        + (r.rolled_back.journal.len() - r.applied.journal.len());
    assert!(steps >= 20, "{steps} journal steps to kill at");
}

#[test]
fn apply_killed_at_every_journal_step_converges_on_rerun() {
    let r = reference();
    let points = kill_at_every_step("apply", &r.before, &r.applied);
    assert!(points >= 15, "{points} kill points");
}

#[test]
fn rollback_killed_at_every_journal_step_converges_on_rerun() {
    let r = reference();
    let points = kill_at_every_step("rollback", &r.applied, &r.rolled_back);
    assert!(points >= 9, "{points} kill points");
}
