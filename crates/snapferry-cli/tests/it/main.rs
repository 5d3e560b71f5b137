//! The integration tests of this crate, one module per topic, linked into one test binary
//! (a binary per file would link the whole dependency tree once per file).

mod docs_graph;
mod graph_cli;
mod schema_cli;
mod usage;
mod validate;
mod validate_large;
mod validate_malformed;
