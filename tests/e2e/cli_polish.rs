//! The small things a first user trips over, each through the real binary: `apply plan.yaml`
//! points at `-f`; `--target` does not call the steps it leaves out "no longer in the plan"; the
//! man pages the main page refers to exist; hidden flags stay out of completions; the demo says
//! where its state went; the README's commands table names every flag `--help` shows.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common;

use common::{World, index, source_domain};

const PLAN: &str = r#"
version: 1
name: shop
region: us-east-1
bucket: { name: shop-snapshots, create: true }
source: { domain: shop-prod }
target: { domain: shop-copy }
restore: { on_conflict: replace }
"#;

/// The binary with nothing but these arguments (commands that make no AWS call).
fn snapferry(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_snapferry"));
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env("HOME", dir)
        .env("NO_COLOR", "1");
    for key in snapferry_tests::SCRUBBED_ENV {
        cmd.env_remove(key);
    }
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn apply_given_a_plan_file_as_its_argument_suggests_dash_f_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plan.yaml"), PLAN).unwrap();
    // Named like a plan, and a plan under another name.
    std::fs::write(dir.path().join("shop.plan"), PLAN).unwrap();
    for file in ["plan.yaml", "shop.plan"] {
        let out = snapferry(dir.path(), &["apply", file]);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(
            said.contains(&format!(
                "{file} is a plan file, not a saved plan; nothing was changed"
            )),
            "{said}"
        );
        assert!(
            said.contains(&format!("snapferry apply -f {file}")),
            "{said}"
        );
        assert!(!dir.path().join(".snapferry").exists(), "{said}");
    }
    // A saved plan that is not JSON is still reported as what it is.
    std::fs::write(dir.path().join("saved.out"), "garbage").unwrap();
    let out = snapferry(dir.path(), &["apply", "saved.out"]);
    assert!(
        text(&out).contains("saved.out is not a saved plan"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_targeted_plan_after_a_full_apply_does_not_call_the_other_steps_removed() {
    let world = World::start(
        vec![source_domain("shop-prod", vec![index("products", 50)])],
        Vec::new(),
    );
    world.plan("snapferry.yaml", PLAN);
    world.run_ok(&["apply", "--auto-approve"], 0);
    let plan = world.run_ok(&["plan", "--target", "bucket_policy/shop-snapshots"], 0);
    assert!(!plan.contains("no longer in the plan"), "{plan}");
    assert!(plan.contains("bucket_policy/shop-snapshots"), "{plan}");
    assert!(!plan.contains("domain/shop-copy"), "{plan}");
    let markdown = world.run_ok(
        &[
            "plan",
            "--target",
            "bucket_policy/shop-snapshots",
            "--format",
            "markdown",
        ],
        0,
    );
    assert!(!markdown.contains("no longer in the plan"), "{markdown}");
    // A step really gone from the plan is still reported: drop the target domain's restore by
    // renaming the target.
    world.plan(
        "snapferry.yaml",
        &PLAN.replace("domain: shop-copy", "domain: shop-copy-2"),
    );
    let plan = world.run_ok(&["plan"], 0);
    assert!(
        plan.contains("domain/shop-copy: no longer in the plan; apply leaves it in place"),
        "{plan}"
    );
}

#[test]
fn the_man_pages_the_main_page_names_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man");
    let out = snapferry(dir.path(), &["man", "--out-dir", pages.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let main = std::fs::read_to_string(pages.join("snapferry.1")).unwrap();
    let referred: BTreeSet<String> = main
        .split("snapferry\\-")
        .skip(1)
        .filter_map(|rest| rest.split_once("(1)").map(|(name, _)| name.to_owned()))
        .filter(|name| name.chars().all(|c| c.is_ascii_lowercase()))
        .collect();
    assert!(
        referred.contains("apply") && referred.contains("sandbox"),
        "{main}"
    );
    for name in &referred {
        let page = pages.join(format!("snapferry-{name}.1"));
        let roff = std::fs::read_to_string(&page)
            .unwrap_or_else(|e| panic!("snapferry.1 refers to {}: {e}", page.display()));
        assert!(roff.contains(".TH"), "{} is not a man page", page.display());
    }
    // One page on stdout, as `man` reads it.
    let out = snapferry(dir.path(), &["man", "apply"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let apply = String::from_utf8(out.stdout).unwrap();
    assert!(apply.contains("auto\\-approve"), "{apply}");
    let out = snapferry(dir.path(), &["man", "nonsense"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("snapferry has no command \"nonsense\""),
        "{}",
        text(&out)
    );
}

#[test]
fn hidden_flags_stay_out_of_every_shell_completion() {
    let dir = tempfile::tempdir().unwrap();
    // They exist (the binary takes them) ...
    let out = snapferry(
        dir.path(),
        &["apply", "--reconcile-drift", "--poll-scale", "1", "--help"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // ... and are offered by no completion script, where the visible ones are.
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = snapferry(dir.path(), &["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out));
        let script = String::from_utf8(out.stdout).unwrap();
        let offers = |flag: &str| {
            script.contains(&format!("--{flag}"))
                || script.contains(&format!("-l {flag}"))
                || script.contains(&format!("-l '{flag}'"))
        };
        for hidden in ["now", "poll-scale", "reconcile-drift"] {
            assert!(!offers(hidden), "{shell} completion offers --{hidden}");
        }
        for visible in ["auto-approve", "include-target-domain", "max-rate"] {
            assert!(offers(visible), "{shell} completion lacks --{visible}");
        }
    }
}

#[test]
fn the_demo_says_where_its_state_is_and_keeps_it_with_dir() {
    let dir = tempfile::tempdir().unwrap();
    let out = snapferry(dir.path(), &["demo"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(
            "The plan and its state were in a temporary directory, removed now; \
             `snapferry demo --dir DIR` keeps them."
        ),
        "{said}"
    );
    let kept = dir.path().join("kept");
    let out = snapferry(dir.path(), &["demo", "--dir", kept.to_str().unwrap()]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!(
            "Kept in {}: demo.yaml and its state",
            kept.display()
        )),
        "{said}"
    );
    assert!(kept.join("demo.yaml").exists());
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(kept.join(".snapferry/demo.state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["nodes"]["verify/demo"]["status"], "done", "{state:#}");
}

/// The flags (`--long`, with the short form if any) of one command, as its `--help` lists them.
fn flags(dir: &Path, command: &str) -> Vec<(String, Option<String>)> {
    let out = snapferry(dir, &[command, "--help"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let (short, rest) = match line.strip_prefix('-') {
                Some(r) if !r.starts_with('-') => {
                    let (s, rest) = r.split_once(", ")?;
                    (Some(format!("-{s}")), rest)
                }
                Some(_) => (None, line),
                None => return None,
            };
            let long = rest.strip_prefix("--")?;
            let long: String = long
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                .collect();
            Some((format!("--{long}"), short))
        })
        .collect()
}

#[test]
fn the_readme_commands_table_names_every_flag_of_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let table: Vec<&str> = readme
        .split("## Commands")
        .nth(1)
        .expect("README has a Commands section")
        .lines()
        .filter(|l| l.starts_with("| `snapferry "))
        .collect();
    // Flags every command shares are described once, in the prose around the table.
    let shared = [
        "--verbose",
        "--log-format",
        "--no-color",
        "--help",
        "--profile",
        "--max-rate",
        "--target",
    ];
    let commands = [
        "demo",
        "plan",
        "apply",
        "destroy",
        "status",
        "unlock",
        "validate",
        "graph",
        "schema",
        "completions",
        "man",
        "sandbox",
    ];
    let mut missing = Vec::new();
    for command in commands {
        let rows: Vec<&&str> = table
            .iter()
            .filter(|row| {
                row.contains(&format!("`snapferry {command} "))
                    || row.contains(&format!("`snapferry {command}`"))
            })
            .collect();
        assert!(
            !rows.is_empty(),
            "the README's table has no row for {command}"
        );
        for (long, short) in flags(dir.path(), command) {
            if shared.contains(&long.as_str()) {
                continue;
            }
            let named = rows.iter().any(|row| {
                row.contains(&long)
                    || short
                        .as_ref()
                        .is_some_and(|s| row.contains(&format!("{s} ")))
            });
            if !named {
                missing.push(format!("{command} {long}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the README's commands table lacks: {missing:?}"
    );
    let prose = readme.split("## Commands").nth(1).unwrap();
    for flag in shared.iter().filter(|f| **f != "--help") {
        let short = match *flag {
            "--verbose" => "-v",
            _ => flag,
        };
        assert!(
            prose.contains(flag) || prose.contains(short),
            "the README's Commands section does not mention {flag}"
        );
    }
}

/// The screen an 80-column terminal shows after `stream`: enough of a VT100 for indicatif's
/// drawing (text with auto-wrap, `\r`, `\n`, cursor up/down/column, erase line and below).
fn screen(stream: &str) -> Vec<String> {
    const WIDTH: usize = 80;
    let mut lines: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col) = (0usize, 0usize);
    // A character written in the last column leaves the cursor there until the next one wraps.
    let mut wrap_pending = false;
    let mut chars = stream.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' && !(c.is_control() && c != '\r' && c != '\n' && c != '\u{8}') {
            if c.is_control() {
                wrap_pending = false;
            } else if wrap_pending {
                row += 1;
                col = 0;
                wrap_pending = false;
            }
        }
        match c {
            '\r' => col = 0,
            '\n' => {
                row += 1;
                col = 0;
            }
            '\u{8}' => col = col.saturating_sub(1),
            '\u{1b}' => {
                if chars.peek() != Some(&'[') {
                    continue;
                }
                chars.next();
                let mut arg = String::new();
                let mut command = ' ';
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        command = c;
                        break;
                    }
                    arg.push(c);
                }
                let n = arg
                    .trim_start_matches('?')
                    .parse::<usize>()
                    .unwrap_or(1)
                    .max(1);
                let number = arg.parse::<usize>().unwrap_or(0);
                match command {
                    'A' => row = row.saturating_sub(n),
                    'B' => row += n,
                    'G' => col = n - 1,
                    'K' => {
                        if let Some(line) = lines.get_mut(row) {
                            match number {
                                0 => line.truncate(col),
                                _ => line.clear(),
                            }
                        }
                    }
                    'J' => {
                        if let Some(line) = lines.get_mut(row) {
                            line.truncate(col);
                        }
                        lines.truncate(row + 1);
                    }
                    _ => {}
                }
            }
            c if c.is_control() => {}
            c => {
                while lines.len() <= row {
                    lines.push(Vec::new());
                }
                let line = &mut lines[row];
                while line.len() < col {
                    line.push(' ');
                }
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.push(c);
                }
                if col + 1 == WIDTH {
                    wrap_pending = true;
                } else {
                    col += 1;
                }
            }
        }
        while lines.len() <= row {
            lines.push(Vec::new());
        }
    }
    lines
        .into_iter()
        .map(|l| l.into_iter().collect::<String>().trim_end().to_owned())
        .collect()
}

#[test]
fn the_ctrl_c_notice_stays_on_a_terminal_under_the_live_view() {
    use std::io::{Read, Write};
    let mut config = snapferry_sandbox::SandboxConfig {
        domains: vec![source_domain("shop-prod", vec![index("products", 50)])],
        ..snapferry_sandbox::SandboxConfig::default()
    };
    // Four real seconds of domain creation: the live view keeps redrawing while Ctrl-C lands.
    config.latencies.domain_creation_secs = 4000.0;
    let world = World::start_with(config);
    world.plan("snapferry.yaml", PLAN);
    let inner = world.command(&["apply", "--auto-approve"]);
    let line = std::iter::once(inner.get_program())
        .chain(inner.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ");
    // util-linux `script` gives the apply a terminal; ^C written to it is the user's Ctrl-C.
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &line, "/dev/null"])
        .current_dir(world.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in inner.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    let mut child = cmd
        .spawn()
        .expect("util-linux `script` runs the apply on a terminal; install util-linux");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (send, received) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if send.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut stream = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut sent = false;
    while let Ok(chunk) = received.recv_timeout(deadline - std::time::Instant::now()) {
        stream.extend(chunk);
        let so_far = String::from_utf8_lossy(&stream).into_owned();
        let live = so_far
            .split_once("\nPlan: ")
            .is_some_and(|(_, after)| after.contains("Creating"));
        if !sent && live {
            // Let the spinners redraw a few times first.
            std::thread::sleep(std::time::Duration::from_millis(600));
            stdin.write_all(b"\x03").unwrap();
            stdin.flush().unwrap();
            sent = true;
        }
    }
    drop(stdin);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let stream = String::from_utf8_lossy(&stream).into_owned();
    assert!(sent, "the apply showed no live view:\n{stream}");
    assert_eq!(status.code(), Some(130), "{stream}");
    let shown = screen(&stream).join("\n");
    assert!(
        shown.contains(
            "Stopping at the next safe point. Operations already started continue on AWS;"
        ),
        "the Ctrl-C notice is not on the final screen:\n{shown}\n--- raw:\n{stream:?}"
    );
}
