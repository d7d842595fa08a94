//! The brokers' bindings as the planner reads them, and the queues each wave waits for.

use super::*;

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
