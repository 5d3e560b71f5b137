//! What every resource kind shares: [`Env`] (the SDK clients, the domain data-plane clients
//! found through `DescribeDomain` and cached, the plan's identity, the clock templates resolve
//! against, the request-rate limiters) and the small helpers that turn AWS failures into the
//! engine's errors and values into the fields a plan shows.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use snapferry_engine::{Change, FieldChange, FieldValue, Inputs, NodeId, Observed, ResourceError};
use snapferry_plan::{DomainRef, Plan};
use tokio::sync::Mutex;

use crate::clients::{AwsContext, ServiceClients};
use crate::domain_http::{DomainHttp, DomainHttpConfig, ProxyChoice};
use crate::error::AwsError;
use crate::opensearch::OpenSearch;
use crate::policy::Partition;

/// What every resource shares: clients, the plan's identity, the clock.
pub struct Env {
    pub aws: AwsContext,
    /// The plan's `name` (owns bucket-policy statements, tags).
    pub plan_name: String,
    /// The plan's region: where the role and bucket are managed from.
    pub plan_region: String,
    /// The identity that owns the snapshot role and the bucket: the source domain's assumed
    /// role (with its external id) when the source is reached through one, else the identity
    /// snapferry runs as. AWS's cross-account set-up keeps the bucket and the role that writes
    /// snapshots in the source's account; a domain can only pass a role of its own account.
    pub source_access: Option<(String, Option<String>)>,
    /// The time snapshot-name templates resolve against (pinned per run by the engine).
    pub now: DateTime<Utc>,
    /// Extra CA bundle for the domains' HTTPS endpoints (`AWS_CA_BUNDLE`).
    pub ca_bundle: Option<PathBuf>,
    data_planes: Mutex<HashMap<String, Arc<OpenSearch>>>,
    /// Requests per second allowed per API: the OpenSearch control plane (per account and
    /// region, where `DescribeDomain` polling lands) and each domain's REST API.
    rate: f64,
    control_planes: Mutex<HashMap<String, Arc<snapferry_engine::RateLimiter>>>,
    /// Roles this run created or changed: only those get IAM's propagation wait.
    roles_changed: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Domains this run created, with when each turned active (its endpoint is fresh in DNS).
    domains_created: std::sync::Mutex<HashMap<String, Option<std::time::Instant>>>,
    /// Passwords read from Secrets Manager this run, by where they came from and the domain
    /// they are for: one `GetSecretValue` per secret, held in memory only.
    secrets: Mutex<HashMap<String, secrecy::SecretString>>,
    /// Domains the plan's `security` step covers, and whether it makes the mappings (`false`:
    /// `security: false`, a check only): what the fix for a refusal can point at.
    security_steps: HashMap<String, bool>,
}

/// The default request rate per API: well under what OpenSearch Service allows, so a fleet
/// never trips throttling in the first place (throttling is still retried when it happens).
pub const DEFAULT_RATE_PER_SECOND: f64 = 10.0;

impl Env {
    /// Records that this run created or changed the role `arn` (IAM may not show it everywhere
    /// for a while).
    pub(crate) fn note_role_changed(&self, arn: &str) {
        self.roles_changed
            .lock()
            .expect("roles lock")
            .insert(arn.to_owned());
    }

    /// Whether this run created or changed the role `arn`.
    pub(crate) fn role_changed(&self, arn: &str) -> bool {
        self.roles_changed.lock().expect("roles lock").contains(arn)
    }

    /// Records that this run created the domain `name`.
    pub(crate) fn note_domain_created(&self, name: &str) {
        self.domains_created
            .lock()
            .expect("domains lock")
            .entry(name.to_owned())
            .or_insert(None);
    }

    /// Records that the domain `name` turned active now, if this run created it: its endpoint
    /// may not resolve everywhere yet.
    pub(crate) fn note_domain_active(&self, name: &str) {
        if let Some(at) = self
            .domains_created
            .lock()
            .expect("domains lock")
            .get_mut(name)
            .filter(|at| at.is_none())
        {
            *at = Some(std::time::Instant::now());
        }
    }

    fn active_since(&self, name: &str) -> Option<std::time::Instant> {
        self.domains_created
            .lock()
            .expect("domains lock")
            .get(name)
            .copied()
            .flatten()
    }

    pub fn new(
        aws: AwsContext,
        plan: &Plan,
        now: DateTime<Utc>,
        ca_bundle: Option<PathBuf>,
    ) -> Self {
        Env {
            aws,
            plan_name: plan.name.clone(),
            plan_region: plan.region.clone(),
            source_access: plan.replications.first().and_then(|r| {
                r.source
                    .assume_role_arn
                    .clone()
                    .map(|arn| (arn, r.source.external_id.clone()))
            }),
            now,
            ca_bundle,
            data_planes: Mutex::default(),
            rate: DEFAULT_RATE_PER_SECOND,
            control_planes: Mutex::default(),
            roles_changed: std::sync::Mutex::default(),
            domains_created: std::sync::Mutex::default(),
            secrets: Mutex::default(),
            security_steps: plan
                .replications
                .iter()
                .filter_map(|r| Some((r, r.security?.manage)))
                .flat_map(|(r, manage)| {
                    [
                        (r.source.name.clone(), manage),
                        (r.target.domain.name.clone(), manage),
                    ]
                })
                .collect(),
        }
    }

    /// Why a step is blocked when a domain's security plugin refuses snapferry, with the fix
    /// this plan allows: the `security` step's line when it has one, else how to get one.
    pub(crate) fn security_fix(&self, domain: &DomainRef, refused: &str) -> String {
        let fix = match self.security_steps.get(&domain.name) {
            Some(true) => "let the plan's `security` step map it (see the `security` step's own \
                           line), or map it by hand as docs/aws-setup.md says"
                .to_owned(),
            Some(false) => "the plan's `security` step only checks (`security: false`): make \
                            the mapping its own line shows by hand, or remove `security: false`"
                .to_owned(),
            None => "add `security: true` to the replication so that snapferry makes the \
                     mapping (it must be able to act as the domain's master: sign as its \
                     `master_user_arn`, or name its internal master under the target's \
                     `fine_grained_access_control`), or map it by hand as docs/aws-setup.md says"
                .to_owned(),
        };
        format!(
            "{refused}; domain {} has fine-grained access control and snapferry's identity is \
             not mapped to a role that allows it: {fix}",
            domain.name
        )
    }

    /// A read that a domain's security plugin refused, kept for `diff` to judge (see
    /// [`refused_change`]) rather than failing the whole plan. `domains` are the domains the
    /// read touches; the one named in the refusal is the one the fix names.
    pub(crate) fn unless_refused(
        &self,
        domains: &[&DomainRef],
        read: Result<Observed, ResourceError>,
    ) -> Result<Observed, ResourceError> {
        match read {
            Err(e) if refused_by_security_plugin(&e) => {
                let Some(domain) = domains
                    .iter()
                    .find(|d| e.message.contains(&format!("domain {}:", d.name)))
                    .or(domains.first())
                else {
                    return Err(e);
                };
                Ok(Observed {
                    value: json!({"refused_by_security": {
                        "refused": e.message,
                        "fix": self.security_fix(domain, &e.message),
                    }}),
                    ..Observed::absent()
                })
            }
            other => other,
        }
    }

    /// An internal master user's password for `domain`, read from where the plan says
    /// ([`crate::secret::resolve_secret`]) only by a step about to send it.
    pub(crate) async fn master_password(
        &self,
        source: &snapferry_plan::SecretSource,
        domain: &DomainRef,
    ) -> Result<secrecy::SecretString, crate::secret::SecretError> {
        let cacheable = matches!(source, snapferry_plan::SecretSource::SecretsManager { .. });
        let key = format!(
            "{source}|{}|{}|{:?}",
            domain.region, domain.name, domain.assume_role_arn
        );
        if cacheable && let Some(found) = self.secrets.lock().await.get(&key) {
            return Ok(found.clone());
        }
        let value = crate::secret::resolve_secret(&self.aws, source, domain).await?;
        if cacheable {
            self.secrets.lock().await.insert(key, value.clone());
        }
        Ok(value)
    }

    /// Sets the requests per second allowed per API (`--max-rate`).
    #[must_use]
    pub fn with_rate(mut self, per_second: f64) -> Self {
        if per_second.is_finite() && per_second > 0.0 {
            self.rate = per_second;
        }
        self
    }

    fn limiter(&self) -> Arc<snapferry_engine::RateLimiter> {
        let burst = (self.rate.ceil() as u32).max(1);
        Arc::new(snapferry_engine::RateLimiter::new(self.rate, burst))
    }

    /// Waits for a turn at the OpenSearch control plane of `domain`'s region and account.
    async fn control_plane_turn(&self, domain: &DomainRef) {
        let key = format!(
            "{}|{}",
            domain.region,
            domain.assume_role_arn.as_deref().unwrap_or("")
        );
        let limiter = self
            .control_planes
            .lock()
            .await
            .entry(key)
            .or_insert_with(|| self.limiter())
            .clone();
        limiter.acquire().await;
    }

    fn source_role(&self) -> (Option<&str>, Option<&str>) {
        match &self.source_access {
            Some((arn, external_id)) => (Some(arn.as_str()), external_id.as_deref()),
            None => (None, None),
        }
    }

    /// The clients for the plan's region as the source's account (IAM: the snapshot role
    /// lives there).
    pub async fn home(&self) -> Result<ServiceClients, AwsError> {
        let (arn, external_id) = self.source_role();
        self.aws
            .clients_as(&self.plan_region, arn, external_id)
            .await
    }

    /// The S3 client for a bucket in `region`, as the bucket's owner (the source's account):
    /// S3 answers a call sent to another Region's endpoint with 301 `PermanentRedirect`, so
    /// every bucket call goes through the bucket's.
    pub async fn bucket_s3(&self, region: &str) -> Result<aws_sdk_s3::Client, AwsError> {
        let (arn, external_id) = self.source_role();
        Ok(self.aws.clients_as(region, arn, external_id).await?.s3)
    }

    /// The clients that manage `domain` (its region, its assumed role and external id).
    pub async fn for_domain(&self, domain: &DomainRef) -> Result<ServiceClients, AwsError> {
        self.aws
            .clients_as(
                &domain.region,
                domain.assume_role_arn.as_deref(),
                domain.external_id.as_deref(),
            )
            .await
    }

    /// The account of the snapshot role and the bucket (the source's; roles are created there).
    pub async fn account_id(&self) -> Result<String, AwsError> {
        let (arn, external_id) = self.source_role();
        self.aws
            .account_id_as(&self.plan_region, arn, external_id)
            .await
    }

    /// The account `domain` lives in (its assumed role's, or snapferry's own).
    pub async fn account_of(&self, domain: &DomainRef) -> Result<String, AwsError> {
        self.aws
            .account_id_as(
                &domain.region,
                domain.assume_role_arn.as_deref(),
                domain.external_id.as_deref(),
            )
            .await
    }

    pub fn partition(&self) -> Partition {
        Partition::from_region(&self.plan_region)
    }

    /// `DescribeDomain`; `None` when the domain does not exist.
    pub async fn describe_domain(
        &self,
        domain: &DomainRef,
    ) -> Result<Option<aws_sdk_opensearch::types::DomainStatus>, AwsError> {
        let clients = self.for_domain(domain).await?;
        self.control_plane_turn(domain).await;
        match clients
            .opensearch
            .describe_domain()
            .domain_name(&domain.name)
            .send()
            .await
        {
            Ok(out) => Ok(out.domain_status().cloned()),
            Err(e) => {
                let e = AwsError::from_sdk(
                    format!("domain {}", domain.name),
                    "opensearch",
                    "DescribeDomain",
                    e,
                );
                if e.is_not_found() { Ok(None) } else { Err(e) }
            }
        }
    }

    /// The REST client of `domain`, or `None` while it has no endpoint (absent or still
    /// being created). The plan's `endpoint` wins over the one AWS reports; a VPC domain's
    /// endpoint is its `vpc` endpoint, reached through the plan's `proxy`.
    pub async fn data_plane(
        &self,
        domain: &DomainRef,
    ) -> Result<Option<Arc<OpenSearch>>, AwsError> {
        let key = format!(
            "{}|{}|{}",
            domain.name,
            domain.region,
            domain.assume_role_arn.as_deref().unwrap_or("")
        );
        if let Some(found) = self.data_planes.lock().await.get(&key) {
            return Ok(Some(found.clone()));
        }
        let endpoint = match &domain.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => match self.describe_domain(domain).await? {
                Some(status) => match endpoint_of(&status) {
                    Some(endpoint) => endpoint,
                    None => return Ok(None),
                },
                None => return Ok(None),
            },
        };
        let clients = self.for_domain(domain).await?;
        let mut config = DomainHttpConfig::new(&domain.name, &endpoint, &domain.region);
        if let Some(proxy) = &domain.proxy {
            config.proxy = ProxyChoice::Explicit(proxy.clone());
        }
        if self.ca_bundle.is_some() {
            config.ca_bundle.clone_from(&self.ca_bundle);
        }
        let mut http = DomainHttp::new(&config, clients.credentials.clone())
            .map_err(|e| AwsError::domain(format!("domain {}", domain.name), e))?
            .with_rate_limiter(self.limiter());
        if let Some(at) = self.active_since(&domain.name) {
            http = http.with_fresh_endpoint(at);
        }
        let client = Arc::new(OpenSearch::new(http));
        self.data_planes.lock().await.insert(key, client.clone());
        Ok(Some(client))
    }

    /// The data plane of a domain that must exist (the source).
    pub async fn require_data_plane(
        &self,
        node: &NodeId,
        domain: &DomainRef,
    ) -> Result<Arc<OpenSearch>, ResourceError> {
        match self.data_plane(domain).await.map_err(|e| fail(node, e))? {
            Some(client) => Ok(client),
            None => Err(ResourceError::permanent(
                node,
                format!(
                    "domain {} in {} does not exist or has no endpoint yet; check the name and \
                     region in the plan (or set `endpoint:`)",
                    domain.name, domain.region
                ),
            )),
        }
    }
}

/// True when a domain's security plugin (fine-grained access control) refused the caller.
pub(crate) fn refused_by_security(error: &crate::domain_http::DomainHttpError) -> bool {
    error.status() == Some(403) && error.error_type() == Some("security_exception")
}

/// Whether `error` is a data-plane request that a domain's security plugin refused (its
/// message is [`crate::domain_http::DomainHttpError`]'s: `… returned 403: security_exception`).
fn refused_by_security_plugin(error: &ResourceError) -> bool {
    error.class == snapferry_engine::ErrorClass::Permanent
        && error.message.contains(" returned 403: security_exception")
}

/// The change of a node whose read a security plugin refused: deferred while a data-plane
/// step it depends on is still to change (the `security` step about to map snapferry on an
/// existing domain, or a step deferred after it), so `plan` shows it as known after apply and
/// apply reads it again at its turn; blocked with the fix otherwise. A role, bucket policy or
/// domain still to change makes no security plugin let snapferry in.
pub(crate) fn refused_change(inputs: &Inputs, observed: &Observed) -> Option<Change> {
    let refused = observed.value.get("refused_by_security")?;
    let text = |key: &str| refused[key].as_str().unwrap_or_default().to_owned();
    let control_plane = [
        super::ROLE.name,
        super::BUCKET_POLICY.name,
        super::DOMAIN.name,
    ];
    let waits = inputs.iter().any(|(id, upstream)| {
        matches!(upstream, snapferry_engine::Upstream::KnownAfterApply)
            && !control_plane.contains(&id.kind())
    });
    Some(if !waits {
        Change::Blocked {
            reason: text("fix"),
        }
    } else {
        Change::deferred(format!(
            "read once the steps before it have run (now refused: {})",
            text("refused")
        ))
    })
}

/// Why a step that needs the source cannot proceed when it is missing (shown as blocked).
pub(crate) fn missing_source(domain: &DomainRef) -> String {
    format!(
        "source domain {} in {} does not exist or has no endpoint; check `source.domain` and \
         the region",
        domain.name, domain.region
    )
}

/// A domain's endpoint: the public one, else the VPC one.
pub fn endpoint_of(status: &aws_sdk_opensearch::types::DomainStatus) -> Option<String> {
    status
        .endpoint()
        .map(str::to_owned)
        .or_else(|| status.endpoints().and_then(|e| e.get("vpc").cloned()))
        .filter(|e| !e.is_empty())
}

/// An AWS failure as the engine sees it: retried when transient, with the whole cause chain
/// as the message (AWS's code and text included, never credentials).
pub fn fail(node: &NodeId, error: AwsError) -> ResourceError {
    // When AWS answered, its code and message say it all; the SDK's error chain below them
    // only repeats them in debug form.
    let message = match &error {
        AwsError::Sdk { code, message, .. } if code.is_some() || message.is_some() => {
            error.to_string()
        }
        AwsError::ExpiredCredentials { .. } => error.to_string(),
        _ => chain(&error),
    };
    if error.is_transient() {
        match error.retry_after() {
            Some(after) => ResourceError::transient_after(node, after, message),
            None => ResourceError::transient(node, message),
        }
    } else {
        ResourceError::permanent(node, message)
    }
}

/// A data-plane failure of `what` on `node`.
pub fn fail_domain(
    node: &NodeId,
    what: &str,
    error: crate::domain_http::DomainHttpError,
) -> ResourceError {
    fail(node, AwsError::domain(what, error))
}

/// The error and its causes on one line.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// A field that will be set on creation.
pub(crate) fn created(path: &str, value: impl Into<Value>) -> FieldChange {
    FieldChange {
        path: path.to_owned(),
        before: None,
        after: FieldValue::Known(value.into()),
    }
}

/// A field whose value is only known after an upstream applies.
pub(crate) fn created_unknown(path: &str) -> FieldChange {
    FieldChange {
        path: path.to_owned(),
        before: None,
        after: FieldValue::Unknown,
    }
}

/// A field changing from `before` to `after`.
pub(crate) fn changed(path: &str, before: Value, after: Value) -> FieldChange {
    FieldChange {
        path: path.to_owned(),
        before: Some(FieldValue::Known(before)),
        after: FieldValue::Known(after),
    }
}

/// The outputs map from `(key, value)` pairs.
pub(crate) fn outputs<const N: usize>(pairs: [(&str, Value); N]) -> snapferry_engine::Outputs {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), FieldValue::Known(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use snapferry_engine::Upstream;

    #[test]
    fn a_refused_read_is_deferred_while_a_step_before_it_changes_and_blocked_otherwise() {
        let node = NodeId::new("metadata", "shop");
        let refusal = ResourceError::permanent(
            &node,
            "domain request failed: domain shop-copy: GET / returned 403: security_exception: \
             no permissions for [cluster:monitor/main]",
        );
        assert!(refused_by_security_plugin(&refusal));
        assert!(!refused_by_security_plugin(&ResourceError::permanent(
            &node,
            "GET / returned 500: boom"
        )));
        let observed = Observed {
            value: json!({"refused_by_security": {
                "refused": refusal.message,
                "fix": "… domain shop-copy has fine-grained access control …",
            }}),
            ..Observed::absent()
        };
        let security = NodeId::new("security", "shop-copy");
        let mut pending = Inputs::new();
        pending.insert(security.clone(), Upstream::KnownAfterApply);
        let deferred = refused_change(&pending, &observed).expect("a refusal");
        assert!(deferred.is_deferred(), "{deferred:?}");
        let mut settled = Inputs::new();
        settled.insert(security, Upstream::Known(Default::default()));
        assert_eq!(
            refused_change(&settled, &observed),
            Some(Change::Blocked {
                reason: "… domain shop-copy has fine-grained access control …".into()
            })
        );
        assert_eq!(refused_change(&settled, &Observed::absent()), None);
        // A role still to create lets nobody past a security plugin.
        let mut role_pending = Inputs::new();
        role_pending.insert(NodeId::new("role", "shop"), Upstream::KnownAfterApply);
        assert!(matches!(
            refused_change(&role_pending, &observed),
            Some(Change::Blocked { .. })
        ));
    }
}
