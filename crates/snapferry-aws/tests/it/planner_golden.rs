//! The planner of every resource kind, tested as omicron tests its reconfigurator: a recorded
//! live state in, the proposal out, no network. Each case under `golden/cases/` names a plan
//! file (`golden/plans/`), a live state recorded from the sandbox (`golden/live/`), optionally
//! the state document recorded with it (`golden/state/`), and a JSON merge patch per node that
//! turns the recording into the situation the case is about (a role deleted by hand, a
//! snapshot that ended `PARTIAL`, ...). The steps of `metadata` and `dashboards`
//! (`shop-meta.yaml`, `shop-dashboards.yaml`) are added to the recordings whole, as their
//! `read` would have observed them: both domains' objects, their engine versions. The proposal is rendered exactly as `snapferry plan`
//! shows it and compared with the case's `.txt` file.
//!
//! `SNAPFERRY_UPDATE_GOLDEN=1` rewrites the `.txt` files. The recordings are made by the
//! ignored test `record_live_states` (`cargo test -p snapferry-aws --test it
//! planner_golden::record_live_states -- --ignored`), which runs the replication against the
//! sandbox and reads the live state at each step: fresh, applied, a week later, after a
//! repository and an index were deleted by hand (and after the apply that repairs it), after
//! the source grew.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use snapferry_aws::clients::{AwsContext, AwsOptions};
use snapferry_aws::resources::{Env, KINDS, build_graph};
use snapferry_engine::{LiveState, StateDoc, propose, render};

/// The instant every recording resolves templates at (the snapshot is `shop-2026-11-01`).
const NOW: &str = "2026-11-01T03:00:00Z";
/// A week later: the refresh recording.
const WEEK_LATER: &str = "2026-11-08T03:00:00Z";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/golden")
}

/// One case: what it is about, and how to build its inputs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    about: String,
    plan: String,
    live: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default = "now")]
    now: String,
    /// Per node id, a JSON merge patch (RFC 7386) of its recorded `Observed`.
    #[serde(default)]
    patch: BTreeMap<String, Value>,
}

fn now() -> String {
    NOW.to_owned()
}

/// RFC 7386: objects merge key by key, `null` removes, anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let target = target.as_object_mut().expect("just made an object");
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// An environment that can build the resources but reaches nothing: the planner's pure phase
/// never calls it.
async fn offline_env(plan: &snapferry_plan::Plan, now: DateTime<Utc>) -> Arc<Env> {
    let aws = AwsContext::load(AwsOptions {
        endpoint_url: Some("http://127.0.0.1:9".to_owned()),
        credentials: Some(SharedCredentialsProvider::new(Credentials::new(
            "AKIDOFFLINE",
            "offline",
            None,
            None,
            "golden",
        ))),
        fallback_region: Some(plan.region.clone()),
        ..AwsOptions::default()
    })
    .await
    .expect("an offline AWS context");
    Arc::new(Env::new(aws, plan, now, None))
}

/// The proposal of one case, as `snapferry plan` prints it.
async fn run_case(name: &str, case: &Case) -> String {
    let dir = dir();
    let plan = snapferry_plan::load(&dir.join("plans").join(&case.plan))
        .unwrap_or_else(|e| panic!("{name}: plan {}: {e:?}", case.plan));
    let now: DateTime<Utc> = case.now.parse().expect("an RFC 3339 time");
    let graph = build_graph(&plan, offline_env(&plan, now).await).expect("graph");
    let mut live = read_json(&dir.join("live").join(format!("{}.json", case.live)));
    for (node, patch) in &case.patch {
        // A node the recording lacks (a step the recorded plan did not have) is given whole:
        // its patch is a complete `Observed`, with `exists`.
        let nodes = live["nodes"].as_object_mut().expect("recorded nodes");
        if !nodes.contains_key(node) && patch.get("exists").is_some() {
            nodes.insert(node.clone(), patch.clone());
            continue;
        }
        let observed = nodes
            .get_mut(node)
            .unwrap_or_else(|| panic!("{name}: the recording has no node {node}"));
        merge(observed, patch);
    }
    let live: LiveState = serde_json::from_value(live).expect("a live state");
    let state: Option<StateDoc> = case.state.as_ref().map(|s| {
        serde_json::from_value(read_json(&dir.join("state").join(format!("{s}.json"))))
            .expect("a state document")
    });
    let proposal = propose(&graph, &live, state.as_ref(), &plan.fingerprint())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    render::text(&proposal, &format!("golden {name}: {}", case.about))
}

#[tokio::test]
async fn every_case_plans_as_its_golden_file_says() {
    let update = std::env::var_os("SNAPFERRY_UPDATE_GOLDEN").is_some();
    let cases = dir().join("cases");
    let mut names: Vec<String> = std::fs::read_dir(&cases)
        .expect("golden/cases")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_owned))
        .collect();
    names.sort();
    assert!(names.len() >= 20, "only {} cases", names.len());
    let mut failures = Vec::new();
    for name in &names {
        let case: Case = serde_json::from_value(read_json(&cases.join(format!("{name}.json"))))
            .unwrap_or_else(|e| panic!("case {name}: {e}"));
        let got = run_case(name, &case).await;
        let golden = cases.join(format!("{name}.txt"));
        if update {
            std::fs::write(&golden, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if got != want {
            failures.push(format!(
                "--- {name}: expected ({})\n{want}\n--- got\n{got}",
                golden.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden case(s) differ (SNAPFERRY_UPDATE_GOLDEN=1 rewrites them once reviewed):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every kind has its golden cases: created from nothing, unchanged, changed field by field
/// (or blocked, with the reason), and seen by a dependent as known after apply.
#[test]
fn every_kind_has_golden_cases() {
    let names: Vec<String> = std::fs::read_dir(dir().join("cases"))
        .expect("golden/cases")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    for kind in KINDS {
        let of_kind: Vec<&String> = names
            .iter()
            .filter(|n| n.starts_with(&format!("{}-", kind.name)))
            .collect();
        for what in ["create", "noop"] {
            assert!(
                of_kind.iter().any(|n| n.contains(what)),
                "no `{}-*{what}*` golden case",
                kind.name
            );
        }
        assert!(
            of_kind
                .iter()
                .any(|n| n.contains("drift") || n.contains("update") || n.contains("blocked")),
            "no changed or blocked golden case for {}",
            kind.name
        );
    }
}

mod record {
    //! Makes the recordings the golden cases start from, against the sandbox.

    use super::*;
    use snapferry_engine::{
        ApplyOptions, Executor, MemoryStore, Outcome, PlanOptions, PollSchedule,
    };
    use snapferry_sandbox::{Sandbox, SandboxConfig, SeedDomain, SeedIndex};

    fn index(name: &str, generate: u64) -> SeedIndex {
        SeedIndex {
            name: name.to_owned(),
            documents: Vec::new(),
            generate,
            settings: None,
            mappings: None,
        }
    }

    fn write(kind: &str, name: &str, value: &impl serde::Serialize) {
        let path = dir().join(kind).join(format!("{name}.json"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut text = serde_json::to_string_pretty(value).unwrap();
        text.push('\n');
        std::fs::write(&path, text).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "re-records the golden live states against the sandbox; run it with --ignored"]
    async fn record_live_states() {
        let sandbox = Sandbox::start(SandboxConfig {
            domains: vec![SeedDomain {
                name: "shop-prod".into(),
                engine_version: "OpenSearch_2.11".into(),
                ready: true,
                indices: vec![
                    index("products", 30),
                    index("orders", 50),
                    index("customers", 20),
                ],
                kibana: true,
                vpc: false,
            }],
            ..SandboxConfig::default()
        })
        .await
        .expect("sandbox");
        let env: BTreeMap<String, String> = sandbox.env().into_iter().collect();
        let aws = AwsContext::load(AwsOptions {
            endpoint_url: Some(sandbox.endpoint_url()),
            credentials: Some(SharedCredentialsProvider::new(Credentials::new(
                env["AWS_ACCESS_KEY_ID"].clone(),
                env["AWS_SECRET_ACCESS_KEY"].clone(),
                None,
                None,
                "golden",
            ))),
            fallback_region: Some("us-east-1".into()),
            ca_bundle: Some(sandbox.ca_bundle_path().to_owned()),
            ..AwsOptions::default()
        })
        .await
        .expect("AWS context");
        let plan = snapferry_plan::load(&dir().join("plans/shop.yaml")).expect("plan");
        let graph_at = |now: &str| {
            let env = Env::new(
                aws.clone(),
                &plan,
                now.parse().unwrap(),
                Some(sandbox.ca_bundle_path().to_owned()),
            )
            .with_rate(1000.0);
            Arc::new(build_graph(&plan, Arc::new(env)).expect("graph"))
        };
        let graph = graph_at(NOW);
        let fp = plan.fingerprint();
        let store = Arc::new(MemoryStore::new());
        let options = ApplyOptions {
            poll: PollSchedule::default().scaled(0.002),
            ..ApplyOptions::new(&plan.name)
        };
        let read = |graph: Arc<snapferry_engine::ExecGraph>, state: Option<StateDoc>| {
            let fp = fp.clone();
            async move {
                snapferry_engine::read_live(&graph, state.as_ref(), &PlanOptions::new(&fp))
                    .await
                    .expect("read live state")
            }
        };
        let apply = |state: Option<StateDoc>, live: LiveState| {
            let (graph, store, options, fp) =
                (graph.clone(), store.clone(), options.clone(), fp.clone());
            async move {
                let proposal = propose(&graph, &live, state.as_ref(), &fp).expect("proposal");
                let summary = Executor::new(graph, store)
                    .apply(&proposal, &options)
                    .await
                    .expect("apply");
                assert_eq!(summary.outcome, Outcome::Complete, "{summary:?}");
            }
        };
        use snapferry_engine::StateStore as _;

        let fresh = read(graph.clone(), None).await;
        write("live", "fresh", &fresh);
        apply(None, fresh).await;

        let state = store.load().await.unwrap();
        let applied = read(graph.clone(), state.clone()).await;
        write("live", "applied", &applied);
        write("state", "applied", &state);

        let refresh = read(graph_at(WEEK_LATER), state.clone()).await;
        write("live", "refresh", &refresh);

        // By hand: the target's repository and one restored index are deleted.
        let target = {
            let env = Env::new(
                aws.clone(),
                &plan,
                NOW.parse().unwrap(),
                Some(sandbox.ca_bundle_path().to_owned()),
            );
            let domain = &plan.replications[0].target.domain;
            env.data_plane(domain)
                .await
                .expect("data plane")
                .expect("target exists")
        };
        target
            .delete_repository("snapferry-shop")
            .await
            .expect("delete repository");
        target.delete_index("orders").await.expect("delete index");
        let drift = read(graph.clone(), state.clone()).await;
        write("live", "drift", &drift);
        apply(state, drift).await;
        let state = store.load().await.unwrap();
        let repaired = read(graph.clone(), state.clone()).await;
        assert!(
            !propose(&graph, &repaired, state.as_ref(), &fp)
                .unwrap()
                .has_changes(),
            "one apply converges"
        );

        // The source grows after the copy.
        let source = {
            let env = Env::new(
                aws.clone(),
                &plan,
                NOW.parse().unwrap(),
                Some(sandbox.ca_bundle_path().to_owned()),
            );
            env.data_plane(&plan.replications[0].source)
                .await
                .expect("data plane")
                .expect("source exists")
        };
        for id in 1000..1005 {
            source
                .http()
                .send(
                    http::Method::PUT,
                    &format!("/orders/_doc/{id}"),
                    Some(&serde_json::json!({"n": id})),
                )
                .await
                .expect("index a document");
        }
        let grew = read(graph.clone(), state.clone()).await;
        write("live", "grew", &grew);
        write("state", "repaired", &state);
        sandbox.shutdown().await;
    }
}
