//! Apply carries out exactly the proposal that was approved: each node's fresh change is
//! checked against it at the node's turn. A change that moved stops the node as stale and says
//! what moved, field by field, without touching it; moving forward (already done) is fine;
//! drift shown by the plan is brought back by the apply; a proposal survives serialization (a
//! saved plan) and is checked against a fresh plan with the same rules.

use std::collections::BTreeSet;
use std::sync::Arc;

use snapferry_engine::{
    ApplyOptions, Change, CollectingSink, Event, Executor, MemoryStore, NodeId, NodeStatus,
    Outcome, PlanOptions, Proposal, Staleness, StateStore, plan,
};

use crate::support::{PLAN_FP, PlanThenApply, Thing, World, build};

fn chain(world: &Arc<World>) -> Arc<snapferry_engine::ExecGraph> {
    let edges: BTreeSet<_> = [(1, 0)].into_iter().collect();
    Arc::new(build(world, 2, &edges, 1))
}

fn n(i: usize) -> NodeId {
    NodeId::new("fake", &format!("n{i:02}"))
}

#[tokio::test(start_paused = true)]
async fn a_node_whose_change_moved_since_approval_is_stale_and_left_untouched() {
    let world = World::new();
    let graph = chain(&world);
    let store = MemoryStore::new();
    let proposal = plan(&graph, None, &PlanOptions::new(PLAN_FP))
        .await
        .unwrap();
    assert_eq!(proposal.nodes[&n(1)].change.verb(), "create");

    // Between approval and apply, someone makes node 1 by hand, differently.
    world.update(|w| {
        w.things.insert(
            n(1).to_string(),
            Thing {
                desired: "handmade".into(),
                polls_left: 0,
                name: None,
            },
        );
    });
    let sink = Arc::new(CollectingSink::default());
    let options = ApplyOptions {
        events: sink.clone(),
        ..ApplyOptions::new("p")
    };
    let summary = Executor::new(graph, Arc::new(store.clone()))
        .apply(&proposal, &options)
        .await
        .unwrap();
    assert_eq!(summary.outcome, Outcome::Failed);
    assert_eq!(summary.applied, vec![n(0)]);
    assert_eq!(summary.stale.len(), 1);
    let (node, moved) = &summary.stale[0];
    assert_eq!(node, &n(1));
    let moved: Vec<String> = moved.iter().map(ToString::to_string).collect();
    assert_eq!(
        moved,
        [
            "the change was `create` when planned, it is `update` now",
            r#"desired: was (absent) when planned, is "handmade" now"#,
        ]
    );
    assert!(
        !world.data().apply_calls.contains_key(n(1).as_str()),
        "a stale node is not applied"
    );
    assert_eq!(world.data().things[n(1).as_str()].desired, "handmade");
    let state = store.load().await.unwrap().unwrap();
    assert_eq!(
        state.status(&n(1)),
        NodeStatus::Pending,
        "a stale node is not even started"
    );
    assert!(sink.events().iter().any(|e| matches!(
        e,
        Event::Stale { node, .. } if node == &n(1)
    )));

    // Planning again shows the new change, and applying that converges.
    let summary = Executor::new(chain(&world), Arc::new(store.clone()))
        .plan_then_apply(&ApplyOptions::new("p"))
        .await
        .unwrap();
    assert_eq!(summary.outcome, Outcome::Complete);
    assert_eq!(world.data().things[n(1).as_str()].desired, "v1");
}

#[tokio::test(start_paused = true)]
async fn a_change_already_made_by_someone_else_is_moving_forward_not_stale() {
    let world = World::new();
    let graph = chain(&world);
    let store = MemoryStore::new();
    let proposal = plan(&graph, None, &PlanOptions::new(PLAN_FP))
        .await
        .unwrap();
    // Another runner made both nodes exactly as proposed.
    for i in 0..2 {
        world.update(|w| {
            w.things.insert(
                n(i).to_string(),
                Thing {
                    desired: "v1".into(),
                    polls_left: 0,
                    name: None,
                },
            );
        });
    }
    let summary = Executor::new(graph, Arc::new(store.clone()))
        .apply(&proposal, &ApplyOptions::new("p"))
        .await
        .unwrap();
    assert_eq!(summary.outcome, Outcome::Complete, "{summary:?}");
    assert!(summary.stale.is_empty());
    assert!(
        world.data().apply_calls.is_empty(),
        "nothing was made twice"
    );
    let state = store.load().await.unwrap().unwrap();
    assert!(state.is_complete([n(0), n(1)].iter()));
}

#[tokio::test(start_paused = true)]
async fn drift_shown_by_plan_is_brought_back_by_one_apply() {
    let world = World::new();
    let graph = chain(&world);
    let store = MemoryStore::new();
    let executor = Executor::new(graph.clone(), Arc::new(store.clone()));
    executor
        .plan_then_apply(&ApplyOptions::new("p"))
        .await
        .unwrap();
    world.update(|w| w.things.get_mut(n(0).as_str()).unwrap().desired = "edited-by-hand".into());

    let state = store.load().await.unwrap().unwrap();
    let proposal = plan(&graph, Some(&state), &PlanOptions::new(PLAN_FP))
        .await
        .unwrap();
    let Change::Update { fields } = &proposal.nodes[&n(0)].change else {
        panic!("{:?}", proposal.nodes[&n(0)].change)
    };
    assert_eq!(fields[0].path, "desired");
    assert_eq!(
        proposal.state.as_ref().unwrap().drifted,
        vec![n(0)],
        "plan says it changed outside snapferry"
    );
    // Its dependent exists as desired and does not depend on the drifted node's outputs.
    assert_eq!(proposal.nodes[&n(1)].change, Change::NoOp);

    let summary = executor
        .apply(&proposal, &ApplyOptions::new("p"))
        .await
        .unwrap();
    assert_eq!(summary.outcome, Outcome::Complete);
    assert_eq!(summary.applied, vec![n(0)]);
    assert_eq!(world.data().things[n(0).as_str()].desired, "v1");
    let state = store.load().await.unwrap().unwrap();
    let again = plan(&graph, Some(&state), &PlanOptions::new(PLAN_FP))
        .await
        .unwrap();
    assert!(!again.has_changes(), "plan and apply agree: {again:?}");
}

#[tokio::test(start_paused = true)]
async fn a_saved_proposal_is_the_same_value_and_is_checked_by_the_same_rules() {
    let world = World::new();
    let graph = chain(&world);
    let proposal = plan(&graph, None, &PlanOptions::new(PLAN_FP))
        .await
        .unwrap();
    let text = serde_json::to_string(&proposal).unwrap();
    let saved: Proposal = serde_json::from_str(&text).unwrap();
    assert_eq!(saved, proposal);
    assert!(
        !text.contains("hunter2"),
        "secrets never reach a saved plan"
    );

    let fresh = plan(&graph, None, &PlanOptions::new(PLAN_FP))
        .await
        .unwrap();
    assert_eq!(saved.stale_against(&fresh), vec![]);

    world.update(|w| {
        w.things.insert(
            n(0).to_string(),
            Thing {
                desired: "v0".into(),
                polls_left: 0,
                name: None,
            },
        );
    });
    let moved = plan(&graph, None, &PlanOptions::new("edited"))
        .await
        .unwrap();
    let stale: Vec<String> = saved
        .stale_against(&moved)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        stale,
        [
            "the plan file changed since the plan was made",
            "fake/n00: the change was `create` when planned, it is `update` now; desired: was \
             (absent) when planned, is \"v0\" now",
        ]
    );
    assert!(matches!(
        saved.stale_against(&moved)[1],
        Staleness::Node { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn a_proposal_for_another_graph_is_refused_before_anything_runs() {
    let world = World::new();
    let graph = chain(&world);
    let other = Arc::new(build(&world, 3, &BTreeSet::new(), 1));
    let proposal = plan(&other, None, &PlanOptions::new(PLAN_FP))
        .await
        .unwrap();
    let store = MemoryStore::new();
    let err = Executor::new(graph, Arc::new(store.clone()))
        .apply(&proposal, &ApplyOptions::new("p"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the proposal does not match this plan: fake/n02 is not a step of this plan; plan again"
    );
    assert_eq!(store.saves(), 0);
    assert!(world.data().apply_calls.is_empty());
}
