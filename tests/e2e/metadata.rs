//! The copy works like its source (issue #17): a source with two composable templates (one
//! making a data stream), a component template, an ingest pipeline, an ISM policy managing its
//! indices, a stored script and a dashboard with its visualization and index pattern replicates
//! with `metadata: true` and `dashboards: true`. On the target, a document written through the
//! pipeline into tomorrow's index gets the template's mapping, the restored data stream rolls
//! over, the restored indices are managed by the policy again (ISM explain), and the saved
//! objects export identically. A second apply makes no mutating call; a template changed on the
//! source is exactly one `~` object in `plan`.

use crate::common;

use common::{World, index, source_domain};
use http::Method;
use serde_json::{Value, json};
use snapferry_aws::cluster_meta::{Capabilities, saved_object_core};
use snapferry_sandbox::{SandboxConfig, SeedData};

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
snapshot:
  indices: ["*", ".ds-metrics-*"]
restore:
  indices: ["*", ".ds-metrics-*"]
metadata: true
dashboards: true
"#;

fn seed() -> SeedData {
    serde_json::from_value(json!({
        "data_streams": [{"name": "metrics-app", "generations": 1, "generate": 20}],
        "component_templates": {
            "base": {"template": {"mappings": {"properties": {"@timestamp": {"type": "date"}, "host": {"type": "keyword"}}}}}
        },
        "index_templates": {
            "logs": {"index_patterns": ["logs-*"], "priority": 10,
                     "template": {"mappings": {"properties": {"level": {"type": "keyword"}, "message": {"type": "text"}}}}},
            "metrics": {"index_patterns": ["metrics-*"], "priority": 20, "data_stream": {}, "composed_of": ["base"]}
        },
        "pipelines": {
            "normalize": {"description": "lower-case the level, mark the document",
                          "processors": [{"lowercase": {"field": "level"}}, {"set": {"field": "ingested", "value": true}}]}
        },
        "scripts": {
            "by-priority": {"script": {"lang": "painless", "source": "doc['priority'].value * params.factor"}}
        },
        "ism_policies": {
            "logs-retention": {"policy": {"description": "delete old logs", "default_state": "hot",
                "states": [
                    {"name": "hot", "actions": [], "transitions": [{"state_name": "delete", "conditions": {"min_index_age": "30d"}}]},
                    {"name": "delete", "actions": [{"delete": {}}], "transitions": []}
                ]}}
        },
        "saved_objects": {"global": [
            {"type": "index-pattern", "id": "ip-logs", "attributes": {"title": "logs-*", "timeFieldName": "@timestamp"}, "references": []},
            {"type": "visualization", "id": "vis-errors", "attributes": {"title": "Errors", "visState": "{}"},
             "references": [{"name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern", "id": "ip-logs"}]},
            {"type": "dashboard", "id": "dash-ops", "attributes": {"title": "Ops"},
             "references": [{"name": "panel_0", "type": "visualization", "id": "vis-errors"}]}
        ]}
    }))
    .expect("a valid seed")
}

fn world() -> World {
    let mut config = SandboxConfig {
        domains: vec![source_domain(
            "shop-prod",
            vec![index("logs-2026.01.01", 40), index("orders", 25)],
        )],
        ..SandboxConfig::default()
    };
    config.seed_data.insert("shop-prod".into(), seed());
    World::start_with(config)
}

fn caps() -> Capabilities {
    Capabilities::of("OpenSearch_2.11".parse().unwrap())
}

fn get(world: &World, domain: &str, path: &str) -> Value {
    let client = world.domain(domain);
    world
        .rt
        .block_on(client.http().send_json::<Value>(Method::GET, path, None))
        .unwrap_or_else(|e| panic!("GET {path} on {domain}: {e}"))
}

/// The saved objects of the global tenant as an import would write them, sorted.
fn saved_objects(world: &World, domain: &str) -> Vec<Value> {
    let client = world.domain(domain);
    let types: Vec<String> = caps().default_saved_object_types();
    let mut objects: Vec<Value> = world
        .rt
        .block_on(client.export_saved_objects(&caps().ui(), None, &types))
        .unwrap()
        .iter()
        .map(|o| json!({"type": o["type"], "id": o["id"], "core": saved_object_core(o)}))
        .collect();
    objects.sort_by_key(|o| o.to_string());
    objects
}

#[test]
fn the_copy_gets_templates_pipelines_policies_scripts_and_dashboards() {
    let world = world();
    // The source's ISM manages its daily index.
    let source = world.domain("shop-prod");
    let refused = world
        .rt
        .block_on(source.ism_set(&caps(), "logs-2026.01.01", Some("logs-retention")))
        .unwrap();
    assert_eq!(refused, None);
    world.plan("snapferry.yaml", PLAN);

    let plan = world.run_ok(&["plan"], 0);
    for line in [
        "  + metadata/shop (create)",
        "      + component_template[base]",
        "      + index_template[logs]",
        "          priority: 10",
        "      + index_template[metrics]",
        "      + pipeline[normalize]",
        "      + script[by-priority]",
        "      + ism_policy[logs-retention]",
        "  + ism_attach/shop (create)",
        "      indices: (known after apply)",
        "  + dashboards/shop (create)",
        "      global.dashboard.create: 1",
        "      global.index-pattern.create: 1",
        "      global.visualization.create: 1",
    ] {
        assert!(plan.contains(line), "missing {line:?} in:\n{plan}");
    }

    // `plan --json` names the new kinds as docs/schemas/plan-output.schema.json allows.
    let schema: Value = serde_json::from_slice(
        &std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../docs/schemas/plan-output.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let out = world.run(&["plan", "--json"]);
    let json: Value = serde_json::from_slice(&out.stdout).expect("plan --json prints JSON");
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");

    world.run_ok(&["apply", "--auto-approve"], 0);

    // Tomorrow's index, written through the pipeline, takes the template's mapping.
    let target = world.domain("shop-copy");
    let written = world.rt.block_on(target.http().send_json::<Value>(
        Method::POST,
        "/logs-2026.01.02/_doc?pipeline=normalize&refresh=true",
        Some(&json!({"level": "ERROR", "message": "disk full"})),
    ));
    let written = written.expect("a write through the copied pipeline");
    assert_eq!(written["result"], "created", "{written}");
    let mapping = get(&world, "shop-copy", "/logs-2026.01.02");
    assert_eq!(
        mapping["logs-2026.01.02"]["mappings"]["properties"]["level"]["type"], "keyword",
        "{mapping}"
    );
    let found = get(&world, "shop-copy", "/logs-2026.01.02/_search");
    assert_eq!(
        found["hits"]["hits"][0]["_source"],
        json!({"level": "error", "message": "disk full", "ingested": true})
    );

    // The restored data stream rolls over to a new backing index.
    let rolled = world
        .rt
        .block_on(
            target
                .http()
                .send_json::<Value>(Method::POST, "/metrics-app/_rollover", None),
        )
        .expect("the restored data stream rolls over with its template");
    assert_eq!(rolled["rolled_over"], true, "{rolled}");
    assert_eq!(rolled["new_index"], ".ds-metrics-app-000002", "{rolled}");

    // The restored daily index is managed by the copied policy; the other was not on the source.
    let managed = world
        .rt
        .block_on(target.ism_managed(
            &caps(),
            &["logs-2026.01.01".to_owned(), "orders".to_owned()],
        ))
        .unwrap();
    assert_eq!(
        managed.get("logs-2026.01.01"),
        Some(&Some("logs-retention".to_owned()))
    );
    assert_eq!(managed.get("orders"), Some(&None));

    // The stored script and the dashboards' objects are there, exported identically.
    let script = get(&world, "shop-copy", "/_scripts/by-priority");
    assert_eq!(
        script["script"]["source"],
        "doc['priority'].value * params.factor"
    );
    let copied = saved_objects(&world, "shop-copy");
    assert_eq!(copied.len(), 3, "{copied:?}");
    assert_eq!(copied, saved_objects(&world, "shop-prod"));

    // A second apply changes nothing.
    world.sandbox().reset_log();
    let plan = world.run_ok(&["plan", "--detailed-exitcode"], 0);
    assert!(plan.contains("      = index_template[logs]"), "{plan}");
    world.run_ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        world.mutating_calls(),
        vec![],
        "a second apply changed something"
    );

    // A template changed on the source is one `~` object in plan.
    world
        .rt
        .block_on(source.http().send(
            Method::PUT,
            "/_index_template/logs",
            Some(&json!({"index_patterns": ["logs-*"], "priority": 11,
                "template": {"mappings": {"properties": {"level": {"type": "keyword"}, "message": {"type": "text"}}}}})),
        ))
        .unwrap();
    let plan = world.run_ok(&["plan", "--detailed-exitcode"], 2);
    let changed: Vec<&str> = plan
        .lines()
        .filter(|l| {
            l.starts_with("      ~ ") || l.starts_with("      + ") || l.starts_with("      - ")
        })
        .collect();
    assert_eq!(changed, vec!["      ~ index_template[logs]"], "{plan}");
    assert!(plan.contains("          priority: 10 → 11"), "{plan}");
    assert!(plan.contains("  ~ metadata/shop (update)"), "{plan}");
    assert!(plan.contains("1 to update"), "{plan}");
}
