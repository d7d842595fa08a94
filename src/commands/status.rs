//! `warren status`: where every service points now, and whether decommission would pass.

use super::clients;
use super::{everything, migration_of, pretty_json, Output, Session};
use crate::cli::{ReportFormat, StatusArgs};
use crate::config::Config;
use crate::discovery;
use crate::error::Result;
use crate::render;
use crate::status::JournalSummary;

pub fn run(args: &StatusArgs, output: Output) -> Result<u8> {
    let config = Config::load(&args.plan)?;
    let mut session = Session::reading(
        migration_of(&config, &args.plan, args.lock_table.as_deref()),
        &args.world,
        output,
    )?;
    // Where every service points: the functions, mappings, pipes and state machines that
    // decommission checks are not reported here, and `status` may run in a loop in the window.
    let scope = crate::backend::ReadScope {
        secrets: config.migration.read_secrets.clone(),
        resources: false,
        ..everything()
    };
    let mut world = session.read(&scope, |w| discovery::resolve_brokers(&config, w).to_vec())?;
    config.check_against(&world)?;
    let brokers = discovery::resolve_brokers(&config, &world);
    let clusters: Option<Vec<String>> = config
        .migration
        .clusters
        .as_ref()
        .map(|cs| cs.iter().map(|c| c.value.clone()).collect());
    // Not knowing whose an unnamed connection is leaves it an unknown client: a warning, not
    // a failed status.
    if let Err(e) = clients::locate(
        session.backend(),
        &mut world,
        &[&brokers[0], &brokers[1]],
        clusters.as_deref(),
    ) {
        eprintln!("warning: connections that name no service stay unknown clients: {e}");
    }
    let mut status = crate::status::status(&config, &world, brokers)?;
    let entries = session.entries()?;
    status.journal = Some(JournalSummary::of(
        session.journal().describe(),
        &entries.list,
    ));
    match args.format {
        ReportFormat::Human => print!("{}", render::report::status(&status, output.palette)),
        ReportFormat::Json => print!("{}", pretty_json(&status)),
    }
    Ok(0)
}
