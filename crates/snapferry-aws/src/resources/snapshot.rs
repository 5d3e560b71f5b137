//! `snapshot`: a manual snapshot of the source's selected indices into the repository. The
//! name comes from the plan's template, resolved once per run and pinned in the state, so a
//! resumed run waits for the snapshot it started instead of starting another.
//!
//! Writes go on while a snapshot is taken, and what was written meanwhile may or may not be in
//! it. So the source's document counts are read just before the snapshot starts (pinned with
//! the run) and just after it completes, and the pair is an output (`documents`: per index
//! `[before, after]`): what the snapshot holds lies within, and `verify` checks the target
//! against that bracket instead of the source's current counts.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use snapferry_engine::{
    Change, Context, Event, Inputs, NodeId, Observed, Outputs, PollStatus, Progress, Resource,
    ResourceError,
};
use snapferry_plan::SnapshotNode;

use super::{Env, created, fail_domain, outputs};
use crate::opensearch::{CreateSnapshot, SnapshotInfo, SnapshotState, explain_selection};

/// How long a snapshot waits for the one slot a pre-7.9 domain has (an automated snapshot
/// usually takes minutes) before it stops and says so.
const SLOT_WAIT: Duration = Duration::from_secs(20 * 60);

/// The error type of a snapshot refused because another one is running (before 7.9).
const CONCURRENT: &str = "concurrent_snapshot_execution_exception";

/// A snapshot by this name was already started (running: "already in-progress", from
/// Elasticsearch 7.9 and on OpenSearch; finished: "already exists").
fn started_already(e: &crate::domain_http::DomainHttpError) -> bool {
    let text = e.to_string();
    e.error_type() == Some("invalid_snapshot_name_exception")
        && (text.contains("already exists") || text.contains("already in-progress"))
}

pub(crate) struct SnapshotResource {
    id: NodeId,
    fingerprint: String,
    spec: SnapshotNode,
    env: Arc<Env>,
}

impl SnapshotResource {
    pub(crate) fn new(
        id: NodeId,
        fingerprint: String,
        spec: &SnapshotNode,
        env: &Arc<Env>,
    ) -> Self {
        SnapshotResource {
            id,
            fingerprint,
            spec: spec.clone(),
            env: env.clone(),
        }
    }

    /// The snapshot's name for this run (pinned on first use).
    async fn name(&self, cx: &Context) -> Result<String, ResourceError> {
        let resolved = self
            .spec
            .template
            .resolve(&self.spec.replication, self.env.now);
        let pinned = cx.pin("name", move || json!(resolved)).await?;
        Ok(pinned.as_str().unwrap_or_default().to_owned())
    }

    fn what(&self, name: &str) -> String {
        format!(
            "snapshot {name} in repository {} on domain {}",
            self.spec.repository, self.spec.domain.name
        )
    }

    /// The count of each index on the source, all in one retried `_msearch`
    /// ([`crate::opensearch::OpenSearch::counts`]).
    async fn count_each(
        &self,
        cx: &Context,
        client: &crate::opensearch::OpenSearch,
        indices: &[String],
    ) -> Result<std::collections::BTreeMap<String, u64>, ResourceError> {
        cx.retry(|| async {
            client.counts(indices).await.map_err(|e| {
                fail_domain(
                    &self.id,
                    &format!(
                        "counts of {} indices on {}",
                        indices.len(),
                        self.spec.domain.name
                    ),
                    e,
                )
            })
        })
        .await
    }

    fn outputs(&self, info: &SnapshotInfo) -> Outputs {
        let mut indices = info.indices.clone();
        indices.sort();
        let mut out = outputs([
            ("name", json!(info.snapshot)),
            ("repository", json!(self.spec.repository)),
            ("indices", json!(indices)),
        ]);
        if !info.data_streams.is_empty() {
            out.insert(
                "data_streams".to_owned(),
                snapferry_engine::FieldValue::known(json!(info.data_streams)),
            );
        }
        out
    }
}

/// The failed shards of a snapshot, for an error message.
fn failures(info: &SnapshotInfo) -> String {
    if info.failures.is_empty() {
        return format!(
            "{} of {} shards failed",
            info.shards.failed, info.shards.total
        );
    }
    info.failures
        .iter()
        .map(|f| {
            format!(
                "{}[{}]: {}",
                f.index.as_deref().unwrap_or("?"),
                f.shard_id.map_or("?".to_owned(), |s| s.to_string()),
                f.reason.as_deref().unwrap_or("no reason given")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn state_name(state: SnapshotState) -> &'static str {
    match state {
        SnapshotState::InProgress => "IN_PROGRESS",
        SnapshotState::Success => "SUCCESS",
        SnapshotState::Failed => "FAILED",
        SnapshotState::Partial => "PARTIAL",
        SnapshotState::Incompatible => "INCOMPATIBLE",
    }
}

#[async_trait]
impl Resource for SnapshotResource {
    fn id(&self) -> &NodeId {
        &self.id
    }

    fn kind(&self) -> &'static str {
        super::SNAPSHOT.name
    }

    fn desired_fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    async fn read(&self, cx: &Context, _inputs: &Inputs) -> Result<Observed, ResourceError> {
        let name = self.name(cx).await?;
        let Some(client) = self
            .env
            .data_plane(&self.spec.domain)
            .await
            .map_err(|e| super::fail(&self.id, e))?
        else {
            // Shown as blocked by `plan` (with everything else), refused by `apply`.
            return Ok(Observed {
                value: json!({"name": name, "missing": super::missing_source(&self.spec.domain)}),
                ..Observed::absent()
            });
        };
        let found = match client.get_snapshot(&self.spec.repository, &name).await {
            Ok(found) => found,
            // Not registered yet (the repository node creates it): no snapshot either.
            Err(e) if e.error_type() == Some("repository_missing_exception") => None,
            // The repository is there but unusable (its bucket gone, the role refused): show
            // the step blocked with the service's words instead of aborting the whole plan.
            Err(e) if !e.is_transient() => {
                let refused = super::refused_by_security(&e);
                let error = fail_domain(&self.id, &self.what(&name), e);
                let missing = if refused {
                    self.env.security_fix(&self.spec.domain, &error.message)
                } else {
                    format!(
                        "{}; check that the bucket exists and the role can use it",
                        error.message
                    )
                };
                return Ok(Observed {
                    value: json!({"name": name, "missing": missing}),
                    ..Observed::absent()
                });
            }
            Err(e) => return Err(fail_domain(&self.id, &self.what(&name), e)),
        };
        let what = format!("indices of {}", self.spec.domain.name);
        let rows = client
            .cat_indices()
            .await
            .map_err(|e| fail_domain(&self.id, &what, e))?;
        let existing: Vec<String> = rows.iter().map(|i| i.index.clone()).collect();
        let closed: Vec<&str> = rows
            .iter()
            .filter(|i| i.status.as_deref() == Some("close"))
            .map(|i| i.index.as_str())
            .collect();
        let warm = client
            .warm_indices()
            .await
            .map_err(|e| fail_domain(&self.id, &what, e))?;
        let mut selection = explain_selection(&existing, &self.spec.indices);
        // Closed indices fail a snapshot that is not `partial`, and a snapshot cannot mix hot
        // and warm indices (at most one warm index per snapshot): both are left out, and said.
        let (closed_left_out, rest): (Vec<String>, Vec<String>) = selection
            .indices
            .into_iter()
            .partition(|i| closed.contains(&i.as_str()));
        let (warm_left_out, hot): (Vec<String>, Vec<String>) =
            rest.into_iter().partition(|i| warm.contains(i));
        selection.indices = hot;
        // A data stream goes into a snapshot only when the request names it (backing indices
        // named alone come back as plain indices): name each stream whose backing indices are
        // all selected. Asked only when a backing index (`.ds-*`) is selected.
        let streams: Vec<String> = if selection.indices.iter().any(|i| i.starts_with(".ds-")) {
            client
                .data_streams()
                .await
                .map_err(|e| fail_domain(&self.id, &what, e))?
                .into_iter()
                .filter(|d| {
                    !d.indices.is_empty() && d.indices.iter().all(|i| selection.indices.contains(i))
                })
                .map(|d| d.name)
                .collect()
        } else {
            Vec::new()
        };
        let mut value = json!({
            "name": name,
            "selected": selection.indices,
            "unmatched_patterns": selection.unmatched_patterns,
            "system_left_out": selection.system_left_out,
        });
        if !streams.is_empty() {
            value["data_streams"] = json!(streams);
        }
        if !closed_left_out.is_empty() {
            value["closed_left_out"] = json!(closed_left_out);
        }
        if !warm_left_out.is_empty() {
            value["warm_left_out"] = json!(warm_left_out);
        }
        let Some(info) = found else {
            // What dependents' reads may use before apply: the pinned name and the indices the
            // selection matches now (the restore checks its conflicts against them). Their diffs
            // see the snapshot as known after apply, since it is still to be taken.
            let mut selected = selection.indices.clone();
            selected.sort();
            return Ok(Observed {
                value,
                outputs: outputs([
                    ("name", json!(name)),
                    ("repository", json!(self.spec.repository)),
                    ("indices", json!(selected)),
                ]),
                ..Observed::absent()
            });
        };
        value["state"] = json!(state_name(info.state));
        value["failures"] = json!(failures(&info));
        let observed = Observed::present(value);
        Ok(match info.state {
            SnapshotState::InProgress => {
                observed.in_progress(format!("snapshot {name} is being taken"))
            }
            SnapshotState::Success => observed.with_outputs(self.outputs(&info)),
            _ => observed,
        })
    }

    fn diff(&self, _inputs: &Inputs, observed: &Observed) -> Change {
        let name = observed.value["name"].as_str().unwrap_or_default();
        if let Some(missing) = observed.value["missing"].as_str() {
            return Change::Blocked {
                reason: missing.to_owned(),
            };
        }
        if let Some(what) = &observed.in_progress {
            return Change::InProgress { what: what.clone() };
        }
        if observed.exists {
            return match observed.value["state"].as_str() {
                Some("SUCCESS") => Change::NoOp,
                state => Change::Blocked {
                    reason: format!(
                        "{} already exists in state {} ({}); delete it \
                         (DELETE _snapshot/{}/{name}) or change `snapshot.name`, then apply again",
                        self.what(name),
                        state.unwrap_or("unknown"),
                        observed.value["failures"].as_str().unwrap_or_default(),
                        self.spec.repository,
                    ),
                },
            };
        }
        let selected = observed.value["selected"].clone();
        if selected.as_array().is_none_or(Vec::is_empty) {
            return Change::Blocked {
                reason: format!(
                    "snapshot.indices {:?} selects no index on domain {}{}; change the selection",
                    self.spec.indices,
                    self.spec.domain.name,
                    match observed.value["system_left_out"].as_array() {
                        Some(left) if !left.is_empty() => format!(
                            " (system indices are left out unless a pattern starts with `.`: {})",
                            Value::Array(left.clone())
                        ),
                        _ => String::new(),
                    }
                ),
            };
        }
        let mut fields = vec![
            created("name", json!(name)),
            created("repository", json!(self.spec.repository)),
            created("indices", selected),
            created(
                "include_global_state",
                json!(self.spec.include_global_state),
            ),
        ];
        if let Some(streams) = observed.value["data_streams"]
            .as_array()
            .filter(|s| !s.is_empty())
        {
            fields.push(created("data_streams", Value::Array(streams.clone())));
        }
        // What the selection matched but the snapshot leaves out, with why: shown in the plan.
        for (key, why) in [
            (
                "closed_left_out",
                "closed: a snapshot that is not partial fails on a closed index; open them to copy them",
            ),
            (
                "warm_left_out",
                "UltraWarm: a snapshot cannot mix hot and warm indices; migrate them to hot to copy them",
            ),
        ] {
            if let Some(left) = observed.value[key].as_array().filter(|l| !l.is_empty()) {
                let names: Vec<&str> = left.iter().filter_map(Value::as_str).collect();
                fields.push(created(
                    &format!("left_out.{}", &key[..key.find('_').unwrap_or(key.len())]),
                    json!(format!("{} ({why})", names.join(", "))),
                ));
            }
        }
        Change::Create { fields }
    }

    async fn apply(
        &self,
        cx: &Context,
        _inputs: &Inputs,
        change: &Change,
    ) -> Result<(), ResourceError> {
        let name = self.name(cx).await?;
        let client = self
            .env
            .require_data_plane(&self.id, &self.spec.domain)
            .await?;
        let indices: Vec<String> = match change {
            Change::Create { fields } => fields
                .iter()
                .find(|f| f.path == "indices")
                .and_then(|f| f.after.as_known())
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_else(|| self.spec.indices.clone()),
            _ => return Ok(()),
        };
        // The low end of the bracket, pinned before the snapshot starts: a resumed run (or a
        // retry after a lost answer) keeps the first reading.
        let before = self.count_each(cx, &client, &indices).await?;
        cx.pin("documents_before", move || json!(before)).await?;
        // The streams are named beside their backing indices, so the snapshot holds them.
        let streams: Vec<String> = match change {
            Change::Create { fields } => fields
                .iter()
                .find(|f| f.path == "data_streams")
                .and_then(|f| f.after.as_known())
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let request = CreateSnapshot {
            indices: indices.into_iter().chain(streams).collect(),
            include_global_state: self.spec.include_global_state,
            partial: self.spec.partial,
        };
        let deadline = tokio::time::Instant::now() + SLOT_WAIT;
        let mut delay = Duration::from_secs(2);
        loop {
            match client
                .create_snapshot(&self.spec.repository, &name, &request)
                .await
            {
                Ok(()) => return Ok(()),
                // The name is pinned for this run, so a snapshot by that name is the one an
                // earlier attempt started and whose answer was lost (a 504 or a reset after the
                // cluster accepted it): adopt it and wait for it.
                Err(e) if started_already(&e) => return Ok(()),
                Err(e) if e.error_type() == Some(CONCURRENT) => {
                    // Before Elasticsearch 7.9 one snapshot runs at a time. Ours may be the one
                    // holding the slot (its answer lost); otherwise another (the hourly
                    // automated `cs-automated` snapshot) is, and it ends within minutes.
                    if client
                        .get_snapshot(&self.spec.repository, &name)
                        .await
                        .map_err(|e| fail_domain(&self.id, &self.what(&name), e))?
                        .is_some()
                    {
                        return Ok(());
                    }
                    if tokio::time::Instant::now() + delay >= deadline {
                        return Err(ResourceError::permanent(
                            &self.id,
                            format!(
                                "{}: another snapshot kept the domain's only snapshot slot for {} s ({e}); before Elasticsearch 7.9 a domain runs one snapshot at a time, and the hourly automated snapshot or another operator's snapshot holds it: see `GET _snapshot/_status` on {}, then run `snapferry apply` again",
                                self.what(&name),
                                SLOT_WAIT.as_secs(),
                                self.spec.domain.name
                            ),
                        ));
                    }
                    cx.events().emit(Event::Progress {
                        node: cx.node().clone(),
                        done: 0,
                        total: 0,
                        message: format!(
                            "waiting for the snapshot already running on {} (one at a time \
                             before Elasticsearch 7.9) to finish",
                            self.spec.domain.name
                        ),
                    });
                    // Jittered: a fixed step could keep landing in the slot holder's runs
                    // (an hourly snapshot recurs on a fixed schedule) and never find the gap.
                    let pause = delay.mul_f64(rand::Rng::random_range(&mut rand::rng(), 0.5..=1.0));
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = cx.cancellation().cancelled() => {
                            return Err(ResourceError::interrupted(cx.node()));
                        }
                    }
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                Err(e) => return Err(fail_domain(&self.id, &self.what(&name), e)),
            }
        }
    }

    async fn wait(
        &self,
        cx: &Context,
        _inputs: &Inputs,
        _progress: &Progress,
    ) -> Result<Outputs, ResourceError> {
        let name = self.name(cx).await?;
        let client = self
            .env
            .require_data_plane(&self.id, &self.spec.domain)
            .await?;
        let repository = self.spec.repository.clone();
        let what = self.what(&name);
        let info = cx
            .poll_until(|| {
                let client = client.clone();
                let (repository, name, what) = (repository.clone(), name.clone(), what.clone());
                let id = self.id.clone();
                async move {
                    let Some(info) = client
                        .get_snapshot(&repository, &name)
                        .await
                        .map_err(|e| fail_domain(&id, &what, e))?
                    else {
                        return Err(ResourceError::permanent(
                            &id,
                            format!("{what} disappeared while it was being taken"),
                        ));
                    };
                    if info.state != SnapshotState::InProgress {
                        return Ok(PollStatus::Ready(info));
                    }
                    let stats = client
                        .snapshot_status(&repository, &name)
                        .await
                        .map_err(|e| fail_domain(&id, &what, e))?
                        .map(|s| s.shards_stats)
                        .unwrap_or_default();
                    Ok(PollStatus::Pending {
                        done: stats.done,
                        total: stats.total,
                        message: format!("{} of {} shards", stats.done, stats.total),
                    })
                }
            })
            .await?;
        match info.state {
            SnapshotState::Success => {
                let mut outputs = self.outputs(&info);
                // The high end of the bracket, read now that the snapshot is complete. Without
                // a low end (a snapshot this run did not start) there is no bracket.
                let before = cx.pin("documents_before", || Value::Null).await?;
                if let Ok(before) =
                    serde_json::from_value::<std::collections::BTreeMap<String, u64>>(before)
                {
                    let indices: Vec<String> = before.keys().cloned().collect();
                    let after = self.count_each(cx, &client, &indices).await?;
                    let bracket: std::collections::BTreeMap<&String, [u64; 2]> = before
                        .iter()
                        .map(|(index, lo)| (index, [*lo, after.get(index).copied().unwrap_or(*lo)]))
                        .collect();
                    outputs.insert(
                        "documents".to_owned(),
                        snapferry_engine::FieldValue::known(json!(bracket)),
                    );
                }
                Ok(outputs)
            }
            state => Err(ResourceError::permanent(
                &self.id,
                format!(
                    "{what} ended {}: {}; the snapshot stays in the repository for inspection: \
                     delete it (DELETE _snapshot/{repository}/{name}) and apply again",
                    state_name(state),
                    failures(&info)
                ),
            )),
        }
    }

    /// Deletes the snapshot this node took. Its name cannot be resolved again (the template
    /// may hold a date), so the caller hands over what the state recorded: `inputs` carries,
    /// under this node's own id, the node's recorded outputs and pins (`name`). Without a
    /// recorded name there is nothing snapferry knows it created, so nothing is deleted. An
    /// `IN_PROGRESS` snapshot is aborted by the delete; one already gone is fine.
    async fn destroy(&self, _cx: &Context, inputs: &Inputs) -> Result<(), ResourceError> {
        let Some(name) = inputs
            .get(&self.id, "name")
            .and_then(|v| v.as_known().and_then(|v| v.as_str().map(str::to_owned)))
        else {
            return Ok(());
        };
        let Some(client) = self
            .env
            .data_plane(&self.spec.domain)
            .await
            .map_err(|e| super::fail(&self.id, e))?
        else {
            return Ok(());
        };
        match client.delete_snapshot(&self.spec.repository, &name).await {
            Ok(()) => Ok(()),
            Err(e) if e.error_type() == Some("repository_missing_exception") => {
                Err(ResourceError::permanent(
                    &self.id,
                    format!(
                        "cannot delete {}: the repository is not registered any more; register it \
                         again (`snapferry apply`) and destroy again, or delete the snapshot's \
                         files from the bucket by hand",
                        self.what(&name)
                    ),
                ))
            }
            Err(e) => Err(fail_domain(&self.id, &self.what(&name), e)),
        }
    }
}
