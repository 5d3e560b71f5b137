//! The HTTP client for a domain's data plane (`_snapshot`, `_cat`, `_recovery`, ...).
//!
//! The AWS SDK covers the control plane only; the snapshot API is OpenSearch's own REST API,
//! reached on the domain endpoint and authorised with SigV4 for service `es`. Domains often sit
//! in a VPC reachable only through a bastion, so each domain can have its own proxy (`socks5h://`
//! resolves names at the proxy), and corporate networks intercept TLS, so `AWS_CA_BUNDLE` is
//! trusted on top of the built-in roots.
//!
//! Secrets: credentials are fetched per request and only handed to the signer. The signer's own
//! trace output (which, in the aws-sigv4 version pinned here, prints the canonical request with
//! the session token) is silenced while signing, and no error here carries a header.
//! A client made `with_basic_auth` (the security plugin's REST API as a domain's internal
//! master) sends HTTP basic auth instead of a signature; the header value is marked sensitive
//! and never shown by `Debug`.

// The error carries domain, method, path, status, type and reason so a caller can decide and
// report without a second look-up; it is returned once per HTTP round trip, so its size is moot.
#![allow(clippy::result_large_err)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use http::{HeaderValue, Method};
use serde::de::DeserializeOwned;
use serde_json::Value;
use thiserror::Error;
use url::Url;

/// The SigV4 service name of the managed OpenSearch data plane.
pub const SIGNING_SERVICE: &str = "es";

/// Which proxy, if any, requests to a domain go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyChoice {
    /// The standard variables (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`).
    FromEnvironment,
    /// This proxy only (`socks5h://`, `socks5://`, `http://`, `https://`); overrides the variables.
    Explicit(String),
    /// Direct connection, ignoring the variables.
    Direct,
}

/// Everything needed to reach one domain's data plane.
#[derive(Debug, Clone)]
pub struct DomainHttpConfig {
    /// The plan's name for the domain, used in every error.
    pub domain: String,
    /// Endpoint, with or without `https://`.
    pub endpoint: String,
    /// Region the domain lives in (part of the signature).
    pub region: String,
    /// Proxy selection.
    pub proxy: ProxyChoice,
    /// Extra PEM CA bundle to trust (usually `AWS_CA_BUNDLE`).
    pub ca_bundle: Option<PathBuf>,
    /// Time allowed to open the connection (incl. proxy and TLS).
    pub connect_timeout: Duration,
    /// Time allowed between two reads of a response.
    pub read_timeout: Duration,
}

impl DomainHttpConfig {
    /// A config with the defaults snapferry uses: environment proxy, `AWS_CA_BUNDLE` if set,
    /// 10 s connect and 60 s read timeouts.
    pub fn new(domain: &str, endpoint: &str, region: &str) -> Self {
        Self {
            domain: domain.to_owned(),
            endpoint: endpoint.to_owned(),
            region: region.to_owned(),
            proxy: ProxyChoice::FromEnvironment,
            ca_bundle: std::env::var_os("AWS_CA_BUNDLE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// How a request failed before any HTTP status arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFailure {
    /// TCP, proxy or TLS connection could not be made.
    Connect,
    /// Connect or read timeout.
    Timeout,
    /// The connection broke while sending or receiving.
    Broken,
}

/// A failure talking to a domain's data plane.
#[derive(Debug, Error)]
pub enum DomainHttpError {
    /// The endpoint is not a URL.
    #[error("domain {domain}: endpoint {endpoint:?} is not a valid URL")]
    InvalidEndpoint {
        domain: String,
        endpoint: String,
        #[source]
        source: url::ParseError,
    },
    /// The CA bundle file cannot be read.
    #[error("domain {domain}: cannot read the CA bundle {path} (AWS_CA_BUNDLE)")]
    CaBundleUnreadable {
        domain: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The CA bundle is not PEM certificates.
    #[error("domain {domain}: the CA bundle {path} (AWS_CA_BUNDLE) holds no valid PEM certificate")]
    CaBundleInvalid {
        domain: String,
        path: PathBuf,
        #[source]
        source: Option<reqwest::Error>,
    },
    /// The proxy URL is not usable.
    #[error(
        "domain {domain}: proxy {proxy:?} is not a valid socks5h://, socks5://, http:// or https:// URL"
    )]
    InvalidProxy {
        domain: String,
        proxy: String,
        #[source]
        source: Option<reqwest::Error>,
    },
    /// The HTTP client could not be built (TLS backend set-up).
    #[error("domain {domain}: cannot build the HTTP client")]
    Client {
        domain: String,
        #[source]
        source: reqwest::Error,
    },
    /// No credentials to sign with.
    #[error("domain {domain}: no AWS credentials to sign {method} {path}")]
    Credentials {
        domain: String,
        method: Method,
        path: String,
        #[source]
        source: CredentialsError,
    },
    /// The signer refused the request (e.g. a header that is not valid text).
    #[error("domain {domain}: cannot sign {method} {path}")]
    Signing {
        domain: String,
        method: Method,
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No response: connect failure, timeout, broken connection.
    #[error(
        "domain {domain}: {method} {path} to {endpoint} failed before a response ({failure:?}){}",
        connect_hint(*.failure, transport_cause(.source), .proxy.as_deref())
    )]
    Transport {
        domain: String,
        /// `host:port` that was being reached (no path, no query).
        endpoint: String,
        method: Method,
        path: String,
        failure: TransportFailure,
        /// The plan's proxy for this domain as `scheme://host:port` (never its credentials).
        proxy: Option<String>,
        /// The endpoint's name did not resolve while it was fresh (see [`FRESH_ENDPOINT_WINDOW`]).
        fresh_name_unresolved: bool,
        #[source]
        source: reqwest::Error,
    },
    /// The domain answered with an error status.
    #[error(
        "domain {domain}: {method} {path} returned {status}{}{}",
        describe(error_type.as_deref(), reason.as_deref()),
        cause.as_deref().map(|c| format!(" (caused by {c})")).unwrap_or_default()
    )]
    Status {
        domain: String,
        method: Method,
        path: String,
        status: u16,
        /// OpenSearch's `error.type` (e.g. `snapshot_missing_exception`).
        error_type: Option<String>,
        /// OpenSearch's `error.reason` or AWS's `Message`.
        reason: Option<String>,
        /// The innermost `caused_by` as `type: reason`: where OpenSearch puts what actually
        /// went wrong when the top level is generic (a repository verification names only
        /// the path; the STS or S3 refusal is three causes down).
        cause: Option<String>,
        /// `Retry-After` in seconds, when given.
        retry_after: Option<Duration>,
    },
    /// A 2xx body that is not the expected JSON.
    #[error("domain {domain}: {method} {path} returned a body snapferry cannot read")]
    Decode {
        domain: String,
        method: Method,
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

fn describe(error_type: Option<&str>, reason: Option<&str>) -> String {
    match (error_type, reason) {
        (Some(t), Some(r)) => format!(": {t}: {r}"),
        (Some(t), None) => format!(": {t}"),
        (None, Some(r)) => format!(": {r}"),
        (None, None) => String::new(),
    }
}

/// How long after a domain this run created turned active a name that does not resolve is
/// taken for DNS catching up (a resolver that asked before the record existed caches the
/// NXDOMAIN for the zone's negative TTL) rather than for a wrong endpoint.
pub const FRESH_ENDPOINT_WINDOW: Duration = Duration::from_secs(10 * 60);

/// What went wrong before any response, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportCause {
    /// The host name did not resolve.
    Unresolved,
    /// TLS refused the server's certificate.
    Certificate,
    /// Anything else: refused or broken connections, timeouts.
    Other,
}

/// How hyper-util's SOCKS5 client reports a proxy's reply 0x04 "host unreachable": what a
/// proxy resolving names for its clients (`socks5h://`; Dante, the sandbox's test proxy)
/// answers when the name does not resolve on its side.
const SOCKS_HOST_UNREACHABLE: &str = "SOCKS error: host unreachable";

/// The cause of a transport error, read from its whole chain. A name is unresolved when the
/// local resolver says so (`dns error`) and when the SOCKS proxy does (host unreachable): with
/// `socks5h://` the proxy resolves the name, and a DNS miss there is the same miss.
pub fn transport_cause(error: &(dyn std::error::Error + 'static)) -> TransportCause {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        let text = e.to_string();
        if text.contains("dns error") || text.contains(SOCKS_HOST_UNREACHABLE) {
            return TransportCause::Unresolved;
        }
        if text.contains("invalid peer certificate") {
            return TransportCause::Certificate;
        }
        source = e.source();
    }
    TransportCause::Other
}

/// Whether a failure before any response may go away on a later attempt. A certificate
/// refused stays refused (trusting its CA through `AWS_CA_BUNDLE` fixes it). A name that does
/// not resolve (a VPC endpoint without its proxy, a typo in `endpoint:`) will not resolve on
/// the next attempt either, except right after its domain was created and turned active
/// (`fresh`): then it is DNS's negative caching, which ends on its own.
pub fn transport_is_transient(cause: TransportCause, fresh: bool) -> bool {
    match cause {
        TransportCause::Unresolved => fresh,
        TransportCause::Certificate => false,
        TransportCause::Other => true,
    }
}

/// What to check when a domain cannot be reached at all.
fn connect_hint(failure: TransportFailure, cause: TransportCause, proxy: Option<&str>) -> String {
    match (failure, proxy) {
        (TransportFailure::Connect, None) => {
            "; a domain in a VPC is reachable only from inside it: set `proxy:` on the domain \
             in the plan (e.g. socks5h://localhost:1080 over `ssh -D 1080 bastion`)"
                .to_owned()
        }
        (TransportFailure::Connect, Some(proxy)) if cause == TransportCause::Unresolved => {
            format!(
                "; the proxy {proxy} answered host unreachable: it cannot resolve or reach \
                 that name; check the domain's endpoint, and that the proxy runs inside the \
                 domain's VPC and uses its DNS"
            )
        }
        (TransportFailure::Connect, Some(proxy)) => format!(" through the proxy {proxy}"),
        (TransportFailure::Timeout | TransportFailure::Broken, _) => String::new(),
    }
}

/// A proxy URL as `scheme://host:port`, for messages: user and password left out.
/// A proxy URL as written, but with any `user:password@` replaced by `***@`, for an error
/// about the URL itself (the user needs to see what is wrong with it; never the password).
fn proxy_without_credentials(proxy: &str) -> String {
    let rest_at = proxy.find("://").map_or(0, |i| i + 3);
    let authority_end = proxy[rest_at..]
        .find('/')
        .map_or(proxy.len(), |i| rest_at + i);
    match proxy[rest_at..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &proxy[..rest_at], &proxy[rest_at + at..]),
        None => proxy.to_owned(),
    }
}

fn proxy_for_display(proxy: &str) -> String {
    match Url::parse(proxy) {
        Ok(url) => match (url.host_str(), url.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
            (Some(host), None) => format!("{}://{host}", url.scheme()),
            _ => format!("{}://", url.scheme()),
        },
        Err(_) => "(unparsable proxy URL)".to_owned(),
    }
}

impl DomainHttpError {
    /// Whether repeating the same request later may succeed (429, 502, 503, 504, connect
    /// failures, timeouts, broken connections).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport {
                source,
                fresh_name_unresolved,
                ..
            } => *fresh_name_unresolved || transport_is_transient(transport_cause(source), false),
            Self::Status { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            _ => false,
        }
    }

    /// How long the server asked to wait before retrying.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// OpenSearch's error type, e.g. `snapshot_missing_exception`.
    pub fn error_type(&self) -> Option<&str> {
        match self {
            Self::Status { error_type, .. } => error_type.as_deref(),
            _ => None,
        }
    }

    /// The innermost cause OpenSearch gave (`type: reason`), when it nested one.
    pub fn cause(&self) -> Option<&str> {
        match self {
            Self::Status { cause, .. } => cause.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status, when a response arrived.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The innermost `error.caused_by` of an OpenSearch error body as `type: reason`, `None` when
/// the error has no nested cause.
pub fn innermost_cause(body: &[u8]) -> Option<String> {
    let v = serde_json::from_slice::<Value>(body).ok()?;
    let mut cause = v.get("error")?.get("caused_by")?;
    while let Some(next) = cause.get("caused_by").filter(|c| c.is_object()) {
        cause = next;
    }
    let text = |key| cause.get(key).and_then(Value::as_str);
    match (text("type"), text("reason")) {
        (Some(t), Some(r)) => Some(truncate(format!("{t}: {r}"))),
        (Some(t), None) => Some(t.to_owned()),
        (None, Some(r)) => Some(truncate(r.to_owned())),
        (None, None) => None,
    }
}

/// `(type, reason)` from an OpenSearch error body
/// (`{"error":{"root_cause":[..],"type":..,"reason":..},"status":N}`, or the older
/// `{"error":"text"}`) or an AWS gateway body (`{"Message":..}` / `{"message":..}`).
pub fn parse_error_body(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body).trim().to_owned();
        return (None, (!text.is_empty()).then(|| truncate(text)));
    };
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    match v.get("error") {
        Some(Value::Object(e)) => {
            let root = e
                .get("root_cause")
                .and_then(Value::as_array)
                .and_then(|a| a.first());
            let error_type = s(e.get("type")).or_else(|| s(root.and_then(|r| r.get("type"))));
            let reason = s(e.get("reason")).or_else(|| s(root.and_then(|r| r.get("reason"))));
            (error_type, reason)
        }
        // Dashboards/Kibana (`{"statusCode":400,"error":"Bad Request","message":..}`) put the
        // reason in `message`.
        Some(Value::String(text)) => (None, s(v.get("message")).or_else(|| Some(text.clone()))),
        _ => (None, s(v.get("Message")).or_else(|| s(v.get("message")))),
    }
}

/// A server's text for a message, cut at 500 bytes.
pub(crate) fn truncate(mut text: String) -> String {
    const MAX: usize = 500;
    if text.len() > MAX {
        let mut cut = MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

fn parse_retry_after(value: Option<&HeaderValue>) -> Option<Duration> {
    value?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// A request body of any content type, with the headers one API needs beyond the signature.
#[derive(Debug, Clone, Default)]
pub struct RawBody {
    /// `Content-Type`, if there is a body.
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
    /// Extra headers (never credentials: they are signed, and errors never carry them).
    pub headers: Vec<(&'static str, String)>,
}

/// A 2xx response from a domain.
#[derive(Debug, Clone)]
pub struct DomainResponse {
    /// The status (200, 201, ...).
    pub status: u16,
    /// The raw body.
    pub body: bytes::Bytes,
}

/// A SigV4-signing client for one domain's REST API.
#[derive(Clone)]
pub struct DomainHttp {
    domain: String,
    region: String,
    base: Url,
    client: reqwest::Client,
    credentials: SharedCredentialsProvider,
    /// Shared by every request to this domain, so a wide graph stays under its request rate.
    limiter: Option<std::sync::Arc<snapferry_engine::RateLimiter>>,
    /// HTTP basic auth instead of SigV4 (an internal master user of the security plugin):
    /// the prepared `Authorization` value, never shown by `Debug` or any log.
    basic: Option<http::HeaderValue>,
    /// Until when the endpoint is fresh (its domain was created by this run and turned active
    /// less than [`FRESH_ENDPOINT_WINDOW`] ago): its name not resolving is then transient.
    fresh_until: Option<std::time::Instant>,
    /// The plan's proxy, as messages show it (see [`proxy_for_display`]).
    proxy: Option<String>,
}

impl std::fmt::Debug for DomainHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DomainHttp")
            .field("domain", &self.domain)
            .field("region", &self.region)
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// `https://` is assumed when the endpoint has no scheme (the form DescribeDomain returns).
fn endpoint_url(endpoint: &str) -> Result<Url, url::ParseError> {
    let trimmed = endpoint.trim().trim_end_matches('/');
    if trimmed.contains("://") {
        Url::parse(trimmed)
    } else {
        Url::parse(&format!("https://{trimmed}"))
    }
}

impl DomainHttp {
    /// Builds the client: TLS roots, proxy and timeouts are fixed here; credentials are asked
    /// for on every request so refreshed or assumed-role credentials are picked up.
    pub fn new(
        config: &DomainHttpConfig,
        credentials: SharedCredentialsProvider,
    ) -> Result<Self, DomainHttpError> {
        let domain = config.domain.clone();
        let base =
            endpoint_url(&config.endpoint).map_err(|source| DomainHttpError::InvalidEndpoint {
                domain: domain.clone(),
                endpoint: config.endpoint.clone(),
                source,
            })?;
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(true)
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .user_agent(concat!("snapferry/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_bundle {
            let pem =
                std::fs::read(path).map_err(|source| DomainHttpError::CaBundleUnreadable {
                    domain: domain.clone(),
                    path: path.clone(),
                    source,
                })?;
            let invalid = |source| DomainHttpError::CaBundleInvalid {
                domain: domain.clone(),
                path: path.clone(),
                source,
            };
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| invalid(Some(e)))?;
            if certs.is_empty() {
                return Err(invalid(None));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        builder = match &config.proxy {
            ProxyChoice::FromEnvironment => builder,
            ProxyChoice::Direct => builder.no_proxy(),
            ProxyChoice::Explicit(proxy) => {
                let invalid = |source| DomainHttpError::InvalidProxy {
                    domain: domain.clone(),
                    proxy: proxy_without_credentials(proxy),
                    source,
                };
                let scheme_ok = ["socks5h://", "socks5://", "http://", "https://"]
                    .iter()
                    .any(|s| proxy.starts_with(s));
                if !scheme_ok {
                    return Err(invalid(None));
                }
                builder.proxy(reqwest::Proxy::all(proxy.as_str()).map_err(|e| invalid(Some(e)))?)
            }
        };
        let client = builder.build().map_err(|source| DomainHttpError::Client {
            domain: domain.clone(),
            source,
        })?;
        Ok(Self {
            domain,
            region: config.region.clone(),
            base,
            client,
            credentials,
            limiter: None,
            basic: None,
            fresh_until: None,
            proxy: match &config.proxy {
                ProxyChoice::Explicit(proxy) => Some(proxy_for_display(proxy)),
                ProxyChoice::FromEnvironment | ProxyChoice::Direct => None,
            },
        })
    }

    /// The same client, authenticating every request with HTTP basic auth as `user` instead of
    /// signing it: an internal user of the security plugin (the master, for its REST API).
    #[must_use]
    pub fn with_basic_auth(mut self, user: &str, password: &str) -> Self {
        let token = aws_smithy_types::base64::encode(format!("{user}:{password}"));
        let mut value = http::HeaderValue::from_str(&format!("Basic {token}"))
            .expect("base64 is a valid header value");
        value.set_sensitive(true);
        self.basic = Some(value);
        self
    }

    /// Marks the endpoint fresh: its domain turned active at `active_since` (created by this
    /// run), so for [`FRESH_ENDPOINT_WINDOW`] a name that does not resolve is retried.
    #[must_use]
    pub fn with_fresh_endpoint(mut self, active_since: std::time::Instant) -> Self {
        self.fresh_until = Some(active_since + FRESH_ENDPOINT_WINDOW);
        self
    }

    /// Makes every request wait its turn in `limiter` (a token bucket per domain).
    #[must_use]
    pub fn with_rate_limiter(
        mut self,
        limiter: std::sync::Arc<snapferry_engine::RateLimiter>,
    ) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The plan's name for this domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Sends a signed request. `path_and_query` is already percent-encoded (see
    /// [`crate::opensearch`]); `body` is sent as JSON. Non-2xx statuses become
    /// [`DomainHttpError::Status`].
    #[tracing::instrument(level = "debug", skip(self, body), fields(domain = %self.domain))]
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<DomainResponse, DomainHttpError> {
        let request = match body {
            Some(v) => RawBody {
                content_type: Some("application/json".to_owned()),
                bytes: serde_json::to_vec(v).expect("a serde_json::Value always serialises"),
                headers: Vec::new(),
            },
            None => RawBody::default(),
        };
        self.execute(method, path_and_query, request).await
    }

    /// Sends a signed request with a body of any content type and extra headers (the
    /// Dashboards API's NDJSON and multipart bodies, its `osd-xsrf` and `securitytenant`
    /// headers). Non-2xx statuses become [`DomainHttpError::Status`].
    #[tracing::instrument(name = "send", level = "debug", skip(self, raw), fields(domain = %self.domain))]
    pub async fn send_raw(
        &self,
        method: Method,
        path_and_query: &str,
        raw: RawBody,
    ) -> Result<DomainResponse, DomainHttpError> {
        self.execute(method, path_and_query, raw).await
    }

    async fn execute(
        &self,
        method: Method,
        path_and_query: &str,
        raw: RawBody,
    ) -> Result<DomainResponse, DomainHttpError> {
        if let Some(limiter) = &self.limiter {
            limiter.acquire().await;
        }
        let path = path_and_query.to_owned();
        let url =
            self.base
                .join(path_and_query)
                .map_err(|source| DomainHttpError::InvalidEndpoint {
                    domain: self.domain.clone(),
                    endpoint: format!("{}{}", self.base, path_and_query),
                    source,
                })?;
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(url.as_str());
        if let Some(content_type) = &raw.content_type {
            request = request.header(http::header::CONTENT_TYPE, content_type.as_str());
        }
        for (name, value) in &raw.headers {
            request = request.header(*name, value.as_str());
        }
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        request = request.header(http::header::HOST, host);
        let mut request = request
            .body(raw.bytes)
            .map_err(|e| self.signing_error(&method, &path, Box::new(e)))?;
        match &self.basic {
            Some(basic) => {
                request
                    .headers_mut()
                    .insert(http::header::AUTHORIZATION, basic.clone());
            }
            None => self.sign(&mut request, &method, &path).await?,
        }

        let request = reqwest::Request::try_from(request)
            .map_err(|e| self.signing_error(&method, &path, Box::new(e)))?;
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| self.transport_error(&method, &path, e))?;
        let status = response.status().as_u16();
        let retry_after = parse_retry_after(response.headers().get(http::header::RETRY_AFTER));
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&method, &path, e))?;
        if (200..300).contains(&status) {
            tracing::debug!(status, bytes = body.len(), "domain response");
            return Ok(DomainResponse { status, body });
        }
        let (error_type, reason) = parse_error_body(&body);
        let cause = innermost_cause(&body);
        tracing::debug!(status, error_type = ?error_type, "domain error response");
        Err(DomainHttpError::Status {
            domain: self.domain.clone(),
            method,
            path,
            status,
            error_type,
            reason,
            cause,
            retry_after,
        })
    }

    /// Sends a signed request and decodes the 2xx JSON body as `T`.
    pub async fn send_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<T, DomainHttpError> {
        let response = self.send(method.clone(), path_and_query, body).await?;
        serde_json::from_slice(&response.body).map_err(|source| DomainHttpError::Decode {
            domain: self.domain.clone(),
            method,
            path: path_and_query.to_owned(),
            source,
        })
    }

    async fn sign(
        &self,
        request: &mut http::Request<Vec<u8>>,
        method: &Method,
        path: &str,
    ) -> Result<(), DomainHttpError> {
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|source| DomainHttpError::Credentials {
                domain: self.domain.clone(),
                method: method.clone(),
                path: path.to_owned(),
                source,
            })?;
        let identity = credentials.into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SIGNING_SERVICE)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| self.signing_error(method, path, Box::new(e)))?
            .into();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let uri = request.uri().to_string();
        // The signer traces the canonical request (with the session token) and its parameters;
        // nothing it says may reach a subscriber.
        let signed = tracing::dispatcher::with_default(&tracing::Dispatch::none(), || {
            let signable = SignableRequest::new(
                request.method().as_str(),
                &uri,
                headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                SignableBody::Bytes(request.body()),
            )?;
            sign(signable, &params)
        })
        .map_err(|e| self.signing_error(method, path, Box::new(e)))?;
        let (instructions, _signature) = signed.into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }

    fn signing_error(
        &self,
        method: &Method,
        path: &str,
        source: Box<dyn std::error::Error + Send + Sync>,
    ) -> DomainHttpError {
        DomainHttpError::Signing {
            domain: self.domain.clone(),
            method: method.clone(),
            path: path.to_owned(),
            source,
        }
    }

    fn transport_error(
        &self,
        method: &Method,
        path: &str,
        source: reqwest::Error,
    ) -> DomainHttpError {
        let failure = if source.is_timeout() {
            TransportFailure::Timeout
        } else if source.is_connect() {
            TransportFailure::Connect
        } else {
            TransportFailure::Broken
        };
        DomainHttpError::Transport {
            domain: self.domain.clone(),
            endpoint: match self.base.port() {
                Some(port) => format!("{}:{port}", self.base.host_str().unwrap_or_default()),
                None => self.base.host_str().unwrap_or_default().to_owned(),
            },
            method: method.clone(),
            path: path.to_owned(),
            failure,
            proxy: self.proxy.clone(),
            fresh_name_unresolved: transport_cause(&source) == TransportCause::Unresolved
                && self
                    .fresh_until
                    .is_some_and(|until| std::time::Instant::now() < until),
            source: source.without_url(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Lookup(&'static str, Option<Box<Lookup>>);

    impl std::fmt::Display for Lookup {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Lookup {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn an_unresolved_name_is_transient_only_while_the_endpoint_is_fresh() {
        let dns = Lookup(
            "error sending request",
            Some(Box::new(Lookup(
                "client error (Connect)",
                Some(Box::new(Lookup(
                    "dns error: failed to lookup address information: Name or service not known",
                    None,
                ))),
            ))),
        );
        let cert = Lookup(
            "error sending request",
            Some(Box::new(Lookup(
                "invalid peer certificate: UnknownIssuer",
                None,
            ))),
        );
        let refused = Lookup("tcp connect error: Connection refused (os error 111)", None);
        // reqwest's chain when a `socks5h://` proxy answers 0x04 "host unreachable" (its DNS
        // miss; the whole chain as sent is checked in tests/it/domain_http.rs).
        let proxy_miss = Lookup(
            "error sending request",
            Some(Box::new(Lookup(
                "client error (Connect)",
                Some(Box::new(Lookup(
                    "error connecting to socks proxy",
                    Some(Box::new(Lookup("SOCKS error: host unreachable", None))),
                ))),
            ))),
        );
        let proxy_refused = Lookup(
            "error connecting to socks proxy",
            Some(Box::new(Lookup("SOCKS error: connection refused", None))),
        );
        assert_eq!(transport_cause(&dns), TransportCause::Unresolved);
        assert_eq!(transport_cause(&proxy_miss), TransportCause::Unresolved);
        assert_eq!(transport_cause(&proxy_refused), TransportCause::Other);
        assert_eq!(transport_cause(&cert), TransportCause::Certificate);
        assert_eq!(transport_cause(&refused), TransportCause::Other);
        // Right after this run's domain turned active: DNS catching up, retried.
        assert!(transport_is_transient(TransportCause::Unresolved, true));
        // Anywhere else a name that does not resolve stays so.
        assert!(!transport_is_transient(TransportCause::Unresolved, false));
        assert!(!transport_is_transient(TransportCause::Certificate, true));
        assert!(transport_is_transient(TransportCause::Other, false));
    }

    #[test]
    fn a_proxy_is_shown_without_its_credentials() {
        assert_eq!(
            proxy_for_display("socks5h://bastion:s3cret@10.0.0.5:1080"),
            "socks5h://10.0.0.5:1080"
        );
        assert_eq!(
            proxy_for_display("http://proxy.corp"),
            "http://proxy.corp:80"
        );
    }

    #[test]
    fn an_invalid_proxy_is_named_without_its_password() {
        assert_eq!(
            proxy_without_credentials("socks4://bastion:s3cret@10.0.0.5:1080"),
            "socks4://***@10.0.0.5:1080"
        );
        assert_eq!(
            proxy_without_credentials("bastion:s3cret@10.0.0.5:1080/x@y"),
            "***@10.0.0.5:1080/x@y"
        );
        assert_eq!(proxy_without_credentials("ftp://proxy"), "ftp://proxy");
        let mut config = DomainHttpConfig::new("copy", "https://copy.example", "us-east-1");
        config.proxy = ProxyChoice::Explicit("socks4://u:s3cret@h:1080".into());
        let credentials = SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
            "AKID", "SECRET", None, None, "test",
        ));
        let message = DomainHttp::new(&config, credentials)
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            message,
            "domain copy: proxy \"socks4://***@h:1080\" is not a valid socks5h://, socks5://, http:// or https:// URL"
        );
    }

    #[tokio::test]
    async fn a_fresh_endpoint_that_does_not_resolve_is_retried_for_a_bounded_time() {
        let config =
            DomainHttpConfig::new("copy", "http://no-such-domain.invalid:9200", "us-east-1");
        let credentials = SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
            "AKID", "secret", None, None, "test",
        ));
        let now = std::time::Instant::now();
        let cases = [
            (None, false),
            (Some(now), true),
            (
                now.checked_sub(FRESH_ENDPOINT_WINDOW + Duration::from_secs(1)),
                false,
            ),
        ];
        for (active_since, transient) in cases {
            let mut http = DomainHttp::new(&config, credentials.clone()).unwrap();
            if let Some(at) = active_since {
                http = http.with_fresh_endpoint(at);
            }
            let err = http.send(Method::GET, "/", None).await.unwrap_err();
            assert!(matches!(err, DomainHttpError::Transport { .. }), "{err}");
            assert_eq!(err.is_transient(), transient, "{active_since:?}: {err}");
        }
    }

    fn parsed(body: &str) -> (Option<String>, Option<String>) {
        parse_error_body(body.as_bytes())
    }

    #[test]
    fn opensearch_error_bodies() {
        let cases = [
            (
                "concurrent_snapshot_execution_exception",
                "[repo:snap] a snapshot is already running",
            ),
            (
                "invalid_snapshot_name_exception",
                "[repo:Snap] Invalid snapshot name [Snap], must be lowercase",
            ),
            ("snapshot_missing_exception", "[repo:snap] is missing"),
            ("repository_missing_exception", "[repo] missing"),
            (
                "snapshot_restore_exception",
                "[repo:snap/uuid] cannot restore index [a] because an open index with same name already exists in the cluster",
            ),
            (
                "repository_exception",
                "[repo] Could not determine repository generation from root blobs",
            ),
            ("index_not_found_exception", "no such index [nope]"),
        ];
        for (t, r) in cases {
            let body = serde_json::json!({
                "error": {"root_cause": [{"type": t, "reason": r}], "type": t, "reason": r},
                "status": 400
            })
            .to_string();
            assert_eq!(parsed(&body), (Some(t.to_owned()), Some(r.to_owned())));
        }
    }

    #[test]
    fn root_cause_fills_in_when_top_level_lacks_fields() {
        let body = r#"{"error":{"root_cause":[{"type":"repository_missing_exception","reason":"[r] missing"}]},"status":404}"#;
        assert_eq!(
            parsed(body),
            (
                Some("repository_missing_exception".into()),
                Some("[r] missing".into())
            )
        );
    }

    #[test]
    fn the_innermost_cause_is_kept() {
        let body = serde_json::json!({"error": {
            "type": "repository_verification_exception",
            "reason": "[r] path [p] is not accessible on master node",
            "caused_by": {"type": "i_o_exception", "reason": "Unable to upload object",
                "caused_by": {"type": "amazon_s3_exception", "reason": "Access Denied"}}
        }, "status": 500})
        .to_string();
        assert_eq!(
            innermost_cause(body.as_bytes()).as_deref(),
            Some("amazon_s3_exception: Access Denied")
        );
        assert_eq!(
            innermost_cause(br#"{"error":{"type":"t","reason":"r"}}"#),
            None
        );
        assert_eq!(innermost_cause(b"not json"), None);
    }

    #[test]
    fn aws_gateway_bodies() {
        assert_eq!(
            parsed(r#"{"Message":"Your request: '/_recovery' is not allowed."}"#),
            (
                None,
                Some("Your request: '/_recovery' is not allowed.".into())
            )
        );
        assert_eq!(
            parsed(r#"{"message":"The security token included in the request is expired"}"#),
            (
                None,
                Some("The security token included in the request is expired".into())
            )
        );
        assert_eq!(
            parsed("<html>Bad Gateway</html>"),
            (None, Some("<html>Bad Gateway</html>".into()))
        );
        assert_eq!(parsed(""), (None, None));
    }

    #[test]
    fn status_error_message_and_classification() {
        let e = DomainHttpError::Status {
            domain: "source".into(),
            method: Method::PUT,
            path: "/_snapshot/r/s".into(),
            status: 503,
            error_type: Some("concurrent_snapshot_execution_exception".into()),
            reason: Some("busy".into()),
            cause: None,
            retry_after: parse_retry_after(Some(&HeaderValue::from_static("7"))),
        };
        assert_eq!(
            e.to_string(),
            "domain source: PUT /_snapshot/r/s returned 503: concurrent_snapshot_execution_exception: busy"
        );
        assert!(e.is_transient());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        let permanent = DomainHttpError::Status {
            domain: "source".into(),
            method: Method::GET,
            path: "/_recovery".into(),
            status: 401,
            error_type: None,
            reason: None,
            cause: None,
            retry_after: None,
        };
        assert!(!permanent.is_transient());
        assert_eq!(
            permanent.to_string(),
            "domain source: GET /_recovery returned 401"
        );
    }

    #[test]
    fn endpoints_with_and_without_scheme() {
        assert_eq!(
            endpoint_url("search-x.eu-west-1.es.amazonaws.com")
                .unwrap()
                .as_str(),
            "https://search-x.eu-west-1.es.amazonaws.com/"
        );
        assert_eq!(
            endpoint_url("http://127.0.0.1:9200/").unwrap().as_str(),
            "http://127.0.0.1:9200/"
        );
    }
}
