//! Fine-grained access control: the OpenSearch security plugin as a domain with
//! `AdvancedSecurityOptions.Enabled` runs it, after the gateway's access policy let a request in.
//!
//! **Who the caller is.** A SigV4-signed request is the IAM principal that signed it: its name is
//! the principal's ARN, and an assumed-role session has the role's ARN as its backend role. With
//! the internal user database enabled, HTTP basic auth names an internal user (name, password,
//! backend roles); without it, or with no credentials at all, the answer is 401.
//!
//! **What the caller may do.** Role mappings (`users`, `backend_roles`, `and_backend_roles`, with
//! wildcards) give the caller roles; the roles' cluster and index permissions ([`roles`]) must
//! grant every transport action the endpoint runs ([`actions`]), or the answer is 403
//! `security_exception`, "no permissions for [<actions>] and User [name=<n>, backend_roles=[..],
//! requestedTenant=null]" (the plugin's `SecurityFilter` and `User.toString`). The master user
//! (`MasterUserOptions`) is mapped to `all_access` and `security_manager` when FGAC is enabled.
//! Index checks are strict (`do_not_fail_on_forbidden` off): a wildcard covering one forbidden
//! index is refused. Bulk items are checked per index (a refused index fails its items inside a
//! 200 answer, as the shard-level `indices:data/write/bulk[s]` check does); a restore needs
//! `indices:data/write/index` and `indices:admin/create` on the indices it creates, and may not
//! restore the global state.
//!
//! The configuration (roles, mappings, internal users) lives with the domain's data, as the
//! security index does in the cluster, and is managed through [`api`].

pub mod actions;
pub mod api;
pub mod roles;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use base64::Engine as _;
use http::HeaderMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{DomainData, Req};
use crate::Shared;
use crate::http::{Resp, os_error, respond};
use crate::identity::Caller;
use actions::Check;
use roles::Role;

/// The master user a domain's `MasterUserOptions` name.
#[derive(Debug, Clone, PartialEq)]
pub enum MasterUser {
    /// `MasterUserARN`: an IAM user or role.
    Arn(String),
    /// `MasterUserName` + `MasterUserPassword` in the internal user database.
    Internal { name: String, password: String },
}

/// A domain's security plugin: `None` until fine-grained access control is enabled.
#[derive(Default)]
pub struct Security {
    plugin: Mutex<Option<Plugin>>,
}

impl Security {
    fn lock(&self) -> MutexGuard<'_, Option<Plugin>> {
        self.plugin.lock().expect("security lock")
    }

    /// Whether fine-grained access control is on (it cannot be turned off again).
    pub fn is_enabled(&self) -> bool {
        self.lock().is_some()
    }

    /// Enables fine-grained access control, or applies a new master user / internal-database
    /// setting to an enabled one (AWS re-maps `all_access` and `security_manager` to the new
    /// master and keeps every other mapping and user).
    pub fn enable(&self, engine_version: &str, internal_db: bool, master: &MasterUser) {
        let mut guard = self.lock();
        let plugin = guard.get_or_insert_with(|| Plugin::new(engine_version));
        plugin.internal_db = internal_db;
        plugin.set_master(master);
    }
}

/// The security configuration of one domain, as JSON entities the REST API reads and writes.
pub(crate) struct Plugin {
    /// OpenSearch serves `_plugins/_security` (and the deprecated `_opendistro/_security`);
    /// Elasticsearch (Open Distro) only `_opendistro/_security`.
    opensearch: bool,
    internal_db: bool,
    roles: BTreeMap<String, Value>,
    mappings: BTreeMap<String, Value>,
    users: BTreeMap<String, Value>,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub name: String,
    pub backend_roles: Vec<String>,
    /// Roles an internal user holds directly (`opendistro_security_roles`).
    pub security_roles: Vec<String>,
}

impl std::fmt::Display for User {
    /// `User [name=.., backend_roles=[a, b], requestedTenant=null]`, the plugin's `User.toString`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "User [name={}, backend_roles=[{}], requestedTenant=null]",
            self.name,
            self.backend_roles.join(", ")
        )
    }
}

impl Plugin {
    fn new(engine_version: &str) -> Self {
        Self {
            opensearch: !engine_version.starts_with("Elasticsearch_"),
            internal_db: false,
            roles: roles::builtin_roles()
                .into_iter()
                .map(|(name, role)| (name, role.to_json()))
                .collect(),
            mappings: BTreeMap::new(),
            users: BTreeMap::new(),
        }
    }

    fn set_master(&mut self, master: &MasterUser) {
        let (key, who) = match master {
            MasterUser::Arn(arn) if arn.contains(":role/") => ("backend_roles", arn.clone()),
            MasterUser::Arn(arn) => ("users", arn.clone()),
            MasterUser::Internal { name, password } => {
                let mut user = self
                    .users
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| api::normalized_user(&json!({})));
                user["hash"] = json!(hash_password(password));
                self.users.insert(name.clone(), user);
                ("users", name.clone())
            }
        };
        for role in ["all_access", "security_manager"] {
            let mapping = self
                .mappings
                .entry(role.to_owned())
                .or_insert_with(|| api::normalized_mapping(&json!({})));
            if let Some(list) = mapping[key].as_array_mut()
                && !list.iter().any(|v| v.as_str() == Some(who.as_str()))
            {
                list.push(json!(who));
            }
        }
    }

    /// Who the caller is, or the 401 the plugin answers.
    fn authenticate(&self, caller: &Caller, headers: &HeaderMap) -> Result<User, Resp> {
        // An IAM caller is its user ARN, or its role session's ARN with the role (path
        // included) as its backend role.
        if let Caller::Signed(identity) = caller {
            return Ok(User {
                name: identity.caller_arn(),
                backend_roles: identity
                    .backend_role()
                    .map(str::to_owned)
                    .into_iter()
                    .collect(),
                security_roles: Vec::new(),
            });
        }
        let basic = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .and_then(|b| String::from_utf8(b).ok());
        if self.internal_db
            && let Some((name, password)) = basic.as_deref().and_then(|c| c.split_once(':'))
            && let Some(user) = self.users.get(name)
            && user["hash"]
                .as_str()
                .is_some_and(|h| password_matches(h, password))
        {
            let list = |k: &str| -> Vec<String> {
                user[k]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            return Ok(User {
                name: name.to_owned(),
                backend_roles: list("backend_roles"),
                security_roles: list("opendistro_security_roles"),
            });
        }
        Err(self.unauthorized())
    }

    /// 401: with the internal user database the HTTP basic authenticator challenges the client.
    fn unauthorized(&self) -> Resp {
        if self.internal_db {
            let mut resp = respond(401, "text/plain; charset=UTF-8", "Unauthorized");
            let realm = if self.opensearch {
                "Basic realm=\"OpenSearch Security\""
            } else {
                "Basic realm=\"Open Distro Security\""
            };
            resp.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static(realm),
            );
            resp
        } else {
            respond(
                401,
                "text/plain; charset=UTF-8",
                "Authentication finally failed",
            )
        }
    }

    /// The names of the roles mapped to `user`.
    fn mapped_roles(&self, user: &User) -> BTreeSet<String> {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let matches = |patterns: &[String], value: &str| {
            patterns
                .iter()
                .any(|p| crate::data_plane::indices::glob(p, value))
        };
        let mut out: BTreeSet<String> = user.security_roles.iter().cloned().collect();
        for (role, mapping) in &self.mappings {
            let users = strings(&mapping["users"]);
            let backend = strings(&mapping["backend_roles"]);
            let and_backend = strings(&mapping["and_backend_roles"]);
            let by_user = matches(&users, &user.name);
            let by_backend = user.backend_roles.iter().any(|b| matches(&backend, b));
            let by_all_backend = !and_backend.is_empty()
                && and_backend.iter().all(|p| {
                    user.backend_roles
                        .iter()
                        .any(|b| crate::data_plane::indices::glob(p, b))
                });
            if by_user || by_backend || by_all_backend {
                out.insert(role.clone());
            }
        }
        out
    }

    /// The role definitions of the mapped roles that exist.
    fn roles_of(&self, mapped: &BTreeSet<String>) -> Vec<Role> {
        mapped
            .iter()
            .filter_map(|name| self.roles.get(name))
            .map(api::role_of_json)
            .collect()
    }
}

/// A salted SHA-256 (`<salt>$<hex>`): the sandbox never keeps a password, and never shows its
/// hash (the REST API blanks `hash`, as the plugin does).
fn hash_password(password: &str) -> String {
    let salt = uuid::Uuid::new_v4().simple().to_string();
    let digest = Sha256::digest(format!("{salt}{password}").as_bytes());
    format!("{salt}${}", hex::encode(digest))
}

fn password_matches(stored: &str, password: &str) -> bool {
    let Some((salt, hex_digest)) = stored.split_once('$') else {
        return false;
    };
    hex::encode(Sha256::digest(format!("{salt}{password}").as_bytes())) == hex_digest
}

/// The plugin's 403 for privileges the caller's roles lack.
fn forbidden(user: &User, missing: &[String]) -> Resp {
    os_error(
        403,
        "security_exception",
        &format!("no permissions for [{}] and {user}", missing.join(", ")),
    )
}

/// The first check the roles refuse, as the missing privileges it names.
fn refused(roles: &[Role], user: &User, checks: &[Check]) -> Option<Vec<String>> {
    let refs: Vec<&Role> = roles.iter().collect();
    checks.iter().find_map(|check| match check {
        Check::Cluster(action) => {
            (!roles::cluster_allows(&refs, action)).then(|| vec![(*action).to_owned()])
        }
        Check::Index { actions, indices } => {
            let missing = roles::missing_index_privileges(&refs, &user.name, actions, indices);
            (!missing.is_empty()).then_some(missing)
        }
        Check::Tenant { tenant, write } => {
            let action = if *write {
                "kibana:saved_objects/*/write"
            } else {
                "kibana:saved_objects/*/read"
            };
            (!roles::tenant_allows(&refs, &user.name, tenant, *write))
                .then(|| vec![action.to_owned()])
        }
    })
}

/// Runs a data-plane request through the security plugin (when the domain has it) and then
/// through the data plane's router.
pub async fn handle(
    shared: &Shared,
    data: &DomainData,
    caller: &Caller,
    headers: &HeaderMap,
    operation: &str,
    req: Req,
) -> Resp {
    if api::is_api(operation) {
        return api::handle(data, caller, headers, operation, &req);
    }
    let who = data.security.lock().as_ref().map(|plugin| {
        plugin
            .authenticate(caller, headers)
            .map(|user| (plugin.roles_of(&plugin.mapped_roles(&user)), user))
    });
    let (roles, user) = match who {
        None => return super::route(shared, data, operation, req).await,
        Some(Err(unauthorized)) => return unauthorized,
        Some(Ok(found)) => found,
    };
    match operation {
        "Bulk" => return bulk(shared, data, &user, &roles, req).await,
        "MultiSearch" => return msearch(data, &user, &roles, &req),
        "RestoreSnapshot" => {
            if let Err(resp) = restore(shared, data, &user, &roles, &req).await {
                return resp;
            }
        }
        _ => {
            let checks = actions::checks(operation, &req, &data.lock());
            if let Some(missing) = refused(&roles, &user, &checks) {
                return forbidden(&user, &missing);
            }
        }
    }
    super::route(shared, data, operation, req).await
}

/// One `_bulk` item: its lines and the index it writes to.
struct BulkItem<'a> {
    kind: String,
    index: String,
    id: Option<String>,
    lines: Vec<&'a str>,
}

fn parse_bulk<'a>(text: &'a str, default_index: Option<&str>) -> Option<Vec<BulkItem<'a>>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let mut items = Vec::new();
    while let Some(action_line) = lines.next() {
        let action: Value = serde_json::from_str(action_line).ok()?;
        let (kind, meta) = action.as_object()?.iter().next()?;
        let index = meta
            .get("_index")
            .and_then(Value::as_str)
            .or(default_index)?
            .to_owned();
        let mut item_lines = vec![action_line];
        if kind != "delete" {
            item_lines.push(lines.next()?);
        }
        items.push(BulkItem {
            kind: kind.clone(),
            index,
            id: meta.get("_id").and_then(Value::as_str).map(str::to_owned),
            lines: item_lines,
        });
    }
    Some(items)
}

/// `_bulk`: `indices:data/write/bulk` for the request, then per index the auto-creation of a
/// missing index and the shard-level `indices:data/write/bulk[s]` with each item's own action. A
/// refused index fails its items; the others are written.
async fn bulk(shared: &Shared, data: &DomainData, user: &User, roles: &[Role], req: Req) -> Resp {
    if let Some(missing) = refused(roles, user, &[Check::Cluster("indices:data/write/bulk")]) {
        return forbidden(user, &missing);
    }
    let text = String::from_utf8_lossy(&req.body).into_owned();
    let default_index = req.segments.first().filter(|s| *s != "_bulk").cloned();
    let Some(items) = parse_bulk(&text, default_index.as_deref()) else {
        // Malformed: the bulk handler answers with OpenSearch's own parse error.
        return super::route(shared, data, "Bulk", req).await;
    };
    let mut refusals: BTreeMap<String, String> = BTreeMap::new();
    {
        let state = data.lock();
        let indices: BTreeSet<&str> = items.iter().map(|i| i.index.as_str()).collect();
        for index in indices {
            let of_index: Vec<&BulkItem> = items.iter().filter(|i| i.index == index).collect();
            let creates = of_index.iter().any(|i| i.kind != "delete");
            let mut checks = Vec::new();
            if creates && !state.indices.contains_key(index) {
                checks.push(Check::Index {
                    actions: vec!["indices:admin/create"],
                    indices: vec![index.to_owned()],
                });
            }
            let mut shard: Vec<&'static str> = vec!["indices:data/write/bulk[s]"];
            for item in &of_index {
                let action = match item.kind.as_str() {
                    "delete" => "indices:data/write/delete",
                    "update" => "indices:data/write/update",
                    _ => "indices:data/write/index",
                };
                if !shard.contains(&action) {
                    shard.push(action);
                }
            }
            checks.push(Check::Index {
                actions: shard,
                indices: vec![index.to_owned()],
            });
            if let Some(missing) = refused(roles, user, &checks) {
                refusals.insert(
                    index.to_owned(),
                    format!("no permissions for [{}] and {user}", missing.join(", ")),
                );
            }
        }
    }
    if refusals.is_empty() {
        return super::route(shared, data, "Bulk", req).await;
    }
    let allowed: Vec<&BulkItem> = items
        .iter()
        .filter(|i| !refusals.contains_key(&i.index))
        .collect();
    let mut written: std::collections::VecDeque<Value> = if allowed.is_empty() {
        Default::default()
    } else {
        let mut body = String::new();
        for item in &allowed {
            for line in &item.lines {
                body.push_str(line);
                body.push('\n');
            }
        }
        let sub = Req {
            caller: req.caller.clone(),
            method: req.method.clone(),
            segments: req.segments.clone(),
            query: req.query.clone(),
            body: bytes::Bytes::from(body),
            headers: req.headers.clone(),
            uri: req.uri.clone(),
        };
        let resp = super::route(shared, data, "Bulk", sub).await;
        if resp.status() != 200 {
            return resp;
        }
        let bytes = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v["items"].as_array().cloned())
            .unwrap_or_default()
            .into()
    };
    let items: Vec<Value> = items
        .iter()
        .map(|item| match refusals.get(&item.index) {
            Some(reason) => json!({ item.kind.as_str(): {
                "_index": item.index, "_id": item.id, "status": 403,
                "error": {"type": "security_exception", "reason": reason}
            }}),
            None => written.pop_front().unwrap_or(Value::Null),
        })
        .collect();
    crate::http::json(200, &json!({"took": 1, "errors": true, "items": items}))
}

/// `_msearch`: `indices:data/read/msearch`, a cluster permission for the plugin
/// (`PrivilegesEvaluator#isClusterPerm`), then each item as the `_search` it runs: a refused
/// item answers 403 in its place, the others are searched.
fn msearch(data: &DomainData, user: &User, roles: &[Role], req: &Req) -> Resp {
    if let Some(missing) = refused(roles, user, &[Check::Cluster("indices:data/read/msearch")]) {
        return forbidden(user, &missing);
    }
    let items = match super::indices::msearch_items(req) {
        Ok(items) => items,
        Err(refused) => return refused,
    };
    let refusal = |sub: &Req| {
        let checks = actions::checks("Search", sub, &data.lock());
        refused(roles, user, &checks).map(|missing| forbidden(user, &missing))
    };
    super::indices::msearch(data, req, &items, &refusal)
}

/// A restore: never the global state; `cluster:admin/snapshot/restore`; then write privileges on
/// the indices it would create (`SECURITY_SNAPSHOT_RESTORE_NEEDED_WRITE_PRIVILEGES`, in the
/// plugin's order). The security index may not be restored.
async fn restore(
    shared: &Shared,
    data: &DomainData,
    user: &User,
    roles: &[Role],
    req: &Req,
) -> Result<(), Resp> {
    let body = req.json_body().unwrap_or_default();
    if body["include_global_state"].as_bool() == Some(true) {
        return Err(forbidden(
            user,
            &["cluster:admin/snapshot/restore".to_owned()],
        ));
    }
    if let Some(missing) = refused(
        roles,
        user,
        &[Check::Cluster("cluster:admin/snapshot/restore")],
    ) {
        return Err(forbidden(user, &missing));
    }
    let repo = req.segments.get(1).cloned().unwrap_or_default();
    let snap = req.segments.get(2).cloned().unwrap_or_default();
    let Some(targets) = restore_targets(shared, data, &repo, &snap, &body).await else {
        return Ok(());
    };
    if targets.iter().any(|t| t == ".opendistro_security") {
        return Err(forbidden(user, &[String::new()]));
    }
    let check = Check::Index {
        actions: vec!["indices:data/write/index", "indices:admin/create"],
        indices: targets,
    };
    match refused(roles, user, &[check]) {
        Some(missing) => Err(forbidden(user, &missing)),
        None => Ok(()),
    }
}

/// The names a restore would give its indices (`None` when the snapshot cannot be read: the
/// restore itself then answers with the reason).
async fn restore_targets(
    shared: &Shared,
    data: &DomainData,
    repo: &str,
    snap: &str,
    body: &Value,
) -> Option<Vec<String>> {
    let r = data.lock().repos.get(repo).cloned()?;
    let bytes = shared
        .blobs
        .get(&r.bucket, &r.meta_key(snap))
        .await
        .ok()??;
    let info: Value = serde_json::from_slice(&bytes).ok()?;
    let in_snapshot: Vec<String> = info["indices"]
        .as_array()?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let expr = super::indices::index_expression(&body["indices"], "_all");
    let mut selected = Vec::new();
    for part in expr.split(',') {
        if let Ok(found) = super::indices::resolve(&in_snapshot, part) {
            selected.extend(found);
        }
    }
    if expr == "_all" || expr == "*" {
        selected.extend(in_snapshot.iter().filter(|n| n.starts_with('.')).cloned());
    }
    let rename = match (
        body["rename_pattern"].as_str(),
        body["rename_replacement"].as_str(),
    ) {
        (Some(p), Some(rep)) => Some((regex::Regex::new(p).ok()?, rep.to_owned())),
        _ => None,
    };
    let mut targets: Vec<String> = selected
        .iter()
        .map(|n| match &rename {
            Some((re, rep)) => re.replace_all(n, rep.as_str()).into_owned(),
            None => n.clone(),
        })
        .collect();
    targets.sort();
    targets.dedup();
    Some(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(http::header::AUTHORIZATION, a.parse().unwrap());
        }
        h
    }

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    #[test]
    fn users_print_as_the_plugin_prints_them() {
        let u = User {
            name: "arn:aws:sts::123456789012:assumed-role/ops/s".into(),
            backend_roles: vec!["arn:aws:iam::123456789012:role/ops".into(), "b".into()],
            security_roles: vec![],
        };
        assert_eq!(
            u.to_string(),
            "User [name=arn:aws:sts::123456789012:assumed-role/ops/s, backend_roles=[arn:aws:iam::123456789012:role/ops, b], requestedTenant=null]"
        );
    }

    #[test]
    fn signed_callers_are_their_principal_and_sessions_carry_their_role() {
        let mut p = Plugin::new("OpenSearch_2.11");
        p.set_master(&MasterUser::Arn(
            "arn:aws:iam::123456789012:role/admin".into(),
        ));
        let session = Caller::Signed(crate::identity::Identity::unlimited(
            "arn:aws:iam::123456789012:role/admin",
        ));
        let user = p.authenticate(&session, &headers(None)).unwrap();
        assert_eq!(
            user.backend_roles,
            vec!["arn:aws:iam::123456789012:role/admin"]
        );
        let mapped = p.mapped_roles(&user);
        assert!(
            mapped.contains("all_access") && mapped.contains("security_manager"),
            "{mapped:?}"
        );
        let someone = Caller::Signed(crate::identity::Identity::unlimited(
            "arn:aws:iam::123456789012:user/someone",
        ));
        let user = p.authenticate(&someone, &headers(None)).unwrap();
        assert!(p.mapped_roles(&user).is_empty());
    }

    #[test]
    fn basic_auth_needs_the_internal_user_database_and_the_right_password() {
        let mut p = Plugin::new("OpenSearch_2.11");
        let master = MasterUser::Internal {
            name: "admin".into(),
            password: "Sandbox-Passw0rd!".into(),
        };
        p.set_master(&master);
        // Internal users exist, but basic auth is off without the internal user database.
        let err = p
            .authenticate(
                &Caller::Anonymous,
                &headers(Some(&basic("admin", "Sandbox-Passw0rd!"))),
            )
            .unwrap_err();
        assert_eq!(err.status(), 401);
        p.internal_db = true;
        let user = p
            .authenticate(
                &Caller::Anonymous,
                &headers(Some(&basic("admin", "Sandbox-Passw0rd!"))),
            )
            .unwrap();
        assert_eq!(user.name, "admin");
        assert!(p.mapped_roles(&user).contains("all_access"));
        let wrong = p
            .authenticate(&Caller::Anonymous, &headers(Some(&basic("admin", "nope"))))
            .unwrap_err();
        assert_eq!(wrong.status(), 401);
        assert_eq!(
            wrong.headers()["www-authenticate"],
            "Basic realm=\"OpenSearch Security\""
        );
        let nobody = p
            .authenticate(&Caller::Anonymous, &headers(None))
            .unwrap_err();
        assert_eq!(nobody.status(), 401);
        assert!(
            !p.users["admin"]["hash"]
                .as_str()
                .unwrap()
                .contains("Sandbox-Passw0rd!")
        );
    }

    #[test]
    fn a_new_master_is_added_and_no_one_is_dropped() {
        let mut p = Plugin::new("OpenSearch_2.11");
        p.set_master(&MasterUser::Arn(
            "arn:aws:iam::123456789012:user/first".into(),
        ));
        p.set_master(&MasterUser::Arn(
            "arn:aws:iam::123456789012:user/second".into(),
        ));
        assert_eq!(
            p.mappings["all_access"]["users"],
            json!([
                "arn:aws:iam::123456789012:user/first",
                "arn:aws:iam::123456789012:user/second"
            ])
        );
    }

    #[test]
    fn bulk_bodies_split_into_items_with_their_index() {
        let text = "{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"x\":1}\n{\"delete\":{\"_id\":\"2\"}}\n";
        let items = parse_bulk(text, Some("b")).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!((items[0].index.as_str(), items[0].lines.len()), ("a", 2));
        assert_eq!(
            (
                items[1].index.as_str(),
                items[1].kind.as_str(),
                items[1].lines.len()
            ),
            ("b", "delete", 1)
        );
        assert!(parse_bulk("{\"index\":{}}\n{}\n", None).is_none());
    }
}
