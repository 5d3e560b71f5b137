//! VPC domains: described as AWS describes them (no `Endpoint`, an `Endpoints["vpc"]` name that
//! resolves nowhere) and reached only through a real SOCKS5 proxy that maps the name, as a bastion's
//! `ssh -D` proxy does for a domain inside a VPC.

use crate::common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sdk_opensearch::types::{ClusterConfig, OpenSearchPartitionInstanceType, VpcOptions};
use common::*;
use serde_json::{Value, json};
use snapferry_sandbox::{SandboxConfig, SandboxHandle, SeedDomain, SeedIndex};
use snapferry_tests::socks::SocksServer;

const DOMAIN: &str = "private-logs";

/// A sandbox whose domains are ready as soon as they are created, with one seeded VPC domain.
fn vpc_config() -> SandboxConfig {
    let mut config = fast_config();
    config.latencies.domain_creation_secs = 0.0;
    config.domains = vec![SeedDomain {
        name: DOMAIN.into(),
        engine_version: "OpenSearch_2.11".into(),
        ready: true,
        kibana: false,
        vpc: true,
        indices: vec![SeedIndex {
            name: "events".into(),
            documents: vec![
                json!({"msg": "a"}),
                json!({"msg": "b"}),
                json!({"msg": "c"}),
            ],
            generate: 0,
            settings: None,
            mappings: None,
        }],
    }];
    config
}

/// The proxy side's DNS: every `*.sandbox.internal` name is the sandbox host.
fn proxy_dns(name: &str) -> Option<IpAddr> {
    name.ends_with(".sandbox.internal")
        .then_some(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// The client side's DNS: like the world outside the VPC, it knows no such name. Standing in for
/// the system resolver keeps the test off the network.
struct NoDns;

impl reqwest::dns::Resolve for NoDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_owned();
        Box::pin(async move { Err(format!("{name}: no DNS record (outside the VPC)").into()) })
    }
}

/// An HTTPS client trusting the sandbox CA, resolving nothing itself, optionally via a proxy.
fn client(h: &SandboxHandle, proxy: Option<&SocksServer>) -> reqwest::Client {
    let pem = std::fs::read(h.ca_bundle_path()).expect("CA bundle readable");
    let ca = reqwest::Certificate::from_pem(&pem).expect("CA bundle is PEM");
    let builder = reqwest::Client::builder()
        .add_root_certificate(ca)
        .dns_resolver(Arc::new(NoDns));
    let builder = match proxy {
        Some(socks) => builder.proxy(reqwest::Proxy::all(socks.url()).expect("proxy URL")),
        None => builder.no_proxy(),
    };
    builder.build().expect("client")
}

/// A SigV4 (`es`) GET, signed for the URL's host, port included, as the Host header carries it.
async fn signed_get(
    h: &SandboxHandle,
    http: &reqwest::Client,
    url: &str,
) -> Result<reqwest::Response, reqwest::Error> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let env: BTreeMap<String, String> = h.env().into_iter().collect();
    let creds = Credentials::new(
        &env["AWS_ACCESS_KEY_ID"],
        &env["AWS_SECRET_ACCESS_KEY"],
        env.get("AWS_SESSION_TOKEN").cloned(),
        None,
        "test",
    );
    let identity = creds.into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("es")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("params")
        .into();
    let signable = SignableRequest::new("GET", url, std::iter::empty(), SignableBody::Bytes(&[]))
        .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let mut req = http::Request::builder()
        .method("GET")
        .uri(url)
        .body(Vec::new())
        .expect("request");
    instructions.apply_to_request_http1x(&mut req);
    http.execute(reqwest::Request::try_from(req).expect("reqwest request"))
        .await
}

#[tokio::test]
async fn a_vpc_domain_has_only_a_vpc_endpoint_and_answers_only_through_the_proxy() {
    let h = start(vpc_config()).await;
    let os = opensearch(&h).await;
    let status = os
        .describe_domain()
        .domain_name(DOMAIN)
        .send()
        .await
        .expect("DescribeDomain")
        .domain_status
        .expect("status");
    assert_eq!(
        status.endpoint(),
        None,
        "a VPC domain has no public endpoint"
    );
    let endpoint = status
        .endpoints()
        .and_then(|e| e.get("vpc"))
        .cloned()
        .expect("Endpoints[\"vpc\"]");
    let (host, port) = endpoint.rsplit_once(':').expect("host:port");
    assert_eq!(host, format!("vpc-{DOMAIN}.sandbox.internal"));
    port.parse::<u16>().expect("a port");
    assert_eq!(
        h.domain_endpoint(DOMAIN).as_deref(),
        Some(endpoint.as_str())
    );
    let vpc = status.vpc_options().expect("VPCOptions");
    assert!(vpc.vpc_id().is_some_and(|id| id.starts_with("vpc-")));
    assert_eq!(vpc.subnet_ids().len(), 1);
    assert_eq!(vpc.availability_zones(), ["us-east-1a"]);
    assert!(vpc.security_group_ids()[0].starts_with("sg-"));

    let listed = os
        .describe_domains()
        .domain_names(DOMAIN)
        .send()
        .await
        .expect("DescribeDomains")
        .domain_status_list;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].endpoint(), None);
    assert_eq!(
        listed[0].endpoints().and_then(|e| e.get("vpc")),
        Some(&endpoint)
    );

    let socks = SocksServer::start(proxy_dns);
    let url = format!("https://{endpoint}/_cat/indices?format=json");
    let resp = signed_get(&h, &client(&h, Some(&socks)), &url)
        .await
        .expect("the domain answers through the proxy");
    assert_eq!(resp.status(), 200, "signed for the VPC host name, accepted");
    let rows: Value = resp.json().await.expect("JSON");
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["index"], "events");
    assert_eq!(rows[0]["docs.count"], "3");
    assert_eq!(
        socks.connections(),
        std::slice::from_ref(&endpoint),
        "the client handed the unresolved name to the proxy, and only the proxy resolved it"
    );

    let direct = signed_get(&h, &client(&h, None), &url).await;
    let err = direct.expect_err("without the proxy the name resolves nowhere");
    assert!(err.is_connect(), "{err:?}");
    assert!(
        format!("{err:?}").contains("no DNS record"),
        "fails at name resolution: {err:?}"
    );
    assert_eq!(
        socks.connections().len(),
        1,
        "the direct try bypassed the proxy"
    );
}

#[tokio::test]
async fn a_domain_created_with_vpc_options_is_a_vpc_domain() {
    let h = start(vpc_config()).await;
    let os = opensearch(&h).await;
    let created = os
        .create_domain()
        .domain_name("made-private")
        .engine_version("OpenSearch_2.11")
        // Two subnets take a domain spread over two zones (AWS wants one subnet per zone).
        .cluster_config(
            ClusterConfig::builder()
                .instance_type(OpenSearchPartitionInstanceType::R6gLargeSearch)
                .instance_count(2)
                .zone_awareness_enabled(true)
                .build(),
        )
        .vpc_options(
            VpcOptions::builder()
                .subnet_ids("subnet-0aaa")
                .subnet_ids("subnet-0bbb")
                .security_group_ids("sg-0ccc")
                .build(),
        )
        .send()
        .await
        .expect("CreateDomain")
        .domain_status
        .expect("status");
    assert_eq!(created.endpoint(), None);
    let vpc = created.vpc_options().expect("VPCOptions");
    assert_eq!(vpc.subnet_ids(), ["subnet-0aaa", "subnet-0bbb"]);
    assert_eq!(vpc.security_group_ids(), ["sg-0ccc"]);
    assert_eq!(vpc.availability_zones(), ["us-east-1a", "us-east-1b"]);

    let endpoint = created
        .endpoints()
        .and_then(|e| e.get("vpc"))
        .cloned()
        .expect("ready at once, with a VPC endpoint");
    assert!(endpoint.starts_with("vpc-made-private.sandbox.internal:"));

    let config = os
        .describe_domain_config()
        .domain_name("made-private")
        .send()
        .await
        .expect("DescribeDomainConfig")
        .domain_config
        .expect("config");
    let options = config
        .vpc_options()
        .and_then(|v| v.options())
        .expect("VPCOptions in the config");
    assert_eq!(options.vpc_id(), vpc.vpc_id());

    let socks = SocksServer::start(proxy_dns);
    let resp = signed_get(
        &h,
        &client(&h, Some(&socks)),
        &format!("https://{endpoint}/"),
    )
    .await
    .expect("answers through the proxy");
    assert_eq!(resp.status(), 200);
    let info: Value = resp.json().await.expect("JSON");
    assert_eq!(info["version"]["distribution"], "opensearch", "{info}");
    assert_eq!(socks.connections(), [endpoint]);
}

#[tokio::test]
async fn a_public_domain_cannot_be_moved_into_a_vpc() {
    let h = start(vpc_config()).await;
    let os = opensearch(&h).await;
    let public = os
        .create_domain()
        .domain_name("public-one")
        .engine_version("OpenSearch_2.11")
        .send()
        .await
        .expect("CreateDomain")
        .domain_status
        .expect("status");
    assert!(
        public
            .endpoint()
            .is_some_and(|e| e.starts_with("127.0.0.1:"))
    );
    assert!(public.endpoints().is_none());

    let err = os
        .update_domain_config()
        .domain_name("public-one")
        .vpc_options(VpcOptions::builder().subnet_ids("subnet-0aaa").build())
        .send()
        .await
        .expect_err("public to VPC is refused")
        .into_service_error();
    assert!(err.is_validation_exception(), "{err:?}");

    let after = os
        .describe_domain()
        .domain_name("public-one")
        .send()
        .await
        .expect("DescribeDomain")
        .domain_status
        .expect("status");
    assert!(after.vpc_options().is_none());
    assert_eq!(after.endpoint(), public.endpoint());
}

/// A new domain's endpoint name does not resolve for a while after the domain reports it (its
/// DNS record is fresh and negatively cached): the sandbox's resolver answers NXDOMAIN for
/// `dns_propagation_secs`, and a proxy resolving through it refuses the connection exactly as a
/// proxy does on a DNS miss. Time moves only when the test advances it.
#[tokio::test]
async fn a_fresh_vpc_endpoint_does_not_resolve_at_first() {
    let mut config = SandboxConfig::from_yaml_str(
        "time_scale: 1.0\ndomains: [{name: old-private, vpc: true, kibana: false}]\n",
    )
    .expect("config");
    config.latencies.domain_creation_secs = 600.0;
    config.latencies.dns_propagation_secs = 60.0;
    let h = Arc::new(start(config).await);
    let localhost = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(
        h.resolve("vpc-old-private.sandbox.internal"),
        localhost,
        "a seeded domain exists long since: its name resolves"
    );
    assert_eq!(h.resolve("vpc-nobody.sandbox.internal"), None);

    let os = opensearch(&h).await;
    os.create_domain()
        .domain_name("new-private")
        .engine_version("OpenSearch_2.11")
        .vpc_options(VpcOptions::builder().subnet_ids("subnet-0aaa").build())
        .send()
        .await
        .expect("CreateDomain");
    let host = "vpc-new-private.sandbox.internal";
    assert_eq!(h.resolve(host), None, "no endpoint yet");
    h.advance_clock(600.0);
    let endpoint = os
        .describe_domain()
        .domain_name("new-private")
        .send()
        .await
        .expect("DescribeDomain")
        .domain_status
        .and_then(|s| s.endpoints().and_then(|e| e.get("vpc")).cloned())
        .expect("the domain reports its endpoint");
    assert!(endpoint.starts_with(&format!("{host}:")), "{endpoint}");
    assert_eq!(h.resolve(host), None, "reported, but NXDOMAIN still");
    let over_http = |name: &str| {
        let url = format!("{}/_sandbox/resolve?name={name}", h.endpoint_url());
        async move {
            let resp = reqwest::get(url).await.expect("the sandbox answers");
            (
                resp.status().as_u16(),
                resp.json::<Value>().await.expect("JSON"),
            )
        }
    };
    assert_eq!(
        over_http(host).await,
        (404, json!({"name": host, "error": "NXDOMAIN"}))
    );

    let resolver = h.clone();
    let socks = SocksServer::start(move |name| resolver.resolve(name));
    let url = format!("https://{endpoint}/");
    let err = signed_get(&h, &client(&h, Some(&socks)), &url)
        .await
        .expect_err("the proxy cannot resolve the name yet");
    assert!(err.is_connect(), "{err:?}");
    assert!(
        format!("{err:?}").to_lowercase().contains("unreachable"),
        "the proxy's answer to a DNS miss: {err:?}"
    );

    h.advance_clock(60.0);
    assert_eq!(h.resolve(host), localhost);
    assert_eq!(
        over_http(host).await,
        (200, json!({"name": host, "address": "127.0.0.1"}))
    );
    let resp = signed_get(&h, &client(&h, Some(&socks)), &url)
        .await
        .expect("resolves now");
    assert_eq!(resp.status(), 200);
    assert_eq!(socks.connections(), [endpoint.clone(), endpoint]);
    drop(socks);
    if let Ok(h) = Arc::try_unwrap(h) {
        h.shutdown().await;
    }
}
