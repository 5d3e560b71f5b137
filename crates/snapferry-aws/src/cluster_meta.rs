//! The cluster metadata around the indices, as the metadata, ISM and dashboards steps read and
//! write it: index templates (composable `_index_template`, `_component_template`, legacy
//! `_template`), ingest pipelines, stored scripts and search templates, ISM policies and
//! managed indices, and the Dashboards (Kibana) saved objects. None of it is in a snapshot
//! restored with `include_global_state: false`.
//!
//! What a domain serves follows from its engine version ([`Capabilities`]): composable templates
//! from Elasticsearch 7.8, data streams from 7.9, ISM under `_opendistro/_ism` from 6.8 and under
//! `_plugins/_ism` on OpenSearch, `ism_template` from 7.10, Dashboards under `/_dashboards` on
//! OpenSearch and Kibana under `/_plugin/kibana` on Elasticsearch. Each object is kept in the
//! form the server gives back on GET with the fields the server fills in itself removed
//! ([`normalize`]), so a source and a target object compare equal exactly when a PUT would
//! change nothing, and the same value is the body of that PUT.
//!
//! The OpenSearch API specification (`namespaces/indices.yaml`, `ingest.yaml`, `ism.yaml`,
//! `cluster.yaml`) gives the shapes; stored scripts have no list API, so they are read from the
//! cluster state's `metadata.stored_scripts`.

use std::collections::BTreeMap;

use http::Method;
use serde_json::{Map, Value, json};
use snapferry_plan::{Engine, EngineVersion};

use crate::domain_http::{DomainHttpError, RawBody};
use crate::opensearch::{OpenSearch, segment, wildcard_match};

/// One family of cluster metadata objects. The order of [`Family::ALL`] is the order objects
/// are written in (component templates before the composable templates made of them);
/// deletions go the other way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    ComponentTemplate,
    IndexTemplate,
    LegacyTemplate,
    Pipeline,
    Script,
    IsmPolicy,
}

impl Family {
    pub const ALL: [Family; 6] = [
        Family::ComponentTemplate,
        Family::IndexTemplate,
        Family::LegacyTemplate,
        Family::Pipeline,
        Family::Script,
        Family::IsmPolicy,
    ];

    /// Its name in plans' field paths and in the recorded live state.
    pub fn key(self) -> &'static str {
        match self {
            Family::ComponentTemplate => "component_template",
            Family::IndexTemplate => "index_template",
            Family::LegacyTemplate => "legacy_template",
            Family::Pipeline => "pipeline",
            Family::Script => "script",
            Family::IsmPolicy => "ism_policy",
        }
    }

    pub fn from_key(key: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.key() == key)
    }
}

/// Objects by family key, then name: each the normalised body ([`normalize`]).
pub type Objects = BTreeMap<String, BTreeMap<String, Value>>;

/// What a domain's engine version serves of the cluster metadata APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub version: EngineVersion,
}

impl Capabilities {
    pub fn of(version: EngineVersion) -> Self {
        Capabilities { version }
    }

    fn at_least_es(&self, major: u32, minor: u32) -> bool {
        match self.version.engine {
            Engine::OpenSearch => true,
            Engine::Elasticsearch => (self.version.major, self.version.minor) >= (major, minor),
        }
    }

    pub fn opensearch(&self) -> bool {
        self.version.engine == Engine::OpenSearch
    }

    /// `_index_template` and `_component_template` (Elasticsearch 7.8).
    pub fn composable(&self) -> bool {
        self.at_least_es(7, 8)
    }

    /// Data streams made from a composable template (Elasticsearch 7.9).
    pub fn data_streams(&self) -> bool {
        self.at_least_es(7, 9)
    }

    /// Mappings without a type name by default (Elasticsearch 7).
    pub fn typeless(&self) -> bool {
        self.at_least_es(7, 0)
    }

    /// The ISM plugin's path prefix: `_plugins` on OpenSearch, `_opendistro` on Elasticsearch
    /// 6.8 and later, none before.
    pub fn ism_prefix(&self) -> Option<&'static str> {
        if self.opensearch() {
            Some("_plugins")
        } else if self.at_least_es(6, 8) {
            Some("_opendistro")
        } else {
            None
        }
    }

    /// A policy's `ism_template` (Elasticsearch 7.10 / Open Distro 1.13).
    pub fn ism_template(&self) -> bool {
        self.at_least_es(7, 10)
    }

    /// Whether objects of `family` can be read and written at all.
    pub fn serves(&self, family: Family) -> bool {
        match family {
            Family::ComponentTemplate | Family::IndexTemplate => self.composable(),
            Family::IsmPolicy => self.ism_prefix().is_some(),
            Family::LegacyTemplate | Family::Pipeline | Family::Script => true,
        }
    }

    /// The UI's saved-objects API: base path, xsrf header, and its name in messages.
    pub fn ui(&self) -> Ui {
        if self.opensearch() {
            Ui {
                base: "/_dashboards",
                xsrf: "osd-xsrf",
                name: "OpenSearch Dashboards",
                export_details: true,
            }
        } else {
            Ui {
                base: "/_plugin/kibana",
                xsrf: "kbn-xsrf",
                name: "Kibana",
                export_details: self.at_least_es(7, 6),
            }
        }
    }

    /// The saved-object types the UI of this version can export and import.
    pub fn saved_object_types(&self) -> Vec<&'static str> {
        let mut types = vec![
            "config",
            "index-pattern",
            "visualization",
            "dashboard",
            "search",
            "url",
        ];
        if self.at_least_es(7, 0) {
            types.push("query");
        }
        if self.opensearch() && (self.version.major, self.version.minor) >= (2, 4) {
            types.extend(["visualization-visbuilder", "data-source"]);
        }
        if self.opensearch() && (self.version.major, self.version.minor) >= (2, 9) {
            types.push("augment-vis");
        }
        types
    }

    /// The types copied when the plan names none: every exportable one except `config` (the
    /// UI's advanced settings, one object per UI version) and `data-source` (connections to other
    /// clusters, with their credentials).
    pub fn default_saved_object_types(&self) -> Vec<String> {
        self.saved_object_types()
            .into_iter()
            .filter(|t| !["config", "data-source"].contains(t))
            .map(str::to_owned)
            .collect()
    }
}

/// The Dashboards/Kibana API of a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ui {
    pub base: &'static str,
    pub xsrf: &'static str,
    pub name: &'static str,
    /// `excludeExportDetails` is understood (Kibana 7.6).
    pub export_details: bool,
}

/// Whether `name` is selected by `patterns`: some pattern without `-` matches it (a list of
/// exclusions alone starts from `*`) and no `-` pattern does. Built-in objects (a name starting
/// with `.`, the plugins' and the UI's own) are only selected by a pattern that starts with `.`
/// too. An empty list selects nothing.
pub fn selected(name: &str, patterns: &[String]) -> bool {
    let only_exclusions = patterns.iter().all(|p| p.starts_with('-'));
    let mut included = !patterns.is_empty() && only_exclusions && !name.starts_with('.');
    for p in patterns {
        match p.strip_prefix('-') {
            Some(excluded) if wildcard_match(excluded, name) => return false,
            Some(_) => {}
            None => {
                if wildcard_match(p, name) && (!name.starts_with('.') || p.starts_with('.')) {
                    included = true;
                }
            }
        }
    }
    included
}

/// Drops `null` members everywhere (the servers print absent optional fields as `null` in some
/// versions and leave them out in others).
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Empty `settings`, `mappings` and `aliases` objects mean what their absence means.
fn without_empty(o: &mut Map<String, Value>, keys: &[&str]) {
    for k in keys {
        if o.get(*k)
            .is_some_and(|v| v.as_object().is_some_and(Map::is_empty))
        {
            o.remove(*k);
        }
    }
}

/// An object as GET returns it, less what the server fills in by itself: the form compared
/// between source and target, and sent on PUT.
pub fn normalize(family: Family, body: &Value) -> Value {
    let mut v = without_nulls(body);
    match family {
        Family::IndexTemplate | Family::ComponentTemplate => {
            if let Some(t) = v.get_mut("template").and_then(Value::as_object_mut) {
                without_empty(t, &["settings", "mappings", "aliases"]);
            }
            if let Some(o) = v.as_object_mut() {
                if o.get("template")
                    .is_some_and(|t| t.as_object().is_some_and(Map::is_empty))
                    && family == Family::IndexTemplate
                {
                    o.remove("template");
                }
                if o.get("composed_of")
                    .is_some_and(|c| c.as_array().is_some_and(Vec::is_empty))
                {
                    o.remove("composed_of");
                }
                // `data_stream: {}` is OpenSearch's `{"timestamp_field": {"name": "@timestamp"}}`.
                if let Some(ds) = o.get_mut("data_stream")
                    && ds["timestamp_field"]["name"] == json!("@timestamp")
                    && ds.as_object().is_some_and(|d| d.len() == 1)
                {
                    *ds = json!({});
                }
            }
        }
        Family::LegacyTemplate => {
            if let Some(o) = v.as_object_mut() {
                without_empty(o, &["settings", "mappings", "aliases"]);
                if o.get("order") == Some(&json!(0)) {
                    o.remove("order");
                }
            }
        }
        Family::IsmPolicy => {
            if let Some(o) = v.as_object_mut() {
                for k in ["policy_id", "last_updated_time", "schema_version", "user"] {
                    o.remove(k);
                }
                if let Some(templates) = o.get_mut("ism_template").and_then(Value::as_array_mut) {
                    for t in templates.iter_mut().filter_map(Value::as_object_mut) {
                        t.remove("last_updated_time");
                    }
                }
            }
        }
        Family::Pipeline | Family::Script => {}
    }
    v
}

/// The saved objects of one tenant by `type`, then `id`: `attributes` and `references` (what an
/// import writes; the server stamps `updated_at`, `version` and `migrationVersion` itself).
pub type SavedObjects = BTreeMap<String, BTreeMap<String, Value>>;

/// What an import did not take, each as `<type> <id>: <error type>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportErrors(pub Vec<String>);

fn tenant_headers(ui: &Ui, tenant: Option<&str>) -> Vec<(&'static str, String)> {
    let mut headers = vec![(ui.xsrf, "true".to_owned())];
    if let Some(t) = tenant {
        headers.push(("securitytenant", t.to_owned()));
    }
    headers
}

/// The part of an exported saved object that an import writes and snapferry compares.
pub fn saved_object_core(o: &Value) -> Value {
    let mut core = Map::new();
    for k in ["attributes", "references"] {
        core.insert(k.to_owned(), o.get(k).cloned().unwrap_or_else(|| json!([])));
    }
    if core["attributes"].is_array() {
        core["attributes"] = json!({});
    }
    Value::Object(core)
}

/// Index names joined into comma-separated groups whose request line stays under the 4 KB the
/// managed service allows.
fn chunks(names: &[String]) -> Vec<String> {
    const MAX: usize = 3000;
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    for n in names {
        let n = segment(n);
        if !current.is_empty() && current.len() + n.len() + 3 > MAX {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push_str("%2C");
        }
        current.push_str(&n);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

impl OpenSearch {
    /// Every object of every family the domain serves, normalised, names as the server has them.
    pub async fn cluster_meta(&self, caps: &Capabilities) -> Result<Objects, DomainHttpError> {
        let mut out = Objects::new();
        for family in Family::ALL {
            let objects = if caps.serves(family) {
                self.family(caps, family).await?
            } else {
                BTreeMap::new()
            };
            out.insert(family.key().to_owned(), objects);
        }
        Ok(out)
    }

    async fn family(
        &self,
        caps: &Capabilities,
        family: Family,
    ) -> Result<BTreeMap<String, Value>, DomainHttpError> {
        let http = self.http();
        let mut out = BTreeMap::new();
        match family {
            Family::IndexTemplate | Family::ComponentTemplate => {
                let (path, list, item) = if family == Family::IndexTemplate {
                    (
                        "/_index_template?flat_settings=true",
                        "index_templates",
                        "index_template",
                    )
                } else {
                    (
                        "/_component_template?flat_settings=true",
                        "component_templates",
                        "component_template",
                    )
                };
                let v: Value = http.send_json(Method::GET, path, None).await?;
                for t in v[list].as_array().into_iter().flatten() {
                    if let Some(name) = t["name"].as_str() {
                        out.insert(name.to_owned(), normalize(family, &t[item]));
                    }
                }
            }
            Family::LegacyTemplate => {
                let v: Value = http
                    .send_json(Method::GET, "/_template?flat_settings=true", None)
                    .await?;
                for (name, t) in v.as_object().into_iter().flatten() {
                    out.insert(name.clone(), normalize(family, t));
                }
            }
            Family::Pipeline => {
                // No pipeline at all is a 404 with an empty object.
                let v: Value = match http.send_json(Method::GET, "/_ingest/pipeline", None).await {
                    Ok(v) => v,
                    Err(e) if e.status() == Some(404) => json!({}),
                    Err(e) => return Err(e),
                };
                for (id, p) in v.as_object().into_iter().flatten() {
                    out.insert(id.clone(), normalize(family, p));
                }
            }
            Family::Script => {
                let v: Value = http
                    .send_json(
                        Method::GET,
                        "/_cluster/state/metadata?filter_path=metadata.stored_scripts",
                        None,
                    )
                    .await?;
                for (id, s) in v["metadata"]["stored_scripts"]
                    .as_object()
                    .into_iter()
                    .flatten()
                {
                    out.insert(id.clone(), normalize(family, s));
                }
            }
            Family::IsmPolicy => {
                let prefix = caps.ism_prefix().expect("served");
                let mut from = 0usize;
                loop {
                    let path = format!("/{prefix}/_ism/policies?size=1000&from={from}");
                    let v: Value = http.send_json(Method::GET, &path, None).await?;
                    let page = v["policies"].as_array().cloned().unwrap_or_default();
                    for p in &page {
                        if let Some(id) = p["_id"].as_str() {
                            out.insert(id.to_owned(), normalize(family, &p["policy"]));
                        }
                    }
                    from += page.len();
                    let total = v["total_policies"].as_u64().unwrap_or(0) as usize;
                    if page.is_empty() || from >= total {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Creates or replaces one object (`body` in its normalised form).
    pub async fn put_object(
        &self,
        caps: &Capabilities,
        family: Family,
        name: &str,
        body: &Value,
    ) -> Result<(), DomainHttpError> {
        let http = self.http();
        let name_segment = segment(name);
        match family {
            Family::IndexTemplate => {
                let path = format!("/_index_template/{name_segment}");
                http.send(Method::PUT, &path, Some(body)).await?;
            }
            Family::ComponentTemplate => {
                let path = format!("/_component_template/{name_segment}");
                http.send(Method::PUT, &path, Some(body)).await?;
            }
            Family::LegacyTemplate => {
                let path = format!("/_template/{name_segment}");
                http.send(Method::PUT, &path, Some(body)).await?;
            }
            Family::Pipeline => {
                let path = format!("/_ingest/pipeline/{name_segment}");
                http.send(Method::PUT, &path, Some(body)).await?;
            }
            Family::Script => {
                let path = format!("/_scripts/{name_segment}");
                http.send(Method::PUT, &path, Some(&json!({ "script": body })))
                    .await?;
            }
            Family::IsmPolicy => {
                let prefix = caps.ism_prefix().unwrap_or("_plugins");
                // An existing policy is only replaced with its current sequence number.
                let current: Option<Value> = match http
                    .send_json(
                        Method::GET,
                        &format!("/{prefix}/_ism/policies/{name_segment}"),
                        None,
                    )
                    .await
                {
                    Ok(v) => Some(v),
                    Err(e) if e.status() == Some(404) => None,
                    Err(e) => return Err(e),
                };
                let path = match current {
                    Some(v) => format!(
                        "/{prefix}/_ism/policies/{name_segment}?if_seq_no={}&if_primary_term={}",
                        v["_seq_no"].as_u64().unwrap_or(0),
                        v["_primary_term"].as_u64().unwrap_or(1)
                    ),
                    None => format!("/{prefix}/_ism/policies/{name_segment}"),
                };
                http.send(Method::PUT, &path, Some(&json!({ "policy": body })))
                    .await?;
            }
        }
        Ok(())
    }

    /// Deletes one object; one already gone is fine.
    pub async fn delete_object(
        &self,
        caps: &Capabilities,
        family: Family,
        name: &str,
    ) -> Result<(), DomainHttpError> {
        let name = segment(name);
        let path = match family {
            Family::IndexTemplate => format!("/_index_template/{name}"),
            Family::ComponentTemplate => format!("/_component_template/{name}"),
            Family::LegacyTemplate => format!("/_template/{name}"),
            Family::Pipeline => format!("/_ingest/pipeline/{name}"),
            Family::Script => format!("/_scripts/{name}"),
            Family::IsmPolicy => format!(
                "/{}/_ism/policies/{name}",
                caps.ism_prefix().unwrap_or("_plugins")
            ),
        };
        match self.http().send(Method::DELETE, &path, None).await {
            Err(e) if e.status() == Some(404) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Whether the domain can take `pipeline`: `_simulate` builds its processors as PUT would
    /// and changes nothing. `Some(reason)` when it refuses them.
    pub async fn pipeline_refused(
        &self,
        pipeline: &Value,
    ) -> Result<Option<String>, DomainHttpError> {
        let body = json!({"pipeline": pipeline, "docs": [{"_source": {}}]});
        match self
            .http()
            .send(Method::POST, "/_ingest/pipeline/_simulate", Some(&body))
            .await
        {
            Ok(_) => Ok(None),
            Err(DomainHttpError::Status {
                status: 400,
                reason,
                error_type,
                ..
            }) => Ok(Some(
                reason.or(error_type).unwrap_or_else(|| "refused".into()),
            )),
            Err(e) => Err(e),
        }
    }

    /// The ISM policy managing each of `indices` (`None`: not managed). Indices that do not
    /// exist are left out.
    pub async fn ism_managed(
        &self,
        caps: &Capabilities,
        indices: &[String],
    ) -> Result<BTreeMap<String, Option<String>>, DomainHttpError> {
        let mut out = BTreeMap::new();
        let Some(prefix) = caps.ism_prefix() else {
            return Ok(out);
        };
        for chunk in chunks(indices) {
            let path = format!("/{prefix}/_ism/explain/{chunk}");
            let v: Value = match self.http().send_json(Method::GET, &path, None).await {
                Ok(v) => v,
                Err(e) if e.error_type() == Some("index_not_found_exception") => {
                    // Some index is gone: ask for each of the chunk's on its own.
                    let mut v = Map::new();
                    for name in chunk.split("%2C") {
                        let path = format!("/{prefix}/_ism/explain/{name}");
                        match self
                            .http()
                            .send_json::<Value>(Method::GET, &path, None)
                            .await
                        {
                            Ok(Value::Object(o)) => v.extend(o),
                            Ok(_) => {}
                            Err(e) if e.error_type() == Some("index_not_found_exception") => {}
                            Err(e) => return Err(e),
                        }
                    }
                    Value::Object(v)
                }
                Err(e) => return Err(e),
            };
            for (index, entry) in v.as_object().into_iter().flatten() {
                if !entry.is_object() {
                    continue;
                }
                let policy = entry["policy_id"]
                    .as_str()
                    .or_else(|| entry["index.plugins.index_state_management.policy_id"].as_str())
                    .or_else(|| entry["index.opendistro.index_state_management.policy_id"].as_str())
                    .map(str::to_owned);
                out.insert(index.clone(), policy);
            }
        }
        Ok(out)
    }

    /// Attaches `policy` to `index` (`add`), or, without a policy, detaches the index
    /// (`remove`). `Ok(Some(reason))` when the plugin refuses it for that index.
    pub async fn ism_set(
        &self,
        caps: &Capabilities,
        index: &str,
        policy: Option<&str>,
    ) -> Result<Option<String>, DomainHttpError> {
        let prefix = caps.ism_prefix().unwrap_or("_plugins");
        let (what, body) = match policy {
            Some(p) => ("add", Some(json!({ "policy_id": p }))),
            None => ("remove", None),
        };
        let path = format!("/{prefix}/_ism/{what}/{}", segment(index));
        let v: Value = self
            .http()
            .send_json(Method::POST, &path, body.as_ref())
            .await?;
        Ok(v["failed_indices"]
            .as_array()
            .and_then(|a| a.first())
            .map(|f| {
                format!(
                    "`{what}` of index {index}: {}",
                    f["reason"].as_str().unwrap_or("refused")
                )
            }))
    }

    /// The saved objects of `types` in `tenant` (`None`: the domain has no tenants), by type
    /// then id, each as [`saved_object_core`], with their titles (for messages).
    pub async fn export_saved_objects(
        &self,
        ui: &Ui,
        tenant: Option<&str>,
        types: &[String],
    ) -> Result<Vec<Value>, DomainHttpError> {
        if types.is_empty() {
            return Ok(Vec::new());
        }
        let mut body = json!({"type": types, "includeReferencesDeep": true});
        if ui.export_details {
            body["excludeExportDetails"] = json!(true);
        }
        let raw = RawBody {
            content_type: Some("application/json".into()),
            bytes: body.to_string().into_bytes(),
            headers: tenant_headers(ui, tenant),
        };
        let path = format!("{}/api/saved_objects/_export", ui.base);
        let response = self.http().send_raw(Method::POST, &path, raw).await?;
        let text = String::from_utf8_lossy(&response.body);
        let mut out = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value =
                serde_json::from_str(line).map_err(|source| DomainHttpError::Decode {
                    domain: self.http().domain().to_owned(),
                    method: Method::POST,
                    path: path.clone(),
                    source,
                })?;
            if v.get("exportedCount").is_none() {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Imports `objects` (export-shaped) into `tenant`. The importer writes nothing while any
    /// object has a conflict or a missing reference, so either all are in or the errors say why.
    pub async fn import_saved_objects(
        &self,
        ui: &Ui,
        tenant: Option<&str>,
        objects: &[Value],
        overwrite: bool,
    ) -> Result<Result<usize, ImportErrors>, DomainHttpError> {
        let boundary = "snapferry-saved-objects-boundary";
        let ndjson: Vec<String> = objects.iter().map(Value::to_string).collect();
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"export.ndjson\"\r\nContent-Type: application/ndjson\r\n\r\n{}\r\n--{boundary}--\r\n",
            ndjson.join("\n")
        );
        let raw = RawBody {
            content_type: Some(format!("multipart/form-data; boundary={boundary}")),
            bytes: body.into_bytes(),
            headers: tenant_headers(ui, tenant),
        };
        let path = format!(
            "{}/api/saved_objects/_import?overwrite={overwrite}",
            ui.base
        );
        let v: Value = {
            let response = self.http().send_raw(Method::POST, &path, raw).await?;
            serde_json::from_slice(&response.body).map_err(|source| DomainHttpError::Decode {
                domain: self.http().domain().to_owned(),
                method: Method::POST,
                path: path.clone(),
                source,
            })?
        };
        if v["success"] == json!(true) {
            return Ok(Ok(v["successCount"].as_u64().unwrap_or(0) as usize));
        }
        let errors = v["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let mut text = format!(
                    "{} {}: {}",
                    e["type"].as_str().unwrap_or("?"),
                    e["id"].as_str().unwrap_or("?"),
                    e["error"]["type"].as_str().unwrap_or("error")
                );
                if let Some(refs) = e["error"]["references"].as_array() {
                    let refs: Vec<String> = refs
                        .iter()
                        .map(|r| {
                            format!(
                                "{} {}",
                                r["type"].as_str().unwrap_or("?"),
                                r["id"].as_str().unwrap_or("?")
                            )
                        })
                        .collect();
                    text.push_str(&format!(" ({})", refs.join(", ")));
                }
                text
            })
            .collect();
        Ok(Err(ImportErrors(errors)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> EngineVersion {
        text.parse().unwrap()
    }

    #[test]
    fn capabilities_follow_the_engine_version() {
        let es74 = Capabilities::of(v("Elasticsearch_7.4"));
        assert!(!es74.composable() && es74.serves(Family::LegacyTemplate));
        assert_eq!(es74.ism_prefix(), Some("_opendistro"));
        assert!(!es74.ism_template());
        let es710 = Capabilities::of(v("Elasticsearch_7.10"));
        assert!(es710.composable() && es710.data_streams() && es710.ism_template());
        assert_eq!(es710.ui().base, "/_plugin/kibana");
        assert_eq!(es710.ui().xsrf, "kbn-xsrf");
        let es63 = Capabilities::of(v("Elasticsearch_6.3"));
        assert_eq!(es63.ism_prefix(), None);
        assert!(!es63.serves(Family::IsmPolicy));
        let os = Capabilities::of(v("OpenSearch_2.11"));
        assert_eq!(os.ism_prefix(), Some("_plugins"));
        assert_eq!(os.ui().base, "/_dashboards");
        assert!(os.saved_object_types().contains(&"augment-vis"));
        assert!(
            !Capabilities::of(v("OpenSearch_2.3"))
                .saved_object_types()
                .contains(&"visualization-visbuilder")
        );
        assert!(
            !os.default_saved_object_types()
                .contains(&"config".to_owned())
        );
    }

    #[test]
    fn selection_leaves_built_in_objects_out_unless_named() {
        let all = vec!["*".to_owned()];
        assert!(selected("logs", &all));
        assert!(!selected(".opendistro-ism-config", &all));
        assert!(selected(".kibana", &[".kibana".to_owned()]));
        let some = vec!["logs-*".to_owned(), "-logs-old".to_owned()];
        assert!(selected("logs-app", &some));
        assert!(!selected("logs-old", &some));
        assert!(!selected("metrics", &some));
        assert!(!selected("logs", &[]));
        let all_but = vec!["-logs-old".to_owned()];
        assert!(selected("logs-app", &all_but));
        assert!(!selected("logs-old", &all_but));
        assert!(!selected(".hidden", &all_but));
    }

    #[test]
    fn normalized_policies_drop_what_the_plugin_stamps() {
        let got = normalize(
            Family::IsmPolicy,
            &json!({"policy_id": "p", "description": "d", "last_updated_time": 1, "schema_version": 17,
                    "error_notification": null, "default_state": "hot", "states": [],
                    "ism_template": [{"index_patterns": ["a*"], "priority": 0, "last_updated_time": 5}]}),
        );
        assert_eq!(
            got,
            json!({"description": "d", "default_state": "hot", "states": [],
                   "ism_template": [{"index_patterns": ["a*"], "priority": 0}]})
        );
    }

    #[test]
    fn data_stream_defaults_compare_equal() {
        let a = normalize(
            Family::IndexTemplate,
            &json!({"index_patterns": ["l*"], "data_stream": {"timestamp_field": {"name": "@timestamp"}}, "composed_of": []}),
        );
        let b = normalize(
            Family::IndexTemplate,
            &json!({"index_patterns": ["l*"], "data_stream": {}}),
        );
        assert_eq!(a, b);
    }

    #[test]
    fn long_index_lists_are_split_under_the_request_line_limit() {
        let names: Vec<String> = (0..400).map(|i| format!("logs-2026.11.{i:04}")).collect();
        let chunks = chunks(&names);
        assert!(chunks.len() > 1);
        assert!(chunks.iter().all(|c| c.len() <= 3000));
        let back: Vec<&str> = chunks.iter().flat_map(|c| c.split("%2C")).collect();
        assert_eq!(back.len(), 400);
    }
}
