//! Indices and documents: create/delete, `_bulk`, `_doc`, `_count`, `_search` (match_all),
//! `_cluster/health`, `_cat/indices` and `GET /`, enough for tests to seed a domain and check what
//! a restore brought back. Settings are kept flat (`index.number_of_shards`), as snapshots store them.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::Method;

use serde_json::{Value, json};

use super::version::Engine;
use super::{DataState, DomainData, Req};
use crate::Shared;
use crate::http::{Resp, json as json_resp, os_error};

/// One index: flat settings, mappings, documents by id, and where it lives.
#[derive(Debug, Clone)]
pub struct Index {
    pub settings: BTreeMap<String, String>,
    pub mappings: Value,
    pub docs: BTreeMap<String, Value>,
    /// Alias name → its properties on this index (`is_write_index`, `filter`, routing).
    pub aliases: BTreeMap<String, Value>,
    /// Closed (`POST <index>/_close`): listed as `close`, not searchable, not in health.
    pub closed: bool,
    /// On UltraWarm nodes (read-only, no replicas on hot nodes).
    pub warm: bool,
    /// The data stream this index backs (`.ds-<stream>-<generation>`).
    pub data_stream: Option<String>,
}

/// Flattens `{"index":{"number_of_shards":1}}` / `{"number_of_shards":1}` into `index.*` keys.
pub fn flatten_settings(value: &Value) -> BTreeMap<String, String> {
    fn walk(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            Value::String(s) => {
                out.insert(prefix.to_owned(), s.clone());
            }
            Value::Null => {}
            other => {
                out.insert(prefix.to_owned(), other.to_string());
            }
        }
    }
    let mut raw = BTreeMap::new();
    walk("", value, &mut raw);
    raw.into_iter()
        .map(|(k, v)| {
            if k.starts_with("index.") {
                (k, v)
            } else {
                (format!("index.{k}"), v)
            }
        })
        .collect()
}

impl Index {
    /// A new index as `engine` creates it: its default number of primaries, one replica, and
    /// `index.version.created` of the engine unless the settings say otherwise.
    pub fn new(
        name: &str,
        engine: &Engine,
        settings: Option<&Value>,
        mappings: Option<Value>,
    ) -> Self {
        let mut flat = BTreeMap::from([
            (
                "index.number_of_shards".to_owned(),
                engine.default_shards().to_string(),
            ),
            ("index.number_of_replicas".to_owned(), "1".to_owned()),
            ("index.version.created".to_owned(), engine.id().to_string()),
        ]);
        if let Some(s) = settings {
            flat.extend(flatten_settings(s));
        }
        flat.insert(
            "index.uuid".into(),
            uuid::Uuid::new_v4().simple().to_string()[..22].to_owned(),
        );
        flat.insert("index.provided_name".into(), name.to_owned());
        flat.insert(
            "index.creation_date".into(),
            chrono::Utc::now().timestamp_millis().to_string(),
        );
        Self {
            settings: flat,
            mappings: mappings.unwrap_or_else(|| json!({})),
            docs: BTreeMap::new(),
            aliases: BTreeMap::new(),
            closed: false,
            warm: false,
            data_stream: None,
        }
    }

    pub fn replicas(&self) -> u64 {
        self.settings
            .get("index.number_of_replicas")
            .and_then(|s| s.parse().ok())
            .unwrap_or(1)
    }

    pub fn creation_millis(&self) -> i64 {
        self.settings
            .get("index.creation_date")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    pub fn shards(&self) -> u64 {
        self.settings
            .get("index.number_of_shards")
            .and_then(|s| s.parse().ok())
            .unwrap_or(1)
    }

    pub fn uuid(&self) -> String {
        self.settings.get("index.uuid").cloned().unwrap_or_default()
    }

    /// Approximate on-disk size: the JSON size of the documents.
    pub fn size_in_bytes(&self) -> u64 {
        self.docs
            .values()
            .map(|d| d.to_string().len() as u64 + 16)
            .sum()
    }
}

pub fn index_not_found(name: &str) -> Resp {
    let body = json!({
        "error": {
            "root_cause": [{"type": "index_not_found_exception", "reason": format!("no such index [{name}]"), "index": name, "resource.id": name, "resource.type": "index_or_alias", "index_uuid": "_na_"}],
            "type": "index_not_found_exception",
            "reason": format!("no such index [{name}]"),
            "index": name, "resource.id": name, "resource.type": "index_or_alias", "index_uuid": "_na_"
        },
        "status": 404
    });
    json_resp(404, &body)
}

/// Expands `a,b`, `logs-*`, `_all`, `*` to existing index names; `Err(name)` for a missing
/// concrete name. Hidden (`.`-prefixed) indices match only patterns that start with `.`.
pub fn resolve(names: &[String], expr: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for part in expr.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (exclude, pattern) = match part.strip_prefix('-') {
            Some(p) if !out.is_empty() => (true, p),
            _ => (false, part),
        };
        let pattern = if pattern == "_all" { "*" } else { pattern };
        if pattern.contains('*') {
            for n in names {
                if glob(pattern, n) && (!n.starts_with('.') || pattern.starts_with('.')) {
                    if exclude {
                        out.retain(|x| x != n);
                    } else if !out.contains(n) {
                        out.push(n.clone());
                    }
                }
            }
        } else if exclude {
            out.retain(|x| x != pattern);
        } else if names.iter().any(|n| n == pattern) {
            if !out.iter().any(|x| x == pattern) {
                out.push(pattern.to_owned());
            }
        } else {
            return Err(pattern.to_owned());
        }
    }
    Ok(out)
}

/// `*` and `?` wildcard match.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

pub fn info(shared: &Shared, data: &DomainData) -> Resp {
    let e = &data.engine;
    let es = !e.is_opensearch();
    let mut version = json!({
        "number": e.number(),
        "build_type": "tar",
        "build_hash": "unknown",
        "build_date": "2024-01-01T00:00:00.000Z",
        "build_snapshot": false,
        "lucene_version": e.lucene(),
        "minimum_wire_compatibility_version": e.minimum_wire_compatibility(),
        "minimum_index_compatibility_version": e.minimum_index_compatibility().1,
    });
    if es {
        version["build_flavor"] = json!("oss");
    } else {
        version["distribution"] = json!("opensearch");
    }
    json_resp(
        200,
        &json!({
            "name": format!("{}-node-1", data.name),
            "cluster_name": format!("{}:{}", shared.config.account_id, data.name),
            "cluster_uuid": "sandbox-cluster-uuid-000",
            "version": version,
            "tagline": if es { "You Know, for Search" } else { "The OpenSearch Project: https://opensearch.org/" },
        }),
    )
}

pub fn health(shared: &Shared, data: &DomainData) -> Resp {
    json_resp(200, &super::cluster::health(shared, data))
}

/// `GET _cat/indices[/<expr>]`; Amazon OpenSearch Service's `_cat/indices/_hot` and
/// `_cat/indices/_warm` list the indices of one tier.
pub fn cat_indices(shared: &Shared, data: &DomainData, req: &Req) -> Resp {
    let copies = super::cluster::all_copies(shared, data);
    let state = data.lock();
    let names: Vec<String> = state.indices.keys().cloned().collect();
    let selected = match req.segments.get(2).map(String::as_str) {
        Some("_warm") => names
            .into_iter()
            .filter(|n| state.indices[n].warm)
            .collect(),
        Some("_hot") => names
            .into_iter()
            .filter(|n| !state.indices[n].warm)
            .collect(),
        Some(expr) => match resolve(&names, expr) {
            Ok(v) => v,
            Err(missing) => return index_not_found(&missing),
        },
        None => names,
    };
    let replicated_closed = data.engine.at_least_es(7, 2);
    let rows: Vec<Value> = selected
        .iter()
        .filter_map(|n| state.indices.get(n).map(|i| (n, i)))
        .map(|(name, i)| {
            let size = i.size_in_bytes();
            let health = match copies.get(name) {
                Some(c) => super::cluster::health_of(c),
                None if replicated_closed => "green",
                None => "",
            };
            let rep = if i.warm { "0".to_owned() } else { i.replicas().to_string() };
            if i.closed {
                return json!({
                    "health": health, "status": "close", "index": name, "uuid": i.uuid(),
                    "pri": i.shards().to_string(), "rep": rep,
                    "docs.count": null, "docs.deleted": null, "store.size": null, "pri.store.size": null,
                });
            }
            json!({
                "health": health,
                "status": "open",
                "index": name,
                "uuid": i.uuid(),
                "pri": i.shards().to_string(),
                "rep": rep,
                "docs.count": i.docs.len().to_string(),
                "docs.deleted": "0",
                "store.size": format!("{size}b"),
                "pri.store.size": format!("{size}b"),
            })
        })
        .collect();
    let columns = cat_columns(req.query.get("h").map(String::as_str));
    if req.query.get("format").map(String::as_str) == Some("json") {
        let rows = rows
            .iter()
            .map(|r| {
                Value::Object(
                    columns
                        .iter()
                        .map(|c| ((*c).to_owned(), r[*c].clone()))
                        .collect(),
                )
            })
            .collect();
        json_resp(200, &Value::Array(rows))
    } else {
        let cell = |r: &Value, k: &str| r[k].as_str().unwrap_or("").to_owned();
        let verbose = req
            .query
            .get("v")
            .is_some_and(|v| v.is_empty() || v == "true");
        let header = verbose.then(|| format!("{}\n", columns.join(" ")));
        let text: String = header
            .into_iter()
            .chain(rows.iter().map(|r| {
                let cells: Vec<String> = columns.iter().map(|k| cell(r, k)).collect();
                format!("{}\n", cells.join(" "))
            }))
            .collect();
        crate::http::respond(200, "text/plain; charset=UTF-8", text)
    }
}

/// The columns of `_cat/indices` in their default order, each with its aliases.
const CAT_INDICES_COLUMNS: &[(&str, &[&str])] = &[
    ("health", &["h"]),
    ("status", &["s"]),
    ("index", &["i", "idx"]),
    ("uuid", &["id", "uuid"]),
    ("pri", &["p", "shards.primary", "shardsPrimary"]),
    ("rep", &["r", "shards.replica", "shardsReplica"]),
    ("docs.count", &["dc", "docsCount"]),
    ("docs.deleted", &["dd", "docsDeleted"]),
    ("store.size", &["ss", "storeSize"]),
    ("pri.store.size", &[]),
];

/// The columns `h=` asks for (names or aliases, comma-separated, in the order given; names
/// `_cat/indices` does not have are left out, as OpenSearch's table does), or all of them.
fn cat_columns(h: Option<&str>) -> Vec<&'static str> {
    let Some(h) = h.filter(|h| !h.is_empty()) else {
        return CAT_INDICES_COLUMNS.iter().map(|(name, _)| *name).collect();
    };
    h.split(',')
        .filter_map(|wanted| {
            CAT_INDICES_COLUMNS
                .iter()
                .find(|(name, aliases)| *name == wanted || aliases.contains(&wanted))
                .map(|(name, _)| *name)
        })
        .collect()
}

/// 400 `index_closed_exception`, as a closed index answers searches and writes.
pub fn index_closed(name: &str, uuid: &str) -> Resp {
    let cause = json!({"type": "index_closed_exception", "reason": "closed", "index_uuid": uuid, "index": name});
    json_resp(
        400,
        &json!({"error": {"root_cause": [cause.clone()], "type": "index_closed_exception", "reason": "closed", "index_uuid": uuid, "index": name}, "status": 400}),
    )
}

/// 403 `cluster_block_exception`: UltraWarm indices are read-only.
fn warm_block(name: &str) -> Resp {
    os_error(
        403,
        "cluster_block_exception",
        &format!("index [{name}] blocked by: [FORBIDDEN/8/index write (api)];"),
    )
}

/// `POST <index>/_close` and `POST <index>/_open`.
pub fn open_close(data: &DomainData, expr: &str, close: bool) -> Resp {
    let mut state = data.lock();
    let names: Vec<String> = state.indices.keys().cloned().collect();
    let found = match resolve(&names, expr) {
        Ok(found) => found,
        Err(missing) => return index_not_found(&missing),
    };
    if close
        && let Some(ds) = found
            .iter()
            .find_map(|n| state.indices[n].data_stream.clone())
        && state.data_streams.get(&ds).and_then(|d| d.indices.last()) == found.first()
    {
        return os_error(
            400,
            "illegal_argument_exception",
            &format!(
                "cannot close the following data stream write indices [{}]",
                found[0]
            ),
        );
    }
    for n in &found {
        if let Some(i) = state.indices.get_mut(n) {
            i.closed = close;
        }
    }
    if close {
        let indices: serde_json::Map<String, Value> = found
            .iter()
            .map(|n| (n.clone(), json!({"closed": true})))
            .collect();
        json_resp(
            200,
            &json!({"acknowledged": true, "shards_acknowledged": true, "indices": indices}),
        )
    } else {
        json_resp(
            200,
            &json!({"acknowledged": true, "shards_acknowledged": true}),
        )
    }
}

fn valid_index_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.starts_with(['_', '-', '+']) {
        return Err("must not start with '_', '-', or '+'".into());
    }
    if name.chars().any(|c| c.is_uppercase()) {
        return Err("must be lowercase".into());
    }
    if let Some(c) = name.chars().find(|c| "\\/*?\"<>| ,#:".contains(*c)) {
        return Err(format!("must not contain '{c}'"));
    }
    Ok(())
}

pub fn create(data: &DomainData, now: i64, name: &str, req: &Req) -> Resp {
    if let Err(why) = valid_index_name(name) {
        return os_error(
            400,
            "invalid_index_name_exception",
            &format!("Invalid index name [{name}], {why}"),
        );
    }
    let body = match req.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut state = data.lock();
    match super::templates::create_index(
        &mut state,
        &data.engine,
        now,
        name,
        &body,
        super::templates::Cause::Api,
        None,
    ) {
        Ok(()) => json_resp(
            200,
            &json!({"acknowledged": true, "shards_acknowledged": true, "index": name}),
        ),
        Err(r) => r,
    }
}

pub fn delete(data: &DomainData, expr: &str) -> Resp {
    let mut state = data.lock();
    let names: Vec<String> = state.indices.keys().cloned().collect();
    match resolve(&names, expr) {
        Ok(found) => {
            for n in &found {
                if let Some(d) = state
                    .data_streams
                    .values()
                    .find(|d| d.indices.last() == Some(n))
                {
                    return os_error(
                        400,
                        "illegal_argument_exception",
                        &format!(
                            "index [{n}] is the write index for data stream [{}] and cannot be deleted",
                            d.name
                        ),
                    );
                }
            }
            for n in found {
                state.indices.remove(&n);
                state.recoveries.remove(&n);
                state.meta.ism.forget(&n);
                for d in state.data_streams.values_mut() {
                    d.indices.retain(|i| *i != n);
                }
            }
            json_resp(200, &json!({"acknowledged": true}))
        }
        Err(missing) => index_not_found(&missing),
    }
}

pub fn get(data: &DomainData, expr: &str) -> Resp {
    let state = data.lock();
    let names: Vec<String> = state.indices.keys().cloned().collect();
    let (expanded, _) = super::aliases::expand(&state, &state.expand_streams(expr).0);
    match resolve(&names, &expanded) {
        Ok(found) => {
            let mut out = serde_json::Map::new();
            for n in found {
                let i = &state.indices[&n];
                out.insert(
                    n.clone(),
                    json!({"aliases": i.aliases, "mappings": i.mappings, "settings": nest(&i.settings)}),
                );
            }
            json_resp(200, &Value::Object(out))
        }
        Err(missing) => index_not_found(&missing),
    }
}

/// `GET [<indices>/]_settings[/<names>]`: each index's settings, only those matching `names`
/// (comma-separated, `*` wildcards; empty for all), flat or nested.
pub fn get_settings(data: &DomainData, expr: &str, names: &str, flat: bool) -> Resp {
    let state = data.lock();
    let all: Vec<String> = state.indices.keys().cloned().collect();
    let (expanded, _) = super::aliases::expand(&state, &state.expand_streams(expr).0);
    match resolve(&all, &expanded) {
        Ok(found) => {
            let patterns: Vec<&str> = names.split(',').filter(|n| !n.is_empty()).collect();
            let mut out = serde_json::Map::new();
            for n in found {
                let chosen: BTreeMap<String, String> = state.indices[&n]
                    .settings
                    .iter()
                    .filter(|(k, _)| patterns.is_empty() || patterns.iter().any(|p| glob(p, k)))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if chosen.is_empty() && !patterns.is_empty() {
                    continue;
                }
                let settings = if flat { json!(chosen) } else { nest(&chosen) };
                out.insert(n.clone(), json!({ "settings": settings }));
            }
            json_resp(200, &Value::Object(out))
        }
        Err(missing) => index_not_found(&missing),
    }
}

/// Flat `index.a.b` settings back into nested objects.
pub fn nest(flat: &BTreeMap<String, String>) -> Value {
    let mut root = json!({});
    for (k, v) in flat {
        let mut node = &mut root;
        let parts: Vec<&str> = k.split('.').collect();
        for p in &parts[..parts.len() - 1] {
            if !node.get(*p).is_some_and(Value::is_object) {
                node[*p] = json!({});
            }
            node = node.get_mut(*p).expect("just inserted");
        }
        node[parts[parts.len() - 1]] = json!(v);
    }
    root
}

/// Where a write landed.
pub struct Written {
    pub index: String,
    pub id: String,
    pub created: bool,
    /// A `drop` processor dropped the document.
    pub dropped: bool,
}

fn only_create() -> Resp {
    os_error(
        400,
        "illegal_argument_exception",
        "only write ops with an op_type of create are allowed in data streams",
    )
}

/// One document write as the server runs it: the pipelines (requested, default, final), then the
/// target resolved — a data stream's write index (creates only, a timestamp required), an
/// alias's write index, an existing index, or a new index (or data stream) made from the
/// templates — then the index's blocks.
#[allow(clippy::too_many_arguments)]
pub fn write(
    state: &mut DataState,
    engine: &Engine,
    now: i64,
    target: &str,
    id: Option<String>,
    create_only: bool,
    source: Value,
    pipeline: Option<&str>,
) -> Result<Written, Resp> {
    let doc = super::ingest::process(state, now, target, id, source, pipeline)
        .map_err(|f| f.response())?;
    let Some(doc) = doc else {
        return Ok(Written {
            index: target.to_owned(),
            id: String::new(),
            created: false,
            dropped: true,
        });
    };
    let target = doc.index.clone();
    let source = doc.source;
    let id = doc
        .id
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()[..20].to_owned());
    let mut stream = state.data_streams.get(&target).cloned();
    let concrete = if stream.is_some() {
        String::new()
    } else if super::aliases::is_alias(state, &target) {
        super::aliases::write_index(state, &target).ok_or_else(|| {
            os_error(
                400,
                "illegal_argument_exception",
                &format!(
                    "no write index is defined for alias [{target}]. The write index may be explicitly disabled using is_write_index=false or the alias points to multiple indices without one being designated as a write index"
                ),
            )
        })?
    } else if state.indices.contains_key(&target) {
        target.clone()
    } else {
        if let Err(why) = valid_index_name(&target) {
            return Err(os_error(
                400,
                "invalid_index_name_exception",
                &format!("Invalid index name [{target}], {why}"),
            ));
        }
        let resolved = super::templates::resolve(&state.meta.templates, &target, false);
        if resolved.data_stream.is_some() {
            super::templates::create_data_stream(state, engine, now, &target)?;
            stream = state.data_streams.get(&target).cloned();
            String::new()
        } else {
            super::templates::create_index(
                state,
                engine,
                now,
                &target,
                &json!({}),
                super::templates::Cause::AutoCreate,
                None,
            )?;
            target.clone()
        }
    };
    let concrete = match &stream {
        Some(ds) => {
            if !create_only {
                return Err(only_create());
            }
            let field = &ds.timestamp_field;
            let value = source
                .get(field.as_str())
                .or_else(|| source.pointer(&format!("/{}", field.replace('.', "/"))));
            if !matches!(value, Some(Value::String(_)) | Some(Value::Number(_))) {
                let reason = format!(
                    "documents must contain a single-valued timestamp field '{field}' of date type"
                );
                return Err(json_resp(
                    400,
                    &json!({"error": {"root_cause": [{"type": "mapper_parsing_exception", "reason": "failed to parse"}],
                        "type": "mapper_parsing_exception", "reason": "failed to parse",
                        "caused_by": {"type": "illegal_argument_exception", "reason": reason}}, "status": 400}),
                ));
            }
            ds.indices.last().cloned().unwrap_or_default()
        }
        None => concrete,
    };
    let i = state
        .indices
        .get_mut(&concrete)
        .ok_or_else(|| index_not_found(&concrete))?;
    if i.closed {
        return Err(index_closed(&concrete, &i.uuid()));
    }
    if i.warm
        || i.settings
            .get("index.blocks.write")
            .is_some_and(|v| v == "true")
    {
        return Err(warm_block(&concrete));
    }
    if create_only && i.docs.contains_key(&id) {
        let reason =
            format!("[{id}]: version conflict, document already exists (current version [1])");
        return Err(json_resp(
            409,
            &json!({"error": {"root_cause": [{"type": "version_conflict_engine_exception", "reason": reason, "index": concrete}],
                "type": "version_conflict_engine_exception", "reason": reason, "index": concrete}, "status": 409}),
        ));
    }
    let created = i.docs.insert(id.clone(), source).is_none();
    Ok(Written {
        index: concrete,
        id,
        created,
        dropped: false,
    })
}

/// `PUT|POST <index>/_doc[/<id>]` and `PUT|POST <index>/_create/<id>`.
pub fn index_document(
    data: &DomainData,
    now: i64,
    index: &str,
    endpoint: Option<String>,
    id: Option<String>,
    req: &Req,
) -> Resp {
    let source = match req.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let create_only = endpoint.as_deref() == Some("_create")
        || req.query.get("op_type").is_some_and(|o| o == "create")
        || (id.is_none() && req.method == http::Method::POST);
    let mut state = data.lock();
    let pipeline = req.query.get("pipeline").map(String::as_str);
    match write(
        &mut state,
        &data.engine,
        now,
        index,
        id,
        create_only,
        source,
        pipeline,
    ) {
        Ok(w) if w.dropped => json_resp(
            200,
            &json!({"_index": w.index, "_id": w.id, "_version": -3, "result": "noop",
                "_shards": {"total": 0, "successful": 0, "failed": 0}}),
        ),
        Ok(w) => json_resp(
            if w.created { 201 } else { 200 },
            &json!({
                "_index": w.index, "_id": w.id, "_version": 1,
                "result": if w.created { "created" } else { "updated" },
                "_shards": {"total": 2, "successful": 1, "failed": 0},
                "_seq_no": 0, "_primary_term": 1
            }),
        ),
        Err(r) => r,
    }
}

fn error_of(resp: Resp) -> (u16, Value) {
    let status = resp.status().as_u16();
    let error = resp
        .into_body()
        .bytes()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .map(|v| {
            let mut e = v["error"].clone();
            if let Some(o) = e.as_object_mut() {
                o.remove("root_cause");
            }
            e
        })
        .unwrap_or_default();
    (status, error)
}

pub fn bulk(data: &DomainData, now: i64, default_index: Option<String>, req: &Req) -> Resp {
    let text = String::from_utf8_lossy(&req.body);
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let mut items = Vec::new();
    let mut errors = false;
    let mut state = data.lock();
    let mut seq = 0u64;
    while let Some(action_line) = lines.next() {
        let action: Value = match serde_json::from_str(action_line) {
            Ok(v) => v,
            Err(e) => {
                return os_error(
                    400,
                    "illegal_argument_exception",
                    &format!("Malformed action/metadata line: {e}"),
                );
            }
        };
        let Some((kind, meta)) = action.as_object().and_then(|o| o.iter().next()) else {
            return os_error(
                400,
                "illegal_argument_exception",
                "Malformed action/metadata line, expected an object with one action",
            );
        };
        let index = meta
            .get("_index")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| default_index.clone())
            .unwrap_or_default();
        let id = meta.get("_id").and_then(Value::as_str).map(str::to_owned);
        seq += 1;
        let item = match kind.as_str() {
            "delete" => {
                let id = id.unwrap_or_default();
                if state.data_streams.contains_key(&index) {
                    errors = true;
                    let (status, error) = error_of(only_create());
                    json!({"_index": index, "_id": id, "status": status, "error": error})
                } else {
                    let concrete =
                        super::aliases::write_index(&state, &index).unwrap_or(index.clone());
                    let found = state
                        .indices
                        .get_mut(&concrete)
                        .and_then(|i| i.docs.remove(&id))
                        .is_some();
                    json!({"_index": concrete, "_id": id, "_version": 1,
                        "result": if found { "deleted" } else { "not_found" },
                        "_shards": {"total": 2, "successful": 1, "failed": 0},
                        "_seq_no": seq, "_primary_term": 1, "status": if found { 200 } else { 404 }})
                }
            }
            "index" | "create" | "update" => {
                let Some(source_line) = lines.next() else {
                    return os_error(
                        400,
                        "illegal_argument_exception",
                        "The bulk request must be terminated by a newline [\\n]",
                    );
                };
                let mut source: Value = match serde_json::from_str(source_line) {
                    Ok(v) => v,
                    Err(e) => {
                        return os_error(400, "parse_exception", &format!("bad document: {e}"));
                    }
                };
                if kind == "update" {
                    source = source.get("doc").cloned().unwrap_or(source);
                }
                let pipeline = meta
                    .get("pipeline")
                    .and_then(Value::as_str)
                    .or_else(|| req.query.get("pipeline").map(String::as_str));
                let create_only = kind == "create"
                    || meta.get("op_type").and_then(Value::as_str) == Some("create");
                match write(
                    &mut state,
                    &data.engine,
                    now,
                    &index,
                    id.clone(),
                    create_only,
                    source,
                    pipeline,
                ) {
                    Ok(w) if w.dropped => {
                        json!({"_index": w.index, "_id": w.id, "_version": -3, "result": "noop",
                        "_shards": {"total": 0, "successful": 0, "failed": 0}, "status": 200})
                    }
                    Ok(w) => json!({"_index": w.index, "_id": w.id, "_version": 1,
                        "result": if w.created { "created" } else { "updated" },
                        "_shards": {"total": 2, "successful": 1, "failed": 0},
                        "_seq_no": seq, "_primary_term": 1, "status": if w.created { 201 } else { 200 }}),
                    Err(resp) => {
                        errors = true;
                        let (status, error) = error_of(resp);
                        json!({"_index": index, "_id": id, "status": status, "error": error})
                    }
                }
            }
            other => {
                return os_error(
                    400,
                    "illegal_argument_exception",
                    &format!(
                        "Malformed action/metadata line, expected one of [create, delete, index, update] but found [{other}]"
                    ),
                );
            }
        };
        items.push(json!({ kind.as_str(): item }));
    }
    json_resp(200, &json!({"took": 1, "errors": errors, "items": items}))
}

/// The indices a search or count reads (closed ones are left out of wildcards and refused by
/// name), each with the filters of the aliases it was reached through.
fn selected(state: &DataState, req: &Req) -> Result<Vec<(String, Vec<Value>)>, Resp> {
    let names: Vec<String> = state.indices.keys().cloned().collect();
    let expr = match req.segments.first() {
        Some(s) if !s.starts_with('_') => s.as_str(),
        _ => "_all",
    };
    let (expanded, _) = state.expand_streams(expr);
    let (expanded, filters) = super::aliases::expand(state, &expanded);
    let found = resolve(&names, &expanded).map_err(|missing| index_not_found(&missing))?;
    let wildcard = expr == "_all" || expr.contains('*');
    let mut out = Vec::new();
    for n in found {
        let i = &state.indices[&n];
        match (i.closed, wildcard) {
            (false, _) => {
                let f = filters.get(&n).cloned().unwrap_or_default();
                out.push((n, f));
            }
            (true, true) => {}
            (true, false) => return Err(index_closed(&n, &i.uuid())),
        }
    }
    Ok(out)
}

fn query_of(req: &Req) -> Result<Value, Resp> {
    let body = req.json_body()?;
    let query = body
        .get("query")
        .cloned()
        .unwrap_or(json!({"match_all": {}}));
    super::query::check(&query)?;
    Ok(query)
}

/// The documents of the selected indices that match the query and their alias filters.
fn hits<'a>(
    state: &'a DataState,
    names: &'a [(String, Vec<Value>)],
    query: &Value,
) -> Result<Vec<(&'a String, &'a String, &'a Value)>, Resp> {
    let mut out = Vec::new();
    for (n, filters) in names {
        let i = &state.indices[n];
        for (id, doc) in &i.docs {
            let mut ok = super::query::matches(query, doc, id, &i.mappings)?;
            if ok && !filters.is_empty() {
                let mut any = false;
                for f in filters {
                    any |= super::query::matches(f, doc, id, &i.mappings)?;
                }
                ok = any;
            }
            if ok {
                out.push((n, id, doc));
            }
        }
    }
    Ok(out)
}

pub fn count(data: &DomainData, req: &Req) -> Resp {
    let query = match query_of(req) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let state = data.lock();
    let names = match selected(&state, req) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let count = match hits(&state, &names, &query) {
        Ok(h) => h.len(),
        Err(r) => return r,
    };
    let shards: u64 = names.iter().map(|(n, _)| state.indices[n].shards()).sum();
    json_resp(
        200,
        &json!({"count": count, "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0}}),
    )
}

pub fn search(data: &DomainData, req: &Req) -> Resp {
    let query = match query_of(req) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let body = req.json_body().unwrap_or_default();
    if !data.engine.at_least_es(6, 0)
        && let Some(track) = body.get("track_total_hits")
    {
        // Elasticsearch 5's `SearchSourceBuilder#parseXContent` knows no such key.
        let token = match track {
            Value::Bool(_) => "VALUE_BOOLEAN",
            Value::Number(_) => "VALUE_NUMBER",
            _ => "VALUE_STRING",
        };
        return os_error(
            400,
            "parsing_exception",
            &format!("Unknown key for a {token} in [track_total_hits]."),
        );
    }
    let size = req
        .query
        .get("size")
        .and_then(|s| s.parse().ok())
        .or_else(|| body.get("size").and_then(Value::as_u64))
        .unwrap_or(10) as usize;
    let from = req
        .query
        .get("from")
        .and_then(|s| s.parse().ok())
        .or_else(|| body.get("from").and_then(Value::as_u64))
        .unwrap_or(0) as usize;
    let state = data.lock();
    let names = match selected(&state, req) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let matched = match hits(&state, &names, &query) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let total = matched.len();
    let shards: u64 = names.iter().map(|(n, _)| state.indices[n].shards()).sum();
    let hits: Vec<Value> = matched
        .into_iter()
        .skip(from)
        .take(size)
        .map(|(n, id, doc)| json!({"_index": n, "_id": id, "_score": 1.0, "_source": doc}))
        .collect();
    let mut found = json!({
        "max_score": if total > 0 { json!(1.0) } else { Value::Null },
        "hits": hits,
    });
    if let Some(total) = total_hits(&data.engine, req, &body, total) {
        found["total"] = total;
    }
    json_resp(
        200,
        &json!({
            "took": 1, "timed_out": false,
            "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0},
            "hits": found
        }),
    )
}

/// Hits counted exactly until this many unless `track_total_hits` says otherwise (from
/// Elasticsearch 7.0: `SearchContext.DEFAULT_TRACK_TOTAL_HITS_UP_TO`).
const TRACK_TOTAL_HITS_UP_TO: usize = 10_000;

/// `hits.total` as the engine reports it (`None`: left out). Before Elasticsearch 7.0 it is
/// the exact number; from 7.0 an object `{value, relation}`, exact only up to
/// `track_total_hits` (10,000 by default; `true` for every hit, `false` for no total), and a
/// number again with `rest_total_hits_as_int`.
fn total_hits(engine: &Engine, req: &Req, body: &Value, total: usize) -> Option<Value> {
    if !engine.at_least_es(7, 0) {
        return Some(json!(total));
    }
    let track = req
        .query
        .get("track_total_hits")
        .map(|t| serde_json::from_str(t).unwrap_or(Value::Null))
        .or_else(|| body.get("track_total_hits").cloned());
    let up_to = match track {
        Some(Value::Bool(false)) => return None,
        Some(Value::Bool(true)) => usize::MAX,
        Some(Value::Number(n)) => n.as_u64().map_or(usize::MAX, |n| n as usize),
        _ => TRACK_TOTAL_HITS_UP_TO,
    };
    if req.flag("rest_total_hits_as_int") {
        return Some(json!(total));
    }
    Some(if total > up_to {
        json!({"value": up_to, "relation": "gte"})
    } else {
        json!({"value": total, "relation": "eq"})
    })
}

/// The index expression a request body gives as a string or a list of names (`indices` of a
/// snapshot or a restore, `index` of an `_msearch` header), `default` when it gives none.
pub fn index_expression(value: &Value, default: &str) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        _ => default.to_owned(),
    }
}

/// One `_msearch` item: the index expression of its header and its search body.
pub struct MultiSearchItem {
    pub index: String,
    pub body: Value,
}

/// The items of an `_msearch` body: a header line (`{}` or `{"index": …}`, the path's index
/// otherwise) and a search body line each. The body must end with a newline, as
/// `MultiSearchRequest#readMultiLineFormat` requires.
pub fn msearch_items(req: &Req) -> Result<Vec<MultiSearchItem>, Resp> {
    let text = String::from_utf8_lossy(&req.body);
    if !text.is_empty() && !text.ends_with('\n') {
        return Err(crate::http::os_error(
            400,
            "illegal_argument_exception",
            "The msearch request must be terminated by a newline [\n]",
        ));
    }
    let default_index = match req.segments.first() {
        Some(s) if !s.starts_with('_') => s.clone(),
        _ => "_all".to_owned(),
    };
    let parse = |line: &str| {
        serde_json::from_str::<Value>(line).map_err(|e| {
            crate::http::os_error(
                400,
                "parse_exception",
                &format!("request body is not valid JSON: {e}"),
            )
        })
    };
    let mut lines = text.lines();
    let mut items = Vec::new();
    while let Some(header) = lines.next() {
        let header = if header.trim().is_empty() {
            json!({})
        } else {
            parse(header)?
        };
        let index = index_expression(&header["index"], &default_index);
        let body = match lines.next() {
            Some(line) if !line.trim().is_empty() => parse(line)?,
            _ => json!({}),
        };
        items.push(MultiSearchItem { index, body });
    }
    if items.is_empty() {
        return Err(crate::http::os_error(
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: no requests added;",
        ));
    }
    Ok(items)
}

/// `_msearch`: each item runs as its own `_search`, and fails on its own — an index not found,
/// or `refusal` (the security plugin's answer for that item) — as an entry with `error` and
/// `status` in `responses`, in the items' order; the request itself answers 200.
pub fn msearch(
    data: &DomainData,
    req: &Req,
    items: &[MultiSearchItem],
    refusal: &dyn Fn(&Req) -> Option<Resp>,
) -> Resp {
    let mut responses = Vec::new();
    for item in items {
        let sub = Req {
            method: Method::GET,
            segments: vec![item.index.clone(), "_search".to_owned()],
            query: BTreeMap::new(),
            body: Bytes::from(item.body.to_string()),
            headers: req.headers.clone(),
            caller: req.caller.clone(),
            uri: format!("/{}/_search", item.index),
        };
        let resp = refusal(&sub).unwrap_or_else(|| search(data, &sub));
        let status = resp.status().as_u16();
        let mut answer: Value = resp
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| json!({}));
        answer["status"] = json!(status);
        responses.push(answer);
    }
    json_resp(200, &json!({"took": 1, "responses": responses}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_resolve_like_opensearch() {
        let names: Vec<String> = ["logs-1", "logs-2", "users", ".kibana_1"]
            .map(String::from)
            .to_vec();
        assert_eq!(resolve(&names, "logs-*").unwrap(), ["logs-1", "logs-2"]);
        assert_eq!(
            resolve(&names, "_all").unwrap(),
            ["logs-1", "logs-2", "users"]
        );
        assert_eq!(resolve(&names, "*,-logs-2").unwrap(), ["logs-1", "users"]);
        assert_eq!(resolve(&names, "users,nope").unwrap_err(), "nope");
        assert_eq!(resolve(&names, ".kib*").unwrap(), [".kibana_1"]);
    }

    #[test]
    fn settings_flatten_and_nest() {
        let flat =
            flatten_settings(&json!({"index": {"number_of_shards": 3}, "refresh_interval": "1s"}));
        assert_eq!(flat["index.number_of_shards"], "3");
        assert_eq!(flat["index.refresh_interval"], "1s");
        assert_eq!(nest(&flat)["index"]["number_of_shards"], "3");
    }
}
