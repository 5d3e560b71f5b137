//! Pinned values: names resolved once from a template (`snapshot-{date}`) and reused until the
//! run that needed them completes. [`Context::pin`](crate::Context::pin) asks a [`PinStore`]:
//! while planning the values live in memory ([`MemoryPins`]), while applying in the state (the
//! executor's journal), so this module is what both sides share and it depends on neither.
//!
//! The rule both follow: the state's pins are reused while a run is unfinished; once every node
//! is done a new cycle starts and each pin is recomputed on first use (then kept for the rest of
//! the cycle).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;
use snapferry_plan::NodeId;

use crate::error::ResourceError;

/// What computes a pin the first time it is asked for.
pub(crate) type Compute<'a> = Box<dyn FnOnce() -> Value + Send + 'a>;

/// Where [`Context::pin`](crate::Context::pin) keeps its values. `key` is already qualified
/// with the node (`<node>:<key>`).
#[async_trait]
pub(crate) trait PinStore: Send + Sync {
    async fn pin(
        &self,
        node: &NodeId,
        key: &str,
        compute: Compute<'_>,
    ) -> Result<Value, ResourceError>;
}

/// Pins held in memory while planning: the state's, recomputed on first use when the last run
/// completed (the same rule the journal applies while applying).
#[derive(Default)]
pub(crate) struct MemoryPins {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    values: BTreeMap<String, Value>,
    new_cycle: bool,
    settled: BTreeSet<String>,
}

impl MemoryPins {
    /// Starts from the state's pins; `new_cycle` when the state records a finished run.
    pub(crate) fn new(values: BTreeMap<String, Value>, new_cycle: bool) -> Self {
        MemoryPins {
            inner: Mutex::new(Inner {
                values,
                new_cycle,
                settled: BTreeSet::new(),
            }),
        }
    }

    /// The values as they stand (the state's, with the ones recomputed or added so far).
    pub(crate) fn values(&self) -> BTreeMap<String, Value> {
        self.inner.lock().expect("pins poisoned").values.clone()
    }
}

#[async_trait]
impl PinStore for MemoryPins {
    async fn pin(
        &self,
        _node: &NodeId,
        key: &str,
        compute: Compute<'_>,
    ) -> Result<Value, ResourceError> {
        let mut pins = self.inner.lock().expect("pins poisoned");
        let settled = !pins.new_cycle || pins.settled.contains(key);
        if settled && let Some(v) = pins.values.get(key) {
            return Ok(v.clone());
        }
        let value = compute();
        pins.settled.insert(key.to_owned());
        pins.values.insert(key.to_owned(), value.clone());
        Ok(value)
    }
}
