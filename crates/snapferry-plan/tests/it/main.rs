//! The integration tests of this crate, one module per topic, linked into one test binary
//! (a binary per file would link the whole dependency tree once per file).

mod check;
mod copies;
mod examples;
mod graph_props;
mod problems;
mod reference;
mod schema;
