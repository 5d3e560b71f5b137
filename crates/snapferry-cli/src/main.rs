//! The `snapferry` binary: parses the command line, dispatches to one module per
//! command under `cmd/`, and turns errors into `miette` diagnostics and exit codes.
//! Everything with substance lives in the library crates; this crate stays thin.

mod cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    quiet_on_closed_stdout();
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
