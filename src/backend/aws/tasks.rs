//! The addresses of services' running tasks on AWS: a broker connection that carries no
//! service's name is told apart by its peer address, which is the private IPv4 address of the
//! task (awsvpc) it comes from.
//!
//! Read only when a command finds such a connection, and only for the services it scans:
//! ListTasks per service (every page), then DescribeTasks by a hundred tasks of one cluster.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_ecs::types::DesiredStatus;
use futures_util::stream::{self, StreamExt as _, TryStreamExt as _};

use super::max_concurrency;
use super::{errors, Aws};
use crate::error::{Error, Result};

/// How many tasks DescribeTasks takes in one call.
const DESCRIBE_BATCH: usize = 100;

/// `(cluster, service)` → the addresses of its running tasks, sorted; services with none are
/// absent.
pub(super) async fn addresses(
    aws: &Aws,
    services: &[(String, String)],
) -> Result<BTreeMap<(String, String), Vec<String>>> {
    let ecs = aws.clients.ecs.clone();
    // Task ARN → its service, and each cluster's tasks, as ListTasks gives them.
    let listed: Vec<((String, String), Vec<String>)> = stream::iter(services.to_vec())
        .map(|(cluster, service)| {
            let ecs = ecs.clone();
            let cluster_ref = aws.cluster_ref(&cluster);
            async move {
                let arns: Vec<String> = ecs
                    .list_tasks()
                    .cluster(cluster_ref)
                    .service_name(service.clone())
                    .desired_status(DesiredStatus::Running)
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect()
                    .await
                    .map_err(|e| {
                        errors::describe(
                            "ecs:ListTasks",
                            &format!("service {cluster}/{service}"),
                            e,
                        )
                    })?;
                Ok::<_, Error>(((cluster, service), arns))
            }
        })
        .buffered(max_concurrency())
        .try_collect()
        .await?;
    let mut owner: HashMap<String, (String, String)> = HashMap::new();
    let mut by_cluster: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, arns) in listed {
        for arn in arns {
            by_cluster
                .entry(id.0.clone())
                .or_default()
                .push(arn.clone());
            owner.insert(arn, id.clone());
        }
    }
    let batches: Vec<(String, Vec<String>)> = by_cluster
        .iter()
        .flat_map(|(cluster, arns)| {
            arns.chunks(DESCRIBE_BATCH)
                .map(|chunk| (cluster.clone(), chunk.to_vec()))
        })
        .collect();
    let described: Vec<Vec<aws_sdk_ecs::types::Task>> = stream::iter(batches)
        .map(|(cluster, arns)| {
            let ecs = ecs.clone();
            let cluster_ref = aws.cluster_ref(&cluster);
            async move {
                let out = ecs
                    .describe_tasks()
                    .cluster(cluster_ref)
                    .set_tasks(Some(arns))
                    .send()
                    .await
                    .map_err(|e| {
                        errors::describe("ecs:DescribeTasks", &format!("cluster {cluster}"), e)
                    })?;
                // A task that stopped since it was listed is a failure here: it has no address.
                Ok::<_, Error>(out.tasks().to_vec())
            }
        })
        .buffered(max_concurrency())
        .try_collect()
        .await?;
    let mut found: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for task in described.iter().flatten() {
        let Some(id) = task.task_arn().and_then(|arn| owner.get(arn)) else {
            continue;
        };
        let addresses = task_addresses(task);
        if !addresses.is_empty() {
            found.entry(id.clone()).or_default().extend(addresses);
        }
    }
    Ok(found
        .into_iter()
        .map(|(id, addresses)| (id, addresses.into_iter().collect()))
        .collect())
}

/// The private IPv4 addresses of `task`: its network interface attachment's
/// `privateIPv4Address` (awsvpc), else its containers' network interfaces.
fn task_addresses(task: &aws_sdk_ecs::types::Task) -> Vec<String> {
    let from_attachments: Vec<String> = task
        .attachments()
        .iter()
        .filter(|a| a.r#type() == Some("ElasticNetworkInterface"))
        .flat_map(aws_sdk_ecs::types::Attachment::details)
        .filter(|d| d.name() == Some("privateIPv4Address"))
        .filter_map(|d| d.value().map(str::to_owned))
        .collect();
    if !from_attachments.is_empty() {
        return from_attachments;
    }
    task.containers()
        .iter()
        .flat_map(aws_sdk_ecs::types::Container::network_interfaces)
        .filter_map(|n| n.private_ipv4_address().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::task_addresses;
    use aws_sdk_ecs::types::{Attachment, Container, KeyValuePair, NetworkInterface, Task};

    #[test]
    fn a_tasks_address_is_its_network_interfaces_else_its_containers() {
        let eni = Task::builder()
            .attachments(
                Attachment::builder()
                    .r#type("ElasticNetworkInterface")
                    .details(
                        KeyValuePair::builder()
                            .name("subnetId")
                            .value("s-1")
                            .build(),
                    )
                    .details(
                        KeyValuePair::builder()
                            .name("privateIPv4Address")
                            .value("10.0.1.7")
                            .build(),
                    )
                    .build(),
            )
            .containers(
                Container::builder()
                    .network_interfaces(
                        NetworkInterface::builder()
                            .private_ipv4_address("10.0.9.9")
                            .build(),
                    )
                    .build(),
            )
            .build();
        assert_eq!(task_addresses(&eni), ["10.0.1.7"]);
        let containers = Task::builder()
            .containers(
                Container::builder()
                    .network_interfaces(
                        NetworkInterface::builder()
                            .private_ipv4_address("10.0.2.8")
                            .build(),
                    )
                    .build(),
            )
            .build();
        assert_eq!(task_addresses(&containers), ["10.0.2.8"]);
        assert!(task_addresses(&Task::builder().build()).is_empty());
    }
}
