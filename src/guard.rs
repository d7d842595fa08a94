//! The decommission guards: everything that still needs the old broker.
//!
//! Fails closed: what cannot be checked is a blocker of kind `unverifiable`. The scan covers
//! every cluster and every env value, whatever the plan scopes.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::backend::broker::world as world_broker;
use crate::clients::Clients;
use crate::config::BrokerAlias;
use crate::discovery::{self, Pointer, ResolvedBroker, Uninspected};
use crate::host;
use crate::model::{Link, LinkKind, Queue, TaskDefinition, World};
use crate::resources::{self, ResourceKind};

/// What kind of thing blocks a decommission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockerKind {
    Service,
    TaskDefinition,
    /// An EventBridge rule or Scheduler schedule that starts tasks pointing at the broker.
    Schedule,
    Function,
    EventSourceMapping,
    Pipe,
    StateMachine,
    Queue,
    Connection,
    Federation,
    Unverifiable,
}

/// One reason not to delete the old broker.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Blocker {
    pub kind: BlockerKind,
    pub detail: String,
}

/// The outcome of `decommission`, as CONTRACT.md prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub broker: String,
    pub refused: bool,
    pub blockers: Vec<Blocker>,
}

fn through(pointers: &[Pointer]) -> String {
    let mut places: Vec<String> = pointers
        .iter()
        .map(|p| match &p.via {
            discovery::Via::Variable { name } | discovery::Via::Field { path: name } => {
                format!("{}/{name}", p.container)
            }
            discovery::Via::Parameter { name, parameter } => {
                format!("{}/{name} (parameter {parameter})", p.container)
            }
            discovery::Via::EnvFile { name, file } => {
                format!("{}/{name} (env file {file})", p.container)
            }
        })
        .collect();
    places.dedup();
    places.join(", ")
}

/// Where `td` points at `old`, and what in it could not be read.
fn inspect(
    world: &World,
    td: &TaskDefinition,
    old: &ResolvedBroker,
    new: &ResolvedBroker,
) -> (Vec<Pointer>, Vec<Uninspected>) {
    let (pointers, uninspected) = discovery::pointers(world, td, [old, new], None);
    (
        pointers
            .into_iter()
            .filter(|p| p.broker == BrokerAlias::Old)
            .collect(),
        uninspected,
    )
}

/// "shovel esr-leftovers on the new broker reads from b-1111 (state running)".
fn link_detail(link: &Link, on: BrokerAlias, old_id: &str) -> String {
    let kind = match link.kind {
        LinkKind::Shovel => "shovel",
        LinkKind::Federation => "federation link",
    };
    let vhost = if link.vhost == "/" {
        String::new()
    } else {
        format!(" in vhost {}", link.vhost)
    };
    let queue = link
        .queue
        .as_deref()
        .map(|q| format!(" for {q}"))
        .unwrap_or_default();
    let state = if link.state.is_empty() {
        "unknown"
    } else {
        link.state.as_str()
    };
    format!(
        "{kind} {}{queue}{vhost} on the {on} broker reads from {old_id} (state {state})",
        link.name
    )
}

/// What the connection named `client` consumes on the old broker (whose queues are
/// `old_queues`), as the broker names its queues' consumers, and what waits for it in the new
/// broker's queues of the same names (`new_queues`): "; it consumes t.orders on the old broker;
/// 404 messages wait for it in the new broker's t.orders". Empty when it consumes nothing the
/// broker names.
fn consumption(client: &str, old_queues: &[Queue], new_queues: &[Queue]) -> String {
    if client.is_empty() {
        return String::new();
    }
    let consumed: Vec<&Queue> = old_queues
        .iter()
        .filter(|q| q.consumed_by.iter().any(|by| by == client))
        .collect();
    if consumed.is_empty() {
        return String::new();
    }
    let name = |q: &Queue| {
        if q.vhost == "/" {
            q.name.clone()
        } else {
            format!("{} (vhost {})", q.name, q.vhost)
        }
    };
    let mut text = format!(
        "; it consumes {} on the old broker",
        consumed
            .iter()
            .map(|q| name(q))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for q in &consumed {
        let waiting = new_queues
            .iter()
            .find(|n| n.vhost == q.vhost && n.name == q.name)
            .map_or(0, |n| n.messages);
        if waiting > 0 {
            text.push_str(&format!(
                "; {waiting} message{} wait{} for it in the new broker's {}",
                if waiting == 1 { "" } else { "s" },
                if waiting == 1 { "s" } else { "" },
                name(q)
            ));
        }
    }
    text
}

/// Secrets whose value was not read: the secret → who reads it.
type Unread = BTreeMap<String, BTreeSet<String>>;

fn note_unread(owner: &str, uninspected: &[Uninspected], unread: &mut Unread) {
    for u in uninspected {
        let what = match u {
            Uninspected::SecretsManager {
                arn, reason: None, ..
            } => {
                format!("Secrets Manager secret {arn}, whose value was not read")
            }
            Uninspected::SecretsManager {
                arn,
                reason: Some(reason),
                ..
            } => format!("Secrets Manager secret {arn}, whose value could not be read ({reason})"),
            Uninspected::EnvFile { file, reason, .. } => {
                format!("env file {file}, which was not inspected ({reason})")
            }
            Uninspected::MissingParameter { parameter, .. } => {
                format!("parameter {parameter}, which could not be read")
            }
            Uninspected::Redacted {
                parameter: Some(parameter),
                ..
            } => format!("parameter {parameter}, whose value is redacted"),
            Uninspected::Redacted {
                container,
                name,
                parameter: None,
            } => format!("{container}/{name}, whose value is redacted"),
        };
        unread.entry(what).or_default().insert(owner.to_owned());
    }
}

/// Every blocker against deleting `old`, given the whole world (every cluster).
#[must_use]
pub fn blockers(world: &World, old: &ResolvedBroker, new: &ResolvedBroker) -> Vec<Blocker> {
    let mut scan = Scan {
        world,
        old,
        new,
        found: BTreeSet::new(),
        unread: Unread::new(),
    };
    scan.services();
    let latest = resources::latest_revisions(world);
    scan.latest_revisions(&latest);
    scan.resources();
    scan.broker_itself();
    scan.links();
    scan.unread_secrets();
    scan.found.into_iter().collect()
}

/// The blocker kind of a resource that points at the broker: rules and schedules are both
/// `schedule`.
fn blocker_kind(kind: ResourceKind) -> BlockerKind {
    match kind {
        ResourceKind::Rule | ResourceKind::Schedule => BlockerKind::Schedule,
        ResourceKind::Function => BlockerKind::Function,
        ResourceKind::EventSourceMapping => BlockerKind::EventSourceMapping,
        ResourceKind::Pipe => BlockerKind::Pipe,
        ResourceKind::StateMachine => BlockerKind::StateMachine,
    }
}

/// One decommission scan: the blockers found so far and the secrets nobody could read.
struct Scan<'a> {
    world: &'a World,
    old: &'a ResolvedBroker,
    new: &'a ResolvedBroker,
    found: BTreeSet<Blocker>,
    unread: Unread,
}

impl Scan<'_> {
    fn add(&mut self, kind: BlockerKind, detail: String) {
        self.found.insert(Blocker { kind, detail });
    }

    /// Where `td` points at the old broker; what it holds that could not be read is noted
    /// against `owner`, so that every task definition reports it the same way.
    fn inspect(&mut self, owner: &str, td: &TaskDefinition) -> Vec<Pointer> {
        let (pointers, uninspected) = inspect(self.world, td, self.old, self.new);
        note_unread(owner, &uninspected, &mut self.unread);
        pointers
    }

    /// Services: the current task definition and every deployment still running.
    fn services(&mut self) {
        let id = &self.old.id;
        for cluster in &self.world.clusters {
            for service in &cluster.services {
                let name = format!("{}/{}", cluster.name, service.name);
                match self.world.task_definition(&service.task_definition) {
                    None => self.add(
                        BlockerKind::Unverifiable,
                        format!(
                            "{name} runs {}, which could not be read",
                            service.task_definition
                        ),
                    ),
                    Some(td) => {
                        let pointers = self.inspect(&name, td);
                        if !pointers.is_empty() {
                            self.add(
                                BlockerKind::Service,
                                format!("{name} points at {id} through {}", through(&pointers)),
                            );
                        }
                    }
                }
                for deployment in &service.deployments {
                    if deployment.task_definition == service.task_definition {
                        continue;
                    }
                    let Some(td) = self.world.task_definition(&deployment.task_definition) else {
                        self.add(
                            BlockerKind::Unverifiable,
                            format!(
                                "{name} still runs a deployment of {}, which could not be read",
                                deployment.task_definition
                            ),
                        );
                        continue;
                    };
                    let pointers = self.inspect(&name, td);
                    if !pointers.is_empty() {
                        self.add(
                            BlockerKind::Service,
                            format!(
                                "{name} still runs a deployment of {} ({} task{}), which points at {id} through {}",
                                deployment.task_definition,
                                deployment.running,
                                if deployment.running == 1 { "" } else { "s" },
                                through(&pointers)
                            ),
                        );
                    }
                }
            }
        }
    }

    /// The latest active revision of every family: a task started from it would reconnect.
    fn latest_revisions(&mut self, latest: &BTreeMap<&str, &TaskDefinition>) {
        let id = &self.old.id;
        for td in latest.values() {
            let pointers = self.inspect(&td.key(), td);
            if !pointers.is_empty() {
                self.add(
                    BlockerKind::TaskDefinition,
                    format!(
                        "{}, the latest active revision of {}, points at {id} through {} (a task started from it would connect)",
                        td.key(),
                        td.family,
                        through(&pointers)
                    ),
                );
            }
        }
    }

    /// Rules, schedules, functions, event source mappings, pipes and state machines that
    /// point at the old broker (see [`resources`]). None counts as retargeted: a rule that
    /// apply moved no longer points at the old broker.
    fn resources(&mut self) {
        let findings = resources::find(self.world, self.old, self.new, &|_| false);
        for found in findings.found {
            self.add(blocker_kind(found.resource.kind), found.detail);
        }
        for detail in findings.unreadable {
            self.add(BlockerKind::Unverifiable, detail);
        }
        for (owner, uninspected) in findings.uninspected {
            note_unread(&owner, &uninspected, &mut self.unread);
        }
    }

    /// The broker itself: its endpoints (without them no host can be matched), queues holding
    /// messages, open connections.
    fn broker_itself(&mut self) {
        let id = &self.old.id;
        if self.old.endpoints.is_empty() {
            self.add(
                BlockerKind::Unverifiable,
                format!(
                    "broker {id} has no endpoints, so whether anything points at it cannot be told"
                ),
            );
        }
        let Some(broker) = self.old.in_world(self.world) else {
            self.add(
                BlockerKind::Unverifiable,
                format!("broker {id} could not be found, so its queues and connections could not be checked"),
            );
            return;
        };
        let Some(queues) = &broker.queues else {
            self.add(
                BlockerKind::Unverifiable,
                format!(
                    "the queues and connections of {id} could not be read: {}",
                    self.old.topology_source()
                ),
            );
            return;
        };
        for q in queues.iter().filter(|q| q.messages > 0) {
            self.add(
                BlockerKind::Queue,
                format!(
                    "{} {} holds {} message{}",
                    q.vhost,
                    q.name,
                    q.messages,
                    if q.messages == 1 { "" } else { "s" }
                ),
            );
        }
        let clients = Clients::of(self.world);
        let new_queues = self
            .new
            .in_world(self.world)
            .and_then(|b| b.queues.as_deref())
            .unwrap_or_default();
        for c in &broker.connections {
            self.add(
                BlockerKind::Connection,
                format!(
                    "connection from {} is open on {id}{}",
                    clients.describe(c),
                    consumption(&c.client, queues, new_queues)
                ),
            );
        }
    }

    /// Shovels and federation links, on either broker, that still read from the old one:
    /// deleting it would cut them off mid-move. A link on the old broker with no source, or
    /// one on itself, reads from it too.
    fn links(&mut self) {
        let old_hosts = self.old_hosts();
        // `from` holds hosts; one written as a URL (or host:port) is read for its host.
        let reads_old = |from: &String| {
            let mut hosts = host::hosts_in(from);
            if hosts.is_empty() {
                hosts.push(from.clone());
            }
            hosts
                .iter()
                .any(|h| old_hosts.iter().any(|o| host::same_host(o, h)))
        };
        let mut found = Vec::new();
        for on in [self.old, self.new] {
            let Some(broker) = on.in_world(self.world) else {
                continue;
            };
            // A simulated broker's federation links are those its upstreams and policies make.
            let links = match world_broker::running_links(broker) {
                Ok(links) => links,
                Err(e) => {
                    found.push((
                        BlockerKind::Unverifiable,
                        format!(
                            "the federation links of the {} broker could not be told: {e}",
                            on.alias
                        ),
                    ));
                    broker.links.clone()
                }
            };
            let on_old = on.alias == BrokerAlias::Old;
            for link in &links {
                if link.from.iter().any(reads_old) || (on_old && link.from.is_empty()) {
                    found.push((
                        BlockerKind::Federation,
                        link_detail(link, on.alias, &self.old.id),
                    ));
                }
            }
        }
        for (kind, detail) in found {
            self.add(kind, detail);
        }
    }

    /// The old broker's hosts: its endpoints' and aliases, and its console URL's.
    fn old_hosts(&self) -> Vec<String> {
        let mut hosts = self.old.hosts.clone();
        if let Some(console) = &self.old.console_url {
            hosts.extend(host::hosts_in(console));
        }
        hosts
    }

    /// Secrets whose value was not read, once each with everything that reads them.
    fn unread_secrets(&mut self) {
        let id = self.old.id.clone();
        for (what, owners) in std::mem::take(&mut self.unread) {
            self.add(
                BlockerKind::Unverifiable,
                format!(
                    "{} read {what}: whether it names {id} is unknown",
                    owners.into_iter().collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Broker, Cluster, Container, Link, LinkKind, Queue, Service};

    fn resolved(alias: BrokerAlias, id: &str, host: &str) -> ResolvedBroker {
        ResolvedBroker::at(alias, id, host)
    }

    fn world() -> World {
        let td = |family: &str, revision, host: &str| TaskDefinition {
            family: family.into(),
            revision,
            containers: vec![Container {
                name: "app".into(),
                environment: [("SPRING_RABBITMQ_HOST".to_owned(), host.to_owned())]
                    .into_iter()
                    .collect(),
                ..Container::default()
            }],
            ..TaskDefinition::default()
        };
        World {
            version: 1,
            brokers: vec![Broker {
                id: "b-old".into(),
                state: "RUNNING".into(),
                endpoints: vec!["amqps://old.mq:5671".into()],
                queues: Some(vec![Queue {
                    vhost: "/".into(),
                    name: "q".into(),
                    messages: 0,
                    ..Queue::default()
                }]),
                ..Broker::default()
            }],
            clusters: vec![Cluster {
                name: "c".into(),
                services: vec![Service {
                    name: "s".into(),
                    task_definition: "s:2".into(),
                    ..Service::default()
                }],
                ..Cluster::default()
            }],
            task_definitions: vec![td("s", 1, "old.mq"), td("s", 2, "new.mq")],
            ..World::default()
        }
    }

    #[test]
    fn a_clean_world_has_no_blockers() {
        let w = world();
        let b = blockers(
            &w,
            &resolved(BrokerAlias::Old, "b-old", "old.mq"),
            &resolved(BrokerAlias::New, "b-new", "new.mq"),
        );
        assert_eq!(b, vec![]);
    }

    #[test]
    fn each_kind_is_found() {
        let mut w = world();
        w.clusters[0].services[0].task_definition = "s:1".into();
        w.task_definitions[1].status = Some("INACTIVE".into());
        w.brokers[0].queues.as_mut().unwrap()[0].messages = 3;
        w.brokers[0].connections.push(crate::model::Connection {
            client: "s".into(),
            peer: "10.0.0.1:5000".into(),
            ..Default::default()
        });
        let b = blockers(
            &w,
            &resolved(BrokerAlias::Old, "b-old", "old.mq"),
            &resolved(BrokerAlias::New, "b-new", "new.mq"),
        );
        let kinds: Vec<BlockerKind> = b.iter().map(|b| b.kind).collect();
        assert_eq!(
            kinds,
            vec![
                BlockerKind::Service,
                BlockerKind::TaskDefinition,
                BlockerKind::Queue,
                BlockerKind::Connection
            ]
        );
        assert_eq!(b[2].detail, "/ q holds 3 messages");
    }

    fn link(kind: LinkKind, name: &str, from: &[&str]) -> Link {
        Link {
            kind,
            vhost: "/".into(),
            name: name.into(),
            from: from.iter().map(|h| (*h).to_owned()).collect(),
            state: "running".into(),
            ..Link::default()
        }
    }

    /// The blockers of `world` with a new broker `b-new` (at `new.mq`) that runs `on_new` and an
    /// old broker that runs `on_old`.
    fn link_blockers(on_old: Vec<Link>, on_new: Vec<Link>) -> Vec<Blocker> {
        let mut w = world();
        w.brokers[0].links = on_old;
        w.brokers.push(Broker {
            id: "b-new".into(),
            endpoints: vec!["amqps://new.mq:5671".into()],
            queues: Some(Vec::new()),
            links: on_new,
            ..Broker::default()
        });
        let mut old = resolved(BrokerAlias::Old, "b-old", "old.mq");
        old.console_url = Some("https://b-old-console.mq:443".into());
        blockers(&w, &old, &resolved(BrokerAlias::New, "b-new", "new.mq"))
    }

    #[test]
    fn a_link_on_either_broker_that_reads_from_the_old_one_blocks() {
        let b = link_blockers(
            vec![
                link(LinkKind::Shovel, "drain-self", &[]),
                link(LinkKind::Shovel, "drain-named", &["OLD.MQ."]),
                link(
                    LinkKind::Shovel,
                    "drain-url",
                    &["amqps://u:pw@old.mq:5671/%2f"],
                ),
                link(LinkKind::Federation, "from-new", &["new.mq"]),
            ],
            vec![
                link(LinkKind::Shovel, "esr-leftovers", &["old.mq"]),
                link(LinkKind::Federation, "upstream", &["b-old-console.mq"]),
                link(LinkKind::Shovel, "elsewhere", &["rabbit-dr.example"]),
            ],
        );
        let details: Vec<&str> = b
            .iter()
            .inspect(|b| assert_eq!(b.kind, BlockerKind::Federation, "{b:?}"))
            .map(|b| b.detail.as_str())
            .collect();
        assert_eq!(
            details,
            [
                "federation link upstream on the new broker reads from b-old (state running)",
                "shovel drain-named on the old broker reads from b-old (state running)",
                "shovel drain-self on the old broker reads from b-old (state running)",
                "shovel drain-url on the old broker reads from b-old (state running)",
                "shovel esr-leftovers on the new broker reads from b-old (state running)",
            ]
        );
    }

    #[test]
    fn a_connection_blocker_names_the_service_it_comes_from() {
        let mut w = world();
        let connection = |client: &str, peer: &str| crate::model::Connection {
            client: client.into(),
            peer: peer.into(),
            ..Default::default()
        };
        w.brokers[0].connections = vec![
            connection("s-worker-1", "10.0.0.1:5000"),
            connection("", "10.0.0.2:5000"),
        ];
        let b = blockers(
            &w,
            &resolved(BrokerAlias::Old, "b-old", "old.mq"),
            &resolved(BrokerAlias::New, "b-new", "new.mq"),
        );
        let details: Vec<&str> = b.iter().map(|b| b.detail.as_str()).collect();
        assert_eq!(
            details,
            [
                "connection from c/s (s-worker-1, 10.0.0.1:5000) is open on b-old",
                "connection from unknown client (10.0.0.2:5000) is open on b-old",
            ]
        );
    }

    #[test]
    fn what_cannot_be_read_blocks() {
        let mut w = world();
        w.brokers[0].queues = None;
        let b = blockers(
            &w,
            &resolved(BrokerAlias::Old, "b-old", "old.mq"),
            &resolved(BrokerAlias::New, "b-new", "new.mq"),
        );
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].kind, BlockerKind::Unverifiable);
    }

    #[test]
    fn a_redacted_value_is_unverifiable() {
        for parameter in [true, false] {
            let mut w = world();
            let container = &mut w.task_definitions[1].containers[0];
            if parameter {
                container
                    .secrets
                    .insert("RABBIT_URL".into(), "/esr/rabbit/url".into());
                w.parameters
                    .insert("/esr/rabbit/url".into(), crate::discovery::REDACTED.into());
            } else {
                container
                    .environment
                    .insert("RABBIT_URL", crate::discovery::REDACTED);
            }
            let b = blockers(
                &w,
                &resolved(BrokerAlias::Old, "b-old", "old.mq"),
                &resolved(BrokerAlias::New, "b-new", "new.mq"),
            );
            assert_eq!(b.len(), 1, "{b:?}");
            assert_eq!(b[0].kind, BlockerKind::Unverifiable);
            assert!(b[0].detail.contains("redacted"), "{}", b[0].detail);
        }
    }

    /// `world()` with one resource of each kind on each broker.
    fn world_with_resources() -> World {
        use crate::model::{EventSourceMapping, Function, Pipe, Schedule, StateMachine};
        let old_arn = "arn:aws:mq:eu-west-2:1:broker:old:b-old";
        let new_arn = "arn:aws:mq:eu-west-2:1:broker:new:b-new";
        let mut w = world();
        w.brokers[0].arn = Some(old_arn.into());
        let function = |name: &str, host: &str| Function {
            name: name.into(),
            arn: Some(format!("arn:aws:lambda:eu-west-2:1:function:{name}")),
            environment: [("AMQP_HOST".to_owned(), host.to_owned())]
                .into_iter()
                .collect(),
            ..Function::default()
        };
        w.functions = vec![function("f-old", "old.mq"), function("f-new", "new.mq")];
        let mapping = |uuid: &str, source: &str| EventSourceMapping {
            uuid: uuid.into(),
            function: "f-old".into(),
            source: source.into(),
            ..EventSourceMapping::default()
        };
        w.event_source_mappings = vec![mapping("m-old", old_arn), mapping("m-new", new_arn)];
        let pipe = |name: &str, source: &str| Pipe {
            name: name.into(),
            source: source.into(),
            ..Pipe::default()
        };
        w.pipes = vec![pipe("p-old", old_arn), pipe("p-new", new_arn)];
        let machine = |name: &str, host: &str| StateMachine {
            name: name.into(),
            definition: serde_json::json!({ "States": { "Run": { "Parameters": { "Host": host } } } }),
            ..StateMachine::default()
        };
        w.state_machines = vec![machine("sm-old", "old.mq"), machine("sm-new", "new.mq")];
        let schedule = |name: &str, host: &str| {
            let mut s = Schedule {
                name: name.into(),
                cluster: "c".into(),
                task_definition: "s:2".into(),
                kind: crate::model::ScheduleKind::Schedule,
                ..Schedule::default()
            };
            s.overrides.insert(
                "app".into(),
                [("SPRING_RABBITMQ_HOST".to_owned(), host.to_owned())]
                    .into_iter()
                    .collect(),
            );
            s
        };
        w.schedules = vec![schedule("sch-old", "old.mq"), schedule("sch-new", "new.mq")];
        w
    }

    #[test]
    fn each_resource_kind_blocks_beside_a_clean_one() {
        let b = blockers(
            &world_with_resources(),
            &resolved(BrokerAlias::Old, "b-old", "old.mq"),
            &resolved(BrokerAlias::New, "b-new", "new.mq"),
        );
        let kinds: Vec<BlockerKind> = b.iter().map(|b| b.kind).collect();
        assert_eq!(
            kinds,
            vec![
                BlockerKind::Schedule,
                BlockerKind::Function,
                BlockerKind::EventSourceMapping,
                BlockerKind::Pipe,
                BlockerKind::StateMachine,
            ],
            "{b:#?}"
        );
        let details: Vec<&str> = b.iter().map(|b| b.detail.as_str()).collect();
        for (detail, named) in details.iter().zip([
            "sch-old",
            "arn:aws:lambda:eu-west-2:1:function:f-old",
            "m-old",
            "p-old",
            "sm-old",
        ]) {
            assert!(detail.contains(named), "{detail}");
        }
        for clean in ["sch-new", "f-new", "m-new", "p-new", "sm-new"] {
            assert!(
                !details.iter().any(|d| d.contains(clean)),
                "{clean}: {details:#?}"
            );
        }
    }

    #[test]
    fn an_override_that_names_the_new_broker_unblocks_a_schedule_on_an_old_revision() {
        let mut w = world_with_resources();
        w.schedules[1].task_definition = "s:1".into();
        w.schedules.remove(0);
        let b = blockers(
            &w,
            &resolved(BrokerAlias::Old, "b-old", "old.mq"),
            &resolved(BrokerAlias::New, "b-new", "new.mq"),
        );
        assert!(!b.iter().any(|b| b.kind == BlockerKind::Schedule), "{b:#?}");
    }
}
