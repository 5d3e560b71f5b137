//! Command-line surface: one submodule per command. The clap types here are the
//! "low" form of the arguments (what the user typed); each command resolves them
//! into checked values before doing anything.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod apply;
mod completions;
mod crash_hook;
mod demo;
mod destroy;
mod display;
mod graph;
mod logging;
mod markdown;
mod plan;
mod render;
mod sandbox;
mod saved;
mod schema;
mod session;
mod status;
mod unlock;
mod validate;

pub use validate::install_report_hook;

/// Replicate an Amazon OpenSearch Service domain into a new domain through a
/// manual snapshot in S3, declaratively.
#[derive(Debug, Parser)]
#[command(name = "snapferry", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More detail on stderr: -v steps and AWS calls, -vv requests, -vvv everything.
    /// (`SNAPFERRY_LOG` takes a full `tracing` filter instead.) Credentials never appear.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log lines as text or as one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// No colour in diagnostics (as `NO_COLOR` does); colour is only ever used on a terminal.
    #[arg(long, global = true)]
    pub no_color: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the plan file is; shared by every command that reads one.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArg {
    /// The plan file.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "PLAN",
        default_value = "snapferry.yaml"
    )]
    pub file: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replicate a seeded domain end to end against a local sandbox: the first thing to run.
    Demo(demo::Args),
    /// Show what apply would change, reading live AWS state; changes nothing.
    Plan(plan::Args),
    /// Plan, confirm, then replicate: role, bucket policy, repositories, snapshot, target
    /// domain, restore and verification, resuming where an earlier run stopped.
    Apply(apply::Args),
    /// Remove what the replication created (repositories, snapshot, owned bucket statements,
    /// the managed role; the target domain only when asked), after a plan and confirmation.
    Destroy(destroy::Args),
    /// Show what the state records per step, and who holds the lock.
    Status(status::Args),
    /// Remove a lock left by a run that is gone.
    Unlock(unlock::Args),
    /// Check a plan file offline: syntax, names and rules. Makes no AWS call.
    Validate(validate::Args),
    /// Print the step graph of a plan as Graphviz DOT or Mermaid.
    Graph(graph::Args),
    /// Print the JSON Schema of the plan file.
    Schema(schema::Args),
    /// Print a shell completion script: bash, zsh, fish, powershell or elvish.
    Completions(completions::Args),
    /// Print the man page (roff): `snapferry man > snapferry.1`; `--out-dir DIR` writes the
    /// page of every command too.
    Man(completions::ManArgs),
    /// Run the local sandbox that stands in for IAM, S3 and OpenSearch Service.
    Sandbox(sandbox::Args),
}

pub fn run(cli: Cli) -> miette::Result<ExitCode> {
    logging::init_logging(cli.verbose, cli.log_format);
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Apply(args) => apply::run(args),
        Command::Destroy(args) => destroy::run(args),
        Command::Status(args) => status::run(args),
        Command::Unlock(args) => unlock::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Graph(args) => graph::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Sandbox(args) => sandbox::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => completions::man(args),
    }
}
