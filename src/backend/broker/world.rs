//! The brokers of a world (a rehearsal's world file, the in-memory backend): the same
//! [`BrokerApi`] as a live broker, on the values the world holds.
//!
//! A simulated queue empties when it has consumers: the first look that finds consumers at work
//! on it sees its messages, the next one finds it empty (messages held unacknowledged go back to
//! the queue first, as they do when their consumer's channel closes). A shovel moves a queue's
//! messages to the same queue on the other broker at once and leaves nothing running.
//!
//! Federation: a broker keeps the upstreams declared on it (`upstreams`, with the hosts they
//! read from), and each of its queues whose policy in force names one of them by
//! `federation-upstream` has a `running` federation link, listed with the broker's own `links`.
//! A queue that such a link on another broker reads (its `from` names one of this broker's
//! endpoint hosts), where the federated queue has consumers, counts the link as one more
//! consumer of its own, and so empties as above.

use serde_json::Value;

use super::federation::{self, Upstream};
use super::{BrokerApi, Definition, Depth, Shovel};
use crate::discovery::ResolvedBroker;
use crate::error::{Error, Result};
use crate::host::{hosts_in, same_host};
use crate::model::{Broker, FederationUpstream, Link, LinkKind, World};

/// What a broker operation on a world is, for backends that count or fail calls by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Read,
    Depth,
    Create,
    Shovel,
    Links,
    /// A federation upstream declared.
    Federate,
    /// A federation upstream or a policy deleted.
    Remove,
}

/// Where a world lives: the operations run on it as it is now, and what they change is kept.
pub trait WorldStore {
    /// Runs `op` on the world as it is now and keeps what it changed.
    ///
    /// # Errors
    /// What `op` returns, or [`Error::Io`] / [`Error::Backend`] when the world cannot be read
    /// or kept.
    fn with_world<T>(&mut self, kind: Op, op: impl FnOnce(&mut World) -> Result<T>) -> Result<T>;

    /// Runs `op` once per item of `items`, in order, each on the world as the ones before left
    /// it, and keeps what they changed; returns each one's result. Every item is attempted:
    /// one that fails does not stop the others. A store that can keep many changes in one
    /// step does so (a world file: one read and one write for all of them); by default each
    /// item is one [`WorldStore::with_world`].
    fn with_world_each<I, T>(
        &mut self,
        kind: Op,
        items: &[I],
        mut op: impl FnMut(&mut World, &I) -> Result<T>,
    ) -> Vec<Result<T>> {
        items
            .iter()
            .map(|item| self.with_world(kind, |w| op(w, item)))
            .collect()
    }
}

/// Broker `id` of the world in `store`.
pub struct WorldBroker<'a, S> {
    store: &'a mut S,
    id: String,
    /// `old` or `new`, for messages.
    alias: String,
}

impl<'a, S: WorldStore> WorldBroker<'a, S> {
    /// The broker `id` (called `alias` in messages) of the world in `store`.
    pub fn new(store: &'a mut S, id: &str, alias: &str) -> WorldBroker<'a, S> {
        WorldBroker {
            store,
            id: id.to_owned(),
            alias: alias.to_owned(),
        }
    }
}

/// The index of broker `id` in `world`, if it is there and not deleted.
fn index_of(world: &World, id: &str) -> Result<usize> {
    let index = world
        .brokers
        .iter()
        .position(|b| b.id == id)
        .ok_or_else(|| Error::Backend(format!("broker {id} is not in the world")))?;
    let b = &world.brokers[index];
    if b.is_deleted() {
        return Err(Error::Backend(format!("broker {} is {}", b.id, b.state)));
    }
    Ok(index)
}

/// What queue `vhost`/`queue` of broker `id` holds, as a look at it sees it: a queue with
/// consumers at work on it is found empty by the next look.
fn look_at(w: &mut World, id: &str, vhost: &str, queue: &str) -> Result<Option<Depth>> {
    let index = index_of(w, id)?;
    let link = u64::from(pulled_elsewhere(w, index, vhost, queue)?);
    let Some(queues) = w.brokers[index].queues.as_mut() else {
        return Ok(None);
    };
    let Some(q) = queues
        .iter_mut()
        .find(|q| q.vhost == vhost && q.name == queue)
    else {
        return Ok(None);
    };
    let unacked = q.unacked.min(q.messages);
    let seen = Depth {
        ready: q.messages - unacked,
        unacked,
        consumers: q.consumers.saturating_add(link),
    };
    if seen.consumers > 0 && q.messages > 0 {
        // Its consumers are at work: by the next look, it is empty.
        q.messages = 0;
        q.unacked = 0;
    }
    Ok(Some(seen))
}

/// Adds `definition` to `broker` unless it has it already (by name; a binding by its source,
/// destination and key). Returns whether it was added.
pub fn add(broker: &mut Broker, definition: &Definition) -> bool {
    match definition {
        Definition::Exchange(e) => {
            if broker
                .exchanges
                .iter()
                .any(|x| x.vhost == e.vhost && x.name == e.name)
            {
                return false;
            }
            broker.exchanges.push(e.clone());
        }
        Definition::Queue(q) => {
            let queues = broker.queues.get_or_insert_with(Vec::new);
            if queues
                .iter()
                .any(|x| x.vhost == q.vhost && x.name == q.name)
            {
                return false;
            }
            let mut created = q.clone();
            created.messages = 0;
            created.unacked = 0;
            created.consumers = 0;
            created.consumed_by.clear();
            queues.push(created);
        }
        Definition::Binding(b) => {
            if broker.bindings.iter().any(|x| x.same_route(b)) {
                return false;
            }
            broker.bindings.push(b.clone());
        }
        Definition::Policy(p) => {
            if broker
                .policies
                .iter()
                .any(|x| x.vhost == p.vhost && x.name == p.name)
            {
                return false;
            }
            broker.policies.push(p.clone());
        }
    }
    true
}

/// The federation links of `broker`: one per queue whose policy in force (see
/// [`federation::in_force`]) names, by `federation-upstream`, an upstream of the broker in the
/// queue's vhost.
///
/// # Errors
/// [`Error::Backend`] naming the broker and the policy whose pattern cannot be read.
pub fn federation_links(broker: &Broker) -> Result<Vec<Link>> {
    let mut links = Vec::new();
    for queue in broker.queues.iter().flatten() {
        let policy = federation::in_force(&broker.policies, &queue.vhost, &queue.name)
            .map_err(|e| Error::Backend(format!("broker {}: {e}", broker.id)))?;
        let Some(named) = policy
            .and_then(|p| p.definition.get("federation-upstream"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        let Some(upstream) = broker
            .upstreams
            .iter()
            .find(|u| u.vhost == queue.vhost && u.name == named)
        else {
            continue;
        };
        links.push(Link {
            kind: LinkKind::Federation,
            vhost: queue.vhost.clone(),
            name: upstream.name.clone(),
            from: upstream.from.clone(),
            to: Vec::new(),
            queue: Some(queue.name.clone()),
            state: "running".to_owned(),
        });
    }
    Ok(links)
}

/// The shovels and federation links running on `broker` as the world holds it: those it lists,
/// and, for a simulated broker (one not read from the broker itself), the federation links its
/// upstreams and policies make (see [`federation_links`]). An observed broker's `links` are the
/// broker's own answer, which has its federation links already.
///
/// # Errors
/// [`Error::Backend`] naming the broker and the policy whose pattern cannot be read.
pub fn running_links(broker: &Broker) -> Result<Vec<Link>> {
    let mut links = broker.links.clone();
    if !broker.observed {
        for link in federation_links(broker)? {
            if !links.contains(&link) {
                links.push(link);
            }
        }
    }
    Ok(links)
}

/// Whether queue `vhost`/`queue` of the broker at `index` is pulled by a federation link of
/// another broker whose federated queue has consumers.
fn pulled_elsewhere(world: &World, index: usize, vhost: &str, queue: &str) -> Result<bool> {
    let hosts: Vec<String> = world.brokers[index]
        .endpoints
        .iter()
        .flat_map(|e| hosts_in(e))
        .collect();
    for (i, other) in world.brokers.iter().enumerate() {
        let consumed = other
            .queues
            .iter()
            .flatten()
            .any(|q| q.vhost == vhost && q.name == queue && q.consumers > 0);
        if i == index || other.is_deleted() || !consumed {
            continue;
        }
        let reads_here = |link: &Link| {
            link.vhost == vhost
                && link.queue.as_deref() == Some(queue)
                && link
                    .from
                    .iter()
                    .any(|f| hosts.iter().any(|h| same_host(h, f)))
        };
        if federation_links(other)?.iter().any(reads_here) {
            return Ok(true);
        }
    }
    Ok(false)
}

impl<S: WorldStore> BrokerApi for WorldBroker<'_, S> {
    fn describe(&self) -> String {
        format!("the {} broker {} of the world file", self.alias, self.id)
    }

    fn read_into(&mut self, broker: &mut Broker) -> Result<()> {
        let id = self.id.clone();
        let (read, links) = self.store.with_world(Op::Read, |w| {
            let read = w.brokers[index_of(w, &id)?].clone();
            let links = running_links(&read)?;
            Ok((read, links))
        })?;
        broker.queues = read.queues;
        broker.exchanges = read.exchanges;
        broker.bindings = read.bindings;
        broker.connections = read.connections;
        broker.policies = read.policies;
        broker.links = links;
        Ok(())
    }

    fn depth(&mut self, vhost: &str, queue: &str) -> Result<Option<Depth>> {
        let id = self.id.clone();
        self.store
            .with_world(Op::Depth, |w| look_at(w, &id, vhost, queue))
    }

    fn depths(&mut self, queues: &[(String, String)]) -> Vec<Result<Option<Depth>>> {
        let id = self.id.clone();
        self.store
            .with_world_each(Op::Depth, queues, |w, (vhost, queue)| {
                look_at(w, &id, vhost, queue)
            })
    }

    fn create(&mut self, definition: &Definition) -> Result<()> {
        let id = self.id.clone();
        self.store.with_world(Op::Create, |w| {
            let index = index_of(w, &id)?;
            add(&mut w.brokers[index], definition);
            Ok(())
        })
    }

    fn create_all(&mut self, definitions: &[Definition]) -> Vec<Result<()>> {
        let id = self.id.clone();
        self.store
            .with_world_each(Op::Create, definitions, |w, definition| {
                let index = index_of(w, &id)?;
                add(&mut w.brokers[index], definition);
                Ok(())
            })
    }

    fn start_shovel(&mut self, shovel: &Shovel<'_>) -> Result<()> {
        let id = self.id.clone();
        self.store.with_world(Op::Shovel, |w| {
            let from = index_of(w, &id)?;
            let to = shovel.to.index_in(w).ok_or_else(|| {
                Error::Backend(format!("broker {} is not in the world", shovel.to.id))
            })?;
            let to = index_of(w, &w.brokers[to].id.clone())?;
            let find = |b: &Broker| {
                b.queues.as_ref().and_then(|qs| {
                    qs.iter()
                        .position(|q| q.vhost == shovel.vhost && q.name == shovel.queue)
                })
            };
            let (Some(source), Some(destination)) = (find(&w.brokers[from]), find(&w.brokers[to]))
            else {
                return Err(Error::Backend(format!(
                    "shovel {}: queue {} is not on both brokers",
                    shovel.name, shovel.queue
                )));
            };
            let queues = w.brokers[from].queues.as_mut().expect("found above");
            let moved = std::mem::take(&mut queues[source].messages);
            queues[source].unacked = 0;
            let queues = w.brokers[to].queues.as_mut().expect("found above");
            queues[destination].messages += moved;
            Ok(())
        })
    }

    fn links(&mut self) -> Result<Vec<Link>> {
        let id = self.id.clone();
        self.store
            .with_world(Op::Links, |w| running_links(&w.brokers[index_of(w, &id)?]))
    }

    /// Records the upstream with the hosts it reads from: those of the URL in its variable,
    /// checked as a live broker checks it, where the variable is set; else those of `from`'s
    /// first endpoint.
    fn create_upstream(&mut self, upstream: &Upstream, from: &ResolvedBroker) -> Result<()> {
        let url = super::live::upstream_uri(upstream, from)?;
        let hosts: Vec<String> = url
            .as_deref()
            .or(from.endpoints.first().map(String::as_str))
            .map(hosts_in)
            .unwrap_or_default()
            .into_iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        if hosts.is_empty() {
            return Err(Error::Refused(format!(
                "federation upstream {} in vhost {} cannot be declared: the {} broker {} has no endpoint and {} is not set",
                upstream.name, upstream.vhost, from.alias, from.id, upstream.url_env
            )));
        }
        let id = self.id.clone();
        self.store.with_world(Op::Federate, |w| {
            let index = index_of(w, &id)?;
            let declared = FederationUpstream {
                vhost: upstream.vhost.clone(),
                name: upstream.name.clone(),
                from: hosts,
            };
            let upstreams = &mut w.brokers[index].upstreams;
            match upstreams
                .iter_mut()
                .find(|u| u.vhost == declared.vhost && u.name == declared.name)
            {
                Some(existing) => *existing = declared,
                None => upstreams.push(declared),
            }
            Ok(())
        })
    }

    fn remove_upstream(&mut self, vhost: &str, name: &str) -> Result<()> {
        let id = self.id.clone();
        self.store.with_world(Op::Remove, |w| {
            let index = index_of(w, &id)?;
            w.brokers[index]
                .upstreams
                .retain(|u| !(u.vhost == vhost && u.name == name));
            Ok(())
        })
    }

    fn remove_policy(&mut self, vhost: &str, name: &str) -> Result<()> {
        let id = self.id.clone();
        self.store.with_world(Op::Remove, |w| {
            let index = index_of(w, &id)?;
            w.brokers[index]
                .policies
                .retain(|p| !(p.vhost == vhost && p.name == name));
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerAlias;
    use crate::model::{Policy, Queue};
    use serde_json::json;

    /// A world held as it is, every operation run on it.
    struct Held(World);

    impl WorldStore for Held {
        fn with_world<T>(
            &mut self,
            _kind: Op,
            op: impl FnOnce(&mut World) -> Result<T>,
        ) -> Result<T> {
            op(&mut self.0)
        }
    }

    const OLD_HOST: &str = "b-1.mq.example.com";
    const NEW_HOST: &str = "b-2.mq.example.com";

    fn queue(name: &str, messages: u64, consumers: u64) -> Queue {
        Queue {
            vhost: "/".into(),
            name: name.into(),
            messages,
            consumers,
            ..Queue::default()
        }
    }

    fn broker(id: &str, host: &str, queues: Vec<Queue>) -> Broker {
        Broker {
            id: id.into(),
            state: "RUNNING".into(),
            endpoints: vec![format!("amqps://{host}:5671")],
            queues: Some(queues),
            ..Broker::default()
        }
    }

    /// The old broker with `orders` holding 3 messages and `audit` holding 2, no consumers; the
    /// new one with both queues, `orders` with a consumer.
    fn two_brokers() -> Held {
        Held(World {
            version: 1,
            brokers: vec![
                broker(
                    "b-1",
                    OLD_HOST,
                    vec![queue("orders", 3, 0), queue("audit", 2, 0)],
                ),
                broker(
                    "b-2",
                    NEW_HOST,
                    vec![queue("orders", 0, 1), queue("audit", 0, 0)],
                ),
            ],
            ..World::default()
        })
    }

    fn old() -> ResolvedBroker {
        ResolvedBroker::at(BrokerAlias::Old, "b-1", OLD_HOST)
    }

    fn upstream(var: &str) -> Upstream {
        Upstream {
            vhost: "/".into(),
            name: federation::upstream_name("m"),
            url_env: var.into(),
        }
    }

    /// Federates `queue` on the new broker from upstream `warren-m`.
    fn federate(store: &mut Held, queue: &str) {
        let policies = store.0.brokers[1].policies.clone();
        let policy = federation::policy_for(&policies, "/", queue, "warren-m").unwrap();
        WorldBroker::new(store, "b-2", "new")
            .create(&Definition::Policy(policy))
            .unwrap();
    }

    #[test]
    fn an_upstream_reads_from_the_old_brokers_endpoint_and_is_replaced_by_its_urls_hosts() {
        let mut store = two_brokers();
        let from = old();
        WorldBroker::new(&mut store, "b-2", "new")
            .create_upstream(&upstream("WARREN_WORLD_TEST_UNSET_URL"), &from)
            .unwrap();
        assert_eq!(
            store.0.brokers[1].upstreams,
            vec![FederationUpstream {
                vhost: "/".into(),
                name: "warren-m".into(),
                from: vec![OLD_HOST.into()],
            }]
        );

        // Declared again through a load balancer's URL: the same upstream, now reading there.
        std::env::set_var(
            "WARREN_WORLD_TEST_LB_URL",
            "amqps://esr:s3cret@LB.Example.com:5671/%2F",
        );
        WorldBroker::new(&mut store, "b-2", "new")
            .create_upstream(&upstream("WARREN_WORLD_TEST_LB_URL"), &from)
            .unwrap();
        let upstreams = &store.0.brokers[1].upstreams;
        assert_eq!(upstreams.len(), 1, "{upstreams:?}");
        assert_eq!(upstreams[0].from, vec!["lb.example.com".to_owned()]);
        let written = serde_json::to_string(&store.0).unwrap();
        assert!(
            written.contains(
                r#""upstreams":[{"vhost":"/","name":"warren-m","from":["lb.example.com"]}]"#
            ),
            "{written}"
        );
        assert!(!written.contains("s3cret"), "{written}");
    }

    #[test]
    fn an_upstream_url_that_is_not_amqp_or_not_the_old_brokers_is_refused_naming_the_variable() {
        let mut store = two_brokers();
        std::env::set_var(
            "WARREN_WORLD_TEST_HTTP_URL",
            "http://esr:s3cret@lb.example.com:15672",
        );
        let err = WorldBroker::new(&mut store, "b-2", "new")
            .create_upstream(&upstream("WARREN_WORLD_TEST_HTTP_URL"), &old())
            .unwrap_err();
        assert!(matches!(err, Error::Refused(_)), "{err}");
        assert!(
            err.to_string().contains("WARREN_WORLD_TEST_HTTP_URL")
                && !err.to_string().contains("s3cret"),
            "{err}"
        );

        let mut from = old();
        from.amqp_url_env = Some("WARREN_WORLD_TEST_OLD_AMQP_URL".into());
        std::env::set_var(
            "WARREN_WORLD_TEST_OLD_AMQP_URL",
            format!("amqps://esr:s3cret@{NEW_HOST}:5671"),
        );
        let err = WorldBroker::new(&mut store, "b-2", "new")
            .create_upstream(&upstream("WARREN_WORLD_TEST_OLD_AMQP_URL"), &from)
            .unwrap_err();
        assert!(matches!(err, Error::Refused(_)), "{err}");
        assert!(
            err.to_string().contains("WARREN_WORLD_TEST_OLD_AMQP_URL")
                && err.to_string().contains("does not belong")
                && !err.to_string().contains("s3cret"),
            "{err}"
        );
        assert!(store.0.brokers[1].upstreams.is_empty(), "nothing declared");
    }

    #[test]
    fn a_queue_under_a_policy_naming_an_upstream_has_a_running_link_until_either_is_removed() {
        let mut store = two_brokers();
        store.0.brokers[1].policies.push(Policy {
            vhost: "/".into(),
            name: "ttl".into(),
            pattern: ".*".into(),
            apply_to: "queues".into(),
            priority: 4,
            definition: json!({ "message-ttl": 1000 }).as_object().cloned().unwrap(),
        });
        federate(&mut store, "orders");
        let mut new = WorldBroker::new(&mut store, "b-2", "new");
        assert!(new.links().unwrap().is_empty(), "no upstream yet");

        new.create_upstream(&upstream("WARREN_WORLD_TEST_UNSET_URL"), &old())
            .unwrap();
        assert_eq!(
            new.links().unwrap(),
            vec![Link {
                kind: LinkKind::Federation,
                vhost: "/".into(),
                name: "warren-m".into(),
                from: vec![OLD_HOST.into()],
                to: Vec::new(),
                queue: Some("orders".into()),
                state: "running".into(),
            }],
            "only the federated queue; audit's policy in force is ttl"
        );
        let mut seen = Broker::default();
        new.read_into(&mut seen).unwrap();
        assert_eq!(seen.links.len(), 1, "read_into lists it too");

        new.remove_policy("/", &federation::policy_name("orders"))
            .unwrap();
        new.remove_policy("/", &federation::policy_name("orders"))
            .unwrap();
        assert!(new.links().unwrap().is_empty());
        assert_eq!(store.0.brokers[1].policies.len(), 1, "ttl stays");

        federate(&mut store, "orders");
        let mut new = WorldBroker::new(&mut store, "b-2", "new");
        assert_eq!(new.links().unwrap().len(), 1);
        new.remove_upstream("/", "warren-m").unwrap();
        new.remove_upstream("/", "warren-m").unwrap();
        assert!(new.links().unwrap().is_empty());
        assert!(store.0.brokers[1].upstreams.is_empty());
    }

    #[test]
    fn a_federated_queue_with_consumers_drains_the_old_queue_through_its_link() {
        let mut store = two_brokers();
        federate(&mut store, "orders");
        federate(&mut store, "audit");
        WorldBroker::new(&mut store, "b-2", "new")
            .create_upstream(&upstream("WARREN_WORLD_TEST_UNSET_URL"), &old())
            .unwrap();
        let mut old = WorldBroker::new(&mut store, "b-1", "old");

        let first = old.depth("/", "orders").unwrap().unwrap();
        assert_eq!((first.ready, first.consumers), (3, 1), "the link consumes");
        assert!(old.depth("/", "orders").unwrap().unwrap().drained());

        // audit is federated too, but nobody consumes it on the new broker: it stays.
        for _ in 0..2 {
            let audit = old.depth("/", "audit").unwrap().unwrap();
            assert_eq!((audit.ready, audit.consumers), (2, 0));
        }
        // The new broker's own queue is not pulled by anything.
        let new = WorldBroker::new(&mut store, "b-2", "new").depth("/", "orders");
        assert_eq!(new.unwrap().unwrap().consumers, 1);
    }

    #[test]
    fn a_link_reading_from_another_broker_drains_nothing_here() {
        let mut store = two_brokers();
        federate(&mut store, "orders");
        let elsewhere = ResolvedBroker::at(BrokerAlias::Old, "b-9", "b-9.mq.example.com");
        WorldBroker::new(&mut store, "b-2", "new")
            .create_upstream(&upstream("WARREN_WORLD_TEST_UNSET_URL"), &elsewhere)
            .unwrap();
        let mut old = WorldBroker::new(&mut store, "b-1", "old");
        for _ in 0..2 {
            assert_eq!(old.depth("/", "orders").unwrap().unwrap().ready, 3);
        }
    }
}
