//! End to end: the real `snapferry` binary replicates a seeded source domain into a new
//! target through the sandbox, and every claim is checked where it lands — documents counted
//! on the target, the state file read back, the sandbox's request log inspected.

use crate::common;

use common::{World, fault_once, flat, index, source_domain, user_indices};

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

fn shop() -> World {
    World::start(
        vec![source_domain(
            "shop-prod",
            vec![
                index("products", 1500),
                index("orders", 2500),
                index("customers", 700),
            ],
        )],
        vec![],
    )
}

#[test]
fn a_domain_is_replicated_and_a_second_apply_changes_nothing() {
    let world = shop();
    world.plan("snapferry.yaml", PLAN);

    let plan = world.run_ok(&["plan"], 0);
    for line in [
        "  + role/shop-snapshot-role (create)",
        "  + bucket_policy/shop-snapshots (create)",
        "  + repository/shop-prod:snapferry-shop (create)",
        "  + snapshot/shop (create)",
        "  + domain/shop-copy (create)",
        "  + repository/shop-copy:snapferry-shop (create)",
        "  + restore/shop (create)",
        "  + verify/shop (create)",
        "      snapshot: (known after apply)",
        "Plan: 8 to create, 0 to update, 0 to replace, 0 unchanged.",
    ] {
        assert!(plan.contains(line), "missing {line:?} in:\n{plan}");
    }
    assert!(
        world.mutating_calls().is_empty(),
        "plan changed something: {:?}",
        world.mutating_calls()
    );

    let applied = world.run_ok(&["apply", "--auto-approve"], 0);
    assert!(
        applied
            .contains("Apply complete: 8 applied, 0 unchanged, 0 stale, 0 failed, 0 not started."),
        "{applied}"
    );

    // The target holds the same documents per index, and no system index.
    let source = world.counts("shop-prod");
    let target = world.counts("shop-copy");
    assert_eq!(
        user_indices(&source),
        vec![
            ("customers".to_owned(), 700),
            ("orders".to_owned(), 2500),
            ("products".to_owned(), 1500)
        ]
    );
    assert_eq!(
        target,
        user_indices(&source),
        "the target has exactly the user indices"
    );

    // The state file records every step done, with the pinned snapshot name.
    let state = world.state(".snapferry/shop.state.json");
    let nodes = state["nodes"].as_object().unwrap();
    assert_eq!(nodes.len(), 8);
    for (id, node) in nodes {
        assert_eq!(node["status"], "done", "{id}: {node}");
    }
    let snapshot_name = state["pinned"]["snapshot/shop:name"].as_str().unwrap();
    assert!(snapshot_name.starts_with("shop-20"), "{snapshot_name}");
    assert_eq!(
        nodes["restore/shop"]["outputs"]["snapshot"]["known"],
        snapshot_name
    );

    // A second apply changes nothing and makes no mutating call.
    world.sandbox().reset_log();
    let again = world.run_ok(&["apply", "--auto-approve"], 0);
    assert!(
        again.contains("No changes: everything matches the plan and the state."),
        "{again}"
    );
    assert_eq!(
        world.mutating_calls(),
        vec![],
        "a second apply mutated something"
    );

    let plan = world.run_ok(&["plan", "--detailed-exitcode"], 0);
    assert!(
        plan.contains("Plan: 0 to create, 0 to update, 0 to replace, 8 unchanged."),
        "{plan}"
    );
    for id in [
        "role/shop-snapshot-role",
        "snapshot/shop",
        "restore/shop",
        "verify/shop",
    ] {
        assert!(
            plan.contains(&format!("  = {id}\n")),
            "{id} not unchanged:\n{plan}"
        );
    }
}

#[test]
fn apply_without_a_terminal_or_auto_approve_refuses_and_changes_nothing() {
    let world = shop();
    world.plan("snapferry.yaml", PLAN);
    let out = world.run_ok(&["apply"], 1);
    assert!(
        out.contains("refusing to apply without confirmation: standard input is not a terminal"),
        "{out}"
    );
    assert!(out.contains("snapferry apply --auto-approve"), "{out}");
    assert_eq!(world.mutating_calls(), vec![]);
    assert!(!world.dir.path().join(".snapferry/shop.state.json").exists());
}

#[test]
fn a_later_run_refreshes_the_target_with_what_the_source_gained() {
    let world = shop();
    world.plan("snapferry.yaml", PLAN);
    world.run_ok(
        &["apply", "--auto-approve", "--now", "2026-11-01T03:00:00Z"],
        0,
    );
    assert!(
        world
            .counts("shop-copy")
            .contains(&("orders".to_owned(), 2500))
    );

    // A week of orders later...
    world.add_documents("shop-prod", "orders", 100_000, 40);
    let plan = world.run_ok(
        &[
            "plan",
            "--detailed-exitcode",
            "--now",
            "2026-11-08T03:00:00Z",
        ],
        2,
    );
    for line in [
        "  + snapshot/shop (create)",
        "      name: \"shop-2026-11-08\"",
        "  ~ restore/shop (update)",
        "  ~ verify/shop (update)",
        "  = role/shop-snapshot-role",
        "  = domain/shop-copy",
        "  = bucket_policy/shop-snapshots",
        "  = repository/shop-prod:snapferry-shop",
        "  = repository/shop-copy:snapferry-shop",
    ] {
        assert!(plan.contains(line), "missing {line:?} in:\n{plan}");
    }

    world.sandbox().reset_log();
    let applied = world.run_ok(
        &["apply", "--auto-approve", "--now", "2026-11-08T03:00:00Z"],
        0,
    );
    // The snapshot and the restore, and the verification that runs again after it.
    assert!(
        applied.contains("Apply complete: 3 applied, 5 unchanged"),
        "{applied}"
    );
    assert!(
        world
            .counts("shop-copy")
            .contains(&("orders".to_owned(), 2540))
    );
    // Only the snapshot, the replaced indices and the restore changed anything.
    let mut operations: Vec<String> = world
        .mutating_calls()
        .into_iter()
        .map(|r| r.operation)
        .collect();
    operations.sort();
    operations.dedup();
    assert!(
        operations.iter().all(|op| [
            "CreateSnapshot",
            "DeleteIndex",
            "RestoreSnapshot",
            "PutObject"
        ]
        .contains(&op.as_str())),
        "{operations:?}"
    );
    let state = world.state(".snapferry/shop.state.json");
    assert_eq!(state["pinned"]["snapshot/shop:name"], "shop-2026-11-08");
}

#[test]
fn foreign_statements_in_the_bucket_policy_are_kept() {
    let world = World::start(
        vec![source_domain("shop-prod", vec![index("orders", 300)])],
        vec!["shared-snapshots".to_owned()],
    );
    let foreign = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AuditorsRead",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:role/auditor"},
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::shared-snapshots/audit/*"
        }]
    });
    world.existing_role("auditor");
    let s3 = world.s3();
    world.rt.block_on(async {
        s3.put_bucket_policy()
            .bucket("shared-snapshots")
            .policy(foreign.to_string())
            .send()
            .await
            .unwrap();
    });
    world.plan(
        "snapferry.yaml",
        &PLAN.replace(
            "  name: shop-snapshots\n  create: true\n",
            "  name: shared-snapshots\n",
        ),
    );
    let plan = world.run_ok(&["plan"], 0);
    assert!(
        plan.contains("  ~ bucket_policy/shared-snapshots (update)"),
        "{plan}"
    );
    world.run_ok(&["apply", "--auto-approve"], 0);

    let policy: serde_json::Value = world.rt.block_on(async {
        let text = s3
            .get_bucket_policy()
            .bucket("shared-snapshots")
            .send()
            .await
            .unwrap()
            .policy()
            .unwrap()
            .to_owned();
        serde_json::from_str(&text).unwrap()
    });
    let sids: Vec<&str> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Sid"].as_str().unwrap())
        .collect();
    assert_eq!(
        sids,
        [
            "AuditorsRead",
            "snapferry-shop-list",
            "snapferry-shop-objects"
        ]
    );
    assert_eq!(policy["Statement"][0], foreign["Statement"][0]);
}

#[test]
fn a_missing_bucket_is_reported_by_plan_and_apply_changes_nothing() {
    let world = shop();
    world.plan("snapferry.yaml", &PLAN.replace("  create: true\n", ""));
    let plan = world.run_ok(&["plan"], 1);
    assert!(
        plan.contains("  ! bucket_policy/shop-snapshots (blocked)"),
        "{plan}"
    );
    assert!(
        plan.contains(
            "bucket shop-snapshots does not exist (or is not visible to these credentials); \
             create it, or set `bucket.create: true` to let snapferry create it"
        ),
        "{plan}"
    );
    let apply = world.run_ok(&["apply", "--auto-approve"], 1);
    assert!(apply.contains("Nothing was changed."), "{apply}");
    assert_eq!(world.mutating_calls(), vec![]);
}

#[test]
fn a_held_lock_stops_apply_naming_the_holder_and_unlock_removes_it() {
    let world = shop();
    world.plan("snapferry.yaml", PLAN);
    std::fs::create_dir_all(world.dir.path().join(".snapferry")).unwrap();
    let holder = serde_json::json!({
        "id": "0123456789abcdef0123456789abcdef",
        "user": "ci",
        "host": "runner-7",
        "pid": 4242,
        "created_at": "2026-11-25T01:02:03Z",
        "command": "snapferry apply --auto-approve"
    });
    let lock = world.dir.path().join(".snapferry/shop.state.json.lock");
    std::fs::write(&lock, holder.to_string()).unwrap();

    // A lock from another machine: whether its run is alive cannot be seen, so it is kept.
    let out = flat(&world.run_ok(&["apply", "--auto-approve"], 1));
    assert!(out.contains("is locked by ci@runner-7 (pid 4242)"), "{out}");
    assert!(out.contains("run `snapferry unlock`"), "{out}");

    let out = world.run_ok(&["unlock"], 1);
    assert!(
        out.contains("refusing to remove the lock without confirmation"),
        "{out}"
    );
    assert!(lock.exists());
    let out = world.run_ok(&["unlock", "--force"], 0);
    assert!(out.contains("Lock removed."), "{out}");
    assert!(!lock.exists());
    world.run_ok(&["apply", "--auto-approve"], 0);
}

#[test]
fn a_vpc_source_is_reached_only_through_the_plans_socks5_proxy() {
    let mut source = source_domain("orders-prod", vec![index("orders", 1200)]);
    source.vpc = true;
    let world = World::start(vec![source], vec![]);
    // The proxy is the only thing that can resolve the VPC endpoints' names.
    let socks = snapferry_tests::socks::SocksServer::start(|host| {
        host.ends_with(".sandbox.internal")
            .then_some(std::net::IpAddr::from([127, 0, 0, 1]))
    });
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
    world.run_ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        user_indices(&world.counts("orders-copy")),
        vec![("orders".to_owned(), 1200)]
    );
    let connections = socks.connections();
    for domain in ["orders-prod", "orders-copy"] {
        assert!(
            connections
                .iter()
                .any(|c| c.starts_with(&format!("vpc-{domain}.sandbox.internal:"))),
            "no connection to {domain} through the proxy: {connections:?}"
        );
    }

    // Without the proxy the same plan cannot reach the source at all.
    world.plan(
        "direct.yaml",
        "version: 1\nname: direct\nregion: us-east-1\nbucket:\n  name: orders-snapshots\n\
         source:\n  domain: orders-prod\ntarget:\n  domain: orders-direct\n",
    );
    let out = world.run_ok(&["plan", "-f", "direct.yaml"], 1);
    assert!(out.contains("vpc-orders-prod.sandbox.internal"), "{out}");
}

#[test]
fn a_missing_source_domain_blocks_every_step_that_needs_it_in_one_plan() {
    let world = shop();
    world.plan(
        "snapferry.yaml",
        &PLAN.replace("domain: shop-prod", "domain: shop-prd"),
    );
    let plan = world.run_ok(&["plan"], 1);
    for line in [
        "  ! repository/shop-prd:snapferry-shop (blocked)",
        "  ! snapshot/shop (blocked)",
        "  ! domain/shop-copy (blocked)",
        "      source domain shop-prd in us-east-1 does not exist or has no endpoint; check \
         `source.domain` and the region",
        "  + role/shop-snapshot-role (create)",
    ] {
        assert!(plan.contains(line), "missing {line:?} in:\n{plan}");
    }
    assert!(plan.contains(", 3 blocked."), "{plan}");
    assert_eq!(world.mutating_calls(), vec![]);
}

#[test]
fn a_target_applies_one_step_and_what_it_needs_and_nothing_else() {
    let world = shop();
    world.plan("snapferry.yaml", PLAN);
    let plan = world.run_ok(
        &["plan", "--target", "repository/shop-copy:snapferry-shop"],
        0,
    );
    assert!(
        plan.contains("Plan: 4 to create, 0 to update, 0 to replace, 0 unchanged."),
        "{plan}"
    );
    for absent in ["snapshot/shop", "restore/shop", "repository/shop-prod"] {
        assert!(!plan.contains(absent), "{absent} planned:\n{plan}");
    }
    world.run_ok(
        &["apply", "--auto-approve", "--target", "domain/shop-copy"],
        0,
    );
    let operations: Vec<String> = world
        .mutating_calls()
        .into_iter()
        .filter(|r| r.service != "sandbox")
        .map(|r| r.operation)
        .collect();
    assert_eq!(operations, ["CreateDomain"]);

    let out = world.run_ok(&["plan", "--target", "domain/nope"], 1);
    assert!(
        out.contains("domain/nope is not a step of this plan; `snapferry graph` lists the steps"),
        "{out}"
    );
    let out = world.run_ok(&["plan", "--target", "nope"], 1);
    assert!(out.contains("--target nope is not a step name"), "{out}");
}

#[test]
fn a_failed_domain_creation_stops_naming_the_domain_and_the_fix() {
    let mut config = snapferry_sandbox::SandboxConfig {
        domains: vec![source_domain("shop-prod", vec![index("orders", 100)])],
        ..Default::default()
    };
    config.faults.rules = vec![fault_once(
        snapferry_sandbox::FaultKind::DomainCreationFailed,
        None,
        "CreateDomain",
    )];
    let world = World::start_with(config);
    world.plan("snapferry.yaml", PLAN);
    let out = world.run_ok(&["apply", "--auto-approve"], 1);
    let flat = flat(&out);
    assert!(
        flat.contains(
            "domain shop-copy finished processing without an endpoint (status Isolated): its \
             creation failed"
        ),
        "{out}"
    );
    assert!(
        flat.contains("aws opensearch delete-domain --domain-name shop-copy"),
        "{out}"
    );
    // The next plan shows it blocked, not "in progress" forever.
    let plan = world.run_ok(&["plan"], 1);
    assert!(plan.contains("  ! domain/shop-copy (blocked)"), "{plan}");
}

#[test]
fn a_given_role_whose_trust_policy_is_wrong_is_reported_and_left_alone() {
    let world = shop();
    let iam = world.aws().iam;
    let ec2_trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                       "Action": "sts:AssumeRole"}]
    });
    world.rt.block_on(async {
        iam.create_role()
            .role_name("team-snapshots")
            .assume_role_policy_document(ec2_trust.to_string())
            .send()
            .await
            .unwrap();
    });
    world.plan(
        "snapferry.yaml",
        &format!("{PLAN}role:\n  arn: arn:aws:iam::123456789012:role/team-snapshots\n"),
    );
    let plan = world.run_ok(&["plan"], 1);
    assert!(plan.contains("  ! role/team-snapshots (blocked)"), "{plan}");
    let flat = flat(&plan);
    assert!(
        flat.contains(
            "role team-snapshots does not let es.amazonaws.com assume it; add it to the role's \
             trust policy (snapferry does not change a role given by ARN)"
        ),
        "{plan}"
    );
    world.sandbox().reset_log();
    world.run_ok(&["apply", "--auto-approve"], 1);
    assert_eq!(world.mutating_calls(), vec![], "nothing was changed");
}

#[test]
fn a_bucket_that_vanished_after_an_apply_blocks_the_next_run_before_any_change() {
    let world = World::start(
        vec![source_domain("shop-prod", vec![index("orders", 100)])],
        vec!["shop-snapshots".to_owned()],
    );
    world.plan("snapferry.yaml", &PLAN.replace("  create: true\n", ""));
    world.run_ok(
        &["apply", "--auto-approve", "--now", "2026-11-01T03:00:00Z"],
        0,
    );
    let s3 = world.s3();
    world.rt.block_on(async {
        let listed = s3
            .list_objects_v2()
            .bucket("shop-snapshots")
            .send()
            .await
            .unwrap();
        for object in listed.contents() {
            s3.delete_object()
                .bucket("shop-snapshots")
                .key(object.key().unwrap())
                .send()
                .await
                .unwrap();
        }
        s3.delete_bucket()
            .bucket("shop-snapshots")
            .send()
            .await
            .unwrap();
    });
    world.sandbox().reset_log();
    let out = world.run_ok(
        &["apply", "--auto-approve", "--now", "2026-11-08T03:00:00Z"],
        1,
    );
    assert!(
        out.contains("  ! bucket_policy/shop-snapshots (blocked)"),
        "{out}"
    );
    assert!(
        out.contains("bucket shop-snapshots does not exist"),
        "{out}"
    );
    assert!(out.contains("Nothing was changed."), "{out}");
    assert_eq!(world.mutating_calls(), vec![]);
}

#[test]
fn expired_credentials_stop_with_what_to_do_and_a_later_apply_resumes() {
    let mut config = snapferry_sandbox::SandboxConfig {
        domains: vec![source_domain("shop-prod", vec![index("orders", 100)])],
        ..Default::default()
    };
    config.faults.rules = vec![fault_once(
        snapferry_sandbox::FaultKind::ExpiredToken,
        Some("iam"),
        "GetRole",
    )];
    let world = World::start_with(config);
    world.plan("snapferry.yaml", PLAN);
    let out = world.run_ok(&["apply", "--auto-approve"], 1);
    let flat = flat(&out);
    assert!(
        flat.contains(
            "role shop-snapshot-role: iam GetRole failed: the AWS credentials have expired; \
             refresh them (e.g. `aws sso login`, or new temporary credentials) and run again"
        ),
        "{out}"
    );
    assert!(!flat.contains("aws_request_id"), "no SDK debug dump: {out}");
    assert!(flat.contains("nothing was changed"), "{out}");
    assert_eq!(world.mutating_calls(), vec![]);
    // Fresh credentials (the fault fired once): the same apply now goes through.
    let out = world.run_ok(&["apply", "--auto-approve"], 0);
    assert!(out.contains("Apply complete: 8 applied"), "{out}");
}

#[test]
fn max_rate_keeps_each_domains_requests_under_the_limit() {
    let world = shop();
    world.plan("snapferry.yaml", PLAN);
    let out = world
        .command(&["apply", "--auto-approve", "--max-rate", "4"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Requests to the two domains' REST APIs (the log does not say which domain), by time:
    // in any one-second window at most, per domain, the burst (4) plus what refills in that
    // second (4). Unlimited, the whole apply's requests land within well under a second.
    let times: Vec<chrono::DateTime<chrono::Utc>> = world
        .sandbox()
        .request_log()
        .into_iter()
        .filter(|r| r.service == "es-data")
        .map(|r| r.time.parse().unwrap())
        .collect();
    assert!(
        times.len() >= 20,
        "too few requests to tell: {}",
        times.len()
    );
    let second = chrono::Duration::seconds(1);
    let densest = times
        .iter()
        .map(|start| {
            times
                .iter()
                .filter(|t| **t >= *start && **t < *start + second)
                .count()
        })
        .max()
        .unwrap();
    assert!(densest <= 16, "{densest} requests within one second");
}

#[test]
fn an_adopted_target_domain_is_never_marked_as_created_and_destroy_leaves_it() {
    let world = World::start(
        vec![
            source_domain("shop-prod", vec![index("orders", 200)]),
            source_domain("shop-copy", vec![index("orders", 5)]),
        ],
        vec![],
    );
    world.plan("snapferry.yaml", PLAN);
    let plan = world.run_ok(&["plan"], 0);
    assert!(plan.contains("  = domain/shop-copy\n"), "{plan}");
    world.run_ok(&["apply", "--auto-approve"], 0);
    assert!(
        world
            .counts("shop-copy")
            .contains(&("orders".to_owned(), 200))
    );
    let opensearch = world.aws().opensearch;
    let tags = world.rt.block_on(async {
        let arn = opensearch
            .describe_domain()
            .domain_name("shop-copy")
            .send()
            .await
            .unwrap()
            .domain_status()
            .unwrap()
            .arn()
            .to_owned();
        opensearch
            .list_tags()
            .arn(arn)
            .send()
            .await
            .unwrap()
            .tag_list()
            .to_vec()
    });
    assert!(
        tags.iter().all(|t| t.key() != "snapferry-plan"),
        "an adopted domain got the ownership tag: {tags:?}"
    );
    let out = world.run_ok(&["destroy", "--auto-approve", "--include-target-domain"], 1);
    let flat = flat(&out);
    assert!(
        flat.contains("domain shop-copy is not tagged snapferry-plan: shop; snapferry did not create it and leaves it in place"),
        "{out}"
    );
    assert!(
        world
            .sandbox()
            .request_log()
            .iter()
            .all(|r| r.operation != "DeleteDomain"),
        "the adopted domain was deleted"
    );
}

/// The recovery types `_recovery` shows for an index of a domain, as (primary, type), sorted.
fn recovery_kinds(world: &World, domain: &str, index: &str) -> Vec<(bool, String)> {
    let client = world.domain(domain);
    let recovery = world
        .rt
        .block_on(client.recovery(&[index.to_owned()]))
        .unwrap();
    let mut kinds: Vec<(bool, String)> = recovery[index]
        .iter()
        .map(|s| (s.primary, s.kind.clone().unwrap_or_default()))
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

/// Only primaries recover from the snapshot; replicas recover from a peer (REAL-AWS.md,
/// "Restore and recovery"). A target that gains a node after the restore gets its replicas
/// allocated, and `_recovery` then lists them as `PEER`: the restore is still the one done from
/// this snapshot (its primaries say so), `plan` shows nothing to do and a later apply does not
/// try it again.
#[test]
fn a_target_given_a_second_node_after_the_restore_is_not_restored_again() {
    let world = World::start(
        vec![source_domain("shop-prod", vec![index("orders", 300)])],
        vec![],
    );
    world.plan("snapferry.yaml", PLAN);
    world.run_ok(&["apply", "--auto-approve"], 0);
    let resized = PLAN.replace(
        "target:\n  domain: shop-copy\n",
        "target:\n  domain: shop-copy\n  overrides:\n    cluster_config:\n      instance_count: 2\n",
    );
    assert_ne!(resized, PLAN);
    world.plan("snapferry.yaml", &resized);
    world.sandbox().reset_log();
    let applied = world.run_ok(&["apply", "--auto-approve"], 0);
    assert!(
        applied
            .contains("Apply complete: 1 applied, 7 unchanged, 0 stale, 0 failed, 0 not started."),
        "only the domain changes; the restore is the one already done:\n{applied}"
    );
    // The premise: the second node took the replicas, which recovered from their primaries.
    assert_eq!(
        recovery_kinds(&world, "shop-copy", "orders"),
        vec![(false, "PEER".to_owned()), (true, "SNAPSHOT".to_owned())]
    );
    let restores = world
        .mutating_calls()
        .into_iter()
        .filter(|r| r.operation == "RestoreSnapshot" || r.operation == "DeleteIndex")
        .count();
    assert_eq!(restores, 0, "nothing restored again:\n{applied}");
    let plan = world.run_ok(&["plan", "--detailed-exitcode"], 0);
    assert!(plan.contains("  = restore/shop\n"), "{plan}");
    assert_eq!(
        user_indices(&world.counts("shop-copy")),
        vec![("orders".to_owned(), 300)]
    );
}

/// A primary relocated after the restore (a blue/green deployment, a rebalance) shows `PEER`
/// in `_recovery` like a replica: nothing in the cluster says any more that the index came from
/// the snapshot. The restore's own record (the restored indices' uuids in the state) does, so
/// `plan` shows nothing to do and an apply with `on_conflict: replace` never deletes and
/// restores the index again.
#[test]
fn a_restored_index_whose_primaries_relocated_is_not_replaced() {
    let mut config = snapferry_sandbox::SandboxConfig {
        domains: vec![source_domain("shop-prod", vec![index("orders", 300)])],
        ..Default::default()
    };
    config.seed_data.insert(
        "shop-copy".into(),
        snapferry_sandbox::SeedData {
            relocate_primaries_after_secs: Some(1.0),
            ..Default::default()
        },
    );
    let world = World::start_with(config);
    world.plan("snapferry.yaml", PLAN);
    world.run_ok(&["apply", "--auto-approve"], 0);
    // One simulated second is a millisecond at the tests' time scale; wait for it generously.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        recovery_kinds(&world, "shop-copy", "orders"),
        vec![(true, "PEER".to_owned())],
        "the premise: the primary relocated"
    );
    world.sandbox().reset_log();
    let plan = world.run_ok(&["plan", "--detailed-exitcode"], 0);
    assert!(plan.contains("  = restore/shop\n"), "{plan}");
    let applied = world.run_ok(&["apply", "--auto-approve"], 0);
    let replaced = world
        .mutating_calls()
        .into_iter()
        .filter(|r| r.operation == "RestoreSnapshot" || r.operation == "DeleteIndex")
        .count();
    assert_eq!(replaced, 0, "the restored index was replaced:\n{applied}");
    assert_eq!(
        user_indices(&world.counts("shop-copy")),
        vec![("orders".to_owned(), 300)]
    );
}

/// IAM is eventually consistent: S3 refuses a bucket policy naming a role it cannot resolve
/// yet (`MalformedPolicy` "Invalid principal in policy"), as it does for seconds after the
/// role is created (REAL-AWS.md; Terraform retries exactly this). With a propagation delay the
/// tool cannot outrun, the bucket policy step must wait for the role it has just created.
///
/// Fails until the tool retries that refusal for its own new role (`snapferry-aws`
/// `resources/bucket_policy.rs`); at the default window (10 simulated seconds, 10 ms at
/// `time_scale` 0.001) the same gap makes other runs fail at random.
#[test]
fn the_bucket_policy_waits_for_the_role_it_just_created_to_propagate() {
    let mut config = snapferry_sandbox::SandboxConfig {
        domains: vec![source_domain("shop-prod", vec![index("orders", 300)])],
        ..Default::default()
    };
    config.latencies.iam_propagation_secs = 2000.0;
    let world = World::start_with(config);
    world.plan("snapferry.yaml", PLAN);
    world.run_ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        user_indices(&world.counts("shop-copy")),
        vec![("orders".to_owned(), 300)]
    );
}
