//! Writes a generated estate (`benches/estate/mod.rs`) to files, for timing the binary:
//!
//! ```sh
//! cargo run --release --example estate -- 20000 /tmp/estate            # DIR/world.json, DIR/plan.toml
//! cargo run --release --example estate -- 2000 /tmp/a2k --waves 10 --rollout 1   # for a rehearsal apply
//! ```

#[path = "../benches/estate/mod.rs"]
mod estate;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: estate SERVICES DIR [--waves W --rollout SECONDS]";
    let (Some(services), Some(dir)) = (
        args.first().and_then(|n| n.parse::<usize>().ok()),
        args.get(1).map(PathBuf::from),
    ) else {
        eprintln!("{usage}");
        return ExitCode::FAILURE;
    };
    let mut shape = estate::Shape::new(services);
    let mut rest = args[2..].chunks(2);
    for pair in rest.by_ref() {
        match (pair[0].as_str(), pair.get(1).map(|v| v.parse::<f64>())) {
            ("--waves", Some(Ok(w))) if w >= 1.0 => {
                shape = estate::Shape::apply(
                    services,
                    w as usize,
                    shape.rollout_seconds.unwrap_or(0.0),
                );
            }
            ("--rollout", Some(Ok(s))) if s >= 0.0 => {
                shape = estate::Shape::apply(services, shape.chain, s);
            }
            _ => {
                eprintln!("{usage}");
                return ExitCode::FAILURE;
            }
        }
    }
    let estate = estate::generate(shape);
    if let Err(e) = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("world.json"), &estate.world))
        .and_then(|()| std::fs::write(dir.join("plan.toml"), &estate.plan))
    {
        eprintln!("{}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    eprintln!(
        "{}: {} services on {} clusters, {} task definitions, {} parameters; world {} KB, plan {} KB",
        dir.display(),
        estate.services,
        estate.clusters,
        estate.task_definitions,
        estate.parameters,
        estate.world.len() / 1024,
        estate.plan.len() / 1024
    );
    ExitCode::SUCCESS
}
