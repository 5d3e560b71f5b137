//! End to end: the real binary gets through what a first run on a real account meets and a kind
//! stand-in would not (REAL-AWS.md): IAM propagation on the repository's side, answers lost after
//! the service did the work, older engines, a fresh endpoint not yet in DNS.

use crate::common;

use common::{World, index, source_domain, user_indices};
use snapferry_sandbox::{FaultKind, FaultRule, LoggedRequest, SandboxConfig};

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
    // 8 s of real time: longer than a loaded machine takes from the run's trust repair to the
    // target's repository, so the first put always meets the unpropagated role.
    config.latencies.iam_propagation_secs = 8000.0;
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
    world.sandbox().advance_clock(8001.0);
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

/// Each mutating call of a replication, carried out by the service and then its answer lost
/// (the gateway's 504 after the work was done, or the connection dropped), must converge to
/// exactly one of each resource: the retry finds its own work ("already exists", "already
/// in-progress", `EntityAlreadyExists`, `BucketAlreadyOwnedByYou`, `ResourceAlreadyExists`
/// on a domain carrying this plan's tag) and adopts it, or repeats an idempotent put. A run may
/// stop once; the next `apply` then finishes.
#[test]
fn a_lost_answer_to_any_mutating_call_converges_to_exactly_one_of_each_resource() {
    let operations = [
        (Some("iam"), "CreateRole"),
        (Some("iam"), "PutRolePolicy"),
        (Some("s3"), "CreateBucket"),
        (Some("s3"), "PutBucketPolicy"),
        (None, "PutRepository"),
        (None, "CreateSnapshot"),
        (Some("es"), "CreateDomain"),
        (None, "RestoreSnapshot"),
    ];
    let mut failures = Vec::new();
    for kind in [FaultKind::LostAnswer, FaultKind::LostConnection] {
        for (service, operation) in operations {
            let case = format!("{kind:?} on {operation}");
            if let Err(why) = lost_answer_case(kind, service, operation) {
                failures.push(format!("{case}: {why}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn lost_answer_case(kind: FaultKind, service: Option<&str>, operation: &str) -> Result<(), String> {
    let mut config = SandboxConfig {
        domains: vec![source_domain("shop-prod", vec![index("orders", 300)])],
        ..Default::default()
    };
    config.faults.rules = vec![FaultRule {
        kind,
        service: service.map(str::to_owned),
        operation: Some(operation.to_owned()),
        target: None,
        rate: None,
        nth: Some(1),
        times: None,
        status: None,
        delay_secs: None,
    }];
    let world = World::start_with(config);
    world.plan("snapferry.yaml", PLAN);
    let first = world.run(&["apply", "--auto-approve"]);
    if first.status.code() != Some(0) {
        let again = world.run(&["apply", "--auto-approve"]);
        if again.status.code() != Some(0) {
            return Err(format!(
                "two applies did not complete:\n{}\n---\n{}",
                common::output_text(&first),
                common::output_text(&again)
            ));
        }
    }
    if !requests(&world, operation)
        .iter()
        .any(|r| r.fault.is_some())
    {
        return Err("the fault never fired".into());
    }
    let counts = user_indices(&world.counts("shop-copy"));
    if counts != vec![("orders".to_owned(), 300)] {
        return Err(format!("target holds {counts:?}"));
    }
    // Exactly one of each resource, in the sandbox and in the request log.
    let aws = world.aws();
    let (roles, domains, snapshots) = world.rt.block_on(async {
        let roles: Vec<String> = aws
            .iam
            .get_role()
            .role_name("shop-snapshot-role")
            .send()
            .await
            .ok()
            .and_then(|r| r.role)
            .map(|r| r.role_name().to_owned())
            .into_iter()
            .collect();
        let domains = aws.opensearch.list_domain_names().send().await.unwrap();
        let domains: Vec<String> = domains
            .domain_names()
            .iter()
            .filter_map(|d| d.domain_name().map(str::to_owned))
            .collect();
        let snapshots = world
            .domain("shop-prod")
            .list_snapshots("snapferry-shop")
            .await
            .unwrap();
        (roles, domains, snapshots)
    });
    if roles != vec!["shop-snapshot-role".to_owned()] {
        return Err(format!("roles {roles:?}"));
    }
    if domains.iter().filter(|d| *d == "shop-copy").count() != 1 {
        return Err(format!("domains {domains:?}"));
    }
    if snapshots.len() != 1 {
        return Err(format!(
            "snapshots {:?}",
            snapshots.iter().map(|s| &s.snapshot).collect::<Vec<_>>()
        ));
    }
    let carried_out = |op: &str| {
        requests(&world, op)
            .iter()
            .filter(|r| r.status < 300 || r.fault.is_some())
            .count()
    };
    for op in [
        "CreateRole",
        "CreateBucket",
        "CreateDomain",
        "CreateSnapshot",
        "RestoreSnapshot",
    ] {
        let n = carried_out(op);
        if n != 1 {
            return Err(format!("{op} carried out {n} times"));
        }
    }
    Ok(())
}

/// One replication per seeded engine pair, each engine with its own strict REST parameters
/// (Elasticsearch before 7.7 refuses `expand_wildcards` on `_cat/indices`) and, before 7.9, one
/// snapshot at a time with an automated snapshot holding the slot when the run starts.
fn engine_pair(source: &str, target: &str) {
    let mut seed = source_domain("old-prod", vec![index("orders", 400), index("users", 120)]);
    seed.engine_version = source.to_owned();
    let mut config = SandboxConfig {
        domains: vec![seed],
        ..Default::default()
    };
    let mut data = snapshot_data();
    data.automated_snapshots.first_after_secs = 0.0;
    data.automated_snapshots.duration_secs = 3000.0;
    config.seed_data.insert("old-prod".into(), data);
    let world = World::start_with(config);
    world.plan(
        "snapferry.yaml",
        &format!(
            r#"
version: 1
name: old
region: us-east-1
bucket:
  name: old-snapshots
  create: true
source:
  domain: old-prod
target:
  domain: old-copy
  overrides:
    engine_version: {target}
restore:
  on_conflict: replace
"#
        ),
    );
    let applied = world.run_ok(&["apply", "--auto-approve"], 0);
    assert!(applied.contains("Apply complete"), "{applied}");
    assert_eq!(
        user_indices(&world.counts("old-copy")),
        vec![("orders".to_owned(), 400), ("users".to_owned(), 120)],
        "{source} → {target}"
    );
    let creates: Vec<u16> = requests(&world, "CreateSnapshot")
        .into_iter()
        .map(|r| r.status)
        .collect();
    if matches!(source, "Elasticsearch_5.6" | "Elasticsearch_6.8") {
        // The automated snapshot held the one slot: refused, waited for, then started.
        let (last, refused) = creates.split_last().expect("a snapshot was created");
        assert_eq!(*last, 200, "{source}: {creates:?}");
        assert!(
            !refused.is_empty() && refused.iter().all(|s| *s == 503),
            "{source}: {creates:?}"
        );
    } else {
        assert_eq!(creates, vec![200], "{source}");
    }
    let refused: Vec<_> = world
        .sandbox()
        .request_log()
        .into_iter()
        .filter(|r| r.status == 400 && r.service == "es-data")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(refused, Vec::<String>::new(), "{source} → {target}");
    let plan = world.run_ok(&["plan", "--detailed-exitcode"], 0);
    assert!(plan.contains("8 unchanged"), "{plan}");
}

fn snapshot_data() -> snapferry_sandbox::SeedData {
    snapferry_sandbox::SeedData::default()
}

/// Elasticsearch 5 knows no `track_total_hits`: the counts must not send it.
#[test]
fn elasticsearch_5_6_to_6_8() {
    engine_pair("Elasticsearch_5.6", "Elasticsearch_6.8");
}

#[test]
fn elasticsearch_6_8_to_7_10() {
    engine_pair("Elasticsearch_6.8", "Elasticsearch_7.10");
}

#[test]
fn elasticsearch_7_10_to_opensearch_1_3() {
    engine_pair("Elasticsearch_7.10", "OpenSearch_1.3");
}

#[test]
fn elasticsearch_7_10_to_opensearch_2() {
    engine_pair("Elasticsearch_7.10", "OpenSearch_2.11");
}

#[test]
fn opensearch_1_3_to_2() {
    engine_pair("OpenSearch_1.3", "OpenSearch_2.11");
}

/// An index can be restored only onto a version that reads the version that *created* it
/// (REAL-AWS.md, "Restore and recovery"): an index created by Elasticsearch 6.8 on a source
/// since upgraded to 7.10 cannot go to OpenSearch 2. `plan` says so per index, with the fix,
/// before a target is created; the target's version is the plan's, else the source's (a clone
/// of a 7.10 source reads 6.x indices); excluding the index lets the rest through.
#[test]
fn an_index_created_by_an_older_engine_is_shown_blocked_in_plan_with_the_fix() {
    let mut seed = source_domain("old-prod", vec![index("orders", 40), index("legacy", 10)]);
    seed.engine_version = "Elasticsearch_7.10".to_owned();
    seed.indices[1].settings =
        Some(serde_json::json!({"index": {"version": {"created": "6080099"}}}));
    let world = World::start_with(SandboxConfig {
        domains: vec![seed],
        ..Default::default()
    });
    let plan_with = |version: Option<&str>, indices: &str| {
        format!(
            r#"
version: 1
name: old
region: us-east-1
bucket:
  name: old-snapshots
  create: true
source:
  domain: old-prod
target:
  domain: old-copy
{}snapshot:
  indices: {indices}
restore:
  on_conflict: replace
"#,
            version.map_or(String::new(), |v| format!(
                "  overrides:\n    engine_version: {v}\n"
            ))
        )
    };
    world.plan(
        "snapferry.yaml",
        &plan_with(Some("OpenSearch_2.11"), "[\"*\"]"),
    );
    let plan = world.run_ok(&["plan"], 1);
    let expected = "  ! restore/old (blocked)\n      1 index cannot be restored on domain old-copy \
         (OpenSearch_2.11), which reads only indices created by Elasticsearch 7.0 or OpenSearch \
         1.0 or later:\n      ! legacy: created by Elasticsearch 6.8.0\n      Fix: reindex each \
         into a new index on the source (a new index is created by the source's current version, \
         which must be one the target reads), or leave them out: `snapshot.indices: [\"*\", \
         \"-legacy\"]`\n";
    assert!(plan.contains(expected), "{plan}");
    assert!(
        world.mutating_calls().is_empty(),
        "plan changed nothing: {:?}",
        world.mutating_calls()
    );

    // Without a version in the plan the target is a clone of the 7.10 source: it reads 6.x.
    world.plan("snapferry.yaml", &plan_with(None, "[\"*\"]"));
    let plan = world.run_ok(&["plan"], 0);
    assert!(!plan.contains("cannot be restored"), "{plan}");

    // The fix the plan names gets the rest through.
    world.plan(
        "snapferry.yaml",
        &plan_with(Some("OpenSearch_2.11"), "[\"*\", \"-legacy\"]"),
    );
    let plan = world.run_ok(&["plan"], 0);
    assert!(!plan.contains("cannot be restored"), "{plan}");
    world.run_ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        user_indices(&world.counts("old-copy")),
        vec![("orders".to_owned(), 40)]
    );
}

/// A role given by ARN, which this run neither created nor changed, whose trust policy does
/// not let OpenSearch Service assume it for this domain (here: a confused-deputy condition
/// naming another account) will not start to while IAM propagates: the repository reads the
/// role's trust policy at the first refusal and stops at once, naming the role and the fix,
/// instead of putting the repository again for three minutes.
#[test]
fn a_role_given_by_arn_whose_trust_refuses_opensearch_stops_at_once() {
    let world = World::start_with(SandboxConfig {
        domains: vec![source_domain("shop-prod", vec![index("orders", 30)])],
        ..Default::default()
    });
    let iam = world.aws().iam;
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "es.amazonaws.com"},
                       "Action": "sts:AssumeRole",
                       "Condition": {"StringEquals": {"aws:SourceAccount": "999999999999"}}}]
    });
    world.rt.block_on(async {
        iam.create_role()
            .role_name("team-snapshots")
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .unwrap();
    });
    world
        .sandbox()
        .advance_clock(SandboxConfig::default().latencies.iam_propagation_secs + 1.0);
    world.plan(
        "snapferry.yaml",
        &format!("{PLAN}role:\n  arn: arn:aws:iam::123456789012:role/team-snapshots\n"),
    );
    let plan = world.run_ok(&["plan"], 0);
    assert!(!plan.contains("(blocked)"), "{plan}");
    world.sandbox().reset_log();
    let applied = common::flat(&world.run_ok(&["apply", "--auto-approve"], 1));
    let expected = "repository snapferry-shop on domain shop-prod: OpenSearch Service cannot assume \
         role arn:aws:iam::123456789012:role/team-snapshots: its trust policy lets \
         es.amazonaws.com assume it only under {\"StringEquals\":{\"aws:SourceAccount\":\
         \"999999999999\"}}, which domain arn:aws:es:us-east-1:123456789012:domain/shop-prod of \
         account 123456789012 does not meet. This run did not create or change the role, so \
         waiting for IAM to propagate would not help: let `es.amazonaws.com` call sts:AssumeRole \
         in the role's trust policy (if it has aws:SourceAccount/aws:SourceArn conditions, they \
         must name account 123456789012 and arn:aws:es:us-east-1:123456789012:domain/shop-prod); \
         snapferry does not change a role given by ARN. Then run `snapferry apply` again";
    assert!(applied.contains(expected), "{applied}");
    let puts: Vec<(Option<String>, u16)> = requests(&world, "PutRepository")
        .into_iter()
        .map(|r| (r.target, r.status))
        .collect();
    assert_eq!(
        puts,
        vec![(Some("snapferry-shop".to_owned()), 500)],
        "put once, not retried"
    );
    assert!(
        requests(&world, "GetRole").iter().any(|r| r.status == 200),
        "the role's trust policy was read"
    );
}

/// `PLAN` with the target given a second node and a tag: an `UpdateDomainConfig` and an
/// `AddTags` on the applied target.
fn resized_plan() -> String {
    PLAN.replace(
        "  domain: shop-copy\n",
        "  domain: shop-copy\n  overrides:\n    cluster_config:\n      instance_count: 2\n    tags:\n      team: search\n",
    )
}

/// Runs `args` until it exits 0, at most twice (a run may stop once on a lost answer; the
/// next one must finish). The outputs of the failed runs come back with the error.
fn converges(world: &World, args: &[&str]) -> Result<(), String> {
    let first = world.run(args);
    if first.status.code() == Some(0) {
        return Ok(());
    }
    let again = world.run(args);
    if again.status.code() == Some(0) {
        return Ok(());
    }
    Err(format!(
        "two runs of {args:?} did not complete:\n{}\n---\n{}",
        common::output_text(&first),
        common::output_text(&again)
    ))
}

fn carried_out(world: &World, operation: &str) -> usize {
    requests(world, operation)
        .iter()
        .filter(|r| r.status < 300 || r.fault.is_some())
        .count()
}

/// The answers to the changes of an applied target (`UpdateDomainConfig`, `AddTags`) lost after
/// AWS made them: the domain ends with exactly the plan's configuration, the update carried out
/// once, and a second `plan` has nothing to do.
#[test]
fn a_lost_answer_to_a_domain_update_or_its_tags_converges() {
    let mut failures = Vec::new();
    for kind in [FaultKind::LostAnswer, FaultKind::LostConnection] {
        for operation in ["UpdateDomainConfig", "AddTags"] {
            if let Err(why) = lost_update_case(kind, operation) {
                failures.push(format!("{kind:?} on {operation}: {why}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn lost_update_case(kind: FaultKind, operation: &str) -> Result<(), String> {
    let world = World::start_with(SandboxConfig {
        domains: vec![source_domain("shop-prod", vec![index("orders", 50)])],
        ..Default::default()
    });
    world.plan("snapferry.yaml", PLAN);
    world.run_ok(&["apply", "--auto-approve"], 0);
    world
        .sandbox()
        .set_faults(0, vec![common::fault_once(kind, Some("es"), operation)]);
    world.sandbox().reset_log();
    world.plan("snapferry.yaml", &resized_plan());
    converges(&world, &["apply", "--auto-approve", "--reconcile-drift"])?;
    if !requests(&world, operation)
        .iter()
        .any(|r| r.fault.is_some())
    {
        return Err("the fault never fired".into());
    }
    let n = carried_out(&world, "UpdateDomainConfig");
    if n != 1 {
        let seq: Vec<String> = world
            .sandbox()
            .request_log()
            .into_iter()
            .filter(|r| r.operation.contains("Domain") || r.operation.contains("Tags"))
            .map(|r| {
                format!(
                    "{} {} {} {:?} {}",
                    r.service, r.operation, r.status, r.fault, r.time
                )
            })
            .collect();
        return Err(format!(
            "UpdateDomainConfig carried out {n} times: {seq:#?}"
        ));
    }
    let opensearch = world.aws().opensearch;
    let (count, tags) = world.rt.block_on(async {
        let status = opensearch
            .describe_domain()
            .domain_name("shop-copy")
            .send()
            .await
            .unwrap()
            .domain_status
            .unwrap();
        let count = status.cluster_config().and_then(|c| c.instance_count());
        let tags = opensearch
            .list_tags()
            .arn(status.arn())
            .send()
            .await
            .unwrap()
            .tag_list
            .unwrap_or_default()
            .into_iter()
            .filter(|t| t.key() == "team")
            .map(|t| t.value().to_owned())
            .collect::<Vec<_>>();
        (count, tags)
    });
    if (count, tags.clone()) != (Some(2), vec!["search".to_owned()]) {
        return Err(format!("instance count {count:?}, team tags {tags:?}"));
    }
    let plan = world.run(&["plan", "--detailed-exitcode"]);
    if plan.status.code() != Some(0) {
        return Err(format!(
            "plan after the update still has changes:\n{}",
            common::output_text(&plan)
        ));
    }
    Ok(())
}

/// Each delete of `destroy` carried out by AWS, then its answer lost: `destroy` ends with
/// everything it owns gone (a delete already done is not an error), and a second `destroy` has
/// nothing to do.
#[test]
fn a_lost_answer_to_any_delete_of_destroy_converges() {
    let operations = [
        (Some("iam"), "DeleteRolePolicy"),
        (Some("iam"), "DeleteRole"),
        (Some("s3"), "DeleteBucketPolicy"),
        (None, "DeleteRepository"),
        (None, "DeleteSnapshot"),
        (Some("es"), "DeleteDomain"),
    ];
    let mut failures = Vec::new();
    for kind in [FaultKind::LostAnswer, FaultKind::LostConnection] {
        for (service, operation) in operations {
            if let Err(why) = lost_delete_case(kind, service, operation) {
                failures.push(format!("{kind:?} on {operation}: {why}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn lost_delete_case(kind: FaultKind, service: Option<&str>, operation: &str) -> Result<(), String> {
    let world = World::start_with(SandboxConfig {
        domains: vec![source_domain("shop-prod", vec![index("orders", 50)])],
        ..Default::default()
    });
    world.plan("snapferry.yaml", PLAN);
    world.run_ok(&["apply", "--auto-approve"], 0);
    let snapshots = |world: &World| {
        world
            .rt
            .block_on(world.domain("shop-prod").list_snapshots("snapferry-shop"))
            .map_err(|e| e.to_string())
    };
    if snapshots(&world).map(|s| s.len()).unwrap_or(0) != 1 {
        return Err("no snapshot after the apply".into());
    }
    world
        .sandbox()
        .set_faults(0, vec![common::fault_once(kind, service, operation)]);
    world.sandbox().reset_log();
    converges(
        &world,
        &["destroy", "--include-target-domain", "--auto-approve"],
    )?;
    if !requests(&world, operation)
        .iter()
        .any(|r| r.fault.is_some())
    {
        return Err("the fault never fired".into());
    }
    let aws = world.aws();
    let (role, policy, domains) = world.rt.block_on(async {
        let role = aws
            .iam
            .get_role()
            .role_name("shop-snapshot-role")
            .send()
            .await
            .is_ok();
        let policy = aws
            .s3
            .get_bucket_policy()
            .bucket("shop-snapshots")
            .send()
            .await
            .ok()
            .and_then(|p| p.policy);
        let domain = aws
            .opensearch
            .describe_domain()
            .domain_name("shop-copy")
            .send()
            .await
            .ok()
            .and_then(|o| o.domain_status.map(|s| s.deleted() == Some(true)));
        (role, policy, domain)
    });
    if role {
        return Err("the role is still there".into());
    }
    if let Some(policy) = policy {
        return Err(format!("the bucket policy is still there: {policy}"));
    }
    if domains == Some(false) {
        return Err("the target domain is not being deleted".into());
    }
    let source_repository = world
        .rt
        .block_on(world.domain("shop-prod").get_repository("snapferry-shop"))
        .map_err(|e| e.to_string())?;
    if source_repository.is_some() {
        return Err("the source's repository is still registered".into());
    }
    let left: Vec<String> = world
        .bucket_keys("shop-snapshots")
        .into_iter()
        .filter(|k| k.contains("/snap-") || k.contains("indices/"))
        .collect();
    if !left.is_empty() {
        return Err(format!("the snapshot's files are left: {left:?}"));
    }
    world.sandbox().reset_log();
    let again = world.run(&["destroy", "--include-target-domain", "--auto-approve"]);
    let text = common::output_text(&again);
    if again.status.code() != Some(0) || !text.contains("Nothing to destroy") {
        return Err(format!("a second destroy:\n{text}"));
    }
    if !world.mutating_calls().is_empty() {
        return Err(format!(
            "a second destroy changed something: {:?}",
            world.mutating_calls()
        ));
    }
    Ok(())
}

/// OpenSearch keeps a repository registered when its verification fails (REAL-AWS.md, "IAM is
/// eventually consistent"). A run killed while it waits for the role to propagate leaves the
/// target's repository registered but never verified; the next `apply` must not take that
/// registration for done: it verifies it (`POST _snapshot/<repo>/_verify`) once the role is
/// assumable, and the replication completes.
#[test]
fn a_repository_registered_but_unverified_by_an_interrupted_run_is_verified_on_resume() {
    let mut config = SandboxConfig {
        domains: vec![source_domain("shop-prod", vec![index("orders", 60)])],
        ..Default::default()
    };
    config.latencies.iam_propagation_secs = 2000.0;
    let world = World::start_with(config);
    world.plan("snapferry.yaml", PLAN);
    world.run_ok(&["apply", "--auto-approve"], 0);

    // The role's trust policy broken by hand (long enough ago for the domains to see it), the
    // target's repository unregistered: the next run repairs the trust, which the domains see
    // only after the propagation window, far longer than this run will live.
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
    world
        .rt
        .block_on(
            world
                .domain("shop-copy")
                .delete_repository("snapferry-shop"),
        )
        .unwrap();
    world.sandbox().set_faults(0, Vec::new());
    world.sandbox().reset_log();
    let mut child = world
        .command(&["apply", "--auto-approve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !requests(&world, "PutRepository")
        .iter()
        .any(|r| r.status == 500)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no repository PUT was refused: {:?}",
            requests(&world, "PutRepository")
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Registered, not verified: the domain still cannot assume the role.
    let target = world.domain("shop-copy");
    assert!(
        world
            .rt
            .block_on(target.get_repository("snapferry-shop"))
            .unwrap()
            .is_some(),
        "the refused PUT left the repository registered"
    );
    assert!(
        world
            .rt
            .block_on(target.verify_repository("snapferry-shop"))
            .is_err()
    );

    // IAM catches up; the resumed run verifies what it finds registered.
    world.sandbox().advance_clock(2001.0);
    world.sandbox().reset_log();
    world.run_ok(&["apply", "--auto-approve"], 0);
    let verified: Vec<u16> = requests(&world, "VerifyRepository")
        .into_iter()
        .chain(requests(&world, "PutRepository"))
        .filter(|r| r.target.as_deref() == Some("snapferry-shop"))
        .map(|r| r.status)
        .collect();
    assert!(verified.contains(&200), "verified on resume: {verified:?}");
    assert!(
        world
            .rt
            .block_on(target.verify_repository("snapferry-shop"))
            .is_ok()
    );
    let plan = world.run_ok(&["plan", "--detailed-exitcode"], 0);
    assert!(plan.contains("8 unchanged"), "{plan}");
    assert_eq!(
        user_indices(&world.counts("shop-copy")),
        vec![("orders".to_owned(), 60)]
    );
}

/// AWS answers a CreateDomain for a name that exists with `ResourceAlreadyExistsException`, the
/// same answer a retry after a lost answer gets. Here the domain is someone else's: created
/// (untagged) after `apply` read that there was none, while its CreateDomain was on the way.
/// The run must tell that from a domain an earlier attempt created: it stops naming the
/// domain, the state does not record the domain as created, and `destroy
/// --include-target-domain` leaves it alone.
#[test]
fn a_domain_someone_else_created_meanwhile_is_never_taken_for_ours() {
    let world = World::start_with(SandboxConfig {
        domains: vec![source_domain("shop-prod", vec![index("orders", 30)])],
        ..Default::default()
    });
    world.plan("snapferry.yaml", PLAN);
    let mut slow = common::fault_once(FaultKind::Slow, Some("es"), "CreateDomain");
    slow.delay_secs = Some(20_000.0);
    world.sandbox().set_faults(0, vec![slow]);
    let child = world
        .command(&["apply", "--auto-approve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the run has checkpointed the domain step as started, it has read that there is no
    // target and its CreateDomain is on its way, to be held 20 s before the service looks at
    // it. (Waiting for any change instead raced on a loaded machine: this test's own
    // CreateDomain could arrive first and take the delay.) A second's margin for the request
    // to arrive.
    let state_file = world.dir.path().join(".snapferry/shop.state.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read(&state_file)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|s| s["nodes"]["domain/shop-copy"]["status"] == "applying")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the run did not start the domain step"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    let opensearch = world.aws().opensearch;
    world.rt.block_on(async {
        opensearch
            .create_domain()
            .domain_name("shop-copy")
            .engine_version("OpenSearch_2.11")
            .send()
            .await
            .unwrap();
    });
    let out = child.wait_with_output().unwrap();
    let text = common::flat(&common::output_text(&out));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "domain shop-copy was created by someone else after the plan was made (it is not \
             tagged snapferry-plan: shop), so snapferry will not take it over: choose another \
             `target.domain`, or delete that domain if it is not needed, and run `snapferry \
             apply` again"
        ),
        "{text}"
    );
    let state = world.state(".snapferry/shop.state.json");
    let domain = &state["nodes"]["domain/shop-copy"];
    assert_ne!(domain["status"], "done", "{domain}");
    assert!(
        domain["outputs"].is_null() || domain["outputs"]["endpoint"].is_null(),
        "{domain}"
    );

    world.sandbox().reset_log();
    world.run(&["destroy", "--include-target-domain", "--auto-approve"]);
    assert!(
        requests(&world, "DeleteDomain").is_empty(),
        "destroy deleted a domain snapferry did not create"
    );
    let deleted = world.rt.block_on(async {
        opensearch
            .describe_domain()
            .domain_name("shop-copy")
            .send()
            .await
            .unwrap()
            .domain_status
            .unwrap()
            .deleted()
    });
    assert_eq!(deleted, Some(false));
}
