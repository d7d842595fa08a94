//! A small harness for warren's CLI tests: typed builders for world files and plan files, and
//! a [`Scenario`] that writes both into a temporary folder and runs the built binary there.
//!
//! ```text
//! let world = World::new()
//!     .broker(old_broker().queue(Queue::new("q").messages(3).consumers(1)))
//!     .broker(new_broker())
//!     .service_env("c", "pub", &[("SPRING_RABBITMQ_HOST", OLD_HOST)]);
//! let plan = Plan::new().service(Declared::new("c", "pub").publishes(&["q"]));
//! let json = Scenario::new(&plan, &world).plan_json();
//! ```
//!
//! Every test file uses a different part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

/// The old broker of [`old_broker`] and [`Plan::new`].
pub const OLD_ID: &str = "b-1111";
/// Host of the old broker's only endpoint.
pub const OLD_HOST: &str = "b-1111.mq.example.com";
/// The new broker of [`new_broker`] and [`Plan::new`].
pub const NEW_ID: &str = "b-2222";
/// Host of the new broker's only endpoint.
pub const NEW_HOST: &str = "b-2222.mq.example.com";

/// `warren` as built by cargo, with colour turned off through `NO_COLOR`.
pub fn warren() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_warren"));
    cmd.env("NO_COLOR", "1").env_remove("RUST_BACKTRACE");
    cmd
}

/// Snapshot settings for CLI output: `description` (the command, say) heads the snapshot file;
/// temporary folders and content digests are replaced by placeholders (digests change with
/// any change to the world model; tests check their stability directly).
pub fn snapshot_settings(description: &str) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_description(description);
    settings.add_filter(r"[^\s'`\x22]*\.tmp[A-Za-z0-9]+", "[TEMP]");
    settings.add_filter(r"sha256:[0-9a-f]{64}", "sha256:[digest]");
    settings
}

// ---------------------------------------------------------------------------------------------
// The world file
// ---------------------------------------------------------------------------------------------

/// A rehearsal world file (CONTRACT.md, "The world file"), version 1.
#[derive(Debug, Clone, Default)]
pub struct World {
    region: Option<String>,
    brokers: Vec<Broker>,
    /// Cluster name and its services, in the order they were added.
    clusters: Vec<(String, Vec<Service>)>,
    task_definitions: Vec<TaskDef>,
    parameters: Vec<(String, String)>,
    schedules: Vec<Value>,
}

impl World {
    /// An empty world: no brokers, clusters, task definitions or parameters.
    pub fn new() -> World {
        World::default()
    }

    /// The standard pair: [`old_broker`] and [`new_broker`], both simulated with no queues.
    pub fn two_brokers() -> World {
        World::new().broker(old_broker()).broker(new_broker())
    }

    pub fn region(mut self, region: &str) -> World {
        self.region = Some(region.to_owned());
        self
    }

    pub fn broker(mut self, broker: Broker) -> World {
        self.brokers.push(broker);
        self
    }

    /// A cluster with no services (yet).
    pub fn cluster(mut self, name: &str) -> World {
        self.cluster_mut(name);
        self
    }

    /// `service` in `cluster` (created when missing). Its task definition is added separately.
    pub fn service(mut self, cluster: &str, service: Service) -> World {
        self.cluster_mut(cluster).push(service);
        self
    }

    pub fn task_definition(mut self, td: TaskDef) -> World {
        self.task_definitions.push(td);
        self
    }

    /// The common case in one call: service `name` in `cluster`, running task definition
    /// `name:1`, whose one container `app` has the environment `env`.
    pub fn service_env(self, cluster: &str, name: &str, env: &[(&str, &str)]) -> World {
        let mut td = TaskDef::new(name, 1).container("app");
        for (key, value) in env {
            td = td.env(key, value);
        }
        self.service(cluster, Service::new(name, &format!("{name}:1")))
            .task_definition(td)
    }

    /// An SSM parameter (name or ARN) and its value.
    pub fn parameter(mut self, name: &str, value: &str) -> World {
        self.parameters.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A scheduled task that starts `task_definition` (`family:revision`) in `cluster`.
    pub fn schedule(mut self, name: &str, cluster: &str, task_definition: &str) -> World {
        self.schedules
            .push(json!({ "name": name, "cluster": cluster, "task_definition": task_definition }));
        self
    }

    fn cluster_mut(&mut self, name: &str) -> &mut Vec<Service> {
        let i = match self.clusters.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                self.clusters.push((name.to_owned(), Vec::new()));
                self.clusters.len() - 1
            }
        };
        &mut self.clusters[i].1
    }

    /// The world file's JSON.
    pub fn to_json(&self) -> Value {
        let mut world = Map::new();
        world.insert("version".into(), json!(1));
        if let Some(region) = &self.region {
            world.insert("region".into(), json!(region));
        }
        world.insert(
            "brokers".into(),
            Value::Array(self.brokers.iter().map(Broker::to_json).collect()),
        );
        let clusters: Vec<Value> = self
            .clusters
            .iter()
            .map(|(name, services)| {
                json!({
                    "name": name,
                    "services": services.iter().map(Service::to_json).collect::<Vec<_>>(),
                })
            })
            .collect();
        world.insert("clusters".into(), Value::Array(clusters));
        world.insert(
            "task_definitions".into(),
            Value::Array(self.task_definitions.iter().map(TaskDef::to_json).collect()),
        );
        let parameters: Map<String, Value> = self
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        world.insert("parameters".into(), Value::Object(parameters));
        if !self.schedules.is_empty() {
            world.insert("schedules".into(), Value::Array(self.schedules.clone()));
        }
        Value::Object(world)
    }
}

/// The old broker: Amazon MQ broker `b-1111` (`esr-rabbit-old`) at `amqps://OLD_HOST:5671`.
pub fn old_broker() -> Broker {
    Broker::new(OLD_ID, &format!("amqps://{OLD_HOST}:5671")).name("esr-rabbit-old")
}

/// The new broker: Amazon MQ broker `b-2222` (`esr-rabbit-new`) at `amqps://NEW_HOST:5671`.
pub fn new_broker() -> Broker {
    Broker::new(NEW_ID, &format!("amqps://{NEW_HOST}:5671")).name("esr-rabbit-new")
}

/// A broker of the world file. Simulated (it lists `queues`, maybe none) unless [`Broker::live`].
#[derive(Debug, Clone)]
pub struct Broker {
    id: String,
    name: Option<String>,
    state: Option<String>,
    endpoints: Vec<String>,
    live: bool,
    queues: Vec<Queue>,
    exchanges: Vec<Value>,
    bindings: Vec<Value>,
    connections: Vec<Value>,
    /// Other keys of the broker (`policies`, `publicly_accessible`…), as written.
    extra: Map<String, Value>,
}

impl Broker {
    pub fn new(id: &str, endpoint: &str) -> Broker {
        Broker {
            id: id.to_owned(),
            name: None,
            state: None,
            endpoints: vec![endpoint.to_owned()],
            live: false,
            queues: Vec::new(),
            exchanges: Vec::new(),
            bindings: Vec::new(),
            connections: Vec::new(),
            extra: Map::new(),
        }
    }

    /// Another key of the broker's entry (`policies`, `publicly_accessible`…), as written.
    pub fn field(mut self, key: &str, value: Value) -> Broker {
        self.extra.insert(key.to_owned(), value);
        self
    }

    pub fn name(mut self, name: &str) -> Broker {
        self.name = Some(name.to_owned());
        self
    }

    /// `RUNNING` unless set (`DELETED` for a deleted broker).
    pub fn state(mut self, state: &str) -> Broker {
        self.state = Some(state.to_owned());
        self
    }

    /// One more endpoint besides the first.
    pub fn endpoint(mut self, endpoint: &str) -> Broker {
        self.endpoints.push(endpoint.to_owned());
        self
    }

    /// No endpoints at all (`"endpoints": []`): no host can name this broker.
    pub fn without_endpoints(mut self) -> Broker {
        self.endpoints.clear();
        self
    }

    /// A live broker: the file lists no `queues` key, so warren reads the real broker.
    pub fn live(mut self) -> Broker {
        self.live = true;
        self
    }

    pub fn queue(mut self, queue: Queue) -> Broker {
        self.queues.push(queue);
        self
    }

    /// An exchange of `kind` (`topic`, `fanout`, …) in vhost `/`.
    pub fn exchange(mut self, name: &str, kind: &str) -> Broker {
        self.exchanges
            .push(json!({ "vhost": "/", "name": name, "type": kind }));
        self
    }

    /// Binds `queue` to `exchange` with routing key `#`.
    pub fn binding(mut self, exchange: &str, queue: &str) -> Broker {
        self.bindings
            .push(json!({ "exchange": exchange, "queue": queue, "routing_key": "#" }));
        self
    }

    /// An open connection of `client` (a service name, for connections that move with it).
    pub fn connection(mut self, client: &str, peer: &str) -> Broker {
        self.connections
            .push(json!({ "client": client, "peer": peer }));
        self
    }

    fn to_json(&self) -> Value {
        let mut broker = Map::new();
        broker.insert("id".into(), json!(self.id));
        if let Some(name) = &self.name {
            broker.insert("name".into(), json!(name));
        }
        broker.insert(
            "state".into(),
            json!(self.state.as_deref().unwrap_or("RUNNING")),
        );
        broker.insert("endpoints".into(), json!(self.endpoints));
        if !self.exchanges.is_empty() {
            broker.insert("exchanges".into(), Value::Array(self.exchanges.clone()));
        }
        if !self.live {
            broker.insert(
                "queues".into(),
                Value::Array(self.queues.iter().map(Queue::to_json).collect()),
            );
        }
        if !self.bindings.is_empty() {
            broker.insert("bindings".into(), Value::Array(self.bindings.clone()));
        }
        if !self.connections.is_empty() {
            broker.insert("connections".into(), Value::Array(self.connections.clone()));
        }
        broker.extend(self.extra.clone());
        Value::Object(broker)
    }
}

/// A queue on a simulated broker, in vhost `/` unless set: empty, with no consumers, by default.
#[derive(Debug, Clone)]
pub struct Queue {
    vhost: String,
    name: String,
    messages: u64,
    consumers: u64,
    consumed_by: Vec<String>,
    polled: bool,
}

impl Queue {
    pub fn new(name: &str) -> Queue {
        Queue {
            vhost: "/".to_owned(),
            name: name.to_owned(),
            messages: 0,
            consumers: 0,
            consumed_by: Vec::new(),
            polled: false,
        }
    }

    /// Clients fetch from the queue with `basic.get`.
    pub fn polled(mut self) -> Queue {
        self.polled = true;
        self
    }

    pub fn vhost(mut self, vhost: &str) -> Queue {
        self.vhost = vhost.to_owned();
        self
    }

    pub fn messages(mut self, messages: u64) -> Queue {
        self.messages = messages;
        self
    }

    pub fn consumers(mut self, consumers: u64) -> Queue {
        self.consumers = consumers;
        self
    }

    /// A client (service name) that consumes the queue; also counts it as a consumer.
    pub fn consumed_by(mut self, client: &str) -> Queue {
        self.consumed_by.push(client.to_owned());
        self.consumers = self.consumers.max(self.consumed_by.len() as u64);
        self
    }

    fn to_json(&self) -> Value {
        let mut queue = json!({
            "vhost": self.vhost,
            "name": self.name,
            "messages": self.messages,
            "consumers": self.consumers,
        });
        if !self.consumed_by.is_empty() {
            queue["consumed_by"] = json!(self.consumed_by);
        }
        if self.polled {
            queue["polled"] = json!(true);
        }
        queue
    }
}

/// An ECS service: one task running, one desired, unless set.
#[derive(Debug, Clone)]
pub struct Service {
    name: String,
    task_definition: String,
    desired: u32,
    running: u32,
    deployments: Vec<Value>,
    rollout_seconds: Option<f64>,
    rollout: Option<String>,
}

impl Service {
    /// Service `name` running `task_definition` (`family:revision`).
    pub fn new(name: &str, task_definition: &str) -> Service {
        Service {
            name: name.to_owned(),
            task_definition: task_definition.to_owned(),
            desired: 1,
            running: 1,
            deployments: Vec::new(),
            rollout_seconds: None,
            rollout: None,
        }
    }

    pub fn desired(mut self, desired: u32) -> Service {
        self.desired = desired;
        self
    }

    pub fn running(mut self, running: u32) -> Service {
        self.running = running;
        self
    }

    /// Another deployment still running `task_definition` besides the current one.
    pub fn deployment(mut self, task_definition: &str, status: &str, running: u32) -> Service {
        self.deployments.push(json!({
            "task_definition": task_definition,
            "status": status,
            "running": running,
        }));
        self
    }

    /// Rehearsal: how long a rollout takes.
    pub fn rollout_seconds(mut self, seconds: f64) -> Service {
        self.rollout_seconds = Some(seconds);
        self
    }

    /// Rehearsal: every rollout of this service fails.
    pub fn rollout_fails(mut self) -> Service {
        self.rollout = Some("fail".to_owned());
        self
    }

    fn to_json(&self) -> Value {
        let mut service = json!({
            "name": self.name,
            "task_definition": self.task_definition,
            "desired": self.desired,
            "running": self.running,
        });
        if !self.deployments.is_empty() {
            service["deployments"] = Value::Array(self.deployments.clone());
        }
        if let Some(seconds) = self.rollout_seconds {
            service["rollout_seconds"] = json!(seconds);
        }
        if let Some(rollout) = &self.rollout {
            service["rollout"] = json!(rollout);
        }
        service
    }
}

/// A task definition revision. `env`, `secret` and `container_field` apply to the container
/// added last:
///
/// ```text
/// TaskDef::new("svc", 3)
///     .container("app").env("SPRING_RABBITMQ_HOST", OLD_HOST).secret("PW", "/rabbit/pw")
///     .container("sidecar").env("LOG_LEVEL", "INFO")
/// ```
#[derive(Debug, Clone)]
pub struct TaskDef {
    family: String,
    revision: u32,
    status: Option<String>,
    containers: Vec<Container>,
    extra: Map<String, Value>,
}

#[derive(Debug, Clone)]
struct Container {
    name: String,
    environment: Map<String, Value>,
    secrets: Map<String, Value>,
    extra: Map<String, Value>,
}

impl TaskDef {
    pub fn new(family: &str, revision: u32) -> TaskDef {
        TaskDef {
            family: family.to_owned(),
            revision,
            status: None,
            containers: Vec::new(),
            extra: Map::new(),
        }
    }

    /// `ACTIVE` (the default) or `INACTIVE`.
    pub fn status(mut self, status: &str) -> TaskDef {
        self.status = Some(status.to_owned());
        self
    }

    /// Starts a new container; the calls after it fill it.
    pub fn container(mut self, name: &str) -> TaskDef {
        self.containers.push(Container {
            name: name.to_owned(),
            environment: Map::new(),
            secrets: Map::new(),
            extra: Map::new(),
        });
        self
    }

    /// An environment variable of the last container.
    pub fn env(mut self, key: &str, value: &str) -> TaskDef {
        self.last_container()
            .environment
            .insert(key.to_owned(), json!(value));
        self
    }

    /// A secret of the last container: variable `key` read from `value_from` (an SSM
    /// parameter name or ARN, or a Secrets Manager ARN).
    pub fn secret(mut self, key: &str, value_from: &str) -> TaskDef {
        self.last_container()
            .secrets
            .insert(key.to_owned(), json!(value_from));
        self
    }

    /// A field of the last container that warren does not read (`image`, `cpu`, …).
    pub fn container_field(mut self, key: &str, value: Value) -> TaskDef {
        self.last_container().extra.insert(key.to_owned(), value);
        self
    }

    /// A field of the task definition that warren does not read (`cpu`, `taskRoleArn`, …).
    pub fn field(mut self, key: &str, value: Value) -> TaskDef {
        self.extra.insert(key.to_owned(), value);
        self
    }

    fn last_container(&mut self) -> &mut Container {
        self.containers
            .last_mut()
            .expect("call TaskDef::container before adding to a container")
    }

    fn to_json(&self) -> Value {
        let mut td = Map::new();
        td.insert("family".into(), json!(self.family));
        td.insert("revision".into(), json!(self.revision));
        if let Some(status) = &self.status {
            td.insert("status".into(), json!(status));
        }
        let containers: Vec<Value> = self
            .containers
            .iter()
            .map(|c| {
                let mut container = Map::new();
                container.insert("name".into(), json!(c.name));
                container.insert("environment".into(), Value::Object(c.environment.clone()));
                container.insert("secrets".into(), Value::Object(c.secrets.clone()));
                container.extend(c.extra.clone());
                Value::Object(container)
            })
            .collect();
        td.insert("containers".into(), Value::Array(containers));
        td.extend(self.extra.clone());
        Value::Object(td)
    }
}

// ---------------------------------------------------------------------------------------------
// The plan file
// ---------------------------------------------------------------------------------------------

/// How the plan file names a broker.
#[derive(Debug, Clone)]
pub enum By {
    Id(&'static str),
    Name(&'static str),
    Endpoints(Vec<String>),
}

/// A plan file (CONTRACT.md, "The plan file"). [`Plan::new`] names migration `test-migration`
/// and the brokers `b-1111` (old) and `b-2222` (new) by id, and declares no services.
#[derive(Debug, Clone)]
pub struct Plan {
    name: String,
    clusters: Option<Vec<String>>,
    broker_env: Option<Vec<String>>,
    strategy: Option<String>,
    old: By,
    new: By,
    /// More keys of `[brokers.old]` / `[brokers.new]`: alias, key, value (a string).
    broker_keys: Vec<(String, String, String)>,
    services: Vec<Declared>,
    parameters: Vec<(String, String)>,
}

impl Plan {
    pub fn new() -> Plan {
        Plan {
            name: "test-migration".to_owned(),
            clusters: None,
            broker_env: None,
            strategy: None,
            old: By::Id(OLD_ID),
            new: By::Id(NEW_ID),
            broker_keys: Vec::new(),
            services: Vec::new(),
            parameters: Vec::new(),
        }
    }

    /// `migration.clusters`: scan only these.
    pub fn clusters(mut self, clusters: &[&str]) -> Plan {
        self.clusters = Some(strings(clusters));
        self
    }

    /// `migration.broker_env`: search only these variables.
    pub fn broker_env(mut self, names: &[&str]) -> Plan {
        self.broker_env = Some(strings(names));
        self
    }

    /// `migration.strategy`: `drain` or `federate`.
    pub fn strategy(mut self, strategy: &str) -> Plan {
        self.strategy = Some(strategy.to_owned());
        self
    }

    pub fn old(mut self, by: By) -> Plan {
        self.old = by;
        self
    }

    pub fn new_broker(mut self, by: By) -> Plan {
        self.new = by;
        self
    }

    /// One more string key of `[brokers.<alias>]` (`amqp_url_env`, `upstream_url_env`…).
    pub fn broker_key(mut self, alias: &str, key: &str, value: &str) -> Plan {
        self.broker_keys
            .push((alias.to_owned(), key.to_owned(), value.to_owned()));
        self
    }

    /// A `[[services]]` entry.
    pub fn service(mut self, service: Declared) -> Plan {
        self.services.push(service);
        self
    }

    /// A `[parameters]` entry: the parameter holding the old host → the one holding the new.
    pub fn parameter(mut self, old: &str, new: &str) -> Plan {
        self.parameters.push((old.to_owned(), new.to_owned()));
        self
    }

    /// The plan file's text.
    pub fn to_toml(&self) -> String {
        let mut out = String::from("[migration]\n");
        out.push_str(&format!("name = {}\n", quote(&self.name)));
        if let Some(clusters) = &self.clusters {
            out.push_str(&format!("clusters = {}\n", list(clusters)));
        }
        if let Some(names) = &self.broker_env {
            out.push_str(&format!("broker_env = {}\n", list(names)));
        }
        if let Some(strategy) = &self.strategy {
            out.push_str(&format!("strategy = {}\n", quote(strategy)));
        }
        for (alias, by) in [("old", &self.old), ("new", &self.new)] {
            out.push_str(&format!("\n[brokers.{alias}]\n"));
            match by {
                By::Id(id) => out.push_str(&format!("id = {}\n", quote(id))),
                By::Name(name) => out.push_str(&format!("name = {}\n", quote(name))),
                By::Endpoints(endpoints) => {
                    out.push_str(&format!("endpoints = {}\n", list(endpoints)));
                }
            }
            for (_, key, value) in self.broker_keys.iter().filter(|(a, _, _)| a == alias) {
                out.push_str(&format!("{key} = {}\n", quote(value)));
            }
        }
        for service in &self.services {
            out.push_str("\n[[services]]\n");
            out.push_str(&format!("cluster = {}\n", quote(&service.cluster)));
            out.push_str(&format!("name = {}\n", quote(&service.name)));
            out.push_str(&format!("broker = {}\n", quote(&service.broker)));
            if !service.publishes.is_empty() {
                out.push_str(&format!("publishes = {}\n", list(&service.publishes)));
            }
            if !service.consumes.is_empty() {
                out.push_str(&format!("consumes = {}\n", list(&service.consumes)));
            }
        }
        if !self.parameters.is_empty() {
            out.push_str("\n[parameters]\n");
            for (old, new) in &self.parameters {
                out.push_str(&format!("{} = {}\n", quote(old), quote(new)));
            }
        }
        out
    }
}

/// One `[[services]]` entry; it moves to the new broker unless [`Declared::broker`] says `old`.
#[derive(Debug, Clone)]
pub struct Declared {
    cluster: String,
    name: String,
    broker: String,
    publishes: Vec<String>,
    consumes: Vec<String>,
}

impl Declared {
    pub fn new(cluster: &str, name: &str) -> Declared {
        Declared {
            cluster: cluster.to_owned(),
            name: name.to_owned(),
            broker: "new".to_owned(),
            publishes: Vec::new(),
            consumes: Vec::new(),
        }
    }

    /// The broker the service should end on: `old` or `new`.
    pub fn broker(mut self, alias: &str) -> Declared {
        self.broker = alias.to_owned();
        self
    }

    pub fn publishes(mut self, names: &[&str]) -> Declared {
        self.publishes = strings(names);
        self
    }

    pub fn consumes(mut self, queues: &[&str]) -> Declared {
        self.consumes = strings(queues);
        self
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// A TOML basic string.
fn quote(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

// ---------------------------------------------------------------------------------------------
// Running warren
// ---------------------------------------------------------------------------------------------

/// A temporary folder holding `plan.toml` and `world.json`; warren runs inside it, so
/// messages name the files as `plan.toml` and `world.json`.
pub struct Scenario {
    dir: tempfile::TempDir,
}

impl Scenario {
    pub fn new(plan: &Plan, world: &World) -> Scenario {
        Scenario::with_plan_text(&plan.to_toml(), world)
    }

    /// A scenario whose plan file is `text`, as written.
    pub fn with_plan_text(text: &str, world: &World) -> Scenario {
        Scenario::from_texts(text, &pretty(&world.to_json()))
    }

    /// A scenario whose plan and world files are these texts, as written.
    pub fn from_texts(plan: &str, world: &str) -> Scenario {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let scenario = Scenario { dir };
        scenario.write("plan.toml", plan);
        scenario.write("world.json", world);
        scenario
    }

    /// The folder warren runs in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes (or replaces) file `name` in the scenario's folder.
    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).expect("write a scenario file");
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).expect("read a scenario file")
    }

    /// The world file as it is now (after `apply`, for instance).
    pub fn world_json(&self) -> Value {
        serde_json::from_str(&self.read("world.json")).expect("the world file is JSON")
    }

    /// `warren ARGS…` inside the scenario's folder.
    pub fn warren(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = warren();
        cmd.current_dir(self.dir()).args(args);
        cmd
    }

    /// `warren plan plan.toml --world world.json EXTRA…`.
    pub fn plan(&self, extra: &[&str]) -> assert_cmd::Command {
        let mut args = vec!["plan", "plan.toml", "--world", "world.json"];
        args.extend_from_slice(extra);
        self.warren(&args)
    }

    /// Human output of a plan that succeeds (exit 0, nothing on stderr).
    pub fn plan_human(&self) -> String {
        let out = self
            .plan(&[])
            .assert()
            .success()
            .stderr("")
            .get_output()
            .clone();
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    /// `--format json` of a plan that succeeds (exit 0, nothing on stderr), parsed.
    pub fn plan_json(&self) -> Value {
        let out = self
            .plan(&["--format", "json"])
            .assert()
            .success()
            .stderr("")
            .get_output()
            .clone();
        serde_json::from_slice(&out.stdout).expect("plan --format json prints JSON")
    }
}

/// `value` as pretty JSON with a final newline.
pub fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("JSON serialises");
    text.push('\n');
    text
}

/// The change for `cluster/service` in a plan's JSON.
pub fn change<'a>(plan: &'a Value, id: &str) -> &'a Value {
    plan["changes"]
        .as_array()
        .expect("changes is a list")
        .iter()
        .find(|c| format!("{}/{}", str_of(&c["cluster"]), str_of(&c["service"])) == id)
        .unwrap_or_else(|| panic!("no change for {id} in {}", pretty(&plan["changes"])))
}

/// The plan's warnings.
pub fn warnings(plan: &Value) -> Vec<String> {
    plan["warnings"]
        .as_array()
        .expect("warnings is a list")
        .iter()
        .map(|w| str_of(w).to_owned())
        .collect()
}

/// `cluster/service` of each unmanaged service in a plan's JSON, in order.
pub fn unmanaged_ids(plan: &Value) -> Vec<String> {
    plan["unmanaged"]
        .as_array()
        .expect("unmanaged is a list")
        .iter()
        .map(|u| format!("{}/{}", str_of(&u["cluster"]), str_of(&u["service"])))
        .collect()
}

/// The rewrites of one change.
pub fn rewrites(change: &Value) -> &[Value] {
    change["rewrites"].as_array().expect("rewrites is a list")
}

/// The plan's waves, as lists of `cluster/service`.
pub fn waves(plan: &Value) -> Vec<Vec<String>> {
    serde_json::from_value(plan["waves"].clone()).expect("waves is a list of lists of strings")
}

fn str_of(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, found {value}"))
}

// ---------------------------------------------------------------------------------------------
// Commands that change the world, and what they leave behind
// ---------------------------------------------------------------------------------------------

/// The journal's file name: `warren-journal.jsonl`, beside the world file.
pub const JOURNAL: &str = "warren-journal.jsonl";

impl Scenario {
    /// `warren COMMAND plan.toml --world world.json EXTRA…`.
    pub fn on_world(&self, command: &str, extra: &[&str]) -> assert_cmd::Command {
        let mut args = vec![command, "plan.toml", "--world", "world.json"];
        args.extend_from_slice(extra);
        self.warren(&args)
    }

    /// `warren apply plan.toml --world world.json --auto-approve --drain-timeout 1 EXTRA…`.
    pub fn apply(&self, extra: &[&str]) -> assert_cmd::Command {
        let mut args = vec!["--auto-approve", "--drain-timeout", "1"];
        args.extend_from_slice(extra);
        self.on_world("apply", &args)
    }

    /// `warren rollback plan.toml --world world.json --auto-approve --drain-timeout 1 EXTRA…`.
    pub fn rollback(&self, extra: &[&str]) -> assert_cmd::Command {
        let mut args = vec!["--auto-approve", "--drain-timeout", "1"];
        args.extend_from_slice(extra);
        self.on_world("rollback", &args)
    }

    /// File `name` as bytes, to compare before and after a command that must change nothing.
    pub fn bytes(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).expect("read a scenario file")
    }

    pub fn exists(&self, name: &str) -> bool {
        self.path(name).exists()
    }

    /// Replaces the world file with `world` (pretty JSON).
    pub fn set_world(&self, world: &Value) {
        self.write("world.json", &pretty(world));
    }

    /// Changes the world file in place, as a person editing it by hand would.
    pub fn edit_world(&self, edit: impl FnOnce(&mut Value)) {
        let mut world = self.world_json();
        edit(&mut world);
        self.set_world(&world);
    }

    /// The journal's entries, oldest first (none when there is no journal yet). Every line must
    /// be one JSON object.
    pub fn journal(&self) -> Vec<Value> {
        if !self.exists(JOURNAL) {
            return Vec::new();
        }
        self.read(JOURNAL)
            .lines()
            .map(|line| {
                let entry: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("journal line is not JSON ({e}): {line}"));
                assert!(entry.is_object(), "journal line is not an object: {line}");
                entry
            })
            .collect()
    }
}

/// `family:revision` that `cluster/service` runs in a world file's JSON.
pub fn running(world: &Value, cluster: &str, service: &str) -> String {
    world_service(world, cluster, service)["task_definition"]
        .as_str()
        .expect("task_definition is a string")
        .to_owned()
}

/// Service `cluster/service` of a world file's JSON.
pub fn world_service<'a>(world: &'a Value, cluster: &str, service: &str) -> &'a Value {
    world["clusters"]
        .as_array()
        .expect("clusters is a list")
        .iter()
        .filter(|c| c["name"] == cluster)
        .flat_map(|c| c["services"].as_array().expect("services is a list"))
        .find(|s| s["name"] == service)
        .unwrap_or_else(|| panic!("no service {cluster}/{service} in the world"))
}

/// Task definition `family:revision` of a world file's JSON.
pub fn task_def<'a>(world: &'a Value, key: &str) -> &'a Value {
    let (family, revision) = key.rsplit_once(':').expect("family:revision");
    let revision: u64 = revision.parse().expect("a revision number");
    world["task_definitions"]
        .as_array()
        .expect("task_definitions is a list")
        .iter()
        .find(|td| td["family"] == family && td["revision"] == revision)
        .unwrap_or_else(|| panic!("no task definition {key} in the world"))
}

/// The registered revisions of `family`, in file order.
pub fn revisions(world: &Value, family: &str) -> Vec<u64> {
    world["task_definitions"]
        .as_array()
        .expect("task_definitions is a list")
        .iter()
        .filter(|td| td["family"] == family)
        .map(|td| td["revision"].as_u64().expect("revision is a number"))
        .collect()
}

/// Broker `id` of a world file's JSON.
pub fn world_broker<'a>(world: &'a Value, id: &str) -> &'a Value {
    world["brokers"]
        .as_array()
        .expect("brokers is a list")
        .iter()
        .find(|b| b["id"] == id)
        .unwrap_or_else(|| panic!("no broker {id} in the world"))
}

/// Value of `variable` in container `container` of task definition `key`.
pub fn env_of<'a>(world: &'a Value, key: &str, container: &str, variable: &str) -> &'a str {
    task_def(world, key)["containers"]
        .as_array()
        .expect("containers is a list")
        .iter()
        .find(|c| c["name"] == container)
        .unwrap_or_else(|| panic!("no container {container} in {key}"))["environment"][variable]
        .as_str()
        .unwrap_or_else(|| panic!("no variable {variable} in {key}/{container}"))
}

/// The journal entries of `step` (`update`, `rollout`, `drain`, …), in order.
pub fn steps<'a>(journal: &'a [Value], step: &str) -> Vec<&'a Value> {
    journal.iter().filter(|e| e["step"] == step).collect()
}

/// An RFC 3339 time of a journal entry (`time_start` or `time_end`).
pub fn time_of(entry: &Value, key: &str) -> std::time::SystemTime {
    let text = entry[key]
        .as_str()
        .unwrap_or_else(|| panic!("journal entry without {key}: {entry}"));
    humantime::parse_rfc3339(text).unwrap_or_else(|e| panic!("{key} {text:?} is not RFC 3339: {e}"))
}

/// stdout and stderr of a finished command, together, for messages that may go to either.
pub fn all_output(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

// ---------------------------------------------------------------------------------------------
// Runs in the background, and waiting on the journal
// ---------------------------------------------------------------------------------------------

impl Scenario {
    /// Starts `warren ARGS…` in the scenario's folder, in the background, with no input and its
    /// output discarded.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        std::process::Command::new(env!("CARGO_BIN_EXE_warren"))
            .current_dir(self.dir())
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start warren")
    }

    /// The journal's entries that parse as JSON, oldest first (a line being written is left
    /// out); none when there is no journal yet.
    pub fn journal_so_far(&self) -> Vec<Value> {
        std::fs::read_to_string(self.path(JOURNAL))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect()
    }

    /// Waits (polling, at most a minute) until the journal has an entry that `what` matches.
    ///
    /// # Panics
    /// When a minute passes first.
    pub fn wait_for_entry(&self, what: impl Fn(&Value) -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !self.journal_so_far().iter().any(&what) {
            assert!(
                std::time::Instant::now() < deadline,
                "the journal never showed the step:\n{}",
                std::fs::read_to_string(self.path(JOURNAL)).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// The variables a live rehearsal's plan names for the URLs of the two nodes.
pub const OLD_MGMT: &str = "WARREN_TEST_OLD_MANAGEMENT_URL";
pub const NEW_MGMT: &str = "WARREN_TEST_NEW_MANAGEMENT_URL";
pub const OLD_AMQP: &str = "WARREN_TEST_OLD_AMQP_URL";
pub const NEW_AMQP: &str = "WARREN_TEST_NEW_AMQP_URL";

/// `plan` with the four URL variables named in its `[brokers.old]` and `[brokers.new]`.
pub fn with_url_variables(plan: &str) -> String {
    let mut plan = plan.to_owned();
    for (alias, id, management, amqp) in [
        ("old", OLD_ID, OLD_MGMT, OLD_AMQP),
        ("new", NEW_ID, NEW_MGMT, NEW_AMQP),
    ] {
        let section = format!("[brokers.{alias}]\nid = \"{id}\"\n");
        assert!(plan.contains(&section), "{plan}");
        plan = plan.replace(
            &section,
            &format!("{section}management_url_env = \"{management}\"\namqp_url_env = \"{amqp}\"\n"),
        );
    }
    plan
}

/// `command` with the four URL variables set: `urls` holds the management and AMQP URLs of the
/// old node, then of the new one.
pub fn with_urls(
    command: &mut assert_cmd::Command,
    urls: [(String, String); 2],
) -> &mut assert_cmd::Command {
    let [(old_management, old_amqp), (new_management, new_amqp)] = urls;
    command
        .env(OLD_MGMT, old_management)
        .env(NEW_MGMT, new_management)
        .env(OLD_AMQP, old_amqp)
        .env(NEW_AMQP, new_amqp)
}
