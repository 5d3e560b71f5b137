//! `snapferry destroy`: removes what the replication created for the copy, and only that —
//! the repository registrations (source and target), the snapshot (unless `--keep-snapshot`),
//! the bucket-policy statements with the plan's `Sid` prefix, the role snapferry created, and
//! the target domain only with `--include-target-domain`. Never the source domain, a bucket,
//! a statement or a role snapferry did not create.
//!
//! Design: the state is the list of what was created. A node the state records as started
//! (applying, done or failed) is a candidate; a node never started created nothing. Each
//! resource's `destroy` is idempotent (gone already is fine) and checks ownership itself
//! (tags, `Sid` prefix). A value apply resolved once — the snapshot's name, from a date
//! template — cannot be resolved again, so each node's `destroy` gets, as its inputs under
//! its own id, the outputs and pins the state recorded for it.
//!
//! Nodes go one at a time in reverse dependency order (the snapshot before the repository it
//! lives in, the repositories before the bucket policy and the role), under the state lock.
//! Each destroyed node is removed from the state (with its pins) as soon as it is gone, so an
//! interrupted destroy resumes where it stopped; the first failure stops the run, leaving
//! what it depends on in place. Restore and verify own nothing outside the target domain and
//! are dropped from the state at the end. The state document itself stays (possibly with no
//! node): it records a kept target domain for a later `--include-target-domain`, and the
//! store has no delete; a later `apply` starts from it as from scratch. A second destroy
//! finds nothing to remove and says so.
//!
//! Exit codes: 0 done or nothing to do, 1 failed, refused or cancelled.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use snapferry_engine::{
    Context, FieldValue, Inputs, LockGuard, LockInfo, NodeId, NodeStatus, Outputs, StateDoc,
    Upstream,
};
use snapferry_plan::{NodeSpec, RoleSpec, StepGraph};

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

/// What destroy does with one node the state records.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    /// Remove it; the text says what goes.
    Destroy(String),
    /// Leave it in place and in the state (a later destroy may remove it); the text says why.
    Keep(String),
    /// Leave it in place but drop it from the state: snapferry no longer looks after it.
    Release(String),
    /// Nothing of its own to remove (restore, verify): dropped from the state at the end.
    Forget,
}

/// One line of the destroy plan.
struct Item {
    node: NodeId,
    decision: Decision,
    /// The recorded outputs and pins, handed to `destroy` under the node's own id.
    inputs: Inputs,
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
    let steps = session.plan.graph();
    let items = plan_destroy(session, &steps, &state, args);
    let to_destroy = items
        .iter()
        .filter(|i| matches!(i.decision, Decision::Destroy(_)))
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
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let lock = LockGuard::acquire(
        session.store.clone(),
        LockInfo::for_this_process(&command),
        Session::lock_timeout(args.lock_timeout),
    )
    .await
    .map_err(|e| chain(&e))?;
    if let Some(takeover) = lock.took_over() {
        eprintln!("Notice: {takeover}.");
    }
    let result = run_locked(session, &items, state.generation).await;
    let released = lock.release().await.map_err(|e| chain(&e));
    let code = result?;
    released?;
    Ok(code)
}

/// Destroys the planned nodes one by one under the lock, saving the state after each.
async fn run_locked(
    session: &Session,
    items: &[Item],
    planned_generation: u64,
) -> miette::Result<ExitCode> {
    let Some(mut state) = session.load_state().await? else {
        return Err(miette::miette!(
            "the state at {} disappeared since the plan was shown; nothing was changed",
            session.store.location()
        ));
    };
    if state.generation != planned_generation {
        return Err(miette::miette!(
            help = "run `snapferry destroy` again to see the current plan",
            "the state at {} changed since the plan was shown (another run wrote it); nothing was changed",
            session.store.location()
        ));
    }
    let mut destroyed = 0usize;
    for item in items {
        let Decision::Destroy(_) = &item.decision else {
            continue;
        };
        let Some(resource) = session.graph.resource(&item.node) else {
            continue;
        };
        println!("{} {}: destroying", now(), item.node);
        let cx = Context::detached(item.node.clone());
        let outcome = cx.retry(|| resource.destroy(&cx, &item.inputs)).await;
        match outcome {
            Ok(()) => {
                println!("{} {}: destroyed", now(), item.node);
                forget(&mut state, &item.node);
                save(session, &mut state).await?;
                destroyed += 1;
            }
            Err(error) => {
                println!("✗ {}: {}", item.node, error.message);
                println!(
                    "\nDestroy stopped: {destroyed} destroyed, 1 failed. What it depends on was \
                     left in place; fix the cause and run `snapferry destroy` again: what is gone \
                     stays gone."
                );
                return Ok(ExitCode::from(1));
            }
        }
    }
    let mut kept = 0usize;
    for item in items {
        match &item.decision {
            Decision::Forget => forget(&mut state, &item.node),
            Decision::Release(_) => {
                forget(&mut state, &item.node);
                kept += 1;
            }
            Decision::Keep(_) => kept += 1,
            Decision::Destroy(_) => {}
        }
    }
    save(session, &mut state).await?;
    println!(
        "\nDestroy complete: {destroyed} destroyed, {kept} kept. State: {}",
        session.store.location()
    );
    Ok(ExitCode::SUCCESS)
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Drops a node and its pins from the state (a later apply creates it afresh).
fn forget(state: &mut StateDoc, node: &NodeId) {
    state.nodes.remove(node);
    let prefix = format!("{node}:");
    state.pinned.retain(|k, _| !k.starts_with(&prefix));
}

async fn save(session: &Session, state: &mut StateDoc) -> miette::Result<()> {
    state.generation += 1;
    state.updated_at = chrono::Utc::now();
    env!("CARGO_PKG_VERSION").clone_into(&mut state.tool_version);
    session.store.save(state).await.map_err(|e| chain(&e))
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

fn recorded_name(inputs: &Inputs, node: &NodeId) -> Option<String> {
    inputs
        .get(node, "name")
        .and_then(|v| v.as_known().and_then(|v| v.as_str().map(str::to_owned)))
}

/// Every node the state records as started, in reverse dependency order, with what happens
/// to it.
fn plan_destroy(session: &Session, steps: &StepGraph, state: &StateDoc, args: &Args) -> Vec<Item> {
    let prefix = snapferry_aws::policy::owned_sid_prefix(&session.plan.name);
    session
        .graph
        .topological()
        .iter()
        .rev()
        .filter(|id| state.nodes.contains_key(*id) && state.status(id) != NodeStatus::Pending)
        .filter_map(|id| {
            let node = steps.node(id)?;
            let inputs = recorded(state, id);
            let decision = match &node.spec {
                NodeSpec::Role(spec) => match &spec.role {
                    RoleSpec::Managed { name, .. } => Decision::Destroy(format!(
                        "inline policy snapferry-snapshots and role {name} (only while tagged \
                         managed-by: snapferry, snapferry-plan: {})",
                        session.plan.name
                    )),
                    RoleSpec::Existing { arn, .. } => Decision::Release(format!(
                        "role {arn} was given by ARN; snapferry did not create it"
                    )),
                },
                NodeSpec::BucketPolicy(spec) => Decision::Destroy(format!(
                    "the statements with Sid {prefix}* in the policy of bucket {}; the bucket \
                     and its other statements stay",
                    spec.bucket.name
                )),
                NodeSpec::Repository(spec) => Decision::Destroy(format!(
                    "registration of repository {} on domain {} (the files in the bucket stay)",
                    spec.repository.name, spec.domain.name
                )),
                NodeSpec::Snapshot(spec) => match recorded_name(&inputs, id) {
                    None => Decision::Forget,
                    Some(name) if args.keep_snapshot => Decision::Release(format!(
                        "--keep-snapshot: snapshot {name} stays in bucket {}",
                        session.plan.bucket.name
                    )),
                    Some(name) => Decision::Destroy(format!(
                        "snapshot {name} in repository {} on domain {}",
                        spec.repository, spec.domain.name
                    )),
                },
                NodeSpec::Domain(spec) if args.include_target_domain => Decision::Destroy(format!(
                    "target domain {} in {}, with every index in it (AWS takes minutes to \
                         delete it; this does not wait)",
                    spec.domain.name, spec.domain.region
                )),
                NodeSpec::Domain(spec) => Decision::Keep(format!(
                    "target domain {} stays; --include-target-domain deletes it",
                    spec.domain.name
                )),
                NodeSpec::Restore(_) | NodeSpec::Verify(_) => Decision::Forget,
            };
            Some(Item {
                node: id.clone(),
                decision,
                inputs,
            })
        })
        .collect()
}

/// The human destroy plan.
fn render(session: &Session, state: &StateDoc, items: &[Item]) -> String {
    let mut out = String::new();
    let (mut destroy, mut kept) = (0, 0);
    for item in items {
        let (mark, verb, text) = match &item.decision {
            Decision::Destroy(text) => {
                destroy += 1;
                ("-", "destroy", text)
            }
            Decision::Keep(text) | Decision::Release(text) => {
                kept += 1;
                ("=", "kept", text)
            }
            Decision::Forget => continue,
        };
        out.push_str(&format!("  {mark} {} ({verb})\n      {text}\n", item.node));
    }
    for id in state.nodes.keys() {
        if session.graph.resource(id).is_none() {
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
    out.push_str(&format!("\nDestroy: {destroy} to destroy, {kept} kept.\n"));
    out
}
