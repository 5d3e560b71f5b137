//! The single AWS-shaped listener. Each request is routed by the service in its SigV4 credential
//! scope (`iam`, `sts`, `s3`, `es`), verified, passed through fault injection and per-operation
//! latency, answered, and logged. Unsigned requests are routed by their shape so they get the right
//! protocol's 403. `/_sandbox/*` is the sandbox's own control surface (log, faults, clock).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};

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
        }
    }

    fn auth_error(self, failure: &AuthFailure) -> Resp {
        let message = failure.message();
        match (self, failure) {
            (Self::OpenSearch, _) => json(403, &serde_json::json!({ "message": message })),
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
            Self::OpenSearch => os_error(
                status,
                "internal_server_error",
                "internal server error (injected by the snapferry sandbox)",
            ),
        }
    }
}

/// What a request is, for the log, the fault rules and the latency table.
pub struct Call<'a> {
    pub service: &'a str,
    pub operation: String,
    pub target: Option<String>,
    pub mutating: bool,
    pub protocol: Protocol,
}

/// Verifies the signature (non-S3 services), applies faults and latency, runs `handler`, logs.
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
                tokio::time::sleep(shared.config.scaled(fault.delay_secs)).await;
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

/// Accepts connections until shutdown.
pub async fn serve(shared: Arc<Shared>, listener: tokio::net::TcpListener) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => { tracing::warn!(error = %e, "accept failed"); continue; }
            },
            _ = shutdown.changed() => return,
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(shared.clone(), req));
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

pub async fn read_body(body: Incoming) -> Bytes {
    body.collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default()
}

/// A Query-protocol request (IAM, STS): its parameters from the form body and the query
/// string, and the result of checking its signature.
async fn query_request(
    shared: &Shared,
    req: Request<Incoming>,
) -> (
    BTreeMap<String, String>,
    Result<auth::Scope, auth::AuthFailure>,
) {
    let (parts, body) = req.into_parts();
    let body = read_body(body).await;
    let params = form_urlencoded::parse(&body)
        .chain(form_urlencoded::parse(
            parts.uri.query().unwrap_or("").as_bytes(),
        ))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let verify = auth::verify(
        &shared.config.credentials,
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
        &body,
    );
    (params, verify)
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Resp, Dropped> {
    let path = req.uri().path().to_owned();
    if path.starts_with("/_sandbox/") {
        let (parts, body) = req.into_parts();
        return Ok(sandbox_endpoint(&shared, &parts, read_body(body).await));
    }
    let query = req.uri().query().map(str::to_owned);
    let scope = auth::scope_of(req.headers(), query.as_deref());
    let service = match scope.as_ref().map(|s| s.service.as_str()) {
        Some(s) => s.to_owned(),
        None if path.starts_with("/2021-01-01/") => "es".to_owned(),
        None if req.method() == http::Method::POST && path == "/" => "iam".to_owned(),
        None => "s3".to_owned(),
    };
    match service.as_str() {
        "s3" => s3_request(&shared, req).await,
        "iam" => {
            let (params, verify) = query_request(&shared, req).await;
            let (operation, target, mutating) = crate::iam::classify(&params);
            let call = Call {
                service: "iam",
                operation: operation.clone(),
                target,
                mutating,
                protocol: Protocol::Query,
            };
            guarded(&shared, call, Some(verify), async {
                let rid = request_id();
                match shared.iam.handle(&shared.config.account_id, &params) {
                    Ok(result) => respond(
                        200,
                        "text/xml",
                        crate::iam::response_xml(&operation, &result, &rid),
                    ),
                    Err(e) => respond(e.status, "text/xml", e.to_xml(&rid)),
                }
            })
            .await
        }
        "sts" => {
            let (params, verify) = query_request(&shared, req).await;
            let (operation, target, mutating) = crate::sts::classify(&params);
            let call = Call {
                service: "sts",
                operation,
                target,
                mutating,
                protocol: Protocol::Query,
            };
            guarded(&shared, call, Some(verify), async {
                let (status, xml) =
                    crate::sts::handle(&shared.config.account_id, &params, &request_id());
                respond(status, "text/xml", xml)
            })
            .await
        }
        "es" => {
            let (parts, body) = req.into_parts();
            let body = read_body(body).await;
            crate::control_plane::handle(&shared, parts, body).await
        }
        other => Ok(Protocol::RestJson.error(
            400,
            "UnknownServiceException",
            &format!(
                "The sandbox does not emulate service {other:?}; it serves iam, sts, s3 and es."
            ),
        )),
    }
}

async fn s3_request(shared: &Shared, req: Request<Incoming>) -> Result<Resp, Dropped> {
    let (op, bucket, mutating) =
        crate::s3::classify(req.method(), req.uri().path(), req.uri().query());
    let (parts, body) = req.into_parts();
    let body = read_body(body).await;
    let req = Request::from_parts(parts, s3s::Body::from(body));
    let call = Call {
        service: "s3",
        operation: op.to_owned(),
        target: bucket,
        mutating,
        protocol: Protocol::RestXml,
    };
    guarded(shared, call, None, async {
        match shared.s3_service.call(req).await {
            Ok(resp) => resp,
            Err(e) => Protocol::RestXml.error(500, "InternalError", &format!("{e:?}")),
        }
    })
    .await
}

fn sandbox_endpoint(shared: &Shared, parts: &http::request::Parts, body: Bytes) -> Resp {
    use http::Method as M;
    match (&parts.method, parts.uri.path()) {
        (&M::GET, "/_sandbox/log") => json(
            200,
            &serde_json::to_value(shared.log.entries()).unwrap_or_default(),
        ),
        (&M::POST, "/_sandbox/reset-log") => {
            shared.log.clear();
            json(200, &serde_json::json!({"acknowledged": true}))
        }
        (&M::GET, "/_sandbox/faults") => json(
            200,
            &serde_json::json!({"rules": serde_json::to_value(shared.faults.rules()).unwrap_or_default()}),
        ),
        (&M::POST, "/_sandbox/faults") => {
            match serde_yaml::from_slice::<crate::config::FaultsConfig>(&body) {
                Ok(faults) => {
                    if let Some(bad) = faults.rules.iter().find_map(|r| r.check().err()) {
                        return json(400, &serde_json::json!({"error": bad}));
                    }
                    let n = faults.rules.len();
                    shared.faults.replace(faults.seed, faults.rules);
                    json(200, &serde_json::json!({"acknowledged": true, "rules": n}))
                }
                Err(e) => json(
                    400,
                    &serde_json::json!({"error": format!("fault rules are not valid: {e}")}),
                ),
            }
        }
        (&M::POST, "/_sandbox/clock") => {
            let secs = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .find(|(k, _)| k == "advance_secs")
                .and_then(|(_, v)| v.parse::<f64>().ok());
            match secs {
                Some(s) if s >= 0.0 => {
                    shared.clock.advance(shared.config.scaled(s));
                    json(200, &serde_json::json!({"acknowledged": true}))
                }
                _ => json(
                    400,
                    &serde_json::json!({"error": "POST /_sandbox/clock?advance_secs=<simulated seconds>"}),
                ),
            }
        }
        _ => json(
            404,
            &serde_json::json!({"error": "unknown sandbox endpoint; see GET /_sandbox/log, GET|POST /_sandbox/faults, POST /_sandbox/reset-log, POST /_sandbox/clock?advance_secs=N"}),
        ),
    }
}
