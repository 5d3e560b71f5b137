//! End to end: the recurring refresh of issue #19. `restore.strategy: alias_swap` migrates a
//! target of plain indices to aliases over generations and refreshes it with no downtime (a
//! reader loop querying every alias during the apply sees no failed request and only whole
//! generations), leaves an index unchanged since its generation in place, and `snapshot.keep`
//! leaves exactly the newest snapferry snapshots in the repository, plus what it did not take.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::Method;
use serde_json::json;

use crate::common;

use common::{World, index, source_domain};

const IN_PLACE: &str = r#"
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

fn alias_swap(extra: &str) -> String {
    format!("{IN_PLACE}  strategy: alias_swap\n{extra}")
}

fn shop() -> World {
    World::start(
        vec![source_domain(
            "shop-prod",
            vec![
                index("products", 400),
                index("orders", 600),
                index("customers", 200),
            ],
        )],
        vec![],
    )
}

const ALIASES: [&str; 3] = ["customers", "orders", "products"];

/// Per index of the target, the aliases it carries.
fn aliases(world: &World) -> BTreeMap<String, BTreeSet<String>> {
    let client = world.domain("shop-copy");
    world.rt.block_on(async {
        client
            .aliases()
            .await
            .unwrap()
            .into_iter()
            .filter(|(i, _)| !i.starts_with('.'))
            .map(|(i, a)| (i, a.into_keys().collect()))
            .collect()
    })
}

/// A reader querying every alias in a loop until stopped: every answer's count (or the failure).
struct Reader {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<(String, Result<u64, String>)>>,
}

impl Reader {
    fn start(world: &World) -> Reader {
        let client = world.domain("shop-copy");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = world.rt.spawn(async move {
            let mut seen = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                for alias in ALIASES {
                    let answer = client.count(alias).await.map_err(|e| e.to_string());
                    seen.push((alias.to_owned(), answer));
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            seen
        });
        Reader { stop, task }
    }

    fn finish(self, world: &World) -> Vec<(String, Result<u64, String>)> {
        self.stop.store(true, Ordering::Relaxed);
        world.rt.block_on(self.task).unwrap()
    }
}

fn operations(world: &World) -> Vec<(String, String)> {
    world
        .mutating_calls()
        .into_iter()
        .filter(|r| r.service == "es-data")
        .map(|r| (r.operation, r.path))
        .collect()
}

#[test]
fn an_alias_swap_refresh_migrates_plain_indices_then_swaps_generations_under_a_reader() {
    let world = shop();
    world.plan("snapferry.yaml", IN_PLACE);
    world.run_ok(
        &["apply", "--auto-approve", "--now", "2026-11-01T03:00:00Z"],
        0,
    );
    assert!(
        aliases(&world).contains_key("orders"),
        "a plain index first"
    );

    // A source alias must keep working on the target.
    let source = world.domain("shop-prod");
    world.rt.block_on(async {
        source
            .update_aliases(&[json!({"add": {"index": "orders", "alias": "sales"}})])
            .await
            .unwrap();
    });
    world.add_documents("shop-prod", "orders", 100_000, 30);
    world.plan("snapferry.yaml", &alias_swap(""));
    let plan = world.run_ok(
        &[
            "plan",
            "--detailed-exitcode",
            "--now",
            "2026-11-08T03:00:00Z",
        ],
        2,
    );
    for line in [
        "  ~ restore/shop (update)",
        "      indices.orders: \"index orders\" → \"alias → orders~shop-2026-11-08 (restored from orders); orders removed in the swap\"",
        "      indices.products: \"index products\" → \"alias → products~shop-2026-11-08 (restored from products); products removed in the swap\"",
        "      strategy: \"alias_swap\"",
    ] {
        assert!(plan.contains(line), "missing {line:?} in:\n{plan}");
    }

    world.sandbox().reset_log();
    let reader = Reader::start(&world);
    world.run_ok(
        &["apply", "--auto-approve", "--now", "2026-11-08T03:00:00Z"],
        0,
    );
    let seen = reader.finish(&world);
    assert_no_downtime(
        &seen,
        &[
            ("orders", &[600, 630]),
            ("products", &[400]),
            ("customers", &[200]),
        ],
    );

    let held = aliases(&world);
    let expect = |i: &str, a: &[&str]| {
        assert_eq!(
            held.get(i).cloned().unwrap_or_default(),
            a.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>(),
            "{held:?}"
        )
    };
    expect("orders~shop-2026-11-08", &["orders", "sales"]);
    expect("products~shop-2026-11-08", &["products"]);
    expect("customers~shop-2026-11-08", &["customers"]);
    assert_eq!(held.len(), 3, "the plain indices are gone: {held:?}");
    // One restore, one atomic swap: nothing deleted outside it.
    let ops = operations(&world);
    let swaps: Vec<&(String, String)> = ops.iter().filter(|(o, _)| o == "UpdateAliases").collect();
    assert_eq!(swaps.len(), 1, "{ops:?}");
    assert!(!ops.iter().any(|(o, _)| o == "DeleteIndex"), "{ops:?}");
    let client = world.domain("shop-copy");
    assert_eq!(world.rt.block_on(client.count("sales")).unwrap(), 630);

    // The same day again: nothing to do.
    world.sandbox().reset_log();
    world.run_ok(
        &[
            "plan",
            "--detailed-exitcode",
            "--now",
            "2026-11-08T04:00:00Z",
        ],
        0,
    );
    world.run_ok(
        &["apply", "--auto-approve", "--now", "2026-11-08T04:00:00Z"],
        0,
    );
    assert_eq!(operations(&world), vec![]);

    // A week later only orders changed: products and customers keep their generation.
    world.add_documents("shop-prod", "orders", 200_000, 30);
    world.sandbox().reset_log();
    let reader = Reader::start(&world);
    world.run_ok(
        &["apply", "--auto-approve", "--now", "2026-11-15T03:00:00Z"],
        0,
    );
    let seen = reader.finish(&world);
    assert_no_downtime(
        &seen,
        &[
            ("orders", &[630, 660]),
            ("products", &[400]),
            ("customers", &[200]),
        ],
    );
    let held = aliases(&world);
    assert_eq!(
        held.keys().cloned().collect::<Vec<_>>(),
        [
            "customers~shop-2026-11-08",
            "orders~shop-2026-11-15",
            "products~shop-2026-11-08"
        ],
        "{held:?}"
    );
    let restores: Vec<String> = world
        .sandbox()
        .request_log()
        .into_iter()
        .filter(|r| r.operation == "RestoreSnapshot")
        .map(|r| r.path)
        .collect();
    assert_eq!(restores.len(), 1, "{restores:?}");
    let state = world.state(".snapferry/shop.state.json");
    let generations = &state["nodes"]["restore/shop"]["outputs"]["generations"]["known"];
    assert_eq!(
        generations["products"]["snapshot"], "shop-2026-11-08",
        "{generations}"
    );
    assert_eq!(generations["orders"]["documents"], 660, "{generations}");
}

/// Every answer succeeded, and each alias only ever counted one of its whole generations.
fn assert_no_downtime(seen: &[(String, Result<u64, String>)], expected: &[(&str, &[u64])]) {
    assert!(seen.len() > 30, "the reader ran: {} answers", seen.len());
    let failed: Vec<_> = seen.iter().filter(|(_, r)| r.is_err()).collect();
    assert!(failed.is_empty(), "{} failed: {failed:?}", failed.len());
    for (alias, counts) in expected {
        let distinct: BTreeSet<u64> = seen
            .iter()
            .filter(|(a, _)| a == alias)
            .map(|(_, r)| *r.as_ref().unwrap())
            .collect();
        assert!(
            distinct.iter().all(|c| counts.contains(c)),
            "{alias} was seen with {distinct:?}, generations hold {counts:?}"
        );
    }
}

#[test]
fn five_weekly_refreshes_with_keep_2_leave_the_two_newest_and_what_snapferry_did_not_take() {
    let world = shop();
    world.plan("snapferry.yaml", &alias_swap("snapshot:\n  keep: 2\n"));
    let weeks = [
        "2026-11-01",
        "2026-11-08",
        "2026-11-15",
        "2026-11-22",
        "2026-11-29",
    ];
    for (n, day) in weeks.iter().enumerate() {
        world.add_documents("shop-prod", "orders", 100_000 + 10 * n as u64, 10);
        let now = format!("{day}T03:00:00Z");
        if n == 2 {
            let plan = world.run_ok(&["plan", "--now", &now], 0);
            assert!(
                plan.contains("      snapshots.deleted: [\"shop-2026-11-01\"]"),
                "{plan}"
            );
        }
        world.run_ok(&["apply", "--auto-approve", "--now", &now], 0);
        if n == 0 {
            // Someone else's snapshot in the same repository, and an automated-looking one.
            let source = world.domain("shop-prod");
            world.rt.block_on(async {
                for name in ["before-migration", "shop-2026-10-25"] {
                    source
                        .http()
                        .send(
                            Method::PUT,
                            &format!("/_snapshot/snapferry-shop/{name}?wait_for_completion=true"),
                            Some(&json!({"indices": "customers"})),
                        )
                        .await
                        .unwrap();
                }
            });
        }
    }
    let source = world.domain("shop-prod");
    let mut names: Vec<String> = world
        .rt
        .block_on(source.list_snapshots("snapferry-shop"))
        .unwrap()
        .into_iter()
        .map(|s| s.snapshot)
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "before-migration",
            "shop-2026-10-25",
            "shop-2026-11-22",
            "shop-2026-11-29"
        ]
    );
    let state = world.state(".snapferry/shop.state.json");
    assert_eq!(
        state["nodes"]["restore/shop"]["outputs"]["snapshots"]["known"],
        json!(["shop-2026-11-22", "shop-2026-11-29"])
    );
    // The target still answers for every alias with the newest generation's counts.
    let client = world.domain("shop-copy");
    assert_eq!(world.rt.block_on(client.count("orders")).unwrap(), 650);
}

#[test]
fn planning_a_refresh_of_a_thousand_indices_costs_a_constant_number_of_requests() {
    let indices = (0..1000)
        .map(|i| index(&format!("logs-{i:04}"), 1))
        .collect();
    let world = World::start(vec![source_domain("shop-prod", indices)], vec![]);
    world.plan("snapferry.yaml", &alias_swap("snapshot:\n  keep: 2\n"));
    world.run_ok(
        &["apply", "--auto-approve", "--now", "2026-11-01T03:00:00Z"],
        0,
    );
    assert_eq!(aliases(&world).len(), 1000);
    world.sandbox().reset_log();
    let started = std::time::Instant::now();
    let plan = world.run_ok(
        &[
            "plan",
            "--detailed-exitcode",
            "--now",
            "2026-11-08T03:00:00Z",
        ],
        2,
    );
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        plan.contains("      indices.logs-0999: \"alias → logs-0999~shop-2026-11-01\" → \"alias → logs-0999~shop-2026-11-08 (restored from logs-0999); logs-0999~shop-2026-11-01 removed in the swap\""),
        "{plan}"
    );
    let data_plane: Vec<String> = world
        .sandbox()
        .request_log()
        .into_iter()
        .filter(|r| r.service == "es-data")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    println!(
        "figure: plan of a 1,000-index alias_swap refresh: {seconds:.2}s, {} data-plane requests",
        data_plane.len()
    );
    assert!(data_plane.len() <= 20, "{data_plane:#?}");
    assert!(
        data_plane.iter().all(|l| l.len() < 4000),
        "a request line over 4 KB"
    );
}

#[test]
fn an_alias_swap_refresh_attaches_each_new_generation_to_its_sources_ism_policy() {
    use snapferry_aws::cluster_meta::Capabilities;
    let caps = Capabilities::of("OpenSearch_2.11".parse().unwrap());
    let mut config = snapferry_sandbox::SandboxConfig {
        domains: vec![source_domain(
            "shop-prod",
            vec![index("logs", 40), index("orders", 25)],
        )],
        ..snapferry_sandbox::SandboxConfig::default()
    };
    let seed: snapferry_sandbox::SeedData = serde_json::from_value(json!({
        "ism_policies": {
            "logs-retention": {"policy": {"description": "delete old logs", "default_state": "hot",
                "states": [
                    {"name": "hot", "actions": [], "transitions": [{"state_name": "delete", "conditions": {"min_index_age": "30d"}}]},
                    {"name": "delete", "actions": [{"delete": {}}], "transitions": []}
                ]}}
        }
    }))
    .unwrap();
    config.seed_data.insert("shop-prod".into(), seed);
    let world = World::start_with(config);
    let source = world.domain("shop-prod");
    let refused = world
        .rt
        .block_on(source.ism_set(&caps, "logs", Some("logs-retention")))
        .unwrap();
    assert_eq!(refused, None);
    world.plan(
        "snapferry.yaml",
        &alias_swap("metadata:\n  ism_policies: [\"*\"]\n"),
    );
    let managed = |indices: &[&str]| {
        let target = world.domain("shop-copy");
        let names: Vec<String> = indices.iter().map(|s| s.to_string()).collect();
        world
            .rt
            .block_on(target.ism_managed(&caps, &names))
            .unwrap()
    };

    world.run_ok(
        &["apply", "--auto-approve", "--now", "2026-11-01T03:00:00Z"],
        0,
    );
    let first = managed(&["logs~shop-2026-11-01", "orders~shop-2026-11-01"]);
    assert_eq!(
        first.get("logs~shop-2026-11-01"),
        Some(&Some("logs-retention".to_owned())),
        "{first:?}"
    );
    assert_eq!(
        first.get("orders~shop-2026-11-01"),
        Some(&None),
        "{first:?}"
    );

    // A week later logs changed: its new generation is attached; orders keeps its generation.
    world.add_documents("shop-prod", "logs", 100_000, 5);
    let plan = world.run_ok(&["plan", "--now", "2026-11-08T03:00:00Z"], 0);
    assert!(plan.contains("ism_attach/shop"), "{plan}");
    world.run_ok(
        &["apply", "--auto-approve", "--now", "2026-11-08T03:00:00Z"],
        0,
    );
    assert_eq!(
        aliases(&world).keys().cloned().collect::<Vec<_>>(),
        ["logs~shop-2026-11-08", "orders~shop-2026-11-01"]
    );
    let second = managed(&["logs~shop-2026-11-08"]);
    assert_eq!(
        second.get("logs~shop-2026-11-08"),
        Some(&Some("logs-retention".to_owned())),
        "{second:?}"
    );
    // Nothing left to attach: a plan made now is clean.
    world.run_ok(
        &[
            "plan",
            "--detailed-exitcode",
            "--now",
            "2026-11-08T04:00:00Z",
        ],
        0,
    );
}
