//! A test hook for the crash tests (`tests/e2e/reliability.rs`): with
//! `SNAPFERRY_TEST_ABORT_AFTER_WRITES=N` in the environment, the process aborts
//! (`std::process::abort`, no unwinding, no lock release) right after the N-th successful
//! state save, so the tests can crash `apply` at every checkpoint and prove the next `apply`
//! resumes. Without the variable (or with a value that is not a positive number) the store
//! is returned unwrapped: the hook is inert in normal use.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use snapferry_engine::store::{Acquired, LockRecord};
use snapferry_engine::{LockInfo, StateDoc, StateStore, StoreError};

/// The environment variable that arms the hook.
pub const ABORT_AFTER_WRITES: &str = "SNAPFERRY_TEST_ABORT_AFTER_WRITES";

/// Wraps `store` in the aborting decorator when the variable is set; else returns it as is.
pub fn wrap(store: Arc<dyn StateStore>) -> Arc<dyn StateStore> {
    match std::env::var(ABORT_AFTER_WRITES)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|n| *n > 0)
    {
        Some(after) => Arc::new(AbortAfterWrites {
            inner: store,
            after,
            saved: AtomicU64::new(0),
        }),
        None => store,
    }
}

/// Counts successful saves and aborts the process after the `after`-th.
struct AbortAfterWrites {
    inner: Arc<dyn StateStore>,
    after: u64,
    saved: AtomicU64,
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

// Written out instead of `#[async_trait]` (the shape that macro generates), so the CLI needs
// no extra dependency for a test hook.
impl StateStore for AbortAfterWrites {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn load<'life0, 'async_trait>(
        &'life0 self,
    ) -> BoxFuture<'async_trait, Result<Option<StateDoc>, StoreError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.load()
    }

    fn save<'life0, 'life1, 'async_trait>(
        &'life0 self,
        doc: &'life1 StateDoc,
    ) -> BoxFuture<'async_trait, Result<(), StoreError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            self.inner.save(doc).await?;
            if self.saved.fetch_add(1, Ordering::SeqCst) + 1 == self.after {
                eprintln!(
                    "{ABORT_AFTER_WRITES}: aborting after state write {} (generation {})",
                    self.after, doc.generation
                );
                std::process::abort();
            }
            Ok(())
        })
    }

    fn lease(&self) -> Option<std::time::Duration> {
        self.inner.lease()
    }

    fn try_lock<'life0, 'life1, 'async_trait>(
        &'life0 self,
        info: &'life1 LockInfo,
    ) -> BoxFuture<'async_trait, Result<Acquired, StoreError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.try_lock(info)
    }

    fn renew<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        info: &'life1 LockInfo,
        version: &'life2 str,
    ) -> BoxFuture<'async_trait, Result<String, StoreError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.renew(info, version)
    }

    fn read_lock<'life0, 'async_trait>(
        &'life0 self,
    ) -> BoxFuture<'async_trait, Result<Option<LockRecord>, StoreError>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.read_lock()
    }

    fn unlock<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        info: &'life1 LockInfo,
        version: &'life2 str,
    ) -> BoxFuture<'async_trait, Result<(), StoreError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.unlock(info, version)
    }

    fn remove_lock<'life0, 'life1, 'async_trait>(
        &'life0 self,
        seen: &'life1 LockRecord,
    ) -> BoxFuture<'async_trait, Result<bool, StoreError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.remove_lock(seen)
    }
}
