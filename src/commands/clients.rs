//! Which service a broker connection comes from, read lazily: the addresses of services'
//! running tasks are asked for only when a connection's name names no service.

use crate::backend::Backend;
use crate::clients;
use crate::discovery::ResolvedBroker;
use crate::error::Result;
use crate::model::{Connection, World};

/// Gives the services of `clusters` (every cluster of `world` where `None`) the addresses of
/// their running tasks when a connection to one of `brokers` carries no service's name, so that
/// [`clients::Clients`] can tell it by its peer address. Does nothing otherwise, and asks
/// nothing of a backend whose state holds the tasks already.
///
/// # Errors
/// As [`Backend::task_addresses`]; `world` is then as it was.
pub(super) fn locate(
    backend: &mut dyn Backend,
    world: &mut World,
    brokers: &[&ResolvedBroker],
    clusters: Option<&[String]>,
) -> Result<()> {
    let connections: Vec<Connection> = brokers
        .iter()
        .filter_map(|b| b.in_world(world))
        .flat_map(|b| b.connections.iter().cloned())
        .collect();
    let services = clients::services_to_locate(world, &connections, clusters);
    if services.is_empty() {
        return Ok(());
    }
    let found = backend.task_addresses(&services)?;
    clients::fill_tasks(world, &found);
    Ok(())
}
