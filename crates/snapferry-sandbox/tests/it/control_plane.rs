//! The control plane's life cycle as AWS runs it: a domain that is `Created: false` and
//! `Creating` until it is ready, `UpdateDomainConfig` that merges nested options and keeps the
//! domain `Modifying` (with `ModifyingProperties`) for the update time, refuses a second change
//! meanwhile, answers dry runs, and refuses what AWS cannot change in place. Simulated time runs
//! at real speed but moves only when a test advances it, so nothing here depends on timing.

use crate::common::*;

use aws_sdk_opensearch::types::{
    AdvancedSecurityOptionsInput, ClusterConfig, DomainEndpointOptions, DomainProcessingStatusType,
    EncryptionAtRestOptions, IpAddressType, NodeToNodeEncryptionOptions, VpcOptions,
};
use serde_json::json;
use snapferry_sandbox::SandboxConfig;

fn config(extra: &str) -> SandboxConfig {
    let mut config = SandboxConfig::from_yaml_str(&format!("time_scale: 1.0\n{extra}"))
        .expect("valid configuration");
    config.latencies.domain_creation_secs = 1200.0;
    config.latencies.domain_update_secs = 600.0;
    config
}

const MASTER_ARN: &str = "arn:aws:iam::123456789012:role/admin";

#[tokio::test]
async fn a_created_domain_is_not_created_until_it_is_ready() {
    let h = start(config("")).await;
    let os = opensearch(&h).await;
    let created = os
        .create_domain()
        .domain_name("target")
        .engine_version("OpenSearch_2.11")
        .send()
        .await
        .expect("CreateDomain")
        .domain_status
        .expect("status");
    assert_eq!(created.created(), Some(false));
    assert_eq!(created.processing(), Some(true));
    assert_eq!(
        created.domain_processing_status(),
        Some(&DomainProcessingStatusType::Creating)
    );
    assert_eq!(created.endpoint(), None);
    let change = created
        .change_progress_details()
        .expect("ChangeProgressDetails");
    assert_eq!(
        change.config_change_status().map(|s| s.as_str()),
        Some("ApplyingChanges")
    );
    let config = os
        .describe_domain_config()
        .domain_name("target")
        .send()
        .await
        .expect("DescribeDomainConfig")
        .domain_config
        .expect("config");
    let state = |c: &aws_sdk_opensearch::types::DomainConfig| {
        c.cluster_config()
            .and_then(|c| c.status())
            .map(|s| s.state().as_str().to_owned())
    };
    assert_eq!(state(&config).as_deref(), Some("Processing"));

    h.advance_clock(1200.0);
    let ready = os
        .describe_domain()
        .domain_name("target")
        .send()
        .await
        .expect("DescribeDomain")
        .domain_status
        .expect("status");
    assert_eq!(ready.created(), Some(true));
    assert_eq!(ready.processing(), Some(false));
    assert_eq!(
        ready.domain_processing_status(),
        Some(&DomainProcessingStatusType::Active)
    );
    assert!(
        ready
            .endpoint()
            .is_some_and(|e| e.starts_with("127.0.0.1:"))
    );
    assert_eq!(
        ready
            .change_progress_details()
            .and_then(|c| c.config_change_status())
            .map(|s| s.as_str()),
        Some("Completed")
    );
    assert_eq!(
        ready.change_progress_details().and_then(|c| c.change_id()),
        change.change_id(),
        "the same change, now completed"
    );
    let config = os
        .describe_domain_config()
        .domain_name("target")
        .send()
        .await
        .unwrap()
        .domain_config
        .unwrap();
    assert_eq!(state(&config).as_deref(), Some("Active"));
    h.shutdown().await;
}

#[tokio::test]
async fn update_domain_config_merges_nested_options_and_applies_over_the_update_time() {
    let h = start(config(
        r#"
domains: [{name: logs}]
domain_config:
  logs:
    ClusterConfig: {InstanceType: m6g.large.search, InstanceCount: 2, DedicatedMasterEnabled: true, DedicatedMasterType: m6g.large.search, DedicatedMasterCount: 3}
    AdvancedOptions: {"indices.fielddata.cache.size": "40"}
"#,
    ))
    .await;
    let os = opensearch(&h).await;
    let describe = async || {
        let (_, _, body) =
            crate::aws_models::control_plane(&h, "GET", "/2021-01-01/opensearch/domain/logs", None)
                .await;
        body["DomainStatus"].clone()
    };
    let config = async || {
        let (_, _, body) = crate::aws_models::control_plane(
            &h,
            "GET",
            "/2021-01-01/opensearch/domain/logs/config",
            None,
        )
        .await;
        body["DomainConfig"].clone()
    };

    // Only InstanceCount is sent (the SDK leaves every other member out).
    os.update_domain_config()
        .domain_name("logs")
        .cluster_config(ClusterConfig::builder().instance_count(4).build())
        .send()
        .await
        .expect("UpdateDomainConfig");
    let status = describe().await;
    assert_eq!(
        status["ClusterConfig"],
        json!({
            "InstanceType": "m6g.large.search", "InstanceCount": 4,
            "DedicatedMasterEnabled": true, "DedicatedMasterType": "m6g.large.search", "DedicatedMasterCount": 3,
            "ZoneAwarenessEnabled": false, "WarmEnabled": false, "ColdStorageOptions": {"Enabled": false},
            "MultiAZWithStandbyEnabled": false,
        })
    );
    assert_eq!(status["Processing"], true);
    assert_eq!(status["DomainProcessingStatus"], "Modifying");
    assert_eq!(
        status["ModifyingProperties"],
        json!([{"Name": "ClusterConfig.InstanceCount", "ActiveValue": "2", "PendingValue": "4", "ValueType": "PLAIN_TEXT"}])
    );
    assert_eq!(
        status["ChangeProgressDetails"]["ConfigChangeStatus"],
        "ApplyingChanges"
    );
    let cfg = config().await;
    assert_eq!(cfg["ClusterConfig"]["Status"]["State"], "Processing");
    assert_eq!(cfg["ClusterConfig"]["Status"]["UpdateVersion"], 2);
    assert_eq!(cfg["EBSOptions"]["Status"]["State"], "Active");
    assert_eq!(cfg["EBSOptions"]["Status"]["UpdateVersion"], 1);
    assert_eq!(cfg["ModifyingProperties"], status["ModifyingProperties"]);

    // A second change while the first one runs is refused.
    let busy = os
        .update_domain_config()
        .domain_name("logs")
        .cluster_config(ClusterConfig::builder().instance_count(6).build())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(busy.is_validation_exception(), "{busy:?}");
    assert_eq!(
        busy.meta().message(),
        Some(
            "A change/update is in progress. Please wait for it to complete before requesting another change."
        )
    );

    h.advance_clock(600.0);
    let status = describe().await;
    assert_eq!(status["Processing"], false);
    assert_eq!(status["DomainProcessingStatus"], "Active");
    assert_eq!(status["ModifyingProperties"], json!([]));
    assert_eq!(
        status["ChangeProgressDetails"]["ConfigChangeStatus"],
        "Completed"
    );
    assert_eq!(status["ClusterConfig"]["InstanceCount"], 4);

    // Maps merge key by key.
    os.update_domain_config()
        .domain_name("logs")
        .advanced_options("indices.query.bool.max_clause_count", "2048")
        .send()
        .await
        .expect("UpdateDomainConfig");
    let status = describe().await;
    assert_eq!(
        status["AdvancedOptions"]["indices.fielddata.cache.size"],
        "40"
    );
    assert_eq!(
        status["AdvancedOptions"]["indices.query.bool.max_clause_count"],
        "2048"
    );
    assert_eq!(status["ModifyingProperties"][0]["Name"], "AdvancedOptions");
    assert_eq!(
        status["ModifyingProperties"][0]["ValueType"],
        "STRINGIFIED_JSON"
    );
    h.advance_clock(600.0);

    // Sending what the domain already has changes nothing and starts nothing.
    os.update_domain_config()
        .domain_name("logs")
        .cluster_config(ClusterConfig::builder().instance_count(4).build())
        .send()
        .await
        .expect("UpdateDomainConfig");
    assert_eq!(describe().await["Processing"], false);

    // A dry run says what would happen and does nothing.
    let policy_before = describe().await["AccessPolicies"].clone();
    let dry = os
        .update_domain_config()
        .domain_name("logs")
        .cluster_config(ClusterConfig::builder().instance_count(6).build())
        .dry_run(true)
        .send()
        .await
        .expect("dry run");
    let results = dry.dry_run_results().expect("DryRunResults");
    assert_eq!(results.deployment_type(), Some("Blue/Green"));
    let dynamic = os
        .update_domain_config()
        .domain_name("logs")
        .access_policies(r#"{"Version":"2012-10-17","Statement":[]}"#)
        .dry_run(true)
        .send()
        .await
        .expect("dry run");
    assert_eq!(
        dynamic.dry_run_results().and_then(|r| r.deployment_type()),
        Some("DynamicUpdate")
    );
    let status = describe().await;
    assert_eq!(
        (
            status["ClusterConfig"]["InstanceCount"].clone(),
            status["Processing"].clone()
        ),
        (json!(4), json!(false))
    );
    assert_eq!(status["AccessPolicies"], policy_before);
    h.shutdown().await;
}

#[tokio::test]
async fn changes_aws_cannot_make_in_place_are_refused_and_nothing_changes() {
    let h = start(config(&format!(
        r#"
domains:
  - name: locked
  - name: public
  - name: old
    engine_version: Elasticsearch_6.5
domain_config:
  locked:
    EncryptionAtRestOptions: {{Enabled: true, KmsKeyId: "arn:aws:kms:us-east-1:123456789012:key/1111aaaa-11aa-11aa-11aa-111111aaaaaa"}}
    NodeToNodeEncryptionOptions: {{Enabled: true}}
    DomainEndpointOptions: {{EnforceHTTPS: true}}
    AdvancedSecurityOptions: {{Enabled: true, MasterUserOptions: {{MasterUserARN: "{MASTER_ARN}"}}}}
    IPAddressType: dualstack
"#
    )))
    .await;
    let os = opensearch(&h).await;
    let before =
        crate::aws_models::control_plane(&h, "GET", "/2021-01-01/opensearch/domain/locked", None)
            .await
            .2;
    let refused = async |request: aws_sdk_opensearch::operation::update_domain_config::builders::UpdateDomainConfigFluentBuilder| {
        let err = request.send().await.unwrap_err();
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
        let err = err.into_service_error();
        assert!(err.is_validation_exception(), "{err:?}");
        err.meta().message().unwrap_or("").to_owned()
    };
    let locked = || os.update_domain_config().domain_name("locked");
    assert_eq!(
        refused(
            locked().encryption_at_rest_options(
                EncryptionAtRestOptions::builder().enabled(false).build()
            )
        )
        .await,
        "Encryption at rest can't be disabled once it's enabled for a domain."
    );
    assert_eq!(
        refused(locked().encryption_at_rest_options(
            EncryptionAtRestOptions::builder()
                .enabled(true)
                .kms_key_id("arn:aws:kms:us-east-1:123456789012:key/2222bbbb-22bb-22bb-22bb-222222bbbbbb")
                .build()
        ))
        .await,
        "The KMS key of a domain encrypted at rest can't be changed (it is arn:aws:kms:us-east-1:123456789012:key/1111aaaa-11aa-11aa-11aa-111111aaaaaa)."
    );
    assert_eq!(
        refused(
            locked().node_to_node_encryption_options(
                NodeToNodeEncryptionOptions::builder()
                    .enabled(false)
                    .build()
            )
        )
        .await,
        "Node-to-node encryption can't be disabled once it's enabled for a domain."
    );
    assert_eq!(
        refused(
            locked().advanced_security_options(
                AdvancedSecurityOptionsInput::builder()
                    .enabled(false)
                    .build()
            )
        )
        .await,
        "Fine-grained access control can't be disabled once it's enabled for a domain."
    );
    assert_eq!(
        refused(locked().ip_address_type(IpAddressType::Ipv4)).await,
        "You can't change the IP address type of a dual-stack domain to IPv4."
    );
    assert_eq!(
        refused(
            os.update_domain_config()
                .domain_name("public")
                .vpc_options(VpcOptions::builder().subnet_ids("subnet-0aaa").build())
        )
        .await,
        "You can't change a domain with public access to VPC access. Create a new domain with VPC access instead."
    );
    assert_eq!(
        refused(
            os.update_domain_config()
                .domain_name("old")
                .encryption_at_rest_options(
                    EncryptionAtRestOptions::builder().enabled(true).build()
                )
        )
        .await,
        "Encryption at rest can be enabled on an existing domain only from Elasticsearch 6.7; old is Elasticsearch_6.5."
    );
    // Same KMS key, written as the bare key id AWS expands: not a change.
    os.update_domain_config()
        .domain_name("locked")
        .encryption_at_rest_options(
            EncryptionAtRestOptions::builder()
                .enabled(true)
                .kms_key_id("1111aaaa-11aa-11aa-11aa-111111aaaaaa")
                .build(),
        )
        .domain_endpoint_options(DomainEndpointOptions::builder().enforce_https(true).build())
        .send()
        .await
        .expect("the same configuration is accepted");
    let after =
        crate::aws_models::control_plane(&h, "GET", "/2021-01-01/opensearch/domain/locked", None)
            .await
            .2;
    assert_eq!(before, after, "nothing was half-applied");
    assert_eq!(after["DomainStatus"]["Processing"], false);
    let refusals = h
        .request_log()
        .iter()
        .filter(|e| e.operation == "UpdateDomainConfig" && e.status == 400)
        .count();
    assert_eq!(refusals, 7);
    h.shutdown().await;
}
