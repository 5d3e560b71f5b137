//! Who is calling, and whether their IAM policies let them. The sandbox knows several
//! identities (an access key, its secret, an optional session token, the principal's ARN and
//! its identity-based policies); the configuration's `credentials:` block is the default one,
//! an administrator with no policy limits. Every signed request is matched to its identity by
//! access key, and is then a [`Caller`] — `Signed`, or `Anonymous` when it carries no SigV4
//! signature — the one notion of the caller every service uses:
//!
//! - IAM and the control plane name the IAM action and resource ARN of each operation (the
//!   `*_checks` functions here), which [`crate::http::guarded`] checks from [`crate::http::Call::checks`];
//!   S3 decides in [`S3Access`], the `s3s` access hook, with the bucket policy; a domain's
//!   gateway ([`crate::access_policy`]) with the domain access policy; an FGAC domain's
//!   security plugin maps the same caller (its user ARN, or its role as backend role);
//! - [`Caller::authorize`] decides, through [`crate::policy_eval::evaluate`]: identity policies
//!   and the resource-based policy together, an explicit deny anywhere winning, with the
//!   request's `aws:SourceIp` (the connection's peer) and the principal's own condition keys;
//! - a denial is answered in each protocol's own `AccessDenied` shape with AWS's message
//!   ("because no identity-based policy allows …" for a signer, "because no resource-based
//!   policy allows …" for `anonymous`, "with an explicit deny in a(n) … policy").
//!
//! The checks a service makes *for* the caller while carrying out a request are here too:
//! `iam:PassRole` when a domain registers a snapshot repository with a `role_arn`, and, for
//! `CreateDomain`, `iam:CreateServiceLinkedRole` for the account's first domain, `kms:DescribeKey`
//! and `kms:CreateGrant` for a customer-managed key, and the EC2 describes for a VPC domain
//! (made through the service: `aws:ViaAWSService`, no `aws:SourceIp`).
//!
//! Every identity carries its own account: several accounts share the sandbox, each with its
//! own IAM, service-linked role and domains. STS `AssumeRole` ([`crate::sts`]) adds role
//! sessions at run time ([`Identities::add_session`]), which expire in simulated time; across
//! accounts a request is decided by [`crate::policy_eval::evaluate_across`] (the caller's
//! identity policies *and* the resource's policy), and `iam:PassRole` never reaches a role of
//! another account.

// Refusals are the response itself as `Err`, built once per refused request and sent as is
// (as in the data plane).
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{CredentialsConfig, IdentityConfig, SandboxConfig};
use crate::http::{Protocol, Resp};
use crate::policy_eval::{self, Context, Decision, Policy, Principal};
use crate::{SandboxError, Shared};

/// The service-linked role OpenSearch Service creates for the account's first domain.
pub const SERVICE_LINKED_ROLE: &str = "AWSServiceRoleForAmazonOpenSearchService";
const SERVICE_LINKED_ROLE_SERVICE: &str = "opensearchservice.amazonaws.com";
/// The user id AWS would give the default identity (an IAM user: `AIDA` + 17 characters).
const DEFAULT_USER_ID: &str = "AIDASANDBOXEXAMPLE001";
/// The session name of a role identity's `assumed-role` ARN.
const ROLE_SESSION_NAME: &str = "sandbox-session";

/// One caller the sandbox accepts.
#[derive(Debug)]
pub struct Identity {
    pub credentials: CredentialsConfig,
    /// `arn:aws:iam::<account>:user/<name>` or `arn:aws:iam::<account>:role/<name>`.
    pub arn: String,
    pub account: String,
    /// The Region requests are made in (`aws:RequestedRegion`).
    region: String,
    /// `None`: no policy limits (the default identity); `Some`: exactly these policies.
    policies: Option<Vec<Policy>>,
    user_id: String,
    /// A role session's name (`AssumeRole`'s `RoleSessionName`).
    session_name: Option<String>,
    /// When a session's credentials stop working (simulated time).
    expires_at: Option<tokio::time::Instant>,
}

impl Identity {
    fn is_role(&self) -> bool {
        self.arn
            .split(':')
            .nth(5)
            .is_some_and(|r| r.starts_with("role/"))
    }

    /// The name at the end of the principal's ARN.
    fn name(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or(&self.arn)
    }

    /// The ARN AWS names the caller by in error messages and `GetCallerIdentity`: a user's
    /// ARN, or for a role the session's `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    pub fn caller_arn(&self) -> String {
        if self.is_role() {
            format!(
                "arn:aws:sts::{}:assumed-role/{}/{}",
                self.account,
                self.name(),
                self.session_label()
            )
        } else {
            self.arn.clone()
        }
    }

    /// `GetCallerIdentity`'s `UserId`: the user's id, or `<role id>:<session>`.
    pub fn user_id(&self) -> String {
        if self.is_role() {
            format!("{}:{}", self.user_id, self.session_label())
        } else {
            self.user_id.clone()
        }
    }

    fn session_label(&self) -> &str {
        self.session_name.as_deref().unwrap_or(ROLE_SESSION_NAME)
    }

    /// Whether this is a role session (its credentials came from `AssumeRole` or are a role's).
    pub fn is_role_session(&self) -> bool {
        self.is_role()
    }

    /// Whether the credentials have expired at `now` (only sessions expire).
    pub fn expired(&self, now: tokio::time::Instant) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    /// A session of role `role_arn` (in `account`) with the role's inline `policies`, valid
    /// until `expires_at`, signing with `credentials`.
    pub fn session(
        role_arn: &str,
        role_id: &str,
        session_name: &str,
        credentials: CredentialsConfig,
        policies: Vec<Policy>,
        region: &str,
        expires_at: tokio::time::Instant,
    ) -> Self {
        Self {
            credentials,
            arn: role_arn.to_owned(),
            account: role_arn.split(':').nth(4).unwrap_or_default().to_owned(),
            region: region.to_owned(),
            policies: Some(policies),
            user_id: role_id.to_owned(),
            session_name: Some(session_name.to_owned()),
            expires_at: Some(expires_at),
        }
    }

    fn principal(&self) -> Principal {
        let mut arns = vec![self.arn.clone()];
        if self.is_role() {
            arns.push(self.caller_arn());
        }
        Principal::iam(&self.account, arns)
    }

    /// An identity with no policy limits and no keys, for the unit tests of what reads callers.
    #[cfg(test)]
    pub fn unlimited(arn: &str) -> Arc<Self> {
        Arc::new(Self {
            credentials: CredentialsConfig::default(),
            arn: arn.to_owned(),
            account: arn.split(':').nth(4).unwrap_or_default().to_owned(),
            region: "us-east-1".to_owned(),
            policies: None,
            user_id: DEFAULT_USER_ID.to_owned(),
            session_name: None,
            expires_at: None,
        })
    }

    /// The IAM role an FGAC domain's security plugin sees as the caller's backend role (the
    /// role's ARN, path included); `None` for a user.
    pub fn backend_role(&self) -> Option<&str> {
        self.is_role().then_some(self.arn.as_str())
    }

    /// Whether this identity may do `action` on `resource`, given the request's own condition
    /// keys (`aws:SourceIp` among them when the request has one) and the resource-based policy
    /// (bucket policy, domain access policy) if there is one.
    pub fn authorize(
        &self,
        action: &str,
        resource: &str,
        context: Context,
        resource_policy: Option<&Policy>,
    ) -> Result<(), Denial> {
        self.authorize_in(action, resource, None, context, resource_policy)
    }

    /// [`Identity::authorize`] for a resource owned by `resource_account` (`None`: the
    /// caller's own): across accounts both the identity policies and the resource policy must
    /// allow.
    pub fn authorize_in(
        &self,
        action: &str,
        resource: &str,
        resource_account: Option<&str>,
        context: Context,
        resource_policy: Option<&Policy>,
    ) -> Result<(), Denial> {
        decide(
            self.caller_arn(),
            &self.principal(),
            self.policies.as_deref(),
            action,
            resource,
            self.full_context(context),
            resource_policy,
            resource_account,
        )
    }

    /// Whether `policy` (a role's trust policy) names this identity or its account for
    /// `action`, with no deny: what `AssumeRole` needs whatever the identity policies say.
    pub fn trusted_by(
        &self,
        policy: &Policy,
        action: &str,
        resource: &str,
        context: Context,
    ) -> bool {
        policy_eval::grants(
            &[policy],
            &policy_eval::Request {
                principal: &self.principal(),
                action,
                resource,
                context: self.full_context(context),
            },
        )
    }

    /// The request's condition keys plus the principal's own.
    fn full_context(&self, context: Context) -> Context {
        let mut context = context
            .with("aws:PrincipalArn", self.arn.clone())
            .with("aws:PrincipalAccount", self.account.clone())
            .with("aws:SecureTransport", "true")
            .with("aws:RequestedRegion", self.region.clone())
            .with("aws:CurrentTime", chrono::Utc::now().to_rfc3339());
        if !self.is_role() {
            context = context.with("aws:username", self.name().to_owned());
        }
        context
    }

    /// Runs one service-supplied check of a request that came from `source_ip`.
    pub fn check(&self, check: &Check, source_ip: Option<IpAddr>) -> Result<(), Denial> {
        let mut context = check.context.clone();
        if let Some(ip) = source_ip {
            context = context.with("aws:SourceIp", ip.to_string());
        }
        self.authorize(&check.action, &check.resource, context, None)
    }

    fn from_config(
        config: &IdentityConfig,
        region: &str,
        index: usize,
    ) -> Result<Self, SandboxError> {
        let at = format!("identities[{index}] ({})", config.arn);
        let parts: Vec<&str> = config.arn.splitn(6, ':').collect();
        let well_formed = parts.len() == 6
            && parts[0] == "arn"
            && parts[1] == "aws"
            && parts[2] == "iam"
            && parts[3].is_empty()
            && parts[4].len() == 12
            && parts[4].bytes().all(|b| b.is_ascii_digit())
            && (parts[5].starts_with("user/") || parts[5].starts_with("role/"))
            && !parts[5].ends_with('/');
        if !well_formed {
            return Err(SandboxError::InvalidConfig(format!(
                "{at}: arn must be arn:aws:iam::<12-digit account>:user/<name> or \
                 arn:aws:iam::<12-digit account>:role/<name>"
            )));
        }
        if config.access_key_id.is_empty() || config.secret_access_key.is_empty() {
            return Err(SandboxError::InvalidConfig(format!(
                "{at}: access_key_id and secret_access_key must not be empty"
            )));
        }
        let policies = match &config.policies {
            None => None,
            Some(docs) => Some(
                docs.iter()
                    .enumerate()
                    .map(|(n, doc)| {
                        let parsed = match doc {
                            Value::String(text) => Policy::parse(text, false),
                            other => Policy::from_value(other, false),
                        };
                        parsed.map_err(|e| {
                            SandboxError::InvalidConfig(format!(
                                "{at}: policies[{n}] is not a valid identity-based policy: {e}"
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let digest = hex::encode(Sha256::digest(config.access_key_id.as_bytes())).to_uppercase();
        let prefix = if parts[5].starts_with("role/") {
            "AROA"
        } else {
            "AIDA"
        };
        Ok(Self {
            credentials: CredentialsConfig {
                access_key_id: config.access_key_id.clone(),
                secret_access_key: config.secret_access_key.clone(),
                session_token: config.session_token.clone(),
            },
            arn: config.arn.clone(),
            account: parts[4].to_owned(),
            region: region.to_owned(),
            policies,
            user_id: format!("{prefix}{}", &digest[..17]),
            session_name: None,
            expires_at: None,
        })
    }
}

/// Who sent a request, as every service sees it: the gateway in front of a domain, S3, the
/// security plugin of an FGAC domain.
#[derive(Debug, Clone)]
pub enum Caller {
    /// An unsigned request (no SigV4 `Authorization`), including HTTP basic auth: AWS names it
    /// `anonymous`, and only a resource-based policy for principal `*` lets it in.
    Anonymous,
    /// The identity whose keys signed the request.
    Signed(Arc<Identity>),
}

impl Caller {
    /// The name AWS puts in its denial messages: the caller's ARN (a role's session), or
    /// `anonymous`.
    pub fn name(&self) -> String {
        match self {
            Self::Anonymous => "anonymous".to_owned(),
            Self::Signed(identity) => identity.caller_arn(),
        }
    }

    /// Whether the caller may do `action` on `resource`: its identity policies together with
    /// the resource-based policy, decided by [`policy_eval::evaluate`].
    pub fn authorize(
        &self,
        action: &str,
        resource: &str,
        context: Context,
        resource_policy: Option<&Policy>,
    ) -> Result<(), Denial> {
        self.authorize_in(action, resource, None, context, resource_policy)
    }

    /// [`Caller::authorize`] for a resource owned by `resource_account`.
    pub fn authorize_in(
        &self,
        action: &str,
        resource: &str,
        resource_account: Option<&str>,
        context: Context,
        resource_policy: Option<&Policy>,
    ) -> Result<(), Denial> {
        match self {
            Self::Signed(identity) => {
                identity.authorize_in(action, resource, resource_account, context, resource_policy)
            }
            Self::Anonymous => decide(
                self.name(),
                &Principal::anonymous(),
                Some(&[]),
                action,
                resource,
                context
                    .with("aws:SecureTransport", "true")
                    .with("aws:CurrentTime", chrono::Utc::now().to_rfc3339()),
                resource_policy,
                None,
            ),
        }
    }
}

/// The one place a caller's request is decided: [`policy_eval::evaluate_across`] over its
/// identity policies (`None`: no limits) and the resource-based policy, and the denial AWS words.
#[allow(clippy::too_many_arguments)]
fn decide(
    caller: String,
    principal: &Principal,
    identity_policies: Option<&[Policy]>,
    action: &str,
    resource: &str,
    context: Context,
    resource_policy: Option<&Policy>,
    resource_account: Option<&str>,
) -> Result<(), Denial> {
    let decision = policy_eval::evaluate_across(
        identity_policies,
        &resource_policy.into_iter().collect::<Vec<_>>(),
        &policy_eval::Request {
            principal,
            action,
            resource,
            context,
        },
        resource_account,
    );
    match decision {
        Decision::Allow => Ok(()),
        denied => Err(Denial {
            anonymous: principal.account.is_none(),
            caller,
            action: action.to_owned(),
            resource: resource.to_owned(),
            decision: denied,
        }),
    }
}

/// Every identity, by access key, and the account-level IAM facts the checks depend on.
#[derive(Debug)]
pub struct Identities {
    by_key: BTreeMap<String, Arc<Identity>>,
    default_key: String,
    /// Role sessions `AssumeRole` handed out, by access key.
    sessions: Mutex<BTreeMap<String, Arc<Identity>>>,
    /// The accounts that hold OpenSearch Service's service-linked role.
    service_linked_roles: Mutex<BTreeSet<String>>,
}

impl Identities {
    /// The default identity from `credentials:` plus the configured ones, checked.
    pub fn from_config(config: &SandboxConfig) -> Result<Self, SandboxError> {
        let default = Identity {
            credentials: config.credentials.clone(),
            arn: format!("arn:aws:iam::{}:user/sandbox", config.account_id),
            account: config.account_id.clone(),
            region: config.region.clone(),
            policies: None,
            user_id: DEFAULT_USER_ID.to_owned(),
            session_name: None,
            expires_at: None,
        };
        let default_key = default.credentials.access_key_id.clone();
        let mut by_key = BTreeMap::new();
        by_key.insert(default_key.clone(), Arc::new(default));
        for (index, c) in config.identities.iter().enumerate() {
            let identity = Identity::from_config(c, &config.region, index)?;
            if by_key.contains_key(&c.access_key_id) {
                return Err(SandboxError::InvalidConfig(format!(
                    "identities[{index}] ({}): access key {} is already used by another identity \
                     (or by credentials:); give each identity its own access_key_id",
                    c.arn, c.access_key_id
                )));
            }
            by_key.insert(c.access_key_id.clone(), Arc::new(identity));
        }
        // An account holds the role when a domain was created in it before (a seeded domain),
        // unless `service_linked_role` says otherwise for every account.
        let service_linked_roles = config
            .domains
            .iter()
            .map(|d| config.domain_home(&d.name).0)
            .filter(|_| config.service_linked_role != Some(false))
            .chain((config.service_linked_role == Some(true)).then(|| config.account_id.clone()))
            .collect();
        Ok(Self {
            by_key,
            default_key,
            sessions: Mutex::default(),
            service_linked_roles: Mutex::new(service_linked_roles),
        })
    }

    /// The identity whose access key this is: a configured one or a role session.
    pub fn get(&self, access_key: &str) -> Option<Arc<Identity>> {
        self.by_key.get(access_key).cloned().or_else(|| {
            self.sessions
                .lock()
                .expect("sessions lock")
                .get(access_key)
                .cloned()
        })
    }

    /// Adds a role session `AssumeRole` handed out.
    pub fn add_session(&self, session: Identity) {
        self.sessions
            .lock()
            .expect("sessions lock")
            .insert(session.credentials.access_key_id.clone(), Arc::new(session));
    }

    /// Every account a configured identity is in.
    pub fn accounts(&self) -> BTreeSet<String> {
        self.by_key.values().map(|i| i.account.clone()).collect()
    }

    pub fn default_identity(&self) -> Arc<Identity> {
        self.by_key[&self.default_key].clone()
    }

    /// Whether `AWSServiceRoleForAmazonOpenSearchService` exists in `account`.
    pub fn service_linked_role_exists(&self, account: &str) -> bool {
        self.service_linked_roles
            .lock()
            .expect("slr lock")
            .contains(account)
    }

    /// The accounts that hold the service-linked role.
    pub fn service_linked_role_accounts(&self) -> Vec<String> {
        self.service_linked_roles
            .lock()
            .expect("slr lock")
            .iter()
            .cloned()
            .collect()
    }

    fn service_linked_role_created(&self, account: &str) {
        self.service_linked_roles
            .lock()
            .expect("slr lock")
            .insert(account.to_owned());
    }
}

/// Verifies a header-signed request against the identity its access key names (the default
/// identity's credentials when the key is unknown, so the answer is AWS's "invalid token").
pub fn verify(
    shared: &Shared,
    method: &str,
    raw_path: &str,
    raw_query: Option<&str>,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<crate::auth::Scope, crate::auth::AuthFailure> {
    let identity = crate::auth::scope_of(headers, raw_query)
        .and_then(|scope| shared.identities.get(&scope.access_key))
        .unwrap_or_else(|| shared.identities.default_identity());
    let scope = crate::auth::verify(
        &identity.credentials,
        method,
        raw_path,
        raw_query,
        headers,
        body,
    )?;
    if identity.expired(shared.clock.now()) {
        return Err(crate::auth::AuthFailure::Expired);
    }
    Ok(scope)
}

/// One thing a request needs permission for (IAM and the control plane, which have no
/// resource-based policies; S3 and the domain gateway decide with theirs, through [`Caller`]).
#[derive(Debug, Clone)]
pub struct Check {
    pub action: String,
    pub resource: String,
    pub context: Context,
}

impl Check {
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            resource: resource.into(),
            context: Context::default(),
        }
    }
}

/// A refused request: who, what, on what, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Denial {
    pub caller: String,
    /// An unsigned caller, whom only a resource-based policy could have let in.
    pub anonymous: bool,
    pub action: String,
    pub resource: String,
    pub decision: Decision,
}

impl Denial {
    fn reason(&self) -> String {
        match self.decision {
            Decision::ExplicitDeny {
                in_resource_policy: true,
            } => "with an explicit deny in a resource-based policy".to_owned(),
            Decision::ExplicitDeny {
                in_resource_policy: false,
            } => "with an explicit deny in an identity-based policy".to_owned(),
            // An anonymous caller has no identity-based policies, and a caller of another
            // account was let down by the resource's policy: what failed is that policy (the
            // gateway's words for an unsigned request).
            Decision::NoResourceGrant => format!(
                "because no resource-based policy allows the {} action",
                self.action
            ),
            _ if self.anonymous => format!(
                "because no resource-based policy allows the {} action",
                self.action
            ),
            _ => format!(
                "because no identity-based policy allows the {} action",
                self.action
            ),
        }
    }

    /// IAM's and the OpenSearch Service control plane's text.
    pub fn message(&self) -> String {
        format!(
            "User: {} is not authorized to perform: {} on resource: {} {}",
            self.caller,
            self.action,
            self.resource,
            self.reason()
        )
    }

    /// S3's text: the resource in double quotes.
    pub fn s3_message(&self) -> String {
        format!(
            "User: {} is not authorized to perform: {} on resource: \"{}\" {}",
            self.caller,
            self.action,
            self.resource,
            self.reason()
        )
    }

    /// A domain endpoint's text: no resource.
    pub fn es_http_message(&self) -> String {
        format!(
            "User: {} is not authorized to perform: {} {}",
            self.caller,
            self.action,
            self.reason()
        )
    }
}

impl Protocol {
    /// AWS's `AccessDenied` answer in this protocol's shape.
    pub fn access_denied(self, denial: &Denial) -> Resp {
        match self {
            Self::Query => self.error(403, "AccessDenied", &denial.message()),
            Self::RestXml => self.error(403, "AccessDenied", &denial.s3_message()),
            Self::RestJson => self.error(403, "AccessDeniedException", &denial.message()),
            Self::Json => self.error(400, "AccessDeniedException", &denial.message()),
            Self::OpenSearch => crate::http::json(
                403,
                &serde_json::json!({ "Message": denial.es_http_message() }),
            ),
        }
    }
}

// ---- What each operation needs ----

/// IAM: the action is the operation's name; the resource is the role's ARN (with its path
/// once the role exists). Creating a role with tags also needs `iam:TagRole`.
pub fn iam_checks(shared: &Shared, account: &str, params: &BTreeMap<String, String>) -> Vec<Check> {
    let Some(operation) = params.get("Action") else {
        return Vec::new();
    };
    let resource = match params.get("RoleName") {
        Some(name) if operation == "CreateRole" => format!(
            "arn:aws:iam::{account}:role{}{name}",
            params.get("Path").map(String::as_str).unwrap_or("/")
        ),
        Some(name) => shared
            .iam
            .role_arn(account, name)
            .unwrap_or_else(|| format!("arn:aws:iam::{account}:role/{name}")),
        None => "*".to_owned(),
    };
    let tag_keys: Vec<String> = (1..)
        .map_while(|i| params.get(&format!("Tags.member.{i}.Key")).cloned())
        .collect();
    let mut context = Context::default();
    if !tag_keys.is_empty() {
        context = context.with_all("aws:TagKeys", tag_keys.clone());
    }
    if let Some(boundary) = params.get("PermissionsBoundary") {
        context = context.with("iam:PermissionsBoundary", boundary.clone());
    }
    let mut checks = vec![Check {
        context: context.clone(),
        ..Check::new(format!("iam:{operation}"), resource.clone())
    }];
    if operation == "CreateRole" && !tag_keys.is_empty() {
        checks.push(Check {
            context,
            ..Check::new("iam:TagRole", resource)
        });
    }
    checks
}

fn domain_arn(place: &Place<'_>, name: &str) -> String {
    format!(
        "arn:aws:es:{}:{}:domain/{name}",
        place.region, place.account
    )
}

/// Where a control-plane request acts: the caller's account and the Region it was signed for.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub account: &'a str,
    pub region: &'a str,
}

/// The OpenSearch Service control plane: `es:<Operation>` on the domain's ARN (the tag
/// operations name it in the request; `DescribeDomains` needs each domain it names;
/// `ListDomainNames` has no resource-level permissions).
pub fn control_plane_checks(
    place: &Place<'_>,
    operation: &str,
    target: Option<&str>,
    body: &Value,
    query: &BTreeMap<String, String>,
) -> Vec<Check> {
    let action = format!("es:{operation}");
    let one = |resource: String| vec![Check::new(action.clone(), resource)];
    match operation {
        "Unknown" => Vec::new(),
        "CreateDomain" => one(domain_arn(
            place,
            body.get("DomainName").and_then(Value::as_str).unwrap_or(""),
        )),
        "AddTags" | "RemoveTags" => one(body
            .get("ARN")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()),
        "ListTags" => one(query.get("arn").cloned().unwrap_or_default()),
        "DescribeDomains" => body
            .get("DomainNames")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|name| Check::new(action.clone(), domain_arn(place, name)))
            .collect(),
        "ListDomainNames" => one("*".to_owned()),
        _ => one(domain_arn(place, target.unwrap_or(""))),
    }
}

/// What OpenSearch Service's gateway checks before a repository registration reaches the
/// domain: that the caller may pass the snapshot role to the service (an anonymous caller never
/// may: "User: anonymous is not authorized to perform: iam:PassRole", the `fgac` page's
/// manual-snapshot section). `None`: allowed, or there is no `role_arn` to pass.
pub fn pass_role_for_repository(caller: &Caller, body: &[u8], source_ip: IpAddr) -> Option<Resp> {
    let settings: Value = serde_json::from_slice(body).ok()?;
    let role_arn = settings.get("settings")?.get("role_arn")?.as_str()?;
    let context = Context::default()
        .with("iam:PassedToService", "es.amazonaws.com")
        .with("aws:SourceIp", source_ip.to_string());
    // A role can only be passed within its own account: no policy lets a caller pass another
    // account's role.
    let role_account = role_arn.split(':').nth(4).unwrap_or_default();
    let denial = match caller {
        Caller::Signed(identity) if identity.account != role_account => Denial {
            caller: caller.name(),
            anonymous: false,
            action: "iam:PassRole".into(),
            resource: role_arn.into(),
            decision: Decision::ImplicitDeny,
        },
        _ => caller
            .authorize("iam:PassRole", role_arn, context, None)
            .err()?,
    };
    Some(crate::access_policy::denied(&format!(
        "User: {} is not authorized to perform: iam:PassRole on resource: {role_arn}",
        denial.caller
    )))
}

/// What `CreateDomain` (and `UpdateDomainConfig` for the options it names) does with the
/// caller's permissions besides `es:CreateDomain`: creates the service-linked role for the
/// account's first domain, describes and grants on a customer-managed KMS key, and describes
/// the VPC, subnets and security groups of a VPC domain. `Err` is the control plane's answer.
pub fn domain_implied_checks(
    shared: &Shared,
    place: &Place<'_>,
    identity: Option<&Identity>,
    body: &Value,
    creating: bool,
) -> Result<(), Resp> {
    let Some(identity) = identity else {
        return Ok(());
    };
    let validation =
        |message: String| Protocol::RestJson.error(400, "ValidationException", &message);
    // The service makes these calls with the caller's credentials (forward access sessions):
    // `aws:ViaAWSService` is true and the caller's own address is not in the request.
    let via_service = || Context::default().with("aws:ViaAWSService", "true");
    if creating && !shared.identities.service_linked_role_exists(place.account) {
        let slr_arn = format!(
            "arn:aws:iam::{}:role/aws-service-role/{SERVICE_LINKED_ROLE_SERVICE}/{SERVICE_LINKED_ROLE}",
            place.account
        );
        let context = via_service().with("iam:AWSServiceName", SERVICE_LINKED_ROLE_SERVICE);
        if identity
            .authorize("iam:CreateServiceLinkedRole", &slr_arn, context, None)
            .is_err()
        {
            return Err(validation(
                "Before you can proceed, you must enable a service-linked role to give Amazon \
                 OpenSearch Service permissions to access your VPC."
                    .to_owned(),
            ));
        }
        shared.iam.insert_service_linked_role(
            place.account,
            SERVICE_LINKED_ROLE,
            SERVICE_LINKED_ROLE_SERVICE,
        );
        shared.identities.service_linked_role_created(place.account);
    }
    let encryption = body.get("EncryptionAtRestOptions");
    let enabled = encryption
        .and_then(|e| e.get("Enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let key = encryption
        .and_then(|e| e.get("KmsKeyId"))
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty() && !matches!(*k, "aws/es" | "alias/aws/es"))
        .filter(|k| !k.ends_with(":alias/aws/es"));
    if let (true, Some(key)) = (enabled, key) {
        let key_arn = if key.starts_with("arn:") {
            key.to_owned()
        } else {
            format!(
                "arn:aws:kms:{}:{}:{}",
                place.region,
                place.account,
                if key.starts_with("alias/") {
                    key.to_owned()
                } else {
                    format!("key/{key}")
                }
            )
        };
        let via = via_service()
            .with(
                "kms:ViaService",
                format!("es.{}.amazonaws.com", place.region),
            )
            .with("kms:CallerAccount", place.account.to_owned());
        for (action, context) in [
            ("kms:DescribeKey", via.clone()),
            (
                "kms:CreateGrant",
                via.with("kms:GrantIsForAWSResource", "true"),
            ),
        ] {
            if let Err(denial) = identity.authorize(action, &key_arn, context, None) {
                return Err(validation(format!(
                    "Error in Accessing KmsKeyID with details:{} (Service: AWSKMS; Status Code: 400; \
                     Error Code: AccessDeniedException; Request ID: {}; Proxy: null)",
                    denial.message(),
                    crate::http::request_id()
                )));
            }
        }
    }
    if body.get("VPCOptions").is_some_and(|v| !v.is_null()) {
        for action in [
            "ec2:DescribeVpcs",
            "ec2:DescribeSubnets",
            "ec2:DescribeSecurityGroups",
        ] {
            if let Err(denial) = identity.authorize(action, "*", via_service(), None) {
                // EC2's UnauthorizedOperation text: its describes have no resource-level
                // permissions, so the message names none.
                return Err(validation(format!(
                    "You are not authorized to perform this operation. {}",
                    denial.es_http_message()
                )));
            }
        }
    }
    Ok(())
}

// ---- S3 ----

/// S3's action for an operation (S3 names its permissions, not its operations), and whether
/// the resource is the object rather than the bucket.
fn s3_action(operation: &str) -> Option<(&'static str, bool)> {
    Some(match operation {
        "ListBuckets" => ("s3:ListAllMyBuckets", false),
        "CreateBucket" => ("s3:CreateBucket", false),
        "DeleteBucket" => ("s3:DeleteBucket", false),
        "HeadBucket" | "ListObjects" | "ListObjectsV2" => ("s3:ListBucket", false),
        "GetBucketLocation" => ("s3:GetBucketLocation", false),
        "GetBucketPolicy" => ("s3:GetBucketPolicy", false),
        "PutBucketPolicy" => ("s3:PutBucketPolicy", false),
        "DeleteBucketPolicy" => ("s3:DeleteBucketPolicy", false),
        "GetBucketEncryption" => ("s3:GetEncryptionConfiguration", false),
        "PutBucketEncryption" | "DeleteBucketEncryption" => {
            ("s3:PutEncryptionConfiguration", false)
        }
        "GetBucketTagging" => ("s3:GetBucketTagging", false),
        "PutBucketTagging" | "DeleteBucketTagging" => ("s3:PutBucketTagging", false),
        "GetBucketVersioning" => ("s3:GetBucketVersioning", false),
        "PutBucketVersioning" => ("s3:PutBucketVersioning", false),
        "ListMultipartUploads" => ("s3:ListBucketMultipartUploads", false),
        "GetObject" | "HeadObject" => ("s3:GetObject", true),
        "PutObject"
        | "CopyObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "CompleteMultipartUpload" => ("s3:PutObject", true),
        "AbortMultipartUpload" => ("s3:AbortMultipartUpload", true),
        "DeleteObject" | "DeleteObjects" => ("s3:DeleteObject", true),
        "ListParts" => ("s3:ListMultipartUploadParts", true),
        "GetObjectTagging" => ("s3:GetObjectTagging", true),
        "PutObjectTagging" => ("s3:PutObjectTagging", true),
        _ => return None,
    })
}

/// S3's signature check looks the secret up here, so role sessions handed out at run time sign
/// like configured identities.
pub struct S3Auth {
    pub identities: Arc<Identities>,
}

#[async_trait::async_trait]
impl s3s::auth::S3Auth for S3Auth {
    async fn get_secret_key(&self, access_key: &str) -> s3s::S3Result<s3s::auth::SecretKey> {
        match self.identities.get(access_key) {
            Some(identity) => Ok(identity.credentials.secret_access_key.clone().into()),
            None => Err(s3s::s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }
}

/// The `s3s` access hook: the caller's identity policies and the bucket policy decide
/// ([`Caller::authorize`]); an unsigned request is `anonymous`, whom only the bucket policy can
/// let in.
pub struct S3Access {
    pub identities: Arc<Identities>,
    pub store: Arc<crate::s3::S3Store>,
    pub clock: Arc<crate::clock::Clock>,
}

#[async_trait::async_trait]
impl s3s::access::S3Access for S3Access {
    async fn check(&self, cx: &mut s3s::access::S3AccessContext<'_>) -> s3s::S3Result<()> {
        let caller = match cx.credentials() {
            None => Caller::Anonymous,
            Some(credentials) => {
                let Some(identity) = self.identities.get(&credentials.access_key) else {
                    return Err(s3s::s3_error!(
                        InvalidAccessKeyId,
                        "The AWS Access Key Id you provided does not exist in our records."
                    ));
                };
                if identity.expired(self.clock.now()) {
                    return Err(s3s::s3_error!(
                        ExpiredToken,
                        "The provided token has expired."
                    ));
                }
                if let Some(token) = &identity.credentials.session_token {
                    let sent = cx
                        .headers()
                        .get("x-amz-security-token")
                        .and_then(|v| v.to_str().ok());
                    if sent != Some(token.as_str()) {
                        return Err(s3s::s3_error!(
                            InvalidToken,
                            "The provided token is malformed or otherwise invalid."
                        ));
                    }
                }
                Caller::Signed(identity)
            }
        };
        let source_ip = crate::http::source_ip(cx.extensions_mut());
        let operation = cx.s3_op().name().to_owned();
        let (bucket, key) = match cx.s3_path() {
            s3s::path::S3Path::Root => (None, None),
            s3s::path::S3Path::Bucket { bucket } => (Some(bucket.to_string()), None),
            s3s::path::S3Path::Object { bucket, key } => {
                (Some(bucket.to_string()), Some(key.to_string()))
            }
        };
        // A bucket lives in one Region: a request signed for another is redirected (before
        // anything else is decided), naming the bucket's Region.
        if operation != "CreateBucket"
            && let Some(b) = &bucket
            && let Some(scope) = crate::auth::scope_of(cx.headers(), cx.uri().query())
            && let Some(region) = self.store.region(b)
            && region != scope.region
        {
            let mut error = s3s::s3_error!(
                PermanentRedirect,
                "The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint."
            );
            let mut headers = http::HeaderMap::new();
            if let Ok(value) = http::HeaderValue::from_str(&region) {
                headers.insert("x-amz-bucket-region", value);
            }
            error.set_headers(headers);
            return Err(error);
        }
        let Some((action, on_object)) = s3_action(&operation) else {
            return Ok(());
        };
        let resource = match (&bucket, &key) {
            (Some(b), Some(k)) if on_object => format!("arn:aws:s3:::{b}/{k}"),
            (Some(b), _) if on_object => format!("arn:aws:s3:::{b}/*"),
            (Some(b), _) => format!("arn:aws:s3:::{b}"),
            (None, _) => "*".to_owned(),
        };
        let mut context = Context::default();
        if let Some(ip) = source_ip {
            context = context.with("aws:SourceIp", ip.to_string());
        }
        if action == "s3:ListBucket" {
            let prefix = form_urlencoded::parse(cx.uri().query().unwrap_or("").as_bytes())
                .find(|(k, _)| k == "prefix")
                .map(|(_, v)| v.into_owned());
            if let Some(prefix) = prefix {
                context = context.with("s3:prefix", prefix);
            }
        }
        // Bucket policies are checked with this evaluator when they are put, so they parse.
        let policy = bucket
            .as_deref()
            .and_then(|b| self.store.policy(b))
            .flatten()
            .and_then(|text| Policy::parse(&text, true).ok());
        // A bucket being created is the caller's own; any other is its owner's.
        let owner = bucket
            .as_deref()
            .filter(|_| operation != "CreateBucket")
            .and_then(|b| self.store.owner(b));
        caller
            .authorize_in(
                action,
                &resource,
                owner.as_deref(),
                context,
                policy.as_ref(),
            )
            .map_err(|denial| {
                if denial.anonymous {
                    // S3 names no one to an anonymous caller.
                    s3s::s3_error!(AccessDenied, "Access Denied")
                } else {
                    s3s::s3_error!(AccessDenied, "{}", denial.s3_message())
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Result<SandboxConfig, SandboxError> {
        SandboxConfig::from_yaml_str(yaml)
    }

    #[test]
    fn identities_are_checked_when_the_config_is_loaded() {
        let ok = config(
            "account_id: '111111111111'\nidentities:\n  - access_key_id: AKIAOPERATOR\n    \
             secret_access_key: s\n    arn: arn:aws:iam::111111111111:role/ci\n    policies:\n      \
             - {Version: '2012-10-17', Statement: [{Effect: Allow, Action: 'es:*', Resource: '*'}]}\n      \
             - '{\"Statement\": {\"Effect\": \"Deny\", \"Action\": \"iam:*\", \"Resource\": \"*\"}}'\n",
        )
        .expect("valid");
        let identities = Identities::from_config(&ok).unwrap();
        let ci = identities.get("AKIAOPERATOR").unwrap();
        assert_eq!(
            ci.caller_arn(),
            "arn:aws:sts::111111111111:assumed-role/ci/sandbox-session"
        );
        assert!(ci.user_id().starts_with("AROA") && ci.user_id().ends_with(":sandbox-session"));
        assert!(
            ci.authorize("es:CreateDomain", "x", Context::default(), None)
                .is_ok()
        );
        let denied = ci
            .authorize(
                "iam:CreateRole",
                "arn:aws:iam::111111111111:role/x",
                Context::default(),
                None,
            )
            .unwrap_err();
        assert_eq!(
            denied.message(),
            "User: arn:aws:sts::111111111111:assumed-role/ci/sandbox-session is not authorized to \
             perform: iam:CreateRole on resource: arn:aws:iam::111111111111:role/x with an explicit \
             deny in an identity-based policy"
        );
        let admin = identities.default_identity();
        assert_eq!(admin.caller_arn(), "arn:aws:iam::111111111111:user/sandbox");
        assert!(
            admin
                .authorize("iam:DeleteRole", "*", Context::default(), None)
                .is_ok()
        );

        for (yaml, words) in [
            (
                "identities: [{access_key_id: K, secret_access_key: s, arn: 'arn:aws:iam::123456789012:group/g'}]",
                "arn must be arn:aws:iam::<12-digit account>:user/<name>",
            ),
            (
                "identities: [{access_key_id: AKIASANDBOXEXAMPLE01, secret_access_key: s, arn: 'arn:aws:iam::123456789012:user/u'}]",
                "is already used by another identity",
            ),
            (
                "identities: [{access_key_id: K, secret_access_key: s, arn: 'arn:aws:iam::123456789012:user/u', policies: [{Statement: [{Effect: Allow, Action: '*'}]}]}]",
                "identities[0] (arn:aws:iam::123456789012:user/u): policies[0] is not a valid identity-based policy: Syntax errors in policy: a statement needs Resource or NotResource",
            ),
        ] {
            let err = config(yaml).expect_err(yaml).to_string();
            assert!(err.contains(words), "{yaml}\n{err}");
        }
    }

    #[test]
    fn denials_say_which_kind_of_policy_failed_the_caller() {
        const DOMAIN: &str = "arn:aws:es:us-east-1:123456789012:domain/logs";
        const USER: &str = "arn:aws:iam::123456789012:user/ci";
        let resource = format!("{DOMAIN}/_search");
        let ask = |caller: &Caller, policy: Option<&Policy>| {
            caller
                .authorize("es:ESHttpPost", &resource, Context::default(), policy)
                .map_err(|d| d.es_http_message())
        };
        // Anonymous: only a resource-based policy could have let it in.
        assert_eq!(
            ask(&Caller::Anonymous, None),
            Err("User: anonymous is not authorized to perform: es:ESHttpPost because no resource-based policy allows the es:ESHttpPost action".into())
        );
        // A signer of the account: its identity policies could have.
        let limited = Identity {
            policies: Some(Vec::new()),
            ..Arc::try_unwrap(Identity::unlimited(USER)).unwrap()
        };
        let ci = Caller::Signed(Arc::new(limited));
        assert_eq!(
            ask(&ci, None),
            Err(format!(
                "User: {USER} is not authorized to perform: es:ESHttpPost because no identity-based policy allows the es:ESHttpPost action"
            ))
        );
        let deny = Policy::parse(
            &serde_json::json!({"Statement": [{"Effect": "Deny", "Principal": {"AWS": USER}, "Action": "es:ESHttpPost", "Resource": format!("{DOMAIN}/*")}]}).to_string(),
            true,
        )
        .unwrap();
        let admin = Caller::Signed(Identity::unlimited(USER));
        assert_eq!(ask(&admin, None), Ok(()));
        assert_eq!(
            ask(&admin, Some(&deny)),
            Err(format!(
                "User: {USER} is not authorized to perform: es:ESHttpPost with an explicit deny in a resource-based policy"
            ))
        );
    }

    #[test]
    fn s3_names_its_permissions_not_its_operations() {
        assert_eq!(s3_action("ListObjectsV2"), Some(("s3:ListBucket", false)));
        assert_eq!(s3_action("HeadBucket"), Some(("s3:ListBucket", false)));
        assert_eq!(
            s3_action("PutBucketEncryption"),
            Some(("s3:PutEncryptionConfiguration", false))
        );
        assert_eq!(s3_action("HeadObject"), Some(("s3:GetObject", true)));
    }
}
