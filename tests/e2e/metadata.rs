//! The copy works like its source (issue #17): a source with two composable templates (one
//! making a data stream), a component template, an ingest pipeline, an ISM policy managing its
//! indices, a stored script and a dashboard with its visualization and index pattern replicates
//! with `metadata: true` and `dashboards: true`. On the target, a document written through the
//! pipeline into tomorrow's index gets the template's mapping, the restored data stream rolls
//! over, the restored indices are managed by the policy again (ISM explain), and the saved
//! objects export identically. A second apply makes no mutating call; a template changed on the
//! source is exactly one `~` object in `plan`.
//!
//! Across versions (item 3): an Elasticsearch 7.10 source (a legacy and a composable template,
//! Open Distro ISM under `_opendistro/_ism`, Kibana under `/_plugin/kibana`) gives an OpenSearch
//! 2.11 copy the same objects, written only through `_plugins/_ism` and Dashboards; a Kibana
//! object the copy's importer would refuse blocks the plan by name and apply changes nothing.
//! Tenants (item 2): on domains with fine-grained access control each tenant's objects land in
//! the same tenant of the copy, and a custom tenant for a target without it is refused in plan.

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

// ---- Elasticsearch source → OpenSearch target (issue #17 item 3) ----

/// An Elasticsearch 7.10 source (Open Distro's ISM under `_opendistro`, Kibana under
/// `/_plugin/kibana`) copied into an OpenSearch 2.11 target the run creates.
const ES_PLAN: &str = r#"
version: 1
name: legacy
region: us-east-1
bucket:
  name: legacy-snapshots
  create: true
source:
  domain: old-prod
target:
  domain: new-copy
  overrides:
    engine_version: OpenSearch_2.11
metadata: true
dashboards: true
"#;

fn es_seed() -> serde_json::Map<String, Value> {
    json!({
        "legacy_templates": {
            "logs": {"index_patterns": ["logs-*"], "order": 1,
                     "settings": {"index": {"number_of_shards": "2"}},
                     "mappings": {"properties": {"level": {"type": "keyword"}, "message": {"type": "text"}}}}
        },
        "component_templates": {
            "base": {"template": {"mappings": {"properties": {"@timestamp": {"type": "date"}}}}}
        },
        "index_templates": {
            "audit": {"index_patterns": ["audit-*"], "priority": 5, "composed_of": ["base"],
                      "template": {"mappings": {"properties": {"actor": {"type": "keyword"}}}}}
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
            {"type": "search", "id": "s-errors", "attributes": {"title": "Errors", "columns": ["message"]},
             "references": [{"name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern", "id": "ip-logs"}]},
            {"type": "visualization", "id": "vis-errors", "attributes": {"title": "Errors over time", "visState": "{}"},
             "references": [{"name": "search_0", "type": "search", "id": "s-errors"}]},
            {"type": "dashboard", "id": "dash-ops", "attributes": {"title": "Ops"},
             "references": [{"name": "panel_0", "type": "visualization", "id": "vis-errors"}]}
        ]}
    })
    .as_object()
    .cloned()
    .unwrap()
}

fn es_world(extra: serde_json::Map<String, Value>) -> World {
    let mut source = source_domain(
        "old-prod",
        vec![index("logs-2026.01.01", 40), index("orders", 25)],
    );
    source.engine_version = "Elasticsearch_7.10".into();
    let mut config = SandboxConfig {
        domains: vec![source],
        ..SandboxConfig::default()
    };
    let mut seed = es_seed();
    for (family, objects) in extra {
        let merged = seed.entry(family).or_insert_with(|| json!({}));
        for (k, v) in objects.as_object().unwrap() {
            match (merged.get_mut(k), v) {
                (Some(Value::Array(have)), Value::Array(more)) => have.extend(more.clone()),
                _ => merged[k] = v.clone(),
            }
        }
    }
    let seed: SeedData = serde_json::from_value(Value::Object(seed)).expect("a valid seed");
    config.seed_data.insert("old-prod".into(), seed);
    World::start_with(config)
}

fn es_caps() -> Capabilities {
    Capabilities::of("Elasticsearch_7.10".parse().unwrap())
}

/// The global tenant's saved objects of a domain through its own UI's export, as an import
/// writes them, sorted.
fn exported(world: &World, domain: &str, caps: &Capabilities) -> Vec<Value> {
    let client = world.domain(domain);
    let types = caps.default_saved_object_types();
    let mut objects: Vec<Value> = world
        .rt
        .block_on(client.export_saved_objects(&caps.ui(), None, &types))
        .unwrap()
        .iter()
        .map(|o| json!({"type": o["type"], "id": o["id"], "core": saved_object_core(o)}))
        .collect();
    objects.sort_by_key(|o| o.to_string());
    objects
}

#[test]
fn an_elasticsearch_source_gives_an_opensearch_copy_its_templates_policies_and_kibana_objects() {
    let world = es_world(serde_json::Map::new());
    // The source's ISM (Open Distro, `_opendistro/_ism`) manages its daily index.
    let source = world.domain("old-prod");
    let refused = world
        .rt
        .block_on(source.ism_set(&es_caps(), "logs-2026.01.01", Some("logs-retention")))
        .unwrap();
    assert_eq!(refused, None);
    world.sandbox().reset_log();
    world.plan("snapferry.yaml", ES_PLAN);

    let plan = world.run_ok(&["plan"], 0);
    for line in [
        "  + metadata/legacy (create)",
        "      + component_template[base]",
        "      + index_template[audit]",
        "      + legacy_template[logs]",
        "          order: 1",
        "      + pipeline[normalize]",
        "      + script[by-priority]",
        "      + ism_policy[logs-retention]",
        "  + ism_attach/legacy (create)",
        "  + dashboards/legacy (create)",
        "      global.dashboard.create: 1",
        "      global.index-pattern.create: 1",
        "      global.search.create: 1",
        "      global.visualization.create: 1",
    ] {
        assert!(plan.contains(line), "missing {line:?} in:\n{plan}");
    }
    world.run_ok(&["apply", "--auto-approve"], 0);

    // Each side was spoken to in its own engine's paths: Elasticsearch answers `_plugins` and
    // `_dashboards` with "no handler found" (400) and OpenSearch redirects `/_plugin/kibana`
    // (302), so no such answer means no request went to the other engine's paths; the target
    // was written through `_plugins/_ism` and Dashboards only, never the deprecated
    // `_opendistro` aliases OpenSearch still answers.
    let log = world.sandbox().request_log();
    let data: Vec<_> = log.iter().filter(|r| r.service == "es-data").collect();
    let line =
        |r: &&snapferry_sandbox::LoggedRequest| format!("{} {} {}", r.status, r.method, r.path);
    let astray: Vec<String> = data
        .iter()
        .filter(|r| r.status == 400 || r.status == 302)
        .map(line)
        .collect();
    assert_eq!(astray, Vec::<String>::new());
    let writes: Vec<String> = data.iter().filter(|r| r.mutating).map(line).collect();
    for wanted in [
        "201 PUT /_plugins/_ism/policies/logs-retention",
        "200 POST /_plugins/_ism/add/logs-2026.01.01",
        "200 POST /_dashboards/api/saved_objects/_import?overwrite=false",
    ] {
        assert!(
            writes.iter().any(|w| w == wanted),
            "no {wanted:?} in {writes:#?}"
        );
    }
    assert!(
        !writes.iter().any(|w| w.contains("/_opendistro/")),
        "{writes:#?}"
    );
    for read in [
        "GET /_opendistro/_ism/policies",
        "POST /_plugin/kibana/api/saved_objects/_export",
    ] {
        assert!(
            data.iter()
                .any(|r| format!("{} {}", r.method, r.path).starts_with(read)),
            "the source was not read with {read:?}"
        );
    }

    // Tomorrow's index takes the legacy template's mapping and settings; the pipeline works.
    let target = world.domain("new-copy");
    let written = world
        .rt
        .block_on(target.http().send_json::<Value>(
            Method::POST,
            "/logs-2026.01.02/_doc?pipeline=normalize&refresh=true",
            Some(&json!({"level": "ERROR", "message": "disk full"})),
        ))
        .expect("a write through the copied pipeline");
    assert_eq!(written["result"], "created", "{written}");
    let created = get(&world, "new-copy", "/logs-2026.01.02");
    assert_eq!(
        created["logs-2026.01.02"]["mappings"]["properties"]["level"]["type"], "keyword",
        "{created}"
    );
    assert_eq!(
        created["logs-2026.01.02"]["settings"]["index"]["number_of_shards"], "2",
        "{created}"
    );
    let found = get(&world, "new-copy", "/logs-2026.01.02/_search");
    assert_eq!(
        found["hits"]["hits"][0]["_source"],
        json!({"level": "error", "message": "disk full", "ingested": true})
    );
    // The composable template (with its component) shapes its own indices.
    world
        .rt
        .block_on(target.http().send(
            Method::PUT,
            "/audit-2026.01/_doc/1?refresh=true",
            Some(&json!({"actor": "ops", "@timestamp": "2026-01-02T00:00:00Z"})),
        ))
        .expect("a write into a new audit index");
    let audit = get(&world, "new-copy", "/audit-2026.01");
    let properties = &audit["audit-2026.01"]["mappings"]["properties"];
    assert_eq!(properties["actor"]["type"], "keyword", "{audit}");
    assert_eq!(properties["@timestamp"]["type"], "date", "{audit}");

    // The restored daily index is managed again, by the copied policy, through `_plugins/_ism`.
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
    let explained = get(&world, "new-copy", "/_plugins/_ism/explain/logs-2026.01.01");
    assert_eq!(
        explained["logs-2026.01.01"]["index.plugins.index_state_management.policy_id"],
        "logs-retention",
        "{explained}"
    );
    let script = get(&world, "new-copy", "/_scripts/by-priority");
    assert_eq!(
        script["script"]["source"],
        "doc['priority'].value * params.factor"
    );

    // Dashboards exports what Kibana exported.
    let copied = exported(&world, "new-copy", &caps());
    assert_eq!(copied.len(), 4, "{copied:?}");
    assert_eq!(copied, exported(&world, "old-prod", &es_caps()));

    // A second apply changes nothing.
    world.sandbox().reset_log();
    let plan = world.run_ok(&["plan", "--detailed-exitcode"], 0);
    assert!(plan.contains("      = legacy_template[logs]"), "{plan}");
    world.run_ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        world.mutating_calls(),
        vec![],
        "a second apply changed something"
    );
}

#[test]
fn a_kibana_object_the_copy_cannot_take_blocks_the_plan_by_name_and_apply_changes_nothing() {
    // A saved search whose index pattern was deleted in Kibana: Dashboards' importer refuses the
    // whole file for it (`missing_references`), so the plan names it instead.
    let orphan = json!({"saved_objects": {"global": [
        {"type": "search", "id": "s-orphan", "attributes": {"title": "Orphan", "columns": []},
         "references": [{"name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern", "id": "ip-gone"}]}
    ]}});
    let world = es_world(orphan.as_object().cloned().unwrap());
    world.plan("snapferry.yaml", ES_PLAN);
    let plan = world.run_ok(&["plan"], 1);
    assert!(plan.contains("  ! dashboards/legacy (blocked)"), "{plan}");
    assert!(
        plan.contains(
            "      ! global: search s-orphan (\"Orphan\"): it refers to index-pattern ip-gone, \
             which neither domain has (the import would refuse every object); add the type to \
             `dashboards.types` or fix the object on the source\n"
        ),
        "{plan}"
    );
    // The other objects are not named: only what cannot be taken is.
    assert!(!plan.contains("! global: dashboard"), "{plan}");
    let applied = world.run_ok(&["apply", "--auto-approve"], 1);
    assert!(applied.contains("Nothing was changed."), "{applied}");
    assert_eq!(world.mutating_calls(), vec![], "apply changed something");
}

// ---- Tenants on domains with fine-grained access control (issue #17 item 2) ----

/// The identity the e2e runs sign with: the master user of both FGAC domains.
const OPERATOR: &str = "arn:aws:iam::123456789012:user/sandbox";

fn open_policy(domain: &str) -> String {
    format!(
        "{{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Principal: {{AWS: \"*\"}}, \
         Action: \"es:ESHttp*\", Resource: \"arn:aws:es:us-east-1:123456789012:domain/{domain}/*\"}}]}}"
    )
}

/// `shop-prod` with FGAC (master: the operator), an open policy and saved objects in the global
/// tenant and in `team`; with `plain_target`, an existing `shop-copy` without FGAC beside it.
fn tenant_world(plain_target: bool) -> World {
    let mut yaml =
        "domains:\n  - {name: shop-prod, indices: [{name: logs-2026.01.01, generate: 10}]}\n"
            .to_owned();
    if plain_target {
        yaml.push_str("  - {name: shop-copy, indices: []}\n");
    }
    yaml.push_str(&format!(
        "domain_security:\n  shop-prod:\n    access_policy: {}\n    fine_grained_access_control: {{master_user_arn: \"{OPERATOR}\"}}\n",
        open_policy("shop-prod")
    ));
    let mut config = SandboxConfig::from_yaml_str(&yaml).expect("config");
    let seed: SeedData = serde_json::from_value(json!({
        "saved_objects": {
            "global": [
                {"type": "index-pattern", "id": "ip-logs", "attributes": {"title": "logs-*"}, "references": []},
                {"type": "dashboard", "id": "dash-everyone", "attributes": {"title": "Everyone"}, "references": []}
            ],
            "team": [
                {"type": "index-pattern", "id": "ip-team", "attributes": {"title": "team-*"}, "references": []},
                {"type": "visualization", "id": "vis-team", "attributes": {"title": "Team errors", "visState": "{}"},
                 "references": [{"name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern", "id": "ip-team"}]},
                {"type": "dashboard", "id": "dash-team", "attributes": {"title": "Team"},
                 "references": [{"name": "panel_0", "type": "visualization", "id": "vis-team"}]}
            ]
        }
    }))
    .expect("a valid seed");
    config.seed_data.insert("shop-prod".into(), seed);
    World::start_with(config)
}

fn tenant_plan(tenants: &str) -> String {
    format!(
        "version: 1\nname: shop\nregion: us-east-1\nbucket:\n  name: shop-snapshots\n  create: true\n\
         source:\n  domain: shop-prod\ntarget:\n  domain: shop-copy\n  overrides:\n    \
         fine_grained_access_control: {{ master_user_arn: \"{OPERATOR}\" }}\n\
         dashboards: {{ tenants: {tenants} }}\n"
    )
}

/// One tenant's saved objects on a domain with tenants (`type id`), sorted.
fn tenant_objects(world: &World, domain: &str, tenant: &str) -> Vec<Value> {
    let client = world.domain(domain);
    let types = caps().default_saved_object_types();
    let mut objects: Vec<Value> = world
        .rt
        .block_on(client.export_saved_objects(&caps().ui(), Some(tenant), &types))
        .unwrap_or_else(|e| panic!("export of tenant {tenant} on {domain}: {e}"))
        .iter()
        .map(|o| json!({"type": o["type"], "id": o["id"], "core": saved_object_core(o)}))
        .collect();
    objects.sort_by_key(|o| o.to_string());
    objects
}

/// `type id` of each object, sorted.
fn ids(objects: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = objects
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                o["type"].as_str().unwrap(),
                o["id"].as_str().unwrap()
            )
        })
        .collect();
    ids.sort();
    ids
}

#[test]
fn each_tenant_is_copied_into_the_same_tenant_of_the_fgac_copy() {
    let world = tenant_world(false);
    world.plan("snapferry.yaml", &tenant_plan("[global, team]"));
    let plan = world.run_ok(&["plan"], 0);
    for line in [
        "  + dashboards/shop (create)",
        "      global.dashboard.create: 1",
        "      global.index-pattern.create: 1",
        "      team.dashboard.create: 1",
        "      team.index-pattern.create: 1",
        "      team.visualization.create: 1",
    ] {
        assert!(plan.contains(line), "missing {line:?} in:\n{plan}");
    }
    assert!(!plan.contains("global.visualization"), "{plan}");
    world.run_ok(&["apply", "--auto-approve"], 0);

    let global = tenant_objects(&world, "shop-copy", "global");
    let team = tenant_objects(&world, "shop-copy", "team");
    assert_eq!(
        ids(&global),
        vec!["dashboard dash-everyone", "index-pattern ip-logs"]
    );
    assert_eq!(
        ids(&team),
        vec![
            "dashboard dash-team",
            "index-pattern ip-team",
            "visualization vis-team"
        ]
    );
    // Each tenant exports on the copy what it exports on the source.
    assert_eq!(global, tenant_objects(&world, "shop-prod", "global"));
    assert_eq!(team, tenant_objects(&world, "shop-prod", "team"));
    // One import per tenant (only the copy is imported into).
    let imports: Vec<String> = world
        .sandbox()
        .request_log()
        .into_iter()
        .filter(|r| r.service == "es-data" && r.path.contains("/_import"))
        .map(|r| r.path)
        .collect();
    assert_eq!(imports.len(), 2, "{imports:?}");

    world.sandbox().reset_log();
    world.run_ok(&["plan", "--detailed-exitcode"], 0);
    world.run_ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        world.mutating_calls(),
        vec![],
        "a second apply changed something"
    );
}

#[test]
fn a_custom_tenant_for_a_target_without_fgac_is_refused_in_plan() {
    let world = tenant_world(true);
    world.plan("snapferry.yaml", &tenant_plan("[team]"));
    let text = world.run_ok(&["plan"], 1);
    assert!(text.contains("  ! dashboards/shop (blocked)"), "{text}");
    assert!(
        text.contains(
            "      ! tenant team: the target shop-copy has no fine-grained access control, so no \
             tenants; copy only `global` or turn it on"
        ),
        "{text}"
    );
    let applied = world.run_ok(&["apply", "--auto-approve"], 1);
    assert!(applied.contains("Nothing was changed."), "{applied}");
    assert_eq!(world.mutating_calls(), vec![]);
}

/// The target's internal master's password, given to `snapferry` in its environment only.
const COPY_MASTER_PASSWORD: &str = "Copy-Master-Passw0rd!Meta";

#[test]
fn with_the_security_step_alone_snapferry_may_copy_metadata_and_tenants_into_an_fgac_copy() {
    // The copy's master is an internal user: snapferry signs as the operator, who is let in
    // on the copy only by the `security` step's role — which must allow what the metadata,
    // ISM and dashboards steps do there, or apply fails on a 403 after plan showed the change.
    let mut config = {
        let yaml = format!(
            "domains:\n  - {{name: shop-prod, indices: [{{name: logs-2026.01.01, generate: 10}}]}}\n\
             domain_security:\n  shop-prod:\n    access_policy: {}\n    fine_grained_access_control: {{master_user_arn: \"{OPERATOR}\"}}\n",
            open_policy("shop-prod")
        );
        SandboxConfig::from_yaml_str(&yaml).expect("config")
    };
    let mut seed = seed();
    let tenant_seed: SeedData = serde_json::from_value(json!({"saved_objects": {"team": [
        {"type": "index-pattern", "id": "ip-team", "attributes": {"title": "team-*"}, "references": []}
    ]}}))
    .expect("a valid seed");
    seed.saved_objects.extend(tenant_seed.saved_objects);
    seed.data_streams.clear();
    seed.index_templates.remove("metrics");
    config.seed_data.insert("shop-prod".into(), seed);
    let world = World::start_with(config);
    let source = world.domain("shop-prod");
    let refused = world
        .rt
        .block_on(source.ism_set(&caps(), "logs-2026.01.01", Some("logs-retention")))
        .unwrap();
    assert_eq!(refused, None);
    world.plan(
        "snapferry.yaml",
        "version: 1\nname: shop\nregion: us-east-1\nbucket:\n  name: shop-snapshots\n  create: true\n\
         source:\n  domain: shop-prod\ntarget:\n  domain: shop-copy\n  overrides:\n    \
         fine_grained_access_control:\n      master_user_name: admin\n      \
         master_user_password: { env: SHOP_MASTER_PASSWORD }\n\
         metadata: { prune: true }\ndashboards: { tenants: [global, team] }\n",
    );
    let run = |args: &[&str], code: i32| {
        let out = world
            .command(args)
            .env("SHOP_MASTER_PASSWORD", COPY_MASTER_PASSWORD)
            .output()
            .unwrap();
        let text = common::output_text(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {text}");
        text
    };
    let plan = run(&["plan"], 0);
    assert!(plan.contains("  + security/shop-copy (create)"), "{plan}");
    run(&["apply", "--auto-approve"], 0);

    // Everything arrived, read back as the copy's master.
    let admin = world
        .domain("shop-copy")
        .http()
        .clone()
        .with_basic_auth("admin", COPY_MASTER_PASSWORD);
    let get = |path: &str| -> Value {
        world
            .rt
            .block_on(admin.send_json::<Value>(Method::GET, path, None))
            .unwrap_or_else(|e| panic!("GET {path} on the copy: {e}"))
    };
    assert_eq!(
        get("/_index_template/logs")["index_templates"][0]["name"],
        "logs"
    );
    assert!(get("/_ingest/pipeline/normalize")["normalize"].is_object());
    // Managed by the copied policy, and the custom tenant's objects in that tenant.
    let managed = world
        .rt
        .block_on(
            world
                .domain("shop-copy")
                .ism_managed(&caps(), &["logs-2026.01.01".to_owned()]),
        )
        .unwrap();
    assert_eq!(
        managed.get("logs-2026.01.01"),
        Some(&Some("logs-retention".to_owned()))
    );
    let copied = tenant_objects(&world, "shop-copy", "team");
    assert_eq!(ids(&copied), vec!["index-pattern ip-team"]);
    // And nothing is left to do.
    run(&["plan", "--detailed-exitcode"], 0);
}

/// The copy exists already, with fine-grained access control and an internal master, and the
/// operator is mapped to nothing there: until the `security` step makes its mapping, every
/// read snapferry makes on the copy is refused. `plan` must still show what the metadata step
/// will write (or say it cannot know yet) rather than fail, and one apply must do it all.
#[test]
fn an_existing_fgac_copy_not_yet_mapped_plans_and_applies_metadata_in_one_run() {
    let config = {
        let yaml = format!(
            "domains:\n  - {{name: shop-prod, indices: [{{name: logs-2026.01.01, generate: 10}}]}}\n  \
             - {{name: shop-copy}}\n\
             domain_security:\n  shop-prod:\n    access_policy: {}\n    fine_grained_access_control: {{master_user_arn: \"{OPERATOR}\"}}\n  \
             shop-copy:\n    access_policy: {}\n    fine_grained_access_control: {{master_user_name: admin, master_user_password: \"{COPY_MASTER_PASSWORD}\"}}\n",
            open_policy("shop-prod"),
            open_policy("shop-copy")
        );
        let mut config = SandboxConfig::from_yaml_str(&yaml).expect("config");
        let mut seed = seed();
        seed.data_streams.clear();
        seed.index_templates.remove("metrics");
        seed.saved_objects.clear();
        config.seed_data.insert("shop-prod".into(), seed);
        config
    };
    let world = World::start_with(config);
    world.plan(
        "snapferry.yaml",
        "version: 1\nname: shop\nregion: us-east-1\nbucket:\n  name: shop-snapshots\n  create: true\n\
         source:\n  domain: shop-prod\ntarget:\n  domain: shop-copy\n  overrides:\n    \
         fine_grained_access_control:\n      master_user_name: admin\n      \
         master_user_password: { env: SHOP_MASTER_PASSWORD }\n\
         metadata: true\n",
    );
    let run = |args: &[&str], code: i32| {
        let out = world
            .command(args)
            .env("SHOP_MASTER_PASSWORD", COPY_MASTER_PASSWORD)
            .output()
            .unwrap();
        let text = common::output_text(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {text}");
        text
    };
    // Reviewed as a saved plan, the way a pipeline applies it.
    let plan = run(&["plan", "-o", "reviewed.json"], 0);
    assert!(plan.contains("  + security/shop-copy (create)"), "{plan}");
    for step in [
        "metadata/shop",
        "repository/shop-copy:snapferry-shop",
        "restore/shop",
    ] {
        let shown = plan
            .split_once(&format!("  ~ {step} (update)\n"))
            .unwrap_or_else(|| panic!("{step} is not shown as an update: {plan}"))
            .1;
        assert!(
            shown.starts_with(
                "      live state: \"read once the steps before it have run (now refused: "
            ) && shown
                .lines()
                .next()
                .unwrap()
                .ends_with("→ (known after apply)"),
            "{step}: {plan}"
        );
    }
    run(&["apply", "reviewed.json"], 0);
    let admin = world
        .domain("shop-copy")
        .http()
        .clone()
        .with_basic_auth("admin", COPY_MASTER_PASSWORD);
    let template: Value = world
        .rt
        .block_on(admin.send_json(Method::GET, "/_index_template/logs", None))
        .expect("the template on the copy");
    assert_eq!(template["index_templates"][0]["name"], "logs");
    let count: Value = world
        .rt
        .block_on(admin.send_json(Method::GET, "/logs-2026.01.01/_count", None))
        .expect("the restored index on the copy");
    assert_eq!(count["count"], 10);
    run(&["plan", "--detailed-exitcode"], 0);
}

/// With `security: false` the step stays as a check: the copy's refusals no longer fail the
/// plan's reads; the check is blocked with the mapping to make by hand, and the steps after it
/// wait for it.
#[test]
fn an_existing_fgac_copy_without_the_security_step_shows_the_mapping_to_make() {
    let config = SandboxConfig::from_yaml_str(&format!(
        "domains:\n  - {{name: shop-prod, indices: [{{name: logs-2026.01.01, generate: 10}}]}}\n  \
         - {{name: shop-copy}}\n\
         domain_security:\n  shop-copy:\n    access_policy: {}\n    fine_grained_access_control: {{master_user_name: admin, master_user_password: \"{COPY_MASTER_PASSWORD}\"}}\n",
        open_policy("shop-copy")
    ))
    .expect("config");
    let world = World::start_with(config);
    world.plan(
        "snapferry.yaml",
        "version: 1\nname: shop\nregion: us-east-1\nbucket:\n  name: shop-snapshots\n  create: true\n\
         source:\n  domain: shop-prod\ntarget:\n  domain: shop-copy\nsecurity: false\nmetadata: true\n",
    );
    let out = world.command(&["plan"]).output().unwrap();
    let plan = common::output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{plan}");
    assert!(!plan.contains("could not read the live state"), "{plan}");
    assert!(
        plan.contains("  ! security/shop-copy (blocked)")
            && plan.contains("as domain shop-copy's master user, make the mapping by hand"),
        "{plan}"
    );
    assert!(plan.contains("  ~ metadata/shop (update)"), "{plan}");
}

/// Legacy templates of an Elasticsearch 6.8 source are typed. Into 7.10 (which refuses a
/// mapping nested under `_doc` unless `include_type_name`), a `_doc` template is written
/// typeless; one of another type cannot be expressed there and is shown `!` by name, and
/// apply changes nothing until it is excluded — then the rest is copied.
#[test]
fn typed_legacy_templates_of_elasticsearch_6_are_written_typeless_or_refused_by_name() {
    let mut seed = source_domain("old-prod", vec![index("logs-1", 5)]);
    seed.engine_version = "Elasticsearch_6.8".into();
    let mut config = SandboxConfig {
        domains: vec![seed],
        ..Default::default()
    };
    config.seed_data.insert(
        "old-prod".into(),
        serde_json::from_value(json!({"legacy_templates": {
            "logs": {"index_patterns": ["logs-*"], "order": 1,
                     "mappings": {"_doc": {"properties": {"level": {"type": "keyword"}}}}},
            "events": {"index_patterns": ["events-*"],
                       "mappings": {"event": {"properties": {"at": {"type": "date"}}}}}
        }}))
        .expect("a valid seed"),
    );
    let world = World::start_with(config);
    let plan = |legacy: &str| {
        format!(
            "version: 1\nname: old\nregion: us-east-1\nbucket:\n  name: old-snapshots\n  create: true\n\
             source:\n  domain: old-prod\ntarget:\n  domain: old-copy\n  overrides:\n    \
             engine_version: Elasticsearch_7.10\nmetadata:\n  legacy_templates: {legacy}\n"
        )
    };
    world.plan("snapferry.yaml", &plan("[\"*\"]"));
    let shown = world.run_ok(&["plan"], 1);
    assert!(
        shown.contains("  ! metadata/old (blocked)")
            && shown.contains(
                "legacy_template[events]: its mappings are of type `event`; Elasticsearch 7.10 has no mapping types"
            ),
        "{shown}"
    );
    let refused = world.run_ok(&["apply", "--auto-approve"], 1);
    assert_eq!(
        world
            .sandbox()
            .request_log()
            .iter()
            .filter(|r| r.mutating)
            .count(),
        0,
        "{refused}"
    );

    world.plan("snapferry.yaml", &plan("[\"*\", \"-events\"]"));
    world.run_ok(&["apply", "--auto-approve"], 0);
    let copy = world.domain("old-copy");
    let got: Value = world
        .rt
        .block_on(copy.http().send_json(Method::GET, "/_template/logs", None))
        .expect("the template on the copy");
    assert_eq!(
        got["logs"]["mappings"],
        json!({"properties": {"level": {"type": "keyword"}}})
    );
    let refusals: Vec<String> = world
        .sandbox()
        .request_log()
        .iter()
        .filter(|r| r.service == "es-data" && r.status == 400)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(refusals, Vec::<String>::new());
    world.run_ok(&["plan", "--detailed-exitcode"], 0);
}

/// Neither domain's master is named and the plan has no `security` step: a source whose
/// security plugin refuses snapferry is blocked with how to get the step, not a pointer to a
/// step line that is not there.
#[test]
fn a_refusal_without_a_security_step_says_how_to_get_one() {
    let config = SandboxConfig::from_yaml_str(&format!(
        "domains:\n  - {{name: shop-prod, indices: [{{name: logs-2026.01.01, generate: 10}}]}}\n\
         domain_security:\n  shop-prod:\n    access_policy: {}\n    fine_grained_access_control: {{master_user_name: admin, master_user_password: \"{COPY_MASTER_PASSWORD}\"}}\n",
        open_policy("shop-prod")
    ))
    .expect("config");
    let world = World::start_with(config);
    world.plan(
        "snapferry.yaml",
        "version: 1\nname: shop\nregion: us-east-1\nbucket:\n  name: shop-snapshots\n  create: true\n\
         source:\n  domain: shop-prod\ntarget:\n  domain: shop-copy\n",
    );
    let plan = common::flat(&world.run_ok(&["plan"], 1));
    assert!(
        plan.contains("! repository/shop-prod:snapferry-shop (blocked)")
            && plan.contains(
                "domain shop-prod has fine-grained access control and snapferry's identity is \
                 not mapped to a role that allows it: add `security: true` to the replication"
            ),
        "{plan}"
    );
}
