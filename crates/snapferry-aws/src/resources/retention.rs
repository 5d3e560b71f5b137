//! `snapshot.keep: N`, carried out by the restore step once its restore is verified: snapferry's
//! own snapshots of the replication beyond the newest N are deleted from the repository.
//!
//! "Own" is what the state says, never a guess from a name: the restore records, in its
//! `snapshots` output, every snapshot it restored while the plan has `keep` (the one of this
//! run added once it is verified). A snapshot it did not restore — another operator's, an
//! automated `cs-` one, one taken before the plan had `keep`, one whose restore failed — is
//! never a candidate. The newest are decided by the
//! repository's own start times, the snapshot of this run being the newest. Snapshots are
//! deleted through the source domain's registration (the target's is read-only), one at a time,
//! each `DELETE` of one already gone counting as done, so a resumed run finishes the list.

use std::collections::BTreeSet;

use snapferry_engine::{NodeId, ResourceError};

use super::fail_domain;
use crate::opensearch::OpenSearch;

/// The snapshots to delete: of `own` (and `current`, the newest), those the repository holds
/// beyond the newest `keep`, oldest first.
pub(super) async fn beyond_keep(
    node: &NodeId,
    client: &OpenSearch,
    repository: &str,
    own: &BTreeSet<String>,
    current: &str,
    keep: u32,
) -> Result<Vec<String>, ResourceError> {
    let listed = match client.list_snapshots(repository).await {
        Ok(listed) => listed,
        // Not registered yet: nothing of ours is in it.
        Err(e) if e.error_type() == Some("repository_missing_exception") => return Ok(Vec::new()),
        Err(e) => {
            return Err(fail_domain(
                node,
                &format!("snapshots of repository {repository}"),
                e,
            ));
        }
    };
    let mut ours: Vec<(i64, String)> = listed
        .into_iter()
        .filter(|s| own.contains(&s.snapshot) || s.snapshot == current)
        .filter(|s| !is_automated(&s.snapshot))
        .map(|s| {
            let at = if s.snapshot == current {
                i64::MAX
            } else {
                s.start_time_in_millis.unwrap_or(0)
            };
            (at, s.snapshot)
        })
        .collect();
    // Not taken yet: it will be the newest, and counts as one of those kept.
    if !ours.iter().any(|(_, name)| name == current) {
        ours.push((i64::MAX, current.to_owned()));
    }
    ours.sort();
    let excess = ours.len().saturating_sub(keep as usize);
    Ok(ours
        .into_iter()
        .take(excess)
        .map(|(_, name)| name)
        .filter(|name| name != current)
        .collect())
}

/// Amazon OpenSearch Service's automated snapshots (and every `cs-` name it reserves).
fn is_automated(name: &str) -> bool {
    name.starts_with("cs-") || name.starts_with("automated")
}

/// Deletes `names` one by one; one already gone is done.
pub(super) async fn delete(
    node: &NodeId,
    client: &OpenSearch,
    repository: &str,
    names: &[String],
) -> Result<(), ResourceError> {
    for name in names {
        tracing::info!(snapshot = %name, "deleting a snapshot beyond snapshot.keep");
        client
            .delete_snapshot(repository, name)
            .await
            .map_err(|e| {
                fail_domain(
                    node,
                    &format!("deleting snapshot {name} of repository {repository} (snapshot.keep)"),
                    e,
                )
            })?;
    }
    Ok(())
}
