//! Drift converges, and plan says so (issue #15): after the target's repository and one restored
//! index are deleted by hand, `plan` shows `+ repository` and `~ restore` and exits 2 with
//! `--detailed-exitcode`; one `apply --auto-approve` registers the repository again, restores
//! the missing index again and verifies again; then `plan --detailed-exitcode` exits 0. `plan`
//! and `apply` never disagree.

use crate::common;

use common::{World, flat, index, source_domain, user_indices};

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
"#;

const REPOSITORY: &str = "repository/shop-copy:snapferry-shop";

#[test]
fn a_deleted_repository_and_index_are_shown_by_plan_and_made_again_by_one_apply() {
    let world = World::start(
        vec![source_domain(
            "shop-prod",
            vec![
                index("products", 300),
                index("orders", 500),
                index("customers", 200),
            ],
        )],
        vec![],
    );
    world.plan("snapferry.yaml", PLAN);
    world.run_ok(&["apply", "--auto-approve"], 0);
    let source = user_indices(&world.counts("shop-prod"));
    assert_eq!(world.counts("shop-copy"), source);

    // By hand, on the target: the repository unregistered, one restored index deleted.
    let target = world.domain("shop-copy");
    world.rt.block_on(async {
        target.delete_repository("snapferry-shop").await.unwrap();
        target.delete_index("orders").await.unwrap();
    });
    assert!(!world.counts("shop-copy").iter().any(|(i, _)| i == "orders"));

    world.sandbox().reset_log();
    let plan = world.run_ok(&["plan", "--detailed-exitcode"], 2);
    for line in [
        &format!("  + {REPOSITORY} (create)"),
        "  ~ restore/shop (update)",
        "      indices.orders: \"restored from orders\"",
        "  ~ verify/shop (update)",
        "      documents: (known after apply)",
        "  = snapshot/shop\n",
        "  = domain/shop-copy\n",
        "Plan: 1 to create, 2 to update, 0 to replace, 5 unchanged.",
    ] {
        assert!(plan.contains(line), "missing {line:?} in:\n{plan}");
    }
    assert!(
        flat(&plan).contains(&format!(
            "{REPOSITORY}: changed outside snapferry since it was applied; apply brings it back \
             to the plan"
        )),
        "{plan}"
    );
    assert!(!plan.contains("left as it is"), "{plan}");
    assert_eq!(world.mutating_calls(), vec![], "plan changed something");

    let applied = world.run_ok(&["apply", "--auto-approve"], 0);
    assert!(
        applied
            .contains("Apply complete: 3 applied, 5 unchanged, 0 stale, 0 failed, 0 not started."),
        "{applied}"
    );
    let calls: Vec<(String, Option<String>)> = world
        .mutating_calls()
        .into_iter()
        .filter(|r| (200..300).contains(&r.status))
        .map(|r| (r.operation, r.target))
        .collect();
    assert_eq!(
        calls,
        [
            (
                "PutRepository".to_owned(),
                Some("snapferry-shop".to_owned())
            ),
            (
                "RestoreSnapshot".to_owned(),
                Some("snapferry-shop".to_owned())
            ),
        ],
        "exactly the repository and the missing index are made again"
    );
    assert_eq!(
        world.counts("shop-copy"),
        source,
        "the missing index is back, with its documents"
    );

    let again = world.run_ok(&["plan", "--detailed-exitcode"], 0);
    assert!(
        again.contains("Plan: 0 to create, 0 to update, 0 to replace, 8 unchanged."),
        "{again}"
    );

    // `--reconcile-drift` is still accepted for a release, and does nothing more.
    let out = world.run_ok(&["apply", "--auto-approve", "--reconcile-drift"], 0);
    assert!(
        flat(&out).contains("--reconcile-drift is no longer needed and does nothing"),
        "{out}"
    );
    assert!(
        out.contains("No changes: everything matches the plan and the state."),
        "{out}"
    );
}
