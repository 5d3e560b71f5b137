//! `snapferry destroy`: removes what the replication created for the copy, and only that —
//! the repository registrations (source and target), the snapshot (unless `--keep-snapshot`),
//! the bucket-policy statements with the plan's `Sid` prefix, the role snapferry created, and
//! the target domain only with `--include-target-domain`. Never the source domain, a bucket
//! (not even one apply created with `bucket.create: true`: it says so, with the command that
//! removes it), a statement or a role snapferry did not create.
//!
//! Design: the state is the list of what was created. A node the state records as started
//! (applying, done, failed or destroying) is a candidate; a node never started created
//! nothing. What happens to each is its kind's destroy policy, from the registry in
//! `snapferry-aws` (`resources::destroy_policy`); each resource's `destroy` is idempotent (gone
//! already is fine) and checks ownership itself (tags, `Sid` prefix). A value apply resolved
//! once — the snapshot's name, from a date template — cannot be resolved again, so each node's
//! `destroy` gets, as its inputs under its own id, the outputs and pins the state recorded for
//! it.
//!
//! The engine runs it (`Executor::destroy`), as it runs apply: one node at a time in reverse
//! dependency order (the snapshot before the repository it lives in, the repositories before
//! the bucket policy and the role), under the state lock, each moved to `destroying` before its
//! call and removed from the state (with its pins) once it is gone, so an interrupted destroy
//! resumes where it stopped; the first failure stops the run, recorded on the node, leaving
//! what it depends on in place. Restore and verify own nothing outside the target domain and
//! are dropped from the state at the end. The state document itself stays (possibly with no
//! node): it records a kept target domain for a later `--include-target-domain`, and the
//! store has no delete; a later `apply` starts from it as from scratch. A second destroy
//! finds nothing to remove and says so.
//!
//! Exit codes: 0 done or nothing to do, 1 failed, refused or cancelled.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use snapferry_aws::resources::{DestroyFlags, destroy_policy};
use snapferry_engine::{
    DestroyAction, DestroyOptions, DestroyStep, Event, EventSink, Executor, FieldValue, Inputs,
    LockGuard, LockInfo, NodeId, NodeStatus, Outputs, StateDoc, Upstream,
};

use super::session::{AwsArgs, Session, runtime};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub plan: super::PlanArg,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Destroy without asking (for CI, after the destroy plan was reviewed).
    #[arg(long)]
    pub auto_approve: bool,
    /// Leave the snapshot in the bucket (its repository registrations still go).
    #[arg(long)]
    pub keep_snapshot: bool,
    /// Also delete the target domain (with every index restored into it).
    #[arg(long)]
    pub include_target_domain: bool,
    /// Wait up to this many seconds for another run's lock instead of failing at once.
    #[arg(long, value_name = "SECONDS")]
    pub lock_timeout: Option<u64>,
}

/// One line of the destroy plan.
struct Item {
    step: DestroyStep,
    /// What the line says (empty for a node only dropped from the state).
    text: String,
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    if !args.aws.targets.is_empty() {
        // For plan and apply a target brings its dependencies; destroying those would remove
        // far more than the step named, so destroy takes the whole replication or nothing.
        return Err(miette::miette!(
            help = "run `snapferry destroy` without --target; `--keep-snapshot` keeps the snapshot",
            "destroy does not take --target"
        ));
    }
    runtime()?.block_on(async {
        let session = Session::open(&args.plan.file, &args.aws).await?;
        execute(&session, &args, std::io::stdin().is_terminal()).await
    })
}

fn chain(e: &dyn std::error::Error) -> miette::Report {
    miette::miette!("{}", snapferry_aws::resources::chain(e))
}

async fn execute(session: &Session, args: &Args, terminal: bool) -> miette::Result<ExitCode> {
    let location = session.store.location();
    println!(
        "snapferry destroy `{}` ({}), state at {location}\n",
        session.plan.name,
        session.plan_file.display()
    );
    let Some(state) = session.load_state().await? else {
        println!("Nothing to destroy: no state at {location}, so snapferry created nothing here.");
        return Ok(ExitCode::SUCCESS);
    };
    let flags = DestroyFlags {
        keep_snapshot: args.keep_snapshot,
        include_target_domain: args.include_target_domain,
    };
    let items = plan_destroy(session, &state, flags);
    let to_destroy = items
        .iter()
        .filter(|i| i.step.action == DestroyAction::Destroy)
        .count();
    print!("{}", render(session, &state, &items));
    if to_destroy == 0 {
        println!("\nNothing to destroy: everything snapferry created for this plan is gone.");
        return Ok(ExitCode::SUCCESS);
    }
    if !args.auto_approve {
        if !terminal {
            return Err(miette::miette!(
                help = "review the plan above, then run `snapferry destroy --auto-approve`",
                "refusing to destroy without confirmation: standard input is not a terminal"
            ));
        }
        print!("\nDestroy these? Only 'yes' is accepted: ");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if answer.trim() != "yes" {
            println!("Destroy cancelled; nothing was changed.");
            return Ok(ExitCode::from(1));
        }
    }
    println!();
    let mut options = DestroyOptions::new(state.generation);
    options.events = Arc::new(Lines);
    options.lock_timeout = Session::lock_timeout(args.lock_timeout);
    options.command = std::env::args().collect::<Vec<_>>().join(" ");
    let steps: Vec<DestroyStep> = items.into_iter().map(|i| i.step).collect();
    let lock = LockGuard::acquire(
        session.store.clone(),
        LockInfo::for_this_process(&options.command),
        options.lock_timeout,
    )
    .await
    .map_err(|e| chain(&e))?;
    if let Some(takeover) = lock.took_over() {
        eprintln!("Notice: {takeover}.");
    }
    let summary = Executor::new(session.graph.clone(), session.store.clone())
        .destroy_locked(lock, &steps, &options)
        .await
        .map_err(|e| chain(&e))?;
    if let Some(error) = &summary.failed {
        println!("✗ {}: {}", error.node, error.message);
        println!(
            "\nDestroy stopped: {} destroyed, 1 failed. What it depends on was left in place; fix \
             the cause and run `snapferry destroy` again: what is gone stays gone.",
            summary.destroyed.len()
        );
        return Ok(ExitCode::from(1));
    }
    println!(
        "\nDestroy complete: {} destroyed, {} kept. State: {}",
        summary.destroyed.len(),
        summary.kept.len(),
        session.store.location()
    );
    Ok(ExitCode::SUCCESS)
}

/// The live lines of a destroy: when each node starts and is gone.
struct Lines;

impl EventSink for Lines {
    fn emit(&self, event: Event) {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
        match event {
            Event::Started { node } => println!("{now} {node}: destroying"),
            Event::Finished { node } => println!("{now} {node}: destroyed"),
            Event::Retrying {
                node,
                attempt,
                delay,
                error,
            } => println!(
                "{now} {node}: retrying in {:.1}s (attempt {attempt}): {}",
                delay.as_secs_f64(),
                error.message
            ),
            _ => {}
        }
    }
}

/// The recorded outputs and pins of `node` (pins without their `<node>:` prefix; outputs win).
fn recorded(state: &StateDoc, node: &NodeId) -> Inputs {
    let prefix = format!("{node}:");
    let mut outputs: Outputs = StateDoc::pins_of(&state.pinned, node)
        .map(|(k, v)| (k[prefix.len()..].to_owned(), FieldValue::Known(v.clone())))
        .collect();
    if let Some(recorded) = state.nodes.get(node) {
        outputs.extend(recorded.outputs.clone());
    }
    let mut inputs = Inputs::new();
    inputs.insert(node.clone(), Upstream::Known(outputs));
    inputs
}

/// Every node the state records as started, in reverse dependency order, with what its kind's
/// destroy policy does with it.
fn plan_destroy(session: &Session, state: &StateDoc, flags: DestroyFlags) -> Vec<Item> {
    let steps = session.plan.graph();
    session
        .graph
        .topological()
        .iter()
        .rev()
        .filter(|id| state.nodes.contains_key(*id) && state.status(id) != NodeStatus::Pending)
        .filter_map(|id| {
            let node = steps.node(id)?;
            let inputs = recorded(state, id);
            let (action, text) = destroy_policy(&session.plan, id, &node.spec, &inputs, flags);
            Some(Item {
                step: DestroyStep {
                    node: id.clone(),
                    action,
                    inputs,
                },
                text,
            })
        })
        .collect()
}

/// The human destroy plan.
fn render(session: &Session, state: &StateDoc, items: &[Item]) -> String {
    let mut out = String::new();
    let (mut destroy, mut kept) = (0, 0);
    for item in items {
        let (mark, verb) = match item.step.action {
            DestroyAction::Destroy => {
                destroy += 1;
                ("-", "destroy")
            }
            DestroyAction::Keep | DestroyAction::Release => {
                kept += 1;
                ("=", "kept")
            }
            DestroyAction::Forget => continue,
        };
        out.push_str(&format!(
            "  {mark} {} ({verb})\n      {}\n",
            item.step.node, item.text
        ));
    }
    for id in state.nodes.keys() {
        if session.graph.resource(id).is_none() && !session.graph.untargeted().contains(id) {
            out.push_str(&format!(
                "  ! {id} is recorded in the state but is not in the plan any more; snapferry \
                 cannot remove it from this plan: remove it by hand\n"
            ));
        }
    }
    let sources: std::collections::BTreeSet<&str> = session
        .plan
        .replications
        .iter()
        .map(|r| r.source.name.as_str())
        .collect();
    for source in sources {
        out.push_str(&format!("  = source domain {source} is never touched\n"));
    }
    if session.plan.bucket.create {
        let bucket = &session.plan.bucket.name;
        out.push_str(&format!(
            "  = bucket {bucket} is kept: destroy never deletes a bucket, not even one apply \
             created (`bucket.create: true`), since it may hold other snapshots; once nothing in \
             it is needed: `aws s3 rb s3://{bucket} --force`\n"
        ));
    }
    out.push_str(&format!("\nDestroy: {destroy} to destroy, {kept} kept.\n"));
    out
}
