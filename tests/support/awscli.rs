//! The AWS CLI (v1, `awscli` from PyPI), for running docs/sandbox.md's `aws opensearch ...` and
//! `aws s3 ...` commands against the sandbox as a user would: a client the sandbox did not grow
//! up with (botocore's signer, its endpoint and CA-bundle settings, `AWS_DEFAULT_REGION`).
//!
//! Installed like moto (`moto.rs`): a pinned release into a virtualenv under
//! `target/test-tools/`, so the only prerequisite is `python3` with its `venv` module, and a
//! missing one is a failure that says how to get it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The AWS CLI release the suite is pinned to; bump it deliberately.
pub const AWSCLI_VERSION: &str = "1.36.0";

/// The virtualenv's `bin` directory, holding `aws`: put it first on `PATH`.
pub fn bin_dir() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let venv = crate::target_dir()
            .join("test-tools")
            .join(format!("awscli-{AWSCLI_VERSION}"));
        let python = venv.join("bin").join("python");
        if python.exists() && importable(&python) {
            return venv.join("bin");
        }
        let staging = venv.with_extension(format!("partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        run_or_explain(
            Command::new("python3").args(["-m", "venv"]).arg(&staging),
            "python3 with its venv module is needed to install the AWS CLI for the sandbox \
             documentation test; install Python 3 (on Debian: apt-get install python3 python3-venv)",
        );
        run_or_explain(
            Command::new(staging.join("bin").join("pip")).args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                &format!("awscli=={AWSCLI_VERSION}"),
            ]),
            "pip could not install awscli from PyPI; the test suite needs the package registry \
             (pypi.org or a mirror set with PIP_INDEX_URL) the first time it runs",
        );
        // A virtualenv's scripts name its python by absolute path: rename, then fix them up.
        let _ = std::fs::remove_dir_all(&venv);
        if std::fs::rename(&staging, &venv).is_err() {
            // Another test binary finished the same install meanwhile: use that one.
            let _ = std::fs::remove_dir_all(&staging);
        } else {
            rewrite_shebangs(&venv, &staging);
        }
        assert!(
            importable(&python),
            "awscli was installed into {} but cannot be imported",
            venv.display()
        );
        venv.join("bin")
    })
}

/// Points the scripts of a moved virtualenv (`aws`, `pip`) at its new place.
fn rewrite_shebangs(venv: &Path, old: &Path) {
    let (old, new) = (old.display().to_string(), venv.display().to_string());
    for entry in std::fs::read_dir(venv.join("bin"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let path = entry.path();
        if let Ok(text) = std::fs::read_to_string(&path)
            && text.starts_with("#!")
            && text.contains(&old)
        {
            std::fs::write(&path, text.replace(&old, &new))
                .unwrap_or_else(|e| panic!("cannot rewrite {}: {e}", path.display()));
        }
    }
}

fn importable(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import awscli"])
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
