//! `--stats` and `--max-concurrency` against the local AWS emulator: the calls a plan's state
//! read makes are the minimum (list pages, DescribeServices by ten per cluster, one
//! DescribeTaskDefinition per distinct revision, GetParameters by ten), the bound holds the
//! requests in flight, and the report carries no credential.

#[path = "support/moto.rs"]
mod moto;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use aws_sdk_ecs::types::{ContainerDefinition, KeyValuePair, LaunchType, Secret};

/// The clusters of the seeded world and their number of services: of different sizes, so that
/// DescribeServices batches are full, partial and single.
const CLUSTERS: [(&str, usize); 3] = [("stats-big", 23), ("stats-mid", 7), ("stats-one", 1)];
/// Task definition families, each with [`REVISIONS`] revisions shared by several services.
const FAMILIES: usize = 5;
const REVISIONS: usize = 2;
/// SSM parameters the task definitions read their broker settings from.
const PARAMETERS: usize = 13;
/// The password in the old broker's URL, which must never appear in the report.
const PASSWORD: &str = "st4ts-s3cret";

/// What was seeded: services per cluster and the distinct revisions and parameters they use.
struct Seeded {
    old_broker_id: String,
    services: BTreeMap<&'static str, usize>,
    revisions: BTreeSet<String>,
    parameters: BTreeSet<String>,
}

fn parameter(i: usize) -> String {
    format!("/stats/rabbit/p{i}")
}

/// The parameters revision `k` (0-based over all families and revisions) reads: two, so that
/// together they cover every one of [`PARAMETERS`].
fn parameters_of(k: usize) -> [String; 2] {
    [parameter(k % PARAMETERS), parameter((k + 3) % PARAMETERS)]
}

async fn seed(config: &aws_config::SdkConfig) -> Seeded {
    use aws_sdk_mq::types::{DeploymentMode, EngineType, User};

    let ecs = aws_sdk_ecs::Client::new(config);
    let ssm = aws_sdk_ssm::Client::new(config);
    let mq = aws_sdk_mq::Client::new(config);
    let broker = mq
        .create_broker()
        .broker_name("stats-old")
        .engine_type(EngineType::Rabbitmq)
        .engine_version("3.13")
        .deployment_mode(DeploymentMode::SingleInstance)
        .host_instance_type("mq.m5.large")
        .publicly_accessible(false)
        .auto_minor_version_upgrade(true)
        .users(User::builder().username("admin").password(PASSWORD).build())
        .send()
        .await
        .expect("create_broker");
    for i in 0..PARAMETERS {
        ssm.put_parameter()
            .name(parameter(i))
            .value("mockmq")
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .expect("put_parameter");
    }
    // Revision k of all: family k % FAMILIES, its (k / FAMILIES + 1)th revision.
    let mut arns = Vec::new();
    for revision in 0..REVISIONS {
        for family in 0..FAMILIES {
            let k = revision * FAMILIES + family;
            let mut container = ContainerDefinition::builder()
                .name("app")
                .image(format!("app:{k}"))
                .memory(512)
                .environment(
                    KeyValuePair::builder()
                        .name("RABBIT_URL")
                        .value("amqps://admin@mockmq:5671")
                        .build(),
                );
            for (n, name) in parameters_of(k).iter().enumerate() {
                container = container.secrets(
                    Secret::builder()
                        .name(format!("RABBIT_{n}"))
                        .value_from(name)
                        .build()
                        .unwrap(),
                );
            }
            let registered = ecs
                .register_task_definition()
                .family(format!("stats-f{family}"))
                .container_definitions(container.build())
                .send()
                .await
                .expect("register_task_definition");
            arns.push(
                registered
                    .task_definition()
                    .and_then(|t| t.task_definition_arn())
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    let mut services = BTreeMap::new();
    let mut revisions = BTreeSet::new();
    let mut i = 0;
    for (cluster, count) in CLUSTERS {
        ecs.create_cluster()
            .cluster_name(cluster)
            .send()
            .await
            .expect("create_cluster");
        for n in 0..count {
            // Every (family, revision) pair in turn: each revision is shared by services.
            let k = i % (FAMILIES * REVISIONS);
            i += 1;
            ecs.create_service()
                .cluster(cluster)
                .service_name(format!("{cluster}-svc-{n}"))
                .task_definition(&arns[k])
                .desired_count(1)
                .launch_type(LaunchType::Fargate)
                .send()
                .await
                .expect("create_service");
            revisions.insert(arns[k].clone());
        }
        services.insert(cluster, count);
    }
    let parameters = (0..FAMILIES * REVISIONS)
        .filter(|k| revisions.contains(&arns[*k]))
        .flat_map(parameters_of)
        .collect();
    Seeded {
        old_broker_id: broker.broker_id().unwrap().to_owned(),
        services,
        revisions,
        parameters,
    }
}

/// The plan file for the seeded world; with `management`, the old broker's management URL
/// (with its password) comes from `WARREN_STATS_OLD_MGMT_URL`.
fn write_plan(seeded: &Seeded, dir: &Path, management: bool) -> std::path::PathBuf {
    let clusters: Vec<String> = CLUSTERS.iter().map(|(c, _)| format!("\"{c}\"")).collect();
    let plan = format!(
        r#"[migration]
name = "stats"
region = "eu-west-2"
clusters = [{}]

[brokers.old]
id = "{}"
{}

[brokers.new]
endpoints = ["amqps://b-2222.mq.eu-west-2.amazonaws.com:5671"]

[[services]]
cluster = "stats-one"
name = "stats-one-svc-0"
broker = "new"
"#,
        clusters.join(", "),
        seeded.old_broker_id,
        if management {
            "management_url_env = \"WARREN_STATS_OLD_MGMT_URL\""
        } else {
            ""
        }
    );
    let path = dir.join(format!("stats-{management}.toml"));
    std::fs::write(&path, plan).unwrap();
    path
}

/// The `Calls:` lines of a `--stats` report: name → (calls, retries).
fn calls(stderr: &str) -> BTreeMap<String, (u64, u64)> {
    let mut calls = BTreeMap::new();
    let mut lines = stderr.lines().skip_while(|l| *l != "Calls:").skip(1);
    for line in lines.by_ref().take_while(|l| l.starts_with("  ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words
            .iter()
            .position(|w| *w == "call" || *w == "calls")
            .unwrap_or_else(|| panic!("no count in {line:?}"));
        let retries = words
            .iter()
            .position(|w| w.starts_with("retr"))
            .map_or(0, |i| words[i - 1].parse().unwrap());
        calls.insert(
            words[..at - 1].join(" "),
            (words[at - 1].parse().unwrap(), retries),
        );
    }
    calls
}

/// The most AWS requests in flight, from the report's last line.
fn peak(stderr: &str) -> usize {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("AWS requests in flight at most: "))
        .unwrap_or_else(|| panic!("no peak in {stderr}"));
    line["AWS requests in flight at most: ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn plan(moto: &moto::Moto, plan: &Path, extra: &[&str]) -> String {
    let mut args = vec!["plan", plan.to_str().unwrap(), "--stats"];
    args.extend_from_slice(extra);
    let out = moto
        .warren()
        .env(
            "WARREN_STATS_OLD_MGMT_URL",
            format!("http://admin:{PASSWORD}@127.0.0.1:9/"),
        )
        .args(&args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains("Calls:\n"),
        "{}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_of_a_failed_run_names_endpoints_without_credentials() {
    let moto = moto::shared();
    let config = moto.sdk_config().await;
    let seeded = seed(&config).await;
    let dir = tempfile::tempdir().unwrap();
    // The management URL, with its password, answers nothing: the plan fails on it.
    let stderr = plan(&moto, &write_plan(&seeded, dir.path(), true), &[]);
    assert!(stderr.contains("error: "), "{stderr}");
    let calls = calls(&stderr);
    assert_eq!(calls.get("GET /api/overview"), Some(&(1, 0)), "{stderr}");
    let report = &stderr[stderr.find("Calls:").unwrap()..];
    for secret in [PASSWORD, "admin:", "127.0.0.1", "test"] {
        assert!(!report.contains(secret), "{secret} in {report}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_reads_the_state_with_the_fewest_calls_and_a_bounded_number_in_flight() {
    let moto = moto::shared();
    let config = moto.sdk_config().await;
    let seeded = seed(&config).await;
    let dir = tempfile::tempdir().unwrap();
    let plan_file = write_plan(&seeded, dir.path(), false);

    let stderr = plan(&moto, &plan_file, &[]);
    let calls = calls(&stderr);
    let count = |name: &str| calls.get(name).map_or(0, |c| c.0);
    let describe_services: usize = seeded.services.values().map(|n| n.div_ceil(10)).sum();
    let list_pages: usize = seeded.services.values().map(|n| n.div_ceil(100)).sum();
    assert_eq!(count("ecs:DescribeClusters"), 1, "{stderr}");
    assert_eq!(count("ecs:ListServices") as usize, list_pages, "{stderr}");
    assert_eq!(
        count("ecs:DescribeServices") as usize,
        describe_services,
        "{stderr}"
    );
    assert_eq!(
        count("ecs:DescribeTaskDefinition") as usize,
        seeded.revisions.len(),
        "{stderr}"
    );
    assert_eq!(
        count("ssm:GetParameters") as usize,
        seeded.parameters.len().div_ceil(10),
        "{stderr}"
    );
    assert_eq!(count("mq:ListBrokers"), 1, "{stderr}");
    // Calls run side by side, never more than the default bound.
    let side_by_side = peak(&stderr);
    assert!(
        side_by_side > 2 && side_by_side <= 8,
        "peak {side_by_side}: {stderr}"
    );

    let bounded = plan(&moto, &plan_file, &["--max-concurrency", "2"]);
    let bounded_peak = peak(&bounded);
    assert!(
        (1..=2).contains(&bounded_peak),
        "peak {bounded_peak}: {bounded}"
    );
    assert!(bounded.contains("(--max-concurrency 2)"), "{bounded}");
    // The same calls, only fewer at once.
    assert_eq!(
        self::calls(&bounded)
            .into_iter()
            .filter(|(name, _)| !name.starts_with("GET "))
            .map(|(name, (n, _))| (name, n))
            .collect::<BTreeMap<_, _>>(),
        calls
            .into_iter()
            .filter(|(name, _)| !name.starts_with("GET "))
            .map(|(name, (n, _))| (name, n))
            .collect::<BTreeMap<_, _>>()
    );
}

#[test]
fn without_the_flag_nothing_is_reported_and_a_rehearsal_says_it_made_no_aws_call() {
    let world = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/esr-incident/world.json"
    );
    let plan = concat!(env!("CARGO_MANIFEST_DIR"), "/plans/esr-incident.toml");
    let run = |stats: bool| {
        let mut command = assert_cmd::Command::new(env!("CARGO_BIN_EXE_warren"));
        command.args(["plan", plan, "--world", world]);
        if stats {
            command.arg("--stats");
        }
        command.output().unwrap()
    };
    let quiet = String::from_utf8(run(false).stderr).unwrap();
    assert!(!quiet.contains("Calls:"), "{quiet}");
    let out = run(true);
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(calls(&stderr).get("world:read"), Some(&(1, 0)), "{stderr}");
    assert!(stderr.ends_with("No AWS call was made.\n"), "{stderr}");
    // A failing command reports too.
    let out = assert_cmd::Command::new(env!("CARGO_BIN_EXE_warren"))
        .args([
            "plan",
            plan,
            "--world",
            "/nonexistent/world.json",
            "--stats",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("error: "), "{stderr}");
    assert!(stderr.contains("Calls:\n"), "{stderr}");
}
