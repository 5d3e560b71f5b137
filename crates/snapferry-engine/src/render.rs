//! How a proposal reads as text: one block per node with a symbol (`+` create, `~` update,
//! `-/+` replace, `=` no change, `…` in progress, `!` blocked), its fields `before → after` with
//! `(known after apply)` where a value depends on an earlier step, what changed since the last
//! apply, and a summary line. The CLI prints it under its own heading; the planner's golden
//! tests compare it with files, so what they pin is exactly what a user reads.

use std::fmt::Write as _;

use serde_json::Value;
use snapferry_plan::NodeId;

use crate::change::{Change, FieldValue};
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
            for f in fields {
                match &f.before {
                    None => {
                        let _ = writeln!(out, "      {}: {}", f.path, value_text(&f.after));
                    }
                    Some(before) => {
                        let _ = writeln!(
                            out,
                            "      {}: {} → {}",
                            f.path,
                            value_text(before),
                            value_text(&f.after)
                        );
                    }
                }
            }
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
