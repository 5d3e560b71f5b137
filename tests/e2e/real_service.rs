//! End to end: the real binary gets through what a first run on a real account meets and a kind
//! stand-in would not (REAL-AWS.md): IAM propagation on the repository's side, answers lost after
//! the service did the work, older engines, a fresh endpoint not yet in DNS.

use crate::common;

use common::{World, index, source_domain, user_indices};
use snapferry_sandbox::{FaultKind, FaultRule, LoggedRequest, SandboxConfig, SeedDomain};

const PLAN: &str = r#"
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
restore:
  on_conflict: replace
"#;

fn requests(world: &World, operation: &str) -> Vec<LoggedRequest> {
    world
        .sandbox()
        .request_log()
        .into_iter()
        .filter(|r| r.operation == operation)
        .collect()
}

/// OpenSearch verifies a repository by assuming its role; while IAM has not propagated the role
/// (here: its trust policy, broken by hand and then repaired by the run) the answer is a 500
/// `repository_verification_exception` whose STS cause is only in `caused_by`, and the repository
/// stays registered. The run must wait it out: the target's repository (deleted by hand, so
/// registered again) is put until it verifies, not left registered and unverified.
#[test]
fn the_repository_waits_for_the_role_to_propagate() {
    let mut config = SandboxConfig {
        domains: vec![source_domain("shop-prod", vec![index("orders", 300)])],
        ..Default::default()
    };
    config.latencies.iam_propagation_secs = 2000.0;
    let world = World::start_with(config);
    world.plan("snapferry.yaml", PLAN);
    world.run_ok(&["apply", "--auto-approve"], 0);

    // Someone breaks the role's trust policy (long enough ago for the domains to see it) and
    // unregisters the target's repository.
    let iam = world.aws().iam;
    world.rt.block_on(async {
        iam.update_assume_role_policy()
            .role_name("shop-snapshot-role")
            .policy_document(
                serde_json::json!({"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Service": "ec2.amazonaws.com"},
                    "Action": "sts:AssumeRole"
                }]})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
    });
    world.sandbox().advance_clock(2001.0);
    let target = world.domain("shop-copy");
    world
        .rt
        .block_on(target.delete_repository("snapferry-shop"))
        .unwrap();

    world.sandbox().reset_log();
    let applied = world.run_ok(&["apply", "--auto-approve"], 0);
    assert!(applied.contains("role/shop-snapshot-role"), "{applied}");

    let puts: Vec<(Option<String>, u16)> = requests(&world, "PutRepository")
        .into_iter()
        .map(|r| (r.target, r.status))
        .collect();
    assert!(
        puts.len() >= 2
            && puts.first().map(|p| p.1) == Some(500)
            && puts.last().map(|p| p.1) == Some(200),
        "the target's repository was put until it verified: {puts:?}"
    );
    // Both repositories are registered once and verify now; nothing is left to do.
    for domain in ["shop-prod", "shop-copy"] {
        let client = world.domain(domain);
        assert!(
            world
                .rt
                .block_on(client.verify_repository("snapferry-shop"))
                .is_ok()
        );
    }
    let plan = world.run_ok(&["plan", "--detailed-exitcode"], 0);
    assert!(plan.contains("8 unchanged"), "{plan}");
    assert_eq!(
        user_indices(&world.counts("shop-copy")),
        vec![("orders".to_owned(), 300)]
    );
}
