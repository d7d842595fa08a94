//! `warren plan`: what would move, in which waves, and what nobody declared.

use super::{migration_of, scope_of, Output, Session};
use crate::cli::{PlanArgs, PlanFormat};
use crate::config::Config;
use crate::discovery;
use crate::error::{Error, Result};
use crate::plan::{self, SavedPlan};
use crate::render;

pub fn run(args: &PlanArgs, output: Output) -> Result<u8> {
    let config = Config::load(&args.plan)?;
    let mut session =
        Session::reading(migration_of(&config, &args.plan, None), &args.world, output)?;
    let world = session.read(&scope_of(&config), |w| {
        discovery::resolve_brokers(&config, w).to_vec()
    })?;
    let plan = plan::make(&config, &world)?;

    if let Some(out) = &args.out {
        // The saved plan names the plan file it was made from, so that applying it uses the
        // migration's journal and lock wherever the saved plan itself sits.
        let plan_file = std::path::absolute(&args.plan).map_err(|source| Error::Io {
            path: args.plan.clone(),
            source,
        })?;
        let saved = SavedPlan::new(plan.clone()).made_from(&plan_file);
        let mut text =
            serde_json::to_string_pretty(&saved).expect("a saved plan always serialises");
        text.push('\n');
        crate::atomic::write(out, text.as_bytes())?;
    }

    let plan_file = args.plan.display().to_string();
    let text = match args.format {
        PlanFormat::Human => render::human::plan(&plan, &plan_file, output.palette),
        PlanFormat::Json => render::json::plan(&plan),
        PlanFormat::Markdown => render::markdown::plan(&plan, &plan_file),
    };
    print!("{text}");
    if let Some(out) = &args.out {
        let world = args
            .world
            .path
            .as_ref()
            .map(|w| format!(" --world {}", w.display()))
            .unwrap_or_default();
        eprintln!(
            "Saved the plan to {}; apply exactly this plan with: warren apply {}{world}",
            out.display(),
            out.display()
        );
    }

    if args.strict {
        if let Some(why) = strict_refusal(&plan, &plan_file) {
            return Err(Error::Refused(why));
        }
    }
    Ok(if args.detailed_exitcode && plan.has_changes() {
        2
    } else {
        0
    })
}

/// Why `--strict` fails: the services that point at the old broker but are not in the plan,
/// and the other resources that point at it (warren changes neither); `None` when there are
/// none.
fn strict_refusal(plan: &plan::Plan, plan_file: &str) -> Option<String> {
    let mut parts = Vec::new();
    let ids: Vec<String> = plan.unmanaged.iter().map(plan::Unmanaged::id).collect();
    if !ids.is_empty() {
        parts.push(format!(
            "{} service{} point{} at the old broker but {} not in {}: {}",
            ids.len(),
            if ids.len() == 1 { "" } else { "s" },
            if ids.len() == 1 { "s" } else { "" },
            if ids.len() == 1 { "is" } else { "are" },
            plan_file,
            ids.join(", ")
        ));
    }
    let resources: Vec<String> = plan
        .unmanaged_resources
        .iter()
        .map(crate::resources::UnmanagedResource::id)
        .collect();
    if !resources.is_empty() {
        parts.push(format!(
            "{} other resource{} point{} at the old broker: {}",
            resources.len(),
            if resources.len() == 1 { "" } else { "s" },
            if resources.len() == 1 { "s" } else { "" },
            resources.join(", ")
        ));
    }
    (!parts.is_empty()).then(|| format!("--strict: {}", parts.join("; ")))
}
