//! The graph the executor walks: resources keyed by `NodeId` plus dependency edges. Built
//! through [`ExecGraphBuilder`], which refuses duplicate ids, edges to unknown nodes and
//! cycles, so the executor never has to.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use petgraph::graph::DiGraph;
use snapferry_plan::NodeId;

use crate::resource::Resource;

/// A graph that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("{node} is added twice")]
    Duplicate { node: NodeId },
    #[error("{node} depends on {missing}, which is not in the graph")]
    UnknownNode { node: NodeId, missing: NodeId },
    #[error("the dependencies form a cycle through {node}")]
    Cycle { node: NodeId },
    #[error("{node} is not a step of this plan; `snapferry graph` lists the steps")]
    UnknownTarget { node: NodeId },
}

/// A checked, acyclic graph of resources.
pub struct ExecGraph {
    resources: BTreeMap<NodeId, Arc<dyn Resource>>,
    deps: BTreeMap<NodeId, BTreeSet<NodeId>>,
    dependents: BTreeMap<NodeId, BTreeSet<NodeId>>,
    order: Vec<NodeId>,
    /// Steps of the whole plan that `--target` left out (see [`ExecGraph::restricted_to`]).
    untargeted: BTreeSet<NodeId>,
}

/// Collects resources and edges; [`ExecGraphBuilder::build`] checks them.
#[derive(Default)]
pub struct ExecGraphBuilder {
    resources: BTreeMap<NodeId, Arc<dyn Resource>>,
    edges: Vec<(NodeId, NodeId)>,
    duplicate: Option<NodeId>,
}

impl ExecGraph {
    pub fn builder() -> ExecGraphBuilder {
        ExecGraphBuilder::default()
    }

    pub fn len(&self) -> usize {
        self.resources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    pub fn resource(&self, node: &NodeId) -> Option<&Arc<dyn Resource>> {
        self.resources.get(node)
    }

    /// What `node` depends on.
    pub fn deps(&self, node: &NodeId) -> impl Iterator<Item = &NodeId> {
        self.deps.get(node).into_iter().flatten()
    }

    /// What depends on `node`.
    pub fn dependents(&self, node: &NodeId) -> impl Iterator<Item = &NodeId> {
        self.dependents.get(node).into_iter().flatten()
    }

    /// Every node, dependencies before dependents (ties in id order).
    pub fn topological(&self) -> &[NodeId] {
        &self.order
    }

    /// Every node reachable downstream of `node`.
    pub fn downstream(&self, node: &NodeId) -> BTreeSet<NodeId> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&NodeId> = self.dependents(node).collect();
        while let Some(n) = stack.pop() {
            if seen.insert(n.clone()) {
                stack.extend(self.dependents(n));
            }
        }
        seen
    }
}

impl ExecGraph {
    /// The subgraph of `targets` and everything they depend on (`--target`): applying part of
    /// a plan never skips a step that part needs.
    pub fn restricted_to(&self, targets: &[NodeId]) -> Result<ExecGraph, GraphError> {
        let mut keep = BTreeSet::new();
        let mut stack: Vec<&NodeId> = Vec::new();
        for target in targets {
            if !self.resources.contains_key(target) {
                return Err(GraphError::UnknownTarget {
                    node: target.clone(),
                });
            }
            stack.push(target);
        }
        while let Some(node) = stack.pop() {
            if keep.insert(node.clone()) {
                stack.extend(self.deps(node));
            }
        }
        let mut builder = ExecGraph::builder();
        for node in &keep {
            builder.add(self.resources[node].clone());
            for dep in self.deps(node) {
                builder.depend(node, dep);
            }
        }
        let mut graph = builder.build()?;
        graph.untargeted = self
            .resources
            .keys()
            .filter(|id| !keep.contains(*id))
            .chain(&self.untargeted)
            .cloned()
            .collect();
        Ok(graph)
    }

    /// Steps of the plan this graph leaves out because of `--target`: still in the plan, so
    /// never reported as removed from it.
    pub fn untargeted(&self) -> &BTreeSet<NodeId> {
        &self.untargeted
    }
}

impl ExecGraphBuilder {
    /// Adds a resource under its own id.
    pub fn add(&mut self, resource: Arc<dyn Resource>) -> &mut Self {
        let id = resource.id().clone();
        if self.resources.insert(id.clone(), resource).is_some() && self.duplicate.is_none() {
            self.duplicate = Some(id);
        }
        self
    }

    /// Records that `node` needs `on` done first.
    pub fn depend(&mut self, node: &NodeId, on: &NodeId) -> &mut Self {
        self.edges.push((node.clone(), on.clone()));
        self
    }

    pub fn build(&mut self) -> Result<ExecGraph, GraphError> {
        let builder = std::mem::take(self);
        if let Some(node) = builder.duplicate {
            return Err(GraphError::Duplicate { node });
        }
        let mut deps: BTreeMap<NodeId, BTreeSet<NodeId>> = BTreeMap::new();
        let mut dependents: BTreeMap<NodeId, BTreeSet<NodeId>> = BTreeMap::new();
        for (node, on) in &builder.edges {
            for (a, b) in [(node, on), (on, node)] {
                if !builder.resources.contains_key(a) {
                    return Err(GraphError::UnknownNode {
                        node: b.clone(),
                        missing: a.clone(),
                    });
                }
            }
            deps.entry(node.clone()).or_default().insert(on.clone());
            dependents
                .entry(on.clone())
                .or_default()
                .insert(node.clone());
        }
        let mut graph = DiGraph::<NodeId, ()>::new();
        let index: BTreeMap<&NodeId, _> = builder
            .resources
            .keys()
            .map(|id| (id, graph.add_node(id.clone())))
            .collect();
        for (node, on) in &builder.edges {
            graph.add_edge(index[on], index[node], ());
        }
        let order = petgraph::algo::toposort(&graph, None)
            .map_err(|cycle| GraphError::Cycle {
                node: graph[cycle.node_id()].clone(),
            })?
            .into_iter()
            .map(|i| graph[i].clone())
            .collect();
        Ok(ExecGraph {
            resources: builder.resources,
            deps,
            dependents,
            order,
            untargeted: BTreeSet::new(),
        })
    }
}
