//! The OpenSearch Service control plane (REST-JSON under `/2021-01-01/`): domains that are
//! `Processing` without an endpoint for a (scaled) while after creation, then get an HTTPS endpoint
//! on 127.0.0.1, plus tags and configuration. Shapes follow the `aws-sdk-opensearch` model so the
//! real client deserializes them; errors carry `x-amzn-errortype` like AWS's.
//!
//! A VPC domain (seeded with `vpc: true`, or created with `VPCOptions`) is described as AWS
//! describes one: no `Endpoint`, but `Endpoints: {"vpc": ...}` naming a host under
//! [`VPC_DOMAIN_SUFFIX`] that no resolver knows, so only a proxy that maps the name reaches it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::time::Instant;

use sha2::{Digest, Sha256};

use crate::http::{Call, Dropped, Protocol, Resp, guarded, json as json_resp};
use crate::{SandboxError, Shared, auth, data_plane};

/// Parent of every VPC domain's hostname (`vpc-<name>.sandbox.internal`). It resolves nowhere, as a
/// VPC endpoint does not from outside the VPC; the sandbox certificate carries `*.` of it.
pub const VPC_DOMAIN_SUFFIX: &str = "sandbox.internal";

/// AWS's rule: 3-28 characters, a lowercase letter first, then lowercase letters, digits, hyphens.
pub fn valid_domain_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=28).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

pub struct Domain {
    pub name: String,
    pub arn: String,
    pub engine_version: String,
    pub created: chrono::DateTime<chrono::Utc>,
    pub ready_at: Instant,
    pub creation_failed: bool,
    pub deleted_at: Option<Instant>,
    pub gone_at: Option<Instant>,
    pub modifying_until: Option<Instant>,
    /// Everything from the create/update request other than name, engine and tags.
    pub options: serde_json::Map<String, Value>,
    pub tags: BTreeMap<String, String>,
    pub port: u16,
    /// Reached through a VPC endpoint (`Endpoints["vpc"]`) instead of a public `Endpoint`.
    pub vpc: bool,
}

impl Domain {
    /// `host:port` clients connect to: the listener's address, or for a VPC domain a name under
    /// [`VPC_DOMAIN_SUFFIX`] with the listener's port (one listener per domain, so the port stays).
    fn endpoint(&self) -> String {
        if self.vpc {
            format!("vpc-{}.{VPC_DOMAIN_SUFFIX}:{}", self.name, self.port)
        } else {
            format!("127.0.0.1:{}", self.port)
        }
    }

    fn ready(&self, now: Instant) -> bool {
        !self.creation_failed && now >= self.ready_at && self.deleted_at.is_none()
    }

    fn status(&self, now: Instant) -> Value {
        let creating = now < self.ready_at;
        let modifying = self.modifying_until.is_some_and(|t| now < t);
        let processing = creating || self.deleted_at.is_some() || modifying;
        let processing_status = if self.deleted_at.is_some() {
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
        let mut s = json!({
            "DomainId": format!("{}/{}", self.arn.split(':').nth(4).unwrap_or(""), self.name),
            "DomainName": self.name,
            "ARN": self.arn,
            "Created": true,
            "Deleted": self.deleted_at.is_some(),
            "Processing": processing,
            "UpgradeProcessing": false,
            "EngineVersion": self.engine_version,
            "DomainProcessingStatus": processing_status,
            "ClusterConfig": self.options.get("ClusterConfig").cloned().unwrap_or(json!({
                "InstanceType": "r6g.large.search", "InstanceCount": 1,
                "DedicatedMasterEnabled": false, "ZoneAwarenessEnabled": false
            })),
            "EBSOptions": self.options.get("EBSOptions").cloned().unwrap_or(json!({
                "EBSEnabled": true, "VolumeType": "gp3", "VolumeSize": 10
            })),
        });
        for (k, v) in &self.options {
            if k != "ClusterConfig" && k != "EBSOptions" {
                s[k] = v.clone();
            }
        }
        if self.ready(now) {
            if self.vpc {
                s["Endpoints"] = json!({ "vpc": self.endpoint() });
            } else {
                s["Endpoint"] = json!(self.endpoint());
            }
        }
        s
    }

    fn config(&self, now: Instant) -> Value {
        let modifying = self.modifying_until.is_some_and(|t| now < t);
        let status = json!({
            "CreationDate": self.created.timestamp(),
            "UpdateDate": chrono::Utc::now().timestamp(),
            "UpdateVersion": 1,
            "State": if modifying { "Processing" } else { "Active" },
            "PendingDeletion": false,
        });
        let mut config = serde_json::Map::new();
        config.insert(
            "EngineVersion".into(),
            json!({"Options": self.engine_version, "Status": status}),
        );
        let st = self.status(now);
        for key in ["ClusterConfig", "EBSOptions"] {
            config.insert(key.into(), json!({"Options": st[key], "Status": status}));
        }
        for (k, v) in &self.options {
            if k != "ClusterConfig" && k != "EBSOptions" {
                config.insert(k.clone(), json!({"Options": v, "Status": status}));
            }
        }
        json!({ "DomainConfig": config })
    }
}

#[derive(Default)]
pub struct Domains {
    inner: Mutex<BTreeMap<String, Domain>>,
}

impl Domains {
    pub fn endpoint(&self, shared: &Shared, name: &str) -> Option<String> {
        let now = shared.clock.now();
        let domains = self.inner.lock().expect("domains lock");
        domains
            .get(name)
            .filter(|d| d.ready(now))
            .map(Domain::endpoint)
    }

    /// Whether the domain's data plane answers now (`None`: the domain is gone).
    pub fn serving(&self, shared: &Shared, name: &str) -> Option<bool> {
        let now = shared.clock.now();
        let domains = self.inner.lock().expect("domains lock");
        domains.get(name).map(|d| d.ready(now))
    }

    /// The domain's data nodes (`ClusterConfig.InstanceCount`, 1 when not set): where its shards
    /// and replicas can be allocated. 1 for a domain that is gone.
    pub fn data_nodes(&self, name: &str) -> u32 {
        let domains = self.inner.lock().expect("domains lock");
        domains
            .get(name)
            .and_then(|d| d.options.get("ClusterConfig"))
            .and_then(|c| c.get("InstanceCount"))
            .and_then(Value::as_u64)
            .map_or(1, |n| n.clamp(1, 1000) as u32)
    }

    /// Whether the domain runs the security plugin (`AdvancedSecurityOptions.Enabled`).
    pub fn fine_grained(&self, name: &str) -> bool {
        let domains = self.inner.lock().expect("domains lock");
        domains
            .get(name)
            .and_then(|d| d.options.get("AdvancedSecurityOptions"))
            .and_then(|a| a.get("Enabled"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    fn purge(&self, now: Instant) {
        self.inner
            .lock()
            .expect("domains lock")
            .retain(|_, d| d.gone_at.is_none_or(|t| now < t));
    }
}

/// What AWS reports as a VPC domain's `VPCOptions` (`VPCDerivedInfo`): the subnets and security
/// groups asked for (made up when none were), plus the VPC and availability zones they imply.
/// Derived from the domain name, so the same domain is described the same way every run.
fn vpc_derived_info(region: &str, name: &str, requested: Option<&Value>) -> Value {
    let id = |kind: &str, n: usize| {
        let digest = Sha256::digest(format!("{kind}/{name}/{n}").as_bytes());
        format!("{kind}-{}", &hex::encode(digest)[..17])
    };
    let list = |key: &str, kind: &str| -> Vec<Value> {
        let given: Vec<Value> = requested
            .and_then(|r| r.get(key))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if given.is_empty() {
            vec![json!(id(kind, 0))]
        } else {
            given
        }
    };
    let subnets = list("SubnetIds", "subnet");
    let zones: Vec<Value> = (0..subnets.len())
        .map(|i| json!(format!("{region}{}", char::from(b'a' + (i % 6) as u8))))
        .collect();
    json!({
        "VPCId": id("vpc", 0),
        "SubnetIds": subnets,
        "AvailabilityZones": zones,
        "SecurityGroupIds": list("SecurityGroupIds", "sg"),
    })
}

/// Creates a domain and binds its HTTPS listener (which answers only once the domain is ready).
/// `VPCOptions` among the options makes it a VPC domain, as in a CreateDomain request.
async fn create(
    shared: &Arc<Shared>,
    name: &str,
    engine_version: &str,
    mut options: serde_json::Map<String, Value>,
    tags: BTreeMap<String, String>,
    ready_at: Instant,
    creation_failed: bool,
) -> Result<Arc<data_plane::DomainData>, std::io::Error> {
    let vpc = options.get("VPCOptions").is_some_and(|v| !v.is_null());
    if vpc {
        let info = vpc_derived_info(&shared.config.region, name, options.get("VPCOptions"));
        options.insert("VPCOptions".into(), info);
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let port = listener.local_addr()?.port();
    let seed = shared
        .config
        .seed_data
        .get(name)
        .cloned()
        .unwrap_or_default();
    let data = Arc::new(data_plane::DomainData::new(
        name,
        engine_version,
        seed,
        ready_at,
    ));
    let domain = Domain {
        name: name.to_owned(),
        arn: format!(
            "arn:aws:es:{}:{}:domain/{name}",
            shared.config.region, shared.config.account_id
        ),
        engine_version: engine_version.to_owned(),
        created: chrono::Utc::now(),
        ready_at,
        creation_failed,
        deleted_at: None,
        gone_at: None,
        modifying_until: None,
        options,
        tags,
        port,
        vpc,
    };
    shared
        .domains
        .inner
        .lock()
        .expect("domains lock")
        .insert(name.to_owned(), domain);
    tokio::spawn(data_plane::serve(
        shared.clone(),
        name.to_owned(),
        data.clone(),
        listener,
    ));
    Ok(data)
}

/// Creates the configured seed domains with their indices.
pub async fn seed(shared: &Arc<Shared>) -> Result<(), SandboxError> {
    for seed in &shared.config.domains {
        let now = shared.clock.now();
        let ready_at = if seed.ready {
            now
        } else {
            now + shared
                .config
                .scaled(shared.config.latencies.domain_creation_secs)
        };
        let mut options = serde_json::Map::new();
        if seed.vpc {
            options.insert("VPCOptions".into(), json!({}));
        }
        let data = create(
            shared,
            &seed.name,
            &seed.engine_version,
            options,
            BTreeMap::new(),
            ready_at,
            false,
        )
        .await
        .map_err(|source| SandboxError::Bind { port: 0, source })?;
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

fn bad_name(name: &str) -> Resp {
    validation(&format!(
        "1 validation error detected: Value '{name}' at 'domainName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-z][a-z0-9\\-]+"
    ))
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// Names the request: (operation, domain or ARN, mutating).
fn classify(method: &http::Method, path: &str) -> (&'static str, Option<String>, bool) {
    use http::Method as M;
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segs.as_slice()) {
        (&M::POST, ["2021-01-01", "opensearch", "domain"]) => ("CreateDomain", None, true),
        (&M::GET, ["2021-01-01", "opensearch", "domain", name]) => {
            ("DescribeDomain", Some(decode(name)), false)
        }
        (&M::DELETE, ["2021-01-01", "opensearch", "domain", name]) => {
            ("DeleteDomain", Some(decode(name)), true)
        }
        (&M::GET, ["2021-01-01", "opensearch", "domain", name, "config"]) => {
            ("DescribeDomainConfig", Some(decode(name)), false)
        }
        (&M::POST, ["2021-01-01", "opensearch", "domain", name, "config"]) => {
            ("UpdateDomainConfig", Some(decode(name)), true)
        }
        (&M::POST, ["2021-01-01", "opensearch", "domain-info"]) => ("DescribeDomains", None, false),
        (&M::GET, ["2021-01-01", "domain"]) => ("ListDomainNames", None, false),
        (&M::POST, ["2021-01-01", "tags"]) => ("AddTags", None, true),
        (&M::GET, ["2021-01-01", "tags"] | ["2021-01-01", "tags", ""]) => ("ListTags", None, false),
        (&M::POST, ["2021-01-01", "tags-removal"]) => ("RemoveTags", None, true),
        _ => ("Unknown", None, false),
    }
}

pub async fn handle(
    shared: &Arc<Shared>,
    parts: http::request::Parts,
    body: Bytes,
) -> Result<Resp, Dropped> {
    let (operation, target, mutating) = classify(&parts.method, parts.uri.path());
    let verify = auth::verify(
        &shared.config.credentials,
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
        &body,
    );
    let body_json: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    let query: BTreeMap<String, String> =
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let call = Call {
        service: "es",
        operation: operation.to_owned(),
        target: target.clone().or_else(|| {
            body_json
                .get("DomainName")
                .and_then(Value::as_str)
                .map(str::to_owned)
        }),
        mutating,
        protocol: Protocol::RestJson,
    };
    guarded(shared, call, Some(verify), async {
        if body_json.is_null() {
            return Protocol::RestJson.error(
                400,
                "SerializationException",
                "Body is not valid JSON",
            );
        }
        let now = shared.clock.now();
        shared.domains.purge(now);
        operate(shared, operation, target, body_json, query, now).await
    })
    .await
}

fn engine_ok(version: &str) -> bool {
    let ok = |rest: &str| {
        let mut parts = rest.split('.');
        let major = parts.next().and_then(|p| p.parse::<u32>().ok());
        let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
        major.is_some() && minor.is_some() && parts.next().is_none()
    };
    version
        .strip_prefix("OpenSearch_")
        .or_else(|| version.strip_prefix("Elasticsearch_"))
        .is_some_and(ok)
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

async fn operate(
    shared: &Arc<Shared>,
    operation: &str,
    target: Option<String>,
    body: Value,
    query: BTreeMap<String, String>,
    now: Instant,
) -> Resp {
    let domains = &shared.domains;
    match operation {
        "CreateDomain" => {
            let Some(name) = body.get("DomainName").and_then(Value::as_str) else {
                return validation(
                    "1 validation error detected: Value null at 'domainName' failed to satisfy constraint: Member must not be null",
                );
            };
            if !valid_domain_name(name) {
                return bad_name(name);
            }
            let engine = body
                .get("EngineVersion")
                .and_then(Value::as_str)
                .unwrap_or("OpenSearch_1.0");
            if !engine_ok(engine) {
                return validation(&format!(
                    "Invalid engine version {engine}. Valid engine versions look like OpenSearch_X.Y or Elasticsearch_X.Y."
                ));
            }
            if domains
                .inner
                .lock()
                .expect("domains lock")
                .contains_key(name)
            {
                return Protocol::RestJson.error(
                    409,
                    "ResourceAlreadyExistsException",
                    &format!("domain {name} already exists"),
                );
            }
            let mut options = body.as_object().cloned().unwrap_or_default();
            for k in ["DomainName", "EngineVersion", "TagList"] {
                options.remove(k);
            }
            let failed = shared
                .faults
                .fire("es", "CreateDomain", Some(name), true)
                .is_some();
            let ready_at = now
                + shared
                    .config
                    .scaled(shared.config.latencies.domain_creation_secs);
            let tags = tags_from(&body["TagList"]);
            if let Err(e) = create(shared, name, engine, options, tags, ready_at, failed).await {
                return Protocol::RestJson.error(500, "InternalException", &e.to_string());
            }
            let status = domains.inner.lock().expect("domains lock")[name].status(now);
            json_resp(200, &json!({ "DomainStatus": status }))
        }
        "DescribeDomain" | "DescribeDomainConfig" => {
            let name = target.unwrap_or_default();
            let domains = domains.inner.lock().expect("domains lock");
            match domains.get(&name) {
                Some(d) if operation == "DescribeDomain" => {
                    json_resp(200, &json!({ "DomainStatus": d.status(now) }))
                }
                Some(d) => json_resp(200, &d.config(now)),
                None if !valid_domain_name(&name) => bad_name(&name),
                None => not_found(&name),
            }
        }
        "DescribeDomains" => {
            let names: Vec<String> = body["DomainNames"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if names.is_empty() || names.len() > 5 {
                return validation(
                    "1 validation error detected: Value at 'domainNames' failed to satisfy constraint: Member must have length between 1 and 5",
                );
            }
            let domains = domains.inner.lock().expect("domains lock");
            let list: Vec<Value> = names
                .iter()
                .filter_map(|n| domains.get(n).map(|d| d.status(now)))
                .collect();
            json_resp(200, &json!({ "DomainStatusList": list }))
        }
        "ListDomainNames" => {
            let engine = query.get("engineType").cloned();
            let domains = domains.inner.lock().expect("domains lock");
            let list: Vec<Value> = domains
                .values()
                .map(|d| {
                    let kind = if d.engine_version.starts_with("Elasticsearch_") {
                        "Elasticsearch"
                    } else {
                        "OpenSearch"
                    };
                    (kind, d)
                })
                .filter(|(kind, _)| engine.as_deref().is_none_or(|e| e == *kind))
                .map(|(kind, d)| json!({"DomainName": d.name, "EngineType": kind}))
                .collect();
            json_resp(200, &json!({ "DomainNames": list }))
        }
        "DeleteDomain" => {
            let name = target.unwrap_or_default();
            let mut domains = domains.inner.lock().expect("domains lock");
            match domains.get_mut(&name) {
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
                None => not_found(&name),
            }
        }
        "UpdateDomainConfig" => {
            let name = target.unwrap_or_default();
            let mut domains = domains.inner.lock().expect("domains lock");
            match domains.get_mut(&name) {
                Some(d) => {
                    let vpc_change = body.get("VPCOptions").filter(|v| !v.is_null());
                    if vpc_change.is_some() && !d.vpc {
                        return validation(
                            "You can't change a domain with public access to VPC access. Create a new domain with VPC access instead.",
                        );
                    }
                    if let Some(obj) = body.as_object() {
                        for (k, v) in obj {
                            if k != "DryRun" && k != "DomainName" && k != "VPCOptions" {
                                d.options.insert(k.clone(), v.clone());
                            }
                        }
                    }
                    if let Some(requested) = vpc_change {
                        // New subnets or security groups; the VPC stays (it derives from the name).
                        let info =
                            vpc_derived_info(&shared.config.region, &d.name, Some(requested));
                        d.options.insert("VPCOptions".into(), info);
                    }
                    d.modifying_until = Some(
                        now + shared
                            .config
                            .scaled(shared.config.latencies.domain_update_secs),
                    );
                    json_resp(200, &d.config(now))
                }
                None => not_found(&name),
            }
        }
        "AddTags" | "RemoveTags" | "ListTags" => {
            let arn = if operation == "ListTags" {
                query.get("arn").cloned().unwrap_or_default()
            } else {
                body["ARN"].as_str().unwrap_or("").to_owned()
            };
            let mut domains = domains.inner.lock().expect("domains lock");
            let Some(d) = domains.values_mut().find(|d| d.arn == arn) else {
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
                    d.tags.extend(tags_from(&body["TagList"]));
                    json_resp(200, &json!({}))
                }
                "RemoveTags" => {
                    for key in body["TagKeys"].as_array().into_iter().flatten() {
                        if let Some(k) = key.as_str() {
                            d.tags.remove(k);
                        }
                    }
                    json_resp(200, &json!({}))
                }
                _ => json_resp(200, &json!({ "TagList": tag_list(&d.tags) })),
            }
        }
        _ => Protocol::RestJson.error(
            404,
            "UnknownOperationException",
            "The sandbox does not emulate this OpenSearch Service operation",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names_follow_aws_rules() {
        assert!(valid_domain_name("logs-2024"));
        assert!(!valid_domain_name("Logs"));
        assert!(!valid_domain_name("ab"));
        assert!(!valid_domain_name("1logs"));
        assert!(!valid_domain_name("a".repeat(29).as_str()));
    }

    #[test]
    fn vpc_domains_are_seeded_from_yaml_and_described_the_same_way_every_run() {
        let config = crate::SandboxConfig::from_yaml_str(
            "domains:\n  - name: private\n    vpc: true\n  - name: public\n",
        )
        .expect("config");
        assert!(config.domains[0].vpc);
        assert!(!config.domains[1].vpc, "public unless said otherwise");

        let made_up = vpc_derived_info("eu-west-1", "private", Some(&json!({})));
        assert_eq!(made_up, vpc_derived_info("eu-west-1", "private", None));
        assert_eq!(made_up["AvailabilityZones"], json!(["eu-west-1a"]));
        assert!(made_up["VPCId"].as_str().is_some_and(|id| id.len() == 21));
        let asked = json!({"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]});
        let given = vpc_derived_info("eu-west-1", "private", Some(&asked));
        assert_eq!(given["SubnetIds"], asked["SubnetIds"]);
        assert_eq!(given["SecurityGroupIds"], asked["SecurityGroupIds"]);
        assert_eq!(given["VPCId"], made_up["VPCId"]);
    }

    #[test]
    fn engine_versions_are_checked() {
        assert!(engine_ok("OpenSearch_2.11"));
        assert!(engine_ok("Elasticsearch_7.10"));
        assert!(!engine_ok("OpenSearch_2"));
        assert!(!engine_ok("Solr_9.1"));
    }
}
