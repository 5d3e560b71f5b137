//! The state document: where every node of one plan stands, its outputs, and the values
//! pinned on the first run (names resolved from time templates). It is rewritten at every
//! node transition with a new `generation`, and a small state machine
//! (`NodeStatus::transition`) refuses transitions that cannot happen, so a bug cannot
//! quietly record a node as done that never ran, or drop a node from the state that was
//! never destroyed. Apply and destroy both move nodes only through it (via the journal).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use snapferry_plan::NodeId;

use crate::change::FieldValue;
use crate::error::ResourceError;

/// The state format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Outputs of a node by key (ARNs, resolved names, endpoints).
pub type Outputs = BTreeMap<String, FieldValue>;

/// Where one node stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    /// Not started by any run yet.
    Pending,
    /// A run started it and did not record an end: it may be running on the service side.
    Applying,
    Done,
    Failed,
    /// A destroy started on it and did not record an end: the deletion may be under way. It
    /// leaves the state only from here (destroyed, or released to be kept outside snapferry).
    Destroying,
}

/// A transition the state machine refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{node}: cannot go from {from:?} to {to:?}")]
pub struct TransitionError {
    pub node: NodeId,
    pub from: NodeStatus,
    pub to: NodeStatus,
}

impl NodeStatus {
    /// The status after moving to `to`, or an error when that transition is impossible.
    /// `Applying → Applying` is a resume; `Done → Applying` a re-apply after drift or a plan
    /// change; `Done → Done` a refresh of a node found still true; `Destroying → Applying` an
    /// apply after an interrupted destroy; `Destroying → Destroying` a resumed destroy (or one
    /// recording its failure). Nothing that never started can be destroyed.
    pub fn transition(self, node: &NodeId, to: NodeStatus) -> Result<NodeStatus, TransitionError> {
        use NodeStatus::{Applying, Destroying, Done, Failed, Pending};
        match (self, to) {
            (Pending | Applying | Failed | Done | Destroying, Applying)
            | (Applying, Done | Failed)
            | (Done, Done)
            | (Applying | Done | Failed | Destroying, Destroying) => Ok(to),
            _ => Err(TransitionError {
                node: node.clone(),
                from: self,
                to,
            }),
        }
    }
}

/// The record of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeState {
    pub status: NodeStatus,
    /// The resource's `desired_fingerprint` when it was last applied: a different one now
    /// means the plan changed for this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_fingerprint: Option<String>,
    #[serde(default)]
    pub outputs: Outputs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ResourceError>,
    /// How many runs started this node (a resume counts).
    #[serde(default)]
    pub attempts: u32,
}

impl NodeState {
    pub fn pending() -> Self {
        NodeState {
            status: NodeStatus::Pending,
            desired_fingerprint: None,
            outputs: Outputs::new(),
            started_at: None,
            finished_at: None,
            last_error: None,
            attempts: 0,
        }
    }
}

/// The whole state of one plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateDoc {
    pub format_version: u32,
    pub plan_name: String,
    pub plan_fingerprint: String,
    /// The snapferry version that last wrote this document.
    pub tool_version: String,
    /// Incremented at every write: a reader can tell two versions apart.
    pub generation: u64,
    pub updated_at: DateTime<Utc>,
    pub nodes: BTreeMap<NodeId, NodeState>,
    /// Values resolved once and reused by every later run (for example `snapshot-{date}`).
    #[serde(default)]
    pub pinned: BTreeMap<String, serde_json::Value>,
}

impl StateDoc {
    pub fn new(plan_name: &str, plan_fingerprint: &str, tool_version: &str) -> Self {
        StateDoc {
            format_version: FORMAT_VERSION,
            plan_name: plan_name.to_owned(),
            plan_fingerprint: plan_fingerprint.to_owned(),
            tool_version: tool_version.to_owned(),
            generation: 0,
            updated_at: Utc::now(),
            nodes: BTreeMap::new(),
            pinned: BTreeMap::new(),
        }
    }

    /// True when every node of `nodes` is recorded done: the last run finished, so the next
    /// one starts a new cycle (templates such as `snapshot-{date}` are resolved again).
    pub fn is_complete<'a>(&self, mut nodes: impl Iterator<Item = &'a NodeId>) -> bool {
        !self.nodes.is_empty() && nodes.all(|n| self.status(n) == NodeStatus::Done)
    }

    /// The values pinned by `node` (their keys start with `<node>:`).
    pub fn pins_of<'a>(
        pinned: &'a BTreeMap<String, serde_json::Value>,
        node: &NodeId,
    ) -> impl Iterator<Item = (&'a String, &'a serde_json::Value)> {
        let prefix = format!("{node}:");
        pinned.iter().filter(move |(k, _)| k.starts_with(&prefix))
    }

    pub fn status(&self, node: &NodeId) -> NodeStatus {
        self.nodes
            .get(node)
            .map_or(NodeStatus::Pending, |n| n.status)
    }

    /// Moves `node` to `to`, checking the transition and stamping times. Does not save.
    pub fn transition(
        &mut self,
        node: &NodeId,
        to: NodeStatus,
    ) -> Result<&mut NodeState, TransitionError> {
        let entry = self
            .nodes
            .entry(node.clone())
            .or_insert_with(NodeState::pending);
        entry.status = entry.status.transition(node, to)?;
        let now = Utc::now();
        match to {
            NodeStatus::Applying => {
                entry.started_at = Some(now);
                entry.finished_at = None;
                entry.attempts += 1;
            }
            NodeStatus::Destroying => {
                if entry.status != NodeStatus::Destroying || entry.finished_at.is_some() {
                    entry.started_at = Some(now);
                }
                entry.finished_at = None;
            }
            NodeStatus::Done | NodeStatus::Failed => entry.finished_at = Some(now),
            NodeStatus::Pending => {}
        }
        Ok(entry)
    }

    /// Drops a destroyed (or released) node and its pins: only a `destroying` node may leave
    /// the state, so a bug cannot forget something that was never destroyed.
    pub fn forget(&mut self, node: &NodeId) -> Result<(), TransitionError> {
        let status = self.status(node);
        if status != NodeStatus::Destroying {
            return Err(TransitionError {
                node: node.clone(),
                from: status,
                to: NodeStatus::Pending,
            });
        }
        self.nodes.remove(node);
        let prefix = format!("{node}:");
        self.pinned.retain(|k, _| !k.starts_with(&prefix));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NodeStatus::*;

    #[test]
    fn the_state_machine_allows_exactly_the_possible_transitions() {
        let n = NodeId::new("role", "r");
        let all = [Pending, Applying, Done, Failed, Destroying];
        let allowed = [
            (Pending, Applying),
            (Applying, Applying),
            (Failed, Applying),
            (Done, Applying),
            (Destroying, Applying),
            (Applying, Done),
            (Applying, Failed),
            (Done, Done),
            (Applying, Destroying),
            (Done, Destroying),
            (Failed, Destroying),
            (Destroying, Destroying),
        ];
        for from in all {
            for to in all {
                let result = from.transition(&n, to);
                if allowed.contains(&(from, to)) {
                    assert_eq!(result, Ok(to));
                } else {
                    assert_eq!(
                        result.unwrap_err().to_string(),
                        format!("role/r: cannot go from {from:?} to {to:?}")
                    );
                }
            }
        }
    }

    #[test]
    fn transition_stamps_times_and_counts_attempts() {
        let n = NodeId::new("role", "r");
        let mut doc = StateDoc::new("p", "fp", "0.1.0");
        assert!(doc.transition(&n, Done).is_err());
        doc.transition(&n, Applying).unwrap();
        assert!(doc.nodes[&n].started_at.is_some());
        doc.transition(&n, Done).unwrap();
        assert!(doc.nodes[&n].finished_at.is_some());
        assert_eq!(doc.nodes[&n].attempts, 1);
        assert_eq!(doc.status(&n), Done);
        assert_eq!(doc.status(&NodeId::new("role", "other")), Pending);
    }

    #[test]
    fn only_a_destroying_node_leaves_the_state_and_its_pins_go_with_it() {
        let n = NodeId::new("snapshot", "s");
        let mut doc = StateDoc::new("p", "fp", "0.1.0");
        doc.pinned.insert("snapshot/s:name".into(), "s-1".into());
        doc.pinned.insert("snapshot/t:name".into(), "t-1".into());
        doc.transition(&n, Applying).unwrap();
        doc.transition(&n, Done).unwrap();
        assert_eq!(
            doc.forget(&n).unwrap_err().to_string(),
            "snapshot/s: cannot go from Done to Pending"
        );
        doc.transition(&n, Destroying).unwrap();
        doc.forget(&n).unwrap();
        assert!(!doc.nodes.contains_key(&n));
        assert_eq!(doc.pinned.keys().collect::<Vec<_>>(), ["snapshot/t:name"]);
        assert!(
            doc.forget(&n).is_err(),
            "a node not in the state is pending"
        );
    }
}
