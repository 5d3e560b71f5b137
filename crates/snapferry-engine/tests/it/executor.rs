//! The executor and planner against fake resources: random DAGs with random failures
//! converge after a resumed apply; independent branches overlap within `parallelism`;
//! cancellation interrupts and resumes without repeating work; two runs on one state
//! cannot both hold the lock.

use crate::support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use snapferry_engine::{
    ApplyOptions, Change, CollectingSink, EngineError, Event, ExecGraph, Executor, GraphError,
    MemoryStore, NodeId, NodeStatus, Outcome, PlanOptions, PollSchedule, RetryPolicy, StateStore,
    StoreError, plan,
};
use support::{Fake, PlanThenApply, World, build};

fn fast_options() -> ApplyOptions {
    ApplyOptions {
        retry: RetryPolicy {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(5),
            ..RetryPolicy::default()
        },
        poll: PollSchedule {
            first: Duration::from_millis(1),
            cap: Duration::from_millis(4),
            ..PollSchedule::default()
        },
        ..ApplyOptions::new("prod-copy")
    }
}

fn dag() -> impl Strategy<Value = (usize, BTreeSet<(usize, usize)>, BTreeSet<usize>)> {
    (1usize..14).prop_flat_map(|n| {
        let edges = proptest::collection::btree_set((0..n, 0..n), 0..(n * 2)).prop_map(|pairs| {
            pairs
                .into_iter()
                .filter(|(a, b)| a > b)
                .collect::<BTreeSet<_>>()
        });
        let failing = proptest::collection::btree_set(0..n, 0..=n.min(3));
        (Just(n), edges, failing)
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random DAG, random permanent failures on first apply: the first run fails exactly
    /// there and never runs a dependent of a failed node; the second run converges; every
    /// resource is applied once, plus once per injected failure; dependencies always come
    /// first; no secret reaches the stored state.
    #[test]
    fn random_dags_converge_after_resume((n, edges, failing) in dag()) {
        runtime().block_on(async {
            let world = World::new();
            world.update(|w| for f in &failing {
                w.fail_apply.insert(format!("fake/n{f:02}"), 1);
                w.flaky_read.insert(format!("fake/n{f:02}"), 1);
            });
            let graph = Arc::new(build(&world, n, &edges, 2));
            let store = MemoryStore::new();
            let executor = Executor::new(graph.clone(), Arc::new(store.clone()));

            let first = executor.plan_then_apply(&fast_options()).await.unwrap();
            let failed: BTreeSet<NodeId> = first.failed.iter().map(|e| e.node.clone()).collect();
            if failing.is_empty() {
                prop_assert_eq!(first.outcome, Outcome::Complete);
            } else {
                prop_assert_eq!(first.outcome, Outcome::Failed);
                prop_assert!(!failed.is_empty());
                for e in &first.failed {
                    prop_assert_eq!(&e.message, "AccessDenied: injected");
                }
            }
            for f in &failed {
                for d in graph.downstream(f) {
                    prop_assert!(!first.applied.contains(&d), "{d} ran after its upstream {f} failed");
                }
            }
            let state = store.load().await.unwrap().unwrap();
            for f in &failed {
                prop_assert_eq!(state.status(f), NodeStatus::Failed);
            }

            // Each later run consumes at least one injected failure, so at most one run per
            // failing node is needed; a node is applied in exactly one run.
            let mut applied_once: BTreeSet<NodeId> = first.applied.iter().cloned().collect();
            let mut last = first;
            let mut runs = 1;
            while last.outcome != Outcome::Complete {
                prop_assert!(runs <= failing.len(), "no convergence after {runs} runs: {last:?}");
                let done_before: BTreeSet<NodeId> = {
                    let s = store.load().await.unwrap().unwrap();
                    graph.topological().iter().filter(|id| s.status(id) == NodeStatus::Done).cloned().collect()
                };
                last = executor.plan_then_apply(&fast_options()).await.unwrap();
                runs += 1;
                let unchanged: BTreeSet<NodeId> = last.unchanged.iter().cloned().collect();
                prop_assert_eq!(unchanged, done_before);
                for id in &last.applied {
                    prop_assert!(applied_once.insert(id.clone()), "{id} applied in two runs");
                }
            }
            let data = world.data();
            prop_assert!(data.order_violations.is_empty(), "{:?}", data.order_violations);
            prop_assert_eq!(data.things.len(), n);
            for (node, calls) in &data.apply_calls {
                let allowed = 1 + data.failures_injected.get(node).copied().unwrap_or(0);
                prop_assert!(*calls <= allowed, "{node} applied {calls} times");
            }
            let state = store.load().await.unwrap().unwrap();
            for id in graph.topological() {
                prop_assert_eq!(state.status(id), NodeStatus::Done);
                let expected = support::arn(id);
                prop_assert_eq!(state.nodes[id].outputs["arn"].as_str(), Some(expected.as_str()));
            }
            let raw = String::from_utf8(store.raw().unwrap()).unwrap();
            prop_assert!(!raw.contains("hunter2"));
            // A third run changes nothing.
            let third = executor.plan_then_apply(&fast_options()).await.unwrap();
            prop_assert_eq!(third.outcome, Outcome::Complete);
            prop_assert_eq!(third.unchanged.len(), n);
            prop_assert_eq!(world.data().apply_calls, data.apply_calls);
            Ok(())
        })?;
    }
}

#[tokio::test(start_paused = true)]
async fn independent_branches_overlap_within_parallelism() {
    let world = World::new();
    // Twelve independent nodes, each waiting a long time.
    let graph = Arc::new(build(&world, 12, &BTreeSet::new(), 30));
    let executor = Executor::new(graph, Arc::new(MemoryStore::new()));
    let options = ApplyOptions {
        parallelism: 4,
        ..ApplyOptions::new("p")
    };
    let started = tokio::time::Instant::now();
    let summary = executor.plan_then_apply(&options).await.unwrap();
    let all = started.elapsed();
    assert_eq!(summary.outcome, Outcome::Complete);
    // At most four steps work at once...
    assert!(
        world.data().max_polling <= 4,
        "{}",
        world.data().max_polling
    );
    assert!(world.data().max_polling >= 2, "the steps did overlap");
    // ...but a step sleeping between polls gives its share back, so all twelve waits overlap
    // and the run takes about as long as one wait, not three in a row.
    assert_eq!(world.data().max_in_flight, 12);
    let one = World::new();
    let single = Executor::new(
        Arc::new(build(&one, 1, &BTreeSet::new(), 30)),
        Arc::new(MemoryStore::new()),
    );
    let started = tokio::time::Instant::now();
    single.plan_then_apply(&options).await.unwrap();
    let alone = started.elapsed();
    assert!(
        all <= alone.mul_f64(1.2),
        "twelve waits took {all:?}, one took {alone:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_chain_runs_one_at_a_time_in_order() {
    let world = World::new();
    let edges: BTreeSet<_> = (1..6).map(|i| (i, i - 1)).collect();
    let graph = Arc::new(build(&world, 6, &edges, 3));
    let sink = Arc::new(CollectingSink::default());
    let options = ApplyOptions {
        events: sink.clone(),
        ..ApplyOptions::new("p")
    };
    let summary = Executor::new(graph, Arc::new(MemoryStore::new()))
        .plan_then_apply(&options)
        .await
        .unwrap();
    assert_eq!(summary.applied.len(), 6);
    assert_eq!(world.data().max_in_flight, 1);
    let started: Vec<String> = sink
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Started { node } => Some(node.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        started,
        (0..6).map(|i| format!("fake/n{i:02}")).collect::<Vec<_>>()
    );
}

#[tokio::test(start_paused = true)]
async fn cancellation_interrupts_and_resume_waits_instead_of_reapplying() {
    let world = World::new();
    let edges: BTreeSet<_> = [(1, 0), (2, 1)].into_iter().collect();
    let graph = Arc::new(build(&world, 3, &edges, 1000));
    let store = MemoryStore::new();
    let executor = Executor::new(graph.clone(), Arc::new(store.clone()));
    let options = ApplyOptions::new("p");
    let cancel = options.cancel.clone();
    let w = world.clone();
    tokio::spawn(async move {
        // Cancel once node 0 has been applied and is being waited for.
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if w.data().in_flight > 0 {
                cancel.cancel();
                return;
            }
        }
    });
    let summary = executor.plan_then_apply(&options).await.unwrap();
    assert_eq!(summary.outcome, Outcome::Interrupted);
    let n0 = NodeId::new("fake", "n00");
    assert_eq!(summary.interrupted, vec![n0.clone()]);
    assert_eq!(summary.not_started.len(), 2);
    let state = store.load().await.unwrap().unwrap();
    assert_eq!(state.status(&n0), NodeStatus::Applying);
    assert_eq!(
        store.lock_holder().await.unwrap(),
        None,
        "the lock is released"
    );

    let summary = executor
        .plan_then_apply(&ApplyOptions::new("p"))
        .await
        .unwrap();
    assert_eq!(summary.outcome, Outcome::Complete);
    assert_eq!(
        world.data().apply_calls[n0.as_str()],
        1,
        "resumed by waiting, not applying again"
    );
    assert_eq!(store.load().await.unwrap().unwrap().nodes[&n0].attempts, 2);
}

#[tokio::test(start_paused = true)]
async fn transient_read_errors_are_retried_and_reported() {
    let world = World::new();
    let graph = Arc::new(build(&world, 1, &BTreeSet::new(), 1));
    let proposal = plan(&graph, None, &PlanOptions::new("fp")).await.unwrap();
    // The read at the node's turn (after planning) meets two 503s.
    world.update(|w| {
        w.flaky_read.insert("fake/n00".into(), 2);
    });
    let sink = Arc::new(CollectingSink::default());
    let options = ApplyOptions {
        events: sink.clone(),
        ..ApplyOptions::new("p")
    };
    let summary = Executor::new(graph, Arc::new(MemoryStore::new()))
        .apply(&proposal, &options)
        .await
        .unwrap();
    assert_eq!(summary.outcome, Outcome::Complete);
    let retries = sink
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Retrying { .. }))
        .count();
    assert_eq!(retries, 2);
}

#[tokio::test(start_paused = true)]
async fn two_executors_on_one_state_one_wins_the_other_names_the_holder() {
    let world = World::new();
    let graph = Arc::new(build(&world, 2, &BTreeSet::new(), 100));
    let store = MemoryStore::new();
    let first = Executor::new(graph.clone(), Arc::new(store.clone()));
    let second = Executor::new(graph, Arc::new(store.clone()));
    let first_options = ApplyOptions {
        command: "snapferry apply first.yaml".into(),
        ..ApplyOptions::new("p")
    };
    let running = tokio::spawn(async move { first.plan_then_apply(&first_options).await });
    while store.lock_holder().await.unwrap().is_none() {
        tokio::task::yield_now().await;
    }
    let err = second
        .plan_then_apply(&ApplyOptions::new("p"))
        .await
        .unwrap_err();
    match &err {
        EngineError::Store(StoreError::LockHeld { holder, .. }) => {
            assert_eq!(holder.command, "snapferry apply first.yaml");
            assert_eq!(holder.pid, std::process::id());
        }
        other => panic!("expected LockHeld, got {other:?}"),
    }
    let summary = running.await.unwrap().unwrap();
    assert_eq!(summary.outcome, Outcome::Complete);
    assert_eq!(world.data().apply_calls.values().sum::<u32>(), 2);
}

#[tokio::test(start_paused = true)]
async fn state_of_another_plan_is_refused() {
    let world = World::new();
    let graph = Arc::new(build(&world, 1, &BTreeSet::new(), 1));
    let store = MemoryStore::new();
    let executor = Executor::new(graph, Arc::new(store.clone()));
    executor
        .plan_then_apply(&ApplyOptions::new("a"))
        .await
        .unwrap();
    let err = executor
        .plan_then_apply(&ApplyOptions::new("b"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the state at memory belongs to plan `a`, not `b`; point the plan at its own state"
    );
    assert_eq!(store.lock_holder().await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn corrupted_state_stops_the_run_and_is_kept() {
    let world = World::new();
    let graph = Arc::new(build(&world, 1, &BTreeSet::new(), 1));
    let store = MemoryStore::new();
    store.put_raw(b"not json".to_vec());
    let err = Executor::new(graph, Arc::new(store.clone()))
        .plan_then_apply(&ApplyOptions::new("p"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Store(StoreError::Corrupt { .. })),
        "{err:?}"
    );
    assert_eq!(store.raw().unwrap(), b"not json");
    assert!(world.data().apply_calls.is_empty());
}

#[test]
fn the_builder_rejects_cycles_unknown_ids_and_duplicates() {
    let world = World::new();
    let fake = |name: &str| {
        Arc::new(Fake {
            id: NodeId::new("fake", name),
            deps: vec![],
            desired: "v1".into(),
            wait_polls: 0,
            pin_key: None,
            world: world.clone(),
        })
    };
    let (a, b) = (NodeId::new("fake", "a"), NodeId::new("fake", "b"));
    let mut builder = ExecGraph::builder();
    builder
        .add(fake("a"))
        .add(fake("b"))
        .depend(&a, &b)
        .depend(&b, &a);
    assert!(matches!(builder.build(), Err(GraphError::Cycle { .. })));

    let mut builder = ExecGraph::builder();
    builder.add(fake("a")).depend(&a, &b);
    assert_eq!(
        builder.build().err().unwrap().to_string(),
        "fake/a depends on fake/b, which is not in the graph"
    );

    let mut builder = ExecGraph::builder();
    builder.add(fake("a")).add(fake("a"));
    assert_eq!(
        builder.build().err().unwrap(),
        GraphError::Duplicate { node: a }
    );
}

#[tokio::test(start_paused = true)]
async fn plan_marks_dependents_of_changes_known_after_apply_and_reports_plan_changes() {
    let world = World::new();
    let edges: BTreeSet<_> = [(1, 0)].into_iter().collect();
    let graph = build(&world, 2, &edges, 1);
    let (n0, n1) = (NodeId::new("fake", "n00"), NodeId::new("fake", "n01"));

    let proposal = plan(&graph, None, &PlanOptions::new("fp")).await.unwrap();
    assert!(proposal.has_changes());
    let Change::Create { fields } = &proposal.nodes[&n1].change else {
        panic!("{:?}", proposal.nodes[&n1].change)
    };
    assert_eq!(fields[1].after.to_string(), "(known after apply)");
    assert!(
        world.data().apply_calls.is_empty(),
        "planning never mutates"
    );

    let store = MemoryStore::new();
    let graph = Arc::new(graph);
    Executor::new(graph.clone(), Arc::new(store.clone()))
        .plan_then_apply(&ApplyOptions::new("p"))
        .await
        .unwrap();
    let state = store.load().await.unwrap().unwrap();
    let proposal = plan(&graph, Some(&state), &PlanOptions::new("fp"))
        .await
        .unwrap();
    assert!(!proposal.has_changes());
    assert_eq!(proposal.state.as_ref().unwrap().changed, vec![]);

    // The plan changes node 1's desired settings.
    let changed = ExecGraph::builder()
        .add(Arc::new(Fake {
            id: n0.clone(),
            deps: vec![],
            desired: "v1".into(),
            wait_polls: 1,
            pin_key: None,
            world: world.clone(),
        }))
        .add(Arc::new(Fake {
            id: n1.clone(),
            deps: vec![n0.clone()],
            desired: "v2".into(),
            wait_polls: 1,
            pin_key: None,
            world: world.clone(),
        }))
        .depend(&n1, &n0)
        .build()
        .unwrap();
    let proposal = plan(&changed, Some(&state), &PlanOptions::new("fp2"))
        .await
        .unwrap();
    let drift = proposal.state.clone().unwrap();
    assert!(drift.plan_fingerprint_changed);
    assert_eq!(
        drift.changed,
        vec![(
            n1.clone(),
            "settings or upstream values changed; apply will update it".to_owned()
        )]
    );
    let Change::Update { fields } = &proposal.nodes[&n1].change else {
        panic!()
    };
    assert_eq!(fields[0].before.as_ref().unwrap().to_string(), "\"v1\"");
    assert_eq!(fields[0].after.to_string(), "\"v2\"");
    assert_eq!(proposal.nodes[&n0].change, Change::NoOp);

    // Apply carries out that proposal: only node 1 is applied again.
    let summary = Executor::new(Arc::new(changed), Arc::new(store.clone()))
        .apply(&proposal, &ApplyOptions::new("p"))
        .await
        .unwrap();
    assert_eq!(summary.applied, vec![n1.clone()]);
    assert_eq!(summary.unchanged, vec![n0]);
    assert_eq!(world.data().apply_calls[n1.as_str()], 2);
}

#[tokio::test(start_paused = true)]
async fn every_transition_is_checkpointed_with_a_new_generation() {
    let world = World::new();
    let graph = Arc::new(build(&world, 3, &BTreeSet::new(), 1));
    let store = MemoryStore::new();
    let summary = Executor::new(graph, Arc::new(store.clone()))
        .plan_then_apply(&ApplyOptions::new("p"))
        .await
        .unwrap();
    // One initial write, applying + done per node, one pin (node 0).
    assert_eq!(store.saves(), 1 + 3 * 2 + 1);
    assert_eq!(summary.generation, store.saves());
    let state = store.load().await.unwrap().unwrap();
    assert_eq!(state.generation, store.saves());
    assert!(
        state.pinned["fake/n00:snapshot_name"]
            .as_str()
            .unwrap()
            .starts_with("snap-")
    );
}
