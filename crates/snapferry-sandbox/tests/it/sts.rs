//! STS `GetCallerIdentity`, driven by the real `aws-sdk-sts` client: snapferry learns the account
//! id for the confused-deputy condition from it, so the sandbox must answer with its own.

use crate::common;

use common::*;

async fn sts(h: &snapferry_sandbox::SandboxHandle) -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::new(&sdk_config(h).await)
}

#[tokio::test]
async fn caller_identity_is_the_configured_account_and_is_logged_as_a_read() {
    let mut config = fast_config();
    config.account_id = "210987654321".into();
    let h = start(config).await;
    let identity = sts(&h)
        .await
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity");
    assert_eq!(identity.account(), Some("210987654321"));
    assert_eq!(
        identity.arn(),
        Some("arn:aws:iam::210987654321:user/sandbox")
    );
    assert!(
        identity.user_id().is_some_and(|id| id.starts_with("AIDA")),
        "{identity:?}"
    );
    let log = h.request_log();
    let entry = log.last().expect("the call is logged");
    assert_eq!(
        (
            entry.service.as_str(),
            entry.operation.as_str(),
            entry.mutating,
            entry.status
        ),
        ("sts", "GetCallerIdentity", false, 200)
    );
    h.shutdown().await;
}

#[tokio::test]
async fn unknown_actions_get_invalid_action_and_bad_keys_are_refused() {
    let h = start(fast_config()).await;
    let err = sts(&h).await.get_session_token().send().await.unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
    let err = err.into_service_error();
    assert_eq!(err.meta().code(), Some("InvalidAction"), "{err:?}");
    assert_eq!(
        err.meta().message(),
        Some("Could not find operation GetSessionToken for version 2011-06-15")
    );

    // A wrong secret fails the signature check like every other Query-protocol service.
    let conf = sdk_config(&h)
        .await
        .into_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new(
                    "AKIASANDBOXEXAMPLE01",
                    "not-the-secret",
                    None,
                    None,
                    "t",
                ),
            ),
        )
        .build();
    let denied = aws_sdk_sts::Client::new(&conf)
        .get_caller_identity()
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(denied.meta().code(), Some("SignatureDoesNotMatch"));
    h.shutdown().await;
}

#[tokio::test]
async fn sts_stays_local_when_iam_and_s3_are_external() {
    let mut config = fast_config();
    // Nothing listens here: STS must not need it.
    config.external.iam_endpoint = Some("http://127.0.0.1:9".into());
    config.external.s3_endpoint = Some("http://127.0.0.1:9".into());
    let h = start(config).await;
    let identity = sts(&h)
        .await
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity");
    assert_eq!(identity.account(), Some("123456789012"));
    h.shutdown().await;
}
