//! The AWS backend's read of the other resources that can point at a broker, against the local
//! emulator (moto's server): rules on a custom bus, Scheduler schedules, Lambda functions, pipes,
//! state machines, a CodeDeploy service and the brokers' ARNs, each beside a clean resource of
//! the same kind (`tests/support/resources.rs`).

#[path = "support/moto.rs"]
mod moto;
#[path = "support/resources.rs"]
mod resources;
#[path = "support/seed.rs"]
mod seed;

use indexmap::IndexMap;
use resources::{Anchors, SeededResources};
use serde_json::Value;
use warren::backend::aws::{runtime, Aws, Clients};
use warren::backend::{Backend, ReadScope};
use warren::model::{Schedule, ScheduleKind, World};

/// The family whose latest revision is on the new broker.
const CLEAN_FAMILY: &str = "esr-reporting";
/// The revision (of the example) whose environment names the old broker.
const DIRTY_REVISION: &str = "esr-reconcile:23";
const CLUSTER: &str = "esr-batch";

struct Fixture {
    anchors: Anchors,
    seeded: seed::Seeded,
    others: SeededResources,
    /// What a read with `resources` in scope holds.
    world: World,
    /// What a read without it holds.
    narrow: World,
}

/// Seeds the incident and the other resources once (seeding is most of the time), then reads
/// through the AWS backend with and without `resources` in scope.
fn read() -> Fixture {
    let moto = moto::shared();
    let rt = runtime().expect("runtime");
    let config = rt.block_on(moto.sdk_config());
    let started = std::time::Instant::now();
    let seeded = rt.block_on(seed::esr_incident(&config));
    let anchors = Anchors {
        account: seeded.account.clone(),
        region: seeded.region.clone(),
        old_host: seed::EMULATED_OLD_HOST.to_owned(),
        old_broker_arn: seeded.old_broker_arn.clone(),
        cluster: CLUSTER.to_owned(),
        cluster_arn: seeded.cluster_arn(CLUSTER).to_owned(),
        dirty_revision: seeded.task_definition_arn(DIRTY_REVISION).to_owned(),
        clean_family: CLEAN_FAMILY.to_owned(),
    };
    let incident = started.elapsed();
    let others = rt.block_on(resources::seed(&config, &anchors));
    let seeding = started.elapsed();
    let mut aws = Aws::from_clients(rt, Clients::new(&config), &seeded.region);
    let world = aws
        .read(&resources_only())
        .unwrap_or_else(|e| panic!("read: {e}"));
    let narrow = aws
        .read(&ReadScope::default())
        .unwrap_or_else(|e| panic!("read: {e}"));
    eprintln!(
        "incident seeded in {incident:?}, the other resources in {:?}, both reads in {:?}",
        seeding - incident,
        started.elapsed() - seeding
    );
    Fixture {
        anchors,
        seeded,
        others,
        world,
        narrow,
    }
}

#[test]
fn the_aws_backend_reads_every_resource_that_can_point_at_a_broker() {
    let f = read();
    rules_on_every_bus_and_scheduler_schedules_are_read_with_their_overrides(&f);
    functions_pipes_state_machines_and_broker_arns_are_read_faithfully(&f);
    services_carry_their_deployment_controller_and_tags(&f);
    without_resources_in_scope_none_of_them_is_read(&f);
}

fn resources_only() -> ReadScope {
    ReadScope {
        resources: true,
        ..ReadScope::default()
    }
}

fn key(arn: &str) -> String {
    arn.rsplit_once(":task-definition/")
        .map_or(arn, |(_, k)| k)
        .to_owned()
}

fn env(pairs: &[(&str, &str, &str)]) -> IndexMap<String, IndexMap<String, String>> {
    let mut out: IndexMap<String, IndexMap<String, String>> = IndexMap::new();
    for (container, variable, value) in pairs {
        out.entry((*container).to_owned())
            .or_default()
            .insert((*variable).to_owned(), (*value).to_owned());
    }
    out
}

fn schedule<'w>(world: &'w World, name: &str) -> &'w Schedule {
    world
        .schedules
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no schedule {name} in {:#?}", world.schedules))
}

fn rules_on_every_bus_and_scheduler_schedules_are_read_with_their_overrides(f: &Fixture) {
    let w = &f.world;

    let dirty = schedule(w, resources::DIRTY_RULE);
    assert_eq!(
        dirty,
        &Schedule {
            name: resources::DIRTY_RULE.to_owned(),
            cluster: CLUSTER.to_owned(),
            task_definition: CLEAN_FAMILY.to_owned(),
            kind: ScheduleKind::Rule,
            bus: Some(resources::BUS.to_owned()),
            group: None,
            target: Some(format!("{}-task", resources::DIRTY_RULE)),
            arn: Some(f.others.dirty_rule_arn.clone()),
            overrides: env(&[(
                CLEAN_FAMILY,
                "SPRING_RABBITMQ_HOST",
                seed::EMULATED_OLD_HOST
            )]),
            extra: serde_json::Map::new(),
        }
    );
    let clean = schedule(w, resources::CLEAN_RULE);
    assert_eq!(clean.bus.as_deref(), Some(resources::BUS));
    assert_eq!(clean.arn.as_deref(), Some(f.others.clean_rule_arn.as_str()));
    assert_eq!(
        clean.overrides,
        env(&[(CLEAN_FAMILY, "LOG_LEVEL", "DEBUG")])
    );

    // The incident's own rule is on the default bus, written without a bus.
    let nightly = schedule(w, "esr-dataexport-nightly");
    assert_eq!(nightly.kind, ScheduleKind::Rule);
    assert_eq!(nightly.bus, None);
    assert!(nightly.overrides.is_empty());

    let pinned = schedule(w, resources::DIRTY_SCHEDULE);
    assert_eq!(
        pinned,
        &Schedule {
            name: resources::DIRTY_SCHEDULE.to_owned(),
            cluster: CLUSTER.to_owned(),
            task_definition: key(&f.anchors.dirty_revision),
            kind: ScheduleKind::Schedule,
            bus: None,
            group: Some(resources::GROUP.to_owned()),
            target: None,
            arn: Some(f.others.dirty_schedule_arn.clone()),
            overrides: IndexMap::new(),
            extra: serde_json::Map::new(),
        }
    );
    let latest = schedule(w, resources::CLEAN_SCHEDULE);
    assert_eq!(latest.kind, ScheduleKind::Schedule);
    assert_eq!(
        latest.group, None,
        "the default group is written without a group"
    );
    assert_eq!(latest.task_definition, CLEAN_FAMILY);
    assert_eq!(
        latest.overrides,
        env(&[(CLEAN_FAMILY, "LOG_LEVEL", "DEBUG")])
    );
    assert_eq!(w.schedules.len(), 5, "{:#?}", w.schedules);

    // The revisions the schedules start are read, so guards can look inside them.
    assert!(w
        .task_definitions
        .iter()
        .any(|td| td.key() == key(&f.anchors.dirty_revision)));
    assert!(w
        .task_definitions
        .iter()
        .any(|td| td.family == CLEAN_FAMILY));
}

fn functions_pipes_state_machines_and_broker_arns_are_read_faithfully(f: &Fixture) {
    let w = &f.world;

    let names: Vec<&str> = w.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [resources::DIRTY_FUNCTION, resources::CLEAN_FUNCTION]
    );
    let dirty = &w.functions[0];
    assert_eq!(
        dirty.arn.as_deref(),
        Some(f.others.dirty_function_arn.as_str())
    );
    assert_eq!(
        dirty.environment["SPRING_RABBITMQ_ADDRESSES"],
        format!("amqps://esr-notifier:****@{}:5671", seed::EMULATED_OLD_HOST)
    );
    assert_eq!(dirty.environment["LOG_LEVEL"], "INFO");
    assert_eq!(
        w.functions[1].environment["THUMBNAIL_BUCKET"],
        "esr-thumbnails-prod"
    );

    let pipes: Vec<(&str, &str, Option<&str>)> = w
        .pipes
        .iter()
        .map(|p| (p.name.as_str(), p.source.as_str(), p.target.as_deref()))
        .collect();
    assert_eq!(
        pipes,
        [
            (
                resources::DIRTY_PIPE,
                f.seeded.old_broker_arn.as_str(),
                Some(f.others.queue_arn.as_str())
            ),
            (
                resources::CLEAN_PIPE,
                f.others.queue_arn.as_str(),
                Some(f.others.queue_arn.as_str())
            ),
        ]
    );
    assert_eq!(
        w.pipes[0].arn.as_deref(),
        Some(f.others.dirty_pipe_arn.as_str())
    );

    let machines: Vec<&str> = w.state_machines.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        machines,
        [
            resources::DIRTY_STATE_MACHINE,
            resources::CLEAN_STATE_MACHINE
        ]
    );
    let export = &w.state_machines[0];
    assert_eq!(
        export.arn.as_deref(),
        Some(f.others.dirty_state_machine_arn.as_str())
    );
    assert_eq!(export.definition, resources::dirty_definition(&f.anchors));
    assert_eq!(
        export.definition["States"]["Export"]["Parameters"]["Overrides"]["ContainerOverrides"][0]
            ["Environment"][1]["Value"],
        Value::from(seed::EMULATED_OLD_HOST)
    );

    // Moto takes no event source mapping from Amazon MQ (tests/aws_mock.rs reads those).
    assert!(w.event_source_mappings.is_empty());

    assert_eq!(w.brokers.len(), 1);
    assert_eq!(
        w.brokers[0].arn.as_deref(),
        Some(f.seeded.old_broker_arn.as_str())
    );

    // No password is ever held.
    let text = serde_json::to_string(w).unwrap();
    assert!(!text.contains(resources::PASSWORD), "{text}");
}

fn services_carry_their_deployment_controller_and_tags(f: &Fixture) {
    let batch = f
        .world
        .clusters
        .iter()
        .find(|c| c.name == CLUSTER)
        .expect("cluster");
    let bluegreen = batch
        .services
        .iter()
        .find(|s| s.name == resources::CODE_DEPLOY_SERVICE)
        .expect("the CodeDeploy service");
    assert_eq!(
        bluegreen.deployment_controller.as_deref(),
        Some("CODE_DEPLOY")
    );
    assert_eq!(
        bluegreen
            .tags
            .get("aws:cloudformation:stack-name")
            .map(String::as_str),
        Some("esr-bluegreen")
    );
    assert_eq!(bluegreen.tags.get("team").map(String::as_str), Some("esr"));
    assert_eq!(
        bluegreen.extra.get("arn").and_then(Value::as_str),
        Some(f.others.code_deploy_service_arn.as_str())
    );
    for service in batch.services.iter().filter(|s| s.name != bluegreen.name) {
        assert_ne!(
            service.deployment_controller.as_deref(),
            Some("CODE_DEPLOY"),
            "{}",
            service.name
        );
    }
}

fn without_resources_in_scope_none_of_them_is_read(f: &Fixture) {
    let w = &f.narrow;
    assert!(w.schedules.is_empty());
    assert!(w.functions.is_empty());
    assert!(w.pipes.is_empty());
    assert!(w.state_machines.is_empty());
    // Broker ARNs and service tags are part of every read.
    assert_eq!(
        w.brokers[0].arn.as_deref(),
        Some(f.seeded.old_broker_arn.as_str())
    );
}
