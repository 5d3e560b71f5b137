//! `snapferry graph` through the real binary: DOT and Mermaid output of the
//! example plans are golden files, and no snapshot → domain edge appears.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

fn graph(plan: &str, format: &str) -> String {
    let out = Command::cargo_bin("snapferry")
        .unwrap()
        .current_dir(root())
        .env("NO_COLOR", "1")
        .args(["graph", "-f", plan, "--format", format])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn demo_graph_dot_and_mermaid() {
    let dot = graph("plans/demo.yaml", "dot");
    insta::assert_snapshot!("demo_dot", dot);
    insta::assert_snapshot!("demo_mermaid", graph("plans/demo.yaml", "mermaid"));
}

#[test]
fn fleet_graph_has_no_snapshot_to_domain_edge() {
    let dot = graph("plans/fleet.yaml", "dot");
    for line in dot.lines().filter(|l| l.contains("->")) {
        assert!(
            !(line.contains("\"snapshot/") && line.contains("-> \"domain/")),
            "{line}"
        );
    }
    assert_eq!(
        dot.matches("\"role/fleet-snapshot-role\" -> ").count(),
        1,
        "one role, one edge to the policy"
    );
    insta::assert_snapshot!("fleet_dot", dot);
}

#[test]
fn graph_of_an_invalid_plan_fails_with_the_diagnostics() {
    let out = Command::cargo_bin("snapferry")
        .unwrap()
        .current_dir(root())
        .env("NO_COLOR", "1")
        .args(["graph", "-f", "tests/malformed/same-source-and-target.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("[tests/malformed/same-source-and-target.yaml:10:11]"),
        "{stderr}"
    );
}
