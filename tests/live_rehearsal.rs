//! Rehearsals against two real RabbitMQ nodes (the old broker on 127.0.0.1, the new on
//! 127.0.0.2): the world file gives the services and task definitions, the brokers are live
//! (their entries list no `queues`), and the services' clients are workers that follow the
//! world file as ECS would run them (`support::worker`). `apply` copies the old node's topology
//! to the new one, drains, moves, checks after each wave that the moved consumers consume again,
//! and `decommission` deletes the old broker only once nothing uses it.

mod common;
mod support;

use std::time::Duration;

use serde_json::{json, Value};

use common::{
    with_url_variables, Declared, Plan, Scenario, World, NEW_ID, NEW_MGMT, OLD_ID, OLD_MGMT,
};
use support::rabbit::{self, RabbitNode};
use support::worker::{Role, Worker};

/// `warren ARGS…` in `s` with the four URLs in its environment.
fn warren(s: &Scenario, args: &[&str]) -> std::process::Output {
    let (old, new) = (rabbit::shared_old(), rabbit::shared_new());
    common::with_urls(
        &mut s.warren(args),
        [
            (old.management_url(), old.amqp_url()),
            (new.management_url(), new.amqp_url()),
        ],
    )
    .timeout(Duration::from_secs(240))
    .output()
    .expect("warren runs")
}

/// Waits until `node`'s management API shows a consumer on `queue` (vhost `/`): its statistics
/// lag a moment behind a consumer that has just connected, and warren reads them, as a
/// long-running consumer's would be.
fn wait_for_consumer(node: &RabbitNode, queue: &str) {
    assert!(
        node.wait_until(|n| n
            .queue_info("/", queue)
            .is_some_and(|q| q["consumers"].as_u64().unwrap_or(0) > 0)),
        "the management API shows no consumer on {queue}"
    );
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A publisher `shop/<prefix>-billing` (exchange `<prefix>.events`, topic, bound to
/// `<prefix>.orders`) and a consumer `shop/<prefix>-orders` of that queue, both on the old node,
/// in a plan that moves both.
fn shop(prefix: &str) -> (Scenario, String, String, String) {
    shop_with(prefix, Plan::new())
}

/// [`shop`] with `plan`'s migration settings (e.g. its strategy).
fn shop_with(prefix: &str, plan: Plan) -> (Scenario, String, String, String) {
    let (old, new) = (rabbit::shared_old(), rabbit::shared_new());
    let (exchange, queue) = (format!("{prefix}.events"), format!("{prefix}.orders"));
    let (billing, orders) = (format!("{prefix}-billing"), format!("{prefix}-orders"));
    let world = World::new()
        .broker(common::Broker::new(OLD_ID, &old.amqp_endpoint()).live())
        .broker(common::Broker::new(NEW_ID, &new.amqp_endpoint()).live())
        .service_env(
            "shop",
            &billing,
            &[("SPRING_RABBITMQ_ADDRESSES", &old.amqp_endpoint())],
        )
        .service_env(
            "shop",
            &orders,
            &[("SPRING_RABBITMQ_ADDRESSES", &old.amqp_endpoint())],
        );
    let plan = plan
        .clusters(&["shop"])
        .service(Declared::new("shop", &billing).publishes(&[&exchange]))
        .service(Declared::new("shop", &orders).consumes(&[&queue]))
        .to_toml();
    old.declare_exchange("/", &exchange, "topic");
    old.declare_queue("/", &queue);
    old.bind("/", &exchange, &queue, "#");
    (
        Scenario::with_plan_text(&with_url_variables(&plan), &world),
        queue,
        billing,
        orders,
    )
}

/// The tests share the two nodes, and decommission looks at everything on the old one: one
/// test at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn apply_prepares_the_new_node_moves_both_services_and_decommission_deletes_the_old_one() {
    let _one = one_at_a_time();
    let (old, new) = (rabbit::shared_old(), rabbit::shared_new());
    let (s, queue, billing, orders) = shop("lr-a");
    let world = s.path("world.json");
    let consumer = Worker::start(&world, "shop", &orders, Role::consume(&queue), [old, new]);
    let publisher = Worker::start(
        &world,
        "shop",
        &billing,
        Role::publish("lr-a.events", "order.created", Duration::from_millis(20)),
        [old, new],
    );
    assert!(
        consumer.wait_for(|s| s.node == Some(0), Duration::from_secs(20))
            && publisher.wait_for(|s| s.confirmed >= 20, Duration::from_secs(20)),
        "the workers start on the old node: {:?} {:?}",
        consumer.state(),
        publisher.state()
    );
    wait_for_consumer(old, &queue);

    let out = warren(
        &s,
        &[
            "apply",
            "plan.toml",
            "--world",
            "world.json",
            "--auto-approve",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "apply: {stdout}\n{stderr}");

    // Both moved, with their clients: the publisher first, the consumer after the drain.
    assert!(
        publisher.wait_for(|s| s.node == Some(1), Duration::from_secs(10)),
        "{:?}",
        publisher.state()
    );
    assert!(
        consumer.wait_for(|s| s.node == Some(1), Duration::from_secs(10)),
        "{:?}\n{stderr}",
        consumer.state()
    );
    // The new node got the exchange, the queue and the binding before anyone moved, so every
    // message the publisher sent there was routed (confirmed) and is consumed.
    let before = publisher.state().confirmed;
    assert!(
        consumer.wait_for(|c| c.received >= before, Duration::from_secs(20)),
        "confirmed {before}, consumed {:?}",
        consumer.state()
    );
    assert!(
        new.get("/api/exchanges/%2F/lr-a.events").is_some(),
        "the exchange was created on the new node"
    );

    let journal = s.read("warren-journal.jsonl");
    for step in ["\"step\":\"drain\"", "\"step\":\"check\""] {
        assert!(journal.contains(step), "{step} in {journal}");
    }

    drop(publisher);
    drop(consumer);
    // Nothing uses the old node any more: its queue is empty and its clients left.
    old.wait_until(|n| {
        n.get("/api/connections")
            .and_then(|c| c.as_array().map(|a| a.is_empty()))
            .unwrap_or(false)
    });
    let out = warren(
        &s,
        &[
            "decommission",
            "plan.toml",
            "--world",
            "world.json",
            "--confirm",
            OLD_ID,
        ],
    );
    assert!(
        out.status.success(),
        "decommission: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(s.world_json()["brokers"][0]["state"], "DELETED");
}

#[test]
fn a_consumer_that_does_not_come_back_on_the_new_node_stops_apply_after_its_wave() {
    let _one = one_at_a_time();
    let (old, new) = (rabbit::shared_old(), rabbit::shared_new());
    let (s, queue, _billing, orders) = shop("lr-b");
    // A consumer that stays on the old node whatever apply does: it follows a copy of the
    // world file that nothing changes.
    s.write("frozen.json", &s.read("world.json"));
    let stuck = Worker::start(
        &s.path("frozen.json"),
        "shop",
        &orders,
        Role::consume(&queue),
        [old, new],
    );
    assert!(stuck.wait_for(|s| s.node.is_some(), Duration::from_secs(20)));
    wait_for_consumer(old, &queue);

    let out = warren(
        &s,
        &[
            "apply",
            "plan.toml",
            "--world",
            "world.json",
            "--auto-approve",
            "--wave-check-timeout",
            "3",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("shop/{orders}"))
            && stderr.contains(&format!("nothing consumes {queue} there")),
        "{stderr}"
    );
    let journal = s.read("warren-journal.jsonl");
    assert!(
        journal.contains("\"step\":\"check\"") && journal.contains("\"result\":\"failed\""),
        "{journal}"
    );
}

#[test]
fn status_and_rollback_follow_the_live_nodes_and_the_clients_go_back() {
    let _one = one_at_a_time();
    let (old, new) = (rabbit::shared_old(), rabbit::shared_new());
    let (s, queue, _billing, orders) = shop("lr-c");
    let consumer = Worker::start(
        &s.path("world.json"),
        "shop",
        &orders,
        Role::consume(&queue),
        [old, new],
    );
    assert!(consumer.wait_for(|s| s.node == Some(0), Duration::from_secs(20)));
    wait_for_consumer(old, &queue);
    let args = ["plan.toml", "--world", "world.json", "--auto-approve"];
    let out = warren(&s, &[&["apply"], &args[..]].concat());
    assert!(out.status.success(), "apply: {}", text(&out.stderr));
    assert!(consumer.wait_for(|s| s.node == Some(1), Duration::from_secs(10)));

    let out = warren(&s, &["status", "plan.toml", "--world", "world.json"]);
    let status = text(&out.stdout);
    assert!(
        out.status.success(),
        "status: {status}{}",
        text(&out.stderr)
    );
    assert!(
        status.contains(&format!("shop/{orders}")),
        "status names the moved service: {status}"
    );

    let out = warren(&s, &[&["rollback"], &args[..]].concat());
    assert!(
        out.status.success(),
        "rollback: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        consumer.wait_for(
            |s| s.node == Some(0) && s.connects == 3,
            Duration::from_secs(10)
        ),
        "the consumer went back to the old node with its service: {:?}",
        consumer.state()
    );
    // Rollback never deletes what apply copied: the new node keeps the queue.
    assert!(new.queue_info("/", &queue).is_some());
}

#[test]
fn a_shovel_on_the_new_node_that_reads_from_the_old_one_blocks_decommission() {
    let _one = one_at_a_time();
    let (old, new) = (rabbit::shared_old(), rabbit::shared_new());
    let (s, queue, _billing, _orders) = shop("lr-d");
    let out = warren(
        &s,
        &[
            "apply",
            "plan.toml",
            "--world",
            "world.json",
            "--auto-approve",
        ],
    );
    assert!(out.status.success(), "apply: {}", text(&out.stderr));
    // Someone's shovel, left running on the new node, still reading the old node's queue.
    let shovel = json!({ "value": {
        "src-uri": old.amqp_url(), "src-queue": queue,
        "dest-uri": "amqp://", "dest-queue": queue,
    }});
    let (code, body) = new
        .request(
            "PUT",
            "/api/parameters/shovel/%2F/lr-d-leftovers",
            Some(&shovel),
        )
        .expect("the management API answers");
    assert!(code < 300, "{code} {body}");
    assert!(new.wait_until(|n| n
        .get("/api/shovels/%2F")
        .is_some_and(|v| v.to_string().contains("running"))));

    let out = warren(
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
    let _ = new.request("DELETE", "/api/parameters/shovel/%2F/lr-d-leftovers", None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let decision: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let federation: Vec<&Value> = decision["blockers"]
        .as_array()
        .expect("blockers")
        .iter()
        .filter(|b| b["kind"] == "federation")
        .collect();
    assert_eq!(federation.len(), 1, "{decision:#}");
    let detail = federation[0]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("lr-d-leftovers"), "{detail}");
    assert!(
        !detail.contains(rabbit::PASSWORD),
        "no credentials: {detail}"
    );
    assert_ne!(s.world_json()["brokers"][0]["state"], "DELETED");
}

#[test]
fn an_old_node_that_cannot_be_reached_is_unverifiable_and_nothing_is_deleted() {
    let _one = one_at_a_time();
    let (s, _queue, _billing, _orders) = shop("lr-e");
    // The old broker's management URL on its own host, at a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port();
    let out = s
        .warren(&[
            "decommission",
            "plan.toml",
            "--world",
            "world.json",
            "--confirm",
            OLD_ID,
            "--format",
            "json",
        ])
        .env(OLD_MGMT, format!("http://guest:s3cret@127.0.0.1:{closed}"))
        .env(NEW_MGMT, rabbit::shared_new().management_url())
        .timeout(Duration::from_secs(120))
        .output()
        .expect("warren runs");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let decision: Value = serde_json::from_str(&stdout).expect("JSON");
    assert!(
        decision["blockers"]
            .as_array()
            .expect("blockers")
            .iter()
            .any(|b| b["kind"] == "unverifiable"),
        "{decision:#}"
    );
    assert!(!stdout.contains("s3cret"), "{stdout}");
    assert_ne!(s.world_json()["brokers"][0]["state"], "DELETED");
}

/// Under `federate`, an old queue whose backlog federation never pulls (nothing consumes its
/// copy on the new node, so the link asks for nothing) stops shrinking after the last wave:
/// apply removes the queue's policy, waits for the link's consumer to leave the old queue,
/// shovels the whole backlog to the new node, and removes the rest of the federation.
#[test]
fn a_federated_queue_that_stalls_is_shovelled_to_the_new_node_and_the_federation_removed() {
    const BACKLOG: u64 = 300;
    let _one = one_at_a_time();
    let (old, new) = (rabbit::shared_old(), rabbit::shared_new());
    let (s, queue, _billing, _orders) = shop_with("lr-f", Plan::new().strategy("federate"));
    old.publish("/", "lr-f.events", "order.created", BACKLOG as usize);
    old.wait_for_messages("/", &queue, BACKLOG);

    let out = warren(
        &s,
        &[
            "apply",
            "plan.toml",
            "--world",
            "world.json",
            "--auto-approve",
            "--no-wave-check",
            "--stall-timeout",
            "3",
            "--drain-timeout",
            "120",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "apply: {stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "{queue}  {BACKLOG} messages from the old broker to the new broker"
        )),
        "apply says what it shovelled: {stdout}"
    );

    // The journal, in order: the upstream and the policy declared, the links running, the
    // policy removed because the queue stalled, the shovel, then the upstream removed.
    let journal = s.journal();
    let ok = |e: &&Value| e["step"] == "federation" && e["result"] == "ok";
    let position = |what: &str, check: &dyn Fn(&Value) -> bool| {
        journal
            .iter()
            .position(check)
            .unwrap_or_else(|| panic!("no {what} in {journal:#?}"))
    };
    let declared = |kind: &'static str| move |e: &Value| ok(&e) && e["declared"]["kind"] == kind;
    let upstream = position("upstream declared", &declared("upstream"));
    let policy = position("policy declared", &declared("policy"));
    let links = position("links running", &|e| {
        ok(&e) && e["detail"] == "1 federation link running"
    });
    let stalled = position("stalled policy removed", &|e| {
        ok(&e)
            && e["removed"]["kind"] == "policy"
            && e["queue"] == queue.as_str()
            && e["detail"].as_str().is_some_and(|d| d.contains("stalled"))
    });
    let shovel = position("shovel", &|e| {
        e["step"] == "shovel" && e["result"] == "ok" && e["queue"] == queue.as_str()
    });
    let upstream_removed = position("upstream removed", &|e| {
        ok(&e) && e["removed"]["kind"] == "upstream"
    });
    assert!(
        upstream < policy
            && policy < links
            && links < stalled
            && stalled < shovel
            && shovel < upstream_removed,
        "{journal:#?}"
    );
    let removed: Vec<&Value> = journal
        .iter()
        .filter(|e| ok(e) && e.get("removed").is_some())
        .map(|e| &e["removed"]["kind"])
        .collect();
    assert_eq!(
        removed,
        ["policy", "upstream"],
        "the policy is removed once, when its queue stalled: {journal:#?}"
    );
    assert_eq!(
        journal[shovel]["messages"], BACKLOG,
        "{:#}",
        journal[shovel]
    );
    assert!(
        !journal.iter().any(|e| e["result"] == "failed"),
        "{journal:#?}"
    );

    // Every message is on the new node, none left on the old one.
    // (The management API's statistics lag a moment behind the shovel.)
    old.wait_for_messages("/", &queue, 0);
    new.wait_for_messages("/", &queue, BACKLOG);
    // Nothing of warren's federation is left on the new node.
    let names = |path: &str| -> Vec<String> {
        new.get(path)
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .filter(|n| n.starts_with("warren-"))
            .collect()
    };
    assert_eq!(names("/api/policies"), Vec::<String>::new());
    assert_eq!(
        names("/api/parameters/federation-upstream"),
        Vec::<String>::new()
    );
    let shovels = old.get("/api/shovels").expect("the old node's shovels");
    assert!(
        !shovels
            .to_string()
            .contains(&format!("warren-test-migration-{queue}")),
        "the shovel deleted itself: {shovels}"
    );
}
