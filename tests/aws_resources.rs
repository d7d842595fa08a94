//! The other resources that can point at a broker, against the local emulator (moto's server):
//! rules on a custom bus, Scheduler schedules, Lambda functions, pipes, state machines, a
//! CodeDeploy service and the brokers' ARNs, each beside a clean resource of the same kind
//! (`tests/support/resources.rs`). The AWS backend's read of them, and the built binary's `plan`
//! (`unmanaged_resources`, `--strict`, `retargets`) and `decommission` (its blockers) on them.
//! The emulator is seeded once for the whole binary. Event source mappings from Amazon MQ cannot
//! be created on the emulator: tests/aws_mock.rs covers them.

#[path = "support/moto.rs"]
mod moto;
#[path = "support/resources.rs"]
mod resources;
#[path = "support/seed.rs"]
mod seed;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

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

/// The emulator of this test binary, seeded once with the incident and the other resources:
/// seeding is most of the time, and no test here changes what is seeded (each reads, plans or
/// asks for a decommission that is refused), so they share it and run side by side.
struct Emulator {
    /// A private server (not `moto::shared`, which resets on every turn); the watchdog stops
    /// it when the test process ends.
    moto: moto::Moto,
    anchors: Anchors,
    seeded: seed::Seeded,
    others: SeededResources,
}

fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(|| {
        let moto = moto::Moto::start();
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
        eprintln!(
            "incident seeded in {incident:?}, the other resources in {:?}",
            started.elapsed() - incident
        );
        Emulator {
            moto,
            anchors,
            seeded,
            others,
        }
    })
}

struct Fixture {
    anchors: Anchors,
    seeded: seed::Seeded,
    others: SeededResources,
    /// What a read with `resources` in scope holds.
    world: World,
    /// What a read without it holds.
    narrow: World,
}

/// Reads the seeded emulator through the AWS backend with and without `resources` in scope.
fn read() -> Fixture {
    let e = emulator();
    let rt = runtime().expect("runtime");
    let config = rt.block_on(e.moto.sdk_config());
    let started = std::time::Instant::now();
    let mut aws = Aws::from_clients(rt, Clients::new(&config), &e.seeded.region);
    let world = aws
        .read(&resources_only())
        .unwrap_or_else(|e| panic!("read: {e}"));
    let narrow = aws
        .read(&ReadScope::default())
        .unwrap_or_else(|e| panic!("read: {e}"));
    eprintln!("both reads in {:?}", started.elapsed());
    Fixture {
        anchors: e.anchors.clone(),
        seeded: e.seeded.clone(),
        others: e.others.clone(),
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

// ---------------------------------------------------------------------------------------------
// The built binary's plan and decommission against the seeded emulator

/// The dirty resources as `plan` names them: off the default bus or group, `bus/name` or
/// `group/name`.
const DIRTY_RULE_NAME: &str = "esr-jobs/esr-replay";
const DIRTY_SCHEDULE_NAME: &str = "esr/esr-reconcile-hourly";

/// The clean resources, each beside a dirty one of its kind: no plan or blocker names them.
const CLEAN: [&str; 5] = [
    resources::CLEAN_RULE,
    resources::CLEAN_SCHEDULE,
    resources::CLEAN_FUNCTION,
    resources::CLEAN_PIPE,
    resources::CLEAN_STATE_MACHINE,
];

/// The incident plan for the emulator ([`seed::plan_toml`]) with the CodeDeploy service
/// declared (moving to the new broker) and the services named in `leave_out` left out, written
/// to `dir/name`.
fn write_plan(dir: &Path, name: &str, leave_out: &[&str]) -> PathBuf {
    let mut plan: toml::Table = seed::plan_toml(&emulator().seeded)
        .parse()
        .expect("the incident plan is TOML");
    let services = plan
        .get_mut("services")
        .and_then(toml::Value::as_array_mut)
        .expect("the incident plan lists services");
    services.retain(|s| !leave_out.contains(&s["name"].as_str().unwrap_or_default()));
    let mut bluegreen = toml::Table::new();
    bluegreen.insert("cluster".into(), CLUSTER.into());
    bluegreen.insert("name".into(), resources::CODE_DEPLOY_SERVICE.into());
    bluegreen.insert("broker".into(), "new".into());
    services.push(bluegreen.into());
    let path = dir.join(name);
    std::fs::write(&path, toml::to_string(&plan).expect("a plan serialises"))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

/// Runs the built `warren` against the seeded emulator, in `dir`.
fn warren(dir: &Path, args: &[&str]) -> Output {
    emulator()
        .moto
        .warren()
        .current_dir(dir)
        .args(args)
        .write_stdin("")
        .output()
        .expect("run warren")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(output)))
}

/// `unmanaged_resources` as (kind, name, arn, through).
fn unmanaged_resources(plan: &Value) -> Vec<(String, String, Option<String>, Vec<String>)> {
    plan["unmanaged_resources"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_owned(),
                r["name"].as_str().unwrap().to_owned(),
                r["arn"].as_str().map(str::to_owned),
                r["through"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

/// The `family:revision` the emulator registered for the example's `family:revision`.
fn registered(file_key: &str) -> String {
    key(emulator().seeded.task_definition_arn(file_key))
}

#[test]
fn plan_lists_every_resource_that_points_at_the_old_broker_and_none_beside_it() {
    let e = emulator();
    let dir = tempfile::tempdir().unwrap();
    // esr-reconcile left out: nothing moves the revision the dirty schedule pins, so it is
    // unmanaged like the others (with esr-reconcile in the plan, apply retargets it; below).
    let plan = write_plan(dir.path(), "no-reconcile.toml", &["esr-reconcile"]);
    let plan = plan.to_str().unwrap();

    let started = std::time::Instant::now();
    let out = warren(dir.path(), &["plan", plan, "--format", "json"]);
    eprintln!("plan in {:?}", started.elapsed());
    assert!(out.status.success(), "{}", text(&out));
    let json = json_of(&out);
    let dirty_function = &e.others.dirty_function_arn;
    assert_eq!(
        unmanaged_resources(&json),
        [
            (
                "rule".to_owned(),
                "esr-dataexport-nightly".to_owned(),
                Some(nightly_arn(e)),
                vec![format!(
                    "esr-dataexport/SPRING_RABBITMQ_HOST in {}",
                    registered("esr-dataexport:19")
                )],
            ),
            (
                "rule".to_owned(),
                DIRTY_RULE_NAME.to_owned(),
                Some(e.others.dirty_rule_arn.clone()),
                vec![format!("{CLEAN_FAMILY}/SPRING_RABBITMQ_HOST (override)")],
            ),
            (
                "schedule".to_owned(),
                DIRTY_SCHEDULE_NAME.to_owned(),
                Some(e.others.dirty_schedule_arn.clone()),
                vec![format!(
                    "esr-reconcile/SPRING_RABBITMQ_HOST in {}",
                    registered(DIRTY_REVISION)
                )],
            ),
            (
                "function".to_owned(),
                resources::DIRTY_FUNCTION.to_owned(),
                Some(dirty_function.clone()),
                vec!["SPRING_RABBITMQ_ADDRESSES".to_owned()],
            ),
            (
                "pipe".to_owned(),
                resources::DIRTY_PIPE.to_owned(),
                Some(e.others.dirty_pipe_arn.clone()),
                vec!["source".to_owned()],
            ),
            (
                "state_machine".to_owned(),
                resources::DIRTY_STATE_MACHINE.to_owned(),
                Some(e.others.dirty_state_machine_arn.clone()),
                vec![
                    "States.Export.Parameters.Overrides.ContainerOverrides[0].Environment[1].Value"
                        .to_owned()
                ],
            ),
        ],
        "{json:#}"
    );
    let all = json.to_string();
    for clean in CLEAN {
        assert!(!all.contains(clean), "{clean} in {json:#}");
    }
    assert!(!all.contains(resources::PASSWORD), "{all}");

    // There is no world file: no warning says there is one.
    let warnings = json["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("WARREN_OLD_MGMT_URL")),
        "{warnings:#?}"
    );
    assert!(
        !warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("in the world file")),
        "{warnings:#?}"
    );

    // The CodeDeploy service moves by hand: apply cannot change its task definition.
    let bluegreen = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["service"] == resources::CODE_DEPLOY_SERVICE)
        .unwrap_or_else(|| panic!("no change for the CodeDeploy service: {json:#}"));
    assert_eq!(bluegreen["action"], "manual", "{bluegreen:#}");
    let reason = bluegreen["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("deployed by CodeDeploy") && reason.contains("through CodeDeploy"),
        "{reason}"
    );
    assert!(
        !bluegreen["rewrites"].as_array().unwrap().is_empty(),
        "{bluegreen:#}"
    );

    // --strict: exit 1, naming each resource (and no clean one).
    let out = warren(dir.path(), &["plan", plan, "--strict"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    for id in [
        format!("rule {DIRTY_RULE_NAME}"),
        format!("schedule {DIRTY_SCHEDULE_NAME}"),
        format!("function {}", resources::DIRTY_FUNCTION),
        format!("pipe {}", resources::DIRTY_PIPE),
        format!("state_machine {}", resources::DIRTY_STATE_MACHINE),
    ] {
        assert!(err.contains(&id), "{id} not in {err}");
    }
    for clean in CLEAN {
        assert!(!err.contains(clean), "{clean} in {err}");
    }
}

/// The incident's own rule, on the default bus.
fn nightly_arn(e: &Emulator) -> String {
    format!(
        "arn:aws:events:{}:{}:rule/esr-dataexport-nightly",
        e.seeded.region, e.seeded.account
    )
}

#[test]
fn a_schedule_apply_retargets_is_not_unmanaged() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), "incident.toml", &[]);
    let out = warren(
        dir.path(),
        &["plan", plan.to_str().unwrap(), "--format", "json"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let json = json_of(&out);

    let retargets: Vec<(&str, &str, &str)> = json["retargets"]
        .as_array()
        .unwrap_or_else(|| panic!("no retargets: {json:#}"))
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap(),
                r["from"].as_str().unwrap(),
                r["to_service"].as_str().unwrap(),
            )
        })
        .collect();
    let pinned = registered(DIRTY_REVISION);
    assert_eq!(
        retargets,
        [(
            resources::DIRTY_SCHEDULE,
            pinned.as_str(),
            "esr-batch/esr-reconcile"
        )]
    );
    let names: Vec<String> = unmanaged_resources(&json)
        .into_iter()
        .map(|(kind, name, ..)| format!("{kind} {name}"))
        .collect();
    assert_eq!(
        names,
        [
            "rule esr-dataexport-nightly".to_owned(),
            format!("rule {DIRTY_RULE_NAME}"),
            format!("function {}", resources::DIRTY_FUNCTION),
            format!("pipe {}", resources::DIRTY_PIPE),
            format!("state_machine {}", resources::DIRTY_STATE_MACHINE),
        ],
        "{json:#}"
    );
}

#[test]
fn decommission_is_refused_naming_every_resource_that_points_at_the_old_broker() {
    let e = emulator();
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), "incident.toml", &[]);
    let started = std::time::Instant::now();
    let out = warren(
        dir.path(),
        &[
            "decommission",
            plan.to_str().unwrap(),
            "--confirm",
            &e.seeded.old_broker_id,
            "--format",
            "json",
        ],
    );
    eprintln!("decommission in {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let decision = json_of(&out);
    assert_eq!(decision["refused"], true);
    let blockers: Vec<(String, String)> = decision["blockers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["kind"].as_str().unwrap().to_owned(),
                b["detail"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let id = &e.seeded.old_broker_id;
    let has = |kind: &str, needle: &str| {
        blockers
            .iter()
            .any(|(k, d)| k == kind && d.contains(needle) && d.contains(id.as_str()))
    };
    for (kind, needle) in [
        (
            "schedule",
            format!("schedule {DIRTY_RULE_NAME} (EventBridge rule"),
        ),
        (
            "schedule",
            format!("schedule {DIRTY_SCHEDULE_NAME} (Scheduler schedule"),
        ),
        ("schedule", e.others.dirty_schedule_arn.clone()),
        (
            "function",
            format!(
                "function {} ({})",
                resources::DIRTY_FUNCTION,
                e.others.dirty_function_arn
            ),
        ),
        ("pipe", e.others.dirty_pipe_arn.clone()),
        ("state_machine", e.others.dirty_state_machine_arn.clone()),
        (
            "service",
            format!("{CLUSTER}/{}", resources::CODE_DEPLOY_SERVICE),
        ),
    ] {
        assert!(
            has(kind, &needle),
            "no {kind} blocker naming {needle}: {blockers:#?}"
        );
    }
    for clean in CLEAN {
        assert!(
            !blockers.iter().any(|(_, d)| d.contains(clean)),
            "{clean} named: {blockers:#?}"
        );
    }
    for arn in [
        &e.others.clean_rule_arn,
        &e.others.clean_schedule_arn,
        &e.others.clean_function_arn,
        &e.others.clean_pipe_arn,
        &e.others.clean_state_machine_arn,
    ] {
        assert!(
            !decision.to_string().contains(arn.as_str()),
            "{arn}: {blockers:#?}"
        );
    }
    assert!(!decision.to_string().contains(resources::PASSWORD));

    // The broker's queues are unknown without its management API: the blocker says where
    // they are read from, not that a world file lists none (there is no world file here).
    let queues: Vec<&str> = blockers
        .iter()
        .filter(|(k, d)| k == "unverifiable" && d.contains("queues and connections"))
        .map(|(_, d)| d.as_str())
        .collect();
    assert_eq!(queues.len(), 1, "{blockers:#?}");
    assert!(queues[0].contains("WARREN_OLD_MGMT_URL"), "{}", queues[0]);
    assert!(
        !queues[0].contains("world file lists none") && !queues[0].contains("rehearsals"),
        "{}",
        queues[0]
    );
}
