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
    // Only the domains' refusals count here: S3 may refuse the bucket policy with 400
    // `MalformedPolicy` while the new role propagates (retried; `real_service.rs` covers it),
    // and how often depends on how busy the machine is.
    let refused: Vec<String> = world
        .sandbox()
        .request_log()
        .into_iter()
        .filter(|r| r.status == 400 && r.service.starts_with("es"))
        .map(|r| {
            format!(
                "#{} {} {} {} {}",
                r.seq, r.service, r.operation, r.method, r.path
            )
        })
        .collect();
    assert!(refused.is_empty(), "requests refused: {refused:#?}");
    let plan = world.run_ok(&["plan", "--detailed-exitcode"], 0);
    assert!(plan.contains("  = restore/shop\n"), "{}", flat(&plan));
}

/// Writes go on while a snapshot is taken, and documents written meanwhile may not be in it
/// (REAL-AWS.md, "Snapshots"). A source written to during the whole run verifies: the target
/// is compared with the source's counts just before and just after the snapshot, and the state
/// says so.
#[test]
fn a_source_written_to_during_the_run_verifies_against_the_snapshots_bracket() {
    let mut config = snapferry_sandbox::SandboxConfig {
        domains: vec![source_domain(
            "shop-prod",
            vec![index("orders", 300), index("products", 50)],
        )],
        ..Default::default()
    };
    config.seed_data.insert(
        "shop-prod".into(),
        snapferry_sandbox::SeedData {
            writers: vec![snapferry_sandbox::SeedWriter {
                index: "orders".into(),
                docs_per_minute: 600.0,
            }],
            ..Default::default()
        },
    );
    let world = World::start_with(config);
    world.plan("snapferry.yaml", PLAN);
    world.run_ok(&["apply", "--auto-approve"], 0);
    let state = world.state(".snapferry/shop.state.json");
    let verify = &state["nodes"]["verify/shop"]["outputs"];
    assert_eq!(
        verify["compared_with"]["known"],
        "the counts of shop-prod just before and just after the snapshot",
        "{verify}"
    );
    let bracket = &state["nodes"]["snapshot/shop"]["outputs"]["documents"]["known"]["orders"];
    let (lo, hi) = (bracket[0].as_u64().unwrap(), bracket[1].as_u64().unwrap());
    let copied = user_indices(&world.counts("shop-copy"));
    let orders = copied.iter().find(|(i, _)| i == "orders").unwrap().1;
    assert!(
        lo >= 300 && lo <= orders && orders <= hi,
        "{lo} ≤ {orders} ≤ {hi}"
    );
    // The premise: the source moved on after the snapshot, so its current count would fail.
    let now = user_indices(&world.counts("shop-prod"));
    let source_now = now.iter().find(|(i, _)| i == "orders").unwrap().1;
    assert!(
        source_now > orders,
        "the source was not written to: {source_now}"
    );
}

/// A target missing documents still fails verify, naming the index, its count and the bracket.
#[test]
fn a_target_missing_documents_fails_verify_naming_the_index_and_the_bracket() {
    let world = World::start(
        vec![source_domain("shop-prod", vec![index("orders", 300)])],
        vec![],
    );
    world.plan("snapferry.yaml", PLAN);
    world.run_ok(&["apply", "--auto-approve", "--target", "restore/shop"], 0);
    let target = world.domain("shop-copy");
    world.rt.block_on(async {
        for id in 0..10 {
            target
                .http()
                .send(
                    http::Method::POST,
                    "/_bulk",
                    Some(
                        &serde_json::json!({"delete": {"_index": "orders", "_id": id.to_string()}}),
                    ),
                )
                .await
                .unwrap();
        }
    });
    let out = world.run_ok(&["apply", "--auto-approve"], 1);
    assert!(
        flat(&out).contains(
            "document counts on shop-copy lie outside what the snapshot can hold (the source \
             shop-prod's counts just before and after the snapshot): orders: 290 documents, \
             source orders had 300 before the snapshot and 300 after it"
        ),
        "{out}"
    );
}

/// Index settings the target cannot satisfy leave shards unassigned: the restore never
/// completes and `_recovery` lists nothing for them (REAL-AWS.md, "Restore and recovery"). The
/// apply stops with the allocation explanation (index, shard, the deciders' reasons) instead of
/// waiting until a timeout.
#[test]
fn a_restore_whose_shards_cannot_be_assigned_is_reported_with_the_allocation_explanation() {
    let world = World::start(
        vec![source_domain("shop-prod", vec![index("orders", 30)])],
        vec![],
    );
    let plan = PLAN.replace(
        "restore:\n",
        "restore:\n  index_settings:\n    index.routing.allocation.require.box_type: warm\n",
    );
    assert_ne!(plan, PLAN);
    world.plan("snapferry.yaml", &plan);
    let out = flat(&world.run_ok(&["apply", "--auto-approve"], 1));
    assert!(
        out.contains("shard 0 of index orders cannot be assigned on the target, so its restore can never finish: cannot allocate because allocation is not permitted to any of the nodes (filter: node does not match index setting [index.routing.allocation.require] filters [box_type:\"warm\"])"),
        "{out}"
    );
}

/// A closed index fails a snapshot that is not `partial`, and a snapshot cannot mix hot and
/// UltraWarm indices (REAL-AWS.md, "Snapshots"): both are left out of the selection and the
/// plan says which and why. A data stream's backing indices (`.ds-<stream>-<generation>`) are
/// data, not system indices: `*` selects them and they are restored with their stream.
#[test]
fn closed_and_warm_indices_are_left_out_with_a_note_and_data_streams_are_copied() {
    let mut config = snapferry_sandbox::SandboxConfig {
        domains: vec![source_domain(
            "shop-prod",
            vec![
                index("orders", 40),
                index("archive", 10),
                index("old-logs", 20),
            ],
        )],
        ..Default::default()
    };
    config.seed_data.insert(
        "shop-prod".into(),
        snapferry_sandbox::SeedData {
            closed: vec!["archive".into()],
            warm: vec!["old-logs".into()],
            data_streams: vec![snapferry_sandbox::SeedDataStream {
                name: "events".into(),
                generations: 2,
                generate: 5,
            }],
            ..Default::default()
        },
    );
    let world = World::start_with(config);
    world.plan("snapferry.yaml", PLAN);
    let plan = world.run_ok(&["plan"], 0);
    for line in [
        "data_streams: [\"events\"]",
        "left_out.closed: \"archive (closed: a snapshot that is not partial fails on a closed index; open them to copy them)\"",
        "left_out.warm: \"old-logs (UltraWarm: a snapshot cannot mix hot and warm indices; migrate them to hot to copy them)\"",
    ] {
        assert!(plan.contains(line), "missing {line:?} in:\n{plan}");
    }
    world.run_ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        world
            .counts("shop-copy")
            .into_iter()
            .filter(|(i, _)| !i.starts_with('.') || i.starts_with(".ds-"))
            .collect::<Vec<_>>(),
        vec![
            (".ds-events-000001".to_owned(), 5),
            (".ds-events-000002".to_owned(), 5),
            ("orders".to_owned(), 40),
        ]
    );
    let streams: serde_json::Value = world
        .rt
        .block_on(world.domain("shop-copy").http().send_json(
            http::Method::GET,
            "/_data_stream/events",
            None,
        ))
        .unwrap();
    assert_eq!(streams["data_streams"][0]["name"], "events", "{streams}");
}
