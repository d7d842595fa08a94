//! The plan: what moves, in which order, and what nobody declared.
//!
//! [`Plan`] is a plain value. [`make`] computes it from a validated plan file and the scanned
//! state without touching any backend; renderers print it and `apply` executes it. A saved plan
//! ([`SavedPlan`]) is the same value with a checksum of its own content.

use std::collections::{BTreeMap, BTreeSet};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{BrokerAlias, Config, SecretsToRead, Strategy};
use crate::discovery::{
    self, mask_password, parameter_value, same_parameter, Placement, Pointer, ResolvedBroker,
    Uninspected, Via, REDACTED,
};
use crate::error::{Error, Result};
use crate::graph::{Flow, Participant, Route};
use crate::model::{Broker, DestinationType, Schedule, World};
use crate::resources::{self, UnmanagedResource};

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

/// A digest of the state a plan was made from, so `apply` can refuse a stale saved plan.
///
/// Entries are `service:cluster/name` and `parameter:name`, each mapped to a digest of what
/// the plan depends on; a change anywhere else leaves the fingerprint as it was.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub entries: BTreeMap<String, String>,
}

impl Fingerprint {
    /// Entries that differ between `self` (saved) and `now`, described for a person.
    #[must_use]
    pub fn differences(&self, now: &Fingerprint) -> Vec<String> {
        let mut out = Vec::new();
        for (key, saved) in &self.entries {
            match now.entries.get(key) {
                None => out.push(format!("{key} is gone")),
                Some(current) if current != saved => out.push(format!("{key} changed")),
                Some(_) => {}
            }
        }
        for key in now.entries.keys() {
            if !self.entries.contains_key(key) {
                out.push(format!("{key} is new"));
            }
        }
        out
    }
}

/// A plan written by `plan --out`: the plan, the plan file it was made from, and a checksum of
/// both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPlan {
    pub plan: Plan,
    /// The plan file (absolute path) the plan was made from: on AWS, the migration's journal
    /// and lock sit beside it, whatever folder the saved plan is applied from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_file: Option<std::path::PathBuf>,
    /// `sha256:` of the plan's canonical JSON (and of the plan file's path).
    pub checksum: String,
}

impl SavedPlan {
    /// Wraps `plan` with its checksum.
    #[must_use]
    pub fn new(plan: Plan) -> SavedPlan {
        let checksum = checksum(&plan, None);
        SavedPlan {
            plan,
            plan_file: None,
            checksum,
        }
    }

    /// The same saved plan, recording the plan file it was made from.
    #[must_use]
    pub fn made_from(mut self, plan_file: &std::path::Path) -> SavedPlan {
        self.plan_file = Some(plan_file.to_owned());
        self.checksum = checksum(&self.plan, self.plan_file.as_deref());
        self
    }

    /// Whether the checksum still matches the content.
    #[must_use]
    pub fn intact(&self) -> bool {
        checksum(&self.plan, self.plan_file.as_deref()) == self.checksum
    }

    /// Reads a saved plan from `text` (`path` is only used in messages): its JSON, its
    /// checksum, its format version, and the wave numbers it refers to.
    ///
    /// # Errors
    /// [`Error::Input`] naming the file, line and key when it is not a saved plan or a wave
    /// number is out of range; [`Error::Refused`] when it was altered or has another format.
    pub fn parse(path: &std::path::Path, text: &str) -> Result<SavedPlan> {
        let mut de = serde_json::Deserializer::from_str(text);
        let saved: SavedPlan = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| {
                let key = e.path().to_string();
                let inner = e.into_inner();
                (
                    inner.line(),
                    inner.column(),
                    (key != ".").then_some(key),
                    inner,
                )
            })
            .and_then(|saved| {
                de.end()
                    .map(|()| saved)
                    .map_err(|e| (e.line(), e.column(), None, e))
            })
            .map_err(|(line, column, key, e)| {
                let message = e.to_string();
                let message = message
                    .rfind(" at line ")
                    .map_or(message.as_str(), |i| &message[..i]);
                Error::Input {
                    file: path.to_owned(),
                    line,
                    column,
                    key,
                    message: format!("not a plan saved by `warren plan --out`: {message}"),
                }
            })?;
        if !saved.intact() {
            return Err(Error::Refused(format!(
                "{} was altered after it was saved (its checksum does not match); nothing was changed. Make a new one with `warren plan --out`",
                path.display()
            )));
        }
        if saved.plan.format_version != FORMAT_VERSION {
            return Err(Error::Refused(format!(
                "{} has plan format {}, this warren reads {FORMAT_VERSION}; nothing was changed",
                path.display(),
                saved.plan.format_version,
            )));
        }
        saved.check_waves(path)?;
        Ok(saved)
    }

    /// Every wave number a change or a drain names is one of the plan's waves.
    fn check_waves(&self, path: &std::path::Path) -> Result<()> {
        let waves = self.plan.waves.len();
        let changes = self
            .plan
            .changes
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("plan.changes[{i}].wave"), c.wave));
        let drains = self
            .plan
            .drains
            .iter()
            .enumerate()
            .map(|(i, d)| (format!("plan.drains[{i}].wave"), d.wave));
        for (key, wave) in changes.chain(drains) {
            if let Some(wave) = wave.filter(|w| !(1..=waves).contains(w)) {
                return Err(Error::Input {
                    file: path.to_owned(),
                    line: 0,
                    column: 0,
                    key: Some(key),
                    message: if waves == 0 {
                        format!("wave {wave} is out of range: the plan has no waves")
                    } else {
                        format!("wave {wave} is out of range: the plan has waves 1 to {waves}")
                    },
                });
            }
        }
        Ok(())
    }
}

fn checksum(plan: &Plan, plan_file: Option<&std::path::Path>) -> String {
    let mut bytes = serde_json::to_vec(plan).expect("a plan always serialises");
    if let Some(path) = plan_file {
        bytes.push(b'\n');
        bytes.extend_from_slice(path.to_string_lossy().as_bytes());
    }
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

pub(crate) fn digest(value: &impl Serialize) -> String {
    let bytes = serde_json::to_vec(value).expect("plain data always serialises");
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
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
pub struct Scanned {
    pub cluster: String,
    pub service: String,
    pub task_definition: String,
    pub pointers: Vec<Pointer>,
    pub uninspected: Vec<Uninspected>,
}

impl Scanned {
    /// `cluster/service`.
    #[must_use]
    pub fn id(&self) -> String {
        format!("{}/{}", self.cluster, self.service)
    }
}

/// Scans the services of `clusters` (`None`: all) for pointers at the two brokers.
///
/// # Errors
/// [`Error::Backend`] when a service names a task definition the state does not have.
pub fn scan(
    world: &World,
    brokers: [&ResolvedBroker; 2],
    clusters: Option<&[String]>,
    only: Option<&[String]>,
) -> Result<Vec<Scanned>> {
    let mut out = Vec::new();
    let definitions = world.definitions_by_key();
    for cluster in &world.clusters {
        if clusters.is_some_and(|cs| !cs.contains(&cluster.name)) {
            continue;
        }
        for service in &cluster.services {
            let td = definitions
                .get(service.task_definition.as_str())
                .copied()
                .ok_or_else(|| {
                    Error::Backend(format!(
                        "service {}/{} runs task definition {}, which does not exist",
                        cluster.name, service.name, service.task_definition
                    ))
                })?;
            let (pointers, uninspected) = discovery::pointers(world, td, brokers, only);
            out.push(Scanned {
                cluster: cluster.name.clone(),
                service: service.name.clone(),
                task_definition: service.task_definition.clone(),
                pointers,
                uninspected,
            });
        }
    }
    out.sort_by_key(Scanned::id);
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
    let by_id: BTreeMap<String, &Scanned> = scanned.iter().map(|s| (s.id(), s)).collect();
    let mut changes = Vec::new();
    for decl in &config.services {
        let found = by_id
            .get(&decl.id())
            .copied()
            .expect("check_against made sure every declared service was scanned");
        changes.push(change_for(
            config,
            world,
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
    ownership_warnings(world, &changes, &mut warnings);

    // Unmanaged services.
    let mut unmanaged = Vec::new();
    let declared: BTreeSet<String> = config
        .services
        .iter()
        .map(crate::config::ServiceDecl::id)
        .collect();
    for s in &scanned {
        if declared.contains(&s.id()) {
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
            let consumes = brokers
                .old
                .in_world(world)
                .and_then(|b| b.queues.as_ref())
                .into_iter()
                .flatten()
                .filter(|q| {
                    q.consumed_by
                        .iter()
                        .any(|c| *c == s.service || *c == s.id())
                })
                .map(|q| q.name.clone())
                .collect();
            unmanaged.push(Unmanaged {
                cluster: s.cluster.clone(),
                service: s.service.clone(),
                broker: placement,
                task_definition: s.task_definition.clone(),
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
    let participants: Vec<Participant> = changes
        .iter()
        .map(|c| Participant {
            id: c.id(),
            moving: c.action != Action::Noop,
            publishes: c.publishes.clone(),
            consumes: c.consumes.clone(),
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
    end_state_warnings(
        &changes,
        &unmanaged,
        &flow,
        &topology,
        &brokers,
        &mut warnings,
    );

    changes.sort_by(|a, b| {
        (a.action == Action::Noop, a.wave, a.id()).cmp(&(b.action == Action::Noop, b.wave, b.id()))
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
        unmanaged,
        unmanaged_resources,
        warnings,
        parameters: config.parameters.clone(),
        fingerprint,
        retargets,
        notes,
    })
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
    config: &Config,
    world: &World,
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
        task_definition: scanned.task_definition.clone(),
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
                match mapped_parameter(&config.parameters, parameter, to) {
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
    reasons.extend(controller_reason(world, &decl.cluster, &decl.name));
    if !reasons.is_empty() {
        change.action = Action::Manual;
        change.reason = Some(reasons.join("; "));
    }
    change
}

/// Why apply cannot move a service whose deployments another controller makes: ECS refuses
/// UpdateService's task definition for a `CODE_DEPLOY` or `EXTERNAL` service (an emulator
/// may not), so the operator deploys the moved revision through that controller.
fn controller_reason(world: &World, cluster: &str, service: &str) -> Option<String> {
    let controller = world
        .service(cluster, service)?
        .deployment_controller
        .as_deref()?;
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

/// The parameter that replaces `parameter` when a service moves to `to`.
fn mapped_parameter(
    map: &IndexMap<String, String>,
    parameter: &str,
    to: BrokerAlias,
) -> Option<String> {
    map.iter().find_map(|(old, new)| match to {
        BrokerAlias::New if same_parameter(old, parameter) => Some(new.clone()),
        BrokerAlias::Old if same_parameter(new, parameter) => Some(old.clone()),
        _ => None,
    })
}

/// What the plan knows of the two brokers' queues, exchanges and bindings.
struct Topology<'w> {
    old: Option<&'w Broker>,
    new: Option<&'w Broker>,
    /// Bindings of both brokers, to queues and to exchanges.
    bindings: Vec<Route>,
}

impl<'w> Topology<'w> {
    fn of(world: &'w World, brokers: &Brokers) -> Topology<'w> {
        let known = |b: Option<&'w Broker>| b.filter(|b| b.queues.is_some());
        let old = known(brokers.old.in_world(world));
        let new = known(brokers.new.in_world(world));
        let mut bindings: Vec<Route> = [old, new]
            .into_iter()
            .flatten()
            .flat_map(|b| b.bindings.iter().map(Route::from))
            .collect();
        bindings.sort();
        bindings.dedup();
        Topology { old, new, bindings }
    }

    fn broker(&self, alias: BrokerAlias) -> Option<&'w Broker> {
        match alias {
            BrokerAlias::Old => self.old,
            BrokerAlias::New => self.new,
        }
    }
}

/// The bindings of both brokers (to queues and to exchanges), where their topology is known.
#[must_use]
pub fn bindings(world: &World, brokers: &Brokers) -> Vec<Route> {
    Topology::of(world, brokers).bindings
}

/// The names of every queue and exchange `broker` has (an exchange a binding names, at either
/// end, exists).
fn destinations(broker: &Broker) -> BTreeSet<&str> {
    broker
        .queues
        .iter()
        .flatten()
        .map(|q| q.name.as_str())
        .chain(broker.exchanges.iter().map(|e| e.name.as_str()))
        .chain(broker.bindings.iter().map(|b| b.exchange.as_str()))
        .chain(
            broker
                .bindings
                .iter()
                .filter(|b| b.destination_type == DestinationType::Exchange)
                .map(|b| b.destination.as_str()),
        )
        .collect()
}

fn drains(changes: &[Change], topology: &Topology<'_>, strategy: Strategy) -> Vec<Drain> {
    let mut out = BTreeSet::new();
    let vhosts = |alias: BrokerAlias| -> BTreeMap<&str, &str> {
        topology
            .broker(alias)
            .and_then(|b| b.queues.as_ref())
            .into_iter()
            .flatten()
            .map(|q| (q.name.as_str(), q.vhost.as_str()))
            .collect()
    };
    let (old_vhosts, new_vhosts) = (vhosts(BrokerAlias::Old), vhosts(BrokerAlias::New));
    for change in changes.iter().filter(|c| c.action != Action::Noop) {
        let source = change.to.other();
        let known = match source {
            BrokerAlias::Old => &old_vhosts,
            BrokerAlias::New => &new_vhosts,
        };
        for queue in &change.consumes {
            let vhost = known
                .get(queue.as_str())
                .map_or_else(crate::model::default_vhost, |v| (*v).to_owned());
            out.insert(Drain {
                wave: match strategy {
                    Strategy::Drain => change.wave,
                    Strategy::Federate => None,
                },
                broker: source,
                vhost,
                queue: queue.clone(),
            });
        }
    }
    let mut out: Vec<Drain> = out.into_iter().collect();
    out.sort_by(|a, b| {
        (a.wave.unwrap_or(usize::MAX), &a.queue, a.broker).cmp(&(
            b.wave.unwrap_or(usize::MAX),
            &b.queue,
            b.broker,
        ))
    });
    out
}

fn end_state_warnings(
    changes: &[Change],
    unmanaged: &[Unmanaged],
    flow: &Flow,
    topology: &Topology<'_>,
    brokers: &Brokers,
    warnings: &mut Vec<String>,
) {
    // Where each declared service ends up.
    let end: BTreeMap<String, Option<BrokerAlias>> = changes
        .iter()
        .map(|c| {
            let end = match (c.action, c.from) {
                (Action::Update | Action::Manual, _) => Some(c.to),
                (Action::Noop, Some(Placement::Old)) => Some(BrokerAlias::Old),
                (Action::Noop, Some(Placement::New)) => Some(BrokerAlias::New),
                (Action::Noop, _) => None,
            };
            (c.id(), end)
        })
        .collect();

    // 1. Publishers and consumers of a queue that end on different brokers.
    for queue in flow.queues() {
        let consumers: Vec<(String, BrokerAlias)> = flow
            .consumers_of(&queue)
            .into_iter()
            .filter_map(|p| end.get(&p.id).copied().flatten().map(|b| (p.id.clone(), b)))
            .collect();
        if consumers.is_empty() {
            continue;
        }
        for publisher in flow.publishers_of(&queue) {
            let Some(Some(on)) = end.get(&publisher.id) else {
                continue;
            };
            if consumers.iter().all(|(_, b)| b != on) {
                let names: Vec<&str> = consumers.iter().map(|(id, _)| id.as_str()).collect();
                warnings.push(format!(
                    "after the plan, {} publishes to {queue} on the {on} broker, but its consumers ({}) are on the {} broker: messages would stall unconsumed",
                    publisher.id,
                    names.join(", "),
                    on.other()
                ));
            }
        }
    }

    // 2. Old-broker queues consumed by services the plan does not manage.
    if let Some(old) = topology.old {
        // A connection names its service by service name or by cluster/service.
        let unmanaged_names: BTreeMap<String, String> = unmanaged
            .iter()
            .flat_map(|u| [(u.service.clone(), u.id()), (u.id(), u.id())])
            .collect();
        for queue in old.queues.iter().flatten() {
            let declared: Vec<&Participant> = flow.consumers_of(&queue.name);
            let by_unmanaged: BTreeSet<&String> = queue
                .consumed_by
                .iter()
                .filter_map(|client| unmanaged_names.get(client.as_str()))
                .collect();
            for id in &by_unmanaged {
                warnings.push(format!(
                    "queue {} on the old broker is consumed by {id}, which is not in the plan",
                    queue.name
                ));
            }
            if by_unmanaged.is_empty() && declared.is_empty() && queue.consumers > 0 {
                let fed_by_moving = flow.publishers_of(&queue.name).iter().any(|p| p.moving);
                let named = consumers_in_the_plan(queue, changes);
                if fed_by_moving && !named.is_empty() {
                    let (them, their) = if named.len() == 1 {
                        ("it", "its")
                    } else {
                        ("them", "their")
                    };
                    warnings.push(format!(
                        "queue {q} on the old broker is consumed by {}, which the plan declares without {q} in `consumes`: warren cannot order {them} after the queue's publishers; add {q} to {their} `consumes`",
                        named.join(", "),
                        q = queue.name,
                    ));
                } else if fed_by_moving {
                    warnings.push(format!(
                        "queue {} on the old broker has {} consumer{} that the plan does not declare, and its publishers move: find the consumer before the old broker goes",
                        queue.name,
                        queue.consumers,
                        if queue.consumers == 1 { "" } else { "s" }
                    ));
                }
            }
        }
    }

    // 3. Declared names that the brokers do not have.
    let mut missing = BTreeSet::new();
    for alias in [BrokerAlias::Old, BrokerAlias::New] {
        let Some(broker) = topology.broker(alias) else {
            continue;
        };
        let has = destinations(broker);
        for change in changes {
            for name in change.publishes.iter().chain(&change.consumes) {
                if !has.contains(name.as_str()) {
                    missing.insert((alias, name.clone()));
                }
            }
        }
    }
    for (alias, name) in missing {
        let id = &brokers.get(alias).id;
        warnings.push(match alias {
            BrokerAlias::Old => format!("{name} is declared in the plan but the old broker {id} does not have it"),
            BrokerAlias::New => format!(
                "{name} does not exist on the new broker {id} yet: create it (or import the old broker's definitions) before apply"
            ),
        });
    }
}

/// The services of the plan (`cluster/service`, sorted) that the broker names among `queue`'s
/// consumers (`consumed_by`, by service name or `cluster/service`): declared consumers, even
/// where their `consumes` does not list the queue.
fn consumers_in_the_plan(queue: &crate::model::Queue, changes: &[Change]) -> Vec<String> {
    let named: BTreeSet<String> = changes
        .iter()
        .filter(|c| {
            queue
                .consumed_by
                .iter()
                .any(|client| *client == c.service || *client == c.id())
        })
        .map(Change::id)
        .collect();
    named.into_iter().collect()
}

/// Warns about each declared service that the plan moves only in part: `broker_env` does not
/// list a variable (or a secret's variable) that names the broker the service leaves, so apply
/// leaves that one as it is and the service ends split between the brokers (as `status` and
/// `decommission`, which read every variable, see it).
fn partial_move_warnings(
    world: &World,
    brokers: &Brokers,
    broker_env: Option<&[String]>,
    changes: &[Change],
    warnings: &mut Vec<String>,
) {
    let Some(listed) = broker_env else {
        return;
    };
    for change in changes {
        let Some(td) = world.task_definition(&change.task_definition) else {
            continue;
        };
        let leaves = change.to.other();
        let (everything, _) = discovery::pointers(world, td, [&brokers.old, &brokers.new], None);
        let unlisted = unlisted(&everything, listed, leaves);
        if unlisted.is_empty() {
            continue;
        }
        let (them, name, it) = if unlisted.len() == 1 {
            ("names", "the variable", "it")
        } else {
            ("name", "the variables", "them")
        };
        let list = unlisted.join(", ");
        warnings.push(if change.action == Action::Noop {
            format!(
                "{} is split: {list} still {them} the {leaves} broker and broker_env does not list {it}, so warren does not move {it} (add {name} to broker_env)",
                change.id()
            )
        } else {
            format!(
                "{} is moved only in part: {list} still {them} the {leaves} broker and broker_env does not list {it}, so after apply the service is split between the brokers (add {name} to broker_env)",
                change.id()
            )
        });
    }
}

/// `container/VARIABLE` of each of `pointers` (found in every variable and secret) that names
/// broker `leaves` through a variable `listed` (the plan's `broker_env`) does not name: what a
/// move leaves behind.
#[must_use]
pub fn unlisted(pointers: &[Pointer], listed: &[String], leaves: BrokerAlias) -> Vec<String> {
    let mut out: Vec<String> = pointers
        .iter()
        .filter(|p| p.broker == leaves && !listed.iter().any(|n| n == p.via.variable()))
        .map(|p| format!("{}/{}", p.container, p.via.variable()))
        .collect();
    out.dedup();
    out
}

/// Warns about each service the plan moves that infrastructure as code owns (its tags say
/// so): the next deploy of that code puts the old task definition back.
fn ownership_warnings(world: &World, changes: &[Change], warnings: &mut Vec<String>) {
    for change in changes.iter().filter(|c| c.action != Action::Noop) {
        let owner = world
            .service(&change.cluster, &change.service)
            .and_then(|s| crate::ownership::owner(&s.tags));
        if let Some(owner) = owner {
            warnings.push(owner.warning(&change.id()));
        }
    }
}

/// The fingerprint of the state a plan depends on: every declared service and every scanned
/// service that points at either broker (its task definition and content, its deployments),
/// every parameter their containers read, and what `apply`'s preconditions check (the new
/// broker's state, every mapped target parameter; `targets` is the new broker and the
/// `[parameters]` map).
#[must_use]
pub fn fingerprint(
    world: &World,
    scanned: &[Scanned],
    changes: &[Change],
    unmanaged: &[Unmanaged],
    targets: (&ResolvedBroker, &IndexMap<String, String>),
) -> Fingerprint {
    let mut entries =
        crate::precondition::fingerprint_entries(world, targets.0, targets.1, changes);
    let relevant: BTreeSet<String> = changes
        .iter()
        .map(Change::id)
        .chain(unmanaged.iter().map(Unmanaged::id))
        .chain(
            scanned
                .iter()
                .filter(|s| !s.pointers.is_empty())
                .map(Scanned::id),
        )
        .collect();
    let definitions = world.definitions_by_key();
    let services: BTreeMap<(&str, &str), &crate::model::Service> = world
        .clusters
        .iter()
        .flat_map(|c| {
            c.services
                .iter()
                .map(move |s| ((c.name.as_str(), s.name.as_str()), s))
        })
        .collect();
    for s in scanned.iter().filter(|s| relevant.contains(&s.id())) {
        let Some(service) = services.get(&(s.cluster.as_str(), s.service.as_str())) else {
            continue;
        };
        let td = definitions.get(service.task_definition.as_str());
        let deployments: Vec<&str> = service
            .deployments
            .iter()
            .map(|d| d.task_definition.as_str())
            .collect();
        entries.insert(
            format!("service:{}", s.id()),
            digest(&(&service.task_definition, &deployments, td, &service.extra)),
        );
        // Only the parameters the move depends on: those that name a broker. A digest of any
        // other secret (a password) would be a hash of a credential in the saved plan.
        for pointer in &s.pointers {
            // An env file's variable: the value the move copies (its password masked, as the
            // digest of a credential must not stand in a saved plan).
            if let Via::EnvFile { name, file } = &pointer.via {
                entries.insert(
                    format!("env_file:{file}#{name}"),
                    digest(&mask_password(&pointer.value)),
                );
            }
            if let Via::Parameter { parameter, .. } = &pointer.via {
                let version = world.parameter_versions.get(parameter);
                entries.insert(
                    format!("parameter:{}", discovery::parameter_name(parameter)),
                    digest(&(&pointer.value, version)),
                );
            }
        }
    }
    for rewrite in changes.iter().flat_map(|c| &c.rewrites) {
        if rewrite.parameter.is_some() {
            let value = parameter_value(world, &rewrite.to);
            let version = world.parameter_versions.get(&rewrite.to);
            entries.insert(
                format!("parameter:{}", discovery::parameter_name(&rewrite.to)),
                digest(&(&value, version)),
            );
        }
    }
    Fingerprint { entries }
}

/// The fingerprint `plan` would have if it were made from `world` now: compare it with
/// `plan.fingerprint` to tell whether a saved plan is stale.
///
/// # Errors
/// As [`scan`]: a service on a task definition the state does not have.
pub fn fingerprint_now(world: &World, plan: &Plan) -> Result<Fingerprint> {
    let scanned = scan(
        world,
        [&plan.brokers.old, &plan.brokers.new],
        plan.scope.clusters.as_deref(),
        plan.scope.broker_env.as_deref(),
    )?;
    let mut now = fingerprint(
        world,
        &scanned,
        &plan.changes,
        &plan.unmanaged,
        (&plan.brokers.new, &plan.parameters),
    );
    let retargets = crate::retarget::retargets(
        world,
        &plan.changes,
        &plan.brokers,
        plan.scope.broker_env.as_deref(),
    );
    fingerprint_resources(
        &mut now,
        world,
        &plan.brokers,
        (&plan.changes, &retargets),
        &plan.unmanaged_resources,
    );
    now.entries
        .extend(crate::retarget::fingerprint_entries(world, &retargets));
    Ok(now)
}

/// The rules and schedules that apply moves, so that they are not unmanaged: one it retargets
/// (see [`crate::retarget`]), and one that names a bare family, which follows its latest
/// revision: apply registers a moved revision (the family's latest) for every service it
/// updates.
fn moved_by_apply(
    (changes, retargets): (&[Change], &[crate::retarget::Retarget]),
    schedule: &Schedule,
) -> bool {
    crate::retarget::is_retargeted(retargets, schedule)
        || !schedule.task_definition.contains(':')
            && changes.iter().any(|c| {
                c.action == Action::Update
                    && c.task_definition
                        .rsplit_once(':')
                        .is_some_and(|(family, _)| family == schedule.task_definition)
            })
}

/// The resources that are not ECS services and point at the old broker, but for what apply
/// moves (see [`moved_by_apply`]). What could not be read (a rule's task definition that does
/// not exist) is a warning: decommission will count it as unverifiable.
fn unmanaged_resources(
    world: &World,
    brokers: &Brokers,
    moved: (&[Change], &[crate::retarget::Retarget]),
    warnings: &mut Vec<String>,
) -> Vec<UnmanagedResource> {
    let findings = resources::find(world, &brokers.old, &brokers.new, &|s| {
        moved_by_apply(moved, s)
    });
    warnings.extend(
        findings
            .unreadable
            .into_iter()
            .map(|what| format!("{what}: whether it points at the old broker is unknown")),
    );
    findings.found.into_iter().map(|f| f.resource).collect()
}

/// Adds a `resource:kind:name` entry for each resource `listed` in the plan and each that
/// points at the old broker now: a saved plan goes stale when one changes, goes, or starts
/// pointing. A world without such resources leaves the fingerprint as it was.
fn fingerprint_resources(
    fingerprint: &mut Fingerprint,
    world: &World,
    brokers: &Brokers,
    moved: (&[Change], &[crate::retarget::Retarget]),
    listed: &[UnmanagedResource],
) {
    fingerprint.entries.extend(resources::fingerprint_entries(
        world,
        &brokers.old,
        &brokers.new,
        listed,
        &|s| moved_by_apply(moved, s),
    ));
}
