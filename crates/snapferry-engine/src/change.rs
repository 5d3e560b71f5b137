//! What a resource's `diff` proposes: the `Change` of one node, field by field. Values are
//! `Known`, `Unknown` ("known after apply", never guessed) or `Sensitive` (shown redacted and
//! never written to the state).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value that is known now, only after apply, or secret.
#[derive(Clone, PartialEq)]
pub enum FieldValue {
    Known(serde_json::Value),
    /// Depends on something that will only exist after apply.
    Unknown,
    /// A secret: usable in memory, redacted on display, never persisted. `None` after a
    /// load from the state, where only the fact that a secret existed survives.
    Sensitive(Option<serde_json::Value>),
}

impl FieldValue {
    pub fn known(value: impl Into<serde_json::Value>) -> Self {
        FieldValue::Known(value.into())
    }

    /// The known value, if any (a sensitive value counts as known when present).
    pub fn as_known(&self) -> Option<&serde_json::Value> {
        match self {
            FieldValue::Known(v) => Some(v),
            FieldValue::Sensitive(Some(v)) => Some(v),
            FieldValue::Unknown | FieldValue::Sensitive(None) => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        self.as_known().and_then(|v| v.as_str())
    }

    /// True for a secret that was lost by persisting it (only its existence is recorded).
    pub fn is_redacted(&self) -> bool {
        matches!(self, FieldValue::Sensitive(None))
    }
}

impl fmt::Debug for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Known(v) => write!(f, "{v}"),
            FieldValue::Unknown => f.write_str("(known after apply)"),
            FieldValue::Sensitive(_) => f.write_str("(sensitive)"),
        }
    }
}

/// On disk: `{"known": v}`, `{"unknown": true}` or `{"sensitive": true}` — the secret itself
/// is never serialized.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum FieldValueRepr {
    Known(serde_json::Value),
    Unknown(bool),
    Sensitive(bool),
}

impl Serialize for FieldValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FieldValue::Known(v) => FieldValueRepr::Known(v.clone()),
            FieldValue::Unknown => FieldValueRepr::Unknown(true),
            FieldValue::Sensitive(_) => FieldValueRepr::Sensitive(true),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for FieldValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match FieldValueRepr::deserialize(d)? {
            FieldValueRepr::Known(v) => FieldValue::Known(v),
            FieldValueRepr::Unknown(_) => FieldValue::Unknown,
            FieldValueRepr::Sensitive(_) => FieldValue::Sensitive(None),
        })
    }
}

/// One field that differs between observed and desired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// A dotted path such as `cluster_config.instance_count`.
    pub path: String,
    /// `None` when the field does not exist yet.
    pub before: Option<FieldValue>,
    pub after: FieldValue,
}

/// The one field of a [`Change::deferred`]: the node's whole live state.
pub const DEFERRED_PATH: &str = "live state";

/// What applying a node would do. Computed purely by `Resource::diff`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Change {
    /// Live state already matches.
    NoOp,
    /// The resource does not exist; these are the fields it will be created with.
    Create { fields: Vec<FieldChange> },
    /// The resource exists and these fields differ.
    Update { fields: Vec<FieldChange> },
    /// The resource must be deleted and created again (a field that cannot change in place).
    Replace { fields: Vec<FieldChange> },
    /// Something started earlier is still running; apply will only wait for it.
    InProgress { what: String },
    /// Cannot proceed without a human (for example a name taken by something else).
    Blocked { reason: String },
}

impl Change {
    /// True when apply would change (or wait on) live state. Destructures every variant's
    /// fields by name so a new field cannot be added without deciding here.
    pub fn has_changes(&self) -> bool {
        match self {
            Change::NoOp => false,
            Change::Create { fields: _ } => true,
            Change::Update { fields } => !fields.is_empty(),
            Change::Replace { fields: _ } => true,
            Change::InProgress { what: _ } => true,
            Change::Blocked { reason: _ } => true,
        }
    }

    /// True when apply must call the resource's mutating `apply`.
    pub fn needs_apply(&self) -> bool {
        match self {
            Change::NoOp => false,
            Change::Create { fields: _ } => true,
            Change::Update { fields } => !fields.is_empty(),
            Change::Replace { fields: _ } => true,
            Change::InProgress { what: _ } => false,
            Change::Blocked { reason: _ } => false,
        }
    }

    /// A change that cannot be known before the steps this node depends on have run, because
    /// their changes are what make its live state readable at all (the `security` step
    /// mapping snapferry on a domain whose security plugin refuses it until then). Shown as an
    /// update of one field, [`DEFERRED_PATH`], from `why` to `(known after apply)`; apply
    /// reads the node again at its turn and accepts whatever change it then finds.
    pub fn deferred(why: impl Into<String>) -> Change {
        Change::Update {
            fields: vec![FieldChange {
                path: DEFERRED_PATH.to_owned(),
                before: Some(FieldValue::Known(serde_json::Value::String(why.into()))),
                after: FieldValue::Unknown,
            }],
        }
    }

    /// Whether this is a [`Change::deferred`].
    pub fn is_deferred(&self) -> bool {
        matches!(self, Change::Update { fields } if fields.len() == 1
            && fields[0].path == DEFERRED_PATH
            && fields[0].after == FieldValue::Unknown)
    }

    /// A short verb for summaries: `no-op`, `create`, `update`, ...
    pub fn verb(&self) -> &'static str {
        match self {
            Change::NoOp => "no-op",
            Change::Create { .. } => "create",
            Change::Update { .. } => "update",
            Change::Replace { .. } => "replace",
            Change::InProgress { .. } => "wait",
            Change::Blocked { .. } => "blocked",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_values_are_redacted_in_display_and_serialization() {
        let secret = FieldValue::Sensitive(Some(serde_json::json!("hunter2")));
        assert_eq!(secret.to_string(), "(sensitive)");
        assert_eq!(format!("{secret:?}"), "(sensitive)");
        let json = serde_json::to_string(&secret).unwrap();
        assert_eq!(json, r#"{"sensitive":true}"#);
        let back: FieldValue = serde_json::from_str(&json).unwrap();
        assert!(back.is_redacted());
    }

    #[test]
    fn unknown_prints_known_after_apply() {
        assert_eq!(FieldValue::Unknown.to_string(), "(known after apply)");
    }

    #[test]
    fn empty_update_is_no_change() {
        assert!(!Change::Update { fields: vec![] }.has_changes());
        assert!(Change::InProgress { what: "x".into() }.has_changes());
        assert!(!Change::InProgress { what: "x".into() }.needs_apply());
    }
}
