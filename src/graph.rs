//! The publisher/consumer graph and the waves it orders.
//!
//! Nodes are services, exchanges and queues; edges are "publishes to", "is bound to" and
//! "is consumed by". A publisher of queue q (directly, or through an exchange bound to q, also
//! through exchanges bound to exchanges) must move before each consumer of q, unless both sit in
//! one dependency cycle: then they share a wave. Every service is placed in the earliest wave
//! these rules allow.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::config::Strategy;
use crate::model::{Binding, DestinationType};

/// A service as the graph sees it; its names are borrowed from the plan file where they can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant<'a> {
    /// `cluster/service`.
    pub id: String,
    /// Whether the plan moves it (only moving services get waves).
    pub moving: bool,
    /// Exchange or queue names it publishes to.
    pub publishes: Cow<'a, [String]>,
    /// Queue names it consumes.
    pub consumes: Cow<'a, [String]>,
}

/// A binding as the graph sees it: what is published to `exchange` also reaches `destination`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub exchange: String,
    pub destination: String,
    pub destination_type: DestinationType,
}

impl Route {
    /// A route to queue `queue`.
    #[must_use]
    pub fn to_queue(exchange: &str, queue: &str) -> Route {
        Route {
            exchange: exchange.to_owned(),
            destination: queue.to_owned(),
            destination_type: DestinationType::Queue,
        }
    }

    /// A route to exchange `destination` (an exchange-to-exchange binding).
    #[must_use]
    pub fn to_exchange(exchange: &str, destination: &str) -> Route {
        Route {
            exchange: exchange.to_owned(),
            destination: destination.to_owned(),
            destination_type: DestinationType::Exchange,
        }
    }
}

impl From<&Binding> for Route {
    fn from(binding: &Binding) -> Route {
        Route {
            exchange: binding.exchange.clone(),
            destination: binding.destination.clone(),
            destination_type: binding.destination_type,
        }
    }
}

/// A node of the publisher/consumer graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Node<'a> {
    Service(&'a str),
    /// An exchange, or a published name the topology does not know as a queue.
    Exchange(&'a str),
    Queue(&'a str),
}

/// The publisher/consumer graph of a plan. It borrows every name from the participants and
/// the bindings it was built from: a region's graph holds tens of thousands of them.
#[derive(Debug, Clone)]
pub struct Flow<'a> {
    pub graph: DiGraph<Node<'a>, ()>,
    index: BTreeMap<Node<'a>, NodeIndex>,
    participants: &'a [Participant<'a>],
    /// Queue → indices (into `participants`) of the services that publish into it.
    publishers: BTreeMap<&'a str, Vec<usize>>,
    /// Queue → indices of the services that consume it.
    consumers: BTreeMap<&'a str, Vec<usize>>,
}

/// Waves of moving services, and the cycles that had to share one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Waves {
    /// `waves[i]` holds the ids of wave i+1, sorted.
    pub waves: Vec<Vec<String>>,
    /// Groups of moving services that depend on each other (each sorted, list sorted).
    pub cycles: Vec<Vec<String>>,
}

impl Waves {
    /// The wave (from 1) of service `id`, if it moves.
    #[must_use]
    pub fn wave_of(&self, id: &str) -> Option<usize> {
        self.waves
            .iter()
            .position(|w| w.iter().any(|s| s == id))
            .map(|i| i + 1)
    }
}

impl<'a> Flow<'a> {
    /// Builds the graph from the services and the brokers' bindings.
    ///
    /// A consumed name or a queue a binding names is a queue; anything else published to is an
    /// exchange. A binding's source is always an exchange.
    #[must_use]
    pub fn new(participants: &'a [Participant<'a>], bindings: &'a [Route]) -> Flow<'a> {
        let queues: BTreeSet<&str> = participants
            .iter()
            .flat_map(|p| p.consumes.iter().map(String::as_str))
            .chain(
                bindings
                    .iter()
                    .filter(|r| r.destination_type == DestinationType::Queue)
                    .map(|r| r.destination.as_str()),
            )
            .collect();
        let mut flow = Flow {
            graph: DiGraph::new(),
            index: BTreeMap::new(),
            participants,
            publishers: BTreeMap::new(),
            consumers: BTreeMap::new(),
        };
        let destination = |name: &'a str| {
            if queues.contains(name) {
                Node::Queue(name)
            } else {
                Node::Exchange(name)
            }
        };
        let mut sorted: Vec<&Participant> = participants.iter().collect();
        sorted.sort_by(|a, b| a.id.cmp(&b.id));
        for p in sorted {
            let service = flow.node(Node::Service(&p.id));
            for name in p.publishes.iter() {
                let target = flow.node(destination(name));
                flow.graph.update_edge(service, target, ());
            }
            for name in p.consumes.iter() {
                let queue = flow.node(Node::Queue(name));
                flow.graph.update_edge(queue, service, ());
            }
        }
        let mut bindings: Vec<&Route> = bindings.iter().collect();
        bindings.sort();
        for route in bindings {
            let from = flow.node(Node::Exchange(&route.exchange));
            let to = flow.node(match route.destination_type {
                DestinationType::Queue => Node::Queue(&route.destination),
                DestinationType::Exchange => Node::Exchange(&route.destination),
            });
            if from != to {
                flow.graph.update_edge(from, to, ());
            }
        }
        for (i, p) in participants.iter().enumerate() {
            for queue in flow.queues_reached_by(&p.id) {
                flow.publishers.entry(queue).or_default().push(i);
            }
            for queue in p.consumes.iter() {
                let consumers = flow.consumers.entry(queue).or_default();
                if !consumers.contains(&i) {
                    consumers.push(i);
                }
            }
        }
        flow
    }

    fn node(&mut self, node: Node<'a>) -> NodeIndex {
        if let Some(&i) = self.index.get(&node) {
            return i;
        }
        let i = self.graph.add_node(node);
        self.index.insert(node, i);
        i
    }

    /// Queues that messages published by `id` reach: named queues, queues bound to named
    /// exchanges, and on through exchanges bound to exchanges, as RabbitMQ routes (any number
    /// of hops; a cycle of exchange bindings is followed once round).
    #[must_use]
    pub fn queues_reached_by(&self, id: &str) -> BTreeSet<&'a str> {
        let mut out = BTreeSet::new();
        let Some(&start) = self.index.get(&Node::Service(id)) else {
            return out;
        };
        let mut seen = BTreeSet::new();
        let mut next: Vec<NodeIndex> = self.graph.neighbors(start).collect();
        while let Some(target) = next.pop() {
            if !seen.insert(target) {
                continue;
            }
            match self.graph[target] {
                Node::Queue(q) => {
                    out.insert(q);
                }
                Node::Exchange(_) => next.extend(self.graph.neighbors(target)),
                Node::Service(_) => {}
            }
        }
        out
    }

    /// Services (moving or not) that publish into queue `queue`.
    #[must_use]
    pub fn publishers_of(&self, queue: &str) -> Vec<&'a Participant<'a>> {
        self.publishers
            .get(queue)
            .into_iter()
            .flatten()
            .map(|&i| &self.participants[i])
            .collect()
    }

    /// Services (moving or not) that consume queue `queue`.
    #[must_use]
    pub fn consumers_of(&self, queue: &str) -> Vec<&'a Participant<'a>> {
        self.consumers
            .get(queue)
            .into_iter()
            .flatten()
            .map(|&i| &self.participants[i])
            .collect()
    }

    /// Every queue in the graph, sorted.
    #[must_use]
    pub fn queues(&self) -> Vec<&'a str> {
        self.index
            .keys()
            .filter_map(|n| match *n {
                Node::Queue(q) => Some(q),
                _ => None,
            })
            .collect()
    }

    /// "Must move before" pairs among moving services: `(earlier, later)`.
    #[must_use]
    pub fn precedence(&self, strategy: Strategy) -> BTreeSet<(&str, &str)> {
        let mut pairs = BTreeSet::new();
        for (queue, publishers) in &self.publishers {
            for publisher in publishers
                .iter()
                .map(|&i| &self.participants[i])
                .filter(|p| p.moving)
            {
                for consumer in self.consumers_of(queue).into_iter().filter(|p| p.moving) {
                    if consumer.id == publisher.id {
                        continue;
                    }
                    let pair = match strategy {
                        Strategy::Drain => (publisher.id.as_str(), consumer.id.as_str()),
                        Strategy::Federate => (consumer.id.as_str(), publisher.id.as_str()),
                    };
                    pairs.insert(pair);
                }
            }
        }
        pairs
    }

    /// Orders the moving services into waves.
    #[must_use]
    pub fn waves(&self, strategy: Strategy) -> Waves {
        let moving: Vec<&str> = {
            let mut ids: Vec<&str> = self
                .participants
                .iter()
                .filter(|p| p.moving)
                .map(|p| p.id.as_str())
                .collect();
            ids.sort();
            ids.dedup();
            ids
        };
        order(&moving, &self.precedence(strategy))
    }
}

/// Places `services` into the earliest waves that respect `before` (pairs `(earlier, later)`);
/// services in one cycle share a wave.
#[must_use]
pub fn order(services: &[&str], before: &BTreeSet<(&str, &str)>) -> Waves {
    let mut graph: DiGraph<&str, ()> = DiGraph::new();
    let index: BTreeMap<&str, NodeIndex> =
        services.iter().map(|&s| (s, graph.add_node(s))).collect();
    for (a, b) in before {
        if let (Some(&x), Some(&y)) = (index.get(a), index.get(b)) {
            graph.update_edge(x, y, ());
        }
    }
    // tarjan_scc yields components in reverse topological order.
    let mut components = tarjan_scc(&graph);
    components.reverse();
    let mut component_of = vec![0usize; graph.node_count()];
    for (c, members) in components.iter().enumerate() {
        for n in members {
            component_of[n.index()] = c;
        }
    }
    let mut level = vec![1usize; components.len()];
    for (c, members) in components.iter().enumerate() {
        for &n in members {
            for pred in graph.neighbors_directed(n, petgraph::Direction::Incoming) {
                let pc = component_of[pred.index()];
                if pc != c {
                    level[c] = level[c].max(level[pc] + 1);
                }
            }
        }
    }
    let depth = level.iter().copied().max().unwrap_or(0);
    let mut waves = vec![Vec::new(); depth];
    let mut cycles = Vec::new();
    for (c, members) in components.iter().enumerate() {
        let mut ids: Vec<String> = members.iter().map(|&n| graph[n].to_owned()).collect();
        ids.sort();
        if ids.len() > 1 {
            cycles.push(ids.clone());
        }
        waves[level[c] - 1].extend(ids);
    }
    for wave in &mut waves {
        wave.sort();
    }
    cycles.sort();
    Waves { waves, cycles }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: &str, publishes: &[&str], consumes: &[&str]) -> Participant<'static> {
        Participant {
            id: id.into(),
            moving: true,
            publishes: publishes.iter().map(|s| (*s).to_owned()).collect(),
            consumes: consumes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn publishers_move_before_consumers_through_exchanges() {
        let participants = [
            p("c/a", &["ex"], &[]),
            p("c/b", &["q2"], &["q1"]),
            p("c/c", &[], &["q2"]),
            p("c/d", &[], &[]),
        ];
        let routes = [Route::to_queue("ex", "q1")];
        let flow = Flow::new(&participants, &routes);
        let waves = flow.waves(Strategy::Drain);
        assert_eq!(
            waves.waves,
            vec![
                vec!["c/a".to_owned(), "c/d".to_owned()],
                vec!["c/b".to_owned()],
                vec!["c/c".to_owned()]
            ]
        );
        assert!(waves.cycles.is_empty());
        assert_eq!(waves.wave_of("c/c"), Some(3));
    }

    #[test]
    fn a_publisher_reaches_queues_through_exchanges_bound_to_exchanges() {
        // shop -> a.ex -> b.ex -> q <- billing; c.ex and d.ex bind to each other (a cycle).
        let participants = [
            p("c/shop", &["a.ex"], &[]),
            p("c/billing", &[], &["q"]),
            p("c/looper", &["c.ex"], &[]),
        ];
        let routes = [
            Route::to_exchange("a.ex", "b.ex"),
            Route::to_queue("b.ex", "q"),
            Route::to_exchange("c.ex", "d.ex"),
            Route::to_exchange("d.ex", "c.ex"),
        ];
        let flow = Flow::new(&participants, &routes);
        assert_eq!(flow.queues_reached_by("c/shop"), BTreeSet::from(["q"]));
        assert!(flow.queues_reached_by("c/looper").is_empty());
        let waves = flow.waves(Strategy::Drain);
        assert_eq!(
            waves.waves,
            vec![
                vec!["c/looper".to_owned(), "c/shop".to_owned()],
                vec!["c/billing".to_owned()]
            ]
        );
    }

    #[test]
    fn federate_reverses_the_order() {
        let participants = [p("c/a", &["q"], &[]), p("c/b", &[], &["q"])];
        let flow = Flow::new(&participants, &[]);
        let waves = flow.waves(Strategy::Federate);
        assert_eq!(
            waves.waves,
            vec![vec!["c/b".to_owned()], vec!["c/a".to_owned()]]
        );
    }

    #[test]
    fn a_cycle_shares_a_wave() {
        let participants = [
            p("c/api", &["requests"], &["replies"]),
            p("c/worker", &["replies"], &["requests"]),
            p("c/feeder", &["requests"], &[]),
        ];
        let flow = Flow::new(&participants, &[]);
        let waves = flow.waves(Strategy::Drain);
        assert_eq!(
            waves.waves,
            vec![
                vec!["c/feeder".to_owned()],
                vec!["c/api".to_owned(), "c/worker".to_owned()]
            ]
        );
        assert_eq!(
            waves.cycles,
            vec![vec!["c/api".to_owned(), "c/worker".to_owned()]]
        );
    }

    #[test]
    fn services_that_stay_do_not_get_waves_or_constrain() {
        let mut stay = p("c/stay", &["q"], &[]);
        stay.moving = false;
        let participants = [stay, p("c/b", &[], &["q"])];
        let flow = Flow::new(&participants, &[]);
        let waves = flow.waves(Strategy::Drain);
        assert_eq!(waves.waves, vec![vec!["c/b".to_owned()]]);
        assert_eq!(flow.publishers_of("q").len(), 1);
        assert_eq!(flow.consumers_of("q")[0].id, "c/b");
    }

    mod properties {
        use super::*;
        use proptest::prelude::{prop_assert, prop_assert_eq, proptest, Just};
        use proptest::strategy::Strategy as _;

        fn graphs() -> impl proptest::strategy::Strategy<Value = (usize, Vec<(usize, usize)>)> {
            (1usize..24)
                .prop_flat_map(|n| (Just(n), proptest::collection::vec((0..n, 0..n), 0..n * 2)))
        }

        /// Which services can reach which, through `before`.
        fn reach(n: usize, edges: &[(usize, usize)]) -> Vec<Vec<bool>> {
            let mut r = vec![vec![false; n]; n];
            for &(a, b) in edges {
                r[a][b] = true;
            }
            for k in 0..n {
                for i in 0..n {
                    for j in 0..n {
                        if r[i][k] && r[k][j] {
                            r[i][j] = true;
                        }
                    }
                }
            }
            r
        }

        proptest! {
            #[test]
            fn waves_respect_order_and_are_earliest((n, edges) in graphs()) {
                let names: Vec<String> = (0..n).map(|i| format!("c/s{i:02}")).collect();
                let before: BTreeSet<(&str, &str)> = edges
                    .iter()
                    .filter(|(a, b)| a != b)
                    .map(|&(a, b)| (names[a].as_str(), names[b].as_str()))
                    .collect();
                let ids: Vec<&str> = names.iter().map(String::as_str).collect();
                let waves = order(&ids, &before);
                let r = reach(n, &edges.iter().copied().filter(|(a, b)| a != b).collect::<Vec<_>>());
                let wave = |i: usize| waves.wave_of(&names[i]).expect("every service has a wave");
                // Every service is in exactly one wave.
                let total: usize = waves.waves.iter().map(Vec::len).sum();
                prop_assert_eq!(total, n);
                for &(a, b) in &edges {
                    if a == b { continue; }
                    let same_cycle = r[a][b] && r[b][a];
                    if same_cycle {
                        prop_assert_eq!(wave(a), wave(b));
                    } else {
                        prop_assert!(wave(a) < wave(b), "{} before {}", names[a], names[b]);
                    }
                }
                // Earliest: a service in wave w > 1 has a predecessor outside its cycle in wave w-1.
                for i in 0..n {
                    let w = wave(i);
                    if w > 1 {
                        let in_cycle_of_i = |x: usize| x == i || (r[x][i] && r[i][x]);
                        let has = edges.iter().any(|&(a, b)| {
                            in_cycle_of_i(b) && !in_cycle_of_i(a) && wave(a) == w - 1
                        });
                        prop_assert!(has, "{} could move earlier than wave {}", names[i], w);
                    }
                }
                // No empty waves.
                prop_assert!(waves.waves.iter().all(|w| !w.is_empty()));
            }
        }
    }
}
