//! The single AWS-shaped listener. Each request is routed by the service in its SigV4 credential
//! scope (`iam`, `sts`, `s3`, `secretsmanager`, `es`) to its service, which answers through [`crate::http::guarded`]
//! (verified, passed through fault injection and per-operation latency, logged). Unsigned requests
//! are routed by their shape so they get the right protocol's 403. `/_sandbox/*` is the sandbox's
//! own control surface (log, faults, clock).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::Shared;
use crate::auth;
use crate::http::{Call, Dropped, Protocol, Resp, guarded, json, read_body, request_id, respond};

/// Accepts connections until shutdown.
pub async fn serve(shared: Arc<Shared>, listener: tokio::net::TcpListener) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => (stream, peer.ip()),
                Err(e) => { tracing::warn!(error = %e, "accept failed"); continue; }
            },
            _ = shutdown.changed() => return,
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(crate::http::SourceIp(peer));
                let line = crate::http::request_line(&req);
                crate::log::with_line(line.0, line.1, handle(shared.clone(), req))
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
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
    let verify = crate::identity::verify(
        shared,
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
            let source_ip = crate::http::source_ip(req.extensions());
            let (params, verify) = query_request(&shared, req).await;
            let (operation, target, mutating) = crate::iam::classify(&params);
            // Each account has its own IAM: the caller's.
            let account = verify
                .as_ref()
                .ok()
                .and_then(|scope| shared.identities.get(&scope.access_key))
                .map_or_else(|| shared.config.account_id.clone(), |i| i.account.clone());
            let call = Call {
                service: "iam",
                operation: operation.clone(),
                target,
                mutating,
                protocol: Protocol::Query,
                checks: crate::identity::iam_checks(&shared, &account, &params),
                source_ip,
            };
            guarded(&shared, call, Some(verify), async {
                let rid = request_id();
                match shared.iam.handle(&account, &params) {
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
            let source_ip = crate::http::source_ip(req.extensions());
            let (params, verify) = query_request(&shared, req).await;
            let (operation, target, mutating) = crate::sts::classify(&params);
            // GetCallerIdentity needs no permission (not even an explicit deny stops it).
            let call = Call {
                service: "sts",
                operation,
                target,
                mutating,
                protocol: Protocol::Query,
                checks: Vec::new(),
                source_ip,
            };
            let (caller, region) = signer_and_region(&shared, &verify);
            guarded(&shared, call, Some(verify), async {
                let (status, xml) =
                    crate::sts::handle(&shared, &caller, &region, &params, &request_id());
                respond(status, "text/xml", xml)
            })
            .await
        }
        "secretsmanager" => secrets_manager_request(&shared, req).await,
        "es" => {
            let (parts, body) = req.into_parts();
            let body = read_body(body).await;
            crate::control_plane::handle(&shared, parts, body).await
        }
        other => Ok(Protocol::RestJson.error(
            400,
            "UnknownServiceException",
            &format!(
                "The sandbox does not emulate service {other:?}; it serves iam, sts, s3, secretsmanager and es."
            ),
        )),
    }
}

/// Who signed a request (the default identity when unsigned or unknown) and the Region its
/// signature names (the sandbox's own when it names none).
fn signer_and_region(
    shared: &Shared,
    verify: &Result<crate::auth::Scope, crate::auth::AuthFailure>,
) -> (std::sync::Arc<crate::identity::Identity>, String) {
    let caller = verify
        .as_ref()
        .ok()
        .and_then(|scope| shared.identities.get(&scope.access_key))
        .unwrap_or_else(|| shared.identities.default_identity());
    let region = verify
        .as_ref()
        .map_or_else(|_| shared.config.region.clone(), |s| s.region.clone());
    (caller, region)
}

/// Secrets Manager (JSON 1.1): the secret is looked up first, so the permission is checked on
/// its ARN; a secret of another account is refused here (no resource policies in the sandbox).
async fn secrets_manager_request(shared: &Shared, req: Request<Incoming>) -> Result<Resp, Dropped> {
    let source_ip = crate::http::source_ip(req.extensions());
    let (parts, body) = req.into_parts();
    let body = read_body(body).await;
    let verify = crate::identity::verify(
        shared,
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
        &body,
    );
    let (operation, target) = crate::secretsmanager::classify(&parts.headers, &body);
    let (caller, region) = signer_and_region(shared, &verify);
    let id = target.clone().unwrap_or_default();
    let found = shared.secrets.find(&caller.account, &region, &id);
    let resource = crate::secretsmanager::resource(found.as_ref(), &caller.account, &region, &id);
    let action = format!("secretsmanager:{operation}");
    let other_account = found
        .as_ref()
        .filter(|s| s.account != caller.account)
        .map(|s| {
            caller
                .authorize_in(
                    &action,
                    &resource,
                    Some(s.account.as_str()),
                    crate::policy_eval::Context::default(),
                    None,
                )
                .err()
                .unwrap_or_else(|| crate::identity::Denial {
                    caller: caller.caller_arn(),
                    anonymous: false,
                    action: action.clone(),
                    resource: resource.clone(),
                    decision: crate::policy_eval::Decision::NoResourceGrant,
                })
        });
    let checks = if operation == "Unknown" || other_account.is_some() {
        Vec::new()
    } else {
        vec![crate::identity::Check::new(action.clone(), resource)]
    };
    let call = Call {
        service: "secretsmanager",
        operation: operation.clone(),
        target,
        mutating: false,
        protocol: Protocol::Json,
        checks,
        source_ip,
    };
    guarded(shared, call, Some(verify), async {
        crate::secretsmanager::handle(&operation, &body, found, other_account)
    })
    .await
}

async fn s3_request(shared: &Shared, req: Request<Incoming>) -> Result<Resp, Dropped> {
    let (op, bucket, mutating) =
        crate::s3::classify(req.method(), req.uri().path(), req.uri().query());
    let (parts, body) = req.into_parts();
    let body = read_body(body).await;
    let source_ip = crate::http::source_ip(&parts.extensions);
    // The request keeps its extensions ([`crate::http::SourceIp`]) for S3's access hook.
    let req = Request::from_parts(parts, s3s::Body::from(body));
    let call = Call {
        service: "s3",
        operation: op.to_owned(),
        target: bucket,
        mutating,
        protocol: Protocol::RestXml,
        checks: Vec::new(),
        source_ip,
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
        (&M::GET, "/_sandbox/resolve") => {
            let name = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .find(|(k, _)| k == "name")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            match shared.domains.resolve(shared, &name) {
                Some(address) => json(
                    200,
                    &serde_json::json!({"name": name, "address": address.to_string()}),
                ),
                None => json(404, &serde_json::json!({"name": name, "error": "NXDOMAIN"})),
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
            &serde_json::json!({"error": "unknown sandbox endpoint; see GET /_sandbox/log, GET|POST /_sandbox/faults, POST /_sandbox/reset-log, POST /_sandbox/clock?advance_secs=N, GET /_sandbox/resolve?name=HOST"}),
        ),
    }
}
