//! The step graph of a checked plan: which AWS-side step waits for which.
//!
//! ```text
//! role ──► bucket_policy ──► repository(source) ──► snapshot ──► restore ──► verify
//!                       └──► repository(target) ◄── domain(target)
//!                                   └──────────────────────────► restore
//! ```
//!
//! With `metadata`, the target's templates, pipelines, ISM policies and stored
//! scripts are made to match the source's between the target domain and the
//! restore (`domain → metadata → restore`), and `ism_attach` attaches restored
//! indices to their policies after it (`restore → ism_attach`); with
//! `dashboards`, the saved objects are copied once the target exists
//! (`domain → dashboards`). With the `security` step (on when the target's
//! FGAC master is named, or `security:` is written), snapferry's identities are
//! mapped on each domain before its repository is registered:
//! `security(source) → repository(source)`, `domain → security(target) →
//! repository(target)`.
//!
//! The target domain does not wait for the snapshot: creating it runs at the
//! same time. Shared nodes (one role, one bucket policy, a source repository
//! used by several replications) appear once. Every node carries the complete
//! desired configuration of its step ([`NodeSpec`]), so the resource code needs
//! nothing but the node.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;
use std::time::Duration;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;

use crate::NodeId;
use crate::fingerprint::fingerprint;
use crate::plan::*;
use crate::template::Template;

/// Node kinds, as used in [`NodeId`]s.
pub mod kind {
    pub const ROLE: &str = "role";
    pub const BUCKET_POLICY: &str = "bucket_policy";
    pub const REPOSITORY: &str = "repository";
    pub const SNAPSHOT: &str = "snapshot";
    pub const DOMAIN: &str = "domain";
    pub const RESTORE: &str = "restore";
    pub const VERIFY: &str = "verify";
    pub const METADATA: &str = "metadata";
    pub const ISM_ATTACH: &str = "ism_attach";
    pub const DASHBOARDS: &str = "dashboards";
    pub const SECURITY: &str = "security";
}

/// The role step: create or check the role, with what its policy must allow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoleNode {
    pub role: RoleSpec,
    /// The bucket (and base path) the role's policy grants access to.
    pub bucket: BucketSpec,
}

/// The bucket policy step (and bucket creation when `bucket.create`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BucketPolicyNode {
    pub bucket: BucketSpec,
    /// The role the policy lets read and write snapshots; its ARN is an output of the role node.
    pub role: RoleSpec,
    /// Roles of other accounts that only read snapshots (targets' `snapshot_role_arn`), sorted.
    pub readers: Vec<String>,
}

/// Which domain a repository is registered on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RepositorySide {
    /// Written to by the snapshot.
    Source,
    /// Read by the restore; registered read-only.
    Target,
}

/// Registration of the S3 repository on one domain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepositoryNode {
    pub side: RepositorySide,
    pub domain: DomainRef,
    pub repository: RepositorySpec,
    pub bucket: BucketSpec,
    /// The role put in the repository's `role_arn` setting.
    pub role: RoleSpec,
    /// True on the target: it must never write into the source's repository.
    pub readonly: bool,
}

/// Taking the snapshot on the source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotNode {
    pub replication: String,
    pub domain: DomainRef,
    pub repository: String,
    /// Resolve with [`Template::resolve`] and pin the result in the state.
    pub template: Template,
    pub indices: Vec<String>,
    pub include_global_state: bool,
    pub partial: bool,
}

/// Creating the target domain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainNode {
    pub domain: DomainRef,
    /// The domain whose configuration is copied when `creation` is `FromSource`.
    pub source: DomainRef,
    pub creation: DomainCreation,
}

/// Restoring the snapshot on the target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestoreNode {
    pub replication: String,
    pub source: DomainRef,
    pub target: DomainRef,
    pub repository: String,
    /// The snapshot node whose pinned name is restored.
    pub snapshot: NodeId,
    pub restore: RestoreSpec,
    /// `snapshot.keep`: the restore prunes snapferry's own snapshots once it is verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep: Option<u32>,
}

/// Comparing document counts after the restore.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyNode {
    pub replication: String,
    pub source: DomainRef,
    pub target: DomainRef,
    /// The restore node whose restored index list is checked.
    pub restore: NodeId,
    /// How restored names map from source names.
    pub rename: Option<Rename>,
}

/// Making the target's cluster metadata (templates, pipelines, ISM policies, stored scripts)
/// match the source's, object by object, before the restore (a restored data stream needs its
/// template to roll over).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetadataNode {
    pub replication: String,
    pub source: DomainRef,
    /// Its `engine_version` is the one the plan gives the target, if any.
    pub target: DomainRef,
    pub metadata: MetadataSpec,
}

/// Attaching the restored indices again to the ISM policies that manage their source indices
/// (managed-index records live in a system index no snapshot restores).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IsmAttachNode {
    pub replication: String,
    pub source: DomainRef,
    pub target: DomainRef,
    /// The restore node whose restored index list (source → target) is attached.
    pub restore: NodeId,
    /// The ISM policies the metadata step copies (name patterns).
    pub policies: Vec<String>,
}

/// Copying the Dashboards (Kibana) saved objects.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DashboardsNode {
    pub replication: String,
    pub source: DomainRef,
    /// Its `engine_version` is the one the plan gives the target, if any.
    pub target: DomainRef,
    pub dashboards: DashboardsSpec,
}

/// The security plugin's role and mapping snapferry needs on one domain with fine-grained
/// access control (the `snapferry` role, the snapshot role and the signing identity mapped to
/// it), made before the repository is registered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecurityNode {
    pub side: RepositorySide,
    pub domain: DomainRef,
    /// The role the domain's repository passes (mapped as a backend role).
    pub role: RoleSpec,
    /// Make the mappings (false: only check them, blocked with the mapping to make by hand).
    pub manage: bool,
    /// The target's master as the plan names it (who may call the security API); `None` on
    /// the source, where snapferry can only try as the identity it signs with.
    pub master: Option<MasterUser>,
    /// The restore may delete and close indices in its way (`on_conflict: replace`).
    pub replace: bool,
    /// The metadata step reads (source) or writes (target) templates, pipelines, scripts and
    /// ISM policies here, and attaches ISM policies on the target: the role must allow it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub metadata: bool,
    /// The metadata step may delete the target's objects the source lacks (`prune`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prune: bool,
    /// The Dashboards tenants the dashboards step exports (source) or imports (target); empty
    /// without the step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<String>,
}

/// The checked desired configuration of one node.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NodeSpec {
    Role(RoleNode),
    BucketPolicy(BucketPolicyNode),
    Repository(RepositoryNode),
    Snapshot(SnapshotNode),
    Domain(DomainNode),
    Restore(RestoreNode),
    Verify(VerifyNode),
    Metadata(MetadataNode),
    IsmAttach(IsmAttachNode),
    Dashboards(DashboardsNode),
    Security(SecurityNode),
}

/// One step of the graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    pub id: NodeId,
    pub spec: NodeSpec,
}

impl Node {
    /// Fingerprint of this node's desired configuration (id included).
    pub fn fingerprint(&self) -> String {
        fingerprint(self)
    }
}

/// The longest chain of the graph under given durations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriticalPath {
    pub total: Duration,
    pub nodes: Vec<NodeId>,
}

/// The DAG of steps of a plan.
#[derive(Debug, Clone)]
pub struct StepGraph {
    graph: DiGraph<Node, ()>,
    by_id: BTreeMap<NodeId, NodeIndex>,
}

impl StepGraph {
    /// Builds the graph of a checked plan.
    pub fn build(plan: &Plan) -> Self {
        let mut g = StepGraph {
            graph: DiGraph::new(),
            by_id: BTreeMap::new(),
        };
        let role = g.add(
            NodeId::new(kind::ROLE, plan.role.name()),
            NodeSpec::Role(RoleNode {
                role: plan.role.clone(),
                bucket: plan.bucket.clone(),
            }),
        );
        let mut readers: Vec<String> = plan
            .replications
            .iter()
            .filter_map(|r| r.target.snapshot_role_arn.clone())
            .collect();
        readers.sort();
        readers.dedup();
        let policy = g.add(
            NodeId::new(kind::BUCKET_POLICY, &plan.bucket.name),
            NodeSpec::BucketPolicy(BucketPolicyNode {
                bucket: plan.bucket.clone(),
                role: plan.role.clone(),
                readers,
            }),
        );
        g.edge(role, policy);
        for r in &plan.replications {
            let repository_node = |side: RepositorySide, domain: &DomainRef| {
                NodeSpec::Repository(RepositoryNode {
                    side,
                    domain: domain.clone(),
                    repository: r.repository.clone(),
                    bucket: plan.bucket.clone(),
                    role: match (side, &r.target.snapshot_role_arn) {
                        (RepositorySide::Target, Some(arn)) => RoleSpec::Existing {
                            arn: arn.clone(),
                            name: crate::names::role_name_of_arn(arn).to_owned(),
                        },
                        _ => plan.role.clone(),
                    },
                    readonly: side == RepositorySide::Target,
                })
            };
            let repo_id = |domain: &str| {
                NodeId::new(kind::REPOSITORY, &format!("{domain}:{}", r.repository.name))
            };
            let source_repo = g.add(
                repo_id(&r.source.name),
                repository_node(RepositorySide::Source, &r.source),
            );
            let snapshot_id = NodeId::new(kind::SNAPSHOT, &r.name);
            let snapshot = g.add(
                snapshot_id.clone(),
                NodeSpec::Snapshot(SnapshotNode {
                    replication: r.name.clone(),
                    domain: r.source.clone(),
                    repository: r.repository.name.clone(),
                    template: r.snapshot.template.clone(),
                    indices: r.snapshot.indices.clone(),
                    include_global_state: r.snapshot.include_global_state,
                    partial: r.snapshot.partial,
                }),
            );
            let domain = g.add(
                NodeId::new(kind::DOMAIN, &r.target.domain.name),
                NodeSpec::Domain(DomainNode {
                    domain: r.target.domain.clone(),
                    source: r.source.clone(),
                    creation: r.target.creation.clone(),
                }),
            );
            let target_repo = g.add(
                repo_id(&r.target.domain.name),
                repository_node(RepositorySide::Target, &r.target.domain),
            );
            let restore_id = NodeId::new(kind::RESTORE, &r.name);
            let restore = g.add(
                restore_id.clone(),
                NodeSpec::Restore(RestoreNode {
                    replication: r.name.clone(),
                    source: r.source.clone(),
                    target: r.target.domain.clone(),
                    repository: r.repository.name.clone(),
                    snapshot: snapshot_id,
                    restore: r.restore.clone(),
                    keep: r.snapshot.keep,
                }),
            );
            g.edge(policy, source_repo);
            g.edge(source_repo, snapshot);
            g.edge(snapshot, restore);
            g.edge(policy, target_repo);
            g.edge(domain, target_repo);
            g.edge(target_repo, restore);
            // The metadata and dashboards steps sign as the same identity on FGAC domains, so
            // they run after the mappings that let it in.
            let security_nodes = if let Some(security) = r.security {
                let master = r
                    .target
                    .creation
                    .config()
                    .fine_grained_access_control
                    .as_ref()
                    .and_then(|f| f.master.clone());
                let node = |side: RepositorySide, domain: &DomainRef| {
                    let role = match repository_node(side, domain) {
                        NodeSpec::Repository(repo) => repo.role,
                        _ => unreachable!("repository_node makes repository nodes"),
                    };
                    NodeSpec::Security(SecurityNode {
                        side,
                        domain: domain.clone(),
                        role,
                        manage: security.manage,
                        master: match side {
                            RepositorySide::Source => None,
                            RepositorySide::Target => master.clone(),
                        },
                        replace: side == RepositorySide::Target
                            && r.restore.on_conflict == crate::raw::OnConflict::Replace,
                        metadata: r.metadata.is_some(),
                        prune: side == RepositorySide::Target
                            && r.metadata.as_ref().is_some_and(|m| m.prune),
                        tenants: r
                            .dashboards
                            .as_ref()
                            .map(|d| d.tenants.clone())
                            .unwrap_or_default(),
                    })
                };
                let source_security = g.add(
                    NodeId::new(kind::SECURITY, &r.source.name),
                    node(RepositorySide::Source, &r.source),
                );
                let target_security = g.add(
                    NodeId::new(kind::SECURITY, &r.target.domain.name),
                    node(RepositorySide::Target, &r.target.domain),
                );
                g.edge(role, source_security);
                g.edge(source_security, source_repo);
                g.edge(role, target_security);
                g.edge(domain, target_security);
                g.edge(target_security, target_repo);
                Some([source_security, target_security])
            } else {
                None
            };
            if r.verify.enabled {
                let verify = g.add(
                    NodeId::new(kind::VERIFY, &r.name),
                    NodeSpec::Verify(VerifyNode {
                        replication: r.name.clone(),
                        source: r.source.clone(),
                        target: r.target.domain.clone(),
                        restore: restore_id.clone(),
                        rename: r.restore.rename.clone(),
                    }),
                );
                g.edge(restore, verify);
            }
            if let Some(metadata) = &r.metadata {
                let metadata_node = g.add(
                    NodeId::new(kind::METADATA, &r.name),
                    NodeSpec::Metadata(MetadataNode {
                        replication: r.name.clone(),
                        source: r.source.clone(),
                        target: r.target.domain.clone(),
                        metadata: metadata.clone(),
                    }),
                );
                g.edge(domain, metadata_node);
                g.edge(metadata_node, restore);
                for security in security_nodes.into_iter().flatten() {
                    g.edge(security, metadata_node);
                }
                if !metadata.ism_policies.is_empty() {
                    let attach = g.add(
                        NodeId::new(kind::ISM_ATTACH, &r.name),
                        NodeSpec::IsmAttach(IsmAttachNode {
                            replication: r.name.clone(),
                            source: r.source.clone(),
                            target: r.target.domain.clone(),
                            restore: restore_id.clone(),
                            policies: metadata.ism_policies.clone(),
                        }),
                    );
                    g.edge(restore, attach);
                    g.edge(metadata_node, attach);
                }
            }
            if let Some(dashboards) = &r.dashboards {
                let node = g.add(
                    NodeId::new(kind::DASHBOARDS, &r.name),
                    NodeSpec::Dashboards(DashboardsNode {
                        replication: r.name.clone(),
                        source: r.source.clone(),
                        target: r.target.domain.clone(),
                        dashboards: dashboards.clone(),
                    }),
                );
                g.edge(domain, node);
                for security in security_nodes.into_iter().flatten() {
                    g.edge(security, node);
                }
            }
        }
        g
    }

    fn add(&mut self, id: NodeId, spec: NodeSpec) -> NodeIndex {
        if let Some(ix) = self.by_id.get(&id) {
            return *ix;
        }
        let ix = self.graph.add_node(Node {
            id: id.clone(),
            spec,
        });
        self.by_id.insert(id, ix);
        ix
    }

    fn edge(&mut self, from: NodeIndex, to: NodeIndex) {
        self.graph.update_edge(from, to, ());
    }

    /// The node with this id.
    pub fn node(&self, id: &NodeId) -> Option<&Node> {
        self.by_id.get(id).map(|ix| &self.graph[*ix])
    }

    /// All nodes in the order they were added (plan order).
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.graph.node_indices().map(|ix| &self.graph[ix])
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// Whether the graph has no node (never true for a checked plan).
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// All edges `(from, to)`, sorted.
    pub fn edges(&self) -> Vec<(NodeId, NodeId)> {
        let mut edges: Vec<_> = self
            .graph
            .edge_indices()
            .filter_map(|e| self.graph.edge_endpoints(e))
            .map(|(a, b)| (self.graph[a].id.clone(), self.graph[b].id.clone()))
            .collect();
        edges.sort();
        edges
    }

    /// The nodes `id` waits for, sorted.
    pub fn dependencies(&self, id: &NodeId) -> Vec<NodeId> {
        self.neighbours(id, Direction::Incoming)
    }

    /// The nodes waiting for `id`, sorted.
    pub fn dependents(&self, id: &NodeId) -> Vec<NodeId> {
        self.neighbours(id, Direction::Outgoing)
    }

    fn neighbours(&self, id: &NodeId, dir: Direction) -> Vec<NodeId> {
        let Some(ix) = self.by_id.get(id) else {
            return Vec::new();
        };
        let mut out: Vec<NodeId> = self
            .graph
            .neighbors_directed(*ix, dir)
            .map(|n| self.graph[n].id.clone())
            .collect();
        out.sort();
        out
    }

    /// A topological order, deterministic: among ready nodes the earliest added comes first.
    pub fn topological_order(&self) -> Vec<NodeId> {
        self.topo_indices()
            .into_iter()
            .map(|ix| self.graph[ix].id.clone())
            .collect()
    }

    fn topo_indices(&self) -> Vec<NodeIndex> {
        let mut waiting: Vec<usize> = self
            .graph
            .node_indices()
            .map(|ix| {
                self.graph
                    .neighbors_directed(ix, Direction::Incoming)
                    .count()
            })
            .collect();
        let mut ready: BinaryHeap<Reverse<usize>> = waiting
            .iter()
            .enumerate()
            .filter(|(_, n)| **n == 0)
            .map(|(i, _)| Reverse(i))
            .collect();
        let mut order = Vec::with_capacity(waiting.len());
        while let Some(Reverse(i)) = ready.pop() {
            let ix = NodeIndex::new(i);
            order.push(ix);
            for next in self.graph.neighbors_directed(ix, Direction::Outgoing) {
                waiting[next.index()] -= 1;
                if waiting[next.index()] == 0 {
                    ready.push(Reverse(next.index()));
                }
            }
        }
        order
    }

    /// The longest chain of steps when each takes `duration(node)`: the
    /// shortest possible apply time with unbounded parallelism.
    pub fn critical_path(&self, duration: impl Fn(&Node) -> Duration) -> CriticalPath {
        let order = self.topo_indices();
        let mut finish: Vec<Duration> = vec![Duration::ZERO; self.graph.node_count()];
        let mut via: Vec<Option<NodeIndex>> = vec![None; self.graph.node_count()];
        for ix in &order {
            let mut start = Duration::ZERO;
            for pred in self.graph.neighbors_directed(*ix, Direction::Incoming) {
                if finish[pred.index()] > start
                    || (via[ix.index()].is_none() && finish[pred.index()] == start)
                {
                    start = finish[pred.index()];
                    via[ix.index()] = Some(pred);
                }
            }
            finish[ix.index()] = start + duration(&self.graph[*ix]);
        }
        let Some(mut last) = order
            .iter()
            .copied()
            .max_by_key(|ix| (finish[ix.index()], Reverse(ix.index())))
        else {
            return CriticalPath {
                total: Duration::ZERO,
                nodes: Vec::new(),
            };
        };
        let total = finish[last.index()];
        let mut nodes = vec![self.graph[last].id.clone()];
        while let Some(prev) = via[last.index()] {
            nodes.push(self.graph[prev].id.clone());
            last = prev;
        }
        nodes.reverse();
        CriticalPath { total, nodes }
    }

    /// Edges in plan order (by the order their nodes were added), for rendering.
    fn edges_in_plan_order(&self) -> Vec<(NodeId, NodeId)> {
        let mut edges: Vec<(NodeIndex, NodeIndex)> = self
            .graph
            .edge_indices()
            .filter_map(|e| self.graph.edge_endpoints(e))
            .collect();
        edges.sort_by_key(|(a, b)| (b.index(), a.index()));
        edges
            .into_iter()
            .map(|(a, b)| (self.graph[a].id.clone(), self.graph[b].id.clone()))
            .collect()
    }

    /// Graphviz DOT, nodes and edges in plan order.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph snapferry {\n  rankdir=LR;\n  node [shape=box];\n");
        for node in self.nodes() {
            let _ = writeln!(
                out,
                "  \"{}\" [label=\"{}\\n{}\"];",
                node.id,
                node.id.kind(),
                node.id.instance()
            );
        }
        for (a, b) in self.edges_in_plan_order() {
            let _ = writeln!(out, "  \"{a}\" -> \"{b}\";");
        }
        out.push_str("}\n");
        out
    }

    /// Mermaid flowchart, nodes and edges in plan order.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        let short: BTreeMap<&NodeId, String> = self
            .nodes()
            .enumerate()
            .map(|(i, n)| (&n.id, format!("n{i}")))
            .collect();
        for node in self.nodes() {
            let _ = writeln!(
                out,
                "  {}[\"{}<br/>{}\"]",
                short[&node.id],
                node.id.kind(),
                node.id.instance()
            );
        }
        for (a, b) in self.edges_in_plan_order() {
            let _ = writeln!(out, "  {} --> {}", short[&a], short[&b]);
        }
        out
    }
}
