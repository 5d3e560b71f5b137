//! Hostile plans through the real binary (issue #15): a 5 MB plan of 100,000 unknown keys is
//! refused with a capped report, and 100,000 nested brackets with the depth limit. How fast
//! is measured by `crates/snapferry-plan/benches/validate.rs` (figures in
//! `docs/performance.md`); here only what the user sees is checked.

use assert_cmd::Command;

const HEAD: &str = "version: 1
name: shop
region: us-east-1
bucket:
  name: acme-snapshots
source:
  domain: shop-prod
target:
  domain: shop-copy
";

fn validate(text: &str, json: bool) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.yaml"), text).unwrap();
    let mut args = vec!["validate", "-f", "big.yaml"];
    if json {
        args.push("--json");
    }
    let out = Command::cargo_bin("snapferry")
        .unwrap()
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .args(&args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The plan of the issue: 100,000 unknown keys, 5 MB.
pub fn flood() -> String {
    let mut text = HEAD.to_owned();
    for i in 0..100_000 {
        text.push_str(&format!(
            "unknown_key_{i:06}: a value of twenty-nine chars.\n"
        ));
    }
    text
}

#[test]
fn a_5_mb_plan_of_100_000_unknown_keys_gets_a_capped_report() {
    let text = flood();
    assert!(text.len() > 5_000_000, "{} bytes", text.len());

    let (code, stdout, stderr) = validate(&text, false);
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("big.yaml: the plan has 100,000 problems"),
        "{}",
        &stderr[..stderr.len().min(2000)]
    );
    assert_eq!(stderr.matches("unknown key `unknown_key_").count(), 20);
    assert!(stderr.contains("unknown key `unknown_key_000019`"));
    assert!(!stderr.contains("unknown_key_000020`"));
    assert!(
        stderr.contains("… and 99,980 more"),
        "{}",
        &stderr[stderr.len().saturating_sub(600)..]
    );
    assert!(
        stderr.len() < 20_000,
        "the report is {} bytes",
        stderr.len()
    );

    let (code, stdout, _) = validate(&text, true);
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["errors"].as_array().unwrap().len(), 20);
    assert_eq!(doc["omitted"], 99_980);
    assert_eq!(doc["errors"][0]["line"], 10);
    assert_eq!(doc["errors"][19]["line"], 29);
}

#[test]
fn one_hundred_thousand_nested_brackets_hit_the_depth_limit() {
    for nested in [
        format!(
            "{HEAD}restore: {{ indices: {}{} }}\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
        format!(
            "{HEAD}restore:\n  indices:\n    {}x\n",
            "- ".repeat(100_000)
        ),
    ] {
        let (code, _, stderr) = validate(&nested, false);
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.contains("the plan has 1 problem"), "{stderr}");
        assert!(
            stderr.contains("values are nested more than 64 levels deep"),
            "{stderr}"
        );
    }
}
