//! Every wrong type, missing key and out-of-range value at once, in the plan's words. The
//! plan as JSON (from [`crate::convert`]) is checked against the plan's JSON Schema (the one
//! editors use, derived from [`crate::RawPlan`]) with the `jsonschema` crate, which reports
//! them all; each becomes "`restore.on_conflict` must be one of fail, skip, rename, replace,
//! found "merge"", never serde's "expected struct RawBucket".
//!
//! Then [`repair`] makes the rest of the plan readable, so the rules of [`crate::check`] run
//! on every value that has the right shape: each value at fault is removed (in a list,
//! replaced) and each missing key filled with a neutral value of its type. The paths it
//! touched are returned; rule findings about them are not the user's and are dropped.

use std::collections::HashSet;
use std::sync::LazyLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use jsonschema::{JsonType, ValidationError, Validator};
use serde_json::Value;

use crate::convert::{alternatives, has_type};
use crate::error::Problem;

/// A value that does not have the shape the schema asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeProblem {
    pub problem: Problem,
    /// Dotted path of the value at fault (for a missing key: of its mapping).
    pub path: String,
    /// Where it is, segment by segment (keys may hold dots).
    pointer: Vec<Segment>,
    /// A missing key (nothing to remove).
    missing: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// The plan's schema, built once.
pub static SCHEMA: LazyLock<Value> = LazyLock::new(crate::json_schema);

static VALIDATOR: LazyLock<Validator> = LazyLock::new(|| {
    let mut schema = SCHEMA.clone();
    bound_integers(&mut schema);
    jsonschema::validator_for(&schema).expect("the derived schema is valid")
});

/// schemars writes `"format": "uint32"` for a `u32`, which validators do not enforce: the
/// bound is added so a value serde cannot read is a shape problem like any other.
fn bound_integers(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let max = match map.get("format").and_then(Value::as_str) {
                Some("uint8") => Some(u64::from(u8::MAX)),
                Some("uint16") => Some(u64::from(u16::MAX)),
                Some("uint32") => Some(u64::from(u32::MAX)),
                _ => None,
            };
            if let Some(max) = max {
                map.entry("maximum").or_insert(max.into());
            }
            map.values_mut().for_each(bound_integers);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_integers),
        _ => {}
    }
}

/// The shape problems of the plan `json`.
pub fn shape_problems(json: &Value) -> Vec<ShapeProblem> {
    let mut out = Vec::new();
    for error in VALIDATOR.iter_errors(json) {
        collect(&error, &mut out);
    }
    out.dedup();
    out
}

/// Removes what `problems` are about from `json` and fills what is missing, so that serde
/// reads it. Returns the dotted paths whose values are no longer what the user wrote.
pub fn repair(json: &mut Value, problems: &[ShapeProblem]) -> HashSet<String> {
    let mut touched = HashSet::new();
    for p in problems {
        if p.missing {
            if let Problem::MissingField { field } = &p.problem {
                touched.insert(field.clone());
            }
            continue;
        }
        touched.insert(p.path.clone());
        remove(json, &p.pointer);
    }
    if json.is_null() {
        *json = neutral(&SCHEMA, &SCHEMA);
    } else {
        fill(&SCHEMA, &SCHEMA, json);
    }
    touched
}

/// Removes the value at `pointer`: a mapping loses the key, a list item becomes null (filled
/// later), the whole document becomes null.
fn remove(json: &mut Value, pointer: &[Segment]) {
    let Some((last, parents)) = pointer.split_last() else {
        *json = Value::Null;
        return;
    };
    let mut at = json;
    for segment in parents {
        let next = match (segment, at) {
            (Segment::Key(k), Value::Object(map)) => map.get_mut(k),
            (Segment::Index(i), Value::Array(items)) => items.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => at = n,
            None => return,
        }
    }
    match (last, at) {
        (Segment::Key(k), Value::Object(map)) => {
            map.remove(k);
        }
        (Segment::Index(i), Value::Array(items)) => {
            if let Some(item) = items.get_mut(*i) {
                *item = Value::Null;
            }
        }
        _ => {}
    }
}

/// Adds the required keys missing anywhere in `value` (as [`neutral`] values) and replaces
/// list items removed by [`remove`].
fn fill(root: &Value, schema: &Value, value: &mut Value) {
    let options = alternatives(root, schema);
    match value {
        Value::Object(map) => {
            let Some(object) = options
                .iter()
                .find(|s| s.get("properties").is_some() || has_type(s, "object"))
            else {
                return;
            };
            let properties = object.get("properties");
            for key in object
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !map.contains_key(key)
                    && let Some(child) = properties.and_then(|p| p.get(key))
                {
                    map.insert(key.to_owned(), neutral(root, child));
                }
            }
            for (key, child_value) in map.iter_mut() {
                let child = properties
                    .and_then(|p| p.get(key.as_str()))
                    .or_else(|| object.get("additionalProperties").filter(|a| a.is_object()));
                if let Some(child) = child {
                    fill(root, child, child_value);
                }
            }
        }
        Value::Array(items) => {
            let Some(item_schema) = options.iter().find_map(|s| s.get("items")) else {
                return;
            };
            let nullable = alternatives(root, item_schema)
                .iter()
                .any(|s| has_type(s, "null"));
            for item in items {
                if item.is_null() && !nullable {
                    *item = neutral(root, item_schema);
                } else {
                    fill(root, item_schema, item);
                }
            }
        }
        _ => {}
    }
}

/// A value of the type `schema` asks for, as plain as possible: `{}` with its required keys
/// filled, `[]`, `""`, `0`, `false`, or the first allowed constant.
fn neutral(root: &Value, schema: &Value) -> Value {
    for s in alternatives(root, schema) {
        if let Some(c) = s.get("const") {
            return c.clone();
        }
        if let Some(first) = s
            .get("enum")
            .and_then(Value::as_array)
            .and_then(|e| e.first())
        {
            return first.clone();
        }
        if s.get("properties").is_some() || has_type(s, "object") {
            let mut object = Value::Object(serde_json::Map::new());
            fill(root, s, &mut object);
            return object;
        }
        for (name, value) in [
            ("array", Value::Array(Vec::new())),
            ("string", Value::String(String::new())),
            ("integer", Value::from(0)),
            ("number", Value::from(0)),
            ("boolean", Value::Bool(false)),
        ] {
            if has_type(s, name) {
                return value;
            }
        }
    }
    Value::Null
}

/// The dotted path (`a.b[0].c`) and the segments of a JSON pointer location.
fn location(error: &ValidationError<'_>) -> (String, Vec<Segment>) {
    let mut path = String::new();
    let mut pointer = Vec::new();
    for segment in error.instance_path().segments() {
        match segment {
            LocationSegment::Property(key) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key);
                pointer.push(Segment::Key(key.into_owned()));
            }
            LocationSegment::Index(i) => {
                path.push_str(&format!("[{i}]"));
                pointer.push(Segment::Index(i));
            }
        }
    }
    (path, pointer)
}

fn collect(error: &ValidationError<'_>, out: &mut Vec<ShapeProblem>) {
    let (path, pointer) = location(error);
    match error.kind() {
        // Unknown keys are left out of the value by `convert`, which reports them.
        ValidationErrorKind::AdditionalProperties { .. } => {}
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            // A branch whose errors are all about this very value failed on its
            // type (or constant); a branch with errors deeper down matched the
            // type and is the one the user meant.
            let shallow = |branch: &Vec<ValidationError<'static>>| {
                branch.iter().all(|e| {
                    e.instance_path() == error.instance_path()
                        && matches!(
                            e.kind(),
                            ValidationErrorKind::Type { .. }
                                | ValidationErrorKind::Constant { .. }
                                | ValidationErrorKind::Enum { .. }
                        )
                })
            };
            match context.iter().find(|branch| !shallow(branch)) {
                Some(meant) => meant.iter().for_each(|e| collect(e, out)),
                None => {
                    let mut expected: Vec<Expected> = context
                        .iter()
                        .flat_map(|b| branch_expectations(b))
                        .collect();
                    dedup(&mut expected);
                    out.push(wrong(path, pointer, &expected, error.instance()));
                }
            }
        }
        ValidationErrorKind::Required { property } => {
            let key = property.as_str().unwrap_or_default();
            out.push(ShapeProblem {
                problem: Problem::MissingField {
                    field: if path.is_empty() {
                        key.to_owned()
                    } else {
                        format!("{path}.{key}")
                    },
                },
                path,
                pointer,
                missing: true,
            });
        }
        _ => {
            let expected = expectations(error);
            if expected.is_empty() {
                let message = error.to_string();
                out.push(wrong(
                    path,
                    pointer,
                    &[Expected::Words(message)],
                    error.instance(),
                ));
            } else {
                out.push(wrong(path, pointer, &expected, error.instance()));
            }
        }
    }
}

fn wrong(
    path: String,
    pointer: Vec<Segment>,
    expected: &[Expected],
    found: &Value,
) -> ShapeProblem {
    ShapeProblem {
        problem: Problem::WrongValue {
            path: path.clone(),
            expected: words(expected),
            found: describe(found),
        },
        path,
        pointer,
        missing: false,
    }
}

/// One thing the schema would have accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Expected {
    /// A value of the plan's vocabulary (`fail`, `aws:kms`).
    Constant(String),
    /// A kind of value (`a string`, `true/false`).
    Words(String),
}

/// What one branch of an `anyOf`/`oneOf` expected: its constants when it names any (a
/// branch `{type: string, const: fail}` means `fail`, not "a string"), else its types.
fn branch_expectations(branch: &[ValidationError<'_>]) -> Vec<Expected> {
    let all: Vec<Expected> = branch.iter().flat_map(expectations).collect();
    if all.iter().any(|e| matches!(e, Expected::Constant(_))) {
        all.into_iter()
            .filter(|e| matches!(e, Expected::Constant(_)))
            .collect()
    } else {
        all
    }
}

fn dedup(items: &mut Vec<Expected>) {
    let mut seen = HashSet::new();
    items.retain(|e| seen.insert(e.clone()));
}

/// What the schema expected, one entry per alternative.
fn expectations(error: &ValidationError<'_>) -> Vec<Expected> {
    match error.kind() {
        ValidationErrorKind::Type { kind } => {
            let types: Vec<JsonType> = match kind {
                TypeKind::Single(t) => vec![*t],
                TypeKind::Multiple(set) => set.iter().collect(),
            };
            types
                .into_iter()
                .filter(|t| *t != JsonType::Null)
                .map(|t| {
                    Expected::Words(
                        match t {
                            JsonType::String => "a string",
                            JsonType::Integer => "a whole number",
                            JsonType::Number => "a number",
                            JsonType::Boolean => "true/false",
                            JsonType::Array => "a list",
                            JsonType::Object => "a mapping",
                            JsonType::Null => "nothing",
                        }
                        .to_owned(),
                    )
                })
                .collect()
        }
        ValidationErrorKind::Constant { expected_value } => {
            vec![Expected::Constant(plain(expected_value))]
        }
        ValidationErrorKind::Enum { options } => options
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| Expected::Constant(plain(o)))
            .collect(),
        ValidationErrorKind::Minimum { limit } => {
            vec![Expected::Words(format!("a number of at least {limit}"))]
        }
        ValidationErrorKind::Maximum { limit } => {
            vec![Expected::Words(format!("a number of at most {limit}"))]
        }
        _ => Vec::new(),
    }
}

/// `one of fail, skip, rename, replace` for the plan's own values; `a string or a list`
/// for kinds of values; a single constant in backticks.
fn words(expected: &[Expected]) -> String {
    let constants: Vec<&str> = expected
        .iter()
        .filter_map(|e| match e {
            Expected::Constant(c) => Some(c.as_str()),
            Expected::Words(_) => None,
        })
        .collect();
    if constants.len() == expected.len() && constants.len() > 1 {
        return format!("one of {}", constants.join(", "));
    }
    let items: Vec<String> = expected
        .iter()
        .map(|e| match e {
            Expected::Constant(c) => format!("`{c}`"),
            Expected::Words(w) => w.clone(),
        })
        .collect();
    match items.as_slice() {
        [] => "another value".to_owned(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// A scalar without JSON quotes.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The value found, in words short enough for a one-line message.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.chars().count() > 40 => {
            format!("{:?}", s.chars().take(37).collect::<String>() + "...")
        }
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{convert, document};

    fn json(text: &str) -> Value {
        convert::convert(&SCHEMA, &document::read(text).root.unwrap()).json
    }

    fn problems(text: &str) -> Vec<(String, String)> {
        shape_problems(&json(text))
            .into_iter()
            .map(|p| (p.path, p.problem.to_string()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    #[test]
    fn reports_every_wrong_value_and_missing_key_in_the_plans_words() {
        let text = "version: \"1\"\nname: shop\nbucket: { create: yes-please }\nsource: { domain: a }\ntarget:\n  domain: b\n  overrides: { cluster_config: { instance_count: -3, dedicated_master_count: 5000000000 } }\nrestore: { on_conflict: [merge] }\nverify: maybe\n";
        assert_eq!(
            problems(text),
            [
                (String::new(), "missing `region`".to_owned()),
                ("bucket".into(), "missing `bucket.name`".into()),
                (
                    "bucket.create".into(),
                    "`bucket.create` must be true/false, found \"yes-please\"".into()
                ),
                (
                    "restore.on_conflict".into(),
                    "`restore.on_conflict` must be one of fail, skip, rename, replace, found a list".into()
                ),
                (
                    "target.overrides.cluster_config.dedicated_master_count".into(),
                    "`target.overrides.cluster_config.dedicated_master_count` must be a number of at most 4294967295, found 5000000000".into()
                ),
                (
                    "target.overrides.cluster_config.instance_count".into(),
                    "`target.overrides.cluster_config.instance_count` must be a number of at least 0, found -3".into()
                ),
                (
                    "verify".into(),
                    "`verify` must be true/false or a mapping, found \"maybe\"".into()
                ),
                (
                    "version".into(),
                    "`version` must be a whole number, found \"1\"".into()
                ),
            ]
        );
    }

    #[test]
    fn repair_leaves_a_document_serde_reads_and_names_what_it_touched() {
        let text = "version: \"1\"\nname: shop\nbucket: [x]\nsource: { domain: a }\ntarget: { domain: b }\nrestore: { on_conflict: merge, rename_pattern: 3 }\nreplications: [7]\n";
        let mut value = json(text);
        let found = shape_problems(&value);
        let touched = repair(&mut value, &found);
        let raw: crate::RawPlan = serde_json::from_value(value).expect("repaired");
        assert_eq!(raw.name, "shop");
        assert_eq!(raw.restore.unwrap().rename_pattern.as_deref(), Some("3"));
        assert_eq!(raw.replications.unwrap().len(), 1);
        let mut touched: Vec<String> = touched.into_iter().collect();
        touched.sort();
        assert_eq!(
            touched,
            [
                "bucket",
                "region",
                "replications[0]",
                "restore.on_conflict",
                "version"
            ]
        );
    }

    #[test]
    fn a_document_that_is_not_a_mapping_is_repaired_whole() {
        let mut value = json("- a\n- b\n");
        let found = shape_problems(&value);
        assert_eq!(found.len(), 1);
        repair(&mut value, &found);
        let _: crate::RawPlan = serde_json::from_value(value).expect("repaired");
    }
}
