//! Retargeting scheduled tasks on AWS through the backend's `update_schedule`: an EventBridge
//! rule's ECS target on a custom bus and an EventBridge Scheduler schedule on the emulator, read
//! back through the SDK; and, with the SDK's mock client, a PutTargets answer that lists a
//! failed entry (the emulator never answers one).

#[path = "support/moto.rs"]
mod moto;

use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ecs::types::{ContainerDefinition, KeyValuePair};
use aws_sdk_eventbridge::types::{EcsParameters, PutTargetsResultEntry, Target};
use aws_sdk_scheduler::types::{FlexibleTimeWindow, FlexibleTimeWindowMode, ScheduleState};
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use indexmap::IndexMap;
use serde_json::{json, Value};
use warren::backend::aws::{runtime, Aws, Clients};
use warren::backend::Backend;
use warren::model::{Schedule, ScheduleKind};

const OLD_HOST: &str = "b-1111.mq.eu-west-2.amazonaws.com";
const NEW_HOST: &str = "b-2222.mq.eu-west-2.amazonaws.com";
const ROLE: &str = "arn:aws:iam::123456789012:role/ecsEventsRole";

/// A RunTask input whose container `app` has `HOST` = `host` and `MODE` = `full`.
fn input(host: &str) -> String {
    json!({"containerOverrides": [{"name": "app", "environment": [
        {"name": "HOST", "value": host}, {"name": "MODE", "value": "full"}]}]})
    .to_string()
}

/// `app` → `HOST` = `host`, `MODE` = `full`.
fn overrides(host: &str) -> IndexMap<String, IndexMap<String, String>> {
    let mut app = IndexMap::new();
    app.insert("HOST".to_owned(), host.to_owned());
    app.insert("MODE".to_owned(), "full".to_owned());
    IndexMap::from([("app".to_owned(), app)])
}

fn value_of(input: Option<&str>, variable: &str) -> String {
    let input: Value = serde_json::from_str(input.expect("an input")).expect("JSON input");
    input["containerOverrides"][0]["environment"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == variable)
        .map(|e| e["value"].as_str().unwrap().to_owned())
        .unwrap()
}

/// What the emulator holds for the test: the cluster and the two revisions' ARNs.
struct Seeded {
    cluster: String,
    first: String,
    second: String,
}

async fn seed(config: &aws_config::SdkConfig) -> Seeded {
    let ecs = aws_sdk_ecs::Client::new(config);
    let cluster = ecs
        .create_cluster()
        .cluster_name("batch")
        .send()
        .await
        .unwrap()
        .cluster()
        .unwrap()
        .cluster_arn()
        .unwrap()
        .to_owned();
    let mut arns = Vec::new();
    for host in [OLD_HOST, NEW_HOST] {
        let out = ecs
            .register_task_definition()
            .family("export")
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .image("export:1")
                    .memory(256)
                    .environment(KeyValuePair::builder().name("HOST").value(host).build())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        arns.push(
            out.task_definition()
                .unwrap()
                .task_definition_arn()
                .unwrap()
                .to_owned(),
        );
    }

    let events = aws_sdk_eventbridge::Client::new(config);
    events.create_event_bus().name("jobs").send().await.unwrap();
    for (bus, rule) in [("jobs", "export-nightly"), ("default", "export-untouched")] {
        // A rule on a custom bus matches events (schedule expressions are the default bus's).
        events
            .put_rule()
            .name(rule)
            .event_bus_name(bus)
            .event_pattern(r#"{"source": ["esr.export"]}"#)
            .send()
            .await
            .unwrap();
        let target = Target::builder()
            .id("ecs-1")
            .arn(&cluster)
            .role_arn(ROLE)
            .input(input(OLD_HOST))
            .ecs_parameters(
                EcsParameters::builder()
                    .task_definition_arn(&arns[0])
                    .task_count(1)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let put = events
            .put_targets()
            .rule(rule)
            .event_bus_name(bus)
            .targets(target)
            .send()
            .await
            .unwrap();
        assert_eq!(put.failed_entry_count(), 0);
    }

    let scheduler = aws_sdk_scheduler::Client::new(config);
    scheduler
        .create_schedule_group()
        .name("ops")
        .send()
        .await
        .unwrap();
    scheduler
        .create_schedule()
        .name("export-hourly")
        .group_name("ops")
        .schedule_expression("rate(1 hour)")
        .description("hourly export")
        .state(ScheduleState::Enabled)
        .flexible_time_window(
            FlexibleTimeWindow::builder()
                .mode(FlexibleTimeWindowMode::Flexible)
                .maximum_window_in_minutes(15)
                .build()
                .unwrap(),
        )
        .target(
            aws_sdk_scheduler::types::Target::builder()
                .arn(&cluster)
                .role_arn(ROLE)
                .input(input(OLD_HOST))
                .ecs_parameters(
                    aws_sdk_scheduler::types::EcsParameters::builder()
                        .task_definition_arn(&arns[0])
                        .task_count(1)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    Seeded {
        cluster,
        first: arns[0].clone(),
        second: arns[1].clone(),
    }
}

#[test]
fn update_schedule_moves_a_rule_target_on_a_custom_bus_and_a_scheduler_schedule() {
    let moto = moto::shared();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = rt.block_on(moto.sdk_config());
    let seeded = rt.block_on(seed(&config));
    let mut aws = Aws::from_clients(runtime().unwrap(), Clients::new(&config), moto::REGION);

    aws.update_schedule(&Schedule {
        name: "export-nightly".into(),
        cluster: "batch".into(),
        task_definition: "export:2".into(),
        kind: ScheduleKind::Rule,
        bus: Some("jobs".into()),
        target: Some("ecs-1".into()),
        overrides: overrides(NEW_HOST),
        ..Schedule::default()
    })
    .expect("the rule target is retargeted");
    aws.update_schedule(&Schedule {
        name: "export-hourly".into(),
        cluster: "batch".into(),
        task_definition: "export:2".into(),
        kind: ScheduleKind::Schedule,
        group: Some("ops".into()),
        overrides: overrides(NEW_HOST),
        ..Schedule::default()
    })
    .expect("the schedule is retargeted");

    let events = aws_sdk_eventbridge::Client::new(&config);
    let targets = |bus: &'static str, rule: &'static str| {
        rt.block_on(
            events
                .list_targets_by_rule()
                .rule(rule)
                .event_bus_name(bus)
                .send(),
        )
        .unwrap()
        .targets()
        .to_vec()
    };
    let [moved] = &targets("jobs", "export-nightly")[..] else {
        panic!("one target");
    };
    assert_eq!(
        moved.ecs_parameters().unwrap().task_definition_arn(),
        seeded.second
    );
    assert_eq!(value_of(moved.input(), "HOST"), NEW_HOST);
    assert_eq!(value_of(moved.input(), "MODE"), "full");
    assert_eq!(
        moved.role_arn(),
        Some(ROLE),
        "the rest of the target is kept"
    );
    assert_eq!(moved.arn(), seeded.cluster);
    let [untouched] = &targets("default", "export-untouched")[..] else {
        panic!("one target");
    };
    assert_eq!(
        untouched.ecs_parameters().unwrap().task_definition_arn(),
        seeded.first,
        "a rule of the same target id on another bus is not touched"
    );
    assert_eq!(value_of(untouched.input(), "HOST"), OLD_HOST);

    let scheduler = aws_sdk_scheduler::Client::new(&config);
    let got = rt
        .block_on(
            scheduler
                .get_schedule()
                .name("export-hourly")
                .group_name("ops")
                .send(),
        )
        .unwrap();
    let target = got.target().unwrap();
    assert_eq!(
        target.ecs_parameters().unwrap().task_definition_arn(),
        seeded.second
    );
    assert_eq!(value_of(target.input(), "HOST"), NEW_HOST);
    assert_eq!(target.role_arn(), ROLE);
    assert_eq!(got.schedule_expression(), Some("rate(1 hour)"));
    assert_eq!(
        got.description(),
        Some("hourly export"),
        "every field GetSchedule answered is given back"
    );
    assert_eq!(
        got.flexible_time_window()
            .and_then(|w| w.maximum_window_in_minutes()),
        Some(15)
    );

    let err = aws
        .update_schedule(&Schedule {
            name: "export-nightly".into(),
            task_definition: "export:2".into(),
            bus: Some("jobs".into()),
            target: Some("no-such-target".into()),
            ..Schedule::default()
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rule export-nightly (bus jobs, target no-such-target)"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// The mock client

/// A client of service crate `$krate` answering from `$rules` (a `&[Rule]`), without retries.
macro_rules! mocked_client {
    ($krate:ident, $rules:expr) => {{
        let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for rule in $rules {
            interceptor = interceptor.with_rule(rule);
        }
        $krate::Client::from_conf(
            $krate::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(moto::REGION))
                .credentials_provider(Credentials::new("AKIDMOCK", "mock", None, None, "mock"))
                .http_client(create_mock_http_client())
                .interceptor(interceptor)
                .build(),
        )
    }};
}

#[test]
fn a_put_targets_answer_that_lists_a_failed_entry_is_an_error() {
    let arn = "arn:aws:ecs:eu-west-2:123456789012:task-definition/export:2";
    let ecs: Vec<Rule> = vec![
        mock!(aws_sdk_ecs::Client::describe_task_definition).then_output(move || {
            aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput::builder(
            )
            .task_definition(
                aws_sdk_ecs::types::TaskDefinition::builder()
                    .task_definition_arn(arn)
                    .family("export")
                    .revision(2)
                    .build(),
            )
            .build()
        }),
    ];
    let events: Vec<Rule> = vec![
        mock!(aws_sdk_eventbridge::Client::list_targets_by_rule).then_output(|| {
            aws_sdk_eventbridge::operation::list_targets_by_rule::ListTargetsByRuleOutput::builder()
                .targets(
                    Target::builder()
                        .id("ecs-1")
                        .arn("arn:aws:ecs:eu-west-2:123456789012:cluster/batch")
                        .input(input(OLD_HOST))
                        .ecs_parameters(
                            EcsParameters::builder()
                                .task_definition_arn("export:1")
                                .build()
                                .unwrap(),
                        )
                        .build()
                        .unwrap(),
                )
                .build()
        }),
        mock!(aws_sdk_eventbridge::Client::put_targets).then_output(|| {
            aws_sdk_eventbridge::operation::put_targets::PutTargetsOutput::builder()
                .failed_entry_count(1)
                .failed_entries(
                    PutTargetsResultEntry::builder()
                        .target_id("ecs-1")
                        .error_code("ConcurrentModificationException")
                        .error_message("the rule was changed meanwhile")
                        .build(),
                )
                .build()
        }),
    ];
    let none: Vec<Rule> = Vec::new();
    let clients = Clients {
        ecs: mocked_client!(aws_sdk_ecs, &ecs),
        mq: mocked_client!(aws_sdk_mq, &none),
        ssm: mocked_client!(aws_sdk_ssm, &none),
        events: mocked_client!(aws_sdk_eventbridge, &events),
        scheduler: mocked_client!(aws_sdk_scheduler, &none),
        lambda: mocked_client!(aws_sdk_lambda, &none),
        pipes: mocked_client!(aws_sdk_pipes, &none),
        sfn: mocked_client!(aws_sdk_sfn, &none),
        secrets: mocked_client!(aws_sdk_secretsmanager, &none),
        s3: mocked_client!(aws_sdk_s3, &none),
    };
    let mut aws = Aws::from_clients(runtime().unwrap(), clients, moto::REGION);
    let err = aws
        .update_schedule(&Schedule {
            name: "export-nightly".into(),
            task_definition: "export:2".into(),
            bus: Some("jobs".into()),
            target: Some("ecs-1".into()),
            overrides: overrides(NEW_HOST),
            ..Schedule::default()
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("events:PutTargets on rule export-nightly (bus jobs, target ecs-1) failed"),
        "{err}"
    );
    assert!(
        err.contains("ConcurrentModificationException") && err.contains("changed meanwhile"),
        "{err}"
    );
}
