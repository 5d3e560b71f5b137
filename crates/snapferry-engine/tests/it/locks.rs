//! The lock as a lease (what the S3 store does), on a paused clock with the in-memory store:
//! a long apply keeps renewing it and nobody else gets it meanwhile; a lease whose holder
//! stopped renewing is taken over once it expires, naming that holder; a run that cannot renew
//! stops at its next safe point without another state write; a run whose lease another run
//! took stops and leaves that run's lock alone.

use crate::support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use snapferry_engine::{
    ApplyOptions, EngineError, Executor, LockGuard, LockInfo, MemoryStore, NodeId, NodeStatus,
    Outcome, StateStore, StoreError,
};
use support::{PlanThenApply, World, build};

const LEASE: Duration = Duration::from_secs(30);

/// Two independent nodes whose waits take many minutes of (paused) time.
fn long_graph(world: &Arc<World>) -> Arc<snapferry_engine::ExecGraph> {
    Arc::new(build(world, 2, &BTreeSet::new(), 40))
}

async fn wait_until_waiting(world: &World) {
    while world.data().in_flight == 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn refused(result: Result<LockGuard, StoreError>) -> StoreError {
    match result {
        Ok(guard) => panic!("the lock was given to {}", guard.info()),
        Err(e) => e,
    }
}

#[tokio::test(start_paused = true)]
async fn a_long_apply_keeps_its_lease_and_nobody_else_gets_it() {
    let world = World::new();
    let store = MemoryStore::new().with_lease(LEASE);
    let executor = Executor::new(long_graph(&world), Arc::new(store.clone()));
    let options = ApplyOptions {
        command: "snapferry apply long.yaml".into(),
        ..ApplyOptions::new("p")
    };
    let run = tokio::spawn(async move { executor.plan_then_apply(&options).await });
    wait_until_waiting(&world).await;
    // Four lease lengths later the first run still holds it.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_secs(20)).await;
        let err = refused(
            LockGuard::acquire(
                Arc::new(store.clone()),
                LockInfo::for_this_process("second"),
                Duration::ZERO,
            )
            .await,
        );
        match &err {
            StoreError::LockHeld { holder, .. } => {
                assert_eq!(holder.command, "snapferry apply long.yaml");
                assert_eq!(holder.lease_seconds, Some(30));
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("; its lease runs until "), "{err}");
    }
    let summary = run.await.unwrap().unwrap();
    assert_eq!(summary.outcome, Outcome::Complete);
    assert!(store.renewals() >= 10, "{} renewals", store.renewals());
    assert_eq!(store.lock_holder().await.unwrap(), None, "released");
}

#[tokio::test(start_paused = true)]
async fn an_expired_lease_is_taken_over_naming_its_holder() {
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new().with_lease(LEASE));
    let crashed = LockGuard::acquire(
        store.clone(),
        LockInfo::for_this_process("snapferry apply crashed.yaml"),
        Duration::ZERO,
    )
    .await
    .unwrap();
    let crashed_info = store.lock_holder().await.unwrap().unwrap();
    // A crash: the guard is gone without a release, nothing renews the lease any more.
    drop(crashed);
    tokio::time::sleep(Duration::from_secs(20)).await;
    let err = refused(
        LockGuard::acquire(
            store.clone(),
            LockInfo::for_this_process("early"),
            Duration::ZERO,
        )
        .await,
    );
    assert!(matches!(err, StoreError::LockHeld { .. }), "{err}");

    // With a lock timeout the next run waits for the expiry and takes the lease over.
    let guard = LockGuard::acquire(
        store.clone(),
        LockInfo::for_this_process("snapferry apply next.yaml"),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let takeover = guard.took_over().expect("taken over");
    assert_eq!(takeover.previous, crashed_info);
    assert_eq!(
        takeover.to_string(),
        format!(
            "the state at memory was locked by {crashed_info}; its lease expired, so this run \
             took the lock over"
        )
    );
    guard.release().await.unwrap();
    assert_eq!(store.lock_holder().await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn a_run_that_cannot_renew_stops_before_its_next_state_write_and_resumes_later() {
    let world = World::new();
    let store = MemoryStore::new().with_lease(LEASE);
    let graph = long_graph(&world);
    let executor = Executor::new(graph.clone(), Arc::new(store.clone()));
    let run = tokio::spawn(async move { executor.plan_then_apply(&ApplyOptions::new("p")).await });
    wait_until_waiting(&world).await;
    let generation = store.load().await.unwrap().unwrap().generation;
    store.fail_renewals(true);

    let err = run.await.unwrap().unwrap_err();
    assert_eq!(
        err_chain(&err),
        "state store error: this run lost the lock on the state at memory (it could not be \
         renewed before it expired: the state store at memory failed: renewal refused \
         (MemoryStore::fail_renewals)); it stopped at a safe point so that two runs never write \
         the state at once. Run `snapferry apply` again to resume"
    );
    // Stopped inside the waits with no further write: an unfenced run would have written its
    // interrupted checkpoint here.
    let state = store.load().await.unwrap().unwrap();
    assert_eq!(state.generation, generation);
    for i in 0..2 {
        let id = NodeId::new("fake", &format!("n{i:02}"));
        assert_eq!(state.status(&id), NodeStatus::Applying, "{id}");
    }

    // No other run had taken it, so the stopped run still removed its own lock.
    assert_eq!(store.lock_holder().await.unwrap(), None);

    store.fail_renewals(false);
    let summary = Executor::new(graph, Arc::new(store.clone()))
        .plan_then_apply(&ApplyOptions::new("p"))
        .await
        .unwrap();
    assert_eq!(summary.outcome, Outcome::Complete);
    for (node, calls) in world.data().apply_calls {
        assert_eq!(calls, 1, "{node} applied again instead of waited for");
    }
}

#[tokio::test(start_paused = true)]
async fn a_run_whose_lease_was_taken_stops_and_leaves_the_new_holders_lock() {
    let world = World::new();
    let store = MemoryStore::new().with_lease(LEASE);
    let executor = Executor::new(long_graph(&world), Arc::new(store.clone()));
    let run = tokio::spawn(async move { executor.plan_then_apply(&ApplyOptions::new("p")).await });
    wait_until_waiting(&world).await;
    // Someone runs `snapferry unlock --force` and another apply takes the lock.
    let seen = store.read_lock().await.unwrap().unwrap();
    assert!(store.remove_lock(&seen).await.unwrap());
    let intruder = LockInfo::for_this_process("snapferry apply other.yaml");
    store.try_lock(&intruder).await.unwrap();

    let err = run.await.unwrap().unwrap_err();
    let intruder_now = store.lock_holder().await.unwrap().unwrap();
    assert_eq!(intruder_now.id, intruder.id, "the new holder's lock stays");
    match &err {
        EngineError::Store(StoreError::LeaseLost { reason, .. }) => {
            assert_eq!(reason, &format!("another run took it over: {intruder_now}"));
        }
        other => panic!("{other:?}"),
    }
}

fn err_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
