//! The command line, as typed (clap derive). `config.rs` turns it into validated values.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
}

/// warren's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what would move, in which order, and which services the plan forgot.
    Plan(PlanArgs),
}

/// `warren plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The plan file (TOML).
    pub plan: PathBuf,
    /// The rehearsal world file to plan against.
    #[arg(long, value_name = "FILE", required = true)]
    pub world: Option<PathBuf>,
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
