//! The security plugin's REST API for role mappings, roles and internal users, with the request
//! and response shapes of github:opensearch-project/security (`RolesMappingApiAction`,
//! `RolesApiAction`, `InternalUsersApiAction`, `AbstractApiAction`, `EndpointValidator`,
//! `RequestContentValidator`, `Responses`):
//!
//! - `GET|PUT|PATCH|DELETE _plugins/_security/api/rolesmapping[/<role>]`,
//!   `.../roles[/<role>]`, `.../internalusers[/<user>]`; `_opendistro/_security/api/...` too on
//!   OpenSearch (deprecated there) and only that on Elasticsearch. A domain without fine-grained
//!   access control has no such handler.
//! - Only callers mapped to `all_access` or `security_manager` (the master user is mapped to both)
//!   may call it: anyone else gets 403 "No permission to access REST API: ...".
//! - Answers are `{"status": "OK"|"CREATED"|..., "message": "'x' created."}`; validation errors
//!   `{"status": "error", "reason": "Invalid configuration", "invalid_keys": {"keys": ".."}}`.
//!   Static, reserved and hidden entities cannot be changed ("Resource 'x' is static."); a mapping
//!   must name an existing role ("role 'x' not found."); PATCH takes JSON patch `add`, `replace`
//!   and `remove` operations. Password hashes are never returned (`"hash": ""`).

use std::collections::BTreeMap;

use http::{HeaderMap, Method};
use serde_json::{Value, json};

use super::roles::Role;
use super::{Plugin, hash_password};
use crate::data_plane::{DomainData, Req};
use crate::http::{Resp, json as json_resp};
use crate::identity::Caller;

/// The entity types of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Mapping,
    Role,
    User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataType {
    Array,
    String,
    Object,
}

impl Kind {
    fn of(segment: &str) -> Option<Self> {
        match segment {
            "rolesmapping" => Some(Self::Mapping),
            "roles" => Some(Self::Role),
            "internalusers" => Some(Self::User),
            _ => None,
        }
    }

    /// The word the plugin's messages use (`EndpointValidator::resourceName`).
    fn resource(self) -> &'static str {
        match self {
            Self::Mapping => "rolesmapping",
            Self::Role => "role",
            Self::User => "user",
        }
    }

    fn allowed_keys(self) -> &'static [(&'static str, DataType)] {
        match self {
            Self::Mapping => &[
                ("backend_roles", DataType::Array),
                ("and_backend_roles", DataType::Array),
                ("hosts", DataType::Array),
                ("users", DataType::Array),
                ("description", DataType::String),
            ],
            Self::Role => &[
                ("cluster_permissions", DataType::Array),
                ("tenant_permissions", DataType::Array),
                ("index_permissions", DataType::Array),
                ("description", DataType::String),
            ],
            Self::User => &[
                ("backend_roles", DataType::Array),
                ("attributes", DataType::Object),
                ("description", DataType::String),
                ("opendistro_security_roles", DataType::Array),
                ("hash", DataType::String),
                ("password", DataType::String),
            ],
        }
    }

    fn mandatory_or_keys(self) -> &'static [&'static str] {
        match self {
            Self::Mapping => &["and_backend_roles", "backend_roles", "hosts", "users"],
            _ => &[],
        }
    }

    fn store(self, plugin: &mut Plugin) -> &mut BTreeMap<String, Value> {
        match self {
            Self::Mapping => &mut plugin.mappings,
            Self::Role => &mut plugin.roles,
            Self::User => &mut plugin.users,
        }
    }

    fn normalize(self, body: &Value) -> Value {
        match self {
            Self::Mapping => normalized_mapping(body),
            Self::Role => normalized_role(body),
            Self::User => normalized_user(body),
        }
    }
}

/// The operation names of API requests, for the request log and fault rules:
/// `(operation, target, mutating)`; `None` for any other path.
pub fn classify(method: &Method, segs: &[&str]) -> Option<(&'static str, Option<String>, bool)> {
    let [
        "_plugins" | "_opendistro",
        "_security",
        "api",
        kind,
        rest @ ..,
    ] = segs
    else {
        return None;
    };
    let name = rest.first().map(|s| (*s).to_owned());
    let one = name.is_some() && rest.len() == 1;
    let op = match (Kind::of(kind), method, one, rest.is_empty()) {
        (Some(Kind::Mapping), &Method::GET, true, _) => "GetRoleMapping",
        (Some(Kind::Mapping), &Method::GET, _, true) => "GetRoleMappings",
        (Some(Kind::Mapping), &Method::PUT, true, _) => "PutRoleMapping",
        (Some(Kind::Mapping), &Method::PATCH, _, _) => "PatchRoleMapping",
        (Some(Kind::Mapping), &Method::DELETE, true, _) => "DeleteRoleMapping",
        (Some(Kind::Role), &Method::GET, true, _) => "GetRole",
        (Some(Kind::Role), &Method::GET, _, true) => "GetRoles",
        (Some(Kind::Role), &Method::PUT, true, _) => "PutRole",
        (Some(Kind::Role), &Method::PATCH, _, _) => "PatchRole",
        (Some(Kind::Role), &Method::DELETE, true, _) => "DeleteRole",
        (Some(Kind::User), &Method::GET, true, _) => "GetInternalUser",
        (Some(Kind::User), &Method::GET, _, true) => "GetInternalUsers",
        (Some(Kind::User), &Method::PUT, true, _) => "PutInternalUser",
        (Some(Kind::User), &Method::PATCH, _, _) => "PatchInternalUser",
        (Some(Kind::User), &Method::DELETE, true, _) => "DeleteInternalUser",
        _ => "SecurityApi",
    };
    Some((op, name, *method != Method::GET && *method != Method::HEAD))
}

const OPERATIONS: &[&str] = &[
    "GetRoleMapping",
    "GetRoleMappings",
    "PutRoleMapping",
    "PatchRoleMapping",
    "DeleteRoleMapping",
    "GetRole",
    "GetRoles",
    "PutRole",
    "PatchRole",
    "DeleteRole",
    "GetInternalUser",
    "GetInternalUsers",
    "PutInternalUser",
    "PatchInternalUser",
    "DeleteInternalUser",
    "SecurityApi",
];

/// Whether `classify` named this operation.
pub fn is_api(operation: &str) -> bool {
    OPERATIONS.contains(&operation)
}

/// `{"status": "<NAME>", "message": ".."}` (`Responses.payload`).
fn payload(status: u16, message: &str) -> Resp {
    let name = match status {
        200 => "OK",
        201 => "CREATED",
        400 => "BAD_REQUEST",
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        409 => "CONFLICT",
        501 => "NOT_IMPLEMENTED",
        _ => "INTERNAL_SERVER_ERROR",
    };
    json_resp(status, &json!({"status": name, "message": message}))
}

/// `{"status": "error", "reason": ..}` and the validator's details.
fn invalid(reason: &str, details: serde_json::Map<String, Value>) -> Resp {
    let mut body = json!({"status": "error", "reason": reason});
    for (k, v) in details {
        body[k] = v;
    }
    json_resp(400, &body)
}

/// What OpenSearch answers for a path no handler serves.
fn no_handler(method: &Method, req: &Req) -> Resp {
    json_resp(
        400,
        &json!({"error": format!("no handler found for uri [/{}] and method [{method}]", req.segments.join("/"))}),
    )
}

/// Answers one API request.
pub fn handle(
    data: &DomainData,
    caller: &Caller,
    headers: &HeaderMap,
    operation: &str,
    req: &Req,
) -> Resp {
    let mut guard = data.security.lock();
    let Some(plugin) = guard.as_mut() else {
        return no_handler(&req.method, req);
    };
    if req.segments.first().map(String::as_str) == Some("_plugins") && !plugin.opensearch {
        return no_handler(&req.method, req);
    }
    let user = match plugin.authenticate(caller, headers) {
        Ok(u) => u,
        Err(resp) => return resp,
    };
    let mapped = plugin.mapped_roles(&user);
    if !mapped.contains("all_access") && !mapped.contains("security_manager") {
        let roles: Vec<&str> = mapped.iter().map(String::as_str).collect();
        return payload(
            403,
            &format!(
                "No permission to access REST API: User {} with Security roles [{}] does not have any role privileged for admin access. No ssl info found in request.",
                user.name,
                roles.join(", ")
            ),
        );
    }
    if operation == "SecurityApi" {
        let kind = req.segments.get(3).map(String::as_str).unwrap_or("");
        if Kind::of(kind).is_some() {
            return payload(
                501,
                &format!("Method {} not supported for this action.", req.method),
            );
        }
        return crate::http::os_error(
            400,
            "illegal_argument_exception",
            &format!(
                "request [{} /{}] is not supported by the snapferry sandbox",
                req.method,
                req.segments.join("/")
            ),
        );
    }
    let kind = Kind::of(&req.segments[3]).expect("classified");
    let name = req.segments.get(4).cloned();
    match req.method {
        Method::GET => get(plugin, kind, name.as_deref()),
        Method::PUT => put(plugin, kind, name.as_deref().unwrap_or_default(), req),
        Method::DELETE => delete(plugin, kind, name.as_deref().unwrap_or_default()),
        Method::PATCH => patch(plugin, kind, name.as_deref(), req),
        _ => payload(
            501,
            &format!("Method {} not supported for this action.", req.method),
        ),
    }
}

fn flag(entity: &Value, key: &str) -> bool {
    entity[key].as_bool().unwrap_or(false)
}

/// What GET shows of an entity: password hashes blanked.
fn shown(kind: Kind, entity: &Value) -> Value {
    let mut e = entity.clone();
    if kind == Kind::User {
        e["hash"] = json!("");
    }
    e
}

fn get(plugin: &mut Plugin, kind: Kind, name: Option<&str>) -> Resp {
    let store = kind.store(plugin);
    match name {
        None => {
            let all: serde_json::Map<String, Value> = store
                .iter()
                .filter(|(_, e)| !flag(e, "hidden"))
                .map(|(n, e)| (n.clone(), shown(kind, e)))
                .collect();
            json_resp(200, &Value::Object(all))
        }
        Some(n) => match store.get(n) {
            Some(e) if flag(e, "hidden") => {
                payload(404, &format!("Resource '{n}' is not available."))
            }
            Some(e) => json_resp(200, &json!({ n: shown(kind, e) })),
            None => payload(404, &format!("{} '{n}' not found.", kind.resource())),
        },
    }
}

/// `EndpointValidator::entityImmutable`: hidden, then static, then reserved.
fn immutable(name: &str, entity: Option<&Value>) -> Result<(), Resp> {
    let Some(e) = entity else {
        return Ok(());
    };
    if flag(e, "hidden") {
        Err(payload(
            404,
            &format!("Resource '{name}' is not available."),
        ))
    } else if flag(e, "static") {
        Err(payload(403, &format!("Resource '{name}' is static.")))
    } else if flag(e, "reserved") {
        Err(payload(403, &format!("Resource '{name}' is reserved.")))
    } else {
        Ok(())
    }
}

/// `RequestContentValidator`: keys, data types, array elements, the password rule.
fn validate(kind: Kind, body: &Value) -> Result<(), Resp> {
    let Some(object) = body.as_object() else {
        return Err(invalid(
            "Could not parse content of request.",
            Default::default(),
        ));
    };
    if object.is_empty() {
        return Err(invalid(
            "Request body required for this action.",
            Default::default(),
        ));
    }
    let allowed = kind.allowed_keys();
    let mut invalid_keys: Vec<&str> = object
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.iter().any(|(a, _)| a == k))
        .collect();
    invalid_keys.sort_unstable();
    let or_keys = kind.mandatory_or_keys();
    let missing_or = !or_keys.is_empty() && !or_keys.iter().any(|k| object.contains_key(*k));
    if !invalid_keys.is_empty() || missing_or {
        let mut details = serde_json::Map::new();
        if !invalid_keys.is_empty() {
            details.insert(
                "invalid_keys".into(),
                json!({"keys": invalid_keys.join(",")}),
            );
        }
        if missing_or {
            details.insert("specify_one_of".into(), json!({"keys": or_keys.join(",")}));
        }
        return Err(invalid("Invalid configuration", details));
    }
    let mut wrong = serde_json::Map::new();
    for (key, value) in object {
        let expected = allowed.iter().find(|(a, _)| a == key).map(|(_, t)| *t);
        let (ok, what) = match expected {
            Some(DataType::Array) => (value.is_array(), "Array expected"),
            Some(DataType::String) => (value.is_string(), "String expected"),
            Some(DataType::Object) => (value.is_object(), "Object expected"),
            None => (true, ""),
        };
        if !ok {
            wrong.insert(key.clone(), json!(what));
        }
    }
    if !wrong.is_empty() {
        return Err(invalid("Wrong datatype", wrong));
    }
    let blank = |v: &Value| v.is_null() || v.as_str().is_some_and(|s| s.trim().is_empty());
    if object
        .values()
        .filter_map(Value::as_array)
        .any(|a| a.iter().any(blank))
    {
        return Err(invalid(
            "`null` or blank values are not allowed as json array elements",
            Default::default(),
        ));
    }
    if let Some(password) = object.get("password").and_then(Value::as_str)
        && !strong_password(password)
    {
        return Err(invalid(PASSWORD_RULE, Default::default()));
    }
    Ok(())
}

/// What Amazon OpenSearch Service answers for a weak internal-user password.
pub const PASSWORD_RULE: &str = "Password must be at least 8 characters long and contain at least one uppercase letter, one lowercase letter, one digit, and one special character.";

/// The managed service's password rule: 8+ characters with an upper- and a lowercase letter, a
/// digit and a character that is none of those.
pub fn strong_password(p: &str) -> bool {
    p.chars().count() >= 8
        && p.chars().any(|c| c.is_ascii_uppercase())
        && p.chars().any(|c| c.is_ascii_lowercase())
        && p.chars().any(|c| c.is_ascii_digit())
        && p.chars().any(|c| !c.is_ascii_alphanumeric())
}

/// The checks a new or changed entity passes (`onConfigChange`), returning what is stored.
fn on_change(plugin: &Plugin, kind: Kind, name: &str, body: &Value) -> Result<Value, Resp> {
    immutable(name, kind_store_ref(plugin, kind).get(name))?;
    let role_exists = |role: &str| -> Result<(), Resp> {
        match plugin.roles.get(role) {
            Some(r) if flag(r, "hidden") => Err(payload(
                404,
                &format!("Resource '{role}' is not available."),
            )),
            Some(_) => Ok(()),
            None => Err(payload(404, &format!("role '{role}' not found."))),
        }
    };
    let mut entity = kind.normalize(body);
    match kind {
        Kind::Mapping => role_exists(name)?,
        Kind::Role => {}
        Kind::User => {
            for role in entity["opendistro_security_roles"]
                .as_array()
                .into_iter()
                .flatten()
            {
                role_exists(role.as_str().unwrap_or_default())?;
            }
            match body.get("password").and_then(Value::as_str) {
                Some(p) => entity["hash"] = json!(hash_password(p)),
                None if body.get("hash").is_some() => {}
                None => {
                    // An existing user keeps its password when none is given.
                    let old = plugin.users.get(name).and_then(|u| u["hash"].as_str());
                    entity["hash"] = json!(old.unwrap_or(""));
                }
            }
        }
    }
    Ok(entity)
}

fn kind_store_ref(plugin: &Plugin, kind: Kind) -> &BTreeMap<String, Value> {
    match kind {
        Kind::Mapping => &plugin.mappings,
        Kind::Role => &plugin.roles,
        Kind::User => &plugin.users,
    }
}

fn required_name(kind: Kind, name: &str) -> Result<(), Resp> {
    if name.is_empty() {
        Err(json_resp(
            400,
            &json!({"status": "BAD_REQUEST", "message": format!("No {} specified.", kind.resource())}),
        ))
    } else {
        Ok(())
    }
}

fn put(plugin: &mut Plugin, kind: Kind, name: &str, req: &Req) -> Resp {
    if let Err(r) = required_name(kind, name) {
        return r;
    }
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(_) => return invalid("Could not parse content of request.", Default::default()),
    };
    if let Err(r) = validate(kind, &body) {
        return r;
    }
    let entity = match on_change(plugin, kind, name, &body) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let existed = kind.store(plugin).insert(name.to_owned(), entity).is_some();
    if existed {
        payload(200, &format!("'{name}' updated."))
    } else {
        payload(201, &format!("'{name}' created."))
    }
}

fn delete(plugin: &mut Plugin, kind: Kind, name: &str) -> Resp {
    if let Err(r) = required_name(kind, name) {
        return r;
    }
    if let Err(r) = immutable(name, kind.store(plugin).get(name)) {
        return r;
    }
    match kind.store(plugin).remove(name) {
        Some(_) => payload(200, &format!("'{name}' deleted.")),
        None => payload(404, &format!("{} '{name}' not found.", kind.resource())),
    }
}

/// The keys the plugin keeps itself; a patch may not set them.
const BOOKKEEPING: &[&str] = &["reserved", "hidden", "static"];

fn without_bookkeeping(kind: Kind, entity: &Value) -> Value {
    let mut e = entity.clone();
    if let Some(o) = e.as_object_mut() {
        for k in BOOKKEEPING {
            o.remove(*k);
        }
        if kind == Kind::Role {
            for p in o
                .get_mut("index_permissions")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(p) = p.as_object_mut() {
                    for k in ["fls", "masked_fields"] {
                        if p.get(k)
                            .is_some_and(|v| v.as_array().is_some_and(Vec::is_empty))
                        {
                            p.remove(k);
                        }
                    }
                }
            }
        }
        if kind == Kind::User && o.get("hash").is_some_and(|h| h == "") {
            o.remove("hash");
        }
    }
    e
}

fn patch(plugin: &mut Plugin, kind: Kind, name: Option<&str>, req: &Req) -> Resp {
    let ops: Vec<Value> = match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Array(a)) if !a.is_empty() => a,
        Ok(_) => return payload(400, "Wrong request body"),
        Err(e) => return payload(400, &format!("Error in JSON patch: {e}")),
    };
    for op in &ops {
        let kind_of_op = op["op"].as_str().unwrap_or("");
        if !["add", "replace", "remove"].contains(&kind_of_op) {
            return payload(
                400,
                &format!(
                    "Unsupported patch operation: {kind_of_op}. Supported are: add,replace,remove"
                ),
            );
        }
    }
    match name {
        Some(name) => {
            if let Err(r) = immutable(name, kind.store(plugin).get(name)) {
                return r;
            }
            let Some(current) = kind.store(plugin).get(name).cloned() else {
                return payload(404, &format!("{} '{name}' not found.", kind.resource()));
            };
            let before = without_bookkeeping(kind, &current);
            let after = match apply_patch(&before, &ops) {
                Ok(v) => v,
                Err(e) => return payload(400, &e),
            };
            if after == before {
                return payload(200, "No updates required");
            }
            if let Err(r) = validate(kind, &after) {
                return r;
            }
            match on_change(plugin, kind, name, &after) {
                Ok(entity) => {
                    kind.store(plugin).insert(name.to_owned(), entity);
                    payload(200, &format!("'{name}' updated."))
                }
                Err(r) => r,
            }
        }
        None => {
            let store = kind.store(plugin).clone();
            let before: serde_json::Map<String, Value> = store
                .iter()
                .map(|(n, e)| (n.clone(), without_bookkeeping(kind, e)))
                .collect();
            let before = Value::Object(before);
            let after = match apply_patch(&before, &ops) {
                Ok(v) => v,
                Err(e) => return payload(400, &e),
            };
            if after == before {
                return payload(200, "No updates required");
            }
            let mut names: Vec<String> = ops
                .iter()
                .filter_map(|o| o["path"].as_str())
                .filter_map(|p| pointer_tokens(p).into_iter().next())
                .collect();
            names.dedup();
            let mut next = store.clone();
            for n in &names {
                let old = before.get(n);
                let new = after.get(n);
                if old.is_some()
                    && old != new
                    && let Err(r) = immutable(n, store.get(n))
                {
                    return r;
                }
                let Some(new) = new else {
                    next.remove(n);
                    continue;
                };
                if old == Some(new) {
                    continue;
                }
                if let Err(r) = validate(kind, new) {
                    return r;
                }
                match on_change(plugin, kind, n, new) {
                    Ok(entity) => {
                        next.insert(n.clone(), entity);
                    }
                    Err(r) => return r,
                }
            }
            *kind.store(plugin) = next;
            payload(200, "Resource updated.")
        }
    }
}

fn pointer_tokens(path: &str) -> Vec<String> {
    path.split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// RFC 6902 `add`, `replace` and `remove` on a JSON document.
fn apply_patch(doc: &Value, ops: &[Value]) -> Result<Value, String> {
    let mut doc = doc.clone();
    for op in ops {
        let kind = op["op"].as_str().unwrap_or("");
        let path = op["path"]
            .as_str()
            .ok_or_else(|| format!("[{kind} Operation] missing 'path'"))?;
        let tokens = pointer_tokens(path);
        let Some((last, parents)) = tokens.split_last() else {
            if kind == "remove" {
                return Err("[remove Operation] can not remove the root".into());
            }
            doc = op.get("value").cloned().unwrap_or(Value::Null);
            continue;
        };
        let mut target = &mut doc;
        for t in parents {
            target = match target {
                Value::Object(o) => o.get_mut(t),
                Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
                _ => None,
            }
            .ok_or_else(|| {
                format!("[{kind} Operation] noSuchPath in source, path provided : {path}")
            })?;
        }
        let missing = || format!("[{kind} Operation] noSuchPath in source, path provided : {path}");
        match (kind, target) {
            ("add", Value::Object(o)) => {
                o.insert(
                    last.clone(),
                    op.get("value").cloned().unwrap_or(Value::Null),
                );
            }
            ("add", Value::Array(a)) => {
                let value = op.get("value").cloned().unwrap_or(Value::Null);
                if last == "-" {
                    a.push(value);
                } else {
                    let i = last
                        .parse::<usize>()
                        .ok()
                        .filter(|i| *i <= a.len())
                        .ok_or_else(missing)?;
                    a.insert(i, value);
                }
            }
            ("replace", Value::Object(o)) if o.contains_key(last) => {
                o.insert(
                    last.clone(),
                    op.get("value").cloned().unwrap_or(Value::Null),
                );
            }
            ("replace", Value::Array(a)) => {
                let slot = last
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| a.get_mut(i))
                    .ok_or_else(missing)?;
                *slot = op.get("value").cloned().unwrap_or(Value::Null);
            }
            ("remove", Value::Object(o)) => {
                o.remove(last).ok_or_else(missing)?;
            }
            ("remove", Value::Array(a)) => {
                let i = last
                    .parse::<usize>()
                    .ok()
                    .filter(|i| *i < a.len())
                    .ok_or_else(missing)?;
                a.remove(i);
            }
            _ => return Err(missing()),
        }
    }
    Ok(doc)
}

fn strings(v: &Value) -> Value {
    Value::Array(
        v.as_array()
            .map(|a| a.iter().filter(|x| x.is_string()).cloned().collect())
            .unwrap_or_default(),
    )
}

/// A mapping as the plugin stores and shows it.
pub fn normalized_mapping(body: &Value) -> Value {
    let mut m = json!({
        "hosts": strings(&body["hosts"]),
        "users": strings(&body["users"]),
        "reserved": false,
        "hidden": false,
        "backend_roles": strings(&body["backend_roles"]),
        "and_backend_roles": strings(&body["and_backend_roles"]),
    });
    if let Some(d) = body["description"].as_str() {
        m["description"] = json!(d);
    }
    m
}

fn normalized_role(body: &Value) -> Value {
    Role::from_request(body).to_json()
}

/// An internal user as the plugin stores it (`hash` is set by the caller).
pub fn normalized_user(body: &Value) -> Value {
    let mut u = json!({
        "hash": body["hash"].as_str().unwrap_or(""),
        "reserved": false,
        "hidden": false,
        "backend_roles": strings(&body["backend_roles"]),
        "attributes": body["attributes"].as_object().cloned().map(Value::Object).unwrap_or(json!({})),
        "opendistro_security_roles": strings(&body["opendistro_security_roles"]),
        "static": false,
    });
    if let Some(d) = body["description"].as_str() {
        u["description"] = json!(d);
    }
    u
}

/// A stored role, for permission checks.
pub fn role_of_json(v: &Value) -> Role {
    let mut role = Role::from_request(v);
    role.reserved = flag(v, "reserved");
    role.hidden = flag(v, "hidden");
    role.is_static = flag(v, "static");
    role
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_are_classified_with_their_target() {
        let c = |m: Method, p: &str| {
            let segs: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
            classify(&m, &segs)
        };
        assert_eq!(
            c(
                Method::PUT,
                "/_plugins/_security/api/rolesmapping/manage_snapshots"
            ),
            Some(("PutRoleMapping", Some("manage_snapshots".into()), true))
        );
        assert_eq!(
            c(Method::GET, "/_opendistro/_security/api/roles"),
            Some(("GetRoles", None, false))
        );
        assert_eq!(
            c(Method::GET, "/_plugins/_security/api/tenants"),
            Some(("SecurityApi", None, false))
        );
        assert_eq!(c(Method::GET, "/_plugins/_security/authinfo"), None);
        assert_eq!(c(Method::GET, "/movies/_search"), None);
    }

    #[test]
    fn patches_add_replace_and_remove() {
        let doc = json!({"users": ["a"], "backend_roles": []});
        let out = apply_patch(
            &doc,
            &[
                json!({"op": "add", "path": "/users/-", "value": "b"}),
                json!({"op": "replace", "path": "/backend_roles", "value": ["r"]}),
                json!({"op": "add", "path": "/description", "value": "d"}),
                json!({"op": "remove", "path": "/users/0"}),
            ],
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"users": ["b"], "backend_roles": ["r"], "description": "d"})
        );
        assert!(
            apply_patch(
                &doc,
                &[json!({"op": "replace", "path": "/nothere", "value": 1})]
            )
            .is_err()
        );
        assert!(apply_patch(&doc, &[json!({"op": "remove", "path": "/users/3"})]).is_err());
    }

    #[test]
    fn bodies_are_validated_like_the_plugin_does() {
        assert!(validate(Kind::Mapping, &json!({"users": ["a"]})).is_ok());
        assert_eq!(
            validate(Kind::Mapping, &json!({"users": "a"}))
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            validate(Kind::Mapping, &json!({"description": "only"}))
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            validate(Kind::Mapping, &json!({"users": [], "reserved": true}))
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            validate(Kind::User, &json!({"password": "short"}))
                .unwrap_err()
                .status(),
            400
        );
        assert!(validate(Kind::User, &json!({"password": "Long-enough1"})).is_ok());
        assert!(strong_password("Sandbox-Passw0rd!"));
        assert!(!strong_password("sandbox-passw0rd!"));
        assert!(!strong_password("SandboxPassw0rd"));
    }
}
