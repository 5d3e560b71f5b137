//! Why a plan, an apply or a destroy could not run at all (as opposed to one node failing,
//! which is reported in the summary). It sits above the state, its stores and the graph, which
//! it wraps; nothing below it depends on it. Ids of what failed live in the variants; causes
//! sit behind `#[source]`.

use snapferry_plan::NodeId;

use crate::error::ResourceError;
use crate::graph::GraphError;
use crate::state::TransitionError;
use crate::store::StoreError;

/// Why a plan or an apply could not run at all (as opposed to a node failing, which is
/// reported in the summary).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("state store error")]
    Store(#[from] StoreError),
    #[error("the graph is invalid")]
    Graph(#[from] GraphError),
    #[error("refused state transition")]
    Transition(#[from] TransitionError),
    #[error(
        "the state at {location} belongs to plan `{found}`, not `{expected}`; point the plan at its own state"
    )]
    WrongPlan {
        location: String,
        expected: String,
        found: String,
    },
    #[error("could not read {}", .0.node)]
    Read(#[source] ResourceError),
    /// `propose` was given a live state without an observation of this node (a recorded live
    /// state that does not belong to this graph).
    #[error("the live state has no observation of {node}; read it again")]
    Unobserved { node: NodeId },
    /// The proposal handed to `apply` was made for another graph or plan.
    #[error("the proposal does not match this plan: {detail}; plan again")]
    ProposalMismatch { detail: String },
    /// Another run wrote the state between a destroy plan being shown and its execution.
    #[error(
        "the state at {location} changed since the plan was shown (another run wrote it); nothing was changed"
    )]
    StateMoved { location: String },
}
