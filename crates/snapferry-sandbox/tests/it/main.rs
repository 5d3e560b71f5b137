//! The integration tests of this crate, one module per topic, linked into one test binary
//! (a binary per file would link the whole dependency tree once per file).

mod aws_clients;
mod common;
mod data_plane;
mod external_moto;
mod faults_and_config;
mod iam_policies;
mod s3_conditional_put;
mod stories;
mod sts;
mod vpc;
