//! `plan`: proposes, never changes. Reads every node (bounded concurrency, a node after its
//! upstreams so it sees their outputs) then diffs purely. A node whose upstream will change
//! sees that upstream's outputs as `Unknown` ("known after apply"). Compares the plan with
//! the state to say what changed since the last apply and how it will be reconciled.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use snapferry_plan::NodeId;
use tokio_util::sync::CancellationToken;

use crate::change::Change;
use crate::error::EngineError;
use crate::events::{EventSink, NullSink};
use crate::graph::ExecGraph;
use crate::poll::PollSchedule;
use crate::resource::{Context, Inputs, Observed, Pins, PlanningPins, Upstream};
use crate::retry::RetryPolicy;
use crate::state::{NodeStatus, StateDoc};

/// How a plan reads.
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

/// The proposal for one node.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedNode {
    pub kind: &'static str,
    pub change: Change,
    pub observed: Observed,
    /// The status recorded in the state, `None` without a state.
    pub recorded: Option<NodeStatus>,
    /// The effective fingerprint (settings, pins, upstream values) apply would record.
    pub fingerprint: String,
}

/// What changed between the state and the plan, and what apply will do about it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StateDrift {
    pub plan_fingerprint_changed: bool,
    /// Nodes whose desired settings changed since applied, with how apply reconciles them.
    pub changed: Vec<(NodeId, String)>,
    /// In the plan, not in the state.
    pub added: Vec<NodeId>,
    /// In the state, no longer in the plan: left in place.
    pub removed: Vec<NodeId>,
    /// Recorded done, live state differs, plan unchanged: apply reports it and leaves it.
    pub drifted: Vec<NodeId>,
}

/// The result of planning.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Dependencies before dependents.
    pub order: Vec<NodeId>,
    pub nodes: BTreeMap<NodeId, PlannedNode>,
    /// `None` when there is no state yet.
    pub state: Option<StateDrift>,
    /// Values pinned while planning (not persisted: apply pins its own on first use, or
    /// reuses the ones in the state).
    pub pinned: BTreeMap<String, serde_json::Value>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.nodes.values().any(|n| n.change.has_changes())
    }
}

/// Reads live state through every resource and diffs it. Never mutates.
pub async fn plan(
    graph: &ExecGraph,
    state: Option<&StateDoc>,
    options: &PlanOptions,
) -> Result<Plan, EngineError> {
    // A finished run means the next apply starts a new cycle with fresh pins; plan alike.
    let pins = Arc::new(Mutex::new(PlanningPins {
        values: state.map(|s| s.pinned.clone()).unwrap_or_default(),
        new_cycle: state.is_some_and(|s| s.is_complete(graph.topological().iter())),
        settled: BTreeSet::new(),
    }));
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
    let mut nodes: BTreeMap<NodeId, PlannedNode> = BTreeMap::new();
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
                let planned = &nodes[dep];
                let upstream = if planned.change.has_changes() {
                    Upstream::KnownAfterApply
                } else {
                    let mut outputs = state
                        .and_then(|s| s.nodes.get(dep))
                        .map(|n| n.outputs.clone())
                        .unwrap_or_default();
                    outputs.extend(planned.observed.outputs.clone());
                    Upstream::Known(outputs)
                };
                inputs.insert(dep.clone(), upstream);
            }
            let cx = Context::new(
                id.clone(),
                options.cancel.clone(),
                options.retry.clone(),
                PollSchedule::default(),
                options.events.clone(),
                Pins::Planning(pins.clone()),
            );
            in_flight.push(async move {
                let observed = cx.retry(|| resource.read(&cx, &inputs)).await;
                (id, resource, inputs, observed)
            });
        }
        let Some((id, resource, inputs, observed)) = in_flight.next().await else {
            break;
        };
        let observed = observed.map_err(EngineError::Read)?;
        let change = resource.diff(&inputs, &observed);
        nodes.insert(
            id.clone(),
            PlannedNode {
                kind: resource.kind(),
                change,
                observed,
                recorded: state.map(|s| s.status(id)),
                fingerprint: crate::resource::effective_fingerprint(
                    &resource.desired_fingerprint(),
                    &pins.lock().expect("pins poisoned").values,
                    id,
                    &inputs,
                ),
            },
        );
        for dependent in graph.dependents(id) {
            let left = waiting.get_mut(dependent).expect("dependent waits");
            *left -= 1;
            if *left == 0 {
                waiting.remove(dependent);
                ready.push(dependent);
            }
        }
    }
    let drift = state.map(|s| state_drift(graph, s, &nodes, &options.plan_fingerprint));
    let pinned = pins.lock().expect("pins poisoned").values.clone();
    Ok(Plan {
        order: graph.topological().to_vec(),
        nodes,
        state: drift,
        pinned,
    })
}

fn state_drift(
    graph: &ExecGraph,
    state: &StateDoc,
    nodes: &BTreeMap<NodeId, PlannedNode>,
    plan_fingerprint: &str,
) -> StateDrift {
    let mut drift = StateDrift {
        plan_fingerprint_changed: state.plan_fingerprint != plan_fingerprint,
        ..StateDrift::default()
    };
    let in_plan: BTreeSet<&NodeId> = graph.topological().iter().collect();
    for id in graph.topological() {
        let planned = &nodes[id];
        let Some(recorded) = state.nodes.get(id) else {
            drift.added.push(id.clone());
            continue;
        };
        let fingerprint_changed = recorded
            .desired_fingerprint
            .as_deref()
            .is_some_and(|f| f != planned.fingerprint);
        if fingerprint_changed {
            let how = match &planned.change {
                Change::NoOp => "settings or upstream values changed, but live state already matches; apply records them".to_owned(),
                Change::InProgress { what } => format!("settings or upstream values changed; apply waits for the running operation ({what}) and then checks again"),
                Change::Blocked { reason } => format!("settings or upstream values changed, but apply cannot proceed: {reason}"),
                other => format!("settings or upstream values changed; apply will {} it", other.verb()),
            };
            drift.changed.push((id.clone(), how));
        } else if recorded.status == NodeStatus::Done && planned.change.has_changes() {
            drift.drifted.push(id.clone());
        }
    }
    drift.removed = state
        .nodes
        .keys()
        .filter(|id| !in_plan.contains(id))
        .cloned()
        .collect();
    drift
}
