//! SigV4 verification for the IAM, OpenSearch Service control-plane and domain requests (S3 is
//! verified by `s3s` itself, through the `S3Auth` hook). Written from the SigV4 specification with
//! `hmac`/`sha2`, independently of the client's signing code, so a misunderstanding in one side is
//! caught by the other.

use hmac::{Hmac, Mac};
use http::HeaderMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

use crate::config::CredentialsConfig;

/// Characters SigV4 leaves as they are: `A-Z a-z 0-9 - _ . ~`.
pub const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
const PATH: &AsciiSet = &UNRESERVED.remove(b'/');

/// The parsed `Authorization` header (or presigned query).
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    pub access_key: String,
    pub date: String,
    pub region: String,
    pub service: String,
}

/// Why a request was refused; each maps to the protocol's own 403 body.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthFailure {
    Missing,
    Malformed(String),
    UnknownAccessKey,
    BadSessionToken,
    SignatureMismatch,
    /// A role session's credentials, used after they expired.
    Expired,
}

impl AuthFailure {
    pub fn message(&self) -> String {
        match self {
            Self::Missing => "Missing Authentication Token".into(),
            Self::Malformed(why) => format!("Authorization header is malformed: {why}"),
            Self::UnknownAccessKey => {
                "The security token included in the request is invalid.".into()
            }
            Self::BadSessionToken => "The security token included in the request is invalid.".into(),
            Self::Expired => "The security token included in the request is expired".into(),
            Self::SignatureMismatch => "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
        }
    }
}

/// Reads the credential scope without verifying anything (used for routing).
pub fn scope_of(headers: &HeaderMap, query: Option<&str>) -> Option<Scope> {
    if let Some(auth) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return parse_authorization(auth).ok().map(|a| a.scope);
    }
    let query = query?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "X-Amz-Credential")
        .and_then(|(_, v)| parse_credential(&v).ok())
}

struct Authorization {
    scope: Scope,
    signed_headers: Vec<String>,
    signature: String,
}

fn parse_credential(credential: &str) -> Result<Scope, AuthFailure> {
    let parts: Vec<&str> = credential.split('/').collect();
    match parts.as_slice() {
        [key, date, region, service, "aws4_request"] => Ok(Scope {
            access_key: (*key).to_owned(),
            date: (*date).to_owned(),
            region: (*region).to_owned(),
            service: (*service).to_owned(),
        }),
        _ => Err(AuthFailure::Malformed(format!(
            "credential scope {credential:?} is not <key>/<date>/<region>/<service>/aws4_request"
        ))),
    }
}

fn parse_authorization(header: &str) -> Result<Authorization, AuthFailure> {
    let rest = header
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| AuthFailure::Malformed("only AWS4-HMAC-SHA256 is supported".into()))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let missing = |what: &str| AuthFailure::Malformed(format!("{what} is missing"));
    Ok(Authorization {
        scope: parse_credential(credential.ok_or_else(|| missing("Credential"))?)?,
        signed_headers: signed
            .ok_or_else(|| missing("SignedHeaders"))?
            .split(';')
            .map(str::to_owned)
            .collect(),
        signature: signature.ok_or_else(|| missing("Signature"))?.to_owned(),
    })
}

/// Verifies a header-signed request (non-S3 rules: the path is encoded once more, as AWS SDKs do
/// for every service but S3).
pub fn verify(
    credentials: &CredentialsConfig,
    method: &str,
    raw_path: &str,
    raw_query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Scope, AuthFailure> {
    let header = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(AuthFailure::Missing)?
        .to_str()
        .map_err(|_| AuthFailure::Malformed("not ASCII".into()))?;
    let auth = parse_authorization(header)?;
    if auth.scope.access_key != credentials.access_key_id {
        return Err(AuthFailure::UnknownAccessKey);
    }
    if let Some(expected) = &credentials.session_token {
        let got = headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok());
        if got != Some(expected.as_str()) {
            return Err(AuthFailure::BadSessionToken);
        }
    }
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| AuthFailure::Malformed("X-Amz-Date is missing".into()))?;
    let payload_hash = match headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        Some(h) => h.to_owned(),
        None => hex::encode(Sha256::digest(body)),
    };
    let canonical_uri =
        utf8_percent_encode(if raw_path.is_empty() { "/" } else { raw_path }, PATH).to_string();
    let mut canonical_headers = String::new();
    for name in &auth.signed_headers {
        let values: Vec<String> = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| collapse_spaces(v.to_str().unwrap_or("")))
            .collect();
        if values.is_empty() && name != "host" {
            return Err(AuthFailure::SignatureMismatch);
        }
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&values.join(","));
        canonical_headers.push('\n');
    }
    let canonical_request = format!(
        "{method}\n{canonical_uri}\n{}\n{canonical_headers}\n{}\n{payload_hash}",
        canonical_query(raw_query.unwrap_or("")),
        auth.signed_headers.join(";"),
    );
    let scope = &auth.scope;
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{}/{}/{}/aws4_request\n{}",
        scope.date,
        scope.region,
        scope.service,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let key = signing_key(
        &credentials.secret_access_key,
        &scope.date,
        &scope.region,
        &scope.service,
    );
    let expected = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    if expected != auth.signature {
        tracing::debug!(%canonical_request, "signature mismatch");
        return Err(AuthFailure::SignatureMismatch);
    }
    Ok(auth.scope)
}

fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn canonical_query(raw: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (reencode(k), reencode(v))
        })
        .collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn reencode(s: &str) -> String {
    let decoded = percent_decode_str(s).decode_utf8_lossy();
    utf8_percent_encode(&decoded, UNRESERVED).to_string()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    hmac(&k, b"aws4_request")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `get-vanilla` case of the AWS SigV4 test suite.
    #[test]
    fn verifies_the_aws_test_suite_vanilla_get() {
        let creds = CredentialsConfig {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.amazonaws.com".parse().unwrap());
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        headers.insert("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31".parse().unwrap());
        let scope = verify(&creds, "GET", "/", None, &headers, b"").unwrap();
        assert_eq!(scope.service, "service");
        headers.insert("x-amz-date", "20150830T123601Z".parse().unwrap());
        assert_eq!(
            verify(&creds, "GET", "/", None, &headers, b""),
            Err(AuthFailure::SignatureMismatch)
        );
    }

    #[test]
    fn canonical_query_sorts_and_reencodes() {
        assert_eq!(canonical_query("b=2&a=%2a&a=1"), "a=%2A&a=1&b=2");
    }
}
