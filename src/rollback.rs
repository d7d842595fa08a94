//! The way back during the migration window: every service `apply` moved goes back to the
//! revision it ran before (the same revision, not a copy), in the same order rules as a move.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::config::{Config, Strategy};
use crate::error::{Error, Result};
use crate::executor::{Move, Schedule, ScheduleMove, Skipped, Target};
use crate::graph::{Flow, Participant};
use crate::journal::{Entry, Outcome, ScheduleRef, Step};
use crate::model::World;
use crate::plan::{Brokers, Drain};

/// What the journal says apply last moved each service between: (from, to) of its last
/// `update` that was made or only started. Whether it still needs undoing is for the real state
/// to say (a rollback whose rollout failed left the service where apply put it).
#[must_use]
pub fn moved_by_apply(entries: &[Entry]) -> BTreeMap<(String, String), (String, String)> {
    crate::journal::last_by_service(entries, |e| {
        e.step == Step::Update && matches!(e.result, Outcome::Ok | Outcome::Started)
    })
    .into_iter()
    .filter_map(|(key, e)| {
        Some((
            key,
            (
                e.from_task_definition.clone()?,
                e.to_task_definition.clone()?,
            ),
        ))
    })
    .collect()
}

/// What the journal says apply last retargeted each scheduled task to: its last `retarget`
/// that was made, only started, or failed (a call that failed may have been made: the real
/// state says whether it was).
#[must_use]
pub fn retargeted_by_apply(entries: &[Entry]) -> BTreeMap<ScheduleRef, &Entry> {
    let mut last = BTreeMap::new();
    for e in entries.iter().filter(|e| {
        e.step == Step::Retarget
            && matches!(e.result, Outcome::Ok | Outcome::Started | Outcome::Failed)
            && e.from_task_definition != e.to_task_definition
    }) {
        if let Some(schedule) = &e.schedule {
            last.insert(schedule.clone(), e);
        }
    }
    last
}

/// The scheduled tasks to put back on what they pinned before apply retargeted them, with
/// their overrides as they were: each in the wave of the service that goes back after it
/// (`waves`, by `cluster/service`), or before the first wave. One already back is left out;
/// one changed since apply, gone, or whose overrides cannot be restored exactly is skipped.
fn put_backs(
    world: &World,
    brokers: &Brokers,
    entries: &[Entry],
    waves: &BTreeMap<String, usize>,
    skipped: &mut Vec<Skipped>,
) -> Vec<ScheduleMove> {
    let mut out = Vec::new();
    for (reference, e) in retargeted_by_apply(entries) {
        let (Some(from), Some(to)) = (&e.from_task_definition, &e.to_task_definition) else {
            continue;
        };
        let label = crate::retarget::label(
            reference.kind,
            &reference.name,
            reference.bus.as_deref(),
            reference.group.as_deref(),
            reference.target.as_deref(),
        );
        let Some(task) = world.schedules.iter().find(|s| reference.is(s)) else {
            skipped.push(Skipped {
                service: label,
                reason: "it no longer exists".into(),
            });
            continue;
        };
        if &task.task_definition == from {
            continue;
        }
        if &task.task_definition != to {
            skipped.push(Skipped {
                service: label,
                reason: format!(
                    "it was changed since apply (apply set {to}, it starts {}): not touched",
                    task.task_definition
                ),
            });
            continue;
        }
        let mut overrides = task.overrides.clone();
        let mut lost = Vec::new();
        for (container, vars) in e.overrides_before.iter().flatten() {
            for (name, masked) in vars {
                let Some(value) = overrides.get_mut(container).and_then(|v| v.get_mut(name)) else {
                    continue;
                };
                match crate::retarget::restored(value, masked, brokers) {
                    Some(back) => *value = back,
                    None => lost.push(format!("{container}/{name}")),
                }
            }
        }
        if !lost.is_empty() {
            skipped.push(Skipped {
                service: label,
                reason: format!(
                    "its override {} cannot be restored exactly from the journal: put it back by hand",
                    lost.join(", ")
                ),
            });
            continue;
        }
        let (cluster, service) = (
            e.cluster.clone().unwrap_or_default(),
            e.service.clone().unwrap_or_default(),
        );
        out.push(ScheduleMove {
            task: task.clone(),
            wave: waves.get(&format!("{cluster}/{service}")).copied(),
            cluster,
            service,
            to: Some(from.clone()),
            overrides,
        });
    }
    out
}

/// The rollback of what the journal `entries` record, against `world` (the state now).
///
/// # Errors
/// [`Error::Refused`] once the old broker is gone: there is nothing to go back to.
pub fn schedule(
    config: &Config,
    world: &World,
    brokers: &Brokers,
    entries: &[Entry],
) -> Result<(Schedule, Vec<Skipped>)> {
    match brokers.old.in_world(world) {
        Some(b) if !b.is_deleted() => {}
        Some(b) => {
            return Err(Error::Refused(format!(
                "the old broker {} is {}: there is nothing to roll back to",
                brokers.old.id, b.state
            )))
        }
        None => {
            return Err(Error::Refused(format!(
                "the old broker {} no longer exists: there is nothing to roll back to",
                brokers.old.id
            )))
        }
    }
    let mut skipped = Vec::new();
    let mut going_back: BTreeMap<String, (String, String, String, String)> = BTreeMap::new();
    for ((cluster, service), (from, to)) in moved_by_apply(entries) {
        let id = format!("{cluster}/{service}");
        let Some(current) = world.service(&cluster, &service) else {
            skipped.push(Skipped {
                service: id,
                reason: "the service no longer exists".into(),
            });
            continue;
        };
        if current.task_definition == from {
            continue;
        }
        if current.task_definition != to {
            skipped.push(Skipped {
                service: id,
                reason: format!(
                    "its task definition was changed since apply (apply set {to}, it runs {}): not touched",
                    current.task_definition
                ),
            });
            continue;
        }
        match world.task_definition(&from) {
            Some(td) if td.is_active() => {}
            _ => {
                skipped.push(Skipped {
                    service: id,
                    reason: format!(
                        "its previous revision {from} is no longer active: not touched"
                    ),
                });
                continue;
            }
        }
        going_back.insert(id, (cluster, service, from, to));
    }

    // Order: the same rules as a move, publishers first.
    let mut participants: Vec<Participant> = config
        .services
        .iter()
        .map(|d| Participant {
            id: d.id(),
            moving: going_back.contains_key(&d.id()),
            publishes: Cow::Borrowed(&d.publishes),
            consumes: Cow::Borrowed(&d.consumes),
        })
        .collect();
    for id in going_back.keys() {
        if !participants.iter().any(|p| &p.id == id) {
            participants.push(Participant {
                id: id.clone(),
                moving: true,
                publishes: Cow::Borrowed(&[]),
                consumes: Cow::Borrowed(&[]),
            });
        }
    }
    let bindings = crate::plan::bindings(world, brokers);
    let flow = Flow::new(&participants, &bindings);
    let order = flow.waves(Strategy::Drain);
    let mut waves = Vec::new();
    let mut drains = Vec::new();
    for (i, ids) in order.waves.iter().enumerate() {
        let mut wave = Vec::new();
        for id in ids {
            let (cluster, service, from, to) = &going_back[id];
            wave.push(Move {
                cluster: cluster.clone(),
                service: service.clone(),
                wave: i + 1,
                from: to.clone(),
                target: Target::Existing(from.clone()),
            });
            // Before a consumer goes back, its queues drain on the broker it leaves.
            if let Some(decl) = config.declared(cluster, service) {
                for queue in &decl.consumes {
                    drains.push(Drain {
                        wave: Some(i + 1),
                        broker: decl.broker,
                        vhost: brokers
                            .get(decl.broker)
                            .in_world(world)
                            .and_then(|b| b.queue(queue))
                            .map_or_else(crate::model::default_vhost, |q| q.vhost.clone()),
                        queue: queue.clone(),
                    });
                }
            }
        }
        waves.push(wave);
    }
    drains.sort();
    drains.dedup();
    // The queues a cycle's services consume drain before they go back together, while the
    // others of the cycle still publish to them there: what those publish in between is
    // shovelled back after the wave, as apply does.
    let members = going_back
        .iter()
        .filter_map(|(id, (cluster, service, _, _))| {
            let decl = config.declared(cluster, service)?;
            Some((id.clone(), order.wave_of(id), decl.consumes.as_slice()))
        });
    let leftovers = crate::plan::cycle_leftovers(&drains, &order.cycles, members);
    let wave_of: BTreeMap<String, usize> = order
        .waves
        .iter()
        .enumerate()
        .flat_map(|(i, ids)| ids.iter().map(move |id| (id.clone(), i + 1)))
        .collect();
    let retargets = put_backs(world, brokers, entries, &wave_of, &mut skipped);
    Ok((
        Schedule {
            migration: config.migration.name.clone(),
            step: Step::Rollback,
            waves,
            drains,
            in_flight: Vec::new(),
            retargets,
            // Rollback checks nothing after a wave.
            checks: Vec::new(),
            publishers: Vec::new(),
            leftovers,
            // Rollback never deletes what apply copied to the new broker, nor creates anything.
            topology: Vec::new(),
            gates: std::collections::BTreeMap::new(),
            federation: None,
            // What apply declared for federation goes: a queue's policy before the queue
            // drains on the new broker, the rest after the last wave.
            undeclare: crate::executor::declared_by_apply(entries),
        },
        skipped,
    ))
}

#[cfg(test)]
mod tests {
    use crate::backend::memory::chain::{self, Start, MOVING};

    #[test]
    fn an_uninterrupted_rollback_puts_every_service_back_and_drains_the_new_broker() {
        let end = Start::fresh().after(chain::apply).after(chain::rollback);
        let placement = chain::placement(end.backend.world());
        for name in MOVING {
            assert_eq!(placement[&format!("c/{name}")], format!("{name}:1"));
            assert_eq!(
                chain::revisions(end.backend.world())[name],
                vec![1, 2],
                "the revision apply registered is kept, and no other"
            );
        }
        for queue in end.backend.world().brokers[1].queues.as_ref().unwrap() {
            assert_eq!(
                queue.messages, 0,
                "{} drained on the new broker",
                queue.name
            );
        }
    }

    /// Rollback puts every scheduled task apply retargeted back on its revision and overrides,
    /// exactly as they were, before the service it follows goes back.
    #[test]
    fn rollback_puts_retargeted_schedules_back_before_their_services() {
        use crate::journal::{Entry, Step};
        let end = Start::fresh().after(chain::apply).after(chain::rollback);
        assert_eq!(
            end.backend.world().schedules,
            chain::world().schedules,
            "back as they were"
        );
        assert!(!end.journal.contains("pa/ss"), "{}", end.journal);
        let entries: Vec<Entry> = end
            .journal
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for (schedule, service) in [("m1-nightly", "m1"), ("s2-hourly", "s2")] {
            let back = entries
                .iter()
                .position(|e| {
                    e.step == Step::RetargetRollback
                        && e.schedule.as_ref().is_some_and(|s| s.name == schedule)
                })
                .unwrap_or_else(|| panic!("{schedule} was not put back"));
            let service_back = entries
                .iter()
                .position(|e| e.step == Step::Rollback && e.service.as_deref() == Some(service))
                .unwrap();
            assert!(back < service_back, "{schedule} goes back before {service}");
        }
        let again = end.after(chain::rollback);
        assert_eq!(
            again.journal, end.journal,
            "a second rollback has nothing to do"
        );
    }

    /// A scheduled task someone pointed elsewhere since apply is not put back, and the
    /// rollback says so; the others still are.
    #[test]
    fn a_schedule_changed_since_apply_is_left_alone_and_said_so() {
        let applied = Start::fresh().after(chain::apply);
        let entries: Vec<crate::journal::Entry> = applied
            .journal
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut world = applied.backend.world().clone();
        for s in &mut world.schedules {
            if s.name == "m1-nightly" {
                s.task_definition = "other:1".into();
            }
        }
        let config = chain::config();
        let [old, new] = crate::discovery::resolve_brokers(&config, &world);
        let brokers = crate::plan::Brokers { old, new };
        let (schedule, skipped) = super::schedule(&config, &world, &brokers, &entries).unwrap();
        let names: Vec<&str> = schedule
            .retargets
            .iter()
            .map(|r| r.task.name.as_str())
            .collect();
        assert_eq!(names, ["s2-hourly"]);
        assert_eq!(schedule.retargets[0].to.as_deref(), Some("s2:1"));
        assert_eq!(
            schedule.retargets[0].overrides["app"]["RABBIT_URL"],
            "amqps://job:pa/ss@old.mq.test:5671"
        );
        let why: Vec<String> = skipped
            .iter()
            .map(|s| format!("{}: {}", s.service, s.reason))
            .collect();
        assert!(
            why.iter().any(|w| w.starts_with(
                "rule m1-nightly (bus jobs, target t1): it was changed since apply (apply set m1:2, it starts other:1)"
            )),
            "{why:?}"
        );
    }

    /// Every kind of fault at every backend call of a rollback after a full apply; each re-run
    /// converges to the end of an uninterrupted rollback, and an apply after it to the end of
    /// an uninterrupted apply again (reusing the revisions registered the first time).
    #[test]
    fn a_fault_at_any_call_of_rollback_is_repaired_by_a_rerun() {
        let applied = Start::fresh().after(chain::apply);
        let sweep = chain::sweep(&applied, chain::rollback, Some(chain::apply));
        sweep.assert_converged("rollback");
    }
}

#[cfg(test)]
mod cycle_tests {
    use crate::config::{BrokerAlias, Config};
    use crate::journal::{Entry, Outcome, Step};
    use crate::plan::{Brokers, Drain};
    use std::time::SystemTime;

    /// Two services that publish to each other's queues (a request/reply cycle) go back in one
    /// wave: the queues they consume drain on the new broker before it, while the other still
    /// publishes there, so what arrives in between is shovelled back after the wave.
    #[test]
    fn a_cycle_going_back_shovels_what_is_left_in_its_queues_on_the_new_broker() {
        let plan = r#"
[migration]
name = "cycle"
[brokers.old]
id = "b-old"
[brokers.new]
id = "b-new"
[[services]]
cluster = "c"
name = "asks"
broker = "new"
publishes = ["request"]
consumes = ["reply"]
[[services]]
cluster = "c"
name = "answers"
broker = "new"
publishes = ["reply"]
consumes = ["request"]
"#;
        let config = Config::parse(std::path::Path::new("cycle.toml"), plan.to_owned()).unwrap();
        let mut services = Vec::new();
        let mut task_definitions = Vec::new();
        for name in ["asks", "answers"] {
            services
                .push(serde_json::json!({"name": name, "task_definition": format!("{name}:2")}));
            for (revision, host) in [(1, "old.mq.test"), (2, "new.mq.test")] {
                task_definitions.push(serde_json::json!({"family": name, "revision": revision,
                    "containers": [{"name": "app", "environment": {"RABBIT_HOST": host}}]}));
            }
        }
        let world: crate::model::World = serde_json::from_value(serde_json::json!({
            "version": 1,
            "brokers": [
                {"id": "b-old", "endpoints": ["amqps://old.mq.test:5671"],
                 "queues": [{"name": "request"}, {"name": "reply"}]},
                {"id": "b-new", "endpoints": ["amqps://new.mq.test:5671"],
                 "queues": [{"name": "request"}, {"name": "reply"}]},
            ],
            "clusters": [{"name": "c", "services": services}],
            "task_definitions": task_definitions,
        }))
        .unwrap();
        let entries: Vec<Entry> = ["asks", "answers"]
            .iter()
            .map(|name| {
                Entry::new("cycle", Step::Update, SystemTime::now(), Outcome::Ok)
                    .wave(Some(1))
                    .service("c", name)
                    .task_definitions(&format!("{name}:1"), &format!("{name}:2"))
            })
            .collect();
        let [old, new] = crate::discovery::resolve_brokers(&config, &world);
        let (schedule, _) =
            super::schedule(&config, &world, &Brokers { old, new }, &entries).unwrap();
        assert_eq!(schedule.waves.len(), 1, "{:?}", schedule.waves);
        let leftover = |queue: &str| Drain {
            wave: Some(1),
            broker: BrokerAlias::New,
            vhost: "/".into(),
            queue: queue.into(),
        };
        assert_eq!(schedule.leftovers, [leftover("reply"), leftover("request")]);
    }
}
