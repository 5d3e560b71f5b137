//! The checked plan: defaults, derived names, and the rules, each asserted
//! with the exact problem and where it points.

use chrono::{TimeZone, Utc};
use snapferry_plan::{
    BucketEncryption, DomainCreation, NodeId, NodeSpec, OnConflict, Plan, PlanErrors, Problem,
    RoleSpec, StateLocation, parse,
};

const MINIMAL: &str = "version: 1
name: shop
region: us-east-1
bucket:
  name: acme-snapshots
source:
  domain: shop-prod
target:
  domain: shop-copy
";

fn ok(text: &str) -> Plan {
    parse("plan.yaml", text).unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)))
}

fn errors(text: &str) -> PlanErrors {
    parse("plan.yaml", text).expect_err("the plan should be refused")
}

/// (problem, line, column) of every error.
fn found(text: &str) -> Vec<(Problem, usize, usize)> {
    errors(text)
        .errors
        .into_iter()
        .map(|d| (d.problem, d.line, d.column))
        .collect()
}

#[test]
fn defaults_derive_from_the_plan_name() {
    let plan = ok(MINIMAL);
    assert_eq!(
        plan.role,
        RoleSpec::Managed {
            name: "shop-snapshot-role".into(),
            path: "/".into(),
            trusted_services: vec!["es.amazonaws.com".into()],
            permissions_boundary: None,
            tags: Default::default(),
        }
    );
    assert_eq!(
        plan.state,
        StateLocation::Local {
            path: ".snapferry/shop.state.json".into()
        }
    );
    assert!(!plan.bucket.create);
    assert_eq!(plan.bucket.region, "us-east-1");
    let r = &plan.replications[0];
    assert_eq!(r.name, "shop");
    assert_eq!(r.repository.name, "snapferry-shop");
    assert_eq!(r.repository.base_path, "shop-prod");
    assert_eq!(r.snapshot.template.as_str(), "{name}-{date}");
    assert_eq!(
        r.snapshot.indices,
        [
            "*",
            "-.kibana*",
            "-.opendistro*",
            "-.plugins*",
            "-.opensearch*",
            "-.tasks"
        ]
    );
    assert!(!r.snapshot.include_global_state);
    assert!(!r.snapshot.partial);
    assert_eq!(r.restore.on_conflict, OnConflict::Fail);
    assert!(r.verify.enabled);
    assert!(matches!(
        r.target.creation,
        DomainCreation::FromSource { .. }
    ));
    let at = Utc.with_ymd_and_hms(2026, 11, 25, 5, 42, 0).unwrap();
    assert_eq!(r.snapshot.template.resolve(&r.name, at), "shop-2026-11-25");
}

#[test]
fn system_indices_can_be_kept() {
    let plan = ok(&format!(
        "{MINIMAL}snapshot:\n  include_system_indices: true\n  indices: [logs-*]\n"
    ));
    assert_eq!(plan.replications[0].snapshot.indices, ["logs-*"]);
}

#[test]
fn kms_and_base_path_are_carried() {
    let text = MINIMAL.replace(
        "  name: acme-snapshots\n",
        "  name: acme-snapshots\n  base_path: /snaps/\n  sse: aws:kms\n  kms_key_id: 1234abcd-12ab-34cd-56ef-1234567890ab\n",
    );
    let plan = ok(&text);
    assert_eq!(plan.bucket.base_path.as_deref(), Some("snaps"));
    assert_eq!(
        plan.bucket.encryption,
        Some(BucketEncryption::Kms {
            key_id: Some("1234abcd-12ab-34cd-56ef-1234567890ab".into())
        })
    );
    assert_eq!(plan.replications[0].repository.base_path, "snaps/shop-prod");
}

#[test]
fn reports_every_problem_at_once_with_positions() {
    let text = "version: 2
name: shop
region: us-east-1
bucket:
  name: Acme
source:
  domain: shop-prod
target:
  domain: shop-prod
snapshot:
  name: \"{when}\"
";
    let all = found(text);
    assert_eq!(all.len(), 4, "{all:#?}");
    assert_eq!(all[0], (Problem::UnsupportedVersion { found: 2 }, 1, 10));
    assert_eq!(
        all[1],
        (
            Problem::InvalidBucketName {
                name: "Acme".into(),
                reason: "it contains 'A'; only a-z, 0-9, . and - are allowed".into()
            },
            5,
            9
        )
    );
    assert_eq!(
        all[2],
        (
            Problem::SameSourceAndTarget {
                domain: "shop-prod".into()
            },
            9,
            11
        )
    );
    assert_eq!(
        all[3],
        (
            Problem::InvalidTemplate {
                template: "{when}".into(),
                reason: "unknown placeholder {when}".into()
            },
            11,
            9
        )
    );
}

#[test]
fn every_unknown_key_is_reported_at_its_key_with_a_suggestion() {
    let text = format!("{MINIMAL}restore:\n  on_confict: skip\nverfy: {{ enabled: false }}\n");
    let all = found(&text);
    assert_eq!(all.len(), 2, "{all:#?}");
    let Problem::UnknownKey {
        key,
        parent,
        suggestion,
        allowed,
    } = &all[0].0
    else {
        panic!("{all:?}")
    };
    assert_eq!(
        (key.as_str(), parent.as_str(), suggestion.as_deref()),
        ("on_confict", "restore", Some("on_conflict"))
    );
    assert!(allowed.contains(&"rename_pattern".to_owned()));
    assert_eq!((all[0].1, all[0].2), (11, 3));
    assert_eq!(
        all[0].0.to_string(),
        "unknown key `on_confict` in `restore`"
    );
    assert_eq!(all[1].0.to_string(), "unknown key `verfy` in the top level");
    assert_eq!((all[1].1, all[1].2), (12, 1));
    assert!(all[1].0.help().starts_with(
        "did you mean `verify`? Keys allowed here: bucket, dashboards, metadata, name, "
    ));
}

#[test]
fn engine_versions_are_compared_when_both_are_written() {
    let text = MINIMAL.replace(
        "  domain: shop-prod\n",
        "  domain: shop-prod\n  engine_version: Elasticsearch_7.10\n",
    ) + "  overrides:\n    engine_version: OpenSearch_2.11\n";
    ok(&text);
    let text = text.replace("Elasticsearch_7.10", "OpenSearch_2.13");
    let all = found(&text);
    assert_eq!(
        all,
        [(
            Problem::EngineIncompatible {
                source_version: "OpenSearch_2.13".into(),
                target_version: "OpenSearch_2.11".into()
            },
            12,
            21
        )]
    );
}

#[test]
fn role_arn_excludes_other_role_fields_and_is_checked() {
    let text = format!("{MINIMAL}role:\n  arn: arn:aws:iam::123456789012:role/snaps\n");
    let plan = ok(&text);
    assert_eq!(
        plan.role,
        RoleSpec::Existing {
            arn: "arn:aws:iam::123456789012:role/snaps".into(),
            name: "snaps".into()
        }
    );
    let all = found(&format!(
        "{MINIMAL}role:\n  arn: arn:aws:iam::123456789012:role/snaps\n  tags: {{a: b}}\n"
    ));
    assert_eq!(
        all,
        [(
            Problem::ArnWithRoleFields {
                field: "tags".into()
            },
            12,
            3
        )]
    );
}

#[test]
fn repository_names_have_no_lowercase_rule() {
    let plan = ok(&format!("{MINIMAL}repository:\n  name: Snapferry-Shop\n"));
    assert_eq!(plan.replications[0].repository.name, "Snapferry-Shop");
}

#[test]
fn collisions_across_replications() {
    let text = "version: 1
name: fleet
region: us-east-1
bucket: { name: acme-snapshots }
replications:
  - name: a
    source: { domain: src-one }
    target: { domain: dst-one }
  - name: a
    source: { domain: src-two }
    target: { domain: dst-one }
";
    let all = found(text);
    assert_eq!(
        all,
        [
            (
                Problem::DuplicateReplicationName { name: "a".into() },
                9,
                11
            ),
            (
                Problem::DuplicateTargetDomain {
                    domain: "dst-one".into()
                },
                11,
                23
            ),
        ]
    );
}

#[test]
fn fingerprint_is_stable_and_follows_the_content() {
    let a = ok(MINIMAL);
    let reordered = "name: shop
version: 1
target:
  domain: shop-copy
source:
  domain: shop-prod
bucket:
  name: acme-snapshots
region: us-east-1
";
    let b = ok(reordered);
    assert_eq!(a.fingerprint(), b.fingerprint());
    let c = ok(&MINIMAL.replace("shop-copy", "shop-copy2"));
    assert_ne!(a.fingerprint(), c.fingerprint());
    let ga = a.graph();
    let gc = c.graph();
    let role = NodeId::from("role/shop-snapshot-role");
    assert_eq!(
        ga.node(&role).unwrap().fingerprint(),
        gc.node(&role).unwrap().fingerprint()
    );
    let snap = NodeId::from("snapshot/shop");
    assert_eq!(
        ga.node(&snap).unwrap().fingerprint(),
        gc.node(&snap).unwrap().fingerprint()
    );
    let restore = NodeId::from("restore/shop");
    assert_ne!(
        ga.node(&restore).unwrap().fingerprint(),
        gc.node(&restore).unwrap().fingerprint()
    );
}

#[test]
fn graph_order_critical_path_and_rendering() {
    let plan = ok(MINIMAL);
    let graph = plan.graph();
    let order: Vec<String> = graph
        .topological_order()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        order,
        [
            "role/shop-snapshot-role",
            "bucket_policy/acme-snapshots",
            "repository/shop-prod:snapferry-shop",
            "snapshot/shop",
            "domain/shop-copy",
            "repository/shop-copy:snapferry-shop",
            "restore/shop",
            "verify/shop",
        ]
    );
    // Domain creation (30 min) dominates the snapshot (5 min): the critical path goes through it.
    let path = graph.critical_path(|n| match n.spec {
        NodeSpec::Domain(_) => std::time::Duration::from_secs(1800),
        NodeSpec::Snapshot(_) => std::time::Duration::from_secs(300),
        _ => std::time::Duration::from_secs(10),
    });
    assert_eq!(
        path.total,
        std::time::Duration::from_secs(1800 + 10 + 10 + 10)
    );
    let ids: Vec<String> = path.nodes.iter().map(|n| n.to_string()).collect();
    assert_eq!(
        ids,
        [
            "domain/shop-copy",
            "repository/shop-copy:snapferry-shop",
            "restore/shop",
            "verify/shop"
        ]
    );
    let dot = graph.to_dot();
    assert!(
        dot.contains("\"snapshot/shop\" -> \"restore/shop\";"),
        "{dot}"
    );
    assert!(
        !dot.contains("\"snapshot/shop\" -> \"domain/shop-copy\""),
        "{dot}"
    );
    assert_eq!(dot, plan.graph().to_dot(), "rendering is deterministic");
    let mermaid = graph.to_mermaid();
    assert!(
        mermaid.starts_with("flowchart LR\n  n0[\"role<br/>shop-snapshot-role\"]\n"),
        "{mermaid}"
    );
}

#[test]
fn syntax_and_type_errors_point_at_the_offending_place() {
    // An unclosed bracket: the parser stops at the end; the message says where it opened.
    let all = found("version: 1\nname: shop\nregion: [us-east-1\n");
    assert_eq!(
        all,
        [(
            Problem::Syntax {
                message: "while parsing a flow sequence, expected ',' or ']' (inside the `[` opened on line 3, column 9)".into()
            },
            4,
            1
        )]
    );
    let all = found("version: 1\nname: shop\n  region: x\n");
    assert_eq!(all.len(), 1);
    let Problem::Syntax { message } = &all[0].0 else {
        panic!("{all:?}")
    };
    assert_eq!(message, "mapping values are not allowed in this context");
    assert_eq!((all[0].1, all[0].2), (3, 9));
}

#[test]
fn local_state_path_is_beside_the_plan() {
    let plan = ok(MINIMAL);
    assert_eq!(
        plan.state
            .local_path(std::path::Path::new("ops/plans/shop.yaml")),
        Some(std::path::PathBuf::from(
            "ops/plans/.snapferry/shop.state.json"
        ))
    );
}

#[test]
fn snapshots_of_one_repository_never_share_a_name() {
    let text = "version: 1
name: fleet
region: us-east-1
bucket: { name: acme-snapshots }
replications:
  - name: a
    source: { domain: src-one }
    target: { domain: dst-one }
    snapshot: { name: \"nightly-{date}\" }
  - name: b
    source: { domain: src-one }
    target: { domain: dst-two }
    snapshot: { name: \"nightly-{date}\" }
";
    assert_eq!(
        found(text),
        [(
            Problem::SnapshotNameCollision {
                template: "nightly-{date}".into(),
                other: "a".into()
            },
            13,
            23
        )]
    );
    // With {name} in the template, or from another source, there is no collision.
    ok(&text.replace("nightly-{date}", "{name}-{date}"));
    let other_source = text.replacen(
        "source: { domain: src-one }\n    target: { domain: dst-two }",
        "source: { domain: src-two }\n    target: { domain: dst-two }",
        1,
    );
    ok(&other_source);
}

#[test]
fn verify_takes_a_boolean_or_a_mapping() {
    let off = ok(&format!("{MINIMAL}verify: false\n"));
    assert!(!off.replications[0].verify.enabled);
    assert!(!off.graph().nodes().any(|n| n.id.kind() == "verify"));
    let on = ok(&format!("{MINIMAL}verify: {{ enabled: true }}\n"));
    assert!(on.replications[0].verify.enabled);
    // A misspelt key of the long form is still found, with its suggestion.
    let all = found(&format!("{MINIMAL}verify: {{ enabeld: false }}\n"));
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].0.to_string(), "unknown key `enabeld` in `verify`");
    assert_eq!((all[0].1, all[0].2), (10, 11));
}

#[test]
fn every_wrong_type_and_missing_key_is_reported_at_once() {
    let text = "version: 1
name: shop
bucket:
  create: yes-please
source: { domain: shop-prod }
target:
  domain: shop-copy
  overrides:
    cluster_config: { instance_count: -3 }
restore: { on_conflict: merge }
";
    let all: Vec<(String, usize, usize)> = found(text)
        .into_iter()
        .map(|(p, line, col)| (p.to_string(), line, col))
        .collect();
    assert_eq!(
        all,
        [
            ("missing `region`".to_owned(), 1, 1),
            ("missing `bucket.name`".to_owned(), 3, 1),
            (
                "`bucket.create` must be true/false, found \"yes-please\"".to_owned(),
                4,
                11
            ),
            (
                "`target.overrides.cluster_config.instance_count` must be a number of at least 0, found -3".to_owned(),
                9,
                39
            ),
            (
                "`restore.on_conflict` must be one of fail, skip, rename, replace, found \"merge\"".to_owned(),
                10,
                25
            ),
        ]
    );
}

#[test]
fn the_s3_lock_lease_defaults_to_a_minute_is_bounded_and_leaves_the_fingerprint_alone() {
    let with = |extra: &str| {
        format!("{MINIMAL}state:\n  s3:\n    bucket: team-state\n    key: shop.json\n{extra}")
    };
    let default = ok(&with(""));
    assert_eq!(
        default.state,
        StateLocation::S3 {
            bucket: "team-state".into(),
            key: "shop.json".into(),
            region: "us-east-1".into(),
            lock_lease_seconds: 60,
        }
    );
    let longer = ok(&with("    lock_lease_seconds: 300\n"));
    assert!(matches!(
        longer.state,
        StateLocation::S3 {
            lock_lease_seconds: 300,
            ..
        }
    ));
    // How runs take turns is not what they build: the plan's fingerprint is the same.
    assert_eq!(longer.fingerprint(), default.fingerprint());
    let all: Vec<(String, usize, usize)> = found(&with("    lock_lease_seconds: 2\n"))
        .into_iter()
        .map(|(p, line, col)| (p.to_string(), line, col))
        .collect();
    assert_eq!(
        all,
        [(
            "`state.s3.lock_lease_seconds` must be a number of seconds from 5 to 86400, found 2"
                .to_owned(),
            14,
            25
        )]
    );
}

#[test]
fn the_targets_master_user_is_an_arn_or_an_internal_user_with_a_password_source() {
    let with =
        |fgac: &str| format!("{MINIMAL}  overrides:\n    fine_grained_access_control: {fgac}\n");
    let plan = ok(&with(
        "{ master_user_arn: \"arn:aws:iam::111111111111:role/admin\" }",
    ));
    let fgac = plan.replications[0]
        .target
        .creation
        .config()
        .fine_grained_access_control
        .clone()
        .unwrap();
    assert_eq!(
        fgac.master,
        Some(snapferry_plan::MasterUser::Arn(
            "arn:aws:iam::111111111111:role/admin".into()
        ))
    );
    let plan = ok(&with(
        "{ master_user_name: admin, master_user_password: { env: MASTER_PW } }",
    ));
    assert_eq!(
        plan.replications[0]
            .target
            .creation
            .config()
            .fine_grained_access_control
            .as_ref()
            .unwrap()
            .master,
        Some(snapferry_plan::MasterUser::Internal {
            name: "admin".into(),
            password: snapferry_plan::SecretSource::Env("MASTER_PW".into()),
        })
    );
    let reason = |fgac: &str| match &found(&with(fgac))[0] {
        (Problem::InvalidMasterUser { reason }, line, _) => {
            assert_eq!(*line, 11, "{reason}");
            reason.clone()
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        reason("{ master_user_name: admin }"),
        "an internal master user needs `master_user_password: { env: VAR }` or \
         `master_user_password: { secrets_manager: <secret ARN or name> }`"
    );
    assert_eq!(
        reason("{ master_user_password: { env: PW } }"),
        "a password belongs to an internal master user: add `master_user_name`"
    );
    assert_eq!(
        reason("{ master_user_arn: \"arn:aws:iam::111111111111:role/a\", master_user_name: b }"),
        "the master is either an IAM ARN or an internal user, not both"
    );
    assert_eq!(
        reason("{ master_user_arn: admin }"),
        "an IAM user or role ARN is needed (arn:aws:iam::<account>:role/<name>)"
    );
}

#[test]
fn a_master_password_comes_from_either_the_environment_or_secrets_manager() {
    let with = |source: &str| {
        format!(
            "{MINIMAL}  overrides:\n    fine_grained_access_control:\n      master_user_name: admin\n      \
             master_user_password: {source}\n"
        )
    };
    let password = |source: &str| match ok(&with(source)).replications[0]
        .target
        .creation
        .config()
        .fine_grained_access_control
        .as_ref()
        .unwrap()
        .master
        .clone()
    {
        Some(snapferry_plan::MasterUser::Internal { password, .. }) => password,
        other => panic!("{other:?}"),
    };
    let arn = "arn:aws:secretsmanager:eu-west-1:111111111111:secret:search/master-AbCdEf";
    assert_eq!(
        password(&format!("{{ secrets_manager: \"{arn}\", key: password }}")),
        snapferry_plan::SecretSource::SecretsManager {
            secret_id: arn.into(),
            key: Some("password".into()),
        }
    );
    let by_name = password("{ secrets_manager: search/master }");
    assert_eq!(
        by_name,
        snapferry_plan::SecretSource::SecretsManager {
            secret_id: "search/master".into(),
            key: None,
        }
    );
    // Where it comes from is said, never a value.
    assert_eq!(by_name.to_string(), "Secrets Manager secret search/master");
    // Wrong shapes: where, and in the plan's words.
    let problem = |source: &str| {
        found(&with(source))
            .into_iter()
            .map(|(problem, line, column)| match problem {
                Problem::InvalidMasterUser { reason } => (reason, line, column),
                other => panic!("{other:?}"),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        problem("{ env: PW, secrets_manager: search/master }"),
        vec![(
            "`master_user_password` takes either `env` or `secrets_manager`, not both".to_owned(),
            13,
            57
        )]
    );
    assert_eq!(
        problem("{}"),
        vec![(
            "`master_user_password` needs `env: VAR` or `secrets_manager: <secret ARN or name>`"
                .to_owned(),
            13,
            29
        )]
    );
    assert_eq!(
        problem("{ env: PW, key: password }"),
        vec![(
            "`key` names a key of the JSON in a Secrets Manager secret: it goes with \
             `secrets_manager`, not `env`"
                .to_owned(),
            13,
            45
        )]
    );
    assert_eq!(
        problem("{ key: password }"),
        vec![(
            "`key` names a key of the JSON in a Secrets Manager secret: it goes with \
             `secrets_manager`, not `env`"
                .to_owned(),
            13,
            36
        )]
    );
    assert_eq!(
        problem("{ secrets_manager: \"arn:aws:s3:::bucket\" }"),
        vec![(
            "a secret ARN is written arn:aws:secretsmanager:<region>:<account>:secret:<name>"
                .to_owned(),
            13,
            48
        )]
    );
    // The whole message, as `validate` prints it.
    let errors = errors(&with("{ env: PW, secrets_manager: search/master }"));
    assert_eq!(
        errors.errors[0].problem.to_string(),
        "fine-grained access control: `master_user_password` takes either `env` or \
         `secrets_manager`, not both"
    );
}

#[test]
fn a_refresh_strategy_defaults_to_in_place_and_alias_swap_skips_unchanged_by_default() {
    let plan = ok(MINIMAL);
    let r = &plan.replications[0];
    assert_eq!(r.restore.strategy, snapferry_plan::RestoreStrategy::InPlace);
    assert!(!r.restore.skip_unchanged);
    assert_eq!(r.snapshot.keep, None);
    let plan = ok(&format!(
        "{MINIMAL}snapshot:\n  keep: 2\nrestore:\n  strategy: alias_swap\n  on_conflict: replace\n"
    ));
    let r = &plan.replications[0];
    assert_eq!(
        r.restore.strategy,
        snapferry_plan::RestoreStrategy::AliasSwap
    );
    assert!(r.restore.skip_unchanged);
    assert_eq!(r.snapshot.keep, Some(2));
    let plan = ok(&format!(
        "{MINIMAL}restore:\n  strategy: alias_swap\n  skip_unchanged: false\n"
    ));
    assert!(!plan.replications[0].restore.skip_unchanged);
}

#[test]
fn refresh_settings_that_cannot_work_together_are_refused_where_written() {
    let all = found(&format!(
        "{MINIMAL}snapshot:\n  keep: 0\nrestore:\n  strategy: alias_swap\n  rename_pattern: \"(.+)\"\n  rename_replacement: \"r-$1\"\n  on_conflict: rename\n"
    ));
    assert_eq!(
        all,
        [
            (Problem::KeepZero, 11, 9),
            (Problem::RenameWithAliasSwap, 16, 16),
        ]
    );
    let all = found(&format!("{MINIMAL}restore:\n  skip_unchanged: true\n"));
    assert_eq!(all, [(Problem::SkipUnchangedInPlace, 11, 19)]);
}
