//! `warren apply`: moves the services of a plan file, or exactly those of a saved plan, wave by
//! wave.

use std::path::Path;

use super::{
    confirm, migration_of, options, refuse_without_terminal, run_schedule, scope_of, Migration,
    Output, Session,
};
use crate::backend::ReadScope;
use crate::cli::ApplyArgs;
use crate::config::Config;
use crate::discovery;
use crate::error::{Error, Result};
use crate::executor;
use crate::model::World;
use crate::plan::{self, Plan, SavedPlan};
use crate::render;

pub fn run(args: &ApplyArgs, output: Output) -> Result<u8> {
    refuse_without_terminal(&args.change, "apply")?;
    let plan_file = args.plan.display().to_string();
    let (plan, world, mut session) = if is_saved_plan(&args.plan) {
        let saved = load_saved(&args.plan)?;
        let migration = Migration {
            name: saved.plan.migration.clone(),
            region: saved.plan.scope.region.clone(),
            lock_table: args
                .record
                .lock_table
                .clone()
                .or_else(|| saved.plan.scope.lock_table.clone()),
            plan_file: saved_anchor(&saved, &args.plan, args.world.path.is_some())?,
        };
        let mut session = Session::changing(migration, &args.world, &args.record, "apply", output)?;
        let plan = saved.plan;
        let world = session.read(
            &ReadScope {
                clusters: plan.scope.clusters.clone(),
                everything: false,
                parameters: crate::precondition::mapped_parameters(&plan.parameters),
                task_definitions: Vec::new(),
                resources: true,
                secrets: plan.scope.read_secrets.clone(),
            },
            |_| vec![plan.brokers.old.clone(), plan.brokers.new.clone()],
        )?;
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
        (plan, world, session)
    } else {
        let config = Config::load(&args.plan)?;
        let migration = migration_of(&config, &args.plan, args.record.lock_table.as_deref());
        let mut session = Session::changing(migration, &args.world, &args.record, "apply", output)?;
        let world = session.read(&scope_of(&config), |w| {
            discovery::resolve_brokers(&config, w).to_vec()
        })?;
        let plan = plan::make(&config, &world)?;
        crate::precondition::preconditions(&plan, &world)?;
        (plan, world, session)
    };
    apply_plan(&mut session, &plan, &world, args, &plan_file)
}

fn apply_plan(
    session: &mut Session,
    plan: &Plan,
    world: &World,
    args: &ApplyArgs,
    plan_file: &str,
) -> Result<u8> {
    let (mut schedule, skipped) = executor::schedule(plan, world)?;
    if args.shovel {
        // After the last wave, what is left in every queue the moved consumers drained.
        for drain in &plan.drains {
            let leftover = plan::Drain {
                wave: None,
                ..drain.clone()
            };
            if !schedule.leftovers.contains(&leftover) {
                schedule.leftovers.push(leftover);
            }
        }
    }
    let entries = session.entries()?;
    let schedule = schedule.resuming(&entries.list, world);
    let moves: usize = schedule.waves.iter().map(Vec::len).sum::<usize>()
        + schedule.in_flight.len()
        + schedule.retargets.len()
        + schedule.undeclare.len();
    if moves == 0 {
        print!("{}", render::report::nothing_to_do(plan, &skipped));
        return Ok(0);
    }
    if !args.change.auto_approve {
        print!(
            "{}",
            render::human::plan(plan, plan_file, session.output().palette)
        );
        confirm(false, "apply these changes")?;
    }
    let options = executor::Options {
        wave_check: (!args.no_wave_check)
            .then(|| std::time::Duration::from_secs(args.wave_check_timeout)),
        link_check: std::time::Duration::from_secs(args.link_check_timeout),
        stall: std::time::Duration::from_secs(args.stall_timeout),
        ..options(&args.change)
    };
    run_schedule(session, &schedule, &plan.brokers, options, skipped, "Apply")
}

/// Whether `path` holds a saved plan (JSON) rather than a plan file (TOML).
fn is_saved_plan(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// The plan file whose journal and lock a saved plan uses on AWS: the one it was made from.
/// With `--world` the world file decides, so any answer does.
fn saved_anchor(saved: &SavedPlan, path: &Path, on_world: bool) -> Result<std::path::PathBuf> {
    match &saved.plan_file {
        None => Ok(path.to_owned()),
        Some(_) if on_world => Ok(path.to_owned()),
        Some(plan_file) => {
            let folder = plan_file.parent().unwrap_or_else(|| Path::new("/"));
            if folder.is_dir() {
                Ok(plan_file.clone())
            } else if saved.plan.scope.lock_table.is_some() {
                // The shared journal in the lock table decides; the local copy goes beside
                // the saved plan.
                Ok(path.to_owned())
            } else {
                Err(Error::Refused(format!(
                    "{} was made from {}, whose folder is not on this machine: the migration's journal and lock live beside it. Apply it from a checkout at that path, or use a lock table (`lock_table`) so the journal is shared; nothing was changed",
                    path.display(),
                    plan_file.display()
                )))
            }
        }
    }
}

fn load_saved(path: &Path) -> Result<SavedPlan> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    SavedPlan::parse(path, &text)
}
