//! What a reviewer should know about a plan's end state: stranded queues, partial moves,
//! services that infrastructure as code owns.

use super::*;
use crate::clients::Clients;

pub(super) fn end_state_warnings(
    changes: &[Change],
    unmanaged: &[Unmanaged],
    flow: &Flow,
    topology: &Topology<'_>,
    brokers: &Brokers,
    clients: &Clients,
    warnings: &mut Vec<String>,
) {
    // Where each declared service ends up.
    let end: BTreeMap<String, Option<BrokerAlias>> = changes
        .iter()
        .map(|c| {
            let end = match (c.action, c.from) {
                (Action::Update | Action::Manual, _) => Some(c.to),
                (Action::Noop, Some(Placement::Old)) => Some(BrokerAlias::Old),
                (Action::Noop, Some(Placement::New)) => Some(BrokerAlias::New),
                (Action::Noop, _) => None,
            };
            (c.id(), end)
        })
        .collect();

    // 1. Publishers and consumers of a queue that end on different brokers.
    for queue in flow.queues() {
        let consumers: Vec<(String, BrokerAlias)> = flow
            .consumers_of(queue)
            .into_iter()
            .filter_map(|p| end.get(&p.id).copied().flatten().map(|b| (p.id.clone(), b)))
            .collect();
        if consumers.is_empty() {
            continue;
        }
        for publisher in flow.publishers_of(queue) {
            let Some(Some(on)) = end.get(&publisher.id) else {
                continue;
            };
            if consumers.iter().all(|(_, b)| b != on) {
                let names: Vec<&str> = consumers.iter().map(|(id, _)| id.as_str()).collect();
                warnings.push(format!(
                    "after the plan, {} publishes to {queue} on the {on} broker, but its consumers ({}) are on the {} broker: messages would stall unconsumed",
                    publisher.id,
                    names.join(", "),
                    on.other()
                ));
            }
        }
    }

    // 2. Old-broker queues consumed by services the plan does not manage, and consumers no
    // scanned service accounts for.
    if let Some(old) = topology.old {
        let unmanaged_ids: BTreeSet<String> = unmanaged.iter().map(Unmanaged::id).collect();
        let planned: BTreeSet<String> = changes.iter().map(Change::id).collect();
        // The services the plan leaves out that have a connection open on the old broker: where
        // the broker does not name a queue's consumers, those are the ones nobody moves.
        let connected_unmanaged: BTreeSet<String> = old
            .connections
            .iter()
            .flat_map(|c| clients.owners(c))
            .filter(|id| unmanaged_ids.contains(id))
            .collect();
        for queue in old.queues.iter().flatten() {
            let declared: Vec<&Participant> = flow.consumers_of(&queue.name);
            let fed_by_moving = flow.publishers_of(&queue.name).iter().any(|p| p.moving);
            // What happens to the queue's messages while `ids` stay behind.
            let stranded = |ids: &str, one: bool| {
                if fed_by_moving {
                    format!(
                        ", and its publishers move: what they send from then on waits on the new broker until {ids} move{} too",
                        if one { "s" } else { "" }
                    )
                } else {
                    String::new()
                }
            };
            // The services the broker's consumer names (or their connections) come from.
            let accounted: BTreeSet<String> = queue
                .consumed_by
                .iter()
                .flat_map(|client| clients.consumer(client, &old.connections))
                .collect();
            let by_unmanaged: Vec<&String> = accounted.intersection(&unmanaged_ids).collect();
            for id in &by_unmanaged {
                warnings.push(format!(
                    "queue {} on the old broker is consumed by {id}, which is not in the plan{}",
                    queue.name,
                    stranded(id, true)
                ));
            }
            if !by_unmanaged.is_empty() || !declared.is_empty() || queue.consumers == 0 {
                continue;
            }
            let named: Vec<&String> = accounted.intersection(&planned).collect();
            let consumers = format!(
                "{} consumer{}",
                queue.consumers,
                if queue.consumers == 1 { "" } else { "s" }
            );
            if queue.consumed_by.is_empty() && !connected_unmanaged.is_empty() {
                let ids: Vec<&str> = connected_unmanaged.iter().map(String::as_str).collect();
                let one = ids.len() == 1;
                let who = if one {
                    ids[0].to_owned()
                } else {
                    format!("one of {}", ids.join(", "))
                };
                warnings.push(format!(
                    "queue {} on the old broker has {consumers} the broker does not name, most likely {who} (not in the plan, connected to the old broker){}",
                    queue.name,
                    stranded(&ids.join(", "), one)
                ));
            } else if accounted.is_empty() {
                warnings.push(format!(
                    "queue {} on the old broker has {consumers} no scanned service accounts for{}",
                    queue.name,
                    if fed_by_moving {
                        ", and its publishers move: find the consumer before the old broker goes"
                    } else {
                        ""
                    }
                ));
            } else if fed_by_moving && !named.is_empty() {
                let (them, their) = if named.len() == 1 {
                    ("it", "its")
                } else {
                    ("them", "their")
                };
                warnings.push(format!(
                    "queue {q} on the old broker is consumed by {}, which the plan declares without {q} in `consumes`: warren cannot order {them} after the queue's publishers; add {q} to {their} `consumes`",
                    named.iter().map(|id| id.as_str()).collect::<Vec<_>>().join(", "),
                    q = queue.name,
                ));
            } else if fed_by_moving {
                warnings.push(format!(
                    "queue {} on the old broker has {consumers} that the plan does not declare, and its publishers move: find the consumer before the old broker goes",
                    queue.name,
                ));
            }
        }
    }

    // 3. Declared names that the brokers do not have.
    let mut missing = BTreeSet::new();
    for alias in [BrokerAlias::Old, BrokerAlias::New] {
        let Some(broker) = topology.broker(alias) else {
            continue;
        };
        let has = destinations(broker);
        for change in changes {
            for name in change.publishes.iter().chain(&change.consumes) {
                if !has.contains(name.as_str()) {
                    missing.insert((alias, name.clone()));
                }
            }
        }
    }
    for (alias, name) in missing {
        let id = &brokers.get(alias).id;
        warnings.push(match alias {
            BrokerAlias::Old => format!("{name} is declared in the plan but the old broker {id} does not have it"),
            BrokerAlias::New => format!(
                "{name} does not exist on the new broker {id} yet: create it (or import the old broker's definitions) before apply"
            ),
        });
    }
}

/// Warns about each declared service that the plan moves only in part: `broker_env` does not
/// list a variable (or a secret's variable) that names the broker the service leaves, so apply
/// leaves that one as it is and the service ends split between the brokers (as `status` and
/// `decommission`, which read every variable, see it).
pub(super) fn partial_move_warnings(
    world: &World,
    brokers: &Brokers,
    broker_env: Option<&[String]>,
    changes: &[Change],
    warnings: &mut Vec<String>,
) {
    let Some(listed) = broker_env else {
        return;
    };
    for change in changes {
        let Some(td) = world.task_definition(&change.task_definition) else {
            continue;
        };
        let leaves = change.to.other();
        let (everything, _) = discovery::pointers(world, td, [&brokers.old, &brokers.new], None);
        let unlisted = unlisted(&everything, listed, leaves);
        if unlisted.is_empty() {
            continue;
        }
        let (them, name, it) = if unlisted.len() == 1 {
            ("names", "the variable", "it")
        } else {
            ("name", "the variables", "them")
        };
        let list = unlisted.join(", ");
        warnings.push(if change.action == Action::Noop {
            format!(
                "{} is split: {list} still {them} the {leaves} broker and broker_env does not list {it}, so warren does not move {it} (add {name} to broker_env)",
                change.id()
            )
        } else {
            format!(
                "{} is moved only in part: {list} still {them} the {leaves} broker and broker_env does not list {it}, so after apply the service is split between the brokers (add {name} to broker_env)",
                change.id()
            )
        });
    }
}

/// `container/VARIABLE` of each of `pointers` (found in every variable and secret) that names
/// broker `leaves` through a variable `listed` (the plan's `broker_env`) does not name: what a
/// move leaves behind.
#[must_use]
pub fn unlisted(pointers: &[Pointer], listed: &[String], leaves: BrokerAlias) -> Vec<String> {
    let mut out: Vec<String> = pointers
        .iter()
        .filter(|p| p.broker == leaves && !listed.iter().any(|n| n == p.via.variable()))
        .map(|p| format!("{}/{}", p.container, p.via.variable()))
        .collect();
    out.dedup();
    out
}

/// Warns about each service the plan moves that infrastructure as code owns (its tags say
/// so): the next deploy of that code puts the old task definition back.
pub(super) fn ownership_warnings(
    services: &std::collections::HashMap<(&str, &str), &crate::model::Service>,
    changes: &[Change],
    warnings: &mut Vec<String>,
) {
    for change in changes.iter().filter(|c| c.action != Action::Noop) {
        let owner = services
            .get(&(change.cluster.as_str(), change.service.as_str()))
            .and_then(|s| crate::ownership::owner(&s.tags));
        if let Some(owner) = owner {
            warnings.push(owner.warning(&change.id()));
        }
    }
}
