//! `plan --format markdown`: the plan as a pull-request comment. A reviewer sees at a glance
//! what apply would do — one table row per step (its action and a one-line summary), the
//! blocked steps with their reasons, what changed since the last apply — and opens the
//! field-level details (`before → after`) in collapsed `<details>` blocks.
//!
//! The comment starts with a hidden marker naming the plan, so a CI job finds its own comment
//! and updates it in place on re-runs. It stays within GitHub's comment limit: details are
//! dropped from the end (then table rows, for a plan so large that even those do not fit), and
//! a note says what was left out and where the full plan is.
//!
//! Written against the engine's [`Proposal`] (what `plan` computes and `apply` executes), the
//! same value `render.rs` prints as text and JSON, in its own module so a change of that type
//! touches one place.

use std::fmt::Write as _;

use serde_json::Value;
use snapferry_engine::{Change, FieldChange, FieldValue, Proposal};

use super::render::Tally;

/// GitHub refuses an issue or pull-request comment longer than this (in characters).
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// What the comment is about: the plan's name, its file and where its state is.
pub struct Heading<'a> {
    pub plan_name: &'a str,
    pub plan_file: &'a str,
    pub state: &'a str,
}

/// The hidden first line a CI job looks for to update its comment instead of adding one.
pub fn marker(plan_name: &str) -> String {
    format!("<!-- snapferry-plan: {plan_name} -->")
}

/// The plan as Markdown of at most `limit` characters (counted as UTF-16 units, the most any
/// counting of GitHub's can find).
pub fn markdown(proposal: &Proposal, heading: &Heading, limit: usize) -> String {
    let tally = Tally::of(proposal);
    let mut head = String::new();
    let _ = writeln!(head, "{}", marker(heading.plan_name));
    let _ = writeln!(head, "### snapferry plan `{}`\n", code(heading.plan_name));
    let _ = writeln!(
        head,
        "Plan file `{}`, state at `{}`.\n",
        code(heading.plan_file),
        code(heading.state)
    );
    let _ = write!(head, "**{}**", tally.summary());
    if tally.blocked > 0 {
        let _ = write!(
            head,
            " Apply would stop on the {} blocked step(s) before changing anything.",
            tally.blocked
        );
    }
    head.push_str("\n\n");

    let rows: Vec<String> = proposal
        .order
        .iter()
        .map(|id| {
            let change = &proposal.nodes[id].change;
            format!(
                "| `{}` | {} | {} |\n",
                code(&id.to_string()),
                action(change),
                cell(&summary(change))
            )
        })
        .collect();

    let mut tail = String::new();
    let blocked: Vec<String> = proposal
        .order
        .iter()
        .filter_map(|id| match &proposal.nodes[id].change {
            Change::Blocked { reason } => {
                Some(format!("- `{}`: {}\n", code(&id.to_string()), text(reason)))
            }
            _ => None,
        })
        .collect();
    if !blocked.is_empty() {
        tail.push_str("\n**Blocked steps**\n\n");
        tail.extend(blocked);
    }
    if let Some(drift) = &proposal.state {
        let mut notes = Vec::new();
        for (id, how) in &drift.changed {
            notes.push(format!("- `{}`: {}\n", code(&id.to_string()), text(how)));
        }
        for id in &drift.drifted {
            // The same words as the text form (`snapferry_engine::render::text`).
            let how = if matches!(proposal.nodes[id].change, Change::Blocked { .. }) {
                "in a way apply cannot undo (see the blocked steps)"
            } else {
                "apply brings it back to the plan"
            };
            notes.push(format!(
                "- `{}`: changed outside snapferry since it was applied; {how}\n",
                code(&id.to_string())
            ));
        }
        for id in &drift.removed {
            notes.push(format!(
                "- `{}`: no longer in the plan; apply leaves it in place\n",
                code(&id.to_string())
            ));
        }
        if !notes.is_empty() {
            tail.push_str("\n**Since the last apply**\n\n");
            tail.extend(notes);
        }
    }

    let details: Vec<String> = proposal
        .order
        .iter()
        .filter_map(|id| {
            let change = &proposal.nodes[id].change;
            match change {
                Change::Create { fields }
                | Change::Update { fields }
                | Change::Replace { fields }
                    if !fields.is_empty() =>
                {
                    Some(detail(&id.to_string(), change, fields))
                }
                _ => None,
            }
        })
        .collect();

    assemble(&head, &rows, &tail, &details, limit)
}

/// Puts the parts together, leaving out what does not fit from the end: details first, then
/// table rows, then anything else (a last resort for an absurdly small limit).
fn assemble(head: &str, rows: &[String], tail: &str, details: &[String], limit: usize) -> String {
    const TABLE_HEAD: &str = "| step | action | summary |\n| --- | --- | --- |\n";
    let note = |rows_left: usize, details_left: usize| -> String {
        let mut what = Vec::new();
        if rows_left > 0 {
            what.push(format!("{rows_left} more step(s) of the table"));
        }
        if details_left > 0 {
            what.push(format!("the details of {details_left} step(s)"));
        }
        format!(
            "\n> {} left out to stay under GitHub's {} character comment limit; \
             `snapferry plan` prints the whole plan (see the job log).\n",
            capitalise(&what.join(" and ")),
            thousands(GITHUB_COMMENT_LIMIT)
        )
    };
    // The longest note there can be, kept free whatever is cut.
    let reserve = units(&note(rows.len(), details.len()));
    let budget = limit.saturating_sub(reserve);
    let mut out = String::new();
    out.push_str(head);
    out.push_str(TABLE_HEAD);
    let mut rows_left = rows.len();
    for (i, row) in rows.iter().enumerate() {
        if units(&out) + units(row) + units(tail) > budget {
            rows_left = rows.len() - i;
            break;
        }
        out.push_str(row);
        rows_left = rows.len() - i - 1;
    }
    if units(&out) + units(tail) <= budget {
        out.push_str(tail);
    }
    let mut details_left = details.len();
    if rows_left == 0 {
        for (i, block) in details.iter().enumerate() {
            let block = format!("\n{block}");
            if units(&out) + units(&block) > budget {
                details_left = details.len() - i;
                break;
            }
            out.push_str(&block);
            details_left = details.len() - i - 1;
        }
    }
    if rows_left > 0 || details_left > 0 {
        out.push_str(&note(rows_left, details_left));
    }
    // Only a limit smaller than the note itself gets here.
    if units(&out) > limit {
        out = out.chars().take(limit).collect();
        while units(&out) > limit {
            out.pop();
        }
    }
    out
}

/// One step's fields, collapsed.
fn detail(id: &str, change: &Change, fields: &[FieldChange]) -> String {
    let mut lines = String::new();
    for f in fields {
        match &f.before {
            None => {
                let _ = writeln!(lines, "{}: {}", f.path, value_text(&f.after));
            }
            Some(before) => {
                let _ = writeln!(
                    lines,
                    "{}: {} → {}",
                    f.path,
                    value_text(before),
                    value_text(&f.after)
                );
            }
        }
    }
    let fence = "`".repeat(longest_backtick_run(&lines).max(2) + 1);
    format!(
        "<details><summary><code>{}</code>: {}, {}</summary>\n\n{fence}text\n{lines}{fence}\n\n</details>\n",
        html(id),
        change.verb(),
        count(fields.len(), "field")
    )
}

/// The action column: the symbol the text form uses, and the verb.
fn action(change: &Change) -> &'static str {
    match change {
        Change::NoOp => "`=` no change",
        Change::Update { fields } if fields.is_empty() => "`=` no change",
        Change::Create { .. } => "`+` create",
        Change::Update { .. } => "`~` update",
        Change::Replace { .. } => "`-/+` replace",
        Change::InProgress { .. } => "`…` in progress",
        Change::Blocked { .. } => "`!` **blocked**",
    }
}

/// One line saying what the step's change is.
fn summary(change: &Change) -> String {
    match change {
        Change::NoOp => String::new(),
        Change::Update { fields } if fields.is_empty() => String::new(),
        Change::Create { fields } => fields_line(fields),
        Change::Update { fields } | Change::Replace { fields } => match fields.as_slice() {
            [only] => {
                let line = match &only.before {
                    Some(before) => format!(
                        "{}: {} → {}",
                        only.path,
                        short_value(before),
                        short_value(&only.after)
                    ),
                    None => format!("{}: {}", only.path, short_value(&only.after)),
                };
                if line.chars().count() <= 100 {
                    line
                } else {
                    fields_line(fields)
                }
            }
            _ => fields_line(fields),
        },
        Change::InProgress { what } => format!("{what}; apply waits for it"),
        Change::Blocked { .. } => "see the blocked steps below".to_owned(),
    }
}

/// "3 fields: a, b, c" with the names cut after about 90 characters.
fn fields_line(fields: &[FieldChange]) -> String {
    let mut names = String::new();
    for (i, f) in fields.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        if names.chars().count() + sep.len() + f.path.chars().count() > 90 {
            names.push_str(", …");
            break;
        }
        names.push_str(sep);
        names.push_str(&f.path);
    }
    format!("{}: {names}", count(fields.len(), "field"))
}

/// A value for the table: short documents inline, long ones by their kind.
fn short_value(v: &FieldValue) -> String {
    match v {
        FieldValue::Known(Value::String(s)) => format!("{s:?}"),
        FieldValue::Known(other) => {
            let text = other.to_string();
            match other {
                Value::Object(_) if text.chars().count() > 40 => "{…}".to_owned(),
                Value::Array(_) if text.chars().count() > 40 => "[…]".to_owned(),
                _ => text,
            }
        }
        other => other.to_string(),
    }
}

/// A value in the details: long documents (policies) pretty-printed under their field.
fn value_text(v: &FieldValue) -> String {
    match v {
        FieldValue::Known(Value::String(s)) => format!("{s:?}"),
        FieldValue::Known(other) => {
            let text = other.to_string();
            if text.len() > 80 && (other.is_object() || other.is_array()) {
                serde_json::to_string_pretty(other)
                    .expect("JSON prints")
                    .replace('\n', "\n    ")
            } else {
                text
            }
        }
        other => other.to_string(),
    }
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn longest_backtick_run(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// Text inside a code span: a backtick would end it.
fn code(s: &str) -> String {
    s.replace('`', "'")
}

/// HTML text (inside `<summary>`).
fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Markdown text that renders as written, on one line: HTML, emphasis, links and table pipes
/// escaped. Backticks are kept, so `names` in snapferry's messages show as code.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '*' | '_' | '[' | ']' | '#' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A table cell (pipes escaped by [`text`] too).
fn cell(s: &str) -> String {
    text(s)
}

fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use snapferry_engine::{LiveState, NodeId, ProposedNode};
    use std::collections::BTreeMap;

    fn node(change: Change) -> ProposedNode {
        ProposedNode {
            kind: "domain".to_owned(),
            change,
            recorded: None,
            fingerprint: String::new(),
            volatile: false,
        }
    }

    /// A fleet-sized plan: `n` domains created with a policy document each.
    fn big(n: usize) -> Proposal {
        let mut order = Vec::new();
        let mut nodes = BTreeMap::new();
        for i in 0..n {
            let id = NodeId::new("domain", &format!("copy-{i:04}"));
            let fields = vec![
                FieldChange {
                    path: "engine_version".into(),
                    before: None,
                    after: FieldValue::known("OpenSearch_2.11"),
                },
                FieldChange {
                    path: "access_policy".into(),
                    before: None,
                    after: FieldValue::known(serde_json::json!({
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                            "Action": "es:*", "Resource": format!("arn:aws:es:eu-west-1:111111111111:domain/copy-{i:04}/*")}]
                    })),
                },
            ];
            nodes.insert(id.clone(), node(Change::Create { fields }));
            order.push(id);
        }
        Proposal {
            plan_fingerprint: String::new(),
            order,
            nodes,
            state: None,
            live: LiveState::default(),
        }
    }

    const HEADING: Heading<'static> = Heading {
        plan_name: "fleet",
        plan_file: "snapferry.yaml",
        state: ".snapferry/fleet.state.json",
    };

    #[test]
    fn a_huge_plan_stays_under_githubs_limit_and_says_what_it_left_out() {
        let out = markdown(&big(2_000), &HEADING, GITHUB_COMMENT_LIMIT);
        assert!(units(&out) <= GITHUB_COMMENT_LIMIT, "{}", units(&out));
        assert!(out.starts_with("<!-- snapferry-plan: fleet -->\n"));
        assert!(
            out.contains("left out to stay under GitHub's 65,536 character comment limit"),
            "{}",
            &out[out.len() - 300..]
        );
        // Rows go last: 2,000 rows do not fit, so every detail and some rows were left out.
        assert!(!out.contains("<details>"));
        assert!(
            out.contains("more step(s) of the table and the details of 2000 step(s) left out"),
            "{}",
            &out[out.len() - 300..]
        );
        assert!(out.contains("`domain/copy-0000`"));
        assert!(!out.contains("`domain/copy-1999`"));
    }

    #[test]
    fn a_plan_that_fits_has_every_row_and_collapsed_details() {
        let out = markdown(&big(3), &HEADING, GITHUB_COMMENT_LIMIT);
        assert!(!out.contains("left out"), "{out}");
        assert_eq!(out.matches("<details>").count(), 3);
        assert!(out.contains(
            "| `domain/copy-0002` | `+` create | 2 fields: engine\\_version, access\\_policy |"
        ));
        // Only details are dropped when rows fit but details do not.
        let tight = markdown(&big(3), &HEADING, units(&out) - 10);
        assert!(units(&tight) <= units(&out) - 10);
        assert_eq!(tight.matches("<details>").count(), 2, "{tight}");
        assert!(
            tight.contains("> The details of 1 step(s) left out"),
            "{tight}"
        );
    }

    #[test]
    fn text_from_aws_cannot_break_the_markdown() {
        assert_eq!(
            text("a | b <script> *x* `y`\nz"),
            "a \\| b &lt;script&gt; \\*x\\* `y` z"
        );
        assert_eq!(longest_backtick_run("a ```` b ` c"), 4);
        let fields = vec![FieldChange {
            path: "weird".into(),
            before: None,
            after: FieldValue::known("````"),
        }];
        let block = detail(
            "x/y",
            &Change::Create {
                fields: fields.clone(),
            },
            &fields,
        );
        assert!(block.contains("\n`````text\n"), "{block}");
    }

    #[test]
    fn sensitive_values_stay_redacted() {
        let fields = vec![FieldChange {
            path: "master_user_password".into(),
            before: None,
            after: FieldValue::Sensitive(Some(serde_json::json!("hunter2"))),
        }];
        let change = Change::Create {
            fields: fields.clone(),
        };
        let block = detail("domain/x", &change, &fields);
        assert!(!block.contains("hunter2"));
        assert!(block.contains("master_user_password: (sensitive)"));
    }
}
