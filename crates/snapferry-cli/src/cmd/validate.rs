//! `snapferry validate`: offline checks of a plan file.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub plan: super::PlanArg,
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    Err(miette::miette!(
        "validate is not implemented yet (plan file {})",
        args.plan.file.display()
    ))
}
