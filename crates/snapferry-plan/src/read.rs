//! The whole way from a plan file's bytes to a checked [`Plan`], collecting every problem
//! instead of stopping at the first, then listing the first [`MAX_REPORTED`] in the file's
//! order with a count of the rest.
//!
//! 1. [`chars`]: UTF-8 without control characters, or stop (each one placed, and shown as
//!    a visible picture, never as a raw escape sequence).
//! 2. [`document`]: the YAML tree; syntax errors and nesting or alias bombs stop here, while
//!    duplicate keys, tags, keys that are collections and second documents are noted.
//! 3. [`convert`]: JSON guided by the schema; unknown keys noted and left out.
//! 4. [`shape`]: when serde refuses the value, wrong types, missing keys, values outside the
//!    plan's vocabulary, all of them; then the value is repaired so serde reads the rest.
//! 5. [`check`]: every rule, on the values of the right shape. A finding about a repaired
//!    value, or one relating several values while any was repaired, is dropped: it would be
//!    about the stand-in, not about what the user wrote.
//!
//! Every pass is linear in the size of the file, and suggestions, lines and columns are only
//! worked out for the problems listed, so a 5 MB file of unknown keys is refused in well under
//! a second (`benches/validate.rs`, `docs/performance.md`).

use std::collections::HashSet;
use std::sync::Arc;

use serde::Deserialize;

use crate::error::{Finding, Located, MAX_REPORTED, PlanDiagnostic, PlanErrors, Problem};
use crate::location::{ByteSpan, LineIndex, LocationIndex};
use crate::raw::RawPlan;
use crate::shape::SCHEMA;
use crate::{Plan, chars, check, convert, document, shape, unknown_keys};

/// Decodes, parses and checks a plan file's bytes; `file` is the name used in diagnostics.
/// Returns every problem at once (the first [`MAX_REPORTED`], and how many more).
pub fn parse_bytes(file: &str, bytes: &[u8]) -> Result<Plan, PlanErrors> {
    let decoded = chars::decode(bytes);
    if !decoded.problems.is_empty() {
        return Err(report(file, &decoded.text, decoded.problems));
    }
    parse_text(file, &decoded.text)
}

/// Parses and checks plan text; `file` is the name used in diagnostics. Returns every
/// problem at once (the first [`MAX_REPORTED`], and how many more).
pub fn parse(file: &str, text: &str) -> Result<Plan, PlanErrors> {
    parse_bytes(file, text.as_bytes())
}

fn parse_text(file: &str, text: &str) -> Result<Plan, PlanErrors> {
    let read = document::read(text);
    let mut found = read.problems;
    let root = match read.root {
        Some(root) => root,
        // An empty document; the schema says what a plan needs.
        None if found.is_empty() => document::Node {
            span: ByteSpan { offset: 0, len: 0 },
            value: document::Value::Scalar {
                text: String::new(),
                plain: true,
            },
        },
        None => return Err(report(file, text, found)),
    };
    let converted = convert::convert(&SCHEMA, &root);
    let index = LocationIndex::of(root);
    found.extend(converted.unknown);
    let mut json = converted.json;

    // What serde reads has the schema's shape (the schema is derived from the same types),
    // so the schema is only consulted, for every problem at once, when serde refuses.
    let direct = RawPlan::deserialize(&json).ok();
    let shape = if direct.is_some() {
        Vec::new()
    } else {
        shape::shape_problems(&json)
    };
    for s in &shape {
        // A missing key: point at the key of the mapping that lacks it.
        let missing = matches!(s.problem, Problem::MissingField { .. });
        found.push(Located {
            span: span_of(&index, &s.path, missing),
            finding: Finding::Ready(s.problem.clone()),
            path: s.path.clone(),
            at_key: false,
        });
    }
    let repaired = if direct.is_some() {
        HashSet::new()
    } else {
        shape::repair(&mut json, &shape)
    };

    match direct.map_or_else(|| serde_json::from_value::<RawPlan>(json), Ok) {
        Ok(raw) => match check::check(&raw) {
            Ok(plan) if found.is_empty() => return Ok(plan),
            Ok(_) => {}
            Err(findings) => {
                for f in findings {
                    if repaired.is_empty()
                        || !(f.problem.involves_other_values() || within(&f.path, &repaired))
                    {
                        found.push(Located {
                            span: span_of(&index, &f.path, f.key),
                            finding: Finding::Ready(f.problem),
                            path: f.path,
                            at_key: f.key,
                        });
                    }
                }
            }
        },
        // The schema describes every shape serde reads; this is only reached if they part.
        Err(e) if found.is_empty() => found.push(Located {
            finding: Finding::Ready(Problem::Syntax {
                message: format!("the plan cannot be read: {e}"),
            }),
            path: String::new(),
            span: ByteSpan { offset: 0, len: 0 },
            at_key: false,
        }),
        Err(_) => {}
    }
    Err(report(file, text, found))
}

/// Whether `path` or one of its ancestors (the whole document included) is in `set`.
fn within(path: &str, set: &HashSet<String>) -> bool {
    if set.contains("") || set.contains(path) {
        return true;
    }
    path.char_indices()
        .filter(|(_, c)| *c == '.' || *c == '[')
        .any(|(i, _)| set.contains(&path[..i]))
}

/// Where a problem at `path` is shown: its key (`key`) or its value; the
/// whole document is pointed at, not underlined.
fn span_of(index: &LocationIndex, path: &str, key: bool) -> ByteSpan {
    if path.is_empty() {
        ByteSpan {
            offset: index.value("").offset,
            len: 0,
        }
    } else if key {
        index.key(path)
    } else {
        index.value(path)
    }
}

/// The report of everything `found` in `text`: the first [`MAX_REPORTED`] problems in the
/// file's order (placed, with help), and how many more.
fn report(file: &str, text: &str, mut found: Vec<Located>) -> PlanErrors {
    found.sort_by_key(|l| l.span.offset);
    let omitted = found.len().saturating_sub(MAX_REPORTED);
    let source: Arc<str> = Arc::from(text);
    let lines = LineIndex::new(text);
    let errors = found
        .into_iter()
        .take(MAX_REPORTED)
        .map(|l| {
            let problem = match l.finding {
                Finding::Ready(problem) => problem,
                Finding::UnknownKey {
                    key,
                    parent,
                    allowed,
                } => unknown_keys::problem(key, parent, &allowed),
            };
            PlanDiagnostic::new(l.at_key, problem, l.path, l.span, file, &source, &lines)
        })
        .collect();
    PlanErrors::new(file.to_owned(), errors, omitted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_matches_the_path_and_its_descendants_only() {
        let set: HashSet<String> = ["bucket".to_owned(), "replications[1]".to_owned()].into();
        assert!(within("bucket", &set));
        assert!(within("bucket.name", &set));
        assert!(within("replications[1].target.domain", &set));
        assert!(!within("replications[10].name", &set));
        assert!(!within("bucket_policy", &set));
        assert!(within("anything", &HashSet::from([String::new()])));
    }
}
