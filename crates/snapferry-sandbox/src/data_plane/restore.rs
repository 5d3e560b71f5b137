//! Restore and recovery. A restore reads the snapshot's data back from the bucket (so what comes
//! back is what the snapshot really wrote), refuses to overwrite an open index as OpenSearch does,
//! applies rename/index_settings/ignore_index_settings, and starts a recovery per index that
//! `_all/_recovery` and `<index>/_recovery` report until it is done. The bare `/_recovery` is
//! refused by the router, as Amazon OpenSearch Service refuses it.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::indices::{Index, flatten_settings, resolve};
use super::snapshot::{repository_missing, snapshot_missing};
use super::{DomainData, Req};
use crate::Shared;
use crate::http::{Resp, json as json_resp, os_error};

/// An index being recovered from a snapshot.
#[derive(Debug, Clone)]
pub struct Recovery {
    pub started: Instant,
    pub ends_at: Instant,
    pub start_millis: i64,
    pub repository: String,
    pub snapshot: String,
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
        if let Some((_, t)) = targets.iter().find(|(_, t)| state.indices.contains_key(t)) {
            return restore_exception(
                repo,
                snap,
                &uuid,
                &format!(
                    "cannot restore index [{t}] because an open index with same name already exists in the cluster. Either close or delete the existing index or restore the index under a different name by providing a rename pattern and replacement name"
                ),
            );
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
        let mut index = Index::new(target, None, Some(payload["mappings"].clone()));
        let uuid_new = index.uuid();
        index.settings.extend(settings);
        index.settings.insert("index.uuid".into(), uuid_new);
        index
            .settings
            .insert("index.provided_name".into(), target.clone());
        if body["include_aliases"].as_bool().unwrap_or(true) {
            index.aliases = payload["aliases"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
        }
        for pair in payload["docs"].as_array().into_iter().flatten() {
            if let (Some(id), Some(doc)) = (pair[0].as_str(), pair.get(1)) {
                index.docs.insert(id.to_owned(), doc.clone());
            }
        }
        restored.push((target.clone(), index, bytes.len() as u64));
    }
    let now = shared.clock.now();
    let start_millis = chrono::Utc::now().timestamp_millis();
    let mut last_end = now;
    let shards: u64;
    {
        let mut state = data.lock();
        if let Some((t, _, _)) = restored
            .iter()
            .find(|(t, _, _)| state.indices.contains_key(t))
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
        shards = restored.iter().map(|(_, i, _)| i.shards()).sum();
        for (target, index, bytes) in restored.iter().cloned() {
            let l = &shared.config.latencies;
            let secs =
                l.restore_secs + l.restore_secs_per_1000_docs * index.docs.len() as f64 / 1000.0;
            let ends_at = now + shared.config.scaled(secs);
            last_end = last_end.max(ends_at);
            state.recoveries.insert(
                target.clone(),
                Recovery {
                    started: now,
                    ends_at,
                    start_millis,
                    repository: repo.to_owned(),
                    snapshot: snap.to_owned(),
                    bytes,
                    files: 1,
                },
            );
            state.indices.insert(target, index);
        }
    }
    if req.flag("wait_for_completion") {
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

pub fn recovery(shared: &Shared, data: &DomainData, expr: &str) -> Resp {
    let state = data.lock();
    let names: Vec<String> = state.indices.keys().cloned().collect();
    let selected = match resolve(&names, expr) {
        Ok(s) => s,
        Err(missing) => return super::indices::index_not_found(&missing),
    };
    let selected: Vec<String> = if expr == "_all" || expr == "*" {
        names
    } else {
        selected
    };
    let now = shared.clock.now();
    let mut out = serde_json::Map::new();
    for name in selected {
        let index = &state.indices[&name];
        let shard = match state.recoveries.get(&name) {
            Some(r) => {
                let p = shared.clock.progress(r.started, r.ends_at);
                let done = now >= r.ends_at;
                let elapsed = (now.min(r.ends_at) - r.started).as_millis() as i64;
                let recovered_bytes = (r.bytes as f64 * p) as u64;
                let mut s = json!({
                    "id": 0,
                    "type": "SNAPSHOT",
                    "stage": if done { "DONE" } else { "INDEX" },
                    "primary": true,
                    "start_time_in_millis": r.start_millis,
                    "total_time_in_millis": elapsed,
                    "source": {"repository": r.repository, "snapshot": r.snapshot, "version": "2.11.0", "index": name, "restoreUUID": index.uuid()},
                    "target": {"id": "sandbox-node-1", "host": "127.0.0.1", "transport_address": "127.0.0.1:9300", "ip": "127.0.0.1", "name": format!("{}-node-1", data.name)},
                    "index": {
                        "size": {"total_in_bytes": r.bytes, "reused_in_bytes": 0, "recovered_in_bytes": recovered_bytes, "percent": percent(p)},
                        "files": {"total": r.files, "reused": 0, "recovered": if done { r.files } else { 0 }, "percent": percent(if done { 1.0 } else { 0.0 })},
                        "total_time_in_millis": elapsed,
                        "source_throttle_time_in_millis": 0,
                        "target_throttle_time_in_millis": 0
                    },
                    "translog": {"recovered": 0, "total": 0, "percent": "100.0%", "total_on_start": 0, "total_time_in_millis": 0},
                    "verify_index": {"check_index_time_in_millis": 0, "total_time_in_millis": 0},
                });
                if done {
                    s["stop_time_in_millis"] = json!(r.start_millis + elapsed);
                }
                s
            }
            None => json!({
                "id": 0,
                "type": "EMPTY_STORE",
                "stage": "DONE",
                "primary": true,
                "start_time_in_millis": index.settings.get("index.creation_date").and_then(|d| d.parse::<i64>().ok()).unwrap_or(0),
                "total_time_in_millis": 0,
                "source": {},
                "target": {"id": "sandbox-node-1", "host": "127.0.0.1", "transport_address": "127.0.0.1:9300", "ip": "127.0.0.1", "name": format!("{}-node-1", data.name)},
                "index": {
                    "size": {"total_in_bytes": 0, "reused_in_bytes": 0, "recovered_in_bytes": 0, "percent": "0.0%"},
                    "files": {"total": 0, "reused": 0, "recovered": 0, "percent": "0.0%"},
                    "total_time_in_millis": 0,
                    "source_throttle_time_in_millis": 0,
                    "target_throttle_time_in_millis": 0
                },
                "translog": {"recovered": 0, "total": 0, "percent": "100.0%", "total_on_start": 0, "total_time_in_millis": 0},
                "verify_index": {"check_index_time_in_millis": 0, "total_time_in_millis": 0},
            }),
        };
        out.insert(name, json!({ "shards": [shard] }));
    }
    json_resp(200, &Value::Object(out))
}
