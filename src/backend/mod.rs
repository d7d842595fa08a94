//! The one seam through which warren reads and changes the world.
//!
//! Planning and guard code only ever see [`World`] values; `apply`, `rollback` and
//! `decommission` act through the few verbs below. Each backend turns its own source (a world
//! file, AWS, the brokers) into those.

pub mod aws;
pub mod broker;
#[cfg(test)]
pub mod memory;
pub mod rehearsal;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::discovery::ResolvedBroker;
use crate::error::Result;
use crate::model::{Schedule, TaskDefinition, World};

/// What to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadScope {
    /// Clusters to read; `None`: every cluster.
    pub clusters: Option<Vec<String>>,
    /// Also the latest active revision of every task definition family and every scheduled
    /// task (what decommission checks).
    pub everything: bool,
    /// SSM parameters (names or ARNs) to read besides those the task definitions' secrets
    /// name: the plan's `[parameters]`, whose targets must exist before `apply`. One the
    /// backend does not have is left out of the world.
    pub parameters: Vec<String>,
    /// Task definition revisions (`family:revision` or ARN) to read besides the ones services
    /// run now: the revisions `rollback` puts services back on. One the backend does not have
    /// is left out of the world.
    pub task_definitions: Vec<String>,
    /// Also what else can point at a broker: the scheduled tasks of every EventBridge rule (on
    /// every bus) and Scheduler schedule, Lambda functions and event source mappings,
    /// EventBridge Pipes and Step Functions state machines. Backends whose source holds
    /// everything anyway (a world file) ignore it.
    pub resources: bool,
    /// The Secrets Manager secrets whose values to read (`read_secrets`); one that cannot be
    /// read is left out of the world, with the reason in [`World::unread`].
    pub secrets: crate::config::SecretsToRead,
}

/// Where a service's rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Still deploying.
    InProgress,
    /// The service runs the new task definition and is steady.
    Completed,
    /// The rollout failed; the service is (back) on `running` and the reason says why.
    Failed { running: String, reason: String },
}

/// One service whose rollout onto `task_definition` is being waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutQuery {
    pub cluster: String,
    pub service: String,
    pub task_definition: String,
}

/// One service to point at a task definition, in a batch ([`Backend::update_services`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUpdate {
    pub cluster: String,
    pub service: String,
    /// The `family:revision` it is pointed at.
    pub task_definition: String,
}

/// A source of truth about brokers, clusters, services, task definitions and parameters, and
/// the verbs warren uses to change it.
pub trait Backend {
    /// What the backend reads, for messages ("world file examples/x.json").
    fn describe(&self) -> String;

    /// Reads the state in `scope`: the clusters and their services, the task definitions they
    /// run, the parameters their secrets name, the schedules, and both brokers with whatever of
    /// their queues, bindings and connections the backend can see.
    ///
    /// # Errors
    /// [`crate::Error::Backend`] or [`crate::Error::Input`] when the source cannot be read.
    fn read(&mut self, scope: &ReadScope) -> Result<World>;

    /// Registers `td`'s content as a revision of its family and returns its `family:revision`.
    /// Idempotent by content: when an active revision of the family newer than `td`'s own
    /// already has that content (what a run stopped after registering leaves), it is returned
    /// and nothing is registered.
    ///
    /// # Errors
    /// [`crate::Error::Backend`] when the revision cannot be registered.
    fn register_task_definition(&mut self, td: &TaskDefinition) -> Result<String>;

    /// Points service `cluster/service` at `task_definition` and starts its rollout.
    ///
    /// # Errors
    /// [`crate::Error::Backend`] when the service cannot be updated.
    fn update_service(&mut self, cluster: &str, service: &str, task_definition: &str)
        -> Result<()>;

    /// Registers each of `tds` as [`Backend::register_task_definition`] does, and returns each
    /// one's result, in the order given. Every item is attempted: one that fails does not stop
    /// the others. When a result is `Ok`, the revision is registered durably (a rehearsal has
    /// written it to its world file) by the time this returns. Backends that can make many
    /// changes in one step do so (a rehearsal writes its world file once for the batch).
    fn register_task_definitions(&mut self, tds: &[&TaskDefinition]) -> Vec<Result<String>> {
        tds.iter()
            .map(|td| self.register_task_definition(td))
            .collect()
    }

    /// Points each service of `updates` at its task definition as [`Backend::update_service`]
    /// does, and returns each one's result, in the order given. Every item is attempted: one
    /// that fails does not stop the others. When a result is `Ok`, the change is durable (a
    /// rehearsal has written it to its world file) by the time this returns.
    fn update_services(&mut self, updates: &[ServiceUpdate]) -> Vec<Result<()>> {
        updates
            .iter()
            .map(|u| self.update_service(&u.cluster, &u.service, &u.task_definition))
            .collect()
    }

    /// Writes `schedule`'s `task_definition` and env `overrides` to the scheduled task it
    /// names (an EventBridge rule's target: kind, bus, rule name and target id; a Scheduler
    /// schedule: group and name). Everything else about the rule target or schedule stays as
    /// it is. Writing what it holds already changes nothing.
    ///
    /// # Errors
    /// [`crate::Error::Backend`] when the scheduled task does not exist or cannot be changed.
    fn update_schedule(&mut self, schedule: &Schedule) -> Result<()>;

    /// The `family:revision` service `cluster/service` runs at this moment, read afresh (never
    /// from an earlier read); `None` when the service does not exist.
    ///
    /// # Errors
    /// [`crate::Error::Backend`] when the service cannot be read.
    fn running_task_definition(&mut self, cluster: &str, service: &str) -> Result<Option<String>>;

    /// What [`Backend::running_task_definition`] says of each of `services` (`(cluster,
    /// service)`), in the order asked, all read afresh. Backends that can read many services
    /// in one step do so.
    ///
    /// # Errors
    /// [`crate::Error::Backend`] when a service cannot be read.
    fn running_task_definitions(
        &mut self,
        services: &[(String, String)],
    ) -> Result<Vec<Option<String>>> {
        services
            .iter()
            .map(|(cluster, service)| self.running_task_definition(cluster, service))
            .collect()
    }

    /// Where the rollout of `cluster/service` onto `task_definition` stands now.
    ///
    /// # Errors
    /// [`crate::Error::Backend`] when the service cannot be read.
    fn rollout(&mut self, cluster: &str, service: &str, task_definition: &str) -> Result<Rollout>;

    /// Where each of several rollouts stands, in the order asked. Backends that can ask about
    /// many services in one call do so (a rehearsal records every rollout that ended in its
    /// world file with one write, before this returns).
    ///
    /// # Errors
    /// [`crate::Error::Backend`] when a service cannot be read.
    fn rollouts(&mut self, asked: &[RolloutQuery]) -> Result<Vec<Rollout>> {
        asked
            .iter()
            .map(|q| self.rollout(&q.cluster, &q.service, &q.task_definition))
            .collect()
    }

    /// The private IPv4 addresses of the running tasks of each of `services` (`(cluster,
    /// service)`), by service: what tells which service a broker connection that carries no
    /// service's name comes from. A service with no running task is absent. Backends whose
    /// state holds the tasks already (a world file) answer nothing.
    ///
    /// # Errors
    /// [`crate::Error::Backend`] when the tasks cannot be listed or described.
    fn task_addresses(
        &mut self,
        services: &[(String, String)],
    ) -> Result<BTreeMap<(String, String), Vec<String>>> {
        let _ = services;
        Ok(BTreeMap::new())
    }

    /// The broker `broker` itself: its queues, topology and links, read and changed through
    /// [`broker::BrokerApi`]. A world's simulated broker (one whose queues the world lists) is
    /// the world's; any other is the live broker the plan's URL variables reach.
    ///
    /// # Errors
    /// [`crate::Error::Backend`] when the broker cannot be reached (no URL, a URL that is not
    /// set or does not answer); [`crate::Error::Refused`] when a URL belongs to another broker.
    fn broker<'a>(&'a mut self, broker: &ResolvedBroker)
        -> Result<Box<dyn broker::BrokerApi + 'a>>;

    /// Deletes the broker `broker`.
    ///
    /// # Errors
    /// [`crate::Error::Backend`] when the broker cannot be deleted.
    fn delete_broker(&mut self, broker: &ResolvedBroker) -> Result<()>;

    /// How long to wait between two looks at rollouts or queues.
    fn poll_interval(&self) -> Duration;
}
