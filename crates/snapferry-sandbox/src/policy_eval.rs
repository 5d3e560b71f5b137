//! IAM policy evaluation, as AWS does it for one account: an explicit `Deny` in any applicable
//! policy wins; otherwise an `Allow` in an identity-based policy or in a resource-based policy
//! that names the caller allows; otherwise the request is implicitly denied. This is the one
//! evaluator of the sandbox, and [`evaluate`] its one decision ("resource-based ∪
//! identity-based, explicit deny anywhere wins"): identity policies from the configuration
//! ([`crate::identity`]), bucket policies (S3's access hook, and a domain writing snapshots),
//! domain access policies (the gateway, [`crate::access_policy`]) and role trust policies (a
//! domain assuming the snapshot role) are all read and decided with it.
//!
//! What a statement may say: `Effect`, `Action`/`NotAction` and `Resource`/`NotResource` with
//! `*` and `?` wildcards (actions case-insensitively, resources case-sensitively),
//! `Principal`/`NotPrincipal` in resource-based policies (`*`, `AWS` accounts, users and roles,
//! `Service`), and `Condition` with the operators IAM documents for strings, ARNs, booleans,
//! numbers, dates, IP addresses and `Null`, their `…IfExists` forms and the
//! `ForAnyValue:`/`ForAllValues:` set qualifiers; a key the request does not carry matches as
//! in IAM (only `…IfExists` and negated operators hold without it). A policy that uses anything
//! else is refused when it is loaded ([`Policy::parse`]), as IAM refuses it, rather than
//! silently evaluated to something. Policy variables (`${aws:username}`) are not expanded.
//!
//! A resource-based policy that names an account (`123456789012`, `arn:aws:iam::…:root`)
//! rather than a principal only delegates to that account: its `Allow` lets nobody in by
//! itself (the caller's identity policies must allow), its `Deny` applies to everyone in it.
//!
//! Across accounts ([`evaluate_across`]: the caller in one account, the resource in another)
//! AWS wants both sides: the caller's identity policies must allow *and* the resource's policy
//! must grant the caller or the caller's account; either alone is an implicit deny.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

/// Why a policy document cannot be used, in IAM's words where IAM has them.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

fn bad(message: impl Into<String>) -> PolicyError {
    PolicyError(message.into())
}

/// One parsed policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    statements: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq)]
struct Statement {
    allow: bool,
    actions: Matcher,
    resources: Option<Matcher>,
    principals: Option<PrincipalMatcher>,
    conditions: Vec<Condition>,
}

/// `Action` (positive) or `NotAction` (negated), and likewise for resources.
#[derive(Debug, Clone, PartialEq)]
struct Matcher {
    negated: bool,
    patterns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct PrincipalMatcher {
    negated: bool,
    /// `"*"` as the whole principal.
    anyone: bool,
    /// Values of the `AWS` key: account ids, account root ARNs, user and role ARNs, `*`.
    aws: Vec<String>,
    /// Values of the `Service` key (`es.amazonaws.com`).
    services: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct Condition {
    operator: Operator,
    if_exists: bool,
    set: SetQualifier,
    key: String,
    values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum SetQualifier {
    Single,
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Operator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Bool,
    IpAddress,
    NotIpAddress,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Null,
}

impl Operator {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "StringEquals" => Self::StringEquals,
            "StringNotEquals" => Self::StringNotEquals,
            "StringEqualsIgnoreCase" => Self::StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => Self::StringNotEqualsIgnoreCase,
            "StringLike" => Self::StringLike,
            "StringNotLike" => Self::StringNotLike,
            "ArnEquals" => Self::ArnEquals,
            "ArnLike" => Self::ArnLike,
            "ArnNotEquals" => Self::ArnNotEquals,
            "ArnNotLike" => Self::ArnNotLike,
            "Bool" => Self::Bool,
            "IpAddress" => Self::IpAddress,
            "NotIpAddress" => Self::NotIpAddress,
            "NumericEquals" => Self::NumericEquals,
            "NumericNotEquals" => Self::NumericNotEquals,
            "NumericLessThan" => Self::NumericLessThan,
            "NumericLessThanEquals" => Self::NumericLessThanEquals,
            "NumericGreaterThan" => Self::NumericGreaterThan,
            "NumericGreaterThanEquals" => Self::NumericGreaterThanEquals,
            "DateEquals" => Self::DateEquals,
            "DateNotEquals" => Self::DateNotEquals,
            "DateLessThan" => Self::DateLessThan,
            "DateLessThanEquals" => Self::DateLessThanEquals,
            "DateGreaterThan" => Self::DateGreaterThan,
            "DateGreaterThanEquals" => Self::DateGreaterThanEquals,
            "Null" => Self::Null,
            _ => return None,
        })
    }

    /// Negated operators hold when *no* value matches (and when the key is absent).
    fn negated(self) -> bool {
        matches!(
            self,
            Self::StringNotEquals
                | Self::StringNotEqualsIgnoreCase
                | Self::StringNotLike
                | Self::ArnNotEquals
                | Self::ArnNotLike
                | Self::NotIpAddress
                | Self::NumericNotEquals
                | Self::DateNotEquals
        )
    }

    /// Whether one request value matches one policy value (before negation).
    fn matches(self, policy: &str, request: &str) -> bool {
        use Operator as O;
        let number = |s: &str| s.trim().parse::<f64>().ok();
        let numeric = |cmp: fn(f64, f64) -> bool| match (number(request), number(policy)) {
            (Some(r), Some(p)) => cmp(r, p),
            _ => false,
        };
        let date = |cmp: fn(i64, i64) -> bool| match (epoch_millis(request), epoch_millis(policy)) {
            (Some(r), Some(p)) => cmp(r, p),
            _ => false,
        };
        match self {
            O::StringEquals | O::StringNotEquals => policy == request,
            O::StringEqualsIgnoreCase | O::StringNotEqualsIgnoreCase => {
                policy.eq_ignore_ascii_case(request)
            }
            O::StringLike | O::StringNotLike => glob(policy, request),
            O::ArnEquals | O::ArnNotEquals | O::ArnLike | O::ArnNotLike => {
                arn_like(policy, request)
            }
            O::Bool => policy.eq_ignore_ascii_case(request),
            O::IpAddress | O::NotIpAddress => cidr_contains(policy, request),
            O::NumericEquals | O::NumericNotEquals => numeric(|r, p| r == p),
            O::NumericLessThan => numeric(|r, p| r < p),
            O::NumericLessThanEquals => numeric(|r, p| r <= p),
            O::NumericGreaterThan => numeric(|r, p| r > p),
            O::NumericGreaterThanEquals => numeric(|r, p| r >= p),
            O::DateEquals | O::DateNotEquals => date(|r, p| r == p),
            O::DateLessThan => date(|r, p| r < p),
            O::DateLessThanEquals => date(|r, p| r <= p),
            O::DateGreaterThan => date(|r, p| r > p),
            O::DateGreaterThanEquals => date(|r, p| r >= p),
            O::Null => false,
        }
    }
}

/// A date condition value: ISO 8601 (`2026-01-01T00:00:00Z`, or a date alone) or epoch seconds.
fn epoch_millis(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return Some(seconds * 1000);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

/// A string or an array of strings (booleans and numbers are read as their JSON text, as IAM
/// reads `"Bool": {"aws:SecureTransport": false}`).
fn strings(value: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    let one = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(bad(format!(
            "Syntax errors in policy: {what} must be a string or a list of strings"
        ))),
    };
    match value {
        Value::Array(items) => items.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

impl Policy {
    /// Parses a policy document (JSON text), refusing what IAM would refuse and what this
    /// evaluator does not understand. `resource_based` allows (and requires) `Principal`.
    pub fn parse(text: &str, resource_based: bool) -> Result<Self, PolicyError> {
        let value: Value =
            serde_json::from_str(text).map_err(|_| bad("This policy contains invalid Json"))?;
        Self::from_value(&value, resource_based)
    }

    /// As [`Policy::parse`], from a JSON value.
    pub fn from_value(value: &Value, resource_based: bool) -> Result<Self, PolicyError> {
        let statements = match value.get("Statement") {
            Some(Value::Array(a)) => a.clone(),
            Some(s @ Value::Object(_)) => vec![s.clone()],
            _ => return Err(bad("Syntax errors in policy: Statement is missing")),
        };
        let statements = statements
            .iter()
            .map(|s| Statement::parse(s, resource_based))
            .collect::<Result<_, _>>()?;
        Ok(Self { statements })
    }

    /// Whether the policy lets anyone in from anywhere: an `Allow` for principal `*` without an
    /// `IpAddress` condition on `aws:SourceIp`. OpenSearch Service refuses such a domain access
    /// policy on a public domain without fine-grained access control.
    pub fn is_open(&self) -> bool {
        self.statements.iter().any(|s| {
            s.allow
                && s.principals
                    .as_ref()
                    .is_some_and(|p| !p.negated && (p.anyone || p.aws.iter().any(|a| a == "*")))
                && !s
                    .conditions
                    .iter()
                    .any(|c| c.operator == Operator::IpAddress && c.key == "aws:sourceip")
        })
    }
}

fn matcher(s: &Value, key: &str, not_key: &str) -> Result<Option<Matcher>, PolicyError> {
    match (s.get(key), s.get(not_key)) {
        (Some(_), Some(_)) => Err(bad(format!(
            "Syntax errors in policy: a statement has both {key} and {not_key}"
        ))),
        (Some(v), None) => Ok(Some(Matcher {
            negated: false,
            patterns: strings(v, key)?,
        })),
        (None, Some(v)) => Ok(Some(Matcher {
            negated: true,
            patterns: strings(v, not_key)?,
        })),
        (None, None) => Ok(None),
    }
}

fn principal(value: &Value, negated: bool) -> Result<PrincipalMatcher, PolicyError> {
    match value {
        Value::String(s) if s == "*" => Ok(PrincipalMatcher {
            negated,
            anyone: true,
            aws: Vec::new(),
            services: Vec::new(),
        }),
        Value::Object(o) => Ok(PrincipalMatcher {
            negated,
            anyone: false,
            aws: match o.get("AWS") {
                Some(v) => strings(v, "Principal.AWS")?,
                None => Vec::new(),
            },
            services: match o.get("Service") {
                Some(v) => strings(v, "Principal.Service")?,
                None => Vec::new(),
            },
        }),
        _ => Err(bad("Invalid principal in policy")),
    }
}

impl Statement {
    fn parse(s: &Value, resource_based: bool) -> Result<Self, PolicyError> {
        let allow = match s.get("Effect").and_then(Value::as_str) {
            Some("Allow") => true,
            Some("Deny") => false,
            _ => return Err(bad("Syntax errors in policy: Effect must be Allow or Deny")),
        };
        let actions = matcher(s, "Action", "NotAction")?
            .ok_or_else(|| bad("Syntax errors in policy: a statement needs Action or NotAction"))?;
        let resources = matcher(s, "Resource", "NotResource")?;
        if resources.is_none() && !resource_based {
            return Err(bad(
                "Syntax errors in policy: a statement needs Resource or NotResource",
            ));
        }
        let principals = match (s.get("Principal"), s.get("NotPrincipal")) {
            (Some(p), None) => Some(principal(p, false)?),
            (None, Some(p)) => Some(principal(p, true)?),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(bad(
                    "Syntax errors in policy: a statement has both Principal and NotPrincipal",
                ));
            }
        };
        match (&principals, resource_based) {
            (Some(_), false) => {
                return Err(bad("Policy document should not specify a principal."));
            }
            (None, true) => return Err(bad("Missing required field Principal")),
            _ => {}
        }
        let mut conditions = Vec::new();
        if let Some(block) = s.get("Condition") {
            let Some(block) = block.as_object() else {
                return Err(bad("Syntax errors in policy: Condition must be an object"));
            };
            for (name, keys) in block {
                let (set, rest) = if let Some(r) = name.strip_prefix("ForAnyValue:") {
                    (SetQualifier::ForAnyValue, r)
                } else if let Some(r) = name.strip_prefix("ForAllValues:") {
                    (SetQualifier::ForAllValues, r)
                } else {
                    (SetQualifier::Single, name.as_str())
                };
                let (base, if_exists) = match rest.strip_suffix("IfExists") {
                    Some(b) => (b, true),
                    None => (rest, false),
                };
                let operator = Operator::parse(base).ok_or_else(|| {
                    bad(format!(
                        "Syntax errors in policy: unknown condition operator {name}"
                    ))
                })?;
                let Some(keys) = keys.as_object() else {
                    return Err(bad(format!(
                        "Syntax errors in policy: condition {name} must map keys to values"
                    )));
                };
                for (key, values) in keys {
                    conditions.push(Condition {
                        operator,
                        if_exists,
                        set,
                        key: key.to_ascii_lowercase(),
                        values: strings(values, "a condition value")?,
                    });
                }
            }
        }
        Ok(Self {
            allow,
            actions,
            resources,
            principals,
            conditions,
        })
    }

    /// `account_grants`: whether an `Allow` naming the caller's account counts as a grant (a
    /// resource policy of another account) rather than a delegation (the caller's own).
    fn applies_with(&self, request: &Request<'_>, account_grants: bool) -> bool {
        let action_hit = self.actions.patterns.iter().any(|p| {
            glob(
                &p.to_ascii_lowercase(),
                &request.action.to_ascii_lowercase(),
            )
        });
        if action_hit == self.actions.negated {
            return false;
        }
        if let Some(resources) = &self.resources {
            let hit = resources.patterns.iter().any(|p| glob(p, request.resource));
            if hit == resources.negated {
                return false;
            }
        }
        if let Some(p) = &self.principals {
            let named = p.names(request.principal);
            let hit = if p.negated {
                named == PrincipalMatch::No
            } else if self.allow && !account_grants {
                // Naming the caller's account only delegates to its identity policies.
                named == PrincipalMatch::Named
            } else {
                named != PrincipalMatch::No
            };
            if !hit {
                return false;
            }
        }
        self.conditions.iter().all(|c| c.holds(&request.context))
    }
}

/// How a statement's principal relates to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PrincipalMatch {
    /// The caller itself (or everyone).
    Named,
    /// The caller's account.
    Account,
    No,
}

impl PrincipalMatcher {
    fn names(&self, caller: &Principal) -> PrincipalMatch {
        if self.anyone
            || self.aws.iter().any(|p| p == "*")
            || self.aws.iter().any(|p| caller.arns.contains(p))
            || self.services.iter().any(|s| caller.services.contains(s))
        {
            return PrincipalMatch::Named;
        }
        let account = caller.account.as_deref().is_some_and(|account| {
            self.aws
                .iter()
                .any(|p| p == account || *p == format!("arn:aws:iam::{account}:root"))
        });
        if account {
            PrincipalMatch::Account
        } else {
            PrincipalMatch::No
        }
    }
}

impl Condition {
    fn holds(&self, context: &Context) -> bool {
        let present = context.values.get(&self.key);
        if self.operator == Operator::Null {
            // `"Null": {"k": "true"}` holds when the key is absent.
            let want_absent = self.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
            return want_absent == present.is_none();
        }
        let Some(request_values) = present.filter(|v| !v.is_empty()) else {
            return match self.set {
                // No values: ForAllValues holds vacuously; the rest hold only for IfExists
                // and negated operators.
                SetQualifier::ForAllValues => true,
                _ => self.if_exists || self.operator.negated(),
            };
        };
        let value_matches = |r: &str| self.values.iter().any(|p| self.operator.matches(p, r));
        let negated = self.operator.negated();
        match self.set {
            SetQualifier::ForAllValues => {
                request_values.iter().all(|r| value_matches(r) != negated)
            }
            SetQualifier::Single | SetQualifier::ForAnyValue => {
                if negated {
                    !request_values.iter().any(|r| value_matches(r))
                } else {
                    request_values.iter().any(|r| value_matches(r))
                }
            }
        }
    }
}

/// IAM's wildcard match: `*` any run of characters (colons included), `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// `ArnLike`/`ArnEquals`: the six colon-separated parts are compared one by one, each with
/// wildcards (the resource part keeps its colons).
fn arn_like(pattern: &str, arn: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    p.len() == 6 && a.len() == 6 && p.iter().zip(&a).all(|(p, a)| glob(p, a))
}

/// `IpAddress`: a CIDR block (or a single address) containing the request's address.
fn cidr_contains(block: &str, address: &str) -> bool {
    let Ok(addr) = address.trim().parse::<IpAddr>() else {
        return false;
    };
    let (net, bits) = match block.split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().ok()),
        None => (block, None),
    };
    let Ok(net) = net.trim().parse::<IpAddr>() else {
        return false;
    };
    let masked = |bytes: &[u8], bits: u32| -> Vec<u8> {
        bytes
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let keep = bits.saturating_sub(i as u32 * 8).min(8);
                if keep == 0 {
                    0
                } else {
                    b & (0xffu8 << (8 - keep))
                }
            })
            .collect()
    };
    match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let bits = bits.unwrap_or(32).min(32);
            masked(&n.octets(), bits) == masked(&a.octets(), bits)
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let bits = bits.unwrap_or(128).min(128);
            masked(&n.octets(), bits) == masked(&a.octets(), bits)
        }
        _ => false,
    }
}

/// Condition keys of one request (names are case-insensitive, as IAM's are).
#[derive(Debug, Clone, Default)]
pub struct Context {
    values: BTreeMap<String, Vec<String>>,
}

impl Context {
    /// Sets a key to one value.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.values
            .insert(key.to_ascii_lowercase(), vec![value.into()]);
        self
    }

    /// Sets a multi-valued key.
    pub fn with_all(mut self, key: &str, values: Vec<String>) -> Self {
        self.values.insert(key.to_ascii_lowercase(), values);
        self
    }
}

/// Who is asking, as resource-based policies name them.
#[derive(Debug, Clone, Default)]
pub struct Principal {
    /// The caller's account; `None` for an anonymous caller or a service.
    pub account: Option<String>,
    /// Every ARN a `Principal` may use for the caller: a user's ARN, or for a role session
    /// both the role's ARN and the session's `assumed-role` ARN.
    pub arns: Vec<String>,
    /// The service principal names of a service calling for itself (`es.amazonaws.com`).
    pub services: Vec<String>,
}

impl Principal {
    /// An IAM user or role session of `account`.
    pub fn iam(account: &str, arns: Vec<String>) -> Self {
        Self {
            account: Some(account.to_owned()),
            arns,
            services: Vec::new(),
        }
    }

    /// An unsigned caller: only `"*"` names it.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// A service acting for itself (assuming a role it is trusted with).
    pub fn service(names: &[&str]) -> Self {
        Self {
            services: names.iter().map(|n| (*n).to_owned()).collect(),
            ..Self::default()
        }
    }
}

/// One authorization question: may `principal` do `action` on `resource`?
pub struct Request<'a> {
    pub principal: &'a Principal,
    pub action: &'a str,
    pub resource: &'a str,
    pub context: Context,
}

/// What the policies say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Nothing allows it.
    ImplicitDeny,
    /// Across accounts: the caller's identity policies allow it, but the resource's policy
    /// (in the other account) grants the caller nothing.
    NoResourceGrant,
    /// A `Deny` statement matched: in an identity-based policy, or in a resource-based one.
    ExplicitDeny {
        in_resource_policy: bool,
    },
}

fn statements_say(policies: &[&Policy], request: &Request<'_>) -> (bool, bool) {
    statements_say_with(policies, request, false)
}

fn statements_say_with(
    policies: &[&Policy],
    request: &Request<'_>,
    account_grants: bool,
) -> (bool, bool) {
    let (mut allow, mut deny) = (false, false);
    for s in policies.iter().flat_map(|p| &p.statements) {
        if s.applies_with(request, account_grants) {
            if s.allow {
                allow = true;
            } else {
                deny = true;
            }
        }
    }
    (allow, deny)
}

/// Evaluates a same-account request. `identity` is `None` for an identity with no policy
/// limits (the sandbox's administrator), which is allowed whatever no resource policy denies.
pub fn evaluate(
    identity: Option<&[Policy]>,
    resource_policies: &[&Policy],
    request: &Request<'_>,
) -> Decision {
    let (identity_allow, identity_deny) = match identity {
        None => (true, false),
        Some(policies) => statements_say(&policies.iter().collect::<Vec<_>>(), request),
    };
    let (resource_allow, resource_deny) = statements_say(resource_policies, request);
    if identity_deny {
        Decision::ExplicitDeny {
            in_resource_policy: false,
        }
    } else if resource_deny {
        Decision::ExplicitDeny {
            in_resource_policy: true,
        }
    } else if identity_allow || resource_allow {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

/// Whether resource-based policies grant the request by themselves: an `Allow` naming the
/// caller or its account, and no `Deny`. A role's trust policy must always do so for
/// `AssumeRole`, whatever the caller's identity policies say.
pub fn grants(resource_policies: &[&Policy], request: &Request<'_>) -> bool {
    let (allow, deny) = statements_say_with(resource_policies, request, true);
    allow && !deny
}

/// Evaluates a request on a resource owned by `resource_account`: the same-account decision
/// ([`evaluate`]) when the caller is of that account (or no owner is known); across accounts,
/// an explicit deny anywhere still wins, and otherwise the caller's identity policies must
/// allow *and* the resource policy must grant the caller or its account.
pub fn evaluate_across(
    identity: Option<&[Policy]>,
    resource_policies: &[&Policy],
    request: &Request<'_>,
    resource_account: Option<&str>,
) -> Decision {
    let same = match (resource_account, request.principal.account.as_deref()) {
        (Some(owner), Some(caller)) => owner == caller,
        _ => true,
    };
    if same {
        return evaluate(identity, resource_policies, request);
    }
    let (identity_allow, identity_deny) = match identity {
        None => (true, false),
        Some(policies) => statements_say(&policies.iter().collect::<Vec<_>>(), request),
    };
    let (resource_allow, resource_deny) = statements_say_with(resource_policies, request, true);
    if identity_deny {
        Decision::ExplicitDeny {
            in_resource_policy: false,
        }
    } else if resource_deny {
        Decision::ExplicitDeny {
            in_resource_policy: true,
        }
    } else if !identity_allow {
        Decision::ImplicitDeny
    } else if !resource_allow {
        Decision::NoResourceGrant
    } else {
        Decision::Allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn across_accounts_both_the_identity_and_the_resource_policy_must_allow() {
        const B_ROLE: &str = "arn:aws:iam::222222222222:role/reader";
        let principal = Principal::iam("222222222222", vec![B_ROLE.into()]);
        let request = Request {
            principal: &principal,
            action: "s3:GetObject",
            resource: "arn:aws:s3:::a-bucket/k",
            context: Context::default(),
        };
        let identity = Policy::parse(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#,
            false,
        )
        .unwrap();
        let grants = |principal: &str| {
            Policy::parse(
                &format!(
                    r#"{{"Statement":{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"s3:GetObject","Resource":"arn:aws:s3:::a-bucket/*"}}}}"#
                ),
                true,
            )
            .unwrap()
        };
        let owner = Some("111111111111");
        let ids = std::slice::from_ref(&identity);
        // The bucket policy grants the role, or its whole account: allowed with the identity.
        for grant in [grants(B_ROLE), grants("arn:aws:iam::222222222222:root")] {
            assert_eq!(
                evaluate_across(Some(ids), &[&grant], &request, owner),
                Decision::Allow
            );
            // Without the identity's own allow it is not.
            assert_eq!(
                evaluate_across(Some(&[]), &[&grant], &request, owner),
                Decision::ImplicitDeny
            );
        }
        // A bucket policy granting someone else: the identity alone is not enough.
        let other = grants("arn:aws:iam::111111111111:role/writer");
        assert_eq!(
            evaluate_across(Some(ids), &[&other], &request, owner),
            Decision::NoResourceGrant
        );
        assert_eq!(
            evaluate_across(Some(ids), &[], &request, owner),
            Decision::NoResourceGrant
        );
        // In its own account the identity policy alone allows.
        assert_eq!(
            evaluate_across(Some(ids), &[], &request, Some("222222222222")),
            Decision::Allow
        );
    }

    fn user() -> Principal {
        Principal::iam(
            "111111111111",
            vec!["arn:aws:iam::111111111111:user/ci".into()],
        )
    }

    fn decide(policy: &str, action: &str, resource: &str, context: Context) -> Decision {
        let policy = Policy::parse(policy, false).expect("policy parses");
        let principal = user();
        evaluate(
            Some(std::slice::from_ref(&policy)),
            &[],
            &Request {
                principal: &principal,
                action,
                resource,
                context,
            },
        )
    }

    const ROLE: &str = "arn:aws:iam::111111111111:role/orders-snapshot-role";

    #[test]
    fn allow_deny_and_implicit_deny() {
        let p = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"iam:*","Resource":"*"},
            {"Effect":"Deny","Action":"iam:DeleteRole","Resource":"*"}]}"#;
        assert_eq!(
            decide(p, "iam:CreateRole", ROLE, Context::default()),
            Decision::Allow
        );
        assert_eq!(
            decide(p, "iam:DeleteRole", ROLE, Context::default()),
            Decision::ExplicitDeny {
                in_resource_policy: false
            }
        );
        assert_eq!(
            decide(p, "s3:GetObject", "arn:aws:s3:::b/k", Context::default()),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn actions_match_case_insensitively_with_wildcards_and_resources_case_sensitively() {
        let p = r#"{"Statement":{"Effect":"Allow","Action":["IAM:get*","es:ESHttp???"],
            "Resource":["arn:aws:iam::111111111111:role/orders-*","arn:aws:es:*:*:domain/orders-prod/*"]}}"#;
        assert_eq!(
            decide(p, "iam:GetRole", ROLE, Context::default()),
            Decision::Allow
        );
        assert_eq!(
            decide(
                p,
                "iam:GetRole",
                "arn:aws:iam::111111111111:role/Orders-x",
                Context::default()
            ),
            Decision::ImplicitDeny,
            "resources are case-sensitive"
        );
        let domain = "arn:aws:es:eu-west-1:111111111111:domain/orders-prod/_snapshot/r";
        assert_eq!(
            decide(p, "es:ESHttpPut", domain, Context::default()),
            Decision::Allow
        );
        assert_eq!(
            decide(p, "es:ESHttpPost", domain, Context::default()),
            Decision::ImplicitDeny,
            "? is exactly one character"
        );
        assert_eq!(
            decide(
                p,
                "es:ESHttpGet",
                "arn:aws:es:eu-west-1:111111111111:domain/orders-prod/",
                Context::default()
            ),
            Decision::Allow,
            "the domain's root path matches domain/<name>/*"
        );
    }

    #[test]
    fn not_action_and_not_resource_invert_the_match() {
        let p = r#"{"Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"},
            {"Effect":"Deny","Action":"s3:*","NotResource":"arn:aws:s3:::mine/*"}]}"#;
        assert_eq!(
            decide(p, "iam:CreateRole", ROLE, Context::default()),
            Decision::ImplicitDeny
        );
        assert_eq!(
            decide(p, "s3:GetObject", "arn:aws:s3:::mine/k", Context::default()),
            Decision::Allow
        );
        assert_eq!(
            decide(
                p,
                "s3:GetObject",
                "arn:aws:s3:::theirs/k",
                Context::default()
            ),
            Decision::ExplicitDeny {
                in_resource_policy: false
            }
        );
    }

    #[test]
    fn conditions_of_the_operators_the_docs_use() {
        let p = r#"{"Statement":[
            {"Effect":"Allow","Action":"iam:PassRole","Resource":"*",
             "Condition":{"StringEquals":{"iam:PassedToService":"es.amazonaws.com"}}},
            {"Effect":"Allow","Action":"s3:ListBucket","Resource":"*",
             "Condition":{"StringLike":{"s3:prefix":["snapferry/","snapferry/*"]}}},
            {"Effect":"Allow","Action":"kms:CreateGrant","Resource":"*",
             "Condition":{"Bool":{"kms:GrantIsForAWSResource":true},
                          "ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/c?"}}},
            {"Effect":"Allow","Action":"es:ESHttpGet","Resource":"*",
             "Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]}}}]}"#;
        let ctx = || Context::default();
        assert_eq!(
            decide(
                p,
                "iam:PassRole",
                ROLE,
                ctx().with("iam:PassedToService", "es.amazonaws.com")
            ),
            Decision::Allow
        );
        assert_eq!(
            decide(
                p,
                "iam:PassRole",
                ROLE,
                ctx().with("iam:PassedToService", "ec2.amazonaws.com")
            ),
            Decision::ImplicitDeny
        );
        assert_eq!(
            decide(p, "iam:PassRole", ROLE, ctx()),
            Decision::ImplicitDeny,
            "an absent key fails StringEquals"
        );
        assert_eq!(
            decide(
                p,
                "s3:ListBucket",
                "arn:aws:s3:::b",
                ctx().with("s3:prefix", "snapferry/x")
            ),
            Decision::Allow
        );
        assert_eq!(
            decide(
                p,
                "s3:ListBucket",
                "arn:aws:s3:::b",
                ctx().with("s3:prefix", "other/")
            ),
            Decision::ImplicitDeny
        );
        let grant = |for_aws: &str, arn: &str| {
            decide(
                p,
                "kms:CreateGrant",
                "arn:aws:kms:eu-west-1:111111111111:key/k",
                ctx()
                    .with("kms:GrantIsForAWSResource", for_aws)
                    .with("aws:PrincipalArn", arn),
            )
        };
        assert_eq!(
            grant("true", "arn:aws:iam::111111111111:user/ci"),
            Decision::Allow
        );
        assert_eq!(
            grant("false", "arn:aws:iam::111111111111:user/ci"),
            Decision::ImplicitDeny
        );
        assert_eq!(
            grant("true", "arn:aws:iam::111111111111:role/ci"),
            Decision::ImplicitDeny,
            "ArnLike compares part by part"
        );
        let get = |ip: &str| decide(p, "es:ESHttpGet", "x", ctx().with("aws:SourceIp", ip));
        assert_eq!(get("10.1.2.3"), Decision::Allow);
        assert_eq!(get("11.1.2.3"), Decision::ImplicitDeny);
        assert_eq!(get("2001:db8:1::1"), Decision::Allow);
        assert_eq!(get("2001:db9::1"), Decision::ImplicitDeny);
    }

    #[test]
    fn negated_operators_if_exists_and_set_qualifiers() {
        let p = r#"{"Statement":[
            {"Effect":"Deny","Action":"*","Resource":"*",
             "Condition":{"StringNotEqualsIfExists":{"aws:RequestedRegion":"eu-west-1"}}},
            {"Effect":"Allow","Action":"es:AddTags","Resource":"*",
             "Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]}}}]}"#;
        let tags = |keys: &[&str]| {
            Context::default()
                .with_all("aws:TagKeys", keys.iter().map(|s| s.to_string()).collect())
                .with("aws:RequestedRegion", "eu-west-1")
        };
        assert_eq!(
            decide(p, "es:AddTags", "d", tags(&["team"])),
            Decision::Allow
        );
        assert_eq!(
            decide(p, "es:AddTags", "d", tags(&["team", "owner"])),
            Decision::ImplicitDeny
        );
        let denied = Decision::ExplicitDeny {
            in_resource_policy: false,
        };
        assert_eq!(
            decide(
                p,
                "es:AddTags",
                "d",
                tags(&["team"]).with("aws:RequestedRegion", "us-east-1")
            ),
            denied
        );
        assert_eq!(
            decide(
                p,
                "es:AddTags",
                "d",
                Context::default().with_all("aws:TagKeys", vec!["team".into()])
            ),
            denied,
            "a negated operator holds when the key is absent, IfExists or not"
        );
    }

    #[test]
    fn resource_policies_allow_named_principals_and_their_denies_win() {
        let identity = Policy::parse(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#,
            false,
        )
        .unwrap();
        let bucket = Policy::parse(
            r#"{"Statement":[
                {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:user/ci"},
                 "Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"},
                {"Effect":"Deny","Principal":"*","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::b/*"}]}"#,
            true,
        )
        .unwrap();
        let principal = user();
        let ask = |identity: Option<&[Policy]>, action: &str| {
            evaluate(
                identity,
                &[&bucket],
                &Request {
                    principal: &principal,
                    action,
                    resource: "arn:aws:s3:::b/k",
                    context: Context::default(),
                },
            )
        };
        assert_eq!(
            ask(Some(&[]), "s3:GetObject"),
            Decision::Allow,
            "the bucket policy grants it"
        );
        assert_eq!(ask(Some(&[]), "s3:PutObject"), Decision::ImplicitDeny);
        assert_eq!(
            ask(Some(std::slice::from_ref(&identity)), "s3:DeleteObject"),
            Decision::ExplicitDeny {
                in_resource_policy: true
            }
        );
        assert_eq!(
            ask(None, "s3:DeleteObject"),
            Decision::ExplicitDeny {
                in_resource_policy: true
            },
            "even an identity without policy limits"
        );
    }

    #[test]
    fn documents_iam_would_refuse_are_refused() {
        for (doc, words) in [
            ("not json", "invalid Json"),
            (
                r#"{"Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}"#,
                "Effect",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
                "Action or NotAction",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*"}]}"#,
                "Resource or NotResource",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Principal":"*"}]}"#,
                "should not specify a principal",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringSort":{"a":"b"}}}]}"#,
                "unknown condition operator StringSort",
            ),
        ] {
            let err = Policy::parse(doc, false).expect_err(doc);
            assert!(err.0.contains(words), "{doc}: {err}");
        }
    }

    // The domain access policy at the gateway: a resource-based policy over `es:ESHttp*`.

    const DOMAIN: &str = "arn:aws:es:us-east-1:123456789012:domain/logs";
    const USER: &str = "arn:aws:iam::123456789012:user/ci";

    /// The gateway's question: `principal` (with identity policies `identity`) sends `action`
    /// on `path` from `ip`, under `policy`.
    fn at_gateway(
        policy: &Value,
        principal: &Principal,
        identity: Option<&[Policy]>,
        action: &str,
        path: &str,
        ip: &str,
    ) -> Decision {
        let policy = Policy::from_value(policy, true).expect("a resource-based policy");
        evaluate(
            identity,
            &[&policy],
            &Request {
                principal,
                action,
                resource: &format!("{DOMAIN}/{path}"),
                context: Context::default().with("aws:SourceIp", ip),
            },
        )
    }

    fn one(statement: Value) -> Value {
        serde_json::json!({"Version": "2012-10-17", "Statement": [statement]})
    }

    fn iam(arns: &[&str]) -> Principal {
        Principal::iam(
            "123456789012",
            arns.iter().map(|a| (*a).to_owned()).collect(),
        )
    }

    const NONE: Option<&[Policy]> = Some(&[]);

    #[test]
    fn named_principals_roles_and_wildcards() {
        let allow_user = one(
            serde_json::json!({"Effect": "Allow", "Principal": {"AWS": [USER]}, "Action": "es:ESHttp*", "Resource": format!("{DOMAIN}/*")}),
        );
        let get =
            |p: &Principal| at_gateway(&allow_user, p, NONE, "es:ESHttpGet", "x", "127.0.0.1");
        assert_eq!(get(&iam(&[USER])), Decision::Allow);
        assert_eq!(
            get(&iam(&["arn:aws:iam::123456789012:user/other"])),
            Decision::ImplicitDeny
        );
        assert_eq!(get(&Principal::anonymous()), Decision::ImplicitDeny);

        // A role is named by its ARN (path included); its sessions are that role.
        let allow_role = one(
            serde_json::json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/path/ops"}, "Action": "es:*", "Resource": format!("{DOMAIN}/*")}),
        );
        let ops = iam(&[
            "arn:aws:iam::123456789012:role/path/ops",
            "arn:aws:sts::123456789012:assumed-role/ops/alice",
        ]);
        let dev = iam(&[
            "arn:aws:iam::123456789012:role/dev",
            "arn:aws:sts::123456789012:assumed-role/dev/alice",
        ]);
        let put = |p: &Principal| {
            at_gateway(
                &allow_role,
                p,
                NONE,
                "es:ESHttpPut",
                "_snapshot/r",
                "127.0.0.1",
            )
        };
        assert_eq!(put(&ops), Decision::Allow);
        assert_eq!(put(&dev), Decision::ImplicitDeny);

        // The trailing `/*` matters: the domain ARN alone covers no subresource.
        let no_star = one(
            serde_json::json!({"Effect": "Allow", "Principal": "*", "Action": "es:*", "Resource": DOMAIN}),
        );
        assert_eq!(
            at_gateway(
                &no_star,
                &iam(&[USER]),
                NONE,
                "es:ESHttpGet",
                "x",
                "127.0.0.1"
            ),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn the_account_principal_delegates_to_identity_policies() {
        let account = one(
            serde_json::json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "es:*", "Resource": format!("{DOMAIN}/*")}),
        );
        let me = iam(&[USER]);
        let ask = |identity: Option<&[Policy]>, p: &Principal| {
            at_gateway(
                &account,
                p,
                identity,
                "es:ESHttpGet",
                "_cat/indices",
                "127.0.0.1",
            )
        };
        assert_eq!(ask(NONE, &me), Decision::ImplicitDeny, "no identity policy");
        assert_eq!(
            ask(None, &me),
            Decision::Allow,
            "an identity without limits"
        );
        let allows = Policy::parse(
            r#"{"Statement": {"Effect": "Allow", "Action": "es:ESHttpGet", "Resource": "*"}}"#,
            false,
        )
        .unwrap();
        assert_eq!(
            ask(Some(std::slice::from_ref(&allows)), &me),
            Decision::Allow
        );
        let stranger = Principal::iam(
            "210987654321",
            vec!["arn:aws:iam::210987654321:user/x".into()],
        );
        assert_eq!(ask(NONE, &stranger), Decision::ImplicitDeny);
        assert_eq!(ask(NONE, &Principal::anonymous()), Decision::ImplicitDeny);
        // A Deny naming the account applies to everyone in it.
        let deny_account = one(
            serde_json::json!({"Effect": "Deny", "Principal": {"AWS": "123456789012"}, "Action": "es:*", "Resource": format!("{DOMAIN}/*")}),
        );
        assert_eq!(
            at_gateway(&deny_account, &me, None, "es:ESHttpGet", "x", "127.0.0.1"),
            Decision::ExplicitDeny {
                in_resource_policy: true
            }
        );
    }

    #[test]
    fn deny_wins_and_source_ip_conditions_apply() {
        let p = serde_json::json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "es:ESHttp*", "Resource": format!("{DOMAIN}/*"),
             "Condition": {"IpAddress": {"aws:SourceIp": ["127.0.0.0/8", "2001:db8::/32"]}}},
            {"Effect": "Deny", "Principal": "*", "Action": "es:ESHttpDelete", "Resource": format!("{DOMAIN}/*")}
        ]});
        let anon = Principal::anonymous();
        let ask = |action: &str, ip: &str| at_gateway(&p, &anon, NONE, action, "x", ip);
        assert_eq!(ask("es:ESHttpGet", "127.0.0.1"), Decision::Allow);
        assert_eq!(ask("es:ESHttpGet", "2001:db8::7"), Decision::Allow);
        assert_eq!(ask("es:ESHttpGet", "192.0.2.1"), Decision::ImplicitDeny);
        assert_eq!(
            ask("es:ESHttpDelete", "127.0.0.1"),
            Decision::ExplicitDeny {
                in_resource_policy: true
            }
        );
        let not_ip = one(
            serde_json::json!({"Effect": "Allow", "Principal": "*", "Action": "es:*", "Resource": format!("{DOMAIN}/*"),
            "Condition": {"NotIpAddress": {"aws:SourceIp": "127.0.0.1"}}}),
        );
        assert_eq!(
            at_gateway(&not_ip, &anon, NONE, "es:ESHttpGet", "", "127.0.0.1"),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn a_condition_on_a_key_the_request_lacks_matches_as_in_iam() {
        // The sandbox has no organizations: `aws:PrincipalOrgID` is absent from every request.
        let allow_org = one(
            serde_json::json!({"Effect": "Allow", "Principal": "*", "Action": "es:*", "Resource": format!("{DOMAIN}/*"),
             "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}}}),
        );
        let anon = Principal::anonymous();
        assert_eq!(
            at_gateway(&allow_org, &anon, NONE, "es:ESHttpGet", "", "127.0.0.1"),
            Decision::ImplicitDeny,
            "an Allow whose condition cannot hold never widens access"
        );
        let deny = |operator: &str| {
            serde_json::json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": "*", "Action": "es:*", "Resource": format!("{DOMAIN}/*")},
                {"Effect": "Deny", "Principal": "*", "Action": "es:*", "Resource": format!("{DOMAIN}/*"),
                 "Condition": {operator: {"aws:PrincipalOrgID": "o-1"}}}
            ]})
        };
        assert_eq!(
            at_gateway(
                &deny("StringNotEquals"),
                &anon,
                NONE,
                "es:ESHttpGet",
                "",
                "127.0.0.1"
            ),
            Decision::ExplicitDeny {
                in_resource_policy: true
            },
            "deny everyone outside the organization: a caller without one is outside"
        );
        assert_eq!(
            at_gateway(
                &deny("StringEquals"),
                &anon,
                NONE,
                "es:ESHttpGet",
                "",
                "127.0.0.1"
            ),
            Decision::Allow,
            "a Deny for the organization's members does not touch a caller without one"
        );
    }

    #[test]
    fn resource_based_actions_match_case_insensitively_and_not_action_inverts() {
        let p = one(
            serde_json::json!({"Effect": "Allow", "Principal": "*", "NotAction": "ES:eshttpdelete", "Resource": format!("{DOMAIN}/*")}),
        );
        let anon = Principal::anonymous();
        assert_eq!(
            at_gateway(&p, &anon, NONE, "es:ESHttpGet", "", "127.0.0.1"),
            Decision::Allow
        );
        assert_eq!(
            at_gateway(&p, &anon, NONE, "es:ESHttpDelete", "i", "127.0.0.1"),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn service_principals_and_dates() {
        let trust = Policy::parse(
            r#"{"Statement": [{"Effect": "Allow", "Principal": {"Service": "es.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"DateLessThan": {"aws:CurrentTime": "2100-01-01T00:00:00Z"}}}]}"#,
            true,
        )
        .unwrap();
        let assume = |principal: &Principal, now: &str| {
            evaluate(
                NONE,
                &[&trust],
                &Request {
                    principal,
                    action: "sts:AssumeRole",
                    resource: "arn:aws:iam::123456789012:role/snap",
                    context: Context::default().with("aws:CurrentTime", now),
                },
            )
        };
        let es = Principal::service(&["es.amazonaws.com"]);
        assert_eq!(assume(&es, "2026-05-01T12:00:00Z"), Decision::Allow);
        assert_eq!(assume(&es, "2101-01-01T00:00:00Z"), Decision::ImplicitDeny);
        assert_eq!(
            assume(
                &Principal::service(&["ec2.amazonaws.com"]),
                "2026-05-01T12:00:00Z"
            ),
            Decision::ImplicitDeny
        );
        assert_eq!(
            assume(&iam(&[USER]), "2026-05-01T12:00:00Z"),
            Decision::ImplicitDeny,
            "a service principal names no user"
        );
    }
}
