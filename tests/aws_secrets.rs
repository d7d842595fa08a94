//! What a container reads from outside its task definition, against the local AWS emulator
//! (moto's server): env files in S3 and Secrets Manager values (one key of a JSON secret),
//! through the built binary's `plan`, `decommission` and `apply`. A clean env file and a clean
//! secret beside them are never named; an env file that is not there is `unverifiable`.

#[path = "support/moto.rs"]
mod moto;

use aws_config::SdkConfig;
use aws_sdk_ecs::types::{
    ContainerDefinition, EnvironmentFile, EnvironmentFileType, KeyValuePair, Secret,
};
use serde_json::Value;

const CLUSTER: &str = "shop";
const BUCKET: &str = "shop-config";
const NEW_ENDPOINT: &str = "amqps://rabbit-new.internal:5671";
/// Every broker of the emulator answers on this host.
const OLD_HOST: &str = "mockmq";

struct Seeded {
    old_broker_id: String,
    rabbit_secret: String,
    db_secret: String,
}

fn s3_arn(key: &str) -> String {
    format!("arn:aws:s3:::{BUCKET}/{key}")
}

async fn seed(config: &SdkConfig) -> Seeded {
    let mq = aws_sdk_mq::Client::new(config);
    let created = mq
        .create_broker()
        .broker_name("shop-rabbit-old")
        .engine_type(aws_sdk_mq::types::EngineType::Rabbitmq)
        .engine_version("3.13")
        .deployment_mode(aws_sdk_mq::types::DeploymentMode::SingleInstance)
        .host_instance_type("mq.m5.large")
        .publicly_accessible(false)
        .auto_minor_version_upgrade(true)
        .users(
            aws_sdk_mq::types::User::builder()
                .username("admin")
                .password("not-a-real-password")
                .build(),
        )
        .send()
        .await
        .expect("create_broker");
    let old_broker_id = created.broker_id().expect("a broker id").to_owned();

    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(BUCKET)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest2)
                .build(),
        )
        .send()
        .await
        .expect("create_bucket");
    for (key, body) in [
        (
            "orders/app.env",
            format!("# orders\nRABBIT_URL=amqps://orders:pa/ss@{OLD_HOST}:5671/shop\nDB_HOST=db.internal\n"),
        ),
        ("common/logging.env", "LOG_FORMAT=json\nLOG_HOST=logs.internal:514\n".to_owned()),
    ] {
        s3.put_object()
            .bucket(BUCKET)
            .key(key)
            .body(body.into_bytes().into())
            .send()
            .await
            .expect("put_object");
    }

    let secrets = aws_sdk_secretsmanager::Client::new(config);
    let rabbit = secrets
        .create_secret()
        .name("shop/rabbit")
        .secret_string(format!(r#"{{"host":"{OLD_HOST}","password":"hunter2"}}"#))
        .send()
        .await
        .expect("create_secret shop/rabbit");
    let db = secrets
        .create_secret()
        .name("shop/db")
        .secret_string("postgres://ledger:hunter2@db.internal:5432/ledger")
        .send()
        .await
        .expect("create_secret shop/db");
    let rabbit_secret = rabbit.arn().expect("an ARN").to_owned();
    let db_secret = db.arn().expect("an ARN").to_owned();

    let ecs = aws_sdk_ecs::Client::new(config);
    ecs.create_cluster()
        .cluster_name(CLUSTER)
        .send()
        .await
        .expect("create_cluster");
    let files = |keys: &[&str]| -> Vec<EnvironmentFile> {
        keys.iter()
            .map(|k| {
                EnvironmentFile::builder()
                    .value(s3_arn(k))
                    .r#type(EnvironmentFileType::S3)
                    .build()
                    .unwrap()
            })
            .collect()
    };
    let secret = |name: &str, value_from: &str| {
        Secret::builder()
            .name(name)
            .value_from(value_from)
            .build()
            .unwrap()
    };
    let services: Vec<(&str, ContainerDefinition)> = vec![
        // Reads the old host from an env file, beside a clean one.
        (
            "orders",
            ContainerDefinition::builder()
                .name("app")
                .image("orders:1")
                .memory(512)
                .environment(
                    KeyValuePair::builder()
                        .name("LOG_LEVEL")
                        .value("INFO")
                        .build(),
                )
                .set_environment_files(Some(files(&["common/logging.env", "orders/app.env"])))
                .build(),
        ),
        // Loads an env file that is not there.
        (
            "mailer",
            ContainerDefinition::builder()
                .name("app")
                .image("mailer:1")
                .memory(512)
                .set_environment_files(Some(files(&["mailer/app.env"])))
                .build(),
        ),
        // Reads the old host from key `host` of a JSON secret.
        (
            "billing",
            ContainerDefinition::builder()
                .name("app")
                .image("billing:1")
                .memory(512)
                .secrets(secret("RABBIT_HOST", &format!("{rabbit_secret}:host::")))
                .build(),
        ),
        // Clean: a secret and an env file that name no broker.
        (
            "ledger",
            ContainerDefinition::builder()
                .name("app")
                .image("ledger:1")
                .memory(512)
                .secrets(secret("DATABASE_URL", &db_secret))
                .set_environment_files(Some(files(&["common/logging.env"])))
                .build(),
        ),
    ];
    for (name, container) in services {
        let registered = ecs
            .register_task_definition()
            .family(name)
            .container_definitions(container)
            .send()
            .await
            .expect("register_task_definition");
        let arn = registered
            .task_definition()
            .and_then(|td| td.task_definition_arn())
            .expect("an ARN")
            .to_owned();
        ecs.create_service()
            .cluster(CLUSTER)
            .service_name(name)
            .task_definition(arn)
            .desired_count(1)
            .send()
            .await
            .expect("create_service");
    }
    Seeded {
        old_broker_id,
        rabbit_secret,
        db_secret,
    }
}

fn plan_toml(seeded: &Seeded, read_secrets: bool) -> String {
    format!(
        "[migration]\nname = \"shop\"\nregion = \"eu-west-2\"\nclusters = [\"{CLUSTER}\"]\nread_secrets = {read_secrets}\n\n\
         [brokers.old]\nid = \"{}\"\n\n[brokers.new]\nendpoints = [\"{NEW_ENDPOINT}\"]\n\n\
         [[services]]\ncluster = \"{CLUSTER}\"\nname = \"orders\"\nbroker = \"new\"\n",
        seeded.old_broker_id
    )
}

fn json_of(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The blockers' details of kind `kind`.
fn details(decision: &Value, kind: &str) -> Vec<String> {
    decision["blockers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["kind"] == kind)
        .map(|b| b["detail"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn env_files_and_secrets_are_read_from_s3_and_secrets_manager() {
    let moto = moto::shared();
    let config = moto.sdk_config().await;
    let seeded = seed(&config).await;
    let dir = tempfile::tempdir().unwrap();
    let plan_file = dir.path().join("shop.toml");
    std::fs::write(&plan_file, plan_toml(&seeded, true)).unwrap();
    let plan_path = plan_file.to_str().unwrap();

    // plan: orders moves by setting the env file's variable; billing is unmanaged through its
    // secret; mailer's missing env file is a warning; ledger is not named.
    let out = moto
        .warren()
        .args(["plan", plan_path, "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan = json_of(&out);
    let text = plan.to_string();
    for secret in ["pa/ss", "hunter2"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let orders = &plan["changes"][0];
    assert_eq!(orders["service"], "orders");
    assert_eq!(orders["action"], "update", "{orders}");
    let rewrite = &orders["rewrites"][0];
    assert_eq!(rewrite["variable"], "RABBIT_URL");
    assert_eq!(rewrite["env_file"], s3_arn("orders/app.env"));
    assert_eq!(
        rewrite["to"],
        "amqps://orders:****@rabbit-new.internal:5671/shop"
    );
    let unmanaged: Vec<&str> = plan["unmanaged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["service"].as_str().unwrap())
        .collect();
    assert_eq!(unmanaged, vec!["billing"], "{plan}");
    let warnings: Vec<&str> = plan["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings.iter().any(|w| w.starts_with("shop/mailer:")
            && w.contains(&s3_arn("mailer/app.env"))
            && w.contains("NoSuchKey")),
        "{warnings:?}"
    );
    assert!(
        !text.contains("ledger"),
        "the clean service is not named: {text}"
    );

    // decommission: refused, naming the env file, the secret and the file it could not read.
    let out = moto
        .warren()
        .args([
            "decommission",
            plan_path,
            "--confirm",
            &seeded.old_broker_id,
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decision = json_of(&out);
    let services = details(&decision, "service");
    let id = &seeded.old_broker_id;
    assert!(
        services.contains(&format!(
            "shop/orders points at {id} through app/RABBIT_URL (env file {})",
            s3_arn("orders/app.env")
        )),
        "{services:?}"
    );
    assert!(
        services.contains(&format!(
            "shop/billing points at {id} through app/RABBIT_HOST (parameter {}:host::)",
            seeded.rabbit_secret
        )),
        "{services:?}"
    );
    let unverifiable = details(&decision, "unverifiable");
    assert!(
        unverifiable
            .iter()
            .any(|d| d.contains("shop/mailer") && d.contains(&s3_arn("mailer/app.env"))),
        "{unverifiable:?}"
    );
    let all = decision.to_string();
    assert!(
        !all.contains("ledger") && !all.contains(&seeded.db_secret),
        "{all}"
    );
    assert!(!all.contains("hunter2") && !all.contains("pa/ss"), "{all}");

    // apply: the new revision sets the variable over the env file, which it still loads.
    let out = moto
        .warren()
        .args(["apply", plan_path, "--auto-approve"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ecs = aws_sdk_ecs::Client::new(&config);
    let described = ecs
        .describe_services()
        .cluster(CLUSTER)
        .services("orders")
        .send()
        .await
        .unwrap();
    let td_arn = described.services()[0]
        .task_definition()
        .unwrap()
        .to_owned();
    assert!(td_arn.ends_with("orders:2"), "{td_arn}");
    let td = ecs
        .describe_task_definition()
        .task_definition(&td_arn)
        .send()
        .await
        .unwrap();
    let container = &td.task_definition().unwrap().container_definitions()[0];
    let env: Vec<(&str, &str)> = container
        .environment()
        .iter()
        .map(|kv| (kv.name().unwrap(), kv.value().unwrap()))
        .collect();
    assert_eq!(
        env,
        vec![
            ("LOG_LEVEL", "INFO"),
            (
                "RABBIT_URL",
                "amqps://orders:pa/ss@rabbit-new.internal:5671/shop"
            ),
        ]
    );
    let files: Vec<&str> = container
        .environment_files()
        .iter()
        .map(|f| f.value())
        .collect();
    assert_eq!(
        files,
        vec![s3_arn("common/logging.env"), s3_arn("orders/app.env")]
    );
}

#[tokio::test]
async fn without_read_secrets_a_secret_is_unverifiable() {
    let moto = moto::shared();
    let config = moto.sdk_config().await;
    let seeded = seed(&config).await;
    let dir = tempfile::tempdir().unwrap();
    let plan_file = dir.path().join("shop.toml");
    std::fs::write(&plan_file, plan_toml(&seeded, false)).unwrap();
    let out = moto
        .warren()
        .args([
            "decommission",
            plan_file.to_str().unwrap(),
            "--confirm",
            &seeded.old_broker_id,
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decision = json_of(&out);
    let unverifiable = details(&decision, "unverifiable");
    for (who, secret) in [
        ("shop/billing", format!("{}:host::", seeded.rabbit_secret)),
        ("shop/ledger", seeded.db_secret.clone()),
    ] {
        assert!(
            unverifiable.iter().any(|d| d.contains(who)
                && d.contains(&format!(
                    "Secrets Manager secret {secret}, whose value was not read"
                ))),
            "{who}: {unverifiable:?}"
        );
    }
    assert!(
        !details(&decision, "service")
            .iter()
            .any(|d| d.contains("billing")),
        "not read, so not found"
    );
}

/// The seeded old broker is private (`PubliclyAccessible` false), as DescribeBroker reports:
/// under `federate`, Amazon MQ cannot pull from it, so a plan that names only its AMQP URL is
/// refused, naming `[brokers.old]`; one that names a URL the new broker reaches it by
/// (`upstream_url_env`) federates through that.
#[tokio::test]
async fn federating_from_a_private_broker_needs_upstream_url_env() {
    let moto = moto::shared();
    let config = moto.sdk_config().await;
    let seeded = seed(&config).await;
    let dir = tempfile::tempdir().unwrap();
    let plan_file = dir.path().join("shop.toml");
    let federate = |old_keys: &str| {
        plan_toml(&seeded, false)
            .replace(
                "read_secrets = false\n",
                "read_secrets = false\nstrategy = \"federate\"\n",
            )
            .replace(
                "[brokers.new]\n",
                &format!("{old_keys}\n[brokers.new]\nmanagement_url_env = \"WARREN_TEST_UNSET_NEW_MGMT\"\n"),
            )
            .replace(
                "broker = \"new\"\n",
                "broker = \"new\"\nconsumes = [\"orders.q\"]\n",
            )
    };
    let plan_path = plan_file.to_str().unwrap();

    std::fs::write(
        &plan_file,
        federate("amqp_url_env = \"WARREN_OLD_AMQP_URL\"\n"),
    )
    .unwrap();
    let out = moto
        .warren()
        .env_remove("WARREN_TEST_UNSET_NEW_MGMT")
        .args(["plan", plan_path, "--format", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("shop.toml:8:1: key `brokers.old`: the old broker")
            && stderr.contains("is not publicly accessible")
            && stderr.contains("upstream_url_env"),
        "{stderr}"
    );

    std::fs::write(
        &plan_file,
        federate(
            "amqp_url_env = \"WARREN_OLD_AMQP_URL\"\nupstream_url_env = \"WARREN_OLD_NLB_URL\"\n",
        ),
    )
    .unwrap();
    let out = moto
        .warren()
        .env_remove("WARREN_TEST_UNSET_NEW_MGMT")
        .args(["plan", plan_path, "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan = json_of(&out);
    assert_eq!(
        plan["federation"]["upstreams"],
        serde_json::json!([{ "vhost": "/", "name": "warren-shop", "url_env": "WARREN_OLD_NLB_URL" }]),
        "{plan}"
    );
}
