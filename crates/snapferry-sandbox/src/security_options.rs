//! What CreateDomain and UpdateDomainConfig check and keep of a domain's security settings:
//! `AdvancedSecurityOptions` (fine-grained access control) and `AccessPolicies`.
//!
//! - Fine-grained access control needs HTTPS enforced, node-to-node encryption and encryption at
//!   rest, and Elasticsearch 6.7 or later ("fgac" page). With the internal user database the master
//!   is `MasterUserName` + `MasterUserPassword`, otherwise `MasterUserARN`. Once on, it cannot be
//!   turned off.
//! - A public (non-VPC) domain without it may not have an open access policy: CreateDomain answers
//!   "Enable fine-grained access control or apply a restrictive access policy to your domain", an
//!   update "Apply a restrictive access policy to your domain" (the texts users report from each
//!   call). A VPC domain accepts an open policy.
//! - The master user's password is never stored with the domain's options: DescribeDomain and
//!   DescribeDomainConfig show `{"Enabled", "InternalUserDatabaseEnabled", "AnonymousAuthEnabled"}`
//!   only, and the password lives hashed in the security plugin.

use serde_json::{Map, Value, json};

use crate::access_policy;
use crate::data_plane::security::MasterUser;
use crate::data_plane::security::api::{PASSWORD_RULE, strong_password};
use crate::policy_eval::Policy;

/// Fine-grained access control asked for by a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Fgac {
    pub internal_db: bool,
    pub master: MasterUser,
}

/// The `AdvancedSecurityOptions` DescribeDomain shows.
pub fn described(enabled: bool, internal_db: bool) -> Value {
    json!({"Enabled": enabled, "InternalUserDatabaseEnabled": internal_db, "AnonymousAuthEnabled": false})
}

fn enabled_in(options: &Map<String, Value>, block: &str, key: &str) -> bool {
    options
        .get(block)
        .and_then(|b| b.get(key))
        .and_then(Value::as_bool)
        == Some(true)
}

/// Elasticsearch before 6.7 has no security plugin.
pub(crate) fn engine_supports_fgac(engine: &str) -> bool {
    let Some(v) = engine.strip_prefix("Elasticsearch_") else {
        return true;
    };
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (6, 7)
}

/// Reads `AdvancedSecurityOptions` (merged over `current` for an update). `Ok(None)`: FGAC is not
/// asked for. `options` are the domain's options after the request (for the prerequisites).
fn fgac_of(
    asked: &Value,
    options: &Map<String, Value>,
    engine: &str,
    already: bool,
) -> Result<Option<Fgac>, String> {
    let enabled = asked["Enabled"].as_bool().unwrap_or(false);
    if !enabled {
        if already && asked.get("Enabled").is_some() {
            return Err(
                "Fine-grained access control can't be disabled once it's enabled for a domain."
                    .into(),
            );
        }
        return Ok(None);
    }
    if !engine_supports_fgac(engine) {
        return Err(format!(
            "Fine-grained access control requires Elasticsearch 6.7 or later; the domain runs {engine}."
        ));
    }
    if !enabled_in(options, "DomainEndpointOptions", "EnforceHTTPS") {
        return Err(
            "You must enable EnforceHTTPS in the domain endpoint options to use advanced security."
                .into(),
        );
    }
    if !enabled_in(options, "NodeToNodeEncryptionOptions", "Enabled") {
        return Err(
            "You must enable node-to-node encryption to use advanced security options.".into(),
        );
    }
    if !enabled_in(options, "EncryptionAtRestOptions", "Enabled") {
        return Err("You must enable encryption at rest to use advanced security options.".into());
    }
    let internal_db = asked["InternalUserDatabaseEnabled"]
        .as_bool()
        .unwrap_or(false);
    let master = &asked["MasterUserOptions"];
    let name = master["MasterUserName"].as_str();
    let password = master["MasterUserPassword"].as_str();
    let arn = master["MasterUserARN"].as_str();
    let master = if internal_db {
        let (Some(name), Some(password)) = (name, password) else {
            if already && master.is_null() {
                return Ok(None);
            }
            return Err(
                "You must provide a master username and password when the internal user database is enabled."
                    .into(),
            );
        };
        if !strong_password(password) {
            return Err(PASSWORD_RULE.into());
        }
        MasterUser::Internal {
            name: name.to_owned(),
            password: password.to_owned(),
        }
    } else {
        let Some(arn) = arn else {
            if already && master.is_null() {
                return Ok(None);
            }
            return Err(
                "You must provide a master user ARN when the internal user database is disabled."
                    .into(),
            );
        };
        if name.is_some() || password.is_some() {
            return Err(
                "A master user name and password can only be used with the internal user database."
                    .into(),
            );
        }
        if !(arn.starts_with("arn:aws:iam::") && (arn.contains(":user/") || arn.contains(":role/")))
        {
            return Err(format!(
                "Invalid master user ARN {arn}: it must be an IAM user or role ARN."
            ));
        }
        MasterUser::Arn(arn.to_owned())
    };
    Ok(Some(Fgac {
        internal_db,
        master,
    }))
}

/// The policy in `AccessPolicies` (`None` when absent or blank), or AWS's complaint. Read with
/// the gateway's grammar, so a policy the domain keeps is one the gateway can evaluate.
fn policy_of(text: Option<&Value>) -> Result<Option<Policy>, String> {
    match text {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            access_policy::parse(s).map_err(|_| format!("Error setting policy: [{s}]"))
        }
        Some(other) => Err(format!("Error setting policy: [{other}]")),
    }
}

/// Checks a CreateDomain request: `Ok(Some)` when it enables fine-grained access control.
pub fn on_create(body: &Value, engine: &str) -> Result<Option<Fgac>, String> {
    let options = body.as_object().cloned().unwrap_or_default();
    let vpc = options.get("VPCOptions").is_some_and(|v| !v.is_null());
    let fgac = fgac_of(&body["AdvancedSecurityOptions"], &options, engine, false)?;
    let policy = policy_of(options.get("AccessPolicies"))?;
    if !vpc && fgac.is_none() && access_policy::is_open(policy.as_ref()) {
        return Err(
            "Enable fine-grained access control or apply a restrictive access policy to your domain"
                .into(),
        );
    }
    Ok(fgac)
}

/// Checks an UpdateDomainConfig request against the domain's `current` options: `Ok(Some)` when
/// it enables fine-grained access control or names a new master user.
pub fn on_update(
    current: &Map<String, Value>,
    body: &Value,
    engine: &str,
    vpc: bool,
    already: bool,
) -> Result<Option<Fgac>, String> {
    let mut merged = current.clone();
    if let Some(o) = body.as_object() {
        for (k, v) in o {
            merged.insert(k.clone(), v.clone());
        }
    }
    let fgac = match body.get("AdvancedSecurityOptions") {
        Some(asked) if !asked.is_null() => fgac_of(asked, &merged, engine, already)?,
        _ => None,
    };
    let policy = policy_of(merged.get("AccessPolicies"))?;
    if body.get("AccessPolicies").is_some()
        && !vpc
        && !already
        && fgac.is_none()
        && access_policy::is_open(policy.as_ref())
    {
        return Err("Apply a restrictive access policy to your domain".into());
    }
    Ok(fgac)
}

/// The request body with its `AdvancedSecurityOptions` replaced by what may be kept and shown.
pub fn sanitized(body: &Value, fgac: Option<&Fgac>, already_internal_db: Option<bool>) -> Value {
    let mut out = body.clone();
    if let Some(o) = out.as_object_mut()
        && o.contains_key("AdvancedSecurityOptions")
    {
        let (enabled, internal_db) = match (fgac, already_internal_db) {
            (Some(f), _) => (true, f.internal_db),
            (None, Some(db)) => (true, db),
            (None, None) => (false, false),
        };
        o.insert(
            "AdvancedSecurityOptions".into(),
            described(enabled, internal_db),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secure(extra: Value) -> Value {
        let mut b = json!({
            "DomainName": "d",
            "EncryptionAtRestOptions": {"Enabled": true},
            "NodeToNodeEncryptionOptions": {"Enabled": true},
            "DomainEndpointOptions": {"EnforceHTTPS": true},
        });
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    }

    const OPEN: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"es:*","Resource":"arn:aws:es:us-east-1:123456789012:domain/d/*"}]}"#;

    #[test]
    fn an_open_public_domain_without_fgac_is_refused() {
        let body = json!({"DomainName": "d", "AccessPolicies": OPEN});
        assert_eq!(
            on_create(&body, "OpenSearch_2.11").unwrap_err(),
            "Enable fine-grained access control or apply a restrictive access policy to your domain"
        );
        let vpc =
            json!({"DomainName": "d", "AccessPolicies": OPEN, "VPCOptions": {"SubnetIds": ["s"]}});
        assert_eq!(on_create(&vpc, "OpenSearch_2.11"), Ok(None));
        let fgac = secure(
            json!({"AccessPolicies": OPEN, "AdvancedSecurityOptions": {"Enabled": true, "MasterUserOptions": {"MasterUserARN": "arn:aws:iam::123456789012:user/admin"}}}),
        );
        assert_eq!(
            on_create(&fgac, "OpenSearch_2.11"),
            Ok(Some(Fgac {
                internal_db: false,
                master: MasterUser::Arn("arn:aws:iam::123456789012:user/admin".into())
            }))
        );
        assert_eq!(
            on_create(&json!({"DomainName": "d"}), "OpenSearch_2.11"),
            Ok(None)
        );
        assert!(
            on_create(&json!({"AccessPolicies": "{not json"}), "OpenSearch_2.11")
                .unwrap_err()
                .starts_with("Error setting policy: [{not json]")
        );
    }

    #[test]
    fn fgac_needs_its_prerequisites_and_a_master() {
        let ask = json!({"AdvancedSecurityOptions": {"Enabled": true, "InternalUserDatabaseEnabled": true, "MasterUserOptions": {"MasterUserName": "admin", "MasterUserPassword": "Sandbox-Passw0rd!"}}});
        let mut no_https = secure(ask.clone());
        no_https["DomainEndpointOptions"] = json!({"EnforceHTTPS": false});
        assert!(
            on_create(&no_https, "OpenSearch_2.11")
                .unwrap_err()
                .contains("EnforceHTTPS")
        );
        let mut no_n2n = secure(ask.clone());
        no_n2n
            .as_object_mut()
            .unwrap()
            .remove("NodeToNodeEncryptionOptions");
        assert!(
            on_create(&no_n2n, "OpenSearch_2.11")
                .unwrap_err()
                .contains("node-to-node")
        );
        assert!(
            on_create(&secure(ask.clone()), "Elasticsearch_6.5")
                .unwrap_err()
                .contains("6.7")
        );
        assert!(
            on_create(&secure(ask.clone()), "Elasticsearch_7.10")
                .unwrap()
                .is_some()
        );
        let arn_with_db = secure(
            json!({"AdvancedSecurityOptions": {"Enabled": true, "InternalUserDatabaseEnabled": true, "MasterUserOptions": {"MasterUserARN": "arn:aws:iam::123456789012:user/x"}}}),
        );
        assert_eq!(
            on_create(&arn_with_db, "OpenSearch_2.11").unwrap_err(),
            "You must provide a master username and password when the internal user database is enabled."
        );
        let weak = secure(
            json!({"AdvancedSecurityOptions": {"Enabled": true, "InternalUserDatabaseEnabled": true, "MasterUserOptions": {"MasterUserName": "a", "MasterUserPassword": "password"}}}),
        );
        assert_eq!(
            on_create(&weak, "OpenSearch_2.11").unwrap_err(),
            PASSWORD_RULE
        );
    }

    #[test]
    fn updates_keep_the_rules_and_never_turn_fgac_off() {
        let current = Map::new();
        let open = json!({"AccessPolicies": OPEN});
        assert_eq!(
            on_update(&current, &open, "OpenSearch_2.11", false, false).unwrap_err(),
            "Apply a restrictive access policy to your domain"
        );
        assert_eq!(
            on_update(&current, &open, "OpenSearch_2.11", true, false),
            Ok(None)
        );
        assert_eq!(
            on_update(&current, &open, "OpenSearch_2.11", false, true),
            Ok(None)
        );
        let off = json!({"AdvancedSecurityOptions": {"Enabled": false}});
        assert!(on_update(&current, &off, "OpenSearch_2.11", false, true).is_err());
    }

    #[test]
    fn the_password_is_never_kept() {
        let body = json!({"AdvancedSecurityOptions": {"Enabled": true, "InternalUserDatabaseEnabled": true, "MasterUserOptions": {"MasterUserName": "admin", "MasterUserPassword": "Sandbox-Passw0rd!"}}});
        let fgac = Fgac {
            internal_db: true,
            master: MasterUser::Internal {
                name: "admin".into(),
                password: "Sandbox-Passw0rd!".into(),
            },
        };
        let kept = sanitized(&body, Some(&fgac), None);
        assert_eq!(kept["AdvancedSecurityOptions"], described(true, true));
        assert!(!kept.to_string().contains("Passw0rd"));
    }
}
