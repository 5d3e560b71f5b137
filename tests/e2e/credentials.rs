//! First contact without credentials (issue #18): the real binary with an empty environment, a
//! `HOME` with no AWS files, and instance metadata pointed at a local port that accepts and never
//! answers, or at one that refuses. `plan` and `apply` must end with exit 1, "no AWS credentials
//! found" and the ways to provide them; a profile that does not exist is named; no message
//! carries the SDK's debug structure. How long it takes is a figure, not an assertion (speed
//! targets live in benchmarks): `just no-credentials` prints it, docs/performance.md records it.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const PLAN: &str = "version: 1
name: shop
region: eu-west-1
bucket:
  name: shop-snapshots
source:
  domain: shop-prod
target:
  domain: shop-copy
";

/// Debug forms of the SDK's errors that must never reach a user.
const SDK_DEBUG: &[&str] = &[
    "DispatchFailure",
    "dispatch failure",
    "ConnectorError",
    "Some(",
    "CredentialsNotLoaded",
    "FailedToLoadToken",
    "kind:",
];

/// Not a speed target: a run that hangs must fail the suite rather than block it.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// Instance metadata that accepts connections and never answers.
fn silent_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

/// Instance metadata on a port where nothing listens (connections are refused).
fn refusing_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `snapferry` with nothing of the caller's environment: only `HOME` (empty unless the test
/// writes AWS files into it), no colour, and the given variables.
fn bare(dir: &Path, args: &[&str], vars: &[(&str, String)]) -> (Output, Duration) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_snapferry"));
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in vars {
        cmd.env(key, value);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > HANG_GUARD {
            let _ = child.kill();
            panic!("snapferry {args:?} was still running after {HANG_GUARD:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    (
        Output {
            status,
            stdout,
            stderr,
        },
        elapsed,
    )
}

fn no_sdk_debug(text: &str) {
    for debug in SDK_DEBUG {
        assert!(
            !text.contains(debug),
            "SDK debug text `{debug}` in:\n{text}"
        );
    }
}

fn assert_no_credentials(out: &Output, metadata: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let flat = crate::common::flat(&stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(flat.contains("no AWS credentials found: "), "{stderr}");
    assert!(
        flat.contains(&format!("instance metadata at {metadata} gave none")),
        "{stderr}"
    );
    for way in [
        "`export AWS_PROFILE=<name>` or `--profile <name>`",
        "`aws sso login --profile <name>`",
        "`export AWS_ACCESS_KEY_ID=<id> AWS_SECRET_ACCESS_KEY=<secret>`",
        "a web identity (OIDC) token with AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE",
    ] {
        assert!(flat.contains(way), "`{way}` not in:\n{stderr}");
    }
    no_sdk_debug(&stderr);
    stderr
}

#[test]
fn no_credentials_and_silent_instance_metadata_fail_plan_and_apply_with_the_ways_to_provide_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("snapferry.yaml"), PLAN).unwrap();
    let metadata = format!("http://127.0.0.1:{}", silent_port());
    for args in [
        &["plan"][..],
        &["apply", "--auto-approve"],
        &["plan", "--json"],
    ] {
        let (out, elapsed) = bare(
            dir.path(),
            args,
            &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", metadata.clone())],
        );
        assert_no_credentials(&out, &metadata);
        eprintln!(
            "figure: no credentials, instance metadata silent: snapferry {} exited 1 in {:.2} s",
            args.join(" "),
            elapsed.as_secs_f64()
        );
    }
    assert!(
        !dir.path().join(".snapferry").exists(),
        "nothing was written"
    );
    // Reading a local state needs no AWS: status and unlock still work.
    for (args, says) in [
        (&["status"][..], "no state yet"),
        (&["unlock"][..], "is not locked"),
    ] {
        let (out, _) = bare(
            dir.path(),
            args,
            &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", metadata.clone())],
        );
        let text = crate::common::output_text(&out);
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(text.contains(says), "{text}");
    }
}

#[test]
fn no_credentials_and_refused_instance_metadata_fail_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("snapferry.yaml"), PLAN).unwrap();
    let metadata = format!("http://127.0.0.1:{}", refusing_port());
    let (out, elapsed) = bare(
        dir.path(),
        &["plan"],
        &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", metadata.clone())],
    );
    assert_no_credentials(&out, &metadata);
    eprintln!(
        "figure: no credentials, instance metadata refused: snapferry plan exited 1 in {:.2} s",
        elapsed.as_secs_f64()
    );
}

#[test]
fn a_profile_that_does_not_exist_is_named_with_the_profiles_there_are() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("snapferry.yaml"), PLAN).unwrap();
    std::fs::create_dir(dir.path().join(".aws")).unwrap();
    std::fs::write(
        dir.path().join(".aws/config"),
        "[profile staging]\nregion = eu-west-1\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".aws/credentials"),
        "[ops]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = not-a-secret\n",
    )
    .unwrap();
    let metadata = (
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        format!("http://127.0.0.1:{}", refusing_port()),
    );
    let (out, _) = bare(
        dir.path(),
        &["plan"],
        &[("AWS_PROFILE", "prod".to_owned()), metadata.clone()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        crate::common::flat(&stderr).contains(
            "profile `prod` (from AWS_PROFILE) is not in ~/.aws/config or ~/.aws/credentials; \
             they define ops, staging"
        ),
        "{stderr}"
    );
    assert!(
        crate::common::flat(&stderr).contains("`aws configure sso --profile prod`"),
        "{stderr}"
    );
    no_sdk_debug(&stderr);

    let (out, _) = bare(dir.path(), &["plan", "--profile", "prd"], &[metadata]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        crate::common::flat(&stderr).contains("profile `prd` (from --profile) is not in"),
        "{stderr}"
    );
    no_sdk_debug(&stderr);
}

/// What a CI job sees when its session ends in the middle of an apply (docs/ci.md relies on
/// this): while the target domain is being created, every call starts failing with
/// `ExpiredToken`. The apply stops with exit 1 and says the credentials expired; the steps it
/// finished are recorded; the next apply, with fresh credentials, waits for the domain creation
/// already under way instead of starting another, and completes.
#[test]
fn a_session_that_expires_mid_apply_stops_it_and_the_next_apply_resumes_without_repeating() {
    let mut config = snapferry_sandbox::SandboxConfig {
        domains: vec![crate::common::source_domain(
            "shop-prod",
            vec![crate::common::index("orders", 300)],
        )],
        ..Default::default()
    };
    // Long enough (5 s) to expire the session while the creation is waited for.
    config.latencies.domain_creation_secs = 5000.0;
    let world = crate::common::World::start_with(config);
    world.plan(
        "snapferry.yaml",
        "version: 1\nname: shop\nregion: us-east-1\nbucket:\n  name: shop-snapshots\n  \
         create: true\nsource:\n  domain: shop-prod\ntarget:\n  domain: shop-copy\n",
    );
    let child = world
        .command(&["apply", "--auto-approve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // The domain is being created and the role is done (the bucket policy comes after it).
    let under_way = |log: &[snapferry_sandbox::LoggedRequest]| {
        ["CreateDomain", "PutBucketPolicy"]
            .iter()
            .all(|op| log.iter().any(|r| r.operation == *op))
    };
    while !under_way(&world.sandbox().request_log()) {
        assert!(
            started.elapsed() < HANG_GUARD,
            "the apply never created the domain"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The session ends: every service refuses the old credentials from now on.
    world.sandbox().set_faults(
        1,
        vec![snapferry_sandbox::FaultRule {
            kind: snapferry_sandbox::FaultKind::ExpiredToken,
            service: None,
            operation: None,
            target: None,
            rate: Some(1.0),
            nth: None,
            times: None,
            status: None,
            delay_secs: None,
        }],
    );
    let out = child.wait_with_output().unwrap();
    let text = crate::common::output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        crate::common::flat(&text).contains("the AWS credentials have expired; refresh them"),
        "{text}"
    );
    no_sdk_debug(&text);
    let state = world.state(".snapferry/shop.state.json");
    no_sdk_debug(&state.to_string());
    // The wait failed, and the state says so and why; the role made before is done.
    let domain = &state["nodes"]["domain/shop-copy"];
    assert_eq!(domain["status"], "failed", "{state}");
    assert!(
        domain["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("the AWS credentials have expired"),
        "{state}"
    );
    assert_eq!(state["nodes"]["role/shop-snapshot-role"]["status"], "done");

    // Fresh credentials: the same command finishes the copy.
    world.sandbox().set_faults(1, vec![]);
    let out = world.run_ok(&["apply", "--auto-approve"], 0);
    assert!(out.contains("Apply complete"), "{out}");
    let log = world.sandbox().request_log();
    for once in ["CreateDomain", "CreateRole", "CreateSnapshot"] {
        assert_eq!(
            log.iter()
                .filter(|r| r.operation == once && r.fault.is_none())
                .count(),
            1,
            "{once} was repeated"
        );
    }
    assert_eq!(
        crate::common::user_indices(&world.counts("shop-copy")),
        vec![("orders".to_owned(), 300)]
    );
}
