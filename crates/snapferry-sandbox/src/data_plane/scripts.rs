//! Stored scripts and search templates: `_scripts/<id>` PUT/POST/GET/DELETE (`painless` scripts,
//! `mustache` search templates whose object source is stored as its JSON text, as the server
//! stores it), `_render/template[/<id>]`, `[<index>/]_search/template`, and `GET _cluster/state`
//! whose `metadata` is where a client lists stored scripts (there is no list API) along with the
//! templates, pipelines and data streams. Painless is stored, not compiled: the sandbox cannot
//! tell a script that would not compile.

use serde_json::{Map, Value, json};

use super::mustache::{self, Escape};
use super::{DataState, DomainData, Req};
use crate::http::{Resp, json as json_resp, os_error};

/// `PUT _scripts/<id>`: checked as `StoredScriptSource.parse` checks it, then stored.
pub fn put_script(state: &mut DataState, id: &str, body: &Value) -> Result<(), Resp> {
    let Some(o) = body.as_object() else {
        return Err(os_error(
            400,
            "parse_exception",
            "unexpected token, expected [{, <source>]",
        ));
    };
    if let Some(other) = o.keys().find(|k| *k != "script") {
        return Err(os_error(
            400,
            "parsing_exception",
            &format!("unexpected field [{other}], expected [script]"),
        ));
    }
    let Some(script) = o.get("script").and_then(Value::as_object) else {
        return Err(os_error(
            400,
            "illegal_argument_exception",
            "must specify lang for stored script",
        ));
    };
    let Some(lang) = script.get("lang").and_then(Value::as_str) else {
        return Err(os_error(
            400,
            "illegal_argument_exception",
            "must specify lang for stored script",
        ));
    };
    if !["painless", "mustache", "expression"].contains(&lang) {
        return Err(os_error(
            400,
            "illegal_argument_exception",
            &format!("script_lang not supported [{lang}]"),
        ));
    }
    let source = match script.get("source").or_else(|| script.get("code")) {
        None => {
            return Err(os_error(
                400,
                "illegal_argument_exception",
                "must specify source for stored script",
            ));
        }
        Some(Value::String(s)) if s.is_empty() && lang != "mustache" => {
            return Err(os_error(
                400,
                "illegal_argument_exception",
                "source cannot be empty",
            ));
        }
        Some(Value::String(s)) => s.clone(),
        Some(other) if lang == "mustache" => other.to_string(),
        Some(_) => {
            return Err(os_error(
                400,
                "parsing_exception",
                "unexpected token, expected [<source>]",
            ));
        }
    };
    if lang == "mustache"
        && let Err(why) = mustache::render(&source, &json!({}), Escape::Json)
    {
        return Err(os_error(
            400,
            "general_script_exception",
            &format!("Failed to compile stored script [{id}] using lang [mustache]: {why}"),
        ));
    }
    let mut stored = json!({"lang": lang, "source": source});
    if let Some(options) = script.get("options") {
        stored["options"] = options.clone();
    }
    state.meta.scripts.insert(id.to_owned(), stored);
    Ok(())
}

/// The template text and params of a `_render/template` or `_search/template` request.
fn template_of(
    state: &DataState,
    body: &Value,
    id_in_path: Option<&str>,
) -> Result<(String, Value), Resp> {
    let params = body.get("params").cloned().unwrap_or_else(|| json!({}));
    if let Some(id) = id_in_path.or_else(|| body["id"].as_str()) {
        return match state.meta.scripts.get(id) {
            Some(s) if s["lang"] == "mustache" => {
                Ok((s["source"].as_str().unwrap_or("").to_owned(), params))
            }
            Some(s) => Err(os_error(
                400,
                "illegal_argument_exception",
                &format!(
                    "stored script [{id}] is of lang [{}], a search template needs lang [mustache]",
                    s["lang"].as_str().unwrap_or("")
                ),
            )),
            None => Err(os_error(
                404,
                "resource_not_found_exception",
                &format!("unable to find script [{id}] in cluster state"),
            )),
        };
    }
    match body.get("source") {
        Some(Value::String(s)) => Ok((s.clone(), params)),
        Some(other) if other.is_object() => Ok((other.to_string(), params)),
        _ => Err(os_error(
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: template's script must not be null;",
        )),
    }
}

fn render_json(template: &str, params: &Value) -> Result<Value, Resp> {
    let text = mustache::render(template, params, Escape::Json).map_err(|why| {
        os_error(
            400,
            "general_script_exception",
            &format!("Failed to compile inline script [{template}] using lang [mustache]: {why}"),
        )
    })?;
    serde_json::from_str(&text).map_err(|e| {
        os_error(
            400,
            "json_parse_exception",
            &format!("Unexpected character in the rendered template: {e}"),
        )
    })
}

/// Every `_scripts`, `_render/template` and `_search/template` request.
pub fn handle(data: &DomainData, operation: &str, req: &Req) -> Resp {
    let mut state = data.lock();
    match operation {
        "PutScript" => {
            let id = req.segments.get(1).cloned().unwrap_or_default();
            let body = match req.json_body() {
                Ok(b) => b,
                Err(r) => return r,
            };
            match put_script(&mut state, &id, &body) {
                Ok(()) => json_resp(200, &json!({"acknowledged": true})),
                Err(r) => r,
            }
        }
        "GetScript" => {
            let id = req.segments.get(1).cloned().unwrap_or_default();
            match state.meta.scripts.get(&id) {
                Some(s) => json_resp(200, &json!({"_id": id, "found": true, "script": s})),
                None => json_resp(404, &json!({"_id": id, "found": false})),
            }
        }
        "DeleteScript" => {
            let id = req.segments.get(1).cloned().unwrap_or_default();
            match state.meta.scripts.remove(&id) {
                Some(_) => json_resp(200, &json!({"acknowledged": true})),
                None => os_error(
                    404,
                    "resource_not_found_exception",
                    &format!("stored script [{id}] does not exist"),
                ),
            }
        }
        "RenderTemplate" => {
            let body = match req.json_body() {
                Ok(b) => b,
                Err(r) => return r,
            };
            let id = req.segments.get(2).map(String::as_str);
            match template_of(&state, &body, id).and_then(|(t, p)| render_json(&t, &p)) {
                Ok(output) => json_resp(200, &json!({"template_output": output})),
                Err(r) => r,
            }
        }
        "SearchTemplate" => {
            let body = match req.json_body() {
                Ok(b) => b,
                Err(r) => return r,
            };
            let rendered =
                match template_of(&state, &body, None).and_then(|(t, p)| render_json(&t, &p)) {
                    Ok(v) => v,
                    Err(r) => return r,
                };
            drop(state);
            let mut segments = req.segments.clone();
            segments.retain(|s| s != "template");
            let search = Req {
                method: http::Method::POST,
                segments,
                query: req.query.clone(),
                body: bytes::Bytes::from(rendered.to_string()),
                headers: req.headers.clone(),
                caller: req.caller.clone(),
                uri: req.uri.clone(),
            };
            super::indices::search(data, &search)
        }
        _ => os_error(
            400,
            "illegal_argument_exception",
            "unsupported script operation",
        ),
    }
}

/// `GET _cluster/state[/<metrics>[/<indices>]]`: the cluster's metadata (templates of each kind,
/// stored scripts, pipelines, data streams and the indices' settings and aliases).
pub fn cluster_state(shared: &crate::Shared, data: &DomainData, req: &Req) -> Resp {
    let metrics = req
        .segments
        .get(2)
        .cloned()
        .unwrap_or_else(|| "_all".into());
    let wanted = |m: &str| metrics.split(',').any(|x| x == m || x == "_all");
    let state = data.lock();
    let mut body = Map::new();
    body.insert(
        "cluster_name".into(),
        json!(format!("{}:{}", shared.config.account_id, data.name)),
    );
    body.insert("cluster_uuid".into(), json!("sandbox-cluster-uuid-000"));
    if wanted("metadata") {
        let t = &state.meta.templates;
        let legacy: Map<String, Value> = t
            .legacy
            .iter()
            .map(|(n, l)| {
                let mut v = l.clone();
                v["settings"] =
                    super::meta::settings_json(&super::meta::flat_settings(&l["settings"]), false);
                (n.clone(), v)
            })
            .collect();
        let indices: Map<String, Value> = match req.segments.get(3) {
            Some(expr) => {
                let names: Vec<String> = state.indices.keys().cloned().collect();
                super::indices::resolve(&names, expr).unwrap_or_default()
            }
            None => state.indices.keys().cloned().collect(),
        }
        .into_iter()
        .map(|n| {
            let i = &state.indices[&n];
            (n, json!({"state": if i.closed { "close" } else { "open" }, "settings": super::indices::nest(&i.settings), "mappings": {"_doc": i.mappings}, "aliases": i.aliases.keys().collect::<Vec<_>>()}))
        })
        .collect();
        let pipelines: Vec<Value> = state
            .meta
            .pipelines
            .iter()
            .map(|(id, p)| json!({"id": id, "config": p}))
            .collect();
        let streams: Map<String, Value> = state
            .data_streams
            .values()
            .map(|d| {
                let backing: Vec<Value> = d.indices.iter().map(|i| json!({"index_name": i, "index_uuid": state.indices.get(i).map(|x| x.uuid()).unwrap_or_default()})).collect();
                (d.name.clone(), json!({"name": d.name, "timestamp_field": {"name": d.timestamp_field}, "indices": backing, "generation": d.generation}))
            })
            .collect();
        body.insert(
            "metadata".into(),
            json!({
                "cluster_uuid": "sandbox-cluster-uuid-000",
                "templates": legacy,
                "indices": indices,
                "stored_scripts": state.meta.scripts,
                "ingest": {"pipeline": pipelines},
                "index_template": {"index_template": t.composable},
                "component_template": {"component_template": t.component},
                "data_stream": {"data_stream": streams},
            }),
        );
    }
    json_resp(200, &Value::Object(body))
}
