//! End-to-end tests: the real `snapferry` binary against the sandbox (and moto), one module per
//! topic in one test binary.

mod accounts;
mod ci_docs;
mod cli_json;
mod cli_polish;
mod common;
mod credentials;
mod destroy;
mod drift;
mod fgac;
mod json_output;
mod least_privilege;
mod locks;
mod metadata;
mod moto;
mod plan_markdown;
mod plan_output;
mod real_data;
mod real_service;
mod refresh;
mod reliability;
mod remote_state;
mod replication;
mod sandbox_doc;
mod saved_plans;
mod secrets;
mod vpc_dns;
