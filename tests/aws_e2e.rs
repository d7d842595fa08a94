//! warren against a real local AWS emulator (moto's server) seeded with the incident example,
//! and a real RabbitMQ node standing in for the old broker's management API: `plan`, `apply`,
//! `decommission`, `snapshot` and the team lock, through the built binary.

#[path = "support/moto.rs"]
mod moto;
#[path = "support/rabbit.rs"]
#[allow(dead_code)]
mod rabbit;
#[path = "support/seed.rs"]
mod seed;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use aws_sdk_ecs::types::TaskDefinitionField;
use serde_json::Value;

/// The environment variable the incident plan names for the old broker's management API.
const OLD_MGMT_ENV: &str = "WARREN_OLD_MGMT_URL";
/// The environment variable the incident plan names for the new broker's management API.
const NEW_MGMT_ENV: &str = "WARREN_NEW_MGMT_URL";
const NEW_HOST: &str = "b-2222.mq.eu-west-2.amazonaws.com";

/// One RabbitMQ node for the whole binary, holding the old broker's queues. The emulator gives
/// every broker the host `mockmq`, so the node names itself after the seeded old broker
/// (its cluster name), which is how warren takes its management URL as the old broker's.
fn old_broker() -> &'static rabbit::RabbitNode {
    static NODE: std::sync::OnceLock<rabbit::RabbitNode> = std::sync::OnceLock::new();
    NODE.get_or_init(|| {
        rabbit::RabbitNode::start_as("e2e-old", "127.0.0.1", Some(seed::OLD_BROKER_NAME))
    })
}

/// A RabbitMQ node standing in for the new broker's management API (what `rollback` drains
/// on), on the second loopback address, named after the new broker's id (its endpoint host).
fn new_broker() -> &'static rabbit::RabbitNode {
    static NODE: std::sync::OnceLock<rabbit::RabbitNode> = std::sync::OnceLock::new();
    NODE.get_or_init(|| rabbit::RabbitNode::start_as("e2e-new", "127.0.0.2", Some(NEW_HOST)))
}

/// Declares the example's old-broker queues, exchanges and bindings on the node, the queues
/// empty but for `held`.
fn queues_of_the_example(node: &rabbit::RabbitNode, held: &[(&str, usize)]) {
    let world = seed::world();
    let old = world["brokers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == "b-1111")
        .unwrap();
    for q in old["queues"].as_array().unwrap() {
        let name = q["name"].as_str().unwrap();
        node.declare_queue("/", name);
        let _ = node.request("DELETE", &format!("/api/queues/%2F/{name}/contents"), None);
    }
    for e in old["exchanges"].as_array().into_iter().flatten() {
        node.declare_exchange(
            "/",
            e["name"].as_str().unwrap(),
            e["type"].as_str().unwrap_or("topic"),
        );
    }
    for b in old["bindings"].as_array().unwrap() {
        let exchange = b["exchange"].as_str().unwrap();
        node.bind(
            "/",
            exchange,
            b["queue"].as_str().unwrap(),
            b["routing_key"].as_str().unwrap_or("#"),
        );
    }
    for (queue, n) in held {
        node.publish("/", "", queue, *n);
        node.wait_for_messages("/", queue, *n as u64);
    }
}

/// As [`run`], with the new broker's management API too.
fn run_with_new(moto: &moto::Moto, dir: &Path, args: &[&str]) -> std::process::Output {
    moto.warren()
        .current_dir(dir)
        .env(OLD_MGMT_ENV, old_broker().management_url())
        .env(NEW_MGMT_ENV, new_broker().management_url())
        .args(args)
        .write_stdin("")
        .output()
        .expect("run warren")
}

fn run(moto: &moto::Moto, dir: &Path, args: &[&str]) -> std::process::Output {
    moto.warren()
        .current_dir(dir)
        .env(OLD_MGMT_ENV, old_broker().management_url())
        .args(args)
        .write_stdin("")
        .output()
        .expect("run warren")
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The parameter the plan maps the old broker's host parameter to.
const MAPPED: (&str, &str) = (
    "arn:aws:ssm:eu-west-2:123456789012:parameter/esr/rabbit/host",
    "arn:aws:ssm:eu-west-2:123456789012:parameter/esr/rabbit2/host",
);

/// Everything of a described task definition but what registration assigns (ARN, revision,
/// times, status, registeredBy) and the container environment, with the plan's parameter
/// mapping applied to the secrets.
fn without_identity(td: &aws_sdk_ecs::types::TaskDefinition) -> aws_sdk_ecs::types::TaskDefinition {
    let mut copy = td.clone();
    copy.task_definition_arn = None;
    copy.revision = 0;
    copy.registered_at = None;
    copy.registered_by = None;
    copy.status = None;
    copy.deregistered_at = None;
    if let Some(containers) = copy.container_definitions.as_mut() {
        for c in containers {
            c.environment = None;
            for secret in c.secrets.iter_mut().flatten() {
                if secret.value_from == MAPPED.0 {
                    secret.value_from = MAPPED.1.to_owned();
                }
            }
        }
    }
    copy
}

fn environment(td: &aws_sdk_ecs::types::TaskDefinition) -> Vec<(String, String, String)> {
    td.container_definitions()
        .iter()
        .flat_map(|c| {
            c.environment().iter().map(move |kv| {
                (
                    c.name().unwrap_or_default().to_owned(),
                    kv.name().unwrap_or_default().to_owned(),
                    kv.value().unwrap_or_default().to_owned(),
                )
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_apply_and_decommission_the_incident_on_aws() {
    let moto = moto::shared();
    let config = moto.sdk_config().await;
    let seeded = seed::esr_incident(&config).await;
    let node = old_broker();
    queues_of_the_example(node, &[("esr.queue.apprecord.created.dataexporter", 12)]);
    let dir = tempfile::tempdir().unwrap();
    let plan = seed::write_plan(&seeded, dir.path());
    let plan = plan.to_str().unwrap();

    // plan: the forgotten consumer is in front of the reviewers.
    let out = run(&moto, dir.path(), &["plan", plan, "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let unmanaged: Vec<&str> = json["unmanaged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["service"].as_str().unwrap())
        .collect();
    assert_eq!(unmanaged, ["esr-dataexport"]);
    let updates = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "update")
        .count();
    assert_eq!(updates, 9, "{json:#}");
    assert_eq!(json["waves"].as_array().unwrap().len(), 3);
    let all = text(&out);
    assert!(!all.contains("s3cr3t-example"), "no credentials in output");

    // apply: nine services move, each on a copy of its task definition with only the host changed.
    let out = run(
        &moto,
        dir.path(),
        &["apply", plan, "--auto-approve", "--drain-timeout", "10"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Apply complete: 9 moved"),
        "{}",
        text(&out)
    );

    let ecs = aws_sdk_ecs::Client::new(&config);
    let mut checked = 0;
    for (key, service_arn) in &seeded.services {
        let (cluster, name) = key.split_once('/').unwrap();
        let service = ecs
            .describe_services()
            .cluster(seeded.cluster_arn(cluster))
            .services(service_arn)
            .send()
            .await
            .unwrap()
            .services()[0]
            .clone();
        let now = service.task_definition().unwrap().to_owned();
        let before = seeded.latest_task_definitions[name].clone();
        if now == before {
            continue;
        }
        let describe = |arn: String| {
            let ecs = ecs.clone();
            async move {
                ecs.describe_task_definition()
                    .task_definition(arn)
                    .include(TaskDefinitionField::Tags)
                    .send()
                    .await
                    .unwrap()
            }
        };
        let old = describe(before.clone()).await;
        let new = describe(now.clone()).await;
        let (old_td, new_td) = (
            old.task_definition().unwrap(),
            new.task_definition().unwrap(),
        );
        assert_eq!(
            without_identity(old_td),
            without_identity(new_td),
            "{name}: only the environment may differ"
        );
        assert!(!old.tags().is_empty(), "the seed tags its definitions");
        assert_eq!(old.tags(), new.tags(), "{name}: tags kept");
        let (old_env, new_env) = (environment(old_td), environment(new_td));
        assert_eq!(old_env.len(), new_env.len());
        for (o, n) in old_env.iter().zip(&new_env) {
            assert_eq!((&o.0, &o.1), (&n.0, &n.1), "{name}: order kept");
            if o.2 != n.2 {
                assert!(
                    o.2.to_ascii_lowercase().contains("mockmq"),
                    "{name}: {o:?} -> {n:?}"
                );
                assert!(n.2.contains(NEW_HOST), "{name}: {o:?} -> {n:?}");
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 9, "nine services run new revisions");

    // decommission: refused, naming the forgotten service, its schedule and its queue.
    let out = run(
        &moto,
        dir.path(),
        &[
            "decommission",
            plan,
            "--confirm",
            &seeded.old_broker_id,
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decision["refused"], true);
    let blockers: Vec<(String, String)> = decision["blockers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["kind"].as_str().unwrap().to_owned(),
                b["detail"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let has = |kind: &str, needle: &str| {
        blockers
            .iter()
            .any(|(k, d)| k == kind && d.contains(needle))
    };
    assert!(has("service", "esr-batch/esr-dataexport"), "{blockers:#?}");
    assert!(has("schedule", "esr-dataexport-nightly"), "{blockers:#?}");
    assert!(
        has(
            "queue",
            "esr.queue.apprecord.created.dataexporter holds 12 messages"
        ),
        "{blockers:#?}"
    );
    let mq = aws_sdk_mq::Client::new(&config);
    let broker = mq
        .describe_broker()
        .broker_id(&seeded.old_broker_id)
        .send()
        .await;
    assert!(broker.is_ok(), "the old broker still exists");

    // A second apply has nothing left to do.
    let out = run(&moto, dir.path(), &["apply", plan, "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("No changes"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_rehearses_what_aws_shows_without_credentials() {
    let moto = moto::shared();
    let config = moto.sdk_config().await;
    let seeded = seed::esr_incident(&config).await;
    queues_of_the_example(old_broker(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let plan = seed::write_plan(&seeded, dir.path());
    let plan = plan.to_str().unwrap();

    let out = run(
        &moto,
        dir.path(),
        &["snapshot", plan, "--out", "world.json"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let written = std::fs::read_to_string(dir.path().join("world.json")).unwrap();
    assert!(
        !written.contains("s3cr3t-example"),
        "URL passwords are masked"
    );
    assert!(
        !written.contains("not-a-real-password"),
        "SecureString values are not written"
    );
    let world: Value = serde_json::from_str(&written).unwrap();
    assert_eq!(world["clusters"].as_array().unwrap().len(), 2);
    assert!(
        world["schedules"].as_array().is_some_and(|s| !s.is_empty()),
        "the schedule is in the snapshot"
    );

    // The rehearsal on the snapshot plans what AWS plans.
    let on_aws = run(&moto, dir.path(), &["plan", plan, "--format", "json"]);
    let rehearsed = run(
        &moto,
        dir.path(),
        &["plan", plan, "--world", "world.json", "--format", "json"],
    );
    assert!(rehearsed.status.success(), "{}", text(&rehearsed));
    let pick = |o: &std::process::Output| -> (Value, Value, Value) {
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        (
            v["waves"].clone(),
            v["unmanaged"].clone(),
            v["changes"].clone(),
        )
    };
    assert_eq!(pick(&on_aws), pick(&rehearsed));
}

/// Creates the DynamoDB table of the team lock and shared journal, keyed by `LockID`.
async fn lock_table(config: &aws_config::SdkConfig, name: &str) {
    aws_sdk_dynamodb::Client::new(config)
        .create_table()
        .table_name(name)
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("LockID")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("LockID")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_applies_of_one_migration_never_run_at_once() {
    let moto = moto::shared();
    let config = moto.sdk_config().await;
    let seeded = seed::esr_incident(&config).await;
    lock_table(&config, "warren-locks").await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    // The first apply holds the lock while it waits for a queue that never drains.
    let node = old_broker();
    queues_of_the_example(node, &[("esr.queue.deadletter", 3)]);
    let dir = tempfile::tempdir().unwrap();
    let plan = seed::write_plan(&seeded, dir.path());
    let plan = plan.to_str().unwrap().to_owned();

    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_warren"));
    moto.configure(&mut first)
        .current_dir(dir.path())
        .env(OLD_MGMT_ENV, node.management_url())
        .args([
            "apply",
            &plan,
            "--auto-approve",
            "--drain-timeout",
            "4",
            "--lock-table",
            "warren-locks",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let first = first.spawn().unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let second = run(
        &moto,
        dir.path(),
        &[
            "apply",
            &plan,
            "--auto-approve",
            "--lock-table",
            "warren-locks",
        ],
    );
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    let said = text(&second);
    assert!(
        said.contains("is locked in DynamoDB table warren-locks"),
        "{said}"
    );
    assert!(said.contains("warren apply"), "names the holder: {said}");

    let first = first.wait_with_output().unwrap();
    assert_eq!(
        first.status.code(),
        Some(1),
        "the first stops at its drain: {}",
        text(&first)
    );
    assert!(
        text(&first).contains("esr.queue.deadletter"),
        "{}",
        text(&first)
    );

    // Released: the lock item is gone, and a held one can be removed by its id.
    let item = dynamodb
        .get_item()
        .table_name("warren-locks")
        .key(
            "LockID",
            aws_sdk_dynamodb::types::AttributeValue::S("esr-prod".into()),
        )
        .send()
        .await
        .unwrap();
    assert!(item.item().is_none(), "the lock was released");
    let stale = serde_json::json!({
        "id": "0123abcd", "migration": "esr-prod", "command": "apply", "pid": 1,
        "host": "ci-runner-7", "time": "2026-11-26T01:00:00Z"
    });
    dynamodb
        .put_item()
        .table_name("warren-locks")
        .item(
            "LockID",
            aws_sdk_dynamodb::types::AttributeValue::S("esr-prod".into()),
        )
        .item(
            "Info",
            aws_sdk_dynamodb::types::AttributeValue::S(stale.to_string()),
        )
        .send()
        .await
        .unwrap();
    let refused = run(
        &moto,
        dir.path(),
        &[
            "apply",
            &plan,
            "--auto-approve",
            "--lock-table",
            "warren-locks",
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused).contains("ci-runner-7"), "{}", text(&refused));
    let wrong = run(
        &moto,
        dir.path(),
        &[
            "unlock",
            &plan,
            "--lock-id",
            "ffff",
            "--lock-table",
            "warren-locks",
        ],
    );
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong));
    let right = run(
        &moto,
        dir.path(),
        &[
            "unlock",
            &plan,
            "--lock-id",
            "0123abcd",
            "--lock-table",
            "warren-locks",
        ],
    );
    assert!(right.status.success(), "{}", text(&right));
}

#[test]
fn a_missing_region_or_missing_credentials_stop_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.toml");
    std::fs::write(
        &plan,
        "[migration]\nname = \"m\"\n[brokers.old]\nid = \"b-1\"\n[brokers.new]\nid = \"b-2\"\n",
    )
    .unwrap();
    let base = || {
        let mut c = assert_cmd::Command::cargo_bin("warren").unwrap();
        for name in moto::REMOVED_ENV {
            c.env_remove(name);
        }
        c.env("AWS_CONFIG_FILE", "/nonexistent/warren-tests/config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/warren-tests/credentials",
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .args(["plan", plan.to_str().unwrap()])
            .timeout(Duration::from_secs(20));
        c
    };
    let out = base()
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no AWS region"), "{}", text(&out));

    let started = std::time::Instant::now();
    let out = base().env("AWS_REGION", "eu-west-2").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no AWS credentials"), "{}", text(&out));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "within seconds"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_is_stale_once_a_parameter_it_read_has_a_new_version() {
    let moto = moto::shared();
    let config = moto.sdk_config().await;
    let seeded = seed::esr_incident(&config).await;
    queues_of_the_example(old_broker(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let plan = seed::write_plan(&seeded, dir.path());
    let plan = plan.to_str().unwrap();

    let out = run(&moto, dir.path(), &["plan", plan, "--out", "saved.json"]);
    assert!(out.status.success(), "{}", text(&out));

    // The same value written again: SSM gives the parameter a new version.
    let ssm = aws_sdk_ssm::Client::new(&config);
    let host = ssm
        .get_parameter()
        .name("/esr/rabbit/host")
        .send()
        .await
        .unwrap()
        .parameter()
        .unwrap()
        .value()
        .unwrap()
        .to_owned();
    ssm.put_parameter()
        .name("/esr/rabbit/host")
        .value(host)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();

    let out = run(
        &moto,
        dir.path(),
        &["apply", "saved.json", "--auto-approve"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("is stale"), "{said}");
    assert!(
        said.contains("parameter:/esr/rabbit/host changed"),
        "{said}"
    );
    let ecs = aws_sdk_ecs::Client::new(&config);
    let families = ecs.list_task_definitions().send().await.unwrap();
    assert_eq!(
        families.task_definition_arns().len(),
        seeded.task_definitions.len(),
        "nothing was registered"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_applied_from_elsewhere_uses_the_journal_of_its_migration() {
    let moto = moto::shared();
    let config = moto.sdk_config().await;
    let seeded = seed::esr_incident(&config).await;
    queues_of_the_example(old_broker(), &[]);
    let repo = tempfile::tempdir().unwrap();
    let plans = repo.path().join("plans");
    std::fs::create_dir(&plans).unwrap();
    let plan = seed::write_plan(&seeded, &plans);
    let plan = plan.to_str().unwrap();
    let review = tempfile::tempdir().unwrap();
    let saved = review.path().join("esr.plan.json");
    let saved = saved.to_str().unwrap();

    let out = run(&moto, repo.path(), &["plan", plan, "--out", saved]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(
        &moto,
        review.path(),
        &["apply", saved, "--auto-approve", "--drain-timeout", "10"],
    );
    assert!(out.status.success(), "{}", text(&out));

    assert!(
        plans.join("warren-journal.jsonl").exists(),
        "the journal sits beside the plan file the saved plan was made from"
    );
    assert!(!review.path().join("warren-journal.jsonl").exists());
    let out = run(&moto, repo.path(), &["rollback", plan, "--auto-approve"]);
    assert!(
        !text(&out).contains("Nothing to roll back"),
        "rollback of the plan file finds what the saved plan applied: {}",
        text(&out)
    );
}

/// The plan maps `/esr/rabbit/host` to `/esr/rabbit2/host`; once that parameter is gone, a plan
/// saved while it existed is stale, and `apply PLAN.toml` refuses before any change, naming it.
#[tokio::test(flavor = "multi_thread")]
async fn a_mapped_parameter_that_vanishes_stops_apply_before_any_change() {
    let moto = moto::shared();
    let config = moto.sdk_config().await;
    let seeded = seed::esr_incident(&config).await;
    queues_of_the_example(old_broker(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let plan = seed::write_plan(&seeded, dir.path());
    let plan = plan.to_str().unwrap();

    let out = run(&moto, dir.path(), &["plan", plan, "--out", "saved.json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !text(&out).contains("does not exist yet"),
        "the mapped parameter exists and was read: {}",
        text(&out)
    );

    let ssm = aws_sdk_ssm::Client::new(&config);
    ssm.delete_parameter()
        .name("/esr/rabbit2/host")
        .send()
        .await
        .unwrap();

    let out = run(
        &moto,
        dir.path(),
        &["apply", "saved.json", "--auto-approve"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("is stale"), "{said}");
    assert!(said.contains("parameter:/esr/rabbit2/host"), "{said}");

    let out = run(&moto, dir.path(), &["apply", plan, "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains(MAPPED.1), "{said}");
    assert!(said.contains("does not exist"), "{said}");

    let ecs = aws_sdk_ecs::Client::new(&config);
    let families = ecs.list_task_definitions().send().await.unwrap();
    assert_eq!(
        families.task_definition_arns().len(),
        seeded.task_definitions.len(),
        "nothing was registered"
    );
}

/// With a lock table, the journal is shared: an operator whose folder holds only a copy of the
/// plan file sees in `status` what a colleague applied from another folder, and `rollback` from
/// there finds it.
#[tokio::test(flavor = "multi_thread")]
async fn with_a_lock_table_status_and_rollback_from_another_folder_see_the_apply() {
    let moto = moto::shared();
    let config = moto.sdk_config().await;
    let seeded = seed::esr_incident(&config).await;
    lock_table(&config, "warren-shared-journal").await;
    queues_of_the_example(old_broker(), &[]);
    let colleague = tempfile::tempdir().unwrap();
    let plan = seed::write_plan(&seeded, colleague.path());
    let operator = tempfile::tempdir().unwrap();
    std::fs::copy(&plan, operator.path().join("p.toml")).unwrap();
    let plan = plan.to_str().unwrap();
    let table = ["--lock-table", "warren-shared-journal"];

    let out = run(
        &moto,
        colleague.path(),
        &[
            &["apply", plan, "--auto-approve", "--drain-timeout", "10"][..],
            &table,
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", text(&out));

    let out = run(
        &moto,
        operator.path(),
        &[
            "status",
            "p.toml",
            "--format",
            "json",
            "--lock-table",
            "warren-shared-journal",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let journal = &status["journal"];
    assert!(
        journal["place"]
            .as_str()
            .unwrap()
            .contains("DynamoDB table warren-shared-journal"),
        "{journal}"
    );
    assert!(journal["entries"].as_u64().unwrap() > 0, "{journal}");
    assert_eq!(journal["last"]["result"], "ok", "{journal}");

    let out = run_with_new(
        &moto,
        operator.path(),
        &[&["rollback", "p.toml", "--auto-approve"][..], &table].concat(),
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        !said.contains("Nothing to roll back"),
        "rollback from another folder finds what was applied: {said}"
    );
    let table_items = aws_sdk_dynamodb::Client::new(&config)
        .scan()
        .table_name("warren-shared-journal")
        .send()
        .await
        .unwrap();
    let steps: Vec<String> = table_items
        .items()
        .iter()
        .filter_map(|i| i.get("Entry")?.as_s().ok().cloned())
        .collect();
    assert!(
        steps.iter().any(|e| e.contains("\"step\":\"rollback\"")),
        "the rollback is journaled in the shared copy too: {} entries, the last {:?}",
        steps.len(),
        steps.iter().max()
    );
    assert!(
        !operator.path().join("warren-journal.jsonl").exists()
            || std::fs::read_to_string(operator.path().join("warren-journal.jsonl"))
                .unwrap()
                .contains("rollback"),
        "the operator's local journal holds only what the operator did"
    );
}

/// The task definition ARN every seeded service runs now, by `cluster/service`.
async fn running_revisions(
    ecs: &aws_sdk_ecs::Client,
    seeded: &seed::Seeded,
) -> std::collections::BTreeMap<String, String> {
    let mut running = std::collections::BTreeMap::new();
    for (key, service_arn) in &seeded.services {
        let (cluster, _) = key.split_once('/').unwrap();
        let out = ecs
            .describe_services()
            .cluster(seeded.cluster_arn(cluster))
            .services(service_arn)
            .send()
            .await
            .unwrap();
        let td = out.services()[0].task_definition().unwrap().to_owned();
        running.insert(key.clone(), td);
    }
    running
}

/// Every registered task definition revision, as ARNs, sorted.
async fn registered_revisions(ecs: &aws_sdk_ecs::Client) -> Vec<String> {
    let mut arns: Vec<String> = ecs
        .list_task_definitions()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .unwrap();
    arns.sort();
    arns
}

/// Leaves service `key` (`cluster/service`) as real ECS leaves it once its rollout onto `td`
/// completed: one PRIMARY deployment, on `td`. The emulator instead keeps the service's first
/// deployment, on the revision it was created with, for ever (and warren reads the revisions of
/// running deployments); creating the service again makes the emulator replace it.
async fn completed_as_on_ecs(
    ecs: &aws_sdk_ecs::Client,
    seeded: &seed::Seeded,
    key: &str,
    td: &str,
) {
    let (cluster, name) = key.split_once('/').unwrap();
    ecs.create_service()
        .cluster(seeded.cluster_arn(cluster))
        .service_name(name)
        .task_definition(td)
        .desired_count(1)
        .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
        .send()
        .await
        .unwrap();
    let out = ecs
        .describe_services()
        .cluster(seeded.cluster_arn(cluster))
        .services(name)
        .send()
        .await
        .unwrap();
    let deployments = out.services()[0].deployments();
    assert_eq!(deployments.len(), 1, "{key}: {deployments:?}");
    assert_eq!(deployments[0].task_definition(), Some(td), "{key}");
}

/// How many services the plan of a JSON `plan` output moves.
fn updates_in(out: &std::process::Output) -> usize {
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "update")
        .count()
}

/// After a plain `apply PLAN.toml`, `rollback PLAN.toml` puts every moved service back on the
/// very revision it ran before (on AWS the read sees only the revisions services run now, so
/// the previous ones must be read for the rollback), and the plan then moves them all again.
#[tokio::test(flavor = "multi_thread")]
async fn rollback_after_an_apply_puts_every_service_back_on_its_previous_revision() {
    let moto = moto::shared();
    let config = moto.sdk_config().await;
    let seeded = seed::esr_incident(&config).await;
    queues_of_the_example(old_broker(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let plan = seed::write_plan(&seeded, dir.path());
    let plan = plan.to_str().unwrap();
    let ecs = aws_sdk_ecs::Client::new(&config);
    let before = running_revisions(&ecs, &seeded).await;

    let out = run(
        &moto,
        dir.path(),
        &["apply", plan, "--auto-approve", "--drain-timeout", "10"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let applied = running_revisions(&ecs, &seeded).await;
    let moved = before
        .iter()
        .filter(|(service, td)| applied[*service] != **td)
        .count();
    assert_eq!(moved, 9, "apply moved nine services");
    for (key, td) in &applied {
        if before[key] != *td {
            completed_as_on_ecs(&ecs, &seeded, key, td).await;
        }
    }

    // Rollback drains the consumers' queues on the new broker before they go back.
    let out = run_with_new(
        &moto,
        dir.path(),
        &["rollback", plan, "--auto-approve", "--drain-timeout", "10"],
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("no longer active"), "{said}");
    assert!(said.contains("Rollback complete: 9 moved"), "{said}");
    assert_eq!(
        running_revisions(&ecs, &seeded).await,
        before,
        "every service runs the revision it ran before apply"
    );

    // Back on the old broker: the plan moves the nine services again.
    let out = run(&moto, dir.path(), &["plan", plan, "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(updates_in(&out), 9, "{}", text(&out));
}

/// A run stopped after registering the new revisions but before pointing the services at them
/// leaves those revisions registered; the re-run reuses them (registering is idempotent by
/// content) instead of registering copies.
#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_after_registering_reuses_the_registered_revisions() {
    let moto = moto::shared();
    let config = moto.sdk_config().await;
    let seeded = seed::esr_incident(&config).await;
    queues_of_the_example(old_broker(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let plan = seed::write_plan(&seeded, dir.path());
    let plan = plan.to_str().unwrap();
    let ecs = aws_sdk_ecs::Client::new(&config);
    let before = running_revisions(&ecs, &seeded).await;

    let out = run(
        &moto,
        dir.path(),
        &["apply", plan, "--auto-approve", "--drain-timeout", "10"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let applied = running_revisions(&ecs, &seeded).await;
    let registered = registered_revisions(&ecs).await;
    assert_eq!(
        registered.len(),
        seeded.task_definitions.len() + 9,
        "one new revision per moved service"
    );

    // The state a run leaves when it stops right after its registrations: every new revision
    // exists, every service still runs its old one.
    for (key, td) in &before {
        if applied[key] != *td {
            let (cluster, _) = key.split_once('/').unwrap();
            ecs.update_service()
                .cluster(seeded.cluster_arn(cluster))
                .service(&seeded.services[key])
                .task_definition(td)
                .send()
                .await
                .unwrap();
        }
    }

    let out = run(
        &moto,
        dir.path(),
        &["apply", plan, "--auto-approve", "--drain-timeout", "10"],
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("Apply complete: 9 moved"), "{said}");
    assert_eq!(
        registered_revisions(&ecs).await,
        registered,
        "no revision was registered a second time"
    );
    assert_eq!(
        running_revisions(&ecs, &seeded).await,
        applied,
        "each service runs the revision the first run registered"
    );
}
