//! With every log line of every crate captured at TRACE (tracing and `log` records from
//! reqwest/hyper alike), the secret key, the session token and the signature never show up,
//! neither in logs nor in errors. A separate test binary, because it installs the global
//! subscriber.

#[path = "it/support/mod.rs"]
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Method;
use serde_json::json;
use snapferry_aws::domain_http::{DomainHttp, DomainHttpConfig, ProxyChoice};
use support::*;

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

#[tokio::test]
async fn no_secret_reaches_trace_logs_or_errors() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .try_init()
        .expect("the only subscriber in this test binary");

    let handler: Handler = Arc::new(|seen: &Seen| {
        if seen.path_and_query == "/fail" {
            (403, vec![], r#"{"message":"denied"}"#.to_owned())
        } else {
            (200, vec![], r#"{"ok":true}"#.to_owned())
        }
    });
    let server = http_server(handler).await;
    let mut config = DomainHttpConfig::new("source", &format!("http://{}", server.addr), REGION);
    config.proxy = ProxyChoice::Direct;
    config.ca_bundle = None;
    config.read_timeout = Duration::from_secs(5);
    let client = DomainHttp::new(&config, provider()).unwrap();
    client
        .send(Method::PUT, "/_snapshot/r", Some(&json!({"type": "s3"})))
        .await
        .unwrap();
    let denied = client.send(Method::GET, "/fail", None).await.unwrap_err();
    let mut unreachable = config.clone();
    unreachable.endpoint = "http://127.0.0.1:1".into();
    let refused = DomainHttp::new(&unreachable, provider())
        .unwrap()
        .send(Method::GET, "/", None)
        .await
        .unwrap_err();

    let seen = server.seen.lock().unwrap().clone();
    let signatures: Vec<String> = seen
        .iter()
        .map(|s| s.signature_check.clone().expect("signed correctly"))
        .collect();
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let errors = format!(
        "{}\n{:?}\n{}\n{:?}\n{client:?}",
        chain(&denied),
        denied,
        chain(&refused),
        refused
    );

    // The capture works: the client's own and hyper/reqwest's lines are there.
    assert!(logs.contains("domain response"), "{logs}");
    assert!(logs.contains("TRACE") || logs.contains("DEBUG"), "{logs}");
    for secret in [SECRET_KEY, SESSION_TOKEN]
        .into_iter()
        .chain(signatures.iter().map(String::as_str))
    {
        assert!(
            !logs.contains(secret),
            "{secret} leaked into the logs:\n{logs}"
        );
        assert!(
            !errors.contains(secret),
            "{secret} leaked into an error:\n{errors}"
        );
    }
    assert!(!logs.contains("Signature="), "{logs}");
    assert!(
        !logs.to_ascii_lowercase().contains("x-amz-security-token:"),
        "{logs}"
    );
}
