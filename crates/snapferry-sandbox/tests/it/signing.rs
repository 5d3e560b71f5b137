//! SigV4 on a domain endpoint with characters the canonical request must encode: a comma in the
//! path (`_cat/indices/a,b`) or in the query (`?h=index,docs.count`) is signed by AWS's signer as
//! `%2C`, and the sandbox must accept exactly that signature and refuse a wrong one.

use serde_json::Value;
use snapferry_sandbox::{SandboxConfig, SeedDomain, SeedIndex};

use crate::common::{fast_config, seeded, start};

fn config() -> SandboxConfig {
    let index = |name: &str, generate: u64| SeedIndex {
        name: name.into(),
        documents: Vec::new(),
        generate,
        settings: None,
        mappings: None,
    };
    let mut config = fast_config();
    config.domains.push(SeedDomain {
        name: "commas".into(),
        engine_version: "OpenSearch_2.11".into(),
        ready: true,
        indices: vec![index("a", 3), index("b", 5), index("c", 7)],
        kibana: false,
        vpc: false,
    });
    config
}

/// The (index, docs.count) rows of a `_cat/indices` answer in JSON.
fn rows(body: &[u8]) -> Vec<(String, String)> {
    let value: Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)));
    let mut rows: Vec<(String, String)> = value
        .as_array()
        .expect("an array of rows")
        .iter()
        .map(|r| {
            // `h=` chose these two columns, so the rows have nothing else.
            assert_eq!(r.as_object().unwrap().len(), 2, "{r}");
            (
                r["index"].as_str().unwrap().to_owned(),
                r["docs.count"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn a_signed_request_with_commas_in_its_path_and_query_is_accepted() {
    let h = start(config()).await;
    let client = seeded(&h, "commas");
    let (status, body) = client
        .raw(
            "GET",
            "/_cat/indices/a,b?h=index,docs.count&format=json",
            Vec::new(),
            "application/json",
        )
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        rows(&body),
        [("a".into(), "3".into()), ("b".into(), "5".into())]
    );
    // The same request with the commas already percent-encoded by the caller.
    let (status, body) = client
        .raw(
            "GET",
            "/_cat/indices/a%2Cc?h=index%2Cdocs.count&format=json",
            Vec::new(),
            "application/json",
        )
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        rows(&body),
        [("a".into(), "3".into()), ("c".into(), "7".into())]
    );
    h.shutdown().await;
}

#[tokio::test]
async fn cat_indices_shows_the_columns_h_names_with_a_header_under_v() {
    let h = start(config()).await;
    let client = seeded(&h, "commas");
    let (status, body) = client
        .raw(
            "GET",
            "/_cat/indices/b?v&h=i,dc,health",
            Vec::new(),
            "text/plain",
        )
        .await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["index", "docs.count", "health"], "{text}");
    assert_eq!(lines[1][..2], ["b", "5"], "{text}");
    assert_eq!(lines.len(), 2, "{text}");
    h.shutdown().await;
}

#[tokio::test]
async fn a_request_whose_query_changed_after_signing_is_refused() {
    let h = start(config()).await;
    let client = seeded(&h, "commas");
    let (status, body) = client
        .tampered(
            "/_cat/indices?h=index,docs.count&format=json",
            "/_cat/indices?h=index,health&format=json",
        )
        .await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains(
            "The request signature we calculated does not match the signature you provided"
        ),
        "{text}"
    );
    h.shutdown().await;
}
