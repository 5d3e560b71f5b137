//! A real crash: this test binary re-executes itself (`std::env::current_exe()`) in child
//! mode, where the executor runs with a file store and a file-persisted fake world and the
//! process calls `std::process::abort()` — no unwinding, no destructors — right after a
//! chosen state write or right after a chosen resource's mutating call. The parent then
//! resumes in-process, taking over the dead run's lock (its process is gone), and checks that
//! the run converges and that no resource was created twice.

use crate::support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use snapferry_engine::store::{Acquired, LockRecord};
use snapferry_engine::{
    ApplyOptions, Executor, FileStore, LockGuard, LockInfo, NodeStatus, Outcome, PollSchedule,
    StateDoc, StateStore, StoreError,
};
use support::{PlanThenApply, World, build};

const DIR: &str = "SNAPFERRY_CRASH_DIR";
const AT_SAVE: &str = "SNAPFERRY_CRASH_AT_SAVE";
const AFTER_APPLY: &str = "SNAPFERRY_CRASH_AFTER_APPLY";

/// role → bucket_policy → repository(source) → snapshot; bucket_policy and domain →
/// repository(target); snapshot, repository(target), domain → restore → verify.
fn edges() -> BTreeSet<(usize, usize)> {
    [
        (1, 0),
        (2, 1),
        (3, 2),
        (5, 1),
        (5, 4),
        (6, 3),
        (6, 5),
        (6, 4),
        (7, 6),
    ]
    .into_iter()
    .collect()
}
const NODES: usize = 8;

/// Delegates to a file store and aborts the process right after save number `abort_at`.
struct AbortingStore {
    inner: FileStore,
    abort_at: u64,
    saves: AtomicU64,
}

#[async_trait]
impl StateStore for AbortingStore {
    fn location(&self) -> String {
        self.inner.location()
    }
    async fn load(&self) -> Result<Option<StateDoc>, StoreError> {
        self.inner.load().await
    }
    async fn save(&self, doc: &StateDoc) -> Result<(), StoreError> {
        self.inner.save(doc).await?;
        if self.saves.fetch_add(1, Ordering::SeqCst) + 1 == self.abort_at {
            std::process::abort();
        }
        Ok(())
    }
    async fn try_lock(&self, info: &LockInfo) -> Result<Acquired, StoreError> {
        self.inner.try_lock(info).await
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

fn options() -> ApplyOptions {
    ApplyOptions {
        poll: PollSchedule {
            first: Duration::from_millis(1),
            cap: Duration::from_millis(3),
            ..PollSchedule::default()
        },
        command: "crash-child".into(),
        ..ApplyOptions::new("prod-copy")
    }
}

/// Child mode only: run by `crash_at_every_point_then_resume_converges`.
#[test]
#[ignore = "run as a child process by the crash tests"]
fn crash_child() {
    let dir = std::env::var(DIR).expect("crash_child runs only as a child of the crash tests");
    let dir = Path::new(&dir);
    let abort_at = std::env::var(AT_SAVE)
        .ok()
        .map_or(u64::MAX, |v| v.parse().unwrap());
    let world = World::persistent(dir.join("world.json"), std::env::var(AFTER_APPLY).ok());
    let graph = Arc::new(build(&world, NODES, &edges(), 3));
    let store = AbortingStore {
        inner: FileStore::new(dir.join("state.json")),
        abort_at,
        saves: AtomicU64::new(0),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let summary = rt
        .block_on(Executor::new(graph, Arc::new(store)).plan_then_apply(&options()))
        .unwrap();
    assert_eq!(summary.outcome, Outcome::Complete);
}

fn run_child(dir: &Path, env: (&str, String)) -> std::process::ExitStatus {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "crash::crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR, dir)
        .env(env.0, env.1)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
}

#[cfg(unix)]
fn aborted(status: std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(6)
}

#[cfg(not(unix))]
fn aborted(status: std::process::ExitStatus) -> bool {
    !status.success()
}

/// Resumes after a crash and checks convergence and at-most-once creation.
async fn resume_and_check(dir: &Path, label: &str) {
    let store = FileStore::new(dir.join("state.json"));
    // The dead run's lock is still there, naming it; the next run takes it over, saying so.
    let holder = store
        .lock_holder()
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{label}: no lock left"));
    assert_eq!(holder.command, "crash-child", "{label}");
    let world = World::persistent(dir.join("world.json"), None);
    let graph = Arc::new(build(&world, NODES, &edges(), 3));
    let executor = Executor::new(graph.clone(), Arc::new(store.clone()));
    let guard = LockGuard::acquire(
        Arc::new(store.clone()),
        LockInfo::for_this_process("resume"),
        Duration::ZERO,
    )
    .await
    .unwrap_or_else(|e| panic!("{label}: the dead run's lock was not taken over: {e}"));
    let takeover = guard.took_over().expect("a takeover").clone();
    assert_eq!(takeover.previous, holder, "{label}");
    assert_eq!(
        takeover.reason,
        format!("process {} has exited", holder.pid),
        "{label}"
    );

    let state = store.load().await.unwrap();
    let proposal = snapferry_engine::plan(
        &graph,
        state.as_ref(),
        &snapferry_engine::PlanOptions::new(support::PLAN_FP),
    )
    .await
    .unwrap();
    let summary = executor
        .apply_locked(guard, &proposal, &options())
        .await
        .unwrap();
    assert_eq!(summary.outcome, Outcome::Complete, "{label}: {summary:?}");
    let data = world.data();
    assert!(
        data.order_violations.is_empty(),
        "{label}: {:?}",
        data.order_violations
    );
    assert_eq!(data.things.len(), NODES, "{label}");
    for (node, calls) in &data.apply_calls {
        assert_eq!(*calls, 1, "{label}: {node} was applied {calls} times");
    }
    let state = store.load().await.unwrap().unwrap();
    for id in graph.topological() {
        assert_eq!(state.status(id), NodeStatus::Done, "{label}: {id}");
    }
    // The name pinned by node 0 survived the crash and is the one the world was given.
    let pinned = state.pinned["fake/n00:snapshot_name"].as_str().unwrap();
    assert_eq!(
        data.things["fake/n00"].name.as_deref(),
        Some(pinned),
        "{label}"
    );
    assert_eq!(store.lock_holder().await.unwrap(), None, "{label}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_every_state_write_then_resume_converges() {
    // A complete run writes: 1 initial checkpoint + 2 per node + 1 pin.
    let writes = 1 + 2 * NODES as u64 + 1;
    for at in 1..=writes {
        let dir = tempfile::tempdir().unwrap();
        let status = run_child(dir.path(), (AT_SAVE, at.to_string()));
        assert!(
            aborted(status),
            "child crashing at write {at} exited with {status:?}"
        );
        let state = FileStore::new(dir.path().join("state.json"))
            .load()
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            state.generation, at,
            "the state on disk is the one written last before the crash"
        );
        resume_and_check(dir.path(), &format!("crash at write {at}")).await;
    }
    // Past the last write the child completes.
    let dir = tempfile::tempdir().unwrap();
    assert!(run_child(dir.path(), (AT_SAVE, (writes + 1).to_string())).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_right_after_each_mutating_call_then_resume_never_repeats_it() {
    for node in 0..NODES {
        let dir = tempfile::tempdir().unwrap();
        let node = format!("fake/n{node:02}");
        let status = run_child(dir.path(), (AFTER_APPLY, node.clone()));
        assert!(
            aborted(status),
            "child crashing after applying {node} exited with {status:?}"
        );
        let state = FileStore::new(dir.path().join("state.json"))
            .load()
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            state.status(&snapferry_engine::NodeId::from(node.as_str())),
            NodeStatus::Applying,
            "the crash fell between the service call and the checkpoint"
        );
        resume_and_check(dir.path(), &format!("crash after applying {node}")).await;
    }
}
