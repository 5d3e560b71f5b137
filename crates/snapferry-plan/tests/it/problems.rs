//! Every problem at once (issue #15): unknown keys beside rule violations, a repeated key at
//! its second occurrence, bytes and control characters at their lines, tags and types in the
//! plan's words, and the limits that keep a hostile file cheap (a capped report, a depth
//! limit, an alias budget). Speed is measured in `benches/validate.rs`, not here.

use snapferry_plan::{MAX_ALIAS_NODES, MAX_DEPTH, MAX_REPORTED, PlanErrors, parse, parse_bytes};

const MINIMAL: &str = "version: 1
name: shop
region: us-east-1
bucket:
  name: acme-snapshots
source:
  domain: shop-prod
target:
  domain: shop-copy
";

fn errors(text: &str) -> PlanErrors {
    parse("plan.yaml", text).expect_err("the plan should be refused")
}

/// (message, line, column) of every error listed.
fn found(text: &str) -> Vec<(String, usize, usize)> {
    listed(errors(text))
}

fn listed(errors: PlanErrors) -> Vec<(String, usize, usize)> {
    errors
        .errors
        .into_iter()
        .map(|d| (d.problem.to_string(), d.line, d.column))
        .collect()
}

fn s(message: &str, line: usize, column: usize) -> (String, usize, usize) {
    (message.to_owned(), line, column)
}

#[test]
fn unknown_keys_and_rule_violations_are_reported_together() {
    let text = "version: 1
name: shop
regoin: us-east-1
region: us-east-1
bucket:
  name: Acme
  base-path: x
source:
  domain: shop-prod
target:
  domain: shop-prod
snapshot:
  name: \"{when}\"
";
    assert_eq!(
        found(text),
        [
            s("unknown key `regoin` in the top level", 3, 1),
            s(
                "invalid bucket name \"Acme\": it contains 'A'; only a-z, 0-9, . and - are allowed",
                6,
                9
            ),
            s("unknown key `base-path` in `bucket`", 7, 3),
            s(
                "source and target are the same domain \"shop-prod\"",
                11,
                11
            ),
            s(
                "invalid snapshot name template \"{when}\": unknown placeholder {when}",
                13,
                9
            ),
        ]
    );
}

#[test]
fn a_wrong_type_silences_only_what_would_be_about_its_stand_in() {
    // `sse` is not a valid value, so it is left out; the rule "kms_key_id needs sse: aws:kms"
    // would then fire about a value the user did not write, and does not. The bucket's name
    // and the missing key are still reported, and the version's type.
    let text = "version: \"1\"
name: shop
region: us-east-1
bucket:
  name: Acme
  sse: kms
  kms_key_id: 1234abcd-12ab-34cd-56ef-1234567890ab
source:
  domain: shop-prod
target: {}
";
    assert_eq!(
        found(text),
        [
            s("`version` must be a whole number, found \"1\"", 1, 10),
            s(
                "invalid bucket name \"Acme\": it contains 'A'; only a-z, 0-9, . and - are allowed",
                5,
                9
            ),
            s(
                "`bucket.sse` must be one of AES256, aws:kms, found \"kms\"",
                6,
                8
            ),
            s("missing `target.domain`", 10, 1),
        ]
    );
}

#[test]
fn a_repeated_key_is_shown_at_its_second_occurrence() {
    let text = "version: 1
name: shop
region: us-east-1
bucket: { name: acme-snapshots }
replications:
  - name: one
    source: { domain: shop-prod }
    target: { domain: shop-one, domain: shop-two }
name: again
";
    let all = errors(text);
    assert_eq!(
        listed(all.clone()),
        [
            s(
                "`domain` is written twice in this mapping (first on line 8)",
                8,
                33
            ),
            s(
                "`name` is written twice in this mapping (first on line 2)",
                9,
                1
            ),
        ]
    );
    assert_eq!(all.errors[0].path, "replications[0].target.domain");
}

#[test]
fn invalid_utf8_points_at_each_bad_byte() {
    let mut bytes = MINIMAL.as_bytes().to_vec();
    bytes.extend_from_slice(b"snapshot:\n  name: caf\xE9-{date}\nrestore:\n  indices: [\xFFx]\n");
    let all = parse_bytes("plan.yaml", &bytes).expect_err("not UTF-8");
    assert_eq!(
        listed(all.clone()),
        [
            s("the plan is not UTF-8 text: byte 0xE9", 11, 12),
            s("the plan is not UTF-8 text: byte 0xFF", 13, 13),
        ]
    );
    assert!(all.errors[0].help_text().contains("save the plan as UTF-8"));
    // The text shown has the bytes replaced, so the snippet can be printed.
    let shown = format!("{:?}", miette::Report::new(all));
    assert!(shown.contains("name: caf\u{FFFD}-{date}"), "{shown}");
}

#[test]
fn control_characters_point_at_their_line() {
    let text = format!(
        "{MINIMAL}snapshot:\n  name: \"\u{1b}[31mred{{date}}\"\nrestore:\n  indices: [a\u{0}b]\n"
    );
    let all = errors(&text);
    assert_eq!(
        listed(all.clone()),
        [
            s("control character U+001B (ESC) in the plan", 11, 10),
            s("control character U+0000 (NUL) in the plan", 13, 14),
        ]
    );
    // The snippet shows a picture of the character, never the raw escape sequence.
    let shown = format!("{:?}", miette::Report::new(all));
    assert!(shown.contains("name: \"\u{241B}[31mred{date}\""), "{shown}");
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{0}'),
        "{shown}"
    );
}

#[test]
fn a_flood_of_problems_is_capped_in_the_files_order() {
    let mut text = MINIMAL.to_owned();
    for i in 0..5_000 {
        text.push_str(&format!("unknown_key_{i:05}: x\n"));
    }
    let all = errors(&text);
    assert_eq!(all.errors.len(), MAX_REPORTED);
    assert_eq!(all.omitted, 5_000 - MAX_REPORTED);
    assert_eq!(all.to_string(), "plan.yaml: the plan has 5,000 problems");
    let lines: Vec<usize> = all.errors.iter().map(|d| d.line).collect();
    assert_eq!(lines, (10..10 + MAX_REPORTED).collect::<Vec<_>>());
    let shown = format!("{:?}", miette::Report::new(all));
    assert!(shown.contains("… and 4,980 more"), "{shown}");
    assert!(
        shown.contains("the first 20 are listed; fix them and run `snapferry validate` again"),
        "{shown}"
    );
}

#[test]
fn deep_nesting_stops_at_the_limit_in_any_style() {
    let flow = format!(
        "{MINIMAL}restore: {{ indices: {}{} }}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let block = format!(
        "{MINIMAL}restore:\n  indices:\n    {}x\n",
        "- ".repeat(100_000)
    );
    let mapping = format!(
        "{MINIMAL}x: {}1{}\n",
        "{a: ".repeat(100_000),
        "}".repeat(100_000)
    );
    for text in [flow, block, mapping] {
        let all = found(&text);
        assert_eq!(all.len(), 1, "{all:?}");
        assert_eq!(
            all[0].0,
            format!("values are nested more than {MAX_DEPTH} levels deep")
        );
        assert!((10..=12).contains(&all[0].1), "{all:?}");
    }
}

#[test]
fn aliases_may_not_multiply_beyond_a_budget() {
    let mut text = format!(
        "{MINIMAL}restore:\n  index_settings:\n    l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
    );
    for i in 1..8 {
        let p = i - 1;
        text.push_str(&format!("    l{i}: &l{i} [*l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}]\n"));
    }
    let all = found(&text);
    assert_eq!(MAX_ALIAS_NODES, 50_000);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(
        all[0].0,
        "aliases copy more than 50,000 values into the plan"
    );
    // Within the budget, an alias is its anchor's value.
    let plan = snapferry_plan::parse(
        "plan.yaml",
        "version: 1\nname: shop\nregion: us-east-1\nbucket: { name: acme-snapshots }\nreplications:\n  - name: a\n    source: { domain: shop-prod }\n    target: { domain: shop-a, overrides: &common { tags: { team: search } } }\n  - name: b\n    source: { domain: shop-prod }\n    target: { domain: shop-b, overrides: *common }\n",
    )
    .unwrap();
    assert_eq!(
        plan.replications[0].target.creation,
        plan.replications[1].target.creation
    );
}

#[test]
fn tags_and_types_are_explained_in_the_plans_words() {
    let text = "version: 1
name: shop
region: us-east-1
bucket: !RawBucket
  name: acme-snapshots
source: { domain: shop-prod }
target: { domain: shop-copy }
restore: { on_conflict: [replace] }
snapshot: acme
verify: !!bool yes
";
    let all = found(text);
    assert_eq!(
        all,
        [
            s("a YAML tag (`!RawBucket`) has no meaning in a plan", 4, 9),
            s(
                "`restore.on_conflict` must be one of fail, skip, rename, replace, found a list",
                8,
                25
            ),
            s("`snapshot` must be a mapping, found \"acme\"", 9, 11),
            s("a YAML tag (`!!bool`) has no meaning in a plan", 10, 9),
            s(
                "`verify` must be true/false or a mapping, found \"yes\"",
                10,
                9
            ),
        ]
    );
    for (message, ..) in &all {
        for serde_words in ["expected", "struct", "Raw", "variant", "starting with '!'"] {
            assert!(
                !message.contains(serde_words) || message.contains("RawBucket"),
                "{message}"
            );
        }
    }
}

#[test]
fn plain_scalars_mean_what_they_say_where_text_is_wanted() {
    let plan = snapferry_plan::parse(
        "plan.yaml",
        &format!(
            "{MINIMAL}  overrides:\n    tags: {{ cost-center: 1234, critical: true }}\n    advanced_options: {{ \"rest.action.multi.allow_explicit_index\": true }}\nrepository:\n  name: 2024\n  settings: {{ max_snapshot_bytes_per_sec: 40mb, chunk: 5 }}\n"
        ),
    )
    .unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)));
    let r = &plan.replications[0];
    let overrides = r.target.creation.config();
    assert_eq!(overrides.tags["cost-center"], "1234");
    assert_eq!(overrides.tags["critical"], "true");
    assert_eq!(
        overrides.advanced_options["rest.action.multi.allow_explicit_index"],
        "true"
    );
    assert_eq!(r.repository.name, "2024");
    assert_eq!(r.repository.settings["chunk"], serde_json::json!(5));
}

#[test]
fn a_second_document_and_a_key_that_is_a_list_are_refused() {
    let all = found(&format!("{MINIMAL}? [a, b]\n: 1\n---\nname: other\n"));
    assert_eq!(
        all,
        [
            s("a key must be a name, not a list or mapping", 10, 3),
            s(
                "a plan file holds one YAML document; a second one starts here",
                12,
                1
            ),
        ]
    );
}

#[test]
fn problems_of_the_library_never_quote_serde() {
    // The fallback message exists for a schema/model mismatch; none of these reach it.
    for text in [
        "",
        "- a\n",
        "version: 1\nname: shop\nregion: us-east-1\nbucket: ~\nsource: ~\ntarget: ~\n",
        "version: 99999999999\nname: x\nregion: y\nbucket: {name: z}\nsource: {domain: a}\ntarget: {domain: b}\n",
        "version: 1.5\nname: x\nregion: y\nbucket: {name: z}\nsource: {domain: a}\ntarget: {domain: b}\n",
    ] {
        for (message, ..) in found(text) {
            assert!(!message.contains("cannot be read"), "{text:?}: {message}");
        }
    }
}
