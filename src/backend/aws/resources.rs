//! Discovery on AWS of what else can point at a broker besides ECS services: EventBridge rules
//! (on every bus) and Scheduler schedules that run ECS tasks, Lambda functions and their event
//! source mappings, EventBridge Pipes and Step Functions state machines.
//!
//! Every page of every list is read; the per-item calls (ListTargetsByRule, GetSchedule,
//! DescribeStateMachine) run a few at a time. Nothing is changed here: warren only reports these
//! resources. Values are kept with their URL passwords masked
//! ([`crate::discovery::mask_password`]), so that the world never holds a broker credential while
//! hosts still match.

use aws_sdk_eventbridge::operation::list_targets_by_rule::ListTargetsByRuleError;
use aws_sdk_scheduler::operation::get_schedule::GetScheduleError;
use aws_sdk_sfn::operation::describe_state_machine::DescribeStateMachineError;
use futures_util::stream::{self, StreamExt as _, TryStreamExt as _};
use indexmap::IndexMap;
use serde_json::Value;

use super::max_concurrency;
use super::schedules::{container_overrides, field};
use super::{convert, errors, Aws};
use crate::discovery::mask_password;
use crate::error::{Error, Result};
use crate::model::{EventSourceMapping, Function, Pipe, Schedule, ScheduleKind, StateMachine};

/// The event bus every account has; rules on it are written without a `bus`.
const DEFAULT_BUS: &str = "default";
/// The Scheduler group every account has; schedules in it are written without a `group`.
const DEFAULT_GROUP: &str = "default";

/// The resources besides services that can point at a broker.
#[derive(Debug, Default)]
pub(super) struct Resources {
    pub functions: Vec<Function>,
    pub event_source_mappings: Vec<EventSourceMapping>,
    pub pipes: Vec<Pipe>,
    pub state_machines: Vec<StateMachine>,
}

/// Every scheduled ECS task: the ECS targets of the rules on every event bus, then the
/// Scheduler schedules of every group that run ECS tasks. Task definitions are as AWS names them
/// (ARNs); the caller turns them into keys once they are described.
pub(super) async fn schedules(aws: &Aws) -> Result<Vec<Schedule>> {
    let (mut rules, schedules) = tokio::try_join!(rule_targets(aws), scheduler_schedules(aws))?;
    rules.extend(schedules);
    Ok(rules)
}

/// Lambda functions, event source mappings, pipes and state machines.
pub(super) async fn read(aws: &Aws) -> Result<Resources> {
    let (functions, event_source_mappings, pipes, state_machines) = tokio::try_join!(
        functions(aws),
        event_source_mappings(aws),
        pipes(aws),
        state_machines(aws)
    )?;
    Ok(Resources {
        functions,
        event_source_mappings,
        pipes,
        state_machines,
    })
}

// ---------------------------------------------------------------------------------------------
// EventBridge rules

/// The names of every event bus, `default` first (listed or not: it always exists, and a rule
/// on it must never be missed because a listing left it out).
async fn event_buses(aws: &Aws) -> Result<Vec<String>> {
    let events = &aws.clients.events;
    let mut buses = vec![DEFAULT_BUS.to_owned()];
    let mut token = None;
    loop {
        let out = events
            .list_event_buses()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| errors::describe("events:ListEventBuses", "the region", e))?;
        for name in out.event_buses().iter().filter_map(|b| b.name()) {
            if !buses.iter().any(|b| b == name) {
                buses.push(name.to_owned());
            }
        }
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    Ok(buses)
}

/// `(bus, rule name, rule ARN)` of every rule on `bus`.
async fn rules_on(aws: &Aws, bus: &str) -> Result<Vec<(String, String, Option<String>)>> {
    let events = &aws.clients.events;
    let mut rules = Vec::new();
    let mut token = None;
    loop {
        let out = events
            .list_rules()
            .event_bus_name(bus)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| errors::describe("events:ListRules", &format!("event bus {bus}"), e))?;
        rules.extend(out.rules().iter().filter_map(|r| {
            r.name()
                .map(|n| (bus.to_owned(), n.to_owned(), r.arn().map(str::to_owned)))
        }));
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    Ok(rules)
}

/// The ECS targets of every rule on every bus.
async fn rule_targets(aws: &Aws) -> Result<Vec<Schedule>> {
    let mut rules = Vec::new();
    for bus in event_buses(aws).await? {
        rules.extend(rules_on(aws, &bus).await?);
    }
    let per_rule: Vec<Vec<Schedule>> = stream::iter(rules)
        .map(|(bus, rule, arn)| async move { targets_of(aws, &bus, &rule, arn).await })
        .buffered(max_concurrency())
        .try_collect()
        .await?;
    Ok(per_rule.into_iter().flatten().collect())
}

/// The ECS targets of rule `rule` on `bus`; none when the rule went away since it was listed.
async fn targets_of(
    aws: &Aws,
    bus: &str,
    rule: &str,
    arn: Option<String>,
) -> Result<Vec<Schedule>> {
    let events = &aws.clients.events;
    let mut schedules = Vec::new();
    let mut token = None;
    loop {
        let answer = events
            .list_targets_by_rule()
            .rule(rule)
            .event_bus_name(bus)
            .set_next_token(token)
            .send()
            .await;
        let out = match answer {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(ListTargetsByRuleError::is_resource_not_found_exception) =>
            {
                return Ok(Vec::new())
            }
            Err(e) => {
                return Err(errors::describe(
                    "events:ListTargetsByRule",
                    &format!("rule {rule} on event bus {bus}"),
                    e,
                ))
            }
        };
        for target in out.targets() {
            let Some(ecs) = target.ecs_parameters() else {
                continue;
            };
            schedules.push(Schedule {
                name: rule.to_owned(),
                cluster: convert::cluster_name(target.arn()),
                task_definition: ecs.task_definition_arn().to_owned(),
                kind: ScheduleKind::Rule,
                bus: (bus != DEFAULT_BUS).then(|| bus.to_owned()),
                target: Some(target.id().to_owned()),
                arn: arn.clone(),
                overrides: target.input().map(overrides).unwrap_or_default(),
                ..Schedule::default()
            });
        }
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    Ok(schedules)
}

// ---------------------------------------------------------------------------------------------
// EventBridge Scheduler

/// Every schedule of every group that runs an ECS task.
async fn scheduler_schedules(aws: &Aws) -> Result<Vec<Schedule>> {
    let scheduler = &aws.clients.scheduler;
    // No group filter: the list covers every group.
    let summaries: Vec<aws_sdk_scheduler::types::ScheduleSummary> = scheduler
        .list_schedules()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| errors::describe("scheduler:ListSchedules", "the region", e))?;
    let named: Vec<(String, String)> = summaries
        .iter()
        .filter_map(|s| {
            let group = s.group_name().unwrap_or(DEFAULT_GROUP).to_owned();
            s.name().map(|n| (group, n.to_owned()))
        })
        .collect();
    let found: Vec<Option<Schedule>> = stream::iter(named)
        .map(|(group, name)| async move { get_schedule(aws, &group, &name).await })
        .buffered(max_concurrency())
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}

/// Schedule `name` of `group`, if it runs an ECS task (and still exists).
async fn get_schedule(aws: &Aws, group: &str, name: &str) -> Result<Option<Schedule>> {
    let answer = aws
        .clients
        .scheduler
        .get_schedule()
        .name(name)
        .group_name(group)
        .send()
        .await;
    let out = match answer {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(GetScheduleError::is_resource_not_found_exception) =>
        {
            return Ok(None)
        }
        Err(e) => {
            return Err(errors::describe(
                "scheduler:GetSchedule",
                &format!("schedule {name} in group {group}"),
                e,
            ))
        }
    };
    let Some(target) = out.target() else {
        return Ok(None);
    };
    let Some(ecs) = target.ecs_parameters() else {
        return Ok(None);
    };
    Ok(Some(Schedule {
        name: name.to_owned(),
        cluster: convert::cluster_name(target.arn()),
        task_definition: ecs.task_definition_arn().to_owned(),
        kind: ScheduleKind::Schedule,
        group: (group != DEFAULT_GROUP).then(|| group.to_owned()),
        arn: out.arn().map(str::to_owned),
        overrides: target.input().map(overrides).unwrap_or_default(),
        ..Schedule::default()
    }))
}

/// The environment overrides in a target's `Input`, which EventBridge and Scheduler pass to
/// RunTask as its overrides: `{"containerOverrides": [{"name", "environment": [{"name",
/// "value"}]}]}` (also accepted under `overrides`, and with capitalised keys as Step Functions
/// writes them). Container → variable → value, passwords masked. An input of another shape
/// overrides no environment.
#[must_use]
pub fn overrides(input: &str) -> IndexMap<String, IndexMap<String, String>> {
    let mut out: IndexMap<String, IndexMap<String, String>> = IndexMap::new();
    let Ok(value) = serde_json::from_str::<Value>(input) else {
        return out;
    };
    for container in container_overrides(&value).into_iter().flatten() {
        let Some(Value::String(name)) = field(container, "name") else {
            continue;
        };
        let Some(Value::Array(environment)) = field(container, "environment") else {
            continue;
        };
        for pair in environment {
            if let (Some(Value::String(variable)), Some(Value::String(value))) =
                (field(pair, "name"), field(pair, "value"))
            {
                out.entry(name.clone())
                    .or_default()
                    .insert(variable.clone(), mask_password(value));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Lambda

/// Every function (its `$LATEST` configuration) with its environment. A function whose
/// environment Lambda cannot show (its KMS key is not usable) is an error naming it: warren
/// cannot tell whether it names a broker.
async fn functions(aws: &Aws) -> Result<Vec<Function>> {
    let listed: Vec<aws_sdk_lambda::types::FunctionConfiguration> = aws
        .clients
        .lambda
        .list_functions()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| errors::describe("lambda:ListFunctions", "the region", e))?;
    let mut functions = Vec::new();
    for f in listed {
        let name = f.function_name().unwrap_or_default().to_owned();
        let mut environment = IndexMap::new();
        if let Some(env) = f.environment() {
            if let Some(error) = env.error() {
                return Err(Error::Backend(format!(
                    "lambda:ListFunctions cannot show the environment of function {name} ({}): {}. Allow kms:Decrypt on its key, or check the function",
                    error.error_code().unwrap_or("no code"),
                    error.message().unwrap_or("no reason given")
                )));
            }
            let mut variables: Vec<(&String, &String)> =
                env.variables().into_iter().flatten().collect();
            // Lambda answers a map: sort it, so the world reads the same every time.
            variables.sort();
            for (variable, value) in variables {
                environment.insert(variable.clone(), mask_password(value));
            }
        }
        functions.push(Function {
            name,
            arn: f.function_arn().map(str::to_owned),
            environment,
            ..Function::default()
        });
    }
    functions.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(functions)
}

/// Every event source mapping that reads from an ARN (an Amazon MQ broker's, a queue's, a
/// stream's). Mappings of self-managed Kafka name no ARN and are left out: they cannot read
/// from an Amazon MQ broker.
async fn event_source_mappings(aws: &Aws) -> Result<Vec<EventSourceMapping>> {
    let listed: Vec<aws_sdk_lambda::types::EventSourceMappingConfiguration> = aws
        .clients
        .lambda
        .list_event_source_mappings()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| errors::describe("lambda:ListEventSourceMappings", "the region", e))?;
    let mut mappings: Vec<EventSourceMapping> = listed
        .iter()
        .filter_map(|m| {
            Some(EventSourceMapping {
                uuid: m.uuid().unwrap_or_default().to_owned(),
                function: m.function_arn().unwrap_or_default().to_owned(),
                source: m.event_source_arn()?.to_owned(),
                state: m.state().map(str::to_owned),
                queues: m.queues().to_vec(),
                ..EventSourceMapping::default()
            })
        })
        .collect();
    mappings.sort_by(|a, b| a.uuid.cmp(&b.uuid));
    Ok(mappings)
}

// ---------------------------------------------------------------------------------------------
// Pipes and Step Functions

/// Every pipe, with its source and target as ListPipes gives them.
async fn pipes(aws: &Aws) -> Result<Vec<Pipe>> {
    let listed: Vec<aws_sdk_pipes::types::Pipe> = aws
        .clients
        .pipes
        .list_pipes()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| errors::describe("pipes:ListPipes", "the region", e))?;
    let mut pipes: Vec<Pipe> = listed
        .iter()
        .map(|p| Pipe {
            name: p.name().unwrap_or_default().to_owned(),
            arn: p.arn().map(str::to_owned),
            source: p.source().unwrap_or_default().to_owned(),
            target: p.target().map(str::to_owned),
            ..Pipe::default()
        })
        .collect();
    pipes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(pipes)
}

/// Every state machine with its definition. A definition that is not JSON is kept as one JSON
/// string, so that a host in it is still seen.
async fn state_machines(aws: &Aws) -> Result<Vec<StateMachine>> {
    let sfn = &aws.clients.sfn;
    let listed: Vec<aws_sdk_sfn::types::StateMachineListItem> = sfn
        .list_state_machines()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| errors::describe("states:ListStateMachines", "the region", e))?;
    let described: Vec<Option<StateMachine>> = stream::iter(listed)
        .map(|item| async move {
            let arn = item.state_machine_arn().to_owned();
            let name = item.name().to_owned();
            match sfn
                .describe_state_machine()
                .state_machine_arn(&arn)
                .send()
                .await
            {
                Ok(out) => Ok(Some(StateMachine {
                    name,
                    arn: Some(arn),
                    definition: definition(out.definition()),
                    ..StateMachine::default()
                })),
                Err(e)
                    if e.as_service_error().is_some_and(
                        DescribeStateMachineError::is_state_machine_does_not_exist,
                    ) =>
                {
                    Ok(None)
                }
                Err(e) => Err(errors::describe(
                    "states:DescribeStateMachine",
                    &format!("state machine {name}"),
                    e,
                )),
            }
        })
        .buffered(max_concurrency())
        .try_collect()
        .await?;
    let mut machines: Vec<StateMachine> = described.into_iter().flatten().collect();
    machines.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(machines)
}

/// A state machine's definition as JSON with every string's URL password masked; text that is
/// not JSON becomes one string.
#[must_use]
pub fn definition(text: &str) -> Value {
    let mut value = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()));
    crate::model::mask_strings(&mut value, &mask_password);
    value
}

#[cfg(test)]
mod tests {
    use super::{definition, overrides};
    use serde_json::json;

    #[test]
    fn overrides_come_from_the_run_task_shape() {
        let input = r#"{"containerOverrides":[{"name":"app","environment":[
            {"name":"RABBIT_URL","value":"amqps://u:secret@b-1.mq:5671"},
            {"name":"LEVEL","value":"debug"}]},{"name":"side","command":["x"]}]}"#;
        let got = overrides(input);
        assert_eq!(got.len(), 1);
        assert_eq!(got["app"]["RABBIT_URL"], "amqps://u:****@b-1.mq:5671");
        assert_eq!(got["app"]["LEVEL"], "debug");
        let nested = r#"{"overrides":{"ContainerOverrides":[{"Name":"app","Environment":[{"Name":"H","Value":"b-1.mq"}]}]}}"#;
        assert_eq!(overrides(nested)["app"]["H"], "b-1.mq");
        assert!(overrides("not json").is_empty());
        assert!(overrides(r#"{"detail":1}"#).is_empty());
    }

    #[test]
    fn definitions_are_json_with_passwords_masked() {
        assert_eq!(
            definition(r#"{"States":{"A":{"Parameters":{"U":"amqps://u:pw@h:5671"}}}}"#),
            json!({"States":{"A":{"Parameters":{"U":"amqps://u:****@h:5671"}}}})
        );
        assert_eq!(definition("not json"), json!("not json"));
    }
}
