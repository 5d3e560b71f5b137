//! The `snapferry` binary: parses the command line, dispatches to one module per
//! command under `cmd/`, and turns errors into `miette` diagnostics and exit codes.
//! Exit codes: 0 ok, 1 any error (a usage error too), 2 changes present (`plan
//! --detailed-exitcode`), 130 interrupted. Everything with substance lives in the
//! library crates; this crate stays thin.

mod cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    cmd::install_report_hook();
    let cli = match cmd::Cli::try_parse() {
        Ok(cli) => cli,
        Err(usage) => return usage_exit(&usage),
    };
    match cmd::run(cli) {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::from(1)
        }
    }
}

/// clap exits 2 on a usage error, but 2 means "changes present" under `plan
/// --detailed-exitcode`: a CI job that misspells a flag would read it as a plan with changes.
/// A usage error is an error (1); `--help` and `--version` print to stdout and succeed (0).
fn usage_exit(usage: &clap::Error) -> ExitCode {
    // Printing can only fail on a closed stream; the exit code still says what happened.
    let _ = usage.print();
    if usage.use_stderr() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `snapferry plan | head` closes stdout early; `println!` then panics with "Broken pipe". A
/// shell tool should just stop, as with SIGPIPE, and exit 141 without a backtrace.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}
