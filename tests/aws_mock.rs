//! The AWS backend over SDK clients whose answers come from `aws-smithy-mocks` rules: paging,
//! batching, parameters, rollout states, retries and permanent errors, and what
//! RegisterTaskDefinition is sent. No network, no emulator: every answer is written here, and
//! every request the backend makes is logged so the tests can count and inspect them.
//!
//! The clients are built by hand (not with `mock_client!`, which needs the `test-util` feature
//! of every service crate) with the mock HTTP client, the mock interceptor in
//! [`RuleMode::MatchAny`], static credentials and a standard retry configuration with a tiny
//! backoff, so that the SDK's own retry classifier and backoff run as in production.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ecs::config::http::HttpResponse;
use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput;
use aws_sdk_ecs::operation::list_clusters::ListClustersOutput;
use aws_sdk_ecs::operation::list_services::ListServicesOutput;
use aws_sdk_ecs::operation::list_task_definition_families::ListTaskDefinitionFamiliesOutput;
use aws_sdk_ecs::operation::register_task_definition::{
    RegisterTaskDefinitionInput, RegisterTaskDefinitionOutput,
};
use aws_sdk_ecs::types::{
    ApplicationProtocol, Compatibility, ContainerCondition, ContainerDefinition,
    ContainerDependency, CpuArchitecture, Deployment, DeploymentRolloutState,
    EfsVolumeConfiguration, EphemeralStorage, HealthCheck, IpcMode, KeyValuePair, LogConfiguration,
    LogDriver, MountPoint, NetworkMode, OsFamily, PidMode, PortMapping, RuntimePlatform, Secret,
    Service, Tag, TaskDefinitionFamilyStatus, TaskDefinitionField,
    TaskDefinitionPlacementConstraint, TaskDefinitionPlacementConstraintType, TaskDefinitionStatus,
    TransportProtocol, Volume,
};
use aws_sdk_eventbridge::operation::list_event_buses::ListEventBusesOutput;
use aws_sdk_eventbridge::operation::list_rules::ListRulesOutput;
use aws_sdk_eventbridge::operation::list_targets_by_rule::ListTargetsByRuleOutput;
use aws_sdk_lambda::operation::list_event_source_mappings::ListEventSourceMappingsOutput;
use aws_sdk_lambda::operation::list_functions::ListFunctionsOutput;
use aws_sdk_mq::operation::describe_broker::DescribeBrokerOutput;
use aws_sdk_mq::operation::list_brokers::ListBrokersOutput;
use aws_sdk_pipes::operation::list_pipes::ListPipesOutput;
use aws_sdk_scheduler::operation::list_schedules::ListSchedulesOutput;
use aws_sdk_sfn::operation::list_state_machines::ListStateMachinesOutput;
use aws_sdk_ssm::operation::get_parameters::GetParametersOutput;
use aws_sdk_ssm::types::{Parameter, ParameterType};
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use warren::backend::aws::{runtime, Aws, Clients};
use warren::backend::{Backend, ReadScope, Rollout};
use warren::model::{Container, Schedule, ScheduleKind, TaskDefinition, World};

#[path = "support/calls.rs"]
mod calls;

const REGION: &str = "eu-west-2";
const ACCOUNT: &str = "123456789012";
const OLD_HOST: &str = "b-1111.mq.eu-west-2.amazonaws.com";
const NEW_HOST: &str = "b-2222.mq.eu-west-2.amazonaws.com";

/// How many attempts the SDK makes per call in these tests.
const MAX_ATTEMPTS: u32 = 3;

// ---------------------------------------------------------------------------------------------
// Clients and the backend

/// Standard retries with a backoff short enough for tests.
fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(1))
        .with_max_backoff(Duration::from_millis(10))
}

/// A client of service crate `$krate` answering from `$rules` (a `&[Rule]`).
macro_rules! mocked_client {
    ($krate:ident, $rules:expr) => {{
        let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for rule in $rules {
            interceptor = interceptor.with_rule(rule);
        }
        $krate::Client::from_conf(
            $krate::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(REGION))
                .credentials_provider(Credentials::new(
                    "AKIDMOCK",
                    "mock-secret",
                    None,
                    None,
                    "aws_mock",
                ))
                .retry_config(retry_config())
                .http_client(create_mock_http_client())
                .interceptor(interceptor)
                .build(),
        )
    }};
}

/// The rules of one test, per service. In `MatchAny` mode the first matching rule answers, so
/// the empty defaults [`Mocks::backend`] appends only answer what a test left unmocked.
#[derive(Default)]
struct Mocks {
    ecs: Vec<Rule>,
    mq: Vec<Rule>,
    ssm: Vec<Rule>,
    events: Vec<Rule>,
    scheduler: Vec<Rule>,
    lambda: Vec<Rule>,
    pipes: Vec<Rule>,
    sfn: Vec<Rule>,
    secrets: Vec<Rule>,
    s3: Vec<Rule>,
}

impl Mocks {
    fn backend(&self) -> Aws {
        let mut ecs = self.ecs.clone();
        ecs.push(
            mock!(aws_sdk_ecs::Client::list_task_definition_families)
                .then_output(|| ListTaskDefinitionFamiliesOutput::builder().build()),
        );
        ecs.push(
            mock!(aws_sdk_ecs::Client::list_task_definitions).then_output(|| {
                aws_sdk_ecs::operation::list_task_definitions::ListTaskDefinitionsOutput::builder()
                    .build()
            }),
        );
        let mut mq = self.mq.clone();
        mq.push(
            mock!(aws_sdk_mq::Client::list_brokers)
                .then_output(|| ListBrokersOutput::builder().build()),
        );
        let mut events = self.events.clone();
        events.push(
            mock!(aws_sdk_eventbridge::Client::list_rules)
                .then_output(|| ListRulesOutput::builder().build()),
        );
        events.push(
            mock!(aws_sdk_eventbridge::Client::list_event_buses)
                .then_output(|| ListEventBusesOutput::builder().build()),
        );
        let mut scheduler = self.scheduler.clone();
        scheduler.push(
            mock!(aws_sdk_scheduler::Client::list_schedules).then_output(|| {
                ListSchedulesOutput::builder()
                    .set_schedules(Some(Vec::new()))
                    .build()
                    .unwrap()
            }),
        );
        let mut lambda = self.lambda.clone();
        lambda.push(
            mock!(aws_sdk_lambda::Client::list_functions)
                .then_output(|| ListFunctionsOutput::builder().build()),
        );
        lambda.push(
            mock!(aws_sdk_lambda::Client::list_event_source_mappings)
                .then_output(|| ListEventSourceMappingsOutput::builder().build()),
        );
        let mut pipes = self.pipes.clone();
        pipes.push(
            mock!(aws_sdk_pipes::Client::list_pipes)
                .then_output(|| ListPipesOutput::builder().build()),
        );
        let mut sfn = self.sfn.clone();
        sfn.push(
            mock!(aws_sdk_sfn::Client::list_state_machines).then_output(|| {
                ListStateMachinesOutput::builder()
                    .set_state_machines(Some(Vec::new()))
                    .build()
                    .unwrap()
            }),
        );
        let clients = Clients {
            ecs: mocked_client!(aws_sdk_ecs, &ecs),
            mq: mocked_client!(aws_sdk_mq, &mq),
            ssm: mocked_client!(aws_sdk_ssm, &self.ssm),
            events: mocked_client!(aws_sdk_eventbridge, &events),
            scheduler: mocked_client!(aws_sdk_scheduler, &scheduler),
            lambda: mocked_client!(aws_sdk_lambda, &lambda),
            pipes: mocked_client!(aws_sdk_pipes, &pipes),
            sfn: mocked_client!(aws_sdk_sfn, &sfn),
            secrets: mocked_client!(aws_sdk_secretsmanager, &self.secrets),
            s3: mocked_client!(aws_sdk_s3, &self.s3),
        };
        Aws::from_clients(runtime().expect("runtime"), clients, REGION)
    }
}

/// One request a fake answered: the operation and its arguments.
type Call = (&'static str, Vec<String>);

/// Every request the fakes answered, in the order they came.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Call>>>);

impl Log {
    fn push(&self, op: &'static str, args: Vec<String>) {
        self.0.lock().unwrap().push((op, args));
    }

    /// The arguments of every `op` request.
    fn calls(&self, op: &str) -> Vec<Vec<String>> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(o, _)| *o == op)
            .map(|(_, args)| args.clone())
            .collect()
    }
}

/// Page `token` of `items`, `per_page` at a time, and the token of the next page. Tokens are
/// `{prefix}-{index}`, so a token handed to the wrong list is caught.
fn page<T: Clone>(
    items: &[T],
    per_page: usize,
    prefix: &str,
    token: Option<&str>,
) -> (Vec<T>, Option<String>) {
    let index: usize = match token {
        None => 0,
        Some(t) => t
            .strip_prefix(prefix)
            .and_then(|n| n.strip_prefix('-'))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("token {t:?} was not handed out for {prefix}")),
    };
    let start = (index * per_page).min(items.len());
    let end = (start + per_page).min(items.len());
    let next = (end < items.len()).then(|| format!("{prefix}-{}", index + 1));
    (items[start..end].to_vec(), next)
}

/// The backend's error message for a failed read, or a panic when the read succeeded.
fn read_error(aws: &mut Aws, scope: &ReadScope) -> String {
    match aws.read(scope) {
        Ok(_) => panic!("the read should have failed"),
        Err(e) => e.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// ECS values

fn cluster_arn(name: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{name}")
}

fn service_arn(cluster: &str, name: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{name}")
}

fn td_arn(key: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{key}")
}

/// The last `/`-separated part of an ARN (a name stays a name).
fn last_part(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn kv(name: &str, value: &str) -> KeyValuePair {
    KeyValuePair::builder().name(name).value(value).build()
}

fn secret(name: &str, value_from: &str) -> Secret {
    Secret::builder()
        .name(name)
        .value_from(value_from)
        .build()
        .unwrap()
}

fn container(name: &str, env: &[(&str, &str)], secrets: &[(&str, &str)]) -> ContainerDefinition {
    ContainerDefinition::builder()
        .name(name)
        .image(format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}:1"))
        .set_environment(Some(env.iter().map(|(n, v)| kv(n, v)).collect()))
        .set_secrets(Some(secrets.iter().map(|(n, v)| secret(n, v)).collect()))
        .build()
}

/// An ACTIVE task definition `family:revision` with `containers`.
fn definition(
    key: &str,
    containers: Vec<ContainerDefinition>,
) -> aws_sdk_ecs::types::TaskDefinition {
    let (family, revision) = key.rsplit_once(':').unwrap();
    aws_sdk_ecs::types::TaskDefinition::builder()
        .task_definition_arn(td_arn(key))
        .family(family)
        .revision(revision.parse().unwrap())
        .status(TaskDefinitionStatus::Active)
        .set_container_definitions(Some(containers))
        .build()
}

fn deployment(
    id: &str,
    td: &str,
    status: &str,
    state: DeploymentRolloutState,
    running: i32,
) -> Deployment {
    Deployment::builder()
        .id(id)
        .task_definition(td)
        .status(status)
        .rollout_state(state)
        .desired_count(1)
        .running_count(running)
        .build()
}

/// A service as DescribeServices answers it.
fn ecs_service(
    cluster: &str,
    name: &str,
    td: &str,
    deployments: Vec<Deployment>,
    running: i32,
) -> Service {
    Service::builder()
        .service_arn(service_arn(cluster, name))
        .service_name(name)
        .cluster_arn(cluster_arn(cluster))
        .task_definition(td)
        .desired_count(1)
        .running_count(running)
        .status("ACTIVE")
        .set_deployments(Some(deployments))
        .build()
}

/// A service in a fake cluster: its task definition ARN and, while a rollout runs, the ARN the
/// older deployment still runs.
#[derive(Clone)]
struct Svc {
    name: String,
    td: String,
    older: Option<String>,
}

fn svc(name: &str, td_key: &str) -> Svc {
    Svc {
        name: name.to_owned(),
        td: td_arn(td_key),
        older: None,
    }
}

/// A fake ECS: clusters with services, task definitions with tags, and the task definition
/// families; every list answers `per_page` items a page.
#[derive(Clone, Default)]
struct FakeEcs {
    clusters: Vec<(String, Vec<Svc>)>,
    definitions: Vec<aws_sdk_ecs::types::TaskDefinition>,
    families: Vec<String>,
    per_page: usize,
    services_per_page: BTreeMap<String, usize>,
}

impl FakeEcs {
    fn new(per_page: usize) -> FakeEcs {
        FakeEcs {
            per_page,
            ..FakeEcs::default()
        }
    }

    fn cluster(mut self, name: &str, services: Vec<Svc>) -> FakeEcs {
        self.clusters.push((name.to_owned(), services));
        self
    }

    /// ListServices of `cluster` answers `n` services a page.
    fn services_per_page(mut self, cluster: &str, n: usize) -> FakeEcs {
        self.services_per_page.insert(cluster.to_owned(), n);
        self
    }

    fn definition(mut self, td: aws_sdk_ecs::types::TaskDefinition) -> FakeEcs {
        self.definitions.push(td);
        self
    }

    /// ListClusters, ListServices, DescribeServices, DescribeTaskDefinition and
    /// ListTaskDefinitionFamilies over this fake, logging every request in `log`.
    fn rules(&self, log: &Log) -> Vec<Rule> {
        let fake = Arc::new(self.clone());
        let per_page = self.per_page;

        let (f, l) = (fake.clone(), log.clone());
        let list_clusters =
            mock!(aws_sdk_ecs::Client::list_clusters).then_compute_output(move |req| {
                l.push(
                    "ListClusters",
                    req.next_token().into_iter().map(str::to_owned).collect(),
                );
                let arns: Vec<String> = f
                    .clusters
                    .iter()
                    .map(|(name, _)| cluster_arn(name))
                    .collect();
                let (items, next) = page(&arns, per_page, "clusters", req.next_token());
                ListClustersOutput::builder()
                    .set_cluster_arns(Some(items))
                    .set_next_token(next)
                    .build()
            });

        let (f, l) = (fake.clone(), log.clone());
        let list_services =
            mock!(aws_sdk_ecs::Client::list_services).then_compute_output(move |req| {
                let cluster =
                    last_part(req.cluster().expect("ListServices names its cluster")).to_owned();
                let mut args = vec![cluster.clone()];
                args.extend(req.next_token().map(str::to_owned));
                l.push("ListServices", args);
                let arns: Vec<String> = f
                    .clusters
                    .iter()
                    .find(|(name, _)| *name == cluster)
                    .map(|(_, services)| {
                        services
                            .iter()
                            .map(|s| service_arn(&cluster, &s.name))
                            .collect()
                    })
                    .unwrap_or_default();
                let n = f
                    .services_per_page
                    .get(&cluster)
                    .copied()
                    .unwrap_or(per_page);
                let (items, next) =
                    page(&arns, n, &format!("services-{cluster}"), req.next_token());
                ListServicesOutput::builder()
                    .set_service_arns(Some(items))
                    .set_next_token(next)
                    .build()
            });

        let (f, l) = (fake.clone(), log.clone());
        let describe_services =
            mock!(aws_sdk_ecs::Client::describe_services).then_compute_output(move |req| {
                let cluster = last_part(req.cluster().expect("DescribeServices names its cluster"))
                    .to_owned();
                let mut args = vec![cluster.clone()];
                args.extend(req.services().iter().cloned());
                l.push("DescribeServices", args);
                let services = f
                    .clusters
                    .iter()
                    .find(|(name, _)| *name == cluster)
                    .map(|(_, s)| s.as_slice())
                    .unwrap_or_default();
                DescribeServicesOutput::builder()
                    .set_services(Some(
                        req.services()
                            .iter()
                            .filter_map(|wanted| {
                                services.iter().find(|s| s.name == last_part(wanted))
                            })
                            .map(|s| {
                                let mut deployments = vec![deployment(
                                    &format!("ecs-svc/{}-new", s.name),
                                    &s.td,
                                    "PRIMARY",
                                    DeploymentRolloutState::Completed,
                                    1,
                                )];
                                if let Some(older) = &s.older {
                                    deployments[0] = deployment(
                                        &format!("ecs-svc/{}-new", s.name),
                                        &s.td,
                                        "PRIMARY",
                                        DeploymentRolloutState::InProgress,
                                        0,
                                    );
                                    deployments.push(deployment(
                                        &format!("ecs-svc/{}-old", s.name),
                                        older,
                                        "ACTIVE",
                                        DeploymentRolloutState::Completed,
                                        1,
                                    ));
                                }
                                ecs_service(&cluster, &s.name, &s.td, deployments, 1)
                            })
                            .collect(),
                    ))
                    .build()
            });

        let (f, l) = (fake.clone(), log.clone());
        let describe_td = mock!(aws_sdk_ecs::Client::describe_task_definition)
            .match_requests(|req| req.include().contains(&TaskDefinitionField::Tags))
            .then_compute_output(move |req| {
                let reference = req.task_definition().expect("a task definition").to_owned();
                l.push("DescribeTaskDefinition", vec![reference.clone()]);
                let key = last_part(&reference);
                // A bare family describes as its latest revision.
                let found = f
                    .definitions
                    .iter()
                    .filter(|d| {
                        if key.contains(':') {
                            d.task_definition_arn() == Some(td_arn(key).as_str())
                        } else {
                            d.family() == Some(key)
                        }
                    })
                    .max_by_key(|d| d.revision())
                    .unwrap_or_else(|| panic!("no task definition {reference} in the fake"))
                    .clone();
                DescribeTaskDefinitionOutput::builder()
                    .task_definition(found)
                    .tags(Tag::builder().key("team").value("payments").build())
                    .build()
            });

        let (f, l) = (fake, log.clone());
        let list_families = mock!(aws_sdk_ecs::Client::list_task_definition_families)
            .match_requests(|req| req.status() == Some(&TaskDefinitionFamilyStatus::Active))
            .then_compute_output(move |req| {
                l.push(
                    "ListTaskDefinitionFamilies",
                    req.next_token().into_iter().map(str::to_owned).collect(),
                );
                let (items, next) = page(&f.families, per_page, "families", req.next_token());
                ListTaskDefinitionFamiliesOutput::builder()
                    .set_families(Some(items))
                    .set_next_token(next)
                    .build()
            });

        vec![
            list_clusters,
            list_services,
            describe_services,
            describe_td,
            list_families,
        ]
    }
}

fn cluster<'w>(world: &'w World, name: &str) -> &'w warren::model::Cluster {
    world
        .clusters
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no cluster {name} in the world"))
}

// ---------------------------------------------------------------------------------------------
// 1. Paging everywhere

#[test]
fn read_follows_every_page_of_every_list() {
    let log = Log::default();

    // ECS: 3 clusters over 2 pages; 23 services over 3 pages in esr-prod, 2 services over 2
    // pages in esr-batch, none in esr-empty; 5 task definition families over 3 pages.
    let prod: Vec<Svc> = (1..=23)
        .map(|i| svc(&format!("svc-{i:02}"), "prod-app:3"))
        .collect();
    let mut fake = FakeEcs::new(2)
        .cluster("esr-prod", prod)
        .cluster(
            "esr-batch",
            vec![svc("loader", "batch-job:1"), svc("pruner", "batch-job:1")],
        )
        .cluster("esr-empty", vec![])
        .definition(definition("prod-app:3", vec![container("app", &[], &[])]))
        .definition(definition("batch-job:1", vec![container("job", &[], &[])]));
    fake.families = (1..=5).map(|i| format!("fam-{i}")).collect();
    for family in fake.families.clone() {
        for revision in [1, 9] {
            fake = fake.definition(definition(
                &format!("{family}:{revision}"),
                vec![container("app", &[], &[])],
            ));
        }
    }
    // Schedules: 3 rules over 2 pages; nightly has 3 targets over 2 pages.
    let rules: Vec<(String, Vec<String>)> = vec![
        (
            "nightly".into(),
            vec!["cron-a:1".into(), "cron-b:1".into(), "cron-c:1".into()],
        ),
        ("hourly".into(), vec!["cron-d:1".into()]),
        ("weekly".into(), vec!["cron-e:1".into()]),
    ];
    for (_, targets) in &rules {
        for key in targets {
            fake = fake.definition(definition(key, vec![container("cron", &[], &[])]));
        }
    }
    // esr-prod's services 9 a page, esr-batch's 1 a page; the other lists 2 items a page.
    let ecs_rules = fake
        .services_per_page("esr-prod", 9)
        .services_per_page("esr-batch", 1)
        .rules(&log);

    // Amazon MQ: 5 brokers over 3 pages.
    let brokers: Vec<String> = (1..=5).map(|i| format!("b-{i}{i}{i}{i}")).collect();
    let l = log.clone();
    let list_brokers = mock!(aws_sdk_mq::Client::list_brokers).then_compute_output({
        let brokers = brokers.clone();
        move |req| {
            l.push(
                "ListBrokers",
                req.next_token().into_iter().map(str::to_owned).collect(),
            );
            let (items, next) = page(&brokers, 2, "brokers", req.next_token());
            ListBrokersOutput::builder()
                .set_broker_summaries(Some(
                    items
                        .iter()
                        .map(|id| {
                            aws_sdk_mq::types::BrokerSummary::builder()
                                .broker_id(id)
                                .build()
                        })
                        .collect(),
                ))
                .set_next_token(next)
                .build()
        }
    });
    let l = log.clone();
    let describe_broker =
        mock!(aws_sdk_mq::Client::describe_broker).then_compute_output(move |req| {
            let id = req.broker_id().unwrap().to_owned();
            l.push("DescribeBroker", vec![id.clone()]);
            DescribeBrokerOutput::builder()
                .broker_id(&id)
                .broker_name(format!("name-{id}"))
                .broker_state(aws_sdk_mq::types::BrokerState::Running)
                .broker_instances(
                    aws_sdk_mq::types::BrokerInstance::builder()
                        .endpoints(format!("amqps://{id}.mq.{REGION}.amazonaws.com:5671"))
                        .endpoints(format!("https://{id}.mq.{REGION}.amazonaws.com"))
                        .build(),
                )
                .build()
        });

    // EventBridge: ListRules 2 a page, ListTargetsByRule 2 a page.
    let l = log.clone();
    let rule_names: Vec<String> = rules.iter().map(|(n, _)| n.clone()).collect();
    let list_rules =
        mock!(aws_sdk_eventbridge::Client::list_rules).then_compute_output(move |req| {
            l.push(
                "ListRules",
                req.next_token().into_iter().map(str::to_owned).collect(),
            );
            let (items, next) = page(&rule_names, 2, "rules", req.next_token());
            ListRulesOutput::builder()
                .set_rules(Some(
                    items
                        .iter()
                        .map(|n| aws_sdk_eventbridge::types::Rule::builder().name(n).build())
                        .collect(),
                ))
                .set_next_token(next)
                .build()
        });
    let l = log.clone();
    let targets = rules.clone();
    let list_targets = mock!(aws_sdk_eventbridge::Client::list_targets_by_rule)
        .then_compute_output(move |req| {
            let rule = req.rule().unwrap().to_owned();
            let mut args = vec![rule.clone()];
            args.extend(req.next_token().map(str::to_owned));
            l.push("ListTargetsByRule", args);
            let keys = &targets.iter().find(|(n, _)| *n == rule).unwrap().1;
            let (items, next) = page(keys, 2, &format!("targets-{rule}"), req.next_token());
            ListTargetsByRuleOutput::builder()
                .set_targets(Some(
                    items
                        .iter()
                        .map(|key| {
                            aws_sdk_eventbridge::types::Target::builder()
                                .id(format!("target-{key}"))
                                .arn(cluster_arn("esr-batch"))
                                .ecs_parameters(
                                    aws_sdk_eventbridge::types::EcsParameters::builder()
                                        .task_definition_arn(td_arn(key))
                                        .build()
                                        .unwrap(),
                                )
                                .build()
                                .unwrap()
                        })
                        .collect(),
                ))
                .set_next_token(next)
                .build()
        });

    let mocks = Mocks {
        ecs: ecs_rules,
        mq: vec![list_brokers, describe_broker],
        events: vec![list_rules, list_targets],
        ..Mocks::default()
    };
    let mut aws = mocks.backend();
    let world = aws
        .read(&ReadScope {
            clusters: None,
            everything: true,
            parameters: Vec::new(),
            task_definitions: Vec::new(),
            resources: false,
            ..ReadScope::default()
        })
        .expect("read");

    // Clusters: 3 over 2 pages.
    assert_eq!(
        log.calls("ListClusters"),
        vec![vec![], vec!["clusters-1".to_owned()]]
    );
    let names: BTreeSet<&str> = world.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["esr-batch", "esr-empty", "esr-prod"])
    );

    // Services: every page of every cluster.
    let list_services = log.calls("ListServices");
    let pages_of = |cluster: &str| list_services.iter().filter(|a| a[0] == cluster).count();
    assert_eq!(pages_of("esr-prod"), 3, "{list_services:?}");
    assert_eq!(pages_of("esr-batch"), 2, "{list_services:?}");
    assert_eq!(pages_of("esr-empty"), 1, "{list_services:?}");
    let prod = cluster(&world, "esr-prod");
    let expected: BTreeSet<String> = (1..=23).map(|i| format!("svc-{i:02}")).collect();
    let got: BTreeSet<String> = prod.services.iter().map(|s| s.name.clone()).collect();
    assert_eq!(got, expected);
    assert_eq!(prod.services.len(), 23, "no service twice");
    let batch: Vec<&str> = cluster(&world, "esr-batch")
        .services
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(batch, ["loader", "pruner"]);
    assert!(cluster(&world, "esr-empty").services.is_empty());

    // DescribeServices: 3 calls of at most 10 for the 23 services of esr-prod, every service once.
    let describes: Vec<Vec<String>> = log
        .calls("DescribeServices")
        .into_iter()
        .filter(|a| a[0] == "esr-prod")
        .map(|a| a[1..].to_vec())
        .collect();
    assert_eq!(describes.len(), 3, "{describes:?}");
    assert!(
        describes.iter().all(|b| !b.is_empty() && b.len() <= 10),
        "{describes:?}"
    );
    let described: Vec<&String> = describes.iter().flatten().collect();
    assert_eq!(described.len(), 23);
    assert_eq!(
        described
            .iter()
            .map(|a| last_part(a).to_owned())
            .collect::<BTreeSet<_>>(),
        expected
    );
    assert_eq!(
        log.calls("DescribeServices")
            .iter()
            .filter(|a| a[0] == "esr-batch")
            .count(),
        1
    );
    assert!(!log
        .calls("DescribeServices")
        .iter()
        .any(|a| a[0] == "esr-empty"));

    // Families: 5 over 3 pages, each described as its latest revision.
    assert_eq!(log.calls("ListTaskDefinitionFamilies").len(), 3);
    let keys: BTreeSet<String> = world
        .task_definitions
        .iter()
        .map(TaskDefinition::key)
        .collect();
    for i in 1..=5 {
        assert!(
            keys.contains(&format!("fam-{i}:9")),
            "fam-{i}:9 missing from {keys:?}"
        );
        assert!(
            !keys.contains(&format!("fam-{i}:1")),
            "fam-{i}:1 is not the latest"
        );
    }
    assert!(
        keys.contains("prod-app:3") && keys.contains("batch-job:1"),
        "{keys:?}"
    );

    // Schedules: 3 rules over 2 pages, nightly's 3 targets over 2 pages.
    assert_eq!(
        log.calls("ListRules"),
        vec![vec![], vec!["rules-1".to_owned()]]
    );
    let nightly: Vec<Vec<String>> = log
        .calls("ListTargetsByRule")
        .into_iter()
        .filter(|a| a[0] == "nightly")
        .collect();
    assert_eq!(nightly.len(), 2, "{nightly:?}");
    let schedules: BTreeSet<(String, String, String)> = world
        .schedules
        .iter()
        .map(|s| (s.name.clone(), s.cluster.clone(), s.task_definition.clone()))
        .collect();
    let expected_schedules: BTreeSet<(String, String, String)> = rules
        .iter()
        .flat_map(|(rule, keys)| {
            keys.iter()
                .map(move |k| (rule.clone(), "esr-batch".to_owned(), k.clone()))
        })
        .collect();
    assert_eq!(schedules, expected_schedules);
    for (_, keys) in &rules {
        for key in keys {
            assert!(keys_contain(&world, key), "scheduled {key} not described");
        }
    }

    // Brokers: 5 over 3 pages, each described once, AMQP endpoints only.
    assert_eq!(log.calls("ListBrokers").len(), 3);
    assert_eq!(log.calls("DescribeBroker").len(), 5);
    let ids: Vec<&str> = world.brokers.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(ids, brokers.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        world.brokers[0].endpoints,
        vec![format!("amqps://b-1111.mq.{REGION}.amazonaws.com:5671")]
    );
    assert_eq!(world.brokers[0].state, "RUNNING");

    // No secrets: SSM is never asked.
    assert!(log.calls("GetParameters").is_empty());

    // The minimum: Σ over clusters of ⌈services/10⌉ DescribeServices, one DescribeTaskDefinition
    // per distinct revision (or family, for its latest), and no call of the read repeated (the
    // same operation with the same input twice).
    let describe_services: usize = world
        .clusters
        .iter()
        .map(|c| c.services.len().div_ceil(10))
        .sum();
    assert_eq!(log.calls("DescribeServices").len(), describe_services);
    assert_eq!(
        log.calls("DescribeTaskDefinition").len(),
        world.task_definitions.len()
    );
    let all: Vec<Call> = log.0.lock().unwrap().clone();
    let distinct: BTreeSet<&Call> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "a call repeated: {all:?}");
}

fn keys_contain(world: &World, key: &str) -> bool {
    world.task_definitions.iter().any(|t| t.key() == key)
}

// ---------------------------------------------------------------------------------------------
// 2. One DescribeTaskDefinition per distinct revision

#[test]
fn one_describe_task_definition_per_distinct_revision() {
    let log = Log::default();
    let mut services: Vec<Svc> = (0..20)
        .map(|i| svc(&format!("svc-{i:02}"), &format!("app-{}:4", i % 3)))
        .collect();
    // Two services mid-rollout: their older deployment runs a revision others run too.
    services[3].older = Some(td_arn("app-1:4"));
    services[7].older = Some(td_arn("app-2:4"));
    let fake = FakeEcs::new(8)
        .cluster("esr-prod", services)
        .definition(definition(
            "app-0:4",
            vec![container("app", &[("A", "0")], &[])],
        ))
        .definition(definition(
            "app-1:4",
            vec![container("app", &[("A", "1")], &[])],
        ))
        .definition(definition(
            "app-2:4",
            vec![container("app", &[("A", "2")], &[])],
        ));
    let mocks = Mocks {
        ecs: fake.rules(&log),
        ..Mocks::default()
    };
    let world = mocks
        .backend()
        .read(&ReadScope {
            clusters: None,
            everything: false,
            parameters: Vec::new(),
            task_definitions: Vec::new(),
            resources: false,
            ..ReadScope::default()
        })
        .expect("read");

    let asked: Vec<String> = log
        .calls("DescribeTaskDefinition")
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(asked.len(), 3, "one call per distinct revision: {asked:?}");
    // Services name their revision by ARN, deployments by `family:revision`: one call each.
    assert_eq!(
        asked.iter().map(|r| last_part(r)).collect::<BTreeSet<_>>(),
        BTreeSet::from(["app-0:4", "app-1:4", "app-2:4"])
    );
    let keys: Vec<String> = world
        .task_definitions
        .iter()
        .map(TaskDefinition::key)
        .collect();
    assert_eq!(keys, ["app-0:4", "app-1:4", "app-2:4"]);
    let prod = cluster(&world, "esr-prod");
    assert_eq!(prod.services.len(), 20);
    assert_eq!(prod.services[4].task_definition, "app-1:4");
    let mid_rollout = prod.services.iter().find(|s| s.name == "svc-03").unwrap();
    assert_eq!(mid_rollout.task_definition, "app-0:4");
    assert_eq!(mid_rollout.deployments.len(), 1);
    assert_eq!(mid_rollout.deployments[0].task_definition, "app-1:4");
    // 20 services, 8 a page: 3 pages, then DescribeServices by at most 10.
    assert_eq!(log.calls("ListServices").len(), 3);
    let batches = log.calls("DescribeServices");
    assert_eq!(batches.len(), 2, "{batches:?}");
    assert!(batches.iter().all(|b| b.len() - 1 <= 10));
}

// ---------------------------------------------------------------------------------------------
// 3. SSM parameters

fn ssm_arn(name: &str) -> String {
    format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{name}")
}

#[test]
fn parameters_are_read_by_name_in_batches_of_ten_and_kept_under_their_reference() {
    let log = Log::default();

    // 24 parameters in SSM; the containers name 23 of them, some by ARN, some by name, one
    // (/esr/x) both ways, plus one that does not exist and a Secrets Manager secret.
    let mut stored: BTreeMap<String, (ParameterType, String)> = BTreeMap::new();
    for i in 1..=20 {
        stored.insert(
            format!("/esr/p{i:02}"),
            (ParameterType::String, format!("value-{i}")),
        );
    }
    stored.insert(
        "/esr/x".into(),
        (ParameterType::SecureString, "hunter2".into()),
    );
    stored.insert(
        "/esr/url".into(),
        (
            ParameterType::SecureString,
            format!("amqps://orders:s3cret@{OLD_HOST}:5671"),
        ),
    );
    stored.insert(
        "/esr/host".into(),
        (ParameterType::SecureString, format!("{OLD_HOST}:5671")),
    );
    stored.insert(
        "/esr/plain-url".into(),
        (
            ParameterType::String,
            format!("amqps://orders:s3cret@{OLD_HOST}:5671"),
        ),
    );
    stored.insert(
        "/esr/unused".into(),
        (ParameterType::String, "never asked".into()),
    );

    let x_arn = ssm_arn("/esr/x");
    assert_eq!(x_arn, "arn:aws:ssm:eu-west-2:123456789012:parameter/esr/x");
    let secrets_manager = format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:esr/db-AbCdEf");
    let mut app_secrets: Vec<(String, String)> = (1..=20)
        .map(|i| {
            let name = format!("/esr/p{i:02}");
            let reference = if i % 2 == 0 { ssm_arn(&name) } else { name };
            (format!("P{i:02}"), reference)
        })
        .collect();
    app_secrets.push(("X".into(), x_arn.clone()));
    app_secrets.push(("URL".into(), "/esr/url".into()));
    app_secrets.push(("HOST".into(), ssm_arn("/esr/host")));
    app_secrets.push(("PLAIN_URL".into(), "/esr/plain-url".into()));
    app_secrets.push(("MISSING".into(), ssm_arn("/esr/missing")));
    app_secrets.push(("DB".into(), secrets_manager.clone()));
    let sidecar_secrets = [("X".to_owned(), "/esr/x".to_owned())];
    let app = container_owned("app", &app_secrets);
    let sidecar = container_owned("sidecar", &sidecar_secrets);
    let fake = FakeEcs::new(10)
        .cluster("esr-prod", vec![svc("orders", "orders:5")])
        .definition(definition("orders:5", vec![app, sidecar]));

    let l = log.clone();
    let get_parameters = mock!(aws_sdk_ssm::Client::get_parameters)
        .match_requests(|req| req.with_decryption() == Some(true))
        .then_compute_output(move |req| {
            let names = req.names().to_vec();
            l.push("GetParameters", names.clone());
            let (found, invalid): (Vec<String>, Vec<String>) =
                names.into_iter().partition(|n| stored.contains_key(n));
            GetParametersOutput::builder()
                .set_parameters(Some(
                    found
                        .iter()
                        .map(|n| {
                            let (kind, value) = &stored[n];
                            Parameter::builder()
                                .name(n)
                                .r#type(kind.clone())
                                .value(value)
                                .arn(ssm_arn(n))
                                .version(1)
                                .build()
                        })
                        .collect(),
                ))
                .set_invalid_parameters(Some(invalid))
                .build()
        });

    let mocks = Mocks {
        ecs: fake.rules(&log),
        ssm: vec![get_parameters],
        ..Mocks::default()
    };
    let world = mocks.backend().read(&ReadScope::default()).expect("read");

    // Asked by name, at most 10 at a time, every name once, never the Secrets Manager secret.
    let calls = log.calls("GetParameters");
    assert_eq!(calls.len(), 3, "25 names by ten: {calls:?}");
    assert!(
        calls.iter().all(|c| !c.is_empty() && c.len() <= 10),
        "{calls:?}"
    );
    let asked: Vec<&String> = calls.iter().flatten().collect();
    let distinct: BTreeSet<&String> = asked.iter().copied().collect();
    assert_eq!(asked.len(), distinct.len(), "a name asked twice: {asked:?}");
    assert!(
        asked.iter().all(|n| n.starts_with("/esr/")),
        "asked by ARN: {asked:?}"
    );
    assert_eq!(asked.len(), 25);
    assert!(distinct.contains(&"/esr/x".to_owned()));
    assert!(distinct.contains(&"/esr/missing".to_owned()));
    assert!(!distinct.contains(&"/esr/unused".to_owned()));

    let p = &world.parameters;
    // Under the reference the container used, ARN or name.
    assert_eq!(p.get("/esr/p01").map(String::as_str), Some("value-1"));
    assert_eq!(
        p.get(&ssm_arn("/esr/p02")).map(String::as_str),
        Some("value-2")
    );
    assert!(
        !p.contains_key("/esr/p02"),
        "kept under the ARN the container used, not the name"
    );
    for i in 1..=20 {
        let name = format!("/esr/p{i:02}");
        let reference = if i % 2 == 0 { ssm_arn(&name) } else { name };
        assert_eq!(
            p.get(&reference),
            Some(&format!("value-{i}")),
            "{reference}"
        );
    }
    // A SecureString that is not a broker address is never kept.
    assert_eq!(p.get(&x_arn).map(String::as_str), Some("****"));
    assert_eq!(p.get("/esr/x").map(String::as_str), Some("****"));
    // Broker addresses are kept, with any password masked.
    assert_eq!(
        p.get("/esr/url"),
        Some(&format!("amqps://orders:****@{OLD_HOST}:5671"))
    );
    assert_eq!(
        p.get(&ssm_arn("/esr/host")),
        Some(&format!("{OLD_HOST}:5671"))
    );
    assert_eq!(
        p.get("/esr/plain-url"),
        Some(&format!("amqps://orders:****@{OLD_HOST}:5671"))
    );
    // Invalid parameters and Secrets Manager secrets are simply absent.
    assert!(!p.contains_key(&ssm_arn("/esr/missing")));
    assert!(!p.contains_key(&secrets_manager));
    assert_eq!(p.len(), 25, "{p:?}");
    assert!(!p
        .values()
        .any(|v| v.contains("hunter2") || v.contains("s3cret")));
}

fn container_owned(name: &str, secrets: &[(String, String)]) -> ContainerDefinition {
    let secrets: Vec<(&str, &str)> = secrets
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    container(name, &[("SPRING_RABBITMQ_HOST", OLD_HOST)], &secrets)
}

// ---------------------------------------------------------------------------------------------
// 4. Rollouts

const OLD_TD: &str = "orders:1";
const NEW_TD: &str = "orders:2";

/// DescribeTaskDefinition of `orders:2` (what `rollout` resolves the target with).
fn describe_new_td(log: &Log) -> Rule {
    let l = log.clone();
    mock!(aws_sdk_ecs::Client::describe_task_definition)
        .match_requests(|req| req.task_definition() == Some(NEW_TD))
        .then_compute_output(move |req| {
            l.push(
                "DescribeTaskDefinition",
                vec![req.task_definition().unwrap().to_owned()],
            );
            DescribeTaskDefinitionOutput::builder()
                .task_definition(definition(NEW_TD, vec![container("app", &[], &[])]))
                .build()
        })
}

/// DescribeServices of esr-prod/orders answering `states` in turn.
fn describe_orders(states: Vec<Service>) -> Rule {
    let mut sequence = mock!(aws_sdk_ecs::Client::describe_services)
        .match_requests(|req| req.cluster() == Some("esr-prod") && req.services() == ["orders"])
        .sequence();
    for state in states {
        sequence = sequence.output(move || {
            DescribeServicesOutput::builder()
                .services(state.clone())
                .build()
        });
    }
    sequence.build()
}

fn orders(td: &str, deployments: Vec<Deployment>, running: i32) -> Service {
    ecs_service("esr-prod", "orders", &td_arn(td), deployments, running)
}

#[test]
fn rollout_in_progress_then_completed() {
    let log = Log::default();
    let new = td_arn(NEW_TD);
    let old = td_arn(OLD_TD);
    let in_progress = |new_running, old_running| {
        orders(
            NEW_TD,
            vec![
                deployment(
                    "ecs-svc/new",
                    &new,
                    "PRIMARY",
                    DeploymentRolloutState::InProgress,
                    new_running,
                ),
                deployment(
                    "ecs-svc/old",
                    &old,
                    "ACTIVE",
                    DeploymentRolloutState::Completed,
                    old_running,
                ),
            ],
            1,
        )
    };
    let services = describe_orders(vec![
        // The old task still runs.
        in_progress(0, 1),
        // The old task is gone and the new one runs, but ECS has not called it steady yet:
        // only the rollout state says the deployment is not done.
        in_progress(1, 0),
        orders(
            NEW_TD,
            vec![deployment(
                "ecs-svc/new",
                &new,
                "PRIMARY",
                DeploymentRolloutState::Completed,
                1,
            )],
            1,
        ),
    ]);
    let mocks = Mocks {
        ecs: vec![describe_new_td(&log), services.clone()],
        ..Mocks::default()
    };
    let mut aws = mocks.backend();
    for poll in ["old task running", "not steady yet"] {
        assert_eq!(
            aws.rollout("esr-prod", "orders", NEW_TD).unwrap(),
            Rollout::InProgress,
            "{poll}"
        );
    }
    assert_eq!(
        aws.rollout("esr-prod", "orders", NEW_TD).unwrap(),
        Rollout::Completed
    );
    assert_eq!(services.num_calls(), 3);
    // `orders:2` is resolved to its ARN once, then remembered.
    assert_eq!(
        log.calls("DescribeTaskDefinition"),
        vec![vec![NEW_TD.to_owned()]]
    );
}

#[test]
fn a_failed_deployment_is_a_failed_rollout() {
    let log = Log::default();
    let new = td_arn(NEW_TD);
    let old = td_arn(OLD_TD);
    let mut failed = deployment(
        "ecs-svc/new",
        &new,
        "PRIMARY",
        DeploymentRolloutState::Failed,
        0,
    );
    failed.rollout_state_reason =
        Some("ECS deployment circuit breaker: tasks failed to start.".into());
    let services = describe_orders(vec![orders(
        NEW_TD,
        vec![
            failed,
            deployment(
                "ecs-svc/old",
                &old,
                "ACTIVE",
                DeploymentRolloutState::Completed,
                1,
            ),
        ],
        1,
    )]);
    let mocks = Mocks {
        ecs: vec![describe_new_td(&log), services],
        ..Mocks::default()
    };
    match mocks
        .backend()
        .rollout("esr-prod", "orders", NEW_TD)
        .unwrap()
    {
        Rollout::Failed { running, reason } => {
            assert_eq!(running, NEW_TD);
            assert!(reason.contains("ecs-svc/new"), "{reason}");
            assert!(reason.contains("circuit breaker"), "{reason}");
        }
        other => panic!("expected a failed rollout, got {other:?}"),
    }
}

#[test]
fn a_circuit_breaker_rollback_is_a_failed_rollout_never_completed() {
    let log = Log::default();
    let new = td_arn(NEW_TD);
    let old = td_arn(OLD_TD);
    // Poll 1: deploying orders:2. Poll 2 and after: the circuit breaker rolled the service back
    // onto orders:1, which is steady and COMPLETED, the only deployment left.
    let deploying = orders(
        NEW_TD,
        vec![
            deployment(
                "ecs-svc/new",
                &new,
                "PRIMARY",
                DeploymentRolloutState::InProgress,
                0,
            ),
            deployment(
                "ecs-svc/old",
                &old,
                "ACTIVE",
                DeploymentRolloutState::Completed,
                1,
            ),
        ],
        1,
    );
    let rolled_back = orders(
        OLD_TD,
        vec![deployment(
            "ecs-svc/rollback",
            &old,
            "PRIMARY",
            DeploymentRolloutState::Completed,
            1,
        )],
        1,
    );
    let services = describe_orders(vec![deploying, rolled_back.clone(), rolled_back]);
    let mocks = Mocks {
        ecs: vec![describe_new_td(&log), services],
        ..Mocks::default()
    };
    let mut aws = mocks.backend();
    assert_eq!(
        aws.rollout("esr-prod", "orders", NEW_TD).unwrap(),
        Rollout::InProgress
    );
    for _ in 0..2 {
        match aws.rollout("esr-prod", "orders", NEW_TD).unwrap() {
            Rollout::Failed { running, reason } => {
                assert_eq!(running, OLD_TD);
                assert!(
                    reason.contains(OLD_TD) && reason.contains(NEW_TD),
                    "{reason}"
                );
            }
            other => panic!("a rolled-back service must be a failure, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Throttling, transient and permanent errors

/// An awsJson 1.1 error response, as ECS sends it.
fn json_error(status: u16, code: &str, message: &str) -> HttpResponse {
    let mut response = HttpResponse::new(
        status.try_into().unwrap(),
        format!(r#"{{"__type":"{code}","message":"{message}"}}"#).into(),
    );
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.1");
    response
}

/// ListClusters answering `first`, then esr-prod and esr-batch over two pages.
fn list_clusters_after(first: fn() -> HttpResponse) -> Rule {
    mock!(aws_sdk_ecs::Client::list_clusters)
        .sequence()
        .http_response(first)
        .output(|| {
            ListClustersOutput::builder()
                .cluster_arns(cluster_arn("esr-prod"))
                .next_token("clusters-1")
                .build()
        })
        .output(|| {
            ListClustersOutput::builder()
                .cluster_arns(cluster_arn("esr-batch"))
                .build()
        })
        .build()
}

fn no_services() -> Rule {
    mock!(aws_sdk_ecs::Client::list_services).then_output(|| ListServicesOutput::builder().build())
}

fn cluster_names(world: &World) -> Vec<&str> {
    world.clusters.iter().map(|c| c.name.as_str()).collect()
}

#[test]
fn a_throttled_call_is_retried() {
    let list = list_clusters_after(|| json_error(400, "ThrottlingException", "Rate exceeded"));
    let mocks = Mocks {
        ecs: vec![list.clone(), no_services()],
        ..Mocks::default()
    };
    let started = Instant::now();
    let world = mocks
        .backend()
        .read(&ReadScope::default())
        .expect("read after a throttle");
    assert_eq!(cluster_names(&world), ["esr-prod", "esr-batch"]);
    // The throttled attempt, its retry (page 1), page 2.
    assert_eq!(list.num_calls(), 3);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_service_unavailable_answer_is_retried() {
    let list = list_clusters_after(|| HttpResponse::new(503.try_into().unwrap(), "".into()));
    let mocks = Mocks {
        ecs: vec![list.clone(), no_services()],
        ..Mocks::default()
    };
    let world = mocks
        .backend()
        .read(&ReadScope::default())
        .expect("read after a 503");
    assert_eq!(cluster_names(&world), ["esr-prod", "esr-batch"]);
    assert_eq!(list.num_calls(), 3);
}

#[test]
fn throttling_that_never_ends_fails_after_the_configured_attempts() {
    let list = mock!(aws_sdk_ecs::Client::list_clusters)
        .then_http_response(|| json_error(400, "ThrottlingException", "Rate exceeded"));
    let mocks = Mocks {
        ecs: vec![list.clone()],
        ..Mocks::default()
    };
    let message = read_error(&mut mocks.backend(), &ReadScope::default());
    assert_eq!(list.num_calls(), MAX_ATTEMPTS as usize);
    assert!(message.contains("ecs:ListClusters"), "{message}");
    assert!(message.contains("ThrottlingException"), "{message}");
}

#[test]
fn access_denied_stops_at_once_and_names_call_cluster_and_policy() {
    let log = Log::default();
    let fake = FakeEcs::new(10)
        .cluster(
            "esr-prod",
            (1..=5).map(|i| svc(&format!("svc-{i}"), "app:1")).collect(),
        )
        .definition(definition("app:1", vec![]));
    let denied = mock!(aws_sdk_ecs::Client::describe_services).then_http_response(|| {
        json_error(
            400,
            "AccessDeniedException",
            "User: arn:aws:sts::123456789012:assumed-role/ci/warren is not authorized to perform: ecs:DescribeServices",
        )
    });
    let mut ecs = vec![denied.clone()];
    ecs.extend(fake.rules(&log));
    let mocks = Mocks {
        ecs,
        ..Mocks::default()
    };
    let started = Instant::now();
    let message = read_error(&mut mocks.backend(), &ReadScope::default());
    assert_eq!(denied.num_calls(), 1, "a denied call is not retried");
    assert!(
        log.calls("DescribeTaskDefinition").is_empty(),
        "the read went on"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(message.contains("ecs:DescribeServices"), "{message}");
    assert!(message.contains("cluster esr-prod"), "{message}");
    assert!(message.contains("AccessDeniedException"), "{message}");
    assert!(
        message.contains("the IAM policy must allow ecs:DescribeServices"),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. RegisterTaskDefinition keeps everything but the changed value

/// `orders-api:7` as ECS describes it, with every kind of field warren must carry over.
fn rich_definition() -> aws_sdk_ecs::types::TaskDefinition {
    let app = ContainerDefinition::builder()
        .name("app")
        .image(format!(
            "{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/orders-api:1.4.2"
        ))
        .cpu(384)
        .memory(768)
        .memory_reservation(512)
        .essential(true)
        .port_mappings(
            PortMapping::builder()
                .name("http")
                .container_port(8080)
                .host_port(8080)
                .protocol(TransportProtocol::Tcp)
                .app_protocol(ApplicationProtocol::Http)
                .build(),
        )
        .port_mappings(
            PortMapping::builder()
                .container_port(9090)
                .protocol(TransportProtocol::Tcp)
                .build(),
        )
        .log_configuration(
            LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", "/ecs/orders-api")
                .options("awslogs-region", REGION)
                .options("awslogs-stream-prefix", "app")
                .build()
                .unwrap(),
        )
        .health_check(
            HealthCheck::builder()
                .command("CMD-SHELL")
                .command("curl -fs http://localhost:8080/actuator/health || exit 1")
                .interval(15)
                .timeout(5)
                .retries(4)
                .start_period(90)
                .build()
                .unwrap(),
        )
        .docker_labels("com.example.team", "payments")
        .docker_labels("com.example.tier", "backend")
        // Not alphabetical, not grouped: the order must survive.
        .environment(kv("SPRING_PROFILES_ACTIVE", "prod"))
        .environment(kv("SPRING_RABBITMQ_HOST", OLD_HOST))
        .environment(kv("JAVA_OPTS", "-Xmx512m -XX:+UseG1GC"))
        .environment(kv("SPRING_RABBITMQ_PORT", "5671"))
        .environment(kv("AWS_REGION", REGION))
        .environment(kv("SPRING_RABBITMQ_VIRTUAL_HOST", "/orders"))
        .secrets(secret(
            "SPRING_RABBITMQ_PASSWORD",
            &ssm_arn("/orders/rabbit-password"),
        ))
        .secrets(secret(
            "DB_PASSWORD",
            &format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:orders/db-AbCdEf"),
        ))
        .mount_points(
            MountPoint::builder()
                .source_volume("data")
                .container_path("/var/lib/orders")
                .read_only(false)
                .build(),
        )
        .depends_on(
            ContainerDependency::builder()
                .container_name("envoy")
                .condition(ContainerCondition::Healthy)
                .build()
                .unwrap(),
        )
        .build();
    let envoy = ContainerDefinition::builder()
        .name("envoy")
        .image("public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29.4.0-prod")
        .essential(true)
        .user("1337")
        .environment(kv("APPMESH_RESOURCE_ARN", "mesh/orders/virtualNode/api"))
        .environment(kv("ENVOY_LOG_LEVEL", "info"))
        .build();
    aws_sdk_ecs::types::TaskDefinition::builder()
        .task_definition_arn(td_arn("orders-api:7"))
        .family("orders-api")
        .revision(7)
        .status(TaskDefinitionStatus::Active)
        .task_role_arn(format!("arn:aws:iam::{ACCOUNT}:role/orders-api-task"))
        .execution_role_arn(format!("arn:aws:iam::{ACCOUNT}:role/ecsTaskExecutionRole"))
        .network_mode(NetworkMode::Awsvpc)
        .container_definitions(app)
        .container_definitions(envoy)
        .volumes(
            Volume::builder()
                .name("data")
                .efs_volume_configuration(
                    EfsVolumeConfiguration::builder()
                        .file_system_id("fs-0123456789abcdef0")
                        .root_directory("/orders")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .volumes(Volume::builder().name("scratch").build())
        .placement_constraints(
            TaskDefinitionPlacementConstraint::builder()
                .r#type(TaskDefinitionPlacementConstraintType::MemberOf)
                .expression("attribute:ecs.availability-zone in [eu-west-2a, eu-west-2b]")
                .build(),
        )
        .requires_compatibilities(Compatibility::Fargate)
        .compatibilities(Compatibility::Ec2)
        .compatibilities(Compatibility::Fargate)
        .cpu("512")
        .memory("1024")
        .pid_mode(PidMode::Task)
        .ipc_mode(IpcMode::None)
        .runtime_platform(
            RuntimePlatform::builder()
                .cpu_architecture(CpuArchitecture::Arm64)
                .operating_system_family(OsFamily::Linux)
                .build(),
        )
        .ephemeral_storage(EphemeralStorage::builder().size_in_gib(40).build())
        .enable_fault_injection(true)
        .registered_by(format!("arn:aws:sts::{ACCOUNT}:assumed-role/deploy/ci"))
        .build()
}

fn rich_tags() -> Vec<Tag> {
    vec![
        Tag::builder().key("team").value("payments").build(),
        Tag::builder().key("cost-centre").value("cc-42").build(),
        Tag::builder().key("managed-by").value("terraform").build(),
    ]
}

#[test]
fn register_changes_only_the_moved_value_and_keeps_everything_else() {
    let original = rich_definition();
    let tags = rich_tags();

    let described = {
        let (original, tags) = (original.clone(), tags.clone());
        mock!(aws_sdk_ecs::Client::describe_task_definition)
            .match_requests(|req| {
                req.task_definition() == Some("orders-api:7")
                    && req.include().contains(&TaskDefinitionField::Tags)
            })
            .then_output(move || {
                DescribeTaskDefinitionOutput::builder()
                    .task_definition(original.clone())
                    .set_tags(Some(tags.clone()))
                    .build()
            })
    };
    let sent: Arc<Mutex<Vec<RegisterTaskDefinitionInput>>> = Arc::default();
    let register = {
        let sent = sent.clone();
        mock!(aws_sdk_ecs::Client::register_task_definition)
            .match_requests(move |req| {
                sent.lock().unwrap().push(req.clone());
                true
            })
            .then_compute_output(|req| {
                RegisterTaskDefinitionOutput::builder()
                    .task_definition(
                        aws_sdk_ecs::types::TaskDefinition::builder()
                            .task_definition_arn(td_arn("orders-api:8"))
                            .family(req.family().unwrap())
                            .revision(8)
                            .set_container_definitions(req.container_definitions.clone())
                            .build(),
                    )
                    .set_tags(req.tags.clone())
                    .build()
            })
    };
    let mocks = Mocks {
        ecs: vec![described.clone(), register.clone()],
        ..Mocks::default()
    };

    // warren's model of orders-api:7 with the broker host moved, its environment in another
    // order (the model's order must not leak into the request).
    let app_env: warren::model::Environment = [
        ("SPRING_RABBITMQ_VIRTUAL_HOST", "/orders"),
        ("AWS_REGION", REGION),
        ("SPRING_RABBITMQ_PORT", "5671"),
        ("JAVA_OPTS", "-Xmx512m -XX:+UseG1GC"),
        ("SPRING_RABBITMQ_HOST", NEW_HOST),
        ("SPRING_PROFILES_ACTIVE", "prod"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let model = TaskDefinition {
        family: "orders-api".into(),
        revision: 7,
        status: Some("ACTIVE".into()),
        containers: vec![
            Container {
                name: "app".into(),
                environment: app_env,
                secrets: original.container_definitions()[0]
                    .secrets()
                    .iter()
                    .map(|s| (s.name().to_owned(), s.value_from().to_owned()))
                    .collect(),
                ..Container::default()
            },
            Container {
                name: "envoy".into(),
                environment: original.container_definitions()[1]
                    .environment()
                    .iter()
                    .map(|kv| {
                        (
                            kv.name().unwrap().to_owned(),
                            kv.value().unwrap().to_owned(),
                        )
                    })
                    .collect(),
                ..Container::default()
            },
        ],
        ..TaskDefinition::default()
    };

    let mut aws = mocks.backend();
    let registered = aws.register_task_definition(&model).expect("register");
    assert_eq!(registered, "orders-api:8");
    assert_eq!(described.num_calls(), 1);
    assert_eq!(register.num_calls(), 1);
    let sent = sent.lock().unwrap();
    assert_eq!(sent.len(), 1, "one RegisterTaskDefinition request");
    let req = &sent[0];

    // Task-level fields, one by one.
    assert_eq!(req.family(), Some("orders-api"));
    assert_eq!(req.task_role_arn(), original.task_role_arn());
    assert_eq!(req.execution_role_arn(), original.execution_role_arn());
    assert_eq!(req.network_mode(), original.network_mode());
    assert_eq!(req.volumes(), original.volumes());
    assert_eq!(
        req.placement_constraints(),
        original.placement_constraints()
    );
    assert_eq!(
        req.requires_compatibilities(),
        original.requires_compatibilities()
    );
    assert_eq!(req.cpu(), original.cpu());
    assert_eq!(req.memory(), original.memory());
    assert_eq!(req.pid_mode(), original.pid_mode());
    assert_eq!(req.ipc_mode(), original.ipc_mode());
    assert_eq!(req.proxy_configuration(), original.proxy_configuration());
    assert_eq!(req.ephemeral_storage(), original.ephemeral_storage());
    assert_eq!(req.runtime_platform(), original.runtime_platform());
    assert_eq!(
        req.enable_fault_injection(),
        original.enable_fault_injection()
    );
    assert_eq!(req.tags(), tags.as_slice(), "tags kept, in order");

    // Containers: same count and order; everything but the environment identical.
    let sent_containers = req.container_definitions();
    let original_containers = original.container_definitions();
    assert_eq!(
        sent_containers.iter().map(|c| c.name()).collect::<Vec<_>>(),
        original_containers
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
    );
    for (sent, original) in sent_containers.iter().zip(original_containers) {
        let mut without_env = sent.clone();
        without_env.environment = original.environment.clone();
        assert_eq!(
            &without_env,
            original,
            "container {:?} changed beyond its environment",
            original.name()
        );
    }
    // The environment: same names in the same order; one value differs.
    let env = |c: &ContainerDefinition| -> Vec<(String, String)> {
        c.environment()
            .iter()
            .map(|kv| {
                (
                    kv.name().unwrap().to_owned(),
                    kv.value().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let mut expected_app = env(&original_containers[0]);
    for (name, value) in &mut expected_app {
        if name == "SPRING_RABBITMQ_HOST" {
            *value = NEW_HOST.to_owned();
        }
    }
    assert_eq!(env(&sent_containers[0]), expected_app);
    assert_eq!(env(&sent_containers[1]), env(&original_containers[1]));
    let differences = env(&sent_containers[0])
        .iter()
        .zip(env(&original_containers[0]))
        .filter(|(a, b)| **a != *b)
        .count();
    assert_eq!(differences, 1);
}

/// A host moved in a container's `command` (a field of warren's model, not a variable) reaches
/// the RegisterTaskDefinition request; the rest of the container is as ECS described it.
#[test]
fn register_carries_a_rewritten_command() {
    let mut original = rich_definition();
    original.container_definitions.as_mut().unwrap()[0].command = Some(vec![
        "--rabbit-host".to_owned(),
        OLD_HOST.to_owned(),
        "--prefetch".to_owned(),
        "10".to_owned(),
    ]);
    let described = {
        let original = original.clone();
        mock!(aws_sdk_ecs::Client::describe_task_definition).then_output(move || {
            DescribeTaskDefinitionOutput::builder()
                .task_definition(original.clone())
                .build()
        })
    };
    let sent: Arc<Mutex<Vec<RegisterTaskDefinitionInput>>> = Arc::default();
    let register = {
        let sent = sent.clone();
        mock!(aws_sdk_ecs::Client::register_task_definition)
            .match_requests(move |req| {
                sent.lock().unwrap().push(req.clone());
                true
            })
            .then_compute_output(|req| {
                RegisterTaskDefinitionOutput::builder()
                    .task_definition(
                        aws_sdk_ecs::types::TaskDefinition::builder()
                            .task_definition_arn(td_arn("orders-api:8"))
                            .family(req.family().unwrap())
                            .revision(8)
                            .build(),
                    )
                    .build()
            })
    };
    let mocks = Mocks {
        ecs: vec![described, register],
        ..Mocks::default()
    };
    let mut app = Container {
        name: "app".into(),
        ..Container::default()
    };
    app.extra.insert(
        "command".into(),
        serde_json::json!(["--rabbit-host", NEW_HOST, "--prefetch", "10"]),
    );
    let model = TaskDefinition {
        family: "orders-api".into(),
        revision: 7,
        containers: vec![app],
        ..TaskDefinition::default()
    };

    let mut aws = mocks.backend();
    assert_eq!(
        aws.register_task_definition(&model).expect("register"),
        "orders-api:8"
    );

    let sent = sent.lock().unwrap();
    let containers = sent[0].container_definitions();
    assert_eq!(
        containers[0].command(),
        ["--rabbit-host", NEW_HOST, "--prefetch", "10"]
    );
    let mut without_command = containers[0].clone();
    without_command.command = original.container_definitions()[0].command.clone();
    assert_eq!(&without_command, &original.container_definitions()[0]);
    assert_eq!(&containers[1], &original.container_definitions()[1]);
}

#[test]
fn rollouts_of_a_wave_are_asked_for_ten_services_a_call() {
    let log = Log::default();
    let new = td_arn(NEW_TD);
    let l = log.clone();
    let describe = mock!(aws_sdk_ecs::Client::describe_services)
        .match_requests(|req| req.cluster() == Some("esr-prod"))
        .then_compute_output(move |req| {
            let names: Vec<String> = req.services().to_vec();
            l.push("DescribeServices", names.clone());
            DescribeServicesOutput::builder()
                .set_services(Some(
                    names
                        .iter()
                        .map(|name| {
                            let done = deployment(
                                "ecs-svc/new",
                                &td_arn(NEW_TD),
                                "PRIMARY",
                                DeploymentRolloutState::Completed,
                                1,
                            );
                            ecs_service("esr-prod", name, &td_arn(NEW_TD), vec![done], 1)
                        })
                        .collect(),
                ))
                .build()
        });
    let mocks = Mocks {
        ecs: vec![describe_new_td(&log), describe],
        ..Mocks::default()
    };
    let mut aws = mocks.backend();
    let asked: Vec<warren::backend::RolloutQuery> = (0..23)
        .map(|i| warren::backend::RolloutQuery {
            cluster: "esr-prod".into(),
            service: format!("svc-{i:02}"),
            task_definition: NEW_TD.into(),
        })
        .collect();
    let states = aws.rollouts(&asked).unwrap();
    assert_eq!(states, vec![Rollout::Completed; 23]);
    let calls = log.calls("DescribeServices");
    assert_eq!(calls.len(), 3, "23 services in 3 calls: {calls:?}");
    assert!(calls.iter().all(|c| c.len() <= 10));
    let asked_for: BTreeSet<String> = calls.into_iter().flatten().collect();
    assert_eq!(asked_for.len(), 23, "every service asked for once");
    assert_eq!(
        log.calls("DescribeTaskDefinition").len(),
        1,
        "the target resolved once: {new}"
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Every call warren makes survives throttling and 5xx answers

/// A fault answered once before the call succeeds.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// 400 ThrottlingException.
    Throttled,
    /// 500 with a service error body.
    Internal,
    /// 503 with no body.
    Unavailable,
}

impl Fault {
    fn response(self) -> HttpResponse {
        match self {
            Fault::Throttled => {
                let mut r = json_error(400, "ThrottlingException", "Rate exceeded");
                r.headers_mut()
                    .insert("x-amzn-errortype", "ThrottlingException");
                r
            }
            Fault::Internal => {
                json_error(500, "InternalFailure", "We encountered an internal error")
            }
            Fault::Unavailable => HttpResponse::new(503.try_into().unwrap(), "".into()),
        }
    }
}

const FAULT_TD: &str = "orders:1";
const FAULT_PARAMETER: &str = "/esr/rabbit/host";
const FAULT_SECRET: &str =
    "arn:aws:secretsmanager:eu-west-2:123456789012:secret:orders/amqp-QwErTy";
const FAULT_ENV: &str = "arn:aws:s3:::orders-config/fault.env";

fn fault_definition() -> aws_sdk_ecs::types::TaskDefinition {
    definition(
        FAULT_TD,
        vec![container(
            "app",
            &[("SPRING_RABBITMQ_HOST", OLD_HOST)],
            &[("RABBIT_HOST", FAULT_PARAMETER)],
        )],
    )
}

/// [`fault_definition`] that also reads its broker host from a Secrets Manager secret and loads
/// an env file from S3: the fault table's read reaches every kind of value outside the
/// definition.
fn fault_definition_with_outside_values() -> aws_sdk_ecs::types::TaskDefinition {
    use aws_sdk_ecs::types::{EnvironmentFile, EnvironmentFileType, Secret};
    let mut td = fault_definition();
    let app = &mut td.container_definitions.as_mut().unwrap()[0];
    app.secrets.get_or_insert_with(Vec::new).push(
        Secret::builder()
            .name("AMQP_HOST")
            .value_from(FAULT_SECRET)
            .build()
            .unwrap(),
    );
    app.environment_files = Some(vec![EnvironmentFile::builder()
        .value(FAULT_ENV)
        .r#type(EnvironmentFileType::S3)
        .build()
        .unwrap()]);
    td
}

fn list_clusters_out() -> ListClustersOutput {
    ListClustersOutput::builder()
        .cluster_arns(cluster_arn("esr-prod"))
        .build()
}
fn describe_clusters_out() -> aws_sdk_ecs::operation::describe_clusters::DescribeClustersOutput {
    aws_sdk_ecs::operation::describe_clusters::DescribeClustersOutput::builder()
        .clusters(
            aws_sdk_ecs::types::Cluster::builder()
                .cluster_arn(cluster_arn("esr-prod"))
                .cluster_name("esr-prod")
                .status("ACTIVE")
                .build(),
        )
        .build()
}
fn list_services_out() -> ListServicesOutput {
    ListServicesOutput::builder()
        .service_arns(service_arn("esr-prod", "orders"))
        .build()
}
fn describe_services_out() -> DescribeServicesOutput {
    let td = td_arn(FAULT_TD);
    DescribeServicesOutput::builder()
        .services(ecs_service(
            "esr-prod",
            "orders",
            &td,
            vec![deployment(
                "ecs-svc/1",
                &td,
                "PRIMARY",
                DeploymentRolloutState::Completed,
                1,
            )],
            1,
        ))
        .build()
}
fn describe_td_out() -> DescribeTaskDefinitionOutput {
    DescribeTaskDefinitionOutput::builder()
        .task_definition(fault_definition())
        .build()
}
fn describe_outside_td_out() -> DescribeTaskDefinitionOutput {
    DescribeTaskDefinitionOutput::builder()
        .task_definition(fault_definition_with_outside_values())
        .build()
}
fn list_families_out() -> ListTaskDefinitionFamiliesOutput {
    ListTaskDefinitionFamiliesOutput::builder()
        .families("orders")
        .build()
}
fn list_tds_out() -> aws_sdk_ecs::operation::list_task_definitions::ListTaskDefinitionsOutput {
    aws_sdk_ecs::operation::list_task_definitions::ListTaskDefinitionsOutput::builder()
        .task_definition_arns(td_arn(FAULT_TD))
        .build()
}
fn register_out() -> RegisterTaskDefinitionOutput {
    RegisterTaskDefinitionOutput::builder()
        .task_definition(definition("orders:2", vec![container("app", &[], &[])]))
        .build()
}
fn task_arn(cluster: &str, id: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task/{cluster}/{id}")
}
/// A running task at `address`, as DescribeTasks answers it for awsvpc: its network interface
/// attachment holds the address.
fn running_task(cluster: &str, id: &str, address: &str) -> aws_sdk_ecs::types::Task {
    aws_sdk_ecs::types::Task::builder()
        .task_arn(task_arn(cluster, id))
        .last_status("RUNNING")
        .attachments(
            aws_sdk_ecs::types::Attachment::builder()
                .r#type("ElasticNetworkInterface")
                .details(kv("networkInterfaceId", "eni-1"))
                .details(kv("privateIPv4Address", address))
                .build(),
        )
        .build()
}
fn list_tasks_out() -> aws_sdk_ecs::operation::list_tasks::ListTasksOutput {
    aws_sdk_ecs::operation::list_tasks::ListTasksOutput::builder()
        .task_arns(task_arn("esr-prod", "t1"))
        .build()
}
fn describe_tasks_out() -> aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput {
    aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput::builder()
        .tasks(running_task("esr-prod", "t1", "10.0.1.7"))
        .build()
}
fn update_service_out() -> aws_sdk_ecs::operation::update_service::UpdateServiceOutput {
    aws_sdk_ecs::operation::update_service::UpdateServiceOutput::builder().build()
}
fn list_brokers_out() -> ListBrokersOutput {
    ListBrokersOutput::builder()
        .broker_summaries(
            aws_sdk_mq::types::BrokerSummary::builder()
                .broker_id("b-1111")
                .broker_name("esr-rabbit-old")
                .build(),
        )
        .build()
}
fn describe_broker_out() -> DescribeBrokerOutput {
    DescribeBrokerOutput::builder()
        .broker_id("b-1111")
        .broker_name("esr-rabbit-old")
        .broker_state(aws_sdk_mq::types::BrokerState::Running)
        .broker_instances(
            aws_sdk_mq::types::BrokerInstance::builder()
                .endpoints(format!("amqps://{OLD_HOST}:5671"))
                .build(),
        )
        .build()
}
fn delete_broker_out() -> aws_sdk_mq::operation::delete_broker::DeleteBrokerOutput {
    aws_sdk_mq::operation::delete_broker::DeleteBrokerOutput::builder()
        .broker_id("b-1111")
        .build()
}
fn get_parameters_out() -> GetParametersOutput {
    GetParametersOutput::builder()
        .parameters(
            Parameter::builder()
                .name(FAULT_PARAMETER)
                .value(OLD_HOST)
                .r#type(ParameterType::String)
                .version(1)
                .build(),
        )
        .build()
}
fn list_rules_out() -> ListRulesOutput {
    ListRulesOutput::builder()
        .rules(
            aws_sdk_eventbridge::types::Rule::builder()
                .name("nightly")
                .build(),
        )
        .build()
}
fn list_targets_out() -> ListTargetsByRuleOutput {
    ListTargetsByRuleOutput::builder()
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("t")
                .arn(cluster_arn("esr-prod"))
                .ecs_parameters(
                    aws_sdk_eventbridge::types::EcsParameters::builder()
                        .task_definition_arn(td_arn(FAULT_TD))
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .build()
}

fn list_buses_out() -> ListEventBusesOutput {
    ListEventBusesOutput::builder()
        .event_buses(
            aws_sdk_eventbridge::types::EventBus::builder()
                .name("default")
                .build(),
        )
        .build()
}
fn list_schedules_out() -> ListSchedulesOutput {
    ListSchedulesOutput::builder()
        .schedules(
            aws_sdk_scheduler::types::ScheduleSummary::builder()
                .name("ping")
                .group_name("default")
                .build(),
        )
        .build()
        .unwrap()
}
/// A schedule that runs no ECS task (a queue's): read, and not a scheduled task.
fn get_schedule_out() -> aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput {
    aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput::builder()
        .name("ping")
        .group_name("default")
        .target(
            aws_sdk_scheduler::types::Target::builder()
                .arn(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:pings"))
                .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/scheduler"))
                .build()
                .unwrap(),
        )
        .build()
}
fn list_functions_out() -> ListFunctionsOutput {
    ListFunctionsOutput::builder()
        .functions(
            aws_sdk_lambda::types::FunctionConfiguration::builder()
                .function_name("notifier")
                .build(),
        )
        .build()
}
fn list_mappings_out() -> ListEventSourceMappingsOutput {
    ListEventSourceMappingsOutput::builder()
        .event_source_mappings(
            aws_sdk_lambda::types::EventSourceMappingConfiguration::builder()
                .uuid("1111")
                .event_source_arn(OLD_BROKER_ARN)
                .build(),
        )
        .build()
}
fn list_pipes_out() -> ListPipesOutput {
    ListPipesOutput::builder()
        .pipes(
            aws_sdk_pipes::types::Pipe::builder()
                .name("orders")
                .source(OLD_BROKER_ARN)
                .build(),
        )
        .build()
}
fn list_machines_out() -> ListStateMachinesOutput {
    ListStateMachinesOutput::builder()
        .state_machines(
            aws_sdk_sfn::types::StateMachineListItem::builder()
                .state_machine_arn(format!(
                    "arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:export"
                ))
                .name("export")
                .r#type(aws_sdk_sfn::types::StateMachineType::Standard)
                .creation_date(aws_sdk_sfn::primitives::DateTime::from_secs(0))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}
fn describe_machine_out(
) -> aws_sdk_sfn::operation::describe_state_machine::DescribeStateMachineOutput {
    aws_sdk_sfn::operation::describe_state_machine::DescribeStateMachineOutput::builder()
        .state_machine_arn(format!(
            "arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:export"
        ))
        .name("export")
        .definition(r#"{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}"#)
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/states"))
        .r#type(aws_sdk_sfn::types::StateMachineType::Standard)
        .creation_date(aws_sdk_sfn::primitives::DateTime::from_secs(0))
        .build()
        .unwrap()
}

/// The lock holder the table answers for GetItem.
const HELD: &str = r#"{"id":"0123abcd","migration":"esr-prod","command":"apply","pid":1,"host":"ci-runner-7","time":"2026-11-26T01:00:00Z"}"#;

fn get_item_out() -> aws_sdk_dynamodb::operation::get_item::GetItemOutput {
    use aws_sdk_dynamodb::types::AttributeValue;
    aws_sdk_dynamodb::operation::get_item::GetItemOutput::builder()
        .item("LockID", AttributeValue::S("esr-prod".into()))
        .item("Info", AttributeValue::S(HELD.into()))
        .build()
}
fn put_item_out() -> aws_sdk_dynamodb::operation::put_item::PutItemOutput {
    aws_sdk_dynamodb::operation::put_item::PutItemOutput::builder().build()
}
fn delete_item_out() -> aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput {
    aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput::builder().build()
}
/// The shared journal of the migration, empty.
fn scan_out() -> aws_sdk_dynamodb::operation::scan::ScanOutput {
    aws_sdk_dynamodb::operation::scan::ScanOutput::builder()
        .count(0)
        .build()
}
fn put_targets_out() -> aws_sdk_eventbridge::operation::put_targets::PutTargetsOutput {
    aws_sdk_eventbridge::operation::put_targets::PutTargetsOutput::builder()
        .failed_entry_count(0)
        .build()
}
/// The schedule `export`, which runs `orders:1` (the one [`get_schedule_out`] is not).
fn get_ecs_schedule_out() -> aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput {
    use aws_sdk_scheduler::types::{EcsParameters, FlexibleTimeWindow, FlexibleTimeWindowMode};
    aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput::builder()
        .name("export")
        .group_name("default")
        .schedule_expression("rate(1 day)")
        .flexible_time_window(
            FlexibleTimeWindow::builder()
                .mode(FlexibleTimeWindowMode::Off)
                .build()
                .unwrap(),
        )
        .target(
            aws_sdk_scheduler::types::Target::builder()
                .arn(cluster_arn("esr-prod"))
                .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/scheduler"))
                .ecs_parameters(
                    EcsParameters::builder()
                        .task_definition_arn(td_arn(FAULT_TD))
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .build()
}
fn update_schedule_out() -> aws_sdk_scheduler::operation::update_schedule::UpdateScheduleOutput {
    aws_sdk_scheduler::operation::update_schedule::UpdateScheduleOutput::builder()
        .schedule_arn(format!(
            "arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/export"
        ))
        .build()
        .unwrap()
}
fn get_secret_out() -> aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput {
    aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput::builder()
        .arn(FAULT_SECRET)
        .secret_string(OLD_HOST)
        .build()
}
fn get_object_out() -> aws_sdk_s3::operation::get_object::GetObjectOutput {
    aws_sdk_s3::operation::get_object::GetObjectOutput::builder()
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"RABBIT_URL=amqps://b-1111.mq.eu-west-2.amazonaws.com:5671\n",
        ))
        .build()
}

/// A rule for `$op` that answers `$fault` once, then `$out` once; and the rule that answers
/// `$out` from then on.
macro_rules! faulty {
    ($op:path, $fault:expr, $out:expr) => {
        faulty!($op, |_| true, $fault, $out)
    };
    // `$only`: the requests the faulty rule answers (one of calls made side by side, whose
    // retry must come back to the same rule).
    ($op:path, $only:expr, $fault:expr, $out:expr) => {{
        let fault = $fault;
        (
            mock!($op)
                .match_requests($only)
                .sequence()
                .http_response(move || fault.response())
                .output($out)
                .build(),
            mock!($op).then_output($out),
        )
    }};
}

/// Which backend method makes the call.
#[derive(Clone, Copy, Debug)]
enum Action {
    /// `read` of every cluster, with `everything`, a plan parameter, a previous revision, env
    /// files and every secret.
    ReadAll,
    /// `read` of the plan's clusters.
    ReadNamed,
    Register,
    Update,
    /// `update_schedule` of the rule `nightly`'s target.
    RetargetRule,
    /// `update_schedule` of the Scheduler schedule `export`.
    RetargetSchedule,
    DeleteBroker,
    Lock,
    Unlock,
    /// The shared journal's entries.
    Journal,
    /// `task_addresses` of `esr-prod/orders`.
    TaskAddresses,
}

/// Every AWS call warren makes: the operation, the backend method that makes it, and the rules
/// (the faulty one first) of each client.
fn fault_case(call: &str, fault: Fault) -> (Action, Rule, Mocks, Vec<Rule>) {
    use aws_sdk_dynamodb::Client as Ddb;
    use aws_sdk_ecs::Client as Ecs;
    use aws_sdk_eventbridge::Client as Events;
    use aws_sdk_lambda::Client as Lambda;
    use aws_sdk_mq::Client as Mq;
    use aws_sdk_pipes::Client as Pipes;
    use aws_sdk_s3::Client as S3;
    use aws_sdk_scheduler::Client as Scheduler;
    use aws_sdk_secretsmanager::Client as Secrets;
    use aws_sdk_sfn::Client as Sfn;
    use aws_sdk_ssm::Client as Ssm;
    let mut ecs = vec![
        (
            "ecs:ListClusters",
            faulty!(Ecs::list_clusters, fault, list_clusters_out),
        ),
        (
            "ecs:DescribeClusters",
            faulty!(Ecs::describe_clusters, fault, describe_clusters_out),
        ),
        (
            "ecs:ListServices",
            faulty!(Ecs::list_services, fault, list_services_out),
        ),
        (
            "ecs:DescribeServices",
            faulty!(Ecs::describe_services, fault, describe_services_out),
        ),
        (
            "ecs:DescribeTaskDefinition",
            faulty!(
                Ecs::describe_task_definition,
                |req| req.task_definition() == Some(td_arn(FAULT_TD).as_str()),
                fault,
                describe_outside_td_out
            ),
        ),
        (
            "ecs:ListTaskDefinitionFamilies",
            faulty!(Ecs::list_task_definition_families, fault, list_families_out),
        ),
        (
            "ecs:ListTaskDefinitions",
            faulty!(Ecs::list_task_definitions, fault, list_tds_out),
        ),
        (
            "ecs:RegisterTaskDefinition",
            faulty!(Ecs::register_task_definition, fault, register_out),
        ),
        (
            "ecs:UpdateService",
            faulty!(Ecs::update_service, fault, update_service_out),
        ),
        (
            "ecs:ListTasks",
            faulty!(Ecs::list_tasks, fault, list_tasks_out),
        ),
        (
            "ecs:DescribeTasks",
            faulty!(Ecs::describe_tasks, fault, describe_tasks_out),
        ),
    ];
    let mut mq = vec![
        (
            "mq:ListBrokers",
            faulty!(Mq::list_brokers, fault, list_brokers_out),
        ),
        (
            "mq:DescribeBroker",
            faulty!(Mq::describe_broker, fault, describe_broker_out),
        ),
        (
            "mq:DeleteBroker",
            faulty!(Mq::delete_broker, fault, delete_broker_out),
        ),
    ];
    let mut ssm = vec![(
        "ssm:GetParameters",
        faulty!(Ssm::get_parameters, fault, get_parameters_out),
    )];
    let mut events = vec![
        (
            "events:ListRules",
            faulty!(Events::list_rules, fault, list_rules_out),
        ),
        (
            "events:ListTargetsByRule",
            faulty!(Events::list_targets_by_rule, fault, list_targets_out),
        ),
        (
            "events:ListEventBuses",
            faulty!(Events::list_event_buses, fault, list_buses_out),
        ),
        (
            "events:PutTargets",
            faulty!(Events::put_targets, fault, put_targets_out),
        ),
    ];
    let mut scheduler = vec![
        (
            "scheduler:ListSchedules",
            faulty!(Scheduler::list_schedules, fault, list_schedules_out),
        ),
        (
            "scheduler:GetSchedule",
            faulty!(Scheduler::get_schedule, fault, get_schedule_out),
        ),
        (
            "scheduler:UpdateSchedule",
            faulty!(Scheduler::update_schedule, fault, update_schedule_out),
        ),
    ];
    let mut secrets = vec![(
        "secretsmanager:GetSecretValue",
        faulty!(Secrets::get_secret_value, fault, get_secret_out),
    )];
    let mut s3 = vec![(
        "s3:GetObject",
        faulty!(S3::get_object, fault, get_object_out),
    )];
    let mut lambda = vec![
        (
            "lambda:ListFunctions",
            faulty!(Lambda::list_functions, fault, list_functions_out),
        ),
        (
            "lambda:ListEventSourceMappings",
            faulty!(Lambda::list_event_source_mappings, fault, list_mappings_out),
        ),
    ];
    let mut pipes = vec![(
        "pipes:ListPipes",
        faulty!(Pipes::list_pipes, fault, list_pipes_out),
    )];
    let mut sfn = vec![
        (
            "states:ListStateMachines",
            faulty!(Sfn::list_state_machines, fault, list_machines_out),
        ),
        (
            "states:DescribeStateMachine",
            faulty!(Sfn::describe_state_machine, fault, describe_machine_out),
        ),
    ];
    let mut dynamodb = vec![
        (
            "dynamodb:PutItem",
            faulty!(Ddb::put_item, fault, put_item_out),
        ),
        (
            "dynamodb:GetItem",
            faulty!(Ddb::get_item, fault, get_item_out),
        ),
        (
            "dynamodb:DeleteItem",
            faulty!(Ddb::delete_item, fault, delete_item_out),
        ),
        ("dynamodb:Scan", faulty!(Ddb::scan, fault, scan_out)),
    ];
    let action = match call {
        "ecs:DescribeClusters" => Action::ReadNamed,
        "ecs:ListTaskDefinitions" | "ecs:RegisterTaskDefinition" => Action::Register,
        "ecs:UpdateService" => Action::Update,
        "ecs:ListTasks" | "ecs:DescribeTasks" => Action::TaskAddresses,
        "events:PutTargets" => Action::RetargetRule,
        "scheduler:UpdateSchedule" => Action::RetargetSchedule,
        "mq:DeleteBroker" => Action::DeleteBroker,
        "dynamodb:PutItem" | "dynamodb:DeleteItem" => Action::Lock,
        "dynamodb:GetItem" => Action::Unlock,
        "dynamodb:Scan" => Action::Journal,
        _ => Action::ReadAll,
    };
    let mut faulty = None;
    // The faulty rule of `call` first, then every call's steady rule.
    let mut rules = |list: &mut Vec<(&str, (Rule, Rule))>| -> Vec<Rule> {
        let mut out = Vec::new();
        for (name, (bad, good)) in list.drain(..) {
            if name == call {
                out.insert(0, bad.clone());
                faulty = Some(bad);
            }
            out.push(good);
        }
        out
    };
    let mut scheduler = rules(&mut scheduler);
    // The schedule a retarget asks for runs an ECS task; the one a read lists does not. First,
    // so that it answers for `export` before the steady GetSchedule rule answers for any name.
    scheduler.insert(
        0,
        mock!(Scheduler::get_schedule)
            .match_requests(|req| req.name() == Some("export"))
            .then_output(get_ecs_schedule_out),
    );
    let mocks = Mocks {
        ecs: rules(&mut ecs),
        mq: rules(&mut mq),
        ssm: rules(&mut ssm),
        events: rules(&mut events),
        scheduler,
        lambda: rules(&mut lambda),
        pipes: rules(&mut pipes),
        sfn: rules(&mut sfn),
        secrets: rules(&mut secrets),
        s3: rules(&mut s3),
    };
    let dynamodb = rules(&mut dynamodb);
    let faulty = faulty.unwrap_or_else(|| panic!("no call {call} in the fault table"));
    (action, faulty, mocks, dynamodb)
}

/// The calls of the fault table, each with the fault it is given first.
const FAULT_TABLE: &[(&str, Fault)] = &[
    ("ecs:ListClusters", Fault::Throttled),
    ("ecs:DescribeClusters", Fault::Unavailable),
    ("ecs:ListServices", Fault::Throttled),
    ("ecs:DescribeServices", Fault::Internal),
    ("ecs:DescribeTaskDefinition", Fault::Throttled),
    ("ecs:ListTaskDefinitionFamilies", Fault::Unavailable),
    ("ecs:ListTaskDefinitions", Fault::Throttled),
    ("ecs:RegisterTaskDefinition", Fault::Internal),
    ("ecs:UpdateService", Fault::Throttled),
    ("ecs:ListTasks", Fault::Internal),
    ("ecs:DescribeTasks", Fault::Throttled),
    ("mq:ListBrokers", Fault::Throttled),
    ("mq:DescribeBroker", Fault::Internal),
    ("mq:DeleteBroker", Fault::Unavailable),
    ("ssm:GetParameters", Fault::Throttled),
    ("events:ListRules", Fault::Throttled),
    ("events:ListTargetsByRule", Fault::Internal),
    ("events:ListEventBuses", Fault::Unavailable),
    ("events:PutTargets", Fault::Unavailable),
    ("scheduler:ListSchedules", Fault::Throttled),
    ("scheduler:GetSchedule", Fault::Internal),
    ("scheduler:UpdateSchedule", Fault::Throttled),
    ("secretsmanager:GetSecretValue", Fault::Throttled),
    ("s3:GetObject", Fault::Internal),
    ("lambda:ListFunctions", Fault::Unavailable),
    ("lambda:ListEventSourceMappings", Fault::Throttled),
    ("pipes:ListPipes", Fault::Internal),
    ("states:ListStateMachines", Fault::Unavailable),
    ("states:DescribeStateMachine", Fault::Throttled),
    ("dynamodb:PutItem", Fault::Throttled),
    ("dynamodb:GetItem", Fault::Unavailable),
    ("dynamodb:DeleteItem", Fault::Internal),
    ("dynamodb:Scan", Fault::Unavailable),
];

fn old_broker() -> warren::discovery::ResolvedBroker {
    warren::discovery::ResolvedBroker {
        alias: warren::config::BrokerAlias::Old,
        id: "b-1111".into(),
        name: Some("esr-rabbit-old".into()),
        endpoints: vec![format!("amqps://{OLD_HOST}:5671")],
        hosts: vec![OLD_HOST.into()],
        amqp_url_env: None,
        management_url_env: None,
        upstream_url_env: None,
        console_url: None,
    }
}

/// Runs `action` through the backend (or the lock) and says what it did; panics on an error.
fn perform(action: Action, mocks: &Mocks, dynamodb: &[Rule]) -> String {
    let mut aws = mocks.backend();
    let scope = |clusters: Option<Vec<String>>| ReadScope {
        clusters,
        everything: true,
        parameters: vec![FAULT_PARAMETER.to_owned()],
        task_definitions: vec![FAULT_TD.to_owned()],
        resources: true,
        secrets: warren::config::SecretsToRead::All,
    };
    match action {
        Action::ReadAll | Action::ReadNamed => {
            let clusters = matches!(action, Action::ReadNamed).then(|| vec!["esr-prod".to_owned()]);
            let world = aws.read(&scope(clusters)).expect("read");
            assert_eq!(cluster_names(&world), ["esr-prod"]);
            assert_eq!(world.brokers.len(), 1);
            // The SSM parameter and the secret, and the env file: read, none left unread.
            assert_eq!(world.parameters.len(), 2, "{:?}", world.parameters);
            assert!(world.secret_parameters.contains(FAULT_SECRET));
            assert!(world.env_files.contains_key(FAULT_ENV));
            assert!(world.unread.is_empty(), "{:?}", world.unread);
            assert_eq!(world.schedules.len(), 1);
            assert!(keys_contain(&world, FAULT_TD));
            assert_eq!(world.functions.len(), 1);
            assert_eq!(world.event_source_mappings.len(), 1);
            assert_eq!(world.pipes.len(), 1);
            assert_eq!(world.state_machines.len(), 1);
            "read".into()
        }
        Action::Register => {
            let mut td = TaskDefinition {
                family: "orders".into(),
                revision: 1,
                ..TaskDefinition::default()
            };
            td.containers.push(Container {
                name: "app".into(),
                environment: [("SPRING_RABBITMQ_HOST", NEW_HOST)].into(),
                ..Container::default()
            });
            aws.register_task_definition(&td).expect("register")
        }
        Action::Update => {
            aws.update_service("esr-prod", "orders", FAULT_TD)
                .expect("update");
            "updated".into()
        }
        Action::RetargetRule | Action::RetargetSchedule => {
            let schedule = if matches!(action, Action::RetargetRule) {
                Schedule {
                    name: "nightly".into(),
                    target: Some("t".into()),
                    ..Schedule::default()
                }
            } else {
                Schedule {
                    name: "export".into(),
                    kind: ScheduleKind::Schedule,
                    ..Schedule::default()
                }
            };
            aws.update_schedule(&Schedule {
                cluster: "esr-prod".into(),
                task_definition: FAULT_TD.into(),
                ..schedule
            })
            .expect("retarget");
            "retargeted".into()
        }
        Action::TaskAddresses => {
            let found = aws
                .task_addresses(&[("esr-prod".to_owned(), "orders".to_owned())])
                .expect("task addresses");
            assert_eq!(
                found,
                BTreeMap::from([(
                    ("esr-prod".to_owned(), "orders".to_owned()),
                    vec!["10.0.1.7".to_owned()]
                )])
            );
            "located".into()
        }
        Action::DeleteBroker => {
            aws.delete_broker(&old_broker()).expect("delete");
            "deleted".into()
        }
        Action::Journal => {
            use warren::journal::SharedJournal as _;
            let client = mocked_client!(aws_sdk_dynamodb, dynamodb);
            let journal = warren::backend::aws::journal::TableJournal::new(
                runtime().expect("runtime"),
                client,
                "warren-locks",
                "esr-prod",
            );
            let entries = journal.entries("esr-prod").expect("journal");
            format!("{} journal entries", entries.len())
        }
        Action::Lock | Action::Unlock => {
            let client = mocked_client!(aws_sdk_dynamodb, dynamodb);
            let rt = runtime().expect("runtime");
            if matches!(action, Action::Lock) {
                let (lock, _) = warren::backend::aws::lock::TableLock::acquire(
                    rt,
                    client,
                    "warren-locks",
                    "esr-prod",
                    "apply",
                )
                .expect("lock");
                drop(lock);
                "locked and released".into()
            } else {
                let holder = warren::backend::aws::lock::unlock(
                    &rt,
                    &client,
                    "warren-locks",
                    "esr-prod",
                    "0123abcd",
                )
                .expect("unlock");
                holder.host
            }
        }
    }
}

/// Each call of [`FAULT_TABLE`] answers its fault once and is made again; the table is held to
/// the `"service:Action"` calls in the source (tests/support/calls.rs, the scan the IAM policy
/// test uses), so a call added without a fault case fails here rather than going untested.
#[test]
fn every_call_is_retried_after_throttling_or_a_server_error() {
    let mut covered = BTreeSet::new();
    for (call, fault) in FAULT_TABLE {
        let (action, faulty, mocks, dynamodb) = fault_case(call, *fault);
        let did = perform(action, &mocks, &dynamodb);
        assert_eq!(
            faulty.num_calls(),
            2,
            "{call} after {fault:?}: answered the fault, then succeeded on the retry ({did})"
        );
        covered.insert((*call).to_owned());
    }
    assert_eq!(
        covered.len(),
        FAULT_TABLE.len(),
        "a call twice in the table"
    );
    // Every operation warren calls is in the table: a call added without a fault case fails.
    let called = calls::called_actions();
    assert!(
        called.len() >= 10,
        "the scan found too few calls to be reading the source: {called:?}"
    );
    let untested: Vec<_> = called.difference(&covered).collect();
    assert!(
        untested.is_empty(),
        "calls with no fault case in FAULT_TABLE: {untested:?}"
    );
    let stale: Vec<_> = covered.difference(&called).collect();
    assert!(
        stale.is_empty(),
        "FAULT_TABLE lists calls no code makes: {stale:?}"
    );
    assert_eq!(covered.len(), 33, "{covered:?}");
}

/// `orders:1` moved to the new host, as `perform` asks to register it.
fn moved_fault_td() -> TaskDefinition {
    TaskDefinition {
        family: "orders".into(),
        revision: 1,
        containers: vec![Container {
            name: "app".into(),
            environment: [("SPRING_RABBITMQ_HOST", NEW_HOST)].into(),
            ..Container::default()
        }],
        ..TaskDefinition::default()
    }
}

/// A RegisterTaskDefinition that went through although its answer was lost (a 500) is not
/// repeated: before trying again, warren finds the revision with the wanted content and uses it.
#[test]
fn a_registration_whose_answer_was_lost_is_found_not_repeated() {
    use aws_sdk_ecs::operation::list_task_definitions::ListTaskDefinitionsOutput;
    let register = mock!(aws_sdk_ecs::Client::register_task_definition)
        .then_http_response(|| json_error(500, "ServerException", "internal error"));
    let list = mock!(aws_sdk_ecs::Client::list_task_definitions)
        .sequence()
        .output(|| {
            ListTaskDefinitionsOutput::builder()
                .task_definition_arns(td_arn(FAULT_TD))
                .build()
        })
        .output(|| {
            ListTaskDefinitionsOutput::builder()
                .task_definition_arns(td_arn("orders:2"))
                .task_definition_arns(td_arn(FAULT_TD))
                .build()
        })
        .build();
    let describe_registered = mock!(aws_sdk_ecs::Client::describe_task_definition)
        .match_requests(|req| req.task_definition() == Some("orders:2"))
        .then_output(|| {
            DescribeTaskDefinitionOutput::builder()
                .task_definition(definition(
                    "orders:2",
                    vec![container(
                        "app",
                        &[("SPRING_RABBITMQ_HOST", NEW_HOST)],
                        &[("RABBIT_HOST", FAULT_PARAMETER)],
                    )],
                ))
                .build()
        });
    let mocks = Mocks {
        ecs: vec![
            register.clone(),
            list.clone(),
            describe_registered,
            mock!(aws_sdk_ecs::Client::describe_task_definition).then_output(describe_td_out),
        ],
        ..Mocks::default()
    };
    let key = mocks
        .backend()
        .register_task_definition(&moved_fault_td())
        .expect("register");
    assert_eq!(key, "orders:2");
    assert_eq!(register.num_calls(), 1, "registered once, never twice");
    assert_eq!(list.num_calls(), 2, "looked before each attempt");
}

/// A denied RegisterTaskDefinition is not retried, and says which call on which family failed
/// and what the IAM policy must allow.
#[test]
fn a_denied_registration_stops_at_once_naming_call_family_and_action() {
    let register = mock!(aws_sdk_ecs::Client::register_task_definition).then_http_response(|| {
        json_error(
            400,
            "AccessDeniedException",
            "User is not authorized to perform: ecs:RegisterTaskDefinition",
        )
    });
    let mocks = Mocks {
        ecs: vec![
            register.clone(),
            mock!(aws_sdk_ecs::Client::describe_task_definition).then_output(describe_td_out),
        ],
        ..Mocks::default()
    };
    let message = mocks
        .backend()
        .register_task_definition(&moved_fault_td())
        .expect_err("denied")
        .to_string();
    assert_eq!(register.num_calls(), 1, "a denied call is not retried");
    assert!(message.contains("ecs:RegisterTaskDefinition"), "{message}");
    assert!(message.contains("family orders"), "{message}");
    assert!(
        message.contains("the IAM policy must allow ecs:RegisterTaskDefinition"),
        "{message}"
    );
}

/// A PutItem whose first attempt took the lock but whose answer was lost is retried by the SDK,
/// and the retry's condition fails on the lock it took itself: that is the run's own lock, taken,
/// not a lock held by someone else.
#[test]
fn a_lock_whose_answer_was_lost_is_taken_not_refused_as_someone_elses() {
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use aws_sdk_dynamodb::types::AttributeValue;
    use aws_sdk_dynamodb::Client as Ddb;

    let written: Arc<Mutex<Option<String>>> = Arc::default();
    let put = {
        let written = written.clone();
        mock!(Ddb::put_item)
            .match_requests(move |req| {
                let info = req.item().and_then(|i| i.get("Info")?.as_s().ok().cloned());
                *written.lock().unwrap() = info;
                true
            })
            .then_error(|| {
                PutItemError::ConditionalCheckFailedException(
                    ConditionalCheckFailedException::builder().build(),
                )
            })
    };
    let get = {
        let written = written.clone();
        mock!(Ddb::get_item).then_output(move || {
            let info = written
                .lock()
                .unwrap()
                .clone()
                .expect("a PutItem came first");
            aws_sdk_dynamodb::operation::get_item::GetItemOutput::builder()
                .item("LockID", AttributeValue::S("esr-prod".into()))
                .item("Info", AttributeValue::S(info))
                .build()
        })
    };
    let delete = mock!(Ddb::delete_item).then_output(delete_item_out);
    let client = mocked_client!(aws_sdk_dynamodb, &[put, get, delete]);
    let (lock, warning) = warren::backend::aws::lock::TableLock::acquire(
        runtime().expect("runtime"),
        client,
        "warren-locks",
        "esr-prod",
        "apply",
    )
    .expect("the run's own lock is taken");
    assert_eq!(warning, None);
    assert_eq!(lock.holder.migration, "esr-prod");
}

/// A DeleteBroker whose first attempt went through but whose answer was lost is retried, and the
/// retry finds no broker: the broker is gone, as asked, and decommission must say so rather
/// than report an error over a broker it deleted.
#[test]
fn a_broker_delete_retried_after_it_went_through_is_done_not_failed() {
    use aws_sdk_mq::operation::delete_broker::DeleteBrokerError;
    use aws_sdk_mq::types::error::NotFoundException;

    let mocks = Mocks {
        mq: vec![mock!(aws_sdk_mq::Client::delete_broker).then_error(|| {
            DeleteBrokerError::NotFoundException(
                NotFoundException::builder()
                    .message("Can't find requested broker [b-1111].")
                    .build(),
            )
        })],
        ..Mocks::default()
    };
    let mut aws = mocks.backend();
    aws.delete_broker(&old_broker())
        .expect("a broker that is no longer there is deleted");
}

// ---------------------------------------------------------------------------------------------
// The other resources that can point at a broker

/// A read of nothing but the other resources (no cluster, no broker).
fn resources_scope() -> ReadScope {
    ReadScope {
        resources: true,
        ..ReadScope::default()
    }
}

fn no_clusters() -> Rule {
    mock!(aws_sdk_ecs::Client::list_clusters).then_output(|| ListClustersOutput::builder().build())
}

const OLD_BROKER_ARN: &str = "arn:aws:mq:eu-west-2:123456789012:broker:esr-rabbit-old:b-1111";

fn events_target(
    id: &str,
    input: Option<&str>,
    key: Option<&str>,
) -> aws_sdk_eventbridge::types::Target {
    let mut target = aws_sdk_eventbridge::types::Target::builder()
        .id(id)
        .set_input(input.map(str::to_owned));
    target = match key {
        Some(key) => target.arn(cluster_arn("esr-batch")).ecs_parameters(
            aws_sdk_eventbridge::types::EcsParameters::builder()
                .task_definition_arn(td_arn(key))
                .build()
                .unwrap(),
        ),
        None => target.arn(format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{id}")),
    };
    target.build().unwrap()
}

#[test]
fn rules_on_every_bus_and_functions_are_read_from_every_page() {
    let log = Log::default();
    let overrides = r#"{"containerOverrides":[{"name":"job","environment":[{"name":"RABBIT_HOST","value":"b-1111.mq.eu-west-2.amazonaws.com"}]}]}"#;

    // Buses over 2 pages (the default bus, then `jobs`); rules on `jobs` over 2 pages; the
    // second rule's targets over 2 pages, a Lambda target first.
    let l = log.clone();
    let buses =
        mock!(aws_sdk_eventbridge::Client::list_event_buses).then_compute_output(move |req| {
            l.push(
                "ListEventBuses",
                req.next_token().into_iter().map(str::to_owned).collect(),
            );
            let names = vec!["default".to_owned(), "jobs".to_owned()];
            let (items, next) = page(&names, 1, "buses", req.next_token());
            ListEventBusesOutput::builder()
                .set_event_buses(Some(
                    items
                        .iter()
                        .map(|n| {
                            aws_sdk_eventbridge::types::EventBus::builder()
                                .name(n)
                                .build()
                        })
                        .collect(),
                ))
                .set_next_token(next)
                .build()
        });
    let l = log.clone();
    let rules = mock!(aws_sdk_eventbridge::Client::list_rules).then_compute_output(move |req| {
        let bus = req.event_bus_name().unwrap_or("(none)").to_owned();
        let mut args = vec![bus.clone()];
        args.extend(req.next_token().map(str::to_owned));
        l.push("ListRules", args);
        let names: Vec<String> = if bus == "jobs" {
            vec!["replay".into(), "archive".into()]
        } else {
            Vec::new()
        };
        let (items, next) = page(&names, 1, &format!("rules-{bus}"), req.next_token());
        ListRulesOutput::builder()
            .set_rules(Some(
                items
                    .iter()
                    .map(|n| {
                        aws_sdk_eventbridge::types::Rule::builder()
                            .name(n)
                            .arn(format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/{bus}/{n}"))
                            .event_bus_name(&bus)
                            .build()
                    })
                    .collect(),
            ))
            .set_next_token(next)
            .build()
    });
    let l = log.clone();
    let targets =
        mock!(aws_sdk_eventbridge::Client::list_targets_by_rule).then_compute_output(move |req| {
            let rule = req.rule().unwrap().to_owned();
            let mut args = vec![
                rule.clone(),
                req.event_bus_name().unwrap_or("(none)").to_owned(),
            ];
            args.extend(req.next_token().map(str::to_owned));
            l.push("ListTargetsByRule", args);
            let all = if rule == "replay" {
                vec![events_target(
                    "replay-task",
                    Some(overrides),
                    Some("replay:4"),
                )]
            } else {
                vec![
                    events_target("archive-fn", None, None),
                    events_target("archive-task", None, Some("archive")),
                ]
            };
            let (items, next) = page(&all, 1, &format!("targets-{rule}"), req.next_token());
            ListTargetsByRuleOutput::builder()
                .set_targets(Some(items))
                .set_next_token(next)
                .build()
        });

    // Functions over 2 pages: the second has the old broker in its environment.
    let l = log.clone();
    let functions = mock!(aws_sdk_lambda::Client::list_functions).then_compute_output(move |req| {
        l.push(
            "ListFunctions",
            req.marker().into_iter().map(str::to_owned).collect(),
        );
        let all = vec![
            aws_sdk_lambda::types::FunctionConfiguration::builder()
                .function_name("thumbnail")
                .function_arn(format!(
                    "arn:aws:lambda:{REGION}:{ACCOUNT}:function:thumbnail"
                ))
                .build(),
            aws_sdk_lambda::types::FunctionConfiguration::builder()
                .function_name("notifier")
                .function_arn(format!(
                    "arn:aws:lambda:{REGION}:{ACCOUNT}:function:notifier"
                ))
                .environment(
                    aws_sdk_lambda::types::EnvironmentResponse::builder()
                        .variables(
                            "RABBIT_URL",
                            format!("amqps://notifier:hunter2@{OLD_HOST}:5671"),
                        )
                        .variables("A_FIRST", "1")
                        .build(),
                )
                .build(),
        ];
        let (items, next) = page(&all, 1, "functions", req.marker());
        ListFunctionsOutput::builder()
            .set_functions(Some(items))
            .set_next_marker(next)
            .build()
    });
    // Event source mappings: one from the old broker, one from SQS, one from self-managed Kafka.
    let mappings = mock!(aws_sdk_lambda::Client::list_event_source_mappings).then_output(|| {
        ListEventSourceMappingsOutput::builder()
            .event_source_mappings(
                aws_sdk_lambda::types::EventSourceMappingConfiguration::builder()
                    .uuid("1111")
                    .function_arn(format!(
                        "arn:aws:lambda:{REGION}:{ACCOUNT}:function:notifier"
                    ))
                    .event_source_arn(OLD_BROKER_ARN)
                    .state("Enabled")
                    .queues("esr.queue.notify")
                    .build(),
            )
            .event_source_mappings(
                aws_sdk_lambda::types::EventSourceMappingConfiguration::builder()
                    .uuid("2222")
                    .function_arn(format!(
                        "arn:aws:lambda:{REGION}:{ACCOUNT}:function:thumbnail"
                    ))
                    .event_source_arn(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:images"))
                    .state("Enabled")
                    .build(),
            )
            .event_source_mappings(
                aws_sdk_lambda::types::EventSourceMappingConfiguration::builder()
                    .uuid("3333")
                    .function_arn(format!(
                        "arn:aws:lambda:{REGION}:{ACCOUNT}:function:thumbnail"
                    ))
                    .build(),
            )
            .build()
    });

    // Scheduler: 2 schedules over 2 pages, one not an ECS task.
    let l = log.clone();
    let schedules =
        mock!(aws_sdk_scheduler::Client::list_schedules).then_compute_output(move |req| {
            l.push(
                "ListSchedules",
                req.next_token().into_iter().map(str::to_owned).collect(),
            );
            let all = vec![("esr", "reconcile"), ("default", "ping")];
            let (items, next) = page(&all, 1, "schedules", req.next_token());
            ListSchedulesOutput::builder()
                .set_schedules(Some(
                    items
                        .iter()
                        .map(|(g, n)| {
                            aws_sdk_scheduler::types::ScheduleSummary::builder()
                                .group_name(*g)
                                .name(*n)
                                .build()
                        })
                        .collect(),
                ))
                .set_next_token(next)
                .build()
                .unwrap()
        });
    let get_schedule = mock!(aws_sdk_scheduler::Client::get_schedule).then_compute_output(|req| {
        let name = req.name().unwrap().to_owned();
        let group = req.group_name().unwrap_or("default").to_owned();
        let target = aws_sdk_scheduler::types::Target::builder()
            .arn(if name == "reconcile" {
                cluster_arn("esr-batch")
            } else {
                format!("arn:aws:sqs:{REGION}:{ACCOUNT}:pings")
            })
            .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/scheduler"));
        let target = if name == "reconcile" {
            target.ecs_parameters(
                aws_sdk_scheduler::types::EcsParameters::builder()
                    .task_definition_arn(td_arn("reconcile:23"))
                    .build()
                    .unwrap(),
            )
        } else {
            target
        };
        aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput::builder()
            .name(&name)
            .group_name(&group)
            .arn(format!(
                "arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{group}/{name}"
            ))
            .target(target.build().unwrap())
            .build()
    });

    let pipes = mock!(aws_sdk_pipes::Client::list_pipes).then_output(|| {
        ListPipesOutput::builder()
            .pipes(
                aws_sdk_pipes::types::Pipe::builder()
                    .name("orders")
                    .arn(format!("arn:aws:pipes:{REGION}:{ACCOUNT}:pipe/orders"))
                    .source(OLD_BROKER_ARN)
                    .target(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:orders"))
                    .build(),
            )
            .build()
    });
    let machine_arn = format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:export");
    let m = machine_arn.clone();
    let machines = mock!(aws_sdk_sfn::Client::list_state_machines).then_output(move || {
        ListStateMachinesOutput::builder()
            .state_machines(
                aws_sdk_sfn::types::StateMachineListItem::builder()
                    .state_machine_arn(&m)
                    .name("export")
                    .r#type(aws_sdk_sfn::types::StateMachineType::Standard)
                    .creation_date(aws_sdk_sfn::primitives::DateTime::from_secs(0))
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    });
    let m = machine_arn.clone();
    let describe_machine = mock!(aws_sdk_sfn::Client::describe_state_machine).then_output(move || {
        aws_sdk_sfn::operation::describe_state_machine::DescribeStateMachineOutput::builder()
            .state_machine_arn(&m)
            .name("export")
            .definition(format!(
                r#"{{"StartAt":"E","States":{{"E":{{"Type":"Task","Parameters":{{"U":"amqps://u:pw@{OLD_HOST}:5671"}},"End":true}}}}}}"#
            ))
            .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/states"))
            .r#type(aws_sdk_sfn::types::StateMachineType::Standard)
            .creation_date(aws_sdk_sfn::primitives::DateTime::from_secs(0))
            .build()
            .unwrap()
    });

    // The revisions the targets start.
    let fake = FakeEcs::new(10)
        .definition(definition("replay:4", vec![container("job", &[], &[])]))
        .definition(definition("archive:2", vec![container("job", &[], &[])]))
        .definition(definition("reconcile:23", vec![container("job", &[], &[])]));
    let mut ecs = vec![no_clusters()];
    ecs.extend(fake.rules(&log));
    let mocks = Mocks {
        ecs,
        events: vec![buses, rules, targets],
        lambda: vec![functions, mappings],
        scheduler: vec![schedules, get_schedule],
        pipes: vec![pipes],
        sfn: vec![machines, describe_machine],
        ..Mocks::default()
    };
    let world = mocks.backend().read(&resources_scope()).expect("read");

    assert_eq!(
        log.calls("ListEventBuses"),
        [vec![], vec!["buses-1".to_owned()]]
    );
    assert_eq!(
        log.calls("ListRules"),
        [
            vec!["default".to_owned()],
            vec!["jobs".to_owned()],
            vec!["jobs".to_owned(), "rules-jobs-1".to_owned()],
        ]
    );
    assert_eq!(
        log.calls("ListTargetsByRule"),
        [
            vec!["replay".to_owned(), "jobs".to_owned()],
            vec!["archive".to_owned(), "jobs".to_owned()],
            vec![
                "archive".to_owned(),
                "jobs".to_owned(),
                "targets-archive-1".to_owned()
            ],
        ]
    );
    assert_eq!(
        log.calls("ListFunctions"),
        [vec![], vec!["functions-1".to_owned()]]
    );
    assert_eq!(
        log.calls("ListSchedules"),
        [vec![], vec!["schedules-1".to_owned()]]
    );

    type Row<'w> = (&'w str, Option<&'w str>, Option<&'w str>, &'w str, &'w str);
    let summary: Vec<Row> = world
        .schedules
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.bus.as_deref(),
                s.group.as_deref(),
                s.task_definition.as_str(),
                s.cluster.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("replay", Some("jobs"), None, "replay:4", "esr-batch"),
            ("archive", Some("jobs"), None, "archive", "esr-batch"),
            ("reconcile", None, Some("esr"), "reconcile:23", "esr-batch"),
        ]
    );
    assert_eq!(world.schedules[0].target.as_deref(), Some("replay-task"));
    assert_eq!(
        world.schedules[0].arn.as_deref(),
        Some(format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/jobs/replay").as_str())
    );
    assert_eq!(world.schedules[0].overrides["job"]["RABBIT_HOST"], OLD_HOST);
    assert_eq!(
        world.schedules[2].kind,
        warren::model::ScheduleKind::Schedule
    );

    let names: Vec<&str> = world.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["notifier", "thumbnail"]);
    let env: Vec<(&String, &String)> = world.functions[0].environment.iter().collect();
    let masked = format!("amqps://notifier:****@{OLD_HOST}:5671");
    assert_eq!(
        env,
        [
            (&"A_FIRST".to_owned(), &"1".to_owned()),
            (&"RABBIT_URL".to_owned(), &masked),
        ]
    );

    let mappings: Vec<(&str, &str, &[String])> = world
        .event_source_mappings
        .iter()
        .map(|m| (m.uuid.as_str(), m.source.as_str(), m.queues.as_slice()))
        .collect();
    assert_eq!(
        mappings,
        [
            (
                "1111",
                OLD_BROKER_ARN,
                ["esr.queue.notify".to_owned()].as_slice()
            ),
            (
                "2222",
                format!("arn:aws:sqs:{REGION}:{ACCOUNT}:images").as_str(),
                [].as_slice()
            ),
        ]
    );
    assert_eq!(
        world.event_source_mappings[0].state.as_deref(),
        Some("Enabled")
    );
    assert!(world.event_source_mappings[0]
        .function
        .ends_with(":function:notifier"));

    assert_eq!(world.pipes.len(), 1);
    assert_eq!(world.pipes[0].source, OLD_BROKER_ARN);
    assert_eq!(world.state_machines.len(), 1);
    assert_eq!(
        world.state_machines[0].arn.as_deref(),
        Some(machine_arn.as_str())
    );
    assert_eq!(
        world.state_machines[0].definition["States"]["E"]["Parameters"]["U"],
        serde_json::Value::from(format!("amqps://u:****@{OLD_HOST}:5671"))
    );
    assert!(!serde_json::to_string(&world).unwrap().contains("hunter2"));
}

#[test]
fn a_function_whose_environment_cannot_be_read_fails_the_read_naming_it() {
    let functions = mock!(aws_sdk_lambda::Client::list_functions).then_output(|| {
        ListFunctionsOutput::builder()
            .functions(
                aws_sdk_lambda::types::FunctionConfiguration::builder()
                    .function_name("notifier")
                    .environment(
                        aws_sdk_lambda::types::EnvironmentResponse::builder()
                            .error(
                                aws_sdk_lambda::types::EnvironmentError::builder()
                                    .error_code("AccessDeniedException")
                                    .message(
                                        "Lambda was unable to decrypt the environment variables",
                                    )
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let mocks = Mocks {
        ecs: vec![no_clusters()],
        lambda: vec![functions],
        ..Mocks::default()
    };
    let message = read_error(&mut mocks.backend(), &resources_scope());
    assert!(message.contains("function notifier"), "{message}");
    assert!(message.contains("lambda:ListFunctions"), "{message}");
    assert!(message.contains("unable to decrypt"), "{message}");
}

#[test]
fn a_denied_resource_list_fails_the_read_naming_the_call_and_the_policy() {
    for call in [
        "events:ListEventBuses",
        "scheduler:ListSchedules",
        "lambda:ListFunctions",
        "lambda:ListEventSourceMappings",
        "pipes:ListPipes",
        "states:ListStateMachines",
    ] {
        let denied = || json_error(403, "AccessDeniedException", "not authorized");
        let mut mocks = Mocks {
            ecs: vec![no_clusters()],
            ..Mocks::default()
        };
        match call {
            "events:ListEventBuses" => mocks.events.push(
                mock!(aws_sdk_eventbridge::Client::list_event_buses).then_http_response(denied),
            ),
            "scheduler:ListSchedules" => mocks
                .scheduler
                .push(mock!(aws_sdk_scheduler::Client::list_schedules).then_http_response(denied)),
            "lambda:ListFunctions" => mocks
                .lambda
                .push(mock!(aws_sdk_lambda::Client::list_functions).then_http_response(denied)),
            "lambda:ListEventSourceMappings" => mocks.lambda.push(
                mock!(aws_sdk_lambda::Client::list_event_source_mappings)
                    .then_http_response(denied),
            ),
            "pipes:ListPipes" => mocks
                .pipes
                .push(mock!(aws_sdk_pipes::Client::list_pipes).then_http_response(denied)),
            _ => mocks
                .sfn
                .push(mock!(aws_sdk_sfn::Client::list_state_machines).then_http_response(denied)),
        }
        let message = read_error(&mut mocks.backend(), &resources_scope());
        assert!(
            message.contains(&format!("the IAM policy must allow {call}")),
            "{call}: {message}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets Manager values and env files: what cannot be read is unverifiable, never a crash

const RABBIT_SECRET: &str =
    "arn:aws:secretsmanager:eu-west-2:123456789012:secret:orders/rabbit-AbCdEf";
const DB_SECRET: &str = "arn:aws:secretsmanager:eu-west-2:123456789012:secret:orders/db-XyZ123";
const ORDERS_ENV: &str = "arn:aws:s3:::orders-config/app.env";
const GONE_ENV: &str = "arn:aws:s3:::orders-config/gone.env";

/// `orders:5` reads its broker host from key `host` of a JSON secret and loads two env files.
fn orders_with_outside_values() -> FakeEcs {
    use aws_sdk_ecs::types::{EnvironmentFile, EnvironmentFileType};
    let host_ref = format!("{RABBIT_SECRET}:host::");
    let mut app = container(
        "app",
        &[("LOG_LEVEL", "INFO")],
        &[
            ("RABBIT_HOST", host_ref.as_str()),
            ("DB_PASSWORD", DB_SECRET),
        ],
    );
    app.environment_files = Some(
        [ORDERS_ENV, GONE_ENV]
            .iter()
            .map(|f| {
                EnvironmentFile::builder()
                    .value(*f)
                    .r#type(EnvironmentFileType::S3)
                    .build()
                    .unwrap()
            })
            .collect(),
    );
    FakeEcs::new(10)
        .cluster("esr-prod", vec![svc("orders", "orders:5")])
        .definition(definition("orders:5", vec![app]))
}

/// S3 answering `orders-config/app.env` with a host of the old broker, and NoSuchKey for any
/// other key.
fn env_file_objects(log: &Log) -> Vec<Rule> {
    use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_s3::types::error::NoSuchKey;
    let l = log.clone();
    let found = mock!(aws_sdk_s3::Client::get_object)
        .match_requests(|req| req.key() == Some("app.env"))
        .then_compute_output(move |req| {
            l.push("GetObject", vec![req.bucket().unwrap_or_default().to_owned(), req.key().unwrap_or_default().to_owned()]);
            GetObjectOutput::builder()
                .body(ByteStream::from_static(
                    b"# orders\nRABBIT_URL=amqps://orders:s3cret@b-1111.mq.eu-west-2.amazonaws.com:5671\n",
                ))
                .build()
        });
    let missing = mock!(aws_sdk_s3::Client::get_object).then_error(|| {
        GetObjectError::NoSuchKey(
            NoSuchKey::builder()
                .message("The specified key does not exist.")
                .build(),
        )
    });
    vec![found, missing]
}

fn denied_secret(log: &Log) -> Rule {
    let l = log.clone();
    mock!(aws_sdk_secretsmanager::Client::get_secret_value)
        .then_compute_response(move |req| {
            l.push("GetSecretValue", vec![req.secret_id().unwrap_or_default().to_owned()]);
            aws_smithy_mocks::MockResponse::Http(json_error(
                400,
                "AccessDeniedException",
                "User: arn:aws:sts::123456789012:assumed-role/ci/warren is not authorized to perform: secretsmanager:GetSecretValue",
            ))
        })
}

fn new_broker() -> warren::discovery::ResolvedBroker {
    warren::discovery::ResolvedBroker {
        alias: warren::config::BrokerAlias::New,
        id: "b-2222".into(),
        name: None,
        endpoints: vec![format!("amqps://{NEW_HOST}:5671")],
        hosts: vec![NEW_HOST.into()],
        amqp_url_env: None,
        management_url_env: None,
        upstream_url_env: None,
        console_url: None,
    }
}

#[test]
fn a_denied_secret_is_unverifiable_and_the_read_goes_on() {
    let log = Log::default();
    let mocks = Mocks {
        ecs: orders_with_outside_values().rules(&log),
        secrets: vec![denied_secret(&log)],
        s3: env_file_objects(&log),
        ..Mocks::default()
    };
    let scope = ReadScope {
        secrets: warren::config::SecretsToRead::All,
        ..ReadScope::default()
    };
    let world = mocks
        .backend()
        .read(&scope)
        .expect("a denied secret does not stop the read");

    let asked = log.calls("GetSecretValue");
    assert_eq!(asked.len(), 2, "one call per secret: {asked:?}");
    assert!(
        asked.contains(&vec![RABBIT_SECRET.to_owned()]),
        "by the secret's ARN: {asked:?}"
    );
    let host_ref = format!("{RABBIT_SECRET}:host::");
    assert!(!world.parameters.contains_key(&host_ref));
    let why = &world.unread[&host_ref];
    assert!(
        why.contains("secretsmanager:GetSecretValue") && why.contains("denied"),
        "{why}"
    );

    // The env file that exists is read whole; the one that does not is unread, with why.
    assert!(world.env_files[ORDERS_ENV].contains("RABBIT_URL=amqps://"));
    assert!(
        world.unread[GONE_ENV].contains("NoSuchKey"),
        "{:?}",
        world.unread
    );

    let blockers = warren::guard::blockers(&world, &old_broker(), &new_broker());
    let details: Vec<(String, String)> = blockers
        .iter()
        .map(|b| {
            (
                serde_json::to_value(b.kind)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned(),
                b.detail.clone(),
            )
        })
        .collect();
    assert!(
        details.iter().any(|(kind, detail)| kind == "service"
            && detail.contains(&format!("app/RABBIT_URL (env file {ORDERS_ENV})"))),
        "{details:?}"
    );
    for unread in [host_ref.as_str(), DB_SECRET, GONE_ENV] {
        assert!(
            details
                .iter()
                .any(|(kind, detail)| kind == "unverifiable" && detail.contains(unread)),
            "{unread}: {details:?}"
        );
    }
    assert!(
        !format!("{details:?}").contains("s3cret"),
        "no credential in a blocker"
    );
}

#[test]
fn without_read_secrets_no_secret_is_asked_for() {
    let log = Log::default();
    let mocks = Mocks {
        ecs: orders_with_outside_values().rules(&log),
        secrets: vec![denied_secret(&log)],
        s3: env_file_objects(&log),
        ..Mocks::default()
    };
    let world = mocks.backend().read(&ReadScope::default()).expect("read");
    assert!(log.calls("GetSecretValue").is_empty());
    assert!(world.unread.keys().all(|k| !k.contains("secretsmanager")));
}

#[test]
fn a_json_key_of_a_secret_is_read_and_only_listed_secrets_are_asked_for() {
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
    let log = Log::default();
    let l = log.clone();
    let secret =
        mock!(aws_sdk_secretsmanager::Client::get_secret_value).then_compute_output(move |req| {
            l.push(
                "GetSecretValue",
                vec![req.secret_id().unwrap_or_default().to_owned()],
            );
            GetSecretValueOutput::builder()
                .secret_string(format!(r#"{{"host":"{OLD_HOST}","password":"hunter2"}}"#))
                .build()
        });
    let mocks = Mocks {
        ecs: orders_with_outside_values().rules(&log),
        secrets: vec![secret],
        s3: env_file_objects(&log),
        ..Mocks::default()
    };
    let scope = ReadScope {
        // Named without the random suffix, as people write it.
        secrets: warren::config::SecretsToRead::Only(vec![
            "arn:aws:secretsmanager:eu-west-2:123456789012:secret:orders/rabbit".into(),
        ]),
        ..ReadScope::default()
    };
    let world = mocks.backend().read(&scope).expect("read");
    assert_eq!(
        log.calls("GetSecretValue"),
        vec![vec![RABBIT_SECRET.to_owned()]]
    );
    let host_ref = format!("{RABBIT_SECRET}:host::");
    assert_eq!(
        world.parameters.get(&host_ref).map(String::as_str),
        Some(OLD_HOST)
    );
    assert!(world.secret_parameters.contains(&host_ref));
    assert!(!format!("{:?}", world.parameters).contains("hunter2"));

    let blockers = warren::guard::blockers(&world, &old_broker(), &new_broker());
    assert!(
        blockers.iter().any(|b| b.detail
            == format!("esr-prod/orders points at b-1111 through app/RABBIT_HOST (parameter {host_ref}), app/RABBIT_URL (env file {ORDERS_ENV})")),
        "{blockers:?}"
    );
}

/// An event source mapping from the old broker, read by the backend, is what plan lists and
/// decommission blocks on; one from an SQS queue beside it, and a disabled one from the old
/// broker (what the operator leaves once a mapping from the new broker runs), are not.
#[test]
fn a_mapping_from_the_old_broker_is_unmanaged_and_blocks_decommission_one_from_sqs_does_not() {
    let function = |name: &str| format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}");
    let queue = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:images");
    let mapping = |uuid: &str, function_name: &str, source: &str, state: &str| {
        aws_sdk_lambda::types::EventSourceMappingConfiguration::builder()
            .uuid(uuid)
            .function_arn(function(function_name))
            .event_source_arn(source)
            .state(state)
            .build()
    };
    let (old, sqs, disabled) = (
        mapping("1111-old", "notifier", OLD_BROKER_ARN, "Enabled"),
        mapping("2222-sqs", "thumbnail", &queue, "Enabled"),
        mapping("3333-off", "notifier", OLD_BROKER_ARN, "Disabled"),
    );
    let mappings =
        mock!(aws_sdk_lambda::Client::list_event_source_mappings).then_output(move || {
            ListEventSourceMappingsOutput::builder()
                .event_source_mappings(old.clone())
                .event_source_mappings(sqs.clone())
                .event_source_mappings(disabled.clone())
                .build()
        });
    let brokers = mock!(aws_sdk_mq::Client::list_brokers).then_output(list_brokers_out);
    let broker = mock!(aws_sdk_mq::Client::describe_broker).then_output(|| {
        DescribeBrokerOutput::builder()
            .broker_id("b-1111")
            .broker_arn(OLD_BROKER_ARN)
            .broker_name("esr-rabbit-old")
            .broker_state(aws_sdk_mq::types::BrokerState::Running)
            .broker_instances(
                aws_sdk_mq::types::BrokerInstance::builder()
                    .endpoints(format!("amqps://{OLD_HOST}:5671"))
                    .build(),
            )
            .build()
    });
    let mocks = Mocks {
        ecs: vec![no_clusters()],
        mq: vec![brokers, broker],
        lambda: vec![mappings],
        ..Mocks::default()
    };
    let world = mocks.backend().read(&resources_scope()).expect("read");
    assert_eq!(world.event_source_mappings.len(), 3, "{world:#?}");
    assert_eq!(world.brokers[0].arn.as_deref(), Some(OLD_BROKER_ARN));

    let text = format!(
        "[migration]\nname = \"esr\"\nregion = \"{REGION}\"\n\n\
         [brokers.old]\nid = \"b-1111\"\n\n\
         [brokers.new]\nendpoints = [\"amqps://{NEW_HOST}:5671\"]\n"
    );
    let config = warren::config::Config::parse(std::path::Path::new("esr.toml"), text)
        .expect("a valid plan file");
    let plan = warren::plan::make(&config, &world).expect("plan");
    let listed: Vec<(String, Option<String>, Vec<String>)> = plan
        .unmanaged_resources
        .iter()
        .map(|r| (r.id(), r.arn.clone(), r.through.clone()))
        .collect();
    assert_eq!(
        listed,
        [(
            "event_source_mapping 1111-old".to_owned(),
            None,
            vec!["source".to_owned()]
        )],
        "{:#?}",
        plan.unmanaged_resources
    );

    let blockers = warren::guard::blockers(&world, &old_broker(), &new_broker());
    let mappings: Vec<&str> = blockers
        .iter()
        .filter(|b| b.kind == warren::guard::BlockerKind::EventSourceMapping)
        .map(|b| b.detail.as_str())
        .collect();
    assert_eq!(mappings.len(), 1, "{blockers:#?}");
    assert!(
        mappings[0].contains("1111-old") && mappings[0].contains("notifier"),
        "{}",
        mappings[0]
    );
    let all = format!("{blockers:?}");
    for other in ["2222-sqs", "3333-off", "thumbnail", "images"] {
        assert!(!all.contains(other), "{other} named: {blockers:#?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Running tasks' addresses: whose an unnamed broker connection is

/// `orders`' 250 running tasks, 10.0.0.0 to 10.0.0.249, listed a hundred a page.
fn orders_task_ids() -> Vec<String> {
    (0..250).map(|i| format!("orders-{i}")).collect()
}

/// ListTasks of `esr-prod/orders` (paged by a hundred) and of `esr-prod/billing` (one task),
/// DescribeTasks of whatever is asked: every `orders` task on its network interface, `billing`'s
/// through its container's network interface (bridge or host tasks describe it there). Each
/// request is logged.
fn task_rules(log: &Log) -> Vec<Rule> {
    let l = log.clone();
    let list = mock!(aws_sdk_ecs::Client::list_tasks).then_compute_output(move |req| {
        assert_eq!(
            req.desired_status(),
            Some(&aws_sdk_ecs::types::DesiredStatus::Running)
        );
        let service = req.service_name().expect("ListTasks names its service");
        let mut args = vec![service.to_owned()];
        args.extend(req.next_token().map(str::to_owned));
        l.push("ListTasks", args);
        let arns: Vec<String> = match service {
            "orders" => orders_task_ids()
                .iter()
                .map(|id| task_arn("esr-prod", id))
                .collect(),
            "billing" => vec![task_arn("esr-prod", "billing-0")],
            _ => Vec::new(),
        };
        let (items, next) = page(&arns, 100, service, req.next_token());
        aws_sdk_ecs::operation::list_tasks::ListTasksOutput::builder()
            .set_task_arns(Some(items))
            .set_next_token(next)
            .build()
    });
    let l = log.clone();
    let describe = mock!(aws_sdk_ecs::Client::describe_tasks).then_compute_output(move |req| {
        l.push("DescribeTasks", vec![req.tasks().len().to_string()]);
        let tasks = req
            .tasks()
            .iter()
            .map(|arn| {
                let id = last_part(arn);
                if id == "billing-0" {
                    aws_sdk_ecs::types::Task::builder()
                        .task_arn(arn)
                        .containers(
                            aws_sdk_ecs::types::Container::builder()
                                .network_interfaces(
                                    aws_sdk_ecs::types::NetworkInterface::builder()
                                        .private_ipv4_address("10.0.5.5")
                                        .build(),
                                )
                                .build(),
                        )
                        .build()
                } else {
                    let n: usize = id.trim_start_matches("orders-").parse().unwrap();
                    running_task("esr-prod", id, &format!("10.0.0.{n}"))
                }
            })
            .collect();
        aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput::builder()
            .set_tasks(Some(tasks))
            .build()
    });
    vec![list, describe]
}

#[test]
fn task_addresses_read_every_page_of_tasks_and_describe_them_a_hundred_at_a_time() {
    let log = Log::default();
    let mocks = Mocks {
        ecs: task_rules(&log),
        ..Mocks::default()
    };
    let found = mocks
        .backend()
        .task_addresses(&[
            ("esr-prod".to_owned(), "orders".to_owned()),
            ("esr-prod".to_owned(), "billing".to_owned()),
            ("esr-prod".to_owned(), "idle".to_owned()),
        ])
        .expect("task addresses");
    let orders = &found[&("esr-prod".to_owned(), "orders".to_owned())];
    assert_eq!(orders.len(), 250);
    assert!(orders.contains(&"10.0.0.0".to_owned()));
    assert!(orders.contains(&"10.0.0.249".to_owned()));
    assert_eq!(
        found[&("esr-prod".to_owned(), "billing".to_owned())],
        ["10.0.5.5"]
    );
    assert!(
        !found.contains_key(&("esr-prod".to_owned(), "idle".to_owned())),
        "a service with no running task is absent"
    );
    let calls = log.0.lock().unwrap().clone();
    let listed: Vec<&Vec<String>> = calls
        .iter()
        .filter(|(op, _)| *op == "ListTasks")
        .map(|(_, args)| args)
        .collect();
    assert_eq!(
        listed.len(),
        5,
        "three pages of orders, billing, idle: {listed:?}"
    );
    let mut described: Vec<usize> = calls
        .iter()
        .filter(|(op, _)| *op == "DescribeTasks")
        .map(|(_, args)| args[0].parse().unwrap())
        .collect();
    described.sort_unstable();
    assert_eq!(described, [51, 100, 100], "251 tasks of one cluster");
}

/// What `decommission` and `status` do on AWS with an unnamed connection: the services' tasks
/// are located only because of it, and the connection is then told by its peer address.
#[test]
fn an_unnamed_connection_is_told_by_the_running_task_with_its_peer_address() {
    use warren::clients::{fill_tasks, services_to_locate, Clients};
    use warren::model::{Cluster, Connection, Service};
    let mut world = World {
        clusters: vec![Cluster {
            name: "esr-prod".into(),
            services: ["billing", "orders"]
                .into_iter()
                .map(|name| Service {
                    name: name.into(),
                    ..Service::default()
                })
                .collect(),
            ..Cluster::default()
        }],
        ..World::default()
    };
    let unnamed = Connection {
        client: String::new(),
        peer: "10.0.5.5:40122".into(),
        ..Connection::default()
    };
    assert_eq!(
        Clients::of(&world).describe(&unnamed),
        "unknown client (10.0.5.5:40122)"
    );
    let log = Log::default();
    let mocks = Mocks {
        ecs: task_rules(&log),
        ..Mocks::default()
    };
    let wanted = services_to_locate(&world, std::slice::from_ref(&unnamed), None);
    let found = mocks
        .backend()
        .task_addresses(&wanted)
        .expect("task addresses");
    fill_tasks(&mut world, &found);
    assert_eq!(
        Clients::of(&world).describe(&unnamed),
        "esr-prod/billing (10.0.5.5:40122)"
    );
    assert_eq!(
        Clients::of(&world).owners(&Connection {
            peer: "10.0.0.42:5000".into(),
            ..unnamed.clone()
        }),
        ["esr-prod/orders"]
    );

    // A named connection asks nothing of AWS.
    let named = Connection {
        client: "billing-7f3c".into(),
        ..unnamed
    };
    assert!(services_to_locate(&world, &[named], None).is_empty());
}

/// A denied ListTasks names the call, the service and the IAM action, so that `status` can
/// warn with it and `decommission` keeps the connection an unknown client.
#[test]
fn a_denied_list_tasks_names_the_call_the_service_and_the_action() {
    let list = mock!(aws_sdk_ecs::Client::list_tasks).then_http_response(|| {
        json_error(
            400,
            "AccessDeniedException",
            "User is not authorized to perform: ecs:ListTasks",
        )
    });
    let mocks = Mocks {
        ecs: vec![list],
        ..Mocks::default()
    };
    let err = mocks
        .backend()
        .task_addresses(&[("esr-prod".to_owned(), "orders".to_owned())])
        .expect_err("denied");
    let message = err.to_string();
    assert!(message.contains("ecs:ListTasks"), "{message}");
    assert!(message.contains("service esr-prod/orders"), "{message}");
    assert!(
        message.contains("IAM policy must allow ecs:ListTasks"),
        "{message}"
    );
}
