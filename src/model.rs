//! The state warren reads and changes, as plain data.
//!
//! [`World`] is both the in-memory picture every backend produces and the schema of the
//! rehearsal world file (version 1, see CONTRACT.md). Fields warren does not know are kept
//! verbatim (`extra`), so that a task definition written back is byte-for-byte what was read
//! except for the values warren rewrites.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::host::{hosts_in, hosts_read, mask_password, Reading};

mod environment;
mod sparse;
pub use environment::Environment;
pub use sparse::Sparse;

/// What `snapshot` writes instead of a secret value it does not keep (and what the AWS backend
/// keeps of a credential it cannot read a host beside). A value that is this marker is
/// unreadable: whether it names a broker is unknown.
pub const REDACTED: &str = "<redacted by warren>";

/// Implements `Deserialize` for a struct whose keys warren does not know go to its `extra` map,
/// without serde's `flatten`: `flatten` first copies the whole value into serde's own buffer
/// (for the world file, all of it), then reads the struct from the copy. Each field is
/// `required` or `default`, read as its own type or through a [`crate::limits`] check
/// (`desired: default(Tasks)`); `skip` fields are left at their default, and `shrink` fields (lists and maps) give back the
/// room they grew into: a world holds tens of thousands of them. The messages are
/// serde's own (`missing field`, `duplicate field`, `expected struct …`).
macro_rules! deserialize_keeping_extra {
    ($ty:ident {
        $($field:ident: $kind:ident $(($check:ty))?),* $(,)?
    } $(skip { $($skipped:ident),* $(,)? })? $(shrink { $($tight:ident),* $(,)? })?) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Fields;
                impl<'de> serde::de::Visitor<'de> for Fields {
                    type Value = $ty;

                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str(concat!("struct ", stringify!($ty)))
                    }

                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$ty, A::Error> {
                        $(let mut $field = None;)*
                        let mut extra = Map::new();
                        while let Some(key) = map.next_key::<Key<'de>>()? {
                            match key.as_str() {
                                $(stringify!($field) => {
                                    if $field.is_some() {
                                        return Err(serde::de::Error::duplicate_field(
                                            stringify!($field),
                                        ));
                                    }
                                    $field = Some(deserialize_keeping_extra!(@read map $($check)?));
                                })*
                                _ => {
                                    let value: Value = map.next_value()?;
                                    extra.insert(key.into_string(), value);
                                }
                            }
                        }
                        #[allow(unused_mut)]
                        let mut value = $ty {
                            $($field: deserialize_keeping_extra!(@end $kind $field),)*
                            $($($skipped: Default::default(),)*)?
                            extra: extra.into(),
                        };
                        $($(value.$tight.shrink_to_fit();)*)?
                        Ok(value)
                    }
                }
                d.deserialize_map(Fields)
            }
        }
    };
    (@read $map:ident) => { $map.next_value()? };
    (@read $map:ident $check:ty) => { $map.next_value::<$check>()?.0.into() };
    (@end required $field:ident) => {
        $field.ok_or_else(|| serde::de::Error::missing_field(stringify!($field)))?
    };
    (@end default $field:ident) => { $field.unwrap_or_default() };
}

/// A key of a JSON object, borrowed from the text where it can be.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }

    fn into_string(self) -> String {
        match self {
            Key::Borrowed(s) => s.to_owned(),
            Key::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> serde::de::Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }

            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(s))
            }

            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(s.to_owned()))
            }

            fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key::Owned(s))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// The world file's only supported version.
pub const WORLD_VERSION: u32 = 1;

/// Everything warren can see: brokers, clusters, task definitions, parameters, schedules.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct World {
    pub version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub brokers: Vec<Broker>,
    pub clusters: Vec<Cluster>,
    pub task_definitions: Vec<TaskDefinition>,
    /// Parameter name or ARN → value.
    pub parameters: IndexMap<String, String>,
    /// Parameter name or ARN → its version, where the backend knows it (SSM does).
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub parameter_versions: IndexMap<String, i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<Schedule>,
    /// Lambda functions (their environment can name a broker).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<Function>,
    /// Lambda event source mappings (their source can be a broker).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub event_source_mappings: Vec<EventSourceMapping>,
    /// EventBridge Pipes (their source can be a broker).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pipes: Vec<Pipe>,
    /// Step Functions state machines (they can run ECS tasks with env overrides).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub state_machines: Vec<StateMachine>,
    /// Env files (S3 object ARN → the file's text) that containers' `environment_files` name:
    /// what a container reads besides its task definition. A file listed there but absent
    /// here could not be read.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub env_files: IndexMap<String, String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// The parameters (by the reference `parameters` uses) whose values are secrets (SSM
    /// SecureStrings, Secrets Manager values): known to the AWS backend, never written to a file.
    #[serde(skip)]
    pub secret_parameters: std::collections::BTreeSet<String>,
    /// Why a secret or env file (by the reference a container uses) could not be read, where
    /// the backend knows it (access denied, no such object): said in warnings and blockers.
    #[serde(skip)]
    pub unread: std::collections::BTreeMap<String, String>,
    /// Where each task definition stands in `task_definitions`, for [`World::task_definition`].
    #[serde(skip)]
    pub definition_index: DefinitionIndex,
}

/// The position of each task definition of a world by `family:revision`, built at the first
/// lookup. It is only ever a hint: a lookup checks the definition it points at and, when the
/// list changed since (a definition registered, moved or removed), looks through the list.
/// A copy of a world starts without one; two worlds are equal whatever their indexes hold.
#[derive(Default)]
pub struct DefinitionIndex(std::sync::OnceLock<std::collections::HashMap<u64, usize>>);

impl DefinitionIndex {
    fn slot(family: &str, revision: u32) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        family.hash(&mut hasher);
        revision.hash(&mut hasher);
        hasher.finish()
    }
}

impl Clone for DefinitionIndex {
    fn clone(&self) -> Self {
        DefinitionIndex::default()
    }
}

impl PartialEq for DefinitionIndex {
    fn eq(&self, _: &DefinitionIndex) -> bool {
        true
    }
}

impl std::fmt::Debug for DefinitionIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DefinitionIndex")
    }
}

/// A RabbitMQ broker, in Amazon MQ or elsewhere.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Broker {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default = "running")]
    pub state: String,
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// The broker's ARN (Amazon MQ's `BrokerArn`), where known: event source mappings and pipes
    /// name their broker by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// The management console's URL (Amazon MQ's `ConsoleURL`), where known: a management URL
    /// on its host belongs to this broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_url: Option<String>,
    /// Whether the broker can be reached from the internet (Amazon MQ's `PubliclyAccessible`);
    /// `None` where unknown. Amazon MQ cannot federate from, or shovel to, a private broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publicly_accessible: Option<bool>,
    /// `None` marks a live broker: its topology is read from the broker itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queues: Option<Vec<Queue>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exchanges: Vec<Exchange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<Binding>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<Connection>,
    /// Policies (RabbitMQ's user policies, not operator policies).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
    /// Shovels and federation links running on the broker.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// The federation upstreams declared on a simulated broker (a live broker's stay on it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstreams: Vec<FederationUpstream>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// Whether the queues, consumers and connections here were read from the broker itself
    /// (observed), not from a world file (declared).
    #[serde(skip)]
    pub observed: bool,
}

fn running() -> String {
    "RUNNING".to_owned()
}

impl Broker {
    /// Whether the broker is gone (`DELETED`, or being deleted).
    #[must_use]
    pub fn is_deleted(&self) -> bool {
        self.state.eq_ignore_ascii_case("DELETED")
            || self.state.eq_ignore_ascii_case("DELETION_IN_PROGRESS")
    }

    /// The queue named `name` in any vhost, if the broker's topology is known.
    #[must_use]
    pub fn queue(&self, name: &str) -> Option<&Queue> {
        self.queues.as_ref()?.iter().find(|q| q.name == name)
    }
}

/// A queue and what it holds right now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Queue {
    #[serde(default = "default_vhost")]
    pub vhost: String,
    pub name: String,
    #[serde(default, deserialize_with = "crate::limits::count")]
    pub messages: u64,
    #[serde(default, deserialize_with = "crate::limits::count")]
    pub consumers: u64,
    /// Of `messages`, those delivered to a consumer and not yet acknowledged: they go back to
    /// the queue when their consumer's channel closes.
    #[serde(
        default,
        rename = "unacknowledged",
        deserialize_with = "crate::limits::count",
        skip_serializing_if = "is_zero"
    )]
    pub unacked: u64,
    /// `classic`, `quorum` or `stream`; `None` where unknown (classic).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `None` where unknown (durable, as warren creates queues).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_delete: Option<bool>,
    /// The queue's `x-` arguments (dead-lettering, TTL, length limits, its type).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub arguments: Map<String, Value>,
    /// Names of the clients (connection names) consuming the queue, where known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumed_by: Vec<String>,
    /// Whether clients fetch from the queue with `basic.get` (polling) rather than, or besides,
    /// subscribing: the broker has counted gets on it. A federated queue pulls from its
    /// upstream only for subscribed consumers, so pollers get nothing through federation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub polled: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An exchange that exists on a broker (bindings name exchanges too).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    #[serde(default = "default_vhost")]
    pub vhost: String,
    pub name: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `None` where unknown (durable, as warren creates exchanges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_delete: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal: Option<bool>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub arguments: Map<String, Value>,
}

/// A policy: its `definition` (dead-lettering, TTL, length limits, federation…) applies to the
/// queues or exchanges of `vhost` whose names match `pattern`; of several that match, the one
/// of highest `priority` alone applies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    #[serde(default = "default_vhost")]
    pub vhost: String,
    pub name: String,
    pub pattern: String,
    /// `queues`, `exchanges` or `all` (RabbitMQ's default).
    #[serde(default = "apply_to_all", rename = "apply-to")]
    pub apply_to: String,
    #[serde(default)]
    pub priority: i64,
    #[serde(default)]
    pub definition: Map<String, Value>,
}

fn apply_to_all() -> String {
    "all".to_owned()
}

/// What moves messages from one broker to another.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    /// A shovel: consumes from a source and republishes to a destination.
    #[default]
    Shovel,
    /// A federation link: a federated queue or exchange pulling from an upstream.
    Federation,
}

/// A shovel or a federation link running on a broker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub kind: LinkKind,
    #[serde(default = "default_vhost")]
    pub vhost: String,
    pub name: String,
    /// The hosts it reads from (a shovel's source, a link's upstream), lower-cased; never a
    /// URL's credentials.
    #[serde(default)]
    pub from: Vec<String>,
    /// The hosts it writes to (a shovel's destination), lower-cased; empty for a federation link
    /// (it writes to the broker it runs on).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// The queue or exchange it reads or feeds, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// `running`, `starting`, `terminated`…, as the broker says.
    #[serde(default)]
    pub state: String,
}

/// A federation upstream declared on a simulated broker: queues of its vhost under a policy
/// naming it pull from the broker at `from`. Never the URL, which may carry a password.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederationUpstream {
    #[serde(default = "default_vhost")]
    pub vhost: String,
    pub name: String,
    /// The hosts of its URL, lower-cased.
    #[serde(default)]
    pub from: Vec<String>,
}

/// A binding: what is published to `exchange` and matches `routing_key` also goes to
/// `destination`, a queue, or another exchange (an exchange-to-exchange binding, which routes
/// on through that exchange's own bindings).
///
/// The world file writes it in one of two forms: `"queue": NAME` (a queue), or
/// `"destination": NAME, "destination_type": "queue" | "exchange"` (as RabbitMQ's management API
/// does). Each binding is written back in the form it was read in, so a world file round-trips
/// unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "BindingForm", into = "BindingForm")]
pub struct Binding {
    pub vhost: String,
    pub exchange: String,
    pub destination: String,
    pub destination_type: DestinationType,
    pub routing_key: String,
    /// What a headers exchange matches on (`x-match` and the headers), and any other binding
    /// argument: part of the binding, as the routing key is.
    pub arguments: Map<String, Value>,
    /// Written as `"queue": NAME` (the first form) rather than with `destination`.
    queue_form: bool,
}

/// What a binding sends messages to.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DestinationType {
    #[default]
    Queue,
    Exchange,
}

impl Binding {
    /// A binding of queue `queue` to `exchange` (written in the `queue` form).
    #[must_use]
    pub fn to_queue(vhost: &str, exchange: &str, queue: &str, routing_key: &str) -> Binding {
        Binding {
            vhost: vhost.to_owned(),
            exchange: exchange.to_owned(),
            destination: queue.to_owned(),
            destination_type: DestinationType::Queue,
            routing_key: routing_key.to_owned(),
            arguments: Map::new(),
            queue_form: true,
        }
    }

    /// A binding of exchange `destination` to exchange `exchange`.
    #[must_use]
    pub fn to_exchange(
        vhost: &str,
        exchange: &str,
        destination: &str,
        routing_key: &str,
    ) -> Binding {
        Binding {
            vhost: vhost.to_owned(),
            exchange: exchange.to_owned(),
            destination: destination.to_owned(),
            destination_type: DestinationType::Exchange,
            routing_key: routing_key.to_owned(),
            arguments: Map::new(),
            queue_form: false,
        }
    }

    /// The same binding with `arguments`.
    #[must_use]
    pub fn with_arguments(mut self, arguments: Map<String, Value>) -> Binding {
        self.arguments = arguments;
        self
    }

    /// Whether `other` routes the same way: the same vhost, source, destination and key (the
    /// form it is written in does not count).
    #[must_use]
    pub fn same_route(&self, other: &Binding) -> bool {
        self.vhost == other.vhost
            && self.exchange == other.exchange
            && self.destination == other.destination
            && self.destination_type == other.destination_type
            && self.routing_key == other.routing_key
            && self.arguments == other.arguments
    }

    /// The queue it binds, if its destination is a queue.
    #[must_use]
    pub fn queue(&self) -> Option<&str> {
        (self.destination_type == DestinationType::Queue).then_some(self.destination.as_str())
    }
}

/// A binding as the world file writes it (either form).
#[derive(Serialize, Deserialize)]
struct BindingForm {
    #[serde(default = "default_vhost")]
    vhost: String,
    exchange: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    destination: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    destination_type: Option<DestinationType>,
    #[serde(default)]
    routing_key: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    arguments: Map<String, Value>,
}

impl TryFrom<BindingForm> for Binding {
    type Error = String;

    fn try_from(form: BindingForm) -> Result<Binding, String> {
        let exchange = &form.exchange;
        let (destination, destination_type, queue_form) =
            match (form.queue, form.destination, form.destination_type) {
                (Some(queue), None, None) => (queue, DestinationType::Queue, true),
                (None, Some(destination), Some(kind)) => (destination, kind, false),
                (Some(_), Some(_), _) => {
                    return Err(format!(
                        "the binding of exchange {exchange:?} gives both `queue` and `destination`: give one"
                    ))
                }
                (Some(_), None, Some(_)) => {
                    return Err(format!(
                        "the binding of exchange {exchange:?} gives `destination_type` with `queue`: write `destination` and `destination_type`, or `queue` alone"
                    ))
                }
                (None, Some(_), None) => {
                    return Err(format!(
                        "the binding of exchange {exchange:?} gives `destination` without `destination_type` (`queue` or `exchange`)"
                    ))
                }
                (None, None, _) => {
                    return Err(format!(
                        "the binding of exchange {exchange:?} names no destination: give `queue`, or `destination` and `destination_type`"
                    ))
                }
            };
        Ok(Binding {
            vhost: form.vhost,
            exchange: form.exchange,
            destination,
            destination_type,
            routing_key: form.routing_key,
            arguments: form.arguments,
            queue_form,
        })
    }
}

impl From<Binding> for BindingForm {
    fn from(binding: Binding) -> BindingForm {
        let (queue, destination, destination_type) =
            if binding.queue_form && binding.destination_type == DestinationType::Queue {
                (Some(binding.destination), None, None)
            } else {
                (
                    None,
                    Some(binding.destination),
                    Some(binding.destination_type),
                )
            };
        BindingForm {
            vhost: binding.vhost,
            exchange: binding.exchange,
            queue,
            destination,
            destination_type,
            routing_key: binding.routing_key,
            arguments: binding.arguments,
        }
    }
}

/// An open client connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    #[serde(default)]
    pub client: String,
    #[serde(default)]
    pub peer: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The `/` vhost, RabbitMQ's default.
#[must_use]
pub fn default_vhost() -> String {
    "/".to_owned()
}

/// An ECS cluster and its services.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cluster {
    pub name: String,
    pub services: Vec<Service>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An ECS service.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Service {
    pub name: String,
    /// `family:revision` of the current task definition.
    pub task_definition: String,
    pub desired: u32,
    pub running: u32,
    /// Deployments still running besides the current one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deployments: Vec<Deployment>,
    /// Rehearsal: how long a rollout of this service takes (0 to 7 days).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_seconds: Option<f64>,
    /// Rehearsal: `"fail"` makes every rollout of this service fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    /// ECS's deployment controller: `ECS` (the default), `CODE_DEPLOY` or `EXTERNAL`. Only an
    /// `ECS` service's task definition can be changed with UpdateService.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_controller: Option<String>,
    /// The service's tags (they tell who owns it: CloudFormation, Copilot, CDK, Terraform).
    #[serde(skip_serializing_if = "Sparse::is_empty")]
    pub tags: Sparse<IndexMap<String, String>>,
    /// Its running tasks, where known: a broker connection from one of their addresses is the
    /// service's, whatever the client calls itself.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<Task>,
    #[serde(flatten)]
    pub extra: Sparse<Map<String, Value>>,
}

// How the world file's largest structs are read (their derives serialise only): which fields
// must be there, which pass a range check of `limits`, which lists give back unused room.
deserialize_keeping_extra!(World {
    version: required,
    region: default,
    brokers: default,
    clusters: default,
    task_definitions: default,
    parameters: default(crate::limits::Unique<String>),
    parameter_versions: default(crate::limits::Versions),
    schedules: default,
    functions: default,
    event_source_mappings: default,
    pipes: default,
    state_machines: default,
    env_files: default(crate::limits::Unique<String>),
} skip { secret_parameters, unread, definition_index } shrink { brokers, clusters, task_definitions });

deserialize_keeping_extra!(Cluster {
    name: required,
    services: default,
} shrink { services });

deserialize_keeping_extra!(Service {
    name: required,
    task_definition: required,
    desired: default(crate::limits::Tasks),
    running: default(crate::limits::Tasks),
    deployments: default,
    rollout_seconds: default(crate::limits::RolloutSeconds),
    rollout: default,
    deployment_controller: default,
    tags: default,
    tasks: default,
});

deserialize_keeping_extra!(TaskDefinition {
    family: required,
    revision: required(crate::limits::Revision),
    status: default,
    containers: default,
} shrink { containers });

deserialize_keeping_extra!(Container {
    name: required,
    environment: default,
    secrets: default(crate::limits::Unique<String>),
    environment_files: default,
});

/// A running task of a service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Its private IP address (the one its broker connections come from).
    pub address: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A deployment of a service that still runs tasks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub task_definition: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, deserialize_with = "crate::limits::tasks")]
    pub running: u32,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One revision of a task definition family.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaskDefinition {
    pub family: String,
    pub revision: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    pub containers: Vec<Container>,
    #[serde(flatten)]
    pub extra: Sparse<Map<String, Value>>,
}

impl TaskDefinition {
    /// `family:revision`, the way services name their task definition.
    #[must_use]
    pub fn key(&self) -> String {
        format!("{}:{}", self.family, self.revision)
    }

    /// `ACTIVE` unless the file says otherwise.
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.status
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case("ACTIVE"))
    }
}

/// A container of a task definition: its environment and its secrets.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Container {
    pub name: String,
    pub environment: Environment,
    /// Variable name → `valueFrom` (an SSM parameter or Secrets Manager ARN, or a parameter name).
    pub secrets: Sparse<IndexMap<String, String>>,
    /// Env files the container loads (ECS's `environmentFiles`); its `environment` overrides
    /// them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub environment_files: Vec<EnvironmentFile>,
    #[serde(flatten)]
    pub extra: Sparse<Map<String, Value>>,
}

impl Container {
    /// Every string in the container's other fields (`command`, `entryPoint`, `dockerLabels`,
    /// `healthCheck`…: anything but its name, environment and secrets), with its path: a key
    /// as `.key` (`["key"]` when it holds anything but letters, digits, `_` and `-`), an array
    /// element as `[i]`, the leading dot left out (`command[1]`, `dockerLabels.broker`,
    /// `healthCheck.command[2]`). In the order the fields are written.
    #[must_use]
    pub fn fields(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        for (key, value) in &self.extra {
            strings_in(value, field_key("", key), &mut out);
        }
        out
    }

    /// The string at `path` (as [`Container::fields`] writes it), to change it in place.
    pub fn field_mut(&mut self, path: &str) -> Option<&mut String> {
        if self.extra.is_empty() {
            return None;
        }
        for (key, value) in &mut self.extra {
            if let Some(found) = string_at(value, field_key("", key), path) {
                return Some(found);
            }
        }
        None
    }
}

/// `prefix` followed by object key `key`.
fn field_key(prefix: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    match (plain, prefix.is_empty()) {
        (true, true) => key.to_owned(),
        (true, false) => format!("{prefix}.{key}"),
        (false, _) => format!("{prefix}[{}]", Value::String(key.to_owned())),
    }
}

fn strings_in<'v>(value: &'v Value, path: String, out: &mut Vec<(String, &'v str)>) {
    match value {
        Value::String(s) => out.push((path, s)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                strings_in(item, format!("{path}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                strings_in(item, field_key(&path, key), out);
            }
        }
        _ => {}
    }
}

fn string_at<'v>(value: &'v mut Value, path: String, wanted: &str) -> Option<&'v mut String> {
    if !wanted.starts_with(&path) {
        return None;
    }
    match value {
        Value::String(s) => (path == wanted).then_some(s),
        Value::Array(items) => items
            .iter_mut()
            .enumerate()
            .find_map(|(i, item)| string_at(item, format!("{path}[{i}]"), wanted)),
        Value::Object(map) => map
            .iter_mut()
            .find_map(|(key, item)| string_at(item, field_key(&path, key), wanted)),
        _ => None,
    }
}

/// An env file a container loads: `value` is the S3 object's ARN (`arn:aws:s3:::bucket/key`),
/// `type` is `s3`, as ECS writes `environmentFiles`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentFile {
    pub value: String,
    #[serde(rename = "type", default = "s3")]
    pub kind: String,
}

fn s3() -> String {
    "s3".to_owned()
}

/// A scheduled task: an EventBridge rule's ECS target (`kind` `rule`, the default) or an
/// EventBridge Scheduler schedule (`kind` `schedule`) that runs an ECS task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub name: String,
    #[serde(default)]
    pub cluster: String,
    /// `family:revision` it starts, or a bare `family` for the family's latest revision.
    pub task_definition: String,
    #[serde(default, skip_serializing_if = "ScheduleKind::is_rule")]
    pub kind: ScheduleKind,
    /// A rule's event bus (absent: `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bus: Option<String>,
    /// A schedule's group (absent: `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// A rule's target id (a rule can have several targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Environment overrides the target passes to the task: container → variable → value.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub overrides: IndexMap<String, IndexMap<String, String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What runs a scheduled task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// An EventBridge rule's target.
    #[default]
    Rule,
    /// An EventBridge Scheduler schedule.
    Schedule,
}

impl ScheduleKind {
    /// Whether this is the default kind (left out when written).
    #[must_use]
    pub fn is_rule(&self) -> bool {
        *self == ScheduleKind::Rule
    }
}

/// A Lambda function.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Function {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, deserialize_with = "crate::limits::unique_map")]
    pub environment: IndexMap<String, String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A Lambda event source mapping: `source` is the ARN it reads from (an Amazon MQ broker's,
/// an SQS queue's…).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventSourceMapping {
    pub uuid: String,
    /// The function's name or ARN.
    pub function: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The queues it consumes, where the source is a broker.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An EventBridge pipe: `source` is the ARN it reads from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pipe {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A Step Functions state machine, with its definition (Amazon States Language, as JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateMachine {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default)]
    pub definition: Value,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Replaces every string in `value` with `kept(string)`.
pub(crate) fn mask_strings(value: &mut Value, kept: &impl Fn(&str) -> String) {
    match value {
        Value::String(s) => *s = kept(s),
        Value::Array(items) => items.iter_mut().for_each(|v| mask_strings(v, kept)),
        Value::Object(map) => map.values_mut().for_each(|v| mask_strings(v, kept)),
        _ => {}
    }
}

impl World {
    /// Takes every credential out, so the world can be written to a file (`snapshot`): every
    /// password (see [`crate::host::mask_password`]) in env values, other container fields,
    /// parameter values and broker URLs is masked, and a secret parameter's value is kept only
    /// where it names one of `broker_hosts` (the plan's brokers' hosts) or a host of a broker
    /// of the world; any other secret value, and any value whose hosts masking would change,
    /// becomes [`REDACTED`], which rehearsals treat as unreadable.
    pub fn redact(&mut self, broker_hosts: &[String]) {
        let kept = |value: &str, reading: Reading| {
            let masked = mask_password(value);
            if value == REDACTED || hosts_read(&masked, reading) == hosts_read(value, reading) {
                masked
            } else {
                REDACTED.to_owned()
            }
        };
        let mut known_hosts: std::collections::BTreeSet<String> = self
            .brokers
            .iter()
            .flat_map(|b| &b.endpoints)
            .flat_map(|e| hosts_in(e))
            .collect();
        known_hosts.extend(broker_hosts.iter().cloned());
        for container in self
            .task_definitions
            .iter_mut()
            .flat_map(|td| &mut td.containers)
        {
            container
                .environment
                .change_values(|value| kept(value, Reading::Value));
            let paths: Vec<String> = container.fields().into_iter().map(|(p, _)| p).collect();
            for path in paths {
                if let Some(value) = container.field_mut(&path) {
                    *value = kept(value, Reading::Words);
                }
            }
        }
        // Functions' environments, rules' and schedules' overrides and state machine
        // definitions can hold a broker URL with its password, as task definitions can.
        for value in self
            .functions
            .iter_mut()
            .flat_map(|f| f.environment.values_mut())
            .chain(
                self.schedules
                    .iter_mut()
                    .flat_map(|s| s.overrides.values_mut())
                    .flat_map(IndexMap::values_mut),
            )
        {
            *value = kept(value, Reading::Value);
        }
        for machine in &mut self.state_machines {
            mask_strings(&mut machine.definition, &|v: &str| kept(v, Reading::Words));
        }
        for (reference, value) in &mut self.parameters {
            let masked = kept(value, Reading::Value);
            let secret = self.secret_parameters.contains(reference);
            *value = if secret && !hosts_in(&masked).iter().any(|h| known_hosts.contains(h)) {
                REDACTED.to_owned()
            } else {
                masked
            };
        }
        let known: Vec<String> = known_hosts.iter().cloned().collect();
        for text in self.env_files.values_mut() {
            *text = crate::sources::redacted_env_file(text, &known);
        }
        for broker in &mut self.brokers {
            for endpoint in &mut broker.endpoints {
                *endpoint = mask_password(endpoint);
            }
            if let Some(console) = &mut broker.console_url {
                *console = mask_password(console);
            }
        }
    }

    /// Registers `td`'s content as a revision of its family, as ECS would, and returns its
    /// `family:revision`: idempotent by content, so a revision newer than `td`'s with the same
    /// content (one a stopped run registered) is reused; otherwise the next revision number.
    ///
    /// # Errors
    /// [`crate::Error::Backend`] when the family already has the last revision ECS allows.
    pub fn register(&mut self, td: &TaskDefinition) -> crate::error::Result<String> {
        if let Some(existing) = crate::moves::already_registered(self, td, td) {
            return Ok(existing.key());
        }
        let revision = self
            .task_definitions
            .iter()
            .filter(|t| t.family == td.family)
            .map(|t| t.revision)
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        if revision > crate::limits::MAX_REVISION {
            return Err(crate::error::Error::Backend(format!(
                "task definition family {} already has revision {}, the most ECS allows",
                td.family,
                crate::limits::MAX_REVISION
            )));
        }
        let mut new = td.clone();
        new.revision = revision;
        new.status = td.status.as_ref().map(|_| "ACTIVE".to_owned());
        let key = new.key();
        // Next to its family's other revisions: where a revision lands does not depend on what
        // was registered before it (a batch whose first item failed and was registered again
        // later leaves the same list as one that went through at once).
        let after = self
            .task_definitions
            .iter()
            .rposition(|t| t.family == td.family)
            .map_or(self.task_definitions.len(), |i| i + 1);
        self.task_definitions.insert(after, new);
        Ok(key)
    }

    /// The task definition a service names (`family:revision`), through an index built at the
    /// first lookup: for many lookups in a row too.
    #[must_use]
    pub fn task_definition(&self, key: &str) -> Option<&TaskDefinition> {
        let (family, revision) = key.rsplit_once(':')?;
        let revision: u32 = revision.parse().ok()?;
        let index = self.definition_index.0.get_or_init(|| {
            let mut index = std::collections::HashMap::with_capacity(self.task_definitions.len());
            for (i, td) in self.task_definitions.iter().enumerate() {
                index
                    .entry(DefinitionIndex::slot(&td.family, td.revision))
                    .or_insert(i);
            }
            index
        });
        let is_it = |td: &&TaskDefinition| td.family == family && td.revision == revision;
        index
            .get(&DefinitionIndex::slot(family, revision))
            .and_then(|&i| self.task_definitions.get(i))
            .filter(is_it)
            .or_else(|| self.task_definitions.iter().find(is_it))
    }

    /// The cluster called `name`.
    #[must_use]
    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// The service `name` in cluster `cluster`. To look up many, [`World::services_by_id`].
    #[must_use]
    pub fn service(&self, cluster: &str, name: &str) -> Option<&Service> {
        self.cluster(cluster)?
            .services
            .iter()
            .find(|s| s.name == name)
    }

    /// Every service by `(cluster, name)`: one pass, for looking up many (a plan of thousands
    /// of services would otherwise search the clusters once for each).
    #[must_use]
    pub fn services_by_id(&self) -> std::collections::HashMap<(&str, &str), &Service> {
        self.clusters
            .iter()
            .flat_map(|c| {
                c.services
                    .iter()
                    .map(move |s| ((c.name.as_str(), s.name.as_str()), s))
            })
            .collect()
    }
}

/// An entry a world lists more than once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    /// The key path of the second copy, e.g. `task_definitions[4]`.
    pub key: String,
    /// The key path of the first.
    pub first: String,
    /// What is listed twice, e.g. `task definition esr-api:7`.
    pub entry: String,
}

impl std::fmt::Display for Duplicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is listed more than once (first as {})",
            self.entry, self.first
        )
    }
}

/// Indices of the first two items with the same key (items without a key never clash).
fn twice<K: Eq + std::hash::Hash>(keys: impl Iterator<Item = Option<K>>) -> Option<(usize, usize)> {
    let mut seen = std::collections::HashMap::new();
    for (i, key) in keys.enumerate() {
        if let Some(key) = key {
            if let Some(&first) = seen.get(&key) {
                return Some((first, i));
            }
            seen.insert(key, i);
        }
    }
    None
}

impl World {
    /// The first entry listed twice: a broker id or name, a queue (vhost and name) on a broker,
    /// a cluster, a service in a cluster, a task definition (`family:revision`) or a container
    /// in a task definition. Each is one thing in ECS or Amazon MQ; two copies would let plan,
    /// apply and decommission each read a different one. (Maps, such as parameters and
    /// environments, are refused with a key listed twice while they are parsed.)
    #[must_use]
    pub fn duplicate(&self) -> Option<Duplicate> {
        let found = |list: &str, (first, second): (usize, usize), entry: String| Duplicate {
            key: format!("{list}[{second}]"),
            first: format!("{list}[{first}]"),
            entry,
        };
        if let Some(pair) = twice(self.brokers.iter().map(|b| Some(&b.id))) {
            let entry = format!("broker id {:?}", self.brokers[pair.1].id);
            return Some(found("brokers", pair, entry));
        }
        if let Some(pair) = twice(self.brokers.iter().map(|b| b.name.as_ref())) {
            let entry = format!(
                "broker name {:?}",
                self.brokers[pair.1].name.as_deref().unwrap_or("")
            );
            return Some(found("brokers", pair, entry));
        }
        for (b, broker) in self.brokers.iter().enumerate() {
            let queues = broker.queues.as_deref().unwrap_or_default();
            if let Some(pair) = twice(queues.iter().map(|q| Some((&q.vhost, &q.name)))) {
                let q = &queues[pair.1];
                let entry = format!(
                    "queue {:?} in vhost {:?} on broker {}",
                    q.name, q.vhost, broker.id
                );
                return Some(found(&format!("brokers[{b}].queues"), pair, entry));
            }
        }
        if let Some(pair) = twice(self.clusters.iter().map(|c| Some(&c.name))) {
            let entry = format!("cluster {:?}", self.clusters[pair.1].name);
            return Some(found("clusters", pair, entry));
        }
        for (c, cluster) in self.clusters.iter().enumerate() {
            if let Some(pair) = twice(cluster.services.iter().map(|s| Some(&s.name))) {
                let entry = format!("service {}/{}", cluster.name, cluster.services[pair.1].name);
                return Some(found(&format!("clusters[{c}].services"), pair, entry));
            }
        }
        if let Some(pair) = twice(
            self.task_definitions
                .iter()
                .map(|td| Some((&td.family, td.revision))),
        ) {
            let entry = format!("task definition {}", self.task_definitions[pair.1].key());
            return Some(found("task_definitions", pair, entry));
        }
        for (t, td) in self.task_definitions.iter().enumerate() {
            if let Some(pair) = twice(td.containers.iter().map(|c| Some(&c.name))) {
                let entry = format!(
                    "container {:?} in task definition {}",
                    td.containers[pair.1].name,
                    td.key()
                );
                return Some(found(
                    &format!("task_definitions[{t}].containers"),
                    pair,
                    entry,
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn td(family: &str, revision: u32, containers: &[&str]) -> TaskDefinition {
        TaskDefinition {
            family: family.into(),
            revision,
            containers: containers
                .iter()
                .map(|name| Container {
                    name: (*name).into(),
                    ..Container::default()
                })
                .collect(),
            ..TaskDefinition::default()
        }
    }

    #[test]
    fn a_world_without_repeats_has_no_duplicate() {
        let world = World {
            version: 1,
            task_definitions: vec![
                td("a", 1, &["app"]),
                td("a", 2, &["app"]),
                td("b", 1, &["app", "sidecar"]),
            ],
            ..World::default()
        };
        assert_eq!(world.duplicate(), None);
    }

    #[test]
    fn the_second_copy_is_named_with_the_first() {
        let world = World {
            version: 1,
            task_definitions: vec![td("a", 1, &["app"]), td("b", 1, &[]), td("a", 1, &["app"])],
            ..World::default()
        };
        let duplicate = world.duplicate().unwrap();
        assert_eq!(duplicate.key, "task_definitions[2]");
        assert_eq!(
            duplicate.to_string(),
            "task definition a:1 is listed more than once (first as task_definitions[0])"
        );
    }

    #[test]
    fn every_kind_of_repeat_is_found() {
        let broker = |id: &str, name: Option<&str>| Broker {
            id: id.into(),
            name: name.map(str::to_owned),
            ..Broker::default()
        };
        let queue = |vhost: &str, name: &str| Queue {
            vhost: vhost.into(),
            name: name.into(),
            ..Queue::default()
        };
        let cluster = |name: &str, services: &[&str]| Cluster {
            name: name.into(),
            services: services
                .iter()
                .map(|s| Service {
                    name: (*s).into(),
                    ..Service::default()
                })
                .collect(),
            ..Cluster::default()
        };
        let cases = [
            (
                World {
                    brokers: vec![broker("b-1", None), broker("b-1", Some("x"))],
                    ..World::default()
                },
                "brokers[1]",
            ),
            (
                World {
                    brokers: vec![broker("b-1", Some("x")), broker("b-2", Some("x"))],
                    ..World::default()
                },
                "brokers[1]",
            ),
            (
                World {
                    brokers: vec![Broker {
                        queues: Some(vec![queue("/", "q"), queue("v", "q"), queue("/", "q")]),
                        ..broker("b-1", None)
                    }],
                    ..World::default()
                },
                "brokers[0].queues[2]",
            ),
            (
                World {
                    clusters: vec![cluster("c", &[]), cluster("c", &[])],
                    ..World::default()
                },
                "clusters[1]",
            ),
            (
                World {
                    clusters: vec![cluster("c", &["s"]), cluster("d", &["s", "t", "s"])],
                    ..World::default()
                },
                "clusters[1].services[2]",
            ),
            (
                World {
                    task_definitions: vec![td("a", 1, &["app", "app"])],
                    ..World::default()
                },
                "task_definitions[0].containers[1]",
            ),
        ];
        for (world, key) in cases {
            assert_eq!(world.duplicate().map(|d| d.key).as_deref(), Some(key));
        }
    }

    #[test]
    fn a_binding_is_read_in_either_form_and_written_back_in_its_own() {
        let text = r##"[{"vhost":"/","exchange":"a.ex","queue":"q","routing_key":"#"},{"vhost":"/","exchange":"a.ex","destination":"b.ex","destination_type":"exchange","routing_key":"x"},{"vhost":"v","exchange":"b.ex","destination":"q2","destination_type":"queue","routing_key":""}]"##;
        let bindings: Vec<Binding> = serde_json::from_str(text).unwrap();
        assert_eq!(bindings[0], Binding::to_queue("/", "a.ex", "q", "#"));
        assert_eq!(bindings[1], Binding::to_exchange("/", "a.ex", "b.ex", "x"));
        assert_eq!(bindings[1].queue(), None);
        assert_eq!(bindings[2].queue(), Some("q2"));
        assert_eq!(serde_json::to_string(&bindings).unwrap(), text);
        // The first form without a vhost or routing key, as older world files have it.
        let short: Binding = serde_json::from_str(r#"{"exchange":"e","queue":"q"}"#).unwrap();
        assert_eq!(short, Binding::to_queue("/", "e", "q", ""));
    }

    #[test]
    fn a_binding_with_no_destination_or_two_is_refused() {
        for (text, says) in [
            (r#"{"exchange":"e"}"#, "names no destination"),
            (
                r#"{"exchange":"e","queue":"q","destination":"q","destination_type":"queue"}"#,
                "both `queue` and `destination`",
            ),
            (
                r#"{"exchange":"e","queue":"q","destination_type":"exchange"}"#,
                "`destination_type` with `queue`",
            ),
            (
                r#"{"exchange":"e","destination":"x"}"#,
                "without `destination_type`",
            ),
            (
                r#"{"exchange":"e","destination":"x","destination_type":"topic"}"#,
                "unknown variant",
            ),
        ] {
            let error = serde_json::from_str::<Binding>(text)
                .unwrap_err()
                .to_string();
            assert!(error.contains(says), "{text}: {error}");
        }
    }

    #[test]
    fn a_redacted_world_keeps_secrets_only_as_masked_broker_addresses() {
        let mut world = World {
            version: WORLD_VERSION,
            brokers: vec![Broker {
                id: "b-1".into(),
                endpoints: vec!["amqps://b-1.mq:5671".into()],
                console_url: Some("https://admin:c0ns/ole@b-1-web.mq".into()),
                ..Broker::default()
            }],
            task_definitions: vec![TaskDefinition {
                family: "s".into(),
                revision: 1,
                containers: vec![Container {
                    name: "app".into(),
                    environment: [
                        ("A".to_owned(), "amqps://u:e/nv#pw@b-1.mq:5671".to_owned()),
                        ("B".to_owned(), "u:e/nv#pw@b-1.mq:5671".to_owned()),
                    ]
                    .into_iter()
                    .collect(),
                    ..Container::default()
                }],
                ..TaskDefinition::default()
            }],
            ..World::default()
        };
        for (name, value, secret) in [
            ("/host", "amqps://u:s/ec?ret@b-1.mq:5671", true),
            ("/db", "postgres://u:s/ec?ret@db.internal:5432", true),
            ("/password", "****", true),
            ("/plain", "amqp://u:s/ec?ret@b-1.mq", false),
        ] {
            world.parameters.insert(name.into(), value.into());
            if secret {
                world.secret_parameters.insert(name.into());
            }
        }
        world.redact(&[]);
        let text = serde_json::to_string(&world).unwrap();
        for secret in ["s/ec?ret", "e/nv#pw", "c0ns/ole", "ec?ret", "nv#pw"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(world.parameters["/host"], "amqps://u:****@b-1.mq:5671");
        assert_eq!(world.parameters["/db"], REDACTED, "not a broker's host");
        assert_eq!(world.parameters["/password"], REDACTED);
        assert_eq!(world.parameters["/plain"], "amqp://u:****@b-1.mq");
        let env = &world.task_definitions[0].containers[0].environment;
        assert_eq!(&env["A"], "amqps://u:****@b-1.mq:5671");
        assert_eq!(&env["B"], "u:****@b-1.mq:5671");
        assert!(!text.contains("secret_parameters"), "never written");
    }

    /// Every string of a container's other fields, by path, and changed in place by that path.
    #[test]
    fn a_container_field_is_found_and_changed_by_its_path() {
        let mut container: Container = serde_json::from_value(serde_json::json!({
            "name": "app",
            "environment": { "A": "x" },
            "image": "app:1",
            "cpu": 256,
            "command": ["--host", "old.mq"],
            "dockerLabels": { "broker": "old.mq:5671", "com.example.team": "esr" },
            "healthCheck": { "command": ["CMD", "check", "old.mq"], "interval": 30 },
            "mounts": [{ "source": "data" }],
        }))
        .unwrap();
        let paths: Vec<(String, &str)> = container.fields();
        assert_eq!(
            paths,
            vec![
                ("image".to_owned(), "app:1"),
                ("command[0]".to_owned(), "--host"),
                ("command[1]".to_owned(), "old.mq"),
                ("dockerLabels.broker".to_owned(), "old.mq:5671"),
                ("dockerLabels[\"com.example.team\"]".to_owned(), "esr"),
                ("healthCheck.command[0]".to_owned(), "CMD"),
                ("healthCheck.command[1]".to_owned(), "check"),
                ("healthCheck.command[2]".to_owned(), "old.mq"),
                ("mounts[0].source".to_owned(), "data"),
            ]
        );
        let owned: Vec<String> = paths.into_iter().map(|(p, _)| p).collect();
        for path in &owned {
            container.field_mut(path).unwrap().push('!');
        }
        assert_eq!(
            container.extra["command"],
            serde_json::json!(["--host!", "old.mq!"])
        );
        assert_eq!(
            container.extra["dockerLabels"]["com.example.team"],
            serde_json::json!("esr!")
        );
        assert_eq!(container.extra["cpu"], serde_json::json!(256));
        assert!(container.field_mut("command[2]").is_none());
        assert!(container.field_mut("cpu").is_none());
    }

    /// A snapshot masks passwords in a container's other fields too.
    #[test]
    fn redact_masks_passwords_in_container_fields() {
        let mut world = World {
            version: 1,
            task_definitions: vec![TaskDefinition {
                family: "a".into(),
                revision: 1,
                containers: vec![serde_json::from_value(serde_json::json!({
                    "name": "app",
                    "command": ["--url=amqps://u:s3cret@b-1.mq:5671", "--x"],
                }))
                .unwrap()],
                ..TaskDefinition::default()
            }],
            ..World::default()
        };
        world.redact(&[]);
        assert_eq!(
            world.task_definitions[0].containers[0].extra["command"],
            serde_json::json!(["--url=amqps://u:****@b-1.mq:5671", "--x"])
        );
    }

    #[test]
    fn a_redacted_world_masks_the_other_resources_too() {
        let url = "amqps://u:s/ec?ret@b-1.mq:5671";
        let mut world = World {
            version: WORLD_VERSION,
            functions: vec![Function {
                name: "f".into(),
                environment: [("AMQP_URL".to_owned(), url.to_owned())]
                    .into_iter()
                    .collect(),
                ..Function::default()
            }],
            schedules: vec![Schedule {
                name: "r".into(),
                task_definition: "t:1".into(),
                overrides: [(
                    "app".to_owned(),
                    [("AMQP_URL".to_owned(), url.to_owned())]
                        .into_iter()
                        .collect(),
                )]
                .into_iter()
                .collect(),
                ..Schedule::default()
            }],
            state_machines: vec![StateMachine {
                name: "m".into(),
                definition: serde_json::json!({ "States": { "Run": { "Env": [{ "Value": url }] } } }),
                ..StateMachine::default()
            }],
            ..World::default()
        };
        world.redact(&[]);
        let text = serde_json::to_string(&world).unwrap();
        assert!(!text.contains("ec?ret"), "{text}");
        assert_eq!(
            world.functions[0].environment["AMQP_URL"],
            "amqps://u:****@b-1.mq:5671"
        );
        assert_eq!(
            world.schedules[0].overrides["app"]["AMQP_URL"],
            "amqps://u:****@b-1.mq:5671"
        );
    }

    #[test]
    fn a_redacted_world_keeps_env_files_only_as_masked_broker_addresses() {
        let mut world = World {
            version: WORLD_VERSION,
            brokers: vec![Broker {
                id: "b-1".into(),
                endpoints: vec!["amqps://mockmq:5671".into()],
                ..Broker::default()
            }],
            ..World::default()
        };
        world.env_files.insert(
            "arn:aws:s3:::b/app.env".into(),
            "HOST=mockmq\nURL=amqps://u:s/ec@mockmq:5671\nDB_PASSWORD=hunter2\n".into(),
        );
        world.redact(&[]);
        assert_eq!(
            world.env_files["arn:aws:s3:::b/app.env"],
            "HOST=mockmq\nURL=amqps://u:****@mockmq:5671\nDB_PASSWORD=****\n"
        );
    }
}
