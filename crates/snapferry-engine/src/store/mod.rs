//! Where the state document and its lock live. The trait is object-store shaped (whole
//! document load/save, a lock created only if absent, replaced or removed only if unchanged)
//! so the S3 backend in snapferry-aws can implement it with conditional writes (`PutObject`
//! with `If-None-Match: *` or `If-Match: <ETag>`, `DeleteObject` with `If-Match`). File and
//! in-memory backends live here.
//!
//! A crash must never need `snapferry unlock`. A local lock records enough about its holder
//! ([`process`]) that a later run on the same machine sees the holder is gone and takes the
//! lock over, saying whose it was. A remote lock cannot see processes, so it is a *lease*
//! ([`StateStore::lease`]): it records when it expires, the running apply renews it in the
//! background ([`LockGuard`]), and a later run takes it over once it has expired. Every
//! takeover and every removal is conditional on the lock being the one that was looked at, so
//! of two runs that both see a dead lock only one gets it, and `unlock` never removes a lock
//! another run took in between.

mod file;
mod guard;
mod memory;
pub mod process;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use file::FileStore;
pub use guard::LockGuard;
pub use memory::MemoryStore;

use crate::state::StateDoc;

/// How far two machines' clocks may disagree before a lease could be taken over while its
/// holder still trusts it: an expired lease is taken over only this long after its
/// `expires_at`. NTP keeps clocks within milliseconds of each other; this is the margin.
pub const CLOCK_TOLERANCE: Duration = Duration::from_secs(5);

/// Who holds a lock: shown to whoever is refused, and what a later run checks to tell a dead
/// holder from a live one.
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
    /// The kernel's boot id: a pid means this process only on the same machine in the same
    /// boot. Absent where there is no `/proc` (and in locks of older snapferry versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// The holder's pid namespace (`pid:[…]`), so a container's pid is not looked up outside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_namespace: Option<String>,
    /// The holder's start time in clock ticks since boot, so a reused pid is not mistaken
    /// for the holder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<u64>,
    /// For a lease: until when it holds unless renewed (the holder's clock). A lock without
    /// it never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// For a lease: its length, renewed every third of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_seconds: Option<u64>,
}

impl LockInfo {
    /// Describes this process.
    pub fn for_this_process(command: &str) -> Self {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown-host".to_owned());
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "unknown-user".to_owned());
        let me = process::this_process();
        LockInfo {
            id: format!("{:032x}", rand::random::<u128>()),
            user,
            host,
            pid: std::process::id(),
            created_at: Utc::now(),
            command: command.to_owned(),
            boot_id: me.boot_id.clone(),
            pid_namespace: me.pid_namespace.clone(),
            start_time: me.start_time,
            expires_at: None,
            lease_seconds: None,
        }
    }

    /// This holder with a lease of `length` starting now (what a lease store writes).
    pub fn leased_for(&self, length: Duration) -> LockInfo {
        LockInfo {
            expires_at: Some(
                Utc::now() + chrono::Duration::from_std(length).unwrap_or(chrono::Duration::MAX),
            ),
            lease_seconds: Some(length.as_secs()),
            ..self.clone()
        }
    }

    /// Whether this lease expired (with [`CLOCK_TOLERANCE`]) by `now`; a lock without an
    /// expiry never does.
    pub fn lease_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| {
            at + chrono::Duration::from_std(CLOCK_TOLERANCE).expect("small duration") < now
        })
    }

    /// A lock whose body cannot be read (a crash between create and write, or written by
    /// something else): still a lock, held by nobody we can name, never taken over.
    pub fn unreadable(what: &str) -> LockInfo {
        LockInfo {
            id: String::new(),
            user: "unknown".to_owned(),
            host: "unknown".to_owned(),
            pid: 0,
            created_at: DateTime::UNIX_EPOCH,
            command: format!("(unreadable {what})"),
            boot_id: None,
            pid_namespace: None,
            start_time: None,
            expires_at: None,
            lease_seconds: None,
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

/// A lock as it is stored right now: its holder and a version that changes with every write
/// (the S3 object's ETag, the lock file's content), for conditional replacement and removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRecord {
    pub info: LockInfo,
    pub version: String,
}

/// A lock this run now holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquired {
    /// The version written, to renew or release exactly this lock.
    pub version: String,
    /// Set when the lock of a run that is gone was replaced.
    pub took_over: Option<Takeover>,
}

/// The lock of a run that is gone, replaced by this run: said to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Takeover {
    pub location: String,
    pub previous: LockInfo,
    /// How we know it is gone: "process 4242 has exited", "its lease expired at …".
    pub reason: String,
}

impl std::fmt::Display for Takeover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the state at {} was locked by {}; {}, so this run took the lock over",
            self.location, self.previous, self.reason
        )
    }
}

/// Why a held lock is not taken over, with the way out: the tail of [`StoreError::LockHeld`].
pub fn held_by_live_process() -> String {
    "; that process is still running on this machine: wait for it to finish \
     (`--lock-timeout SECONDS` waits for it)"
        .to_owned()
}

/// The tail of [`StoreError::LockHeld`] for a holder whose life cannot be seen from here.
pub fn held_unknown(why: &str) -> String {
    format!(
        "; {why}, so snapferry cannot tell whether that run is still going: wait for it to \
         finish (`--lock-timeout SECONDS` waits for it), or if that run is gone, run \
         `snapferry unlock`"
    )
}

/// The tail of [`StoreError::LockHeld`] for a lease that has not expired.
pub fn held_by_lease(expires_at: DateTime<Utc>) -> String {
    format!(
        "; its lease runs until {} unless that run renews it: wait for it to finish \
         (`--lock-timeout SECONDS` waits; the lease of a run that is gone is taken over once it \
         expires)",
        expires_at.to_rfc3339()
    )
}

/// Failures of a state store. `location` names the file or object.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the state at {location} is locked by {holder}{detail}")]
    LockHeld {
        location: String,
        holder: Box<LockInfo>,
        /// Why it is not taken over and what to do: see [`held_unknown`] and its siblings.
        detail: String,
    },
    #[error("the lock at {location} is held by {holder}, not by this run; it was left in place")]
    LockNotOurs {
        location: String,
        holder: Box<LockInfo>,
    },
    #[error(
        "the lock on the state at {location} changed since it was shown ({now}); nothing was removed: run `snapferry unlock` again to see who holds it now"
    )]
    LockChanged { location: String, now: String },
    #[error(
        "this run lost the lock on the state at {location} ({reason}); it stopped at a safe point so that two runs never write the state at once. Run `snapferry apply` again to resume"
    )]
    LeaseLost { location: String, reason: String },
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
    /// The lease length when the lock is a lease the holder must renew (a remote store);
    /// `None` when it lasts as long as its process (a local file).
    fn lease(&self) -> Option<Duration> {
        None
    }
    /// Takes the lock: creates it if absent, or replaces the lock of a holder that is provably
    /// gone (conditionally, so only one of two runs doing so wins); else `LockHeld` naming the
    /// holder and why it is not taken over.
    async fn try_lock(&self, info: &LockInfo) -> Result<Acquired, StoreError>;
    /// Extends the lease held at `version`, returning the new version; `LeaseLost` when the
    /// lock is no longer that one. Stores without a lease keep it as it is.
    async fn renew(&self, _info: &LockInfo, version: &str) -> Result<String, StoreError> {
        Ok(version.to_owned())
    }
    /// The lock as stored now, if any.
    async fn read_lock(&self) -> Result<Option<LockRecord>, StoreError>;
    /// The current holder, if any.
    async fn lock_holder(&self) -> Result<Option<LockInfo>, StoreError> {
        Ok(self.read_lock().await?.map(|r| r.info))
    }
    /// Releases this holder's lock (last written at `version`); `LockNotOurs` if another
    /// run holds it now, and nothing is removed then.
    async fn unlock(&self, info: &LockInfo, version: &str) -> Result<(), StoreError>;
    /// Removes exactly the lock `seen` (for `snapferry unlock` after it showed it); `Ok(false)`
    /// when it was already gone, `LockChanged` when another write replaced it meanwhile.
    async fn remove_lock(&self, seen: &LockRecord) -> Result<bool, StoreError>;
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
