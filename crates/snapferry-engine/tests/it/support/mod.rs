//! A fake world of resources for the engine's tests: each resource is created by `apply`,
//! becomes ready after a number of polls, and exposes an `arn` output. Every mutating call
//! is counted; failures can be injected; the world can persist itself to a file (atomically)
//! so a crashed child process and its resumed parent see the same world.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use snapferry_engine::{
    ApplyOptions, ApplySummary, Change, Context, EngineError, ExecGraph, Executor, FieldChange,
    FieldValue, Inputs, NodeId, Observed, Outputs, PlanOptions, PollStatus, Progress, Resource,
    ResourceError, plan,
};

/// The plan fingerprint the tests plan with.
pub const PLAN_FP: &str = "fp";

/// What `snapferry apply` does: plan against the stored state, then execute that proposal.
#[async_trait]
pub trait PlanThenApply {
    async fn plan_then_apply(&self, options: &ApplyOptions) -> Result<ApplySummary, EngineError>;
}

#[async_trait]
impl PlanThenApply for Executor {
    async fn plan_then_apply(&self, options: &ApplyOptions) -> Result<ApplySummary, EngineError> {
        let state = self.store().load().await?;
        let proposal = plan(self.graph(), state.as_ref(), &PlanOptions::new(PLAN_FP)).await?;
        self.apply(&proposal, options).await
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Thing {
    pub desired: String,
    pub polls_left: u32,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WorldData {
    pub things: BTreeMap<String, Thing>,
    pub apply_calls: BTreeMap<String, u32>,
    /// Permanent failures still to inject into `apply`, by node.
    pub fail_apply: BTreeMap<String, u32>,
    /// Transient failures still to inject into `read`, by node.
    pub flaky_read: BTreeMap<String, u32>,
    pub failures_injected: BTreeMap<String, u32>,
    /// Nodes whose apply ran before every dependency was ready.
    pub order_violations: Vec<String>,
    /// Waits under way (including those sleeping between polls).
    pub in_flight: u32,
    pub max_in_flight: u32,
    /// Polls being answered at this moment (work that holds a parallelism share).
    pub polling: u32,
    pub max_polling: u32,
    /// Permanent failures still to inject into `destroy`, by node.
    pub fail_destroy: BTreeMap<String, u32>,
    pub destroy_calls: BTreeMap<String, u32>,
}

#[derive(Debug, Default)]
pub struct World {
    data: Mutex<WorldData>,
    file: Option<PathBuf>,
    /// Abort the process right after this node's apply was recorded in the world.
    pub abort_after_apply: Option<String>,
}

impl World {
    pub fn new() -> Arc<Self> {
        Arc::new(World::default())
    }

    pub fn persistent(file: PathBuf, abort_after_apply: Option<String>) -> Arc<Self> {
        let data = std::fs::read(&file)
            .map(|b| serde_json::from_slice(&b).expect("world file"))
            .unwrap_or_default();
        Arc::new(World {
            data: Mutex::new(data),
            file: Some(file),
            abort_after_apply,
        })
    }

    pub fn data(&self) -> WorldData {
        self.data.lock().unwrap().clone()
    }

    pub fn update<T>(&self, f: impl FnOnce(&mut WorldData) -> T) -> T {
        let mut data = self.data.lock().unwrap();
        let out = f(&mut data);
        if let Some(file) = &self.file {
            let tmp = file.with_extension("tmp");
            std::fs::write(&tmp, serde_json::to_vec(&*data).unwrap()).unwrap();
            std::fs::File::open(&tmp).unwrap().sync_all().unwrap();
            std::fs::rename(&tmp, file).unwrap();
        }
        out
    }
}

pub struct Fake {
    pub id: NodeId,
    pub deps: Vec<NodeId>,
    pub desired: String,
    pub wait_polls: u32,
    pub pin_key: Option<String>,
    pub world: Arc<World>,
}

pub fn arn(id: &NodeId) -> String {
    format!("arn:fake:{id}")
}

#[async_trait]
impl Resource for Fake {
    fn id(&self) -> &NodeId {
        &self.id
    }

    fn kind(&self) -> &'static str {
        "fake"
    }

    fn desired_fingerprint(&self) -> String {
        self.desired.clone()
    }

    async fn read(&self, _cx: &Context, _inputs: &Inputs) -> Result<Observed, ResourceError> {
        let key = self.id.to_string();
        let flaky = self.world.update(|w| match w.flaky_read.get_mut(&key) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        });
        if flaky {
            return Err(ResourceError::transient(
                &self.id,
                "503 Service Unavailable",
            ));
        }
        let data = self.world.data();
        Ok(match data.things.get(&key) {
            None => Observed::absent(),
            Some(t) => {
                let mut outputs = Outputs::new();
                outputs.insert("arn".into(), FieldValue::known(arn(&self.id)));
                let o = Observed::present(json!({ "desired": t.desired })).with_outputs(outputs);
                if t.polls_left > 0 {
                    o.in_progress("creating")
                } else {
                    o
                }
            }
        })
    }

    fn diff(&self, inputs: &Inputs, observed: &Observed) -> Change {
        let upstream_arns = self.deps.iter().map(|d| FieldChange {
            path: format!("upstream.{d}"),
            before: None,
            after: inputs.get(d, "arn").unwrap_or(FieldValue::Unknown),
        });
        if !observed.exists {
            let mut fields = vec![FieldChange {
                path: "desired".into(),
                before: None,
                after: FieldValue::known(self.desired.clone()),
            }];
            fields.extend(upstream_arns);
            return Change::Create { fields };
        }
        if let Some(what) = &observed.in_progress {
            return Change::InProgress { what: what.clone() };
        }
        let live = observed.value["desired"].as_str().unwrap_or_default();
        if live != self.desired {
            return Change::Update {
                fields: vec![FieldChange {
                    path: "desired".into(),
                    before: Some(FieldValue::known(live)),
                    after: FieldValue::known(self.desired.clone()),
                }],
            };
        }
        Change::NoOp
    }

    async fn apply(
        &self,
        cx: &Context,
        inputs: &Inputs,
        _change: &Change,
    ) -> Result<(), ResourceError> {
        let name = match &self.pin_key {
            Some(key) => Some(
                cx.pin(key, || json!(format!("snap-{:08x}", rand::random::<u32>())))
                    .await?
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ),
            None => None,
        };
        let key = self.id.to_string();
        let deps_ready: Vec<bool> = {
            let data = self.world.data();
            self.deps
                .iter()
                .map(|d| {
                    data.things
                        .get(d.as_str())
                        .is_some_and(|t| t.polls_left == 0)
                        && inputs
                            .get(d, "arn")
                            .and_then(|v| v.as_str().map(str::to_owned))
                            == Some(arn(d))
                })
                .collect()
        };
        let failed = self.world.update(|w| {
            *w.apply_calls.entry(key.clone()).or_default() += 1;
            if deps_ready.iter().any(|r| !r) {
                w.order_violations.push(key.clone());
            }
            if let Some(n) = w.fail_apply.get_mut(&key).filter(|n| **n > 0) {
                *n -= 1;
                *w.failures_injected.entry(key.clone()).or_default() += 1;
                return true;
            }
            let thing = w.things.entry(key.clone()).or_default();
            thing.desired.clone_from(&self.desired);
            thing.polls_left = self.wait_polls;
            thing.name = name;
            false
        });
        if failed {
            return Err(ResourceError::permanent(&self.id, "AccessDenied: injected"));
        }
        if self.world.abort_after_apply.as_deref() == Some(key.as_str()) {
            std::process::abort();
        }
        Ok(())
    }

    async fn wait(
        &self,
        cx: &Context,
        _inputs: &Inputs,
        _progress: &Progress,
    ) -> Result<Outputs, ResourceError> {
        let key = self.id.to_string();
        self.world.update(|w| {
            w.in_flight += 1;
            w.max_in_flight = w.max_in_flight.max(w.in_flight);
        });
        let result = cx
            .poll_until(|| async {
                self.world.update(|w| {
                    w.polling += 1;
                    w.max_polling = w.max_polling.max(w.polling);
                });
                // A poll takes a moment: let other tasks run while it is counted.
                tokio::task::yield_now().await;
                self.world.update(|w| w.polling -= 1);
                let left = self.world.update(|w| {
                    let t = w.things.get_mut(&key).expect("waited thing exists");
                    t.polls_left = t.polls_left.saturating_sub(1);
                    t.polls_left
                });
                Ok(if left == 0 {
                    PollStatus::Ready(())
                } else {
                    PollStatus::Pending {
                        done: 0,
                        total: 1,
                        message: format!("{left} polls left"),
                    }
                })
            })
            .await;
        self.world.update(|w| w.in_flight -= 1);
        result?;
        let mut outputs = Outputs::new();
        outputs.insert("arn".into(), FieldValue::known(arn(&self.id)));
        outputs.insert(
            "secret".into(),
            FieldValue::Sensitive(Some(json!("hunter2"))),
        );
        Ok(outputs)
    }

    async fn destroy(&self, _cx: &Context, _inputs: &Inputs) -> Result<(), ResourceError> {
        let key = self.id.to_string();
        let failed = self.world.update(|w| {
            *w.destroy_calls.entry(key.clone()).or_default() += 1;
            if let Some(n) = w.fail_destroy.get_mut(&key).filter(|n| **n > 0) {
                *n -= 1;
                return true;
            }
            w.things.remove(&key);
            false
        });
        if failed {
            return Err(ResourceError::permanent(
                &self.id,
                "DeleteConflict: injected",
            ));
        }
        Ok(())
    }
}

/// Builds a graph of fakes from `edges` (`(node, depends_on)` by index).
pub fn build(
    world: &Arc<World>,
    n: usize,
    edges: &BTreeSet<(usize, usize)>,
    wait_polls: u32,
) -> ExecGraph {
    let ids: Vec<NodeId> = (0..n)
        .map(|i| NodeId::new("fake", &format!("n{i:02}")))
        .collect();
    let mut b = ExecGraph::builder();
    for (i, id) in ids.iter().enumerate() {
        let deps = edges
            .iter()
            .filter(|(a, _)| *a == i)
            .map(|(_, d)| ids[*d].clone())
            .collect();
        b.add(Arc::new(Fake {
            id: id.clone(),
            deps,
            desired: "v1".into(),
            wait_polls,
            pin_key: (i == 0).then(|| "snapshot_name".to_owned()),
            world: world.clone(),
        }));
    }
    for (a, d) in edges {
        b.depend(&ids[*a], &ids[*d]);
    }
    b.build().unwrap()
}
