//! Index templates of the three kinds and what they do when an index is born. Composable templates
//! (`_index_template`, Elasticsearch 7.8 and every OpenSearch) are built from component templates
//! (`_component_template`) in `composed_of` order, their own `template` last; legacy templates
//! (`_template`) all apply, lowest `order` first. When a composable template matches a new index,
//! it alone is used (highest `priority`), and the legacy ones are ignored — OpenSearch's
//! `MetadataCreateIndexService`. A composable template with `data_stream: {}` turns a write to a
//! matching name into a data stream (`.ds-<name>-000001`), and `_rollover` gives a stream (or a
//! write alias) a new write index made from the templates again. A version without composable
//! templates answers their paths as it answers any path it has no handler for.
//!
//! Messages and shapes are the server's (`MetadataIndexTemplateService`,
//! `MetadataCreateDataStreamService`, `MetadataRolloverService`).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::indices::Index;
use super::meta::{flat_settings, merge, settings_json, typeless};
use super::version::Engine;
use super::{DataState, DataStream, DomainData, Req, backing_index};
use crate::http::{Resp, json as json_resp, os_error};

/// The three kinds, bodies normalised as the server stores them (settings flat under `index.`,
/// mappings without a type name).
#[derive(Default)]
pub struct Templates {
    pub composable: BTreeMap<String, Value>,
    pub component: BTreeMap<String, Value>,
    pub legacy: BTreeMap<String, Value>,
}

/// 400 `no handler found`: what a server answers for a path none of its handlers serves.
pub fn no_handler(method: &str, path: &str) -> Resp {
    json_resp(
        400,
        &json!({"error": format!("no handler found for uri [{path}] and method [{method}]"), "status": 400}),
    )
}

/// Composable and component templates exist from Elasticsearch 7.8 and in every OpenSearch.
pub fn composable_supported(engine: &Engine) -> bool {
    engine.at_least_es(7, 8)
}

fn parse_error(status: u16, kind: &str, reason: String) -> Resp {
    os_error(status, kind, &reason)
}

/// Where `"key"` starts in a compact rendering of `body`, as `[line:column]` of the parser.
fn position(body: &Value, key: &str) -> String {
    let text = body.to_string();
    let col = text.find(&format!("\"{key}\"")).map_or(1, |i| i + 1);
    format!("[1:{col}]")
}

fn unknown_field(body: &Value, object: &str, key: &str) -> Resp {
    parse_error(
        400,
        "x_content_parse_exception",
        format!("{} [{object}] unknown field [{key}]", position(body, key)),
    )
}

fn invalid_template(name: &str, errors: &[String]) -> Resp {
    let mut message = "Validation Failed: ".to_owned();
    for (n, e) in errors.iter().enumerate() {
        message.push_str(&format!("{}: {e};", n + 1));
    }
    parse_error(
        400,
        "invalid_index_template_exception",
        format!("index_template [{name}] invalid, cause [{message}]"),
    )
}

/// The name and pattern rules every template kind shares (`validate(name, settings, patterns)`).
fn validate_names(name: &str, patterns: &[String]) -> Vec<String> {
    let mut errors = Vec::new();
    for (bad, why) in [
        (' ', "name must not contain a space"),
        (',', "name must not contain a ','"),
        ('#', "name must not contain a '#'"),
        ('*', "name must not contain a '*'"),
    ] {
        if name.contains(bad) {
            errors.push(why.to_owned());
        }
    }
    if name.starts_with('_') {
        errors.push("name must not start with '_'".into());
    }
    if name.to_lowercase() != name {
        errors.push("name must be lower cased".into());
    }
    for p in patterns {
        if p.contains(' ') {
            errors.push(format!("index_patterns [{p}] must not contain a space"));
        }
        for c in [',', '#', ':'] {
            if p.contains(c) {
                errors.push(format!("index_pattern [{p}] must not contain a '{c}'"));
            }
        }
        if p.starts_with('_') {
            errors.push(format!("index_pattern [{p}] must not start with '_'"));
        }
        if p.contains(['\\', '/', '?', '"', '<', '>', '|']) {
            errors.push(format!(
                "index_pattern [{p}] must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?]"
            ));
        }
    }
    errors
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => None,
    }
}

/// The `template` object of composable and component templates: settings flattened, mappings
/// typeless, aliases as given. `Err` for an unknown key.
fn parse_inner(body: &Value, inner: &Value) -> Result<Value, Resp> {
    let Some(o) = inner.as_object() else {
        return Err(parse_error(
            400,
            "x_content_parse_exception",
            format!(
                "{} [template] template doesn't support values of type: VALUE_STRING",
                position(body, "template")
            ),
        ));
    };
    let mut out = Map::new();
    for (k, v) in o {
        match k.as_str() {
            "settings" => {
                let flat = flat_settings(v);
                out.insert(
                    "settings".into(),
                    Value::Object(flat.into_iter().map(|(k, v)| (k, json!(v))).collect()),
                );
            }
            "mappings" => {
                out.insert("mappings".into(), typeless(v));
            }
            "aliases" => {
                out.insert("aliases".into(), v.clone());
            }
            other => return Err(unknown_field(body, "template", other)),
        }
    }
    Ok(Value::Object(out))
}

fn flat_of(template: &Value) -> BTreeMap<String, String> {
    template["settings"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether two sets of `*` patterns can match a common name (the server intersects automata; a
/// wildcard-aware comparison of the literal prefixes is enough for `*` patterns).
fn overlap(a: &[String], b: &[String]) -> bool {
    a.iter().any(|x| {
        b.iter().any(|y| {
            let px = x.split('*').next().unwrap_or("");
            let py = y.split('*').next().unwrap_or("");
            let prefixes = px.starts_with(py) || py.starts_with(px);
            match (x.contains('*'), y.contains('*')) {
                (false, false) => x == y,
                (true, false) => super::indices::glob(x, y),
                (false, true) => super::indices::glob(y, x),
                (true, true) => prefixes,
            }
        })
    })
}

fn patterns_of(t: &Value) -> Vec<String> {
    string_list(&t["index_patterns"]).unwrap_or_default()
}

fn priority_of(t: &Value) -> i64 {
    t["priority"].as_i64().unwrap_or(0)
}

fn java_list(v: &[String]) -> String {
    format!("[{}]", v.join(", "))
}

/// `PUT _component_template/<name>`.
pub fn put_component(
    state: &mut DataState,
    engine: &Engine,
    name: &str,
    body: &Value,
    create: bool,
) -> Result<(), Resp> {
    let _ = engine;
    let Some(o) = body.as_object() else {
        return Err(parse_error(
            400,
            "parse_exception",
            "request body is required".into(),
        ));
    };
    let mut stored = Map::new();
    for (k, v) in o {
        match k.as_str() {
            "template" => {
                stored.insert("template".into(), parse_inner(body, v)?);
            }
            "version" | "_meta" => {
                stored.insert(k.clone(), v.clone());
            }
            other => return Err(unknown_field(body, "component_template", other)),
        }
    }
    if !stored.contains_key("template") {
        return Err(parse_error(
            400,
            "illegal_argument_exception",
            "Required [template]".into(),
        ));
    }
    let t = &mut state.meta.templates;
    if create && t.component.contains_key(name) {
        return Err(parse_error(
            400,
            "illegal_argument_exception",
            format!("component template [{name}] already exists"),
        ));
    }
    let errors = validate_names(name, &[]);
    if !errors.is_empty() {
        return Err(invalid_template(name, &errors));
    }
    t.component.insert(name.to_owned(), Value::Object(stored));
    Ok(())
}

/// `PUT _index_template/<name>`.
pub fn put_composable(
    state: &mut DataState,
    engine: &Engine,
    name: &str,
    body: &Value,
    create: bool,
) -> Result<Option<String>, Resp> {
    let Some(o) = body.as_object() else {
        return Err(parse_error(
            400,
            "parse_exception",
            "request body is required".into(),
        ));
    };
    let mut stored = Map::new();
    for (k, v) in o {
        match k.as_str() {
            "index_patterns" => {
                let Some(list) = string_list(v) else {
                    return Err(parse_error(
                        400,
                        "x_content_parse_exception",
                        format!(
                            "{} [index_template] failed to parse field [index_patterns]",
                            position(body, k)
                        ),
                    ));
                };
                stored.insert(k.clone(), json!(list));
            }
            "template" => {
                stored.insert("template".into(), parse_inner(body, v)?);
            }
            "composed_of" => {
                stored.insert(k.clone(), json!(string_list(v).unwrap_or_default()));
            }
            "priority" | "version" => {
                let n = v
                    .as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()));
                stored.insert(k.clone(), json!(n));
            }
            "_meta" => {
                stored.insert(k.clone(), v.clone());
            }
            "data_stream" if engine.is_opensearch() => {
                let field = v["timestamp_field"]["name"]
                    .as_str()
                    .unwrap_or("@timestamp");
                stored.insert(k.clone(), json!({"timestamp_field": {"name": field}}));
            }
            other => return Err(unknown_field(body, "index_template", other)),
        }
    }
    let Some(patterns) = stored.get("index_patterns").and_then(string_list) else {
        return Err(parse_error(
            400,
            "illegal_argument_exception",
            "Required [index_patterns]".into(),
        ));
    };
    let priority = stored.get("priority").and_then(Value::as_i64).unwrap_or(0);
    let t = &state.meta.templates;
    if create && t.composable.contains_key(name) {
        return Err(parse_error(
            400,
            "illegal_argument_exception",
            format!("index template [{name}] already exists"),
        ));
    }
    let composed: Vec<String> = stored
        .get("composed_of")
        .and_then(string_list)
        .unwrap_or_default();
    let missing: Vec<String> = composed
        .iter()
        .filter(|c| !t.component.contains_key(*c))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(parse_error(
            400,
            "invalid_index_template_exception",
            format!(
                "index_template [{name}] invalid, cause [index template [{name}] specifies component templates {} that do not exist]",
                java_list(&missing)
            ),
        ));
    }
    let conflicts: Vec<(&String, Vec<String>)> = t
        .composable
        .iter()
        .filter(|(n, other)| {
            *n != name && priority_of(other) == priority && overlap(&patterns, &patterns_of(other))
        })
        .map(|(n, other)| (n, patterns_of(other)))
        .collect();
    if !conflicts.is_empty() {
        let names: Vec<String> = conflicts.iter().map(|(n, _)| (*n).clone()).collect();
        let detail: Vec<String> = conflicts
            .iter()
            .map(|(n, p)| format!("{n} => {}", java_list(p)))
            .collect();
        return Err(parse_error(
            400,
            "illegal_argument_exception",
            format!(
                "index template [{name}] has index patterns {} matching patterns from existing templates [{}] with patterns ({}) that have the same priority [{priority}], multiple index templates may not match during index creation, please use a different priority",
                java_list(&patterns),
                names.join(","),
                detail.join(",")
            ),
        ));
    }
    let errors = validate_names(name, &patterns);
    if !errors.is_empty() {
        return Err(invalid_template(name, &errors));
    }
    // A data stream must keep a data-stream template (`validateDataStreamsStillReferenced`).
    let mut after = Templates {
        composable: t.composable.clone(),
        component: BTreeMap::new(),
        legacy: BTreeMap::new(),
    };
    after
        .composable
        .insert(name.to_owned(), Value::Object(stored.clone()));
    let lost: Vec<String> = state
        .data_streams
        .keys()
        .filter(|ds| {
            let before = find_v2(t, ds, false)
                .is_some_and(|w| t.composable[&w].get("data_stream").is_some());
            let now = find_v2(&after, ds, false)
                .is_some_and(|w| after.composable[&w].get("data_stream").is_some());
            before && !now
        })
        .cloned()
        .collect();
    if !lost.is_empty() {
        return Err(parse_error(
            400,
            "illegal_argument_exception",
            format!(
                "composable template [{name}] with index patterns {}, priority [{}] {}would cause data streams {} to no longer match a data stream template",
                java_list(&patterns),
                stored
                    .get("priority")
                    .and_then(Value::as_i64)
                    .map_or("null".into(), |p| p.to_string()),
                if stored.contains_key("data_stream") {
                    ""
                } else {
                    "and no data stream configuration "
                },
                java_list(&lost)
            ),
        ));
    }
    let legacy: Vec<String> = t
        .legacy
        .iter()
        .filter(|(_, l)| overlap(&patterns, &patterns_of(l)))
        .map(|(n, l)| format!("{n} => {}", java_list(&patterns_of(l))))
        .collect();
    let warning = (!legacy.is_empty()).then(|| {
        format!(
            "index template [{name}] has index patterns {} matching patterns from existing older templates [{}] with patterns ({}); this template [{name}] will take precedence during new index creation",
            java_list(&patterns),
            t.legacy
                .iter()
                .filter(|(_, l)| overlap(&patterns, &patterns_of(l)))
                .map(|(n, _)| n.clone())
                .collect::<Vec<_>>()
                .join(","),
            legacy.join(",")
        )
    });
    state
        .meta
        .templates
        .composable
        .insert(name.to_owned(), Value::Object(stored));
    Ok(warning)
}

/// `PUT _template/<name>` (legacy), with `order`, `create` and `include_type_name` from the
/// query.
pub fn put_legacy(
    state: &mut DataState,
    engine: &Engine,
    name: &str,
    body: &Value,
    create: bool,
    order: Option<i64>,
    include_type_name: bool,
) -> Result<Option<String>, Resp> {
    let Some(o) = body.as_object() else {
        return Err(parse_error(
            400,
            "parse_exception",
            "request body is required".into(),
        ));
    };
    let mut stored = Map::new();
    stored.insert("order".into(), json!(order.unwrap_or(0)));
    for (k, v) in o {
        match k.as_str() {
            "index_patterns" | "template" => {
                stored.insert(
                    "index_patterns".into(),
                    json!(string_list(v).unwrap_or_default()),
                );
            }
            "order" => {
                let n = v
                    .as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()));
                stored.insert("order".into(), json!(order.or(n).unwrap_or(0)));
            }
            "version" => {
                stored.insert(k.clone(), v.clone());
            }
            "settings" => {
                let flat = flat_settings(v);
                stored.insert(
                    k.clone(),
                    Value::Object(flat.into_iter().map(|(k, v)| (k, json!(v))).collect()),
                );
            }
            "mappings" => {
                // From Elasticsearch 7 to OpenSearch 1.x, mappings nested under `_doc` are
                // refused unless the request says `include_type_name=true`
                // (`RestPutIndexTemplateAction#prepareRequestSource`).
                if engine.at_least_es(7, 0)
                    && !engine.at_least_os(2, 0)
                    && !include_type_name
                    && v.as_object().is_some_and(|m| {
                        m.len() == 1 && m.get("_doc").is_some_and(Value::is_object)
                    })
                {
                    return Err(parse_error(
                        400,
                        "illegal_argument_exception",
                        "The mapping definition cannot be nested under a type [_doc] unless \
                         include_type_name is set to true."
                            .into(),
                    ));
                }
                // Elasticsearch 6 keeps the type name; 7 and OpenSearch are typeless.
                let m = if engine.at_least_es(7, 0) {
                    typeless(v)
                } else {
                    v.clone()
                };
                stored.insert(k.clone(), m);
            }
            "aliases" => {
                stored.insert(k.clone(), v.clone());
            }
            other => {
                return Err(parse_error(
                    400,
                    "parse_exception",
                    format!("unknown key [{other}] in the template "),
                ));
            }
        }
    }
    let patterns = patterns_of(&Value::Object(stored.clone()));
    if patterns.is_empty() {
        return Err(parse_error(
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: index patterns are missing;".into(),
        ));
    }
    let t = &state.meta.templates;
    if create && t.legacy.contains_key(name) {
        return Err(parse_error(
            400,
            "illegal_argument_exception",
            format!("index_template [{name}] already exists"),
        ));
    }
    let errors = validate_names(name, &patterns);
    if !errors.is_empty() {
        return Err(invalid_template(name, &errors));
    }
    let v2: Vec<(String, Vec<String>)> = t
        .composable
        .iter()
        .filter(|(_, c)| overlap(&patterns, &patterns_of(c)))
        .map(|(n, c)| (n.clone(), patterns_of(c)))
        .collect();
    let warning = (!v2.is_empty()).then(|| {
        format!(
            "legacy template [{name}] has index patterns {} matching patterns from existing composable templates [{}] with patterns ({}); this template [{name}] may be ignored in favor of a composable template at index creation time",
            java_list(&patterns),
            v2.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>().join(","),
            v2.iter().map(|(n, p)| format!("{n} => {}", java_list(p))).collect::<Vec<_>>().join(",")
        )
    });
    state
        .meta
        .templates
        .legacy
        .insert(name.to_owned(), Value::Object(stored));
    Ok(warning)
}

/// The winning composable template for an index name (`findV2Template`): highest priority; a
/// hidden index is not matched by a match-all pattern.
pub fn find_v2(t: &Templates, index: &str, hidden: bool) -> Option<String> {
    t.composable
        .iter()
        .filter(|(_, c)| {
            let patterns = patterns_of(c);
            if hidden && patterns.iter().any(|p| p == "*") {
                return false;
            }
            patterns.iter().any(|p| super::indices::glob(p, index))
        })
        .max_by_key(|(n, c)| (priority_of(c), std::cmp::Reverse((*n).clone())))
        .map(|(n, _)| n.clone())
}

/// The legacy templates that match, highest `order` first (`findV1Templates`).
fn find_v1(t: &Templates, index: &str, hidden: bool) -> Vec<String> {
    let mut found: Vec<(&String, i64)> = t
        .legacy
        .iter()
        .filter(|(_, l)| {
            let patterns = patterns_of(l);
            if hidden && patterns.iter().any(|p| p == "*") {
                return false;
            }
            patterns.iter().any(|p| super::indices::glob(p, index))
        })
        .map(|(n, l)| (n, l["order"].as_i64().unwrap_or(0)))
        .collect();
    found.sort_by_key(|(_, o)| std::cmp::Reverse(*o));
    found.into_iter().map(|(n, _)| n.clone()).collect()
}

/// What the templates give a new index.
#[derive(Debug, Default)]
pub struct Resolved {
    pub settings: BTreeMap<String, String>,
    pub mappings: Value,
    /// Alias name → properties, first definition wins.
    pub aliases: Map<String, Value>,
    /// The composable template that matched, if any.
    pub v2: Option<String>,
    /// The timestamp field, when that template makes data streams.
    pub data_stream: Option<String>,
}

/// Resolves the templates for `index` (`hidden` when the request or the stream says so).
pub fn resolve(t: &Templates, index: &str, hidden: bool) -> Resolved {
    let mut out = Resolved {
        mappings: json!({}),
        ..Default::default()
    };
    if let Some(name) = find_v2(t, index, hidden) {
        let template = &t.composable[&name];
        let mut parts: Vec<&Value> = string_list(&template["composed_of"])
            .unwrap_or_default()
            .iter()
            .filter_map(|c| t.component.get(c).map(|ct| &ct["template"]))
            .collect();
        parts.push(&template["template"]);
        let data_stream = template.get("data_stream").map(|d| {
            d["timestamp_field"]["name"]
                .as_str()
                .unwrap_or("@timestamp")
                .to_owned()
        });
        for part in &parts {
            out.settings.extend(flat_of(part));
            if part["mappings"].is_object() {
                merge(&mut out.mappings, &part["mappings"]);
            }
        }
        // Aliases: the index template's own first, then the components in reverse order.
        for part in parts.iter().rev() {
            for (alias, props) in part["aliases"].as_object().into_iter().flatten() {
                out.aliases
                    .entry(alias.clone())
                    .or_insert_with(|| props.clone());
            }
        }
        out.v2 = Some(name);
        out.data_stream = data_stream;
        return out;
    }
    let names = find_v1(t, index, hidden);
    for name in names.iter().rev() {
        let l = &t.legacy[name];
        out.settings.extend(flat_of(l));
        if l["mappings"].is_object() {
            merge(&mut out.mappings, &typeless(&l["mappings"]));
        }
    }
    for name in &names {
        for (alias, props) in t.legacy[name]["aliases"].as_object().into_iter().flatten() {
            out.aliases
                .entry(alias.clone())
                .or_insert_with(|| props.clone());
        }
    }
    out
}

/// Why an index is being created: decides which template checks apply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cause {
    /// `PUT <index>`.
    Api,
    /// A write to a name that does not exist.
    AutoCreate,
    /// A data stream's backing index.
    BackingIndex,
    /// `_rollover` of a write alias.
    Rollover,
}

/// Creates an index as the server does: templates resolved, the request's settings, mappings and
/// aliases on top, `index.creation_date` from the sandbox clock, ISM templates consulted.
pub fn create_index(
    state: &mut DataState,
    engine: &Engine,
    now: i64,
    name: &str,
    request: &Value,
    cause: Cause,
    stream: Option<&str>,
) -> Result<(), Resp> {
    if let Some(existing) = state.indices.get(name) {
        return Err(os_error(
            400,
            "resource_already_exists_exception",
            &format!("index [{name}/{}] already exists", existing.uuid()),
        ));
    }
    if state.data_streams.contains_key(name) {
        return Err(os_error(
            400,
            "invalid_index_name_exception",
            &format!("Invalid index name [{name}], already exists as data stream"),
        ));
    }
    let requested = flat_settings(&request["settings"]);
    let hidden =
        cause == Cause::BackingIndex || requested.get("index.hidden").is_some_and(|v| v == "true");
    // A backing index takes the templates of its stream's name (`request.dataStreamName()`).
    let mut resolved = resolve(
        &state.meta.templates,
        stream.unwrap_or(name),
        hidden && stream.is_none(),
    );
    if let (Some(_), Some(field)) = (stream, &resolved.data_stream) {
        let mut mappings = json!({"properties": {field.clone(): {"type": "date"}}});
        merge(&mut mappings, &resolved.mappings);
        resolved.mappings = mappings;
    }
    if let (Some(template), Cause::Api | Cause::Rollover) = (&resolved.v2, cause)
        && resolved.data_stream.is_some()
    {
        return Err(os_error(
            400,
            "illegal_argument_exception",
            &format!(
                "cannot create index with name [{name}], because it matches with template [{template}] that creates data streams only, use create data stream api instead"
            ),
        ));
    }
    let mut settings = resolved.settings.clone();
    settings.extend(requested);
    if cause == Cause::BackingIndex {
        settings.insert("index.hidden".into(), "true".into());
    }
    let mut mappings = resolved.mappings.clone();
    if request["mappings"].is_object() {
        merge(&mut mappings, &typeless(&request["mappings"]));
    }
    let mut aliases: Map<String, Value> =
        request["aliases"].as_object().cloned().unwrap_or_default();
    for (alias, props) in resolved.aliases {
        aliases.entry(alias).or_insert(props);
    }
    for alias in aliases.keys() {
        if state.indices.contains_key(alias) || alias == name {
            return Err(os_error(
                400,
                "invalid_alias_name_exception",
                &format!(
                    "Invalid alias name [{alias}], an index or data stream exists with the same name as the alias"
                ),
            ));
        }
    }
    let nested = Value::Object(settings.into_iter().map(|(k, v)| (k, json!(v))).collect());
    let mut index = Index::new(name, engine, Some(&nested), Some(mappings));
    index
        .settings
        .insert("index.creation_date".into(), now.to_string());
    index.aliases = aliases.into_iter().collect();
    index.data_stream = stream.map(str::to_owned);
    state.indices.insert(name.to_owned(), index);
    super::ism::on_index_created(state, engine, name, now);
    Ok(())
}

/// A data stream created from its template (`PUT _data_stream/<name>` or the first write).
pub fn create_data_stream(
    state: &mut DataState,
    engine: &Engine,
    now: i64,
    name: &str,
) -> Result<(), Resp> {
    if state.data_streams.contains_key(name) {
        return Err(os_error(
            400,
            "resource_already_exists_exception",
            &format!("data_stream [{name}] already exists"),
        ));
    }
    if name.to_lowercase() != name {
        return Err(os_error(
            400,
            "illegal_argument_exception",
            &format!("data_stream [{name}] must be lowercase"),
        ));
    }
    if name.starts_with('.') {
        return Err(os_error(
            400,
            "illegal_argument_exception",
            &format!("data_stream [{name}] must not start with '.'"),
        ));
    }
    let field = lookup_stream_template(&state.meta.templates, name)?;
    let first = backing_index(name, 1);
    if state.indices.contains_key(&first) {
        return Err(os_error(
            400,
            "status_exception",
            &format!(
                "data stream could not be created because backing index [{first}] already exists"
            ),
        ));
    }
    create_index(
        state,
        engine,
        now,
        &first,
        &json!({}),
        Cause::BackingIndex,
        Some(name),
    )?;
    state.data_streams.insert(
        name.to_owned(),
        DataStream {
            name: name.to_owned(),
            timestamp_field: field,
            generation: 1,
            indices: vec![first],
        },
    );
    Ok(())
}

/// `lookupTemplateForDataStream`: the stream's template and its timestamp field.
fn lookup_stream_template(t: &Templates, stream: &str) -> Result<String, Resp> {
    let Some(name) = find_v2(t, stream, false) else {
        return Err(os_error(
            400,
            "illegal_argument_exception",
            &format!("no matching index template found for data stream [{stream}]"),
        ));
    };
    match t.composable[&name].get("data_stream") {
        Some(d) => Ok(d["timestamp_field"]["name"]
            .as_str()
            .unwrap_or("@timestamp")
            .to_owned()),
        None => Err(os_error(
            400,
            "illegal_argument_exception",
            &format!(
                "matching index template [{name}] for data stream [{stream}] has no data stream template"
            ),
        )),
    }
}

/// Rolls a data stream or a write alias over to a new write index; `Ok((old, new))`.
pub fn rollover(
    state: &mut DataState,
    engine: &Engine,
    now: i64,
    target: &str,
    request: &Value,
) -> Result<(String, String), Resp> {
    if let Some(ds) = state.data_streams.get(target).cloned() {
        if request["settings"].is_object()
            || request["mappings"].is_object()
            || request["aliases"].is_object()
        {
            return Err(os_error(
                400,
                "illegal_argument_exception",
                "aliases, mappings, and index settings may not be specified when rolling over a data stream",
            ));
        }
        lookup_stream_template(&state.meta.templates, target)?;
        let old = ds.indices.last().cloned().unwrap_or_default();
        let new = backing_index(target, ds.generation + 1);
        create_index(
            state,
            engine,
            now,
            &new,
            &json!({}),
            Cause::BackingIndex,
            Some(target),
        )?;
        if let Some(d) = state.data_streams.get_mut(target) {
            d.generation += 1;
            d.indices.push(new.clone());
        }
        state
            .meta
            .rollover_info
            .entry(old.clone())
            .or_default()
            .insert(target.to_owned(), now);
        return Ok((old, new));
    }
    let holders: Vec<String> = state
        .indices
        .iter()
        .filter(|(_, i)| i.aliases.contains_key(target))
        .map(|(n, _)| n.clone())
        .collect();
    if holders.is_empty() {
        let kind = if state.indices.contains_key(target) {
            Some("concrete index")
        } else {
            None
        };
        return Err(os_error(
            400,
            "illegal_argument_exception",
            &match kind {
                Some(k) => format!(
                    "rollover target is a [{k}] but one of [alias,data_stream] was expected"
                ),
                None => format!("rollover target [{target}] does not exist"),
            },
        ));
    }
    let Some(write) = super::aliases::write_index(state, target) else {
        return Err(os_error(
            400,
            "illegal_argument_exception",
            &format!("rollover target [{target}] does not point to a write index"),
        ));
    };
    let explicit = state.indices[&write].aliases[target]["is_write_index"] == json!(true);
    let provided = state.indices[&write]
        .settings
        .get("index.provided_name")
        .cloned()
        .unwrap_or_else(|| write.clone());
    let new = match request_name(request) {
        Some(n) => n,
        None => next_name(&provided)?,
    };
    let resolved = resolve(&state.meta.templates, &new, false);
    if resolved.aliases.contains_key(target) {
        let template = resolved.v2.clone().unwrap_or_default();
        return Err(os_error(
            400,
            "illegal_argument_exception",
            &format!(
                "Rollover alias [{target}] can point to multiple indices, found duplicated alias [[{target}]] in index template [{template}]"
            ),
        ));
    }
    create_index(state, engine, now, &new, request, Cause::Rollover, None)?;
    let props = if explicit {
        json!({"is_write_index": true})
    } else {
        json!({})
    };
    if let Some(i) = state.indices.get_mut(&new) {
        i.aliases.insert(target.to_owned(), props);
    }
    if let Some(i) = state.indices.get_mut(&write) {
        if explicit {
            i.aliases
                .insert(target.to_owned(), json!({"is_write_index": false}));
        } else {
            i.aliases.remove(target);
        }
    }
    state
        .meta
        .rollover_info
        .entry(write.clone())
        .or_default()
        .insert(target.to_owned(), now);
    Ok((write, new))
}

fn request_name(request: &Value) -> Option<String> {
    request["__new_index"].as_str().map(str::to_owned)
}

/// `generateRolloverIndexName`: `logs-000001` → `logs-000002`.
fn next_name(source: &str) -> Result<String, Resp> {
    let Some((stem, counter)) = source.rsplit_once('-') else {
        return Err(bad_rollover_name(source));
    };
    match counter.parse::<u64>() {
        Ok(n) if !counter.is_empty() && counter.chars().all(|c| c.is_ascii_digit()) => {
            Ok(format!("{stem}-{:06}", n + 1))
        }
        _ => Err(bad_rollover_name(source)),
    }
}

fn bad_rollover_name(source: &str) -> Resp {
    os_error(
        400,
        "illegal_argument_exception",
        &format!("index name [{source}] does not match pattern '^.*-\\d+$'"),
    )
}

/// Parses `1d`, `12h`, `30m`, `10s`, `500ms` into seconds (`TimeValue`).
pub fn parse_time(text: &str) -> Option<f64> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit() && c != '.')?);
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "nanos" => n / 1e9,
        "micros" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return None,
    };
    Some(secs)
}

/// Parses `5gb`, `100mb`, `1kb`, `10b` into bytes (`ByteSizeValue`).
pub fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim().to_lowercase();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit() && c != '.')?);
    let n: f64 = num.parse().ok()?;
    let mult = match unit {
        "b" => 1.0,
        "kb" | "k" => 1024.0,
        "mb" | "m" => 1024.0 * 1024.0,
        "gb" | "g" => 1024.0 * 1024.0 * 1024.0,
        "tb" | "t" => 1024f64.powi(4),
        "pb" | "p" => 1024f64.powi(5),
        _ => return None,
    };
    Some((n * mult) as u64)
}

// ---- REST handlers ----

fn template_json(stored: &Value, flat: bool) -> Value {
    let mut out = stored.clone();
    if let Some(t) = out.get_mut("template")
        && t.get("settings").is_some()
    {
        t["settings"] = settings_json(&flat_of(t), flat);
    }
    out
}

fn legacy_json(stored: &Value, flat: bool) -> Value {
    let mut out = stored.clone();
    out["settings"] = settings_json(&flat_of(stored), flat);
    if out.get("mappings").is_none() {
        out["mappings"] = json!({});
    }
    if out.get("aliases").is_none() {
        out["aliases"] = json!({});
    }
    out
}

/// `PUT|POST|GET|HEAD|DELETE _index_template[/<name>]`, `_component_template[...]`, `_template[...]`.
pub fn handle(data: &DomainData, operation: &str, req: &Req, path: &str) -> Resp {
    let engine = &data.engine;
    let name = req.segments.get(1).cloned().unwrap_or_default();
    let composable_op =
        operation.contains("IndexTemplate") || operation.contains("ComponentTemplate");
    if composable_op && !composable_supported(engine) {
        return no_handler(req.method.as_str(), path);
    }
    let flat = req.flag("flat_settings");
    let mut state = data.lock();
    let ok = || json_resp(200, &json!({"acknowledged": true}));
    match operation {
        "PutIndexTemplate" | "PutComponentTemplate" | "PutLegacyTemplate" => {
            let body = match req.json_body() {
                Ok(b) => b,
                Err(r) => return r,
            };
            let create = req.flag("create");
            let result = match operation {
                "PutIndexTemplate" => put_composable(&mut state, engine, &name, &body, create),
                "PutComponentTemplate" => {
                    put_component(&mut state, engine, &name, &body, create).map(|()| None)
                }
                _ => {
                    let order = req.query.get("order").and_then(|o| o.parse().ok());
                    let typed = req.flag("include_type_name");
                    put_legacy(&mut state, engine, &name, &body, create, order, typed)
                }
            };
            match result {
                Ok(Some(warning)) => {
                    let mut r = ok();
                    if let Ok(v) = http::HeaderValue::from_str(&format!(
                        "299 OpenSearch-{} \"{}\"",
                        engine.number(),
                        warning.replace('"', "\\\"")
                    )) {
                        r.headers_mut().insert("warning", v);
                    }
                    r
                }
                Ok(None) => ok(),
                Err(r) => r,
            }
        }
        "GetIndexTemplate" | "IndexTemplateExists" => {
            let t = &state.meta.templates.composable;
            let selected: Vec<&String> = if name.is_empty() {
                t.keys().collect()
            } else if name.contains('*') {
                t.keys()
                    .filter(|n| super::indices::glob(&name, n))
                    .collect()
            } else if t.contains_key(&name) {
                vec![t.get_key_value(&name).map(|(k, _)| k).expect("present")]
            } else {
                return os_error(
                    404,
                    "resource_not_found_exception",
                    &format!("index template matching [{name}] not found"),
                );
            };
            if operation == "IndexTemplateExists" && selected.is_empty() {
                return json_resp(404, &json!({}));
            }
            let list: Vec<Value> = selected
                .iter()
                .map(|n| json!({"name": n, "index_template": template_json(&t[*n], flat)}))
                .collect();
            json_resp(200, &json!({"index_templates": list}))
        }
        "GetComponentTemplate" | "ComponentTemplateExists" => {
            let t = &state.meta.templates.component;
            let selected: Vec<&String> = if name.is_empty() {
                t.keys().collect()
            } else if name.contains('*') {
                t.keys()
                    .filter(|n| super::indices::glob(&name, n))
                    .collect()
            } else if t.contains_key(&name) {
                vec![t.get_key_value(&name).map(|(k, _)| k).expect("present")]
            } else {
                return os_error(
                    404,
                    "resource_not_found_exception",
                    &format!("component template matching [{name}] not found"),
                );
            };
            if operation == "ComponentTemplateExists" && selected.is_empty() {
                return json_resp(404, &json!({}));
            }
            let list: Vec<Value> = selected
                .iter()
                .map(|n| json!({"name": n, "component_template": template_json(&t[*n], flat)}))
                .collect();
            json_resp(200, &json!({"component_templates": list}))
        }
        "GetLegacyTemplate" | "LegacyTemplateExists" => {
            let t = &state.meta.templates.legacy;
            let mut out = Map::new();
            for n in t.keys() {
                if name.is_empty() || super::meta::matches_any(&name, n) {
                    out.insert(n.clone(), legacy_json(&t[n], flat));
                }
            }
            if out.is_empty() && !name.is_empty() {
                return json_resp(404, &json!({}));
            }
            json_resp(200, &Value::Object(out))
        }
        "DeleteIndexTemplate" => {
            let matched: Vec<String> = state
                .meta
                .templates
                .composable
                .keys()
                .filter(|n| super::indices::glob(&name, n))
                .cloned()
                .collect();
            if matched.is_empty() {
                if name == "*" {
                    return ok();
                }
                return os_error(
                    404,
                    "index_template_missing_exception",
                    &format!("index_template [{name}] missing"),
                );
            }
            let mut using: Vec<String> = Vec::new();
            for m in &matched {
                for p in patterns_of(&state.meta.templates.composable[m]) {
                    using.extend(
                        state
                            .data_streams
                            .keys()
                            .filter(|ds| super::indices::glob(&p, ds))
                            .cloned(),
                    );
                }
            }
            using.sort();
            using.dedup();
            if !using.is_empty() {
                return os_error(
                    400,
                    "illegal_argument_exception",
                    &format!(
                        "unable to remove composable templates {} as they are in use by a data streams {}",
                        java_list(&matched),
                        java_list(&using)
                    ),
                );
            }
            for m in matched {
                state.meta.templates.composable.remove(&m);
            }
            ok()
        }
        "DeleteComponentTemplate" => {
            let t = &state.meta.templates;
            let matched: Vec<String> = t
                .component
                .keys()
                .filter(|n| super::indices::glob(&name, n))
                .cloned()
                .collect();
            let users: Vec<String> = t
                .composable
                .iter()
                .filter(|(_, c)| {
                    string_list(&c["composed_of"])
                        .unwrap_or_default()
                        .iter()
                        .any(|x| matched.contains(x))
                })
                .map(|(n, _)| n.clone())
                .collect();
            if !users.is_empty() {
                let used: Vec<String> = matched
                    .iter()
                    .filter(|m| {
                        users.iter().any(|u| {
                            string_list(&t.composable[u]["composed_of"])
                                .unwrap_or_default()
                                .contains(m)
                        })
                    })
                    .cloned()
                    .collect();
                return os_error(
                    400,
                    "illegal_argument_exception",
                    &format!(
                        "component templates {} cannot be removed as they are still in use by index templates {}",
                        java_list(&used),
                        java_list(&users)
                    ),
                );
            }
            if matched.is_empty() {
                if name == "*" {
                    return ok();
                }
                return os_error(
                    404,
                    "index_template_missing_exception",
                    &format!("index_template [{name}] missing"),
                );
            }
            for m in matched {
                state.meta.templates.component.remove(&m);
            }
            ok()
        }
        "DeleteLegacyTemplate" => {
            let matched: Vec<String> = state
                .meta
                .templates
                .legacy
                .keys()
                .filter(|n| super::indices::glob(&name, n))
                .cloned()
                .collect();
            if matched.is_empty() {
                return os_error(
                    404,
                    "index_template_missing_exception",
                    &format!("index_template [{name}] missing"),
                );
            }
            for m in matched {
                state.meta.templates.legacy.remove(&m);
            }
            ok()
        }
        _ => os_error(
            400,
            "illegal_argument_exception",
            &format!("unsupported template operation {operation}"),
        ),
    }
}

/// `PUT _data_stream/<name>` and `DELETE _data_stream/<name>`.
pub fn data_stream(
    data: &DomainData,
    now: i64,
    method: &http::Method,
    name: &str,
    path: &str,
) -> Resp {
    if !data.engine.is_opensearch() {
        return no_handler(method.as_str(), path);
    }
    let mut state = data.lock();
    if *method == http::Method::PUT {
        return match create_data_stream(&mut state, &data.engine, now, name) {
            Ok(()) => json_resp(200, &json!({"acknowledged": true})),
            Err(r) => r,
        };
    }
    let matched: Vec<String> = state
        .data_streams
        .keys()
        .filter(|d| super::meta::matches_any(name, d))
        .cloned()
        .collect();
    if matched.is_empty() {
        if name.contains('*') {
            return json_resp(200, &json!({"acknowledged": true}));
        }
        return os_error(
            404,
            "resource_not_found_exception",
            &format!("data_streams matching [{name}] not found"),
        );
    }
    for d in matched {
        if let Some(ds) = state.data_streams.remove(&d) {
            for i in ds.indices {
                state.indices.remove(&i);
                state.meta.ism.forget(&i);
            }
        }
    }
    json_resp(200, &json!({"acknowledged": true}))
}

/// `POST <target>/_rollover[/<new_index>]`, with optional `conditions`.
pub fn rollover_api(data: &DomainData, now: i64, req: &Req) -> Resp {
    let target = req.segments.first().cloned().unwrap_or_default();
    let mut body = match req.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let dry_run = req.flag("dry_run");
    let mut state = data.lock();
    if let Some(new) = req.segments.get(2) {
        if state.data_streams.contains_key(&target) {
            return os_error(
                400,
                "illegal_argument_exception",
                "new index name may not be specified when rolling over a data stream",
            );
        }
        body["__new_index"] = json!(new);
    }
    let current = match state.data_streams.get(&target) {
        Some(d) => d.indices.last().cloned(),
        None => super::aliases::write_index(&state, &target),
    };
    let mut results = Map::new();
    let mut met_any = true;
    if let (Some(conditions), Some(current)) = (body["conditions"].as_object(), &current) {
        met_any = false;
        let index = &state.indices[current];
        let age = (now - index.creation_millis()) as f64 / 1000.0;
        for (k, v) in conditions {
            let (label, met) = match k.as_str() {
                "max_docs" => (
                    format!("[max_docs: {v}]"),
                    index.docs.len() as u64 >= v.as_u64().unwrap_or(u64::MAX),
                ),
                "max_age" => {
                    let s = v.as_str().unwrap_or("");
                    (
                        format!("[max_age: {s}]"),
                        parse_time(s).is_some_and(|t| age >= t),
                    )
                }
                "max_size" => {
                    let s = v.as_str().unwrap_or("");
                    (
                        format!("[max_size: {s}]"),
                        parse_bytes(s).is_some_and(|b| index.size_in_bytes() >= b),
                    )
                }
                other => {
                    return os_error(
                        400,
                        "x_content_parse_exception",
                        &format!("[1:2] [conditions] unknown field [{other}]"),
                    );
                }
            };
            met_any |= met;
            results.insert(label, json!(met));
        }
    }
    if let Some(o) = body.as_object_mut() {
        o.remove("conditions");
    }
    let old = current.clone().unwrap_or_default();
    if !met_any || dry_run {
        let new = match state.data_streams.get(&target) {
            Some(d) => backing_index(&target, d.generation + 1),
            None => body["__new_index"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| next_name(&old).ok())
                .unwrap_or_default(),
        };
        return json_resp(
            200,
            &json!({"acknowledged": false, "shards_acknowledged": false, "old_index": old, "new_index": new,
                "rolled_over": false, "dry_run": dry_run, "conditions": results}),
        );
    }
    match rollover(&mut state, &data.engine, now, &target, &body) {
        Ok((old, new)) => json_resp(
            200,
            &json!({"acknowledged": true, "shards_acknowledged": true, "old_index": old, "new_index": new,
                "rolled_over": true, "dry_run": false, "conditions": results}),
        ),
        Err(r) => r,
    }
}

/// The composable template a data stream matches now (`GET _data_stream`'s `template`).
pub fn stream_template(state: &DataState, stream: &str) -> Option<String> {
    find_v2(&state.meta.templates, stream, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollover_names_count_up_with_six_digits() {
        assert_eq!(next_name("logs-000001").unwrap(), "logs-000002");
        assert_eq!(next_name("logs-9").unwrap(), "logs-000010");
        assert!(next_name("logs").is_err());
        assert!(next_name("logs-x").is_err());
    }

    #[test]
    fn time_and_size_values_parse_like_the_server() {
        assert_eq!(parse_time("1d"), Some(86400.0));
        assert_eq!(parse_time("30m"), Some(1800.0));
        assert_eq!(parse_bytes("1kb"), Some(1024));
        assert_eq!(parse_time("x"), None);
    }

    #[test]
    fn patterns_overlap_by_wildcard() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(overlap(&v(&["logs-*"]), &v(&["logs-app-*"])));
        assert!(overlap(&v(&["logs-*"]), &v(&["logs-1"])));
        assert!(!overlap(&v(&["logs-*"]), &v(&["metrics-*"])));
    }
}
