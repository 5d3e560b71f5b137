//! A held lock, for as long as a run writes the state. On a store whose lock is a lease
//! ([`StateStore::lease`]) the guard renews it in the background every third of its length,
//! and treats it as lost the moment it may have expired without a renewal (measured from the
//! *start* of the last successful renewal, so never later than the store's own expiry), or
//! when the store says another run replaced it. A lost lease stops the run: the token from
//! [`LockGuard::cancel_token`] fires, so every step stops at its next safe point, and the store
//! from [`LockGuard::store`] refuses every further state write. Two runs never write the state
//! at once, even when one of them was merely slow.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{LockInfo, LockRecord, StateStore, StoreError, Takeover};
use crate::state::StateDoc;

/// A held lock. Release it with [`LockGuard::release`]; a guard dropped without release (a
/// crash) stops renewing and leaves the lock, which a later run takes over once its holder is
/// seen to be gone (a local lock) or its lease has expired (a remote one).
pub struct LockGuard {
    store: Arc<dyn StateStore>,
    info: LockInfo,
    lease: Arc<Lease>,
    renewer: Option<tokio::task::JoinHandle<()>>,
    took_over: Option<Takeover>,
    released: bool,
}

/// What the guard, its renewer and its fenced store share.
struct Lease {
    location: String,
    /// The version of the lock as last written by this run.
    version: Mutex<String>,
    /// Until when the lock is surely ours; `None` for a lock that is no lease.
    valid_until: Mutex<Option<Instant>>,
    /// Fired when the lease is lost; `reason` says why.
    lost: CancellationToken,
    reason: Mutex<Option<String>>,
    /// Fired by `release` (and on drop): stop renewing and watching.
    stop: CancellationToken,
}

impl Lease {
    fn version(&self) -> String {
        self.version.lock().expect("poisoned").clone()
    }

    fn renewed(&self, version: String, valid_until: Instant) {
        *self.version.lock().expect("poisoned") = version;
        *self.valid_until.lock().expect("poisoned") = Some(valid_until);
    }

    fn valid_until(&self) -> Option<Instant> {
        *self.valid_until.lock().expect("poisoned")
    }

    fn lose(&self, reason: String) {
        let mut slot = self.reason.lock().expect("poisoned");
        if slot.is_none() {
            tracing::error!(location = %self.location, %reason, "lock lost");
            *slot = Some(reason);
        }
        drop(slot);
        self.lost.cancel();
    }

    /// `Err(LeaseLost)` once the lease is lost or may have expired.
    fn check(&self) -> Result<(), StoreError> {
        if self
            .valid_until()
            .is_some_and(|until| Instant::now() >= until)
        {
            self.lose("it expired before it could be renewed".to_owned());
        }
        match &*self.reason.lock().expect("poisoned") {
            Some(reason) => Err(StoreError::LeaseLost {
                location: self.location.clone(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }
}

impl LockGuard {
    /// Takes the lock, polling until `timeout` while someone else holds it (`Duration::ZERO`
    /// fails at once, as `apply` does without `--lock-timeout`). A lock whose holder is gone
    /// is taken over; [`LockGuard::took_over`] says whose it was.
    pub async fn acquire(
        store: Arc<dyn StateStore>,
        info: LockInfo,
        timeout: Duration,
    ) -> Result<LockGuard, StoreError> {
        let deadline = Instant::now() + timeout;
        let mut delay = Duration::from_millis(500);
        loop {
            let started = Instant::now();
            match store.try_lock(&info).await {
                Ok(acquired) => {
                    return Ok(LockGuard::start(
                        store,
                        info,
                        acquired.version,
                        acquired.took_over,
                        started,
                    ));
                }
                Err(StoreError::LockHeld { .. }) if Instant::now() + delay <= deadline => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn start(
        store: Arc<dyn StateStore>,
        info: LockInfo,
        version: String,
        took_over: Option<Takeover>,
        started: Instant,
    ) -> LockGuard {
        let length = store.lease();
        let lease = Arc::new(Lease {
            location: store.location(),
            version: Mutex::new(version),
            valid_until: Mutex::new(length.map(|l| started + l)),
            lost: CancellationToken::new(),
            reason: Mutex::new(None),
            stop: CancellationToken::new(),
        });
        let renewer = length.map(|length| {
            tokio::spawn(keep_renewed(
                store.clone(),
                info.clone(),
                lease.clone(),
                length,
            ))
        });
        LockGuard {
            store,
            info,
            lease,
            renewer,
            took_over,
            released: false,
        }
    }

    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// The dead run's lock this run replaced, if it did: tell the user.
    pub fn took_over(&self) -> Option<&Takeover> {
        self.took_over.as_ref()
    }

    /// The store to write the state through while this lock is held: it refuses every save
    /// once the lease is lost or may have expired.
    pub fn store(&self) -> Arc<dyn StateStore> {
        Arc::new(Fenced {
            inner: self.store.clone(),
            lease: self.lease.clone(),
        })
    }

    /// A token that fires when `parent` does (Ctrl-C) or when the lease is lost, for the run
    /// under this lock: its steps then stop at their next safe point.
    pub fn cancel_token(&self, parent: &CancellationToken) -> CancellationToken {
        let token = CancellationToken::new();
        let (fire, parent, lost, stop) = (
            token.clone(),
            parent.clone(),
            self.lease.lost.clone(),
            self.lease.stop.clone(),
        );
        tokio::spawn(async move {
            tokio::select! {
                () = parent.cancelled() => fire.cancel(),
                () = lost.cancelled() => fire.cancel(),
                () = stop.cancelled() => {}
            }
        });
        token
    }

    /// `Err(LeaseLost)` if the lease was lost (or may have expired) by now.
    pub fn check(&self) -> Result<(), StoreError> {
        self.lease.check()
    }

    /// Stops renewing and removes the lock if it is still this run's. A lost lease is an
    /// error (the run was stopped because of it), whatever the removal did.
    pub async fn release(mut self) -> Result<(), StoreError> {
        self.released = true;
        self.lease.stop.cancel();
        if let Some(renewer) = self.renewer.take() {
            // Not aborted: a renewal in flight must finish so its new version is known.
            let _ = renewer.await;
        }
        let lost = self.lease.check();
        let unlocked = self.store.unlock(&self.info, &self.lease.version()).await;
        lost?;
        unlocked
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.lease.stop.cancel();
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
        if !self.released {
            tracing::warn!(lock = %self.info, "lock guard dropped without release; the lock stays");
        }
    }
}

/// Renews the lease every third of its length until stopped or lost. A failed renewal is
/// retried until the lease would expire; then (or at once, when the store says the lock is
/// another run's now) the lease is lost.
async fn keep_renewed(
    store: Arc<dyn StateStore>,
    info: LockInfo,
    lease: Arc<Lease>,
    length: Duration,
) {
    let every = length / 3;
    let retry = (length / 15).max(Duration::from_millis(100));
    let mut next = Instant::now() + every;
    loop {
        tokio::select! {
            () = lease.stop.cancelled() => return,
            () = lease.lost.cancelled() => return,
            () = tokio::time::sleep_until(next) => {}
        }
        let deadline = lease.valid_until().expect("a lease has a deadline");
        let started = Instant::now();
        let version = lease.version();
        match tokio::time::timeout_at(deadline, store.renew(&info, &version)).await {
            Ok(Ok(version)) => {
                tracing::debug!(location = %lease.location, "lease renewed");
                lease.renewed(version, started + length);
                next = started + every;
            }
            Ok(Err(StoreError::LeaseLost { reason, .. })) => return lease.lose(reason),
            Ok(Err(e)) if Instant::now() + retry < deadline => {
                tracing::warn!(error = %chain(&e), "lease renewal failed; retrying");
                next = Instant::now() + retry;
            }
            Ok(Err(e)) => {
                return lease.lose(format!(
                    "it could not be renewed before it expired: {}",
                    chain(&e)
                ));
            }
            Err(_) => {
                return lease.lose(
                    "it could not be renewed before it expired: the store did not answer in time"
                        .to_owned(),
                );
            }
        }
    }
}

/// An error with its sources, for a message that must say everything on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The state store as seen by a run under a lease: writes only while the lease holds.
struct Fenced {
    inner: Arc<dyn StateStore>,
    lease: Arc<Lease>,
}

#[async_trait]
impl StateStore for Fenced {
    fn location(&self) -> String {
        self.inner.location()
    }

    async fn load(&self) -> Result<Option<StateDoc>, StoreError> {
        self.inner.load().await
    }

    async fn save(&self, doc: &StateDoc) -> Result<(), StoreError> {
        self.lease.check()?;
        self.inner.save(doc).await
    }

    fn lease(&self) -> Option<Duration> {
        self.inner.lease()
    }

    async fn try_lock(&self, info: &LockInfo) -> Result<super::Acquired, StoreError> {
        self.inner.try_lock(info).await
    }

    async fn renew(&self, info: &LockInfo, version: &str) -> Result<String, StoreError> {
        self.inner.renew(info, version).await
    }

    async fn read_lock(&self) -> Result<Option<LockRecord>, StoreError> {
        self.inner.read_lock().await
    }

    async fn unlock(&self, info: &LockInfo, version: &str) -> Result<(), StoreError> {
        self.inner.unlock(info, version).await
    }

    async fn remove_lock(&self, seen: &LockRecord) -> Result<bool, StoreError> {
        self.inner.remove_lock(seen).await
    }
}
