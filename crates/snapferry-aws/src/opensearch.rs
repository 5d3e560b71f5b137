//! Typed OpenSearch data-plane operations used by the repository, snapshot, restore and verify
//! resources, on top of [`DomainHttp`].
//!
//! The models follow the OpenSearch API specification (`namespaces/snapshot.yaml`,
//! `schemas/snapshot._common.yaml`, `cat.indices.yaml`, `indices.recovery.yaml`,
//! `cluster.health.yaml`); only the fields snapferry reads are modelled and unknown ones are
//! ignored, so newer engine versions keep working. Every name that goes into a path is
//! percent-encoded as one segment. Recovery is only ever asked for through `_all/_recovery` or
//! `<index>,…/_recovery`: the managed service refuses the bare `/_recovery`, and a list of
//! indices is put on the request line only while the line stays under its 4 KB limit; beyond
//! that one `_all/_recovery` answers for all of them, so a poll is one request at any scale.
//!
//! [`select_indices`] turns the plan's index patterns into the concrete list to snapshot or
//! restore, leaving system indices out unless a pattern names them explicitly.

use std::collections::BTreeMap;

use http::Method;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::domain_http::{DomainHttp, DomainHttpError};

/// Everything outside RFC 3986 unreserved characters is encoded, so `/`, `?`, `#`, `,`, `*`
/// and spaces in a name cannot change which endpoint is called.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One path segment, percent-encoded.
pub fn segment(name: &str) -> String {
    utf8_percent_encode(name, SEGMENT).to_string()
}

/// `{"type":"s3","settings":{...}}` as PUT and GET `_snapshot/<repo>` use it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepositoryDefinition {
    /// Repository type; snapferry only registers `s3`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `bucket`, `region`, `role_arn`, `base_path`, `server_side_encryption`, ... GET returns
    /// every value as a string.
    #[serde(default)]
    pub settings: BTreeMap<String, Value>,
}

impl RepositoryDefinition {
    /// An `s3` repository on `bucket` in `region`, registered on a domain in `domain_region`,
    /// written with `role_arn`, plus `extra` settings from the plan. A bucket in the domain's
    /// Region is named by its `region`; one in another Region through the global endpoint
    /// (`endpoint: s3.amazonaws.com`), as AWS documents for snapshots across Regions.
    pub fn s3(
        bucket: &str,
        region: &str,
        domain_region: &str,
        role_arn: &str,
        base_path: Option<&str>,
        extra: &BTreeMap<String, Value>,
    ) -> Self {
        let mut settings = extra.clone();
        settings.insert("bucket".into(), json!(bucket));
        if region == domain_region || extra.contains_key("endpoint") {
            settings.insert("region".into(), json!(region));
        } else {
            settings.insert("endpoint".into(), json!("s3.amazonaws.com"));
        }
        settings.insert("role_arn".into(), json!(role_arn));
        if let Some(p) = base_path
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty())
        {
            settings.insert("base_path".into(), json!(p));
        }
        Self {
            kind: "s3".into(),
            settings,
        }
    }

    /// Marks the registration read-only (`readonly: true`), as the target's must be: it must
    /// never write into the source's repository.
    pub fn read_only(mut self) -> Self {
        self.settings.insert("readonly".into(), json!(true));
        self
    }

    /// Settings as strings, the form GET returns (`true` → `"true"`), for comparison.
    pub fn settings_as_strings(&self) -> BTreeMap<String, String> {
        self.settings
            .iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), s)
            })
            .collect()
    }
}

/// A snapshot's state as OpenSearch reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SnapshotState {
    InProgress,
    Success,
    Failed,
    Partial,
    Incompatible,
}

/// A failed shard of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ShardFailure {
    #[serde(default)]
    pub index: Option<String>,
    /// OpenSearch writes a number; its API specification types it as an `Id` (a string),
    /// which the sandbox follows. Both are read, so a failed snapshot is always reportable.
    #[serde(default, deserialize_with = "number_or_numeric_string")]
    pub shard_id: Option<u64>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub node_id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

/// Reads `0` or `"0"` (anything else as absent rather than failing the whole body).
fn number_or_numeric_string<'de, D>(deserializer: D) -> Result<Option<u64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(match Option::<Value>::deserialize(deserializer)? {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

/// Shard totals of a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct ShardCounts {
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub successful: u64,
    #[serde(default)]
    pub failed: u64,
}

/// One entry of `GET _snapshot/<repo>/<snapshot>`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SnapshotInfo {
    pub snapshot: String,
    #[serde(default)]
    pub uuid: Option<String>,
    pub state: SnapshotState,
    #[serde(default)]
    pub indices: Vec<String>,
    /// The data streams the snapshot holds with all their backing indices.
    #[serde(default)]
    pub data_streams: Vec<String>,
    #[serde(default)]
    pub include_global_state: Option<bool>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub start_time_in_millis: Option<i64>,
    #[serde(default)]
    pub end_time_in_millis: Option<i64>,
    #[serde(default)]
    pub failures: Vec<ShardFailure>,
    #[serde(default)]
    pub shards: ShardCounts,
}

#[derive(Debug, Deserialize)]
struct SnapshotList {
    #[serde(default)]
    snapshots: Vec<SnapshotInfo>,
}

/// Progress counters of `_snapshot/<repo>/<snapshot>/_status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct ShardsStats {
    #[serde(default)]
    pub initializing: u64,
    #[serde(default)]
    pub started: u64,
    #[serde(default)]
    pub finalizing: u64,
    #[serde(default)]
    pub done: u64,
    #[serde(default)]
    pub failed: u64,
    #[serde(default)]
    pub total: u64,
}

/// The aliases of one index, by name, with their properties as `GET _alias` prints them.
pub type Aliases = BTreeMap<String, Map<String, Value>>;

/// One entry of `_status`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SnapshotStatus {
    pub snapshot: String,
    pub repository: String,
    /// `_status` spells states its own way (`STARTED`, `SUCCESS`, ...), so kept as text.
    pub state: String,
    #[serde(default)]
    pub shards_stats: ShardsStats,
    /// Per index: the files and bytes the snapshot holds and those it copied.
    #[serde(default)]
    pub indices: BTreeMap<String, IndexSnapshotStatus>,
}

/// One index of `_status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct IndexSnapshotStatus {
    #[serde(default)]
    pub stats: SnapshotStats,
}

/// The server's `SnapshotStats`: `incremental` is what this snapshot copied (files not already
/// in the repository for that index), `total` everything it references.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct SnapshotStats {
    #[serde(default)]
    pub incremental: FileStats,
    #[serde(default)]
    pub total: FileStats,
}

/// A file count and its bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStats {
    #[serde(default)]
    pub file_count: u64,
    #[serde(default)]
    pub size_in_bytes: u64,
}

#[derive(Debug, Deserialize)]
struct SnapshotStatusList {
    #[serde(default)]
    snapshots: Vec<SnapshotStatus>,
}

/// What to put into a new snapshot.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreateSnapshot {
    /// Concrete names or patterns; `-name` excludes.
    pub indices: Vec<String>,
    pub include_global_state: bool,
    /// Take what can be taken when some shards are unavailable.
    pub partial: bool,
}

/// What to restore and how.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RestoreRequest {
    pub indices: Vec<String>,
    pub include_global_state: bool,
    pub rename_pattern: Option<String>,
    pub rename_replacement: Option<String>,
    /// Settings applied to restored indices (e.g. `index.number_of_replicas`).
    pub index_settings: Map<String, Value>,
    /// Settings dropped from the snapshot's indices.
    pub ignore_index_settings: Vec<String>,
    pub partial: bool,
    /// Restore the indices without the aliases they carried (`include_aliases: false`).
    pub without_aliases: bool,
}

impl RestoreRequest {
    /// The JSON body of `_restore`.
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("indices".into(), json!(self.indices.join(",")));
        body.insert(
            "include_global_state".into(),
            json!(self.include_global_state),
        );
        body.insert("partial".into(), json!(self.partial));
        if self.without_aliases {
            body.insert("include_aliases".into(), json!(false));
        }
        if let Some(p) = &self.rename_pattern {
            body.insert("rename_pattern".into(), json!(p));
        }
        if let Some(r) = &self.rename_replacement {
            body.insert("rename_replacement".into(), json!(r));
        }
        if !self.index_settings.is_empty() {
            body.insert(
                "index_settings".into(),
                Value::Object(self.index_settings.clone()),
            );
        }
        if !self.ignore_index_settings.is_empty() {
            body.insert(
                "ignore_index_settings".into(),
                json!(self.ignore_index_settings.join(",")),
            );
        }
        Value::Object(body)
    }
}

/// One row of `_cat/indices?format=json` (every value is a string there).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CatIndex {
    pub index: String,
    #[serde(default)]
    pub health: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub uuid: Option<String>,
    /// Number of primary shards (a string, as every `_cat` value).
    #[serde(default)]
    pub pri: Option<String>,
    #[serde(rename = "docs.count", default)]
    pub docs_count: Option<String>,
    #[serde(rename = "store.size", default)]
    pub store_size: Option<String>,
}

/// One shard of `<index>/_recovery`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ShardRecovery {
    pub id: u64,
    /// `INIT`, `INDEX`, `VERIFY_INDEX`, `TRANSLOG`, `FINALIZE`, `DONE`.
    pub stage: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub primary: bool,
    /// Where the shard came from; for a restore, the repository and snapshot. This is how a
    /// later run tells that an index was already restored from a given snapshot.
    #[serde(default)]
    pub source: Option<RecoverySource>,
}

/// The `source` of a shard recovery (only a restore fills the snapshot fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RecoverySource {
    #[serde(default)]
    pub repository: Option<String>,
    #[serde(default)]
    pub snapshot: Option<String>,
    #[serde(default)]
    pub index: Option<String>,
}

#[derive(Debug, Deserialize)]
struct IndexRecovery {
    #[serde(default)]
    shards: Vec<ShardRecovery>,
}

/// Per index: its shards' recovery state.
pub type Recovery = BTreeMap<String, Vec<ShardRecovery>>;

/// `_cluster/health`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ClusterHealth {
    pub cluster_name: String,
    /// `green`, `yellow`, `red`.
    pub status: String,
    #[serde(default)]
    pub number_of_nodes: u64,
    #[serde(default)]
    pub initializing_shards: u64,
    #[serde(default)]
    pub relocating_shards: u64,
    #[serde(default)]
    pub unassigned_shards: u64,
}

/// The engine behind a domain, from `GET /`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EngineVersion {
    /// `opensearch`; absent for Elasticsearch.
    #[serde(default)]
    pub distribution: Option<String>,
    pub number: String,
}

impl EngineVersion {
    /// Whether `_cat/indices` accepts `expand_wildcards`: every OpenSearch, Elasticsearch from
    /// 7.7 (elastic/elasticsearch#53248).
    pub fn takes_cat_expand_wildcards(&self) -> bool {
        if self.distribution.as_deref() == Some("opensearch") {
            return true;
        }
        let mut parts = self
            .number
            .split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let major = parts.next().unwrap_or(0);
        let minor = parts.next().unwrap_or(0);
        (major, minor) >= (7, 7)
    }
}

impl EngineVersion {
    /// Whether a search counts its hits exactly only up to a limit unless `track_total_hits`
    /// says otherwise (every OpenSearch, Elasticsearch from 7.0); before 7.0 the total is
    /// always exact, and Elasticsearch 5 refuses the key.
    pub fn tracks_total_hits_up_to(&self) -> bool {
        self.distribution.as_deref() == Some("opensearch")
            || self
                .number
                .split('.')
                .next()
                .and_then(|m| m.parse::<u32>().ok())
                .is_some_and(|major| major >= 7)
    }

    /// Whether the engine has data streams (`GET _data_stream`): every OpenSearch,
    /// Elasticsearch from 7.9.
    pub fn has_data_streams(&self) -> bool {
        if self.distribution.as_deref() == Some("opensearch") {
            return true;
        }
        let mut parts = self
            .number
            .split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (7, 9)
    }
}

/// One data stream and its backing indices, from `GET _data_stream`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DataStream {
    pub name: String,
    /// Backing indices, oldest first.
    #[serde(default, deserialize_with = "backing_names")]
    pub indices: Vec<String>,
}

fn backing_names<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    struct Backing {
        index_name: String,
    }
    Ok(Vec::<Backing>::deserialize(d)?
        .into_iter()
        .map(|b| b.index_name)
        .collect())
}

#[derive(Debug, Deserialize)]
struct DataStreams {
    #[serde(default)]
    data_streams: Vec<DataStream>,
}

#[derive(Debug, Deserialize)]
struct RootInfo {
    version: EngineVersion,
}

/// Indices counted per `_msearch` request: a body of about 80 bytes per index, far below the
/// managed service's smallest `http.max_content_length` (10 MiB).
pub const COUNTS_PER_REQUEST: usize = 1_000;

#[derive(Debug, Deserialize)]
struct MultiSearchResponse {
    responses: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct CountResponse {
    count: u64,
}

/// The longest path snapferry puts on a request line that names indices. The managed service's
/// `http.max_initial_line_length` is 4,096 bytes for the whole line (`GET `, path and query,
/// ` HTTP/1.1`); this leaves room for the method, the version and a query string.
pub const MAX_PATH_BYTES: usize = 3_584;

/// The `_recovery` path for `indices` (see [`OpenSearch::recovery`]).
pub fn recovery_path(indices: &[String]) -> String {
    let named = indices
        .iter()
        .map(|i| segment(i))
        .collect::<Vec<_>>()
        .join(",");
    let path = format!("/{named}/_recovery");
    if indices.is_empty() || path.len() > MAX_PATH_BYTES {
        "/_all/_recovery".to_owned()
    } else {
        path
    }
}

/// `_cluster/allocation/explain`'s answer, as much of it as a report needs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AllocationExplanation {
    pub index: String,
    pub shard: u64,
    pub primary: bool,
    pub current_state: String,
    /// `no` when no node may take the copy; `yes`, `throttled`, `awaiting_info` otherwise.
    #[serde(default)]
    pub can_allocate: Option<String>,
    #[serde(default)]
    pub allocate_explanation: Option<String>,
    #[serde(default)]
    pub node_allocation_decisions: Vec<NodeAllocationDecision>,
}

/// One node's verdict on a shard copy, with the deciders that said no.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NodeAllocationDecision {
    #[serde(default)]
    pub node_name: String,
    #[serde(default)]
    pub deciders: Vec<AllocationDecider>,
}

/// A decider's verdict (`NO`, `YES`, `THROTTLE`) and its words.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AllocationDecider {
    pub decider: String,
    pub decision: String,
    #[serde(default)]
    pub explanation: String,
}

impl AllocationExplanation {
    /// The distinct reasons the deciders gave, for a report (`filter: node does not match …`).
    pub fn reasons(&self) -> Vec<String> {
        let mut reasons: Vec<String> = Vec::new();
        for node in &self.node_allocation_decisions {
            for d in node.deciders.iter().filter(|d| d.decision == "NO") {
                let reason = format!("{}: {}", d.decider, d.explanation);
                if !reasons.contains(&reason) {
                    reasons.push(reason);
                }
            }
        }
        reasons
    }
}

fn indices_param(indices: &[String]) -> String {
    indices.join(",")
}

/// The typed operations on one domain.
#[derive(Debug, Clone)]
pub struct OpenSearch {
    http: DomainHttp,
    /// The engine's version, asked once: it decides request parameters on every poll, and a
    /// domain's version does not change under a run (an upgrade is a blue/green of its own).
    version: std::sync::Arc<tokio::sync::OnceCell<EngineVersion>>,
}

impl OpenSearch {
    /// Wraps a domain client.
    pub fn new(http: DomainHttp) -> Self {
        Self {
            http,
            version: Default::default(),
        }
    }

    /// The underlying client.
    pub fn http(&self) -> &DomainHttp {
        &self.http
    }

    /// `GET _snapshot/<repo>`; `Ok(None)` when it is not registered.
    pub async fn get_repository(
        &self,
        repo: &str,
    ) -> Result<Option<RepositoryDefinition>, DomainHttpError> {
        let path = format!("/_snapshot/{}", segment(repo));
        match self
            .http
            .send_json::<BTreeMap<String, RepositoryDefinition>>(Method::GET, &path, None)
            .await
        {
            Ok(mut found) => Ok(found.remove(repo)),
            Err(e) if e.error_type() == Some("repository_missing_exception") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `PUT _snapshot/<repo>` (also an update of an existing registration).
    pub async fn put_repository(
        &self,
        repo: &str,
        definition: &RepositoryDefinition,
    ) -> Result<(), DomainHttpError> {
        let path = format!("/_snapshot/{}", segment(repo));
        let body = serde_json::to_value(definition).expect("a repository definition is JSON");
        self.http.send(Method::PUT, &path, Some(&body)).await?;
        Ok(())
    }

    /// `DELETE _snapshot/<repo>`; a repository already gone is fine.
    pub async fn delete_repository(&self, repo: &str) -> Result<(), DomainHttpError> {
        let path = format!("/_snapshot/{}", segment(repo));
        match self.http.send(Method::DELETE, &path, None).await {
            Err(e) if e.error_type() == Some("repository_missing_exception") => Ok(()),
            other => other.map(drop),
        }
    }

    /// `POST _snapshot/<repo>/_verify`: the nodes that could write to the bucket.
    pub async fn verify_repository(&self, repo: &str) -> Result<Vec<String>, DomainHttpError> {
        #[derive(Deserialize)]
        struct Verified {
            #[serde(default)]
            nodes: BTreeMap<String, Value>,
        }
        let path = format!("/_snapshot/{}/_verify", segment(repo));
        let v: Verified = self.http.send_json(Method::POST, &path, None).await?;
        Ok(v.nodes.into_keys().collect())
    }

    /// `PUT _snapshot/<repo>/<snapshot>?wait_for_completion=false`; progress is polled with
    /// [`Self::snapshot_status`] and [`Self::get_snapshot`].
    pub async fn create_snapshot(
        &self,
        repo: &str,
        snapshot: &str,
        request: &CreateSnapshot,
    ) -> Result<(), DomainHttpError> {
        let path = format!(
            "/_snapshot/{}/{}?wait_for_completion=false",
            segment(repo),
            segment(snapshot)
        );
        let body = json!({
            "indices": indices_param(&request.indices),
            "include_global_state": request.include_global_state,
            "partial": request.partial,
            "ignore_unavailable": false,
        });
        self.http.send(Method::PUT, &path, Some(&body)).await?;
        Ok(())
    }

    /// `GET _snapshot/<repo>/<snapshot>`; `Ok(None)` when no snapshot has that name.
    pub async fn get_snapshot(
        &self,
        repo: &str,
        snapshot: &str,
    ) -> Result<Option<SnapshotInfo>, DomainHttpError> {
        let path = format!("/_snapshot/{}/{}", segment(repo), segment(snapshot));
        match self
            .http
            .send_json::<SnapshotList>(Method::GET, &path, None)
            .await
        {
            Ok(list) => Ok(list.snapshots.into_iter().find(|s| s.snapshot == snapshot)),
            Err(e) if e.error_type() == Some("snapshot_missing_exception") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET _snapshot/<repo>/_all`.
    pub async fn list_snapshots(&self, repo: &str) -> Result<Vec<SnapshotInfo>, DomainHttpError> {
        let path = format!("/_snapshot/{}/_all", segment(repo));
        let list: SnapshotList = self.http.send_json(Method::GET, &path, None).await?;
        Ok(list.snapshots)
    }

    /// `GET _snapshot/<repo>/<snapshot>/_status`: shard progress.
    pub async fn snapshot_status(
        &self,
        repo: &str,
        snapshot: &str,
    ) -> Result<Option<SnapshotStatus>, DomainHttpError> {
        let path = format!("/_snapshot/{}/{}/_status", segment(repo), segment(snapshot));
        match self
            .http
            .send_json::<SnapshotStatusList>(Method::GET, &path, None)
            .await
        {
            Ok(list) => Ok(list.snapshots.into_iter().find(|s| s.snapshot == snapshot)),
            Err(e) if e.error_type() == Some("snapshot_missing_exception") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `DELETE _snapshot/<repo>/<snapshot>`; one already gone is fine.
    pub async fn delete_snapshot(&self, repo: &str, snapshot: &str) -> Result<(), DomainHttpError> {
        let path = format!("/_snapshot/{}/{}", segment(repo), segment(snapshot));
        match self.http.send(Method::DELETE, &path, None).await {
            Err(e) if e.error_type() == Some("snapshot_missing_exception") => Ok(()),
            other => other.map(drop),
        }
    }

    /// `POST _snapshot/<repo>/<snapshot>/_restore?wait_for_completion=false`; progress is
    /// polled with [`Self::recovery`].
    pub async fn restore(
        &self,
        repo: &str,
        snapshot: &str,
        request: &RestoreRequest,
    ) -> Result<(), DomainHttpError> {
        let path = format!(
            "/_snapshot/{}/{}/_restore?wait_for_completion=false",
            segment(repo),
            segment(snapshot)
        );
        self.http
            .send(Method::POST, &path, Some(&request.body()))
            .await?;
        Ok(())
    }

    /// Recovery of `indices`, in one request whatever their number: `<a>,<b>/_recovery` while
    /// that path keeps the request line under [`MAX_PATH_BYTES`], otherwise `_all/_recovery`
    /// with the answer cut down to `indices` (the managed service refuses a request line over
    /// 4 KB with 400 `too_long_http_line_exception`, and the bare `/_recovery` always). An empty
    /// list asks for all. Indices the answer does not list (closed, or no copy assigned) are
    /// absent from the result.
    pub async fn recovery(&self, indices: &[String]) -> Result<Recovery, DomainHttpError> {
        let path = recovery_path(indices);
        let raw: BTreeMap<String, IndexRecovery> =
            self.http.send_json(Method::GET, &path, None).await?;
        let wanted: std::collections::BTreeSet<&str> = indices.iter().map(String::as_str).collect();
        Ok(raw
            .into_iter()
            .filter(|(k, _)| wanted.is_empty() || wanted.contains(k.as_str()))
            .map(|(k, v)| (k, v.shards))
            .collect())
    }

    /// `_cluster/allocation/explain` for one shard copy: why it is (not) assigned.
    pub async fn allocation_explain(
        &self,
        index: &str,
        shard: u64,
        primary: bool,
    ) -> Result<AllocationExplanation, DomainHttpError> {
        let body = json!({ "index": index, "shard": shard, "primary": primary });
        self.http
            .send_json(Method::POST, "/_cluster/allocation/explain", Some(&body))
            .await
    }

    /// `_cat/indices?format=json&expand_wildcards=all`: every index, hidden and system ones too.
    /// Elasticsearch before 7.7 has no hidden indices and refuses `expand_wildcards` there (400
    /// "contains unrecognized parameter"), so it is sent only to engines that take it.
    pub async fn cat_indices(&self) -> Result<Vec<CatIndex>, DomainHttpError> {
        let path = if self.version().await?.takes_cat_expand_wildcards() {
            "/_cat/indices?format=json&expand_wildcards=all"
        } else {
            "/_cat/indices?format=json"
        };
        self.http.send_json(Method::GET, path, None).await
    }

    /// The indices on UltraWarm nodes (`_cat/indices/_warm`, Amazon OpenSearch Service's own
    /// path). A domain that does not know the path (no UltraWarm) has none.
    pub async fn warm_indices(&self) -> Result<Vec<String>, DomainHttpError> {
        match self
            .http
            .send_json::<Vec<CatIndex>>(Method::GET, "/_cat/indices/_warm?format=json", None)
            .await
        {
            Ok(rows) => Ok(rows.into_iter().map(|r| r.index).collect()),
            Err(e) if matches!(e.status(), Some(400 | 404)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// `GET _data_stream`: every data stream with its backing indices; none on an engine
    /// without data streams (Elasticsearch before 7.9, or one answering that it has no such
    /// endpoint).
    pub async fn data_streams(&self) -> Result<Vec<DataStream>, DomainHttpError> {
        if !self.version().await?.has_data_streams() {
            return Ok(Vec::new());
        }
        match self
            .http
            .send_json::<DataStreams>(Method::GET, "/_data_stream", None)
            .await
        {
            Ok(list) => Ok(list.data_streams),
            Err(e) if matches!(e.status(), Some(400 | 404)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// `GET <indices>/_settings/index.version.created?flat_settings=true`: per index, the
    /// server's id of the version that created it, which decides where it can be restored.
    /// The names go on the request line in batches that keep it under its 4 KB limit.
    pub async fn versions_created(
        &self,
        indices: &[String],
    ) -> Result<BTreeMap<String, u32>, DomainHttpError> {
        #[derive(Deserialize)]
        struct Settings {
            #[serde(default)]
            settings: BTreeMap<String, Value>,
        }
        const TAIL: &str = "/_settings/index.version.created?flat_settings=true";
        let mut out = BTreeMap::new();
        let mut batches: Vec<String> = Vec::new();
        for name in indices.iter().map(|i| segment(i)) {
            match batches.last_mut() {
                Some(b) if 1 + b.len() + 1 + name.len() + TAIL.len() <= MAX_PATH_BYTES => {
                    b.push(',');
                    b.push_str(&name);
                }
                _ => batches.push(name),
            }
        }
        for batch in batches {
            let path = format!("/{batch}{TAIL}");
            let got: BTreeMap<String, Settings> =
                self.http.send_json(Method::GET, &path, None).await?;
            for (index, s) in got {
                let id = s
                    .settings
                    .get("index.version.created")
                    .and_then(|v| match v {
                        Value::String(t) => t.parse().ok(),
                        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
                        _ => None,
                    });
                if let Some(id) = id {
                    out.insert(index, id);
                }
            }
        }
        Ok(out)
    }

    /// `<index>/_count`.
    pub async fn count(&self, index: &str) -> Result<u64, DomainHttpError> {
        let path = format!("/{}/_count", segment(index));
        let c: CountResponse = self.http.send_json(Method::GET, &path, None).await?;
        Ok(c.count)
    }

    /// The document counts of many indices in one `GET _msearch` per [`COUNTS_PER_REQUEST`]:
    /// a `size: 0` search of each, its total exact (`track_total_hits`, from Elasticsearch 7;
    /// before, totals are always exact and the key unknown). What `_count` says, index by
    /// index, without a request each: a thousand indices cost one request, and the request
    /// line stays `/_msearch` whatever their names. An index's error (not found, closed,
    /// refused) fails the call as that index's `_count` would have.
    pub async fn counts(
        &self,
        indices: &[String],
    ) -> Result<BTreeMap<String, u64>, DomainHttpError> {
        let mut out = BTreeMap::new();
        for (index, answer) in self.count_answers(indices).await? {
            out.insert(index, answer.map_err(|e| *e)?);
        }
        Ok(out)
    }

    /// [`OpenSearch::counts`], with `None` for an index that does not exist.
    pub async fn counts_if_exist(
        &self,
        indices: &[String],
    ) -> Result<BTreeMap<String, Option<u64>>, DomainHttpError> {
        let mut out = BTreeMap::new();
        for (index, answer) in self.count_answers(indices).await? {
            let count = match answer {
                Ok(n) => Some(n),
                Err(e) if e.error_type() == Some("index_not_found_exception") => None,
                Err(e) => return Err(*e),
            };
            out.insert(index, count);
        }
        Ok(out)
    }

    /// Each index's count, or the error its `_msearch` item answered.
    async fn count_answers(
        &self,
        indices: &[String],
    ) -> Result<Vec<(String, Result<u64, Box<DomainHttpError>>)>, DomainHttpError> {
        let mut out = Vec::new();
        if indices.is_empty() {
            return Ok(out);
        }
        let search = if self.version().await?.tracks_total_hits_up_to() {
            json!({"size": 0, "track_total_hits": true})
        } else {
            json!({"size": 0})
        };
        let undecodable = |why: String| DomainHttpError::Decode {
            domain: self.http.domain().to_owned(),
            method: Method::GET,
            path: "/_msearch".to_owned(),
            source: serde::de::Error::custom(why),
        };
        for batch in indices.chunks(COUNTS_PER_REQUEST) {
            let mut body = String::new();
            for index in batch {
                body.push_str(&json!({ "index": index }).to_string());
                body.push('\n');
                body.push_str(&search.to_string());
                body.push('\n');
            }
            let response = self
                .http
                .send_raw(
                    Method::GET,
                    "/_msearch",
                    crate::domain_http::RawBody {
                        content_type: Some("application/x-ndjson".to_owned()),
                        bytes: body.into_bytes(),
                        headers: Vec::new(),
                    },
                )
                .await?;
            let decoded: MultiSearchResponse =
                serde_json::from_slice(&response.body).map_err(|e| undecodable(e.to_string()))?;
            if decoded.responses.len() != batch.len() {
                return Err(undecodable(format!(
                    "{} answers to {} searches",
                    decoded.responses.len(),
                    batch.len()
                )));
            }
            for (index, answer) in batch.iter().zip(decoded.responses) {
                out.push((index.clone(), self.count_of(index, &answer)));
            }
        }
        Ok(out)
    }

    /// One `_msearch` answer as a count: its exact total, or the item's error as the error of
    /// that index's `_count`.
    fn count_of(&self, index: &str, answer: &Value) -> Result<u64, Box<DomainHttpError>> {
        let path = format!("/_msearch (the count of {index})");
        let status = answer["status"].as_u64().unwrap_or(200);
        if answer.get("error").is_some() || status >= 300 {
            let bytes = answer.to_string().into_bytes();
            let (error_type, reason) = crate::domain_http::parse_error_body(&bytes);
            return Err(Box::new(DomainHttpError::Status {
                domain: self.http.domain().to_owned(),
                method: Method::GET,
                path,
                status: u16::try_from(status).unwrap_or(500),
                error_type,
                reason,
                cause: crate::domain_http::innermost_cause(&bytes),
                retry_after: None,
            }));
        }
        let total = &answer["hits"]["total"];
        let exact = total.get("relation").is_none_or(|r| r == "eq");
        match total.as_u64().or_else(|| total["value"].as_u64()) {
            Some(n) if exact => Ok(n),
            _ => Err(Box::new(DomainHttpError::Decode {
                domain: self.http.domain().to_owned(),
                method: Method::GET,
                path,
                source: serde::de::Error::custom(format!(
                    "no exact hits.total in {}",
                    crate::domain_http::truncate(total.to_string())
                )),
            })),
        }
    }

    /// `DELETE <index>` (one concrete index; wildcards are encoded and so never expand).
    pub async fn delete_index(&self, index: &str) -> Result<(), DomainHttpError> {
        let path = format!("/{}", segment(index));
        self.http.send(Method::DELETE, &path, None).await?;
        Ok(())
    }

    /// `POST <index>/_close`: a restore can only replace a closed index (`on_conflict`).
    pub async fn close_index(&self, index: &str) -> Result<(), DomainHttpError> {
        let path = format!("/{}/_close", segment(index));
        self.http.send(Method::POST, &path, None).await?;
        Ok(())
    }

    /// `GET _alias`: per index, the aliases it carries with their properties (`filter`,
    /// routing, `is_write_index`, ...).
    pub async fn aliases(&self) -> Result<BTreeMap<String, Aliases>, DomainHttpError> {
        #[derive(Deserialize)]
        struct Held {
            #[serde(default)]
            aliases: Aliases,
        }
        let raw: BTreeMap<String, Held> = self.http.send_json(Method::GET, "/_alias", None).await?;
        Ok(raw
            .into_iter()
            .map(|(index, held)| (index, held.aliases))
            .collect())
    }

    /// `POST _aliases`: the actions applied all or none, in one cluster-state update (a
    /// reader sees either every alias before or every alias after).
    pub async fn update_aliases(&self, actions: &[Value]) -> Result<(), DomainHttpError> {
        let body = json!({ "actions": actions });
        self.http
            .send(Method::POST, "/_aliases", Some(&body))
            .await?;
        Ok(())
    }

    /// `_cluster/health`.
    pub async fn cluster_health(&self) -> Result<ClusterHealth, DomainHttpError> {
        self.http
            .send_json(Method::GET, "/_cluster/health", None)
            .await
    }

    /// `GET /`: engine distribution and version number, asked once per client.
    pub async fn version(&self) -> Result<EngineVersion, DomainHttpError> {
        self.version
            .get_or_try_init(|| async {
                let root: RootInfo = self.http.send_json(Method::GET, "/", None).await?;
                Ok(root.version)
            })
            .await
            .cloned()
    }
}

/// System and internal indices left out unless a pattern names them explicitly.
pub const DEFAULT_SYSTEM_EXCLUSIONS: [&str; 5] = [
    ".kibana*",
    ".opendistro*",
    ".plugins*",
    ".opensearch*",
    ".tasks",
];

/// `*` matches any run of characters; everything else literally.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(at) => rest = &rest[at + mid.len()..],
            None => return false,
        }
    }
    true
}

/// What a set of patterns selected, and what the plan should warn about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// The concrete indices, in the order of the existing list.
    pub indices: Vec<String>,
    /// Include patterns (not `-` exclusions) that matched no existing index at all.
    pub unmatched_patterns: Vec<String>,
    /// Indices a pattern matched but that were left out as system or `.`-prefixed indices.
    pub system_left_out: Vec<String>,
}

/// The concrete indices `patterns` select from `existing`, in `existing`'s order. Patterns are
/// applied left to right (`-x` removes what matched so far). An index starting with `.` (or
/// matching [`DEFAULT_SYSTEM_EXCLUSIONS`]) is only selected by a pattern that itself starts
/// with `.` (so `*` never drags in `.kibana` or `.opendistro-job-scheduler-lock`), except a
/// data stream's backing index (`.ds-*`), which is data; no patterns means `*`.
pub fn select_indices(existing: &[String], patterns: &[String]) -> Vec<String> {
    explain_selection(existing, patterns).indices
}

/// [`select_indices`] with the details `plan` reports.
pub fn explain_selection(existing: &[String], patterns: &[String]) -> Selection {
    let default = ["*".to_owned()];
    let patterns = if patterns.is_empty() {
        &default[..]
    } else {
        patterns
    };
    let mut selection = Selection::default();
    for name in existing {
        // Data-stream backing indices (`.ds-<stream>-<generation>`) are data, not system
        // indices: selected like any other index, and restored with their stream.
        let hidden = (name.starts_with('.') && !name.starts_with(".ds-"))
            || DEFAULT_SYSTEM_EXCLUSIONS
                .iter()
                .any(|s| wildcard_match(s, name));
        let mut selected = false;
        let mut skipped_as_system = false;
        for p in patterns {
            if let Some(excluded) = p.strip_prefix('-') {
                if wildcard_match(excluded, name) {
                    selected = false;
                    skipped_as_system = false;
                }
            } else if wildcard_match(p, name) {
                if !hidden || p.starts_with('.') {
                    selected = true;
                } else {
                    skipped_as_system = true;
                }
            }
        }
        if selected {
            selection.indices.push(name.clone());
        } else if skipped_as_system {
            selection.system_left_out.push(name.clone());
        }
    }
    selection.unmatched_patterns = patterns
        .iter()
        .filter(|p| !p.starts_with('-'))
        .filter(|p| !existing.iter().any(|name| wildcard_match(p, name)))
        .cloned()
        .collect();
    selection
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn expand_wildcards_goes_only_to_engines_that_take_it() {
        let v = |distribution: Option<&str>, number: &str| EngineVersion {
            distribution: distribution.map(str::to_owned),
            number: number.to_owned(),
        };
        assert!(!v(None, "5.6.16").takes_cat_expand_wildcards());
        assert!(!v(None, "6.8.23").takes_cat_expand_wildcards());
        assert!(!v(None, "7.1.1").takes_cat_expand_wildcards());
        assert!(v(None, "7.7.0").takes_cat_expand_wildcards());
        assert!(v(None, "7.10.2").takes_cat_expand_wildcards());
        assert!(v(Some("opensearch"), "1.3.20").takes_cat_expand_wildcards());
    }

    #[test]
    fn recovery_names_indices_only_while_the_request_line_stays_under_4_kb() {
        assert_eq!(recovery_path(&[]), "/_all/_recovery");
        assert_eq!(recovery_path(&names(&["a", "b c"])), "/a,b%20c/_recovery");
        let many: Vec<String> = (0..500).map(|i| format!("{i:040}")).collect();
        assert_eq!(recovery_path(&many), "/_all/_recovery");
        let fits: Vec<String> = (0..80).map(|i| format!("{i:040}")).collect();
        let path = recovery_path(&fits);
        assert!(
            path.len() <= MAX_PATH_BYTES && path.starts_with("/0000"),
            "{path}"
        );
        // `GET ` + path + ` HTTP/1.1` always fits the managed service's 4,096-byte line.
        assert!("GET ".len() + MAX_PATH_BYTES + " HTTP/1.1".len() < 4096);
    }

    #[test]
    fn path_segments_cannot_escape() {
        assert_eq!(segment("daily-2026.11.25"), "daily-2026.11.25");
        assert_eq!(segment("a/b?c#d e,f*"), "a%2Fb%3Fc%23d%20e%2Cf%2A");
    }

    #[test]
    fn selection_excludes_system_indices_unless_named() {
        let existing = names(&[
            "logs-1",
            "logs-2",
            "orders",
            ".kibana_1",
            ".opendistro-job-scheduler-lock",
            ".plugins-ml-config",
            ".tasks",
            ".custom",
        ]);
        assert_eq!(
            select_indices(&existing, &[]),
            names(&["logs-1", "logs-2", "orders"])
        );
        assert_eq!(
            select_indices(&existing, &names(&["*", "-logs-2"])),
            names(&["logs-1", "orders"])
        );
        assert_eq!(
            select_indices(&existing, &names(&["logs-*", ".custom"])),
            names(&["logs-1", "logs-2", ".custom"])
        );
        assert_eq!(
            select_indices(&existing, &names(&[".kibana*"])),
            names(&[".kibana_1"])
        );
        assert_eq!(
            select_indices(&existing, &names(&["-orders", "*"])),
            names(&["logs-1", "logs-2", "orders"])
        );
    }

    #[test]
    fn selection_explains_unmatched_patterns_and_system_indices() {
        let existing = names(&["logs-1", ".kibana_1", ".tasks", "orders"]);
        let s = explain_selection(&existing, &names(&["*", "metrics-*", "-orders"]));
        assert_eq!(s.indices, names(&["logs-1"]));
        assert_eq!(s.unmatched_patterns, names(&["metrics-*"]));
        assert_eq!(s.system_left_out, names(&[".kibana_1", ".tasks"]));
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("logs-*", "logs-1"));
        assert!(wildcard_match("*-1", "logs-1"));
        assert!(wildcard_match("l*s*1", "logs-1"));
        assert!(!wildcard_match("l*x*1", "logs-1"));
        assert!(!wildcard_match("ab*ba", "aba"));
        assert!(wildcard_match("*", ""));
        assert!(!wildcard_match("logs", "logs-1"));
    }

    #[test]
    fn snapshot_models_read_spec_shaped_bodies() {
        let body = r#"{"snapshots":[{"snapshot":"s1","uuid":"u","version_id":136327827,"version":"2.11.0",
            "indices":["a","b"],"data_streams":[],"include_global_state":false,"state":"PARTIAL",
            "start_time":"2026-11-25T06:00:00.000Z","start_time_in_millis":1,"end_time_in_millis":2,
            "duration_in_millis":1,"failures":[{"index":"b","index_uuid":"x","shard_id":0,
            "reason":"IndexShardSnapshotFailedException[boom]","node_id":"n1","status":"INTERNAL_SERVER_ERROR"}],
            "shards":{"total":2,"failed":1,"successful":1}}]}"#;
        let list: SnapshotList = serde_json::from_str(body).unwrap();
        let s = &list.snapshots[0];
        assert_eq!(s.state, SnapshotState::Partial);
        assert_eq!(s.failures[0].index.as_deref(), Some("b"));
        assert_eq!(s.failures[0].shard_id, Some(0));
        // The API specification types shard_id as an Id (a string): read that too.
        let spec_shaped: SnapshotList =
            serde_json::from_str(&body.replace(r#""shard_id":0"#, r#""shard_id":"0""#)).unwrap();
        assert_eq!(spec_shaped.snapshots[0].failures[0].shard_id, Some(0));
        assert_eq!(
            s.shards,
            ShardCounts {
                total: 2,
                successful: 1,
                failed: 1
            }
        );
        let status: SnapshotStatusList = serde_json::from_str(
            r#"{"snapshots":[{"snapshot":"s1","repository":"r","uuid":"u","state":"STARTED",
            "include_global_state":false,"shards_stats":{"initializing":0,"started":1,"finalizing":0,
            "done":3,"failed":0,"total":4},"stats":{},"indices":{}}]}"#,
        )
        .unwrap();
        assert_eq!(status.snapshots[0].shards_stats.done, 3);
        assert_eq!(status.snapshots[0].shards_stats.total, 4);
    }

    #[test]
    fn cat_recovery_and_root_models() {
        let cat: Vec<CatIndex> = serde_json::from_str(
            r#"[{"health":"green","status":"open","index":"a","uuid":"u","pri":"1","rep":"1",
            "docs.count":"1200","docs.deleted":"0","store.size":"1mb","pri.store.size":"500kb"}]"#,
        )
        .unwrap();
        assert_eq!(cat[0].docs_count.as_deref(), Some("1200"));
        let rec: BTreeMap<String, IndexRecovery> = serde_json::from_str(
            r#"{"a":{"shards":[{"id":0,"type":"SNAPSHOT","stage":"DONE","primary":true,
            "source":{"repository":"r","snapshot":"s"},"index":{"size":{"percent":"100.0%"}}}]}}"#,
        )
        .unwrap();
        assert_eq!(rec["a"].shards[0].stage, "DONE");
        let root: RootInfo = serde_json::from_str(
            r#"{"name":"n","cluster_name":"c","version":{"distribution":"opensearch","number":"2.11.0"},"tagline":"t"}"#,
        )
        .unwrap();
        assert_eq!(root.version.number, "2.11.0");
    }

    #[test]
    fn restore_and_repository_bodies() {
        let mut r = RestoreRequest {
            indices: names(&["a", "b"]),
            rename_pattern: Some("(.+)".into()),
            rename_replacement: Some("restored-$1".into()),
            ignore_index_settings: names(&["index.refresh_interval"]),
            ..Default::default()
        };
        r.index_settings
            .insert("index.number_of_replicas".into(), json!(0));
        assert_eq!(
            r.body(),
            json!({"indices": "a,b", "include_global_state": false, "partial": false,
                   "rename_pattern": "(.+)", "rename_replacement": "restored-$1",
                   "index_settings": {"index.number_of_replicas": 0},
                   "ignore_index_settings": "index.refresh_interval"})
        );
        let mut extra = BTreeMap::new();
        extra.insert("server_side_encryption".into(), json!(true));
        // A bucket in another Region is reached through the global endpoint.
        let across = RepositoryDefinition::s3(
            "b",
            "us-east-1",
            "eu-west-1",
            "arn:aws:iam::1:role/r",
            None,
            &BTreeMap::new(),
        );
        assert_eq!(
            serde_json::to_value(&across).unwrap()["settings"],
            json!({"bucket": "b", "endpoint": "s3.amazonaws.com", "role_arn": "arn:aws:iam::1:role/r"})
        );
        let d = RepositoryDefinition::s3(
            "b",
            "eu-west-1",
            "eu-west-1",
            "arn:aws:iam::1:role/r",
            Some("/p/"),
            &extra,
        );
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            json!({"type": "s3", "settings": {"bucket": "b", "region": "eu-west-1",
                   "role_arn": "arn:aws:iam::1:role/r", "base_path": "p",
                   "server_side_encryption": true}})
        );
        assert_eq!(d.settings_as_strings()["server_side_encryption"], "true");
        assert_eq!(d.read_only().settings_as_strings()["readonly"], "true");
    }
}
