//! How long `validate` takes: on a large valid plan (parse + check + graph of a generated
//! 200-replication plan, target well under 100 ms) and on hostile ones that must be refused
//! fast (issue #15, target under a second each): a 5 MB plan of 100,000 unknown keys (a
//! capped report), 100,000 nested brackets and as many nested block lists (the depth limit),
//! 100,000 duplicate keys and an alias "billion laughs". Prints figures (no harness):
//! `cargo bench -p snapferry-plan --bench validate`; `docs/performance.md` records them.

use std::hint::black_box;
use std::time::{Duration, Instant};

const HEAD: &str = "version: 1\nname: shop\nregion: us-east-1\nbucket:\n  name: acme-snapshots\nsource:\n  domain: shop-prod\ntarget:\n  domain: shop-copy\n";

fn fleet(replications: usize) -> String {
    let mut text = String::from(
        "version: 1\nname: big-fleet\nregion: us-east-1\nbucket:\n  name: acme-fleet-snapshots\n  base_path: fleet\nreplications:\n",
    );
    for i in 0..replications {
        text.push_str(&format!(
            "  - name: r{i}\n    source: {{ domain: src-{i}, engine_version: OpenSearch_2.11 }}\n    target:\n      domain: dst-{i}\n      overrides:\n        engine_version: OpenSearch_2.13\n        cluster_config: {{ instance_type: r6g.large.search, instance_count: 2 }}\n    snapshot:\n      name: \"{{name}}-{{date}}\"\n      indices: [\"logs-*\", \"-logs-tmp-*\"]\n    restore:\n      rename_pattern: \"(.+)\"\n      rename_replacement: \"copy-$1\"\n      on_conflict: rename\n"
        ));
    }
    text
}

/// 100,000 unknown keys, 5 MB.
fn unknown_keys() -> String {
    let mut text = HEAD.to_owned();
    for i in 0..100_000 {
        text.push_str(&format!(
            "unknown_key_{i:06}: a value of twenty-nine chars.\n"
        ));
    }
    text
}

/// The same key 100,000 times in one mapping.
fn duplicate_keys() -> String {
    let mut text = HEAD.to_owned();
    text.push_str("restore:\n  index_settings:\n");
    for _ in 0..100_000 {
        text.push_str("    index.number_of_replicas: 0\n");
    }
    text
}

fn flow_nesting() -> String {
    format!(
        "{HEAD}restore: {{ indices: {}{} }}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    )
}

fn block_nesting() -> String {
    format!(
        "{HEAD}restore:\n  indices:\n    {}x\n",
        "- ".repeat(100_000)
    )
}

/// Nine levels of ten aliases: 10^9 values if expanded.
fn alias_bomb() -> String {
    let mut text =
        format!("{HEAD}repository:\n  settings:\n    l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        let p = i - 1;
        text.push_str(&format!(
            "    l{i}: &l{i} [*l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}]\n"
        ));
    }
    text
}

/// Median, mean and max of `runs` timings of `f`.
fn measure(runs: usize, mut f: impl FnMut()) -> (Duration, Duration, Duration) {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        f();
        times.push(start.elapsed());
    }
    times.sort();
    let mean = times.iter().sum::<Duration>() / runs as u32;
    (times[runs / 2], mean, times[runs - 1])
}

fn main() {
    let text = fleet(200);
    let mut nodes = 0;
    let (median, mean, max) = measure(50, || {
        let plan = snapferry_plan::parse("fleet.yaml", black_box(&text))
            .expect("the generated plan is valid");
        let graph = plan.graph();
        nodes = black_box(graph.topological_order()).len();
    });
    println!(
        "validate 200 replications ({} bytes, {nodes} nodes): median {median:?}, mean {mean:?}, max {max:?} over 50 runs (target < 100ms)",
        text.len()
    );

    for (what, text) in [
        ("100,000 unknown keys", unknown_keys()),
        ("100,000 duplicate keys", duplicate_keys()),
        ("100,000 nested brackets", flow_nesting()),
        ("100,000 nested block lists", block_nesting()),
        ("alias bomb (10^9 values)", alias_bomb()),
    ] {
        let mut report = String::new();
        let (median, mean, max) = measure(10, || {
            let errors = snapferry_plan::parse("hostile.yaml", black_box(&text))
                .expect_err("a hostile plan is refused");
            report = format!("{} listed, {} more", errors.errors.len(), errors.omitted);
            black_box(errors);
        });
        println!(
            "refuse {what} ({} bytes; {report}): median {median:?}, mean {mean:?}, max {max:?} over 10 runs (target < 1s)",
            text.len()
        );
    }
}
