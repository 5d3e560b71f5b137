//! The machine formats (`--json` of validate, plan and status) checked against the JSON Schemas
//! the project ships in `docs/schemas/`, on real runs: no state, blocked steps, after an apply.

use crate::common;

use common::{World, index, source_domain};

fn validator(name: &str) -> jsonschema::Validator {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/schemas")
        .join(name);
    let schema: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{name} does not compile: {e}"))
}

fn check(validator: &jsonschema::Validator, stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    let value: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"));
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{value:#}");
    value
}

const PLAN: &str = r#"
version: 1
name: shop
region: us-east-1
bucket:
  name: shop-snapshots
  create: true
source:
  domain: shop-prod
target:
  domain: shop-copy
"#;

#[test]
fn plan_status_and_validate_json_follow_their_schemas() {
    let world = World::start(
        vec![source_domain("shop-prod", vec![index("orders", 200)])],
        vec![],
    );
    world.plan("snapferry.yaml", PLAN);
    world.plan("broken.yaml", "version: 1\nname: Shop\nregoin: x\n");
    let plan = validator("plan-output.schema.json");
    let status = validator("status-output.schema.json");
    let validate = validator("validate-output.schema.json");

    let out = world.run(&["validate", "--json"]);
    let v = check(&validate, &out.stdout);
    assert_eq!(v["valid"], true);
    let out = world.run(&["validate", "--json", "-f", "broken.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let v = check(&validate, &out.stdout);
    assert_eq!(v["valid"], false);
    assert!(v["errors"].as_array().unwrap().len() >= 2, "{v:#}");

    let out = world.run(&["status", "--json"]);
    let v = check(&status, &out.stdout);
    assert_eq!(v["state"], serde_json::Value::Null);

    let out = world.run(&["plan", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v = check(&plan, &out.stdout);
    assert_eq!(v["summary"]["create"], 8);
    assert_eq!(v["state"], serde_json::Value::Null);
    let restore = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "restore/shop")
        .unwrap();
    assert_eq!(
        restore["change"]["fields"][0]["after"],
        serde_json::json!({"unknown": true})
    );

    world.run_ok(&["apply", "--auto-approve"], 0);
    let out = world.run(&["plan", "--json"]);
    let v = check(&plan, &out.stdout);
    assert_eq!(v["summary"]["unchanged"], 8);
    assert!(
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["recorded"] == "done")
    );
    let out = world.run(&["status", "--json"]);
    let v = check(&status, &out.stdout);
    assert_eq!(v["state"]["nodes"]["snapshot/shop"]["status"], "done");

    // A blocked step is part of the format too.
    world.plan(
        "missing.yaml",
        &PLAN.replace("domain: shop-prod", "domain: shop-prd"),
    );
    let out = world.run(&["plan", "--json", "-f", "missing.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let v = check(&plan, &out.stdout);
    assert_eq!(v["summary"]["blocked"], 3);
}
