//! The OpenSearch API specification's own snapshot test stories (vendored under
//! tests/it/spec/stories), replayed against a sandbox domain. Amazon OpenSearch Service only accepts
//! `s3` repositories, so the stories' `fs` repository is registered as an `s3` one (bucket, role
//! and policy prepared first) and repository listings are checked by name rather than settings.
//! Chapters gated on a newer OpenSearch version than the domain's (2.11) are skipped, as the
//! specification's own runner does. Every JSON body is also validated against the spec.

use crate::common;

use std::path::Path;

use common::*;
use serde_json::{Value, json};

/// Stories the sandbox replays, and the ones it does not emulate (with why). The test below
/// fails if a story file appears that is in neither list, so none is skipped silently.
const REPLAYED: &[&str] = &[
    "snapshot/snapshot.yaml",
    "snapshot/restore.yaml",
    "snapshot/status.yaml",
    "snapshot/verify.yaml",
];
const NOT_EMULATED: &[(&str, &str)] = &[
    (
        "snapshot/clone.yaml",
        "snapshot clone is not used by snapferry",
    ),
    (
        "snapshot/cleanup.yaml",
        "repository cleanup is not used by snapferry",
    ),
    ("cat/repositories.yaml", "_cat/repositories is not emulated"),
    ("cat/snapshots.yaml", "_cat/snapshots is not emulated"),
];

fn stories_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/spec/stories/snapshot")
}

#[test]
fn every_vendored_story_is_replayed_or_named_as_not_emulated() {
    let mut found = Vec::new();
    for sub in ["snapshot", "cat"] {
        for e in std::fs::read_dir(stories_dir().join(sub)).unwrap() {
            found.push(format!(
                "{sub}/{}",
                e.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    found.sort();
    let mut known: Vec<String> = REPLAYED
        .iter()
        .map(|s| s.to_string())
        .chain(NOT_EMULATED.iter().map(|(s, _)| s.to_string()))
        .collect();
    known.sort();
    assert_eq!(found, known);
}

/// `expected` is contained in `actual` (objects by key, arrays element-wise from the start).
fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|av| contains(av, v))),
        (Value::Array(a), Value::Array(e)) => {
            e.len() <= a.len() && e.iter().zip(a).all(|(ev, av)| contains(av, ev))
        }
        _ => actual == expected,
    }
}

fn version_ok(constraint: Option<&str>) -> bool {
    let Some(c) = constraint else { return true };
    let parse = |v: &str| -> (u32, u32) {
        let mut it = v.trim().split('.').map(|p| p.parse().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    };
    let ours = (2, 11);
    if let Some(v) = c.strip_prefix(">=") {
        ours >= parse(v)
    } else if let Some(v) = c.strip_prefix('<') {
        ours < parse(v)
    } else {
        true
    }
}

struct Step {
    path: String,
    method: String,
    query: String,
    payload: Option<Value>,
    statuses: Vec<u16>,
    expected: Option<Value>,
    retries: u32,
}

fn steps(step: &Value, default_status: u16) -> Vec<Step> {
    let params = step["parameters"].as_object().cloned().unwrap_or_default();
    let mut path = step["path"].as_str().unwrap().to_owned();
    let mut query = Vec::new();
    for (k, v) in &params {
        let value = v
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string());
        let placeholder = format!("{{{k}}}");
        if path.contains(&placeholder) {
            path = path.replace(&placeholder, &value);
        } else {
            query.push(format!("{k}={value}"));
        }
    }
    let methods: Vec<String> = match &step["method"] {
        Value::Array(a) => a.iter().map(|m| m.as_str().unwrap().to_owned()).collect(),
        m => vec![m.as_str().unwrap().to_owned()],
    };
    let statuses = match (&step["status"], &step["response"]["status"]) {
        (Value::Array(a), _) => a.iter().map(|s| s.as_u64().unwrap() as u16).collect(),
        (_, Value::Number(n)) => vec![n.as_u64().unwrap() as u16],
        _ => vec![default_status],
    };
    methods
        .into_iter()
        .map(|method| Step {
            path: path.clone(),
            method,
            query: query.join("&"),
            payload: step["request"]["payload"]
                .as_object()
                .map(|_| step["request"]["payload"].clone())
                .or_else(|| {
                    step["request"]["payload"]
                        .as_array()
                        .map(|_| step["request"]["payload"].clone())
                }),
            statuses: statuses.clone(),
            expected: step["response"].get("payload").cloned(),
            retries: step["retry"]["count"].as_u64().unwrap_or(0) as u32,
        })
        .collect()
}

async fn replay(file: &str) {
    let text = std::fs::read_to_string(stories_dir().join(file)).unwrap();
    let story: Value = serde_yaml::from_str(&text).unwrap();
    let spec = Spec::load();
    let h = start(fast_config()).await;
    let d = ready_domain(&h, "stories").await;
    let arn = repository(&h, &d, "setup", "story-bucket").await;
    let mut ran = 0;
    for (section, default_status) in [("prologues", 200), ("chapters", 200), ("epilogues", 200)] {
        for step in story[section].as_array().cloned().unwrap_or_default() {
            if !version_ok(step["version"].as_str()) {
                eprintln!(
                    "{file}: skipping {:?} (needs OpenSearch {})",
                    step["synopsis"], step["version"]
                );
                continue;
            }
            for mut s in steps(&step, default_status) {
                let is_repo_path =
                    s.path.starts_with("/_snapshot/") && s.path.matches('/').count() == 2;
                if is_repo_path && s.payload.as_ref().is_some_and(|p| p["type"] == "fs") {
                    s.payload = Some(
                        json!({"type": "s3", "settings": {"bucket": "story-bucket", "base_path": "stories", "role_arn": arn}}),
                    );
                }
                let repo_listing = s.method == "GET" && (s.path == "/_snapshot" || is_repo_path);
                let url = if s.query.is_empty() {
                    s.path.clone()
                } else {
                    format!("{}?{}", s.path, s.query)
                };
                let mut attempt = 0;
                loop {
                    let (status, body) = d.call(&s.method, &url, s.payload.clone()).await;
                    let payload_ok = match (&s.expected, repo_listing) {
                        (Some(expected), true) => expected
                            .as_object()
                            .unwrap()
                            .keys()
                            .all(|k| body.get(k).is_some()),
                        (Some(expected), false) => contains(&body, expected),
                        (None, _) => true,
                    };
                    if s.statuses.contains(&status) && payload_ok {
                        if status >= 400 && body.is_object() {
                            spec.error(&body);
                        }
                        break;
                    }
                    attempt += 1;
                    assert!(
                        attempt <= s.retries,
                        "{file} {section} {:?}: {} {url} gave {status} {body}, expected {:?} {:?}",
                        step["synopsis"],
                        s.method,
                        s.statuses,
                        s.expected
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                ran += 1;
            }
        }
    }
    assert!(ran >= 3, "{file}: only {ran} steps ran");
    h.shutdown().await;
}

#[tokio::test]
async fn story_snapshot() {
    replay("snapshot/snapshot.yaml").await;
}

#[tokio::test]
async fn story_restore() {
    replay("snapshot/restore.yaml").await;
}

#[tokio::test]
async fn story_status() {
    replay("snapshot/status.yaml").await;
}

#[tokio::test]
async fn story_verify() {
    replay("snapshot/verify.yaml").await;
}
