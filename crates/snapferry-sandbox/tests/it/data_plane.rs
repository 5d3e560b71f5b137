//! Each domain's HTTPS data plane, driven by a SigV4-signed reqwest client; every JSON body is
//! checked against the vendored OpenSearch API specification.

use crate::common;

use common::*;
use serde_json::{Value, json};

fn docs(n: usize, tag: &str) -> Vec<(String, Value)> {
    (0..n)
        .map(|i| (format!("{tag}-{i}"), json!({"n": i, "tag": tag})))
        .collect()
}

async fn all_docs(d: &DomainClient, index: &str) -> Vec<(String, Value)> {
    let (status, body) = d
        .call(
            "GET",
            &format!("/{index}/_search?size=10000"),
            Some(json!({"query": {"match_all": {}}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut out: Vec<(String, Value)> = body["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["_id"].as_str().unwrap().to_owned(), h["_source"].clone()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[tokio::test]
async fn indices_bulk_count_search_health_and_cat() {
    let spec = Spec::load();
    let h = start(fast_config()).await;
    let d = ready_domain(&h, "source").await;

    let (status, info) = d.call("GET", "/", None).await;
    assert_eq!(status, 200);
    assert_eq!(info["version"]["distribution"], "opensearch");
    spec.response("_core", "info@200", &info);

    let (status, created) = d.call("PUT", "/movies", Some(json!({"settings": {"index": {"number_of_shards": 2}}, "mappings": {"properties": {"n": {"type": "integer"}}}}))).await;
    assert_eq!(status, 200, "{created}");
    spec.response("indices", "indices.create@200", &created);
    let (status, dup) = d.call("PUT", "/movies", None).await;
    assert_eq!(
        (status, dup["error"]["type"].as_str()),
        (400, Some("resource_already_exists_exception"))
    );
    spec.error(&dup);

    let (status, bulk) = d.bulk("movies", &docs(25, "m")).await;
    assert_eq!(status, 200);
    assert_eq!(bulk["errors"], false);
    assert_eq!(bulk["items"].as_array().unwrap().len(), 25);
    spec.response("_core", "bulk@200", &bulk);

    let (status, count) = d.call("GET", "/movies/_count", None).await;
    assert_eq!((status, count["count"].as_u64()), (200, Some(25)));
    spec.response("_core", "count@200", &count);
    let (_, search) = d
        .call(
            "POST",
            "/movies/_search",
            Some(json!({"query": {"match_all": {}}, "size": 5})),
        )
        .await;
    assert_eq!(search["hits"]["total"]["value"], 25);
    assert_eq!(search["hits"]["hits"].as_array().unwrap().len(), 5);
    spec.response("_core", "search@200", &search);

    // One data node: each index's replicas cannot be assigned (never beside their primary).
    let (status, health) = d.call("GET", "/_cluster/health", None).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("yellow")));
    assert_eq!(
        (
            health["active_primary_shards"].as_u64(),
            health["unassigned_shards"].as_u64()
        ),
        (Some(2), Some(2))
    );
    spec.response("cluster", "cluster.health@200", &health);

    let (status, cat) = d.call("GET", "/_cat/indices?format=json", None).await;
    assert_eq!(status, 200);
    spec.response("cat", "cat.indices@200", &cat);
    let movies = cat
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["index"] == "movies")
        .expect("listed");
    assert_eq!(
        (movies["docs.count"].as_str(), movies["pri"].as_str()),
        (Some("25"), Some("2"))
    );

    let (status, missing) = d.call("GET", "/nothere/_count", None).await;
    assert_eq!(
        (status, missing["error"]["type"].as_str()),
        (404, Some("index_not_found_exception"))
    );
    spec.error(&missing);
    let (status, deleted) = d.call("DELETE", "/movies", None).await;
    assert_eq!(status, 200);
    spec.response("indices", "indices.delete@200", &deleted);
    let (status, _) = d.call("DELETE", "/movies", None).await;
    assert_eq!(status, 404);

    let (status, body) = d
        .raw_signed("GET", "/", vec![], "application/json", false)
        .await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    let log = h.request_log();
    assert!(
        log.iter().any(|e| e.service == "es-data"
            && e.operation == "Bulk"
            && e.mutating
            && e.status == 200)
    );
    h.shutdown().await;
}

#[tokio::test]
async fn bare_recovery_is_refused_like_amazon_opensearch_service() {
    let h = start(fast_config()).await;
    let d = ready_domain(&h, "quirk").await;
    let (status, body) = d.call("GET", "/_recovery", None).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"Message": "Your request: '/_recovery' is not allowed."})
    );
    let (status, _) = d.call("GET", "/_all/_recovery", None).await;
    assert_eq!(status, 200);
    h.shutdown().await;
}

#[tokio::test]
async fn repository_registration_checks_what_aws_checks() {
    let spec = Spec::load();
    let h = start(fast_config()).await;
    let d = ready_domain(&h, "checks").await;
    let iam = iam(&h).await;
    let s3 = s3(&h).await;
    let arn = "arn:aws:iam::123456789012:role/snap";
    let put = |settings: Value| {
        let d = &d;
        async move {
            d.call(
                "PUT",
                "/_snapshot/repo",
                Some(json!({"type": "s3", "settings": settings})),
            )
            .await
        }
    };

    // OpenSearch registers the repository, then verifies it: a failed verification is a 500
    // whose top-level reason is generic, the STS or S3 cause only in `caused_by`, and the
    // repository stays registered.
    let cause = |body: &Value| {
        body["error"]["caused_by"]["caused_by"]["reason"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    let (status, body) = put(json!({"bucket": "snap-bucket", "role_arn": arn})).await;
    assert_eq!(status, 500);
    spec.error(&body);
    assert_eq!(
        body["error"]["type"], "repository_verification_exception",
        "{body}"
    );
    assert_eq!(
        body["error"]["reason"],
        "[repo] path  is not accessible on cluster-manager node"
    );
    assert_eq!(body["error"]["caused_by"]["type"], "i_o_exception");
    assert_eq!(
        body["error"]["caused_by"]["caused_by"]["type"],
        "a_w_s_security_token_service_exception"
    );
    assert!(
        cause(&body).contains(&format!(
            "is not authorized to perform: sts:AssumeRole on resource: {arn}"
        )),
        "{body}"
    );
    let (status, kept) = d.call("GET", "/_snapshot/repo", None).await;
    assert_eq!(
        (status, kept["repo"]["type"].as_str()),
        (200, Some("s3")),
        "{kept}"
    );

    let wrong_trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    iam.create_role()
        .role_name("snap")
        .assume_role_policy_document(wrong_trust.to_string())
        .send()
        .await
        .unwrap();
    h.advance_clock(11.0);
    let (_, body) = put(json!({"bucket": "snap-bucket", "role_arn": arn})).await;
    assert!(
        cause(&body).contains("not authorized to perform: sts:AssumeRole"),
        "{body}"
    );

    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "es.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    iam.update_assume_role_policy()
        .role_name("snap")
        .policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
    h.advance_clock(11.0);
    let (_, body) = put(json!({"bucket": "snap-bucket", "role_arn": arn})).await;
    assert!(cause(&body).contains("Error Code: NoSuchBucket"), "{body}");

    s3.create_bucket()
        .bucket("snap-bucket")
        .send()
        .await
        .unwrap();
    let (status, body) =
        put(json!({"bucket": "snap-bucket", "role_arn": arn, "base_path": "x"})).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (500, Some("repository_verification_exception"))
    );
    assert_eq!(
        body["error"]["reason"],
        "[repo] path [x] is not accessible on cluster-manager node"
    );
    assert!(
        cause(&body).starts_with(
            "Access Denied (Service: Amazon S3; Status Code: 403; Error Code: AccessDenied;"
        ),
        "{body}"
    );
    assert!(
        body["error"]["caused_by"]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("Unable to upload object [x/tests-")
                && r.ends_with("/master.dat] using a single upload")),
        "{body}"
    );
    spec.error(&body);

    // The bucket policy alone is enough when it names the role.
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": arn}, "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::snap-bucket"},
        {"Effect": "Allow", "Principal": {"AWS": arn}, "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": "arn:aws:s3:::snap-bucket/*"}
    ]});
    s3.put_bucket_policy()
        .bucket("snap-bucket")
        .policy(policy.to_string())
        .send()
        .await
        .unwrap();
    let (status, body) =
        put(json!({"bucket": "snap-bucket", "role_arn": arn, "base_path": "x"})).await;
    assert_eq!(status, 200, "{body}");
    spec.response("snapshot", "snapshot.create_repository@200", &body);
    let (status, got) = d.call("GET", "/_snapshot/repo", None).await;
    assert_eq!(
        (status, got["repo"]["settings"]["bucket"].as_str()),
        (200, Some("snap-bucket"))
    );
    spec.response("snapshot", "snapshot.get_repository@200", &got);
    let (status, verified) = d.call("POST", "/_snapshot/repo/_verify", None).await;
    assert_eq!(status, 200, "{verified}");
    spec.response("snapshot", "snapshot.verify_repository@200", &verified);
    let (status, _) = d.call("DELETE", "/_snapshot/repo", None).await;
    assert_eq!(status, 200);
    let (status, missing) = d.call("GET", "/_snapshot/repo", None).await;
    assert_eq!(
        (status, missing["error"]["type"].as_str()),
        (404, Some("repository_missing_exception"))
    );
    spec.error(&missing);
    h.shutdown().await;
}

#[tokio::test]
async fn snapshot_on_one_domain_restores_the_same_documents_on_another() {
    let spec = Spec::load();
    let h = start(fast_config()).await;
    let source = ready_domain(&h, "source").await;
    let target = ready_domain(&h, "target").await;
    source.bulk("movies", &docs(120, "m")).await;
    source.bulk("books", &docs(30, "b")).await;
    repository(&h, &source, "repo", "snaps").await;
    repository(&h, &target, "repo", "snaps").await;

    let (status, bad) = source.call("PUT", "/_snapshot/repo/Bad_Name", None).await;
    assert_eq!(
        (status, bad["error"]["type"].as_str()),
        (400, Some("invalid_snapshot_name_exception"))
    );
    spec.error(&bad);
    let (status, created) = source
        .call(
            "PUT",
            "/_snapshot/repo/snap-1?wait_for_completion=true",
            Some(json!({"indices": "movies,books", "include_global_state": false})),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["snapshot"]["state"], "SUCCESS");
    spec.response("snapshot", "snapshot.create@200", &created);

    // The data really is in the bucket.
    let s3 = s3(&h).await;
    let listed = s3
        .list_objects_v2()
        .bucket("snaps")
        .prefix("snaps/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert!(
        keys.contains(&"snaps/indices/snap-1/movies.json")
            && keys.contains(&"snaps/snapshots/snap-1.json"),
        "{keys:?}"
    );

    let (status, got) = target.call("GET", "/_snapshot/repo/_all", None).await;
    assert_eq!(status, 200);
    assert_eq!(got["snapshots"][0]["snapshot"], "snap-1");
    spec.response("snapshot", "snapshot.get@200", &got);
    let (status, st) = target
        .call("GET", "/_snapshot/repo/snap-1/_status", None)
        .await;
    assert_eq!(
        (status, st["snapshots"][0]["state"].as_str()),
        (200, Some("SUCCESS"))
    );
    spec.response("snapshot", "snapshot.status@200", &st);
    let (status, missing) = target.call("GET", "/_snapshot/repo/nope", None).await;
    assert_eq!(
        (status, missing["error"]["type"].as_str()),
        (404, Some("snapshot_missing_exception"))
    );
    spec.error(&missing);
    let (status, no_repo) = target.call("GET", "/_snapshot/other/snap-1", None).await;
    assert_eq!(
        (status, no_repo["error"]["type"].as_str()),
        (404, Some("repository_missing_exception"))
    );

    let (status, restored) = target.call("POST", "/_snapshot/repo/snap-1/_restore?wait_for_completion=true", Some(json!({"indices": "movies,books", "include_global_state": false, "index_settings": {"index.number_of_replicas": 0}, "ignore_index_settings": ["index.refresh_interval"]}))).await;
    assert_eq!(status, 200, "{restored}");
    spec.response("snapshot", "snapshot.restore@200", &restored);
    assert_eq!(
        all_docs(&target, "movies").await,
        all_docs(&source, "movies").await
    );
    assert_eq!(
        all_docs(&target, "books").await,
        all_docs(&source, "books").await
    );
    assert_eq!(all_docs(&target, "movies").await.len(), 120);

    let (status, again) = target
        .call(
            "POST",
            "/_snapshot/repo/snap-1/_restore",
            Some(json!({"indices": "movies"})),
        )
        .await;
    assert_eq!(
        (status, again["error"]["type"].as_str()),
        (500, Some("snapshot_restore_exception"))
    );
    assert!(again["error"]["reason"].as_str().unwrap().contains(
        "cannot restore index [movies] because an open index with same name already exists"
    ));
    spec.error(&again);

    let (status, renamed) = target.call("POST", "/_snapshot/repo/snap-1/_restore", Some(json!({"indices": "movies", "rename_pattern": "(.+)", "rename_replacement": "restored_$1"}))).await;
    assert_eq!(
        (status, renamed["accepted"].as_bool()),
        (200, Some(true)),
        "{renamed}"
    );
    let (status, recovery) = target.call("GET", "/restored_movies/_recovery", None).await;
    assert_eq!(status, 200);
    assert_eq!(recovery["restored_movies"]["shards"][0]["type"], "SNAPSHOT");
    assert_eq!(
        recovery["restored_movies"]["shards"][0]["source"]["snapshot"],
        "snap-1"
    );
    spec.response("indices", "indices.recovery@200", &recovery);
    let (_, all) = target.call("GET", "/_all/_recovery", None).await;
    spec.response("indices", "indices.recovery@200", &all);
    assert!(all.get("movies").is_some() && all.get("restored_movies").is_some());

    let (status, del) = source.call("DELETE", "/_snapshot/repo/snap-1", None).await;
    assert_eq!(status, 200);
    spec.response("snapshot", "snapshot.delete@200", &del);
    let listed = s3
        .list_objects_v2()
        .bucket("snaps")
        .prefix("snaps/indices/")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.contents().len(), 0);
    h.shutdown().await;
}

#[tokio::test]
async fn snapshot_progresses_and_before_7_9_refuses_a_concurrent_one() {
    let mut config = fast_config();
    config.time_scale = 0.01; // 60 simulated seconds = 0.6 s
    config.concurrent_snapshot_status = 503;
    config.seed_data.insert(
        "busy".into(),
        snapferry_sandbox::SeedData {
            automated_snapshots: snapferry_sandbox::AutomatedSnapshots {
                enabled: false,
                ..Default::default()
            },
            ..Default::default()
        },
    );
    let h = start(config).await;
    let d = domain_with(&h, "busy", "Elasticsearch_7.8", None).await;
    d.bulk("logs", &docs(10, "l")).await;
    repository(&h, &d, "repo", "snaps").await;
    let (status, accepted) = d.call("PUT", "/_snapshot/repo/first", None).await;
    assert_eq!((status, accepted["accepted"].as_bool()), (200, Some(true)));
    let (_, got) = d.call("GET", "/_snapshot/repo/first", None).await;
    assert_eq!(got["snapshots"][0]["state"], "IN_PROGRESS");
    let (status, busy) = d.call("PUT", "/_snapshot/repo/second", None).await;
    assert_eq!(
        (status, busy["error"]["type"].as_str()),
        (503, Some("concurrent_snapshot_execution_exception"))
    );
    assert_eq!(
        busy["error"]["reason"],
        "[repo:second]  a snapshot is already running"
    );
    let spec = Spec::load();
    spec.error(&busy);
    loop {
        let (_, got) = d.call("GET", "/_snapshot/repo/first", None).await;
        if got["snapshots"][0]["state"] == "SUCCESS" {
            break;
        }
        assert_eq!(got["snapshots"][0]["state"], "IN_PROGRESS");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, _) = d
        .call(
            "PUT",
            "/_snapshot/repo/second?wait_for_completion=true",
            None,
        )
        .await;
    assert_eq!(status, 200);
    h.shutdown().await;
}

/// An `_msearch` body of (index, search) items.
fn msearch(items: &[(&str, Value)]) -> Vec<u8> {
    let mut body = String::new();
    for (index, search) in items {
        body.push_str(&json!({ "index": index }).to_string());
        body.push('\n');
        body.push_str(&search.to_string());
        body.push('\n');
    }
    body.into_bytes()
}

async fn call_msearch(d: &DomainClient, body: Vec<u8>) -> (u16, Value) {
    let (status, bytes) = d
        .raw("GET", "/_msearch", body, "application/x-ndjson")
        .await;
    (status, serde_json::from_slice(&bytes).expect("JSON"))
}

/// `_msearch` as snapferry counts many indices with it: one entry per item in order, an
/// item's failure its own entry, `hits.total` shaped as each engine version shapes it.
#[tokio::test]
async fn msearch_answers_each_item_alone_with_the_versions_total() {
    let spec = Spec::load();
    let h = start(fast_config()).await;
    let exact = json!({"size": 0, "track_total_hits": true});

    let d = ready_domain(&h, "os-211").await;
    d.bulk("small", &docs(3, "s")).await;
    d.bulk("large", &docs(10_001, "l")).await;
    let (status, v) = call_msearch(
        &d,
        msearch(&[
            ("small", exact.clone()),
            ("nothere", exact.clone()),
            ("large", exact.clone()),
            ("large", json!({"size": 0})),
        ]),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    spec.response("_core", "msearch@200", &v);
    let r = &v["responses"];
    assert_eq!(
        (&r[0]["hits"]["total"], &r[0]["status"]),
        (&json!({"value": 3, "relation": "eq"}), &json!(200))
    );
    assert_eq!(
        (r[1]["error"]["type"].as_str(), &r[1]["status"]),
        (Some("index_not_found_exception"), &json!(404))
    );
    assert_eq!(
        r[2]["hits"]["total"],
        json!({"value": 10_001, "relation": "eq"})
    );
    // Without `track_total_hits`, exact only up to 10,000.
    assert_eq!(
        r[3]["hits"]["total"],
        json!({"value": 10_000, "relation": "gte"})
    );

    let (status, v) = d
        .raw(
            "GET",
            "/_msearch",
            b"{\"index\":\"small\"}\n{\"size\":0}".to_vec(),
            "application/x-ndjson",
        )
        .await;
    let v: Value = serde_json::from_slice(&v).unwrap();
    assert_eq!(
        (status, v["error"]["reason"].as_str()),
        (
            400,
            Some("The msearch request must be terminated by a newline [\n]")
        )
    );

    // Before 7.0 the total is a number, always exact; Elasticsearch 5 knows no
    // `track_total_hits` and refuses that item alone.
    for (engine, name, refused) in [
        ("Elasticsearch_6.8", "es-68", false),
        ("Elasticsearch_5.6", "es-56", true),
    ] {
        let d = domain_with(&h, name, engine, None).await;
        d.bulk("small", &docs(3, "s")).await;
        let (status, v) = call_msearch(
            &d,
            msearch(&[("small", exact.clone()), ("small", json!({"size": 0}))]),
        )
        .await;
        assert_eq!(status, 200, "{engine}: {v}");
        let r = &v["responses"];
        if refused {
            assert_eq!(
                (
                    r[0]["error"]["type"].as_str(),
                    r[0]["error"]["reason"].as_str(),
                    &r[0]["status"]
                ),
                (
                    Some("parsing_exception"),
                    Some("Unknown key for a VALUE_BOOLEAN in [track_total_hits]."),
                    &json!(400)
                ),
                "{engine}"
            );
        } else {
            assert_eq!(r[0]["hits"]["total"], json!(3), "{engine}");
        }
        assert_eq!(r[1]["hits"]["total"], json!(3), "{engine}");
    }
}
