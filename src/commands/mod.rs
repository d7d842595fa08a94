//! The commands: one file each, sharing a [`Session`] that owns the backend, the migration's
//! journal and lock, and the output. The only place besides `main` that knows about stdout,
//! stderr, terminals and exit codes.

mod apply;
mod clients;
mod decommission;
mod plan;
mod rollback;
mod session;
mod snapshot;
mod status;
mod unlock;

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::time::Duration;

pub use session::{lock_path, Migration, Output, Session};

use crate::backend::ReadScope;
use crate::cli::{ChangeArgs, Cli, Command};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::executor::{self, Options, Report, Schedule, Skipped};
use crate::plan::Brokers;
use crate::progress::Progress;
use crate::render::{self, Palette};

/// Runs `cli` and returns the exit code of a command that did not fail.
///
/// # Errors
/// Whatever stopped the command; [`Error::exit_code`] says how the process ends.
pub fn run(cli: Cli) -> Result<u8> {
    if cli.global.stats {
        crate::stats::enable();
    }
    crate::backend::aws::set_max_concurrency(cli.global.max_concurrency);
    let output = Output {
        verbosity: cli.global.verbose.min(2),
        palette: Palette::new(
            !cli.global.no_color
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal(),
        ),
    };
    match cli.command {
        Command::Plan(args) => plan::run(&args, output),
        Command::Apply(args) => apply::run(&args, output),
        Command::Decommission(args) => decommission::run(&args, output),
        Command::Status(args) => status::run(&args, output),
        Command::Rollback(args) => rollback::run(&args, output),
        Command::Unlock(args) => unlock::run(&args),
        Command::Snapshot(args) => snapshot::run(&args, output),
    }
}

/// The migration of a plan file: its journal and lock sit beside the plan on AWS.
fn migration_of(
    config: &Config,
    plan_file: &std::path::Path,
    lock_table: Option<&str>,
) -> Migration {
    Migration {
        name: config.migration.name.clone(),
        region: config.migration.region.clone(),
        lock_table: lock_table
            .map(str::to_owned)
            .or_else(|| config.migration.lock_table.clone()),
        plan_file: plan_file.to_owned(),
    }
}

/// What a plan scans: its clusters, or every cluster, and the other resources that can point
/// at a broker (rules, schedules, functions, mappings, pipes, state machines).
fn scope_of(config: &Config) -> ReadScope {
    ReadScope {
        clusters: config
            .migration
            .clusters
            .as_ref()
            .map(|cs| cs.iter().map(|c| c.value.clone()).collect()),
        everything: false,
        parameters: crate::precondition::mapped_parameters(&config.parameters),
        task_definitions: Vec::new(),
        resources: true,
        secrets: config.migration.read_secrets.clone(),
    }
}

/// Every cluster of the region, every family's latest revision, every schedule, and the other
/// resources that can point at a broker.
fn everything() -> ReadScope {
    ReadScope {
        clusters: None,
        everything: true,
        parameters: Vec::new(),
        task_definitions: Vec::new(),
        resources: true,
        secrets: crate::config::SecretsToRead::None,
    }
}

/// Refuses early what can never go ahead: a change without `--auto-approve` and no terminal to
/// ask on.
fn refuse_without_terminal(change: &ChangeArgs, command: &str) -> Result<()> {
    if !change.auto_approve && !std::io::stdin().is_terminal() {
        return Err(Error::Refused(format!(
            "{command} needs --auto-approve when standard input is not a terminal; nothing was changed"
        )));
    }
    Ok(())
}

/// Asks for `yes` on a terminal; anything else, or no terminal, refuses.
fn confirm(auto_approve: bool, what: &str) -> Result<()> {
    if auto_approve {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Refused(format!(
            "{what} needs --auto-approve when standard input is not a terminal; nothing was changed"
        )));
    }
    eprint!("\nDo you want to {what}? Only 'yes' will be accepted: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|source| Error::Io {
            path: PathBuf::from("<stdin>"),
            source,
        })?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(Error::Refused(
            "cancelled: the answer was not `yes`, so nothing was changed".into(),
        ))
    }
}

fn options(change: &ChangeArgs) -> Options {
    Options {
        drain_timeout: Duration::from_secs(change.drain_timeout),
        rollout_timeout: Duration::from_secs(change.rollout_timeout),
        wave_check: None,
        link_check: Options::LINK_CHECK,
        stall: Options::STALL,
    }
}

/// Runs `schedule` in `session` and prints its report; a run that did not reach its end is an
/// error (exit 1).
fn run_schedule(
    session: &mut Session,
    schedule: &Schedule,
    brokers: &Brokers,
    options: Options,
    skipped: Vec<Skipped>,
    what: &str,
) -> Result<u8> {
    let mut progress = Progress::stderr();
    let (backend, journal) = session.parts();
    let mut report: Report =
        executor::execute(schedule, brokers, backend, journal, options, &mut progress)?;
    report.skipped.extend(skipped);
    print!("{}", render::report::run(&report, what));
    if report.succeeded() {
        Ok(0)
    } else {
        Err(Error::Refused(format!(
            "{what} stopped: {}",
            report.stopped.as_deref().unwrap_or("a step failed")
        )))
    }
}

/// `value` as pretty JSON with a final newline.
fn pretty_json(value: &impl serde::Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("plain data always serialises");
    text.push('\n');
    text
}
