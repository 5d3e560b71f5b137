//! Golden files of `plan --format markdown`, the pull-request comment (issue #18), for the
//! example plans planned against a sandbox holding their source domains — one of them with a
//! missing bucket, so a blocked step and its reason are pinned too. Time is fixed with `--now`.

use crate::common;

/// Plans `plans/<example>.yaml` as Markdown against sandbox domains holding the given indices
/// and the given buckets; returns stdout, checking the exit code.
fn markdown_of(
    example: &str,
    domains: &[(&str, &[&str])],
    buckets: &[&str],
    exit_code: i32,
) -> String {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../../plans/{example}.yaml")),
    )
    .unwrap();
    let world = common::example_world(&text, domains, buckets);
    world.plan("snapferry.yaml", &text);
    let out = world.run(&[
        "plan",
        "--format",
        "markdown",
        "--now",
        "2026-11-25T06:00:00Z",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(exit_code),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(world.mutating_calls().is_empty(), "plan changed something");
    assert!(
        stdout.starts_with(&format!("<!-- snapferry-plan: {} -->\n", plan_name(&text))),
        "{stdout}"
    );
    assert!(stdout.encode_utf16().count() <= 65_536);
    stdout
}

fn plan_name(text: &str) -> &str {
    text.lines()
        .find_map(|l| l.strip_prefix("name: "))
        .expect("the plan has a name")
}

#[test]
fn the_demo_plan_as_markdown() {
    insta::assert_snapshot!(markdown_of(
        "demo",
        &[("demo-source", &["products", "orders-2026-11"])],
        &[],
        0
    ));
}

#[test]
fn the_fleet_plan_as_markdown() {
    insta::assert_snapshot!(markdown_of(
        "fleet",
        &[
            ("logs-prod", &["logs-2025-12", "logs-2026-11"]),
            ("metrics-prod", &["metrics-2026-11", "metrics-tmp"]),
            ("traces-prod", &["traces-2026-11"]),
        ],
        &[],
        0
    ));
}

#[test]
fn the_staging_refresh_plan_as_markdown_against_an_existing_staging_domain() {
    insta::assert_snapshot!(markdown_of(
        "staging-refresh",
        &[
            ("shop-prod", &["products", "customers-eu", "orders"][..]),
            ("shop-staging", &["products", "customers-eu"][..]),
        ],
        &["acme-staging-refresh"],
        0
    ));
}

#[test]
fn the_fleet_plan_with_a_missing_source_as_markdown() {
    // traces-prod does not exist: its steps are blocked, and the comment says why (exit 1, as
    // for the text form); the rest of the fleet is planned as usual.
    insta::assert_snapshot!(markdown_of(
        "fleet",
        &[
            ("logs-prod", &["logs-2025-12", "logs-2026-11"]),
            ("metrics-prod", &["metrics-2026-11", "metrics-tmp"]),
        ],
        &[],
        1
    ));
}
