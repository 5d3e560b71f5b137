//! `snapferry validate` through the real binary: the example plans pass with
//! exit 0, the `--json` document has its documented shape, and a missing file
//! is an error that names it.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

fn snapferry(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("snapferry").expect("binary");
    cmd.current_dir(dir).env("NO_COLOR", "1");
    cmd
}

#[test]
fn example_plans_validate() {
    for name in [
        "demo",
        "vpc-socks",
        "cross-region",
        "cross-account",
        "fleet",
        "staging-refresh",
    ] {
        let file = format!("plans/{name}.yaml");
        let out = snapferry(&root())
            .args(["validate", "-f", &file])
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.starts_with(&format!("{file} is valid: ")),
            "{stdout}"
        );
        assert!(stdout.contains("fingerprint sha256:"), "{stdout}");

        let out = snapferry(&root())
            .args(["validate", "--json", "-f", &file])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({"format_version": 1, "valid": true, "errors": []})
        );
    }
}

#[test]
fn default_plan_file_is_snapferry_yaml_in_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = snapferry(dir.path()).arg("validate").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("cannot read plan file snapferry.yaml"),
        "{stderr}"
    );
    assert!(stderr.contains("pass the plan with -f PLAN"), "{stderr}");

    std::fs::copy(
        root().join("plans/demo.yaml"),
        dir.path().join("snapferry.yaml"),
    )
    .unwrap();
    let out = snapferry(dir.path()).arg("validate").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("snapferry.yaml is valid: 1 replication(s), 8 steps")
    );
}

#[test]
fn json_reports_every_error_with_position() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        "version: 1\nname: shop\nregion: us-east-1\nbucket: { name: ab }\nsource: { domain: shop-prod }\ntarget: { domain: shop-prod }\n",
    )
    .unwrap();
    let out = snapferry(dir.path())
        .args(["validate", "--json", "-f", "p.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.is_empty(), "--json keeps stderr quiet");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({
            "format_version": 1,
            "valid": false,
            "errors": [
                {
                    "file": "p.yaml", "line": 4, "column": 17,
                    "message": "invalid bucket name \"ab\": it has 2 character(s); a bucket name has 3 to 63",
                    "help": "use 3-63 characters of a-z, 0-9, `.` and `-`, starting and ending with a letter or digit, not an IP address, without AWS's reserved prefixes (xn--, sthree-, amzn-s3-demo-) and suffixes (-s3alias, --ol-s3, .mrap, --x-s3, --table-s3)"
                },
                {
                    "file": "p.yaml", "line": 6, "column": 19,
                    "message": "source and target are the same domain \"shop-prod\"",
                    "help": "give the target a new domain name; snapferry never restores onto its own source"
                }
            ]
        })
    );
}

#[test]
fn missing_file_in_json_mode_has_null_position() {
    let dir = tempfile::tempdir().unwrap();
    let out = snapferry(dir.path())
        .args(["validate", "--json", "-f", "nope.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["errors"][0]["file"], "nope.yaml");
    assert_eq!(doc["errors"][0]["line"], serde_json::Value::Null);
    assert!(
        doc["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("cannot read plan file nope.yaml: ")
    );
}
