//! The sandbox's configuration file (YAML). Everything a test or a demo wants to vary lives here:
//! credentials, the account and region, how fast simulated time runs, the latency of each slow
//! operation, the domains that exist at start-up (with their data), the faults to inject, and
//! whether IAM and S3 are served locally or by someone else's endpoint.

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
    pub credentials: CredentialsConfig,
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
    /// Per domain (seeded or created later, by name): data-plane behaviour that needs a seed to
    /// show up — closed and UltraWarm indices, data streams, a source still being written to, a
    /// primary relocation, the automated snapshots of Elasticsearch before 7.9.
    pub seed_data: BTreeMap<String, SeedData>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            port: 0,
            credentials: CredentialsConfig::default(),
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
            seed_data: BTreeMap::new(),
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
        for (domain, seed) in &self.seed_data {
            seed.check(domain, self.domains.iter().find(|d| &d.name == domain))
                .map_err(SandboxError::InvalidConfig)?;
        }
        for rule in &self.faults.rules {
            rule.check().map_err(SandboxError::InvalidConfig)?;
        }
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
