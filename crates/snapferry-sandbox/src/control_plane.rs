//! The OpenSearch Service control plane (REST-JSON under `/2021-01-01/`), driven by AWS's own
//! model ([`crate::model::opensearch`]): each request is routed by the model's request URIs and
//! checked against its input shape before anything else (`ValidationException` with AWS's
//! message, `SerializationException` for a wrong JSON type), so the sandbox refuses what AWS
//! refuses without a rule per field.
//!
//! A domain is described as a real one is: every option block of the model's `DomainStatus`
//! with the defaults AWS fills in (cluster, EBS, access policy, snapshot, Cognito, encryption at
//! rest and node to node, advanced options, log publishing, service software, endpoint options,
//! fine-grained access control, Auto-Tune, off-peak window, software updates, IP address type,
//! ...), `Created: false` and `DomainProcessingStatus: Creating` until it is ready, then an
//! HTTPS endpoint on 127.0.0.1. `UpdateDomainConfig` merges what it is sent into the blocks
//! (a `ClusterConfig` with only `InstanceCount` changes just that), keeps the domain
//! `Modifying` with `ModifyingProperties` for the scaled update time, and refuses what AWS does
//! not change in place (disabling encryption, changing the KMS key, leaving dual stack, ...).
//! `DescribeDomainConfig` shows the same blocks with their `Status`.
//!
//! A VPC domain (seeded with `vpc: true` or with `VPCOptions`, or created with `VPCOptions`) has
//! no `Endpoint` but `Endpoints: {"vpc": ...}` (and `"vpcv2"` in dual stack) naming a host under
//! [`VPC_DOMAIN_SUFFIX`] that only the sandbox's resolver knows ([`Domains::resolve`]): a proxy
//! standing in for a bastion maps the name through it. Like a real new endpoint's DNS record,
//! the name of a freshly created domain answers NXDOMAIN for `dns_propagation_secs` (scaled)
//! after the domain first reports it.
//!
//! `AdvancedSecurityOptions` and `AccessPolicies` are checked by [`crate::security_options`]
//! (fine-grained access control's prerequisites, the restrictive-policy rule) before the blocks
//! are built; enabling FGAC turns on the domain's security plugin, and the master password is
//! never kept in the blocks. A seed goes through the same path as a CreateDomain request
//! ([`seed_request`]).
//!
//! Each account has a control plane in each Region: a request acts on the domains of the
//! caller's account in the Region it was signed for ([`Place`]), domains are kept by
//! [`DomainKey`], and a domain's ARN carries its Region and account. A KMS key of another
//! Region is refused at CreateDomain as AWS refuses it; so is a subnet or security group that
//! exists only in another account or Region (`vpc_homes`, or a seeded VPC domain's), at
//! CreateDomain and UpdateDomainConfig.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use sha2::{Digest, Sha256};

use crate::http::{Call, Dropped, Protocol, Resp, guarded, json as json_resp};
use crate::identity::Place;
use crate::model::{self, Invalid};
use crate::{SandboxError, Shared, data_plane};

/// Parent of every VPC domain's hostname (`vpc-<name>.sandbox.internal`). It resolves nowhere but
/// through the sandbox ([`Domains::resolve`]), as a VPC endpoint does not from outside the VPC;
/// the sandbox certificate carries `*.` of it.
pub const VPC_DOMAIN_SUFFIX: &str = "sandbox.internal";

/// The operations this control plane carries out; every other operation of the model is
/// routed and validated, then answered `UnknownOperationException`.
const SERVED: &[&str] = &[
    "CreateDomain",
    "DescribeDomain",
    "DescribeDomains",
    "DescribeDomainConfig",
    "UpdateDomainConfig",
    "DeleteDomain",
    "ListDomainNames",
    "AddTags",
    "ListTags",
    "RemoveTags",
];

/// Request members that are not option blocks of the domain.
const NOT_BLOCKS: &[&str] = &[
    "DomainName",
    "EngineVersion",
    "TagList",
    "DryRun",
    "DryRunMode",
    "AcceptedWarnings",
];

/// Blocks whose change AWS applies without a blue/green deployment (the dry run says so).
const DYNAMIC_BLOCKS: &[&str] = &[
    "AccessPolicies",
    "LogPublishingOptions",
    "OffPeakWindowOptions",
    "SoftwareUpdateOptions",
    "AutoTuneOptions",
    "SnapshotOptions",
];

/// The hosted zone AWS names for dual-stack endpoints; fixed, as it is per Region.
const DUALSTACK_HOSTED_ZONE: &str = "Z2SANDBOXDUALSTACK01";

/// One configuration change being applied (or the creation itself).
struct Change {
    id: String,
    started: Instant,
    until: Instant,
    /// `ModifyingProperties` entries while it runs.
    properties: Vec<Value>,
    /// The blocks it touches (their `Status.State` is `Processing` until it ends).
    blocks: BTreeSet<String>,
}

/// When an option block was created and last changed.
#[derive(Clone, Copy)]
struct BlockVersion {
    created: Instant,
    updated: Instant,
    version: u64,
}

pub struct Domain {
    pub name: String,
    pub arn: String,
    pub engine_version: String,
    /// Wall-clock time of creation; later instants are reported relative to it.
    created: chrono::DateTime<chrono::Utc>,
    created_at: Instant,
    ready_at: Instant,
    /// When the endpoint's name starts to resolve.
    dns_at: Instant,
    creation_failed: bool,
    deleted_at: Option<Instant>,
    gone_at: Option<Instant>,
    /// The option blocks as `DomainStatus` shows them, AWS's defaults filled in.
    blocks: Map<String, Value>,
    versions: BTreeMap<String, BlockVersion>,
    config_version: u64,
    change: Change,
    tags: BTreeMap<String, String>,
    port: u16,
    /// Reached through a VPC endpoint (`Endpoints["vpc"]`) instead of a public `Endpoint`.
    vpc: bool,
    /// The domain's data plane (indices, snapshots, its security plugin).
    data: Arc<data_plane::DomainData>,
}

fn epoch(t: chrono::DateTime<chrono::Utc>) -> Value {
    json!(t.timestamp_millis() as f64 / 1000.0)
}

impl Domain {
    fn wall(&self, at: Instant) -> chrono::DateTime<chrono::Utc> {
        let since = at.saturating_duration_since(self.created_at);
        self.created + chrono::Duration::from_std(since).unwrap_or_default()
    }

    fn dual_stack(&self) -> bool {
        self.blocks.get("IPAddressType").and_then(Value::as_str) == Some("dualstack")
    }

    /// `host:port` clients connect to: the listener's address, or for a VPC domain a name under
    /// [`VPC_DOMAIN_SUFFIX`] with the listener's port (one listener per domain, so the port stays).
    fn endpoint(&self) -> String {
        if self.vpc {
            format!("{}:{}", self.vpc_host(), self.port)
        } else {
            format!("127.0.0.1:{}", self.port)
        }
    }

    fn vpc_host(&self) -> String {
        format!("vpc-{}.{VPC_DOMAIN_SUFFIX}", self.name)
    }

    fn vpcv2_host(&self) -> String {
        format!("vpcv2-{}.{VPC_DOMAIN_SUFFIX}", self.name)
    }

    fn ready(&self, now: Instant) -> bool {
        !self.creation_failed && now >= self.ready_at && self.deleted_at.is_none()
    }

    fn creating(&self, now: Instant) -> bool {
        now < self.ready_at
    }

    fn modifying(&self, now: Instant) -> bool {
        !self.creating(now) && now < self.change.until
    }

    fn status(&self, now: Instant) -> Value {
        let creating = self.creating(now);
        let modifying = self.modifying(now);
        let deleting = self.deleted_at.is_some();
        let processing_status = if deleting {
            "Deleting"
        } else if creating {
            "Creating"
        } else if self.creation_failed {
            "Isolated"
        } else if modifying {
            "Modifying"
        } else {
            "Active"
        };
        let mut s = Map::new();
        s.insert(
            "DomainId".into(),
            json!(format!(
                "{}/{}",
                self.arn.split(':').nth(4).unwrap_or(""),
                self.name
            )),
        );
        s.insert("DomainName".into(), json!(self.name));
        s.insert("ARN".into(), json!(self.arn));
        s.insert("Created".into(), json!(!creating && !self.creation_failed));
        s.insert("Deleted".into(), json!(deleting));
        s.insert(
            "Processing".into(),
            json!(creating || deleting || modifying),
        );
        s.insert("UpgradeProcessing".into(), json!(false));
        s.insert("EngineVersion".into(), json!(self.engine_version));
        for (k, v) in &self.blocks {
            s.insert(k.clone(), v.clone());
        }
        s.insert("DomainProcessingStatus".into(), json!(processing_status));
        let in_progress = creating || modifying;
        s.insert(
            "ChangeProgressDetails".into(),
            json!({
                "ChangeId": self.change.id,
                "ConfigChangeStatus": if in_progress { "ApplyingChanges" } else { "Completed" },
                "InitiatedBy": "CUSTOMER",
                "StartTime": epoch(self.wall(self.change.started)),
                "LastUpdatedTime": epoch(self.wall(now.min(self.change.until))),
            }),
        );
        s.insert(
            "ModifyingProperties".into(),
            json!(if modifying {
                self.change.properties.clone()
            } else {
                Vec::new()
            }),
        );
        if self.ready(now) {
            if self.vpc {
                let mut endpoints = json!({ "vpc": self.endpoint() });
                if self.dual_stack() {
                    endpoints["vpcv2"] = json!(format!("{}:{}", self.vpcv2_host(), self.port));
                }
                s.insert("Endpoints".into(), endpoints);
            } else {
                s.insert("Endpoint".into(), json!(self.endpoint()));
                if self.dual_stack() {
                    s.insert(
                        "EndpointV2".into(),
                        json!(format!("localhost:{}", self.port)),
                    );
                    s.insert(
                        "DomainEndpointV2HostedZoneId".into(),
                        json!(DUALSTACK_HOSTED_ZONE),
                    );
                }
            }
        }
        Value::Object(s)
    }

    /// One block's `Status` in `DescribeDomainConfig`, shaped by the model's status shape.
    fn option_status(
        &self,
        block: &str,
        status_shape: &str,
        now: Instant,
        options: &Value,
    ) -> Value {
        let os = model::opensearch();
        let version = self.versions.get(block).copied().unwrap_or(BlockVersion {
            created: self.created_at,
            updated: self.created_at,
            version: 1,
        });
        let processing =
            self.creating(now) || (self.modifying(now) && self.change.blocks.contains(block));
        let states = os
            .member_shape(status_shape, "State")
            .and_then(|s| os.enum_values(s))
            .unwrap_or_default();
        let state = if states.contains(&"Active") {
            json!(if processing { "Processing" } else { "Active" })
        } else {
            // Auto-Tune reports its own state (ENABLED, DISABLED, ...).
            options
                .get("DesiredState")
                .cloned()
                .unwrap_or(json!("ENABLED"))
        };
        os.project(
            status_shape,
            &json!({
                "CreationDate": epoch(self.wall(version.created)),
                "UpdateDate": epoch(self.wall(version.updated)),
                "UpdateVersion": version.version,
                "State": state,
                "PendingDeletion": false,
            }),
        )
    }

    fn config(&self, now: Instant) -> Value {
        let os = model::opensearch();
        let status = self.status(now);
        let mut config = Map::new();
        for (member, wrapper) in os.members("DomainConfig") {
            let options = match member {
                "ChangeProgressDetails" | "ModifyingProperties" => {
                    if let Some(v) = status.get(member) {
                        config.insert(member.into(), v.clone());
                    }
                    continue;
                }
                "EngineVersion" => json!(self.engine_version),
                "AutoTuneOptions" => match status.get(member) {
                    Some(block) => json!({
                        "DesiredState": block.get("State").cloned().unwrap_or(json!("ENABLED")),
                        "RollbackOnDisable": "NO_ROLLBACK",
                        "MaintenanceSchedules": [],
                        "UseOffPeakWindow": block.get("UseOffPeakWindow").cloned().unwrap_or(json!(false)),
                    }),
                    None => continue,
                },
                _ => match (status.get(member), os.member_shape(wrapper, "Options")) {
                    (Some(block), Some(shape)) => os.project(shape, block),
                    _ => continue,
                },
            };
            let Some(status_shape) = os.member_shape(wrapper, "Status") else {
                continue;
            };
            let st = self.option_status(member, status_shape, now, &options);
            config.insert(member.into(), json!({ "Options": options, "Status": st }));
        }
        json!({ "DomainConfig": config })
    }
}

/// Where a domain is: its account, its Region and its name (unique within those two).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DomainKey {
    pub account: String,
    pub region: String,
    pub name: String,
}

impl DomainKey {
    fn at(place: &Place<'_>, name: &str) -> Self {
        Self {
            account: place.account.to_owned(),
            region: place.region.to_owned(),
            name: name.to_owned(),
        }
    }
}

#[derive(Default)]
pub struct Domains {
    inner: Mutex<BTreeMap<DomainKey, Domain>>,
}

impl Domains {
    /// A ready domain's endpoint, the domain found by name in any account and Region (the
    /// first, in account and Region order); see [`Domains::endpoint_at`].
    pub fn endpoint(&self, shared: &Shared, name: &str) -> Option<String> {
        let now = shared.clock.now();
        let domains = self.inner.lock().expect("domains lock");
        domains
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(_, d)| d)
            .filter(|d| d.ready(now))
            .map(Domain::endpoint)
    }

    /// A ready domain's endpoint, in its account and Region.
    pub fn endpoint_at(&self, shared: &Shared, key: &DomainKey) -> Option<String> {
        let now = shared.clock.now();
        let domains = self.inner.lock().expect("domains lock");
        domains
            .get(key)
            .filter(|d| d.ready(now))
            .map(Domain::endpoint)
    }

    /// Whether the domain's data plane answers now (`None`: the domain is gone).
    pub fn serving(&self, shared: &Shared, key: &DomainKey) -> Option<bool> {
        let now = shared.clock.now();
        let domains = self.inner.lock().expect("domains lock");
        domains.get(key).map(|d| d.ready(now))
    }

    /// The sandbox's DNS for the names it hands out (VPC endpoints): the address behind `host`,
    /// or `None` — NXDOMAIN — for a name no domain has, a domain not ready yet, or one whose
    /// record has not propagated yet (`dns_propagation_secs` after the domain got its endpoint).
    pub fn resolve(&self, shared: &Shared, host: &str) -> Option<IpAddr> {
        let now = shared.clock.now();
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let domains = self.inner.lock().expect("domains lock");
        domains
            .values()
            .find(|d| d.vpc && (d.vpc_host() == host || (d.dual_stack() && d.vpcv2_host() == host)))
            .filter(|d| d.ready(now) && now >= d.dns_at)
            .map(|_| IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// The domain's data nodes (`ClusterConfig.InstanceCount`): where its shards and replicas
    /// can be allocated. 1 for a domain that is gone.
    pub fn data_nodes(&self, key: &DomainKey) -> u32 {
        let domains = self.inner.lock().expect("domains lock");
        domains
            .get(key)
            .and_then(|d| d.blocks.get("ClusterConfig"))
            .and_then(|c| c.get("InstanceCount"))
            .and_then(Value::as_u64)
            .map_or(1, |n| n.clamp(1, 1000) as u32)
    }

    /// The domain's ARN and access policy (`None` when it has none: AWS's default `""`), as
    /// the gateway in front of its endpoint evaluates them. Every stored policy was parsed with
    /// the same grammar when it was set.
    pub fn access_policy(
        &self,
        key: &DomainKey,
    ) -> Option<(String, Option<crate::policy_eval::Policy>)> {
        let name = key.name.as_str();
        let domains = self.inner.lock().expect("domains lock");
        let d = domains.get(key)?;
        let text = d
            .blocks
            .get("AccessPolicies")
            .and_then(Value::as_str)
            .unwrap_or("");
        // Never lenient: were a stored policy unreadable, it would let no one in.
        let policy = crate::access_policy::parse(text).unwrap_or_else(|e| {
            tracing::error!(domain = name, error = %e, "unreadable access policy; denying all");
            crate::access_policy::parse(
                r#"{"Statement": {"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}}"#,
            )
            .expect("a constant policy")
        });
        Some((d.arn.clone(), policy))
    }

    fn purge(&self, now: Instant) {
        self.inner
            .lock()
            .expect("domains lock")
            .retain(|_, d| d.gone_at.is_none_or(|t| now < t));
    }
}

/// A VPC, subnet or security group id derived from the domain name, so the same domain is
/// described the same way every run.
fn made_up_id(kind: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("{kind}/{name}/0").as_bytes());
    format!("{kind}-{}", &hex::encode(digest)[..17])
}

/// What AWS reports as a VPC domain's `VPCOptions` (`VPCDerivedInfo`): the subnets and security
/// groups asked for, plus the VPC and availability zones they imply.
fn vpc_derived_info(region: &str, name: &str, requested: Option<&Value>) -> Value {
    let given = |key: &str| -> Vec<Value> {
        requested
            .and_then(|r| r.get(key))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    // Subnets are never made up (CreateDomain without one is refused); without security groups
    // AWS uses the VPC's default one.
    let subnets = given("SubnetIds");
    let mut groups = given("SecurityGroupIds");
    if groups.is_empty() {
        groups.push(json!(made_up_id("sg", name)));
    }
    let zones: Vec<Value> = (0..subnets.len())
        .map(|i| json!(format!("{region}{}", char::from(b'a' + (i % 6) as u8))))
        .collect();
    let mut info = json!({
        "VPCId": made_up_id("vpc", name),
        "SubnetIds": subnets,
        "AvailabilityZones": zones,
        "SecurityGroupIds": groups,
    });
    if let Some(egress) = requested.and_then(|r| r.get("EgressEnabled")) {
        info["EgressEnabled"] = egress.clone();
    }
    info
}

/// Major and minor of `OpenSearch_2.11` / `Elasticsearch_7.10`, and whether it is OpenSearch.
fn engine_parts(engine: &str) -> (bool, u32, u32) {
    let (opensearch, rest) = match engine.strip_prefix("OpenSearch_") {
        Some(rest) => (true, rest),
        None => (
            false,
            engine.strip_prefix("Elasticsearch_").unwrap_or("0.0"),
        ),
    };
    let mut parts = rest.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (
        opensearch,
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

/// The blocks AWS fills in for a domain nobody configured beyond its name and engine.
fn default_blocks(engine: &str) -> Map<String, Value> {
    let (opensearch, major, minor) = engine_parts(engine);
    let mut advanced = json!({
        "indices.fielddata.cache.size": "20",
        "indices.query.bool.max_clause_count": "1024",
        "rest.action.multi.allow_explicit_index": "true",
    });
    if opensearch {
        advanced["override_main_response_version"] = json!("false");
    }
    let software = format!("{}_R20240502-P5", engine.replace('.', "_"));
    let mut blocks = json!({
        "ClusterConfig": {
            "InstanceType": "r6g.large.search",
            "InstanceCount": 1,
            "DedicatedMasterEnabled": false,
            "ZoneAwarenessEnabled": false,
            "WarmEnabled": false,
            "ColdStorageOptions": {"Enabled": false},
            "MultiAZWithStandbyEnabled": false,
        },
        "EBSOptions": {"EBSEnabled": true, "VolumeType": "gp3", "VolumeSize": 10, "Iops": 3000, "Throughput": 125},
        "AccessPolicies": "",
        "IPAddressType": "ipv4",
        // Hourly automated snapshots (every engine from 5.3): no start hour to report.
        "SnapshotOptions": {},
        "CognitoOptions": {"Enabled": false},
        "EncryptionAtRestOptions": {"Enabled": false},
        "NodeToNodeEncryptionOptions": {"Enabled": false},
        "AdvancedOptions": advanced,
        "LogPublishingOptions": {},
        "ServiceSoftwareOptions": {
            "CurrentVersion": software,
            "NewVersion": "",
            "UpdateAvailable": false,
            "Cancellable": false,
            "UpdateStatus": "COMPLETED",
            "Description": "There is no software update available for this domain.",
            "AutomatedUpdateDate": 0,
            "OptionalDeployment": true,
        },
        "DomainEndpointOptions": {
            "EnforceHTTPS": false,
            "TLSSecurityPolicy": "Policy-Min-TLS-1-2-2019-07",
            "CustomEndpointEnabled": false,
        },
        "AdvancedSecurityOptions": {
            "Enabled": false,
            "InternalUserDatabaseEnabled": false,
            "AnonymousAuthEnabled": false,
        },
        "AutoTuneOptions": {"State": "ENABLED", "UseOffPeakWindow": false},
        "OffPeakWindowOptions": {
            "Enabled": true,
            "OffPeakWindow": {"WindowStartTime": {"Hours": 22, "Minutes": 0}},
        },
        "SoftwareUpdateOptions": {"AutoSoftwareUpdateEnabled": false},
    });
    if opensearch && (major, minor) >= (2, 13) {
        blocks["AIMLOptions"] = json!({
            "NaturalLanguageQueryGenerationOptions": {"DesiredState": "DISABLED", "CurrentState": "NOT_ENABLED"}
        });
    }
    match blocks {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Merges `update` into `base` as UpdateDomainConfig does: structures and maps member by member,
/// everything else (lists, strings, numbers) replaced.
fn merge(base: &mut Value, update: &Value) {
    match (base, update) {
        (Value::Object(b), Value::Object(u)) => {
            for (k, v) in u {
                match b.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, u) => *b = u.clone(),
    }
}

/// A request's option block in the form `DomainStatus` shows it.
fn as_status_block(member: &str, value: &Value, current: Option<&Value>) -> Value {
    let os = model::opensearch();
    match member {
        "AutoTuneOptions" => {
            let mut out = json!({});
            if let Some(state) = value.get("DesiredState") {
                out["State"] = state.clone();
            } else if let Some(state) = current.and_then(|c| c.get("State")) {
                out["State"] = state.clone();
            }
            if let Some(off_peak) = value.get("UseOffPeakWindow") {
                out["UseOffPeakWindow"] = off_peak.clone();
            }
            out
        }
        "AIMLOptions" => {
            let mut out = os.project("AIMLOptionsOutput", value);
            if let Some(nlq) = value.get("NaturalLanguageQueryGenerationOptions") {
                let desired = nlq
                    .get("DesiredState")
                    .and_then(Value::as_str)
                    .unwrap_or("DISABLED");
                out["NaturalLanguageQueryGenerationOptions"] = json!({
                    "DesiredState": desired,
                    "CurrentState": if desired == "ENABLED" { "ENABLE_COMPLETE" } else { "NOT_ENABLED" },
                });
            }
            out
        }
        _ => match os.member_shape("DomainStatus", member) {
            Some(shape) => os.project(shape, value),
            None => value.clone(),
        },
    }
}

/// Why a configuration is refused: AWS's `ValidationException` message.
type Refusal = String;

/// Rules the model cannot express, applied to a domain's blocks after a create or an update.
fn check_blocks(blocks: &mut Map<String, Value>, place: &Place<'_>) -> Result<(), Refusal> {
    if let Some(at_rest) = blocks.get_mut("EncryptionAtRestOptions") {
        let enabled = at_rest.get("Enabled").and_then(Value::as_bool) == Some(true);
        match at_rest
            .get("KmsKeyId")
            .and_then(Value::as_str)
            .map(str::to_owned)
        {
            Some(key) if enabled => {
                let arn = if key.starts_with("arn:") {
                    key
                } else if key == "alias/aws/es" {
                    aws_managed_key(place)
                } else {
                    format!("arn:aws:kms:{}:{}:key/{key}", place.region, place.account)
                };
                let key_region = arn.split(':').nth(3).unwrap_or("");
                if key_region != place.region {
                    return Err(format!(
                        "The KMS key {arn} is in Region {key_region}; a domain in {} can only use a KMS key of its own Region.",
                        place.region
                    ));
                }
                at_rest["KmsKeyId"] = json!(arn);
            }
            None if enabled => at_rest["KmsKeyId"] = json!(aws_managed_key(place)),
            _ => {}
        }
    }
    let zone_aware = blocks["ClusterConfig"]
        .get("ZoneAwarenessEnabled")
        .and_then(Value::as_bool)
        == Some(true);
    if zone_aware && blocks["ClusterConfig"].get("ZoneAwarenessConfig").is_none() {
        blocks["ClusterConfig"]["ZoneAwarenessConfig"] = json!({"AvailabilityZoneCount": 2});
    }
    if let Some(vpc) = blocks.get("VPCOptions") {
        let subnets = vpc
            .get("SubnetIds")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let zones = if zone_aware {
            blocks["ClusterConfig"]["ZoneAwarenessConfig"]["AvailabilityZoneCount"]
                .as_u64()
                .unwrap_or(2) as usize
        } else {
            1
        };
        if subnets != zones {
            return Err(match zones {
                1 => "You must specify exactly one subnet.".to_owned(),
                2 => "You must specify exactly two subnets because you've set zone count to two."
                    .to_owned(),
                n => format!(
                    "You must specify exactly {n} subnets because you've set zone count to {n}."
                ),
            });
        }
    }
    Ok(())
}

/// The ARN of the account's AWS-managed `aws/es` key (the same one for every domain).
fn aws_managed_key(place: &Place<'_>) -> String {
    let digest = hex::encode(Sha256::digest(
        format!("aws/es/{}", place.account).as_bytes(),
    ));
    format!(
        "arn:aws:kms:{}:{}:key/{}-{}-{}-{}-{}",
        place.region,
        place.account,
        &digest[..8],
        &digest[8..12],
        &digest[12..16],
        &digest[16..20],
        &digest[20..32]
    )
}

/// Where a subnet or security group exists: listed in `vpc_homes`, or used by a seeded VPC
/// domain (where that domain is). `None` for an id the sandbox knows nothing of.
fn vpc_home(config: &crate::SandboxConfig, id: &str) -> Option<(String, String)> {
    if let Some(home) = config.listed_vpc_home(id) {
        return Some(home);
    }
    config.domains.iter().find_map(|seed| {
        let request = seed_request(seed, config).ok()?;
        let vpc = request.get("VPCOptions")?;
        let info = vpc_derived_info("", &seed.name, Some(vpc));
        let uses = ["SubnetIds", "SecurityGroupIds"].iter().any(|key| {
            info[*key]
                .as_array()
                .is_some_and(|ids| ids.iter().any(|i| i.as_str() == Some(id)))
        });
        uses.then(|| config.domain_home(&seed.name))
    })
}

/// A subnet or security group of a request's `VPCOptions` that exists only in another account
/// or Region than the request's. AWS looks the ids up in the caller's account and the Region the
/// request was sent to, and answers as EC2 does for an id it cannot find there.
fn foreign_vpc_resource(
    config: &crate::SandboxConfig,
    vpc: Option<&Value>,
    place: &Place<'_>,
) -> Option<Refusal> {
    let vpc = vpc.filter(|v| !v.is_null())?;
    let ids = |key: &str| -> Vec<String> {
        vpc.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let elsewhere = |id: &str| {
        vpc_home(config, id)
            .is_some_and(|(account, region)| account != place.account || region != place.region)
    };
    if let Some(subnet) = ids("SubnetIds").into_iter().find(|id| elsewhere(id)) {
        return Some(format!("The subnet ID '{subnet}' does not exist"));
    }
    ids("SecurityGroupIds")
        .into_iter()
        .find(|id| elsewhere(id))
        .map(|group| format!("The security group '{group}' does not exist"))
}

/// A CreateDomain request's blocks (or a seed's) as the domain's `DomainStatus` blocks.
fn blocks_for_new_domain(
    name: &str,
    engine: &str,
    request: &Map<String, Value>,
    place: &Place<'_>,
) -> Result<Map<String, Value>, Refusal> {
    let mut blocks = default_blocks(engine);
    for (member, value) in request {
        if NOT_BLOCKS.contains(&member.as_str()) || value.is_null() {
            continue;
        }
        if member == "VPCOptions" {
            blocks.insert(
                member.clone(),
                vpc_derived_info(place.region, name, Some(value)),
            );
            continue;
        }
        let converted = as_status_block(member, value, blocks.get(member));
        match blocks.get_mut(member) {
            Some(existing) => merge(existing, &converted),
            None => {
                blocks.insert(member.clone(), converted);
            }
        }
    }
    check_blocks(&mut blocks, place)?;
    Ok(blocks)
}

/// What changed between two versions of a block, as `ModifyingProperties` lists it.
fn modifying_properties(block: &str, before: Option<&Value>, after: &Value) -> Vec<Value> {
    let text = |v: Option<&Value>| match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let is_json = |v: Option<&Value>| matches!(v, Some(Value::Object(_) | Value::Array(_)));
    match (before, after) {
        (Some(Value::Object(b)), Value::Object(a))
            if !matches!(block, "AdvancedOptions" | "LogPublishingOptions") =>
        {
            let keys: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
            keys.into_iter()
                .filter(|k| b.get(*k) != a.get(*k))
                .map(|k| {
                    let json_valued = is_json(b.get(k)) || is_json(a.get(k));
                    json!({
                        "Name": format!("{block}.{k}"),
                        "ActiveValue": text(b.get(k)),
                        "PendingValue": text(a.get(k)),
                        "ValueType": if json_valued { "STRINGIFIED_JSON" } else { "PLAIN_TEXT" },
                    })
                })
                .collect()
        }
        _ => {
            let json_valued = is_json(before) || is_json(Some(after)) || block == "AccessPolicies";
            vec![json!({
                "Name": block,
                "ActiveValue": text(before),
                "PendingValue": text(Some(after)),
                "ValueType": if json_valued { "STRINGIFIED_JSON" } else { "PLAIN_TEXT" },
            })]
        }
    }
}

/// Changes AWS cannot make in place, in AWS's `ValidationException` words.
fn refuse_in_place(domain: &Domain, next: &Map<String, Value>) -> Option<Refusal> {
    let flag = |blocks: &Map<String, Value>, block: &str| {
        blocks
            .get(block)
            .and_then(|b| b.get("Enabled"))
            .and_then(Value::as_bool)
            == Some(true)
    };
    let was = &domain.blocks;
    let (opensearch, major, minor) = engine_parts(&domain.engine_version);
    let before_6_7 = !opensearch && (major, minor) < (6, 7);
    if flag(was, "EncryptionAtRestOptions") && !flag(next, "EncryptionAtRestOptions") {
        return Some("Encryption at rest can't be disabled once it's enabled for a domain.".into());
    }
    let key = |blocks: &Map<String, Value>| {
        blocks
            .get("EncryptionAtRestOptions")
            .and_then(|b| b.get("KmsKeyId"))
            .cloned()
    };
    if flag(was, "EncryptionAtRestOptions") && key(was) != key(next) {
        return Some(format!(
            "The KMS key of a domain encrypted at rest can't be changed (it is {}).",
            key(was).as_ref().and_then(Value::as_str).unwrap_or("")
        ));
    }
    if before_6_7 && !flag(was, "EncryptionAtRestOptions") && flag(next, "EncryptionAtRestOptions")
    {
        return Some(format!(
            "Encryption at rest can be enabled on an existing domain only from Elasticsearch 6.7; {} is {}.",
            domain.name, domain.engine_version
        ));
    }
    if flag(was, "NodeToNodeEncryptionOptions") && !flag(next, "NodeToNodeEncryptionOptions") {
        return Some(
            "Node-to-node encryption can't be disabled once it's enabled for a domain.".into(),
        );
    }
    if before_6_7
        && !flag(was, "NodeToNodeEncryptionOptions")
        && flag(next, "NodeToNodeEncryptionOptions")
    {
        return Some(format!(
            "Node-to-node encryption can be enabled on an existing domain only from Elasticsearch 6.7; {} is {}.",
            domain.name, domain.engine_version
        ));
    }
    // Fine-grained access control, which cannot be turned off either, is refused earlier by
    // `security_options::on_update`, before the request's blocks are merged.
    if domain.dual_stack() && next.get("IPAddressType").and_then(Value::as_str) == Some("ipv4") {
        return Some("You can't change the IP address type of a dual-stack domain to IPv4.".into());
    }
    None
}

/// How a domain comes to be: when it is ready and when its endpoint's name resolves.
struct Birth {
    ready_at: Instant,
    dns_at: Instant,
    creation_failed: bool,
}

impl Birth {
    /// A domain being created now: ready after the creation time, resolvable after the DNS time.
    fn fresh(shared: &Shared, now: Instant, creation_failed: bool) -> Self {
        let ready_at = now
            + shared
                .config
                .scaled(shared.config.latencies.domain_creation_secs);
        Self {
            ready_at,
            dns_at: ready_at
                + shared
                    .config
                    .scaled(shared.config.latencies.dns_propagation_secs),
            creation_failed,
        }
    }
}

/// Creates a domain and binds its HTTPS listener (which answers only once the domain is ready).
async fn create(
    shared: &Arc<Shared>,
    place: &Place<'_>,
    name: &str,
    engine_version: &str,
    blocks: Map<String, Value>,
    tags: BTreeMap<String, String>,
    birth: Birth,
) -> Result<Arc<data_plane::DomainData>, std::io::Error> {
    let Birth {
        ready_at,
        dns_at,
        creation_failed,
    } = birth;
    let vpc = blocks.contains_key("VPCOptions");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let port = listener.local_addr()?.port();
    let seed = shared
        .config
        .seed_data
        .get(name)
        .cloned()
        .unwrap_or_default();
    let key = DomainKey::at(place, name);
    let data = Arc::new(data_plane::DomainData::new(
        key.clone(),
        engine_version,
        seed,
        ready_at,
    ));
    let now = shared.clock.now();
    let versions = blocks
        .keys()
        .map(|k| {
            (
                k.clone(),
                BlockVersion {
                    created: now,
                    updated: now,
                    version: 1,
                },
            )
        })
        .chain(std::iter::once((
            "EngineVersion".to_owned(),
            BlockVersion {
                created: now,
                updated: now,
                version: 1,
            },
        )))
        .collect();
    let domain = Domain {
        name: name.to_owned(),
        arn: format!(
            "arn:aws:es:{}:{}:domain/{name}",
            place.region, place.account
        ),
        engine_version: engine_version.to_owned(),
        created: chrono::Utc::now(),
        created_at: now,
        ready_at,
        dns_at,
        creation_failed,
        deleted_at: None,
        gone_at: None,
        change: Change {
            id: uuid::Uuid::new_v4().to_string(),
            started: now,
            until: ready_at,
            properties: Vec::new(),
            blocks: blocks.keys().cloned().collect(),
        },
        blocks,
        versions,
        config_version: 1,
        tags,
        port,
        vpc,
        data: data.clone(),
    };
    shared
        .domains
        .inner
        .lock()
        .expect("domains lock")
        .insert(key.clone(), domain);
    tokio::spawn(data_plane::serve(
        shared.clone(),
        key,
        data.clone(),
        listener,
    ));
    Ok(data)
}

/// A seed's CreateDomain-shaped request: its name, engine, its `domain_config` blocks, and what
/// its `domain_security` shorthand says (the access policy; fine-grained access control with its
/// master user and the encryption and HTTPS it needs, where `domain_config` does not set them).
/// Without either, a seed has the account-wide allow as its access policy, as an existing
/// domain set up by snapferry's docs has. The error names what is said twice.
fn seed_request(
    seed: &crate::config::SeedDomain,
    config: &crate::SandboxConfig,
) -> Result<Map<String, Value>, String> {
    let mut request = config
        .domain_config
        .get(&seed.name)
        .cloned()
        .unwrap_or_default();
    if seed.vpc && !request.contains_key("VPCOptions") {
        // `vpc: true` alone: one subnet of a made-up VPC.
        request.insert(
            "VPCOptions".into(),
            json!({"SubnetIds": [made_up_id("subnet", &seed.name)]}),
        );
    }
    let security = config.domain_security.get(&seed.name);
    let twice = |block: &str| {
        format!(
            "domain_security.{0} and domain_config.{0} both set {block}; say it in one of them",
            seed.name
        )
    };
    match security.and_then(|s| s.access_policy.as_ref()) {
        Some(_) if request.contains_key("AccessPolicies") => {
            return Err(twice("AccessPolicies"));
        }
        Some(Value::String(text)) => {
            request.insert("AccessPolicies".into(), json!(text));
        }
        Some(policy) => {
            request.insert("AccessPolicies".into(), json!(policy.to_string()));
        }
        None if !request.contains_key("AccessPolicies") => {
            let (account, region) = config.domain_home(&seed.name);
            let policy = json!({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
                "Action": "es:*",
                "Resource": format!("arn:aws:es:{region}:{account}:domain/{}/*", seed.name),
            }]});
            request.insert("AccessPolicies".into(), json!(policy.to_string()));
        }
        None => {}
    }
    if let Some(f) = security.and_then(|s| s.fine_grained_access_control.as_ref()) {
        if request.contains_key("AdvancedSecurityOptions") {
            return Err(twice("AdvancedSecurityOptions"));
        }
        let (internal_db, master) = match (&f.master_user_arn, &f.master_user_name) {
            (Some(arn), _) => (false, json!({ "MasterUserARN": arn })),
            (None, name) => (
                true,
                json!({
                    "MasterUserName": name.clone().unwrap_or_default(),
                    "MasterUserPassword": f.master_user_password.clone().unwrap_or_default(),
                }),
            ),
        };
        request.insert(
            "AdvancedSecurityOptions".into(),
            json!({"Enabled": true, "InternalUserDatabaseEnabled": internal_db, "MasterUserOptions": master}),
        );
        for (block, value) in [
            ("EncryptionAtRestOptions", json!({"Enabled": true})),
            ("NodeToNodeEncryptionOptions", json!({"Enabled": true})),
            (
                "DomainEndpointOptions",
                json!({"EnforceHTTPS": true, "TLSSecurityPolicy": "Policy-Min-TLS-1-2-2019-07"}),
            ),
        ] {
            request.entry(block).or_insert(value);
        }
    }
    request.insert("DomainName".into(), json!(seed.name));
    request.insert("EngineVersion".into(), json!(seed.engine_version));
    Ok(request)
}

/// A CreateDomain request (or a seed's) checked as AWS checks it beyond the model — the security
/// settings ([`crate::security_options::on_create`]), then the blocks' rules — and turned into the
/// domain's blocks (the master password dropped) and the fine-grained access control to enable.
fn new_domain(
    name: &str,
    engine: &str,
    request: &Map<String, Value>,
    place: &Place<'_>,
) -> Result<(Map<String, Value>, Option<crate::security_options::Fgac>), Refusal> {
    let body = Value::Object(request.clone());
    let fgac = crate::security_options::on_create(&body, engine)?;
    let kept = crate::security_options::sanitized(&body, fgac.as_ref(), None);
    let kept = kept.as_object().cloned().unwrap_or_default();
    let blocks = blocks_for_new_domain(name, engine, &kept, place)?;
    Ok((blocks, fgac))
}

/// Checks a seeded domain as CreateDomain would check it (the model's input shape, then the
/// rules the model cannot express); the error names the domain.
pub fn check_seed(
    seed: &crate::config::SeedDomain,
    config: &crate::SandboxConfig,
) -> Result<(), String> {
    let request = seed_request(seed, config)?;
    let os = model::opensearch();
    os.validate("CreateDomain", &Value::Object(request.clone()))
        .map_err(|e| format!("seeded domain {}: {}", seed.name, e.message()))?;
    let (account, region) = config.domain_home(&seed.name);
    let place = Place {
        region: &region,
        account: &account,
    };
    new_domain(&seed.name, &seed.engine_version, &request, &place)
        .map(|_| ())
        .map_err(|e| format!("seeded domain {}: {e}", seed.name))
}

/// Creates the configured seed domains with their indices, through the same checks as CreateDomain.
pub async fn seed(shared: &Arc<Shared>) -> Result<(), SandboxError> {
    for seed in &shared.config.domains {
        let now = shared.clock.now();
        // A seed that is ready has existed long since: its name resolves at once.
        let birth = if seed.ready {
            Birth {
                ready_at: now,
                dns_at: now,
                creation_failed: false,
            }
        } else {
            Birth::fresh(shared, now, false)
        };
        let request = seed_request(seed, &shared.config).map_err(SandboxError::InvalidConfig)?;
        let (account, region) = shared.config.domain_home(&seed.name);
        let place = Place {
            region: &region,
            account: &account,
        };
        let (blocks, fgac) = new_domain(&seed.name, &seed.engine_version, &request, &place)
            .map_err(|e| {
                SandboxError::InvalidConfig(format!("seeded domain {}: {e}", seed.name))
            })?;
        let data = create(
            shared,
            &place,
            &seed.name,
            &seed.engine_version,
            blocks,
            BTreeMap::new(),
            birth,
        )
        .await
        .map_err(|source| SandboxError::Bind { port: 0, source })?;
        if let Some(f) = &fgac {
            data.security
                .enable(&seed.engine_version, f.internal_db, &f.master);
        }
        data.seed(seed);
    }
    Ok(())
}

fn not_found(name: &str) -> Resp {
    Protocol::RestJson.error(
        409,
        "ResourceNotFoundException",
        &format!("Domain not found: {name}"),
    )
}

fn validation(message: &str) -> Resp {
    Protocol::RestJson.error(400, "ValidationException", message)
}

fn invalid(e: &Invalid) -> Resp {
    match e {
        Invalid::Validation(m) => validation(m),
        Invalid::Serialization(m) => Protocol::RestJson.error(400, "SerializationException", m),
    }
}

pub async fn handle(
    shared: &Arc<Shared>,
    parts: http::request::Parts,
    body: Bytes,
) -> Result<Resp, Dropped> {
    let os = model::opensearch();
    let query: Vec<(String, String)> =
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let routed = os.route(parts.method.as_str(), parts.uri.path(), &query);
    let operation = routed
        .as_ref()
        .map_or("Unknown".to_owned(), |(op, _)| op.clone());
    let verify = crate::identity::verify(
        shared,
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
        &body,
    );
    let caller = verify
        .as_ref()
        .ok()
        .and_then(|scope| shared.identities.get(&scope.access_key));
    // The caller's account, in the Region the request was signed for.
    let account = caller
        .as_ref()
        .map_or_else(|| shared.config.account_id.clone(), |c| c.account.clone());
    let region = crate::auth::scope_of(&parts.headers, parts.uri.query())
        .map_or_else(|| shared.config.region.clone(), |s| s.region);
    let place = Place {
        account: &account,
        region: &region,
    };
    let body_json: Option<Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Some(json!({}))
    } else {
        serde_json::from_slice(&body).ok()
    };
    let target = routed
        .as_ref()
        .and_then(|(_, labels)| labels.get("DomainName").cloned())
        .or_else(|| {
            body_json
                .as_ref()
                .and_then(|b| b.get("DomainName"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    let read_only = ["Describe", "List", "Get"]
        .iter()
        .any(|p| operation.starts_with(p));
    let checks = if routed.is_some() {
        let query: BTreeMap<String, String> = query.iter().cloned().collect();
        crate::identity::control_plane_checks(
            &place,
            &operation,
            target.as_deref(),
            body_json.as_ref().unwrap_or(&Value::Null),
            &query,
        )
    } else {
        Vec::new()
    };
    let call = Call {
        service: "es",
        operation: operation.clone(),
        target,
        mutating: routed.is_some() && !read_only,
        protocol: Protocol::RestJson,
        checks,
        source_ip: crate::http::source_ip(&parts.extensions),
    };
    guarded(shared, call, Some(verify), async {
        let Some((operation, labels)) = routed else {
            return Protocol::RestJson.error(
                404,
                "UnknownOperationException",
                "The sandbox does not emulate this OpenSearch Service operation",
            );
        };
        let Some(body_json) = body_json else {
            return Protocol::RestJson.error(
                400,
                "SerializationException",
                "Body is not valid JSON",
            );
        };
        let input = match os
            .rest_input(&operation, &labels, &query, &parts.headers, &body_json)
            .and_then(|input| os.validate(&operation, &input).map(|()| input))
        {
            Ok(input) => input,
            Err(e) => return invalid(&e),
        };
        if !SERVED.contains(&operation.as_str()) {
            return Protocol::RestJson.error(
                404,
                "UnknownOperationException",
                &format!(
                    "The sandbox does not emulate the OpenSearch Service operation {operation}"
                ),
            );
        }
        let now = shared.clock.now();
        shared.domains.purge(now);
        operate(shared, &place, caller.as_deref(), &operation, input, now).await
    })
    .await
}

fn tag_list(tags: &BTreeMap<String, String>) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect(),
    )
}

fn tags_from(value: &Value) -> BTreeMap<String, String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| {
                    Some((
                        t.get("Key")?.as_str()?.to_owned(),
                        t.get("Value")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn string_of<'a>(input: &'a Value, member: &str) -> &'a str {
    input.get(member).and_then(Value::as_str).unwrap_or("")
}

async fn operate(
    shared: &Arc<Shared>,
    place: &Place<'_>,
    caller: Option<&crate::identity::Identity>,
    operation: &str,
    input: Value,
    now: Instant,
) -> Resp {
    let domains = &shared.domains;
    let at = |name: &str| DomainKey::at(place, name);
    match operation {
        "CreateDomain" => {
            let name = string_of(&input, "DomainName").to_owned();
            // Without EngineVersion AWS creates the latest OpenSearch.
            let engine = input
                .get("EngineVersion")
                .and_then(Value::as_str)
                .unwrap_or("OpenSearch_2.19")
                .to_owned();
            if domains
                .inner
                .lock()
                .expect("domains lock")
                .contains_key(&at(&name))
            {
                return Protocol::RestJson.error(
                    409,
                    "ResourceAlreadyExistsException",
                    &format!("domain {name} already exists"),
                );
            }
            let request = input.as_object().cloned().unwrap_or_default();
            let (blocks, fgac) = match new_domain(&name, &engine, &request, place) {
                Ok(b) => b,
                Err(refusal) => return validation(&refusal),
            };
            if let Some(refusal) =
                foreign_vpc_resource(&shared.config, input.get("VPCOptions"), place)
            {
                return validation(&refusal);
            }
            // What AWS does with the caller's permissions besides es:CreateDomain (the
            // service-linked role, a customer-managed key, a VPC), once the request is valid.
            if let Err(resp) =
                crate::identity::domain_implied_checks(shared, place, caller, &input, true)
            {
                return resp;
            }
            let failed = shared
                .faults
                .fire("es", "CreateDomain", Some(&name), true)
                .is_some();
            let tags = tags_from(&input["TagList"]);
            let birth = Birth::fresh(shared, now, failed);
            match create(shared, place, &name, &engine, blocks, tags, birth).await {
                Ok(data) => {
                    if let Some(f) = &fgac {
                        data.security.enable(&engine, f.internal_db, &f.master);
                    }
                }
                Err(e) => {
                    return Protocol::RestJson.error(500, "InternalException", &e.to_string());
                }
            }
            let status = domains.inner.lock().expect("domains lock")[&at(&name)].status(now);
            json_resp(200, &json!({ "DomainStatus": status }))
        }
        "DescribeDomain" | "DescribeDomainConfig" => {
            let name = string_of(&input, "DomainName");
            let domains = domains.inner.lock().expect("domains lock");
            match domains.get(&at(name)) {
                Some(d) if operation == "DescribeDomain" => {
                    json_resp(200, &json!({ "DomainStatus": d.status(now) }))
                }
                Some(d) => json_resp(200, &d.config(now)),
                None => not_found(name),
            }
        }
        "DescribeDomains" => {
            let names: Vec<&str> = input["DomainNames"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            // A service limit the model does not carry: at most five names per call.
            if names.len() > 5 {
                return validation(&format!(
                    "1 validation error detected: Value '[{}]' at 'domainNames' failed to satisfy constraint: Member must have length less than or equal to 5",
                    names.join(", ")
                ));
            }
            let domains = domains.inner.lock().expect("domains lock");
            let list: Vec<Value> = names
                .iter()
                .filter_map(|n| domains.get(&at(n)).map(|d| d.status(now)))
                .collect();
            json_resp(200, &json!({ "DomainStatusList": list }))
        }
        "ListDomainNames" => {
            let engine = input.get("EngineType").and_then(Value::as_str);
            let domains = domains.inner.lock().expect("domains lock");
            let list: Vec<Value> = domains
                .iter()
                .filter(|(k, _)| k.account == place.account && k.region == place.region)
                .map(|(_, d)| {
                    let kind = if d.engine_version.starts_with("Elasticsearch_") {
                        "Elasticsearch"
                    } else {
                        "OpenSearch"
                    };
                    (kind, d)
                })
                .filter(|(kind, _)| engine.is_none_or(|e| e == *kind))
                .map(|(kind, d)| json!({"DomainName": d.name, "EngineType": kind}))
                .collect();
            json_resp(200, &json!({ "DomainNames": list }))
        }
        "DeleteDomain" => {
            let name = string_of(&input, "DomainName");
            let mut domains = domains.inner.lock().expect("domains lock");
            match domains.get_mut(&at(name)) {
                Some(d) => {
                    if d.deleted_at.is_none() {
                        d.deleted_at = Some(now);
                        d.gone_at = Some(
                            now + shared
                                .config
                                .scaled(shared.config.latencies.domain_deletion_secs),
                        );
                    }
                    json_resp(200, &json!({ "DomainStatus": d.status(now) }))
                }
                None => not_found(name),
            }
        }
        "UpdateDomainConfig" => update(shared, caller, &input, now, place),
        "AddTags" | "RemoveTags" | "ListTags" => {
            let arn = string_of(&input, "ARN");
            let mut domains = domains.inner.lock().expect("domains lock");
            let Some(d) = domains
                .iter_mut()
                .find(|(k, d)| d.arn == arn && k.account == place.account)
                .map(|(_, d)| d)
            else {
                return if arn.starts_with("arn:aws:es:") {
                    Protocol::RestJson.error(
                        409,
                        "ResourceNotFoundException",
                        &format!("Resource not found: {arn}"),
                    )
                } else {
                    validation(&format!("Invalid ARN: {arn}"))
                };
            };
            match operation {
                "AddTags" => {
                    d.tags.extend(tags_from(&input["TagList"]));
                    json_resp(200, &json!({}))
                }
                "RemoveTags" => {
                    for key in input["TagKeys"].as_array().into_iter().flatten() {
                        if let Some(k) = key.as_str() {
                            d.tags.remove(k);
                        }
                    }
                    json_resp(200, &json!({}))
                }
                _ => json_resp(200, &json!({ "TagList": tag_list(&d.tags) })),
            }
        }
        other => Protocol::RestJson.error(
            404,
            "UnknownOperationException",
            &format!("The sandbox does not emulate the OpenSearch Service operation {other}"),
        ),
    }
}

/// UpdateDomainConfig: merge, refuse what cannot change in place, apply over the update time.
fn update(
    shared: &Arc<Shared>,
    caller: Option<&crate::identity::Identity>,
    input: &Value,
    now: Instant,
    place: &Place<'_>,
) -> Resp {
    let name = string_of(input, "DomainName");
    let mut domains = shared.domains.inner.lock().expect("domains lock");
    let Some(d) = domains.get_mut(&DomainKey::at(place, name)) else {
        return not_found(name);
    };
    if d.deleted_at.is_some() {
        return not_found(name);
    }
    if d.creating(now) || d.modifying(now) {
        return validation(
            "A change/update is in progress. Please wait for it to complete before requesting another change.",
        );
    }
    if input.get("VPCOptions").is_some_and(|v| !v.is_null()) && !d.vpc {
        return validation(
            "You can't change a domain with public access to VPC access. Create a new domain with VPC access instead.",
        );
    }
    let already = d.data.security.is_enabled();
    let fgac = match crate::security_options::on_update(
        &d.blocks,
        input,
        &d.engine_version,
        d.vpc,
        already,
    ) {
        Ok(f) => f,
        Err(refusal) => return validation(&refusal),
    };
    let internal_db_now = already.then(|| {
        d.blocks
            .get("AdvancedSecurityOptions")
            .and_then(|a| a["InternalUserDatabaseEnabled"].as_bool())
            .unwrap_or(false)
    });
    let request = crate::security_options::sanitized(input, fgac.as_ref(), internal_db_now);
    let request = request.as_object().cloned().unwrap_or_default();
    let mut next = d.blocks.clone();
    for (member, value) in &request {
        if NOT_BLOCKS.contains(&member.as_str()) || value.is_null() {
            continue;
        }
        if member == "VPCOptions" {
            // New subnets or security groups; the VPC stays (it derives from the name).
            let mut requested = next.get(member).cloned().unwrap_or(json!({}));
            merge(&mut requested, value);
            next.insert(
                member.clone(),
                vpc_derived_info(place.region, &d.name, Some(&requested)),
            );
            continue;
        }
        let converted = as_status_block(member, value, d.blocks.get(member));
        match next.get_mut(member) {
            Some(existing) => merge(existing, &converted),
            None => {
                next.insert(member.clone(), converted);
            }
        }
    }
    if let Err(refusal) = check_blocks(&mut next, place) {
        return validation(&refusal);
    }
    if let Some(refusal) = foreign_vpc_resource(&shared.config, input.get("VPCOptions"), place) {
        return validation(&refusal);
    }
    if let Some(refusal) = refuse_in_place(d, &next) {
        return validation(&refusal);
    }
    if let Err(resp) = crate::identity::domain_implied_checks(shared, place, caller, input, false) {
        return resp;
    }
    let changed: Vec<String> = next
        .iter()
        .filter(|(k, v)| d.blocks.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    let dry_run = input.get("DryRun").and_then(Value::as_bool) == Some(true);
    if dry_run {
        let (kind, message) = if changed.is_empty() {
            ("None", "This change will not require a deployment.")
        } else if changed.iter().all(|b| DYNAMIC_BLOCKS.contains(&b.as_str())) {
            (
                "DynamicUpdate",
                "This change will be applied without a blue/green deployment.",
            )
        } else {
            (
                "Blue/Green",
                "This change will require a blue/green deployment.",
            )
        };
        let mut answer = d.config(now);
        answer["DryRunResults"] = json!({"DeploymentType": kind, "Message": message});
        return json_resp(200, &answer);
    }
    if let Some(f) = &fgac {
        d.data
            .security
            .enable(&d.engine_version, f.internal_db, &f.master);
    }
    if !changed.is_empty() {
        d.config_version += 1;
        let properties = changed
            .iter()
            .flat_map(|b| modifying_properties(b, d.blocks.get(b), &next[b]))
            .collect();
        for block in &changed {
            let entry = d.versions.entry(block.clone()).or_insert(BlockVersion {
                created: now,
                updated: now,
                version: d.config_version,
            });
            entry.updated = now;
            entry.version = d.config_version;
        }
        d.change = Change {
            id: uuid::Uuid::new_v4().to_string(),
            started: now,
            until: now
                + shared
                    .config
                    .scaled(shared.config.latencies.domain_update_secs),
            properties,
            blocks: changed.into_iter().collect(),
        };
        d.blocks = next;
    }
    json_resp(200, &d.config(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place() -> Place<'static> {
        Place {
            region: "eu-west-1",
            account: "123456789012",
        }
    }

    #[test]
    fn vpc_domains_are_seeded_from_yaml_and_described_the_same_way_every_run() {
        let config = crate::SandboxConfig::from_yaml_str(
            "domains:\n  - name: private\n    vpc: true\n  - name: public\n",
        )
        .expect("config");
        assert!(config.domains[0].vpc);
        assert!(!config.domains[1].vpc, "public unless said otherwise");

        let seeded = seed_request(&config.domains[0], &config).expect("seed request");
        let made_up = vpc_derived_info("eu-west-1", "private", seeded.get("VPCOptions"));
        assert_eq!(
            made_up,
            vpc_derived_info("eu-west-1", "private", seeded.get("VPCOptions"))
        );
        assert_eq!(made_up["AvailabilityZones"], json!(["eu-west-1a"]));
        assert!(made_up["VPCId"].as_str().is_some_and(|id| id.len() == 21));
        assert!(
            made_up["SubnetIds"][0]
                .as_str()
                .is_some_and(|id| id.starts_with("subnet-"))
        );
        let asked = json!({"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]});
        let given = vpc_derived_info("eu-west-1", "private", Some(&asked));
        assert_eq!(given["SubnetIds"], asked["SubnetIds"]);
        assert_eq!(given["SecurityGroupIds"], asked["SecurityGroupIds"]);
        assert_eq!(given["VPCId"], made_up["VPCId"]);
    }

    #[test]
    fn a_partial_block_keeps_the_defaults_of_the_members_it_does_not_name() {
        let request = json!({"ClusterConfig": {"InstanceCount": 3}, "AdvancedOptions": {"rest.action.multi.allow_explicit_index": "false"}});
        let blocks = blocks_for_new_domain(
            "logs",
            "OpenSearch_2.11",
            request.as_object().unwrap(),
            &place(),
        )
        .unwrap();
        assert_eq!(blocks["ClusterConfig"]["InstanceCount"], json!(3));
        assert_eq!(
            blocks["ClusterConfig"]["InstanceType"],
            json!("r6g.large.search")
        );
        assert_eq!(
            blocks["AdvancedOptions"],
            json!({"indices.fielddata.cache.size": "20", "indices.query.bool.max_clause_count": "1024", "override_main_response_version": "false", "rest.action.multi.allow_explicit_index": "false"})
        );
    }

    #[test]
    fn encryption_gets_the_managed_key_and_refuses_another_regions_key() {
        let on = json!({"EncryptionAtRestOptions": {"Enabled": true}});
        let blocks =
            blocks_for_new_domain("logs", "OpenSearch_2.11", on.as_object().unwrap(), &place())
                .unwrap();
        let key = blocks["EncryptionAtRestOptions"]["KmsKeyId"]
            .as_str()
            .unwrap();
        assert!(
            key.starts_with("arn:aws:kms:eu-west-1:123456789012:key/"),
            "{key}"
        );
        let bare =
            json!({"EncryptionAtRestOptions": {"Enabled": true, "KmsKeyId": "1a2a3a4-1a2a"}});
        let blocks = blocks_for_new_domain(
            "logs",
            "OpenSearch_2.11",
            bare.as_object().unwrap(),
            &place(),
        )
        .unwrap();
        assert_eq!(
            blocks["EncryptionAtRestOptions"]["KmsKeyId"],
            json!("arn:aws:kms:eu-west-1:123456789012:key/1a2a3a4-1a2a")
        );
        let elsewhere = json!({"EncryptionAtRestOptions": {"Enabled": true, "KmsKeyId": "arn:aws:kms:us-west-2:123456789012:key/k"}});
        let refused = blocks_for_new_domain(
            "logs",
            "OpenSearch_2.11",
            elsewhere.as_object().unwrap(),
            &place(),
        )
        .unwrap_err();
        assert!(
            refused.contains("us-west-2") && refused.contains("eu-west-1"),
            "{refused}"
        );
    }

    #[test]
    fn vpc_subnets_must_match_the_zone_count() {
        let two = json!({"ClusterConfig": {"ZoneAwarenessEnabled": true, "InstanceCount": 2}, "VPCOptions": {"SubnetIds": ["subnet-a"]}});
        let refused = blocks_for_new_domain(
            "logs",
            "OpenSearch_2.11",
            two.as_object().unwrap(),
            &place(),
        )
        .unwrap_err();
        assert_eq!(
            refused,
            "You must specify exactly two subnets because you've set zone count to two."
        );
    }

    #[test]
    fn modifying_properties_name_the_members_that_change() {
        let before = json!({"InstanceType": "r6g.large.search", "InstanceCount": 1});
        let after = json!({"InstanceType": "r6g.large.search", "InstanceCount": 3});
        assert_eq!(
            modifying_properties("ClusterConfig", Some(&before), &after),
            vec![
                json!({"Name": "ClusterConfig.InstanceCount", "ActiveValue": "1", "PendingValue": "3", "ValueType": "PLAIN_TEXT"})
            ]
        );
        let policy = modifying_properties("AccessPolicies", Some(&json!("")), &json!("{}"));
        assert_eq!(policy[0]["ValueType"], json!("STRINGIFIED_JSON"));
    }
}
