//! The first phase of planning: read every node's live state into one serializable value,
//! [`LiveState`]. Reads run in dependency order with bounded concurrency, because a read may
//! use what is known before apply: pinned values, the state's recorded outputs and the
//! upstream nodes' *observed* outputs (the target domain's endpoint if it exists). A read never
//! depends on a diff: what will change is decided afterwards, purely, by
//! `propose` (`proposal.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};
use snapferry_plan::NodeId;
use tokio_util::sync::CancellationToken;

use crate::engine_error::EngineError;
use crate::events::{EventSink, NullSink};
use crate::graph::ExecGraph;
use crate::pins::MemoryPins;
use crate::poll::PollSchedule;
use crate::resource::{Context, Inputs, Observed, Upstream};
use crate::retry::RetryPolicy;
use crate::state::{Outputs, StateDoc};

/// Everything planning read: per node what `read` observed, and the values pinned while
/// reading (names resolved from templates). Recorded as JSON, it is the input of the golden
/// planner tests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveState {
    pub nodes: BTreeMap<NodeId, Observed>,
    #[serde(default)]
    pub pinned: BTreeMap<String, serde_json::Value>,
}

/// How planning reads.
#[derive(Clone)]
pub struct PlanOptions {
    pub plan_fingerprint: String,
    /// Reads in flight at once.
    pub parallelism: usize,
    pub retry: RetryPolicy,
    pub events: Arc<dyn EventSink>,
    pub cancel: CancellationToken,
}

impl PlanOptions {
    pub fn new(plan_fingerprint: &str) -> Self {
        PlanOptions {
            plan_fingerprint: plan_fingerprint.to_owned(),
            parallelism: 10,
            retry: RetryPolicy::default(),
            events: Arc::new(NullSink),
            cancel: CancellationToken::new(),
        }
    }
}

/// What a node's read (or diff, for an upstream that will not change) is given of `dep`: the
/// outputs the state recorded, overlaid with the ones its read just observed.
pub(crate) fn known_outputs(
    state: Option<&StateDoc>,
    dep: &NodeId,
    observed: &Observed,
) -> Outputs {
    let mut outputs = state
        .and_then(|s| s.nodes.get(dep))
        .map(|n| n.outputs.clone())
        .unwrap_or_default();
    outputs.extend(observed.outputs.clone());
    outputs
}

/// Reads every node of `graph`. Never mutates anything (pins are kept in memory).
pub async fn read_live(
    graph: &ExecGraph,
    state: Option<&StateDoc>,
    options: &PlanOptions,
) -> Result<LiveState, EngineError> {
    // A finished run means the next apply starts a new cycle with fresh pins; plan alike.
    let pins = Arc::new(MemoryPins::new(
        state.map(|s| s.pinned.clone()).unwrap_or_default(),
        state.is_some_and(|s| s.is_complete(graph.topological().iter())),
    ));
    let mut waiting: BTreeMap<&NodeId, usize> = BTreeMap::new();
    let mut ready: Vec<&NodeId> = Vec::new();
    for id in graph.topological() {
        match graph.deps(id).count() {
            0 => ready.push(id),
            n => {
                waiting.insert(id, n);
            }
        }
    }
    ready.reverse();
    let mut nodes: BTreeMap<NodeId, Observed> = BTreeMap::new();
    let mut in_flight = FuturesUnordered::new();
    loop {
        while in_flight.len() < options.parallelism.max(1) {
            let Some(id) = ready.pop() else { break };
            let resource = graph
                .resource(id)
                .expect("graph node has a resource")
                .clone();
            let mut inputs = Inputs::new();
            for dep in graph.deps(id) {
                inputs.insert(
                    dep.clone(),
                    Upstream::Known(known_outputs(state, dep, &nodes[dep])),
                );
            }
            if let Some(recorded) = state.and_then(|s| s.nodes.get(id)) {
                inputs.insert(id.clone(), Upstream::Known(recorded.outputs.clone()));
            }
            let cx = Context::new(
                id.clone(),
                options.cancel.clone(),
                options.retry.clone(),
                PollSchedule::default(),
                options.events.clone(),
                pins.clone(),
            );
            in_flight.push(async move {
                let observed = cx.retry(|| resource.read(&cx, &inputs)).await;
                (id, observed)
            });
        }
        let Some((id, observed)) = in_flight.next().await else {
            break;
        };
        nodes.insert(id.clone(), observed.map_err(EngineError::Read)?);
        for dependent in graph.dependents(id) {
            let left = waiting.get_mut(dependent).expect("dependent waits");
            *left -= 1;
            if *left == 0 {
                waiting.remove(dependent);
                ready.push(dependent);
            }
        }
    }
    Ok(LiveState {
        nodes,
        pinned: pins.values(),
    })
}
