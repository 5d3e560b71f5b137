//! Index State Management, as the index-management plugin serves it: `_plugins/_ism` on OpenSearch
//! (which also keeps the `_opendistro/_ism` paths), `_opendistro/_ism` on Elasticsearch 6.8 and
//! later. Policies are documents of the plugin's config index: creating one over an existing id
//! without `if_seq_no`/`if_primary_term` is a version conflict, as is a stale pair. `add`,
//! `remove`, `change_policy` and `explain` answer with the plugin's shapes and messages.
//!
//! Managed indices live in the same system index, which is never part of a snapshot: a restored
//! index is not managed until `add` is called on the target. A policy's `ism_template` attaches
//! indices created after it (a data stream's backing indices by the stream's name). The plugin's job
//! runs every `job_interval` (5 minutes) of simulated time; it is caught up before each request,
//! one step per run as the plugin does: initialise, then each action of the state (`rollover`,
//! `delete`, `read_only`, `read_write`, `replica_count`, `open`, `close`, `index_priority` act on
//! the index; `force_merge` and `notification` have nothing to act on here; other actions fail the
//! index with a message naming them), then the transitions (`min_index_age`, `min_doc_count`,
//! `min_size`, `min_rollover_age`; ages in simulated time).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::templates::{parse_bytes, parse_time};
use super::version::Engine;
use super::{DataState, DomainData, Req};
use crate::Shared;
use crate::http::{Resp, json as json_resp, os_error};

/// The plugin's config index, named in delete answers.
const CONFIG_INDEX: &str = ".opendistro-ism-config";
/// `plugins.index_state_management.job_interval`, in simulated seconds.
const JOB_INTERVAL_SECS: f64 = 300.0;

const ACTIONS: &[&str] = &[
    "alias",
    "allocation",
    "close",
    "delete",
    "force_merge",
    "index_priority",
    "notification",
    "open",
    "read_only",
    "read_write",
    "replica_count",
    "rollup",
    "rollover",
    "search_only",
    "shrink",
    "snapshot",
    "transform",
    "stop_replication",
    "convert_index_to_remote",
];

/// A stored policy: its document fields and the policy body as the plugin prints it.
#[derive(Debug, Clone)]
pub struct StoredPolicy {
    pub seq_no: u64,
    pub primary_term: u64,
    pub version: u64,
    pub policy: Value,
}

/// One managed index: the job and its metadata.
#[derive(Debug, Clone)]
pub struct Managed {
    pub index_uuid: String,
    pub policy_id: String,
    pub policy: Value,
    pub policy_seq_no: u64,
    pub policy_primary_term: u64,
    pub enrolled_ms: i64,
    pub runs: u64,
    pub initialized: bool,
    pub state: Option<(String, i64)>,
    pub action_index: usize,
    pub action: Option<(String, i64)>,
    pub step: Option<(String, String, i64)>,
    pub transition_to: Option<String>,
    pub info: Value,
    pub failed: bool,
    pub completed: bool,
    pub rolled_over: bool,
    pub rolled_over_index: Option<String>,
    pub change: Option<(String, Option<String>)>,
}

/// The plugin's state on one domain.
#[derive(Default)]
pub struct Ism {
    pub policies: BTreeMap<String, StoredPolicy>,
    pub managed: BTreeMap<String, Managed>,
    seq: u64,
}

impl Ism {
    fn next_seq(&mut self) -> u64 {
        let s = self.seq;
        self.seq += 1;
        s
    }

    /// Drops the job of an index that no longer exists.
    pub fn forget(&mut self, index: &str) {
        self.managed.remove(index);
    }
}

/// Which paths this version serves: `_plugins` on OpenSearch, `_opendistro` on OpenSearch and on
/// Elasticsearch from 6.8.
pub fn serves(engine: &Engine, prefix: &str) -> bool {
    match prefix {
        "_plugins" => engine.is_opensearch(),
        "_opendistro" => engine.at_least_es(6, 8),
        _ => false,
    }
}

fn status_exception(status: u16, reason: &str) -> Resp {
    os_error(status, "status_exception", reason)
}

fn illegal(reason: &str) -> Resp {
    os_error(400, "illegal_argument_exception", reason)
}

/// Parses and checks a policy body (`{"policy": {...}}`) as `Policy.parse` does; returns the policy
/// as the plugin prints it.
fn parse_policy(engine: &Engine, id: &str, body: &Value, now: i64) -> Result<Value, Resp> {
    let Some((_, p)) = body
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.iter().next())
    else {
        return Err(os_error(
            400,
            "parsing_exception",
            "Failed to parse object: expecting token of type [FIELD_NAME] but found [END_OBJECT]",
        ));
    };
    let Some(p) = p.as_object() else {
        return Err(os_error(
            400,
            "parsing_exception",
            "Failed to parse object: expecting token of type [START_OBJECT]",
        ));
    };
    let mut out = Map::new();
    out.insert("policy_id".into(), json!(id));
    let mut description = None;
    let mut default_state = None;
    let mut states = Vec::new();
    let mut ism_template = Value::Null;
    let mut error_notification = Value::Null;
    let mut schema_version = json!(1);
    for (k, v) in p {
        match k.as_str() {
            "description" => description = v.as_str().map(str::to_owned),
            "default_state" => default_state = v.as_str().map(str::to_owned),
            "schema_version" => schema_version = v.clone(),
            "last_updated_time" | "policy_id" | "user" => {}
            "error_notification" => error_notification = v.clone(),
            "states" => {
                let Some(list) = v.as_array() else {
                    return Err(os_error(
                        400,
                        "parsing_exception",
                        "Failed to parse object: expecting token of type [START_ARRAY]",
                    ));
                };
                for s in list {
                    states.push(parse_state(s)?);
                }
            }
            "ism_template" if engine.at_least_es(7, 10) => {
                let list = match v {
                    Value::Null => Vec::new(),
                    Value::Array(a) => a.clone(),
                    o @ Value::Object(_) => vec![o.clone()],
                    _ => {
                        return Err(os_error(
                            400,
                            "parsing_exception",
                            "Failed to parse object: expecting token of type [START_ARRAY]",
                        ));
                    }
                };
                let mut templates = Vec::new();
                for t in list {
                    let mut tt = Map::new();
                    for (tk, tv) in t.as_object().into_iter().flatten() {
                        match tk.as_str() {
                            "index_patterns" | "priority" => {
                                tt.insert(tk.clone(), tv.clone());
                            }
                            "last_updated_time" => {}
                            other => {
                                return Err(illegal(&format!(
                                    "Invalid field: [{other}] found in ISMTemplate."
                                )));
                            }
                        }
                    }
                    tt.entry("priority").or_insert(json!(0));
                    tt.entry("index_patterns").or_insert(json!([]));
                    tt.insert("last_updated_time".into(), json!(now));
                    templates.push(Value::Object(tt));
                }
                if !v.is_null() {
                    ism_template = Value::Array(templates);
                }
            }
            other => {
                return Err(illegal(&format!(
                    "Invalid field: [{other}] found in Policy."
                )));
            }
        }
    }
    let Some(description) = description else {
        return Err(illegal("description is null"));
    };
    let Some(default_state) = default_state else {
        return Err(illegal("default_state is null"));
    };
    let names: Vec<&str> = states.iter().filter_map(|s| s["name"].as_str()).collect();
    for s in &states {
        for t in s["transitions"].as_array().into_iter().flatten() {
            let target = t["state_name"].as_str().unwrap_or("");
            if !names.contains(&target) {
                return Err(illegal(&format!(
                    "Policy contains a transition in state={} pointing to a nonexistent state={target}",
                    s["name"].as_str().unwrap_or("")
                )));
            }
        }
    }
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    if unique.len() != names.len() {
        return Err(illegal("Policy cannot have duplicate state names"));
    }
    if states.is_empty() {
        return Err(illegal("Policy must contain at least one State"));
    }
    if !names.contains(&default_state.as_str()) {
        return Err(illegal("Policy must have a valid default state"));
    }
    out.insert("description".into(), json!(description));
    out.insert("last_updated_time".into(), json!(now));
    out.insert("schema_version".into(), schema_version);
    out.insert("error_notification".into(), error_notification);
    out.insert("default_state".into(), json!(default_state));
    out.insert("states".into(), Value::Array(states));
    out.insert("ism_template".into(), ism_template);
    Ok(Value::Object(out))
}

fn parse_state(s: &Value) -> Result<Value, Resp> {
    let mut name = None;
    let mut actions = Vec::new();
    let mut transitions = Vec::new();
    for (k, v) in s.as_object().into_iter().flatten() {
        match k.as_str() {
            "name" => name = v.as_str().map(str::to_owned),
            "actions" => {
                for a in v.as_array().into_iter().flatten() {
                    actions.push(parse_action(a)?);
                }
            }
            "transitions" => {
                for t in v.as_array().into_iter().flatten() {
                    let mut state_name = None;
                    let mut conditions = None;
                    for (tk, tv) in t.as_object().into_iter().flatten() {
                        match tk.as_str() {
                            "state_name" => state_name = tv.as_str().map(str::to_owned),
                            "conditions" => {
                                let c = tv.as_object().cloned().unwrap_or_default();
                                for ck in c.keys() {
                                    if ![
                                        "min_index_age",
                                        "min_doc_count",
                                        "min_size",
                                        "cron",
                                        "min_rollover_age",
                                        "no_alias",
                                        "min_state_age",
                                    ]
                                    .contains(&ck.as_str())
                                    {
                                        return Err(illegal(&format!(
                                            "Invalid field: [{ck}] found in Conditions."
                                        )));
                                    }
                                }
                                if c.len() > 1 {
                                    return Err(illegal(
                                        "Cannot provide more than one Transition condition",
                                    ));
                                }
                                if c.get("min_doc_count")
                                    .and_then(Value::as_i64)
                                    .is_some_and(|n| n <= 0)
                                {
                                    return Err(illegal(
                                        "Transition doc count condition must be greater than 0",
                                    ));
                                }
                                conditions = Some(Value::Object(c));
                            }
                            other => {
                                return Err(illegal(&format!(
                                    "Invalid field: [{other}] found in Transition."
                                )));
                            }
                        }
                    }
                    let Some(state_name) = state_name else {
                        return Err(illegal("Transition state name is null"));
                    };
                    let mut tj = json!({"state_name": state_name});
                    if let Some(c) = conditions {
                        tj["conditions"] = c;
                    }
                    transitions.push(tj);
                }
            }
            other => {
                return Err(illegal(&format!(
                    "Invalid field: [{other}] found in State."
                )));
            }
        }
    }
    let Some(name) = name else {
        return Err(illegal("State name is null"));
    };
    Ok(json!({"name": name, "actions": actions, "transitions": transitions}))
}

fn parse_action(a: &Value) -> Result<Value, Resp> {
    let mut out = Map::new();
    let mut kind = None;
    for (k, v) in a.as_object().into_iter().flatten() {
        match k.as_str() {
            "timeout" | "retry" => {
                out.insert(k.clone(), v.clone());
            }
            other if ACTIONS.contains(&other) => {
                if other == "replica_count"
                    && v.get("number_of_replicas")
                        .and_then(Value::as_i64)
                        .is_none()
                {
                    return Err(illegal("Must have number_of_replicas"));
                }
                kind = Some(other.to_owned());
                out.insert(k.clone(), v.clone());
            }
            other => {
                return Err(illegal(&format!(
                    "Invalid field: [{other}] found in Actions."
                )));
            }
        }
    }
    if kind.is_none() {
        return Err(illegal("Action inside state is null"));
    }
    out.entry("retry")
        .or_insert(json!({"count": 3, "backoff": "exponential", "delay": "1m"}));
    Ok(Value::Object(out))
}

fn action_kind(a: &Value) -> String {
    a.as_object()
        .and_then(|o| o.keys().find(|k| *k != "retry" && *k != "timeout").cloned())
        .unwrap_or_default()
}

/// `PUT <ism>/policies/<id>`: `Ok((status, answer))`.
pub fn put_policy(
    state: &mut DataState,
    engine: &Engine,
    id: &str,
    body: &Value,
    if_match: Option<(u64, u64)>,
    now: i64,
) -> Result<(u16, Value), Resp> {
    let policy = parse_policy(engine, id, body, now)?;
    if let Some(templates) = policy["ism_template"].as_array() {
        for t in templates {
            let patterns: Vec<String> = t["index_patterns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect();
            let priority = t["priority"].as_i64().unwrap_or(0);
            let clash = state.meta.ism.policies.iter().any(|(pid, other)| {
                pid != id
                    && other.policy["ism_template"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|ot| {
                            ot["priority"].as_i64().unwrap_or(0) == priority
                                && ot["index_patterns"]
                                    .as_array()
                                    .into_iter()
                                    .flatten()
                                    .filter_map(Value::as_str)
                                    .any(|op| {
                                        patterns.iter().any(|p| {
                                            super::indices::glob(p, op)
                                                || super::indices::glob(op, p)
                                        })
                                    })
                        })
            });
            if clash {
                return Err(illegal(&format!(
                    "New policy {id} has an ISM template with index pattern [{}] matching existing policy templates, please use a different priority than {priority}",
                    patterns.join(", ")
                )));
            }
        }
    }
    let ism = &mut state.meta.ism;
    let existing = ism.policies.get(id).cloned();
    let conflict = |current: Option<&StoredPolicy>| {
        let reason = match (if_match, current) {
            (None, Some(c)) => format!(
                "[{id}]: version conflict, document already exists (current version [{}])",
                c.version
            ),
            (Some((s, t)), Some(c)) => format!(
                "[{id}]: version conflict, required seqNo [{s}], primary term [{t}]. current document has seqNo [{}] and primary term [{}]",
                c.seq_no, c.primary_term
            ),
            (Some((s, t)), None) => format!(
                "[{id}]: version conflict, required seqNo [{s}], primary term [{t}]. but no document was found"
            ),
            (None, None) => String::new(),
        };
        let cause = json!({"type": "version_conflict_engine_exception", "reason": reason, "index": CONFIG_INDEX, "shard": "0", "index_uuid": "ism-config-uuid"});
        json_resp(
            409,
            &json!({"error": {"root_cause": [cause.clone()], "type": "version_conflict_engine_exception", "reason": reason, "index": CONFIG_INDEX, "shard": "0", "index_uuid": "ism-config-uuid"}, "status": 409}),
        )
    };
    match (if_match, &existing) {
        (None, Some(c)) => return Err(conflict(Some(c))),
        (Some((s, t)), Some(c)) if (s, t) != (c.seq_no, c.primary_term) => {
            return Err(conflict(Some(c)));
        }
        (Some(_), None) => return Err(conflict(None)),
        _ => {}
    }
    let seq_no = ism.next_seq();
    let version = existing.as_ref().map_or(1, |c| c.version + 1);
    ism.policies.insert(
        id.to_owned(),
        StoredPolicy {
            seq_no,
            primary_term: 1,
            version,
            policy: policy.clone(),
        },
    );
    let status = if existing.is_some() { 200 } else { 201 };
    Ok((
        status,
        json!({"_id": id, "_version": version, "_primary_term": 1, "_seq_no": seq_no, "policy": {"policy": policy}}),
    ))
}

/// Attaches `policy` to `index` (the `add` API and ISM templates).
fn attach(state: &mut DataState, index: &str, policy_id: &str, now: i64) {
    let Some(p) = state.meta.ism.policies.get(policy_id).cloned() else {
        return;
    };
    let uuid = state
        .indices
        .get(index)
        .map(|i| i.uuid())
        .unwrap_or_default();
    state.meta.ism.managed.insert(
        index.to_owned(),
        Managed {
            index_uuid: uuid,
            policy_id: policy_id.to_owned(),
            policy: p.policy,
            policy_seq_no: p.seq_no,
            policy_primary_term: p.primary_term,
            enrolled_ms: now,
            runs: 0,
            initialized: false,
            state: None,
            action_index: 0,
            action: None,
            step: None,
            transition_to: None,
            info: json!({}),
            failed: false,
            completed: false,
            rolled_over: false,
            rolled_over_index: None,
            change: None,
        },
    );
}

/// An index was just created: the highest-priority `ism_template` matching it (by its data
/// stream's name for a backing index), among templates older than the index, attaches its policy.
pub fn on_index_created(state: &mut DataState, engine: &Engine, index: &str, now: i64) {
    if !engine.at_least_es(7, 10) {
        return;
    }
    let Some(i) = state.indices.get(index) else {
        return;
    };
    let lookup = match &i.data_stream {
        Some(ds) => ds.clone(),
        None if index.starts_with('.')
            || i.settings.get("index.hidden").is_some_and(|h| h == "true") =>
        {
            return;
        }
        None => index.to_owned(),
    };
    let created = i.creation_millis();
    let mut best: Option<(i64, String)> = None;
    for (id, p) in &state.meta.ism.policies {
        for t in p.policy["ism_template"].as_array().into_iter().flatten() {
            let matches = t["index_patterns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .any(|pat| super::indices::glob(pat, &lookup));
            let older = t["last_updated_time"].as_i64().unwrap_or(0) <= created;
            let priority = t["priority"].as_i64().unwrap_or(0);
            if matches && older && best.as_ref().is_none_or(|(bp, _)| priority > *bp) {
                best = Some((priority, id.clone()));
            }
        }
    }
    if let Some((_, id)) = best {
        attach(state, index, &id, now);
    }
}

/// Runs every managed index's job up to now (one step per `job_interval` of simulated time).
pub fn catch_up(shared: &Shared, data: &DomainData) {
    let scale = shared.config.time_scale;
    if scale <= 0.0 {
        return;
    }
    let now = super::meta::now_ms(shared);
    let interval_ms = JOB_INTERVAL_SECS * scale * 1000.0;
    let mut state = data.lock();
    if state.meta.ism.managed.is_empty() {
        return;
    }
    // Bounded so that a clock pushed years ahead costs a bounded number of runs per request.
    for _ in 0..20_000 {
        let due: Option<(String, i64)> = state
            .meta
            .ism
            .managed
            .iter()
            .filter_map(|(n, m)| {
                let at = m.enrolled_ms as f64 + (m.runs + 1) as f64 * interval_ms;
                (at <= now as f64 && !m.failed && !m.completed).then(|| (n.clone(), at as i64))
            })
            .min_by_key(|(_, at)| *at);
        let Some((index, at)) = due else { break };
        run_once(&mut state, &data.engine, &index, at, scale);
    }
}

fn msg(m: String) -> Value {
    json!({"message": m})
}

/// One run of the plugin's job for `index` at time `at` (epoch ms on the sandbox clock).
fn run_once(state: &mut DataState, engine: &Engine, index: &str, at: i64, scale: f64) {
    let Some(mut m) = state.meta.ism.managed.get(index).cloned() else {
        return;
    };
    m.runs += 1;
    if !state.indices.contains_key(index) {
        state.meta.ism.managed.remove(index);
        return;
    }
    if !m.initialized {
        let start = m
            .change
            .take()
            .and_then(|(_, s)| s)
            .unwrap_or_else(|| m.policy["default_state"].as_str().unwrap_or("").to_owned());
        m.initialized = true;
        m.state = Some((start, at));
        m.info = msg(format!("Successfully initialized policy: {}", m.policy_id));
        state.meta.ism.managed.insert(index.to_owned(), m);
        return;
    }
    let between_actions = m.action.is_none() || m.transition_to.is_some();
    if let (Some((new_id, new_state)), true) = (m.change.clone(), between_actions) {
        if let Some(p) = state.meta.ism.policies.get(&new_id).cloned() {
            m.policy = p.policy;
            m.policy_id = new_id.clone();
            m.policy_seq_no = p.seq_no;
            m.policy_primary_term = p.primary_term;
            m.transition_to = new_state.or_else(|| m.state.as_ref().map(|s| s.0.clone()));
            m.completed = false;
            m.info = msg(format!("Attempting to change policy to {new_id}"));
        }
        m.change = None;
        state.meta.ism.managed.insert(index.to_owned(), m);
        return;
    }
    if let Some(next) = m.transition_to.take() {
        m.state = Some((next, at));
        m.action_index = 0;
        m.action = None;
        m.step = None;
    }
    let state_name = m.state.as_ref().map(|s| s.0.clone()).unwrap_or_default();
    let Some(st) = m.policy["states"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == json!(state_name)))
        .cloned()
    else {
        m.failed = true;
        m.info = msg(format!(
            "Failed to find state={state_name} in policy={}",
            m.policy_id
        ));
        state.meta.ism.managed.insert(index.to_owned(), m);
        return;
    };
    let actions = st["actions"].as_array().cloned().unwrap_or_default();
    if m.action_index < actions.len() {
        let action = &actions[m.action_index];
        let kind = action_kind(action);
        if m.action.as_ref().is_none_or(|(n, _)| *n != kind) {
            m.action = Some((kind.clone(), at));
        }
        let outcome = act(
            state,
            engine,
            index,
            &kind,
            &action[&kind],
            &mut m,
            at,
            scale,
        );
        match outcome {
            Act::Done(step, info) => {
                m.step = Some((step, "completed".into(), at));
                m.info = msg(info);
                m.action_index += 1;
            }
            Act::Pending(step, info) => {
                m.step = Some((step, "condition_not_met".into(), at));
                m.info = info;
            }
            Act::Failed(step, info) => {
                m.step = Some((step, "failed".into(), at));
                m.info = msg(info);
                m.failed = true;
            }
            Act::Deleted => {
                state.meta.ism.managed.remove(index);
                return;
            }
        }
        state.meta.ism.managed.insert(index.to_owned(), m);
        return;
    }
    // The transitions of the state.
    m.action = Some((
        "transition".into(),
        m.action
            .as_ref()
            .filter(|(n, _)| n == "transition")
            .map_or(at, |(_, s)| *s),
    ));
    let transitions = st["transitions"].as_array().cloned().unwrap_or_default();
    if transitions.is_empty() {
        m.completed = true;
        m.step = Some(("attempt_transition_step".into(), "completed".into(), at));
        m.info = json!({});
        state.meta.ism.managed.insert(index.to_owned(), m);
        return;
    }
    let i = &state.indices[index];
    let age = (at - i.creation_millis()) as f64 / 1000.0 / scale;
    let docs = i.docs.len() as u64;
    let size = i.size_in_bytes();
    let rolled_at = state
        .meta
        .rollover_info
        .get(index)
        .and_then(|r| r.values().min().copied());
    let state_start = m.state.as_ref().map_or(at, |s| s.1);
    let mut next = None;
    for t in &transitions {
        let c = &t["conditions"];
        let met = if let Some(a) = c["min_index_age"].as_str() {
            parse_time(a).is_some_and(|s| age >= s)
        } else if let Some(n) = c["min_doc_count"].as_u64() {
            docs >= n
        } else if let Some(s) = c["min_size"].as_str() {
            parse_bytes(s).is_some_and(|b| size >= b)
        } else if let Some(a) = c["min_rollover_age"].as_str() {
            let Some(r) = rolled_at else {
                m.failed = true;
                m.step = Some(("attempt_transition_step".into(), "failed".into(), at));
                m.info = msg(format!(
                    "Failed to transition index as min_rollover_age condition was used, but the index has never been rolled over [index={index}]"
                ));
                state.meta.ism.managed.insert(index.to_owned(), m);
                return;
            };
            parse_time(a).is_some_and(|s| (at - r) as f64 / 1000.0 / scale >= s)
        } else if let Some(a) = c["min_state_age"].as_str() {
            parse_time(a).is_some_and(|s| (at - state_start) as f64 / 1000.0 / scale >= s)
        } else {
            c.is_null() || c.as_object().is_some_and(|o| o.is_empty())
        };
        if met {
            next = t["state_name"].as_str().map(str::to_owned);
            break;
        }
    }
    match next {
        Some(n) => {
            m.step = Some(("attempt_transition_step".into(), "completed".into(), at));
            m.info = msg(format!("Transitioning to {n} [index={index}]"));
            m.transition_to = Some(n);
        }
        None => {
            m.step = Some((
                "attempt_transition_step".into(),
                "condition_not_met".into(),
                at,
            ));
            m.info = msg(format!("Evaluating transition conditions [index={index}]"));
        }
    }
    state.meta.ism.managed.insert(index.to_owned(), m);
}

enum Act {
    Done(String, String),
    Pending(String, Value),
    Failed(String, String),
    Deleted,
}

#[allow(clippy::too_many_arguments)]
fn act(
    state: &mut DataState,
    engine: &Engine,
    index: &str,
    kind: &str,
    config: &Value,
    m: &mut Managed,
    at: i64,
    scale: f64,
) -> Act {
    match kind {
        "rollover" => {
            let step = "attempt_rollover".to_owned();
            let stream = state.indices[index].data_stream.clone();
            let alias_key = |k: &str| state.indices[index].settings.get(k).cloned();
            let target = match &stream {
                Some(ds) => Some(ds.clone()),
                None => {
                    alias_key("index.plugins.index_state_management.rollover_alias").or_else(|| {
                        alias_key("index.opendistro.index_state_management.rollover_alias")
                    })
                }
            };
            let Some(target) = target else {
                return Act::Failed(
                    step,
                    format!("Missing rollover_alias index setting [index={index}]"),
                );
            };
            if state
                .meta
                .rollover_info
                .get(index)
                .is_some_and(|r| r.contains_key(&target))
            {
                return Act::Done(
                    step,
                    format!(
                        "This index has already been rolled over using this alias, treating as a success [index={index}, alias={target}]"
                    ),
                );
            }
            if stream.is_none() {
                let props = state.indices[index].aliases.get(&target).cloned();
                let holders = state
                    .indices
                    .values()
                    .filter(|i| i.aliases.contains_key(&target))
                    .count();
                let ok = match props {
                    None => false,
                    Some(p) => p["is_write_index"] == json!(true) || holders <= 1,
                };
                if !ok {
                    return Act::Failed(
                        step,
                        format!(
                            "Missing alias or not the write index when rollover [index={index}]"
                        ),
                    );
                }
            }
            let i = &state.indices[index];
            let age = (at - i.creation_millis()) as f64 / 1000.0 / scale;
            let docs = i.docs.len() as u64;
            let size = i.size_in_bytes();
            let mut conditions = Map::new();
            let mut any = false;
            let mut met = false;
            if let Some(a) = config["min_index_age"].as_str() {
                any = true;
                met |= parse_time(a).is_some_and(|s| age >= s);
                conditions.insert("min_index_age".into(), json!({"condition": a, "current": format!("{}s", age as u64), "creationDate": i.creation_millis()}));
            }
            if let Some(n) = config["min_doc_count"].as_u64() {
                any = true;
                met |= docs >= n;
                conditions.insert(
                    "min_doc_count".into(),
                    json!({"condition": n, "current": docs}),
                );
            }
            for key in ["min_size", "min_primary_shard_size"] {
                if let Some(s) = config[key].as_str() {
                    any = true;
                    met |= parse_bytes(s).is_some_and(|b| size >= b);
                    conditions.insert(
                        key.into(),
                        json!({"condition": s, "current": format!("{size}b")}),
                    );
                }
            }
            if any && !met {
                return Act::Pending(
                    step,
                    json!({"message": format!("Pending rollover of index [index={index}]"), "conditions": conditions}),
                );
            }
            match super::templates::rollover(state, engine, at, &target, &json!({})) {
                Ok((_, new)) => {
                    m.rolled_over = true;
                    m.rolled_over_index = Some(new);
                    let message = match stream {
                        Some(ds) => format!(
                            "Successfully rolled over data stream [data_stream={ds} index={index}]"
                        ),
                        None => format!("Successfully rolled over index [index={index}]"),
                    };
                    Act::Done(step, message)
                }
                Err(_) => Act::Failed(
                    step,
                    match &state.indices[index].data_stream {
                        Some(ds) => format!("Failed to rollover data stream [data_stream={ds}]"),
                        None => format!("Failed to rollover index [index={index}]"),
                    },
                ),
            }
        }
        "delete" => {
            if state
                .data_streams
                .values()
                .any(|d| d.indices.last().map(String::as_str) == Some(index))
            {
                return Act::Failed(
                    "attempt_delete".into(),
                    format!("Failed to delete index [index={index}]"),
                );
            }
            state.indices.remove(index);
            state.recoveries.remove(index);
            for d in state.data_streams.values_mut() {
                d.indices.retain(|i| i != index);
            }
            Act::Deleted
        }
        "read_only" | "read_write" => {
            let on = kind == "read_only";
            if let Some(i) = state.indices.get_mut(index) {
                i.settings
                    .insert("index.blocks.write".into(), on.to_string());
            }
            if on {
                Act::Done(
                    "set_read_only".into(),
                    format!("Successfully set index to read-only [index={index}]"),
                )
            } else {
                Act::Done(
                    "set_read_write".into(),
                    format!("Successfully set index to read-write [index={index}]"),
                )
            }
        }
        "replica_count" => {
            let n = config["number_of_replicas"].as_u64().unwrap_or(1);
            if let Some(i) = state.indices.get_mut(index) {
                i.settings
                    .insert("index.number_of_replicas".into(), n.to_string());
            }
            Act::Done(
                "attempt_set_replica_count".into(),
                format!("Successfully set number_of_replicas to {n} [index={index}]"),
            )
        }
        "open" | "close" => {
            if let Some(i) = state.indices.get_mut(index) {
                i.closed = kind == "close";
            }
            if kind == "close" {
                Act::Done(
                    "attempt_close".into(),
                    format!("Successfully closed index [index={index}]"),
                )
            } else {
                Act::Done(
                    "attempt_open".into(),
                    format!("Successfully opened index [index={index}]"),
                )
            }
        }
        "index_priority" => {
            let p = config["priority"].as_u64().unwrap_or(1);
            if let Some(i) = state.indices.get_mut(index) {
                i.settings.insert("index.priority".into(), p.to_string());
            }
            Act::Done(
                "attempt_set_index_priority".into(),
                format!("Successfully set index priority [index={index}]"),
            )
        }
        "force_merge" => Act::Done(
            "wait_for_force_merge".into(),
            format!("Successfully force merged [index={index}]"),
        ),
        "notification" => Act::Done(
            "attempt_notification".into(),
            format!("Successfully sent notification [index={index}]"),
        ),
        other => Act::Failed(
            format!("attempt_{other}"),
            format!("the snapferry sandbox does not run the [{other}] action [index={index}]"),
        ),
    }
}

// ---- REST ----

fn policy_answer(id: &str, p: &StoredPolicy) -> Value {
    json!({"_id": id, "_version": p.version, "_seq_no": p.seq_no, "_primary_term": p.primary_term, "policy": p.policy})
}

fn explain_entry(engine: &Engine, index: &str, uuid: &str, m: Option<&Managed>) -> Value {
    let mut e = Map::new();
    let pid = m.map(|m| json!(m.policy_id)).unwrap_or(Value::Null);
    if engine.is_opensearch() {
        e.insert(
            "index.plugins.index_state_management.policy_id".into(),
            pid.clone(),
        );
    }
    e.insert(
        "index.opendistro.index_state_management.policy_id".into(),
        pid,
    );
    let Some(m) = m else {
        e.insert("enabled".into(), Value::Null);
        return Value::Object(e);
    };
    e.insert("index".into(), json!(index));
    e.insert("index_uuid".into(), json!(uuid));
    e.insert("policy_id".into(), json!(m.policy_id));
    if m.initialized {
        e.insert("policy_seq_no".into(), json!(m.policy_seq_no));
        e.insert("policy_primary_term".into(), json!(m.policy_primary_term));
        if m.rolled_over || m.action.as_ref().is_some_and(|(n, _)| n == "rollover") {
            e.insert("rolled_over".into(), json!(m.rolled_over));
            if let Some(n) = &m.rolled_over_index {
                e.insert("rolled_over_index_name".into(), json!(n));
            }
        }
        if m.completed {
            e.insert("policy_completed".into(), json!(true));
        } else if let Some(t) = &m.transition_to {
            e.insert("transition_to".into(), json!(t));
        } else {
            if let Some((n, s)) = &m.state {
                e.insert("state".into(), json!({"name": n, "start_time": s}));
            }
            if let Some((n, s)) = &m.action {
                e.insert("action".into(), json!({"name": n, "start_time": s, "index": m.action_index, "failed": m.failed, "consumed_retries": 0, "last_retry_time": 0}));
            }
            if let Some((n, status, s)) = &m.step {
                e.insert(
                    "step".into(),
                    json!({"name": n, "start_time": s, "step_status": status}),
                );
            }
        }
        e.insert(
            "retry_info".into(),
            json!({"failed": m.failed, "consumed_retries": 0}),
        );
        e.insert("info".into(), m.info.clone());
    } else {
        e.insert("info".into(), json!({}));
    }
    e.insert("enabled".into(), json!(!m.failed && !m.completed));
    Value::Object(e)
}

fn failed_json(list: &[(String, String, String)]) -> Value {
    let items: Vec<Value> = list
        .iter()
        .map(|(n, u, r)| json!({"index_name": n, "index_uuid": u, "reason": r}))
        .collect();
    json!({"failures": !items.is_empty(), "failed_indices": items})
}

/// The indices an ISM request names (lenient: missing names are skipped, hidden ones included).
fn named_indices(state: &DataState, expr: &str) -> Vec<String> {
    let (expanded, _) = state.expand_streams(expr);
    let mut out = Vec::new();
    for part in expanded.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        for n in state.indices.keys() {
            if super::indices::glob(part, n) && !out.contains(n) {
                out.push(n.clone());
            }
        }
    }
    out
}

/// Every `<prefix>/_ism/...` request.
pub fn handle(data: &DomainData, now: i64, req: &Req, path: &str) -> Resp {
    let engine = &data.engine;
    let prefix = req.segments.first().map(String::as_str).unwrap_or("");
    if !serves(engine, prefix) {
        return super::templates::no_handler(req.method.as_str(), path);
    }
    let what = req.segments.get(2).map(String::as_str).unwrap_or("");
    let arg = req.segments.get(3).cloned();
    let mut state = data.lock();
    use http::Method as M;
    match (&req.method, what) {
        (&M::PUT, "policies") => {
            let id = arg
                .or_else(|| req.query.get("policyID").cloned())
                .unwrap_or_default();
            if id.is_empty() {
                return illegal("Missing policy ID");
            }
            let body = match req.json_body() {
                Ok(b) => b,
                Err(r) => return r,
            };
            let if_match = match (req.query.get("if_seq_no"), req.query.get("if_primary_term")) {
                (Some(s), Some(t)) => match (s.parse(), t.parse()) {
                    (Ok(s), Ok(t)) => Some((s, t)),
                    _ => return illegal("if_seq_no and if_primary_term must be numbers"),
                },
                _ => None,
            };
            match put_policy(&mut state, engine, &id, &body, if_match, now) {
                Ok((status, answer)) => {
                    let mut r = json_resp(status, &answer);
                    if status == 201
                        && let Ok(v) =
                            http::HeaderValue::from_str(&format!("/{prefix}/_ism/policies/{id}"))
                    {
                        r.headers_mut().insert("location", v);
                    }
                    r
                }
                Err(r) => r,
            }
        }
        (&M::GET | &M::HEAD, "policies") => match arg {
            Some(id) => match state.meta.ism.policies.get(&id) {
                Some(p) => json_resp(200, &policy_answer(&id, p)),
                None => status_exception(404, "Policy not found"),
            },
            None => {
                // One page, as the plugin's search of its config index answers: 20 policies by
                // default, sorted by id.
                let number = |k: &str, default: usize| {
                    req.query.get(k).map_or(Ok(default), |v| {
                        v.parse::<usize>().map_err(|_| k.to_owned())
                    })
                };
                let (size, from) = match (number("size", 20), number("from", 0)) {
                    (Ok(s), Ok(f)) => (s, f),
                    (Err(k), _) | (_, Err(k)) => {
                        return illegal(&format!("Failed to parse int parameter [{k}]"));
                    }
                };
                let query = req
                    .query
                    .get("queryString")
                    .map(|q| q.trim_matches('*').to_lowercase())
                    .unwrap_or_default();
                let mut list: Vec<Value> = state
                    .meta
                    .ism
                    .policies
                    .iter()
                    .filter(|(id, p)| {
                        query.is_empty()
                            || id.to_lowercase().contains(&query)
                            || p.policy["description"]
                                .as_str()
                                .is_some_and(|d| d.to_lowercase().contains(&query))
                    })
                    .map(|(id, p)| json!({"_id": id, "_seq_no": p.seq_no, "_primary_term": p.primary_term, "policy": p.policy}))
                    .collect();
                if req.query.get("sortOrder").is_some_and(|o| o == "desc") {
                    list.reverse();
                }
                let total = list.len();
                let page: Vec<Value> = list.into_iter().skip(from).take(size).collect();
                json_resp(200, &json!({"total_policies": total, "policies": page}))
            }
        },
        (&M::DELETE, "policies") => {
            let id = arg.unwrap_or_default();
            let seq = state.meta.ism.next_seq();
            match state.meta.ism.policies.remove(&id) {
                Some(p) => json_resp(
                    200,
                    &json!({"_index": CONFIG_INDEX, "_id": id, "_version": p.version + 1, "result": "deleted", "forced_refresh": true,
                        "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": seq, "_primary_term": 1}),
                ),
                None => json_resp(
                    404,
                    &json!({"_index": CONFIG_INDEX, "_id": id, "_version": 1, "result": "not_found", "forced_refresh": true,
                        "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": seq, "_primary_term": 1}),
                ),
            }
        }
        (&M::POST, "add" | "remove" | "change_policy") => {
            let expr = arg
                .or_else(|| req.query.get("index").cloned())
                .unwrap_or_default();
            if expr.is_empty() {
                return illegal("Missing indices");
            }
            let body = match req.json_body() {
                Ok(b) => b,
                Err(r) => return r,
            };
            let indices = named_indices(&state, &expr);
            let mut failed = Vec::new();
            let mut updated = 0;
            match what {
                "add" => {
                    let Some(policy_id) = body["policy_id"].as_str() else {
                        return illegal("Missing policy_id");
                    };
                    if indices.is_empty() {
                        return json_resp(
                            200,
                            &json!({"updated_indices": 0, "failures": false, "failed_indices": []}),
                        );
                    }
                    if !state.meta.ism.policies.contains_key(policy_id) {
                        return status_exception(
                            404,
                            &format!("Could not find policy={policy_id}"),
                        );
                    }
                    for n in indices {
                        let (closed, uuid) = (state.indices[&n].closed, state.indices[&n].uuid());
                        if closed {
                            failed.push((n.clone(), uuid, "This index is closed".to_owned()));
                        } else if state.meta.ism.managed.contains_key(&n) {
                            failed.push((n.clone(), uuid, "This index already has a policy, use the update policy API to update index policies".to_owned()));
                        } else {
                            attach(&mut state, &n, policy_id, now);
                            updated += 1;
                        }
                    }
                }
                "remove" => {
                    for n in indices {
                        let (closed, uuid) = (state.indices[&n].closed, state.indices[&n].uuid());
                        if closed {
                            failed.push((n.clone(), uuid, "This index is closed".to_owned()));
                        } else if state.meta.ism.managed.remove(&n).is_some() {
                            updated += 1;
                        } else {
                            failed.push((
                                n.clone(),
                                uuid,
                                "This index does not have a policy to remove".to_owned(),
                            ));
                        }
                    }
                }
                _ => {
                    let Some(policy_id) = body["policy_id"].as_str() else {
                        return illegal("Missing policy_id");
                    };
                    if !state.meta.ism.policies.contains_key(policy_id) {
                        return status_exception(
                            404,
                            &format!("Could not find policy={policy_id}"),
                        );
                    }
                    let new_state = body["state"].as_str().map(str::to_owned);
                    let include: Vec<String> = body["include"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|i| i["state"].as_str().map(str::to_owned))
                        .collect();
                    for n in indices {
                        let uuid = state.indices[&n].uuid();
                        match state.meta.ism.managed.get_mut(&n) {
                            None => failed.push((
                                n.clone(),
                                uuid,
                                "This index is not being managed".to_owned(),
                            )),
                            Some(m) => {
                                let current = m.state.as_ref().map(|s| s.0.clone());
                                if !include.is_empty()
                                    && !current.as_ref().is_some_and(|c| include.contains(c))
                                {
                                    continue;
                                }
                                m.change = Some((policy_id.to_owned(), new_state.clone()));
                                updated += 1;
                            }
                        }
                    }
                }
            }
            let mut answer = failed_json(&failed);
            answer["updated_indices"] = json!(updated);
            json_resp(200, &answer)
        }
        (&M::GET | &M::POST, "explain") => {
            let mut out = Map::new();
            let indices = match &arg {
                Some(expr) => {
                    let names: Vec<String> = state.indices.keys().cloned().collect();
                    let (expanded, _) = state.expand_streams(expr);
                    match super::indices::resolve(&names, &expanded) {
                        Ok(v) => v,
                        Err(missing) => return super::indices::index_not_found(&missing),
                    }
                }
                None => state.meta.ism.managed.keys().cloned().collect(),
            };
            let mut total = 0;
            for n in &indices {
                let m = state.meta.ism.managed.get(n);
                if m.is_some() {
                    total += 1;
                }
                let uuid = m.map_or_else(|| state.indices[n].uuid(), |m| m.index_uuid.clone());
                out.insert(n.clone(), explain_entry(engine, n, &uuid, m));
            }
            out.insert("total_managed_indices".into(), json!(total));
            json_resp(200, &Value::Object(out))
        }
        _ => super::templates::no_handler(req.method.as_str(), path),
    }
}
