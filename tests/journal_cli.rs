//! The journal and the lock under surprises: a journal that cannot be written, a torn last line,
//! a deploy made by someone else during the window, rollbacks that fail or are killed, and the
//! order "lock, then read" of every command that changes anything.

mod common;

use std::path::Path;

use common::{
    all_output, new_broker, old_broker, running, steps, Declared, Plan, Scenario, Service, TaskDef,
    World, JOURNAL, OLD_HOST,
};
use serde_json::{json, Value};

const C: &str = "c";
const HOST_VAR: &str = "SPRING_RABBITMQ_HOST";

/// Service `name` on `name:1`, pointing at the old broker.
fn with_old(world: World, name: &str, tweak: impl FnOnce(Service) -> Service) -> World {
    world
        .service(C, tweak(Service::new(name, &format!("{name}:1"))))
        .task_definition(
            TaskDef::new(name, 1)
                .container("app")
                .env(HOST_VAR, OLD_HOST),
        )
}

fn run(cmd: &mut assert_cmd::Command, code: i32) -> String {
    let output = cmd.assert().code(code).get_output().clone();
    all_output(&output)
}

/// Replaces the world file atomically, as another tool writing it would.
fn replace_world(s: &Scenario, world: &Value) {
    let tmp = s.path("world.json.edit");
    std::fs::write(&tmp, common::pretty(world)).unwrap();
    std::fs::rename(&tmp, s.path("world.json")).unwrap();
}

fn is(entry: &Value, step: &str, service: &str) -> bool {
    entry["step"] == step && entry["service"] == service
}

// ---------------------------------------------------------------------------------------------
// Lock, then read
// ---------------------------------------------------------------------------------------------

#[test]
fn every_changing_command_takes_the_lock_before_it_reads() {
    let world = with_old(World::two_brokers(), "a", |s| s);
    let s = Scenario::new(&Plan::new().service(Declared::new(C, "a")), &world);
    for command in ["apply", "rollback", "decommission"] {
        let extra: &[&str] = match command {
            "decommission" => &["--confirm", "b-1111", "-v"],
            _ => &["--auto-approve", "-v"],
        };
        let output = s.on_world(command, extra).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let locked = stderr.find("Took the lock").unwrap_or_else(|| {
            panic!("{command} -v names the lock it takes:\n{stderr}");
        });
        let read = stderr
            .find("Read ")
            .unwrap_or_else(|| panic!("{command} -v says what it read:\n{stderr}"));
        assert!(locked < read, "{command} read before it locked:\n{stderr}");
    }
}

// ---------------------------------------------------------------------------------------------
// The journal is written ahead of every change
// ---------------------------------------------------------------------------------------------

#[test]
fn a_journal_that_cannot_be_written_stops_apply_before_any_change() {
    let world = with_old(World::two_brokers(), "a", |s| s);
    let s = Scenario::new(&Plan::new().service(Declared::new(C, "a")), &world);
    let before = s.bytes("world.json");

    let out = run(
        &mut s.apply(&["--journal", "missing-folder/journal.jsonl"]),
        1,
    );

    assert!(
        out.contains("missing-folder/journal.jsonl"),
        "names the journal: {out}"
    );
    assert_eq!(
        s.bytes("world.json"),
        before,
        "nothing was registered or updated without a journal entry"
    );
}

#[test]
fn every_change_is_journalled_as_started_before_it_is_made() {
    let world = with_old(World::two_brokers(), "a", |s| s);
    let s = Scenario::new(&Plan::new().service(Declared::new(C, "a")), &world);
    s.apply(&[]).assert().success();

    let journal = s.journal();
    for step in ["register", "update"] {
        let entries = steps(&journal, step);
        let results: Vec<&str> = entries
            .iter()
            .map(|e| e["result"].as_str().unwrap())
            .collect();
        assert_eq!(results, ["started", "ok"], "{step}: {journal:#?}");
    }
    let started = journal
        .iter()
        .position(|e| e["step"] == "update" && e["result"] == "started")
        .unwrap();
    let registered = journal
        .iter()
        .position(|e| e["step"] == "register" && e["result"] == "ok")
        .unwrap();
    assert!(registered < started, "{journal:#?}");
    assert_eq!(journal[started]["from_task_definition"], "a:1");
    assert_eq!(journal[started]["to_task_definition"], "a:2");
}

#[test]
fn a_torn_last_journal_line_is_reported_and_tolerated() {
    let world = with_old(World::two_brokers(), "a", |s| s).service(C, Service::new("b", "b:1"));
    let world = world.task_definition(
        TaskDef::new("b", 1)
            .container("app")
            .env(HOST_VAR, OLD_HOST),
    );
    let plan = Plan::new()
        .service(Declared::new(C, "a"))
        .service(Declared::new(C, "b"));
    let s = Scenario::new(&plan, &world);
    s.apply(&[]).assert().success();
    // A crash in the middle of a write leaves half a line.
    let mut text = s.read(JOURNAL);
    text.push_str(r#"{"time_start":"2026-12-01T10:00:00.000Z","migration":"test-mig"#);
    s.write(JOURNAL, &text);

    let out = run(&mut s.rollback(&[]), 0);
    assert!(out.contains("torn"), "the torn line is reported: {out}");
    assert!(
        out.contains(&format!("{JOURNAL}:")),
        "names the journal and line: {out}"
    );
    let world = s.world_json();
    assert_eq!(running(&world, C, "a"), "a:1");
    assert_eq!(running(&world, C, "b"), "b:1");
    // Lines written after the torn one start on a line of their own.
    let text = s.read(JOURNAL);
    let whole = text
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).is_ok())
        .count();
    assert_eq!(
        whole,
        text.lines().count() - 1,
        "only the torn line is not JSON:\n{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// Re-checked before each change
// ---------------------------------------------------------------------------------------------

#[test]
fn a_deploy_made_during_the_window_is_not_reverted() {
    // `pub` moves in wave 1 and takes 2 s to roll out; `sub` moves in wave 2. While wave 1 rolls
    // out, someone deploys sub:7.
    let world = World::new()
        .broker(old_broker().queue(common::Queue::new("q").consumers(1)))
        .broker(new_broker());
    let world = with_old(world, "pub", |s| s.rollout_seconds(2.0));
    let world = with_old(world, "sub", |s| s).task_definition(
        TaskDef::new("sub", 7)
            .container("app")
            .env(HOST_VAR, OLD_HOST)
            .env("FEATURE", "on"),
    );
    let plan = Plan::new()
        .service(Declared::new(C, "pub").publishes(&["q"]))
        .service(Declared::new(C, "sub").consumes(&["q"]));
    let s = Scenario::new(&plan, &world);

    let mut child = s.spawn(&[
        "apply",
        "plan.toml",
        "--world",
        "world.json",
        "--auto-approve",
    ]);
    s.wait_for_entry(|e| is(e, "update", "pub") && e["result"] == "ok");
    let mut world = s.world_json();
    for cluster in world["clusters"].as_array_mut().unwrap() {
        for service in cluster["services"].as_array_mut().unwrap() {
            if service["name"] == "sub" {
                service["task_definition"] = json!("sub:7");
            }
        }
    }
    replace_world(&s, &world);
    let status = child.wait().unwrap();

    assert_eq!(status.code(), Some(1), "apply stops");
    let world = s.world_json();
    assert_eq!(
        running(&world, C, "sub"),
        "sub:7",
        "the other deploy stands"
    );
    assert_eq!(
        running(&world, C, "pub"),
        "pub:2",
        "the wave under way finished"
    );
    let journal = s.journal();
    let refused = journal
        .iter()
        .find(|e| is(e, "update", "sub") && e["result"] == "refused")
        .unwrap_or_else(|| panic!("the refusal is journalled: {journal:#?}"));
    let detail = refused["detail"].as_str().unwrap();
    assert!(
        detail.contains("sub:1") && detail.contains("sub:7"),
        "{detail}"
    );
}

// ---------------------------------------------------------------------------------------------
// Rollback that fails, or is killed
// ---------------------------------------------------------------------------------------------

fn set_service(s: &Scenario, name: &str, key: &str, value: Value) {
    s.edit_world(|world| {
        for cluster in world["clusters"].as_array_mut().unwrap() {
            for service in cluster["services"].as_array_mut().unwrap() {
                if service["name"] == name {
                    if value.is_null() {
                        service.as_object_mut().unwrap().remove(key);
                    } else {
                        service[key] = value.clone();
                    }
                }
            }
        }
    });
}

#[test]
fn a_rollback_whose_rollout_failed_is_not_forgotten() {
    let world = with_old(World::two_brokers(), "a", |s| s);
    let s = Scenario::new(&Plan::new().service(Declared::new(C, "a")), &world);
    s.apply(&[]).assert().success();
    assert_eq!(running(&s.world_json(), C, "a"), "a:2");

    set_service(&s, "a", "rollout", json!("fail"));
    let out = run(&mut s.rollback(&[]), 1);
    assert!(out.contains("rollout failed"), "{out}");
    assert_eq!(
        running(&s.world_json(), C, "a"),
        "a:2",
        "ECS put it back on a:2"
    );

    set_service(&s, "a", "rollout", Value::Null);
    s.rollback(&[]).assert().success();
    assert_eq!(
        running(&s.world_json(), C, "a"),
        "a:1",
        "the second rollback moves it back"
    );
}

#[test]
fn a_resumed_rollback_waits_for_the_rollout_the_killed_run_started() {
    let world = with_old(World::two_brokers(), "a", |s| s);
    let s = Scenario::new(&Plan::new().service(Declared::new(C, "a")), &world);
    s.apply(&[]).assert().success();
    set_service(&s, "a", "rollout_seconds", json!(3.0));
    set_service(&s, "a", "rollout", json!("fail"));

    let mut child = s.spawn(&[
        "rollback",
        "plan.toml",
        "--world",
        "world.json",
        "--auto-approve",
    ]);
    s.wait_for_entry(|e| is(e, "rollback", "a") && e["result"] == "ok");
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    assert_eq!(
        running(&s.world_json(), C, "a"),
        "a:1",
        "killed mid-rollout"
    );

    let out = run(&mut s.rollback(&[]), 1);
    assert!(out.contains("an earlier run started"), "{out}");
    assert!(out.contains("rollout failed"), "{out}");
    assert_eq!(running(&s.world_json(), C, "a"), "a:2");
    let journal = s.journal();
    let last = steps(&journal, "rollout").last().copied().cloned().unwrap();
    assert_eq!(last["result"], "failed", "{journal:#?}");
    assert_eq!(last["to_task_definition"], "a:1");
}

#[test]
fn the_journal_and_lock_of_a_saved_plan_are_those_of_its_migration() {
    // The plan and the saved plan sit in different folders; the world file is elsewhere again.
    let world = with_old(World::two_brokers(), "a", |s| s);
    let s = Scenario::new(&Plan::new().service(Declared::new(C, "a")), &world);
    std::fs::create_dir(s.path("review")).unwrap();
    s.plan(&["--out", "review/saved.json"]).assert().success();

    s.warren(&[
        "apply",
        "review/saved.json",
        "--world",
        "world.json",
        "--auto-approve",
    ])
    .assert()
    .success();

    assert!(s.exists(JOURNAL));
    assert!(!Path::new(&s.path("review").join(JOURNAL)).exists());
    let out = run(&mut s.rollback(&[]), 0);
    assert!(out.contains("c/a"), "{out}");
    assert_eq!(running(&s.world_json(), C, "a"), "a:1");
}
