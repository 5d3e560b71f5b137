//! Properties of the step graph over random fleets: it is acyclic, the
//! topological order holds every node once with every edge pointing forward,
//! shared nodes appear once, no target domain waits for a snapshot, and the
//! critical path is bounded by the longest node and the sum of all nodes.

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;

/// A fleet plan: replication `i` copies source `sources[i]` into `dst-i`.
fn fleet(sources: &[u8], verify: &[bool]) -> String {
    let mut text = String::from(
        "version: 1\nname: fleet\nregion: us-east-1\nbucket: { name: acme-fleet }\nreplications:\n",
    );
    for (i, (s, v)) in sources.iter().zip(verify).enumerate() {
        text.push_str(&format!(
            "  - name: r{i}\n    source: {{ domain: src-{s} }}\n    target: {{ domain: dst-{i} }}\n    verify: {{ enabled: {v} }}\n"
        ));
    }
    text
}

proptest! {
    #[test]
    fn random_fleets_give_sound_graphs(
        sources in prop::collection::vec(0u8..4, 1..12),
        verify_seed in prop::collection::vec(any::<bool>(), 12),
        secs in prop::collection::vec(1u64..3600, 64),
    ) {
        let verify = &verify_seed[..sources.len()];
        let plan = snapferry_plan::parse("fleet.yaml", &fleet(&sources, verify)).expect("generated fleets are valid");
        let graph = plan.graph();
        let order = graph.topological_order();
        prop_assert_eq!(order.len(), graph.len(), "acyclic: every node is ordered");
        let pos: HashMap<_, _> = order.iter().enumerate().map(|(i, id)| (id.clone(), i)).collect();
        prop_assert_eq!(pos.len(), graph.len(), "each node once");
        for (a, b) in graph.edges() {
            prop_assert!(pos[&a] < pos[&b], "{} -> {} points backwards", a, b);
            prop_assert!(!(a.kind() == "snapshot" && b.kind() == "domain"));
        }
        let distinct_sources = sources.iter().collect::<std::collections::BTreeSet<_>>().len();
        let count = |kind: &str| graph.nodes().filter(|n| n.id.kind() == kind).count();
        prop_assert_eq!(count("role"), 1);
        prop_assert_eq!(count("bucket_policy"), 1);
        prop_assert_eq!(count("repository"), distinct_sources + sources.len());
        prop_assert_eq!(count("verify"), verify.iter().filter(|v| **v).count());

        let duration = |i: usize| Duration::from_secs(secs[i % secs.len()]);
        let index: HashMap<_, _> = graph.nodes().enumerate().map(|(i, n)| (n.id.clone(), i)).collect();
        let path = graph.critical_path(|n| duration(index[&n.id]));
        let sum: Duration = (0..graph.len()).map(duration).sum();
        let max = (0..graph.len()).map(duration).max().unwrap();
        prop_assert!(path.total <= sum && path.total >= max);
        let along: Duration = path.nodes.iter().map(|id| duration(index[id])).sum();
        prop_assert_eq!(along, path.total, "the path's nodes add up to its total");
        for pair in path.nodes.windows(2) {
            prop_assert!(graph.dependents(&pair[0]).contains(&pair[1]), "the path follows edges");
        }
    }
}
