//! Every wrong type, missing key and out-of-range value at once. serde stops at
//! the first value that does not fit the model; when it does, the document is
//! checked against the plan's JSON Schema (the one editors use, derived from
//! [`crate::RawPlan`]) with the `jsonschema` crate, which reports them all.
//! Unknown keys are left to [`crate::unknown_keys`], which also suggests the
//! nearest allowed key.

use std::sync::LazyLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use jsonschema::{JsonType, ValidationError, Validator};
use serde_json::Value;

use crate::error::Problem;

/// A value that does not have the shape the schema asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeProblem {
    pub problem: Problem,
    /// Dotted path of the value at fault (for a missing key: of its mapping).
    pub path: String,
}

static VALIDATOR: LazyLock<Validator> = LazyLock::new(|| {
    jsonschema::validator_for(&crate::json_schema()).expect("the derived schema is valid")
});

/// The shape problems of `text`, or `None` when it is not a YAML document
/// that maps onto JSON (a syntax error, which serde reports itself).
pub fn shape_problems(text: &str) -> Option<Vec<ShapeProblem>> {
    let yaml: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
    let json: Value = serde_json::to_value(yaml).ok()?;
    let mut out = Vec::new();
    for error in VALIDATOR.iter_errors(&json) {
        collect(&error, &mut out);
    }
    out.dedup();
    Some(out)
}

/// The dotted path (`a.b[0].c`) of a JSON pointer location.
fn dotted(error: &ValidationError<'_>) -> String {
    let mut path = String::new();
    for segment in error.instance_path().segments() {
        match segment {
            LocationSegment::Property(key) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key);
            }
            LocationSegment::Index(i) => path.push_str(&format!("[{i}]")),
        }
    }
    path
}

fn collect(error: &ValidationError<'_>, out: &mut Vec<ShapeProblem>) {
    let path = dotted(error);
    match error.kind() {
        // Reported with a suggestion by `unknown_keys`.
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
                    let mut expected: Vec<String> =
                        context.iter().flatten().flat_map(expectations).collect();
                    expected.dedup();
                    out.push(wrong(path, join_or(&expected), error.instance()));
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
            });
        }
        _ => {
            let expected = expectations(error);
            let expected = if expected.is_empty() {
                error.to_string()
            } else {
                join_or(&expected)
            };
            out.push(wrong(path, expected, error.instance()));
        }
    }
}

fn wrong(path: String, expected: String, found: &Value) -> ShapeProblem {
    ShapeProblem {
        problem: Problem::WrongValue {
            path: path.clone(),
            expected,
            found: describe(found),
        },
        path,
    }
}

/// What the schema expected, in words, one entry per alternative.
fn expectations(error: &ValidationError<'_>) -> Vec<String> {
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
                    match t {
                        JsonType::String => "a string",
                        JsonType::Integer => "a whole number",
                        JsonType::Number => "a number",
                        JsonType::Boolean => "true/false",
                        JsonType::Array => "a list",
                        JsonType::Object => "a mapping",
                        JsonType::Null => "nothing",
                    }
                    .to_owned()
                })
                .collect()
        }
        ValidationErrorKind::Constant { expected_value } => {
            vec![format!("`{}`", plain(expected_value))]
        }
        ValidationErrorKind::Enum { options } => options
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| format!("`{}`", plain(o)))
            .collect(),
        ValidationErrorKind::Minimum { limit } => vec![format!("a number of at least {limit}")],
        ValidationErrorKind::Maximum { limit } => vec![format!("a number of at most {limit}")],
        _ => Vec::new(),
    }
}

/// `a`, `a or b`, `a, b or c`.
fn join_or(items: &[String]) -> String {
    match items {
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

    fn problems(text: &str) -> Vec<(String, String)> {
        shape_problems(text)
            .expect("valid YAML")
            .into_iter()
            .map(|p| (p.path, p.problem.to_string()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    #[test]
    fn reports_every_wrong_value_and_missing_key() {
        let text = "version: \"1\"\nname: shop\nbucket: { create: yes-please }\nsource: { domain: a }\ntarget:\n  domain: b\n  overrides: { cluster_config: { instance_count: -3 } }\nrestore: { on_conflict: merge }\nverify: maybe\n";
        assert_eq!(
            problems(text),
            [
                (
                    String::new(),
                    "missing `region`".to_owned()
                ),
                (
                    "bucket".into(),
                    "missing `bucket.name`".into()
                ),
                (
                    "bucket.create".into(),
                    "`bucket.create` must be true/false, found \"yes-please\"".into()
                ),
                (
                    "restore.on_conflict".into(),
                    "`restore.on_conflict` must be `fail`, `skip`, `rename` or `replace`, found \"merge\"".into()
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
    fn a_syntax_error_is_left_to_serde() {
        assert_eq!(shape_problems("a: [1, 2\n"), None);
    }
}
