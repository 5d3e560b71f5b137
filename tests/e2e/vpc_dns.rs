//! End to end: a VPC domain's endpoint name before DNS has it (issue #13). On AWS a new domain's
//! name does not resolve for a while after the domain turns active; a VPC domain is reached
//! through the plan's SOCKS proxy, which resolves the name and answers "host unreachable" on a
//! DNS miss. The run waits that out for a target it created itself, and stops at once, naming
//! the endpoint and the proxy, for a domain it did not create.
//!
//! The sandbox's DNS window is far longer than either test runs (a million simulated seconds,
//! about 17 real minutes): it closes only when the test moves the sandbox's clock, after the proxy
//! has refused the name, so what is asserted is the order of the proxy's answers, never how long
//! anything took.

use crate::common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_opensearch::types::VpcOptions;
use common::{World, index, source_domain, user_indices};
use snapferry_sandbox::SandboxConfig;
use snapferry_tests::socks::{SocksServer, reply};

/// How long a fresh domain's name answers NXDOMAIN, in simulated seconds.
const DNS_SECS: f64 = 1_000_000.0;

const TARGET_HOST: &str = "vpc-orders-copy.sandbox.internal";

/// A seeded VPC source (long since in DNS) and a sandbox whose new domains stay out of DNS until
/// the test moves the clock; a SOCKS proxy resolving through the sandbox's DNS, as a bastion's
/// resolver inside the VPC does.
fn world() -> (World, SocksServer) {
    let mut source = source_domain("orders-prod", vec![index("orders", 400)]);
    source.vpc = true;
    let mut config = SandboxConfig {
        domains: vec![source],
        ..SandboxConfig::default()
    };
    config.latencies.dns_propagation_secs = DNS_SECS;
    let world = World::start_with(config);
    let socks = SocksServer::start(world.sandbox().resolver());
    world.plan(
        "snapferry.yaml",
        &format!(
            r#"
version: 1
name: orders-vpc
region: us-east-1
bucket:
  name: orders-snapshots
  create: true
source:
  domain: orders-prod
  proxy: {proxy}
target:
  domain: orders-copy
  proxy: {proxy}
"#,
            proxy = socks.url()
        ),
    );
    (world, socks)
}

/// The proxy's answers to `CONNECT`s for the target's name, in order.
fn target_replies(socks: &SocksServer) -> Vec<u8> {
    socks
        .replies()
        .into_iter()
        .filter(|(to, _)| to.starts_with(&format!("{TARGET_HOST}:")))
        .map(|(_, code)| code)
        .collect()
}

/// Starts `snapferry` with its output in files (a pipe nobody reads could fill up and stall it).
fn spawn(world: &World, args: &[&str]) -> Child {
    let out = std::fs::File::create(world.dir.path().join("run.out")).unwrap();
    let err = std::fs::File::create(world.dir.path().join("run.err")).unwrap();
    world
        .command(args)
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap()
}

fn run_output(world: &World) -> String {
    let read = |f: &str| std::fs::read_to_string(world.dir.path().join(f)).unwrap_or_default();
    format!("{}{}", read("run.out"), read("run.err"))
}

/// The target is a VPC domain this run creates. When it turns active its name is not in DNS
/// yet: the proxy refuses it, the run retries (the endpoint is fresh), and once the record is
/// there (the test moves the clock only after seeing a refusal) the copy completes.
#[test]
fn a_vpc_target_this_run_created_is_waited_for_until_its_name_resolves() {
    let (world, socks) = world();
    let mut child = spawn(&world, &["apply", "--auto-approve"]);

    // Hold the window open until the run has met it, however slow the machine is.
    let waiting_since = Instant::now();
    while !target_replies(&socks).contains(&reply::HOST_UNREACHABLE) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "apply ended ({status}) before the proxy refused {TARGET_HOST}; replies {:?}\n{}",
                socks.replies(),
                run_output(&world)
            );
        }
        if waiting_since.elapsed() > Duration::from_secs(600) {
            let _ = child.kill();
            panic!("apply hung:\n{}", run_output(&world));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The record propagates.
    world.sandbox().advance_clock(DNS_SECS);
    let status = child.wait().unwrap();
    let text = common::flat(&run_output(&world));
    assert!(status.success(), "{text}");

    let replies = target_replies(&socks);
    let refused = replies
        .iter()
        .take_while(|c| **c == reply::HOST_UNREACHABLE)
        .count();
    assert!(
        refused >= 1
            && replies.len() > refused
            && replies[refused..].iter().all(|c| *c == reply::SUCCEEDED),
        "the target's name was refused first, then relayed, never refused again: {replies:?}"
    );
    assert!(
        text.contains("retrying in")
            && text.contains(&format!("to {TARGET_HOST}:"))
            && text.contains("answered host unreachable"),
        "the refusal was retried as DNS catching up: {text}"
    );
    assert_eq!(
        user_indices(&world.counts("orders-copy")),
        vec![("orders".to_owned(), 400)]
    );
    // Nothing is left to do: the run finished every step.
    world.run_ok(&["plan", "--detailed-exitcode"], 0);
}

/// The same unresolved name for a domain the run did not create (someone made the VPC target
/// earlier; its record is not in DNS yet, or the proxy sits where it never will be): nothing
/// says the name is new, so it is a wrong endpoint or a proxy outside the VPC, and the run
/// stops at once with the endpoint and the proxy named, without retrying.
#[test]
fn an_unresolved_vpc_name_of_a_domain_the_run_did_not_create_fails_at_once() {
    let (world, socks) = world();
    let opensearch = world.aws().opensearch;
    world.rt.block_on(async {
        opensearch
            .create_domain()
            .domain_name("orders-copy")
            .engine_version("OpenSearch_2.11")
            .vpc_options(VpcOptions::builder().subnet_ids("subnet-0aaa").build())
            .send()
            .await
            .unwrap();
    });
    // Active, with its endpoint reported; its name is still out of DNS.
    world
        .sandbox()
        .advance_clock(SandboxConfig::default().latencies.domain_creation_secs + 1.0);
    let endpoint = world
        .sandbox()
        .domain_endpoint("orders-copy")
        .expect("the domain reports its endpoint");
    assert!(
        endpoint.starts_with(&format!("{TARGET_HOST}:")),
        "{endpoint}"
    );
    assert_eq!(world.sandbox().resolve(TARGET_HOST), None);

    world.sandbox().reset_log();
    let out = world.run(&["apply", "--auto-approve"]);
    let text = common::flat(&common::output_text(&out));
    assert_eq!(out.status.code(), Some(1), "{text}");
    let expected = format!(
        "could not read the live state; nothing was changed `-> could not read \
         repository/orders-copy:snapferry-orders-vpc: repository/orders-copy:snapferry-orders-vpc: \
         repository snapferry-orders-vpc on domain orders-copy: domain request failed: domain \
         orders-copy: GET /_snapshot/snapferry-orders-vpc to {endpoint} failed before a \
         response (Connect); the proxy {proxy} answered host unreachable: it cannot resolve or \
         reach that name; check the domain's endpoint, and that the proxy runs inside the \
         domain's VPC and uses its DNS: error sending request: client error (Connect): error \
         connecting to socks proxy: SOCKS error: host unreachable",
        proxy = socks.url()
    );
    // miette wraps long lines, at hyphens too: compare without any whitespace.
    let squash = |t: &str| t.split_whitespace().collect::<String>();
    assert!(
        squash(&text).contains(&squash(&expected)),
        "missing {expected:?} in:\n{text}"
    );
    assert!(!text.contains("retrying"), "{text}");
    let replies = target_replies(&socks);
    assert!(
        !replies.is_empty() && replies.iter().all(|c| *c == reply::HOST_UNREACHABLE),
        "{replies:?}"
    );
    assert_eq!(world.mutating_calls(), vec![], "nothing was changed");
}
