//! Plan and world files that `warren plan` must refuse: exit 1, nothing on stdout, one line on
//! stderr that names the file, the line where there is one, and the key; never a panic.

mod common;

use common::{new_broker, old_broker, snapshot_settings, Scenario, World, OLD_HOST};

/// One bad input and what the error must name.
struct Case {
    name: &'static str,
    /// The plan file, as written.
    plan: &'static str,
    /// The world file warren is given.
    world: WorldFile,
    /// The file the error names, as given on the command line.
    file: &'static str,
    /// The line the error points at, where the file has one.
    line: Option<usize>,
    /// The key the error names (`None`: a TOML or JSON syntax error, or a file that is missing).
    key: Option<&'static str>,
}

enum WorldFile {
    /// [`world`], written as `world.json`.
    Good,
    /// `--world missing.json`, which does not exist.
    Missing,
    /// `world.json` with this text.
    Text(&'static str),
    /// This world, written as `world.json`.
    Built(fn() -> World),
}

/// Cluster `c` with services `api` (on the old broker) and `export`; cluster `batch` with none.
fn world() -> World {
    World::new()
        .broker(old_broker())
        .broker(new_broker())
        .service_env("c", "api", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .service_env("c", "export", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
        .cluster("batch")
}

/// [`world`] with the old broker an Amazon MQ broker that is not publicly accessible.
fn private_old_broker() -> World {
    World::new()
        .broker(old_broker().field("publicly_accessible", serde_json::json!(false)))
        .broker(new_broker())
        .service_env("c", "api", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
}

/// [`world`] with the new broker live: the world file does not list its queues.
fn live_new_broker() -> World {
    World::new()
        .broker(old_broker())
        .broker(new_broker().live())
        .service_env("c", "api", &[("SPRING_RABBITMQ_HOST", OLD_HOST)])
}

/// A plan that is fine against [`world`]; the cases below change one thing each.
const GOOD: &str = r#"[migration]
name = "m"

[brokers.old]
id = "b-1111"

[brokers.new]
id = "b-2222"

[[services]]
cluster = "c"
name = "api"
broker = "new"
"#;

fn cases() -> Vec<Case> {
    use WorldFile::{Built, Good, Missing, Text};
    let plan_case = |name, plan, line, key| Case {
        name,
        plan,
        world: Good,
        file: "plan.toml",
        line: Some(line),
        key,
    };
    vec![
        plan_case(
            "TOML syntax error",
            "[migration]\nname = \"m\n\n[brokers.old]\nid = \"b-1111\"\n",
            2,
            None,
        ),
        plan_case(
            "unknown top-level key",
            "colour = \"red\"\n[migration]\nname = \"m\"\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\nid = \"b-2222\"\n",
            1,
            Some("colour"),
        ),
        plan_case(
            "unknown key in [migration]",
            "[migration]\nname = \"m\"\nregoin = \"eu-west-2\"\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\nid = \"b-2222\"\n",
            3,
            Some("migration.regoin"),
        ),
        plan_case(
            "missing migration.name",
            "[migration]\nregion = \"eu-west-2\"\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\nid = \"b-2222\"\n",
            1,
            Some("migration.name"),
        ),
        plan_case(
            "empty migration.name",
            "[migration]\nname = \" \"\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\nid = \"b-2222\"\n",
            2,
            Some("migration.name"),
        ),
        plan_case(
            "clusters is not a list",
            "[migration]\nname = \"m\"\nclusters = \"c\"\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\nid = \"b-2222\"\n",
            3,
            Some("migration.clusters"),
        ),
        plan_case(
            "clusters is an empty list (it would scan nothing)",
            "[migration]\nname = \"m\"\nclusters = []\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\nid = \"b-2222\"\n",
            3,
            Some("migration.clusters"),
        ),
        plan_case(
            "broker_env is an empty list (it would search nothing)",
            "[migration]\nname = \"m\"\nbroker_env = []\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\nid = \"b-2222\"\n",
            3,
            Some("migration.broker_env"),
        ),
        plan_case(
            "unknown strategy",
            "[migration]\nname = \"m\"\nstrategy = \"fast\"\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\nid = \"b-2222\"\n",
            3,
            Some("migration.strategy"),
        ),
        plan_case(
            "unknown broker alias in a service",
            "[migration]\nname = \"m\"\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\nid = \"b-2222\"\n\
             [[services]]\ncluster = \"c\"\nname = \"api\"\nbroker = \"newer\"\n",
            10,
            Some("services[0].broker"),
        ),
        plan_case(
            "service without a broker",
            "[migration]\nname = \"m\"\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\nid = \"b-2222\"\n\
             [[services]]\ncluster = \"c\"\nname = \"api\"\n",
            7,
            Some("services[0].broker"),
        ),
        plan_case(
            "unknown key in a service",
            "[migration]\nname = \"m\"\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\nid = \"b-2222\"\n\
             [[services]]\ncluster = \"c\"\nname = \"api\"\nbroker = \"new\"\npublish = [\"ex\"]\n",
            11,
            Some("services[0].publish"),
        ),
        plan_case(
            "a third broker alias",
            "[migration]\nname = \"m\"\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\nid = \"b-2222\"\n[brokers.middle]\nid = \"b-3333\"\n",
            7,
            Some("brokers.middle"),
        ),
        plan_case(
            "no [brokers.new]",
            "[migration]\nname = \"m\"\n[brokers.old]\nid = \"b-1111\"\n",
            3,
            Some("brokers.new"),
        ),
        plan_case(
            "unknown key in a broker",
            "[migration]\nname = \"m\"\n[brokers.old]\nid = \"b-1111\"\nurl = \"amqps://x\"\n[brokers.new]\nid = \"b-2222\"\n",
            5,
            Some("brokers.old.url"),
        ),
        plan_case(
            "broker named by id and by name",
            "[migration]\nname = \"m\"\n[brokers.old]\nid = \"b-1111\"\nname = \"esr-rabbit-old\"\n[brokers.new]\nid = \"b-2222\"\n",
            3,
            Some("brokers.old"),
        ),
        plan_case(
            "broker named neither way",
            "[migration]\nname = \"m\"\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\namqp_url_env = \"WARREN_NEW_AMQP_URL\"\n",
            5,
            Some("brokers.new"),
        ),
        plan_case(
            "broker endpoint that is not a URL",
            "[migration]\nname = \"m\"\n[brokers.old]\nendpoints = [\"not a url\"]\n[brokers.new]\nid = \"b-2222\"\n",
            4,
            Some("brokers.old.endpoints"),
        ),
        plan_case(
            "broker id that does not exist",
            "[migration]\nname = \"m\"\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\nid = \"b-9999\"\n",
            5,
            Some("brokers.new"),
        ),
        plan_case(
            "old and new are the same broker",
            "[migration]\nname = \"m\"\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\nname = \"esr-rabbit-old\"\n",
            5,
            Some("brokers.new"),
        ),
        plan_case(
            "service listed twice",
            "[migration]\nname = \"m\"\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\nid = \"b-2222\"\n\
             [[services]]\ncluster = \"c\"\nname = \"api\"\nbroker = \"new\"\n\
             [[services]]\ncluster = \"c\"\nname = \"api\"\nbroker = \"old\"\n",
            13,
            Some("services[1].name"),
        ),
        plan_case(
            "service that does not exist",
            "[migration]\nname = \"m\"\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\nid = \"b-2222\"\n\
             [[services]]\ncluster = \"c\"\nname = \"ghost\"\nbroker = \"new\"\n",
            9,
            Some("services[0].name"),
        ),
        plan_case(
            "service in a cluster that does not exist",
            "[migration]\nname = \"m\"\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\nid = \"b-2222\"\n\
             [[services]]\ncluster = \"nowhere\"\nname = \"api\"\nbroker = \"new\"\n",
            8,
            Some("services[0].cluster"),
        ),
        plan_case(
            "service in a cluster the plan does not scan",
            "[migration]\nname = \"m\"\nclusters = [\"batch\"]\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\nid = \"b-2222\"\n\
             [[services]]\ncluster = \"c\"\nname = \"api\"\nbroker = \"new\"\n",
            9,
            Some("services[0].cluster"),
        ),
        plan_case(
            "migration.clusters names a cluster that does not exist",
            "[migration]\nname = \"m\"\nclusters = [\"c\",\n  \"nowhere\"]\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\nid = \"b-2222\"\n",
            4,
            Some("migration.clusters[1]"),
        ),
        plan_case(
            "empty parameter name",
            "[migration]\nname = \"m\"\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\nid = \"b-2222\"\n[parameters]\n\"/esr/rabbit/host\" = \"\"\n",
            8,
            Some("parameters.\"/esr/rabbit/host\""),
        ),
        plan_case(
            "upstream_url_env on the new broker",
            "[migration]\nname = \"m\"\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\nid = \"b-2222\"\nupstream_url_env = \"WARREN_NEW_URL\"\n",
            7,
            Some("brokers.new.upstream_url_env"),
        ),
        plan_case(
            "empty upstream_url_env",
            "[migration]\nname = \"m\"\n[brokers.old]\nid = \"b-1111\"\nupstream_url_env = \" \"\n[brokers.new]\nid = \"b-2222\"\n",
            5,
            Some("brokers.old.upstream_url_env"),
        ),
        plan_case(
            "federate without the old broker's AMQP URL",
            "[migration]\nname = \"m\"\nstrategy = \"federate\"\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\nid = \"b-2222\"\n\
             [[services]]\ncluster = \"c\"\nname = \"api\"\nbroker = \"new\"\nconsumes = [\"q\"]\n",
            4,
            Some("brokers.old"),
        ),
        Case {
            name: "federate from a private Amazon MQ broker without upstream_url_env",
            plan: "[migration]\nname = \"m\"\nstrategy = \"federate\"\n[brokers.old]\nid = \"b-1111\"\namqp_url_env = \"WARREN_OLD_AMQP_URL\"\n[brokers.new]\nid = \"b-2222\"\n\
                   [[services]]\ncluster = \"c\"\nname = \"api\"\nbroker = \"new\"\nconsumes = [\"q\"]\n",
            world: Built(private_old_broker),
            file: "plan.toml",
            line: Some(4),
            key: Some("brokers.old"),
        },
        Case {
            name: "federate to a new broker whose management API is out of reach",
            plan: "[migration]\nname = \"m\"\nstrategy = \"federate\"\n[brokers.old]\nid = \"b-1111\"\namqp_url_env = \"WARREN_OLD_AMQP_URL\"\n[brokers.new]\nid = \"b-2222\"\n\
                   [[services]]\ncluster = \"c\"\nname = \"api\"\nbroker = \"new\"\nconsumes = [\"q\"]\n",
            world: Built(live_new_broker),
            file: "plan.toml",
            line: Some(7),
            key: Some("brokers.new"),
        },
        Case {
            name: "world file that does not exist",
            plan: GOOD,
            world: Missing,
            file: "missing.json",
            line: None,
            key: None,
        },
        Case {
            name: "world file with a JSON syntax error",
            plan: GOOD,
            world: Text("{\n  \"version\": 1,\n  \"brokers\": [\n    { \"id\": \"b-1111\" },\n  ]\n}\n"),
            file: "world.json",
            line: Some(5),
            key: Some("brokers"),
        },
        Case {
            name: "world file with a value of the wrong type",
            plan: GOOD,
            world: Text("{\n  \"version\": 1,\n  \"clusters\": [\n    { \"name\": \"c\", \"services\": {} }\n  ]\n}\n"),
            file: "world.json",
            line: Some(4),
            key: Some("clusters[0].services"),
        },
        Case {
            name: "world file of another version",
            plan: GOOD,
            world: Text("{ \"version\": 2 }\n"),
            file: "world.json",
            line: None,
            key: Some("version"),
        },
    ]
}

/// Runs one case; returns its stderr, after checking everything the case promises.
fn check(case: &Case) -> String {
    let scenario = Scenario::with_plan_text(case.plan, &world());
    let world_arg = match case.world {
        WorldFile::Good => "world.json",
        WorldFile::Missing => "missing.json",
        WorldFile::Text(text) => {
            scenario.write("world.json", text);
            "world.json"
        }
        WorldFile::Built(world) => {
            scenario.write("world.json", &common::pretty(&world().to_json()));
            "world.json"
        }
    };
    let output = scenario
        .warren(&["plan", "plan.toml", "--world", world_arg])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    let name = case.name;
    assert_eq!(
        output.status.code(),
        Some(1),
        "{name}: exit code; stderr: {stderr}"
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "",
        "{name}: stdout"
    );
    for panic_text in ["panicked", "RUST_BACKTRACE"] {
        assert!(
            !stderr.contains(panic_text),
            "{name}: looks like a panic: {stderr}"
        );
    }
    assert_eq!(stderr.lines().count(), 1, "{name}: one line: {stderr}");
    let location = match case.line {
        Some(line) => format!("error: {}:{line}:", case.file),
        None => format!("error: {}: ", case.file),
    };
    assert!(
        stderr.starts_with(&location),
        "{name}: expected {location:?}, got: {stderr}"
    );
    match case.key {
        Some(key) => assert!(
            stderr.contains(&format!("key `{key}`: ")),
            "{name}: expected key `{key}`: {stderr}"
        ),
        None => assert!(!stderr.contains("key `"), "{name}: names no key: {stderr}"),
    }
    stderr
}

#[test]
fn bad_inputs_are_refused_with_file_line_and_key() {
    let mut messages = String::new();
    for case in cases() {
        let stderr = check(&case);
        messages.push_str(&format!("{}:\n  {}\n", case.name, stderr.trim_end()));
    }
    // All messages in one place, to be read like the rest of the user interface.
    snapshot_settings("the one line that warren plan prints on stderr for each bad input")
        .bind(|| insta::assert_snapshot!("bad_input_messages", messages));
}

#[test]
fn the_good_plan_that_the_cases_start_from_is_accepted() {
    // Otherwise a case could fail for a reason it does not name.
    let scenario = Scenario::with_plan_text(GOOD, &world());
    scenario.plan(&[]).assert().success().stderr("");
}

#[test]
fn a_plan_file_that_does_not_exist_is_named() {
    let scenario = Scenario::with_plan_text(GOOD, &world());
    scenario
        .warren(&["plan", "missing.toml", "--world", "world.json"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicates::str::starts_with("error: missing.toml: "));
}

#[test]
fn a_private_old_broker_federates_through_upstream_url_env() {
    let plan = "[migration]\nname = \"m\"\nstrategy = \"federate\"\n[brokers.old]\nid = \"b-1111\"\n\
                upstream_url_env = \"WARREN_OLD_NLB_URL\"\n[brokers.new]\nid = \"b-2222\"\n\
                [[services]]\ncluster = \"c\"\nname = \"api\"\nbroker = \"new\"\nconsumes = [\"q\"]\n";
    let scenario = Scenario::with_plan_text(plan, &private_old_broker());
    let json = scenario.plan_json();
    assert_eq!(
        json["federation"]["upstreams"][0]["url_env"], "WARREN_OLD_NLB_URL",
        "{json:#}"
    );
}

#[test]
fn a_live_new_broker_with_a_management_url_is_not_refused_for_federation() {
    // Its variable unset, the new broker is not read: planned, with its policies unknown.
    let plan = "[migration]\nname = \"m\"\nstrategy = \"federate\"\n[brokers.old]\nid = \"b-1111\"\n\
                amqp_url_env = \"WARREN_OLD_AMQP_URL\"\n[brokers.new]\nid = \"b-2222\"\n\
                management_url_env = \"WARREN_TEST_UNSET_MGMT_URL\"\n\
                [[services]]\ncluster = \"c\"\nname = \"api\"\nbroker = \"new\"\nconsumes = [\"q\"]\n";
    let scenario = Scenario::with_plan_text(plan, &live_new_broker());
    let output = scenario
        .plan(&["--format", "json"])
        .env_remove("WARREN_TEST_UNSET_MGMT_URL")
        .assert()
        .success()
        .get_output()
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        json["federation"]["policies"][0]["name"], "warren-federate-q",
        "{json:#}"
    );
    assert!(
        json["warnings"]
            .to_string()
            .contains("the new broker b-2222's policies are unknown"),
        "{json:#}"
    );
}
