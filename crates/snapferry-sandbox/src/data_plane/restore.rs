//! Restore and recovery. A restore reads the snapshot's data back from the bucket (so what comes
//! back is what the snapshot really wrote), refuses a snapshot or an index this version cannot
//! read (by the version that *created* the index), refuses to overwrite an open index as
//! OpenSearch does (a closed one is restored over), applies rename/index_settings/
//! ignore_index_settings, recreates the data streams it restores, and starts a recovery per index.
//! `<index>/_recovery` then lists each assigned shard copy: primaries recover from the snapshot
//! (`SNAPSHOT`), replicas from their primary's node (`PEER`), and a relocated primary shows `PEER`
//! too; copies that cannot be assigned are not listed at all. The bare `/_recovery` is refused by
//! the router, as Amazon OpenSearch Service refuses it.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::cluster::{self, CopyState, Node};
use super::indices::{Index, flatten_settings, resolve};
use super::shard_files;
use super::snapshot::{repository_missing, snapshot_missing};
use super::version::id_to_string;
use super::{DataStream, DomainData, Req};
use crate::Shared;
use crate::http::{Resp, json as json_resp, os_error};

/// An index being recovered from a snapshot.
#[derive(Debug, Clone)]
pub struct Recovery {
    pub started: Instant,
    pub ends_at: Instant,
    pub repository: String,
    pub snapshot: String,
    /// The snapshot's version (`source.version` in `_recovery`).
    pub version: String,
    /// The index's name in the snapshot (before any rename).
    pub source_index: String,
    pub restore_uuid: String,
    pub bytes: u64,
    pub files: u64,
}

fn restore_exception(repo: &str, snap: &str, uuid: &str, why: &str) -> Resp {
    os_error(
        500,
        "snapshot_restore_exception",
        &format!("[{repo}:{snap}/{uuid}] {why}"),
    )
}

/// A restored index whose name is an existing alias's: OpenSearch's `validateIndexName`
/// (through `RestoreService`) refuses it before anything is created.
fn alias_in_the_way(state: &super::DataState, targets: &[&String]) -> Option<Resp> {
    let name = targets
        .iter()
        .find(|t| !state.indices.contains_key(**t) && super::aliases::is_alias(state, t))?;
    let reason = format!("Invalid index name [{name}], already exists as alias");
    let cause = json!({"type": "invalid_index_name_exception", "reason": reason, "index": name, "index_uuid": "_na_"});
    Some(json_resp(
        400,
        &json!({"error": {"root_cause": [cause], "type": "invalid_index_name_exception", "reason": reason, "index": name, "index_uuid": "_na_"}, "status": 400}),
    ))
}

fn as_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => s.split(',').map(|p| p.trim().to_owned()).collect(),
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

pub async fn restore(
    shared: &Shared,
    data: &DomainData,
    repo: &str,
    snap: &str,
    req: &Req,
) -> Resp {
    let Some(r) = data.lock().repos.get(repo).cloned() else {
        return repository_missing(repo);
    };
    let body = match req.json_body() {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let info: Value = match shared.blobs.get(&r.bucket, &r.meta_key(snap)).await {
        Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Ok(None) => return snapshot_missing(repo, snap),
        Err(e) => {
            return os_error(
                500,
                "repository_exception",
                &format!("[{repo}] cannot read the repository: {e:?}"),
            );
        }
    };
    let uuid = info["uuid"].as_str().unwrap_or("").to_owned();
    let now = shared.clock.now();
    if data
        .lock()
        .runs
        .get(&(repo.to_owned(), snap.to_owned()))
        .is_some_and(|run| now < run.ends_at)
    {
        return restore_exception(
            repo,
            snap,
            &uuid,
            "cannot restore a snapshot that is still in progress",
        );
    }
    let snapshot_version = info["version_id"].as_u64().unwrap_or(0) as u32;
    if snapshot_version > data.engine.id() {
        return restore_exception(
            repo,
            snap,
            &uuid,
            &format!(
                "the snapshot was created with {} version [{}] which is higher than the version of this node [{}]",
                data.engine.product(),
                id_to_string(snapshot_version),
                data.engine.number()
            ),
        );
    }
    let state = info["state"].as_str().unwrap_or("");
    if state == "FAILED" {
        return restore_exception(repo, snap, &uuid, "unsupported snapshot state [FAILED]");
    }
    let in_snapshot: Vec<String> = as_list(&info["indices"]);
    let failed: Vec<String> = info["failures"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["index"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let expr = match &body["indices"] {
        Value::Null => "_all".to_owned(),
        v => as_list(v).join(","),
    };
    let streams_in_snapshot: Vec<DataStream> = match shared
        .blobs
        .get(&r.bucket, &super::snapshot::streams_key(&r, snap))
        .await
    {
        Ok(Some(bytes)) => serde_json::from_slice::<Vec<Value>>(&bytes)
            .unwrap_or_default()
            .iter()
            .map(super::snapshot::stream_from_json)
            .collect(),
        _ => Vec::new(),
    };
    let (expr, wanted_streams) = {
        let mut view = super::DataState::default();
        for d in &streams_in_snapshot {
            view.data_streams.insert(d.name.clone(), d.clone());
        }
        view.expand_streams(&expr)
    };
    let expr = if expr.is_empty() {
        "_all".to_owned()
    } else {
        expr
    };
    let ignore_unavailable = body["ignore_unavailable"].as_bool().unwrap_or(false);
    let mut selected = Vec::new();
    for part in expr.split(',') {
        match resolve(&in_snapshot, part) {
            Ok(found) => selected.extend(found),
            Err(_) if ignore_unavailable => {}
            Err(missing) => {
                return restore_exception(
                    repo,
                    snap,
                    &uuid,
                    &format!("index [{missing}] not found in snapshot"),
                );
            }
        }
    }
    if expr == "_all" || expr == "*" {
        selected.extend(in_snapshot.iter().filter(|n| n.starts_with('.')).cloned());
    }
    selected.sort();
    selected.dedup();
    if let Some(bad) = selected.iter().find(|n| failed.contains(n))
        && !body["partial"].as_bool().unwrap_or(false)
    {
        return restore_exception(
            repo,
            snap,
            &uuid,
            &format!("index [{bad}] wasn't fully snapshotted - cannot restore"),
        );
    }
    selected.retain(|n| !failed.contains(n));
    let rename = match (
        body["rename_pattern"].as_str(),
        body["rename_replacement"].as_str(),
    ) {
        (Some(p), Some(rep)) => match regex::Regex::new(p) {
            Ok(re) => Some((re, rep.to_owned())),
            Err(e) => {
                return os_error(
                    400,
                    "illegal_argument_exception",
                    &format!("invalid rename_pattern [{p}]: {e}"),
                );
            }
        },
        _ => None,
    };
    let targets: Vec<(String, String)> = selected
        .iter()
        .map(|n| {
            let target = match &rename {
                Some((re, rep)) => re.replace_all(n, rep.as_str()).into_owned(),
                None => n.clone(),
            };
            (n.clone(), target)
        })
        .collect();
    {
        let state = data.lock();
        if let Some((_, t)) = targets
            .iter()
            .find(|(_, t)| state.indices.get(t).is_some_and(|i| !i.closed))
        {
            return restore_exception(
                repo,
                snap,
                &uuid,
                &format!(
                    "cannot restore index [{t}] because an open index with same name already exists in the cluster. Either close or delete the existing index or restore the index under a different name by providing a rename pattern and replacement name"
                ),
            );
        }
        let names: Vec<&String> = targets.iter().map(|(_, t)| t).collect();
        if let Some(refused) = alias_in_the_way(&state, &names) {
            return refused;
        }
    }
    let extra = body
        .get("index_settings")
        .map(flatten_settings)
        .unwrap_or_default();
    let ignored: Vec<String> = as_list(&body["ignore_index_settings"])
        .into_iter()
        .map(|k| {
            if k.starts_with("index.") {
                k
            } else {
                format!("index.{k}")
            }
        })
        .collect();
    let mut restored = Vec::new();
    for (source, target) in &targets {
        let bytes = match shared
            .blobs
            .get(&r.bucket, &r.index_key(snap, source))
            .await
        {
            Ok(Some(b)) => b,
            Ok(None) => {
                return restore_exception(
                    repo,
                    snap,
                    &uuid,
                    &format!("index [{source}] data is missing from the repository"),
                );
            }
            Err(e) => {
                return os_error(
                    500,
                    "repository_exception",
                    &format!("[{repo}] cannot read snapshot data: {e:?}"),
                );
            }
        };
        let payload: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let mut settings: BTreeMap<String, String> = payload["settings"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        for key in &ignored {
            settings.retain(|k, _| !super::indices::glob(key, k));
        }
        settings.extend(extra.clone());
        let created = settings
            .get("index.version.created")
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(snapshot_version);
        let (minimum, minimum_text) = data.engine.minimum_index_compatibility();
        if created < minimum {
            let reason = format!(
                "[{repo}:{snap}/{uuid}] cannot restore index [{source}] because it cannot be upgraded"
            );
            let cause = format!(
                "The index [[{source}/{}]] was created with version [{}] but the minimum compatible version is [{minimum_text}]. It should be re-indexed in {} {}.x before upgrading to {}.",
                settings.get("index.uuid").cloned().unwrap_or_default(),
                id_to_string(created),
                data.engine.product(),
                minimum_text.split('.').next().unwrap_or(""),
                data.engine.number()
            );
            return json_resp(
                500,
                &json!({"error": {
                    "root_cause": [{"type": "snapshot_restore_exception", "reason": reason}],
                    "type": "snapshot_restore_exception",
                    "reason": reason,
                    "caused_by": {"type": "illegal_state_exception", "reason": cause}
                }, "status": 500}),
            );
        }
        let mut index = Index::new(
            target,
            &data.engine,
            None,
            Some(payload["mappings"].clone()),
        );
        let uuid_new = index.uuid();
        index.settings.extend(settings);
        index.settings.insert("index.uuid".into(), uuid_new);
        index
            .settings
            .insert("index.provided_name".into(), target.clone());
        if body["include_aliases"].as_bool().unwrap_or(true) {
            index.aliases = match &payload["aliases"] {
                Value::Object(o) => o.clone().into_iter().collect(),
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(|n| (n.to_owned(), json!({}))))
                    .collect(),
                _ => BTreeMap::new(),
            };
        }
        // A backing index belongs to a stream only when its stream is restored with it;
        // otherwise it comes back as a plain index.
        index.data_stream = payload["data_stream"]
            .as_str()
            .filter(|s| wanted_streams.iter().any(|w| w == s))
            .map(|s| match &rename {
                Some((re, rep)) => re.replace_all(s, rep.as_str()).into_owned(),
                None => s.to_owned(),
            });
        // A restore copies every file of the index, whatever an earlier restore brought.
        let copied = match shard_files::read_docs(shared, &r, &payload).await {
            Ok(Some((docs, bytes, files))) => {
                index.docs = docs;
                (bytes, files)
            }
            Ok(None) => {
                return restore_exception(
                    repo,
                    snap,
                    &uuid,
                    &format!("index [{source}] data is missing from the repository"),
                );
            }
            Err(e) => {
                return os_error(
                    500,
                    "repository_exception",
                    &format!("[{repo}] cannot read snapshot data: {e:?}"),
                );
            }
        };
        restored.push((target.clone(), index, copied));
    }
    let now = shared.clock.now();
    let mut last_end = now;
    let shards: u64;
    {
        let mut state = data.lock();
        if let Some((t, _, _)) = restored
            .iter()
            .find(|(t, _, _)| state.indices.get(t).is_some_and(|i| !i.closed))
        {
            return restore_exception(
                repo,
                snap,
                &uuid,
                &format!(
                    "cannot restore index [{t}] because an open index with same name already exists in the cluster. Either close or delete the existing index or restore the index under a different name by providing a rename pattern and replacement name"
                ),
            );
        }
        let names: Vec<&String> = restored.iter().map(|(t, _, _)| t).collect();
        if let Some(refused) = alias_in_the_way(&state, &names) {
            return refused;
        }
        if let Some((t, i, _)) = restored.iter().find(|(t, i, _)| {
            state
                .indices
                .get(t)
                .is_some_and(|old| old.closed && old.shards() != i.shards())
        }) {
            let source = targets.iter().find(|(_, tt)| tt == t).map_or(t, |(s, _)| s);
            return restore_exception(
                repo,
                snap,
                &uuid,
                &format!(
                    "cannot restore index [{t}] with [{}] shards from a snapshot of index [{source}] with [{}] shards",
                    state.indices[t].shards(),
                    i.shards()
                ),
            );
        }
        shards = restored.iter().map(|(_, i, _)| i.shards()).sum();
        let restore_uuid = uuid::Uuid::new_v4().simple().to_string()[..22].to_owned();
        let version = info["version"].as_str().unwrap_or("").to_owned();
        // One bandwidth for the whole restore: after the fixed part, the indices' files are
        // copied one index after another, so each ends once the bytes before it and its own are.
        let l = &shared.config.latencies;
        let mut copied_secs = l.restore_secs;
        for (target, index, (bytes, files)) in restored.iter().cloned() {
            let source_index = targets
                .iter()
                .find(|(_, t)| *t == target)
                .map_or_else(|| target.clone(), |(s, _)| s.clone());
            let started = now + shared.config.scaled(copied_secs);
            copied_secs += l.restore_secs_per_kib * bytes as f64 / 1024.0;
            let ends_at = now + shared.config.scaled(copied_secs);
            last_end = last_end.max(ends_at);
            state.recoveries.insert(
                target.clone(),
                Recovery {
                    started,
                    ends_at,
                    repository: repo.to_owned(),
                    snapshot: snap.to_owned(),
                    version: version.clone(),
                    source_index,
                    restore_uuid: restore_uuid.clone(),
                    bytes,
                    files,
                },
            );
            state.indices.insert(target, index);
        }
        for d in streams_in_snapshot
            .iter()
            .filter(|d| wanted_streams.contains(&d.name))
        {
            let rename = |n: &str| match &rename {
                Some((re, rep)) => re.replace_all(n, rep.as_str()).into_owned(),
                None => n.to_owned(),
            };
            let stream = DataStream {
                name: rename(&d.name),
                timestamp_field: d.timestamp_field.clone(),
                generation: d.generation,
                indices: d.indices.iter().map(|i| rename(i)).collect(),
            };
            state.data_streams.insert(stream.name.clone(), stream);
        }
    }
    let nodes = cluster::nodes(shared, data);
    let unassignable = {
        let state = data.lock();
        restored.iter().any(|(t, _, _)| {
            cluster::copies(
                shared,
                &state.indices[t],
                state.recoveries.get(t),
                &nodes,
                last_end,
            )
            .iter()
            .any(|c| c.primary && c.state == CopyState::Unassigned)
        })
    };
    if req.flag("wait_for_completion") {
        if unassignable {
            // The restore never completes; the load balancer gives up on the request.
            tokio::time::sleep(shared.config.scaled(60.0)).await;
            return crate::http::gateway_timeout();
        }
        shared.clock.sleep_until(last_end).await;
        json_resp(
            200,
            &json!({"snapshot": {
                "snapshot": snap,
                "indices": restored.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
                "shards": {"total": shards, "failed": 0, "successful": shards},
            }}),
        )
    } else {
        json_resp(200, &json!({"accepted": true}))
    }
}

fn percent(p: f64) -> String {
    format!("{:.1}%", p * 100.0)
}

/// One shard copy's recovery, as `_recovery` shows it.
#[allow(clippy::too_many_arguments)]
fn recovery_entry(
    shard: u32,
    kind: &str,
    primary: bool,
    source: Value,
    target: &Node,
    (start_millis, elapsed, done, p): (i64, i64, bool, f64),
    bytes: u64,
    files: u64,
) -> Value {
    let recovered_bytes = (bytes as f64 * p) as u64;
    let mut s = json!({
        "id": shard,
        "type": kind,
        "stage": if done { "DONE" } else { "INDEX" },
        "primary": primary,
        "start_time_in_millis": start_millis,
        "total_time_in_millis": elapsed,
        "source": source,
        "target": target.recovery_json(),
        "index": {
            "size": {"total_in_bytes": bytes, "reused_in_bytes": 0, "recovered_in_bytes": recovered_bytes, "percent": percent(if bytes == 0 { if done { 1.0 } else { 0.0 } } else { p })},
            "files": {"total": files, "reused": 0, "recovered": if done { files } else { 0 }, "percent": percent(if done { 1.0 } else { 0.0 })},
            "total_time_in_millis": elapsed,
            "source_throttle_time_in_millis": 0,
            "target_throttle_time_in_millis": 0
        },
        "translog": {"recovered": 0, "total": 0, "percent": "100.0%", "total_on_start": 0, "total_time_in_millis": 0},
        "verify_index": {"check_index_time_in_millis": 0, "total_time_in_millis": 0},
    });
    if done {
        s["stop_time_in_millis"] = json!(start_millis + elapsed);
    }
    s
}

pub fn recovery(shared: &Shared, data: &DomainData, expr: &str, active_only: bool) -> Resp {
    let nodes = cluster::nodes(shared, data);
    let state = data.lock();
    let names: Vec<String> = state.indices.keys().cloned().collect();
    let (expanded, _) = state.expand_streams(expr);
    let selected = match resolve(&names, &expanded) {
        Ok(s) => s,
        Err(missing) => return super::indices::index_not_found(&missing),
    };
    let wildcard = expr == "_all" || expr.contains('*');
    let selected: Vec<String> = if expr == "_all" || expr == "*" {
        names
    } else {
        selected
    };
    let now = shared.clock.now();
    let now_millis = chrono::Utc::now().timestamp_millis();
    let relocate_after = data.seed.relocate_primaries_after_secs;
    let mut out = serde_json::Map::new();
    for name in selected {
        let index = &state.indices[&name];
        if index.closed {
            if wildcard {
                continue;
            }
            return super::indices::index_closed(&name, &index.uuid());
        }
        let recovery = state.recoveries.get(&name);
        let files = recovery.map_or(0, |r| r.files);
        let bytes = recovery.map_or(0, |r| r.bytes) / index.shards().max(1);
        let millis_at =
            |at: Instant| now_millis - (now.saturating_duration_since(at)).as_millis() as i64;
        let timing = |start: Instant, end: Instant| {
            let done = now >= end;
            let elapsed = (now.min(end).saturating_duration_since(start)).as_millis() as i64;
            (
                millis_at(start),
                elapsed,
                done,
                shared.clock.progress(start, end),
            )
        };
        let mut shards = Vec::new();
        for copy in cluster::copies(shared, index, recovery, &nodes, now) {
            let Some(n) = copy.node else { continue };
            let target = &nodes[n];
            let entry = if copy.primary {
                let relocated_at = match (recovery, relocate_after) {
                    (Some(_), Some(after)) => Some(copy.ends_at + shared.config.scaled(after)),
                    (None, Some(after)) => Some(data.started + shared.config.scaled(after)),
                    _ => None,
                }
                .filter(|at| now >= *at);
                match (relocated_at, recovery) {
                    (Some(at), _) => {
                        // A blue/green deployment moved the primary to a new node.
                        let new_node = cluster::node(shared, data, nodes.len() as u32 + copy.shard);
                        let end = at + shared.config.scaled(1.0);
                        recovery_entry(
                            copy.shard,
                            "PEER",
                            true,
                            target.recovery_json(),
                            &new_node,
                            timing(at, end),
                            bytes,
                            files,
                        )
                    }
                    (None, Some(r)) => recovery_entry(
                        copy.shard,
                        "SNAPSHOT",
                        true,
                        json!({"repository": r.repository, "snapshot": r.snapshot, "version": r.version, "index": r.source_index, "restoreUUID": r.restore_uuid}),
                        target,
                        timing(copy.started, copy.ends_at),
                        bytes,
                        files,
                    ),
                    (None, None) => recovery_entry(
                        copy.shard,
                        "EMPTY_STORE",
                        true,
                        json!({}),
                        target,
                        (index.creation_millis(), 0, true, 1.0),
                        0,
                        0,
                    ),
                }
            } else {
                let primary_node = cluster::copies(shared, index, recovery, &nodes, now)
                    .into_iter()
                    .find(|c| c.primary && c.shard == copy.shard)
                    .and_then(|c| c.node)
                    .unwrap_or(0);
                recovery_entry(
                    copy.shard,
                    "PEER",
                    false,
                    nodes[primary_node].recovery_json(),
                    target,
                    timing(copy.started, copy.ends_at),
                    bytes,
                    files,
                )
            };
            if active_only && entry["stage"] == "DONE" {
                continue;
            }
            shards.push(entry);
        }
        if active_only && shards.is_empty() {
            continue;
        }
        out.insert(name, json!({ "shards": shards }));
    }
    json_resp(200, &Value::Object(out))
}
