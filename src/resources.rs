//! The other AWS resources that point at a broker: EventBridge rules and Scheduler schedules
//! that start ECS tasks, Lambda functions, Lambda event source mappings, EventBridge Pipes and
//! Step Functions state machines.
//!
//! Pure: a [`World`] and the two resolved brokers in, findings out. `plan` lists what points at
//! the old broker as unmanaged resources (warren does not change them) and `guard` as
//! decommission blockers; both read them here, so the two never disagree about what points.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::BrokerAlias;
use crate::discovery::{self, ResolvedBroker, Uninspected, REDACTED};
use crate::model::{Schedule, ScheduleKind, TaskDefinition, World};

/// What kind of resource points at a broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// An EventBridge rule's ECS target.
    Rule,
    /// An EventBridge Scheduler schedule that runs an ECS task.
    Schedule,
    /// A Lambda function.
    Function,
    /// A Lambda event source mapping.
    EventSourceMapping,
    /// An EventBridge pipe.
    Pipe,
    /// A Step Functions state machine.
    StateMachine,
}

impl ResourceKind {
    /// What the operator does so the resource stops needing the old broker: warren does not
    /// change these resources itself.
    #[must_use]
    pub fn action(self) -> &'static str {
        match self {
            ResourceKind::Rule | ResourceKind::Schedule => "point its target at a moved revision",
            ResourceKind::Function => "change its environment to the new broker and redeploy it",
            ResourceKind::EventSourceMapping => {
                "create a mapping from the new broker, then disable this one"
            }
            ResourceKind::Pipe => "create a pipe from the new broker, then delete this one",
            ResourceKind::StateMachine => "change the overrides in its definition",
        }
    }

    /// The kind as plan JSON writes it (`event_source_mapping`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Rule => "rule",
            ResourceKind::Schedule => "schedule",
            ResourceKind::Function => "function",
            ResourceKind::EventSourceMapping => "event_source_mapping",
            ResourceKind::Pipe => "pipe",
            ResourceKind::StateMachine => "state_machine",
        }
    }
}

impl std::fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resource that is not an ECS service and points at the old broker: warren lists it in the
/// plan and does not change it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UnmanagedResource {
    pub kind: ResourceKind,
    /// The resource's name; a rule on another bus than `default`, or a schedule in another
    /// group than `default`, is written `bus/name` or `group/name`.
    pub name: String,
    /// Its ARN, where the state knows it (`null` otherwise).
    pub arn: Option<String>,
    /// The broker it points at: always `old`.
    pub broker: BrokerAlias,
    /// What in it names the broker: `container/VARIABLE in family:revision` or
    /// `container/VARIABLE (override)` for a rule or schedule, the variable for a function,
    /// `source` for a mapping or pipe, the JSON path of the value for a state machine.
    pub through: Vec<String>,
    /// What to do about it, in one line.
    pub action: String,
}

impl UnmanagedResource {
    /// `kind name`, as messages name it.
    #[must_use]
    pub fn id(&self) -> String {
        format!("{} {}", self.kind, self.name)
    }

    /// The key of its fingerprint entry.
    fn fingerprint_key(&self) -> (ResourceKind, String) {
        (self.kind, self.name.clone())
    }
}

/// One resource that points at the old broker, and the sentence a decommission blocker says
/// about it (naming the resource and its ARN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub resource: UnmanagedResource,
    pub detail: String,
}

/// Everything one look at the resources found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// What points at the old broker, sorted by kind and name.
    pub found: Vec<Found>,
    /// What could not be read (a rule's task definition that does not exist, a redacted
    /// value): whether it points at the old broker is unknown.
    pub unreadable: Vec<String>,
    /// What a rule's or schedule's task definition holds that could not be inspected, by
    /// owner (`schedule name`).
    pub uninspected: Vec<(String, Vec<Uninspected>)>,
}

/// The resources of `world` that point at `old` (`new` is needed to tell the brokers apart in
/// task definitions). `retargeted` says which rules and schedules apply moves itself: those are
/// not unmanaged and are left out.
#[must_use]
pub fn find(
    world: &World,
    old: &ResolvedBroker,
    new: &ResolvedBroker,
    retargeted: &dyn Fn(&Schedule) -> bool,
) -> Findings {
    let mut look = Look {
        world,
        old,
        new,
        found: BTreeMap::new(),
        findings: Findings::default(),
    };
    look.schedules(retargeted);
    look.functions();
    look.event_source_mappings();
    look.pipes();
    look.state_machines();
    let mut findings = look.findings;
    findings.found = look.found.into_values().collect();
    findings
}

/// The unmanaged resources of `world`, sorted: [`find`] without what could not be read.
#[must_use]
pub fn unmanaged(
    world: &World,
    old: &ResolvedBroker,
    new: &ResolvedBroker,
    retargeted: &dyn Fn(&Schedule) -> bool,
) -> Vec<UnmanagedResource> {
    find(world, old, new, retargeted)
        .found
        .into_iter()
        .map(|f| f.resource)
        .collect()
}

/// The latest active revision of every family, by family: what a rule naming a bare family
/// (and a task started from the family) runs.
#[must_use]
pub fn latest_revisions(world: &World) -> BTreeMap<&str, &TaskDefinition> {
    let mut latest: BTreeMap<&str, &TaskDefinition> = BTreeMap::new();
    for td in world.task_definitions.iter().filter(|t| t.is_active()) {
        let entry = latest.entry(td.family.as_str()).or_insert(td);
        if td.revision > entry.revision {
            *entry = td;
        }
    }
    latest
}

/// The task definition `schedule` starts: the revision it names, or its family's latest
/// active revision; `None` when the state does not have it.
#[must_use]
pub fn started_by<'w>(
    world: &'w World,
    schedule: &Schedule,
    latest: &BTreeMap<&str, &'w TaskDefinition>,
) -> Option<&'w TaskDefinition> {
    if schedule.task_definition.contains(':') {
        world.task_definition(&schedule.task_definition)
    } else {
        latest.get(schedule.task_definition.as_str()).copied()
    }
}

/// How a rule or schedule is named: `bus/name` off the default bus, `group/name` off the
/// default group.
#[must_use]
pub fn schedule_name(schedule: &Schedule) -> String {
    let prefix = match schedule.kind {
        ScheduleKind::Rule => schedule.bus.as_deref(),
        ScheduleKind::Schedule => schedule.group.as_deref(),
    };
    match prefix {
        Some(p) if !p.is_empty() && p != "default" => format!("{p}/{}", schedule.name),
        _ => schedule.name.clone(),
    }
}

/// The task a schedule starts, as ECS runs it: its task definition (if readable) with the
/// target's environment overrides applied. An override for a container the definition does
/// not have is kept as a container of its own, so its values are still inspected.
fn with_overrides(td: Option<&TaskDefinition>, schedule: &Schedule) -> TaskDefinition {
    let mut task = td.cloned().unwrap_or_default();
    for (container, variables) in &schedule.overrides {
        let i = if let Some(i) = task.containers.iter().position(|c| &c.name == container) {
            i
        } else {
            task.containers.push(crate::model::Container {
                name: container.clone(),
                ..crate::model::Container::default()
            });
            task.containers.len() - 1
        };
        for (name, value) in variables {
            task.containers[i]
                .environment
                .insert(name.clone(), value.clone());
        }
    }
    task
}

/// Whether a mapping's or pipe's `source` is the old broker: its ARN, compared exactly where
/// the state knows it; otherwise an Amazon MQ broker ARN that ends in the broker's id.
fn is_broker(source: &str, arn: Option<&str>, id: &str) -> bool {
    match arn {
        Some(arn) => source == arn,
        None => {
            source.starts_with("arn:")
                && source.contains(":mq:")
                && source.rsplit(':').next() == Some(id)
        }
    }
}

/// `name (arn)`, or `name` where the ARN is unknown.
fn named(name: &str, arn: Option<&str>) -> String {
    match arn {
        Some(arn) => format!("{name} ({arn})"),
        None => name.to_owned(),
    }
}

/// One look at the resources of a world.
struct Look<'a> {
    world: &'a World,
    old: &'a ResolvedBroker,
    new: &'a ResolvedBroker,
    /// Found so far, by kind, name and ARN: a rule's targets that point are one resource.
    found: BTreeMap<(ResourceKind, String, Option<String>), Found>,
    findings: Findings,
}

impl Look<'_> {
    fn add(
        &mut self,
        kind: ResourceKind,
        name: String,
        arn: Option<&str>,
        through: Vec<String>,
        detail: String,
    ) {
        let key = (kind, name.clone(), arn.map(str::to_owned));
        match self.found.get_mut(&key) {
            Some(existing) => {
                for t in through {
                    if !existing.resource.through.contains(&t) {
                        existing.resource.through.push(t);
                    }
                }
                existing.detail = format!("{}; {detail}", existing.detail);
            }
            None => {
                self.found.insert(
                    key,
                    Found {
                        resource: UnmanagedResource {
                            kind,
                            name,
                            arn: arn.map(str::to_owned),
                            broker: BrokerAlias::Old,
                            through,
                            action: kind.action().to_owned(),
                        },
                        detail,
                    },
                );
            }
        }
    }

    /// Rules and schedules: the task they start (task definition and overrides).
    fn schedules(&mut self, retargeted: &dyn Fn(&Schedule) -> bool) {
        let world = self.world;
        let id = &self.old.id;
        let latest = latest_revisions(world);
        for schedule in world.schedules.iter().filter(|s| !retargeted(s)) {
            let (kind, what) = match schedule.kind {
                ScheduleKind::Rule => (ResourceKind::Rule, "EventBridge rule"),
                ScheduleKind::Schedule => (ResourceKind::Schedule, "Scheduler schedule"),
            };
            let name = schedule_name(schedule);
            let owner = format!("schedule {name}");
            let td = started_by(world, schedule, &latest);
            if td.is_none() {
                self.findings.unreadable.push(format!(
                    "{owner} runs {}, which could not be read",
                    schedule.task_definition
                ));
            }
            let task = with_overrides(td, schedule);
            let (pointers, uninspected) =
                discovery::pointers(world, &task, [self.old, self.new], None);
            if !uninspected.is_empty() {
                self.findings.uninspected.push((owner.clone(), uninspected));
            }
            // `through` names the revision (the plan shows no other); the blocker's detail
            // names it once, before the places.
            let mut through: Vec<String> = Vec::new();
            let mut places: Vec<String> = Vec::new();
            for p in pointers.iter().filter(|p| p.broker == BrokerAlias::Old) {
                let variable = p.via.variable();
                let overridden = schedule
                    .overrides
                    .get(&p.container)
                    .is_some_and(|vars| vars.contains_key(variable));
                let (entry, place) = match td {
                    Some(td) if !overridden => (
                        format!("{}/{variable} in {}", p.container, td.key()),
                        format!("{}/{variable}", p.container),
                    ),
                    _ => {
                        let place = format!("{}/{variable} (override)", p.container);
                        (place.clone(), place)
                    }
                };
                if !through.contains(&entry) {
                    through.push(entry);
                    places.push(place);
                }
            }
            if through.is_empty() {
                continue;
            }
            let mut context = vec![what.to_owned()];
            if !schedule.cluster.is_empty() {
                context.push(format!("cluster {}", schedule.cluster));
            }
            if let Some(arn) = &schedule.arn {
                context.push(arn.clone());
            }
            let starts = td.map_or_else(|| schedule.task_definition.clone(), TaskDefinition::key);
            let detail = format!(
                "{owner} ({}) starts tasks from {starts}, which point at {id} through {}",
                context.join(", "),
                places.join(", ")
            );
            self.add(kind, name, schedule.arn.as_deref(), through, detail);
        }
    }

    /// Lambda functions: an environment value that names the old broker's host.
    fn functions(&mut self) {
        let id = &self.old.id;
        for function in &self.world.functions {
            let who = named(&function.name, function.arn.as_deref());
            let mut through = Vec::new();
            for (variable, value) in &function.environment {
                if value == REDACTED {
                    self.findings.unreadable.push(format!(
                        "function {who} has {variable} redacted ({REDACTED}): whether it names {id} is unknown"
                    ));
                } else if self.old.named_in(value) {
                    through.push(variable.clone());
                }
            }
            if !through.is_empty() {
                let detail = format!(
                    "function {who} points at {id} through its environment: {}",
                    through.join(", ")
                );
                let arn = function.arn.as_deref();
                self.add(
                    ResourceKind::Function,
                    function.name.clone(),
                    arn,
                    through,
                    detail,
                );
            }
        }
    }

    /// Lambda event source mappings whose source is the old broker. A `Disabled` mapping no
    /// longer reads: it is what the operator leaves behind once a mapping from the new broker
    /// runs.
    fn event_source_mappings(&mut self) {
        let id = &self.old.id;
        let arn = self.old.in_world(self.world).and_then(|b| b.arn.clone());
        for mapping in &self.world.event_source_mappings {
            let disabled = mapping
                .state
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("Disabled"));
            if disabled || !is_broker(&mapping.source, arn.as_deref(), id) {
                continue;
            }
            let queues = if mapping.queues.is_empty() {
                String::new()
            } else {
                format!(", consuming {}", mapping.queues.join(", "))
            };
            let detail = format!(
                "event source mapping {} of function {} reads from {id} ({}){queues}",
                mapping.uuid, mapping.function, mapping.source
            );
            self.add(
                ResourceKind::EventSourceMapping,
                mapping.uuid.clone(),
                None,
                vec!["source".to_owned()],
                detail,
            );
        }
    }

    /// EventBridge Pipes whose source is the old broker.
    fn pipes(&mut self) {
        let id = &self.old.id;
        let arn = self.old.in_world(self.world).and_then(|b| b.arn.clone());
        for pipe in &self.world.pipes {
            if !is_broker(&pipe.source, arn.as_deref(), id) {
                continue;
            }
            let detail = format!(
                "pipe {} reads from {id} ({})",
                named(&pipe.name, pipe.arn.as_deref()),
                pipe.source
            );
            self.add(
                ResourceKind::Pipe,
                pipe.name.clone(),
                pipe.arn.as_deref(),
                vec!["source".to_owned()],
                detail,
            );
        }
    }

    /// Step Functions state machines: any string in the definition that names the old
    /// broker's host (an `ecs:runTask` state's container overrides, say).
    fn state_machines(&mut self) {
        let id = &self.old.id;
        for machine in &self.world.state_machines {
            let mut through = Vec::new();
            strings_naming(&machine.definition, self.old, String::new(), &mut through);
            if through.is_empty() {
                continue;
            }
            let detail = format!(
                "state machine {} names {id} in its definition at {}",
                named(&machine.name, machine.arn.as_deref()),
                through.join(", ")
            );
            self.add(
                ResourceKind::StateMachine,
                machine.name.clone(),
                machine.arn.as_deref(),
                through,
                detail,
            );
        }
    }
}

/// The JSON paths (`States.Run.Parameters.Overrides.ContainerOverrides[0].Environment[1].Value`)
/// of every string in `value` that names one of `broker`'s hosts.
fn strings_naming(value: &Value, broker: &ResolvedBroker, path: String, out: &mut Vec<String>) {
    match value {
        Value::String(s) if broker.named_in(s) => out.push(path),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                strings_naming(item, broker, format!("{path}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                strings_naming(item, broker, path, out);
            }
        }
        _ => {}
    }
}

/// Fingerprint entries (`resource:kind:name` → digest of the resource as the state has it)
/// for every resource in `listed` (a plan's) and every resource that points at the old broker
/// now: a saved plan goes stale when one of them changes, goes, or starts pointing. A world
/// without such resources adds no entry.
#[must_use]
pub fn fingerprint_entries(
    world: &World,
    old: &ResolvedBroker,
    new: &ResolvedBroker,
    listed: &[UnmanagedResource],
    retargeted: &dyn Fn(&Schedule) -> bool,
) -> BTreeMap<String, String> {
    let keys: BTreeSet<(ResourceKind, String)> = listed
        .iter()
        .chain(&unmanaged(world, old, new, retargeted))
        .map(UnmanagedResource::fingerprint_key)
        .collect();
    let latest = latest_revisions(world);
    let mut entries = BTreeMap::new();
    for (kind, name) in keys {
        let state: Vec<Value> = state_of(world, &latest, kind, &name);
        if state.is_empty() {
            continue;
        }
        entries.insert(
            format!("resource:{kind}:{name}"),
            crate::plan::digest(&state),
        );
    }
    entries
}

/// What the state holds of the resource `kind` `name` (a rule with several targets: each).
fn state_of(
    world: &World,
    latest: &BTreeMap<&str, &TaskDefinition>,
    kind: ResourceKind,
    name: &str,
) -> Vec<Value> {
    match kind {
        ResourceKind::Rule | ResourceKind::Schedule => world
            .schedules
            .iter()
            .filter(|s| {
                let k = match s.kind {
                    ScheduleKind::Rule => ResourceKind::Rule,
                    ScheduleKind::Schedule => ResourceKind::Schedule,
                };
                k == kind && schedule_name(s) == name
            })
            .map(|s| {
                // A bare family runs its latest revision: a new revision changes the task.
                let starts = started_by(world, s, latest).map(TaskDefinition::key);
                serde_json::json!({ "schedule": json(s), "starts": starts })
            })
            .collect(),
        ResourceKind::Function => world
            .functions
            .iter()
            .filter(|f| f.name == name)
            .map(json)
            .collect(),
        ResourceKind::EventSourceMapping => world
            .event_source_mappings
            .iter()
            .filter(|m| m.uuid == name)
            .map(json)
            .collect(),
        ResourceKind::Pipe => world
            .pipes
            .iter()
            .filter(|p| p.name == name)
            .map(json)
            .collect(),
        ResourceKind::StateMachine => world
            .state_machines
            .iter()
            .filter(|m| m.name == name)
            .map(json)
            .collect(),
    }
}

/// A model item as JSON, for [`state_of`].
fn json(item: &impl Serialize) -> Value {
    serde_json::to_value(item).expect("plain data always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        Broker, Container, EventSourceMapping, Function, Pipe, StateMachine, TaskDefinition,
    };
    use indexmap::IndexMap;

    const OLD_ARN: &str = "arn:aws:mq:eu-west-2:111122223333:broker:old:b-old";
    const NEW_ARN: &str = "arn:aws:mq:eu-west-2:111122223333:broker:new:b-new";

    fn resolved(alias: BrokerAlias, id: &str, host: &str) -> ResolvedBroker {
        ResolvedBroker::at(alias, id, host)
    }

    fn old() -> ResolvedBroker {
        resolved(BrokerAlias::Old, "b-old", "old.mq")
    }

    fn new() -> ResolvedBroker {
        resolved(BrokerAlias::New, "b-new", "new.mq")
    }

    fn env(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn td(family: &str, revision: u32, host: &str) -> TaskDefinition {
        TaskDefinition {
            family: family.into(),
            revision,
            containers: vec![Container {
                name: "app".into(),
                environment: [("RABBIT_HOST", host)].into(),
                ..Container::default()
            }],
            ..TaskDefinition::default()
        }
    }

    fn schedule(name: &str, task_definition: &str) -> Schedule {
        Schedule {
            name: name.into(),
            cluster: "c".into(),
            task_definition: task_definition.into(),
            ..Schedule::default()
        }
    }

    fn broker(id: &str, host: &str, arn: &str) -> Broker {
        Broker {
            id: id.into(),
            endpoints: vec![format!("amqps://{host}:5671")],
            arn: Some(arn.into()),
            queues: Some(Vec::new()),
            ..Broker::default()
        }
    }

    fn run_task_on(host: &str) -> Value {
        serde_json::json!({
            "StartAt": "Export",
            "States": { "Export": {
                "Type": "Task",
                "Resource": "arn:aws:states:::ecs:runTask.sync",
                "Parameters": { "Overrides": { "ContainerOverrides": [{
                    "Name": "app",
                    "Environment": [
                        { "Name": "MODE", "Value": "full" },
                        { "Name": "RABBIT_HOST", "Value": host }
                    ]
                }]}},
                "End": true
            }}
        })
    }

    /// One resource of every kind on each broker.
    fn world() -> World {
        let mut overridden = schedule("overridden", "export:2");
        overridden.bus = Some("jobs".into());
        overridden
            .overrides
            .insert("app".into(), env(&[("RABBIT_HOST", "old.mq")]));
        let mut moved_by_override = schedule("moved-by-override", "export:1");
        moved_by_override
            .overrides
            .insert("app".into(), env(&[("RABBIT_HOST", "new.mq")]));
        let mut scheduler = schedule("hourly", "export");
        scheduler.kind = ScheduleKind::Schedule;
        scheduler.group = Some("batch".into());
        World {
            version: 1,
            brokers: vec![
                broker("b-old", "old.mq", OLD_ARN),
                broker("b-new", "new.mq", NEW_ARN),
            ],
            task_definitions: vec![td("export", 1, "old.mq"), td("export", 2, "new.mq")],
            schedules: vec![
                schedule("pinned-old", "export:1"),
                schedule("pinned-new", "export:2"),
                overridden,
                moved_by_override,
                scheduler,
            ],
            functions: vec![
                Function {
                    name: "notify".into(),
                    arn: Some("arn:aws:lambda:eu-west-2:111122223333:function:notify".into()),
                    environment: env(&[("LOG", "debug"), ("AMQP_URL", "amqps://u:p@old.mq:5671")]),
                    ..Function::default()
                },
                Function {
                    name: "clean".into(),
                    environment: env(&[("AMQP_URL", "amqps://u:p@new.mq:5671")]),
                    ..Function::default()
                },
            ],
            event_source_mappings: vec![
                EventSourceMapping {
                    uuid: "u-old".into(),
                    function: "notify".into(),
                    source: OLD_ARN.into(),
                    state: Some("Enabled".into()),
                    queues: vec!["q".into()],
                    ..EventSourceMapping::default()
                },
                EventSourceMapping {
                    uuid: "u-new".into(),
                    function: "notify".into(),
                    source: NEW_ARN.into(),
                    ..EventSourceMapping::default()
                },
                EventSourceMapping {
                    uuid: "u-disabled".into(),
                    function: "notify".into(),
                    source: OLD_ARN.into(),
                    state: Some("Disabled".into()),
                    ..EventSourceMapping::default()
                },
            ],
            pipes: vec![
                Pipe {
                    name: "p-old".into(),
                    arn: Some("arn:aws:pipes:eu-west-2:111122223333:pipe/p-old".into()),
                    source: OLD_ARN.into(),
                    ..Pipe::default()
                },
                Pipe {
                    name: "p-new".into(),
                    source: NEW_ARN.into(),
                    ..Pipe::default()
                },
            ],
            state_machines: vec![
                StateMachine {
                    name: "sm-old".into(),
                    definition: run_task_on("old.mq"),
                    ..StateMachine::default()
                },
                StateMachine {
                    name: "sm-new".into(),
                    definition: run_task_on("new.mq"),
                    ..StateMachine::default()
                },
            ],
            ..World::default()
        }
    }

    #[test]
    fn each_kind_that_points_at_the_old_broker_is_found_and_no_clean_one() {
        let found = unmanaged(&world(), &old(), &new(), &|_| false);
        let ids: Vec<(String, Vec<String>)> =
            found.iter().map(|r| (r.id(), r.through.clone())).collect();
        assert_eq!(
            ids,
            vec![
                (
                    "rule jobs/overridden".to_owned(),
                    vec!["app/RABBIT_HOST (override)".to_owned()]
                ),
                (
                    "rule pinned-old".to_owned(),
                    vec!["app/RABBIT_HOST in export:1".to_owned()]
                ),
                ("function notify".to_owned(), vec!["AMQP_URL".to_owned()]),
                (
                    "event_source_mapping u-old".to_owned(),
                    vec!["source".to_owned()]
                ),
                ("pipe p-old".to_owned(), vec!["source".to_owned()]),
                (
                    "state_machine sm-old".to_owned(),
                    vec![
                        "States.Export.Parameters.Overrides.ContainerOverrides[0].Environment[1].Value"
                            .to_owned()
                    ]
                ),
            ]
        );
        assert!(found.iter().all(|r| r.broker == BrokerAlias::Old));
        assert_eq!(found[2].action, ResourceKind::Function.action());
        assert_eq!(
            found[2].arn.as_deref(),
            Some("arn:aws:lambda:eu-west-2:111122223333:function:notify")
        );
    }

    #[test]
    fn a_schedule_on_a_bare_family_starts_its_latest_revision() {
        let mut w = world();
        w.task_definitions.push(td("export", 3, "old.mq"));
        let found = unmanaged(&w, &old(), &new(), &|_| false);
        let scheduler = found
            .iter()
            .find(|r| r.kind == ResourceKind::Schedule)
            .expect("the Scheduler schedule now starts export:3");
        assert_eq!(scheduler.name, "batch/hourly");
        assert_eq!(scheduler.through, vec!["app/RABBIT_HOST in export:3"]);
    }

    #[test]
    fn a_retargeted_schedule_is_not_unmanaged() {
        let found = unmanaged(&world(), &old(), &new(), &|s| s.name == "pinned-old");
        assert!(!found.iter().any(|r| r.name == "pinned-old"), "{found:?}");
    }

    #[test]
    fn without_the_brokers_arn_a_source_matches_by_the_id_it_ends_in() {
        let mut w = world();
        w.brokers[0].arn = None;
        let kinds: Vec<ResourceKind> = unmanaged(&w, &old(), &new(), &|_| false)
            .iter()
            .map(|r| r.kind)
            .collect();
        assert!(kinds.contains(&ResourceKind::EventSourceMapping));
        assert!(kinds.contains(&ResourceKind::Pipe));
        assert!(!is_broker(NEW_ARN, None, "b-old"));
        assert!(!is_broker("arn:aws:sqs:eu-west-2:1:b-old", None, "b-old"));
    }

    #[test]
    fn what_cannot_be_read_is_reported() {
        let mut w = world();
        w.schedules.push(schedule("lost", "gone:4"));
        w.functions[1]
            .environment
            .insert("SECRET".into(), REDACTED.into());
        let findings = find(&w, &old(), &new(), &|_| false);
        assert_eq!(findings.unreadable.len(), 2, "{:?}", findings.unreadable);
        assert!(findings.unreadable[0].contains("schedule lost runs gone:4"));
        assert!(findings.unreadable[1].contains("function clean"));
    }

    #[test]
    fn the_fingerprint_follows_the_resources_that_point() {
        let w = world();
        let listed = unmanaged(&w, &old(), &new(), &|_| false);
        let before = fingerprint_entries(&w, &old(), &new(), &listed, &|_| false);
        assert_eq!(before.len(), listed.len());
        assert!(before.contains_key("resource:function:notify"));

        let mut changed = w.clone();
        changed.functions[0]
            .environment
            .insert("LOG".into(), "info".into());
        let after = fingerprint_entries(&changed, &old(), &new(), &listed, &|_| false);
        assert_ne!(
            before["resource:function:notify"],
            after["resource:function:notify"]
        );

        // A resource the plan listed that no longer points keeps its entry while it exists.
        let mut fixed = w.clone();
        fixed.pipes[0].source = NEW_ARN.into();
        let after = fingerprint_entries(&fixed, &old(), &new(), &listed, &|_| false);
        assert_ne!(before["resource:pipe:p-old"], after["resource:pipe:p-old"]);

        let empty = World::default();
        assert!(fingerprint_entries(&empty, &old(), &new(), &[], &|_| false).is_empty());
    }
}
