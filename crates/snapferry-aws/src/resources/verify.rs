//! `verify`: after the restore, every restored index must hold as many documents on the target
//! as its source index holds; a mismatch fails the apply, naming each index and both counts.
//! (A source written to during the copy will differ: the snapshot is a point in time.)
//!
//! Counts move on their own, so the kind is volatile: apply does not hold a fresh count against
//! the approved plan, and runs the verification whenever the plan showed it running. It runs
//! again whenever the restore changes (its documents are known after apply). Once a restore is
//! verified, what was verified (the snapshot and the index mapping) is recorded, and later plans
//! show the verification unchanged without counting: a source that keeps being written to after
//! the copy is not a change of the copy. Counts that differ before a verification passed block
//! the step with what to do; a restored index deleted by hand counts as missing, not as an error.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use snapferry_engine::{
    Change, Context, FieldValue, Inputs, NodeId, Observed, Outputs, Progress, Resource,
    ResourceError,
};
use snapferry_plan::VerifyNode;

use super::{Env, created_unknown, fail_domain, outputs};

pub(crate) struct VerifyResource {
    id: NodeId,
    fingerprint: String,
    spec: VerifyNode,
    env: Arc<Env>,
}

/// Per target index: (source index, source count, target count — `None` when the index is
/// missing on the target).
type Counts = BTreeMap<String, (String, u64, Option<u64>)>;

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
                    match target.count(to).await {
                        Ok(n) => Ok(Some(n)),
                        Err(e) if e.error_type() == Some("index_not_found_exception") => Ok(None),
                        Err(e) => Err(fail_domain(
                            &self.id,
                            &format!("count of {to} on {}", self.spec.target.name),
                            e,
                        )),
                    }
                })
                .await?;
            counts.insert(to.clone(), (from.clone(), s, t));
        }
        Ok(counts)
    }
}

impl VerifyResource {
    /// Why the copy does not hold what the source holds, and what to do.
    fn differ(&self, wrong: &[String]) -> String {
        format!(
            "document counts differ between {} and {}: {}; if the source was written to during \
             the copy, take a new snapshot (a new snapshot name) and apply again",
            self.spec.source.name,
            self.spec.target.name,
            wrong.join("; ")
        )
    }
}

fn mismatches(counts: &Counts) -> Vec<String> {
    counts
        .iter()
        .filter(|(_, (_, s, t))| Some(*s) != *t)
        .map(|(to, (from, s, t))| match t {
            Some(t) => format!("{to}: {t} documents, source {from} has {s}"),
            None => format!("{to}: missing, source {from} has {s} documents"),
        })
        .collect()
}

fn total(counts: &Counts) -> u64 {
    counts.values().filter_map(|(_, _, t)| *t).sum()
}

#[async_trait]
impl Resource for VerifyResource {
    fn id(&self) -> &NodeId {
        &self.id
    }

    fn kind(&self) -> &'static str {
        super::VERIFY.name
    }

    fn volatile(&self) -> bool {
        super::VERIFY.volatile
    }

    fn desired_fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    async fn read(&self, cx: &Context, inputs: &Inputs) -> Result<Observed, ResourceError> {
        let Some(mapping) = self.mapping(inputs) else {
            return Ok(Observed::absent());
        };
        // Verified already, for this very restore: nothing to count again.
        let restored = (
            inputs.get(&self.spec.restore, "snapshot"),
            inputs.get(&self.spec.restore, "indices"),
        );
        let verified = (
            inputs.get(&self.id, "snapshot"),
            inputs.get(&self.id, "restored"),
        );
        if restored.0.is_some() && restored == verified {
            let recorded = ["indices", "documents", "snapshot", "restored"]
                .into_iter()
                .filter_map(|k| Some((k.to_owned(), inputs.get(&self.id, k)?)))
                .collect();
            return Ok(Observed::present(json!({ "verified": restored.0 })).with_outputs(recorded));
        }
        let counts = self.count(cx, &mapping).await?;
        Ok(Observed::present(json!({ "counts": counts })))
    }

    fn diff(&self, inputs: &Inputs, observed: &Observed) -> Change {
        let restored = matches!(
            inputs.get(&self.spec.restore, "indices"),
            Some(FieldValue::Known(Value::Object(_)))
        );
        if !restored || !observed.exists {
            // The restore runs (again) first: what there is to count is known after it.
            let fields = vec![created_unknown("documents")];
            return if observed.exists {
                Change::Update { fields }
            } else {
                Change::Create { fields }
            };
        }
        if observed.value.get("verified").is_some() {
            return Change::NoOp;
        }
        let counts: Counts =
            serde_json::from_value(observed.value["counts"].clone()).unwrap_or_default();
        let wrong = mismatches(&counts);
        if wrong.is_empty() {
            Change::NoOp
        } else {
            Change::Blocked {
                reason: self.differ(&wrong),
            }
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
            return Err(ResourceError::permanent(&self.id, self.differ(&wrong)));
        }
        let mut verified = outputs([
            ("indices", json!(counts.len())),
            ("documents", json!(total(&counts))),
        ]);
        for (key, from) in [("snapshot", "snapshot"), ("restored", "indices")] {
            if let Some(value) = inputs.get(&self.spec.restore, from) {
                verified.insert(key.to_owned(), value);
            }
        }
        Ok(verified)
    }
}
