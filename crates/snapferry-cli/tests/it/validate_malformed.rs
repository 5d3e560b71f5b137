//! The corpus of malformed plans under `tests/malformed/`, run through the real
//! binary: each must exit 1 and name the file, line and column with a help
//! line; the full output (human and `--json`) is snapshot-tested so a change
//! in wording or position shows up in review.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

fn run(root: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("snapferry")
        .expect("the snapferry binary is built by cargo test")
        .current_dir(root)
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("snapferry runs");
    (
        out.status.code().expect("exited normally"),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

#[test]
fn every_malformed_plan_fails_with_position_and_help() {
    let root = workspace_root();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("tests/malformed"))
        .expect("tests/malformed exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 45,
        "the corpus has {} plans, at least 45 expected",
        files.len()
    );

    for file in files {
        let stem = file.file_stem().unwrap().to_str().unwrap().to_owned();
        let rel = format!("tests/malformed/{stem}.yaml");

        let (code, stdout, stderr) = run(&root, &["validate", "-f", &rel]);
        assert_eq!(code, 1, "{rel}: exit code\n{stderr}");
        assert!(stdout.is_empty(), "{rel}: nothing on stdout, got {stdout}");
        assert!(
            stderr.contains(&format!("[{rel}:")),
            "{rel}: no file:line:col in\n{stderr}"
        );
        assert!(stderr.contains("help:"), "{rel}: no help in\n{stderr}");
        // The plan's words, never the parser's or serde's.
        for foreign in [
            "invalid type",
            "expected struct",
            "a YAML tag starting with",
            "untagged",
            "variant",
            "deserializ",
            "cannot be read",
        ] {
            assert!(!stderr.contains(foreign), "{rel}: {foreign:?} in\n{stderr}");
        }

        let (json_code, json_out, _) = run(&root, &["validate", "--json", "-f", &rel]);
        assert_eq!(json_code, 1, "{rel}: --json exit code");
        let doc: serde_json::Value = serde_json::from_str(&json_out).expect("--json prints JSON");
        assert_eq!(doc["format_version"], 1);
        assert_eq!(doc["valid"], false);
        let errors = doc["errors"].as_array().expect("errors list");
        assert!(!errors.is_empty(), "{rel}: --json lists no error");
        for e in errors {
            assert_eq!(e["file"], rel.as_str());
            assert!(
                e["line"].as_u64().is_some_and(|l| l >= 1),
                "{rel}: line in {e}"
            );
            assert!(
                e["column"].as_u64().is_some_and(|c| c >= 1),
                "{rel}: column in {e}"
            );
            assert!(
                e["help"].as_str().is_some_and(|h| !h.is_empty()),
                "{rel}: help in {e}"
            );
        }

        let pretty = serde_json::to_string_pretty(&doc).unwrap();
        insta::assert_snapshot!(
            stem.as_str(),
            format!("exit code: {code}\n{stderr}\n--- --json ---\n{pretty}\n")
        );
    }
}
