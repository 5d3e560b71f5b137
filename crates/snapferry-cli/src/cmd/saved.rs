//! Saved plans: `plan -o FILE` records what was reviewed, `apply FILE` applies exactly that or
//! nothing. The file holds the plan file's path, the time templates were resolved at, the
//! `--target`s, and the proposal itself (the engine's serialized [`Proposal`]: per node the
//! change, the live state it was computed from, the pinned names). Applying plans again at the
//! same time and refuses, naming what moved field by field, if the plan file or any node's
//! change moved (the engine's staleness rules: moving forward is fine); then it executes the
//! saved proposal, which the executor checks again node by node. A stale plan never applies.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use miette::{IntoDiagnostic, WrapErr};
use serde::{Deserialize, Serialize};
use snapferry_engine::{Proposal, Staleness};

/// The format of saved plans this build writes and reads (1 held digests instead of the
/// proposal).
pub const FORMAT_VERSION: u32 = 2;

/// A reviewed plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format_version: u32,
    pub tool_version: String,
    pub plan_name: String,
    /// The plan file, as given to `plan` (relative to where `plan` ran, or absolute).
    pub plan_file: PathBuf,
    /// When templates were resolved; `apply` resolves them at the same time.
    pub resolved_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// The `--target` steps the plan was restricted to (empty: the whole plan).
    #[serde(default)]
    pub targets: Vec<String>,
    /// What was reviewed, and what `apply FILE` executes.
    pub proposal: Proposal,
}

impl SavedPlan {
    pub fn new(
        proposal: &Proposal,
        plan_name: &str,
        plan_file: &Path,
        resolved_at: DateTime<Utc>,
    ) -> Self {
        SavedPlan {
            format_version: FORMAT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            plan_name: plan_name.to_owned(),
            plan_file: plan_file.to_owned(),
            resolved_at,
            created_at: Utc::now(),
            targets: Vec::new(),
            proposal: proposal.clone(),
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

    /// What moved between this saved plan and a `fresh` proposal made now, one line each;
    /// empty when it may be applied.
    pub fn staleness(&self, fresh: &Proposal) -> Vec<String> {
        self.proposal
            .stale_against(fresh)
            .into_iter()
            .map(|moved| match moved {
                Staleness::PlanChanged => format!(
                    "the plan file {} changed since the plan was saved",
                    self.plan_file.display()
                ),
                other => other.to_string(),
            })
            .collect()
    }
}
