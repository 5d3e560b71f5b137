//! The second phase of planning, pure and synchronous: from the desired graph, the collected
//! [`LiveState`] and the prior state document, [`propose`] computes the [`Proposal`] — per node
//! the change, in dependency order, where a dependent of a node that will change sees that
//! node's outputs as `Unknown` ("known after apply"). No network: a recorded live state planned
//! again gives the same proposal, which is how the planner is tested (golden files).
//!
//! The proposal is what the user approves and what `apply` executes (`Executor::apply` takes
//! it); it is serializable, so a saved plan is the proposal itself. It also says what changed
//! since the last apply (plan and per-node fingerprints against the state).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use snapferry_plan::NodeId;

use crate::change::Change;
use crate::engine_error::EngineError;
use crate::graph::ExecGraph;
use crate::live::{LiveState, PlanOptions, known_outputs, read_live};
use crate::resource::{Inputs, Observed, Upstream, effective_fingerprint};
use crate::staleness::{Moved, Verdict, compare};
use crate::state::{NodeStatus, StateDoc};

/// The proposal for one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposedNode {
    pub kind: String,
    pub change: Change,
    /// The status recorded in the state, `None` without a state.
    pub recorded: Option<NodeStatus>,
    /// The effective fingerprint (settings, pins, upstream values) apply would record.
    pub fingerprint: String,
    /// Its live state moves on its own: a fresh read is not compared field by field.
    #[serde(default)]
    pub volatile: bool,
}

/// What changed between the state and the plan, and what apply will do about it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StateDrift {
    pub plan_fingerprint_changed: bool,
    /// Nodes whose desired settings changed since applied, with how apply reconciles them.
    pub changed: Vec<(NodeId, String)>,
    /// In the plan, not in the state.
    pub added: Vec<NodeId>,
    /// In the state, no longer in the plan: left in place.
    pub removed: Vec<NodeId>,
    /// Recorded done, live state differs, plan unchanged: changed outside snapferry; apply
    /// brings it back to the plan.
    pub drifted: Vec<NodeId>,
}

/// The result of planning: what apply will do, node by node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// The fingerprint of the plan file it was made from.
    pub plan_fingerprint: String,
    /// Dependencies before dependents.
    pub order: Vec<NodeId>,
    pub nodes: BTreeMap<NodeId, ProposedNode>,
    /// `None` when there is no state yet.
    pub state: Option<StateDrift>,
    /// What it was computed from, pinned values included (apply uses the same pins).
    pub live: LiveState,
}

/// Why an approved proposal no longer describes what apply would do.
#[derive(Debug, Clone, PartialEq)]
pub enum Staleness {
    /// The plan file's fingerprint differs.
    PlanChanged,
    /// A node of the proposal is not in the plan any more.
    Removed(NodeId),
    /// A node of the plan was not in the proposal.
    Added(NodeId),
    /// A node's change moved.
    Node { node: NodeId, moved: Vec<Moved> },
}

impl std::fmt::Display for Staleness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Staleness::PlanChanged => f.write_str("the plan file changed since the plan was made"),
            Staleness::Removed(id) => write!(f, "{id} is no longer in the plan"),
            Staleness::Added(id) => write!(f, "{id} is new in the plan"),
            Staleness::Node { node, moved } => {
                let moved: Vec<String> = moved.iter().map(ToString::to_string).collect();
                write!(f, "{node}: {}", moved.join("; "))
            }
        }
    }
}

impl Proposal {
    pub fn has_changes(&self) -> bool {
        self.nodes.values().any(|n| n.change.has_changes())
    }

    /// What `read` observed for `node`.
    pub fn observed(&self, node: &NodeId) -> Option<&Observed> {
        self.live.nodes.get(node)
    }

    /// What moved between this (approved) proposal and a `fresh` one made now: empty when
    /// this one may still be applied. Uses the same per-node comparison apply makes at each
    /// node's turn ([`crate::staleness::compare`]), so moving forward is not staleness.
    pub fn stale_against(&self, fresh: &Proposal) -> Vec<Staleness> {
        let mut moved = Vec::new();
        if self.plan_fingerprint != fresh.plan_fingerprint {
            moved.push(Staleness::PlanChanged);
        }
        for id in &self.order {
            let Some(then) = self.nodes.get(id) else {
                continue;
            };
            match fresh.nodes.get(id) {
                None => moved.push(Staleness::Removed(id.clone())),
                Some(now) => {
                    if let Verdict::Stale(what) = compare(&then.change, &now.change, now.volatile) {
                        moved.push(Staleness::Node {
                            node: id.clone(),
                            moved: what,
                        });
                    }
                }
            }
        }
        for id in &fresh.order {
            if !self.nodes.contains_key(id) {
                moved.push(Staleness::Added(id.clone()));
            }
        }
        moved
    }
}

/// Computes the proposal from the desired graph, the live state and the prior state. Pure
/// and synchronous: the same arguments give the same proposal.
pub fn propose(
    graph: &ExecGraph,
    live: &LiveState,
    state: Option<&StateDoc>,
    plan_fingerprint: &str,
) -> Result<Proposal, EngineError> {
    let mut nodes: BTreeMap<NodeId, ProposedNode> = BTreeMap::new();
    // Nodes that see an upstream as known after apply: whether their settings or upstream
    // values changed since the last apply cannot be told yet.
    let mut waiting_on_upstream: BTreeSet<NodeId> = BTreeSet::new();
    for id in graph.topological() {
        let resource = graph.resource(id).expect("graph node has a resource");
        let observed = live
            .nodes
            .get(id)
            .ok_or_else(|| EngineError::Unobserved { node: id.clone() })?;
        let mut inputs = Inputs::new();
        for dep in graph.deps(id) {
            let upstream = if nodes[dep].change.has_changes() {
                Upstream::KnownAfterApply
            } else {
                Upstream::Known(known_outputs(state, dep, &live.nodes[dep]))
            };
            inputs.insert(dep.clone(), upstream);
        }
        if !inputs.all_known() {
            waiting_on_upstream.insert(id.clone());
        }
        let change = resource.diff(&inputs, observed);
        nodes.insert(
            id.clone(),
            ProposedNode {
                kind: resource.kind().to_owned(),
                change,
                recorded: state.map(|s| s.status(id)),
                fingerprint: effective_fingerprint(
                    &resource.desired_fingerprint(),
                    &live.pinned,
                    id,
                    &inputs,
                ),
                volatile: resource.volatile(),
            },
        );
    }
    let drift =
        state.map(|s| state_drift(graph, s, &nodes, &waiting_on_upstream, plan_fingerprint));
    Ok(Proposal {
        plan_fingerprint: plan_fingerprint.to_owned(),
        order: graph.topological().to_vec(),
        nodes,
        state: drift,
        live: live.clone(),
    })
}

/// Reads every node, then proposes: the two phases of `snapferry plan`. Never mutates.
pub async fn plan(
    graph: &ExecGraph,
    state: Option<&StateDoc>,
    options: &PlanOptions,
) -> Result<Proposal, EngineError> {
    let live = read_live(graph, state, options).await?;
    propose(graph, &live, state, &options.plan_fingerprint)
}

fn state_drift(
    graph: &ExecGraph,
    state: &StateDoc,
    nodes: &BTreeMap<NodeId, ProposedNode>,
    waiting_on_upstream: &BTreeSet<NodeId>,
    plan_fingerprint: &str,
) -> StateDrift {
    let mut drift = StateDrift {
        plan_fingerprint_changed: state.plan_fingerprint != plan_fingerprint,
        ..StateDrift::default()
    };
    // Steps `--target` left out are still in the plan: not "removed".
    let in_plan: BTreeSet<&NodeId> = graph
        .topological()
        .iter()
        .chain(graph.untargeted())
        .collect();
    for id in graph.topological() {
        let planned = &nodes[id];
        let Some(recorded) = state.nodes.get(id) else {
            drift.added.push(id.clone());
            continue;
        };
        if waiting_on_upstream.contains(id) {
            continue;
        }
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
