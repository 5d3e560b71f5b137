//! Strict REST parameters, per engine version. Since Elasticsearch 5.0 the server refuses any query
//! parameter its handler did not read: 400 `illegal_argument_exception`, "request [/_cat/indices]
//! contains unrecognized parameter: [expand_wildcards]" (`BaseRestHandler#unrecognized`, with a
//! "did you mean" list of the close candidates). So a client that works against 7.10 can fail
//! against 6.8 on a parameter alone, and the sandbox must refuse exactly what each version refuses.
//!
//! The OpenSearch lists are the vendored OpenSearch API specification's (a unit test below checks
//! every operation against `tests/it/spec`, version by version). The Elasticsearch lists are the
//! ones OpenSearch forked with (Elasticsearch 7.10 OSS), less the parameters OpenSearch added
//! ([`OPENSEARCH_ONLY`]), less the ones that appeared in Elasticsearch after the domain's version
//! ([`ES_ADDED`]), plus the ones later removed ([`ES_REMOVED`]).

use super::version::Engine;
use crate::http::{Resp, os_error};

/// Read by the REST layer itself on every request (`AbstractRestChannel`, `RestController`).
const GLOBAL: &[&str] = &[
    "error_trace",
    "filter_path",
    "format",
    "human",
    "pretty",
    "source",
    "source_content_type",
];

const CM: &str = "cluster_manager_timeout";
const MT: &str = "master_timeout";

/// Per sandbox operation (the request log's name): the specification's operation group and the
/// query parameters OpenSearch's handler reads.
pub const OPENSEARCH: &[(&str, &str, &[&str])] = &[
    ("Info", "info", &[]),
    (
        "ClusterHealth",
        "cluster.health",
        &[
            "awareness_attribute",
            CM,
            "expand_wildcards",
            "level",
            "local",
            MT,
            "timeout",
            "wait_for_active_shards",
            "wait_for_events",
            "wait_for_no_initializing_shards",
            "wait_for_no_relocating_shards",
            "wait_for_nodes",
            "wait_for_status",
        ],
    ),
    (
        "CatIndices",
        "cat.indices",
        &[
            "bytes",
            CM,
            "expand_wildcards",
            "format",
            "h",
            "health",
            "help",
            "include_unloaded_segments",
            "local",
            MT,
            "pri",
            "s",
            "time",
            "v",
        ],
    ),
    ("Recovery", "indices.recovery", &["active_only", "detailed"]),
    (
        "Bulk",
        "bulk",
        &[
            "_source",
            "_source_excludes",
            "_source_includes",
            "index",
            "pipeline",
            "refresh",
            "require_alias",
            "routing",
            "timeout",
            "type",
            "wait_for_active_shards",
        ],
    ),
    (
        "Count",
        "count",
        &[
            "allow_no_indices",
            "analyze_wildcard",
            "analyzer",
            "default_operator",
            "df",
            "expand_wildcards",
            "ignore_throttled",
            "ignore_unavailable",
            "lenient",
            "min_score",
            "preference",
            "q",
            "routing",
            "terminate_after",
        ],
    ),
    (
        "Search",
        "search",
        &[
            "_source",
            "_source_excludes",
            "_source_includes",
            "allow_no_indices",
            "allow_partial_search_results",
            "analyze_wildcard",
            "analyzer",
            "batched_reduce_size",
            "cancel_after_time_interval",
            "ccs_minimize_roundtrips",
            "default_operator",
            "df",
            "docvalue_fields",
            "expand_wildcards",
            "explain",
            "from",
            "ignore_throttled",
            "ignore_unavailable",
            "include_named_queries_score",
            "index",
            "lenient",
            "max_concurrent_shard_requests",
            "phase_took",
            "pre_filter_shard_size",
            "preference",
            "q",
            "request_cache",
            "rest_total_hits_as_int",
            "routing",
            "scroll",
            "search_pipeline",
            "search_type",
            "seq_no_primary_term",
            "size",
            "sort",
            "stats",
            "stored_fields",
            "suggest_field",
            "suggest_mode",
            "suggest_size",
            "suggest_text",
            "terminate_after",
            "timeout",
            "track_scores",
            "track_total_hits",
            "typed_keys",
            "verbose_pipeline",
            "version",
        ],
    ),
    (
        "Refresh",
        "indices.refresh",
        &["allow_no_indices", "expand_wildcards", "ignore_unavailable"],
    ),
    (
        "IndexDocument",
        "index",
        &[
            "if_primary_term",
            "if_seq_no",
            "op_type",
            "pipeline",
            "refresh",
            "require_alias",
            "routing",
            "timeout",
            "version",
            "version_type",
            "wait_for_active_shards",
        ],
    ),
    (
        "GetRepository",
        "snapshot.get_repository",
        &[CM, "local", MT],
    ),
    (
        "RunningSnapshotStatus",
        "snapshot.status",
        &[CM, "ignore_unavailable", MT],
    ),
    (
        "SnapshotStatus",
        "snapshot.status",
        &[CM, "ignore_unavailable", MT],
    ),
    (
        "UpdateAliases",
        "indices.update_aliases",
        &[CM, MT, "timeout"],
    ),
    (
        "PutRepository",
        "snapshot.create_repository",
        &[CM, MT, "timeout", "verify"],
    ),
    (
        "DeleteRepository",
        "snapshot.delete_repository",
        &[CM, MT, "timeout"],
    ),
    (
        "VerifyRepository",
        "snapshot.verify_repository",
        &[CM, MT, "timeout"],
    ),
    (
        "CreateSnapshot",
        "snapshot.create",
        &[CM, MT, "wait_for_completion"],
    ),
    (
        "GetSnapshot",
        "snapshot.get",
        &[CM, "ignore_unavailable", MT, "verbose"],
    ),
    ("DeleteSnapshot", "snapshot.delete", &[CM, MT]),
    (
        "RestoreSnapshot",
        "snapshot.restore",
        &[CM, MT, "wait_for_completion"],
    ),
    (
        "CreateIndex",
        "indices.create",
        &[CM, MT, "timeout", "wait_for_active_shards"],
    ),
    (
        "DeleteIndex",
        "indices.delete",
        &[
            "allow_no_indices",
            CM,
            "expand_wildcards",
            "ignore_unavailable",
            MT,
            "timeout",
        ],
    ),
    (
        "IndexExists",
        "indices.exists",
        &[
            "allow_no_indices",
            CM,
            "expand_wildcards",
            "flat_settings",
            "ignore_unavailable",
            "include_defaults",
            "local",
        ],
    ),
    (
        "GetIndex",
        "indices.get",
        &[
            "allow_no_indices",
            CM,
            "expand_wildcards",
            "flat_settings",
            "ignore_unavailable",
            "include_defaults",
            "local",
            MT,
        ],
    ),
    (
        "GetSettings",
        "indices.get_settings",
        &[
            "allow_no_indices",
            CM,
            "expand_wildcards",
            "flat_settings",
            "ignore_unavailable",
            "include_defaults",
            "local",
            MT,
        ],
    ),
    (
        "CloseIndex",
        "indices.close",
        &[
            "allow_no_indices",
            CM,
            "expand_wildcards",
            "ignore_unavailable",
            MT,
            "timeout",
            "wait_for_active_shards",
        ],
    ),
    (
        "OpenIndex",
        "indices.open",
        &[
            "allow_no_indices",
            CM,
            "expand_wildcards",
            "ignore_unavailable",
            MT,
            "task_execution_timeout",
            "timeout",
            "wait_for_active_shards",
            "wait_for_completion",
        ],
    ),
    (
        "AllocationExplain",
        "cluster.allocation_explain",
        &["include_disk_info", "include_yes_decisions"],
    ),
    ("GetDataStream", "indices.get_data_stream", &[]),
    // Templates, data streams, ingest, scripts, aliases and ISM (issue #17).
    (
        "PutIndexTemplate",
        "indices.put_index_template",
        &["cause", CM, "create", MT],
    ),
    (
        "GetIndexTemplate",
        "indices.get_index_template",
        &[CM, "flat_settings", "local", MT],
    ),
    (
        "IndexTemplateExists",
        "indices.exists_index_template",
        &[CM, "flat_settings", "local", MT],
    ),
    (
        "DeleteIndexTemplate",
        "indices.delete_index_template",
        &[CM, MT, "timeout"],
    ),
    (
        "PutComponentTemplate",
        "cluster.put_component_template",
        &[CM, "create", MT, "timeout"],
    ),
    (
        "GetComponentTemplate",
        "cluster.get_component_template",
        &[CM, "flat_settings", "local", MT],
    ),
    (
        "ComponentTemplateExists",
        "cluster.exists_component_template",
        &[CM, "local", MT],
    ),
    (
        "DeleteComponentTemplate",
        "cluster.delete_component_template",
        &[CM, MT, "timeout"],
    ),
    (
        "PutLegacyTemplate",
        "indices.put_template",
        &[CM, "create", MT, "order"],
    ),
    (
        "GetLegacyTemplate",
        "indices.get_template",
        &[CM, "flat_settings", "local", MT],
    ),
    (
        "LegacyTemplateExists",
        "indices.exists_template",
        &[CM, "flat_settings", "local", MT],
    ),
    (
        "DeleteLegacyTemplate",
        "indices.delete_template",
        &[CM, MT, "timeout"],
    ),
    ("CreateDataStream", "indices.create_data_stream", &[]),
    ("DeleteDataStream", "indices.delete_data_stream", &[]),
    (
        "Rollover",
        "indices.rollover",
        &[CM, "dry_run", MT, "timeout", "wait_for_active_shards"],
    ),
    ("PutPipeline", "ingest.put_pipeline", &[CM, MT, "timeout"]),
    ("GetPipeline", "ingest.get_pipeline", &[CM, MT]),
    (
        "DeletePipeline",
        "ingest.delete_pipeline",
        &[CM, MT, "timeout"],
    ),
    ("SimulatePipeline", "ingest.simulate", &["verbose"]),
    ("PutScript", "put_script", &[CM, "context", MT, "timeout"]),
    ("GetScript", "get_script", &[CM, MT]),
    ("DeleteScript", "delete_script", &[CM, MT, "timeout"]),
    ("RenderTemplate", "render_search_template", &[]),
    (
        "SearchTemplate",
        "search_template",
        &[
            "allow_no_indices",
            "ccs_minimize_roundtrips",
            "expand_wildcards",
            "explain",
            "ignore_throttled",
            "ignore_unavailable",
            "phase_took",
            "preference",
            "profile",
            "rest_total_hits_as_int",
            "routing",
            "scroll",
            "search_pipeline",
            "search_type",
            "typed_keys",
        ],
    ),
    (
        "ClusterState",
        "cluster.state",
        &[
            "allow_no_indices",
            CM,
            "expand_wildcards",
            "flat_settings",
            "ignore_unavailable",
            "local",
            MT,
            "wait_for_metadata_version",
            "wait_for_timeout",
        ],
    ),
    (
        "GetAlias",
        "indices.get_alias",
        &[
            "allow_no_indices",
            "expand_wildcards",
            "ignore_unavailable",
            "local",
        ],
    ),
    (
        "AliasExists",
        "indices.exists_alias",
        &[
            "allow_no_indices",
            "expand_wildcards",
            "ignore_unavailable",
            "local",
        ],
    ),
    ("PutAlias", "indices.put_alias", &[CM, MT, "timeout"]),
    ("DeleteAlias", "indices.delete_alias", &[CM, MT, "timeout"]),
    (
        "CreateDocument",
        "create",
        &[
            "pipeline",
            "refresh",
            "routing",
            "timeout",
            "version",
            "version_type",
            "wait_for_active_shards",
        ],
    ),
    (
        "IsmPutPolicy",
        "ism.put_policy",
        &["if_primary_term", "if_seq_no"],
    ),
    (
        "IsmPutPolicies",
        "ism.put_policies",
        &["if_primary_term", "if_seq_no", "policyID"],
    ),
    (
        "MultiSearch",
        "msearch",
        &[
            "allow_partial_results",
            "ccs_minimize_roundtrips",
            "max_concurrent_searches",
            "max_concurrent_shard_requests",
            "pre_filter_shard_size",
            "rest_total_hits_as_int",
            "search_type",
            "typed_keys",
        ],
    ),
    ("IsmGetPolicy", "ism.get_policy", &[]),
    (
        "IsmGetPolicies",
        "ism.get_policies",
        &["from", "queryString", "size", "sortField", "sortOrder"],
    ),
    ("IsmDeletePolicy", "ism.delete_policy", &[]),
    ("IsmAddPolicy", "ism.add_policy", &["index"]),
    ("IsmRemovePolicy", "ism.remove_policy", &["index"]),
    ("IsmChangePolicy", "ism.change_policy", &["index"]),
    ("IsmExplain", "ism.explain_policy", &[]),
];

/// Parameters a plugin's REST handler reads that the vendored specification does not list: the
/// index-management plugin pages its policy list (`RestGetPolicyAction`; Dashboards' Index
/// Management page sends all five), 20 policies a page unless `size` says otherwise.
#[cfg(test)]
pub const NOT_IN_SPEC: &[(&str, &[&str])] = &[(
    "IsmGetPolicies",
    &["from", "queryString", "size", "sortField", "sortOrder"],
)];

/// Parameters OpenSearch added after the fork, with the first OpenSearch version that reads them
/// (`*` is every operation). Elasticsearch never accepts them.
pub const OPENSEARCH_ONLY: &[(&str, &str, (u32, u32))] = &[
    ("*", CM, (2, 0)),
    ("ClusterHealth", "awareness_attribute", (1, 0)),
    ("Search", "cancel_after_time_interval", (1, 0)),
    ("Search", "phase_took", (1, 0)),
    ("Search", "search_pipeline", (1, 0)),
    ("Search", "include_named_queries_score", (1, 0)),
    ("Search", "verbose_pipeline", (3, 0)),
    ("OpenIndex", "task_execution_timeout", (1, 0)),
    ("OpenIndex", "wait_for_completion", (2, 7)),
    ("SearchTemplate", "phase_took", (1, 0)),
    ("SearchTemplate", "search_pipeline", (1, 0)),
];

/// Parameters that appeared in Elasticsearch after 5.0, with the first version that reads them.
/// `_cat/indices?expand_wildcards` is elastic/elasticsearch#53248 (7.7).
pub const ES_ADDED: &[(&str, &str, (u32, u32))] = &[
    ("CatIndices", "expand_wildcards", (7, 7)),
    ("CatIndices", "include_unloaded_segments", (7, 0)),
    ("ClusterHealth", "expand_wildcards", (7, 2)),
    ("ClusterHealth", "wait_for_no_initializing_shards", (6, 2)),
    ("CloseIndex", "wait_for_active_shards", (7, 2)),
    ("GetSnapshot", "verbose", (5, 5)),
    ("Search", "batched_reduce_size", (5, 4)),
    ("Search", "max_concurrent_shard_requests", (5, 6)),
    ("Search", "pre_filter_shard_size", (5, 6)),
    ("Search", "track_total_hits", (6, 0)),
    ("Search", "allow_partial_search_results", (6, 3)),
    ("Search", "ignore_throttled", (6, 6)),
    ("Search", "rest_total_hits_as_int", (6, 6)),
    ("Search", "_source_excludes", (6, 6)),
    ("Search", "_source_includes", (6, 6)),
    ("Search", "seq_no_primary_term", (6, 7)),
    ("Search", "ccs_minimize_roundtrips", (7, 0)),
    ("MultiSearch", "rest_total_hits_as_int", (6, 6)),
    ("MultiSearch", "ccs_minimize_roundtrips", (7, 0)),
    ("Count", "ignore_throttled", (6, 6)),
    ("Bulk", "_source_excludes", (6, 6)),
    ("Bulk", "_source_includes", (6, 6)),
    ("Bulk", "require_alias", (7, 10)),
    ("IndexDocument", "if_primary_term", (6, 6)),
    ("IndexDocument", "if_seq_no", (6, 6)),
    ("IndexDocument", "require_alias", (7, 10)),
    ("SearchTemplate", "ccs_minimize_roundtrips", (7, 0)),
    ("SearchTemplate", "ignore_throttled", (6, 6)),
    ("SearchTemplate", "rest_total_hits_as_int", (6, 6)),
    ("PutIndexTemplate", "cause", (7, 8)),
];

/// (operation, parameter, from, until, until is an OpenSearch version).
pub type Removed = (&'static str, &'static str, (u32, u32), (u32, u32), bool);

/// Parameters that existed and were later removed: (operation, parameter, first Elasticsearch
/// version, first version without it — Elasticsearch, or OpenSearch when `true`).
pub const ES_REMOVED: &[Removed] = &[
    ("CreateIndex", "include_type_name", (6, 7), (2, 0), true),
    ("GetIndex", "include_type_name", (6, 7), (2, 0), true),
    (
        "PutLegacyTemplate",
        "include_type_name",
        (6, 7),
        (2, 0),
        true,
    ),
    ("Search", "_source_exclude", (5, 0), (7, 0), false),
    ("Search", "_source_include", (5, 0), (7, 0), false),
    ("Bulk", "_source_exclude", (5, 0), (7, 0), false),
    ("Bulk", "_source_include", (5, 0), (7, 0), false),
];

/// The query parameters `operation` accepts on `engine`, global ones included; `None` for an
/// operation the sandbox does not know (those are refused by the router anyway).
pub fn accepted(engine: &Engine, operation: &str) -> Option<Vec<&'static str>> {
    let (_, _, own) = OPENSEARCH.iter().find(|(op, _, _)| *op == operation)?;
    let applies = |op: &str| op == "*" || op == operation;
    let mut out: Vec<&'static str> = GLOBAL.to_vec();
    for &p in own.iter() {
        let os_only = OPENSEARCH_ONLY
            .iter()
            .find(|(op, name, _)| applies(op) && *name == p);
        let keep = match os_only {
            Some((_, _, (major, minor))) => engine.at_least_os(*major, *minor),
            None if engine.is_opensearch() => true,
            None => ES_ADDED
                .iter()
                .find(|(op, name, _)| *op == operation && *name == p)
                .is_none_or(|(_, _, (major, minor))| engine.at_least_es(*major, *minor)),
        };
        if keep {
            out.push(p);
        }
    }
    for (op, name, from, until, until_os) in ES_REMOVED {
        if *op != operation {
            continue;
        }
        let from_ok = engine.at_least_es(from.0, from.1);
        let before_removal = if *until_os {
            !engine.at_least_os(until.0, until.1)
        } else {
            !engine.at_least_es(until.0, until.1)
        };
        if from_ok && before_removal {
            out.push(name);
        }
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// Lucene's `LevenshteinDistance`: 1 minus the edit distance over the longer length.
fn similarity(a: &str, b: &str) -> f32 {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.is_empty() || b.is_empty() {
        return if a == b { 1.0 } else { 0.0 };
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j + 1] + 1).min(cur[j] + 1).min(prev[j] + cost);
        }
        prev = cur;
    }
    1.0 - prev[b.len()] as f32 / a.len().max(b.len()) as f32
}

/// `BaseRestHandler#unrecognized`: each unknown name (sorted), with the candidates more than half
/// similar, most similar first.
pub fn unrecognized(path: &str, invalid: &[String], candidates: &[&str]) -> String {
    let mut message = format!(
        "request [{path}] contains unrecognized parameter{}: ",
        if invalid.len() > 1 { "s" } else { "" }
    );
    for (n, name) in invalid.iter().enumerate() {
        let mut scored: Vec<(f32, &str)> = candidates
            .iter()
            .map(|c| (similarity(name, c), *c))
            .filter(|(s, _)| *s > 0.5)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        if n > 0 {
            message.push_str(", ");
        }
        message.push_str(&format!("[{name}]"));
        match scored.as_slice() {
            [] => {}
            [(_, one)] => message.push_str(&format!(" -> did you mean [{one}]?")),
            many => {
                let names: Vec<&str> = many.iter().map(|(_, c)| *c).collect();
                message.push_str(&format!(" -> did you mean any of [{}]?", names.join(", ")));
            }
        }
    }
    message
}

/// Refuses a request carrying a parameter its handler does not read, as the server does.
pub fn check<'a>(
    engine: &Engine,
    operation: &str,
    path: &str,
    names: impl Iterator<Item = &'a String>,
) -> Result<(), Resp> {
    let Some(accepted) = accepted(engine, operation) else {
        return Ok(());
    };
    let mut invalid: Vec<String> = names
        .filter(|n| !accepted.contains(&n.as_str()))
        .cloned()
        .collect();
    if invalid.is_empty() {
        return Ok(());
    }
    invalid.sort();
    invalid.dedup();
    Err(os_error(
        400,
        "illegal_argument_exception",
        &unrecognized(path, &invalid, &accepted),
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    use serde_json::Value;

    use super::*;

    fn v(s: &str) -> Engine {
        Engine::parse(s).unwrap()
    }

    #[test]
    fn cat_indices_takes_expand_wildcards_from_7_7() {
        for (engine, ok) in [
            ("Elasticsearch_5.6", false),
            ("Elasticsearch_6.8", false),
            ("Elasticsearch_7.1", false),
            ("Elasticsearch_7.7", true),
            ("Elasticsearch_7.10", true),
            ("OpenSearch_1.3", true),
            ("OpenSearch_2.11", true),
        ] {
            let list = accepted(&v(engine), "CatIndices").unwrap();
            assert_eq!(list.contains(&"expand_wildcards"), ok, "{engine}");
        }
        assert!(
            !accepted(&v("OpenSearch_1.3"), "CatIndices")
                .unwrap()
                .contains(&CM)
        );
        assert!(
            accepted(&v("OpenSearch_2.11"), "CatIndices")
                .unwrap()
                .contains(&CM)
        );
        assert!(
            !accepted(&v("Elasticsearch_7.10"), "CatIndices")
                .unwrap()
                .contains(&CM)
        );
    }

    #[test]
    fn the_message_is_the_servers() {
        assert_eq!(
            unrecognized(
                "/_cat/indices",
                &["expand_wildcards".into()],
                &["format", "h"]
            ),
            "request [/_cat/indices] contains unrecognized parameter: [expand_wildcards]"
        );
        assert_eq!(
            unrecognized(
                "/_snapshot/r/s",
                &["wait_for_completio".into(), "zzz".into()],
                &["wait_for_completion", "master_timeout"]
            ),
            "request [/_snapshot/r/s] contains unrecognized parameters: [wait_for_completio] -> did you mean [wait_for_completion]?, [zzz]"
        );
    }

    /// The vendored specification's query parameters of one operation group, for one OpenSearch
    /// version (`x-version-added` / `x-version-removed` honoured), plus its global parameters.
    fn spec_params(group: &str, version: (u32, u32)) -> BTreeSet<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/spec");
        let parse_v = |v: &Value| -> Option<(u32, u32)> {
            let s = v.as_str()?;
            let (a, b) = s.split_once('.').unwrap_or((s, "0"));
            Some((a.parse().ok()?, b.parse().ok()?))
        };
        let live = |p: &Value| {
            parse_v(&p["x-version-added"]).is_none_or(|a| a <= version)
                && parse_v(&p["x-version-removed"]).is_none_or(|r| r > version)
        };
        let mut out = BTreeSet::new();
        let global: Value = serde_yaml::from_str(
            &std::fs::read_to_string(dir.join("_global_parameters.yaml")).unwrap(),
        )
        .unwrap();
        for p in global["components"]["parameters"]
            .as_object()
            .unwrap()
            .values()
        {
            out.insert(p["name"].as_str().unwrap().to_owned());
        }
        let namespace = group.split_once('.').map_or("_core", |(ns, _)| ns);
        let text =
            std::fs::read_to_string(dir.join(format!("namespaces/{namespace}.yaml"))).unwrap();
        let doc: Value = serde_yaml::from_str(&text).unwrap();
        let params: BTreeMap<String, Value> =
            serde_json::from_value(doc["components"]["parameters"].clone()).unwrap();
        for methods in doc["paths"].as_object().unwrap().values() {
            for op in methods.as_object().unwrap().values() {
                if op["x-operation-group"] != group || !live(op) {
                    continue;
                }
                for r in op["parameters"].as_array().into_iter().flatten() {
                    let name = r["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
                    let p = &params[name];
                    if p["in"] == "query" && live(p) {
                        out.insert(p["name"].as_str().unwrap().to_owned());
                    }
                }
            }
        }
        out
    }

    #[test]
    fn opensearch_lists_are_the_vendored_specifications() {
        for (engine, version) in [("OpenSearch_1.3", (1, 3)), ("OpenSearch_2.11", (2, 11))] {
            for (op, group, _) in OPENSEARCH {
                let mut expected = spec_params(group, version);
                // Read by the REST layer on every request although the spec lists it per cat API.
                expected.insert("format".into());
                expected.insert("source_content_type".into());
                let unlisted = NOT_IN_SPEC
                    .iter()
                    .find(|(o, _)| o == op)
                    .map_or(&[][..], |(_, p)| *p);
                let ours: BTreeSet<String> = accepted(&v(engine), op)
                    .unwrap()
                    .into_iter()
                    .filter(|p| *p != "include_type_name" && !unlisted.contains(p))
                    .map(str::to_owned)
                    .collect();
                assert_eq!(ours, expected, "{engine} {op} ({group})");
            }
        }
    }
}
