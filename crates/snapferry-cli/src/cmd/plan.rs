//! `snapferry plan`: reads live AWS state through every step into one value, computes from it
//! (purely) what `apply` would do, and shows it, changing nothing. Exit codes: 0 fine, 1 error or a blocked step, and with
//! `--detailed-exitcode` 2 when there are changes (as Terraform does, for CI).

use std::process::ExitCode;

use snapferry_engine::{PlanOptions, Proposal, StateDoc};

use super::render::{self, Tally};
use super::session::{AwsArgs, Session, runtime};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub plan: super::PlanArg,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Print the plan as JSON on stdout (the same as `--format json`).
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// How to print the plan: `text` for people, `json` for programs, `markdown` for a
    /// pull-request comment (a changes table, blocked steps, details collapsed).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// Exit 2 when there are changes, 0 when there are none.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Save the plan to FILE; `snapferry apply FILE` applies exactly it, or refuses if the plan
    /// file or the live state moved since.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    runtime()?.block_on(async {
        let session = Session::open(&args.plan.file, &args.aws).await?;
        let (proposal, _) = propose(&session).await?;
        let format = match (args.json, args.format) {
            (true, _) => Format::Json,
            (false, format) => format.unwrap_or(Format::Text),
        };
        match format {
            Format::Json => println!("{}", render::json(&proposal, &session.plan.name)),
            Format::Text => print!("{}", render::text(&proposal, &heading(&session))),
            Format::Markdown => {
                let plan_file = args.plan.file.display().to_string();
                let state = session.store.location();
                let heading = super::markdown::Heading {
                    plan_name: &session.plan.name,
                    plan_file: &plan_file,
                    state: &state,
                };
                print!(
                    "{}",
                    super::markdown::markdown(
                        &proposal,
                        &heading,
                        super::markdown::GITHUB_COMMENT_LIMIT
                    )
                );
            }
        }
        if let Some(out) = &args.out {
            let mut saved = super::saved::SavedPlan::new(
                &proposal,
                &session.plan.name,
                &args.plan.file,
                session.now,
            );
            saved.targets.clone_from(&args.aws.targets);
            saved.write(out)?;
            if format == Format::Text {
                println!(
                    "\nSaved to {}: `snapferry apply {}` applies exactly this plan.",
                    out.display(),
                    out.display()
                );
            }
        }
        let tally = Tally::of(&proposal);
        Ok(if tally.blocked > 0 {
            ExitCode::from(1)
        } else if args.detailed_exitcode && tally.changes() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        })
    })
}

/// How `plan` prints the proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

/// The first line of a plan: which plan, which state.
pub fn heading(session: &Session) -> String {
    format!(
        "snapferry plan `{}` ({}), state at {}",
        session.plan.name,
        session.plan_file.display(),
        session.store.location()
    )
}

/// Reads everything and diffs it against the plan (and the state, if any).
pub async fn propose(session: &Session) -> miette::Result<(Proposal, Option<StateDoc>)> {
    let state = session.load_state().await?;
    let options = PlanOptions::new(&session.plan.fingerprint());
    let proposal = snapferry_engine::plan(&session.graph, state.as_ref(), &options)
        .await
        .map_err(|e| miette::miette!("{}", snapferry_aws::resources::chain(&e)))
        .map_err(|r| r.wrap_err("could not read the live state; nothing was changed"))?;
    Ok((proposal, state))
}
