//! How long `validate` takes on a large plan: parse + check + graph of a
//! generated 200-replication plan. Target: well under 100 ms. Prints figures
//! (no harness): `cargo bench -p snapferry-plan --bench validate`.

use std::hint::black_box;
use std::time::{Duration, Instant};

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

fn main() {
    let text = fleet(200);
    let runs = 50;
    let mut times = Vec::with_capacity(runs);
    let mut nodes = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let plan = snapferry_plan::parse("fleet.yaml", black_box(&text))
            .expect("the generated plan is valid");
        let graph = plan.graph();
        nodes = black_box(graph.topological_order()).len();
        times.push(start.elapsed());
    }
    times.sort();
    let median = times[runs / 2];
    let max = times[runs - 1];
    let mean = times.iter().sum::<Duration>() / runs as u32;
    println!(
        "validate 200 replications ({} bytes, {nodes} nodes): median {median:?}, mean {mean:?}, max {max:?} over {runs} runs (target < 100ms)",
        text.len()
    );
}
