//! The plan: what moves, in which order, and what nobody declared.
//!
//! [`Plan`] is a plain value. [`make`] computes it from a validated plan file and the scanned
//! state without touching any backend; renderers print it and `apply` executes it. A saved plan
//! ([`SavedPlan`]) is the same value with a checksum of its own content.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{BrokerAlias, Config, SecretsToRead, Strategy};
use crate::discovery::{
    self, mask_password, parameter_name, parameter_value, Placement, Pointer, ResolvedBroker,
    Uninspected, Via, REDACTED,
};
use crate::error::{Error, Result};
use crate::graph::{Flow, Participant, Route};
use crate::model::{Broker, DestinationType, Schedule, Service, World};
use crate::resources::{self, UnmanagedResource};

mod federation;
mod fingerprint;
mod saved;
mod topology;
mod unmanaged;
mod warnings;

pub use federation::Federation;
use federation::{federation_of, polled_warnings};
use fingerprint::fingerprint_resources;
pub use fingerprint::{fingerprint, fingerprint_now, Fingerprint};
pub(crate) use saved::digest;
pub use saved::SavedPlan;
use topology::destinations;
pub use topology::{bindings, gates, preparation, QueueShape, TopologyItem};
use topology::{drains, topology_of, Topology};
use unmanaged::moved_by_apply;
use unmanaged::unmanaged_resources;
pub use warnings::unlisted;
use warnings::{end_state_warnings, ownership_warnings, partial_move_warnings};

/// Version of the plan JSON (`plan --format json` and saved plans).
pub const FORMAT_VERSION: u32 = 1;

/// A computed migration plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub migration: String,
    pub strategy: Strategy,
    pub brokers: Brokers,
    /// What the plan scanned: needed to check a saved plan against the state again.
    pub scope: Scope,
    /// Sorted by wave, then `cluster/service`; noops last.
    pub changes: Vec<Change>,
    /// `waves[i]` lists `cluster/service` of wave i+1.
    pub waves: Vec<Vec<String>>,
    /// Queues to wait for before a wave (drain) or after the last wave (federate).
    pub drains: Vec<Drain>,
    /// Queues whose leftovers apply shovels to the other broker after their wave: under
    /// `drain`, the queues of services that publish to each other (a cycle), which cannot be
    /// drained before they move together.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leftovers: Vec<Drain>,
    /// Scanned services that point at the old broker and are not in the plan.
    pub unmanaged: Vec<Unmanaged>,
    /// Rules, schedules, functions, event source mappings, pipes and state machines that
    /// point at the old broker: warren does not change them (see [`crate::resources`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmanaged_resources: Vec<UnmanagedResource>,
    pub warnings: Vec<String>,
    /// `[parameters]` of the plan file.
    pub parameters: IndexMap<String, String>,
    pub fingerprint: Fingerprint,
    /// Scheduled tasks (rule targets, Scheduler schedules) that pin a revision a change moves
    /// a service from: apply points them at the moved revision in that service's wave.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retargets: Vec<crate::retarget::Retarget>,
    /// What the plan leaves alone on purpose, and why (not a risk, unlike `warnings`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The old broker's exchanges, queues, bindings and policies the new broker lacks, in the
    /// vhosts the moving services use: apply creates them before the first wave.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology: Vec<TopologyItem>,
    /// Under `federate`: what apply declares on the new broker before the first wave and removes
    /// once the federated queues on the old broker are empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federation: Option<Federation>,
}

/// The drains whose queue a member of a cycle consumes in the drain's wave: those queues are
/// drained before their wave while the other members still publish to them, so what those
/// publish after the drain and before they move is shovelled after the wave (apply under
/// `drain`, and rollback). `members` gives each moving service as `(cluster/service, wave, the
/// queues it consumes)`.
pub(crate) fn cycle_leftovers<'m>(
    drains: &[Drain],
    cycles: &[Vec<String>],
    members: impl IntoIterator<Item = (String, Option<usize>, &'m [String])>,
) -> Vec<Drain> {
    let in_cycle: BTreeSet<&str> = cycles.iter().flatten().map(String::as_str).collect();
    // (wave, queue) of what the members of a cycle consume.
    let consumed: BTreeSet<(Option<usize>, &str)> = members
        .into_iter()
        .filter(|(id, _, _)| in_cycle.contains(id.as_str()))
        .flat_map(|(_, wave, consumes)| consumes.iter().map(move |q| (wave, q.as_str())))
        .collect();
    drains
        .iter()
        .filter(|d| consumed.contains(&(d.wave, d.queue.as_str())))
        .cloned()
        .collect()
}

/// The two brokers, resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Brokers {
    pub old: ResolvedBroker,
    pub new: ResolvedBroker,
}

impl Brokers {
    /// The broker called `alias`.
    #[must_use]
    pub fn get(&self, alias: BrokerAlias) -> &ResolvedBroker {
        match alias {
            BrokerAlias::Old => &self.old,
            BrokerAlias::New => &self.new,
        }
    }
}

/// What a plan scanned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// The region the state was read from, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// `None`: every cluster.
    pub clusters: Option<Vec<String>>,
    /// `None`: every env value.
    pub broker_env: Option<Vec<String>>,
    /// DynamoDB table of the team lock, if the plan names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_table: Option<String>,
    /// The Secrets Manager secrets read (`read_secrets`): `apply` of a saved plan reads the same.
    #[serde(default, skip_serializing_if = "SecretsToRead::is_none")]
    pub read_secrets: SecretsToRead,
}

/// What happens to one declared service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The service moves.
    Update,
    /// Nothing to do.
    Noop,
    /// It must move but warren cannot move it (see `reason`).
    Manual,
}

/// One declared service and what the plan does with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub cluster: String,
    pub service: String,
    pub action: Action,
    /// Where it points now; `null` when it points at neither broker.
    pub from: Option<Placement>,
    pub to: BrokerAlias,
    pub wave: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `family:revision` it runs now.
    pub task_definition: String,
    pub rewrites: Vec<Rewrite>,
    pub publishes: Vec<String>,
    pub consumes: Vec<String>,
}

impl Change {
    /// `cluster/service`.
    #[must_use]
    pub fn id(&self) -> String {
        format!("{}/{}", self.cluster, self.service)
    }
}

/// One value the move rewrites. Passwords are shown as `****`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Rewrite {
    pub container: String,
    /// An environment variable whose value changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variable: Option<String>,
    /// A secret (named as the variable it becomes) whose `valueFrom` parameter changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    /// Another string field of the container whose value changes, by its path (`command[1]`,
    /// `dockerLabels.broker`; see [`crate::model::Container::fields`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub from: String,
    pub to: String,
    /// The env file (S3 object ARN) `variable` comes from: the move sets the variable in the
    /// container's `environment`, which overrides the file, and leaves the file alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_file: Option<String>,
}

/// A queue the move waits for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Drain {
    /// The wave that waits for it; `None`: after the last wave.
    pub wave: Option<usize>,
    /// The broker the queue must empty on.
    pub broker: BrokerAlias,
    pub vhost: String,
    pub queue: String,
}

/// A service that points at the old broker but is not in the plan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Unmanaged {
    pub cluster: String,
    pub service: String,
    /// `old` or `split`.
    pub broker: Placement,
    pub task_definition: String,
    /// `container/VARIABLE` entries that name the old broker.
    pub through: Vec<String>,
    /// Queues on the old broker that it consumes, where the broker says so.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumes: Vec<String>,
}

impl Unmanaged {
    /// `cluster/service`.
    #[must_use]
    pub fn id(&self) -> String {
        format!("{}/{}", self.cluster, self.service)
    }
}

impl Plan {
    /// The changes by `cluster/service`, for looking up the members of the waves.
    #[must_use]
    pub fn changes_by_id(&self) -> BTreeMap<String, &Change> {
        self.changes.iter().map(|c| (c.id(), c)).collect()
    }

    /// Whether applying the plan would change anything.
    #[must_use]
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::Noop)
    }

    /// Counts for the summary line: (to move, unchanged, unmanaged, manual).
    #[must_use]
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let count = |a: Action| self.changes.iter().filter(|c| c.action == a).count();
        (
            count(Action::Update),
            count(Action::Noop),
            self.unmanaged.len(),
            count(Action::Manual),
        )
    }
}

/// A scanned service: where it is and what in it points at the brokers.
#[derive(Debug, Clone)]
pub struct Scanned<'w> {
    pub cluster: &'w str,
    pub service: &'w str,
    pub task_definition: &'w str,
    pub pointers: Vec<Pointer>,
    pub uninspected: Vec<Uninspected>,
}

impl Scanned<'_> {
    /// `cluster/service`.
    #[must_use]
    pub fn id(&self) -> String {
        format!("{}/{}", self.cluster, self.service)
    }
}

/// The bytes of a service's id, `cluster/service`, one by one: ids compared without making
/// them.
fn id_bytes<'a>(cluster: &'a str, service: &'a str) -> impl Iterator<Item = u8> + 'a {
    let slash = std::iter::once(b'/');
    cluster.bytes().chain(slash).chain(service.bytes())
}

/// Scans the services of `clusters` (`None`: all) for pointers at the two brokers.
///
/// # Errors
/// [`Error::Backend`] when a service names a task definition the state does not have.
pub fn scan<'w>(
    world: &'w World,
    brokers: [&ResolvedBroker; 2],
    clusters: Option<&[String]>,
    only: Option<&[String]>,
) -> Result<Vec<Scanned<'w>>> {
    let mut out = Vec::with_capacity(world.clusters.iter().map(|c| c.services.len()).sum());
    for cluster in &world.clusters {
        if clusters.is_some_and(|cs| !cs.contains(&cluster.name)) {
            continue;
        }
        for service in &cluster.services {
            let td = world
                .task_definition(&service.task_definition)
                .ok_or_else(|| {
                    Error::Backend(format!(
                        "service {}/{} runs task definition {}, which does not exist",
                        cluster.name, service.name, service.task_definition
                    ))
                })?;
            let (mut pointers, mut uninspected) = discovery::pointers(world, td, brokers, only);
            // A region holds tens of thousands of these: no spare capacity.
            pointers.shrink_to_fit();
            uninspected.shrink_to_fit();
            out.push(Scanned {
                cluster: &cluster.name,
                service: &service.name,
                task_definition: &service.task_definition,
                pointers,
                uninspected,
            });
        }
    }
    // In the order of their ids, compared without making them.
    out.sort_by(|a, b| id_bytes(a.cluster, a.service).cmp(id_bytes(b.cluster, b.service)));
    Ok(out)
}

/// Computes the plan for `config` against `world`.
///
/// # Errors
/// [`Error::Input`] when the plan names a cluster, service or broker the world does not have;
/// [`Error::Backend`] when the world is inconsistent (a service on a missing task definition).
pub fn make(config: &Config, world: &World) -> Result<Plan> {
    config.check_against(world)?;
    let [old, new] = discovery::resolve_brokers(config, world);
    for broker in [&old, &new] {
        if broker.endpoints.is_empty() {
            return Err(config.broker_error(
                broker.alias,
                &format!("broker {} has no endpoints", broker.id),
            ));
        }
    }
    if let Some(shared) = old.hosts.iter().find(|h| new.owns_host(h)) {
        return Err(config.broker_error(
            BrokerAlias::New,
            &format!(
                "the old and new brokers share the host {shared}: warren cannot tell them apart"
            ),
        ));
    }
    let scope = Scope {
        region: config
            .migration
            .region
            .clone()
            .or_else(|| world.region.clone()),
        clusters: config
            .migration
            .clusters
            .as_ref()
            .map(|cs| cs.iter().map(|c| c.value.clone()).collect()),
        broker_env: config.migration.broker_env.clone(),
        lock_table: config.migration.lock_table.clone(),
        read_secrets: config.migration.read_secrets.clone(),
    };
    let scanned = scan(
        world,
        [&old, &new],
        scope.clusters.as_deref(),
        scope.broker_env.as_deref(),
    )?;
    let brokers = Brokers { old, new };
    let mut warnings = Vec::new();

    for broker in [&brokers.old, &brokers.new] {
        match broker.in_world(world) {
            Some(b) if b.is_deleted() => warnings.push(format!(
                "the {} broker {} is {}",
                broker.alias, broker.id, b.state
            )),
            Some(b) if b.queues.is_none() => warnings.push(format!(
                "the {} broker {}: its queues, bindings and connections are unknown ({}), so the order and the checks below rely on the plan alone",
                broker.alias,
                broker.id,
                broker.topology_source()
            )),
            None => warnings.push(format!(
                "the {} broker {} is not in the scanned state: its queues, bindings and connections are unknown",
                broker.alias, broker.id
            )),
            Some(_) => {}
        }
    }

    // Declared services.
    let by_id: HashMap<(&str, &str), &Scanned> = scanned
        .iter()
        .map(|s| ((s.cluster, s.service), s))
        .collect();
    let index = Index {
        services: world.services_by_id(),
        parameters: ParameterMap::of(&config.parameters),
    };
    let mut changes = Vec::with_capacity(config.services.len());
    for decl in &config.services {
        let found = by_id
            .get(&(decl.cluster.as_str(), decl.name.as_str()))
            .copied()
            .expect("check_against made sure every declared service was scanned");
        changes.push(change_for(
            world,
            &index,
            &brokers,
            decl,
            found,
            &mut warnings,
        ));
    }

    partial_move_warnings(
        world,
        &brokers,
        scope.broker_env.as_deref(),
        &changes,
        &mut warnings,
    );
    ownership_warnings(&index.services, &changes, &mut warnings);

    // Unmanaged services.
    let clients = crate::clients::Clients::of(world);
    let mut unmanaged = Vec::new();
    let declared: HashSet<(&str, &str)> = config
        .services
        .iter()
        .map(|d| (d.cluster.as_str(), d.name.as_str()))
        .collect();
    let old_broker = brokers.old.in_world(world);
    let mut consumed = None;
    for s in &scanned {
        if declared.contains(&(s.cluster, s.service)) {
            continue;
        }
        let placement = Placement::of(&s.pointers);
        if placement.touches(BrokerAlias::Old) {
            let mut through: Vec<String> = s
                .pointers
                .iter()
                .filter(|p| p.broker == BrokerAlias::Old)
                .map(|p| format!("{}/{}", p.container, p.via.variable()))
                .collect();
            through.dedup();
            let consumes = consumed
                .get_or_insert_with(|| queues_consumed(old_broker, &clients))
                .remove(&s.id())
                .unwrap_or_default();
            unmanaged.push(Unmanaged {
                cluster: s.cluster.to_owned(),
                service: s.service.to_owned(),
                broker: placement,
                task_definition: s.task_definition.to_owned(),
                through,
                consumes,
            });
        }
    }
    unmanaged.sort();

    // Secrets and parameters that could not be looked into.
    for s in &scanned {
        let mut secrets = Vec::new();
        for u in &s.uninspected {
            match u {
                Uninspected::SecretsManager { container, name, reason: None, .. } => secrets.push(format!("{container}/{name}")),
                Uninspected::SecretsManager { container, name, arn, reason: Some(reason) } => warnings.push(format!(
                    "{}: {container}/{name} reads Secrets Manager secret {arn}, which could not be read ({reason}); it was not inspected",
                    s.id()
                )),
                Uninspected::EnvFile { container, file, reason } => warnings.push(format!(
                    "{}: container {container} loads env file {file}, which was not inspected for broker hosts: {reason}",
                    s.id()
                )),
                Uninspected::MissingParameter { container, name, parameter } => warnings.push(format!(
                    "{}: {container}/{name} reads parameter {parameter}, which does not exist; it was not inspected",
                    s.id()
                )),
                Uninspected::Redacted { container, name, parameter } => warnings.push(format!(
                    "{}: {container}/{name}{} is redacted ({REDACTED}), so whether it names a broker is unknown; it was not inspected",
                    s.id(),
                    parameter.as_ref().map(|p| format!(" reads parameter {p}, whose value")).unwrap_or_default(),
                )),
            }
        }
        if !secrets.is_empty() {
            warnings.push(format!(
                "{}: {} come{} from Secrets Manager and {} not inspected for broker hosts",
                s.id(),
                secrets.join(", "),
                if secrets.len() == 1 { "s" } else { "" },
                if secrets.len() == 1 { "was" } else { "were" },
            ));
        }
    }

    // The graph and the waves.
    // Changes are made one per declared service, in the plan file's order: the graph borrows
    // the names each publishes and consumes from the plan file.
    let participants: Vec<Participant> = changes
        .iter()
        .zip(&config.services)
        .map(|(c, decl)| Participant {
            id: c.id(),
            moving: c.action != Action::Noop,
            publishes: Cow::Borrowed(&decl.publishes),
            consumes: Cow::Borrowed(&decl.consumes),
        })
        .collect();
    let topology = Topology::of(world, &brokers);
    let flow = Flow::new(&participants, &topology.bindings);
    let order = flow.waves(config.migration.strategy);
    for cycle in &order.cycles {
        let wave = order.wave_of(&cycle[0]).unwrap_or(0);
        warnings.push(format!(
            "{} publish to each other's queues (a cycle): they move together in wave {wave}",
            cycle.join(", ")
        ));
    }
    let wave_of: std::collections::HashMap<&str, usize> = order
        .waves
        .iter()
        .enumerate()
        .flat_map(|(i, ids)| ids.iter().map(move |id| (id.as_str(), i + 1)))
        .collect();
    for change in &mut changes {
        change.wave = wave_of.get(change.id().as_str()).copied();
    }

    let drains = drains(&changes, &topology, config.migration.strategy);
    let leftovers = if config.migration.strategy == Strategy::Drain {
        let members = changes
            .iter()
            .map(|c| (c.id(), c.wave, c.consumes.as_slice()));
        cycle_leftovers(&drains, &order.cycles, members)
    } else {
        Vec::new()
    };
    let to_create = topology_of(world, &brokers, &changes, &mut warnings);
    let federation = federation_of(config, world, &brokers, &changes, &to_create, &mut warnings)?;
    polled_warnings(federation.as_ref(), world, &brokers, &mut warnings);
    end_state_warnings(
        &changes,
        &unmanaged,
        &flow,
        &topology,
        &brokers,
        &clients,
        &mut warnings,
    );
    // What apply creates on the new broker before the first wave is no longer missing there.
    let created: std::collections::HashSet<String> = to_create
        .iter()
        .filter_map(|t| match t.definition() {
            crate::backend::broker::Definition::Exchange(e) => Some(e.name),
            crate::backend::broker::Definition::Queue(q) => Some(q.name),
            _ => None,
        })
        .collect();
    warnings.retain(|w| {
        w.split_once(" does not exist on the new broker ")
            .is_none_or(|(name, _)| !created.contains(name))
    });

    // The graph, the topology and the lookups that made the order are freed before the
    // fingerprint is made: at a region's size they are tens of megabytes.
    drop(flow);
    drop((
        participants,
        topology,
        wave_of,
        created,
        clients,
        index,
        by_id,
        declared,
    ));

    changes.sort_by(|a, b| {
        (a.action == Action::Noop, a.wave)
            .cmp(&(b.action == Action::Noop, b.wave))
            .then_with(|| id_bytes(&a.cluster, &a.service).cmp(id_bytes(&b.cluster, &b.service)))
    });
    let (retargets, notes) = scheduled_tasks(world, &changes, &brokers, &scope);
    let unmanaged_resources =
        unmanaged_resources(world, &brokers, (&changes, &retargets), &mut warnings);
    let mut fingerprint = fingerprint(
        world,
        &scanned,
        &changes,
        &unmanaged,
        (&brokers.new, &config.parameters),
    );
    fingerprint_resources(
        &mut fingerprint,
        world,
        &brokers,
        (&changes, &retargets),
        &unmanaged_resources,
    );
    fingerprint
        .entries
        .extend(crate::retarget::fingerprint_entries(world, &retargets));
    Ok(Plan {
        format_version: FORMAT_VERSION,
        migration: config.migration.name.clone(),
        strategy: config.migration.strategy,
        brokers,
        scope,
        changes,
        waves: order.waves,
        drains,
        leftovers,
        unmanaged,
        unmanaged_resources,
        warnings,
        parameters: config.parameters.clone(),
        fingerprint,
        retargets,
        notes,
        topology: to_create,
        federation,
    })
}

/// The queues of `broker` each service consumes, by `cluster/service`, in the broker's order:
/// what its queues' `consumed_by` names, told apart as [`crate::clients::Clients::consumer`]
/// does. Each client is looked up once, however many queues it consumes.
fn queues_consumed(
    broker: Option<&Broker>,
    clients: &crate::clients::Clients,
) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let Some(broker) = broker else {
        return out;
    };
    let mut consumers: HashMap<&str, Vec<String>> = HashMap::new();
    for queue in broker.queues.iter().flatten() {
        let mut ids: BTreeSet<String> = BTreeSet::new();
        for client in &queue.consumed_by {
            let of_client = consumers
                .entry(client)
                .or_insert_with(|| clients.consumer(client, &broker.connections));
            ids.extend(of_client.iter().cloned());
        }
        for id in ids {
            out.entry(id).or_default().push(queue.name.clone());
        }
    }
    out
}

/// The scheduled tasks apply retargets for `changes`, and the notes about those it leaves to
/// follow their family's latest revision.
fn scheduled_tasks(
    world: &World,
    changes: &[Change],
    brokers: &Brokers,
    scope: &Scope,
) -> (Vec<crate::retarget::Retarget>, Vec<String>) {
    (
        crate::retarget::retargets(world, changes, brokers, scope.broker_env.as_deref()),
        crate::retarget::notes(world, changes),
    )
}

fn change_for(
    world: &World,
    index: &Index,
    brokers: &Brokers,
    decl: &crate::config::ServiceDecl,
    scanned: &Scanned,
    warnings: &mut Vec<String>,
) -> Change {
    let placement = Placement::of(&scanned.pointers);
    let to = decl.broker;
    let from_alias = to.other();
    let mut change = Change {
        cluster: decl.cluster.clone(),
        service: decl.name.clone(),
        action: Action::Noop,
        from: (placement != Placement::Neither).then_some(placement),
        to,
        wave: None,
        reason: None,
        task_definition: scanned.task_definition.to_owned(),
        rewrites: Vec::new(),
        publishes: decl.publishes.clone(),
        consumes: decl.consumes.clone(),
    };
    if placement == Placement::Neither {
        warnings.push(format!(
            "{} is in the plan but points at neither broker: nothing to move",
            decl.id()
        ));
        return change;
    }
    if !placement.touches(from_alias) {
        return change;
    }
    change.action = Action::Update;
    let source = brokers.get(from_alias);
    let target = brokers.get(to);
    let mut reasons = Vec::new();
    for pointer in scanned.pointers.iter().filter(|p| p.broker == from_alias) {
        match &pointer.via {
            Via::Variable { name } => {
                let rewritten = discovery::rewrite(&pointer.value, source, target)
                    .expect("a value that names the source broker can be rewritten");
                change.rewrites.push(Rewrite {
                    container: pointer.container.clone(),
                    variable: Some(name.clone()),
                    parameter: None,
                    field: None,
                    from: mask_password(&pointer.value),
                    to: mask_password(&rewritten),
                    env_file: None,
                });
            }
            Via::Field { path } => {
                let rewritten = discovery::rewrite_field(&pointer.value, source, target)
                    .expect("a field that names the source broker can be rewritten");
                change.rewrites.push(Rewrite {
                    container: pointer.container.clone(),
                    variable: None,
                    parameter: None,
                    field: Some(path.clone()),
                    from: mask_password(&pointer.value),
                    to: mask_password(&rewritten),
                    env_file: None,
                });
            }
            Via::EnvFile { name, file } => {
                let rewritten = discovery::rewrite(&pointer.value, source, target)
                    .expect("a value that names the source broker can be rewritten");
                change.rewrites.push(Rewrite {
                    container: pointer.container.clone(),
                    variable: Some(name.clone()),
                    parameter: None,
                    field: None,
                    from: mask_password(&pointer.value),
                    to: mask_password(&rewritten),
                    env_file: Some(file.clone()),
                });
            }
            Via::Parameter { name, parameter } if discovery::is_secrets_manager(parameter) => {
                reasons.push(format!(
                    "container {} reads its broker host from Secrets Manager secret {parameter} ({name}), and warren does not change secrets: change the secret's value (or the task definition's valueFrom) by hand",
                    pointer.container
                ));
            }
            Via::Parameter { name, parameter } => {
                match index.parameters.mapped(parameter, to) {
                    None => reasons.push(format!(
                        "container {} reads its broker host from parameter {parameter} ({name}), which [parameters] does not map to a parameter holding the {to} broker's host",
                        pointer.container
                    )),
                    Some(mapped) => {
                        match parameter_value(world, &mapped) {
                            Some(value) if !target.named_in(value) => reasons.push(format!(
                                "parameter {mapped}, mapped from {parameter}, does not name the {to} broker (it holds {:?})",
                                mask_password(value)
                            )),
                            None => warnings.push(format!(
                                "{}: parameter {mapped} (mapped from {parameter}) does not exist yet; create it before apply",
                                decl.id()
                            )),
                            Some(_) => {}
                        }
                        change.rewrites.push(Rewrite {
                            container: pointer.container.clone(),
                            variable: None,
                            parameter: Some(name.clone()),
                            field: None,
                            from: parameter.clone(),
                            to: mapped,
                            env_file: None,
                        });
                    }
                }
            }
        }
    }
    change.rewrites.sort();
    change.rewrites.dedup();
    change.rewrites.shrink_to_fit();
    let service = index
        .services
        .get(&(decl.cluster.as_str(), decl.name.as_str()));
    reasons.extend(service.and_then(|s| controller_reason(s)));
    if !reasons.is_empty() {
        change.action = Action::Manual;
        change.reason = Some(reasons.join("; "));
    }
    change
}

/// Why apply cannot move a service whose deployments another controller makes: ECS refuses
/// UpdateService's task definition for a `CODE_DEPLOY` or `EXTERNAL` service (an emulator
/// may not), so the operator deploys the moved revision through that controller.
fn controller_reason(service: &Service) -> Option<String> {
    let controller = service.deployment_controller.as_deref()?;
    let (by, through) = if controller.eq_ignore_ascii_case("CODE_DEPLOY") {
        ("CodeDeploy", "CodeDeploy")
    } else if controller.eq_ignore_ascii_case("EXTERNAL") {
        ("an external controller", "the controller")
    } else {
        return None;
    };
    Some(format!(
        "deployed by {by}: UpdateService cannot change its task definition; register the moved revision and deploy it through {through}"
    ))
}

/// Lookups a plan makes once per declared service, indexed once per plan.
struct Index<'a> {
    services: HashMap<(&'a str, &'a str), &'a Service>,
    parameters: ParameterMap<'a>,
}

/// The plan's `[parameters]` both ways, by parameter name (a reference by ARN and one by name
/// are the same parameter).
struct ParameterMap<'c> {
    to_new: HashMap<String, &'c String>,
    to_old: HashMap<String, &'c String>,
}

impl<'c> ParameterMap<'c> {
    fn of(map: &'c IndexMap<String, String>) -> ParameterMap<'c> {
        let mut to_new = HashMap::new();
        let mut to_old = HashMap::new();
        for (old, new) in map {
            // The first entry that names a parameter wins, as in the file's order.
            to_new.entry(parameter_name(old)).or_insert(new);
            to_old.entry(parameter_name(new)).or_insert(old);
        }
        ParameterMap { to_new, to_old }
    }

    /// The parameter that replaces `parameter` when a service moves to `to`.
    fn mapped(&self, parameter: &str, to: BrokerAlias) -> Option<String> {
        let map = match to {
            BrokerAlias::New => &self.to_new,
            BrokerAlias::Old => &self.to_old,
        };
        map.get(&parameter_name(parameter)).map(|p| (*p).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::chain;
    use crate::model::Queue;

    /// What each left-out service consumes is looked up once per queue, not once per service
    /// and queue: a thousand left-out consumers of a thousand queues the broker names took
    /// minutes (every service against every queue, every client against every service).
    #[test]
    fn a_thousand_left_out_consumers_are_matched_to_their_queues_at_once() {
        const LEFT_OUT: usize = 1_000;
        let mut world = chain::world();
        let p1 = world.clusters[0].services[0].clone();
        let queues = world.brokers[0]
            .queues
            .as_mut()
            .expect("the chain's queues");
        for i in 0..LEFT_OUT {
            let mut service = p1.clone();
            service.name = format!("left-out-{i}");
            world.clusters[0].services.push(service);
            queues.push(Queue {
                name: format!("exports.{i}"),
                consumed_by: vec![format!("c/left-out-{i}")],
                ..Queue::default()
            });
        }
        let started = std::time::Instant::now();
        let plan = make(&chain::config(), &world).expect("plans");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "took {:?}",
            started.elapsed()
        );
        assert_eq!(plan.unmanaged.len(), LEFT_OUT);
        for u in &plan.unmanaged {
            let i = u.service.trim_start_matches("left-out-");
            assert_eq!(u.consumes, [format!("exports.{i}")], "{}", u.id());
        }
    }
}
