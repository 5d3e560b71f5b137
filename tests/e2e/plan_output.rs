//! Golden files of the human plan output for the example plans, planned against a sandbox that
//! holds their source domains: what a reviewer reads on a pull request is pinned here, so a
//! change to it is a reviewed change too. Time is fixed with `--now`.

use crate::common;

/// Plans `plans/<example>.yaml` against sandbox domains holding the given indices.
fn plan_of(example: &str, domains: &[(&str, &[&str])]) -> String {
    plan_with_buckets(example, domains, &[])
}

/// [`plan_of`] with buckets that already exist.
fn plan_with_buckets(example: &str, domains: &[(&str, &[&str])], buckets: &[&str]) -> String {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../../plans/{example}.yaml")),
    )
    .unwrap();
    let world = common::example_world(&text, domains, buckets);
    world.plan("snapferry.yaml", &text);
    let out = world.run(&["plan", "--now", "2026-11-25T06:00:00Z"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(world.mutating_calls().is_empty(), "plan changed something");
    stdout
}

#[test]
fn the_demo_plan() {
    insta::assert_snapshot!(plan_of(
        "demo",
        &[("demo-source", &["products", "orders-2026-11"])]
    ));
}

#[test]
fn the_fleet_plan() {
    insta::assert_snapshot!(plan_of(
        "fleet",
        &[
            ("logs-prod", &["logs-2025-12", "logs-2026-11"]),
            ("metrics-prod", &["metrics-2026-11", "metrics-tmp"]),
            ("traces-prod", &["traces-2026-11"]),
        ]
    ));
}

#[test]
fn the_staging_refresh_plan_against_an_existing_staging_domain() {
    insta::assert_snapshot!(plan_with_buckets(
        "staging-refresh",
        &[
            ("shop-prod", &["products", "customers-eu", "orders"][..]),
            ("shop-staging", &["products", "customers-eu"][..]),
        ],
        &["acme-staging-refresh"],
    ));
}

#[test]
fn the_cross_region_plan() {
    insta::assert_snapshot!(plan_of(
        "cross-region",
        &[("catalog", &["items", "prices"])]
    ));
}

#[test]
fn the_cross_account_plan() {
    let world = crate::accounts::cross_account_example();
    world.plan("snapferry.yaml", &crate::accounts::example("cross-account"));
    let out = world.run(&["plan", "--now", "2026-11-25T06:00:00Z"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(world.mutating_calls().is_empty(), "plan changed something");
    insta::assert_snapshot!(stdout);
}

#[test]
fn the_vpc_socks_plan() {
    // A VPC source, reachable only through the plan's SOCKS proxy, which here runs on an
    // ephemeral port instead of `ssh -D 1080`: the plan is pointed at it. The plan output does
    // not show the proxy today; should it ever, the varying port is scrubbed to `<port>`.
    let mut source = common::source_domain(
        "orders-prod",
        vec![
            common::index("orders-2026-10", 50),
            common::index("orders-2026-11", 50),
            common::index("orders-tmp-1", 50),
        ],
    );
    source.vpc = true;
    let world = common::World::start_with(snapferry_sandbox::SandboxConfig {
        region: "eu-west-1".into(),
        domains: vec![source],
        buckets: vec!["acme-orders-snapshots".into()],
        ..snapferry_sandbox::SandboxConfig::default()
    });
    let socks = snapferry_tests::socks::SocksServer::start(|host| {
        host.ends_with(".sandbox.internal")
            .then_some(std::net::IpAddr::from([127, 0, 0, 1]))
    });
    let text =
        crate::accounts::example("vpc-socks").replace("socks5h://localhost:1080", &socks.url());
    assert!(text.contains(&socks.url()), "the example names its proxy");
    world.plan("snapferry.yaml", &text);
    let out = world.run(&["plan", "--now", "2026-11-25T06:00:00Z"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(world.mutating_calls().is_empty(), "plan changed something");
    // The plan read the source through the proxy (it has no other way to it).
    assert!(
        socks
            .connections()
            .iter()
            .any(|c| c.starts_with("vpc-orders-prod.sandbox.internal:")),
        "{:?}",
        socks.connections()
    );
    let port = socks.url().rsplit(':').next().unwrap().to_owned();
    insta::assert_snapshot!(stdout.replace(&format!(":{port}"), ":<port>"));
}
