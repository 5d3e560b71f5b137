//! Snapshot repositories and snapshots. Registering an `s3` repository checks what Amazon
//! OpenSearch Service checks (the role exists, its trust policy lets `es.amazonaws.com` assume it
//! under its `aws:SourceAccount`/`aws:SourceArn` conditions, the bucket exists, the bucket policy
//! or the role's own policy allows the role what a snapshot needs — all decided by
//! [`crate::policy_eval`]; a bucket of another account only as its policy grants the role and
//! the role's own policy allows). The domain reaches S3 in its own Region unless the repository
//! names an `endpoint` (`s3.amazonaws.com` reaches every Region, `s3.<region>.amazonaws.com`
//! that one): a bucket elsewhere answers 301 `PermanentRedirect`. A snapshot's mappings, settings and documents are really written into the bucket under
//! `base_path`, and the snapshot goes `IN_PROGRESS → SUCCESS` over the configured (scaled) time.

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::time::Instant;

use sha2::Digest;

use std::collections::BTreeMap;

use super::shard_files::{self, ShardStats};
use super::{DataStream, DomainData, Req};
use crate::Shared;
use crate::faults::FaultKind;
use crate::http::{Resp, json as json_resp, os_error};
use crate::policy_eval::{
    Context, Decision, Policy, Principal, Request, evaluate, evaluate_across,
};
use crate::s3::BlobError;

/// A registered repository.
#[derive(Debug, Clone)]
pub struct Repository {
    pub kind: String,
    pub settings: Value,
    pub bucket: String,
    pub base_path: String,
    pub role_arn: String,
}

impl Repository {
    pub fn prefix(&self) -> String {
        let base = self.base_path.trim_matches('/');
        if base.is_empty() {
            String::new()
        } else {
            format!("{base}/")
        }
    }

    pub fn meta_key(&self, snapshot: &str) -> String {
        format!("{}snapshots/{snapshot}.json", self.prefix())
    }

    pub fn index_key(&self, snapshot: &str, index: &str) -> String {
        format!("{}indices/{snapshot}/{index}.json", self.prefix())
    }
}

/// A snapshot this domain started: its final info and when it reaches its final state.
#[derive(Debug, Clone)]
pub struct Run {
    pub started: Instant,
    pub ends_at: Instant,
    pub info: Value,
}

pub fn repository_missing(repo: &str) -> Resp {
    os_error(
        404,
        "repository_missing_exception",
        &format!("[{repo}] missing"),
    )
}

pub fn snapshot_missing(repo: &str, snap: &str) -> Resp {
    os_error(
        404,
        "snapshot_missing_exception",
        &format!("[{repo}:{snap}] is missing"),
    )
}

fn repository_exception(repo: &str, why: &str) -> Resp {
    os_error(500, "repository_exception", &format!("[{repo}] {why}"))
}

/// OpenSearch's snapshot-name rules.
pub fn snapshot_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("cannot be empty")
    } else if name.contains(['\\', '/', '*', '?', '"', '<', '>', '|', ',', '#', ' ']) {
        Some("must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?]")
    } else if name.starts_with('_') {
        Some("must not start with '_'")
    } else if name.to_lowercase() != name {
        Some("must be lowercase")
    } else {
        None
    }
}

fn repository_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("cannot be empty")
    } else if name.contains(['\\', '/', '*', '?', '"', '<', '>', '|', ',', '#', ' ']) {
        Some("must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?]")
    } else {
        None
    }
}

/// The service names a domain assumes a snapshot role as (OpenSearch Service answers to both).
const DOMAIN_SERVICE: &[&str] = &["es.amazonaws.com", "opensearchservice.amazonaws.com"];

/// Whether the role's trust policy lets the domain assume it: the service principal, with
/// `aws:SourceAccount` and `aws:SourceArn` for the confused-deputy conditions (service software
/// R20211203 and later, which the sandbox is).
fn trust_allows_domain(trust: &str, role_arn: &str, domain_arn: &str, account: &str) -> bool {
    let Ok(trust) = Policy::parse(trust, true) else {
        return false;
    };
    let principal = Principal::service(DOMAIN_SERVICE);
    let request = Request {
        principal: &principal,
        action: "sts:AssumeRole",
        resource: role_arn,
        context: Context::default()
            .with("aws:SourceAccount", account)
            .with("aws:SourceArn", domain_arn),
    };
    evaluate(Some(&[]), &[&trust], &request) == Decision::Allow
}

/// Whether the role's session may do `action` on `resource`: its inline policies (identity-based)
/// together with the bucket policy (resource-based). A policy that does not parse grants nothing.
/// `prefix` is the `s3:prefix` of a `ListBucket` (the repository plugin lists under its base
/// path), so a policy that limits listing to the base path allows it.
#[allow(clippy::too_many_arguments)]
fn role_may(
    role_arn: &str,
    account: &str,
    inline: &[Policy],
    bucket: Option<&Policy>,
    bucket_owner: Option<&str>,
    action: &str,
    resource: &str,
    prefix: &str,
) -> bool {
    let role = role_arn.rsplit('/').next().unwrap_or(role_arn);
    let session = format!("arn:aws:sts::{account}:assumed-role/{role}/snapferry-sandbox-domain");
    let principal = Principal::iam(account, vec![role_arn.to_owned(), session]);
    let mut context = Context::default()
        .with("aws:PrincipalArn", role_arn)
        .with("aws:ViaAWSService", "true");
    if action == "s3:ListBucket" {
        context = context.with("s3:prefix", prefix);
    }
    let request = Request {
        principal: &principal,
        action,
        resource,
        context,
    };
    let bucket: Vec<&Policy> = bucket.into_iter().collect();
    evaluate_across(Some(inline), &bucket, &request, bucket_owner) == Decision::Allow
}

/// The Region a repository's S3 client calls: the one its `endpoint` names (`None` for the
/// global `s3.amazonaws.com`, which reaches a bucket in any Region), else the domain's own.
fn client_region(settings: &Value, domain_region: &str) -> Option<String> {
    let Some(endpoint) = settings.get("endpoint").and_then(Value::as_str) else {
        return Some(domain_region.to_owned());
    };
    let host = endpoint
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    if host == "s3.amazonaws.com" || host == "s3-external-1.amazonaws.com" {
        return None;
    }
    let rest = host
        .strip_prefix("s3.dualstack.")
        .or_else(|| host.strip_prefix("s3."))
        .or_else(|| host.strip_prefix("s3-"))
        .and_then(|r| r.strip_suffix(".amazonaws.com"));
    Some(rest.unwrap_or(domain_region).to_owned())
}

/// Why a domain could not use a repository's bucket, as the repository plugin's AWS SDK (for
/// Java, v1 on the managed service) reports it.
enum AccessFailure {
    /// STS refused to let the domain assume the role: it does not exist, its trust policy does
    /// not name the service, or it has not propagated from IAM yet.
    AssumeRole,
    /// S3 answered with an error.
    S3 {
        status: u16,
        code: &'static str,
        message: &'static str,
    },
    /// The bucket is in another Region than the one the client called.
    WrongRegion { bucket_region: String },
    /// An external S3 or IAM could not be asked.
    Other(String),
}

/// What AWS's repository plugin needs to verify an S3 repository: assume the role (which must
/// exist as the other services see it, and trust `es.amazonaws.com`), find the bucket, and be
/// allowed, by the bucket policy or the role's own policies, what a snapshot does there.
async fn check_access(
    shared: &Shared,
    data: &DomainData,
    r: &Repository,
) -> Result<(), AccessFailure> {
    let role = match shared.roles.role_by_arn(&r.role_arn).await {
        Ok(Some(role)) => role,
        Ok(None) => return Err(AccessFailure::AssumeRole),
        Err(e) => {
            return Err(AccessFailure::Other(format!(
                "cannot read role {}: {e}",
                r.role_arn
            )));
        }
    };
    let account = &data.key.account;
    let domain_arn = format!(
        "arn:aws:es:{}:{account}:domain/{}",
        data.key.region, data.name
    );
    if !trust_allows_domain(&role.trust_policy, &r.role_arn, &domain_arn, account) {
        return Err(AccessFailure::AssumeRole);
    }
    let role_account = r.role_arn.split(':').nth(4).unwrap_or(account).to_owned();
    let home = shared.blobs.bucket_home(&r.bucket);
    if let (Some((_, bucket_region)), Some(called)) =
        (&home, client_region(&r.settings, &data.key.region))
        && *bucket_region != called
    {
        return Err(AccessFailure::WrongRegion {
            bucket_region: bucket_region.clone(),
        });
    }
    let bucket_owner = home.map(|(owner, _)| owner);
    match shared.blobs.bucket_exists(&r.bucket).await {
        Ok(true) => {}
        Ok(false) | Err(BlobError::NoSuchBucket) => {
            return Err(AccessFailure::S3 {
                status: 404,
                code: "NoSuchBucket",
                message: "The specified bucket does not exist",
            });
        }
        Err(BlobError::Other(e)) => return Err(AccessFailure::Other(e)),
    }
    let bucket_policy = match shared.blobs.bucket_policy(&r.bucket).await {
        Ok(p) => p,
        Err(BlobError::NoSuchBucket) => None,
        Err(BlobError::Other(e)) => return Err(AccessFailure::Other(e)),
    };
    let inline: Vec<Policy> = role
        .inline_policies
        .iter()
        .filter_map(|p| Policy::parse(p, false).ok())
        .collect();
    let bucket_policy = bucket_policy.and_then(|p| Policy::parse(&p, true).ok());
    let bucket_arn = format!("arn:aws:s3:::{}", r.bucket);
    let objects = format!("{bucket_arn}/{}*", r.prefix());
    let needs = [
        ("s3:ListBucket", bucket_arn.as_str()),
        ("s3:GetObject", objects.as_str()),
        ("s3:PutObject", objects.as_str()),
        ("s3:DeleteObject", objects.as_str()),
    ];
    // A read-only repository (a restore's) only lists and reads: the plugin writes nothing.
    let readonly =
        matches!(r.settings.get("readonly"), Some(v) if v == &json!(true) || v == &json!("true"));
    let needs = if readonly { &needs[..2] } else { &needs[..] };
    for &(action, resource) in needs {
        let resource = resource.replace('*', "snapferry-check");
        if !role_may(
            &r.role_arn,
            &role_account,
            &inline,
            bucket_policy.as_ref(),
            bucket_owner.as_deref(),
            action,
            &resource,
            &r.prefix(),
        ) {
            return Err(AccessFailure::S3 {
                status: 403,
                code: "AccessDenied",
                message: "Access Denied",
            });
        }
    }
    Ok(())
}

/// OpenSearch's answer to a failed verification (`BlobStoreRepository.startVerification`): a
/// 500 whose top-level type and reason are generic — "[repo] path [base] is not accessible on
/// master node" ("cluster-manager node" from OpenSearch 2) — with the S3 or STS cause only
/// inside `caused_by`, under the `i_o_exception` of the test blob's upload.
fn verification_failure(
    data: &DomainData,
    repo: &str,
    r: &Repository,
    failure: AccessFailure,
) -> Resp {
    let node = if data.engine.at_least_os(2, 0) {
        "cluster-manager"
    } else {
        "master"
    };
    // BlobPath prints each element in brackets: "" for no base path, "[a][b]" for "a/b".
    let path: String = r
        .base_path
        .split('/')
        .filter(|p| !p.is_empty())
        .map(|p| format!("[{p}]"))
        .collect();
    let reason = format!("[{repo}] path {path} is not accessible on {node} node");
    let request_id = || uuid::Uuid::new_v4().simple().to_string().to_uppercase()[..16].to_owned();
    let account = &data.key.account;
    let cause = match failure {
        AccessFailure::AssumeRole => json!({
            "type": "a_w_s_security_token_service_exception",
            "reason": format!(
                "User: arn:aws:sts::{account}:assumed-role/cp-sts-grant-role/swift-{}-prod-{account} is not authorized to perform: sts:AssumeRole on resource: {} (Service: AWSSecurityTokenService; Status Code: 403; Error Code: AccessDenied; Request ID: {}; Proxy: null)",
                data.key.region,
                r.role_arn,
                uuid::Uuid::new_v4()
            ),
        }),
        AccessFailure::S3 {
            status,
            code,
            message,
        } => json!({
            "type": "amazon_s3_exception",
            "reason": format!(
                "{message} (Service: Amazon S3; Status Code: {status}; Error Code: {code}; Request ID: {}; S3 Extended Request ID: {}; Proxy: null)",
                request_id(),
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, uuid::Uuid::new_v4().as_bytes())
            ),
        }),
        AccessFailure::WrongRegion { bucket_region } => json!({
            "type": "amazon_s3_exception",
            "reason": format!(
                "The bucket is in this region: {bucket_region}. Please use this region to retry the request (Service: Amazon S3; Status Code: 301; Error Code: PermanentRedirect; Request ID: {}; S3 Extended Request ID: {}; Proxy: null)",
                request_id(),
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, uuid::Uuid::new_v4().as_bytes())
            ),
        }),
        AccessFailure::Other(e) => json!({"type": "sdk_client_exception", "reason": e}),
    };
    let readonly =
        matches!(r.settings.get("readonly"), Some(v) if v == &json!(true) || v == &json!("true"));
    let caused_by = if readonly {
        // A read-only repository is verified by listing its index blobs, not by an upload.
        cause
    } else {
        let seed = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            uuid::Uuid::new_v4().as_bytes(),
        );
        json!({
            "type": "i_o_exception",
            "reason": format!("Unable to upload object [{}tests-{seed}/master.dat] using a single upload", r.prefix()),
            "caused_by": cause,
        })
    };
    json_resp(
        500,
        &json!({
            "error": {
                "root_cause": [{"type": "repository_verification_exception", "reason": reason}],
                "type": "repository_verification_exception",
                "reason": reason,
                "caused_by": caused_by,
            },
            "status": 500
        }),
    )
}

/// Verifies a registered repository as OpenSearch does: the access checks, then a test blob
/// written (unless read-only) and deleted.
async fn verify(
    shared: &Shared,
    data: &DomainData,
    repo: &str,
    r: &Repository,
) -> Result<(), Resp> {
    if let Err(failure) = check_access(shared, data, r).await {
        return Err(verification_failure(data, repo, r, failure));
    }
    let readonly =
        matches!(r.settings.get("readonly"), Some(v) if v == &json!(true) || v == &json!("true"));
    if readonly {
        return Ok(());
    }
    let key = format!(
        "{}tests-{}/master.dat",
        r.prefix(),
        uuid::Uuid::new_v4().simple()
    );
    if let Err(e) = shared
        .blobs
        .put(&r.bucket, &key, Bytes::from_static(b"verify"))
        .await
    {
        let failure = match e {
            BlobError::NoSuchBucket => AccessFailure::S3 {
                status: 404,
                code: "NoSuchBucket",
                message: "The specified bucket does not exist",
            },
            BlobError::Other(e) => AccessFailure::Other(e),
        };
        return Err(verification_failure(data, repo, r, failure));
    }
    let _ = shared.blobs.delete(&r.bucket, &key).await;
    Ok(())
}

pub async fn put_repository(shared: &Shared, data: &DomainData, repo: &str, req: &Req) -> Resp {
    // Amazon OpenSearch Service keeps `cs-` for its automated snapshots: registering such a
    // repository is refused at the service's gateway, before OpenSearch sees it.
    if repo.starts_with("cs-") {
        return json_resp(
            401,
            &json!({"Message": format!("Your request: '/_snapshot/{repo}' is not allowed.")}),
        );
    }
    if let Some(why) = repository_name_problem(repo) {
        return repository_exception(repo, &format!("Invalid repository name [{repo}], {why}"));
    }
    let body = match req.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let kind = body["type"].as_str().unwrap_or("").to_owned();
    if kind.is_empty() {
        return repository_exception(repo, "repository type is missing");
    }
    if kind != "s3" {
        return repository_exception(
            repo,
            &format!(
                "repository type [{kind}] is not allowed on Amazon OpenSearch Service; register an s3 repository"
            ),
        );
    }
    let settings = body.get("settings").cloned().unwrap_or(json!({}));
    let Some(bucket) = settings["bucket"].as_str().map(str::to_owned) else {
        return repository_exception(repo, "No bucket defined for s3 repository");
    };
    let Some(role_arn) = settings["role_arn"].as_str().map(str::to_owned) else {
        return repository_exception(
            repo,
            "role_arn is required: Amazon OpenSearch Service needs an IAM role to write snapshots to S3",
        );
    };
    let r = Repository {
        kind,
        bucket,
        base_path: settings["base_path"].as_str().unwrap_or("").to_owned(),
        role_arn,
        settings,
    };
    // OpenSearch writes the repository into the cluster state first and verifies it after: a
    // failed verification answers 500 but the repository stays registered.
    data.lock().repos.insert(repo.to_owned(), r.clone());
    let skip = req.query.get("verify").is_some_and(|v| v == "false");
    if !skip && let Err(resp) = verify(shared, data, repo, &r).await {
        return resp;
    }
    json_resp(200, &json!({"acknowledged": true}))
}

pub fn get_repository(shared: &Shared, data: &DomainData, expr: Option<&str>) -> Resp {
    let state = data.lock();
    let mut names: Vec<String> = state.repos.keys().cloned().collect();
    let automated = has_automated(shared, data);
    if automated {
        names.push(AUTOMATED_REPOSITORY.to_owned());
        names.sort();
    }
    let selected = match expr {
        None | Some("_all") | Some("*") => names,
        Some(expr) => {
            let mut out = Vec::new();
            for part in expr.split(',') {
                let matched: Vec<&String> = names
                    .iter()
                    .filter(|n| super::indices::glob(part, n))
                    .collect();
                if matched.is_empty() && !part.contains('*') {
                    return repository_missing(part);
                }
                out.extend(matched.into_iter().cloned());
            }
            out
        }
    };
    let mut body = serde_json::Map::new();
    for n in selected {
        let Some(r) = state.repos.get(&n) else {
            // The service's own repository: its settings are not shown.
            body.insert(n, json!({"type": "s3", "settings": {}}));
            continue;
        };
        let settings: serde_json::Map<String, Value> = r
            .settings
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| {
                        let s = v
                            .as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string());
                        (k.clone(), Value::String(s))
                    })
                    .collect()
            })
            .unwrap_or_default();
        body.insert(n, json!({"type": r.kind, "settings": settings}));
    }
    json_resp(200, &Value::Object(body))
}

pub fn delete_repository(data: &DomainData, repo: &str) -> Resp {
    if data.lock().repos.remove(repo).is_none() {
        return repository_missing(repo);
    }
    json_resp(200, &json!({"acknowledged": true}))
}

pub async fn verify_repository(shared: &Shared, data: &DomainData, repo: &str) -> Resp {
    let Some(r) = data.lock().repos.get(repo).cloned() else {
        return repository_missing(repo);
    };
    if let Err(resp) = verify(shared, data, repo, &r).await {
        return resp;
    }
    json_resp(
        200,
        &json!({"nodes": {"sandbox-node-1": {"name": format!("{}-node-1", data.name)}}}),
    )
}

fn millis_to_iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The info as seen now: `IN_PROGRESS` until the run's end.
fn info_now(info: &Value, run: Option<&Run>, now: Instant) -> Value {
    let mut info = info.clone();
    if let Some(run) = run
        && now < run.ends_at
    {
        info["state"] = json!("IN_PROGRESS");
        let start = info["start_time_in_millis"].as_i64().unwrap_or(0);
        info["end_time_in_millis"] = json!(0);
        info["duration_in_millis"] = json!((now - run.started).as_millis() as i64);
        if let Some(o) = info.as_object_mut() {
            o.remove("end_time");
        }
        info["start_time"] = json!(millis_to_iso(start));
        info["shards"] = json!({"total": 0, "failed": 0, "successful": 0});
        info["failures"] = json!([]);
    }
    info
}

/// Where the data streams a snapshot holds are kept (the server keeps them in its global metadata).
pub fn streams_key(r: &Repository, snapshot: &str) -> String {
    format!("{}streams/{snapshot}.json", r.prefix())
}

fn stream_json(d: &DataStream) -> Value {
    json!({"name": d.name, "timestamp_field": d.timestamp_field, "generation": d.generation, "indices": d.indices})
}

pub fn stream_from_json(v: &Value) -> DataStream {
    DataStream {
        name: v["name"].as_str().unwrap_or("").to_owned(),
        timestamp_field: v["timestamp_field"]
            .as_str()
            .unwrap_or("@timestamp")
            .to_owned(),
        generation: v["generation"].as_u64().unwrap_or(1) as u32,
        indices: v["indices"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
    }
}

/// The repository Amazon OpenSearch Service keeps its automated snapshots in.
pub const AUTOMATED_REPOSITORY: &str = "cs-automated";

/// Whether the domain takes automated snapshots that hold its one snapshot slot.
fn has_automated(shared: &Shared, data: &DomainData) -> bool {
    !data.engine.concurrent_snapshots()
        && data.seed.automated_snapshots.enabled
        && shared.config.time_scale > 0.0
}

/// The automated snapshot running now, if any: on a domain before Elasticsearch 7.9 (which runs
/// one snapshot at a time), hourly from `seed_data.<domain>.automated_snapshots`.
pub fn automated_running(shared: &Shared, data: &DomainData, now: Instant) -> Option<String> {
    let a = &data.seed.automated_snapshots;
    if !has_automated(shared, data) || a.every_secs <= 0.0 {
        return None;
    }
    let simulated =
        now.saturating_duration_since(data.started).as_secs_f64() / shared.config.time_scale;
    if simulated < a.first_after_secs {
        return None;
    }
    let k = ((simulated - a.first_after_secs) / a.every_secs).floor();
    let into = simulated - a.first_after_secs - k * a.every_secs;
    if into >= a.duration_secs {
        return None;
    }
    let started_at = chrono::Utc::now()
        - chrono::Duration::milliseconds((into * shared.config.time_scale * 1000.0) as i64);
    let digest = hex::encode(sha2::Sha256::digest(
        format!("{}/{k}", data.name).as_bytes(),
    ));
    Some(format!(
        "{}.{}-{}-{}-{}-{}",
        started_at.format("%Y-%m-%dt%H-%M-%S"),
        &digest[..8],
        &digest[8..12],
        &digest[12..16],
        &digest[16..20],
        &digest[20..32]
    ))
}

/// A snapshot's simulated duration when it uploads `bytes` of new segment files: the fixed part
/// (cluster-state updates, the repository's `index-N`) plus the upload.
pub(crate) fn snapshot_duration(shared: &Shared, bytes: u64) -> std::time::Duration {
    let l = &shared.config.latencies;
    shared
        .config
        .scaled(l.snapshot_secs + l.snapshot_secs_per_kib * bytes as f64 / 1024.0)
}

/// Where a snapshot's per-index file stats are kept (the server keeps them in each shard's
/// `snap-<uuid>.dat`), for `_status`.
pub fn stats_key(r: &Repository, snapshot: &str) -> String {
    format!("{}stats/{snapshot}.json", r.prefix())
}

fn concurrent(shared: &Shared, repo: &str, snap: &str) -> Resp {
    os_error(
        shared.config.concurrent_snapshot_status,
        "concurrent_snapshot_execution_exception",
        &format!("[{repo}:{snap}]  a snapshot is already running"),
    )
}

fn invalid_name(repo: &str, snap: &str, why: &str) -> Resp {
    os_error(
        400,
        "invalid_snapshot_name_exception",
        &format!("[{repo}:{snap}] Invalid snapshot name [{snap}], {why}"),
    )
}

pub async fn create(shared: &Shared, data: &DomainData, repo: &str, snap: &str, req: &Req) -> Resp {
    let Some(r) = data.lock().repos.get(repo).cloned() else {
        return repository_missing(repo);
    };
    if let Some(why) = snapshot_name_problem(snap) {
        return invalid_name(repo, snap, why);
    }
    let body = match req.json_body() {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let now = shared.clock.now();
    let started = chrono::Utc::now().timestamp_millis();
    let concurrent_ok = data.engine.concurrent_snapshots();
    let partial = body["partial"].as_bool().unwrap_or(false);
    // Pick the indices and copy their data while holding the lock, and claim the "running" slot.
    let (payloads, closed, streams, uuid, include_global_state) = {
        let mut state = data.lock();
        let running = |state: &super::DataState| {
            state
                .runs
                .iter()
                .filter(|(_, run)| now < run.ends_at)
                .map(|(k, _)| k.clone())
                .collect::<Vec<_>>()
        };
        if concurrent_ok {
            // Elasticsearch 7.9+ and OpenSearch: the name first, then any number of others.
            if running(&state)
                .iter()
                .any(|(rr, rs)| rr == repo && rs == snap)
            {
                return invalid_name(
                    repo,
                    snap,
                    "snapshot with the same name is already in-progress",
                );
            }
            if state.runs.contains_key(&(repo.to_owned(), snap.to_owned())) {
                return invalid_name(repo, snap, "snapshot with the same name already exists");
            }
        } else {
            // Before 7.9: one snapshot at a time, the automated ones included.
            if !running(&state).is_empty() || automated_running(shared, data, now).is_some() {
                return concurrent(shared, repo, snap);
            }
            if state.runs.contains_key(&(repo.to_owned(), snap.to_owned())) {
                return invalid_name(repo, snap, "snapshot with the same name already exists");
            }
        }
        let names: Vec<String> = state.indices.keys().cloned().collect();
        let requested = super::indices::index_expression(&body["indices"], "_all");
        // The streams the request itself names or matches (an empty list is `_all`): only
        // those go into the snapshot (`dataStreamNames` in OpenSearch's `SnapshotsService`).
        // Backing indices selected by their own names are snapshotted as plain indices.
        let (_, named_streams) = state.expand_streams(if requested.trim().is_empty() {
            "_all"
        } else {
            &requested
        });
        let (expr, _) = state.expand_streams(&requested);
        let expr = if expr.is_empty() {
            "_all".to_owned()
        } else {
            expr
        };
        let ignore_unavailable = body["ignore_unavailable"].as_bool().unwrap_or(false);
        let mut selected = Vec::new();
        for part in expr.split(',') {
            match super::indices::resolve(&names, part) {
                Ok(found) => selected.extend(found),
                Err(_) if ignore_unavailable => {}
                Err(missing) => return super::indices::index_not_found(&missing),
            }
        }
        if expr == "_all" || expr == "*" {
            selected.extend(names.iter().filter(|n| n.starts_with('.')).cloned());
        }
        selected.sort();
        selected.dedup();
        let warm: Vec<&String> = selected.iter().filter(|n| state.indices[*n].warm).collect();
        if !warm.is_empty() && warm.len() < selected.len() {
            return os_error(
                400,
                "illegal_argument_exception",
                &format!(
                    "[{repo}:{snap}] a snapshot cannot contain both hot and warm indices; warm indices {warm:?} must be snapshotted on their own"
                ),
            );
        }
        if warm.len() > 1 {
            return os_error(
                400,
                "illegal_argument_exception",
                &format!(
                    "[{repo}:{snap}] a snapshot can contain at most one warm index, got {}: {warm:?}",
                    warm.len()
                ),
            );
        }
        let closed: Vec<String> = selected
            .iter()
            .filter(|n| state.indices[*n].closed)
            .cloned()
            .collect();
        let uuid = uuid::Uuid::new_v4().simple().to_string()[..22].to_owned();
        if !closed.is_empty() && !partial && concurrent_ok {
            return os_error(
                500,
                "snapshot_exception",
                &format!(
                    "[{repo}:{snap}/{uuid}] Indices don't have primary shards [{}]",
                    closed.join(", ")
                ),
            );
        }
        let streams: Vec<Value> = state
            .data_streams
            .values()
            .filter(|d| {
                // A partial snapshot drops a stream one of whose backing indices it lacks.
                named_streams.contains(&d.name)
                    && d.indices
                        .iter()
                        .all(|i| selected.contains(i) && !closed.contains(i))
            })
            .map(stream_json)
            .collect();
        let payloads: Vec<(String, Value, std::collections::BTreeMap<String, Value>, String)> =
            selected
                .iter()
                .filter(|n| !closed.contains(n))
                .map(|n| {
                    let i = &state.indices[n];
                    (
                        n.clone(),
                        json!({"settings": i.settings, "mappings": i.mappings, "aliases": i.aliases, "data_stream": i.data_stream}),
                        i.docs.clone(),
                        i.uuid(),
                    )
                })
                .collect();
        // Held as running while the files are compared and written, then priced by what was
        // really uploaded.
        let placeholder = Run {
            started: now,
            ends_at: now + std::time::Duration::from_secs(365 * 24 * 3600),
            info: json!({}),
        };
        state
            .runs
            .insert((repo.to_owned(), snap.to_owned()), placeholder);
        (
            payloads,
            closed,
            streams,
            uuid,
            body["include_global_state"].as_bool().unwrap_or(true),
        )
    };
    let release = |data: &DomainData| {
        data.lock().runs.remove(&(repo.to_owned(), snap.to_owned()));
    };
    match shared.blobs.get(&r.bucket, &r.meta_key(snap)).await {
        Ok(Some(_)) => {
            release(data);
            return invalid_name(repo, snap, "snapshot with the same name already exists");
        }
        Ok(None) => {}
        Err(e) => {
            release(data);
            return repository_exception(repo, &format!("cannot read the repository: {e:?}"));
        }
    }
    let outcome = shared
        .faults
        .fire("es-data", "CreateSnapshot", Some(repo), true)
        .map(|f| f.kind);
    let total = payloads.len();
    // Before 7.9 a closed index fails the snapshot once it has started.
    let legacy_closed = !closed.is_empty() && !partial && !concurrent_ok;
    let (state_name, failed_shards) = match outcome {
        _ if legacy_closed => ("FAILED", 0),
        Some(FaultKind::SnapshotFailed) => ("FAILED", total.max(1)),
        Some(FaultKind::SnapshotPartial) => ("PARTIAL", total.min(1)),
        _ if !closed.is_empty() => ("PARTIAL", 0),
        _ => ("SUCCESS", 0),
    };
    let mut failures = Vec::new();
    for index in &closed {
        failures.push(json!({"index": index, "index_uuid": index, "shard_id": "0", "reason": "index is closed", "node_id": "_na_", "status": "INTERNAL_SERVER_ERROR"}));
    }
    let mut shard_stats: BTreeMap<String, ShardStats> = BTreeMap::new();
    for (n, (index, payload, docs, index_uuid)) in payloads.iter().enumerate() {
        if n < failed_shards {
            failures.push(json!({"index": index, "index_uuid": index, "shard_id": "0", "reason": "IndexShardSnapshotFailedException[injected by the snapferry sandbox]", "node_id": "sandbox-node-1", "status": "INTERNAL_SERVER_ERROR"}));
            continue;
        }
        if legacy_closed {
            continue;
        }
        let (mut files, stats) =
            match shard_files::write_index(shared, &r, snap, index, index_uuid, docs).await {
                Ok(x) => x,
                Err(e) => {
                    release(data);
                    return repository_exception(
                        repo,
                        &format!("cannot write snapshot data: {e:?}"),
                    );
                }
            };
        shard_stats.insert(index.clone(), stats);
        let mut payload = payload.clone();
        payload["catalog"] = files["catalog"].take();
        payload["files"] = files["files"].take();
        let bytes = Bytes::from(payload.to_string());
        if let Err(e) = shared
            .blobs
            .put(&r.bucket, &r.index_key(snap, index), bytes)
            .await
        {
            release(data);
            return repository_exception(repo, &format!("cannot write snapshot data: {e:?}"));
        }
    }
    if !streams.is_empty()
        && let Err(e) = shared
            .blobs
            .put(
                &r.bucket,
                &streams_key(&r, snap),
                Bytes::from(Value::Array(streams.clone()).to_string()),
            )
            .await
    {
        release(data);
        return repository_exception(repo, &format!("cannot write snapshot metadata: {e:?}"));
    }
    // Priced by the bytes really uploaded: files already in the repository are not.
    let uploaded: u64 = shard_stats.values().map(|s| s.incremental_bytes).sum();
    let ends_at = now + snapshot_duration(shared, uploaded);
    if let Err(e) = shared
        .blobs
        .put(
            &r.bucket,
            &stats_key(&r, snap),
            Bytes::from(serde_json::to_vec(&shard_stats).unwrap_or_default()),
        )
        .await
    {
        release(data);
        return repository_exception(repo, &format!("cannot write snapshot metadata: {e:?}"));
    }
    let duration = (ends_at - now).as_millis() as i64;
    let shard_total = total + closed.len();
    let shard_failed = failed_shards + closed.len();
    let mut indices_in: Vec<String> = payloads.iter().map(|p| p.0.clone()).collect();
    indices_in.extend(closed.iter().cloned());
    indices_in.sort();
    let mut info = json!({
        "snapshot": snap,
        "uuid": uuid,
        "version_id": data.engine.id(),
        "version": data.engine.number(),
        "indices": indices_in,
        "data_streams": streams.iter().map(|d| d["name"].clone()).collect::<Vec<_>>(),
        "include_global_state": include_global_state,
        "state": state_name,
        "start_time": millis_to_iso(started),
        "start_time_in_millis": started,
        "end_time": millis_to_iso(started + duration),
        "end_time_in_millis": started + duration,
        "duration_in_millis": duration,
        "failures": failures,
        "shards": {"total": shard_total, "failed": if legacy_closed { shard_total } else { shard_failed }, "successful": if legacy_closed { 0 } else { shard_total - shard_failed }},
        "metadata": body.get("metadata").cloned().unwrap_or(Value::Null),
    });
    if legacy_closed {
        info["reason"] = json!(format!("Indices are closed [{}]", closed.join(", ")));
    }
    if info["metadata"].is_null()
        && let Some(o) = info.as_object_mut()
    {
        o.remove("metadata");
    }
    if let Err(e) = shared
        .blobs
        .put(&r.bucket, &r.meta_key(snap), Bytes::from(info.to_string()))
        .await
    {
        release(data);
        return repository_exception(repo, &format!("cannot write snapshot metadata: {e:?}"));
    }
    if let Some(run) = data
        .lock()
        .runs
        .get_mut(&(repo.to_owned(), snap.to_owned()))
    {
        run.info = info.clone();
        run.ends_at = ends_at;
    }
    if req.flag("wait_for_completion") {
        shared.clock.sleep_until(ends_at).await;
        json_resp(200, &json!({ "snapshot": info }))
    } else {
        json_resp(200, &json!({"accepted": true}))
    }
}

/// Every snapshot in the repository, as seen now.
async fn list(
    shared: &Shared,
    data: &DomainData,
    r: &Repository,
    repo: &str,
) -> Result<Vec<Value>, Resp> {
    let prefix = format!("{}snapshots/", r.prefix());
    let keys =
        shared.blobs.list(&r.bucket, &prefix).await.map_err(|e| {
            repository_exception(repo, &format!("cannot list the repository: {e:?}"))
        })?;
    let now = shared.clock.now();
    let mut out = Vec::new();
    for key in keys.iter().filter(|k| k.ends_with(".json")) {
        let Ok(Some(bytes)) = shared.blobs.get(&r.bucket, key).await else {
            continue;
        };
        let Ok(info) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        let name = info["snapshot"].as_str().unwrap_or("").to_owned();
        let run = data.lock().runs.get(&(repo.to_owned(), name)).cloned();
        out.push(info_now(&info, run.as_ref(), now));
    }
    out.sort_by_key(|i| i["start_time_in_millis"].as_i64().unwrap_or(0));
    Ok(out)
}

async fn select(
    shared: &Shared,
    data: &DomainData,
    repo: &str,
    expr: &str,
) -> Result<(Repository, Vec<Value>), Resp> {
    let Some(r) = data.lock().repos.get(repo).cloned() else {
        return Err(repository_missing(repo));
    };
    let all = list(shared, data, &r, repo).await?;
    if expr == "_all" || expr == "*" {
        return Ok((r, all));
    }
    let mut out = Vec::new();
    for part in expr.split(',') {
        let matched: Vec<&Value> = all
            .iter()
            .filter(|i| super::indices::glob(part, i["snapshot"].as_str().unwrap_or("")))
            .collect();
        if matched.is_empty() && !part.contains('*') {
            return Err(snapshot_missing(repo, part));
        }
        out.extend(matched.into_iter().cloned());
    }
    Ok((r, out))
}

pub async fn get(shared: &Shared, data: &DomainData, repo: &str, expr: &str) -> Resp {
    match select(shared, data, repo, expr).await {
        Ok((_, infos)) => json_resp(200, &json!({ "snapshots": infos })),
        Err(resp) => resp,
    }
}

/// The server's `SnapshotStats`: `processed` appears only while it differs from `incremental`.
fn stats_json(s: &ShardStats, progress: f64, start: i64, elapsed: i64) -> Value {
    let mut v = json!({
        "incremental": {"file_count": s.incremental_files, "size_in_bytes": s.incremental_bytes},
        "total": {"file_count": s.total_files, "size_in_bytes": s.total_bytes},
        "start_time_in_millis": start,
        "time_in_millis": elapsed,
    });
    if progress < 1.0 {
        let files = (s.incremental_files as f64 * progress).floor() as u64;
        let bytes = (s.incremental_bytes as f64 * progress).floor() as u64;
        if files != s.incremental_files {
            v["processed"] = json!({"file_count": files, "size_in_bytes": bytes});
        }
    }
    v
}

pub async fn status(shared: &Shared, data: &DomainData, repo: &str, expr: &str) -> Resp {
    let (r, infos) = match select(shared, data, repo, expr).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let now = shared.clock.now();
    let mut out = Vec::new();
    for info in infos {
        let name = info["snapshot"].as_str().unwrap_or("").to_owned();
        let run = data
            .lock()
            .runs
            .get(&(repo.to_owned(), name.clone()))
            .cloned();
        let progress = run
            .as_ref()
            .map(|r| shared.clock.progress(r.started, r.ends_at))
            .unwrap_or(1.0);
        let state = info["state"].as_str().unwrap_or("SUCCESS").to_owned();
        let indices: Vec<String> = info["indices"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let total = indices.len() as u64;
        let done = if state == "IN_PROGRESS" {
            ((total as f64) * progress).floor() as u64
        } else {
            total
        };
        let failed = info["shards"]["failed"].as_u64().unwrap_or(0).min(done);
        let start = info["start_time_in_millis"].as_i64().unwrap_or(0);
        let elapsed = run
            .as_ref()
            .map(|r| (now.min(r.ends_at) - r.started).as_millis() as i64)
            .unwrap_or_else(|| info["duration_in_millis"].as_i64().unwrap_or(0));
        let per_shard: BTreeMap<String, ShardStats> = match shared
            .blobs
            .get(&r.bucket, &stats_key(&r, &name))
            .await
        {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_default(),
            Ok(None) => BTreeMap::new(),
            Err(e) => {
                return repository_exception(repo, &format!("cannot read the repository: {e:?}"));
            }
        };
        let mut sum = ShardStats::default();
        for s in per_shard.values() {
            sum.incremental_files += s.incremental_files;
            sum.incremental_bytes += s.incremental_bytes;
            sum.total_files += s.total_files;
            sum.total_bytes += s.total_bytes;
        }
        let shard_progress = |finished: bool| if finished { 1.0 } else { progress };
        let stats = |index: Option<&String>, finished: bool| {
            let s = index.map_or(sum, |i| per_shard.get(i).copied().unwrap_or_default());
            stats_json(&s, shard_progress(finished), start, elapsed)
        };
        let shards_stats = json!({
            "initializing": 0, "started": total - done, "finalizing": 0,
            "done": done - failed, "failed": failed, "total": total
        });
        let mut per_index = serde_json::Map::new();
        for (n, index) in indices.iter().enumerate() {
            let finished = (n as u64) < done;
            let stage = if !finished {
                "STARTED"
            } else if (n as u64) < failed {
                "FAILURE"
            } else {
                "DONE"
            };
            per_index.insert(
                index.clone(),
                json!({
                    "shards_stats": {"initializing": 0, "started": u64::from(!finished), "finalizing": 0,
                        "done": u64::from(stage == "DONE"), "failed": u64::from(stage == "FAILURE"), "total": 1},
                    "stats": stats(Some(index), finished),
                    "shards": {"0": {"stage": stage, "stats": stats(Some(index), finished)}},
                }),
            );
        }
        let overall = stats(None, state != "IN_PROGRESS");
        out.push(json!({
            "snapshot": name,
            "repository": repo,
            "uuid": info["uuid"],
            "state": if state == "IN_PROGRESS" { "STARTED".to_owned() } else { state.clone() },
            "include_global_state": info["include_global_state"],
            "shards_stats": shards_stats,
            "stats": overall,
            "indices": per_index,
        }));
    }
    json_resp(200, &json!({ "snapshots": out }))
}

/// `GET _snapshot/_status` and `GET _snapshot/<repo>/_status`: the snapshots still running.
pub async fn running_status(shared: &Shared, data: &DomainData, repo: Option<&String>) -> Resp {
    let now = shared.clock.now();
    let running: Vec<(String, String)> = data
        .lock()
        .runs
        .iter()
        .filter(|((r, _), run)| now < run.ends_at && repo.is_none_or(|want| want == r))
        .map(|(k, _)| k.clone())
        .collect();
    if let Some(repo) = repo
        && !data.lock().repos.contains_key(repo.as_str())
        && !(repo == AUTOMATED_REPOSITORY && has_automated(shared, data))
    {
        return repository_missing(repo);
    }
    let mut snapshots = Vec::new();
    if repo.is_none_or(|r| r == AUTOMATED_REPOSITORY)
        && let Some(name) = automated_running(shared, data, now)
    {
        let zero = json!({"incremental": {"file_count": 0, "size_in_bytes": 0}, "total": {"file_count": 0, "size_in_bytes": 0}, "start_time_in_millis": 0, "time_in_millis": 0});
        snapshots.push(json!({
            "snapshot": name, "repository": AUTOMATED_REPOSITORY, "uuid": name, "state": "STARTED",
            "include_global_state": true,
            "shards_stats": {"initializing": 0, "started": 0, "finalizing": 0, "done": 0, "failed": 0, "total": 0},
            "stats": zero, "indices": {},
        }));
    }
    for (r, name) in running {
        let resp = status(shared, data, &r, &name).await;
        let (_, body) = resp.into_parts();
        if let Some(bytes) = body.bytes()
            && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
        {
            snapshots.extend(v["snapshots"].as_array().cloned().unwrap_or_default());
        }
    }
    json_resp(200, &json!({ "snapshots": snapshots }))
}

pub async fn delete(shared: &Shared, data: &DomainData, repo: &str, expr: &str) -> Resp {
    let (r, infos) = match select(shared, data, repo, expr).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    for info in infos {
        let name = info["snapshot"].as_str().unwrap_or("").to_owned();
        let prefix = format!("{}indices/{name}/", r.prefix());
        if let Ok(keys) = shared.blobs.list(&r.bucket, &prefix).await {
            for key in keys {
                // The index's files go only when no other snapshot still references them.
                if let Ok(Some(bytes)) = shared.blobs.get(&r.bucket, &key).await
                    && let Ok(manifest) = serde_json::from_slice::<Value>(&bytes)
                    && let Some(catalog) = manifest["catalog"].as_str()
                    && let Err(e) = shard_files::release(shared, &r, catalog, &name).await
                {
                    return repository_exception(
                        repo,
                        &format!("cannot delete snapshot data: {e:?}"),
                    );
                }
                let _ = shared.blobs.delete(&r.bucket, &key).await;
            }
        }
        let _ = shared.blobs.delete(&r.bucket, &stats_key(&r, &name)).await;
        let _ = shared
            .blobs
            .delete(&r.bucket, &streams_key(&r, &name))
            .await;
        let _ = shared.blobs.delete(&r.bucket, &r.meta_key(&name)).await;
        data.lock().runs.remove(&(repo.to_owned(), name));
    }
    json_resp(200, &json!({"acknowledged": true}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_follow_opensearch_rules() {
        assert_eq!(snapshot_name_problem("nightly-1"), None);
        assert_eq!(snapshot_name_problem("Nightly"), Some("must be lowercase"));
        assert_eq!(snapshot_name_problem("_x"), Some("must not start with '_'"));
        assert!(snapshot_name_problem("a b").is_some());
    }

    #[test]
    fn listing_is_asked_with_the_repository_base_path_as_s3_prefix() {
        let role = "arn:aws:iam::123456789012:role/snap";
        let inline = Policy::parse(
            r#"{"Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
                "Condition": {"StringLike": {"s3:prefix": ["handover/", "handover/*"]}}}}"#,
            false,
        )
        .unwrap();
        let list = |prefix: &str| {
            role_may(
                role,
                "123456789012",
                std::slice::from_ref(&inline),
                None,
                None,
                "s3:ListBucket",
                "arn:aws:s3:::b",
                prefix,
            )
        };
        assert!(list("handover/"));
        assert!(list("handover/production/"));
        assert!(!list("elsewhere/"));
    }

    #[test]
    fn bucket_policy_needs_the_role_as_principal_and_deny_wins() {
        let role = "arn:aws:iam::123456789012:role/snap";
        let policy = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": role}, "Action": ["s3:*"], "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::b/*"}
        ]})
        .to_string();
        let bucket = Policy::parse(&policy, true).unwrap();
        let may = |role: &str, inline: &[Policy], action: &str| {
            role_may(
                role,
                "123456789012",
                inline,
                Some(&bucket),
                None,
                action,
                "arn:aws:s3:::b/x",
                "",
            )
        };
        assert!(may(role, &[], "s3:PutObject"));
        assert!(!may(role, &[], "s3:DeleteObject"));
        let other = "arn:aws:iam::123456789012:role/other";
        assert!(!may(other, &[], "s3:PutObject"));
        // The role's own policy may grant what the bucket policy does not name it for; the
        // bucket policy's deny still wins.
        let own = Policy::parse(
            r#"{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}}"#,
            false,
        )
        .unwrap();
        assert!(may(other, std::slice::from_ref(&own), "s3:PutObject"));
        assert!(!may(other, std::slice::from_ref(&own), "s3:DeleteObject"));
    }

    #[test]
    fn the_trust_policy_names_the_service_and_its_conditions_hold() {
        let role = "arn:aws:iam::123456789012:role/snap";
        let domain = "arn:aws:es:us-east-1:123456789012:domain/logs";
        let trust = |condition: Value| {
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "es.amazonaws.com"}, "Action": "sts:AssumeRole",
                "Condition": condition}]})
            .to_string()
        };
        let ours = json!({"StringEquals": {"aws:SourceAccount": "123456789012"}});
        assert!(trust_allows_domain(
            &trust(ours),
            role,
            domain,
            "123456789012"
        ));
        let theirs = json!({"StringEquals": {"aws:SourceAccount": "210987654321"}});
        assert!(!trust_allows_domain(
            &trust(theirs),
            role,
            domain,
            "123456789012"
        ));
        let arn =
            json!({"ArnLike": {"aws:SourceArn": "arn:aws:es:us-east-1:123456789012:domain/lo*"}});
        assert!(trust_allows_domain(
            &trust(arn),
            role,
            domain,
            "123456789012"
        ));
        let ec2 = r#"{"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}"#;
        assert!(!trust_allows_domain(ec2, role, domain, "123456789012"));
        let slr = r#"{"Statement": [{"Effect": "Allow", "Principal": {"Service": ["opensearchservice.amazonaws.com"]}, "Action": "sts:*"}]}"#;
        assert!(trust_allows_domain(slr, role, domain, "123456789012"));
    }
}
