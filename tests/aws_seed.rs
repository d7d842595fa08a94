//! The emulator fixture (`tests/support/moto.rs`) and the incident seed
//! (`tests/support/seed.rs`), checked through the AWS SDK directly, without warren: what the
//! AWS tests build on has to hold before they can mean anything.

// By path rather than `mod support;`, so that this binary builds only the fixtures it uses.
#[path = "support/moto.rs"]
mod moto;
#[path = "support/seed.rs"]
mod seed;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_ecs::types::{Compatibility, NetworkMode, TaskDefinitionField};
use moto::Moto;
use seed::Seeded;

/// Seeds the shared emulator; the returned turn must be held for the whole test.
async fn seeded() -> (moto::SharedMoto, SdkConfig, Seeded) {
    let moto = moto::shared();
    let config = moto.sdk_config().await;
    let seeded = seed::esr_incident(&config).await;
    (moto, config, seeded)
}

/// `(container, variable)` → value, for the environment of one task definition.
async fn environment(ecs: &aws_sdk_ecs::Client, arn: &str) -> BTreeMap<(String, String), String> {
    let described = ecs
        .describe_task_definition()
        .task_definition(arn)
        .send()
        .await
        .expect("describe_task_definition");
    let mut env = BTreeMap::new();
    for container in described.task_definition().unwrap().container_definitions() {
        for pair in container.environment() {
            env.insert(
                (
                    container.name().unwrap().to_string(),
                    pair.name().unwrap().to_string(),
                ),
                pair.value().unwrap().to_string(),
            );
        }
    }
    env
}

fn key(container: &str, variable: &str) -> (String, String) {
    (container.to_string(), variable.to_string())
}

#[tokio::test]
async fn both_clusters_hold_the_examples_services() {
    let (_moto, config, seeded) = seeded().await;
    let ecs = aws_sdk_ecs::Client::new(&config);

    let listed = ecs.list_clusters().send().await.expect("list_clusters");
    let arns: BTreeSet<&str> = listed.cluster_arns().iter().map(String::as_str).collect();
    assert_eq!(arns.len(), 2);
    assert_eq!(
        arns,
        seeded.clusters.values().map(String::as_str).collect(),
        "the clusters listed are the ones seeded"
    );

    let world = seed::world();
    for cluster in world["clusters"].as_array().unwrap() {
        let name = cluster["name"].as_str().unwrap();
        let expected: BTreeSet<&str> = cluster["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|service| service["name"].as_str().unwrap())
            .collect();
        let listed = ecs
            .list_services()
            .cluster(name)
            .send()
            .await
            .expect("list_services");
        let names: BTreeSet<&str> = listed
            .service_arns()
            .iter()
            .map(|arn| arn.rsplit('/').next().unwrap())
            .collect();
        assert_eq!(names, expected, "services of {name}");
    }
}

#[tokio::test]
async fn a_seeded_task_definition_carries_what_real_ones_do() {
    let (_moto, config, seeded) = seeded().await;
    let ecs = aws_sdk_ecs::Client::new(&config);

    let described = ecs
        .describe_task_definition()
        .task_definition(seeded.task_definition_arn("esr-audit:15"))
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .expect("describe_task_definition");
    let tags: BTreeMap<&str, &str> = described
        .tags()
        .iter()
        .map(|tag| (tag.key().unwrap(), tag.value().unwrap()))
        .collect();
    assert_eq!(
        tags,
        BTreeMap::from([("service", "esr-audit"), ("team", "esr")])
    );

    let definition = described.task_definition().unwrap();
    assert_eq!(definition.family(), Some("esr-audit"));
    assert_eq!(definition.cpu(), Some("256"));
    assert_eq!(definition.memory(), Some("512"));
    assert_eq!(definition.network_mode(), Some(&NetworkMode::Awsvpc));
    assert_eq!(
        definition.requires_compatibilities(),
        [Compatibility::Fargate]
    );
    assert_eq!(
        definition.task_role_arn(),
        Some("arn:aws:iam::123456789012:role/esr-audit-task")
    );
    assert_eq!(
        definition.execution_role_arn(),
        Some("arn:aws:iam::123456789012:role/ecsTaskExecutionRole")
    );
    let platform = definition.runtime_platform().expect("runtimePlatform");
    assert_eq!(
        platform.operating_system_family().map(|os| os.as_str()),
        Some("LINUX")
    );
    assert_eq!(
        platform.cpu_architecture().map(|cpu| cpu.as_str()),
        Some("X86_64")
    );
    assert_eq!(definition.volumes().len(), 1);

    let containers = definition.container_definitions();
    let names: Vec<&str> = containers.iter().map(|c| c.name().unwrap()).collect();
    assert_eq!(names, ["esr-audit", "audit-shipper"]);
    let app = &containers[0];
    assert_eq!(
        app.image(),
        Some("123456789012.dkr.ecr.eu-west-2.amazonaws.com/esr-audit:release-15")
    );
    assert_eq!(app.essential(), Some(true));
    assert_eq!(app.port_mappings()[0].container_port(), Some(8080));
    let logs = app.log_configuration().expect("logConfiguration");
    assert_eq!(logs.log_driver().as_str(), "awslogs");
    assert_eq!(
        logs.options()
            .unwrap()
            .get("awslogs-group")
            .map(String::as_str),
        Some("/ecs/esr-audit")
    );
    assert_eq!(
        app.health_check().expect("healthCheck").command()[0],
        "CMD-SHELL"
    );
    assert_eq!(
        app.docker_labels()
            .unwrap()
            .get("service")
            .map(String::as_str),
        Some("esr-audit")
    );
    let secrets: BTreeMap<&str, &str> = app
        .secrets()
        .iter()
        .map(|secret| (secret.name(), secret.value_from()))
        .collect();
    assert_eq!(
        secrets,
        BTreeMap::from([
            (
                "RABBIT_PASSWORD",
                "arn:aws:ssm:eu-west-2:123456789012:parameter/esr/rabbit/password"
            ),
            (
                "RABBIT_USERNAME",
                "arn:aws:ssm:eu-west-2:123456789012:parameter/esr/rabbit/username"
            ),
        ])
    );
    // The file's order of variables is kept.
    let variables: Vec<&str> = app
        .environment()
        .iter()
        .map(|e| e.name().unwrap())
        .collect();
    assert_eq!(
        variables[..2],
        ["SPRING_RABBITMQ_HOST", "SPRING_RABBITMQ_PORT"]
    );

    let env = environment(&ecs, seeded.task_definition_arn("esr-audit:15")).await;
    assert_eq!(env[&key("esr-audit", "SPRING_RABBITMQ_HOST")], "mockmq");
    assert_eq!(
        env[&key("audit-shipper", "RABBIT_URL")],
        "amqps://mockmq:5671"
    );
    assert_eq!(env[&key("esr-audit", "LOG_LEVEL")], "WARN");
}

#[tokio::test]
async fn the_old_host_becomes_mockmq_in_every_form_and_nothing_else_changes() {
    let (_moto, config, seeded) = seeded().await;
    let ecs = aws_sdk_ecs::Client::new(&config);

    let inbound = environment(&ecs, seeded.task_definition_arn("esr-inbound:34")).await;
    assert_eq!(
        inbound[&key("esr-inbound", "SPRING_RABBITMQ_HOST")],
        "mockmq"
    );
    let apprecord = environment(&ecs, seeded.task_definition_arn("esr-apprecord:112")).await;
    assert_eq!(
        apprecord[&key("esr-apprecord", "SPRING_RABBITMQ_ADDRESSES")],
        "amqps://esr-apprecord:s3cr3t-example@mockmq:5671/esr"
    );
    let notify = environment(&ecs, seeded.task_definition_arn("esr-notify:27")).await;
    assert_eq!(
        notify[&key("esr-notify", "SPRING_RABBITMQ_ADDRESSES")],
        "mockmq:5671,rabbit-dr.esr.example:5671"
    );
    let reporting = environment(&ecs, seeded.task_definition_arn("esr-reporting:8")).await;
    assert_eq!(
        reporting[&key("esr-reporting", "SPRING_RABBITMQ_HOST")],
        "b-2222.mq.eu-west-2.amazonaws.com"
    );
    let tis = environment(&ecs, seeded.task_definition_arn("tis-sync:58")).await;
    assert_eq!(
        tis[&key("tis-sync", "TIS_API_URL")],
        "https://tis-api.esr.example/api"
    );

    assert_eq!(
        seed::emulated("x-B-1111.mq.EU-west-2.amazonaws.com:1"),
        "x-mockmq:1"
    );
}

#[tokio::test]
async fn revisions_register_in_order_and_every_service_runs_its_own() {
    let (_moto, config, seeded) = seeded().await;
    let ecs = aws_sdk_ecs::Client::new(&config);

    assert_eq!(
        seeded.task_definition_arn("esr-outbound:40"),
        "arn:aws:ecs:eu-west-2:123456789012:task-definition/esr-outbound:1"
    );
    assert_eq!(
        seeded.task_definition_arn("esr-outbound:41"),
        "arn:aws:ecs:eu-west-2:123456789012:task-definition/esr-outbound:2"
    );
    assert_eq!(
        seeded.latest_task_definitions["esr-outbound"],
        seeded.task_definition_arn("esr-outbound:41")
    );
    let world = seed::world();
    assert_eq!(
        seeded.task_definitions.len(),
        world["task_definitions"].as_array().unwrap().len()
    );
    for cluster in world["clusters"].as_array().unwrap() {
        let cluster_name = cluster["name"].as_str().unwrap();
        let services = cluster["services"].as_array().unwrap();
        for chunk in services.chunks(10) {
            let names: Vec<String> = chunk
                .iter()
                .map(|s| s["name"].as_str().unwrap().to_string())
                .collect();
            let described = ecs
                .describe_services()
                .cluster(cluster_name)
                .set_services(Some(names))
                .send()
                .await
                .expect("describe_services");
            assert!(
                described.failures().is_empty(),
                "{:?}",
                described.failures()
            );
            for (service, expected) in described.services().iter().zip(chunk) {
                let name = service.service_name().unwrap();
                assert_eq!(name, expected["name"].as_str().unwrap());
                assert_eq!(
                    service.task_definition(),
                    Some(seeded.task_definition_arn(expected["task_definition"].as_str().unwrap())),
                    "{cluster_name}/{name} runs its revision by full ARN"
                );
                assert_eq!(
                    (service.desired_count(), service.running_count()),
                    (1, 1),
                    "{cluster_name}/{name}"
                );
                let deployments = service.deployments();
                assert_eq!(deployments.len(), 1, "{cluster_name}/{name}");
                assert_eq!(deployments[0].status(), Some("PRIMARY"));
                assert_eq!(
                    deployments[0].rollout_state().map(|state| state.as_str()),
                    Some("COMPLETED"),
                    "{cluster_name}/{name}"
                );
            }
        }
    }
}

#[tokio::test]
async fn parameters_are_readable_by_name() {
    let (_moto, config, seeded) = seeded().await;
    let ssm = aws_sdk_ssm::Client::new(&config);

    assert_eq!(
        seeded.parameters["arn:aws:ssm:eu-west-2:123456789012:parameter/esr/rabbit/host"],
        "/esr/rabbit/host"
    );
    assert!(
        seeded
            .parameters
            .keys()
            .all(|arn| !arn.contains(":secretsmanager:")),
        "Secrets Manager values are not seeded"
    );
    assert_eq!(seeded.parameters.len(), 9);

    let got = ssm
        .get_parameters()
        .names("/esr/rabbit/host")
        .names("/esr/rabbit2/host")
        .names("/esr/rabbit/password")
        .with_decryption(true)
        .send()
        .await
        .expect("get_parameters");
    assert!(
        got.invalid_parameters().is_empty(),
        "{:?}",
        got.invalid_parameters()
    );
    let values: BTreeMap<&str, (&str, &str)> = got
        .parameters()
        .iter()
        .map(|p| {
            (
                p.name().unwrap(),
                (p.value().unwrap(), p.r#type().unwrap().as_str()),
            )
        })
        .collect();
    assert_eq!(
        values,
        BTreeMap::from([
            ("/esr/rabbit/host", ("mockmq", "String")),
            (
                "/esr/rabbit2/host",
                ("b-2222.mq.eu-west-2.amazonaws.com", "String")
            ),
            (
                "/esr/rabbit/password",
                ("not-a-real-password", "SecureString")
            ),
        ])
    );
}

#[tokio::test]
async fn the_nightly_export_rule_targets_the_batch_cluster() {
    let (_moto, config, seeded) = seeded().await;
    let events = aws_sdk_eventbridge::Client::new(&config);

    assert_eq!(seeded.rules, ["esr-dataexport-nightly"]);
    let rule = events
        .describe_rule()
        .name("esr-dataexport-nightly")
        .send()
        .await
        .expect("describe_rule");
    assert_eq!(rule.schedule_expression(), Some("cron(0 2 * * ? *)"));

    let targets = events
        .list_targets_by_rule()
        .rule("esr-dataexport-nightly")
        .send()
        .await
        .expect("list_targets_by_rule");
    let [target] = targets.targets() else {
        panic!("expected one target, got {:?}", targets.targets());
    };
    assert_eq!(target.arn(), seeded.cluster_arn("esr-batch"));
    assert_eq!(
        target.role_arn(),
        Some("arn:aws:iam::123456789012:role/ecsEventsRole")
    );
    let ecs_parameters = target.ecs_parameters().expect("EcsParameters");
    assert_eq!(
        ecs_parameters.task_definition_arn(),
        seeded.task_definition_arn("esr-dataexport:19"),
        "`esr-dataexport` alone means its latest revision"
    );

    let by_target = events
        .list_rule_names_by_target()
        .target_arn(seeded.cluster_arn("esr-batch"))
        .send()
        .await
        .expect("list_rule_names_by_target");
    assert_eq!(by_target.rule_names(), ["esr-dataexport-nightly"]);
}

#[tokio::test]
async fn the_old_broker_is_running_on_the_emulated_host() {
    let (_moto, config, seeded) = seeded().await;
    let mq = aws_sdk_mq::Client::new(&config);

    let broker = mq
        .describe_broker()
        .broker_id(&seeded.old_broker_id)
        .send()
        .await
        .expect("describe_broker");
    assert_eq!(broker.broker_state().map(|s| s.as_str()), Some("RUNNING"));
    assert_eq!(broker.broker_name(), Some("esr-rabbit-old"));
    assert_eq!(broker.engine_type().map(|e| e.as_str()), Some("RABBITMQ"));
    assert_eq!(broker.broker_arn(), Some(seeded.old_broker_arn.as_str()));
    let endpoints: Vec<&str> = broker
        .broker_instances()
        .iter()
        .flat_map(|instance| instance.endpoints())
        .map(String::as_str)
        .collect();
    assert_eq!(endpoints, ["amqps://mockmq:5671"]);

    let listed = mq.list_brokers().send().await.expect("list_brokers");
    assert_eq!(
        listed.broker_summaries().len(),
        1,
        "only the old broker is in MQ"
    );
}

#[tokio::test]
async fn reset_empties_the_emulator() {
    let (moto, config, seeded) = seeded().await;
    moto.reset();

    let ecs = aws_sdk_ecs::Client::new(&config);
    let clusters = ecs.list_clusters().send().await.expect("list_clusters");
    assert!(
        clusters.cluster_arns().is_empty(),
        "{:?}",
        clusters.cluster_arns()
    );
    let definitions = ecs
        .list_task_definitions()
        .send()
        .await
        .expect("list_task_definitions");
    assert!(definitions.task_definition_arns().is_empty());

    let mq = aws_sdk_mq::Client::new(&config);
    assert!(mq
        .describe_broker()
        .broker_id(&seeded.old_broker_id)
        .send()
        .await
        .is_err());
    let brokers = mq.list_brokers().send().await.expect("list_brokers");
    assert!(brokers.broker_summaries().is_empty());

    let ssm = aws_sdk_ssm::Client::new(&config);
    let got = ssm
        .get_parameters()
        .names("/esr/rabbit/host")
        .send()
        .await
        .expect("get_parameters");
    assert!(got.parameters().is_empty());

    let events = aws_sdk_eventbridge::Client::new(&config);
    let rules = events.list_rules().send().await.expect("list_rules");
    assert!(rules.rules().is_empty());

    // The next seed starts from scratch: moto numbers revisions from 1 again.
    let again = seed::esr_incident(&config).await;
    assert_eq!(again.task_definitions, seeded.task_definitions);
}

#[tokio::test]
async fn the_plan_names_the_seeded_broker_and_the_examples_services() {
    let (_moto, _config, seeded) = seeded().await;

    let dir = tempfile::tempdir().unwrap();
    let path = seed::write_plan(&seeded, dir.path());
    assert_eq!(path.file_name().unwrap(), "esr-incident-aws.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, seed::plan_toml(&seeded));
    let plan: toml::Table = text.parse().expect("the plan is TOML");
    let original: toml::Table = std::fs::read_to_string(seed::PLAN)
        .unwrap()
        .parse()
        .unwrap();

    assert_eq!(plan["migration"], original["migration"]);
    assert_eq!(plan["migration"]["region"].as_str(), Some("eu-west-2"));
    assert_eq!(
        plan["migration"]["clusters"],
        toml::Value::from(vec!["esr-prod", "esr-batch"])
    );
    let old = plan["brokers"]["old"].as_table().unwrap();
    assert_eq!(old["id"].as_str(), Some(seeded.old_broker_id.as_str()));
    assert!(!old.contains_key("name"));
    assert_eq!(old["amqp_url_env"].as_str(), Some("WARREN_OLD_AMQP_URL"));
    let new = plan["brokers"]["new"].as_table().unwrap();
    assert_eq!(
        new["endpoints"],
        toml::Value::from(vec![seed::NEW_ENDPOINT])
    );
    assert!(!new.contains_key("name") && !new.contains_key("id"));
    assert_eq!(plan["services"], original["services"]);
    assert_eq!(plan["parameters"], original["parameters"]);
}

#[test]
fn env_points_a_child_process_at_the_emulator() {
    let moto = moto::shared();
    let mut command = Command::new("env");
    command.env("AWS_PROFILE", "production").env(
        "AWS_ENDPOINT_URL_ECS",
        "https://ecs.eu-west-2.amazonaws.com",
    );
    let output = moto.configure(&mut command).output().expect("run env");
    let printed = String::from_utf8(output.stdout).unwrap();
    let lines: BTreeSet<&str> = printed.lines().collect();

    let endpoint = format!("AWS_ENDPOINT_URL=http://127.0.0.1:{}", moto.port());
    for expected in [
        endpoint.as_str(),
        "AWS_ACCESS_KEY_ID=test",
        "AWS_SECRET_ACCESS_KEY=test",
        "AWS_REGION=eu-west-2",
        "AWS_MAX_ATTEMPTS=1",
    ] {
        assert!(
            lines.contains(expected),
            "{expected} missing from\n{printed}"
        );
    }
    assert!(!printed.contains("AWS_PROFILE="), "{printed}");
    assert!(!printed.contains("AWS_ENDPOINT_URL_ECS="), "{printed}");
}

/// Whether something accepts connections on 127.0.0.1:`port`.
fn answers(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&address, Duration::from_millis(500)).is_ok()
}

/// Whether process `pid` still runs (a zombie does not).
fn runs(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

#[test]
fn a_private_server_stops_when_dropped() {
    let moto = Moto::start();
    let (pid, port, log) = (moto.pid(), moto.port(), moto.log_path().to_path_buf());
    assert!(answers(port));
    assert!(runs(pid));
    moto.reset();

    drop(moto);
    assert!(!answers(port), "port {port} still answers");
    assert!(!runs(pid), "moto_server (pid {pid}) still runs");
    assert!(!log.exists(), "{} was left behind", log.display());
}

/// Set for the child process of [`a_server_dies_with_its_test_process`].
const ORPHAN_PROBE: &str = "WARREN_TEST_MOTO_ORPHAN_PROBE";

/// Does nothing unless [`ORPHAN_PROBE`] is set. Then it starts a server and leaves the process
/// without dropping it, the way every test binary leaves its shared server.
#[test]
fn orphan_probe() {
    if std::env::var_os(ORPHAN_PROBE).is_none() {
        return;
    }
    let moto = Moto::start();
    println!("moto pid={} port={}", moto.pid(), moto.port());
    std::io::stdout().flush().unwrap();
    std::process::exit(0);
}

#[test]
fn a_server_dies_with_its_test_process() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "orphan_probe", "--nocapture", "--test-threads=1"])
        .env(ORPHAN_PROBE, "1")
        .output()
        .expect("run this test binary again");
    let printed = String::from_utf8_lossy(&output.stdout);
    let line = printed
        .lines()
        .find_map(|line| line.split_once("moto pid=").map(|(_, rest)| rest))
        .unwrap_or_else(|| {
            panic!(
                "the probe printed no pid:\n{printed}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    let (pid, port) = line.split_once(" port=").unwrap();
    let (pid, port): (u32, u16) = (pid.parse().unwrap(), port.parse().unwrap());

    let deadline = Instant::now() + Duration::from_secs(10);
    while (runs(pid) || answers(port)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !answers(port),
        "port {port} still answers after its test process ended"
    );
    assert!(
        !runs(pid),
        "moto_server (pid {pid}) outlived its test process"
    );
}
