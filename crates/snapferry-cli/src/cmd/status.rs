//! `snapferry status`: what the state records, per step (status, when, outputs, last error),
//! and who holds the lock, without calling any AWS API but the state store's.

use std::process::ExitCode;

use snapferry_engine::NodeStatus;

use super::session::{AwsArgs, Session, runtime};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub plan: super::PlanArg,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Print the state document as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    runtime()?.block_on(async {
        let session = Session::open(&args.plan.file, &args.aws).await?;
        let state = session.load_state().await?;
        let holder = session
            .store
            .lock_holder()
            .await
            .map_err(|e| miette::miette!("{}", snapferry_aws::resources::chain(&e)))?;
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "format_version": 1,
                    "location": session.store.location(),
                    "state": state,
                    "lock": holder,
                })
            );
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "state of plan `{}` at {}",
            session.plan.name,
            session.store.location()
        );
        if let Some(holder) = &holder {
            println!("locked by {holder}");
        }
        let Some(state) = state else {
            println!("no state yet: nothing has been applied");
            return Ok(ExitCode::SUCCESS);
        };
        println!(
            "written by snapferry {} at {} (generation {})\n",
            state.tool_version,
            state.updated_at.to_rfc3339(),
            state.generation
        );
        for id in session.graph.topological() {
            let Some(node) = state.nodes.get(id) else {
                println!("  pending   {id} (new in the plan)");
                continue;
            };
            let status = match node.status {
                NodeStatus::Pending => "pending",
                NodeStatus::Applying => "applying",
                NodeStatus::Done => "done",
                NodeStatus::Failed => "failed",
            };
            let when = node
                .finished_at
                .or(node.started_at)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default();
            println!("  {status:<9} {id} {when}");
            for (key, value) in &node.outputs {
                println!("              {key}: {value}");
            }
            if let Some(error) = &node.last_error {
                println!("              last error: {}", error.message);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
