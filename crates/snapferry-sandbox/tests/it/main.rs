//! The integration tests of this crate, one module per topic, linked into one test binary
//! (a binary per file would link the whole dependency tree once per file).

mod aws_clients;
mod cluster_meta;
mod common;
mod data_plane;
mod data_realism;
mod external_moto;
mod faults_and_config;
mod s3_conditional_put;
mod stories;
mod sts;
mod vpc;
