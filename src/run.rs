//! Runs a parsed command line: loads and validates input, calls the core, renders the result.
//! The only place that knows about stdout, stderr and exit codes besides `main`.

use std::io::IsTerminal as _;
use std::path::Path;

use crate::backend::rehearsal::Rehearsal;
use crate::backend::{Backend, ReadScope};
use crate::cli::{Cli, Command, PlanArgs, PlanFormat};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::plan::{self, SavedPlan};
use crate::render::{self, Palette};

/// Runs `cli` and returns the exit code of a command that did not fail.
///
/// # Errors
/// Whatever stopped the command; [`Error::exit_code`] says how the process ends.
pub fn run(cli: Cli) -> Result<u8> {
    let palette = Palette::new(
        !cli.global.no_color
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::io::stdout().is_terminal(),
    );
    match cli.command {
        Command::Plan(args) => plan(&args, palette),
    }
}

fn backend(world: Option<&Path>) -> Box<dyn Backend> {
    match world {
        Some(path) => Box::new(Rehearsal::new(path)),
        None => unreachable!("clap requires --world"),
    }
}

fn plan(args: &PlanArgs, palette: Palette) -> Result<u8> {
    let config = Config::load(&args.plan)?;
    let mut backend = backend(args.world.as_deref());
    let scope = ReadScope {
        clusters: config
            .migration
            .clusters
            .as_ref()
            .map(|cs| cs.iter().map(|c| c.value.clone()).collect()),
    };
    let world = backend.read(&scope)?;
    let plan = plan::make(&config, &world)?;

    if let Some(out) = &args.out {
        let saved = SavedPlan::new(plan.clone());
        let mut text = serde_json::to_string_pretty(&saved).expect("a saved plan always serialises");
        text.push('\n');
        crate::atomic::write(out, text.as_bytes())?;
    }

    let plan_file = args.plan.display().to_string();
    let text = match args.format {
        PlanFormat::Human => render::human::plan(&plan, &plan_file, palette),
        PlanFormat::Json => render::json::plan(&plan),
        PlanFormat::Markdown => render::markdown::plan(&plan, &plan_file),
    };
    print!("{text}");
    if let Some(out) = &args.out {
        eprintln!("Saved the plan to {}; apply exactly this plan with: warren apply {}", out.display(), out.display());
    }

    if args.strict && !plan.unmanaged.is_empty() {
        let ids: Vec<String> = plan.unmanaged.iter().map(plan::Unmanaged::id).collect();
        return Err(Error::Refused(format!(
            "--strict: {} service{} point{} at the old broker but {} not in {}: {}",
            ids.len(),
            if ids.len() == 1 { "" } else { "s" },
            if ids.len() == 1 { "s" } else { "" },
            if ids.len() == 1 { "is" } else { "are" },
            plan_file,
            ids.join(", ")
        )));
    }
    Ok(if args.detailed_exitcode && plan.has_changes() { 2 } else { 0 })
}
