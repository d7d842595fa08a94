//! A generated estate with the shape of a real one, for measuring warren: the world file's text
//! and the plan file's text, as `warren plan PLAN --world WORLD` reads them.
//!
//! - Clusters of different sizes: ten clusters share the services 30:20:14:10:8:6:5:4:2:1.
//! - Task definition families shared by services: one family per four services (the same image
//!   deployed in several clusters or as several services), each with three revisions; the
//!   family's services run its second or third revision, so most revisions run in several
//!   services and the first runs in none.
//! - Where a family finds its broker: an env value holding an AMQP URL with credentials (half of
//!   the families), an SSM parameter shared by the family's revisions (a third), or none at all
//!   (one family in six talks to no broker).
//! - Twelve other variables per container beside the broker's (database URLs, JVM options,
//!   feature flags, log levels), and a second container (a log router) with four more.
//! - Publish/consume chains four families deep: family `f` publishes to `ex.f` (a topic exchange
//!   of the old broker, which the new one lacks, like the queues), bound to the
//!   queue of family `f + 1`, and consumes `q.f`; so the plan has up to four waves
//!   ([`Shape::apply`] makes them as deep as the waves asked, with every service in the plan).
//! - One service in fifty on a broker is left out of the plan: it shows up as unmanaged. The
//!   plan maps each family's parameter to one that names the new broker.
//!
//! Included by the benches with `#[path = "estate/mod.rs"] mod estate;`, and by
//! `examples/estate.rs`, which writes the two files for timing the binary.

#![allow(dead_code)]

use std::fmt::Write as _;

pub const OLD: &str = "b-1111.mq.eu-west-2.amazonaws.com";
pub const NEW: &str = "b-2222.mq.eu-west-2.amazonaws.com";

/// How many services each of the ten clusters holds, in parts of 100.
const CLUSTER_SHARES: [usize; 10] = [30, 20, 14, 10, 8, 6, 5, 4, 2, 1];
/// Services per task definition family.
const PER_FAMILY: usize = 4;
/// Revisions per family.
const REVISIONS: u32 = 3;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub services: usize,
    /// Families per publish/consume chain: the plan's number of waves.
    pub chain: usize,
    /// For a rehearsal apply: every rollout takes this long (seconds), and every family is on
    /// the broker.
    pub rollout_seconds: Option<f64>,
}

impl Shape {
    /// `services` services in chains four families deep.
    #[must_use]
    pub fn new(services: usize) -> Shape {
        Shape {
            services,
            chain: 4,
            rollout_seconds: None,
        }
    }

    /// Shaped for a rehearsal apply: chains `waves` families deep, rollouts of `seconds`.
    #[must_use]
    pub fn apply(services: usize, waves: usize, seconds: f64) -> Shape {
        Shape {
            services,
            chain: waves.max(1),
            rollout_seconds: Some(seconds),
        }
    }

    fn reach(&self, family: usize) -> Reach {
        match family % 6 {
            0 | 2 | 4 => Reach::Env,
            1 | 3 => Reach::Parameter,
            _ if self.rollout_seconds.is_some() => Reach::Env,
            _ => Reach::None,
        }
    }

    /// Whether family `f` (of `families`) publishes to the next family's queue.
    fn publishes(&self, f: usize, families: usize) -> bool {
        f % self.chain != self.chain - 1 && f + 1 < families && self.reach(f + 1) != Reach::None
    }
}

/// A generated estate: the two files' text and what they hold.
#[derive(Debug, Clone)]
pub struct Estate {
    pub world: String,
    pub plan: String,
    pub services: usize,
    pub clusters: usize,
    pub task_definitions: usize,
    pub parameters: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Reach {
    Env,
    Parameter,
    None,
}

/// The cluster of service `i` of `n`: cluster sizes follow [`CLUSTER_SHARES`].
fn cluster_of(i: usize, n: usize) -> usize {
    let mut start = 0;
    for (c, share) in CLUSTER_SHARES.iter().enumerate() {
        let end = start + (n * share).div_ceil(100);
        if i < end {
            return c;
        }
        start = end;
    }
    CLUSTER_SHARES.len() - 1
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn env_object(out: &mut String, vars: &[(String, String)]) {
    out.push('{');
    for (k, (key, value)) in vars.iter().enumerate() {
        if k > 0 {
            out.push_str(", ");
        }
        json_string(out, key);
        out.push_str(": ");
        json_string(out, value);
    }
    out.push('}');
}

/// The estate of `shape`.
#[must_use]
pub fn generate(shape: Shape) -> Estate {
    let n = shape.services;
    let families = n.div_ceil(PER_FAMILY);
    let mut world = String::with_capacity(n * 1_200);
    world.push_str("{\n\"version\": 1,\n\"region\": \"eu-west-2\",\n");

    // The brokers: the old one holds every family's queue and the chain's bindings.
    world.push_str("\"brokers\": [\n{\"id\": \"b-1111\", \"state\": \"RUNNING\", ");
    let _ = writeln!(
        world,
        "\"endpoints\": [\"amqps://{OLD}:5671\"],\n\"queues\": ["
    );
    let on_broker: Vec<usize> = (0..families)
        .filter(|f| shape.reach(*f) != Reach::None)
        .collect();
    for (k, f) in on_broker.iter().enumerate() {
        let consumers = (0..PER_FAMILY).filter(|s| f * PER_FAMILY + s < n).count();
        let _ = writeln!(
            world,
            "{{\"vhost\": \"/\", \"name\": \"q.{f}\", \"messages\": 0, \"consumers\": {consumers}}}{}",
            if k + 1 < on_broker.len() { "," } else { "" }
        );
    }
    let chained: Vec<usize> = on_broker
        .iter()
        .copied()
        .filter(|f| shape.publishes(*f, families))
        .collect();
    world.push_str("],\n\"exchanges\": [\n");
    for (k, f) in chained.iter().enumerate() {
        let _ = writeln!(
            world,
            "{{\"vhost\": \"/\", \"name\": \"ex.{f}\", \"type\": \"topic\", \"durable\": true}}{}",
            if k + 1 < chained.len() { "," } else { "" }
        );
    }
    world.push_str("],\n\"bindings\": [\n");
    for (k, f) in chained.iter().enumerate() {
        let _ = writeln!(
            world,
            "{{\"vhost\": \"/\", \"exchange\": \"ex.{f}\", \"queue\": \"q.{}\", \"routing_key\": \"#\"}}{}",
            f + 1,
            if k + 1 < chained.len() { "," } else { "" }
        );
    }
    let _ = writeln!(
        world,
        "]}},\n{{\"id\": \"b-2222\", \"state\": \"RUNNING\", \"endpoints\": [\"amqps://{NEW}:5671\"], \"queues\": []}}\n],"
    );

    // The clusters and their services.
    let clusters: Vec<Vec<usize>> = {
        let mut clusters = vec![Vec::new(); CLUSTER_SHARES.len()];
        for i in 0..n {
            clusters[cluster_of(i, n)].push(i);
        }
        clusters
    };
    let revision_of = |i: usize| if i % PER_FAMILY == 2 { 2 } else { 3 };
    world.push_str("\"clusters\": [\n");
    for (c, services) in clusters.iter().enumerate() {
        let _ = writeln!(world, "{{\"name\": \"cluster-{c}\", \"services\": [");
        for (k, i) in services.iter().enumerate() {
            let f = i / PER_FAMILY;
            let rollout = shape
                .rollout_seconds
                .map(|s| format!(", \"rollout_seconds\": {s}"))
                .unwrap_or_default();
            let _ = writeln!(
                world,
                "{{\"name\": \"svc-{i:05}\", \"task_definition\": \"fam-{f:05}:{}\", \"desired\": 2, \"running\": 2{rollout}}}{}",
                revision_of(*i),
                if k + 1 < services.len() { "," } else { "" }
            );
        }
        let _ = writeln!(
            world,
            "]}}{}",
            if c + 1 < clusters.len() { "," } else { "" }
        );
    }
    world.push_str("],\n");

    // The task definitions: three revisions per family, each with an app container and a log
    // router.
    world.push_str("\"task_definitions\": [\n");
    let mut parameters = Vec::new();
    for f in 0..families {
        if shape.reach(f) == Reach::Parameter {
            parameters.push(format!("/estate/fam-{f:05}/rabbit-host"));
        }
        for revision in 1..=REVISIONS {
            let mut env: Vec<(String, String)> = vec![
                (
                    "DATABASE_URL".into(),
                    format!("postgres://app:secret@db-{}.internal:5432/fam{f}", f % 7),
                ),
                ("DATABASE_POOL".into(), format!("{}", 5 + f % 10)),
                (
                    "JAVA_OPTS".into(),
                    format!("-Xmx{}m -XX:+UseG1GC -Dfile.encoding=UTF-8", 256 << (f % 3)),
                ),
                ("LOG_LEVEL".into(), ["info", "debug", "warn"][f % 3].into()),
                ("SPRING_PROFILES_ACTIVE".into(), "prod".into()),
                ("FEATURE_NEW_CHECKOUT".into(), (f % 2 == 0).to_string()),
                ("FEATURE_AUDIT".into(), (revision > 1).to_string()),
                (
                    "CACHE_URL".into(),
                    format!("redis://cache-{}.internal:6379/0", f % 5),
                ),
                ("HTTP_PORT".into(), "8080".into()),
                ("REGION".into(), "eu-west-2".into()),
                ("SERVICE_VERSION".into(), format!("1.{f}.{revision}")),
                (
                    "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                    "http://otel-collector.internal:4317".into(),
                ),
            ];
            let mut secrets: Vec<(String, String)> = Vec::new();
            match shape.reach(f) {
                Reach::Env => env.push((
                    "SPRING_RABBITMQ_ADDRESSES".into(),
                    format!("amqps://app:hunter2@{OLD}:5671/esr"),
                )),
                Reach::Parameter => secrets.push((
                    "SPRING_RABBITMQ_HOST".into(),
                    format!("/estate/fam-{f:05}/rabbit-host"),
                )),
                Reach::None => {}
            }
            let _ = write!(
                world,
                "{{\"family\": \"fam-{f:05}\", \"revision\": {revision}, \"containers\": [\n{{\"name\": \"app\", \"environment\": "
            );
            env_object(&mut world, &env);
            world.push_str(", \"secrets\": ");
            env_object(&mut world, &secrets);
            world.push_str("},\n{\"name\": \"log-router\", \"environment\": ");
            env_object(
                &mut world,
                &[
                    ("FLB_LOG_LEVEL".into(), "info".into()),
                    ("AWS_REGION".into(), "eu-west-2".into()),
                    ("LOG_GROUP".into(), format!("/ecs/fam-{f:05}")),
                    ("BUFFER_SIZE".into(), "64k".into()),
                ],
            );
            let last = f + 1 == families && revision == REVISIONS;
            let _ = writeln!(world, "}}]}}{}", if last { "" } else { "," });
        }
    }
    world.push_str("],\n\"parameters\": {\n");
    for (k, p) in parameters.iter().enumerate() {
        json_string(&mut world, p);
        let _ = writeln!(world, ": \"{OLD}\",");
        json_string(&mut world, &format!("{p}-new"));
        let _ = writeln!(
            world,
            ": \"{NEW}\"{}",
            if k + 1 < parameters.len() { "," } else { "" }
        );
    }
    world.push_str("}\n}\n");

    // The plan: every service on the broker but one in fifty; each parameter is mapped to one
    // holding the new host.
    let mut plan = String::with_capacity(n * 120);
    plan.push_str(
        "[migration]\nname = \"estate\"\n\n[brokers.old]\nid = \"b-1111\"\n\n[brokers.new]\nid = \"b-2222\"\n\n",
    );
    let mut on = 0;
    for (c, services) in clusters.iter().enumerate() {
        for i in services {
            let f = i / PER_FAMILY;
            if shape.reach(f) == Reach::None {
                continue;
            }
            on += 1;
            if on % 50 == 0 && shape.rollout_seconds.is_none() {
                continue;
            }
            let publishes = if shape.publishes(f, families) {
                format!("publishes = [\"ex.{f}\"]\n")
            } else {
                String::new()
            };
            let _ = write!(
                plan,
                "[[services]]\ncluster = \"cluster-{c}\"\nname = \"svc-{i:05}\"\nbroker = \"new\"\n{publishes}consumes = [\"q.{f}\"]\n\n"
            );
        }
    }
    if !parameters.is_empty() {
        plan.push_str("[parameters]\n");
        for p in &parameters {
            let _ = writeln!(plan, "\"{p}\" = \"{p}-new\"");
        }
    }
    Estate {
        world,
        plan,
        services: n,
        clusters: CLUSTER_SHARES.len(),
        task_definitions: families * REVISIONS as usize,
        parameters: parameters.len(),
    }
}
