//! An in-memory store for tests and benchmarks: same semantics as the file store, nothing on
//! disk. Clones share the same state, like two processes sharing one S3 object.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{LockInfo, StateStore, StoreError, decode_state, encode_state};
use crate::state::StateDoc;

#[derive(Debug, Default)]
struct Inner {
    doc: Option<Vec<u8>>,
    lock: Option<LockInfo>,
    saves: u64,
}

/// State and lock in memory, stored encoded so that what is persisted is exactly what a
/// file would hold (secrets redacted).
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// How many times `save` was called (the checkpoint count).
    pub fn saves(&self) -> u64 {
        self.inner.lock().expect("poisoned").saves
    }

    /// Replaces the stored bytes, to test corruption handling.
    pub fn put_raw(&self, bytes: Vec<u8>) {
        self.inner.lock().expect("poisoned").doc = Some(bytes);
    }

    /// The stored bytes.
    pub fn raw(&self) -> Option<Vec<u8>> {
        self.inner.lock().expect("poisoned").doc.clone()
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

    async fn try_lock(&self, info: &LockInfo) -> Result<(), StoreError> {
        let mut inner = self.inner.lock().expect("poisoned");
        match &inner.lock {
            Some(holder) => Err(StoreError::LockHeld {
                location: "memory".to_owned(),
                holder: Box::new(holder.clone()),
            }),
            None => {
                inner.lock = Some(info.clone());
                Ok(())
            }
        }
    }

    async fn lock_holder(&self) -> Result<Option<LockInfo>, StoreError> {
        Ok(self.inner.lock().expect("poisoned").lock.clone())
    }

    async fn unlock(&self, info: &LockInfo) -> Result<(), StoreError> {
        let mut inner = self.inner.lock().expect("poisoned");
        match &inner.lock {
            Some(holder) if holder.id == info.id => {
                inner.lock = None;
                Ok(())
            }
            Some(holder) => Err(StoreError::LockNotOurs {
                location: "memory".to_owned(),
                holder: Box::new(holder.clone()),
            }),
            None => Ok(()),
        }
    }

    async fn force_unlock(&self) -> Result<Option<LockInfo>, StoreError> {
        Ok(self.inner.lock().expect("poisoned").lock.take())
    }
}
