//! The checked plan: every name resolved, every default applied, every rule
//! enforced. This is what the graph and, through it, the AWS resource code
//! consume; nothing downstream ever looks at the raw YAML again.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine_version::EngineVersion;
use crate::raw::{
    ClusterConfig, EbsConfig, EncryptionAtRest, OnConflict, RestoreStrategy, VpcConfig,
};
use crate::template::Template;

/// A checked plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub name: String,
    pub region: String,
    pub role: RoleSpec,
    pub bucket: BucketSpec,
    pub state: StateLocation,
    pub replications: Vec<Replication>,
}

/// The role OpenSearch Service assumes to reach the bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoleSpec {
    /// A role snapferry creates or brings to this description.
    Managed {
        name: String,
        path: String,
        /// Always contains `es.amazonaws.com`; sorted, no duplicates.
        trusted_services: Vec<String>,
        permissions_boundary: Option<String>,
        tags: BTreeMap<String, String>,
    },
    /// A role that exists already; snapferry only checks it.
    Existing { arn: String, name: String },
}

impl RoleSpec {
    /// The role's name (for an existing role, the last part of its ARN).
    pub fn name(&self) -> &str {
        match self {
            RoleSpec::Managed { name, .. } | RoleSpec::Existing { name, .. } => name,
        }
    }
}

/// The bucket that holds the snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketSpec {
    pub name: String,
    pub region: String,
    /// Key prefix without leading or trailing `/`; `None` for the bucket root.
    pub base_path: Option<String>,
    /// Create the bucket when missing (otherwise it must exist).
    pub create: bool,
    pub encryption: Option<BucketEncryption>,
}

/// Server-side encryption of snapshot objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BucketEncryption {
    Aes256,
    Kms { key_id: Option<String> },
}

/// Where the state of the plan is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateLocation {
    /// A file; the path is relative to the plan file's directory.
    Local { path: String },
    /// An S3 object.
    S3 {
        bucket: String,
        key: String,
        region: String,
        /// How long the lock is leased for. Not part of the plan's fingerprint: it changes
        /// how runs take turns, not what they build.
        #[serde(skip)]
        lock_lease_seconds: u64,
    },
}

/// The S3 lock's lease when the plan does not set `state.s3.lock_lease_seconds`.
pub const DEFAULT_LOCK_LEASE_SECONDS: u64 = 60;
/// The shortest and longest leases a plan may set.
pub const LOCK_LEASE_SECONDS: std::ops::RangeInclusive<u64> = 5..=86_400;

impl StateLocation {
    /// The local state file resolved against the plan file's directory; `None` for S3.
    pub fn local_path(&self, plan_file: &std::path::Path) -> Option<std::path::PathBuf> {
        match self {
            StateLocation::Local { path } => {
                let dir = plan_file.parent().unwrap_or(std::path::Path::new(""));
                Some(dir.join(path))
            }
            StateLocation::S3 { .. } => None,
        }
    }
}

/// How snapferry reaches a domain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DomainRef {
    pub name: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub proxy: Option<String>,
    pub assume_role_arn: Option<String>,
    /// The `ExternalId` to assume `assume_role_arn` with (left out of fingerprints when unset,
    /// so a plan without one fingerprints as before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The engine version written in the plan (source: expected; target: desired), if any.
    pub engine_version: Option<EngineVersion>,
}

/// One copy of a source domain into a target domain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replication {
    pub name: String,
    pub source: DomainRef,
    pub target: TargetSpec,
    pub repository: RepositorySpec,
    pub snapshot: SnapshotSpec,
    pub restore: RestoreSpec,
    pub verify: VerifySpec,
    /// The cluster metadata copied to the target; `None` when the plan does not ask for it.
    pub metadata: Option<MetadataSpec>,
    /// The saved objects copied to the target; `None` when the plan does not ask for it.
    pub dashboards: Option<DashboardsSpec>,
    /// The `security` step on both domains; `None` when the plan neither asks for it nor
    /// names the target's FGAC master (left out of fingerprints then, so older plans
    /// fingerprint as before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security: Option<SecuritySpec>,
}

/// The `security` step of a replication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SecuritySpec {
    /// Make the mappings (true), or only check them and block with the mapping to make by
    /// hand (false, `security: false`).
    pub manage: bool,
}

/// The target domain and how to create it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetSpec {
    pub domain: DomainRef,
    pub creation: DomainCreation,
    /// The role the target's repository registration uses, when not the plan's role
    /// (a cross-account target cannot pass a role of another account).
    pub snapshot_role_arn: Option<String>,
}

/// How the target domain's configuration is obtained.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DomainCreation {
    /// Copy the live source configuration, then apply these changes.
    FromSource { overrides: DomainConfig },
    /// Use this configuration as is.
    Explicit { configuration: DomainConfig },
}

impl DomainCreation {
    /// The configuration written in the plan (overrides or full).
    pub fn config(&self) -> &DomainConfig {
        match self {
            DomainCreation::FromSource { overrides } => overrides,
            DomainCreation::Explicit { configuration } => configuration,
        }
    }
}

/// The parts of a domain's configuration snapferry sets.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DomainConfig {
    pub engine_version: Option<EngineVersion>,
    pub cluster_config: Option<ClusterConfig>,
    pub ebs: Option<EbsConfig>,
    pub access_policy: Option<serde_json::Value>,
    pub vpc: Option<VpcConfig>,
    pub encryption_at_rest: Option<EncryptionAtRest>,
    pub node_to_node_encryption: Option<bool>,
    pub enforce_https: Option<bool>,
    pub advanced_options: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// Fine-grained access control asked for by the plan (`None`: as the source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fine_grained_access_control: Option<FineGrainedAccessControl>,
}

/// Fine-grained access control of a target and who its master is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FineGrainedAccessControl {
    /// `None`: as the source (an explicit configuration that names a master: on).
    pub enabled: Option<bool>,
    pub master: Option<MasterUser>,
}

/// The master user of a domain with fine-grained access control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MasterUser {
    /// An IAM user or role, by ARN.
    Arn(String),
    /// An internal user of the security plugin; only where its password is read from is known.
    Internal {
        name: String,
        password: SecretSource,
    },
}

/// Where a secret is read from when it is needed (never its value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    /// An environment variable, by name.
    Env(String),
    /// An AWS Secrets Manager secret: its ARN or name, and the JSON key holding the value
    /// (`None`: the whole secret string).
    SecretsManager {
        secret_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Env(name) => write!(f, "environment variable {name}"),
            SecretSource::SecretsManager {
                secret_id,
                key: None,
            } => write!(f, "Secrets Manager secret {secret_id}"),
            SecretSource::SecretsManager {
                secret_id,
                key: Some(key),
            } => write!(f, "key {key} of Secrets Manager secret {secret_id}"),
        }
    }
}

/// The snapshot repository as registered on a domain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepositorySpec {
    pub name: String,
    /// Key prefix of this repository in the bucket (bucket base path + source domain name),
    /// so two source domains never write into the same repository.
    pub base_path: String,
    /// Extra settings, added to `bucket`, `region`, `role_arn` and `base_path`.
    pub settings: BTreeMap<String, serde_json::Value>,
}

/// How the snapshot is named and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotSpec {
    pub template: Template,
    /// The effective index selection, system-index exclusions included.
    pub indices: Vec<String>,
    pub include_global_state: bool,
    pub partial: bool,
    /// Retention: how many of snapferry's own snapshots of the replication stay after a
    /// verified restore (`None`: all). Left out of the fingerprint when unset, so plans
    /// written before it keep theirs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep: Option<u32>,
}

/// How the snapshot is restored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestoreSpec {
    /// Index selection of the restore (default: `*` minus system indices).
    pub indices: Vec<String>,
    pub rename: Option<Rename>,
    pub index_settings: BTreeMap<String, serde_json::Value>,
    pub ignore_index_settings: Vec<String>,
    pub on_conflict: OnConflict,
    /// Left out of the fingerprint at its default, like `skip_unchanged` (off with `in_place`).
    #[serde(skip_serializing_if = "RestoreStrategy::is_in_place")]
    pub strategy: RestoreStrategy,
    /// Leave an index's generation when the snapshot proves it unchanged (`alias_swap` only).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skip_unchanged: bool,
}

/// Renaming of restored indices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rename {
    /// A regular expression (checked with the `regex` crate).
    pub pattern: String,
    pub replacement: String,
}

/// The verification after the restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VerifySpec {
    pub enabled: bool,
}

/// Which objects of the source's cluster metadata the target gets, by family: name patterns
/// (`*` wildcards, `-` excludes). An empty list copies none of the family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetadataSpec {
    pub index_templates: Vec<String>,
    pub component_templates: Vec<String>,
    pub legacy_templates: Vec<String>,
    pub pipelines: Vec<String>,
    pub ism_policies: Vec<String>,
    pub scripts: Vec<String>,
    /// Delete selected objects the source does not have (default: keep them).
    pub prune: bool,
}

/// How the Dashboards (Kibana) saved objects are copied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DashboardsSpec {
    /// Tenants, each copied into the tenant of the same name; `global` is the default one.
    pub tenants: Vec<String>,
    /// Replace differing objects of the same type and id on the target.
    pub overwrite: bool,
    /// The saved-object types copied; `None` for the default set of the source's version.
    pub types: Option<Vec<String>>,
}
