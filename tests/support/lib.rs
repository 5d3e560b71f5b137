//! Shared helpers for the workspace-level end-to-end tests: where the `snapferry`
//! binary and the target directory are, and the external tools (moto, check-jsonschema, the AWS
//! CLI) a test may need. Each helper fails loudly with what to do; none skips.

use std::path::PathBuf;

pub mod awscli;
pub mod check_jsonschema;
pub mod moto;
pub mod pytool;
pub mod socks;

/// Environment variables of a developer's shell that must not leak into a `snapferry` run a
/// test or benchmark makes against the sandbox (profiles, endpoints, proxies, the clock).
pub const SCRUBBED_ENV: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_IAM",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_OPENSEARCH",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "ALL_PROXY",
    "https_proxy",
    "http_proxy",
    "all_proxy",
    "SNAPFERRY_NOW",
    "SNAPFERRY_LOG",
];

/// The cargo target directory this test binary was built into.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    // <target>/<profile>/deps/<test binary>
    let exe = std::env::current_exe().expect("the test binary knows its path");
    exe.ancestors()
        .nth(3)
        .map(PathBuf::from)
        .expect("test binary lives under <target>/<profile>/deps")
}
