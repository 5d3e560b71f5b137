//! Saved plans: what was reviewed is what is applied, or nothing is. `plan -o FILE` then
//! `apply FILE` applies without asking; an edit of the plan file or a change of the live state
//! in between makes `apply FILE` refuse, say what moved, and change nothing.

use crate::common;

use common::{World, index, source_domain};

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

fn shop() -> World {
    let world = World::start(
        vec![source_domain("shop-prod", vec![index("orders", 800)])],
        vec![],
    );
    world.plan("snapferry.yaml", PLAN);
    world
}

#[test]
fn a_saved_plan_is_applied_as_reviewed_without_a_prompt() {
    let world = shop();
    let out = world.run_ok(&["plan", "-o", "reviewed.json"], 0);
    assert!(
        out.contains(
            "Saved to reviewed.json: `snapferry apply reviewed.json` applies exactly this plan."
        ),
        "{out}"
    );
    let saved = world.dir.path().join("reviewed.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the saved plan is private");
    }
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    assert_eq!(doc["format_version"], 2);
    // The reviewed proposal itself: every step with its change.
    let nodes = doc["proposal"]["nodes"].as_object().unwrap();
    assert_eq!(nodes.len(), 8);
    assert_eq!(nodes["domain/shop-copy"]["change"]["action"], "create");
    assert!(world.mutating_calls().is_empty());

    // Standard input is not a terminal and there is no --auto-approve: a saved plan needs none.
    let out = world.run_ok(&["apply", "reviewed.json"], 0);
    assert!(out.contains("Apply complete: 8 applied"), "{out}");
    assert!(
        world
            .counts("shop-copy")
            .contains(&("orders".to_owned(), 800))
    );
}

#[test]
fn a_saved_plan_is_refused_when_the_plan_file_was_edited() {
    let world = shop();
    world.run_ok(&["plan", "-o", "reviewed.json"], 0);
    world.plan(
        "snapferry.yaml",
        &format!("{PLAN}restore:\n  on_conflict: replace\n"),
    );
    let out = world.run_ok(&["apply", "reviewed.json"], 1);
    assert!(
        out.contains("the saved plan reviewed.json is stale; nothing was changed"),
        "{out}"
    );
    assert!(
        out.contains("the plan file snapferry.yaml changed since the plan was saved"),
        "{out}"
    );
    // What moved, field by field.
    assert!(
        out.contains(r#"restore/shop: on_conflict: "fail" → "replace""#),
        "{out}"
    );
    assert!(out.contains("run `snapferry plan -o FILE` again"), "{out}");
    assert_eq!(world.mutating_calls(), vec![]);
}

#[test]
fn a_saved_plan_is_refused_when_the_live_state_moved() {
    let world = shop();
    world.run_ok(&["plan", "-o", "reviewed.json"], 0);
    // Someone creates the bucket between review and merge.
    let s3 = world.s3();
    world.rt.block_on(async {
        s3.create_bucket()
            .bucket("shop-snapshots")
            .send()
            .await
            .unwrap();
    });
    world.sandbox().reset_log();
    let out = world.run_ok(&["apply", "reviewed.json"], 1);
    assert!(
        common::flat(&out).contains(
            "bucket_policy/shop-snapshots: the change was `create` when planned, it is `update` now"
        ),
        "{out}"
    );
    assert_eq!(world.mutating_calls(), vec![]);
}

#[test]
fn something_that_is_not_a_saved_plan_is_refused_by_name() {
    let world = shop();
    std::fs::write(
        world.dir.path().join("bogus.json"),
        "{\"format_version\": 9}",
    )
    .unwrap();
    let out = world.run_ok(&["apply", "bogus.json"], 1);
    assert!(
        out.contains("bogus.json has saved-plan format 9, this snapferry reads format 2"),
        "{out}"
    );
    assert_eq!(world.mutating_calls(), vec![]);
}
