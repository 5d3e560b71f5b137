//! The integration tests of this crate, one module per topic, linked into one test binary
//! (a binary per file would link the whole dependency tree once per file).

mod access_policies;
mod accounts;
mod alias_swap;
mod aws_clients;
mod aws_models;
mod cluster_meta;
mod common;
mod control_plane;
mod data_plane;
mod data_realism;
mod external_moto;
mod faults_and_config;
mod fgac;
mod iam_policies;
mod iam_propagation;
mod s3_conditional_put;
mod secrets_manager;
mod signing;
mod snapshot_refresh;
mod stories;
mod sts;
mod vpc;
