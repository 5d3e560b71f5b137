//! `security`: on a domain with fine-grained access control (FGAC), IAM permission is not
//! enough — the security plugin refuses the snapshot API and the reads snapferry makes unless
//! the identity is mapped to a role that allows them (REAL-AWS.md, "Fine-grained access
//! control"; AWS's "Registering a manual snapshot repository" asks for the identity that passes
//! the snapshot role to be mapped before `PUT _snapshot/<repo>`). This step makes, before the
//! domain's repository is registered:
//!
//! - the security role `snapferry`, allowing exactly what snapferry does on that side
//!   ([`role_body`]): the snapshot API, `GET /`, cluster health and state, and on every index
//!   the reads of `_cat/indices`, `_recovery`, `_settings` and `_data_stream`, and the counts
//!   (`_msearch`: `indices:data/read/msearch` then a search of each index); on the target also what a restore
//!   writes (`indices:admin/create`, `indices:data/write/index`, aliases) and, with
//!   `on_conflict: replace`, `indices:admin/delete` and `indices:admin/close`. The built-in
//!   `manage_snapshots` is not enough (no `_cat/indices`, no `_count`). With the metadata and
//!   dashboards steps, [`role_for`] adds what they do: the template, pipeline, script and ISM
//!   actions (reads on the source; writes, and deletes with `prune`, on the target) and the
//!   saved-objects index and custom tenants the plan names.
//! - its mapping: the snapshot role as a backend role, and the identity snapferry signs with
//!   (an IAM user by its ARN; a role — the domain's `assume_role_arn` or the role of the
//!   caller's session — as a backend role). An existing mapping is added to with JSON-patch
//!   `add` operations on `/backend_roles/-` and `/users/-`, so nobody's backend roles, users or
//!   hosts are dropped.
//!
//! Who calls the security API: the domain's master. On the target the plan names it: an IAM
//! master is reached by signing (it must be the identity snapferry runs as, or mapped to
//! `all_access`/`security_manager`); an internal master with HTTP basic auth, its password read
//! from the plan's password source only to be sent (never logged, recorded or shown). On the
//! source the master is not in the plan, so snapferry signs and a refusal blocks the step with
//! the exact mapping to make by hand. `security: false` keeps the step as a check only: a
//! missing mapping is blocked with that same fix.
//!
//! What was added is recorded in the node's outputs (`created_role`, `created_mapping`,
//! `added_backend_roles`, `added_users`; pinned before the call that adds them, so a crash in
//! between records them all the same), and `destroy` removes exactly that: an entry that was
//! there before stays, and the role and mapping go only when snapferry created them and nobody
//! else is left in the mapping.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use http::Method;
use serde_json::{Value, json};
use snapferry_engine::{
    Change, Context, FieldValue, Inputs, NodeId, Observed, Outputs, Progress, Resource,
    ResourceError,
};
use snapferry_plan::{MasterUser, RepositorySide, RoleSpec, SecurityNode};

use super::{Env, changed, created, created_unknown, fail};
use crate::domain_http::{DomainHttp, DomainHttpError};
use crate::error::AwsError;
use crate::secret::SecretError;

/// The security role (and mapping) snapferry makes and maps its identities to.
pub const ROLE_NAME: &str = "snapferry";

pub(crate) struct SecurityResource {
    id: NodeId,
    fingerprint: String,
    spec: SecurityNode,
    env: Arc<Env>,
    /// The outputs the state recorded for this node, as its last `read` saw them (`wait`
    /// adds this run's additions to them).
    recorded: Mutex<Outputs>,
}

/// Who must be mapped: backend roles and users.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Identities {
    backend_roles: Vec<String>,
    users: Vec<String>,
}

/// The cluster and index permissions of the `snapferry` role on one side.
pub fn role_body(side: RepositorySide, replace: bool) -> Value {
    let mut cluster = vec![
        "cluster:monitor/main",
        "cluster:monitor/health",
        "cluster:monitor/state",
        "cluster:admin/repository/*",
        "cluster:admin/snapshot/*",
        // Counts are one `_msearch` (a cluster permission for the plugin), then a search of
        // each index.
        "indices:data/read/msearch",
    ];
    let mut index = vec![
        "indices:monitor/settings/get",
        "indices:monitor/stats",
        "indices:monitor/recovery",
        "indices:admin/data_stream/get",
        "indices:data/read/search",
    ];
    if side == RepositorySide::Target {
        cluster.push("cluster:monitor/allocation/explain");
        index.extend([
            "indices:admin/create",
            "indices:data/write/index",
            "indices:admin/aliases",
        ]);
        if replace {
            index.extend(["indices:admin/delete", "indices:admin/close"]);
        }
    }
    json!({
        "description": "snapferry: snapshots, the reads that select and verify indices, and restores",
        "cluster_permissions": cluster,
        "index_permissions": [{"index_patterns": ["*"], "allowed_actions": index}],
    })
}

/// [`role_body`] plus what the plan's metadata and dashboards steps do on that side: reading
/// the source's templates, pipelines, scripts, ISM policies and their attachments and its
/// tenants' saved objects; writing them on the target (deleting only with `prune`), attaching
/// ISM policies to the restored indices.
pub fn role_for(spec: &SecurityNode) -> Value {
    let mut role = role_body(spec.side, spec.replace);
    let target = spec.side == RepositorySide::Target;
    let mut cluster: Vec<&str> = Vec::new();
    let mut index: Vec<&str> = Vec::new();
    if spec.metadata {
        // The security plugin counts template actions as cluster permissions, whatever their
        // prefix (its `isClusterPerm`); every ISM action is a cluster permission too.
        cluster.extend([
            "indices:admin/index_template/get",
            "cluster:admin/component_template/get",
            "indices:admin/template/get",
            "cluster:admin/ingest/pipeline/get",
            "cluster:admin/opendistro/ism/policy/get",
            "cluster:admin/opendistro/ism/policy/search",
            "cluster:admin/opendistro/ism/managedindex/explain",
        ]);
        if target {
            cluster.extend([
                "indices:admin/index_template/put",
                "cluster:admin/component_template/put",
                "indices:admin/template/put",
                "cluster:admin/ingest/pipeline/put",
                "cluster:admin/ingest/pipeline/simulate",
                "cluster:admin/script/put",
                "cluster:admin/opendistro/ism/policy/write",
                "cluster:admin/opendistro/ism/managedindex/add",
                "cluster:admin/opendistro/ism/managedindex/remove",
            ]);
            if spec.prune {
                cluster.extend([
                    "indices:admin/index_template/delete",
                    "cluster:admin/component_template/delete",
                    "indices:admin/template/delete",
                    "cluster:admin/ingest/pipeline/delete",
                    "cluster:admin/script/delete",
                    "cluster:admin/opendistro/ism/policy/delete",
                ]);
            }
        }
    }
    let mut tenants = Vec::new();
    if !spec.tenants.is_empty() {
        // Dashboards searches (and on the target writes) the saved-objects index as the
        // signed-in user, in the tenant the request names.
        index.push("indices:data/read/search");
        if target {
            cluster.push("indices:data/write/bulk");
            index.push("indices:data/write/index");
        }
        let custom: Vec<&String> = spec
            .tenants
            .iter()
            .filter(|t| !matches!(t.as_str(), "global" | "private"))
            .collect();
        if !custom.is_empty() {
            let action = if target {
                "kibana_all_write"
            } else {
                "kibana_all_read"
            };
            tenants.push(json!({"tenant_patterns": custom, "allowed_actions": [action]}));
        }
    }
    if let Some(have) = role["cluster_permissions"].as_array_mut() {
        for c in cluster {
            if !have.iter().any(|h| h == c) {
                have.push(json!(c));
            }
        }
    }
    if !index.is_empty() {
        let perms = role["index_permissions"].as_array_mut().expect("role_body");
        let mut saved_objects = Vec::new();
        for a in index {
            saved_objects.push(json!(a));
        }
        perms.push(json!({
            "index_patterns": [".kibana*", ".opensearch_dashboards*"],
            "allowed_actions": saved_objects,
        }));
    }
    if !tenants.is_empty() {
        role["tenant_permissions"] = json!(tenants);
    }
    role
}

/// The parts of a role that decide what it allows (what the API adds is left out).
fn role_core(role: &Value) -> Value {
    let index: Vec<Value> = role["index_permissions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            json!({
                "index_patterns": p["index_patterns"],
                "allowed_actions": p["allowed_actions"],
            })
        })
        .collect();
    let tenants: Vec<Value> = role["tenant_permissions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            json!({
                "tenant_patterns": p["tenant_patterns"],
                "allowed_actions": p["allowed_actions"],
            })
        })
        .collect();
    let mut core = json!({
        "cluster_permissions": role["cluster_permissions"],
        "index_permissions": index,
    });
    // The API shows `tenant_permissions: []` on every role; only a grant is part of the core.
    if !tenants.is_empty() {
        core["tenant_permissions"] = json!(tenants);
    }
    core
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_owned))
        .collect()
}

fn missing(have: &[String], want: &[String]) -> Vec<String> {
    want.iter().filter(|w| !have.contains(w)).cloned().collect()
}

fn recorded_list(outputs: &Outputs, key: &str) -> Vec<String> {
    outputs
        .get(key)
        .and_then(FieldValue::as_known)
        .map(strings)
        .unwrap_or_default()
}

fn recorded_flag(outputs: &Outputs, key: &str) -> bool {
    outputs
        .get(key)
        .and_then(FieldValue::as_known)
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// What the state recorded for `id` (given under the node's own id to `read` and `destroy`).
fn own_outputs(id: &NodeId, inputs: &Inputs) -> Outputs {
    inputs
        .iter()
        .find_map(|(node, upstream)| match upstream {
            snapferry_engine::Upstream::Known(outputs) if node == id => Some(outputs.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

fn union(a: Vec<String>, b: Vec<String>) -> Vec<String> {
    let set: BTreeSet<String> = a.into_iter().chain(b).collect();
    set.into_iter().collect()
}

impl SecurityResource {
    pub(crate) fn new(
        id: NodeId,
        fingerprint: String,
        spec: &SecurityNode,
        env: &Arc<Env>,
    ) -> Self {
        SecurityResource {
            id,
            fingerprint,
            spec: spec.clone(),
            env: env.clone(),
            recorded: Mutex::new(Outputs::new()),
        }
    }

    fn domain(&self) -> &str {
        &self.spec.domain.name
    }

    /// The snapshot role's ARN (a managed role's is derived: its account is the source's).
    async fn snapshot_role_arn(&self) -> Result<String, ResourceError> {
        match &self.spec.role {
            RoleSpec::Existing { arn, .. } => Ok(arn.clone()),
            RoleSpec::Managed { name, path, .. } => {
                let account = self.env.account_id().await.map_err(|e| fail(&self.id, e))?;
                Ok(format!(
                    "arn:{}:iam::{account}:role{path}{name}",
                    self.env.partition().as_str()
                ))
            }
        }
    }

    /// The identity snapferry signs this domain's requests with, as the plugin maps it.
    async fn signer(&self) -> Result<Identities, ResourceError> {
        if let Some(role) = &self.spec.domain.assume_role_arn {
            return Ok(Identities {
                backend_roles: vec![role.clone()],
                users: Vec::new(),
            });
        }
        let clients = self
            .env
            .for_domain(&self.spec.domain)
            .await
            .map_err(|e| fail(&self.id, e))?;
        let identity = clients
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| {
                fail(
                    &self.id,
                    AwsError::from_sdk("caller identity", "sts", "GetCallerIdentity", e),
                )
            })?;
        let arn = identity.arn().unwrap_or_default().to_owned();
        // A role session (`arn:aws:sts::A:assumed-role/Name/session`) is its role.
        if let Some(rest) = arn.split_once(":assumed-role/").map(|(head, rest)| {
            let role = rest.split('/').next().unwrap_or_default();
            (head.replacen(":sts:", ":iam:", 1), role.to_owned())
        }) {
            return Ok(Identities {
                backend_roles: vec![format!("{}:role/{}", rest.0, rest.1)],
                users: Vec::new(),
            });
        }
        Ok(Identities {
            backend_roles: Vec::new(),
            users: vec![arn],
        })
    }

    async fn wanted(&self) -> Result<Identities, ResourceError> {
        let mut want = self.signer().await?;
        let role = self.snapshot_role_arn().await?;
        if !want.backend_roles.contains(&role) {
            want.backend_roles.insert(0, role);
        }
        Ok(want)
    }

    /// The security API's base path on this engine.
    fn api(engine: &str) -> &'static str {
        if engine.starts_with("Elasticsearch_") {
            "_opendistro/_security/api"
        } else {
            "_plugins/_security/api"
        }
    }

    /// The client that calls the security API: signed, or the target's internal master by
    /// basic auth (`Err` with the reason when its password cannot be read).
    async fn api_client(&self) -> Result<Option<Result<DomainHttp, String>>, ResourceError> {
        let Some(client) = self
            .env
            .data_plane(&self.spec.domain)
            .await
            .map_err(|e| fail(&self.id, e))?
        else {
            return Ok(None);
        };
        let http = client.http().clone();
        Ok(Some(match &self.spec.master {
            Some(MasterUser::Internal { name, password }) => {
                match self.env.master_password(password, &self.spec.domain).await {
                    Ok(p) => {
                        Ok(http.with_basic_auth(name, secrecy::ExposeSecret::expose_secret(&p)))
                    }
                    Err(SecretError::Unusable(reason)) => Err(reason),
                    Err(SecretError::Aws(e)) => return Err(fail(&self.id, e)),
                }
            }
            _ => Ok(http),
        }))
    }

    /// `GET <api>/<kind>/snapferry`: the entity, `None` when absent.
    async fn get(
        &self,
        http: &DomainHttp,
        api: &str,
        kind: &str,
    ) -> Result<Option<Value>, DomainHttpError> {
        match http
            .send(Method::GET, &format!("/{api}/{kind}/{ROLE_NAME}"), None)
            .await
        {
            Ok(response) => {
                let body: Value = serde_json::from_slice(&response.body).unwrap_or_default();
                Ok(body.get(ROLE_NAME).cloned())
            }
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn who(&self) -> String {
        match &self.spec.master {
            Some(MasterUser::Internal { name, password }) => {
                format!("internal master user {name} (password from {password})")
            }
            _ => "the identity snapferry signs with".to_owned(),
        }
    }

    /// The fix when snapferry may not (or must not) make the mapping: the calls to make by hand.
    fn by_hand(&self, api: &str, want: &Identities) -> String {
        let role = role_for(&self.spec);
        let mut ops: Vec<Value> = Vec::new();
        for b in &want.backend_roles {
            ops.push(json!({"op": "add", "path": "/backend_roles/-", "value": b}));
        }
        for u in &want.users {
            ops.push(json!({"op": "add", "path": "/users/-", "value": u}));
        }
        format!(
            "as domain {}'s master user, make the mapping by hand: `PUT {api}/roles/{ROLE_NAME}` \
             with {role}, then `PATCH {api}/rolesmapping/{ROLE_NAME}` with {} (or `PUT` it with \
             {} when it does not exist)",
            self.domain(),
            Value::Array(ops),
            json!({"backend_roles": want.backend_roles, "users": want.users}),
        )
    }

    /// The change the observed value calls for (`diff` without the blocked cases).
    fn changes(&self, observed: &Value) -> (Vec<snapferry_engine::FieldChange>, Option<String>) {
        let want = Identities {
            backend_roles: strings(&observed["want"]["backend_roles"]),
            users: strings(&observed["want"]["users"]),
        };
        let desired = role_for(&self.spec);
        let mut fields = Vec::new();
        let mut foreign = None;
        match observed.get("role").filter(|r| !r.is_null()) {
            None => fields.push(created(&format!("role.{ROLE_NAME}"), role_core(&desired))),
            Some(live) if role_core(live) == role_core(&desired) => {}
            Some(live) if observed["created_role"].as_bool() == Some(true) => fields.push(changed(
                &format!("role.{ROLE_NAME}"),
                role_core(live),
                role_core(&desired),
            )),
            Some(_) => {
                foreign = Some(format!(
                    "domain {} has a security role {ROLE_NAME} that snapferry did not create and \
                     that allows other actions than snapferry needs; delete it (snapferry then \
                     makes its own), or make it allow exactly {}",
                    self.domain(),
                    role_core(&desired)
                ))
            }
        }
        let mapping = observed.get("mapping").filter(|m| !m.is_null());
        for (key, want) in [
            ("backend_roles", &want.backend_roles),
            ("users", &want.users),
        ] {
            let have = mapping.map(|m| strings(&m[key])).unwrap_or_default();
            let add = missing(&have, want);
            if add.is_empty() {
                continue;
            }
            let path = format!("mapping.{ROLE_NAME}.{key}");
            let after: Vec<String> = have.iter().cloned().chain(add).collect();
            fields.push(if mapping.is_none() {
                created(&path, json!(after))
            } else {
                changed(&path, json!(have), json!(after))
            });
        }
        (fields, foreign)
    }

    /// The live role and mapping, read with `recorded` (the node's outputs in the state).
    async fn observe(&self, recorded: Outputs) -> Result<Observed, ResourceError> {
        let want = self.wanted().await?;
        let want_value = json!({"backend_roles": want.backend_roles, "users": want.users});
        let status = self
            .env
            .describe_domain(&self.spec.domain)
            .await
            .map_err(|e| fail(&self.id, e))?;
        let Some(status) = status.filter(|s| super::endpoint_of(s).is_some()) else {
            return Ok(Observed {
                value: json!({"want": want_value}),
                ..Observed::absent()
            });
        };
        let fgac = status
            .advanced_security_options()
            .and_then(|a| a.enabled())
            .unwrap_or(false);
        if !fgac {
            return Ok(Observed::present(json!({"fgac": false})).with_outputs(recorded));
        }
        let api = Self::api(status.engine_version().unwrap_or_default());
        let mut value = json!({
            "fgac": true,
            "api": api,
            "want": want_value,
            "created_role": recorded_flag(&recorded, "created_role"),
        });
        let client = match self.api_client().await? {
            Some(Ok(client)) => client,
            Some(Err(reason)) => {
                value["refused"] = json!(reason);
                return Ok(Observed::present(value).with_outputs(recorded));
            }
            None => {
                return Ok(Observed {
                    value: json!({"want": want_value}),
                    ..Observed::absent()
                });
            }
        };
        let what = |kind: &str| {
            format!(
                "security {kind} {ROLE_NAME} on {} as {}",
                self.domain(),
                self.who()
            )
        };
        for kind in ["roles", "rolesmapping"] {
            match self.get(&client, api, kind).await {
                Ok(found) => {
                    let key = if kind == "roles" { "role" } else { "mapping" };
                    value[key] = found.unwrap_or(Value::Null);
                }
                Err(e) if matches!(e.status(), Some(401 | 403)) => {
                    value["refused"] = json!(format!(
                        "the security API of domain {} refused {}: {}",
                        self.domain(),
                        self.who(),
                        super::chain(&e)
                    ));
                    break;
                }
                Err(e) => return Err(super::fail_domain(&self.id, &what(kind), e)),
            }
        }
        Ok(Observed::present(value).with_outputs(recorded))
    }
}

#[async_trait]
impl Resource for SecurityResource {
    fn id(&self) -> &NodeId {
        &self.id
    }

    fn kind(&self) -> &'static str {
        super::SECURITY.name
    }

    fn desired_fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    async fn read(&self, _cx: &Context, inputs: &Inputs) -> Result<Observed, ResourceError> {
        let recorded = own_outputs(&self.id, inputs);
        *self.recorded.lock().expect("recorded lock") = recorded.clone();
        self.observe(recorded).await
    }

    fn diff(&self, _inputs: &Inputs, observed: &Observed) -> Change {
        let value = &observed.value;
        let want = Identities {
            backend_roles: strings(&value["want"]["backend_roles"]),
            users: strings(&value["want"]["users"]),
        };
        if !observed.exists {
            // A target still to be created: with FGAC when the plan names its master.
            if self.spec.side == RepositorySide::Target && self.spec.master.is_none() {
                return Change::Create {
                    fields: vec![created_unknown(&format!("mapping.{ROLE_NAME}"))],
                };
            }
            let fields = vec![
                created(
                    &format!("role.{ROLE_NAME}"),
                    role_core(&role_for(&self.spec)),
                ),
                created(
                    &format!("mapping.{ROLE_NAME}.backend_roles"),
                    json!(want.backend_roles),
                ),
            ];
            let mut fields = fields;
            if !want.users.is_empty() {
                fields.push(created(
                    &format!("mapping.{ROLE_NAME}.users"),
                    json!(want.users),
                ));
            }
            if !self.spec.manage {
                // Checked at its turn, once the domain exists: apply creates the domain and
                // stops here (blocked, with the calls) unless the mapping is in place by then.
                return Change::deferred(format!(
                    "`security: false`: checked once domain {} exists; snapferry does not map \
                     its identities there, so unless its master is the identity snapferry signs \
                     with, apply stops here after creating it, and then {}",
                    self.domain(),
                    self.by_hand("_plugins/_security/api", &want)
                ));
            }
            return Change::Create { fields };
        }
        if value["fgac"] != json!(true) {
            return Change::NoOp;
        }
        let api = value["api"].as_str().unwrap_or("_plugins/_security/api");
        if let Some(refused) = value["refused"].as_str() {
            return Change::Blocked {
                reason: format!(
                    "domain {} has fine-grained access control and snapferry cannot make its \
                     mapping ({refused}); {}, or name a master snapferry can act as",
                    self.domain(),
                    self.by_hand(api, &want)
                ),
            };
        }
        let (fields, foreign) = self.changes(value);
        if let Some(reason) = foreign {
            return Change::Blocked { reason };
        }
        if fields.is_empty() {
            return Change::NoOp;
        }
        if !self.spec.manage {
            return Change::Blocked {
                reason: format!(
                    "`security: false`: domain {} has fine-grained access control and lacks the \
                     mapping snapferry needs; {}, or remove `security: false`",
                    self.domain(),
                    self.by_hand(api, &want)
                ),
            };
        }
        if value.get("role").is_some_and(|r| !r.is_null())
            || value.get("mapping").is_some_and(|m| !m.is_null())
        {
            Change::Update { fields }
        } else {
            Change::Create { fields }
        }
    }

    async fn apply(
        &self,
        cx: &Context,
        _inputs: &Inputs,
        _change: &Change,
    ) -> Result<(), ResourceError> {
        // Read fresh: the change is made against what is there now.
        let recorded = self.recorded.lock().expect("recorded lock").clone();
        let observed = self.observe(recorded).await?;
        let value = &observed.value;
        if !observed.exists || value["fgac"] != json!(true) {
            return Ok(());
        }
        let api = value["api"].as_str().unwrap_or("_plugins/_security/api");
        let client = match self.api_client().await? {
            Some(Ok(client)) => client,
            Some(Err(reason)) => return Err(ResourceError::permanent(&self.id, reason)),
            None => return Ok(()),
        };
        let want = Identities {
            backend_roles: strings(&value["want"]["backend_roles"]),
            users: strings(&value["want"]["users"]),
        };
        let role_absent = value["role"].is_null();
        let mapping = value.get("mapping").filter(|m| !m.is_null()).cloned();
        // What this run adds, pinned before the calls so a crash after them records it too.
        cx.pin("added", || {
            json!({
                "created_role": role_absent,
                "created_mapping": mapping.is_none(),
                "backend_roles": missing(
                    &mapping.as_ref().map(|m| strings(&m["backend_roles"])).unwrap_or_default(),
                    &want.backend_roles,
                ),
                "users": missing(
                    &mapping.as_ref().map(|m| strings(&m["users"])).unwrap_or_default(),
                    &want.users,
                ),
            })
        })
        .await?;
        let desired = role_for(&self.spec);
        let send = |method: Method, path: String, body: Value| {
            let client = client.clone();
            async move {
                client
                    .send(method.clone(), &path, Some(&body))
                    .await
                    .map_err(|e| {
                        super::fail_domain(
                            &self.id,
                            &format!("{method} {path} on {} as {}", self.domain(), self.who()),
                            e,
                        )
                    })
            }
        };
        let role_differs = value
            .get("role")
            .filter(|r| !r.is_null())
            .is_some_and(|r| role_core(r) != role_core(&desired));
        if role_absent || role_differs {
            send(
                Method::PUT,
                format!("/{api}/roles/{ROLE_NAME}"),
                desired.clone(),
            )
            .await?;
        }
        match &mapping {
            None => {
                // Added to the collection (`PUT` on an entity would do the same). A mapping someone
                // made between the read just above and this call would be replaced: a window of
                // one request, which `wait`'s outputs do not hide (it is recorded as created).
                send(
                    Method::PATCH,
                    format!("/{api}/rolesmapping"),
                    json!([{"op": "add", "path": format!("/{ROLE_NAME}"), "value": {
                        "backend_roles": want.backend_roles,
                        "users": want.users,
                    }}]),
                )
                .await?;
            }
            Some(m) => {
                let mut ops = Vec::new();
                for (key, want) in [
                    ("backend_roles", &want.backend_roles),
                    ("users", &want.users),
                ] {
                    for entry in missing(&strings(&m[key]), want) {
                        ops.push(json!({"op": "add", "path": format!("/{key}/-"), "value": entry}));
                    }
                }
                if !ops.is_empty() {
                    send(
                        Method::PATCH,
                        format!("/{api}/rolesmapping/{ROLE_NAME}"),
                        Value::Array(ops),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn wait(
        &self,
        cx: &Context,
        _inputs: &Inputs,
        _progress: &Progress,
    ) -> Result<Outputs, ResourceError> {
        let recorded = self.recorded.lock().expect("recorded lock").clone();
        let added = cx.pin("added", || Value::Null).await?;
        let mut out = Outputs::new();
        let flag = |key: &str| recorded_flag(&recorded, key) || added[key].as_bool() == Some(true);
        out.insert(
            "created_role".into(),
            FieldValue::Known(json!(flag("created_role"))),
        );
        out.insert(
            "created_mapping".into(),
            FieldValue::Known(json!(flag("created_mapping"))),
        );
        for (key, pinned) in [
            ("added_backend_roles", "backend_roles"),
            ("added_users", "users"),
        ] {
            let all = union(recorded_list(&recorded, key), strings(&added[pinned]));
            out.insert(key.into(), FieldValue::Known(json!(all)));
        }
        out.insert(
            "domain".into(),
            FieldValue::Known(json!(self.spec.domain.name)),
        );
        Ok(out)
    }

    /// Removes what the step added: its entries from the mapping (an entry that was there
    /// before is not recorded, so it stays), the mapping and the role when snapferry created
    /// them and nobody else is left in the mapping.
    async fn destroy(&self, _cx: &Context, inputs: &Inputs) -> Result<(), ResourceError> {
        let recorded = own_outputs(&self.id, inputs);
        let added_roles = recorded_list(&recorded, "added_backend_roles");
        let added_users = recorded_list(&recorded, "added_users");
        let Some(status) = self
            .env
            .describe_domain(&self.spec.domain)
            .await
            .map_err(|e| fail(&self.id, e))?
        else {
            return Ok(());
        };
        if !status
            .advanced_security_options()
            .and_then(|a| a.enabled())
            .unwrap_or(false)
        {
            return Ok(());
        }
        let api = Self::api(status.engine_version().unwrap_or_default());
        let client = match self.api_client().await? {
            Some(Ok(client)) => client,
            Some(Err(reason)) => return Err(ResourceError::permanent(&self.id, reason)),
            None => return Ok(()),
        };
        let what = format!(
            "security mapping {ROLE_NAME} on {} as {}",
            self.domain(),
            self.who()
        );
        let mapping = self
            .get(&client, api, "rolesmapping")
            .await
            .map_err(|e| super::fail_domain(&self.id, &what, e))?;
        let mut left_empty = true;
        if let Some(mapping) = &mapping {
            let mut ops = Vec::new();
            for (key, ours) in [("backend_roles", &added_roles), ("users", &added_users)] {
                let have = strings(&mapping[key]);
                let keep: Vec<String> =
                    have.iter().filter(|h| !ours.contains(h)).cloned().collect();
                if keep.len() != have.len() {
                    ops.push(json!({"op": "replace", "path": format!("/{key}"), "value": keep}));
                }
                left_empty &= keep.is_empty();
            }
            for key in ["hosts", "and_backend_roles"] {
                left_empty &= strings(&mapping[key]).is_empty();
            }
            let delete_mapping = left_empty && recorded_flag(&recorded, "created_mapping");
            if delete_mapping {
                client
                    .send(
                        Method::DELETE,
                        &format!("/{api}/rolesmapping/{ROLE_NAME}"),
                        None,
                    )
                    .await
                    .map_err(|e| super::fail_domain(&self.id, &what, e))?;
            } else if !ops.is_empty() {
                client
                    .send(
                        Method::PATCH,
                        &format!("/{api}/rolesmapping/{ROLE_NAME}"),
                        Some(&Value::Array(ops)),
                    )
                    .await
                    .map_err(|e| super::fail_domain(&self.id, &what, e))?;
            }
            left_empty = delete_mapping;
        }
        if left_empty && recorded_flag(&recorded, "created_role") {
            match client
                .send(Method::DELETE, &format!("/{api}/roles/{ROLE_NAME}"), None)
                .await
            {
                Ok(_) => {}
                Err(e) if e.status() == Some(404) => {}
                Err(e) => {
                    return Err(super::fail_domain(
                        &self.id,
                        &format!("security role {ROLE_NAME} on {}", self.domain()),
                        e,
                    ));
                }
            }
        }
        Ok(())
    }
}
