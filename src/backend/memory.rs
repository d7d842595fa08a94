//! An in-memory backend for unit tests of the executor and of rollback: a [`World`] held in
//! memory, rollouts that end after a scripted number of looks, a zero poll interval (no test
//! waits on a clock), and one injected fault at the k-th call of a verb.
//!
//! A fault comes in four kinds ([`Fault`]): the call fails before it changes anything; the
//! change is made and the reply is lost (the caller sees an error, as on a network timeout);
//! or the process dies as the call begins, or after its change was made and before the reply
//! ([`MemoryBackend::restart`] then cuts the journal back to what it held at that moment, as a
//! SIGKILL would have left it).

pub mod chain;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::backend::broker::world::{Op, WorldBroker, WorldStore};
use crate::backend::{Backend, ReadScope, Rollout};
use crate::discovery::ResolvedBroker;
use crate::error::{Error, Result};
use crate::model::{TaskDefinition, World};

/// The backend calls a fault can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verb {
    Read,
    Register,
    Update,
    Running,
    Rollout,
    Queue,
    /// A broker definition created (topology copy).
    Create,
    Shovel,
    /// A broker's shovels and federation links read.
    Links,
    /// A federation upstream declared on a broker.
    Federate,
    /// A federation upstream or a policy deleted from a broker.
    Remove,
    DeleteBroker,
    UpdateSchedule,
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verb::Read => "read",
            Verb::Register => "register_task_definition",
            Verb::Update => "update_service",
            Verb::Running => "running_task_definition",
            Verb::Rollout => "rollout",
            Verb::Queue => "queue",
            Verb::Create => "create",
            Verb::Shovel => "shovel",
            Verb::Links => "links",
            Verb::Federate => "federate",
            Verb::Remove => "remove",
            Verb::DeleteBroker => "delete_broker",
            Verb::UpdateSchedule => "update_schedule",
        })
    }
}

/// What goes wrong at the faulty call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call fails with [`Error::Backend`] before it changes anything.
    Fail,
    /// The change is made, then the call fails with [`Error::Backend`]: the reply was lost.
    LostReply,
    /// The process dies as the call starts: nothing is changed. The call returns an error whose
    /// message starts with [`CRASHED`], every later call fails the same way, and
    /// [`MemoryBackend::restart`] cuts the journal back to what it held at that moment.
    KilledBefore,
    /// As [`Fault::KilledBefore`], but the process dies after the change was made, before the
    /// reply.
    KilledAfter,
}

impl Fault {
    /// Every kind, for tests that try each at every call.
    pub const ALL: [Fault; 4] = [
        Fault::Fail,
        Fault::LostReply,
        Fault::KilledBefore,
        Fault::KilledAfter,
    ];
}

/// How the message of the error a killed process's call returns starts.
pub const CRASHED: &str = "the process was killed";

/// How the rollouts of one service go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// The rollout is seen in progress by `after` looks, then completes.
    Complete { after: u32 },
    /// The rollout is seen in progress by `after` looks, then fails: the service is put back on
    /// the revision it ran before, as ECS's circuit breaker does.
    Fail { after: u32 },
}

/// A rollout that has not ended yet.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Underway {
    to: String,
    previous: String,
    looks: u32,
}

/// The world in memory, with scripted rollouts and at most one injected fault.
#[derive(Debug, Clone)]
pub struct MemoryBackend {
    world: World,
    scripts: BTreeMap<(String, String), Script>,
    underway: BTreeMap<(String, String), Underway>,
    calls: BTreeMap<Verb, usize>,
    log: Vec<(Verb, usize)>,
    fault: Option<(Verb, usize, Fault)>,
    fired: bool,
    dead: bool,
    journal: Option<PathBuf>,
    journal_at_crash: Option<u64>,
}

impl MemoryBackend {
    /// A backend holding `world`, whose rollouts complete at the first look.
    #[must_use]
    pub fn new(world: World) -> MemoryBackend {
        MemoryBackend {
            world,
            scripts: BTreeMap::new(),
            underway: BTreeMap::new(),
            calls: BTreeMap::new(),
            log: Vec::new(),
            fault: None,
            fired: false,
            dead: false,
            journal: None,
            journal_at_crash: None,
        }
    }

    /// Rollouts of `cluster/service` go as `script` says.
    #[must_use]
    pub fn script(mut self, cluster: &str, service: &str, script: Script) -> MemoryBackend {
        self.scripts
            .insert((cluster.to_owned(), service.to_owned()), script);
        self
    }

    /// The journal a killed process leaves cut back (see [`MemoryBackend::restart`]).
    #[must_use]
    pub fn journal(mut self, path: &Path) -> MemoryBackend {
        self.journal = Some(path.to_owned());
        self
    }

    /// Injects `fault` at the `nth` call (counted from 1, since the last restart) of `verb`.
    pub fn inject(&mut self, verb: Verb, nth: usize, fault: Fault) {
        self.fault = Some((verb, nth, fault));
        self.fired = false;
    }

    /// Whether the injected fault has happened.
    #[must_use]
    pub fn fired(&self) -> bool {
        self.fired
    }

    /// Every call since the last restart, in order: the verb and its number among that verb's
    /// calls (from 1).
    #[must_use]
    pub fn calls(&self) -> &[(Verb, usize)] {
        &self.log
    }

    /// The world as it is now.
    #[must_use]
    pub fn world(&self) -> &World {
        &self.world
    }

    /// Services whose rollout has started and not ended (no look has seen its end yet).
    #[must_use]
    pub fn rollouts_underway(&self) -> Vec<String> {
        self.underway
            .keys()
            .map(|(cluster, service)| format!("{cluster}/{service}"))
            .collect()
    }

    /// Starts a new process on the same world: after a [`Fault::KilledBefore`] or
    /// [`Fault::KilledAfter`] the journal is cut
    /// back to its length at the crash (what a killed process left); the fault is cleared and
    /// the calls are counted afresh.
    ///
    /// # Errors
    /// [`Error::Io`] when the journal cannot be cut back.
    pub fn restart(&mut self) -> Result<()> {
        if let (Some(length), Some(path)) = (self.journal_at_crash.take(), &self.journal) {
            let io = |source| Error::Io {
                path: path.clone(),
                source,
            };
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io)?;
            file.set_len(length).map_err(io)?;
        }
        self.fault = None;
        self.dead = false;
        self.calls.clear();
        self.log.clear();
        Ok(())
    }

    /// Counts a call of `verb`, and runs `call` unless the injected fault says otherwise.
    fn call<T>(&mut self, verb: Verb, call: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.dead {
            return Err(Error::Backend(format!("{CRASHED} earlier")));
        }
        let nth = {
            let count = self.calls.entry(verb).or_insert(0);
            *count += 1;
            *count
        };
        self.log.push((verb, nth));
        let fault = match self.fault {
            Some((v, n, fault)) if v == verb && n == nth => fault,
            _ => return call(self),
        };
        self.fired = true;
        match fault {
            Fault::Fail => Err(Error::Backend(format!(
                "{verb} call {nth} failed (injected fault)"
            ))),
            Fault::LostReply => {
                call(self)?;
                Err(Error::Backend(format!(
                    "{verb} call {nth}: no reply (injected fault; the change was made)"
                )))
            }
            Fault::KilledBefore => Err(self.die(format!("as {verb} call {nth} began"))),
            Fault::KilledAfter => {
                call(self)?;
                Err(self.die(format!("after {verb} call {nth} made its change")))
            }
        }
    }

    /// The process dies: every later call fails, and the journal's length now is what a
    /// restart cuts it back to.
    fn die(&mut self, when: String) -> Error {
        self.dead = true;
        self.journal_at_crash = self
            .journal
            .as_ref()
            .map(|path| std::fs::metadata(path).map_or(0, |m| m.len()));
        Error::Backend(format!("{CRASHED} {when}"))
    }

    fn service_mut(&mut self, cluster: &str, service: &str) -> Result<&mut crate::model::Service> {
        self.world
            .clusters
            .iter_mut()
            .find(|c| c.name == cluster)
            .and_then(|c| c.services.iter_mut().find(|s| s.name == service))
            .ok_or_else(|| Error::Backend(format!("no service {cluster}/{service}")))
    }

    fn broker_index(&self, broker: &ResolvedBroker) -> Result<usize> {
        broker
            .index_in(&self.world)
            .ok_or_else(|| Error::Backend(format!("no broker {}", broker.id)))
    }
}

impl WorldStore for MemoryBackend {
    fn with_world<T>(&mut self, kind: Op, op: impl FnOnce(&mut World) -> Result<T>) -> Result<T> {
        let verb = match kind {
            Op::Read => Verb::Read,
            Op::Depth => Verb::Queue,
            Op::Create => Verb::Create,
            Op::Shovel => Verb::Shovel,
            Op::Links => Verb::Links,
            Op::Federate => Verb::Federate,
            Op::Remove => Verb::Remove,
        };
        self.call(verb, |b| op(&mut b.world))
    }
}

impl Backend for MemoryBackend {
    fn describe(&self) -> String {
        "the world in memory".to_owned()
    }

    fn read(&mut self, scope: &ReadScope) -> Result<World> {
        self.call(Verb::Read, |b| {
            let mut world = b.world.clone();
            if let Some(clusters) = &scope.clusters {
                world.clusters.retain(|c| clusters.contains(&c.name));
            }
            Ok(world)
        })
    }

    fn register_task_definition(&mut self, td: &TaskDefinition) -> Result<String> {
        self.call(Verb::Register, |b| b.world.register(td))
    }

    fn update_service(
        &mut self,
        cluster: &str,
        service: &str,
        task_definition: &str,
    ) -> Result<()> {
        self.call(Verb::Update, |b| {
            if b.world.task_definition(task_definition).is_none() {
                return Err(Error::Backend(format!(
                    "task definition {task_definition} does not exist"
                )));
            }
            let s = b.service_mut(cluster, service)?;
            let previous = std::mem::replace(&mut s.task_definition, task_definition.to_owned());
            b.underway.insert(
                (cluster.to_owned(), service.to_owned()),
                Underway {
                    to: task_definition.to_owned(),
                    previous,
                    looks: 0,
                },
            );
            Ok(())
        })
    }

    fn update_schedule(&mut self, schedule: &crate::model::Schedule) -> Result<()> {
        self.call(Verb::UpdateSchedule, |b| {
            let label = crate::retarget::label_of(schedule);
            let found = crate::retarget::find_mut(&mut b.world, schedule)
                .ok_or_else(|| Error::Backend(format!("no {label}")))?;
            found.task_definition.clone_from(&schedule.task_definition);
            found.overrides.clone_from(&schedule.overrides);
            Ok(())
        })
    }

    fn running_task_definition(&mut self, cluster: &str, service: &str) -> Result<Option<String>> {
        self.call(Verb::Running, |b| {
            Ok(b.world
                .service(cluster, service)
                .map(|s| s.task_definition.clone()))
        })
    }

    fn rollout(&mut self, cluster: &str, service: &str, task_definition: &str) -> Result<Rollout> {
        self.call(Verb::Rollout, |b| {
            let key = (cluster.to_owned(), service.to_owned());
            let running = b.service_mut(cluster, service)?.task_definition.clone();
            if running != task_definition {
                return Ok(Rollout::Failed {
                    reason: format!("the service runs {running}, not {task_definition}"),
                    running,
                });
            }
            let Some(underway) = b.underway.get_mut(&key) else {
                return Ok(Rollout::Completed);
            };
            underway.looks += 1;
            let script = b
                .scripts
                .get(&key)
                .copied()
                .unwrap_or(Script::Complete { after: 0 });
            let (Script::Complete { after } | Script::Fail { after }) = script;
            if underway.looks <= after {
                return Ok(Rollout::InProgress);
            }
            let ended = b.underway.remove(&key).expect("looked at above");
            let s = b.service_mut(cluster, service)?;
            if let Script::Fail { .. } = script {
                s.task_definition.clone_from(&ended.previous);
                return Ok(Rollout::Failed {
                    running: ended.previous,
                    reason: "the deployment failed and was rolled back".to_owned(),
                });
            }
            debug_assert_eq!(ended.to, task_definition);
            s.deployments.clear();
            Ok(Rollout::Completed)
        })
    }

    fn broker<'a>(
        &'a mut self,
        broker: &ResolvedBroker,
    ) -> Result<Box<dyn crate::backend::broker::BrokerApi + 'a>> {
        self.broker_index(broker)?;
        let alias = broker.alias.to_string();
        Ok(Box::new(WorldBroker::new(self, &broker.id, &alias)))
    }

    fn delete_broker(&mut self, broker: &ResolvedBroker) -> Result<()> {
        self.call(Verb::DeleteBroker, |b| {
            let index = b.broker_index(broker)?;
            "DELETED".clone_into(&mut b.world.brokers[index].state);
            Ok(())
        })
    }

    fn poll_interval(&self) -> Duration {
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cluster, Service};

    fn one_service() -> MemoryBackend {
        let world = World {
            version: 1,
            clusters: vec![Cluster {
                name: "c".into(),
                services: vec![Service {
                    name: "s".into(),
                    task_definition: "s:1".into(),
                    ..Service::default()
                }],
                ..Cluster::default()
            }],
            task_definitions: vec![
                TaskDefinition {
                    family: "s".into(),
                    revision: 1,
                    ..TaskDefinition::default()
                },
                TaskDefinition {
                    family: "s".into(),
                    revision: 2,
                    ..TaskDefinition::default()
                },
            ],
            ..World::default()
        };
        MemoryBackend::new(world)
    }

    #[test]
    fn a_scripted_rollout_ends_after_its_looks() {
        let mut b = one_service().script("c", "s", Script::Complete { after: 2 });
        b.update_service("c", "s", "s:2").unwrap();
        assert_eq!(b.rollout("c", "s", "s:2").unwrap(), Rollout::InProgress);
        assert_eq!(b.rollout("c", "s", "s:2").unwrap(), Rollout::InProgress);
        assert_eq!(b.rollouts_underway(), vec!["c/s".to_owned()]);
        assert_eq!(b.rollout("c", "s", "s:2").unwrap(), Rollout::Completed);
        assert!(b.rollouts_underway().is_empty());
    }

    #[test]
    fn a_failing_rollout_puts_the_service_back() {
        let mut b = one_service().script("c", "s", Script::Fail { after: 0 });
        b.update_service("c", "s", "s:2").unwrap();
        assert!(matches!(
            b.rollout("c", "s", "s:2").unwrap(),
            Rollout::Failed { running, .. } if running == "s:1"
        ));
        assert_eq!(
            b.running_task_definition("c", "s").unwrap().as_deref(),
            Some("s:1")
        );
    }

    #[test]
    fn faults_fire_at_the_nth_call_of_their_verb_only() {
        let mut b = one_service();
        b.inject(Verb::Update, 2, Fault::Fail);
        b.update_service("c", "s", "s:2").unwrap();
        assert!(!b.fired());
        b.update_service("c", "s", "s:1").unwrap_err();
        assert!(b.fired());
        assert_eq!(
            b.running_task_definition("c", "s").unwrap().as_deref(),
            Some("s:2"),
            "a failed call changes nothing"
        );

        let mut b = one_service();
        b.inject(Verb::Update, 1, Fault::LostReply);
        b.update_service("c", "s", "s:2").unwrap_err();
        assert_eq!(
            b.running_task_definition("c", "s").unwrap().as_deref(),
            Some("s:2"),
            "a lost reply's change was made"
        );
    }

    #[test]
    fn faults_fire_in_federation_upstream_and_policy_changes() {
        use crate::backend::broker::federation::Upstream;
        use crate::config::BrokerAlias;
        use crate::model::{Broker, Policy};

        let mut b = one_service();
        for (id, host) in [("b-1", "old.example.com"), ("b-2", "new.example.com")] {
            b.world.brokers.push(Broker {
                id: id.into(),
                endpoints: vec![format!("amqps://{host}:5671")],
                queues: Some(Vec::new()),
                policies: vec![Policy {
                    vhost: "/".into(),
                    name: "warren-federate-q".into(),
                    pattern: "^q$".into(),
                    ..Policy::default()
                }],
                ..Broker::default()
            });
        }
        let old = ResolvedBroker::at(BrokerAlias::Old, "b-1", "old.example.com");
        let new = ResolvedBroker::at(BrokerAlias::New, "b-2", "new.example.com");
        let upstream = Upstream {
            vhost: "/".into(),
            name: "warren-m".into(),
            url_env: "WARREN_MEMORY_TEST_UNSET_URL".into(),
        };

        b.inject(Verb::Federate, 1, Fault::Fail);
        let err = b.broker(&new).unwrap().create_upstream(&upstream, &old);
        assert!(err.unwrap_err().to_string().contains("federate call 1"));
        assert!(
            b.world().brokers[1].upstreams.is_empty(),
            "nothing declared"
        );
        b.broker(&new)
            .unwrap()
            .create_upstream(&upstream, &old)
            .unwrap();
        assert_eq!(b.world().brokers[1].upstreams.len(), 1);

        b.inject(Verb::Remove, 2, Fault::LostReply);
        b.broker(&new)
            .unwrap()
            .remove_upstream("/", "warren-m")
            .unwrap();
        let err = b
            .broker(&new)
            .unwrap()
            .remove_policy("/", "warren-federate-q");
        assert!(err.unwrap_err().to_string().contains("remove call 2"));
        assert!(
            b.world().brokers[1].policies.is_empty(),
            "removed all the same"
        );
        assert_eq!(
            b.world().brokers[0].policies.len(),
            1,
            "the old broker's stays"
        );
        assert_eq!(
            b.calls()
                .iter()
                .filter(|(v, _)| matches!(v, Verb::Federate | Verb::Remove))
                .count(),
            4
        );
    }

    #[test]
    fn a_crash_cuts_the_journal_back_and_stops_every_later_call() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("j.jsonl");
        std::fs::write(&journal, "{}\n").unwrap();
        let mut b = one_service().journal(&journal);
        b.inject(Verb::Update, 1, Fault::KilledAfter);
        let err = b.update_service("c", "s", "s:2").unwrap_err().to_string();
        assert!(err.starts_with(CRASHED), "{err}");
        std::fs::write(&journal, "{}\n{\"written\": \"after the crash\"}\n").unwrap();
        assert!(b.running_task_definition("c", "s").is_err(), "dead");

        b.restart().unwrap();
        assert_eq!(std::fs::read_to_string(&journal).unwrap(), "{}\n");
        assert_eq!(
            b.running_task_definition("c", "s").unwrap().as_deref(),
            Some("s:2")
        );
        assert_eq!(b.calls(), &[(Verb::Running, 1)]);

        let mut b = one_service().journal(&journal);
        b.inject(Verb::Update, 1, Fault::KilledBefore);
        b.update_service("c", "s", "s:2").unwrap_err();
        b.restart().unwrap();
        assert_eq!(
            b.running_task_definition("c", "s").unwrap().as_deref(),
            Some("s:1"),
            "killed before the change"
        );
    }
}
