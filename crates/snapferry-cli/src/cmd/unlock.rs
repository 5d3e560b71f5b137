//! `snapferry unlock`: removes a lock left by a run that is gone (a crash, a killed CI job),
//! after showing who held it and asking; `--force` skips the question for scripts.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use super::session::{AwsArgs, Session, runtime};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub plan: super::PlanArg,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Remove the lock without asking.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    runtime()?.block_on(async {
        let session = Session::open_unchecked(&args.plan.file, &args.aws).await?;
        let store = &session.store;
        let chain = |e: snapferry_engine::StoreError| {
            miette::miette!("{}", snapferry_aws::resources::chain(&e))
        };
        let Some(holder) = store.lock_holder().await.map_err(chain)? else {
            println!("{} is not locked", store.location());
            return Ok(ExitCode::SUCCESS);
        };
        println!("{} is locked by {holder}", store.location());
        if !args.force {
            if !std::io::stdin().is_terminal() {
                return Err(miette::miette!(
                    help = "make sure that run is really gone, then run `snapferry unlock --force`",
                    "refusing to remove the lock without confirmation: standard input is not a terminal"
                ));
            }
            print!("Remove it? Only do this if that run is gone. Only 'yes' is accepted: ");
            let _ = std::io::stdout().flush();
            let mut answer = String::new();
            let _ = std::io::stdin().lock().read_line(&mut answer);
            if answer.trim() != "yes" {
                println!("The lock stays.");
                return Ok(ExitCode::from(1));
            }
        }
        store.force_unlock().await.map_err(chain)?;
        println!("Lock removed. `snapferry apply` resumes from the state.");
        Ok(ExitCode::SUCCESS)
    })
}
