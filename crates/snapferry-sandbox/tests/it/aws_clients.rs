//! IAM, S3 and the OpenSearch Service control plane, driven by the real AWS SDK clients.

use crate::common;

use aws_sdk_opensearch::types::Tag;
use common::*;
use serde_json::json;

/// Simulated seconds that surely cover the default IAM propagation window.
fn h_propagation() -> f64 {
    snapferry_sandbox::LatencyConfig::default().iam_propagation_secs + 1.0
}

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"es.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

#[tokio::test]
async fn iam_role_lifecycle_and_errors() {
    let h = start(fast_config()).await;
    let iam = iam(&h).await;
    let role = iam
        .create_role()
        .role_name("snap")
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .expect("CreateRole")
        .role
        .expect("role");
    assert_eq!(role.arn, "arn:aws:iam::123456789012:role/snap");
    let again = iam
        .create_role()
        .role_name("snap")
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .unwrap_err();
    let again = again.into_service_error();
    assert!(again.is_entity_already_exists_exception(), "{again:?}");
    let got = iam
        .get_role()
        .role_name("snap")
        .send()
        .await
        .expect("GetRole")
        .role
        .expect("role");
    let decoded =
        percent_encoding::percent_decode_str(got.assume_role_policy_document().expect("doc"))
            .decode_utf8()
            .expect("utf8");
    assert_eq!(
        decoded, TRUST,
        "policy documents come back URL-encoded, as IAM returns them"
    );

    let missing = iam
        .get_role()
        .role_name("nope")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(missing.is_no_such_entity_exception());
    assert_eq!(
        missing.meta().message(),
        Some("The role with name nope cannot be found.")
    );

    let bad = iam
        .put_role_policy()
        .role_name("snap")
        .policy_name("p")
        .policy_document("{not json")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(bad.is_malformed_policy_document_exception(), "{bad:?}");

    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}).to_string();
    iam.put_role_policy()
        .role_name("snap")
        .policy_name("p")
        .policy_document(&policy)
        .send()
        .await
        .expect("PutRolePolicy");
    let names = iam
        .list_role_policies()
        .role_name("snap")
        .send()
        .await
        .expect("ListRolePolicies");
    assert_eq!(names.policy_names(), ["p"]);
    let got = iam
        .get_role_policy()
        .role_name("snap")
        .policy_name("p")
        .send()
        .await
        .expect("GetRolePolicy");
    assert_eq!(
        percent_encoding::percent_decode_str(got.policy_document())
            .decode_utf8()
            .unwrap(),
        policy
    );
    iam.tag_role()
        .role_name("snap")
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("team")
                .value("search")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("TagRole");
    iam.update_assume_role_policy()
        .role_name("snap")
        .policy_document(TRUST)
        .send()
        .await
        .expect("UpdateAssumeRolePolicy");

    let conflict = iam
        .delete_role()
        .role_name("snap")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(conflict.is_delete_conflict_exception(), "{conflict:?}");
    iam.delete_role_policy()
        .role_name("snap")
        .policy_name("p")
        .send()
        .await
        .expect("DeleteRolePolicy");
    iam.delete_role()
        .role_name("snap")
        .send()
        .await
        .expect("DeleteRole");
    assert!(iam.get_role().role_name("snap").send().await.is_err());

    let log = h.request_log();
    let create = log
        .iter()
        .find(|e| e.operation == "CreateRole")
        .expect("logged");
    assert_eq!(
        (create.service.as_str(), create.mutating, create.status),
        ("iam", true, 200)
    );
    assert!(
        log.iter()
            .any(|e| e.operation == "GetRole" && !e.mutating && e.status == 404)
    );
    h.shutdown().await;
}

#[tokio::test]
async fn s3_objects_policies_and_conditional_put() {
    let h = start(fast_config()).await;
    let s3 = s3(&h).await;
    s3.create_bucket()
        .bucket("snaps")
        .send()
        .await
        .expect("CreateBucket");
    s3.put_object()
        .bucket("snaps")
        .key("a/1.json")
        .body(b"one".to_vec().into())
        .send()
        .await
        .expect("PutObject");
    s3.put_object()
        .bucket("snaps")
        .key("a/2.json")
        .body(b"two".to_vec().into())
        .send()
        .await
        .expect("PutObject");
    let got = s3
        .get_object()
        .bucket("snaps")
        .key("a/1.json")
        .send()
        .await
        .expect("GetObject");
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"one"
    );
    let head = s3
        .head_object()
        .bucket("snaps")
        .key("a/2.json")
        .send()
        .await
        .expect("HeadObject");
    assert_eq!(head.content_length(), Some(3));
    let list = s3
        .list_objects_v2()
        .bucket("snaps")
        .prefix("a/")
        .send()
        .await
        .expect("ListObjectsV2");
    let keys: Vec<&str> = list.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["a/1.json", "a/2.json"]);

    let lock = s3
        .put_object()
        .bucket("snaps")
        .key("lock")
        .if_none_match("*")
        .body(b"me".to_vec().into())
        .send()
        .await;
    assert!(lock.is_ok(), "{lock:?}");
    let second = s3
        .put_object()
        .bucket("snaps")
        .key("lock")
        .if_none_match("*")
        .body(b"you".to_vec().into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        second.raw_response().map(|r| r.status().as_u16()),
        Some(412)
    );

    let none = s3
        .get_bucket_policy()
        .bucket("snaps")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(none.meta().code(), Some("NoSuchBucketPolicy"));
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/snap"}, "Action": "s3:*", "Resource": "arn:aws:s3:::snaps/*"}]}).to_string();
    // A principal S3 cannot resolve is refused; once the role exists (and, IAM being eventually
    // consistent, has reached S3) the same policy is taken.
    let unknown = s3
        .put_bucket_policy()
        .bucket("snaps")
        .policy(&policy)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        unknown.raw_response().map(|r| r.status().as_u16()),
        Some(400)
    );
    let unknown = unknown.into_service_error();
    assert_eq!(
        (unknown.meta().code(), unknown.meta().message()),
        (Some("MalformedPolicy"), Some("Invalid principal in policy"))
    );
    iam(&h)
        .await
        .create_role()
        .role_name("snap")
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .expect("CreateRole");
    h.advance_clock(h_propagation());
    s3.put_bucket_policy()
        .bucket("snaps")
        .policy(&policy)
        .send()
        .await
        .expect("PutBucketPolicy");
    assert_eq!(
        s3.get_bucket_policy()
            .bucket("snaps")
            .send()
            .await
            .expect("GetBucketPolicy")
            .policy(),
        Some(policy.as_str())
    );
    s3.delete_bucket_policy()
        .bucket("snaps")
        .send()
        .await
        .expect("DeleteBucketPolicy");
    s3.delete_object()
        .bucket("snaps")
        .key("a/1.json")
        .send()
        .await
        .expect("DeleteObject");
    let gone = s3
        .get_object()
        .bucket("snaps")
        .key("a/1.json")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(gone.is_no_such_key());
    let no_bucket = s3
        .list_objects_v2()
        .bucket("nope")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(no_bucket.is_no_such_bucket(), "{no_bucket:?}");
    assert!(
        h.request_log()
            .iter()
            .any(|e| e.service == "s3" && e.operation == "PutObject" && e.status == 412)
    );
    h.shutdown().await;
}

#[tokio::test]
async fn bad_signature_gets_each_protocols_403() {
    let mut config = fast_config();
    config.credentials.secret_access_key = "a-different-secret".into();
    let h = start(config).await;
    let mut wrong = fast_config();
    wrong.credentials.secret_access_key = "wrong".into();
    // Clients built from the default (demo) credentials sign with the wrong secret here.
    let other = start(wrong).await;
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(h.endpoint_url())
        .credentials_provider(aws_credential_types::Credentials::new(
            other.env()[2].1.clone(),
            "wrong",
            None,
            None,
            "t",
        ))
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await;
    let iam_err = aws_sdk_iam::Client::new(&conf)
        .get_role()
        .role_name("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(iam_err.raw_response().unwrap().status().as_u16(), 403);
    assert_eq!(
        iam_err.into_service_error().meta().code(),
        Some("SignatureDoesNotMatch")
    );
    let os_err = aws_sdk_opensearch::Client::new(&conf)
        .list_domain_names()
        .send()
        .await
        .unwrap_err();
    assert_eq!(os_err.raw_response().unwrap().status().as_u16(), 403);
    assert_eq!(
        os_err.into_service_error().meta().code(),
        Some("InvalidSignatureException")
    );
    let s3_conf = aws_sdk_s3::config::Builder::from(&conf)
        .force_path_style(true)
        .build();
    let s3_err = aws_sdk_s3::Client::from_conf(s3_conf)
        .list_buckets()
        .send()
        .await
        .unwrap_err();
    assert_eq!(s3_err.raw_response().unwrap().status().as_u16(), 403);
    assert_eq!(
        s3_err.into_service_error().meta().code(),
        Some("SignatureDoesNotMatch")
    );
    h.shutdown().await;
    other.shutdown().await;
}

#[tokio::test]
async fn control_plane_domain_lifecycle() {
    let mut config = fast_config();
    config.time_scale = 0.001; // creation takes 1.2 s of real time: long enough to see Processing
    let h = start(config).await;
    let os = opensearch(&h).await;
    let created = os
        .create_domain()
        .domain_name("target")
        .engine_version("OpenSearch_2.11")
        .tag_list(
            Tag::builder()
                .key("owner")
                .value("snapferry")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("CreateDomain")
        .domain_status
        .expect("status");
    assert!(created.processing() == Some(true) && created.endpoint().is_none());
    assert_eq!(
        created.arn(),
        "arn:aws:es:us-east-1:123456789012:domain/target"
    );

    let dup = os
        .create_domain()
        .domain_name("target")
        .send()
        .await
        .unwrap_err();
    assert_eq!(dup.raw_response().unwrap().status().as_u16(), 409);
    assert!(
        dup.into_service_error()
            .is_resource_already_exists_exception()
    );

    let bad = os
        .create_domain()
        .domain_name("Bad_Name")
        .send()
        .await
        .unwrap_err();
    assert_eq!(bad.raw_response().unwrap().status().as_u16(), 400);
    let bad = bad.into_service_error();
    assert!(bad.is_validation_exception());
    assert!(bad.meta().message().unwrap().contains("failed to satisfy constraint: Member must satisfy regular expression pattern: [a-z][a-z0-9\\-]+"), "{bad:?}");

    let missing = os
        .describe_domain()
        .domain_name("nothere")
        .send()
        .await
        .unwrap_err();
    assert_eq!(missing.raw_response().unwrap().status().as_u16(), 409);
    assert!(
        missing
            .into_service_error()
            .is_resource_not_found_exception()
    );

    os.create_domain()
        .domain_name("legacy")
        .engine_version("Elasticsearch_7.10")
        .send()
        .await
        .expect("ES domain");
    let names = os
        .list_domain_names()
        .send()
        .await
        .expect("ListDomainNames");
    let mut listed: Vec<(String, String)> = names
        .domain_names()
        .iter()
        .map(|d| {
            (
                d.domain_name().unwrap().to_owned(),
                d.engine_type().unwrap().as_str().to_owned(),
            )
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            ("legacy".into(), "Elasticsearch".into()),
            ("target".into(), "OpenSearch".into())
        ]
    );

    let endpoint = loop {
        let d = os
            .describe_domains()
            .domain_names("target")
            .send()
            .await
            .expect("DescribeDomains");
        let status = &d.domain_status_list()[0];
        if let Some(e) = status.endpoint() {
            assert_eq!(status.processing(), Some(false));
            break e.to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        endpoint.starts_with("127.0.0.1:") && !endpoint.contains("://"),
        "{endpoint}"
    );
    assert_eq!(h.domain_endpoint("target"), Some(endpoint));

    let config = os
        .describe_domain_config()
        .domain_name("target")
        .send()
        .await
        .expect("DescribeDomainConfig");
    assert_eq!(
        config
            .domain_config()
            .unwrap()
            .engine_version()
            .unwrap()
            .options(),
        "OpenSearch_2.11"
    );
    os.update_domain_config()
        .domain_name("target")
        .access_policies(r#"{"Version":"2012-10-17","Statement":[]}"#)
        .send()
        .await
        .expect("UpdateDomainConfig");

    let arn = created.arn().to_owned();
    let tags = os.list_tags().arn(&arn).send().await.expect("ListTags");
    assert_eq!(
        tags.tag_list().iter().map(|t| t.key()).collect::<Vec<_>>(),
        ["owner"]
    );
    os.add_tags()
        .arn(&arn)
        .tag_list(Tag::builder().key("env").value("test").build().unwrap())
        .send()
        .await
        .expect("AddTags");
    os.remove_tags()
        .arn(&arn)
        .tag_keys("owner")
        .send()
        .await
        .expect("RemoveTags");
    let tags = os.list_tags().arn(&arn).send().await.expect("ListTags");
    assert_eq!(
        tags.tag_list().iter().map(|t| t.key()).collect::<Vec<_>>(),
        ["env"]
    );

    let deleted = os
        .delete_domain()
        .domain_name("target")
        .send()
        .await
        .expect("DeleteDomain");
    assert_eq!(deleted.domain_status().unwrap().deleted(), Some(true));
    assert_eq!(h.domain_endpoint("target"), None);
    let ops: Vec<String> = h
        .request_log()
        .iter()
        .filter(|e| e.service == "es")
        .map(|e| e.operation.clone())
        .collect();
    assert!(ops.contains(&"CreateDomain".to_owned()) && ops.contains(&"DeleteDomain".to_owned()));
    h.shutdown().await;
}
