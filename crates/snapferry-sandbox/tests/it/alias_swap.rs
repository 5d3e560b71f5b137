//! An index swapped under its alias as a zero-downtime refresh does it: one `POST _aliases`
//! moves the alias to the new generation and removes the old one, all or nothing; a reader
//! counting through the alias meanwhile never fails and sees only whole generations. As in
//! OpenSearch, every `remove_index` runs before the other actions of the request, and a restore
//! may not create an index under an existing alias's name.

use crate::common;

use common::*;
use serde_json::{Value, json};

fn docs(n: usize, tag: &str) -> Vec<(String, Value)> {
    (0..n)
        .map(|i| (format!("{tag}-{i}"), json!({"n": i, "tag": tag})))
        .collect()
}

#[tokio::test]
async fn a_reader_through_the_alias_sees_whole_generations_during_a_swap() {
    let h = start(fast_config()).await;
    let d = ready_domain(&h, "staging").await;
    let spec = Spec::load();
    let (status, _) = d.bulk("events-g1", &docs(1000, "g1")).await;
    assert_eq!(status, 200);
    let (status, body) = d
        .call(
            "POST",
            "/_aliases",
            Some(json!({"actions": [{"add": {"index": "events-g1", "alias": "events", "is_write_index": true}}]})),
        )
        .await;
    assert_eq!(
        (status, body["acknowledged"].as_bool()),
        (200, Some(true)),
        "{body}"
    );

    let reader = {
        let d = DomainClient::new(&h, d.base.trim_start_matches("https://"));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut seen = Vec::new();
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                let (status, body) = d.call("GET", "/events/_count", None).await;
                seen.push((status, body["count"].as_u64()));
            }
            seen
        });
        (stop, task)
    };
    // The next generation is written beside the live one, then swapped in one call.
    let (status, _) = d.bulk("events-g2", &docs(1100, "g2")).await;
    assert_eq!(status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let (status, body) = d
        .call(
            "POST",
            "/_aliases",
            Some(json!({"actions": [
                {"add": {"index": "events-g2", "alias": "events", "is_write_index": true}},
                {"remove_index": {"index": "events-g1"}}
            ]})),
        )
        .await;
    assert_eq!(
        (status, body["acknowledged"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    spec.response("indices", "indices.update_aliases@200", &body);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    reader.0.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = reader.1.await.expect("reader");
    assert!(
        seen.iter().all(|(s, _)| *s == 200),
        "a failed request: {seen:?}"
    );
    let counts: Vec<u64> = seen.iter().filter_map(|(_, c)| *c).collect();
    assert_eq!(counts.len(), seen.len());
    assert!(
        counts.iter().all(|c| *c == 1000 || *c == 1100),
        "a partial generation: {counts:?}"
    );
    let first_new = counts
        .iter()
        .position(|c| *c == 1100)
        .expect("the swap was seen");
    assert!(
        first_new > 0,
        "the old generation was never read: {counts:?}"
    );
    assert!(
        counts[first_new..].iter().all(|c| *c == 1100),
        "the alias went back: {counts:?}"
    );

    // Writes through the alias land in its write index, the new generation.
    let (status, _) = d
        .call(
            "PUT",
            "/events/_doc/late?refresh=true",
            Some(json!({"n": -1})),
        )
        .await;
    assert_eq!(status, 201);
    let (_, count) = d.call("GET", "/events-g2/_count", None).await;
    assert_eq!(count["count"], 1101);
    let (status, _) = d.call("GET", "/events-g1/_count", None).await;
    assert_eq!(status, 404, "remove_index deleted the old generation");
}

#[tokio::test]
async fn a_failing_alias_action_leaves_nothing_changed() {
    let h = start(fast_config()).await;
    let d = ready_domain(&h, "staging").await;
    let spec = Spec::load();
    d.bulk("a-g1", &docs(10, "g1")).await;
    d.bulk("a-g2", &docs(20, "g2")).await;
    let (status, _) = d
        .call(
            "POST",
            "/_aliases",
            Some(json!({"actions": [{"add": {"index": "a-g1", "alias": "a"}}]})),
        )
        .await;
    assert_eq!(status, 200);
    // The last action names an index that does not exist: the first two are not applied.
    let (status, err) = d
        .call(
            "POST",
            "/_aliases",
            Some(json!({"actions": [
                {"add": {"index": "a-g2", "alias": "a"}},
                {"remove": {"index": "a-g1", "alias": "a"}},
                {"remove_index": {"index": "a-g0"}}
            ]})),
        )
        .await;
    assert_eq!(status, 404, "{err}");
    assert_eq!(err["error"]["type"], "index_not_found_exception");
    assert_eq!(err["error"]["reason"], "no such index [a-g0]");
    spec.error(&err);
    let (_, count) = d.call("GET", "/a/_count", None).await;
    assert_eq!(
        count["count"], 10,
        "the alias still points at the old generation only"
    );
    let (status, _) = d.call("GET", "/a-g1/_count", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn remove_index_runs_before_the_other_actions_whatever_their_order() {
    let h = start(fast_config()).await;
    let d = ready_domain(&h, "staging").await;
    let spec = Spec::load();
    d.bulk("orders", &docs(10, "plain")).await;
    d.bulk("orders-g1", &docs(12, "g1")).await;

    // The alias is added before the plain index it replaces is removed, in the request's
    // order: OpenSearch removes the index first, so the alias may take its name.
    let (status, body) = d
        .call(
            "POST",
            "/_aliases",
            Some(json!({"actions": [
                {"add": {"index": "orders-g1", "alias": "orders"}},
                {"remove_index": {"index": "orders"}}
            ]})),
        )
        .await;
    assert_eq!(
        (status, body["acknowledged"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    spec.response("indices", "indices.update_aliases@200", &body);
    let (_, count) = d.call("GET", "/orders/_count", None).await;
    assert_eq!(count["count"], 12, "orders is the alias of the generation");

    // An action on an index the same request removes finds it gone, even when written first.
    d.bulk("orders-g2", &docs(14, "g2")).await;
    let (status, err) = d
        .call(
            "POST",
            "/_aliases",
            Some(json!({"actions": [
                {"remove": {"index": "orders-g1", "alias": "orders"}},
                {"add": {"index": "orders-g2", "alias": "orders"}},
                {"remove_index": {"index": "orders-g1"}}
            ]})),
        )
        .await;
    assert_eq!(status, 404, "{err}");
    assert_eq!(err["error"]["type"], "index_not_found_exception");
    assert_eq!(err["error"]["reason"], "no such index [orders-g1]");
    spec.error(&err);
    let (status, count) = d.call("GET", "/orders/_count", None).await;
    assert_eq!(
        (status, count["count"].as_u64()),
        (200, Some(12)),
        "nothing applied"
    );
    let (status, _) = d.call("GET", "/orders-g1/_count", None).await;
    assert_eq!(status, 200, "the refused request removed nothing");
}

#[tokio::test]
async fn a_restore_may_not_create_an_index_named_like_an_alias() {
    let h = start(fast_config()).await;
    let d = ready_domain(&h, "staging").await;
    let spec = Spec::load();
    d.bulk("orders", &docs(10, "plain")).await;
    repository(&h, &d, "repo", "aliases").await;
    let (status, body) = d
        .call(
            "PUT",
            "/_snapshot/repo/one?wait_for_completion=true",
            Some(json!({"indices": "orders"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The target's `orders` is now an alias over a generation, as after an alias_swap.
    d.bulk("orders-g1", &docs(12, "g1")).await;
    let (status, body) = d
        .call(
            "POST",
            "/_aliases",
            Some(json!({"actions": [
                {"remove_index": {"index": "orders"}},
                {"add": {"index": "orders-g1", "alias": "orders"}}
            ]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, err) = d
        .call(
            "POST",
            "/_snapshot/repo/one/_restore",
            Some(json!({"indices": "orders"})),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["type"], "invalid_index_name_exception");
    assert_eq!(
        err["error"]["reason"],
        "Invalid index name [orders], already exists as alias"
    );
    assert_eq!(err["error"]["index"], "orders");
    spec.error(&err);
    let (_, count) = d.call("GET", "/orders/_count", None).await;
    assert_eq!(count["count"], 12, "the alias still reads its generation");
    let (status, _) = d.call("GET", "/orders-g1/_recovery", None).await;
    assert_eq!(status, 200);

    // Under another name the same restore goes through.
    let (status, body) = d
        .call(
            "POST",
            "/_snapshot/repo/one/_restore?wait_for_completion=true",
            Some(json!({"indices": "orders", "rename_pattern": "^(.+)$", "rename_replacement": "$1~one"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, count) = d.call("GET", "/orders~one/_count", None).await;
    assert_eq!(count["count"], 10);
}
