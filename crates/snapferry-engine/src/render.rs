//! How a proposal reads as text: one block per node with a symbol (`+` create, `~` update,
//! `-/+` replace, `=` no change, `…` in progress, `!` blocked), its fields `before → after` with
//! `(known after apply)` where a value depends on an earlier step, what changed since the last
//! apply, and a summary line. The CLI prints it under its own heading; the planner's golden
//! tests compare it with files, so what they pin is exactly what a user reads.
//!
//! A node that stands for many objects (the templates of a metadata step) names them in its
//! field paths, `<family>[<name>]` followed by `.<field>` or nothing for the whole object; such
//! fields are shown under one line per object, with its own symbol (`+` when every field is new,
//! `-` when every field goes, `~` otherwise). The parts of such a node that stay as they are go
//! in its observed value under `unchanged` (a list of strings), each shown as `= <part>`.

use std::fmt::Write as _;

use serde_json::Value;
use snapferry_plan::NodeId;

use crate::change::{Change, FieldChange, FieldValue};
use crate::proposal::Proposal;

/// Counts per kind of change, for the summary line and exit codes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub unchanged: usize,
    pub waiting: usize,
    pub blocked: usize,
}

impl Tally {
    pub fn of(proposal: &Proposal) -> Tally {
        let mut t = Tally::default();
        for node in proposal.nodes.values() {
            match &node.change {
                Change::NoOp => t.unchanged += 1,
                Change::Create { .. } => t.create += 1,
                Change::Update { fields } if fields.is_empty() => t.unchanged += 1,
                Change::Update { .. } => t.update += 1,
                Change::Replace { .. } => t.replace += 1,
                Change::InProgress { .. } => t.waiting += 1,
                Change::Blocked { .. } => t.blocked += 1,
            }
        }
        t
    }

    pub fn changes(&self) -> bool {
        self.create + self.update + self.replace + self.waiting + self.blocked > 0
    }

    pub fn summary(&self) -> String {
        let mut line = format!(
            "Plan: {} to create, {} to update, {} to replace, {} unchanged",
            self.create, self.update, self.replace, self.unchanged
        );
        if self.waiting > 0 {
            let _ = write!(line, ", {} in progress", self.waiting);
        }
        if self.blocked > 0 {
            let _ = write!(line, ", {} blocked", self.blocked);
        }
        line.push('.');
        line
    }
}

/// The symbol a change is shown with.
pub fn symbol(change: &Change) -> &'static str {
    match change {
        Change::NoOp => "=",
        Change::Create { .. } => "+",
        Change::Update { fields } if fields.is_empty() => "=",
        Change::Update { .. } => "~",
        Change::Replace { .. } => "-/+",
        Change::InProgress { .. } => "…",
        Change::Blocked { .. } => "!",
    }
}

/// A value on one line, or, when it is a long document (a policy), pretty-printed and
/// indented under its field so a reviewer can read every statement.
fn value_text(v: &FieldValue) -> String {
    match v {
        FieldValue::Known(Value::String(s)) => format!("{s:?}"),
        FieldValue::Known(other) => {
            let text = other.to_string();
            if text.len() > 80 && (other.is_object() || other.is_array()) {
                let pretty = serde_json::to_string_pretty(other).expect("JSON prints");
                pretty.replace('\n', "\n        ")
            } else {
                text
            }
        }
        other => other.to_string(),
    }
}

/// `(object, field)` of a path naming an object (`index_template[logs].priority`), else `None`.
fn object_of(path: &str) -> Option<(&str, &str)> {
    let open = path.find('[')?;
    if open == 0
        || !path[..open]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c == '-')
    {
        return None;
    }
    if let Some(close) = path[open..].find("].") {
        let end = open + close + 1;
        return Some((&path[..end], &path[end + 1..]));
    }
    path.ends_with(']').then_some((path, ""))
}

fn field_line(out: &mut String, indent: &str, path: &str, f: &FieldChange) {
    let label = if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    };
    // A pretty-printed value's lines sit two columns under its field, however deep the field.
    let deeper = format!("\n{}", " ".repeat(indent.len().saturating_sub(6)));
    let text = |v: &FieldValue| value_text(v).replace('\n', &deeper);
    let _ = match &f.before {
        None => writeln!(out, "{indent}{label}{}", text(&f.after)),
        Some(before) => writeln!(out, "{indent}{label}{} → {}", text(before), text(&f.after)),
    };
}

/// The fields of a change, those naming objects grouped under a line per object.
fn fields_text(out: &mut String, fields: &[FieldChange]) {
    let mut i = 0;
    while i < fields.len() {
        let Some((object, _)) = object_of(&fields[i].path) else {
            field_line(out, "      ", &fields[i].path, &fields[i]);
            i += 1;
            continue;
        };
        let group: Vec<&FieldChange> = fields[i..]
            .iter()
            .take_while(|f| object_of(&f.path).is_some_and(|(o, _)| o == object))
            .collect();
        i += group.len();
        let gone = |f: &&FieldChange| {
            f.before.is_some() && matches!(f.after, FieldValue::Known(Value::Null))
        };
        let symbol = if group.iter().all(|f| f.before.is_none()) {
            "+"
        } else if group.iter().all(gone) {
            "-"
        } else {
            "~"
        };
        let _ = writeln!(out, "      {symbol} {object}");
        if symbol == "-" {
            continue;
        }
        for f in group {
            let (_, field) = object_of(&f.path).expect("grouped by object");
            field_line(out, "          ", field, f);
        }
    }
}

/// One node's block.
pub fn node_text(id: &NodeId, change: &Change) -> String {
    let mut out = String::new();
    match change {
        Change::NoOp => {
            let _ = writeln!(out, "  = {id}");
        }
        Change::Update { fields } if fields.is_empty() => {
            let _ = writeln!(out, "  = {id}");
        }
        Change::Create { fields } | Change::Update { fields } | Change::Replace { fields } => {
            let _ = writeln!(out, "  {} {id} ({})", symbol(change), change.verb());
            fields_text(&mut out, fields);
        }
        Change::InProgress { what } => {
            let _ = writeln!(out, "  … {id} (in progress: {what}; apply waits for it)");
        }
        Change::Blocked { reason } => {
            let _ = writeln!(out, "  ! {id} (blocked)\n      {reason}");
        }
    }
    out
}

/// The proposal as text, under `heading`.
pub fn text(proposal: &Proposal, heading: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{heading}\n");
    for id in &proposal.order {
        out.push_str(&node_text(id, &proposal.nodes[id].change));
        let unchanged = proposal
            .observed(id)
            .and_then(|o| o.value.get("unchanged"))
            .and_then(Value::as_array);
        for part in unchanged.into_iter().flatten().filter_map(Value::as_str) {
            let _ = writeln!(out, "      = {part}");
        }
    }
    if let Some(drift) = &proposal.state {
        let mut notes = Vec::new();
        for (id, how) in &drift.changed {
            notes.push(format!("  {id}: {how}"));
        }
        for id in &drift.drifted {
            let blocked = matches!(proposal.nodes[id].change, Change::Blocked { .. });
            notes.push(if blocked {
                format!(
                    "  {id}: changed outside snapferry since it was applied, in a way apply \
                     cannot undo (blocked above)"
                )
            } else {
                format!(
                    "  {id}: changed outside snapferry since it was applied; apply brings it \
                     back to the plan"
                )
            });
        }
        for id in &drift.removed {
            notes.push(format!(
                "  {id}: no longer in the plan; apply leaves it in place"
            ));
        }
        if !notes.is_empty() {
            let _ = writeln!(out, "\nSince the last apply:");
            for n in notes {
                let _ = writeln!(out, "{n}");
            }
        }
    }
    let tally = Tally::of(proposal);
    let _ = writeln!(out, "\n{}", tally.summary());
    if tally.blocked > 0 {
        let _ = writeln!(
            out,
            "apply would stop on the {} blocked step(s) above before changing anything; fix them first.",
            tally.blocked
        );
    }
    out
}
