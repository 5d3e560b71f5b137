//! Engine versions of OpenSearch Service domains (`OpenSearch_2.11`,
//! `Elasticsearch_7.10`) and which snapshot may be restored where. A restore
//! only works on the same or a newer engine whose index format can still read
//! the snapshot's indices; checking that offline saves a 30-minute domain
//! creation that would end in a failed restore.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The engine family of a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Engine {
    /// Legacy Elasticsearch (up to 7.10), ordered before every OpenSearch.
    Elasticsearch,
    /// OpenSearch 1.x and later.
    OpenSearch,
}

/// An engine version as OpenSearch Service writes it: `<Engine>_<major>.<minor>`.
/// Ordered by engine family first (every Elasticsearch is older than OpenSearch 1.0),
/// then major, then minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EngineVersion {
    pub engine: Engine,
    pub major: u32,
    pub minor: u32,
}

/// Why an engine version string was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not an engine version of the form OpenSearch_X.Y or Elasticsearch_X.Y")]
pub struct EngineVersionError {
    pub text: String,
}

impl FromStr for EngineVersion {
    type Err = EngineVersionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || EngineVersionError {
            text: text.to_owned(),
        };
        let (engine, number) = text.split_once('_').ok_or_else(err)?;
        let engine = match engine {
            "OpenSearch" => Engine::OpenSearch,
            "Elasticsearch" => Engine::Elasticsearch,
            _ => return Err(err()),
        };
        let (major, minor) = number.split_once('.').ok_or_else(err)?;
        let digits = |s: &str| -> Result<u32, EngineVersionError> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            s.parse().map_err(|_| err())
        };
        Ok(EngineVersion {
            engine,
            major: digits(major)?,
            minor: digits(minor)?,
        })
    }
}

impl fmt::Display for EngineVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let engine = match self.engine {
            Engine::OpenSearch => "OpenSearch",
            Engine::Elasticsearch => "Elasticsearch",
        };
        write!(f, "{engine}_{}.{}", self.major, self.minor)
    }
}

impl Serialize for EngineVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EngineVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl EngineVersion {
    /// Parses `OpenSearch_X.Y` / `Elasticsearch_X.Y`.
    pub fn parse(text: &str) -> Result<Self, EngineVersionError> {
        text.parse()
    }

    /// The Lucene-era generation of the index format, on one scale for both
    /// engines: Elasticsearch 6 → 6, Elasticsearch 7 and OpenSearch 1 → 7,
    /// OpenSearch 2 → 8, OpenSearch 3 → 9. A cluster reads indices written
    /// by its own generation and the one before.
    fn generation(self) -> u32 {
        match self.engine {
            Engine::Elasticsearch => self.major,
            Engine::OpenSearch => self.major + 6,
        }
    }
}

/// Whether a snapshot taken on `from` can be restored on a domain running `to`:
/// the target must be the same version or newer, and able to read the
/// snapshot's index format (Elasticsearch 7.x → OpenSearch 1.x/2.x works,
/// Elasticsearch 6 → OpenSearch 2 does not, OpenSearch 1.x → 2.x works).
pub fn can_restore(from: EngineVersion, to: EngineVersion) -> bool {
    if to.cmp(&from) == Ordering::Less {
        return false;
    }
    to.generation() <= from.generation() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> EngineVersion {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(
            v("OpenSearch_2.11"),
            EngineVersion {
                engine: Engine::OpenSearch,
                major: 2,
                minor: 11
            }
        );
        assert_eq!(v("Elasticsearch_7.10").to_string(), "Elasticsearch_7.10");
        for bad in [
            "OpenSearch_2",
            "opensearch_2.1",
            "OpenSearch_2.x",
            "Solr_1.0",
            "OpenSearch_.1",
            "OpenSearch_+1.2",
        ] {
            assert!(EngineVersion::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn orders_engines_then_numbers() {
        assert!(v("Elasticsearch_7.10") < v("OpenSearch_1.0"));
        assert!(v("OpenSearch_2.9") < v("OpenSearch_2.11"));
    }

    #[test]
    fn restore_compatibility() {
        assert!(can_restore(v("OpenSearch_2.11"), v("OpenSearch_2.11")));
        assert!(can_restore(v("Elasticsearch_7.10"), v("OpenSearch_1.3")));
        assert!(can_restore(v("Elasticsearch_7.10"), v("OpenSearch_2.11")));
        assert!(can_restore(v("OpenSearch_1.3"), v("OpenSearch_2.11")));
        assert!(can_restore(v("Elasticsearch_6.8"), v("Elasticsearch_7.10")));
        assert!(!can_restore(v("Elasticsearch_6.8"), v("OpenSearch_2.11")));
        assert!(!can_restore(v("OpenSearch_2.11"), v("OpenSearch_2.9")));
        assert!(!can_restore(v("OpenSearch_1.3"), v("Elasticsearch_7.10")));
        assert!(!can_restore(
            v("Elasticsearch_5.6"),
            v("Elasticsearch_7.10")
        ));
    }
}
