//! The data plane behaves as the real server does where a kind stand-in would not (issue #13):
//! shards and replicas with `PEER` replica recoveries, unassignable shards and the allocation
//! explanation, a relocated primary, the 4 KB request line, strict parameters per engine version,
//! snapshot name and concurrency rules per version with the automated snapshots of old versions,
//! closed and UltraWarm indices, data streams, `index.version.created` on restore, a source still
//! being written to, and answers lost after the work was done. Every JSON body is validated
//! against the vendored OpenSearch API specification.

use crate::common;

use common::*;
use serde_json::{Value, json};
use snapferry_sandbox::{
    AutomatedSnapshots, FaultKind, FaultRule, SandboxConfig, SandboxHandle, SeedData,
    SeedDataStream, SeedDomain, SeedIndex, SeedWriter,
};

fn index(name: &str, generate: u64, settings: Option<Value>) -> SeedIndex {
    SeedIndex {
        name: name.into(),
        documents: Vec::new(),
        generate,
        settings,
        mappings: None,
    }
}

fn domain(name: &str, engine: &str, indices: Vec<SeedIndex>) -> SeedDomain {
    SeedDomain {
        name: name.into(),
        engine_version: engine.into(),
        ready: true,
        indices,
        kibana: false,
        vpc: false,
    }
}

fn no_automated() -> SeedData {
    SeedData {
        automated_snapshots: AutomatedSnapshots {
            enabled: false,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Polls `<index>/_recovery` until every listed copy is `DONE`.
async fn recovered(d: &DomainClient, index: &str) -> Value {
    for _ in 0..400 {
        let (status, body) = d.call("GET", &format!("/{index}/_recovery"), None).await;
        assert_eq!(status, 200, "{body}");
        let shards = body[index]["shards"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !shards.is_empty() && shards.iter().all(|s| s["stage"] == "DONE") {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{index} never recovered");
}

fn kinds(recovery: &Value, index: &str) -> Vec<(u64, bool, String)> {
    let mut out: Vec<(u64, bool, String)> = recovery[index]["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_u64().unwrap(),
                s["primary"].as_bool().unwrap(),
                s["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

async fn snapshot_and_restore(
    h: &SandboxHandle,
    source: &DomainClient,
    target: &DomainClient,
    body: Value,
) -> (u16, Value) {
    repository(h, source, "repo", "snaps").await;
    repository(h, target, "repo", "snaps").await;
    let (status, created) = source
        .call(
            "PUT",
            "/_snapshot/repo/snap-1?wait_for_completion=true",
            Some(json!({"indices": body["indices"].clone(), "include_global_state": false})),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    target
        .call("POST", "/_snapshot/repo/snap-1/_restore", Some(body))
        .await
}

#[tokio::test]
async fn primaries_recover_from_the_snapshot_and_replicas_from_a_peer() {
    let spec = Spec::load();
    let h = start(fast_config()).await;
    let source = ready_domain(&h, "source").await;
    let target = domain_with(&h, "target", "OpenSearch_2.11", Some(2)).await;
    let (status, _) = source
        .call(
            "PUT",
            "/logs",
            Some(json!({"settings": {"index": {"number_of_shards": 2, "number_of_replicas": 2}}})),
        )
        .await;
    assert_eq!(status, 200);
    source.bulk("logs", &[("1".into(), json!({"n": 1}))]).await;
    let (status, accepted) =
        snapshot_and_restore(&h, &source, &target, json!({"indices": "logs"})).await;
    assert_eq!(status, 200, "{accepted}");

    let recovery = recovered(&target, "logs").await;
    spec.response("indices", "indices.recovery@200", &recovery);
    // Two data nodes: each primary from the snapshot, one replica each from the primary's node,
    // the second replica of each shard unassigned and not listed.
    assert_eq!(
        kinds(&recovery, "logs"),
        [
            (0, false, "PEER".into()),
            (0, true, "SNAPSHOT".into()),
            (1, false, "PEER".into()),
            (1, true, "SNAPSHOT".into())
        ]
    );
    let shards = recovery["logs"]["shards"].as_array().unwrap();
    let primary = shards
        .iter()
        .find(|s| s["primary"] == true && s["id"] == 0)
        .unwrap();
    let replica = shards
        .iter()
        .find(|s| s["primary"] == false && s["id"] == 0)
        .unwrap();
    assert_eq!(primary["source"]["repository"], "repo");
    assert_eq!(primary["source"]["snapshot"], "snap-1");
    assert_eq!(primary["source"]["index"], "logs");
    assert_eq!(
        replica["source"]["id"], primary["target"]["id"],
        "a replica copies its primary's node"
    );
    assert_ne!(replica["target"]["id"], primary["target"]["id"]);

    let (_, health) = target.call("GET", "/_cluster/health", None).await;
    spec.response("cluster", "cluster.health@200", &health);
    assert_eq!(health["status"], "yellow");
    assert_eq!(
        (
            health["active_shards"].as_u64(),
            health["unassigned_shards"].as_u64(),
            health["number_of_data_nodes"].as_u64()
        ),
        (Some(4), Some(2), Some(2))
    );
    let (_, cat) = target
        .call("GET", "/_cat/indices/logs?format=json", None)
        .await;
    assert_eq!(
        (
            cat[0]["health"].as_str(),
            cat[0]["pri"].as_str(),
            cat[0]["rep"].as_str()
        ),
        (Some("yellow"), Some("2"), Some("2"))
    );

    // The unassigned replica is explained by the same-shard decider.
    let (status, explain) = target
        .call("GET", "/_cluster/allocation/explain", None)
        .await;
    assert_eq!(status, 200, "{explain}");
    spec.response("cluster", "cluster.allocation_explain@200", &explain);
    assert_eq!(
        (
            explain["index"].as_str(),
            explain["primary"].as_bool(),
            explain["current_state"].as_str()
        ),
        (Some("logs"), Some(false), Some("unassigned"))
    );
    assert_eq!(explain["unassigned_info"]["reason"], "NEW_INDEX_RESTORED");
    assert_eq!(
        explain["unassigned_info"]["details"],
        "restore_source[repo/snap-1]"
    );
    let deciders: Vec<&str> = explain["node_allocation_decisions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| {
            d["deciders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["decider"].as_str().unwrap())
        })
        .collect();
    assert_eq!(deciders, ["same_shard", "same_shard"]);
    h.shutdown().await;
}

#[tokio::test]
async fn versions_before_7_create_five_primaries_and_a_relocated_primary_shows_peer() {
    let mut config = fast_config();
    config.domains = vec![domain(
        "six",
        "Elasticsearch_6.8",
        vec![index("old", 3, None)],
    )];
    let mut target = no_automated();
    target.relocate_primaries_after_secs = Some(100_000.0);
    config.seed_data.insert("target".into(), target);
    config.seed_data.insert("six".into(), no_automated());
    let h = start(config).await;
    let six = seeded(&h, "six");
    let (_, cat) = six.call("GET", "/_cat/indices/old?format=json", None).await;
    assert_eq!(
        cat[0]["pri"], "5",
        "Elasticsearch 6 defaults to five primaries"
    );

    let source = ready_domain(&h, "source").await;
    let target = ready_domain(&h, "target").await;
    source
        .bulk("events", &[("1".into(), json!({"n": 1}))])
        .await;
    let (status, _) =
        snapshot_and_restore(&h, &source, &target, json!({"indices": "events"})).await;
    assert_eq!(status, 200);
    let recovery = recovered(&target, "events").await;
    assert_eq!(kinds(&recovery, "events"), [(0, true, "SNAPSHOT".into())]);
    // A blue/green deployment later moves the primary to a new node.
    let (status, _) = h_clock(&h, 200_000.0).await;
    assert_eq!(status, 200);
    let (_, moved) = target.call("GET", "/events/_recovery", None).await;
    Spec::load().response("indices", "indices.recovery@200", &moved);
    assert_eq!(kinds(&moved, "events"), [(0, true, "PEER".into())]);
    let shard = &moved["events"]["shards"][0];
    assert_eq!(
        shard["source"]["id"],
        recovery["events"]["shards"][0]["target"]["id"]
    );
    assert_ne!(shard["target"]["id"], shard["source"]["id"]);
    h.shutdown().await;
}

/// Moves simulated time forward through the sandbox's own endpoint.
async fn h_clock(h: &SandboxHandle, secs: f64) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/_sandbox/clock?advance_secs={secs}",
            h.endpoint_url()
        ))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn settings_no_node_satisfies_leave_the_restore_red_and_explained() {
    let spec = Spec::load();
    let h = start(fast_config()).await;
    let source = ready_domain(&h, "source").await;
    let target = ready_domain(&h, "target").await;
    source
        .bulk("pinned", &[("1".into(), json!({"n": 1}))])
        .await;
    let (status, _) = snapshot_and_restore(
        &h,
        &source,
        &target,
        json!({"indices": "pinned", "index_settings": {"index.routing.allocation.require.box_type": "hot"}}),
    )
    .await;
    assert_eq!(status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let (_, recovery) = target.call("GET", "/pinned/_recovery", None).await;
    assert_eq!(
        recovery,
        json!({"pinned": {"shards": []}}),
        "unassigned shards are not listed"
    );
    let (_, health) = target.call("GET", "/_cluster/health", None).await;
    assert_eq!(
        (
            health["status"].as_str(),
            health["unassigned_shards"].as_u64()
        ),
        (Some("red"), Some(2))
    );

    let (status, explain) = target
        .call(
            "POST",
            "/_cluster/allocation/explain",
            Some(json!({"index": "pinned", "shard": 0, "primary": true})),
        )
        .await;
    assert_eq!(status, 200, "{explain}");
    spec.response("cluster", "cluster.allocation_explain@200", &explain);
    assert_eq!(explain["can_allocate"], "no");
    assert_eq!(
        explain["allocate_explanation"],
        "cannot allocate because allocation is not permitted to any of the nodes"
    );
    assert_eq!(
        explain["node_allocation_decisions"][0]["deciders"][0],
        json!({"decider": "filter", "decision": "NO", "explanation": "node does not match index setting [index.routing.allocation.require] filters [box_type:\"hot\"]"})
    );
    // The restore never completes: waiting for it ends at the load balancer.
    let (status, _) = target
        .raw("POST", "/_snapshot/repo/snap-1/_restore?wait_for_completion=true", json!({"indices": "pinned", "rename_pattern": "(.+)", "rename_replacement": "again-$1", "index_settings": {"index.routing.allocation.require.box_type": "hot"}}).to_string().into_bytes(), "application/json")
        .await;
    assert_eq!(status, 504);

    let healthy = ready_domain(&h, "healthy").await;
    let (status, none) = healthy
        .call("GET", "/_cluster/allocation/explain", None)
        .await;
    assert_eq!(status, 400);
    spec.error(&none);
    assert_eq!(
        none["error"]["reason"],
        "unable to find any unassigned shards to explain [ClusterAllocationExplainRequest[useAnyUnassignedShard=true,includeYesDecisions?=false]"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_restore_reads_only_indices_its_version_can_read() {
    let spec = Spec::load();
    let mut config = fast_config();
    config.domains = vec![
        domain(
            "upgraded",
            "Elasticsearch_7.10",
            vec![
                index(
                    "from-six",
                    2,
                    Some(json!({"index": {"version": {"created": "6080099"}}})),
                ),
                index("from-seven", 2, None),
            ],
        ),
        domain("os-one", "OpenSearch_1.3", vec![]),
        domain("os-two", "OpenSearch_2.11", vec![index("new", 1, None)]),
        domain("es-six", "Elasticsearch_6.8", vec![]),
    ];
    config.seed_data.insert("es-six".into(), no_automated());
    let h = start(config).await;
    let (upgraded, os1, os2, es6) = (
        seeded(&h, "upgraded"),
        seeded(&h, "os-one"),
        seeded(&h, "os-two"),
        seeded(&h, "es-six"),
    );
    for d in [&upgraded, &os1, &os2, &es6] {
        repository(&h, d, "repo", "snaps").await;
    }
    // Each index says which version created it (`GET <indices>/_settings/<name>`).
    let (status, created) = upgraded
        .call(
            "GET",
            "/from-six,from-seven/_settings/index.version.created?flat_settings=true",
            None,
        )
        .await;
    assert_eq!(status, 200, "{created}");
    spec.response("indices", "indices.get_settings@200", &created);
    assert_eq!(
        created,
        json!({
            "from-six": {"settings": {"index.version.created": "6080099"}},
            "from-seven": {"settings": {"index.version.created": "7100299"}},
        })
    );
    let (_, nested) = upgraded
        .call("GET", "/_settings/index.version.*", None)
        .await;
    assert_eq!(
        nested["from-six"]["settings"]["index"]["version"]["created"], "6080099",
        "{nested}"
    );
    let (status, refused) = es6
        .call("GET", "/_settings?flat_settings=true&bogus=1", None)
        .await;
    assert_eq!(status, 400, "{refused}");
    let (status, _) = upgraded
        .call(
            "PUT",
            "/_snapshot/repo/from-710?wait_for_completion=true",
            Some(json!({"indices": "from-*"})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, got) = os2.call("GET", "/_snapshot/repo/from-710", None).await;
    assert_eq!(
        (
            got["snapshots"][0]["version"].as_str(),
            got["snapshots"][0]["version_id"].as_u64()
        ),
        (Some("7.10.2"), Some(7_100_299))
    );

    // OpenSearch 2 reads 7.x-created indices, not 6.x-created ones, whatever the snapshot's version.
    let (status, refused) = os2
        .call(
            "POST",
            "/_snapshot/repo/from-710/_restore?wait_for_completion=true",
            Some(json!({"indices": "from-six"})),
        )
        .await;
    assert_eq!(status, 500, "{refused}");
    spec.error(&refused);
    assert_eq!(refused["error"]["type"], "snapshot_restore_exception");
    let reason = refused["error"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("[repo:from-710/")
            && reason.ends_with("] cannot restore index [from-six] because it cannot be upgraded"),
        "{reason}"
    );
    assert_eq!(
        refused["error"]["caused_by"]["type"],
        "illegal_state_exception"
    );
    let cause = refused["error"]["caused_by"]["reason"].as_str().unwrap();
    assert!(cause.contains("was created with version [6.8.0] but the minimum compatible version is [7.0.0]. It should be re-indexed in OpenSearch 7.x before upgrading to 2.11.0."), "{cause}");
    let (status, ok) = os2
        .call(
            "POST",
            "/_snapshot/repo/from-710/_restore?wait_for_completion=true",
            Some(json!({"indices": "from-seven"})),
        )
        .await;
    assert_eq!(status, 200, "{ok}");
    let (_, settings) = os2.call("GET", "/from-seven", None).await;
    assert_eq!(
        settings["from-seven"]["settings"]["index"]["version"]["created"],
        "7100299"
    );
    // OpenSearch 1.3 still reads 6.x-created indices.
    let (status, ok) = os1
        .call(
            "POST",
            "/_snapshot/repo/from-710/_restore?wait_for_completion=true",
            Some(json!({"indices": "from-six"})),
        )
        .await;
    assert_eq!(status, 200, "{ok}");

    // A snapshot from a newer version is refused as a whole.
    let (status, _) = os2
        .call(
            "PUT",
            "/_snapshot/repo/from-211?wait_for_completion=true",
            Some(json!({"indices": "new"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, newer) = es6
        .call(
            "POST",
            "/_snapshot/repo/from-211/_restore",
            Some(json!({"indices": "new"})),
        )
        .await;
    assert_eq!(status, 500);
    assert!(newer["error"]["reason"].as_str().unwrap().ends_with("the snapshot was created with Elasticsearch version [2.11.0] which is higher than the version of this node [6.8.0]"), "{newer}");
    h.shutdown().await;
}

#[tokio::test]
async fn rest_parameters_are_strict_per_engine_version() {
    let spec = Spec::load();
    let mut config = fast_config();
    let engines = [
        ("es-fifty-six", "Elasticsearch_5.6", false),
        ("es-sixty-eight", "Elasticsearch_6.8", false),
        ("es-seventy-one", "Elasticsearch_7.1", false),
        ("es-seventy-ten", "Elasticsearch_7.10", true),
        ("os-one", "OpenSearch_1.3", true),
        ("os-two", "OpenSearch_2.11", true),
    ];
    for (name, engine, _) in engines {
        config
            .domains
            .push(domain(name, engine, vec![index("a", 1, None)]));
        config.seed_data.insert(name.into(), no_automated());
    }
    let h = start(config).await;
    for (name, engine, expand_ok) in engines {
        let d = seeded(&h, name);
        let (status, body) = d
            .call(
                "GET",
                "/_cat/indices?format=json&expand_wildcards=all",
                None,
            )
            .await;
        if expand_ok {
            assert_eq!(status, 200, "{engine}: {body}");
        } else {
            assert_eq!(status, 400, "{engine}");
            spec.error(&body);
            assert_eq!(
                body["error"],
                json!({"root_cause": [{"type": "illegal_argument_exception", "reason": "request [/_cat/indices] contains unrecognized parameter: [expand_wildcards]"}], "type": "illegal_argument_exception", "reason": "request [/_cat/indices] contains unrecognized parameter: [expand_wildcards]"}),
                "{engine}"
            );
        }
        let (status, body) = d.call("GET", "/a/_count?q=x&pretty=true", None).await;
        assert_eq!(status, 200, "{engine}: {body}");
        let (status, body) = d
            .call("GET", "/_cluster/health?wait_for_statu=green", None)
            .await;
        assert_eq!(status, 400, "{engine}");
        assert_eq!(
            body["error"]["reason"],
            "request [/_cluster/health] contains unrecognized parameter: [wait_for_statu] -> did you mean any of [wait_for_status, wait_for_events, wait_for_nodes]?",
            "{engine}"
        );
        let (status, _) = d
            .call("GET", "/_cluster/health?cluster_manager_timeout=30s", None)
            .await;
        assert_eq!(
            status == 200,
            engine == "OpenSearch_2.11",
            "{engine}: cluster_manager_timeout exists from OpenSearch 2.0"
        );
    }
    // The refused request never reached its handler.
    let log = h.request_log();
    let refused = log
        .iter()
        .find(|e| e.path == "/_cat/indices?format=json&expand_wildcards=all" && e.status == 400)
        .expect("logged with its query");
    assert_eq!(
        (refused.method.as_str(), refused.operation.as_str()),
        ("GET", "CatIndices")
    );
    h.shutdown().await;
}

#[tokio::test]
async fn request_lines_over_4096_bytes_are_refused_and_every_line_is_logged() {
    let spec = Spec::load();
    let mut config = fast_config();
    config.domains = vec![
        domain("os-two", "OpenSearch_2.11", vec![index("a", 1, None)]),
        domain(
            "es-seventy-ten",
            "Elasticsearch_7.10",
            vec![index("a", 1, None)],
        ),
    ];
    let h = start(config).await;
    // "GET " + path + " HTTP/1.1": a path of 4096 - 13 bytes makes a line of exactly 4096.
    let path_of = |len: usize| {
        let head = "/a,";
        let tail = "/_recovery";
        format!("{head}{}{tail}", "x".repeat(len - head.len() - tail.len()))
    };
    for (name, kind) in [
        ("os-two", "too_long_http_line_exception"),
        ("es-seventy-ten", "too_long_frame_exception"),
    ] {
        let d = seeded(&h, name);
        let (status, at_limit) = d.call("GET", &path_of(4096 - 13), None).await;
        assert_eq!(
            (status, at_limit["error"]["type"].as_str()),
            (404, Some("index_not_found_exception")),
            "{name}: a 4096-byte line is read"
        );
        let (status, over) = d.call("GET", &path_of(4096 - 12), None).await;
        assert_eq!(status, 400, "{name}");
        spec.error(&over);
        assert_eq!(over["error"]["type"], kind);
        assert_eq!(
            over["error"]["reason"],
            "An HTTP line is larger than 4096 bytes."
        );
    }
    let longest = h
        .request_log()
        .iter()
        .filter(|e| e.service == "es-data")
        .map(|e| e.method.len() + 1 + e.path.len() + " HTTP/1.1".len())
        .max()
        .unwrap();
    assert_eq!(longest, 4097, "the log holds each request line whole");
    h.shutdown().await;
}

#[tokio::test]
async fn snapshot_names_and_concurrency_follow_the_version() {
    let spec = Spec::load();
    let mut config = fast_config();
    config.time_scale = 0.01; // a 60 s snapshot takes 600 ms
    config.latencies.snapshot_secs = 60.0; // a snapshot of one document is mostly its fixed part
    config.domains = vec![
        domain("os-two", "OpenSearch_2.11", vec![index("a", 1, None)]),
        domain("es-six", "Elasticsearch_6.8", vec![index("a", 1, None)]),
    ];
    // The automated snapshot of the 6.8 domain runs from the start, for ten simulated minutes.
    config.seed_data.insert(
        "es-six".into(),
        SeedData {
            automated_snapshots: AutomatedSnapshots {
                enabled: true,
                first_after_secs: 0.0,
                every_secs: 3600.0,
                duration_secs: 600.0,
            },
            ..Default::default()
        },
    );
    let h = start(config).await;
    let os = seeded(&h, "os-two");
    repository(&h, &os, "repo", "snaps").await;
    let (status, _) = os.call("PUT", "/_snapshot/repo/s", None).await;
    assert_eq!(status, 200);
    let (status, again) = os.call("PUT", "/_snapshot/repo/s", None).await;
    assert_eq!(status, 400);
    spec.error(&again);
    assert_eq!(again["error"]["type"], "invalid_snapshot_name_exception");
    assert_eq!(
        again["error"]["reason"],
        "[repo:s] Invalid snapshot name [s], snapshot with the same name is already in-progress"
    );
    let (status, other) = os.call("PUT", "/_snapshot/repo/t", None).await;
    assert_eq!(
        status, 200,
        "OpenSearch runs snapshots of other names concurrently: {other}"
    );
    let (_, running) = os.call("GET", "/_snapshot/_status", None).await;
    spec.response("snapshot", "snapshot.status@200", &running);
    assert_eq!(running["snapshots"].as_array().unwrap().len(), 2);
    let (status, _) = os
        .call("GET", "/_snapshot/repo/s?wait_for_completion=true", None)
        .await;
    assert_eq!(status, 400, "GET snapshot takes no wait_for_completion");
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let (status, exists) = os.call("PUT", "/_snapshot/repo/s", None).await;
    assert_eq!(
        (status, exists["error"]["reason"].as_str()),
        (
            400,
            Some("[repo:s] Invalid snapshot name [s], snapshot with the same name already exists")
        )
    );

    // Elasticsearch 6.8: the hourly automated snapshot holds the only slot.
    let six = seeded(&h, "es-six");
    repository(&h, &six, "repo", "snaps-six").await;
    let (_, repos) = six.call("GET", "/_snapshot", None).await;
    spec.response("snapshot", "snapshot.get_repository@200", &repos);
    assert_eq!(repos["cs-automated"]["type"], "s3");
    let (_, running) = six.call("GET", "/_snapshot/_status", None).await;
    spec.response("snapshot", "snapshot.status@200", &running);
    assert_eq!(running["snapshots"][0]["repository"], "cs-automated");
    let (status, busy) = six.call("PUT", "/_snapshot/repo/mine", None).await;
    assert_eq!(status, 503);
    spec.error(&busy);
    assert_eq!(
        busy["error"]["type"],
        "concurrent_snapshot_execution_exception"
    );
    assert_eq!(
        busy["error"]["reason"],
        "[repo:mine]  a snapshot is already running"
    );
    // After the automated snapshot's ten minutes the slot is free.
    h_clock(&h, 700.0).await;
    let (status, mine) = six
        .call("PUT", "/_snapshot/repo/mine?wait_for_completion=true", None)
        .await;
    assert_eq!(status, 200, "{mine}");
    h.shutdown().await;
}

#[tokio::test]
async fn closed_and_warm_indices_and_data_streams_snapshot_as_the_service_allows() {
    let spec = Spec::load();
    let mut config = fast_config();
    config.domains = vec![
        domain(
            "source",
            "OpenSearch_2.11",
            vec![
                index("hot", 3, None),
                index("shut", 2, None),
                index("w1", 2, None),
                index("w2", 2, None),
            ],
        ),
        domain(
            "old",
            "Elasticsearch_7.8",
            vec![index("hot", 1, None), index("shut", 1, None)],
        ),
    ];
    config.seed_data.insert(
        "source".into(),
        SeedData {
            closed: vec!["shut".into()],
            warm: vec!["w1".into(), "w2".into()],
            data_streams: vec![SeedDataStream {
                name: "app-logs".into(),
                generations: 2,
                generate: 5,
            }],
            ..Default::default()
        },
    );
    config.seed_data.insert(
        "old".into(),
        SeedData {
            closed: vec!["shut".into()],
            ..no_automated()
        },
    );
    let h = start(config).await;
    let source = seeded(&h, "source");
    let target = ready_domain(&h, "target").await;
    repository(&h, &source, "repo", "snaps").await;
    repository(&h, &target, "repo", "snaps").await;

    let (_, cat) = source
        .call(
            "GET",
            "/_cat/indices?format=json&expand_wildcards=all",
            None,
        )
        .await;
    spec.response("cat", "cat.indices@200", &cat);
    let row = |n: &str| {
        cat.as_array()
            .unwrap()
            .iter()
            .find(|r| r["index"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        (
            row("shut")["status"].as_str(),
            row("shut")["docs.count"].clone()
        ),
        (Some("close"), Value::Null)
    );
    assert_eq!(row(".ds-app-logs-000002")["docs.count"], "5");
    let (_, warm) = source
        .call("GET", "/_cat/indices/_warm?format=json", None)
        .await;
    let warm: Vec<&str> = warm
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_str().unwrap())
        .collect();
    assert_eq!(warm, ["w1", "w2"]);
    let (status, closed) = source.call("GET", "/shut/_count", None).await;
    assert_eq!(
        (status, closed["error"]["type"].as_str()),
        (400, Some("index_closed_exception"))
    );
    let (status, _) = source
        .call("PUT", "/w1/_doc/x", Some(json!({"n": 1})))
        .await;
    assert_eq!(status, 403, "warm indices are read-only");

    let (status, _) = source.call("GET", "/_data_stream", None).await;
    assert_eq!(status, 200);
    let (_, streams) = source.call("GET", "/_data_stream/app-logs", None).await;
    spec.response("indices", "indices.get_data_stream@200", &streams);
    assert_eq!(
        streams["data_streams"][0]["indices"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        streams["data_streams"][0]["indices"][1]["index_name"],
        ".ds-app-logs-000002"
    );
    let (_, count) = source.call("GET", "/app-logs/_count", None).await;
    assert_eq!(
        count["count"], 10,
        "a stream's name reads its backing indices"
    );

    // Hot and warm never share a snapshot, and a snapshot holds at most one warm index.
    for (name, indices) in [("mixed", "hot,w1"), ("two-warm", "w1,w2")] {
        let (status, refused) = source
            .call(
                "PUT",
                &format!("/_snapshot/repo/{name}"),
                Some(json!({"indices": indices})),
            )
            .await;
        assert_eq!(status, 400, "{name}: {refused}");
        spec.error(&refused);
    }
    let (status, _) = source
        .call(
            "PUT",
            "/_snapshot/repo/one-warm?wait_for_completion=true",
            Some(json!({"indices": "w1"})),
        )
        .await;
    assert_eq!(status, 200);

    // A closed index fails a snapshot that is not partial; a partial one leaves it out.
    let (status, refused) = source
        .call(
            "PUT",
            "/_snapshot/repo/with-closed",
            Some(json!({"indices": "hot,shut"})),
        )
        .await;
    assert_eq!(status, 500);
    spec.error(&refused);
    assert_eq!(refused["error"]["type"], "snapshot_exception");
    assert!(
        refused["error"]["reason"]
            .as_str()
            .unwrap()
            .ends_with("] Indices don't have primary shards [shut]"),
        "{refused}"
    );
    let (status, partial) = source
        .call(
            "PUT",
            "/_snapshot/repo/partial?wait_for_completion=true",
            Some(json!({"indices": "hot,shut", "partial": true})),
        )
        .await;
    assert_eq!(
        (status, partial["snapshot"]["state"].as_str()),
        (200, Some("PARTIAL"))
    );
    spec.response("snapshot", "snapshot.create@200", &partial);
    assert_eq!(
        partial["snapshot"]["failures"][0]["reason"],
        "index is closed"
    );
    // Before 7.9 the snapshot starts, then fails.
    let old = seeded(&h, "old");
    repository(&h, &old, "repo", "snaps-old").await;
    let (status, failed) = old
        .call(
            "PUT",
            "/_snapshot/repo/with-closed?wait_for_completion=true",
            Some(json!({"indices": "hot,shut"})),
        )
        .await;
    assert_eq!(
        (status, failed["snapshot"]["state"].as_str()),
        (200, Some("FAILED")),
        "{failed}"
    );
    assert_eq!(failed["snapshot"]["reason"], "Indices are closed [shut]");

    // A data stream is snapshotted with its backing indices and comes back as a stream.
    let (status, taken) = source
        .call(
            "PUT",
            "/_snapshot/repo/streams?wait_for_completion=true",
            Some(json!({"indices": "app-logs"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(taken["snapshot"]["data_streams"], json!(["app-logs"]));
    assert_eq!(
        taken["snapshot"]["indices"],
        json!([".ds-app-logs-000001", ".ds-app-logs-000002"])
    );
    let (status, restored) = target
        .call(
            "POST",
            "/_snapshot/repo/streams/_restore?wait_for_completion=true",
            Some(json!({"indices": "app-logs"})),
        )
        .await;
    assert_eq!(status, 200, "{restored}");
    let (_, streams) = target.call("GET", "/_data_stream", None).await;
    assert_eq!(streams["data_streams"][0]["name"], "app-logs");
    let (_, count) = target.call("GET", "/app-logs/_count", None).await;
    assert_eq!(count["count"], 10);

    // Only a stream the request names or matches goes into the snapshot: backing indices named
    // alone are snapshotted, and restored, as plain indices (OpenSearch's `SnapshotsService`
    // takes the streams from `dataStreamNames` of the request's expressions).
    let (status, loose) = source
        .call(
            "PUT",
            "/_snapshot/repo/backing-only?wait_for_completion=true",
            Some(json!({"indices": ".ds-app-logs-000001,.ds-app-logs-000002"})),
        )
        .await;
    assert_eq!(status, 200, "{loose}");
    spec.response("snapshot", "snapshot.create@200", &loose);
    assert_eq!(loose["snapshot"]["data_streams"], json!([]));
    assert_eq!(
        loose["snapshot"]["indices"],
        json!([".ds-app-logs-000001", ".ds-app-logs-000002"])
    );
    let (status, restored) = target
        .call(
            "POST",
            "/_snapshot/repo/backing-only/_restore?wait_for_completion=true",
            Some(
                json!({"rename_pattern": "\\.ds-app-logs-(.*)", "rename_replacement": "loose-$1"}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{restored}");
    let (_, streams) = target.call("GET", "/_data_stream", None).await;
    assert_eq!(
        streams["data_streams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["app-logs"],
        "no stream came back with loose backing indices: {streams}"
    );
    let (status, count) = target.call("GET", "/loose-000002/_count", None).await;
    assert_eq!((status, count["count"].as_u64()), (200, Some(5)));
    let (status, written) = target
        .call("POST", "/loose-000002/_doc", Some(json!({"n": 1})))
        .await;
    assert_eq!(
        status, 201,
        "a plain index takes a write without @timestamp: {written}"
    );
    // A wildcard matching the stream's name brings the stream.
    let (status, matched) = source
        .call(
            "PUT",
            "/_snapshot/repo/by-pattern?wait_for_completion=true",
            Some(json!({"indices": "app-*"})),
        )
        .await;
    assert_eq!(status, 200, "{matched}");
    assert_eq!(matched["snapshot"]["data_streams"], json!(["app-logs"]));

    // A closed index on the target is restored over (an open one is refused).
    let (status, _) = target
        .call(
            "POST",
            "/_snapshot/repo/partial/_restore?wait_for_completion=true",
            Some(json!({"indices": "hot"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = target.call("POST", "/hot/_close", None).await;
    assert_eq!(status, 200);
    let (status, again) = target
        .call(
            "POST",
            "/_snapshot/repo/partial/_restore?wait_for_completion=true",
            Some(json!({"indices": "hot"})),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    let (_, count) = target.call("GET", "/hot/_count", None).await;
    assert_eq!(count["count"], 3);
    h.shutdown().await;
}

#[tokio::test]
async fn a_source_in_use_has_more_documents_than_its_snapshot() {
    let mut config = fast_config();
    config.time_scale = 0.001;
    config.domains = vec![domain(
        "busy",
        "OpenSearch_2.11",
        vec![index("orders", 10, None)],
    )];
    config.seed_data.insert(
        "busy".into(),
        SeedData {
            writers: vec![SeedWriter {
                index: "orders".into(),
                docs_per_minute: 600.0,
            }],
            ..Default::default()
        },
    );
    let h = start(config).await;
    let source = seeded(&h, "busy");
    let target = ready_domain(&h, "target").await;
    h_clock(&h, 60.0).await; // a simulated minute: 600 more documents
    let (_, before) = source.call("GET", "/orders/_count", None).await;
    let before = before["count"].as_u64().unwrap();
    assert!(before >= 610, "{before}");
    let (status, _) =
        snapshot_and_restore(&h, &source, &target, json!({"indices": "orders"})).await;
    assert_eq!(status, 200);
    recovered(&target, "orders").await;
    h_clock(&h, 60.0).await;
    let (_, after) = source.call("GET", "/orders/_count", None).await;
    let after = after["count"].as_u64().unwrap();
    let (_, copied) = target.call("GET", "/orders/_count", None).await;
    let copied = copied["count"].as_u64().unwrap();
    assert!(
        before <= copied && copied < after,
        "{before} <= {copied} < {after}"
    );
    h.shutdown().await;
}

fn lost(kind: FaultKind, service: &str, operation: &str) -> FaultRule {
    FaultRule {
        kind,
        service: Some(service.into()),
        operation: Some(operation.into()),
        target: None,
        rate: None,
        nth: Some(1),
        times: None,
        status: None,
        delay_secs: None,
    }
}

#[tokio::test]
async fn a_lost_answer_comes_after_the_work_is_done() {
    let h = start(fast_config()).await;
    let d = ready_domain(&h, "source").await;
    d.bulk("a", &[("1".into(), json!({"n": 1}))]).await;
    repository(&h, &d, "repo", "snaps").await;
    h.set_faults(
        0,
        vec![
            lost(FaultKind::LostAnswer, "es-data", "CreateSnapshot"),
            lost(FaultKind::LostConnection, "iam", "CreateRole"),
            lost(FaultKind::LostAnswer, "s3", "CreateBucket"),
            lost(FaultKind::LostAnswer, "es", "CreateDomain"),
        ],
    );
    let (status, body) = d
        .raw("PUT", "/_snapshot/repo/s1", vec![], "application/json")
        .await;
    assert_eq!(status, 504);
    assert!(String::from_utf8_lossy(&body).contains("504 Gateway Time-out"));
    let (status, got) = d.call("GET", "/_snapshot/repo/s1", None).await;
    assert_eq!(status, 200, "the snapshot was started all the same: {got}");
    let (status, retry) = d.call("PUT", "/_snapshot/repo/s1", None).await;
    assert_eq!(status, 400, "{retry}");

    let iam = iam(&h).await;
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "es.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    assert!(
        iam.create_role()
            .role_name("made")
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .is_err()
    );
    iam.get_role()
        .role_name("made")
        .send()
        .await
        .expect("the role exists although the answer was lost");

    let s3 = s3(&h).await;
    let err = s3
        .create_bucket()
        .bucket("made-bucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 504);
    s3.head_bucket()
        .bucket("made-bucket")
        .send()
        .await
        .expect("the bucket exists");

    let os = opensearch(&h).await;
    assert!(
        os.create_domain()
            .domain_name("made-domain")
            .engine_version("OpenSearch_2.11")
            .send()
            .await
            .is_err()
    );
    os.describe_domain()
        .domain_name("made-domain")
        .send()
        .await
        .expect("the domain exists");

    let log = h.request_log();
    let faults: Vec<(&str, u16, &str)> = log
        .iter()
        .filter_map(|e| {
            e.fault
                .as_deref()
                .map(|f| (e.operation.as_str(), e.status, f))
        })
        .collect();
    assert_eq!(
        faults,
        [
            ("CreateSnapshot", 504, "LostAnswer (answer was 200)"),
            ("CreateRole", 0, "LostConnection"),
            ("CreateBucket", 504, "LostAnswer (answer was 200)"),
            ("CreateDomain", 504, "LostAnswer (answer was 200)"),
        ]
    );
    h.shutdown().await;
}

#[test]
fn seed_data_must_name_what_is_seeded() {
    let err = SandboxConfig::from_yaml_str(
        "domains:\n  - name: src\n    indices: [{name: a}]\nseed_data:\n  src:\n    closed: [b]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("invalid sandbox config"), "{err}");
    let config = SandboxConfig::from_yaml_str(
        "domains:\n  - name: src\n    engine_version: Elasticsearch_7.10\n    indices: [{name: a}]\nseed_data:\n  src:\n    data_streams: [{name: logs}]\n",
    );
    assert!(config.is_err(), "no data streams on Elasticsearch domains");
    let ok = SandboxConfig::from_yaml_str(
        "domains:\n  - name: src\n    indices: [{name: a}]\nseed_data:\n  src:\n    closed: [a]\n    writers: [{index: a, docs_per_minute: 60}]\n  target:\n    relocate_primaries_after_secs: 30\n",
    )
    .expect("valid");
    assert_eq!(ok.seed_data["src"].writers[0].docs_per_minute, 60.0);
}
