//! The plan file: its model, parsing with file:line:column diagnostics,
//! validation, name templates, JSON Schema, and the step graph.
//! No I/O beyond reading the file, and no AWS.
//!
//! The flow is `bytes → RawPlan` (read by [`read`]: every problem at once, each
//! at its line and column) `→ Plan` (checked, defaults applied) `→ StepGraph`
//! (petgraph DAG of the six steps).

mod chars;
mod check;
mod convert;
mod copies;
mod document;
pub mod engine_version;
mod error;
mod fingerprint;
mod graph;
mod location;
pub mod names;
mod node_id;
mod plan;
pub mod raw;
mod read;
pub mod reference;
mod shape;
pub mod template;
mod unknown_keys;

use std::path::Path;

pub use document::{MAX_ALIAS_NODES, MAX_DEPTH};
pub use engine_version::{Engine, EngineVersion, EngineVersionError, can_restore};
pub use error::{LoadError, MAX_REPORTED, PlanDiagnostic, PlanErrors, Problem};
pub use fingerprint::{fingerprint, write_canonical};
pub use graph::{
    BucketPolicyNode, CriticalPath, DashboardsNode, DomainNode, IsmAttachNode, MetadataNode, Node,
    NodeSpec, RepositoryNode, RepositorySide, RestoreNode, RoleNode, SecurityNode, SnapshotNode,
    StepGraph, VerifyNode, kind,
};
pub use location::{ByteSpan, LineIndex, LocationIndex, line_col};
pub use node_id::NodeId;
pub use plan::*;
pub use raw::{OnConflict, RawPlan, RestoreStrategy};
pub use read::{parse, parse_bytes};
pub use template::{Template, TemplateError};

/// Reads, parses and checks a plan file.
pub fn load(path: &Path) -> Result<Plan, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(parse_bytes(&path.display().to_string(), &bytes)?)
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
