//! docs/sandbox.md, run as written: `snapferry sandbox --config examples/sandbox/shop.yaml` as a
//! child process, its `export` lines taken from its stdout, then every line of the doc's
//! rehearsal block run by bash with those variables, the `snapferry` binary and the pinned AWS CLI
//! on `PATH`, in a copy of the examples; each command's outcome is checked (documents counted on
//! the new domain, the bucket listed, the bucket kept by destroy). The doc's seed-format block is
//! loaded as a sandbox configuration, so the reference stays one the sandbox accepts.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn doc() -> String {
    std::fs::read_to_string(repo().join("docs/sandbox.md")).unwrap()
}

/// The fenced block of `lang` that follows the first line containing `after`.
fn block_after(text: &str, after: &str, lang: &str) -> Vec<String> {
    let start = text
        .find(after)
        .unwrap_or_else(|| panic!("docs/sandbox.md has no {after:?}"));
    let rest = &text[start..];
    let open = format!("```{lang}\n");
    let from = rest
        .find(&open)
        .unwrap_or_else(|| panic!("no ```{lang} block after {after:?}"))
        + open.len();
    let len = rest[from..].find("```").expect("the block is closed");
    rest[from..from + len].lines().map(str::to_owned).collect()
}

/// `snapferry sandbox --config …` running as a user starts it; killed when dropped.
struct SandboxProcess {
    child: Child,
    env: BTreeMap<String, String>,
}

impl SandboxProcess {
    fn start(config: &Path) -> SandboxProcess {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_snapferry"));
        cmd.arg("sandbox")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().unwrap();
        let mut env = BTreeMap::new();
        let mut printed = String::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            printed.push_str(&line);
            printed.push('\n');
            if let Some(assignment) = line.strip_prefix("export ") {
                let (key, value) = assignment.split_once('=').expect("KEY=value");
                let value = value
                    .strip_prefix('\'')
                    .and_then(|v| v.strip_suffix('\''))
                    .unwrap_or(value);
                env.insert(key.to_owned(), value.to_owned());
            }
            if line == "# press Ctrl-C to stop" {
                break;
            }
        }
        let process = SandboxProcess { child, env };
        assert!(
            printed.ends_with("# press Ctrl-C to stop\n"),
            "the sandbox stopped before it was ready:\n{printed}"
        );
        process
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_sandbox_doc_rehearsal_runs_as_written() {
    let work = tempfile::tempdir().unwrap();
    let examples = work.path().join("examples/sandbox");
    std::fs::create_dir_all(&examples).unwrap();
    for file in ["shop.yaml", "shop-copy.yaml"] {
        std::fs::copy(
            repo().join("examples/sandbox").join(file),
            examples.join(file),
        )
        .unwrap();
    }
    let text = doc();
    let start_line = block_after(&text, "## Start it with a source domain", "sh");
    assert_eq!(
        start_line,
        ["snapferry sandbox --config examples/sandbox/shop.yaml"]
    );
    let sandbox = SandboxProcess::start(&examples.join("shop.yaml"));
    for (key, value) in [
        ("AWS_REGION", "eu-west-1"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
        ("SNAPFERRY_POLL_SCALE", "0.05"),
        ("AWS_ACCESS_KEY_ID", "AKIASANDBOXEXAMPLE01"),
    ] {
        assert_eq!(
            sandbox.env.get(key).map(String::as_str),
            Some(value),
            "{key} in {:?}",
            sandbox.env
        );
    }
    for key in ["AWS_ENDPOINT_URL", "AWS_CA_BUNDLE", "AWS_SECRET_ACCESS_KEY"] {
        assert!(sandbox.env.contains_key(key), "{key} in {:?}", sandbox.env);
    }

    let snapferry_dir = Path::new(env!("CARGO_BIN_EXE_snapferry")).parent().unwrap();
    let path = format!(
        "{}:{}:{}",
        snapferry_tests::awscli::bin_dir().display(),
        snapferry_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let commands = block_after(&text, "## Rehearse a replication", "sh");
    assert_eq!(commands.len(), 8, "{commands:#?}");
    let mut outputs = Vec::new();
    for line in &commands {
        let mut cmd = Command::new("bash");
        cmd.args(["-o", "pipefail", "-c", line])
            .current_dir(work.path())
            .stdin(Stdio::null())
            .env("HOME", work.path())
            .env("PATH", &path)
            .env("NO_COLOR", "1")
            .env("SNAPFERRY_MAX_RATE", "1000");
        for key in snapferry_tests::SCRUBBED_ENV {
            cmd.env_remove(key);
        }
        cmd.envs(&sandbox.env);
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0), "`{line}`:\n{text}");
        outputs.push(text);
    }
    let expect = |n: usize, fragment: &str| {
        assert!(
            outputs[n].contains(fragment),
            "`{}` printed no {fragment:?}:\n{}",
            commands[n],
            outputs[n]
        );
    };
    expect(0, "+ domain/shop-staging (create)");
    expect(0, "Plan: 8 to create");
    expect(
        1,
        "Apply complete: 8 applied, 0 unchanged, 0 stale, 0 failed",
    );
    assert_eq!(
        outputs[2].split_whitespace().collect::<Vec<_>>(),
        ["shop-staging", "OpenSearch_2.11", "False"],
        "{}",
        outputs[2]
    );
    expect(3, "shop-snapshots");
    expect(4, "PRE indices/");
    let mut counts: Vec<Vec<&str>> = outputs[5]
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        [
            ["customers", "3"],
            ["orders-2026-11", "1500"],
            ["products", "400"]
        ],
        "{}",
        outputs[5]
    );
    expect(6, "verify/shop");
    expect(7, "bucket shop-snapshots is kept");
    expect(7, "Destroy complete:");
    assert!(
        examples.join(".snapferry/shop.state.json").exists(),
        "the state is beside the plan, as the doc says"
    );
}

#[test]
fn the_sandbox_doc_seed_reference_is_a_seed_the_sandbox_accepts() {
    let text = doc();
    let reference = block_after(&text, "## The seed file", "yaml").join("\n");
    let config = snapferry_sandbox::SandboxConfig::from_yaml_str(&reference)
        .unwrap_or_else(|e| panic!("docs/sandbox.md's seed reference is refused: {e}"));
    assert_eq!(config.domains[0].indices.len(), 2);
    assert_eq!(config.faults.rules.len(), 3);
    // And the committed example.
    let example =
        snapferry_sandbox::SandboxConfig::from_yaml_file(repo().join("examples/sandbox/shop.yaml"))
            .unwrap();
    assert_eq!(example.region, "eu-west-1");
    assert_eq!(
        example.domains[0]
            .indices
            .iter()
            .map(|i| (i.name.as_str(), i.documents.len() as u64 + i.generate))
            .collect::<Vec<_>>(),
        [
            ("customers", 3),
            ("orders-2026-11", 1500),
            ("products", 400)
        ]
    );
}
