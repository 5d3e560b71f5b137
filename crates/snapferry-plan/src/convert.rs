//! From the YAML tree to JSON values, guided by the plan's JSON Schema (the one editors use,
//! derived from [`crate::RawPlan`]).
//!
//! Two things need the schema while walking the tree. A plain scalar such as `1234`, `true` or
//! `on` is typed the way YAML 1.2's core schema reads it, unless the key wants a string: then
//! it stays the text written, so `tags: { cost-center: 1234 }` and `name: 2024` mean what they
//! say (as they did with serde_yaml). And a key the schema does not allow is an unknown key:
//! it is collected with the keys allowed beside it and left out of the value, so the rest of
//! the plan is still checked.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Number, Value as Json};

use crate::document::{Node, Value};
use crate::error::{Finding, Located};

/// The plan as JSON, and the keys the schema does not allow.
pub struct Converted {
    pub json: Json,
    pub unknown: Vec<Located>,
}

/// Converts `root` with the schema `schema`.
pub fn convert(schema: &Json, root: &Node) -> Converted {
    let mut walk = Walk {
        root: schema,
        allowed: HashMap::new(),
        unknown: Vec::new(),
    };
    let json = walk.node(Some(schema), root, "");
    Converted {
        json,
        unknown: walk.unknown,
    }
}

struct Walk<'s> {
    root: &'s Json,
    /// The allowed keys of each strict mapping schema met, by address, built once.
    allowed: HashMap<*const Json, Arc<[String]>>,
    unknown: Vec<Located>,
}

/// JSON types a schema accepts.
#[derive(Debug, Default, Clone, Copy)]
struct Accepts {
    any: bool,
    string: bool,
    integer: bool,
    number: bool,
    boolean: bool,
}

impl<'s> Walk<'s> {
    /// `schema` is `None` where the plan is free-form (repository settings, access policy).
    fn node(&mut self, schema: Option<&'s Json>, node: &Node, path: &str) -> Json {
        match &node.value {
            Value::Scalar { text, plain } => {
                let accepts = schema.map_or(
                    Accepts {
                        any: true,
                        ..Accepts::default()
                    },
                    |s| accepts(self.root, s),
                );
                scalar(text, *plain, accepts)
            }
            Value::Seq(items) => {
                let item_schema = schema.and_then(|s| self.items(s));
                Json::Array(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| self.node(item_schema, item, &format!("{path}[{i}]")))
                        .collect(),
                )
            }
            Value::Map(entries) => {
                let object = schema.and_then(|s| self.object(s));
                let mut map = Map::new();
                for entry in entries.iter() {
                    let child_path = if path.is_empty() {
                        entry.key.clone()
                    } else {
                        format!("{path}.{}", entry.key)
                    };
                    let child = match object {
                        None => None,
                        Some(object) => match object
                            .get("properties")
                            .and_then(|p| p.get(entry.key.as_str()))
                        {
                            Some(child) => Some(child),
                            None => match object.get("additionalProperties") {
                                Some(Json::Bool(false)) => {
                                    let allowed = self.allowed_in(object);
                                    self.unknown.push(Located {
                                        finding: Finding::UnknownKey {
                                            key: entry.key.clone(),
                                            parent: path.to_owned(),
                                            allowed,
                                        },
                                        path: child_path,
                                        span: entry.key_span,
                                        at_key: true,
                                    });
                                    continue;
                                }
                                Some(extra @ Json::Object(_)) => Some(extra),
                                _ => None,
                            },
                        },
                    };
                    let value = self.node(child, &entry.value, &child_path);
                    map.insert(entry.key.clone(), value);
                }
                Json::Object(map)
            }
        }
    }

    fn allowed_in(&mut self, object: &'s Json) -> Arc<[String]> {
        Arc::clone(
            self.allowed
                .entry(object as *const Json)
                .or_insert_with(|| {
                    let mut keys: Vec<String> = object
                        .get("properties")
                        .and_then(Json::as_object)
                        .map(|p| p.keys().cloned().collect())
                        .unwrap_or_default();
                    keys.sort();
                    keys.into()
                }),
        )
    }

    /// The alternative of `schema` that describes a mapping, if any.
    fn object(&self, schema: &'s Json) -> Option<&'s Json> {
        alternatives(self.root, schema)
            .into_iter()
            .find(|s| s.get("properties").is_some() || has_type(s, "object"))
    }

    /// The schema of the items of the alternative of `schema` that describes a list.
    fn items(&self, schema: &'s Json) -> Option<&'s Json> {
        alternatives(self.root, schema)
            .into_iter()
            .find_map(|s| s.get("items"))
    }
}

/// The alternatives of a schema: `$ref` followed, `anyOf`/`oneOf`/`allOf` flattened.
pub(crate) fn alternatives<'s>(root: &'s Json, schema: &'s Json) -> Vec<&'s Json> {
    let mut out = Vec::new();
    let mut todo = vec![(schema, 0)];
    while let Some((s, depth)) = todo.pop() {
        if depth > 16 {
            continue;
        }
        if let Some(target) = s
            .get("$ref")
            .and_then(Json::as_str)
            .and_then(|r| r.strip_prefix("#/$defs/"))
            .and_then(|name| root.get("$defs")?.get(name))
        {
            todo.push((target, depth + 1));
            continue;
        }
        let mut split = false;
        for combinator in ["anyOf", "oneOf", "allOf"] {
            if let Some(list) = s.get(combinator).and_then(Json::as_array) {
                split = true;
                todo.extend(list.iter().rev().map(|o| (o, depth + 1)));
            }
        }
        if !split || s.get("type").is_some() || s.get("properties").is_some() {
            out.push(s);
        }
    }
    out
}

pub(crate) fn has_type(schema: &Json, name: &str) -> bool {
    match schema.get("type") {
        Some(Json::String(t)) => t == name,
        Some(Json::Array(ts)) => ts.iter().any(|t| t == name),
        _ => false,
    }
}

fn accepts(root: &Json, schema: &Json) -> Accepts {
    let mut a = Accepts::default();
    for s in alternatives(root, schema) {
        let constrained = ["type", "const", "enum", "properties", "items"]
            .iter()
            .any(|k| s.get(k).is_some());
        if !constrained {
            a.any = true;
        }
        a.string |= has_type(s, "string");
        a.integer |= has_type(s, "integer");
        a.number |= has_type(s, "number");
        a.boolean |= has_type(s, "boolean");
        let mut constants: Vec<&Json> = s.get("const").into_iter().collect();
        constants.extend(s.get("enum").and_then(Json::as_array).into_iter().flatten());
        for c in constants {
            a.string |= c.is_string();
            a.boolean |= c.is_boolean();
            a.number |= c.is_number();
        }
    }
    a
}

/// A plain scalar as YAML 1.2's core schema reads it.
enum Plain {
    Null,
    Bool(bool),
    Integer(Number),
    Float(f64),
    Text,
}

fn resolve(text: &str) -> Plain {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Plain::Null,
        "true" | "True" | "TRUE" => return Plain::Bool(true),
        "false" | "False" | "FALSE" => return Plain::Bool(false),
        _ => {}
    }
    if let Some(n) = integer(text) {
        return Plain::Integer(n);
    }
    if is_float(text)
        && let Ok(f) = text.parse::<f64>()
        && f.is_finite()
    {
        return Plain::Float(f);
    }
    Plain::Text
}

/// `[-+]?[0-9]+`, `0o[0-7]+` or `0x[0-9a-fA-F]+`, when it fits in 64 bits.
fn integer(text: &str) -> Option<Number> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(hex) = text.strip_prefix("0x") {
        (16, hex)
    } else if let Some(oct) = text.strip_prefix("0o") {
        (8, oct)
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        let value = 0i64.checked_sub_unsigned(magnitude)?;
        Some(Number::from(value))
    } else {
        Some(Number::from(magnitude))
    }
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`.
fn is_float(text: &str) -> bool {
    let s = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match frac {
        None => !int.is_empty() && digits(int),
        Some(f) => digits(int) && digits(f) && !(int.is_empty() && f.is_empty()),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

fn scalar(text: &str, plain: bool, accepts: Accepts) -> Json {
    if !plain {
        return Json::String(text.to_owned());
    }
    // Where the schema asks for a string, the text written is that string.
    let as_text = || Json::String(text.to_owned());
    let typed_ok = |wanted: bool| accepts.any || wanted || !accepts.string;
    match resolve(text) {
        Plain::Null => Json::Null,
        Plain::Text => as_text(),
        Plain::Bool(b) if typed_ok(accepts.boolean) => Json::Bool(b),
        Plain::Integer(n) if typed_ok(accepts.integer || accepts.number) => Json::Number(n),
        // `1.0` where a whole number is wanted is that number.
        Plain::Float(f)
            if accepts.integer && !accepts.number && f.fract() == 0.0 && f.abs() < 9e15 =>
        {
            // Exact: the value is whole and well inside i64.
            Json::Number(Number::from(f as i64))
        }
        Plain::Float(f) if typed_ok(accepts.number) => {
            Number::from_f64(f).map_or_else(as_text, Json::Number)
        }
        _ => as_text(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document;
    use serde_json::json;

    fn convert_text(text: &str) -> Converted {
        convert(&crate::json_schema(), &document::read(text).root.unwrap())
    }

    #[test]
    fn plain_scalars_are_typed_unless_a_string_is_wanted() {
        let c = convert_text(
            "version: 1\nname: 2024\nregion: on\nbucket: { name: b, create: true }\ntarget:\n  domain: x\n  overrides:\n    tags: { cost: 1234, on: true, none: ~ }\n    cluster_config: { instance_count: 3.0 }\nrepository: { settings: { n: 10, f: 1.5, b: false, s: 1e3 } }\n",
        );
        assert!(c.unknown.is_empty());
        assert_eq!(c.json["version"], json!(1));
        assert_eq!(c.json["name"], json!("2024"));
        assert_eq!(c.json["region"], json!("on"));
        assert_eq!(c.json["bucket"]["create"], json!(true));
        assert_eq!(
            c.json["target"]["overrides"]["tags"],
            json!({"cost": "1234", "on": "true", "none": null})
        );
        assert_eq!(
            c.json["target"]["overrides"]["cluster_config"]["instance_count"],
            json!(3)
        );
        assert_eq!(
            c.json["repository"]["settings"],
            json!({"n": 10, "f": 1.5, "b": false, "s": 1000.0})
        );
    }

    #[test]
    fn quoted_scalars_are_strings_and_wrong_types_stay_wrong() {
        let c = convert_text("version: \"1\"\nbucket: { create: yes, name: [a] }\n");
        assert_eq!(c.json["version"], json!("1"));
        // `yes` is not a YAML 1.2 boolean: the schema will say so.
        assert_eq!(c.json["bucket"]["create"], json!("yes"));
        assert_eq!(c.json["bucket"]["name"], json!(["a"]));
    }

    #[test]
    fn unknown_keys_are_left_out_and_listed_with_their_neighbours() {
        let c = convert_text("regoin: x\nbucket: { name: b, base-path: p }\n");
        assert_eq!(c.json, json!({"bucket": {"name": "b"}}));
        let found: Vec<(String, String)> = c
            .unknown
            .iter()
            .map(|u| match &u.finding {
                Finding::UnknownKey { key, parent, .. } => (parent.clone(), key.clone()),
                Finding::Ready(_) => unreachable!(),
            })
            .collect();
        assert_eq!(
            found,
            [
                (String::new(), "regoin".to_owned()),
                ("bucket".into(), "base-path".into())
            ]
        );
        let Finding::UnknownKey { allowed, .. } = &c.unknown[1].finding else {
            unreachable!()
        };
        assert_eq!(
            allowed.as_ref(),
            ["base_path", "create", "kms_key_id", "name", "region", "sse"]
        );
    }

    #[test]
    fn integers_and_floats_follow_the_core_schema() {
        for (text, expected) in [
            ("0x1F", json!(31)),
            ("0o17", json!(15)),
            ("-12", json!(-12)),
            ("+7", json!(7)),
            (".5", json!(0.5)),
            ("1e3", json!(1000.0)),
            ("99999999999999999999", json!(1e20)),
            (".inf", json!(".inf")),
            ("1_000", json!("1_000")),
            ("0x", json!("0x")),
        ] {
            let any = Accepts {
                any: true,
                ..Accepts::default()
            };
            assert_eq!(scalar(text, true, any), expected, "{text}");
        }
    }
}
