//! `domain`: the target domain. Created from the source's live configuration (engine version,
//! cluster, EBS, VPC, encryption, endpoint options, advanced options, access policy rewritten
//! to the new domain's ARN, tags) with the plan's overrides, or from an explicit
//! configuration; then waited for until it has an endpoint. An existing target is adopted:
//! where it differs from the desired configuration the plan shows an update, and each field's
//! fate (which `UpdateDomainConfig` block carries it, or why AWS cannot change it in place) is
//! decided in [`update`].

mod cross_region;
pub mod members;
mod update;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_opensearch::types as os;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use snapferry_engine::{
    Change, Context, Inputs, NodeId, Observed, Outputs, PollStatus, Progress, Resource,
    ResourceError,
};
use snapferry_plan::{
    DomainConfig, DomainCreation, DomainNode, EngineVersion, MasterUser, SecretSource, can_restore,
};

use super::{Env, endpoint_of, fail, outputs};
use crate::error::AwsError;

pub use update::{Block, DomainUpdate, Fate, FieldDiff};

/// The part of a domain's configuration snapferry copies and compares, flat and serializable
/// so a plan can show it field by field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DomainShape {
    pub engine_version: Option<String>,
    pub instance_type: Option<String>,
    pub instance_count: Option<i32>,
    pub dedicated_master_enabled: Option<bool>,
    pub dedicated_master_type: Option<String>,
    pub dedicated_master_count: Option<i32>,
    pub zone_awareness_enabled: Option<bool>,
    pub availability_zone_count: Option<i32>,
    pub ebs_enabled: Option<bool>,
    pub volume_type: Option<String>,
    pub volume_size: Option<i32>,
    pub iops: Option<i32>,
    pub throughput: Option<i32>,
    pub subnet_ids: Option<Vec<String>>,
    pub security_group_ids: Option<Vec<String>>,
    pub encryption_at_rest: Option<bool>,
    pub kms_key_id: Option<String>,
    pub node_to_node_encryption: Option<bool>,
    pub enforce_https: Option<bool>,
    pub tls_security_policy: Option<String>,
    pub advanced_options: BTreeMap<String, String>,
    pub access_policy: Option<Value>,
    pub tags: BTreeMap<String, String>,
    /// Fine-grained access control (`AdvancedSecurityOptions.Enabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fine_grained_access_control: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_user_database: Option<bool>,
    /// The master user the plan names (an IAM ARN or an internal user's name). AWS never shows
    /// it back, so it is only sent when creating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_user: Option<String>,
    /// Where the internal master user's password is read from (never the password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_user_password_from: Option<String>,
}

impl DomainShape {
    /// The shape of a live domain (tags are read separately).
    pub fn from_status(status: &os::DomainStatus, tags: BTreeMap<String, String>) -> Self {
        let cluster = status.cluster_config();
        let ebs = status.ebs_options();
        let vpc = status.vpc_options();
        let at_rest = status.encryption_at_rest_options();
        let endpoint = status.domain_endpoint_options();
        DomainShape {
            engine_version: status.engine_version().map(str::to_owned),
            instance_type: cluster
                .and_then(|c| c.instance_type())
                .map(|t| t.as_str().to_owned()),
            instance_count: cluster.and_then(|c| c.instance_count()),
            dedicated_master_enabled: cluster.and_then(|c| c.dedicated_master_enabled()),
            dedicated_master_type: cluster
                .and_then(|c| c.dedicated_master_type())
                .map(|t| t.as_str().to_owned()),
            dedicated_master_count: cluster.and_then(|c| c.dedicated_master_count()),
            zone_awareness_enabled: cluster.and_then(|c| c.zone_awareness_enabled()),
            availability_zone_count: cluster
                .and_then(|c| c.zone_awareness_config())
                .and_then(|z| z.availability_zone_count()),
            ebs_enabled: ebs.and_then(|e| e.ebs_enabled()),
            volume_type: ebs
                .and_then(|e| e.volume_type())
                .map(|t| t.as_str().to_owned()),
            volume_size: ebs.and_then(|e| e.volume_size()),
            iops: ebs.and_then(|e| e.iops()),
            throughput: ebs.and_then(|e| e.throughput()),
            subnet_ids: vpc.map(|v| v.subnet_ids().to_vec()),
            security_group_ids: vpc.map(|v| v.security_group_ids().to_vec()),
            encryption_at_rest: at_rest.and_then(|e| e.enabled()),
            kms_key_id: at_rest.and_then(|e| e.kms_key_id()).map(str::to_owned),
            node_to_node_encryption: status
                .node_to_node_encryption_options()
                .and_then(|n| n.enabled()),
            enforce_https: endpoint.and_then(|e| e.enforce_https()),
            tls_security_policy: endpoint
                .and_then(|e| e.tls_security_policy())
                .map(|t| t.as_str().to_owned()),
            advanced_options: status
                .advanced_options()
                .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            access_policy: status
                .access_policies()
                .filter(|p| !p.trim().is_empty())
                .and_then(|p| serde_json::from_str(p).ok()),
            tags,
            fine_grained_access_control: status
                .advanced_security_options()
                .and_then(|a| a.enabled()),
            // Which user database only means something with FGAC on.
            internal_user_database: status
                .advanced_security_options()
                .filter(|a| a.enabled() == Some(true))
                .and_then(|a| a.internal_user_database_enabled()),
            master_user: None,
            master_user_password_from: None,
        }
    }

    /// Lays the plan's settings over this shape (the overrides of `from_source`, or a full
    /// explicit configuration over an empty shape).
    pub fn apply_config(&mut self, config: &DomainConfig) {
        if let Some(v) = &config.engine_version {
            self.engine_version = Some(v.to_string());
        }
        if let Some(c) = &config.cluster_config {
            set(&mut self.instance_type, c.instance_type.clone());
            set(&mut self.instance_count, c.instance_count.map(to_i32));
            set(
                &mut self.dedicated_master_enabled,
                c.dedicated_master_enabled,
            );
            set(
                &mut self.dedicated_master_type,
                c.dedicated_master_type.clone(),
            );
            set(
                &mut self.dedicated_master_count,
                c.dedicated_master_count.map(to_i32),
            );
            set(&mut self.zone_awareness_enabled, c.zone_awareness_enabled);
            set(
                &mut self.availability_zone_count,
                c.availability_zone_count.map(to_i32),
            );
        }
        if let Some(e) = &config.ebs {
            set(&mut self.ebs_enabled, e.enabled);
            set(&mut self.volume_type, e.volume_type.clone());
            set(&mut self.volume_size, e.volume_size.map(to_i32));
            set(&mut self.iops, e.iops.map(to_i32));
            set(&mut self.throughput, e.throughput.map(to_i32));
        }
        if let Some(v) = &config.vpc {
            self.subnet_ids = Some(v.subnet_ids.clone());
            self.security_group_ids = Some(v.security_group_ids.clone());
        }
        if let Some(e) = &config.encryption_at_rest {
            self.encryption_at_rest = Some(e.enabled);
            self.kms_key_id.clone_from(&e.kms_key_id);
        }
        set(
            &mut self.node_to_node_encryption,
            config.node_to_node_encryption,
        );
        set(&mut self.enforce_https, config.enforce_https);
        if let Some(p) = &config.access_policy {
            self.access_policy = Some(p.clone());
        }
        for (k, v) in &config.advanced_options {
            self.advanced_options.insert(k.clone(), v.clone());
        }
        for (k, v) in &config.tags {
            self.tags.insert(k.clone(), v.clone());
        }
        if let Some(f) = &config.fine_grained_access_control {
            set(&mut self.fine_grained_access_control, f.enabled);
            match &f.master {
                Some(MasterUser::Arn(arn)) => {
                    self.master_user = Some(arn.clone());
                    self.internal_user_database = Some(false);
                    self.master_user_password_from = None;
                }
                Some(MasterUser::Internal { name, password }) => {
                    self.master_user = Some(name.clone());
                    self.internal_user_database = Some(true);
                    self.master_user_password_from = Some(password.to_string());
                }
                None => {}
            }
        }
    }

    /// Holds the copy to "never more open than its source": a source with fine-grained access
    /// control gives a target with it (and its master named in the plan), turning it on brings
    /// its prerequisites, and a public target without it may not have an open access policy.
    /// `Err` is the reason `plan` shows, with the fix.
    fn keep_protection(
        &mut self,
        source_fgac: bool,
        config: &DomainConfig,
        section: &str,
        domain: &str,
        source: &str,
    ) -> Result<Option<String>, String> {
        let asked = config.fine_grained_access_control.as_ref();
        let asked_enabled = asked.and_then(|f| f.enabled);
        if source_fgac && asked_enabled == Some(false) {
            return Err(format!(
                "source domain {source} has fine-grained access control and snapferry never \
                 makes a copy less protected than its source: remove \
                 `fine_grained_access_control.enabled: false` from the target"
            ));
        }
        let wanted = asked_enabled.unwrap_or(
            source_fgac
                || asked.is_some_and(|f| f.master.is_some())
                || self.fine_grained_access_control == Some(true),
        );
        if wanted {
            self.fine_grained_access_control = Some(true);
            // Only creating a domain needs its master: an existing target keeps its own.
            let mut needs_master = None;
            if self.master_user.is_none() {
                needs_master = Some(format!(
                    "{} has fine-grained access control, so target domain {domain} gets it too \
                     and needs a master user, which AWS never shows: name it in the target's \
                     `{}.fine_grained_access_control`, as `master_user_arn: \
                     arn:aws:iam::<account>:role/<name>` or as `master_user_name: admin` with \
                     `master_user_password: {{ env: SNAPFERRY_MASTER_PASSWORD }}`",
                    if source_fgac {
                        format!("source domain {source}")
                    } else {
                        "the plan".to_owned()
                    },
                    section,
                ));
            }
            // What fine-grained access control needs, as AWS checks it.
            for (slot, what) in [
                (&mut self.enforce_https, "enforce_https"),
                (&mut self.node_to_node_encryption, "node_to_node_encryption"),
                (&mut self.encryption_at_rest, "encryption_at_rest"),
            ] {
                let said_off = match what {
                    "enforce_https" => config.enforce_https == Some(false),
                    "node_to_node_encryption" => config.node_to_node_encryption == Some(false),
                    _ => config
                        .encryption_at_rest
                        .as_ref()
                        .is_some_and(|e| !e.enabled),
                };
                if said_off {
                    return Err(format!(
                        "target domain {domain} has fine-grained access control, which AWS \
                         allows only with HTTPS enforced, node-to-node encryption and \
                         encryption at rest: remove `{what}: false` from the plan"
                    ));
                }
                *slot = Some(true);
            }
            return Ok(needs_master);
        }
        let public = self.subnet_ids.is_none();
        if public && self.access_policy.as_ref().is_some_and(is_open) {
            return Err(format!(
                "target domain {domain} would be public, with an access policy open to anyone \
                 and no fine-grained access control: AWS refuses such a domain and snapferry \
                 never creates one. Restrict the target's `access_policy` (e.g. to \
                 `Principal: {{AWS: arn:aws:iam::<account>:root}}`), or turn on \
                 `fine_grained_access_control` with a master user"
            ));
        }
        Ok(None)
    }

    /// The shape as dotted fields, for a field-by-field comparison.
    fn fields(&self) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        if let Value::Object(map) = serde_json::to_value(self).expect("a shape is JSON") {
            for (k, v) in map {
                match (k.as_str(), v) {
                    (_, Value::Null) => {}
                    ("advanced_options" | "tags", Value::Object(inner)) => {
                        for (ik, iv) in inner {
                            out.insert(format!("{k}.{ik}"), iv);
                        }
                    }
                    (_, v) => {
                        out.insert(k, v);
                    }
                }
            }
        }
        out
    }
}

/// An access policy that lets anyone in: an `Allow` for every principal without a condition.
pub fn is_open(policy: &Value) -> bool {
    let statements = match &policy["Statement"] {
        Value::Array(a) => a.clone(),
        Value::Object(_) => vec![policy["Statement"].clone()],
        _ => return false,
    };
    let anyone = |p: &Value| match p {
        Value::String(s) => s == "*",
        Value::Array(a) => a.iter().any(|v| v == "*"),
        _ => false,
    };
    statements.iter().any(|s| {
        s["Effect"] == "Allow"
            && s.get("Condition")
                .is_none_or(|c| c.as_object().is_none_or(|o| o.is_empty()))
            && match &s["Principal"] {
                Value::Object(o) => o.get("AWS").is_some_and(anyone),
                other => anyone(other),
            }
    })
}

fn set<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Why a domain that finished processing has no endpoint (its creation failed, or AWS isolated
/// it), as a message saying what to do; `None` while it is fine or still processing.
fn creation_failed(status: &os::DomainStatus) -> Option<String> {
    if status.processing() != Some(false) || endpoint_of(status).is_some() {
        return None;
    }
    let state = status
        .domain_processing_status()
        .map_or("unknown", |s| s.as_str());
    Some(format!(
        "domain {} finished processing without an endpoint (status {state}): its creation \
         failed; see the domain in the AWS console or CloudTrail for the cause, delete it \
         (`aws opensearch delete-domain --domain-name {}`) and apply again",
        status.domain_name(),
        status.domain_name()
    ))
}

/// The tag that marks a domain snapferry created, with the plan's name.
const OWNER_TAG: &str = "snapferry-plan";

/// Replaces the source domain's ARN (and `/*` forms) with the target's in an access policy.
fn rewrite_policy(policy: &Value, source_arn: &str, target_arn: &str) -> Value {
    match policy {
        Value::String(s) => Value::String(s.replace(source_arn, target_arn)),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|v| rewrite_policy(v, source_arn, target_arn))
                .collect(),
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), rewrite_policy(v, source_arn, target_arn)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What `desired` works out.
struct Desired {
    shape: DomainShape,
    source_version: Option<String>,
    /// Members the source uses that the copy does not get, with the reason (`members`).
    not_copied: Vec<(String, String)>,
    /// Why the domain cannot be created: FGAC without a master in the plan.
    needs_master: Option<String>,
}

pub(crate) struct DomainResource {
    id: NodeId,
    fingerprint: String,
    spec: DomainNode,
    env: Arc<Env>,
}

impl DomainResource {
    pub(crate) fn new(id: NodeId, fingerprint: String, spec: &DomainNode, env: &Arc<Env>) -> Self {
        DomainResource {
            id,
            fingerprint,
            spec: spec.clone(),
            env: env.clone(),
        }
    }

    fn name(&self) -> &str {
        &self.spec.domain.name
    }

    /// CreateDomain answered that the domain exists: the plan saw none, so either an earlier
    /// attempt of this apply created it and its answer was lost (a 504 or a reset after AWS
    /// accepted it), or someone else created one meanwhile. Only a domain carrying this
    /// plan's ownership tag (CreateDomain sets it) is adopted and waited for.
    async fn adopt_if_ours(&self, what: &str) -> Result<(), ResourceError> {
        let status = self
            .env
            .describe_domain(&self.spec.domain)
            .await
            .map_err(|e| fail(&self.id, e))?
            .ok_or_else(|| {
                ResourceError::transient(
                    &self.id,
                    format!("{what}: CreateDomain says it exists, DescribeDomain does not yet"),
                )
            })?;
        let tags = self.tags(status.arn(), &self.spec.domain).await?;
        if tags.get(OWNER_TAG) == Some(&self.env.plan_name) {
            tracing::info!(
                domain = self.name(),
                "adopting the domain an earlier attempt created"
            );
            return Ok(());
        }
        Err(ResourceError::permanent(
            &self.id,
            format!(
                "{what} was created by someone else after the plan was made (it is not tagged \
                 {OWNER_TAG}: {}), so snapferry will not take it over: choose another \
                 `target.domain`, or delete that domain if it is not needed, and run \
                 `snapferry apply` again",
                self.env.plan_name
            ),
        ))
    }

    async fn tags(
        &self,
        arn: &str,
        of: &snapferry_plan::DomainRef,
    ) -> Result<BTreeMap<String, String>, ResourceError> {
        let clients = self
            .env
            .for_domain(of)
            .await
            .map_err(|e| fail(&self.id, e))?;
        let out = clients
            .opensearch
            .list_tags()
            .arn(arn)
            .send()
            .await
            .map_err(|e| {
                fail(
                    &self.id,
                    AwsError::from_sdk(format!("domain {}", of.name), "opensearch", "ListTags", e),
                )
            })?;
        Ok(out
            .tag_list()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect())
    }

    /// The configuration the target must have, the source's engine version and what of the
    /// source is not copied.
    async fn desired(&self) -> Result<Desired, ResourceError> {
        let target_account = self
            .env
            .aws
            .account_id_as(
                &self.spec.domain.region,
                self.spec.domain.assume_role_arn.as_deref(),
                self.spec.domain.external_id.as_deref(),
            )
            .await
            .map_err(|e| fail(&self.id, e))?;
        let target_arn = format!(
            "arn:{}:es:{}:{target_account}:domain/{}",
            crate::policy::Partition::from_region(&self.spec.domain.region).as_str(),
            self.spec.domain.region,
            self.name()
        );
        let source = self
            .env
            .describe_domain(&self.spec.source)
            .await
            .map_err(|e| fail(&self.id, e))?;
        let source_version = source
            .as_ref()
            .and_then(|s| s.engine_version())
            .map(str::to_owned);
        let source_fgac = source
            .as_ref()
            .and_then(|s| s.advanced_security_options())
            .and_then(|a| a.enabled())
            == Some(true);
        let source_vpc_ids: Vec<String> = source
            .as_ref()
            .and_then(|s| s.vpc_options())
            .map(|v| [v.subnet_ids(), v.security_group_ids()].concat())
            .unwrap_or_default();
        let mut not_copied = Vec::new();
        let mut shape = match &self.spec.creation {
            DomainCreation::FromSource { overrides } => {
                let Some(source) = source else {
                    return Err(ResourceError::permanent(
                        &self.id,
                        format!(
                            "source domain {} in {} does not exist, so there is no configuration \
                             to copy; check `source.domain`, or give the target an explicit \
                             `configuration`",
                            self.spec.source.name, self.spec.source.region
                        ),
                    ));
                };
                let tags = self.tags(source.arn(), &self.spec.source).await?;
                let mut shape = DomainShape::from_status(&source, tags);
                not_copied = members::not_copied_in_use(&source);
                shape.tags.retain(|k, _| !k.starts_with("aws:"));
                if let Some(policy) = &shape.access_policy {
                    shape.access_policy = Some(rewrite_policy(policy, source.arn(), &target_arn));
                }
                shape.apply_config(overrides);
                shape
            }
            DomainCreation::Explicit { configuration } => {
                let mut shape = DomainShape::default();
                shape.apply_config(configuration);
                shape
            }
        };
        shape
            .tags
            .entry(OWNER_TAG.into())
            .or_insert_with(|| self.env.plan_name.clone());
        if let Some(v) = &self.spec.domain.engine_version {
            shape.engine_version = Some(v.to_string());
        }
        let section = match &self.spec.creation {
            DomainCreation::FromSource { .. } => "overrides",
            DomainCreation::Explicit { .. } => "configuration",
        };
        let needs_master = shape
            .keep_protection(
                source_fgac,
                self.spec.creation.config(),
                section,
                self.name(),
                &self.spec.source.name,
            )
            .map_err(|reason| ResourceError::permanent(&self.id, reason))?;
        if let Some(reason) = cross_region::regional_settings_problem(
            self.name(),
            &self.spec.source.region,
            &self.spec.domain.region,
            &self.spec.creation,
            &shape,
            &source_vpc_ids,
        ) {
            return Err(ResourceError::permanent(&self.id, reason));
        }
        Ok(Desired {
            shape,
            source_version,
            not_copied,
            needs_master,
        })
    }

    /// A refusal of the target's subnets or security groups, with where AWS looked and the fix
    /// (see [`cross_region::vpc_not_found`]).
    async fn vpc_not_found(&self, message: &str) -> Option<String> {
        let account = self
            .env
            .aws
            .account_id_as(
                &self.spec.domain.region,
                self.spec.domain.assume_role_arn.as_deref(),
                self.spec.domain.external_id.as_deref(),
            )
            .await
            .ok()?;
        cross_region::vpc_not_found(
            message,
            self.name(),
            &account,
            &self.spec.domain.region,
            &self.spec.creation,
        )
    }

    /// Where the internal master user's password comes from; `None` for an IAM master or no
    /// FGAC. The value is read ([`Env::master_password`]) only to be sent in CreateDomain
    /// (never logged, recorded or shown).
    fn master_password_source(&self) -> Option<&SecretSource> {
        match &self.spec.creation.config().fine_grained_access_control {
            Some(snapferry_plan::FineGrainedAccessControl {
                master: Some(MasterUser::Internal { password, .. }),
                ..
            }) => Some(password),
            _ => None,
        }
    }

    fn create_request(
        &self,
        client: &aws_sdk_opensearch::Client,
        shape: &DomainShape,
        password: Option<&str>,
    ) -> Result<
        aws_sdk_opensearch::operation::create_domain::builders::CreateDomainFluentBuilder,
        ResourceError,
    > {
        let mut request = client
            .create_domain()
            .domain_name(self.name())
            .set_engine_version(shape.engine_version.clone())
            .cluster_config(cluster_config(shape))
            .ebs_options(ebs_options(shape))
            .node_to_node_encryption_options(
                os::NodeToNodeEncryptionOptions::builder()
                    .set_enabled(shape.node_to_node_encryption)
                    .build(),
            )
            .domain_endpoint_options(
                os::DomainEndpointOptions::builder()
                    .set_enforce_https(shape.enforce_https)
                    .set_tls_security_policy(
                        shape
                            .tls_security_policy
                            .as_deref()
                            .map(os::TlsSecurityPolicy::from),
                    )
                    .build(),
            )
            .set_advanced_options(
                (!shape.advanced_options.is_empty())
                    .then(|| shape.advanced_options.clone().into_iter().collect()),
            )
            .set_access_policies(shape.access_policy.as_ref().map(Value::to_string));
        if shape.encryption_at_rest.is_some() {
            request = request.encryption_at_rest_options(
                os::EncryptionAtRestOptions::builder()
                    .set_enabled(shape.encryption_at_rest)
                    .set_kms_key_id(shape.kms_key_id.clone())
                    .build(),
            );
        }
        if shape.fine_grained_access_control.is_some() {
            let master = match (&shape.master_user, shape.internal_user_database, password) {
                (Some(name), Some(true), Some(password)) => Some(
                    os::MasterUserOptions::builder()
                        .master_user_name(name)
                        .master_user_password(password)
                        .build(),
                ),
                (Some(arn), internal, _) if internal != Some(true) => Some(
                    os::MasterUserOptions::builder()
                        .master_user_arn(arn)
                        .build(),
                ),
                _ => None,
            };
            request = request.advanced_security_options(
                os::AdvancedSecurityOptionsInput::builder()
                    .set_enabled(shape.fine_grained_access_control)
                    .set_internal_user_database_enabled(
                        shape
                            .fine_grained_access_control
                            .filter(|on| *on)
                            .and(shape.internal_user_database),
                    )
                    .set_master_user_options(master)
                    .build(),
            );
        }
        if let Some(subnets) = &shape.subnet_ids {
            request = request.vpc_options(
                os::VpcOptions::builder()
                    .set_subnet_ids(Some(subnets.clone()))
                    .set_security_group_ids(shape.security_group_ids.clone())
                    .build(),
            );
        }
        for (k, v) in &shape.tags {
            request = request.tag_list(
                os::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .map_err(|e| ResourceError::permanent(&self.id, e.to_string()))?,
            );
        }
        Ok(request)
    }
}

fn cluster_config(shape: &DomainShape) -> os::ClusterConfig {
    os::ClusterConfig::builder()
        .set_instance_type(
            shape
                .instance_type
                .as_deref()
                .map(os::OpenSearchPartitionInstanceType::from),
        )
        .set_instance_count(shape.instance_count)
        .set_dedicated_master_enabled(shape.dedicated_master_enabled)
        .set_dedicated_master_type(
            shape
                .dedicated_master_type
                .as_deref()
                .map(os::OpenSearchPartitionInstanceType::from),
        )
        .set_dedicated_master_count(shape.dedicated_master_count)
        .set_zone_awareness_enabled(shape.zone_awareness_enabled)
        .set_zone_awareness_config(shape.availability_zone_count.map(|n| {
            os::ZoneAwarenessConfig::builder()
                .availability_zone_count(n)
                .build()
        }))
        .build()
}

fn ebs_options(shape: &DomainShape) -> os::EbsOptions {
    os::EbsOptions::builder()
        .set_ebs_enabled(shape.ebs_enabled)
        .set_volume_type(shape.volume_type.as_deref().map(os::VolumeType::from))
        .set_volume_size(shape.volume_size)
        .set_iops(shape.iops)
        .set_throughput(shape.throughput)
        .build()
}

#[async_trait]
impl Resource for DomainResource {
    fn id(&self) -> &NodeId {
        &self.id
    }

    fn kind(&self) -> &'static str {
        super::DOMAIN.name
    }

    fn desired_fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    async fn read(&self, _cx: &Context, _inputs: &Inputs) -> Result<Observed, ResourceError> {
        let Desired {
            shape: desired,
            source_version,
            not_copied,
            needs_master,
        } = match self.desired().await {
            Ok(found) => found,
            // No source to copy from (or no right to read it): `plan` shows the step blocked
            // next to everything else instead of stopping at the first problem.
            Err(e) if e.class == snapferry_engine::ErrorClass::Permanent => {
                return Ok(Observed {
                    value: json!({"blocked": e.message}),
                    ..Observed::absent()
                });
            }
            Err(e) => return Err(e),
        };
        let target = self
            .env
            .describe_domain(&self.spec.domain)
            .await
            .map_err(|e| fail(&self.id, e))?;
        let mut value = json!({
            "desired": desired,
            "source_engine_version": source_version,
            "not_copied": not_copied
                .iter()
                .map(|(member, reason)| json!({"member": member, "reason": reason}))
                .collect::<Vec<_>>(),
        });
        let Some(status) = target.filter(|s| s.deleted() != Some(true)) else {
            // The password is needed only to create the domain: a missing one blocks the plan.
            if let Some(reason) = needs_master {
                value["blocked"] = json!(reason);
            } else if let Some(source @ SecretSource::Env(_)) = self.master_password_source()
                && let Err(crate::secret::SecretError::Unusable(reason)) =
                    self.env.master_password(source, &self.spec.domain).await
            {
                // An environment variable is checked now; a Secrets Manager secret is read
                // only by the apply that creates the domain, never to show a plan.
                value["blocked"] = json!(reason);
            }
            return Ok(Observed {
                value,
                ..Observed::absent()
            });
        };
        let tags = self.tags(status.arn(), &self.spec.domain).await?;
        value["live"] = json!(DomainShape::from_status(&status, tags));
        let endpoint = endpoint_of(&status);
        let observed = Observed::present(value);
        // `Created` is false while AWS is still creating the domain, whatever else it says.
        let ready = status.processing() == Some(false) && status.created() != Some(false);
        Ok(match (ready, endpoint) {
            (true, Some(endpoint)) => observed.with_outputs(outputs([
                ("arn", json!(status.arn())),
                ("endpoint", json!(endpoint)),
                ("engine_version", json!(status.engine_version())),
            ])),
            _ => match creation_failed(&status) {
                Some(reason) => {
                    let mut observed = observed;
                    observed.value["blocked"] = json!(reason);
                    observed
                }
                None => observed.in_progress(format!(
                    "domain {} is being created or changed",
                    self.name()
                )),
            },
        })
    }

    fn diff(&self, _inputs: &Inputs, observed: &Observed) -> Change {
        if let Some(reason) = observed.value["blocked"].as_str() {
            return Change::Blocked {
                reason: reason.to_owned(),
            };
        }
        let Ok(desired) = serde_json::from_value::<DomainShape>(observed.value["desired"].clone())
        else {
            return Change::Blocked {
                reason: "the desired configuration could not be worked out".into(),
            };
        };
        // A snapshot restores only to the same or a newer compatible engine.
        let source = observed.value["source_engine_version"]
            .as_str()
            .and_then(|v| EngineVersion::parse(v).ok());
        let wanted = observed.value["live"]["engine_version"]
            .as_str()
            .or(desired.engine_version.as_deref())
            .and_then(|v| EngineVersion::parse(v).ok());
        if let (Some(source), Some(target)) = (source, wanted)
            && !can_restore(source, target)
        {
            return Change::Blocked {
                reason: format!(
                    "indices of the source ({source}) cannot be restored on the target \
                     ({target}): a snapshot restores only to the same or a newer compatible \
                     version; choose another target `engine_version`"
                ),
            };
        }
        if !observed.exists {
            let password = desired.master_user_password_from.is_some().then(|| {
                snapferry_engine::FieldChange {
                    path: "master_user_password".into(),
                    before: None,
                    after: snapferry_engine::FieldValue::Sensitive(None),
                }
            });
            let not_copied = observed.value["not_copied"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| {
                    Some(super::created(
                        &format!("not_copied.{}", n["member"].as_str()?),
                        n["reason"].clone(),
                    ))
                });
            let fields = desired
                .fields()
                .into_iter()
                .map(|(k, v)| super::created(&k, v))
                .chain(password)
                .chain(not_copied)
                .chain([
                    super::created_unknown("arn"),
                    super::created_unknown("endpoint"),
                ])
                .collect();
            return Change::Create { fields };
        }
        let live: DomainShape =
            serde_json::from_value(observed.value["live"].clone()).unwrap_or_default();
        if let Some(what) = &observed.in_progress {
            return Change::InProgress { what: what.clone() };
        }
        let update = DomainUpdate::between(self.name(), &live, &desired);
        if let Some(reason) = update.blocked() {
            return Change::Blocked { reason };
        }
        if update.is_empty() {
            Change::NoOp
        } else {
            Change::Update {
                fields: update.changes(),
            }
        }
    }

    async fn apply(
        &self,
        _cx: &Context,
        _inputs: &Inputs,
        change: &Change,
    ) -> Result<(), ResourceError> {
        let clients = self
            .env
            .for_domain(&self.spec.domain)
            .await
            .map_err(|e| fail(&self.id, e))?;
        let Desired {
            shape: desired,
            needs_master,
            ..
        } = self.desired().await?;
        let what = format!("domain {}", self.name());
        match change {
            Change::Create { .. } => {
                if let Some(reason) = needs_master {
                    return Err(ResourceError::permanent(&self.id, reason));
                }
                let password = match self.master_password_source() {
                    None => None,
                    Some(source) => Some(
                        self.env
                            .master_password(source, &self.spec.domain)
                            .await
                            .map_err(|e| match e {
                                crate::secret::SecretError::Unusable(reason) => {
                                    ResourceError::permanent(&self.id, reason)
                                }
                                crate::secret::SecretError::Aws(e) => fail(&self.id, e),
                            })?,
                    ),
                };
                let request = self.create_request(
                    &clients.opensearch,
                    &desired,
                    password.as_ref().map(secrecy::ExposeSecret::expose_secret),
                )?;
                match request.send().await {
                    Ok(_) => {
                        self.env.note_domain_created(self.name());
                        Ok(())
                    }
                    Err(e) => {
                        let e = AwsError::from_sdk(&what, "opensearch", "CreateDomain", e);
                        if e.code() == Some("ResourceAlreadyExistsException") {
                            self.adopt_if_ours(&what).await?;
                            self.env.note_domain_created(self.name());
                            Ok(())
                        } else if e.code() == Some("ValidationException")
                            && let Some(why) = self.vpc_not_found(&e.to_string()).await
                        {
                            Err(ResourceError::permanent(&self.id, why))
                        } else {
                            Err(fail(&self.id, e))
                        }
                    }
                }
            }
            Change::Update { .. } => {
                // What to send is decided again from the live domain, field by field, by the
                // same function that made the change the plan showed.
                let status = self
                    .env
                    .describe_domain(&self.spec.domain)
                    .await
                    .map_err(|e| fail(&self.id, e))?
                    .ok_or_else(|| {
                        ResourceError::permanent(&self.id, format!("{what} disappeared"))
                    })?;
                let tags = self.tags(status.arn(), &self.spec.domain).await?;
                let live = DomainShape::from_status(&status, tags);
                let update = DomainUpdate::between(self.name(), &live, &desired);
                if let Some(reason) = update.blocked() {
                    return Err(ResourceError::permanent(&self.id, reason));
                }
                let request = clients
                    .opensearch
                    .update_domain_config()
                    .domain_name(self.name());
                if let Some(request) = update.request(request, &live, &desired) {
                    // Sent once, not retried blindly: after a lost answer (a 504 or a reset once
                    // AWS took the change) a repeat would start a second change, or be refused
                    // while the first is applied. The domain is read again instead, and only
                    // what is still missing is sent.
                    let sent = request
                        .customize()
                        .config_override(
                            aws_sdk_opensearch::config::Builder::default()
                                .retry_config(aws_smithy_types::retry::RetryConfig::disabled()),
                        )
                        .send()
                        .await;
                    if let Err(e) = sent {
                        let e = AwsError::from_sdk(&what, "opensearch", "UpdateDomainConfig", e);
                        if !e.is_transient() {
                            return Err(fail(&self.id, e));
                        }
                        let status = self
                            .env
                            .describe_domain(&self.spec.domain)
                            .await
                            .map_err(|e| fail(&self.id, e))?
                            .ok_or_else(|| {
                                ResourceError::permanent(&self.id, format!("{what} disappeared"))
                            })?;
                        let tags = self.tags(status.arn(), &self.spec.domain).await?;
                        let live = DomainShape::from_status(&status, tags);
                        let missing = DomainUpdate::between(self.name(), &live, &desired);
                        let request = clients
                            .opensearch
                            .update_domain_config()
                            .domain_name(self.name());
                        if let Some(request) = missing.request(request, &live, &desired) {
                            request.send().await.map_err(|e| {
                                fail(
                                    &self.id,
                                    AwsError::from_sdk(
                                        &what,
                                        "opensearch",
                                        "UpdateDomainConfig",
                                        e,
                                    ),
                                )
                            })?;
                        }
                    }
                }
                let tags = update.tags(&desired);
                if !tags.is_empty() {
                    clients
                        .opensearch
                        .add_tags()
                        .arn(status.arn())
                        .set_tag_list(Some(tags))
                        .send()
                        .await
                        .map_err(|e| {
                            fail(
                                &self.id,
                                AwsError::from_sdk(&what, "opensearch", "AddTags", e),
                            )
                        })?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn wait(
        &self,
        cx: &Context,
        _inputs: &Inputs,
        _progress: &Progress,
    ) -> Result<Outputs, ResourceError> {
        let env = self.env.clone();
        let domain = self.spec.domain.clone();
        let id = self.id.clone();
        // AWS creates a domain in 15 to 30 minutes (a blue/green update takes as long): poll
        // sparsely before that window and densely inside it (snapferry_engine::poll).
        let expected = snapferry_engine::poll::Expected::between(
            std::time::Duration::from_secs(15 * 60),
            std::time::Duration::from_secs(30 * 60),
        );
        cx.poll_until_expecting(expected, || {
            let (env, domain, id) = (env.clone(), domain.clone(), id.clone());
            async move {
                let Some(status) = env
                    .describe_domain(&domain)
                    .await
                    .map_err(|e| fail(&id, e))?
                else {
                    return Err(ResourceError::permanent(
                        &id,
                        format!("domain {} disappeared while being created", domain.name),
                    ));
                };
                let ready = status.processing() == Some(false) && status.created() != Some(false);
                match (ready, endpoint_of(&status)) {
                    (true, Some(endpoint)) => Ok(PollStatus::Ready(outputs([
                        ("arn", json!(status.arn())),
                        ("endpoint", json!(endpoint)),
                        ("engine_version", json!(status.engine_version())),
                    ]))),
                    _ if creation_failed(&status).is_some() => Err(ResourceError::permanent(
                        &id,
                        creation_failed(&status).unwrap_or_default(),
                    )),
                    _ => Ok(PollStatus::Pending {
                        done: 0,
                        total: 0,
                        message: status
                            .domain_processing_status()
                            .map_or("processing", |s| s.as_str())
                            .to_owned(),
                    }),
                }
            }
        })
        .await
        .inspect(|_| self.env.note_domain_active(self.name()))
    }

    /// Starts deleting the target domain (AWS takes minutes; this does not wait). Only a domain
    /// tagged `snapferry-plan: <this plan>` is deleted, and never one that is also the plan's
    /// source. A domain already gone or already being deleted is fine (idempotent). Callers
    /// choose whether to destroy the target at all (`--include-target-domain`).
    async fn destroy(&self, _cx: &Context, _inputs: &Inputs) -> Result<(), ResourceError> {
        let (target, source) = (&self.spec.domain, &self.spec.source);
        if target.name == source.name && target.region == source.region {
            return Err(ResourceError::permanent(
                &self.id,
                format!(
                    "domain {} is the plan's source; snapferry never deletes it",
                    target.name
                ),
            ));
        }
        let Some(status) = self
            .env
            .describe_domain(target)
            .await
            .map_err(|e| fail(&self.id, e))?
        else {
            return Ok(());
        };
        if status.deleted() == Some(true) {
            return Ok(());
        }
        let tags = self.tags(status.arn(), target).await?;
        if tags.get("snapferry-plan") != Some(&self.env.plan_name) {
            return Err(ResourceError::permanent(
                &self.id,
                format!(
                    "domain {} is not tagged snapferry-plan: {}; snapferry did not create it \
                     and leaves it in place",
                    target.name, self.env.plan_name
                ),
            ));
        }
        let clients = self
            .env
            .for_domain(target)
            .await
            .map_err(|e| fail(&self.id, e))?;
        match clients
            .opensearch
            .delete_domain()
            .domain_name(&target.name)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = AwsError::from_sdk(
                    format!("domain {}", target.name),
                    "opensearch",
                    "DeleteDomain",
                    e,
                );
                if e.is_not_found() {
                    Ok(())
                } else {
                    Err(fail(&self.id, e))
                }
            }
        }
    }
}
