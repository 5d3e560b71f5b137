//! End to end: `apply --json` streams machine-readable lines on stdout — the plan, one object
//! per step event, then a summary — and nothing else, so a bot can read it line by line.

use crate::common;

use common::{World, index, source_domain};
use serde_json::Value;

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

/// Every stdout line of a run, each parsed as JSON (a line that is not JSON fails the test).
fn json_lines(world: &World, args: &[&str], code: i32) -> Vec<Value> {
    let out = world.run(args);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}\n{stdout}"))
        })
        .collect()
}

#[test]
fn apply_json_streams_the_plan_every_event_and_a_summary() {
    let world = World::start(
        vec![source_domain(
            "shop-prod",
            vec![index("products", 300), index("orders", 500)],
        )],
        vec![],
    );
    world.plan("snapferry.yaml", PLAN);

    let lines = json_lines(&world, &["apply", "--auto-approve", "--json"], 0);
    let (first, last) = (&lines[0], lines.last().unwrap());
    assert_eq!(first["type"], "plan");
    assert_eq!(first["format_version"], 1);
    assert_eq!(first["plan"], "shop");
    assert_eq!(first["nodes"].as_array().unwrap().len(), 8);
    assert_eq!(first["summary"]["create"], 8);

    assert_eq!(last["type"], "summary");
    assert_eq!(last["format_version"], 1);
    assert_eq!(last["outcome"], "complete");
    assert_eq!(last["applied"].as_array().unwrap().len(), 8);
    assert_eq!(last["failed"], serde_json::json!([]));
    assert_eq!(last["stale"], serde_json::json!([]));

    let events = &lines[1..lines.len() - 1];
    assert!(!events.is_empty());
    for event in events {
        assert_eq!(event["type"], "event", "{event}");
        assert!(event["node"].is_string(), "{event}");
        let at = event["at"].as_str().unwrap();
        chrono::DateTime::parse_from_rfc3339(at).unwrap_or_else(|e| panic!("{at}: {e}"));
    }
    let of = |name: &str| -> Vec<&str> {
        let mut nodes: Vec<&str> = events
            .iter()
            .filter(|e| e["event"] == name)
            .map(|e| e["node"].as_str().unwrap())
            .collect();
        nodes.sort_unstable();
        nodes
    };
    let mut applied: Vec<&str> = last["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    applied.sort_unstable();
    assert_eq!(of("started"), applied, "each node starts once");
    assert_eq!(of("finished"), applied, "each node finishes once");
    // Each node's own events come in order: started first, finished last.
    for node in &applied {
        let mine: Vec<&str> = events
            .iter()
            .filter(|e| e["node"] == *node)
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(mine.first(), Some(&"started"), "{node}: {mine:?}");
        assert_eq!(mine.last(), Some(&"finished"), "{node}: {mine:?}");
    }

    // Up to date: the plan, then a summary saying so; still only JSON.
    let lines = json_lines(&world, &["apply", "--auto-approve", "--json"], 0);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["type"], "plan");
    assert_eq!(lines[1]["outcome"], "up_to_date");
}

#[test]
fn apply_json_without_a_terminal_or_auto_approve_prints_only_the_plan_and_refuses() {
    let world = World::start(
        vec![source_domain("shop-prod", vec![index("orders", 10)])],
        vec![],
    );
    world.plan("snapferry.yaml", PLAN);
    let out = world.run(&["apply", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert_eq!(lines[0]["type"], "plan");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("refusing to apply without confirmation: standard input is not a terminal")
    );
    assert_eq!(world.mutating_calls(), vec![]);
}
