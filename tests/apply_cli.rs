//! `warren apply`, `rollback` and `unlock` on the rehearsal backend, driven through the built
//! binary: every test writes a small world, runs warren on it, and reads back the world file and
//! the journal (`warren-journal.jsonl` beside it).

mod common;

use std::time::{Duration, Instant};

use common::{
    all_output, env_of, new_broker, old_broker, revisions, running, steps, task_def, time_of,
    waves, world_service, Declared, Plan, Queue, Scenario, Service, TaskDef, World, JOURNAL,
    NEW_HOST, OLD_HOST,
};
use serde_json::{json, Value};

/// The cluster every service of these tests runs in.
const C: &str = "c";
/// The variable that names the broker host in these tests' task definitions.
const HOST_VAR: &str = "SPRING_RABBITMQ_HOST";

/// Service `name` on `name:1`, whose one container `app` points at the old broker;
/// `tweak` sets rehearsal dynamics (`rollout_seconds`, `rollout_fails`).
fn with_old(world: World, name: &str, tweak: impl FnOnce(Service) -> Service) -> World {
    world
        .service(C, tweak(Service::new(name, &format!("{name}:1"))))
        .task_definition(
            TaskDef::new(name, 1)
                .container("app")
                .env(HOST_VAR, OLD_HOST),
        )
}

/// The same service on `name:1` pointing at neither broker.
fn with_unrelated(world: World, name: &str) -> World {
    world
        .service(C, Service::new(name, &format!("{name}:1")))
        .task_definition(
            TaskDef::new(name, 1)
                .container("app")
                .env("DATABASE_HOST", "db.internal"),
        )
}

/// `c/name`.
fn id(name: &str) -> String {
    format!("{C}/{name}")
}

/// A three-wave chain: `ingest` publishes `q.raw`; `enrich` consumes `q.raw` and publishes
/// `q.enriched`; `store` consumes `q.enriched`. The old broker's queues are `raw` and
/// `enriched`; the new broker has both, empty.
fn chain(raw: Queue, enriched: Queue, tweak: impl Fn(&str, Service) -> Service) -> (Plan, World) {
    let mut world = World::new()
        .broker(old_broker().queue(raw).queue(enriched))
        .broker(
            new_broker()
                .queue(Queue::new("q.raw").consumers(1))
                .queue(Queue::new("q.enriched").consumers(1)),
        );
    for name in ["ingest", "enrich", "store"] {
        world = with_old(world, name, |s| tweak(name, s));
    }
    let plan = Plan::new()
        .service(Declared::new(C, "ingest").publishes(&["q.raw"]))
        .service(
            Declared::new(C, "enrich")
                .consumes(&["q.raw"])
                .publishes(&["q.enriched"]),
        )
        .service(Declared::new(C, "store").consumes(&["q.enriched"]));
    (plan, world)
}

/// Queue `name` on the old broker holding `messages`, with one consumer (it drains at once).
fn busy(name: &str, messages: u64) -> Queue {
    Queue::new(name).messages(messages).consumers(1)
}

/// Runs `cmd`, expects exit code `code`, and returns its stdout and stderr together.
fn run(cmd: &mut assert_cmd::Command, code: i32) -> String {
    let output = cmd.assert().code(code).get_output().clone();
    all_output(&output)
}

/// Index of the first journal entry that matches `what`.
fn position(journal: &[Value], what: impl Fn(&Value) -> bool) -> usize {
    journal
        .iter()
        .position(what)
        .unwrap_or_else(|| panic!("no such entry in the journal:\n{journal:#?}"))
}

// ---------------------------------------------------------------------------------------------
// What a move changes
// ---------------------------------------------------------------------------------------------

#[test]
fn apply_rewrites_only_the_broker_host_and_keeps_the_old_revision() {
    let addresses = format!("amqps://export:pa55word@{OLD_HOST}:5671/esr");
    let nodes = format!("{OLD_HOST}:5671,rabbit-dr.internal:5671");
    let upstream = format!("amqps://{OLD_HOST}:5671");
    let td = TaskDef::new("export", 7)
        .field("cpu", json!("256"))
        .field("networkMode", json!("awsvpc"))
        .field("taskRoleArn", json!("arn:aws:iam::1:role/export"))
        .field("tags", json!([{ "key": "team", "value": "esr" }]))
        .container("app")
        .container_field(
            "image",
            json!("1.dkr.ecr.eu-west-2.amazonaws.com/export:4.2"),
        )
        .container_field("portMappings", json!([{ "containerPort": 8080 }]))
        .env(HOST_VAR, OLD_HOST)
        .env("SPRING_RABBITMQ_ADDRESSES", &addresses)
        .env("RABBIT_NODES", &nodes)
        // Names the old host only as a substring: not a pointer, never rewritten.
        .env("HEALTH_URL", "https://xb-1111.mq.example.com/health")
        .env("LOG_LEVEL", "INFO")
        .secret(
            "RABBIT_PASSWORD",
            "arn:aws:ssm:eu-west-2:1:parameter/esr/rabbit/password",
        )
        .container("proxy")
        .container_field("essential", json!(false))
        .env("UPSTREAM", &upstream)
        .env("MODE", "tcp")
        .container("log-router")
        .container_field("firelensConfiguration", json!({ "type": "fluentbit" }))
        .env("FLUENT_HOST", "logs.internal");
    let world = World::two_brokers()
        .service(C, Service::new("export", "export:7"))
        .task_definition(td)
        .parameter(
            "arn:aws:ssm:eu-west-2:1:parameter/esr/rabbit/password",
            "not-a-real-password",
        );
    let s = Scenario::new(&Plan::new().service(Declared::new(C, "export")), &world);
    let before = task_def(&s.world_json(), "export:7").clone();

    s.apply(&[]).assert().success();

    let after = s.world_json();
    assert_eq!(running(&after, C, "export"), "export:8");
    assert_eq!(revisions(&after, "export"), vec![7, 8]);
    assert_eq!(
        task_def(&after, "export:7"),
        &before,
        "the old revision is still there, unchanged"
    );
    let mut expected = before.clone();
    expected["revision"] = json!(8);
    let app = &mut expected["containers"][0]["environment"];
    app[HOST_VAR] = json!(NEW_HOST);
    app["SPRING_RABBITMQ_ADDRESSES"] =
        json!(format!("amqps://export:pa55word@{NEW_HOST}:5671/esr"));
    app["RABBIT_NODES"] = json!(format!("{NEW_HOST}:5671,rabbit-dr.internal:5671"));
    expected["containers"][1]["environment"]["UPSTREAM"] =
        json!(format!("amqps://{NEW_HOST}:5671"));
    let new = task_def(&after, "export:8");
    assert_eq!(new, &expected);
    // The same keys in the same order, not only the same content.
    assert_eq!(
        serde_json::to_string_pretty(new).unwrap(),
        serde_json::to_string_pretty(&expected).unwrap()
    );
}

#[test]
fn apply_keeps_what_the_plan_does_not_scan() {
    let world = with_old(World::two_brokers(), "a", |s| s)
        .service("elsewhere", Service::new("b", "b:1"))
        .task_definition(
            TaskDef::new("b", 1)
                .container("app")
                .env(HOST_VAR, OLD_HOST),
        );
    let s = Scenario::new(
        &Plan::new().clusters(&[C]).service(Declared::new(C, "a")),
        &world,
    );
    let before = s.world_json();

    s.apply(&[]).assert().success();

    let after = s.world_json();
    assert_eq!(running(&after, C, "a"), "a:2");
    assert_eq!(
        after["clusters"][1], before["clusters"][1],
        "cluster elsewhere is kept"
    );
    assert_eq!(task_def(&after, "b:1"), task_def(&before, "b:1"));
}

// ---------------------------------------------------------------------------------------------
// Waves and drains
// ---------------------------------------------------------------------------------------------

#[test]
fn waves_run_in_order_and_wait_for_drains() {
    let (plan, world) = chain(busy("q.raw", 5), busy("q.enriched", 3), |_, s| {
        s.rollout_seconds(0.1)
    });
    let s = Scenario::new(&plan, &world);
    assert_eq!(
        waves(&s.plan_json()),
        vec![vec![id("ingest")], vec![id("enrich")], vec![id("store")]]
    );

    s.apply(&[]).assert().success();

    let journal = s.journal();
    for wave in 2..=3u64 {
        let rollouts_before = steps(&journal, "rollout")
            .into_iter()
            .filter(|e| e["wave"] == wave - 1)
            .collect::<Vec<_>>();
        let updates = steps(&journal, "update")
            .into_iter()
            .filter(|e| e["wave"] == wave)
            .collect::<Vec<_>>();
        assert!(
            !rollouts_before.is_empty() && !updates.is_empty(),
            "{journal:#?}"
        );
        let last_end = rollouts_before
            .iter()
            .map(|e| time_of(e, "time_end"))
            .max()
            .unwrap();
        for update in &updates {
            assert!(
                time_of(update, "time_start") >= last_end,
                "wave {wave} started before wave {} ended: {journal:#?}",
                wave - 1
            );
        }
    }
    for (queue, messages, wave) in [("q.raw", 5, 2), ("q.enriched", 3, 3)] {
        let drain = position(&journal, |e| e["step"] == "drain" && e["queue"] == queue);
        assert_eq!(journal[drain]["messages"], messages, "{:#}", journal[drain]);
        assert_eq!(journal[drain]["result"], "ok");
        assert_eq!(journal[drain]["wave"], wave);
        let last_rollout_before = journal
            .iter()
            .rposition(|e| e["step"] == "rollout" && e["wave"] == wave - 1)
            .unwrap();
        let first_update = position(&journal, |e| e["step"] == "update" && e["wave"] == wave);
        assert!(
            last_rollout_before < drain && drain < first_update,
            "the drain of {queue} comes between wave {} and wave {wave}: {journal:#?}",
            wave - 1
        );
    }
    let after = s.world_json();
    for name in ["ingest", "enrich", "store"] {
        assert_eq!(running(&after, C, name), format!("{name}:2"));
        assert_eq!(
            env_of(&after, &format!("{name}:2"), "app", HOST_VAR),
            NEW_HOST
        );
    }
    let queues = &common::world_broker(&after, common::OLD_ID)["queues"];
    assert_eq!(queues[0]["messages"], 0);
    assert_eq!(queues[1]["messages"], 0);
}

#[test]
fn a_queue_that_never_drains_stops_apply_before_its_consumers() {
    // q.raw holds 7 messages and has no consumer: it never drains.
    let (plan, world) = chain(
        Queue::new("q.raw").messages(7),
        busy("q.enriched", 0),
        |_, s| s,
    );
    let s = Scenario::new(&plan, &world);
    let before = s.world_json();

    let started = Instant::now();
    let out = run(&mut s.apply(&[]), 1);
    assert!(started.elapsed() < Duration::from_secs(5), "{out}");

    assert!(out.contains("q.raw"), "{out}");
    assert!(out.contains("7 messages"), "{out}");
    assert!(out.contains("Not started"), "{out}");
    let after = s.world_json();
    assert_eq!(running(&after, C, "ingest"), "ingest:2", "wave 1 moved");
    for later in ["enrich", "store"] {
        assert_eq!(
            world_service(&after, C, later),
            world_service(&before, C, later),
            "{later} is untouched"
        );
        assert_eq!(
            revisions(&after, later),
            vec![1],
            "nothing registered for {later}"
        );
    }
    let journal = s.journal();
    let drain = &journal[position(&journal, |e| e["step"] == "drain")];
    assert_eq!(drain["result"], "failed");
    assert_eq!(drain["messages"], 7);
    assert!(steps(&journal, "update").iter().all(|e| e["wave"] == 1));
}

// ---------------------------------------------------------------------------------------------
// Failed rollouts
// ---------------------------------------------------------------------------------------------

/// Wave 1: `a` publishes `q.a`. Wave 2: `b` (whose rollout fails) and `b2` consume `q.a`; `b`
/// publishes `q.b`. Wave 3: `c` consumes `q.b`.
fn wave_two_fails() -> Scenario {
    let mut world = World::new()
        .broker(old_broker().queue(busy("q.a", 0)).queue(busy("q.b", 0)))
        .broker(new_broker());
    world = with_old(world, "a", |s| s);
    world = with_old(world, "b", Service::rollout_fails);
    world = with_old(world, "b2", |s| s);
    world = with_old(world, "c", |s| s);
    let plan = Plan::new()
        .service(Declared::new(C, "a").publishes(&["q.a"]))
        .service(Declared::new(C, "b").consumes(&["q.a"]).publishes(&["q.b"]))
        .service(Declared::new(C, "b2").consumes(&["q.a"]))
        .service(Declared::new(C, "c").consumes(&["q.b"]));
    Scenario::new(&plan, &world)
}

/// The lines of a report section: its heading (which starts with `title`) and the indented
/// lines under it.
fn section(report: &str, title: &str) -> String {
    let start = report
        .find(title)
        .unwrap_or_else(|| panic!("no {title:?} in:\n{report}"));
    report[start..]
        .lines()
        .enumerate()
        .take_while(|(i, l)| *i == 0 || l.starts_with("  "))
        .map(|(_, l)| l)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_failed_rollout_stops_after_its_wave_and_says_what_moved() {
    let s = wave_two_fails();
    let before = s.world_json();

    let output = s.apply(&[]).assert().code(1).get_output().clone();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();

    let moved = section(&stdout, "Moved:");
    assert!(
        moved.contains("c/a ") && moved.contains("c/b2 "),
        "{stdout}"
    );
    assert!(
        !moved.contains("c/b ") && !moved.contains("c/c "),
        "{stdout}"
    );
    let failed = section(&stdout, "Failed");
    assert!(failed.contains("c/b  on b:1"), "{stdout}");
    let not_started = section(&stdout, "Not started:");
    assert!(not_started.contains("c/c"), "{stdout}");
    assert!(!not_started.contains("c/b"), "{stdout}");
    assert!(stderr.contains("wave 2"), "{stderr}");

    let after = s.world_json();
    assert_eq!(running(&after, C, "a"), "a:2");
    assert_eq!(running(&after, C, "b2"), "b2:2");
    assert_eq!(
        running(&after, C, "b"),
        "b:1",
        "left on its previous revision"
    );
    assert_eq!(
        revisions(&after, "b"),
        vec![1, 2],
        "the new revision stays registered"
    );
    assert_eq!(
        world_service(&after, C, "c"),
        world_service(&before, C, "c")
    );
    assert_eq!(revisions(&after, "c"), vec![1]);
    let journal = s.journal();
    let failed_rollout =
        &journal[position(&journal, |e| e["step"] == "rollout" && e["service"] == "b")];
    assert_eq!(failed_rollout["result"], "failed");
}

#[test]
fn a_rollout_slower_than_the_timeout_counts_as_failed() {
    let mut world = World::new()
        .broker(old_broker().queue(busy("q.slow", 0)))
        .broker(new_broker());
    world = with_old(world, "slow", |s| s.rollout_seconds(5.0));
    world = with_old(world, "reader", |s| s);
    let plan = Plan::new()
        .service(Declared::new(C, "slow").publishes(&["q.slow"]))
        .service(Declared::new(C, "reader").consumes(&["q.slow"]));
    let s = Scenario::new(&plan, &world);

    let started = Instant::now();
    let out = run(&mut s.apply(&["--rollout-timeout", "1"]), 1);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "did not wait for the 5 s rollout: {out}"
    );

    assert!(out.contains("did not finish within 1s"), "{out}");
    let after = s.world_json();
    assert_eq!(running(&after, C, "slow"), "slow:1");
    assert_eq!(revisions(&after, "slow"), vec![1, 2]);
    assert_eq!(
        running(&after, C, "reader"),
        "reader:1",
        "wave 2 not started"
    );
    assert_eq!(revisions(&after, "reader"), vec![1]);
}

// ---------------------------------------------------------------------------------------------
// Saved plans
// ---------------------------------------------------------------------------------------------

/// `a` publishes `q`, `b` consumes it; `bystander` points at neither broker.
fn saved_plan_scenario() -> Scenario {
    let mut world = World::new()
        .broker(old_broker().queue(busy("q", 0)))
        .broker(new_broker());
    world = with_old(world, "a", |s| s);
    world = with_old(world, "b", |s| s);
    world = with_unrelated(world, "bystander");
    let plan = Plan::new()
        .service(Declared::new(C, "a").publishes(&["q"]))
        .service(Declared::new(C, "b").consumes(&["q"]));
    let s = Scenario::new(&plan, &world);
    s.plan(&["--out", "saved.json"]).assert().success();
    s
}

/// `warren apply saved.json --world world.json --auto-approve --drain-timeout 1`.
fn apply_saved(s: &Scenario) -> assert_cmd::Command {
    s.warren(&[
        "apply",
        "saved.json",
        "--world",
        "world.json",
        "--auto-approve",
        "--drain-timeout",
        "1",
    ])
}

/// Adds `FEATURE_X=on` to the first container of task definition `key`, in place.
fn touch_task_definition(world: &mut Value, key: &str) {
    let (family, revision) = key.split_once(':').unwrap();
    let revision: u64 = revision.parse().unwrap();
    let td = world["task_definitions"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|td| td["family"] == family && td["revision"] == revision)
        .unwrap();
    td["containers"][0]["environment"]["FEATURE_X"] = json!("on");
}

#[test]
fn an_untouched_saved_plan_applies() {
    let s = saved_plan_scenario();
    s.warren(&["apply", "saved.json", "--world", "world.json"])
        .arg("--auto-approve")
        .assert()
        .success();
    let after = s.world_json();
    assert_eq!(running(&after, C, "a"), "a:2");
    assert_eq!(running(&after, C, "b"), "b:2");
    assert_eq!(running(&after, C, "bystander"), "bystander:1");
}

#[test]
fn a_saved_plan_is_stale_once_a_moving_service_changed() {
    let s = saved_plan_scenario();
    s.edit_world(|w| touch_task_definition(w, "b:1"));
    let world = s.bytes("world.json");

    let out = run(&mut apply_saved(&s), 1);

    assert!(out.contains("stale"), "{out}");
    assert!(out.contains("c/b"), "names what moved: {out}");
    assert_eq!(s.bytes("world.json"), world, "nothing changed");
    assert!(!s.exists(JOURNAL));
}

#[test]
fn an_altered_saved_plan_is_refused() {
    let s = saved_plan_scenario();
    let mut saved: Value = serde_json::from_str(&s.read("saved.json")).unwrap();
    let rewrite = &mut saved["plan"]["changes"][0]["rewrites"][0]["to"];
    assert_eq!(*rewrite, json!(NEW_HOST));
    *rewrite = json!("rabbit.attacker.example");
    s.write("saved.json", &common::pretty(&saved));
    let world = s.bytes("world.json");

    let out = run(&mut apply_saved(&s), 1);

    assert!(out.contains("altered"), "{out}");
    assert_eq!(s.bytes("world.json"), world, "nothing changed");
    assert!(!s.exists(JOURNAL));
}

#[test]
fn a_change_to_an_unrelated_service_does_not_make_a_saved_plan_stale() {
    let s = saved_plan_scenario();
    s.edit_world(|w| touch_task_definition(w, "bystander:1"));

    apply_saved(&s).assert().success();

    let after = s.world_json();
    assert_eq!(running(&after, C, "a"), "a:2");
    assert_eq!(running(&after, C, "b"), "b:2");
}

// ---------------------------------------------------------------------------------------------
// Refusals before any step
// ---------------------------------------------------------------------------------------------

#[test]
fn a_manual_change_refuses_the_whole_apply() {
    // `ledger` reads its host from a parameter the plan does not map.
    let mut world = World::two_brokers()
        .service(C, Service::new("ledger", "ledger:1"))
        .task_definition(
            TaskDef::new("ledger", 1)
                .container("app")
                .secret("RABBIT_HOST", "/esr/rabbit/host"),
        )
        .parameter("/esr/rabbit/host", OLD_HOST);
    world = with_old(world, "plain", |s| s);
    let plan = Plan::new()
        .service(Declared::new(C, "ledger"))
        .service(Declared::new(C, "plain"));
    let s = Scenario::new(&plan, &world);
    assert_eq!(
        common::change(&s.plan_json(), "c/ledger")["action"],
        "manual"
    );
    let before = s.bytes("world.json");

    let out = run(&mut s.apply(&[]), 1);

    assert!(out.contains("c/ledger"), "{out}");
    assert_eq!(s.bytes("world.json"), before, "not even c/plain moved");
    assert!(!s.exists(JOURNAL));
}

/// The old parameter the `ledger` service reads its broker host from, and the new one the plan
/// maps it to.
const OLD_PARAMETER: &str = "/esr/rabbit/host";
const NEW_PARAMETER: &str = "/esr/rabbit2/host";

/// `c/ledger` reads its host from [`OLD_PARAMETER`]; `c/plain` names the old host in its
/// environment. `new_parameter_exists` says whether [`NEW_PARAMETER`] holds the new host.
fn mapped_world(new_broker_state: &str, new_parameter_exists: bool) -> World {
    let mut world = World::new()
        .broker(old_broker().queue(busy("q", 0)))
        .broker(new_broker().state(new_broker_state))
        .service(C, Service::new("ledger", "ledger:1"))
        .task_definition(
            TaskDef::new("ledger", 1)
                .container("app")
                .secret("RABBIT_HOST", OLD_PARAMETER),
        )
        .parameter(OLD_PARAMETER, OLD_HOST);
    if new_parameter_exists {
        world = world.parameter(NEW_PARAMETER, NEW_HOST);
    }
    with_old(world, "plain", |s| s)
}

fn mapped_plan() -> Plan {
    Plan::new()
        .service(Declared::new(C, "ledger"))
        .service(Declared::new(C, "plain"))
        .parameter(OLD_PARAMETER, NEW_PARAMETER)
}

/// Apply of `world` (PLAN.toml) exits 1 before any change; returns its output.
fn refused_before_any_change(world: &World) -> String {
    let s = Scenario::new(&mapped_plan(), world);
    let before = s.bytes("world.json");
    let out = run(&mut s.apply(&[]), 1);
    assert_eq!(s.bytes("world.json"), before, "nothing changed: {out}");
    assert!(!s.exists(JOURNAL), "{out}");
    out
}

#[test]
fn apply_refuses_a_new_broker_that_is_deleted() {
    let out = refused_before_any_change(&mapped_world("DELETED", true));
    assert!(out.contains(common::NEW_ID), "{out}");
    assert!(out.contains("DELETED"), "{out}");
}

#[test]
fn apply_refuses_a_new_broker_that_is_missing() {
    // The world no longer lists the new broker (named by id) after the plan was saved.
    let s = Scenario::new(&mapped_plan(), &mapped_world("RUNNING", true));
    s.plan(&["--out", "saved.json"]).assert().success();
    s.edit_world(|w| {
        w["brokers"]
            .as_array_mut()
            .unwrap()
            .retain(|b| b["id"] != common::NEW_ID);
    });
    let before = s.bytes("world.json");

    let out = run(&mut apply_saved(&s), 1);

    assert!(out.contains(common::NEW_ID), "{out}");
    assert_eq!(s.bytes("world.json"), before, "nothing changed: {out}");
    assert!(!s.exists(JOURNAL), "{out}");
}

#[test]
fn apply_refuses_a_mapped_parameter_that_does_not_exist() {
    let out = refused_before_any_change(&mapped_world("RUNNING", false));
    assert!(out.contains(NEW_PARAMETER), "{out}");
    assert!(out.contains("does not exist"), "{out}");
}

#[test]
fn apply_names_every_failed_precondition() {
    let out = refused_before_any_change(&mapped_world("DELETED", false));
    assert!(
        out.contains("DELETED") && out.contains(NEW_PARAMETER),
        "{out}"
    );
}

#[test]
fn a_saved_plan_is_stale_once_the_new_broker_is_deleted() {
    let s = Scenario::new(&mapped_plan(), &mapped_world("RUNNING", true));
    s.plan(&["--out", "saved.json"]).assert().success();
    s.edit_world(|w| {
        let brokers = w["brokers"].as_array_mut().unwrap();
        let new = brokers
            .iter_mut()
            .find(|b| b["id"] == common::NEW_ID)
            .unwrap();
        new["state"] = json!("DELETED");
    });
    let before = s.bytes("world.json");

    let out = run(&mut apply_saved(&s), 1);

    assert!(out.contains("stale"), "{out}");
    assert!(out.contains(common::NEW_ID), "names what moved: {out}");
    assert_eq!(s.bytes("world.json"), before, "nothing changed");
    assert!(!s.exists(JOURNAL));
}

#[test]
fn a_saved_plan_is_stale_once_a_mapped_parameter_vanishes() {
    // The plan also maps a parameter no service reads today: it must exist all the same.
    let plan = mapped_plan().parameter("/esr/rabbit/url", "/esr/rabbit2/url");
    let world = mapped_world("RUNNING", true).parameter("/esr/rabbit2/url", NEW_HOST);
    let s = Scenario::new(&plan, &world);
    s.plan(&["--out", "saved.json"]).assert().success();
    s.edit_world(|w| {
        w["parameters"]
            .as_object_mut()
            .unwrap()
            .remove("/esr/rabbit2/url");
    });
    let before = s.bytes("world.json");

    let out = run(&mut apply_saved(&s), 1);

    assert!(out.contains("stale"), "{out}");
    assert!(out.contains("/esr/rabbit2/url"), "names what moved: {out}");
    assert_eq!(s.bytes("world.json"), before, "nothing changed");
    assert!(!s.exists(JOURNAL));
}

#[test]
fn apply_without_auto_approve_and_no_terminal_changes_nothing() {
    let s = Scenario::new(
        &Plan::new().service(Declared::new(C, "a")),
        &with_old(World::two_brokers(), "a", |s| s),
    );
    let before = s.bytes("world.json");

    // Piped "yes" is not a terminal saying yes.
    let out = run(
        s.on_world("apply", &["--drain-timeout", "1"])
            .write_stdin("yes\n"),
        1,
    );
    assert!(out.contains("--auto-approve"), "{out}");
    // No standard input at all.
    run(&mut s.on_world("apply", &[]), 1);

    assert_eq!(s.bytes("world.json"), before);
    assert!(!s.exists(JOURNAL));
}

// ---------------------------------------------------------------------------------------------
// The lock
// ---------------------------------------------------------------------------------------------

/// This machine's host name, as warren's lock records it.
fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map_or_else(|| "localhost".to_owned(), |h| h.trim().to_owned())
}

/// The lock file of migration `test-migration`, beside the world file.
const LOCK: &str = ".warren-test-migration.lock";

/// Writes the lock file as process `pid` of this host would, holding lock `id`.
fn write_lock(s: &Scenario, id: &str, pid: u32) {
    let holder = json!({
        "id": id,
        "migration": "test-migration",
        "command": "apply",
        "pid": pid,
        "host": this_host(),
        "time": "2026-01-01T00:00:00.000Z",
    });
    s.write(LOCK, &holder.to_string());
}

fn one_service() -> Scenario {
    Scenario::new(
        &Plan::new().service(Declared::new(C, "a")),
        &with_old(World::two_brokers(), "a", |s| s),
    )
}

#[test]
fn a_live_lock_refuses_apply_until_unlocked_with_its_id() {
    let s = one_service();
    let pid = std::process::id(); // alive: this test process
    write_lock(&s, "c0ffee123456", pid);
    let before = s.bytes("world.json");

    let out = run(&mut s.apply(&[]), 1);
    assert!(out.contains("c0ffee123456"), "names the lock's id: {out}");
    assert!(
        out.contains(&format!("pid {pid}")),
        "names the holder: {out}"
    );
    assert!(out.contains(&this_host()), "{out}");
    assert_eq!(s.bytes("world.json"), before);

    let out = run(&mut s.on_world("unlock", &["--lock-id", "0123456789ab"]), 1);
    assert!(out.contains("c0ffee123456"), "{out}");
    assert!(s.exists(LOCK), "a wrong id removes nothing");

    s.on_world("unlock", &["--lock-id", "c0ffee123456"])
        .assert()
        .success();
    assert!(!s.exists(LOCK));

    s.apply(&[]).assert().success();
    assert_eq!(running(&s.world_json(), C, "a"), "a:2");
    assert!(!s.exists(LOCK), "apply releases its lock");
}

#[test]
fn a_lock_of_a_dead_process_is_taken_over_with_a_warning() {
    let s = one_service();
    write_lock(&s, "deadbeef0000", u32::MAX - 1);

    let output = s.apply(&[]).assert().success().get_output().clone();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("warning"), "{stderr}");
    assert!(stderr.contains("deadbeef0000"), "{stderr}");
    assert_eq!(running(&s.world_json(), C, "a"), "a:2");
    assert!(!s.exists(LOCK));
}

// ---------------------------------------------------------------------------------------------
// Re-running, and being killed
// ---------------------------------------------------------------------------------------------

#[test]
fn applying_the_same_plan_twice_changes_nothing_the_second_time() {
    let (plan, world) = chain(busy("q.raw", 2), busy("q.enriched", 0), |_, s| s);
    let s = Scenario::new(&plan, &world);
    s.apply(&[]).assert().success();
    let world = s.bytes("world.json");
    let journal = s.bytes(JOURNAL);

    let output = s.apply(&[]).assert().success().get_output().clone();

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("No changes"), "{stdout}");
    assert_eq!(s.bytes("world.json"), world);
    assert_eq!(s.bytes(JOURNAL), journal);
}

#[test]
fn a_killed_apply_leaves_a_valid_world_and_a_second_apply_finishes() {
    // Three waves of two services, each rollout slow enough that the run is still in wave 2
    // when the journal shows that wave's first update.
    let mut world = World::new()
        .broker(old_broker().queue(busy("q1", 4)).queue(busy("q2", 4)))
        .broker(new_broker());
    let names = ["p1", "p2", "m1", "m2", "s1", "s2"];
    for name in names {
        world = with_old(world, name, |s| s.rollout_seconds(0.5));
    }
    let plan = Plan::new()
        .service(Declared::new(C, "p1").publishes(&["q1"]))
        .service(Declared::new(C, "p2").publishes(&["q1"]))
        .service(Declared::new(C, "m1").consumes(&["q1"]).publishes(&["q2"]))
        .service(Declared::new(C, "m2").consumes(&["q1"]).publishes(&["q2"]))
        .service(Declared::new(C, "s1").consumes(&["q2"]))
        .service(Declared::new(C, "s2").consumes(&["q2"]));
    let s = Scenario::new(&plan, &world);
    assert_eq!(waves(&s.plan_json()).len(), 3);

    let mut child = s.spawn(&[
        "apply",
        "plan.toml",
        "--world",
        "world.json",
        "--auto-approve",
        "--drain-timeout",
        "60",
    ]);
    s.wait_for_entry(|e| e["step"] == "update" && e["wave"] == 2 && e["result"] == "ok");
    child.kill().expect("SIGKILL"); // std sends SIGKILL
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "apply was killed, not finished: {status}"
    );

    let world: Value = serde_json::from_str(&s.read("world.json")).expect("still valid JSON");
    let mut moved = 0;
    for name in names {
        let on = running(&world, C, name);
        assert!(
            on == format!("{name}:1") || on == format!("{name}:2"),
            "{name} runs {on}"
        );
        moved += usize::from(on.ends_with(":2"));
    }
    assert!(
        (1..names.len()).contains(&moved),
        "killed in the middle: {moved} of {} moved",
        names.len()
    );
    s.journal(); // every line written is whole

    let output = s.apply(&[]).assert().success().get_output().clone();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("took over"), "{stderr}");

    let after = s.world_json();
    for name in names {
        let on = running(&after, C, name);
        assert_eq!(
            env_of(&after, &on, "app", HOST_VAR),
            NEW_HOST,
            "{name} on {on}"
        );
        assert_eq!(
            revisions(&after, name),
            vec![1, 2],
            "{name}: no second copy registered"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Rollback
// ---------------------------------------------------------------------------------------------

/// Journal indexes of the `rollback` entries of `names`, in the order given.
fn rollback_positions(journal: &[Value], names: &[&str]) -> Vec<usize> {
    names
        .iter()
        .map(|name| {
            position(journal, |e| {
                e["step"] == "rollback" && e["service"] == *name
            })
        })
        .collect()
}

#[test]
fn rollback_after_a_full_apply_restores_the_previous_revisions_publishers_first() {
    let (plan, world) = chain(busy("q.raw", 1), busy("q.enriched", 1), |_, s| s);
    let s = Scenario::new(&plan, &world);
    s.apply(&[]).assert().success();
    let applied = s.world_json();
    let journal_len = s.journal().len();

    let out = run(&mut s.rollback(&[]), 0);

    let after = s.world_json();
    for name in ["ingest", "enrich", "store"] {
        assert_eq!(running(&after, C, name), format!("{name}:1"), "{out}");
        assert_eq!(revisions(&after, name), vec![1, 2], "no new registration");
    }
    assert_eq!(after["task_definitions"], applied["task_definitions"]);
    let journal = s.journal();
    let rolled = &journal[journal_len..];
    assert!(steps(rolled, "register").is_empty(), "{rolled:#?}");
    let order = rollback_positions(rolled, &["ingest", "enrich", "store"]);
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "publishers first: {rolled:#?}"
    );
    for name in ["ingest", "enrich", "store"] {
        let e = &rolled[position(rolled, |e| e["step"] == "rollback" && e["service"] == name)];
        assert_eq!(e["from_task_definition"], format!("{name}:2"));
        assert_eq!(e["to_task_definition"], format!("{name}:1"));
    }
}

#[test]
fn rollback_after_a_partial_apply_puts_back_only_what_moved() {
    let s = wave_two_fails();
    s.apply(&[]).assert().code(1);
    let applied = s.world_json();
    let journal_len = s.journal().len();

    let out = run(&mut s.rollback(&[]), 0);

    let after = s.world_json();
    for name in ["a", "b", "b2", "c"] {
        assert_eq!(running(&after, C, name), format!("{name}:1"), "{out}");
    }
    assert_eq!(after["task_definitions"], applied["task_definitions"]);
    let journal = s.journal();
    let rolled = &journal[journal_len..];
    let order = rollback_positions(rolled, &["a", "b2"]);
    assert!(order[0] < order[1], "publishers first: {rolled:#?}");
    assert!(
        steps(rolled, "rollback")
            .iter()
            .all(|e| e["service"] == "a" || e["service"] == "b2"),
        "{rolled:#?}"
    );
}

#[test]
fn rollback_leaves_a_service_changed_by_hand_and_says_so() {
    let mut world = World::two_brokers();
    world = with_old(world, "a", |s| s);
    world = with_old(world, "b", |s| s);
    let s = Scenario::new(
        &Plan::new()
            .service(Declared::new(C, "a"))
            .service(Declared::new(C, "b")),
        &world,
    );
    s.apply(&[]).assert().success();
    // Someone deploys b:3 by hand after the apply.
    s.edit_world(|w| {
        let mut b3 = task_def(w, "b:2").clone();
        b3["revision"] = json!(3);
        b3["containers"][0]["environment"]["FEATURE_X"] = json!("on");
        w["task_definitions"].as_array_mut().unwrap().push(b3);
        w["clusters"][0]["services"][1]["task_definition"] = json!("b:3");
    });
    assert_eq!(running(&s.world_json(), C, "b"), "b:3");

    let out = run(&mut s.rollback(&[]), 0);

    let after = s.world_json();
    assert_eq!(running(&after, C, "a"), "a:1");
    assert_eq!(running(&after, C, "b"), "b:3", "not touched");
    assert!(out.contains("c/b"), "reported: {out}");
    assert!(out.contains("b:3"), "{out}");
}

#[test]
fn rollback_refuses_once_the_old_broker_is_deleted() {
    let s = one_service();
    s.apply(&[]).assert().success();
    s.on_world("decommission", &["--confirm", common::OLD_ID])
        .assert()
        .success();
    assert_eq!(
        common::world_broker(&s.world_json(), common::OLD_ID)["state"],
        "DELETED"
    );
    let before = s.bytes("world.json");

    let out = run(&mut s.rollback(&[]), 1);

    assert!(out.contains(common::OLD_ID), "{out}");
    assert_eq!(s.bytes("world.json"), before);
    assert_eq!(running(&s.world_json(), C, "a"), "a:2");
}

#[test]
fn rollback_without_auto_approve_and_no_terminal_changes_nothing() {
    let s = one_service();
    s.apply(&[]).assert().success();
    let before = s.bytes("world.json");

    run(s.on_world("rollback", &[]).write_stdin("yes\n"), 1);

    assert_eq!(s.bytes("world.json"), before);
}

// ---------------------------------------------------------------------------------------------
// A wide wave
// ---------------------------------------------------------------------------------------------

#[test]
fn fifty_services_in_one_wave_roll_out_side_by_side() {
    let names: Vec<String> = (0..50).map(|i| format!("svc-{i:02}")).collect();
    let mut world = World::two_brokers();
    let mut plan = Plan::new();
    for name in &names {
        world = with_old(world, name, |s| s.rollout_seconds(1.0));
        plan = plan.service(Declared::new(C, name));
    }
    let s = Scenario::new(&plan, &world);

    let started = Instant::now();
    s.apply(&[]).assert().success();
    let took = started.elapsed();

    assert!(took < Duration::from_secs(20), "apply took {took:?}");
    let journal = s.journal();
    let rollouts = steps(&journal, "rollout");
    assert_eq!(rollouts.len(), 50);
    assert!(rollouts
        .iter()
        .all(|e| e["result"] == "ok" && e["wave"] == 1));
    let latest_start = rollouts
        .iter()
        .map(|e| time_of(e, "time_start"))
        .max()
        .unwrap();
    let earliest_end = rollouts
        .iter()
        .map(|e| time_of(e, "time_end"))
        .min()
        .unwrap();
    assert!(
        latest_start < earliest_end,
        "rollouts overlap: the last started at {latest_start:?}, the first ended at {earliest_end:?}"
    );
    let after = s.world_json();
    for name in &names {
        assert_eq!(running(&after, C, name), format!("{name}:2"));
    }
}

#[test]
fn a_resumed_apply_waits_for_the_rollout_the_killed_run_started() {
    // The service's rollout takes 2 s and fails; the first run is killed while it is under way,
    // as soon as the journal shows the update made.
    let world = World::new().broker(old_broker()).broker(new_broker());
    let world = with_old(world, "flaky", |s| s.rollout_seconds(2.0).rollout_fails());
    let plan = Plan::new().service(Declared::new(C, "flaky"));
    let s = Scenario::new(&plan, &world);

    let mut child = s.spawn(&[
        "apply",
        "plan.toml",
        "--world",
        "world.json",
        "--auto-approve",
    ]);
    s.wait_for_entry(|e| e["step"] == "update" && e["service"] == "flaky" && e["result"] == "ok");
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    assert_eq!(
        running(&s.world_json(), C, "flaky"),
        "flaky:2",
        "killed mid-rollout"
    );

    // The second run does not take the service for moved: it waits for that rollout, which
    // fails, and the service ends on the revision it ran before.
    let output = s.apply(&[]).assert().code(1).get_output().clone();
    let text = all_output(&output);
    assert!(text.contains("an earlier run started"), "{text}");
    assert!(text.contains("rollout failed"), "{text}");
    assert_eq!(running(&s.world_json(), C, "flaky"), "flaky:1");
    let rollouts: Vec<Value> = s
        .journal()
        .into_iter()
        .filter(|e| e["step"] == "rollout")
        .collect();
    assert_eq!(rollouts.len(), 1, "{rollouts:?}");
    assert_eq!(rollouts[0]["result"], "failed");
}

/// A service whose broker host sits only in its container's `command` moves: the new revision's
/// command names the new broker, every other argument as it was; rollback puts the old revision
/// back.
#[test]
fn a_host_only_in_the_command_moves_and_rolls_back() {
    let command = json!(["--rabbit-host", OLD_HOST, "--prefetch", "10"]);
    let world = World::two_brokers()
        .service(C, Service::new("worker", "worker:1"))
        .task_definition(
            TaskDef::new("worker", 1)
                .container("app")
                .container_field("image", json!("worker:1.0"))
                .container_field("command", command.clone())
                .env("LOG_LEVEL", "INFO"),
        );
    let s = Scenario::new(&Plan::new().service(Declared::new(C, "worker")), &world);

    s.apply(&[]).assert().success();

    let after = s.world_json();
    assert_eq!(running(&after, C, "worker"), "worker:2");
    assert_eq!(
        task_def(&after, "worker:2")["containers"][0]["command"],
        json!(["--rabbit-host", NEW_HOST, "--prefetch", "10"])
    );
    assert_eq!(
        task_def(&after, "worker:1")["containers"][0]["command"],
        command
    );

    let out = run(&mut s.rollback(&[]), 0);
    let rolled = s.world_json();
    assert_eq!(running(&rolled, C, "worker"), "worker:1", "{out}");
    assert_eq!(
        task_def(&rolled, "worker:1")["containers"][0]["command"],
        command
    );
}

// ---------------------------------------------------------------------------------------------
// What apply leaves alone
// ---------------------------------------------------------------------------------------------

#[test]
fn a_saved_plan_is_stale_once_an_unmanaged_resource_changed() {
    let s = saved_plan_scenario();
    s.edit_world(|w| {
        w["functions"] = json!([{ "name": "notify", "environment": { "AMQP_HOST": OLD_HOST } }]);
    });
    s.plan(&["--out", "saved.json"]).assert().success();
    s.edit_world(|w| w["functions"][0]["environment"]["LOG_LEVEL"] = json!("debug"));
    let world = s.bytes("world.json");

    let out = run(&mut apply_saved(&s), 1);

    assert!(out.contains("stale"), "{out}");
    assert!(out.contains("resource:function:notify changed"), "{out}");
    assert_eq!(s.bytes("world.json"), world, "nothing changed");
    assert!(!s.exists(JOURNAL));
}

#[test]
fn a_service_deployed_by_codedeploy_is_never_updated() {
    for controller in ["CODE_DEPLOY", "EXTERNAL"] {
        let world = with_old(
            with_old(World::two_brokers(), "blue", |s| s),
            "plain",
            |s| s,
        );
        let plan = Plan::new()
            .service(Declared::new(C, "blue"))
            .service(Declared::new(C, "plain"));
        let s = Scenario::new(&plan, &world);
        s.edit_world(|w| {
            w["clusters"][0]["services"][0]["deployment_controller"] = json!(controller);
        });
        let plan = s.plan_json();
        let blue = common::change(&plan, "c/blue");
        assert_eq!(blue["action"], "manual", "{controller}");
        assert!(
            blue["reason"]
                .as_str()
                .unwrap()
                .contains("UpdateService cannot change its task definition"),
            "{blue}"
        );
        assert_eq!(common::change(&plan, "c/plain")["action"], "update");
        let before = s.bytes("world.json");

        let out = run(&mut s.apply(&[]), 1);

        assert!(out.contains("c/blue"), "{out}");
        assert_eq!(s.bytes("world.json"), before, "{controller}: nothing moved");
        assert!(!s.exists(JOURNAL));
    }
}

// ---------------------------------------------------------------------------------------------
// Scheduled tasks that pin a revision
// ---------------------------------------------------------------------------------------------

#[test]
fn apply_retargets_pinned_schedules_and_rollback_puts_them_back_byte_for_byte() {
    let world = with_old(World::two_brokers(), "export", |s| s);
    let plan = Plan::new().service(Declared::new(C, "export"));
    let s = Scenario::new(&plan, &world);
    let url = format!("amqps://job:pa/ss@{OLD_HOST}:5671");
    s.edit_world(|w| {
        // Written as the rehearsal writes a world (model order, `kind` rule left out), so
        // that what rollback writes back can be compared byte for byte.
        w["schedules"] = json!([
            {"name": "export-nightly", "cluster": C, "task_definition": "export:1",
             "bus": "jobs", "target": "ecs-1",
             "arn": "arn:aws:events:eu-west-2:1:rule/jobs/export-nightly",
             "overrides": {"app": {"SPRING_RABBITMQ_HOST": OLD_HOST, "MODE": "full"}}},
            {"name": "export-hourly", "cluster": C, "task_definition": "export:1",
             "kind": "schedule", "group": "ops",
             "overrides": {"app": {"RABBIT_URL": url}}},
            {"name": "export-latest", "cluster": C, "task_definition": "export"},
        ]);
    });
    let before = common::pretty(&s.world_json()["schedules"]);

    let planned = s.plan_json();
    let retargets = planned["retargets"].as_array().expect("retargets");
    assert_eq!(retargets.len(), 2, "{planned:#}");
    assert_eq!(retargets[0]["wave"], 1);
    let human = s.plan_human();
    assert!(
        human.contains(
            "~ rule export-nightly (bus jobs, target ecs-1): export:1 -> the revision registered for c/export"
        ),
        "{human}"
    );
    assert!(
        human.contains("schedule export-hourly (group ops): export:1 ->"),
        "{human}"
    );
    assert!(
        human.contains("rule export-latest (bus default) starts the latest revision of export"),
        "{human}"
    );
    assert!(!human.contains("pa/ss"), "{human}");
    let markdown = run(&mut s.plan(&["--format", "markdown"]), 0);
    assert!(
        markdown.contains("#### Scheduled tasks retargeted")
            && markdown.contains("rule export-nightly (bus jobs, target ecs-1) (wave 1)"),
        "{markdown}"
    );

    s.apply(&[]).assert().success();
    let after = s.world_json();
    let schedules = &after["schedules"];
    assert_eq!(running(&after, C, "export"), "export:2");
    assert_eq!(schedules[0]["task_definition"], "export:2");
    assert_eq!(
        schedules[0]["overrides"]["app"]["SPRING_RABBITMQ_HOST"],
        NEW_HOST
    );
    assert_eq!(schedules[0]["overrides"]["app"]["MODE"], "full");
    assert_eq!(schedules[1]["task_definition"], "export:2");
    assert_eq!(
        schedules[1]["overrides"]["app"]["RABBIT_URL"],
        format!("amqps://job:pa/ss@{NEW_HOST}:5671")
    );
    assert_eq!(schedules[2]["task_definition"], "export");
    let journal = s.read(JOURNAL);
    assert!(!journal.contains("pa/ss"), "{journal}");
    let retargeted: Vec<Value> = s
        .journal()
        .into_iter()
        .filter(|e| e["step"] == "retarget" && e["result"] == "ok")
        .collect();
    assert_eq!(retargeted.len(), 2, "{retargeted:#?}");
    assert_eq!(retargeted[0]["from_task_definition"], "export:1");
    assert_eq!(retargeted[0]["to_task_definition"], "export:2");

    s.rollback(&[]).assert().success();
    let back = s.world_json();
    assert_eq!(running(&back, C, "export"), "export:1");
    assert_eq!(
        common::pretty(&back["schedules"]),
        before,
        "back byte for byte"
    );
    let journal = s.journal();
    let put_back = position(&journal, |e| {
        e["step"] == "retarget_rollback" && e["result"] == "ok"
    });
    let service_back = position(&journal, |e| e["step"] == "rollback");
    assert!(put_back < service_back, "{journal:#?}");
}

/// What apply retargets (or what follows a family apply moves) is not an unmanaged resource;
/// a scheduled task that pins a revision no change moves, and points at the old broker, is.
#[test]
fn schedules_apply_retargets_are_not_unmanaged_and_one_no_change_moves_is() {
    let world = with_old(World::two_brokers(), "export", |s| s)
        // Another export revision, which no service runs: same family, other content, so
        // nothing moves it.
        .task_definition(
            TaskDef::new("export", 2)
                .container("app")
                .env(HOST_VAR, OLD_HOST)
                .env("MODE", "legacy"),
        )
        // A family no service of the plan runs.
        .task_definition(
            TaskDef::new("report", 1)
                .container("app")
                .env(HOST_VAR, OLD_HOST),
        );
    let plan = Plan::new().service(Declared::new(C, "export"));
    let s = Scenario::new(&plan, &world);
    s.edit_world(|w| {
        w["schedules"] = json!([
            {"name": "export-nightly", "cluster": C, "task_definition": "export:1",
             "bus": "jobs", "target": "ecs-1",
             "overrides": {"app": {"SPRING_RABBITMQ_HOST": OLD_HOST}}},
            {"name": "export-hourly", "cluster": C, "task_definition": "export:1",
             "kind": "schedule", "group": "ops"},
            {"name": "export-latest", "cluster": C, "task_definition": "export"},
            {"name": "export-legacy", "cluster": C, "task_definition": "export:2",
             "kind": "schedule"},
            {"name": "report-weekly", "cluster": C, "task_definition": "report:1",
             "bus": "jobs"},
        ]);
    });

    let planned = s.plan_json();
    let names = |list: &str| -> Vec<String> {
        planned[list]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r["kind"].as_str().unwrap(),
                    r["name"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(
        names("retargets"),
        ["rule export-nightly", "schedule export-hourly"],
        "{planned:#}"
    );
    assert_eq!(
        names("unmanaged_resources"),
        ["rule jobs/report-weekly", "schedule export-legacy"],
        "{planned:#}"
    );
    let legacy = &planned["unmanaged_resources"][1];
    assert_eq!(
        legacy["through"],
        json!([format!("app/{HOST_VAR} in export:2")]),
        "{legacy:#}"
    );
}

#[test]
fn a_saved_plan_is_stale_once_a_retargeted_schedule_changed_and_applies_it_otherwise() {
    let world = with_old(World::two_brokers(), "export", |s| s);
    let plan = Plan::new().service(Declared::new(C, "export"));
    let s = Scenario::new(&plan, &world);
    s.edit_world(|w| {
        w["schedules"] = json!([{"name": "export-nightly", "cluster": C,
            "task_definition": "export:1", "bus": "jobs", "target": "ecs-1",
            "overrides": {"app": {"SPRING_RABBITMQ_HOST": OLD_HOST}}}]);
    });
    s.plan(&["--out", "saved.json"]).assert().success();
    let untouched = s.bytes("world.json");
    s.edit_world(|w| {
        w["schedules"][0]["overrides"]["app"]["MODE"] = json!("full");
    });
    let world = s.bytes("world.json");

    let out = run(&mut apply_saved(&s), 1);

    assert!(out.contains("stale"), "{out}");
    assert!(
        out.contains("schedule:rule export-nightly (bus jobs, target ecs-1) changed"),
        "names the scheduled task: {out}"
    );
    assert_eq!(s.bytes("world.json"), world, "nothing changed");

    s.write("world.json", std::str::from_utf8(&untouched).unwrap());
    apply_saved(&s).assert().success();
    assert_eq!(
        s.world_json()["schedules"][0]["task_definition"],
        "export:2",
        "the saved plan's retarget is applied"
    );
}

// ---------------------------------------------------------------------------------------------
// The new broker prepared before anyone moves
// ---------------------------------------------------------------------------------------------

/// `producer` publishes to exchange `events` (topic), bound on the old broker to `q.work`,
/// which `worker` consumes; the old broker also has a TTL policy. The new broker has `q.work`
/// and nothing else.
fn bare_new_broker() -> (Plan, World) {
    let mut world = World::new()
        .broker(
            old_broker()
                .exchange("events", "topic")
                .queue(Queue::new("q.work").consumers(1))
                .binding("events", "q.work"),
        )
        .broker(new_broker().queue(Queue::new("q.work")));
    for name in ["producer", "worker"] {
        world = with_old(world, name, |s| s);
    }
    let plan = Plan::new()
        .service(Declared::new(C, "producer").publishes(&["events"]))
        .service(Declared::new(C, "worker").consumes(&["q.work"]));
    (plan, world)
}

/// Adds a TTL policy for the `q.` queues to the old broker of the world file.
fn with_old_policy(s: &Scenario) {
    s.edit_world(|w| {
        let old = w["brokers"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|b| b["id"] == common::OLD_ID)
            .unwrap();
        old["policies"] = json!([{"vhost": "/", "name": "ttl", "pattern": "^q\\.",
            "apply-to": "queues", "definition": {"message-ttl": 60000}}]);
    });
}

/// The new broker of the world file.
fn new_of(s: &Scenario) -> Value {
    common::world_broker(&s.world_json(), common::NEW_ID).clone()
}

#[test]
fn apply_creates_exactly_what_the_new_broker_lacks_and_a_second_apply_creates_nothing() {
    let (plan, world) = bare_new_broker();
    let s = Scenario::new(&plan, &world);
    with_old_policy(&s);

    let out = run(&mut s.apply(&[]), 0);

    assert!(
        out.contains("Preparing the new broker: 3 definitions"),
        "{out}"
    );
    let new = new_of(&s);
    assert_eq!(
        new["exchanges"],
        json!([{"vhost": "/", "name": "events", "type": "topic"}])
    );
    assert_eq!(
        new["bindings"],
        json!([{"vhost": "/", "exchange": "events", "queue": "q.work", "routing_key": "#"}])
    );
    assert_eq!(new["policies"][0]["name"], "ttl");
    assert_eq!(
        new["queues"].as_array().unwrap().len(),
        1,
        "q.work was there already"
    );
    let journal = s.journal();
    let created: Vec<&str> = steps(&journal, "topology")
        .into_iter()
        .filter(|e| e["result"] == "ok")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        created,
        [
            "exchange events (topic)",
            "binding events -> q.work (key #)",
            "policy ttl (pattern ^q\\.)"
        ]
    );
    let first_update = position(&journal, |e| e["step"] == "update");
    let last_topology = journal
        .iter()
        .rposition(|e| e["step"] == "topology")
        .unwrap();
    assert!(last_topology < first_update, "{journal:#?}");

    // Everything has moved and everything is there: a second apply finds nothing to create.
    let before = s.world_json();
    run(&mut s.apply(&[]), 0);
    assert_eq!(s.world_json(), before);
    assert_eq!(steps(&s.journal(), "topology").len(), 6, "no new entry");
}

#[test]
fn a_queue_of_another_type_on_the_new_broker_stops_apply_before_any_service_moves() {
    let (plan, world) = bare_new_broker();
    let s = Scenario::new(&plan, &world);
    s.edit_world(|w| {
        let new = w["brokers"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|b| b["id"] == common::NEW_ID)
            .unwrap();
        new["queues"][0]["type"] = json!("quorum");
    });
    let plan_out = s.plan_human();
    assert!(
        plan_out.contains(
            "the old broker has queue q.work (classic), the new broker has queue q.work (quorum)"
        ),
        "the plan warns: {plan_out}"
    );
    let before = s.bytes("world.json");

    let out = run(&mut s.apply(&[]), 1);

    assert!(
        out.contains(
            "the old broker has queue q.work (classic), the new broker has queue q.work (quorum)"
        ),
        "names both: {out}"
    );
    assert_eq!(s.bytes("world.json"), before, "nothing changed");
    assert!(steps(&s.journal(), "update").is_empty(), "no service moved");
}

#[test]
fn rollback_leaves_the_definitions_apply_copied_in_place() {
    let (plan, world) = bare_new_broker();
    let s = Scenario::new(&plan, &world);
    run(&mut s.apply(&[]), 0);
    let copied = new_of(&s);

    run(&mut s.rollback(&[]), 0);

    let after = s.world_json();
    assert_eq!(running(&after, C, "producer"), "producer:1", "moved back");
    let new = new_of(&s);
    assert_eq!(new["exchanges"], copied["exchanges"]);
    assert_eq!(new["bindings"], copied["bindings"]);
}

// ---------------------------------------------------------------------------------------------
// Leftovers
// ---------------------------------------------------------------------------------------------

/// A consumer of `q` that moves first (`federate`), leaving 5 messages in the old broker's `q`
/// that nobody consumes there any more.
fn left_behind() -> Scenario {
    let world = World::new()
        .broker(old_broker().queue(Queue::new("q").messages(5)))
        .broker(new_broker().queue(Queue::new("q")));
    let world = with_old(world, "worker", |s| s);
    let plan = Plan::new()
        .strategy("federate")
        .broker_key("old", "amqp_url_env", "WARREN_OLD_AMQP_URL")
        .service(Declared::new(C, "worker").consumes(&["q"]));
    Scenario::new(&plan, &world)
}

fn queue_messages(world: &Value, broker: usize, name: &str) -> u64 {
    world["brokers"][broker]["queues"]
        .as_array()
        .and_then(|qs| qs.iter().find(|q| q["name"] == name))
        .and_then(|q| q["messages"].as_u64())
        .unwrap_or(0)
}

#[test]
fn without_shovel_what_nobody_consumes_any_more_makes_the_final_drain_wait_in_vain() {
    let s = left_behind();
    let out = run(
        &mut s.warren(&[
            "apply",
            "plan.toml",
            "--world",
            "world.json",
            "--auto-approve",
            "--drain-timeout",
            "0",
        ]),
        1,
    );
    assert!(out.contains("still holds 5 messages"), "{out}");
    assert_eq!(queue_messages(&s.world_json(), 0, "q"), 5);
}

#[test]
fn apply_shovel_moves_what_is_left_where_nobody_consumes_any_more_and_counts_it() {
    let s = left_behind();
    let out = run(
        &mut s.warren(&[
            "apply",
            "plan.toml",
            "--world",
            "world.json",
            "--auto-approve",
            "--drain-timeout",
            "5",
            "--shovel",
        ]),
        0,
    );
    assert!(
        out.contains("Shovelled:")
            && out.contains("q  5 messages from the old broker to the new broker"),
        "{out}"
    );
    let world = s.world_json();
    assert_eq!(
        queue_messages(&world, 0, "q"),
        0,
        "nothing left on the old broker"
    );
    assert_eq!(queue_messages(&world, 1, "q"), 5, "all 5 on the new broker");
    let journal = s.read(JOURNAL);
    let shovel: Vec<&str> = journal
        .lines()
        .filter(|l| l.contains("\"step\":\"shovel\""))
        .collect();
    assert_eq!(shovel.len(), 2, "started, then ok: {journal}");
    assert!(
        shovel[1].contains("\"result\":\"ok\"")
            && shovel[1].contains("5 before on the old broker, 5 arrived on the new broker"),
        "{}",
        shovel[1]
    );
}
