//! The `snapferry` binary: parses the command line, dispatches to one module per
//! command under `cmd/`, and turns errors into `miette` diagnostics and exit codes.
//! Everything with substance lives in the library crates; this crate stays thin.

mod cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    cmd::install_report_hook();
    let cli = cmd::Cli::parse();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::from(1)
        }
    }
}
