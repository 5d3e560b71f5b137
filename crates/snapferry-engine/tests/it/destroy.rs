//! Destroy goes through the engine: each node is moved to `destroying` before its resource's
//! `destroy` runs and leaves the state only once it is gone; a failure is recorded on the node
//! and stops the run; released nodes are dropped without a call; a state written by another run
//! since the destroy plan was shown refuses the destroy; an apply after an interrupted destroy
//! picks the node up again.

use std::collections::BTreeSet;
use std::sync::Arc;

use snapferry_engine::{
    ApplyOptions, DestroyAction, DestroyOptions, DestroyStep, EngineError, Executor, Inputs,
    MemoryStore, NodeId, NodeStatus, Outcome, StateStore,
};

use crate::support::{PlanThenApply, World, build};

fn n(i: usize) -> NodeId {
    NodeId::new("fake", &format!("n{i:02}"))
}

fn step(i: usize, action: DestroyAction) -> DestroyStep {
    DestroyStep {
        node: n(i),
        action,
        inputs: Inputs::new(),
    }
}

#[tokio::test(start_paused = true)]
async fn destroy_moves_nodes_through_destroying_and_records_what_failed() {
    let world = World::new();
    let edges: BTreeSet<_> = [(1, 0), (2, 1), (3, 0)].into_iter().collect();
    let graph = Arc::new(build(&world, 4, &edges, 1));
    let store = MemoryStore::new();
    let executor = Executor::new(graph, Arc::new(store.clone()));
    executor
        .plan_then_apply(&ApplyOptions::new("p"))
        .await
        .unwrap();
    world.update(|w| {
        w.fail_destroy.insert(n(1).to_string(), 1);
    });
    let steps = [
        step(3, DestroyAction::Forget),
        step(2, DestroyAction::Destroy),
        step(1, DestroyAction::Destroy),
        step(0, DestroyAction::Release),
    ];

    let generation = store.load().await.unwrap().unwrap().generation;
    let first = executor
        .destroy(&steps, &DestroyOptions::new(generation))
        .await
        .unwrap();
    assert_eq!(first.destroyed, vec![n(2)]);
    let failed = first.failed.unwrap();
    assert_eq!(failed.message, "DeleteConflict: injected");
    let state = store.load().await.unwrap().unwrap();
    assert!(!state.nodes.contains_key(&n(2)), "destroyed: gone");
    assert_eq!(state.status(&n(1)), NodeStatus::Destroying);
    assert_eq!(
        state.nodes[&n(1)].last_error.as_ref().unwrap().message,
        "DeleteConflict: injected"
    );
    assert_eq!(
        state.status(&n(0)),
        NodeStatus::Done,
        "the run stopped first"
    );
    assert_eq!(state.status(&n(3)), NodeStatus::Done);
    assert_eq!(store.lock_holder().await.unwrap(), None);

    // A destroy planned against an older state is refused whole.
    let err = executor
        .destroy(&steps, &DestroyOptions::new(generation))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::StateMoved { .. }), "{err:?}");

    let generation = state.generation;
    let second = executor
        .destroy(&steps[1..], &DestroyOptions::new(generation))
        .await
        .unwrap();
    assert_eq!(second.destroyed, vec![n(1)]);
    assert_eq!(second.kept, vec![n(0)]);
    assert!(second.failed.is_none());
    let state = store.load().await.unwrap().unwrap();
    assert_eq!(
        state.nodes.keys().collect::<Vec<_>>(),
        [&n(3)],
        "released nodes leave the state, forgotten ones too when listed"
    );
    let data = world.data();
    assert!(data.things.contains_key(n(0).as_str()), "released: kept");
    assert!(!data.things.contains_key(n(1).as_str()));
    assert_eq!(data.destroy_calls.get(n(0).as_str()), None);
    assert_eq!(data.destroy_calls[n(1).as_str()], 2);
    assert_eq!(data.destroy_calls.get(n(2).as_str()), Some(&1));
}

#[tokio::test(start_paused = true)]
async fn apply_after_an_interrupted_destroy_makes_the_node_again() {
    let world = World::new();
    let graph = Arc::new(build(&world, 2, &BTreeSet::new(), 1));
    let store = MemoryStore::new();
    let executor = Executor::new(graph, Arc::new(store.clone()));
    executor
        .plan_then_apply(&ApplyOptions::new("p"))
        .await
        .unwrap();
    world.update(|w| {
        w.fail_destroy.insert(n(0).to_string(), 1);
    });
    let generation = store.load().await.unwrap().unwrap().generation;
    executor
        .destroy(
            &[
                step(1, DestroyAction::Destroy),
                step(0, DestroyAction::Destroy),
            ],
            &DestroyOptions::new(generation),
        )
        .await
        .unwrap();
    let summary = executor
        .plan_then_apply(&ApplyOptions::new("p"))
        .await
        .unwrap();
    assert_eq!(summary.outcome, Outcome::Complete);
    let state = store.load().await.unwrap().unwrap();
    assert_eq!(state.status(&n(0)), NodeStatus::Done);
    assert_eq!(state.status(&n(1)), NodeStatus::Done);
    assert_eq!(world.data().apply_calls[n(1).as_str()], 2, "made again");
}
