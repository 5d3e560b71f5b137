//! `snapferry unlock`: removes a lock left by a run that is gone, after showing who held it and
//! asking; `--force` skips the question for scripts. `apply` already takes over the lock of a
//! run that is gone from this machine, and an S3 lease once it has expired, so this is for a
//! local lock taken on another machine or before a reboot, or an S3 lease one does not want to
//! wait out. It removes exactly the lock it showed: if another run took or renewed the lock in
//! between, nothing is removed.

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
        let Some(shown) = store.read_lock().await.map_err(chain)? else {
            println!("{} is not locked", store.location());
            return Ok(ExitCode::SUCCESS);
        };
        println!("{} is locked by {}", store.location(), shown.info);
        if let Some(expires_at) = shown.info.expires_at {
            println!(
                "Its lease runs until {}; once it has expired (and is not renewed), `snapferry apply` takes it over by itself.",
                expires_at.to_rfc3339()
            );
        }
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
        if store.remove_lock(&shown).await.map_err(chain)? {
            println!("Lock removed. `snapferry apply` resumes from the state.");
        } else {
            println!("The lock was already gone (its run finished). `snapferry apply` resumes from the state.");
        }
        Ok(ExitCode::SUCCESS)
    })
}
