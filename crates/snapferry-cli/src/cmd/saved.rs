//! Saved plans: `plan -o FILE` records what was reviewed, `apply FILE` applies exactly that or
//! nothing. The file holds the plan file's path and fingerprint, the time templates were
//! resolved at, the names pinned while planning, and per node the proposed change with a digest
//! of the live state it was computed from. Applying re-plans at the same time and refuses, naming
//! what moved, if the plan file or any node's change or live state differs: a stale plan never
//! applies.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use miette::{IntoDiagnostic, WrapErr};
use serde::{Deserialize, Serialize};
use snapferry_engine::{Change, Plan as Proposal};

/// The format of saved plans this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// One node of a saved plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedNode {
    pub id: String,
    pub change: Change,
    /// Digest of the live state the change was computed from.
    pub observed: String,
}

/// A reviewed plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format_version: u32,
    pub tool_version: String,
    pub plan_name: String,
    /// The plan file, as given to `plan` (relative to where `plan` ran, or absolute).
    pub plan_file: PathBuf,
    pub plan_fingerprint: String,
    /// When templates were resolved; `apply` resolves them at the same time.
    pub resolved_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// The `--target` steps the plan was restricted to (empty: the whole plan).
    #[serde(default)]
    pub targets: Vec<String>,
    pub nodes: Vec<SavedNode>,
}

/// Kinds whose observed value moves on its own without meaning the plan is stale (document
/// counts of a live source): only their change is compared.
const VOLATILE_KINDS: &[&str] = &["verify"];

fn digest(kind: &str, observed: &snapferry_engine::Observed) -> String {
    if VOLATILE_KINDS.contains(&kind) {
        return String::new();
    }
    snapferry_plan::fingerprint(&serde_json::json!({
        "exists": observed.exists,
        "in_progress": observed.in_progress,
        "value": observed.value,
    }))
}

impl SavedPlan {
    pub fn new(
        proposal: &Proposal,
        plan_name: &str,
        plan_file: &Path,
        plan_fingerprint: &str,
        resolved_at: DateTime<Utc>,
    ) -> Self {
        SavedPlan {
            format_version: FORMAT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            plan_name: plan_name.to_owned(),
            plan_file: plan_file.to_owned(),
            plan_fingerprint: plan_fingerprint.to_owned(),
            resolved_at,
            created_at: Utc::now(),
            targets: Vec::new(),
            nodes: proposal
                .order
                .iter()
                .map(|id| {
                    let node = &proposal.nodes[id];
                    SavedNode {
                        id: id.to_string(),
                        change: node.change.clone(),
                        observed: digest(node.kind, &node.observed),
                    }
                })
                .collect(),
        }
    }

    /// Writes the saved plan, readable only by its owner (it describes the account's resources).
    pub fn write(&self, path: &Path) -> miette::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a saved plan is JSON");
        bytes.push(b'\n');
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        use std::io::Write as _;
        options
            .open(path)
            .and_then(|mut f| f.write_all(&bytes))
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot write the saved plan {}", path.display()))
    }

    pub fn read(path: &Path) -> miette::Result<SavedPlan> {
        let bytes = std::fs::read(path)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot read the saved plan {}", path.display()))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            miette::miette!(
                help = "make it again with `snapferry plan -o FILE`",
                "{} is not a saved plan: {e}",
                path.display()
            )
        })?;
        match value
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
        {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            other => {
                return Err(miette::miette!(
                    help = "make the plan again with this snapferry: `snapferry plan -o FILE`",
                    "{} has saved-plan format {}, this snapferry reads format {FORMAT_VERSION}",
                    path.display(),
                    other.map_or("(none)".to_owned(), |v| v.to_string())
                ));
            }
        }
        serde_json::from_value(value).map_err(|e| {
            miette::miette!(
                help = "make it again with `snapferry plan -o FILE`",
                "{} is not a saved plan: {e}",
                path.display()
            )
        })
    }

    /// What differs between this saved plan and a fresh one; empty when it may be applied.
    pub fn staleness(&self, fresh: &SavedPlan) -> Vec<String> {
        let mut moved = Vec::new();
        if self.plan_fingerprint != fresh.plan_fingerprint {
            moved.push(format!(
                "the plan file {} changed since the plan was saved",
                self.plan_file.display()
            ));
        }
        let old: std::collections::BTreeMap<&str, &SavedNode> =
            self.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
        let new: std::collections::BTreeMap<&str, &SavedNode> =
            fresh.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
        for (id, then) in &old {
            match new.get(id) {
                None => moved.push(format!("{id} is no longer in the plan")),
                Some(now) if now.change != then.change => moved.push(format!(
                    "{id}: the change is now `{}` (saved: `{}`)",
                    now.change.verb(),
                    then.change.verb()
                )),
                Some(now) if now.observed != then.observed => moved.push(format!(
                    "{id}: its live state changed since the plan was saved"
                )),
                Some(_) => {}
            }
        }
        for id in new.keys().filter(|id| !old.contains_key(*id)) {
            moved.push(format!("{id} is new in the plan"));
        }
        moved
    }
}
