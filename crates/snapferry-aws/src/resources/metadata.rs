//! `metadata`: the target's index templates (composable, component, legacy), ingest pipelines,
//! stored scripts and search templates, and ISM policies made to match the source's, object by
//! object, before the restore (a restored data stream rolls over only with its template, and
//! tomorrow's daily index gets its mappings only from one).
//!
//! `read` collects both sides (the objects the plan selects, in their normalised form) and the
//! domains' engine versions; `diff` decides per object: `+` created, `~` replaced (its fields
//! shown `before → after`), `-` deleted (`prune: true` only; otherwise an object only the target
//! has is kept and listed as such), `=` unchanged. What the target's version cannot take is
//! `!` with the object's name and why, and nothing is written until the plan excludes it:
//! composable templates before Elasticsearch 7.8, data-stream templates before 7.9, ISM before
//! 6.8 and `ism_template` before 7.10, a typed legacy template on a typeless version, a template
//! composed of a component template the target will not have, and a pipeline whose processors the
//! target refuses (its `_simulate` builds them as a PUT would, without writing anything).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use snapferry_engine::{
    Change, Context, FieldChange, FieldValue, Inputs, NodeId, Observed, Outputs, Progress,
    Resource, ResourceError,
};
use snapferry_plan::{DomainRef, EngineVersion, MetadataNode, MetadataSpec};

use super::{Env, fail, fail_domain, outputs};
use crate::cluster_meta::{Capabilities, Family, Objects, selected};

pub(crate) struct MetadataResource {
    id: NodeId,
    fingerprint: String,
    spec: MetadataNode,
    env: Arc<Env>,
}

/// One thing to do to one object.
#[derive(Debug, Clone, PartialEq)]
enum Action {
    Create(Value),
    Replace { before: Value, after: Value },
    Delete(Value),
}

/// What the diff decided, object by object.
#[derive(Debug, Default)]
struct Decision {
    /// In write order: families in [`Family::ALL`] order, names sorted.
    actions: Vec<(Family, String, Action)>,
    /// `= <object>` lines: unchanged, or only on the target and kept.
    unchanged: Vec<String>,
    /// `! <object>: why` lines.
    refused: Vec<String>,
}

fn label(family: Family, name: &str) -> String {
    format!("{}[{name}]", family.key())
}

fn patterns(spec: &MetadataSpec, family: Family) -> &[String] {
    match family {
        Family::IndexTemplate => &spec.index_templates,
        Family::ComponentTemplate => &spec.component_templates,
        Family::LegacyTemplate => &spec.legacy_templates,
        Family::Pipeline => &spec.pipelines,
        Family::Script => &spec.scripts,
        Family::IsmPolicy => &spec.ism_policies,
    }
}

/// The plan's key for a family (in messages that say how to exclude an object).
fn plan_key(family: Family) -> &'static str {
    match family {
        Family::IndexTemplate => "index_templates",
        Family::ComponentTemplate => "component_templates",
        Family::LegacyTemplate => "legacy_templates",
        Family::Pipeline => "pipelines",
        Family::Script => "scripts",
        Family::IsmPolicy => "ism_policies",
    }
}

/// Only the objects the plan selects.
fn select(spec: &MetadataSpec, all: Objects) -> Objects {
    all.into_iter()
        .map(|(key, objects)| {
            let kept = match Family::from_key(&key) {
                Some(family) => objects
                    .into_iter()
                    .filter(|(name, _)| selected(name, patterns(spec, family)))
                    .collect(),
                None => BTreeMap::new(),
            };
            (key, kept)
        })
        .collect()
}

/// Keys that can start a mappings object; any other single key is a type name wrapping it.
const MAPPING_KEYS: &[&str] = &[
    "properties",
    "dynamic",
    "dynamic_templates",
    "_source",
    "_meta",
    "_routing",
    "date_detection",
    "numeric_detection",
    "dynamic_date_formats",
    "_all",
    "_field_names",
    "enabled",
];

fn version_text(caps: &Capabilities) -> String {
    caps.version.to_string().replace('_', " ")
}

/// The source object as the target must hold it, or why the target's version cannot take it.
fn adapted(family: Family, body: &Value, target: &Capabilities) -> Result<Value, String> {
    let v = version_text(target);
    if !target.serves(family) {
        return Err(match family {
            Family::IndexTemplate | Family::ComponentTemplate => format!(
                "{v} has no composable index templates (Elasticsearch 7.8 brought them); a \
                 legacy template (`_template`) is the way to shape indices there"
            ),
            Family::IsmPolicy => format!(
                "{v} has no Index State Management (Elasticsearch 6.8 brought it as Open Distro)"
            ),
            _ => format!("{v} cannot hold it"),
        });
    }
    let mut body = body.clone();
    match family {
        Family::IndexTemplate if body.get("data_stream").is_some() && !target.data_streams() => {
            return Err(format!(
                "it makes data streams, which {v} does not have (Elasticsearch 7.9 brought them)"
            ));
        }
        Family::LegacyTemplate if target.typeless() => {
            if let Some(mappings) = body.get("mappings").and_then(Value::as_object)
                && mappings.len() == 1
                && let Some((kind, inner)) = mappings.iter().next()
                && !MAPPING_KEYS.contains(&kind.as_str())
                && inner.is_object()
            {
                if kind != "_doc" {
                    return Err(format!(
                        "its mappings are of type `{kind}`; {v} has no mapping types"
                    ));
                }
                let inner = inner.clone();
                body["mappings"] = inner;
            }
        }
        Family::IsmPolicy if body.get("ism_template").is_some() && !target.ism_template() => {
            return Err(format!(
                "it has an `ism_template`, which {v} does not have (Elasticsearch 7.10 brought it)"
            ));
        }
        _ => {}
    }
    Ok(body)
}

/// Every leaf of `value` under `path` (objects opened, arrays kept whole).
fn leaves(path: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(o) if !o.is_empty() => {
            for (k, v) in o {
                leaves(&join(path, k), v, out);
            }
        }
        other => out.push((path.to_owned(), other.clone())),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The fields that differ between `before` and `after`, under `path`.
fn field_diff(
    path: &str,
    before: Option<&Value>,
    after: Option<&Value>,
    out: &mut Vec<FieldChange>,
) {
    match (before, after) {
        (Some(Value::Object(b)), Some(Value::Object(a))) => {
            let keys: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
            for k in keys {
                field_diff(&join(path, k), b.get(k), a.get(k), out);
            }
        }
        (b, a) if b == a => {}
        (None, Some(a)) => {
            let mut added = Vec::new();
            leaves(path, a, &mut added);
            out.extend(added.into_iter().map(|(p, v)| FieldChange {
                path: p,
                before: None,
                after: FieldValue::Known(v),
            }));
        }
        (b, a) => out.push(FieldChange {
            path: path.to_owned(),
            before: b.map(|b| FieldValue::Known(b.clone())),
            after: FieldValue::Known(a.cloned().unwrap_or(Value::Null)),
        }),
    }
}

impl Decision {
    fn fields(&self) -> Vec<FieldChange> {
        let mut fields = Vec::new();
        for (family, name, action) in &self.actions {
            let path = label(*family, name);
            match action {
                Action::Create(body) => {
                    let mut added = Vec::new();
                    leaves(&path, body, &mut added);
                    fields.extend(added.into_iter().map(|(p, v)| FieldChange {
                        path: p,
                        before: None,
                        after: FieldValue::Known(v),
                    }));
                }
                Action::Replace { before, after } => {
                    field_diff(&path, Some(before), Some(after), &mut fields)
                }
                Action::Delete(before) => fields.push(FieldChange {
                    path,
                    before: Some(FieldValue::Known(before.clone())),
                    after: FieldValue::Known(Value::Null),
                }),
            }
        }
        fields
    }
}

/// What the live state says the target needs.
fn decide(spec: &MetadataSpec, observed: &Value) -> Decision {
    let mut d = Decision::default();
    let objects = |side: &str| -> Objects {
        serde_json::from_value(observed[side]["objects"].clone()).unwrap_or_default()
    };
    let (source, target) = (objects("source"), objects("target"));
    let Some(target_version) = observed["target"]["engine"]
        .as_str()
        .and_then(|v| v.parse::<EngineVersion>().ok())
    else {
        return d;
    };
    let caps = Capabilities::of(target_version);
    let empty = BTreeMap::new();
    let refused_by_target: BTreeMap<String, String> =
        serde_json::from_value(observed["refused"].clone()).unwrap_or_default();
    for family in Family::ALL {
        let from = source.get(family.key()).unwrap_or(&empty);
        let on = target.get(family.key()).unwrap_or(&empty);
        for (name, body) in from {
            let object = label(family, name);
            let want = match adapted(family, body, &caps) {
                Ok(want) => want,
                Err(why) => {
                    d.refused.push(format!("{object}: {why}"));
                    continue;
                }
            };
            if family == Family::IndexTemplate {
                let components = source
                    .get(Family::ComponentTemplate.key())
                    .unwrap_or(&empty);
                let on_target = target
                    .get(Family::ComponentTemplate.key())
                    .unwrap_or(&empty);
                for c in want["composed_of"].as_array().into_iter().flatten() {
                    let c = c.as_str().unwrap_or_default();
                    if !components.contains_key(c) && !on_target.contains_key(c) {
                        d.refused.push(format!(
                            "{object}: it is composed of component template {c}, which the \
                             target does not have and `metadata.component_templates` does not \
                             select"
                        ));
                    }
                }
            }
            match on.get(name) {
                Some(have) if *have == want => d.unchanged.push(object),
                have => {
                    if let Some(why) = refused_by_target.get(&object) {
                        d.refused
                            .push(format!("{object}: the target refuses it: {why}"));
                        continue;
                    }
                    d.actions.push((
                        family,
                        name.clone(),
                        match have {
                            Some(have) => Action::Replace {
                                before: have.clone(),
                                after: want,
                            },
                            None => Action::Create(want),
                        },
                    ));
                }
            }
        }
        for (name, body) in on.iter().filter(|(n, _)| !from.contains_key(*n)) {
            if spec.prune {
                d.actions
                    .push((family, name.clone(), Action::Delete(body.clone())));
            } else {
                d.unchanged.push(format!(
                    "{} (only on the target; kept, `prune` is false)",
                    label(family, name)
                ));
            }
        }
    }
    // Deletions go last and in reverse family order: a composable template before the
    // component templates it is made of.
    let (mut deletes, writes): (Vec<_>, Vec<_>) = std::mem::take(&mut d.actions)
        .into_iter()
        .partition(|(_, _, a)| matches!(a, Action::Delete(_)));
    deletes.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    d.actions = writes;
    d.actions.extend(deletes);
    d
}

impl MetadataResource {
    pub(crate) fn new(
        id: NodeId,
        fingerprint: String,
        spec: &MetadataNode,
        env: &Arc<Env>,
    ) -> Self {
        MetadataResource {
            id,
            fingerprint,
            spec: spec.clone(),
            env: env.clone(),
        }
    }

    fn what(&self, domain: &DomainRef) -> String {
        format!("cluster metadata of domain {}", domain.name)
    }

    /// The engine version of a domain that exists: `DescribeDomain`'s, else the one the REST
    /// API reports.
    async fn engine_of(
        &self,
        domain: &DomainRef,
        client: &crate::opensearch::OpenSearch,
    ) -> Result<EngineVersion, ResourceError> {
        if let Some(status) = self
            .env
            .describe_domain(domain)
            .await
            .map_err(|e| fail(&self.id, e))?
            && let Some(v) = status.engine_version().and_then(|v| v.parse().ok())
        {
            return Ok(v);
        }
        let info = client
            .version()
            .await
            .map_err(|e| fail_domain(&self.id, &self.what(domain), e))?;
        let mut parts = info.number.split('.');
        let (major, minor) = (parts.next().unwrap_or("0"), parts.next().unwrap_or("0"));
        let engine = if info.distribution.as_deref() == Some("opensearch") {
            "OpenSearch"
        } else {
            "Elasticsearch"
        };
        format!("{engine}_{major}.{minor}")
            .parse()
            .map_err(|e| ResourceError::permanent(&self.id, format!("domain {}: {e}", domain.name)))
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
        let source_version = self.engine_of(source_domain, &source).await?;
        let source_objects = select(
            &self.spec.metadata,
            source
                .cluster_meta(&Capabilities::of(source_version))
                .await
                .map_err(|e| fail_domain(&self.id, &self.what(source_domain), e))?,
        );
        let target_domain = &self.spec.target;
        let target = self
            .env
            .data_plane(target_domain)
            .await
            .map_err(|e| fail(&self.id, e))?;
        let mut value = json!({
            "source": {"engine": source_version.to_string(), "objects": source_objects},
        });
        let Some(target) = target else {
            // A new domain: empty, of the version the plan gives it, or the source's.
            let version = target_domain.engine_version.unwrap_or(source_version);
            value["target"] = json!({"engine": version.to_string(), "objects": {}});
            value["unchanged"] = json!(decide(&self.spec.metadata, &value).unchanged);
            return Ok(Observed {
                value,
                ..Observed::absent()
            });
        };
        let target_version = self.engine_of(target_domain, &target).await?;
        let caps = Capabilities::of(target_version);
        let target_objects = select(
            &self.spec.metadata,
            target
                .cluster_meta(&caps)
                .await
                .map_err(|e| fail_domain(&self.id, &self.what(target_domain), e))?,
        );
        value["target"] = json!({"engine": target_version.to_string(), "objects": target_objects});
        // Pipelines about to be written: can the target build their processors?
        let mut refused = Map::new();
        for (family, name, action) in decide(&self.spec.metadata, &value).actions {
            let (Family::Pipeline, Action::Create(body) | Action::Replace { after: body, .. }) =
                (family, action)
            else {
                continue;
            };
            if let Some(why) = target
                .pipeline_refused(&body)
                .await
                .map_err(|e| fail_domain(&self.id, &self.what(target_domain), e))?
            {
                refused.insert(label(family, &name), json!(why));
            }
        }
        if !refused.is_empty() {
            value["refused"] = Value::Object(refused);
        }
        value["unchanged"] = json!(decide(&self.spec.metadata, &value).unchanged);
        Ok(Observed::present(value).with_outputs(self.outputs()))
    }

    fn outputs(&self) -> Outputs {
        outputs([("target", json!(self.spec.target.name))])
    }

    fn blocked(&self, refused: &[String]) -> String {
        let mut reason = format!(
            "the target {} cannot take {} object(s) of the source; exclude each with a `-<name>` \
             pattern under `metadata`, or give the target what it lacks:",
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
impl Resource for MetadataResource {
    fn id(&self) -> &NodeId {
        &self.id
    }

    fn kind(&self) -> &'static str {
        super::METADATA.name
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
        let decision = decide(&self.spec.metadata, &observed.value);
        if !decision.refused.is_empty() {
            return Change::Blocked {
                reason: self.blocked(&decision.refused),
            };
        }
        if decision.actions.is_empty() {
            return Change::NoOp;
        }
        // A create while the target holds none of the objects yet, whether or not the domain
        // exists when planning: the plan made before the domain is created is applied after.
        let fields = decision.fields();
        if decision
            .actions
            .iter()
            .all(|(_, _, a)| matches!(a, Action::Create(_)))
        {
            Change::Create { fields }
        } else {
            Change::Update { fields }
        }
    }

    async fn apply(
        &self,
        cx: &Context,
        _inputs: &Inputs,
        _change: &Change,
    ) -> Result<(), ResourceError> {
        // Read again and act on what differs now: a repeated apply writes nothing twice.
        let observed = self.observe().await?;
        let decision = decide(&self.spec.metadata, &observed.value);
        if !decision.refused.is_empty() {
            return Err(ResourceError::permanent(
                &self.id,
                self.blocked(&decision.refused),
            ));
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
        let caps = Capabilities::of(version);
        for (family, name, action) in &decision.actions {
            let what = format!(
                "{} {} on domain {}",
                family.key().replace('_', " "),
                name,
                self.spec.target.name
            );
            cx.retry(|| async {
                match action {
                    Action::Create(body) | Action::Replace { after: body, .. } => {
                        target.put_object(&caps, *family, name, body).await
                    }
                    Action::Delete(_) => target.delete_object(&caps, *family, name).await,
                }
                .map_err(|e| fail_domain(&self.id, &what, e))
            })
            .await
            .map_err(|mut e| {
                if !e.is_interrupted() {
                    e.message = format!(
                        "{}; exclude it under `metadata.{}` to copy the rest",
                        e.message,
                        plan_key(*family)
                    );
                }
                e
            })?;
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

    fn spec(prune: bool) -> MetadataSpec {
        let all = vec!["*".to_owned()];
        MetadataSpec {
            index_templates: all.clone(),
            component_templates: all.clone(),
            legacy_templates: all.clone(),
            pipelines: all.clone(),
            ism_policies: all.clone(),
            scripts: all,
            prune,
        }
    }

    fn observed(source: Value, target: Value, engine: &str) -> Value {
        json!({
            "source": {"engine": "OpenSearch_2.11", "objects": source},
            "target": {"engine": engine, "objects": target},
        })
    }

    #[test]
    fn objects_are_created_replaced_kept_or_pruned() {
        let source = json!({
            "index_template": {"logs": {"index_patterns": ["logs-*"], "priority": 1}},
            "pipeline": {"p": {"processors": []}},
        });
        let target = json!({
            "index_template": {"logs": {"index_patterns": ["logs-*"], "priority": 2}, "old": {"index_patterns": ["o"]}},
            "pipeline": {"p": {"processors": []}},
        });
        let kept = decide(
            &spec(false),
            &observed(source.clone(), target.clone(), "OpenSearch_2.11"),
        );
        assert_eq!(kept.actions.len(), 1, "{kept:?}");
        assert_eq!(
            kept.fields(),
            vec![FieldChange {
                path: "index_template[logs].priority".into(),
                before: Some(FieldValue::known(2)),
                after: FieldValue::known(1),
            }]
        );
        assert_eq!(
            kept.unchanged,
            vec![
                "index_template[old] (only on the target; kept, `prune` is false)".to_owned(),
                "pipeline[p]".to_owned()
            ]
        );
        let pruned = decide(&spec(true), &observed(source, target, "OpenSearch_2.11"));
        assert!(
            matches!(pruned.actions.last(), Some((Family::IndexTemplate, n, Action::Delete(_))) if n == "old")
        );
    }

    #[test]
    fn what_an_older_target_cannot_take_is_refused_by_name() {
        let source = json!({
            "index_template": {"logs": {"index_patterns": ["logs-*"], "data_stream": {}}},
            "legacy_template": {"typed": {"index_patterns": ["t-*"], "mappings": {"event": {"properties": {}}}},
                                 "doc": {"index_patterns": ["d-*"], "mappings": {"_doc": {"properties": {"a": {"type": "keyword"}}}}}},
            "ism_policy": {"hot": {"default_state": "hot", "states": [], "ism_template": [{"index_patterns": ["x"], "priority": 0}]}},
        });
        let d = decide(
            &spec(false),
            &observed(source, json!({}), "Elasticsearch_7.4"),
        );
        assert_eq!(d.refused.len(), 3, "{:?}", d.refused);
        assert!(
            d.refused[0].starts_with("index_template[logs]: Elasticsearch 7.4 has no composable")
        );
        assert!(
            d.refused[1].starts_with("legacy_template[typed]: its mappings are of type `event`")
        );
        assert!(d.refused[2].starts_with("ism_policy[hot]: it has an `ism_template`"));
        // `_doc` is unwrapped, not refused.
        assert!(d.actions.iter().any(|(f, n, a)| *f == Family::LegacyTemplate
            && n == "doc"
            && matches!(a, Action::Create(b) if b["mappings"]["properties"]["a"]["type"] == "keyword")));
    }

    #[test]
    fn a_template_needs_its_component_templates() {
        let source =
            json!({"index_template": {"logs": {"index_patterns": ["l"], "composed_of": ["base"]}}});
        let d = decide(
            &spec(false),
            &observed(source.clone(), json!({}), "OpenSearch_2.11"),
        );
        assert_eq!(d.refused.len(), 1);
        assert!(d.refused[0].contains("component template base"));
        let on_target = json!({"component_template": {"base": {"template": {}}}});
        let d = decide(
            &spec(false),
            &observed(source, on_target, "OpenSearch_2.11"),
        );
        assert!(d.refused.is_empty(), "{:?}", d.refused);
    }
}
