//! What warren does with input it cannot use, seen from the command line: usage errors exit 1
//! (2 belongs to `plan --detailed-exitcode`), numbers out of range and entries listed twice in
//! a world file are refused when the file is read, before anything changes, naming the file,
//! the key and what is allowed.

mod common;

use common::{
    new_broker, old_broker, pretty, warren, Declared, Plan, Queue, Scenario, Service, TaskDef,
    World, OLD_HOST,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Usage errors, help and version
// ---------------------------------------------------------------------------------------------

#[test]
fn usage_errors_exit_1_never_2() {
    let cases: &[&[&str]] = &[
        &["plan", "--no-such-flag"],
        &["plan"],
        &["frobnicate"],
        &[],
        &["plan", "plan.toml", "--format", "yaml"],
        &["apply", "plan.toml", "--rollout-timeout", "soon"],
        &["decommission", "plan.toml"],
    ];
    for args in cases {
        let output = warren().args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(String::from_utf8_lossy(&output.stdout), "", "{args:?}");
        // clap's own message: an error, or (no command at all) the usage.
        assert!(
            stderr.starts_with("error:") || stderr.contains("Usage:"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn help_and_version_exit_0_on_stdout() {
    let cases: &[&[&str]] = &[
        &["--help"],
        &["-h"],
        &["plan", "--help"],
        &["help", "apply"],
        &["--version"],
        &["-V"],
    ];
    for args in cases {
        let output = warren().args(*args).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&output.stderr), "", "{args:?}");
        assert!(
            stdout.contains("warren") || stdout.contains("Usage:"),
            "{args:?}: {stdout}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------------

/// Services `c/api` and `c/export`, both on the old broker, whose queue `q` drains at once.
fn world() -> World {
    World::new()
        .broker(old_broker().queue(Queue::new("q").consumers(1)))
        .broker(new_broker())
        .service_env("c", "api", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("c", "export", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
}

/// Moves both services of [`world`].
fn plan() -> String {
    Plan::new()
        .service(Declared::new("c", "api"))
        .service(Declared::new("c", "export"))
        .to_toml()
}

/// [`world`]'s JSON with `change` applied.
fn world_with(change: impl FnOnce(&mut Value)) -> String {
    let mut json = world().to_json();
    change(&mut json);
    pretty(&json)
}

/// Runs `args` against a scenario whose world file is `world_text`; checks that warren exits 1
/// naming `world.json` and `key` (and each of `also`) on one line, that nothing went to stdout
/// and that the world file is untouched. Returns stderr.
fn refused(world_text: &str, args: &[&str], key: &str, also: &[&str]) -> String {
    let scenario = Scenario::from_texts(&plan(), world_text);
    let output = scenario.warren(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{key}: {stderr}");
    assert!(!stderr.contains("panicked"), "{key}: {stderr}");
    assert!(stderr.starts_with("error: world.json"), "{key}: {stderr}");
    assert!(stderr.contains(&format!("key `{key}`")), "{key}: {stderr}");
    for text in also {
        assert!(stderr.contains(text), "{key}: expected {text:?}: {stderr}");
    }
    assert_eq!(stderr.lines().count(), 1, "{key}: {stderr}");
    assert_eq!(
        scenario.read("world.json"),
        world_text,
        "{key}: world changed"
    );
    stderr
}

/// The key an error must name, a change to [`world`]'s JSON, and a text the error must hold.
type Case = (&'static str, Box<dyn FnOnce(&mut Value)>, &'static str);

const APPLY: &[&str] = &[
    "apply",
    "plan.toml",
    "--world",
    "world.json",
    "--auto-approve",
    "--rollout-timeout",
    "2",
];
const PLAN: &[&str] = &["plan", "plan.toml", "--world", "world.json"];

#[test]
fn a_rollout_of_1e300_seconds_is_refused_before_any_service_moves() {
    let text = world_with(|w| w["clusters"][0]["services"][1]["rollout_seconds"] = json!(1e300));
    refused(
        &text,
        APPLY,
        "clusters[0].services[1].rollout_seconds",
        &["604800"],
    );
}

#[test]
fn numbers_out_of_range_in_the_world_file_are_refused_naming_key_and_range() {
    let service = |w: &mut Value, field: &str, value: Value| {
        w["clusters"][0]["services"][0][field] = value;
    };
    let cases: Vec<Case> = vec![
        (
            "clusters[0].services[0].rollout_seconds",
            Box::new(move |w| service(w, "rollout_seconds", json!(-1))),
            "from 0 to 604800",
        ),
        (
            "clusters[0].services[0].rollout_seconds",
            Box::new(move |w| service(w, "rollout_seconds", json!(604_801))),
            "from 0 to 604800",
        ),
        (
            "clusters[0].services[0].desired",
            Box::new(move |w| service(w, "desired", json!(2_000_000))),
            "from 0 to 1000000",
        ),
        (
            "clusters[0].services[0].running",
            Box::new(move |w| service(w, "running", json!(-3))),
            "from 0 to 1000000",
        ),
        (
            "task_definitions[0].revision",
            Box::new(|w| w["task_definitions"][0]["revision"] = json!(0)),
            "from 1 to 1000000",
        ),
        (
            "task_definitions[1].revision",
            Box::new(|w| {
                w["task_definitions"][1]["revision"] = json!(u32::MAX);
                w["clusters"][0]["services"][1]["task_definition"] =
                    json!(format!("export:{}", u32::MAX));
            }),
            "from 1 to 1000000",
        ),
        (
            "brokers[0].queues[0].messages",
            Box::new(|w| w["brokers"][0]["queues"][0]["messages"] = json!(1u64 << 60)),
            "from 0 to 9007199254740991",
        ),
        (
            "parameter_versions./p",
            Box::new(|w| w["parameter_versions"] = json!({ "/p": -1 })),
            "from 1 to 9007199254740991",
        ),
    ];
    for (key, change, range) in cases {
        let text = world_with(change);
        refused(&text, PLAN, key, &[range]);
        refused(&text, APPLY, key, &[range]);
    }
}

#[test]
fn timeouts_beyond_seven_days_are_usage_errors() {
    for flag in ["--rollout-timeout", "--drain-timeout"] {
        let scenario = Scenario::from_texts(&plan(), &pretty(&world().to_json()));
        let before = scenario.read("world.json");
        let output = scenario
            .warren(&[
                "apply",
                "plan.toml",
                "--world",
                "world.json",
                "--auto-approve",
                flag,
                "604801",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{flag}: {stderr}");
        assert!(stderr.contains(flag), "{flag}: {stderr}");
        assert!(stderr.contains("604800"), "{flag}: {stderr}");
        assert_eq!(scenario.read("world.json"), before, "{flag}: world changed");
    }
}

// ---------------------------------------------------------------------------------------------
// Entries listed twice
// ---------------------------------------------------------------------------------------------

#[test]
fn entries_listed_twice_in_the_world_file_are_refused_naming_them() {
    let duplicate = |list: &str, index: usize| {
        let list = list.to_owned();
        move |w: &mut Value| {
            let copy = w[&list][index].clone();
            w[&list].as_array_mut().unwrap().push(copy);
        }
    };
    let cases: Vec<Case> = vec![
        (
            "task_definitions[2]",
            Box::new(duplicate("task_definitions", 0)),
            "task definition api:1",
        ),
        (
            "clusters[1]",
            Box::new(duplicate("clusters", 0)),
            "cluster \"c\"",
        ),
        (
            "brokers[2]",
            Box::new(|w| {
                let mut copy = w["brokers"][1].clone();
                copy["name"] = json!("another-name");
                w["brokers"].as_array_mut().unwrap().push(copy);
            }),
            "broker id \"b-2222\"",
        ),
        (
            "clusters[0].services[2]",
            Box::new(|w| {
                let mut copy = w["clusters"][0]["services"][0].clone();
                copy["desired"] = json!(3);
                w["clusters"][0]["services"]
                    .as_array_mut()
                    .unwrap()
                    .push(copy);
            }),
            "service c/api",
        ),
        (
            "task_definitions[0].containers[1]",
            Box::new(|w| {
                let copy = w["task_definitions"][0]["containers"][0].clone();
                w["task_definitions"][0]["containers"]
                    .as_array_mut()
                    .unwrap()
                    .push(copy);
            }),
            "container \"app\"",
        ),
        (
            "brokers[0].queues[1]",
            Box::new(|w| {
                let copy = w["brokers"][0]["queues"][0].clone();
                w["brokers"][0]["queues"].as_array_mut().unwrap().push(copy);
            }),
            "queue \"q\"",
        ),
    ];
    for (key, change, entry) in cases {
        let text = world_with(change);
        refused(&text, PLAN, key, &[entry, "more than once"]);
        refused(&text, APPLY, key, &[entry, "more than once"]);
    }
}

#[test]
fn a_parameter_or_variable_listed_twice_is_refused_naming_it() {
    // JSON objects can repeat a key; a parser that keeps the last would hide the first.
    let base = pretty(
        &World::new()
            .broker(old_broker())
            .broker(new_broker())
            .parameter("/esr/rabbit/host", OLD_HOST)
            .service("c", Service::new("api", "api:1"))
            .task_definition(
                TaskDef::new("api", 1)
                    .container("app")
                    .env("SPRING_RABBITMQ_HOST", OLD_HOST)
                    .secret("RABBIT_HOST", "/esr/rabbit/host"),
            )
            .to_json(),
    );
    let parameter = format!("\"/esr/rabbit/host\": \"{OLD_HOST}\"");
    let twice = base.replacen(
        &parameter,
        &format!("{parameter},\n    \"/esr/rabbit/host\": \"b-2222.mq.example.com\""),
        1,
    );
    assert_ne!(twice, base);
    refused(
        &twice,
        PLAN,
        "parameters",
        &["\"/esr/rabbit/host\"", "more than once"],
    );

    let variable = format!("\"SPRING_RABBITMQ_HOST\": \"{OLD_HOST}\"");
    let twice = base.replacen(
        &variable,
        &format!("{variable},\n            \"SPRING_RABBITMQ_HOST\": \"elsewhere\""),
        1,
    );
    assert_ne!(twice, base);
    refused(
        &twice,
        PLAN,
        "task_definitions[0].containers[0].environment",
        &["\"SPRING_RABBITMQ_HOST\"", "more than once"],
    );
}

// ---------------------------------------------------------------------------------------------
// Saved plans
// ---------------------------------------------------------------------------------------------

/// A scenario with `saved.json` written by `warren plan --out`, and that plan's JSON.
fn saved_scenario() -> (Scenario, Value) {
    let scenario = Scenario::from_texts(&plan(), &pretty(&world().to_json()));
    scenario
        .warren(&[
            "plan",
            "plan.toml",
            "--world",
            "world.json",
            "--out",
            "saved.json",
        ])
        .assert()
        .success();
    let saved = serde_json::from_str(&scenario.read("saved.json")).unwrap();
    (scenario, saved)
}

const APPLY_SAVED: &[&str] = &[
    "apply",
    "saved.json",
    "--world",
    "world.json",
    "--auto-approve",
];

#[test]
fn a_saved_plan_naming_a_wave_it_does_not_have_is_refused_even_with_a_matching_checksum() {
    // The checksum catches accidents; a saved plan edited and resealed on purpose must still
    // make sense before anything changes.
    for (list, field) in [("changes", "wave"), ("drains", "wave")] {
        let (scenario, mut saved) = saved_scenario();
        if saved["plan"][list].as_array().unwrap().is_empty() {
            saved["plan"][list] =
                json!([{ "wave": 1, "broker": "old", "vhost": "/", "queue": "q" }]);
        }
        saved["plan"][list][0][field] = json!(99);
        let plan: warren::plan::Plan = serde_json::from_value(saved["plan"].clone()).unwrap();
        let plan_file = saved["plan_file"].as_str().unwrap();
        let resealed =
            warren::plan::SavedPlan::new(plan).made_from(std::path::Path::new(plan_file));
        scenario.write(
            "saved.json",
            &serde_json::to_string_pretty(&resealed).unwrap(),
        );
        let before = scenario.read("world.json");
        let output = scenario.warren(APPLY_SAVED).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{list}: {stderr}");
        assert!(
            stderr.starts_with(&format!(
                "error: saved.json: key `plan.{list}[0].wave`: wave 99 is out of range"
            )),
            "{list}: {stderr}"
        );
        assert_eq!(scenario.read("world.json"), before, "{list}: world changed");
    }
}

#[test]
fn a_saved_plan_that_is_not_one_names_the_line_and_key() {
    let (scenario, mut saved) = saved_scenario();
    saved["plan"]["waves"] = json!("all at once");
    scenario.write("saved.json", &pretty(&saved));
    let output = scenario.warren(APPLY_SAVED).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: saved.json:"), "{stderr}");
    assert!(stderr.contains("key `plan.waves`"), "{stderr}");
    assert!(!stderr.contains(" at line "), "{stderr}");
}
