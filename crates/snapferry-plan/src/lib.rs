//! The plan file: its model, parsing with file:line:column diagnostics,
//! validation, name templates, JSON Schema, and the step graph.
//! No I/O beyond reading the file, and no AWS.

mod node_id;

pub use node_id::NodeId;
