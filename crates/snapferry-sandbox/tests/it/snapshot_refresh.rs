//! A recurring refresh as OpenSearch prices it: snapshots into the same repository are
//! incremental (only files not already there are copied, `_status` says so, and the simulated
//! duration is a small fixed part plus the bytes uploaded), deleting a snapshot keeps the files
//! another one references, and a restore copies the whole index, priced by its bytes.

use crate::common;

use common::*;
use serde_json::{Value, json};

fn docs(n: usize, tag: &str) -> Vec<(String, Value)> {
    (0..n)
        .map(|i| {
            (
                format!("doc-{i}"),
                json!({"n": i, "tag": tag, "body": "x".repeat(200)}),
            )
        })
        .collect()
}

async fn keys_under(
    h: &snapferry_sandbox::SandboxHandle,
    bucket: &str,
    prefix: &str,
) -> Vec<String> {
    let s3 = s3(h).await;
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .expect("ListObjectsV2");
        out.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return out;
        }
    }
}

#[tokio::test]
async fn a_second_snapshot_copies_only_what_changed_and_outlives_the_first() {
    let mut config = fast_config();
    // 1 ms per simulated second, and no fixed part: the duration is the upload's alone.
    config.time_scale = 0.001;
    config.latencies.snapshot_secs = 0.0;
    config.latencies.snapshot_secs_per_kib = 0.2;
    let h = start(config).await;
    let d = ready_domain(&h, "prod").await;
    let spec = Spec::load();
    let (status, _) = d.bulk("events", &docs(4000, "v1")).await;
    assert_eq!(status, 200);
    repository(&h, &d, "repo", "refresh").await;

    let (status, first) = d
        .call(
            "PUT",
            "/_snapshot/repo/week-1?wait_for_completion=true",
            Some(json!({"indices": "events"})),
        )
        .await;
    assert_eq!(
        (status, first["snapshot"]["state"].as_str()),
        (200, Some("SUCCESS")),
        "{first}"
    );

    // 5% of the documents change (200 of 4000).
    let changed: Vec<(String, Value)> = docs(200, "v2")
        .into_iter()
        .map(|(_, d)| {
            let n = d["n"].as_u64().unwrap() * 20;
            (
                format!("doc-{n}"),
                json!({"n": n, "tag": "v2", "body": "x".repeat(200)}),
            )
        })
        .collect();
    let (status, _) = d.bulk("events", &changed).await;
    assert_eq!(status, 200);
    let (status, second) = d
        .call(
            "PUT",
            "/_snapshot/repo/week-2?wait_for_completion=true",
            Some(json!({"indices": "events"})),
        )
        .await;
    assert_eq!(
        (status, second["snapshot"]["state"].as_str()),
        (200, Some("SUCCESS")),
        "{second}"
    );

    let (status, st) = d
        .call("GET", "/_snapshot/repo/week-1,week-2/_status", None)
        .await;
    assert_eq!(status, 200, "{st}");
    spec.response("snapshot", "snapshot.status@200", &st);
    let stats = |i: usize| st["snapshots"][i]["stats"].clone();
    let (s1, s2) = (stats(0), stats(1));
    assert_eq!(st["snapshots"][0]["snapshot"], "week-1");
    let inc1 = s1["incremental"]["size_in_bytes"].as_u64().unwrap();
    let inc2 = s2["incremental"]["size_in_bytes"].as_u64().unwrap();
    // The first copies everything: incremental is the total.
    assert!(inc1 > 4000 * 200, "{s1}");
    assert_eq!(s1["incremental"], s1["total"], "{s1}");
    assert_eq!(s1["incremental"]["file_count"], 1);
    // The second copies one new segment of the changed documents, about 5% of the first.
    let ratio = inc2 as f64 / inc1 as f64;
    assert!(
        (0.045..0.055).contains(&ratio),
        "incremental {inc2} of {inc1}: {ratio}"
    );
    assert_eq!(s2["incremental"]["file_count"], 1);
    assert_eq!(s2["total"]["file_count"], 2, "{s2}");
    assert_eq!(s2["total"]["size_in_bytes"].as_u64().unwrap(), inc1 + inc2);
    assert_eq!(
        st["snapshots"][1]["indices"]["events"]["stats"]["incremental"],
        s2["incremental"]
    );
    // Finished snapshots have processed everything: no `processed` block, as the server.
    assert!(s2.get("processed").is_none(), "{s2}");
    // The simulated duration follows the upload: 0.2 s per KiB, about 190 s for the first
    // and a twentieth of that for the second.
    let d1 = first["snapshot"]["duration_in_millis"].as_i64().unwrap();
    let d2 = second["snapshot"]["duration_in_millis"].as_i64().unwrap();
    let expected = |bytes: u64| (0.2 * bytes as f64 / 1024.0).floor() as i64;
    assert_eq!((d1, d2), (expected(inc1), expected(inc2)));
    assert!(d1 > 150, "{d1}");

    // The first goes; its files the second still references stay, so the second restores whole.
    let segments_before = keys_under(&h, "refresh", "snaps/shards/").await;
    assert_eq!(
        segments_before
            .iter()
            .filter(|k| k.ends_with(".seg"))
            .count(),
        2,
        "{segments_before:?}"
    );
    let (status, _) = d.call("DELETE", "/_snapshot/repo/week-1", None).await;
    assert_eq!(status, 200);
    let after = keys_under(&h, "refresh", "snaps/shards/").await;
    assert_eq!(after, segments_before, "a referenced segment was deleted");
    let (status, restored) = d
        .call(
            "POST",
            "/_snapshot/repo/week-2/_restore?wait_for_completion=true",
            Some(json!({"indices": "events", "rename_pattern": "(.+)", "rename_replacement": "$1-copy"})),
        )
        .await;
    assert_eq!(status, 200, "{restored}");
    let (_, count) = d.call("GET", "/events-copy/_count", None).await;
    assert_eq!(count["count"], 4000);
    let (_, hits) = d
        .call(
            "GET",
            "/events-copy/_search?size=10000",
            Some(json!({"query": {"match_all": {}}})),
        )
        .await;
    let v2 = hits["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["_source"]["tag"] == "v2")
        .count();
    assert_eq!(
        v2, 200,
        "the restored index holds the changed documents, not their old copies"
    );
    // A restore copies every file of the index, none reused.
    let (_, rec) = d.call("GET", "/events-copy/_recovery", None).await;
    let files = &rec["events-copy"]["shards"][0]["index"]["files"];
    assert_eq!(
        (files["total"].as_u64(), files["reused"].as_u64()),
        (Some(2), Some(0)),
        "{rec}"
    );
    let size = &rec["events-copy"]["shards"][0]["index"]["size"];
    assert_eq!(size["total_in_bytes"].as_u64(), Some(inc1 + inc2), "{rec}");

    // The last snapshot goes: no segment is left behind.
    let (status, _) = d.call("DELETE", "/_snapshot/repo/week-2", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        keys_under(&h, "refresh", "snaps/shards/").await,
        Vec::<String>::new()
    );
    assert_eq!(
        keys_under(&h, "refresh", "snaps/stats/").await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn a_recreated_index_is_copied_again_and_status_shows_progress() {
    let mut config = fast_config();
    config.time_scale = 0.01;
    config.latencies.snapshot_secs = 0.0;
    config.latencies.snapshot_secs_per_kib = 0.4;
    let h = start(config).await;
    let d = ready_domain(&h, "prod").await;
    let spec = Spec::load();
    d.bulk("logs", &docs(1000, "v1")).await;
    repository(&h, &d, "repo", "again").await;
    let (status, _) = d
        .call(
            "PUT",
            "/_snapshot/repo/one?wait_for_completion=true",
            Some(json!({"indices": "logs"})),
        )
        .await;
    assert_eq!(status, 200);
    // Same documents, new index (new UUID): its files are new files, as in OpenSearch.
    let (status, _) = d.call("DELETE", "/logs", None).await;
    assert_eq!(status, 200);
    d.bulk("logs", &docs(1000, "v1")).await;
    let (status, _) = d
        .call(
            "PUT",
            "/_snapshot/repo/two",
            Some(json!({"indices": "logs"})),
        )
        .await;
    assert_eq!(status, 200);
    // About 95 simulated seconds (0.4 s per KiB of some 240 KiB) = 0.95 s: while it runs,
    // `processed` trails `incremental`.
    let (status, st) = d.call("GET", "/_snapshot/repo/two/_status", None).await;
    assert_eq!(status, 200);
    spec.response("snapshot", "snapshot.status@200", &st);
    let s = &st["snapshots"][0]["stats"];
    assert_eq!(st["snapshots"][0]["state"], "STARTED");
    assert!(
        s["processed"]["size_in_bytes"].as_u64().unwrap()
            < s["incremental"]["size_in_bytes"].as_u64().unwrap(),
        "{s}"
    );
    let (_, st1) = d.call("GET", "/_snapshot/repo/one/_status", None).await;
    assert_eq!(
        s["incremental"], st1["snapshots"][0]["stats"]["incremental"],
        "nothing reused across index UUIDs"
    );
}

#[tokio::test]
async fn a_thousand_indices_are_listed_snapshotted_and_recovered() {
    let h = start(fast_config()).await;
    let d = ready_domain(&h, "wide").await;
    let spec = Spec::load();
    // One `_bulk` creates 1,000 indices of 3 documents each.
    let mut lines = String::new();
    for i in 0..1000 {
        for n in 0..3 {
            lines.push_str(&format!(
                "{{\"index\":{{\"_index\":\"idx-{i:04}\",\"_id\":\"{n}\"}}}}\n{{\"n\":{n}}}\n"
            ));
        }
    }
    let (status, bulk) = d
        .raw("POST", "/_bulk", lines.into_bytes(), "application/x-ndjson")
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bulk));
    let (status, cat) = d.call("GET", "/_cat/indices?format=json", None).await;
    assert_eq!(status, 200);
    assert_eq!(cat.as_array().map(Vec::len), Some(1000));
    repository(&h, &d, "repo", "wide").await;
    let (status, snap) = d
        .call(
            "PUT",
            "/_snapshot/repo/all?wait_for_completion=true",
            Some(json!({"indices": "idx-*"})),
        )
        .await;
    assert_eq!(
        (status, snap["snapshot"]["shards"]["successful"].as_u64()),
        (200, Some(1000)),
        "{snap}"
    );
    let (status, st) = d.call("GET", "/_snapshot/repo/all/_status", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        st["snapshots"][0]["indices"].as_object().map(|o| o.len()),
        Some(1000)
    );
    assert_eq!(st["snapshots"][0]["stats"]["total"]["file_count"], 1000);
    spec.response("snapshot", "snapshot.status@200", &st);
    let (status, restored) = d
        .call(
            "POST",
            "/_snapshot/repo/all/_restore?wait_for_completion=true",
            Some(json!({"indices": "idx-*", "rename_pattern": "idx-(.+)", "rename_replacement": "copy-$1"})),
        )
        .await;
    assert_eq!(status, 200, "{restored}");
    let (status, rec) = d.call("GET", "/copy-*/_recovery", None).await;
    assert_eq!(status, 200, "{rec}");
    let recovered = rec
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, v)| k.starts_with("copy-") && v["shards"][0]["type"] == "SNAPSHOT")
        .count();
    assert_eq!(recovered, 1000);
    let (_, count) = d.call("GET", "/copy-*/_count", None).await;
    assert_eq!(count["count"], 3000);
}

/// `incremental.size_in_bytes` of one snapshot's `_status`, in total and per index.
async fn uploaded(d: &DomainClient, snap: &str) -> (u64, std::collections::BTreeMap<String, u64>) {
    let (status, st) = d
        .call("GET", &format!("/_snapshot/repo/{snap}/_status"), None)
        .await;
    assert_eq!(status, 200, "{st}");
    let s = &st["snapshots"][0];
    let per_index = s["indices"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(i, v)| {
            let bytes = v["stats"]["incremental"]["size_in_bytes"].as_u64().unwrap();
            (i.clone(), bytes)
        })
        .collect();
    (
        s["stats"]["incremental"]["size_in_bytes"].as_u64().unwrap(),
        per_index,
    )
}

/// The simulated seconds a snapshot took (at 1 ms per simulated second, its milliseconds).
async fn snapshot_secs(d: &DomainClient, snap: &str) -> i64 {
    let (status, body) = d
        .call(
            "PUT",
            &format!("/_snapshot/repo/{snap}?wait_for_completion=true"),
            Some(json!({"indices": "part-*"})),
        )
        .await;
    assert_eq!(
        (status, body["snapshot"]["state"].as_str()),
        (200, Some("SUCCESS")),
        "{body}"
    );
    body["snapshot"]["duration_in_millis"].as_i64().unwrap()
}

/// Per restored index: its primary's recovery start and stop (ms, i.e. simulated seconds) and
/// the bytes it copied.
async fn recoveries(d: &DomainClient, pattern: &str) -> Vec<(String, i64, i64, u64)> {
    let (status, rec) = d.call("GET", &format!("/{pattern}/_recovery"), None).await;
    assert_eq!(status, 200, "{rec}");
    let mut out: Vec<(String, i64, i64, u64)> = rec
        .as_object()
        .unwrap()
        .iter()
        .map(|(i, v)| {
            let p = v["shards"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["primary"] == true)
                .unwrap();
            assert_eq!(
                (p["type"].as_str(), p["stage"].as_str()),
                (Some("SNAPSHOT"), Some("DONE")),
                "{p}"
            );
            (
                i.clone(),
                p["start_time_in_millis"].as_i64().unwrap(),
                p["stop_time_in_millis"].as_i64().unwrap(),
                p["index"]["size"]["total_in_bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort_by_key(|r| r.1);
    out
}

/// Simulated seconds per KiB, as the sandbox prices both uploads and restores in this test.
const SECS_PER_KIB: f64 = 2.0;

fn priced(fixed: f64, bytes: u64) -> f64 {
    fixed + SECS_PER_KIB * bytes as f64 / 1024.0
}

#[tokio::test]
async fn a_snapshot_is_priced_by_the_bytes_it_uploads_and_a_restore_by_the_bytes_it_copies() {
    let mut config = fast_config();
    // 1 ms per simulated second: durations in milliseconds read as simulated seconds.
    config.time_scale = 0.001;
    config.latencies.snapshot_secs = 5.0;
    config.latencies.snapshot_secs_per_kib = SECS_PER_KIB;
    config.latencies.restore_secs = 5.0;
    config.latencies.restore_secs_per_kib = SECS_PER_KIB;
    let h = start(config).await;
    let d = ready_domain(&h, "prod").await;
    // Ten indices of the same size; together about 250 KiB, a 500 s upload.
    for i in 0..10 {
        let (status, _) = d.bulk(&format!("part-{i}"), &docs(100, "v1")).await;
        assert_eq!(status, 200);
    }
    repository(&h, &d, "repo", "priced").await;
    let close = |secs: i64, expected: f64| (secs as f64 - expected).abs() <= 1.0;

    // The first snapshot uploads everything: the fixed part plus every byte.
    let first = snapshot_secs(&d, "first").await;
    let (all, per_index) = uploaded(&d, "first").await;
    assert!(all > 200 * 1024, "{all} bytes");
    assert!(close(first, priced(5.0, all)), "{first} s for {all} bytes");

    // Nothing changed: nothing uploaded, only the fixed part.
    let again = snapshot_secs(&d, "again").await;
    assert_eq!(uploaded(&d, "again").await.0, 0);
    assert_eq!(again, 5, "an unchanged snapshot costs its fixed part");

    // One index of ten rewritten: that index's share, about a tenth of the first upload.
    d.bulk("part-3", &docs(100, "v2")).await;
    let third = snapshot_secs(&d, "third").await;
    let (changed, per_index_3) = uploaded(&d, "third").await;
    assert_eq!(
        per_index_3
            .iter()
            .filter(|(_, b)| **b > 0)
            .collect::<Vec<_>>(),
        vec![(&"part-3".to_owned(), &changed)],
        "only part-3 uploads"
    );
    assert!(
        close(third, priced(5.0, changed)),
        "{third} s for {changed} bytes"
    );
    let share = (third - 5) as f64 / (first - 5) as f64;
    assert!(
        (0.09..0.11).contains(&share),
        "{share}: {third} s of {first} s"
    );
    // The rewritten documents weigh what the old ones did.
    assert!(
        changed.abs_diff(per_index["part-3"]) <= 100,
        "{changed} vs {per_index:?}"
    );

    // A restore copies every byte of the indices it restores, one index after another.
    let (status, body) = d
        .call(
            "POST",
            "/_snapshot/repo/third/_restore?wait_for_completion=true",
            Some(json!({"indices": "part-3", "rename_pattern": "(.+)", "rename_replacement": "one-$1"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let one = recoveries(&d, "one-*").await;
    let (_, start, stop, bytes) = one[0].clone();
    // part-3's live files: the rewritten segment only (the first holds no live document).
    assert_eq!(bytes, changed);
    assert!(close(stop - start, priced(0.0, bytes)), "{one:?}");

    let (status, body) = d
        .call(
            "POST",
            "/_snapshot/repo/third/_restore?wait_for_completion=true",
            Some(json!({"indices": "part-*", "rename_pattern": "(.+)", "rename_replacement": "all-$1"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let every = recoveries(&d, "all-*").await;
    assert_eq!(every.len(), 10);
    let total: u64 = every.iter().map(|r| r.3).sum();
    assert_eq!(total, all - per_index["part-3"] + changed);
    // Each index starts when the one before it ends, so the restore's copy takes all its bytes.
    for pair in every.windows(2) {
        assert!((pair[1].1 - pair[0].2).abs() <= 1, "{every:?}");
    }
    let span = every[9].2 - every[0].1;
    assert!(
        close(span, priced(0.0, total)),
        "{span} s for {total} bytes: {every:?}"
    );
    let ratio = span as f64 / (stop - start) as f64;
    assert!(
        (ratio - total as f64 / bytes as f64).abs() < 0.05,
        "restore time follows bytes: {ratio}"
    );
}
