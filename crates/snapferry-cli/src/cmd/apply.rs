//! `snapferry apply`: plans, shows the plan, asks for confirmation on a terminal
//! (`--auto-approve` skips it; with no terminal and no `--auto-approve` it refuses), then
//! executes exactly that proposal with a live display and ends with a summary. A step whose
//! change moved since the plan was shown is not applied: it is reported stale, naming what
//! moved. Drift shown by the plan is brought back like any other change. Ctrl-C stops at the next safe point
//! (operations already started continue on AWS and the next apply resumes them); a second
//! Ctrl-C exits at once. Exit codes: 0 complete, 1 failed or refused, 130 interrupted.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use snapferry_engine::{
    ApplyOptions, ApplySummary, Executor, LockGuard, LockInfo, Outcome, Proposal, StateDoc,
};
use tokio_util::sync::CancellationToken;

use super::display::{Display, JSON_FORMAT_VERSION, JsonLines};
use super::plan::{heading, propose};
use super::render::{self, Tally};
use super::session::{AwsArgs, Session, runtime};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// A plan saved with `snapferry plan -o FILE`: applied exactly, without asking, or refused
    /// when the plan file or the live state moved since it was saved.
    #[arg(value_name = "SAVED_PLAN")]
    pub saved_plan: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub plan: super::PlanArg,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Apply without asking (for CI, after the plan was reviewed).
    #[arg(long)]
    pub auto_approve: bool,
    /// Wait up to this many seconds for another run's lock instead of failing at once.
    #[arg(long, value_name = "SECONDS")]
    pub lock_timeout: Option<u64>,
    /// Steps working at once where the graph allows (a step waiting on AWS between polls does
    /// not count, so long waits overlap).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub parallelism: usize,
    /// Accepted and ignored, for one release: apply now brings steps changed outside
    /// snapferry back to the plan without it (plan shows them as changes).
    #[arg(long, hide = true)]
    pub reconcile_drift: bool,
    /// Stream the run as JSON lines on stdout instead of text: the plan (`type: "plan"`), one
    /// object per step event (`type: "event"`), then the summary (`type: "summary"`), each
    /// with `format_version` 1 on the plan and summary. Prompts and errors go to stderr.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    if args.reconcile_drift {
        eprintln!(
            "note: --reconcile-drift is no longer needed and does nothing: apply brings steps \
             changed outside snapferry back to the plan, as `snapferry plan` shows; it will be \
             removed in a later release"
        );
    }
    runtime()?.block_on(async {
        if let Some(saved) = &args.saved_plan {
            return apply_saved(saved, &args).await;
        }
        let session = Session::open(&args.plan.file, &args.aws).await?;
        execute(&session, &args, std::io::stdin().is_terminal()).await
    })
}

/// Whether the positional argument of `apply` is a YAML plan file (a common slip for `-f`): a
/// `.yaml`/`.yml` name, or a file that is not JSON and has a top-level `version:` line.
fn looks_like_a_plan_file(path: &std::path::Path) -> bool {
    let yaml_name = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    yaml_name
        || std::fs::read_to_string(path).is_ok_and(|text| {
            serde_json::from_str::<serde_json::Value>(&text).is_err()
                && text.lines().any(|l| l.starts_with("version:"))
        })
}

/// Applies a saved plan if, planned again at the same time, it is still exactly what it says.
async fn apply_saved(path: &std::path::Path, args: &Args) -> miette::Result<ExitCode> {
    if looks_like_a_plan_file(path) {
        return Err(miette::miette!(
            help = format!(
                "apply a plan file with `snapferry apply -f {0}`; to apply exactly what was \
                 reviewed, save it first with `snapferry plan -f {0} -o plan.out` and run \
                 `snapferry apply plan.out`",
                path.display()
            ),
            "{} is a plan file, not a saved plan; nothing was changed",
            path.display()
        ));
    }
    let saved = super::saved::SavedPlan::read(path)?;
    let mut aws = args.aws.clone();
    aws.now = Some(saved.resolved_at);
    aws.targets.clone_from(&saved.targets);
    let session = Session::open(&saved.plan_file, &aws).await?;
    // The same check apply makes at each step, made for every step before anything runs.
    let (fresh, state) = propose(&session).await?;
    let moved = saved.staleness(&fresh);
    if !moved.is_empty() {
        return Err(miette::miette!(
            help = "run `snapferry plan -o FILE` again, review it, and apply the new file",
            "the saved plan {} is stale; nothing was changed:\n  - {}",
            path.display(),
            moved.join("\n  - ")
        ));
    }
    let approved = Args {
        auto_approve: true,
        ..args.clone()
    };
    // The saved proposal is the one shown and executed (and checked again step by step).
    execute_proposal(&session, &approved, false, saved.proposal, state).await
}

/// Plans, confirms and applies one session (also used by `demo`).
pub async fn execute(session: &Session, args: &Args, terminal: bool) -> miette::Result<ExitCode> {
    let (proposal, state) = propose(session).await?;
    execute_proposal(session, args, terminal, proposal, state).await
}

/// Shows `proposal`, confirms and applies it.
async fn execute_proposal(
    session: &Session,
    args: &Args,
    terminal: bool,
    proposal: Proposal,
    state: Option<StateDoc>,
) -> miette::Result<ExitCode> {
    if args.json {
        let mut plan = render::json(&proposal, &session.plan.name);
        plan["type"] = "plan".into();
        println!("{plan}");
    } else {
        print!("{}", render::text(&proposal, &heading(session)));
    }
    let tally = Tally::of(&proposal);
    if tally.blocked > 0 {
        eprintln!("Nothing was changed.");
        if args.json {
            println!("{}", json_outcome(session, "blocked"));
        }
        return Ok(ExitCode::from(1));
    }
    let up_to_date = !tally.changes()
        && state.as_ref().is_some_and(|s| {
            s.plan_fingerprint == proposal.plan_fingerprint
                && s.is_complete(session.graph.topological().iter())
        })
        && proposal
            .state
            .as_ref()
            .is_some_and(|d| d.changed.is_empty() && d.added.is_empty());
    // A held lock means another run may be changing things right now (or a dead one left
    // it): then "no changes" would be a guess, so go through the executor, which reports
    // the holder (or waits for it with --lock-timeout).
    let unlocked = session
        .store
        .lock_holder()
        .await
        .map_err(|e| miette::miette!("{}", snapferry_aws::resources::chain(&e)))?
        .is_none();
    if up_to_date && unlocked {
        if args.json {
            println!("{}", json_outcome(session, "up_to_date"));
        } else {
            println!("\nNo changes: everything matches the plan and the state.");
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Up to date but locked: nothing would change, so there is nothing to confirm either.
    if !args.auto_approve && !up_to_date {
        if !terminal {
            return Err(miette::miette!(
                help = "review the plan, then run `snapferry apply --auto-approve` (as CI does after `snapferry plan`)",
                "refusing to apply without confirmation: standard input is not a terminal"
            ));
        }
        let question = "\nApply these changes? Only 'yes' is accepted: ";
        if args.json {
            eprint!("{question}");
        } else {
            print!("{question}");
            let _ = std::io::stdout().flush();
        }
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if answer.trim() != "yes" {
            if args.json {
                eprintln!("Apply cancelled; nothing was changed.");
                println!("{}", json_outcome(session, "cancelled"));
            } else {
                println!("Apply cancelled; nothing was changed.");
            }
            return Ok(ExitCode::from(1));
        }
    }
    if !args.json {
        println!();
    }
    let cancel = CancellationToken::new();
    let display = Arc::new(if args.json {
        Display::Json(JsonLines::default())
    } else {
        Display::new(std::io::stderr().is_terminal())
    });
    let watcher = tokio::spawn(watch_ctrl_c(cancel.clone(), display.clone()));
    let mut options = ApplyOptions::new(&session.plan.name);
    options.parallelism = args.parallelism.max(1);
    options.poll = session.poll.clone();
    options.events = display;
    options.cancel = cancel;
    options.lock_timeout = Session::lock_timeout(args.lock_timeout);
    options.command = std::env::args().collect::<Vec<_>>().join(" ");
    let guard = LockGuard::acquire(
        session.store.clone(),
        LockInfo::for_this_process(&options.command),
        options.lock_timeout,
    )
    .await
    .map_err(|e| miette::miette!("{}", snapferry_aws::resources::chain(&e)));
    let result = match guard {
        Ok(guard) => {
            if let Some(takeover) = guard.took_over() {
                eprintln!("Notice: {takeover}.");
            }
            Executor::new(session.graph.clone(), session.store.clone())
                .apply_locked(guard, &proposal, &options)
                .await
                .map_err(|e| miette::miette!("{}", snapferry_aws::resources::chain(&e)))
        }
        Err(e) => Err(e),
    };
    watcher.abort();
    let summary = result?;
    if args.json {
        return Ok(report_json(&summary, session));
    }
    Ok(report(&summary, session))
}

/// The last line of `apply --json` when nothing ran: `outcome` is `blocked` (a step cannot be
/// applied; exit 1), `cancelled` (the prompt was not answered `yes`; exit 1) or `up_to_date`
/// (nothing to do; exit 0). `stale` lists the steps whose change moved since the plan was
/// shown, each with what moved (not applied).
fn json_outcome(session: &Session, outcome: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "summary",
        "format_version": JSON_FORMAT_VERSION,
        "plan": session.plan.name,
        "outcome": outcome,
        "applied": [],
        "unchanged": [],
        "stale": [],
        "failed": [],
        "interrupted": [],
        "not_started": [],
        "state": session.store.location(),
    })
}

/// The last line of `apply --json` after a run: `outcome` is `complete` (exit 0), `failed`
/// (exit 1) or `interrupted` (exit 130), with the nodes in each group.
fn report_json(summary: &ApplySummary, session: &Session) -> ExitCode {
    let ids = |nodes: &[snapferry_engine::NodeId]| -> Vec<String> {
        nodes.iter().map(ToString::to_string).collect()
    };
    let (outcome, code) = match summary.outcome {
        Outcome::Complete => ("complete", ExitCode::SUCCESS),
        Outcome::Failed => ("failed", ExitCode::from(1)),
        Outcome::Interrupted => ("interrupted", ExitCode::from(130)),
    };
    let mut line = json_outcome(session, outcome);
    line["applied"] = ids(&summary.applied).into();
    line["unchanged"] = ids(&summary.unchanged).into();
    line["stale"] = summary
        .stale
        .iter()
        .map(|(id, moved)| {
            serde_json::json!({
                "node": id.to_string(),
                "moved": moved.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        })
        .collect::<Vec<_>>()
        .into();
    line["failed"] = summary
        .failed
        .iter()
        .map(|e| serde_json::json!({"node": e.node.to_string(), "error": e.message}))
        .collect::<Vec<_>>()
        .into();
    line["interrupted"] = ids(&summary.interrupted).into();
    line["not_started"] = ids(&summary.not_started).into();
    println!("{line}");
    code
}

async fn watch_ctrl_c(cancel: CancellationToken, display: Arc<Display>) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    display.notice(
        "\nStopping at the next safe point. Operations already started continue on AWS; \
         `snapferry apply` again resumes them. Press Ctrl-C again to exit at once.",
    );
    cancel.cancel();
    if tokio::signal::ctrl_c().await.is_ok() {
        display.notice("Exiting now; the state records where each step was.");
        std::process::exit(130);
    }
}

/// Prints the summary and picks the exit code.
fn report(summary: &ApplySummary, session: &Session) -> ExitCode {
    println!();
    for (id, moved) in &summary.stale {
        println!(
            "✗ {id} changed since the plan was shown, so it was not applied: {}",
            super::display::moved_text(moved)
        );
    }
    for error in &summary.failed {
        println!("✗ {}: {}", error.node, error.message);
    }
    let counts = format!(
        "{} applied, {} unchanged, {} stale, {} failed, {} not started",
        summary.applied.len(),
        summary.unchanged.len(),
        summary.stale.len(),
        summary.failed.len(),
        summary.not_started.len() + summary.interrupted.len()
    );
    match summary.outcome {
        Outcome::Complete => {
            println!(
                "Apply complete: {counts}. State: {}",
                session.store.location()
            );
            ExitCode::SUCCESS
        }
        Outcome::Failed if summary.failed.is_empty() => {
            println!(
                "Apply stopped: {counts}. Run `snapferry plan` to review what changed, then \
                 `snapferry apply` again: finished steps are not repeated."
            );
            ExitCode::from(1)
        }
        Outcome::Failed => {
            println!(
                "Apply failed: {counts}. Fix the cause above and run `snapferry apply` again: \
                 finished steps are not repeated."
            );
            ExitCode::from(1)
        }
        Outcome::Interrupted => {
            println!("Apply interrupted: {counts}. Run `snapferry apply` again to resume.");
            ExitCode::from(130)
        }
    }
}
