//! Each domain's data plane: the OpenSearch REST API over HTTPS (SigV4, service `es`), with its
//! real JSON shapes and error envelope. Requests are routed here to [`indices`] (data in and out),
//! [`snapshot`] (repositories and snapshots written into S3) and [`restore`] (restore and
//! recovery), and to the cluster metadata around the indices: [`templates`] (and data streams),
//! [`aliases`], [`ingest`], [`scripts`], [`ism`] and the Dashboards API ([`dashboards`]), whose
//! state lives in [`meta`]. One listener per domain, bound when the domain is created, answering once it's ready.
//!
//! A request passes, in order: the signature check (when it is SigV4-signed; an unsigned request
//! is `anonymous`), the gateway ([`crate::access_policy`]: the domain access policy together
//! with the caller's identity policies, and `iam:PassRole` for a repository's role), and on a
//! domain with fine-grained access control the security plugin ([`security`]), which maps the
//! same [`Caller`].

// Handlers return the error response itself as `Err`: it is built once per failed request and
// sent as is, so boxing it would only add noise.
#![allow(clippy::result_large_err)]

pub mod aliases;
pub mod cluster;
pub mod dashboards;
pub mod indices;
pub mod ingest;
pub mod ism;
pub mod meta;
pub mod mustache;
pub mod params;
pub mod query;
pub mod restore;
pub mod scripts;
pub mod security;
pub mod shard_files;
pub mod snapshot;
pub mod templates;
pub mod version;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::config::SeedData;
use crate::http::{Call, Dropped, Protocol, Resp, guarded, json as json_resp, read_body};
use crate::identity::Caller;
use crate::{Shared, auth};
use version::Engine;

/// `http.max_initial_line_length`, which Amazon OpenSearch Service does not let anyone change.
pub const MAX_INITIAL_LINE_LENGTH: usize = 4096;

/// The documents, repositories, snapshots in flight and recoveries of one domain.
pub struct DomainData {
    pub name: String,
    /// Where the domain is (account, Region, name): how the control plane knows it.
    pub key: crate::control_plane::DomainKey,
    /// The parsed engine version: what the REST API accepts and how the server behaves.
    pub engine: Engine,
    /// This domain's `seed_data` (empty when the configuration has none).
    pub seed: SeedData,
    /// When the domain's cluster came up: writers and automated snapshots count from here.
    pub started: Instant,
    pub state: Mutex<DataState>,
    /// Fine-grained access control (the security plugin and its configuration).
    pub security: security::Security,
}

#[derive(Default)]
pub struct DataState {
    pub indices: BTreeMap<String, indices::Index>,
    pub repos: BTreeMap<String, snapshot::Repository>,
    /// Snapshots this domain took, with when they finish: (repository, snapshot) → run.
    pub runs: BTreeMap<(String, String), snapshot::Run>,
    pub recoveries: BTreeMap<String, restore::Recovery>,
    pub data_streams: BTreeMap<String, DataStream>,
    /// Documents each writer (by index) has written so far.
    pub written: BTreeMap<String, u64>,
    /// Templates, pipelines, scripts, ISM and saved objects ([`meta`]).
    pub meta: meta::Meta,
}

/// A data stream: its backing indices, oldest first (the last is the write index).
#[derive(Debug, Clone)]
pub struct DataStream {
    pub name: String,
    pub timestamp_field: String,
    pub generation: u32,
    pub indices: Vec<String>,
}

/// The name OpenSearch gives generation `generation` of `stream`'s backing indices.
pub fn backing_index(stream: &str, generation: u32) -> String {
    format!(".ds-{stream}-{generation:06}")
}

impl DataState {
    /// An index expression with every data-stream name replaced by its backing indices
    /// (wildcards match streams too), as OpenSearch resolves expressions for searches and snapshots.
    pub fn expand_streams(&self, expr: &str) -> (String, Vec<String>) {
        let mut parts = Vec::new();
        let mut streams = Vec::new();
        for part in expr.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let pattern = if part == "_all" { "*" } else { part };
            let matched: Vec<&DataStream> = self
                .data_streams
                .values()
                .filter(|d| indices::glob(pattern.trim_start_matches('-'), &d.name))
                .collect();
            if matched.is_empty() || part.starts_with('-') {
                parts.push(part.to_owned());
                continue;
            }
            if pattern.contains('*') {
                parts.push(part.to_owned());
            }
            for d in matched {
                streams.push(d.name.clone());
                parts.extend(d.indices.iter().cloned());
            }
        }
        streams.sort();
        streams.dedup();
        (parts.join(","), streams)
    }
}

impl DomainData {
    pub fn new(
        key: crate::control_plane::DomainKey,
        engine_version: &str,
        seed: SeedData,
        started: Instant,
    ) -> Self {
        let engine = Engine::of_domain(engine_version);
        let mut state = DataState::default();
        // The configuration was checked at start-up with the same code, so this cannot fail.
        let _ = meta::apply_seed(
            &mut state,
            &engine,
            &seed,
            chrono::Utc::now().timestamp_millis(),
        );
        Self {
            name: key.name.clone(),
            key,
            engine,
            seed,
            started,
            state: Mutex::new(state),
            security: security::Security::default(),
        }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, DataState> {
        self.state.lock().expect("domain data lock")
    }

    /// Loads a seed domain's indices (and `.kibana`), data streams, closed and warm indices.
    pub fn seed(&self, seed: &crate::config::SeedDomain) {
        let mut state = self.lock();
        if seed.kibana {
            let mut kibana = indices::Index::new(".kibana_1", &self.engine, None, None);
            kibana.docs.insert(
                "config:2.11.0".into(),
                json!({"type": "config", "config": {"buildNum": 1}}),
            );
            state.indices.insert(".kibana_1".into(), kibana);
        }
        for index in &seed.indices {
            let mut i = indices::Index::new(
                &index.name,
                &self.engine,
                index.settings.as_ref(),
                index.mappings.clone(),
            );
            for (n, doc) in index.documents.iter().enumerate() {
                let id = doc
                    .get("_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| n.to_string());
                let mut doc = doc.clone();
                if let Some(o) = doc.as_object_mut() {
                    o.remove("_id");
                }
                i.docs.insert(id, doc);
            }
            for n in 0..index.generate {
                i.docs.insert(
                    n.to_string(),
                    json!({"n": n, "title": format!("document {n}")}),
                );
            }
            i.closed = self.seed.closed.contains(&index.name);
            i.warm = self.seed.warm.contains(&index.name);
            state.indices.insert(index.name.clone(), i);
        }
        for ds in &self.seed.data_streams {
            // A stream exists because a template made it: give it one unless a seed did.
            let made_by_template = templates::find_v2(&state.meta.templates, &ds.name, false)
                .is_some_and(|t| {
                    state.meta.templates.composable[&t]
                        .get("data_stream")
                        .is_some()
                });
            if !made_by_template {
                state.meta.templates.composable.insert(
                    format!("{}-template", ds.name),
                    json!({"index_patterns": [ds.name], "data_stream": {"timestamp_field": {"name": "@timestamp"}}}),
                );
            }
            let mut backing = Vec::new();
            for generation in 1..=ds.generations {
                let name = backing_index(&ds.name, generation);
                let settings = json!({"index": {"hidden": "true"}});
                let mut i = indices::Index::new(&name, &self.engine, Some(&settings), None);
                i.data_stream = Some(ds.name.clone());
                for n in 0..ds.generate {
                    i.docs.insert(
                        format!("{generation}-{n}"),
                        json!({"@timestamp": format!("2026-01-{:02}T00:00:{:02}Z", generation.min(28), n % 60), "n": n}),
                    );
                }
                state.indices.insert(name.clone(), i);
                backing.push(name);
            }
            state.data_streams.insert(
                ds.name.clone(),
                DataStream {
                    name: ds.name.clone(),
                    timestamp_field: "@timestamp".into(),
                    generation: ds.generations,
                    indices: backing,
                },
            );
        }
    }

    /// Brings every writer of a source in use up to now: `docs_per_minute` of simulated time
    /// since the domain came up, with ids `live-<n>`. Called before each request is answered, so a
    /// snapshot sees what was written before it started and nothing after.
    pub fn catch_up_writers(&self, shared: &Shared) {
        if self.seed.writers.is_empty() || shared.config.time_scale <= 0.0 {
            return;
        }
        let simulated =
            (shared.clock.now() - self.started).as_secs_f64() / shared.config.time_scale;
        let mut state = self.lock();
        for w in &self.seed.writers {
            let due = (w.docs_per_minute * simulated / 60.0).floor() as u64;
            let done = state.written.get(&w.index).copied().unwrap_or(0);
            let Some(index) = state.indices.get_mut(&w.index) else {
                continue;
            };
            if index.closed || index.warm {
                continue;
            }
            for n in done..due {
                index.docs.insert(
                    format!("live-{n}"),
                    json!({"n": n, "title": format!("live document {n}")}),
                );
            }
            state.written.insert(w.index.clone(), due.max(done));
        }
    }
}

/// Accepts TLS connections for one domain until shutdown.
pub async fn serve(
    shared: Arc<Shared>,
    domain: crate::control_plane::DomainKey,
    data: Arc<DomainData>,
    listener: tokio::net::TcpListener,
) {
    let mut shutdown = shared.shutdown.clone();
    let acceptor = shared.tls.acceptor();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            _ = shutdown.changed() => return,
        };
        if shared.domains.serving(&shared, &domain).is_none() {
            return;
        }
        let (shared, data, acceptor) = (shared.clone(), data.clone(), acceptor.clone());
        let peer = stream
            .peer_addr()
            .map(|a| a.ip())
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let (shared, data) = (shared.clone(), data.clone());
                let line = crate::http::request_line(&req);
                crate::log::with_line(line.0, line.1, async move {
                    handle(&shared, &data, req, peer).await
                })
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// A parsed data-plane request.
pub struct Req {
    pub method: Method,
    pub segments: Vec<String>,
    pub query: BTreeMap<String, String>,
    pub body: Bytes,
    /// The request's headers (Dashboards reads its xsrf and tenant headers).
    pub headers: http::HeaderMap,
    /// Who sent the request: the signing identity, or `anonymous`.
    pub caller: Caller,
    /// The decoded path with the query as sent (the metadata handlers route on it).
    pub uri: String,
}

impl Req {
    pub fn flag(&self, name: &str) -> bool {
        self.query
            .get(name)
            .is_some_and(|v| v.is_empty() || v == "true")
    }

    pub fn json_body(&self) -> Result<Value, Resp> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(json!({}));
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            crate::http::os_error(
                400,
                "parse_exception",
                &format!("request body is not valid JSON: {e}"),
            )
        })
    }
}

/// Names a request for the log and the fault rules: (operation, target, mutating).
fn classify(method: &Method, segs: &[&str]) -> (&'static str, Option<String>, bool) {
    use Method as M;
    let t = |s: &str| Some(s.to_owned());
    if let Some(found) = classify_meta(method, segs) {
        return found;
    }
    match (method, segs) {
        (_, []) => ("Info", None, false),
        (&M::GET, ["_cluster", "health", ..]) => ("ClusterHealth", None, false),
        (&M::GET, ["_cat", "indices", ..]) => ("CatIndices", None, false),
        (&M::GET, ["_recovery"]) => ("Recovery", None, false),
        (&M::GET, [index, "_recovery"]) => ("Recovery", t(index), false),
        (&M::POST | &M::PUT, ["_bulk"]) => ("Bulk", None, true),
        (&M::POST | &M::PUT, [index, "_bulk"]) => ("Bulk", t(index), true),
        (&M::GET | &M::POST, ["_count"]) => ("Count", None, false),
        (&M::GET | &M::POST, [index, "_count"]) => ("Count", t(index), false),
        (&M::GET | &M::POST, ["_search"]) => ("Search", None, false),
        (&M::GET | &M::POST, [index, "_search"]) => ("Search", t(index), false),
        (&M::GET | &M::POST, ["_msearch"]) => ("MultiSearch", None, false),
        (&M::GET | &M::POST, [index, "_msearch"]) => ("MultiSearch", t(index), false),
        (&M::POST, [index, "_refresh"] | ["_refresh", index]) => ("Refresh", t(index), false),
        (&M::PUT | &M::POST, [index, "_doc", ..]) => ("IndexDocument", t(index), true),
        (&M::GET, ["_snapshot"]) => ("GetRepository", None, false),
        (&M::GET, ["_snapshot", "_status"]) => ("RunningSnapshotStatus", None, false),
        (&M::GET, ["_snapshot", repo, "_status"]) => ("RunningSnapshotStatus", t(repo), false),
        (&M::POST, ["_aliases"]) => ("UpdateAliases", None, true),
        (&M::PUT | &M::POST, ["_snapshot", repo]) => ("PutRepository", t(repo), true),
        (&M::GET, ["_snapshot", repo]) => ("GetRepository", t(repo), false),
        (&M::DELETE, ["_snapshot", repo]) => ("DeleteRepository", t(repo), true),
        (&M::POST, ["_snapshot", repo, "_verify"]) => ("VerifyRepository", t(repo), false),
        (&M::PUT | &M::POST, ["_snapshot", repo, _]) => ("CreateSnapshot", t(repo), true),
        (&M::GET, ["_snapshot", repo, _]) => ("GetSnapshot", t(repo), false),
        (&M::DELETE, ["_snapshot", repo, _]) => ("DeleteSnapshot", t(repo), true),
        (&M::GET, ["_snapshot", repo, _, "_status"]) => ("SnapshotStatus", t(repo), false),
        (&M::POST, ["_snapshot", repo, _, "_restore"]) => ("RestoreSnapshot", t(repo), true),
        (&M::GET | &M::POST, ["_cluster", "allocation", "explain"]) => {
            ("AllocationExplain", None, false)
        }
        (&M::GET, ["_data_stream", ..]) => ("GetDataStream", None, false),
        (&M::GET, ["_settings", ..]) if segs.len() <= 2 => ("GetSettings", None, false),
        (&M::GET, [index, "_settings", ..]) if segs.len() <= 3 => ("GetSettings", t(index), false),
        (&M::POST, [index, "_close"]) => ("CloseIndex", t(index), true),
        (&M::POST, [index, "_open"]) => ("OpenIndex", t(index), true),
        (&M::PUT, [index]) => ("CreateIndex", t(index), true),
        (&M::DELETE, [index]) => ("DeleteIndex", t(index), true),
        (&M::HEAD, [index]) => ("IndexExists", t(index), false),
        (&M::GET, [index]) => ("GetIndex", t(index), false),
        _ => ("Unknown", None, false),
    }
}

/// The operations of templates, data streams, ingest, scripts, aliases, ISM and Dashboards.
fn classify_meta(method: &Method, segs: &[&str]) -> Option<(&'static str, Option<String>, bool)> {
    use Method as M;
    let t = |s: &str| Some(s.to_owned());
    let kind = |s: &str| match s {
        "_index_template" => Some("IndexTemplate"),
        "_component_template" => Some("ComponentTemplate"),
        "_template" => Some("LegacyTemplate"),
        _ => None,
    };
    Some(match (method, segs) {
        (_, [first, rest @ ..]) if kind(first).is_some() && rest.len() <= 1 => {
            let k = kind(first).expect("checked");
            let name = rest.first().and_then(|n| t(n));
            match (method, rest.len(), k) {
                (&M::PUT | &M::POST, 1, "IndexTemplate") => ("PutIndexTemplate", name, true),
                (&M::PUT | &M::POST, 1, "ComponentTemplate") => {
                    ("PutComponentTemplate", name, true)
                }
                (&M::PUT | &M::POST, 1, _) => ("PutLegacyTemplate", name, true),
                (&M::GET, _, "IndexTemplate") => ("GetIndexTemplate", name, false),
                (&M::GET, _, "ComponentTemplate") => ("GetComponentTemplate", name, false),
                (&M::GET, _, _) => ("GetLegacyTemplate", name, false),
                (&M::HEAD, 1, "IndexTemplate") => ("IndexTemplateExists", name, false),
                (&M::HEAD, 1, "ComponentTemplate") => ("ComponentTemplateExists", name, false),
                (&M::HEAD, 1, _) => ("LegacyTemplateExists", name, false),
                (&M::DELETE, 1, "IndexTemplate") => ("DeleteIndexTemplate", name, true),
                (&M::DELETE, 1, "ComponentTemplate") => ("DeleteComponentTemplate", name, true),
                (&M::DELETE, 1, _) => ("DeleteLegacyTemplate", name, true),
                _ => return None,
            }
        }
        (&M::PUT | &M::POST, [index, "_create", _]) => ("CreateDocument", t(index), true),
        (&M::PUT, ["_data_stream", name]) => ("CreateDataStream", t(name), true),
        (&M::DELETE, ["_data_stream", name]) => ("DeleteDataStream", t(name), true),
        (&M::POST, [target, "_rollover", ..]) if segs.len() <= 3 => ("Rollover", t(target), true),
        (&M::PUT, ["_ingest", "pipeline", id]) => ("PutPipeline", t(id), true),
        (&M::GET | &M::POST, ["_ingest", "pipeline", "_simulate"]) => {
            ("SimulatePipeline", None, false)
        }
        (&M::GET | &M::POST, ["_ingest", "pipeline", id, "_simulate"]) => {
            ("SimulatePipeline", t(id), false)
        }
        (&M::GET, ["_ingest", "pipeline", ..]) if segs.len() <= 3 => ("GetPipeline", None, false),
        (&M::DELETE, ["_ingest", "pipeline", id]) => ("DeletePipeline", t(id), true),
        (&M::PUT | &M::POST, ["_scripts", id, ..]) if segs.len() <= 3 => ("PutScript", t(id), true),
        (&M::GET, ["_scripts", id]) => ("GetScript", t(id), false),
        (&M::DELETE, ["_scripts", id]) => ("DeleteScript", t(id), true),
        (&M::GET | &M::POST, ["_render", "template", ..]) if segs.len() <= 3 => {
            ("RenderTemplate", None, false)
        }
        (&M::GET | &M::POST, ["_search", "template"]) => ("SearchTemplate", None, false),
        (&M::GET | &M::POST, [index, "_search", "template"]) => ("SearchTemplate", t(index), false),
        (&M::GET, ["_cluster", "state", ..]) => ("ClusterState", None, false),
        (&M::GET, ["_alias" | "_aliases", ..]) if segs.len() <= 2 => ("GetAlias", None, false),
        (&M::HEAD, ["_alias", _]) => ("AliasExists", None, false),
        (&M::GET, [index, "_alias" | "_aliases", ..]) if segs.len() <= 3 => {
            ("GetAlias", t(index), false)
        }
        (&M::HEAD, [index, "_alias", _]) => ("AliasExists", t(index), false),
        (&M::PUT | &M::POST, [index, "_alias" | "_aliases", _]) => ("PutAlias", t(index), true),
        (&M::DELETE, [index, "_alias" | "_aliases", _]) => ("DeleteAlias", t(index), true),
        (_, ["_plugins" | "_opendistro", "_ism", what, ..]) => {
            let mutating = *method != M::GET && *method != M::HEAD && *what != "explain";
            let op = match *what {
                "policies" if *method == M::PUT && segs.len() == 3 => "IsmPutPolicies",
                "policies" if *method == M::PUT => "IsmPutPolicy",
                "policies" if *method == M::DELETE => "IsmDeletePolicy",
                "policies" if segs.len() == 3 => "IsmGetPolicies",
                "policies" => "IsmGetPolicy",
                "add" => "IsmAddPolicy",
                "remove" => "IsmRemovePolicy",
                "change_policy" => "IsmChangePolicy",
                "explain" => "IsmExplain",
                _ => "IsmUnknown",
            };
            (op, segs.get(3).and_then(|s| t(s)), mutating)
        }
        (_, ["_dashboards", ..]) | (_, ["_plugin", "kibana", ..]) => {
            let rest = if segs[0] == "_dashboards" {
                &segs[1..]
            } else {
                &segs[2..]
            };
            match (method, rest) {
                (&M::POST, ["api", "saved_objects", "_export"]) => {
                    ("DashboardsExport", None, false)
                }
                (&M::POST, ["api", "saved_objects", "_import"]) => ("DashboardsImport", None, true),
                (&M::GET, ["api", "saved_objects", "_find"]) => ("DashboardsFind", None, false),
                (&M::DELETE, ["api", "saved_objects", ..]) => ("DashboardsDelete", None, true),
                _ => ("Dashboards", None, false),
            }
        }
        _ => return None,
    })
}

async fn handle(
    shared: &Shared,
    data: &DomainData,
    req: Request<Incoming>,
    peer: std::net::IpAddr,
) -> Result<Resp, Dropped> {
    let (parts, body) = req.into_parts();
    let body = read_body(body).await;
    match shared.domains.serving(shared, &data.key) {
        None => return Err(Dropped),
        Some(false) => {
            return Ok(json_resp(
                503,
                &json!({"message": format!("Domain {} is not ready yet", data.name)}),
            ));
        }
        Some(true) => {}
    }
    let segments: Vec<String> = parts
        .uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (operation, target, mutating) = security::api::classify(&parts.method, &segs)
        .unwrap_or_else(|| classify(&parts.method, &segs));
    // An unsigned request (none, or HTTP basic auth) is `anonymous` to the gateway.
    let signed = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-"));
    let verify = crate::identity::verify(
        shared,
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
        &body,
    );
    let verify = verify.and_then(|scope| {
        if scope.service == "es" {
            Ok(scope)
        } else {
            Err(auth::AuthFailure::Malformed(format!(
                "credential scope names service {:?}; a domain endpoint expects \"es\"",
                scope.service
            )))
        }
    });
    // An unsigned request (none, or HTTP basic auth) is `anonymous`; a signed one that fails
    // verification never reaches the handler.
    let caller = match verify.as_ref() {
        Ok(scope) if signed => shared
            .identities
            .get(&scope.access_key)
            .map_or(Caller::Anonymous, Caller::Signed),
        _ => Caller::Anonymous,
    };
    let decoded_path = percent_encoding::percent_decode_str(parts.uri.path())
        .decode_utf8_lossy()
        .into_owned();
    let uri = match parts.uri.query() {
        Some(q) => format!("{decoded_path}?{q}"),
        None => decoded_path.clone(),
    };
    let req = Req {
        caller,
        uri,
        method: parts.method.clone(),
        query: form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        segments,
        body,
        headers: parts.headers.clone(),
    };
    let call = Call {
        service: "es-data",
        operation: operation.to_owned(),
        target,
        mutating,
        protocol: Protocol::OpenSearch,
        // The gateway decides with the domain's access policy, inside the handler.
        checks: Vec::new(),
        source_ip: Some(peer),
    };
    let head = parts.method == Method::HEAD;
    let line = crate::http::request_line(&http::Request::from_parts(parts.clone(), ()));
    let line_len = line.0.len() + 1 + line.1.len() + " HTTP/1.1".len();
    let path = parts.uri.path().to_owned();
    let resp = guarded(shared, call, signed.then_some(verify), async {
        // The gateway in front of the nodes first; then the node's HTTP layer (Netty's line
        // limit), its REST handler (parameters), and the security plugin with the action.
        if let Err(denied) =
            crate::access_policy::check(shared, &data.key, &req.caller, &parts.method, &path, peer)
        {
            return denied;
        }
        if line_len > MAX_INITIAL_LINE_LENGTH {
            return too_long_line(&data.engine);
        }
        if let Err(refused) =
            params::check(&data.engine, operation, &decoded_path, req.query.keys())
        {
            return refused;
        }
        if operation == "PutRepository"
            && let Some(denied) =
                crate::identity::pass_role_for_repository(&req.caller, &req.body, peer)
        {
            return denied;
        }
        data.catch_up_writers(shared);
        ism::catch_up(shared, data);
        let caller = req.caller.clone();
        security::handle(shared, data, &caller, &parts.headers, operation, req).await
    })
    .await?;
    if head {
        let (parts, _) = resp.into_parts();
        return Ok(Resp::from_parts(parts, s3s::Body::empty()));
    }
    Ok(resp)
}

/// 400 for a request line over [`MAX_INITIAL_LINE_LENGTH`], as Netty's decoder refuses it: a
/// `TooLongFrameException` in the Netty the Elasticsearch versions shipped with, the
/// `TooLongHttpLineException` subclass (netty/netty#12084) in OpenSearch's.
fn too_long_line(engine: &Engine) -> Resp {
    let kind = if engine.is_opensearch() {
        "too_long_http_line_exception"
    } else {
        "too_long_frame_exception"
    };
    crate::http::os_error(
        400,
        kind,
        &format!("An HTTP line is larger than {MAX_INITIAL_LINE_LENGTH} bytes."),
    )
}

/// The handlers of the cluster metadata families (`None`: not one of theirs).
fn route_meta(
    shared: &Shared,
    data: &DomainData,
    operation: &str,
    req: &Req,
    uri: &str,
) -> Option<Resp> {
    let now = meta::now_ms(shared);
    Some(match operation {
        op if op.contains("IndexTemplate")
            || op.contains("ComponentTemplate")
            || op.contains("LegacyTemplate") =>
        {
            templates::handle(data, op, req, uri)
        }
        "CreateDataStream" | "DeleteDataStream" => templates::data_stream(
            data,
            now,
            &req.method,
            req.segments.get(1).map_or("", String::as_str),
            uri,
        ),
        "Rollover" => templates::rollover_api(data, now, req),
        "PutPipeline" | "GetPipeline" | "DeletePipeline" | "SimulatePipeline" => {
            ingest::handle(data, now, operation, req)
        }
        "PutScript" | "GetScript" | "DeleteScript" | "RenderTemplate" | "SearchTemplate" => {
            scripts::handle(data, operation, req)
        }
        "ClusterState" => scripts::cluster_state(shared, data, req),
        "GetAlias" | "AliasExists" => aliases::get(data, req),
        "PutAlias" => aliases::put_or_delete(data, req, false),
        "DeleteAlias" => aliases::put_or_delete(data, req, true),
        "UpdateAliases" => aliases::update(data, req),
        op if op.starts_with("Ism") => ism::handle(data, now, req, uri),
        op if op.starts_with("Dashboards") => {
            dashboards::handle(data, now, data.security.is_enabled(), req, uri)
        }
        _ => return None,
    })
}

async fn route(shared: &Shared, data: &DomainData, operation: &str, req: Req) -> Resp {
    if let Some(resp) = route_meta(shared, data, operation, &req, &req.uri) {
        return resp;
    }
    let seg = |i: usize| req.segments.get(i).cloned().unwrap_or_default();
    match operation {
        "Info" => indices::info(shared, data),
        "ClusterHealth" => indices::health(shared, data),
        "CatIndices" => indices::cat_indices(shared, data, &req),
        "CreateIndex" => indices::create(data, meta::now_ms(shared), &seg(0), &req),
        "CloseIndex" => indices::open_close(data, &seg(0), true),
        "OpenIndex" => indices::open_close(data, &seg(0), false),
        "AllocationExplain" => match req.json_body() {
            Ok(body) => match cluster::explain(shared, data, &body) {
                Ok(v) => json_resp(200, &v),
                Err((status, kind, reason)) => crate::http::os_error(status, &kind, &reason),
            },
            Err(r) => r,
        },
        "GetDataStream" => get_data_stream(shared, data, req.segments.get(1).map(String::as_str)),
        "DeleteIndex" => indices::delete(data, &seg(0)),
        "IndexExists" | "GetIndex" => indices::get(data, &seg(0)),
        "GetSettings" => {
            let (expr, names) = match req.segments.first().map(String::as_str) {
                Some("_settings") => ("_all".to_owned(), seg(1)),
                _ => (seg(0), seg(2)),
            };
            indices::get_settings(data, &expr, &names, req.flag("flat_settings"))
        }
        "Bulk" => indices::bulk(
            data,
            meta::now_ms(shared),
            req.segments.first().filter(|s| *s != "_bulk").cloned(),
            &req,
        ),
        "IndexDocument" | "CreateDocument" => indices::index_document(
            data,
            meta::now_ms(shared),
            &seg(0),
            req.segments.get(1).cloned(),
            req.segments.get(2).cloned(),
            &req,
        ),
        "Count" => indices::count(data, &req),
        "Search" => indices::search(data, &req),
        "MultiSearch" => match indices::msearch_items(&req) {
            Ok(items) => indices::msearch(data, &req, &items, &|_| None),
            Err(refused) => refused,
        },
        "Refresh" => json_resp(
            200,
            &json!({"_shards": {"total": 1, "successful": 1, "failed": 0}}),
        ),
        "Recovery" if req.segments.len() == 1 => json_resp(
            401,
            &json!({"Message": "Your request: '/_recovery' is not allowed."}),
        ),
        "Recovery" => restore::recovery(shared, data, &seg(0), req.flag("active_only")),
        "PutRepository" => snapshot::put_repository(shared, data, &seg(1), &req).await,
        "GetRepository" => {
            snapshot::get_repository(shared, data, req.segments.get(1).map(String::as_str))
        }
        "DeleteRepository" => snapshot::delete_repository(data, &seg(1)),
        "VerifyRepository" => snapshot::verify_repository(shared, data, &seg(1)).await,
        "CreateSnapshot" => snapshot::create(shared, data, &seg(1), &seg(2), &req).await,
        "GetSnapshot" => snapshot::get(shared, data, &seg(1), &seg(2)).await,
        "SnapshotStatus" => snapshot::status(shared, data, &seg(1), &seg(2)).await,
        "RunningSnapshotStatus" => {
            snapshot::running_status(
                shared,
                data,
                req.segments.get(1).filter(|s| *s != "_status"),
            )
            .await
        }
        "DeleteSnapshot" => snapshot::delete(shared, data, &seg(1), &seg(2)).await,
        "RestoreSnapshot" => restore::restore(shared, data, &seg(1), &seg(2), &req).await,
        _ => crate::http::os_error(
            400,
            "illegal_argument_exception",
            &format!(
                "request [{} /{}] is not supported by the snapferry sandbox",
                req.method,
                req.segments.join("/")
            ),
        ),
    }
}

/// `GET _data_stream[/<names>]`.
fn get_data_stream(shared: &Shared, data: &DomainData, expr: Option<&str>) -> Resp {
    let copies = cluster::all_copies(shared, data);
    let state = data.lock();
    let names: Vec<String> = state.data_streams.keys().cloned().collect();
    let selected: Vec<String> = match expr {
        None | Some("_all") | Some("*") => names,
        Some(expr) => {
            let mut out = Vec::new();
            for part in expr.split(',') {
                let matched: Vec<String> = names
                    .iter()
                    .filter(|n| indices::glob(part, n))
                    .cloned()
                    .collect();
                if matched.is_empty() && !part.contains('*') {
                    return indices::index_not_found(part);
                }
                out.extend(matched);
            }
            out
        }
    };
    let streams: Vec<Value> = selected
        .iter()
        .map(|n| {
            let d = &state.data_streams[n];
            let backing: Vec<Value> = d
                .indices
                .iter()
                .map(|i| json!({"index_name": i, "index_uuid": state.indices.get(i).map(indices::Index::uuid).unwrap_or_default()}))
                .collect();
            let status = d
                .indices
                .iter()
                .filter_map(|i| copies.get(i).map(|c| cluster::health_of(c)))
                .max_by_key(|h| match *h {
                    "red" => 2,
                    "yellow" => 1,
                    _ => 0,
                })
                .unwrap_or("green")
                .to_uppercase();
            json!({
                "name": d.name,
                "timestamp_field": {"name": d.timestamp_field},
                "indices": backing,
                "generation": d.generation,
                "status": status,
                "template": templates::stream_template(&state, &d.name),
            })
        })
        .collect();
    json_resp(200, &json!({ "data_streams": streams }))
}
