//! End to end: `snapferry destroy` after a real apply removes what the replication created —
//! repository registrations on both domains, the snapshot, snapferry's bucket statements, the
//! managed role — and nothing else: the source domain keeps its documents, a foreign bucket
//! statement stays, the target domain stays unless `--include-target-domain`.

use crate::common;

use common::{World, index, source_domain};
use serde_json::json;

const PLAN: &str = r#"
version: 1
name: shop
region: us-east-1
bucket:
  name: shared-snapshots
source:
  domain: shop-prod
target:
  domain: shop-copy
restore:
  on_conflict: replace
"#;

const STATE: &str = ".snapferry/shop.state.json";

/// A source domain, and a shared bucket whose policy already holds someone else's statement.
fn applied() -> (World, serde_json::Value) {
    let world = World::start(
        vec![source_domain(
            "shop-prod",
            vec![index("products", 400), index("orders", 600)],
        )],
        vec!["shared-snapshots".to_owned()],
    );
    let foreign = json!({
        "Sid": "AuditorsRead",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:role/auditor"},
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::shared-snapshots/audit/*"
    });
    world.existing_role("auditor");
    let s3 = world.s3();
    world.rt.block_on(async {
        s3.put_bucket_policy()
            .bucket("shared-snapshots")
            .policy(json!({"Version": "2012-10-17", "Statement": [foreign]}).to_string())
            .send()
            .await
            .unwrap();
    });
    world.plan("snapferry.yaml", PLAN);
    world.run_ok(&["apply", "--auto-approve"], 0);
    (world, foreign)
}

fn role_exists(world: &World, name: &str) -> bool {
    let iam = world.aws().iam;
    world.rt.block_on(async {
        match iam.get_role().role_name(name).send().await {
            Ok(_) => true,
            Err(e) => {
                assert!(
                    e.into_service_error().is_no_such_entity_exception(),
                    "GetRole failed otherwise"
                );
                false
            }
        }
    })
}

/// `Some(deleted)` for a domain the control plane knows, `None` for one it does not.
fn domain_deleted(world: &World, name: &str) -> Option<bool> {
    let opensearch = world.aws().opensearch;
    world.rt.block_on(async {
        opensearch
            .describe_domain()
            .domain_name(name)
            .send()
            .await
            .ok()
            .and_then(|out| out.domain_status().map(|s| s.deleted() == Some(true)))
    })
}

fn registered(world: &World, domain: &str) -> bool {
    let client = world.domain(domain);
    world.rt.block_on(async {
        client
            .get_repository("snapferry-shop")
            .await
            .unwrap()
            .is_some()
    })
}

#[test]
fn destroy_removes_only_what_the_replication_created() {
    let (world, foreign) = applied();
    let source_before = world.counts("shop-prod");
    let target_before = world.counts("shop-copy");
    let snapshot = world.state(STATE)["pinned"]["snapshot/shop:name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        world
            .bucket_keys("shared-snapshots")
            .iter()
            .any(|k| k.contains(&snapshot)),
        "the snapshot is in the bucket before destroy"
    );
    assert!(role_exists(&world, "shop-snapshot-role"));
    assert!(registered(&world, "shop-prod") && registered(&world, "shop-copy"));

    // Without a terminal and without --auto-approve: refused, nothing changed.
    world.sandbox().reset_log();
    let refused = world.run_ok(&["destroy"], 1);
    assert!(
        refused
            .contains("refusing to destroy without confirmation: standard input is not a terminal"),
        "{refused}"
    );
    assert!(
        refused.contains("snapferry destroy --auto-approve"),
        "{refused}"
    );
    assert_eq!(world.mutating_calls(), vec![]);

    let out = world.run_ok(&["destroy", "--auto-approve"], 0);
    let plan: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("  - ") || l.starts_with("  = "))
        .collect();
    assert_eq!(
        plan,
        [
            "  - repository/shop-copy:snapferry-shop (destroy)",
            "  - snapshot/shop (destroy)",
            "  - repository/shop-prod:snapferry-shop (destroy)",
            "  - bucket_policy/shared-snapshots (destroy)",
            "  = domain/shop-copy (kept)",
            "  - role/shop-snapshot-role (destroy)",
            "  = source domain shop-prod is never touched",
        ],
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "snapshot {snapshot} in repository snapferry-shop on domain shop-prod"
        )),
        "{out}"
    );
    assert!(out.contains("Destroy: 5 to destroy, 1 kept."), "{out}");
    assert!(
        out.contains("Destroy complete: 5 destroyed, 1 kept."),
        "{out}"
    );

    // The source and its documents, untouched; the target kept with what was restored.
    assert_eq!(world.counts("shop-prod"), source_before);
    assert_eq!(domain_deleted(&world, "shop-prod"), Some(false));
    assert_eq!(domain_deleted(&world, "shop-copy"), Some(false));
    assert_eq!(world.counts("shop-copy"), target_before);
    // Only the foreign statement is left, exactly as it was.
    assert_eq!(
        world.bucket_policy("shared-snapshots").unwrap()["Statement"],
        json!([foreign])
    );
    assert!(!role_exists(&world, "shop-snapshot-role"));
    assert!(
        !registered(&world, "shop-prod"),
        "source repository still registered"
    );
    assert!(
        !registered(&world, "shop-copy"),
        "target repository still registered"
    );
    let left: Vec<String> = world
        .bucket_keys("shared-snapshots")
        .into_iter()
        .filter(|k| k.contains(&snapshot))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "the snapshot's files are gone");
    // The state keeps only the target domain, for a later --include-target-domain.
    let state = world.state(STATE);
    let nodes: Vec<&String> = state["nodes"].as_object().unwrap().keys().collect();
    assert_eq!(nodes, ["domain/shop-copy"]);
    assert_eq!(state["pinned"], json!({}));

    // Again: nothing to do, no change, exit 0 without asking.
    world.sandbox().reset_log();
    let again = world.run_ok(&["destroy"], 0);
    assert!(
        again.contains("Nothing to destroy: everything snapferry created for this plan is gone."),
        "{again}"
    );
    assert_eq!(world.mutating_calls(), vec![]);

    // With --include-target-domain the target goes too (AWS deletes it in the background).
    let out = world.run_ok(&["destroy", "--include-target-domain", "--auto-approve"], 0);
    assert!(out.contains("  - domain/shop-copy (destroy)"), "{out}");
    assert!(
        out.contains("Destroy complete: 1 destroyed, 0 kept."),
        "{out}"
    );
    assert_eq!(domain_deleted(&world, "shop-copy"), Some(true));
    assert_eq!(domain_deleted(&world, "shop-prod"), Some(false));
    assert_eq!(world.counts("shop-prod"), source_before);

    world.sandbox().reset_log();
    let again = world.run_ok(&["destroy", "--include-target-domain"], 0);
    assert!(again.contains("Nothing to destroy"), "{again}");
    assert_eq!(world.mutating_calls(), vec![]);
}

#[test]
fn destroy_with_no_state_has_nothing_to_do() {
    let world = World::start(
        vec![source_domain("shop-prod", vec![index("orders", 10)])],
        vec!["shared-snapshots".to_owned()],
    );
    world.plan("snapferry.yaml", PLAN);
    let out = world.run_ok(&["destroy", "--include-target-domain"], 0);
    assert!(out.contains("Nothing to destroy: no state at"), "{out}");
    assert_eq!(world.mutating_calls(), vec![]);
}

#[test]
fn keep_snapshot_leaves_the_snapshot_in_the_bucket() {
    let (world, _) = applied();
    let snapshot = world.state(STATE)["pinned"]["snapshot/shop:name"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = world.run_ok(&["destroy", "--keep-snapshot", "--auto-approve"], 0);
    assert!(out.contains("  = snapshot/shop (kept)"), "{out}");
    assert!(
        out.contains(&format!(
            "--keep-snapshot: snapshot {snapshot} stays in bucket shared-snapshots"
        )),
        "{out}"
    );
    assert!(
        out.contains("Destroy complete: 4 destroyed, 2 kept."),
        "{out}"
    );
    assert!(
        world
            .bucket_keys("shared-snapshots")
            .iter()
            .any(|k| k.contains(&snapshot)),
        "the snapshot's files are still in the bucket"
    );
    assert!(!registered(&world, "shop-prod") && !registered(&world, "shop-copy"));
    assert!(!role_exists(&world, "shop-snapshot-role"));
}

#[test]
fn a_role_without_snapferrys_tags_is_not_deleted() {
    let (world, _) = applied();
    let iam = world.aws().iam;
    world.rt.block_on(async {
        iam.untag_role()
            .role_name("shop-snapshot-role")
            .tag_keys("managed-by")
            .send()
            .await
            .unwrap();
    });
    let out = world.run_ok(&["destroy", "--auto-approve"], 1);
    assert!(
        out.contains(
            "role/shop-snapshot-role: role shop-snapshot-role is not tagged managed-by: snapferry \
             and snapferry-plan: shop; snapferry did not create it and leaves it in place"
        ),
        "{out}"
    );
    assert!(
        out.contains("Destroy stopped: 4 destroyed, 1 failed."),
        "{out}"
    );
    assert!(role_exists(&world, "shop-snapshot-role"));
    // What was destroyed left the state; the role stays recorded, so destroy can be re-run.
    let state = world.state(STATE);
    let nodes: Vec<&String> = state["nodes"].as_object().unwrap().keys().collect();
    assert!(
        nodes.contains(&&"role/shop-snapshot-role".to_owned()),
        "{nodes:?}"
    );
    assert!(!nodes.contains(&&"snapshot/shop".to_owned()), "{nodes:?}");
    // The lock was released.
    assert!(!world.dir.path().join(format!("{STATE}.lock")).exists());
}
