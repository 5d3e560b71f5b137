//! What the clone does with every member of AWS's `DomainStatus` and `DomainConfig` (and the
//! option shapes inside them): copied into [`super::DomainShape`], describing the source
//! rather than configuring it, or not copied — with the one-line reason `plan` shows when the
//! source uses it. `tests/it/domain_members.rs` walks AWS's model of both shapes and fails on a
//! member this table does not name (itself or through a parent), so a member AWS adds is
//! decided here, never dropped without a word.

use aws_sdk_opensearch::types as os;

/// What the clone does with one member (and everything under it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// Copied into this `DomainShape` field (overridable in the plan).
    Copied(&'static str),
    /// Describes the source domain (ids, endpoints, progress), not its configuration.
    Status,
    /// Not copied, for this reason; `plan` shows it when the source uses the member.
    NotCopied(&'static str),
}

/// Whether the source uses a member the clone does not copy (`None`: cannot tell from the SDK).
type InUse = Option<fn(&os::DomainStatus) -> bool>;

/// Every member, by its dotted path in AWS's model. A path covers the members under it.
pub const MEMBERS: &[(&str, Handling, InUse)] = &[
    ("DomainId", Handling::Status, None),
    ("DomainName", Handling::Status, None),
    ("ARN", Handling::Status, None),
    ("Created", Handling::Status, None),
    ("Deleted", Handling::Status, None),
    ("Endpoint", Handling::Status, None),
    ("EndpointV2", Handling::Status, None),
    ("Endpoints", Handling::Status, None),
    ("DomainEndpointV2HostedZoneId", Handling::Status, None),
    ("Processing", Handling::Status, None),
    ("UpgradeProcessing", Handling::Status, None),
    ("ServiceSoftwareOptions", Handling::Status, None),
    ("ChangeProgressDetails", Handling::Status, None),
    ("DomainProcessingStatus", Handling::Status, None),
    ("ModifyingProperties", Handling::Status, None),
    ("EngineVersion", Handling::Copied("engine_version"), None),
    (
        "ClusterConfig.InstanceType",
        Handling::Copied("instance_type"),
        None,
    ),
    (
        "ClusterConfig.InstanceCount",
        Handling::Copied("instance_count"),
        None,
    ),
    (
        "ClusterConfig.DedicatedMasterEnabled",
        Handling::Copied("dedicated_master_enabled"),
        None,
    ),
    (
        "ClusterConfig.DedicatedMasterType",
        Handling::Copied("dedicated_master_type"),
        None,
    ),
    (
        "ClusterConfig.DedicatedMasterCount",
        Handling::Copied("dedicated_master_count"),
        None,
    ),
    (
        "ClusterConfig.ZoneAwarenessEnabled",
        Handling::Copied("zone_awareness_enabled"),
        None,
    ),
    (
        "ClusterConfig.ZoneAwarenessConfig.AvailabilityZoneCount",
        Handling::Copied("availability_zone_count"),
        None,
    ),
    (
        "ClusterConfig.WarmEnabled",
        Handling::NotCopied(
            "UltraWarm: restored indices land on hot nodes; add UltraWarm nodes to the copy when it needs them",
        ),
        Some(|s| s.cluster_config().and_then(|c| c.warm_enabled()) == Some(true)),
    ),
    (
        "ClusterConfig.WarmType",
        Handling::NotCopied("UltraWarm node type: UltraWarm is not copied"),
        None,
    ),
    (
        "ClusterConfig.WarmCount",
        Handling::NotCopied("UltraWarm node count: UltraWarm is not copied"),
        None,
    ),
    (
        "ClusterConfig.ColdStorageOptions",
        Handling::NotCopied(
            "cold storage needs UltraWarm, and cold indices are not in a snapshot; enable it on the copy",
        ),
        Some(|s| {
            s.cluster_config()
                .and_then(|c| c.cold_storage_options())
                .is_some_and(|c| c.enabled())
        }),
    ),
    (
        "ClusterConfig.MultiAZWithStandbyEnabled",
        Handling::NotCopied(
            "Multi-AZ with standby needs three zones and sized masters; enable it when the copy takes production traffic",
        ),
        Some(|s| {
            s.cluster_config()
                .and_then(|c| c.multi_az_with_standby_enabled())
                == Some(true)
        }),
    ),
    (
        "ClusterConfig.NodeOptions",
        Handling::NotCopied("coordinator nodes are added to the copy after it exists"),
        Some(|s| {
            s.cluster_config()
                .is_some_and(|c| !c.node_options().is_empty())
        }),
    ),
    (
        "EBSOptions.EBSEnabled",
        Handling::Copied("ebs_enabled"),
        None,
    ),
    (
        "EBSOptions.VolumeType",
        Handling::Copied("volume_type"),
        None,
    ),
    (
        "EBSOptions.VolumeSize",
        Handling::Copied("volume_size"),
        None,
    ),
    ("EBSOptions.Iops", Handling::Copied("iops"), None),
    (
        "EBSOptions.Throughput",
        Handling::Copied("throughput"),
        None,
    ),
    ("AccessPolicies", Handling::Copied("access_policy"), None),
    (
        "IPAddressType",
        Handling::NotCopied(
            "the copy is IPv4; dual-stack needs dual-stack subnets, set it afterwards",
        ),
        Some(|s| {
            s.ip_address_type()
                .is_some_and(|t| t.as_str() == "dualstack")
        }),
    ),
    (
        "SnapshotOptions",
        Handling::NotCopied(
            "automated snapshots are hourly on current engines; a start hour applies only before Elasticsearch 5.3",
        ),
        Some(|s| {
            s.snapshot_options()
                .and_then(|o| o.automated_snapshot_start_hour())
                .is_some()
        }),
    ),
    ("VPCOptions.SubnetIds", Handling::Copied("subnet_ids"), None),
    (
        "VPCOptions.SecurityGroupIds",
        Handling::Copied("security_group_ids"),
        None,
    ),
    ("VPCOptions.VPCId", Handling::Status, None),
    ("VPCOptions.AvailabilityZones", Handling::Status, None),
    ("VPCOptions.EgressEnabled", Handling::Status, None),
    (
        "CognitoOptions",
        Handling::NotCopied(
            "Cognito pools and their role trust the source's Dashboards URL; configure Cognito for the copy",
        ),
        Some(|s| s.cognito_options().and_then(|c| c.enabled()) == Some(true)),
    ),
    (
        "EncryptionAtRestOptions.Enabled",
        Handling::Copied("encryption_at_rest"),
        None,
    ),
    (
        "EncryptionAtRestOptions.KmsKeyId",
        Handling::Copied("kms_key_id"),
        None,
    ),
    (
        "EncryptionAtRestOptions.EncryptionMode",
        Handling::NotCopied("follows the KMS key, which is copied"),
        None,
    ),
    (
        "NodeToNodeEncryptionOptions.Enabled",
        Handling::Copied("node_to_node_encryption"),
        None,
    ),
    (
        "AdvancedOptions",
        Handling::Copied("advanced_options"),
        None,
    ),
    (
        "LogPublishingOptions",
        Handling::NotCopied(
            "log groups need a CloudWatch Logs resource policy naming the new domain; enable publishing on the copy",
        ),
        Some(|s| {
            s.log_publishing_options()
                .is_some_and(|m| m.values().any(|o| o.enabled() == Some(true)))
        }),
    ),
    (
        "DomainEndpointOptions.EnforceHTTPS",
        Handling::Copied("enforce_https"),
        None,
    ),
    (
        "DomainEndpointOptions.TLSSecurityPolicy",
        Handling::Copied("tls_security_policy"),
        None,
    ),
    (
        "DomainEndpointOptions.CustomEndpointEnabled",
        Handling::NotCopied(
            "a custom endpoint's name and certificate point at the source; give the copy its own",
        ),
        Some(|s| {
            s.domain_endpoint_options()
                .and_then(|e| e.custom_endpoint_enabled())
                == Some(true)
        }),
    ),
    (
        "DomainEndpointOptions.CustomEndpoint",
        Handling::NotCopied("the custom endpoint is not copied"),
        None,
    ),
    (
        "DomainEndpointOptions.CustomEndpointCertificateArn",
        Handling::NotCopied("the custom endpoint is not copied"),
        None,
    ),
    (
        "AdvancedSecurityOptions.Enabled",
        Handling::Copied("fine_grained_access_control"),
        None,
    ),
    (
        "AdvancedSecurityOptions.InternalUserDatabaseEnabled",
        Handling::Copied("internal_user_database"),
        None,
    ),
    (
        "AdvancedSecurityOptions.AnonymousAuthEnabled",
        Handling::NotCopied("anonymous access is a migration aid; the copy starts without it"),
        Some(|s| {
            s.advanced_security_options()
                .and_then(|a| a.anonymous_auth_enabled())
                == Some(true)
        }),
    ),
    (
        "AdvancedSecurityOptions.AnonymousAuthDisableDate",
        Handling::Status,
        None,
    ),
    (
        "AdvancedSecurityOptions.SAMLOptions",
        Handling::NotCopied(
            "the SAML identity provider trusts the source's Dashboards URL; configure SAML for the copy",
        ),
        Some(|s| {
            s.advanced_security_options()
                .and_then(|a| a.saml_options())
                .and_then(|o| o.enabled())
                == Some(true)
        }),
    ),
    (
        "AdvancedSecurityOptions.JWTOptions",
        Handling::NotCopied("JWT authentication is configured on the copy once it exists"),
        Some(|s| {
            s.advanced_security_options()
                .and_then(|a| a.jwt_options())
                .and_then(|o| o.enabled())
                == Some(true)
        }),
    ),
    (
        "AdvancedSecurityOptions.IAMFederationOptions",
        Handling::NotCopied("IAM federation is configured on the copy once it exists"),
        Some(|s| {
            s.advanced_security_options()
                .and_then(|a| a.iam_federation_options())
                .and_then(|o| o.enabled())
                == Some(true)
        }),
    ),
    (
        "IdentityCenterOptions",
        Handling::NotCopied(
            "an IAM Identity Center application belongs to one domain; create one for the copy",
        ),
        Some(|s| {
            s.identity_center_options()
                .and_then(|i| i.enabled_api_access())
                == Some(true)
        }),
    ),
    (
        "AutoTuneOptions",
        Handling::NotCopied(
            "the copy gets AWS's default Auto-Tune; change it after creation if the source differs",
        ),
        Some(|s| {
            s.auto_tune_options()
                .and_then(|a| a.state())
                .is_some_and(|st| st.as_str().starts_with("DISABLE"))
        }),
    ),
    (
        "OffPeakWindowOptions",
        Handling::NotCopied(
            "the copy gets AWS's default off-peak window (22:00); change it after creation",
        ),
        Some(|s| {
            s.off_peak_window_options()
                .and_then(|o| o.off_peak_window())
                .and_then(|w| w.window_start_time())
                .is_some_and(|t| (t.hours(), t.minutes()) != (22, 0))
        }),
    ),
    (
        "SoftwareUpdateOptions",
        Handling::NotCopied("the copy gets AWS's default (no automatic software updates)"),
        Some(|s| {
            s.software_update_options()
                .and_then(|o| o.auto_software_update_enabled())
                == Some(true)
        }),
    ),
    (
        "AIMLOptions",
        Handling::NotCopied("AI/ML features are enabled on the copy by hand"),
        Some(|s| {
            s.aiml_options()
                .and_then(|a| a.natural_language_query_generation_options())
                .and_then(|n| n.desired_state())
                .is_some_and(|d| d.as_str() == "ENABLED")
        }),
    ),
    (
        "DeploymentStrategyOptions",
        Handling::NotCopied("the copy uses AWS's default deployment strategy"),
        None,
    ),
    (
        "AutomatedSnapshotPauseOptions",
        Handling::NotCopied("not read by the SDK snapferry is built with; AWS's default applies"),
        None,
    ),
    (
        "UseCase",
        Handling::NotCopied("not read by the SDK snapferry is built with; AWS's default applies"),
        None,
    ),
    (
        "EngineMode",
        Handling::NotCopied("not read by the SDK snapferry is built with; AWS's default applies"),
        None,
    ),
];

/// How the clone handles the member at `path` (itself or its nearest listed parent).
pub fn handling(path: &str) -> Option<Handling> {
    MEMBERS
        .iter()
        .filter(|(p, _, _)| path == *p || path.starts_with(&format!("{p}.")))
        .max_by_key(|(p, _, _)| p.len())
        .map(|(_, h, _)| *h)
}

/// The members the source uses that the copy will not have, with the reason.
pub fn not_copied_in_use(source: &os::DomainStatus) -> Vec<(String, String)> {
    MEMBERS
        .iter()
        .filter_map(|(path, handling, in_use)| match (handling, in_use) {
            (Handling::NotCopied(reason), Some(in_use)) if in_use(source) => {
                Some(((*path).to_owned(), (*reason).to_owned()))
            }
            _ => None,
        })
        .collect()
}
