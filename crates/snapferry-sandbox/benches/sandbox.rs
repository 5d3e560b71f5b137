//! Benchmarks the sandbox's two promises: start-up to a ready, seeded domain in well under a
//! second, and a snapshot + restore of 10 indices x 10,000 documents through the bucket in
//! seconds. Prints figures; `cargo bench -p snapferry-sandbox`. Also what a poll costs at 1,000
//! indices (`_cat/indices`, `_snapshot/<repo>/<snap>/_status`, `_recovery`), and how much less
//! an incremental snapshot after 5% of the documents changed takes.

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::time::Instant;

use serde_json::json;
use snapferry_sandbox::{SandboxConfig, SeedDomain, SeedIndex};

fn seeded(indices: usize, docs: u64) -> SandboxConfig {
    let mut config = common::fast_config();
    config.domains = vec![
        SeedDomain {
            name: "source".into(),
            engine_version: "OpenSearch_2.11".into(),
            ready: true,
            kibana: true,
            vpc: false,
            indices: (0..indices)
                .map(|i| SeedIndex {
                    name: format!("index-{i}"),
                    documents: vec![],
                    generate: docs,
                    settings: None,
                    mappings: None,
                })
                .collect(),
        },
        SeedDomain {
            name: "target".into(),
            engine_version: "OpenSearch_2.11".into(),
            ready: true,
            kibana: true,
            vpc: false,
            indices: vec![],
        },
    ];
    config
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let t = Instant::now();
        let h = common::start(seeded(1, 100)).await;
        let d = common::DomainClient::new(&h, &h.domain_endpoint("source").expect("ready"));
        let (status, _) = d.call("GET", "/_cluster/health", None).await;
        assert_eq!(status, 200);
        println!(
            "start-up to a ready seeded domain answering _cluster/health: {:?}",
            t.elapsed()
        );
        h.shutdown().await;

        let t = Instant::now();
        let h = common::start(seeded(10, 10_000)).await;
        println!(
            "start-up with 10 indices x 10,000 documents seeded: {:?}",
            t.elapsed()
        );
        let source = common::DomainClient::new(&h, &h.domain_endpoint("source").expect("ready"));
        let target = common::DomainClient::new(&h, &h.domain_endpoint("target").expect("ready"));
        common::repository(&h, &source, "repo", "bench").await;
        common::repository(&h, &target, "repo", "bench").await;
        let t = Instant::now();
        let (status, body) = source
            .call(
                "PUT",
                "/_snapshot/repo/s1?wait_for_completion=true",
                Some(json!({"indices": "index-*"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let snapshot = t.elapsed();
        let t = Instant::now();
        let (status, body) = target
            .call(
                "POST",
                "/_snapshot/repo/s1/_restore?wait_for_completion=true",
                Some(json!({"indices": "index-*"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let restore = t.elapsed();
        let (_, count) = target.call("GET", "/index-*/_count", None).await;
        assert_eq!(count["count"], 100_000);
        println!("snapshot of 10 indices x 10,000 documents: {snapshot:?}");
        println!("restore of the same on another domain: {restore:?}");
        println!(
            "replication total (snapshot + restore): {:?}",
            snapshot + restore
        );
        h.shutdown().await;

        let h = common::start(seeded(1000, 3)).await;
        let source = common::DomainClient::new(&h, &h.domain_endpoint("source").expect("ready"));
        let target = common::DomainClient::new(&h, &h.domain_endpoint("target").expect("ready"));
        common::repository(&h, &source, "repo", "wide").await;
        common::repository(&h, &target, "repo", "wide").await;
        let (status, body) = source
            .call(
                "PUT",
                "/_snapshot/repo/s1?wait_for_completion=true",
                Some(json!({"indices": "index-*"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = target
            .call(
                "POST",
                "/_snapshot/repo/s1/_restore?wait_for_completion=true",
                Some(json!({"indices": "index-*"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        for (domain, path) in [
            (&source, "/_cat/indices?format=json"),
            (&target, "/_snapshot/repo/s1/_status"),
            (&target, "/index-*/_recovery"),
        ] {
            let t = Instant::now();
            let (status, _) = domain.call("GET", path, None).await;
            assert_eq!(status, 200);
            println!("GET {path} at 1,000 indices: {:?}", t.elapsed());
        }
        h.shutdown().await;

        // 1 simulated second = 1 ms, so `duration_in_millis` reads as simulated seconds.
        let mut config = seeded(1, 20_000);
        config.time_scale = 0.001;
        let h = common::start(config).await;
        let source = common::DomainClient::new(&h, &h.domain_endpoint("source").expect("ready"));
        common::repository(&h, &source, "repo", "incremental").await;
        let snapshot = |name: &'static str| {
            let source = &source;
            async move {
                let (status, body) = source
                    .call(
                        "PUT",
                        &format!("/_snapshot/repo/{name}?wait_for_completion=true"),
                        Some(json!({"indices": "index-0"})),
                    )
                    .await;
                assert_eq!(status, 200, "{body}");
                body["snapshot"]["duration_in_millis"].as_i64().unwrap_or(0)
            }
        };
        let full = snapshot("full").await;
        let changed: Vec<(String, serde_json::Value)> = (0..1000)
            .map(|i| {
                let n = i * 20;
                (n.to_string(), json!({"n": n, "title": format!("document {n}!")}))
            })
            .collect();
        source.bulk("index-0", &changed).await;
        let incremental = snapshot("incremental").await;
        let (_, st) = source
            .call("GET", "/_snapshot/repo/full,incremental/_status", None)
            .await;
        let bytes = |i: usize| st["snapshots"][i]["stats"]["incremental"]["size_in_bytes"].as_u64();
        println!(
            "snapshot after 5% of 20,000 documents changed: {:?} of {:?} bytes copied, simulated {incremental} s vs {full} s for the full copy (5 s of each fixed, `latencies.snapshot_secs`)",
            bytes(1),
            bytes(0)
        );
        h.shutdown().await;
    });
}
