//! A crash never needs `unlock` (issue #15): the real binary is SIGKILLed in the middle of an
//! apply, and `apply --auto-approve` alone finishes the job — with local state by seeing that
//! the lock's process is gone, with S3 state by taking the lease over once it expired, each
//! naming the dead holder. The sandbox's request log then holds exactly one CreateDomain,
//! CreateSnapshot and RestoreSnapshot. A run that is alive keeps its lock.

use crate::common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{World, flat, index, source_domain, user_indices};
use snapferry_sandbox::SandboxConfig;

const NOW: &str = "2026-11-01T03:00:00Z";
const APPLY: &[&str] = &["apply", "--auto-approve", "--now", NOW];

fn plan(state: &str) -> String {
    format!(
        r#"
version: 1
name: shop
region: us-east-1
{state}
bucket:
  name: shop-snapshots
  create: true
source:
  domain: shop-prod
target:
  domain: shop-copy
"#
    )
}

/// A sandbox whose target domain takes `creation_secs` simulated seconds (a thousandth of
/// that in real time) to create.
fn world(creation_secs: f64, state: &str) -> World {
    let mut config = SandboxConfig {
        domains: vec![source_domain(
            "shop-prod",
            vec![index("products", 300), index("orders", 500)],
        )],
        buckets: vec!["team-state".to_owned()],
        ..SandboxConfig::default()
    };
    config.latencies.domain_creation_secs = creation_secs;
    let world = World::start_with(config);
    world.plan("snapferry.yaml", &plan(state));
    world
}

/// Starts `apply` and returns it once it printed a line containing `trigger` (the rest of its
/// output is drained in the background so it never blocks on a full pipe).
fn apply_until(world: &World, trigger: &str) -> Child {
    let mut child = world
        .command(APPLY)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains(trigger) => break,
            Some(Ok(_)) => {}
            _ => panic!("apply ended before printing {trigger:?}"),
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    child
}

fn sigkill(mut child: Child) -> u32 {
    let pid = child.id();
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status:?}");
    pid
}

/// Calls of `operation` that reached the sandbox's handler.
fn calls(world: &World, operation: &str) -> usize {
    world
        .sandbox()
        .request_log()
        .iter()
        .filter(|r| r.operation == operation && r.fault.is_none())
        .count()
}

fn assert_replicated_once(world: &World) {
    for op in ["CreateDomain", "CreateSnapshot", "RestoreSnapshot"] {
        assert_eq!(calls(world, op), 1, "{op} calls");
    }
    assert_eq!(
        user_indices(&world.counts("shop-copy")),
        user_indices(&world.counts("shop-prod"))
    );
}

fn s3_object(world: &World, key: &str) -> Option<Vec<u8>> {
    let s3 = world.s3();
    world.rt.block_on(async {
        match s3.get_object().bucket("team-state").key(key).send().await {
            Ok(out) => Some(out.body.collect().await.unwrap().to_vec()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => None,
            Err(e) => panic!("{}", aws_sdk_s3::error::DisplayErrorContext(e)),
        }
    })
}

#[test]
fn a_sigkilled_apply_on_local_state_is_finished_by_apply_alone() {
    let world = world(8000.0, "");
    let lock = world.dir.path().join(".snapferry/shop.state.json.lock");
    let first = apply_until(&world, "domain/shop-copy: Creating");
    // While it runs, it keeps its lock: a second apply is refused, naming it.
    let refused = flat(&world.run_ok(APPLY, 1));
    let pid = first.id();
    assert!(
        refused.contains(&format!("(pid {pid})"))
            && refused.contains("that process is still running on this machine"),
        "{refused}"
    );
    let killed = sigkill(first);
    assert!(lock.exists(), "the killed run left its lock");

    let out = flat(&world.run_ok(APPLY, 0));
    assert!(
        out.contains("Notice: the state at .snapferry/shop.state.json was locked by ")
            && out.contains(&format!("(pid {killed}) since "))
            && out.contains(&format!(
                "process {killed} has exited, so this run took the lock over."
            )),
        "{out}"
    );
    assert!(out.contains("Apply complete"), "{out}");
    assert!(!lock.exists(), "released");
    assert_replicated_once(&world);
    let state = world.state(".snapferry/shop.state.json");
    for (id, node) in state["nodes"].as_object().unwrap() {
        assert_eq!(node["status"], "done", "{id}");
    }
}

#[test]
fn a_sigkilled_apply_on_s3_state_is_finished_by_apply_once_its_lease_expired() {
    // A 5 s lease renewed every 1.7 s; the target domain takes 6 s of real time.
    let world = world(
        6000.0,
        "state:\n  s3:\n    bucket: team-state\n    key: snapferry/shop.json\n    lock_lease_seconds: 5",
    );
    let lock_key = "snapferry/shop.json.lock";
    let first = apply_until(&world, "domain/shop-copy: Creating");
    let taken: serde_json::Value =
        serde_json::from_slice(&s3_object(&world, lock_key).expect("the lease")).unwrap();
    assert_eq!(taken["lease_seconds"], 5);
    // The running apply renews its lease: wait until it rewrote it once.
    let deadline = Instant::now() + Duration::from_secs(20);
    let renewed = loop {
        let now: serde_json::Value =
            serde_json::from_slice(&s3_object(&world, lock_key).expect("the lease")).unwrap();
        if now["expires_at"] != taken["expires_at"] {
            break now;
        }
        assert!(Instant::now() < deadline, "the lease was never renewed");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(renewed["id"], taken["id"]);
    let killed = sigkill(first);
    assert!(
        s3_object(&world, lock_key).is_some(),
        "the killed run left its lease"
    );

    // Without waiting, apply would be refused until the lease expires; with a lock timeout it
    // waits for that and takes the lease over.
    let out = flat(&world.run_ok(
        &[
            "apply",
            "--auto-approve",
            "--now",
            NOW,
            "--lock-timeout",
            "60",
        ],
        0,
    ));
    assert!(
        out.contains("Notice: the state at s3://team-state/snapferry/shop.json was locked by ")
            && out.contains(&format!("(pid {killed}) since "))
            && out.contains("its lease expired at ")
            && out.contains("so this run took the lock over."),
        "{out}"
    );
    assert!(out.contains("Apply complete"), "{out}");
    assert_eq!(s3_object(&world, lock_key), None, "released");
    assert_replicated_once(&world);
    let state: serde_json::Value =
        serde_json::from_slice(&s3_object(&world, "snapferry/shop.json").unwrap()).unwrap();
    for (id, node) in state["nodes"].as_object().unwrap() {
        assert_eq!(node["status"], "done", "{id}");
    }
}

#[test]
fn unlock_shows_the_lease_and_removes_the_lock_it_showed() {
    let world = world(
        400.0,
        "state:\n  s3:\n    bucket: team-state\n    key: snapferry/shop.json",
    );
    let lock_key = "snapferry/shop.json.lock";
    let holder = serde_json::json!({
        "id": "0123", "user": "ci", "host": "runner-7", "pid": 4242,
        "created_at": "2026-11-01T02:00:00Z", "command": "snapferry apply",
        "expires_at": "2999-01-01T00:00:00Z", "lease_seconds": 60,
    });
    let s3 = world.s3();
    world.rt.block_on(async {
        s3.put_object()
            .bucket("team-state")
            .key(lock_key)
            .body(holder.to_string().into_bytes().into())
            .send()
            .await
            .unwrap();
    });
    let refused = flat(&world.run_ok(APPLY, 1));
    assert!(
        refused.contains("is locked by ci@runner-7 (pid 4242)")
            // (miette may wrap the date at a hyphen)
            && refused.contains("its lease runs until 2999-01-")
            && refused.contains("unless that run renews it"),
        "{refused}"
    );
    let out = flat(&world.run_ok(&["unlock", "--force"], 0));
    assert!(
        out.contains("is locked by ci@runner-7 (pid 4242)")
            && out.contains("Its lease runs until 2999-01-01T00:00:00+00:00")
            && out.contains("Lock removed."),
        "{out}"
    );
    assert_eq!(s3_object(&world, lock_key), None);
    // One DeleteObject, of the lock it showed (that it carries `If-Match` is tested against
    // moto in snapferry-aws: the sandbox's S3 ignores the header).
    let deletes: Vec<_> = world
        .sandbox()
        .request_log()
        .into_iter()
        .filter(|r| r.operation == "DeleteObject")
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    world.run_ok(APPLY, 0);
}
