//! The Dashboards (OpenSearch) or Kibana (Elasticsearch) saved-objects API, served as Amazon
//! OpenSearch Service serves it on the domain's own HTTPS endpoint: `/_dashboards/api/saved_objects/`
//! on OpenSearch (`/_plugin/kibana/...` redirects there), `/_plugin/kibana/api/saved_objects/` on
//! Elasticsearch. `_export` (NDJSON, keys sorted, referenced objects before their referrers, the
//! `exportedCount`/`missingRefCount` summary line from Kibana 7.6), `_import` (multipart `file`
//! named `*.ndjson`; `overwrite`/`createNewCopies`; per-object `conflict`, `missing_references`
//! and `unsupported_type` errors, and — as the real importer does — nothing written while any
//! resolvable error remains), `_find`, and single-object GET/DELETE. A write without the `osd-xsrf`
//! (`kbn-xsrf`) header is refused as the server refuses it. On a domain with fine-grained access
//! control the `securitytenant` header picks the tenant, each with its own objects. The objects
//! are kept beside the domain's indices rather than in its `.kibana` index.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::version::Engine;
use super::{DataState, DomainData, Req};
use crate::http::{Resp, json as json_resp, respond};

/// Saved objects per tenant (`""` is the global tenant): (type, id) → object.
#[derive(Default)]
pub struct SavedObjects {
    pub tenants: BTreeMap<String, BTreeMap<(String, String), Value>>,
    seq: u64,
}

/// The Dashboards/Kibana version a domain runs: the engine's.
fn ui_is_osd(engine: &Engine) -> bool {
    engine.is_opensearch()
}

fn supported_types(engine: &Engine) -> Vec<&'static str> {
    let mut t = vec![
        "config",
        "index-pattern",
        "visualization",
        "dashboard",
        "search",
        "url",
        "query",
    ];
    if engine.at_least_os(2, 4) {
        t.extend(["visualization-visbuilder", "data-source"]);
    }
    if engine.at_least_os(2, 9) {
        t.push("augment-vis");
    }
    t
}

/// The migration version a type's objects carry after the domain's migrations ran.
fn migration_version(engine: &Engine, kind: &str) -> Option<String> {
    let latest = match kind {
        "visualization" => "7.10.0",
        "dashboard" | "search" => "7.9.3",
        "index-pattern" => "7.6.0",
        "config" | "url" | "query" => return None,
        _ => return None,
    };
    if engine.is_opensearch() {
        return Some(latest.to_owned());
    }
    let own = format!("{}.{}.0", engine.major, engine.minor);
    Some(if version_lt(&own, latest) {
        own
    } else {
        latest.to_owned()
    })
}

fn version_lt(a: &str, b: &str) -> bool {
    let p = |s: &str| {
        s.split('.')
            .map(|x| x.parse::<u32>().unwrap_or(0))
            .collect::<Vec<_>>()
    };
    p(a) < p(b)
}

fn icon(kind: &str) -> Option<&'static str> {
    match kind {
        "index-pattern" => Some("indexPatternApp"),
        "visualization" => Some("visualizeApp"),
        "dashboard" => Some("dashboardApp"),
        "search" => Some("discoverApp"),
        "config" => Some("settings"),
        "query" => Some("search"),
        _ => None,
    }
}

fn boom(status: u16, message: &str) -> Resp {
    let error = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        _ => "Internal Server Error",
    };
    json_resp(
        status,
        &json!({"statusCode": status, "error": error, "message": message}),
    )
}

/// The tenant a request works in: only on a domain with fine-grained access control.
fn tenant_of(req: &Req, fgac: bool) -> String {
    if !fgac {
        return String::new();
    }
    let h = req
        .headers
        .get("securitytenant")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match h.to_lowercase().as_str() {
        "" | "global" => String::new(),
        "private" | "__user__" => "__user__".into(),
        _ => h.to_owned(),
    }
}

fn version_token(seq: u64) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("[{seq},1]"))
}

/// Stores an object as the server stores it: migrated, stamped, given a version.
fn store(so: &mut SavedObjects, engine: &Engine, tenant: &str, obj: &Value, now: i64) -> Value {
    so.seq += 1;
    let kind = obj["type"].as_str().unwrap_or("").to_owned();
    let id = obj["id"].as_str().unwrap_or("").to_owned();
    let mut stored = json!({
        "type": kind,
        "id": id,
        "attributes": obj.get("attributes").cloned().unwrap_or_else(|| json!({})),
        "references": obj.get("references").cloned().unwrap_or_else(|| json!([])),
        "updated_at": super::meta::iso(now),
        "version": version_token(so.seq),
    });
    if let Some(m) = migration_version(engine, &kind) {
        stored["migrationVersion"] = json!({kind.clone(): m});
    }
    if let Some(o) = obj.get("originId") {
        stored["originId"] = o.clone();
    }
    so.tenants
        .entry(tenant.to_owned())
        .or_default()
        .insert((kind, id), stored.clone());
    stored
}

/// Seeds saved objects (export-shaped) into a tenant (`global` for the default one).
pub fn seed(
    state: &mut DataState,
    engine: &Engine,
    tenant: &str,
    objects: &[Value],
    now: i64,
) -> Result<(), String> {
    let tenant = if tenant == "global" { "" } else { tenant };
    let types = supported_types(engine);
    for o in objects {
        let (Some(kind), Some(_)) = (o["type"].as_str(), o["id"].as_str()) else {
            return Err(format!(
                "every saved object needs a \"type\" and an \"id\", got {o}"
            ));
        };
        if !types.contains(&kind) {
            return Err(format!(
                "type [{kind}] is not a saved-object type of this domain's {}",
                if ui_is_osd(engine) {
                    "OpenSearch Dashboards"
                } else {
                    "Kibana"
                }
            ));
        }
        store(&mut state.meta.dashboards, engine, tenant, o, now);
    }
    Ok(())
}

/// Referenced objects first (`sortObjects`), keeping the order otherwise.
fn sort_objects(objects: Vec<Value>) -> Result<Vec<Value>, Resp> {
    let key = |o: &Value| {
        format!(
            "{}:{}",
            o["type"].as_str().unwrap_or(""),
            o["id"].as_str().unwrap_or("")
        )
    };
    let by_key: BTreeMap<String, Value> = objects.iter().map(|o| (key(o), o.clone())).collect();
    let mut sorted: Vec<String> = Vec::new();
    fn visit(
        k: &str,
        by_key: &BTreeMap<String, Value>,
        path: &mut Vec<String>,
        sorted: &mut Vec<String>,
    ) -> Result<(), String> {
        if sorted.iter().any(|s| s == k) {
            return Ok(());
        }
        if path.iter().any(|p| p == k) {
            path.push(k.to_owned());
            return Err(format!(
                "circular reference: {}",
                path.iter()
                    .map(|p| format!("[{p}]"))
                    .collect::<Vec<_>>()
                    .join(" ref-> ")
            ));
        }
        path.push(k.to_owned());
        for r in by_key[k]["references"].as_array().into_iter().flatten() {
            let rk = format!(
                "{}:{}",
                r["type"].as_str().unwrap_or(""),
                r["id"].as_str().unwrap_or("")
            );
            if by_key.contains_key(&rk) {
                visit(&rk, by_key, path, sorted)?;
            }
        }
        path.pop();
        sorted.push(k.to_owned());
        Ok(())
    }
    for o in &objects {
        visit(&key(o), &by_key, &mut Vec::new(), &mut sorted).map_err(|m| boom(400, &m))?;
    }
    Ok(sorted.into_iter().map(|k| by_key[&k].clone()).collect())
}

/// JSON with keys sorted at every level (`json-stable-stringify`).
fn stable(v: &Value) -> String {
    // serde_json's map is ordered by key unless `preserve_order` is on; sort explicitly anyway.
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(o) => {
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sort(&o[k])))
                        .collect::<Map<_, _>>(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

fn export(engine: &Engine, objects: &BTreeMap<(String, String), Value>, body: &Value) -> Resp {
    let types: Vec<String> = match &body["type"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let requested: Vec<(String, String)> = body["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            (
                o["type"].as_str().unwrap_or("").to_owned(),
                o["id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let supported = supported_types(engine);
    let bad: Vec<&String> = types
        .iter()
        .filter(|t| !supported.contains(&t.as_str()))
        .collect();
    if !bad.is_empty() {
        return boom(
            400,
            &format!(
                "Trying to export non-exportable type(s): {}",
                bad.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    let bad: Vec<String> = requested
        .iter()
        .filter(|(t, _)| !supported.contains(&t.as_str()))
        .map(|(t, i)| format!("{t}:{i}"))
        .collect();
    if !bad.is_empty() {
        return boom(
            400,
            &format!(
                "Trying to export object(s) with non-exportable types: {}",
                bad.join(", ")
            ),
        );
    }
    if !types.is_empty() && !requested.is_empty() {
        return boom(
            400,
            "Can't specify both \"types\" and \"objects\" properties when exporting",
        );
    }
    let mut roots: Vec<Value> = if !requested.is_empty() {
        let missing: Vec<Value> = requested
            .iter()
            .filter(|k| !objects.contains_key(*k))
            .map(|(t, i)| json!({"id": i, "type": t, "error": {"statusCode": 404, "error": "Not Found", "message": format!("Saved object [{t}/{i}] not found")}}))
            .collect();
        if !missing.is_empty() {
            return json_resp(
                400,
                &json!({"statusCode": 400, "error": "Bad Request", "message": "Bad Request", "attributes": {"objects": missing}}),
            );
        }
        requested.iter().map(|k| objects[k].clone()).collect()
    } else if !types.is_empty() {
        let mut v: Vec<Value> = objects
            .iter()
            .filter(|((t, _), _)| types.contains(t))
            .map(|(_, o)| o.clone())
            .collect();
        v.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        v
    } else {
        return boom(400, "Either `type` or `objects` are required.");
    };
    let mut missing_refs = Vec::new();
    if body["includeReferencesDeep"] == json!(true) {
        let mut seen: std::collections::BTreeSet<(String, String)> = roots
            .iter()
            .map(|o| {
                (
                    o["type"].as_str().unwrap_or("").to_owned(),
                    o["id"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        let mut i = 0;
        while i < roots.len() {
            for r in roots[i]["references"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                let k = (
                    r["type"].as_str().unwrap_or("").to_owned(),
                    r["id"].as_str().unwrap_or("").to_owned(),
                );
                if seen.insert(k.clone()) {
                    match objects.get(&k) {
                        Some(o) => roots.push(o.clone()),
                        None => missing_refs.push(json!({"id": k.1, "type": k.0})),
                    }
                }
            }
            i += 1;
        }
    }
    let sorted = match sort_objects(roots) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut lines: Vec<String> = sorted.iter().map(stable).collect();
    let details = ui_is_osd(engine) || engine.at_least_es(7, 6);
    if details && body["excludeExportDetails"] != json!(true) {
        lines.push(stable(&json!({"exportedCount": sorted.len(), "missingRefCount": missing_refs.len(), "missingReferences": missing_refs})));
    }
    let mut r = respond(200, "application/ndjson", lines.join("\n"));
    r.headers_mut().insert(
        "content-disposition",
        http::HeaderValue::from_static("attachment; filename=\"export.ndjson\""),
    );
    r
}

/// The `file` part of a `multipart/form-data` body: (filename, content).
fn multipart_file(req: &Req) -> Result<(String, String), String> {
    let ct = req
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(boundary) = ct
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_owned())
    else {
        return Err("Unsupported Media Type".into());
    };
    let text = String::from_utf8_lossy(&req.body);
    for part in text.split(&format!("--{boundary}")) {
        let part = part.trim_start_matches("\r\n");
        let Some((head, content)) = part
            .split_once("\r\n\r\n")
            .or_else(|| part.split_once("\n\n"))
        else {
            continue;
        };
        let disposition = head
            .lines()
            .find(|l| l.to_lowercase().starts_with("content-disposition"))
            .unwrap_or("");
        if !disposition.contains("name=\"file\"") {
            continue;
        }
        let filename = disposition
            .split("filename=\"")
            .nth(1)
            .and_then(|f| f.split('"').next())
            .unwrap_or("")
            .to_owned();
        let content = content.strip_suffix("\r\n").unwrap_or(content).to_owned();
        return Ok((filename, content));
    }
    Err("[request body.file]: expected value of type [Stream] but got [undefined]".into())
}

#[allow(clippy::too_many_arguments)]
fn import(engine: &Engine, so: &mut SavedObjects, tenant: &str, req: &Req, now: i64) -> Resp {
    for k in req.query.keys() {
        if k != "overwrite" && k != "createNewCopies" && !(ui_is_osd(engine) && k == "workspaces") {
            return boom(
                400,
                &format!("[request query.{k}]: definition for this key is missing"),
            );
        }
    }
    let flag = |k: &str| req.query.get(k).is_some_and(|v| v == "true");
    let (overwrite, copies) = (flag("overwrite"), flag("createNewCopies"));
    if overwrite && copies {
        return boom(
            400,
            "[request query]: cannot use [overwrite] with [createNewCopies]",
        );
    }
    let (filename, content) = match multipart_file(req) {
        Ok(x) => x,
        Err(m) if m == "Unsupported Media Type" => return boom(415, &m),
        Err(m) => return boom(400, &m),
    };
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| format!(".{}", e.to_lowercase()))
        .unwrap_or_default();
    if ext != ".ndjson" {
        return boom(400, &format!("Invalid file extension {ext}"));
    }
    let mut objects = Vec::new();
    for line in content.split('\n').filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Value>(line) {
            Ok(v) if v.get("exportedCount").is_some() => {}
            Ok(v) => objects.push(v),
            Err(e) => return boom(400, &format!("Unexpected token in JSON: {e}")),
        }
    }
    let key = |o: &Value| {
        (
            o["type"].as_str().unwrap_or("").to_owned(),
            o["id"].as_str().unwrap_or("").to_owned(),
        )
    };
    let mut seen = BTreeMap::new();
    for o in &objects {
        *seen.entry(key(o)).or_insert(0) += 1;
    }
    let dupes: Vec<String> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|((t, i), _)| format!("{t}:{i}"))
        .collect();
    if !dupes.is_empty() {
        return boom(
            400,
            &format!("Non-unique import objects detected: [{}]", dupes.join(",")),
        );
    }
    let supported = supported_types(engine);
    let existing = so.tenants.get(tenant).cloned().unwrap_or_default();
    let with_meta = ui_is_osd(engine) || engine.at_least_es(7, 9);
    let mut errors: Vec<Value> = Vec::new();
    let err_entry = |o: &Value, error: Value| {
        let title = o["attributes"]["title"].clone();
        let mut e = json!({"id": o["id"], "type": o["type"], "title": title, "error": error});
        if with_meta {
            let mut meta = json!({"title": o["attributes"]["title"]});
            if let Some(i) = icon(o["type"].as_str().unwrap_or("")) {
                meta["icon"] = json!(i);
            }
            e["meta"] = meta;
        }
        e
    };
    let mut candidates = Vec::new();
    for o in &objects {
        if !supported.contains(&o["type"].as_str().unwrap_or("")) {
            errors.push(err_entry(o, json!({"type": "unsupported_type"})));
        } else {
            candidates.push(o.clone());
        }
    }
    let in_file: std::collections::BTreeSet<(String, String)> =
        candidates.iter().map(key).collect();
    for o in &candidates {
        let missing: Vec<Value> = o["references"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| ["index-pattern", "search"].contains(&r["type"].as_str().unwrap_or("")))
            .filter(|r| {
                let k = key(r);
                !in_file.contains(&k) && !existing.contains_key(&k)
            })
            .map(|r| json!({"type": r["type"], "id": r["id"]}))
            .collect();
        if !missing.is_empty() {
            errors.push(err_entry(
                o,
                json!({"type": "missing_references", "references": missing}),
            ));
        }
    }
    let errored: std::collections::BTreeSet<(String, String)> = errors.iter().map(key).collect();
    let mut pending_overwrite = std::collections::BTreeSet::new();
    let mut ids: BTreeMap<(String, String), String> = BTreeMap::new();
    for o in &candidates {
        let k = key(o);
        if copies {
            ids.insert(k, uuid::Uuid::new_v4().to_string());
        } else if existing.contains_key(&k) && !errored.contains(&k) {
            if overwrite {
                pending_overwrite.insert(k);
            } else {
                errors.push(err_entry(o, json!({"type": "conflict"})));
            }
        }
    }
    let errored: std::collections::BTreeSet<(String, String)> = errors.iter().map(key).collect();
    let to_create: Vec<&Value> = candidates
        .iter()
        .filter(|o| !errored.contains(&key(o)))
        .collect();
    let resolvable = errors.iter().any(|e| {
        ["conflict", "ambiguous_conflict", "missing_references"]
            .contains(&e["error"]["type"].as_str().unwrap_or(""))
    });
    let mut results = Vec::new();
    for o in &to_create {
        let k = key(o);
        let mut obj = (*o).clone();
        if let Some(new_id) = ids.get(&k) {
            obj["id"] = json!(new_id);
        }
        if let Some(refs) = obj["references"].as_array_mut() {
            for r in refs {
                if let Some(new_id) = ids.get(&key(r)) {
                    r["id"] = json!(new_id);
                }
            }
        }
        if !resolvable {
            store(so, engine, tenant, &obj, now);
        }
        let mut entry = json!({"type": k.0, "id": k.1});
        if with_meta {
            let mut meta = json!({"title": o["attributes"]["title"]});
            if let Some(i) = icon(&k.0) {
                meta["icon"] = json!(i);
            }
            entry["meta"] = meta;
        }
        if pending_overwrite.contains(&k) {
            entry["overwrite"] = json!(true);
        }
        if let Some(new_id) = ids.get(&k) {
            entry["destinationId"] = json!(new_id);
        }
        results.push(entry);
    }
    for e in &mut errors {
        if pending_overwrite.contains(&key(e)) {
            e["overwrite"] = json!(true);
        }
    }
    let mut answer = json!({"successCount": results.len(), "success": errors.is_empty()});
    if with_meta && !results.is_empty() {
        answer["successResults"] = Value::Array(results);
    }
    if !errors.is_empty() {
        answer["errors"] = Value::Array(errors);
    }
    json_resp(200, &answer)
}

fn find(engine: &Engine, objects: &BTreeMap<(String, String), Value>, req: &Req) -> Resp {
    let types: Vec<String> = req
        .query
        .get("type")
        .map(|t| t.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    if types.is_empty() {
        return boom(
            400,
            "[request query.type]: expected at least one defined value but got [undefined]",
        );
    }
    let per_page: usize = req
        .query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(20);
    let page: usize = req
        .query
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let search = req
        .query
        .get("search")
        .map(|s| s.trim_end_matches('*').to_lowercase());
    let supported = supported_types(engine);
    let mut hits: Vec<Value> = objects
        .iter()
        .filter(|((t, _), _)| types.contains(t) && supported.contains(&t.as_str()))
        .filter(|(_, o)| {
            search.as_ref().is_none_or(|s| {
                o["attributes"]["title"]
                    .as_str()
                    .unwrap_or("")
                    .to_lowercase()
                    .contains(s.as_str())
            })
        })
        .map(|(_, o)| {
            let mut o = o.clone();
            o["score"] = json!(0);
            o
        })
        .collect();
    let total = hits.len();
    hits = hits
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    json_resp(
        200,
        &json!({"page": page, "per_page": per_page, "total": total, "saved_objects": hits}),
    )
}

/// Every request under the Dashboards/Kibana base path; `rest` is what follows `api/saved_objects`.
pub fn handle(data: &DomainData, now: i64, fgac: bool, req: &Req, path: &str) -> Resp {
    let engine = &data.engine;
    let osd_path = req.segments.first().is_some_and(|s| s == "_dashboards");
    if engine.is_opensearch() && !osd_path {
        let rest = path.trim_start_matches("/_plugin/kibana");
        let mut r = respond(302, "text/plain", "");
        if let Ok(v) = http::HeaderValue::from_str(&format!("/_dashboards{rest}")) {
            r.headers_mut().insert("location", v);
        }
        return r;
    }
    if !engine.is_opensearch() && osd_path {
        return super::templates::no_handler(req.method.as_str(), path);
    }
    let base = if osd_path { 1 } else { 2 };
    let rest: Vec<&str> = req.segments.iter().skip(base).map(String::as_str).collect();
    let (header, version_header) = if ui_is_osd(engine) {
        ("osd-xsrf", "osd-version")
    } else {
        ("kbn-xsrf", "kbn-version")
    };
    let safe = req.method == http::Method::GET || req.method == http::Method::HEAD;
    if !safe && !req.headers.contains_key(header) && !req.headers.contains_key(version_header) {
        return boom(400, &format!("Request must contain a {header} header."));
    }
    let tenant = tenant_of(req, fgac);
    let mut state = data.lock();
    let so = &mut state.meta.dashboards;
    let objects = so.tenants.get(&tenant).cloned().unwrap_or_default();
    let has_import_export = ui_is_osd(engine) || engine.at_least_es(6, 7);
    use http::Method as M;
    match (&req.method, rest.as_slice()) {
        (&M::POST, ["api", "saved_objects", "_export"]) if has_import_export => {
            let body = match serde_json::from_slice::<Value>(&req.body) {
                Ok(b) => b,
                Err(_) if req.body.is_empty() => json!({}),
                Err(e) => return boom(400, &format!("Invalid request payload JSON format: {e}")),
            };
            export(engine, &objects, &body)
        }
        (&M::POST, ["api", "saved_objects", "_import"]) if has_import_export => {
            import(engine, so, &tenant, req, now)
        }
        (&M::GET, ["api", "saved_objects", "_find"]) => find(engine, &objects, req),
        (&M::GET, ["api", "saved_objects", kind, id]) => {
            match objects.get(&((*kind).to_owned(), (*id).to_owned())) {
                Some(o) => json_resp(200, o),
                None => boom(404, &format!("Saved object [{kind}/{id}] not found")),
            }
        }
        (&M::DELETE, ["api", "saved_objects", kind, id]) => {
            let removed = so
                .tenants
                .get_mut(&tenant)
                .and_then(|t| t.remove(&((*kind).to_owned(), (*id).to_owned())));
            match removed {
                Some(_) => json_resp(200, &json!({})),
                None => boom(404, &format!("Saved object [{kind}/{id}] not found")),
            }
        }
        _ => boom(404, "Not Found"),
    }
}
