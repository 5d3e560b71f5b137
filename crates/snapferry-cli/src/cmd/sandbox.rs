//! `snapferry sandbox`: run the local AWS stand-in (IAM, S3, OpenSearch Service) until stopped,
//! after printing the `export` lines a shell needs to point the tool (or any AWS client, the AWS
//! CLI included) at it: endpoint, CA bundle, keys, `AWS_REGION` and `AWS_DEFAULT_REGION`, and
//! `SNAPFERRY_POLL_SCALE` so a hand-run apply polls as fast as the sandbox's time runs.
//! `--config` takes the seed (domains with their indices and documents, buckets, roles, faults,
//! latencies): see docs/sandbox.md.

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
    let poll_scale = poll_scale(config.time_scale);
    runtime.block_on(async move {
        let handle = Sandbox::start(config)
            .await
            .map_err(|e| miette::miette!("{}", error_chain(&e)))?;
        for (key, value) in handle.env() {
            println!("export {key}={}", shell_quote(&value));
        }
        println!("export SNAPFERRY_POLL_SCALE={poll_scale}");
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

/// How much faster snapferry should poll a sandbox whose simulated time runs `time_scale` real
/// seconds per second: fifty times the time scale (the demo's 0.05 at the default 0.001), so a
/// 20-minute domain creation that takes 1.2 s is noticed within a fraction of a second, and never
/// slower than on AWS.
fn poll_scale(time_scale: f64) -> f64 {
    (time_scale * 50.0).clamp(0.01, 1.0)
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
