//! Every example in `plans/` validates, and its graph has the edges of the
//! design and never an edge from a snapshot to a target domain.

use std::path::PathBuf;

use snapferry_plan::{NodeId, NodeSpec, load};

fn plan_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../plans");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_validates_with_the_schema_line() {
    let files = plan_files();
    assert!(
        files.len() >= 6,
        "expected the six example plans, found {files:?}"
    );
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../docs/plan.schema.json\n"),
            "{} must start with the schema line",
            file.display()
        );
        if let Err(e) = load(&file) {
            panic!(
                "{} does not validate: {:?}",
                file.display(),
                miette::Report::new(e)
            );
        }
    }
}

#[test]
fn example_graphs_have_the_design_edges_and_no_snapshot_to_domain_edge() {
    for file in plan_files() {
        let plan = load(&file).unwrap();
        let graph = plan.graph();
        let edges = graph.edges();
        for (from, to) in &edges {
            assert!(
                !(from.kind() == "snapshot" && to.kind() == "domain"),
                "{}: edge {from} -> {to} makes the domain wait for the snapshot",
                file.display()
            );
        }
        let has = |a: &NodeId, b: &NodeId| edges.iter().any(|(x, y)| x == a && y == b);
        let role = NodeId::new("role", plan.role.name());
        let policy = NodeId::new("bucket_policy", &plan.bucket.name);
        assert!(
            has(&role, &policy),
            "{}: role -> bucket_policy",
            file.display()
        );
        for r in &plan.replications {
            let src_repo = NodeId::new(
                "repository",
                &format!("{}:{}", r.source.name, r.repository.name),
            );
            let tgt_repo = NodeId::new(
                "repository",
                &format!("{}:{}", r.target.domain.name, r.repository.name),
            );
            let snapshot = NodeId::new("snapshot", &r.name);
            let domain = NodeId::new("domain", &r.target.domain.name);
            let restore = NodeId::new("restore", &r.name);
            let verify = NodeId::new("verify", &r.name);
            for (a, b) in [
                (&policy, &src_repo),
                (&src_repo, &snapshot),
                (&snapshot, &restore),
                (&policy, &tgt_repo),
                (&domain, &tgt_repo),
                (&tgt_repo, &restore),
            ] {
                assert!(has(a, b), "{}: missing edge {a} -> {b}", file.display());
            }
            assert_eq!(
                has(&restore, &verify),
                r.verify.enabled,
                "{}: restore -> verify",
                file.display()
            );
            assert!(
                graph.dependencies(&domain).is_empty(),
                "{}: {domain} waits for nothing",
                file.display()
            );
        }
    }
}

#[test]
fn fleet_shares_role_policy_and_the_source_repository_of_a_shared_source() {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../plans/fleet.yaml");
    let plan = load(&file).unwrap();
    let graph = plan.graph();
    let count = |kind: &str| graph.nodes().filter(|n| n.id.kind() == kind).count();
    assert_eq!(count("role"), 1);
    assert_eq!(count("bucket_policy"), 1);
    // logs and logs-archive both read logs-prod: 3 source repositories + 4 target ones.
    assert_eq!(count("repository"), 7);
    assert_eq!(count("snapshot"), 4);
    assert_eq!(count("domain"), 4);
    assert_eq!(count("verify"), 3, "traces has verify disabled");
    let shared = graph
        .node(&NodeId::from("repository/logs-prod:snapferry-fleet"))
        .expect("shared source repository");
    match &shared.spec {
        NodeSpec::Repository(r) => {
            assert_eq!(r.repository.base_path, "fleet/logs-prod");
            assert!(!r.readonly);
        }
        other => panic!("unexpected spec {other:?}"),
    }
    assert_eq!(
        graph.dependents(&NodeId::from("repository/logs-prod:snapferry-fleet")),
        vec![
            NodeId::from("snapshot/logs"),
            NodeId::from("snapshot/logs-archive")
        ]
    );
}

#[test]
fn cross_account_target_reads_with_its_own_role() {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../plans/cross-account.yaml");
    let graph = load(&file).unwrap().graph();
    let reader = "arn:aws:iam::222222222222:role/opensearch-snapshots-reader";
    match &graph
        .node(&NodeId::from("bucket_policy/acme-billing-handover"))
        .unwrap()
        .spec
    {
        NodeSpec::BucketPolicy(p) => assert_eq!(p.readers, [reader]),
        other => panic!("unexpected spec {other:?}"),
    }
    match &graph
        .node(&NodeId::from(
            "repository/billing-copy:snapferry-billing-handover",
        ))
        .unwrap()
        .spec
    {
        NodeSpec::Repository(r) => {
            assert_eq!(
                r.role,
                snapferry_plan::RoleSpec::Existing {
                    arn: reader.into(),
                    name: "opensearch-snapshots-reader".into()
                }
            );
            assert!(r.readonly);
        }
        other => panic!("unexpected spec {other:?}"),
    }
    match &graph
        .node(&NodeId::from(
            "repository/billing:snapferry-billing-handover",
        ))
        .unwrap()
        .spec
    {
        NodeSpec::Repository(r) => assert_eq!(r.role.name(), "opensearch-snapshots"),
        other => panic!("unexpected spec {other:?}"),
    }
}
