//! Seeds the AWS emulator with the bundled incident example (`examples/esr-incident/world.json`)
//! and writes the plan that goes with it.
//!
//! Moto gives every Amazon MQ broker the endpoint host `mockmq`, so two emulated brokers cannot
//! be told apart. The seed therefore creates only the old broker in MQ (`esr-rabbit-old`, whose
//! id moto chooses), rewrites the old broker's host in every env and parameter value to `mockmq`,
//! and the plan ([`plan_toml`]) names the new broker by its endpoint instead of an MQ id.
//!
//! What the world file has and the emulator cannot show: its revision numbers (moto numbers each
//! family's revisions from 1; [`Seeded::task_definitions`] maps one to the other), desired counts
//! other than 1 (every service gets 1, which moto reports as a completed rollout), older
//! deployments still running, Secrets Manager values (skipped), and the brokers' queues and
//! connections (they live on RabbitMQ, not in AWS).
//!
//! Independent of the `moto` module: it needs only an `SdkConfig` that points at the emulator.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use aws_config::SdkConfig;
use aws_sdk_ecs::error::DisplayErrorContext;
use serde_json::Value;

/// The example world that [`esr_incident`] seeds.
pub const WORLD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/esr-incident/world.json"
);
/// The example plan that [`plan_toml`] adapts.
pub const PLAN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/plans/esr-incident.toml");
/// The old broker's host in the example (matched in any case).
pub const OLD_HOST: &str = "b-1111.mq.eu-west-2.amazonaws.com";
/// What the old broker's host becomes in the emulator: moto's endpoint host for every broker.
pub const EMULATED_OLD_HOST: &str = "mockmq";
/// Name of the old broker, as created in the emulator's MQ.
pub const OLD_BROKER_NAME: &str = "esr-rabbit-old";
/// The new broker's endpoint, which the plan names instead of an MQ broker.
pub const NEW_ENDPOINT: &str = "amqps://b-2222.mq.eu-west-2.amazonaws.com:5671";
/// The schedule expression given to every EventBridge rule of the example's `schedules`.
pub const SCHEDULE_EXPRESSION: &str = "cron(0 2 * * ? *)";
/// File name that [`write_plan`] uses.
pub const PLAN_FILE_NAME: &str = "esr-incident-aws.toml";

/// What [`esr_incident`] created, with the identifiers the emulator chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seeded {
    /// The account moto puts in every ARN (`123456789012`).
    pub account: String,
    /// The region of every resource (`eu-west-2`).
    pub region: String,
    /// The id moto gave the old broker (`esr-rabbit-old`).
    pub old_broker_id: String,
    /// Its ARN.
    pub old_broker_arn: String,
    /// The world file's `family:revision` → the ARN of the revision registered for it.
    pub task_definitions: BTreeMap<String, String>,
    /// Family → ARN of its latest registered revision (what `family` alone means).
    pub latest_task_definitions: BTreeMap<String, String>,
    /// Cluster name → cluster ARN.
    pub clusters: BTreeMap<String, String>,
    /// `cluster/service` → service ARN.
    pub services: BTreeMap<String, String>,
    /// SSM parameter ARN in the world file → its name in the emulator (`/esr/rabbit/host`).
    pub parameters: BTreeMap<String, String>,
    /// Names of the EventBridge rules created for the world file's `schedules`.
    pub rules: Vec<String>,
}

impl Seeded {
    /// The ARN registered for the world file's `family:revision`. Panics if there is none.
    pub fn task_definition_arn(&self, file_key: &str) -> &str {
        self.task_definitions
            .get(file_key)
            .unwrap_or_else(|| panic!("no task definition {file_key} was seeded"))
    }

    /// The ARN of cluster `name`. Panics if there is none.
    pub fn cluster_arn(&self, name: &str) -> &str {
        self.clusters
            .get(name)
            .unwrap_or_else(|| panic!("no cluster {name} was seeded"))
    }

    /// The ARN of role `name` in the seeded account.
    pub fn role_arn(&self, name: &str) -> String {
        role_arn(&self.account, name)
    }
}

/// The example world, parsed.
pub fn world() -> Value {
    let text = fs::read_to_string(WORLD).unwrap_or_else(|e| panic!("cannot read {WORLD}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{WORLD} is not JSON: {e}"))
}

/// `value` with every occurrence of [`OLD_HOST`] (in any case) replaced by
/// [`EMULATED_OLD_HOST`].
pub fn emulated(value: &str) -> String {
    // ASCII lower-casing keeps byte offsets, so matches in `lower` are matches in `value`.
    let lower = value.to_ascii_lowercase();
    let mut out = String::with_capacity(value.len());
    let mut rest = 0;
    for (start, _) in lower.match_indices(OLD_HOST) {
        out.push_str(&value[rest..start]);
        out.push_str(EMULATED_OLD_HOST);
        rest = start + OLD_HOST.len();
    }
    out.push_str(&value[rest..]);
    out
}

/// The name of the SSM parameter that `arn` names (`…:parameter/esr/rabbit/host` →
/// `/esr/rabbit/host`); `None` for anything that is not an SSM parameter ARN.
pub fn parameter_name(arn: &str) -> Option<String> {
    if !arn.starts_with("arn:aws:ssm:") {
        return None;
    }
    let (_, path) = arn.split_once(":parameter")?;
    Some(if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    })
}

/// Seeds the emulator behind `config` with the example world ([`WORLD`]): the old broker in MQ,
/// both clusters, every task definition revision (with what real ones carry: sizes, roles, tags,
/// logging, health checks), every service (desired count 1, on its revision's full ARN), the
/// SSM parameters, and one EventBridge rule per schedule. Expects an empty emulator; panics
/// (naming the call) on any error.
pub async fn esr_incident(config: &SdkConfig) -> Seeded {
    let world = world();
    let region = config.region().map_or_else(
        || str_field(&world, "region").to_string(),
        ToString::to_string,
    );
    let mq = aws_sdk_mq::Client::new(config);
    let ecs = aws_sdk_ecs::Client::new(config);
    let ssm = aws_sdk_ssm::Client::new(config);
    let events = aws_sdk_eventbridge::Client::new(config);

    let (old_broker_id, old_broker_arn) = create_old_broker(&mq).await;

    let mut clusters = BTreeMap::new();
    for cluster in array(&world, "clusters") {
        let name = str_field(cluster, "name");
        let created = must(
            format!("create_cluster {name}"),
            ecs.create_cluster().cluster_name(name).send().await,
        );
        let arn = created
            .cluster()
            .and_then(|c| c.cluster_arn())
            .unwrap_or_else(|| panic!("create_cluster {name} returned no ARN"));
        clusters.insert(name.to_string(), arn.to_string());
    }
    let account = clusters
        .values()
        .next()
        .and_then(|arn| arn.split(':').nth(4))
        .unwrap_or("123456789012")
        .to_string();

    // Revisions of one family in ascending order, so that moto's numbering follows the file's.
    let mut definitions: Vec<&Value> = array(&world, "task_definitions").iter().collect();
    definitions.sort_by_key(|definition| u64_field(definition, "revision"));
    let mut task_definitions = BTreeMap::new();
    let mut latest_task_definitions = BTreeMap::new();
    for definition in definitions {
        let key = format!(
            "{}:{}",
            str_field(definition, "family"),
            u64_field(definition, "revision")
        );
        let arn = register_task_definition(&ecs, &account, &region, definition).await;
        latest_task_definitions.insert(str_field(definition, "family").to_string(), arn.clone());
        task_definitions.insert(key, arn);
    }

    let mut services = BTreeMap::new();
    for cluster in array(&world, "clusters") {
        let cluster_name = str_field(cluster, "name");
        for service in array(cluster, "services") {
            let name = str_field(service, "name");
            let file_key = str_field(service, "task_definition");
            let task_definition = task_definitions
                .get(file_key)
                .unwrap_or_else(|| panic!("service {cluster_name}/{name} runs {file_key}, which the world file does not define"));
            let arn = create_service(&ecs, cluster_name, name, task_definition).await;
            services.insert(format!("{cluster_name}/{name}"), arn);
        }
    }

    let mut parameters = BTreeMap::new();
    if let Some(values) = world.get("parameters").and_then(Value::as_object) {
        for (arn, value) in values {
            // Secrets Manager values are not seeded: moto's Secrets Manager is not used.
            let Some(name) = parameter_name(arn) else {
                continue;
            };
            let value = value
                .as_str()
                .unwrap_or_else(|| panic!("parameter {arn} is not a string"));
            put_parameter(&ssm, &name, &emulated(value)).await;
            parameters.insert(arn.clone(), name);
        }
    }

    let mut rules = Vec::new();
    for schedule in world
        .get("schedules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = str_field(schedule, "name");
        let cluster = str_field(schedule, "cluster");
        let cluster_arn = clusters
            .get(cluster)
            .unwrap_or_else(|| panic!("schedule {name} names unknown cluster {cluster}"));
        let named = str_field(schedule, "task_definition");
        let task_definition = if named.contains(':') {
            task_definitions.get(named)
        } else {
            latest_task_definitions.get(named)
        }
        .unwrap_or_else(|| panic!("schedule {name} names unknown task definition {named}"));
        create_schedule(&events, &account, name, cluster_arn, task_definition).await;
        rules.push(name.to_string());
    }

    Seeded {
        account,
        region,
        old_broker_id,
        old_broker_arn,
        task_definitions,
        latest_task_definitions,
        clusters,
        services,
        parameters,
        rules,
    }
}

/// The plan file for the seeded emulator: [`PLAN`] with the old broker named by its MQ id
/// (`id = "<seeded id>"`) and the new one by its endpoint ([`NEW_ENDPOINT`]); migration, region,
/// clusters, services and parameters as in [`PLAN`].
pub fn plan_toml(seeded: &Seeded) -> String {
    let original = fs::read_to_string(PLAN).unwrap_or_else(|e| panic!("cannot read {PLAN}: {e}"));
    let mut plan = String::from(
        "# The ESR incident plan (plans/esr-incident.toml) for the AWS emulator, written by\n\
         # tests/support/seed.rs: the old broker is the one seeded into the emulator's MQ, the new\n\
         # one is named by its endpoint (the emulator gives every MQ broker the same host).\n",
    );
    let mut section = "";
    let mut in_header = true;
    for line in original.lines() {
        let trimmed = line.trim();
        // The original's opening comment describes the rehearsal; ours replaces it.
        if in_header && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if in_header {
            plan.push('\n');
            in_header = false;
        }
        if trimmed.starts_with('[') {
            section = trimmed;
        }
        let key = trimmed.split('=').next().unwrap_or_default().trim();
        let names_broker = !trimmed.starts_with('#') && (key == "id" || key == "name");
        match section {
            "[brokers.old]" if names_broker => {
                plan.push_str(&format!("id = \"{}\"\n", seeded.old_broker_id));
            }
            "[brokers.new]" if names_broker => {
                plan.push_str(&format!("endpoints = [\"{NEW_ENDPOINT}\"]\n"));
            }
            _ => {
                plan.push_str(line);
                plan.push('\n');
            }
        }
    }
    plan
}

/// Writes [`plan_toml`] to `dir/esr-incident-aws.toml` and returns that path.
pub fn write_plan(seeded: &Seeded, dir: &Path) -> PathBuf {
    let path = dir.join(PLAN_FILE_NAME);
    fs::write(&path, plan_toml(seeded))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

// ---------------------------------------------------------------------------------------------
// One resource at a time
// ---------------------------------------------------------------------------------------------

async fn create_old_broker(mq: &aws_sdk_mq::Client) -> (String, String) {
    use aws_sdk_mq::types::{DeploymentMode, EngineType, User};

    let created = must(
        format!("create_broker {OLD_BROKER_NAME}"),
        mq.create_broker()
            .broker_name(OLD_BROKER_NAME)
            .engine_type(EngineType::Rabbitmq)
            .engine_version("3.13")
            .deployment_mode(DeploymentMode::SingleInstance)
            .host_instance_type("mq.m5.large")
            .publicly_accessible(false)
            .auto_minor_version_upgrade(true)
            .users(
                User::builder()
                    .username("esr-admin")
                    .password("not-a-real-password")
                    .build(),
            )
            .send()
            .await,
    );
    let id = created
        .broker_id()
        .unwrap_or_else(|| panic!("create_broker {OLD_BROKER_NAME} returned no id"));
    let arn = created.broker_arn().unwrap_or_default();
    (id.to_string(), arn.to_string())
}

/// Registers one revision of the world file's `definition` and returns its ARN.
async fn register_task_definition(
    ecs: &aws_sdk_ecs::Client,
    account: &str,
    region: &str,
    definition: &Value,
) -> String {
    use aws_sdk_ecs::types::{
        Compatibility, CpuArchitecture, NetworkMode, OsFamily, RuntimePlatform, Tag, Volume,
    };

    let family = str_field(definition, "family");
    let revision = u64_field(definition, "revision");
    let mut request = ecs
        .register_task_definition()
        .family(family)
        .cpu("256")
        .memory("512")
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .task_role_arn(role_arn(account, &format!("{family}-task")))
        .execution_role_arn(role_arn(account, "ecsTaskExecutionRole"))
        .runtime_platform(
            RuntimePlatform::builder()
                .operating_system_family(OsFamily::Linux)
                .cpu_architecture(CpuArchitecture::X8664)
                .build(),
        )
        .volumes(Volume::builder().name("scratch").build())
        .tags(Tag::builder().key("team").value("esr").build())
        .tags(Tag::builder().key("service").value(family).build());
    for (index, container) in array(definition, "containers").iter().enumerate() {
        let port = 8080 + i32::try_from(index).expect("a handful of containers");
        request = request.container_definitions(container_definition(
            account, region, family, revision, port, container,
        ));
    }
    let registered = must(
        format!("register_task_definition {family} (file revision {revision})"),
        request.send().await,
    );
    registered
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .unwrap_or_else(|| panic!("register_task_definition {family} returned no ARN"))
        .to_string()
}

fn container_definition(
    account: &str,
    region: &str,
    family: &str,
    revision: u64,
    port: i32,
    container: &Value,
) -> aws_sdk_ecs::types::ContainerDefinition {
    use aws_sdk_ecs::types::{
        ContainerDefinition, HealthCheck, KeyValuePair, LogConfiguration, LogDriver, PortMapping,
        Secret, TransportProtocol,
    };

    let name = str_field(container, "name");
    let mut builder = ContainerDefinition::builder()
        .name(name)
        .image(format!(
            "{account}.dkr.ecr.{region}.amazonaws.com/{name}:release-{revision}"
        ))
        .essential(true)
        .port_mappings(
            PortMapping::builder()
                .container_port(port)
                .protocol(TransportProtocol::Tcp)
                .build(),
        )
        .log_configuration(must(
            "LogConfiguration",
            LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", format!("/ecs/{family}"))
                .options("awslogs-region", region)
                .options("awslogs-stream-prefix", name)
                .build(),
        ))
        .health_check(must(
            "HealthCheck",
            HealthCheck::builder()
                .command("CMD-SHELL")
                .command(format!("curl -f http://localhost:{port}/health || exit 1"))
                .interval(30)
                .timeout(5)
                .retries(3)
                .start_period(60)
                .build(),
        ))
        .docker_labels("team", "esr")
        .docker_labels("service", family);
    for (variable, value) in object(container, "environment") {
        let value = value
            .as_str()
            .unwrap_or_else(|| panic!("{family}/{name}: {variable} is not a string"));
        builder = builder.environment(
            KeyValuePair::builder()
                .name(variable)
                .value(emulated(value))
                .build(),
        );
    }
    for (variable, value_from) in object(container, "secrets") {
        let value_from = value_from
            .as_str()
            .unwrap_or_else(|| panic!("{family}/{name}: secret {variable} is not a string"));
        builder = builder.secrets(must(
            "Secret",
            Secret::builder()
                .name(variable)
                .value_from(value_from)
                .build(),
        ));
    }
    builder.build()
}

/// Creates one service on `task_definition` (a full ARN) and returns the service's ARN.
async fn create_service(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    name: &str,
    task_definition: &str,
) -> String {
    use aws_sdk_ecs::types::{DeploymentCircuitBreaker, DeploymentConfiguration, LaunchType, Tag};

    // No networkConfiguration, although awsvpc services have one on real ECS: moto checks its
    // subnets against its EC2, and this crate has no EC2 client to look up moto's default ones.
    let created = must(
        format!("create_service {cluster}/{name}"),
        ecs.create_service()
            .cluster(cluster)
            .service_name(name)
            .task_definition(task_definition)
            .desired_count(1)
            .launch_type(LaunchType::Fargate)
            .deployment_configuration(
                DeploymentConfiguration::builder()
                    .deployment_circuit_breaker(
                        DeploymentCircuitBreaker::builder()
                            .enable(true)
                            .rollback(true)
                            .build(),
                    )
                    .maximum_percent(200)
                    .minimum_healthy_percent(100)
                    .build(),
            )
            .tags(Tag::builder().key("team").value("esr").build())
            .send()
            .await,
    );
    created
        .service()
        .and_then(|s| s.service_arn())
        .unwrap_or_else(|| panic!("create_service {cluster}/{name} returned no ARN"))
        .to_string()
}

/// Puts one parameter: a `SecureString` for anything secret (passwords, keys, secrets), a
/// `String` for the rest (hosts, user names).
async fn put_parameter(ssm: &aws_sdk_ssm::Client, name: &str, value: &str) {
    use aws_sdk_ssm::types::ParameterType;

    let last = name.rsplit('/').next().unwrap_or(name);
    let secret = ["password", "secret", "key"]
        .iter()
        .any(|word| last.contains(word));
    let kind = if secret {
        ParameterType::SecureString
    } else {
        ParameterType::String
    };
    must(
        format!("put_parameter {name}"),
        ssm.put_parameter()
            .name(name)
            .value(value)
            .r#type(kind)
            .send()
            .await,
    );
}

/// An EventBridge rule that runs `task_definition` on `cluster_arn` every night.
async fn create_schedule(
    events: &aws_sdk_eventbridge::Client,
    account: &str,
    name: &str,
    cluster_arn: &str,
    task_definition: &str,
) {
    use aws_sdk_eventbridge::types::{
        AssignPublicIp, AwsVpcConfiguration, EcsParameters, LaunchType, NetworkConfiguration,
        RuleState, Target,
    };

    must(
        format!("put_rule {name}"),
        events
            .put_rule()
            .name(name)
            .schedule_expression(SCHEDULE_EXPRESSION)
            .state(RuleState::Enabled)
            .description(format!("Runs {task_definition} nightly"))
            .send()
            .await,
    );
    let ecs_parameters = must(
        "EcsParameters",
        EcsParameters::builder()
            .task_definition_arn(task_definition)
            .task_count(1)
            .launch_type(LaunchType::Fargate)
            .network_configuration(
                NetworkConfiguration::builder()
                    .awsvpc_configuration(must(
                        "AwsVpcConfiguration",
                        AwsVpcConfiguration::builder()
                            .subnets("subnet-0a1b2c3d4e5f60718")
                            .security_groups("sg-0a1b2c3d4e5f60718")
                            .assign_public_ip(AssignPublicIp::Disabled)
                            .build(),
                    ))
                    .build(),
            )
            .build(),
    );
    let target = must(
        "Target",
        Target::builder()
            .id(name)
            .arn(cluster_arn)
            .role_arn(role_arn(account, "ecsEventsRole"))
            .ecs_parameters(ecs_parameters)
            .build(),
    );
    let put = must(
        format!("put_targets {name}"),
        events.put_targets().rule(name).targets(target).send().await,
    );
    assert_eq!(
        put.failed_entry_count(),
        0,
        "put_targets {name} failed: {:?}",
        put.failed_entries()
    );
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

fn role_arn(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:role/{name}")
}

/// `result`'s value, or a panic that names the call and the whole error chain.
fn must<T, E: std::error::Error>(what: impl std::fmt::Display, result: Result<T, E>) -> T {
    result.unwrap_or_else(|error| {
        panic!(
            "seeding the emulator: {what}: {}",
            DisplayErrorContext(error)
        )
    })
}

fn str_field<'v>(value: &'v Value, key: &str) -> &'v str {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{WORLD}: expected a string {key:?} in {value}"))
}

fn u64_field(value: &Value, key: &str) -> u64 {
    value
        .get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{WORLD}: expected a number {key:?} in {value}"))
}

fn array<'v>(value: &'v Value, key: &str) -> &'v Vec<Value> {
    value
        .get(key)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{WORLD}: expected a list {key:?}"))
}

fn object<'v>(value: &'v Value, key: &str) -> impl Iterator<Item = (&'v String, &'v Value)> {
    value
        .get(key)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
}
