//! snapferry's engine: the generic machinery under `plan` and `apply`. A [`Resource`] reads,
//! diffs, applies and waits; the [`planner`] reads everything and diffs purely; the
//! [`executor`] walks an [`ExecGraph`] with bounded concurrency, checkpointing every
//! transition to a [`StateStore`] under a lock so an interrupted or crashed apply resumes.
//! Nothing here knows about AWS.

pub mod change;
pub mod error;
pub mod events;
pub mod executor;
pub mod graph;
mod journal;
pub mod planner;
pub mod poll;
pub mod rate;
pub mod resource;
pub mod retry;
pub mod state;
pub mod store;

pub use change::{Change, FieldChange, FieldValue};
pub use error::{EngineError, ErrorClass, ResourceError};
pub use events::{CollectingSink, Event, EventSink, NullSink};
pub use executor::{ApplyOptions, ApplySummary, Executor, Outcome};
pub use graph::{ExecGraph, ExecGraphBuilder, GraphError};
pub use planner::{Plan, PlanOptions, PlannedNode, StateDrift, plan};
pub use poll::PollSchedule;
pub use rate::RateLimiter;
pub use resource::{
    Context, Inputs, Observed, PollStatus, Progress, Resource, Upstream, effective_fingerprint,
};
pub use retry::RetryPolicy;
pub use snapferry_plan::NodeId;
pub use state::{NodeState, NodeStatus, Outputs, StateDoc};
pub use store::{FileStore, LockGuard, LockInfo, MemoryStore, StateStore, StoreError};
