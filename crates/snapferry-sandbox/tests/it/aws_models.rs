//! Every answer of the sandbox's OpenSearch Service control plane, IAM and STS checked against
//! AWS's own models (the vendored botocore JSON): required members, types, enum values, no
//! member the model does not define, and errors the operation is modelled to answer, with their
//! status. Seeded domains (plain, legacy, every option block, VPC, not ready yet) and created ones
//! are described in every state: creating, active, modifying, deleting. Requests that break the
//! models are refused with AWS's words.

use crate::common::*;

use std::collections::BTreeMap;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use serde_json::{Value, json};
use snapferry_sandbox::model::{self, Model};
use snapferry_sandbox::{SandboxConfig, SandboxHandle};

/// The master user's password of the seeded FGAC domain: it must never come back.
pub const SECRET: &str = "Sandbox-Secret-1";

/// A signed request to the sandbox's AWS listener: status, `x-amzn-errortype`, body.
pub async fn signed(
    h: &SandboxHandle,
    service: &str,
    method: &str,
    path: &str,
    body: Vec<u8>,
    content_type: &str,
) -> (u16, Option<String>, Vec<u8>) {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let env: BTreeMap<String, String> = h.env().into_iter().collect();
    let creds = Credentials::new(
        &env["AWS_ACCESS_KEY_ID"],
        &env["AWS_SECRET_ACCESS_KEY"],
        env.get("AWS_SESSION_TOKEN").cloned(),
        None,
        "test",
    );
    let identity = creds.into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("params")
        .into();
    let url = format!("{}{path}", h.endpoint_url());
    let headers = [("content-type", content_type)];
    let signable = SignableRequest::new(
        method,
        &url,
        headers.into_iter(),
        SignableBody::Bytes(&body),
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let mut req = http::Request::builder()
        .method(method)
        .uri(&url)
        .header("content-type", content_type)
        .body(body)
        .expect("request");
    instructions.apply_to_request_http1x(&mut req);
    let resp = reqwest::Client::new()
        .execute(reqwest::Request::try_from(req).expect("reqwest request"))
        .await
        .expect("the sandbox answers");
    let status = resp.status().as_u16();
    let kind = resp
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(':').next().unwrap_or(v).to_owned());
    (status, kind, resp.bytes().await.expect("body").to_vec())
}

/// A control-plane call with its raw JSON answer: status, error type, body.
pub async fn control_plane(
    h: &SandboxHandle,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Option<String>, Value) {
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let (status, kind, body) = signed(h, "es", method, path, bytes, "application/json").await;
    let value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body).expect("the control plane answers JSON")
    };
    (status, kind, value)
}

/// Asserts an answer fits `operation` in the OpenSearch Service model, and returns the body.
fn fits(operation: &str, (status, kind, body): (u16, Option<String>, Value)) -> Value {
    let os = model::opensearch();
    if status == 200 {
        let problems = os.check_output(operation, &body);
        assert!(
            problems.is_empty(),
            "{operation}'s answer does not fit the model: {problems:#?}\n{body:#}"
        );
    } else {
        let kind =
            kind.unwrap_or_else(|| panic!("{operation}: a {status} without x-amzn-errortype"));
        let modelled = os.errors(operation);
        assert!(
            kind == "SerializationException"
                || modelled
                    .iter()
                    .any(|(code, s)| *code == kind && s.is_none_or(|s| s == status)),
            "{operation} answered {status} {kind}, which the model does not give it: {modelled:?}\n{body}"
        );
    }
    body
}

/// Seeds: a plain domain, a legacy engine, one with every option block set, a VPC domain, one not
/// ready yet. Time runs at real speed but only moves when the test advances it.
pub fn seeded_config() -> SandboxConfig {
    let mut config = SandboxConfig::from_yaml_str(&format!(
        r#"
time_scale: 1.0
domains:
  - name: plain
  - name: legacy
    engine_version: Elasticsearch_7.10
  - name: everything
    engine_version: OpenSearch_2.13
    kibana: false
  - name: private
    vpc: true
  - name: coming
    ready: false
domain_config:
  everything:
    ClusterConfig:
      InstanceType: r6g.xlarge.search
      InstanceCount: 3
      DedicatedMasterEnabled: true
      DedicatedMasterType: m6g.large.search
      DedicatedMasterCount: 3
      ZoneAwarenessEnabled: true
      ZoneAwarenessConfig: {{AvailabilityZoneCount: 3}}
      WarmEnabled: true
      WarmType: ultrawarm1.medium.search
      WarmCount: 2
    EBSOptions: {{EBSEnabled: true, VolumeType: gp3, VolumeSize: 100, Iops: 3000, Throughput: 250}}
    VPCOptions: {{SubnetIds: [subnet-0a, subnet-0b, subnet-0c], SecurityGroupIds: [sg-01]}}
    EncryptionAtRestOptions: {{Enabled: true, KmsKeyId: "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"}}
    NodeToNodeEncryptionOptions: {{Enabled: true}}
    DomainEndpointOptions: {{EnforceHTTPS: true, TLSSecurityPolicy: Policy-Min-TLS-1-2-PFS-2023-10}}
    AdvancedSecurityOptions:
      Enabled: true
      InternalUserDatabaseEnabled: true
      MasterUserOptions: {{MasterUserName: admin, MasterUserPassword: "{SECRET}"}}
    CognitoOptions:
      Enabled: true
      UserPoolId: us-east-1_abc123
      IdentityPoolId: "us-east-1:0123abcd-0123-0123-0123-0123456789ab"
      RoleArn: arn:aws:iam::123456789012:role/CognitoAccessForAmazonOpenSearch
    LogPublishingOptions:
      ES_APPLICATION_LOGS: {{CloudWatchLogsLogGroupArn: "arn:aws:logs:us-east-1:123456789012:log-group:/aws/opensearch/everything", Enabled: true}}
      AUDIT_LOGS: {{CloudWatchLogsLogGroupArn: "arn:aws:logs:us-east-1:123456789012:log-group:/aws/opensearch/audit", Enabled: true}}
    AdvancedOptions: {{"rest.action.multi.allow_explicit_index": "false"}}
    IPAddressType: dualstack
    AutoTuneOptions: {{DesiredState: DISABLED}}
    OffPeakWindowOptions: {{Enabled: true, OffPeakWindow: {{WindowStartTime: {{Hours: 2, Minutes: 30}}}}}}
    SoftwareUpdateOptions: {{AutoSoftwareUpdateEnabled: true}}
    AIMLOptions: {{NaturalLanguageQueryGenerationOptions: {{DesiredState: ENABLED}}}}
  legacy:
    AccessPolicies: ""
"#
    ))
    .expect("the seed configuration is valid");
    config.latencies.domain_creation_secs = 1200.0;
    config.latencies.domain_update_secs = 300.0;
    config.latencies.domain_deletion_secs = 300.0;
    config
}

#[tokio::test]
async fn every_control_plane_answer_fits_the_model() {
    let h = start(seeded_config()).await;
    let mut answers = Vec::new();
    let mut call = async |op: &str, method: &str, path: &str, body: Option<Value>| {
        let body = fits(op, control_plane(&h, method, path, body).await);
        answers.push(body.to_string());
        body
    };

    let names = call("ListDomainNames", "GET", "/2021-01-01/domain", None).await;
    assert_eq!(names["DomainNames"].as_array().map(Vec::len), Some(5));
    let legacy = call(
        "ListDomainNames",
        "GET",
        "/2021-01-01/domain?engineType=Elasticsearch",
        None,
    )
    .await;
    assert_eq!(
        legacy["DomainNames"],
        json!([{"DomainName": "legacy", "EngineType": "Elasticsearch"}])
    );
    for name in ["plain", "legacy", "everything", "private", "coming"] {
        call(
            "DescribeDomain",
            "GET",
            &format!("/2021-01-01/opensearch/domain/{name}"),
            None,
        )
        .await;
        call(
            "DescribeDomainConfig",
            "GET",
            &format!("/2021-01-01/opensearch/domain/{name}/config"),
            None,
        )
        .await;
    }
    let several = call(
        "DescribeDomains",
        "POST",
        "/2021-01-01/opensearch/domain-info",
        Some(json!({"DomainNames": ["plain", "everything", "private", "absent"]})),
    )
    .await;
    assert_eq!(
        several["DomainStatusList"].as_array().map(Vec::len),
        Some(3)
    );

    let created = call(
        "CreateDomain",
        "POST",
        "/2021-01-01/opensearch/domain",
        Some(json!({
            "DomainName": "fresh",
            "EngineVersion": "OpenSearch_2.11",
            "ClusterConfig": {"InstanceType": "m6g.large.search", "InstanceCount": 2},
            "EBSOptions": {"EBSEnabled": true, "VolumeType": "gp3", "VolumeSize": 20},
            "EncryptionAtRestOptions": {"Enabled": true},
            "TagList": [{"Key": "team", "Value": "search"}],
        })),
    )
    .await;
    let arn = created["DomainStatus"]["ARN"].as_str().unwrap().to_owned();
    call(
        "DescribeDomain",
        "GET",
        "/2021-01-01/opensearch/domain/fresh",
        None,
    )
    .await;
    call(
        "DescribeDomainConfig",
        "GET",
        "/2021-01-01/opensearch/domain/fresh/config",
        None,
    )
    .await;
    h.advance_clock(1201.0);
    call(
        "DescribeDomain",
        "GET",
        "/2021-01-01/opensearch/domain/fresh",
        None,
    )
    .await;
    call(
        "DescribeDomain",
        "GET",
        "/2021-01-01/opensearch/domain/coming",
        None,
    )
    .await;
    let dry = call(
        "UpdateDomainConfig",
        "POST",
        "/2021-01-01/opensearch/domain/fresh/config",
        Some(json!({"ClusterConfig": {"InstanceCount": 4}, "DryRun": true})),
    )
    .await;
    assert_eq!(dry["DryRunResults"]["DeploymentType"], "Blue/Green");
    call(
        "UpdateDomainConfig",
        "POST",
        "/2021-01-01/opensearch/domain/fresh/config",
        Some(json!({"ClusterConfig": {"InstanceCount": 4}, "AdvancedOptions": {"indices.fielddata.cache.size": "40"}})),
    )
    .await;
    call(
        "DescribeDomain",
        "GET",
        "/2021-01-01/opensearch/domain/fresh",
        None,
    )
    .await;
    call(
        "DescribeDomainConfig",
        "GET",
        "/2021-01-01/opensearch/domain/fresh/config",
        None,
    )
    .await;
    let busy = call(
        "UpdateDomainConfig",
        "POST",
        "/2021-01-01/opensearch/domain/fresh/config",
        Some(json!({"ClusterConfig": {"InstanceCount": 6}})),
    )
    .await;
    assert_eq!(
        busy["message"],
        "A change/update is in progress. Please wait for it to complete before requesting another change."
    );
    call(
        "AddTags",
        "POST",
        "/2021-01-01/tags",
        Some(json!({"ARN": arn, "TagList": [{"Key": "env", "Value": "test"}]})),
    )
    .await;
    let tags = call(
        "ListTags",
        "GET",
        &format!("/2021-01-01/tags/?arn={arn}"),
        None,
    )
    .await;
    assert_eq!(tags["TagList"].as_array().map(Vec::len), Some(2));
    call(
        "RemoveTags",
        "POST",
        "/2021-01-01/tags-removal",
        Some(json!({"ARN": arn, "TagKeys": ["env"]})),
    )
    .await;
    call(
        "DescribeDomain",
        "GET",
        "/2021-01-01/opensearch/domain/nothere",
        None,
    )
    .await;
    call(
        "CreateDomain",
        "POST",
        "/2021-01-01/opensearch/domain",
        Some(json!({"DomainName": "fresh"})),
    )
    .await;
    call(
        "CreateDomain",
        "POST",
        "/2021-01-01/opensearch/domain",
        Some(json!({"DomainName": "Bad_Name"})),
    )
    .await;
    call(
        "DeleteDomain",
        "DELETE",
        "/2021-01-01/opensearch/domain/fresh",
        None,
    )
    .await;
    let deleting = call(
        "DescribeDomain",
        "GET",
        "/2021-01-01/opensearch/domain/fresh",
        None,
    )
    .await;
    assert_eq!(
        deleting["DomainStatus"]["DomainProcessingStatus"],
        "Deleting"
    );

    let all = answers.join("\n");
    assert!(
        !all.contains(SECRET),
        "the master user's password came back"
    );
    assert!(
        !all.contains("MasterUserOptions"),
        "master user options are never described"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_domain_with_every_option_set_shows_every_block_of_the_model() {
    let h = start(seeded_config()).await;
    let os = model::opensearch();
    let (_, _, described) =
        control_plane(&h, "GET", "/2021-01-01/opensearch/domain/everything", None).await;
    let status = &described["DomainStatus"];
    // Members a dual-stack VPC domain does not have (public endpoints), or that the sandbox
    // shows only when they were set (newer features it does not model).
    let absent = [
        "Endpoint",
        "EndpointV2",
        "DomainEndpointV2HostedZoneId",
        "IdentityCenterOptions",
        "DeploymentStrategyOptions",
        "AutomatedSnapshotPauseOptions",
        "UseCase",
        "EngineMode",
    ];
    let expected: Vec<&str> = os
        .members("DomainStatus")
        .into_iter()
        .map(|(m, _)| m)
        .filter(|m| !absent.contains(m))
        .collect();
    let shown: Vec<&str> = status
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(shown, expected, "{status:#}");

    assert_eq!(status["Created"], true);
    assert_eq!(status["DomainProcessingStatus"], "Active");
    assert_eq!(status["ClusterConfig"]["DedicatedMasterCount"], 3);
    assert_eq!(
        status["ClusterConfig"]["WarmType"],
        "ultrawarm1.medium.search"
    );
    assert_eq!(
        status["ClusterConfig"]["ColdStorageOptions"],
        json!({"Enabled": false})
    );
    assert_eq!(
        status["VPCOptions"]["AvailabilityZones"],
        json!(["us-east-1a", "us-east-1b", "us-east-1c"])
    );
    let port = h
        .domain_endpoint("everything")
        .and_then(|e| e.rsplit_once(':').map(|(_, p)| p.to_owned()))
        .unwrap();
    assert_eq!(
        status["Endpoints"],
        json!({"vpc": format!("vpc-everything.sandbox.internal:{port}"), "vpcv2": format!("vpcv2-everything.sandbox.internal:{port}")})
    );
    assert_eq!(
        status["AdvancedSecurityOptions"],
        json!({"Enabled": true, "InternalUserDatabaseEnabled": true, "AnonymousAuthEnabled": false})
    );
    assert_eq!(
        status["EncryptionAtRestOptions"]["KmsKeyId"],
        "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    );
    assert_eq!(
        status["AutoTuneOptions"],
        json!({"State": "DISABLED", "UseOffPeakWindow": false})
    );
    assert_eq!(
        status["AdvancedOptions"]["rest.action.multi.allow_explicit_index"],
        "false"
    );
    assert_eq!(
        status["AdvancedOptions"]["override_main_response_version"],
        "false"
    );
    assert_eq!(
        status["AIMLOptions"]["NaturalLanguageQueryGenerationOptions"],
        json!({"DesiredState": "ENABLED", "CurrentState": "ENABLE_COMPLETE"})
    );
    assert_eq!(
        status["LogPublishingOptions"].as_object().map(|m| m.len()),
        Some(2)
    );

    // DescribeDomainConfig shows the same blocks, each with its Status.
    let (_, _, config) = control_plane(
        &h,
        "GET",
        "/2021-01-01/opensearch/domain/everything/config",
        None,
    )
    .await;
    let config = &config["DomainConfig"];
    for block in [
        "ClusterConfig",
        "EBSOptions",
        "AccessPolicies",
        "IPAddressType",
        "SnapshotOptions",
        "VPCOptions",
        "CognitoOptions",
        "EncryptionAtRestOptions",
        "NodeToNodeEncryptionOptions",
        "AdvancedOptions",
        "LogPublishingOptions",
        "DomainEndpointOptions",
        "AdvancedSecurityOptions",
        "OffPeakWindowOptions",
        "SoftwareUpdateOptions",
        "AIMLOptions",
    ] {
        assert_eq!(config[block]["Options"], status[block], "{block}");
        assert_eq!(config[block]["Status"]["State"], "Active", "{block}");
    }
    assert_eq!(config["EngineVersion"]["Options"], "OpenSearch_2.13");
    assert_eq!(
        config["AutoTuneOptions"]["Options"]["DesiredState"],
        "DISABLED"
    );
    assert_eq!(config["AutoTuneOptions"]["Status"]["State"], "DISABLED");
    assert_eq!(
        config["ChangeProgressDetails"],
        status["ChangeProgressDetails"]
    );

    // The plain one has AWS's defaults, and as a seed the account-wide allow for its access
    // policy (the legacy one says `AccessPolicies: ""`: none); the legacy engine has no
    // override_main_response_version.
    let (_, _, plain) = control_plane(&h, "GET", "/2021-01-01/opensearch/domain/plain", None).await;
    let plain = &plain["DomainStatus"];
    assert!(
        plain["Endpoint"]
            .as_str()
            .is_some_and(|e| e.starts_with("127.0.0.1:"))
    );
    let policy: Value = serde_json::from_str(plain["AccessPolicies"].as_str().unwrap()).unwrap();
    assert_eq!(
        policy["Statement"][0]["Principal"],
        json!({"AWS": "arn:aws:iam::123456789012:root"})
    );
    assert_eq!(
        policy["Statement"][0]["Resource"],
        "arn:aws:es:us-east-1:123456789012:domain/plain/*"
    );
    assert_eq!(plain["IPAddressType"], "ipv4");
    assert_eq!(plain["EncryptionAtRestOptions"], json!({"Enabled": false}));
    assert_eq!(plain["ServiceSoftwareOptions"]["UpdateStatus"], "COMPLETED");
    assert!(
        plain.get("AIMLOptions").is_none(),
        "OpenSearch 2.11 predates AIML options"
    );
    let (_, _, legacy) =
        control_plane(&h, "GET", "/2021-01-01/opensearch/domain/legacy", None).await;
    assert!(
        legacy["DomainStatus"]["AdvancedOptions"]
            .get("override_main_response_version")
            .is_none()
    );
    assert!(
        legacy["DomainStatus"]["ServiceSoftwareOptions"]["CurrentVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("Elasticsearch_7_10_R"))
    );
    h.shutdown().await;
}

#[tokio::test]
async fn requests_that_break_the_model_are_refused_with_aws_words() {
    let h = start(fast_config()).await;
    let (status, kind, body) = control_plane(
        &h,
        "POST",
        "/2021-01-01/opensearch/domain",
        Some(json!({"DomainName": "ab", "EngineVersion": "OpenSearch_2", "ClusterConfig": {"InstanceType": "big.search"}, "EBSOptions": {"VolumeType": "ssd"}})),
    )
    .await;
    assert_eq!(
        (status, kind.as_deref()),
        (400, Some("ValidationException"))
    );
    assert_eq!(
        body["message"],
        "5 validation errors detected: \
         Value 'big.search' at 'clusterConfig.instanceType' failed to satisfy constraint: Member must satisfy enum value set: [m3.medium.search, m3.large.search, m3.xlarge.search, m3.2xlarge.search, m4.large.search, m4.xlarge.search, m4.2xlarge.search, m4.4xlarge.search, m4.10xlarge.search, m5.large.search, m5.xlarge.search, m5.2xlarge.search, m5.4xlarge.search, m5.12xlarge.search, m5.24xlarge.search, r5.large.search, r5.xlarge.search, r5.2xlarge.search, r5.4xlarge.search, r5.12xlarge.search, r5.24xlarge.search, c5.large.search, c5.xlarge.search, c5.2xlarge.search, c5.4xlarge.search, c5.9xlarge.search, c5.18xlarge.search, t3.nano.search, t3.micro.search, t3.small.search, t3.medium.search, t3.large.search, t3.xlarge.search, t3.2xlarge.search, or1.medium.search, or1.large.search, or1.xlarge.search, or1.2xlarge.search, or1.4xlarge.search, or1.8xlarge.search, or1.12xlarge.search, or1.16xlarge.search, ultrawarm1.medium.search, ultrawarm1.large.search, ultrawarm1.xlarge.search, t2.micro.search, t2.small.search, t2.medium.search, r3.large.search, r3.xlarge.search, r3.2xlarge.search, r3.4xlarge.search, r3.8xlarge.search, i2.xlarge.search, i2.2xlarge.search, d2.xlarge.search, d2.2xlarge.search, d2.4xlarge.search, d2.8xlarge.search, c4.large.search, c4.xlarge.search, c4.2xlarge.search, c4.4xlarge.search, c4.8xlarge.search, r4.large.search, r4.xlarge.search, r4.2xlarge.search, r4.4xlarge.search, r4.8xlarge.search, r4.16xlarge.search, i3.large.search, i3.xlarge.search, i3.2xlarge.search, i3.4xlarge.search, i3.8xlarge.search, i3.16xlarge.search, r6g.large.search, r6g.xlarge.search, r6g.2xlarge.search, r6g.4xlarge.search, r6g.8xlarge.search, r6g.12xlarge.search, m6g.large.search, m6g.xlarge.search, m6g.2xlarge.search, m6g.4xlarge.search, m6g.8xlarge.search, m6g.12xlarge.search, c6g.large.search, c6g.xlarge.search, c6g.2xlarge.search, c6g.4xlarge.search, c6g.8xlarge.search, c6g.12xlarge.search, r6gd.large.search, r6gd.xlarge.search, r6gd.2xlarge.search, r6gd.4xlarge.search, r6gd.8xlarge.search, r6gd.12xlarge.search, r6gd.16xlarge.search, t4g.small.search, t4g.medium.search]; \
         Value 'ab' at 'domainName' failed to satisfy constraint: Member must have length greater than or equal to 3; \
         Value 'ssd' at 'eBSOptions.volumeType' failed to satisfy constraint: Member must satisfy enum value set: [standard, gp2, io1, gp3]; \
         Value 'OpenSearch_2' at 'engineVersion' failed to satisfy constraint: Member must have length greater than or equal to 14; \
         Value 'OpenSearch_2' at 'engineVersion' failed to satisfy constraint: Member must satisfy regular expression pattern: ^Elasticsearch_[0-9]{1}\\.[0-9]{1,2}$|^OpenSearch_[0-9]{1,2}\\.[0-9]{1,2}$"
    );
    assert!(h.domain_endpoint("ab").is_none());

    // The URI is checked too, before the domain is looked up.
    let (status, kind, body) =
        control_plane(&h, "GET", "/2021-01-01/opensearch/domain/Not_A_Name", None).await;
    assert_eq!(
        (status, kind.as_deref()),
        (400, Some("ValidationException"))
    );
    assert_eq!(
        body["message"],
        "1 validation error detected: Value 'Not_A_Name' at 'domainName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-z][a-z0-9\\-]+"
    );
    // A member of the wrong JSON type cannot even be read.
    let (status, kind, _) = control_plane(
        &h,
        "POST",
        "/2021-01-01/opensearch/domain",
        Some(json!({"DomainName": "typed", "ClusterConfig": {"InstanceCount": "three"}})),
    )
    .await;
    assert_eq!(
        (status, kind.as_deref()),
        (400, Some("SerializationException"))
    );
    // A required query member.
    let (status, _, body) = control_plane(&h, "GET", "/2021-01-01/tags/", None).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        "1 validation error detected: Value null at 'aRN' failed to satisfy constraint: Member must not be null"
    );
    // The real SDK sees the same.
    let err = opensearch(&h)
        .await
        .describe_domains()
        .domain_names("Upper")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_validation_exception(), "{err:?}");
    assert_eq!(
        err.meta().message(),
        Some(
            "1 validation error detected: Value 'Upper' at 'domainNames.1.member' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-z][a-z0-9\\-]+"
        )
    );

    // IAM checks its own model the same way (ValidationError).
    let err = iam(&h)
        .await
        .create_role()
        .role_name("has space")
        .assume_role_policy_document("{}")
        .max_session_duration(60)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
    let err = err.into_service_error();
    assert_eq!(err.meta().code(), Some("ValidationError"));
    assert_eq!(
        err.meta().message(),
        Some(
            "2 validation errors detected: Value '60' at 'maxSessionDuration' failed to satisfy constraint: Member must have value greater than or equal to 3600; Value 'has space' at 'roleName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
        )
    );
    let log = h.request_log();
    assert!(
        log.iter()
            .any(|e| e.operation == "CreateDomain" && e.status == 400 && e.mutating),
        "refusals are logged under the operation's name"
    );
    h.shutdown().await;
}

/// An XML element: name, text, children.
struct Node {
    name: String,
    text: String,
    children: Vec<Node>,
}

fn parse_xml(xml: &[u8]) -> Node {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut stack = vec![Node {
        name: String::new(),
        text: String::new(),
        children: Vec::new(),
    }];
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf).expect("well-formed XML") {
            Event::Start(e) => stack.push(Node {
                name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                text: String::new(),
                children: Vec::new(),
            }),
            Event::Empty(e) => {
                let node = Node {
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    text: String::new(),
                    children: Vec::new(),
                };
                stack.last_mut().unwrap().children.push(node);
            }
            Event::Text(t) => {
                let text = t.unescape().expect("text").into_owned();
                stack.last_mut().unwrap().text.push_str(&text);
            }
            Event::End(_) => {
                let node = stack.pop().unwrap();
                stack.last_mut().unwrap().children.push(node);
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    stack.pop().unwrap().children.pop().expect("a root element")
}

/// Reads an XML element as the model's shape reads it, keeping unknown elements so the check
/// can name them.
fn xml_value(model: &Model, shape: &str, node: &Node) -> Value {
    let def = model.shape(shape).cloned().unwrap_or_default();
    match model.shape_type(shape).unwrap_or("string") {
        "structure" => {
            let mut out = serde_json::Map::new();
            let members = model.members(shape);
            for child in &node.children {
                let member = members.iter().find(|(name, _)| {
                    let wire = def["members"][*name]["locationName"]
                        .as_str()
                        .unwrap_or(name);
                    wire == child.name
                });
                match member {
                    Some((name, member_shape)) => {
                        out.insert((*name).to_owned(), xml_value(model, member_shape, child));
                    }
                    None => {
                        out.insert(child.name.clone(), json!(child.text));
                    }
                }
            }
            Value::Object(out)
        }
        "list" => {
            let element = def["member"]["shape"].as_str().unwrap_or("");
            Value::Array(
                node.children
                    .iter()
                    .map(|c| xml_value(model, element, c))
                    .collect(),
            )
        }
        "integer" | "long" => node
            .text
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or(json!(node.text)),
        "boolean" => match node.text.as_str() {
            "true" => json!(true),
            "false" => json!(false),
            other => json!(other),
        },
        "timestamp" => chrono::DateTime::parse_from_rfc3339(&node.text)
            .map(|t| json!(t.timestamp()))
            .unwrap_or(json!(node.text)),
        _ => json!(node.text),
    }
}

/// Asserts a Query-protocol answer fits the operation in `model`; returns the result as a value.
fn query_fits(model: &Model, operation: &str, status: u16, body: &[u8]) -> Value {
    let root = parse_xml(body);
    if status != 200 {
        assert_eq!(
            root.name,
            "ErrorResponse",
            "{}",
            String::from_utf8_lossy(body)
        );
        let error = root
            .children
            .iter()
            .find(|c| c.name == "Error")
            .expect("Error");
        let code = &error
            .children
            .iter()
            .find(|c| c.name == "Code")
            .expect("Code")
            .text;
        let modelled = model.errors(operation);
        assert!(
            code == "ValidationError"
                || modelled
                    .iter()
                    .any(|(c, s)| c == code && s.is_none_or(|s| s == status)),
            "{operation} answered {status} {code}, which the model does not give it: {modelled:?}"
        );
        return Value::Null;
    }
    assert_eq!(root.name, format!("{operation}Response"));
    let result = root
        .children
        .iter()
        .find(|c| Some(c.name.as_str()) == model.result_wrapper(operation));
    assert!(
        root.children.iter().all(|c| c.name == "ResponseMetadata"
            || Some(c.name.as_str()) == model.result_wrapper(operation)),
        "{operation}: unexpected elements in {}",
        String::from_utf8_lossy(body)
    );
    let value = match (model.output_shape(operation), result) {
        (Some(shape), Some(node)) => xml_value(model, shape, node),
        (None, None) => json!({}),
        (shape, node) => panic!(
            "{operation}: output shape {shape:?} but result element present: {}",
            node.is_some()
        ),
    };
    let problems = model.check_output(operation, &value);
    assert!(
        problems.is_empty(),
        "{operation}'s answer does not fit the model: {problems:#?}\n{}",
        String::from_utf8_lossy(body)
    );
    value
}

async fn query(h: &SandboxHandle, service: &str, params: &[(&str, &str)]) -> (u16, Vec<u8>) {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let (status, _, bytes) = signed(
        h,
        service,
        "POST",
        "/",
        body.into_bytes(),
        "application/x-www-form-urlencoded",
    )
    .await;
    (status, bytes)
}

#[tokio::test]
async fn every_iam_and_sts_answer_fits_the_model() {
    let h = start(fast_config()).await;
    let iam_model = model::iam();
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "es.amazonaws.com"}, "Action": "sts:AssumeRole"}]}).to_string();
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"}]}).to_string();
    let calls: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "CreateRole",
            vec![
                ("RoleName", "snap"),
                ("Path", "/service/"),
                ("AssumeRolePolicyDocument", &trust),
                ("Description", "snapshots"),
                ("Tags.member.1.Key", "team"),
                ("Tags.member.1.Value", "search"),
            ],
        ),
        (
            "CreateRole",
            vec![("RoleName", "snap"), ("AssumeRolePolicyDocument", &trust)],
        ),
        ("GetRole", vec![("RoleName", "snap")]),
        ("GetRole", vec![("RoleName", "absent")]),
        (
            "PutRolePolicy",
            vec![
                ("RoleName", "snap"),
                ("PolicyName", "s3"),
                ("PolicyDocument", &policy),
            ],
        ),
        (
            "GetRolePolicy",
            vec![("RoleName", "snap"), ("PolicyName", "s3")],
        ),
        (
            "GetRolePolicy",
            vec![("RoleName", "snap"), ("PolicyName", "absent")],
        ),
        ("ListRolePolicies", vec![("RoleName", "snap")]),
        ("ListAttachedRolePolicies", vec![("RoleName", "snap")]),
        (
            "ListAttachedRolePolicies",
            vec![
                ("RoleName", "snap"),
                ("PathPrefix", "/aws-service-role/"),
                ("MaxItems", "10"),
            ],
        ),
        ("ListAttachedRolePolicies", vec![("RoleName", "absent")]),
        (
            "TagRole",
            vec![
                ("RoleName", "snap"),
                ("Tags.member.1.Key", "env"),
                ("Tags.member.1.Value", "test"),
            ],
        ),
        ("ListRoleTags", vec![("RoleName", "snap")]),
        (
            "UntagRole",
            vec![("RoleName", "snap"), ("TagKeys.member.1", "env")],
        ),
        (
            "UpdateAssumeRolePolicy",
            vec![("RoleName", "snap"), ("PolicyDocument", &trust)],
        ),
        ("DeleteRole", vec![("RoleName", "snap")]),
        (
            "DeleteRolePolicy",
            vec![("RoleName", "snap"), ("PolicyName", "s3")],
        ),
        ("DeleteRole", vec![("RoleName", "snap")]),
    ];
    let mut statuses = Vec::new();
    for (action, params) in &calls {
        let mut all = vec![("Action", *action), ("Version", "2010-05-08")];
        all.extend(params.iter().copied());
        let (status, body) = query(&h, "iam", &all).await;
        let value = query_fits(iam_model, action, status, &body);
        if *action == "GetRole" && status == 200 {
            assert_eq!(
                value["Role"]["Arn"],
                "arn:aws:iam::123456789012:role/service/snap"
            );
            assert_eq!(
                value["Role"]["Tags"],
                json!([{"Key": "team", "Value": "search"}])
            );
        }
        if *action == "ListAttachedRolePolicies" && status == 200 {
            assert_eq!(value, json!({"AttachedPolicies": [], "IsTruncated": false}));
        }
        statuses.push((*action, status));
    }
    assert_eq!(
        statuses,
        [
            ("CreateRole", 200),
            ("CreateRole", 409),
            ("GetRole", 200),
            ("GetRole", 404),
            ("PutRolePolicy", 200),
            ("GetRolePolicy", 200),
            ("GetRolePolicy", 404),
            ("ListRolePolicies", 200),
            ("ListAttachedRolePolicies", 200),
            ("ListAttachedRolePolicies", 200),
            ("ListAttachedRolePolicies", 404),
            ("TagRole", 200),
            ("ListRoleTags", 200),
            ("UntagRole", 200),
            ("UpdateAssumeRolePolicy", 200),
            ("DeleteRole", 409),
            ("DeleteRolePolicy", 200),
            ("DeleteRole", 200),
        ]
    );

    // The real SDK reads ListAttachedRolePolicies too (issue #18).
    let sdk = iam(&h).await;
    sdk.create_role()
        .role_name("other")
        .assume_role_policy_document(&trust)
        .send()
        .await
        .expect("CreateRole");
    let attached = sdk
        .list_attached_role_policies()
        .role_name("other")
        .send()
        .await
        .expect("ListAttachedRolePolicies");
    assert!(attached.attached_policies().is_empty() && !attached.is_truncated());

    let sts_model = Model::parse(include_str!("../../models/sts-2011-06-15.json")).unwrap();
    let (status, body) = query(
        &h,
        "sts",
        &[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")],
    )
    .await;
    let identity = query_fits(&sts_model, "GetCallerIdentity", status, &body);
    assert_eq!(identity["Account"], "123456789012");
    h.shutdown().await;
}
