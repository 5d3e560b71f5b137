//! snapferry's AWS side: the SDK clients, the SigV4-signed domain data-plane client, the typed
//! OpenSearch snapshot operations, the pure IAM/S3 policy documents and the error mapping that
//! the six resources (role, bucket policy, repository, snapshot, domain, restore) are built on.
//! [`state_store::S3Store`] keeps a plan's state and its lock in S3, for teams with no shared disk.

pub mod clients;
pub mod cluster_meta;
pub mod credentials;
pub mod domain_http;
pub mod error;
pub mod opensearch;
pub mod policy;
pub mod resources;
pub mod secret;
pub mod state_store;
