//! `snapferry status`: what the state records, per step (status, when, outputs, last error),
//! and who holds the lock, without calling any AWS API but the state store's. With `--state`
//! it needs no plan file: a path, or `s3://bucket/key` (for a CI runner's state).

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
    /// Read this state instead of the plan's: a file path or `s3://bucket/key`.
    #[arg(long, value_name = "LOCATION")]
    pub state: Option<String>,
}

/// The store at a location given on the command line.
async fn store_at(
    location: &str,
    aws: &AwsArgs,
) -> miette::Result<std::sync::Arc<dyn snapferry_engine::StateStore>> {
    let Some(rest) = location.strip_prefix("s3://") else {
        return Ok(std::sync::Arc::new(snapferry_engine::FileStore::new(
            location,
        )));
    };
    let Some((bucket, key)) = rest
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
    else {
        return Err(miette::miette!(
            help = "write it as s3://bucket/key",
            "--state {location} names no object"
        ));
    };
    let mut options = snapferry_aws::clients::AwsOptions::from_env();
    options.profile.clone_from(&aws.profile);
    let context = snapferry_aws::clients::AwsContext::load(options)
        .await
        .map_err(|e| miette::miette!("{}", snapferry_aws::resources::chain(&e)))?;
    let region = context.default_region().unwrap_or("us-east-1").to_owned();
    let clients = context
        .clients(&region, None)
        .await
        .map_err(|e| miette::miette!("{}", snapferry_aws::resources::chain(&e)))?;
    Ok(std::sync::Arc::new(
        snapferry_aws::state_store::S3Store::new(clients.s3, bucket, key),
    ))
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    runtime()?.block_on(async {
        let (store, order, plan_name) = match &args.state {
            Some(location) => (store_at(location, &args.aws).await?, None, None),
            None => {
                let session = Session::open_unchecked(&args.plan.file, &args.aws).await?;
                let order = session.graph.topological().to_vec();
                (session.store, Some(order), Some(session.plan.name))
            }
        };
        let state = store
            .load()
            .await
            .map_err(|e| miette::miette!("{}", snapferry_aws::resources::chain(&e)))?;
        let holder = store
            .lock_holder()
            .await
            .map_err(|e| miette::miette!("{}", snapferry_aws::resources::chain(&e)))?;
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "format_version": 1,
                    "location": store.location(),
                    "state": state,
                    "lock": holder,
                })
            );
            return Ok(ExitCode::SUCCESS);
        }
        let name = plan_name
            .or_else(|| state.as_ref().map(|s| s.plan_name.clone()))
            .unwrap_or_default();
        println!("state of plan `{name}` at {}", store.location());
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
        // The plan's order when there is a plan; the state's own otherwise.
        let order = order.unwrap_or_else(|| state.nodes.keys().cloned().collect());
        for id in &order {
            let Some(node) = state.nodes.get(id) else {
                println!("  pending    {id} (new in the plan)");
                continue;
            };
            let status = match node.status {
                NodeStatus::Pending => "pending",
                NodeStatus::Applying => "applying",
                NodeStatus::Done => "done",
                NodeStatus::Failed => "failed",
                NodeStatus::Destroying => "destroying",
            };
            let when = node
                .finished_at
                .or(node.started_at)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default();
            println!("  {status:<10} {id} {when}");
            for (key, value) in &node.outputs {
                println!("               {key}: {value}");
            }
            if let Some(error) = &node.last_error {
                println!("               last error: {}", error.message);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
