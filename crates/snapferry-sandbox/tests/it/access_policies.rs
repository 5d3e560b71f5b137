//! The gateway in front of each domain: its resource-based access policy decides before OpenSearch
//! sees a request (principal, `es:ESHttp*` action, subresource, source IP), with AWS's 403 texts;
//! and CreateDomain/UpdateDomainConfig refuse an open policy on a public domain without
//! fine-grained access control.

use crate::common;

use aws_sdk_opensearch::error::ProvideErrorMetadata;
use aws_sdk_opensearch::types::VpcOptions;
use common::*;
use serde_json::{Value, json};
use snapferry_sandbox::{SandboxConfig, SandboxHandle};

const ACCOUNT: &str = "123456789012";
const SANDBOX_USER: &str = "arn:aws:iam::123456789012:user/sandbox";

/// Unsigned HTTPS requests to a domain endpoint (curl without `--aws-sigv4`).
pub struct Unsigned {
    http: reqwest::Client,
    base: String,
}

impl Unsigned {
    pub fn new(h: &SandboxHandle, endpoint: &str) -> Self {
        let pem = std::fs::read(h.ca_bundle_path()).expect("CA bundle");
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("PEM"))
            .build()
            .expect("client");
        Self {
            http,
            base: format!("https://{endpoint}"),
        }
    }

    /// Sends JSON (or nothing), with HTTP basic auth when `user` is given: (status, headers, body).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        user: Option<(&str, &str)>,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = self.http.request(
            method.parse().expect("method"),
            format!("{}{path}", self.base),
        );
        if let Some((u, p)) = user {
            req = req.basic_auth(u, Some(p));
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.expect("domain answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, headers, value)
    }
}

fn config(yaml: &str) -> SandboxConfig {
    let mut c = SandboxConfig::from_yaml_str(yaml).expect("config");
    c.time_scale = 0.00001;
    c
}

fn anonymous_refusal(action: &str) -> Value {
    json!({"Message": format!(
        "User: anonymous is not authorized to perform: {action} because no resource-based policy allows the {action} action"
    )})
}

#[tokio::test]
async fn seeded_domains_allow_their_account_and_refuse_anonymous_callers() {
    let h = start(config(
        "domains:\n  - name: orders\n    indices: [{name: movies, generate: 3}]\n",
    ))
    .await;
    let status = opensearch(&h)
        .await
        .describe_domain()
        .domain_name("orders")
        .send()
        .await
        .expect("DescribeDomain")
        .domain_status
        .expect("status");
    let policy: Value =
        serde_json::from_str(status.access_policies().expect("a policy")).expect("JSON");
    assert_eq!(
        policy["Statement"][0],
        json!({"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")}, "Action": "es:*",
               "Resource": format!("arn:aws:es:us-east-1:{ACCOUNT}:domain/orders/*")})
    );

    let endpoint = h.domain_endpoint("orders").expect("ready");
    let (status, body) = DomainClient::new(&h, &endpoint)
        .call("GET", "/movies/_count", None)
        .await;
    assert_eq!((status, body["count"].as_u64()), (200, Some(3)));

    h.reset_log();
    let anon = Unsigned::new(&h, &endpoint);
    let (status, _, body) = anon.send("GET", "/movies/_count", None, None).await;
    assert_eq!(status, 403);
    assert_eq!(body, anonymous_refusal("es:ESHttpGet"));
    let (status, _, body) = anon
        .send("POST", "/movies/_search", None, Some(json!({})))
        .await;
    assert_eq!((status, body), (403, anonymous_refusal("es:ESHttpPost")));
    let log = h.request_log();
    assert_eq!(
        log.iter()
            .map(|e| (e.operation.as_str(), e.status))
            .collect::<Vec<_>>(),
        vec![("Count", 403), ("Search", 403)]
    );
    h.shutdown().await;
}

#[tokio::test]
async fn source_ip_conditions_and_explicit_denies_decide_at_the_edge() {
    let h = start(config(&format!(
        r#"
domains:
  - name: local-only
    indices: [{{name: movies, generate: 2}}]
  - name: office-only
domain_security:
  local-only:
    access_policy:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Principal: {{AWS: "*"}}
          Action: ["es:ESHttpGet", "es:ESHttpHead"]
          Resource: "arn:aws:es:us-east-1:{ACCOUNT}:domain/local-only/*"
          Condition: {{IpAddress: {{"aws:SourceIp": ["127.0.0.1/32"]}}}}
        - Effect: Deny
          Principal: {{AWS: "{SANDBOX_USER}"}}
          Action: "es:ESHttpDelete"
          Resource: "arn:aws:es:us-east-1:{ACCOUNT}:domain/local-only/*"
  office-only:
    access_policy: '{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"es:*","Resource":"arn:aws:es:us-east-1:{ACCOUNT}:domain/office-only/*","Condition":{{"IpAddress":{{"aws:SourceIp":"192.0.2.0/24"}}}}}}]}}'
"#
    )))
    .await;
    let local = h.domain_endpoint("local-only").expect("ready");
    let anon = Unsigned::new(&h, &local);
    // From 127.0.0.1, without any signature: the IP condition lets GET in, nothing allows PUT.
    let (status, _, body) = anon.send("GET", "/movies/_count", None, None).await;
    assert_eq!((status, body["count"].as_u64()), (200, Some(2)));
    let (status, _, body) = anon.send("PUT", "/other", None, None).await;
    assert_eq!((status, body), (403, anonymous_refusal("es:ESHttpPut")));

    // The signer's identity policies allow it everything, but an explicit Deny wins.
    let signed = DomainClient::new(&h, &local);
    let (status, body) = signed.call("DELETE", "/movies", None).await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"Message": format!("User: {SANDBOX_USER} is not authorized to perform: es:ESHttpDelete with an explicit deny in a resource-based policy")})
    );
    let (status, _) = signed.call("PUT", "/other", None).await;
    assert_eq!(
        status, 200,
        "an action the policy does not name is up to the signer's identity policies"
    );

    let office = h.domain_endpoint("office-only").expect("ready");
    let (status, _, body) = Unsigned::new(&h, &office)
        .send("GET", "/", None, None)
        .await;
    assert_eq!((status, body), (403, anonymous_refusal("es:ESHttpGet")));
    h.shutdown().await;
}

#[tokio::test]
async fn an_unsigned_repository_registration_cannot_pass_the_snapshot_role() {
    let h = start(config(&format!(
        r#"
domains:
  - name: open
domain_security:
  open:
    access_policy: {{Version: "2012-10-17", Statement: [{{Effect: Allow, Principal: {{AWS: "*"}}, Action: "es:*", Resource: "arn:aws:es:us-east-1:{ACCOUNT}:domain/open/*", Condition: {{IpAddress: {{"aws:SourceIp": "127.0.0.0/8"}}}}}}]}}
"#
    )))
    .await;
    let endpoint = h.domain_endpoint("open").expect("ready");
    let role = format!("arn:aws:iam::{ACCOUNT}:role/snapshots");
    let (status, _, body) = Unsigned::new(&h, &endpoint)
        .send(
            "PUT",
            "/_snapshot/repo",
            None,
            Some(json!({"type": "s3", "settings": {"bucket": "b", "region": "us-east-1", "role_arn": role}})),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"Message": format!("User: anonymous is not authorized to perform: iam:PassRole on resource: {role}")})
    );
    let (status, body) = DomainClient::new(&h, &endpoint)
        .call("GET", "/_snapshot", None)
        .await;
    assert_eq!((status, body), (200, json!({})), "nothing was registered");
    h.shutdown().await;
}

fn open_policy(domain: &str) -> String {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "es:*",
        "Resource": format!("arn:aws:es:us-east-1:{ACCOUNT}:domain/{domain}/*")}]})
    .to_string()
}

#[tokio::test]
async fn an_open_policy_needs_fgac_or_a_vpc() {
    let mut c = fast_config();
    c.latencies.domain_creation_secs = 0.0;
    let h = start(c).await;
    let os = opensearch(&h).await;

    let err = os
        .create_domain()
        .domain_name("wide-open")
        .engine_version("OpenSearch_2.11")
        .access_policies(open_policy("wide-open"))
        .send()
        .await
        .expect_err("refused")
        .into_service_error();
    assert!(err.is_validation_exception(), "{err:?}");
    assert_eq!(
        err.message(),
        Some(
            "Enable fine-grained access control or apply a restrictive access policy to your domain"
        )
    );
    assert!(
        os.describe_domain()
            .domain_name("wide-open")
            .send()
            .await
            .is_err(),
        "nothing was created"
    );

    // Inside a VPC an open policy is accepted (the VPC and its security groups are the fence).
    os.create_domain()
        .domain_name("in-vpc")
        .engine_version("OpenSearch_2.11")
        .access_policies(open_policy("in-vpc"))
        .vpc_options(VpcOptions::builder().subnet_ids("subnet-0aaa").build())
        .send()
        .await
        .expect("a VPC domain may be open");

    // A public domain with a restrictive policy, later opened: refused, and left as it was.
    let account_only = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")}, "Action": "es:*",
        "Resource": format!("arn:aws:es:us-east-1:{ACCOUNT}:domain/public/*")}]})
    .to_string();
    os.create_domain()
        .domain_name("public")
        .engine_version("OpenSearch_2.11")
        .access_policies(&account_only)
        .send()
        .await
        .expect("a restrictive policy is fine");
    let err = os
        .update_domain_config()
        .domain_name("public")
        .access_policies(open_policy("public"))
        .send()
        .await
        .expect_err("refused")
        .into_service_error();
    assert!(err.is_validation_exception(), "{err:?}");
    assert_eq!(
        err.message(),
        Some("Apply a restrictive access policy to your domain")
    );
    let kept = os
        .describe_domain()
        .domain_name("public")
        .send()
        .await
        .expect("DescribeDomain")
        .domain_status
        .expect("status");
    assert_eq!(kept.access_policies(), Some(account_only.as_str()));

    let err = os
        .create_domain()
        .domain_name("garbled")
        .access_policies("{\"Version\": ")
        .send()
        .await
        .expect_err("refused")
        .into_service_error();
    assert_eq!(err.code(), Some("ValidationException"));
    assert_eq!(
        err.message(),
        Some("Error setting policy: [{\"Version\": ]")
    );
    h.shutdown().await;
}
