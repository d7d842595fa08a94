//! `warren snapshot`: what AWS shows, without credentials, as a world file for rehearsals.

use super::{everything, migration_of, pretty_json, Output, Session};
use crate::cli::{SnapshotArgs, WorldArg};
use crate::config::Config;
use crate::discovery;
use crate::error::Result;

pub fn run(args: &SnapshotArgs, output: Output) -> Result<u8> {
    let config = Config::load(&args.plan)?;
    let on_aws = WorldArg { path: None };
    let mut session = Session::reading(migration_of(&config, &args.plan, None), &on_aws, output)?;
    let mut world = session.read(&everything(), |w| {
        discovery::resolve_brokers(&config, w).to_vec()
    })?;
    let broker_hosts: Vec<String> = discovery::resolve_brokers(&config, &world)
        .into_iter()
        .flat_map(|b| b.hosts)
        .collect();
    world.redact(&broker_hosts);
    crate::atomic::write(&args.out, pretty_json(&world).as_bytes())?;
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
