//! The plan file exactly as written: the serde model that YAML is read into and
//! that the JSON Schema is derived from. Every struct denies unknown fields so a
//! typo is an error instead of a silently ignored key. Nothing here is checked or
//! defaulted: that is the job of [`crate::check`], which turns a `RawPlan` into a
//! [`crate::Plan`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A snapferry plan: one or more replications of an OpenSearch Service domain
/// into a new domain through a manual snapshot in S3.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "snapferry plan")]
pub struct RawPlan {
    /// Version of the plan file format. Only `1` exists.
    pub version: u32,
    /// Name of the plan: keys the state file and the default role, repository and snapshot names.
    pub name: String,
    /// Default AWS region for the bucket, the domains and the role's policies.
    pub region: String,
    /// The IAM role OpenSearch Service assumes to read and write snapshots in the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<RawRole>,
    /// The S3 bucket that holds the snapshots.
    pub bucket: RawBucket,
    /// Where the state (checkpoints) of this plan is kept. Default: `.snapferry/<name>.state.json` beside the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<RawState>,
    /// The snapshot repository registered on the source and target domains (shared by all replications unless one sets its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<RawRepository>,
    /// Single-replication plans: the domain copied from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<RawDomainRef>,
    /// Single-replication plans: the domain created and restored into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<RawTarget>,
    /// Single-replication plans: how the snapshot is named and what it contains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<RawSnapshot>,
    /// Single-replication plans: how the snapshot is restored on the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RawRestore>,
    /// Single-replication plans: compare document counts after the restore (default on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<RawVerify>,
    /// Single-replication plans: copy the source's templates, ingest pipelines, ISM policies and stored scripts to the target (default off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<RawMetadata>,
    /// Single-replication plans: copy the source's Dashboards (Kibana) saved objects to the target (default off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboards: Option<RawDashboards>,
    /// Single-replication plans: map snapferry's identities to a `snapferry` security role on domains with fine-grained access control (default: on when the target's `fine_grained_access_control` names a master).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<RawSecurity>,
    /// Several replications sharing one role and one bucket. Excludes top-level `source`/`target`/`snapshot`/`restore`/`verify`/`metadata`/`dashboards`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replications: Option<Vec<RawReplication>>,
}

/// Either a role snapferry creates (or ensures), or an existing role given by `arn` that is only checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    /// An existing role to use as is (`arn:aws:iam::<account>:role/<name>`). Excludes every other key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Name of the role to create. Default: `<plan name>-snapshot-role`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// IAM path of the role, starting and ending with `/`. Default `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Services trusted besides `es.amazonaws.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_services: Option<Vec<String>>,
    /// ARN of a managed policy used as the role's permissions boundary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions_boundary: Option<String>,
    /// Tags put on the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

/// The S3 bucket holding the snapshots.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBucket {
    /// Bucket name (3-63 characters, `a-z0-9.-`).
    pub name: String,
    /// Region of the bucket. Default: the plan's `region`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Key prefix under which repositories are stored. Default: the bucket root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_path: Option<String>,
    /// Create the bucket if it is missing. Default false: the bucket must exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<bool>,
    /// Server-side encryption of snapshot objects: `AES256` or `aws:kms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<RawSse>,
    /// KMS key for `sse: aws:kms` (key id, alias or ARN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
}

/// Server-side encryption algorithm of the bucket's objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RawSse {
    /// S3-managed keys.
    #[serde(rename = "AES256")]
    Aes256,
    /// A KMS key (`kms_key_id`).
    #[serde(rename = "aws:kms")]
    AwsKms,
}

/// Where the state is kept: exactly one of `local` or `s3`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    /// A local JSON file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<RawLocalState>,
    /// An S3 object, locked with a conditional write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<RawS3State>,
}

/// A local state file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLocalState {
    /// Path of the state file, relative to the plan file's directory.
    pub path: String,
}

/// A state object in S3.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawS3State {
    /// Bucket of the state object.
    pub bucket: String,
    /// Key of the state object.
    pub key: String,
    /// Region of the bucket. Default: the plan's `region`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Seconds the lock is leased for: a running apply renews it every third of this, and a
    /// later run takes it over this long after its holder stopped renewing (a crash, a killed
    /// CI job). From 5 to 86400. Default 60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 5, max = 86400))]
    pub lock_lease_seconds: Option<u64>,
}

/// The snapshot repository registration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRepository {
    /// Repository name. Default: `snapferry-<plan name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Extra repository settings (e.g. `max_snapshot_bytes_per_sec`), added to bucket, region, role_arn and base_path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<BTreeMap<String, serde_json::Value>>,
}

/// A domain reached by snapferry: the source, or the target's name and access.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDomainRef {
    /// Domain name (3-28 characters, `[a-z][a-z0-9-]*`).
    pub domain: String,
    /// Endpoint to use instead of the one AWS reports (e.g. `https://localhost:9200` through a tunnel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Proxy for the domain's HTTP API, e.g. `socks5h://localhost:1080` for a VPC domain behind a bastion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// Region of the domain. Default: the plan's `region`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Role to assume for calls to this domain (another account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role_arn: Option<String>,
    /// The `ExternalId` the role's trust policy asks for (`sts:ExternalId`), sent with every
    /// `AssumeRole` of `assume_role_arn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Engine version the source is known to run (`OpenSearch_X.Y`); lets `validate` check the target's offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_version: Option<String>,
}

/// The target domain: where to reach it and how to create it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// Domain name (3-28 characters, `[a-z][a-z0-9-]*`).
    pub domain: String,
    /// Endpoint to use instead of the one AWS reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Proxy for the domain's HTTP API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// Region of the domain. Default: the plan's `region`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Role to assume for calls to this domain (another account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role_arn: Option<String>,
    /// The `ExternalId` the role's trust policy asks for (`sts:ExternalId`), sent with every
    /// `AssumeRole` of `assume_role_arn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Existing role the target domain uses to read the bucket when it is in another
    /// account than the plan's role (cross-account copies). The bucket policy lets it read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_role_arn: Option<String>,
    /// Copy the source domain's configuration (default true), changed by `overrides`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_source: Option<bool>,
    /// Changes to the copied source configuration (with `from_source: true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<RawDomainConfig>,
    /// The full configuration of the new domain (with `from_source: false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<RawDomainConfig>,
}

/// Configuration of an OpenSearch Service domain (the parts snapferry sets).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDomainConfig {
    /// `OpenSearch_X.Y` or `Elasticsearch_X.Y`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_version: Option<String>,
    /// Instances of the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_config: Option<ClusterConfig>,
    /// EBS storage of the data nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebs: Option<EbsConfig>,
    /// Access policy document (IAM JSON policy, written as YAML or as a JSON string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_policy: Option<serde_json::Value>,
    /// VPC placement (omit for a public domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc: Option<VpcConfig>,
    /// Encryption at rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_at_rest: Option<EncryptionAtRest>,
    /// Node-to-node TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_to_node_encryption: Option<bool>,
    /// Require HTTPS on the domain endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce_https: Option<bool>,
    /// Advanced options (`rest.action.multi.allow_explicit_index`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advanced_options: Option<BTreeMap<String, String>>,
    /// Tags put on the domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// Fine-grained access control (the security plugin) and the target's master user. A
    /// source with it always gives a target with it; the master must be named here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fine_grained_access_control: Option<RawFineGrainedAccessControl>,
}

/// Fine-grained access control of the target and its master user: an IAM ARN, or an internal
/// user whose password is read from an environment variable when
/// the domain is created (never written in the plan, the state or any output).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFineGrainedAccessControl {
    /// Enabled (default: as the source; `true` with an explicit configuration). Never `false`
    /// on a copy of a source that has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The master user as an IAM user or role ARN (`arn:aws:iam::<account>:role/<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_user_arn: Option<String>,
    /// The master user as an internal user (turns the internal user database on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_user_name: Option<String>,
    /// Where the internal master user's password comes from (with `master_user_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_user_password: Option<RawSecretSource>,
}

/// Where a secret is read from when it is needed: exactly one of `env` or `secrets_manager`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSecretSource {
    /// Name of an environment variable holding it, read by `apply` on the machine it runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// An AWS Secrets Manager secret holding it, by ARN (read in the ARN's Region) or by name
    /// (read in the target domain's Region, with the target's credentials). `GetSecretValue`
    /// is called only by the steps that send the password: the target's creation, and the
    /// `security` step calling the target's security API as this master (once the target
    /// exists, its `plan` too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_manager: Option<String>,
    /// With `secrets_manager`: the secret string is JSON and the password is this key's string
    /// value. Without it, the whole secret string is the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Instances of a domain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Data node instance type, e.g. `r6g.large.search`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// Number of data nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_count: Option<u32>,
    /// Dedicated master nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedicated_master_enabled: Option<bool>,
    /// Dedicated master instance type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedicated_master_type: Option<String>,
    /// Number of dedicated master nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedicated_master_count: Option<u32>,
    /// Spread nodes over availability zones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_awareness_enabled: Option<bool>,
    /// Number of availability zones (2 or 3) with zone awareness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone_count: Option<u32>,
}

/// EBS volumes of the data nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EbsConfig {
    /// EBS enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `gp3`, `gp2`, `io1` or `standard`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_type: Option<String>,
    /// Size per node in GiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_size: Option<u32>,
    /// Provisioned IOPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<u32>,
    /// Throughput in MiB/s (gp3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<u32>,
}

/// VPC placement of a domain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VpcConfig {
    /// Subnets, one per availability zone.
    pub subnet_ids: Vec<String>,
    /// Security groups.
    #[serde(default)]
    pub security_group_ids: Vec<String>,
}

/// Encryption at rest of a domain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EncryptionAtRest {
    /// Enabled.
    pub enabled: bool,
    /// KMS key (default: the AWS-owned key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
}

/// How the snapshot is named and what it holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSnapshot {
    /// Name template with `{name}`, `{date}` (YYYY-MM-DD) and `{datetime}` (e.g. 20261125t054200z). Resolved when a run starts and kept until it completes, so a resumed run reuses it; the next run resolves it again: with `{date}`, a second apply on the same day changes nothing and one on a later day takes a new snapshot; with `{datetime}`, every apply takes one. Default `{name}-{date}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Index patterns; a leading `-` excludes. Data-stream backing indices (`.ds-<stream>-<generation>`) are selected like other indices and restored with their stream. Closed indices (a snapshot that is not `partial` fails on them) and UltraWarm indices (a snapshot cannot mix hot and warm indices) are left out, and the plan names them under `left_out`. Default `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indices: Option<Vec<String>>,
    /// Keep system indices (`.kibana*`, `.opendistro*`, `.plugins*`, `.opensearch*`, `.tasks`). Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_system_indices: Option<bool>,
    /// Include the cluster's global state. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_global_state: Option<bool>,
    /// Accept a snapshot with unavailable shards. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<bool>,
    /// Retention: after a verified restore, delete snapferry's own snapshots of this replication beyond the newest `keep` (those it recorded in its state as taken by it; never a snapshot it did not take, never an automated `cs-` one). `plan` lists the snapshots it will delete. At least 1. Default: keep every snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<u32>,
}

/// What to do when an index of the snapshot already exists on the target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnConflict {
    /// Stop with an error naming the index.
    #[default]
    Fail,
    /// Leave the existing index and do not restore it.
    Skip,
    /// Restore under a new name (`rename_pattern`/`rename_replacement`).
    Rename,
    /// Delete the target's index of that name, then restore it.
    Replace,
}

/// How a refresh replaces the target's indices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RestoreStrategy {
    /// Restore each index under its own name; an index in the way is handled by `on_conflict` (`replace` deletes it first, so readers see it missing until the restore completes).
    #[default]
    InPlace,
    /// Zero-downtime refresh: restore each index as a new generation `<index>~<snapshot>`, wait, check its document count against the snapshot, then point the alias `<index>` at it and remove the previous generation in one atomic `POST _aliases`. A plain index `<index>` on the target is migrated by the same call (it is removed as the alias takes its name) when `on_conflict` is `replace`.
    AliasSwap,
}

impl RestoreStrategy {
    /// The default, left out of fingerprints.
    pub fn is_in_place(&self) -> bool {
        *self == RestoreStrategy::InPlace
    }
}

/// How the snapshot is restored on the target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRestore {
    /// Index patterns to restore; a leading `-` excludes. Default: all indices of the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indices: Option<Vec<String>>,
    /// Regular expression matched against index names to rename them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rename_pattern: Option<String>,
    /// Replacement for `rename_pattern` (`$1` refers to a group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rename_replacement: Option<String>,
    /// Index settings set on restored indices (e.g. `index.number_of_replicas: 0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_settings: Option<BTreeMap<String, serde_json::Value>>,
    /// Index settings not restored from the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_index_settings: Option<Vec<String>>,
    /// `fail` (default), `skip`, `rename` or `replace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_conflict: Option<OnConflict>,
    /// `in_place` (default) or `alias_swap` (a refresh with no downtime: readers query the alias, which switches between complete generations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<RestoreStrategy>,
    /// With `alias_swap`: leave an index's current generation in place when the snapshot proves its content unchanged since that generation was restored (same source index, no new file in the snapshot for it, same file count, size and document count); if unsure, it is restored. Default true with `alias_swap`; not allowed with `in_place`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_unchanged: Option<bool>,
}

/// Verification after the restore: `true`/`false`, or a mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawVerify {
    /// `verify: false` turns the document-count comparison off.
    Enabled(bool),
    /// The long form, `verify: { enabled: false }`.
    Options(RawVerifyOptions),
}

impl RawVerify {
    /// Whether verification is on, if the plan says.
    pub fn enabled(&self) -> Option<bool> {
        match self {
            RawVerify::Enabled(on) => Some(*on),
            RawVerify::Options(options) => options.enabled,
        }
    }
}

/// The long form of `verify`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawVerifyOptions {
    /// Compare per-index document counts between source and target. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// One replication of a multi-replication plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawReplication {
    /// Name of this replication (unique in the plan); used in node ids and `{name}`.
    pub name: String,
    /// The domain copied from.
    pub source: RawDomainRef,
    /// The domain created and restored into.
    pub target: RawTarget,
    /// Its own repository, instead of the plan's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<RawRepository>,
    /// How the snapshot is named and what it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<RawSnapshot>,
    /// How the snapshot is restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RawRestore>,
    /// Verification after the restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<RawVerify>,
    /// Templates, ingest pipelines, ISM policies and stored scripts copied to the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<RawMetadata>,
    /// Dashboards (Kibana) saved objects copied to the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboards: Option<RawDashboards>,
    /// The security mappings snapferry makes on domains with fine-grained access control.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<RawSecurity>,
}

/// The `security` step: `true`/`false`, or a mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawSecurity {
    /// `security: true` makes the mappings on both domains where they have fine-grained access control; `security: false` only checks them, and `plan` shows an FGAC domain blocked with the mapping to make by hand.
    Enabled(bool),
    /// The long form, `security: { enabled: false }`.
    Options(RawSecurityOptions),
}

impl RawSecurity {
    /// Whether snapferry makes the mappings, if the plan says.
    pub fn enabled(&self) -> Option<bool> {
        match self {
            RawSecurity::Enabled(on) => Some(*on),
            RawSecurity::Options(options) => options.enabled,
        }
    }
}

/// The long form of `security`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSecurityOptions {
    /// Create the `snapferry` security role and map the snapshot role and the identity snapferry signs with to it, through the security plugin's REST API. Default true when this mapping is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// The cluster metadata a restore leaves behind: `true`/`false`, or a mapping choosing what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawMetadata {
    /// `metadata: true` copies everything not built in; `false` (the default) nothing.
    Enabled(bool),
    /// The long form, choosing objects by name.
    Options(RawMetadataOptions),
}

impl RawMetadata {
    /// Whether the metadata step is on, if the plan says.
    pub fn enabled(&self) -> Option<bool> {
        match self {
            RawMetadata::Enabled(on) => Some(*on),
            RawMetadata::Options(options) => options.enabled,
        }
    }
}

/// Which objects of the source's cluster metadata the target gets, family by family, matched by name: `*` matches any run of characters, a leading `-` excludes (a list of exclusions alone starts from everything). The default `["*"]` selects every object that is not built in; built in means a name starting with `.` (the plugins' and Dashboards' own, such as `.opendistro-ism-config`), selected only by a pattern that starts with `.` too. `[]` copies none of the family. The same patterns choose which of the target's objects `prune` may delete.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMetadataOptions {
    /// Copy the metadata. Default true when this mapping is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Composable index templates (`_index_template`), by name. Default `["*"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_templates: Option<Vec<String>>,
    /// Component templates (`_component_template`), by name. Default `["*"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_templates: Option<Vec<String>>,
    /// Legacy index templates (`_template`), by name. Default `["*"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy_templates: Option<Vec<String>>,
    /// Ingest pipelines (`_ingest/pipeline`), by id. Default `["*"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipelines: Option<Vec<String>>,
    /// ISM policies (`_plugins/_ism`, `_opendistro/_ism` on Elasticsearch), by id; restored indices that the source manages with a copied policy are attached to it again after the restore. Default `["*"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ism_policies: Option<Vec<String>>,
    /// Stored scripts and search templates (`_scripts`), by id. Default `["*"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scripts: Option<Vec<String>>,
    /// Delete the selected objects the target has and the source does not. Default false: they are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<bool>,
}

/// The Dashboards (Kibana) saved objects: `true`/`false`, or a mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawDashboards {
    /// `dashboards: true` copies the global tenant's saved objects; `false` (the default) none.
    Enabled(bool),
    /// The long form.
    Options(RawDashboardsOptions),
}

impl RawDashboards {
    /// Whether the dashboards step is on, if the plan says.
    pub fn enabled(&self) -> Option<bool> {
        match self {
            RawDashboards::Enabled(on) => Some(*on),
            RawDashboards::Options(options) => options.enabled,
        }
    }
}

/// How the saved objects are copied.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDashboardsOptions {
    /// Copy the saved objects. Default true when this mapping is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Tenants to copy, each into the tenant of the same name (`global`, `private` or a custom tenant); tenants other than `global` need fine-grained access control on both domains. Default `["global"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Vec<String>>,
    /// Replace the target's objects of the same type and id that differ from the source's. Default true; with false they are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overwrite: Option<bool>,
    /// Saved-object types to copy. Default: `index-pattern`, `visualization`, `dashboard`, `search`, `url`, `query` and the newer types the source's version has (`visualization-visbuilder`, `augment-vis`); `config` (the UI's advanced settings, one object per version) only when listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<Vec<String>>,
}
