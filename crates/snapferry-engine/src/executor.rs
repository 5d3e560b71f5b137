//! `apply`: executes an approved [`Proposal`]. It walks the graph, starting a node as soon as
//! its dependencies are done, up to `parallelism` at once, so independent branches (the target
//! domain's creation and the snapshot) overlap. Per node: a fresh read (with the outputs its
//! upstreams just recorded) → diff → the fresh change checked against the proposed one (a
//! change that moved stops the node as stale, naming the fields; moving forward is fine) →
//! apply if needed → wait → record outputs, with a checkpoint at every transition. A failed or
//! stale node stops its dependents and halts the run at the next safe point of every other
//! node; cancellation stops new work, leaves remote operations running and returns
//! `Interrupted`, so `apply` again (a new plan) resumes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use snapferry_plan::NodeId;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::change::Change;
use crate::engine_error::EngineError;
use crate::error::ResourceError;
use crate::events::{Event, EventSink, NullSink};
use crate::graph::ExecGraph;
use crate::journal::Journal;
use crate::poll::PollSchedule;
use crate::proposal::{Proposal, ProposedNode};
use crate::resource::{Context, Inputs, Progress, Resource, Slot, Upstream};
use crate::retry::RetryPolicy;
use crate::staleness::{Moved, Verdict, compare};
use crate::state::{NodeStatus, StateDoc};
use crate::store::{LockGuard, LockInfo, StateStore};

/// How one apply runs.
#[derive(Clone)]
pub struct ApplyOptions {
    pub plan_name: String,
    /// Recorded in the state (`CARGO_PKG_VERSION` of the binary).
    pub tool_version: String,
    /// Nodes in flight at once (`--parallelism`, default 10).
    pub parallelism: usize,
    pub retry: RetryPolicy,
    pub poll: PollSchedule,
    pub events: Arc<dyn EventSink>,
    /// Fire it (Ctrl-C) to stop starting work and return `Interrupted`.
    pub cancel: CancellationToken,
    /// How long to wait for another run's lock (`--lock-timeout`); zero fails at once.
    pub lock_timeout: Duration,
    /// The command line, recorded in the lock for whoever is refused.
    pub command: String,
}

impl ApplyOptions {
    pub fn new(plan_name: &str) -> Self {
        ApplyOptions {
            plan_name: plan_name.to_owned(),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            parallelism: 10,
            retry: RetryPolicy::default(),
            poll: PollSchedule::default(),
            events: Arc::new(NullSink),
            cancel: CancellationToken::new(),
            lock_timeout: Duration::ZERO,
            command: "snapferry apply".to_owned(),
        }
    }
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every node is done.
    Complete,
    /// At least one node failed or was found stale.
    Failed,
    /// Cancelled before everything was done; `apply` again resumes.
    Interrupted,
}

/// What happened to every node.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplySummary {
    pub outcome: Outcome,
    /// Applied (or waited for) and now done.
    pub applied: Vec<NodeId>,
    /// Already done and still true.
    pub unchanged: Vec<NodeId>,
    /// Its change moved since the proposal was made: not applied, what moved named.
    pub stale: Vec<(NodeId, Vec<Moved>)>,
    pub failed: Vec<ResourceError>,
    /// Stopped at a safe point (still `applying` in the state when its operation started);
    /// the next apply resumes it.
    pub interrupted: Vec<NodeId>,
    pub not_started: Vec<NodeId>,
    /// The state's generation after the last write.
    pub generation: u64,
}

/// Runs a graph against a state store.
pub struct Executor {
    graph: Arc<ExecGraph>,
    store: Arc<dyn StateStore>,
}

enum NodeOutcome {
    Applied,
    Unchanged,
    Stale(Vec<Moved>),
    Failed(ResourceError),
    Interrupted,
    /// Stopped (Ctrl-C, or another node failed) before it got a parallelism share.
    NotStarted,
    Fatal(EngineError),
}

impl Executor {
    pub fn new(graph: Arc<ExecGraph>, store: Arc<dyn StateStore>) -> Self {
        Executor { graph, store }
    }

    /// The graph this executor runs (what a proposal for it is planned from).
    pub fn graph(&self) -> &Arc<ExecGraph> {
        &self.graph
    }

    /// The store of the state it checkpoints to.
    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    /// Executes `proposal` (the one the user approved): takes the lock, runs every node,
    /// releases the lock. Each node is read again at its turn and applied only if its fresh
    /// change is the proposed one or moved forward from it. An `Err` means the run could not
    /// proceed at all (the proposal is for another graph, lock held, state unreadable, a
    /// checkpoint failed); node failures and stale nodes are in the summary.
    pub async fn apply(
        &self,
        proposal: &Proposal,
        options: &ApplyOptions,
    ) -> Result<ApplySummary, EngineError> {
        self.check(proposal)?;
        let info = LockInfo::for_this_process(&options.command);
        let guard = LockGuard::acquire(self.store.clone(), info, options.lock_timeout).await?;
        self.apply_locked(guard, proposal, options).await
    }

    /// Runs every node that is not done under a lock the caller took on this executor's store
    /// (so it can say first whose dead lock it took over), then releases it. The state is
    /// written through the guard's store, and the run stops at its next safe point if the
    /// lock's lease is lost: then the error is `LeaseLost`.
    pub async fn apply_locked(
        &self,
        guard: LockGuard,
        proposal: &Proposal,
        options: &ApplyOptions,
    ) -> Result<ApplySummary, EngineError> {
        self.check(proposal)?;
        let mut locked = options.clone();
        locked.cancel = guard.cancel_token(&options.cancel);
        let fenced = Executor::new(self.graph.clone(), guard.store());
        let result = fenced.run_locked(proposal, &locked).await;
        let released = guard.release().await;
        let summary = result?;
        released?;
        Ok(summary)
    }

    /// The proposal must cover exactly the graph's nodes.
    fn check(&self, proposal: &Proposal) -> Result<(), EngineError> {
        let graph: BTreeSet<&NodeId> = self.graph.topological().iter().collect();
        let proposed: BTreeSet<&NodeId> = proposal.nodes.keys().collect();
        if let Some(missing) = graph.difference(&proposed).next() {
            return Err(EngineError::ProposalMismatch {
                detail: format!("it has no change for {missing}"),
            });
        }
        if let Some(extra) = proposed.difference(&graph).next() {
            return Err(EngineError::ProposalMismatch {
                detail: format!("{extra} is not a step of this plan"),
            });
        }
        Ok(())
    }

    async fn run_locked(
        &self,
        proposal: &Proposal,
        options: &ApplyOptions,
    ) -> Result<ApplySummary, EngineError> {
        let mut doc = match self.store.load().await? {
            Some(doc) if doc.plan_name != options.plan_name => {
                return Err(EngineError::WrongPlan {
                    location: self.store.location(),
                    expected: options.plan_name.clone(),
                    found: doc.plan_name,
                });
            }
            Some(doc) => doc,
            None => StateDoc::new(
                &options.plan_name,
                &proposal.plan_fingerprint,
                &options.tool_version,
            ),
        };
        // The last run finished: this one is a new cycle, so templated names (a snapshot
        // named `{date}`) are resolved afresh (to the values the proposal showed).
        let new_cycle = doc.is_complete(self.graph.topological().iter());
        doc.plan_fingerprint.clone_from(&proposal.plan_fingerprint);
        doc.tool_version.clone_from(&options.tool_version);
        for id in self.graph.topological() {
            doc.nodes
                .entry(id.clone())
                .or_insert_with(crate::state::NodeState::pending);
        }
        let journal = Arc::new(Journal::new(
            self.store.clone(),
            doc,
            new_cycle,
            proposal.live.pinned.clone(),
        ));
        journal.checkpoint().await?;

        let halt = CancellationToken::new();
        let mut waiting: BTreeMap<NodeId, usize> = BTreeMap::new();
        let mut ready = VecDeque::new();
        for id in self.graph.topological() {
            let n = self.graph.deps(id).count();
            if n == 0 {
                ready.push_back(id.clone());
            } else {
                waiting.insert(id.clone(), n);
            }
        }
        let mut running: JoinSet<(NodeId, NodeOutcome)> = JoinSet::new();
        let mut finished: BTreeMap<NodeId, NodeOutcome> = BTreeMap::new();
        // `parallelism` bounds the steps *working* at once; a step sleeping between polls gives
        // its share back (`Slot`), so a fleet's waits overlap instead of queueing.
        let slots = Arc::new(tokio::sync::Semaphore::new(options.parallelism.max(1)));
        loop {
            while !halt.is_cancelled() && !options.cancel.is_cancelled() {
                let Some(id) = ready.pop_front() else { break };
                let resource = self
                    .graph
                    .resource(&id)
                    .expect("graph node has a resource")
                    .clone();
                let inputs = self.inputs_for(&journal, &id).await;
                let task = NodeTask {
                    resource,
                    proposed: proposal.nodes[&id].clone(),
                    inputs,
                    journal: journal.clone(),
                    options: options.clone(),
                    halt: halt.clone(),
                    slot: Arc::new(Slot::new(slots.clone())),
                };
                let span = tracing::info_span!("node", node = %id);
                running.spawn(async move { (id, task.run().await) }.instrument(span));
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let (id, outcome) = joined.expect("node task panicked");
            match &outcome {
                NodeOutcome::Applied | NodeOutcome::Unchanged => {
                    for dependent in self.graph.dependents(&id) {
                        let left = waiting.get_mut(dependent).expect("dependent is waiting");
                        *left -= 1;
                        if *left == 0 {
                            waiting.remove(dependent);
                            ready.push_back(dependent.clone());
                        }
                    }
                }
                NodeOutcome::Failed(_) | NodeOutcome::Stale(_) | NodeOutcome::Fatal(_) => {
                    halt.cancel();
                }
                NodeOutcome::Interrupted | NodeOutcome::NotStarted => {}
            }
            finished.insert(id, outcome);
        }

        let mut summary = ApplySummary {
            outcome: Outcome::Complete,
            applied: vec![],
            unchanged: vec![],
            stale: vec![],
            failed: vec![],
            interrupted: vec![],
            not_started: vec![],
            generation: 0,
        };
        let mut fatal = None;
        for id in self.graph.topological() {
            match finished.remove(id) {
                Some(NodeOutcome::Applied) => summary.applied.push(id.clone()),
                Some(NodeOutcome::Unchanged) => summary.unchanged.push(id.clone()),
                Some(NodeOutcome::Stale(moved)) => summary.stale.push((id.clone(), moved)),
                Some(NodeOutcome::Failed(e)) => summary.failed.push(e),
                Some(NodeOutcome::Interrupted) => summary.interrupted.push(id.clone()),
                Some(NodeOutcome::NotStarted) => summary.not_started.push(id.clone()),
                Some(NodeOutcome::Fatal(e)) => fatal = fatal.or(Some(e)),
                None => summary.not_started.push(id.clone()),
            }
        }
        if let Some(e) = fatal {
            return Err(e);
        }
        summary.outcome = if !summary.failed.is_empty() || !summary.stale.is_empty() {
            Outcome::Failed
        } else if summary.interrupted.is_empty() && summary.not_started.is_empty() {
            Outcome::Complete
        } else {
            Outcome::Interrupted
        };
        if summary.outcome == Outcome::Interrupted {
            journal.checkpoint().await?;
        }
        summary.generation = journal.snapshot().await.generation;
        Ok(summary)
    }

    async fn inputs_for(&self, journal: &Journal, id: &NodeId) -> Inputs {
        let mut inputs = Inputs::new();
        for dep in self.graph.deps(id) {
            let outputs = journal
                .node(dep)
                .await
                .map(|n| n.outputs)
                .unwrap_or_default();
            inputs.insert(dep.clone(), Upstream::Known(outputs));
        }
        inputs
    }
}

struct NodeTask {
    resource: Arc<dyn Resource>,
    /// What the approved proposal says for this node.
    proposed: ProposedNode,
    inputs: Inputs,
    journal: Arc<Journal>,
    options: ApplyOptions,
    halt: CancellationToken,
    slot: Arc<Slot>,
}

impl NodeTask {
    fn stopping(&self) -> bool {
        self.halt.is_cancelled() || self.options.cancel.is_cancelled()
    }

    async fn run(self) -> NodeOutcome {
        let id = self.resource.id().clone();
        let events = &self.options.events;
        if !self.slot.take(&self.options.cancel).await {
            return NodeOutcome::NotStarted;
        }
        // Another node failed while this one waited for its share: a step already done is
        // still re-read (and reported unchanged), anything else is left for the next run.
        if self.halt.is_cancelled()
            && self.journal.node(&id).await.map(|n| n.status) != Some(NodeStatus::Done)
        {
            self.slot.give_back();
            return NodeOutcome::NotStarted;
        }
        events.emit(Event::Started { node: id.clone() });
        let outcome = match self.steps(&id).await {
            Ok(outcome) => outcome,
            Err(Step::Failed(error)) if error.is_interrupted() => NodeOutcome::Interrupted,
            Err(Step::Failed(error)) => {
                tracing::warn!(%error, "node failed");
                let recorded = error.clone();
                match self
                    .journal
                    .transition(&id, NodeStatus::Failed, |n| n.last_error = Some(recorded))
                    .await
                {
                    Ok(()) => NodeOutcome::Failed(error),
                    Err(EngineError::Transition(_)) => NodeOutcome::Failed(error),
                    Err(e) => NodeOutcome::Fatal(e),
                }
            }
            Err(Step::Fatal(e)) => NodeOutcome::Fatal(e),
        };
        match &outcome {
            NodeOutcome::Applied => events.emit(Event::Finished { node: id }),
            NodeOutcome::Unchanged => events.emit(Event::Skipped { node: id }),
            NodeOutcome::Stale(moved) => events.emit(Event::Stale {
                node: id,
                moved: moved.clone(),
            }),
            NodeOutcome::Failed(error) => events.emit(Event::Failed {
                node: id,
                error: error.clone(),
            }),
            NodeOutcome::Interrupted => events.emit(Event::Interrupted { node: id }),
            NodeOutcome::Fatal(_) | NodeOutcome::NotStarted => {}
        }
        self.slot.give_back();
        outcome
    }

    async fn steps(&self, id: &NodeId) -> Result<NodeOutcome, Step> {
        let resource = &*self.resource;
        // A blocked step is never applied: the proposal said why.
        if let Change::Blocked { reason } = &self.proposed.change {
            return Err(Step::Failed(ResourceError::permanent(id, reason.clone())));
        }
        let cx = Context::new(
            id.clone(),
            self.options.cancel.clone(),
            self.options.retry.clone(),
            self.options.poll.clone(),
            self.options.events.clone(),
            self.journal.clone(),
        )
        .with_slot(self.slot.clone());
        let inputs = &self.inputs;
        let prior = self
            .journal
            .node(id)
            .await
            .unwrap_or_else(crate::state::NodeState::pending);
        let desired = resource.desired_fingerprint();
        let was_done = prior.status == NodeStatus::Done;

        // Read again at this node's turn, with the outputs the upstreams just recorded, and
        // check that the change is still the one the user approved.
        let mut read_inputs = inputs.clone();
        read_inputs.insert(id.clone(), Upstream::Known(prior.outputs.clone()));
        let observed = cx.retry(|| resource.read(&cx, &read_inputs)).await?;
        let change = resource.diff(inputs, &observed);
        tracing::debug!(
            change = change.verb(),
            proposed = self.proposed.change.verb(),
            "diffed"
        );
        if let Verdict::Stale(moved) =
            compare(&self.proposed.change, &change, self.proposed.volatile)
        {
            tracing::warn!(
                change = change.verb(),
                "stale: changed since the plan was made"
            );
            return Ok(NodeOutcome::Stale(moved));
        }
        let fingerprint = crate::resource::effective_fingerprint(
            &desired,
            &self.journal.snapshot().await.pinned,
            id,
            inputs,
        );

        // A volatile node's fresh read is not trusted to say it is settled: the change the
        // proposal showed for it is carried out (a verification shown as running runs).
        let carried_out = self.proposed.volatile && self.proposed.change.has_changes();
        if was_done && !change.has_changes() && !carried_out {
            let plan_changed = prior.desired_fingerprint.as_deref() != Some(fingerprint.as_str());
            let outputs = if plan_changed || prior.outputs.values().any(|v| v.is_redacted()) {
                resource
                    .wait(
                        &cx,
                        inputs,
                        &Progress::new(id.clone(), self.options.events.clone()),
                    )
                    .await?
            } else {
                prior.outputs
            };
            if plan_changed {
                self.journal
                    .transition(id, NodeStatus::Done, |n| {
                        n.outputs = outputs;
                        n.desired_fingerprint = Some(fingerprint.clone());
                    })
                    .await?;
            }
            return Ok(NodeOutcome::Unchanged);
        }
        if self.stopping() {
            return Ok(NodeOutcome::Interrupted);
        }
        self.journal
            .transition(id, NodeStatus::Applying, |_| {})
            .await?;
        if change.needs_apply() || (carried_out && self.proposed.change.needs_apply()) {
            tracing::info!(change = change.verb(), "applying");
            cx.retry(|| resource.apply(&cx, &read_inputs, &change))
                .await?;
        }
        if self.stopping() {
            return Ok(NodeOutcome::Interrupted);
        }
        let outputs = resource
            .wait(
                &cx,
                &read_inputs,
                &Progress::new(id.clone(), self.options.events.clone()),
            )
            .await?;
        // Apply may have pinned values too; record the fingerprint as it stands now.
        let fingerprint = crate::resource::effective_fingerprint(
            &desired,
            &self.journal.snapshot().await.pinned,
            id,
            inputs,
        );
        self.journal
            .transition(id, NodeStatus::Done, |n| {
                n.outputs = outputs;
                n.desired_fingerprint = Some(fingerprint);
                n.last_error = None;
            })
            .await?;
        Ok(NodeOutcome::Applied)
    }
}

enum Step {
    Failed(ResourceError),
    Fatal(EngineError),
}

impl From<ResourceError> for Step {
    fn from(e: ResourceError) -> Self {
        Step::Failed(e)
    }
}

impl From<EngineError> for Step {
    fn from(e: EngineError) -> Self {
        Step::Fatal(e)
    }
}

/// The node ids of `graph` still to do according to `state` (for `status`).
pub fn remaining(graph: &ExecGraph, state: &StateDoc) -> BTreeSet<NodeId> {
    graph
        .topological()
        .iter()
        .filter(|id| state.status(id) != NodeStatus::Done)
        .cloned()
        .collect()
}
