//! The `metadata` and `dashboards` sections: off unless written, their defaults, the problems
//! they report at their place, and where their steps sit in the graph (templates before the
//! restore, ISM attachments after it).

use snapferry_plan::{DashboardsSpec, MetadataSpec, NodeId, Problem, parse};

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

fn deps(plan: &snapferry_plan::Plan, kind: &str) -> Vec<String> {
    let graph = plan.graph();
    let mut d: Vec<String> = graph
        .dependencies(&NodeId::new(kind, "shop"))
        .iter()
        .map(ToString::to_string)
        .collect();
    d.sort();
    d
}

#[test]
fn without_the_sections_there_are_no_new_steps() {
    let plan = parse("plan.yaml", MINIMAL).unwrap();
    assert_eq!(plan.replications[0].metadata, None);
    assert_eq!(plan.replications[0].dashboards, None);
    let plan = parse(
        "plan.yaml",
        &format!("{MINIMAL}metadata: false\ndashboards: {{ enabled: false }}\n"),
    )
    .unwrap();
    let graph = plan.graph();
    let kinds: Vec<String> = graph
        .topological_order()
        .iter()
        .map(|id| id.kind().to_owned())
        .collect();
    assert!(
        !kinds
            .iter()
            .any(|k| ["metadata", "ism_attach", "dashboards"].contains(&k.as_str())),
        "{kinds:?}"
    );
}

#[test]
fn metadata_true_copies_every_family_and_sits_between_domain_and_restore() {
    let plan = parse(
        "plan.yaml",
        &format!("{MINIMAL}metadata: true\ndashboards: true\n"),
    )
    .unwrap();
    let all = vec!["*".to_owned()];
    assert_eq!(
        plan.replications[0].metadata,
        Some(MetadataSpec {
            index_templates: all.clone(),
            component_templates: all.clone(),
            legacy_templates: all.clone(),
            pipelines: all.clone(),
            ism_policies: all.clone(),
            scripts: all,
            prune: false,
        })
    );
    assert_eq!(
        plan.replications[0].dashboards,
        Some(DashboardsSpec {
            tenants: vec!["global".into()],
            overwrite: true,
            types: None,
        })
    );
    assert_eq!(deps(&plan, "metadata"), ["domain/shop-copy"]);
    assert!(deps(&plan, "restore").contains(&"metadata/shop".to_owned()));
    assert_eq!(deps(&plan, "ism_attach"), ["metadata/shop", "restore/shop"]);
    assert_eq!(deps(&plan, "dashboards"), ["domain/shop-copy"]);
}

#[test]
fn no_ism_policies_means_no_attachment_step() {
    let plan = parse(
        "plan.yaml",
        &format!("{MINIMAL}metadata:\n  ism_policies: []\n  prune: true\n"),
    )
    .unwrap();
    let m = plan.replications[0].metadata.clone().unwrap();
    assert!(m.prune && m.ism_policies.is_empty());
    assert!(
        plan.graph()
            .node(&NodeId::new("ism_attach", "shop"))
            .is_none()
    );
}

#[test]
fn bad_patterns_and_tenants_are_refused_at_their_place() {
    let text = format!(
        "{MINIMAL}metadata:\n  pipelines: [\"a b\"]\ndashboards:\n  tenants: [\"team-*\"]\n  types: []\n"
    );
    let errors = parse("plan.yaml", &text).expect_err("refused").errors;
    let found: Vec<(String, usize, usize)> = errors
        .iter()
        .map(|d| (d.problem.to_string(), d.line, d.column))
        .collect();
    assert_eq!(
        found,
        vec![
            (
                "invalid name pattern \"a b\": it contains ' ', which no object name contains"
                    .to_owned(),
                11,
                15
            ),
            (
                "invalid name pattern \"team-*\": it is a pattern; name each one".to_owned(),
                13,
                13
            ),
            ("empty `types` list".to_owned(), 14, 10),
        ]
    );
    assert!(matches!(
        errors[0].problem,
        Problem::InvalidNamePattern { .. }
    ));
}
