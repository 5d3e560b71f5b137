//! The OpenSearch Service gateway in front of each domain endpoint: who may reach the domain's
//! HTTP API, decided before a request reaches OpenSearch (and its security plugin).
//!
//! A request to `https://<endpoint>/<path>` with method `M` is the action `es:ESHttp<M>` on the
//! resource `arn:aws:es:<region>:<account>:domain/<name>/<path>`, from the connection's peer
//! address (`aws:SourceIp`). The caller is the SigV4 signer ([`Caller::Signed`], named by its
//! user or role-session ARN) or `anonymous` for an unsigned request, HTTP basic auth included.
//! As AWS decides a same-account request, the domain's access policy (the resource-based
//! policy) and the caller's identity policies are decided together by
//! [`crate::policy_eval::evaluate`] through [`Caller::authorize`]: an explicit `Deny` in either
//! wins, an `Allow` in either lets the request through ("When policies collide", the developer
//! guide's `ac` page). A policy naming the caller's own account (`arn:aws:iam::<account>:root`,
//! the account-wide allow) only delegates to identity policies; an anonymous caller has none,
//! so only a statement for principal `*` lets it in. The refusal is AWS's 403
//! `{"Message":"User: … is not authorized to perform: es:ESHttpGet because no … policy allows
//! the es:ESHttpGet action"}` (resource-based for `anonymous`, identity-based for a signer) or
//! `… with an explicit deny in a resource-based policy`.
//!
//! CreateDomain/UpdateDomainConfig read `AccessPolicies` with [`parse`] (the same grammar, so
//! what is stored can be evaluated) and use [`is_open`] for AWS's rule that a public domain
//! without fine-grained access control needs a restrictive policy.

// Refusals are the response itself as `Err`, built once per refused request and sent as is
// (as in the data plane).
#![allow(clippy::result_large_err)]

use std::net::IpAddr;

use serde_json::json;

use crate::Shared;
use crate::http::{Resp, json as json_resp};
use crate::identity::Caller;
use crate::policy_eval::{Context, Policy, PolicyError};

/// `GET` → `es:ESHttpGet`.
fn es_http_action(method: &http::Method) -> String {
    let m = method.as_str();
    let mut out = "es:ESHttp".to_owned();
    out.push_str(&m[..1].to_ascii_uppercase());
    out.push_str(&m[1..].to_ascii_lowercase());
    out
}

/// The resource a request names: the domain's ARN and the request path.
fn resource(domain_arn: &str, path: &str) -> String {
    format!("{domain_arn}/{}", path.trim_start_matches('/'))
}

/// The gateway's decision on one request to `domain`'s endpoint: `Err` is the 403 it answers.
pub fn check(
    shared: &Shared,
    domain: &crate::control_plane::DomainKey,
    caller: &Caller,
    method: &http::Method,
    path: &str,
    source_ip: IpAddr,
) -> Result<(), Resp> {
    let Some((arn, policy)) = shared.domains.access_policy(domain) else {
        return Ok(());
    };
    let action = es_http_action(method);
    let context = Context::default().with("aws:SourceIp", source_ip.to_string());
    caller
        .authorize_in(
            &action,
            &resource(&arn, path),
            Some(&domain.account),
            context,
            policy.as_ref(),
        )
        .map_err(|denial| denied(&denial.es_http_message()))
}

/// Reads an `AccessPolicies` string as the control plane stores it: `None` for a blank one (no
/// policy, AWS's default), or the policy in the evaluator's grammar.
pub fn parse(text: &str) -> Result<Option<Policy>, PolicyError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    Policy::parse(text, true).map(Some)
}

/// Whether a policy lets anyone in without a source-IP restriction (see [`Policy::is_open`]).
/// AWS refuses such a policy on a public domain without fine-grained access control.
pub fn is_open(policy: Option<&Policy>) -> bool {
    policy.is_some_and(Policy::is_open)
}

/// The gateway's 403: `{"Message": "User: .. is not authorized to perform: .."}`.
pub fn denied(message: &str) -> Resp {
    json_resp(403, &json!({ "Message": message }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_become_es_http_actions_on_subresources() {
        const DOMAIN: &str = "arn:aws:es:us-east-1:123456789012:domain/logs";
        assert_eq!(es_http_action(&http::Method::HEAD), "es:ESHttpHead");
        assert_eq!(es_http_action(&http::Method::DELETE), "es:ESHttpDelete");
        assert_eq!(resource(DOMAIN, "/movies"), format!("{DOMAIN}/movies"));
        assert_eq!(resource(DOMAIN, "/"), format!("{DOMAIN}/"));
    }

    #[test]
    fn open_policies_are_recognised() {
        const DOMAIN: &str = "arn:aws:es:us-east-1:123456789012:domain/logs";
        let policy = |statement: serde_json::Value| {
            parse(&json!({"Version": "2012-10-17", "Statement": [statement]}).to_string())
                .expect("a policy")
        };
        let open = policy(
            json!({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "es:*", "Resource": format!("{DOMAIN}/*")}),
        );
        assert!(is_open(open.as_ref()));
        assert!(is_open(
            policy(
                json!({"Effect": "Allow", "Principal": "*", "Action": "es:ESHttpGet", "Resource": format!("{DOMAIN}/*")})
            )
            .as_ref()
        ));
        let ip = policy(
            json!({"Effect": "Allow", "Principal": "*", "Action": "es:*", "Resource": format!("{DOMAIN}/*"),
            "Condition": {"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}}),
        );
        assert!(!is_open(ip.as_ref()));
        let account = policy(
            json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "es:*", "Resource": format!("{DOMAIN}/*")}),
        );
        assert!(!is_open(account.as_ref()));
        assert!(!is_open(None));
        assert!(matches!(parse("  "), Ok(None)));
        assert!(parse("[1]").is_err());
        assert!(
            parse(r#"{"Statement": [{"Effect": "Allow", "Action": "es:*"}]}"#)
                .unwrap_err()
                .0
                .contains("Principal"),
            "a domain access policy names its principals"
        );
    }
}
