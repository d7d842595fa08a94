//! `warren plan`: what would move, in which waves, and what nobody declared.

use super::{migration_of, scope_of, Output, Session};
use crate::cli::{PlanArgs, PlanFormat};
use crate::config::Config;
use crate::discovery;
use crate::error::{Error, Result};
use crate::plan::{self, SavedPlan};
use crate::render;
use std::io::Write as _;

pub fn run(args: &PlanArgs, output: Output) -> Result<u8> {
    let config = Config::load(&args.plan)?;
    let mut session =
        Session::reading(migration_of(&config, &args.plan, None), &args.world, output)?;
    let world = session.read(&scope_of(&config), |w| {
        discovery::resolve_brokers(&config, w).to_vec()
    })?;
    let mut plan = plan::make(&config, &world)?;
    // Nothing past this point reads the world: a region's model is freed before the output is
    // made, and the output is written as it is made.
    drop(world);

    if let Some(out) = &args.out {
        plan = save(plan, &args.plan, out)?;
    }

    let plan_file = args.plan.display().to_string();
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    match args.format {
        PlanFormat::Human => {
            stdout.write_all(render::human::plan(&plan, &plan_file, output.palette).as_bytes())
        }
        PlanFormat::Json => render::json::write(&plan, &mut stdout),
        PlanFormat::Markdown => {
            stdout.write_all(render::markdown::plan(&plan, &plan_file).as_bytes())
        }
    }
    .and_then(|()| stdout.flush())
    .map_err(|source| Error::Io {
        path: "<stdout>".into(),
        source,
    })?;
    drop(stdout);
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

/// Saves `plan` to `out` (`plan --out`, CONTRACT.md "Commands"), naming the plan file it was made from,
/// and gives it back.
fn save(
    plan: plan::Plan,
    plan_file: &std::path::Path,
    out: &std::path::Path,
) -> Result<plan::Plan> {
    // The saved plan names the plan file it was made from, so that applying it uses the
    // migration's journal and lock wherever the saved plan itself sits.
    let plan_file = std::path::absolute(plan_file).map_err(|source| Error::Io {
        path: plan_file.to_owned(),
        source,
    })?;
    let saved = SavedPlan::of(plan, &plan_file);
    crate::atomic::write_with(out, |file| render::json::write_pretty(&saved, file))?;
    Ok(saved.plan)
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
