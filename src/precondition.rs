//! What must hold before `apply` makes its first change: the new broker exists and is
//! `RUNNING`, and every parameter the plan's `[parameters]` maps to (or a rewrite moves a secret
//! to) exists.
//!
//! The same facts are part of a saved plan's fingerprint, so a saved plan goes stale when one of
//! them changes after it was saved.

use std::collections::{BTreeMap, BTreeSet};

use indexmap::IndexMap;

use crate::discovery::{self, parameter_value, ResolvedBroker};
use crate::error::{Error, Result};
use crate::model::World;
use crate::plan::{Change, Plan};

/// Every parameter a `[parameters]` map names, old and new: what a backend must read for the
/// preconditions (and a move back) to know whether they exist.
#[must_use]
pub fn mapped_parameters(map: &IndexMap<String, String>) -> Vec<String> {
    let names: BTreeSet<&String> = map.keys().chain(map.values()).collect();
    names.into_iter().cloned().collect()
}

/// The parameters a plan moves secrets to: every target of `[parameters]` and every parameter
/// a rewrite points a secret at (a move back targets an old one).
fn target_parameters<'p>(
    map: &'p IndexMap<String, String>,
    changes: &'p [Change],
) -> BTreeSet<&'p str> {
    map.values()
        .map(String::as_str)
        .chain(
            changes
                .iter()
                .flat_map(|c| &c.rewrites)
                .filter(|r| r.parameter.is_some())
                .map(|r| r.to.as_str()),
        )
        .collect()
}

/// Whether `broker` is one the plan names by its endpoints (then its id is its first
/// endpoint's host): outside Amazon MQ, so a backend that does not list it says nothing
/// about it.
fn given_by_endpoints(broker: &ResolvedBroker) -> bool {
    broker
        .endpoints
        .first()
        .and_then(|e| discovery::hosts_in(e).into_iter().next())
        .is_some_and(|host| host == broker.id)
}

/// Why the new broker cannot take services, if it cannot.
fn new_broker_problem(broker: &ResolvedBroker, world: &World) -> Option<String> {
    match broker.in_world(world) {
        Some(b) if b.state.eq_ignore_ascii_case("RUNNING") => None,
        Some(b) => Some(format!(
            "the new broker {} is {}, not RUNNING",
            broker.id, b.state
        )),
        None if given_by_endpoints(broker) => None,
        None => Some(format!("the new broker {} does not exist", broker.id)),
    }
}

/// Checks what must hold before `apply` changes anything.
///
/// # Errors
/// [`Error::Refused`] naming every failed precondition: the new broker missing or not
/// `RUNNING` (a broker the plan names by endpoints and the backend does not list is taken as
/// running), a mapped target parameter that does not exist.
pub fn preconditions(plan: &Plan, world: &World) -> Result<()> {
    let mut problems: Vec<String> = new_broker_problem(&plan.brokers.new, world)
        .into_iter()
        .collect();
    for target in target_parameters(&plan.parameters, &plan.changes) {
        if parameter_value(world, target).is_none() {
            let from = plan
                .parameters
                .iter()
                .find(|(_, new)| discovery::same_parameter(new, target))
                .map(|(old, _)| format!(", mapped from {old} in [parameters],"))
                .unwrap_or_default();
            problems.push(format!("parameter {target}{from} does not exist"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Refused(format!(
            "apply cannot start: {}; nothing was changed",
            problems.join("; ")
        )))
    }
}

/// Fingerprint entries for the preconditions: `broker:ID` (the new broker's state, or its
/// absence) and `parameter:NAME` for each target parameter (its value and version, as the
/// fingerprint records every parameter).
pub(crate) fn fingerprint_entries(
    world: &World,
    new: &ResolvedBroker,
    map: &IndexMap<String, String>,
    changes: &[Change],
) -> BTreeMap<String, String> {
    let mut entries = BTreeMap::new();
    let state = new.in_world(world).map(|b| b.state.to_ascii_uppercase());
    entries.insert(format!("broker:{}", new.id), crate::plan::digest(&state));
    for target in target_parameters(map, changes) {
        let value = parameter_value(world, target);
        let version = world.parameter_versions.get(target);
        entries.insert(
            format!("parameter:{}", discovery::parameter_name(target)),
            crate::plan::digest(&(&value, version)),
        );
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerAlias;
    use crate::model::Broker;

    fn broker(id: &str, endpoint: &str) -> ResolvedBroker {
        ResolvedBroker {
            alias: BrokerAlias::New,
            id: id.into(),
            name: None,
            endpoints: vec![endpoint.into()],
            hosts: discovery::hosts_in(endpoint),
            amqp_url_env: None,
            management_url_env: None,
            upstream_url_env: None,
            console_url: None,
        }
    }

    fn world_with(state: &str) -> World {
        World {
            version: 1,
            brokers: vec![Broker {
                id: "b-2".into(),
                state: state.into(),
                endpoints: vec!["amqps://b-2.mq:5671".into()],
                ..Broker::default()
            }],
            ..World::default()
        }
    }

    #[test]
    fn the_new_broker_must_be_running() {
        let new = broker("b-2", "amqps://b-2.mq:5671");
        assert_eq!(new_broker_problem(&new, &world_with("RUNNING")), None);
        assert_eq!(
            new_broker_problem(&new, &world_with("DELETION_IN_PROGRESS")).as_deref(),
            Some("the new broker b-2 is DELETION_IN_PROGRESS, not RUNNING")
        );
        assert_eq!(
            new_broker_problem(&new, &World::default()).as_deref(),
            Some("the new broker b-2 does not exist")
        );
    }

    #[test]
    fn a_broker_given_by_endpoints_may_be_unlisted() {
        let new = broker("rabbit.internal", "amqps://rabbit.internal:5671");
        assert_eq!(new_broker_problem(&new, &World::default()), None);
    }

    #[test]
    fn both_sides_of_the_map_are_read() {
        let map: IndexMap<String, String> = [("/a".to_owned(), "/b".to_owned())].into();
        assert_eq!(mapped_parameters(&map), vec!["/a", "/b"]);
    }
}
