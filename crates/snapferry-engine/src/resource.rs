//! The contract every resource kind implements: `read` live state (never mutating), `diff`
//! desired against observed (pure, synchronous), `apply` the change (idempotent: safe to
//! repeat after a crash), `wait` until ready and return the outputs. Also the values that
//! flow through it: `Inputs` (upstream outputs, possibly "known after apply"), `Observed`
//! (serializable, so a whole live state can be recorded and planned from again), and the
//! `Context` that carries cancellation, retry, polling, events and pinned values.
//!
//! Planning calls `read` for every node first (with what is known before apply: the state's
//! recorded outputs and the upstream nodes' observed outputs, never a guess about a change),
//! then `diff` for every node (with `Unknown` inputs from upstreams that will change). Apply
//! calls `read` and `diff` again at each node's turn, with the real upstream outputs, and
//! compares the result with the proposal before calling `apply`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use snapferry_plan::NodeId;
use tokio_util::sync::CancellationToken;

use crate::change::{Change, FieldValue};
use crate::error::ResourceError;
use crate::events::{Event, EventSink};
use crate::pins::{MemoryPins, PinStore};
use crate::poll::{Expected, PollSchedule};
use crate::retry::RetryPolicy;
use crate::state::Outputs;

/// One step of the graph against a live system.
#[async_trait]
pub trait Resource: Send + Sync {
    /// The node this resource is (its key in the graph and the state).
    fn id(&self) -> &NodeId;

    /// The kind (`role`, `snapshot`, ...), for logs and to find code on resume.
    fn kind(&self) -> &'static str;

    /// A stable digest of the desired settings: when it differs from the one recorded in the
    /// state, the plan changed for this node since it was applied.
    fn desired_fingerprint(&self) -> String;

    /// True when the live state this kind observes moves on its own (document counts of a
    /// source in use): a fresh read differing from the proposal does not make it stale, and
    /// apply carries out the change the proposal showed for it even when the fresh read sees
    /// none (a verification shown as running again runs again).
    fn volatile(&self) -> bool {
        false
    }

    /// Reads live state. Must never mutate anything. `inputs` hold what is known before
    /// apply (never `Unknown`): while planning, each upstream's recorded outputs overlaid with
    /// its observed ones (a key may be missing when the upstream does not exist yet); while
    /// applying, the outputs the upstreams just recorded. Under the node's own id they also
    /// hold what the state recorded for the node itself (what a verification last verified).
    /// Whatever `diff` needs beyond its inputs must go into the observed value, so that
    /// `diff` stays a function of its arguments.
    async fn read(&self, cx: &Context, inputs: &Inputs) -> Result<Observed, ResourceError>;

    /// Compares desired with observed. Pure: no I/O, same answer for the same arguments.
    /// Inputs may be `Unknown` during planning (the upstream will change); the change must
    /// then say so (`(known after apply)`), not guess, and must not be `NoOp` when the result
    /// depends on them. The same fields must come out whether a value is unknown or known
    /// (an unknown `indices` may become `indices.<name>` fields), so that apply can check the
    /// fresh change against the proposal field by field.
    fn diff(&self, inputs: &Inputs, observed: &Observed) -> Change;

    /// Makes the change. Idempotent: called again after a crash it must not duplicate
    /// anything (the executor re-reads first, but a crash can fall between the service
    /// accepting the call and the checkpoint). `inputs` are those of the fresh `read`, the
    /// node's own recorded outputs included (so does `wait` get them).
    async fn apply(
        &self,
        cx: &Context,
        inputs: &Inputs,
        change: &Change,
    ) -> Result<(), ResourceError>;

    /// Waits until the resource is ready, reporting progress, and returns its outputs.
    /// Called after `apply`, on resume of an in-progress node, and for a node that already
    /// matched; must be cheap when the resource is ready.
    async fn wait(
        &self,
        cx: &Context,
        inputs: &Inputs,
        progress: &Progress,
    ) -> Result<Outputs, ResourceError>;

    /// Removes what apply created. Kinds that must never be deleted keep the default refusal.
    async fn destroy(&self, _cx: &Context, _inputs: &Inputs) -> Result<(), ResourceError> {
        Err(ResourceError::permanent(
            self.id(),
            format!("{} resources cannot be destroyed by snapferry", self.kind()),
        ))
    }
}

/// The outputs of one upstream node as seen by a dependent.
#[derive(Debug, Clone, PartialEq)]
pub enum Upstream {
    Known(Outputs),
    /// The upstream will change during apply: every value it outputs is `Unknown` now.
    KnownAfterApply,
}

/// Upstream outputs by node, then key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    upstream: BTreeMap<NodeId, Upstream>,
}

impl Inputs {
    pub fn new() -> Self {
        Inputs::default()
    }

    pub fn insert(&mut self, node: NodeId, upstream: Upstream) {
        self.upstream.insert(node, upstream);
    }

    /// The value `key` of upstream `node`: `Unknown` when that node will change, `None` when
    /// `node` is not an upstream or did not output `key`.
    pub fn get(&self, node: &NodeId, key: &str) -> Option<FieldValue> {
        match self.upstream.get(node)? {
            Upstream::Known(outputs) => outputs.get(key).cloned(),
            Upstream::KnownAfterApply => Some(FieldValue::Unknown),
        }
    }

    /// The first upstream of `kind` that outputs `key` (resources usually know the kind of
    /// their upstream, not its instance).
    pub fn by_kind(&self, kind: &str, key: &str) -> Option<FieldValue> {
        self.upstream
            .keys()
            .filter(|n| n.kind() == kind)
            .find_map(|n| self.get(n, key))
    }

    /// True when no upstream is `KnownAfterApply`.
    pub fn all_known(&self) -> bool {
        self.upstream
            .values()
            .all(|u| matches!(u, Upstream::Known(_)))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &Upstream)> {
        self.upstream.iter()
    }
}

/// What `read` found. Serializable: a recorded live state is a map of these, and planning
/// from it needs no network.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Observed {
    pub exists: bool,
    /// Something started earlier is still running (an `IN_PROGRESS` snapshot, a domain still
    /// `Processing`): resume waits for it instead of starting it again.
    pub in_progress: Option<String>,
    /// The live state, for diff and for rendering.
    pub value: serde_json::Value,
    /// What dependents would get if this node needed no change (the plan uses it so a
    /// dependent of an unchanged node sees real values, not `Unknown`, and dependents' reads
    /// use it as what is known before apply).
    #[serde(default)]
    pub outputs: Outputs,
}

impl Observed {
    /// Nothing there.
    pub fn absent() -> Self {
        Observed {
            exists: false,
            in_progress: None,
            value: serde_json::Value::Null,
            outputs: Outputs::new(),
        }
    }

    /// Exists with this live state.
    pub fn present(value: serde_json::Value) -> Self {
        Observed {
            exists: true,
            in_progress: None,
            value,
            outputs: Outputs::new(),
        }
    }

    #[must_use]
    pub fn with_outputs(mut self, outputs: Outputs) -> Self {
        self.outputs = outputs;
        self
    }

    #[must_use]
    pub fn in_progress(mut self, what: impl Into<String>) -> Self {
        self.in_progress = Some(what.into());
        self
    }
}

/// One answer from a poll in [`Context::poll_until`].
#[derive(Debug, Clone, PartialEq)]
pub enum PollStatus<T> {
    Ready(T),
    Pending {
        done: u64,
        total: u64,
        message: String,
    },
}

/// Reports a node's progress (`done` of `total`, e.g. shards) to the event sink.
#[derive(Clone)]
pub struct Progress {
    node: NodeId,
    events: Arc<dyn EventSink>,
}

impl Progress {
    pub fn new(node: NodeId, events: Arc<dyn EventSink>) -> Self {
        Progress { node, events }
    }

    pub fn report(&self, done: u64, total: u64, message: impl Into<String>) {
        self.events.emit(Event::Progress {
            node: self.node.clone(),
            done,
            total,
            message: message.into(),
        });
    }
}

/// What a resource operation may use besides its inputs.
#[derive(Clone)]
pub struct Context {
    node: NodeId,
    cancel: CancellationToken,
    retry: RetryPolicy,
    poll: PollSchedule,
    events: Arc<dyn EventSink>,
    pins: Arc<dyn PinStore>,
    slot: Option<Arc<Slot>>,
}

/// A node's share of `--parallelism`: held while it works, given back while it sleeps between
/// polls, so a step waiting half an hour on AWS does not keep another step from starting.
pub(crate) struct Slot {
    semaphore: Arc<tokio::sync::Semaphore>,
    permit: Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
}

impl Slot {
    pub(crate) fn new(semaphore: Arc<tokio::sync::Semaphore>) -> Self {
        Slot {
            semaphore,
            permit: Mutex::new(None),
        }
    }

    /// Takes a share (if not already held); `false` when `stop` fired first.
    pub(crate) async fn take(&self, stop: &CancellationToken) -> bool {
        if self.permit.lock().expect("slot poisoned").is_some() {
            return true;
        }
        let permit = tokio::select! {
            permit = self.semaphore.clone().acquire_owned() => permit.expect("semaphore never closed"),
            () = stop.cancelled() => return false,
        };
        *self.permit.lock().expect("slot poisoned") = Some(permit);
        true
    }

    pub(crate) fn give_back(&self) {
        self.permit.lock().expect("slot poisoned").take();
    }
}

impl Context {
    pub(crate) fn new(
        node: NodeId,
        cancel: CancellationToken,
        retry: RetryPolicy,
        poll: PollSchedule,
        events: Arc<dyn EventSink>,
        pins: Arc<dyn PinStore>,
    ) -> Self {
        Context {
            node,
            cancel,
            retry,
            poll,
            events,
            pins,
            slot: None,
        }
    }

    /// Makes polls give the node's parallelism share back while they sleep.
    #[must_use]
    pub(crate) fn with_slot(mut self, slot: Arc<Slot>) -> Self {
        self.slot = Some(slot);
        self
    }

    /// A context outside any run (for unit tests of resources): nothing is persisted.
    pub fn detached(node: NodeId) -> Self {
        Context::new(
            node,
            CancellationToken::new(),
            RetryPolicy::default(),
            PollSchedule::default(),
            Arc::new(crate::events::NullSink),
            Arc::new(MemoryPins::default()),
        )
    }

    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// Fires on Ctrl-C: stop at the next safe point.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    pub fn events(&self) -> &Arc<dyn EventSink> {
        &self.events
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    pub fn poll_schedule(&self) -> &PollSchedule {
        &self.poll
    }

    /// Runs `op` under the retry policy (transient errors back off, permanent ones fail).
    pub async fn retry<T, F, Fut>(&self, op: F) -> Result<T, ResourceError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ResourceError>>,
    {
        self.retry
            .run(&self.node, &*self.events, &self.cancel, op)
            .await
    }

    /// Polls `op` on the adaptive schedule until it is ready, reporting each pending answer
    /// as progress; each poll is retried on transient errors. Cancellation interrupts the
    /// sleep and returns an `Interrupted` error, leaving the operation running remotely.
    pub async fn poll_until<T, F, Fut>(&self, op: F) -> Result<T, ResourceError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<PollStatus<T>, ResourceError>>,
    {
        self.poll_on(&self.poll, op).await
    }

    /// [`Context::poll_until`] for an operation that usually takes `expected` (AWS time):
    /// sparse polls while completion is improbable, dense ones inside the window (see
    /// [`crate::poll`]), so a 15–30 minute domain creation costs at most about sixty calls
    /// and is still noticed within 15 s late in its window.
    pub async fn poll_until_expecting<T, F, Fut>(
        &self,
        expected: Expected,
        op: F,
    ) -> Result<T, ResourceError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<PollStatus<T>, ResourceError>>,
    {
        self.poll_on(&self.poll.expecting(expected), op).await
    }

    async fn poll_on<T, F, Fut>(
        &self,
        schedule: &PollSchedule,
        mut op: F,
    ) -> Result<T, ResourceError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<PollStatus<T>, ResourceError>>,
    {
        let started = tokio::time::Instant::now();
        let mut previous = None;
        loop {
            match self.retry(&mut op).await? {
                PollStatus::Ready(value) => return Ok(value),
                PollStatus::Pending {
                    done,
                    total,
                    message,
                } => {
                    self.events.emit(Event::Progress {
                        node: self.node.clone(),
                        done,
                        total,
                        message,
                    });
                }
            }
            let delay = schedule.next_delay(previous, started.elapsed());
            previous = Some(delay);
            if let Some(slot) = &self.slot {
                slot.give_back();
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.cancel.cancelled() => return Err(ResourceError::interrupted(&self.node)),
            }
            if let Some(slot) = &self.slot
                && !slot.take(&self.cancel).await
            {
                return Err(ResourceError::interrupted(&self.node));
            }
        }
    }

    /// The value pinned under `key` for this node, computing it with `f` the first time.
    /// While applying, a new pin is written to the state before this returns, so a crash
    /// cannot lose it and a resumed run reuses it (a snapshot named `snapshot-{date}` keeps
    /// its first date). Pins last one cycle: once a run completes, the next re-resolves.
    /// A pin is part of the node's effective fingerprint, so a new value re-applies it.
    pub async fn pin(
        &self,
        key: &str,
        f: impl FnOnce() -> serde_json::Value + Send,
    ) -> Result<serde_json::Value, ResourceError> {
        let key = format!("{}:{key}", self.node);
        self.pins.pin(&self.node, &key, Box::new(f)).await
    }
}

/// The fingerprint a node is recorded with: its desired settings, the values it pinned and
/// the upstream values it was given. A node recorded done whose effective fingerprint
/// differs is re-applied rather than reported as drift: a restore whose snapshot is new
/// (a weekly refresh) must run again even though its own settings did not change.
pub fn effective_fingerprint(
    desired: &str,
    pinned: &BTreeMap<String, serde_json::Value>,
    node: &NodeId,
    inputs: &Inputs,
) -> String {
    let pins: BTreeMap<&String, &serde_json::Value> =
        crate::state::StateDoc::pins_of(pinned, node).collect();
    let upstream: BTreeMap<String, BTreeMap<&String, String>> = inputs
        .iter()
        .map(|(id, up)| {
            let values = match up {
                Upstream::Known(outputs) => outputs
                    .iter()
                    .map(|(k, v)| (k, serde_json::to_string(v).expect("field values serialize")))
                    .collect(),
                Upstream::KnownAfterApply => BTreeMap::new(),
            };
            (id.to_string(), values)
        })
        .collect();
    let unknown: Vec<String> = inputs
        .iter()
        .filter(|(_, up)| matches!(up, Upstream::KnownAfterApply))
        .map(|(id, _)| id.to_string())
        .collect();
    snapferry_plan::fingerprint(&serde_json::json!({
        "desired": desired,
        "pins": pins,
        "upstream": upstream,
        "unknown": unknown,
    }))
}
