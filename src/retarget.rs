//! Scheduled tasks that pin a revision a move replaces: an EventBridge rule's ECS target or a
//! Scheduler schedule that starts `family:revision` keeps starting the old broker's revision
//! after its service moved, unless apply points it at the moved revision too.
//!
//! [`retargets`] (pure) says which scheduled tasks apply points at which service's moved
//! revision, in that service's wave, with their env overrides rewritten as the service's values
//! are. A schedule that names a bare family follows the family's latest revision, which apply's
//! registration changes anyway: it is not retargeted, and [`notes`] says so.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::config::BrokerAlias;
use crate::discovery::{self, mask_password};
use crate::model::{Schedule, ScheduleKind, TaskDefinition, World};
use crate::plan::{Action, Brokers, Change};

/// Env overrides of a scheduled task: container → variable → value.
pub type Overrides = IndexMap<String, IndexMap<String, String>>;

/// A scheduled task apply points at the revision registered for a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retarget {
    /// `rule` (an EventBridge rule's target) or `schedule` (EventBridge Scheduler).
    pub kind: ScheduleKind,
    pub name: String,
    /// A rule's event bus (absent: `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bus: Option<String>,
    /// A schedule's group (absent: `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// A rule's target id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// The cluster it runs its task in.
    pub cluster: String,
    /// The `family:revision` it pins now.
    pub from: String,
    /// `cluster/service` whose moved revision it takes.
    pub to_service: String,
    /// That service's wave; `None` when the service has moved already (an interrupted apply
    /// run again): then it is retargeted before the first wave.
    pub wave: Option<usize>,
    /// The revision it takes, where the plan knows it already (the service has moved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The overrides that change, before (passwords masked).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub overrides_before: Overrides,
    /// The same overrides after (passwords masked).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub overrides_after: Overrides,
}

impl Retarget {
    /// How people name it: `rule esr-nightly (bus default)`, `schedule x (group default)`.
    #[must_use]
    pub fn label(&self) -> String {
        label(
            self.kind,
            &self.name,
            self.bus.as_deref(),
            self.group.as_deref(),
            self.target.as_deref(),
        )
    }

    /// Whether `schedule` is the scheduled task this retarget changes.
    #[must_use]
    pub fn is(&self, schedule: &Schedule) -> bool {
        self.kind == schedule.kind
            && self.name == schedule.name
            && self.cluster == schedule.cluster
            && bus(self.bus.as_deref()) == bus(schedule.bus.as_deref())
            && bus(self.group.as_deref()) == bus(schedule.group.as_deref())
            && self.target == schedule.target
    }
}

/// `rule NAME (bus B[, target T])` or `schedule NAME (group G)`.
#[must_use]
pub fn label(
    kind: ScheduleKind,
    name: &str,
    bus_name: Option<&str>,
    group: Option<&str>,
    target: Option<&str>,
) -> String {
    match kind {
        ScheduleKind::Rule => match target {
            Some(t) => format!("rule {name} (bus {}, target {t})", bus(bus_name)),
            None => format!("rule {name} (bus {})", bus(bus_name)),
        },
        ScheduleKind::Schedule => format!("schedule {name} (group {})", bus(group)),
    }
}

/// [`label`] of a scheduled task.
#[must_use]
pub fn label_of(s: &Schedule) -> String {
    label(
        s.kind,
        &s.name,
        s.bus.as_deref(),
        s.group.as_deref(),
        s.target.as_deref(),
    )
}

/// A bus or group name, `default` when absent.
fn bus(name: Option<&str>) -> &str {
    name.unwrap_or("default")
}

/// Whether `a` and `b` are the same scheduled task (kind, bus or group, name, target, cluster).
#[must_use]
pub fn same_schedule(a: &Schedule, b: &Schedule) -> bool {
    a.kind == b.kind
        && a.name == b.name
        && a.cluster == b.cluster
        && bus(a.bus.as_deref()) == bus(b.bus.as_deref())
        && bus(a.group.as_deref()) == bus(b.group.as_deref())
        && a.target == b.target
}

/// The scheduled task of `world` that is `wanted`.
#[must_use]
pub fn find<'w>(world: &'w World, wanted: &Schedule) -> Option<&'w Schedule> {
    world.schedules.iter().find(|s| same_schedule(s, wanted))
}

/// The same, to change it.
pub fn find_mut<'w>(world: &'w mut World, wanted: &Schedule) -> Option<&'w mut Schedule> {
    world
        .schedules
        .iter_mut()
        .find(|s| same_schedule(s, wanted))
}

/// Whether the plan's `retargets` move `schedule` (what is retargeted is not unmanaged).
#[must_use]
pub fn is_retargeted(retargets: &[Retarget], schedule: &Schedule) -> bool {
    retargets.iter().any(|r| r.is(schedule))
}

/// `overrides` with each value that names the broker `to.other()` rewritten for the broker
/// `to`, as a moved service's values are (`only` limits the variables, as `broker_env` does).
/// Raw values: for the executor, never for output.
#[must_use]
pub fn moved_overrides(
    overrides: &Overrides,
    brokers: &Brokers,
    to: BrokerAlias,
    only: Option<&[String]>,
) -> Overrides {
    let mut out = overrides.clone();
    for (name, value) in out.values_mut().flat_map(|vars| vars.iter_mut()) {
        if only.is_some_and(|only| !only.contains(name)) {
            continue;
        }
        if let Some(rewritten) = discovery::rewrite(value, brokers.get(to.other()), brokers.get(to))
        {
            *value = rewritten;
        }
    }
    out
}

/// The entries of `after` that differ from `before`, each side masked: `(before, after)`.
#[must_use]
pub fn masked_difference(before: &Overrides, after: &Overrides) -> (Overrides, Overrides) {
    let mut was = Overrides::new();
    let mut now = Overrides::new();
    for (container, vars) in after {
        for (name, value) in vars {
            let old = before.get(container).and_then(|v| v.get(name));
            if old != Some(value) {
                if let Some(old) = old {
                    was.entry(container.clone())
                        .or_default()
                        .insert(name.clone(), mask_password(old));
                }
                now.entry(container.clone())
                    .or_default()
                    .insert(name.clone(), mask_password(value));
            }
        }
    }
    (was, now)
}

/// The scheduled tasks of `world` that apply retargets for the plan's `changes`: each that pins
/// a `family:revision` that a planned `update` moves a service from (that revision, or one of
/// the family with the same content) takes the revision apply registers for that service, in
/// its wave. One that pins a revision with the content of a service's revision from before a
/// move that has already happened (an interrupted apply, run again) takes the revision that
/// service runs now, before the first wave. Sorted by wave (those without first), then label.
#[must_use]
pub fn retargets(
    world: &World,
    changes: &[Change],
    brokers: &Brokers,
    only: Option<&[String]>,
) -> Vec<Retarget> {
    let current = |c: &Change| -> Option<&TaskDefinition> {
        let service = world.service(&c.cluster, &c.service)?;
        world.task_definition(&service.task_definition)
    };
    let mut out = Vec::new();
    for schedule in &world.schedules {
        let Some(pinned) = pinned(world, schedule) else {
            continue;
        };
        let moving = changes
            .iter()
            .filter(|c| c.action == Action::Update)
            .find(|c| {
                current(c).is_some_and(|td| {
                    td.key() == pinned.key() || crate::moves::same_content(td, pinned)
                })
            });
        let (change, wave, to) = if let Some(c) = moving {
            (c, c.wave, None)
        } else {
            let moved = changes
                .iter()
                .filter(|c| c.action == Action::Noop)
                .find_map(|c| {
                    let now = current(c)?;
                    if now.key() == pinned.key() || now.family != pinned.family {
                        return None;
                    }
                    let wanted = crate::moves::moved(world, pinned, c, brokers, only)?;
                    crate::moves::same_content(now, &wanted).then(|| (c, now.key()))
                });
            match moved {
                Some((c, key)) => (c, None, Some(key)),
                None => continue,
            }
        };
        let after = moved_overrides(&schedule.overrides, brokers, change.to, only);
        let (overrides_before, overrides_after) = masked_difference(&schedule.overrides, &after);
        out.push(Retarget {
            kind: schedule.kind,
            name: schedule.name.clone(),
            bus: schedule.bus.clone(),
            group: schedule.group.clone(),
            target: schedule.target.clone(),
            arn: schedule.arn.clone(),
            cluster: schedule.cluster.clone(),
            from: schedule.task_definition.clone(),
            to_service: change.id(),
            wave,
            to,
            overrides_before,
            overrides_after,
        });
    }
    out.sort_by_key(|a| (a.wave, a.label()));
    out
}

/// The revision `schedule` pins, when it pins one (not a bare family) that `world` has.
fn pinned<'w>(world: &'w World, schedule: &Schedule) -> Option<&'w TaskDefinition> {
    if !schedule.task_definition.contains(':') {
        return None;
    }
    world.task_definition(&schedule.task_definition)
}

/// Notes for the plan: each scheduled task that names a bare family whose service moves follows
/// the family's latest revision, which apply's registration makes the moved one (and which a
/// rollback leaves the latest).
#[must_use]
pub fn notes(world: &World, changes: &[Change]) -> Vec<String> {
    world
        .schedules
        .iter()
        .filter_map(|s| {
            let service = follows_a_move(changes, s)?;
            Some(format!(
                "{} starts the latest revision of {}: it follows the revision apply registers for {service}, so it is not retargeted (after a rollback it still starts that latest revision)",
                label_of(s),
                s.task_definition
            ))
        })
        .collect()
}

/// The service (`cluster/service`) an `update` of `changes` moves whose family `schedule`
/// names bare: such a schedule starts the family's latest revision, which is the one apply
/// registers for that service.
#[must_use]
pub fn follows_a_move(changes: &[Change], schedule: &Schedule) -> Option<String> {
    if schedule.task_definition.contains(':') {
        return None;
    }
    changes
        .iter()
        .filter(|c| c.action == Action::Update)
        // The last of several that share the family, as the plan lists them.
        .rfind(|c| {
            c.task_definition
                .rsplit_once(':')
                .is_some_and(|(family, _)| family == schedule.task_definition)
        })
        .map(Change::id)
}

/// Fingerprint entries for the scheduled tasks `retargets` change: `schedule:LABEL` → a
/// digest of the revision it pins and its overrides (passwords masked: a saved plan holds no
/// hash of a credential).
#[must_use]
pub fn fingerprint_entries(world: &World, retargets: &[Retarget]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for r in retargets {
        let Some(s) = world.schedules.iter().find(|s| r.is(s)) else {
            continue;
        };
        let masked: Overrides = s
            .overrides
            .iter()
            .map(|(c, vars)| {
                (
                    c.clone(),
                    vars.iter()
                        .map(|(k, v)| (k.clone(), mask_password(v)))
                        .collect(),
                )
            })
            .collect();
        out.insert(
            format!("schedule:{}", r.label()),
            crate::plan::digest(&(&s.task_definition, &masked)),
        );
    }
    out
}

/// The value a rollback puts back: `masked_before` (what the journal recorded, passwords
/// masked) with the password of `current` (the value apply wrote, which kept it). `None` when
/// it cannot be told exactly.
#[must_use]
pub fn restored(current: &str, masked_before: &str, brokers: &Brokers) -> Option<String> {
    // Nothing was masked: the journal holds the value itself.
    if !masked_before.contains("****") {
        return Some(masked_before.to_owned());
    }
    // The reverse rewrite (of a move either way), when it gives back what was recorded.
    for to in [BrokerAlias::New, BrokerAlias::Old] {
        if let Some(back) = discovery::rewrite(current, brokers.get(to), brokers.get(to.other())) {
            if mask_password(&back) == masked_before {
                return Some(back);
            }
        }
    }
    // The recorded value with the one password of the current value put back.
    let masked_now = mask_password(current);
    let prefix = common_prefix(current, &masked_now);
    let suffix = common_suffix(&current[prefix..], &masked_now[prefix..]);
    let password = &current[prefix..current.len() - suffix];
    if &masked_now[prefix..masked_now.len() - suffix] == "****"
        && masked_before.matches("****").count() == 1
    {
        let back = masked_before.replacen("****", password, 1);
        if mask_password(&back) == masked_before {
            return Some(back);
        }
    }
    None
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or_else(|| a.len().min(b.len()), |((i, _), _)| i)
}

fn common_suffix(a: &str, b: &str) -> usize {
    a.chars()
        .rev()
        .zip(b.chars().rev())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x.len_utf8())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::chain;
    use crate::discovery::ResolvedBroker;

    fn schedule<'w>(world: &'w World, name: &str) -> &'w Schedule {
        world.schedules.iter().find(|s| s.name == name).unwrap()
    }

    #[test]
    fn pinned_revisions_a_move_replaces_are_retargeted_in_their_services_wave() {
        let world = chain::world();
        let plan = crate::plan::make(&chain::config(), &world).unwrap();
        let found: Vec<(String, Option<usize>, &str, &str)> = plan
            .retargets
            .iter()
            .map(|r| (r.label(), r.wave, r.from.as_str(), r.to_service.as_str()))
            .collect();
        assert_eq!(
            found,
            vec![
                (
                    "rule m1-nightly (bus jobs, target t1)".to_owned(),
                    Some(2),
                    "m1:1",
                    "c/m1"
                ),
                (
                    "schedule s2-hourly (group ops)".to_owned(),
                    Some(3),
                    "s2:1",
                    "c/s2"
                ),
            ]
        );
        let m1 = &plan.retargets[0];
        assert_eq!(
            m1.overrides_after["app"].keys().collect::<Vec<_>>(),
            vec!["SPRING_RABBITMQ_HOST"],
            "only what names the old broker changes"
        );
        let s2 = &plan.retargets[1];
        assert_eq!(
            s2.overrides_before["app"]["RABBIT_URL"],
            "amqps://job:****@old.mq.test:5671"
        );
        assert_eq!(
            s2.overrides_after["app"]["RABBIT_URL"],
            "amqps://job:****@new.mq.test:5671"
        );
        let json = serde_json::to_string(&plan).unwrap();
        assert!(!json.contains("pa/ss"), "no password in the plan: {json}");

        assert!(is_retargeted(
            &plan.retargets,
            schedule(&world, "m1-nightly")
        ));
        assert!(is_retargeted(
            &plan.retargets,
            schedule(&world, "s2-hourly")
        ));
        assert!(!is_retargeted(&plan.retargets, schedule(&world, "p1-any")));
        assert!(!is_retargeted(
            &plan.retargets,
            schedule(&world, "other-daily")
        ));
        assert_eq!(plan.notes.len(), 1, "{:?}", plan.notes);
        assert!(
            plan.notes[0].starts_with("rule p1-any (bus default) starts the latest revision of p1"),
            "{}",
            plan.notes[0]
        );
        assert!(plan
            .fingerprint
            .entries
            .contains_key("schedule:rule m1-nightly (bus jobs, target t1)"));
    }

    #[test]
    fn a_revision_of_the_family_with_the_same_content_is_retargeted_too() {
        let mut world = chain::world();
        let mut copy = world.task_definition("m1:1").unwrap().clone();
        copy.revision = 9;
        world.task_definitions.push(copy);
        world.schedules[0].task_definition = "m1:9".into();
        let plan = crate::plan::make(&chain::config(), &world).unwrap();
        assert_eq!(plan.retargets[0].from, "m1:9");
        assert_eq!(plan.retargets[0].to_service, "c/m1");
    }

    #[test]
    fn a_schedule_left_behind_by_a_service_that_moved_already_goes_before_the_first_wave() {
        let applied = chain::Start::fresh().after(chain::apply);
        let mut world = applied.backend.world().clone();
        world.schedules = chain::world().schedules;
        let plan = crate::plan::make(&chain::config(), &world).unwrap();
        let found: Vec<(Option<usize>, Option<&str>)> = plan
            .retargets
            .iter()
            .map(|r| (r.wave, r.to.as_deref()))
            .collect();
        assert_eq!(found, vec![(None, Some("m1:2")), (None, Some("s2:2"))]);
    }

    fn broker(alias: BrokerAlias, host: &str, aliases: &[&str]) -> ResolvedBroker {
        let mut hosts = vec![host.to_owned()];
        hosts.extend(aliases.iter().map(|a| (*a).to_owned()));
        ResolvedBroker {
            alias,
            id: host.into(),
            name: None,
            endpoints: vec![format!("amqps://{host}:5671")],
            hosts,
            amqp_url_env: None,
            management_url_env: None,
            upstream_url_env: None,
            console_url: None,
        }
    }

    #[test]
    fn a_rollback_restores_the_recorded_value_with_the_password_apply_kept() {
        let brokers = Brokers {
            old: broker(BrokerAlias::Old, "old.mq", &["rabbit.internal"]),
            new: broker(BrokerAlias::New, "new.mq", &[]),
        };
        let cases = [
            ("old.mq", "new.mq"),
            ("amqps://u:pa/ss@old.mq:5671", "amqps://u:pa/ss@new.mq:5671"),
            // An alias of the old broker: the reverse rewrite would give its primary host.
            (
                "amqps://u:p#w@rabbit.internal:5671",
                "amqps://u:p#w@new.mq:5671",
            ),
        ];
        for (before, current) in cases {
            let masked = mask_password(before);
            assert_eq!(
                restored(current, &masked, &brokers).as_deref(),
                Some(before),
                "{before}"
            );
        }
        assert_eq!(
            restored(
                "amqps://a:x@new.mq,amqps://b:y@new.mq",
                "amqps://a:****@rabbit.internal,amqps://b:****@rabbit.internal",
                &brokers
            ),
            None,
            "two passwords and an alias cannot be told apart: refused, not guessed"
        );
    }
}
