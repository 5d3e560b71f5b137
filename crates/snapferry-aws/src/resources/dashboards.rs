//! `dashboards`: the source's Dashboards (Kibana on Elasticsearch) saved objects — index
//! patterns, visualizations, dashboards, saved searches — exported and imported on the target.
//! The UI keeps them in `.kibana`, a system index the managed service cannot restore, so a copy
//! otherwise opens with empty Dashboards.
//!
//! Through the domain endpoint, SigV4-signed like every call: `/_dashboards/api/saved_objects`
//! on OpenSearch, `/_plugin/kibana/api/saved_objects` on Elasticsearch, each with its xsrf header
//! (`osd-xsrf`, `kbn-xsrf`); on domains with fine-grained access control each tenant the plan
//! names is read and written through the `securitytenant` header. `read` exports the plan's types
//! from both sides; `diff` counts per tenant and type the objects to create and to overwrite
//! (`overwrite: false` keeps a differing object on the target, and says so). An object compares
//! equal when its `attributes` and `references` are: the server stamps `updated_at`, `version`
//! and `migrationVersion` itself on import. What the target cannot take is `!` with the object's
//! type, id and title: a type its UI version does not have (Dashboards' newer types on Kibana,
//! or on an older Dashboards), a reference to an object neither side has (the import would refuse
//! the whole file), a tenant on a domain without tenants.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use snapferry_engine::{
    Change, Context, FieldChange, FieldValue, Inputs, NodeId, Observed, Outputs, Progress,
    Resource, ResourceError,
};
use snapferry_plan::{DashboardsNode, DashboardsSpec, DomainRef, EngineVersion};

use super::{Env, fail, fail_domain, outputs};
use crate::cluster_meta::{Capabilities, saved_object_core};
use crate::opensearch::OpenSearch;

pub(crate) struct DashboardsResource {
    id: NodeId,
    fingerprint: String,
    spec: DashboardsNode,
    env: Arc<Env>,
}

/// Per tenant: the objects to import, and the lines of the plan.
#[derive(Debug, Default)]
struct Decision {
    /// Per tenant, the objects to write (export-shaped) and whether any replaces one.
    imports: BTreeMap<String, (Vec<Value>, bool)>,
    /// `<tenant>.<type>.create|overwrite` → count.
    counts: BTreeMap<String, u64>,
    unchanged: Vec<String>,
    refused: Vec<String>,
}

fn key(o: &Value) -> (String, String) {
    (
        o["type"].as_str().unwrap_or_default().to_owned(),
        o["id"].as_str().unwrap_or_default().to_owned(),
    )
}

fn describe(o: &Value) -> String {
    let (kind, id) = key(o);
    match o["attributes"]["title"].as_str() {
        Some(title) => format!("{kind} {id} ({title:?})"),
        None => format!("{kind} {id}"),
    }
}

/// What the import writes and the server does not stamp itself: kept in the live state.
fn kept(o: &Value) -> Value {
    let mut out = json!({"type": o["type"], "id": o["id"]});
    for k in ["attributes", "references", "migrationVersion"] {
        if let Some(v) = o.get(k) {
            out[k] = v.clone();
        }
    }
    out
}

fn objects(observed: &Value, side: &str, tenant: &str) -> Vec<Value> {
    observed[side]["tenants"][tenant]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn count_line(tenant: &str, counts: &BTreeMap<String, u64>, what: &str) -> Option<String> {
    if counts.is_empty() {
        return None;
    }
    let parts: Vec<String> = counts.iter().map(|(t, n)| format!("{n} {t}")).collect();
    Some(format!("{tenant}: {} {what}", parts.join(", ")))
}

fn decide(spec: &DashboardsSpec, observed: &Value) -> Decision {
    let mut d = Decision::default();
    let refused: Vec<String> =
        serde_json::from_value(observed["refused"].clone()).unwrap_or_default();
    d.refused.extend(refused);
    let Some(target_version) = observed["target"]["engine"]
        .as_str()
        .and_then(|v| v.parse::<EngineVersion>().ok())
    else {
        return d;
    };
    let target = Capabilities::of(target_version);
    let target_types = target.saved_object_types();
    let ui = target.ui();
    let target_fgac = observed["target"]["fgac"].as_bool();
    for tenant in &spec.tenants {
        if tenant != "global" && target_fgac == Some(false) {
            d.refused.push(format!(
                "tenant {tenant}: the target {} has no fine-grained access control, so no \
                 tenants; copy only `global` or turn it on",
                observed["target"]["domain"].as_str().unwrap_or("domain")
            ));
            continue;
        }
        let source = objects(observed, "source", tenant);
        let on_target: BTreeMap<(String, String), Value> = objects(observed, "target", tenant)
            .into_iter()
            .map(|o| (key(&o), o))
            .collect();
        let in_source: BTreeSet<(String, String)> = source.iter().map(key).collect();
        let mut writes = Vec::new();
        let mut overwrites = false;
        let (mut unchanged, mut kept_back) = (BTreeMap::new(), BTreeMap::new());
        for o in &source {
            let (kind, _) = key(o);
            if !target_types.contains(&kind.as_str()) {
                d.refused.push(format!(
                    "{tenant}: {}: {} on {} has no saved objects of type {kind}",
                    describe(o),
                    ui.name,
                    target_version.to_string().replace('_', " ")
                ));
                continue;
            }
            let missing: Vec<String> = o["references"]
                .as_array()
                .into_iter()
                .flatten()
                .map(key)
                .filter(|r| !in_source.contains(r) && !on_target.contains_key(r))
                .map(|(t, i)| format!("{t} {i}"))
                .collect();
            if !missing.is_empty() {
                d.refused.push(format!(
                    "{tenant}: {}: it refers to {}, which neither domain has (the import would \
                     refuse every object); add the type to `dashboards.types` or fix the \
                     object on the source",
                    describe(o),
                    missing.join(", ")
                ));
                continue;
            }
            let action = match on_target.get(&key(o)) {
                None => "create",
                Some(have) if saved_object_core(have) == saved_object_core(o) => {
                    *unchanged.entry(kind).or_insert(0u64) += 1;
                    continue;
                }
                Some(_) if !spec.overwrite => {
                    *kept_back.entry(kind).or_insert(0u64) += 1;
                    continue;
                }
                Some(_) => {
                    overwrites = true;
                    "overwrite"
                }
            };
            *d.counts
                .entry(format!("{tenant}.{kind}.{action}"))
                .or_insert(0) += 1;
            writes.push(o.clone());
        }
        d.unchanged
            .extend(count_line(tenant, &unchanged, "unchanged"));
        d.unchanged.extend(count_line(
            tenant,
            &kept_back,
            "kept as the target has them (`overwrite` is false)",
        ));
        if !writes.is_empty() {
            d.imports.insert(tenant.clone(), (writes, overwrites));
        }
    }
    d
}

impl DashboardsResource {
    pub(crate) fn new(
        id: NodeId,
        fingerprint: String,
        spec: &DashboardsNode,
        env: &Arc<Env>,
    ) -> Self {
        DashboardsResource {
            id,
            fingerprint,
            spec: spec.clone(),
            env: env.clone(),
        }
    }

    /// The engine version and whether fine-grained access control is on.
    async fn describe(
        &self,
        domain: &DomainRef,
    ) -> Result<Option<(EngineVersion, bool)>, ResourceError> {
        let Some(status) = self
            .env
            .describe_domain(domain)
            .await
            .map_err(|e| fail(&self.id, e))?
        else {
            return Ok(None);
        };
        let Some(version) = status.engine_version().and_then(|v| v.parse().ok()) else {
            return Ok(None);
        };
        let fgac = status
            .advanced_security_options()
            .and_then(|o| o.enabled())
            .unwrap_or(false);
        Ok(Some((version, fgac)))
    }

    /// The tenant header for `tenant` on a domain (none for the global tenant of a domain
    /// without tenants).
    fn header(tenant: &str, fgac: bool) -> Option<&str> {
        fgac.then_some(tenant)
    }

    async fn export(
        &self,
        client: &OpenSearch,
        domain: &DomainRef,
        caps: &Capabilities,
        fgac: bool,
        types: &[String],
    ) -> Result<Value, ResourceError> {
        let ui = caps.ui();
        let exportable: Vec<String> = types
            .iter()
            .filter(|t| caps.saved_object_types().contains(&t.as_str()))
            .cloned()
            .collect();
        let mut tenants = serde_json::Map::new();
        for tenant in &self.spec.dashboards.tenants {
            if tenant != "global" && !fgac {
                continue;
            }
            let objects = client
                .export_saved_objects(&ui, Self::header(tenant, fgac), &exportable)
                .await
                .map_err(|e| {
                    fail_domain(
                        &self.id,
                        &format!(
                            "{} saved objects of tenant {tenant} on domain {}",
                            ui.name, domain.name
                        ),
                        e,
                    )
                })?;
            tenants.insert(
                tenant.clone(),
                Value::Array(objects.iter().map(kept).collect()),
            );
        }
        Ok(Value::Object(tenants))
    }

    async fn observe(&self) -> Result<Observed, ResourceError> {
        let source_domain = &self.spec.source;
        let Some(source) = self
            .env
            .data_plane(source_domain)
            .await
            .map_err(|e| fail(&self.id, e))?
        else {
            return Ok(Observed {
                value: json!({"missing": super::missing_source(source_domain)}),
                ..Observed::absent()
            });
        };
        let Some((source_version, source_fgac)) = self.describe(source_domain).await? else {
            return Ok(Observed {
                value: json!({"missing": super::missing_source(source_domain)}),
                ..Observed::absent()
            });
        };
        let source_caps = Capabilities::of(source_version);
        let types = self
            .spec
            .dashboards
            .types
            .clone()
            .unwrap_or_else(|| source_caps.default_saved_object_types());
        let mut refused = Vec::new();
        for t in &types {
            if !source_caps.saved_object_types().contains(&t.as_str()) {
                refused.push(format!(
                    "type {t}: {} {} has no saved objects of this type; remove it from \
                     `dashboards.types`",
                    source_caps.ui().name,
                    source_version.to_string().replace('_', " ")
                ));
            }
        }
        for tenant in &self.spec.dashboards.tenants {
            if tenant != "global" && !source_fgac {
                refused.push(format!(
                    "tenant {tenant}: the source {} has no fine-grained access control, so no \
                     tenants; copy only `global`",
                    source_domain.name
                ));
            }
        }
        let mut value = json!({
            "types": types,
            "source": {
                "engine": source_version.to_string(),
                "fgac": source_fgac,
                "tenants": self.export(&source, source_domain, &source_caps, source_fgac, &types).await?,
            },
        });
        if !refused.is_empty() {
            value["refused"] = json!(refused);
        }
        let target_domain = &self.spec.target;
        let target = self
            .env
            .data_plane(target_domain)
            .await
            .map_err(|e| fail(&self.id, e))?;
        let described = match &target {
            Some(_) => self.describe(target_domain).await?,
            None => None,
        };
        let (Some(target), Some((target_version, target_fgac))) = (target, described) else {
            // A new domain: empty, of the version the plan gives it, or the source's.
            let version = target_domain.engine_version.unwrap_or(source_version);
            value["target"] =
                json!({"engine": version.to_string(), "domain": target_domain.name, "tenants": {}});
            value["unchanged"] = json!(decide(&self.spec.dashboards, &value).unchanged);
            return Ok(Observed {
                value,
                ..Observed::absent()
            });
        };
        let target_caps = Capabilities::of(target_version);
        value["target"] = json!({
            "engine": target_version.to_string(),
            "domain": target_domain.name,
            "fgac": target_fgac,
            "tenants": self.export(&target, target_domain, &target_caps, target_fgac, &types).await?,
        });
        value["unchanged"] = json!(decide(&self.spec.dashboards, &value).unchanged);
        Ok(Observed::present(value).with_outputs(self.outputs()))
    }

    fn outputs(&self) -> Outputs {
        outputs([("target", json!(self.spec.target.name))])
    }

    fn blocked(&self, refused: &[String]) -> String {
        let mut reason = format!(
            "the target {} cannot take {} of the source's saved objects; remove their types \
             from `dashboards.types` or delete them on the source:",
            self.spec.target.name,
            refused.len()
        );
        for r in refused {
            reason.push_str("\n      ! ");
            reason.push_str(r);
        }
        reason
    }
}

#[async_trait]
impl Resource for DashboardsResource {
    fn id(&self) -> &NodeId {
        &self.id
    }

    fn kind(&self) -> &'static str {
        super::DASHBOARDS.name
    }

    fn desired_fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    async fn read(&self, _cx: &Context, _inputs: &Inputs) -> Result<Observed, ResourceError> {
        let read: Result<Observed, ResourceError> = async { self.observe().await }.await;
        self.env
            .unless_refused(&[&self.spec.target, &self.spec.source], read)
    }

    fn diff(&self, inputs: &Inputs, observed: &Observed) -> Change {
        if let Some(change) = super::refused_change(inputs, observed) {
            return change;
        }
        if let Some(missing) = observed.value["missing"].as_str() {
            return Change::Blocked {
                reason: missing.to_owned(),
            };
        }
        let d = decide(&self.spec.dashboards, &observed.value);
        if !d.refused.is_empty() {
            return Change::Blocked {
                reason: self.blocked(&d.refused),
            };
        }
        // A create while nothing is overwritten, whether or not the target exists when planning.
        let overwrites = d.imports.values().any(|(_, overwrite)| *overwrite);
        let fields: Vec<FieldChange> = d
            .counts
            .into_iter()
            .map(|(path, n)| FieldChange {
                path,
                before: None,
                after: FieldValue::known(n),
            })
            .collect();
        match (fields.is_empty(), overwrites) {
            (true, _) => Change::NoOp,
            (false, true) => Change::Update { fields },
            (false, false) => Change::Create { fields },
        }
    }

    async fn apply(
        &self,
        cx: &Context,
        _inputs: &Inputs,
        _change: &Change,
    ) -> Result<(), ResourceError> {
        let observed = self.observe().await?;
        let d = decide(&self.spec.dashboards, &observed.value);
        if !d.refused.is_empty() {
            return Err(ResourceError::permanent(&self.id, self.blocked(&d.refused)));
        }
        let target = self
            .env
            .require_data_plane(&self.id, &self.spec.target)
            .await?;
        let version: EngineVersion = observed.value["target"]["engine"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                ResourceError::permanent(&self.id, "the target's engine version is not known")
            })?;
        let fgac = observed.value["target"]["fgac"].as_bool().unwrap_or(false);
        let ui = Capabilities::of(version).ui();
        for (tenant, (objects, overwrite)) in &d.imports {
            let what = format!(
                "import of {} saved objects into tenant {tenant} of domain {}",
                objects.len(),
                self.spec.target.name
            );
            let imported = cx
                .retry(|| async {
                    target
                        .import_saved_objects(&ui, Self::header(tenant, fgac), objects, *overwrite)
                        .await
                        .map_err(|e| fail_domain(&self.id, &what, e))
                })
                .await?;
            if let Err(errors) = imported {
                return Err(ResourceError::permanent(
                    &self.id,
                    format!(
                        "{what}: {} refused it and wrote nothing: {}",
                        ui.name,
                        errors.0.join("; ")
                    ),
                ));
            }
        }
        Ok(())
    }

    async fn wait(
        &self,
        _cx: &Context,
        _inputs: &Inputs,
        _progress: &Progress,
    ) -> Result<Outputs, ResourceError> {
        Ok(self.outputs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(tenants: &[&str], overwrite: bool) -> DashboardsSpec {
        DashboardsSpec {
            tenants: tenants.iter().map(|t| (*t).to_owned()).collect(),
            overwrite,
            types: None,
        }
    }

    fn observed(target_engine: &str, fgac: bool, source: Value, target: Value) -> Value {
        json!({
            "source": {"engine": "OpenSearch_2.11", "fgac": true, "tenants": source},
            "target": {"engine": target_engine, "domain": "copy", "fgac": fgac, "tenants": target},
        })
    }

    #[test]
    fn newer_types_and_tenants_the_target_lacks_are_refused_by_name() {
        let source = json!({
            "global": [{"type": "visualization-visbuilder", "id": "vb", "attributes": {"title": "Builder"}, "references": []}],
            "team": [],
        });
        let d = decide(
            &spec(&["global", "team"], true),
            &observed("Elasticsearch_7.10", false, source, json!({})),
        );
        assert_eq!(
            d.refused,
            vec![
                "global: visualization-visbuilder vb (\"Builder\"): Kibana on Elasticsearch 7.10 has no saved objects of type visualization-visbuilder".to_owned(),
                "tenant team: the target copy has no fine-grained access control, so no tenants; copy only `global` or turn it on".to_owned(),
            ]
        );
    }

    #[test]
    fn overwrite_false_keeps_a_differing_object_and_says_so() {
        let object = |title: &str| json!({"type": "dashboard", "id": "d", "attributes": {"title": title}, "references": []});
        let d = decide(
            &spec(&["global"], false),
            &observed(
                "OpenSearch_2.11",
                false,
                json!({"global": [object("Ops")]}),
                json!({"global": [object("Ops (edited)")]}),
            ),
        );
        assert!(d.imports.is_empty() && d.counts.is_empty(), "{d:?}");
        assert_eq!(
            d.unchanged,
            vec![
                "global: 1 dashboard kept as the target has them (`overwrite` is false)".to_owned()
            ]
        );
    }
}
