//! What each REST endpoint the sandbox serves asks of the security plugin: the transport actions
//! OpenSearch runs for it, in the order it runs them, each cluster-level or on a set of indices.
//! The first one the caller's roles do not grant is the one the 403 names.
//!
//! The names and order are OpenSearch's own: `GET _cat/indices` runs `indices:monitor/settings/get`
//! (it resolves the visible indices), then `cluster:monitor/state`, `indices:monitor/stats` and
//! `cluster:monitor/health` (`RestIndicesAction`); `_count` is a search
//! (`indices:data/read/search`); a single-document index call auto-creates a missing index
//! (`indices:admin/auto_create`, checked as `indices:admin/create`). Bulk and restore are checked
//! item by item and index by index in `super` (their rules do not fit one list).

use serde_json::Value;

use crate::data_plane::{DataState, Req};

/// One permission check.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// A cluster-level action.
    Cluster(&'static str),
    /// Index-level actions, each needed on every one of the indices.
    Index {
        actions: Vec<&'static str>,
        indices: Vec<String>,
    },
    /// Access to a Dashboards tenant (`""`, `global` and `private` are everyone's; a custom
    /// tenant needs a role whose `tenant_permissions` grant `kibana_all_read` or, to write,
    /// `kibana_all_write`).
    Tenant { tenant: String, write: bool },
}

fn index(actions: &[&'static str], indices: Vec<String>) -> Check {
    Check::Index {
        actions: actions.to_vec(),
        indices,
    }
}

/// The indices an index expression touches, for a permission check: existing indices it names or
/// its wildcards match (hidden `.` indices only for patterns starting with `.`, or with
/// `expand_wildcards` asking for them), and names that do not exist yet as written.
pub fn indices_of(state: &DataState, expr: &str, hidden: bool) -> Vec<String> {
    let names: Vec<&String> = state.indices.keys().collect();
    let mut out: Vec<String> = Vec::new();
    for part in expr.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some(excluded) = part.strip_prefix('-').filter(|_| !out.is_empty()) {
            out.retain(|n| !crate::data_plane::indices::glob(excluded, n));
            continue;
        }
        let pattern = if part == "_all" { "*" } else { part };
        if pattern.contains('*') || pattern.contains('?') {
            for n in &names {
                let visible = hidden || !n.starts_with('.') || pattern.starts_with('.');
                if visible && crate::data_plane::indices::glob(pattern, n) && !out.contains(n) {
                    out.push((*n).clone());
                }
            }
        } else if !out.iter().any(|n| n == pattern) {
            out.push(pattern.to_owned());
        }
    }
    out
}

/// The index expression of a `/<index>/_op` path, `_all` when the path starts with `_`.
fn expr_of(req: &Req, at: usize) -> String {
    match req.segments.get(at) {
        Some(s) if !s.starts_with('_') => s.clone(),
        _ => "_all".to_owned(),
    }
}

fn wants_hidden(req: &Req) -> bool {
    req.query
        .get("expand_wildcards")
        .is_some_and(|w| w.split(',').any(|x| x == "all" || x == "hidden"))
}

/// The checks of one operation (as named by the data plane's `classify`), except `Bulk` and
/// `RestoreSnapshot`.
pub fn checks(operation: &str, req: &Req, state: &DataState) -> Vec<Check> {
    let all = |expr: &str| indices_of(state, expr, wants_hidden(req));
    match operation {
        "Info" => vec![Check::Cluster("cluster:monitor/main")],
        "ClusterHealth" => vec![Check::Cluster("cluster:monitor/health")],
        "CatIndices" => {
            let indices = all(&req.segments.get(2).cloned().unwrap_or("_all".into()));
            vec![
                index(&["indices:monitor/settings/get"], indices.clone()),
                Check::Cluster("cluster:monitor/state"),
                index(&["indices:monitor/stats"], indices),
                Check::Cluster("cluster:monitor/health"),
            ]
        }
        // The bare `/_recovery` never reaches OpenSearch on the managed service.
        "Recovery" if req.segments.len() == 1 => Vec::new(),
        "Recovery" => vec![index(&["indices:monitor/recovery"], all(&expr_of(req, 0)))],
        "Count" | "Search" => vec![index(&["indices:data/read/search"], all(&expr_of(req, 0)))],
        "Refresh" => {
            let expr = req
                .segments
                .iter()
                .find(|s| !s.starts_with('_'))
                .cloned()
                .unwrap_or("_all".into());
            vec![index(&["indices:admin/refresh"], all(&expr))]
        }
        "IndexDocument" => {
            let name = req.segments.first().cloned().unwrap_or_default();
            let mut out = Vec::new();
            if !state.indices.contains_key(&name) {
                out.push(index(&["indices:admin/create"], vec![name.clone()]));
            }
            out.push(index(&["indices:data/write/index"], vec![name]));
            out
        }
        "UpdateAliases" => {
            let body = req.json_body().unwrap_or_default();
            let mut aliased = Vec::new();
            let mut removed = Vec::new();
            for action in body["actions"].as_array().into_iter().flatten() {
                let Some((kind, spec)) = action.as_object().and_then(|o| o.iter().next()) else {
                    continue;
                };
                let names: Vec<String> = match (&spec["index"], &spec["indices"]) {
                    (Value::String(s), _) => all(s),
                    (_, Value::Array(a)) => {
                        a.iter().filter_map(Value::as_str).flat_map(&all).collect()
                    }
                    _ => Vec::new(),
                };
                if kind == "remove_index" {
                    removed.extend(names);
                } else {
                    aliased.extend(names);
                }
            }
            let mut out = vec![index(&["indices:admin/aliases"], aliased)];
            if !removed.is_empty() {
                out.push(index(&["indices:admin/delete"], removed));
            }
            out
        }
        "GetRepository" => vec![Check::Cluster("cluster:admin/repository/get")],
        "PutRepository" => vec![Check::Cluster("cluster:admin/repository/put")],
        "DeleteRepository" => vec![Check::Cluster("cluster:admin/repository/delete")],
        "VerifyRepository" => vec![Check::Cluster("cluster:admin/repository/verify")],
        "CreateSnapshot" => vec![Check::Cluster("cluster:admin/snapshot/create")],
        "GetSnapshot" => vec![Check::Cluster("cluster:admin/snapshot/get")],
        "DeleteSnapshot" => vec![Check::Cluster("cluster:admin/snapshot/delete")],
        "SnapshotStatus" | "RunningSnapshotStatus" => {
            vec![Check::Cluster("cluster:admin/snapshot/status")]
        }
        "CreateIndex" => {
            let name = req.segments.first().cloned().unwrap_or_default();
            let aliases = req
                .json_body()
                .ok()
                .and_then(|b| b.get("aliases").and_then(Value::as_object).cloned())
                .is_some_and(|a| !a.is_empty());
            let actions: &[&'static str] = if aliases {
                &["indices:admin/create", "indices:admin/aliases"]
            } else {
                &["indices:admin/create"]
            };
            vec![index(actions, vec![name])]
        }
        "DeleteIndex" => vec![index(&["indices:admin/delete"], all(&expr_of(req, 0)))],
        "IndexExists" | "GetIndex" => vec![index(&["indices:admin/get"], all(&expr_of(req, 0)))],
        "GetSettings" => vec![index(
            &["indices:monitor/settings/get"],
            all(&expr_of(req, 0)),
        )],
        "CloseIndex" => vec![index(&["indices:admin/close"], all(&expr_of(req, 0)))],
        "OpenIndex" => vec![index(&["indices:admin/open"], all(&expr_of(req, 0)))],
        "CreateDocument" => {
            let name = req.segments.first().cloned().unwrap_or_default();
            let mut out = Vec::new();
            if !state.indices.contains_key(&name) {
                out.push(index(&["indices:admin/create"], vec![name.clone()]));
            }
            out.push(index(&["indices:data/write/index"], vec![name]));
            out
        }
        "AllocationExplain" => vec![Check::Cluster("cluster:monitor/allocation/explain")],
        "ClusterState" => vec![Check::Cluster("cluster:monitor/state")],
        // Templates are cluster permissions although two families are named `indices:` (the
        // plugin's `isClusterPerm`).
        "PutIndexTemplate" => vec![Check::Cluster("indices:admin/index_template/put")],
        "GetIndexTemplate" | "IndexTemplateExists" | "IndexTemplate" => {
            vec![Check::Cluster("indices:admin/index_template/get")]
        }
        "DeleteIndexTemplate" => vec![Check::Cluster("indices:admin/index_template/delete")],
        "PutComponentTemplate" => vec![Check::Cluster("cluster:admin/component_template/put")],
        "GetComponentTemplate" | "ComponentTemplateExists" | "ComponentTemplate" => {
            vec![Check::Cluster("cluster:admin/component_template/get")]
        }
        "DeleteComponentTemplate" => {
            vec![Check::Cluster("cluster:admin/component_template/delete")]
        }
        "PutLegacyTemplate" => vec![Check::Cluster("indices:admin/template/put")],
        "GetLegacyTemplate" | "LegacyTemplateExists" | "LegacyTemplate" => {
            vec![Check::Cluster("indices:admin/template/get")]
        }
        "DeleteLegacyTemplate" => vec![Check::Cluster("indices:admin/template/delete")],
        "PutPipeline" => vec![Check::Cluster("cluster:admin/ingest/pipeline/put")],
        "GetPipeline" => vec![Check::Cluster("cluster:admin/ingest/pipeline/get")],
        "DeletePipeline" => vec![Check::Cluster("cluster:admin/ingest/pipeline/delete")],
        "SimulatePipeline" => vec![Check::Cluster("cluster:admin/ingest/pipeline/simulate")],
        "PutScript" => vec![Check::Cluster("cluster:admin/script/put")],
        "GetScript" => vec![Check::Cluster("cluster:admin/script/get")],
        "DeleteScript" => vec![Check::Cluster("cluster:admin/script/delete")],
        "RenderTemplate" => vec![Check::Cluster("cluster:admin/search/template/render")],
        // The template search, then the search it renders to.
        "SearchTemplate" => vec![index(
            &[
                "indices:data/read/search/template",
                "indices:data/read/search",
            ],
            all(&expr_of(req, 0)),
        )],
        "GetDataStream" => {
            let expr = req.segments.get(1).cloned().unwrap_or("*".into());
            vec![index(&["indices:admin/data_stream/get"], all(&expr))]
        }
        "CreateDataStream" => vec![index(
            &["indices:admin/data_stream/create"],
            req.segments.get(1).cloned().into_iter().collect(),
        )],
        "DeleteDataStream" => {
            let expr = req.segments.get(1).cloned().unwrap_or_default();
            vec![index(&["indices:admin/data_stream/delete"], all(&expr))]
        }
        "Rollover" => vec![index(
            &["indices:admin/rollover"],
            req.segments.first().cloned().into_iter().collect(),
        )],
        "GetAlias" | "AliasExists" => {
            vec![index(&["indices:admin/aliases/get"], all(&expr_of(req, 0)))]
        }
        "PutAlias" | "DeleteAlias" => {
            vec![index(&["indices:admin/aliases"], all(&expr_of(req, 0)))]
        }
        // Index State Management: every action of the plugin is a cluster permission.
        "IsmPutPolicy" | "IsmPutPolicies" => {
            vec![Check::Cluster("cluster:admin/opendistro/ism/policy/write")]
        }
        "IsmGetPolicy" => vec![Check::Cluster("cluster:admin/opendistro/ism/policy/get")],
        "IsmGetPolicies" => vec![Check::Cluster("cluster:admin/opendistro/ism/policy/search")],
        "IsmDeletePolicy" => vec![Check::Cluster("cluster:admin/opendistro/ism/policy/delete")],
        "IsmAddPolicy" => vec![Check::Cluster(
            "cluster:admin/opendistro/ism/managedindex/add",
        )],
        "IsmRemovePolicy" => {
            vec![Check::Cluster(
                "cluster:admin/opendistro/ism/managedindex/remove",
            )]
        }
        "IsmChangePolicy" => {
            vec![Check::Cluster(
                "cluster:admin/opendistro/ism/managedindex/change",
            )]
        }
        "IsmExplain" => vec![Check::Cluster(
            "cluster:admin/opendistro/ism/managedindex/explain",
        )],
        // Dashboards works on the saved-objects index as the signed-in user, in the tenant the
        // `securitytenant` header picks (a custom tenant also needs the role's tenant permission).
        "DashboardsExport" | "DashboardsFind" => vec![
            Check::Tenant {
                tenant: tenant_header(req),
                write: false,
            },
            index(&["indices:data/read/search"], vec![".kibana".to_owned()]),
        ],
        "DashboardsImport" => vec![
            Check::Tenant {
                tenant: tenant_header(req),
                write: true,
            },
            index(&["indices:data/read/search"], vec![".kibana".to_owned()]),
            Check::Cluster("indices:data/write/bulk"),
            index(&["indices:data/write/index"], vec![".kibana".to_owned()]),
        ],
        "DashboardsDelete" => vec![
            Check::Tenant {
                tenant: tenant_header(req),
                write: true,
            },
            index(&["indices:data/write/delete"], vec![".kibana".to_owned()]),
        ],
        _ => Vec::new(),
    }
}

/// The tenant a Dashboards request names (`securitytenant`; none is the global tenant).
fn tenant_header(req: &Req) -> String {
    req.headers
        .get("securitytenant")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_plane::indices::Index;

    fn state(names: &[&str]) -> DataState {
        let mut s = DataState::default();
        for n in names {
            s.indices.insert(
                (*n).to_owned(),
                Index::new(
                    n,
                    &crate::data_plane::version::Engine::of_domain("OpenSearch_2.11"),
                    None,
                    None,
                ),
            );
        }
        s
    }

    fn req(method: http::Method, path: &str, query: &[(&str, &str)], body: &str) -> Req {
        Req {
            caller: crate::identity::Caller::Anonymous,
            method,
            segments: path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            query: query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: bytes::Bytes::from(body.to_owned()),
            headers: http::HeaderMap::new(),
            uri: match query.is_empty() {
                true => path.to_owned(),
                false => format!(
                    "{path}?{}",
                    query
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join("&")
                ),
            },
        }
    }

    #[test]
    fn cat_indices_runs_get_settings_state_stats_and_health() {
        let s = state(&["movies", ".kibana_1"]);
        let c = checks(
            "CatIndices",
            &req(http::Method::GET, "/_cat/indices", &[], ""),
            &s,
        );
        assert_eq!(
            c,
            vec![
                index(&["indices:monitor/settings/get"], vec!["movies".into()]),
                Check::Cluster("cluster:monitor/state"),
                index(&["indices:monitor/stats"], vec!["movies".into()]),
                Check::Cluster("cluster:monitor/health"),
            ]
        );
        let hidden = checks(
            "CatIndices",
            &req(
                http::Method::GET,
                "/_cat/indices",
                &[("expand_wildcards", "all")],
                "",
            ),
            &s,
        );
        assert_eq!(
            hidden[0],
            index(
                &["indices:monitor/settings/get"],
                vec![".kibana_1".into(), "movies".into()]
            )
        );
    }

    #[test]
    fn count_is_a_search_and_auto_create_needs_create() {
        let s = state(&["logs-1", "logs-2", "other"]);
        assert_eq!(
            checks(
                "Count",
                &req(http::Method::GET, "/logs-*/_count", &[], ""),
                &s
            ),
            vec![index(
                &["indices:data/read/search"],
                vec!["logs-1".into(), "logs-2".into()]
            )]
        );
        assert_eq!(
            checks(
                "IndexDocument",
                &req(http::Method::PUT, "/fresh/_doc/1", &[], "{}"),
                &s
            ),
            vec![
                index(&["indices:admin/create"], vec!["fresh".into()]),
                index(&["indices:data/write/index"], vec!["fresh".into()]),
            ]
        );
        assert_eq!(indices_of(&s, "*,-logs-2", false), vec!["logs-1", "other"]);
    }

    #[test]
    fn snapshot_endpoints_are_cluster_actions() {
        let s = state(&[]);
        assert_eq!(
            checks(
                "PutRepository",
                &req(http::Method::PUT, "/_snapshot/r", &[], "{}"),
                &s
            ),
            vec![Check::Cluster("cluster:admin/repository/put")]
        );
        assert_eq!(
            checks(
                "CreateSnapshot",
                &req(http::Method::PUT, "/_snapshot/r/s", &[], "{}"),
                &s
            ),
            vec![Check::Cluster("cluster:admin/snapshot/create")]
        );
        assert!(
            checks(
                "Recovery",
                &req(http::Method::GET, "/_recovery", &[], ""),
                &s
            )
            .is_empty()
        );
    }
}
