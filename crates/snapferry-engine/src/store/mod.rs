//! Where the state document and its lock live. The trait is object-store shaped (whole
//! document load/save, a lock created only if absent) so the S3 backend in snapferry-aws can
//! implement it with `PutObject` + `If-None-Match: *`. File and in-memory backends live here.

mod file;
mod memory;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use file::FileStore;
pub use memory::MemoryStore;

use crate::state::StateDoc;

/// Who holds a lock: shown to whoever is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Random, unique per acquisition: only the holder's id unlocks without force.
    pub id: String,
    pub user: String,
    pub host: String,
    pub pid: u32,
    pub created_at: DateTime<Utc>,
    /// The command line that took the lock, e.g. `snapferry apply plan.yaml`.
    pub command: String,
}

impl LockInfo {
    /// Describes this process.
    pub fn for_this_process(command: &str) -> Self {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown-host".to_owned());
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "unknown-user".to_owned());
        LockInfo {
            id: format!("{:032x}", rand::random::<u128>()),
            user,
            host,
            pid: std::process::id(),
            created_at: Utc::now(),
            command: command.to_owned(),
        }
    }
}

impl std::fmt::Display for LockInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}@{} (pid {}) since {} running `{}`",
            self.user,
            self.host,
            self.pid,
            self.created_at.to_rfc3339(),
            self.command
        )
    }
}

/// Failures of a state store. `location` names the file or object.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the state at {location} is locked by {holder}; wait for it to finish, or if that run is gone, run `snapferry unlock`"
    )]
    LockHeld {
        location: String,
        holder: Box<LockInfo>,
    },
    #[error("the lock at {location} is held by {holder}, not by this run; it was left in place")]
    LockNotOurs {
        location: String,
        holder: Box<LockInfo>,
    },
    #[error(
        "the state at {location} is corrupted ({detail}); it was left untouched: restore it from a backup or version history, or move it aside to start over"
    )]
    Corrupt { location: String, detail: String },
    #[error(
        "the state at {location} has format version {found}, this snapferry reads version {supported}; use a matching snapferry release"
    )]
    UnsupportedVersion {
        location: String,
        found: u32,
        supported: u32,
    },
    #[error("could not {action} {location}")]
    Io {
        location: String,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the state store at {location} failed: {message}")]
    Backend { location: String, message: String },
}

/// Storage for one plan's state and its lock.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// A human-readable location (a path or `s3://bucket/key`) used in messages.
    fn location(&self) -> String;
    /// The stored document, `None` if there is none yet. Never repairs a broken one.
    async fn load(&self) -> Result<Option<StateDoc>, StoreError>;
    /// Replaces the document atomically: a reader sees the old or the new one, never a mix.
    async fn save(&self, doc: &StateDoc) -> Result<(), StoreError>;
    /// Creates the lock if no lock exists, else `LockHeld` naming the holder.
    async fn try_lock(&self, info: &LockInfo) -> Result<(), StoreError>;
    /// The current holder, if any.
    async fn lock_holder(&self) -> Result<Option<LockInfo>, StoreError>;
    /// Removes the lock if `info` holds it; else `LockNotOurs`.
    async fn unlock(&self, info: &LockInfo) -> Result<(), StoreError>;
    /// Removes any lock (for `snapferry unlock` after confirmation); returns who held it.
    async fn force_unlock(&self) -> Result<Option<LockInfo>, StoreError>;
}

/// A held lock. Release it with [`LockGuard::release`]; a guard dropped without release
/// (a crash) leaves the lock for `snapferry unlock`, which is the safe default.
pub struct LockGuard {
    store: Arc<dyn StateStore>,
    info: LockInfo,
    released: bool,
}

impl LockGuard {
    /// Takes the lock, polling until `timeout` while someone else holds it (`Duration::ZERO`
    /// fails at once, as `apply` does without `--lock-timeout`).
    pub async fn acquire(
        store: Arc<dyn StateStore>,
        info: LockInfo,
        timeout: Duration,
    ) -> Result<LockGuard, StoreError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut delay = Duration::from_millis(500);
        loop {
            match store.try_lock(&info).await {
                Ok(()) => {
                    return Ok(LockGuard {
                        store,
                        info,
                        released: false,
                    });
                }
                Err(StoreError::LockHeld { .. })
                    if tokio::time::Instant::now() + delay <= deadline =>
                {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// Removes the lock.
    pub async fn release(mut self) -> Result<(), StoreError> {
        self.released = true;
        self.store.unlock(&self.info).await
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if !self.released {
            tracing::warn!(lock = %self.info, "lock guard dropped without release; the lock stays");
        }
    }
}

/// Parses a stored document, refusing unknown versions and broken JSON with a message that
/// names `location`. Shared by every backend so they all refuse the same way.
pub fn decode_state(location: &str, bytes: &[u8]) -> Result<StateDoc, StoreError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
            location: location.to_owned(),
            detail: format!("not valid JSON at line {} column {}", e.line(), e.column()),
        })?;
    let version = value
        .get("format_version")
        .and_then(serde_json::Value::as_u64);
    match version {
        Some(v) if v == u64::from(crate::state::FORMAT_VERSION) => {}
        Some(v) => {
            return Err(StoreError::UnsupportedVersion {
                location: location.to_owned(),
                found: u32::try_from(v).unwrap_or(u32::MAX),
                supported: crate::state::FORMAT_VERSION,
            });
        }
        None => {
            return Err(StoreError::Corrupt {
                location: location.to_owned(),
                detail: "no format_version field".to_owned(),
            });
        }
    }
    serde_json::from_value(value).map_err(|e| StoreError::Corrupt {
        location: location.to_owned(),
        detail: e.to_string(),
    })
}

/// Serializes a document for storage (pretty, so a human can read it in an incident).
pub fn encode_state(doc: &StateDoc) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(doc).expect("state serializes");
    bytes.push(b'\n');
    bytes
}
