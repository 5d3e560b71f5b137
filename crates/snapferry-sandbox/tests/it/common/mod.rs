//! Shared test helpers: start a fast sandbox, real AWS SDK clients pointed at it, a SigV4-signed
//! reqwest client for domain endpoints, and a validator for the vendored OpenSearch API spec.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use aws_credential_types::Credentials;
use serde_json::{Value, json};
use snapferry_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

/// A config where simulated time runs 100,000 times faster (a 20-minute creation takes 12 ms).
pub fn fast_config() -> SandboxConfig {
    SandboxConfig {
        time_scale: 0.00001,
        ..Default::default()
    }
}

pub async fn start(config: SandboxConfig) -> SandboxHandle {
    Sandbox::start(config).await.expect("sandbox starts")
}

fn creds(h: &SandboxHandle) -> Credentials {
    let env: BTreeMap<String, String> = h.env().into_iter().collect();
    Credentials::new(
        &env["AWS_ACCESS_KEY_ID"],
        &env["AWS_SECRET_ACCESS_KEY"],
        env.get("AWS_SESSION_TOKEN").cloned(),
        None,
        "test",
    )
}

pub async fn sdk_config(h: &SandboxHandle) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(h.endpoint_url())
        .credentials_provider(creds(h))
        .region(aws_config::Region::new("us-east-1"))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

pub async fn iam(h: &SandboxHandle) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&sdk_config(h).await)
}

pub async fn s3(h: &SandboxHandle) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(&sdk_config(h).await)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

pub async fn opensearch(h: &SandboxHandle) -> aws_sdk_opensearch::Client {
    aws_sdk_opensearch::Client::new(&sdk_config(h).await)
}

/// A SigV4 (`es`) client for one domain endpoint, trusting the sandbox CA.
pub struct DomainClient {
    http: reqwest::Client,
    pub base: String,
    creds: Credentials,
}

impl DomainClient {
    /// A client that signs as another identity than the default one.
    pub fn new_as(h: &SandboxHandle, endpoint: &str, creds: Credentials) -> Self {
        Self {
            creds,
            ..Self::new(h, endpoint)
        }
    }

    pub fn new(h: &SandboxHandle, endpoint: &str) -> Self {
        let pem = std::fs::read(h.ca_bundle_path()).expect("CA bundle readable");
        let ca = reqwest::Certificate::from_pem(&pem).expect("CA bundle is PEM");
        let http = reqwest::Client::builder()
            .add_root_certificate(ca)
            .build()
            .expect("client");
        Self {
            http,
            base: format!("https://{endpoint}"),
            creds: creds(h),
        }
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> (u16, Vec<u8>) {
        self.raw_signed(method, path, body, content_type, true)
            .await
    }

    pub async fn raw_signed(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
        signed: bool,
    ) -> (u16, Vec<u8>) {
        let (status, _, body) = self
            .send(method, path, body, content_type, signed, &[])
            .await;
        (status, body)
    }

    /// A request with extra (unsigned) headers; answers status, headers and body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
        signed: bool,
        extra: &[(&str, &str)],
    ) -> (u16, http::HeaderMap, Vec<u8>) {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let url = format!("{}{path}", self.base);
        let mut req = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("content-type", content_type)
            .body(body.clone())
            .expect("request");
        if signed {
            let identity = self.creds.clone().into();
            let params = aws_sigv4::sign::v4::SigningParams::builder()
                .identity(&identity)
                .region("us-east-1")
                .name("es")
                .time(SystemTime::now())
                .settings(SigningSettings::default())
                .build()
                .expect("params")
                .into();
            let headers = [("content-type", content_type)];
            let signable = SignableRequest::new(
                method,
                &url,
                headers.into_iter(),
                SignableBody::Bytes(&body),
            )
            .expect("signable");
            let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
            instructions.apply_to_request_http1x(&mut req);
        }
        for (k, v) in extra {
            req.headers_mut().insert(
                http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                http::HeaderValue::from_str(v).expect("header value"),
            );
        }
        let req = reqwest::Request::try_from(req).expect("reqwest request");
        let resp = self.http.execute(req).await.expect("domain answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.bytes().await.expect("body").to_vec())
    }

    /// A GET signed for `signed_path` but sent to `sent_path`: what a request changed in transit
    /// (or canonicalised differently by the two sides) looks like to the service.
    pub async fn tampered(&self, signed_path: &str, sent_path: &str) -> (u16, Vec<u8>) {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let signed_url = format!("{}{signed_path}", self.base);
        let mut req = http::Request::builder()
            .method("GET")
            .uri(format!("{}{sent_path}", self.base))
            .body(Vec::new())
            .expect("request");
        let identity = self.creds.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("es")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .expect("params")
            .into();
        let signable = SignableRequest::new(
            "GET",
            &signed_url,
            std::iter::empty(),
            SignableBody::Bytes(&[]),
        )
        .expect("signable");
        let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
        for (name, value) in instructions.headers() {
            req.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                value.parse().expect("header value"),
            );
        }
        let req = reqwest::Request::try_from(req).expect("reqwest request");
        let resp = self.http.execute(req).await.expect("domain answers");
        let status = resp.status().as_u16();
        (status, resp.bytes().await.expect("body").to_vec())
    }

    /// Sends JSON (or nothing) and parses the JSON answer.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let (status, body) = self.raw(method, path, bytes, "application/json").await;
        let value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
        };
        (status, value)
    }

    /// `_bulk` with `create` actions and no ids (as a data stream takes documents).
    pub async fn bulk_create(&self, index: &str, docs: &[Value]) -> (u16, Value) {
        let mut body = String::new();
        for doc in docs {
            body.push_str(&json!({"create": {"_index": index}}).to_string());
            body.push('\n');
            body.push_str(&doc.to_string());
            body.push('\n');
        }
        let (status, bytes) = self
            .raw("POST", "/_bulk", body.into_bytes(), "application/x-ndjson")
            .await;
        (
            status,
            serde_json::from_slice(&bytes).expect("bulk answers JSON"),
        )
    }

    pub async fn bulk(&self, index: &str, docs: &[(String, Value)]) -> (u16, Value) {
        let mut body = String::new();
        for (id, doc) in docs {
            body.push_str(&json!({"index": {"_index": index, "_id": id}}).to_string());
            body.push('\n');
            body.push_str(&doc.to_string());
            body.push('\n');
        }
        let (status, bytes) = self
            .raw("POST", "/_bulk", body.into_bytes(), "application/x-ndjson")
            .await;
        (
            status,
            serde_json::from_slice(&bytes).expect("bulk answers JSON"),
        )
    }
}

/// Creates a domain through the real SDK and waits (in scaled time) until it has an endpoint.
pub async fn ready_domain(h: &SandboxHandle, name: &str) -> DomainClient {
    domain_with(h, name, "OpenSearch_2.11", None).await
}

/// A seeded domain's client.
pub fn seeded(h: &SandboxHandle, name: &str) -> DomainClient {
    DomainClient::new(h, &h.domain_endpoint(name).expect("seeded domain is ready"))
}

/// Creates a domain of one engine version, with `instances` data nodes when given, and waits
/// (in scaled time) until it has an endpoint.
pub async fn domain_with(
    h: &SandboxHandle,
    name: &str,
    engine: &str,
    instances: Option<i32>,
) -> DomainClient {
    let os = opensearch(h).await;
    let mut create = os.create_domain().domain_name(name).engine_version(engine);
    if let Some(n) = instances {
        create = create.cluster_config(
            aws_sdk_opensearch::types::ClusterConfig::builder()
                .instance_type(
                    aws_sdk_opensearch::types::OpenSearchPartitionInstanceType::R6gLargeSearch,
                )
                .instance_count(n)
                .build(),
        );
    }
    create.send().await.expect("CreateDomain");
    for _ in 0..2000 {
        let d = os
            .describe_domain()
            .domain_name(name)
            .send()
            .await
            .expect("DescribeDomain");
        let status = d.domain_status.expect("status");
        if let Some(endpoint) = status.endpoint() {
            return DomainClient::new(h, endpoint);
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("domain {name} never got an endpoint");
}

/// Creates the role, bucket and policies a snapshot repository needs, registers it.
pub async fn repository(
    h: &SandboxHandle,
    domain: &DomainClient,
    repo: &str,
    bucket: &str,
) -> String {
    let role_name = format!("{repo}-role");
    let iam = iam(h).await;
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "es.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let arn = match iam
        .create_role()
        .role_name(&role_name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
    {
        Ok(out) => out.role.expect("role").arn,
        Err(_) => {
            iam.get_role()
                .role_name(&role_name)
                .send()
                .await
                .expect("GetRole")
                .role
                .expect("role")
                .arn
        }
    };
    let s3 = s3(h).await;
    let _ = s3.create_bucket().bucket(bucket).send().await;
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [format!("arn:aws:s3:::{bucket}")]},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": [format!("arn:aws:s3:::{bucket}/*")]}
    ]});
    iam.put_role_policy()
        .role_name(&role_name)
        .policy_name("snapshots")
        .policy_document(policy.to_string())
        .send()
        .await
        .expect("PutRolePolicy");
    // IAM is eventually consistent: until the role reaches OpenSearch Service the registration
    // fails verification (500) and is simply sent again, as a real client must.
    let mut attempts = 0;
    loop {
        let (status, body) = domain
            .call("PUT", &format!("/_snapshot/{repo}"), Some(json!({"type": "s3", "settings": {"bucket": bucket, "base_path": "snaps", "region": "us-east-1", "role_arn": arn}})))
            .await;
        attempts += 1;
        if status == 500
            && body["error"]["type"] == "repository_verification_exception"
            && attempts < 400
        {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            continue;
        }
        assert_eq!(status, 200, "{body}");
        return arn;
    }
}

/// The vendored OpenAPI spec (split YAML files), with `$ref`s resolved into one JSON Schema.
pub struct Spec {
    defs: serde_json::Map<String, Value>,
}

fn spec_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/spec")
}

fn key_of(file: &Path) -> String {
    let rel = file.strip_prefix(spec_dir()).expect("inside spec dir");
    rel.to_string_lossy().replace('/', ":")
}

fn rewrite(value: &mut Value, file: &Path) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref") {
                let (target, pointer) = r.split_once('#').unwrap_or((r.as_str(), ""));
                let target_file = if target.is_empty() {
                    file.to_path_buf()
                } else {
                    normalize(&file.parent().expect("parent").join(target))
                };
                *r = format!("#/$defs/{}{}", key_of(&target_file), pointer);
            }
            for v in map.values_mut() {
                rewrite(v, file);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|v| rewrite(v, file)),
        _ => {}
    }
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

impl Spec {
    pub fn load() -> Self {
        let mut defs = serde_json::Map::new();
        for dir in ["schemas", "namespaces"] {
            for entry in std::fs::read_dir(spec_dir().join(dir)).expect("vendored spec present") {
                let path = entry.expect("entry").path();
                let text = std::fs::read_to_string(&path).expect("spec file");
                let mut value: Value = serde_yaml::from_str(&text).expect("spec YAML");
                rewrite(&mut value, &path);
                defs.insert(key_of(&path), value);
            }
        }
        Self { defs }
    }

    fn check(&self, pointer: &str, instance: &Value) {
        let schema = json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": Value::Object(self.defs.clone()), "$ref": pointer});
        let validator = jsonschema::validator_for(&schema).expect("schema compiles");
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{instance} does not match {pointer}: {errors:#?}"
        );
    }

    /// Validates a response body against `components.responses.<response>` of a namespace file.
    pub fn response(&self, namespace: &str, response: &str, instance: &Value) {
        let pointer = format!(
            "#/$defs/namespaces:{namespace}.yaml/components/responses/{}/content/application~1json/schema",
            response.replace('~', "~0").replace('/', "~1")
        );
        self.check(&pointer, instance);
    }

    /// Validates an error body against `ErrorResponseBase`.
    pub fn error(&self, instance: &Value) {
        self.check(
            "#/$defs/schemas:_common.yaml/components/schemas/ErrorResponseBase",
            instance,
        );
    }
}
