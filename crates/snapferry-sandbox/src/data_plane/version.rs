//! Engine versions as the server knows them. A domain's `EngineVersion` (`Elasticsearch_6.8`,
//! `OpenSearch_2.11`) decides what its REST API accepts and how it behaves: which parameters exist,
//! whether snapshots may run concurrently (Elasticsearch 7.9 and OpenSearch), how many primaries an
//! index gets by default (5 before Elasticsearch 7), and which indices it can read — by the version
//! that *created* each index (`index.version.created`), not the version of the cluster it came from.
//!
//! Version ids follow the server's own encoding (`major*1000000 + minor*10000 + revision*100 + 99`;
//! OpenSearch ids are XORed with bit 27), so an id in a snapshot reads the way the server reads it
//! and OpenSearch versions sort after every Elasticsearch one.

/// OpenSearch marks its version ids with this bit so they never collide with Elasticsearch's.
const OPENSEARCH_MASK: u32 = 0x0800_0000;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    Elasticsearch,
    OpenSearch,
}

/// One server version: distribution and `major.minor.revision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Engine {
    pub dist: Distribution,
    pub major: u32,
    pub minor: u32,
    pub revision: u32,
}

impl Engine {
    /// Reads an Amazon OpenSearch Service `EngineVersion` (`OpenSearch_2.11`, `Elasticsearch_7.10`);
    /// the revision is the one the managed service runs (7.10 is 7.10.2).
    pub fn parse(engine_version: &str) -> Option<Self> {
        let (dist, rest) = if let Some(rest) = engine_version.strip_prefix("OpenSearch_") {
            (Distribution::OpenSearch, rest)
        } else {
            (
                Distribution::Elasticsearch,
                engine_version.strip_prefix("Elasticsearch_")?,
            )
        };
        let (major, minor) = rest.split_once('.')?;
        let (major, minor) = (major.parse().ok()?, minor.parse().ok()?);
        let revision = match (dist, major, minor) {
            (Distribution::Elasticsearch, 7, 10) => 2,
            _ => 0,
        };
        Some(Self {
            dist,
            major,
            minor,
            revision,
        })
    }

    /// The version of a domain, defaulting to OpenSearch 2.11 for a string that does not parse
    /// (the control plane refuses those before a domain exists).
    pub fn of_domain(engine_version: &str) -> Self {
        Self::parse(engine_version).unwrap_or(Self {
            dist: Distribution::OpenSearch,
            major: 2,
            minor: 11,
            revision: 0,
        })
    }

    pub fn is_opensearch(&self) -> bool {
        self.dist == Distribution::OpenSearch
    }

    /// `7.10.2`, `2.11.0`: the `version.number` of `GET /`.
    pub fn number(&self) -> String {
        format!("{}.{}.{}", self.major, self.minor, self.revision)
    }

    /// The server's numeric id (`index.version.created`, a snapshot's `version_id`).
    pub fn id(&self) -> u32 {
        let raw = self.major * 1_000_000 + self.minor * 10_000 + self.revision * 100 + 99;
        match self.dist {
            Distribution::Elasticsearch => raw,
            Distribution::OpenSearch => raw ^ OPENSEARCH_MASK,
        }
    }

    /// Behaviour OpenSearch inherited from Elasticsearch 7.10: true for every OpenSearch version
    /// and for Elasticsearch from `major.minor` on.
    pub fn at_least_es(&self, major: u32, minor: u32) -> bool {
        match self.dist {
            Distribution::OpenSearch => true,
            Distribution::Elasticsearch => (self.major, self.minor) >= (major, minor),
        }
    }

    /// OpenSearch from `major.minor` on (false for every Elasticsearch).
    pub fn at_least_os(&self, major: u32, minor: u32) -> bool {
        self.is_opensearch() && (self.major, self.minor) >= (major, minor)
    }

    /// Elasticsearch 7.9 (`FULL_CONCURRENCY_VERSION`) and OpenSearch run snapshots concurrently
    /// and check a snapshot's name before anything else; older versions run one at a time.
    pub fn concurrent_snapshots(&self) -> bool {
        self.at_least_es(7, 9)
    }

    /// `index.number_of_shards` when an index is created without it: 5 before Elasticsearch 7.
    pub fn default_shards(&self) -> u32 {
        if self.at_least_es(7, 0) { 1 } else { 5 }
    }

    /// The oldest `index.version.created` this version opens, as (id, text): the previous major.
    pub fn minimum_index_compatibility(&self) -> (u32, &'static str) {
        match (self.dist, self.major) {
            (Distribution::OpenSearch, 1) | (Distribution::Elasticsearch, 7) => {
                (6_000_026, "6.0.0-beta1")
            }
            (Distribution::OpenSearch, _) => (7_000_099, "7.0.0"),
            (Distribution::Elasticsearch, 6) => (5_000_099, "5.0.0"),
            (Distribution::Elasticsearch, _) => (2_000_099, "2.0.0"),
        }
    }

    /// `minimum_wire_compatibility_version` of `GET /`.
    pub fn minimum_wire_compatibility(&self) -> &'static str {
        match (self.dist, self.major) {
            (Distribution::OpenSearch, 1) => "6.8.0",
            (Distribution::OpenSearch, _) => "7.10.0",
            (Distribution::Elasticsearch, 7) => "6.8.0",
            (Distribution::Elasticsearch, 6) => "5.6.0",
            (Distribution::Elasticsearch, _) => "2.4.0",
        }
    }

    /// The Lucene version each release shipped with (`GET /`).
    pub fn lucene(&self) -> &'static str {
        match (self.dist, self.major, self.minor) {
            (Distribution::OpenSearch, 1, _) => "8.10.1",
            (Distribution::OpenSearch, _, _) => "9.7.0",
            (Distribution::Elasticsearch, 7, m) if m >= 7 => "8.7.0",
            (Distribution::Elasticsearch, 7, _) => "8.0.0",
            (Distribution::Elasticsearch, 6, _) => "7.7.3",
            (Distribution::Elasticsearch, _, _) => "6.6.1",
        }
    }

    /// The name the server uses for itself in messages ("re-indexed in OpenSearch 6.x").
    pub fn product(&self) -> &'static str {
        match self.dist {
            Distribution::Elasticsearch => "Elasticsearch",
            Distribution::OpenSearch => "OpenSearch",
        }
    }
}

/// A version id as text: `6.8.0`, `7.10.2`, `2.11.0` (OpenSearch ids are unmasked first).
pub fn id_to_string(id: u32) -> String {
    let raw = if id & OPENSEARCH_MASK != 0 {
        id ^ OPENSEARCH_MASK
    } else {
        id
    };
    let (major, minor, revision, build) = (
        raw / 1_000_000,
        (raw / 10_000) % 100,
        (raw / 100) % 100,
        raw % 100,
    );
    match build {
        99 => format!("{major}.{minor}.{revision}"),
        b if b < 25 => format!("{major}.{minor}.{revision}-alpha{b}"),
        b if b < 50 => format!("{major}.{minor}.{revision}-beta{}", b - 25),
        b => format!("{major}.{minor}.{revision}-rc{}", b - 50),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_the_servers_encoding() {
        let os = Engine::parse("OpenSearch_2.11").unwrap();
        assert_eq!(os.id(), 136_327_827);
        assert_eq!(id_to_string(os.id()), "2.11.0");
        let es = Engine::parse("Elasticsearch_7.10").unwrap();
        assert_eq!((es.id(), es.number()), (7_100_299, "7.10.2".to_owned()));
        assert_eq!(id_to_string(6_000_026), "6.0.0-beta1");
        assert!(Engine::parse("OpenSearch_1.3").unwrap().id() > es.id());
        assert!(Engine::parse("Solr_9.1").is_none());
    }

    #[test]
    fn behaviour_follows_the_version() {
        let v = |s| Engine::parse(s).unwrap();
        assert!(!v("Elasticsearch_7.8").concurrent_snapshots());
        assert!(v("Elasticsearch_7.9").concurrent_snapshots());
        assert!(v("OpenSearch_1.3").concurrent_snapshots());
        assert_eq!(v("Elasticsearch_6.8").default_shards(), 5);
        assert_eq!(v("Elasticsearch_7.1").default_shards(), 1);
        assert_eq!(
            v("OpenSearch_2.11").minimum_index_compatibility().1,
            "7.0.0"
        );
        assert_eq!(
            v("OpenSearch_1.3").minimum_index_compatibility().1,
            "6.0.0-beta1"
        );
    }
}
