//! STS, Query protocol: `GetCallerIdentity` only. snapferry asks STS for the caller's account id
//! to write the confused-deputy condition (`aws:SourceAccount`) into the role's trust policy, so
//! the sandbox answers with the account it puts in every ARN, and with the calling identity's
//! ARN and user id ([`crate::identity`]); like AWS, it needs no permission. `AssumeRole` is not emulated
//! (temporary credentials it returned would not pass the sandbox's signature check); it gets
//! `InvalidAction` like any other unknown action. STS stays local even when IAM and S3 are
//! external (moto): only the account id is asked for, and it is the sandbox's.

use std::collections::BTreeMap;

use quick_xml::escape::escape;

const NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// Which STS operation a request is, for the log and fault rules: (operation, target,
/// mutating). No STS call changes anything in the sandbox.
pub fn classify(params: &BTreeMap<String, String>) -> (String, Option<String>, bool) {
    let action = params
        .get("Action")
        .cloned()
        .unwrap_or_else(|| "Unknown".into());
    (action, None, false)
}

/// Answers one request: (HTTP status, XML body).
pub fn handle(
    caller: &crate::identity::Identity,
    params: &BTreeMap<String, String>,
    request_id: &str,
) -> (u16, String) {
    let action = params.get("Action").map(String::as_str).unwrap_or("");
    match action {
        "GetCallerIdentity" => (
            200,
            format!(
                "<GetCallerIdentityResponse xmlns=\"{NS}\"><GetCallerIdentityResult><Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
                escape(caller.caller_arn()),
                escape(caller.user_id()),
                escape(&caller.account),
            ),
        ),
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
        let (status, body) = handle(
            &admin("210987654321"),
            &params(&[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")]),
            "rid-1",
        );
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
    fn unknown_actions_are_invalid_and_nothing_mutates() {
        let p = params(&[("Action", "AssumeRole")]);
        let (status, body) = handle(&admin("123456789012"), &p, "rid");
        assert_eq!(status, 400);
        assert!(
            body.contains("<Code>InvalidAction</Code>")
                && body.contains("Could not find operation AssumeRole for version 2011-06-15"),
            "{body}"
        );
        assert_eq!(classify(&p), ("AssumeRole".to_owned(), None, false));
    }
}
