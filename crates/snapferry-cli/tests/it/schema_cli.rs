//! `snapferry schema` prints exactly the committed `docs/plan.schema.json`.

use std::path::Path;

use assert_cmd::Command;

#[test]
fn schema_command_prints_the_committed_schema() {
    let out = Command::cargo_bin("snapferry")
        .unwrap()
        .arg("schema")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/plan.schema.json"),
    )
    .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), committed);
}
