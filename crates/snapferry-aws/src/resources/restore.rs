//! `restore`: the snapshot's selected indices restored on the target (system indices never),
//! renamed and with index settings as the plan says; `on_conflict` decides what happens to
//! indices that already exist. Whether an index was already restored from *this* snapshot is
//! read from its *primaries'* recovery source (replicas recover from a peer, `PEER`), or from
//! the index uuids this node recorded when the restore finished (a primary relocated since by a
//! blue/green deployment shows `PEER` too), so a restore done (or under way) is never repeated.
//! Apply deletes an index (`on_conflict: replace`) only when the change it carries out names it.
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
use snapferry_plan::{OnConflict, RestoreNode, RestoreStrategy};

use super::alias_swap::{self, Held, SwapSurvey};
use super::{Env, created, created_unknown, fail_domain, outputs, retention};
use crate::opensearch::{
    CatIndex, OpenSearch, Recovery, RestoreRequest, SnapshotStatus, select_indices,
};

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
    /// The target index's primaries were recovered from this snapshot (or its uuid is the one
    /// recorded when this node restored it)...
    from_this_snapshot: bool,
    /// ...and every primary is done.
    done: bool,
    /// The target index's uuid, when it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uuid: Option<String>,
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

/// Primary shards `done` of `total` in a recovery answer, for the indices given with their
/// number of primaries (`None`: as many as the answer lists). Replicas are left out: they
/// recover from a peer once their primary is active, and a small domain may never place them.
fn recovery_progress(recovery: &Recovery, indices: &[(String, Option<u64>)]) -> (u64, u64) {
    let mut done = 0;
    let mut total = 0;
    for (index, primaries) in indices {
        let shards = recovery.get(index).map(Vec::as_slice).unwrap_or_default();
        let listed = shards.iter().filter(|s| s.primary).count() as u64;
        total += primaries.unwrap_or(listed).max(listed);
        done += shards
            .iter()
            .filter(|s| s.primary && s.stage == "DONE")
            .count() as u64;
    }
    (done, total)
}

/// Whether a recovery answer says the index's primaries came from `repository:snapshot`: at
/// least one primary recovered from it and none from anything else that creates an index
/// (another snapshot, an empty store). A relocated primary (`PEER`) or one reopened from its
/// own files (`EXISTING_STORE`) says nothing either way.
fn primaries_from(
    shards: &[crate::opensearch::ShardRecovery],
    repository: &str,
    snapshot: &str,
) -> bool {
    let mut from_it = false;
    for shard in shards.iter().filter(|s| s.primary) {
        match shard.kind.as_deref() {
            Some("PEER") | Some("EXISTING_STORE") => {}
            _ => {
                let source = shard.source.clone().unwrap_or_default();
                if source.snapshot.as_deref() == Some(snapshot)
                    && source.repository.as_deref() == Some(repository)
                {
                    from_it = true;
                } else {
                    return false;
                }
            }
        }
    }
    from_it
}

/// Whether every primary of an index (`primaries` of them, when known) is listed and done.
fn primaries_done(shards: &[crate::opensearch::ShardRecovery], primaries: Option<u64>) -> bool {
    let done: std::collections::BTreeSet<u64> = shards
        .iter()
        .filter(|s| s.primary && s.stage == "DONE")
        .map(|s| s.id)
        .collect();
    let listed = shards.iter().filter(|s| s.primary).count() as u64;
    let expected = primaries.unwrap_or(listed).max(listed);
    expected > 0 && done.len() as u64 == expected
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
    ) -> Result<Vec<CatIndex>, ResourceError> {
        client
            .cat_indices()
            .await
            .map_err(|e| fail_domain(&self.id, what, e))
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
        self.survey_with(
            client,
            snapshot,
            snapshot_indices,
            &existing,
            &BTreeMap::new(),
        )
        .await
    }

    /// [`Self::survey`] against a list of the target's indices already read. `recorded` holds
    /// the target indices' uuids this node recorded for `snapshot` (target → uuid).
    async fn survey_with(
        &self,
        client: &OpenSearch,
        snapshot: &str,
        snapshot_indices: &[String],
        existing: &[CatIndex],
        recorded: &BTreeMap<String, String>,
    ) -> Result<Survey, ResourceError> {
        let what = self.what(snapshot);
        let selected = select_indices(snapshot_indices, &self.spec.restore.indices);
        let mut mappings = Vec::new();
        let mut present = Vec::new();
        let mut primaries = BTreeMap::new();
        for source in selected {
            let target = self.rename(&source)?;
            let row = existing.iter().find(|i| i.index == target);
            if let Some(row) = row {
                present.push(target.clone());
                primaries.insert(
                    target.clone(),
                    row.pri.as_deref().and_then(|p| p.parse::<u64>().ok()),
                );
            }
            mappings.push(Mapping {
                source,
                target,
                exists: row.is_some(),
                from_this_snapshot: false,
                done: false,
                uuid: row.and_then(|r| r.uuid.clone()),
            });
        }
        if !present.is_empty() {
            let recovery = client
                .recovery(&present)
                .await
                .map_err(|e| fail_domain(&self.id, &what, e))?;
            for mapping in mappings.iter_mut().filter(|m| m.exists) {
                let shards = recovery.get(&mapping.target).cloned().unwrap_or_default();
                let recorded_here = mapping
                    .uuid
                    .as_ref()
                    .is_some_and(|uuid| recorded.get(&mapping.target) == Some(uuid));
                mapping.from_this_snapshot =
                    recorded_here || primaries_from(&shards, &self.spec.repository, snapshot);
                mapping.done = recorded_here
                    || primaries_done(&shards, primaries.get(&mapping.target).copied().flatten());
            }
        }
        Ok(Survey {
            snapshot: snapshot.to_owned(),
            mappings,
        })
    }

    /// The uuids this node recorded for the target indices it restored from `snapshot`.
    fn recorded_uuids(&self, inputs: &Inputs, snapshot: &str) -> BTreeMap<String, String> {
        let same_snapshot = inputs
            .get(&self.id, "snapshot")
            .and_then(|v| v.as_known().cloned())
            == Some(json!(snapshot));
        if !same_snapshot {
            return BTreeMap::new();
        }
        inputs
            .get(&self.id, "uuids")
            .and_then(|v| serde_json::from_value(v.as_known()?.clone()).ok())
            .unwrap_or_default()
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

    /// The snapshot's document bracket (`documents`: per source index `[before, after]`), when
    /// the snapshot node read one, handed on to `verify`.
    fn bracket(&self, inputs: &Inputs) -> Option<Value> {
        inputs
            .get(&self.spec.snapshot, "documents")?
            .as_known()
            .cloned()
    }

    fn outputs(&self, survey: &Survey, bracket: Option<Value>) -> Outputs {
        let mapping: BTreeMap<&str, &str> = survey
            .mappings
            .iter()
            .map(|m| (m.source.as_str(), m.target.as_str()))
            .collect();
        // The record of what this node restored: an index whose uuid is still this one is the
        // restored index, whatever `_recovery` says of its primaries later.
        let uuids: BTreeMap<&str, &str> = survey
            .mappings
            .iter()
            .filter(|m| m.from_this_snapshot)
            .filter_map(|m| Some((m.target.as_str(), m.uuid.as_deref()?)))
            .collect();
        let mut out = outputs([
            ("snapshot", json!(survey.snapshot)),
            ("indices", json!(mapping)),
        ]);
        if !uuids.is_empty() {
            out.insert("uuids".to_owned(), FieldValue::known(json!(uuids)));
        }
        if let Some(bracket) = bracket {
            out.insert("documents".to_owned(), FieldValue::known(bracket));
        }
        out
    }
}

impl RestoreResource {
    /// What `read` sees, before a refusal by the security plugin is kept for `diff`
    /// ([`super::Env::unless_refused`]).
    async fn read_live(&self, _cx: &Context, inputs: &Inputs) -> Result<Observed, ResourceError> {
        // `None` while the target domain is still to be created: nothing to look at.
        let client = self
            .env
            .data_plane(&self.spec.target)
            .await
            .map_err(|e| super::fail(&self.id, e))?;
        let snapshot = self.snapshot_of(inputs);
        let Some(client) = client else {
            // Which indices the target will not be able to read is known already.
            let unreadable = match &snapshot {
                Some((_, indices)) => {
                    super::compat::check(&self.env, &self.id, &self.spec, None, indices).await?
                }
                None => None,
            };
            return Ok(match unreadable {
                Some(reason) => Observed {
                    value: json!({ "unreadable": reason }),
                    ..Observed::absent()
                },
                None => Observed::absent(),
            });
        };
        let what = self.what(snapshot.as_ref().map_or("(new)", |(name, _)| name.as_str()));
        let all = self.target_indices(&client, &what).await?;
        // The target's own indices (system indices are never restored).
        let existing: Vec<&String> = all
            .iter()
            .map(|i| &i.index)
            .filter(|i| !i.starts_with('.'))
            .collect();
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
        let prune = self.prune_list(inputs, &snapshot).await?;
        if !prune.is_empty() {
            value["prune"] = json!(prune);
        }
        if self.spec.restore.strategy == RestoreStrategy::AliasSwap {
            let swap = self
                .swap_survey(&client, &snapshot, &indices, inputs, &all)
                .await?;
            value["swap"] = serde_json::to_value(&swap).expect("a survey is JSON");
            let observed = Observed {
                exists: present,
                ..Observed::present(value)
            };
            return Ok(if swap.settled() {
                let outputs = self.swap_outputs(&swap, inputs, &BTreeMap::new(), None, &prune);
                observed.with_outputs(outputs)
            } else if swap.recovering() {
                observed.in_progress(format!("restore of {snapshot} is recovering"))
            } else {
                observed
            });
        }
        let recorded = self.recorded_uuids(inputs, &snapshot);
        let survey = self
            .survey_with(&client, &snapshot, &indices, &all, &recorded)
            .await?;
        value["survey"] = serde_json::to_value(&survey).expect("a survey is JSON");
        if !survey.restored()
            && let Some(reason) =
                super::compat::check(&self.env, &self.id, &self.spec, Some(&client), &indices)
                    .await?
        {
            value["unreadable"] = json!(reason);
        }
        let observed = Observed {
            exists: present,
            ..Observed::present(value)
        };
        Ok(if survey.restored() {
            let mut outputs = self.outputs(&survey, self.bracket(inputs));
            self.add_own_snapshots(&mut outputs, inputs, &snapshot, &prune);
            observed.with_outputs(outputs)
        } else if survey.running() && survey.missing().next().is_none() {
            observed.in_progress(format!("restore of {snapshot} is recovering"))
        } else {
            observed
        })
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

    async fn read(&self, cx: &Context, inputs: &Inputs) -> Result<Observed, ResourceError> {
        let read = self.read_live(cx, inputs).await;
        self.env
            .unless_refused(&[&self.spec.target, &self.spec.source], read)
    }

    fn diff(&self, inputs: &Inputs, observed: &Observed) -> Change {
        if let Some(change) = super::refused_change(inputs, observed) {
            return change;
        }
        if let Some(reason) = observed.value["unreadable"].as_str() {
            return Change::Blocked {
                reason: reason.to_owned(),
            };
        }
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
        if self.spec.restore.strategy == RestoreStrategy::AliasSwap {
            return self.diff_swap(snapshot.as_ref(), observed);
        }
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
            return match prune_field(observed) {
                Some(field) => Change::Update {
                    fields: vec![field],
                },
                None => Change::NoOp,
            };
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
        fields.extend(prune_field(observed));
        change(fields)
    }

    async fn apply(
        &self,
        _cx: &Context,
        inputs: &Inputs,
        change: &Change,
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
        if self.spec.restore.strategy == RestoreStrategy::AliasSwap {
            return self
                .apply_swap(&client, &snapshot, &indices, inputs, &what)
                .await;
        }
        // Survey again right before acting: apply must be safe to repeat after a crash.
        let survey = self.survey(&client, &snapshot, &indices).await?;
        let on_conflict = self.spec.restore.on_conflict;
        // The indices the change being carried out replaces: an index is deleted only when the
        // change names it (its read knew this node's own record of what it restored, which
        // this fresh survey does not).
        let replacing = replaced_by(change);
        let mut to_restore = Vec::new();
        for m in &survey.mappings {
            if m.from_this_snapshot {
                continue;
            }
            if m.exists {
                match on_conflict {
                    OnConflict::Replace if !replacing.contains(m.target.as_str()) => {
                        tracing::info!(index = %m.target, "not named by the change: left as it is");
                        continue;
                    }
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
        // A data stream is restored only when the request names it: name each stream of the
        // snapshot whose backing indices (`.ds-<stream>-<generation>`) are being restored, so
        // they come back as the stream they were, not as loose indices.
        let streams: Vec<String> = inputs
            .get(&self.spec.snapshot, "data_streams")
            .and_then(|v| serde_json::from_value(v.as_known()?.clone()).ok())
            .unwrap_or_default();
        for stream in streams {
            let prefix = format!(".ds-{stream}-");
            if to_restore.iter().any(|i| i.starts_with(&prefix)) {
                to_restore.push(stream);
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
            without_aliases: false,
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
        if self.spec.restore.strategy == RestoreStrategy::AliasSwap {
            return self
                .wait_swap(cx, &client, &snapshot, &indices, inputs, &what)
                .await;
        }
        // Retried like a poll: the restore is running, one lost answer must not fail it.
        let survey = cx
            .retry(|| self.survey(&client, &snapshot, &indices))
            .await?;
        let skipped: Vec<String> = if self.spec.restore.on_conflict == OnConflict::Skip {
            survey.conflicts().map(|m| m.target.clone()).collect()
        } else {
            Vec::new()
        };
        let rows = cx.retry(|| self.target_indices(&client, &what)).await?;
        let targets: Vec<(String, Option<u64>)> = survey
            .mappings
            .iter()
            .filter(|m| !skipped.contains(&m.target))
            .map(|m| {
                let primaries = rows
                    .iter()
                    .find(|r| r.index == m.target)
                    .and_then(|r| r.pri.as_deref()?.parse().ok());
                (m.target.clone(), primaries)
            })
            .collect();
        self.poll_recovery(cx, &client, &targets, &what).await?;
        // Read again once done, for the record of the restored indices' uuids. An index seen
        // recovering from this snapshot before the wait is this restore's even when its
        // primaries have been relocated since (`PEER`).
        let before = survey;
        let mut survey = cx
            .retry(|| self.survey(&client, &snapshot, &indices))
            .await?;
        for m in &mut survey.mappings {
            m.from_this_snapshot |= before
                .mappings
                .iter()
                .any(|b| b.target == m.target && b.from_this_snapshot && b.uuid == m.uuid);
        }
        survey.mappings.retain(|m| !skipped.contains(&m.target));
        let mut outputs = self.outputs(&survey, self.bracket(inputs));
        // Retention runs once the restore is verified: the restored indices' counts within
        // what the snapshot holds.
        let mut deleted = Vec::new();
        if self.spec.keep.is_some() {
            let pairs: Vec<(String, String)> = survey
                .mappings
                .iter()
                .map(|m| (m.source.clone(), m.target.clone()))
                .collect();
            self.check_counts(cx, &client, &pairs, inputs).await?;
            deleted = self.prune(cx, inputs, &snapshot).await?;
        }
        self.add_own_snapshots(&mut outputs, inputs, &snapshot, &deleted);
        Ok(outputs)
    }
}

/// The `snapshots.deleted` field of a change, when retention has snapshots to delete.
fn prune_field(observed: &Observed) -> Option<FieldChange> {
    let list = observed.value["prune"]
        .as_array()
        .filter(|l| !l.is_empty())?;
    Some(created("snapshots.deleted", Value::Array(list.clone())))
}

/// Retention, `alias_swap` and the record of what this node restored.
impl RestoreResource {
    /// The snapshots this node recorded as restored by it (`snapshots` output).
    fn own_snapshots(&self, inputs: &Inputs) -> std::collections::BTreeSet<String> {
        inputs
            .get(&self.id, "snapshots")
            .and_then(|v| serde_json::from_value(v.as_known()?.clone()).ok())
            .unwrap_or_default()
    }

    /// Records `snapshot` among this node's own, less those just deleted. Only with
    /// `snapshot.keep`: without retention nothing needs the list, and it would only grow.
    fn add_own_snapshots(
        &self,
        outputs: &mut Outputs,
        inputs: &Inputs,
        snapshot: &str,
        deleted: &[String],
    ) {
        if self.spec.keep.is_none() {
            return;
        }
        let mut own = self.own_snapshots(inputs);
        own.insert(snapshot.to_owned());
        own.retain(|s| !deleted.contains(s));
        outputs.insert("snapshots".to_owned(), FieldValue::known(json!(own)));
    }

    /// The snapshots `snapshot.keep` deletes once this restore is verified (none without it).
    async fn prune_list(
        &self,
        inputs: &Inputs,
        snapshot: &str,
    ) -> Result<Vec<String>, ResourceError> {
        let Some(keep) = self.spec.keep else {
            return Ok(Vec::new());
        };
        let Some(client) = self
            .env
            .data_plane(&self.spec.source)
            .await
            .map_err(|e| super::fail(&self.id, e))?
        else {
            return Ok(Vec::new());
        };
        retention::beyond_keep(
            &self.id,
            &client,
            &self.spec.repository,
            &self.own_snapshots(inputs),
            snapshot,
            keep,
        )
        .await
    }

    /// Deletes the snapshots beyond `snapshot.keep`; returns their names.
    async fn prune(
        &self,
        cx: &Context,
        inputs: &Inputs,
        snapshot: &str,
    ) -> Result<Vec<String>, ResourceError> {
        let list = cx.retry(|| self.prune_list(inputs, snapshot)).await?;
        if list.is_empty() {
            return Ok(list);
        }
        let client = self
            .env
            .require_data_plane(&self.id, &self.spec.source)
            .await?;
        retention::delete(&self.id, &client, &self.spec.repository, &list).await?;
        Ok(list)
    }

    /// Counts each restored index (`(source, target)`) and checks it lies within the snapshot's
    /// bracket of the source's counts; without a bracket (a snapshot this run did not take)
    /// there is nothing to hold it to, and `verify` compares with the source. Returns the counts.
    async fn check_counts(
        &self,
        cx: &Context,
        client: &OpenSearch,
        pairs: &[(String, String)],
        inputs: &Inputs,
    ) -> Result<BTreeMap<String, u64>, ResourceError> {
        let brackets: BTreeMap<String, [u64; 2]> = self
            .bracket(inputs)
            .and_then(|b| serde_json::from_value(b).ok())
            .unwrap_or_default();
        let targets: Vec<String> = pairs.iter().map(|(_, t)| t.clone()).collect();
        let counts = cx
            .retry(|| async {
                client.counts(&targets).await.map_err(|e| {
                    fail_domain(
                        &self.id,
                        &format!(
                            "counts of {} restored indices on {}",
                            targets.len(),
                            self.spec.target.name
                        ),
                        e,
                    )
                })
            })
            .await?;
        let mut wrong = Vec::new();
        for (source, target) in pairs {
            let n = counts[target];
            if let Some([lo, hi]) = brackets.get(source)
                && !(*lo..=*hi).contains(&n)
            {
                wrong.push(format!(
                    "{target}: {n} (snapshot holds {lo}..={hi} of {source})"
                ));
            }
        }
        if !wrong.is_empty() {
            return Err(ResourceError::permanent(
                &self.id,
                format!(
                    "restored indices on domain {} hold other counts than the snapshot: {}; \
                     nothing was switched or deleted; delete those indices and apply again",
                    self.spec.target.name,
                    wrong.join(", ")
                ),
            ));
        }
        Ok(counts)
    }

    /// The per-index stats of `snapshot`, when it exists and `skip_unchanged` may use them.
    async fn snapshot_stats(
        &self,
        client: &OpenSearch,
        snapshot: &str,
        held: &BTreeMap<String, Held>,
    ) -> Option<SnapshotStatus> {
        if !self.spec.restore.skip_unchanged || held.is_empty() {
            return None;
        }
        // Unreadable (not taken yet, repository not registered yet): nothing is proven
        // unchanged, so everything is restored.
        client
            .snapshot_status(&self.spec.repository, snapshot)
            .await
            .ok()
            .flatten()
            .filter(|s| s.state == "SUCCESS")
    }

    /// The generations this node recorded, by alias.
    fn held(&self, inputs: &Inputs) -> BTreeMap<String, Held> {
        inputs
            .get(&self.id, "generations")
            .and_then(|v| serde_json::from_value(v.as_known()?.clone()).ok())
            .unwrap_or_default()
    }

    /// The target as `alias_swap` sees it for `snapshot`.
    async fn swap_survey(
        &self,
        client: &OpenSearch,
        snapshot: &str,
        snapshot_indices: &[String],
        inputs: &Inputs,
        rows: &[CatIndex],
    ) -> Result<SwapSurvey, ResourceError> {
        let what = self.what(snapshot);
        let selected: Vec<(String, String)> =
            select_indices(snapshot_indices, &self.spec.restore.indices)
                .into_iter()
                .map(|source| Ok((source.clone(), self.rename(&source)?)))
                .collect::<Result<_, ResourceError>>()?;
        let aliases = client
            .aliases()
            .await
            .map_err(|e| fail_domain(&self.id, &what, e))?;
        let generations: Vec<String> = selected
            .iter()
            .map(|(s, _)| alias_swap::generation(s, snapshot))
            .filter(|g| rows.iter().any(|r| &r.index == g))
            .collect();
        let recovery = if generations.is_empty() {
            Recovery::default()
        } else {
            client
                .recovery(&generations)
                .await
                .map_err(|e| fail_domain(&self.id, &what, e))?
        };
        let held = self.held(inputs);
        let stats = self.snapshot_stats(client, snapshot, &held).await;
        let brackets: BTreeMap<String, [u64; 2]> = self
            .bracket(inputs)
            .and_then(|b| serde_json::from_value(b).ok())
            .unwrap_or_default();
        let unchanged = |source: &str, held: &Held| {
            let Some(stats) = stats.as_ref().and_then(|s| s.indices.get(source)) else {
                return false;
            };
            stats.stats.incremental.file_count == 0
                && stats.stats.total == held.total
                && held
                    .documents
                    .is_some_and(|d| brackets.get(source) == Some(&[d, d]))
        };
        let recorded = self.recorded_uuids(inputs, snapshot);
        let repository = self.spec.repository.clone();
        let primaries = |shards: &[crate::opensearch::ShardRecovery], n: Option<u64>| {
            (
                primaries_from(shards, &repository, snapshot),
                primaries_done(shards, n),
            )
        };
        Ok(alias_swap::survey(
            snapshot, &selected, rows, &aliases, &recovery, &recorded, &held, &unchanged,
            &primaries,
        ))
    }

    /// The outputs of a settled `alias_swap`: the mapping source → alias (what `verify` counts),
    /// the generations' uuids and the record of each alias's generation.
    fn swap_outputs(
        &self,
        swap: &SwapSurvey,
        inputs: &Inputs,
        counts: &BTreeMap<String, u64>,
        stats: Option<&SnapshotStatus>,
        deleted: &[String],
    ) -> Outputs {
        let held = self.held(inputs);
        let brackets: BTreeMap<String, [u64; 2]> = self
            .bracket(inputs)
            .and_then(|b| serde_json::from_value(b).ok())
            .unwrap_or_default();
        let mut mapping = BTreeMap::new();
        let mut uuids = BTreeMap::new();
        let mut generations = BTreeMap::new();
        for slot in &swap.slots {
            if !slot.settled() {
                continue;
            }
            mapping.insert(slot.source.clone(), slot.alias.clone());
            if slot.unchanged {
                if let Some(h) = held.get(&slot.alias) {
                    generations.insert(slot.alias.clone(), h.clone());
                }
                continue;
            }
            if let Some(uuid) = &slot.uuid {
                uuids.insert(slot.generation.clone(), uuid.clone());
            }
            let previous = held
                .get(&slot.alias)
                .filter(|h| h.generation == slot.generation);
            let documents = counts
                .get(&slot.generation)
                .copied()
                .or_else(|| previous.and_then(|h| h.documents))
                .or_else(|| match brackets.get(&slot.source) {
                    Some([lo, hi]) if lo == hi => Some(*lo),
                    _ => None,
                });
            let total = stats
                .and_then(|s| s.indices.get(&slot.source))
                .map(|i| i.stats.total)
                .or_else(|| previous.map(|h| h.total))
                .unwrap_or_default();
            generations.insert(
                slot.alias.clone(),
                Held {
                    generation: slot.generation.clone(),
                    snapshot: swap.snapshot.clone(),
                    total,
                    documents,
                },
            );
        }
        let mut out = outputs([
            ("snapshot", json!(swap.snapshot)),
            ("indices", json!(mapping)),
            ("strategy", json!("alias_swap")),
            ("generations", json!(generations)),
        ]);
        if !uuids.is_empty() {
            out.insert("uuids".to_owned(), FieldValue::known(json!(uuids)));
        }
        if let Some(bracket) = self.bracket(inputs) {
            out.insert("documents".to_owned(), FieldValue::known(bracket));
        }
        self.add_own_snapshots(&mut out, inputs, &swap.snapshot, deleted);
        out
    }

    fn diff_swap(&self, snapshot: Option<&String>, observed: &Observed) -> Change {
        let on_conflict = self.spec.restore.on_conflict;
        let change = |fields: Vec<FieldChange>| {
            if observed.exists {
                Change::Update { fields }
            } else {
                Change::Create { fields }
            }
        };
        let Ok(swap) = serde_json::from_value::<SwapSurvey>(observed.value["swap"].clone()) else {
            // The target is still to be created: all of it happens during apply.
            return change(vec![
                created_unknown("snapshot"),
                created_unknown("indices"),
                created("strategy", json!("alias_swap")),
                created("on_conflict", json!(on_conflict)),
            ]);
        };
        let known = snapshot == Some(&swap.snapshot);
        if swap.slots.is_empty() {
            return Change::Blocked {
                reason: format!(
                    "restore.indices {:?} selects no index of snapshot {}",
                    self.spec.restore.indices, swap.snapshot
                ),
            };
        }
        if known && swap.settled() {
            return match prune_field(observed) {
                Some(field) => Change::Update {
                    fields: vec![field],
                },
                None => Change::NoOp,
            };
        }
        if known && let Some(what) = &observed.in_progress {
            return Change::InProgress { what: what.clone() };
        }
        let replace = on_conflict == OnConflict::Replace;
        let skip = on_conflict == OnConflict::Skip;
        if let Some(reason) = swap.blocked(replace, skip, &self.spec.target.name) {
            return Change::Blocked { reason };
        }
        // The snapshot's name is pinned before it is taken, so every generation is named now;
        // which indices turn out unchanged is only known once the snapshot exists.
        let skipped = swap.skipped(skip);
        let mut fields = vec![created("snapshot", json!(swap.snapshot))];
        for slot in swap
            .slots
            .iter()
            .filter(|s| !s.settled() && !skipped.contains(&s.alias))
        {
            fields.push(FieldChange {
                path: format!("indices.{}", slot.alias),
                before: slot.before().map(FieldValue::known),
                after: FieldValue::known(slot.after()),
            });
        }
        fields.push(created("strategy", json!("alias_swap")));
        fields.push(created("on_conflict", json!(on_conflict)));
        fields.extend(prune_field(observed));
        change(fields)
    }

    /// Requests the restore of every generation still missing, in one `_restore`.
    async fn apply_swap(
        &self,
        client: &OpenSearch,
        snapshot: &str,
        indices: &[String],
        inputs: &Inputs,
        what: &str,
    ) -> Result<(), ResourceError> {
        let rows = self.target_indices(client, what).await?;
        let swap = self
            .swap_survey(client, snapshot, indices, inputs, &rows)
            .await?;
        let on_conflict = self.spec.restore.on_conflict;
        if let Some(reason) = swap.blocked(
            on_conflict == OnConflict::Replace,
            on_conflict == OnConflict::Skip,
            &self.spec.target.name,
        ) {
            return Err(ResourceError::permanent(&self.id, reason));
        }
        let skipped = swap.skipped(on_conflict == OnConflict::Skip);
        let missing: Vec<String> = swap
            .slots
            .iter()
            .filter(|s| !s.settled() && !s.exists && !skipped.contains(&s.alias))
            .map(|s| s.source.clone())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let (pattern, replacement) = alias_swap::rename(snapshot);
        let request = RestoreRequest {
            indices: missing,
            include_global_state: false,
            rename_pattern: Some(pattern),
            rename_replacement: Some(replacement),
            index_settings: self
                .spec
                .restore
                .index_settings
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ignore_index_settings: self.spec.restore.ignore_index_settings.clone(),
            partial: false,
            // The source's aliases are given to a generation in the swap, so no alias ever
            // points at two generations.
            without_aliases: true,
        };
        client
            .restore(&self.spec.repository, snapshot, &request)
            .await
            .map_err(|e| fail_domain(&self.id, what, e))
    }

    /// Waits for the generations, checks their counts, swaps every alias in one atomic call,
    /// then applies retention.
    async fn wait_swap(
        &self,
        cx: &Context,
        client: &OpenSearch,
        snapshot: &str,
        indices: &[String],
        inputs: &Inputs,
        what: &str,
    ) -> Result<Outputs, ResourceError> {
        let rows = cx.retry(|| self.target_indices(client, what)).await?;
        let swap = cx
            .retry(|| self.swap_survey(client, snapshot, indices, inputs, &rows))
            .await?;
        let skipped = swap.skipped(self.spec.restore.on_conflict == OnConflict::Skip);
        let open: Vec<&alias_swap::Slot> = swap
            .slots
            .iter()
            .filter(|s| !s.settled() && !skipped.contains(&s.alias))
            .collect();
        let targets: Vec<(String, Option<u64>)> = open
            .iter()
            .map(|s| {
                let primaries = rows
                    .iter()
                    .find(|r| r.index == s.generation)
                    .and_then(|r| r.pri.as_deref()?.parse().ok());
                (s.generation.clone(), primaries)
            })
            .collect();
        if !targets.is_empty() {
            self.poll_recovery(cx, client, &targets, what).await?;
        }
        // Verified before anything is switched: a wrong count stops here, readers still on
        // the previous generation.
        let pairs: Vec<(String, String)> = open
            .iter()
            .map(|s| (s.source.clone(), s.generation.clone()))
            .collect();
        let counts = self.check_counts(cx, client, &pairs, inputs).await?;
        let rows = cx.retry(|| self.target_indices(client, what)).await?;
        let mut swap = cx
            .retry(|| self.swap_survey(client, snapshot, indices, inputs, &rows))
            .await?;
        let actions = if swap.settled() {
            Vec::new()
        } else {
            let source = self
                .env
                .require_data_plane(&self.id, &self.spec.source)
                .await?;
            let source_aliases = cx
                .retry(|| async {
                    source.aliases().await.map_err(|e| {
                        fail_domain(
                            &self.id,
                            &format!("aliases of {}", self.spec.source.name),
                            e,
                        )
                    })
                })
                .await?;
            alias_swap::actions(&swap, &skipped, &source_aliases)
        };
        if !actions.is_empty() {
            tracing::info!(
                actions = actions.len(),
                "swapping aliases in one _aliases call"
            );
            if let Err(e) = client.update_aliases(&actions).await {
                // A lost answer may hide a swap that was made: read again before failing.
                let rows = cx.retry(|| self.target_indices(client, what)).await?;
                let again = cx
                    .retry(|| self.swap_survey(client, snapshot, indices, inputs, &rows))
                    .await?;
                if again
                    .slots
                    .iter()
                    .any(|s| !s.settled() && !skipped.contains(&s.alias))
                {
                    return Err(fail_domain(&self.id, what, e));
                }
            }
            let rows = cx.retry(|| self.target_indices(client, what)).await?;
            swap = cx
                .retry(|| self.swap_survey(client, snapshot, indices, inputs, &rows))
                .await?;
        }
        let stats = self.snapshot_stats_any(client, snapshot).await;
        let deleted = if self.spec.keep.is_some() {
            self.prune(cx, inputs, snapshot).await?
        } else {
            Vec::new()
        };
        Ok(self.swap_outputs(&swap, inputs, &counts, stats.as_ref(), &deleted))
    }

    /// The snapshot's stats for the record of a generation (whatever `skip_unchanged` says).
    async fn snapshot_stats_any(
        &self,
        client: &OpenSearch,
        snapshot: &str,
    ) -> Option<SnapshotStatus> {
        client
            .snapshot_status(&self.spec.repository, snapshot)
            .await
            .ok()
            .flatten()
    }

    /// Polls `_recovery` of `targets` until every primary is done: one request per poll (plus
    /// `_cluster/allocation/explain` only for a primary no node has taken).
    async fn poll_recovery(
        &self,
        cx: &Context,
        client: &OpenSearch,
        targets: &[(String, Option<u64>)],
        what: &str,
    ) -> Result<(), ResourceError> {
        let names: Vec<String> = targets.iter().map(|(n, _)| n.clone()).collect();
        let id = self.id.clone();
        cx.poll_until(|| {
            let (client, targets, names, what, id) = (
                client.clone(),
                targets.to_vec(),
                names.clone(),
                what.to_owned(),
                id.clone(),
            );
            async move {
                let recovery = client
                    .recovery(&names)
                    .await
                    .map_err(|e| fail_domain(&id, &what, e))?;
                let (done, total) = recovery_progress(&recovery, &targets);
                if total > 0 && done == total {
                    return Ok(PollStatus::Ready(()));
                }
                if let Some(stuck) = unassigned_primary(&recovery, &targets)
                    && let Some(reason) = unassignable(&client, &stuck, &id, &what).await?
                {
                    return Err(ResourceError::permanent(&id, reason));
                }
                Ok(PollStatus::Pending {
                    done,
                    total,
                    message: format!("{done} of {total} primary shards recovered"),
                })
            }
        })
        .await
    }
}

/// The target indices a change replaces (`indices.<target>: existing index → replaced from …`).
fn replaced_by(change: &Change) -> std::collections::BTreeSet<&str> {
    let fields = match change {
        Change::Create { fields } | Change::Update { fields } | Change::Replace { fields } => {
            fields.as_slice()
        }
        Change::NoOp | Change::InProgress { what: _ } | Change::Blocked { reason: _ } => &[],
    };
    fields
        .iter()
        .filter(|f| f.before.is_some())
        .filter_map(|f| f.path.strip_prefix("indices."))
        .collect()
}

/// The first primary (index, shard) the recovery answer does not list: no node has it yet.
fn unassigned_primary(
    recovery: &Recovery,
    targets: &[(String, Option<u64>)],
) -> Option<(String, u64)> {
    targets.iter().find_map(|(index, primaries)| {
        let listed: std::collections::BTreeSet<u64> = recovery
            .get(index)
            .into_iter()
            .flatten()
            .filter(|s| s.primary)
            .map(|s| s.id)
            .collect();
        (0..primaries.unwrap_or(0))
            .find(|shard| !listed.contains(shard))
            .map(|shard| (index.clone(), shard))
    })
}

/// Why a primary cannot be assigned, from `_cluster/allocation/explain`; `None` while it can
/// still be (it is being allocated, or throttled).
async fn unassignable(
    client: &OpenSearch,
    (index, shard): &(String, u64),
    id: &NodeId,
    what: &str,
) -> Result<Option<String>, ResourceError> {
    let explained = client
        .allocation_explain(index, *shard, true)
        .await
        .map_err(|e| fail_domain(id, what, e))?;
    if explained.current_state != "unassigned" || explained.can_allocate.as_deref() != Some("no") {
        return Ok(None);
    }
    let reasons = explained.reasons();
    Ok(Some(format!(
        "shard {shard} of index {index} cannot be assigned on the target, so its restore can \
         never finish: {}{}; change the index settings the restore gives it \
         (`restore.index_settings`, `restore.ignore_index_settings`) or the target's nodes, \
         delete the index and apply again",
        explained
            .allocate_explanation
            .as_deref()
            .unwrap_or("no node may take it"),
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join("; "))
        }
    )))
}
