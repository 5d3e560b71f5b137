//! `snapferry graph`: the step graph of a plan as Graphviz DOT or Mermaid, to
//! see (and review in a pull request) what waits for what before any apply.

use std::process::ExitCode;

use snapferry_plan::load;

/// Output formats of the graph.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// Graphviz DOT (`snapferry graph | dot -Tsvg > graph.svg`).
    Dot,
    /// Mermaid flowchart (renders in GitHub markdown).
    Mermaid,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub plan: super::PlanArg,
    /// Output format.
    #[arg(long, value_enum, default_value = "dot")]
    pub format: Format,
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    let plan = load(&args.plan.file)?;
    let graph = plan.graph();
    match args.format {
        Format::Dot => print!("{}", graph.to_dot()),
        Format::Mermaid => print!("{}", graph.to_mermaid()),
    }
    Ok(ExitCode::SUCCESS)
}
