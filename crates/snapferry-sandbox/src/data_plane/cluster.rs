//! Nodes, shard allocation and what follows from it: `_cluster/health`, the shards `_recovery`
//! lists, and `_cluster/allocation/explain`. A domain has as many data nodes as its
//! `ClusterConfig.InstanceCount`; each index has `number_of_shards` primaries and
//! `number_of_replicas` replicas per primary. A primary goes on a node its allocation filters
//! (`index.routing.allocation.require/include/exclude.*`) allow; a replica on another allowed
//! node than its primary's, and only once the primary is active — so one node leaves every
//! replica unassigned (yellow), and a filter no node satisfies leaves the primaries unassigned
//! (red), as OpenSearch's `FilterAllocationDecider` and `SameShardAllocationDecider` decide.
//!
//! Nothing here is stored: the allocation is computed from the index, its recovery and the clock
//! whenever asked, so it always agrees with itself.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::DomainData;
use super::indices::Index;
use super::restore::Recovery;
use crate::Shared;

/// One data node.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub name: String,
    pub attributes: BTreeMap<String, String>,
    pub ip: String,
}

impl Node {
    pub fn transport_address(&self) -> String {
        format!("{}:9300", self.ip)
    }

    /// The node as `_recovery` names a source or target.
    pub fn recovery_json(&self) -> Value {
        json!({"id": self.id, "host": self.ip, "transport_address": self.transport_address(), "ip": self.ip, "name": self.name})
    }

    /// The value of a filter attribute (`_name`, `_id`, `_ip`, `_host` or a node attribute).
    fn attribute(&self, key: &str) -> Option<&str> {
        match key {
            "_name" => Some(&self.name),
            "_id" => Some(&self.id),
            "_ip" | "_host" | "_host_ip" | "_publish_ip" => Some(&self.ip),
            other => self.attributes.get(other).map(String::as_str),
        }
    }
}

/// The data nodes of a domain, numbered from 0. A blue/green relocation adds node `count`.
pub fn nodes(shared: &Shared, data: &DomainData) -> Vec<Node> {
    let count = shared.domains.data_nodes(&data.key);
    (0..count).map(|n| node(shared, data, n)).collect()
}

/// Node `n` of a domain: a stable id derived from the domain and the number.
pub fn node(shared: &Shared, data: &DomainData, n: u32) -> Node {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(format!("{}/{n}", data.name).as_bytes()));
    let zones = ["a", "b", "c"];
    Node {
        id: digest[..22].to_owned(),
        name: digest[22..54].to_owned(),
        attributes: BTreeMap::from([(
            "zone".to_owned(),
            format!("{}{}", shared.config.region, zones[n as usize % 3]),
        )]),
        ip: format!("10.0.{}.{}", n / 250, 10 + n % 250),
    }
}

/// `index.routing.allocation.{require,include,exclude}.<attr>` filters of an index.
#[derive(Debug, Default)]
struct Filters {
    require: BTreeMap<String, Vec<String>>,
    include: BTreeMap<String, Vec<String>>,
    exclude: BTreeMap<String, Vec<String>>,
}

impl Filters {
    fn of(index: &Index) -> Self {
        let mut f = Self::default();
        for (k, v) in &index.settings {
            let Some(rest) = k.strip_prefix("index.routing.allocation.") else {
                continue;
            };
            let (kind, attr) = match rest.split_once('.') {
                Some(x) => x,
                None => continue,
            };
            let values: Vec<String> = v
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            match kind {
                "require" => f.require.insert(attr.to_owned(), values),
                "include" => f.include.insert(attr.to_owned(), values),
                "exclude" => f.exclude.insert(attr.to_owned(), values),
                _ => None,
            };
        }
        f
    }

    fn matches(values: &[String], got: Option<&str>) -> bool {
        got.is_some_and(|g| values.iter().any(|v| super::indices::glob(v, g)))
    }

    /// `DiscoveryNodeFilters#toString`: `attr:"v1,v2"` one after the other.
    fn text(map: &BTreeMap<String, Vec<String>>) -> String {
        map.iter()
            .map(|(k, v)| format!("{k}:\"{}\"", v.join(",")))
            .collect()
    }

    /// `None` when the node may hold the index, else the `filter` decider's explanation.
    fn refuses(&self, node: &Node) -> Option<String> {
        if !self.require.is_empty()
            && !self
                .require
                .iter()
                .all(|(k, v)| Self::matches(v, node.attribute(k)))
        {
            return Some(format!(
                "node does not match index setting [index.routing.allocation.require] filters [{}]",
                Self::text(&self.require)
            ));
        }
        if !self.include.is_empty()
            && !self
                .include
                .iter()
                .any(|(k, v)| Self::matches(v, node.attribute(k)))
        {
            return Some(format!(
                "node does not match index setting [index.routing.allocation.include] filters [{}]",
                Self::text(&self.include)
            ));
        }
        if self
            .exclude
            .iter()
            .any(|(k, v)| Self::matches(v, node.attribute(k)))
        {
            return Some(format!(
                "node matches index setting [index.routing.allocation.exclude] filters [{}]",
                Self::text(&self.exclude)
            ));
        }
        None
    }
}

/// Where one shard copy stands.
#[derive(Debug, Clone, PartialEq)]
pub enum CopyState {
    Unassigned,
    Initializing,
    Started,
}

/// One shard copy of an index.
#[derive(Debug, Clone)]
pub struct Copy {
    pub shard: u32,
    pub primary: bool,
    pub state: CopyState,
    /// Index into the node list (a relocated primary is on node `nodes.len()`).
    pub node: Option<usize>,
    /// When its recovery started and ends.
    pub started: Instant,
    pub ends_at: Instant,
}

/// How long a replica takes to copy its primary's files (simulated seconds).
fn peer_secs(shared: &Shared, recovery: Option<&Recovery>) -> f64 {
    let l = &shared.config.latencies;
    let bytes = recovery.map_or(0, |r| r.bytes);
    0.25 * l.restore_secs + l.restore_secs_per_kib * bytes as f64 / 1024.0
}

/// Every shard copy of an open index, and for each unassigned one nothing more.
pub fn copies(
    shared: &Shared,
    index: &Index,
    recovery: Option<&Recovery>,
    nodes: &[Node],
    now: Instant,
) -> Vec<Copy> {
    let filters = Filters::of(index);
    let allowed: Vec<usize> = (0..nodes.len())
        .filter(|n| index.warm || filters.refuses(&nodes[*n]).is_none())
        .collect();
    let (p_start, p_end) = match recovery {
        Some(r) => (r.started, r.ends_at),
        None => (now, now),
    };
    let r_end = p_end + shared.config.scaled(peer_secs(shared, recovery));
    let replicas = if index.warm { 0 } else { index.replicas() };
    let mut out = Vec::new();
    for shard in 0..index.shards() as u32 {
        let primary_node = (!allowed.is_empty()).then(|| allowed[shard as usize % allowed.len()]);
        let primary_state = match primary_node {
            None => CopyState::Unassigned,
            Some(_) if now < p_end => CopyState::Initializing,
            Some(_) => CopyState::Started,
        };
        out.push(Copy {
            shard,
            primary: true,
            state: primary_state.clone(),
            node: primary_node,
            started: p_start,
            ends_at: p_end,
        });
        for k in 1..=replicas {
            let slot = (primary_node.is_some() && (k as usize) < allowed.len())
                .then(|| allowed[(shard as usize + k as usize) % allowed.len()]);
            let (state, node) = match slot {
                Some(n) if primary_state == CopyState::Started => (
                    if recovery.is_some() && now < r_end {
                        CopyState::Initializing
                    } else {
                        CopyState::Started
                    },
                    Some(n),
                ),
                _ => (CopyState::Unassigned, None),
            };
            out.push(Copy {
                shard,
                primary: false,
                state,
                node,
                started: p_end,
                ends_at: if recovery.is_some() { r_end } else { p_end },
            });
        }
    }
    out
}

/// `green`, `yellow` or `red` for a set of copies.
pub fn health_of(copies: &[Copy]) -> &'static str {
    if copies
        .iter()
        .any(|c| c.primary && c.state != CopyState::Started)
    {
        "red"
    } else if copies.iter().any(|c| c.state != CopyState::Started) {
        "yellow"
    } else {
        "green"
    }
}

/// Every open index's copies, by index name.
pub fn all_copies(shared: &Shared, data: &DomainData) -> BTreeMap<String, Vec<Copy>> {
    let nodes = nodes(shared, data);
    let now = shared.clock.now();
    let state = data.lock();
    state
        .indices
        .iter()
        .filter(|(_, i)| !i.closed)
        .map(|(n, i)| {
            (
                n.clone(),
                copies(shared, i, state.recoveries.get(n), &nodes, now),
            )
        })
        .collect()
}

/// `GET _cluster/health`.
pub fn health(shared: &Shared, data: &DomainData) -> Value {
    let all = all_copies(shared, data);
    let copies: Vec<&Copy> = all.values().flatten().collect();
    let count = |f: &dyn Fn(&Copy) -> bool| copies.iter().filter(|c| f(c)).count() as u64;
    let active_primary = count(&|c| c.primary && c.state == CopyState::Started);
    let active = count(&|c| c.state == CopyState::Started);
    let initializing = count(&|c| c.state == CopyState::Initializing);
    let unassigned = count(&|c| c.state == CopyState::Unassigned);
    let total = copies.len() as u64;
    let status = if copies
        .iter()
        .any(|c| c.primary && c.state != CopyState::Started)
    {
        "red"
    } else if active < total {
        "yellow"
    } else {
        "green"
    };
    let nodes = shared.domains.data_nodes(&data.key);
    json!({
        "cluster_name": format!("{}:{}", shared.config.account_id, data.name),
        "status": status,
        "timed_out": false,
        "number_of_nodes": nodes,
        "number_of_data_nodes": nodes,
        "discovered_master": true,
        "discovered_cluster_manager": true,
        "active_primary_shards": active_primary,
        "active_shards": active,
        "relocating_shards": 0,
        "initializing_shards": initializing,
        "unassigned_shards": unassigned,
        "delayed_unassigned_shards": 0,
        "number_of_pending_tasks": 0,
        "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0,
        "active_shards_percent_as_number": if total == 0 { 100.0 } else { active as f64 * 100.0 / total as f64 },
    })
}

/// `GET|POST _cluster/allocation/explain`: the copy the body names (`index`, `shard`, `primary`),
/// or the first unassigned one; the shape and the deciders' words are OpenSearch's.
pub fn explain(
    shared: &Shared,
    data: &DomainData,
    body: &Value,
) -> Result<Value, (u16, String, String)> {
    let nodes = nodes(shared, data);
    let all = all_copies(shared, data);
    let named = body.get("index").and_then(Value::as_str);
    let copy = match named {
        None => all
            .iter()
            .flat_map(|(n, cs)| cs.iter().map(move |c| (n.clone(), c.clone())))
            .find(|(_, c)| c.state == CopyState::Unassigned),
        Some(index) => {
            let Some(cs) = all.get(index) else {
                return Err((
                    404,
                    "index_not_found_exception".into(),
                    format!("no such index [{index}]"),
                ));
            };
            let shard = body.get("shard").and_then(Value::as_u64).unwrap_or(0) as u32;
            let primary = body
                .get("primary")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let found = cs
                .iter()
                .filter(|c| c.shard == shard && c.primary == primary)
                .min_by_key(|c| c.state != CopyState::Unassigned)
                .cloned();
            match found {
                Some(c) => Some((index.to_owned(), c)),
                None => {
                    return Err((
                        400,
                        "illegal_argument_exception".into(),
                        format!(
                            "No shard was specified in the request which means the response should explain a randomly-chosen unassigned shard, but there are no unassigned shards in this cluster. [shard {shard} of index {index}]"
                        ),
                    ));
                }
            }
        }
    };
    let Some((index_name, copy)) = copy else {
        return Err((
            400,
            "illegal_argument_exception".into(),
            "unable to find any unassigned shards to explain [ClusterAllocationExplainRequest[useAnyUnassignedShard=true,includeYesDecisions?=false]".into(),
        ));
    };
    let state = data.lock();
    let index = &state.indices[&index_name];
    let recovery = state.recoveries.get(&index_name);
    let mut out = json!({
        "index": index_name,
        "shard": copy.shard,
        "primary": copy.primary,
        "current_state": match copy.state {
            CopyState::Unassigned => "unassigned",
            CopyState::Initializing => "initializing",
            CopyState::Started => "started",
        },
    });
    if let Some(n) = copy.node {
        let node = nodes
            .get(n)
            .cloned()
            .unwrap_or_else(|| node(shared, data, n as u32));
        out["current_node"] = json!({"id": node.id, "name": node.name, "transport_address": node.transport_address(), "attributes": node.attributes});
        out["can_remain_on_current_node"] = json!("yes");
        out["can_rebalance_cluster"] = json!("yes");
        out["can_rebalance_to_other_node"] = json!("no");
        out["rebalance_explanation"] = json!(
            "cannot rebalance as no target node exists that can both allocate this shard and improve the cluster balance"
        );
        return Ok(out);
    }
    let (reason, details) = match recovery {
        Some(r) => (
            "NEW_INDEX_RESTORED",
            Some(format!("restore_source[{}/{}]", r.repository, r.snapshot)),
        ),
        None => ("INDEX_CREATED", None),
    };
    let at = chrono::DateTime::from_timestamp_millis(index.creation_millis())
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut info = json!({"reason": reason, "at": at, "last_allocation_status": "no"});
    if let Some(d) = details {
        info["details"] = json!(d);
    }
    out["unassigned_info"] = info;
    out["can_allocate"] = json!("no");
    out["allocate_explanation"] =
        json!("cannot allocate because allocation is not permitted to any of the nodes");
    let filters = Filters::of(index);
    let all_for_index = &all[&index_name];
    let decisions: Vec<Value> = nodes
        .iter()
        .enumerate()
        .map(|(n, node)| {
            let mut deciders = Vec::new();
            if let Some(why) = filters.refuses(node) {
                deciders.push(json!({"decider": "filter", "decision": "NO", "explanation": why}));
            }
            if !copy.primary {
                let primary = all_for_index.iter().find(|c| c.shard == copy.shard && c.primary);
                match primary {
                    Some(p) if p.state != CopyState::Started => deciders.push(json!({"decider": "replica_after_primary_active", "decision": "NO", "explanation": "primary shard for this replica is not yet active"})),
                    Some(p) if p.node == Some(n) => deciders.push(json!({"decider": "same_shard", "decision": "NO", "explanation": format!("a copy of this shard is already allocated to this node [[{index_name}][{}], node[{}], [P], s[STARTED], a[id={}]]", copy.shard, node.id, index.uuid())})),
                    _ => {}
                }
                if deciders.is_empty() {
                    deciders.push(json!({"decider": "same_shard", "decision": "NO", "explanation": format!("a copy of this shard is already allocated to this node [[{index_name}][{}], node[{}], [R], s[STARTED], a[id={}]]", copy.shard, node.id, index.uuid())}));
                }
            }
            json!({
                "node_id": node.id,
                "node_name": node.name,
                "transport_address": node.transport_address(),
                "node_attributes": node.attributes,
                "node_decision": "no",
                "weight_ranking": n + 1,
                "deciders": deciders,
            })
        })
        .collect();
    out["node_allocation_decisions"] = json!(decisions);
    Ok(out)
}
