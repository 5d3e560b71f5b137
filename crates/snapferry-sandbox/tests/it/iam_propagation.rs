//! IAM is eventually consistent, and the other services show it: a new role (or a changed trust
//! or inline policy) reaches S3 and OpenSearch Service only after the propagation window. Until
//! then S3 refuses a bucket policy naming the role (400 `MalformedPolicy`, "Invalid principal in
//! policy") and a domain fails to verify a repository using it (500
//! `repository_verification_exception`, the STS or S3 cause only in `caused_by`) — and keeps the
//! repository registered. Also: `cs-` repositories refused, the verification's wording per engine.
//! Time runs at real speed but moves only when a test advances it.

use crate::common::*;

use serde_json::{Value, json};
use snapferry_sandbox::{SandboxConfig, SandboxHandle};

const ROLE: &str = "arn:aws:iam::123456789012:role/snapshots";

fn config(domains: &str) -> SandboxConfig {
    let mut config = SandboxConfig::from_yaml_str(&format!(
        "time_scale: 1.0\nbuckets: [snaps]\ndomains: {domains}\n"
    ))
    .expect("valid configuration");
    config.latencies.iam_propagation_secs = 20.0;
    config
}

fn domain(h: &SandboxHandle, name: &str) -> DomainClient {
    DomainClient::new(h, &h.domain_endpoint(name).expect("a ready domain"))
}

fn trust(service: &str) -> String {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}).to_string()
}

fn role_policy() -> String {
    json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::snaps"},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": "arn:aws:s3:::snaps/*"}
    ]})
    .to_string()
}

async fn create_role(h: &SandboxHandle) {
    let iam = iam(h).await;
    iam.create_role()
        .role_name("snapshots")
        .assume_role_policy_document(trust("es.amazonaws.com"))
        .send()
        .await
        .expect("CreateRole");
    iam.put_role_policy()
        .role_name("snapshots")
        .policy_name("s3")
        .policy_document(role_policy())
        .send()
        .await
        .expect("PutRolePolicy");
}

async fn register(d: &DomainClient, query: &str) -> (u16, Value) {
    d.call(
        "PUT",
        &format!("/_snapshot/repo{query}"),
        Some(json!({"type": "s3", "settings": {"bucket": "snaps", "base_path": "manual/daily", "region": "us-east-1", "role_arn": ROLE}})),
    )
    .await
}

/// The innermost cause of a verification failure.
fn cause(body: &Value) -> (String, String) {
    let inner = &body["error"]["caused_by"]["caused_by"];
    (
        inner["type"].as_str().unwrap_or("").to_owned(),
        inner["reason"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn a_new_role_reaches_s3_and_opensearch_only_after_the_window() {
    let h = start(config("[{name: source}]")).await;
    let s3 = s3(&h).await;
    let d = domain(&h, "source");
    create_role(&h).await;
    // IAM itself reads its writes at once.
    let got = iam(&h).await.get_role().role_name("snapshots").send().await;
    assert!(got.is_ok(), "{got:?}");

    let bucket_policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "snapshots", "Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::snaps/*"}]}).to_string();
    let err = s3
        .put_bucket_policy()
        .bucket("snaps")
        .policy(&bucket_policy)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
    let err = err.into_service_error();
    assert_eq!(
        (err.meta().code(), err.meta().message()),
        (Some("MalformedPolicy"), Some("Invalid principal in policy"))
    );

    let (status, body) = register(&d, "").await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["type"], "repository_verification_exception");
    assert_eq!(
        body["error"]["reason"],
        "[repo] path [manual][daily] is not accessible on cluster-manager node",
        "the top level says nothing about the role"
    );
    assert!(!body["error"]["reason"].as_str().unwrap().contains("assume"));
    let (kind, reason) = cause(&body);
    assert_eq!(kind, "a_w_s_security_token_service_exception");
    assert!(
        reason.contains(&format!(
            "is not authorized to perform: sts:AssumeRole on resource: {ROLE}"
        )) && reason.contains("Status Code: 403; Error Code: AccessDenied"),
        "{reason}"
    );
    let (status, kept) = d.call("GET", "/_snapshot/repo", None).await;
    assert_eq!(status, 200, "the repository stays registered: {kept}");
    assert_eq!(kept["repo"]["settings"]["role_arn"], ROLE);

    h.advance_clock(20.0);
    s3.put_bucket_policy()
        .bucket("snaps")
        .policy(&bucket_policy)
        .send()
        .await
        .expect("the role has reached S3");
    let (status, body) = register(&d, "").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = d.call("POST", "/_snapshot/repo/_verify", None).await;
    assert_eq!(status, 200, "{body}");

    let log: Vec<(String, u16)> = h
        .request_log()
        .into_iter()
        .filter(|e| matches!(e.operation.as_str(), "PutBucketPolicy" | "PutRepository"))
        .map(|e| (e.operation, e.status))
        .collect();
    assert_eq!(
        log,
        [
            ("PutBucketPolicy".to_owned(), 400),
            ("PutRepository".to_owned(), 500),
            ("PutBucketPolicy".to_owned(), 204),
            ("PutRepository".to_owned(), 200),
        ]
    );
    h.shutdown().await;
}

#[tokio::test]
async fn policy_changes_reach_the_domain_after_the_window_too() {
    let h = start(config("[{name: source}]")).await;
    let iam = iam(&h).await;
    let d = domain(&h, "source");
    create_role(&h).await;
    h.advance_clock(20.0);
    assert_eq!(register(&d, "").await.0, 200);
    let verify = async || d.call("POST", "/_snapshot/repo/_verify", None).await;

    iam.delete_role_policy()
        .role_name("snapshots")
        .policy_name("s3")
        .send()
        .await
        .expect("DeleteRolePolicy");
    assert_eq!(
        verify().await.0,
        200,
        "the old policy is still what the domain sees"
    );
    h.advance_clock(20.0);
    let (status, body) = verify().await;
    assert_eq!(status, 500);
    let (kind, reason) = cause(&body);
    assert_eq!(kind, "amazon_s3_exception");
    assert!(
        reason.starts_with(
            "Access Denied (Service: Amazon S3; Status Code: 403; Error Code: AccessDenied;"
        ),
        "{reason}"
    );

    iam.put_role_policy()
        .role_name("snapshots")
        .policy_name("s3")
        .policy_document(role_policy())
        .send()
        .await
        .expect("PutRolePolicy");
    assert_eq!(verify().await.0, 500, "not yet");
    h.advance_clock(20.0);
    assert_eq!(verify().await.0, 200);

    iam.update_assume_role_policy()
        .role_name("snapshots")
        .policy_document(trust("ec2.amazonaws.com"))
        .send()
        .await
        .expect("UpdateAssumeRolePolicy");
    assert_eq!(
        verify().await.0,
        200,
        "the old trust policy still lets the domain in"
    );
    h.advance_clock(20.0);
    let (status, body) = verify().await;
    assert_eq!(status, 500);
    assert_eq!(cause(&body).0, "a_w_s_security_token_service_exception");
    h.shutdown().await;
}

#[tokio::test]
async fn verification_failures_name_the_node_as_each_engine_does() {
    let h = start(config(
        "[{name: two, engine_version: OpenSearch_2.11}, {name: one, engine_version: OpenSearch_1.3}, {name: seven, engine_version: Elasticsearch_7.10}]",
    ))
    .await;
    for (name, node) in [
        ("two", "cluster-manager"),
        ("one", "master"),
        ("seven", "master"),
    ] {
        let d = domain(&h, name);
        let (status, body) = register(&d, "").await;
        assert_eq!(status, 500);
        assert_eq!(
            body["error"]["root_cause"],
            json!([{"type": "repository_verification_exception", "reason": format!("[repo] path [manual][daily] is not accessible on {node} node")}]),
            "{name}"
        );
    }
    // `verify=false` registers without verifying, as OpenSearch does.
    let d = domain(&h, "two");
    d.call("DELETE", "/_snapshot/repo", None).await;
    let (status, body) = register(&d, "?verify=false").await;
    assert_eq!(status, 200, "{body}");
    h.shutdown().await;
}

#[tokio::test]
async fn repositories_named_cs_are_refused_by_the_managed_service() {
    let h = start(config("[{name: source}]")).await;
    create_role(&h).await;
    h.advance_clock(20.0);
    let d = domain(&h, "source");
    let (status, body) = d
        .call(
            "PUT",
            "/_snapshot/cs-manual",
            Some(json!({"type": "s3", "settings": {"bucket": "snaps", "role_arn": ROLE}})),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"Message": "Your request: '/_snapshot/cs-manual' is not allowed."})
    );
    let (status, body) = d.call("GET", "/_snapshot/cs-manual", None).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (404, Some("repository_missing_exception")),
        "nothing was registered"
    );
    // Only the prefix is reserved.
    let (status, _) = d
        .call(
            "PUT",
            "/_snapshot/docs-manual",
            Some(json!({"type": "s3", "settings": {"bucket": "snaps", "role_arn": ROLE}})),
        )
        .await;
    assert_eq!(status, 200);
    h.shutdown().await;
}
