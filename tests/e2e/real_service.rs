//! End to end: what a replication meets on a real account and the sandbox reproduces
//! (`/work/shared/REAL-AWS.md`, `docs/aws-fidelity.md`): many indices against the 4 KB request
//! line, a source written to while it is copied, UltraWarm, closed and data-stream indices,
//! indices the target cannot read, and shards the target cannot place. Replicas and relocated
//! primaries are in `replication.rs`.

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
restore:
  on_conflict: replace
"#;

/// The longest request line of the sandbox's log: `METHOD path?query HTTP/1.1`.
fn longest_request_line(world: &World) -> (usize, String) {
    world
        .sandbox()
        .request_log()
        .into_iter()
        .map(|r| {
            let line = format!("{} {} HTTP/1.1", r.method, r.path);
            (line.len(), line)
        })
        .max_by_key(|(len, _)| *len)
        .unwrap_or_default()
}

/// A few hundred index names on one request line go over the managed service's 4 KB limit
/// (`too_long_http_line_exception`). 500 indices with 40-character names replicate, and no
/// request line the tool sent was longer than 4,096 bytes.
#[test]
fn five_hundred_indices_with_long_names_replicate_without_a_request_line_over_4_kb() {
    let names: Vec<String> = (0..500)
        .map(|i| format!("tenant-{i:04}-application-event-archive-v2"))
        .collect();
    assert!(names.iter().all(|n| n.len() == 40), "{:?}", names[0]);
    let world = World::start(
        vec![source_domain(
            "shop-prod",
            names.iter().map(|n| index(n, 2)).collect(),
        )],
        vec![],
    );
    world.plan("snapferry.yaml", PLAN);
    world.run_ok(&["apply", "--auto-approve"], 0);
    let copied = user_indices(&world.counts("shop-copy"));
    assert_eq!(copied.len(), 500);
    assert!(copied.iter().all(|(_, n)| *n == 2), "{copied:?}");
    let (len, line) = longest_request_line(&world);
    assert!(
        len <= 4096,
        "a request line of {len} bytes: {}…",
        &line[..200]
    );
    // The line would have been over the limit had the restored indices been listed on it.
    assert!(names.iter().map(|n| n.len() + 1).sum::<usize>() > 4096);
    let refused = world
        .sandbox()
        .request_log()
        .into_iter()
        .filter(|r| r.status == 400)
        .count();
    assert_eq!(refused, 0, "requests refused");
    let plan = world.run_ok(&["plan", "--detailed-exitcode"], 0);
    assert!(plan.contains("  = restore/shop\n"), "{}", flat(&plan));
}
