//! Zero loss, end to end: real publishers and consumers send and receive numbered messages
//! through two real RabbitMQ nodes (the old on 127.0.0.1, the new on 127.0.0.2) while
//! `warren apply` moves their services, in the incident's shape (cluster `esr`, 1 s rollouts):
//!
//! - a chain three deep: `apprecord` publishes to topic exchange `P.apprecord` → queue
//!   `P.apprecord.outbound`, consumed by `outbound`, which publishes to `P.outbound` → queue
//!   `P.outbound.audit`, consumed by `audit`;
//! - the forgotten consumer: `dataexport` consumes `P.apprecord.dataexporter`, also bound to
//!   `P.apprecord`;
//! - a request/reply cycle: `reconcile` publishes to queue `P.reconcile.request` (the default
//!   exchange), consumed by `ledger`, which publishes to `P.reconcile.reply`, consumed by
//!   `reconcile`.
//!
//! `P` is the test's own prefix (the tests share the nodes). The old node holds the topology,
//! the new one nothing: warren copies it. A service that consumes and publishes is two workers
//! with the same connection name. Each test prints its summary table (`--nocapture`);
//! `WARREN_TRAFFIC_MESSAGES` sets how many messages a run sends (2,000 by default).

mod common;
mod support;

use std::time::{Duration, Instant};

use serde_json::Value;

use common::{
    with_url_variables, Declared, Plan, Scenario, Service, TaskDef, World, NEW_ID, OLD_ID,
};
use support::rabbit::{self, RabbitNode};
use support::traffic::{self, Running, Summary, Traffic};

const CLUSTER: &str = "esr";
/// How long consumers may take to receive everything once the publishers stopped.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long publishers may take to reach the run's total once apply has finished.
const PUBLISHING_TIMEOUT: Duration = Duration::from_secs(180);

/// The tests share the two nodes, and decommission looks at everything on the old one: one
/// test at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn nodes() -> [&'static RabbitNode; 2] {
    [rabbit::shared_old(), rabbit::shared_new()]
}

/// The incident's exchanges and queues, under a test's prefix.
struct Names {
    apprecord: String,
    outbound: String,
    outbound_queue: String,
    dataexporter: String,
    audit: String,
    request: String,
    reply: String,
}

impl Names {
    fn new(prefix: &str) -> Names {
        Names {
            apprecord: format!("{prefix}.apprecord"),
            outbound: format!("{prefix}.outbound"),
            outbound_queue: format!("{prefix}.apprecord.outbound"),
            dataexporter: format!("{prefix}.apprecord.dataexporter"),
            audit: format!("{prefix}.outbound.audit"),
            request: format!("{prefix}.reconcile.request"),
            reply: format!("{prefix}.reconcile.reply"),
        }
    }

    fn queues(&self) -> [&str; 5] {
        [
            &self.outbound_queue,
            &self.dataexporter,
            &self.audit,
            &self.request,
            &self.reply,
        ]
    }

    /// The plan's entry of each service, by name.
    fn declared(&self) -> Vec<(&'static str, Declared)> {
        let d = |name| Declared::new(CLUSTER, name);
        vec![
            ("apprecord", d("apprecord").publishes(&[&self.apprecord])),
            (
                "outbound",
                d("outbound")
                    .consumes(&[&self.outbound_queue])
                    .publishes(&[&self.outbound]),
            ),
            (
                "dataexport",
                d("dataexport").consumes(&[&self.dataexporter]),
            ),
            ("audit", d("audit").consumes(&[&self.audit])),
            (
                "reconcile",
                d("reconcile")
                    .publishes(&[&self.request])
                    .consumes(&[&self.reply]),
            ),
            (
                "ledger",
                d("ledger")
                    .consumes(&[&self.request])
                    .publishes(&[&self.reply]),
            ),
        ]
    }
}

/// The incident on the two nodes: its topology on the old node, a world file whose six
/// services point at it (1 s rollouts), and a plan with `strategy` that moves every service
/// but those in `left_out`.
struct Incident {
    s: Scenario,
    names: Names,
    strategy: String,
}

impl Incident {
    fn new(prefix: &str, strategy: &str, left_out: &[&str]) -> Incident {
        let [old, new] = nodes();
        let names = Names::new(prefix);
        old.declare_exchange("/", &names.apprecord, "topic");
        old.declare_exchange("/", &names.outbound, "topic");
        for queue in names.queues() {
            old.declare_queue("/", queue);
        }
        old.bind("/", &names.apprecord, &names.outbound_queue, "#");
        old.bind("/", &names.apprecord, &names.dataexporter, "#");
        old.bind("/", &names.outbound, &names.audit, "#");

        let mut world = World::new()
            .broker(common::Broker::new(OLD_ID, &old.amqp_endpoint()).live())
            .broker(common::Broker::new(NEW_ID, &new.amqp_endpoint()).live());
        for (service, _) in names.declared() {
            world = world
                .service(
                    CLUSTER,
                    Service::new(service, &format!("{service}:1")).rollout_seconds(1.0),
                )
                .task_definition(
                    TaskDef::new(service, 1)
                        .container("app")
                        .env("SPRING_RABBITMQ_ADDRESSES", &old.amqp_endpoint()),
                );
        }
        let incident = Incident {
            s: Scenario::with_plan_text("", &world),
            names,
            strategy: strategy.to_owned(),
        };
        incident.write_plan(left_out);
        incident
    }

    /// Writes the plan: every service but `left_out` moves to the new node.
    fn write_plan(&self, left_out: &[&str]) {
        let mut plan = Plan::new().clusters(&[CLUSTER]).strategy(&self.strategy);
        for (service, declared) in self.names.declared() {
            if !left_out.contains(&service) {
                plan = plan.service(declared);
            }
        }
        self.s
            .write("plan.toml", &with_url_variables(&plan.to_toml()));
    }

    /// The services' workers, sending `total` messages at least.
    fn traffic(&self, total: u64) -> Traffic {
        let n = &self.names;
        Traffic::new(&self.s.path("world.json"), CLUSTER, nodes(), total)
            .consumer("outbound", &n.outbound_queue, &["apprecord"])
            .consumer("dataexport", &n.dataexporter, &["apprecord"])
            .consumer("audit", &n.audit, &["outbound"])
            .consumer("ledger", &n.request, &["reconcile"])
            .consumer("reconcile", &n.reply, &["ledger"])
            .publisher("apprecord", &n.apprecord, "apprecord.created")
            .publisher("outbound", &n.outbound, "outbound.sent")
            .publisher("reconcile", "", &n.request)
            .publisher("ledger", "", &n.reply)
    }

    /// `warren ARGS…` with the four URLs in its environment.
    fn warren(&self, args: &[&str]) -> std::process::Output {
        let [old, new] = nodes();
        common::with_urls(
            &mut self.s.warren(args),
            [
                (old.management_url(), old.amqp_url()),
                (new.management_url(), new.amqp_url()),
            ],
        )
        .timeout(Duration::from_secs(300))
        .output()
        .expect("warren runs")
    }

    /// `warren apply`, which must succeed; how long it took.
    fn apply(&self) -> Duration {
        let started = Instant::now();
        let out = self.apply_run();
        assert!(
            out.status.success(),
            "apply: {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        started.elapsed()
    }

    /// `warren apply`, whatever its outcome.
    fn apply_run(&self) -> std::process::Output {
        self.warren(&[
            "apply",
            "plan.toml",
            "--world",
            "world.json",
            "--auto-approve",
            "--wave-check-timeout",
            "30",
            "--drain-timeout",
            "60",
        ])
    }

    /// `warren decommission … --format json`: its exit code and decision.
    fn decommission(&self) -> (Option<i32>, Value) {
        let out = self.warren(&[
            "decommission",
            "plan.toml",
            "--world",
            "world.json",
            "--confirm",
            OLD_ID,
            "--format",
            "json",
        ]);
        let decision = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "decommission prints JSON ({e}): {}\n{}",
                text(&out.stdout),
                text(&out.stderr)
            )
        });
        (out.status.code(), decision)
    }

    /// Waits until the management API shows a consumer on each of the incident's queues on
    /// `node` but those of `except`, as warren's check after each wave reads it.
    fn wait_for_consumers(&self, node: &RabbitNode, except: &[&str]) {
        for queue in self.names.queues() {
            if except.contains(&queue) {
                continue;
            }
            assert!(
                node.wait_until(|n| n
                    .queue_info("/", queue)
                    .is_some_and(|q| q["consumers"].as_u64().unwrap_or(0) > 0)),
                "the management API shows no consumer on {queue}"
            );
        }
    }

    /// Waits until no queue of the incident holds a message (ready or unacknowledged) on
    /// either node, as the management API shows them.
    fn assert_queues_empty(&self) {
        for (label, node) in ["old", "new"].into_iter().zip(nodes()) {
            for queue in self.names.queues() {
                assert!(
                    node.wait_until(|n| n.queue_info("/", queue).is_some_and(|q| {
                        q["messages"].as_u64() == Some(0)
                            && q["messages_unacknowledged"].as_u64() == Some(0)
                    })),
                    "{queue} on the {label} node still holds messages: {:?}",
                    node.queue_info("/", queue)
                );
            }
        }
    }

    /// Stops the workers, waits until the old node has no connection left, and decommissions
    /// it: it must be deleted.
    fn decommission_succeeds(&self, traffic: Running) {
        drop(traffic);
        let old = rabbit::shared_old();
        assert!(
            old.wait_until(|n| n
                .get("/api/connections")
                .and_then(|c| c.as_array().map(Vec::is_empty))
                .unwrap_or(false)),
            "connections left on the old node: {:?}",
            old.get("/api/connections")
        );
        let (code, decision) = self.decommission();
        assert_eq!(code, Some(0), "{decision:#}");
        assert_eq!(self.s.world_json()["brokers"][0]["state"], "DELETED");
    }
}

/// What warren declared for federation that is still on `node`: its policies and federation
/// upstreams (by name), in every vhost.
fn federation_on(node: &RabbitNode) -> Vec<String> {
    let names = |path: &str| -> Vec<String> {
        node.get(path)
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .filter(|name| name.starts_with("warren-"))
            .collect()
    };
    let mut out = names("/api/policies");
    out.extend(names("/api/parameters/federation-upstream"));
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Prints a run's summary (shown with `--nocapture`) and checks that the table reports what
/// the summary counted, duplicates included.
fn report(title: &str, summary: &Summary, timings: &str) -> String {
    let table = summary.table();
    println!("\n### {title}\n\n{table}{timings}\n");
    let total_row = table
        .lines()
        .find(|l| l.starts_with("| **total**"))
        .expect("a total row");
    let cells: Vec<&str> = total_row.split('|').map(str::trim).collect();
    assert_eq!(
        cells[6],
        summary.duplicates().to_string(),
        "duplicates reported: {table}"
    );
    assert_eq!(summary.queues.len(), 5, "a row per queue: {table}");
    table
}

/// Moves the whole incident with `strategy` under traffic: every confirmed message is
/// consumed, nothing is left on either node, every worker ends on the new node, and
/// decommission deletes the old broker.
fn headline(strategy: &str) {
    let _one = one_at_a_time();
    let started = Instant::now();
    let total = traffic::messages_per_run();
    let [old, _new] = nodes();
    let incident = Incident::new(&format!("tr-{strategy}"), strategy, &[]);
    let mut traffic = incident.traffic(total).start();
    incident.wait_for_consumers(old, &[]);

    let applied_in = incident.apply();
    assert!(
        traffic.wait_all_on(1, Duration::from_secs(10)),
        "every worker on the new node: {:?}",
        traffic.nodes()
    );
    traffic.publish_until_total(PUBLISHING_TIMEOUT);
    let delivered = traffic.await_delivery(DELIVERY_TIMEOUT);
    let summary = traffic.summary();
    let table = report(
        &format!("{strategy}, every service in the plan"),
        &summary,
        &format!(
            "apply took {:.1} s; the test {:.1} s so far",
            applied_in.as_secs_f64(),
            started.elapsed().as_secs_f64()
        ),
    );
    assert!(delivered, "every confirmed message consumed:\n{table}");
    assert_eq!(summary.lost(), 0, "{table}");
    assert!(summary.confirmed() >= total, "{table}");
    assert!(
        summary.queues.iter().all(|q| q.expected > 0),
        "traffic on every queue: {table}"
    );
    incident.assert_queues_empty();
    assert_eq!(
        federation_on(nodes()[1]),
        Vec::<String>::new(),
        "nothing of warren's federation is left on the new node"
    );
    incident.decommission_succeeds(traffic);
    println!(
        "{strategy} headline: {:.1} s in all",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn drain_moves_the_incident_under_traffic_and_loses_nothing() {
    headline("drain");
}

/// The `federate` strategy's headline: consumers move first and the new node's federated
/// queues pull what the publishers still send to the old one, so consumption never waits for a
/// drain; apply removes the federation once the old queues are empty.
#[test]
fn federate_moves_the_incident_under_traffic_and_loses_nothing() {
    headline("federate");
}

/// A `federate` apply that stops in its middle (the last wave's publisher, `apprecord`, fails
/// its rollout), rolled back under traffic: publishers go back first, each queue's federation
/// is removed before its consumers go back, nothing of the federation is left, every service
/// ends on the old node, and every confirmed message is consumed.
#[test]
fn rollback_in_the_middle_of_a_federate_apply_removes_the_federation_and_loses_nothing() {
    let _one = one_at_a_time();
    let started = Instant::now();
    let total = traffic::messages_per_run();
    let [old, new] = nodes();
    let incident = Incident::new("tr-fedback", "federate", &[]);
    let mut world = incident.s.world_json();
    for service in world["clusters"][0]["services"].as_array_mut().unwrap() {
        if service["name"] == "apprecord" {
            service["rollout"] = Value::from("fail");
        }
    }
    incident
        .s
        .write("world.json", &serde_json::to_string_pretty(&world).unwrap());
    let mut traffic = incident.traffic(total).start();
    incident.wait_for_consumers(old, &[]);

    let out = incident.apply_run();
    assert_eq!(
        out.status.code(),
        Some(1),
        "apply stops: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("apprecord") || text(&out.stderr).contains("apprecord"),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        !federation_on(new).is_empty(),
        "apply stopped with its federation declared"
    );
    assert_eq!(
        traffic.consumer_node("audit"),
        Some(1),
        "{:?}",
        traffic.nodes()
    );

    let out = incident.warren(&[
        "rollback",
        "plan.toml",
        "--world",
        "world.json",
        "--auto-approve",
        "--drain-timeout",
        "60",
    ]);
    assert!(
        out.status.success(),
        "rollback: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        traffic.wait_all_on(0, Duration::from_secs(10)),
        "every worker back on the old node: {:?}",
        traffic.nodes()
    );
    assert_eq!(
        federation_on(new),
        Vec::<String>::new(),
        "rollback removed what apply declared"
    );
    traffic.publish_until_total(PUBLISHING_TIMEOUT);
    let delivered = traffic.await_delivery(DELIVERY_TIMEOUT);
    let summary = traffic.summary();
    let table = report(
        "federate, stopped in its last wave and rolled back",
        &summary,
        &format!("the test {:.1} s so far", started.elapsed().as_secs_f64()),
    );
    assert!(delivered, "every confirmed message consumed:\n{table}");
    assert_eq!(summary.lost(), 0, "{table}");

    // The order: a queue's policy goes before its consumers go back, after its publishers.
    let journal = incident.s.journal();
    let position = |check: &dyn Fn(&Value) -> bool| journal.iter().position(check);
    let back = |service: &str| {
        position(&|e: &Value| {
            e["step"] == "rollback" && e["result"] == "ok" && e["service"] == service
        })
        .unwrap_or_else(|| panic!("{service} went back: {journal:#?}"))
    };
    let unfederated = |queue: &str| {
        position(&|e: &Value| {
            e["step"] == "federation"
                && e["result"] == "ok"
                && e["removed"]["kind"] == "policy"
                && e["queue"] == queue
        })
        .unwrap_or_else(|| panic!("the policy of {queue} was removed: {journal:#?}"))
    };
    let audit = unfederated(&incident.names.audit);
    assert!(
        back("outbound") < audit,
        "the publisher of audit's queue first"
    );
    assert!(audit < back("audit"), "the policy before audit goes back");
    assert!(
        unfederated(&incident.names.outbound_queue) < back("outbound"),
        "the policy before outbound goes back"
    );
}

#[test]
fn drain_without_the_forgotten_consumer_keeps_its_messages_until_it_moves_too() {
    let _one = one_at_a_time();
    let started = Instant::now();
    let total = traffic::messages_per_run();
    let [old, new] = nodes();
    let incident = Incident::new("tr-forgotten", "drain", &["dataexport"]);
    let dataexporter = incident.names.dataexporter.clone();
    let mut traffic = incident.traffic(total).start();
    incident.wait_for_consumers(old, &[]);

    // The first apply moves everyone but dataexport, which stays on the old node.
    // The plan says so: dataexport is unmanaged, and its queue's publishers move.
    let out = incident.warren(&[
        "plan",
        "plan.toml",
        "--world",
        "world.json",
        "--format",
        "json",
    ]);
    let plan: Value = serde_json::from_slice(&out.stdout).expect("plan prints JSON");
    assert_eq!(common::unmanaged_ids(&plan), ["esr/dataexport"], "{plan:#}");
    assert!(
        common::warnings(&plan)
            .iter()
            .any(|w| w.contains(&dataexporter) && w.contains("publishers move")),
        "{plan:#}"
    );
    let first_apply = incident.apply();
    let others = ["outbound", "audit", "ledger", "reconcile"];
    assert!(
        traffic.wait_for(
            |t| {
                t.nodes()
                    .iter()
                    .all(|(s, _, on)| *on == Some(usize::from(s != "dataexport")))
            },
            Duration::from_secs(10)
        ),
        "everyone but dataexport on the new node: {:?}",
        traffic.nodes()
    );
    traffic.publish_until_total(PUBLISHING_TIMEOUT);
    assert!(
        traffic.await_delivery_to(&others, DELIVERY_TIMEOUT),
        "the moved consumers got everything:\n{}",
        traffic.summary().table()
    );

    // apprecord publishes on the new node since it moved, so what it sent since then sits in
    // the new node's copy of the dataexporter queue, which nothing consumes; dataexport, still
    // on the old node, emptied the old copy.
    assert_eq!(traffic.consumer_node("dataexport"), Some(0));
    let waiting = |t: &Running| t.missing_for("dataexport") as u64;
    assert!(
        new.wait_until(|n| {
            let on_new = n
                .queue_info("/", &dataexporter)
                .and_then(|q| q["messages"].as_u64());
            let on_old = old
                .queue_info("/", &dataexporter)
                .and_then(|q| q["messages"].as_u64());
            on_old == Some(0) && on_new == Some(waiting(&traffic)) && on_new > Some(0)
        }),
        "dataexport's messages: {} not received; old {:?}, new {:?}",
        waiting(&traffic),
        old.queue_info("/", &dataexporter),
        new.queue_info("/", &dataexporter)
    );
    let stranded = waiting(&traffic);

    // Decommission is refused while dataexport is on the old node: its service and its
    // connection block. The old copy of its queue is empty (it holds no message to name); the
    // connection's blocker names the queue it consumes there and what waits for dataexport in
    // the new node's copy.
    let (code, decision) = incident.decommission();
    assert_eq!(code, Some(3), "{decision:#}");
    let blocker = |kind: &str, text: &str| {
        decision["blockers"].as_array().is_some_and(|b| {
            b.iter().any(|b| {
                b["kind"] == kind && b["detail"].as_str().is_some_and(|d| d.contains(text))
            })
        })
    };
    assert!(
        blocker("service", "esr/dataexport points at b-1111"),
        "{decision:#}"
    );
    assert!(
        blocker("connection", "connection from esr/dataexport"),
        "{decision:#}"
    );
    assert!(
        blocker(
            "connection",
            &format!("it consumes {dataexporter} on the old broker")
        ),
        "{decision:#}"
    );
    // Nothing consumes the new copy, so what waits there is what dataexport has not received.
    assert!(
        blocker(
            "connection",
            &format!("{stranded} messages wait for it in the new broker's {dataexporter}")
        ),
        "{decision:#}"
    );
    assert_ne!(incident.s.world_json()["brokers"][0]["state"], "DELETED");

    // A second plan that moves dataexport too: it consumes what waited for it.
    incident.write_plan(&[]);
    let second_apply = incident.apply();
    assert!(
        traffic.wait_all_on(1, Duration::from_secs(10)),
        "{:?}",
        traffic.nodes()
    );
    let delivered = traffic.await_delivery(DELIVERY_TIMEOUT);
    let summary = traffic.summary();
    let table = report(
        "drain, dataexport left out, then moved by a second plan",
        &summary,
        &format!(
            "{stranded} messages waited for dataexport on the new node; applies took {:.1} s \
             and {:.1} s; the test {:.1} s so far",
            first_apply.as_secs_f64(),
            second_apply.as_secs_f64(),
            started.elapsed().as_secs_f64()
        ),
    );
    assert!(delivered, "every confirmed message consumed:\n{table}");
    assert_eq!(summary.lost(), 0, "{table}");
    assert!(summary.confirmed() >= total, "{table}");
    incident.assert_queues_empty();
    incident.decommission_succeeds(traffic);
    println!(
        "forgotten consumer: {:.1} s in all",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn the_longest_gap_counts_only_while_traffic_flowed() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let times = [at(0), at(100), at(150), at(400), at(5_000)];
    // The last receipt came long after the traffic stopped (at 1 000 ms): the gap ends there.
    assert_eq!(
        traffic::longest_gap(&times, at(1_000)),
        Duration::from_millis(600)
    );
    assert_eq!(
        traffic::longest_gap(&times, at(10_000)),
        Duration::from_millis(4_600)
    );
    assert_eq!(traffic::longest_gap(&times[..1], at(1_000)), Duration::ZERO);
}
