//! `check-jsonschema` from PyPI, for checking the CI workflows in docs/ci.md against GitHub's and
//! GitLab's published schemas.
//!
//! Installed by `pytool.rs`: a pinned release into a virtualenv under `target/test-tools/`,
//! so the only prerequisite is `python3` with its `venv` module, and a missing one is a
//! failure that says how to get it. The schemas ship inside the package
//! (`--builtin-schema vendor.github-workflows`, `vendor.gitlab-ci`): once installed, checking needs
//! no network (verified by running it in a network namespace with no interface up).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The check-jsonschema release the suite is pinned to (its vendored schemas come with it);
/// bump it deliberately.
pub const CHECK_JSONSCHEMA_VERSION: &str = "0.39.0";

/// Checks `files` against one of the package's built-in schemas (`vendor.github-workflows`,
/// `vendor.gitlab-ci`, ...). The output says what is wrong, file by file.
pub fn check(builtin_schema: &str, files: &[PathBuf]) -> Output {
    Command::new(python())
        .args(["-m", "check_jsonschema", "--builtin-schema", builtin_schema])
        .args(files)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "could not run check-jsonschema from {}: {e}",
                python().display()
            )
        })
}

/// The virtualenv's python with the pinned check-jsonschema, created once per machine.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        crate::pytool::PyTool {
            dir: format!("check-jsonschema-{CHECK_JSONSCHEMA_VERSION}"),
            requirement: format!("check-jsonschema=={CHECK_JSONSCHEMA_VERSION}"),
            import: "check_jsonschema",
            needed_for: "the CI workflow check",
        }
        .install()
        .join("bin")
        .join("python")
    })
}
