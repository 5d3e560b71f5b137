//! Roles, action groups and how a set of roles grants an action, as the security plugin defines
//! them. The built-in (static) roles and action groups are the plugin's own
//! `static_config/static_roles.yml` and `static_action_groups.yml`
//! (github:opensearch-project/security), plus Amazon OpenSearch Service's `security_manager`, the
//! role that opens the security REST API; AWS does not publish its permission list, so here it
//! grants that API and nothing else.
//!
//! A permission is an action pattern (`cluster:admin/snapshot/*`, `indices:data/read*`, `*`) or
//! an action group name, expanded recursively; index permissions apply to the indices their
//! `index_patterns` match (`${user_name}` stands for the caller's name).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::data_plane::indices::glob;

/// One entry of a role's `index_permissions`.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexPermission {
    pub index_patterns: Vec<String>,
    pub allowed_actions: Vec<String>,
    /// `dls`, `fls`, `masked_fields`, kept as given (the sandbox does not filter documents).
    pub extra: serde_json::Map<String, Value>,
}

/// A security role.
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub reserved: bool,
    pub hidden: bool,
    pub is_static: bool,
    pub description: Option<String>,
    pub cluster_permissions: Vec<String>,
    pub index_permissions: Vec<IndexPermission>,
    pub tenant_permissions: Vec<Value>,
}

impl Role {
    /// The REST API's view (`GET roles/<name>`).
    pub fn to_json(&self) -> Value {
        let mut o = json!({
            "reserved": self.reserved,
            "hidden": self.hidden,
            "cluster_permissions": self.cluster_permissions,
            "index_permissions": self.index_permissions.iter().map(|p| {
                let mut v = json!({"index_patterns": p.index_patterns, "fls": [], "masked_fields": [], "allowed_actions": p.allowed_actions});
                for (k, x) in &p.extra {
                    v[k] = x.clone();
                }
                v
            }).collect::<Vec<_>>(),
            "tenant_permissions": self.tenant_permissions,
            "static": self.is_static,
        });
        if let Some(d) = &self.description {
            o["description"] = json!(d);
        }
        o
    }

    /// A role from a `PUT roles/<name>` body already checked by the API.
    pub fn from_request(body: &Value) -> Self {
        let list = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        Self {
            reserved: false,
            hidden: false,
            is_static: false,
            description: body["description"].as_str().map(str::to_owned),
            cluster_permissions: list(&body["cluster_permissions"]),
            index_permissions: body["index_permissions"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| IndexPermission {
                            index_patterns: list(&p["index_patterns"]),
                            allowed_actions: list(&p["allowed_actions"]),
                            extra: p
                                .as_object()
                                .map(|o| {
                                    o.iter()
                                        .filter(|(k, _)| {
                                            matches!(k.as_str(), "dls" | "fls" | "masked_fields")
                                        })
                                        .map(|(k, v)| (k.clone(), v.clone()))
                                        .collect()
                                })
                                .unwrap_or_default(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            tenant_permissions: body["tenant_permissions"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        }
    }
}

fn s(list: &[&str]) -> Vec<String> {
    list.iter().map(|x| (*x).to_owned()).collect()
}

fn static_role(
    description: &str,
    cluster: &[&str],
    index: &[(&[&str], &[&str])],
    tenant: Value,
) -> Role {
    Role {
        reserved: true,
        hidden: false,
        is_static: true,
        description: Some(description.to_owned()),
        cluster_permissions: s(cluster),
        index_permissions: index
            .iter()
            .map(|(patterns, actions)| IndexPermission {
                index_patterns: s(patterns),
                allowed_actions: s(actions),
                extra: serde_json::Map::new(),
            })
            .collect(),
        tenant_permissions: tenant.as_array().cloned().unwrap_or_default(),
    }
}

/// The built-in roles every FGAC domain has; none of them can be changed or deleted.
pub fn builtin_roles() -> BTreeMap<String, Role> {
    let mut roles = BTreeMap::new();
    roles.insert(
        "all_access".into(),
        static_role(
            "Allow full access to all indices and all cluster APIs",
            &["*"],
            &[(&["*"], &["*"])],
            json!([{"tenant_patterns": ["*"], "allowed_actions": ["kibana_all_write"]}]),
        ),
    );
    roles.insert(
        "kibana_user".into(),
        static_role(
            "Provide the minimum permissions for a kibana user",
            &["cluster_composite_ops"],
            &[
                (
                    &[
                        ".kibana",
                        ".kibana-6",
                        ".kibana_*",
                        ".opensearch_dashboards",
                        ".opensearch_dashboards-6",
                        ".opensearch_dashboards_*",
                    ],
                    &["delete", "index", "manage", "read"],
                ),
                (
                    &[
                        ".tasks",
                        ".management-beats",
                        "*:.tasks",
                        "*:.management-beats",
                    ],
                    &["indices_all"],
                ),
            ],
            json!([]),
        ),
    );
    roles.insert(
        "own_index".into(),
        static_role(
            "Allow all for indices named like the current user",
            &["cluster_composite_ops"],
            &[(&["${user_name}"], &["indices_all"])],
            json!([]),
        ),
    );
    roles.insert(
        "manage_snapshots".into(),
        static_role(
            "Provide the minimum permissions for managing snapshots",
            &["manage_snapshots"],
            &[(
                &["*"],
                &["indices:admin/create", "indices:data/write/index"],
            )],
            json!([]),
        ),
    );
    roles.insert(
        "kibana_server".into(),
        static_role(
            "Provide the minimum permissions for the Kibana server",
            &[
                "cluster_composite_ops",
                "cluster_monitor",
                "indices:admin/index_template*",
                "indices:admin/template*",
                "indices:data/read/scroll*",
                "manage_point_in_time",
            ],
            &[
                (&[".kibana", ".opensearch_dashboards"], &["indices_all"]),
                (&[".kibana-6", ".opensearch_dashboards-6"], &["indices_all"]),
                (&[".kibana_*", ".opensearch_dashboards_*"], &["indices_all"]),
                (&[".tasks"], &["indices_all"]),
                (&[".management-beats*"], &["indices_all"]),
                (&["*"], &["indices:admin/aliases*"]),
            ],
            json!([]),
        ),
    );
    roles.insert(
        "logstash".into(),
        static_role(
            "Provide the minimum permissions for logstash and beats",
            &[
                "cluster:admin/ingest/pipeline/get",
                "cluster:admin/ingest/pipeline/put",
                "cluster_composite_ops",
                "cluster_monitor",
                "indices:admin/template/get",
                "indices:admin/template/put",
            ],
            &[
                (&["logstash-*", "ecs-logstash-*"], &["create_index", "crud"]),
                (&["*beat*"], &["crud", "create_index"]),
            ],
            json!([]),
        ),
    );
    roles.insert(
        "readall_and_monitor".into(),
        static_role(
            "Provide the minimum permissions for to readall indices and monitor the cluster",
            &["cluster_composite_ops_ro", "cluster_monitor"],
            &[(&["*"], &["read"])],
            json!([]),
        ),
    );
    roles.insert(
        "readall".into(),
        static_role(
            "Provide the minimum permissions for to readall indices",
            &["cluster_composite_ops_ro"],
            &[(&["*"], &["read"])],
            json!([]),
        ),
    );
    roles.insert(
        "security_manager".into(),
        Role {
            reserved: true,
            hidden: false,
            is_static: false,
            description: Some(
                "Provide access to the security plugin's REST API (Amazon OpenSearch Service)"
                    .into(),
            ),
            cluster_permissions: Vec::new(),
            index_permissions: Vec::new(),
            tenant_permissions: Vec::new(),
        },
    );
    roles
}

/// The plugin's static action groups: name → allowed actions (patterns or further groups).
fn action_group(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "kibana_all_write" => &["kibana:saved_objects/*/write"],
        "kibana_all_read" => &["kibana:saved_objects/*/read"],
        "cluster_all" => &["cluster:*"],
        "crud" => &["read", "write"],
        "search" => &[
            "indices:data/read/search*",
            "indices:data/read/msearch*",
            "indices:admin/resolve/index",
            "suggest",
        ],
        "data_access" => &["indices:data/*", "crud"],
        "create_index" => &["indices:admin/create", "indices:admin/mapping/put"],
        "write" => &["indices:data/write*", "indices:admin/mapping/put"],
        "manage_aliases" => &["indices:admin/aliases*"],
        "read" => &[
            "indices:data/read*",
            "indices:admin/mappings/fields/get*",
            "indices:admin/resolve/index",
        ],
        "indices_all" => &["indices:*"],
        "delete" => &["indices:data/write/delete*"],
        "cluster_composite_ops" => &[
            "indices:data/write/bulk",
            "indices:admin/aliases*",
            "indices:data/write/reindex",
            "cluster_composite_ops_ro",
        ],
        "cluster_composite_ops_ro" => &[
            "indices:data/read/mget",
            "indices:data/read/msearch",
            "indices:data/read/mtv",
            "indices:admin/aliases/exists*",
            "indices:admin/aliases/get*",
            "indices:data/read/scroll",
            "indices:admin/resolve/index",
        ],
        "get" => &["indices:data/read/get*", "indices:data/read/mget*"],
        "manage" => &["indices:monitor/*", "indices:admin/*"],
        "cluster_monitor" => &["cluster:monitor/*"],
        "manage_snapshots" => &["cluster:admin/snapshot/*", "cluster:admin/repository/*"],
        "index" => &[
            "indices:data/write/index*",
            "indices:data/write/update*",
            "indices:admin/mapping/put",
            "indices:data/write/bulk*",
        ],
        "unlimited" => &["*"],
        "indices_monitor" => &["indices:monitor/*"],
        "suggest" => &["indices:data/read/suggest*"],
        "cluster_manage_index_templates" => &[
            "indices:admin/template/*",
            "indices:admin/index_template/*",
            "cluster:admin/component_template/*",
        ],
        "cluster_manage_pipelines" => &["cluster:admin/ingest/pipeline/*"],
        "manage_data_streams" => &[
            "indices:admin/data_stream/*",
            "indices:monitor/data_stream/stats",
        ],
        "manage_point_in_time" => &[
            "indices:data/read/point_in_time/create",
            "indices:data/read/point_in_time/delete",
            "indices:data/read/point_in_time/readall",
            "indices:data/read/search",
            "indices:monitor/point_in_time/segments",
        ],
        _ => return None,
    })
}

/// Action patterns a permission list stands for, action groups expanded (cycles are cut).
pub fn expand(permissions: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = permissions.to_vec();
    while let Some(p) = todo.pop() {
        if !seen.insert(p.clone()) {
            continue;
        }
        match action_group(&p) {
            Some(members) => todo.extend(members.iter().map(|m| (*m).to_owned())),
            None => {
                out.insert(p);
            }
        }
    }
    out
}

fn grants(patterns: &BTreeSet<String>, action: &str) -> bool {
    patterns.iter().any(|p| glob(p, action))
}

/// Whether any of `roles` grants the cluster-level `action`.
pub fn cluster_allows(roles: &[&Role], action: &str) -> bool {
    roles
        .iter()
        .any(|r| grants(&expand(&r.cluster_permissions), action))
}

/// Whether `roles` let the user into a Dashboards tenant: the global tenant (no header,
/// `global`) and the user's private tenant (`private`, `__user__`) are everyone's; a custom tenant
/// needs a `tenant_permissions` entry whose `tenant_patterns` match it and whose actions grant
/// reading (`kibana_all_read` or `kibana_all_write`) or, for a write, `kibana_all_write`.
pub fn tenant_allows(roles: &[&Role], user_name: &str, tenant: &str, write: bool) -> bool {
    if matches!(
        tenant.to_lowercase().as_str(),
        "" | "global" | "global_tenant" | "private" | "__user__"
    ) {
        return true;
    }
    let wanted: &[&str] = if write {
        &["kibana:saved_objects/*/write"]
    } else {
        &[
            "kibana:saved_objects/*/read",
            "kibana:saved_objects/*/write",
        ]
    };
    roles
        .iter()
        .flat_map(|r| r.tenant_permissions.iter())
        .any(|p| {
            let patterns: Vec<String> = p["tenant_patterns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|t| t.replace("${user_name}", user_name))
                .collect();
            let actions: Vec<String> = p["allowed_actions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            let allowed = expand(&actions);
            patterns.iter().any(|t| glob(t, tenant)) && wanted.iter().any(|w| grants(&allowed, w))
        })
}

/// The actions of `actions` that `roles` do not grant on every index of `indices` (the security
/// plugin's "missing privileges"), in the order given.
pub fn missing_index_privileges(
    roles: &[&Role],
    user_name: &str,
    actions: &[&str],
    indices: &[String],
) -> Vec<String> {
    let permissions: Vec<(Vec<String>, BTreeSet<String>)> = roles
        .iter()
        .flat_map(|r| r.index_permissions.iter())
        .map(|p| {
            (
                p.index_patterns
                    .iter()
                    .map(|i| i.replace("${user_name}", user_name))
                    .collect(),
                expand(&p.allowed_actions),
            )
        })
        .collect();
    actions
        .iter()
        .filter(|action| {
            !indices.iter().all(|index| {
                permissions.iter().any(|(patterns, allowed)| {
                    patterns.iter().any(|p| glob(p, index)) && grants(allowed, action)
                })
            })
        })
        .map(|a| (*a).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str) -> Role {
        builtin_roles().remove(name).expect("built-in role")
    }

    #[test]
    fn manage_snapshots_allows_snapshots_and_restore_writes_only() {
        let r = role("manage_snapshots");
        let roles = [&r];
        for ok in [
            "cluster:admin/snapshot/create",
            "cluster:admin/snapshot/restore",
            "cluster:admin/repository/put",
            "cluster:admin/repository/get",
        ] {
            assert!(cluster_allows(&roles, ok), "{ok}");
        }
        for refused in [
            "cluster:monitor/state",
            "cluster:monitor/health",
            "cluster:monitor/main",
        ] {
            assert!(!cluster_allows(&roles, refused), "{refused}");
        }
        let idx = vec!["movies".to_owned()];
        assert!(
            missing_index_privileges(
                &roles,
                "u",
                &["indices:data/write/index", "indices:admin/create"],
                &idx
            )
            .is_empty()
        );
        assert_eq!(
            missing_index_privileges(&roles, "u", &["indices:data/read/search"], &idx),
            vec!["indices:data/read/search"]
        );
        assert_eq!(
            missing_index_privileges(&roles, "u", &["indices:monitor/settings/get"], &idx),
            vec!["indices:monitor/settings/get"]
        );
    }

    #[test]
    fn readall_reads_but_neither_writes_nor_monitors() {
        let r = role("readall");
        let roles = [&r];
        let idx = vec!["a".to_owned(), "b".to_owned()];
        assert!(
            missing_index_privileges(&roles, "u", &["indices:data/read/search"], &idx).is_empty()
        );
        assert_eq!(
            missing_index_privileges(&roles, "u", &["indices:data/write/index"], &idx),
            vec!["indices:data/write/index"]
        );
        assert!(!cluster_allows(&roles, "cluster:monitor/health"));
        assert!(cluster_allows(&roles, "indices:data/read/mget"));
    }

    #[test]
    fn all_access_allows_everything_and_groups_expand_recursively() {
        let r = role("all_access");
        assert!(cluster_allows(&[&r], "cluster:admin/repository/put"));
        assert!(expand(&["cluster_composite_ops".into()]).contains("indices:data/read/mget"));
        assert!(expand(&["crud".into()]).contains("indices:data/write*"));
    }

    #[test]
    fn own_index_substitutes_the_user_name() {
        let r = role("own_index");
        let mine = vec!["alice".to_owned()];
        assert!(
            missing_index_privileges(&[&r], "alice", &["indices:data/read/search"], &mine)
                .is_empty()
        );
        assert!(
            !missing_index_privileges(&[&r], "bob", &["indices:data/read/search"], &mine)
                .is_empty()
        );
    }

    #[test]
    fn only_the_missing_columns_are_reported() {
        let custom = Role::from_request(&json!({
            "index_permissions": [{"index_patterns": ["logs-*"], "allowed_actions": ["read"]},
                                  {"index_patterns": ["*"], "allowed_actions": ["indices:data/write/index"]}]
        }));
        let idx = vec!["logs-1".to_owned(), "other".to_owned()];
        assert_eq!(
            missing_index_privileges(
                &[&custom],
                "u",
                &["indices:data/write/index", "indices:data/read/search"],
                &idx
            ),
            vec!["indices:data/read/search"]
        );
    }
}
