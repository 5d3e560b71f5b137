//! Aliases: `POST _aliases` (its `add`, `remove` and `remove_index` actions applied all or none,
//! every `remove_index` first as OpenSearch does),
//! `GET _alias`, `GET [<index>/]_alias/<name>`, `HEAD _alias/<name>`, `PUT|DELETE
//! <index>/_alias/<name>`; searches and counts through an alias (its `filter` applied); writes
//! through an alias to its write index (`is_write_index`, or the one index it points to). The
//! properties of an alias on an index are kept as the server prints them (`is_write_index`,
//! `filter`, `index_routing`, `search_routing`, `is_hidden`).

use serde_json::{Map, Value, json};

use super::indices::{glob, index_not_found};
use super::{DataState, DomainData, Req};
use crate::http::{Resp, json as json_resp, os_error};

/// The index a write through `alias` lands in (`IndexAbstraction.Alias#getWriteIndex`).
pub fn write_index(state: &DataState, alias: &str) -> Option<String> {
    let holders: Vec<(&String, &Value)> = state
        .indices
        .iter()
        .filter_map(|(n, i)| i.aliases.get(alias).map(|p| (n, p)))
        .collect();
    if let Some((n, _)) = holders
        .iter()
        .find(|(_, p)| p["is_write_index"] == json!(true))
    {
        return Some((*n).clone());
    }
    match holders.as_slice() {
        [(n, p)] if p["is_write_index"] != json!(false) => Some((*n).clone()),
        _ => None,
    }
}

/// Whether `name` is an alias of some index.
pub fn is_alias(state: &DataState, name: &str) -> bool {
    state.indices.values().any(|i| i.aliases.contains_key(name))
}

/// An index expression with each alias (or alias wildcard) replaced by its indices, and per index
/// the alias filters that then apply (an index reached also directly, or through an unfiltered
/// alias, has none).
pub fn expand(
    state: &DataState,
    expr: &str,
) -> (String, std::collections::BTreeMap<String, Vec<Value>>) {
    let mut parts = Vec::new();
    let mut filters: std::collections::BTreeMap<String, Option<Vec<Value>>> = Default::default();
    let all_aliases: std::collections::BTreeSet<&String> = state
        .indices
        .values()
        .flat_map(|i| i.aliases.keys())
        .collect();
    for part in expr.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let matched: Vec<&&String> = all_aliases
            .iter()
            .filter(|a| {
                !part.starts_with('-') && glob(part, a) && !state.indices.contains_key(part)
            })
            .collect();
        if matched.is_empty() {
            parts.push(part.to_owned());
            if !part.contains('*') {
                filters.insert(part.to_owned(), None);
            }
            continue;
        }
        if part.contains('*') {
            parts.push(part.to_owned());
        }
        for alias in matched {
            for (n, i) in &state.indices {
                if let Some(p) = i.aliases.get(alias.as_str()) {
                    parts.push(n.clone());
                    let entry = filters.entry(n.clone()).or_insert_with(|| Some(Vec::new()));
                    match (entry, p.get("filter")) {
                        (Some(list), Some(f)) => list.push(f.clone()),
                        (e, _) => *e = None,
                    }
                }
            }
        }
    }
    let filters = filters
        .into_iter()
        .filter_map(|(k, v)| v.filter(|l| !l.is_empty()).map(|l| (k, l)))
        .collect();
    (parts.join(","), filters)
}

fn aliases_missing(names: &[String]) -> Resp {
    let reason = if names.len() == 1 {
        format!("aliases [{}] missing", names[0])
    } else {
        format!("aliases [{}] missing", names.join(","))
    };
    let cause = json!({"type": "aliases_not_found_exception", "reason": reason, "resource.type": "aliases", "resource.id": names.join(",")});
    json_resp(
        404,
        &json!({"error": {"root_cause": [cause.clone()], "type": "aliases_not_found_exception", "reason": reason, "resource.type": "aliases", "resource.id": names.join(",")}, "status": 404}),
    )
}

fn list_of(spec: &Value, one: &str, many: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(s) = spec[one].as_str() {
        out.push(s.to_owned());
    }
    match &spec[many] {
        Value::Array(a) => out.extend(a.iter().filter_map(|x| x.as_str().map(str::to_owned))),
        Value::String(s) => out.push(s.clone()),
        _ => {}
    }
    out
}

fn validation(errors: &[&str]) -> Resp {
    let mut m = "Validation Failed: ".to_owned();
    for (n, e) in errors.iter().enumerate() {
        m.push_str(&format!("{}: {e};", n + 1));
    }
    os_error(400, "action_request_validation_exception", &m)
}

/// The properties an `add` action gives the alias on each index.
fn props_of(spec: &Value) -> Value {
    let mut p = Map::new();
    for k in [
        "filter",
        "is_write_index",
        "is_hidden",
        "index_routing",
        "search_routing",
    ] {
        if let Some(v) = spec.get(k).filter(|v| !v.is_null()) {
            p.insert(k.to_owned(), v.clone());
        }
    }
    if let Some(r) = spec["routing"].as_str() {
        p.entry("index_routing").or_insert(json!(r));
        p.entry("search_routing").or_insert(json!(r));
    }
    Value::Object(p)
}

/// Applies alias actions to a copy of every index's alias map (never the indices themselves:
/// their documents are not touched, and 1,000 indices cost 1,000 small maps) and commits only
/// if every action succeeds.
pub fn apply_actions(state: &mut DataState, actions: &[Value]) -> Result<(), Resp> {
    let mut indices: std::collections::BTreeMap<String, AliasMap> = state
        .indices
        .iter()
        .map(|(n, i)| {
            (
                n.clone(),
                AliasMap {
                    aliases: i.aliases.clone(),
                },
            )
        })
        .collect();
    let names: Vec<String> = indices.keys().cloned().collect();
    // OpenSearch deletes the indices of every `remove_index` action before it runs any other
    // action, whatever their order in the request (`MetadataIndexAliasesService`): an alias may
    // then take a removed index's name, and an action on a removed index is refused.
    let removes_index = |a: &&Value| {
        a.as_object()
            .and_then(|o| o.keys().next())
            .is_some_and(|k| k == "remove_index")
    };
    let ordered = actions
        .iter()
        .filter(removes_index)
        .chain(actions.iter().filter(|a| !removes_index(a)));
    for action in ordered {
        let Some((kind, spec)) = action.as_object().and_then(|o| o.iter().next()) else {
            return Err(os_error(
                400,
                "parse_exception",
                "[aliases] failed to parse field [actions]",
            ));
        };
        let targets = list_of(spec, "index", "indices");
        let aliases = list_of(spec, "alias", "aliases");
        if targets.is_empty() {
            return Err(validation(&["index is missing"]));
        }
        let mut resolved = Vec::new();
        for t in &targets {
            if let Some(ds) = state.data_streams.get(t) {
                resolved.extend(ds.indices.iter().cloned());
                continue;
            }
            if t.contains('*') {
                resolved.extend(names.iter().filter(|n| glob(t, n)).cloned());
            } else if names.contains(t) {
                resolved.push(t.clone());
            } else {
                return Err(index_not_found(t));
            }
        }
        if kind != "remove_index"
            && let Some(gone) = resolved.iter().find(|n| !indices.contains_key(*n))
        {
            return Err(index_not_found(gone));
        }
        match kind.as_str() {
            "add" => {
                if aliases.is_empty() {
                    return Err(validation(&["alias is missing"]));
                }
                for alias in &aliases {
                    if indices.contains_key(alias) {
                        return Err(os_error(
                            400,
                            "invalid_alias_name_exception",
                            &format!(
                                "Invalid alias name [{alias}], an index or data stream exists with the same name as the alias"
                            ),
                        ));
                    }
                    for n in &resolved {
                        if let Some(i) = indices.get_mut(n) {
                            i.aliases.insert(alias.clone(), props_of(spec));
                        }
                    }
                }
            }
            "remove" => {
                if aliases.is_empty() {
                    return Err(validation(&["alias is missing"]));
                }
                let mut any = false;
                for alias in &aliases {
                    for n in &resolved {
                        if let Some(i) = indices.get_mut(n) {
                            let before = i.aliases.len();
                            i.aliases.retain(|a, _| !glob(alias, a));
                            any |= i.aliases.len() != before;
                        }
                    }
                }
                if !any && spec["must_exist"] != json!(false) {
                    return Err(aliases_missing(&aliases));
                }
            }
            "remove_index" => {
                for n in &resolved {
                    if state.data_streams.values().any(|d| d.indices.contains(n)) {
                        return Err(os_error(
                            400,
                            "illegal_argument_exception",
                            &format!(
                                "index [{n}] is the write index for data stream and cannot be deleted"
                            ),
                        ));
                    }
                    indices.remove(n);
                }
            }
            other => {
                return Err(os_error(
                    400,
                    "x_content_parse_exception",
                    &format!("[1:13] [alias_action] unknown field [{other}]"),
                ));
            }
        }
    }
    // No alias may end up with two write indices (`Metadata.Builder#validateAlias`).
    let mut writers: std::collections::BTreeMap<&String, Vec<&String>> = Default::default();
    for (n, i) in &indices {
        for (a, p) in &i.aliases {
            if p["is_write_index"] == json!(true) {
                writers.entry(a).or_default().push(n);
            }
        }
    }
    if let Some((a, list)) = writers.iter().find(|(_, l)| l.len() > 1) {
        return Err(os_error(
            500,
            "illegal_state_exception",
            &format!(
                "alias [{a}] has more than one write index [{}]",
                list.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ));
    }
    let removed: Vec<String> = state
        .indices
        .keys()
        .filter(|n| !indices.contains_key(*n))
        .cloned()
        .collect();
    for n in removed {
        state.indices.remove(&n);
        state.recoveries.remove(&n);
        state.meta.ism.forget(&n);
    }
    for (n, map) in indices {
        if let Some(i) = state.indices.get_mut(&n) {
            i.aliases = map.aliases;
        }
    }
    Ok(())
}

/// The part of an index `_aliases` changes.
struct AliasMap {
    aliases: std::collections::BTreeMap<String, Value>,
}

/// `POST _aliases`.
pub fn update(data: &DomainData, req: &Req) -> Resp {
    let body = match req.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(actions) = body["actions"].as_array() else {
        return validation(&["no actions specified"]);
    };
    let mut state = data.lock();
    match apply_actions(&mut state, actions) {
        Ok(()) => json_resp(200, &json!({"acknowledged": true})),
        Err(r) => r,
    }
}

/// `PUT|POST <index>/_alias[es]/<name>` and `DELETE <index>/_alias[es]/<name>`.
pub fn put_or_delete(data: &DomainData, req: &Req, delete: bool) -> Resp {
    let index = req.segments.first().cloned().unwrap_or_default();
    let name = req.segments.get(2).cloned().unwrap_or_default();
    let body = match req.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut spec = body.clone();
    spec["index"] = json!(index);
    spec["alias"] = json!(name);
    let action = if delete {
        json!({"remove": {"index": index, "alias": name}})
    } else {
        json!({"add": spec})
    };
    let mut state = data.lock();
    match apply_actions(&mut state, &[action]) {
        Ok(()) => json_resp(200, &json!({"acknowledged": true})),
        Err(r) => r,
    }
}

/// `GET _alias`, `GET _alias/<name>`, `GET <index>/_alias[/<name>]` and their `HEAD`.
pub fn get(data: &DomainData, req: &Req) -> Resp {
    let state = data.lock();
    let (index_expr, alias_expr) = match req.segments.first().map(String::as_str) {
        Some("_alias") | Some("_aliases") => (None, req.segments.get(1).cloned()),
        Some(index) => (Some(index.to_owned()), req.segments.get(2).cloned()),
        None => (None, None),
    };
    let names: Vec<String> = state.indices.keys().cloned().collect();
    let indices: Vec<String> = match &index_expr {
        Some(expr) => {
            let (expanded, _) = state.expand_streams(expr);
            match super::indices::resolve(&names, &expanded) {
                Ok(v) => v,
                Err(m) => return index_not_found(&m),
            }
        }
        None => names.clone(),
    };
    let wanted: Option<Vec<String>> = alias_expr
        .as_ref()
        .filter(|a| *a != "_all" && *a != "*")
        .map(|a| a.split(',').map(str::to_owned).collect());
    let mut out = Map::new();
    let mut found_names = std::collections::BTreeSet::new();
    for n in &indices {
        let i = &state.indices[n];
        let mut aliases = Map::new();
        for (a, p) in &i.aliases {
            if wanted.as_ref().is_none_or(|w| w.iter().any(|x| glob(x, a))) {
                found_names.insert(a.clone());
                aliases.insert(a.clone(), p.clone());
            }
        }
        if wanted.is_none() || !aliases.is_empty() {
            out.insert(n.clone(), json!({"aliases": aliases}));
        }
    }
    if let Some(w) = &wanted {
        let missing: Vec<&String> = w
            .iter()
            .filter(|x| !x.contains('*') && !found_names.contains(*x))
            .collect();
        if !missing.is_empty() {
            let text = missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(",");
            let mut body = Map::new();
            body.insert(
                "error".into(),
                json!(if missing.len() == 1 {
                    format!("alias [{text}] missing")
                } else {
                    format!("aliases [{text}] missing")
                }),
            );
            body.insert("status".into(), json!(404));
            body.extend(out);
            return json_resp(404, &Value::Object(body));
        }
    }
    json_resp(200, &Value::Object(out))
}
