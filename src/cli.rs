//! The command line, as typed (clap derive). `config.rs` turns it into validated values.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The exit code for a command line that clap answered itself: 0 for `--help` and
/// `--version`, 1 for every usage error (never clap's 2, which `plan --detailed-exitcode`
/// reserves for "the plan has changes").
#[must_use]
pub fn exit_code(error: &clap::Error) -> u8 {
    match error.kind() {
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
        _ => 1,
    }
}

/// Moves ECS services from one RabbitMQ broker to another, safely: plan, apply, decommission.
#[derive(Debug, Parser)]
#[command(name = "warren", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: Global,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// More detail on stderr (-v, -vv).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Never colour output (NO_COLOR is honoured too).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// At the end, print on stderr the calls made per AWS API and broker endpoint, the time
    /// spent in them, the retries, and the most AWS requests in flight at once.
    #[arg(long, global = true)]
    pub stats: bool,
    /// The most AWS requests in flight at once (1 to 64).
    #[arg(long, global = true, value_name = "N", default_value_t = crate::backend::aws::DEFAULT_MAX_CONCURRENCY, value_parser = max_concurrency())]
    pub max_concurrency: usize,
}

/// `--max-concurrency`: from 1 to 64 requests in flight.
fn max_concurrency() -> impl clap::builder::TypedValueParser<Value = usize> {
    use clap::builder::TypedValueParser as _;
    clap::value_parser!(u64)
        .range(1..=64)
        .map(|n| usize::try_from(n).unwrap_or(64))
}

/// warren's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what would move, in which order, and which services the plan forgot.
    Plan(PlanArgs),
    /// Move the services, wave by wave, draining queues between waves.
    Apply(ApplyArgs),
    /// Delete the old broker, only when nothing uses it any more.
    Decommission(DecommissionArgs),
    /// Show where every service points now and whether decommission would pass.
    Status(StatusArgs),
    /// Put every service apply moved back on the revision it ran before.
    Rollback(RollbackArgs),
    /// Remove a migration's lock left by a run that is gone.
    Unlock(UnlockArgs),
    /// Write what AWS shows (without credentials) as a world file for rehearsals.
    Snapshot(SnapshotArgs),
}

/// `warren snapshot`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The plan file (TOML): its region and brokers.
    pub plan: PathBuf,
    /// The world file to write.
    #[arg(long, value_name = "WORLD.json", required = true)]
    pub out: PathBuf,
}

/// `warren apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The plan file (TOML), or a plan saved by `warren plan --out` (JSON).
    #[arg(value_name = "PLAN.toml|SAVED.json")]
    pub plan: PathBuf,
    #[command(flatten)]
    pub world: WorldArg,
    #[command(flatten)]
    pub change: ChangeArgs,
    /// Do not check, after each wave, that the moved consumers consume again on their new
    /// broker (for rehearsals against brokers with no real clients).
    #[arg(long)]
    pub no_wave_check: bool,
    /// Seconds the check after a wave waits for each moved consumer's queues to have consumers
    /// on the new broker (at most 604800, 7 days).
    #[arg(long, value_name = "SECONDS", default_value_t = 120, value_parser = wait_seconds())]
    pub wave_check_timeout: u64,
    /// After the last wave, move what is left in the old broker's queues that nobody consumes
    /// there any more to the same queues on the new broker, with a shovel per queue.
    #[arg(long)]
    pub shovel: bool,
    /// Under the federate strategy: seconds to wait, before the first wave, for every
    /// federation link to be running on the new broker (at most 604800, 7 days).
    #[arg(long, value_name = "SECONDS", default_value_t = crate::executor::Options::LINK_CHECK.as_secs(), value_parser = wait_seconds())]
    pub link_check_timeout: u64,
    /// Under the federate strategy: seconds a federated queue on the old broker may stop
    /// shrinking after the last wave before warren shovels what is left in it (at most
    /// 604800, 7 days).
    #[arg(long, value_name = "SECONDS", default_value_t = crate::executor::Options::STALL.as_secs(), value_parser = wait_seconds())]
    pub stall_timeout: u64,
    #[command(flatten)]
    pub record: RecordArgs,
}

/// How `apply` and `rollback` change services.
#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// Change without asking for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// Seconds to wait for a queue to drain before a wave (at most 604800, 7 days).
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = wait_seconds())]
    pub drain_timeout: u64,
    /// Seconds to wait for one service's rollout (at most 604800, 7 days).
    #[arg(long, value_name = "SECONDS", default_value_t = 600, value_parser = wait_seconds())]
    pub rollout_timeout: u64,
}

/// A timeout in whole seconds, from 0 to [`crate::limits::MAX_WAIT_SECONDS`].
fn wait_seconds() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(..=crate::limits::MAX_WAIT_SECONDS)
}

/// Where `apply`, `rollback` and `decommission` record what they do, and lock.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Journal file (default: warren-journal.jsonl beside the world file, or the plan on AWS).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// DynamoDB table for the migration's team lock (AWS backend; else `lock_table` in the plan).
    #[arg(long, value_name = "NAME")]
    pub lock_table: Option<String>,
}

/// `warren decommission`.
#[derive(Debug, Args)]
pub struct DecommissionArgs {
    /// The plan file (TOML).
    pub plan: PathBuf,
    #[command(flatten)]
    pub world: WorldArg,
    /// The old broker's id, typed again to confirm.
    #[arg(long, value_name = "BROKER_ID", required = true)]
    pub confirm: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    pub format: ReportFormat,
    #[command(flatten)]
    pub record: RecordArgs,
}

/// `warren status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The plan file (TOML).
    pub plan: PathBuf,
    #[command(flatten)]
    pub world: WorldArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    pub format: ReportFormat,
    /// DynamoDB table whose shared journal to read (AWS backend; else `lock_table` in the plan).
    #[arg(long, value_name = "NAME")]
    pub lock_table: Option<String>,
}

/// `warren rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The plan file (TOML).
    pub plan: PathBuf,
    #[command(flatten)]
    pub world: WorldArg,
    #[command(flatten)]
    pub change: ChangeArgs,
    #[command(flatten)]
    pub record: RecordArgs,
}

/// `warren unlock`.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The plan file (TOML).
    pub plan: PathBuf,
    #[command(flatten)]
    pub world: WorldArg,
    /// The id of the lock to remove, as the refusal named it.
    #[arg(long, value_name = "ID", required = true)]
    pub lock_id: String,
    /// DynamoDB table for the migration's team lock (AWS backend; else `lock_table` in the plan).
    #[arg(long, value_name = "NAME")]
    pub lock_table: Option<String>,
}

/// `--world FILE`.
#[derive(Debug, Args)]
pub struct WorldArg {
    /// Run against this rehearsal world file instead of AWS.
    #[arg(long = "world", value_name = "FILE")]
    pub path: Option<PathBuf>,
}

/// How `status` and `decommission` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Human,
    Json,
}

/// `warren plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The plan file (TOML).
    pub plan: PathBuf,
    #[command(flatten)]
    pub world: WorldArg,
    /// Save the plan for `warren apply`.
    #[arg(long, value_name = "SAVED.json")]
    pub out: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Human)]
    pub format: PlanFormat,
    /// Exit 0 when nothing changes, 2 when something does, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Exit 1 while any service that points at the old broker is not in the plan.
    #[arg(long)]
    pub strict: bool,
}

/// How `plan` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Human,
    Json,
    Markdown,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(args: &[&str]) -> u8 {
        let error = Cli::try_parse_from(args).expect_err("clap answers itself");
        exit_code(&error)
    }

    #[test]
    fn usage_errors_are_1_and_help_and_version_0() {
        assert_eq!(code(&["warren", "plan", "--no-such-flag"]), 1);
        assert_eq!(code(&["warren", "plan"]), 1);
        assert_eq!(code(&["warren"]), 1);
        assert_eq!(
            code(&["warren", "apply", "p.toml", "--drain-timeout", "604801"]),
            1
        );
        assert_eq!(
            code(&["warren", "plan", "p.toml", "--max-concurrency", "0"]),
            1
        );
        assert_eq!(code(&["warren", "--help"]), 0);
        assert_eq!(code(&["warren", "help", "plan"]), 0);
        assert_eq!(code(&["warren", "--version"]), 0);
    }

    #[test]
    fn stats_and_max_concurrency_are_global_with_a_default_of_8() {
        let cli = Cli::try_parse_from(["warren", "plan", "p.toml"]).unwrap();
        assert!(!cli.global.stats);
        assert_eq!(cli.global.max_concurrency, 8);
        let cli = Cli::try_parse_from([
            "warren",
            "status",
            "p.toml",
            "--stats",
            "--max-concurrency",
            "2",
        ])
        .unwrap();
        assert!(cli.global.stats);
        assert_eq!(cli.global.max_concurrency, 2);
    }

    #[test]
    fn a_timeout_of_seven_days_is_accepted() {
        let cli = Cli::try_parse_from(["warren", "apply", "p.toml", "--rollout-timeout", "604800"])
            .unwrap();
        let Command::Apply(args) = cli.command else {
            panic!("apply parses as apply")
        };
        assert_eq!(args.change.rollout_timeout, 604_800);
    }
}
