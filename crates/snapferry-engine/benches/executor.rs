//! Overhead of the executor and its checkpoints: 1,000 trivial nodes (a binary tree, so
//! up to `parallelism` run at once) whose read/apply/wait cost nothing, against the memory
//! store and the file store (temp file + fsync + rename + directory fsync per transition).
//! Prints wall time, time per node and state writes per applied node; then a second,
//! no-op apply (every node re-read and skipped). Each apply executes a proposal planned just
//! before it (planning is not timed). Run: `cargo bench -p snapferry-engine`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use snapferry_engine::{
    ApplyOptions, Change, Context, ExecGraph, FieldValue, FileStore, Inputs, MemoryStore, NodeId,
    Observed, Outcome, Outputs, PlanOptions, Progress, Resource, ResourceError, StateStore, plan,
};

const NODES: usize = 1_000;

struct Trivial {
    id: NodeId,
    created: AtomicBool,
}

#[async_trait]
impl Resource for Trivial {
    fn id(&self) -> &NodeId {
        &self.id
    }
    fn kind(&self) -> &'static str {
        "trivial"
    }
    fn desired_fingerprint(&self) -> String {
        "v1".to_owned()
    }
    async fn read(&self, _cx: &Context, _inputs: &Inputs) -> Result<Observed, ResourceError> {
        Ok(if self.created.load(Ordering::SeqCst) {
            Observed::present(serde_json::Value::Null)
        } else {
            Observed::absent()
        })
    }
    fn diff(&self, _inputs: &Inputs, observed: &Observed) -> Change {
        if observed.exists {
            Change::NoOp
        } else {
            Change::Create { fields: vec![] }
        }
    }
    async fn apply(
        &self,
        _cx: &Context,
        _inputs: &Inputs,
        _change: &Change,
    ) -> Result<(), ResourceError> {
        self.created.store(true, Ordering::SeqCst);
        Ok(())
    }
    async fn wait(
        &self,
        _cx: &Context,
        _inputs: &Inputs,
        _progress: &Progress,
    ) -> Result<Outputs, ResourceError> {
        let mut outputs = Outputs::new();
        outputs.insert(
            "arn".into(),
            FieldValue::known(format!("arn:trivial:{}", self.id)),
        );
        Ok(outputs)
    }
}

fn graph() -> Arc<ExecGraph> {
    let ids: Vec<NodeId> = (0..NODES)
        .map(|i| NodeId::new("trivial", &format!("n{i:04}")))
        .collect();
    let mut b = ExecGraph::builder();
    for id in &ids {
        b.add(Arc::new(Trivial {
            id: id.clone(),
            created: AtomicBool::new(false),
        }));
    }
    for i in 1..NODES {
        b.depend(&ids[i], &ids[(i - 1) / 2]);
    }
    Arc::new(b.build().expect("tree is acyclic"))
}

async fn run(label: &str, store: Arc<dyn StateStore>, saves: impl Fn() -> Option<u64>) {
    let graph = graph();
    let executor = snapferry_engine::Executor::new(graph.clone(), store.clone());
    let options = ApplyOptions::new("bench");
    let proposal = plan(&graph, None, &PlanOptions::new("fp"))
        .await
        .expect("plan");
    let started = Instant::now();
    let summary = executor.apply(&proposal, &options).await.expect("apply");
    let elapsed = started.elapsed();
    assert_eq!(summary.outcome, Outcome::Complete);
    assert_eq!(summary.applied.len(), NODES);
    let writes = saves().unwrap_or(summary.generation);
    println!(
        "{label:<7} first apply : {NODES} nodes in {:>8.1} ms, {:>7.1} µs/node, {writes} state writes ({:.2} per node)",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 / NODES as f64,
        writes as f64 / NODES as f64,
    );
    let state = store.load().await.expect("state");
    let proposal = plan(&graph, state.as_ref(), &PlanOptions::new("fp"))
        .await
        .expect("plan");
    let started = Instant::now();
    let summary = executor.apply(&proposal, &options).await.expect("re-apply");
    let elapsed = started.elapsed();
    assert_eq!(summary.unchanged.len(), NODES);
    println!(
        "{label:<7} no-op apply : {NODES} nodes in {:>8.1} ms, {:>7.1} µs/node",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 / NODES as f64,
    );
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let memory = MemoryStore::new();
        let m = memory.clone();
        run("memory", Arc::new(memory), move || Some(m.saves())).await;

        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bench.state.json");
        run("file", Arc::new(FileStore::new(&path)), || None).await;
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!("file    state document: {size} bytes for {NODES} nodes");
    });
}
