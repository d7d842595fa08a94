//! Warren's live broker (`backend::broker`: the management API through RabbitMQ's own
//! `rabbitmq_http_client` crate, and AMQP through lapin) against real RabbitMQ nodes, and
//! `warren plan` / `warren decommission` on a rehearsal world whose brokers are live. The nodes
//! run RabbitMQ 3.10 (Debian's package), so these tests also show rabbitmq_http_client working
//! on RabbitMQ 3.10: reading a broker, declaring definitions, starting shovels and declaring
//! and removing federation upstreams and policies there.
//!
//! The nodes come from `support::rabbit`: one on 127.0.0.1 (the old broker) and one on
//! 127.0.0.2 (the new), shared by every test of this binary, so every test uses names of its
//! own. AMQP clients (for connections and consumers, which the management API cannot make) are
//! lapin connections named after the test.

mod common;
mod support;

use std::time::Duration;

use futures_util::StreamExt as _;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, Consumer};
use serde_json::Value;

use common::{all_output, Declared, Plan, Scenario, World, NEW_ID, OLD_ID};
use support::rabbit::{self, RabbitNode};
use warren::backend::broker::federation::{self, Upstream};
use warren::backend::broker::{BrokerApi, Definition, Live, Management, Shovel};
use warren::config::BrokerAlias;
use warren::discovery::ResolvedBroker;
use warren::model::{Binding, Broker, Exchange, LinkKind, Policy, Queue};

// ---------------------------------------------------------------------------------------------
// An AMQP client
// ---------------------------------------------------------------------------------------------

/// A named AMQP connection to a node, open until dropped, with one channel and the consumers
/// started on it. It runs on a runtime of its own, so it stays alive while the test blocks.
struct Client {
    runtime: tokio::runtime::Runtime,
    connection: Connection,
    channel: Channel,
    consumers: Vec<Consumer>,
}

impl Client {
    /// Connects to `node` (vhost `/`) as connection `name` (the management API's
    /// `user_provided_name`).
    fn connect(node: &RabbitNode, name: &str) -> Client {
        Client::connect_to(node, "%2F", name)
    }

    /// Connects to `node`'s vhost `vhost` (percent-encoded) as connection `name`.
    fn connect_to(node: &RabbitNode, vhost: &str, name: &str) -> Client {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let url = format!(
            "amqp://{}:{}@{}:{}/{vhost}",
            rabbit::USER,
            rabbit::PASSWORD,
            node.ip(),
            node.amqp_port()
        );
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        let (connection, channel) = runtime
            .block_on(async {
                let connection = Connection::connect(&url, properties).await?;
                let channel = connection.create_channel().await?;
                Ok::<_, lapin::Error>((connection, channel))
            })
            .unwrap_or_else(|e| panic!("cannot connect to {url} as {name}: {e}"));
        Client {
            runtime,
            connection,
            channel,
            consumers: Vec::new(),
        }
    }

    /// Starts a consumer of `queue` that takes one message and never acknowledges it, so the
    /// queue keeps counting every message.
    fn consume(&mut self, queue: &str, tag: &str) {
        let consumer = self
            .runtime
            .block_on(async {
                self.channel
                    .basic_qos(1, BasicQosOptions::default())
                    .await?;
                self.channel
                    .basic_consume(
                        queue.into(),
                        tag.into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await
            })
            .unwrap_or_else(|e| panic!("cannot consume {queue}: {e}"));
        self.consumers.push(consumer);
    }

    /// Takes the next message the last consumer started has been delivered, and acknowledges
    /// it.
    fn ack_next(&mut self) {
        let consumer = self.consumers.last_mut().expect("a consumer was started");
        self.runtime
            .block_on(async {
                let delivery = tokio::time::timeout(Duration::from_secs(15), consumer.next())
                    .await
                    .expect("a delivery within 15 s")
                    .expect("the consumer is open")?;
                delivery.ack(BasicAckOptions::default()).await
            })
            .unwrap_or_else(|e| panic!("cannot acknowledge: {e}"));
    }

    /// `(messages, consumers)` of `queue` as a passive declare returns them: exact, no lag.
    fn counts(&self, queue: &str) -> (u32, u32) {
        let declared = self
            .runtime
            .block_on(self.channel.queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            ))
            .unwrap_or_else(|e| panic!("passive declare of {queue}: {e}"));
        (declared.message_count(), declared.consumer_count())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self
            .runtime
            .block_on(self.connection.close(200, "test done".into()));
    }
}

/// Whether `node`'s management API lists a connection named `name`.
fn lists_connection(node: &RabbitNode, name: &str) -> bool {
    node.get("/api/connections")
        .and_then(|c| c.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .any(|c| c["user_provided_name"] == name)
}

/// Reads `node` into an empty live broker through warren's client.
fn read(node: &RabbitNode) -> Broker {
    let mut broker = Broker::default();
    Management::new(&node.management_url())
        .expect("a management URL")
        .read_into(&mut broker)
        .unwrap_or_else(|e| panic!("read_into {}: {e}", node.nodename()));
    broker
}

fn queue_names(broker: &Broker) -> Vec<String> {
    broker
        .queues
        .as_ref()
        .expect("read_into fills queues")
        .iter()
        .map(|q| format!("{} {}", q.vhost, q.name))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// (a) One queue
// ---------------------------------------------------------------------------------------------

#[test]
fn queue_gives_the_exact_message_count_and_none_for_a_missing_queue() {
    let node = rabbit::shared_old();
    node.declare_queue("/", "live-a-orders");
    node.publish("/", "", "live-a-orders", 12);
    node.wait_for_messages("/", "live-a-orders", 12);

    let management = Management::new(&node.management_url()).unwrap();
    let queue = management
        .queue("/", "live-a-orders")
        .unwrap()
        .expect("the queue exists");
    assert_eq!(queue.vhost, "/");
    assert_eq!(queue.name, "live-a-orders");
    assert_eq!(queue.messages, 12);
    assert_eq!(queue.consumers, 0);

    assert_eq!(management.queue("/", "live-a-no-such-queue").unwrap(), None);
    assert_eq!(
        management.queue("no-such-vhost", "live-a-orders").unwrap(),
        None
    );
}

#[test]
fn a_queue_that_a_client_fetched_from_with_basic_get_is_read_as_polled() {
    let node = rabbit::shared_old();
    for queue in ["live-a-polled", "live-a-pushed"] {
        node.declare_queue("/", queue);
        node.publish("/", "", queue, 2);
        node.wait_for_messages("/", queue, 2);
    }
    // The management API's "get messages" fetches with basic.get.
    node.request(
        "POST",
        "/api/queues/%2F/live-a-polled/get",
        Some(
            &serde_json::json!({ "count": 1, "ackmode": "ack_requeue_false", "encoding": "auto" }),
        ),
    )
    .expect("get a message");
    let counted = node.wait_until(|n| {
        let stats = n.queue_info("/", "live-a-polled").unwrap_or_default()["message_stats"].clone();
        ["get", "get_no_ack", "get_empty"]
            .iter()
            .any(|k| stats[*k].as_u64().is_some_and(|c| c > 0))
    });
    assert!(counted, "{:?}", node.queue_info("/", "live-a-polled"));

    let broker = read(node);
    let polled = |name: &str| broker.queue(name).expect("the queue is read").polled;
    assert!(polled("live-a-polled"));
    assert!(!polled("live-a-pushed"), "published to, never fetched from");
}

#[test]
fn queue_reads_a_queue_of_another_vhost() {
    let node = rabbit::shared_old();
    node.declare_vhost("live-a/esr");
    node.declare_queue("live-a/esr", "live-a orders");
    node.publish("live-a/esr", "", "live-a orders", 2);
    node.wait_for_messages("live-a/esr", "live-a orders", 2);

    let management = Management::new(&node.management_url()).unwrap();
    let queue = management
        .queue("live-a/esr", "live-a orders")
        .unwrap()
        .expect("the queue exists in its vhost");
    assert_eq!((queue.vhost.as_str(), queue.messages), ("live-a/esr", 2));
    assert_eq!(management.queue("/", "live-a orders").unwrap(), None);
}

// ---------------------------------------------------------------------------------------------
// (b) The whole topology
// ---------------------------------------------------------------------------------------------

#[test]
fn read_into_fills_queues_exchanges_bindings_and_connections() {
    let node = rabbit::shared_old();
    node.declare_exchange("/", "live-b-events", "topic");
    node.declare_queue("/", "live-b-orders");
    node.declare_queue("/", "live-b-idle");
    node.bind("/", "live-b-events", "live-b-orders", "orders.#");
    node.declare_exchange("/", "live-b-ingress", "fanout");
    node.bind_exchange("/", "live-b-ingress", "live-b-events", "");
    node.publish("/", "live-b-events", "orders.created", 3);
    node.wait_for_messages("/", "live-b-orders", 3);

    let mut client = Client::connect(node, "live-b-client");
    client.consume("live-b-orders", "live-b-consumer");
    // A passive declare sees the truth at once: 2 ready, 1 delivered and unacknowledged.
    assert_eq!(client.counts("live-b-orders"), (2, 1));

    // The management statistics lag: poll until they show the consumer and the connection.
    let mut broker = Broker::default();
    let settled = node.wait_until(|node| {
        broker = read(node);
        let orders = broker.queue("live-b-orders");
        orders.is_some_and(|q| q.messages == 3 && q.consumers == 1)
            && broker
                .connections
                .iter()
                .any(|c| c.client == "live-b-client")
    });
    assert!(
        settled,
        "read_into never showed the consumer and the connection: {broker:#?}"
    );

    let orders = broker.queue("live-b-orders").unwrap();
    assert_eq!(orders.vhost, "/");
    let idle = broker.queue("live-b-idle").expect("the idle queue");
    assert_eq!((idle.messages, idle.consumers), (0, 0));

    let events = broker
        .exchanges
        .iter()
        .find(|e| e.name == "live-b-events")
        .unwrap_or_else(|| panic!("no live-b-events in {:#?}", broker.exchanges));
    assert_eq!(
        (events.vhost.as_str(), events.kind.as_deref()),
        ("/", Some("topic"))
    );
    assert!(
        broker
            .exchanges
            .iter()
            .all(|e| !e.name.is_empty() && !e.name.starts_with("amq.")),
        "the default and amq.* exchanges are left out: {:#?}",
        broker.exchanges
    );

    assert!(
        broker.bindings.contains(&Binding::to_queue(
            "/",
            "live-b-events",
            "live-b-orders",
            "orders.#"
        )),
        "{:#?}",
        broker.bindings
    );
    assert!(
        broker.bindings.contains(&Binding::to_exchange(
            "/",
            "live-b-ingress",
            "live-b-events",
            ""
        )),
        "an exchange-to-exchange binding is read too: {:#?}",
        broker.bindings
    );
    assert!(
        broker.bindings.iter().all(|b| !b.exchange.is_empty()),
        "the default exchange's implicit bindings are left out: {:#?}",
        broker.bindings
    );

    let connection = broker
        .connections
        .iter()
        .find(|c| c.client == "live-b-client")
        .unwrap();
    assert!(
        connection.peer.starts_with("127.0.0.1:"),
        "peer is host:port: {connection:?}"
    );
    drop(client);
}

// ---------------------------------------------------------------------------------------------
// (c) Two nodes side by side
// ---------------------------------------------------------------------------------------------

#[test]
fn two_nodes_on_two_loopback_addresses_see_only_their_own_queues() {
    let (old, new) = (rabbit::shared_old(), rabbit::shared_new());
    assert_eq!(old.ip().to_string(), "127.0.0.1");
    assert_eq!(new.ip().to_string(), "127.0.0.2");
    assert_ne!(old.dist_port(), new.dist_port());
    old.declare_queue("/", "live-c-on-old");
    new.declare_queue("/", "live-c-on-new");
    old.publish("/", "", "live-c-on-old", 1);
    new.publish("/", "", "live-c-on-new", 2);
    old.wait_for_messages("/", "live-c-on-old", 1);
    new.wait_for_messages("/", "live-c-on-new", 2);

    let (on_old, on_new) = (read(old), read(new));
    assert!(queue_names(&on_old).contains(&"/ live-c-on-old".to_owned()));
    assert!(!queue_names(&on_old).contains(&"/ live-c-on-new".to_owned()));
    assert!(queue_names(&on_new).contains(&"/ live-c-on-new".to_owned()));
    assert!(!queue_names(&on_new).contains(&"/ live-c-on-old".to_owned()));
    assert_eq!(on_new.queue("live-c-on-new").unwrap().messages, 2);

    let old_api = Management::new(&old.management_url()).unwrap();
    let new_api = Management::new(&new.management_url()).unwrap();
    assert_eq!(old_api.queue("/", "live-c-on-new").unwrap(), None);
    assert_eq!(new_api.queue("/", "live-c-on-old").unwrap(), None);
    assert_eq!(
        new_api
            .queue("/", "live-c-on-new")
            .unwrap()
            .unwrap()
            .messages,
        2
    );
}

// ---------------------------------------------------------------------------------------------
// (d) Credentials
// ---------------------------------------------------------------------------------------------

#[test]
fn wrong_credentials_name_the_url_with_the_password_masked() {
    let node = rabbit::shared_old();
    let password = "live-d-not-the-password";
    let url = format!(
        "http://guest:{password}@{}:{}",
        node.ip(),
        node.management_port()
    );
    let masked = format!("http://guest:****@{}:{}", node.ip(), node.management_port());
    let management = Management::new(&url).unwrap();
    assert!(!format!("{management:?}").contains(password));

    let err = management.queue("/", "anything").unwrap_err().to_string();
    assert!(err.contains(&masked), "{err}");
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(!err.contains(password), "{err}");

    let err = management
        .read_into(&mut Broker::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains(&masked) && !err.contains(password), "{err}");

    // Nobody listening: the same masking.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = Management::new(&format!("http://guest:{password}@127.0.0.1:{closed}"))
        .unwrap()
        .queue("/", "anything")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("http://guest:****@127.0.0.1:{closed}")) && !err.contains(password),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// (e) warren plan and warren decommission on live brokers
// ---------------------------------------------------------------------------------------------

const OLD_MGMT_VAR: &str = "WARREN_TEST_OLD_MANAGEMENT_URL";
const NEW_MGMT_VAR: &str = "WARREN_TEST_NEW_MANAGEMENT_URL";
/// The vhost the consumed queue lives in (not `/`, so the plan must have asked the node).
const VHOST: &str = "live-e";
const ORDERS: &str = "live-e-orders";

/// A world whose two brokers are the two live nodes (their files list no queues), with
/// `shop/orders` consuming [`ORDERS`] on the old one, and a plan that moves it, whose brokers
/// name their management URLs through [`OLD_MGMT_VAR`] and [`NEW_MGMT_VAR`].
fn live_scenario(old: &RabbitNode, new: &RabbitNode) -> Scenario {
    let world = World::new()
        .broker(
            common::Broker::new(OLD_ID, &old.amqp_endpoint())
                .name("esr-rabbit-old")
                .live(),
        )
        .broker(
            common::Broker::new(NEW_ID, &new.amqp_endpoint())
                .name("esr-rabbit-new")
                .live(),
        )
        .service_env(
            "shop",
            "orders",
            &[("SPRING_RABBITMQ_ADDRESSES", &old.amqp_endpoint())],
        );
    let plan = Plan::new()
        .clusters(&["shop"])
        .service(Declared::new("shop", "orders").consumes(&[ORDERS]))
        .to_toml();
    let plan = with_management_env(&plan, "old", OLD_ID, OLD_MGMT_VAR);
    let plan = with_management_env(&plan, "new", NEW_ID, NEW_MGMT_VAR);
    Scenario::with_plan_text(&plan, &world)
}

/// `plan` with `management_url_env = "var"` in `[brokers.alias]`, which names `id`.
fn with_management_env(plan: &str, alias: &str, id: &str, var: &str) -> String {
    let section = format!("[brokers.{alias}]\nid = \"{id}\"\n");
    assert!(plan.contains(&section), "{plan}");
    plan.replace(
        &section,
        &format!("{section}management_url_env = \"{var}\"\n"),
    )
}

/// `warren ARGS…` in the scenario, with both management URLs in its environment.
fn live_warren(s: &Scenario, args: &[&str]) -> std::process::Output {
    s.warren(args)
        .env(OLD_MGMT_VAR, rabbit::shared_old().management_url())
        .env(NEW_MGMT_VAR, rabbit::shared_new().management_url())
        .timeout(Duration::from_secs(60))
        .output()
        .expect("warren runs")
}

#[test]
fn plan_and_decommission_read_live_brokers() {
    let (old, new) = (rabbit::shared_old(), rabbit::shared_new());
    for node in [old, new] {
        node.declare_vhost(VHOST);
        node.declare_queue(VHOST, ORDERS);
    }
    old.publish(VHOST, "", ORDERS, 5);
    old.wait_for_messages(VHOST, ORDERS, 5);
    let s = live_scenario(old, new);

    // plan: both topologies read from the nodes, so no warning about an unknown topology, and
    // the drain waits for the queue in the vhost the old node reports.
    let output = live_warren(
        &s,
        &[
            "plan",
            "plan.toml",
            "--world",
            "world.json",
            "--format",
            "json",
        ],
    );
    assert!(output.status.success(), "{}", all_output(&output));
    let plan: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("plan prints JSON ({e}): {}", all_output(&output)));
    let warnings = common::warnings(&plan);
    assert!(
        warnings.iter().all(|w| !w.contains("unknown")),
        "{warnings:#?}"
    );
    let drains = plan["drains"].as_array().expect("drains is a list");
    let drain = drains
        .iter()
        .find(|d| d["queue"] == ORDERS)
        .unwrap_or_else(|| panic!("no drain of {ORDERS}: {drains:#?}"));
    assert_eq!(drain["broker"], "old", "{drain}");
    assert_eq!(drain["vhost"], VHOST, "{drain}");
    assert_eq!(
        common::change(&plan, "shop/orders")["to"],
        "new",
        "{:#}",
        plan["changes"]
    );

    // decommission: the messages on the old node and a live client block it.
    let _client = Client::connect(old, "live-e-client");
    assert!(
        old.wait_until(|node| lists_connection(node, "live-e-client")),
        "the node never listed connection live-e-client"
    );
    let output = live_warren(
        &s,
        &[
            "decommission",
            "plan.toml",
            "--world",
            "world.json",
            "--confirm",
            OLD_ID,
            "--format",
            "json",
        ],
    );
    assert_eq!(output.status.code(), Some(3), "{}", all_output(&output));
    let decision: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("decommission prints JSON ({e}): {}", all_output(&output)));
    assert_eq!(decision["refused"], true);
    let blockers = decision["blockers"].as_array().expect("blockers is a list");
    let detail_of = |kind: &str, needle: &str| {
        blockers
            .iter()
            .filter(|b| b["kind"] == kind)
            .filter_map(|b| b["detail"].as_str())
            .find(|d| d.contains(needle))
            .map(str::to_owned)
    };
    assert_eq!(
        detail_of("queue", ORDERS).as_deref(),
        Some(format!("{VHOST} {ORDERS} holds 5 messages").as_str()),
        "{blockers:#?}"
    );
    let connection = detail_of("connection", "live-e-client")
        .unwrap_or_else(|| panic!("no connection blocker for live-e-client: {blockers:#?}"));
    assert!(
        connection.starts_with("connection from unknown client (live-e-client, 127.0.0.1:")
            && connection.ends_with(&format!(") is open on {OLD_ID}")),
        "{connection}"
    );
    assert!(
        blockers.iter().all(|b| b["kind"] != "unverifiable"),
        "the live broker was read: {blockers:#?}"
    );
    assert_eq!(
        common::world_broker(&s.world_json(), OLD_ID)["state"],
        "RUNNING"
    );
}

#[test]
fn plan_with_a_wrong_management_password_fails_without_showing_it() {
    let (old, new) = (rabbit::shared_old(), rabbit::shared_new());
    let s = live_scenario(old, new);
    let password = "live-e-wrong-password";
    let output = s
        .warren(&["plan", "plan.toml", "--world", "world.json"])
        .env(
            OLD_MGMT_VAR,
            format!(
                "http://guest:{password}@{}:{}",
                old.ip(),
                old.management_port()
            ),
        )
        .env(NEW_MGMT_VAR, new.management_url())
        .timeout(Duration::from_secs(60))
        .output()
        .expect("warren runs");
    let text = all_output(&output);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "http://guest:****@{}:{}",
            old.ip(),
            old.management_port()
        )),
        "{text}"
    );
    assert!(!text.contains(password), "{text}");
}

/// `warren ARGS…` in the scenario with the two management URLs swapped: the old broker's
/// variable names the new node and the other way round.
fn swapped_warren(s: &Scenario, args: &[&str]) -> std::process::Output {
    s.warren(args)
        .env(OLD_MGMT_VAR, rabbit::shared_new().management_url())
        .env(NEW_MGMT_VAR, rabbit::shared_old().management_url())
        .timeout(Duration::from_secs(60))
        .output()
        .expect("warren runs")
}

#[test]
fn swapped_management_urls_are_refused_and_nothing_is_deleted() {
    let (old, new) = (rabbit::shared_old(), rabbit::shared_new());
    const HELD: &str = "live-h-held";
    old.declare_queue("/", HELD);
    old.publish("/", "", HELD, 3);
    old.wait_for_messages("/", HELD, 3);
    let s = live_scenario(old, new);
    let before = s.bytes("world.json");

    // decommission: the old broker's variable names another broker, so what the old broker
    // holds is unknown: unverifiable, exit 3, nothing deleted.
    let output = swapped_warren(
        &s,
        &[
            "decommission",
            "plan.toml",
            "--world",
            "world.json",
            "--confirm",
            OLD_ID,
            "--format",
            "json",
        ],
    );
    let text = all_output(&output);
    assert_eq!(output.status.code(), Some(3), "{text}");
    assert!(!text.contains("guest:guest@"), "no password: {text}");
    let decision: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("decommission prints JSON ({e}): {text}"));
    let blockers = decision["blockers"].as_array().expect("blockers is a list");
    let refusal = blockers
        .iter()
        .filter(|b| b["kind"] == "unverifiable")
        .filter_map(|b| b["detail"].as_str())
        .find(|d| d.contains(OLD_MGMT_VAR) && d.contains(rabbit::NEW_CLUSTER_NAME))
        .unwrap_or_else(|| {
            panic!(
                "no unverifiable blocker naming {OLD_MGMT_VAR} and the broker it reached: {blockers:#?}"
            )
        });
    assert!(refusal.contains(OLD_ID), "{refusal}");
    assert_eq!(s.bytes("world.json"), before, "nothing deleted");

    // plan, status and apply: exit 1, naming the variable and the broker.
    for args in [
        &["plan", "plan.toml", "--world", "world.json"][..],
        &["status", "plan.toml", "--world", "world.json"][..],
        &[
            "apply",
            "plan.toml",
            "--world",
            "world.json",
            "--auto-approve",
            "--drain-timeout",
            "1",
        ][..],
    ] {
        let output = swapped_warren(&s, args);
        let text = all_output(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {text}");
        assert!(
            text.contains(OLD_MGMT_VAR) || text.contains(NEW_MGMT_VAR),
            "{args:?}: {text}"
        );
        assert!(
            text.contains(OLD_ID) || text.contains(NEW_ID),
            "{args:?}: {text}"
        );
        assert!(
            !text.contains("guest:guest@"),
            "{args:?}: no password: {text}"
        );
        assert_eq!(s.bytes("world.json"), before, "{args:?} changed nothing");
    }
}

/// Brokers whose endpoints are Amazon MQ hosts, while their management URLs point at the nodes
/// on 127.0.0.1 and 127.0.0.2: the URLs are taken because each node's API names the broker
/// (its cluster name is the broker's id).
#[test]
fn a_management_url_on_another_host_is_taken_when_its_api_names_the_broker() {
    let (old, new) = (rabbit::shared_old(), rabbit::shared_new());
    assert_eq!(
        old.get("/api/overview").unwrap()["cluster_name"],
        rabbit::OLD_CLUSTER_NAME
    );
    const QUEUE: &str = "live-i-orders";
    for node in [old, new] {
        node.declare_queue("/", QUEUE);
    }
    let world = World::new()
        .broker(common::old_broker().live())
        .broker(common::new_broker().live())
        .service_env(
            "shop",
            "orders",
            &[("SPRING_RABBITMQ_HOST", common::OLD_HOST)],
        );
    let plan = Plan::new()
        .clusters(&["shop"])
        .service(Declared::new("shop", "orders").consumes(&[QUEUE]))
        .to_toml();
    let plan = with_management_env(&plan, "old", OLD_ID, OLD_MGMT_VAR);
    let plan = with_management_env(&plan, "new", NEW_ID, NEW_MGMT_VAR);
    let s = Scenario::with_plan_text(&plan, &world);

    let output = live_warren(
        &s,
        &[
            "plan",
            "plan.toml",
            "--world",
            "world.json",
            "--format",
            "json",
        ],
    );
    assert!(output.status.success(), "{}", all_output(&output));
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        plan["drains"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["queue"] == QUEUE),
        "the old node's queues were read: {plan:#}"
    );

    let output = swapped_warren(&s, &["plan", "plan.toml", "--world", "world.json"]);
    assert_eq!(output.status.code(), Some(1), "{}", all_output(&output));
}

// ---------------------------------------------------------------------------------------------
// The fixture itself
// ---------------------------------------------------------------------------------------------

#[test]
fn a_private_node_is_stopped_and_removed_when_dropped() {
    let node = RabbitNode::start(
        &format!("warren-private-{}", std::process::id()),
        "127.0.0.1",
    );
    let vm = node
        .vm_pid()
        .expect("a running node has written its pid file");
    let dir = node.dir().to_owned();
    assert!(node
        .management_url()
        .starts_with("http://guest:guest@127.0.0.1:"));
    node.declare_queue("/", "private");
    node.publish("/", "", "private", 1);
    node.wait_for_messages("/", "private", 1);

    let took = node.stop();
    eprintln!("rabbit: private node stopped in {} ms", took.as_millis());
    assert!(
        !std::path::Path::new(&format!("/proc/{vm}")).exists(),
        "the Erlang VM {vm} is still running"
    );
    assert!(!dir.exists(), "{} is still there", dir.display());
}

// ---------------------------------------------------------------------------------------------
// Fail closed: what the API does not say is not "nothing"
// ---------------------------------------------------------------------------------------------

/// A queue's counts appear in the management API's statistics only with its first statistics
/// event, about 5 s after it is declared or its node restarts. Until then warren must not read
/// them as 0 (decommission would see an empty queue, a drain a drained one), and it must not wait
/// for them either: the queues report their own counts at once, and under load the statistics of
/// a queue another run just declared can take longer than any wait.
#[test]
fn counts_of_a_new_queue_are_read_before_its_statistics_arrive() {
    let node = rabbit::shared_old();
    let management = Management::new(&node.management_url()).unwrap();
    let has_stats = |name: &str| {
        node.get(&format!("/api/queues/%2F/{name}"))
            .is_some_and(|q| q.get("messages").is_some())
    };
    // Each try brackets warren's reads between two looks that see no statistics yet; a try whose
    // statistics arrived in between proves nothing and is made again with a new queue.
    let mut bracketed = 0;
    for attempt in 0..5 {
        let (one, two) = (
            format!("live-f-fresh-{attempt}"),
            format!("live-f-also-{attempt}"),
        );
        node.declare_queue("/", &one);
        node.publish("/", "", &one, 3);
        node.declare_queue("/", &two);
        node.publish("/", "", &two, 4);
        if has_stats(&one) || has_stats(&two) {
            continue;
        }
        let queue = management.queue("/", &one).unwrap().unwrap();
        let mut broker = Broker::default();
        management.read_into(&mut broker).unwrap();
        if has_stats(&one) || has_stats(&two) {
            continue;
        }
        assert_eq!((queue.messages, queue.consumers), (3, 0));
        assert_eq!(broker.queue(&two).unwrap().messages, 4);
        bracketed += 1;
        break;
    }
    assert_eq!(
        bracketed, 1,
        "warren's reads waited for the statistics in every try"
    );
}

/// A URL that answers 404 everywhere (not a management API) is an error, not a broker with no
/// queues and no connections.
#[test]
fn a_url_that_is_not_a_management_api_is_an_error_not_an_empty_broker() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let management =
        Management::new(&format!("http://guest:live-g-secret@127.0.0.1:{port}")).unwrap();
    let err = management
        .read_into(&mut Broker::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("404"), "{err}");
    assert!(
        err.contains(&format!("http://guest:****@127.0.0.1:{port}"))
            && !err.contains("live-g-secret"),
        "{err}"
    );
    // One queue that is not there is still just "no such queue".
    assert_eq!(management.queue("/", "anything").unwrap(), None);
}

// ---------------------------------------------------------------------------------------------
// The live broker seam: depth, create, shovels, links and federation
// ---------------------------------------------------------------------------------------------

/// `node` as the `alias` broker of a plan, its management and AMQP URLs in variables named
/// after `tag` (each test its own, so tests running side by side never share one).
fn resolved(node: &RabbitNode, alias: BrokerAlias, tag: &str) -> ResolvedBroker {
    let management = format!("WARREN_TEST_{tag}_{alias}_MANAGEMENT_URL").to_uppercase();
    let amqp = format!("WARREN_TEST_{tag}_{alias}_AMQP_URL").to_uppercase();
    std::env::set_var(&management, node.management_url());
    std::env::set_var(&amqp, node.amqp_url());
    ResolvedBroker {
        alias,
        id: match alias {
            BrokerAlias::Old => rabbit::OLD_CLUSTER_NAME.to_owned(),
            BrokerAlias::New => rabbit::NEW_CLUSTER_NAME.to_owned(),
        },
        name: None,
        endpoints: vec![node.amqp_endpoint()],
        hosts: vec![node.ip().to_string()],
        amqp_url_env: Some(amqp),
        management_url_env: Some(management),
        upstream_url_env: None,
        console_url: None,
    }
}

fn live(broker: &ResolvedBroker) -> Live {
    Live::for_broker(broker).unwrap_or_else(|e| panic!("{}: {e}", broker.id))
}

/// The queues, exchanges, bindings and policies of `broker` whose names start with `prefix`,
/// as comparable text.
fn named(broker: &Broker, prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for q in broker.queues.iter().flatten() {
        if q.name.starts_with(prefix) {
            out.push(format!(
                "queue {} {:?} durable={:?} {:?}",
                q.name, q.kind, q.durable, q.arguments
            ));
        }
    }
    for e in broker
        .exchanges
        .iter()
        .filter(|e| e.name.starts_with(prefix))
    {
        out.push(format!(
            "exchange {} {:?} durable={:?} internal={:?}",
            e.name, e.kind, e.durable, e.internal
        ));
    }
    for b in broker
        .bindings
        .iter()
        .filter(|b| b.exchange.starts_with(prefix))
    {
        out.push(format!("binding {b:?}"));
    }
    for p in broker
        .policies
        .iter()
        .filter(|p| p.name.starts_with(prefix))
    {
        out.push(format!("policy {p:?}"));
    }
    out.sort();
    out
}

#[test]
fn create_makes_exactly_the_definitions_asked_and_a_second_create_changes_nothing() {
    let node = rabbit::shared_new();
    let mut broker = live(&resolved(node, BrokerAlias::New, "j"));
    let mut ttl = serde_json::Map::new();
    ttl.insert("x-message-ttl".into(), 60_000.into());
    let mut limit = serde_json::Map::new();
    limit.insert("max-length".into(), 1000.into());
    let definitions = [
        Definition::Exchange(Exchange {
            vhost: "/".into(),
            name: "live-j-events".into(),
            kind: Some("topic".into()),
            ..Exchange::default()
        }),
        Definition::Exchange(Exchange {
            vhost: "/".into(),
            name: "live-j-ingress".into(),
            kind: Some("fanout".into()),
            ..Exchange::default()
        }),
        Definition::Queue(Queue {
            vhost: "/".into(),
            name: "live-j-orders".into(),
            kind: Some("quorum".into()),
            ..Queue::default()
        }),
        Definition::Queue(Queue {
            vhost: "/".into(),
            name: "live-j-expiring".into(),
            arguments: ttl.clone(),
            ..Queue::default()
        }),
        Definition::Binding(Binding::to_queue(
            "/",
            "live-j-events",
            "live-j-orders",
            "orders.#",
        )),
        Definition::Binding(Binding::to_exchange(
            "/",
            "live-j-ingress",
            "live-j-events",
            "",
        )),
        Definition::Policy(Policy {
            vhost: "/".into(),
            name: "live-j-limit".into(),
            pattern: "^live-j-expiring$".into(),
            apply_to: "queues".into(),
            priority: 5,
            definition: limit.clone(),
        }),
    ];
    for definition in &definitions {
        broker
            .create(definition)
            .unwrap_or_else(|e| panic!("create {definition}: {e}"));
    }

    let mut first = Broker::default();
    broker.read_into(&mut first).unwrap();
    assert_eq!(
        named(&first, "live-j-"),
        vec![
            r#"binding Binding { vhost: "/", exchange: "live-j-events", destination: "live-j-orders", destination_type: Queue, routing_key: "orders.#", arguments: {}, queue_form: true }"#.to_owned(),
            r#"binding Binding { vhost: "/", exchange: "live-j-ingress", destination: "live-j-events", destination_type: Exchange, routing_key: "", arguments: {}, queue_form: false }"#.to_owned(),
            r#"exchange live-j-events Some("topic") durable=Some(true) internal=Some(false)"#.to_owned(),
            r#"exchange live-j-ingress Some("fanout") durable=Some(true) internal=Some(false)"#.to_owned(),
            r#"policy Policy { vhost: "/", name: "live-j-limit", pattern: "^live-j-expiring$", apply_to: "queues", priority: 5, definition: {"max-length": Number(1000)} }"#.to_owned(),
            r#"queue live-j-expiring Some("classic") durable=Some(true) {"x-message-ttl": Number(60000)}"#.to_owned(),
            r#"queue live-j-orders Some("quorum") durable=Some(true) {"x-queue-type": String("quorum")}"#.to_owned(),
        ],
    );

    for definition in &definitions {
        broker
            .create(definition)
            .unwrap_or_else(|e| panic!("a second create of {definition}: {e}"));
    }
    let mut second = Broker::default();
    broker.read_into(&mut second).unwrap();
    assert_eq!(named(&second, "live-j-"), named(&first, "live-j-"));

    // A policy of the same name with another definition is refused, and the broker's stays.
    let mut other = limit;
    other.insert("max-length".into(), 1.into());
    let err = broker
        .create(&Definition::Policy(Policy {
            vhost: "/".into(),
            name: "live-j-limit".into(),
            pattern: "^live-j-expiring$".into(),
            apply_to: "queues".into(),
            priority: 5,
            definition: other,
        }))
        .unwrap_err();
    assert!(matches!(err, warren::Error::Refused(_)), "{err}");
    assert!(err.to_string().contains("live-j-limit"), "{err}");
    let mut third = Broker::default();
    broker.read_into(&mut third).unwrap();
    assert_eq!(named(&third, "live-j-"), named(&first, "live-j-"));
}

#[test]
fn depth_reads_ready_counts_over_amqp_at_once_and_counts_a_held_message_until_it_is_acked() {
    let node = rabbit::shared_old();
    let mut broker = live(&resolved(node, BrokerAlias::Old, "k"));
    node.declare_queue("/", "live-k-backlog");
    node.publish("/", "", "live-k-backlog", 7);
    // No wait for the statistics: the passive declare sees the seven at once.
    let backlog = broker.depth("/", "live-k-backlog").unwrap().unwrap();
    assert_eq!((backlog.ready, backlog.consumers), (7, 0));
    assert_eq!(broker.depth("/", "live-k-no-such-queue").unwrap(), None);
    assert_eq!(
        broker
            .depth("live-k-no-such-vhost", "live-k-backlog")
            .unwrap(),
        None
    );
    assert!(
        node.wait_until(|node| lists_connection(node, "warren")),
        "the broker never listed warren's AMQP connection by name"
    );

    node.declare_queue("/", "live-k-held");
    node.publish("/", "", "live-k-held", 1);
    let mut client = Client::connect(node, "live-k-client");
    client.consume("live-k-held", "live-k-consumer");
    let mut depth = None;
    let counted = node.wait_until(|_| {
        depth = broker.depth("/", "live-k-held").unwrap();
        depth.is_some_and(|d| d.unacked == 1)
    });
    let held = depth.unwrap();
    assert!(counted, "the held message was never counted: {held:?}");
    assert_eq!((held.ready, held.unacked, held.consumers), (0, 1, 1));
    assert!(!held.drained(), "{held:?}");

    client.ack_next();
    let drained = node.wait_until(|_| {
        depth = broker.depth("/", "live-k-held").unwrap();
        depth.is_some_and(|d| d.drained())
    });
    assert!(drained, "the queue never drained: {depth:?}");
}

#[test]
fn start_shovel_moves_every_message_to_the_new_node_and_the_shovel_deletes_itself() {
    let (old, new) = (rabbit::shared_old(), rabbit::shared_new());
    const QUEUE: &str = "live-l-orders";
    for node in [old, new] {
        node.declare_queue("/", QUEUE);
    }
    old.publish("/", "", QUEUE, 500);
    let new_broker = resolved(new, BrokerAlias::New, "l");
    let mut from = live(&resolved(old, BrokerAlias::Old, "l"));
    let mut to = live(&new_broker);
    let before = from.depth("/", QUEUE).unwrap().unwrap();
    assert_eq!(before.total(), 500);

    from.start_shovel(&Shovel {
        name: "live-l-move".into(),
        vhost: "/".into(),
        queue: QUEUE.into(),
        to: &new_broker,
    })
    .unwrap();

    let mut last = (None, None);
    let moved = old.wait_until(|_| {
        last = (
            from.depth("/", QUEUE).unwrap(),
            to.depth("/", QUEUE).unwrap(),
        );
        matches!(last, (Some(o), Some(n)) if o.drained() && n.total() == before.total())
    });
    assert!(moved, "not every message moved: old, new = {last:?}");
    let gone = old.wait_until(|_| {
        from.links()
            .unwrap()
            .iter()
            .all(|l| l.name != "live-l-move")
    });
    assert!(
        gone,
        "the shovel is still listed: {:?}",
        from.links().unwrap()
    );
}

#[test]
fn start_shovel_is_refused_naming_the_variable_when_the_destination_has_no_amqp_url() {
    let (old, new) = (rabbit::shared_old(), rabbit::shared_new());
    let mut to = resolved(new, BrokerAlias::New, "n");
    to.amqp_url_env = Some("WARREN_TEST_N_NEW_AMQP_URL_UNSET".into());
    let err = live(&resolved(old, BrokerAlias::Old, "n"))
        .start_shovel(&Shovel {
            name: "live-n-move".into(),
            vhost: "/".into(),
            queue: "live-n-orders".into(),
            to: &to,
        })
        .unwrap_err();
    assert!(matches!(err, warren::Error::Refused(_)), "{err}");
    assert!(
        err.to_string().contains("WARREN_TEST_N_NEW_AMQP_URL_UNSET"),
        "{err}"
    );
    assert!(!err.to_string().contains("guest:guest"), "{err}");
}

#[test]
fn links_lists_a_running_shovel_with_the_old_nodes_host_and_no_password() {
    let (old, new) = (rabbit::shared_old(), rabbit::shared_new());
    old.declare_queue("/", "live-m-source");
    let path = "/api/parameters/shovel/%2F/live-m-keep";
    let (status, text) = old
        .request(
            "PUT",
            path,
            Some(&serde_json::json!({ "value": {
                "src-uri": old.amqp_url(),
                "src-queue": "live-m-source",
                "dest-uri": new.amqp_url(),
                "dest-queue": "live-m-target",
            }})),
        )
        .unwrap();
    assert!((200..300).contains(&status), "{status}: {text}");
    let mut broker = live(&resolved(old, BrokerAlias::Old, "m"));

    let mut links = Vec::new();
    let running = old.wait_until(|_| {
        links = broker.links().unwrap();
        links
            .iter()
            .any(|l| l.name == "live-m-keep" && l.state == "running")
    });
    let _ = old.request("DELETE", path, None);
    assert!(running, "{links:#?}");
    let shovel = links.iter().find(|l| l.name == "live-m-keep").unwrap();
    assert_eq!(shovel.kind, LinkKind::Shovel);
    assert_eq!(shovel.vhost, "/");
    assert_eq!(shovel.from, vec!["127.0.0.1".to_owned()]);
    assert_eq!(shovel.to, vec!["127.0.0.2".to_owned()]);
    assert_eq!(shovel.queue.as_deref(), Some("live-m-source"));
    let shown = serde_json::to_string(&links).unwrap();
    assert!(!shown.contains("guest"), "{shown}");
}

/// The upstream parameter `vhost`/`name` on `node`, as the management API shows it.
fn upstream_parameter(node: &RabbitNode, vhost: &str, name: &str) -> Option<Value> {
    node.get(&format!(
        "/api/parameters/federation-upstream/{}/{}",
        rabbit::segment(vhost),
        rabbit::segment(name)
    ))
}

#[test]
fn a_federated_queue_pulls_from_the_old_node_until_its_policy_and_upstream_are_removed() {
    let (old, new) = (rabbit::shared_old(), rabbit::shared_new());
    const QUEUE: &str = "live-p-orders";
    for node in [old, new] {
        node.declare_queue("/", QUEUE);
    }
    let from = resolved(old, BrokerAlias::Old, "p");
    let mut to = live(&resolved(new, BrokerAlias::New, "p"));
    let upstream = Upstream {
        vhost: "/".into(),
        name: federation::upstream_name("live-p"),
        url_env: from.amqp_url_env.clone().expect("resolved names one"),
    };
    to.create_upstream(&upstream, &from).unwrap();
    let declared = upstream_parameter(new, "/", &upstream.name).expect("declared");
    assert_eq!(declared["value"]["ack-mode"], "on-confirm", "{declared}");
    assert_eq!(declared["value"]["uri"], old.amqp_url(), "{declared}");
    // The same URL again: left as it is.
    to.create_upstream(&upstream, &from).unwrap();
    assert_eq!(upstream_parameter(new, "/", &upstream.name), Some(declared));
    let policy = federation::policy_for(&[], "/", QUEUE, &upstream.name).unwrap();
    to.create(&Definition::Policy(policy.clone())).unwrap();

    let mut links = Vec::new();
    let running = new.wait_until(|_| {
        links = to.links().unwrap();
        links.iter().any(|l| {
            l.kind == LinkKind::Federation
                && l.name == upstream.name
                && l.queue.as_deref() == Some(QUEUE)
                && l.state == "running"
        })
    });
    assert!(running, "the queue's link never ran: {links:#?}");
    let link = links.iter().find(|l| l.name == upstream.name).unwrap();
    assert_eq!(link.vhost, "/");
    assert_eq!(link.from, vec!["127.0.0.1".to_owned()]);
    let shown = serde_json::to_string(&links).unwrap();
    assert!(!shown.contains("guest"), "{shown}");

    // What is published on the old node reaches a consumer on the new one.
    old.publish("/", "", QUEUE, 5);
    let mut client = Client::connect(new, "live-p-client");
    client.consume(QUEUE, "live-p-consumer");
    for _ in 0..5 {
        client.ack_next();
    }
    let mut source = live(&from);
    let mut left = None;
    let drained = old.wait_until(|_| {
        left = source.depth("/", QUEUE).unwrap();
        left.is_some_and(|d| d.drained())
    });
    assert!(drained, "the old queue still holds {left:?}");
    drop(client);

    to.remove_policy("/", &policy.name).unwrap();
    to.remove_upstream("/", &upstream.name).unwrap();
    let gone = new.wait_until(|_| {
        links = to.links().unwrap();
        links.iter().all(|l| l.name != upstream.name)
    });
    assert!(gone, "the link is still listed: {links:#?}");
    assert_eq!(upstream_parameter(new, "/", &upstream.name), None);
    let policies = new.get("/api/policies/%2F").unwrap_or_default();
    assert!(!policies.to_string().contains(&policy.name), "{policies}");
    // Removing what is not there is no error.
    to.remove_policy("/", &policy.name).unwrap();
    to.remove_upstream("/", &upstream.name).unwrap();
}

#[test]
fn an_upstream_at_another_url_is_replaced_and_one_in_another_vhost_reads_that_vhost() {
    let (old, new) = (rabbit::shared_old(), rabbit::shared_new());
    new.declare_vhost("live-r");
    let from = resolved(old, BrokerAlias::Old, "r");
    let mut to = live(&resolved(new, BrokerAlias::New, "r"));
    let mut upstream = Upstream {
        vhost: "/".into(),
        name: federation::upstream_name("live-r"),
        url_env: from.amqp_url_env.clone().unwrap(),
    };
    to.create_upstream(&upstream, &from).unwrap();

    // A load balancer's URL in a variable of its own: not the old node's host, not checked.
    let balancer = "WARREN_TEST_R_UPSTREAM_URL";
    std::env::set_var(
        balancer,
        format!(
            "amqp://guest:guest@localhost:{}?heartbeat=10",
            old.amqp_port()
        ),
    );
    upstream.url_env = balancer.into();
    to.create_upstream(&upstream, &from).unwrap();
    let replaced = upstream_parameter(new, "/", &upstream.name).expect("declared");
    assert_eq!(
        replaced["value"]["uri"],
        format!(
            "amqp://guest:guest@localhost:{}/%2F?heartbeat=10",
            old.amqp_port()
        ),
        "{replaced}"
    );

    upstream.vhost = "live-r".into();
    to.create_upstream(&upstream, &from).unwrap();
    let other = upstream_parameter(new, "live-r", &upstream.name).expect("declared");
    assert_eq!(
        other["value"]["uri"],
        format!(
            "amqp://guest:guest@localhost:{}/live-r?heartbeat=10",
            old.amqp_port()
        ),
        "{other}"
    );
    for vhost in ["/", "live-r"] {
        to.remove_upstream(vhost, &upstream.name).unwrap();
        assert_eq!(upstream_parameter(new, vhost, &upstream.name), None);
    }
}

#[test]
fn create_upstream_is_refused_without_its_url_or_with_a_url_of_another_broker() {
    let (old, new) = (rabbit::shared_old(), rabbit::shared_new());
    let mut from = resolved(old, BrokerAlias::Old, "q");
    let mut to = live(&resolved(new, BrokerAlias::New, "q"));
    let name = federation::upstream_name("live-q");
    let upstream = |var: &str| Upstream {
        vhost: "/".into(),
        name: name.clone(),
        url_env: var.into(),
    };

    let unset = "WARREN_TEST_Q_UPSTREAM_URL_UNSET";
    let err = to.create_upstream(&upstream(unset), &from).unwrap_err();
    assert!(matches!(err, warren::Error::Refused(_)), "{err}");
    assert!(err.to_string().contains(unset), "{err}");

    // The old broker's own variable holding the new node's URL.
    let var = from.amqp_url_env.clone().unwrap();
    std::env::set_var(&var, new.amqp_url());
    let err = to.create_upstream(&upstream(&var), &from).unwrap_err();
    assert!(matches!(err, warren::Error::Refused(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&var) && text.contains("127.0.0.2") && !text.contains("guest:guest"),
        "{text}"
    );

    // A variable of its own that does not hold an AMQP URL.
    let http = "WARREN_TEST_Q_UPSTREAM_URL_HTTP";
    std::env::set_var(http, old.management_url());
    from.amqp_url_env = None;
    let err = to.create_upstream(&upstream(http), &from).unwrap_err();
    assert!(matches!(err, warren::Error::Refused(_)), "{err}");
    assert!(
        err.to_string().contains(http) && !err.to_string().contains("guest:guest"),
        "{err}"
    );
    assert_eq!(
        upstream_parameter(new, "/", &name),
        None,
        "nothing declared"
    );
}

#[test]
fn an_unreachable_management_url_is_a_backend_error_naming_it_with_the_password_masked() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let var = "WARREN_TEST_O_OLD_MANAGEMENT_URL";
    std::env::set_var(
        var,
        format!("http://guest:live-o-secret@127.0.0.1:{closed}"),
    );
    let broker = ResolvedBroker {
        alias: BrokerAlias::Old,
        id: rabbit::OLD_CLUSTER_NAME.into(),
        name: None,
        endpoints: vec![format!("amqp://127.0.0.1:{closed}")],
        hosts: vec!["127.0.0.1".into()],
        amqp_url_env: None,
        management_url_env: Some(var.into()),
        upstream_url_env: None,
        console_url: None,
    };
    let err = live(&broker).read_into(&mut Broker::default()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, warren::Error::Backend(_)), "{text}");
    assert!(
        text.contains(&format!("http://guest:****@127.0.0.1:{closed}")),
        "{text}"
    );
    assert!(!text.contains("live-o-secret"), "{text}");
}

/// A headers exchange routes by its bindings' arguments: a binding copied without them would
/// route every message. Created with them, it reads back with them.
#[test]
fn a_binding_is_created_and_read_back_with_its_arguments() {
    let node = rabbit::shared_new();
    let mut broker = live(&resolved(node, BrokerAlias::New, "k"));
    let mut headers = serde_json::Map::new();
    headers.insert("x-match".into(), "all".into());
    headers.insert("region".into(), "eu".into());
    let binding = Binding::to_queue("/", "live-k-headers", "live-k-eu", "").with_arguments(headers);
    for definition in [
        Definition::Exchange(Exchange {
            vhost: "/".into(),
            name: "live-k-headers".into(),
            kind: Some("headers".into()),
            ..Exchange::default()
        }),
        Definition::Queue(Queue {
            vhost: "/".into(),
            name: "live-k-eu".into(),
            ..Queue::default()
        }),
        Definition::Binding(binding.clone()),
    ] {
        broker.create(&definition).unwrap();
    }
    let mut seen = Broker::default();
    broker.read_into(&mut seen).unwrap();
    let read: Vec<&Binding> = seen
        .bindings
        .iter()
        .filter(|b| b.exchange == "live-k-headers")
        .collect();
    assert_eq!(read.len(), 1, "{read:?}");
    assert!(read[0].same_route(&binding), "{:?}", read[0]);
    assert_eq!(read[0].arguments["region"], "eu");
}
