//! `snapferry sandbox`: run the local AWS stand-in until stopped.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Sandbox configuration (YAML): credentials, latencies, seeded domains, faults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    Err(miette::miette!(
        "sandbox is not implemented yet (config {:?})",
        args.config
    ))
}
