//! The HTTP side every emulated service shares: response builders, the error shape of each wire
//! protocol (IAM's Query XML, S3's REST-XML, the control plane's REST-JSON, OpenSearch's
//! envelope), and [`guarded`], which verifies, authorizes (the IAM checks the service named in
//! [`Call::checks`], see [`crate::identity`]), injects faults and latency, runs a handler and
//! logs. The router and the services import this; it imports none of them.

use std::future::Future;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::Shared;
use crate::auth::{self, AuthFailure};
use crate::faults::FaultKind;

pub type Resp = Response<s3s::Body>;

/// Returned instead of a response when a fault drops the connection.
#[derive(Debug)]
pub struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}
impl std::error::Error for Dropped {}

/// The wire protocol a response must be shaped in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Protocol {
    /// IAM: Query protocol, XML errors.
    Query,
    /// S3: REST-XML.
    RestXml,
    /// OpenSearch Service control plane: REST-JSON with `x-amzn-errortype`.
    RestJson,
    /// A domain's OpenSearch REST API: the `{"error":{...},"status":N}` envelope.
    OpenSearch,
    /// Secrets Manager: AWS JSON 1.1, errors as `{"__type": code, "Message": ...}`.
    Json,
}

pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn respond(status: u16, content_type: &str, body: impl Into<Bytes>) -> Resp {
    let mut resp = Response::new(s3s::Body::from(body.into()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("text/plain")),
    );
    resp.headers_mut().insert(
        "x-amzn-requestid",
        HeaderValue::from_str(&request_id()).expect("uuid is ASCII"),
    );
    resp
}

pub fn json(status: u16, value: &serde_json::Value) -> Resp {
    respond(status, "application/json; charset=UTF-8", value.to_string())
}

/// OpenSearch's error envelope.
pub fn os_error(status: u16, kind: &str, reason: &str) -> Resp {
    let cause = serde_json::json!({"type": kind, "reason": reason});
    json(
        status,
        &serde_json::json!({"error": {"root_cause": [cause], "type": kind, "reason": reason}, "status": status}),
    )
}

impl Protocol {
    pub fn error(self, status: u16, code: &str, message: &str) -> Resp {
        match self {
            Self::Query => {
                let kind = if status >= 500 { "Receiver" } else { "Sender" };
                respond(
                    status,
                    "text/xml",
                    format!(
                        "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
                        quick_xml::escape::escape(message),
                        request_id()
                    ),
                )
            }
            Self::RestXml => respond(
                status,
                "application/xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message><RequestId>{}</RequestId></Error>",
                    quick_xml::escape::escape(message),
                    request_id()
                ),
            ),
            Self::RestJson => {
                let mut resp = json(status, &serde_json::json!({ "message": message }));
                if let Ok(v) = HeaderValue::from_str(code) {
                    resp.headers_mut().insert("x-amzn-errortype", v);
                }
                resp
            }
            Self::OpenSearch => os_error(status, code, message),
            Self::Json => respond(
                status,
                crate::secretsmanager::CONTENT_TYPE,
                serde_json::json!({ "__type": code, "Message": message }).to_string(),
            ),
        }
    }

    fn auth_error(self, failure: &AuthFailure) -> Resp {
        let message = failure.message();
        match (self, failure) {
            (Self::OpenSearch, _) => json(403, &serde_json::json!({ "message": message })),
            (Self::Json, AuthFailure::Expired) => {
                self.error(400, "ExpiredTokenException", &message)
            }
            (Self::Json, AuthFailure::Missing) => {
                self.error(400, "MissingAuthenticationTokenException", &message)
            }
            (Self::Json, AuthFailure::UnknownAccessKey | AuthFailure::BadSessionToken) => {
                self.error(400, "UnrecognizedClientException", &message)
            }
            (Self::Json, _) => self.error(400, "InvalidSignatureException", &message),
            (Self::RestJson, AuthFailure::Expired) => {
                self.error(403, "ExpiredTokenException", &message)
            }
            (_, AuthFailure::Expired) => self.error(403, "ExpiredToken", &message),
            (Self::RestJson, AuthFailure::Missing) => {
                self.error(403, "MissingAuthenticationTokenException", &message)
            }
            (Self::RestJson, AuthFailure::UnknownAccessKey | AuthFailure::BadSessionToken) => {
                self.error(403, "UnrecognizedClientException", &message)
            }
            (Self::RestJson, _) => self.error(403, "InvalidSignatureException", &message),
            (_, AuthFailure::Missing) => self.error(403, "MissingAuthenticationToken", &message),
            (_, AuthFailure::UnknownAccessKey | AuthFailure::BadSessionToken) => {
                self.error(403, "InvalidClientTokenId", &message)
            }
            (_, AuthFailure::Malformed(_)) => self.error(400, "IncompleteSignature", &message),
            (_, AuthFailure::SignatureMismatch) => {
                self.error(403, "SignatureDoesNotMatch", &message)
            }
        }
    }

    fn throttle(self) -> Resp {
        match self {
            Self::Query => self.error(400, "Throttling", "Rate exceeded"),
            Self::RestXml => self.error(503, "SlowDown", "Please reduce your request rate."),
            Self::RestJson => self.error(429, "ThrottlingException", "Rate exceeded"),
            Self::Json => self.error(400, "ThrottlingException", "Rate exceeded"),
            Self::OpenSearch => os_error(
                429,
                "es_rejected_execution_exception",
                "rejected execution: too many requests (injected by the snapferry sandbox)",
            ),
        }
    }

    fn server_error(self, status: u16) -> Resp {
        match self {
            Self::Query => self.error(status, "ServiceFailure", "Service failure"),
            Self::RestXml => self.error(
                status,
                "InternalError",
                "We encountered an internal error. Please try again.",
            ),
            Self::RestJson => self.error(status, "InternalException", "Internal service error"),
            Self::Json => self.error(status, "InternalServiceError", "Internal service error"),
            Self::OpenSearch => os_error(
                status,
                "internal_server_error",
                "internal server error (injected by the snapferry sandbox)",
            ),
        }
    }
}

/// The address a request came from (the peer of its connection), as `aws:SourceIp` sees it.
/// The listeners put it into each request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct SourceIp(pub std::net::IpAddr);

/// The request's [`SourceIp`]; `None` for a request no listener accepted, whose checks then
/// have no `aws:SourceIp` (as a request without one has none in AWS).
pub fn source_ip(extensions: &http::Extensions) -> Option<std::net::IpAddr> {
    extensions.get::<SourceIp>().map(|s| s.0)
}

/// What a request is, for the log, the fault rules and the latency table.
pub struct Call<'a> {
    pub service: &'a str,
    pub operation: String,
    pub target: Option<String>,
    pub mutating: bool,
    pub protocol: Protocol,
    /// What the caller needs IAM permission for (checked after the signature, in order; the
    /// first refusal is the answer). Empty for S3 and a domain's endpoint, which decide with
    /// their resource-based policies (S3's access hook, [`crate::access_policy`]).
    pub checks: Vec<crate::identity::Check>,
    /// Where the request came from (`aws:SourceIp` of the checks).
    pub source_ip: Option<std::net::IpAddr>,
}

/// Verifies the signature (non-S3 services), checks the caller's IAM permissions, applies
/// faults and latency, runs `handler`, logs.
pub async fn guarded<F>(
    shared: &Shared,
    call: Call<'_>,
    verify: Option<Result<auth::Scope, AuthFailure>>,
    handler: F,
) -> Result<Resp, Dropped>
where
    F: Future<Output = Resp>,
{
    let log = |status: u16, fault: Option<String>| {
        shared.log.record(
            call.service,
            &call.operation,
            call.mutating,
            call.target.clone(),
            status,
            fault,
        );
    };
    if let Some(Err(failure)) = &verify {
        let resp = call.protocol.auth_error(failure);
        log(resp.status().as_u16(), None);
        return Ok(resp);
    }
    if let Some(Ok(scope)) = &verify
        && let Some(identity) = shared.identities.get(&scope.access_key)
        && let Some(denial) = call
            .checks
            .iter()
            .find_map(|c| identity.check(c, call.source_ip).err())
    {
        let resp = call.protocol.access_denied(&denial);
        log(resp.status().as_u16(), None);
        return Ok(resp);
    }
    if let Some(secs) = shared.config.latencies.operations.get(&call.operation) {
        tokio::time::sleep(shared.config.scaled(*secs)).await;
    }
    let fault = shared
        .faults
        .fire(call.service, &call.operation, call.target.as_deref(), false);
    if let Some(fault) = &fault {
        let name = format!("{:?}", fault.kind);
        match fault.kind {
            FaultKind::Throttle => {
                let resp = call.protocol.throttle();
                log(resp.status().as_u16(), Some(name));
                return Ok(resp);
            }
            FaultKind::ServerError => {
                let resp = call.protocol.server_error(fault.status);
                log(resp.status().as_u16(), Some(name));
                return Ok(resp);
            }
            FaultKind::DropConnection => {
                log(0, Some(name));
                return Err(Dropped);
            }
            FaultKind::ExpiredToken => {
                let resp = call.protocol.error(
                    403,
                    "ExpiredToken",
                    "The security token included in the request is expired",
                );
                log(resp.status().as_u16(), Some(name));
                return Ok(resp);
            }
            FaultKind::Slow => {
                tokio::time::sleep(shared.config.scaled(fault.delay_secs_or(0.0))).await;
            }
            FaultKind::LostAnswer | FaultKind::LostConnection => {
                // The service does the work; only the answer never reaches the client.
                let done = handler.await;
                let name = format!("{:?}", fault.kind);
                if fault.kind == FaultKind::LostConnection {
                    log(0, Some(name));
                    return Err(Dropped);
                }
                let idle = fault.delay_secs_or(60.0);
                tokio::time::sleep(shared.config.scaled(idle)).await;
                log(
                    504,
                    Some(format!("{name} (answer was {})", done.status().as_u16())),
                );
                return Ok(gateway_timeout());
            }
            _ => {}
        }
    }
    let resp = handler.await;
    log(
        resp.status().as_u16(),
        fault.map(|f| format!("{:?}", f.kind)),
    );
    Ok(resp)
}

/// What the load balancer in front of a service sends when the service's answer did not come
/// back within its idle timeout: a 504 with its own HTML page, whatever the service's protocol.
pub fn gateway_timeout() -> Resp {
    respond(
        504,
        "text/html",
        "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n",
    )
}

/// The request line's method and target (path and query as sent, still percent-encoded).
pub fn request_line<B>(req: &http::Request<B>) -> (String, String) {
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    (req.method().as_str().to_owned(), target)
}

pub async fn read_body(body: Incoming) -> Bytes {
    body.collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default()
}
