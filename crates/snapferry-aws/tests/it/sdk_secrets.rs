//! The SDK clients' own logs at TRACE: aws-sigv4 traces the canonical request, which carries the
//! session token, so unfiltered TRACE output leaks it; with [`SECRET_SAFE_LOG_DIRECTIVES`]
//! appended to the filter nothing secret is written. The CLI builds its filter that way.

use crate::support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use snapferry_aws::clients::{AwsContext, AwsOptions, SECRET_SAFE_LOG_DIRECTIVES};
use support::*;
use tracing_subscriber::EnvFilter;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const CALLER_IDENTITY: &str = r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/ci</Arn><UserId>AIDATEST</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></GetCallerIdentityResponse>"#;

/// Runs STS and S3 calls with everything at TRACE through `filter`; returns the log text and
/// the signatures the server received.
async fn sdk_calls_logged_with(filter: &str) -> (String, Vec<String>) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let handler: Handler = Arc::new(|seen: &Seen| {
        if seen.path_and_query.contains("policy") {
            (
                200,
                vec![],
                r#"{"Version":"2012-10-17","Statement":[]}"#.to_owned(),
            )
        } else {
            (200, vec![], CALLER_IDENTITY.to_owned())
        }
    });
    let (server, ca_pem) = tls_server(handler).await;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ca.pem");
    std::fs::write(&bundle, ca_pem).unwrap();
    let aws = AwsContext::load(AwsOptions {
        ca_bundle: Some(bundle),
        profile: None,
        fallback_region: Some(REGION.to_owned()),
        endpoint_url: Some(format!("https://localhost:{}", server.addr.port())),
        credentials: Some(provider()),
    })
    .await
    .unwrap();
    aws.account_id(REGION, None).await.unwrap();
    let clients = aws.clients(REGION, None).await.unwrap();
    clients
        .s3
        .get_bucket_policy()
        .bucket("snaps")
        .send()
        .await
        .unwrap();

    let signatures = server
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| {
            let auth = &s.headers["authorization"];
            auth[auth.find("Signature=").unwrap() + "Signature=".len()..].to_owned()
        })
        .collect();
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    (text, signatures)
}

#[tokio::test]
async fn unfiltered_trace_would_leak_the_session_token() {
    // Guards the premise of the directives: if the SDK ever stops tracing the canonical
    // request, this fails and the directives can be reconsidered.
    let (text, _) = sdk_calls_logged_with("trace").await;
    assert!(
        text.contains(SESSION_TOKEN),
        "no token in {} bytes of TRACE logs",
        text.len()
    );
}

#[tokio::test]
async fn secret_safe_directives_keep_every_secret_out_of_trace_logs() {
    let (text, signatures) =
        sdk_calls_logged_with(&format!("trace,{SECRET_SAFE_LOG_DIRECTIVES}")).await;
    assert!(
        text.len() > 1000,
        "TRACE logs were captured: {} bytes",
        text.len()
    );
    assert_eq!(signatures.len(), 2);
    assert!(!text.contains(SECRET_KEY));
    assert!(!text.contains(SESSION_TOKEN));
    for signature in &signatures {
        assert!(
            !text.contains(signature.as_str()),
            "signature {signature} logged"
        );
    }
}
