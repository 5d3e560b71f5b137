//! The one writer of the state: the executor's in-memory state document plus the store it is
//! checkpointed to. Every transition (apply's and destroy's), every removal of a destroyed
//! node and every new pin goes through here and is saved before the caller continues, one
//! write at a time, each with the next generation number.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use serde_json::Value;
use snapferry_plan::NodeId;
use tokio::sync::Mutex;

use crate::engine_error::EngineError;
use crate::error::ResourceError;
use crate::pins::{Compute, PinStore};
use crate::state::{NodeState, NodeStatus, StateDoc};
use crate::store::StateStore;

pub(crate) struct Journal {
    store: Arc<dyn StateStore>,
    doc: Mutex<StateDoc>,
    /// The previous run completed: pins recorded by it are recomputed on first use.
    new_cycle: bool,
    /// Keys pinned (or confirmed) during this run.
    settled: std::sync::Mutex<BTreeSet<String>>,
    /// The values the proposal was made with: a pin recomputed in this run takes the value
    /// the user saw, so execution has no choice left (a template resolved at another instant
    /// cannot give another name).
    proposed: BTreeMap<String, Value>,
}

impl Journal {
    pub(crate) fn new(
        store: Arc<dyn StateStore>,
        doc: StateDoc,
        new_cycle: bool,
        proposed: BTreeMap<String, Value>,
    ) -> Self {
        Journal {
            store,
            doc: Mutex::new(doc),
            new_cycle,
            settled: std::sync::Mutex::default(),
            proposed,
        }
    }

    pub(crate) async fn snapshot(&self) -> StateDoc {
        self.doc.lock().await.clone()
    }

    pub(crate) async fn node(&self, node: &NodeId) -> Option<NodeState> {
        self.doc.lock().await.nodes.get(node).cloned()
    }

    /// Moves `node` to `to`, lets `update` fill in details, and saves.
    pub(crate) async fn transition(
        &self,
        node: &NodeId,
        to: NodeStatus,
        update: impl FnOnce(&mut NodeState),
    ) -> Result<(), EngineError> {
        let mut doc = self.doc.lock().await;
        let mut next = doc.clone();
        update(next.transition(node, to)?);
        Self::commit(&*self.store, &mut next).await?;
        *doc = next;
        Ok(())
    }

    /// Removes destroyed (or released) nodes and their pins, and saves. Each must be
    /// `destroying`: nothing leaves the state without going through the state machine.
    pub(crate) async fn forget(&self, nodes: &[NodeId]) -> Result<(), EngineError> {
        let mut doc = self.doc.lock().await;
        let mut next = doc.clone();
        for node in nodes {
            next.forget(node)?;
        }
        Self::commit(&*self.store, &mut next).await?;
        *doc = next;
        Ok(())
    }

    /// Moves each node to `destroying` and drops it, in one write: for nodes that are left
    /// in place but no longer looked after (released), or own nothing outside the state.
    pub(crate) async fn release(&self, nodes: &[NodeId]) -> Result<(), EngineError> {
        let mut doc = self.doc.lock().await;
        let mut next = doc.clone();
        for node in nodes {
            next.transition(node, NodeStatus::Destroying)?;
            next.forget(node)?;
        }
        Self::commit(&*self.store, &mut next).await?;
        *doc = next;
        Ok(())
    }

    /// Saves the document as it is (with a new generation).
    pub(crate) async fn checkpoint(&self) -> Result<(), EngineError> {
        let mut doc = self.doc.lock().await;
        let mut next = doc.clone();
        Self::commit(&*self.store, &mut next).await?;
        *doc = next;
        Ok(())
    }

    async fn commit(store: &dyn StateStore, next: &mut StateDoc) -> Result<(), EngineError> {
        next.generation += 1;
        next.updated_at = Utc::now();
        store.save(next).await?;
        Ok(())
    }
}

#[async_trait]
impl PinStore for Journal {
    async fn pin(
        &self,
        node: &NodeId,
        key: &str,
        compute: Compute<'_>,
    ) -> Result<Value, ResourceError> {
        let mut doc = self.doc.lock().await;
        let settled = !self.new_cycle || self.settled.lock().expect("pins poisoned").contains(key);
        if settled && let Some(v) = doc.pinned.get(key) {
            return Ok(v.clone());
        }
        let value = match self.proposed.get(key) {
            Some(proposed) => proposed.clone(),
            None => compute(),
        };
        self.settled
            .lock()
            .expect("pins poisoned")
            .insert(key.to_owned());
        if doc.pinned.get(key) == Some(&value) {
            return Ok(value);
        }
        let mut next = doc.clone();
        next.pinned.insert(key.to_owned(), value.clone());
        Self::commit(&*self.store, &mut next).await.map_err(|e| {
            ResourceError::transient(
                node,
                format!("could not record pinned value `{key}`: {}", chain(&e)),
            )
        })?;
        *doc = next;
        Ok(value)
    }
}

/// The whole error chain on one line.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
