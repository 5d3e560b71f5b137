//! `restore`: the snapshot's selected indices restored on the target (system indices never),
//! renamed and with index settings as the plan says; `on_conflict` decides what happens to
//! indices that already exist. Whether an index was already restored from *this* snapshot is
//! read from its shards' recovery source, so a restore done (or under way) is never repeated.
//!
//! The change is a `create` while the target holds no index of its own yet and an `update`
//! once it does (a refresh, a repair after an index was deleted), so the kind of change does
//! not depend on whether the snapshot to restore is known yet: while it is still to be taken
//! the plan shows `snapshot` and `indices` as known after apply, and apply's fresh change
//! (with `indices.<name>` per index) matches it.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use snapferry_engine::{
    Change, Context, FieldChange, FieldValue, Inputs, NodeId, Observed, Outputs, PollStatus,
    Progress, Resource, ResourceError,
};
use snapferry_plan::{OnConflict, RestoreNode};

use super::{Env, created, created_unknown, fail_domain, outputs};
use crate::opensearch::{OpenSearch, Recovery, RestoreRequest, select_indices};

pub(crate) struct RestoreResource {
    id: NodeId,
    fingerprint: String,
    spec: RestoreNode,
    env: Arc<Env>,
}

/// One index of the snapshot and what it becomes on the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Mapping {
    source: String,
    target: String,
    /// The target index exists.
    exists: bool,
    /// Every shard of the target index was recovered from this snapshot...
    from_this_snapshot: bool,
    /// ...and all of them are done.
    done: bool,
}

/// What the target looks like for this restore.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Survey {
    snapshot: String,
    mappings: Vec<Mapping>,
}

impl Survey {
    fn restored(&self) -> bool {
        self.mappings.iter().all(|m| m.from_this_snapshot && m.done)
    }

    fn running(&self) -> bool {
        self.mappings
            .iter()
            .any(|m| m.from_this_snapshot && !m.done)
    }

    /// Target indices in the way: existing, not from this snapshot.
    fn conflicts(&self) -> impl Iterator<Item = &Mapping> {
        self.mappings
            .iter()
            .filter(|m| m.exists && !m.from_this_snapshot)
    }

    /// Indices that still need restoring (absent on the target).
    fn missing(&self) -> impl Iterator<Item = &Mapping> {
        self.mappings.iter().filter(|m| !m.exists)
    }
}

/// Shards `done` of `total` in a recovery answer, for the indices given.
fn recovery_progress(recovery: &Recovery, indices: &[String]) -> (u64, u64) {
    let mut done = 0;
    let mut total = 0;
    for index in indices {
        for shard in recovery.get(index).into_iter().flatten() {
            total += 1;
            if shard.stage == "DONE" {
                done += 1;
            }
        }
    }
    (done, total)
}

impl RestoreResource {
    pub(crate) fn new(id: NodeId, fingerprint: String, spec: &RestoreNode, env: &Arc<Env>) -> Self {
        RestoreResource {
            id,
            fingerprint,
            spec: spec.clone(),
            env: env.clone(),
        }
    }

    fn what(&self, snapshot: &str) -> String {
        format!(
            "restore of snapshot {snapshot} on domain {}",
            self.spec.target.name
        )
    }

    /// The target name of a source index after the plan's rename.
    fn rename(&self, source: &str) -> Result<String, ResourceError> {
        match &self.spec.restore.rename {
            None => Ok(source.to_owned()),
            Some(rename) => {
                let pattern = regex::Regex::new(&rename.pattern).map_err(|e| {
                    ResourceError::permanent(&self.id, format!("restore.rename_pattern: {e}"))
                })?;
                Ok(pattern
                    .replace_all(source, rename.replacement.as_str())
                    .into_owned())
            }
        }
    }

    /// Every index on the target.
    async fn target_indices(
        &self,
        client: &OpenSearch,
        what: &str,
    ) -> Result<Vec<String>, ResourceError> {
        Ok(client
            .cat_indices()
            .await
            .map_err(|e| fail_domain(&self.id, what, e))?
            .into_iter()
            .map(|i| i.index)
            .collect())
    }

    /// Compares the snapshot's selected indices with what the target has.
    async fn survey(
        &self,
        client: &OpenSearch,
        snapshot: &str,
        snapshot_indices: &[String],
    ) -> Result<Survey, ResourceError> {
        let what = self.what(snapshot);
        let existing = self.target_indices(client, &what).await?;
        self.survey_with(client, snapshot, snapshot_indices, &existing)
            .await
    }

    /// [`Self::survey`] against a list of the target's indices already read.
    async fn survey_with(
        &self,
        client: &OpenSearch,
        snapshot: &str,
        snapshot_indices: &[String],
        existing: &[String],
    ) -> Result<Survey, ResourceError> {
        let what = self.what(snapshot);
        let selected = select_indices(snapshot_indices, &self.spec.restore.indices);
        let mut mappings = Vec::new();
        let mut present = Vec::new();
        for source in selected {
            let target = self.rename(&source)?;
            let exists = existing.contains(&target);
            if exists {
                present.push(target.clone());
            }
            mappings.push(Mapping {
                source,
                target,
                exists,
                from_this_snapshot: false,
                done: false,
            });
        }
        if !present.is_empty() {
            let recovery = client
                .recovery(&present)
                .await
                .map_err(|e| fail_domain(&self.id, &what, e))?;
            for mapping in mappings.iter_mut().filter(|m| m.exists) {
                let shards = recovery.get(&mapping.target).cloned().unwrap_or_default();
                mapping.from_this_snapshot = !shards.is_empty()
                    && shards.iter().all(|s| {
                        s.source.as_ref().is_some_and(|src| {
                            src.snapshot.as_deref() == Some(snapshot)
                                && src.repository.as_deref() == Some(&self.spec.repository)
                        })
                    });
                mapping.done = shards.iter().all(|s| s.stage == "DONE");
            }
        }
        Ok(Survey {
            snapshot: snapshot.to_owned(),
            mappings,
        })
    }

    /// Indices in the way that `on_conflict` does not allow to touch.
    fn blocked_by_conflicts(&self, survey: &Survey) -> Option<Change> {
        let conflicts: Vec<&str> = survey.conflicts().map(|m| m.target.as_str()).collect();
        let refused = matches!(
            self.spec.restore.on_conflict,
            OnConflict::Fail | OnConflict::Rename
        );
        (refused && !conflicts.is_empty()).then(|| Change::Blocked {
            reason: format!(
                "indices {} already exist on domain {}; set `restore.on_conflict` to `replace` \
                 (delete and restore them), `skip` (leave them) or `rename` with a \
                 `rename_pattern` that avoids them",
                conflicts.join(", "),
                self.spec.target.name
            ),
        })
    }

    /// The snapshot (name, indices) given by the snapshot node, if known yet.
    fn snapshot_of(&self, inputs: &Inputs) -> Option<(String, Vec<String>)> {
        let name = inputs.get(&self.spec.snapshot, "name")?;
        let indices = inputs.get(&self.spec.snapshot, "indices")?;
        let name = name.as_str()?.to_owned();
        let indices: Vec<String> = serde_json::from_value(indices.as_known()?.clone()).ok()?;
        Some((name, indices))
    }

    fn outputs(&self, survey: &Survey) -> Outputs {
        let mapping: BTreeMap<&str, &str> = survey
            .mappings
            .iter()
            .map(|m| (m.source.as_str(), m.target.as_str()))
            .collect();
        outputs([
            ("snapshot", json!(survey.snapshot)),
            ("indices", json!(mapping)),
        ])
    }
}

#[async_trait]
impl Resource for RestoreResource {
    fn id(&self) -> &NodeId {
        &self.id
    }

    fn kind(&self) -> &'static str {
        super::RESTORE.name
    }

    fn desired_fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    async fn read(&self, _cx: &Context, inputs: &Inputs) -> Result<Observed, ResourceError> {
        // `None` while the target domain is still to be created: nothing to look at.
        let client = self
            .env
            .data_plane(&self.spec.target)
            .await
            .map_err(|e| super::fail(&self.id, e))?;
        let Some(client) = client else {
            return Ok(Observed::absent());
        };
        let snapshot = self.snapshot_of(inputs);
        let what = self.what(snapshot.as_ref().map_or("(new)", |(name, _)| name.as_str()));
        let all = self.target_indices(&client, &what).await?;
        // The target's own indices (system indices are never restored).
        let existing: Vec<&String> = all.iter().filter(|i| !i.starts_with('.')).collect();
        let mut value = json!({ "existing": existing });
        let present = !existing.is_empty();
        // The snapshot is known before apply (it exists, or the state recorded it): survey what
        // restoring it means. The diff decides whether that is the snapshot to restore.
        let Some((snapshot, indices)) = snapshot else {
            return Ok(Observed {
                exists: present,
                ..Observed::present(value)
            });
        };
        let survey = self.survey_with(&client, &snapshot, &indices, &all).await?;
        value["survey"] = serde_json::to_value(&survey).expect("a survey is JSON");
        let observed = Observed {
            exists: present,
            ..Observed::present(value)
        };
        Ok(if survey.restored() {
            observed.with_outputs(self.outputs(&survey))
        } else if survey.running() && survey.missing().next().is_none() {
            observed.in_progress(format!("restore of {snapshot} is recovering"))
        } else {
            observed
        })
    }

    fn diff(&self, inputs: &Inputs, observed: &Observed) -> Change {
        let on_conflict = self.spec.restore.on_conflict;
        let on_conflict_field = created("on_conflict", json!(on_conflict));
        let change = |fields: Vec<FieldChange>| {
            if observed.exists {
                Change::Update { fields }
            } else {
                Change::Create { fields }
            }
        };
        let snapshot = match inputs.get(&self.spec.snapshot, "name") {
            Some(FieldValue::Known(Value::String(name))) => Some(name),
            _ => None,
        };
        let survey = serde_json::from_value::<Survey>(observed.value["survey"].clone())
            .ok()
            .filter(|s| Some(&s.snapshot) == snapshot.as_ref());
        let Some(survey) = survey else {
            // The snapshot is still to be taken (or the target to be created): all of the
            // restore happens during apply. What is already certain is shown now: indices of
            // the selection that exist on the target stop the restore unless `on_conflict`
            // says what to do with them.
            if let Ok(prospective) =
                serde_json::from_value::<Survey>(observed.value["survey"].clone())
                && let Some(blocked) = self.blocked_by_conflicts(&prospective)
            {
                return blocked;
            }
            let existing = observed.value["existing"]
                .as_array()
                .filter(|a| !a.is_empty())
                .map(|a| FieldValue::Known(Value::Array(a.clone())));
            return change(vec![
                created_unknown("snapshot"),
                FieldChange {
                    path: "indices".into(),
                    before: existing,
                    after: FieldValue::Unknown,
                },
                on_conflict_field,
            ]);
        };
        if survey.mappings.is_empty() {
            return Change::Blocked {
                reason: format!(
                    "restore.indices {:?} selects no index of snapshot {}",
                    self.spec.restore.indices, survey.snapshot
                ),
            };
        }
        if survey.restored() {
            return Change::NoOp;
        }
        if let Some(what) = &observed.in_progress {
            return Change::InProgress { what: what.clone() };
        }
        if let Some(blocked) = self.blocked_by_conflicts(&survey) {
            return blocked;
        }
        let mut indices = Vec::new();
        for m in &survey.mappings {
            if m.from_this_snapshot {
                continue;
            }
            let field = |before: Option<&str>, after: &str| FieldChange {
                path: format!("indices.{}", m.target),
                before: before.map(FieldValue::known),
                after: FieldValue::known(after),
            };
            if !m.exists {
                indices.push(field(None, &format!("restored from {}", m.source)));
            } else if on_conflict == OnConflict::Replace {
                indices.push(field(
                    Some("existing index"),
                    &format!("replaced from {}", m.source),
                ));
            }
        }
        if indices.is_empty() {
            // Everything left is a conflict to skip.
            return Change::NoOp;
        }
        let mut fields = vec![created("snapshot", json!(survey.snapshot))];
        fields.extend(indices);
        fields.push(on_conflict_field);
        change(fields)
    }

    async fn apply(
        &self,
        _cx: &Context,
        inputs: &Inputs,
        _change: &Change,
    ) -> Result<(), ResourceError> {
        let Some((snapshot, indices)) = self.snapshot_of(inputs) else {
            return Err(ResourceError::permanent(
                &self.id,
                "the snapshot to restore is not known; apply the snapshot first",
            ));
        };
        let client = self
            .env
            .require_data_plane(&self.id, &self.spec.target)
            .await?;
        let what = self.what(&snapshot);
        // Survey again right before acting: apply must be safe to repeat after a crash.
        let survey = self.survey(&client, &snapshot, &indices).await?;
        let on_conflict = self.spec.restore.on_conflict;
        let mut to_restore = Vec::new();
        for m in &survey.mappings {
            if m.from_this_snapshot {
                continue;
            }
            if m.exists {
                match on_conflict {
                    OnConflict::Replace => {
                        tracing::info!(index = %m.target, "deleting the target index to replace it");
                        client
                            .delete_index(&m.target)
                            .await
                            .map_err(|e| fail_domain(&self.id, &what, e))?;
                    }
                    OnConflict::Skip => continue,
                    OnConflict::Fail | OnConflict::Rename => {
                        return Err(ResourceError::permanent(
                            &self.id,
                            format!(
                                "index {} already exists on domain {} (restore.on_conflict: {})",
                                m.target,
                                self.spec.target.name,
                                json!(on_conflict).as_str().unwrap_or("fail")
                            ),
                        ));
                    }
                }
            }
            to_restore.push(m.source.clone());
        }
        if to_restore.is_empty() {
            return Ok(());
        }
        // A data stream comes back only when the restore names it (its backing indices alone
        // come back as plain indices, and the stream could never roll over): name each stream of
        // the snapshot whose backing indices are all restored.
        if let Some(info) = client
            .get_snapshot(&self.spec.repository, &snapshot)
            .await
            .map_err(|e| fail_domain(&self.id, &what, e))?
        {
            for stream in &info.data_streams {
                let prefix = format!(".ds-{stream}-");
                let mut backing = info.indices.iter().filter(|i| i.starts_with(&prefix));
                if backing.clone().next().is_some() && backing.all(|i| to_restore.contains(i)) {
                    to_restore.push(stream.clone());
                }
            }
        }
        let index_settings: serde_json::Map<String, Value> = self
            .spec
            .restore
            .index_settings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let request = RestoreRequest {
            indices: to_restore,
            include_global_state: false,
            rename_pattern: self.spec.restore.rename.as_ref().map(|r| r.pattern.clone()),
            rename_replacement: self
                .spec
                .restore
                .rename
                .as_ref()
                .map(|r| r.replacement.clone()),
            index_settings,
            ignore_index_settings: self.spec.restore.ignore_index_settings.clone(),
            partial: false,
        };
        client
            .restore(&self.spec.repository, &snapshot, &request)
            .await
            .map_err(|e| fail_domain(&self.id, &what, e))
    }

    async fn wait(
        &self,
        cx: &Context,
        inputs: &Inputs,
        _progress: &Progress,
    ) -> Result<Outputs, ResourceError> {
        let Some((snapshot, indices)) = self.snapshot_of(inputs) else {
            return Err(ResourceError::permanent(
                &self.id,
                "the snapshot to restore is not known",
            ));
        };
        let client = self
            .env
            .require_data_plane(&self.id, &self.spec.target)
            .await?;
        let what = self.what(&snapshot);
        // Retried like a poll: the restore is running, one lost answer must not fail it.
        let survey = cx
            .retry(|| self.survey(&client, &snapshot, &indices))
            .await?;
        let skipped: Vec<String> = if self.spec.restore.on_conflict == OnConflict::Skip {
            survey.conflicts().map(|m| m.target.clone()).collect()
        } else {
            Vec::new()
        };
        let targets: Vec<String> = survey
            .mappings
            .iter()
            .filter(|m| !skipped.contains(&m.target))
            .map(|m| m.target.clone())
            .collect();
        let id = self.id.clone();
        cx.poll_until(|| {
            let (client, targets, what, id) =
                (client.clone(), targets.clone(), what.clone(), id.clone());
            async move {
                let recovery = client
                    .recovery(&targets)
                    .await
                    .map_err(|e| fail_domain(&id, &what, e))?;
                let (done, total) = recovery_progress(&recovery, &targets);
                if total > 0 && done == total {
                    Ok(PollStatus::Ready(()))
                } else {
                    Ok(PollStatus::Pending {
                        done,
                        total,
                        message: format!("{done} of {total} shards recovered"),
                    })
                }
            }
        })
        .await?;
        let mut survey = survey;
        survey.mappings.retain(|m| !skipped.contains(&m.target));
        Ok(self.outputs(&survey))
    }
}
