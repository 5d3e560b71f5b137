//! The state on S3, as two CI runners share it: the document and its lock are objects in a
//! bucket; two applies of one plan at once — one proceeds, the other is refused naming the
//! holder, or waits for it with `--lock-timeout` and then finds nothing left to do.

use crate::common;

use std::process::Stdio;

use common::{World, index, source_domain};

const PLAN: &str = r#"
version: 1
name: shop
region: us-east-1
state:
  s3:
    bucket: team-state
    key: snapferry/shop.json
    region: us-east-1
bucket:
  name: shop-snapshots
  create: true
source:
  domain: shop-prod
target:
  domain: shop-copy
"#;

fn world() -> World {
    let world = World::start(
        vec![source_domain("shop-prod", vec![index("orders", 600)])],
        vec!["team-state".to_owned()],
    );
    world.plan("snapferry.yaml", PLAN);
    world
}

fn object(world: &World, key: &str) -> Option<String> {
    let s3 = world.s3();
    world.rt.block_on(async {
        match s3.get_object().bucket("team-state").key(key).send().await {
            Ok(out) => Some(String::from_utf8(out.body.collect().await.unwrap().to_vec()).unwrap()),
            Err(_) => None,
        }
    })
}

#[test]
fn the_state_lives_in_s3_and_a_second_runner_is_refused_naming_the_holder() {
    let world = world();
    // The first runner starts and is still busy (the target domain takes a while)...
    let first = world
        .command(&["apply", "--auto-approve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lock = loop {
        if let Some(lock) = object(&world, "snapferry/shop.json.lock") {
            break lock;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let holder: serde_json::Value = serde_json::from_str(&lock).unwrap();
    assert_eq!(holder["pid"], first.id());

    // ...so the second is refused at once, naming the first.
    let out = world.run_ok(&["apply", "--auto-approve"], 1);
    assert!(
        out.contains("the state at s3://team-state/snapferry/shop.json is locked by"),
        "{out}"
    );
    assert!(out.contains(&format!("(pid {})", first.id())), "{out}");

    let first = first.wait_with_output().unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
    assert_eq!(
        object(&world, "snapferry/shop.json.lock"),
        None,
        "the lock was released"
    );
    let state: serde_json::Value =
        serde_json::from_str(&object(&world, "snapferry/shop.json").unwrap()).unwrap();
    assert_eq!(state["plan_name"], "shop");
    assert!(
        state["nodes"]
            .as_object()
            .unwrap()
            .values()
            .all(|n| n["status"] == "done"),
        "{state}"
    );
    assert!(
        !world.dir.path().join(".snapferry").exists(),
        "nothing was written locally"
    );
}

#[test]
fn a_second_runner_with_a_lock_timeout_waits_and_then_has_nothing_to_do() {
    let world = world();
    let first = world
        .command(&["apply", "--auto-approve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while object(&world, "snapferry/shop.json.lock").is_none() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = world.run_ok(&["apply", "--auto-approve", "--lock-timeout", "60"], 0);
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success());
    // The second runner planned while the first was still running, so it saw work to do; once it
    // had the lock, every step was done and still true: it made nothing again (at most it ran
    // the verification its plan showed once more, which changes nothing).
    assert!(
        second.contains("Apply complete: 0 applied, 8 unchanged")
            || second.contains("Apply complete: 1 applied, 7 unchanged")
            || second.contains("No changes"),
        "{second}"
    );
    for (operation, times) in [
        ("CreateRole", 1),
        ("CreateBucket", 1),
        ("PutBucketPolicy", 1),
        ("CreateDomain", 1),
        ("PutRepository", 2),
        ("CreateSnapshot", 1),
        ("RestoreSnapshot", 1),
    ] {
        let made = world
            .sandbox()
            .request_log()
            .iter()
            .filter(|r| r.operation == operation && (200..300).contains(&r.status))
            .count();
        assert_eq!(made, times, "{operation}: {second}");
    }
}
