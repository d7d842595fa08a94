//! Retargeting scheduled tasks on AWS: an EventBridge rule's ECS target (ListTargetsByRule on
//! its bus, then PutTargets with that one target changed) and an EventBridge Scheduler schedule
//! (GetSchedule, then UpdateSchedule with every field GetSchedule answered, because
//! UpdateSchedule replaces the whole schedule and would reset what it is not given).

use serde_json::Value;

use super::{errors, Aws};
use crate::error::{Error, Result};
use crate::model::{Schedule, ScheduleKind};
use crate::retarget::{label_of, Overrides};

impl Aws {
    /// Writes `schedule`'s pinned revision (as its ARN: targets name task definitions by ARN)
    /// and env overrides to the rule target or schedule it names.
    pub(super) async fn retarget(&mut self, schedule: &Schedule) -> Result<()> {
        // A bare family follows the family's latest revision: the target keeps what it names.
        let arn = if schedule.task_definition.contains(':') {
            Some(self.arn_of(&schedule.task_definition).await?)
        } else {
            None
        };
        match schedule.kind {
            ScheduleKind::Rule => self.retarget_rule(schedule, arn).await,
            ScheduleKind::Schedule => self.retarget_schedule(schedule, arn).await,
        }
    }

    async fn retarget_rule(&self, s: &Schedule, arn: Option<String>) -> Result<()> {
        let what = label_of(s);
        let bus = s.bus.clone().unwrap_or_else(|| "default".to_owned());
        let events = &self.clients.events;
        let mut targets = Vec::new();
        let mut token = None;
        loop {
            let out = events
                .list_targets_by_rule()
                .rule(s.name.clone())
                .event_bus_name(bus.clone())
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| errors::describe("events:ListTargetsByRule", &what, e))?;
            targets.extend(out.targets().iter().cloned());
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        let mut target = match &s.target {
            Some(id) => targets.into_iter().find(|t| t.id() == id.as_str()),
            None => {
                // Without a target id, only a rule with one ECS target says which it is.
                let mut ecs: Vec<_> = targets
                    .into_iter()
                    .filter(|t| t.ecs_parameters().is_some())
                    .collect();
                if ecs.len() == 1 {
                    ecs.pop()
                } else {
                    None
                }
            }
        }
        .ok_or_else(|| Error::Backend(format!("{what}: the rule has no such ECS target")))?;
        let Some(ecs) = target.ecs_parameters.as_mut() else {
            return Err(Error::Backend(format!(
                "{what}: the target does not run an ECS task"
            )));
        };
        if let Some(arn) = arn {
            ecs.task_definition_arn = arn;
        }
        target.input = with_overrides(target.input.take(), &s.overrides, &what)?;
        let out = events
            .put_targets()
            .rule(s.name.clone())
            .event_bus_name(bus)
            .targets(target)
            .send()
            .await
            .map_err(|e| errors::describe("events:PutTargets", &what, e))?;
        // PutTargets answers 200 with the targets it could not write listed: not a success.
        if out.failed_entry_count() > 0 || !out.failed_entries().is_empty() {
            let reasons: Vec<String> = out
                .failed_entries()
                .iter()
                .map(|f| {
                    format!(
                        "target {}: {} ({})",
                        f.target_id().unwrap_or("?"),
                        f.error_message().unwrap_or("no message"),
                        f.error_code().unwrap_or("no code")
                    )
                })
                .collect();
            return Err(Error::Backend(format!(
                "events:PutTargets on {what} failed for {} target{}: {}",
                out.failed_entry_count().max(1),
                if out.failed_entry_count() > 1 {
                    "s"
                } else {
                    ""
                },
                if reasons.is_empty() {
                    "no reason given".to_owned()
                } else {
                    reasons.join("; ")
                }
            )));
        }
        Ok(())
    }

    async fn retarget_schedule(&self, s: &Schedule, arn: Option<String>) -> Result<()> {
        let what = label_of(s);
        let group = s.group.clone().unwrap_or_else(|| "default".to_owned());
        let scheduler = &self.clients.scheduler;
        let got = scheduler
            .get_schedule()
            .name(s.name.clone())
            .group_name(group.clone())
            .send()
            .await
            .map_err(|e| errors::describe("scheduler:GetSchedule", &what, e))?;
        let mut target = got
            .target()
            .cloned()
            .ok_or_else(|| Error::Backend(format!("{what}: the schedule has no target")))?;
        let Some(ecs) = target.ecs_parameters.as_mut() else {
            return Err(Error::Backend(format!(
                "{what}: the schedule does not run an ECS task"
            )));
        };
        if let Some(arn) = arn {
            ecs.task_definition_arn = arn;
        }
        target.input = with_overrides(target.input.take(), &s.overrides, &what)?;
        scheduler
            .update_schedule()
            .name(s.name.clone())
            .group_name(group)
            .set_schedule_expression(got.schedule_expression().map(str::to_owned))
            .set_schedule_expression_timezone(got.schedule_expression_timezone().map(str::to_owned))
            .set_start_date(got.start_date().cloned())
            .set_end_date(got.end_date().cloned())
            .set_description(got.description().map(str::to_owned))
            .set_state(got.state().cloned())
            .set_kms_key_arn(got.kms_key_arn().map(str::to_owned))
            .set_flexible_time_window(got.flexible_time_window().cloned())
            .set_action_after_completion(got.action_after_completion().cloned())
            .target(target)
            .send()
            .await
            .map_err(|e| errors::describe("scheduler:UpdateSchedule", &what, e))?;
        Ok(())
    }
}

/// A target's `Input` (ECS RunTask overrides, `{"containerOverrides": [{"name", "environment":
/// [{"name", "value"}]}]}`) with each variable `overrides` names set to its value there; the
/// input as it was when nothing changes. The input is never quoted in an error: it can hold
/// credentials.
fn with_overrides(
    input: Option<String>,
    overrides: &Overrides,
    what: &str,
) -> Result<Option<String>> {
    let Some(text) = input else {
        return Ok(None);
    };
    if overrides.is_empty() {
        return Ok(Some(text));
    }
    let mut json: Value = serde_json::from_str(&text).map_err(|e| {
        Error::Backend(format!(
            "{what}: its target input is not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let mut changed = false;
    for container in container_overrides_mut(&mut json).into_iter().flatten() {
        let name = field(container, "name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let Some(wanted) = overrides.get(&name) else {
            continue;
        };
        let env = field_mut(container, "environment").and_then(Value::as_array_mut);
        for pair in env.into_iter().flatten() {
            let Some(variable) = field(pair, "name").and_then(Value::as_str) else {
                continue;
            };
            let Some(value) = wanted.get(variable) else {
                continue;
            };
            if field(pair, "value").and_then(Value::as_str) != Some(value.as_str()) {
                if let Some(slot) = field_mut(pair, "value") {
                    *slot = Value::String(value.clone());
                    changed = true;
                }
            }
        }
    }
    Ok(Some(if changed {
        serde_json::to_string(&json).expect("JSON always serialises")
    } else {
        text
    }))
}

/// The container overrides of a target's `Input`: at its top, or under `overrides`, as
/// [`super::resources::overrides`] reads them.
pub(super) fn container_overrides(input: &Value) -> Option<&Vec<Value>> {
    field(input, "containerOverrides")
        .or_else(|| field(input, "overrides").and_then(|o| field(o, "containerOverrides")))
        .and_then(Value::as_array)
}

fn container_overrides_mut(input: &mut Value) -> Option<&mut Vec<Value>> {
    if field(input, "containerOverrides").is_some() {
        field_mut(input, "containerOverrides")
    } else {
        field_mut(input, "overrides").and_then(|o| field_mut(o, "containerOverrides"))
    }
    .and_then(Value::as_array_mut)
}

/// `key` of an object, in camelCase as ECS's RunTask takes it or in PascalCase.
pub(super) fn field<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    value.get(key).or_else(|| value.get(pascal(key)))
}

fn field_mut<'v>(value: &'v mut Value, key: &str) -> Option<&'v mut Value> {
    let key = if value.get(key).is_some() {
        key.to_owned()
    } else {
        pascal(key)
    };
    value.get_mut(key)
}

fn pascal(key: &str) -> String {
    let mut chars = key.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides(container: &str, var: &str, value: &str) -> Overrides {
        let mut o = Overrides::new();
        o.entry(container.into())
            .or_default()
            .insert(var.into(), value.into());
        o
    }

    #[test]
    fn only_the_named_variable_changes_in_the_input() {
        let input = r#"{"containerOverrides":[{"name":"app","environment":[{"name":"HOST","value":"old.mq"},{"name":"LOG","value":"INFO"}]}],"taskRoleArn":"r"}"#;
        let out = with_overrides(Some(input.into()), &overrides("app", "HOST", "new.mq"), "x")
            .unwrap()
            .unwrap();
        assert_eq!(out, input.replace("old.mq", "new.mq"));
        let same = with_overrides(Some(input.into()), &overrides("app", "HOST", "old.mq"), "x")
            .unwrap()
            .unwrap();
        assert_eq!(same, input, "unchanged input is kept as it was");
        let pascal = r#"{"ContainerOverrides":[{"Name":"app","Environment":[{"Name":"HOST","Value":"old.mq"}]}]}"#;
        let out = with_overrides(
            Some(pascal.into()),
            &overrides("app", "HOST", "new.mq"),
            "x",
        )
        .unwrap()
        .unwrap();
        assert_eq!(out, pascal.replace("old.mq", "new.mq"));
    }

    /// Overrides written under `overrides` are read (see `resources::overrides`), so they are
    /// written there too: a retargeted task must not keep the old host in them.
    #[test]
    fn overrides_nested_under_overrides_are_changed_where_they_were_read() {
        let input = r#"{"overrides":{"containerOverrides":[{"name":"app","environment":[{"name":"HOST","value":"old.mq"}]}]}}"#;
        let out = with_overrides(Some(input.into()), &overrides("app", "HOST", "new.mq"), "x")
            .unwrap()
            .unwrap();
        assert_eq!(out, input.replace("old.mq", "new.mq"));
        assert_eq!(
            super::super::resources::overrides(&out)["app"]["HOST"],
            "new.mq"
        );
    }

    #[test]
    fn an_input_that_is_not_json_is_an_error_that_does_not_quote_it() {
        let err = with_overrides(
            Some("amqps://u:secret@old.mq {".into()),
            &overrides("app", "HOST", "new.mq"),
            "rule r (bus default)",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("rule r (bus default)"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }
}
