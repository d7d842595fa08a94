//! The brokers' bindings as the planner reads them, and the queues each wave waits for.

use super::*;
use crate::backend::broker::topology::Preparation;
use crate::backend::broker::Definition;
use crate::model::{Binding, Exchange, Policy, Queue};

/// What the plan knows of the two brokers' queues, exchanges and bindings.
pub(super) struct Topology<'w> {
    pub(super) old: Option<&'w Broker>,
    pub(super) new: Option<&'w Broker>,
    /// Bindings of both brokers, to queues and to exchanges.
    pub(super) bindings: Vec<Route>,
}

impl<'w> Topology<'w> {
    pub(super) fn of(world: &'w World, brokers: &Brokers) -> Topology<'w> {
        let known = |b: Option<&'w Broker>| b.filter(|b| b.queues.is_some());
        let old = known(brokers.old.in_world(world));
        let new = known(brokers.new.in_world(world));
        let mut bindings: Vec<Route> = [old, new]
            .into_iter()
            .flatten()
            .flat_map(|b| b.bindings.iter().map(Route::from))
            .collect();
        bindings.sort();
        bindings.dedup();
        Topology { old, new, bindings }
    }

    pub(super) fn broker(&self, alias: BrokerAlias) -> Option<&'w Broker> {
        match alias {
            BrokerAlias::Old => self.old,
            BrokerAlias::New => self.new,
        }
    }
}

/// The bindings of both brokers (to queues and to exchanges), where their topology is known.
#[must_use]
pub fn bindings(world: &World, brokers: &Brokers) -> Vec<Route> {
    Topology::of(world, brokers).bindings
}

/// The names of every queue and exchange `broker` has (an exchange a binding names, at either
/// end, exists).
pub(super) fn destinations(broker: &Broker) -> BTreeSet<&str> {
    broker
        .queues
        .iter()
        .flatten()
        .map(|q| q.name.as_str())
        .chain(broker.exchanges.iter().map(|e| e.name.as_str()))
        .chain(broker.bindings.iter().map(|b| b.exchange.as_str()))
        .chain(
            broker
                .bindings
                .iter()
                .filter(|b| b.destination_type == DestinationType::Exchange)
                .map(|b| b.destination.as_str()),
        )
        .collect()
}

pub(super) fn drains(
    changes: &[Change],
    topology: &Topology<'_>,
    strategy: Strategy,
) -> Vec<Drain> {
    let mut out = BTreeSet::new();
    let vhosts = |alias: BrokerAlias| -> BTreeMap<&str, &str> {
        topology
            .broker(alias)
            .and_then(|b| b.queues.as_ref())
            .into_iter()
            .flatten()
            .map(|q| (q.name.as_str(), q.vhost.as_str()))
            .collect()
    };
    let (old_vhosts, new_vhosts) = (vhosts(BrokerAlias::Old), vhosts(BrokerAlias::New));
    for change in changes.iter().filter(|c| c.action != Action::Noop) {
        let source = change.to.other();
        let known = match source {
            BrokerAlias::Old => &old_vhosts,
            BrokerAlias::New => &new_vhosts,
        };
        for queue in &change.consumes {
            let vhost = known
                .get(queue.as_str())
                .map_or_else(crate::model::default_vhost, |v| (*v).to_owned());
            out.insert(Drain {
                wave: match strategy {
                    Strategy::Drain => change.wave,
                    Strategy::Federate => None,
                },
                broker: source,
                vhost,
                queue: queue.clone(),
            });
        }
    }
    let mut out: Vec<Drain> = out.into_iter().collect();
    out.sort_by(|a, b| {
        (a.wave.unwrap_or(usize::MAX), &a.queue, a.broker).cmp(&(
            b.wave.unwrap_or(usize::MAX),
            &b.queue,
            b.broker,
        ))
    });
    out
}

/// One definition `apply` creates on the new broker before the first service moves, as plan
/// JSON shows it: `{"kind": "exchange" | "queue" | "binding" | "policy", "vhost", ...}` with
/// the fields of that kind (a queue without what it holds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TopologyItem {
    Exchange(Exchange),
    Queue(QueueShape),
    Binding(Binding),
    Policy(Policy),
}

/// A queue to create: its name and shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueShape {
    #[serde(default = "crate::model::default_vhost")]
    pub vhost: String,
    pub name: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_delete: Option<bool>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub arguments: serde_json::Map<String, serde_json::Value>,
}

impl From<&Definition> for TopologyItem {
    fn from(definition: &Definition) -> TopologyItem {
        match definition {
            Definition::Exchange(e) => TopologyItem::Exchange(e.clone()),
            Definition::Queue(q) => TopologyItem::Queue(QueueShape {
                vhost: q.vhost.clone(),
                name: q.name.clone(),
                kind: q.kind.clone(),
                durable: q.durable,
                auto_delete: q.auto_delete,
                arguments: q.arguments.clone(),
            }),
            Definition::Binding(b) => TopologyItem::Binding(b.clone()),
            Definition::Policy(p) => TopologyItem::Policy(p.clone()),
        }
    }
}

impl TopologyItem {
    /// The definition to create.
    #[must_use]
    pub fn definition(&self) -> Definition {
        match self {
            TopologyItem::Exchange(e) => Definition::Exchange(e.clone()),
            TopologyItem::Queue(q) => Definition::Queue(Queue {
                vhost: q.vhost.clone(),
                name: q.name.clone(),
                kind: q.kind.clone(),
                durable: q.durable,
                auto_delete: q.auto_delete,
                arguments: q.arguments.clone(),
                ..Queue::default()
            }),
            TopologyItem::Binding(b) => Definition::Binding(b.clone()),
            TopologyItem::Policy(p) => Definition::Policy(p.clone()),
        }
    }
}

/// The vhosts of the old broker's queues and exchanges (declared, or named by a binding) that
/// the services moving to the new broker publish to or consume.
fn vhosts(changes: &[Change], old: &Broker) -> BTreeSet<String> {
    let names: BTreeSet<&str> = changes
        .iter()
        .filter(|c| c.action != Action::Noop && c.to == BrokerAlias::New)
        .flat_map(|c| c.publishes.iter().chain(&c.consumes))
        .map(String::as_str)
        .collect();
    let queues = old.queues.iter().flatten().map(|q| (&q.vhost, &q.name));
    let exchanges = old.exchanges.iter().map(|e| (&e.vhost, &e.name));
    let bound = old
        .bindings
        .iter()
        .flat_map(|b| [(&b.vhost, &b.exchange), (&b.vhost, &b.destination)]);
    queues
        .chain(exchanges)
        .chain(bound)
        .filter(|(_, name)| names.contains(name.as_str()))
        .map(|(vhost, _)| vhost.clone())
        .collect()
}

/// What preparing the new broker takes before `changes` move: the definitions of the old
/// broker (in the vhosts those services use) that the new one lacks, and the conflicts.
/// `None` when either broker's topology is unknown.
#[must_use]
pub fn preparation(world: &World, brokers: &Brokers, changes: &[Change]) -> Option<Preparation> {
    let old = brokers.old.in_world(world).filter(|b| b.queues.is_some())?;
    let new = brokers.new.in_world(world).filter(|b| b.queues.is_some())?;
    Some(crate::backend::broker::topology::prepare(
        old,
        new,
        &vhosts(changes, old),
    ))
}

/// What each service that moves to the new broker needs of the old broker's topology there,
/// by `cluster/service` (see [`crate::backend::broker::topology::needs`]); empty where the
/// old broker's topology is unknown.
#[must_use]
pub fn gates(
    world: &World,
    brokers: &Brokers,
    changes: &[Change],
) -> BTreeMap<String, Vec<Definition>> {
    let Some(old) = brokers.old.in_world(world).filter(|b| b.queues.is_some()) else {
        return BTreeMap::new();
    };
    changes
        .iter()
        .filter(|c| c.action == Action::Update && c.to == BrokerAlias::New)
        .map(|c| {
            (
                c.id(),
                crate::backend::broker::topology::needs(old, &c.publishes, &c.consumes),
            )
        })
        .filter(|(_, needs)| !needs.is_empty())
        .collect()
}

/// The plan's topology and its warnings: what apply creates on the new broker, each conflict
/// (apply refuses while one stands), and that nothing is copied when a topology is unknown.
pub(super) fn topology_of(
    world: &World,
    brokers: &Brokers,
    changes: &[Change],
    warnings: &mut Vec<String>,
) -> Vec<TopologyItem> {
    let moves = changes
        .iter()
        .any(|c| c.action != Action::Noop && c.to == BrokerAlias::New);
    if !moves {
        return Vec::new();
    }
    let Some(preparation) = preparation(world, brokers, changes) else {
        warnings.push(
            "the brokers' topologies are not both known: warren copies no exchange, queue, binding or policy to the new broker; create what the moving services need there first"
                .to_owned(),
        );
        return Vec::new();
    };
    for conflict in &preparation.conflicts {
        warnings.push(format!(
            "{conflict}: warren does not change the new broker, so apply refuses until they agree"
        ));
    }
    preparation.create.iter().map(TopologyItem::from).collect()
}
