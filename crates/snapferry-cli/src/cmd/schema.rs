//! `snapferry schema`: the JSON Schema of the plan file, for editors
//! (`# yaml-language-server: $schema=...`) and for CI linters.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> miette::Result<ExitCode> {
    let schema = serde_json::to_string_pretty(&snapferry_plan::json_schema())
        .expect("a JSON value always prints");
    println!("{schema}");
    Ok(ExitCode::SUCCESS)
}
