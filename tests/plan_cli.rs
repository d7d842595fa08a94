//! `warren plan` driven through the built binary: the bundled incident example as snapshots, the
//! exit codes, saved plans, and one small world per behaviour of discovery and ordering.

mod common;

use std::process::Command as StdCommand;

use common::{
    change, new_broker, old_broker, rewrites, snapshot_settings, unmanaged_ids, warnings, warren,
    waves, Broker, By, Declared, Plan, Queue, Scenario, Service, TaskDef, World, NEW_HOST,
    OLD_HOST,
};
use serde_json::Value;

const INCIDENT_PLAN: &str = "plans/esr-incident.toml";
const INCIDENT_WORLD: &str = "examples/esr-incident/world.json";
/// The password in esr-apprecord's `SPRING_RABBITMQ_ADDRESSES` in the incident world.
const INCIDENT_PASSWORD: &str = "s3cr3t-example";
/// Values of secrets (SSM parameters, a Secrets Manager secret) in the incident world.
const INCIDENT_SECRET_VALUES: [&str; 2] = ["not-a-real-password", "not-a-real-key"];

/// `warren plan plans/esr-incident.toml --world examples/esr-incident/world.json EXTRA…`, run
/// from the repository root so that the paths print as typed.
fn incident(extra: &[&str]) -> assert_cmd::Command {
    let mut cmd = warren();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["plan", INCIDENT_PLAN, "--world", INCIDENT_WORLD])
        .args(extra);
    cmd
}

fn stdout_of(cmd: &mut assert_cmd::Command) -> String {
    let output = cmd.assert().success().stderr("").get_output().clone();
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

// ---------------------------------------------------------------------------------------------
// The incident example
// ---------------------------------------------------------------------------------------------

/// Compares the incident plan, printed with `extra` arguments, with snapshot `name`.
fn assert_incident_snapshot(name: &str, extra: &[&str]) {
    let out = stdout_of(&mut incident(extra));
    let command = format!(
        "warren plan {INCIDENT_PLAN} --world {INCIDENT_WORLD} {}",
        extra.join(" ")
    );
    snapshot_settings(command.trim_end()).bind(|| insta::assert_snapshot!(name, out));
}

#[test]
fn incident_human() {
    assert_incident_snapshot("incident_human", &[]);
}

#[test]
fn incident_json() {
    assert_incident_snapshot("incident_json", &["--format", "json"]);
}

#[test]
fn incident_markdown() {
    assert_incident_snapshot("incident_markdown", &["--format", "markdown"]);
}

#[test]
fn incident_json_keeps_the_contract_order() {
    let plan: Value =
        serde_json::from_str(&stdout_of(&mut incident(&["--format", "json"]))).unwrap();
    assert_eq!(plan["format_version"], 1);
    assert_eq!(plan["migration"], "esr-prod");
    // Sorted by wave, then cluster/service; noops last, with a null wave.
    let keys: Vec<(bool, u64, String)> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let noop = c["action"] == "noop";
            assert_eq!(noop, c["wave"].is_null(), "only noops have no wave: {c}");
            let id = format!(
                "{}/{}",
                c["cluster"].as_str().unwrap(),
                c["service"].as_str().unwrap()
            );
            (noop, c["wave"].as_u64().unwrap_or(u64::MAX), id)
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    for wave in waves(&plan) {
        let mut sorted = wave.clone();
        sorted.sort();
        assert_eq!(wave, sorted, "a wave lists its services sorted");
    }
}

#[test]
fn output_is_byte_identical_across_runs() {
    for format in ["human", "json", "markdown"] {
        let first = stdout_of(&mut incident(&["--format", format]));
        let second = stdout_of(&mut incident(&["--format", format]));
        assert_eq!(first, second, "--format {format} differs between two runs");
    }
    let dir = tempfile::tempdir().unwrap();
    let saved: Vec<String> = ["one.json", "two.json"]
        .iter()
        .map(|name| {
            let path = dir.path().join(name);
            incident(&["--out", path.to_str().unwrap()])
                .assert()
                .success();
            std::fs::read_to_string(path).unwrap()
        })
        .collect();
    assert_eq!(saved[0], saved[1], "saved plans differ between two runs");
}

#[test]
fn detailed_exitcode_is_2_when_the_plan_has_changes() {
    incident(&["--detailed-exitcode"])
        .assert()
        .code(2)
        .stderr("");
    // Without the flag, a plan with changes is still a success.
    incident(&[]).assert().code(0);
}

#[test]
fn detailed_exitcode_is_0_when_everything_is_already_on_the_new_broker() {
    let world = World::two_brokers()
        .service_env("c", "api", &[("SPRING_RABBITMQ_HOST", NEW_HOST)])
        .service_env(
            "c",
            "worker",
            &[("RABBIT_URL", &format!("amqps://{NEW_HOST}:5671"))],
        );
    let plan = Plan::new()
        .service(Declared::new("c", "api"))
        .service(Declared::new("c", "worker"));
    let scenario = Scenario::new(&plan, &world);
    let out = scenario
        .plan(&["--detailed-exitcode"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let human = String::from_utf8(out.stdout).unwrap();
    assert!(human.contains("No service needs to move."), "{human}");
    assert!(
        human.contains("Plan: 0 to move, 2 unchanged, 0 unmanaged."),
        "{human}"
    );
}

#[test]
fn strict_fails_while_a_service_on_the_old_broker_is_not_in_the_plan() {
    let assert = incident(&["--strict"]).assert().code(1);
    let output = assert.get_output();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stdout.contains("Plan: 9 to move"),
        "the plan is still printed:\n{stdout}"
    );
    assert!(stderr.contains("esr-batch/esr-dataexport"), "{stderr}");
    assert!(stderr.contains("--strict"), "{stderr}");
    // --strict wins over --detailed-exitcode's 2.
    incident(&["--strict", "--detailed-exitcode"])
        .assert()
        .code(1);
}

/// The incident example in a scenario folder, with `entry` appended to its plan.
fn incident_plus(entry: &str) -> Scenario {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let plan = std::fs::read_to_string(root.join(INCIDENT_PLAN)).unwrap();
    let world = std::fs::read_to_string(root.join(INCIDENT_WORLD)).unwrap();
    Scenario::from_texts(&format!("{plan}\n{entry}"), &world)
}

#[test]
fn strict_passes_once_the_forgotten_service_is_added() {
    let scenario = incident_plus(
        r#"[[services]]
cluster = "esr-batch"
name = "esr-dataexport"
broker = "new"
consumes = ["esr.queue.apprecord.created.dataexporter"]
"#,
    );
    scenario.plan(&["--strict"]).assert().success().stderr("");
    let plan = scenario.plan_json();
    assert_eq!(plan["unmanaged"], serde_json::json!([]));
    // Its nightly rule starts the family's latest revision: the one apply registers.
    assert!(plan.get("unmanaged_resources").is_none(), "{plan:#}");
    // esr-dataexport consumes what esr-apprecord (wave 1) publishes, once its queue has drained.
    assert_eq!(change(&plan, "esr-batch/esr-dataexport")["wave"], 2);
    assert!(
        plan["drains"].as_array().unwrap().contains(&serde_json::json!(
            { "wave": 2, "broker": "old", "vhost": "/", "queue": "esr.queue.apprecord.created.dataexporter" }
        )),
        "{}",
        plan["drains"]
    );
    let queue_warnings: Vec<String> = warnings(&plan)
        .into_iter()
        .filter(|w| w.contains("dataexporter"))
        .collect();
    assert_eq!(queue_warnings, Vec::<String>::new());
}

#[test]
fn the_suggested_entry_pasted_as_is_still_warns_about_the_stranded_queue() {
    // The entry warren suggests leaves `consumes` empty: the plan then cannot order
    // esr-dataexport after esr-apprecord, and must keep saying that its queue is at risk.
    let scenario = incident_plus(
        r#"[[services]]
cluster = "esr-batch"
name = "esr-dataexport"
broker = "new"
publishes = []  # exchanges and queues it publishes to
consumes = []   # queues it consumes
"#,
    );
    scenario.plan(&["--strict"]).assert().success();
    let plan = scenario.plan_json();
    assert_eq!(change(&plan, "esr-batch/esr-dataexport")["wave"], 1);
    let queue_warnings: Vec<String> = warnings(&plan)
        .into_iter()
        .filter(|w| w.contains("esr.queue.apprecord.created.dataexporter"))
        .collect();
    assert_eq!(queue_warnings.len(), 1, "{queue_warnings:?}");
}

#[test]
fn out_saves_the_plan_with_a_checksum_that_catches_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("saved.json");
    let out = incident(&["--format", "json", "--out", path.to_str().unwrap()])
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("saved.json"),
        "says where the plan went: {stderr}"
    );

    let text = std::fs::read_to_string(&path).unwrap();
    let saved: Value = serde_json::from_str(&text).unwrap();
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        saved["plan"], printed,
        "the saved plan is the plan --format json prints"
    );
    let checksum = saved["checksum"].as_str().unwrap();
    assert!(
        checksum.len() == "sha256:".len() + 64 && checksum.starts_with("sha256:"),
        "{checksum}"
    );

    let loaded: warren::plan::SavedPlan = serde_json::from_str(&text).unwrap();
    assert!(loaded.intact(), "a freshly saved plan is intact");

    let mut tampered = saved.clone();
    tampered["plan"]["changes"][0]["rewrites"][0]["to"] = Value::from("rabbit.attacker.example");
    let tampered: warren::plan::SavedPlan = serde_json::from_value(tampered).unwrap();
    assert!(!tampered.intact(), "a changed rewrite breaks the checksum");

    let mut tampered = saved;
    tampered["plan"]["waves"][0].as_array_mut().unwrap().pop();
    let tampered: warren::plan::SavedPlan = serde_json::from_value(tampered).unwrap();
    assert!(!tampered.intact(), "a changed wave breaks the checksum");
}

#[test]
fn credentials_never_appear_in_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("saved.json");
    for format in ["human", "json", "markdown"] {
        let out = incident(&["--format", format, "--out", saved.to_str().unwrap()])
            .assert()
            .success()
            .get_output()
            .clone();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            !stdout.contains(INCIDENT_PASSWORD),
            "--format {format} shows the password"
        );
        assert!(
            !stderr.contains(INCIDENT_PASSWORD),
            "stderr shows the password"
        );
        if format != "markdown" {
            // Markdown names the rewritten variables only; the others show the masked URL.
            assert!(
                stdout.contains(
                    "amqps://esr-apprecord:****@b-1111.mq.eu-west-2.amazonaws.com:5671/esr"
                ),
                "--format {format} shows the masked URL:\n{stdout}"
            );
        }
        let saved = std::fs::read_to_string(&saved).unwrap();
        assert!(
            !saved.contains(INCIDENT_PASSWORD),
            "the saved plan holds the password"
        );
        for secret in INCIDENT_SECRET_VALUES {
            assert!(
                !stdout.contains(secret),
                "--format {format} shows the secret value {secret}"
            );
            assert!(
                !saved.contains(secret),
                "the saved plan holds the secret value {secret}"
            );
        }
        assert!(
            saved.contains("esr-apprecord:****@"),
            "the saved plan masks the password"
        );
    }
}

#[test]
fn broker_endpoints_with_passwords_are_masked() {
    let world = World::new()
        .broker(old_broker())
        .broker(Broker::new(
            "b-2222",
            &format!("amqps://admin:world-secret@{NEW_HOST}:5671"),
        ))
        .service_env("c", "api", &[("SPRING_RABBITMQ_HOST", OLD_HOST)]);
    let plan = Plan::new()
        .old(By::Endpoints(vec![format!(
            "amqps://admin:plan-secret@{OLD_HOST}:5671"
        )]))
        .service(Declared::new("c", "api"));
    let scenario = Scenario::new(&plan, &world);
    for format in ["human", "json", "markdown"] {
        let out = scenario
            .plan(&["--format", format, "--out", "saved.json"])
            .assert()
            .success()
            .get_output()
            .clone();
        let all = format!(
            "{}{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            scenario.read("saved.json")
        );
        for secret in ["plan-secret", "world-secret"] {
            assert!(
                !all.contains(secret),
                "--format {format} shows {secret}:\n{all}"
            );
        }
    }
    let json = scenario.plan_json();
    assert_eq!(
        json["brokers"]["old"]["endpoints"][0],
        format!("amqps://admin:****@{OLD_HOST}:5671")
    );
    assert_eq!(
        json["brokers"]["new"]["endpoints"][0],
        format!("amqps://admin:****@{NEW_HOST}:5671")
    );
}

// ---------------------------------------------------------------------------------------------
// Colour
// ---------------------------------------------------------------------------------------------

const ESC: char = '\u{1b}';

#[test]
fn no_colour_when_stdout_is_not_a_terminal() {
    let mut cmd = incident(&[]);
    cmd.env_remove("NO_COLOR");
    let out = stdout_of(&mut cmd);
    assert!(!out.contains(ESC), "ANSI escapes in piped output:\n{out}");
}

/// Runs the incident plan with stdout on a pseudo-terminal (through util-linux `script`),
/// with `NO_COLOR` set to `no_color` (or unset) and `extra` arguments; returns what it printed.
fn incident_on_a_terminal(no_color: Option<&str>, extra: &str) -> String {
    let command = format!(
        "'{}' plan {INCIDENT_PLAN} --world {INCIDENT_WORLD} {extra}",
        env!("CARGO_BIN_EXE_warren")
    );
    let mut script = StdCommand::new("script");
    script
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["-qec", &command, "/dev/null"]);
    match no_color {
        Some(value) => script.env("NO_COLOR", value),
        None => script.env_remove("NO_COLOR"),
    };
    let output = script
        .output()
        .expect("these tests need util-linux `script` to give warren a terminal");
    assert!(output.status.success(), "{output:?}");
    let out = String::from_utf8(output.stdout).unwrap();
    assert!(
        out.contains("Plan: 9 to move"),
        "warren ran on the terminal:\n{out}"
    );
    out
}

#[test]
fn colour_on_a_terminal_unless_no_color_or_the_flag_says_otherwise() {
    let coloured = incident_on_a_terminal(None, "");
    assert!(
        coloured.contains(ESC),
        "a terminal gets colour:\n{coloured}"
    );

    let out = incident_on_a_terminal(Some("1"), "");
    assert!(!out.contains(ESC), "NO_COLOR=1 on a terminal:\n{out}");

    let out = incident_on_a_terminal(None, "--no-color");
    assert!(!out.contains(ESC), "--no-color on a terminal:\n{out}");
}

// ---------------------------------------------------------------------------------------------
// Discovery: which service points where, and what moving it rewrites
// ---------------------------------------------------------------------------------------------

#[test]
fn a_split_service_rewrites_only_the_containers_on_the_old_broker() {
    let world = World::two_brokers()
        .service("c", Service::new("split", "split:4"))
        .task_definition(
            TaskDef::new("split", 4)
                .container("app")
                .env("SPRING_RABBITMQ_HOST", OLD_HOST)
                .container("sidecar")
                .env("RABBIT_URL", &format!("amqps://{NEW_HOST}:5671")),
        )
        .service("c", Service::new("forgotten", "split:4"));
    let plan = Plan::new().service(Declared::new("c", "split"));
    let json = Scenario::new(&plan, &world).plan_json();

    let split = change(&json, "c/split");
    assert_eq!(split["action"], "update");
    assert_eq!(split["from"], "split");
    assert_eq!(split["to"], "new");
    assert_eq!(
        split["rewrites"],
        serde_json::json!([{
            "container": "app",
            "variable": "SPRING_RABBITMQ_HOST",
            "from": OLD_HOST,
            "to": NEW_HOST,
        }])
    );
    // A split service that the plan forgets is unmanaged, and says it is split.
    assert_eq!(unmanaged_ids(&json), vec!["c/forgotten"]);
    assert_eq!(json["unmanaged"][0]["broker"], "split");
    assert_eq!(
        json["unmanaged"][0]["through"],
        serde_json::json!(["app/SPRING_RABBITMQ_HOST"])
    );
}

#[test]
fn a_service_on_neither_broker_is_a_noop_with_a_warning() {
    let world = World::two_brokers()
        .service_env("c", "web", &[("UPSTREAM", "http://localhost:3000")])
        .service_env("c", "api", &[("SPRING_RABBITMQ_HOST", OLD_HOST)]);
    let plan = Plan::new()
        .service(Declared::new("c", "web"))
        .service(Declared::new("c", "api"));
    let scenario = Scenario::new(&plan, &world);
    let json = scenario.plan_json();

    let web = change(&json, "c/web");
    assert_eq!(web["action"], "noop");
    assert_eq!(web["from"], Value::Null);
    assert_eq!(web["wave"], Value::Null);
    assert_eq!(
        waves(&json),
        vec![vec!["c/api".to_owned()]],
        "a noop is in no wave"
    );
    assert_eq!(
        warnings(&json),
        vec!["c/web is in the plan but points at neither broker: nothing to move".to_owned()]
    );
    assert!(scenario.plan_human().contains("= c/web  on neither broker"));
}

#[test]
fn a_host_from_an_unmapped_parameter_makes_the_change_manual() {
    let world = World::two_brokers()
        .service("c", Service::new("ledger", "ledger:31"))
        .task_definition(TaskDef::new("ledger", 31).container("app").secret(
            "RABBIT_HOST",
            "arn:aws:ssm:eu-west-2:1:parameter/esr/rabbit/host",
        ))
        .parameter(
            "arn:aws:ssm:eu-west-2:1:parameter/esr/rabbit/host",
            OLD_HOST,
        );
    let plan = Plan::new().service(Declared::new("c", "ledger"));
    let scenario = Scenario::new(&plan, &world);
    let json = scenario.plan_json();

    let ledger = change(&json, "c/ledger");
    assert_eq!(ledger["action"], "manual");
    assert_eq!(ledger["from"], "old");
    let reason = ledger["reason"].as_str().expect("a manual change says why");
    assert!(
        reason.contains("arn:aws:ssm:eu-west-2:1:parameter/esr/rabbit/host"),
        "{reason}"
    );
    assert!(reason.contains("RABBIT_HOST"), "{reason}");

    let human = scenario.plan_human();
    assert!(
        human.contains("! c/ledger  old -> new  (ledger:31), manual"),
        "{human}"
    );
    assert!(human.contains("cannot be moved automatically"), "{human}");
    // A manual change is still a change.
    scenario.plan(&["--detailed-exitcode"]).assert().code(2);
}

#[test]
fn a_mapped_parameter_is_rewritten_to_the_parameter_for_the_new_broker() {
    let world = World::two_brokers()
        .service("c", Service::new("ledger", "ledger:31"))
        .task_definition(
            TaskDef::new("ledger", 31)
                .container("app")
                .secret(
                    "RABBIT_HOST",
                    "arn:aws:ssm:eu-west-2:1:parameter/esr/rabbit/host",
                )
                .secret("RABBIT_PASSWORD", "/esr/rabbit/password"),
        )
        .parameter(
            "arn:aws:ssm:eu-west-2:1:parameter/esr/rabbit/host",
            OLD_HOST,
        )
        .parameter("/esr/rabbit2/host", NEW_HOST)
        .parameter("/esr/rabbit/password", "not-a-host");
    // The map names the parameter by name; the task definition by ARN.
    let plan = Plan::new()
        .service(Declared::new("c", "ledger"))
        .parameter("/esr/rabbit/host", "/esr/rabbit2/host");
    let json = Scenario::new(&plan, &world).plan_json();

    let ledger = change(&json, "c/ledger");
    assert_eq!(ledger["action"], "update");
    assert_eq!(ledger.get("reason"), None);
    assert_eq!(
        ledger["rewrites"],
        serde_json::json!([{
            "container": "app",
            "parameter": "RABBIT_HOST",
            "from": "arn:aws:ssm:eu-west-2:1:parameter/esr/rabbit/host",
            "to": "/esr/rabbit2/host",
        }])
    );
    assert_eq!(warnings(&json), Vec::<String>::new());
}

#[test]
fn unmanaged_services_come_with_entries_to_paste_into_the_plan() {
    let world = World::two_brokers()
        .service_env("c", "api", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("c", "export", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env(
            "d",
            "audit",
            &[("RABBIT_URL", &format!("amqps://{OLD_HOST}:5671"))],
        )
        .service_env("d", "reports", &[("SPRING_RABBITMQ_HOST", NEW_HOST)]);
    let plan = Plan::new().service(Declared::new("c", "api"));
    let scenario = Scenario::new(&plan, &world);

    let json = scenario.plan_json();
    assert_eq!(
        unmanaged_ids(&json),
        vec!["c/export", "d/audit"],
        "not d/reports: it is on the new broker"
    );
    scenario.plan(&["--strict"]).assert().code(1);

    let human = scenario.plan_human();
    snapshot_settings("warren plan plan.toml --world world.json")
        .bind(|| insta::assert_snapshot!("unmanaged_human", human));

    // The indented block under "Add them to plan.toml" is TOML that fixes the plan as it stands.
    let block: String = human
        .lines()
        .skip_while(|l| !l.starts_with("  Add them to plan.toml"))
        .skip(1)
        .take_while(|l| !l.starts_with("warren will move"))
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    assert_eq!(block.matches("[[services]]").count(), 2, "{block}");
    scenario.write("plan.toml", &format!("{}\n{block}", plan.to_toml()));
    scenario.plan(&["--strict"]).assert().success();
    let json = scenario.plan_json();
    assert_eq!(json["unmanaged"], serde_json::json!([]));
    assert_eq!(change(&json, "d/audit")["action"], "update");
}

#[test]
fn broker_env_restricts_discovery_to_those_variables() {
    let world = World::two_brokers()
        .service("c", Service::new("api", "api:1"))
        .task_definition(
            TaskDef::new("api", 1)
                .container("app")
                .env("SPRING_RABBITMQ_HOST", OLD_HOST)
                .env("AUDIT_RABBIT_URL", &format!("amqps://{OLD_HOST}:5671")),
        )
        .service_env("c", "other", &[("OTHER_HOST", OLD_HOST)])
        .service_env("c", "listed", &[("SPRING_RABBITMQ_HOST", OLD_HOST)]);
    let plan = Plan::new().service(Declared::new("c", "api"));

    let everything = Scenario::new(&plan, &world).plan_json();
    assert_eq!(rewrites(change(&everything, "c/api")).len(), 2);
    assert_eq!(unmanaged_ids(&everything), vec!["c/listed", "c/other"]);

    let restricted =
        Scenario::new(&plan.clone().broker_env(&["SPRING_RABBITMQ_HOST"]), &world).plan_json();
    let api = change(&restricted, "c/api");
    assert_eq!(rewrites(api).len(), 1);
    assert_eq!(rewrites(api)[0]["variable"], "SPRING_RABBITMQ_HOST");
    assert_eq!(unmanaged_ids(&restricted), vec!["c/listed"]);
    assert_eq!(
        restricted["scope"]["broker_env"],
        serde_json::json!(["SPRING_RABBITMQ_HOST"])
    );
}

#[test]
fn clusters_restricts_the_scan() {
    let world = World::two_brokers()
        .service_env("prod", "api", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("prod", "export", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("batch", "nightly", &[("SPRING_RABBITMQ_HOST", OLD_HOST)]);
    let plan = Plan::new().service(Declared::new("prod", "api"));

    let all = Scenario::new(&plan, &world).plan_json();
    assert_eq!(unmanaged_ids(&all), vec!["batch/nightly", "prod/export"]);

    let prod_only = Scenario::new(&plan.clone().clusters(&["prod"]), &world).plan_json();
    assert_eq!(unmanaged_ids(&prod_only), vec!["prod/export"]);
    assert_eq!(prod_only["scope"]["clusters"], serde_json::json!(["prod"]));
}

#[test]
fn a_host_matches_as_a_host_never_as_a_substring() {
    let world = World::two_brokers()
        .service_env(
            "c",
            "prefixed",
            &[("SPRING_RABBITMQ_HOST", &format!("x{OLD_HOST}"))],
        )
        .service_env(
            "c",
            "url",
            &[("RABBIT_URL", &format!("amqps://x{OLD_HOST}:5671"))],
        )
        .service_env(
            "c",
            "suffixed",
            &[("SPRING_RABBITMQ_HOST", &format!("{OLD_HOST}.evil.example"))],
        )
        .service_env(
            "c",
            "path",
            &[("DOCS", &format!("https://wiki.example/{OLD_HOST}"))],
        )
        .service_env(
            "c",
            "prose",
            &[("NOTE", &format!("moved off {OLD_HOST} soon"))],
        );
    let plan = Plan::new().service(Declared::new("c", "prefixed"));
    let json = Scenario::new(&plan, &world).plan_json();
    assert_eq!(
        json["unmanaged"],
        serde_json::json!([]),
        "none of these name the old broker"
    );
    let prefixed = change(&json, "c/prefixed");
    assert_eq!(prefixed["action"], "noop");
    assert_eq!(prefixed["from"], Value::Null);
}

#[test]
fn comma_separated_lists_and_upper_case_hosts_match() {
    let upper = OLD_HOST.to_uppercase();
    let world = World::two_brokers()
        .service_env(
            "c",
            "list",
            &[(
                "SPRING_RABBITMQ_ADDRESSES",
                &format!("rabbit-dr.example:5671, {upper}:5671"),
            )],
        )
        .service_env("c", "upper", &[("SPRING_RABBITMQ_HOST", &upper)])
        .service_env(
            "c",
            "url",
            &[("RABBIT_URL", &format!("amqps://svc:pw@{upper}:5671/esr"))],
        )
        .service_env(
            "c",
            "forgotten",
            &[("HOSTS", &format!("a.example,{OLD_HOST}"))],
        );
    let plan = Plan::new()
        .service(Declared::new("c", "list"))
        .service(Declared::new("c", "upper"))
        .service(Declared::new("c", "url"));
    let json = Scenario::new(&plan, &world).plan_json();

    let rewrite = |id: &str| -> (String, String) {
        let r = &change(&json, id)["rewrites"][0];
        (
            r["from"].as_str().unwrap().to_owned(),
            r["to"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(
        rewrite("c/list"),
        (
            format!("rabbit-dr.example:5671, {upper}:5671"),
            format!("rabbit-dr.example:5671, {NEW_HOST}:5671")
        ),
        "only the old broker's item changes"
    );
    assert_eq!(rewrite("c/upper"), (upper.clone(), NEW_HOST.to_owned()));
    assert_eq!(
        rewrite("c/url"),
        (
            format!("amqps://svc:****@{upper}:5671/esr"),
            format!("amqps://svc:****@{NEW_HOST}:5671/esr")
        )
    );
    assert_eq!(unmanaged_ids(&json), vec!["c/forgotten"]);
}

// ---------------------------------------------------------------------------------------------
// Order: waves, cycles, moving back
// ---------------------------------------------------------------------------------------------

/// shop → orders.ex → orders.q → billing → invoices.q → mailer, on both brokers.
fn chain_topology(broker: Broker) -> Broker {
    broker
        .exchange("orders.ex", "topic")
        .queue(Queue::new("orders.q").messages(5).consumed_by("billing"))
        .queue(Queue::new("invoices.q").consumed_by("mailer"))
        .binding("orders.ex", "orders.q")
}

#[test]
fn a_chain_moves_publishers_before_consumers_one_wave_per_link() {
    let world = World::new()
        .broker(chain_topology(old_broker()))
        .broker(chain_topology(new_broker()))
        .service_env("c", "mailer", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("c", "billing", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("c", "shop", &[("SPRING_RABBITMQ_HOST", OLD_HOST)]);
    let plan = Plan::new()
        .service(Declared::new("c", "mailer").consumes(&["invoices.q"]))
        .service(
            Declared::new("c", "billing")
                .publishes(&["invoices.q"])
                .consumes(&["orders.q"]),
        )
        .service(Declared::new("c", "shop").publishes(&["orders.ex"]));
    let scenario = Scenario::new(&plan, &world);
    let json = scenario.plan_json();

    assert_eq!(
        waves(&json),
        vec![vec!["c/shop"], vec!["c/billing"], vec!["c/mailer"]]
    );
    assert_eq!(
        json["drains"],
        serde_json::json!([
            { "wave": 2, "broker": "old", "vhost": "/", "queue": "orders.q" },
            { "wave": 3, "broker": "old", "vhost": "/", "queue": "invoices.q" },
        ])
    );
    assert_eq!(warnings(&json), Vec::<String>::new());
    let human = scenario.plan_human();
    assert!(
        human.contains("Wave 2  (first waits until orders.q on the old broker is drained)"),
        "{human}"
    );
}

#[test]
fn a_cycle_shares_one_wave_and_a_warning_names_both_services() {
    let topology = |b: Broker| {
        b.queue(Queue::new("requests.q"))
            .queue(Queue::new("replies.q"))
    };
    let world = World::new()
        .broker(topology(old_broker()))
        .broker(topology(new_broker()))
        .service_env("c", "api", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("c", "worker", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("c", "feeder", &[("SPRING_RABBITMQ_HOST", OLD_HOST)]);
    let plan = Plan::new()
        .service(
            Declared::new("c", "api")
                .publishes(&["requests.q"])
                .consumes(&["replies.q"]),
        )
        .service(
            Declared::new("c", "worker")
                .publishes(&["replies.q"])
                .consumes(&["requests.q"]),
        )
        .service(Declared::new("c", "feeder").publishes(&["requests.q"]));
    let json = Scenario::new(&plan, &world).plan_json();

    assert_eq!(
        waves(&json),
        vec![vec!["c/feeder"], vec!["c/api", "c/worker"]]
    );
    let cycle: Vec<String> = warnings(&json)
        .into_iter()
        .filter(|w| w.contains("cycle"))
        .collect();
    assert_eq!(cycle.len(), 1, "{cycle:?}");
    assert!(
        cycle[0].contains("c/api") && cycle[0].contains("c/worker"),
        "{}",
        cycle[0]
    );
    assert!(cycle[0].contains("wave 2"), "{}", cycle[0]);
}

#[test]
fn federate_moves_consumers_first_and_waits_after_the_last_wave() {
    let world = World::new()
        .broker(chain_topology(old_broker()))
        .broker(chain_topology(new_broker()))
        .service_env("c", "billing", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("c", "shop", &[("SPRING_RABBITMQ_HOST", OLD_HOST)]);
    let plan = Plan::new()
        .strategy("federate")
        .broker_key("old", "amqp_url_env", "WARREN_OLD_AMQP_URL")
        .service(Declared::new("c", "billing").consumes(&["orders.q"]))
        .service(Declared::new("c", "shop").publishes(&["orders.ex"]));
    let scenario = Scenario::new(&plan, &world);
    let json = scenario.plan_json();
    assert_eq!(json["strategy"], "federate");
    assert_eq!(waves(&json), vec![vec!["c/billing"], vec!["c/shop"]]);
    assert_eq!(json["drains"][0]["wave"], Value::Null);
    let human = scenario.plan_human();
    assert!(
        human.contains(
            "After the last wave, warren waits until orders.q on the old broker is empty (a queue that stalls is shovelled to the new broker), then removes the federation policies and upstreams."
        ),
        "{human}"
    );
}

#[test]
fn moving_back_orders_publishers_first_and_drains_the_new_broker() {
    let world = World::new()
        .broker(old_broker().queue(Queue::new("orders.q")))
        .broker(new_broker().queue(Queue::new("orders.q").messages(7).consumed_by("billing")))
        .service_env("c", "billing", &[("SPRING_RABBITMQ_HOST", NEW_HOST)])
        .service_env(
            "c",
            "shop",
            &[("RABBIT_URL", &format!("amqps://{NEW_HOST}:5671"))],
        );
    let plan = Plan::new()
        .service(
            Declared::new("c", "billing")
                .broker("old")
                .consumes(&["orders.q"]),
        )
        .service(
            Declared::new("c", "shop")
                .broker("old")
                .publishes(&["orders.q"]),
        );
    let scenario = Scenario::new(&plan, &world);
    let json = scenario.plan_json();

    assert_eq!(waves(&json), vec![vec!["c/shop"], vec!["c/billing"]]);
    for id in ["c/shop", "c/billing"] {
        let c = change(&json, id);
        assert_eq!(
            (c["action"].as_str(), c["from"].as_str(), c["to"].as_str()),
            (Some("update"), Some("new"), Some("old"))
        );
    }
    assert_eq!(
        change(&json, "c/shop")["rewrites"][0]["to"],
        format!("amqps://{OLD_HOST}:5671")
    );
    assert_eq!(change(&json, "c/billing")["rewrites"][0]["to"], OLD_HOST);
    assert_eq!(
        json["drains"],
        serde_json::json!([{ "wave": 2, "broker": "new", "vhost": "/", "queue": "orders.q" }])
    );
    assert_eq!(json["unmanaged"], serde_json::json!([]));
    let human = scenario.plan_human();
    assert!(
        human.contains("Wave 2  (first waits until orders.q on the new broker is drained)"),
        "{human}"
    );
    assert!(human.contains("~ c/shop  new -> old"), "{human}");
}

// ---------------------------------------------------------------------------------------------
// Warnings about the end state
// ---------------------------------------------------------------------------------------------

#[test]
fn warns_when_a_publisher_and_its_consumers_end_on_different_brokers() {
    let topology = |b: Broker| {
        b.exchange("orders.ex", "topic")
            .queue(Queue::new("orders.q"))
            .binding("orders.ex", "orders.q")
    };
    let world = World::new()
        .broker(topology(old_broker()))
        .broker(topology(new_broker()))
        .service_env("c", "shop", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("c", "billing", &[("SPRING_RABBITMQ_HOST", OLD_HOST)]);
    let plan = Plan::new()
        .service(Declared::new("c", "shop").publishes(&["orders.ex"]))
        .service(
            Declared::new("c", "billing")
                .broker("old")
                .consumes(&["orders.q"]),
        );
    let json = Scenario::new(&plan, &world).plan_json();
    assert_eq!(
        warnings(&json),
        vec!["after the plan, c/shop publishes to orders.q on the new broker, but its consumers (c/billing) are on the old broker: messages would stall unconsumed".to_owned()]
    );
}

#[test]
fn warns_when_a_queue_on_the_old_broker_is_consumed_by_an_unmanaged_service() {
    let world = World::new()
        .broker(old_broker().queue(Queue::new("orders.q").messages(12).consumed_by("export")))
        .broker(new_broker().queue(Queue::new("orders.q")))
        .service_env("c", "shop", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("c", "export", &[("SPRING_RABBITMQ_HOST", OLD_HOST)]);
    let plan = Plan::new().service(Declared::new("c", "shop").publishes(&["orders.q"]));
    let json = Scenario::new(&plan, &world).plan_json();
    assert_eq!(
        warnings(&json),
        vec![
            "queue orders.q on the old broker is consumed by c/export, which is not in the plan"
                .to_owned()
        ]
    );
}

#[test]
fn warns_when_a_declared_queue_or_exchange_is_missing_on_the_old_broker() {
    let world = World::new()
        .broker(old_broker().queue(Queue::new("orders.q")))
        .broker(
            new_broker()
                .queue(Queue::new("orders.q"))
                .exchange("ghost.ex", "topic")
                .queue(Queue::new("ghost.q")),
        )
        .service_env("c", "shop", &[("SPRING_RABBITMQ_HOST", OLD_HOST)]);
    let plan = Plan::new().service(
        Declared::new("c", "shop")
            .publishes(&["orders.q", "ghost.ex"])
            .consumes(&["ghost.q"]),
    );
    let json = Scenario::new(&plan, &world).plan_json();
    assert_eq!(
        warnings(&json),
        vec![
            "ghost.ex is declared in the plan but the old broker b-1111 does not have it"
                .to_owned(),
            "ghost.q is declared in the plan but the old broker b-1111 does not have it".to_owned(),
        ]
    );
}

#[test]
fn verbose_says_what_was_read_on_stderr_only() {
    let quiet = incident(&[]).output().unwrap();
    let once = incident(&["-v"]).output().unwrap();
    let twice = incident(&["-vv"]).output().unwrap();
    assert_eq!(quiet.stdout, once.stdout, "-v changes nothing on stdout");
    assert_eq!(quiet.stdout, twice.stdout);
    assert!(quiet.stderr.is_empty());
    let once = String::from_utf8_lossy(&once.stderr);
    assert!(
        once.contains("Read 2 cluster(s), 13 service(s), 14 task definition(s)"),
        "{once}"
    );
    assert!(once.contains(INCIDENT_WORLD), "{once}");
    let twice = String::from_utf8_lossy(&twice.stderr);
    assert!(
        twice.contains("  esr-batch/esr-dataexport runs esr-dataexport:19"),
        "{twice}"
    );
}

/// Moving to a broker whose endpoint is an IPv6 literal writes it in brackets wherever a port
/// or scheme stands beside it; moving off one replaces the brackets with the new host.
#[test]
fn a_rewrite_to_or_from_an_ipv6_endpoint_keeps_the_brackets() {
    let service = |host_value: &str| {
        World::new()
            .service("c", Service::new("api", "api:1"))
            .task_definition(
                TaskDef::new("api", 1)
                    .container("app")
                    .env("RABBIT_URL", host_value),
            )
    };
    let to_ipv6 = service(&format!("amqps://u:pw@{OLD_HOST}:5671/esr"))
        .broker(old_broker())
        .broker(Broker::new("b-2222", "amqps://[fd00::2]:5671"));
    let plan = Plan::new().service(Declared::new("c", "api"));
    let json = Scenario::new(&plan, &to_ipv6).plan_json();
    assert_eq!(
        rewrites(change(&json, "c/api"))[0]["to"],
        "amqps://u:****@[fd00::2]:5671/esr"
    );

    let from_ipv6 = service("amqps://u:pw@[fd00::1]:5671/esr")
        .broker(Broker::new("b-1111", "amqps://[fd00::1]:5671"))
        .broker(new_broker());
    let json = Scenario::new(&plan, &from_ipv6).plan_json();
    let rewrite = &rewrites(change(&json, "c/api"))[0];
    assert_eq!(rewrite["from"], "amqps://u:****@[fd00::1]:5671/esr");
    assert_eq!(rewrite["to"], format!("amqps://u:****@{NEW_HOST}:5671/esr"));
}

/// A host in `command` is rewritten there: the plan names the field by its path, in JSON and in
/// the human and Markdown views.
#[test]
fn a_host_in_the_command_is_rewritten_in_place() {
    let world = World::two_brokers()
        .service("c", Service::new("api", "api:1"))
        .task_definition(
            TaskDef::new("api", 1)
                .container("app")
                .env("LOG_LEVEL", "INFO")
                .container_field(
                    "command",
                    serde_json::json!([
                        "--rabbit-host",
                        OLD_HOST,
                        format!("--url=amqps://esr:s3cret@{OLD_HOST}:5671/esr")
                    ]),
                ),
        );
    let plan = Plan::new().service(Declared::new("c", "api"));
    let scenario = Scenario::new(&plan, &world);
    let json = scenario.plan_json();
    let api = change(&json, "c/api");
    assert_eq!(api["action"], "update");
    assert_eq!(
        api["rewrites"],
        serde_json::json!([
            { "container": "app", "field": "command[1]", "from": OLD_HOST, "to": NEW_HOST },
            {
                "container": "app",
                "field": "command[2]",
                "from": format!("--url=amqps://esr:****@{OLD_HOST}:5671/esr"),
                "to": format!("--url=amqps://esr:****@{NEW_HOST}:5671/esr"),
            },
        ])
    );
    let human = scenario.plan_human();
    assert!(
        human.contains(&format!("app: command[1] {OLD_HOST:?} -> {NEW_HOST:?}")),
        "{human}"
    );
    let markdown = String::from_utf8(
        scenario
            .plan(&["--format", "markdown"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone(),
    )
    .unwrap();
    assert!(markdown.contains("`app/command[1]`"), "{markdown}");
    for output in [json.to_string(), human, markdown] {
        assert!(!output.contains("s3cret"), "{output}");
    }
}

/// `broker_env` names variables: with it set, fields are not searched.
#[test]
fn broker_env_leaves_fields_unsearched() {
    let world = World::two_brokers()
        .service("c", Service::new("api", "api:1"))
        .task_definition(
            TaskDef::new("api", 1)
                .container("app")
                .env("SPRING_RABBITMQ_HOST", OLD_HOST)
                .container_field("command", serde_json::json!(["--rabbit-host", OLD_HOST])),
        );
    let plan = Plan::new()
        .service(Declared::new("c", "api"))
        .broker_env(&["SPRING_RABBITMQ_HOST"]);
    let json = Scenario::new(&plan, &world).plan_json();
    let api = change(&json, "c/api");
    assert_eq!(rewrites(api).len(), 1, "{api:#}");
    assert_eq!(rewrites(api)[0]["variable"], "SPRING_RABBITMQ_HOST");
}

// ---------------------------------------------------------------------------------------------
// Exchange-to-exchange bindings, partial moves, consumers the broker names, ownership
// ---------------------------------------------------------------------------------------------

/// Binds exchange `destination` to exchange `source` (routing key `#`) on broker `id`, in the
/// world file's form for an exchange destination.
fn bind_exchange(world: &mut Value, id: &str, source: &str, destination: &str) {
    let broker = world["brokers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|b| b["id"] == id)
        .unwrap();
    broker["bindings"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "exchange": source,
            "destination": destination,
            "destination_type": "exchange",
            "routing_key": "#",
        }));
}

#[test]
fn a_publisher_moves_before_the_consumer_behind_an_exchange_bound_to_an_exchange() {
    // shop publishes to a.ex; a.ex is bound to b.ex, b.ex to orders.q, which billing consumes.
    let topology = |b: Broker| {
        b.exchange("a.ex", "topic")
            .exchange("b.ex", "topic")
            .queue(Queue::new("orders.q").messages(3).consumed_by("billing"))
            .binding("b.ex", "orders.q")
    };
    let world = World::new()
        .broker(topology(old_broker()))
        .broker(topology(new_broker()))
        .service_env("c", "billing", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("c", "shop", &[("SPRING_RABBITMQ_HOST", OLD_HOST)]);
    let plan = Plan::new()
        .service(Declared::new("c", "billing").consumes(&["orders.q"]))
        .service(Declared::new("c", "shop").publishes(&["a.ex"]));
    let scenario = Scenario::new(&plan, &world);
    scenario.edit_world(|w| {
        for id in [common::OLD_ID, common::NEW_ID] {
            bind_exchange(w, id, "a.ex", "b.ex");
        }
    });
    let json = scenario.plan_json();

    assert_eq!(waves(&json), vec![vec!["c/shop"], vec!["c/billing"]]);
    assert_eq!(
        json["drains"],
        serde_json::json!([{ "wave": 2, "broker": "old", "vhost": "/", "queue": "orders.q" }])
    );
    assert_eq!(warnings(&json), Vec::<String>::new());

    // A rehearsal apply writes the world back: each binding keeps the form it was given in.
    let before = scenario.world_json()["brokers"].clone();
    scenario.apply(&[]).assert().success();
    let after = scenario.world_json();
    for (b, broker) in before.as_array().unwrap().iter().enumerate() {
        let mut written = after["brokers"][b]["bindings"].clone();
        for binding in written.as_array_mut().unwrap() {
            // The vhost is written out, as it always was.
            assert_eq!(
                binding.as_object_mut().unwrap().remove("vhost").unwrap(),
                "/"
            );
        }
        assert_eq!(written, broker["bindings"]);
    }
}

#[test]
fn broker_env_that_misses_a_variable_warns_that_the_move_is_partial() {
    let world = World::two_brokers()
        .service("c", Service::new("api", "api:1"))
        .task_definition(
            TaskDef::new("api", 1)
                .container("app")
                .env("SPRING_RABBITMQ_HOST", OLD_HOST)
                .env("AUDIT_RABBIT_URL", &format!("amqps://{OLD_HOST}:5671")),
        )
        .service_env("c", "whole", &[("SPRING_RABBITMQ_HOST", OLD_HOST)]);
    let plan = Plan::new()
        .service(Declared::new("c", "api"))
        .service(Declared::new("c", "whole"))
        .broker_env(&["SPRING_RABBITMQ_HOST"]);
    let json = Scenario::new(&plan, &world).plan_json();

    assert_eq!(change(&json, "c/api")["action"], "update");
    assert_eq!(
        warnings(&json),
        vec![
            "c/api is moved only in part: app/AUDIT_RABBIT_URL still names the old broker and broker_env does not list it, so after apply the service is split between the brokers (add the variable to broker_env)"
        ]
    );
}

#[test]
fn a_consumer_the_broker_names_that_the_plan_declares_is_not_undeclared() {
    let topology = |b: Broker| {
        b.exchange("orders.ex", "topic")
            .queue(
                Queue::new("orders.q")
                    .consumed_by("billing")
                    .consumed_by("c/ledger"),
            )
            .binding("orders.ex", "orders.q")
    };
    let world = World::new()
        .broker(topology(old_broker()))
        .broker(topology(new_broker()))
        .service_env("c", "billing", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("c", "ledger", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("c", "shop", &[("SPRING_RABBITMQ_HOST", OLD_HOST)]);
    // billing and ledger are in the plan, without `consumes`: the broker says they consume
    // orders.q. They are declared (not "undeclared consumers"), but cannot be ordered yet.
    let plan = Plan::new()
        .service(Declared::new("c", "billing"))
        .service(Declared::new("c", "ledger"))
        .service(Declared::new("c", "shop").publishes(&["orders.ex"]));
    let json = Scenario::new(&plan, &world).plan_json();
    assert_eq!(
        warnings(&json),
        vec!["queue orders.q on the old broker is consumed by c/billing, c/ledger, which the plan declares without orders.q in `consumes`: warren cannot order them after the queue's publishers; add orders.q to their `consumes`"]
    );
    // Once they list it, nothing is left to say.
    let plan = Plan::new()
        .service(Declared::new("c", "billing").consumes(&["orders.q"]))
        .service(Declared::new("c", "ledger").consumes(&["orders.q"]))
        .service(Declared::new("c", "shop").publishes(&["orders.ex"]));
    let json = Scenario::new(&plan, &world).plan_json();
    assert_eq!(warnings(&json), Vec::<String>::new());
    assert_eq!(
        waves(&json),
        vec![vec!["c/shop"], vec!["c/billing", "c/ledger"]]
    );

    // A consumer nobody declares is still found.
    let topology = |b: Broker| {
        b.exchange("orders.ex", "topic")
            .queue(Queue::new("orders.q").consumers(1))
            .binding("orders.ex", "orders.q")
    };
    let world = World::new()
        .broker(topology(old_broker()))
        .broker(topology(new_broker()))
        .service_env("c", "shop", &[("SPRING_RABBITMQ_HOST", OLD_HOST)]);
    let plan = Plan::new().service(Declared::new("c", "shop").publishes(&["orders.ex"]));
    let json = Scenario::new(&plan, &world).plan_json();
    assert_eq!(
        warnings(&json),
        vec!["queue orders.q on the old broker has 1 consumer no scanned service accounts for, and its publishers move: find the consumer before the old broker goes"]
    );
}

/// The forgotten consumer in small: `esr/apprecord` (in the plan) publishes to `t.apprecord`,
/// bound to `t.dataexporter`, which `esr/dataexport` (left out) consumes; `queue` is the old
/// broker's `t.dataexporter`, and each service has a connection open there named like it.
fn forgotten_consumer_world(queue: Queue) -> World {
    let topology = |b: Broker, queue: Queue| {
        b.exchange("t.apprecord", "topic")
            .queue(queue)
            .binding("t.apprecord", "t.dataexporter")
    };
    World::new()
        .broker(
            topology(old_broker(), queue)
                .connection("apprecord", "10.0.3.12:5000")
                .connection("dataexport", "10.0.3.40:40122"),
        )
        .broker(topology(new_broker(), Queue::new("t.dataexporter")))
        .service_env("esr", "apprecord", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("esr", "dataexport", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
}

fn forgotten_consumer_plan() -> Plan {
    Plan::new().service(Declared::new("esr", "apprecord").publishes(&["t.apprecord"]))
}

#[test]
fn a_consumer_the_broker_does_not_name_is_put_down_to_the_left_out_service_connected_there() {
    let world = forgotten_consumer_world(Queue::new("t.dataexporter").consumers(1));
    let json = Scenario::new(&forgotten_consumer_plan(), &world).plan_json();
    assert_eq!(unmanaged_ids(&json), ["esr/dataexport"]);
    assert_eq!(
        warnings(&json),
        vec!["queue t.dataexporter on the old broker has 1 consumer the broker does not name, most likely esr/dataexport (not in the plan, connected to the old broker), and its publishers move: what they send from then on waits on the new broker until esr/dataexport moves too"]
    );
}

#[test]
fn a_consumer_the_broker_names_that_the_plan_leaves_out_is_warned_with_its_moving_publishers() {
    let world = forgotten_consumer_world(Queue::new("t.dataexporter").consumed_by("dataexport"));
    let json = Scenario::new(&forgotten_consumer_plan(), &world).plan_json();
    assert_eq!(
        warnings(&json),
        vec!["queue t.dataexporter on the old broker is consumed by esr/dataexport, which is not in the plan, and its publishers move: what they send from then on waits on the new broker until esr/dataexport moves too"]
    );
}

/// An old broker whose queue `audit.q` has 2 consumers that `consumed_by` names, a service
/// `shop` on the old broker (in the plan), and `reports` on the new broker (in no plan).
fn audit_world(consumed_by: &[&str]) -> World {
    let mut queue = Queue::new("audit.q").consumers(2);
    for client in consumed_by {
        queue = queue.consumed_by(client);
    }
    World::new()
        .broker(
            old_broker()
                .queue(queue)
                .connection("app-1", "10.0.4.2:5000"),
        )
        .broker(new_broker().queue(Queue::new("audit.q")))
        .service_env("c", "shop", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("c", "reports", &[("SPRING_RABBITMQ_HOST", NEW_HOST)])
}

#[test]
fn consumers_no_scanned_service_accounts_for_are_warned() {
    let plan = Plan::new().service(Declared::new("c", "shop"));
    for consumed_by in [&[][..], &["audit-tool"][..]] {
        let json = Scenario::new(&plan, &audit_world(consumed_by)).plan_json();
        assert_eq!(
            warnings(&json),
            vec!["queue audit.q on the old broker has 2 consumers no scanned service accounts for"],
            "consumed by {consumed_by:?}"
        );
    }
}

#[test]
fn consumers_a_service_accounts_for_are_not_warned() {
    // The plan declares the consumer.
    let plan = Plan::new().service(Declared::new("c", "shop").consumes(&["audit.q"]));
    let json = Scenario::new(&plan, &audit_world(&[])).plan_json();
    assert_eq!(warnings(&json), Vec::<String>::new());

    // The broker names a service of the world by its name with an instance suffix, or the
    // connection of a consumer comes from a running task of one.
    let plan = Plan::new().service(Declared::new("c", "shop"));
    let json = Scenario::new(&plan, &audit_world(&["reports-7f3c", "c/shop"])).plan_json();
    assert_eq!(warnings(&json), Vec::<String>::new());
    let scenario = Scenario::new(&plan, &audit_world(&["app-1"]));
    scenario.edit_world(|w| {
        let services = w["clusters"][0]["services"].as_array_mut().unwrap();
        let reports = services
            .iter_mut()
            .find(|s| s["name"] == "reports")
            .unwrap();
        reports["tasks"] = serde_json::json!([{ "address": "10.0.4.2" }]);
    });
    assert_eq!(warnings(&scenario.plan_json()), Vec::<String>::new());
}

#[test]
fn a_service_owned_by_infrastructure_as_code_is_warned() {
    let world = World::two_brokers()
        .service_env("c", "cfn", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("c", "copilot", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("c", "terraform", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("c", "untagged", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("c", "stays", &[("SPRING_RABBITMQ_HOST", NEW_HOST)]);
    let plan = Plan::new()
        .service(Declared::new("c", "cfn"))
        .service(Declared::new("c", "copilot"))
        .service(Declared::new("c", "terraform"))
        .service(Declared::new("c", "untagged"))
        .service(Declared::new("c", "stays"));
    let scenario = Scenario::new(&plan, &world);
    scenario.edit_world(|w| {
        let services = w["clusters"][0]["services"].as_array_mut().unwrap();
        let mut tag = |name: &str, tags: Value| {
            let service = services.iter_mut().find(|s| s["name"] == name).unwrap();
            service["tags"] = tags;
        };
        tag(
            "cfn",
            serde_json::json!({ "aws:cloudformation:stack-name": "esr-cfn", "team": "esr" }),
        );
        tag(
            "copilot",
            serde_json::json!({ "copilot-application": "esr", "copilot-environment": "prod" }),
        );
        tag("terraform", serde_json::json!({ "ManagedBy": "Terraform" }));
        tag("untagged", serde_json::json!({ "team": "esr" }));
        // A service that does not move is not warned, whoever owns it.
        tag(
            "stays",
            serde_json::json!({ "aws:cloudformation:stack-name": "esr-stays" }),
        );
    });
    let json = scenario.plan_json();
    assert_eq!(
        warnings(&json),
        vec![
            "c/cfn is managed by CloudFormation stack esr-cfn: the next deploy of that stack puts the old host back unless its template changes too",
            "c/copilot is managed by Copilot (application esr, environment prod): the next deploy of that stack puts the old host back unless its manifest changes too",
            "c/terraform is managed by Terraform (tag ManagedBy=Terraform): the next deploy of that stack puts the old host back unless its configuration changes too",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Other resources that point at a broker, and services another controller deploys
// ---------------------------------------------------------------------------------------------

const OLD_ARN: &str = "arn:aws:mq:eu-west-2:111122223333:broker:esr-rabbit-old:b-1111";
const NEW_ARN: &str = "arn:aws:mq:eu-west-2:111122223333:broker:esr-rabbit-new:b-2222";

/// `c/api` (declared) on the old broker, and one resource of every kind on each broker: only
/// the old broker's are unmanaged.
fn resources_scenario() -> Scenario {
    let world = World::two_brokers()
        .service_env("c", "api", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .task_definition(
            TaskDef::new("export", 1)
                .container("app")
                .env("SPRING_RABBITMQ_HOST", OLD_HOST),
        )
        .task_definition(
            TaskDef::new("export", 2)
                .container("app")
                .env("SPRING_RABBITMQ_HOST", NEW_HOST),
        );
    let mut json = world.to_json();
    json["brokers"][0]["arn"] = serde_json::json!(OLD_ARN);
    json["brokers"][1]["arn"] = serde_json::json!(NEW_ARN);
    let run_task = |host: &str| {
        serde_json::json!({ "StartAt": "Export", "States": { "Export": {
            "Type": "Task",
            "Resource": "arn:aws:states:::ecs:runTask.sync",
            "Parameters": { "Overrides": { "ContainerOverrides": [{
                "Name": "app",
                "Environment": [{ "Name": "SPRING_RABBITMQ_HOST", "Value": host }]
            }]}},
            "End": true
        }}})
    };
    json["schedules"] = serde_json::json!([
        { "name": "nightly-export", "cluster": "c", "task_definition": "export:1",
          "arn": "arn:aws:events:eu-west-2:111122223333:rule/nightly-export" },
        { "name": "hourly-export", "cluster": "c", "task_definition": "export:2" },
        { "name": "adhoc-export", "kind": "schedule", "group": "ops", "cluster": "c",
          "task_definition": "export:2",
          "overrides": { "app": { "SPRING_RABBITMQ_HOST": OLD_HOST } } },
        { "name": "weekly-export", "kind": "schedule", "cluster": "c", "task_definition": "export" }
    ]);
    json["functions"] = serde_json::json!([
        { "name": "notify", "arn": "arn:aws:lambda:eu-west-2:111122223333:function:notify",
          "environment": { "AMQP_URL": format!("amqps://notify:hunter2@{OLD_HOST}:5671") } },
        { "name": "audit", "environment": { "AMQP_URL": format!("amqps://{NEW_HOST}:5671") } }
    ]);
    json["event_source_mappings"] = serde_json::json!([
        { "uuid": "6f1c-old", "function": "notify", "source": OLD_ARN, "queues": ["q.notify"] },
        { "uuid": "9a2d-new", "function": "audit", "source": NEW_ARN }
    ]);
    json["pipes"] = serde_json::json!([
        { "name": "orders-to-sqs", "source": OLD_ARN, "target": "arn:aws:sqs:eu-west-2:111122223333:orders" },
        { "name": "audit-to-sqs", "source": NEW_ARN }
    ]);
    json["state_machines"] = serde_json::json!([
        { "name": "export-flow", "definition": run_task(OLD_HOST) },
        { "name": "audit-flow", "definition": run_task(NEW_HOST) }
    ]);
    let plan = Plan::new().service(Declared::new("c", "api"));
    Scenario::from_texts(
        &plan.to_toml(),
        &serde_json::to_string_pretty(&json).unwrap(),
    )
}

#[test]
fn other_resources_on_the_old_broker_are_listed_with_what_to_do() {
    let s = resources_scenario();
    let json = s.plan_json();
    let resources = json["unmanaged_resources"].as_array().unwrap();
    let listed: Vec<(String, String)> = resources
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_owned(),
                r["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("rule", "nightly-export"),
        ("schedule", "ops/adhoc-export"),
        ("function", "notify"),
        ("event_source_mapping", "6f1c-old"),
        ("pipe", "orders-to-sqs"),
        ("state_machine", "export-flow"),
    ];
    assert_eq!(
        listed,
        expected
            .iter()
            .map(|(k, n)| ((*k).to_owned(), (*n).to_owned()))
            .collect::<Vec<_>>(),
        "none of the new broker's: {resources:#?}"
    );
    for r in resources {
        assert_eq!(r["broker"], "old");
        let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["kind", "name", "arn", "broker", "through", "action"]);
    }
    assert_eq!(
        resources[0]["arn"],
        "arn:aws:events:eu-west-2:111122223333:rule/nightly-export"
    );
    assert_eq!(resources[2]["through"], serde_json::json!(["AMQP_URL"]));
    assert_eq!(
        resources[5]["through"],
        serde_json::json!([
            "States.Export.Parameters.Overrides.ContainerOverrides[0].Environment[0].Value"
        ])
    );
    // They are not services: the summary counts stay those of the services.
    assert_eq!(json["unmanaged"], serde_json::json!([]));

    let human = s.plan_human();
    assert!(!human.contains("hunter2"), "{human}");
    snapshot_settings("warren plan plan.toml --world world.json")
        .bind(|| insta::assert_snapshot!("unmanaged_resources_human", human));
    let markdown = stdout_of(&mut s.plan(&["--format", "markdown"]));
    snapshot_settings("warren plan plan.toml --world world.json --format markdown")
        .bind(|| insta::assert_snapshot!("unmanaged_resources_markdown", markdown));

    let strict = s.plan(&["--strict"]).assert().code(1).get_output().clone();
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert!(
        stderr.contains("6 other resources point at the old broker"),
        "{stderr}"
    );
    assert!(stderr.contains("function notify"), "{stderr}");
}

#[test]
fn a_rule_on_a_task_definition_that_does_not_exist_is_a_warning() {
    let world = World::two_brokers().service_env("c", "api", &[("SPRING_RABBITMQ_HOST", OLD_HOST)]);
    let mut json = world.to_json();
    json["schedules"] = serde_json::json!([
        { "name": "lost", "cluster": "c", "task_definition": "gone:4" }
    ]);
    let plan = Plan::new().service(Declared::new("c", "api"));
    let s = Scenario::from_texts(
        &plan.to_toml(),
        &serde_json::to_string_pretty(&json).unwrap(),
    );
    assert!(
        warnings(&s.plan_json()).contains(
            &"schedule lost runs gone:4, which could not be read: whether it points at the old broker is unknown".to_owned()
        ),
        "{:#?}",
        s.plan_json()["warnings"]
    );
}

#[test]
fn a_plan_without_other_resources_has_no_unmanaged_resources_key() {
    let world = World::two_brokers().service_env("c", "api", &[("SPRING_RABBITMQ_HOST", OLD_HOST)]);
    let scenario = Scenario::new(&Plan::new().service(Declared::new("c", "api")), &world);
    let json = scenario.plan_json();
    assert!(json.get("unmanaged_resources").is_none(), "{json:#}");
    scenario.plan(&["--strict"]).assert().success();
}

#[test]
fn a_service_deployed_by_another_controller_is_manual_with_the_reason() {
    let world = World::two_brokers()
        .service_env("c", "blue", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("c", "green", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("c", "ecs", &[("SPRING_RABBITMQ_HOST", OLD_HOST)]);
    let mut json = world.to_json();
    json["clusters"][0]["services"][0]["deployment_controller"] = serde_json::json!("CODE_DEPLOY");
    json["clusters"][0]["services"][1]["deployment_controller"] = serde_json::json!("EXTERNAL");
    json["clusters"][0]["services"][2]["deployment_controller"] = serde_json::json!("ECS");
    let plan = Plan::new()
        .service(Declared::new("c", "blue"))
        .service(Declared::new("c", "green"))
        .service(Declared::new("c", "ecs"));
    let s = Scenario::from_texts(
        &plan.to_toml(),
        &serde_json::to_string_pretty(&json).unwrap(),
    );
    let json = s.plan_json();
    assert_eq!(
        change(&json, "c/blue")["reason"],
        "deployed by CodeDeploy: UpdateService cannot change its task definition; register the moved revision and deploy it through CodeDeploy"
    );
    assert_eq!(change(&json, "c/blue")["action"], "manual");
    assert_eq!(change(&json, "c/green")["action"], "manual");
    assert!(change(&json, "c/green")["reason"]
        .as_str()
        .unwrap()
        .contains("an external controller"));
    assert_eq!(change(&json, "c/ecs")["action"], "update");
    // The rewrites still say what the moved revision must hold.
    assert_eq!(rewrites(change(&json, "c/blue")).len(), 1);
    let human = s.plan_human();
    assert!(
        human.contains("! c/blue  old -> new  (blue:1), manual"),
        "{human}"
    );
    assert!(
        human.contains("2 services cannot be moved automatically"),
        "{human}"
    );
}

#[test]
fn the_plan_lists_what_apply_creates_on_the_new_broker() {
    let world = World::new()
        .broker(
            old_broker()
                .exchange("events", "topic")
                .exchange("unused", "fanout")
                .queue(Queue::new("q.work").consumers(1))
                .binding("events", "q.work"),
        )
        .broker(new_broker())
        .service("c", Service::new("producer", "producer:1"))
        .task_definition(
            TaskDef::new("producer", 1)
                .container("app")
                .env("SPRING_RABBITMQ_HOST", OLD_HOST),
        );
    let plan = Plan::new().service(Declared::new("c", "producer").publishes(&["events"]));
    let s = Scenario::new(&plan, &world);

    let json = s.plan_json();
    assert_eq!(
        json["topology"],
        serde_json::json!([
            {"kind": "exchange", "vhost": "/", "name": "events", "type": "topic"},
            {"kind": "exchange", "vhost": "/", "name": "unused", "type": "fanout"},
            {"kind": "queue", "vhost": "/", "name": "q.work"},
            {"kind": "binding", "vhost": "/", "exchange": "events", "queue": "q.work",
             "routing_key": "#"},
        ]),
        "every definition of the vhost the service uses, queues without what they hold"
    );
    let human = s.plan_human();
    assert!(
        human.contains(
            "New broker: 4 to create before the first wave\n  + exchange events (topic)\n  + exchange unused (fanout)\n  + queue q.work (classic)\n  + binding events -> q.work (key #)\n"
        ),
        "{human}"
    );
    let markdown = String::from_utf8(
        s.plan(&["--format", "markdown"])
            .assert()
            .get_output()
            .stdout
            .clone(),
    )
    .unwrap();
    assert!(
        markdown.contains(
            "#### New broker: 4 to create before the first wave\n\n- exchange events (topic)\n"
        ),
        "{markdown}"
    );
}

#[test]
fn a_plan_moving_services_says_when_no_topology_can_be_copied() {
    let world = World::new()
        .broker(old_broker().live())
        .broker(new_broker())
        .service("c", Service::new("producer", "producer:1"))
        .task_definition(
            TaskDef::new("producer", 1)
                .container("app")
                .env("SPRING_RABBITMQ_HOST", OLD_HOST),
        );
    let plan = Plan::new().service(Declared::new("c", "producer").publishes(&["events"]));
    let json = Scenario::new(&plan, &world).plan_json();
    assert!(json.get("topology").is_none(), "{json:#}");
    assert!(
        warnings(&json)
            .iter()
            .any(|w| w.contains("warren copies no exchange, queue, binding or policy")),
        "{json:#}"
    );
}

/// What apply creates on the new broker before the first wave is not reported missing there:
/// the plan lists it to create instead of warning that it must be created by hand.
#[test]
fn what_apply_creates_on_the_new_broker_is_not_warned_about_as_missing() {
    let world = World::new()
        .broker(
            old_broker()
                .exchange("shop.events", "topic")
                .queue(Queue::new("shop.orders"))
                .binding("shop.events", "shop.orders"),
        )
        .broker(new_broker())
        .service_env("c", "billing", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("c", "orders", &[("SPRING_RABBITMQ_HOST", OLD_HOST)]);
    let plan = Plan::new()
        .service(Declared::new("c", "billing").publishes(&["shop.events"]))
        .service(Declared::new("c", "orders").consumes(&["shop.orders"]));
    let json = Scenario::new(&plan, &world).plan_json();
    let created: Vec<&str> = json["topology"]
        .as_array()
        .expect("a topology to create")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        created.contains(&"shop.events") && created.contains(&"shop.orders"),
        "{created:?}"
    );
    let warnings = json["warnings"].to_string();
    assert!(
        !warnings.contains("does not exist on the new broker"),
        "{warnings}"
    );
}

// ---------------------------------------------------------------------------------------------
// The federate strategy: upstreams and policies on the new broker
// ---------------------------------------------------------------------------------------------

/// shop → orders.ex → orders.q → billing, and invoices.q in vhost `billing` → mailer, on the old
/// broker, under a TTL policy (priority 5) that the new broker gets before the first wave; the
/// new broker is simulated and empty.
fn federate_world() -> World {
    World::new()
        .broker(
            old_broker()
                .exchange("orders.ex", "topic")
                .queue(Queue::new("orders.q").messages(5).consumed_by("billing"))
                .queue(
                    Queue::new("invoices.q")
                        .vhost("billing")
                        .consumed_by("mailer"),
                )
                .binding("orders.ex", "orders.q")
                .field(
                    "policies",
                    serde_json::json!([{
                        "vhost": "/", "name": "ttl", "pattern": "^orders\\.", "apply-to": "queues",
                        "priority": 5, "definition": { "message-ttl": 60000 }
                    }]),
                ),
        )
        .broker(new_broker())
        .service_env("c", "billing", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("c", "mailer", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("c", "shop", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
}

/// [`federate_world`]'s three services, under `federate`, with the old broker's AMQP URL in
/// `WARREN_OLD_AMQP_URL`.
fn federate_plan() -> Plan {
    Plan::new()
        .strategy("federate")
        .broker_key("old", "amqp_url_env", "WARREN_OLD_AMQP_URL")
        .service(Declared::new("c", "billing").consumes(&["orders.q"]))
        .service(Declared::new("c", "mailer").consumes(&["invoices.q"]))
        .service(Declared::new("c", "shop").publishes(&["orders.ex"]))
}

#[test]
fn federate_declares_an_upstream_per_vhost_and_a_policy_per_consumed_queue() {
    let json = Scenario::new(&federate_plan(), &federate_world()).plan_json();
    assert_eq!(
        json["federation"],
        serde_json::json!({
            "upstreams": [
                { "vhost": "/", "name": "warren-test-migration", "url_env": "WARREN_OLD_AMQP_URL" },
                { "vhost": "billing", "name": "warren-test-migration", "url_env": "WARREN_OLD_AMQP_URL" },
            ],
            "policies": [
                {
                    "vhost": "/", "name": "warren-federate-orders.q", "pattern": "^orders\\.q$",
                    "apply-to": "queues", "priority": 6,
                    "definition": { "message-ttl": 60000, "federation-upstream": "warren-test-migration" }
                },
                {
                    "vhost": "billing", "name": "warren-federate-invoices.q",
                    "pattern": "^invoices\\.q$", "apply-to": "queues", "priority": 0,
                    "definition": { "federation-upstream": "warren-test-migration" }
                },
            ],
        }),
        "the TTL policy copied before the first wave is kept, one priority above it"
    );
}

#[test]
fn federate_output_shows_what_apply_declares_and_removes() {
    let s = Scenario::new(&federate_plan(), &federate_world());
    let human = s.plan_human();
    let markdown = String::from_utf8(
        s.plan(&["--format", "markdown"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone(),
    )
    .unwrap();
    snapshot_settings("warren plan plan.toml --world world.json (federate_world, federate_plan)")
        .bind(|| insta::assert_snapshot!("federate_human", human));
    snapshot_settings(
        "warren plan plan.toml --world world.json --format markdown (federate_world, federate_plan)",
    )
    .bind(|| insta::assert_snapshot!("federate_markdown", markdown));
}

#[test]
fn upstream_url_env_names_the_url_the_upstream_uses() {
    let plan = federate_plan().broker_key("old", "upstream_url_env", "WARREN_OLD_NLB_URL");
    let json = Scenario::new(&plan, &federate_world()).plan_json();
    assert_eq!(
        json["brokers"]["old"]["upstream_url_env"],
        "WARREN_OLD_NLB_URL"
    );
    for upstream in json["federation"]["upstreams"].as_array().unwrap() {
        assert_eq!(upstream["url_env"], "WARREN_OLD_NLB_URL", "{upstream}");
    }
}

#[test]
fn the_new_brokers_own_policy_is_what_federation_keeps() {
    let policy = serde_json::json!([{
        "vhost": "/", "name": "dlx", "pattern": ".*", "apply-to": "all", "priority": 9,
        "definition": { "dead-letter-exchange": "dlx" }
    }]);
    let world = World::new()
        .broker(old_broker().queue(Queue::new("orders.q")))
        .broker(
            new_broker()
                .queue(Queue::new("orders.q"))
                .field("policies", policy),
        )
        .service_env("c", "billing", &[("SPRING_RABBITMQ_HOST", OLD_HOST)]);
    let plan = Plan::new()
        .strategy("federate")
        .broker_key("old", "amqp_url_env", "WARREN_OLD_AMQP_URL")
        .service(Declared::new("c", "billing").consumes(&["orders.q"]));
    let json = Scenario::new(&plan, &world).plan_json();
    let policy = &json["federation"]["policies"][0];
    assert_eq!(policy["priority"], 10, "{policy}");
    assert_eq!(
        policy["definition"]["dead-letter-exchange"], "dlx",
        "{policy}"
    );
}

#[test]
fn drain_and_plans_that_move_no_consumer_have_no_federation() {
    let drain = Plan::new()
        .broker_key("old", "amqp_url_env", "WARREN_OLD_AMQP_URL")
        .service(Declared::new("c", "billing").consumes(&["orders.q"]));
    let json = Scenario::new(&drain, &federate_world()).plan_json();
    assert!(json.get("federation").is_none(), "{json:#}");

    // Under federate, moving only a publisher federates nothing: no URL is needed either.
    let publisher_only = Plan::new()
        .strategy("federate")
        .service(Declared::new("c", "shop").publishes(&["orders.ex"]));
    let json = Scenario::new(&publisher_only, &federate_world()).plan_json();
    assert!(json.get("federation").is_none(), "{json:#}");
}

#[test]
fn a_federated_queue_that_clients_poll_is_warned_about() {
    let world = World::new()
        .broker(old_broker().queue(Queue::new("orders.q").polled()))
        .broker(
            new_broker()
                .queue(Queue::new("orders.q"))
                .queue(Queue::new("jobs.q")),
        )
        .service_env("c", "billing", &[("SPRING_RABBITMQ_HOST", OLD_HOST)]);
    let plan = |queues: &[&str]| {
        Plan::new()
            .strategy("federate")
            .broker_key("old", "amqp_url_env", "WARREN_OLD_AMQP_URL")
            .service(Declared::new("c", "billing").consumes(queues))
    };
    let json = Scenario::new(&plan(&["orders.q"]), &world).plan_json();
    let polled: Vec<String> = warnings(&json)
        .into_iter()
        .filter(|w| w.contains("polled"))
        .collect();
    assert_eq!(
        polled,
        vec!["queue orders.q is polled (basic.get): a federated queue pulls from the old broker only for consumers attached to it, so a client that polls it on the new broker gets nothing through federation until its publishers move too"]
    );

    // A queue nobody polls, or a polled queue under drain, is not warned about.
    let json = Scenario::new(&plan(&["jobs.q"]), &world).plan_json();
    assert!(!json["warnings"].to_string().contains("polled"), "{json:#}");
    let drain = Plan::new().service(Declared::new("c", "billing").consumes(&["orders.q"]));
    let json = Scenario::new(&drain, &world).plan_json();
    assert!(!json["warnings"].to_string().contains("polled"), "{json:#}");
}

#[test]
fn a_saved_federate_plan_reads_back_as_it_was_saved() {
    let s = Scenario::new(&federate_plan(), &federate_world());
    s.plan(&["--out", "saved.json"]).assert().success();
    let saved: Value = serde_json::from_str(&s.read("saved.json")).unwrap();
    assert_eq!(
        saved["plan"]["federation"]["upstreams"][0]["name"],
        "warren-test-migration"
    );
    let plan: warren::plan::SavedPlan =
        warren::plan::SavedPlan::parse(&s.path("saved.json"), &s.read("saved.json"))
            .expect("a saved federate plan reads back intact");
    assert_eq!(
        serde_json::to_value(&plan.plan).unwrap(),
        saved["plan"],
        "nothing lost or added on the way back"
    );
}
