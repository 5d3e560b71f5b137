//! The query DSL a sandbox search runs: `match_all`, `match_none`, `term`, `terms`, `match`,
//! `match_phrase`, `range`, `exists`, `ids`, `prefix`, `wildcard` and `bool`, over a document's
//! source. Text is matched as the standard analyzer would (lowercased words) unless the field is
//! a `keyword` in the mappings, or a `.keyword` subfield of a dynamic string. Anything else is
//! refused with a message saying the sandbox does not run it, rather than answering wrongly.

use serde_json::Value;

use crate::http::{Resp, os_error};

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Whether `field` is `keyword` (exact) in `mappings`; dynamic strings are `text` with a
/// `.keyword` subfield.
fn is_keyword(mappings: &Value, field: &str) -> bool {
    let mut node = &mappings["properties"];
    let parts: Vec<&str> = field.split('.').collect();
    for (n, p) in parts.iter().enumerate() {
        let f = &node[*p];
        if f.is_null() {
            return *p == "keyword" && n == parts.len() - 1;
        }
        if n == parts.len() - 1 {
            return f["type"] == "keyword";
        }
        node = if f["fields"].is_object() && f["fields"][parts[n + 1]].is_object() {
            return f["fields"][parts[n + 1]]["type"] == "keyword";
        } else {
            &f["properties"]
        };
    }
    false
}

/// The values of `field` in `doc` (a `.keyword` suffix of a dynamic string reads the string).
fn values(doc: &Value, field: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let path = field
        .strip_suffix(".keyword")
        .filter(|p| lookup(doc, field).is_none() && lookup(doc, p).is_some())
        .unwrap_or(field);
    match lookup(doc, path) {
        Some(Value::Array(a)) => out.extend(a.iter().cloned()),
        Some(v) => out.push(v.clone()),
        None => {}
    }
    out
}

fn lookup<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = doc.get(path) {
        return Some(v);
    }
    let mut node = doc;
    for p in path.split('.') {
        node = node.get(p)?;
    }
    Some(node)
}

fn as_text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

fn field_and_value(q: &Value, key: &str) -> Result<(String, Value), Resp> {
    let Some((field, spec)) = q.as_object().and_then(|o| o.iter().next()) else {
        return Err(os_error(
            400,
            "parsing_exception",
            &format!("[{key}] query malformed, no start_object after query name"),
        ));
    };
    let value = match spec {
        Value::Object(o) => o
            .get("value")
            .or_else(|| o.get("query"))
            .cloned()
            .unwrap_or(Value::Null),
        v => v.clone(),
    };
    Ok((field.clone(), value))
}

fn cmp(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.partial_cmp(&y),
        _ => Some(as_text(a).cmp(&as_text(b))),
    }
}

/// Checks a query before running it: the same walk with no document.
pub fn check(query: &Value) -> Result<(), Resp> {
    matches(query, &Value::Null, "", &Value::Null).map(|_| ())
}

/// Whether `doc` (with id `id`, in an index with `mappings`) matches `query`.
pub fn matches(query: &Value, doc: &Value, id: &str, mappings: &Value) -> Result<bool, Resp> {
    let Some((kind, q)) = query.as_object().and_then(|o| o.iter().next()) else {
        return Err(os_error(
            400,
            "parsing_exception",
            "query malformed, empty clause found",
        ));
    };
    Ok(match kind.as_str() {
        "match_all" => true,
        "match_none" => false,
        "term" => {
            let (field, want) = field_and_value(q, kind)?;
            let keyword =
                is_keyword(mappings, &field) || field.ends_with(".keyword") || !want.is_string();
            values(doc, &field).iter().any(|v| {
                if keyword {
                    as_text(v) == as_text(&want)
                } else {
                    words(&as_text(v)).contains(&as_text(&want))
                }
            })
        }
        "terms" => {
            let Some((field, list)) = q
                .as_object()
                .and_then(|o| o.iter().find(|(k, _)| *k != "boost"))
            else {
                return Err(os_error(
                    400,
                    "parsing_exception",
                    "[terms] query malformed",
                ));
            };
            let wanted: Vec<String> = list.as_array().into_iter().flatten().map(as_text).collect();
            let keyword = is_keyword(mappings, field) || field.ends_with(".keyword");
            values(doc, field).iter().any(|v| {
                if keyword {
                    wanted.contains(&as_text(v))
                } else {
                    words(&as_text(v)).iter().any(|w| wanted.contains(w))
                }
            })
        }
        "match" | "match_phrase" => {
            let (field, want) = field_and_value(q, kind)?;
            let wanted = words(&as_text(&want));
            let and = q
                .as_object()
                .and_then(|o| o.values().next())
                .is_some_and(|s| {
                    s["operator"]
                        .as_str()
                        .is_some_and(|o| o.eq_ignore_ascii_case("and"))
                });
            values(doc, &field).iter().any(|v| {
                let have = words(&as_text(v));
                if is_keyword(mappings, &field) || field.ends_with(".keyword") {
                    as_text(v) == as_text(&want)
                } else if kind == "match_phrase" {
                    have.windows(wanted.len().max(1))
                        .any(|w| w == wanted.as_slice())
                } else if and {
                    wanted.iter().all(|w| have.contains(w))
                } else {
                    wanted.iter().any(|w| have.contains(w))
                }
            })
        }
        "prefix" | "wildcard" => {
            let (field, want) = field_and_value(q, kind)?;
            let pattern = if kind == "prefix" {
                format!("{}*", as_text(&want))
            } else {
                as_text(&want)
            };
            values(doc, &field)
                .iter()
                .any(|v| super::indices::glob(&pattern, &as_text(v)))
        }
        "exists" => {
            let field = q["field"].as_str().unwrap_or("");
            values(doc, field).iter().any(|v| !v.is_null())
        }
        "ids" => q["values"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|v| v.as_str() == Some(id)),
        "range" => {
            let Some((field, bounds)) = q.as_object().and_then(|o| o.iter().next()) else {
                return Err(os_error(
                    400,
                    "parsing_exception",
                    "[range] query malformed",
                ));
            };
            values(doc, field).iter().any(|v| {
                bounds.as_object().into_iter().flatten().all(|(op, b)| {
                    match (op.as_str(), cmp(v, b)) {
                        ("gt", Some(o)) => o.is_gt(),
                        ("gte", Some(o)) => o.is_ge(),
                        ("lt", Some(o)) => o.is_lt(),
                        ("lte", Some(o)) => o.is_le(),
                        _ => true,
                    }
                })
            })
        }
        "bool" => {
            let clause = |k: &str| -> Vec<Value> {
                match &q[k] {
                    Value::Array(a) => a.clone(),
                    Value::Null => Vec::new(),
                    v => vec![v.clone()],
                }
            };
            let mut ok = true;
            for c in clause("must").iter().chain(clause("filter").iter()) {
                ok &= matches(c, doc, id, mappings)?;
            }
            for c in clause("must_not") {
                ok &= !matches(&c, doc, id, mappings)?;
            }
            let should = clause("should");
            if !should.is_empty() {
                let needed = q["minimum_should_match"].as_u64().unwrap_or(
                    if clause("must").is_empty() && clause("filter").is_empty() {
                        1
                    } else {
                        0
                    },
                );
                let mut hits = 0;
                for c in &should {
                    if matches(c, doc, id, mappings)? {
                        hits += 1;
                    }
                }
                ok &= hits >= needed;
            }
            ok
        }
        other => {
            return Err(os_error(
                400,
                "parsing_exception",
                &format!("the snapferry sandbox does not run [{other}] queries"),
            ));
        }
    })
}
