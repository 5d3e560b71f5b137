//! A pinned PyPI package in its own virtualenv under `target/test-tools/`, installed once per
//! machine: how the suite gets moto, check-jsonschema and the AWS CLI with only `python3` (and
//! its `venv` module) as a prerequisite. A missing prerequisite or an install that fails is a
//! test failure saying what to do — never a silent skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One Python tool the suite installs.
pub struct PyTool {
    /// The virtualenv's directory name under `target/test-tools/` (the version included, so a
    /// bump installs afresh).
    pub dir: String,
    /// What pip installs, pinned: `moto[server]==5.2.5`.
    pub requirement: String,
    /// A module whose import proves the install usable: `moto.server`.
    pub import: &'static str,
    /// What the tool is for, for the message when python3 is missing.
    pub needed_for: &'static str,
}

impl PyTool {
    /// The virtualenv holding the tool, installing it first if needed. Two test binaries may
    /// install at once: each builds its own staging copy and the first rename wins.
    pub fn install(&self) -> PathBuf {
        let venv = crate::target_dir().join("test-tools").join(&self.dir);
        let python = venv.join("bin").join("python");
        if python.exists() && self.importable(&python) {
            return venv;
        }
        let staging = venv.with_extension(format!("partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        run_or_explain(
            Command::new("python3").args(["-m", "venv"]).arg(&staging),
            &format!(
                "python3 with its venv module is needed to install {} for {}; install Python 3 \
                 (on Debian: apt-get install python3 python3-venv)",
                self.requirement, self.needed_for
            ),
        );
        run_or_explain(
            Command::new(staging.join("bin").join("pip")).args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                &self.requirement,
            ]),
            &format!(
                "pip could not install {} from PyPI; the test suite needs the package registry \
                 (pypi.org or a mirror set with PIP_INDEX_URL) the first time it runs",
                self.requirement
            ),
        );
        let _ = std::fs::remove_dir_all(&venv);
        if std::fs::rename(&staging, &venv).is_err() {
            // Another test binary finished the same install meanwhile: use that one.
            let _ = std::fs::remove_dir_all(&staging);
        } else {
            rewrite_shebangs(&venv, &staging);
        }
        assert!(
            self.importable(&python),
            "{} was installed into {} but `import {}` fails",
            self.requirement,
            venv.display(),
            self.import
        );
        venv
    }

    fn importable(&self, python: &Path) -> bool {
        Command::new(python)
            .args(["-c", &format!("import {}", self.import)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// Points the scripts of a moved virtualenv (`aws`, `pip`) at its new place: a venv's scripts
/// name its python by absolute path.
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
