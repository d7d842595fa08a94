//! `warren decommission` and `warren status` on the rehearsal backend, driven through the built
//! binary: one world per blocker kind, all of them at once, a clean world, and the status of a
//! half-moved migration.

mod common;

use common::{
    all_output, new_broker, old_broker, world_broker, Broker, By, Declared, Plan, Queue, Scenario,
    Service, TaskDef, World, JOURNAL, NEW_HOST, OLD_HOST, OLD_ID,
};
use serde_json::Value;

/// The cluster the plan scans.
const SHOP: &str = "shop";
const HOST_VAR: &str = "SPRING_RABBITMQ_HOST";

fn td(family: &str, revision: u32, host: &str) -> TaskDef {
    TaskDef::new(family, revision)
        .container("app")
        .env(HOST_VAR, host)
}

/// A migration that is done: `shop/orders` runs `orders:2` on the new broker; `orders:1` (old)
/// is still registered but not the latest. The old broker has one empty queue, no connections.
/// `old` is the old broker to use (simulated unless the test says otherwise).
fn clean_world_with(old: Broker) -> World {
    World::new()
        .broker(old)
        .broker(new_broker())
        .service(SHOP, Service::new("orders", "orders:2"))
        .task_definition(td("orders", 1, OLD_HOST))
        .task_definition(td("orders", 2, NEW_HOST))
}

fn clean_world() -> World {
    clean_world_with(old_broker().queue(Queue::new("q.orders")))
}

/// The plan scans only cluster `shop`; decommission must look further.
fn plan() -> Plan {
    Plan::new()
        .clusters(&[SHOP])
        .service(Declared::new(SHOP, "orders"))
}

/// `warren decommission plan.toml --world world.json --confirm b-1111 --format json`, expecting
/// `code`; returns the parsed JSON.
fn decommission_json(s: &Scenario, code: i32) -> Value {
    let output = s
        .on_world("decommission", &["--confirm", OLD_ID, "--format", "json"])
        .assert()
        .code(code)
        .get_output()
        .clone();
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "decommission --format json prints JSON ({e}):\n{}",
            all_output(&output)
        )
    })
}

/// The blocker kinds of a decision, sorted.
fn kinds(decision: &Value) -> Vec<String> {
    let mut kinds: Vec<String> = decision["blockers"]
        .as_array()
        .expect("blockers is a list")
        .iter()
        .map(|b| b["kind"].as_str().expect("kind is a string").to_owned())
        .collect();
    kinds.sort();
    kinds
}

/// The detail of the only blocker of a decision.
fn only_detail(decision: &Value) -> &str {
    let blockers = decision["blockers"].as_array().unwrap();
    assert_eq!(blockers.len(), 1, "{decision:#}");
    blockers[0]["detail"].as_str().unwrap()
}

/// Decommission of `world` is refused with exactly one blocker of `kind`; nothing is deleted
/// and the world file is untouched. Returns the blocker's detail.
fn refused_for(world: &World, kind: &str) -> String {
    let s = Scenario::new(&plan(), world);
    let before = s.bytes("world.json");
    let decision = decommission_json(&s, 3);
    assert_eq!(decision["refused"], true);
    assert_eq!(decision["broker"], OLD_ID);
    assert_eq!(kinds(&decision), vec![kind.to_owned()], "{decision:#}");
    assert_eq!(
        s.bytes("world.json"),
        before,
        "nothing deleted, nothing written"
    );
    assert_eq!(world_broker(&s.world_json(), OLD_ID)["state"], "RUNNING");
    only_detail(&decision).to_owned()
}

// ---------------------------------------------------------------------------------------------
// One blocker at a time
// ---------------------------------------------------------------------------------------------

#[test]
fn a_clean_world_is_decommissioned() {
    let s = Scenario::new(&plan(), &clean_world());

    let decision = decommission_json(&s, 0);

    assert_eq!(
        decision,
        serde_json::json!({ "broker": OLD_ID, "refused": false, "blockers": [] })
    );
    assert_eq!(world_broker(&s.world_json(), OLD_ID)["state"], "DELETED");
    let journal = s.journal();
    let lines: Vec<&serde_json::Value> = journal
        .iter()
        .filter(|e| e["step"] == "decommission")
        .collect();
    let results: Vec<&str> = lines
        .iter()
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results,
        ["started", "ok"],
        "the intent, then the result: {journal:#?}"
    );
    let line = lines[1];
    assert_eq!(line["migration"], "test-migration");
}

#[test]
fn a_service_in_a_cluster_the_plan_does_not_scan_blocks() {
    let world = clean_world()
        .service("legacy", Service::new("reports", "reports:1"))
        .task_definition(td("reports", 1, OLD_HOST))
        .task_definition(td("reports", 2, NEW_HOST));
    let detail = refused_for(&world, "service");
    assert!(detail.contains("legacy/reports"), "{detail}");
    assert!(detail.contains(HOST_VAR), "{detail}");
}

#[test]
fn a_running_deployment_of_an_old_revision_blocks() {
    let world = World::new()
        .broker(old_broker().queue(Queue::new("q.orders")))
        .broker(new_broker())
        .service(
            SHOP,
            Service::new("orders", "orders:2").deployment("orders:1", "ACTIVE", 2),
        )
        .task_definition(td("orders", 1, OLD_HOST))
        .task_definition(td("orders", 2, NEW_HOST));
    let detail = refused_for(&world, "service");
    assert!(detail.contains("shop/orders"), "{detail}");
    assert!(detail.contains("orders:1"), "{detail}");
}

#[test]
fn the_latest_active_revision_pointing_at_the_old_broker_blocks() {
    // The service runs orders:2 (new), but a task started from the family gets orders:3 (old).
    let world = clean_world().task_definition(td("orders", 3, OLD_HOST));
    let detail = refused_for(&world, "task_definition");
    assert!(detail.contains("orders:3"), "{detail}");
}

#[test]
fn a_schedule_that_starts_an_old_revision_blocks() {
    let world = clean_world().schedule("nightly-export", SHOP, "orders:1");
    let detail = refused_for(&world, "schedule");
    assert!(detail.contains("nightly-export"), "{detail}");
    assert!(detail.contains("orders:1"), "{detail}");
}

#[test]
fn a_queue_with_messages_blocks() {
    let world = clean_world_with(old_broker().queue(Queue::new("q.orders").messages(12)));
    let detail = refused_for(&world, "queue");
    assert!(detail.contains("q.orders holds 12 messages"), "{detail}");
}

#[test]
fn an_open_connection_blocks() {
    let world = clean_world_with(
        old_broker()
            .queue(Queue::new("q.orders"))
            .connection("orders-worker", "10.0.1.5:40122"),
    );
    let detail = refused_for(&world, "connection");
    assert!(detail.contains("orders-worker"), "{detail}");
    assert!(detail.contains("10.0.1.5:40122"), "{detail}");
}

#[test]
fn a_connection_names_the_queue_it_consumes_and_what_waits_for_it_on_the_new_broker() {
    // The forgotten consumer: dataexport still reads its queue on the old broker, emptied,
    // while what its publisher sent since it moved waits in the new broker's copy.
    let queue = "t.apprecord.dataexporter";
    let world = World::new()
        .broker(
            old_broker()
                .queue(Queue::new(queue).consumed_by("dataexport"))
                .queue(Queue::new("t.other").consumed_by("someone-else"))
                .connection("dataexport", "10.0.3.40:40122"),
        )
        .broker(new_broker().queue(Queue::new(queue).messages(404)))
        .service(SHOP, Service::new("orders", "orders:2"))
        .task_definition(td("orders", 1, OLD_HOST))
        .task_definition(td("orders", 2, NEW_HOST));
    let detail = refused_for(&world, "connection");
    assert_eq!(
        detail,
        format!(
            "connection from unknown client (dataexport, 10.0.3.40:40122) is open on {OLD_ID}; \
             it consumes {queue} on the old broker; 404 messages wait for it in the new \
             broker's {queue}"
        )
    );
}

#[test]
fn a_federation_link_derived_from_an_upstream_and_a_policy_on_the_new_broker_blocks() {
    // Federation declared on the new broker of the world file: an upstream reading from the old
    // broker's host, and a policy that federates q.orders from it.
    let new = new_broker()
        .queue(Queue::new("q.orders"))
        .field(
            "upstreams",
            serde_json::json!([{ "vhost": "/", "name": "leftover", "from": [OLD_HOST] }]),
        )
        .field(
            "policies",
            serde_json::json!([{
                "vhost": "/",
                "name": "federate-orders",
                "pattern": "^q\\.orders$",
                "apply-to": "queues",
                "definition": { "federation-upstream": "leftover" }
            }]),
        );
    let world = World::new()
        .broker(old_broker().queue(Queue::new("q.orders")))
        .broker(new)
        .service(SHOP, Service::new("orders", "orders:2"))
        .task_definition(td("orders", 1, OLD_HOST))
        .task_definition(td("orders", 2, NEW_HOST));
    let detail = refused_for(&world, "federation");
    assert_eq!(
        detail,
        format!(
            "federation link leftover for q.orders on the new broker reads from {OLD_ID} (state running)"
        )
    );
}

#[test]
fn a_parameter_that_does_not_exist_is_unverifiable() {
    let world = clean_world()
        .service(SHOP, Service::new("mailer", "mailer:1"))
        .task_definition(
            TaskDef::new("mailer", 1)
                .container("app")
                .secret("RABBIT_HOST", "/shop/rabbit/host"),
        );
    let detail = refused_for(&world, "unverifiable");
    assert!(detail.contains("/shop/rabbit/host"), "{detail}");
}

#[test]
fn a_secrets_manager_secret_is_unverifiable() {
    let arn = "arn:aws:secretsmanager:eu-west-2:1:secret:shop/rabbit-AbCdEf";
    let world = clean_world()
        .service(SHOP, Service::new("mailer", "mailer:1"))
        .task_definition(
            TaskDef::new("mailer", 1)
                .container("app")
                .secret("RABBIT_URL", arn),
        );
    let detail = refused_for(&world, "unverifiable");
    assert!(detail.contains(arn), "{detail}");
}

/// `export:1` (read by schedule `nightly-export` only) takes its broker host from `value_from`;
/// `export:2`, the family's latest revision, points at the new broker.
fn scheduled_export_reading(value_from: &str) -> World {
    clean_world()
        .schedule("nightly-export", SHOP, "export:1")
        .task_definition(
            TaskDef::new("export", 1)
                .container("app")
                .secret("RABBIT_HOST", value_from),
        )
        .task_definition(td("export", 2, NEW_HOST))
}

#[test]
fn a_schedule_whose_host_sits_in_a_secrets_manager_secret_is_unverifiable() {
    let arn = "arn:aws:secretsmanager:eu-west-2:1:secret:shop/export-AbCdEf";
    let detail = refused_for(&scheduled_export_reading(arn), "unverifiable");
    assert!(detail.contains("schedule nightly-export"), "{detail}");
    assert!(detail.contains(arn), "{detail}");
}

#[test]
fn a_schedule_whose_host_sits_in_a_missing_parameter_is_unverifiable() {
    let detail = refused_for(
        &scheduled_export_reading("/shop/export/host"),
        "unverifiable",
    );
    assert!(detail.contains("schedule nightly-export"), "{detail}");
    assert!(detail.contains("/shop/export/host"), "{detail}");
}

#[test]
fn an_old_broker_without_endpoints_is_unverifiable() {
    let world = clean_world_with(
        old_broker()
            .without_endpoints()
            .queue(Queue::new("q.orders")),
    );
    let detail = refused_for(&world, "unverifiable");
    assert!(detail.contains(OLD_ID), "{detail}");
    assert!(detail.contains("no endpoints"), "{detail}");
}

#[test]
fn a_broker_whose_queues_cannot_be_read_is_unverifiable() {
    let world = clean_world_with(old_broker().live());
    let detail = refused_for(&world, "unverifiable");
    assert!(detail.contains(OLD_ID), "{detail}");
}

// ---------------------------------------------------------------------------------------------
// Everything at once, and the refusals around it
// ---------------------------------------------------------------------------------------------

/// Every blocker kind at once (one each, the service kind twice).
fn everything_world() -> World {
    World::new()
        .broker(
            old_broker()
                .queue(Queue::new("q.orders").messages(12))
                .connection("orders-worker", "10.0.1.5:40122"),
        )
        .broker(new_broker())
        .service(
            SHOP,
            Service::new("orders", "orders:2").deployment("orders:1", "ACTIVE", 1),
        )
        .task_definition(td("orders", 1, OLD_HOST))
        .task_definition(td("orders", 2, NEW_HOST))
        .task_definition(td("orders", 3, OLD_HOST))
        .service("legacy", Service::new("reports", "reports:1"))
        .task_definition(td("reports", 1, OLD_HOST))
        .task_definition(td("reports", 2, NEW_HOST))
        .schedule("nightly-export", SHOP, "orders:1")
        .service(SHOP, Service::new("mailer", "mailer:1"))
        .task_definition(
            TaskDef::new("mailer", 1)
                .container("app")
                .secret("RABBIT_HOST", "/shop/rabbit/host"),
        )
}

#[test]
fn every_blocker_at_once_is_listed() {
    let s = Scenario::new(&plan(), &everything_world());
    let before = s.bytes("world.json");

    let decision = decommission_json(&s, 3);

    assert_eq!(
        kinds(&decision),
        [
            "connection",
            "queue",
            "schedule",
            "service",
            "service",
            "task_definition",
            "unverifiable"
        ]
    );
    assert_eq!(s.bytes("world.json"), before);
    let journal = s.journal();
    assert_eq!(journal.len(), 1, "{journal:#?}");
    assert_eq!(journal[0]["step"], "decommission");
    assert_eq!(journal[0]["result"], "refused");

    // The human form says the same, and that nothing was deleted.
    let output = s
        .on_world("decommission", &["--confirm", OLD_ID])
        .assert()
        .code(3)
        .get_output()
        .clone();
    let human = String::from_utf8_lossy(&output.stdout);
    assert!(human.contains("Nothing was deleted"), "{human}");
    assert!(human.contains("7 blockers"), "{human}");
    for kind in [
        "service",
        "task_definition",
        "schedule",
        "queue",
        "connection",
    ] {
        assert!(human.contains(&format!("! {kind}")), "{kind}: {human}");
    }
}

#[test]
fn decommission_json_has_exactly_the_contract_keys() {
    let s = Scenario::new(&plan(), &everything_world());

    let decision = decommission_json(&s, 3);

    let keys: Vec<&String> = decision.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["broker", "refused", "blockers"]);
    assert_eq!(decision["broker"], OLD_ID);
    assert_eq!(decision["refused"], true);
    for blocker in decision["blockers"].as_array().unwrap() {
        let keys: Vec<&String> = blocker.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["kind", "detail"], "{blocker}");
        assert!(blocker["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
}

#[test]
fn a_wrong_confirmation_deletes_nothing() {
    let s = Scenario::new(&plan(), &clean_world());
    let before = s.bytes("world.json");

    let output = s
        .on_world("decommission", &["--confirm", "b-2222"])
        .assert()
        .code(1)
        .get_output()
        .clone();

    let out = all_output(&output);
    assert!(out.contains("b-2222") && out.contains(OLD_ID), "{out}");
    assert_eq!(s.bytes("world.json"), before);
    assert!(!s.exists(JOURNAL));
}

// ---------------------------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------------------------

/// `orders` moved; `billing` still on the old broker; `legacy/reports` on the old broker and in
/// no plan. The old broker's queue `q.billing` holds 4 messages.
fn half_moved() -> Scenario {
    let world = World::new()
        .broker(
            old_broker()
                .queue(Queue::new("q.billing").messages(4).consumers(1))
                .connection("billing", "10.0.2.7:5000"),
        )
        .broker(new_broker())
        .service(SHOP, Service::new("orders", "orders:2"))
        .task_definition(td("orders", 1, OLD_HOST))
        .task_definition(td("orders", 2, NEW_HOST))
        .service(SHOP, Service::new("billing", "billing:1"))
        .task_definition(td("billing", 1, OLD_HOST))
        .service(SHOP, Service::new("reports", "reports:1"))
        .task_definition(td("reports", 1, OLD_HOST));
    let plan = Plan::new()
        .service(Declared::new(SHOP, "orders"))
        .service(Declared::new(SHOP, "billing").consumes(&["q.billing"]));
    Scenario::new(&plan, &world)
}

#[test]
fn status_shows_a_half_moved_migration() {
    let s = half_moved();
    let before = s.bytes("world.json");

    let output = s
        .on_world("status", &[])
        .assert()
        .success()
        .get_output()
        .clone();

    let out = String::from_utf8_lossy(&output.stdout);
    let line = |service: &str| -> &str {
        out.lines()
            .find(|l| l.contains(&format!("shop/{service} ")))
            .unwrap_or_else(|| panic!("no line for {service}:\n{out}"))
    };
    assert!(line("orders").contains("on new"), "{out}");
    assert!(line("orders").contains("done"), "{out}");
    assert!(line("billing").contains("on old"), "{out}");
    assert!(line("billing").contains("to move to new"), "{out}");
    assert!(line("reports").contains("on old"), "{out}");
    assert!(line("reports").contains("not in the plan"), "{out}");
    assert!(out.contains("q.billing  4 messages, 1 consumer"), "{out}");
    assert!(
        out.contains("from shop/billing (10.0.2.7:5000)"),
        "the connection is named by its service: {out}"
    );
    assert!(out.contains("Decommission would be refused today"), "{out}");
    assert_eq!(s.bytes("world.json"), before, "status changes nothing");
}

#[test]
fn status_json_shows_a_half_moved_migration() {
    let s = half_moved();

    let output = s
        .on_world("status", &["--format", "json"])
        .assert()
        .success()
        .get_output()
        .clone();

    let status: Value = serde_json::from_slice(&output.stdout).expect("status prints JSON");
    let services = status["services"].as_array().unwrap();
    let of = |name: &str| {
        services
            .iter()
            .find(|s| s["service"] == name)
            .unwrap_or_else(|| panic!("no {name} in {status:#}"))
    };
    assert_eq!(of("orders")["broker"], "new");
    assert_eq!(of("orders")["wants"], "new");
    assert_eq!(of("orders")["task_definition"], "orders:2");
    assert_eq!(of("billing")["broker"], "old");
    assert_eq!(of("billing")["wants"], "new");
    assert_eq!(of("reports")["broker"], "old");
    assert!(of("reports")["wants"].is_null(), "{status:#}");
    let queue = &status["queues"][0];
    assert_eq!(queue["name"], "q.billing");
    assert_eq!(queue["messages"], 4);
    assert_eq!(status["decommission"]["would_pass"], false);
    let blockers = status["decommission"]["blockers"].as_array().unwrap();
    for kind in ["service", "queue", "connection"] {
        assert!(
            blockers.iter().any(|b| b["kind"] == kind),
            "{kind}: {status:#}"
        );
    }
}

#[test]
fn status_says_when_decommission_would_pass() {
    let s = Scenario::new(&plan(), &clean_world());

    let output = s
        .on_world("status", &[])
        .assert()
        .success()
        .get_output()
        .clone();
    let human = String::from_utf8_lossy(&output.stdout);
    assert!(human.contains("Decommission would pass today."), "{human}");

    let output = s
        .on_world("status", &["--format", "json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let status: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(status["decommission"]["would_pass"], true);
    assert_eq!(status["decommission"]["blockers"], serde_json::json!([]));
}

#[test]
fn a_broker_named_by_its_endpoints_is_decommissioned_by_its_host() {
    // The plan names the old broker by endpoint, not by id: --confirm takes its host.
    let plan = plan().old(By::Endpoints(vec![format!("amqps://{OLD_HOST}:5671")]));
    let s = Scenario::new(&plan, &clean_world());

    let output = s
        .on_world("decommission", &["--confirm", OLD_HOST, "--format", "json"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let decision: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(decision["broker"], OLD_HOST);
    assert_eq!(decision["refused"], false);
    assert_eq!(world_broker(&s.world_json(), OLD_ID)["state"], "DELETED");
}

/// A fully qualified host (`….amazonaws.com.`, trailing dot) names the same broker: the service
/// that uses it blocks decommission.
#[test]
fn a_host_written_with_its_trailing_dot_blocks() {
    let world = clean_world()
        .service("legacy", Service::new("exporter", "exporter:1"))
        .task_definition(td("exporter", 1, &format!("{OLD_HOST}.")))
        .task_definition(td("exporter", 2, NEW_HOST));
    let detail = refused_for(&world, "service");
    assert!(detail.contains("legacy/exporter"), "{detail}");
}

// ---------------------------------------------------------------------------------------------
// Hosts written in every form a container can hold them: plan lists each, decommission refuses
// ---------------------------------------------------------------------------------------------

/// [`clean_world`] with service `shop/exporter`, not in the plan, on `exporter:1` (`first`),
/// and `exporter:2` (on the new broker) registered after it.
fn exporter_world(first: TaskDef) -> World {
    clean_world()
        .service(SHOP, Service::new("exporter", "exporter:1"))
        .task_definition(first)
        .task_definition(td("exporter", 2, NEW_HOST))
}

/// `plan` lists `shop/exporter` as unmanaged through `through`, and `decommission` refuses
/// naming the service and `through`; `secret` appears in no output of either.
fn listed_and_blocking(world: &World, through: &str, secret: Option<&str>) {
    let s = Scenario::new(&plan(), world);
    let json = s.plan_json();
    let unmanaged = json["unmanaged"].as_array().expect("unmanaged is a list");
    assert_eq!(unmanaged.len(), 1, "{json:#}");
    assert_eq!(unmanaged[0]["service"], "exporter", "{json:#}");
    assert_eq!(unmanaged[0]["through"], serde_json::json!([through]));
    let human = s.plan_human();
    assert!(human.contains("shop/exporter"), "{human}");
    let detail = refused_for(world, "service");
    assert!(detail.contains("shop/exporter"), "{detail}");
    assert!(detail.contains(through), "{detail}");
    if let Some(secret) = secret {
        let everything = format!("{json}\n{human}\n{detail}");
        assert!(!everything.contains(secret), "{everything}");
    }
}

/// An Amazon MQ password may hold `/`, `#` and `?`; written unencoded, the host is what follows
/// the last `@`, and the password is masked whole.
#[test]
fn a_url_whose_password_holds_reserved_characters_blocks() {
    let url = format!("amqps://u:p/a#b?c@{OLD_HOST}:5671");
    let world = exporter_world(td("exporter", 1, &url));
    listed_and_blocking(&world, &format!("app/{HOST_VAR}"), Some("p/a#b?c"));
}

/// `user:password@host:port` and `user:password@host`, without a scheme.
#[test]
fn a_scheme_less_user_and_password_before_the_host_blocks() {
    for value in [
        format!("esr:s3cret@{OLD_HOST}:5671"),
        format!("esr:s3cret@{OLD_HOST}"),
    ] {
        let world = exporter_world(td("exporter", 1, &value));
        listed_and_blocking(&world, &format!("app/{HOST_VAR}"), Some("s3cret"));
    }
}

/// An old broker whose endpoint is an IPv6 literal: a service that uses it, in brackets or
/// bare, blocks.
#[test]
fn an_ipv6_host_blocks() {
    for value in ["amqps://[fd00::1]:5671", "[FD00:0::1]:5671", "fd00::1"] {
        let world = World::new()
            .broker(Broker::new(OLD_ID, "amqps://[fd00::1]:5671").queue(Queue::new("q.orders")))
            .broker(new_broker())
            .service(SHOP, Service::new("orders", "orders:2"))
            .task_definition(td("orders", 2, NEW_HOST))
            .service(SHOP, Service::new("exporter", "exporter:1"))
            .task_definition(td("exporter", 1, value))
            .task_definition(td("exporter", 2, NEW_HOST));
        listed_and_blocking(&world, &format!("app/{HOST_VAR}"), None);
    }
}

/// A host in `command`, `entryPoint`, a docker label or a health check's command: found, and
/// named by its path in the container.
#[test]
fn a_host_in_any_string_field_of_a_container_blocks() {
    for (field, value, through) in [
        (
            "command",
            serde_json::json!(["--rabbit-host", OLD_HOST]),
            "app/command[1]",
        ),
        (
            "entryPoint",
            serde_json::json!(["java", format!("--url=amqps://esr:s3cret@{OLD_HOST}:5671")]),
            "app/entryPoint[1]",
        ),
        (
            "dockerLabels",
            serde_json::json!({ "team": "esr", "broker": format!("{OLD_HOST}:5671") }),
            "app/dockerLabels.broker",
        ),
        (
            "healthCheck",
            serde_json::json!({ "command": ["CMD-SHELL", "rabbitmq-check", format!("amqps://{OLD_HOST}:5671")], "interval": 30 }),
            "app/healthCheck.command[2]",
        ),
    ] {
        let first = TaskDef::new("exporter", 1)
            .container("app")
            .env("LOG_LEVEL", "INFO")
            .container_field(field, value);
        listed_and_blocking(&exporter_world(first), through, Some("s3cret"));
    }
}

/// `broker_env` that misses one variable moves a service only in part: after the apply,
/// `status` calls it split (not done), as decommission, which reads every variable, agrees.
#[test]
fn status_calls_a_partial_move_split_after_apply_never_done() {
    let world = World::new()
        .broker(old_broker().queue(Queue::new("q.orders")))
        .broker(new_broker())
        .service(SHOP, Service::new("orders", "orders:1"))
        .task_definition(
            td("orders", 1, OLD_HOST).env("AUDIT_RABBIT_URL", &format!("amqps://{OLD_HOST}:5671")),
        );
    let s = Scenario::new(&plan().broker_env(&[HOST_VAR]), &world);
    s.apply(&[]).assert().success();

    let output = s
        .on_world("status", &["--format", "json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let status: Value = serde_json::from_slice(&output.stdout).unwrap();
    let orders = &status["services"][0];
    assert_eq!(orders["service"], "orders");
    assert_eq!(orders["task_definition"], "orders:2");
    assert_eq!(orders["broker"], "split", "{status:#}");
    assert_eq!(orders["wants"], "new");
    assert_eq!(status["decommission"]["would_pass"], false);

    let output = s
        .on_world("status", &[])
        .assert()
        .success()
        .get_output()
        .clone();
    let human = String::from_utf8_lossy(&output.stdout);
    let line = human
        .lines()
        .find(|l| l.contains("shop/orders "))
        .unwrap_or_else(|| panic!("no line for orders:\n{human}"));
    assert!(line.contains("split"), "{human}");
    assert!(!line.contains("done"), "{human}");
    assert!(line.contains("app/AUDIT_RABBIT_URL"), "{human}");

    let decision = decommission_json(&s, 3);
    assert!(
        decision["blockers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["kind"] == "service"
                && b["detail"].as_str().unwrap().contains("AUDIT_RABBIT_URL")),
        "{decision:#}"
    );
}

// ---------------------------------------------------------------------------------------------
// Resources that are not ECS services
// ---------------------------------------------------------------------------------------------

const OLD_ARN: &str = "arn:aws:mq:eu-west-2:111122223333:broker:esr-rabbit-old:b-1111";
const NEW_ARN: &str = "arn:aws:mq:eu-west-2:111122223333:broker:esr-rabbit-new:b-2222";

/// Decommission of the clean world plus `list` (the world file key, e.g. `functions`) holding
/// `items` is refused with exactly one blocker of `kind`; returns its detail.
fn refused_for_resources(list: &str, items: Value, kind: &str) -> String {
    let mut world = clean_world().to_json();
    world["brokers"][0]["arn"] = serde_json::json!(OLD_ARN);
    world[list] = items;
    let s = Scenario::from_texts(&plan().to_toml(), &common::pretty(&world));
    let decision = decommission_json(&s, 3);
    assert_eq!(kinds(&decision), vec![kind.to_owned()], "{decision:#}");
    assert_eq!(world_broker(&s.world_json(), OLD_ID)["state"], "RUNNING");
    only_detail(&decision).to_owned()
}

#[test]
fn a_function_whose_environment_names_the_old_broker_blocks() {
    let detail = refused_for_resources(
        "functions",
        serde_json::json!([
            { "name": "notify", "arn": "arn:aws:lambda:eu-west-2:111122223333:function:notify",
              "environment": { "AMQP_URL": format!("amqps://u:p@{OLD_HOST}:5671") } },
            { "name": "audit", "environment": { "AMQP_URL": format!("amqps://{NEW_HOST}:5671") } }
        ]),
        "function",
    );
    assert!(detail.contains("notify"), "{detail}");
    assert!(
        detail.contains("function:notify"),
        "names the ARN: {detail}"
    );
    assert!(detail.contains("AMQP_URL"), "{detail}");
    assert!(!detail.contains("u:p@"), "{detail}");
}

#[test]
fn an_event_source_mapping_from_the_old_broker_blocks() {
    let detail = refused_for_resources(
        "event_source_mappings",
        serde_json::json!([
            { "uuid": "6f1c-old", "function": "notify", "source": OLD_ARN, "state": "Enabled" },
            { "uuid": "9a2d-new", "function": "notify", "source": NEW_ARN },
            { "uuid": "0b3e-off", "function": "notify", "source": OLD_ARN, "state": "Disabled" }
        ]),
        "event_source_mapping",
    );
    assert!(detail.contains("6f1c-old"), "{detail}");
    assert!(detail.contains(OLD_ARN), "{detail}");
}

#[test]
fn a_pipe_from_the_old_broker_blocks() {
    let detail = refused_for_resources(
        "pipes",
        serde_json::json!([
            { "name": "orders-to-sqs", "arn": "arn:aws:pipes:eu-west-2:111122223333:pipe/orders-to-sqs",
              "source": OLD_ARN },
            { "name": "audit-to-sqs", "source": NEW_ARN }
        ]),
        "pipe",
    );
    assert!(detail.contains("orders-to-sqs"), "{detail}");
    assert!(
        detail.contains("pipe/orders-to-sqs"),
        "names the ARN: {detail}"
    );
}

#[test]
fn a_state_machine_that_runs_tasks_against_the_old_broker_blocks() {
    let machine = |name: &str, host: &str| {
        serde_json::json!({ "name": name, "definition": { "States": { "Export": {
            "Type": "Task",
            "Resource": "arn:aws:states:::ecs:runTask.sync",
            "Parameters": { "Overrides": { "ContainerOverrides": [{
                "Name": "app",
                "Environment": [{ "Name": HOST_VAR, "Value": host }]
            }]}}
        }}}})
    };
    let detail = refused_for_resources(
        "state_machines",
        serde_json::json!([
            machine("export-flow", OLD_HOST),
            machine("audit-flow", NEW_HOST)
        ]),
        "state_machine",
    );
    assert!(detail.contains("export-flow"), "{detail}");
    assert!(
        detail.contains(
            "States.Export.Parameters.Overrides.ContainerOverrides[0].Environment[0].Value"
        ),
        "{detail}"
    );
}

#[test]
fn a_rule_or_schedule_whose_overrides_name_the_old_broker_blocks() {
    for kind in ["rule", "schedule"] {
        let schedule = |name: &str, host: &str| {
            serde_json::json!({ "name": name, "kind": kind, "bus": "jobs", "cluster": SHOP,
                "task_definition": "orders:2",
                "overrides": { "app": { "SPRING_RABBITMQ_HOST": host } } })
        };
        let detail = refused_for_resources(
            "schedules",
            serde_json::json!([
                schedule("export-old", OLD_HOST),
                schedule("export-new", NEW_HOST)
            ]),
            "schedule",
        );
        assert!(detail.contains("export-old"), "{kind}: {detail}");
        assert!(detail.contains("(override)"), "{kind}: {detail}");
    }
}

#[test]
fn clean_resources_of_every_kind_do_not_block() {
    let mut world = clean_world().to_json();
    world["brokers"][0]["arn"] = serde_json::json!(OLD_ARN);
    world["functions"] = serde_json::json!([{ "name": "audit", "environment": { "H": NEW_HOST } }]);
    world["event_source_mappings"] =
        serde_json::json!([{ "uuid": "9a2d-new", "function": "audit", "source": NEW_ARN }]);
    world["pipes"] = serde_json::json!([{ "name": "audit-to-sqs", "source": NEW_ARN }]);
    world["state_machines"] =
        serde_json::json!([{ "name": "audit-flow", "definition": { "Host": NEW_HOST } }]);
    world["schedules"] = serde_json::json!([
        { "name": "hourly", "kind": "schedule", "cluster": SHOP, "task_definition": "orders" }
    ]);
    let s = Scenario::from_texts(&plan().to_toml(), &common::pretty(&world));
    let decision = decommission_json(&s, 0);
    assert_eq!(decision["refused"], false, "{decision:#}");
}

// ---------------------------------------------------------------------------------------------
// Shovels and federation links; connections named by their service
// ---------------------------------------------------------------------------------------------

/// A running link of `kind` (`shovel` or `federation`) that reads from `from` (a host).
fn link(kind: &str, name: &str, from: &str) -> Value {
    serde_json::json!({
        "kind": kind, "vhost": "/", "name": name, "from": [from], "to": [NEW_HOST],
        "queue": "q.orders", "state": "running"
    })
}

/// [`clean_world`] with `links` on the new broker.
fn clean_scenario_with_links_on_the_new_broker(links: Vec<Value>) -> Scenario {
    let s = Scenario::new(&plan(), &clean_world());
    s.edit_world(|w| {
        let brokers = w["brokers"].as_array_mut().unwrap();
        let new = brokers.iter_mut().find(|b| b["id"] != OLD_ID).unwrap();
        new["links"] = Value::Array(links);
    });
    s
}

#[test]
fn a_shovel_on_the_new_broker_that_reads_from_the_old_one_blocks() {
    let s = clean_scenario_with_links_on_the_new_broker(vec![link(
        "shovel",
        "esr-leftovers",
        OLD_HOST,
    )]);
    let before = s.bytes("world.json");

    let decision = decommission_json(&s, 3);

    assert_eq!(kinds(&decision), ["federation"], "{decision:#}");
    assert_eq!(
        only_detail(&decision),
        format!("shovel esr-leftovers for q.orders on the new broker reads from {OLD_ID} (state running)")
    );
    assert_eq!(s.bytes("world.json"), before, "nothing deleted");
}

#[test]
fn a_shovel_that_reads_from_another_broker_does_not_block() {
    let s = clean_scenario_with_links_on_the_new_broker(vec![link(
        "shovel",
        "from-dr",
        "rabbit-dr.esr.example",
    )]);

    let decision = decommission_json(&s, 0);

    assert_eq!(decision["refused"], false, "{decision:#}");
    assert_eq!(world_broker(&s.world_json(), OLD_ID)["state"], "DELETED");
}

#[test]
fn a_federation_link_whose_upstream_is_the_old_brokers_host_blocks() {
    let s = clean_scenario_with_links_on_the_new_broker(vec![link(
        "federation",
        "esr-upstream",
        &OLD_HOST.to_uppercase(),
    )]);

    let decision = decommission_json(&s, 3);

    assert_eq!(kinds(&decision), ["federation"], "{decision:#}");
    let detail = only_detail(&decision);
    assert!(
        detail.starts_with("federation link esr-upstream") && detail.contains("reads from"),
        "{detail}"
    );
}

#[test]
fn a_connection_named_like_a_service_is_named_by_it_and_an_unnamed_one_is_an_unknown_client() {
    let world = clean_world_with(
        old_broker()
            .queue(Queue::new("q.orders"))
            .connection("orders-7f3c", "10.0.1.5:40122")
            .connection("", "10.0.9.9:5000"),
    );
    let s = Scenario::new(&plan(), &world);

    let decision = decommission_json(&s, 3);
    let details: Vec<&str> = decision["blockers"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|b| assert_eq!(b["kind"], "connection", "{decision:#}"))
        .map(|b| b["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        details,
        [
            format!(
                "connection from shop/orders (orders-7f3c, 10.0.1.5:40122) is open on {OLD_ID}"
            ),
            format!("connection from unknown client (10.0.9.9:5000) is open on {OLD_ID}"),
        ]
    );

    let output = s
        .on_world("status", &[])
        .assert()
        .success()
        .get_output()
        .clone();
    let human = String::from_utf8_lossy(&output.stdout);
    assert!(
        human.contains("  from shop/orders (orders-7f3c, 10.0.1.5:40122)\n"),
        "{human}"
    );
    assert!(
        human.contains("  from unknown client (10.0.9.9:5000)\n"),
        "{human}"
    );

    let output = s
        .on_world("status", &["--format", "json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let status: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        status["connections"],
        serde_json::json!([
            { "client": "orders-7f3c", "peer": "10.0.1.5:40122", "services": ["shop/orders"] },
            { "client": "", "peer": "10.0.9.9:5000", "services": [] },
        ])
    );
}

#[test]
fn a_connection_from_a_running_tasks_address_is_that_services() {
    let s = Scenario::new(
        &plan(),
        &clean_world_with(
            old_broker()
                .queue(Queue::new("q.orders"))
                .connection("", "10.0.1.7:5123"),
        ),
    );
    s.edit_world(|w| {
        w["clusters"][0]["services"][0]["tasks"] = serde_json::json!([{ "address": "10.0.1.7" }]);
    });

    let decision = decommission_json(&s, 3);

    assert_eq!(
        only_detail(&decision),
        format!("connection from shop/orders (10.0.1.7:5123) is open on {OLD_ID}")
    );
}

#[test]
fn a_rehearsal_moves_a_connection_named_after_its_service_with_it() {
    let world = World::new()
        .broker(
            old_broker()
                .queue(Queue::new("q.orders"))
                .connection("orders-7f3c", "10.0.1.5:40122")
                .connection("", "10.0.9.9:5000"),
        )
        .broker(new_broker())
        .service(SHOP, Service::new("orders", "orders:1"))
        .task_definition(td("orders", 1, OLD_HOST));
    let s = Scenario::new(&plan(), &world);

    s.apply(&[]).assert().success();

    let decision = decommission_json(&s, 3);
    assert_eq!(
        only_detail(&decision),
        format!("connection from unknown client (10.0.9.9:5000) is open on {OLD_ID}"),
        "orders-7f3c moved with shop/orders"
    );
}
