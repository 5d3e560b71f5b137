//! `docs/graph.md` shows the step graphs of the example plans as Mermaid
//! blocks; each block must be exactly what `snapferry graph --format mermaid`
//! prints for its plan, so the picture in the docs cannot drift from the code.
//! Each block follows a marker line `<!-- snapferry graph -f PLAN --format mermaid -->`.
//! Regenerate with `SNAPFERRY_UPDATE_DOCS=1 cargo test -p snapferry-cli --test it docs_graph`.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The plans whose graphs `docs/graph.md` shows, in the order it shows them.
const PLANS: &[&str] = &["plans/demo.yaml", "plans/fleet.yaml"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

fn marker(plan: &str) -> String {
    format!("<!-- snapferry graph -f {plan} --format mermaid -->")
}

/// What the real binary prints for the plan.
fn mermaid(plan: &str) -> String {
    let out = Command::cargo_bin("snapferry")
        .unwrap()
        .current_dir(root())
        .env("NO_COLOR", "1")
        .args(["graph", "-f", plan, "--format", "mermaid"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "snapferry graph -f {plan} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The byte range of the body of the ```mermaid block right after the plan's
/// marker line, or why there is none.
fn block(doc: &str, plan: &str) -> Result<std::ops::Range<usize>, String> {
    let marker = marker(plan);
    let at = doc
        .find(&format!("{marker}\n"))
        .ok_or_else(|| format!("docs/graph.md has no line `{marker}`"))?;
    let fence = "```mermaid\n";
    let after_marker = at + marker.len() + 1;
    if !doc[after_marker..].starts_with(fence) {
        return Err(format!("`{marker}` must be followed by a ```mermaid line"));
    }
    let start = after_marker + fence.len();
    let len = doc[start..]
        .find("```\n")
        .filter(|&i| i == 0 || doc[start + i - 1..].starts_with('\n'))
        .ok_or_else(|| format!("the mermaid block after `{marker}` is not closed"))?;
    Ok(start..start + len)
}

#[test]
fn graph_doc_embeds_what_snapferry_graph_prints() {
    let path = root().join("docs/graph.md");
    let mut doc = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let update = std::env::var_os("SNAPFERRY_UPDATE_DOCS").is_some();
    let mut stale = Vec::new();
    for plan in PLANS {
        let fresh = mermaid(plan);
        assert!(fresh.starts_with("flowchart"), "{plan}: {fresh}");
        let range = block(&doc, plan).unwrap_or_else(|e| panic!("{e}"));
        if doc[range.clone()] != fresh {
            if update {
                doc.replace_range(range, &fresh);
            } else {
                stale.push(*plan);
            }
        }
    }
    if update {
        std::fs::write(&path, &doc).unwrap();
    }
    assert!(
        stale.is_empty(),
        "docs/graph.md is out of date for {stale:?}: run SNAPFERRY_UPDATE_DOCS=1 cargo test -p snapferry-cli --test it docs_graph"
    );
}

#[test]
fn block_finder_refuses_a_missing_or_unclosed_block() {
    let plan = "plans/demo.yaml";
    let good = format!("text\n{}\n```mermaid\nflowchart LR\n```\n", marker(plan));
    let range = block(&good, plan).unwrap();
    assert_eq!(&good[range], "flowchart LR\n");
    assert!(
        block("no marker here\n", plan)
            .unwrap_err()
            .contains("has no line")
    );
    let unfenced = format!("{}\nflowchart LR\n", marker(plan));
    assert!(
        block(&unfenced, plan)
            .unwrap_err()
            .contains("must be followed")
    );
    let unclosed = format!("{}\n```mermaid\nflowchart LR\n", marker(plan));
    assert!(block(&unclosed, plan).unwrap_err().contains("not closed"));
}
