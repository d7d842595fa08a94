//! The AWS backend: ECS, Amazon MQ, SSM and EventBridge through the AWS SDK for Rust, behind
//! the same [`Backend`] seam as the rehearsal world.
//!
//! Reads are complete (every page of every list), batched (DescribeServices by ten, one
//! DescribeTaskDefinition per distinct revision, GetParameters by ten) and run side by side,
//! at most `--max-concurrency` requests in flight across the process ([`calls`]). Throttling and transient errors are retried by the SDK with jittered backoff; a
//! permanent error stops at once and says which call on which resource failed and what the IAM
//! policy needs. Queue depths come from the brokers themselves ([`super::broker`]).

mod calls;
mod convert;
mod errors;
pub mod journal;
pub mod lock;
mod read;
mod resources;
mod schedules;
mod secrets;
mod tasks;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::config::ProvideCredentials as _;
use aws_sdk_ecs::error::SdkError;
use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionError;
use aws_sdk_ecs::types::{
    ContainerDefinition, KeyValuePair, Secret, SortOrder, Tag, TaskDefinitionStatus,
};

use crate::backend::{Backend, ReadScope, Rollout, RolloutQuery};
use crate::discovery::ResolvedBroker;
use crate::error::{Error, Result};
use crate::model::{TaskDefinition, World};
use futures_util::stream::{self, StreamExt as _, TryStreamExt as _};

pub use calls::{max_concurrency, set_max_concurrency, DEFAULT_MAX_CONCURRENCY};

/// A client of service crate `$krate` for `config`, each call counted for `--stats`.
macro_rules! counted {
    ($krate:ident, $config:expr) => {
        $krate::Client::from_conf(
            $krate::config::Builder::from($config)
                .interceptor(calls::Counter)
                .build(),
        )
    };
}

/// The SDK clients the backend calls.
#[derive(Debug, Clone)]
pub struct Clients {
    pub ecs: aws_sdk_ecs::Client,
    pub mq: aws_sdk_mq::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub scheduler: aws_sdk_scheduler::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub pipes: aws_sdk_pipes::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub s3: aws_sdk_s3::Client,
}

impl Clients {
    /// Clients for one SDK configuration, every call counted for `--stats`.
    #[must_use]
    pub fn new(config: &aws_config::SdkConfig) -> Clients {
        Clients {
            ecs: counted!(aws_sdk_ecs, config),
            mq: counted!(aws_sdk_mq, config),
            ssm: counted!(aws_sdk_ssm, config),
            events: counted!(aws_sdk_eventbridge, config),
            scheduler: counted!(aws_sdk_scheduler, config),
            lambda: counted!(aws_sdk_lambda, config),
            pipes: counted!(aws_sdk_pipes, config),
            sfn: counted!(aws_sdk_sfn, config),
            secrets: counted!(aws_sdk_secretsmanager, config),
            // The emulator serves buckets by path (`http://127.0.0.1:port/bucket/key`); real S3
            // answers both styles.
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(config)
                    .force_path_style(true)
                    .interceptor(calls::Counter)
                    .build(),
            ),
        }
    }
}

/// The DynamoDB client of the migration's lock and shared journal, its calls counted as the
/// other clients' are.
#[must_use]
pub fn dynamodb(config: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    counted!(aws_sdk_dynamodb, config)
}

/// A task definition as ECS describes it.
#[derive(Debug, Clone)]
struct Described {
    arn: String,
    definition: aws_sdk_ecs::types::TaskDefinition,
    tags: Vec<Tag>,
}

/// The AWS backend.
pub struct Aws {
    runtime: Arc<tokio::runtime::Runtime>,
    clients: Clients,
    region: String,
    /// `family:revision` → the definition, as last described or registered.
    definitions: HashMap<String, Described>,
    /// Cluster name → ARN.
    clusters: HashMap<String, String>,
    /// Rollout polls so far, for the backoff.
    polls: u32,
    /// The brokers' own APIs, once reached.
    live: crate::backend::broker::LiveBrokers,
}

impl std::fmt::Debug for Aws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aws")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// How long to wait for credentials before telling the user to set them: off EC2, the default
/// chain's instance-metadata probe would otherwise hang for much longer.
const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(5);

/// The tokio runtime the backend blocks on.
///
/// # Errors
/// [`Error::Backend`] when the runtime cannot start.
pub fn runtime() -> Result<Arc<tokio::runtime::Runtime>> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| Error::Backend(format!("cannot start the AWS client runtime: {e}")))
}

/// Loads the SDK configuration from the default chain (`AWS_PROFILE`, `AWS_REGION`,
/// `AWS_ENDPOINT_URL`, …), with `region` from the plan taking precedence, and checks that a
/// region and credentials are there before any call.
///
/// # Errors
/// [`Error::Refused`] saying what to set when the region or the credentials are missing.
pub fn load_config(
    runtime: &tokio::runtime::Runtime,
    region: Option<&str>,
) -> Result<aws_config::SdkConfig> {
    runtime.block_on(async {
        // Every client's requests share the process's bound on requests in flight.
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(calls::bounded_client());
        if let Some(region) = region {
            loader = loader.region(aws_config::Region::new(region.to_owned()));
        }
        let config = loader.load().await;
        if config.region().is_none() {
            return Err(Error::Refused(
                "no AWS region: set `region` in [migration] of the plan, or AWS_REGION (or a profile with a region in AWS_PROFILE)".into(),
            ));
        }
        let Some(provider) = config.credentials_provider() else {
            return Err(Error::Refused(
                "no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
            ));
        };
        match tokio::time::timeout(CREDENTIALS_TIMEOUT, provider.provide_credentials()).await {
            Ok(Ok(_)) => Ok(config),
            Ok(Err(e)) => Err(Error::Refused(format!(
                "no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY ({e})"
            ))),
            Err(_) => Err(Error::Refused(format!(
                "no AWS credentials within {}s: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                CREDENTIALS_TIMEOUT.as_secs()
            ))),
        }
    })
}

impl Aws {
    /// The backend for the account and region of the default credential chain.
    ///
    /// # Errors
    /// As [`load_config`].
    pub fn connect(region: Option<&str>) -> Result<Aws> {
        let runtime = runtime()?;
        let config = load_config(&runtime, region)?;
        let region = config.region().map(ToString::to_string).unwrap_or_default();
        Ok(Aws::from_clients(runtime, Clients::new(&config), &region))
    }

    /// The backend over given clients (tests pass mock clients here).
    #[must_use]
    pub fn from_clients(
        runtime: Arc<tokio::runtime::Runtime>,
        clients: Clients,
        region: &str,
    ) -> Aws {
        Aws {
            runtime,
            clients,
            region: region.to_owned(),
            definitions: HashMap::new(),
            clusters: HashMap::new(),
            polls: 0,
            live: crate::backend::broker::LiveBrokers::default(),
        }
    }

    fn cluster_ref(&self, cluster: &str) -> String {
        self.clusters
            .get(cluster)
            .cloned()
            .unwrap_or_else(|| cluster.to_owned())
    }

    /// The full ARN of `family:revision`, describing it when it is not known yet.
    async fn arn_of(&mut self, key: &str) -> Result<String> {
        if let Some(d) = self.definitions.get(key) {
            return Ok(d.arn.clone());
        }
        let described = read::describe_definition(&self.clients.ecs, key).await?;
        let arn = described.arn.clone();
        self.definitions.insert(key.to_owned(), described);
        Ok(arn)
    }

    /// Registers `td`'s content, or reuses a revision of its family that has that content
    /// already (what a run stopped after registering leaves behind): registering is idempotent
    /// by content. A throttled or failed attempt is retried after looking again, so that a
    /// registration that went through although its answer was lost is reused, not repeated.
    async fn register(&mut self, td: &TaskDefinition) -> Result<String> {
        let key = td.key();
        if !self.definitions.contains_key(&key) {
            self.arn_of(&key).await?;
        }
        let original = &self.definitions[&key];
        let mut wanted = original.definition.clone();
        wanted.container_definitions = Some(
            original
                .definition
                .container_definitions()
                .iter()
                .map(|c| moved_container(c, td))
                .collect(),
        );
        let tags = original.tags.clone();
        let policy = self.retry_policy();
        let mut attempt = 1;
        loop {
            if let Some(existing) = self.same_content(td, &wanted).await? {
                return Ok(existing);
            }
            match self.register_once(&td.family, &wanted, &tags).await {
                Ok(Some(new_key)) => return Ok(new_key),
                Ok(None) => {
                    return Err(Error::Backend(format!(
                        "ecs:RegisterTaskDefinition for {} returned no task definition",
                        td.family
                    )))
                }
                Err(e) if attempt < policy.max_attempts() && errors::is_transient(&e) => {
                    tokio::time::sleep(backoff(&policy, attempt)).await;
                    attempt += 1;
                }
                Err(e) => {
                    return Err(errors::describe(
                        "ecs:RegisterTaskDefinition",
                        &format!("family {}", td.family),
                        e,
                    ))
                }
            }
        }
    }

    /// The retries of the ECS client's configuration (the SDK's standard ones by default).
    fn retry_policy(&self) -> RetryConfig {
        self.clients
            .ecs
            .config()
            .retry_config()
            .cloned()
            .unwrap_or_else(RetryConfig::standard)
    }

    /// The newest ACTIVE revision of `td`'s family, newer than `td`'s own, whose content is
    /// `wanted`'s (everything but what ECS assigns: ARN, revision, status, times, who registered
    /// it, the attributes and compatibilities it works out).
    async fn same_content(
        &mut self,
        td: &TaskDefinition,
        wanted: &aws_sdk_ecs::types::TaskDefinition,
    ) -> Result<Option<String>> {
        let arns: Vec<String> = self
            .clients
            .ecs
            .list_task_definitions()
            .family_prefix(td.family.clone())
            .status(TaskDefinitionStatus::Active)
            .sort(SortOrder::Desc)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| {
                errors::describe(
                    "ecs:ListTaskDefinitions",
                    &format!("family {}", td.family),
                    e,
                )
            })?;
        let mut newer: Vec<(u32, String)> = arns
            .iter()
            .filter_map(|arn| {
                let key = convert::definition_key(arn);
                let (family, revision) = key.rsplit_once(':')?;
                let revision: u32 = revision.parse().ok()?;
                (family == td.family && revision > td.revision).then_some((revision, key))
            })
            .collect();
        newer.sort_by_key(|n| std::cmp::Reverse(n.0));
        let wanted = content(wanted);
        for (_, key) in newer {
            self.arn_of(&key).await?;
            if content(&self.definitions[&key].definition) == wanted {
                return Ok(Some(key));
            }
        }
        Ok(None)
    }

    /// One RegisterTaskDefinition of `d` with `tags`, without the SDK's retries (the caller
    /// looks for the revision before trying again). `None` when ECS answered without the
    /// definition.
    async fn register_once(
        &mut self,
        family: &str,
        d: &aws_sdk_ecs::types::TaskDefinition,
        tags: &[Tag],
    ) -> std::result::Result<
        Option<String>,
        SdkError<RegisterTaskDefinitionError, aws_sdk_ecs::config::http::HttpResponse>,
    > {
        let result = self
            .clients
            .ecs
            .register_task_definition()
            .family(family)
            .set_task_role_arn(d.task_role_arn().map(str::to_owned))
            .set_execution_role_arn(d.execution_role_arn().map(str::to_owned))
            .set_network_mode(d.network_mode().cloned())
            .set_container_definitions(Some(d.container_definitions().to_vec()))
            .set_volumes(non_empty(d.volumes()))
            .set_placement_constraints(non_empty(d.placement_constraints()))
            .set_requires_compatibilities(non_empty(d.requires_compatibilities()))
            .set_cpu(d.cpu().map(str::to_owned))
            .set_memory(d.memory().map(str::to_owned))
            .set_tags(non_empty(tags))
            .set_pid_mode(d.pid_mode().cloned())
            .set_ipc_mode(d.ipc_mode().cloned())
            .set_proxy_configuration(d.proxy_configuration().cloned())
            .set_ephemeral_storage(d.ephemeral_storage().cloned())
            .set_runtime_platform(d.runtime_platform().cloned())
            .set_enable_fault_injection(d.enable_fault_injection())
            .customize()
            .config_override(
                aws_sdk_ecs::config::Builder::default().retry_config(RetryConfig::disabled()),
            )
            .send()
            .await?;
        let Some(registered) = result.task_definition().cloned() else {
            return Ok(None);
        };
        let arn = registered
            .task_definition_arn()
            .unwrap_or_default()
            .to_owned();
        let answered_tags = result.tags().to_vec();
        let new_key = convert::definition_key(&arn);
        self.definitions.insert(
            new_key.clone(),
            Described {
                arn,
                definition: registered,
                tags: if answered_tags.is_empty() {
                    tags.to_vec()
                } else {
                    answered_tags
                },
            },
        );
        Ok(Some(new_key))
    }

    async fn describe_service(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<aws_sdk_ecs::types::Service> {
        let out = self
            .clients
            .ecs
            .describe_services()
            .cluster(self.cluster_ref(cluster))
            .services(service)
            .send()
            .await
            .map_err(|e| {
                errors::describe(
                    "ecs:DescribeServices",
                    &format!("service {cluster}/{service}"),
                    e,
                )
            })?;
        out.services()
            .first()
            .cloned()
            .ok_or_else(|| Error::Backend(format!("service {cluster}/{service} does not exist")))
    }
}

/// How long to wait before attempt `attempt + 1`: exponential from the policy's initial
/// backoff, capped at its maximum, with full jitter (as the SDK's standard retries).
fn backoff(policy: &RetryConfig, attempt: u32) -> Duration {
    let exp = policy
        .initial_backoff()
        .saturating_mul(2_u32.saturating_pow(attempt.saturating_sub(1)));
    exp.min(policy.max_backoff()).mul_f64(fastrand::f64())
}

/// What a task definition is, without what ECS assigns when registering it (ARN, revision,
/// status, times, who registered it, the attributes and compatibilities it works out) and with
/// empty lists taken as absent: two revisions with equal contents run the same tasks.
fn content(d: &aws_sdk_ecs::types::TaskDefinition) -> aws_sdk_ecs::types::TaskDefinition {
    let mut c = d.clone();
    c.task_definition_arn = None;
    c.revision = 0;
    c.status = None;
    c.registered_at = None;
    c.registered_by = None;
    c.deregistered_at = None;
    c.delete_requested_at = None;
    c.requires_attributes = None;
    c.compatibilities = None;
    if c.volumes.as_ref().is_some_and(Vec::is_empty) {
        c.volumes = None;
    }
    if c.placement_constraints.as_ref().is_some_and(Vec::is_empty) {
        c.placement_constraints = None;
    }
    if c.requires_compatibilities
        .as_ref()
        .is_some_and(Vec::is_empty)
    {
        c.requires_compatibilities = None;
    }
    if c.inference_accelerators.as_ref().is_some_and(Vec::is_empty) {
        c.inference_accelerators = None;
    }
    if c.enable_fault_injection == Some(false) {
        c.enable_fault_injection = None;
    }
    c
}

fn non_empty<T: Clone>(items: &[T]) -> Option<Vec<T>> {
    (!items.is_empty()).then(|| items.to_vec())
}

/// `original` with the environment values, secret `valueFrom`s and the other fields warren reads
/// (`command`, `entryPoint`, labels, a health check's command, log options; see
/// [`convert::container_fields`]) of `td`'s container of the same name, in the original order;
/// everything else as ECS described it.
fn moved_container(original: &ContainerDefinition, td: &TaskDefinition) -> ContainerDefinition {
    let mut out = original.clone();
    let Some(wanted) = td
        .containers
        .iter()
        .find(|c| Some(c.name.as_str()) == original.name())
    else {
        return out;
    };
    if !original.environment().is_empty() {
        out.environment = Some(
            original
                .environment()
                .iter()
                .map(|kv| {
                    let name = kv.name().unwrap_or_default();
                    let value = wanted
                        .environment
                        .get(name)
                        .map(str::to_owned)
                        .or_else(|| kv.value().map(str::to_owned));
                    KeyValuePair::builder()
                        .set_name(kv.name().map(str::to_owned))
                        .set_value(value)
                        .build()
                })
                .collect(),
        );
    }
    // Variables a move sets over an env file's (which the original does not have) come last.
    let added: Vec<KeyValuePair> = wanted
        .environment
        .iter()
        .filter(|(name, _)| {
            !original
                .environment()
                .iter()
                .any(|kv| kv.name() == Some(*name))
        })
        .map(|(name, value)| KeyValuePair::builder().name(name).value(value).build())
        .collect();
    if !added.is_empty() {
        out.environment.get_or_insert_with(Vec::new).extend(added);
    }
    if !original.secrets().is_empty() {
        out.secrets = Some(
            original
                .secrets()
                .iter()
                .map(|s| {
                    let value_from = wanted
                        .secrets
                        .get(s.name())
                        .cloned()
                        .unwrap_or_else(|| s.value_from().to_owned());
                    Secret::builder()
                        .name(s.name())
                        .value_from(value_from)
                        .build()
                        .expect("name and valueFrom are set")
                })
                .collect(),
        );
    }
    // `command`, `entryPoint` and the other fields a host can sit in, rewritten or as read.
    convert::carry_fields(&mut out, &wanted.extra);
    out
}

impl Backend for Aws {
    fn describe(&self) -> String {
        format!("AWS ({})", self.region)
    }

    fn read(&mut self, scope: &ReadScope) -> Result<World> {
        let runtime = self.runtime.clone();
        runtime.block_on(read::read(self, scope))
    }

    fn register_task_definition(&mut self, td: &TaskDefinition) -> Result<String> {
        let runtime = self.runtime.clone();
        runtime.block_on(self.register(td))
    }

    fn update_service(
        &mut self,
        cluster: &str,
        service: &str,
        task_definition: &str,
    ) -> Result<()> {
        let runtime = self.runtime.clone();
        runtime.block_on(async {
            let arn = self.arn_of(task_definition).await?;
            self.clients
                .ecs
                .update_service()
                .cluster(self.cluster_ref(cluster))
                .service(service)
                .task_definition(arn)
                .send()
                .await
                .map_err(|e| {
                    errors::describe(
                        "ecs:UpdateService",
                        &format!("service {cluster}/{service}"),
                        e,
                    )
                })?;
            self.polls = 0;
            Ok(())
        })
    }

    fn update_schedule(&mut self, schedule: &crate::model::Schedule) -> Result<()> {
        let runtime = self.runtime.clone();
        runtime.block_on(self.retarget(schedule))
    }

    fn rollout(&mut self, cluster: &str, service: &str, task_definition: &str) -> Result<Rollout> {
        let runtime = self.runtime.clone();
        runtime.block_on(async {
            let target = self.arn_of(task_definition).await?;
            let svc = self.describe_service(cluster, service).await?;
            self.polls = self.polls.saturating_add(1);
            Ok(convert::rollout_state(&svc, &target))
        })
    }

    fn running_task_definition(&mut self, cluster: &str, service: &str) -> Result<Option<String>> {
        let runtime = self.runtime.clone();
        runtime.block_on(async {
            let out = self
                .clients
                .ecs
                .describe_services()
                .cluster(self.cluster_ref(cluster))
                .services(service)
                .send()
                .await
                .map_err(|e| {
                    errors::describe(
                        "ecs:DescribeServices",
                        &format!("service {cluster}/{service}"),
                        e,
                    )
                })?;
            Ok(out
                .services()
                .iter()
                .find(|s| s.status() != Some("INACTIVE"))
                .and_then(|s| s.task_definition())
                .map(convert::definition_key))
        })
    }

    fn rollouts(&mut self, asked: &[RolloutQuery]) -> Result<Vec<Rollout>> {
        let runtime = self.runtime.clone();
        runtime.block_on(async {
            let mut targets = Vec::with_capacity(asked.len());
            for q in asked {
                targets.push(self.arn_of(&q.task_definition).await?);
            }
            // DescribeServices takes ten services of one cluster per call; a few calls at once.
            let mut batches: Vec<(String, Vec<String>)> = Vec::new();
            for q in asked {
                let cluster = self.cluster_ref(&q.cluster);
                match batches
                    .iter_mut()
                    .find(|(c, names)| *c == cluster && names.len() < 10)
                {
                    Some((_, names)) => names.push(q.service.clone()),
                    None => batches.push((cluster, vec![q.service.clone()])),
                }
            }
            let ecs = self.clients.ecs.clone();
            let described: Vec<(String, Vec<aws_sdk_ecs::types::Service>)> = stream::iter(batches)
                .map(|(cluster, names)| {
                    let ecs = ecs.clone();
                    async move {
                        let out = ecs
                            .describe_services()
                            .cluster(cluster.clone())
                            .set_services(Some(names))
                            .send()
                            .await
                            .map_err(|e| {
                                errors::describe(
                                    "ecs:DescribeServices",
                                    &format!("cluster {}", convert::cluster_name(&cluster)),
                                    e,
                                )
                            })?;
                        Ok::<_, Error>((cluster, out.services().to_vec()))
                    }
                })
                .buffered(max_concurrency())
                .try_collect()
                .await?;
            self.polls = self.polls.saturating_add(1);
            asked
                .iter()
                .zip(targets)
                .map(|(q, target)| {
                    let cluster = self.cluster_ref(&q.cluster);
                    described
                        .iter()
                        .filter(|(c, _)| *c == cluster)
                        .flat_map(|(_, services)| services)
                        .find(|s| s.service_name() == Some(q.service.as_str()))
                        .map(|s| convert::rollout_state(s, &target))
                        .ok_or_else(|| {
                            Error::Backend(format!(
                                "service {}/{} does not exist",
                                q.cluster, q.service
                            ))
                        })
                })
                .collect()
        })
    }

    fn task_addresses(
        &mut self,
        services: &[(String, String)],
    ) -> Result<BTreeMap<(String, String), Vec<String>>> {
        let runtime = self.runtime.clone();
        runtime.block_on(tasks::addresses(self, services))
    }

    fn broker<'a>(
        &'a mut self,
        broker: &ResolvedBroker,
    ) -> Result<Box<dyn crate::backend::broker::BrokerApi + 'a>> {
        Ok(Box::new(self.live.get(broker)?))
    }

    fn delete_broker(&mut self, broker: &ResolvedBroker) -> Result<()> {
        let runtime = self.runtime.clone();
        runtime.block_on(async {
            match self
                .clients
                .mq
                .delete_broker()
                .broker_id(broker.id.clone())
                .send()
                .await
            {
                Ok(_) => Ok(()),
                // A retry whose first attempt went through (its answer lost) finds no broker:
                // what was asked is done. Decommission found the broker under its lock just
                // before, so "not found" here means deleted, not never there.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_not_found_exception()) =>
                {
                    Ok(())
                }
                Err(e) => Err(errors::describe(
                    "mq:DeleteBroker",
                    &format!("broker {}", broker.id),
                    e,
                )),
            }
        })
    }

    fn poll_interval(&self) -> Duration {
        // 2 s, growing by half each round of polls, up to 15 s.
        let exp = 2.0_f64 * 1.5_f64.powi(i32::try_from(self.polls.min(10)).unwrap_or(10));
        Duration::from_secs_f64(exp.min(15.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{HealthCheck, LogConfiguration, LogDriver};

    /// A container whose broker host sits in its command, entry point, a label, its health
    /// check and its log options, as ECS describes it.
    fn described() -> ContainerDefinition {
        ContainerDefinition::builder()
            .name("app")
            .image("app:1")
            .command("--rabbit-host")
            .command("old.mq")
            .entry_point("/bin/run")
            .entry_point("--url=amqps://u:pw@old.mq:5671")
            .docker_labels("broker", "old.mq:5671")
            .docker_labels("team", "esr")
            .health_check(
                HealthCheck::builder()
                    .command("CMD")
                    .command("check")
                    .command("old.mq")
                    .interval(30)
                    .build()
                    .unwrap(),
            )
            .log_configuration(
                LogConfiguration::builder()
                    .log_driver(LogDriver::Fluentd)
                    .options("fluentd-address", "logs.internal:24224")
                    .build()
                    .unwrap(),
            )
            .environment(KeyValuePair::builder().name("A").value("x").build())
            .build()
    }

    /// A field rewritten in warren's model reaches the container registered: every field read
    /// goes back, the rewritten ones rewritten, everything else as described.
    #[test]
    fn a_rewritten_field_reaches_the_registered_container() {
        let original = described();
        let mut extra = convert::container_fields(&original);
        assert_eq!(
            extra.keys().collect::<Vec<_>>(),
            [
                "command",
                "entryPoint",
                "dockerLabels",
                "healthCheck",
                "logConfiguration"
            ]
        );
        let td = TaskDefinition {
            family: "app".into(),
            revision: 1,
            containers: vec![crate::model::Container {
                name: "app".into(),
                environment: [("A".to_owned(), "x".to_owned())].into_iter().collect(),
                extra: extra.clone().into(),
                ..crate::model::Container::default()
            }],
            ..TaskDefinition::default()
        };
        assert_eq!(
            moved_container(&original, &td),
            original,
            "read, written back"
        );

        extra["command"][1] = "new.mq".into();
        extra["entryPoint"][1] = "--url=amqps://u:pw@new.mq:5671".into();
        extra["dockerLabels"]["broker"] = "new.mq:5671".into();
        extra["healthCheck"]["command"][2] = "new.mq".into();
        let td = TaskDefinition {
            containers: vec![crate::model::Container {
                extra: extra.into(),
                ..td.containers[0].clone()
            }],
            ..td
        };
        let moved = moved_container(&original, &td);
        assert_eq!(moved.command(), ["--rabbit-host", "new.mq"]);
        assert_eq!(
            moved.entry_point(),
            ["/bin/run", "--url=amqps://u:pw@new.mq:5671"]
        );
        assert_eq!(
            moved.docker_labels().unwrap()["broker"],
            "new.mq:5671".to_owned()
        );
        assert_eq!(moved.docker_labels().unwrap()["team"], "esr".to_owned());
        let health_check = moved.health_check().unwrap();
        assert_eq!(health_check.command(), ["CMD", "check", "new.mq"]);
        assert_eq!(health_check.interval(), Some(30));
        assert_eq!(moved.image(), Some("app:1"));
        assert_eq!(moved.log_configuration(), original.log_configuration());
    }
}
