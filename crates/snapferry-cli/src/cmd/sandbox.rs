//! `snapferry sandbox`: run the local AWS stand-in (IAM, S3, OpenSearch Service) until stopped,
//! after printing the `export` lines a shell needs to point the tool (or any AWS client) at it.

use std::path::PathBuf;
use std::process::ExitCode;

use miette::{Context, IntoDiagnostic};
use snapferry_sandbox::{Sandbox, SandboxConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Sandbox configuration (YAML): credentials, latencies, seeded domains, faults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => SandboxConfig::from_yaml_file(path)
            .map_err(|e| miette::miette!("{}", error_chain(&e)))
            .wrap_err_with(|| {
                format!("fix {} and run `snapferry sandbox` again", path.display())
            })?,
        None => SandboxConfig::default(),
    };
    let runtime = tokio::runtime::Runtime::new()
        .into_diagnostic()
        .wrap_err("cannot start the async runtime")?;
    runtime.block_on(async move {
        let handle = Sandbox::start(config)
            .await
            .map_err(|e| miette::miette!("{}", error_chain(&e)))?;
        for (key, value) in handle.env() {
            println!("export {key}={}", shell_quote(&value));
        }
        println!("# sandbox log: curl {}/_sandbox/log", handle.endpoint_url());
        println!("# press Ctrl-C to stop");
        tokio::signal::ctrl_c()
            .await
            .into_diagnostic()
            .wrap_err("cannot wait for Ctrl-C")?;
        handle.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Single-quotes a value for POSIX shells.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}
