//! The replication with IAM and S3 served by moto (pinned, installed from PyPI by the test
//! support library) instead of the sandbox's own: the role, the bucket, its policy and the
//! snapshot files are checked by an implementation that shares nothing with ours, so the two
//! sides of the wire cannot agree on a mistake.

use crate::common;

use common::{World, index, source_domain};
use snapferry_sandbox::SandboxConfig;
use snapferry_tests::moto::MotoServer;

#[test]
fn a_domain_is_replicated_with_iam_and_s3_served_by_moto() {
    let moto = MotoServer::start();
    let mut config = SandboxConfig {
        domains: vec![source_domain(
            "shop-prod",
            vec![index("orders", 900), index("products", 300)],
        )],
        ..SandboxConfig::default()
    };
    config.external.iam_endpoint = Some(moto.endpoint_url());
    config.external.s3_endpoint = Some(moto.endpoint_url());
    let world = World::start_with(config);
    world.plan(
        "snapferry.yaml",
        r#"
version: 1
name: shop
region: us-east-1
bucket:
  name: shop-snapshots
  create: true
source:
  domain: shop-prod
target:
  domain: shop-copy
"#,
    );
    let run = |args: &[&str], code: i32| {
        let out = world
            .command(args)
            .env("AWS_ENDPOINT_URL_IAM", moto.endpoint_url())
            .env("AWS_ENDPOINT_URL_S3", moto.endpoint_url())
            .output()
            .unwrap();
        let text = common::output_text(&out);
        assert_eq!(out.status.code(), Some(code), "snapferry {args:?}:\n{text}");
        text
    };
    let applied = run(&["apply", "--auto-approve"], 0);
    assert!(applied.contains("Apply complete: 8 applied"), "{applied}");
    let target = common::user_indices(&world.counts("shop-copy"));
    assert_eq!(
        target,
        vec![("orders".to_owned(), 900), ("products".to_owned(), 300)]
    );
    // The sandbox served neither IAM nor S3: moto did.
    let log = world.sandbox().request_log();
    assert!(
        log.iter().all(|r| r.service != "iam" && r.service != "s3"),
        "{:?}",
        log.iter()
            .filter(|r| r.service == "iam" || r.service == "s3")
            .collect::<Vec<_>>()
    );
    // A second apply against moto finds everything in place.
    let again = run(&["apply", "--auto-approve"], 0);
    assert!(again.contains("No changes"), "{again}");
}
