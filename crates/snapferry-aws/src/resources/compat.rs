//! Per-index restore compatibility, checked while planning. An index can be restored only on a
//! version that reads the version that *created* it (`index.version.created`), not the version
//! of the domain it lives on now: one major version back, Elasticsearch 7 and OpenSearch 1 on
//! one footing (OpenSearch 2 reads indices created by Elasticsearch 7.x or OpenSearch 1.x, not
//! by 6.x, even on a domain since upgraded to 7.10). The server refuses such an index only when
//! the restore runs, after the target domain took half an hour to create; `plan` shows each one
//! with the fix instead.
//!
//! The target's version is the live target's when it exists, else the one the plan gives it,
//! else the source's (a target cloned from the source runs the source's version).

use std::collections::BTreeMap;

use snapferry_engine::{NodeId, ResourceError};
use snapferry_plan::{Engine, EngineVersion, RestoreNode, can_restore};

use super::{Env, fail, fail_domain};
use crate::opensearch::{self, OpenSearch, select_indices};

/// Set on an OpenSearch version id (`Version.MASK` in OpenSearch's `LegacyESVersion`), so the
/// ids of OpenSearch 1.x sort after every Elasticsearch one.
const OPENSEARCH_MASK: u32 = 0x0800_0000;

/// A server's numeric version id (`index.version.created`, a snapshot's `version_id`) as the
/// domain version it belongs to and its text (`6.8.0`).
pub(crate) fn decode(id: u32) -> (EngineVersion, String) {
    let (engine, raw) = if id & OPENSEARCH_MASK != 0 {
        (Engine::OpenSearch, id ^ OPENSEARCH_MASK)
    } else {
        (Engine::Elasticsearch, id)
    };
    let (major, minor, revision) = (raw / 1_000_000, (raw / 10_000) % 100, (raw / 100) % 100);
    (
        EngineVersion {
            engine,
            major,
            minor,
        },
        format!("{major}.{minor}.{revision}"),
    )
}

/// The running engine (`GET /`) as a domain version.
pub(crate) fn running(v: &opensearch::EngineVersion) -> Option<EngineVersion> {
    let mut parts = v.number.split('.').map(|p| p.parse::<u32>().ok());
    let (major, minor) = (parts.next()??, parts.next()??);
    let engine = if v.distribution.as_deref() == Some("opensearch") {
        Engine::OpenSearch
    } else {
        Engine::Elasticsearch
    };
    Some(EngineVersion {
        engine,
        major,
        minor,
    })
}

fn product(engine: Engine) -> &'static str {
    match engine {
        Engine::Elasticsearch => "Elasticsearch",
        Engine::OpenSearch => "OpenSearch",
    }
}

/// The oldest creating version `target` reads, in words.
fn oldest_readable(target: EngineVersion) -> &'static str {
    match (target.engine, target.major) {
        (Engine::OpenSearch, 1) | (Engine::Elasticsearch, 7) => "Elasticsearch 6.0",
        (Engine::OpenSearch, 2) => "Elasticsearch 7.0 or OpenSearch 1.0",
        (Engine::OpenSearch, _) => "OpenSearch 2.0",
        (Engine::Elasticsearch, 6) => "Elasticsearch 5.0",
        (Engine::Elasticsearch, _) => "the previous major version",
    }
}

/// The indices (with the version that created each) that `target` cannot read.
pub(crate) fn unreadable(
    created: &BTreeMap<String, u32>,
    target: EngineVersion,
) -> Vec<(String, String)> {
    created
        .iter()
        .filter_map(|(index, id)| {
            let (version, text) = decode(*id);
            (!can_restore(version, target))
                .then(|| (index.clone(), format!("{} {text}", product(version.engine))))
        })
        .collect()
}

/// Why the restore is blocked, one `!` line per index, with the fix.
pub(crate) fn reason(
    target_domain: &str,
    target: EngineVersion,
    found: &[(String, String)],
) -> String {
    let mut text = format!(
        "{} {} cannot be restored on domain {target_domain} ({target}), which reads only indices \
         created by {} or later:",
        found.len(),
        if found.len() == 1 { "index" } else { "indices" },
        oldest_readable(target),
    );
    for (index, created) in found {
        text.push_str(&format!("\n      ! {index}: created by {created}"));
    }
    let excluded: Vec<String> = found.iter().map(|(i, _)| format!("\"-{i}\"")).collect();
    text.push_str(&format!(
        "\n      Fix: reindex each into a new index on the source (a new index is created by \
         the source's current version, which must be one the target reads), or leave them \
         out: `snapshot.indices: [\"*\", {}]`",
        excluded.join(", ")
    ));
    text
}

/// The check of one restore: `Some(reason)` when an index the restore would bring cannot be
/// read by the target. `target` is the target's data plane when the domain exists.
pub(crate) async fn check(
    env: &Env,
    id: &NodeId,
    spec: &RestoreNode,
    target: Option<&OpenSearch>,
    snapshot_indices: &[String],
) -> Result<Option<String>, ResourceError> {
    let selected = select_indices(snapshot_indices, &spec.restore.indices);
    if selected.is_empty() {
        return Ok(None);
    }
    let Some(source) = env
        .data_plane(&spec.source)
        .await
        .map_err(|e| fail(id, e))?
    else {
        return Ok(None);
    };
    let what = format!("versions of the indices of {}", spec.source.name);
    let version = match target {
        Some(t) => running(&t.version().await.map_err(|e| fail_domain(id, &what, e))?),
        None => match spec.target.engine_version {
            Some(v) => Some(v),
            None => running(
                &source
                    .version()
                    .await
                    .map_err(|e| fail_domain(id, &what, e))?,
            ),
        },
    };
    let Some(version) = version else {
        return Ok(None);
    };
    let created = source
        .versions_created(&selected)
        .await
        .map_err(|e| fail_domain(id, &what, e))?;
    let found = unreadable(&created, version);
    Ok((!found.is_empty()).then(|| reason(&spec.target.name, version, &found)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> EngineVersion {
        s.parse().unwrap()
    }

    #[test]
    fn version_ids_decode_for_both_engines() {
        assert_eq!(decode(6_080_099), (v("Elasticsearch_6.8"), "6.8.0".into()));
        assert_eq!(
            decode(7_100_299),
            (v("Elasticsearch_7.10"), "7.10.2".into())
        );
        assert_eq!(decode(136_327_827), (v("OpenSearch_2.11"), "2.11.0".into()));
    }

    #[test]
    fn the_version_that_created_an_index_decides_not_the_domains() {
        let created = BTreeMap::from([
            ("from-six".to_owned(), 6_080_099),
            ("from-seven".to_owned(), 7_100_299),
            ("from-os1".to_owned(), 135_247_827),
        ]);
        // 135_247_827 is OpenSearch 1.3.0 (1_030_099 with the mask).
        assert_eq!(decode(135_247_827).0, v("OpenSearch_1.3"));
        assert_eq!(
            unreadable(&created, v("OpenSearch_2.11")),
            [("from-six".to_owned(), "Elasticsearch 6.8.0".to_owned())]
        );
        assert!(unreadable(&created, v("OpenSearch_1.3")).is_empty());
        let text = reason(
            "copy",
            v("OpenSearch_2.11"),
            &unreadable(&created, v("OpenSearch_2.11")),
        );
        assert_eq!(
            text,
            "1 index cannot be restored on domain copy (OpenSearch_2.11), which reads only \
             indices created by Elasticsearch 7.0 or OpenSearch 1.0 or later:\n      \
             ! from-six: created by Elasticsearch 6.8.0\n      Fix: reindex each into a new \
             index on the source (a new index is created by the source's current version, \
             which must be one the target reads), or leave them out: \
             `snapshot.indices: [\"*\", \"-from-six\"]`"
        );
    }
}
