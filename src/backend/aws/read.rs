//! Discovery on AWS: every cluster, service, task definition, parameter, schedule and broker
//! the plan (or decommission) needs, every page of every list. The other resources that can
//! point at a broker are read in [`super::resources`].

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ecs::config::http::HttpResponse;
use aws_sdk_ecs::error::SdkError;
use aws_sdk_ecs::operation::describe_task_definition::{
    DescribeTaskDefinitionError, DescribeTaskDefinitionOutput,
};
use aws_sdk_ecs::types::{ServiceField, TaskDefinitionFamilyStatus, TaskDefinitionField};
use futures_util::stream::{self, StreamExt as _, TryStreamExt as _};
use indexmap::IndexMap;
use serde_json::json;

use super::{convert, errors, resources, Aws, Described};
use crate::backend::ReadScope;
use crate::discovery::{is_secrets_manager, mask_password, parameter_name};
use crate::error::{Error, Result};
use crate::model::{Broker, Cluster, Service, World, WORLD_VERSION};

/// Describes one task definition (by ARN or `family:revision`, or a family for its latest
/// ACTIVE revision), with its tags.
pub(super) async fn describe_definition(
    ecs: &aws_sdk_ecs::Client,
    reference: &str,
) -> Result<Described> {
    let out = ecs
        .describe_task_definition()
        .task_definition(reference)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .map_err(|e| describe_failed(reference, e))?;
    described(reference, &out)
}

fn describe_failed(
    reference: &str,
    e: SdkError<DescribeTaskDefinitionError, HttpResponse>,
) -> Error {
    errors::describe(
        "ecs:DescribeTaskDefinition",
        &format!("task definition {reference}"),
        e,
    )
}

/// The definition and tags of a DescribeTaskDefinition answer for `reference`.
fn described(reference: &str, out: &DescribeTaskDefinitionOutput) -> Result<Described> {
    let definition = out.task_definition().cloned().ok_or_else(|| {
        Error::Backend(format!(
            "ecs:DescribeTaskDefinition returned nothing for {reference}"
        ))
    })?;
    Ok(Described {
        arn: definition
            .task_definition_arn()
            .unwrap_or(reference)
            .to_owned(),
        definition,
        tags: out.tags().to_vec(),
    })
}

/// Reads the state in `scope` into a [`World`].
pub(super) async fn read(aws: &mut Aws, scope: &ReadScope) -> Result<World> {
    let ecs = aws.clients.ecs.clone();

    // Clusters: the plan's, or every cluster of the region.
    let cluster_arns: Vec<String> = match &scope.clusters {
        Some(names) => {
            let mut arns = Vec::new();
            for chunk in names.chunks(100) {
                let out = ecs
                    .describe_clusters()
                    .set_clusters(Some(chunk.to_vec()))
                    .send()
                    .await
                    .map_err(|e| {
                        errors::describe(
                            "ecs:DescribeClusters",
                            &format!("clusters {}", chunk.join(", ")),
                            e,
                        )
                    })?;
                arns.extend(
                    out.clusters()
                        .iter()
                        .filter(|c| c.status() != Some("INACTIVE"))
                        .filter_map(|c| c.cluster_arn().map(str::to_owned)),
                );
            }
            arns
        }
        None => ecs
            .list_clusters()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| errors::describe("ecs:ListClusters", "the region", e))?,
    };

    let mut clusters = Vec::new();
    for arn in &cluster_arns {
        let name = convert::cluster_name(arn);
        aws.clusters.insert(name.clone(), arn.clone());
        let service_arns: Vec<String> = ecs
            .list_services()
            .cluster(arn)
            // A hundred a page, ECS's most (its default is ten).
            .max_results(100)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| errors::describe("ecs:ListServices", &format!("cluster {name}"), e))?;
        let batches: Vec<Vec<String>> = service_arns.chunks(10).map(<[String]>::to_vec).collect();
        let described: Vec<Vec<aws_sdk_ecs::types::Service>> = stream::iter(batches)
            .map(|batch| {
                let ecs = ecs.clone();
                let arn = arn.clone();
                let name = name.clone();
                async move {
                    let out = ecs
                        .describe_services()
                        .cluster(arn)
                        .set_services(Some(batch))
                        .include(ServiceField::Tags)
                        .send()
                        .await
                        .map_err(|e| {
                            errors::describe("ecs:DescribeServices", &format!("cluster {name}"), e)
                        })?;
                    Ok::<_, Error>(out.services().to_vec())
                }
            })
            .buffered(super::max_concurrency())
            .try_collect()
            .await?;
        let mut services: Vec<Service> = described
            .into_iter()
            .flatten()
            .map(|s| {
                let mut extra = serde_json::Map::new();
                if let Some(arn) = s.service_arn() {
                    extra.insert("arn".into(), json!(arn));
                }
                if let Some(primary) = s
                    .deployments()
                    .iter()
                    .find(|d| d.status() == Some("PRIMARY"))
                {
                    extra.insert(
                        "primary_deployment".into(),
                        json!(primary.id().unwrap_or_default()),
                    );
                }
                Service {
                    name: s.service_name().unwrap_or_default().to_owned(),
                    task_definition: s.task_definition().unwrap_or_default().to_owned(),
                    desired: u32::try_from(s.desired_count()).unwrap_or(0),
                    running: u32::try_from(s.running_count()).unwrap_or(0),
                    deployments: convert::other_deployments(&s),
                    deployment_controller: s
                        .deployment_controller()
                        .map(|c| c.r#type().as_str().to_owned()),
                    tags: convert::service_tags(&s).into(),
                    extra: extra.into(),
                    ..Service::default()
                }
            })
            .collect();
        services.sort_by(|a, b| a.name.cmp(&b.name));
        clusters.push(Cluster {
            name,
            services,
            extra: serde_json::Map::new(),
        });
    }

    // Task definitions: one DescribeTaskDefinition per distinct revision.
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for service in clusters.iter().flat_map(|c| &c.services) {
        wanted.insert(service.task_definition.clone());
        wanted.extend(
            service
                .deployments
                .iter()
                .map(|d| d.task_definition.clone()),
        );
    }
    if scope.everything {
        let families: Vec<String> = ecs
            .list_task_definition_families()
            .status(TaskDefinitionFamilyStatus::Active)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| errors::describe("ecs:ListTaskDefinitionFamilies", "the region", e))?;
        // A family describes as its latest ACTIVE revision.
        wanted.extend(families);
    }
    let mut schedules = Vec::new();
    if scope.everything || scope.resources {
        schedules = resources::schedules(aws).await?;
        wanted.extend(schedules.iter().map(|s| s.task_definition.clone()));
    }
    describe_all(aws, wanted.into_iter().collect()).await?;
    describe_if_present(aws, &scope.task_definitions).await?;

    // Services name their task definitions as family:revision from here on.
    for service in clusters.iter_mut().flat_map(|c| &mut c.services) {
        service.task_definition = convert::definition_key(&service.task_definition);
    }
    for schedule in &mut schedules {
        schedule.task_definition = schedule_key(&schedule.task_definition);
    }
    let mut task_definitions: Vec<_> = aws
        .definitions
        .values()
        .map(|d| convert::task_definition(&d.arn, &d.definition))
        .collect();
    task_definitions.sort_by(|a, b| (&a.family, a.revision).cmp(&(&b.family, b.revision)));
    task_definitions.dedup_by(|a, b| a.family == b.family && a.revision == b.revision);

    let (parameters, parameter_versions, secret_parameters) =
        read_parameters(aws, &task_definitions, &scope.parameters).await?;
    let brokers = read_brokers(aws).await?;
    let others = if scope.resources {
        resources::read(aws).await?
    } else {
        resources::Resources::default()
    };
    let mut world = World {
        version: WORLD_VERSION,
        region: Some(aws.region.clone()),
        brokers,
        clusters,
        task_definitions,
        parameters,
        parameter_versions,
        schedules,
        extra: serde_json::Map::new(),
        secret_parameters,
        ..World::default()
    };
    world.functions = others.functions;
    world.event_source_mappings = others.event_source_mappings;
    world.pipes = others.pipes;
    world.state_machines = others.state_machines;
    super::secrets::read(aws, scope, &mut world).await?;
    Ok(world)
}

/// A schedule's task definition: `family:revision`, or the bare family for "latest".
fn schedule_key(arn: &str) -> String {
    convert::definition_key(arn)
}

async fn describe_all(aws: &mut Aws, references: Vec<String>) -> Result<()> {
    let ecs = aws.clients.ecs.clone();
    // A revision can be named twice, by ARN (a service's) and by `family:revision` (a
    // deployment's): describe it once.
    let mut seen = BTreeSet::new();
    let missing: Vec<String> = references
        .into_iter()
        .filter(|r| !aws.definitions.contains_key(&convert::definition_key(r)))
        .filter(|r| seen.insert(convert::definition_key(r)))
        .collect();
    let described: Vec<Described> = stream::iter(missing)
        .map(|reference| {
            let ecs = ecs.clone();
            async move { describe_definition(&ecs, &reference).await }
        })
        .buffer_unordered(super::max_concurrency())
        .try_collect()
        .await?;
    for d in described {
        aws.definitions.insert(convert::definition_key(&d.arn), d);
    }
    Ok(())
}

/// Describes the revisions `references` that are not known yet, leaving out those ECS does not
/// have (it answers ClientException for a revision that does not exist or was deleted).
async fn describe_if_present(aws: &mut Aws, references: &[String]) -> Result<()> {
    let ecs = aws.clients.ecs.clone();
    let missing: BTreeSet<String> = references
        .iter()
        .filter(|r| !aws.definitions.contains_key(&convert::definition_key(r)))
        .cloned()
        .collect();
    let described: Vec<Option<Described>> = stream::iter(missing)
        .map(|reference| {
            let ecs = ecs.clone();
            async move {
                let answer = ecs
                    .describe_task_definition()
                    .task_definition(&reference)
                    .include(TaskDefinitionField::Tags)
                    .send()
                    .await;
                match answer {
                    Ok(out) => described(&reference, &out).map(Some),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(DescribeTaskDefinitionError::is_client_exception) =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(describe_failed(&reference, e)),
                }
            }
        })
        .buffer_unordered(super::max_concurrency())
        .try_collect()
        .await?;
    for d in described.into_iter().flatten() {
        aws.definitions.insert(convert::definition_key(&d.arn), d);
    }
    Ok(())
}

/// The SSM parameters that containers' secrets name, and the `extra` ones the scope asks for
/// (a plan's `[parameters]`), by the reference the containers (or the plan) use. A parameter SSM
/// does not have (one it reports in `InvalidParameters`) is left out: it does not exist.
///
/// SecureString values that are not broker addresses are kept as `****` (or as
/// [`crate::discovery::REDACTED`], unreadable, where a credential stands beside what may be a
/// host), URL passwords are masked,
/// and the SecureStrings are listed: the world never holds credentials. Secrets Manager secrets are not read.
async fn read_parameters(
    aws: &Aws,
    definitions: &[crate::model::TaskDefinition],
    extra: &[String],
) -> Result<(
    IndexMap<String, String>,
    IndexMap<String, i64>,
    BTreeSet<String>,
)> {
    let references: BTreeSet<&String> = definitions
        .iter()
        .flat_map(|td| &td.containers)
        .flat_map(|c| c.secrets.values())
        .chain(extra)
        .filter(|v| !is_secrets_manager(v))
        .collect();
    // The emulator takes names only, real SSM names or ARNs: ask by name.
    let mut by_name: BTreeMap<String, Vec<&String>> = BTreeMap::new();
    for reference in references {
        by_name
            .entry(parameter_name(reference))
            .or_default()
            .push(reference);
    }
    let names: Vec<String> = by_name.keys().cloned().collect();
    let mut out = IndexMap::new();
    let mut versions = IndexMap::new();
    let mut secrets = BTreeSet::new();
    for chunk in names.chunks(10) {
        let answer = aws
            .clients
            .ssm
            .get_parameters()
            .set_names(Some(chunk.to_vec()))
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| {
                errors::describe(
                    "ssm:GetParameters",
                    &format!("parameters {}", chunk.join(", ")),
                    e,
                )
            })?;
        for p in answer.parameters() {
            let (Some(name), Some(value)) = (p.name(), p.value()) else {
                continue;
            };
            let secure = p.r#type() == Some(&aws_sdk_ssm::types::ParameterType::SecureString);
            let kept = if secure {
                redact(value)
            } else {
                mask_password(value)
            };
            for reference in by_name.get(&parameter_name(name)).into_iter().flatten() {
                out.insert((*reference).clone(), kept.clone());
                versions.insert((*reference).clone(), p.version());
                if secure {
                    secrets.insert((*reference).clone());
                }
            }
        }
    }
    Ok((out, versions, secrets))
}

/// A SecureString's value as warren keeps it: a broker address with its password masked;
/// [`crate::discovery::REDACTED`] (unreadable) when it holds a credential beside something
/// warren cannot read as a host; else `****` (read, and names no host). The rule for secret
/// values everywhere ([`crate::sources::kept_secret`]), with no broker known by a bare name.
fn redact(value: &str) -> String {
    crate::sources::kept_secret(value, &[])
}

async fn read_brokers(aws: &Aws) -> Result<Vec<Broker>> {
    let mq = &aws.clients.mq;
    let summaries: Vec<aws_sdk_mq::types::BrokerSummary> = mq
        .list_brokers()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| errors::describe("mq:ListBrokers", "the region", e))?;
    let mut brokers = Vec::new();
    for summary in summaries {
        let Some(id) = summary.broker_id() else {
            continue;
        };
        let out = match mq.describe_broker().broker_id(id).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(aws_sdk_mq::operation::describe_broker::DescribeBrokerError::is_not_found_exception) => continue,
            Err(e) => return Err(errors::describe("mq:DescribeBroker", &format!("broker {id}"), e)),
        };
        let endpoints = out
            .broker_instances()
            .iter()
            .flat_map(|i| i.endpoints().iter().cloned())
            .filter(|e| e.starts_with("amqp"))
            .collect::<Vec<_>>();
        let console_url = out
            .broker_instances()
            .iter()
            .find_map(|i| i.console_url())
            .map(str::to_owned);
        brokers.push(Broker {
            id: id.to_owned(),
            name: out
                .broker_name()
                .or(summary.broker_name())
                .map(str::to_owned),
            state: out
                .broker_state()
                .or(summary.broker_state())
                .map_or_else(|| "RUNNING".to_owned(), |s| s.as_str().to_owned()),
            endpoints,
            arn: out.broker_arn().or(summary.broker_arn()).map(str::to_owned),
            console_url,
            publicly_accessible: out.publicly_accessible(),
            ..Broker::default()
        });
    }
    brokers.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(brokers)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn secure_values_are_kept_only_as_addresses() {
        assert_eq!(redact("hunter2"), "****");
        assert_eq!(
            redact("b-1.mq.eu-west-2.amazonaws.com"),
            "b-1.mq.eu-west-2.amazonaws.com"
        );
        assert_eq!(
            redact("amqps://u:pw@b-1.mq:5671"),
            "amqps://u:****@b-1.mq:5671"
        );
        for (value, secret) in [
            ("amqps://u:pa/ss@b-1.mq:5671", "pa/ss"),
            ("amqps://u:pa#ss@b-1.mq:5671", "pa#ss"),
            ("u:pa/ss@b-1.mq:5671", "pa/ss"),
            ("u:hunter2@b-1.mq", "hunter2"),
        ] {
            let kept = redact(value);
            assert!(!kept.contains(secret), "{value} kept as {kept}");
        }
    }
}
