//! The sandbox's configuration file (YAML). Everything a test or a demo wants to vary lives here:
//! credentials, the account and region, how fast simulated time runs, the latency of each slow
//! operation, the domains that exist at start-up (with their data), the faults to inject,
//! whether IAM and S3 are served locally or by someone else's endpoint, and the identities that
//! may call it with their IAM policies.
//!
//! Accounts and Regions: every twelve-digit account and every Region exists, as on AWS. The
//! defaults (`account_id`, `region`) are where `credentials:` lives and where seeds go; an
//! identity's ARN says its account, `roles:` seeds roles in any account (to be assumed through
//! STS), and `domain_homes`/`bucket_homes` place a seeded domain or bucket elsewhere;
//! `vpc_homes` says where subnets and security groups are.

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
    /// Option blocks of seeded domains, keyed by domain name, written as a CreateDomain request
    /// writes them (`ClusterConfig`, `EBSOptions`, `EncryptionAtRestOptions`, `VPCOptions`,
    /// `AdvancedSecurityOptions`, `LogPublishingOptions`, `CognitoOptions`, ...). They are checked
    /// against AWS's model as a CreateDomain is, and described with AWS's defaults filled in.
    pub domain_config: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    /// Buckets that exist at start-up (sandbox S3 only), in the default account and Region
    /// unless `bucket_homes` says otherwise.
    pub buckets: Vec<String>,
    /// The account and Region of seeded buckets that are not in the defaults, by bucket name.
    pub bucket_homes: BTreeMap<String, Home>,
    /// The account and Region of seeded domains that are not in the defaults, by domain name.
    pub domain_homes: BTreeMap<String, Home>,
    /// VPC subnets and security groups that exist, by id, with their account and Region
    /// (each absent part: the default one). Those of seeded VPC domains exist where their
    /// domain is without being listed. CreateDomain and UpdateDomainConfig refuse one of them
    /// named in another account or Region, as AWS, which looks the id up in the caller's
    /// account and the request's Region, finds no such subnet there.
    pub vpc_homes: BTreeMap<String, Home>,
    /// IAM roles that exist at start-up, in any account: roles an operator assumes with STS
    /// `AssumeRole` (their trust policy decides who may), with their inline policies.
    pub roles: Vec<SeedRole>,
    /// AWS Secrets Manager secrets that exist at start-up (an internal master user's password),
    /// in the default account and Region unless the seed says otherwise.
    pub secrets: Vec<SeedSecret>,
    pub faults: FaultsConfig,
    pub external: ExternalConfig,
    /// Per domain (seeded or created later, by name): data-plane behaviour that needs a seed to
    /// show up — closed and UltraWarm indices, data streams, a source still being written to, a
    /// primary relocation, the automated snapshots of Elasticsearch before 7.9.
    pub seed_data: BTreeMap<String, SeedData>,
    /// Access policy and fine-grained access control of seeded domains, by domain name: a
    /// shorthand for the `AccessPolicies` and `AdvancedSecurityOptions` (with the encryption and
    /// HTTPS FGAC needs) of the domain's CreateDomain-shaped `domain_config`, into which it is
    /// folded before the seed is checked and created. A block may be said in one of the two only.
    pub domain_security: BTreeMap<String, SeedDomainSecurity>,
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
            domain_config: BTreeMap::new(),
            buckets: Vec::new(),
            bucket_homes: BTreeMap::new(),
            domain_homes: BTreeMap::new(),
            vpc_homes: BTreeMap::new(),
            roles: Vec::new(),
            secrets: Vec::new(),
            faults: FaultsConfig::default(),
            external: ExternalConfig::default(),
            seed_data: BTreeMap::new(),
            domain_security: BTreeMap::new(),
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
        for (name, security) in &self.domain_security {
            if !self.domains.iter().any(|d| &d.name == name) {
                return Err(SandboxError::InvalidConfig(format!(
                    "domain_security names {name:?}, which is not a seeded domain"
                )));
            }
            let engine = self
                .domains
                .iter()
                .find(|d| &d.name == name)
                .map(|d| d.engine_version.as_str())
                .unwrap_or_default();
            security.check(engine).map_err(|why| {
                SandboxError::InvalidConfig(format!("domain_security.{name}: {why}"))
            })?;
        }
        for d in &self.domains {
            crate::control_plane::check_seed(d, self).map_err(SandboxError::InvalidConfig)?;
        }
        if let Some(name) = self
            .domain_config
            .keys()
            .find(|name| !self.domains.iter().any(|d| &d.name == *name))
        {
            return Err(SandboxError::InvalidConfig(format!(
                "domain_config names {name:?}, which is not a seeded domain; add it under `domains:` or remove its entry"
            )));
        }
        for (domain, seed) in &self.seed_data {
            seed.check(domain, self.domains.iter().find(|d| &d.name == domain))
                .map_err(SandboxError::InvalidConfig)?;
        }
        for rule in &self.faults.rules {
            rule.check().map_err(SandboxError::InvalidConfig)?;
        }
        for (i, secret) in self.secrets.iter().enumerate() {
            secret
                .check()
                .map_err(|why| SandboxError::InvalidConfig(format!("secrets[{i}]: {why}")))?;
        }
        for (what, homes, names) in [
            (
                "bucket_homes",
                &self.bucket_homes,
                self.buckets.iter().collect::<Vec<_>>(),
            ),
            (
                "domain_homes",
                &self.domain_homes,
                self.domains.iter().map(|d| &d.name).collect(),
            ),
        ] {
            for (name, home) in homes {
                if !names.contains(&name) {
                    return Err(SandboxError::InvalidConfig(format!(
                        "{what} names {name:?}, which is not seeded; add it or remove its entry"
                    )));
                }
                home.check()
                    .map_err(|why| SandboxError::InvalidConfig(format!("{what}.{name}: {why}")))?;
            }
        }
        for (id, home) in &self.vpc_homes {
            if !(id.starts_with("subnet-") || id.starts_with("sg-")) {
                return Err(SandboxError::InvalidConfig(format!(
                    "vpc_homes names {id:?}, which is neither a subnet (subnet-...) nor a security group (sg-...)"
                )));
            }
            home.check()
                .map_err(|why| SandboxError::InvalidConfig(format!("vpc_homes.{id}: {why}")))?;
        }
        for (index, role) in self.roles.iter().enumerate() {
            role.check().map_err(|why| {
                SandboxError::InvalidConfig(format!("roles[{index}] ({}): {why}", role.arn))
            })?;
        }
        crate::identity::Identities::from_config(self)?;
        Ok(())
    }

    /// The account and Region of a seeded domain.
    pub(crate) fn domain_home(&self, name: &str) -> (String, String) {
        self.home(self.domain_homes.get(name))
    }

    /// The account and Region of a seeded bucket.
    pub(crate) fn bucket_home(&self, name: &str) -> (String, String) {
        self.home(self.bucket_homes.get(name))
    }

    /// The account and Region of a subnet or security group listed in `vpc_homes`.
    pub(crate) fn listed_vpc_home(&self, id: &str) -> Option<(String, String)> {
        self.vpc_homes.get(id).map(|h| self.home(Some(h)))
    }

    fn home(&self, home: Option<&Home>) -> (String, String) {
        let home = home.cloned().unwrap_or_default();
        (
            home.account.unwrap_or_else(|| self.account_id.clone()),
            home.region.unwrap_or_else(|| self.region.clone()),
        )
    }

    /// Converts a simulated duration (seconds) into real time under the configured scale.
    pub(crate) fn scaled(&self, simulated_secs: f64) -> std::time::Duration {
        std::time::Duration::from_secs_f64((simulated_secs * self.time_scale).max(0.0))
    }
}

/// Where a seeded domain or bucket lives (each absent part: the default one).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Home {
    /// Twelve-digit account id.
    pub account: Option<String>,
    /// Region name (`eu-west-1`).
    pub region: Option<String>,
}

impl Home {
    fn check(&self) -> Result<(), String> {
        if let Some(a) = &self.account
            && !is_account_id(a)
        {
            return Err(format!("account {a:?} is not a twelve-digit account id"));
        }
        if let Some(r) = &self.region
            && !is_region(r)
        {
            return Err(format!("region {r:?} is not a Region name like eu-west-1"));
        }
        Ok(())
    }
}

/// Whether `s` is a twelve-digit account id.
pub(crate) fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `s` looks like a Region name (`us-east-1`, `ap-southeast-2`, `us-gov-west-1`).
pub(crate) fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok_and(|n| n > 0)
}

/// A Secrets Manager secret that exists at start-up (`secrets:` in the YAML); its ARN gets
/// AWS's six random characters after the name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedSecret {
    /// The secret's name (`search/master`).
    pub name: String,
    /// Its value as a secret string (plain text or JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_string: Option<String>,
    /// Its value as binary data, base64 (a secret snapferry must refuse to read a password from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_binary: Option<String>,
    /// Twelve-digit account id (default: `account_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Region (default: `region`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl SeedSecret {
    fn check(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 512
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
        if !name_ok {
            return Err(format!(
                "{:?} is not a secret name (1 to 512 of A-Z a-z 0-9 /_+=.@-)",
                self.name
            ));
        }
        if self.secret_string.is_some() == self.secret_binary.is_some() {
            return Err("give exactly one of secret_string or secret_binary".into());
        }
        if let Some(b) = &self.secret_binary {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|_| "secret_binary is not base64".to_owned())?;
        }
        Home {
            account: self.account.clone(),
            region: self.region.clone(),
        }
        .check()
    }
}

/// An IAM role that exists at start-up (`roles:` in the YAML).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedRole {
    /// `arn:aws:iam::<account>:role/<name>` (a path may come before the name).
    pub arn: String,
    /// The trust policy (YAML mapping or JSON text): who may assume the role.
    pub trust_policy: serde_json::Value,
    /// Inline policies by name (YAML mappings or JSON text): what its sessions may do.
    #[serde(default)]
    pub policies: BTreeMap<String, serde_json::Value>,
    /// The longest session `AssumeRole` may ask for, in seconds (IAM's default: 3600).
    #[serde(default = "one_hour")]
    pub max_session_duration: u32,
}

fn one_hour() -> u32 {
    3600
}

impl SeedRole {
    fn check(&self) -> Result<(), String> {
        let parts: Vec<&str> = self.arn.splitn(6, ':').collect();
        if !(parts.len() == 6
            && parts[..4] == ["arn", "aws", "iam", ""]
            && is_account_id(parts[4])
            && parts[5].starts_with("role/")
            && !parts[5].ends_with('/'))
        {
            return Err("arn must be arn:aws:iam::<12-digit account>:role/<name>".into());
        }
        if !(3600..=43200).contains(&self.max_session_duration) {
            return Err("max_session_duration must be between 3600 and 43200 seconds".into());
        }
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        crate::policy_eval::Policy::parse(&text(&self.trust_policy), true)
            .map_err(|e| format!("trust_policy is not a valid trust policy: {e}"))?;
        for (name, doc) in &self.policies {
            crate::policy_eval::Policy::parse(&text(doc), false).map_err(|e| {
                format!("policies.{name} is not a valid identity-based policy: {e}")
            })?;
        }
        Ok(())
    }

    /// The trust policy and inline policies as JSON text, as IAM keeps them.
    pub(crate) fn documents(&self) -> (String, BTreeMap<String, String>) {
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        (
            text(&self.trust_policy),
            self.policies
                .iter()
                .map(|(k, v)| (k.clone(), text(v)))
                .collect(),
        )
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
    /// How long after a domain first reports its endpoint the endpoint's name resolves: until
    /// then the sandbox's resolver answers NXDOMAIN, as a fresh DNS record is negatively cached.
    pub dns_propagation_secs: f64,
    /// How long a new IAM role (or a changed trust or inline policy) takes to reach the other
    /// services: until then S3 refuses a bucket policy naming the role (`MalformedPolicy`) and a
    /// domain cannot assume it (AWS: seconds, occasionally longer).
    pub iam_propagation_secs: f64,
    /// Fixed part of a snapshot's duration: OpenSearch's cluster-state updates and the
    /// repository's `index-N` generation write, a few seconds whatever the data.
    pub snapshot_secs: f64,
    /// Added per KiB of segment files the snapshot really uploads (those not already in the
    /// repository: `incremental` in `_status`), so an unchanged index costs nothing. The
    /// sandbox's documents are tiny, so one sandbox KiB stands for a real shard's tens of MB.
    pub snapshot_secs_per_kib: f64,
    /// Fixed part of a restore: the cluster-state update that creates the indices.
    pub restore_secs: f64,
    /// Added per KiB of segment files a restore copies. A node's recovery bandwidth is shared,
    /// so the indices of one restore come back one after another: the restore takes the fixed
    /// part plus all its bytes, and each index is done when the bytes before it and its own are.
    pub restore_secs_per_kib: f64,
    /// Extra response delay per operation name (e.g. `CreateRole: 2`), simulated seconds.
    pub operations: BTreeMap<String, f64>,
}

impl Default for LatencyConfig {
    fn default() -> Self {
        Self {
            domain_creation_secs: 1200.0,
            domain_deletion_secs: 300.0,
            domain_update_secs: 60.0,
            dns_propagation_secs: 60.0,
            iam_propagation_secs: 10.0,
            snapshot_secs: 5.0,
            snapshot_secs_per_kib: 2.0,
            restore_secs: 5.0,
            restore_secs_per_kib: 2.0,
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

/// A seeded domain's security settings (`domain_security.<name>` in the YAML).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeedDomainSecurity {
    /// The domain access policy, a JSON object (written as YAML or as a JSON string). Absent: the
    /// account-wide allow snapferry's docs recommend (`Principal: {AWS: arn:aws:iam::<account>:root}`,
    /// `es:*` on the domain's subresources). `""`: no policy at all.
    pub access_policy: Option<serde_json::Value>,
    /// Fine-grained access control, enabled with this master user.
    pub fine_grained_access_control: Option<SeedFgac>,
}

/// Fine-grained access control of a seeded domain: one master user, an IAM ARN or an internal
/// user (which turns the internal user database on).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeedFgac {
    pub master_user_arn: Option<String>,
    pub master_user_name: Option<String>,
    pub master_user_password: Option<String>,
}

impl SeedDomainSecurity {
    fn check(&self, engine: &str) -> Result<(), String> {
        if let Some(p) = &self.access_policy {
            let text = match p {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            crate::access_policy::parse(&text)
                .map_err(|e| format!("access_policy is not a policy document: {e}"))?;
        }
        if let Some(f) = &self.fine_grained_access_control {
            match (
                &f.master_user_arn,
                &f.master_user_name,
                &f.master_user_password,
            ) {
                (Some(_), None, None) => {}
                (None, Some(_), Some(password)) => {
                    if !crate::data_plane::security::api::strong_password(password) {
                        return Err(format!(
                            "master_user_password: {}",
                            crate::data_plane::security::api::PASSWORD_RULE
                        ));
                    }
                }
                _ => {
                    return Err("fine_grained_access_control needs either master_user_arn, or master_user_name and master_user_password".into());
                }
            }
            if !crate::security_options::engine_supports_fgac(engine) {
                return Err(format!(
                    "fine-grained access control needs OpenSearch or Elasticsearch 6.7 or later, not {engine}"
                ));
            }
        }
        Ok(())
    }
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

/// Data-plane seeds of one domain (`seed_data.<domain>` in the YAML).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeedData {
    /// Seeded indices that start closed (`_cat/indices` shows them `close`).
    pub closed: Vec<String>,
    /// Seeded indices that live on UltraWarm nodes (`_cat/indices/_warm`).
    pub warm: Vec<String>,
    /// Data streams with their `.ds-<stream>-<generation>` backing indices (OpenSearch only).
    pub data_streams: Vec<SeedDataStream>,
    /// Indices that keep receiving documents while the sandbox runs, at a simulated rate.
    pub writers: Vec<SeedWriter>,
    /// A finished primary recovery turns into a `PEER` recovery from another node this many
    /// simulated seconds later, as a blue/green deployment or a rebalance relocates primaries.
    pub relocate_primaries_after_secs: Option<f64>,
    /// The hourly automated snapshots (`cs-automated`) of Elasticsearch domains before 7.9, which
    /// hold the one snapshot slot those versions have.
    pub automated_snapshots: AutomatedSnapshots,
    /// Composable index templates by name, each the body `PUT _index_template/<name>` takes.
    pub index_templates: BTreeMap<String, serde_json::Value>,
    /// Component templates by name (`PUT _component_template/<name>` bodies).
    pub component_templates: BTreeMap<String, serde_json::Value>,
    /// Legacy templates by name (`PUT _template/<name>` bodies).
    pub legacy_templates: BTreeMap<String, serde_json::Value>,
    /// Ingest pipelines by id (`PUT _ingest/pipeline/<id>` bodies).
    pub pipelines: BTreeMap<String, serde_json::Value>,
    /// Stored scripts and search templates by id (`PUT _scripts/<id>` bodies).
    pub scripts: BTreeMap<String, serde_json::Value>,
    /// ISM policies by id (`PUT _plugins/_ism/policies/<id>` bodies, `{"policy": {...}}`).
    pub ism_policies: BTreeMap<String, serde_json::Value>,
    /// Dashboards saved objects per tenant (`global` is the default one), each as a line of an
    /// export (`type`, `id`, `attributes`, `references`).
    pub saved_objects: BTreeMap<String, Vec<serde_json::Value>>,
}

impl SeedData {
    fn check(&self, domain: &str, seeded: Option<&SeedDomain>) -> Result<(), String> {
        let has = |index: &str| seeded.is_some_and(|d| d.indices.iter().any(|i| i.name == index));
        for (what, list) in [("closed", &self.closed), ("warm", &self.warm)] {
            if let Some(bad) = list.iter().find(|i| !has(i)) {
                return Err(format!(
                    "seed_data.{domain}.{what} names index {bad:?}, which is not seeded in domains[].indices of domain {domain:?}"
                ));
            }
        }
        if let Some(w) = self
            .writers
            .iter()
            .find(|w| !(w.docs_per_minute.is_finite() && w.docs_per_minute > 0.0))
        {
            return Err(format!(
                "seed_data.{domain}.writers: docs_per_minute of index {:?} must be a number > 0",
                w.index
            ));
        }
        if !self.data_streams.is_empty() {
            let engine = seeded.map(|d| d.engine_version.as_str()).unwrap_or("");
            if !engine.starts_with("OpenSearch_") {
                return Err(format!(
                    "seed_data.{domain}.data_streams: data streams need a seeded OpenSearch domain (Amazon OpenSearch Service runs Elasticsearch without them); {domain:?} runs {engine:?}"
                ));
            }
        }
        if let Some(s) = self.data_streams.iter().find(|s| s.generations == 0) {
            return Err(format!(
                "seed_data.{domain}.data_streams: stream {:?} needs at least one generation",
                s.name
            ));
        }
        // The metadata seeds go through the domain's own API code, so they are refused as the
        // domain would refuse them (a domain created later is checked as the default version).
        let engine = crate::data_plane::version::Engine::of_domain(
            seeded.map_or("OpenSearch_2.11", |d| d.engine_version.as_str()),
        );
        let mut state = crate::data_plane::DataState::default();
        crate::data_plane::meta::apply_seed(&mut state, &engine, self, 0)
            .map_err(|why| format!("seed_data.{domain}.{why}"))?;
        Ok(())
    }
}

/// A data stream to seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedDataStream {
    pub name: String,
    /// Backing indices `.ds-<name>-000001` up to this generation.
    #[serde(default = "one")]
    pub generations: u32,
    /// Documents generated in each backing index.
    #[serde(default)]
    pub generate: u64,
}

fn one() -> u32 {
    1
}

/// A source in use: documents keep arriving in `index` at `docs_per_minute` of simulated time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedWriter {
    pub index: String,
    pub docs_per_minute: f64,
}

/// When the automated snapshots of a domain before Elasticsearch 7.9 run, in simulated seconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutomatedSnapshots {
    pub enabled: bool,
    /// The first one starts this long after the domain is up ...
    pub first_after_secs: f64,
    /// ... and another every this long ...
    pub every_secs: f64,
    /// ... each holding the snapshot slot this long.
    pub duration_secs: f64,
}

impl Default for AutomatedSnapshots {
    fn default() -> Self {
        Self {
            enabled: true,
            first_after_secs: 1800.0,
            every_secs: 3600.0,
            duration_secs: 300.0,
        }
    }
}
