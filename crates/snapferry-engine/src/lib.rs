//! snapferry's engine: the generic machinery under `plan`, `apply` and `destroy`. A
//! [`Resource`] reads, diffs, applies and waits. Planning reads every node into one
//! [`LiveState`] ([`live`]) and then computes the [`Proposal`] purely ([`proposal`]); the
//! [`executor`] executes that proposal, checking each node's fresh change against it
//! ([`staleness`]), with bounded concurrency, checkpointing every transition to a
//! [`StateStore`] under a lock so an interrupted or crashed apply resumes. Nothing here knows
//! about AWS.
//!
//! Modules depend one way: `change`, `error` and `poll` at the bottom; `state` and `store`
//! above them; `resource` (with `pins`) and `graph` above those; `live`, `proposal`, `journal`
//! and `engine_error` next; `executor` and `destroy` on top.

pub mod change;
pub mod destroy;
pub mod engine_error;
pub mod error;
pub mod events;
pub mod executor;
pub mod graph;
mod journal;
pub mod live;
mod pins;
pub mod poll;
pub mod proposal;
pub mod rate;
pub mod render;
pub mod resource;
pub mod retry;
pub mod staleness;
pub mod state;
pub mod store;

pub use change::{Change, FieldChange, FieldValue};
pub use destroy::{DestroyAction, DestroyOptions, DestroyStep, DestroySummary};
pub use engine_error::EngineError;
pub use error::{ErrorClass, ResourceError};
pub use events::{CollectingSink, Event, EventSink, NullSink};
pub use executor::{ApplyOptions, ApplySummary, Executor, Outcome};
pub use graph::{ExecGraph, ExecGraphBuilder, GraphError};
pub use live::{LiveState, PlanOptions, read_live};
pub use poll::PollSchedule;
pub use proposal::{Proposal, ProposedNode, Staleness, StateDrift, plan, propose};
pub use rate::RateLimiter;
pub use resource::{
    Context, Inputs, Observed, PollStatus, Progress, Resource, Upstream, effective_fingerprint,
};
pub use retry::RetryPolicy;
pub use snapferry_plan::NodeId;
pub use staleness::{Moved, Verdict};
pub use state::{NodeState, NodeStatus, Outputs, StateDoc};
pub use store::{FileStore, LockGuard, LockInfo, MemoryStore, StateStore, StoreError};
