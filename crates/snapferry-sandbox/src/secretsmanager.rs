//! AWS Secrets Manager, JSON 1.1 protocol (`X-Amz-Target: secretsmanager.<Operation>`):
//! `GetSecretValue`, the one call snapferry makes (an internal master user's password).
//!
//! Secrets are seeded (`secrets:` in the config), each in an account and Region (the defaults
//! unless the seed says otherwise), with an ARN as AWS makes it:
//! `arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 random characters>`. A request
//! names a secret by its full ARN or by its name, and is answered in the Region it was signed
//! for and the caller's account (an ARN elsewhere is not found there, as on AWS). The caller's
//! identity policy must allow `secretsmanager:GetSecretValue` on the secret's ARN (the sandbox's
//! one policy evaluator, as for `es:` and `s3:` actions): `AccessDeniedException` otherwise,
//! decided before whether the secret exists, so a refused caller learns nothing about it (a
//! name that exists nowhere is checked as `…:secret:<name>`). Another account's secret needs a
//! resource policy, which the sandbox does not model: refused. KMS is not modelled (AWS also
//! needs `kms:Decrypt` on a customer-managed key; see docs/aws-setup.md).
//! Errors: `ResourceNotFoundException` "Secrets Manager can't find the specified secret.", and
//! the protocol's shapes (`__type`, `Message`, HTTP 400).

use std::collections::BTreeMap;
use std::sync::Mutex;

use base64::Engine;
use rand::Rng;
use serde_json::{Value, json};

use crate::config::SeedSecret;
use crate::http::{Protocol, Resp};

/// The JSON 1.1 content type Secrets Manager answers with.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// AWS's words for a secret it does not find.
pub const NOT_FOUND: &str = "Secrets Manager can't find the specified secret.";

/// One secret's current version.
#[derive(Debug, Clone)]
pub struct Secret {
    pub arn: String,
    /// The account that owns it.
    pub account: String,
    pub name: String,
    string: Option<String>,
    binary: Option<Vec<u8>>,
    created: f64,
    version: String,
}

/// The secrets of every account and Region, keyed by (account, region, name).
#[derive(Debug, Default)]
pub struct SecretStore {
    secrets: Mutex<BTreeMap<(String, String, String), Secret>>,
}

/// Six random letters and digits, as AWS suffixes a secret's ARN (after `<name>-`).
fn suffix() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..6)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

impl SecretStore {
    /// Adds a seeded secret in `account` and `region` (already checked by the config).
    pub fn insert_seed(&self, seed: &SeedSecret, account: &str, region: &str) {
        let arn = format!(
            "arn:aws:secretsmanager:{region}:{account}:secret:{}-{}",
            seed.name,
            suffix()
        );
        let binary = seed.secret_binary.as_ref().map(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .unwrap_or_default()
        });
        self.secrets.lock().expect("secrets lock").insert(
            (account.to_owned(), region.to_owned(), seed.name.clone()),
            Secret {
                arn,
                account: account.to_owned(),
                name: seed.name.clone(),
                string: seed.secret_string.clone(),
                binary,
                created: chrono::Utc::now().timestamp() as f64,
                version: uuid::Uuid::new_v4().to_string(),
            },
        );
    }

    /// The ARN of the secret `name` in `account` and `region`.
    pub fn arn(&self, account: &str, region: &str, name: &str) -> Option<String> {
        self.secrets
            .lock()
            .expect("secrets lock")
            .get(&(account.to_owned(), region.to_owned(), name.to_owned()))
            .map(|s| s.arn.clone())
    }

    /// The secret `id` names in a request signed for `region` by a caller of `account`: by
    /// full ARN (of any account, in that Region), or by name in the caller's own account.
    pub fn find(&self, account: &str, region: &str, id: &str) -> Option<Secret> {
        let secrets = self.secrets.lock().expect("secrets lock");
        if id.starts_with("arn:") {
            return secrets
                .values()
                .find(|s| s.arn == id && s.arn.split(':').nth(3) == Some(region))
                .cloned();
        }
        secrets
            .get(&(account.to_owned(), region.to_owned(), id.to_owned()))
            .cloned()
    }
}

/// The resource a request for `id` is authorized against: the secret's ARN when it exists in
/// the caller's account and Region, else the ARN as written, else the name as an ARN without
/// its suffix (where AWS, finding nothing, still checks the caller's permission first).
pub fn resource(found: Option<&Secret>, account: &str, region: &str, id: &str) -> String {
    match found {
        Some(secret) => secret.arn.clone(),
        None if id.starts_with("arn:") => id.to_owned(),
        None => format!("arn:aws:secretsmanager:{region}:{account}:secret:{id}"),
    }
}

/// The operation a request is (from `X-Amz-Target`) and the secret it names, for the log.
pub fn classify(headers: &http::HeaderMap, body: &[u8]) -> (String, Option<String>) {
    let operation = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix("secretsmanager."))
        .unwrap_or("Unknown")
        .to_owned();
    let target = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("SecretId").and_then(Value::as_str).map(str::to_owned));
    (operation, target)
}

/// Answers one request (its permission already checked by the router's `guarded`).
pub fn handle(
    operation: &str,
    body: &[u8],
    found: Option<Secret>,
    other_account: Option<crate::identity::Denial>,
) -> Resp {
    let p = Protocol::Json;
    match operation {
        "GetSecretValue" => {}
        other => {
            return p.error(
                400,
                "UnknownOperationException",
                &format!("The sandbox's Secrets Manager does not serve {other}; it serves GetSecretValue."),
            );
        }
    }
    let Ok(input) = serde_json::from_slice::<Value>(body) else {
        return p.error(
            400,
            "SerializationException",
            "Start of structure or map found where not expected.",
        );
    };
    let id = input.get("SecretId").and_then(Value::as_str).unwrap_or("");
    if id.is_empty() || id.len() > 2048 {
        return p.error(
            400,
            "ValidationException",
            &format!(
                "1 validation error detected: Value '{id}' at 'secretId' failed to satisfy constraint: Member must have length between 1 and 2048"
            ),
        );
    }
    if input.get("VersionId").is_some() || input.get("VersionStage").is_some() {
        // Only the current version exists here; AWSCURRENT is what snapferry reads.
        let stage = input.get("VersionStage").and_then(Value::as_str);
        if input.get("VersionId").is_some() || stage.is_some_and(|s| s != "AWSCURRENT") {
            return p.error(400, "ResourceNotFoundException", NOT_FOUND);
        }
    }
    if let Some(denial) = other_account {
        return p.access_denied(&denial);
    }
    let Some(secret) = found else {
        return p.error(400, "ResourceNotFoundException", NOT_FOUND);
    };
    let mut out = json!({
        "ARN": secret.arn,
        "Name": secret.name,
        "VersionId": secret.version,
        "VersionStages": ["AWSCURRENT"],
        "CreatedDate": secret.created,
    });
    if let Some(s) = &secret.string {
        out["SecretString"] = json!(s);
    }
    if let Some(b) = &secret.binary {
        out["SecretBinary"] = json!(base64::engine::general_purpose::STANDARD.encode(b));
    }
    crate::http::respond(200, CONTENT_TYPE, out.to_string())
}
