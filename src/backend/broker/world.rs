//! The brokers of a world (a rehearsal's world file, the in-memory backend): the same
//! [`BrokerApi`] as a live broker, on the values the world holds.
//!
//! A simulated queue empties when it has consumers: the first look that finds consumers at work
//! on it sees its messages, the next one finds it empty (messages held unacknowledged go back to
//! the queue first, as they do when their consumer's channel closes). A shovel moves a queue's
//! messages to the same queue on the other broker at once and leaves nothing running.

use super::{BrokerApi, Definition, Depth, Shovel};
use crate::error::{Error, Result};
use crate::model::{Broker, Link, World};

/// What a broker operation on a world is, for backends that count or fail calls by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Read,
    Depth,
    Create,
    Shovel,
    Links,
}

/// Where a world lives: the operations run on it as it is now, and what they change is kept.
pub trait WorldStore {
    /// Runs `op` on the world as it is now and keeps what it changed.
    ///
    /// # Errors
    /// What `op` returns, or [`Error::Io`] / [`Error::Backend`] when the world cannot be read
    /// or kept.
    fn with_world<T>(&mut self, kind: Op, op: impl FnOnce(&mut World) -> Result<T>) -> Result<T>;
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

impl<S: WorldStore> BrokerApi for WorldBroker<'_, S> {
    fn describe(&self) -> String {
        format!("the {} broker {} of the world file", self.alias, self.id)
    }

    fn read_into(&mut self, broker: &mut Broker) -> Result<()> {
        let id = self.id.clone();
        let read = self
            .store
            .with_world(Op::Read, |w| Ok(w.brokers[index_of(w, &id)?].clone()))?;
        broker.queues = read.queues;
        broker.exchanges = read.exchanges;
        broker.bindings = read.bindings;
        broker.connections = read.connections;
        broker.policies = read.policies;
        broker.links = read.links;
        Ok(())
    }

    fn depth(&mut self, vhost: &str, queue: &str) -> Result<Option<Depth>> {
        let id = self.id.clone();
        self.store.with_world(Op::Depth, |w| {
            let index = index_of(w, &id)?;
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
                consumers: q.consumers,
            };
            if q.consumers > 0 && q.messages > 0 {
                // Its consumers are at work: by the next look, it is empty.
                q.messages = 0;
                q.unacked = 0;
            }
            Ok(Some(seen))
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
        self.store.with_world(Op::Links, |w| {
            Ok(w.brokers[index_of(w, &id)?].links.clone())
        })
    }
}
