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
    Ok(if args.detailed_exitcode && plan.has_changes() {
        2
    } else {
        0
    })
}
