//! How fast warren plans a large estate: discovery over every env value and parameter, the
//! publisher/consumer graph, the waves and the fingerprint, as `warren plan` runs them.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use warren::config::Config;
use warren::model::{Binding, Broker, Cluster, Container, Queue, Service, TaskDefinition, World};

const OLD: &str = "b-1111.mq.eu-west-2.amazonaws.com";

/// `services` services over 10 clusters: each publishes to the queue of the next, a third read
/// their host from a parameter, every container carries 20 unrelated variables.
fn estate(services: usize) -> (World, Config) {
    let mut world = World {
        version: 1,
        ..World::default()
    };
    let mut queues = Vec::new();
    let mut bindings = Vec::new();
    let mut plan = String::from(
        "[migration]\nname = \"bench\"\n[brokers.old]\nid = \"b-1111\"\n[brokers.new]\nid = \"b-2222\"\n\n",
    );
    for c in 0..10 {
        world.clusters.push(Cluster {
            name: format!("cluster-{c}"),
            ..Cluster::default()
        });
    }
    for i in 0..services {
        let name = format!("svc-{i:05}");
        let cluster = i % 10;
        let mut environment: indexmap::IndexMap<String, String> = (0..20)
            .map(|k| (format!("SETTING_{k}"), format!("value-{k}-{i}")))
            .collect();
        let mut secrets = indexmap::IndexMap::new();
        if i % 3 == 0 {
            let parameter = format!("/bench/{name}/rabbit-host");
            world.parameters.insert(parameter.clone(), OLD.to_owned());
            secrets.insert("SPRING_RABBITMQ_HOST".to_owned(), parameter);
        } else {
            environment.insert(
                "SPRING_RABBITMQ_ADDRESSES".into(),
                format!("amqps://u:p@{OLD}:5671/esr"),
            );
        }
        world.task_definitions.push(TaskDefinition {
            family: name.clone(),
            revision: 1,
            containers: vec![Container {
                name: "app".into(),
                environment,
                secrets,
                ..Container::default()
            }],
            ..TaskDefinition::default()
        });
        world.clusters[cluster].services.push(Service {
            name: name.clone(),
            task_definition: format!("{name}:1"),
            desired: 1,
            running: 1,
            ..Service::default()
        });
        queues.push(Queue {
            vhost: "/".into(),
            name: format!("q.{i}"),
            consumers: 1,
            ..Queue::default()
        });
        bindings.push(Binding::to_queue(
            "/",
            &format!("ex.{i}"),
            &format!("q.{}", (i + 1) % services),
            "#",
        ));
        if i % 50 != 49 {
            // Leave some services out of the plan: they show up as unmanaged.
            let _ = writeln!(
                plan,
                "[[services]]\ncluster = \"cluster-{cluster}\"\nname = \"{name}\"\nbroker = \"new\"\npublishes = [\"ex.{i}\"]\nconsumes = [\"q.{i}\"]\n"
            );
        }
    }
    world.brokers.push(Broker {
        id: "b-1111".into(),
        state: "RUNNING".into(),
        endpoints: vec![format!("amqps://{OLD}:5671")],
        queues: Some(queues),
        bindings,
        ..Broker::default()
    });
    world.brokers.push(Broker {
        id: "b-2222".into(),
        state: "RUNNING".into(),
        endpoints: vec!["amqps://b-2222.mq.eu-west-2.amazonaws.com:5671".into()],
        queues: Some(Vec::new()),
        ..Broker::default()
    });
    let config = Config::parse(Path::new("bench.toml"), plan).expect("the generated plan is valid");
    (world, config)
}

fn plan(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan");
    group.sample_size(10);
    for services in [500, 2_000, 5_000] {
        let (world, config) = estate(services);
        group.throughput(Throughput::Elements(services as u64));
        group.bench_with_input(BenchmarkId::from_parameter(services), &services, |b, _| {
            b.iter(|| black_box(warren::plan::make(&config, &world).expect("plans")));
        });
    }
    group.finish();
}

fn host_matching(c: &mut Criterion) {
    let (world, config) = estate(10);
    let [old, _] = warren::discovery::resolve_brokers(&config, &world);
    let values = [
        format!("amqps://user:password@{OLD}:5671/esr"),
        format!("other.example:5671,{OLD}:5671"),
        "-Xmx512m -Dspring.profiles.active=prod".to_owned(),
        format!("x{OLD}"),
    ];
    c.bench_function("host_matching/4_values", |b| {
        b.iter(|| values.iter().filter(|v| old.named_in(black_box(v))).count());
    });
}

criterion_group!(benches, plan, host_matching);
criterion_main!(benches);
