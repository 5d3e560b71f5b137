//! `destroy` on the engine: removes what apply created, one node at a time in the order given
//! (dependents first), under the state lock, through the same journal and checked state
//! machine as apply — the engine is the one writer of the state. A node is moved to
//! `destroying` before its resource's `destroy` is called (so a crash in between is visible and
//! a later destroy or apply takes it from there) and leaves the state only once it is gone.
//! The first failure stops the run, leaving what it depends on in place and the failure
//! recorded on the node. Which nodes go, stay or are only dropped from the state is the
//! caller's decision (each kind's destroy policy lives with the kind, in `snapferry-aws`).

use std::time::Duration;

use snapferry_plan::NodeId;
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use crate::engine_error::EngineError;
use crate::error::ResourceError;
use crate::events::{Event, EventSink, NullSink};
use crate::executor::Executor;
use crate::journal::Journal;
use crate::pins::MemoryPins;
use crate::poll::PollSchedule;
use crate::resource::{Context, Inputs};
use crate::retry::RetryPolicy;
use crate::state::NodeStatus;
use crate::store::{LockGuard, LockInfo};

/// What destroy does with one node the state records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestroyAction {
    /// Call the resource's `destroy`, then drop the node from the state.
    Destroy,
    /// Leave it in place and in the state (a later destroy may remove it).
    Keep,
    /// Leave it in place but drop it from the state: snapferry no longer looks after it.
    Release,
    /// Nothing of its own to remove (a restore, a verification): dropped from the state.
    Forget,
}

/// One node of a destroy, in the order it runs.
#[derive(Debug, Clone)]
pub struct DestroyStep {
    pub node: NodeId,
    pub action: DestroyAction,
    /// What `destroy` is given: under the node's own id, its recorded outputs and pins.
    pub inputs: Inputs,
}

/// How one destroy runs.
#[derive(Clone)]
pub struct DestroyOptions {
    /// The state's generation when the destroy plan was shown: another run writing it in
    /// between refuses the destroy.
    pub expected_generation: u64,
    pub retry: RetryPolicy,
    pub events: Arc<dyn EventSink>,
    pub cancel: CancellationToken,
    pub lock_timeout: Duration,
    pub command: String,
    /// Recorded in the state.
    pub tool_version: String,
}

impl DestroyOptions {
    pub fn new(expected_generation: u64) -> Self {
        DestroyOptions {
            expected_generation,
            retry: RetryPolicy::default(),
            events: Arc::new(NullSink),
            cancel: CancellationToken::new(),
            lock_timeout: Duration::ZERO,
            command: "snapferry destroy".to_owned(),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// What a destroy did.
#[derive(Debug, Clone, PartialEq)]
pub struct DestroySummary {
    pub destroyed: Vec<NodeId>,
    /// Kept in place (still in the state, or released from it).
    pub kept: Vec<NodeId>,
    /// The failure that stopped the run (the node stays `destroying`, with the error).
    pub failed: Option<ResourceError>,
    /// The state's generation after the last write.
    pub generation: u64,
}

impl Executor {
    /// Runs `steps` in order under the lock. An `Err` means the destroy could not run at all
    /// (lock held, state gone or moved since the plan was shown, a checkpoint failed).
    pub async fn destroy(
        &self,
        steps: &[DestroyStep],
        options: &DestroyOptions,
    ) -> Result<DestroySummary, EngineError> {
        let info = LockInfo::for_this_process(&options.command);
        let guard = LockGuard::acquire(self.store().clone(), info, options.lock_timeout).await?;
        self.destroy_locked(guard, steps, options).await
    }

    /// [`Executor::destroy`] under a lock the caller took on this executor's store (so it can
    /// say first whose dead lock it took over), released at the end. The state is written
    /// through the guard's store, and a lost lease stops the run at its next step.
    pub async fn destroy_locked(
        &self,
        guard: LockGuard,
        steps: &[DestroyStep],
        options: &DestroyOptions,
    ) -> Result<DestroySummary, EngineError> {
        let mut locked = options.clone();
        locked.cancel = guard.cancel_token(&options.cancel);
        let fenced = Executor::new(self.graph().clone(), guard.store());
        let result = fenced.run_destroy(steps, &locked).await;
        let released = guard.release().await;
        let summary = result?;
        released?;
        Ok(summary)
    }

    async fn run_destroy(
        &self,
        steps: &[DestroyStep],
        options: &DestroyOptions,
    ) -> Result<DestroySummary, EngineError> {
        let location = self.store().location();
        let Some(mut doc) = self.store().load().await? else {
            return Err(EngineError::StateMoved { location });
        };
        if doc.generation != options.expected_generation {
            return Err(EngineError::StateMoved { location });
        }
        doc.tool_version.clone_from(&options.tool_version);
        let journal = Arc::new(Journal::new(
            self.store().clone(),
            doc,
            false,
            Default::default(),
        ));
        let mut summary = DestroySummary {
            destroyed: Vec::new(),
            kept: Vec::new(),
            failed: None,
            generation: 0,
        };
        for step in steps {
            if step.action != DestroyAction::Destroy {
                continue;
            }
            let Some(resource) = self.graph().resource(&step.node).cloned() else {
                continue;
            };
            // Not recorded (any more): snapferry created nothing there, or it is gone already.
            if journal.node(&step.node).await.is_none() {
                continue;
            }
            let span = tracing::info_span!("destroy", node = %step.node);
            let _entered = span.enter();
            journal
                .transition(&step.node, NodeStatus::Destroying, |_| {})
                .await?;
            options.events.emit(Event::Started {
                node: step.node.clone(),
            });
            let cx = Context::new(
                step.node.clone(),
                options.cancel.clone(),
                options.retry.clone(),
                PollSchedule::default(),
                options.events.clone(),
                Arc::new(MemoryPins::default()),
            );
            match cx.retry(|| resource.destroy(&cx, &step.inputs)).await {
                Ok(()) => {
                    journal.forget(std::slice::from_ref(&step.node)).await?;
                    options.events.emit(Event::Finished {
                        node: step.node.clone(),
                    });
                    summary.destroyed.push(step.node.clone());
                }
                Err(error) => {
                    let recorded = error.clone();
                    journal
                        .transition(&step.node, NodeStatus::Destroying, |n| {
                            n.last_error = Some(recorded);
                        })
                        .await?;
                    options.events.emit(Event::Failed {
                        node: step.node.clone(),
                        error: error.clone(),
                    });
                    summary.failed = Some(error);
                    summary.generation = journal.snapshot().await.generation;
                    return Ok(summary);
                }
            }
        }
        // Released nodes leave the state in one write, each through `destroying`.
        let mut released = Vec::new();
        for step in steps {
            match step.action {
                DestroyAction::Destroy => {}
                DestroyAction::Keep => summary.kept.push(step.node.clone()),
                DestroyAction::Release => {
                    summary.kept.push(step.node.clone());
                    released.push(step.node.clone());
                }
                DestroyAction::Forget => released.push(step.node.clone()),
            }
        }
        let mut recorded = Vec::new();
        for node in released {
            if journal.node(&node).await.is_some() {
                recorded.push(node);
            }
        }
        if !recorded.is_empty() {
            journal.release(&recorded).await?;
        }
        summary.generation = journal.snapshot().await.generation;
        Ok(summary)
    }
}
