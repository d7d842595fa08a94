//! `warren rollback`: puts the services apply moved back on the revisions they ran before.

use super::{
    confirm, migration_of, options, refuse_without_terminal, run_schedule, Output, Session,
};
use crate::backend::ReadScope;
use crate::cli::RollbackArgs;
use crate::config::Config;
use crate::discovery;
use crate::error::Result;
use crate::plan::Brokers;
use crate::render;

pub fn run(args: &RollbackArgs, output: Output) -> Result<u8> {
    refuse_without_terminal(&args.change, "rollback")?;
    let config = Config::load(&args.plan)?;
    let migration = migration_of(&config, &args.plan, args.record.lock_table.as_deref());
    let mut session = Session::changing(migration, &args.world, &args.record, "rollback", output)?;
    let entries = session.entries()?;
    // The revisions services go back on are no longer what they run: read them too (on AWS
    // the read sees only the revisions services and their deployments run now).
    let scope = ReadScope {
        task_definitions: crate::rollback::moved_by_apply(&entries.list)
            .into_values()
            .map(|(from, _)| from)
            .collect(),
        // Scheduled tasks apply retargeted are read too (on AWS, with everything decommission
        // reads), so that rollback can put them back.
        everything: !crate::rollback::retargeted_by_apply(&entries.list).is_empty(),
        ..ReadScope::default()
    };
    let world = session.read(&scope, |w| discovery::resolve_brokers(&config, w).to_vec())?;
    config.check_against(&world)?;
    let [old, new] = discovery::resolve_brokers(&config, &world);
    let brokers = Brokers { old, new };
    let (schedule, skipped) = crate::rollback::schedule(&config, &world, &brokers, &entries.list)?;
    // Rollouts an interrupted rollback (or apply) started are awaited before anything else.
    let schedule = schedule.resuming(&entries.list, &world);
    let moves: usize = schedule.waves.iter().map(Vec::len).sum::<usize>()
        + schedule.in_flight.len()
        + schedule.retargets.len()
        + schedule.undeclare.len();
    if moves == 0 {
        print!(
            "{}",
            render::report::nothing_to_roll_back(session.journal().path(), &skipped)
        );
        return Ok(0);
    }
    if !args.change.auto_approve {
        print!(
            "{}",
            render::report::rollback_preview(&schedule, output.palette)
        );
        confirm(false, "roll these services back")?;
    }
    run_schedule(
        &mut session,
        &schedule,
        &brokers,
        options(&args.change),
        skipped,
        "Rollback",
    )
}
