//! Recurring runs: once a run completes, the next apply is a new cycle. A node that pins a
//! templated name resolves it again, and a dependent whose upstream values changed is
//! re-applied instead of being reported as drift; within one cycle nothing is repeated.

use std::sync::{Arc, Mutex};

use crate::support::PlanThenApply;

use async_trait::async_trait;
use serde_json::json;
use snapferry_engine::{
    ApplyOptions, Change, Context, ExecGraph, Executor, FieldValue, Inputs, MemoryStore, NodeId,
    Observed, Outputs, Progress, Resource, ResourceError, StateStore, plan,
};

/// What the fake service holds, and today's date as the template would see it.
#[derive(Default)]
struct World {
    today: String,
    snapshots: Vec<String>,
    restored_from: Option<String>,
    mutating_calls: usize,
}

type Shared = Arc<Mutex<World>>;

struct Snapshot {
    id: NodeId,
    world: Shared,
}

struct Restore {
    id: NodeId,
    world: Shared,
    snapshot: NodeId,
}

impl Snapshot {
    async fn name(&self, cx: &Context) -> Result<String, ResourceError> {
        let today = self.world.lock().unwrap().today.clone();
        Ok(cx
            .pin("name", || json!(format!("snap-{today}")))
            .await?
            .as_str()
            .unwrap()
            .to_owned())
    }
}

fn outputs(name: &str) -> Outputs {
    Outputs::from([("name".to_owned(), FieldValue::known(name))])
}

#[async_trait]
impl Resource for Snapshot {
    fn id(&self) -> &NodeId {
        &self.id
    }
    fn kind(&self) -> &'static str {
        "snapshot"
    }
    fn desired_fingerprint(&self) -> String {
        "snapshot-settings".into()
    }
    async fn read(&self, cx: &Context, _: &Inputs) -> Result<Observed, ResourceError> {
        let name = self.name(cx).await?;
        let exists = self.world.lock().unwrap().snapshots.contains(&name);
        Ok(if exists {
            Observed::present(json!(name)).with_outputs(outputs(&name))
        } else {
            Observed::absent()
        })
    }
    fn diff(&self, _: &Inputs, observed: &Observed) -> Change {
        if observed.exists {
            Change::NoOp
        } else {
            Change::Create { fields: vec![] }
        }
    }
    async fn apply(&self, cx: &Context, _: &Inputs, _: &Change) -> Result<(), ResourceError> {
        let name = self.name(cx).await?;
        let mut world = self.world.lock().unwrap();
        world.snapshots.push(name);
        world.mutating_calls += 1;
        Ok(())
    }
    async fn wait(&self, cx: &Context, _: &Inputs, _: &Progress) -> Result<Outputs, ResourceError> {
        Ok(outputs(&self.name(cx).await?))
    }
}

#[async_trait]
impl Resource for Restore {
    fn id(&self) -> &NodeId {
        &self.id
    }
    fn kind(&self) -> &'static str {
        "restore"
    }
    fn desired_fingerprint(&self) -> String {
        "restore-settings".into()
    }
    async fn read(&self, _: &Context, _: &Inputs) -> Result<Observed, ResourceError> {
        let from = self.world.lock().unwrap().restored_from.clone();
        Ok(match from {
            Some(from) => Observed::present(json!(from)),
            None => Observed::absent(),
        })
    }
    fn diff(&self, inputs: &Inputs, observed: &Observed) -> Change {
        match inputs.get(&self.snapshot, "name") {
            Some(FieldValue::Known(name)) if observed.value == name => Change::NoOp,
            _ => Change::Create { fields: vec![] },
        }
    }
    async fn apply(&self, _: &Context, inputs: &Inputs, _: &Change) -> Result<(), ResourceError> {
        let name = inputs.get(&self.snapshot, "name").unwrap();
        let mut world = self.world.lock().unwrap();
        world.restored_from = Some(name.as_str().unwrap().to_owned());
        world.mutating_calls += 1;
        Ok(())
    }
    async fn wait(&self, _: &Context, _: &Inputs, _: &Progress) -> Result<Outputs, ResourceError> {
        Ok(Outputs::new())
    }
}

fn graph(world: &Shared) -> Arc<ExecGraph> {
    let snap = NodeId::new("snapshot", "daily");
    let restore = NodeId::new("restore", "daily");
    let mut b = ExecGraph::builder();
    b.add(Arc::new(Snapshot {
        id: snap.clone(),
        world: world.clone(),
    }));
    b.add(Arc::new(Restore {
        id: restore.clone(),
        world: world.clone(),
        snapshot: snap.clone(),
    }));
    b.depend(&restore, &snap);
    Arc::new(b.build().unwrap())
}

#[tokio::test]
async fn a_later_run_takes_a_new_snapshot_and_restores_it_and_a_same_day_run_does_nothing() {
    let world: Shared = Arc::default();
    world.lock().unwrap().today = "2026-11-01".into();
    let graph = graph(&world);
    let store = MemoryStore::new();
    let executor = Executor::new(graph.clone(), Arc::new(store.clone()));
    let options = ApplyOptions::new("p");

    let first = executor.plan_then_apply(&options).await.unwrap();
    assert_eq!(first.applied.len(), 2);
    assert_eq!(world.lock().unwrap().mutating_calls, 2);

    // The same day: the pinned name is re-resolved to the same value; nothing to do.
    let again = executor.plan_then_apply(&options).await.unwrap();
    assert_eq!(again.unchanged.len(), 2, "{again:?}");
    assert!(again.stale.is_empty());
    assert_eq!(world.lock().unwrap().mutating_calls, 2);

    // A week later: the plan shows both nodes changing, not drifting...
    world.lock().unwrap().today = "2026-11-08".into();
    let state = store.load().await.unwrap().unwrap();
    let proposal = plan(
        &graph,
        Some(&state),
        &snapferry_engine::PlanOptions::new("fp"),
    )
    .await
    .unwrap();
    let snap = NodeId::new("snapshot", "daily");
    let restore = NodeId::new("restore", "daily");
    assert_eq!(proposal.nodes[&snap].change.verb(), "create");
    assert_eq!(proposal.nodes[&restore].change.verb(), "create");
    let drift = proposal.state.unwrap();
    assert!(drift.drifted.is_empty(), "{drift:?}");
    // The snapshot's pinned name changed; the restore waits on it (known after apply).
    assert_eq!(
        drift.changed.iter().map(|(id, _)| id).collect::<Vec<_>>(),
        [&snap],
        "{drift:?}"
    );
    assert_eq!(
        proposal.live.pinned["snapshot/daily:name"],
        json!("snap-2026-11-08")
    );

    // ...and apply takes the new snapshot and restores it.
    let refresh = executor.plan_then_apply(&options).await.unwrap();
    assert_eq!(refresh.applied.len(), 2, "{refresh:?}");
    let w = world.lock().unwrap();
    assert_eq!(w.snapshots, ["snap-2026-11-01", "snap-2026-11-08"]);
    assert_eq!(w.restored_from.as_deref(), Some("snap-2026-11-08"));
    assert_eq!(w.mutating_calls, 4);
}

#[tokio::test]
async fn an_unfinished_run_keeps_its_pinned_name_across_midnight() {
    let world: Shared = Arc::default();
    world.lock().unwrap().today = "2026-11-01".into();
    let graph = graph(&world);
    let store = MemoryStore::new();
    let executor = Executor::new(graph, Arc::new(store.clone()));
    // The restore fails the first time: the run is not complete.
    let mut state = snapferry_engine::StateDoc::new("p", "fp", "test");
    state
        .pinned
        .insert("snapshot/daily:name".into(), json!("snap-2026-10-31"));
    store.save(&state).await.unwrap();
    world.lock().unwrap().today = "2026-11-02".into();
    executor
        .plan_then_apply(&ApplyOptions::new("p"))
        .await
        .unwrap();
    let w = world.lock().unwrap();
    assert_eq!(w.snapshots, ["snap-2026-10-31"]);
    assert_eq!(w.restored_from.as_deref(), Some("snap-2026-10-31"));
}

#[tokio::test]
async fn a_plan_made_before_midnight_is_applied_with_the_name_it_showed() {
    let world: Shared = Arc::default();
    world.lock().unwrap().today = "2026-11-01".into();
    let graph = graph(&world);
    let store = MemoryStore::new();
    let executor = Executor::new(graph.clone(), Arc::new(store.clone()));
    executor
        .plan_then_apply(&ApplyOptions::new("p"))
        .await
        .unwrap();
    // The next cycle is planned on the 8th, reviewed, and applied after midnight.
    world.lock().unwrap().today = "2026-11-08".into();
    let state = store.load().await.unwrap().unwrap();
    let proposal = plan(
        &graph,
        Some(&state),
        &snapferry_engine::PlanOptions::new("fp"),
    )
    .await
    .unwrap();
    world.lock().unwrap().today = "2026-11-09".into();
    let summary = executor
        .apply(&proposal, &ApplyOptions::new("p"))
        .await
        .unwrap();
    assert_eq!(summary.applied.len(), 2, "{summary:?}");
    let w = world.lock().unwrap();
    assert_eq!(w.snapshots, ["snap-2026-11-01", "snap-2026-11-08"]);
    assert_eq!(w.restored_from.as_deref(), Some("snap-2026-11-08"));
}

#[test]
fn a_target_brings_its_dependencies_and_nothing_else() {
    let world: Shared = Arc::default();
    let full = graph(&world);
    let snap = NodeId::new("snapshot", "daily");
    let restore = NodeId::new("restore", "daily");
    let only_snapshot = full.restricted_to(std::slice::from_ref(&snap)).unwrap();
    assert_eq!(only_snapshot.topological(), std::slice::from_ref(&snap));
    let with_deps = full.restricted_to(std::slice::from_ref(&restore)).unwrap();
    assert_eq!(with_deps.topological(), [snap, restore]);
    let unknown = full
        .restricted_to(&[NodeId::new("snapshot", "weekly")])
        .err()
        .unwrap();
    assert_eq!(
        unknown.to_string(),
        "snapshot/weekly is not a step of this plan; `snapferry graph` lists the steps"
    );
}
