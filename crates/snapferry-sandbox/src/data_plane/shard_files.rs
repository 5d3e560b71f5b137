//! A shard's files in a repository, kept as OpenSearch keeps them so snapshots are incremental.
//!
//! OpenSearch copies a shard's immutable segment files into the repository once: a later
//! snapshot of the same index (same index UUID) in the same repository lists the files already
//! there and uploads only the new ones (`incremental` in `_snapshot/<repo>/<snap>/_status`,
//! against `total`). A document indexed or updated since lands in a new segment; the old segment
//! stays, its stale copies masked. The sandbox models exactly that: a segment is a blob of
//! documents; at snapshot time every live document whose `(id, content)` is already in a segment
//! of this index's catalog is reused from it, and the rest form one new segment. So "5% of the
//! documents changed" copies about 5% of the data. Each index's catalog (OpenSearch's per-shard
//! `index-N` blob) records its segments and which snapshot references which; deleting a snapshot
//! removes only the segments no remaining snapshot references.
//!
//! Catalog updates are read-modify-write on S3 blobs; they are serialized by one async lock, as
//! the server serializes repository metadata writes.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Digest;

use super::snapshot::Repository;
use crate::Shared;
use crate::s3::BlobError;

/// Serializes catalog read-modify-writes (snapshot finalization and deletion).
static CATALOG_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One segment: its blob's size and the `(id → content hash)` of the documents it holds.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Segment {
    pub size: u64,
    pub docs: BTreeMap<String, String>,
}

/// An index's files in one repository (per index UUID), and the snapshots referencing them.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Catalog {
    pub segments: BTreeMap<String, Segment>,
    pub snapshots: BTreeMap<String, BTreeSet<String>>,
}

/// What one index's shard contributed to a snapshot: the `_status` stats.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShardStats {
    pub incremental_files: u64,
    pub incremental_bytes: u64,
    pub total_files: u64,
    pub total_bytes: u64,
    /// Documents copied (in new segments).
    pub copied_docs: u64,
}

/// Where an index's catalog lives; its segments live beside it.
pub fn catalog_key(r: &Repository, index: &str, uuid: &str) -> String {
    format!("{}shards/{index}/{uuid}/index.json", r.prefix())
}

fn segment_key(catalog_key: &str, segment: &str) -> String {
    let dir = catalog_key.trim_end_matches("index.json");
    format!("{dir}{segment}.seg")
}

fn doc_hash(id: &str, doc: &Value) -> String {
    let mut h = sha2::Sha256::new();
    h.update(id.as_bytes());
    h.update([0]);
    h.update(doc.to_string().as_bytes());
    hex::encode(&h.finalize()[..12])
}

async fn read_catalog(shared: &Shared, r: &Repository, key: &str) -> Result<Catalog, BlobError> {
    Ok(match shared.blobs.get(&r.bucket, key).await? {
        Some(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        None => Catalog::default(),
    })
}

/// Writes what the snapshot `snap` needs of an index's documents: reuses the segments already in
/// the repository and uploads the rest as one new segment. Returns the manifest part naming the
/// segments and the documents live in each (what a restore reads), and the shard's stats.
pub async fn write_index(
    shared: &Shared,
    r: &Repository,
    snap: &str,
    index: &str,
    uuid: &str,
    docs: &BTreeMap<String, Value>,
) -> Result<(Value, ShardStats), BlobError> {
    let key = catalog_key(r, index, uuid);
    let _guard = CATALOG_LOCK.lock().await;
    let mut catalog = read_catalog(shared, r, &key).await?;
    // (id, hash) → a segment that already holds that exact document.
    let mut known: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for (seg, s) in &catalog.segments {
        for (id, hash) in &s.docs {
            known.entry((id, hash)).or_insert(seg);
        }
    }
    let mut live: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut fresh: Vec<(&String, &Value, String)> = Vec::new();
    for (id, doc) in docs {
        let hash = doc_hash(id, doc);
        match known.get(&(id.as_str(), hash.as_str())) {
            Some(seg) => live.entry((*seg).to_owned()).or_default().push(id.clone()),
            None => fresh.push((id, doc, hash)),
        }
    }
    let mut stats = ShardStats::default();
    if !fresh.is_empty() {
        let name = hex::encode(&sha2::Sha256::digest(format!("{snap}/{index}/{uuid}"))[..10]);
        let body: Vec<Value> = fresh.iter().map(|(id, d, _)| json!([id, d])).collect();
        let bytes = Bytes::from(Value::Array(body).to_string());
        let size = bytes.len() as u64;
        shared
            .blobs
            .put(&r.bucket, &segment_key(&key, &name), bytes)
            .await?;
        stats.incremental_files = 1;
        stats.incremental_bytes = size;
        stats.copied_docs = fresh.len() as u64;
        live.insert(
            name.clone(),
            fresh.iter().map(|(id, _, _)| (*id).clone()).collect(),
        );
        catalog.segments.insert(
            name,
            Segment {
                size,
                docs: fresh
                    .into_iter()
                    .map(|(id, _, h)| (id.clone(), h))
                    .collect(),
            },
        );
    }
    for seg in live.keys() {
        stats.total_files += 1;
        stats.total_bytes += catalog.segments[seg].size;
    }
    catalog
        .snapshots
        .insert(snap.to_owned(), live.keys().cloned().collect());
    shared
        .blobs
        .put(
            &r.bucket,
            &key,
            Bytes::from(serde_json::to_vec(&catalog).unwrap_or_default()),
        )
        .await?;
    let files: Vec<Value> = live
        .into_iter()
        .map(|(seg, ids)| json!({"segment": segment_key(&key, &seg), "live": ids}))
        .collect();
    Ok((json!({"catalog": key, "files": files}), stats))
}

/// The documents of a manifest written by [`write_index`] (every segment read, stale copies
/// masked), with the bytes and files read: a restore copies the whole index.
pub async fn read_docs(
    shared: &Shared,
    r: &Repository,
    manifest: &Value,
) -> Result<Option<(BTreeMap<String, Value>, u64, u64)>, BlobError> {
    let mut out = BTreeMap::new();
    let (mut bytes_read, mut files) = (0u64, 0u64);
    for file in manifest["files"].as_array().into_iter().flatten() {
        let key = file["segment"].as_str().unwrap_or("");
        let Some(bytes) = shared.blobs.get(&r.bucket, key).await? else {
            return Ok(None);
        };
        bytes_read += bytes.len() as u64;
        files += 1;
        let live: BTreeSet<&str> = file["live"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let docs: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        for pair in docs.as_array().into_iter().flatten() {
            if let (Some(id), Some(doc)) = (pair[0].as_str(), pair.get(1))
                && live.contains(id)
            {
                out.insert(id.to_owned(), doc.clone());
            }
        }
    }
    Ok(Some((out, bytes_read, files)))
}

/// Drops the snapshot `snap` from the catalog at `key` and deletes the segments no remaining
/// snapshot references (the catalog too once none is left).
pub async fn release(
    shared: &Shared,
    r: &Repository,
    key: &str,
    snap: &str,
) -> Result<(), BlobError> {
    let _guard = CATALOG_LOCK.lock().await;
    let mut catalog = read_catalog(shared, r, key).await?;
    if catalog.snapshots.remove(snap).is_none() {
        return Ok(());
    }
    let referenced: BTreeSet<String> = catalog.snapshots.values().flatten().cloned().collect();
    let orphans: Vec<String> = catalog
        .segments
        .keys()
        .filter(|s| !referenced.contains(*s))
        .cloned()
        .collect();
    for seg in &orphans {
        shared
            .blobs
            .delete(&r.bucket, &segment_key(key, seg))
            .await?;
        catalog.segments.remove(seg);
    }
    if catalog.snapshots.is_empty() {
        shared.blobs.delete(&r.bucket, key).await
    } else {
        shared
            .blobs
            .put(
                &r.bucket,
                key,
                Bytes::from(serde_json::to_vec(&catalog).unwrap_or_default()),
            )
            .await
    }
}
