//! `snapferry validate`: offline checks of a plan file. Prints every problem at
//! once as miette diagnostics (file:line:column and the offending snippet), or
//! with `--json` as a stable machine-readable document for CI.

use std::io::IsTerminal;
use std::process::ExitCode;

use serde_json::json;
use snapferry_plan::{LoadError, load};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub plan: super::PlanArg,
    /// Print the result as JSON on stdout: {"format_version":1,"valid":bool,"errors":[...]},
    /// with "omitted":N when more problems were found than listed.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    let file = &args.plan.file;
    match load(file) {
        Ok(plan) => {
            if args.json {
                println!(
                    "{}",
                    json!({"format_version": 1, "valid": true, "errors": []})
                );
            } else {
                let steps = plan.graph().len();
                println!(
                    "{} is valid: {} replication(s), {steps} steps, fingerprint {}",
                    file.display(),
                    plan.replications.len(),
                    plan.fingerprint()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) if args.json => {
            println!("{}", errors_json(&error));
            Ok(ExitCode::from(1))
        }
        Err(error) => Err(miette::Report::new(error)),
    }
}

/// The `--json` document for a plan that failed to load.
fn errors_json(error: &LoadError) -> serde_json::Value {
    let omitted = match error {
        LoadError::Invalid(all) => all.omitted,
        LoadError::Read { .. } => 0,
    };
    let errors: Vec<serde_json::Value> = match error {
        LoadError::Read { path, source } => vec![json!({
            "file": path.display().to_string(),
            "line": null,
            "column": null,
            "message": format!("cannot read plan file {}: {source}", path.display()),
            "help": "check the path, or pass the plan with -f PLAN",
        })],
        LoadError::Invalid(all) => all
            .errors
            .iter()
            .map(|d| {
                json!({
                    "file": all.file,
                    "line": d.line,
                    "column": d.column,
                    "message": d.problem.to_string(),
                    "help": d.help_text(),
                })
            })
            .collect(),
    };
    let mut doc = json!({"format_version": 1, "valid": false, "errors": errors});
    if omitted > 0 {
        // `errors` lists the first problems in the file's order; this many more were found.
        doc["omitted"] = json!(omitted);
    }
    doc
}

/// Installs the miette report handler used by `main`: graphical, without ANSI
/// colour when stderr is not a terminal or `NO_COLOR` is set, at a fixed width,
/// so what a test captures is exactly what a user sees in a log.
pub fn install_report_hook() {
    // The hook is installed before clap parses, so `--no-color` is looked for directly.
    let color = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && !std::env::args().any(|a| a == "--no-color");
    // Only the first call installs; a second one (in tests) is harmless.
    let _ = miette::set_hook(Box::new(move |_| {
        let opts = miette::MietteHandlerOpts::new()
            .force_graphical(true)
            .terminal_links(false)
            .width(100)
            .color(color)
            .unicode(color);
        Box::new(opts.build())
    }));
}

/// Loads and checks a plan for the commands that act on it; a bad plan is the same
/// diagnostic `validate` prints.
pub fn load_plan(file: &std::path::Path) -> miette::Result<snapferry_plan::Plan> {
    load(file).map_err(miette::Report::new)
}
