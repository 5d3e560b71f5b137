//! The cluster metadata a domain keeps beside its indices, which a snapshot restored with
//! `include_global_state: false` does not bring back: index templates ([`super::templates`]),
//! ingest pipelines ([`super::ingest`]), stored scripts ([`super::scripts`]), ISM policies and the
//! managed-index records of the ISM plugin's system index ([`super::ism`]), and the Dashboards
//! saved objects ([`super::dashboards`]). This module holds that state, the sandbox's notion of
//! "now" in epoch milliseconds (wall time plus whatever `POST /_sandbox/clock` added), a few JSON
//! helpers the families share, and the per-domain seeds.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::DataState;
use super::version::Engine;
use crate::Shared;
use crate::config::SeedData;

/// Everything of a domain's cluster metadata that is not an index.
#[derive(Default)]
pub struct Meta {
    pub templates: super::templates::Templates,
    /// Ingest pipelines by id, as stored (the PUT body).
    pub pipelines: BTreeMap<String, Value>,
    /// Stored scripts and search templates by id: `{"lang", "source", "options"?}`.
    pub scripts: BTreeMap<String, Value>,
    pub ism: super::ism::Ism,
    pub dashboards: super::dashboards::SavedObjects,
    /// Per index, the rollover targets (alias or data stream) it was rolled over for, with when
    /// (`rollover_info` of the index metadata).
    pub rollover_info: BTreeMap<String, BTreeMap<String, i64>>,
}

/// Epoch milliseconds of the sandbox's clock: wall time plus the offset tests pushed forward.
pub fn now_ms(shared: &Shared) -> i64 {
    let offset = shared
        .clock
        .now()
        .saturating_duration_since(tokio::time::Instant::now());
    chrono::Utc::now().timestamp_millis() + offset.as_millis() as i64
}

/// Milliseconds as the ISO-8601 text OpenSearch prints.
pub fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Deep merge of `over` onto `base` (objects merge key by key, anything else is replaced), the way
/// mappings and component templates compose.
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Keys that can start a mappings object; anything else as the only key is a type name
/// (`{"_doc": {...}}`, or a 6.x type) that wraps the real mappings.
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
    "_data_stream_timestamp",
];

/// Mappings without their type wrapper.
pub fn typeless(mappings: &Value) -> Value {
    if let Some(o) = mappings.as_object()
        && o.len() == 1
        && let Some((k, v)) = o.iter().next()
        && !MAPPING_KEYS.contains(&k.as_str())
        && v.is_object()
    {
        return v.clone();
    }
    mappings.clone()
}

/// Flat `index.*` settings (strings) from a settings object as a request writes it.
pub fn flat_settings(settings: &Value) -> BTreeMap<String, String> {
    if settings.is_null() {
        return BTreeMap::new();
    }
    super::indices::flatten_settings(settings)
}

/// A settings object from flat settings, nested as GET shows it, or flat with `flat_settings`.
pub fn settings_json(flat: &BTreeMap<String, String>, flat_wanted: bool) -> Value {
    if flat_wanted {
        Value::Object(
            flat.iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect::<Map<_, _>>(),
        )
    } else if flat.is_empty() {
        json!({})
    } else {
        super::indices::nest(flat)
    }
}

/// `*`-wildcard name match over a comma-separated expression.
pub fn matches_any(expr: &str, name: &str) -> bool {
    expr.split(',')
        .map(str::trim)
        .any(|p| super::indices::glob(p, name))
}

/// Applies a domain's `seed_data` metadata (templates, pipelines, scripts, ISM policies, saved
/// objects) through the same code the REST API runs, so a seed is checked as a request would be.
/// `Err` names the seed entry and the server's reason.
pub fn apply_seed(
    state: &mut DataState,
    engine: &Engine,
    seed: &SeedData,
    now: i64,
) -> Result<(), String> {
    let fail = |what: &str, name: &str, resp: crate::http::Resp| {
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .bytes()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .unwrap_or_default();
        let reason = body["error"]["reason"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| body["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| body.to_string());
        format!("{what}.{name}: the domain refuses it ({status}): {reason}")
    };
    for (name, body) in &seed.component_templates {
        super::templates::put_component(state, engine, name, body, false)
            .map_err(|r| fail("component_templates", name, r))?;
    }
    for (name, body) in &seed.index_templates {
        super::templates::put_composable(state, engine, name, body, false)
            .map_err(|r| fail("index_templates", name, r))?;
    }
    for (name, body) in &seed.legacy_templates {
        super::templates::put_legacy(state, engine, name, body, false, None, true)
            .map_err(|r| fail("legacy_templates", name, r))?;
    }
    for (id, body) in &seed.pipelines {
        super::ingest::put_pipeline(state, engine, id, body)
            .map_err(|r| fail("pipelines", id, r))?;
    }
    for (id, body) in &seed.scripts {
        super::scripts::put_script(state, id, body).map_err(|r| fail("scripts", id, r))?;
    }
    for (id, body) in &seed.ism_policies {
        super::ism::put_policy(state, engine, id, body, None, now)
            .map_err(|r| fail("ism_policies", id, r))?;
    }
    for (tenant, objects) in &seed.saved_objects {
        super::dashboards::seed(state, engine, tenant, objects, now)
            .map_err(|why| format!("saved_objects.{tenant}: {why}"))?;
    }
    Ok(())
}
