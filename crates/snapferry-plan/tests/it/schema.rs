//! `docs/plan.schema.json` is the schema editors load through the
//! `# yaml-language-server: $schema=` line of every plan; it must match the
//! model. Regenerate with `SNAPFERRY_UPDATE_SCHEMA=1 cargo test -p snapferry-plan --test it schema`.

use std::path::PathBuf;

#[test]
fn committed_schema_is_up_to_date() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/plan.schema.json");
    let fresh = serde_json::to_string_pretty(&snapferry_plan::json_schema()).unwrap() + "\n";
    if std::env::var_os("SNAPFERRY_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "docs/plan.schema.json is out of date: run SNAPFERRY_UPDATE_SCHEMA=1 cargo test -p snapferry-plan --test it schema"
    );
}

#[test]
fn schema_denies_unknown_keys_and_carries_doc_comments() {
    let schema = snapferry_plan::json_schema();
    assert_eq!(schema["title"], "snapferry plan");
    assert_eq!(schema["additionalProperties"], false);
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["version", "name", "region", "bucket"]);
    let bucket = &schema["$defs"]["RawBucket"];
    assert_eq!(bucket["additionalProperties"], false);
    assert!(
        bucket["properties"]["create"]["description"]
            .as_str()
            .unwrap()
            .contains("Default false")
    );
}
