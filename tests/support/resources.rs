//! Seeds the AWS emulator with the other resources that can point at a broker, each beside a
//! clean one of the same kind: EventBridge rules on a custom bus whose ECS target overrides the
//! environment, EventBridge Scheduler schedules, Lambda functions, EventBridge Pipes, Step
//! Functions state machines, and an ECS service deployed by CodeDeploy.
//!
//! Meant to run after [`super::seed::esr_incident`] (or any seed that made the clusters, task
//! definitions and old broker [`Anchors`] names), by the reading tests and by plan or
//! decommission tests alike. Independent of the other fixture modules: it needs only an
//! `SdkConfig` that points at the emulator (its endpoint is also used for the one IAM call).
//!
//! Moto's differences that shape it: a Lambda function needs an existing IAM role (created here
//! with a raw IAM request, as the crate does not depend on the IAM SDK); moto accepts no event
//! source mapping from Amazon MQ (those are tested with the SDK's mock client); rules on a custom
//! bus need an event pattern, not a schedule expression.
#![allow(dead_code)]

use aws_config::SdkConfig;
use aws_sdk_ecs::error::DisplayErrorContext;
use serde_json::json;

/// The custom event bus the rules are put on.
pub const BUS: &str = "esr-jobs";
/// A rule on [`BUS`] whose ECS target's input overrides the broker host with the old one.
pub const DIRTY_RULE: &str = "esr-replay";
/// A rule on [`BUS`] whose ECS target overrides only a log level.
pub const CLEAN_RULE: &str = "esr-archive";
/// The Scheduler group of [`DIRTY_SCHEDULE`].
pub const GROUP: &str = "esr";
/// A schedule in [`GROUP`] that pins the old broker's revision ([`Anchors::dirty_revision`]).
pub const DIRTY_SCHEDULE: &str = "esr-reconcile-hourly";
/// A schedule in the default group that runs [`Anchors::clean_family`]'s latest revision.
pub const CLEAN_SCHEDULE: &str = "esr-reporting-daily";
/// A function whose environment names the old broker (with a password, which reads mask).
pub const DIRTY_FUNCTION: &str = "esr-notifier";
/// A function whose environment names no broker.
pub const CLEAN_FUNCTION: &str = "esr-thumbnail";
/// A pipe whose source is the old broker's ARN.
pub const DIRTY_PIPE: &str = "esr-orders-pipe";
/// A pipe whose source is an SQS queue.
pub const CLEAN_PIPE: &str = "esr-stream-pipe";
/// A state machine that runs an ECS task with an environment override naming the old broker.
pub const DIRTY_STATE_MACHINE: &str = "esr-export";
/// A state machine that only passes.
pub const CLEAN_STATE_MACHINE: &str = "esr-noop";
/// An ECS service (in [`Anchors::cluster`]) whose deployment controller is CodeDeploy.
pub const CODE_DEPLOY_SERVICE: &str = "esr-bluegreen";
/// The role the functions assume.
pub const LAMBDA_ROLE: &str = "esr-lambda";
/// The password in [`DIRTY_FUNCTION`]'s broker URL; it must never be read back.
pub const PASSWORD: &str = "not-a-real-password";

/// What the seed points the resources at.
#[derive(Debug, Clone)]
pub struct Anchors {
    /// The account in every ARN (`123456789012` on moto).
    pub account: String,
    /// The region of every ARN.
    pub region: String,
    /// The old broker's host as the emulator shows it (`mockmq`).
    pub old_host: String,
    /// The old broker's ARN (event source mappings and pipes name it).
    pub old_broker_arn: String,
    /// Name of the cluster the ECS targets run in (and the CodeDeploy service lives in).
    pub cluster: String,
    /// Its ARN.
    pub cluster_arn: String,
    /// ARN of a revision whose environment names the old broker: the schedule pins it and the
    /// CodeDeploy service runs it.
    pub dirty_revision: String,
    /// A family whose latest revision names no old broker (e.g. one on the new broker).
    pub clean_family: String,
}

/// What [`seed`] created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeededResources {
    pub dirty_rule_arn: String,
    pub clean_rule_arn: String,
    pub dirty_schedule_arn: String,
    pub clean_schedule_arn: String,
    pub dirty_function_arn: String,
    pub clean_function_arn: String,
    pub dirty_pipe_arn: String,
    pub clean_pipe_arn: String,
    pub dirty_state_machine_arn: String,
    pub clean_state_machine_arn: String,
    pub code_deploy_service_arn: String,
    /// The SQS queue ARN the clean pipe reads from (and both pipes write to).
    pub queue_arn: String,
}

impl Anchors {
    /// ARN of `family` alone (its latest revision).
    pub fn family_arn(&self, family: &str) -> String {
        format!(
            "arn:aws:ecs:{}:{}:task-definition/{family}",
            self.region, self.account
        )
    }

    fn role_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:role/{name}", self.account)
    }
}

/// The environment override input of an ECS target (RunTask's overrides):
/// container → variable → value.
pub fn ecs_input(container: &str, variable: &str, value: &str) -> String {
    json!({
        "containerOverrides": [{
            "name": container,
            "environment": [{"name": variable, "value": value}],
        }]
    })
    .to_string()
}

/// The definition of [`DIRTY_STATE_MACHINE`]: an `ecs:runTask.sync` state whose second
/// environment override names `host`.
pub fn dirty_definition(anchors: &Anchors) -> serde_json::Value {
    json!({
        "Comment": "Exports the day's records",
        "StartAt": "Export",
        "States": {
            "Export": {
                "Type": "Task",
                "Resource": "arn:aws:states:::ecs:runTask.sync",
                "Parameters": {
                    "Cluster": anchors.cluster_arn,
                    "TaskDefinition": anchors.family_arn(&anchors.clean_family),
                    "Overrides": {
                        "ContainerOverrides": [{
                            "Name": anchors.clean_family,
                            "Environment": [
                                {"Name": "LOG_LEVEL", "Value": "INFO"},
                                {"Name": "SPRING_RABBITMQ_HOST", "Value": anchors.old_host},
                            ],
                        }],
                    },
                },
                "End": true,
            },
        },
    })
}

/// Seeds every resource of this module; panics (naming the call) on any error.
pub async fn seed(config: &SdkConfig, anchors: &Anchors) -> SeededResources {
    let queue_arn = format!(
        "arn:aws:sqs:{}:{}:esr-stream",
        anchors.region, anchors.account
    );
    let (dirty_rule_arn, clean_rule_arn) = rules(config, anchors).await;
    let (dirty_schedule_arn, clean_schedule_arn) = schedules(config, anchors).await;
    let (dirty_function_arn, clean_function_arn) = functions(config, anchors).await;
    let (dirty_pipe_arn, clean_pipe_arn) = pipes(config, anchors, &queue_arn).await;
    let (dirty_state_machine_arn, clean_state_machine_arn) = state_machines(config, anchors).await;
    let code_deploy_service_arn = code_deploy_service(config, anchors).await;
    SeededResources {
        dirty_rule_arn,
        clean_rule_arn,
        dirty_schedule_arn,
        clean_schedule_arn,
        dirty_function_arn,
        clean_function_arn,
        dirty_pipe_arn,
        clean_pipe_arn,
        dirty_state_machine_arn,
        clean_state_machine_arn,
        code_deploy_service_arn,
        queue_arn,
    }
}

async fn rules(config: &SdkConfig, anchors: &Anchors) -> (String, String) {
    use aws_sdk_eventbridge::types::{EcsParameters, LaunchType, Target};
    let events = aws_sdk_eventbridge::Client::new(config);
    must(
        format!("create_event_bus {BUS}"),
        events.create_event_bus().name(BUS).send().await,
    );
    let mut arns = Vec::new();
    for (rule, input) in [
        (
            DIRTY_RULE,
            ecs_input(
                &anchors.clean_family,
                "SPRING_RABBITMQ_HOST",
                &anchors.old_host,
            ),
        ),
        (
            CLEAN_RULE,
            ecs_input(&anchors.clean_family, "LOG_LEVEL", "DEBUG"),
        ),
    ] {
        let put = must(
            format!("put_rule {rule}"),
            events
                .put_rule()
                .name(rule)
                .event_bus_name(BUS)
                .event_pattern(json!({"source": [format!("esr.{rule}")]}).to_string())
                .send()
                .await,
        );
        arns.push(put.rule_arn().unwrap_or_default().to_string());
        let target = must(
            "Target",
            Target::builder()
                .id(format!("{rule}-task"))
                .arn(&anchors.cluster_arn)
                .role_arn(anchors.role_arn("ecsEventsRole"))
                .input(input)
                .ecs_parameters(must(
                    "EcsParameters",
                    EcsParameters::builder()
                        .task_definition_arn(anchors.family_arn(&anchors.clean_family))
                        .task_count(1)
                        .launch_type(LaunchType::Fargate)
                        .build(),
                ))
                .build(),
        );
        let out = must(
            format!("put_targets {rule}"),
            events
                .put_targets()
                .rule(rule)
                .event_bus_name(BUS)
                .targets(target)
                .send()
                .await,
        );
        assert_eq!(out.failed_entry_count(), 0, "put_targets {rule}");
    }
    (arns[0].clone(), arns[1].clone())
}

async fn schedules(config: &SdkConfig, anchors: &Anchors) -> (String, String) {
    use aws_sdk_scheduler::types::{
        EcsParameters, FlexibleTimeWindow, FlexibleTimeWindowMode, Target,
    };
    let scheduler = aws_sdk_scheduler::Client::new(config);
    must(
        format!("create_schedule_group {GROUP}"),
        scheduler.create_schedule_group().name(GROUP).send().await,
    );
    let mut arns = Vec::new();
    for (name, group, task_definition, input) in [
        (DIRTY_SCHEDULE, GROUP, anchors.dirty_revision.clone(), None),
        (
            CLEAN_SCHEDULE,
            "default",
            anchors.family_arn(&anchors.clean_family),
            Some(ecs_input(&anchors.clean_family, "LOG_LEVEL", "DEBUG")),
        ),
    ] {
        let target = must(
            "Target",
            Target::builder()
                .arn(&anchors.cluster_arn)
                .role_arn(anchors.role_arn("esrSchedulerRole"))
                .set_input(input)
                .ecs_parameters(must(
                    "EcsParameters",
                    EcsParameters::builder()
                        .task_definition_arn(task_definition)
                        .task_count(1)
                        .build(),
                ))
                .build(),
        );
        let out = must(
            format!("create_schedule {name}"),
            scheduler
                .create_schedule()
                .name(name)
                .group_name(group)
                .schedule_expression("rate(1 hour)")
                .flexible_time_window(must(
                    "FlexibleTimeWindow",
                    FlexibleTimeWindow::builder()
                        .mode(FlexibleTimeWindowMode::Off)
                        .build(),
                ))
                .target(target)
                .send()
                .await,
        );
        arns.push(out.schedule_arn().to_string());
    }
    (arns[0].clone(), arns[1].clone())
}

/// The smallest valid zip archive (an empty one): moto stores the code, never runs it.
const EMPTY_ZIP: [u8; 22] = [
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

async fn functions(config: &SdkConfig, anchors: &Anchors) -> (String, String) {
    use aws_sdk_lambda::primitives::Blob;
    use aws_sdk_lambda::types::{Environment, FunctionCode, Runtime};
    create_role(config, LAMBDA_ROLE);
    let lambda = aws_sdk_lambda::Client::new(config);
    let mut arns = Vec::new();
    for (name, variables) in [
        (
            DIRTY_FUNCTION,
            vec![
                (
                    "SPRING_RABBITMQ_ADDRESSES",
                    format!("amqps://esr-notifier:{PASSWORD}@{}:5671", anchors.old_host),
                ),
                ("LOG_LEVEL", "INFO".to_string()),
            ],
        ),
        (
            CLEAN_FUNCTION,
            vec![("THUMBNAIL_BUCKET", "esr-thumbnails-prod".to_string())],
        ),
    ] {
        let mut environment = Environment::builder();
        for (variable, value) in variables {
            environment = environment.variables(variable, value);
        }
        let out = must(
            format!("create_function {name}"),
            lambda
                .create_function()
                .function_name(name)
                .runtime(Runtime::Python312)
                .role(anchors.role_arn(LAMBDA_ROLE))
                .handler("index.handler")
                .code(
                    FunctionCode::builder()
                        .zip_file(Blob::new(EMPTY_ZIP.to_vec()))
                        .build(),
                )
                .environment(environment.build())
                .send()
                .await,
        );
        arns.push(out.function_arn().unwrap_or_default().to_string());
    }
    (arns[0].clone(), arns[1].clone())
}

async fn pipes(config: &SdkConfig, anchors: &Anchors, queue_arn: &str) -> (String, String) {
    let pipes = aws_sdk_pipes::Client::new(config);
    let mut arns = Vec::new();
    for (name, source) in [
        (DIRTY_PIPE, anchors.old_broker_arn.as_str()),
        (CLEAN_PIPE, queue_arn),
    ] {
        let out = must(
            format!("create_pipe {name}"),
            pipes
                .create_pipe()
                .name(name)
                .source(source)
                .target(queue_arn)
                .role_arn(anchors.role_arn("esrPipesRole"))
                .send()
                .await,
        );
        arns.push(out.arn().unwrap_or_default().to_string());
    }
    (arns[0].clone(), arns[1].clone())
}

async fn state_machines(config: &SdkConfig, anchors: &Anchors) -> (String, String) {
    let sfn = aws_sdk_sfn::Client::new(config);
    let mut arns = Vec::new();
    for (name, definition) in [
        (DIRTY_STATE_MACHINE, dirty_definition(anchors)),
        (
            CLEAN_STATE_MACHINE,
            json!({"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": true}}}),
        ),
    ] {
        let out = must(
            format!("create_state_machine {name}"),
            sfn.create_state_machine()
                .name(name)
                .definition(definition.to_string())
                .role_arn(anchors.role_arn("esrStatesRole"))
                .send()
                .await,
        );
        arns.push(out.state_machine_arn().to_string());
    }
    (arns[0].clone(), arns[1].clone())
}

/// [`CODE_DEPLOY_SERVICE`]: runs [`Anchors::dirty_revision`], deployed by CodeDeploy, tagged as
/// CloudFormation tags what it owns.
async fn code_deploy_service(config: &SdkConfig, anchors: &Anchors) -> String {
    use aws_sdk_ecs::types::{DeploymentController, DeploymentControllerType, Tag};
    let ecs = aws_sdk_ecs::Client::new(config);
    let out = must(
        format!("create_service {CODE_DEPLOY_SERVICE}"),
        ecs.create_service()
            .cluster(&anchors.cluster)
            .service_name(CODE_DEPLOY_SERVICE)
            .task_definition(&anchors.dirty_revision)
            .desired_count(1)
            .deployment_controller(must(
                "DeploymentController",
                DeploymentController::builder()
                    .r#type(DeploymentControllerType::CodeDeploy)
                    .build(),
            ))
            .tags(
                Tag::builder()
                    .key("aws:cloudformation:stack-name")
                    .value("esr-bluegreen")
                    .build(),
            )
            .tags(Tag::builder().key("team").value("esr").build())
            .send()
            .await,
    );
    out.service()
        .and_then(|s| s.service_arn())
        .unwrap_or_default()
        .to_string()
}

/// Creates IAM role `name` with a raw query request: the emulator serves IAM on the same
/// endpoint and routes by the credential scope of the (unchecked) signature.
fn create_role(config: &SdkConfig, name: &str) {
    let endpoint = config
        .endpoint_url()
        .expect("the emulator's SdkConfig has an endpoint");
    let body = format!(
        "Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument=%7B%7D"
    );
    let answer = ureq::post(endpoint)
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(body);
    match answer {
        Ok(_) => {}
        Err(e) => panic!("seeding the emulator: IAM CreateRole {name}: {e}"),
    }
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
