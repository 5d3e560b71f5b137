//! The plan file: its model, parsing with file:line:column diagnostics,
//! validation, name templates, JSON Schema, and the step graph.
//! No I/O beyond reading the file, and no AWS.
//!
//! The flow is `text → RawPlan` (serde, exactly as written) `→ Plan` (checked,
//! defaults applied) `→ StepGraph` (petgraph DAG of the six steps).

mod check;
pub mod engine_version;
mod error;
mod fingerprint;
mod graph;
mod location;
pub mod names;
mod node_id;
mod plan;
pub mod raw;
pub mod reference;
mod shape;
pub mod template;
mod unknown_keys;

use std::path::Path;
use std::sync::Arc;

pub use engine_version::{Engine, EngineVersion, EngineVersionError, can_restore};
pub use error::{LoadError, PlanDiagnostic, PlanErrors, Problem};
pub use fingerprint::{fingerprint, write_canonical};
pub use graph::{
    BucketPolicyNode, CriticalPath, DomainNode, Node, NodeSpec, RepositoryNode, RepositorySide,
    RestoreNode, RoleNode, SnapshotNode, StepGraph, VerifyNode, kind,
};
pub use location::{ByteSpan, LocationIndex, line_col};
pub use node_id::NodeId;
pub use plan::*;
pub use raw::{OnConflict, RawPlan};
pub use template::{Template, TemplateError};

use crate::location::offset_of;

/// Parses and checks plan text; `file` is the name used in diagnostics.
/// Returns every problem at once.
pub fn parse(file: &str, text: &str) -> Result<Plan, PlanErrors> {
    let source: Arc<str> = Arc::from(text);
    let raw: RawPlan = match serde_yaml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let index = LocationIndex::build(text);
            let mut errors = Vec::new();
            // serde stops at the first unknown key; the schema walk finds them all.
            for u in unknown_keys::unknown_keys(&index, &json_schema()) {
                let path = if u.parent.is_empty() {
                    u.key.clone()
                } else {
                    format!("{}.{}", u.parent, u.key)
                };
                let problem = Problem::UnknownKey {
                    suggestion: unknown_keys::suggestion(&u.key, &u.allowed).map(str::to_owned),
                    key: u.key,
                    parent: u.parent,
                    allowed: u.allowed,
                };
                errors.push(PlanDiagnostic::new(
                    true, problem, path, u.span, file, &source,
                ));
            }
            // serde stops at the first wrong value too; the schema check finds them all.
            let shape = shape::shape_problems(text);
            for s in shape.iter().flatten() {
                let span = match s.problem {
                    // A missing key: point at the key of the mapping that lacks it.
                    Problem::MissingField { .. } => span_of(&index, &s.path, true),
                    _ => span_of(&index, &s.path, false),
                };
                errors.push(PlanDiagnostic::new(
                    false,
                    s.problem.clone(),
                    s.path.clone(),
                    span,
                    file,
                    &source,
                ));
            }
            // serde's own message: a YAML syntax error, or what the schema cannot say.
            let (offset, message) = yaml_error_position(text, &e);
            let explained = shape.is_some() && !errors.is_empty();
            if !explained && !errors.iter().any(|d| d.span().offset() == offset) {
                errors.push(PlanDiagnostic::new(
                    false,
                    Problem::Syntax { message },
                    String::new(),
                    ByteSpan { offset, len: 0 },
                    file,
                    &source,
                ));
            }
            errors.sort_by_key(|d| d.span().offset());
            return Err(PlanErrors {
                file: file.to_owned(),
                errors,
            });
        }
    };
    let index = LocationIndex::build(text);
    check::check(&raw).map_err(|found| PlanErrors {
        file: file.to_owned(),
        errors: found
            .into_iter()
            .map(|f| {
                let span = span_of(&index, &f.path, f.key);
                PlanDiagnostic::new(f.key, f.problem, f.path, span, file, &source)
            })
            .collect(),
    })
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

/// Reads, parses and checks a plan file.
pub fn load(path: &Path) -> Result<Plan, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(parse(&path.display().to_string(), &text)?)
}

/// The JSON Schema of the plan file (derived from [`RawPlan`]), for editors.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawPlan)).expect("a schema always serializes")
}

impl Plan {
    /// `sha256:<hex>` of the canonical JSON of the checked plan.
    pub fn fingerprint(&self) -> String {
        fingerprint(self)
    }

    /// The step graph of this plan.
    pub fn graph(&self) -> StepGraph {
        StepGraph::build(self)
    }
}

/// Byte offset of a serde_yaml error and its message without the position suffix.
fn yaml_error_position(text: &str, e: &serde_yaml::Error) -> (usize, String) {
    let mut message = e.to_string();
    if let Some(cut) = message.rfind(" at line ") {
        message.truncate(cut);
    }
    let offset = e
        .location()
        .map_or(0, |l| offset_of(text, l.line(), l.column()));
    (offset.min(text.len()), message)
}
