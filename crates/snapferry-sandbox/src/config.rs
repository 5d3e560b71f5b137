//! The sandbox's configuration file (YAML). Everything a test or a demo wants to vary lives here:
//! credentials, the account and region, how fast simulated time runs, the latency of each slow
//! operation, the domains that exist at start-up (with their data), the faults to inject,
//! whether IAM and S3 are served locally or by someone else's endpoint, and the identities that
//! may call it with their IAM policies.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::SandboxError;
use crate::faults::FaultRule;

/// Complete sandbox configuration. `Default` gives a working demo set-up.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// Port of the single AWS-shaped listener on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The default identity: an administrator (`arn:aws:iam::<account>:user/sandbox`) whose
    /// requests no identity policy limits.
    pub credentials: CredentialsConfig,
    /// More callers, each held to its own IAM policies (see [`IdentityConfig`]).
    pub identities: Vec<IdentityConfig>,
    /// Whether the account holds OpenSearch Service's service-linked role at start-up. Unset:
    /// it does when any domain is seeded (a domain was created before). `false` makes the
    /// account fresh: the first CreateDomain creates the role, which needs
    /// `iam:CreateServiceLinkedRole`.
    pub service_linked_role: Option<bool>,
    /// Twelve-digit account id used in ARNs.
    pub account_id: String,
    pub region: String,
    /// Real seconds per simulated second: 0.001 turns a 20-minute domain creation into 1.2 s.
    pub time_scale: f64,
    pub latencies: LatencyConfig,
    /// `concurrent_snapshot_execution_exception` status: 503 in OpenSearch 2.x, 429 in some versions.
    pub concurrent_snapshot_status: u16,
    /// Directory for the CA bundle; a temporary directory when absent.
    pub state_dir: Option<std::path::PathBuf>,
    pub domains: Vec<SeedDomain>,
    /// Buckets that exist at start-up (sandbox S3 only).
    pub buckets: Vec<String>,
    pub faults: FaultsConfig,
    pub external: ExternalConfig,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            port: 0,
            credentials: CredentialsConfig::default(),
            identities: Vec::new(),
            service_linked_role: None,
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            time_scale: 0.001,
            latencies: LatencyConfig::default(),
            concurrent_snapshot_status: 503,
            state_dir: None,
            domains: Vec::new(),
            buckets: Vec::new(),
            faults: FaultsConfig::default(),
            external: ExternalConfig::default(),
        }
    }
}

impl SandboxConfig {
    /// Reads and checks a YAML configuration file.
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<Self, SandboxError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SandboxError::ReadConfig {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml_str(&text).map_err(|err| match err {
            SandboxError::ParseConfig { source, .. } => SandboxError::ParseConfig {
                path: path.display().to_string(),
                source,
            },
            other => other,
        })
    }

    /// Parses a YAML configuration held in memory (tests, child processes).
    pub fn from_yaml_str(text: &str) -> Result<Self, SandboxError> {
        let config: Self =
            serde_yaml::from_str(text).map_err(|source| SandboxError::ParseConfig {
                path: "<config>".into(),
                source,
            })?;
        config.check()?;
        Ok(config)
    }

    pub(crate) fn check(&self) -> Result<(), SandboxError> {
        if !(self.time_scale.is_finite() && self.time_scale >= 0.0) {
            return Err(SandboxError::InvalidConfig(format!(
                "time_scale must be a number >= 0, got {}",
                self.time_scale
            )));
        }
        for d in &self.domains {
            if !crate::control_plane::valid_domain_name(&d.name) {
                return Err(SandboxError::InvalidConfig(format!(
                    "seeded domain name {:?} is not a valid OpenSearch Service domain name",
                    d.name
                )));
            }
        }
        for rule in &self.faults.rules {
            rule.check().map_err(SandboxError::InvalidConfig)?;
        }
        crate::identity::Identities::from_config(self)?;
        Ok(())
    }

    /// Converts a simulated duration (seconds) into real time under the configured scale.
    pub(crate) fn scaled(&self, simulated_secs: f64) -> std::time::Duration {
        std::time::Duration::from_secs_f64((simulated_secs * self.time_scale).max(0.0))
    }
}

/// The one principal the sandbox accepts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CredentialsConfig {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// When set, every request must carry this `X-Amz-Security-Token`.
    pub session_token: Option<String>,
}

impl Default for CredentialsConfig {
    fn default() -> Self {
        Self {
            access_key_id: "AKIASANDBOXEXAMPLE01".into(),
            secret_access_key: "sandbox/secret/key/not/a/real/one/000000".into(),
            session_token: None,
        }
    }
}

/// A caller other than the default one: its keys, the principal it is, and its identity-based
/// policies. Requests are signed with these keys like any AWS credentials.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// When set, every request of this identity must carry this `X-Amz-Security-Token`.
    #[serde(default)]
    pub session_token: Option<String>,
    /// `arn:aws:iam::<account>:user/<name>` or `arn:aws:iam::<account>:role/<name>` (a role is
    /// named in messages by its session, `arn:aws:sts::<account>:assumed-role/<name>/…`).
    pub arn: String,
    /// Identity-based policy documents (YAML mappings, or JSON text). Absent: no limits, as
    /// the default identity; present: exactly these, so `[]` allows nothing.
    #[serde(default)]
    pub policies: Option<Vec<serde_json::Value>>,
}

/// Simulated durations in seconds (scaled by `time_scale`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LatencyConfig {
    /// From CreateDomain until the domain has an endpoint (AWS: 15-30 minutes).
    pub domain_creation_secs: f64,
    /// From DeleteDomain until the domain disappears from listings.
    pub domain_deletion_secs: f64,
    /// UpdateDomainConfig keeps `Processing: true` this long.
    pub domain_update_secs: f64,
    /// Fixed part of a snapshot's duration.
    pub snapshot_secs: f64,
    /// Added per thousand documents in the snapshot.
    pub snapshot_secs_per_1000_docs: f64,
    /// Fixed part of a restore's recovery.
    pub restore_secs: f64,
    pub restore_secs_per_1000_docs: f64,
    /// Extra response delay per operation name (e.g. `CreateRole: 2`), simulated seconds.
    pub operations: BTreeMap<String, f64>,
}

impl Default for LatencyConfig {
    fn default() -> Self {
        Self {
            domain_creation_secs: 1200.0,
            domain_deletion_secs: 300.0,
            domain_update_secs: 60.0,
            snapshot_secs: 60.0,
            snapshot_secs_per_1000_docs: 1.0,
            restore_secs: 60.0,
            restore_secs_per_1000_docs: 1.0,
            operations: BTreeMap::new(),
        }
    }
}

/// A domain that exists when the sandbox starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedDomain {
    pub name: String,
    #[serde(default = "default_engine_version")]
    pub engine_version: String,
    /// `false` makes it start as if just created (`Processing: true`, no endpoint yet).
    #[serde(default = "yes")]
    pub ready: bool,
    #[serde(default)]
    pub indices: Vec<SeedIndex>,
    /// Seed a `.kibana` system index like real domains have.
    #[serde(default = "yes")]
    pub kibana: bool,
    /// A domain inside a VPC: described with `Endpoints: {"vpc": "vpc-<name>.sandbox.internal:<port>"}`
    /// and no public `Endpoint`, a name no resolver knows, so only a proxy that maps it (as a
    /// bastion's SOCKS proxy does) reaches it. Its listener is still on 127.0.0.1.
    #[serde(default)]
    pub vpc: bool,
}

fn default_engine_version() -> String {
    "OpenSearch_2.11".into()
}

fn yes() -> bool {
    true
}

/// An index with either explicit documents or a generated count.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedIndex {
    pub name: String,
    #[serde(default)]
    pub documents: Vec<serde_json::Value>,
    /// Generates this many documents `{"n": i, "title": "document i"}` with ids `0..count`.
    #[serde(default)]
    pub generate: u64,
    #[serde(default)]
    pub settings: Option<serde_json::Value>,
    #[serde(default)]
    pub mappings: Option<serde_json::Value>,
}

/// Fault injection: rules are checked in order for every request; the first that fires wins.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultsConfig {
    /// Seed of the RNG behind `rate` rules, so runs are reproducible.
    pub seed: u64,
    pub rules: Vec<FaultRule>,
}

/// Where IAM and S3 live. Empty means the sandbox serves them itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExternalConfig {
    /// e.g. `http://127.0.0.1:5000` (moto). The domain emulation reads roles from here.
    pub iam_endpoint: Option<String>,
    /// e.g. `http://127.0.0.1:5000` (moto). Snapshots are written into buckets here.
    pub s3_endpoint: Option<String>,
}
