//! `verify`: after the restore, every restored index must hold as many documents on the target
//! as its source index holds; a mismatch fails the apply, naming each index and both counts.
//! (A source written to during the copy will differ: the snapshot is a point in time.)

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use snapferry_engine::{
    Change, Context, FieldChange, FieldValue, Inputs, NodeId, Observed, Outputs, Progress,
    Resource, ResourceError,
};
use snapferry_plan::VerifyNode;

use super::{Env, created_unknown, fail_domain, outputs};

pub(crate) struct VerifyResource {
    id: NodeId,
    fingerprint: String,
    spec: VerifyNode,
    env: Arc<Env>,
}

/// Per target index: (source index, source count, target count).
type Counts = BTreeMap<String, (String, u64, u64)>;

impl VerifyResource {
    pub(crate) fn new(id: NodeId, fingerprint: String, spec: &VerifyNode, env: &Arc<Env>) -> Self {
        VerifyResource {
            id,
            fingerprint,
            spec: spec.clone(),
            env: env.clone(),
        }
    }

    /// The restored indices, source → target, from the restore node.
    fn mapping(&self, inputs: &Inputs) -> Option<BTreeMap<String, String>> {
        let value = inputs.get(&self.spec.restore, "indices")?;
        serde_json::from_value(value.as_known()?.clone()).ok()
    }

    /// Counts every mapped index on both sides. Each count is retried on its own: with many
    /// indices, retrying the whole survey after one transient error would rarely get through.
    async fn count(
        &self,
        cx: &Context,
        mapping: &BTreeMap<String, String>,
    ) -> Result<Counts, ResourceError> {
        let source = self
            .env
            .require_data_plane(&self.id, &self.spec.source)
            .await?;
        let target = self
            .env
            .require_data_plane(&self.id, &self.spec.target)
            .await?;
        let mut counts = Counts::new();
        for (from, to) in mapping {
            let s = cx
                .retry(|| async {
                    source.count(from).await.map_err(|e| {
                        fail_domain(
                            &self.id,
                            &format!("count of {from} on {}", self.spec.source.name),
                            e,
                        )
                    })
                })
                .await?;
            let t = cx
                .retry(|| async {
                    target.count(to).await.map_err(|e| {
                        fail_domain(
                            &self.id,
                            &format!("count of {to} on {}", self.spec.target.name),
                            e,
                        )
                    })
                })
                .await?;
            counts.insert(to.clone(), (from.clone(), s, t));
        }
        Ok(counts)
    }
}

fn mismatches(counts: &Counts) -> Vec<String> {
    counts
        .iter()
        .filter(|(_, (_, s, t))| s != t)
        .map(|(to, (from, s, t))| format!("{to}: {t} documents, source {from} has {s}"))
        .collect()
}

#[async_trait]
impl Resource for VerifyResource {
    fn id(&self) -> &NodeId {
        &self.id
    }

    fn kind(&self) -> &'static str {
        "verify"
    }

    fn desired_fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    async fn read(&self, cx: &Context, inputs: &Inputs) -> Result<Observed, ResourceError> {
        let Some(mapping) = self.mapping(inputs) else {
            return Ok(Observed::absent());
        };
        let counts = self.count(cx, &mapping).await?;
        let total: u64 = counts.values().map(|(_, _, t)| t).sum();
        Ok(Observed::present(json!(counts)).with_outputs(outputs([
            ("indices", json!(counts.len())),
            ("documents", json!(total)),
        ])))
    }

    fn diff(&self, _inputs: &Inputs, observed: &Observed) -> Change {
        if !observed.exists {
            return Change::Create {
                fields: vec![created_unknown("documents")],
            };
        }
        let counts: Counts = serde_json::from_value(observed.value.clone()).unwrap_or_default();
        let fields: Vec<FieldChange> = counts
            .iter()
            .filter(|(_, (_, s, t))| s != t)
            .map(|(to, (_, s, t))| FieldChange {
                path: format!("documents.{to}"),
                before: Some(FieldValue::known(*t)),
                after: FieldValue::known(*s),
            })
            .collect();
        if fields.is_empty() {
            Change::NoOp
        } else {
            Change::Update { fields }
        }
    }

    async fn apply(
        &self,
        _cx: &Context,
        _inputs: &Inputs,
        _change: &Change,
    ) -> Result<(), ResourceError> {
        // Nothing to change: verification happens in `wait`, after the restore settled.
        Ok(())
    }

    async fn wait(
        &self,
        cx: &Context,
        inputs: &Inputs,
        _progress: &Progress,
    ) -> Result<Outputs, ResourceError> {
        let Some(mapping) = self.mapping(inputs) else {
            return Err(ResourceError::permanent(
                &self.id,
                "the restored indices are not known; apply the restore first",
            ));
        };
        let counts = self.count(cx, &mapping).await?;
        let wrong = mismatches(&counts);
        if !wrong.is_empty() {
            return Err(ResourceError::permanent(
                &self.id,
                format!(
                    "document counts differ between {} and {}: {}; if the source was written to \
                     during the copy, take a new snapshot (a new snapshot name) and apply again",
                    self.spec.source.name,
                    self.spec.target.name,
                    wrong.join("; ")
                ),
            ));
        }
        let total: u64 = counts.values().map(|(_, _, t)| t).sum();
        Ok(outputs([
            ("indices", json!(counts.len())),
            ("documents", json!(total)),
        ]))
    }
}
