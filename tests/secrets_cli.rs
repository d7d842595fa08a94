//! What a container reads from outside its task definition, on the rehearsal backend: env
//! files (the world's `env_files`) and Secrets Manager values (a whole value, or one key of a
//! JSON value), in `plan`, `apply` and `decommission`, and `read_secrets` in the plan file.

mod common;

use common::{
    all_output, new_broker, old_broker, rewrites, warnings, Declared, Plan, Queue, Scenario,
    Service, TaskDef, World, NEW_HOST, OLD_HOST, OLD_ID,
};
use serde_json::{json, Value};

const SHOP: &str = "shop";
const APP_ENV: &str = "arn:aws:s3:::shop-config/orders/app.env";
const CLEAN_ENV: &str = "arn:aws:s3:::shop-config/common/logging.env";
const MISSING_ENV: &str = "arn:aws:s3:::shop-config/mailer/app.env";
const SECRET: &str = "arn:aws:secretsmanager:eu-west-2:1:secret:shop/rabbit-AbCdEf";
const CLEAN_SECRET: &str = "arn:aws:secretsmanager:eu-west-2:1:secret:shop/db-XyZ123";

/// A container that loads env files `files`.
fn with_env_files(td: TaskDef, files: &[&str]) -> TaskDef {
    let files: Vec<Value> = files
        .iter()
        .map(|f| json!({ "value": f, "type": "s3" }))
        .collect();
    td.container_field("environment_files", Value::Array(files))
}

/// `world`'s file with `env_files` and Secrets Manager values added.
fn world_text(world: &World, env_files: &[(&str, &str)], secrets: &[(&str, &str)]) -> String {
    let mut json = world.to_json();
    if !env_files.is_empty() {
        json["env_files"] = env_files
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    for (arn, value) in secrets {
        json["parameters"][*arn] = json!(value);
    }
    common::pretty(&json)
}

/// `orders` (declared) reads the old host from its env file beside a clean one; `logger`
/// (not declared) loads only the clean one; `audit` (not declared) reads it from an env file
/// too, but its `environment` sets the same variable to the new host, which ECS gives it.
fn env_file_world() -> World {
    World::new()
        .broker(old_broker().queue(Queue::new("q.orders")))
        .broker(new_broker().queue(Queue::new("q.orders")))
        .service(SHOP, Service::new("orders", "orders:1"))
        .task_definition(with_env_files(
            TaskDef::new("orders", 1)
                .container("app")
                .env("LOG_LEVEL", "INFO"),
            &[CLEAN_ENV, APP_ENV],
        ))
        .service(SHOP, Service::new("logger", "logger:1"))
        .task_definition(with_env_files(
            TaskDef::new("logger", 1).container("app"),
            &[CLEAN_ENV],
        ))
        .service(SHOP, Service::new("audit", "audit:1"))
        .task_definition(with_env_files(
            TaskDef::new("audit", 1)
                .container("app")
                .env("RABBIT_URL", &format!("amqps://{NEW_HOST}:5671")),
            &[APP_ENV],
        ))
}

fn app_env() -> String {
    format!(
        "# orders\n\nRABBIT_URL=amqps://orders:pa/ss@{OLD_HOST}:5671/shop\nDB_HOST=db.internal\n"
    )
}

const CLEAN_TEXT: &str = "LOG_FORMAT=json\nLOG_HOST=logs.internal:514\n";

fn env_file_scenario() -> Scenario {
    Scenario::from_texts(
        &Plan::new().service(Declared::new(SHOP, "orders")).to_toml(),
        &world_text(
            &env_file_world(),
            &[(APP_ENV, &app_env()), (CLEAN_ENV, CLEAN_TEXT)],
            &[],
        ),
    )
}

#[test]
fn a_host_in_an_env_file_is_moved_by_setting_the_variable() {
    let s = env_file_scenario();
    let plan = s.plan_json();
    let change = common::change(&plan, "shop/orders");
    assert_eq!(change["action"], "update", "{change}");
    assert_eq!(
        rewrites(change),
        &[json!({
            "container": "app",
            "variable": "RABBIT_URL",
            "from": format!("amqps://orders:****@{OLD_HOST}:5671/shop"),
            "to": format!("amqps://orders:****@{NEW_HOST}:5671/shop"),
            "env_file": APP_ENV,
        })]
    );
    assert!(
        plan["unmanaged"].as_array().unwrap().is_empty(),
        "logger's env file is clean, audit's variable is overridden: {plan}"
    );
    let text = plan.to_string();
    assert!(!text.contains("pa/ss"), "{text}");

    s.apply(&[]).assert().success();
    let world = s.world_json();
    let moved = world["task_definitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|td| td["family"] == "orders" && td["revision"] == 2)
        .unwrap_or_else(|| panic!("orders:2 registered: {world}"));
    let container = &moved["containers"][0];
    assert_eq!(
        container["environment"],
        json!({
            "LOG_LEVEL": "INFO",
            "RABBIT_URL": format!("amqps://orders:pa/ss@{NEW_HOST}:5671/shop"),
        })
    );
    assert_eq!(
        container["environment_files"],
        json!([{ "value": CLEAN_ENV, "type": "s3" }, { "value": APP_ENV, "type": "s3" }]),
        "the env files stay"
    );
    assert_eq!(
        world["env_files"][APP_ENV].as_str(),
        Some(app_env().as_str()),
        "the file itself is not changed"
    );
}

#[test]
fn an_unmanaged_service_reading_the_host_from_an_env_file_is_listed() {
    let s = Scenario::from_texts(
        &Plan::new().to_toml(),
        &world_text(
            &env_file_world(),
            &[(APP_ENV, &app_env()), (CLEAN_ENV, CLEAN_TEXT)],
            &[],
        ),
    );
    let plan = s.plan_json();
    assert_eq!(common::unmanaged_ids(&plan), vec!["shop/orders"]);
    assert_eq!(plan["unmanaged"][0]["through"], json!(["app/RABBIT_URL"]));
}

#[test]
fn decommission_names_the_env_file_that_points_at_the_old_broker() {
    let s = env_file_scenario();
    let out = s
        .on_world("decommission", &["--confirm", OLD_ID, "--format", "json"])
        .assert()
        .code(3)
        .get_output()
        .clone();
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    let blockers = decision["blockers"].as_array().unwrap();
    let service = blockers
        .iter()
        .find(|b| b["kind"] == "service")
        .unwrap_or_else(|| panic!("{}", all_output(&out)));
    assert_eq!(
        service["detail"],
        format!("shop/orders points at {OLD_ID} through app/RABBIT_URL (env file {APP_ENV})")
    );
    assert!(
        !blockers
            .iter()
            .any(|b| b["detail"].as_str().unwrap().contains("logger")
                || b["detail"].as_str().unwrap().contains("audit")),
        "{blockers:?}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("pa/ss"));
}

#[test]
fn an_env_file_the_world_lacks_is_a_warning_and_unverifiable() {
    let world = World::new()
        .broker(old_broker().queue(Queue::new("q.orders")))
        .broker(new_broker())
        .service(SHOP, Service::new("mailer", "mailer:1"))
        .task_definition(with_env_files(
            TaskDef::new("mailer", 1)
                .container("app")
                .env("RABBIT_HOST", NEW_HOST),
            &[MISSING_ENV],
        ));
    let s = Scenario::from_texts(&Plan::new().to_toml(), &world_text(&world, &[], &[]));
    let plan = s.plan_json();
    assert!(
        warnings(&plan).iter().any(|w| w
            == &format!("shop/mailer: container app loads env file {MISSING_ENV}, which was not inspected for broker hosts: it is not in the state")),
        "{:?}",
        warnings(&plan)
    );
    let out = s
        .on_world("decommission", &["--confirm", OLD_ID, "--format", "json"])
        .assert()
        .code(3)
        .get_output()
        .clone();
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        decision["blockers"],
        json!([{
            "kind": "unverifiable",
            "detail": format!("mailer:1, shop/mailer read env file {MISSING_ENV}, which was not inspected (it is not in the state): whether it names {OLD_ID} is unknown"),
        }])
    );
}

/// `orders` reads the old host from key `host` of a JSON secret, beside a clean secret.
fn secret_world() -> World {
    World::new()
        .broker(old_broker().queue(Queue::new("q.orders")))
        .broker(new_broker().queue(Queue::new("q.orders")))
        .service(SHOP, Service::new("orders", "orders:1"))
        .task_definition(
            TaskDef::new("orders", 1)
                .container("app")
                .secret("RABBIT_HOST", &format!("{SECRET}:host::"))
                .secret("DB_PASSWORD", CLEAN_SECRET),
        )
}

#[test]
fn a_json_key_of_a_secret_naming_the_old_broker_is_a_manual_change() {
    let s = Scenario::from_texts(
        &Plan::new().service(Declared::new(SHOP, "orders")).to_toml(),
        &world_text(
            &secret_world(),
            &[],
            &[
                (
                    SECRET,
                    &format!(r#"{{"host":"{OLD_HOST}","user":"orders"}}"#),
                ),
                (CLEAN_SECRET, "****"),
            ],
        ),
    );
    let plan = s.plan_json();
    let change = common::change(&plan, "shop/orders");
    assert_eq!(change["action"], "manual", "{change}");
    let reason = change["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("Secrets Manager secret {SECRET}:host::"))
            && reason.contains("warren does not change secrets"),
        "{reason}"
    );
    assert!(rewrites(change).is_empty());
    s.apply(&[]).assert().code(1);
}

#[test]
fn a_json_key_the_secret_lacks_is_unverifiable() {
    let s = Scenario::from_texts(
        &Plan::new().to_toml(),
        &world_text(
            &secret_world(),
            &[],
            &[(SECRET, r#"{"user":"orders"}"#), (CLEAN_SECRET, "****")],
        ),
    );
    let plan = s.plan_json();
    assert!(
        warnings(&plan)
            .iter()
            .any(|w| w.contains(SECRET) && w.contains("has no key \"host\"")),
        "{:?}",
        warnings(&plan)
    );
    let out = s
        .on_world("decommission", &["--confirm", OLD_ID, "--format", "json"])
        .assert()
        .code(3)
        .get_output()
        .clone();
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    let blockers = decision["blockers"].as_array().unwrap();
    assert_eq!(blockers.len(), 1, "{blockers:?}");
    assert_eq!(blockers[0]["kind"], "unverifiable");
    assert!(blockers[0]["detail"].as_str().unwrap().contains(SECRET));
}

#[test]
fn decommission_refuses_while_a_secret_names_the_old_broker() {
    let s = Scenario::from_texts(
        &Plan::new().to_toml(),
        &world_text(
            &secret_world(),
            &[],
            &[
                (SECRET, &format!(r#"{{"host":"{OLD_HOST}"}}"#)),
                (CLEAN_SECRET, "****"),
            ],
        ),
    );
    let out = s
        .on_world("decommission", &["--confirm", OLD_ID, "--format", "json"])
        .assert()
        .code(3)
        .get_output()
        .clone();
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        decision["blockers"],
        json!([
            {
                "kind": "service",
                "detail": format!("shop/orders points at {OLD_ID} through app/RABBIT_HOST (parameter {SECRET}:host::)"),
            },
            {
                "kind": "task_definition",
                "detail": format!("orders:1, the latest active revision of orders, points at {OLD_ID} through app/RABBIT_HOST (parameter {SECRET}:host::) (a task started from it would connect)"),
            },
        ])
    );
}

#[test]
fn read_secrets_takes_true_false_or_secret_arns() {
    let world = common::pretty(&secret_world().to_json());
    for value in [
        "true",
        "false",
        &format!("[{SECRET:?}]"),
        "[\"arn:aws:secretsmanager:eu-west-2:1:secret:shop/rabbit\"]",
    ] {
        let text = Plan::new().to_toml().replacen(
            "[migration]\n",
            &format!("[migration]\nread_secrets = {value}\n"),
            1,
        );
        let s = Scenario::from_texts(&text, &world);
        s.plan(&[]).assert().success();
    }
    for (value, key, message) in [
        (
            "[]",
            "migration.read_secrets",
            "must name at least one secret",
        ),
        (
            "[\"/shop/rabbit\"]",
            "migration.read_secrets[0]",
            "is not a Secrets Manager secret ARN",
        ),
        (
            "\"yes\"",
            "migration.read_secrets",
            "expected true, false or a list of Secrets Manager secret ARNs",
        ),
    ] {
        let text = Plan::new().to_toml().replacen(
            "[migration]\n",
            &format!("[migration]\nread_secrets = {value}\n"),
            1,
        );
        let s = Scenario::from_texts(&text, &world);
        let out = s.plan(&[]).assert().code(1).get_output().clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("plan.toml:2"), "{value}: {stderr}");
        assert!(stderr.contains(key), "{value}: {stderr}");
        assert!(stderr.contains(message), "{value}: {stderr}");
    }
}

#[test]
fn the_human_plan_says_the_variable_comes_from_an_env_file() {
    let s = env_file_scenario();
    let out = s.plan_human();
    assert!(
        out.contains(&format!(
            "app: RABBIT_URL \"amqps://orders:****@{OLD_HOST}:5671/shop\" -> \"amqps://orders:****@{NEW_HOST}:5671/shop\" (from env file {APP_ENV}; set in the container's environment, over the file)"
        )),
        "{out}"
    );
    assert!(!out.contains("pa/ss"), "{out}");
}

/// A saved plan is stale once the env file's broker variable changes; a change to another
/// variable of the file does not matter.
#[test]
fn a_saved_plan_is_stale_once_the_env_files_broker_variable_changes() {
    for (edited, stale) in [
        (
            app_env().replace("DB_HOST=db.internal", "DB_HOST=db2.internal"),
            false,
        ),
        (app_env().replace("/shop\n", "/shop2\n"), true),
    ] {
        let s = env_file_scenario();
        s.plan(&["--out", "saved.json"]).assert().success();
        let saved = s.read("saved.json");
        assert!(!saved.contains("pa/ss"), "no credential in a saved plan");
        let mut world = s.world_json();
        world["env_files"][APP_ENV] = json!(edited);
        s.write("world.json", &common::pretty(&world));
        let out = s
            .warren(&[
                "apply",
                "saved.json",
                "--world",
                "world.json",
                "--auto-approve",
            ])
            .output()
            .unwrap();
        if stale {
            assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
            assert!(all_output(&out).contains("stale"), "{}", all_output(&out));
        } else {
            assert!(out.status.success(), "{}", all_output(&out));
        }
    }
}

/// What a rehearsal world does not hold the value of stays uninspected: a warning naming both
/// variables, and an unverifiable blocker per secret.
#[test]
fn secrets_whose_values_are_not_held_are_warned_about() {
    let s = Scenario::from_texts(
        &Plan::new().to_toml(),
        &world_text(&secret_world(), &[], &[]),
    );
    let plan = s.plan_json();
    assert!(
        warnings(&plan).contains(
            &"shop/orders: app/RABBIT_HOST, app/DB_PASSWORD come from Secrets Manager and were not inspected for broker hosts".to_owned()
        ),
        "{:?}",
        warnings(&plan)
    );
    let out = s
        .on_world("decommission", &["--confirm", OLD_ID, "--format", "json"])
        .assert()
        .code(3)
        .get_output()
        .clone();
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    let details: Vec<&str> = decision["blockers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["kind"] == "unverifiable")
        .map(|b| b["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        details,
        vec![
            format!("orders:1, shop/orders read Secrets Manager secret {CLEAN_SECRET}, whose value was not read: whether it names {OLD_ID} is unknown"),
            format!("orders:1, shop/orders read Secrets Manager secret {SECRET}:host::, whose value was not read: whether it names {OLD_ID} is unknown"),
        ]
    );
}
