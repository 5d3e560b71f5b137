//! STS, Query protocol: `GetCallerIdentity` and `AssumeRole`.
//!
//! `GetCallerIdentity` answers with the calling identity's ARN (a role by its session), user id
//! and account; like AWS, it needs no permission. snapferry asks it for the account id of the
//! confused-deputy condition (`aws:SourceAccount`) in the role's trust policy.
//!
//! `AssumeRole` is checked as AWS checks it: the request against STS's model (`RoleSessionName`,
//! `ExternalId` patterns and lengths, `DurationSeconds` 900–43200), the role as the other
//! services see it (a role IAM just created is not assumable until it has propagated), the
//! role's trust policy read by [`crate::policy_eval`] with `sts:ExternalId` and
//! `sts:RoleSessionName` (a trust policy that names the caller lets it in; one that names only
//! its account delegates to the caller's identity policies), and, when the role is in another
//! account, the caller's identity policy allowing `sts:AssumeRole` on it as well. A refusal is
//! 403 `AccessDenied` "User: … is not authorized to perform: sts:AssumeRole on resource: …". The
//! session it hands out is a new identity ([`crate::identity::Identities::add_session`]): the
//! role's inline policies as they were when it was assumed, signing with its own `ASIA…` key and
//! session token, until `DurationSeconds` of simulated time have passed (then `ExpiredToken`).
//! A role session may assume another role (role chaining) for at most one hour. STS stays local
//! even when IAM and S3 are external (moto).

use std::collections::BTreeMap;

use quick_xml::escape::escape;
use rand::Rng;

use crate::Shared;
use crate::config::CredentialsConfig;
use crate::identity::{Caller, Identity};
use crate::policy_eval::{Context, Policy};

const NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// Which STS operation a request is, for the log and fault rules: (operation, target,
/// mutating). No STS call changes anything in the sandbox's resources.
pub fn classify(params: &BTreeMap<String, String>) -> (String, Option<String>, bool) {
    let action = params
        .get("Action")
        .cloned()
        .unwrap_or_else(|| "Unknown".into());
    let target = params.get("RoleArn").cloned();
    (action, target, false)
}

/// Answers one request of `caller`, signed for `region`: (HTTP status, XML body).
pub fn handle(
    shared: &Shared,
    caller: &std::sync::Arc<Identity>,
    region: &str,
    params: &BTreeMap<String, String>,
    request_id: &str,
) -> (u16, String) {
    let action = params.get("Action").map(String::as_str).unwrap_or("");
    match action {
        "GetCallerIdentity" => caller_identity(caller, request_id),
        "AssumeRole" => match assume_role(shared, caller, region, params) {
            Ok(result) => (
                200,
                format!(
                    "<AssumeRoleResponse xmlns=\"{NS}\"><AssumeRoleResult>{result}</AssumeRoleResult><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></AssumeRoleResponse>"
                ),
            ),
            Err((status, code, message)) => (status, error_xml(code, &message, request_id)),
        },
        other => (
            400,
            error_xml(
                "InvalidAction",
                &format!("Could not find operation {other} for version 2011-06-15"),
                request_id,
            ),
        ),
    }
}

fn caller_identity(caller: &Identity, request_id: &str) -> (u16, String) {
    (
        200,
        format!(
            "<GetCallerIdentityResponse xmlns=\"{NS}\"><GetCallerIdentityResult><Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
            escape(caller.caller_arn()),
            escape(caller.user_id()),
            escape(&caller.account),
        ),
    )
}

type StsError = (u16, &'static str, String);

/// The session length of a role session assuming another role (role chaining), at most.
const CHAINED_SESSION_SECS: u32 = 3600;

fn assume_role(
    shared: &Shared,
    caller: &std::sync::Arc<Identity>,
    region: &str,
    params: &BTreeMap<String, String>,
) -> Result<String, StsError> {
    let model = crate::model::sts();
    model
        .query_input("AssumeRole", params)
        .and_then(|input| model.validate("AssumeRole", &input))
        .map_err(|e| (400, "ValidationError", e.message().to_owned()))?;
    let role_arn = params.get("RoleArn").cloned().unwrap_or_default();
    let session_name = params.get("RoleSessionName").cloned().unwrap_or_default();
    let duration: u32 = params
        .get("DurationSeconds")
        .and_then(|d| d.parse().ok())
        .unwrap_or(3600);
    let denied = |why: Option<String>| {
        let base = format!(
            "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            caller.caller_arn()
        );
        (
            403,
            "AccessDenied",
            match why {
                Some(why) => format!("{base} {why}"),
                None => base,
            },
        )
    };
    let Some((role_account, _)) = crate::iam::role_key(&role_arn) else {
        return Err(denied(None));
    };
    // STS sees a role once IAM's change has reached it, as the other services do.
    let Some(role) = shared.iam.as_seen_by_services(&role_arn) else {
        return Err(denied(None));
    };
    let Ok(trust) = Policy::parse(&role.trust_policy, true) else {
        return Err(denied(None));
    };
    let mut context = Context::default()
        .with("sts:RoleSessionName", session_name.clone())
        .with("aws:SourceIdentity", caller.caller_arn());
    if let Some(external_id) = params.get("ExternalId") {
        context = context.with("sts:ExternalId", external_id.clone());
    }
    // The trust policy must name the caller or its account, whatever its identity allows ...
    if !caller.trusted_by(&trust, "sts:AssumeRole", &role_arn, context.clone()) {
        return Err(denied(None));
    }
    // ... and then the usual decision: across accounts the caller's identity policy must allow
    // too; in one account, so must it when the trust policy names only the account.
    Caller::Signed(caller.clone())
        .authorize_in(
            "sts:AssumeRole",
            &role_arn,
            Some(&role_account),
            context,
            Some(&trust),
        )
        .map_err(|denial| (403, "AccessDenied", denial.message()))?;
    let max = shared.iam.max_session_duration(&role_arn).unwrap_or(3600);
    if caller.is_role_session() && duration > CHAINED_SESSION_SECS {
        return Err((
            400,
            "ValidationError",
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.".into(),
        ));
    }
    if duration > max {
        return Err((
            400,
            "ValidationError",
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
                .into(),
        ));
    }
    let credentials = CredentialsConfig {
        access_key_id: format!("ASIA{}", random_text(16, UPPER_ALNUM)),
        secret_access_key: random_text(40, SECRET_ALPHABET),
        session_token: Some(format!(
            "IQoJb3JpZ2luX2Vj{}",
            random_text(160, SECRET_ALPHABET)
        )),
    };
    let policies = role
        .inline_policies
        .iter()
        .filter_map(|p| Policy::parse(p, false).ok())
        .collect();
    let lifetime = shared.config.scaled(f64::from(duration));
    let role_id = role.id.clone().unwrap_or_default();
    let session = Identity::session(
        &role_arn,
        &role_id,
        &session_name,
        credentials.clone(),
        policies,
        region,
        shared.clock.now() + lifetime,
    );
    let assumed_arn = session.caller_arn();
    let assumed_id = session.user_id();
    shared.identities.add_session(session);
    // The moment the credentials stop working, in real time (simulated time is scaled).
    let expiration = chrono::Utc::now()
        + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::zero());
    Ok(format!(
        "<Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey><SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>{}</AssumedRoleId><Arn>{}</Arn></AssumedRoleUser><PackedPolicySize>0</PackedPolicySize>",
        credentials.access_key_id,
        escape(&credentials.secret_access_key),
        escape(credentials.session_token.as_deref().unwrap_or("")),
        expiration.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        escape(&assumed_id),
        escape(&assumed_arn),
    ))
}

const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn random_text(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// STS's XML error document (a client error: `Sender`).
fn error_xml(code: &str, message: &str, request_id: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"{NS}\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
        escape(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn admin(account: &str) -> std::sync::Arc<crate::identity::Identity> {
        let config = crate::SandboxConfig {
            account_id: account.to_owned(),
            ..crate::SandboxConfig::default()
        };
        crate::identity::Identities::from_config(&config)
            .unwrap()
            .default_identity()
    }

    #[test]
    fn caller_identity_names_the_configured_account() {
        let (status, body) = caller_identity(&admin("210987654321"), "rid-1");
        assert_eq!(status, 200);
        assert!(
            body.contains("<Account>210987654321</Account>")
                && body.contains("<Arn>arn:aws:iam::210987654321:user/sandbox</Arn>")
                && body.contains("<UserId>AIDASANDBOXEXAMPLE001</UserId>")
                && body.contains("<RequestId>rid-1</RequestId>"),
            "{body}"
        );
    }

    #[test]
    fn assume_role_is_logged_with_its_role_and_changes_nothing() {
        let p = params(&[
            ("Action", "AssumeRole"),
            ("RoleArn", "arn:aws:iam::111111111111:role/ops"),
        ]);
        assert_eq!(
            classify(&p),
            (
                "AssumeRole".to_owned(),
                Some("arn:aws:iam::111111111111:role/ops".to_owned()),
                false
            )
        );
    }
}
