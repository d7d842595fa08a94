//! Scheduled tasks in a run: which rule targets and Scheduler schedules a plan's retargets
//! change against the state now, and the step that points one at another revision, journalled
//! like the rest (`retarget` on apply, `retarget_rollback` on rollback).

use std::time::SystemTime;

use serde::Serialize;

use super::{Report, Run, Schedule, Skipped};
use crate::error::Result;
use crate::journal::{Entry, Outcome, ScheduleRef, Step};
use crate::model::World;
use crate::plan::Plan;
use crate::retarget::Overrides;

/// A scheduled task (rule target or Scheduler schedule) to point at another revision.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleMove {
    /// The scheduled task as the state showed it.
    pub task: crate::model::Schedule,
    /// The service whose revision it takes on apply, or that goes back after it on rollback.
    pub cluster: String,
    pub service: String,
    /// The wave it belongs to; `None`: before the first wave.
    pub wave: Option<usize>,
    /// The revision it is to pin; `None`: the one this run moves the service to (apply).
    pub to: Option<String>,
    /// All of its env overrides afterwards (values as they are: never printed).
    pub overrides: Overrides,
}

impl ScheduleMove {
    /// `cluster/service`.
    #[must_use]
    pub fn service_id(&self) -> String {
        format!("{}/{}", self.cluster, self.service)
    }
}

/// A scheduled task that now pins another revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retargeted {
    /// `rule NAME (bus B)` or `schedule NAME (group G)`.
    pub schedule: String,
    pub wave: Option<usize>,
    pub from: String,
    pub to: String,
}

/// The plan's retargets against `world` (the state now): each scheduled task still pinning
/// the revision the plan saw gets its service's moved revision and its overrides rewritten as
/// the service's values are. One that is gone, or pins another revision now, is left alone.
pub(super) fn retargets_of(
    plan: &Plan,
    world: &World,
    skipped: &mut Vec<Skipped>,
) -> Vec<ScheduleMove> {
    let mut out = Vec::new();
    for r in &plan.retargets {
        let Some(task) = world.schedules.iter().find(|s| r.is(s)) else {
            skipped.push(Skipped {
                service: r.label(),
                reason: "it no longer exists".into(),
            });
            continue;
        };
        if task.task_definition != r.from {
            skipped.push(Skipped {
                service: r.label(),
                reason: format!(
                    "it starts {} now, not {} as when the state was read: left alone",
                    task.task_definition, r.from
                ),
            });
            continue;
        }
        let Some(change) = plan.changes.iter().find(|c| c.id() == r.to_service) else {
            continue;
        };
        out.push(ScheduleMove {
            task: task.clone(),
            cluster: change.cluster.clone(),
            service: change.service.clone(),
            wave: r.wave,
            to: r.to.clone(),
            overrides: crate::retarget::moved_overrides(
                &task.overrides,
                &plan.brokers,
                change.to,
                plan.scope.broker_env.as_deref(),
            ),
        });
    }
    out
}

impl Run<'_> {
    /// Apply: points the scheduled tasks of wave `number` whose services' rollouts completed
    /// in this wave at the revision each service reached.
    pub(super) fn retarget_moved(
        &mut self,
        schedule: &Schedule,
        number: usize,
        report: &mut Report,
    ) -> Result<()> {
        let reached: Vec<(String, String)> = report
            .moved
            .iter()
            .filter(|m| m.wave == number)
            .map(|m| (m.service.clone(), m.to.clone()))
            .collect();
        for sm in schedule.retargets.iter().filter(|r| r.wave == Some(number)) {
            let id = sm.service_id();
            let to = sm.to.clone().or_else(|| {
                reached
                    .iter()
                    .find(|(s, _)| *s == id)
                    .map(|(_, t)| t.clone())
            });
            if let Some(to) = to {
                self.retarget(sm, &to, schedule.step, report)?;
            }
        }
        Ok(())
    }

    /// Points `sm`'s scheduled task at `to` with its new overrides, journalled as `started`
    /// before and with its result after (step `retarget` on apply, `retarget_rollback` on
    /// rollback; overrides masked). One that pins it already is recorded as done, unchanged.
    pub(super) fn retarget(
        &mut self,
        sm: &ScheduleMove,
        to: &str,
        step: Step,
        report: &mut Report,
    ) -> Result<()> {
        let step = if step == Step::Update {
            Step::Retarget
        } else {
            Step::RetargetRollback
        };
        let mut after = sm.task.clone();
        after.task_definition = to.to_owned();
        after.overrides.clone_from(&sm.overrides);
        let (before_masked, after_masked) =
            crate::retarget::masked_difference(&sm.task.overrides, &after.overrides);
        let label = crate::retarget::label_of(&sm.task);
        let start = SystemTime::now();
        let entry = |result: Outcome| {
            let mut e = Entry::new(self.migration, step, start, result)
                .wave(sm.wave)
                .service(&sm.cluster, &sm.service)
                .task_definitions(&sm.task.task_definition, to);
            e.schedule = Some(ScheduleRef::of(&sm.task));
            if !after_masked.is_empty() {
                e.overrides_before = Some(before_masked.clone());
                e.overrides_after = Some(after_masked.clone());
            }
            e
        };
        let done = Retargeted {
            schedule: label.clone(),
            wave: sm.wave,
            from: sm.task.task_definition.clone(),
            to: to.to_owned(),
        };
        if after == sm.task {
            self.journal
                .append(&entry(Outcome::Ok).detail("it pins that revision already"))?;
            report.retargeted.push(done);
            return Ok(());
        }
        self.journal.append(&entry(Outcome::Started))?;
        if let Err(e) = self.backend.update_schedule(&after) {
            self.journal
                .append(&entry(Outcome::Failed).detail(e.to_string()))?;
            return Err(e);
        }
        self.journal.append(&entry(Outcome::Ok))?;
        self.progress
            .line(&format!("  {label}: {} -> {to}", sm.task.task_definition));
        report.retargeted.push(done);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::memory::chain::{self, Start};
    use crate::journal::{Outcome, Step};

    /// A rule target and a Scheduler schedule pinning a revision a move replaces take the
    /// moved revision once their service's rollout completed, before the next wave, with their
    /// overrides rewritten; a bare family and an unrelated revision stay as they were.
    #[test]
    fn apply_retargets_pinned_schedules_after_their_services_rollout() {
        let end = Start::fresh().after(chain::apply);
        let world = end.backend.world();
        let pinned = |name: &str| {
            world
                .schedules
                .iter()
                .find(|s| s.name == name)
                .unwrap()
                .clone()
        };
        let m1 = pinned("m1-nightly");
        assert_eq!(m1.task_definition, "m1:2");
        assert_eq!(m1.overrides["app"]["SPRING_RABBITMQ_HOST"], "new.mq.test");
        assert_eq!(m1.overrides["app"]["MODE"], "batch");
        let s2 = pinned("s2-hourly");
        assert_eq!(s2.task_definition, "s2:2");
        assert_eq!(
            s2.overrides["app"]["RABBIT_URL"],
            "amqps://job:pa/ss@new.mq.test:5671"
        );
        assert_eq!(pinned("p1-any").task_definition, "p1");
        assert_eq!(pinned("other-daily").task_definition, "other:1");

        assert!(!end.journal.contains("pa/ss"), "{}", end.journal);
        let entries: Vec<crate::journal::Entry> = end
            .journal
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let at =
            |what: &dyn Fn(&crate::journal::Entry) -> bool| entries.iter().position(what).unwrap();
        let m1_rolled_out = at(&|e| {
            e.step == Step::Rollout && e.service.as_deref() == Some("m1") && e.result == Outcome::Ok
        });
        let m1_retargeted = at(&|e| {
            e.step == Step::Retarget
                && e.result == Outcome::Ok
                && e.schedule.as_ref().is_some_and(|s| s.name == "m1-nightly")
        });
        let wave_3 = at(&|e| e.step == Step::Update && e.wave == Some(3));
        assert!(m1_rolled_out < m1_retargeted && m1_retargeted < wave_3);
        let started = &entries[m1_retargeted - 1];
        assert_eq!(started.result, Outcome::Started);
        assert_eq!(started.from_task_definition.as_deref(), Some("m1:1"));
        assert_eq!(started.to_task_definition.as_deref(), Some("m1:2"));
        assert_eq!(
            started.overrides_before.as_ref().unwrap()["app"]["SPRING_RABBITMQ_HOST"],
            "old.mq.test"
        );
    }
}
