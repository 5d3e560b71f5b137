//! The typed operations send the paths and bodies the API expects and read its answers,
//! against a local signing-checking server.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use snapferry_aws::domain_http::{DomainHttp, DomainHttpConfig, ProxyChoice};
use snapferry_aws::opensearch::{CreateSnapshot, OpenSearch, RestoreRequest, SnapshotState};
use support::*;

async fn opensearch(handler: Handler) -> (OpenSearch, TestServer) {
    let server = http_server(handler).await;
    let mut c = DomainHttpConfig::new("source", &format!("http://{}", server.addr), REGION);
    c.proxy = ProxyChoice::Direct;
    c.ca_bundle = None;
    c.read_timeout = Duration::from_secs(5);
    (
        OpenSearch::new(DomainHttp::new(&c, provider()).unwrap()),
        server,
    )
}

#[tokio::test]
async fn operations_use_the_documented_paths() {
    let handler: Handler = Arc::new(|seen: &Seen| {
        assert!(seen.signature_check.is_ok(), "{:?}", seen.signature_check);
        let p = seen.path_and_query.as_str();
        let body = match (seen.method.as_str(), p) {
            ("GET", "/_snapshot/missing") => {
                return (404, vec![], json!({"error": {"type": "repository_missing_exception", "reason": "[missing] missing"}, "status": 404}).to_string());
            }
            ("GET", "/_snapshot/r/nope") => {
                return (404, vec![], json!({"error": {"type": "snapshot_missing_exception", "reason": "[r:nope] is missing"}, "status": 404}).to_string());
            }
            ("GET", "/_snapshot/r/s%201") => {
                json!({"snapshots": [{"snapshot": "s 1", "state": "IN_PROGRESS", "indices": ["a"], "shards": {"total": 0, "failed": 0, "successful": 0}}]})
            }
            ("GET", "/_snapshot/r/s%201/_status") => {
                json!({"snapshots": [{"snapshot": "s 1", "repository": "r", "state": "STARTED", "shards_stats": {"done": 2, "total": 5}}]})
            }
            ("GET", "/_all/_recovery") | ("GET", "/a,b/_recovery") => {
                json!({"a": {"shards": [{"id": 0, "stage": "INDEX", "type": "SNAPSHOT", "primary": true}]}})
            }
            ("GET", "/_cat/indices?format=json&expand_wildcards=all") => {
                json!([{"index": ".kibana_1", "docs.count": "3"}, {"index": "a", "docs.count": "10"}])
            }
            ("GET", "/a/_count") => json!({"count": 10, "_shards": {"total": 1}}),
            ("GET", "/") => json!({"version": {"distribution": "opensearch", "number": "2.11.0"}}),
            _ => json!({"acknowledged": true, "accepted": true}),
        };
        (200, vec![], body.to_string())
    });
    let (os, server) = opensearch(handler).await;
    assert_eq!(os.get_repository("missing").await.unwrap(), None);
    assert_eq!(os.get_snapshot("r", "nope").await.unwrap(), None);
    let s = os.get_snapshot("r", "s 1").await.unwrap().unwrap();
    assert_eq!(s.state, SnapshotState::InProgress);
    let st = os.snapshot_status("r", "s 1").await.unwrap().unwrap();
    assert_eq!((st.shards_stats.done, st.shards_stats.total), (2, 5));
    assert_eq!(os.recovery(&[]).await.unwrap()["a"][0].stage, "INDEX");
    os.recovery(&["a".into(), "b".into()]).await.unwrap();
    assert_eq!(os.cat_indices().await.unwrap().len(), 2);
    assert_eq!(os.count("a").await.unwrap(), 10);
    assert_eq!(os.version().await.unwrap().number, "2.11.0");
    os.create_snapshot(
        "r",
        "s 1",
        &CreateSnapshot {
            indices: vec!["a".into(), "-b".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    os.restore(
        "r",
        "s 1",
        &RestoreRequest {
            indices: vec!["a".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    os.delete_index("logs*").await.unwrap();
    os.close_index("a").await.unwrap();

    let seen = server.seen.lock().unwrap().clone();
    let paths: Vec<String> = seen
        .iter()
        .map(|s| format!("{} {}", s.method, s.path_and_query))
        .collect();
    assert!(
        paths.contains(&"PUT /_snapshot/r/s%201?wait_for_completion=false".to_owned()),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"POST /_snapshot/r/s%201/_restore?wait_for_completion=false".to_owned()),
        "{paths:?}"
    );
    assert!(paths.contains(&"DELETE /logs%2A".to_owned()), "{paths:?}");
    assert!(paths.contains(&"POST /a/_close".to_owned()), "{paths:?}");
    assert!(!paths.iter().any(|p| p == "GET /_recovery"), "{paths:?}");
    let create = seen.iter().find(|s| s.method == "PUT").unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&create.body).unwrap(),
        json!({"indices": "a,-b", "include_global_state": false, "partial": false, "ignore_unavailable": false})
    );
}
