//! Is the approved proposal still true? At each node's turn apply reads the node again (with
//! the real upstream outputs) and diffs it; [`compare`] sets that fresh change against the one
//! the proposal showed. A saved plan is checked against a fresh plan with the same function
//! ([`crate::Proposal::stale_against`]), so there is one notion of "stale".
//!
//! The rules:
//! - `(known after apply)` in the proposal matches any value, at its path and under it (an
//!   unknown `indices` covers `indices.orders`).
//! - Moving forward is not staleness: a proposed create, update, replace or wait found already
//!   done (no change left), a proposed create found in progress, a field that no longer needs
//!   changing.
//! - Anything else is: another kind of change, a value that would now be set differently, a
//!   live value the change started from that moved, a field that now changes too, a step that
//!   is now blocked. Each is named at the field level.
//! - A volatile kind (one whose live state moves on its own) is stale only when it is now
//!   blocked.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::change::{Change, FieldChange, FieldValue};

/// How a fresh change relates to the proposed one.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The same change (where the proposal knew the values).
    Same,
    /// Part or all of it happened already: carry on with what is left.
    Forward,
    /// Something moved: the node must not be applied from this proposal.
    Stale(Vec<Moved>),
}

/// One thing that moved since the proposal was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "moved")]
pub enum Moved {
    /// Another kind of change: `create` when planned, `update` now.
    Action { proposed: String, now: String },
    /// The step cannot proceed any more.
    Blocked { reason: String },
    /// The field would now be set to another value.
    Value {
        path: String,
        proposed: FieldValue,
        now: FieldValue,
    },
    /// The live value the change started from moved.
    Before {
        path: String,
        proposed: Option<FieldValue>,
        now: Option<FieldValue>,
    },
    /// A field that now changes and did not in the proposal.
    Added { path: String, change: FieldChange },
}

fn value_or_absent(v: Option<&FieldValue>) -> String {
    v.map_or_else(|| "(absent)".to_owned(), ToString::to_string)
}

impl fmt::Display for Moved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Moved::Action { proposed, now } => {
                write!(
                    f,
                    "the change was `{proposed}` when planned, it is `{now}` now"
                )
            }
            Moved::Blocked { reason } => write!(f, "it is blocked now: {reason}"),
            Moved::Value {
                path,
                proposed,
                now,
            } => write!(f, "{path}: {proposed} → {now}"),
            Moved::Before {
                path,
                proposed,
                now,
            } => write!(
                f,
                "{path}: was {} when planned, is {} now",
                value_or_absent(proposed.as_ref()),
                value_or_absent(now.as_ref())
            ),
            Moved::Added { path, change } => write!(
                f,
                "{path}: now changes too ({} → {})",
                value_or_absent(change.before.as_ref()),
                change.after
            ),
        }
    }
}

/// An update with no field changes nothing.
fn normalized(change: &Change) -> &Change {
    match change {
        Change::Update { fields } if fields.is_empty() => &Change::NoOp,
        other => other,
    }
}

fn fields_of(change: &Change) -> &[FieldChange] {
    match change {
        Change::Create { fields } | Change::Update { fields } | Change::Replace { fields } => {
            fields
        }
        Change::NoOp | Change::InProgress { .. } | Change::Blocked { .. } => &[],
    }
}

/// Two values set by a change are the same (a secret cannot be compared: it counts as same).
fn same_value(a: &FieldValue, b: &FieldValue) -> bool {
    match (a, b) {
        (FieldValue::Known(a), FieldValue::Known(b)) => a == b,
        (FieldValue::Sensitive(_), FieldValue::Sensitive(_)) => true,
        (FieldValue::Unknown, _) => true,
        _ => false,
    }
}

fn same_before(a: Option<&FieldValue>, b: Option<&FieldValue>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => same_value(a, b),
        _ => false,
    }
}

/// Field by field: what the fresh change sets that the proposal did not foresee.
fn moved_fields(proposed: &[FieldChange], fresh: &[FieldChange]) -> Vec<Moved> {
    let unknown: Vec<&str> = proposed
        .iter()
        .filter(|f| f.after == FieldValue::Unknown)
        .map(|f| f.path.as_str())
        .collect();
    let covered = |path: &str| {
        unknown.iter().any(|u| {
            path == *u
                || path
                    .strip_prefix(*u)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    };
    let by_path: BTreeMap<&str, &FieldChange> =
        proposed.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut moved = Vec::new();
    for now in fresh {
        if covered(&now.path) {
            continue;
        }
        match by_path.get(now.path.as_str()) {
            None => moved.push(Moved::Added {
                path: now.path.clone(),
                change: now.clone(),
            }),
            Some(then) if !same_value(&then.after, &now.after) => moved.push(Moved::Value {
                path: now.path.clone(),
                proposed: then.after.clone(),
                now: now.after.clone(),
            }),
            Some(then) if !same_before(then.before.as_ref(), now.before.as_ref()) => {
                moved.push(Moved::Before {
                    path: now.path.clone(),
                    proposed: then.before.clone(),
                    now: now.before.clone(),
                });
            }
            Some(_) => {}
        }
    }
    // A proposed field missing from the fresh change needs no change any more: forward.
    moved
}

/// Sets the fresh change of a node against the proposed one (see the module's rules).
pub fn compare(proposed: &Change, fresh: &Change, volatile: bool) -> Verdict {
    let (proposed, fresh) = (normalized(proposed), normalized(fresh));
    if let Change::Blocked { reason } = fresh {
        if matches!(proposed, Change::Blocked { .. }) {
            return Verdict::Same;
        }
        return Verdict::Stale(vec![Moved::Blocked {
            reason: reason.clone(),
        }]);
    }
    // A change the plan could not know (its live state was unreadable until the steps
    // before it ran) is whatever the node's turn finds.
    if volatile || proposed.is_deferred() {
        return Verdict::Same;
    }
    match (proposed, fresh) {
        (Change::NoOp, Change::NoOp) | (Change::InProgress { .. }, Change::InProgress { .. }) => {
            Verdict::Same
        }
        (Change::Blocked { .. }, _) => Verdict::Same,
        (_, Change::NoOp) | (Change::Create { .. }, Change::InProgress { .. }) => Verdict::Forward,
        (Change::Create { fields: p }, Change::Create { fields: f })
        | (Change::Update { fields: p }, Change::Update { fields: f })
        | (Change::Replace { fields: p }, Change::Replace { fields: f }) => {
            let moved = moved_fields(p, f);
            if moved.is_empty() {
                if f.len() < p.len() {
                    Verdict::Forward
                } else {
                    Verdict::Same
                }
            } else {
                Verdict::Stale(moved)
            }
        }
        (p, f) => {
            let mut moved = vec![Moved::Action {
                proposed: p.verb().to_owned(),
                now: f.verb().to_owned(),
            }];
            moved.extend(moved_fields(fields_of(p), fields_of(f)));
            Verdict::Stale(moved)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(path: &str, before: Option<FieldValue>, after: FieldValue) -> FieldChange {
        FieldChange {
            path: path.into(),
            before,
            after,
        }
    }

    fn known(v: serde_json::Value) -> FieldValue {
        FieldValue::Known(v)
    }

    #[test]
    fn a_deferred_change_accepts_what_the_nodes_turn_finds_unless_blocked() {
        let deferred = Change::deferred("refused until security/x has run");
        assert!(deferred.is_deferred());
        let create = Change::Create {
            fields: vec![field("template.logs", None, known(json!({"a": 1})))],
        };
        for fresh in [
            Change::NoOp,
            create.clone(),
            Change::Update { fields: vec![] },
        ] {
            assert_eq!(
                compare(&deferred, &fresh, false),
                Verdict::Same,
                "{fresh:?}"
            );
        }
        assert!(matches!(
            compare(
                &deferred,
                &Change::Blocked {
                    reason: "still refused".into()
                },
                false
            ),
            Verdict::Stale(_)
        ));
        // An ordinary update with an unknown field is not deferred.
        assert!(
            !Change::Update {
                fields: vec![field("live state", None, known(json!(1)))]
            }
            .is_deferred()
        );
        assert!(matches!(
            compare(
                &create,
                &Change::Update {
                    fields: vec![field("x", None, known(json!(1)))]
                },
                false
            ),
            Verdict::Stale(_)
        ));
    }

    fn messages(v: Verdict) -> Vec<String> {
        match v {
            Verdict::Stale(moved) => moved.iter().map(ToString::to_string).collect(),
            other => panic!("not stale: {other:?}"),
        }
    }

    #[test]
    fn a_value_set_differently_is_named_with_both_values() {
        let p = Change::Create {
            fields: vec![
                field("snapshot", None, FieldValue::Unknown),
                field("on_conflict", None, known(json!("fail"))),
            ],
        };
        let f = Change::Create {
            fields: vec![
                field("snapshot", None, known(json!("shop-2026-11-01"))),
                field("on_conflict", None, known(json!("replace"))),
            ],
        };
        assert_eq!(
            messages(compare(&p, &f, false)),
            [r#"on_conflict: "fail" → "replace""#]
        );
    }

    #[test]
    fn unknown_covers_its_path_and_everything_under_it_and_absence() {
        let p = Change::Create {
            fields: vec![field("indices", None, FieldValue::Unknown)],
        };
        let f = Change::Create {
            fields: vec![
                field("indices.orders", None, known(json!("restored from orders"))),
                field("indices.products", None, known(json!("restored"))),
            ],
        };
        assert_eq!(compare(&p, &f, false), Verdict::Same);
        let under_a_sibling = Change::Create {
            fields: vec![field("indices_extra", None, known(json!(1)))],
        };
        assert_eq!(
            messages(compare(&p, &under_a_sibling, false)),
            ["indices_extra: now changes too ((absent) → 1)"]
        );
    }

    #[test]
    fn moving_forward_is_not_stale() {
        let create = Change::Create {
            fields: vec![field("name", None, known(json!("a")))],
        };
        let update = Change::Update {
            fields: vec![
                field("a", Some(known(json!(1))), known(json!(2))),
                field("b", Some(known(json!(1))), known(json!(2))),
            ],
        };
        let waiting = Change::InProgress {
            what: "creating".into(),
        };
        for proposed in [&create, &update, &waiting] {
            assert_eq!(compare(proposed, &Change::NoOp, false), Verdict::Forward);
        }
        assert_eq!(compare(&create, &waiting, false), Verdict::Forward);
        let half_done = Change::Update {
            fields: vec![field("b", Some(known(json!(1))), known(json!(2)))],
        };
        assert_eq!(compare(&update, &half_done, false), Verdict::Forward);
        assert_eq!(
            compare(&update, &Change::Update { fields: vec![] }, false),
            Verdict::Forward
        );
    }

    #[test]
    fn anything_else_is_stale_and_says_what_moved() {
        let create = Change::Create {
            fields: vec![field("bucket", None, known(json!("b")))],
        };
        let update = Change::Update {
            fields: vec![field("policy.X", None, known(json!({"Sid": "X"})))],
        };
        assert_eq!(
            messages(compare(&create, &update, false)),
            [
                "the change was `create` when planned, it is `update` now",
                r#"policy.X: now changes too ((absent) → {"Sid":"X"})"#
            ]
        );
        assert_eq!(
            messages(compare(&Change::NoOp, &create, false)),
            [
                "the change was `no-op` when planned, it is `create` now",
                r#"bucket: now changes too ((absent) → "b")"#
            ]
        );
        let waiting = Change::InProgress { what: "x".into() };
        assert_eq!(
            messages(compare(&waiting, &create, false))[0],
            "the change was `wait` when planned, it is `create` now"
        );
        let before_moved = Change::Update {
            fields: vec![field("a", Some(known(json!(4))), known(json!(2)))],
        };
        let proposed = Change::Update {
            fields: vec![field("a", Some(known(json!(1))), known(json!(2)))],
        };
        assert_eq!(
            messages(compare(&proposed, &before_moved, false)),
            ["a: was 1 when planned, is 4 now"]
        );
        let blocked = Change::Blocked {
            reason: "indices x already exist".into(),
        };
        assert_eq!(
            messages(compare(&create, &blocked, true)),
            ["it is blocked now: indices x already exist"]
        );
    }

    #[test]
    fn a_volatile_kind_is_only_stale_when_blocked() {
        let p = Change::Create {
            fields: vec![field("documents", None, FieldValue::Unknown)],
        };
        let f = Change::Update {
            fields: vec![field(
                "documents.orders",
                Some(known(json!(2))),
                known(json!(3)),
            )],
        };
        assert_eq!(compare(&p, &f, true), Verdict::Same);
        assert!(matches!(compare(&p, &f, false), Verdict::Stale(_)));
    }
}
