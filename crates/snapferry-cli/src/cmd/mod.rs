//! Command-line surface: one submodule per command. The clap types here are the
//! "low" form of the arguments (what the user typed); each command resolves them
//! into checked values before doing anything.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod apply;
mod demo;
mod display;
mod graph;
mod plan;
mod render;
mod sandbox;
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
    /// Run the local sandbox that stands in for IAM, S3 and OpenSearch Service.
    Sandbox(sandbox::Args),
}

pub fn run(cli: Cli) -> miette::Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Apply(args) => apply::run(args),
        Command::Status(args) => status::run(args),
        Command::Unlock(args) => unlock::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Graph(args) => graph::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Sandbox(args) => sandbox::run(args),
    }
}
