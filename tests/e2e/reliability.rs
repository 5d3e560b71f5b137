//! Reliability end to end (issue #7): the real `snapferry` binary is crashed at every state
//! write (through the hidden `SNAPFERRY_TEST_ABORT_AFTER_WRITES` hook, an abort with no
//! unwinding) and SIGKILLed inside its waits, then `apply` is run once more, with no `unlock`
//! (it takes over the dead run's lock, naming its pid, issue #15), and must succeed;
//! every time the target must hold exactly the source's documents, with exactly one snapshot,
//! one CreateDomain/CreateSnapshot/RestoreSnapshot in the sandbox's request log, and no
//! mutating call repeated. Then Ctrl-C, injected faults, secrets at `-vvv` and broken state
//! files. `docs/reliability.md` records the figures of the last run (`just reliability`).

use crate::common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::panic::AssertUnwindSafe;
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use common::{World, flat, index, source_domain, user_indices};
use snapferry_sandbox::{FaultKind, FaultRule, FaultsConfig, SandboxConfig};

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

/// Every run resolves the snapshot name at the same instant, so a retry never crosses a
/// date boundary into a second snapshot.
const NOW: &str = "2026-11-01T03:00:00Z";
const SNAPSHOT: &str = "shop-2026-11-01";
const REPOSITORY: &str = "snapferry-shop";
const STATE: &str = ".snapferry/shop.state.json";
const LOCK: &str = ".snapferry/shop.state.json.lock";
const HOOK: &str = "SNAPFERRY_TEST_ABORT_AFTER_WRITES";

/// Scenarios run this many at a time (each has its own sandbox; most of their time is
/// simulated waiting, so more than the two cores is fine).
const CONCURRENCY: usize = 4;

fn config() -> SandboxConfig {
    let mut config = SandboxConfig {
        domains: vec![source_domain(
            "shop-prod",
            vec![
                index("products", 300),
                index("orders", 500),
                index("customers", 200),
            ],
        )],
        ..SandboxConfig::default()
    };
    // 400 simulated seconds: 0.4 s of real time, long enough to be killed inside.
    config.latencies.domain_creation_secs = 400.0;
    config
}

fn shop(config: SandboxConfig) -> World {
    let world = World::start_with(config);
    world.plan("snapferry.yaml", PLAN);
    world
}

const APPLY: &[&str] = &["apply", "--auto-approve", "--now", NOW];

/// Successful mutating calls per (operation, target).
fn mutations(world: &World) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for r in world.mutating_calls() {
        if (200..300).contains(&r.status) {
            *out.entry((r.operation, r.target.unwrap_or_default()))
                .or_default() += 1;
        }
    }
    out
}

/// Calls of one operation that reached its handler (an injected throttle, 5xx or dropped
/// connection did not; a slowed call did), whatever the answer.
fn calls(world: &World, operation: &str) -> usize {
    world
        .sandbox()
        .request_log()
        .iter()
        .filter(|r| r.operation == operation)
        .filter(|r| r.fault.as_deref().is_none_or(|f| f == "Slow"))
        .count()
}

/// The snapshots in the repository, read from the source's data plane.
fn snapshots(world: &World) -> Vec<String> {
    let client = world.domain("shop-prod");
    world.rt.block_on(async {
        client
            .list_snapshots(REPOSITORY)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.snapshot)
            .collect()
    })
}

fn bucket_policy_sids(world: &World) -> Vec<String> {
    let s3 = world.s3();
    world.rt.block_on(async {
        let text = s3
            .get_bucket_policy()
            .bucket("shop-snapshots")
            .send()
            .await
            .unwrap()
            .policy()
            .unwrap()
            .to_owned();
        let policy: serde_json::Value = serde_json::from_str(&text).unwrap();
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap_or_default().to_owned())
            .collect()
    })
}

/// The mutating calls of a clean run, and how many state writes it makes.
struct Baseline {
    writes: u64,
    mutations: BTreeMap<(String, String), usize>,
    requests: usize,
    seconds: f64,
}

fn baseline() -> Baseline {
    let world = shop(config());
    let started = Instant::now();
    world.run_ok(APPLY, 0);
    let seconds = started.elapsed().as_secs_f64();
    let writes = world.state(STATE)["generation"].as_u64().unwrap();
    assert_converged(&world, &mutations(&world), "clean run");
    Baseline {
        writes,
        mutations: mutations(&world),
        requests: world.sandbox().request_log().len(),
        seconds,
    }
}

/// What must hold after any sequence of crashes once `apply` has succeeded.
fn assert_converged(world: &World, clean: &BTreeMap<(String, String), usize>, label: &str) {
    let source = user_indices(&world.counts("shop-prod"));
    assert_eq!(
        user_indices(&world.counts("shop-copy")),
        source,
        "{label}: the target's documents differ from the source's"
    );
    assert_eq!(
        snapshots(world),
        [SNAPSHOT],
        "{label}: not exactly one snapshot"
    );
    for op in ["CreateDomain", "CreateSnapshot", "RestoreSnapshot"] {
        assert_eq!(calls(world, op), 1, "{label}: {op} calls");
    }
    for ((op, target), n) in mutations(world) {
        let expected = clean.get(&(op.clone(), target.clone())).copied();
        assert!(
            expected.is_some_and(|e| n <= e),
            "{label}: {op} on {target} made {n} times, a clean run makes {expected:?}"
        );
    }
    let sids = bucket_policy_sids(world);
    let mut unique = sids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        sids.len(),
        "{label}: duplicated Sid in {sids:?}"
    );
    let state = world.state(STATE);
    for (id, node) in state["nodes"].as_object().unwrap() {
        assert_eq!(node["status"], "done", "{label}: {id} is {node}");
    }
    assert!(
        !world.dir.path().join(LOCK).exists(),
        "{label}: a lock was left behind"
    );
}

/// Runs `apply` once after a crash of process `pid`: with no `unlock`, it must take over the
/// lock the dead run left (naming its pid) and complete. Returns how it went, for the summary.
fn resume(world: &World, pid: u32, label: &str) -> String {
    let left = world.dir.path().join(LOCK).exists();
    let out = world.run(APPLY);
    let all = flat(&common::output_text(&out));
    assert!(
        out.status.success(),
        "{label}: the apply after the crash failed:\n{all}"
    );
    assert!(
        !world.dir.path().join(LOCK).exists(),
        "{label}: a successful apply left a lock behind:\n{all}"
    );
    if !left {
        // Killed after it released the lock (the last step had printed its line).
        assert!(!all.contains("took the lock over"), "{label}:\n{all}");
        return "no lock left; converged on the next apply".to_owned();
    }
    assert!(
        all.contains(&format!("(pid {pid}) since "))
            && all.contains(&format!(
                "process {pid} has exited, so this run took the lock over"
            )),
        "{label}: no takeover notice naming pid {pid}:\n{all}"
    );
    "dead run's lock taken over (pid named); converged on the next apply".to_owned()
}

/// Where a crashed run stopped: its last mutating call and the steps the state records as
/// `applying`, so the summary shows the kill landed inside an operation.
fn crash_site(world: &World) -> String {
    let last = world
        .mutating_calls()
        .last()
        .map_or("none".to_owned(), |r| r.operation.clone());
    let applying: Vec<String> = std::fs::read(world.dir.path().join(STATE))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|s| s["nodes"].as_object().cloned())
        .map(|nodes| {
            nodes
                .into_iter()
                .filter(|(_, n)| n["status"] == "applying")
                .map(|(id, _)| id)
                .collect()
        })
        .unwrap_or_default();
    format!("last call {last}, applying [{}]", applying.join(", "))
}

/// One crash scenario's result, for the summary printed at the end.
struct Outcome {
    label: String,
    result: Result<String, String>,
}

/// Runs scenarios `CONCURRENCY` at a time; a failed scenario is reported with the others
/// instead of hiding them.
fn run_all(scenarios: Vec<(String, Box<dyn Fn() -> String + Send + Sync>)>) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..CONCURRENCY {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some((label, scenario)) = scenarios.get(i) else {
                        break;
                    };
                    let result =
                        std::panic::catch_unwind(AssertUnwindSafe(scenario)).map_err(|e| {
                            e.downcast_ref::<String>()
                                .cloned()
                                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                                .unwrap_or_else(|| "panicked".to_owned())
                        });
                    results.lock().unwrap().push((
                        i,
                        Outcome {
                            label: label.clone(),
                            result,
                        },
                    ));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, o)| o).collect()
}

fn report(title: &str, outcomes: &[Outcome], started: Instant) {
    println!("\n{title}");
    for o in outcomes {
        match &o.result {
            Ok(detail) => println!("  ok   {:<44} {detail}", o.label),
            Err(e) => println!("  FAIL {:<44} {}", o.label, e.lines().next().unwrap_or("")),
        }
    }
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    println!(
        "{} of {} held, in {:.1}s",
        outcomes.len() - failed.len(),
        outcomes.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failed.is_empty(),
        "{} scenario(s) failed:\n{}",
        failed.len(),
        failed
            .iter()
            .map(|o| format!("--- {}\n{}", o.label, o.result.as_ref().unwrap_err()))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn was_aborted(status: ExitStatus) -> bool {
    status.signal() == Some(6)
}

#[test]
fn a_crash_after_every_state_write_resumes_and_converges() {
    let started = Instant::now();
    let clean = std::sync::Arc::new(baseline());
    println!(
        "clean run: {} state writes, {} requests, {} mutating, {:.2}s",
        clean.writes,
        clean.requests,
        clean.mutations.values().sum::<usize>(),
        clean.seconds
    );
    assert!(clean.writes >= 10, "{} writes", clean.writes);
    let mut scenarios: Vec<(String, Box<dyn Fn() -> String + Send + Sync>)> = Vec::new();
    for n in 1..=clean.writes {
        let clean = clean.clone();
        scenarios.push((
            format!("abort after state write {n}"),
            Box::new(move || {
                let world = shop(config());
                let child = world
                    .command(APPLY)
                    .env(HOOK, n.to_string())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let pid = child.id();
                let out = child.wait_with_output().unwrap();
                assert!(
                    was_aborted(out.status),
                    "write {n}: expected an abort, got {:?}:\n{}",
                    out.status,
                    common::output_text(&out)
                );
                assert!(
                    common::output_text(&out).contains(&format!("aborting after state write {n}")),
                    "{}",
                    common::output_text(&out)
                );
                let label = format!("abort after write {n}");
                let site = crash_site(&world);
                let resumed = resume(&world, pid, &label);
                assert_converged(&world, &clean.mutations, &label);
                format!("{site}; {resumed}")
            }),
        ));
    }
    let outcomes = run_all(scenarios);
    report("crash after every state write", &outcomes, started);
}

/// Lines of the plain live view after which a run is SIGKILLed: every step's start, the
/// progress lines inside the waits, and every step's end.
const KILL_LINES: &[&str] = &[
    "role/shop-snapshot-role: started",
    "role/shop-snapshot-role: done",
    "domain/shop-copy: started",
    "domain/shop-copy: Creating",
    "domain/shop-copy: done",
    "bucket_policy/shop-snapshots: started",
    "bucket_policy/shop-snapshots: done",
    "repository/shop-prod:snapferry-shop: started",
    "repository/shop-prod:snapferry-shop: done",
    "snapshot/shop: started",
    "snapshot/shop: 0 of 3 shards",
    "snapshot/shop: 1 of 3 shards",
    "snapshot/shop: done",
    "repository/shop-copy:snapferry-shop: started",
    "repository/shop-copy:snapferry-shop: done",
    "restore/shop: started",
    "restore/shop: 0 of 3 shards recovered",
    "restore/shop: done",
    "verify/shop: started",
];

/// Spawns `apply` and SIGKILLs it once a line containing `trigger` is printed. Returns the
/// pid, whether the trigger was seen (a fast step may print nothing inside its wait) and
/// the exit status.
fn kill_at(world: &World, trigger: &str) -> (u32, bool, ExitStatus) {
    let mut child = world
        .command(APPLY)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = false;
    for line in stdout.lines() {
        let Ok(line) = line else { break };
        if !seen && line.contains(trigger) {
            seen = true;
            child.kill().unwrap();
        }
    }
    (pid, seen, child.wait().unwrap())
}

#[test]
fn a_sigkill_inside_every_step_resumes_and_converges() {
    let started = Instant::now();
    let clean = std::sync::Arc::new(baseline());
    let mut scenarios: Vec<(String, Box<dyn Fn() -> String + Send + Sync>)> = Vec::new();
    for trigger in KILL_LINES {
        let clean = clean.clone();
        scenarios.push((
            format!("SIGKILL at \"{trigger}\""),
            Box::new(move || {
                let world = shop(config());
                let (pid, seen, status) = kill_at(&world, trigger);
                let label = format!("SIGKILL at {trigger:?}");
                if !seen {
                    // The step finished before printing this line: nothing to kill.
                    assert!(status.success(), "{label}: {status:?}");
                    assert_converged(&world, &clean.mutations, &label);
                    return "line not printed in this run; completed".to_owned();
                }
                assert_eq!(status.signal(), Some(9), "{label}: {status:?}");
                let site = crash_site(&world);
                let resumed = resume(&world, pid, &label);
                assert_converged(&world, &clean.mutations, &label);
                format!("{site}; {resumed}")
            }),
        ));
    }
    // Twice in a row: killed inside the snapshot, then the resume aborted at its second write.
    for (trigger, then_write) in [
        ("snapshot/shop: started", 2),
        ("domain/shop-copy: Creating", 3),
        ("restore/shop: started", 2),
    ] {
        let clean = clean.clone();
        scenarios.push((
            format!("SIGKILL at \"{trigger}\", then abort at write {then_write} of the resume"),
            Box::new(move || {
                let world = shop(config());
                let label = format!("double crash {trigger:?}/{then_write}");
                let (_, seen, _) = kill_at(&world, trigger);
                assert!(seen, "{label}: line not printed");
                // No unlock: the resume takes the killed run's lock over, then aborts itself.
                let child = world
                    .command(APPLY)
                    .env(HOOK, then_write.to_string())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let pid = child.id();
                let out = child.wait_with_output().unwrap();
                assert!(
                    was_aborted(out.status),
                    "{label}:\n{}",
                    common::output_text(&out)
                );
                let resumed = resume(&world, pid, &label);
                assert_converged(&world, &clean.mutations, &label);
                resumed
            }),
        ));
    }
    let outcomes = run_all(scenarios);
    report("SIGKILL inside the steps", &outcomes, started);
}

#[test]
fn ctrl_c_during_the_domain_creation_stops_cleanly_and_apply_resumes() {
    // The full 20 simulated minutes (1.2 s): Ctrl-C surely lands while the domain is created.
    let mut config = config();
    config.latencies.domain_creation_secs = 1200.0;
    let world = shop(config);
    let mut child = world
        .command(APPLY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap());
    let mut output = String::new();
    let mut sent = false;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if !sent && line.contains("domain/shop-copy: Creating") {
            // `kill -INT`: the workspace denies unsafe code, and no signal crate is locked.
            let status = std::process::Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            sent = true;
        }
        output.push_str(&line);
        output.push('\n');
    }
    let status = child.wait().unwrap();
    output.push_str(&errors.join().unwrap());
    assert!(sent, "the domain creation printed no progress:\n{output}");
    assert_eq!(status.code(), Some(130), "{output}");
    for fragment in [
        "Stopping at the next safe point. Operations already started continue on AWS; \
         `snapferry apply` again resumes them.",
        "domain/shop-copy: interrupted; still running on AWS, `apply` again resumes",
        "Run `snapferry apply` again to resume.",
    ] {
        assert!(
            output.contains(fragment),
            "missing {fragment:?} in:\n{output}"
        );
    }
    let state = world.state(STATE);
    assert_eq!(
        state["nodes"]["domain/shop-copy"]["status"], "applying",
        "{state:#}"
    );
    assert!(
        !world.dir.path().join(LOCK).exists(),
        "Ctrl-C left the lock behind"
    );
    let clean = baseline();
    let resumed = world.run_ok(APPLY, 0);
    assert!(resumed.contains("Apply complete:"), "{resumed}");
    assert_converged(
        &world,
        &clean.mutations,
        "Ctrl-C during the domain creation",
    );
}

fn rule(kind: FaultKind, rate: f64) -> FaultRule {
    FaultRule {
        kind,
        service: None,
        operation: None,
        target: None,
        rate: Some(rate),
        nth: None,
        times: None,
        status: Some(503),
        delay_secs: Some(30.0),
    }
}

/// Throttling, 503s and dropped connections on about a fifth of all calls (IAM, S3, the
/// control plane and the domains' endpoints), and a tenth of the rest slowed down.
fn transport_faults(seed: u64) -> FaultsConfig {
    FaultsConfig {
        seed,
        // 1 - (1 - 0.072)^3 = 0.20 of calls fail.
        rules: vec![
            rule(FaultKind::Throttle, 0.072),
            rule(FaultKind::ServerError, 0.072),
            rule(FaultKind::DropConnection, 0.072),
            rule(FaultKind::Slow, 0.1),
        ],
    }
}

#[test]
fn with_a_fifth_of_calls_failing_apply_converges_without_a_retry_storm() {
    let started = Instant::now();
    let clean = std::sync::Arc::new(baseline());
    let mut scenarios: Vec<(String, Box<dyn Fn() -> String + Send + Sync>)> = Vec::new();
    for seed in [7, 11, 23, 42] {
        let clean = clean.clone();
        scenarios.push((
            format!("20% faults, seed {seed}"),
            Box::new(move || {
                let mut config = config();
                config.faults = transport_faults(seed);
                let world = shop(config);
                let out = world.run(APPLY);
                let all = common::output_text(&out);
                assert!(out.status.success(), "seed {seed}: apply failed:\n{all}");
                let log = world.sandbox().request_log();
                let faulted = log
                    .iter()
                    .filter(|r| r.fault.as_deref().is_some_and(|f| f != "Slow"))
                    .count();
                let retries = all.matches("retrying in").count();
                // The harness's own reads must not be faulted.
                world.sandbox().set_faults(0, vec![]);
                let requests = log.len();
                assert!(
                    requests <= 2 * clean.requests,
                    "seed {seed}: {requests} requests, a clean run makes {}",
                    clean.requests
                );
                assert_converged(&world, &clean.mutations, &format!("faults seed {seed}"));
                format!(
                    "1 apply; {requests} requests ({:.2}x clean {}), {faulted} failed by the sandbox, \
                     {retries} step retries shown",
                    requests as f64 / clean.requests as f64,
                    clean.requests
                )
            }),
        ));
    }
    let outcomes = run_all(scenarios);
    report("transport faults", &outcomes, started);
}

#[test]
fn a_partial_or_failed_snapshot_stops_naming_it_and_the_fix_and_apply_then_resumes() {
    for (kind, state) in [
        (FaultKind::SnapshotPartial, "PARTIAL"),
        (FaultKind::SnapshotFailed, "FAILED"),
    ] {
        let mut config = config();
        config.faults = FaultsConfig {
            seed: 1,
            rules: vec![FaultRule {
                operation: Some("CreateSnapshot".into()),
                rate: None,
                nth: Some(1),
                ..rule(kind, 0.0)
            }],
        };
        let world = shop(config);
        let out = flat(&world.run_ok(APPLY, 1));
        for fragment in [
            format!(
                "snapshot {SNAPSHOT} in repository {REPOSITORY} on domain shop-prod ended {state}"
            ),
            format!("delete it (DELETE _snapshot/{REPOSITORY}/{SNAPSHOT}) and apply again"),
            "Apply failed:".to_owned(),
        ] {
            assert!(
                out.contains(&fragment),
                "{state}: missing {fragment:?} in:\n{out}"
            );
        }
        let state_doc = world.state(STATE);
        assert_eq!(state_doc["nodes"]["snapshot/shop"]["status"], "failed");
        assert!(!world.dir.path().join(LOCK).exists());

        // Applying again without the fix changes nothing and says the same.
        world.sandbox().reset_log();
        let again = flat(&world.run_ok(APPLY, 1));
        assert!(
            again.contains(&format!(
                "snapshot {SNAPSHOT} in repository {REPOSITORY} on domain shop-prod already \
                 exists in state {state}"
            )) && again.contains(&format!("(DELETE _snapshot/{REPOSITORY}/{SNAPSHOT})")),
            "{state}:\n{again}"
        );
        assert_eq!(calls(&world, "CreateSnapshot"), 0, "{state}");

        // The fix the message names, then apply resumes and finishes.
        let client = world.domain("shop-prod");
        world
            .rt
            .block_on(client.delete_snapshot(REPOSITORY, SNAPSHOT))
            .unwrap();
        world.sandbox().reset_log();
        let resumed = world.run_ok(APPLY, 0);
        assert!(resumed.contains("Apply complete:"), "{state}:\n{resumed}");
        assert_eq!(calls(&world, "CreateSnapshot"), 1, "{state}");
        assert_eq!(
            calls(&world, "CreateDomain"),
            0,
            "{state}: domain created twice"
        );
        assert_eq!(snapshots(&world), [SNAPSHOT], "{state}");
        assert_eq!(
            user_indices(&world.counts("shop-copy")),
            user_indices(&world.counts("shop-prod")),
            "{state}"
        );
    }
}

#[test]
fn a_restore_into_an_existing_index_with_on_conflict_fail_is_refused_before_any_change() {
    let mut config = config();
    let mut target = source_domain("shop-copy", vec![index("orders", 5)]);
    target.engine_version = "OpenSearch_2.11".into();
    config.domains.push(target);
    let world = World::start_with(config);
    world.plan(
        "snapferry.yaml",
        &PLAN.replace("on_conflict: replace", "on_conflict: fail"),
    );
    // The plan already sees the index in the way: apply refuses before changing anything
    // (no snapshot taken for a restore that could not happen).
    let out = flat(&world.run_ok(APPLY, 1));
    for fragment in [
        "! restore/shop (blocked)",
        "indices orders already exist on domain shop-copy; set `restore.on_conflict` to \
         `replace` (delete and restore them), `skip` (leave them) or `rename` with a \
         `rename_pattern` that avoids them",
        "Nothing was changed.",
    ] {
        assert!(out.contains(fragment), "missing {fragment:?} in:\n{out}");
    }
    assert_eq!(world.mutating_calls(), vec![], "nothing half-applied");
    assert!(
        world
            .counts("shop-copy")
            .contains(&("orders".to_owned(), 5))
    );
    assert!(!world.dir.path().join(LOCK).exists());

    // The fix: let snapferry replace the index. One apply does all of it, once.
    world.plan("snapferry.yaml", PLAN);
    world.sandbox().reset_log();
    let resumed = world.run_ok(APPLY, 0);
    assert!(resumed.contains("Apply complete:"), "{resumed}");
    assert_eq!(calls(&world, "CreateSnapshot"), 1);
    assert_eq!(calls(&world, "DeleteIndex"), 1, "the one index in the way");
    assert_eq!(calls(&world, "RestoreSnapshot"), 1);
    assert_eq!(
        user_indices(&world.counts("shop-copy")),
        user_indices(&world.counts("shop-prod"))
    );
}

const SECRET_KEY: &str = "Rel1abilitySecretKey/DoNotLeak/0123456789";
const SESSION_TOKEN: &str = "RELIABILITY-SESSION-TOKEN-DoNotLeak-abcdef0123456789";

#[test]
fn at_vvv_neither_the_secret_key_nor_the_session_token_is_printed_or_stored() {
    let mut config = config();
    config.credentials.secret_access_key = SECRET_KEY.into();
    config.credentials.session_token = Some(SESSION_TOKEN.into());
    let world = shop(config);
    let out = world
        .command(&["apply", "--auto-approve", "--now", NOW, "-vvv"])
        .output()
        .unwrap();
    let all = common::output_text(&out);
    assert!(out.status.success(), "{all}");
    // The run really was traced, and really signed with the token (the sandbox demands it).
    assert!(
        all.lines().filter(|l| l.contains("TRACE")).count() > 100,
        "no trace output"
    );
    let state = std::fs::read_to_string(world.dir.path().join(STATE)).unwrap();
    for (what, text) in [("output", &all), ("state file", &state)] {
        assert!(
            !text.contains(SECRET_KEY),
            "the secret key is in the {what}"
        );
        assert!(
            !text.contains(SESSION_TOKEN),
            "the session token is in the {what}"
        );
        // Nor a recognisable part of them (a truncated or split rendering).
        assert!(
            !text.contains("DoNotLeak"),
            "part of a secret is in the {what}"
        );
    }
    let mode = std::fs::metadata(world.dir.path().join(STATE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "state file mode {:o}", mode & 0o777);
}

/// A valid state file, then broken on purpose: each must be refused with a message naming
/// it, before any AWS call, and left exactly as it was.
#[test]
fn a_broken_state_file_is_refused_before_any_call_and_left_unchanged() {
    let world = shop(config());
    world.run_ok(APPLY, 0);
    let path = world.dir.path().join(STATE);
    let good = std::fs::read_to_string(&path).unwrap();
    let truncated = good[..good.len() / 2].to_owned();
    let wrong_version = good.replacen("\"format_version\": 1", "\"format_version\": 99", 1);
    assert_ne!(wrong_version, good, "format_version not found in:\n{good}");
    let hand_edited = good.replacen("\"status\": \"done\"", "\"status\": \"finished\"", 1);
    assert_ne!(hand_edited, good, "no done status in:\n{good}");
    let cases = [
        (
            "truncated",
            truncated,
            "is corrupted (not valid JSON at line",
        ),
        (
            "wrong version",
            wrong_version,
            "has format version 99, this snapferry reads version 1",
        ),
        ("hand-edited", hand_edited, "is corrupted"),
    ];
    for (what, bytes, message) in cases {
        std::fs::write(&path, &bytes).unwrap();
        for command in [APPLY, &["plan"][..], &["status"][..]] {
            world.sandbox().reset_log();
            let out = flat(&world.run_ok(command, 1));
            assert!(
                out.contains(&format!("the state at {STATE}")) && out.contains(message),
                "{what}, {command:?}: missing {message:?} in:\n{out}"
            );
            assert_eq!(
                world.sandbox().request_log(),
                vec![],
                "{what}, {command:?}: calls were made"
            );
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                bytes,
                "{what}, {command:?}: the state file was changed"
            );
        }
    }
}

/// An `alias_swap` refresh with retention, on a target its first apply laid out in generations:
/// a week later only `orders` changed.
const SWAP_PLAN: &str = "  strategy: alias_swap\nsnapshot:\n  keep: 1\n";
const REFRESH: &[&str] = &["apply", "--auto-approve", "--now", "2026-11-08T03:00:00Z"];

fn swap_world() -> World {
    let world = World::start_with(config());
    world.plan("snapferry.yaml", &format!("{PLAN}{SWAP_PLAN}"));
    world.run_ok(APPLY, 0);
    world.add_documents("shop-prod", "orders", 100_000, 25);
    world.sandbox().reset_log();
    world
}

/// What must hold once the refresh has succeeded, whatever crashed on the way.
fn assert_swapped(world: &World, label: &str) {
    let source = user_indices(&world.counts("shop-prod"));
    let client = world.domain("shop-copy");
    let (held, through_aliases) = world.rt.block_on(async {
        let held: Vec<(String, Vec<String>)> = client
            .aliases()
            .await
            .unwrap()
            .into_iter()
            .filter(|(i, _)| !i.starts_with('.'))
            .map(|(i, a)| (i, a.into_keys().collect()))
            .collect();
        let mut counts = Vec::new();
        for (index, _) in &source {
            counts.push((index.clone(), client.count(index).await.unwrap()));
        }
        (held, counts)
    });
    assert_eq!(
        through_aliases, source,
        "{label}: counts through the aliases"
    );
    assert_eq!(
        held,
        [
            (
                "customers~shop-2026-11-01".to_owned(),
                vec!["customers".to_owned()]
            ),
            (
                "orders~shop-2026-11-08".to_owned(),
                vec!["orders".to_owned()]
            ),
            (
                "products~shop-2026-11-01".to_owned(),
                vec!["products".to_owned()]
            ),
        ],
        "{label}: generations and aliases"
    );
    assert_eq!(snapshots(world), ["shop-2026-11-08"], "{label}: keep: 1");
    // Carried out by the service: answered 2xx, or done and its answer lost on the way back.
    let succeeded = |op: &str| {
        world
            .mutating_calls()
            .iter()
            .filter(|r| r.operation == op)
            .filter(|r| match r.fault.as_deref() {
                None => (200..300).contains(&r.status),
                Some(f) => f.contains("(answer was 2"),
            })
            .count()
    };
    for op in [
        "CreateSnapshot",
        "RestoreSnapshot",
        "UpdateAliases",
        "DeleteSnapshot",
    ] {
        assert_eq!(succeeded(op), 1, "{label}: successful {op}");
    }
    assert_eq!(
        succeeded("DeleteIndex"),
        0,
        "{label}: an index deleted outside the swap"
    );
    let state = world.state(STATE);
    for (id, node) in state["nodes"].as_object().unwrap() {
        assert_eq!(node["status"], "done", "{label}: {id} is {node}");
    }
}

#[test]
fn an_alias_swap_refresh_crashed_at_every_checkpoint_resumes_and_swaps_once() {
    let started = Instant::now();
    let clean = {
        let world = swap_world();
        let before = world.state(STATE)["generation"].as_u64().unwrap();
        world.run_ok(REFRESH, 0);
        assert_swapped(&world, "clean refresh");
        world.state(STATE)["generation"].as_u64().unwrap() - before
    };
    assert!(clean >= 6, "{clean} writes");
    let mut scenarios: Vec<(String, Box<dyn Fn() -> String + Send + Sync>)> = Vec::new();
    for n in 1..=clean {
        scenarios.push((
            format!("refresh aborted after state write {n}"),
            Box::new(move || {
                let world = swap_world();
                let out = world
                    .command(REFRESH)
                    .env(HOOK, n.to_string())
                    .output()
                    .unwrap();
                assert!(
                    was_aborted(out.status),
                    "write {n}: {}",
                    common::output_text(&out)
                );
                let site = crash_site(&world);
                let resumed = world.run(REFRESH);
                assert!(
                    resumed.status.success(),
                    "write {n}: {}",
                    common::output_text(&resumed)
                );
                assert_swapped(&world, &format!("abort after write {n}"));
                site
            }),
        ));
    }
    // Inside the restore step: each of its mutating calls done, its answer lost (a crash
    // between the service acting and the tool hearing it), then the run goes on or is resumed.
    for op in ["RestoreSnapshot", "UpdateAliases", "DeleteSnapshot"] {
        scenarios.push((
            format!("answer of {op} lost"),
            Box::new(move || {
                let world = swap_world();
                world
                    .sandbox()
                    .set_faults(7, vec![common::fault_once(FaultKind::LostAnswer, None, op)]);
                let first = world.run(REFRESH);
                if !first.status.success() {
                    world.sandbox().set_faults(7, vec![]);
                    world.run_ok(REFRESH, 0);
                }
                assert_swapped(&world, &format!("answer of {op} lost"));
                format!(
                    "{}; converged",
                    if first.status.success() {
                        "the run itself recovered"
                    } else {
                        "resumed by the next apply"
                    }
                )
            }),
        ));
    }
    let outcomes = run_all(scenarios);
    report(
        "alias_swap refresh crashed at every checkpoint",
        &outcomes,
        started,
    );
}
