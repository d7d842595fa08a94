//! The seam to a RabbitMQ broker: what warren reads from one (its queues with exact depths,
//! exchanges, bindings, policies, connections, shovels and federation links) and does to one
//! (creates definitions the other broker had, starts a shovel, declares and removes the
//! federation upstreams and policies of the `federate` strategy).
//!
//! Two implementations: [`live::Live`], a real broker through its management API and AMQP, and
//! the world file's brokers (a rehearsal, or the in-memory backend of the unit tests), in
//! [`world`]. A [`crate::backend::Backend`] hands out the one each broker needs
//! ([`crate::backend::Backend::broker`]). The planner and guards see none of this: they read
//! the plain values [`BrokerApi::read_into`] fills in.

use crate::backend::Backend;
use crate::discovery::ResolvedBroker;
use crate::error::Result;
use crate::model::{Binding, Broker, Exchange, Link, Policy, Queue, World};

mod amqp;
pub mod federation;
mod live;
mod management;
pub mod topology;
pub mod world;

pub use live::{Live, LiveBrokers};
pub use management::{check_amqp_url, Management};

/// The URL the environment variable `var` holds (a plan's `amqp_url_env` or
/// `management_url_env`), trimmed; `None` when it is not set or blank.
#[must_use]
pub fn url_in(var: &str) -> Option<String> {
    let value = std::env::var(var).ok()?;
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// Reads the queues, exchanges, bindings, policies, connections and links of `broker` from the
/// broker itself into `world`, when the backend could not see them and the plan gives a
/// management URL that is set. A simulated broker (one whose queues the world lists) is left as
/// it is. Either way, the broker's URL variables that are set must belong to it.
///
/// # Errors
/// [`crate::Error::Backend`] when the URL is set but the broker cannot be read;
/// [`crate::Error::Refused`] when a URL belongs to another broker.
pub fn read_topology(
    backend: &mut dyn Backend,
    world: &mut World,
    broker: &ResolvedBroker,
) -> Result<()> {
    let set = broker
        .management_url_env
        .as_ref()
        .is_some_and(|var| url_in(var).is_some());
    let simulated = broker
        .index_in(world)
        .is_some_and(|i| world.brokers[i].queues.is_some());
    if !set || simulated {
        return check_amqp_url(broker, None);
    }
    let index = match broker.index_in(world) {
        Some(i) => i,
        None => {
            world.brokers.push(Broker {
                id: broker.id.clone(),
                name: broker.name.clone(),
                state: "RUNNING".to_owned(),
                endpoints: broker.endpoints.clone(),
                ..Broker::default()
            });
            world.brokers.len() - 1
        }
    };
    backend
        .broker(broker)?
        .read_into(&mut world.brokers[index])?;
    world.brokers[index].observed = true;
    Ok(())
}

/// What a queue holds at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    /// Messages waiting for a consumer.
    pub ready: u64,
    /// Messages delivered to a consumer and not yet acknowledged: they go back to the queue
    /// when their consumer's channel closes.
    pub unacked: u64,
    pub consumers: u64,
}

impl Depth {
    /// Every message the queue holds, delivered or not.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.ready.saturating_add(self.unacked)
    }

    /// Whether nothing is left in it: no message waits, none is held by a consumer.
    #[must_use]
    pub fn drained(&self) -> bool {
        self.total() == 0
    }
}

/// One definition of a broker's topology, as warren copies it to another broker.
#[derive(Debug, Clone, PartialEq)]
pub enum Definition {
    Exchange(Exchange),
    Queue(Queue),
    Binding(Binding),
    Policy(Policy),
}

impl Definition {
    /// Its vhost.
    #[must_use]
    pub fn vhost(&self) -> &str {
        match self {
            Definition::Exchange(e) => &e.vhost,
            Definition::Queue(q) => &q.vhost,
            Definition::Binding(b) => &b.vhost,
            Definition::Policy(p) => &p.vhost,
        }
    }
}

impl std::fmt::Display for Definition {
    /// `exchange esr.events (topic)`, `queue esr.q (quorum)`, `binding esr.events -> esr.q
    /// (key a.#)`, `policy ttl`; with the vhost where it is not `/`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Definition::Exchange(e) => write!(
                f,
                "exchange {} ({})",
                e.name,
                e.kind.as_deref().unwrap_or("direct")
            )?,
            Definition::Queue(q) => write!(
                f,
                "queue {} ({})",
                q.name,
                q.kind.as_deref().unwrap_or("classic")
            )?,
            Definition::Binding(b) => {
                write!(f, "binding {} -> ", b.exchange)?;
                if b.queue().is_none() {
                    write!(f, "exchange ")?;
                }
                write!(f, "{}", b.destination)?;
                if !b.routing_key.is_empty() {
                    write!(f, " (key {})", b.routing_key)?;
                }
            }
            Definition::Policy(p) => write!(f, "policy {} (pattern {})", p.name, p.pattern)?,
        }
        if self.vhost() != "/" {
            write!(f, " in vhost {}", self.vhost())?;
        }
        Ok(())
    }
}

/// A dynamic shovel warren starts to move what is left in a queue of one broker to the queue of
/// the same name on another. It deletes itself once it has moved what the queue held when it
/// started (`src-delete-after: queue-length`).
#[derive(Debug, Clone)]
pub struct Shovel<'a> {
    /// Its name on the broker it runs on (the source).
    pub name: String,
    pub vhost: String,
    pub queue: String,
    /// The broker it moves the messages to; its AMQP URL comes from its `amqp_url_env`.
    pub to: &'a ResolvedBroker,
}

/// What warren reads from and does to one broker.
pub trait BrokerApi {
    /// The broker, for messages: "the old broker b-1 (http://guest:****@127.0.0.1:15672)".
    fn describe(&self) -> String;

    /// Fills `broker`'s queues (with their counts), exchanges, bindings, policies, connections
    /// and links from the broker itself.
    ///
    /// # Errors
    /// [`crate::Error::Backend`] when the broker cannot be read.
    fn read_into(&mut self, broker: &mut Broker) -> Result<()>;

    /// What the queue `vhost`/`queue` holds now, read afresh; `None` when the broker has no
    /// such queue. Never takes an unknown count for zero.
    ///
    /// # Errors
    /// [`crate::Error::Backend`] when the broker cannot be asked.
    fn depth(&mut self, vhost: &str, queue: &str) -> Result<Option<Depth>>;

    /// What each of `queues` (vhost, name) holds now, as [`BrokerApi::depth`] reads one, in
    /// order; every queue is asked, one that fails does not stop the others. A simulated broker
    /// looks at them all with one read (and at most one write) of its world file.
    fn depths(&mut self, queues: &[(String, String)]) -> Vec<Result<Option<Depth>>> {
        queues.iter().map(|(v, q)| self.depth(v, q)).collect()
    }

    /// Creates `definition` when the broker lacks it; one it has already is left as it is.
    ///
    /// # Errors
    /// [`crate::Error::Backend`] when the broker refuses it or cannot be reached.
    fn create(&mut self, definition: &Definition) -> Result<()>;

    /// Creates each of `definitions` as [`BrokerApi::create`] does, in order, and returns each
    /// one's result. Every item is attempted: one that fails does not stop the others. When a
    /// result is `Ok`, the definition exists (a world file has been written) by the time this
    /// returns. A simulated broker makes them all with one write of its world file.
    fn create_all(&mut self, definitions: &[Definition]) -> Vec<Result<()>> {
        definitions.iter().map(|d| self.create(d)).collect()
    }

    /// Starts `shovel` on this broker (its source).
    ///
    /// # Errors
    /// [`crate::Error::Backend`] when it cannot be started; [`crate::Error::Refused`] when the
    /// destination has no AMQP URL.
    fn start_shovel(&mut self, shovel: &Shovel<'_>) -> Result<()>;

    /// The shovels and federation links running on the broker now.
    ///
    /// # Errors
    /// [`crate::Error::Backend`] when the broker cannot be read.
    fn links(&mut self) -> Result<Vec<Link>>;

    /// Declares federation upstream `upstream` on this broker, reading from the broker `from`
    /// at the URL the variable `upstream.url_env` holds, with its vhost set to `upstream.vhost`,
    /// `ack-mode: on-confirm`. An upstream of that name that exists already is left as it is
    /// when it points at the same URL, and replaced otherwise (it is warren's own).
    ///
    /// # Errors
    /// [`crate::Error::Refused`] when the variable is unset or blank, or (when `url_env` is
    /// `from`'s `amqp_url_env`) its URL does not belong to `from`; [`crate::Error::Backend`]
    /// when the broker refuses or cannot be reached.
    fn create_upstream(
        &mut self,
        upstream: &federation::Upstream,
        from: &ResolvedBroker,
    ) -> Result<()>;

    /// Deletes upstream `vhost`/`name`; one that is not there is no error.
    ///
    /// # Errors
    /// [`crate::Error::Backend`] when the broker refuses or cannot be reached.
    fn remove_upstream(&mut self, vhost: &str, name: &str) -> Result<()>;

    /// Deletes policy `vhost`/`name`; one that is not there is no error.
    ///
    /// # Errors
    /// [`crate::Error::Backend`] when the broker refuses or cannot be reached.
    fn remove_policy(&mut self, vhost: &str, name: &str) -> Result<()>;
}

impl<T: BrokerApi + ?Sized> BrokerApi for &mut T {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn read_into(&mut self, broker: &mut Broker) -> Result<()> {
        (**self).read_into(broker)
    }
    fn depth(&mut self, vhost: &str, queue: &str) -> Result<Option<Depth>> {
        (**self).depth(vhost, queue)
    }
    fn depths(&mut self, queues: &[(String, String)]) -> Vec<Result<Option<Depth>>> {
        (**self).depths(queues)
    }
    fn create(&mut self, definition: &Definition) -> Result<()> {
        (**self).create(definition)
    }
    fn create_all(&mut self, definitions: &[Definition]) -> Vec<Result<()>> {
        (**self).create_all(definitions)
    }
    fn start_shovel(&mut self, shovel: &Shovel<'_>) -> Result<()> {
        (**self).start_shovel(shovel)
    }
    fn links(&mut self) -> Result<Vec<Link>> {
        (**self).links()
    }
    fn create_upstream(
        &mut self,
        upstream: &federation::Upstream,
        from: &ResolvedBroker,
    ) -> Result<()> {
        (**self).create_upstream(upstream, from)
    }
    fn remove_upstream(&mut self, vhost: &str, name: &str) -> Result<()> {
        (**self).remove_upstream(vhost, name)
    }
    fn remove_policy(&mut self, vhost: &str, name: &str) -> Result<()> {
        (**self).remove_policy(vhost, name)
    }
}
