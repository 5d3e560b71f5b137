//! A domain's resource-based access policy, evaluated as the OpenSearch Service gateway does at
//! the edge of the domain, before a request reaches OpenSearch (and its security plugin).
//!
//! A request to `https://<endpoint>/<path>` with method `M` is the action `es:ESHttp<M>` on the
//! resource `arn:aws:es:<region>:<account>:domain/<name>/<path>`; the caller is the SigV4 signer's
//! IAM principal, or `anonymous` for an unsigned request (HTTP basic auth included). The policy
//! grammar is IAM's: `Principal` (`*`, `{"AWS": arn | account | "*"}`), `Action`/`NotAction` and
//! `Resource`/`NotResource` with `*`/`?` wildcards (actions case-insensitively), `Condition` with
//! `IpAddress`/`NotIpAddress` on `aws:SourceIp` (the sandbox's clients come from 127.0.0.1).
//!
//! As in IAM, an explicit `Deny` wins; an `Allow` naming the caller (or `*`) lets the request
//! through; naming the caller's own account (`123456789012`, `arn:aws:iam::123456789012:root`)
//! only delegates to the caller's identity-based policies ([`Decision::NotAllowed`] then falls back
//! on them). A condition the sandbox cannot evaluate never widens access: an `Allow` carrying one
//! does not apply, a `Deny` carrying one does.
//!
//! CreateDomain/UpdateDomainConfig use [`is_open`] for AWS's rule that a public domain without
//! fine-grained access control needs a restrictive policy.

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::http::{Resp, json as json_resp};

/// Who sent a request, as the gateway sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Caller {
    /// An unsigned request (no SigV4 `Authorization`), including HTTP basic auth.
    Anonymous,
    /// The IAM principal that signed the request: `arn:aws:iam::<acct>:user/<name>` or
    /// `arn:aws:sts::<acct>:assumed-role/<role>/<session>`.
    Principal(String),
}

impl Caller {
    /// The name AWS puts in its denial messages.
    pub fn display(&self) -> &str {
        match self {
            Self::Anonymous => "anonymous",
            Self::Principal(arn) => arn,
        }
    }

    fn account(&self) -> Option<&str> {
        match self {
            Self::Anonymous => None,
            Self::Principal(arn) => arn.split(':').nth(4),
        }
    }
}

/// One request at the gateway.
#[derive(Debug, Clone)]
pub struct GatewayRequest<'a> {
    pub caller: &'a Caller,
    /// `es:ESHttpGet`, `es:ESHttpPut`, ...
    pub action: String,
    /// `arn:aws:es:<region>:<account>:domain/<name>/<path>`.
    pub resource: String,
    pub source_ip: IpAddr,
}

impl<'a> GatewayRequest<'a> {
    /// The request `method /path` to `domain_arn` from `source_ip`.
    pub fn new(
        caller: &'a Caller,
        method: &http::Method,
        domain_arn: &str,
        path: &str,
        source_ip: IpAddr,
    ) -> Self {
        Self {
            caller,
            action: format!("es:ESHttp{}", http_verb(method)),
            resource: format!("{domain_arn}/{}", path.trim_start_matches('/')),
            source_ip,
        }
    }
}

/// `GET` → `Get`, as in `es:ESHttpGet`.
fn http_verb(method: &http::Method) -> String {
    let m = method.as_str();
    let mut out = m[..1].to_ascii_uppercase();
    out.push_str(&m[1..].to_ascii_lowercase());
    out
}

/// What the resource-based policy says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A statement allows it.
    Allow,
    /// A `Deny` statement matches it.
    ExplicitDeny,
    /// Nothing allows it (or only the caller's own account is named): the caller's
    /// identity-based policies decide.
    NotAllowed,
}

/// Evaluates a policy document (already parsed; `Value::Null` for a domain without one).
pub fn evaluate(policy: &Value, request: &GatewayRequest<'_>) -> Decision {
    let mut allowed = false;
    for statement in statements(policy) {
        let deny = statement.get("Effect").and_then(Value::as_str) == Some("Deny");
        if !action_matches(statement, &request.action)
            || !resource_matches(statement, &request.resource)
        {
            continue;
        }
        let principal = principal_match(statement, request.caller);
        let condition = condition_holds(statement, request.source_ip);
        if deny {
            // Unknown conditions and delegation both count as a match for a Deny: never lenient.
            if principal != PrincipalMatch::No && condition != Holds::No {
                return Decision::ExplicitDeny;
            }
        } else if principal == PrincipalMatch::Yes && condition == Holds::Yes {
            allowed = true;
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::NotAllowed
    }
}

/// The gateway's verdict: `Err` holds the `Message` of the 403 the service answers
/// ([`denied`]). `identity_allows` is whether the caller's identity-based policies allow the
/// action on the resource (never true for an anonymous caller), which is enough on its own when
/// the resource policy neither allows nor denies ("When policies collide", the developer guide's
/// `ac` page).
pub fn verdict(
    policy: &Value,
    request: &GatewayRequest<'_>,
    identity_allows: bool,
) -> Result<(), String> {
    let identity_allows = identity_allows && *request.caller != Caller::Anonymous;
    let why = match evaluate(policy, request) {
        Decision::Allow => return Ok(()),
        Decision::NotAllowed if identity_allows => return Ok(()),
        Decision::NotAllowed => format!(
            "because no resource-based policy allows the {} action",
            request.action
        ),
        Decision::ExplicitDeny => "with an explicit deny in a resource-based policy".to_owned(),
    };
    Err(format!(
        "User: {} is not authorized to perform: {} {why}",
        request.caller.display(),
        request.action
    ))
}

/// Whether a policy lets anyone in without a source-IP restriction: an `Allow` statement for
/// principal `*` without an `aws:SourceIp` condition. AWS refuses such a policy on a public domain
/// without fine-grained access control.
pub fn is_open(policy: &Value) -> bool {
    statements(policy).any(|s| {
        s.get("Effect").and_then(Value::as_str) == Some("Allow")
            && principals(s).is_some_and(|p| p.iter().any(|p| p == "*"))
            && !has_source_ip_condition(s)
    })
}

/// Parses an `AccessPolicies` string as the control plane stores it; blank means no policy.
pub fn parse(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if value.is_object() {
        Ok(value)
    } else {
        Err("a policy document is a JSON object".into())
    }
}

fn statements(policy: &Value) -> impl Iterator<Item = &serde_json::Map<String, Value>> {
    let list: Vec<&Value> = match policy.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => Vec::new(),
    };
    list.into_iter().filter_map(Value::as_object)
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// `Principal: "*"` or the `AWS` entries; `None` when the statement names no AWS principal
/// (a `Service` principal, or `NotPrincipal`, which OpenSearch Service does not support).
fn principals(statement: &serde_json::Map<String, Value>) -> Option<Vec<String>> {
    match statement.get("Principal")? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Object(o) => o.get("AWS").map(|v| strings(Some(v))),
        _ => None,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum PrincipalMatch {
    Yes,
    /// The caller's own account is named: identity-based policies decide.
    Delegated,
    No,
}

fn principal_match(statement: &serde_json::Map<String, Value>, caller: &Caller) -> PrincipalMatch {
    let Some(list) = principals(statement) else {
        return PrincipalMatch::No;
    };
    let mut best = PrincipalMatch::No;
    for p in &list {
        if p == "*" {
            return PrincipalMatch::Yes;
        }
        let Caller::Principal(arn) = caller else {
            continue;
        };
        if let Some(account) = account_principal(p) {
            if Some(account) == caller.account() {
                best = PrincipalMatch::Delegated;
            }
        } else if p == arn || role_of_session(arn).is_some_and(|role| role_matches(p, &role)) {
            return PrincipalMatch::Yes;
        }
    }
    best
}

/// `123456789012` or `arn:aws:iam::123456789012:root` → the account.
fn account_principal(p: &str) -> Option<&str> {
    if p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit()) {
        return Some(p);
    }
    p.strip_prefix("arn:aws:iam::")?.strip_suffix(":root")
}

/// `arn:aws:sts::<acct>:assumed-role/<role>/<session>` → (`<acct>`, `<role>`).
fn role_of_session(arn: &str) -> Option<(String, String)> {
    let rest = arn.strip_prefix("arn:aws:sts::")?;
    let (account, rest) = rest.split_once(':')?;
    let rest = rest.strip_prefix("assumed-role/")?;
    let (role, _session) = rest.split_once('/')?;
    Some((account.to_owned(), role.to_owned()))
}

/// Whether principal `p` (`arn:aws:iam::<acct>:role/<path/>name`) is the session's role.
fn role_matches(p: &str, (account, role): &(String, String)) -> bool {
    p.strip_prefix(&format!("arn:aws:iam::{account}:role/"))
        .is_some_and(|rest| rest.rsplit('/').next() == Some(role.as_str()))
}

fn action_matches(statement: &serde_json::Map<String, Value>, action: &str) -> bool {
    let lower = action.to_ascii_lowercase();
    let hit = |list: Vec<String>| {
        list.iter()
            .any(|a| crate::data_plane::indices::glob(&a.to_ascii_lowercase(), &lower))
    };
    match (statement.get("Action"), statement.get("NotAction")) {
        (Some(a), _) => hit(strings(Some(a))),
        (None, Some(n)) => !hit(strings(Some(n))),
        (None, None) => false,
    }
}

fn resource_matches(statement: &serde_json::Map<String, Value>, resource: &str) -> bool {
    let hit = |list: Vec<String>| {
        list.iter()
            .any(|r| crate::data_plane::indices::glob(r, resource))
    };
    match (statement.get("Resource"), statement.get("NotResource")) {
        (Some(r), _) => hit(strings(Some(r))),
        (None, Some(n)) => !hit(strings(Some(n))),
        (None, None) => false,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Holds {
    Yes,
    No,
    /// An operator or key the sandbox does not evaluate.
    Unknown,
}

fn condition_holds(statement: &serde_json::Map<String, Value>, source_ip: IpAddr) -> Holds {
    let Some(conditions) = statement.get("Condition").and_then(Value::as_object) else {
        return Holds::Yes;
    };
    let mut result = Holds::Yes;
    for (operator, block) in conditions {
        let base = operator.strip_suffix("IfExists").unwrap_or(operator);
        let Some(block) = block.as_object() else {
            return Holds::No;
        };
        for (key, values) in block {
            if !key.eq_ignore_ascii_case("aws:SourceIp") {
                result = Holds::Unknown;
                continue;
            }
            let any = strings(Some(values))
                .iter()
                .any(|cidr| cidr_contains(cidr, source_ip));
            let holds = match base {
                "IpAddress" => any,
                "NotIpAddress" => !any,
                _ => {
                    result = Holds::Unknown;
                    continue;
                }
            };
            if !holds {
                return Holds::No;
            }
        }
    }
    result
}

/// Registering a repository with a `role_arn` makes the gateway check that the caller may pass
/// that role to the service: an unsigned caller never may ("User: anonymous is not authorized to
/// perform: iam:PassRole", the `fgac` page's manual-snapshot section). `Some` is the refusal.
pub fn unsigned_pass_role(caller: &Caller, body: &[u8]) -> Option<String> {
    if *caller != Caller::Anonymous {
        return None;
    }
    let body: Value = serde_json::from_slice(body).ok()?;
    let role = body["settings"]["role_arn"].as_str()?;
    Some(format!(
        "User: anonymous is not authorized to perform: iam:PassRole on resource: {role}"
    ))
}

/// The gateway's 403: `{"Message": "User: .. is not authorized to perform: .."}`.
pub fn denied(message: &str) -> Resp {
    json_resp(403, &json!({ "Message": message }))
}

fn has_source_ip_condition(statement: &serde_json::Map<String, Value>) -> bool {
    statement
        .get("Condition")
        .and_then(Value::as_object)
        .is_some_and(|c| {
            c.iter().any(|(op, block)| {
                op.starts_with("IpAddress")
                    && block
                        .as_object()
                        .is_some_and(|b| b.keys().any(|k| k.eq_ignore_ascii_case("aws:SourceIp")))
            })
        })
}

/// `192.0.2.0/24`, `10.1.2.3` (a single address) or an IPv6 CIDR.
fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let (addr, bits) = match cidr.split_once('/') {
        Some((a, b)) => (a, b.parse::<u32>().ok()),
        None => (cidr, None),
    };
    let Ok(net) = addr.trim().parse::<IpAddr>() else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOMAIN: &str = "arn:aws:es:us-east-1:123456789012:domain/logs";
    const USER: &str = "arn:aws:iam::123456789012:user/ci";

    fn req<'a>(
        caller: &'a Caller,
        method: http::Method,
        path: &str,
        ip: &str,
    ) -> GatewayRequest<'a> {
        GatewayRequest::new(caller, &method, DOMAIN, path, ip.parse().unwrap())
    }

    fn policy(statement: Value) -> Value {
        json!({"Version": "2012-10-17", "Statement": [statement]})
    }

    #[test]
    fn requests_become_es_http_actions_on_subresources() {
        let me = Caller::Principal(USER.into());
        let r = req(&me, http::Method::HEAD, "/movies", "127.0.0.1");
        assert_eq!(r.action, "es:ESHttpHead");
        assert_eq!(r.resource, format!("{DOMAIN}/movies"));
        assert_eq!(
            req(&me, http::Method::GET, "/", "127.0.0.1").resource,
            format!("{DOMAIN}/")
        );
    }

    #[test]
    fn named_principals_roles_and_wildcards() {
        let allow_user = policy(
            json!({"Effect": "Allow", "Principal": {"AWS": [USER]}, "Action": "es:ESHttp*", "Resource": format!("{DOMAIN}/*")}),
        );
        let me = Caller::Principal(USER.into());
        let other = Caller::Principal("arn:aws:iam::123456789012:user/other".into());
        assert_eq!(
            evaluate(&allow_user, &req(&me, http::Method::GET, "/x", "127.0.0.1")),
            Decision::Allow
        );
        assert_eq!(
            evaluate(
                &allow_user,
                &req(&other, http::Method::GET, "/x", "127.0.0.1")
            ),
            Decision::NotAllowed
        );
        assert_eq!(
            evaluate(
                &allow_user,
                &req(&Caller::Anonymous, http::Method::GET, "/x", "127.0.0.1")
            ),
            Decision::NotAllowed
        );

        let allow_role = policy(
            json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/path/ops"}, "Action": "es:*", "Resource": format!("{DOMAIN}/*")}),
        );
        let session = Caller::Principal("arn:aws:sts::123456789012:assumed-role/ops/alice".into());
        let other_session =
            Caller::Principal("arn:aws:sts::123456789012:assumed-role/dev/alice".into());
        assert_eq!(
            evaluate(
                &allow_role,
                &req(&session, http::Method::PUT, "/_snapshot/r", "127.0.0.1")
            ),
            Decision::Allow
        );
        assert_eq!(
            evaluate(
                &allow_role,
                &req(
                    &other_session,
                    http::Method::PUT,
                    "/_snapshot/r",
                    "127.0.0.1"
                )
            ),
            Decision::NotAllowed
        );

        // The trailing `/*` matters: the domain ARN alone covers no subresource.
        let no_star = policy(
            json!({"Effect": "Allow", "Principal": "*", "Action": "es:*", "Resource": DOMAIN}),
        );
        assert_eq!(
            evaluate(&no_star, &req(&me, http::Method::GET, "/x", "127.0.0.1")),
            Decision::NotAllowed
        );
    }

    #[test]
    fn the_account_principal_delegates_to_identity_policies() {
        let account = policy(
            json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "es:*", "Resource": format!("{DOMAIN}/*")}),
        );
        let me = Caller::Principal(USER.into());
        let r = req(&me, http::Method::GET, "/_cat/indices", "127.0.0.1");
        assert_eq!(evaluate(&account, &r), Decision::NotAllowed);
        assert!(verdict(&account, &r, true).is_ok());
        assert!(verdict(&account, &r, false).is_err());
        let stranger = Caller::Principal("arn:aws:iam::210987654321:user/x".into());
        assert_eq!(
            evaluate(
                &account,
                &req(&stranger, http::Method::GET, "/", "127.0.0.1")
            ),
            Decision::NotAllowed
        );
    }

    #[test]
    fn deny_wins_and_source_ip_conditions_apply() {
        let p = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "es:ESHttp*", "Resource": format!("{DOMAIN}/*"),
             "Condition": {"IpAddress": {"aws:SourceIp": ["127.0.0.0/8", "2001:db8::/32"]}}},
            {"Effect": "Deny", "Principal": "*", "Action": "es:ESHttpDelete", "Resource": format!("{DOMAIN}/*")}
        ]});
        let anon = Caller::Anonymous;
        assert_eq!(
            evaluate(&p, &req(&anon, http::Method::GET, "/", "127.0.0.1")),
            Decision::Allow
        );
        assert_eq!(
            evaluate(&p, &req(&anon, http::Method::GET, "/", "2001:db8::7")),
            Decision::Allow
        );
        assert_eq!(
            evaluate(&p, &req(&anon, http::Method::GET, "/", "192.0.2.1")),
            Decision::NotAllowed
        );
        assert_eq!(
            evaluate(&p, &req(&anon, http::Method::DELETE, "/x", "127.0.0.1")),
            Decision::ExplicitDeny
        );
        let not_ip = policy(
            json!({"Effect": "Allow", "Principal": "*", "Action": "es:*", "Resource": format!("{DOMAIN}/*"),
            "Condition": {"NotIpAddress": {"aws:SourceIp": "127.0.0.1"}}}),
        );
        assert_eq!(
            evaluate(&not_ip, &req(&anon, http::Method::GET, "/", "127.0.0.1")),
            Decision::NotAllowed
        );
    }

    #[test]
    fn unknown_conditions_never_widen_access() {
        let p = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "es:*", "Resource": format!("{DOMAIN}/*"),
             "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}}}
        ]});
        assert_eq!(
            evaluate(
                &p,
                &req(&Caller::Anonymous, http::Method::GET, "/", "127.0.0.1")
            ),
            Decision::NotAllowed
        );
        let deny = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "es:*", "Resource": format!("{DOMAIN}/*")},
            {"Effect": "Deny", "Principal": "*", "Action": "es:*", "Resource": format!("{DOMAIN}/*"),
             "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}}}
        ]});
        assert_eq!(
            evaluate(
                &deny,
                &req(&Caller::Anonymous, http::Method::GET, "/", "127.0.0.1")
            ),
            Decision::ExplicitDeny
        );
    }

    #[test]
    fn actions_match_case_insensitively_and_not_action_inverts() {
        let p = policy(
            json!({"Effect": "Allow", "Principal": "*", "NotAction": "ES:eshttpdelete", "Resource": format!("{DOMAIN}/*")}),
        );
        let anon = Caller::Anonymous;
        assert_eq!(
            evaluate(&p, &req(&anon, http::Method::GET, "/", "127.0.0.1")),
            Decision::Allow
        );
        assert_eq!(
            evaluate(&p, &req(&anon, http::Method::DELETE, "/i", "127.0.0.1")),
            Decision::NotAllowed
        );
    }

    #[test]
    fn denial_messages_name_the_caller_and_the_action() {
        let anon = Caller::Anonymous;
        let r = req(&anon, http::Method::POST, "/_search", "127.0.0.1");
        assert_eq!(
            verdict(&Value::Null, &r, true),
            Err("User: anonymous is not authorized to perform: es:ESHttpPost because no resource-based policy allows the es:ESHttpPost action".into())
        );
        assert_eq!(denied("x").status(), 403);
        let me = Caller::Principal(USER.into());
        let deny = policy(
            json!({"Effect": "Deny", "Principal": {"AWS": USER}, "Action": "es:ESHttpGet", "Resource": format!("{DOMAIN}/*")}),
        );
        assert_eq!(
            verdict(&deny, &req(&me, http::Method::GET, "/", "127.0.0.1"), true),
            Err(format!(
                "User: {USER} is not authorized to perform: es:ESHttpGet with an explicit deny in a resource-based policy"
            ))
        );
    }

    #[test]
    fn open_policies_are_recognised() {
        let open = policy(
            json!({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "es:*", "Resource": format!("{DOMAIN}/*")}),
        );
        assert!(is_open(&open));
        assert!(is_open(&policy(
            json!({"Effect": "Allow", "Principal": "*", "Action": "es:ESHttpGet", "Resource": format!("{DOMAIN}/*")})
        )));
        let ip = policy(
            json!({"Effect": "Allow", "Principal": "*", "Action": "es:*", "Resource": format!("{DOMAIN}/*"),
            "Condition": {"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}}),
        );
        assert!(!is_open(&ip));
        let account = policy(
            json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "es:*", "Resource": format!("{DOMAIN}/*")}),
        );
        assert!(!is_open(&account));
        assert!(!is_open(&Value::Null));
        assert_eq!(parse("  "), Ok(Value::Null));
        assert!(parse("[1]").is_err());
    }
}
