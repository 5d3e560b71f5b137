//! Exit codes a CI job can trust (issue #15): a usage error exits 1, never clap's default 2,
//! which `plan --detailed-exitcode` uses for "changes present"; `--help` and `--version`
//! succeed. Through the real binary, so what is checked is what a pipeline sees.

use assert_cmd::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("snapferry")
        .expect("the snapferry binary is built by cargo test")
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("snapferry runs");
    (
        out.status.code().expect("exited normally"),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

#[test]
fn a_misspelt_flag_exits_1_not_the_changes_present_code() {
    let (code, stdout, stderr) = run(&["plan", "--detailed-exitcodes"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("unexpected argument '--detailed-exitcodes' found"),
        "{stderr}"
    );
    assert!(
        stderr.contains("a similar argument exists: '--detailed-exitcode'"),
        "clap's suggestion is kept: {stderr}"
    );
}

#[test]
fn every_kind_of_usage_error_exits_1() {
    for args in [
        &["validate", "--detailed-exitcodes"][..],
        &["validate", "-f"],
        &["apply", "--parallelism", "many"],
        &["graph", "--format", "png"],
        &["completions", "tcsh"],
        &["frobnicate"],
        &[],
        &["--no-such-global-flag", "validate"],
    ] {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, 1, "snapferry {args:?}:\n{stderr}");
        assert!(stdout.is_empty(), "snapferry {args:?} printed {stdout}");
        assert!(
            stderr.starts_with("error: ") || stderr.contains("Usage: snapferry"),
            "snapferry {args:?}: {stderr}"
        );
    }
}

#[test]
fn help_and_version_exit_0_on_stdout() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["help"],
        &["help", "plan"],
        &["plan", "--help"],
    ] {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, 0, "snapferry {args:?}:\n{stderr}");
        assert!(stdout.contains("Usage: snapferry"), "{args:?}: {stdout}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
    let (code, stdout, _) = run(&["--version"]);
    assert_eq!(code, 0);
    assert_eq!(
        stdout.trim(),
        format!("snapferry {}", env!("CARGO_PKG_VERSION"))
    );
}
