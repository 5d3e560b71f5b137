//! Progress events from the planner and executor to whoever renders them (the CLI's spinners
//! or JSON lines). The engine never prints.

use std::sync::Mutex;
use std::time::Duration;

use snapferry_plan::NodeId;

use crate::error::ResourceError;
use crate::staleness::Moved;

/// One thing that happened to a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Started {
        node: NodeId,
    },
    Progress {
        node: NodeId,
        done: u64,
        total: u64,
        message: String,
    },
    Finished {
        node: NodeId,
    },
    Failed {
        node: NodeId,
        error: ResourceError,
    },
    Retrying {
        node: NodeId,
        attempt: u32,
        delay: Duration,
        error: ResourceError,
    },
    /// Already done and still true: nothing to do.
    Skipped {
        node: NodeId,
    },
    /// Stopped at a safe point because of Ctrl-C or another node's failure.
    Interrupted {
        node: NodeId,
    },
    /// Its change moved since the proposal was made; nothing was done to it.
    Stale {
        node: NodeId,
        moved: Vec<Moved>,
    },
}

impl Event {
    pub fn node(&self) -> &NodeId {
        match self {
            Event::Started { node }
            | Event::Progress { node, .. }
            | Event::Finished { node }
            | Event::Failed { node, .. }
            | Event::Retrying { node, .. }
            | Event::Skipped { node }
            | Event::Interrupted { node }
            | Event::Stale { node, .. } => node,
        }
    }
}

/// Receives events. Called from many tasks at once, so it must be cheap and never block.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

/// Drops every event.
#[derive(Debug, Default)]
pub struct NullSink;

impl EventSink for NullSink {
    fn emit(&self, _event: Event) {}
}

/// Keeps every event, for tests and for summaries.
#[derive(Debug, Default)]
pub struct CollectingSink {
    events: Mutex<Vec<Event>>,
}

impl CollectingSink {
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().expect("event sink poisoned").clone()
    }
}

impl EventSink for CollectingSink {
    fn emit(&self, event: Event) {
        self.events.lock().expect("event sink poisoned").push(event);
    }
}
