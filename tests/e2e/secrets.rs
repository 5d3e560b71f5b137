//! No log filter can make a secret appear (issue #14): every command of the real binary runs
//! against a sandbox that demands a session token, at `-vvv` and under `SNAPFERRY_LOG` filters
//! written to switch the signing crates' traces back on (a more specific directive, the crate
//! named alone, everything at TRACE, the SDK runtime, the HTTP stack, JSON log lines). Every
//! byte written to stdout and stderr, and every file left in the working directory (state,
//! saved plan, lock), is searched for the secret key, the session token and any request
//! signature. Both domains have fine-grained access control, the target's master an internal
//! user whose password comes from the environment: it reaches `CreateDomain` and the security
//! step's basic-auth calls, and is searched for too, with any HTTP basic credentials. The same
//! replication with the password in AWS Secrets Manager (`master_user_password: {
//! secrets_manager: <ARN>, key: password }`) is run at `-vvv` and searched the same way.

use crate::common;

use std::path::Path;
use std::process::Output;

use common::{World, index, source_domain};
use snapferry_sandbox::SandboxConfig;

const SECRET_KEY: &str = "Secrets/Test/SecretKey/DoNotLeak/0123456789";
const SESSION_TOKEN: &str = "SECRETS-TEST-SESSION-TOKEN-DoNotLeak-FwoGZXIvYXdzEJr";
const NOW: &str = "2026-11-01T03:00:00Z";
/// The target's internal master password (`SHOP_MASTER_PASSWORD`).
const MASTER_PASSWORD: &str = "Master-Passw0rd!NeverShown";
/// The identity the sandbox's credentials sign as: the source's master.
const OPERATOR: &str = "arn:aws:iam::123456789012:user/sandbox";

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
  overrides:
    fine_grained_access_control:
      master_user_name: admin
      master_user_password: { env: SHOP_MASTER_PASSWORD }
restore:
  on_conflict: replace
"#;

/// The same replication with its state in S3, so the state store's calls are signed too (the
/// same `on_conflict`, so both plans want the same `snapferry` security role on the target).
const REMOTE_PLAN: &str = r#"
version: 1
name: shop
region: us-east-1
bucket:
  name: shop-snapshots
state:
  s3: { bucket: shop-state, key: shop.state.json }
source:
  domain: shop-prod
target:
  domain: shop-copy
  overrides:
    fine_grained_access_control:
      master_user_name: admin
      master_user_password: { env: SHOP_MASTER_PASSWORD }
restore:
  on_conflict: replace
"#;

/// Filters that try to re-enable what the signer traces, and broad ones that catch anything
/// else that might print a header.
const FILTERS: &[&str] = &[
    "trace,aws_sigv4::http_request=trace",
    "aws_sigv4=trace",
    "trace",
    "aws_smithy_runtime=trace",
    "aws_sigv4::http_request::sign=trace,aws_sigv4::sign=trace",
    // Events of any target inside the per-node spans, the signer's included.
    "[node]=trace,[send]=trace",
    "aws_smithy_runtime_api=trace,aws_smithy_http=trace,aws_config=trace,aws_credential_types=trace",
    "hyper=trace,hyper_util=trace,h2=trace,reqwest=trace,rustls=trace",
];

fn config() -> SandboxConfig {
    let mut config = SandboxConfig {
        domains: vec![source_domain(
            "shop-prod",
            vec![index("products", 30), index("orders", 50)],
        )],
        buckets: vec!["shop-state".into()],
        ..SandboxConfig::default()
    };
    let open = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "*"}, "Action": "es:ESHttp*",
        "Resource": "arn:aws:es:us-east-1:123456789012:domain/shop-prod/*"}]});
    config.domain_security.insert(
        "shop-prod".into(),
        snapferry_sandbox::SeedDomainSecurity {
            access_policy: Some(open),
            fine_grained_access_control: Some(snapferry_sandbox::SeedFgac {
                master_user_arn: Some(OPERATOR.into()),
                ..Default::default()
            }),
        },
    );
    config.credentials.secret_access_key = SECRET_KEY.into();
    config.credentials.session_token = Some(SESSION_TOKEN.into());
    config
}

/// One run of the binary: its arguments, extra environment and expected exit code.
struct Step {
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    code: Option<i32>,
}

const fn step(args: &'static [&'static str], code: i32) -> Step {
    Step {
        args,
        env: &[],
        code: Some(code),
    }
}

/// Every command but `sandbox` (a server that runs until stopped; its logging is the same
/// set-up, exercised by the demo below), in an order that gives each something to do: an
/// apply crashed after its second state write leaves a lock for `status` to show and
/// `unlock` to remove.
const STEPS: &[Step] = &[
    step(&["validate"], 0),
    step(&["graph"], 0),
    step(&["schema"], 0),
    step(&["completions", "bash"], 0),
    step(&["man"], 0),
    step(&["plan", "-o", "saved.plan"], 0),
    step(&["plan", "--detailed-exitcode", "--json"], 2),
    Step {
        args: &["apply", "--auto-approve"],
        env: &[("SNAPFERRY_TEST_ABORT_AFTER_WRITES", "2")],
        code: None,
    },
    step(&["status"], 0),
    step(&["unlock", "--force"], 0),
    // Applied or refused as stale, depending on how far the crashed run got: either way it
    // reads live state and signs its calls.
    Step {
        args: &["apply", "saved.plan"],
        env: &[],
        code: None,
    },
    step(&["apply", "--auto-approve"], 0),
    step(&["plan", "--detailed-exitcode"], 0),
    step(&["status", "--json"], 0),
    step(&["plan", "-f", "remote.yaml"], 0),
    step(&["status", "-f", "remote.yaml"], 0),
    step(&["destroy", "--auto-approve"], 0),
];

/// Where a secret shows in `text`, if it does.
fn leak(text: &str) -> Option<String> {
    for secret in [
        SECRET_KEY,
        SESSION_TOKEN,
        "DoNotLeak",
        MASTER_PASSWORD,
        "NeverShown",
    ] {
        if let Some(at) = text.find(secret) {
            return Some(context(text, at));
        }
    }
    // HTTP basic credentials: `Basic ` and a base64 token (the master's name and password).
    for (at, _) in text.match_indices("Basic ") {
        let rest = &text[at + "Basic ".len()..];
        let token = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
            .count();
        if token >= 16 {
            return Some(context(text, at));
        }
    }
    // A request signature: 64 hex digits after `Signature=` (SigV4 header or query string)
    // or after a `signature` field of a trace line.
    let lower = text.to_ascii_lowercase();
    for (at, _) in lower.match_indices("signature") {
        let rest = lower[at + "signature".len()..].trim_start_matches(['=', ':', ' ', '"', '\'']);
        if rest.len() >= 64 && rest.as_bytes()[..64].iter().all(u8::is_ascii_hexdigit) {
            return Some(context(text, at));
        }
    }
    None
}

fn context(text: &str, at: usize) -> String {
    let start = text.floor_char_boundary(at.saturating_sub(200));
    let end = text.ceil_char_boundary((at + 200).min(text.len()));
    text[start..end].to_owned()
}

/// Every file under `dir`, with its path.
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            out.push((
                path.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
    out
}

fn run(world: &World, how: &str, step: &Step, extra: &[&str], filter: Option<&str>) -> Output {
    let mut args: Vec<&str> = step.args.to_vec();
    args.extend_from_slice(extra);
    let mut cmd = world.command(&args);
    cmd.env("SNAPFERRY_NOW", NOW);
    cmd.env("SHOP_MASTER_PASSWORD", MASTER_PASSWORD);
    if let Some(filter) = filter {
        cmd.env("SNAPFERRY_LOG", filter);
    }
    for (key, value) in step.env {
        cmd.env(key, value);
    }
    let out = cmd.output().unwrap();
    let text = common::output_text(&out);
    if let Some(code) = step.code {
        assert_eq!(
            out.status.code(),
            Some(code),
            "{how}: snapferry {args:?}:\n{}",
            &text[text.len().saturating_sub(4000)..]
        );
    }
    if let Some(found) = leak(&text) {
        panic!("{how}: snapferry {args:?} printed a secret:\n…{found}…");
    }
    out
}

/// Runs every step under one way of asking for logs; returns the bytes of TRACE output seen.
fn every_command(how: &str, extra: &[&str], filter: Option<&str>) -> usize {
    let world = World::start_with(config());
    world.plan("snapferry.yaml", PLAN);
    world.plan("remote.yaml", REMOTE_PLAN);
    let mut traced = 0;
    for step in STEPS {
        let out = run(&world, how, step, extra, filter);
        traced += common::output_text(&out)
            .lines()
            .filter(|l| l.contains("TRACE") || l.contains("\"level\":\"TRACE\""))
            .count();
        for (path, text) in files(world.dir.path()) {
            if let Some(found) = leak(&text) {
                panic!(
                    "{how}: after snapferry {:?}, {path} holds a secret:\n…{found}…",
                    step.args
                );
            }
        }
    }
    // The run really replicated, signing every request with the token (the sandbox demands it).
    // (`destroy` unmapped the operator on the target: its master counts there.)
    assert_eq!(
        common::user_indices(&target_counts(&world)),
        common::user_indices(&world.counts("shop-prod")),
        "{how}: the replication did not complete"
    );
    traced
}

/// The target's indices and counts, read as its internal master.
fn target_counts(world: &World) -> Vec<(String, u64)> {
    target_counts_as(world, MASTER_PASSWORD)
}

/// The target's indices and counts, read as its internal master with `password`.
fn target_counts_as(world: &World, password: &str) -> Vec<(String, u64)> {
    let http = world
        .domain("shop-copy")
        .http()
        .clone()
        .with_basic_auth("admin", password);
    let client = snapferry_aws::opensearch::OpenSearch::new(http);
    world.rt.block_on(async {
        let mut out = Vec::new();
        for i in client.cat_indices().await.unwrap() {
            let n = client.count(&i.index).await.unwrap();
            out.push((i.index, n));
        }
        out.sort();
        out
    })
}

#[test]
fn at_vvv_no_secret_is_printed_or_written() {
    let traced = every_command("-vvv", &["-vvv"], None);
    assert!(traced > 100, "-vvv traced only {traced} lines");
}

#[test]
fn no_log_filter_can_make_a_secret_appear() {
    for filter in FILTERS {
        let how = format!("SNAPFERRY_LOG={filter}");
        let traced = every_command(&how, &[], Some(filter));
        if filter.split(',').all(|d| d.starts_with("aws_sigv4")) {
            // Nothing but the signer asked for: nothing at all is written.
            assert_eq!(traced, 0, "{how}: the signer's traces got through");
        } else {
            // The filter was understood and honoured (not replaced by the default level).
            assert!(traced > 0, "{how}: no TRACE line at all");
        }
    }
    // The filters really were honoured: TRACE lines of the SDK are there, the signer's are not.
    let traced = every_command(
        "SNAPFERRY_LOG=trace --log-format json",
        &["--log-format", "json"],
        Some("trace,aws_sigv4::http_request=trace"),
    );
    assert!(traced > 100, "JSON trace output had only {traced} lines");
}

#[test]
fn the_demo_prints_no_secret_under_any_filter() {
    let sandbox_secret = SandboxConfig::default().credentials.secret_access_key;
    for filter in [None, Some("trace,aws_sigv4::http_request=trace")] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_snapferry"));
        cmd.args(["demo", "-vvv", "--dir"])
            .arg(dir.path())
            .env("NO_COLOR", "1")
            .env("HOME", dir.path());
        for key in snapferry_tests::SCRUBBED_ENV {
            cmd.env_remove(key);
        }
        if let Some(filter) = filter {
            cmd.env("SNAPFERRY_LOG", filter);
        }
        let out = cmd.output().unwrap();
        let text = common::output_text(&out);
        assert!(
            out.status.success(),
            "{}",
            &text[text.len().saturating_sub(4000)..]
        );
        assert!(
            !text.contains(&sandbox_secret),
            "{filter:?}: secret printed"
        );
        if let Some(found) = leak(&text) {
            panic!("demo {filter:?} printed a secret:\n…{found}…");
        }
        for (path, text) in files(dir.path()) {
            assert!(!text.contains(&sandbox_secret), "{path} holds the secret");
            assert_eq!(leak(&text), None, "{path}");
        }
    }
}

/// The master password kept in Secrets Manager (as JSON, under `password`).
const SM_PASSWORD: &str = "Secrets-Manager-Passw0rd!NeverShown";

#[test]
fn a_master_password_from_secrets_manager_is_sent_and_never_shown_or_kept() {
    let mut config = config();
    config.secrets.push(snapferry_sandbox::SeedSecret {
        name: "shop/master".into(),
        secret_string: Some(format!(
            "{{\"username\": \"admin\", \"password\": \"{SM_PASSWORD}\"}}"
        )),
        ..Default::default()
    });
    let world = World::start_with(config);
    let arn = world.sandbox().secret_arn("shop/master").unwrap();
    world.plan(
        "snapferry.yaml",
        &PLAN.replace(
            "master_user_password: { env: SHOP_MASTER_PASSWORD }",
            &format!("master_user_password: {{ secrets_manager: \"{arn}\", key: password }}"),
        ),
    );
    let reads = || {
        world
            .sandbox()
            .request_log()
            .into_iter()
            .filter(|r| r.service == "secretsmanager")
            .map(|r| (r.operation, r.target, r.status))
            .collect::<Vec<_>>()
    };
    let check = |args: &[&str], code: i32| -> String {
        // No environment variable holds a password: the secret is the only source.
        let out = world
            .command(args)
            .env("SNAPFERRY_NOW", NOW)
            .output()
            .unwrap();
        let text = common::output_text(&out);
        assert_eq!(
            out.status.code(),
            Some(code),
            "snapferry {args:?}:\n{}",
            &text[text.len().saturating_sub(4000)..]
        );
        if let Some(found) = leak(&text) {
            panic!("snapferry {args:?} printed a secret:\n…{found}…");
        }
        for (path, text) in files(world.dir.path()) {
            if let Some(found) = leak(&text) {
                panic!("after snapferry {args:?}, {path} holds a secret:\n…{found}…");
            }
        }
        text
    };
    let text = check(&["plan", "-vvv", "-o", "saved.plan"], 0);
    // The plan says where the password comes from, never what it is.
    assert!(
        common::flat(&text).contains(&format!(
            "master_user_password_from: \"key password of Secrets Manager secret {arn}\""
        )),
        "{text}"
    );
    check(&["plan", "-vvv", "--json"], 0);
    // Planning read no secret: GetSecretValue belongs to the apply that sends the password.
    assert_eq!(reads(), vec![]);
    check(&["apply", "-vvv", "saved.plan"], 0);
    // Read where it is needed (CreateDomain, the security step's basic auth), once per run.
    assert_eq!(
        reads(),
        vec![("GetSecretValue".to_owned(), Some(arn.clone()), 200)]
    );
    check(&["apply", "-vvv", "--auto-approve", "--json"], 0);
    check(&["plan", "-vvv", "--detailed-exitcode"], 0);
    // The target's internal master is the secret's password: the security plugin lets it in.
    assert_eq!(
        common::user_indices(&target_counts_as(&world, SM_PASSWORD)),
        common::user_indices(&world.counts("shop-prod"))
    );
}
