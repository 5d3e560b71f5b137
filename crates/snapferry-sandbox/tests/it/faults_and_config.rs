//! Fault injection (by Nth call and by seeded rate), the `/_sandbox/*` endpoints, seeding from a
//! YAML config, and the outcome faults (PARTIAL/FAILED snapshots, failed domain creation).

use crate::common;

use common::*;
use serde_json::{Value, json};
use snapferry_sandbox::{FaultKind, FaultRule, SandboxConfig};

fn rule(kind: FaultKind, service: &str, operation: &str) -> FaultRule {
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
async fn throttling_and_server_errors_reach_the_sdk_in_each_protocol() {
    let h = start(fast_config()).await;
    let mut server = rule(FaultKind::ServerError, "s3", "ListBuckets");
    server.status = Some(503);
    h.set_faults(
        0,
        vec![
            rule(FaultKind::Throttle, "iam", "GetRole"),
            rule(FaultKind::Throttle, "es", "ListDomainNames"),
            server,
        ],
    );
    let iam_err = iam(&h)
        .await
        .get_role()
        .role_name("x")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(iam_err.meta().code(), Some("Throttling"));
    let os_err = opensearch(&h)
        .await
        .list_domain_names()
        .send()
        .await
        .unwrap_err();
    assert_eq!(os_err.raw_response().unwrap().status().as_u16(), 429);
    assert_eq!(
        os_err.into_service_error().meta().code(),
        Some("ThrottlingException")
    );
    let s3_err = s3(&h).await.list_buckets().send().await.unwrap_err();
    assert_eq!(s3_err.raw_response().unwrap().status().as_u16(), 503);
    // Each rule fired once (nth: 1); the second calls go through.
    assert!(
        opensearch(&h)
            .await
            .list_domain_names()
            .send()
            .await
            .is_ok()
    );
    assert!(s3(&h).await.list_buckets().send().await.is_ok());
    let log = h.request_log();
    let faulted: Vec<(&str, Option<&str>)> = log
        .iter()
        .filter(|e| e.fault.is_some())
        .map(|e| (e.operation.as_str(), e.fault.as_deref()))
        .collect();
    assert_eq!(
        faulted,
        [
            ("GetRole", Some("Throttle")),
            ("ListDomainNames", Some("Throttle")),
            ("ListBuckets", Some("ServerError"))
        ]
    );
    h.shutdown().await;
}

#[tokio::test]
async fn dropped_connection_and_data_plane_throttle() {
    let h = start(fast_config()).await;
    let d = ready_domain(&h, "flaky").await;
    let mut drop = rule(FaultKind::DropConnection, "es", "DescribeDomain");
    drop.nth = Some(1);
    h.set_faults(
        0,
        vec![drop, rule(FaultKind::Throttle, "es-data", "ClusterHealth")],
    );
    let err = opensearch(&h)
        .await
        .describe_domain()
        .domain_name("flaky")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.raw_response().is_none(),
        "a dropped connection has no response: {err:?}"
    );
    let (status, body) = d.call("GET", "/_cluster/health", None).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (429, Some("es_rejected_execution_exception"))
    );
    Spec::load().error(&body);
    let (status, _) = d.call("GET", "/_cluster/health", None).await;
    assert_eq!(status, 200);
    assert!(
        h.request_log()
            .iter()
            .any(|e| e.operation == "DescribeDomain"
                && e.status == 0
                && e.fault.as_deref() == Some("DropConnection"))
    );
    h.shutdown().await;
}

#[tokio::test]
async fn rate_faults_are_reproducible_from_the_seed() {
    let run = || async {
        let h = start(fast_config()).await;
        let mut r = rule(FaultKind::Throttle, "es", "ListDomainNames");
        r.nth = None;
        r.rate = Some(0.5);
        h.set_faults(42, vec![r]);
        let os = opensearch(&h).await;
        let mut outcome = Vec::new();
        for _ in 0..20 {
            outcome.push(os.list_domain_names().send().await.is_ok());
        }
        h.shutdown().await;
        outcome
    };
    let first = run().await;
    assert_eq!(first, run().await);
    let ok = first.iter().filter(|b| **b).count();
    assert!((3..=17).contains(&ok), "{ok} of 20 succeeded at rate 0.5");
}

#[tokio::test]
async fn snapshot_outcome_faults_end_partial_or_failed() {
    let h = start(fast_config()).await;
    let d = ready_domain(&h, "outcomes").await;
    d.bulk("a", &[("1".into(), json!({"x": 1}))]).await;
    d.bulk("b", &[("1".into(), json!({"x": 2}))]).await;
    repository(&h, &d, "repo", "snaps").await;
    h.set_faults(
        0,
        vec![rule(
            FaultKind::SnapshotPartial,
            "es-data",
            "CreateSnapshot",
        )],
    );
    let (_, partial) = d
        .call(
            "PUT",
            "/_snapshot/repo/p?wait_for_completion=true",
            Some(json!({"indices": "a,b"})),
        )
        .await;
    assert_eq!(partial["snapshot"]["state"], "PARTIAL");
    assert_eq!(partial["snapshot"]["shards"]["failed"], 1);
    Spec::load().response("snapshot", "snapshot.create@200", &partial);
    h.set_faults(
        0,
        vec![rule(FaultKind::SnapshotFailed, "es-data", "CreateSnapshot")],
    );
    let (_, failed) = d
        .call(
            "PUT",
            "/_snapshot/repo/f?wait_for_completion=true",
            Some(json!({"indices": "a,b"})),
        )
        .await;
    assert_eq!(failed["snapshot"]["state"], "FAILED");
    let (status, refused) = d
        .call(
            "POST",
            "/_snapshot/repo/f/_restore",
            Some(json!({"indices": "a", "rename_pattern": "a", "rename_replacement": "a2"})),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["type"].as_str()),
        (500, Some("snapshot_restore_exception"))
    );
    h.shutdown().await;
}

#[tokio::test]
async fn failed_domain_creation_never_gets_an_endpoint() {
    let h = start(fast_config()).await;
    h.set_faults(
        0,
        vec![rule(FaultKind::DomainCreationFailed, "es", "CreateDomain")],
    );
    let os = opensearch(&h).await;
    os.create_domain()
        .domain_name("doomed")
        .send()
        .await
        .expect("accepted");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let status = os
        .describe_domain()
        .domain_name("doomed")
        .send()
        .await
        .unwrap()
        .domain_status
        .unwrap();
    assert_eq!(status.endpoint(), None);
    assert_eq!(
        status.domain_processing_status().map(|s| s.as_str()),
        Some("Isolated")
    );
    h.shutdown().await;
}

#[tokio::test]
async fn yaml_config_seeds_domains_and_sandbox_endpoints_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sandbox.yaml");
    std::fs::write(
        &path,
        r#"
account_id: "111122223333"
region: eu-west-1
time_scale: 0.00001
credentials:
  access_key_id: AKIATESTSEED
  secret_access_key: seed-secret
  session_token: seed-token
buckets: [seeded-bucket]
domains:
  - name: source
    engine_version: Elasticsearch_7.10
    indices:
      - name: movies
        generate: 250
      - name: users
        documents:
          - {_id: alice, name: Alice}
          - {_id: bob, name: Bob}
  - name: later
    ready: false
faults:
  seed: 7
  rules:
    - {kind: throttle, service: es, operation: CreateDomain, nth: 2}
"#,
    )
    .unwrap();
    let config = SandboxConfig::from_yaml_file(&path).expect("config parses");
    let h = start(config).await;
    let env: std::collections::BTreeMap<String, String> = h.env().into_iter().collect();
    assert_eq!(env["AWS_REGION"], "eu-west-1");
    assert_eq!(env["AWS_SESSION_TOKEN"], "seed-token");
    assert_eq!(
        env["AWS_CA_BUNDLE"],
        h.ca_bundle_path().display().to_string()
    );
    let d = DomainClient::new(&h, &h.domain_endpoint("source").expect("seeded ready"));
    let (_, count) = d.call("GET", "/movies/_count", None).await;
    assert_eq!(count["count"], 250);
    let (_, users) = d.call("GET", "/users/_search", None).await;
    let ids: Vec<&str> = users["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alice", "bob"]);
    let (_, cat) = d.call("GET", "/_cat/indices?format=json", None).await;
    assert!(
        cat.as_array()
            .unwrap()
            .iter()
            .any(|r| r["index"] == ".kibana_1")
    );
    let (_, info) = d.call("GET", "/", None).await;
    assert_eq!(info["version"]["number"], "7.10.2");
    let buckets = s3(&h).await.list_buckets().send().await.unwrap();
    assert_eq!(buckets.buckets()[0].name(), Some("seeded-bucket"));

    let http = reqwest::Client::new();
    let base = h.endpoint_url();
    let log: Value = http
        .get(format!("{base}/_sandbox/log"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["operation"] == "ListBuckets" && e["service"] == "s3")
    );
    let reset = http
        .post(format!("{base}/_sandbox/reset-log"))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
    assert!(h.request_log().is_empty());
    let bad = http
        .post(format!("{base}/_sandbox/faults"))
        .body("rules: [{kind: throttle}]")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400, "a rule without rate or nth is refused");
    let ok = http.post(format!("{base}/_sandbox/faults")).body(r#"{"seed": 1, "rules": [{"kind": "server_error", "service": "es", "operation": "ListDomainNames", "nth": 1}]}"#).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let err = opensearch(&h)
        .await
        .list_domain_names()
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 500);
    h.shutdown().await;
}

#[test]
fn config_errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "time_scale: fast\n").unwrap();
    let err = SandboxConfig::from_yaml_file(&path).unwrap_err();
    assert!(err.to_string().contains("bad.yaml"), "{err}");
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(
        source.contains("time_scale") && source.contains("line 1"),
        "{source}"
    );
    std::fs::write(&path, "domains: [{name: Bad_Name}]\n").unwrap();
    let err = SandboxConfig::from_yaml_file(&path).unwrap_err();
    assert!(
        err.to_string().contains(
            "seeded domain Bad_Name: 1 validation error detected: Value 'Bad_Name' at 'domainName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-z][a-z0-9\\-]+"
        ),
        "{err}"
    );
}
