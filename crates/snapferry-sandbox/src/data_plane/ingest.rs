//! Ingest pipelines: `_ingest/pipeline/<id>` PUT/GET/DELETE (GET with wildcards and lists),
//! `_simulate` (with `verbose`), and pipelines run on writes: the request's `?pipeline=`, else the
//! index's `index.default_pipeline` (from the templates for an index a write is about to create),
//! then its `index.final_pipeline`. A pipeline is checked when stored as the server checks it: an
//! unknown processor type is a `parse_exception` "No processor type exists with name [x]", a
//! missing or unknown option names the property. Every real processor type is accepted; the
//! sandbox runs `set`, `rename`, `lowercase`, `uppercase`, `trim`, `remove`, `append`, `convert`,
//! `fail` and `pipeline` (with `ignore_missing`, `ignore_failure`, `on_failure` and Mustache
//! values), and fails a document, naming the processor, when a pipeline asks for one it does not
//! run or for an `if` condition (a Painless script it cannot evaluate).

use serde_json::{Map, Value, json};

use super::mustache::{self, Escape};
use super::version::Engine;
use super::{DataState, DomainData, Req};
use crate::http::{Resp, json as json_resp};

/// Processor types of OpenSearch's ingest modules (ingest-common, ingest-geoip, ingest-user-agent,
/// lang-painless, and the ML/neural ones Amazon OpenSearch Service installs).
const OPENSEARCH_PROCESSORS: &[&str] = &[
    "append",
    "bytes",
    "community_id",
    "convert",
    "copy",
    "csv",
    "date",
    "date_index_name",
    "dissect",
    "dot_expander",
    "drop",
    "fail",
    "fingerprint",
    "foreach",
    "geoip",
    "grok",
    "gsub",
    "html_strip",
    "ip2geo",
    "join",
    "json",
    "kv",
    "lowercase",
    "pipeline",
    "remove",
    "remove_by_pattern",
    "rename",
    "script",
    "set",
    "sort",
    "sparse_encoding",
    "split",
    "text_embedding",
    "text_image_embedding",
    "trim",
    "uppercase",
    "urldecode",
    "user_agent",
];

/// The types Elasticsearch OSS (up to 7.10) has; the ones OpenSearch added are not among them.
const OPENSEARCH_ONLY: &[&str] = &[
    "community_id",
    "copy",
    "fingerprint",
    "ip2geo",
    "remove_by_pattern",
    "sparse_encoding",
    "text_embedding",
    "text_image_embedding",
];

/// Options every processor takes.
const COMMON: &[&str] = &["tag", "description", "if", "ignore_failure", "on_failure"];

/// The options of the processors the sandbox runs: (type, required, optional).
const OPTIONS: &[(&str, &[&str], &[&str])] = &[
    (
        "set",
        &["field"],
        &[
            "value",
            "override",
            "ignore_empty_value",
            "copy_from",
            "media_type",
        ],
    ),
    ("rename", &["field", "target_field"], &["ignore_missing"]),
    ("lowercase", &["field"], &["target_field", "ignore_missing"]),
    ("uppercase", &["field"], &["target_field", "ignore_missing"]),
    ("trim", &["field"], &["target_field", "ignore_missing"]),
    ("remove", &["field"], &["ignore_missing", "exclude_field"]),
    (
        "append",
        &["field", "value"],
        &["allow_duplicates", "media_type"],
    ),
    (
        "convert",
        &["field", "type"],
        &["target_field", "ignore_missing"],
    ),
    ("fail", &["message"], &[]),
    ("pipeline", &["name"], &["ignore_missing_pipeline"]),
];

fn processor_error(
    status: u16,
    kind: &str,
    reason: &str,
    processor: &str,
    tag: Option<&str>,
    property: Option<&str>,
) -> Resp {
    let mut cause = json!({"type": kind, "reason": reason, "processor_type": processor});
    if let Some(t) = tag {
        cause["processor_tag"] = json!(t);
    }
    if let Some(p) = property {
        cause["property_name"] = json!(p);
    }
    let mut error = cause.clone();
    error["root_cause"] = json!([cause]);
    json_resp(status, &json!({"error": error, "status": status}))
}

/// Checks one processor definition as `ConfigurationUtils.readProcessor` does.
fn check_processor(engine: &Engine, def: &Value) -> Result<(), Resp> {
    let Some((kind, config)) = def.as_object().and_then(|o| o.iter().next()) else {
        return Err(crate::http::os_error(
            400,
            "parse_exception",
            "[processors] processor must be an object",
        ));
    };
    let known = OPENSEARCH_PROCESSORS.contains(&kind.as_str())
        && (engine.is_opensearch() || !OPENSEARCH_ONLY.contains(&kind.as_str()));
    let tag = config["tag"].as_str();
    if !known {
        return Err(processor_error(
            400,
            "parse_exception",
            &format!("No processor type exists with name [{kind}]"),
            kind,
            tag,
            None,
        ));
    }
    let Some(cfg) = config.as_object() else {
        return Err(processor_error(
            400,
            "parse_exception",
            &format!("property isn't a map, but of type [{}]", java_type(config)),
            kind,
            tag,
            None,
        ));
    };
    if let Some((_, required, optional)) = OPTIONS.iter().find(|(k, _, _)| k == kind) {
        for r in *required {
            if !cfg.contains_key(*r) {
                return Err(processor_error(
                    400,
                    "parse_exception",
                    &format!("[{r}] required property is missing"),
                    kind,
                    tag,
                    Some(r),
                ));
            }
        }
        if *kind == "set" && !cfg.contains_key("value") && !cfg.contains_key("copy_from") {
            return Err(processor_error(
                400,
                "parse_exception",
                "[value] required property is missing",
                kind,
                tag,
                Some("value"),
            ));
        }
        let unknown: Vec<&String> = cfg
            .keys()
            .filter(|k| {
                !required.contains(&k.as_str())
                    && !optional.contains(&k.as_str())
                    && !COMMON.contains(&k.as_str())
            })
            .collect();
        if !unknown.is_empty() {
            return Err(processor_error(
                400,
                "parse_exception",
                &format!(
                    "processor [{kind}] doesn't support one or more provided configuration parameters [{}]",
                    unknown
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                kind,
                tag,
                None,
            ));
        }
        if *kind == "convert" {
            let t = cfg["type"].as_str().unwrap_or("");
            if ![
                "integer", "long", "float", "double", "string", "boolean", "auto", "ip",
            ]
            .contains(&t)
            {
                return Err(processor_error(
                    400,
                    "parse_exception",
                    &format!("type [{t}] not supported, cannot convert field."),
                    kind,
                    tag,
                    Some("type"),
                ));
            }
        }
    }
    for nested in cfg
        .get("on_failure")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        check_processor(engine, nested)?;
    }
    Ok(())
}

fn java_type(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "java.lang.String",
        Value::Bool(_) => "java.lang.Boolean",
        Value::Number(n) if n.is_i64() => "java.lang.Integer",
        Value::Number(_) => "java.lang.Double",
        Value::Array(_) => "java.util.ArrayList",
        Value::Object(_) => "java.util.HashMap",
        Value::Null => "null",
    }
}

/// `PUT _ingest/pipeline/<id>`: checked, then stored as given.
pub fn put_pipeline(
    state: &mut DataState,
    engine: &Engine,
    id: &str,
    body: &Value,
) -> Result<(), Resp> {
    let Some(o) = body.as_object() else {
        return Err(crate::http::os_error(
            400,
            "parse_exception",
            "request body is required",
        ));
    };
    let Some(processors) = o.get("processors") else {
        return Err(crate::http::json(
            400,
            &json!({"error": {"root_cause": [{"type": "parse_exception", "reason": "[processors] required property is missing", "property_name": "processors"}],
                "type": "parse_exception", "reason": "[processors] required property is missing", "property_name": "processors"}, "status": 400}),
        ));
    };
    let Some(list) = processors.as_array() else {
        return Err(crate::http::os_error(
            400,
            "parse_exception",
            "[processors] property isn't a list, but of type [java.util.HashMap]",
        ));
    };
    for p in list.iter().chain(
        o.get("on_failure")
            .and_then(Value::as_array)
            .into_iter()
            .flatten(),
    ) {
        check_processor(engine, p)?;
    }
    state.meta.pipelines.insert(id.to_owned(), body.clone());
    Ok(())
}

/// A document going through a pipeline: its source and its metadata fields.
#[derive(Debug, Clone)]
pub struct IngestDoc {
    pub source: Value,
    pub index: String,
    pub id: Option<String>,
    pub routing: Option<String>,
    pub timestamp: String,
    /// Set by an `on_failure` handler for the processors it runs.
    pub failure: Option<(String, String, Option<String>)>,
}

impl IngestDoc {
    /// What Mustache sees: the source fields plus `_index`, `_id`, `_ingest`.
    fn context(&self) -> Value {
        let mut ctx = self.source.clone();
        if !ctx.is_object() {
            ctx = json!({});
        }
        ctx["_index"] = json!(self.index);
        if let Some(id) = &self.id {
            ctx["_id"] = json!(id);
        }
        let mut ingest = json!({"timestamp": self.timestamp});
        if let Some((message, kind, tag)) = &self.failure {
            ingest["on_failure_message"] = json!(message);
            ingest["on_failure_processor_type"] = json!(kind);
            ingest["on_failure_processor_tag"] = json!(tag);
        }
        ctx["_ingest"] = ingest;
        ctx
    }

    fn get(&self, path: &str) -> Option<Value> {
        match path {
            "_index" => return Some(json!(self.index)),
            "_id" => return self.id.clone().map(Value::String),
            "_routing" => return self.routing.clone().map(Value::String),
            _ => {}
        }
        if let Some(rest) = path.strip_prefix("_ingest.") {
            return self.context()["_ingest"].get(rest).cloned();
        }
        let path = path.strip_prefix("_source.").unwrap_or(path);
        let mut node = &self.source;
        for part in path.split('.') {
            node = match node {
                Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
                other => other.get(part)?,
            };
        }
        Some(node.clone())
    }

    fn set(&mut self, path: &str, value: Value) -> Result<(), String> {
        match path {
            "_index" => {
                self.index = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned);
                return Ok(());
            }
            "_id" => {
                self.id = Some(
                    value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_owned),
                );
                return Ok(());
            }
            "_routing" => {
                self.routing = Some(
                    value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_owned),
                );
                return Ok(());
            }
            _ => {}
        }
        let path = path.strip_prefix("_source.").unwrap_or(path);
        let parts: Vec<&str> = path.split('.').collect();
        let mut node = &mut self.source;
        for (n, part) in parts.iter().enumerate() {
            let last = n == parts.len() - 1;
            let kind = java_type(node);
            let Some(obj) = node.as_object_mut() else {
                return Err(format!(
                    "cannot set [{part}] with parent object of type [{kind}] as part of path [{path}]"
                ));
            };
            if last {
                obj.insert((*part).to_owned(), value);
                return Ok(());
            }
            node = obj.entry((*part).to_owned()).or_insert_with(|| json!({}));
        }
        Ok(())
    }

    fn remove(&mut self, path: &str) -> Option<Value> {
        let path = path.strip_prefix("_source.").unwrap_or(path);
        let (parent, leaf) = match path.rsplit_once('.') {
            Some((p, l)) => (Some(p), l),
            None => (None, path),
        };
        let mut node = &mut self.source;
        if let Some(p) = parent {
            for part in p.split('.') {
                node = node.get_mut(part)?;
            }
        }
        node.as_object_mut()?.remove(leaf)
    }
}

/// A failed processor: (exception type, reason, processor type, tag).
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: String,
    pub reason: String,
    pub processor: String,
    pub tag: Option<String>,
}

impl Failure {
    pub fn response(&self) -> Resp {
        processor_error(
            400,
            &self.kind,
            &self.reason,
            &self.processor,
            self.tag.as_deref(),
            None,
        )
    }

    /// The `error` object of a bulk item or a simulated document.
    pub fn error_json(&self) -> Value {
        let mut e =
            json!({"type": self.kind, "reason": self.reason, "processor_type": self.processor});
        if let Some(t) = &self.tag {
            e["processor_tag"] = json!(t);
        }
        let mut top = e.clone();
        top["root_cause"] = json!([e]);
        top
    }
}

fn fail(kind: &str, reason: String, processor: &str, tag: Option<&str>) -> Failure {
    Failure {
        kind: kind.into(),
        reason,
        processor: processor.into(),
        tag: tag.map(str::to_owned),
    }
}

fn render_str(text: &str, doc: &IngestDoc) -> String {
    if mustache::is_template(text) {
        mustache::render(text, &doc.context(), Escape::None).unwrap_or_else(|_| text.to_owned())
    } else {
        text.to_owned()
    }
}

fn render_value(v: &Value, doc: &IngestDoc) -> Value {
    match v {
        Value::String(s) => Value::String(render_str(s, doc)),
        Value::Array(a) => Value::Array(a.iter().map(|x| render_value(x, doc)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), render_value(x, doc)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What running a pipeline did to a document.
#[derive(Debug)]
pub enum Outcome {
    Continue,
    Dropped,
}

/// One step of `verbose` simulation.
pub type Trace = Vec<Value>;

/// Runs the pipeline `id` on `doc`.
pub fn run(
    state: &DataState,
    id: &str,
    doc: &mut IngestDoc,
    depth: usize,
    trace: &mut Option<Trace>,
) -> Result<Outcome, Failure> {
    let Some(pipeline) = state.meta.pipelines.get(id) else {
        return Err(fail(
            "illegal_argument_exception",
            format!("pipeline with id [{id}] does not exist"),
            "pipeline",
            None,
        ));
    };
    run_definition(state, pipeline, doc, depth, trace)
}

fn run_definition(
    state: &DataState,
    pipeline: &Value,
    doc: &mut IngestDoc,
    depth: usize,
    trace: &mut Option<Trace>,
) -> Result<Outcome, Failure> {
    if depth > 100 {
        return Err(fail(
            "illegal_state_exception",
            "Cycle detected for pipeline".into(),
            "pipeline",
            None,
        ));
    }
    let processors = pipeline["processors"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    match run_list(state, &processors, doc, depth, trace) {
        Ok(o) => Ok(o),
        Err(f) => match pipeline["on_failure"].as_array() {
            Some(handlers) => {
                doc.failure = Some((f.reason.clone(), f.processor.clone(), f.tag.clone()));
                let r = run_list(state, handlers, doc, depth, trace);
                doc.failure = None;
                r
            }
            None => Err(f),
        },
    }
}

fn run_list(
    state: &DataState,
    processors: &[Value],
    doc: &mut IngestDoc,
    depth: usize,
    trace: &mut Option<Trace>,
) -> Result<Outcome, Failure> {
    for def in processors {
        let Some((kind, cfg)) = def.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let tag = cfg["tag"].as_str();
        let result = run_one(state, kind, cfg, doc, depth, trace);
        let result = match result {
            Err(f) if cfg["ignore_failure"] == json!(true) => {
                let _ = f;
                Ok(Outcome::Continue)
            }
            Err(f) => match cfg["on_failure"].as_array() {
                Some(handlers) => {
                    doc.failure = Some((f.reason.clone(), f.processor.clone(), f.tag.clone()));
                    let r = run_list(state, handlers, doc, depth, trace);
                    doc.failure = None;
                    r
                }
                None => Err(f),
            },
            ok => ok,
        };
        if let Some(t) = trace.as_mut() {
            let mut step = json!({"processor_type": kind, "status": if result.is_ok() { "success" } else { "error" }});
            if let Some(tag) = tag {
                step["tag"] = json!(tag);
            }
            match &result {
                Ok(_) => step["doc"] = doc_json(doc),
                Err(f) => step["error"] = f.error_json(),
            }
            t.push(step);
        }
        match result? {
            Outcome::Dropped => return Ok(Outcome::Dropped),
            Outcome::Continue => {}
        }
    }
    Ok(Outcome::Continue)
}

fn str_field<'a>(cfg: &'a Value, key: &str) -> &'a str {
    cfg[key].as_str().unwrap_or("")
}

fn run_one(
    state: &DataState,
    kind: &str,
    cfg: &Value,
    doc: &mut IngestDoc,
    depth: usize,
    trace: &mut Option<Trace>,
) -> Result<Outcome, Failure> {
    let tag = cfg["tag"].as_str();
    let err = |kind_: &str, reason: String| fail(kind_, reason, kind, tag);
    if cfg.get("if").is_some() {
        return Err(err(
            "illegal_argument_exception",
            format!(
                "the snapferry sandbox cannot evaluate the Painless condition [if] of processor [{kind}]"
            ),
        ));
    }
    let ignore_missing = cfg["ignore_missing"] == json!(true);
    let field = render_str(str_field(cfg, "field"), doc);
    let missing = |f: &str| {
        err(
            "illegal_argument_exception",
            format!("field [{f}] not present as part of path [{f}]"),
        )
    };
    match kind {
        "set" => {
            if cfg["override"] == json!(false) && doc.get(&field).is_some_and(|v| !v.is_null()) {
                return Ok(Outcome::Continue);
            }
            let value = match cfg.get("copy_from").and_then(Value::as_str) {
                Some(from) => doc.get(from).ok_or_else(|| missing(from))?,
                None => render_value(&cfg["value"], doc),
            };
            if cfg["ignore_empty_value"] == json!(true) && (value.is_null() || value == json!("")) {
                return Ok(Outcome::Continue);
            }
            doc.set(&field, value)
                .map_err(|e| err("illegal_argument_exception", e))?;
        }
        "rename" => {
            let target = render_str(str_field(cfg, "target_field"), doc);
            let Some(value) = doc.get(&field) else {
                if ignore_missing {
                    return Ok(Outcome::Continue);
                }
                return Err(err(
                    "illegal_argument_exception",
                    format!("field [{field}] doesn't exist"),
                ));
            };
            if doc.get(&target).is_some() {
                return Err(err(
                    "illegal_argument_exception",
                    format!("field [{target}] already exists"),
                ));
            }
            doc.remove(&field);
            doc.set(&target, value)
                .map_err(|e| err("illegal_argument_exception", e))?;
        }
        "lowercase" | "uppercase" | "trim" => {
            let target = cfg["target_field"]
                .as_str()
                .map(|t| render_str(t, doc))
                .unwrap_or_else(|| field.clone());
            match doc.get(&field) {
                None | Some(Value::Null) if ignore_missing => {}
                None => return Err(missing(&field)),
                Some(Value::Null) => {
                    return Err(err(
                        "illegal_argument_exception",
                        format!("field [{field}] is null, cannot process it."),
                    ));
                }
                Some(Value::String(s)) => {
                    let out = match kind {
                        "lowercase" => s.to_lowercase(),
                        "uppercase" => s.to_uppercase(),
                        _ => s.trim().to_owned(),
                    };
                    doc.set(&target, json!(out))
                        .map_err(|e| err("illegal_argument_exception", e))?;
                }
                Some(Value::Array(items)) => {
                    let mut out = Vec::new();
                    for v in items {
                        let Some(s) = v.as_str() else {
                            return Err(err(
                                "illegal_argument_exception",
                                format!(
                                    "value [{v}] of type [{}] in list field [{field}] cannot be cast to [java.lang.String]",
                                    java_type(&v)
                                ),
                            ));
                        };
                        out.push(json!(match kind {
                            "lowercase" => s.to_lowercase(),
                            "uppercase" => s.to_uppercase(),
                            _ => s.trim().to_owned(),
                        }));
                    }
                    doc.set(&target, Value::Array(out))
                        .map_err(|e| err("illegal_argument_exception", e))?;
                }
                Some(other) => {
                    return Err(err(
                        "illegal_argument_exception",
                        format!(
                            "field [{field}] of type [{}] cannot be cast to [java.lang.String]",
                            java_type(&other)
                        ),
                    ));
                }
            }
        }
        "remove" => {
            let fields: Vec<String> = match &cfg["field"] {
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str())
                    .map(|f| render_str(f, doc))
                    .collect(),
                _ => vec![field.clone()],
            };
            for f in fields {
                if doc.remove(&f).is_none() && !ignore_missing {
                    return Err(missing(&f));
                }
            }
        }
        "append" => {
            let add: Vec<Value> = match render_value(&cfg["value"], doc) {
                Value::Array(a) => a,
                v => vec![v],
            };
            let mut list = match doc.get(&field) {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) => a,
                Some(v) => vec![v],
            };
            for v in add {
                if cfg["allow_duplicates"] == json!(false) && list.contains(&v) {
                    continue;
                }
                list.push(v);
            }
            doc.set(&field, Value::Array(list))
                .map_err(|e| err("illegal_argument_exception", e))?;
        }
        "convert" => {
            let target = cfg["target_field"]
                .as_str()
                .map(|t| render_str(t, doc))
                .unwrap_or_else(|| field.clone());
            let ty = str_field(cfg, "type");
            let value = match doc.get(&field) {
                None | Some(Value::Null) if ignore_missing => return Ok(Outcome::Continue),
                None => return Err(missing(&field)),
                Some(Value::Null) => {
                    return Err(err(
                        "illegal_argument_exception",
                        format!("Field [{field}] is null, cannot be converted to type [{ty}]"),
                    ));
                }
                Some(v) => v,
            };
            let convert = |v: &Value| -> Result<Value, Failure> {
                let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                let bad = |t: &str| {
                    err(
                        "illegal_argument_exception",
                        format!("unable to convert [{text}] to {t}"),
                    )
                };
                Ok(match ty {
                    "integer" | "long" => json!(text.trim().parse::<i64>().map_err(|_| bad(ty))?),
                    "float" | "double" => json!(text.trim().parse::<f64>().map_err(|_| bad(ty))?),
                    "boolean" => match text.to_lowercase().as_str() {
                        "true" => json!(true),
                        "false" => json!(false),
                        _ => return Err(bad("boolean")),
                    },
                    "string" => json!(text),
                    "ip" => {
                        text.parse::<std::net::IpAddr>().map_err(|_| {
                            err(
                                "illegal_argument_exception",
                                format!("'{text}' is not an IP string literal."),
                            )
                        })?;
                        json!(text)
                    }
                    _ => {
                        if let Ok(i) = text.parse::<i64>() {
                            json!(i)
                        } else if let Ok(f) = text.parse::<f64>() {
                            json!(f)
                        } else if text == "true" || text == "false" {
                            json!(text == "true")
                        } else {
                            json!(text)
                        }
                    }
                })
            };
            let out = match &value {
                Value::Array(a) => Value::Array(a.iter().map(convert).collect::<Result<_, _>>()?),
                v => convert(v)?,
            };
            doc.set(&target, out)
                .map_err(|e| err("illegal_argument_exception", e))?;
        }
        "fail" => {
            let message = render_str(str_field(cfg, "message"), doc);
            return Err(err("fail_processor_exception", message));
        }
        "pipeline" => {
            let name = render_str(str_field(cfg, "name"), doc);
            if !state.meta.pipelines.contains_key(&name) {
                if cfg["ignore_missing_pipeline"] == json!(true) {
                    return Ok(Outcome::Continue);
                }
                return Err(err(
                    "illegal_argument_exception",
                    format!("Pipeline processor configured for non-existent pipeline [{name}]"),
                ));
            }
            return run(state, &name, doc, depth + 1, trace);
        }
        "drop" => return Ok(Outcome::Dropped),
        other => {
            return Err(err(
                "illegal_argument_exception",
                format!("the snapferry sandbox does not run the [{other}] processor"),
            ));
        }
    }
    Ok(Outcome::Continue)
}

fn doc_json(doc: &IngestDoc) -> Value {
    let mut out = json!({"_index": doc.index, "_source": doc.source, "_ingest": {"timestamp": doc.timestamp}});
    if let Some(id) = &doc.id {
        out["_id"] = json!(id);
    }
    if let Some(r) = &doc.routing {
        out["_routing"] = json!(r);
    }
    out
}

/// The pipelines a write into `index` runs: (default or requested, final).
pub fn pipelines_for(
    state: &DataState,
    index: &str,
    requested: Option<&str>,
) -> (Option<String>, Option<String>) {
    let settings = match state.indices.get(index) {
        Some(i) => i.settings.clone(),
        None => super::templates::resolve(&state.meta.templates, index, false).settings,
    };
    let pick = |v: Option<&String>| v.filter(|p| p.as_str() != "_none").cloned();
    let default = match requested {
        Some("_none") => None,
        Some(p) => Some(p.to_owned()),
        None => pick(settings.get("index.default_pipeline")),
    };
    (default, pick(settings.get("index.final_pipeline")))
}

/// Runs a write's pipelines; `Ok(None)` when a `drop` processor dropped the document.
pub fn process(
    state: &DataState,
    now: i64,
    index: &str,
    id: Option<String>,
    source: Value,
    requested: Option<&str>,
) -> Result<Option<IngestDoc>, Failure> {
    let mut doc = IngestDoc {
        source,
        index: index.to_owned(),
        id,
        routing: None,
        timestamp: super::meta::iso(now),
        failure: None,
    };
    let (default, _) = pipelines_for(state, index, requested);
    if let Some(p) = default
        && let Outcome::Dropped = run(state, &p, &mut doc, 0, &mut None)?
    {
        return Ok(None);
    }
    let (_, final_pipeline) = pipelines_for(state, &doc.index, None);
    if let Some(p) = final_pipeline
        && let Outcome::Dropped = run(state, &p, &mut doc, 0, &mut None)?
    {
        return Ok(None);
    }
    Ok(Some(doc))
}

// ---- REST handlers ----

/// `PUT|GET|DELETE _ingest/pipeline[/<id>]` and `_simulate`.
pub fn handle(data: &DomainData, now: i64, operation: &str, req: &Req) -> Resp {
    let id = req.segments.get(2).cloned().unwrap_or_default();
    let mut state = data.lock();
    match operation {
        "PutPipeline" => {
            let body = match req.json_body() {
                Ok(b) => b,
                Err(r) => return r,
            };
            match put_pipeline(&mut state, &data.engine, &id, &body) {
                Ok(()) => json_resp(200, &json!({"acknowledged": true})),
                Err(r) => r,
            }
        }
        "GetPipeline" => {
            let mut out = Map::new();
            for (k, v) in &state.meta.pipelines {
                if id.is_empty() || id == "*" || super::meta::matches_any(&id, k) {
                    out.insert(k.clone(), v.clone());
                }
            }
            // `GetPipelineResponse` is NOT_FOUND whenever it holds no pipeline, asked for by
            // name or not.
            if out.is_empty() {
                return json_resp(404, &json!({}));
            }
            json_resp(200, &Value::Object(out))
        }
        "DeletePipeline" => {
            let matched: Vec<String> = state
                .meta
                .pipelines
                .keys()
                .filter(|k| super::meta::matches_any(&id, k))
                .cloned()
                .collect();
            if matched.is_empty() {
                return crate::http::os_error(
                    404,
                    "resource_not_found_exception",
                    &format!("pipeline [{id}] is missing"),
                );
            }
            for m in matched {
                state.meta.pipelines.remove(&m);
            }
            json_resp(200, &json!({"acknowledged": true}))
        }
        "SimulatePipeline" => {
            let body = match req.json_body() {
                Ok(b) => b,
                Err(r) => return r,
            };
            let named = req.segments.len() == 4;
            let pipeline = if named {
                match state.meta.pipelines.get(&id) {
                    Some(p) => p.clone(),
                    None => {
                        return crate::http::os_error(
                            400,
                            "illegal_argument_exception",
                            &format!("pipeline [{id}] does not exist"),
                        );
                    }
                }
            } else {
                let Some(p) = body.get("pipeline") else {
                    return crate::http::os_error(
                        400,
                        "parse_exception",
                        "[pipeline] required property is missing",
                    );
                };
                if let Some(list) = p["processors"].as_array() {
                    for def in list {
                        if let Err(r) = check_processor(&data.engine, def) {
                            return r;
                        }
                    }
                }
                p.clone()
            };
            let Some(docs) = body["docs"].as_array() else {
                return crate::http::os_error(
                    400,
                    "parse_exception",
                    "[docs] required property is missing",
                );
            };
            let verbose = req.flag("verbose");
            let mut results = Vec::new();
            for d in docs {
                let mut doc = IngestDoc {
                    source: d["_source"].clone(),
                    index: d["_index"].as_str().unwrap_or("_index").to_owned(),
                    id: Some(d["_id"].as_str().unwrap_or("_id").to_owned()),
                    routing: d["_routing"].as_str().map(str::to_owned),
                    timestamp: super::meta::iso(now),
                    failure: None,
                };
                let mut trace = verbose.then(Vec::new);
                let result = run_definition(&state, &pipeline, &mut doc, 0, &mut trace);
                if let Some(t) = trace {
                    results.push(json!({"processor_results": t}));
                    continue;
                }
                results.push(match result {
                    Ok(Outcome::Continue) => json!({"doc": doc_json(&doc)}),
                    Ok(Outcome::Dropped) => Value::Null,
                    Err(f) => json!({"error": f.error_json()}),
                });
            }
            json_resp(200, &json!({"docs": results}))
        }
        _ => crate::http::os_error(
            400,
            "illegal_argument_exception",
            "unsupported ingest operation",
        ),
    }
}
