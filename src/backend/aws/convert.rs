//! From the SDK's types to warren's model.

use std::collections::HashMap;

use aws_sdk_ecs::types::{ContainerDefinition, DeploymentRolloutState, Service};
use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use crate::backend::Rollout;
use crate::discovery::mask_password;
use crate::model::{Container, Deployment, EnvironmentFile, TaskDefinition};

/// `family:revision` of a task definition ARN (`…:task-definition/family:3`); a key stays a key.
#[must_use]
pub fn definition_key(arn: &str) -> String {
    arn.rsplit_once(":task-definition/")
        .map_or(arn, |(_, key)| key)
        .to_owned()
}

/// The name of a cluster ARN (`…:cluster/name`); a name stays a name.
#[must_use]
pub fn cluster_name(arn: &str) -> String {
    arn.rsplit_once(":cluster/")
        .map_or(arn, |(_, name)| name)
        .to_owned()
}

/// Warren's model of an ECS task definition.
#[must_use]
pub fn task_definition(arn: &str, d: &aws_sdk_ecs::types::TaskDefinition) -> TaskDefinition {
    let key = definition_key(arn);
    let (family, revision) = key.rsplit_once(':').unwrap_or((key.as_str(), "0"));
    let containers = d
        .container_definitions()
        .iter()
        .map(|c| Container {
            name: c.name().unwrap_or_default().to_owned(),
            environment: c
                .environment()
                .iter()
                .map(|kv| {
                    (
                        kv.name().unwrap_or_default().to_owned(),
                        kv.value().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
            secrets: c
                .secrets()
                .iter()
                .map(|s| (s.name().to_owned(), s.value_from().to_owned()))
                .collect::<IndexMap<_, _>>()
                .into(),
            environment_files: c
                .environment_files()
                .iter()
                .map(|f| EnvironmentFile {
                    value: f.value().to_owned(),
                    kind: f.r#type().as_str().to_owned(),
                })
                .collect(),
            extra: container_fields(c).into(),
        })
        .collect();
    let mut extra = Map::new();
    extra.insert("arn".into(), json!(arn));
    TaskDefinition {
        family: family.to_owned(),
        revision: revision.parse().unwrap_or(0),
        status: d.status().map(|s| s.as_str().to_owned()),
        containers,
        extra: extra.into(),
    }
}

/// The string fields of a container where a broker address can sit besides its environment
/// and secrets, as the world file writes them: `command`, `entryPoint`, `dockerLabels`,
/// `healthCheck.command` and `logConfiguration.options`. [`carry_fields`] writes them back.
#[must_use]
pub fn container_fields(c: &ContainerDefinition) -> Map<String, Value> {
    let mut out = Map::new();
    let sorted = |map: &HashMap<String, String>| {
        let mut pairs: Vec<(&String, &String)> = map.iter().collect();
        pairs.sort();
        pairs
            .into_iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect::<Map<_, _>>()
    };
    if let Some(command) = &c.command {
        out.insert("command".into(), json!(command));
    }
    if let Some(entry_point) = &c.entry_point {
        out.insert("entryPoint".into(), json!(entry_point));
    }
    if let Some(labels) = &c.docker_labels {
        out.insert("dockerLabels".into(), Value::Object(sorted(labels)));
    }
    if let Some(health_check) = &c.health_check {
        out.insert(
            "healthCheck".into(),
            json!({ "command": health_check.command }),
        );
    }
    if let Some(options) = c
        .log_configuration
        .as_ref()
        .and_then(|l| l.options.as_ref())
    {
        out.insert(
            "logConfiguration".into(),
            json!({ "options": Value::Object(sorted(options)) }),
        );
    }
    out
}

/// Writes the fields [`container_fields`] reads from `fields` (a container of warren's model,
/// perhaps with a host rewritten) into `out`; what `fields` does not hold stays as it is.
pub fn carry_fields(out: &mut ContainerDefinition, fields: &Map<String, Value>) {
    let strings = |value: &Value| -> Option<Vec<String>> {
        value
            .as_array()?
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let pairs = |value: &Value| -> Option<HashMap<String, String>> {
        value
            .as_object()?
            .iter()
            .map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
            .collect()
    };
    if let Some(command) = fields.get("command").and_then(strings) {
        out.command = Some(command);
    }
    if let Some(entry_point) = fields.get("entryPoint").and_then(strings) {
        out.entry_point = Some(entry_point);
    }
    if let Some(labels) = fields.get("dockerLabels").and_then(pairs) {
        out.docker_labels = Some(labels);
    }
    if let (Some(health_check), Some(command)) = (
        out.health_check.as_mut(),
        fields
            .get("healthCheck")
            .and_then(|h| h.get("command"))
            .and_then(strings),
    ) {
        health_check.command = command;
    }
    if let (Some(log), Some(options)) = (
        out.log_configuration.as_mut(),
        fields
            .get("logConfiguration")
            .and_then(|l| l.get("options"))
            .and_then(pairs),
    ) {
        log.options = Some(options);
    }
}

/// The deployments of `service` that still run besides its current one.
#[must_use]
pub fn other_deployments(service: &Service) -> Vec<Deployment> {
    let current = service.task_definition().unwrap_or_default();
    service
        .deployments()
        .iter()
        .filter(|d| d.task_definition().unwrap_or_default() != current)
        .filter(|d| d.status() != Some("PRIMARY") || d.running_count() > 0)
        .map(|d| {
            let mut extra = Map::new();
            if let Some(id) = d.id() {
                extra.insert("id".into(), json!(id));
            }
            Deployment {
                task_definition: definition_key(d.task_definition().unwrap_or_default()),
                status: d.status().unwrap_or_default().to_owned(),
                running: u32::try_from(d.running_count()).unwrap_or(0),
                extra,
            }
        })
        .collect()
}

/// The tags of `service` (DescribeServices with `include` TAGS), in the order ECS gives them:
/// they tell who owns the service (CloudFormation, Copilot, CDK, Terraform).
#[must_use]
pub fn service_tags(service: &Service) -> IndexMap<String, String> {
    service
        .tags()
        .iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

/// Where the rollout of `service` onto the task definition `target` (full ARN) stands.
///
/// Right for real ECS and for the emulator alike: the service must be on `target`, no
/// deployment IN_PROGRESS or FAILED, no older deployment still running tasks, and as many tasks
/// running as desired. A service back on another revision (a circuit-breaker rollback) or a
/// FAILED deployment is a failure, never a success.
#[must_use]
pub fn rollout_state(service: &Service, target: &str) -> Rollout {
    let current = service.task_definition().unwrap_or_default();
    if current != target {
        return Rollout::Failed {
            running: definition_key(current),
            reason: format!(
                "ECS put the service back on {} (the deployment of {} was rolled back)",
                definition_key(current),
                definition_key(target)
            ),
        };
    }
    for d in service.deployments() {
        if d.rollout_state() == Some(&DeploymentRolloutState::Failed)
            || d.status() == Some("FAILED")
        {
            return Rollout::Failed {
                running: definition_key(current),
                reason: format!(
                    "deployment {} failed: {}",
                    d.id().unwrap_or("?"),
                    mask_password(d.rollout_state_reason().unwrap_or("no reason given"))
                ),
            };
        }
    }
    let in_progress = service
        .deployments()
        .iter()
        .any(|d| d.rollout_state() == Some(&DeploymentRolloutState::InProgress));
    let older_running = service.deployments().iter().any(|d| {
        d.task_definition() != Some(target)
            && d.status() != Some("PRIMARY")
            && d.running_count() > 0
    });
    if in_progress || older_running || service.running_count() != service.desired_count() {
        Rollout::InProgress
    } else {
        Rollout::Completed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::Deployment as EcsDeployment;

    const OLD: &str = "arn:aws:ecs:eu-west-2:1:task-definition/svc:1";
    const NEW: &str = "arn:aws:ecs:eu-west-2:1:task-definition/svc:2";

    fn deployment(
        td: &str,
        status: &str,
        state: DeploymentRolloutState,
        running: i32,
    ) -> EcsDeployment {
        EcsDeployment::builder()
            .id(format!("ecs-svc/{status}"))
            .task_definition(td)
            .status(status)
            .rollout_state(state)
            .running_count(running)
            .desired_count(1)
            .build()
    }

    fn service(td: &str, deployments: Vec<EcsDeployment>, running: i32) -> Service {
        Service::builder()
            .service_name("svc")
            .task_definition(td)
            .desired_count(1)
            .running_count(running)
            .set_deployments(Some(deployments))
            .build()
    }

    #[test]
    fn keys_and_names_from_arns() {
        assert_eq!(definition_key(OLD), "svc:1");
        assert_eq!(definition_key("svc:1"), "svc:1");
        assert_eq!(
            cluster_name("arn:aws:ecs:eu-west-2:1:cluster/esr-prod"),
            "esr-prod"
        );
    }

    #[test]
    fn a_new_primary_deployment_in_progress_is_waited_for() {
        let s = service(
            NEW,
            vec![
                deployment(NEW, "PRIMARY", DeploymentRolloutState::InProgress, 0),
                deployment(OLD, "ACTIVE", DeploymentRolloutState::Completed, 1),
            ],
            1,
        );
        assert_eq!(rollout_state(&s, NEW), Rollout::InProgress);
    }

    #[test]
    fn completed_when_steady_on_the_target() {
        let s = service(
            NEW,
            vec![deployment(
                NEW,
                "PRIMARY",
                DeploymentRolloutState::Completed,
                1,
            )],
            1,
        );
        assert_eq!(rollout_state(&s, NEW), Rollout::Completed);
        // The emulator keeps the old PRIMARY deployment after UpdateService: still complete.
        let s = service(
            NEW,
            vec![deployment(
                OLD,
                "PRIMARY",
                DeploymentRolloutState::Completed,
                1,
            )],
            1,
        );
        assert_eq!(rollout_state(&s, NEW), Rollout::Completed);
    }

    #[test]
    fn a_failed_deployment_is_a_failure() {
        let s = service(
            NEW,
            vec![deployment(
                NEW,
                "PRIMARY",
                DeploymentRolloutState::Failed,
                0,
            )],
            0,
        );
        assert!(matches!(rollout_state(&s, NEW), Rollout::Failed { .. }));
    }

    #[test]
    fn a_circuit_breaker_rollback_is_a_failure() {
        let s = service(
            OLD,
            vec![deployment(
                OLD,
                "PRIMARY",
                DeploymentRolloutState::InProgress,
                1,
            )],
            1,
        );
        match rollout_state(&s, NEW) {
            Rollout::Failed { running, .. } => assert_eq!(running, "svc:1"),
            other => panic!("expected a failure, got {other:?}"),
        }
    }
}
