//! The domain client against local servers: signatures checked independently, TLS trusted only
//! through the CA bundle, SOCKS5 with proxy-side name resolution, error statuses classified.

use crate::support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use serde_json::json;
use snapferry_aws::domain_http::{
    DomainHttp, DomainHttpConfig, DomainHttpError, ProxyChoice, TransportCause, TransportFailure,
    transport_cause,
};
use support::*;

fn config(endpoint: &str) -> DomainHttpConfig {
    let mut c = DomainHttpConfig::new("source", endpoint, REGION);
    c.proxy = ProxyChoice::Direct;
    c.ca_bundle = None;
    c.connect_timeout = Duration::from_secs(5);
    c.read_timeout = Duration::from_secs(5);
    c
}

fn ok_handler() -> Handler {
    Arc::new(|seen: &Seen| match &seen.signature_check {
        Ok(_) => (200, vec![], r#"{"acknowledged":true}"#.to_owned()),
        Err(why) => (403, vec![], json!({"message": why}).to_string()),
    })
}

#[tokio::test]
async fn requests_are_signed_with_session_token_and_payload_hash() {
    let server = http_server(ok_handler()).await;
    let client = DomainHttp::new(&config(&format!("http://{}", server.addr)), provider()).unwrap();
    let body = json!({"type": "s3", "settings": {"bucket": "snaps", "base_path": "a b/c"}});
    let response = client
        .send(
            Method::PUT,
            "/_snapshot/my%20repo?verify=false",
            Some(&body),
        )
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    client
        .send(
            Method::GET,
            "/_cat/indices?format=json&expand_wildcards=all",
            None,
        )
        .await
        .unwrap();
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert!(s.signature_check.is_ok(), "{:?}", s.signature_check);
    }
    assert_eq!(seen[0].path_and_query, "/_snapshot/my%20repo?verify=false");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&seen[0].body).unwrap(),
        body
    );
    assert_eq!(seen[0].headers["content-type"], "application/json");
}

#[tokio::test]
async fn a_wrong_secret_is_rejected_by_the_verifier() {
    // Guards the verifier itself: a client with another secret must fail the check.
    let server = http_server(ok_handler()).await;
    let other = aws_credential_types::provider::SharedCredentialsProvider::new(
        aws_credential_types::Credentials::new(
            ACCESS_KEY,
            "not-the-secret",
            Some(SESSION_TOKEN.into()),
            None,
            "t",
        ),
    );
    let client = DomainHttp::new(&config(&format!("http://{}", server.addr)), other).unwrap();
    let err = client.send(Method::GET, "/", None).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert!(err.to_string().contains("signature mismatch"), "{err}");
}

#[tokio::test]
async fn tls_server_is_trusted_only_through_the_ca_bundle() {
    let (server, ca_pem) = tls_server(ok_handler()).await;
    let endpoint = format!("https://localhost:{}", server.addr.port());

    let without = DomainHttp::new(&config(&endpoint), provider()).unwrap();
    let err = without.send(Method::GET, "/", None).await.unwrap_err();
    let text = chain(&err);
    assert!(
        matches!(
            err,
            DomainHttpError::Transport {
                failure: TransportFailure::Connect,
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "domain source: GET / to localhost:{} failed before a response (Connect)",
            server.addr.port()
        )),
        "{text}"
    );
    assert!(
        text.contains("invalid peer certificate: UnknownIssuer"),
        "{text}"
    );
    assert!(
        !err.is_transient(),
        "an untrusted certificate is not retried: trusting its CA fixes it"
    );

    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.pem");
    // Several certificates in one bundle: an unrelated CA first, then ours.
    let unrelated = {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.self_signed(&key).unwrap().pem()
    };
    std::fs::write(&bundle, format!("{unrelated}{ca_pem}")).unwrap();
    let mut with = config(&endpoint);
    with.ca_bundle = Some(bundle);
    let client = DomainHttp::new(&with, provider()).unwrap();
    let response = client.send(Method::GET, "/", None).await.unwrap();
    assert_eq!(response.status, 200);
    assert!(server.seen.lock().unwrap()[0].signature_check.is_ok());
}

#[tokio::test]
async fn unreadable_or_empty_ca_bundle_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config("https://localhost:1");
    c.ca_bundle = Some(dir.path().join("missing.pem"));
    let err = DomainHttp::new(&c, provider()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "domain source: cannot read the CA bundle {} (AWS_CA_BUNDLE)",
            dir.path().join("missing.pem").display()
        )
    );
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    c.ca_bundle = Some(empty.clone());
    let err = DomainHttp::new(&c, provider()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "domain source: the CA bundle {} (AWS_CA_BUNDLE) holds no valid PEM certificate",
            empty.display()
        )
    );
}

#[tokio::test]
async fn socks5h_lets_the_proxy_resolve_a_name_the_client_cannot() {
    let server = http_server(ok_handler()).await;
    let name = "vpc-source.internal.invalid";
    let proxy = socks5_proxy(HashMap::from([(name.to_owned(), server.addr)])).await;
    let mut c = config(&format!("http://{name}:9200"));
    c.proxy = ProxyChoice::Explicit(format!("socks5h://{}", proxy.addr));
    let client = DomainHttp::new(&c, provider()).unwrap();
    let response = client
        .send(Method::GET, "/_cluster/health", None)
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        proxy.targets.lock().unwrap().clone(),
        vec![SocksTarget::Name(name.to_owned(), 9200)]
    );
    let seen = server.seen.lock().unwrap().clone();
    assert!(
        seen[0].signature_check.is_ok(),
        "{:?}",
        seen[0].signature_check
    );
    assert_eq!(seen[0].headers["host"], format!("{name}:9200"));

    // Without the proxy the name does not resolve at all.
    let direct = DomainHttp::new(&config(&format!("http://{name}:9200")), provider()).unwrap();
    let err = direct.send(Method::GET, "/", None).await.unwrap_err();
    assert!(
        !err.is_transient(),
        "a name that does not resolve is not retried"
    );
    assert!(
        matches!(err, DomainHttpError::Transport { .. }),
        "{}",
        chain(&err)
    );
}

#[tokio::test]
async fn socks5_resolves_locally_and_sends_the_address() {
    let server = http_server(ok_handler()).await;
    let proxy = socks5_proxy(HashMap::new()).await;
    let mut c = config(&format!("http://{}", server.addr));
    c.proxy = ProxyChoice::Explicit(format!("socks5://{}", proxy.addr));
    let client = DomainHttp::new(&c, provider()).unwrap();
    client.send(Method::GET, "/", None).await.unwrap();
    assert_eq!(
        proxy.targets.lock().unwrap().clone(),
        vec![SocksTarget::Ip(server.addr)]
    );
}

#[tokio::test]
async fn a_bad_proxy_is_refused_up_front() {
    let mut c = config("http://127.0.0.1:1");
    c.proxy = ProxyChoice::Explicit("ftp://bastion:21".into());
    let err = DomainHttp::new(&c, provider()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "domain source: proxy \"ftp://bastion:21\" is not a valid socks5h://, socks5://, http:// or https:// URL"
    );
}

#[tokio::test]
async fn error_statuses_carry_type_reason_and_retry_after() {
    let handler: Handler = Arc::new(|seen: &Seen| {
        if seen.path_and_query.starts_with("/_snapshot/repo/busy") {
            (
                503,
                vec![("retry-after", "12".to_owned())],
                json!({"error": {"root_cause": [{"type": "concurrent_snapshot_execution_exception", "reason": "[repo:busy] a snapshot is already running"}], "type": "concurrent_snapshot_execution_exception", "reason": "[repo:busy] a snapshot is already running"}, "status": 503}).to_string(),
            )
        } else if seen.path_and_query == "/_recovery" {
            (
                401,
                vec![],
                r#"{"Message":"Your request: '/_recovery' is not allowed."}"#.to_owned(),
            )
        } else {
            (404, vec![], json!({"error": {"root_cause": [], "type": "snapshot_missing_exception", "reason": "[repo:gone] is missing"}, "status": 404}).to_string())
        }
    });
    let server = http_server(handler).await;
    let client = DomainHttp::new(&config(&format!("http://{}", server.addr)), provider()).unwrap();

    let busy = client
        .send(Method::PUT, "/_snapshot/repo/busy", Some(&json!({})))
        .await
        .unwrap_err();
    assert_eq!(
        busy.to_string(),
        "domain source: PUT /_snapshot/repo/busy returned 503: concurrent_snapshot_execution_exception: [repo:busy] a snapshot is already running"
    );
    assert!(busy.is_transient());
    assert_eq!(busy.retry_after(), Some(Duration::from_secs(12)));

    let refused = client
        .send(Method::GET, "/_recovery", None)
        .await
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "domain source: GET /_recovery returned 401: Your request: '/_recovery' is not allowed."
    );
    assert!(!refused.is_transient());

    let missing = client
        .send(Method::GET, "/_snapshot/repo/gone", None)
        .await
        .unwrap_err();
    assert_eq!(missing.error_type(), Some("snapshot_missing_exception"));
    assert!(!missing.is_transient());
}

#[tokio::test]
async fn a_refused_connection_is_a_transient_connect_failure() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = DomainHttp::new(&config(&format!("http://127.0.0.1:{port}")), provider()).unwrap();
    let err = client.send(Method::GET, "/", None).await.unwrap_err();
    assert!(
        matches!(
            err,
            DomainHttpError::Transport {
                failure: TransportFailure::Connect,
                ..
            }
        ),
        "{}",
        chain(&err)
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn an_http_proxy_forwards_the_signed_request_for_a_name_only_it_knows() {
    // The test server plays the forward proxy: it receives the absolute-form request.
    let server = http_server(ok_handler()).await;
    let name = "vpc-target.internal.invalid";
    let mut c = config(&format!("http://{name}:9200"));
    c.proxy = ProxyChoice::Explicit(format!("http://{}", server.addr));
    let client = DomainHttp::new(&c, provider()).unwrap();
    let response = client
        .send(Method::GET, "/_cat/indices?format=json", None)
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen[0].headers["host"], format!("{name}:9200"));
    assert!(
        seen[0].signature_check.is_ok(),
        "{:?}",
        seen[0].signature_check
    );
}

#[tokio::test]
async fn a_silent_server_hits_the_read_timeout_and_is_transient() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and reads, never answers.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let mut c = config(&format!("http://{addr}"));
    c.read_timeout = Duration::from_millis(200);
    let client = DomainHttp::new(&c, provider()).unwrap();
    let err = client
        .send(Method::GET, "/_cluster/health", None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DomainHttpError::Transport {
                failure: TransportFailure::Timeout,
                ..
            }
        ),
        "{}",
        chain(&err)
    );
    assert!(err.is_transient());
}

#[derive(Debug)]
struct NoCredentials;

impl aws_credential_types::provider::ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::ready(Err(
            aws_credential_types::provider::error::CredentialsError::not_loaded(
                "no profile named ci",
            ),
        ))
    }
}

#[tokio::test]
async fn missing_credentials_are_named_and_nothing_is_sent() {
    let server = http_server(ok_handler()).await;
    let client = DomainHttp::new(
        &config(&format!("http://{}", server.addr)),
        aws_credential_types::provider::SharedCredentialsProvider::new(NoCredentials),
    )
    .unwrap();
    let err = client.send(Method::GET, "/", None).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "domain source: no AWS credentials to sign GET /"
    );
    assert!(!err.is_transient());
    assert!(server.seen.lock().unwrap().is_empty());
}

/// With `socks5h://` the proxy resolves the name; when it cannot, it answers SOCKS5 0x04 "host
/// unreachable" (as Dante does on a DNS miss). That is the same miss as a local NXDOMAIN: not
/// retried, and the message names the endpoint and the proxy, unless the domain was created by this run and turned active moments ago.
#[tokio::test]
async fn a_name_the_socks_proxy_cannot_resolve_is_unresolved_like_a_local_dns_miss() {
    let proxy = socks5_proxy(HashMap::new()).await;
    let name = "vpc-copy.internal.invalid";
    let mut c = config(&format!("https://{name}:9200"));
    c.proxy = ProxyChoice::Explicit(format!("socks5h://{}", proxy.addr));
    let client = DomainHttp::new(&c, provider()).unwrap();
    let err = client.send(Method::GET, "/", None).await.unwrap_err();
    let text = chain(&err);
    let DomainHttpError::Transport { source, .. } = &err else {
        panic!("not a transport error: {text}");
    };
    assert_eq!(
        transport_cause(source),
        TransportCause::Unresolved,
        "{text}"
    );
    assert!(!err.is_transient(), "not fresh: {text}");
    assert_eq!(
        err.to_string(),
        format!(
            "domain source: GET / to {name}:9200 failed before a response (Connect); the proxy \
             socks5h://{} answered host unreachable: it cannot resolve or reach that name; \
             check the domain's endpoint, and that the proxy runs inside the domain's VPC and \
             uses its DNS",
            proxy.addr
        )
    );
    assert!(
        text.ends_with("caused by: SOCKS error: host unreachable"),
        "the chain reqwest gives for the proxy's reply: {text}"
    );
    assert_eq!(
        proxy.targets.lock().unwrap().clone(),
        vec![SocksTarget::Name(name.to_owned(), 9200)]
    );

    // The same refusal right after this run's domain turned active: DNS catching up, retried.
    let fresh = DomainHttp::new(&c, provider())
        .unwrap()
        .with_fresh_endpoint(std::time::Instant::now());
    let err = fresh.send(Method::GET, "/", None).await.unwrap_err();
    assert!(err.is_transient(), "{}", chain(&err));
}
