//! `warren status`: where every service points now, the old broker's queues and connections,
//! and whether decommission would pass today.

use serde::Serialize;

use crate::clients::Clients;
use crate::config::{BrokerAlias, Config};
use crate::discovery::{Placement, ResolvedBroker};
use crate::error::Result;
use crate::guard::{self, Blocker};
use crate::journal::Entry;
use crate::model::{Connection, Queue, World};
use crate::plan::{scan, Brokers};

/// The state of a migration now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub migration: String,
    pub brokers: Brokers,
    /// Declared services, then unmanaged ones that point at either broker.
    pub services: Vec<ServiceStatus>,
    /// The old broker's state (`RUNNING`, `DELETED`…); `None` when it could not be found.
    pub old_broker_state: Option<String>,
    /// The old broker's queues; `None` when they could not be read.
    pub queues: Option<Vec<Queue>>,
    pub connections: Vec<ConnectionStatus>,
    pub decommission: Readiness,
    /// What the migration's journal records; `None` where no journal was read.
    pub journal: Option<JournalSummary>,
}

/// The migration's journal as `status` shows it: where it is read from (on AWS with a lock
/// table, the shared copy every operator sees), how many entries it holds and the last one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournalSummary {
    pub place: String,
    pub entries: usize,
    pub last: Option<Entry>,
}

impl JournalSummary {
    /// The summary of `entries`, read from `place`.
    #[must_use]
    pub fn of(place: String, entries: &[Entry]) -> JournalSummary {
        JournalSummary {
            place,
            entries: entries.len(),
            last: entries.last().cloned(),
        }
    }
}

/// One service now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceStatus {
    pub cluster: String,
    pub service: String,
    pub task_definition: String,
    /// Where it points now.
    pub broker: Placement,
    /// Where the plan wants it; `None` for a service the plan does not declare.
    pub wants: Option<BrokerAlias>,
    /// `container/VARIABLE` of each variable that still names the broker the plan moves it off
    /// and that the plan's `broker_env` does not list: apply leaves those as they are, so the
    /// service stays split until `broker_env` lists them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unlisted: Vec<String>,
}

impl ServiceStatus {
    /// Whether it is where the plan wants it.
    #[must_use]
    pub fn done(&self) -> bool {
        matches!(
            (self.wants, self.broker),
            (Some(BrokerAlias::New), Placement::New) | (Some(BrokerAlias::Old), Placement::Old)
        )
    }
}

/// A connection to the old broker and the services it comes from (see [`crate::clients`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionStatus {
    #[serde(flatten)]
    pub connection: Connection,
    /// `cluster/service` of the service it comes from; empty when no scanned service accounts
    /// for it (several where one connection name fits services of two clusters equally).
    pub services: Vec<String>,
}

/// Whether decommission would pass, and what blocks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    pub would_pass: bool,
    pub blockers: Vec<Blocker>,
}

/// The status of `config`'s migration in `world` (every cluster: the guards scan them all).
///
/// Where a service points is read from every variable and secret, whatever `broker_env` says,
/// as decommission reads them: a service that `broker_env` moved only in part is `split`,
/// never done.
///
/// # Errors
/// As [`crate::plan::scan`]: a service on a task definition the state does not have.
pub fn status(config: &Config, world: &World, brokers: [ResolvedBroker; 2]) -> Result<Status> {
    let [old, new] = brokers;
    let clusters: Option<Vec<String>> = config
        .migration
        .clusters
        .as_ref()
        .map(|cs| cs.iter().map(|c| c.value.clone()).collect());
    let scanned = scan(world, [&old, &new], clusters.as_deref(), None)?;
    // Each declared service's scan, and whether a scanned service is declared, looked up
    // once per service rather than searched for.
    let by_id: std::collections::HashMap<(&str, &str), &crate::plan::Scanned> = scanned
        .iter()
        .rev()
        .map(|s| ((s.cluster, s.service), s))
        .collect();
    let declared: std::collections::HashSet<(&str, &str)> = config
        .services
        .iter()
        .map(|d| (d.cluster.as_str(), d.name.as_str()))
        .collect();
    let mut services = Vec::new();
    for decl in &config.services {
        if let Some(s) = by_id.get(&(decl.cluster.as_str(), decl.name.as_str())) {
            services.push(ServiceStatus {
                cluster: s.cluster.to_owned(),
                service: s.service.to_owned(),
                task_definition: s.task_definition.to_owned(),
                broker: Placement::of(&s.pointers),
                wants: Some(decl.broker),
                unlisted: config
                    .migration
                    .broker_env
                    .as_deref()
                    .map(|listed| crate::plan::unlisted(&s.pointers, listed, decl.broker.other()))
                    .unwrap_or_default(),
            });
        }
    }
    for s in &scanned {
        if !declared.contains(&(s.cluster, s.service)) && !s.pointers.is_empty() {
            services.push(ServiceStatus {
                cluster: s.cluster.to_owned(),
                service: s.service.to_owned(),
                task_definition: s.task_definition.to_owned(),
                broker: Placement::of(&s.pointers),
                wants: None,
                unlisted: Vec::new(),
            });
        }
    }
    let old_broker = old.in_world(world);
    let blockers = guard::blockers(world, &old, &new);
    Ok(Status {
        migration: config.migration.name.clone(),
        old_broker_state: old_broker.map(|b| b.state.clone()),
        queues: old_broker.and_then(|b| b.queues.clone()),
        connections: old_broker
            .map(|b| {
                let clients = Clients::of(world);
                b.connections
                    .iter()
                    .map(|c| ConnectionStatus {
                        connection: c.clone(),
                        services: clients.owners(c),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        decommission: Readiness {
            would_pass: blockers.is_empty(),
            blockers,
        },
        brokers: Brokers { old, new },
        services,
        journal: None,
    })
}
