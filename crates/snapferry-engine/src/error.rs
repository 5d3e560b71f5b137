//! What a resource reports when one of its operations fails: `ResourceError`, with the node and
//! whether retrying can help. It is persisted in the state (so it is `Serialize`) and depends on
//! nothing else of the engine, so the state, the events and the retry policy can all use it.
//! Why a whole plan or apply could not run is `EngineError`, in `engine_error.rs`, above this.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use snapferry_plan::NodeId;

/// Whether trying again can help. Decides between retrying with backoff and failing at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "class")]
pub enum ErrorClass {
    /// Throttling, 5xx, timeouts, dropped connections. `retry_after_ms` carries a
    /// service-provided `Retry-After`, which the retry policy honours.
    Transient { retry_after_ms: Option<u64> },
    /// Access denied, validation, conflicts a human must resolve: fail at once.
    Permanent,
    /// The run was cancelled (Ctrl-C) while this operation waited; nothing failed, and the
    /// operation may still be running on the service side.
    Interrupted,
}

/// A failure of one resource operation, with the service's own message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{node}: {message}")]
pub struct ResourceError {
    pub node: NodeId,
    pub class: ErrorClass,
    /// The service's message (never a secret: resources must not put credentials here).
    pub message: String,
}

impl ResourceError {
    /// A failure that a retry may fix.
    pub fn transient(node: &NodeId, message: impl Into<String>) -> Self {
        ResourceError {
            node: node.clone(),
            class: ErrorClass::Transient {
                retry_after_ms: None,
            },
            message: message.into(),
        }
    }

    /// A transient failure where the service said when to come back.
    pub fn transient_after(
        node: &NodeId,
        retry_after: Duration,
        message: impl Into<String>,
    ) -> Self {
        ResourceError {
            node: node.clone(),
            class: ErrorClass::Transient {
                retry_after_ms: Some(u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX)),
            },
            message: message.into(),
        }
    }

    /// A failure no retry will fix.
    pub fn permanent(node: &NodeId, message: impl Into<String>) -> Self {
        ResourceError {
            node: node.clone(),
            class: ErrorClass::Permanent,
            message: message.into(),
        }
    }

    /// The run was cancelled while this operation was in flight or sleeping.
    pub fn interrupted(node: &NodeId) -> Self {
        ResourceError {
            node: node.clone(),
            class: ErrorClass::Interrupted,
            message: "interrupted".to_owned(),
        }
    }

    pub fn is_interrupted(&self) -> bool {
        matches!(self.class, ErrorClass::Interrupted)
    }

    pub fn is_transient(&self) -> bool {
        matches!(self.class, ErrorClass::Transient { .. })
    }

    /// The service's `Retry-After`, if it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.class {
            ErrorClass::Transient { retry_after_ms } => retry_after_ms.map(Duration::from_millis),
            ErrorClass::Permanent | ErrorClass::Interrupted => None,
        }
    }
}
