//! Several accounts and Regions in one sandbox: production in account A (us-east-1), staging in
//! account B (eu-west-1), an operator in account C who assumes a role in each with an
//! `ExternalId`. Everything is driven through the real AWS SDK clients, so what is checked is
//! what a client of AWS would see: STS `AssumeRole` and its refusals, each account's own IAM and
//! control plane per Region, S3's Region and ownership rules, and a domain using a bucket of
//! another account or Region only as AWS lets it.

use aws_credential_types::Credentials;
use serde_json::json;
use snapferry_sandbox::{SandboxConfig, SandboxHandle};

use crate::common::*;

const A: &str = "111111111111";
const B: &str = "222222222222";
const C: &str = "333333333333";
const A_DEPLOYER: &str = "arn:aws:iam::111111111111:role/deployer";
const B_DEPLOYER: &str = "arn:aws:iam::222222222222:role/deployer";

fn config() -> SandboxConfig {
    let yaml = format!(
        r#"
time_scale: 0.001
account_id: '{C}'
identities:
  - access_key_id: AKIAOPERATOR
    secret_access_key: operator-secret
    arn: arn:aws:iam::{C}:user/operator
    policies:
      - {{Version: '2012-10-17', Statement: [{{Effect: Allow, Action: 'sts:AssumeRole', Resource: ['{A_DEPLOYER}', '{B_DEPLOYER}']}}]}}
  - access_key_id: AKIABYSTANDER
    secret_access_key: bystander-secret
    arn: arn:aws:iam::{C}:user/bystander
    policies: []
roles:
  - arn: {A_DEPLOYER}
    trust_policy: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Principal: {{AWS: 'arn:aws:iam::{C}:root'}}, Action: 'sts:AssumeRole', Condition: {{StringEquals: {{'sts:ExternalId': prod-handover}}}}}}]}}
    max_session_duration: 43200
    policies:
      admin: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Action: '*', Resource: '*'}}]}}
  - arn: {B_DEPLOYER}
    trust_policy: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Principal: {{AWS: 'arn:aws:iam::{C}:user/operator'}}, Action: 'sts:AssumeRole', Condition: {{StringEquals: {{'sts:ExternalId': staging-handover}}}}}}]}}
    max_session_duration: 43200
    policies:
      admin: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Action: '*', Resource: '*'}}]}}
domains:
  - name: orders
    indices: [{{name: orders, generate: 5}}]
domain_homes:
  orders: {{account: '{A}', region: us-east-1}}
buckets: [prod-snaps]
bucket_homes:
  prod-snaps: {{account: '{A}', region: us-east-1}}
"#
    );
    SandboxConfig::from_yaml_str(&yaml).expect("valid config")
}

fn operator() -> Credentials {
    Credentials::new("AKIAOPERATOR", "operator-secret", None, None, "t")
}

async fn config_as(h: &SandboxHandle, creds: Credentials, region: &str) -> aws_config::SdkConfig {
    sdk_config(h)
        .await
        .into_builder()
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(creds))
        .region(aws_config::Region::new(region.to_owned()))
        .build()
}

async fn sts_as(h: &SandboxHandle, creds: Credentials) -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::new(&config_as(h, creds, "us-east-1").await)
}

fn s3_of(conf: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(conf)
            .force_path_style(true)
            .build(),
    )
}

/// Assumes `role` as the operator with `external_id`; the session's credentials.
async fn assume(
    h: &SandboxHandle,
    role: &str,
    external_id: Option<&str>,
) -> Result<
    Credentials,
    aws_sdk_sts::error::SdkError<aws_sdk_sts::operation::assume_role::AssumeRoleError>,
> {
    let out = sts_as(h, operator())
        .await
        .assume_role()
        .role_arn(role)
        .role_session_name("snapferry")
        .set_external_id(external_id.map(str::to_owned))
        .duration_seconds(43200)
        .send()
        .await?;
    let c = out.credentials().expect("credentials");
    Ok(Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_owned()),
        None,
        "assumed",
    ))
}

/// The code and message of a refused STS call.
fn refused<E, R>(e: aws_sdk_sts::error::SdkError<E, R>) -> (String, String)
where
    E: aws_sdk_sts::error::ProvideErrorMetadata,
{
    let e = e.as_service_error().expect("a service error");
    (
        e.code().unwrap_or_default().to_owned(),
        e.message().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn assume_role_needs_the_trust_policy_the_external_id_and_across_accounts_an_identity_allow()
{
    let h = start(config()).await;
    let session = assume(&h, A_DEPLOYER, Some("prod-handover"))
        .await
        .expect("assumed");
    assert!(session.access_key_id().starts_with("ASIA"));
    let who = sts_as(&h, session.clone())
        .await
        .get_caller_identity()
        .send()
        .await
        .expect("the session signs");
    assert_eq!(who.account(), Some(A));
    assert_eq!(
        who.arn(),
        Some("arn:aws:sts::111111111111:assumed-role/deployer/snapferry")
    );
    assert!(
        who.user_id()
            .is_some_and(|u| u.starts_with("AROA") && u.ends_with(":snapferry"))
    );

    let not_authorized = format!(
        "User: arn:aws:iam::{C}:user/operator is not authorized to perform: sts:AssumeRole on resource: {A_DEPLOYER}"
    );
    // A wrong ExternalId, or none, is refused by the trust policy's condition.
    for external_id in [Some("wrong-id"), None] {
        assert_eq!(
            refused(assume(&h, A_DEPLOYER, external_id).await.unwrap_err()),
            ("AccessDenied".to_owned(), not_authorized.clone()),
            "{external_id:?}"
        );
    }
    // B's trust policy names the operator itself; its external id is B's own.
    assume(&h, B_DEPLOYER, Some("staging-handover"))
        .await
        .expect("B assumed");
    assert_eq!(
        refused(
            assume(&h, B_DEPLOYER, Some("prod-handover"))
                .await
                .unwrap_err()
        )
        .0,
        "AccessDenied"
    );
    // Across accounts the caller's own policies must allow sts:AssumeRole too, even where the
    // trust policy names its whole account.
    let bystander = Credentials::new("AKIABYSTANDER", "bystander-secret", None, None, "t");
    let err = sts_as(&h, bystander)
        .await
        .assume_role()
        .role_arn(A_DEPLOYER)
        .role_session_name("snapferry")
        .external_id("prod-handover")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        refused(err),
        (
            "AccessDenied".to_owned(),
            format!(
                "User: arn:aws:iam::{C}:user/bystander is not authorized to perform: sts:AssumeRole on resource: {A_DEPLOYER} because no identity-based policy allows the sts:AssumeRole action"
            )
        )
    );
    // The model's limits, in STS's words.
    let err = sts_as(&h, operator())
        .await
        .assume_role()
        .role_arn(A_DEPLOYER)
        .role_session_name("snapferry")
        .external_id("prod-handover")
        .duration_seconds(899)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        refused(err),
        (
            "ValidationError".to_owned(),
            "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900".to_owned()
        )
    );
    let err = sts_as(&h, operator())
        .await
        .assume_role()
        .role_arn(A_DEPLOYER)
        .role_session_name("snapferry")
        .external_id("prod-handover")
        .duration_seconds(43201)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        refused(err).1,
        "1 validation error detected: Value '43201' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200"
    );
    // A session of A's role is not the operator B's trust policy names.
    let err = sts_as(&h, session.clone())
        .await
        .assume_role()
        .role_arn(B_DEPLOYER)
        .role_session_name("chained")
        .external_id("staging-handover")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        refused(err).1,
        format!(
            "User: arn:aws:sts::{A}:assumed-role/deployer/snapferry is not authorized to perform: sts:AssumeRole on resource: {B_DEPLOYER}"
        )
    );

    // A session lasts DurationSeconds of simulated time, then its token is expired.
    let out = sts_as(&h, operator())
        .await
        .assume_role()
        .role_arn(A_DEPLOYER)
        .role_session_name("short")
        .external_id("prod-handover")
        .duration_seconds(900)
        .send()
        .await
        .expect("assumed for 15 minutes");
    let c = out.credentials().unwrap();
    let short = Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_owned()),
        None,
        "short",
    );
    let s3 = s3_of(&config_as(&h, short.clone(), "us-east-1").await);
    s3.head_bucket()
        .bucket("prod-snaps")
        .send()
        .await
        .expect("valid at first");
    h.advance_clock(901.0);
    let err = sts_as(&h, short)
        .await
        .get_caller_identity()
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        refused(err),
        (
            "ExpiredToken".to_owned(),
            "The security token included in the request is expired".to_owned()
        )
    );
    let err = s3
        .list_objects_v2()
        .bucket("prod-snaps")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.into_service_error().meta().code(), Some("ExpiredToken"));
    h.shutdown().await;
}

#[tokio::test]
async fn each_account_has_its_own_iam_and_each_region_its_own_control_plane() {
    let h = start(config()).await;
    let a = assume(&h, A_DEPLOYER, Some("prod-handover")).await.unwrap();
    let b = assume(&h, B_DEPLOYER, Some("staging-handover"))
        .await
        .unwrap();
    let names = |c: aws_sdk_opensearch::Client| async move {
        c.list_domain_names()
            .send()
            .await
            .expect("listed")
            .domain_names()
            .iter()
            .filter_map(|d| d.domain_name().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let os = |creds: Credentials, region: &'static str| {
        let h = &h;
        async move { aws_sdk_opensearch::Client::new(&config_as(h, creds, region).await) }
    };
    assert_eq!(names(os(a.clone(), "us-east-1").await).await, ["orders"]);
    assert!(names(os(a.clone(), "eu-west-1").await).await.is_empty());
    assert!(names(os(b.clone(), "us-east-1").await).await.is_empty());
    let orders = os(a.clone(), "us-east-1")
        .await
        .describe_domain()
        .domain_name("orders")
        .send()
        .await
        .unwrap();
    assert_eq!(
        orders.domain_status().unwrap().arn(),
        "arn:aws:es:us-east-1:111111111111:domain/orders"
    );
    // B may have a domain of the same name in its own account and Region.
    let staging = os(b.clone(), "eu-west-1").await;
    let created = staging
        .create_domain()
        .domain_name("orders")
        .engine_version("OpenSearch_2.11")
        .send()
        .await
        .expect("B creates its own orders");
    assert_eq!(
        created.domain_status().unwrap().arn(),
        "arn:aws:es:eu-west-1:222222222222:domain/orders"
    );
    // A KMS key of another Region does not exist for a domain in eu-west-1.
    let err = staging
        .create_domain()
        .domain_name("secure")
        .engine_version("OpenSearch_2.11")
        .encryption_at_rest_options(
            aws_sdk_opensearch::types::EncryptionAtRestOptions::builder()
                .enabled(true)
                .kms_key_id(
                    "arn:aws:kms:us-east-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                )
                .build(),
        )
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.meta().code(), Some("ValidationException"));
    assert_eq!(
        err.meta().message(),
        Some(
            "The KMS key arn:aws:kms:us-east-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab is in Region us-east-1; a domain in eu-west-1 can only use a KMS key of its own Region."
        )
    );
    // IAM is per account: a role B creates is not A's.
    let iam_b = aws_sdk_iam::Client::new(&config_as(&h, b.clone(), "us-east-1").await);
    iam_b
        .create_role()
        .role_name("snapshots")
        .assume_role_policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "es.amazonaws.com"}, "Action": "sts:AssumeRole"}]}).to_string(),
        )
        .send()
        .await
        .expect("B's role");
    let iam_a = aws_sdk_iam::Client::new(&config_as(&h, a.clone(), "us-east-1").await);
    let err = iam_a
        .get_role()
        .role_name("snapshots")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_no_such_entity_exception(), "{err:?}");
    h.shutdown().await;
}

#[tokio::test]
async fn buckets_have_a_region_and_an_owner_and_other_accounts_need_the_bucket_policy() {
    let h = start(config()).await;
    let a = assume(&h, A_DEPLOYER, Some("prod-handover")).await.unwrap();
    let b = assume(&h, B_DEPLOYER, Some("staging-handover"))
        .await
        .unwrap();
    // Signed for another Region: 301 PermanentRedirect naming the bucket's Region.
    let a_eu = s3_of(&config_as(&h, a.clone(), "eu-west-1").await);
    let err = a_eu
        .list_objects_v2()
        .bucket("prod-snaps")
        .send()
        .await
        .unwrap_err();
    let raw = err.raw_response().expect("an answer");
    assert_eq!(raw.status().as_u16(), 301);
    assert_eq!(raw.headers().get("x-amz-bucket-region"), Some("us-east-1"));
    assert_eq!(
        err.into_service_error().meta().code(),
        Some("PermanentRedirect")
    );
    let a_us = s3_of(&config_as(&h, a.clone(), "us-east-1").await);
    let head = a_us
        .head_bucket()
        .bucket("prod-snaps")
        .send()
        .await
        .unwrap();
    assert_eq!(head.bucket_region(), Some("us-east-1"));

    // CreateBucket: the location constraint must be the Region the request is sent to.
    use aws_sdk_s3::types::{BucketLocationConstraint as L, CreateBucketConfiguration as Cfg};
    let code_and_message = |e: aws_sdk_s3::error::SdkError<
        aws_sdk_s3::operation::create_bucket::CreateBucketError,
    >| {
        let e = e.into_service_error();
        (
            e.meta().code().unwrap_or_default().to_owned(),
            e.meta().message().unwrap_or_default().to_owned(),
        )
    };
    let err = a_eu
        .create_bucket()
        .bucket("eu-snaps")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_message(err),
        (
            "IllegalLocationConstraintException".to_owned(),
            "The unspecified location constraint is incompatible for the region specific endpoint this request was sent to.".to_owned()
        )
    );
    let err = a_eu
        .create_bucket()
        .bucket("eu-snaps")
        .create_bucket_configuration(Cfg::builder().location_constraint(L::UsWest2).build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_message(err).1,
        "The us-west-2 location constraint is incompatible for the region specific endpoint this request was sent to."
    );
    a_eu.create_bucket()
        .bucket("eu-snaps")
        .create_bucket_configuration(Cfg::builder().location_constraint(L::EuWest1).build())
        .send()
        .await
        .expect("created in eu-west-1");
    let head = a_eu.head_bucket().bucket("eu-snaps").send().await.unwrap();
    assert_eq!(head.bucket_region(), Some("eu-west-1"));
    // Bucket names are global: another account cannot take it.
    let b_eu = s3_of(&config_as(&h, b.clone(), "eu-west-1").await);
    let err = b_eu
        .create_bucket()
        .bucket("eu-snaps")
        .create_bucket_configuration(Cfg::builder().location_constraint(L::EuWest1).build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_message(err).0, "BucketAlreadyExists");
    // Each account lists its own buckets.
    let listed = b_eu.list_buckets().send().await.unwrap();
    assert!(listed.buckets().is_empty(), "{listed:?}");

    // B's role, allowed everything by its own policy, reads A's bucket only once A's bucket
    // policy grants it.
    let b_us = s3_of(&config_as(&h, b.clone(), "us-east-1").await);
    let err = b_us
        .list_objects_v2()
        .bucket("prod-snaps")
        .send()
        .await
        .unwrap_err();
    let err = err.into_service_error();
    assert_eq!(err.meta().code(), Some("AccessDenied"));
    assert_eq!(
        err.meta().message(),
        Some(
            "User: arn:aws:sts::222222222222:assumed-role/deployer/snapferry is not authorized to perform: s3:ListBucket on resource: \"arn:aws:s3:::prod-snaps\" because no resource-based policy allows the s3:ListBucket action"
        )
    );
    a_us.put_bucket_policy()
        .bucket("prod-snaps")
        .policy(
            json!({"Version": "2012-10-17", "Statement": [{"Sid": "staging", "Effect": "Allow",
                "Principal": {"AWS": B_DEPLOYER}, "Action": "s3:ListBucket",
                "Resource": "arn:aws:s3:::prod-snaps"}]})
            .to_string(),
        )
        .send()
        .await
        .expect("A grants B's role");
    b_us.list_objects_v2()
        .bucket("prod-snaps")
        .send()
        .await
        .expect("granted by the bucket policy");
    h.shutdown().await;
}

#[tokio::test]
async fn a_domain_passes_only_its_own_accounts_role_and_reaches_a_bucket_elsewhere_as_aws_allows() {
    let h = start(config()).await;
    let a = assume(&h, A_DEPLOYER, Some("prod-handover")).await.unwrap();
    let b = assume(&h, B_DEPLOYER, Some("staging-handover"))
        .await
        .unwrap();
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "es.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    .to_string();
    let s3_all = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "s3:*", "Resource": ["arn:aws:s3:::prod-snaps", "arn:aws:s3:::prod-snaps/*"]}]})
    .to_string();
    for creds in [&a, &b] {
        let iam = aws_sdk_iam::Client::new(&config_as(&h, creds.clone(), "us-east-1").await);
        iam.create_role()
            .role_name("snapshots")
            .assume_role_policy_document(&trust)
            .send()
            .await
            .unwrap();
        iam.put_role_policy()
            .role_name("snapshots")
            .policy_name("s3")
            .policy_document(&s3_all)
            .send()
            .await
            .unwrap();
    }
    h.advance_clock(60.0);
    let a_role = "arn:aws:iam::111111111111:role/snapshots";
    let b_role = "arn:aws:iam::222222222222:role/snapshots";
    // Staging: a domain of B in eu-west-1.
    let staging = aws_sdk_opensearch::Client::new(&config_as(&h, b.clone(), "eu-west-1").await);
    staging
        .create_domain()
        .domain_name("orders-staging")
        .engine_version("OpenSearch_2.11")
        .access_policies(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{B}:root")}, "Action": "es:*",
                "Resource": format!("arn:aws:es:eu-west-1:{B}:domain/orders-staging/*")}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    h.advance_clock(1300.0);
    let endpoint = h
        .domain_endpoint_in(B, "eu-west-1", "orders-staging")
        .expect("ready");
    let domain = DomainClient::new_as(&h, &endpoint, b.clone());
    let register = |role: &str, endpoint: Option<&str>| {
        let mut settings = json!({"bucket": "prod-snaps", "role_arn": role, "readonly": true});
        if let Some(e) = endpoint {
            settings["endpoint"] = json!(e);
        }
        json!({"type": "s3", "settings": settings})
    };
    // A's role cannot be passed by B: PassRole never crosses accounts.
    let (status, body) = domain
        .call(
            "PUT",
            "/_snapshot/prod",
            Some(register(a_role, Some("s3.amazonaws.com"))),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["Message"],
        format!(
            "User: arn:aws:sts::{B}:assumed-role/deployer/snapferry is not authorized to perform: iam:PassRole on resource: {a_role}"
        )
    );
    // B's role, with A's bucket in us-east-1 and no endpoint: the domain calls S3 in its own
    // Region and is redirected.
    let (status, body) = domain
        .call("PUT", "/_snapshot/prod", Some(register(b_role, None)))
        .await;
    assert_eq!(status, 500, "{body}");
    let cause = body["error"]["caused_by"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        cause.starts_with("The bucket is in this region: us-east-1. Please use this region to retry the request (Service: Amazon S3; Status Code: 301; Error Code: PermanentRedirect;"),
        "{body}"
    );
    // Through the global endpoint it reaches the bucket, but A's bucket policy does not grant
    // B's role yet: S3 refuses.
    let (status, body) = domain
        .call(
            "PUT",
            "/_snapshot/prod",
            Some(register(b_role, Some("s3.amazonaws.com"))),
        )
        .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        body["error"]["caused_by"]["type"], "amazon_s3_exception",
        "{body}"
    );
    assert!(
        body["error"]["caused_by"]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("Access Denied (Service: Amazon S3; Status Code: 403;")),
        "{body}"
    );
    // A grants B's role: the repository verifies.
    s3_of(&config_as(&h, a.clone(), "us-east-1").await)
        .put_bucket_policy()
        .bucket("prod-snaps")
        .policy(
            json!({"Version": "2012-10-17", "Statement": [{"Sid": "staging", "Effect": "Allow",
                "Principal": {"AWS": b_role}, "Action": ["s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": ["arn:aws:s3:::prod-snaps", "arn:aws:s3:::prod-snaps/*"]}]})
            .to_string(),
        )
        .send()
        .await
        .expect("granted");
    let (status, body) = domain
        .call(
            "PUT",
            "/_snapshot/prod",
            Some(register(b_role, Some("s3.amazonaws.com"))),
        )
        .await;
    assert_eq!((status, body), (200, json!({"acknowledged": true})));
    h.shutdown().await;
}

#[tokio::test]
async fn a_subnet_or_security_group_of_another_region_or_account_is_refused() {
    let mut config = config();
    // A's VPC in us-east-1 (its subnet and group), B's in eu-west-1.
    for (id, account, region) in [
        ("subnet-0a11a11a11a11a11a", A, "us-east-1"),
        ("sg-0a11a11a11a11a11a", A, "us-east-1"),
        ("subnet-0b22b22b22b22b22b", B, "eu-west-1"),
        ("sg-0b22b22b22b22b22b", B, "eu-west-1"),
    ] {
        config.vpc_homes.insert(
            id.into(),
            snapferry_sandbox::Home {
                account: Some(account.into()),
                region: Some(region.into()),
            },
        );
    }
    // And a seeded VPC domain of A's: its subnet exists where it is, without being listed.
    let mut private = snapferry_sandbox::SeedDomain {
        name: "private".into(),
        ..config.domains[0].clone()
    };
    private.vpc = true;
    config.domains.push(private);
    config.domain_homes.insert(
        "private".into(),
        snapferry_sandbox::Home {
            account: Some(A.into()),
            region: Some("us-east-1".into()),
        },
    );
    let h = start(config).await;
    let a = assume(&h, A_DEPLOYER, Some("prod-handover")).await.unwrap();
    let b = assume(&h, B_DEPLOYER, Some("staging-handover"))
        .await
        .unwrap();
    let production = aws_sdk_opensearch::Client::new(&config_as(&h, a, "us-east-1").await);
    let private_subnet = production
        .describe_domain()
        .domain_name("private")
        .send()
        .await
        .unwrap()
        .domain_status()
        .unwrap()
        .vpc_options()
        .unwrap()
        .subnet_ids()[0]
        .clone();
    let staging = aws_sdk_opensearch::Client::new(&config_as(&h, b.clone(), "eu-west-1").await);
    let vpc = |subnet: &str, group: &str| {
        aws_sdk_opensearch::types::VpcOptions::builder()
            .subnet_ids(subnet)
            .security_group_ids(group)
            .build()
    };
    let refusal = |vpc: aws_sdk_opensearch::types::VpcOptions, name: &'static str| {
        let staging = staging.clone();
        async move {
            let err = staging
                .create_domain()
                .domain_name(name)
                .engine_version("OpenSearch_2.11")
                .vpc_options(vpc)
                .send()
                .await
                .unwrap_err()
                .into_service_error();
            (
                err.meta().code().map(str::to_owned),
                err.meta().message().map(str::to_owned),
            )
        }
    };
    // A's subnet, from B in eu-west-1: another account and another Region.
    assert_eq!(
        refusal(
            vpc("subnet-0a11a11a11a11a11a", "sg-0b22b22b22b22b22b"),
            "staging"
        )
        .await,
        (
            Some("ValidationException".into()),
            Some("The subnet ID 'subnet-0a11a11a11a11a11a' does not exist".into())
        )
    );
    assert_eq!(
        refusal(vpc(&private_subnet, "sg-0b22b22b22b22b22b"), "staging").await,
        (
            Some("ValidationException".into()),
            Some(format!("The subnet ID '{private_subnet}' does not exist"))
        )
    );
    // B's own subnet with A's security group.
    assert_eq!(
        refusal(
            vpc("subnet-0b22b22b22b22b22b", "sg-0a11a11a11a11a11a"),
            "staging"
        )
        .await,
        (
            Some("ValidationException".into()),
            Some("The security group 'sg-0a11a11a11a11a11a' does not exist".into())
        )
    );
    // B's own subnet in us-east-1: right account, wrong Region.
    let staging_east =
        aws_sdk_opensearch::Client::new(&config_as(&h, b.clone(), "us-east-1").await);
    let err = staging_east
        .create_domain()
        .domain_name("staging")
        .engine_version("OpenSearch_2.11")
        .vpc_options(vpc("subnet-0b22b22b22b22b22b", "sg-0b22b22b22b22b22b"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(
        err.meta().message(),
        Some("The subnet ID 'subnet-0b22b22b22b22b22b' does not exist")
    );
    // Nothing was created by the refusals; B's own VPC in its Region is accepted.
    assert!(
        staging
            .describe_domain()
            .domain_name("staging")
            .send()
            .await
            .is_err()
    );
    staging
        .create_domain()
        .domain_name("staging")
        .engine_version("OpenSearch_2.11")
        .vpc_options(vpc("subnet-0b22b22b22b22b22b", "sg-0b22b22b22b22b22b"))
        .send()
        .await
        .expect("B's own subnet and group in eu-west-1");
    // UpdateDomainConfig refuses moving it onto A's subnet the same way.
    h.advance_clock(3600.0);
    let err = staging
        .update_domain_config()
        .domain_name("staging")
        .vpc_options(vpc("subnet-0a11a11a11a11a11a", "sg-0b22b22b22b22b22b"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.meta().code(), Some("ValidationException"));
    assert_eq!(
        err.meta().message(),
        Some("The subnet ID 'subnet-0a11a11a11a11a11a' does not exist")
    );
    h.shutdown().await;
}
