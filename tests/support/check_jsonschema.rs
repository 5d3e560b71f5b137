//! `check-jsonschema` from PyPI, for checking the CI workflows in docs/ci.md against GitHub's and
//! GitLab's published schemas.
//!
//! Installed like moto (`moto.rs`): a pinned release into a virtualenv under
//! `target/test-tools/`, so the only prerequisite is `python3` with its `venv` module, and a
//! missing one is a failure that says how to get it. The schemas ship inside the package
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
        let venv = crate::target_dir()
            .join("test-tools")
            .join(format!("check-jsonschema-{CHECK_JSONSCHEMA_VERSION}"));
        let python = venv.join("bin").join("python");
        if python.exists() && importable(&python) {
            return python;
        }
        let staging = venv.with_extension(format!("partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        run_or_explain(
            Command::new("python3").args(["-m", "venv"]).arg(&staging),
            "python3 with its venv module is needed to install check-jsonschema for the CI \
             workflow check; install Python 3 (on Debian: apt-get install python3 python3-venv)",
        );
        run_or_explain(
            Command::new(staging.join("bin").join("pip")).args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                &format!("check-jsonschema=={CHECK_JSONSCHEMA_VERSION}"),
            ]),
            "pip could not install check-jsonschema from PyPI; the test suite needs the package \
             registry (pypi.org or a mirror set with PIP_INDEX_URL) the first time it runs",
        );
        // Another test binary may have finished the same install meanwhile: either copy works.
        let _ = std::fs::remove_dir_all(&venv);
        if std::fs::rename(&staging, &venv).is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        assert!(
            importable(&python),
            "check-jsonschema was installed into {} but cannot be imported",
            venv.display()
        );
        python
    })
}

fn importable(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import check_jsonschema"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run_or_explain(command: &mut Command, what_to_do: &str) {
    match command.output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "{what_to_do}\n`{command:?}` exited with {}:\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("{what_to_do}\n`{command:?}` could not run: {e}"),
    }
}
