//! Identities held to their IAM policies, driven by the real SDK clients: each service refuses a
//! call outside the caller's policy in its own `AccessDenied` shape with AWS's message, and the
//! checks services make on the caller's behalf (`iam:PassRole` when a repository is registered,
//! the service-linked role, KMS grants and EC2 describes at `CreateDomain`) are made.

use crate::common;

use aws_credential_types::Credentials;
use common::*;
use serde_json::{Value, json};
use snapferry_sandbox::{IdentityConfig, SandboxConfig, SandboxHandle, SeedDomain};

const ACCOUNT: &str = "123456789012";
const CI: &str = "arn:aws:iam::123456789012:user/ci";

fn ci(statements: Value) -> IdentityConfig {
    IdentityConfig {
        access_key_id: "AKIACIEXAMPLE0000001".into(),
        secret_access_key: "ci/secret".into(),
        session_token: None,
        arn: CI.into(),
        policies: Some(vec![
            json!({"Version": "2012-10-17", "Statement": statements}),
        ]),
    }
}

fn seeded(name: &str) -> SeedDomain {
    SeedDomain {
        name: name.into(),
        engine_version: "OpenSearch_2.11".into(),
        ready: true,
        indices: Vec::new(),
        kibana: false,
        vpc: false,
    }
}

async fn sandbox(identity: IdentityConfig, edit: impl FnOnce(&mut SandboxConfig)) -> SandboxHandle {
    let mut config = fast_config();
    config.identities = vec![identity];
    edit(&mut config);
    start(config).await
}

fn ci_credentials() -> Credentials {
    Credentials::new("AKIACIEXAMPLE0000001", "ci/secret", None, None, "ci")
}

async fn as_ci(h: &SandboxHandle) -> aws_config::SdkConfig {
    sdk_config(h)
        .await
        .into_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(ci_credentials()),
        )
        .build()
}

fn status<E>(
    err: &aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

#[tokio::test]
async fn iam_refuses_with_access_denied_naming_the_action_the_role_and_the_reason() {
    let h = sandbox(
        ci(json!([
            {"Effect": "Allow", "Action": ["iam:CreateRole", "iam:Get*"],
             "Resource": ["arn:aws:iam::123456789012:role/app-*", "arn:aws:iam::123456789012:role/team/app-*"]},
            {"Effect": "Deny", "Action": "iam:GetRole", "Resource": "arn:aws:iam::123456789012:role/app-secret"}
        ])),
        |_| {},
    )
    .await;
    let iam = aws_sdk_iam::Client::new(&as_ci(&h).await);
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "es.amazonaws.com"}, "Action": "sts:AssumeRole"}]}).to_string();

    let err = iam
        .create_role()
        .role_name("other")
        .assume_role_policy_document(&trust)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), Some(403));
    let err = err.into_service_error();
    assert_eq!(err.meta().code(), Some("AccessDenied"));
    assert_eq!(
        err.meta().message(),
        Some(
            "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: iam:CreateRole \
             on resource: arn:aws:iam::123456789012:role/other because no identity-based policy \
             allows the iam:CreateRole action"
        )
    );

    // Tags on CreateRole need iam:TagRole as well, on the role's ARN with its path.
    let err = iam
        .create_role()
        .role_name("app-tagged")
        .path("/team/")
        .assume_role_policy_document(&trust)
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("k")
                .value("v")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(
        err.meta().message(),
        Some(
            "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: iam:TagRole \
             on resource: arn:aws:iam::123456789012:role/team/app-tagged because no \
             identity-based policy allows the iam:TagRole action"
        )
    );
    iam.create_role()
        .role_name("app-plain")
        .assume_role_policy_document(&trust)
        .send()
        .await
        .expect("allowed without tags");
    iam.get_role()
        .role_name("app-plain")
        .send()
        .await
        .expect("allowed");
    let err = iam
        .get_role()
        .role_name("app-secret")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        err.meta().message().is_some_and(|m| m.ends_with(
            "iam:GetRole on resource: arn:aws:iam::123456789012:role/app-secret with an explicit \
             deny in an identity-based policy"
        )),
        "{err:?}"
    );

    // The refusal is logged as such and changed nothing.
    let refused: Vec<_> = h
        .request_log()
        .into_iter()
        .filter(|r| r.status == 403)
        .map(|r| r.operation)
        .collect();
    assert_eq!(refused, ["CreateRole", "CreateRole", "GetRole"]);
    let admin = iam_admin(&h).await;
    assert!(admin.get_role().role_name("other").send().await.is_err());
    h.shutdown().await;
}

async fn iam_admin(h: &SandboxHandle) -> aws_sdk_iam::Client {
    iam(h).await
}

#[tokio::test]
async fn s3_refuses_by_permission_name_and_reads_the_bucket_policy() {
    let h = sandbox(
        ci(json!([
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::data",
             "Condition": {"StringLike": {"s3:prefix": "public/*"}}}
        ])),
        |c| c.buckets = vec!["data".into()],
    )
    .await;
    // The bucket policy grants the same-account user reads under `shared/`.
    s3(&h)
        .await
        .put_bucket_policy()
        .bucket("data")
        .policy(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"AWS": CI}, "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::data/shared/*"}]})
            .to_string(),
        )
        .send()
        .await
        .expect("admin writes the bucket policy");
    s3(&h)
        .await
        .put_object()
        .bucket("data")
        .key("shared/a")
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap();
    let conf = aws_sdk_s3::config::Builder::from(&as_ci(&h).await)
        .force_path_style(true)
        .build();
    let client = aws_sdk_s3::Client::from_conf(conf);

    let err = client
        .put_bucket_policy()
        .bucket("data")
        .policy("{}")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), Some(403));
    let err = err.into_service_error();
    assert_eq!(err.meta().code(), Some("AccessDenied"));
    assert_eq!(
        err.meta().message(),
        Some(
            "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: \
             s3:PutBucketPolicy on resource: \"arn:aws:s3:::data\" because no identity-based \
             policy allows the s3:PutBucketPolicy action"
        )
    );
    // ListObjectsV2 is s3:ListBucket, with its prefix as a condition key.
    client
        .list_objects_v2()
        .bucket("data")
        .prefix("public/x")
        .send()
        .await
        .expect("allowed prefix");
    let err = client
        .list_objects_v2()
        .bucket("data")
        .prefix("private/")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        err.meta()
            .message()
            .is_some_and(|m| m.contains("s3:ListBucket on resource: \"arn:aws:s3:::data\"")),
        "{err:?}"
    );
    // The bucket policy alone lets the user read what it grants, and nothing else.
    client
        .get_object()
        .bucket("data")
        .key("shared/a")
        .send()
        .await
        .expect("granted by the bucket policy");
    let err = client
        .delete_object()
        .bucket("data")
        .key("shared/a")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        err.meta().message().is_some_and(|m| m.contains(
            "s3:DeleteObject on resource: \"arn:aws:s3:::data/shared/a\" because no \
             identity-based policy allows"
        )),
        "{err:?}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn the_control_plane_refuses_with_access_denied_exception() {
    let h = sandbox(
        ci(json!([
            {"Effect": "Allow", "Action": ["es:DescribeDomain", "es:ListTags"], "Resource": "arn:aws:es:us-east-1:123456789012:domain/logs"}
        ])),
        |c| c.domains = vec![seeded("logs")],
    )
    .await;
    let os = aws_sdk_opensearch::Client::new(&as_ci(&h).await);
    let arn = os
        .describe_domain()
        .domain_name("logs")
        .send()
        .await
        .expect("allowed")
        .domain_status
        .unwrap()
        .arn;
    os.list_tags().arn(&arn).send().await.expect("allowed");
    let err = os
        .add_tags()
        .arn(&arn)
        .tag_list(
            aws_sdk_opensearch::types::Tag::builder()
                .key("k")
                .value("v")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), Some(403));
    let err = err.into_service_error();
    assert!(err.is_base_exception() || err.meta().code() == Some("AccessDeniedException"));
    assert_eq!(err.meta().code(), Some("AccessDeniedException"));
    assert_eq!(
        err.meta().message(),
        Some(
            "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: es:AddTags on \
             resource: arn:aws:es:us-east-1:123456789012:domain/logs because no identity-based \
             policy allows the es:AddTags action"
        )
    );
    let err = os
        .create_domain()
        .domain_name("copy")
        .engine_version("OpenSearch_2.11")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        err.meta().message().is_some_and(|m| m.contains(
            "es:CreateDomain on resource: arn:aws:es:us-east-1:123456789012:domain/copy"
        )),
        "{err:?}"
    );
    h.shutdown().await;
}

fn ci_domain(h: &SandboxHandle, name: &str) -> DomainClient {
    DomainClient::new_as(h, &h.domain_endpoint(name).unwrap(), ci_credentials())
}

#[tokio::test]
async fn a_domain_refuses_es_http_methods_outside_the_policy_and_checks_pass_role() {
    let role = "arn:aws:iam::123456789012:role/snapshots";
    let h = sandbox(
        ci(json!([
            {"Effect": "Allow", "Action": ["es:ESHttpGet", "es:ESHttpPut"],
             "Resource": "arn:aws:es:us-east-1:123456789012:domain/logs/*"},
            {"Effect": "Allow", "Action": "iam:PassRole", "Resource": role,
             "Condition": {"StringEquals": {"iam:PassedToService": "es.amazonaws.com"}}}
        ])),
        |c| {
            c.domains = vec![seeded("logs"), seeded("other")];
            c.buckets = vec!["snaps".into()];
        },
    )
    .await;
    let logs = ci_domain(&h, "logs");
    let (code, body) = logs.call("GET", "/_cluster/health", None).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = logs.call("POST", "/x/_refresh", None).await;
    assert_eq!(code, 403);
    assert_eq!(
        body,
        json!({"Message": "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: es:ESHttpPost because no identity-based policy allows the es:ESHttpPost action"})
    );
    let (code, _) = ci_domain(&h, "other").call("GET", "/", None).await;
    assert_eq!(code, 403, "another domain is another resource");

    // Registering a repository passes its role: the gateway checks iam:PassRole first.
    let settings = |role_arn: &str| json!({"type": "s3", "settings": {"bucket": "snaps", "region": "us-east-1", "role_arn": role_arn}});
    let other_role = "arn:aws:iam::123456789012:role/someone-elses";
    let (code, body) = logs
        .call("PUT", "/_snapshot/r", Some(settings(other_role)))
        .await;
    assert_eq!(code, 403);
    assert_eq!(
        body,
        json!({"Message": format!("User: {CI} is not authorized to perform: iam:PassRole on resource: {other_role}")})
    );
    // With PassRole on the role, the request reaches the domain, whose verification cannot
    // assume a role that does not exist (the STS cause inside `caused_by`).
    let (code, body) = logs.call("PUT", "/_snapshot/r", Some(settings(role))).await;
    assert_eq!(code, 500, "{body}");
    assert_eq!(body["error"]["type"], "repository_verification_exception");
    assert!(
        body.to_string().contains(&format!(
            "not authorized to perform: sts:AssumeRole on resource: {role}"
        )),
        "{body}"
    );

    // A domain access policy that names the user grants what its identity policy does not
    // (same account: either kind of policy may allow).
    let os = opensearch(&h).await;
    os.create_domain()
        .domain_name("shared")
        .engine_version("OpenSearch_2.11")
        .access_policies(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"AWS": CI}, "Action": "es:ESHttpPost",
                "Resource": "arn:aws:es:us-east-1:123456789012:domain/shared/*"}]})
            .to_string(),
        )
        .send()
        .await
        .expect("admin creates the domain");
    let mut endpoint = None;
    for _ in 0..2000 {
        endpoint = h.domain_endpoint("shared");
        if endpoint.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let shared = DomainClient::new_as(&h, &endpoint.expect("ready"), ci_credentials());
    let (code, body) = shared.call("POST", "/x/_refresh", None).await;
    assert_eq!(code, 200, "granted by the access policy: {body}");
    let (code, _) = shared.call("DELETE", "/x", None).await;
    assert_eq!(code, 403, "granted by neither");
    h.shutdown().await;
}

#[tokio::test]
async fn the_first_domain_of_a_fresh_account_needs_create_service_linked_role() {
    let slr = format!(
        "arn:aws:iam::{ACCOUNT}:role/aws-service-role/opensearchservice.amazonaws.com/AWSServiceRoleForAmazonOpenSearchService"
    );
    let create = json!({"Effect": "Allow", "Action": "es:CreateDomain", "Resource": "*"});
    for granted in [false, true] {
        let mut statements = vec![create.clone()];
        if granted {
            statements.push(json!({"Effect": "Allow", "Action": "iam:CreateServiceLinkedRole",
                "Resource": slr, "Condition": {"StringLike": {"iam:AWSServiceName": "opensearchservice.amazonaws.com"}}}));
        }
        let h = sandbox(ci(Value::Array(statements)), |c| {
            c.service_linked_role = Some(false)
        })
        .await;
        let os = aws_sdk_opensearch::Client::new(&as_ci(&h).await);
        let result = os
            .create_domain()
            .domain_name("first")
            .engine_version("OpenSearch_2.11")
            .send()
            .await;
        let role = iam(&h)
            .await
            .get_role()
            .role_name("AWSServiceRoleForAmazonOpenSearchService")
            .send()
            .await;
        if granted {
            result.expect("created");
            assert_eq!(role.expect("the role now exists").role.unwrap().arn, slr);
        } else {
            let err = result.unwrap_err();
            assert_eq!(status(&err), Some(400));
            let err = err.into_service_error();
            assert_eq!(err.meta().code(), Some("ValidationException"));
            assert_eq!(
                err.meta().message(),
                Some(
                    "Before you can proceed, you must enable a service-linked role to give \
                     Amazon OpenSearch Service permissions to access your VPC."
                )
            );
            assert!(role.is_err(), "no role was created");
        }
        h.shutdown().await;
    }
}

#[tokio::test]
async fn a_customer_managed_key_needs_describe_key_and_create_grant_and_a_vpc_the_ec2_describes() {
    let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let cases: [(&[&str], &str); 4] = [
        (&[], "kms:DescribeKey"),
        (&["kms:DescribeKey"], "kms:CreateGrant"),
        (&["kms:DescribeKey", "kms:CreateGrant"], "ec2:DescribeVpcs"),
        (
            &[
                "kms:DescribeKey",
                "kms:CreateGrant",
                "ec2:DescribeVpcs",
                "ec2:DescribeSubnets",
            ],
            "ec2:DescribeSecurityGroups",
        ),
    ];
    for (granted, missing) in cases {
        let mut statements =
            vec![json!({"Effect": "Allow", "Action": "es:CreateDomain", "Resource": "*"})];
        for action in granted {
            let resource = if action.starts_with("kms:") { key } else { "*" };
            statements.push(
                json!({"Effect": "Allow", "Action": action, "Resource": resource,
                "Condition": if action.starts_with("kms:CreateGrant") {
                    json!({"Bool": {"kms:GrantIsForAWSResource": "true"}})
                } else { json!({}) }}),
            );
        }
        // The account already has the service-linked role.
        let h = sandbox(ci(Value::Array(statements)), |c| {
            c.service_linked_role = Some(true)
        })
        .await;
        let os = aws_sdk_opensearch::Client::new(&as_ci(&h).await);
        let err = os
            .create_domain()
            .domain_name("private")
            .engine_version("OpenSearch_2.11")
            .encryption_at_rest_options(
                aws_sdk_opensearch::types::EncryptionAtRestOptions::builder()
                    .enabled(true)
                    .kms_key_id(key)
                    .build(),
            )
            .vpc_options(
                aws_sdk_opensearch::types::VpcOptions::builder()
                    .subnet_ids("subnet-1")
                    .build(),
            )
            .send()
            .await
            .unwrap_err();
        assert_eq!(status(&err), Some(400));
        let err = err.into_service_error();
        assert_eq!(err.meta().code(), Some("ValidationException"));
        let message = err.meta().message().unwrap_or_default().to_owned();
        if missing.starts_with("kms:") {
            assert!(
                message.starts_with(&format!(
                    "Error in Accessing KmsKeyID with details:User: {CI} is not authorized to \
                     perform: {missing} on resource: {key} because no identity-based policy \
                     allows the {missing} action (Service: AWSKMS; Status Code: 400; Error Code: \
                     AccessDeniedException; Request ID: "
                )),
                "{message}"
            );
        } else {
            assert_eq!(
                message,
                format!(
                    "You are not authorized to perform this operation. User: {CI} is not \
                     authorized to perform: {missing} because no identity-based policy allows \
                     the {missing} action"
                )
            );
        }
        h.shutdown().await;
    }
}

#[tokio::test]
async fn get_caller_identity_needs_no_permission_and_names_a_role_by_its_session() {
    let mut identity = ci(json!([{"Effect": "Deny", "Action": "*", "Resource": "*"}]));
    identity.arn = "arn:aws:iam::123456789012:role/deployer".into();
    let h = sandbox(identity, |_| {}).await;
    let who = aws_sdk_sts::Client::new(&as_ci(&h).await)
        .get_caller_identity()
        .send()
        .await
        .expect("no policy can refuse GetCallerIdentity");
    assert_eq!(
        who.arn(),
        Some("arn:aws:sts::123456789012:assumed-role/deployer/sandbox-session")
    );
    assert!(
        who.user_id()
            .is_some_and(|u| u.starts_with("AROA") && u.ends_with(":sandbox-session"))
    );
    assert_eq!(who.account(), Some(ACCOUNT));
    h.shutdown().await;
}

/// `aws:SourceIp` is the address the request came from (the sandbox's clients are on
/// 127.0.0.1), in every service's checks: IAM, the control plane, S3.
#[tokio::test]
async fn source_ip_conditions_see_the_callers_address() {
    let from = |action: &str, cidr: &str| {
        json!({"Effect": "Allow", "Action": action, "Resource": "*",
               "Condition": {"IpAddress": {"aws:SourceIp": cidr}}})
    };
    let h = sandbox(
        ci(json!([
            from("iam:GetRole", "127.0.0.0/8"),
            from("es:ListDomainNames", "10.0.0.0/8"),
            from("s3:ListAllMyBuckets", "127.0.0.1/32"),
        ])),
        |_| {},
    )
    .await;
    let config = as_ci(&h).await;
    let err = aws_sdk_iam::Client::new(&config)
        .get_role()
        .role_name("nobody")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        err.is_no_such_entity_exception(),
        "allowed from 127.0.0.1, so IAM looked: {err:?}"
    );
    let err = aws_sdk_opensearch::Client::new(&config)
        .list_domain_names()
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), Some(403), "only from 10.0.0.0/8: {err:?}");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    s3.list_buckets()
        .send()
        .await
        .expect("allowed from 127.0.0.1");
    h.shutdown().await;
}

/// What IAM and S3 keep is what the other services evaluate: a policy in IAM's grammar is
/// accepted (date conditions included), one the evaluator cannot read is refused when it is put,
/// never stored to be misread later.
#[tokio::test]
async fn stored_policies_are_read_by_the_evaluator_that_decides_with_them() {
    let h = start(fast_config()).await;
    let config = sdk_config(&h).await;
    let iam = aws_sdk_iam::Client::new(&config);
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "es.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"DateLessThan": {"aws:CurrentTime": "2100-01-01T00:00:00Z"}}}]});
    iam.create_role()
        .role_name("snapshots")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("a date condition is IAM's grammar");
    let odd = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*",
        "Resource": "*", "Condition": {"StringSort": {"aws:username": "a"}}}]});
    let err = iam
        .put_role_policy()
        .role_name("snapshots")
        .policy_name("odd")
        .policy_document(odd.to_string())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_malformed_policy_document_exception(), "{err:?}");
    assert_eq!(
        err.meta().message(),
        Some("Syntax errors in policy: unknown condition operator StringSort")
    );
    h.shutdown().await;
}
