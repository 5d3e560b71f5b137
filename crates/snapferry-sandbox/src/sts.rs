//! STS, Query protocol: `GetCallerIdentity` only. snapferry asks STS for the caller's account id
//! to write the confused-deputy condition (`aws:SourceAccount`) into the role's trust policy, so
//! the sandbox answers with the account it puts in every ARN. The caller is always the one
//! sandbox user: the sandbox accepts a single set of credentials. `AssumeRole` is not emulated
//! (temporary credentials it returned would not pass the sandbox's signature check); it gets
//! `InvalidAction` like any other unknown action. STS stays local even when IAM and S3 are
//! external (moto): only the account id is asked for, and it is the sandbox's.

use std::collections::BTreeMap;

use quick_xml::escape::escape;

const NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// The unique id AWS gives an IAM user (`AIDA` + 17 characters); fixed, as the user is.
const USER_ID: &str = "AIDASANDBOXEXAMPLE001";

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
    account_id: &str,
    params: &BTreeMap<String, String>,
    request_id: &str,
) -> (u16, String) {
    let action = params.get("Action").map(String::as_str).unwrap_or("");
    match action {
        "GetCallerIdentity" => (
            200,
            format!(
                "<GetCallerIdentityResponse xmlns=\"{NS}\"><GetCallerIdentityResult><Arn>{}</Arn><UserId>{USER_ID}</UserId><Account>{}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
                escape(caller_arn(account_id)),
                escape(account_id),
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

/// The ARN of the one sandbox user.
pub fn caller_arn(account_id: &str) -> String {
    format!("arn:aws:iam::{account_id}:user/sandbox")
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

    #[test]
    fn caller_identity_names_the_configured_account() {
        let (status, body) = handle(
            "210987654321",
            &params(&[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")]),
            "rid-1",
        );
        assert_eq!(status, 200);
        assert!(
            body.contains("<Account>210987654321</Account>")
                && body.contains("<Arn>arn:aws:iam::210987654321:user/sandbox</Arn>")
                && body.contains("<RequestId>rid-1</RequestId>"),
            "{body}"
        );
    }

    #[test]
    fn unknown_actions_are_invalid_and_nothing_mutates() {
        let p = params(&[("Action", "AssumeRole")]);
        let (status, body) = handle("1", &p, "rid");
        assert_eq!(status, 400);
        assert!(
            body.contains("<Code>InvalidAction</Code>")
                && body.contains("Could not find operation AssumeRole for version 2011-06-15"),
            "{body}"
        );
        assert_eq!(classify(&p), ("AssumeRole".to_owned(), None, false));
    }
}
