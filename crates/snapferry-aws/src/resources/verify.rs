//! `verify`: after the restore, every restored index must hold on the target what the snapshot
//! can contain; a mismatch fails the apply, naming each index, its count and what it was
//! compared with.
//!
//! Writes go on while a snapshot is taken (REAL-AWS.md, "Snapshots"), so a source in use holds
//! more than the snapshot by the time the copy is checked. The snapshot node reads each source
//! index's count just before the snapshot starts and just after it completes; the restore hands
//! that bracket on, and the target's count must lie within it. Without a bracket (a snapshot
//! that this tool did not start, a state written before brackets existed) the target is
//! compared with the source's current count, and the messages say which comparison was made.
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
/// missing on the target). With a bracket the source count is its high end.
type Counts = BTreeMap<String, (String, u64, Option<u64>)>;

/// Per source index: its counts `[before, after]` the snapshot.
type Brackets = BTreeMap<String, [u64; 2]>;

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

    /// The snapshot's bracket handed on by the restore (empty without one).
    fn brackets(&self, inputs: &Inputs) -> Brackets {
        inputs
            .get(&self.spec.restore, "documents")
            .and_then(|v| serde_json::from_value(v.as_known()?.clone()).ok())
            .unwrap_or_default()
    }

    /// Counts every mapped index on the target, and on the source those without a bracket:
    /// one retried `_msearch` on each side whatever the number of indices
    /// ([`crate::opensearch::OpenSearch::counts`]).
    async fn count(
        &self,
        cx: &Context,
        mapping: &BTreeMap<String, String>,
        brackets: &Brackets,
    ) -> Result<Counts, ResourceError> {
        let source = self
            .env
            .require_data_plane(&self.id, &self.spec.source)
            .await?;
        let target = self
            .env
            .require_data_plane(&self.id, &self.spec.target)
            .await?;
        let unbracketed: Vec<String> = mapping
            .keys()
            .filter(|from| !brackets.contains_key(*from))
            .cloned()
            .collect();
        let current = cx
            .retry(|| async {
                source.counts(&unbracketed).await.map_err(|e| {
                    fail_domain(
                        &self.id,
                        &format!(
                            "counts of {} indices on {}",
                            unbracketed.len(),
                            self.spec.source.name
                        ),
                        e,
                    )
                })
            })
            .await?;
        let restored: Vec<String> = mapping.values().cloned().collect();
        let copied = cx
            .retry(|| async {
                target.counts_if_exist(&restored).await.map_err(|e| {
                    fail_domain(
                        &self.id,
                        &format!(
                            "counts of {} restored indices on {}",
                            restored.len(),
                            self.spec.target.name
                        ),
                        e,
                    )
                })
            })
            .await?;
        Ok(mapping
            .iter()
            .map(|(from, to)| {
                let s = match brackets.get(from) {
                    Some([_, after]) => *after,
                    None => current[from],
                };
                (to.clone(), (from.clone(), s, copied[to]))
            })
            .collect())
    }
}

impl VerifyResource {
    /// Why the copy does not hold what the snapshot can hold, and what to do.
    fn differ(&self, wrong: &[String], bracketed: bool) -> String {
        if bracketed {
            format!(
                "document counts on {} lie outside what the snapshot can hold (the source {}'s \
                 counts just before and after the snapshot): {}; documents went missing on the \
                 target: restore again (`restore.on_conflict: replace` and a new snapshot name) \
                 and apply again",
                self.spec.target.name,
                self.spec.source.name,
                wrong.join("; ")
            )
        } else {
            format!(
                "document counts differ between {} and {} (compared with the source's current \
                 counts: no counts were read around the snapshot): {}; if the source was \
                 written to during the copy, take a new snapshot (a new snapshot name) and \
                 apply again",
                self.spec.source.name,
                self.spec.target.name,
                wrong.join("; ")
            )
        }
    }

    /// What the target's counts were compared with, for the record and the messages.
    fn compared(&self, brackets: &Brackets) -> String {
        if brackets.is_empty() {
            format!("the current counts of {}", self.spec.source.name)
        } else {
            format!(
                "the counts of {} just before and just after the snapshot",
                self.spec.source.name
            )
        }
    }
}

fn mismatches(counts: &Counts, brackets: &Brackets) -> Vec<String> {
    counts
        .iter()
        .filter_map(|(to, (from, s, t))| match (brackets.get(from), t) {
            (Some([lo, hi]), Some(t)) if (lo..=hi).contains(&t) => None,
            (Some([lo, hi]), Some(t)) => Some(format!(
                "{to}: {t} documents, source {from} had {lo} before the snapshot and {hi} after it"
            )),
            (Some([lo, hi]), None) => Some(format!(
                "{to}: missing, source {from} had {lo} documents before the snapshot and {hi} after it"
            )),
            (None, Some(t)) if t == s => None,
            (None, Some(t)) => Some(format!("{to}: {t} documents, source {from} has {s}")),
            (None, None) => Some(format!("{to}: missing, source {from} has {s} documents")),
        })
        .collect()
}

fn total(counts: &Counts) -> u64 {
    counts.values().filter_map(|(_, _, t)| *t).sum()
}

impl VerifyResource {
    /// What `read` sees, before a refusal by the security plugin is kept for `diff`
    /// ([`super::Env::unless_refused`]).
    async fn read_live(&self, cx: &Context, inputs: &Inputs) -> Result<Observed, ResourceError> {
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
            let recorded = [
                "indices",
                "documents",
                "snapshot",
                "restored",
                "compared_with",
            ]
            .into_iter()
            .filter_map(|k| Some((k.to_owned(), inputs.get(&self.id, k)?)))
            .collect();
            return Ok(Observed::present(json!({ "verified": restored.0 })).with_outputs(recorded));
        }
        let brackets = self.brackets(inputs);
        let counts = self.count(cx, &mapping, &brackets).await?;
        let mut value = json!({ "counts": counts });
        if !brackets.is_empty() {
            value["brackets"] = json!(brackets);
        }
        Ok(Observed::present(value))
    }
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
        let read = self.read_live(cx, inputs).await;
        self.env
            .unless_refused(&[&self.spec.target, &self.spec.source], read)
    }

    fn diff(&self, inputs: &Inputs, observed: &Observed) -> Change {
        if let Some(change) = super::refused_change(inputs, observed) {
            return change;
        }
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
        let brackets: Brackets =
            serde_json::from_value(observed.value["brackets"].clone()).unwrap_or_default();
        let wrong = mismatches(&counts, &brackets);
        if wrong.is_empty() {
            Change::NoOp
        } else {
            Change::Blocked {
                reason: self.differ(&wrong, !brackets.is_empty()),
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
        let brackets = self.brackets(inputs);
        let counts = self.count(cx, &mapping, &brackets).await?;
        let wrong = mismatches(&counts, &brackets);
        if !wrong.is_empty() {
            return Err(ResourceError::permanent(
                &self.id,
                self.differ(&wrong, !brackets.is_empty()),
            ));
        }
        let mut verified = outputs([
            ("indices", json!(counts.len())),
            ("documents", json!(total(&counts))),
            ("compared_with", json!(self.compared(&brackets))),
        ]);
        for (key, from) in [("snapshot", "snapshot"), ("restored", "indices")] {
            if let Some(value) = inputs.get(&self.spec.restore, from) {
                verified.insert(key.to_owned(), value);
            }
        }
        Ok(verified)
    }
}
