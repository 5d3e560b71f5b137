//! Local servers the domain-client tests talk to: a plain HTTP server that checks SigV4
//! signatures on its own (HMAC-SHA256 from first principles, not aws-sigv4), a TLS server whose
//! certificate comes from a throw-away CA, and a minimal SOCKS5 proxy with its own name table.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const ACCESS_KEY: &str = "AKIDSNAPFERRYTEST";
pub const SECRET_KEY: &str = "wJalrXUtnFEMI-very-secret-key-42";
pub const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE-session-token-77";
pub const REGION: &str = "eu-west-1";

/// What the server saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    pub headers: HashMap<String, String>,
    pub body: Bytes,
    /// `Ok(signature)` when the SigV4 signature recomputed here matches, else why not.
    pub signature_check: Result<String, String>,
}

pub type Reply = (u16, Vec<(&'static str, String)>, String);
pub type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

pub struct TestServer {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

fn credentials() -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new(
        ACCESS_KEY,
        SECRET_KEY,
        Some(SESSION_TOKEN.to_owned()),
        None,
        "test",
    )
}

pub fn provider() -> aws_credential_types::provider::SharedCredentialsProvider {
    aws_credential_types::provider::SharedCredentialsProvider::new(credentials())
}

async fn handle(
    req: Request<Incoming>,
    handler: Handler,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let headers: HashMap<String, String> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let signature_check = verify_sigv4(parts.method.as_str(), &path_and_query, &headers, &body);
    let record = Seen {
        method: parts.method.to_string(),
        path_and_query,
        headers,
        body,
        signature_check,
    };
    let (status, extra, text) = handler(&record);
    seen.lock().unwrap().push(record);
    let mut response = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    for (k, v) in extra {
        response = response.header(k, v);
    }
    Ok(response.body(Full::new(Bytes::from(text))).unwrap())
}

async fn serve_connection<S>(io: S, handler: Handler, seen: Arc<Mutex<Vec<Seen>>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(req, handler.clone(), seen.clone()));
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// A plain-HTTP server on 127.0.0.1 answering with `handler`.
pub async fn http_server(handler: Handler) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve_connection(stream, handler.clone(), seen2.clone()));
        }
    });
    TestServer { addr, seen }
}

/// A TLS server for `localhost` whose certificate is signed by a fresh CA; returns the CA's PEM.
pub async fn tls_server(handler: Handler) -> (TestServer, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "snapferry test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let handler = handler.clone();
            let seen = seen2.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    serve_connection(tls, handler, seen).await;
                }
            });
        }
    });
    (TestServer { addr, seen }, ca_cert.pem())
}

/// What the SOCKS5 proxy was asked to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocksTarget {
    Name(String, u16),
    Ip(SocketAddr),
}

pub struct SocksProxy {
    pub addr: SocketAddr,
    pub targets: Arc<Mutex<Vec<SocksTarget>>>,
}

/// A SOCKS5 proxy (no auth, CONNECT only) that resolves names from `names` alone, the way a
/// bastion resolves VPC-internal names the client cannot.
pub async fn socks5_proxy(names: HashMap<String, SocketAddr>) -> SocksProxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let targets = Arc::new(Mutex::new(Vec::new()));
    let targets2 = targets.clone();
    let names = Arc::new(names);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let names = names.clone();
            let targets = targets2.clone();
            tokio::spawn(async move {
                let _ = socks5_session(stream, &names, &targets).await;
            });
        }
    });
    SocksProxy { addr, targets }
}

async fn socks5_session(
    mut client: TcpStream,
    names: &HashMap<String, SocketAddr>,
    targets: &Mutex<Vec<SocksTarget>>,
) -> std::io::Result<()> {
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await?;
    let mut methods = vec![0u8; head[1] as usize];
    client.read_exact(&mut methods).await?;
    client.write_all(&[5, 0]).await?;
    let mut req = [0u8; 4];
    client.read_exact(&mut req).await?;
    let (target, upstream) = match req[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip).await?;
            let port = client.read_u16().await?;
            let a = SocketAddr::from((ip, port));
            (SocksTarget::Ip(a), Some(a))
        }
        3 => {
            let len = client.read_u8().await? as usize;
            let mut name = vec![0u8; len];
            client.read_exact(&mut name).await?;
            let port = client.read_u16().await?;
            let name = String::from_utf8_lossy(&name).into_owned();
            let up = names.get(&name).copied();
            (SocksTarget::Name(name, port), up)
        }
        _ => return Ok(()),
    };
    targets.lock().unwrap().push(target);
    let Some(upstream) = upstream else {
        // 4 = host unreachable
        client.write_all(&[5, 4, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        return Ok(());
    };
    let mut server = TcpStream::connect(upstream).await?;
    client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}

const URI_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Recomputes the SigV4 signature (service `es`) from the request as received.
pub fn verify_sigv4(
    method: &str,
    path_and_query: &str,
    headers: &HashMap<String, String>,
    body: &[u8],
) -> Result<String, String> {
    let auth = headers
        .get("authorization")
        .ok_or("no authorization header")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("not AWS4-HMAC-SHA256")?;
    let mut credential = "";
    let mut signed_headers = "";
    let mut signature = "";
    for part in rest.split(", ") {
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = v;
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers = v;
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = v;
        }
    }
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || scope[0] != ACCESS_KEY || scope[2] != REGION || scope[3] != "es" {
        return Err(format!("unexpected credential scope {credential}"));
    }
    let payload_hash = hex::encode(Sha256::digest(body));
    if headers.get("x-amz-content-sha256") != Some(&payload_hash) {
        return Err("x-amz-content-sha256 does not match the body".into());
    }
    if headers.get("x-amz-security-token").map(String::as_str) != Some(SESSION_TOKEN) {
        return Err("session token header missing".into());
    }
    for required in [
        "host",
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-content-sha256",
    ] {
        if !signed_headers.split(';').any(|h| h == required) {
            return Err(format!("{required} is not signed"));
        }
    }
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    // Non-S3 services encode the (already encoded) path a second time.
    let canonical_uri = path
        .split('/')
        .map(|seg| utf8_percent_encode(seg, URI_ENCODE).to_string())
        .collect::<Vec<_>>()
        .join("/");
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (
                utf8_percent_encode(&dec(k), URI_ENCODE).to_string(),
                utf8_percent_encode(&dec(v), URI_ENCODE).to_string(),
            )
        })
        .collect();
    pairs.sort();
    let canonical_query = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut canonical_headers = String::new();
    for h in signed_headers.split(';') {
        let v = headers.get(h).ok_or(format!("signed header {h} missing"))?;
        canonical_headers.push_str(&format!("{h}:{}\n", v.trim()));
    }
    let creq = format!(
        "{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}"
    );
    let amz_date = headers.get("x-amz-date").ok_or("no x-amz-date")?;
    let sts = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{}/{}/{}/aws4_request\n{}",
        scope[1],
        scope[2],
        scope[3],
        hex::encode(Sha256::digest(creq.as_bytes()))
    );
    let k_date = hmac(format!("AWS4{SECRET_KEY}").as_bytes(), scope[1]);
    let k_region = hmac(&k_date, scope[2]);
    let k_service = hmac(&k_region, scope[3]);
    let k_signing = hmac(&k_service, "aws4_request");
    let expected = hex::encode(hmac(&k_signing, &sts));
    if expected == signature {
        Ok(signature.to_owned())
    } else {
        Err(format!(
            "signature mismatch; canonical request was:\n{creq}"
        ))
    }
}

/// The error and every source below it, one per line: what a user would see.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str("\n  caused by: ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}
