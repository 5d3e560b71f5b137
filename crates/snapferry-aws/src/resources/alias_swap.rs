//! `restore.strategy: alias_swap`: a refresh with no downtime. Each selected index is restored
//! as a new *generation* `<source index>~<snapshot>` (one `_restore` request for all of them,
//! `rename_pattern` `^(.+)$` → `$1~<snapshot>`), waited for, its document count checked against
//! the snapshot's bracket, and then every alias is pointed at its new generation in *one*
//! `POST _aliases`: `remove_index` of the previous generation (or of a plain index of the
//! alias's name — the first refresh migrates it, only with `on_conflict: replace`) and `add`
//! of the alias. A reader querying the alias sees the old generation or the new one, whole.
//!
//! What the alias points to is read from `GET _alias`; only an index this node recorded as the
//! alias's generation (`generations` output) or the plain index of the alias's name is ever
//! removed. Anything else behind the alias blocks the step, naming it.
//!
//! Skipping unchanged indices (`skip_unchanged`, default with `alias_swap`): the generation the
//! alias holds stays when the snapshot *proves* the index unchanged since it was restored: the
//! snapshot copied no file for it (`_status` `incremental.file_count` 0; files are kept per
//! index UUID, so a recreated index is copied whole), it references as many files and bytes as
//! the held generation's snapshot did, and the source's count before and after the snapshot
//! equals the held generation's verified count. Anything less restores it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::opensearch::{Aliases, CatIndex, FileStats, Recovery, ShardRecovery};

/// The separator between an index's name and the snapshot in a generation's name (`~` is
/// allowed in index names and appears in no snapshot name snapferry makes).
pub(super) const SEPARATOR: char = '~';

/// The generation of `source` restored from `snapshot`.
pub(super) fn generation(source: &str, snapshot: &str) -> String {
    format!("{source}{SEPARATOR}{snapshot}")
}

/// The `_restore` rename that gives every restored index its generation name.
pub(super) fn rename(snapshot: &str) -> (String, String) {
    ("^(.+)$".to_owned(), format!("$1{SEPARATOR}{snapshot}"))
}

/// What the node recorded for an alias's generation (`generations` output).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Held {
    pub generation: String,
    pub snapshot: String,
    /// Files and bytes the snapshot referenced for the index.
    pub total: FileStats,
    /// The generation's verified document count.
    pub documents: Option<u64>,
}

/// One alias and its generations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Slot {
    pub source: String,
    pub alias: String,
    /// The generation of this snapshot.
    pub generation: String,
    /// The indices the alias points to now.
    pub current: Vec<String>,
    /// A plain index has the alias's name.
    pub plain: bool,
    pub exists: bool,
    /// Its primaries came from this snapshot (or its uuid is the one recorded).
    pub from_this_snapshot: bool,
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// The held generation stays: the snapshot proves the index unchanged.
    pub unchanged: bool,
    /// Indices behind the alias that snapferry did not restore.
    pub foreign: Vec<String>,
}

impl Slot {
    /// The alias points at this snapshot's generation alone.
    pub fn swapped(&self) -> bool {
        self.exists && self.current == [self.generation.clone()]
    }

    /// Nothing left to do for this alias.
    pub fn settled(&self) -> bool {
        self.swapped() || self.unchanged
    }

    /// How the alias looks now, for the plan.
    pub fn before(&self) -> Option<String> {
        if self.plain {
            Some(format!("index {}", self.alias))
        } else if self.current.is_empty() {
            None
        } else {
            Some(format!("alias → {}", self.current.join(", ")))
        }
    }

    /// How it will look, for the plan.
    pub fn after(&self) -> String {
        let mut text = format!(
            "alias → {} (restored from {})",
            self.generation, self.source
        );
        let removed: Vec<&str> = self
            .current
            .iter()
            .map(String::as_str)
            .chain(self.plain.then_some(self.alias.as_str()))
            .filter(|i| *i != self.generation)
            .collect();
        if !removed.is_empty() {
            text.push_str(&format!("; {} removed in the swap", removed.join(", ")));
        }
        text
    }
}

/// The target as `alias_swap` sees it for one snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct SwapSurvey {
    pub snapshot: String,
    pub slots: Vec<Slot>,
}

impl SwapSurvey {
    pub fn settled(&self) -> bool {
        self.slots.iter().all(Slot::settled)
    }

    /// Generations recovering from this snapshot, none still to request.
    pub fn recovering(&self) -> bool {
        let open: Vec<&Slot> = self.slots.iter().filter(|s| !s.settled()).collect();
        open.iter().any(|s| s.exists && !s.done) && open.iter().all(|s| s.exists)
    }

    /// Why the step cannot go on, if it cannot.
    pub fn blocked(&self, replace: bool, skip: bool, domain: &str) -> Option<String> {
        let mut reasons = Vec::new();
        for s in self.slots.iter().filter(|s| !s.settled()) {
            if !s.foreign.is_empty() {
                reasons.push(format!(
                    "alias {} points at {}, which snapferry did not restore; remove the alias \
                     from {} (POST _aliases) so the swap can take it",
                    s.alias,
                    s.foreign.join(", "),
                    if s.foreign.len() == 1 { "it" } else { "them" }
                ));
            }
            if s.exists && !s.from_this_snapshot {
                reasons.push(format!(
                    "index {} exists on domain {domain} but was not restored from snapshot {}; \
                     delete it or rename it",
                    s.generation, self.snapshot
                ));
            }
            if s.plain && !replace && !skip {
                reasons.push(format!(
                    "index {} is a plain index on domain {domain}: the first alias_swap refresh \
                     migrates it (removes it as alias {} takes its name, in one atomic call); \
                     set `restore.on_conflict: replace` to allow that, or `skip` to leave it",
                    s.alias, s.alias
                ));
            }
        }
        for s in &self.slots {
            if s.source.starts_with(".ds-") {
                reasons.push(format!(
                    "index {} backs a data stream, which cannot be put behind an alias; \
                     exclude it from `restore.indices` (`-.ds-*`) or use `strategy: in_place`",
                    s.source
                ));
            }
        }
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }

    /// Slots left aside: a plain index in the way with `on_conflict: skip`.
    pub fn skipped(&self, skip: bool) -> BTreeSet<String> {
        self.slots
            .iter()
            .filter(|s| skip && s.plain && !s.settled())
            .map(|s| s.alias.clone())
            .collect()
    }
}

/// Whether each shard list says the index's primaries came from `repository:snapshot`, and
/// whether they are done (see `restore.rs`).
pub(super) type PrimaryCheck<'a> = &'a dyn Fn(&[ShardRecovery], Option<u64>) -> (bool, bool);

/// Builds the survey from what was read.
#[allow(clippy::too_many_arguments)]
pub(super) fn survey(
    snapshot: &str,
    selected: &[(String, String)],
    rows: &[CatIndex],
    aliases: &BTreeMap<String, Aliases>,
    recovery: &Recovery,
    recorded_uuids: &BTreeMap<String, String>,
    held: &BTreeMap<String, Held>,
    unchanged: &dyn Fn(&str, &Held) -> bool,
    primaries: PrimaryCheck<'_>,
) -> SwapSurvey {
    let mut slots = Vec::new();
    for (source, alias) in selected {
        let generation = generation(source, snapshot);
        let row = rows.iter().find(|r| r.index == generation);
        let current: Vec<String> = aliases
            .iter()
            .filter(|(_, a)| a.contains_key(alias))
            .map(|(index, _)| index.clone())
            .collect();
        let plain = rows.iter().any(|r| &r.index == alias);
        let uuid = row.and_then(|r| r.uuid.clone());
        let recorded = uuid
            .as_ref()
            .is_some_and(|u| recorded_uuids.get(&generation) == Some(u));
        let (from, done) = match row {
            Some(r) => {
                let shards = recovery.get(&generation).cloned().unwrap_or_default();
                let (from, done) =
                    primaries(&shards, r.pri.as_deref().and_then(|p| p.parse().ok()));
                (recorded || from, recorded || done)
            }
            None => (false, false),
        };
        let held_here = held
            .get(alias)
            .filter(|h| current == [h.generation.clone()]);
        let is_unchanged = !plain
            && row.is_none()
            && held_here.is_some_and(|h| h.snapshot != snapshot && unchanged(source, h));
        let ours: BTreeSet<&str> = held
            .get(alias)
            .map(|h| h.generation.as_str())
            .into_iter()
            .chain(std::iter::once(generation.as_str()))
            .collect();
        let foreign = current
            .iter()
            .filter(|i| !ours.contains(i.as_str()))
            .cloned()
            .collect();
        slots.push(Slot {
            source: source.clone(),
            alias: alias.clone(),
            generation,
            current,
            plain,
            exists: row.is_some(),
            from_this_snapshot: from,
            done,
            uuid,
            unchanged: is_unchanged,
            foreign,
        });
    }
    SwapSurvey {
        snapshot: snapshot.to_owned(),
        slots,
    }
}

/// The one atomic `_aliases` request that swaps every open slot: every `remove_index` first
/// (OpenSearch applies them before the alias actions anyway), then every `add` — the slot's
/// alias, and the aliases the source index carries (generations are restored without theirs,
/// so an alias of the source never points at two generations at once).
pub(super) fn actions(
    survey: &SwapSurvey,
    skipped: &BTreeSet<String>,
    source_aliases: &BTreeMap<String, Aliases>,
) -> Vec<Value> {
    let open: Vec<&Slot> = survey
        .slots
        .iter()
        .filter(|s| !s.settled() && !skipped.contains(&s.alias))
        .collect();
    let mut removes = Vec::new();
    let mut adds = Vec::new();
    for s in open {
        for old in s.current.iter().filter(|i| **i != s.generation) {
            removes.push(json!({"remove_index": {"index": old}}));
        }
        if s.plain {
            removes.push(json!({"remove_index": {"index": s.alias}}));
        }
        adds.push(json!({"add": {"index": s.generation, "alias": s.alias}}));
        for (name, props) in source_aliases.get(&s.source).into_iter().flatten() {
            let mut add = props.clone();
            add.insert("index".into(), json!(s.generation));
            add.insert("alias".into(), json!(name));
            adds.push(json!({ "add": add }));
        }
    }
    removes.extend(adds);
    removes
}
