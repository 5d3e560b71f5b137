//! Each domain's data plane: the OpenSearch REST API over HTTPS (SigV4, service `es`), with its
//! real JSON shapes and error envelope. Requests are routed here to [`indices`] (data in and out),
//! [`snapshot`] (repositories and snapshots written into S3) and [`restore`] (restore and
//! recovery). One listener per domain, bound when the domain is created, answering once it's ready.

// Handlers return the error response itself as `Err`: it is built once per failed request and
// sent as is, so boxing it would only add noise.
#![allow(clippy::result_large_err)]

pub mod indices;
pub mod restore;
pub mod snapshot;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};

use crate::http::{Call, Dropped, Protocol, Resp, guarded, json as json_resp, read_body};
use crate::{Shared, auth};

/// The documents, repositories, snapshots in flight and recoveries of one domain.
pub struct DomainData {
    pub name: String,
    pub engine_version: String,
    pub state: Mutex<DataState>,
}

#[derive(Default)]
pub struct DataState {
    pub indices: BTreeMap<String, indices::Index>,
    pub repos: BTreeMap<String, snapshot::Repository>,
    /// Snapshots this domain took, with when they finish: (repository, snapshot) → run.
    pub runs: BTreeMap<(String, String), snapshot::Run>,
    pub recoveries: BTreeMap<String, restore::Recovery>,
}

impl DomainData {
    pub fn new(name: &str, engine_version: &str) -> Self {
        Self {
            name: name.to_owned(),
            engine_version: engine_version.to_owned(),
            state: Mutex::new(DataState::default()),
        }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, DataState> {
        self.state.lock().expect("domain data lock")
    }

    /// Loads a seed domain's indices (and `.kibana`).
    pub fn seed(&self, seed: &crate::config::SeedDomain) {
        let mut state = self.lock();
        if seed.kibana {
            let mut kibana = indices::Index::new(".kibana_1", None, None);
            kibana.docs.insert(
                "config:2.11.0".into(),
                json!({"type": "config", "config": {"buildNum": 1}}),
            );
            state.indices.insert(".kibana_1".into(), kibana);
        }
        for index in &seed.indices {
            let mut i =
                indices::Index::new(&index.name, index.settings.as_ref(), index.mappings.clone());
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
            state.indices.insert(index.name.clone(), i);
        }
    }
}

/// Accepts TLS connections for one domain until shutdown.
pub async fn serve(
    shared: Arc<Shared>,
    domain: String,
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
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req| {
                let (shared, data) = (shared.clone(), data.clone());
                async move { handle(&shared, &data, req).await }
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
    /// The identity that signed the request (for the checks the gateway makes on its behalf).
    pub caller: Option<Arc<crate::identity::Identity>>,
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
        (&M::PUT, [index]) => ("CreateIndex", t(index), true),
        (&M::DELETE, [index]) => ("DeleteIndex", t(index), true),
        (&M::HEAD, [index]) => ("IndexExists", t(index), false),
        (&M::GET, [index]) => ("GetIndex", t(index), false),
        _ => ("Unknown", None, false),
    }
}

async fn handle(
    shared: &Shared,
    data: &DomainData,
    req: Request<Incoming>,
) -> Result<Resp, Dropped> {
    let (parts, body) = req.into_parts();
    let body = read_body(body).await;
    match shared.domains.serving(shared, &data.name) {
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
    let (operation, target, mutating) = classify(&parts.method, &segs);
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
    let caller = verify
        .as_ref()
        .ok()
        .and_then(|scope| shared.identities.get(&scope.access_key));
    let req = Req {
        caller,
        method: parts.method.clone(),
        query: form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        segments,
        body,
    };
    let call = Call {
        service: "es-data",
        operation: operation.to_owned(),
        target,
        mutating,
        protocol: Protocol::OpenSearch,
        checks: vec![crate::identity::data_plane_check(
            shared,
            &data.name,
            &parts.method,
            parts.uri.path(),
        )],
    };
    let head = parts.method == Method::HEAD;
    let resp = guarded(
        shared,
        call,
        Some(verify),
        route(shared, data, operation, req),
    )
    .await?;
    if head {
        let (parts, _) = resp.into_parts();
        return Ok(Resp::from_parts(parts, s3s::Body::empty()));
    }
    Ok(resp)
}

async fn route(shared: &Shared, data: &DomainData, operation: &str, req: Req) -> Resp {
    let seg = |i: usize| req.segments.get(i).cloned().unwrap_or_default();
    match operation {
        "Info" => indices::info(shared, data),
        "ClusterHealth" => indices::health(shared, data),
        "CatIndices" => indices::cat_indices(shared, data, &req),
        "CreateIndex" => indices::create(data, &seg(0), &req),
        "DeleteIndex" => indices::delete(data, &seg(0)),
        "IndexExists" | "GetIndex" => indices::get(data, &seg(0)),
        "Bulk" => indices::bulk(
            data,
            req.segments.first().filter(|s| *s != "_bulk").cloned(),
            &req,
        ),
        "IndexDocument" => {
            indices::index_document(data, &seg(0), req.segments.get(2).cloned(), &req)
        }
        "Count" => indices::count(data, &req),
        "Search" => indices::search(data, &req),
        "Refresh" => json_resp(
            200,
            &json!({"_shards": {"total": 1, "successful": 1, "failed": 0}}),
        ),
        "Recovery" if req.segments.len() == 1 => json_resp(
            401,
            &json!({"Message": "Your request: '/_recovery' is not allowed."}),
        ),
        "Recovery" => restore::recovery(shared, data, &seg(0)),
        "PutRepository" => {
            match crate::identity::pass_role_for_repository(req.caller.as_deref(), &req.body) {
                Some(denied) => denied,
                None => snapshot::put_repository(shared, data, &seg(1), &req).await,
            }
        }
        "GetRepository" => snapshot::get_repository(data, req.segments.get(1).map(String::as_str)),
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
        "UpdateAliases" => indices::update_aliases(data, &req),
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
