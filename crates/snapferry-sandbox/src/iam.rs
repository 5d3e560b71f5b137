//! IAM, Query protocol (form-encoded request, XML response): the role operations snapferry needs,
//! with AWS's error codes and statuses. Every request is first checked against IAM's own model
//! ([`crate::model::iam`]: `ValidationError` with AWS's message). Policy documents are kept as
//! received (decoded) and returned URL-encoded, as IAM returns them.
//!
//! IAM is eventually consistent: IAM's own API reads its writes at once, but the other services
//! see a new role, a changed trust policy or a changed inline policy only `iam_propagation_secs`
//! (scaled) later. Each role keeps the versions it had and when each reaches the others;
//! [`IamStore::principal_state`] is what S3 sees of a principal, [`RoleDirectory`] what a domain
//! sees when it assumes the role to verify a repository — here, or in an external IAM.
//!
//! Each account has its own IAM: roles are kept by (account, name), and a request acts on the
//! caller's account. S3 checks a bucket policy's role principals in every account the sandbox
//! serves (one that has an identity, a seeded role or a seeded domain or bucket); a role of an
//! account it knows nothing of is taken as it is.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use percent_encoding::utf8_percent_encode;
use quick_xml::escape::escape;

use crate::auth::UNRESERVED;
use crate::clock::Clock;

const NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    pub path: String,
    pub id: String,
    pub arn: String,
    pub created: chrono::DateTime<chrono::Utc>,
    pub trust_policy: String,
    pub description: Option<String>,
    pub max_session_duration: u32,
    pub inline_policies: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// When the other services first see the role.
    visible_at: Instant,
    /// Trust-policy versions, each with when the other services see it.
    trust_seen: Vec<(Instant, String)>,
    /// Inline-policy versions (`None`: deleted), each with when the other services see it.
    policies_seen: BTreeMap<String, Vec<(Instant, Option<String>)>>,
}

/// The version the other services see at `now`: the last one that has reached them.
fn seen<T: Clone>(versions: &[(Instant, T)], now: Instant) -> Option<T> {
    versions
        .iter()
        .rev()
        .find(|(at, _)| *at <= now)
        .map(|(_, v)| v.clone())
}

/// What another service (S3 reading a bucket policy) makes of a principal ARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalState {
    /// A role the other services know.
    Known,
    /// A role IAM has created but the other services do not know yet.
    Propagating,
    /// No such role.
    Unknown,
    /// Not a role of an account the sandbox serves: nothing it can check.
    Foreign,
}

#[derive(Debug)]
pub struct IamStore {
    /// Roles by (account, name).
    roles: Mutex<BTreeMap<(String, String), Role>>,
    /// The accounts whose principals S3 can check.
    accounts: Mutex<std::collections::BTreeSet<String>>,
    clock: Arc<Clock>,
    /// How long a change takes to reach the other services (already scaled).
    propagation: Duration,
}

/// An IAM error: code, HTTP status, message.
#[derive(Debug, Clone, PartialEq)]
pub struct IamError {
    pub code: &'static str,
    pub status: u16,
    pub message: String,
}

impl IamError {
    fn new(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            status,
            message: message.into(),
        }
    }
    fn no_role(name: &str) -> Self {
        Self::new(
            "NoSuchEntity",
            404,
            format!("The role with name {name} cannot be found."),
        )
    }
    fn missing(param: &str) -> Self {
        Self::new(
            "ValidationError",
            400,
            format!(
                "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                lower_first(param)
            ),
        )
    }

    /// The XML error document.
    pub fn to_xml(&self, request_id: &str) -> String {
        let kind = if self.status >= 500 {
            "Receiver"
        } else {
            "Sender"
        };
        format!(
            "<ErrorResponse xmlns=\"{NS}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
            self.code,
            escape(&self.message)
        )
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_lowercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// Which IAM operation a request is and whether it mutates (for the log and fault rules).
pub fn classify(params: &BTreeMap<String, String>) -> (String, Option<String>, bool) {
    let action = params
        .get("Action")
        .cloned()
        .unwrap_or_else(|| "Unknown".into());
    let mutating = !(action.starts_with("Get") || action.starts_with("List"));
    (action, params.get("RoleName").cloned(), mutating)
}

pub fn url_encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// Checks a policy document the way IAM does for the cases snapferry can hit.
fn check_policy(doc: &str, trust: bool) -> Result<(), IamError> {
    let malformed = |m: &str| IamError::new("MalformedPolicyDocument", 400, m);
    let value: serde_json::Value =
        serde_json::from_str(doc).map_err(|_| malformed("This policy contains invalid Json"))?;
    let statements = match value.get("Statement") {
        Some(serde_json::Value::Array(a)) => a.clone(),
        Some(s @ serde_json::Value::Object(_)) => vec![s.clone()],
        _ => return Err(malformed("Syntax errors in policy.")),
    };
    for s in &statements {
        if s.get("Effect")
            .and_then(|e| e.as_str())
            .is_none_or(|e| e != "Allow" && e != "Deny")
        {
            return Err(malformed("Syntax errors in policy."));
        }
        if trust {
            if s.get("Resource").is_some() {
                return Err(malformed("Has prohibited field Resource"));
            }
            if s.get("Principal").is_none() {
                return Err(malformed(
                    "AssumeRolepolicy contained an invalid principal: missing Principal.",
                ));
            }
        } else if s.get("Principal").is_some() {
            return Err(malformed("Policy document should not specify a principal."));
        }
    }
    // What IAM keeps, the other services evaluate (a domain assuming the role, writing to the
    // bucket): it must read in the sandbox evaluator's grammar.
    crate::policy_eval::Policy::from_value(&value, trust).map_err(|e| malformed(&e.0))?;
    Ok(())
}

fn role_in<'a>(
    roles: &'a mut BTreeMap<(String, String), Role>,
    account: &str,
    name: &str,
) -> Result<&'a mut Role, IamError> {
    roles
        .get_mut(&(account.to_owned(), name.to_owned()))
        .ok_or_else(|| IamError::no_role(name))
}

/// The account and role name of a role ARN (the name is after the last `/` of the path).
pub fn role_key(arn: &str) -> Option<(String, String)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let path = resource.strip_prefix("role/")?;
    Some((
        account.to_owned(),
        path.rsplit('/').next().unwrap_or(path).to_owned(),
    ))
}

impl IamStore {
    /// An empty IAM whose changes reach the other services `propagation` (real time) later.
    pub fn new(clock: Arc<Clock>, propagation: Duration) -> Self {
        Self {
            roles: Mutex::new(BTreeMap::new()),
            accounts: Mutex::default(),
            clock,
            propagation,
        }
    }

    /// Makes `account` one whose principals S3 checks.
    pub fn serve_account(&self, account: &str) {
        self.accounts
            .lock()
            .expect("iam lock")
            .insert(account.to_owned());
    }

    /// Adds a role that exists at start-up (long since propagated).
    pub fn insert_seeded_role(&self, seed: &crate::config::SeedRole) {
        let Some((account, name)) = role_key(&seed.arn) else {
            return;
        };
        self.serve_account(&account);
        let (trust, policies) = seed.documents();
        let now = self.clock.now();
        let path = seed
            .arn
            .split_once(":role")
            .map(|(_, p)| p.trim_end_matches(name.as_str()).to_owned())
            .unwrap_or_else(|| "/".into());
        let role = Role {
            arn: seed.arn.clone(),
            id: format!(
                "AROA{}",
                &uuid::Uuid::new_v4().simple().to_string().to_uppercase()[..17]
            ),
            name: name.clone(),
            path,
            created: chrono::Utc::now(),
            trust_policy: trust.clone(),
            description: None,
            max_session_duration: seed.max_session_duration,
            policies_seen: policies
                .iter()
                .map(|(k, v)| (k.clone(), vec![(now, Some(v.clone()))]))
                .collect(),
            inline_policies: policies,
            tags: BTreeMap::new(),
            visible_at: now,
            trust_seen: vec![(now, trust)],
        };
        self.roles
            .lock()
            .expect("iam lock")
            .insert((account, name), role);
    }

    /// The role's `MaxSessionDuration`, if it exists.
    pub fn max_session_duration(&self, arn: &str) -> Option<u32> {
        let key = role_key(arn)?;
        self.roles
            .lock()
            .expect("iam lock")
            .get(&key)
            .filter(|r| r.arn == arn)
            .map(|r| r.max_session_duration)
    }

    /// The role `arn` as another service (a domain assuming it) sees it now: `None` when it does
    /// not exist or has not reached the other services yet; its policies as they have reached them.
    pub fn as_seen_by_services(&self, arn: &str) -> Option<RoleView> {
        let now = self.clock.now();
        let key = role_key(arn)?;
        let roles = self.roles.lock().expect("iam lock");
        let role = roles.get(&key).filter(|r| r.arn == arn)?;
        if now < role.visible_at {
            return None;
        }
        Some(RoleView {
            id: Some(role.id.clone()),
            trust_policy: seen(&role.trust_seen, now)?,
            inline_policies: role
                .policies_seen
                .values()
                .filter_map(|versions| seen(versions, now).flatten())
                .collect(),
        })
    }

    /// What S3 makes of a principal ARN in a bucket policy.
    pub fn principal_state(&self, arn: &str) -> PrincipalState {
        let Some(key) = role_key(arn) else {
            return PrincipalState::Foreign;
        };
        if !self.accounts.lock().expect("iam lock").contains(&key.0) {
            return PrincipalState::Foreign;
        }
        let now = self.clock.now();
        match self.roles.lock().expect("iam lock").get(&key) {
            Some(role) if role.arn == arn && now >= role.visible_at => PrincipalState::Known,
            Some(role) if role.arn == arn => PrincipalState::Propagating,
            _ => PrincipalState::Unknown,
        }
    }

    /// Adds a service's service-linked role (`/aws-service-role/<service>/<name>`, trusted by
    /// that service) unless it exists: what the service does for the account's first resource.
    pub fn insert_service_linked_role(&self, account_id: &str, name: &str, service: &str) {
        let path = format!("/aws-service-role/{service}/");
        let trust = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]
        })
        .to_string();
        // The service creates it for itself: nothing waits for it to propagate.
        let now = self.clock.now();
        self.serve_account(account_id);
        self.roles
            .lock()
            .expect("iam lock")
            .entry((account_id.to_owned(), name.to_owned()))
            .or_insert_with(|| Role {
                arn: format!("arn:aws:iam::{account_id}:role{path}{name}"),
                id: format!(
                    "AROA{}",
                    &uuid::Uuid::new_v4().simple().to_string().to_uppercase()[..17]
                ),
                name: name.to_owned(),
                path,
                created: chrono::Utc::now(),
                trust_policy: trust.clone(),
                description: None,
                max_session_duration: 3600,
                inline_policies: BTreeMap::new(),
                tags: BTreeMap::new(),
                visible_at: now,
                trust_seen: vec![(now, trust)],
                policies_seen: BTreeMap::new(),
            });
    }

    /// The ARN of role `name` of `account` as IAM holds it now (with its path), if it exists.
    pub fn role_arn(&self, account: &str, name: &str) -> Option<String> {
        self.roles
            .lock()
            .expect("iam lock")
            .get(&(account.to_owned(), name.to_owned()))
            .map(|r| r.arn.clone())
    }

    /// Executes one Query-protocol request; returns the `<Action>Result` inner XML.
    pub fn handle(
        &self,
        account_id: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<String, IamError> {
        let action = params.get("Action").map(String::as_str).unwrap_or("");
        let model = crate::model::iam();
        if model.has_operation(action) {
            model
                .query_input(action, params)
                .and_then(|input| model.validate(action, &input))
                .map_err(|e| IamError::new("ValidationError", 400, e.message()))?;
        }
        let get = |k: &str| params.get(k).cloned().ok_or_else(|| IamError::missing(k));
        let now = self.clock.now();
        let reaches_others = now + self.propagation;
        self.serve_account(account_id);
        let mut roles = self.roles.lock().expect("iam lock");
        let key = |name: &str| (account_id.to_owned(), name.to_owned());
        match action {
            "CreateRole" => {
                let name = get("RoleName")?;
                let trust = get("AssumeRolePolicyDocument")?;
                check_policy(&trust, true)?;
                if roles.contains_key(&key(&name)) {
                    return Err(IamError::new(
                        "EntityAlreadyExists",
                        409,
                        format!("Role with name {name} already exists."),
                    ));
                }
                let path = params.get("Path").cloned().unwrap_or_else(|| "/".into());
                let role = Role {
                    arn: format!("arn:aws:iam::{account_id}:role{path}{name}"),
                    id: format!(
                        "AROA{}",
                        &uuid::Uuid::new_v4().simple().to_string().to_uppercase()[..17]
                    ),
                    name: name.clone(),
                    path,
                    created: chrono::Utc::now(),
                    trust_policy: trust.clone(),
                    description: params.get("Description").cloned(),
                    max_session_duration: params
                        .get("MaxSessionDuration")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(3600),
                    inline_policies: BTreeMap::new(),
                    tags: tags_from(params, "Tags"),
                    visible_at: reaches_others,
                    trust_seen: vec![(reaches_others, trust.clone())],
                    policies_seen: BTreeMap::new(),
                };
                let xml = role_xml(&role);
                roles.insert(key(&name), role);
                Ok(xml)
            }
            "GetRole" => {
                let name = get("RoleName")?;
                Ok(role_xml(role_in(&mut roles, account_id, &name)?))
            }
            "UpdateAssumeRolePolicy" => {
                let name = get("RoleName")?;
                let doc = get("PolicyDocument")?;
                check_policy(&doc, true)?;
                let role = role_in(&mut roles, account_id, &name)?;
                role.trust_seen.push((reaches_others, doc.clone()));
                role.trust_policy = doc;
                Ok(String::new())
            }
            "DeleteRole" => {
                let name = get("RoleName")?;
                let role = role_in(&mut roles, account_id, &name)?;
                if !role.inline_policies.is_empty() {
                    return Err(IamError::new(
                        "DeleteConflict",
                        409,
                        "Cannot delete entity, must delete policies first.",
                    ));
                }
                roles.remove(&key(&name));
                Ok(String::new())
            }
            "PutRolePolicy" => {
                let name = get("RoleName")?;
                let policy = get("PolicyName")?;
                let doc = get("PolicyDocument")?;
                check_policy(&doc, false)?;
                let role = role_in(&mut roles, account_id, &name)?;
                role.policies_seen
                    .entry(policy.clone())
                    .or_default()
                    .push((reaches_others, Some(doc.clone())));
                role.inline_policies.insert(policy, doc);
                Ok(String::new())
            }
            "GetRolePolicy" => {
                let name = get("RoleName")?;
                let policy = get("PolicyName")?;
                let doc = role_in(&mut roles, account_id, &name)?
                    .inline_policies
                    .get(&policy)
                    .cloned()
                    .ok_or_else(|| {
                        IamError::new(
                            "NoSuchEntity",
                            404,
                            format!("The role policy with name {policy} cannot be found."),
                        )
                    })?;
                Ok(format!(
                    "<RoleName>{}</RoleName><PolicyName>{}</PolicyName><PolicyDocument>{}</PolicyDocument>",
                    escape(&name),
                    escape(&policy),
                    url_encode(&doc)
                ))
            }
            "DeleteRolePolicy" => {
                let name = get("RoleName")?;
                let policy = get("PolicyName")?;
                let role = role_in(&mut roles, account_id, &name)?;
                role.policies_seen
                    .entry(policy.clone())
                    .or_default()
                    .push((reaches_others, None));
                if role.inline_policies.remove(&policy).is_none() {
                    return Err(IamError::new(
                        "NoSuchEntity",
                        404,
                        format!("The role policy with name {policy} cannot be found."),
                    ));
                }
                Ok(String::new())
            }
            "ListRolePolicies" => {
                let name = get("RoleName")?;
                let members: String = role_in(&mut roles, account_id, &name)?
                    .inline_policies
                    .keys()
                    .map(|k| format!("<member>{}</member>", escape(k)))
                    .collect();
                Ok(format!(
                    "<IsTruncated>false</IsTruncated><PolicyNames>{members}</PolicyNames>"
                ))
            }
            "ListAttachedRolePolicies" => {
                // The sandbox has no managed policies to attach: a role it knows has none.
                let name = get("RoleName")?;
                role_in(&mut roles, account_id, &name)?;
                Ok("<AttachedPolicies/><IsTruncated>false</IsTruncated>".to_owned())
            }
            "TagRole" => {
                let name = get("RoleName")?;
                let tags = tags_from(params, "Tags");
                role_in(&mut roles, account_id, &name)?.tags.extend(tags);
                Ok(String::new())
            }
            "UntagRole" => {
                let name = get("RoleName")?;
                let role = role_in(&mut roles, account_id, &name)?;
                for key in list_from(params, "TagKeys") {
                    role.tags.remove(&key);
                }
                Ok(String::new())
            }
            "ListRoleTags" => {
                let name = get("RoleName")?;
                Ok(format!(
                    "<IsTruncated>false</IsTruncated><Tags>{}</Tags>",
                    tags_xml(&role_in(&mut roles, account_id, &name)?.tags)
                ))
            }
            other => Err(IamError::new(
                "InvalidAction",
                400,
                format!("Could not find operation {other} for version 2010-05-08"),
            )),
        }
    }
}

fn tags_from(params: &BTreeMap<String, String>, prefix: &str) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    for i in 1.. {
        let Some(key) = params.get(&format!("{prefix}.member.{i}.Key")) else {
            break;
        };
        let value = params
            .get(&format!("{prefix}.member.{i}.Value"))
            .cloned()
            .unwrap_or_default();
        tags.insert(key.clone(), value);
    }
    tags
}

fn list_from(params: &BTreeMap<String, String>, prefix: &str) -> Vec<String> {
    (1..)
        .map_while(|i| params.get(&format!("{prefix}.member.{i}")).cloned())
        .collect()
}

fn tags_xml(tags: &BTreeMap<String, String>) -> String {
    tags.iter()
        .map(|(k, v)| {
            format!(
                "<member><Key>{}</Key><Value>{}</Value></member>",
                escape(k),
                escape(v)
            )
        })
        .collect()
}

fn role_xml(role: &Role) -> String {
    let description = role
        .description
        .as_deref()
        .map(|d| format!("<Description>{}</Description>", escape(d)))
        .unwrap_or_default();
    let tags = if role.tags.is_empty() {
        String::new()
    } else {
        format!("<Tags>{}</Tags>", tags_xml(&role.tags))
    };
    format!(
        "<Role><Path>{}</Path><RoleName>{}</RoleName><RoleId>{}</RoleId><Arn>{}</Arn><CreateDate>{}</CreateDate><AssumeRolePolicyDocument>{}</AssumeRolePolicyDocument>{description}<MaxSessionDuration>{}</MaxSessionDuration>{tags}</Role>",
        escape(&role.path),
        escape(&role.name),
        role.id,
        escape(&role.arn),
        role.created
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        url_encode(&role.trust_policy),
        role.max_session_duration,
    )
}

/// Wraps an operation's result in IAM's response envelope.
pub fn response_xml(action: &str, result: &str, request_id: &str) -> String {
    let result = if result.is_empty() {
        String::new()
    } else {
        format!("<{action}Result>{result}</{action}Result>")
    };
    format!(
        "<{action}Response xmlns=\"{NS}\">{result}<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
    )
}

/// A role as a domain sees it when checking a repository registration.
#[derive(Debug, Clone)]
pub struct RoleView {
    /// The role's id (`AROA…`), when the directory says it.
    pub id: Option<String>,
    pub trust_policy: String,
    pub inline_policies: Vec<String>,
}

/// Where a domain looks roles up: the sandbox's IAM or an external one.
#[derive(Debug, Clone)]
pub enum RoleDirectory {
    Local(Arc<IamStore>),
    External(aws_sdk_iam::Client),
}

impl RoleDirectory {
    /// The role named by `arn`, `Ok(None)` when it does not exist.
    pub async fn role_by_arn(&self, arn: &str) -> Result<Option<RoleView>, String> {
        let name = arn.rsplit('/').next().unwrap_or(arn);
        match self {
            Self::Local(store) => Ok(store.as_seen_by_services(arn)),
            Self::External(client) => {
                let role = match client.get_role().role_name(name).send().await {
                    Ok(out) => match out.role {
                        Some(r) => r,
                        None => return Ok(None),
                    },
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_no_such_entity_exception()) =>
                    {
                        return Ok(None);
                    }
                    Err(e) => {
                        return Err(format!("{}", aws_sdk_iam::error::DisplayErrorContext(e)));
                    }
                };
                let decode = |s: &str| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8_lossy()
                        .into_owned()
                };
                let mut inline = Vec::new();
                let names = client
                    .list_role_policies()
                    .role_name(name)
                    .send()
                    .await
                    .map_err(|e| format!("{}", aws_sdk_iam::error::DisplayErrorContext(e)))?;
                for policy in names.policy_names() {
                    let doc = client
                        .get_role_policy()
                        .role_name(name)
                        .policy_name(policy)
                        .send()
                        .await
                        .map_err(|e| format!("{}", aws_sdk_iam::error::DisplayErrorContext(e)))?;
                    inline.push(decode(doc.policy_document()));
                }
                Ok(Some(RoleView {
                    id: Some(role.role_id().to_owned()),
                    trust_policy: decode(role.assume_role_policy_document().unwrap_or("")),
                    inline_policies: inline,
                }))
            }
        }
    }
}
