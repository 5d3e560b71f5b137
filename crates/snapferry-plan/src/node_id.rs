//! The identity of one step in the graph. It is the key of the state file and
//! of every log line, so it is a stable, readable string such as
//! `role/snapshot-role` or `snapshot/prod-to-staging`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The stable identity of a node of the step graph: `<kind>/<instance>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(String);

impl NodeId {
    /// Builds an id from its kind (`role`, `bucket_policy`, `repository`, `snapshot`,
    /// `domain`, `restore`, `verify`) and the instance key that makes it unique.
    pub fn new(kind: &str, instance: &str) -> Self {
        NodeId(format!("{kind}/{instance}"))
    }

    /// The kind part, before the first `/`: how a resumed run finds the code for it.
    pub fn kind(&self) -> &str {
        self.0
            .split_once('/')
            .map_or(self.0.as_str(), |(kind, _)| kind)
    }

    /// The instance part, after the first `/`.
    pub fn instance(&self) -> &str {
        self.0.split_once('/').map_or("", |(_, instance)| instance)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for NodeId {
    fn from(s: &str) -> Self {
        NodeId(s.to_owned())
    }
}

impl From<String> for NodeId {
    fn from(s: String) -> Self {
        NodeId(s)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
