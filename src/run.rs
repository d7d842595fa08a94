//! Runs a parsed command line: loads and validates input, calls the core, renders the result.
//! The only place besides `main` that knows about stdout, stderr, terminals and exit codes.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use crate::apply::{self, Options, Report, Schedule, Skipped};
use crate::backend::aws::lock::TableLock;
use crate::backend::aws::Aws;
use crate::backend::broker as live;
use crate::backend::rehearsal::Rehearsal;
use crate::backend::{Backend, ReadScope};
use crate::cli::{
    ApplyArgs, Cli, Command, DecommissionArgs, PlanArgs, PlanFormat, ReportFormat, RollbackArgs,
    SnapshotArgs, StatusArgs, UnlockArgs, WorldArg,
};
use crate::config::Config;
use crate::discovery;
use crate::error::{Error, Result};
use crate::guard::{self, Decision};
use crate::journal::{Entry, Journal, Outcome, Step};
use crate::lock::{self, Lock};
use crate::model::World;
use crate::plan::{self, Plan, SavedPlan};
use crate::progress::Progress;
use crate::render::{self, Palette};

/// Runs `cli` and returns the exit code of a command that did not fail.
///
/// # Errors
/// Whatever stopped the command; [`Error::exit_code`] says how the process ends.
pub fn run(cli: Cli) -> Result<u8> {
    VERBOSITY.store(cli.global.verbose.min(2), Ordering::Relaxed);
    let palette = Palette::new(
        !cli.global.no_color
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::io::stdout().is_terminal(),
    );
    match cli.command {
        Command::Plan(args) => plan(&args, palette),
        Command::Apply(args) => apply(&args, palette),
        Command::Decommission(args) => decommission(&args),
        Command::Status(args) => status(&args, palette),
        Command::Rollback(args) => rollback(&args, palette),
        Command::Unlock(args) => unlock(&args),
        Command::Snapshot(args) => snapshot(&args),
    }
}

/// The backend a command runs against (the world file, or AWS), and the file its journal and
/// lock sit beside (the world file, or the plan on AWS).
fn backend(
    world: &WorldArg,
    plan: &Path,
    region: Option<&str>,
) -> Result<(Box<dyn Backend>, PathBuf)> {
    match &world.path {
        Some(path) => Ok((Box::new(Rehearsal::new(path)), path.clone())),
        None => Ok((Box::new(Aws::connect(region)?), plan.to_owned())),
    }
}

fn scope_of(config: &Config) -> ReadScope {
    ReadScope {
        clusters: config
            .migration
            .clusters
            .as_ref()
            .map(|cs| cs.iter().map(|c| c.value.clone()).collect()),
        everything: false,
        parameters: crate::precondition::mapped_parameters(&config.parameters),
    }
}

/// Reads the state, then the queues, bindings and connections of the plan's brokers that the
/// backend could not see, from the brokers themselves where the plan gives a management URL.
fn read_world(backend: &mut dyn Backend, scope: &ReadScope, config: &Config) -> Result<World> {
    let mut world = read_state(backend, scope)?;
    for broker in discovery::resolve_brokers(config, &world) {
        live::read_topology(&mut world, &broker)?;
    }
    Ok(world)
}

/// How much `-v` asked for: 0, 1 or 2.
static VERBOSITY: AtomicU8 = AtomicU8::new(0);

/// Reads the state through `backend`; with `-v`, says what was read and how long it took, with
/// `-vv` also every service and the task definition it runs.
fn read_state(backend: &mut dyn Backend, scope: &ReadScope) -> Result<World> {
    let started = std::time::Instant::now();
    let world = backend.read(scope)?;
    let verbosity = VERBOSITY.load(Ordering::Relaxed);
    if verbosity >= 1 {
        let services: usize = world.clusters.iter().map(|c| c.services.len()).sum();
        eprintln!(
            "Read {} cluster(s), {services} service(s), {} task definition(s), {} parameter(s), {} broker(s) and {} schedule(s) from {} in {} ms.",
            world.clusters.len(),
            world.task_definitions.len(),
            world.parameters.len(),
            world.brokers.len(),
            world.schedules.len(),
            backend.describe(),
            started.elapsed().as_millis()
        );
    }
    if verbosity >= 2 {
        for cluster in &world.clusters {
            for service in &cluster.services {
                eprintln!(
                    "  {}/{} runs {}",
                    cluster.name, service.name, service.task_definition
                );
            }
        }
    }
    Ok(world)
}

fn lock_path(anchor: &Path, migration: &str) -> PathBuf {
    lock::path_for(anchor.parent().unwrap_or_else(|| Path::new("")), migration)
}

/// A held migration lock; dropping it releases it.
enum Held {
    File(Lock),
    Table(TableLock),
}

impl Held {
    /// Who holds it: this process.
    fn holder(&self) -> &crate::lock::Holder {
        match self {
            Held::File(lock) => &lock.holder,
            Held::Table(lock) => &lock.holder,
        }
    }
}

/// Where a command's lock lives: a DynamoDB table on AWS when one is named, else a file
/// beside `anchor`.
struct LockPlace<'a> {
    anchor: &'a Path,
    table: Option<&'a str>,
    on_aws: bool,
    region: Option<&'a str>,
}

impl<'a> LockPlace<'a> {
    /// The lock place of a command run on `config`'s plan: `--lock-table`, else the plan's
    /// `lock_table`, on AWS; a file beside `anchor` otherwise.
    fn for_plan(
        anchor: &'a Path,
        flag: Option<&'a str>,
        config: &'a Config,
        world: &WorldArg,
    ) -> LockPlace<'a> {
        LockPlace {
            anchor,
            table: flag.or(config.migration.lock_table.as_deref()),
            on_aws: world.path.is_none(),
            region: config.migration.region.as_deref(),
        }
    }
}

fn take_lock(place: &LockPlace<'_>, migration: &str, command: &str) -> Result<Held> {
    let (held, warning) = match place.table.filter(|_| place.on_aws) {
        Some(table) => {
            let runtime = crate::backend::aws::runtime()?;
            let config = crate::backend::aws::load_config(&runtime, place.region)?;
            let client = aws_sdk_dynamodb::Client::new(&config);
            let (lock, warning) = TableLock::acquire(runtime, client, table, migration, command)?;
            (Held::Table(lock), warning)
        }
        None => {
            let (lock, warning) =
                Lock::acquire(&lock_path(place.anchor, migration), migration, command)?;
            (Held::File(lock), warning)
        }
    };
    if let Some(warning) = warning {
        eprintln!("warning: {warning}");
    }
    if VERBOSITY.load(Ordering::Relaxed) >= 1 {
        eprintln!("Took the lock of {migration}: {}.", held.holder());
    }
    Ok(held)
}

fn plan(args: &PlanArgs, palette: Palette) -> Result<u8> {
    let config = Config::load(&args.plan)?;
    let (mut backend, _) = backend(&args.world, &args.plan, config.migration.region.as_deref())?;
    let world = read_world(backend.as_mut(), &scope_of(&config), &config)?;
    let plan = plan::make(&config, &world)?;

    if let Some(out) = &args.out {
        let saved = SavedPlan::new(plan.clone());
        let mut text =
            serde_json::to_string_pretty(&saved).expect("a saved plan always serialises");
        text.push('\n');
        crate::atomic::write(out, text.as_bytes())?;
    }

    let plan_file = args.plan.display().to_string();
    let text = match args.format {
        PlanFormat::Human => render::human::plan(&plan, &plan_file, palette),
        PlanFormat::Json => render::json::plan(&plan),
        PlanFormat::Markdown => render::markdown::plan(&plan, &plan_file),
    };
    print!("{text}");
    if let Some(out) = &args.out {
        let world = args
            .world
            .path
            .as_ref()
            .map(|w| format!(" --world {}", w.display()))
            .unwrap_or_default();
        eprintln!(
            "Saved the plan to {}; apply exactly this plan with: warren apply {}{world}",
            out.display(),
            out.display()
        );
    }

    if args.strict && !plan.unmanaged.is_empty() {
        let ids: Vec<String> = plan.unmanaged.iter().map(plan::Unmanaged::id).collect();
        return Err(Error::Refused(format!(
            "--strict: {} service{} point{} at the old broker but {} not in {}: {}",
            ids.len(),
            if ids.len() == 1 { "" } else { "s" },
            if ids.len() == 1 { "s" } else { "" },
            if ids.len() == 1 { "is" } else { "are" },
            plan_file,
            ids.join(", ")
        )));
    }
    Ok(if args.detailed_exitcode && plan.has_changes() {
        2
    } else {
        0
    })
}

/// Whether `path` holds a saved plan (JSON) rather than a plan file (TOML).
fn is_saved_plan(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

fn load_saved(path: &Path) -> Result<Plan> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    let saved: SavedPlan = serde_json::from_str(&text).map_err(|e| Error::Input {
        file: path.to_owned(),
        line: e.line(),
        column: e.column(),
        key: None,
        message: format!("not a plan saved by `warren plan --out`: {e}"),
    })?;
    if !saved.intact() {
        return Err(Error::Refused(format!(
            "{} was altered after it was saved (its checksum does not match); nothing was changed. Make a new one with `warren plan --out`",
            path.display()
        )));
    }
    if saved.plan.format_version != plan::FORMAT_VERSION {
        return Err(Error::Refused(format!(
            "{} has plan format {}, this warren reads {}; nothing was changed",
            path.display(),
            saved.plan.format_version,
            plan::FORMAT_VERSION
        )));
    }
    Ok(saved.plan)
}

/// Asks for `yes` on a terminal; anything else, or no terminal, refuses.
fn confirm(auto_approve: bool, what: &str) -> Result<()> {
    if auto_approve {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Refused(format!(
            "{what} needs --auto-approve when standard input is not a terminal; nothing was changed"
        )));
    }
    eprint!("\nDo you want to {what}? Only 'yes' will be accepted: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|source| Error::Io {
            path: PathBuf::from("<stdin>"),
            source,
        })?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(Error::Refused(
            "cancelled: the answer was not `yes`, so nothing was changed".into(),
        ))
    }
}

fn options(drain_timeout: u64, rollout_timeout: u64) -> Options {
    Options {
        drain_timeout: Duration::from_secs(drain_timeout),
        rollout_timeout: Duration::from_secs(rollout_timeout),
    }
}

fn journal_for(given: Option<&Path>, anchor: &Path) -> Journal {
    given.map_or_else(|| Journal::beside(anchor), Journal::new)
}

fn apply(args: &ApplyArgs, palette: Palette) -> Result<u8> {
    // Refuse early what can never go ahead, before touching anything.
    if !args.change.auto_approve && !std::io::stdin().is_terminal() {
        return Err(Error::Refused(
            "apply needs --auto-approve when standard input is not a terminal; nothing was changed"
                .into(),
        ));
    }
    let plan_file = args.plan.display().to_string();
    let (plan, world, _lock, mut backend, anchor) = if is_saved_plan(&args.plan) {
        let plan = load_saved(&args.plan)?;
        let (mut backend, anchor) = backend(&args.world, &args.plan, plan.scope.region.as_deref())?;
        let place = LockPlace {
            anchor: &anchor,
            table: args
                .record
                .lock_table
                .as_deref()
                .or(plan.scope.lock_table.as_deref()),
            on_aws: args.world.path.is_none(),
            region: plan.scope.region.as_deref(),
        };
        let lock = take_lock(&place, &plan.migration, "apply")?;
        let mut world = read_state(
            backend.as_mut(),
            &ReadScope {
                clusters: plan.scope.clusters.clone(),
                everything: false,
                parameters: crate::precondition::mapped_parameters(&plan.parameters),
            },
        )?;
        for broker in [&plan.brokers.old, &plan.brokers.new] {
            live::read_topology(&mut world, broker)?;
        }
        let moved = plan
            .fingerprint
            .differences(&plan::fingerprint_now(&world, &plan)?);
        if !moved.is_empty() {
            return Err(Error::Refused(format!(
                "{plan_file} is stale: the state moved since it was saved ({}); nothing was changed. Make a new plan",
                moved.join(", ")
            )));
        }
        crate::precondition::preconditions(&plan, &world)?;
        (plan, world, lock, backend, anchor)
    } else {
        let config = Config::load(&args.plan)?;
        let (mut backend, anchor) =
            backend(&args.world, &args.plan, config.migration.region.as_deref())?;
        let place = LockPlace::for_plan(
            &anchor,
            args.record.lock_table.as_deref(),
            &config,
            &args.world,
        );
        let lock = take_lock(&place, &config.migration.name, "apply")?;
        let world = read_world(backend.as_mut(), &scope_of(&config), &config)?;
        let plan = plan::make(&config, &world)?;
        crate::precondition::preconditions(&plan, &world)?;
        (plan, world, lock, backend, anchor)
    };
    let (mut schedule, skipped) = apply::schedule(&plan, &world)?;
    let journal = journal_for(args.record.journal.as_deref(), &anchor);
    schedule.in_flight = apply::in_flight(&journal.entries(&plan.migration)?, &world)
        .into_iter()
        .filter(|m| !schedule.waves.iter().flatten().any(|w| w.id() == m.id()))
        .collect();
    let moves: usize =
        schedule.waves.iter().map(Vec::len).sum::<usize>() + schedule.in_flight.len();
    if moves == 0 {
        print!("{}", render::report::nothing_to_do(&plan, &skipped));
        return Ok(0);
    }
    if !args.change.auto_approve {
        print!("{}", render::human::plan(&plan, &plan_file, palette));
        confirm(false, "apply these changes")?;
    }
    run_schedule(
        &schedule,
        &plan.brokers,
        backend.as_mut(),
        &journal,
        options(args.change.drain_timeout, args.change.rollout_timeout),
        skipped,
        "Apply",
    )
}

fn run_schedule(
    schedule: &Schedule,
    brokers: &plan::Brokers,
    backend: &mut dyn Backend,
    journal: &Journal,
    options: Options,
    skipped: Vec<Skipped>,
    what: &str,
) -> Result<u8> {
    let mut progress = Progress::stderr();
    let mut report: Report =
        apply::execute(schedule, brokers, backend, journal, options, &mut progress)?;
    report.skipped.extend(skipped);
    print!("{}", render::report::run(&report, what));
    if report.succeeded() {
        Ok(0)
    } else {
        Err(Error::Refused(format!(
            "{what} stopped: {}",
            report.stopped.as_deref().unwrap_or("a step failed")
        )))
    }
}

fn rollback(args: &RollbackArgs, palette: Palette) -> Result<u8> {
    if !args.change.auto_approve && !std::io::stdin().is_terminal() {
        return Err(Error::Refused(
            "rollback needs --auto-approve when standard input is not a terminal; nothing was changed".into(),
        ));
    }
    let config = Config::load(&args.plan)?;
    let (mut backend, anchor) =
        backend(&args.world, &args.plan, config.migration.region.as_deref())?;
    let _lock = take_lock(
        &LockPlace::for_plan(
            &anchor,
            args.record.lock_table.as_deref(),
            &config,
            &args.world,
        ),
        &config.migration.name,
        "rollback",
    )?;
    let world = read_world(backend.as_mut(), &ReadScope::default(), &config)?;
    config.check_against(&world)?;
    let [old, new] = discovery::resolve_brokers(&config, &world);
    let brokers = plan::Brokers { old, new };
    let journal = journal_for(args.record.journal.as_deref(), &anchor);
    let entries = journal.entries(&config.migration.name)?;
    let (schedule, skipped) = crate::rollback::schedule(&config, &world, &brokers, &entries)?;
    let moves: usize = schedule.waves.iter().map(Vec::len).sum();
    if moves == 0 {
        print!(
            "{}",
            render::report::nothing_to_roll_back(journal.path(), &skipped)
        );
        return Ok(0);
    }
    if !args.change.auto_approve {
        print!("{}", render::report::rollback_preview(&schedule, palette));
        confirm(false, "roll these services back")?;
    }
    run_schedule(
        &schedule,
        &brokers,
        backend.as_mut(),
        &journal,
        options(args.change.drain_timeout, args.change.rollout_timeout),
        skipped,
        "Rollback",
    )
}

fn decommission(args: &DecommissionArgs) -> Result<u8> {
    let config = Config::load(&args.plan)?;
    let (mut backend, anchor) =
        backend(&args.world, &args.plan, config.migration.region.as_deref())?;
    let journal = journal_for(args.record.journal.as_deref(), &anchor);
    // Every cluster of the region, every family's latest revision, every schedule.
    let everything = ReadScope {
        clusters: None,
        everything: true,
        parameters: Vec::new(),
    };
    // A broker that cannot be read is a blocker, not an error: decommission fails closed.
    let mut unreadable = Vec::new();
    let world = match read_state(backend.as_mut(), &everything) {
        Ok(mut world) => {
            for broker in discovery::resolve_brokers(&config, &world) {
                if let Err(e) = live::read_topology(&mut world, &broker) {
                    unreadable.push(guard::Blocker {
                        kind: guard::BlockerKind::Unverifiable,
                        detail: e.to_string(),
                    });
                }
            }
            world
        }
        Err(Error::Backend(why)) => {
            let decision = Decision {
                broker: discovery::resolve_broker(&config.old, &crate::model::World::default()).id,
                refused: true,
                blockers: vec![guard::Blocker {
                    kind: guard::BlockerKind::Unverifiable,
                    detail: format!("the state could not be read: {why}"),
                }],
            };
            print!("{}", render_decision(&decision, args.format));
            return Err(Error::Blocked(
                "a check could not be made; nothing was deleted".into(),
            ));
        }
        Err(e) => return Err(e),
    };
    let [old, new] = discovery::resolve_brokers(&config, &world);
    if args.confirm != old.id {
        return Err(Error::Refused(format!(
            "--confirm {} does not match the old broker's id {}; nothing was deleted",
            args.confirm, old.id
        )));
    }
    let _lock = take_lock(
        &LockPlace::for_plan(
            &anchor,
            args.record.lock_table.as_deref(),
            &config,
            &args.world,
        ),
        &config.migration.name,
        "decommission",
    )?;
    let start = std::time::SystemTime::now();
    if old
        .in_world(&world)
        .is_some_and(crate::model::Broker::is_deleted)
    {
        let decision = Decision {
            broker: old.id.clone(),
            refused: false,
            blockers: Vec::new(),
        };
        print!("{}", render_decision(&decision, args.format));
        eprintln!("The old broker {} is already deleted.", old.id);
        return Ok(0);
    }
    let mut blockers = guard::blockers(&world, &old, &new);
    blockers.extend(unreadable);
    if !blockers.is_empty() {
        let decision = Decision {
            broker: old.id.clone(),
            refused: true,
            blockers,
        };
        journal.append(
            &Entry::new(
                &config.migration.name,
                Step::Decommission,
                start,
                Outcome::Refused,
            )
            .detail(format!("{} blocker(s)", decision.blockers.len())),
        )?;
        print!("{}", render_decision(&decision, args.format));
        return Err(Error::Blocked(format!(
            "{} blocker{} still need{} broker {}; nothing was deleted",
            decision.blockers.len(),
            if decision.blockers.len() == 1 {
                ""
            } else {
                "s"
            },
            if decision.blockers.len() == 1 {
                "s"
            } else {
                ""
            },
            old.id
        )));
    }
    if let Err(e) = backend.delete_broker(&old) {
        journal.append(
            &Entry::new(
                &config.migration.name,
                Step::Decommission,
                start,
                Outcome::Failed,
            )
            .detail(e.to_string()),
        )?;
        return Err(e);
    }
    journal.append(
        &Entry::new(
            &config.migration.name,
            Step::Decommission,
            start,
            Outcome::Ok,
        )
        .detail(format!("deleted broker {}", old.id)),
    )?;
    let decision = Decision {
        broker: old.id.clone(),
        refused: false,
        blockers: Vec::new(),
    };
    print!("{}", render_decision(&decision, args.format));
    Ok(0)
}

fn render_decision(decision: &Decision, format: ReportFormat) -> String {
    match format {
        ReportFormat::Human => render::report::decision(decision),
        ReportFormat::Json => {
            let mut text =
                serde_json::to_string_pretty(decision).expect("a decision always serialises");
            text.push('\n');
            text
        }
    }
}

fn status(args: &StatusArgs, palette: Palette) -> Result<u8> {
    let config = Config::load(&args.plan)?;
    let (mut backend, _) = backend(&args.world, &args.plan, config.migration.region.as_deref())?;
    let world = read_world(
        backend.as_mut(),
        &ReadScope {
            clusters: None,
            everything: true,
            parameters: Vec::new(),
        },
        &config,
    )?;
    config.check_against(&world)?;
    let brokers = discovery::resolve_brokers(&config, &world);
    let status = crate::status::status(&config, &world, brokers)?;
    match args.format {
        ReportFormat::Human => print!("{}", render::report::status(&status, palette)),
        ReportFormat::Json => {
            let mut text =
                serde_json::to_string_pretty(&status).expect("a status always serialises");
            text.push('\n');
            print!("{text}");
        }
    }
    Ok(0)
}

fn unlock(args: &UnlockArgs) -> Result<u8> {
    let config = Config::load(&args.plan)?;
    let anchor = args.world.path.clone().unwrap_or_else(|| args.plan.clone());
    let table = args
        .lock_table
        .as_deref()
        .or(config.migration.lock_table.as_deref());
    let holder = match table.filter(|_| args.world.path.is_none()) {
        Some(table) => {
            let runtime = crate::backend::aws::runtime()?;
            let sdk =
                crate::backend::aws::load_config(&runtime, config.migration.region.as_deref())?;
            let client = aws_sdk_dynamodb::Client::new(&sdk);
            crate::backend::aws::lock::unlock(
                &runtime,
                &client,
                table,
                &config.migration.name,
                &args.lock_id,
            )?
        }
        None => lock::unlock(&lock_path(&anchor, &config.migration.name), &args.lock_id)?,
    };
    eprintln!("Removed {holder}.");
    Ok(0)
}

fn snapshot(args: &SnapshotArgs) -> Result<u8> {
    let config = Config::load(&args.plan)?;
    let mut backend = Aws::connect(config.migration.region.as_deref())?;
    let mut world = read_world(
        &mut backend,
        &ReadScope {
            clusters: None,
            everything: true,
            parameters: Vec::new(),
        },
        &config,
    )?;
    world.redact();
    let mut text = serde_json::to_string_pretty(&world).expect("a world always serialises");
    text.push('\n');
    crate::atomic::write(&args.out, text.as_bytes())?;
    let services: usize = world.clusters.iter().map(|c| c.services.len()).sum();
    eprintln!(
        "Wrote {}: {} cluster{}, {services} services, {} task definitions, {} brokers. Rehearse with --world {}",
        args.out.display(),
        world.clusters.len(),
        if world.clusters.len() == 1 { "" } else { "s" },
        world.task_definitions.len(),
        world.brokers.len(),
        args.out.display()
    );
    Ok(0)
}
