//! The integration tests of this crate, one module per topic, linked into one test binary
//! (a binary per file would link the whole dependency tree once per file).

mod clients;
mod domain_http;
mod domain_members;
mod domain_update;
mod opensearch_ops;
mod planner_golden;
mod s3_state_store;
mod sdk_secrets;
mod support;
