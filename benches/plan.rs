//! How fast warren plans a large estate, stage by stage, beside what it takes only to parse the
//! same two files into values (serde_json and toml): the floor no planner can go below.
//!
//! On generated estates (`benches/estate/mod.rs`) of 200, 2,000 and 20,000 services:
//! - `parse/bare`: the world file into a `serde_json::Value`, the plan file into a `toml::Table`;
//! - `plan/whole`: what `warren plan --format json` does between reading the files and printing:
//!   both files into the model, discovery, graph and waves, warnings, fingerprint, rendering;
//! - its stages: `stage/model` (both files into the model), `stage/scan` (discovery),
//!   `stage/core` (`plan::make`: discovery, graph, waves, warnings, fingerprint), `stage/fingerprint`,
//!   `stage/render_json`, `stage/render_human`;
//! - `status/check` and `decommission/check`: what `status` and `decommission` compute over the
//!   same world once it is read.
//!
//! After criterion's own report, the bench prints criterion's medians side by side: each size's
//! `plan/whole` over `parse/bare`, and the growth from 2,000 to 20,000 services.

#[path = "estate/mod.rs"]
mod estate;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{BenchmarkId, Criterion, Throughput};
use warren::config::Config;
use warren::model::World;

// The allocator warren's binary runs on, so that the figures are the binary's.
warren::allocator!();

const SIZES: [usize; 3] = [200, 2_000, 20_000];

/// The estate's files, parsed into warren's model, as `warren plan` does.
fn model(estate: &estate::Estate) -> (World, Config) {
    let world = warren::backend::rehearsal::parse_world(Path::new("world.json"), &estate.world)
        .expect("the generated world is valid");
    let config = Config::parse(Path::new("plan.toml"), estate.plan.clone())
        .expect("the generated plan is valid");
    (world, config)
}

/// `warren plan --format json` from the files' text to the printed text.
fn whole(estate: &estate::Estate) -> String {
    let (world, config) = model(estate);
    let plan = warren::plan::make(&config, &world).expect("plans");
    warren::render::json::plan(&plan)
}

fn bare_parse(estate: &estate::Estate) -> usize {
    let world: serde_json::Value = serde_json::from_str(&estate.world).expect("valid JSON");
    let plan: toml::Table = estate.plan.parse().expect("valid TOML");
    world.as_object().map_or(0, serde_json::Map::len) + plan.len()
}

fn benches(c: &mut Criterion) {
    for services in SIZES {
        let estate = estate::generate(estate::Shape::new(services));
        let (world, config) = model(&estate);
        let plan = warren::plan::make(&config, &world).expect("plans");
        let brokers = warren::discovery::resolve_brokers(&config, &world);
        let id = BenchmarkId::from_parameter(services);
        let elements = Throughput::Elements(services as u64);

        let mut group = c.benchmark_group("parse");
        group.sample_size(10).throughput(elements.clone());
        group.bench_function(id.clone(), |b| b.iter(|| black_box(bare_parse(&estate))));
        group.finish();

        let mut group = c.benchmark_group("plan");
        group.sample_size(10).throughput(elements.clone());
        group.bench_function(id.clone(), |b| b.iter(|| black_box(whole(&estate))));
        group.finish();

        let mut group = c.benchmark_group("stage");
        group.sample_size(10).throughput(elements.clone());
        group.bench_function(BenchmarkId::new("model", services), |b| {
            b.iter(|| black_box(model(&estate)));
        });
        group.bench_function(BenchmarkId::new("scan", services), |b| {
            b.iter(|| {
                black_box(
                    warren::plan::scan(&world, [&brokers[0], &brokers[1]], None, None)
                        .expect("scans"),
                )
            });
        });
        group.bench_function(BenchmarkId::new("core", services), |b| {
            b.iter(|| black_box(warren::plan::make(&config, &world).expect("plans")));
        });
        group.bench_function(BenchmarkId::new("fingerprint", services), |b| {
            b.iter(|| {
                black_box(warren::plan::fingerprint_now(&world, &plan).expect("fingerprints"))
            });
        });
        group.bench_function(BenchmarkId::new("render_json", services), |b| {
            b.iter(|| black_box(warren::render::json::plan(&plan)));
        });
        group.bench_function(BenchmarkId::new("render_human", services), |b| {
            b.iter(|| {
                black_box(warren::render::human::plan(
                    &plan,
                    "plan.toml",
                    warren::render::Palette::plain(),
                ))
            });
        });
        group.finish();

        let mut group = c.benchmark_group("check");
        group.sample_size(10).throughput(elements);
        group.bench_function(BenchmarkId::new("status", services), |b| {
            b.iter(|| {
                black_box(warren::status::status(&config, &world, brokers.clone()).expect("status"))
            });
        });
        group.bench_function(BenchmarkId::new("decommission", services), |b| {
            b.iter(|| black_box(warren::guard::blockers(&world, &brokers[0], &brokers[1])));
        });
        group.finish();
    }
}

fn host_matching(c: &mut Criterion) {
    let estate = estate::generate(estate::Shape::new(10));
    let (world, config) = model(&estate);
    let [old, _] = warren::discovery::resolve_brokers(&config, &world);
    let values = [
        format!("amqps://user:password@{}:5671/esr", estate::OLD),
        format!("other.example:5671,{}:5671", estate::OLD),
        "-Xmx512m -Dspring.profiles.active=prod".to_owned(),
        format!("x{}", estate::OLD),
    ];
    c.bench_function("host_matching/4_values", |b| {
        b.iter(|| values.iter().filter(|v| old.named_in(black_box(v))).count());
    });
}

/// Where criterion keeps its results: `target/criterion`.
fn criterion_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is target/tmp")
        .join("criterion")
}

/// Criterion's median of `group/id`, in seconds, from its last run's estimates.
fn median(group: &str, id: &str) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(id)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let estimates: serde_json::Value = serde_json::from_str(&text).ok()?;
    estimates["median"]["point_estimate"]
        .as_f64()
        .map(|ns| ns / 1e9)
}

/// The medians side by side: plan over the bare parse, and the growth with the estate.
fn ratios() {
    let mut whole = BTreeMap::new();
    println!(
        "\nwarren plan --format json against the bare parse of the same files (criterion medians):"
    );
    println!(
        "{:>9}  {:>11}  {:>11}  {:>6}",
        "services", "bare parse", "plan", "ratio"
    );
    for services in SIZES {
        let id = services.to_string();
        let (Some(bare), Some(plan)) = (median("parse", &id), median("plan", &id)) else {
            println!("{services:>9}  (not measured in this run)");
            continue;
        };
        whole.insert(services, plan);
        println!(
            "{services:>9}  {:>9.1}ms  {:>9.1}ms  {:>6.2}",
            bare * 1e3,
            plan * 1e3,
            plan / bare
        );
    }
    if let (Some(small), Some(large)) = (whole.get(&2_000), whole.get(&20_000)) {
        println!(
            "growth from 2,000 to 20,000 services (10 times the estate): {:.1} times the time",
            large / small
        );
    }
}

fn main() {
    let mut c = Criterion::default()
        .output_directory(&criterion_dir())
        .configure_from_args();
    benches(&mut c);
    host_matching(&mut c);
    c.final_summary();
    ratios();
}
