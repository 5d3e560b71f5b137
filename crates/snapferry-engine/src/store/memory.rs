//! An in-memory store for tests and benchmarks: same semantics as the file store, nothing on
//! disk. Clones share the same state, like two processes sharing one S3 object. With
//! [`MemoryStore::with_lease`] its lock is a lease like the S3 store's, timed on tokio's clock
//! so tests of renewal and expiry run on a paused clock; [`MemoryStore::fail_renewals`] makes
//! renewals fail, as an unreachable S3 would.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{
    Acquired, LockInfo, LockRecord, StateStore, StoreError, Takeover, decode_state, encode_state,
    held_by_lease, held_unknown,
};
use crate::state::StateDoc;

#[derive(Debug, Default)]
struct Inner {
    doc: Option<Vec<u8>>,
    lock: Option<Held>,
    saves: u64,
    versions: u64,
    renewals: u64,
    fail_renewals: bool,
}

#[derive(Debug, Clone)]
struct Held {
    info: LockInfo,
    version: String,
    /// For a lease: when it expires unless renewed.
    expires: Option<Instant>,
}

/// State and lock in memory, stored encoded so that what is persisted is exactly what a
/// file would hold (secrets redacted).
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    lease: Option<Duration>,
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// The same store whose lock is a lease of `length` (shares the state with `self`).
    pub fn with_lease(&self, length: Duration) -> Self {
        MemoryStore {
            inner: self.inner.clone(),
            lease: Some(length),
        }
    }

    /// How many times `save` was called (the checkpoint count).
    pub fn saves(&self) -> u64 {
        self.inner.lock().expect("poisoned").saves
    }

    /// How many renewals succeeded.
    pub fn renewals(&self) -> u64 {
        self.inner.lock().expect("poisoned").renewals
    }

    /// Makes every renewal fail (or succeed again), like an S3 that cannot be reached.
    pub fn fail_renewals(&self, fail: bool) {
        self.inner.lock().expect("poisoned").fail_renewals = fail;
    }

    /// Replaces the stored bytes, to test corruption handling.
    pub fn put_raw(&self, bytes: Vec<u8>) {
        self.inner.lock().expect("poisoned").doc = Some(bytes);
    }

    /// The stored bytes.
    pub fn raw(&self) -> Option<Vec<u8>> {
        self.inner.lock().expect("poisoned").doc.clone()
    }

    fn next_version(inner: &mut Inner) -> String {
        inner.versions += 1;
        format!("v{}", inner.versions)
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    fn location(&self) -> String {
        "memory".to_owned()
    }

    async fn load(&self) -> Result<Option<StateDoc>, StoreError> {
        let bytes = self.inner.lock().expect("poisoned").doc.clone();
        bytes.map(|b| decode_state("memory", &b)).transpose()
    }

    async fn save(&self, doc: &StateDoc) -> Result<(), StoreError> {
        let bytes = encode_state(doc);
        let mut inner = self.inner.lock().expect("poisoned");
        inner.doc = Some(bytes);
        inner.saves += 1;
        Ok(())
    }

    fn lease(&self) -> Option<Duration> {
        self.lease
    }

    async fn try_lock(&self, info: &LockInfo) -> Result<Acquired, StoreError> {
        let mut inner = self.inner.lock().expect("poisoned");
        let now = Instant::now();
        let took_over = match &inner.lock {
            None => None,
            Some(held) if held.expires.is_some_and(|at| at <= now) => Some(Takeover {
                location: "memory".to_owned(),
                previous: held.info.clone(),
                reason: "its lease expired".to_owned(),
            }),
            Some(held) => {
                let detail = match held.info.expires_at {
                    Some(at) if held.expires.is_some() => held_by_lease(at),
                    _ => held_unknown("an in-memory lock cannot see its holder"),
                };
                return Err(StoreError::LockHeld {
                    location: "memory".to_owned(),
                    holder: Box::new(held.info.clone()),
                    detail,
                });
            }
        };
        let version = MemoryStore::next_version(&mut inner);
        inner.lock = Some(Held {
            info: match self.lease {
                Some(length) => info.leased_for(length),
                None => info.clone(),
            },
            version: version.clone(),
            expires: self.lease.map(|l| now + l),
        });
        Ok(Acquired { version, took_over })
    }

    async fn renew(&self, info: &LockInfo, version: &str) -> Result<String, StoreError> {
        let Some(length) = self.lease else {
            return Ok(version.to_owned());
        };
        let mut inner = self.inner.lock().expect("poisoned");
        if inner.fail_renewals {
            return Err(StoreError::Backend {
                location: "memory".to_owned(),
                message: "renewal refused (MemoryStore::fail_renewals)".to_owned(),
            });
        }
        match &inner.lock {
            Some(held) if held.version == version => {}
            Some(held) => {
                return Err(StoreError::LeaseLost {
                    location: "memory".to_owned(),
                    reason: format!("another run took it over: {}", held.info),
                });
            }
            None => {
                return Err(StoreError::LeaseLost {
                    location: "memory".to_owned(),
                    reason: "it was removed".to_owned(),
                });
            }
        }
        let new = MemoryStore::next_version(&mut inner);
        inner.renewals += 1;
        inner.lock = Some(Held {
            info: info.leased_for(length),
            version: new.clone(),
            expires: Some(Instant::now() + length),
        });
        Ok(new)
    }

    async fn read_lock(&self) -> Result<Option<LockRecord>, StoreError> {
        Ok(self
            .inner
            .lock()
            .expect("poisoned")
            .lock
            .as_ref()
            .map(|h| LockRecord {
                info: h.info.clone(),
                version: h.version.clone(),
            }))
    }

    async fn unlock(&self, info: &LockInfo, _version: &str) -> Result<(), StoreError> {
        let mut inner = self.inner.lock().expect("poisoned");
        match &inner.lock {
            Some(held) if held.info.id == info.id => {
                inner.lock = None;
                Ok(())
            }
            Some(held) => Err(StoreError::LockNotOurs {
                location: "memory".to_owned(),
                holder: Box::new(held.info.clone()),
            }),
            None => Ok(()),
        }
    }

    async fn remove_lock(&self, seen: &LockRecord) -> Result<bool, StoreError> {
        let mut inner = self.inner.lock().expect("poisoned");
        match &inner.lock {
            Some(held) if held.version == seen.version => {
                inner.lock = None;
                Ok(true)
            }
            Some(held) => Err(StoreError::LockChanged {
                location: "memory".to_owned(),
                now: format!("now held by {}", held.info),
            }),
            None => Ok(false),
        }
    }
}
