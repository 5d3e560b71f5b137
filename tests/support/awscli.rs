//! The AWS CLI (v1, `awscli` from PyPI), for running docs/sandbox.md's `aws opensearch ...` and
//! `aws s3 ...` commands against the sandbox as a user would: a client the sandbox did not grow
//! up with (botocore's signer, its endpoint and CA-bundle settings, `AWS_DEFAULT_REGION`).
//!
//! Installed by `pytool.rs`: a pinned release into a virtualenv under `target/test-tools/`,
//! so the only prerequisite is `python3` with its `venv` module, and a missing one is a
//! failure that says how to get it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The AWS CLI release the suite is pinned to; bump it deliberately.
pub const AWSCLI_VERSION: &str = "1.36.0";

/// The virtualenv's `bin` directory, holding `aws`: put it first on `PATH`.
pub fn bin_dir() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        crate::pytool::PyTool {
            dir: format!("awscli-{AWSCLI_VERSION}"),
            requirement: format!("awscli=={AWSCLI_VERSION}"),
            import: "awscli",
            needed_for: "the sandbox documentation test",
        }
        .install()
        .join("bin")
    })
}
