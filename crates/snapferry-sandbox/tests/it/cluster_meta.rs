//! The cluster around the indices (issue #17 item 4): index templates of the three kinds applied
//! to new indices with their precedence, data streams made from templates and rolled over,
//! ingest pipelines run on writes, atomic aliases and searches through them, ISM policies that
//! act on indices in simulated time (and leave restored indices unmanaged), stored scripts and
//! search templates, the Dashboards saved-objects API with its xsrf header and tenants, and seeds.
//! Bodies are validated against the vendored OpenSearch API specification where it covers them.

use crate::common;

use common::*;
use serde_json::{Value, json};
use snapferry_sandbox::{SandboxConfig, SandboxHandle, SeedDomain};

fn domain(name: &str, engine: &str) -> SeedDomain {
    SeedDomain {
        name: name.into(),
        engine_version: engine.into(),
        ready: true,
        indices: Vec::new(),
        kibana: false,
        vpc: false,
    }
}

async fn sandbox(domains: Vec<SeedDomain>) -> SandboxHandle {
    start(SandboxConfig {
        domains,
        ..fast_config()
    })
    .await
}

async fn ok(d: &DomainClient, method: &str, path: &str, body: Value) -> Value {
    let (status, answer) = d.call(method, path, Some(body)).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {answer}"
    );
    answer
}

#[tokio::test]
async fn templates_shape_new_indices_with_the_servers_precedence() {
    let h = sandbox(vec![domain("tpl", "OpenSearch_2.11")]).await;
    let d = seeded(&h, "tpl");
    let spec = Spec::load();
    ok(&d, "PUT", "/_component_template/base", json!({"template": {"settings": {"number_of_shards": 2}, "mappings": {"properties": {"host": {"type": "keyword"}}}}})).await;
    ok(
        &d,
        "PUT",
        "/_component_template/replicas",
        json!({"template": {"settings": {"index": {"number_of_replicas": 0}}}}),
    )
    .await;
    ok(&d, "PUT", "/_index_template/logs", json!({"index_patterns": ["logs-*"], "priority": 10, "composed_of": ["base", "replicas"],
        "template": {"settings": {"number_of_shards": 3}, "aliases": {"all-logs": {}}, "mappings": {"properties": {"msg": {"type": "text"}}}}})).await;
    // A legacy template on the same names is ignored in favour of the composable one (with a warning).
    let (status, headers, _) = d
        .send(
            "PUT",
            "/_template/old",
            json!({"index_patterns": ["logs-*"], "settings": {"number_of_shards": 7}})
                .to_string()
                .into_bytes(),
            "application/json",
            true,
            &[],
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        headers["warning"]
            .to_str()
            .unwrap()
            .contains("may be ignored in favor of a composable template")
    );
    ok(&d, "PUT", "/_template/metrics-a", json!({"index_patterns": ["metrics-*"], "order": 1, "settings": {"number_of_shards": 4}, "mappings": {"properties": {"v": {"type": "long"}}}})).await;
    ok(
        &d,
        "PUT",
        "/_template/metrics-b",
        json!({"index_patterns": ["metrics-*"], "order": 2, "settings": {"number_of_shards": 5}}),
    )
    .await;

    // Explicit creation: the request's settings win over the template's.
    ok(
        &d,
        "PUT",
        "/logs-1",
        json!({"settings": {"number_of_replicas": 2}}),
    )
    .await;
    let (_, got) = d.call("GET", "/logs-1", None).await;
    let i = &got["logs-1"];
    assert_eq!(i["settings"]["index"]["number_of_shards"], "3");
    assert_eq!(i["settings"]["index"]["number_of_replicas"], "2");
    assert_eq!(i["mappings"]["properties"]["host"]["type"], "keyword");
    assert_eq!(i["mappings"]["properties"]["msg"]["type"], "text");
    assert!(i["aliases"]["all-logs"].is_object());
    // Creation by a write: legacy templates by order (the higher order wins).
    ok(&d, "PUT", "/metrics-1/_doc/1", json!({"v": 1})).await;
    let (_, got) = d.call("GET", "/metrics-1", None).await;
    assert_eq!(
        got["metrics-1"]["settings"]["index"]["number_of_shards"],
        "5"
    );
    assert_eq!(
        got["metrics-1"]["mappings"]["properties"]["v"]["type"],
        "long"
    );

    let (status, all) = d.call("GET", "/_index_template", None).await;
    assert_eq!(status, 200);
    spec.response("indices", "indices.get_index_template@200", &all);
    assert_eq!(
        all["index_templates"][0]["index_template"]["template"]["settings"]["index"]["number_of_shards"],
        "3"
    );
    let (_, comps) = d.call("GET", "/_component_template/base", None).await;
    spec.response("cluster", "cluster.get_component_template@200", &comps);
    let (_, legacy) = d.call("GET", "/_template/metrics-*", None).await;
    assert_eq!(legacy["metrics-a"]["order"], 1);
    assert_eq!(
        legacy["metrics-b"]["settings"]["index"]["number_of_shards"],
        "5"
    );

    // The server's refusals.
    let (status, e) = d
        .call(
            "PUT",
            "/_index_template/clash",
            Some(json!({"index_patterns": ["logs-app-*"], "priority": 10})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        e["error"]["reason"],
        "index template [clash] has index patterns [logs-app-*] matching patterns from existing templates [logs] with patterns (logs => [logs-*]) that have the same priority [10], multiple index templates may not match during index creation, please use a different priority"
    );
    spec.error(&e);
    let (status, e) = d
        .call(
            "PUT",
            "/_index_template/x",
            Some(json!({"index_patterns": ["x-*"], "composed_of": ["nope"]})),
        )
        .await;
    assert_eq!(
        (status, e["error"]["type"].as_str()),
        (400, Some("invalid_index_template_exception"))
    );
    assert_eq!(
        e["error"]["reason"],
        "index_template [x] invalid, cause [index template [x] specifies component templates [nope] that do not exist]"
    );
    let (status, e) = d.call("DELETE", "/_component_template/base", None).await;
    assert_eq!(status, 400);
    assert_eq!(
        e["error"]["reason"],
        "component templates [base] cannot be removed as they are still in use by index templates [logs]"
    );
    let (status, e) = d.call("GET", "/_index_template/nope", None).await;
    assert_eq!(
        (status, e["error"]["reason"].as_str()),
        (404, Some("index template matching [nope] not found"))
    );
    let (status, e) = d
        .call(
            "PUT",
            "/_index_template/bad",
            Some(json!({"index_patterns": ["b-*"], "foo": 1})),
        )
        .await;
    assert_eq!(
        (status, e["error"]["type"].as_str()),
        (400, Some("x_content_parse_exception"))
    );
    assert!(
        e["error"]["reason"]
            .as_str()
            .unwrap()
            .ends_with("[index_template] unknown field [foo]")
    );
    let (status, _) = d.call("HEAD", "/_index_template/logs", None).await;
    assert_eq!(status, 200);
    h.shutdown().await;
}

#[tokio::test]
async fn composable_templates_are_unknown_paths_before_elasticsearch_7_8() {
    let h = sandbox(vec![
        domain("es77", "Elasticsearch_7.7"),
        domain("es710", "Elasticsearch_7.10"),
    ])
    .await;
    let old = seeded(&h, "es77");
    let (status, e) = old
        .call(
            "PUT",
            "/_index_template/t",
            Some(json!({"index_patterns": ["t-*"]})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        e["error"],
        "no handler found for uri [/_index_template/t] and method [PUT]"
    );
    ok(
        &old,
        "PUT",
        "/_template/t",
        json!({"index_patterns": ["t-*"], "settings": {"number_of_shards": 2}}),
    )
    .await;
    ok(&old, "PUT", "/t-1", json!({})).await;
    let (_, got) = old.call("GET", "/t-1", None).await;
    assert_eq!(got["t-1"]["settings"]["index"]["number_of_shards"], "2");
    let new = seeded(&h, "es710");
    ok(
        &new,
        "PUT",
        "/_index_template/t",
        json!({"index_patterns": ["t-*"]}),
    )
    .await;
    // Data streams are OpenSearch's (the managed Elasticsearch runs without them).
    let (status, e) = new
        .call(
            "PUT",
            "/_index_template/ds",
            Some(json!({"index_patterns": ["ds-*"], "data_stream": {}})),
        )
        .await;
    assert_eq!(status, 400, "{e}");
    h.shutdown().await;
}

#[tokio::test]
async fn data_streams_come_from_their_template_and_roll_over() {
    let h = sandbox(vec![domain("dstream", "OpenSearch_2.11")]).await;
    let d = seeded(&h, "dstream");
    let spec = Spec::load();
    let (status, e) = d.call("PUT", "/_data_stream/logs-web", None).await;
    assert_eq!(
        (status, e["error"]["reason"].as_str()),
        (
            400,
            Some("no matching index template found for data stream [logs-web]")
        )
    );
    ok(
        &d,
        "PUT",
        "/_index_template/logs-ds",
        json!({"index_patterns": ["logs-*"], "data_stream": {}, "priority": 100,
        "template": {"mappings": {"properties": {"status": {"type": "keyword"}}}}}),
    )
    .await;
    // The first write creates the stream; only creates go into a stream, with a timestamp.
    let (status, e) = d
        .call("POST", "/logs-web/_doc", Some(json!({"status": "200"})))
        .await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(
        e["error"]["caused_by"]["reason"],
        "documents must contain a single-valued timestamp field '@timestamp' of date type"
    );
    let (status, e) = d
        .call(
            "PUT",
            "/logs-web/_doc/1",
            Some(json!({"@timestamp": "2026-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(
        (status, e["error"]["reason"].as_str()),
        (
            400,
            Some("only write ops with an op_type of create are allowed in data streams")
        )
    );
    let w = ok(
        &d,
        "PUT",
        "/logs-web/_create/1",
        json!({"@timestamp": "2026-01-01T00:00:00Z", "status": "200"}),
    )
    .await;
    assert_eq!(w["_index"], ".ds-logs-web-000001");
    let (_, mapping) = d.call("GET", "/.ds-logs-web-000001", None).await;
    let m = &mapping[".ds-logs-web-000001"]["mappings"]["properties"];
    assert_eq!(
        (
            m["@timestamp"]["type"].as_str(),
            m["status"]["type"].as_str()
        ),
        (Some("date"), Some("keyword"))
    );

    let rolled = ok(&d, "POST", "/logs-web/_rollover", json!({})).await;
    spec.response("indices", "indices.rollover@200", &rolled);
    assert_eq!(
        (rolled["old_index"].as_str(), rolled["new_index"].as_str()),
        (Some(".ds-logs-web-000001"), Some(".ds-logs-web-000002"))
    );
    let (_, b) = d
        .bulk_create("logs-web", &[json!({"@timestamp": "2026-01-02T00:00:00Z"})])
        .await;
    assert_eq!(
        b["items"][0]["create"]["_index"], ".ds-logs-web-000002",
        "{b}"
    );
    let (_, streams) = d.call("GET", "/_data_stream/logs-web", None).await;
    spec.response("indices", "indices.get_data_stream@200", &streams);
    let s = &streams["data_streams"][0];
    assert_eq!(
        (s["generation"].as_u64(), s["template"].as_str()),
        (Some(2), Some("logs-ds"))
    );
    let (_, count) = d.call("GET", "/logs-web/_count", None).await;
    assert_eq!(count["count"], 2);
    // Conditions that do not hold leave the stream as it is.
    let r = ok(
        &d,
        "POST",
        "/logs-web/_rollover",
        json!({"conditions": {"max_docs": 100}}),
    )
    .await;
    assert_eq!(
        (
            r["rolled_over"].as_bool(),
            r["conditions"]["[max_docs: 100]"].as_bool()
        ),
        (Some(false), Some(false))
    );
    // The write index cannot go, nor the template the stream needs.
    let (status, e) = d.call("DELETE", "/.ds-logs-web-000002", None).await;
    assert_eq!(
        (status, e["error"]["reason"].as_str()),
        (
            400,
            Some(
                "index [.ds-logs-web-000002] is the write index for data stream [logs-web] and cannot be deleted"
            )
        )
    );
    let (status, e) = d.call("DELETE", "/_index_template/logs-ds", None).await;
    assert_eq!(
        (status, e["error"]["reason"].as_str()),
        (
            400,
            Some(
                "unable to remove composable templates [logs-ds] as they are in use by a data streams [logs-web]"
            )
        )
    );
    let (status, e) = d.call("PUT", "/logs-other", Some(json!({}))).await;
    assert_eq!(status, 400);
    assert!(
        e["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("that creates data streams only")
    );
    ok(&d, "DELETE", "/_data_stream/logs-web", json!({})).await;
    let (status, _) = d.call("GET", "/.ds-logs-web-000001", None).await;
    assert_eq!(status, 404);
    h.shutdown().await;
}

#[tokio::test]
async fn pipelines_run_on_writes_and_are_checked_when_stored() {
    let h = sandbox(vec![domain("ing", "OpenSearch_2.11")]).await;
    let d = seeded(&h, "ing");
    let spec = Spec::load();
    let (status, e) = d
        .call(
            "PUT",
            "/_ingest/pipeline/bad",
            Some(json!({"processors": [{"no_such": {"field": "x"}}]})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        (e["error"]["type"].as_str(), e["error"]["reason"].as_str()),
        (
            Some("parse_exception"),
            Some("No processor type exists with name [no_such]")
        )
    );
    assert_eq!(e["error"]["processor_type"], "no_such");
    let (status, e) = d
        .call(
            "PUT",
            "/_ingest/pipeline/bad",
            Some(json!({"processors": [{"set": {"field": "x"}}]})),
        )
        .await;
    assert_eq!(
        (status, e["error"]["reason"].as_str()),
        (400, Some("[value] required property is missing"))
    );
    // A real processor the sandbox does not run is stored all the same.
    ok(
        &d,
        "PUT",
        "/_ingest/pipeline/grokky",
        json!({"processors": [{"grok": {"field": "m", "patterns": ["%{WORD:w}"]}}]}),
    )
    .await;
    ok(
        &d,
        "PUT",
        "/_ingest/pipeline/clean",
        json!({"description": "tidy", "processors": [
            {"rename": {"field": "Host", "target_field": "host"}},
            {"lowercase": {"field": "host"}},
            {"set": {"field": "seen_by", "value": "{{_ingest.timestamp}}"}},
            {"convert": {"field": "bytes", "type": "integer"}},
            {"append": {"field": "tags", "value": ["web"]}},
            {"remove": {"field": "secret", "ignore_missing": true}},
            {"uppercase": {"field": "missing", "ignore_missing": true}}
        ]}),
    )
    .await;
    ok(
        &d,
        "PUT",
        "/_ingest/pipeline/stamp",
        json!({"processors": [{"set": {"field": "final", "value": true}}]}),
    )
    .await;
    ok(&d, "PUT", "/_index_template/web", json!({"index_patterns": ["web-*"], "template": {"settings": {"index.default_pipeline": "clean", "index.final_pipeline": "stamp"}}})).await;

    ok(
        &d,
        "PUT",
        "/web-1/_doc/a",
        json!({"Host": "EXAMPLE.org", "bytes": "42", "secret": "s"}),
    )
    .await;
    let (_, got) = d
        .call(
            "POST",
            "/web-1/_search",
            Some(json!({"query": {"ids": {"values": ["a"]}}})),
        )
        .await;
    let src = &got["hits"]["hits"][0]["_source"];
    assert_eq!(src["host"], "example.org");
    assert_eq!(src["bytes"], 42);
    assert_eq!(src["tags"], json!(["web"]));
    assert_eq!(src["final"], true);
    assert!(src.get("secret").is_none() && src.get("Host").is_none());
    assert!(src["seen_by"].as_str().unwrap().ends_with('Z'));
    // `?pipeline=_none` skips the default pipeline, not the final one.
    ok(
        &d,
        "PUT",
        "/web-1/_doc/b?pipeline=_none",
        json!({"Host": "X"}),
    )
    .await;
    let (_, got) = d
        .call(
            "POST",
            "/web-1/_search",
            Some(json!({"query": {"ids": {"values": ["b"]}}})),
        )
        .await;
    assert_eq!(
        got["hits"]["hits"][0]["_source"],
        json!({"Host": "X", "final": true})
    );
    let (status, e) = d
        .call("PUT", "/other/_doc/1?pipeline=nope", Some(json!({})))
        .await;
    assert_eq!(
        (status, e["error"]["reason"].as_str()),
        (400, Some("pipeline with id [nope] does not exist"))
    );
    let (status, e) = d
        .call(
            "PUT",
            "/web-2/_doc/1",
            Some(json!({"Host": "a", "bytes": "many"})),
        )
        .await;
    assert_eq!(
        (status, e["error"]["reason"].as_str()),
        (400, Some("unable to convert [many] to integer"))
    );

    let (_, pipelines) = d.call("GET", "/_ingest/pipeline/cl*", None).await;
    spec.response("ingest", "ingest.get_pipeline@200", &pipelines);
    assert_eq!(pipelines["clean"]["description"], "tidy");
    let sim = ok(
        &d,
        "POST",
        "/_ingest/pipeline/clean/_simulate",
        json!({"docs": [{"_source": {"Host": "A.B", "bytes": 1}}, {"_source": {"bytes": 2}}]}),
    )
    .await;
    spec.response("ingest", "ingest.simulate@200", &sim);
    assert_eq!(sim["docs"][0]["doc"]["_source"]["host"], "a.b");
    assert_eq!(
        sim["docs"][1]["error"]["reason"],
        "field [Host] doesn't exist"
    );
    let (status, _) = d.call("DELETE", "/_ingest/pipeline/nope", None).await;
    assert_eq!(status, 404);
    h.shutdown().await;
}

#[tokio::test]
async fn alias_actions_apply_all_or_none_and_searches_go_through_aliases() {
    let h = sandbox(vec![domain("alias", "OpenSearch_2.11")]).await;
    let d = seeded(&h, "alias");
    let spec = Spec::load();
    d.bulk(
        "a-1",
        &[
            ("1".into(), json!({"kind": "x"})),
            ("2".into(), json!({"kind": "y"})),
        ],
    )
    .await;
    d.bulk("a-2", &[("3".into(), json!({"kind": "x"}))]).await;
    // One bad action and nothing happens.
    let (status, _) = d.call("POST", "/_aliases", Some(json!({"actions": [{"add": {"index": "a-1", "alias": "all"}}, {"add": {"index": "missing", "alias": "all"}}]}))).await;
    assert_eq!(status, 404);
    let (status, _) = d.call("GET", "/_alias/all", None).await;
    assert_eq!(status, 404);
    ok(
        &d,
        "POST",
        "/_aliases",
        json!({"actions": [
            {"add": {"indices": ["a-1", "a-2"], "alias": "all"}},
            {"add": {"index": "a-1", "alias": "xs", "filter": {"term": {"kind": "x"}}}},
            {"add": {"index": "a-2", "alias": "w", "is_write_index": true}},
            {"add": {"index": "a-1", "alias": "w"}}
        ]}),
    )
    .await;
    let (_, c) = d.call("GET", "/all/_count", None).await;
    assert_eq!(c["count"], 3);
    let (_, c) = d.call("GET", "/xs/_count", None).await;
    assert_eq!(c["count"], 1);
    let w = ok(&d, "PUT", "/w/_doc/9", json!({"kind": "z"})).await;
    assert_eq!(w["_index"], "a-2");
    let (status, e) = d.call("PUT", "/all/_doc/9", Some(json!({}))).await;
    assert_eq!(status, 400);
    assert!(
        e["error"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("no write index is defined for alias [all]")
    );
    let (status, e) = d.call("POST", "/_aliases", Some(json!({"actions": [{"add": {"index": "a-1", "alias": "w", "is_write_index": true}}]}))).await;
    assert_eq!(
        (status, e["error"]["reason"].as_str()),
        (
            500,
            Some("alias [w] has more than one write index [a-1,a-2]")
        )
    );
    let (_, got) = d.call("GET", "/a-2/_alias/w", None).await;
    spec.response("indices", "indices.get_alias@200", &got);
    assert_eq!(got["a-2"]["aliases"]["w"]["is_write_index"], true);
    let (status, e) = d.call("DELETE", "/a-1/_alias/nope", None).await;
    assert_eq!(
        (status, e["error"]["type"].as_str()),
        (404, Some("aliases_not_found_exception"))
    );
    ok(&d, "POST", "/_aliases", json!({"actions": [{"remove": {"index": "a-1", "alias": "all"}}, {"remove_index": {"index": "a-2"}}]})).await;
    let (status, _) = d.call("GET", "/a-2", None).await;
    assert_eq!(status, 404);
    let (status, got) = d.call("GET", "/_alias/all,gone", None).await;
    assert_eq!(
        (status, got["error"].as_str()),
        (404, Some("aliases [all,gone] missing"))
    );
    h.shutdown().await;
}

async fn advance(h: &SandboxHandle, secs: u64) {
    let client = reqwest::Client::new();
    let r = client
        .post(format!(
            "{}/_sandbox/clock?advance_secs={secs}",
            h.endpoint_url()
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

#[tokio::test]
async fn ism_policies_act_on_indices_in_simulated_time() {
    let h = sandbox(vec![domain("ism", "OpenSearch_2.11")]).await;
    let d = seeded(&h, "ism");
    let spec = Spec::load();
    let policy = json!({"policy": {"description": "hot then delete", "default_state": "hot",
        "states": [
            {"name": "hot", "actions": [{"rollover": {"min_doc_count": 2}}], "transitions": [{"state_name": "old", "conditions": {"min_index_age": "30d"}}]},
            {"name": "old", "actions": [{"read_only": {}}, {"replica_count": {"number_of_replicas": 0}}], "transitions": [{"state_name": "gone", "conditions": {"min_index_age": "60d"}}]},
            {"name": "gone", "actions": [{"delete": {}}], "transitions": []}
        ],
        "ism_template": [{"index_patterns": ["app-*"], "priority": 1}]}});
    let (status, created) = d
        .call(
            "PUT",
            "/_plugins/_ism/policies/lifecycle",
            Some(policy.clone()),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    spec.response("ism", "ism.put_policy@201", &created);
    // The plugin insists on the document's sequence number to update it.
    let (status, e) = d
        .call(
            "PUT",
            "/_plugins/_ism/policies/lifecycle",
            Some(policy.clone()),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        e["error"]["reason"],
        "[lifecycle]: version conflict, document already exists (current version [1])"
    );
    let seq = created["_seq_no"].as_u64().unwrap();
    let (status, e) = d
        .call(
            "PUT",
            &format!(
                "/_plugins/_ism/policies/lifecycle?if_seq_no={}&if_primary_term=1",
                seq + 5
            ),
            Some(policy.clone()),
        )
        .await;
    assert_eq!(status, 409, "{e}");
    let (status, updated) = d
        .call(
            "PUT",
            &format!("/_plugins/_ism/policies/lifecycle?if_seq_no={seq}&if_primary_term=1"),
            Some(policy.clone()),
        )
        .await;
    assert_eq!((status, updated["_version"].as_u64()), (200, Some(2)));
    let (_, got) = d
        .call("GET", "/_plugins/_ism/policies/lifecycle", None)
        .await;
    spec.response("ism", "ism.get_policy@200", &got);
    let (status, e) = d.call("PUT", "/_plugins/_ism/policies/broken", Some(json!({"policy": {"description": "x", "default_state": "a", "states": [{"name": "a", "actions": [], "transitions": [{"state_name": "b"}]}]}}))).await;
    assert_eq!(
        (status, e["error"]["reason"].as_str()),
        (
            400,
            Some("Policy contains a transition in state=a pointing to a nonexistent state=b")
        )
    );

    // A rollover alias and an index the ISM template attaches.
    ok(&d, "PUT", "/app-000001", json!({"settings": {"plugins.index_state_management.rollover_alias": "app"}, "aliases": {"app": {"is_write_index": true}}})).await;
    ok(&d, "PUT", "/plain", json!({})).await;
    let (_, ex) = d
        .call("GET", "/_plugins/_ism/explain/app-000001,plain", None)
        .await;
    spec.response("ism", "ism.explain_policy@200", &ex);
    assert_eq!(ex["app-000001"]["policy_id"], "lifecycle");
    assert_eq!(
        ex["plain"]["index.plugins.index_state_management.policy_id"],
        Value::Null
    );
    assert_eq!(ex["total_managed_indices"], 1);
    advance(&h, 600).await;
    let (_, ex) = d
        .call("GET", "/_plugins/_ism/explain/app-000001", None)
        .await;
    assert_eq!(ex["app-000001"]["state"]["name"], "hot", "{ex}");
    assert_eq!(
        ex["app-000001"]["info"]["message"], "Pending rollover of index [index=app-000001]",
        "{ex}"
    );
    d.bulk("app", &[("1".into(), json!({})), ("2".into(), json!({}))])
        .await;
    advance(&h, 600).await;
    let (_, ex) = d
        .call("GET", "/_plugins/_ism/explain/app-000001", None)
        .await;
    assert_eq!(ex["app-000001"]["rolled_over"], true, "{ex}");
    assert_eq!(ex["app-000001"]["rolled_over_index_name"], "app-000002");
    let (_, a) = d.call("GET", "/_alias/app", None).await;
    assert_eq!(
        a["app-000002"]["aliases"]["app"]["is_write_index"], true,
        "{a}"
    );
    // The new index is attached by the template too.
    let (_, ex) = d
        .call("GET", "/_plugins/_ism/explain/app-000002", None)
        .await;
    assert_eq!(ex["app-000002"]["policy_id"], "lifecycle");
    // 31 days later the first index is read-only with no replicas; 61 days later it is gone.
    advance(&h, 31 * 86400).await;
    let (_, got) = d.call("GET", "/app-000001", None).await;
    assert_eq!(
        got["app-000001"]["settings"]["index"]["blocks"]["write"], "true",
        "{got}"
    );
    assert_eq!(
        got["app-000001"]["settings"]["index"]["number_of_replicas"],
        "0"
    );
    let (status, e) = d.call("PUT", "/app-000001/_doc/3", Some(json!({}))).await;
    assert_eq!(
        (status, e["error"]["type"].as_str()),
        (403, Some("cluster_block_exception"))
    );
    advance(&h, 30 * 86400).await;
    let (status, _) = d.call("GET", "/app-000001", None).await;
    assert_eq!(status, 404);

    // add / remove / change_policy.
    let added = ok(
        &d,
        "POST",
        "/_plugins/_ism/add/plain",
        json!({"policy_id": "lifecycle"}),
    )
    .await;
    spec.response("ism", "ism.add_policy@200", &added);
    assert_eq!(added["updated_indices"], 1);
    let again = ok(
        &d,
        "POST",
        "/_plugins/_ism/add/plain",
        json!({"policy_id": "lifecycle"}),
    )
    .await;
    assert_eq!(
        again["failed_indices"][0]["reason"],
        "This index already has a policy, use the update policy API to update index policies"
    );
    let (status, e) = d
        .call(
            "POST",
            "/_plugins/_ism/add/plain",
            Some(json!({"policy_id": "nope"})),
        )
        .await;
    assert_eq!(
        (status, e["error"]["reason"].as_str()),
        (404, Some("Could not find policy=nope"))
    );
    let changed = ok(
        &d,
        "POST",
        "/_plugins/_ism/change_policy/plain",
        json!({"policy_id": "lifecycle", "state": "gone"}),
    )
    .await;
    assert_eq!(changed["updated_indices"], 1);
    let removed = ok(&d, "POST", "/_plugins/_ism/remove/plain", json!({})).await;
    assert_eq!(removed["updated_indices"], 1);
    let (_, ex) = d.call("GET", "/_plugins/_ism/explain/plain", None).await;
    assert_eq!(ex["total_managed_indices"], 0);
    h.shutdown().await;
}

#[tokio::test]
async fn restored_indices_are_not_managed_until_added() {
    let h = sandbox(vec![
        domain("src", "OpenSearch_2.11"),
        domain("dst", "OpenSearch_2.11"),
    ])
    .await;
    let src = seeded(&h, "src");
    let dst = seeded(&h, "dst");
    ok(&src, "PUT", "/_plugins/_ism/policies/keep", json!({"policy": {"description": "k", "default_state": "a", "states": [{"name": "a", "actions": [], "transitions": []}]}})).await;
    ok(&src, "PUT", "/kept", json!({})).await;
    ok(
        &src,
        "POST",
        "/_plugins/_ism/add/kept",
        json!({"policy_id": "keep"}),
    )
    .await;
    repository(&h, &src, "repo", "meta-bucket").await;
    repository(&h, &dst, "repo", "meta-bucket").await;
    ok(
        &src,
        "PUT",
        "/_snapshot/repo/s1?wait_for_completion=true",
        json!({"indices": "kept", "include_global_state": false}),
    )
    .await;
    ok(
        &dst,
        "POST",
        "/_snapshot/repo/s1/_restore?wait_for_completion=true",
        json!({"indices": "kept"}),
    )
    .await;
    let (_, ex) = dst.call("GET", "/_plugins/_ism/explain/kept", None).await;
    assert_eq!(
        ex["kept"]["index.plugins.index_state_management.policy_id"],
        Value::Null,
        "{ex}"
    );
    assert_eq!(ex["total_managed_indices"], 0);
    // The policy is not there either: a restore without global state brings none.
    let (status, _) = dst.call("GET", "/_plugins/_ism/policies/keep", None).await;
    assert_eq!(status, 404);
    h.shutdown().await;
}

#[tokio::test]
async fn ism_paths_follow_the_engine() {
    let h = sandbox(vec![
        domain("esism", "Elasticsearch_7.10"),
        domain("es67", "Elasticsearch_6.7"),
    ])
    .await;
    let es = seeded(&h, "esism");
    let (status, e) = es.call("GET", "/_plugins/_ism/policies", None).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (
            400,
            Some("no handler found for uri [/_plugins/_ism/policies] and method [GET]")
        )
    );
    ok(&es, "PUT", "/_opendistro/_ism/policies/p", json!({"policy": {"description": "d", "default_state": "a", "states": [{"name": "a", "actions": [], "transitions": []}]}})).await;
    ok(&es, "PUT", "/i", json!({})).await;
    ok(
        &es,
        "POST",
        "/_opendistro/_ism/add/i",
        json!({"policy_id": "p"}),
    )
    .await;
    let (_, ex) = es.call("GET", "/_opendistro/_ism/explain/i", None).await;
    assert_eq!(
        ex["i"]["index.opendistro.index_state_management.policy_id"],
        "p"
    );
    assert!(
        ex["i"]
            .get("index.plugins.index_state_management.policy_id")
            .is_none()
    );
    let old = seeded(&h, "es67");
    let (status, _) = old.call("GET", "/_opendistro/_ism/policies", None).await;
    assert_eq!(status, 400);
    h.shutdown().await;
}

#[tokio::test]
async fn stored_scripts_and_search_templates() {
    let h = sandbox(vec![domain("scripts", "OpenSearch_2.11")]).await;
    let d = seeded(&h, "scripts");
    let spec = Spec::load();
    ok(
        &d,
        "PUT",
        "/_scripts/bump",
        json!({"script": {"lang": "painless", "source": "ctx._source.n += params.by"}}),
    )
    .await;
    ok(&d, "PUT", "/_scripts/by-kind", json!({"script": {"lang": "mustache", "source": {"query": {"term": {"kind": "{{kind}}"}}, "size": "{{size}}"}}})).await;
    let (status, got) = d.call("GET", "/_scripts/by-kind", None).await;
    assert_eq!(status, 200);
    spec.response("_core", "get_script@200", &got);
    assert!(
        got["script"]["source"].is_string(),
        "a search template's object source is stored as text: {got}"
    );
    let (status, got) = d.call("GET", "/_scripts/nope", None).await;
    assert_eq!((status, got), (404, json!({"_id": "nope", "found": false})));
    let (status, e) = d
        .call(
            "PUT",
            "/_scripts/x",
            Some(json!({"script": {"lang": "ruby", "source": "1"}})),
        )
        .await;
    assert_eq!(
        (status, e["error"]["reason"].as_str()),
        (400, Some("script_lang not supported [ruby]"))
    );
    let rendered = ok(
        &d,
        "POST",
        "/_render/template/by-kind",
        json!({"params": {"kind": "x", "size": 5}}),
    )
    .await;
    assert_eq!(
        rendered["template_output"],
        json!({"query": {"term": {"kind": "x"}}, "size": "5"})
    );
    d.bulk(
        "things",
        &[
            ("1".into(), json!({"kind": "x"})),
            ("2".into(), json!({"kind": "y"})),
        ],
    )
    .await;
    let found = ok(
        &d,
        "POST",
        "/things/_search/template",
        json!({"id": "by-kind", "params": {"kind": "y", "size": 10}}),
    )
    .await;
    assert_eq!(found["hits"]["total"]["value"], 1);
    assert_eq!(found["hits"]["hits"][0]["_id"], "2");
    let (_, state) = d.call("GET", "/_cluster/state/metadata", None).await;
    assert_eq!(
        state["metadata"]["stored_scripts"]["bump"]["lang"],
        "painless"
    );
    ok(&d, "DELETE", "/_scripts/bump", json!({})).await;
    let (status, e) = d.call("DELETE", "/_scripts/bump", None).await;
    assert_eq!(
        (status, e["error"]["reason"].as_str()),
        (404, Some("stored script [bump] does not exist"))
    );
    h.shutdown().await;
}

fn multipart(name: &str, ndjson: &str) -> (String, Vec<u8>) {
    let boundary = "snapferryboundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/ndjson\r\n\r\n{ndjson}\r\n--{boundary}--\r\n"
    );
    (
        format!("multipart/form-data; boundary={boundary}"),
        body.into_bytes(),
    )
}

fn objects() -> String {
    [
        json!({"type": "index-pattern", "id": "ip-1", "attributes": {"title": "logs-*", "timeFieldName": "@timestamp"}, "references": []}),
        json!({"type": "visualization", "id": "vis-1", "attributes": {"title": "Errors", "visState": "{}"}, "references": [{"name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern", "id": "ip-1"}]}),
        json!({"type": "dashboard", "id": "dash-1", "attributes": {"title": "Ops"}, "references": [{"name": "panel_0", "type": "visualization", "id": "vis-1"}]}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n")
}

#[tokio::test]
async fn dashboards_saved_objects_export_import_with_xsrf_and_tenants() {
    let h = sandbox(vec![
        domain("osd", "OpenSearch_2.11"),
        domain("kibana", "Elasticsearch_7.10"),
    ])
    .await;
    let d = seeded(&h, "osd");
    let base = "/_dashboards/api/saved_objects";
    let (ct, body) = multipart("export.ndjson", &objects());
    let (status, _, answer) = d
        .send(
            "POST",
            &format!("{base}/_import"),
            body.clone(),
            &ct,
            true,
            &[],
        )
        .await;
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(
        (status, answer["message"].as_str()),
        (400, Some("Request must contain a osd-xsrf header."))
    );
    let (status, _, _) = d
        .send(
            "POST",
            &format!("{base}/_import"),
            body.clone(),
            &ct,
            true,
            &[("kbn-xsrf", "true")],
        )
        .await;
    assert_eq!(status, 400, "OpenSearch Dashboards refuses Kibana's header");
    let xsrf = [("osd-xsrf", "true")];
    let (status, _, answer) = d
        .send(
            "POST",
            &format!("{base}/_import"),
            body.clone(),
            &ct,
            true,
            &xsrf,
        )
        .await;
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["success"].as_bool(), answer["successCount"].as_u64()),
        (Some(true), Some(3))
    );
    assert_eq!(answer["successResults"][2]["meta"]["icon"], "dashboardApp");

    // Export the dashboard with what it needs: referenced objects first, then the summary line.
    let (status, _, exported) = d
        .send("POST", &format!("{base}/_export"), json!({"objects": [{"type": "dashboard", "id": "dash-1"}], "includeReferencesDeep": true}).to_string().into_bytes(), "application/json", true, &xsrf)
        .await;
    assert_eq!(status, 200);
    let text = String::from_utf8(exported).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = lines[..3]
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ip-1", "vis-1", "dash-1"]);
    assert_eq!(
        lines[3],
        json!({"exportedCount": 3, "missingRefCount": 0, "missingReferences": []})
    );
    assert!(
        text.lines().next().unwrap().starts_with("{\"attributes\":"),
        "keys sorted: {text}"
    );
    assert_eq!(lines[1]["migrationVersion"]["visualization"], "7.10.0");

    // Importing again: per-object conflicts and nothing written, unless overwrite.
    let (_, _, again) = d
        .send(
            "POST",
            &format!("{base}/_import"),
            body.clone(),
            &ct,
            true,
            &xsrf,
        )
        .await;
    let again: Value = serde_json::from_slice(&again).unwrap();
    assert_eq!(again["success"], false);
    assert_eq!(again["errors"][0]["error"], json!({"type": "conflict"}));
    assert_eq!(again["errors"].as_array().unwrap().len(), 3);
    let (_, _, over) = d
        .send(
            "POST",
            &format!("{base}/_import?overwrite=true"),
            body.clone(),
            &ct,
            true,
            &xsrf,
        )
        .await;
    let over: Value = serde_json::from_slice(&over).unwrap();
    assert_eq!(
        (
            over["success"].as_bool(),
            over["successResults"][0]["overwrite"].as_bool()
        ),
        (Some(true), Some(true))
    );
    // A missing index pattern is a missing reference; an unknown type is unsupported.
    let orphan = json!({"type": "visualization", "id": "v2", "attributes": {"title": "t"}, "references": [{"name": "x", "type": "index-pattern", "id": "nope"}]}).to_string()
        + "\n" + &json!({"type": "lens", "id": "l1", "attributes": {"title": "l"}}).to_string();
    let (ct2, body2) = multipart("o.ndjson", &orphan);
    let (_, _, a) = d
        .send("POST", &format!("{base}/_import"), body2, &ct2, true, &xsrf)
        .await;
    let a: Value = serde_json::from_slice(&a).unwrap();
    let kinds: Vec<&str> = a["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["error"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["unsupported_type", "missing_references"]);
    let (ct3, body3) = multipart("o.json", &objects());
    let (status, _, e) = d
        .send("POST", &format!("{base}/_import"), body3, &ct3, true, &xsrf)
        .await;
    assert_eq!(
        (
            status,
            serde_json::from_slice::<Value>(&e).unwrap()["message"].as_str()
        ),
        (400, Some("Invalid file extension .json"))
    );
    let (status, found) = d
        .call("GET", &format!("{base}/_find?type=visualization"), None)
        .await;
    assert_eq!((status, found["total"].as_u64()), (200, Some(1)));

    // Kibana on Elasticsearch domains, under its own path and header.
    let es = seeded(&h, "kibana");
    let (status, _, _) = es
        .send(
            "POST",
            "/_plugin/kibana/api/saved_objects/_import",
            body.clone(),
            &ct,
            true,
            &xsrf,
        )
        .await;
    assert_eq!(status, 400);
    let (status, _, _) = es
        .send(
            "POST",
            "/_plugin/kibana/api/saved_objects/_import",
            body.clone(),
            &ct,
            true,
            &[("kbn-xsrf", "true")],
        )
        .await;
    assert_eq!(status, 200);
    h.shutdown().await;
}

#[tokio::test]
async fn tenants_keep_their_own_objects_on_fine_grained_domains() {
    let h = start(fast_config()).await;
    let os = opensearch(&h).await;
    os.create_domain()
        .domain_name("fgac")
        .engine_version("OpenSearch_2.11")
        .advanced_security_options(
            aws_sdk_opensearch::types::AdvancedSecurityOptionsInput::builder()
                .enabled(true)
                .internal_user_database_enabled(false)
                .master_user_options(
                    aws_sdk_opensearch::types::MasterUserOptions::builder()
                        .master_user_arn("arn:aws:iam::123456789012:user/sandbox")
                        .build(),
                )
                .build(),
        )
        .node_to_node_encryption_options(
            aws_sdk_opensearch::types::NodeToNodeEncryptionOptions::builder()
                .enabled(true)
                .build(),
        )
        .encryption_at_rest_options(
            aws_sdk_opensearch::types::EncryptionAtRestOptions::builder()
                .enabled(true)
                .build(),
        )
        .domain_endpoint_options(
            aws_sdk_opensearch::types::DomainEndpointOptions::builder()
                .enforce_https(true)
                .build(),
        )
        .send()
        .await
        .expect("CreateDomain with fine-grained access control");
    let d = loop {
        let s = os
            .describe_domain()
            .domain_name("fgac")
            .send()
            .await
            .unwrap()
            .domain_status
            .unwrap();
        if let Some(e) = s.endpoint() {
            break DomainClient::new(&h, e);
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    let (ct, body) = multipart("e.ndjson", &objects());
    let team = [("osd-xsrf", "true"), ("securitytenant", "team")];
    let (status, _, _) = d
        .send(
            "POST",
            "/_dashboards/api/saved_objects/_import",
            body,
            &ct,
            true,
            &team,
        )
        .await;
    assert_eq!(status, 200);
    let (_, _, found) = d
        .send(
            "GET",
            "/_dashboards/api/saved_objects/_find?type=dashboard",
            Vec::new(),
            "application/json",
            true,
            &team,
        )
        .await;
    assert_eq!(serde_json::from_slice::<Value>(&found).unwrap()["total"], 1);
    let (_, _, global) = d
        .send(
            "GET",
            "/_dashboards/api/saved_objects/_find?type=dashboard",
            Vec::new(),
            "application/json",
            true,
            &[("securitytenant", "global")],
        )
        .await;
    assert_eq!(
        serde_json::from_slice::<Value>(&global).unwrap()["total"],
        0
    );
    h.shutdown().await;
}

/// An FGAC domain with an open access policy and an internal master user `admin`, and a user
/// `snapper` mapped to `manage_snapshots` alone, both signing in with HTTP basic auth.
async fn fgac_with_snapper() -> (SandboxHandle, reqwest::Client, String) {
    let policy = "{Version: \"2012-10-17\", Statement: [{Effect: Allow, Principal: {AWS: \"*\"}, Action: \"es:ESHttp*\", Resource: \"arn:aws:es:us-east-1:123456789012:domain/secure/*\"}]}";
    let yaml = format!(
        r#"
time_scale: 0.00001
domains:
  - name: secure
    engine_version: OpenSearch_2.11
    indices: [{{name: movies, generate: 3}}]
domain_security:
  secure:
    access_policy: {policy}
    fine_grained_access_control: {{master_user_name: admin, master_user_password: "Sandbox-Passw0rd!"}}
"#
    );
    let h = start(SandboxConfig::from_yaml_str(&yaml).expect("config")).await;
    let base = format!("https://{}", h.domain_endpoint("secure").expect("ready"));
    let pem = std::fs::read(h.ca_bundle_path()).expect("CA bundle");
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("PEM"))
        .build()
        .expect("client");
    let api = "/_plugins/_security/api";
    for (path, body) in [
        (
            format!("{api}/internalusers/snapper"),
            json!({"password": "Snapper-Passw0rd!", "backend_roles": ["snapshots"]}),
        ),
        (
            format!("{api}/rolesmapping/manage_snapshots"),
            json!({"backend_roles": ["snapshots"]}),
        ),
        (
            format!("{api}/internalusers/viewer"),
            json!({"password": "Viewer-Passw0rd!", "backend_roles": ["viewers"]}),
        ),
        (
            format!("{api}/rolesmapping/kibana_user"),
            json!({"backend_roles": ["viewers"]}),
        ),
    ] {
        let resp = http
            .put(format!("{base}{path}"))
            .basic_auth("admin", Some("Sandbox-Passw0rd!"))
            .json(&body)
            .send()
            .await
            .expect("answer");
        assert_eq!(resp.status().as_u16(), 201, "{path}");
    }
    (h, http, base)
}

#[tokio::test]
async fn the_security_plugin_names_the_action_of_every_metadata_api() {
    let (h, http, base) = fgac_with_snapper().await;
    let spec = Spec::load();
    let snapper = ("snapper", "Snapper-Passw0rd!");
    let cases: &[(&str, &str, Option<Value>, &str)] = &[
        (
            "GET",
            "/_index_template",
            None,
            "indices:admin/index_template/get",
        ),
        (
            "PUT",
            "/_index_template/logs",
            Some(json!({"index_patterns": ["logs-*"]})),
            "indices:admin/index_template/put",
        ),
        (
            "DELETE",
            "/_index_template/logs",
            None,
            "indices:admin/index_template/delete",
        ),
        (
            "GET",
            "/_component_template",
            None,
            "cluster:admin/component_template/get",
        ),
        (
            "PUT",
            "/_component_template/base",
            Some(json!({"template": {}})),
            "cluster:admin/component_template/put",
        ),
        ("GET", "/_template", None, "indices:admin/template/get"),
        (
            "PUT",
            "/_template/old",
            Some(json!({"index_patterns": ["old-*"]})),
            "indices:admin/template/put",
        ),
        (
            "GET",
            "/_ingest/pipeline",
            None,
            "cluster:admin/ingest/pipeline/get",
        ),
        (
            "PUT",
            "/_ingest/pipeline/p",
            Some(json!({"processors": []})),
            "cluster:admin/ingest/pipeline/put",
        ),
        (
            "POST",
            "/_ingest/pipeline/_simulate",
            Some(json!({"pipeline": {"processors": []}, "docs": []})),
            "cluster:admin/ingest/pipeline/simulate",
        ),
        ("GET", "/_scripts/s", None, "cluster:admin/script/get"),
        (
            "PUT",
            "/_scripts/s",
            Some(json!({"script": {"lang": "painless", "source": "1"}})),
            "cluster:admin/script/put",
        ),
        (
            "GET",
            "/_cluster/state/metadata",
            None,
            "cluster:monitor/state",
        ),
        (
            "GET",
            "/_plugins/_ism/policies",
            None,
            "cluster:admin/opendistro/ism/policy/search",
        ),
        (
            "GET",
            "/_plugins/_ism/policies/p",
            None,
            "cluster:admin/opendistro/ism/policy/get",
        ),
        (
            "PUT",
            "/_plugins/_ism/policies/p",
            Some(
                json!({"policy": {"description": "d", "default_state": "a", "states": [{"name": "a", "actions": [], "transitions": []}]}}),
            ),
            "cluster:admin/opendistro/ism/policy/write",
        ),
        (
            "POST",
            "/_plugins/_ism/add/movies",
            Some(json!({"policy_id": "p"})),
            "cluster:admin/opendistro/ism/managedindex/add",
        ),
        (
            "GET",
            "/_plugins/_ism/explain/movies",
            None,
            "cluster:admin/opendistro/ism/managedindex/explain",
        ),
        ("GET", "/movies/_alias", None, "indices:admin/aliases/get"),
        ("PUT", "/movies/_alias/films", None, "indices:admin/aliases"),
        (
            "GET",
            "/_data_stream",
            None,
            "indices:admin/data_stream/get",
        ),
        (
            "POST",
            "/_dashboards/api/saved_objects/_export",
            Some(json!({"type": ["dashboard"]})),
            "indices:data/read/search",
        ),
    ];
    for (method, path, body, action) in cases {
        let mut req = http
            .request(method.parse().unwrap(), format!("{base}{path}"))
            .basic_auth(snapper.0, Some(snapper.1))
            .header("osd-xsrf", "true");
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("answer");
        let status = resp.status().as_u16();
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 403, "{method} {path}: {answer}");
        assert_eq!(
            answer["error"]["reason"],
            format!(
                "no permissions for [{action}] and User [name=snapper, backend_roles=[snapshots], requestedTenant=null]"
            ),
            "{method} {path}"
        );
        spec.error(&answer);
    }

    // kibana_user reads and writes the global and private tenants; a custom tenant needs a
    // tenant permission, and the master's all_access has one for every tenant.
    let (ct, body) = multipart("e.ndjson", &objects());
    let import = |user: (&'static str, &'static str), tenant: &'static str| {
        http.post(format!("{base}/_dashboards/api/saved_objects/_import"))
            .basic_auth(user.0, Some(user.1))
            .header("osd-xsrf", "true")
            .header("securitytenant", tenant)
            .header("content-type", ct.clone())
            .body(body.clone())
            .send()
    };
    let viewer = ("viewer", "Viewer-Passw0rd!");
    for tenant in ["global", "private"] {
        let resp = import(viewer, tenant).await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{tenant}");
    }
    let resp = import(viewer, "team").await.unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(
        answer["error"]["reason"],
        "no permissions for [kibana:saved_objects/*/write] and User [name=viewer, backend_roles=[viewers], requestedTenant=null]"
    );
    let resp = import(("admin", "Sandbox-Passw0rd!"), "team")
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    h.shutdown().await;
}

#[tokio::test]
async fn metadata_is_seedable_and_a_bad_seed_is_refused_by_name() {
    let yaml = r#"
domains:
  - name: seeded
    engine_version: OpenSearch_2.11
seed_data:
  seeded:
    component_templates:
      base: {template: {settings: {number_of_shards: 2}}}
    index_templates:
      logs: {index_patterns: ["logs-*"], composed_of: [base]}
    legacy_templates:
      old: {index_patterns: ["old-*"], order: 3}
    pipelines:
      p: {processors: [{set: {field: seen, value: true}}]}
    scripts:
      s: {script: {lang: painless, source: "1"}}
    ism_policies:
      keep: {policy: {description: d, default_state: a, states: [{name: a, actions: [], transitions: []}]}}
    saved_objects:
      global:
        - {type: index-pattern, id: ip, attributes: {title: "logs-*"}}
"#;
    let mut config = SandboxConfig::from_yaml_str(yaml).expect("seeds are valid");
    config.time_scale = 0.00001;
    let h = start(config).await;
    let d = seeded(&h, "seeded");
    ok(&d, "PUT", "/logs-1", json!({})).await;
    let (_, got) = d.call("GET", "/logs-1", None).await;
    assert_eq!(got["logs-1"]["settings"]["index"]["number_of_shards"], "2");
    assert_eq!(
        d.call("GET", "/_template/old", None).await.1["old"]["order"],
        3
    );
    assert_eq!(d.call("GET", "/_ingest/pipeline/p", None).await.0, 200);
    assert_eq!(d.call("GET", "/_scripts/s", None).await.1["found"], true);
    assert_eq!(
        d.call("GET", "/_plugins/_ism/policies/keep", None).await.0,
        200
    );
    let (_, found) = d
        .call(
            "GET",
            "/_dashboards/api/saved_objects/_find?type=index-pattern",
            None,
        )
        .await;
    assert_eq!(found["saved_objects"][0]["id"], "ip");
    h.shutdown().await;

    let bad = "domains: [{name: bad}]\nseed_data:\n  bad:\n    pipelines:\n      p: {processors: [{nope: {}}]}\n";
    let err = SandboxConfig::from_yaml_str(bad).unwrap_err().to_string();
    assert!(
        err.contains("seed_data.bad.pipelines.p: the domain refuses it (400): No processor type exists with name [nope]"),
        "{err}"
    );
}

/// A legacy template's mappings nested under `_doc`: kept on Elasticsearch 6, refused from 7
/// to OpenSearch 1.x unless `include_type_name=true` (then stored typeless), and the parameter
/// itself unknown from OpenSearch 2.
#[tokio::test]
async fn a_typed_legacy_template_is_refused_from_7_unless_include_type_name() {
    let h = sandbox(vec![
        domain("es68", "Elasticsearch_6.8"),
        domain("es710", "Elasticsearch_7.10"),
        domain("os13", "OpenSearch_1.3"),
        domain("os211", "OpenSearch_2.11"),
    ])
    .await;
    let typed = json!({"index_patterns": ["t-*"],
                       "mappings": {"_doc": {"properties": {"n": {"type": "integer"}}}}});
    let old = seeded(&h, "es68");
    ok(&old, "PUT", "/_template/t", typed.clone()).await;
    let (_, got) = old.call("GET", "/_template/t", None).await;
    assert_eq!(
        got["t"]["mappings"]["_doc"]["properties"]["n"]["type"],
        "integer"
    );
    for name in ["es710", "os13"] {
        let d = seeded(&h, name);
        let (status, refused) = d.call("PUT", "/_template/t", Some(typed.clone())).await;
        assert_eq!(
            (
                status,
                refused["error"]["type"].as_str(),
                refused["error"]["reason"].as_str()
            ),
            (
                400,
                Some("illegal_argument_exception"),
                Some(
                    "The mapping definition cannot be nested under a type [_doc] unless include_type_name is set to true."
                )
            ),
            "{name}"
        );
        ok(
            &d,
            "PUT",
            "/_template/t?include_type_name=true",
            typed.clone(),
        )
        .await;
        let (_, got) = d.call("GET", "/_template/t", None).await;
        assert_eq!(
            got["t"]["mappings"]["properties"]["n"]["type"], "integer",
            "{name}"
        );
    }
    let new = seeded(&h, "os211");
    let (status, refused) = new
        .call("PUT", "/_template/t?include_type_name=true", Some(typed))
        .await;
    assert_eq!(
        (status, refused["error"]["type"].as_str()),
        (400, Some("illegal_argument_exception")),
        "{refused}"
    );
}
