//! Issue #8's figures: the real `snapferry` binary against the sandbox with scaled latencies.
//! One simulated minute is `unit()` of real time (50 ms; one run also at 200 ms); the sandbox runs on that scale and the binary
//! polls on it (`SNAPFERRY_POLL_SCALE`), so describe-call counts and notice delays are those an
//! AWS run would see, and wall times divide by the unit into simulated minutes.
//!
//! Latencies (simulated minutes): domain creation 20, snapshot 10, restore 10, role creation,
//! bucket policy and each repository registration 1; reads and verification take only the
//! real time they cost. `cargo bench -p snapferry-cli --bench replication` (`just bench`)
//! prints every figure as a table; docs/performance.md records the last run.
//!
//! Issue #19's refresh figures use the sandbox's default pricing instead (a snapshot or restore
//! is a few seconds fixed plus its bytes): an `alias_swap` refresh after 5% of the documents
//! changed against the first full copy into the same existing target, a reader counting every
//! alias during it, and a 1,000-index target's `plan` and requests per restore poll.
//! `SNAPFERRY_BENCH_TIMELINE=1` also prints the concentrated refresh's requests in simulated
//! seconds, to see where its time goes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use snapferry_engine::PollSchedule;
use snapferry_engine::poll::Expected;
use snapferry_sandbox::{
    LoggedRequest, Sandbox, SandboxConfig, SandboxHandle, SeedDomain, SeedIndex,
};

/// Real milliseconds per simulated minute for the run under way (set by `main` before each).
static UNIT_MS: AtomicU64 = AtomicU64::new(50);
const DOMAIN_UNITS: f64 = 20.0;
const SNAPSHOT_UNITS: f64 = 10.0;
const RESTORE_UNITS: f64 = 10.0;
const STEP_UNITS: f64 = 1.0;
const FLEET: usize = 50;
const FLEET_PARALLELISM: usize = 10;
const VALIDATE_REPLICATIONS: usize = 200;

const BIN: &str = env!("CARGO_BIN_EXE_snapferry");

/// Real seconds per simulated second, for the sandbox and the poll schedule alike.
fn unit() -> Duration {
    Duration::from_millis(UNIT_MS.load(Ordering::Relaxed))
}

fn scale() -> f64 {
    unit().as_secs_f64() / 60.0
}

fn units(d: Duration) -> f64 {
    d.as_secs_f64() / unit().as_secs_f64()
}

/// Simulated minutes a step of this kind takes in the sandbox.
fn step_units(kind: &str, domain_units: f64) -> f64 {
    match kind {
        "domain" => domain_units,
        "snapshot" => SNAPSHOT_UNITS,
        "restore" => RESTORE_UNITS,
        "role" | "bucket_policy" | "repository" => STEP_UNITS,
        _ => 0.0,
    }
}

fn sandbox_config(domain_units: f64, domains: Vec<SeedDomain>, bucket: &str) -> SandboxConfig {
    let mut config = SandboxConfig {
        time_scale: scale(),
        domains,
        buckets: vec![bucket.to_owned()],
        ..SandboxConfig::default()
    };
    let l = &mut config.latencies;
    l.domain_creation_secs = domain_units * 60.0;
    l.snapshot_secs = SNAPSHOT_UNITS * 60.0;
    l.snapshot_secs_per_kib = 0.0;
    l.restore_secs = RESTORE_UNITS * 60.0;
    l.restore_secs_per_kib = 0.0;
    for op in ["CreateRole", "PutBucketPolicy", "PutRepository"] {
        l.operations.insert(op.to_owned(), STEP_UNITS * 60.0);
    }
    config
}

fn source(name: &str, docs: u64) -> SeedDomain {
    SeedDomain {
        name: name.to_owned(),
        engine_version: "OpenSearch_2.11".into(),
        ready: true,
        indices: vec![SeedIndex {
            name: "events".into(),
            documents: Vec::new(),
            generate: docs,
            settings: None,
            mappings: None,
        }],
        kibana: true,
        vpc: false,
    }
}

/// A sandbox on its own runtime (it keeps serving while the bench blocks on the binary).
struct Rig {
    rt: tokio::runtime::Runtime,
    sandbox: Option<SandboxHandle>,
    dir: tempfile::TempDir,
}

/// One finished run of the binary.
struct Run {
    wall: Duration,
    /// Peak resident set (kB), from `/usr/bin/time` or the child's `/proc/<pid>/status`.
    max_rss_kb: Option<u64>,
    output: Output,
}

impl Rig {
    fn start(config: SandboxConfig) -> Rig {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let sandbox = rt.block_on(Sandbox::start(config)).expect("sandbox");
        Rig {
            rt,
            sandbox: Some(sandbox),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn sandbox(&self) -> &SandboxHandle {
        self.sandbox.as_ref().expect("running")
    }

    fn plan(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write plan");
        path
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(self.dir.path())
            .stdin(Stdio::null())
            .env("HOME", self.dir.path())
            .env("NO_COLOR", "1")
            .env("SNAPFERRY_POLL_SCALE", scale().to_string())
            // The default request rate per API, on the sandbox's compressed clock.
            .env(
                "SNAPFERRY_MAX_RATE",
                (snapferry_aws::resources::DEFAULT_RATE_PER_SECOND / scale()).to_string(),
            );
        for key in snapferry_tests::SCRUBBED_ENV {
            cmd.env_remove(key);
        }
        for (key, value) in self.sandbox().env() {
            cmd.env(key, value);
        }
        cmd
    }

    /// Runs `snapferry args`, measuring wall time and peak RSS; panics unless it succeeds.
    fn run(&self, args: &[&str]) -> Run {
        let run = measure(self.command(BIN), args, self.dir.path());
        assert!(
            run.output.status.success(),
            "snapferry {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&run.output.stdout),
            String::from_utf8_lossy(&run.output.stderr)
        );
        run
    }

    fn state(&self, relative: &str) -> serde_json::Value {
        let bytes = std::fs::read(self.dir.path().join(relative)).expect("state file");
        serde_json::from_slice(&bytes).expect("state JSON")
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(sandbox) = self.sandbox.take() {
            self.rt.block_on(sandbox.shutdown());
        }
    }
}

/// Runs `cmd` (whose program is the binary) with `args`, under `/usr/bin/time` for its peak
/// RSS when that exists, else sampling the child's `VmHWM` while it runs.
fn measure(cmd: Command, args: &[&str], dir: &Path) -> Run {
    let time = Path::new("/usr/bin/time");
    if time.exists() {
        let rss_file = dir.join("rss.txt");
        let mut wrapped = Command::new(time);
        wrapped.arg("-f").arg("%M").arg("-o").arg(&rss_file);
        wrapped.arg(cmd.get_program()).args(args);
        wrapped.current_dir(cmd.get_current_dir().unwrap_or(dir));
        wrapped.stdin(Stdio::null());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => wrapped.env(k, v),
                None => wrapped.env_remove(k),
            };
        }
        let started = Instant::now();
        let output = wrapped.output().expect("run /usr/bin/time");
        let wall = started.elapsed();
        let max_rss_kb = std::fs::read_to_string(&rss_file)
            .ok()
            .and_then(|t| t.lines().last()?.trim().parse().ok());
        return Run {
            wall,
            max_rss_kb,
            output,
        };
    }
    let mut cmd = cmd;
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let child = cmd.spawn().expect("spawn snapferry");
    let status_path = format!("/proc/{}/status", child.id());
    let pid_done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = pid_done.clone();
        std::thread::spawn(move || {
            let mut peak = None;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(kb) = std::fs::read_to_string(&status_path).ok().and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmHWM:"))?
                        .split_whitespace()
                        .nth(1)?
                        .parse::<u64>()
                        .ok()
                }) {
                    peak = Some(kb);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        })
    };
    let output = child.wait_with_output().expect("wait for snapferry");
    let wall = started.elapsed();
    pid_done.store(true, std::sync::atomic::Ordering::Relaxed);
    Run {
        wall,
        max_rss_kb: sampler.join().expect("sampler"),
        output,
    }
}

fn at(r: &LoggedRequest) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&r.time)
        .expect("log time")
        .with_timezone(&Utc)
}

fn since(a: DateTime<Utc>, b: DateTime<Utc>) -> Duration {
    (b - a).to_std().unwrap_or(Duration::ZERO)
}

/// What the request log says about one wait: polls and how late the last one came.
struct Wait {
    /// Polls from the starting call to (and including) the one that saw the result.
    polls: usize,
    /// From the operation finishing in the sandbox to that poll.
    notice: Duration,
}

/// The wait for an operation started by the first request matching `start` and finished
/// `units` simulated minutes later, polled by requests matching `poll`.
fn wait_in_log(
    log: &[LoggedRequest],
    start: impl Fn(&LoggedRequest) -> bool,
    poll: impl Fn(&LoggedRequest) -> bool,
    units: f64,
) -> Wait {
    let started = log.iter().find(|r| start(r)).map(at).expect("start call");
    let ready = started + unit().mul_f64(units);
    let polls: Vec<DateTime<Utc>> = log
        .iter()
        .filter(|r| poll(r) && r.status == 200)
        .map(at)
        .filter(|t| *t >= started)
        .collect();
    let noticed = polls
        .iter()
        .copied()
        .find(|t| *t >= ready)
        .expect("a poll after the operation finished");
    Wait {
        polls: polls.iter().filter(|t| **t <= noticed).count(),
        notice: since(ready, noticed),
    }
}

/// DescribeDomain calls while `domain` was created, and the notice delay.
fn domain_wait(log: &[LoggedRequest], domain: &str, domain_units: f64) -> Wait {
    let about = |r: &LoggedRequest| r.target.as_deref() == Some(domain);
    wait_in_log(
        log,
        |r| about(r) && r.operation == "CreateDomain",
        |r| about(r) && r.operation == "DescribeDomain",
        domain_units,
    )
}

fn single_plan() -> &'static str {
    "version: 1\nname: shop\nregion: us-east-1\nbucket:\n  name: shop-snapshots\n  create: true\n\
     source:\n  domain: shop-prod\ntarget:\n  domain: shop-copy\n"
}

fn fleet_plan(n: usize) -> String {
    let mut text = String::from(
        "version: 1\nname: fleet\nregion: us-east-1\nbucket:\n  name: fleet-snapshots\n  \
         create: true\nreplications:\n",
    );
    for i in 0..n {
        text.push_str(&format!(
            "  - name: r{i:03}\n    source: {{ domain: src-{i:03} }}\n    target: {{ domain: dst-{i:03} }}\n"
        ));
    }
    text
}

/// Critical path and sequential sum of a plan, in simulated minutes, from the latencies.
fn path_and_sum(plan_text: &str, domain_units: f64) -> (f64, f64, Vec<String>) {
    let plan = snapferry_plan::parse("plan.yaml", plan_text).expect("plan parses");
    let graph = plan.graph();
    let minute = Duration::from_secs(60);
    let path = graph.critical_path(|n| minute.mul_f64(step_units(n.id.kind(), domain_units)));
    let sum: f64 = graph
        .nodes()
        .map(|n| step_units(n.id.kind(), domain_units))
        .sum();
    let mut nodes: Vec<String> = path.nodes.iter().map(ToString::to_string).collect();
    nodes.reverse();
    (path.total.as_secs_f64() / 60.0, sum, nodes)
}

struct Single {
    wall: Duration,
    /// First to last AWS request of the apply: its time without process start and exit.
    span: Duration,
    critical: f64,
    sequential: f64,
    path: Vec<String>,
    wait: Wait,
    snapshot: Wait,
    restore: Wait,
    generation: u64,
    max_rss_kb: Option<u64>,
}

fn single(domain_units: f64) -> Single {
    let rig = Rig::start(sandbox_config(
        domain_units,
        vec![source("shop-prod", 500)],
        "shop-snapshots",
    ));
    rig.plan("snapferry.yaml", single_plan());
    rig.sandbox().reset_log();
    let run = rig.run(&["apply", "--auto-approve"]);
    let log = rig.sandbox().request_log();
    let span = since(at(&log[0]), at(log.last().expect("requests")));
    let (critical, sequential, path) = path_and_sum(single_plan(), domain_units);
    let generation = rig.state(".snapferry/shop.state.json")["generation"]
        .as_u64()
        .expect("generation");
    Single {
        wall: run.wall,
        span,
        critical,
        sequential,
        path,
        wait: domain_wait(&log, "shop-copy", domain_units),
        snapshot: wait_in_log(
            &log,
            |r| r.operation == "CreateSnapshot",
            |r| r.operation == "GetSnapshot",
            SNAPSHOT_UNITS,
        ),
        restore: wait_in_log(
            &log,
            |r| r.operation == "RestoreSnapshot",
            |r| r.operation == "Recovery",
            RESTORE_UNITS,
        ),
        generation,
        max_rss_kb: run.max_rss_kb,
    }
}

struct Fleet {
    nodes: usize,
    plan_wall: Duration,
    plan_reads: usize,
    plan_mutating: usize,
    plan_rss_kb: Option<u64>,
    apply_wall: Duration,
    critical: f64,
    /// Σ of every step's time (simulated minutes).
    work: f64,
    max_describes: usize,
    max_notice: Duration,
}

fn fleet() -> Fleet {
    let sources = (0..FLEET)
        .map(|i| source(&format!("src-{i:03}"), 50))
        .collect();
    let rig = Rig::start(sandbox_config(DOMAIN_UNITS, sources, "fleet-snapshots"));
    let text = fleet_plan(FLEET);
    rig.plan("snapferry.yaml", &text);
    let nodes = snapferry_plan::parse("plan.yaml", &text)
        .expect("fleet plan parses")
        .graph()
        .len();
    rig.sandbox().reset_log();
    let plan = rig.run(&["plan"]);
    let log = rig.sandbox().request_log();
    let plan_mutating = log.iter().filter(|r| r.mutating).count();
    let plan_reads = log.len() - plan_mutating;
    rig.sandbox().reset_log();
    let parallelism = FLEET_PARALLELISM.to_string();
    let apply = rig.run(&["apply", "--auto-approve", "--parallelism", &parallelism]);
    let log = rig.sandbox().request_log();
    let waits: Vec<Wait> = (0..FLEET)
        .map(|i| domain_wait(&log, &format!("dst-{i:03}"), DOMAIN_UNITS))
        .collect();
    Fleet {
        nodes,
        plan_wall: plan.wall,
        plan_reads,
        plan_mutating,
        plan_rss_kb: plan.max_rss_kb,
        apply_wall: apply.wall,
        critical: path_and_sum(&text, DOMAIN_UNITS).0,
        work: path_and_sum(&text, DOMAIN_UNITS).1,
        max_describes: waits.iter().map(|w| w.polls).max().unwrap_or(0),
        max_notice: waits.iter().map(|w| w.notice).max().unwrap_or_default(),
    }
}

/// Issue #19: indices in the refresh scenario, and documents in each.
const REFRESH_INDICES: usize = 20;
const REFRESH_DOCS: u64 = 1000;
const WIDE_INDICES: usize = 1000;

fn refresh_plan() -> &'static str {
    "version: 1\nname: shop\nregion: us-east-1\nbucket:\n  name: shop-snapshots\n  create: true\n\
     source:\n  domain: shop-prod\ntarget:\n  domain: shop-copy\nrestore:\n  strategy: alias_swap\n"
}

/// A source of `n` indices of `docs` generated documents each, and an existing empty target
/// of the same shape (adopted as it is, so both runs time the data, not a domain creation),
/// priced as the sandbox prices snapshots and restores by default: a few seconds fixed, the
/// rest by the bytes uploaded or copied.
fn refresh_rig(n: usize, docs: u64) -> Rig {
    let indices = (0..n)
        .map(|i| SeedIndex {
            name: format!("logs-{i:04}"),
            documents: Vec::new(),
            generate: docs,
            settings: None,
            mappings: None,
        })
        .collect();
    let mut target = source("shop-copy", 0);
    target.indices.clear();
    let mut config = SandboxConfig {
        time_scale: scale(),
        domains: vec![
            SeedDomain {
                indices,
                ..source("shop-prod", 0)
            },
            target,
        ],
        ..SandboxConfig::default()
    };
    config.latencies.domain_creation_secs = DOMAIN_UNITS * 60.0;
    let rig = Rig::start(config);
    rig.plan("snapferry.yaml", refresh_plan());
    rig
}

impl Rig {
    /// A data-plane client of a domain, signing as the sandbox's default identity.
    fn domain(&self, name: &str) -> snapferry_aws::opensearch::OpenSearch {
        use snapferry_aws::domain_http::{DomainHttp, DomainHttpConfig, ProxyChoice};
        let env: std::collections::BTreeMap<String, String> =
            self.sandbox().env().into_iter().collect();
        let credentials = aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new(
                env["AWS_ACCESS_KEY_ID"].clone(),
                env["AWS_SECRET_ACCESS_KEY"].clone(),
                env.get("AWS_SESSION_TOKEN").cloned(),
                None,
                "bench",
            ),
        );
        let endpoint = self.sandbox().domain_endpoint(name).expect("an endpoint");
        let mut config = DomainHttpConfig::new(name, &endpoint, "us-east-1");
        config.proxy = ProxyChoice::Direct;
        config.ca_bundle = Some(self.sandbox().ca_bundle_path().to_owned());
        snapferry_aws::opensearch::OpenSearch::new(
            DomainHttp::new(&config, credentials).expect("a domain client"),
        )
    }

    /// Rewrites documents of the source in one `_bulk`: `(index, id)` pairs.
    fn rewrite(&self, docs: &[(String, u64)]) {
        let client = self.domain("shop-prod");
        let mut body = String::new();
        for (index, id) in docs {
            body.push_str(&format!(
                "{{\"index\":{{\"_index\":\"{index}\",\"_id\":\"{id}\"}}}}\n{{\"n\":{id},\"title\":\"changed {id}\"}}\n"
            ));
        }
        self.rt
            .block_on(client.http().send_raw(
                http::Method::POST,
                "/_bulk?refresh=true",
                snapferry_aws::domain_http::RawBody {
                    content_type: Some("application/x-ndjson".into()),
                    bytes: body.into_bytes(),
                    headers: Vec::new(),
                },
            ))
            .expect("_bulk");
    }
}

/// The first full copy and a refresh a week later after 5% of the documents changed.
struct Refresh {
    first: Duration,
    refresh: Duration,
    /// Generations the refresh restored, of `REFRESH_INDICES`.
    restored: usize,
    /// A reader counting every alias during the refresh: answers, failures.
    reads: usize,
    failed: usize,
}

/// `spread`: the changed 5% is spread over every index (50 documents each) rather than being
/// one whole index of twenty (the time-series shape, where only the newest index is written).
fn refresh(spread: bool) -> Refresh {
    let rig = refresh_rig(REFRESH_INDICES, REFRESH_DOCS);
    let first = rig.run(&["apply", "--auto-approve", "--now", "2026-11-01T03:00:00Z"]);
    let changed: Vec<(String, u64)> = if spread {
        (0..REFRESH_INDICES)
            .flat_map(|i| (0..REFRESH_DOCS / 20).map(move |d| (format!("logs-{i:04}"), d * 20)))
            .collect()
    } else {
        (0..REFRESH_DOCS)
            .map(|d| (format!("logs-{:04}", REFRESH_INDICES - 1), d))
            .collect()
    };
    assert_eq!(
        changed.len() as u64 * 20,
        REFRESH_INDICES as u64 * REFRESH_DOCS,
        "5% of the documents"
    );
    rig.rewrite(&changed);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let client = rig.domain("shop-copy");
        let stop = stop.clone();
        rig.rt.spawn(async move {
            let (mut reads, mut failed) = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                for i in 0..REFRESH_INDICES {
                    reads += 1;
                    if client.count(&format!("logs-{i:04}")).await.is_err() {
                        failed += 1;
                    }
                }
            }
            (reads, failed)
        })
    };
    rig.sandbox().reset_log();
    let refresh = rig.run(&["apply", "--auto-approve", "--now", "2026-11-08T03:00:00Z"]);
    stop.store(true, Ordering::Relaxed);
    let (reads, failed) = rig.rt.block_on(reader).expect("reader");
    if std::env::var_os("SNAPFERRY_BENCH_TIMELINE").is_some() {
        timeline(&rig.sandbox().request_log(), &refresh.output.stderr);
    }
    let restored = rig
        .sandbox()
        .request_log()
        .iter()
        .filter(|r| r.operation == "RestoreSnapshot")
        .count();
    let restored = if restored == 0 {
        0
    } else {
        rig.rt
            .block_on(rig.domain("shop-copy").aliases())
            .expect("aliases")
            .keys()
            .filter(|i| i.ends_with("~shop-2026-11-08"))
            .count()
    };
    Refresh {
        first: first.wall,
        refresh: refresh.wall,
        restored,
        reads,
        failed,
    }
}

/// Where a run's time went (`SNAPFERRY_BENCH_TIMELINE=1 just bench`): every request but the
/// reader's, in simulated seconds since the first, then the run's own log.
fn timeline(log: &[LoggedRequest], stderr: &[u8]) {
    let reader = |r: &&LoggedRequest| r.operation == "Count";
    let Some(first) = log.iter().find(|r| !reader(r)).map(at) else {
        return;
    };
    for r in log.iter().filter(|r| !reader(r)) {
        eprintln!(
            "{:>8.1} s  {:<8} {:<24} {} {}",
            units(since(first, at(r))) * 60.0,
            r.service,
            r.operation,
            r.target.as_deref().unwrap_or(""),
            r.status
        );
    }
    eprintln!("{}", String::from_utf8_lossy(stderr));
}

/// A target of 1,000 indices: requests per poll of the first restore, and `plan` of the
/// weekly refresh.
struct Wide {
    polls: usize,
    requests_in_wait: usize,
    plan_wall: Duration,
}

fn wide() -> Wide {
    let rig = refresh_rig(WIDE_INDICES, 1);
    rig.sandbox().reset_log();
    rig.run(&["apply", "--auto-approve", "--now", "2026-11-01T03:00:00Z"]);
    let log = rig.sandbox().request_log();
    // During the restore's wait only the target is asked (a data-plane entry's `target` is
    // the index named, not the domain).
    let on_target = |r: &&LoggedRequest| r.service == "es-data";
    let restore = log
        .iter()
        .position(|r| r.operation == "RestoreSnapshot")
        .expect("a restore");
    // The wait runs from its first `_recovery` to the count check that follows it (the
    // first count after the polls): every data-plane request in between is the wait's.
    let first = (restore..log.len())
        .find(|i| log[*i].operation == "Recovery" && on_target(&&log[*i]))
        .expect("a poll");
    let end = (first..log.len())
        .find(|i| matches!(log[*i].operation.as_str(), "MultiSearch" | "Count"))
        .expect("the count check after the wait");
    let wait: Vec<&LoggedRequest> = log[first..end].iter().filter(on_target).collect();
    let polls: Vec<&&LoggedRequest> = wait.iter().filter(|r| r.operation == "Recovery").collect();
    let requests_in_wait = wait.len();
    let plan = rig.run(&["plan", "--now", "2026-11-08T03:00:00Z"]);
    Wide {
        polls: polls.len(),
        requests_in_wait,
        plan_wall: plan.wall,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is accepted and ignored.
    let total = Instant::now();
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut row = |what: &str, value: String, target: &str| {
        rows.push((what.to_owned(), value, target.to_owned()));
    };

    // The schedule itself: the cost of waiting for a domain finishing at these minutes.
    let plain = PollSchedule::default();
    let expecting = plain.expecting(Expected::between(
        Duration::from_secs(15 * 60),
        Duration::from_secs(30 * 60),
    ));
    let minute = |m: u64| Duration::from_secs(m * 60);
    for m in [15, 20, 25, 30, 45] {
        let c = expecting.cost_of(minute(m));
        let worst = expecting.worst_notice_delay(
            minute(m) - Duration::from_secs(60),
            minute(m),
            Duration::from_secs(1),
        );
        let p = plain.cost_of(minute(m));
        let pw = plain.worst_notice_delay(
            minute(m) - Duration::from_secs(60),
            minute(m),
            Duration::from_secs(1),
        );
        row(
            &format!(
                "schedule: domain ready at {m} min — describe calls / notice ≤ (plain schedule)"
            ),
            format!(
                "{} / {:.0} s ({} / {:.0} s)",
                c.calls,
                worst.as_secs_f64(),
                p.calls,
                pw.as_secs_f64()
            ),
            if m <= 30 {
                "≤ 60 calls; ≤ 15 s at 30 min"
            } else {
                "beyond the window: 60 s cap"
            },
        );
    }

    let mut one_replication = Duration::ZERO;
    for (unit_ms, domain_units) in [(50, DOMAIN_UNITS), (50, 30.0), (200, DOMAIN_UNITS)] {
        UNIT_MS.store(unit_ms, Ordering::Relaxed);
        let s = single(domain_units);
        if unit_ms == 50 && domain_units == DOMAIN_UNITS {
            one_replication = s.wall;
        }
        let tag = format!("single (domain {domain_units:.0} min, {unit_ms} ms/min)");
        row(
            &format!("{tag}: critical path / sequential sum (simulated min)"),
            format!(
                "{:.0} / {:.0}  [{}]",
                s.critical,
                s.sequential,
                s.path.join(" → ")
            ),
            "",
        );
        row(
            &format!("{tag}: apply wall time"),
            format!("{:.2} s = {:.1} min", s.wall.as_secs_f64(), units(s.wall)),
            "",
        );
        row(
            &format!("{tag}: wall / critical path"),
            format!("{:.3}", units(s.wall) / s.critical),
            "≤ 1.05",
        );
        row(
            &format!("{tag}: first→last AWS request / critical path"),
            format!("{:.3}", units(s.span) / s.critical),
            "",
        );
        row(
            &format!("{tag}: wall / sequential sum"),
            format!("{:.3}", units(s.wall) / s.sequential),
            "well under 1",
        );
        row(
            &format!("{tag}: DescribeDomain calls while creating (per simulated min)"),
            format!(
                "{} ({:.2}/min)",
                s.wait.polls,
                s.wait.polls as f64 / domain_units
            ),
            "≤ 60 for 30 min",
        );
        row(
            &format!("{tag}: notice delay (ready → seen)"),
            format!(
                "{:.0} ms real = {:.1} s simulated",
                s.wait.notice.as_secs_f64() * 1000.0,
                s.wait.notice.as_secs_f64() / scale()
            ),
            "≤ 15 s at 30 min",
        );
        for (what, w, minutes) in [
            ("snapshot", &s.snapshot, SNAPSHOT_UNITS),
            ("restore", &s.restore, RESTORE_UNITS),
        ] {
            row(
                &format!("{tag}: {what} ({minutes:.0} min, no expectation) — polls / notice delay"),
                format!(
                    "{} / {:.1} s simulated",
                    w.polls,
                    w.notice.as_secs_f64() / scale()
                ),
                "",
            );
        }
        if unit_ms == 50 && domain_units == DOMAIN_UNITS {
            row(
                "single: checkpoint writes per apply (state generation)",
                s.generation.to_string(),
                "",
            );
            row(
                "single: peak RSS of apply",
                s.max_rss_kb.map_or("unavailable".into(), |kb| {
                    format!("{:.1} MB", kb as f64 / 1024.0)
                }),
                "< 50 MB",
            );
        }
    }

    UNIT_MS.store(50, Ordering::Relaxed);
    let f = fleet();
    let mb = |kb: Option<u64>| {
        kb.map_or("unavailable".into(), |kb| {
            format!("{:.1} MB", kb as f64 / 1024.0)
        })
    };
    row(
        &format!(
            "fleet ({FLEET} replications, {} steps): plan wall time",
            f.nodes
        ),
        format!("{:.2} s", f.plan_wall.as_secs_f64()),
        "",
    );
    row(
        "fleet: plan read calls (per step), mutating calls",
        format!(
            "{} ({:.2}/step), {}",
            f.plan_reads,
            f.plan_reads as f64 / f.nodes as f64,
            f.plan_mutating
        ),
        "reads only",
    );
    row("fleet: peak RSS of plan", mb(f.plan_rss_kb), "");
    let ideal = one_replication.mul_f64(FLEET as f64 / FLEET_PARALLELISM as f64);
    row(
        &format!("fleet: apply --parallelism {FLEET_PARALLELISM} wall time"),
        format!(
            "{:.2} s = {:.1} min (critical path {:.0} min)",
            f.apply_wall.as_secs_f64(),
            units(f.apply_wall),
            f.critical
        ),
        "",
    );
    row(
        &format!("fleet: apply wall / ({FLEET}/{FLEET_PARALLELISM} × one replication's wall)"),
        format!(
            "{:.3}  ({:.2} s)",
            f.apply_wall.as_secs_f64() / ideal.as_secs_f64(),
            ideal.as_secs_f64()
        ),
        "≈ 1",
    );
    // With `parallelism` steps in flight at once (a waiting step holds its slot), no schedule
    // beats Σ step time / parallelism.
    let bound = f.critical.max(f.work / FLEET_PARALLELISM as f64);
    row(
        &format!("fleet: apply wall / max(critical path, Σ step time / {FLEET_PARALLELISM})"),
        format!("{:.3}  ({bound:.0} min)", units(f.apply_wall) / bound),
        "",
    );
    row(
        "fleet: worst domain of 50 — describe calls / notice delay (simulated)",
        format!(
            "{} / {:.1} s",
            f.max_describes,
            f.max_notice.as_secs_f64() / scale()
        ),
        "",
    );

    // Issue #19: the refresh at the cost of the change.
    UNIT_MS.store(50, Ordering::Relaxed);
    for (spread, shape) in [
        (false, "5% changed = 1 of 20 indices rewritten"),
        (true, "5% changed, spread over all 20 indices"),
    ] {
        let r = refresh(spread);
        row(
            &format!("refresh ({shape}): first full copy / alias_swap refresh"),
            format!(
                "{:.1} / {:.1} min (restored {} of {REFRESH_INDICES} indices)",
                units(r.first),
                units(r.refresh),
                r.restored
            ),
            "",
        );
        row(
            &format!("refresh ({shape}): refresh / first full copy"),
            format!("{:.3}", r.refresh.as_secs_f64() / r.first.as_secs_f64()),
            if spread { "" } else { "≤ 0.25" },
        );
        row(
            &format!("refresh ({shape}): reader on every alias — failed / answered"),
            format!("{} / {}", r.failed, r.reads),
            "0 failed",
        );
    }
    let w = wide();
    row(
        &format!("refresh of {WIDE_INDICES} indices: plan wall time"),
        format!("{:.2} s", w.plan_wall.as_secs_f64()),
        "< 3 s",
    );
    row(
        &format!("refresh of {WIDE_INDICES} indices: requests per restore poll"),
        format!(
            "{:.2} ({} requests over {} polls)",
            w.requests_in_wait as f64 / w.polls as f64,
            w.requests_in_wait,
            w.polls
        ),
        "≤ 2",
    );

    // Overheads.
    let rig = Rig::start(sandbox_config(DOMAIN_UNITS, Vec::new(), "unused"));
    let version = median(
        (0..10)
            .map(|_| rig.run(&["--version"]).wall)
            .collect::<Vec<_>>(),
    );
    row(
        "process start-up (snapferry --version, median of 10)",
        format!("{:.1} ms", version.as_secs_f64() * 1000.0),
        "",
    );
    let big = rig.plan("big.yaml", &fleet_plan(VALIDATE_REPLICATIONS));
    let big = big.to_str().expect("utf-8 path").to_owned();
    let validate = median(
        (0..5)
            .map(|_| rig.run(&["validate", "-f", &big]).wall)
            .collect::<Vec<_>>(),
    );
    row(
        &format!("validate of {VALIDATE_REPLICATIONS} replications (median of 5)"),
        format!("{:.1} ms", validate.as_secs_f64() * 1000.0),
        "",
    );

    let width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let vwidth = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    println!(
        "\nsnapferry replication benchmark — 1 simulated minute = 50 ms real (one run: 200 ms); \
         latencies in simulated minutes: domain {DOMAIN_UNITS}, snapshot {SNAPSHOT_UNITS}, \
         restore {RESTORE_UNITS}, role / bucket policy / repository {STEP_UNITS}"
    );
    println!("| {:width$} | {:vwidth$} | target |", "figure", "value");
    println!("| {} | {} | --- |", "-".repeat(width), "-".repeat(vwidth));
    for (what, value, target) in &rows {
        println!("| {what:width$} | {value:vwidth$} | {target} |");
    }
    println!("\nbench run took {:.1} s", total.elapsed().as_secs_f64());
}
