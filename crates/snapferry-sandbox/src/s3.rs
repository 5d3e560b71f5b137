//! S3: an in-memory object store served through the `s3s` crate (which owns the wire protocol and
//! its SigV4 check), plus [`BlobStore`], the S3 a domain writes its snapshots to — this store, or
//! an external S3 endpoint (e.g. moto) reached with a signed client of the domain's own.
//!
//! A bucket policy is read as S3 reads it: its statements' resources must be the bucket, their
//! actions S3's, and every principal must resolve. A role IAM created less than
//! `iam_propagation_secs` ago does not resolve yet (IAM is eventually consistent), so S3 answers
//! 400 `MalformedPolicy` "Invalid principal in policy" for it exactly as for a role that does not
//! exist; a client retries until the role has propagated.
//!
//! Buckets have a Region and an owner account. A request signed for another Region than the
//! bucket's is answered 301 `PermanentRedirect` with `x-amz-bucket-region` (checked in the access
//! hook, [`crate::identity::S3Access`]); `CreateBucket` puts the bucket in the Region its
//! request was signed for, which its `LocationConstraint` must name (none in `us-east-1`), else
//! `IllegalLocationConstraintException`. A bucket is used across accounts only as its policy
//! grants ([`crate::policy_eval::evaluate_across`]); `ListBuckets` lists the caller's own.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use futures::StreamExt;
use md5::{Digest, Md5};
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};

/// One stored object.
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub data: Bytes,
    pub etag: String,
    pub last_modified: SystemTime,
    pub content_type: Option<String>,
}

#[derive(Debug, Clone)]
pub struct StoredBucket {
    pub created: SystemTime,
    pub objects: BTreeMap<String, StoredObject>,
    pub policy: Option<String>,
    /// The default encryption set with PutBucketEncryption.
    pub encryption: Option<ServerSideEncryptionConfiguration>,
    /// The Region the bucket lives in.
    pub region: String,
    /// The account that owns it.
    pub owner: String,
}

/// The sandbox's own buckets.
#[derive(Debug, Default)]
pub struct S3Store {
    buckets: Mutex<BTreeMap<String, StoredBucket>>,
}

impl S3Store {
    /// Creates bucket `name` in `region`, owned by `owner`; `false` when the name is taken.
    pub fn create_bucket(&self, name: &str, region: &str, owner: &str) -> bool {
        let mut buckets = self.buckets.lock().expect("s3 lock");
        if buckets.contains_key(name) {
            return false;
        }
        buckets.insert(
            name.to_owned(),
            StoredBucket {
                created: SystemTime::now(),
                objects: BTreeMap::new(),
                policy: None,
                encryption: None,
                region: region.to_owned(),
                owner: owner.to_owned(),
            },
        );
        true
    }

    /// The Region a bucket lives in.
    pub fn region(&self, name: &str) -> Option<String> {
        self.buckets
            .lock()
            .expect("s3 lock")
            .get(name)
            .map(|b| b.region.clone())
    }

    /// The account that owns a bucket.
    pub fn owner(&self, name: &str) -> Option<String> {
        self.buckets
            .lock()
            .expect("s3 lock")
            .get(name)
            .map(|b| b.owner.clone())
    }

    pub fn bucket_exists(&self, name: &str) -> bool {
        self.buckets.lock().expect("s3 lock").contains_key(name)
    }

    pub fn policy(&self, bucket: &str) -> Option<Option<String>> {
        self.buckets
            .lock()
            .expect("s3 lock")
            .get(bucket)
            .map(|b| b.policy.clone())
    }

    /// Stores an object; with `if_none_match_any`, refuses to overwrite (returns `Ok(false)`).
    pub fn put(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        content_type: Option<String>,
        if_none_match_any: bool,
    ) -> Result<Option<String>, ()> {
        let mut buckets = self.buckets.lock().expect("s3 lock");
        let b = buckets.get_mut(bucket).ok_or(())?;
        if if_none_match_any && b.objects.contains_key(key) {
            return Ok(None);
        }
        let etag = hex::encode(Md5::digest(&data));
        b.objects.insert(
            key.to_owned(),
            StoredObject {
                data,
                etag: etag.clone(),
                last_modified: SystemTime::now(),
                content_type,
            },
        );
        Ok(Some(etag))
    }

    pub fn get(&self, bucket: &str, key: &str) -> Result<Option<StoredObject>, ()> {
        let buckets = self.buckets.lock().expect("s3 lock");
        let b = buckets.get(bucket).ok_or(())?;
        Ok(b.objects.get(key).cloned())
    }

    pub fn delete(&self, bucket: &str, key: &str) -> Result<(), ()> {
        let mut buckets = self.buckets.lock().expect("s3 lock");
        buckets.get_mut(bucket).ok_or(())?.objects.remove(key);
        Ok(())
    }

    pub fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<(String, StoredObject)>, ()> {
        let buckets = self.buckets.lock().expect("s3 lock");
        let b = buckets.get(bucket).ok_or(())?;
        Ok(b.objects
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, o)| (k.clone(), o.clone()))
            .collect())
    }
}

/// The `s3s` backend over [`S3Store`].
#[derive(Debug, Clone)]
pub struct SandboxS3 {
    pub store: Arc<S3Store>,
    /// Who signed a request: the owner of the buckets it creates and lists.
    pub identities: Arc<crate::identity::Identities>,
    /// The IAM principals in bucket policies are resolved against (`None`: IAM is external, its
    /// roles are taken as they are).
    pub iam: Option<Arc<crate::iam::IamStore>>,
}

fn as_strings(value: Option<&serde_json::Value>) -> Vec<String> {
    match value {
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

impl SandboxS3 {
    /// What S3 refuses in a bucket policy: a resource outside the bucket, an action that is not
    /// S3's, a principal that does not resolve (yet). Each is 400 `MalformedPolicy`.
    fn check_policy(&self, bucket: &str, policy: &serde_json::Value) -> S3Result<()> {
        let statements = match policy.get("Statement") {
            Some(serde_json::Value::Array(items)) => items.clone(),
            Some(one @ serde_json::Value::Object(_)) => vec![one.clone()],
            _ => {
                return Err(s3_error!(
                    MalformedPolicy,
                    "Missing required field Statement"
                ));
            }
        };
        let bucket_arn = format!("arn:aws:s3:::{bucket}");
        for statement in &statements {
            let resources = as_strings(statement.get("Resource"));
            if resources.is_empty() {
                return Err(s3_error!(
                    MalformedPolicy,
                    "Missing required field Resource"
                ));
            }
            if resources
                .iter()
                .any(|r| r != &bucket_arn && !r.starts_with(&format!("{bucket_arn}/")))
            {
                return Err(s3_error!(MalformedPolicy, "Policy has invalid resource"));
            }
            let actions = as_strings(statement.get("Action"));
            if actions
                .iter()
                .any(|a| a != "*" && !a.to_ascii_lowercase().starts_with("s3:"))
            {
                return Err(s3_error!(MalformedPolicy, "Policy has invalid action"));
            }
            let principals = match statement.get("Principal") {
                Some(serde_json::Value::String(star)) if star == "*" => Vec::new(),
                Some(serde_json::Value::Object(p)) => as_strings(p.get("AWS")),
                None if statement.get("NotPrincipal").is_some() => Vec::new(),
                _ => return Err(s3_error!(MalformedPolicy, "Invalid principal in policy")),
            };
            if let Some(iam) = &self.iam {
                for principal in principals.iter().filter(|p| *p != "*") {
                    match iam.principal_state(principal) {
                        crate::iam::PrincipalState::Known | crate::iam::PrincipalState::Foreign => {
                        }
                        crate::iam::PrincipalState::Propagating
                        | crate::iam::PrincipalState::Unknown => {
                            return Err(s3_error!(MalformedPolicy, "Invalid principal in policy"));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn no_such_bucket(bucket: &str) -> s3s::S3Error {
    s3_error!(
        NoSuchBucket,
        "The specified bucket does not exist: {bucket}"
    )
}

async fn read_blob(blob: Option<StreamingBlob>) -> S3Result<Bytes> {
    let Some(mut blob) = blob else {
        return Ok(Bytes::new());
    };
    let mut out = Vec::new();
    while let Some(chunk) = blob.next().await {
        let chunk = chunk.map_err(|e| s3_error!(IncompleteBody, "request body: {e}"))?;
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

fn blob(data: Bytes) -> StreamingBlob {
    StreamingBlob::from(s3s::Body::from(data))
}

#[async_trait::async_trait]
impl S3 for SandboxS3 {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let name = &req.input.bucket;
        let owner = req
            .credentials
            .as_ref()
            .and_then(|c| self.identities.get(&c.access_key))
            .map(|i| i.account.clone())
            .unwrap_or_default();
        // The Region the request was sent to is where the bucket goes; the location constraint
        // must say the same (and is left out in us-east-1, which refuses it).
        let region = req.region.clone().unwrap_or_else(|| "us-east-1".into());
        let constraint = req
            .input
            .create_bucket_configuration
            .as_ref()
            .and_then(|c| c.location_constraint.as_ref())
            .map(|c| c.as_str().to_owned())
            .filter(|c| !c.is_empty());
        match constraint.as_deref() {
            None if region != "us-east-1" => {
                return Err(s3_error!(
                    IllegalLocationConstraintException,
                    "The unspecified location constraint is incompatible for the region specific endpoint this request was sent to."
                ));
            }
            Some("us-east-1") => {
                return Err(s3_error!(
                    InvalidLocationConstraint,
                    "The specified location-constraint is not valid"
                ));
            }
            Some(c) if c != region => {
                return Err(s3_error!(
                    IllegalLocationConstraintException,
                    "The {c} location constraint is incompatible for the region specific endpoint this request was sent to."
                ));
            }
            _ => {}
        }
        if !self.store.create_bucket(name, &region, &owner) {
            if self.store.owner(name).as_deref() != Some(owner.as_str()) {
                return Err(s3_error!(
                    BucketAlreadyExists,
                    "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."
                ));
            }
            return Err(s3_error!(
                BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it."
            ));
        }
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{name}")),
        }))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        let Some(region) = self.store.region(&req.input.bucket) else {
            return Err(no_such_bucket(&req.input.bucket));
        };
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(region),
            ..Default::default()
        }))
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let owner = req
            .credentials
            .as_ref()
            .and_then(|c| self.identities.get(&c.access_key))
            .map(|i| i.account.clone());
        let buckets = self.store.buckets.lock().expect("s3 lock");
        let list = buckets
            .iter()
            .filter(|(_, b)| owner.as_deref() == Some(b.owner.as_str()))
            .map(|(name, b)| Bucket {
                name: Some(name.clone()),
                creation_date: Some(Timestamp::from(b.created)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(list),
            ..Default::default()
        }))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let mut buckets = self.store.buckets.lock().expect("s3 lock");
        let name = &req.input.bucket;
        match buckets.get(name) {
            None => return Err(no_such_bucket(name)),
            Some(b) if !b.objects.is_empty() => {
                return Err(s3_error!(
                    BucketNotEmpty,
                    "The bucket you tried to delete is not empty"
                ));
            }
            Some(_) => {}
        }
        buckets.remove(name);
        Ok(S3Response::new(DeleteBucketOutput::default()))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let input = req.input;
        let if_none_match_any = matches!(input.if_none_match, Some(ETagCondition::Any));
        let data = read_blob(input.body).await?;
        match self.store.put(
            &input.bucket,
            &input.key,
            data,
            input.content_type.map(|c| c.to_string()),
            if_none_match_any,
        ) {
            Err(()) => Err(no_such_bucket(&input.bucket)),
            Ok(None) => Err(s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            )),
            Ok(Some(etag)) => Ok(S3Response::new(PutObjectOutput {
                e_tag: Some(ETag::Strong(etag)),
                ..Default::default()
            })),
        }
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let object = self
            .store
            .get(&input.bucket, &input.key)
            .map_err(|()| no_such_bucket(&input.bucket))?
            .ok_or_else(|| s3_error!(NoSuchKey, "The specified key does not exist."))?;
        Ok(S3Response::new(GetObjectOutput {
            content_length: Some(object.data.len() as i64),
            e_tag: Some(ETag::Strong(object.etag)),
            last_modified: Some(Timestamp::from(object.last_modified)),
            content_type: object.content_type.and_then(|c| c.parse().ok()),
            body: Some(blob(object.data)),
            ..Default::default()
        }))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let object = self
            .store
            .get(&input.bucket, &input.key)
            .map_err(|()| no_such_bucket(&input.bucket))?
            .ok_or_else(|| s3_error!(NoSuchKey, "The specified key does not exist."))?;
        Ok(S3Response::new(HeadObjectOutput {
            content_length: Some(object.data.len() as i64),
            e_tag: Some(ETag::Strong(object.etag)),
            last_modified: Some(Timestamp::from(object.last_modified)),
            content_type: object.content_type.and_then(|c| c.parse().ok()),
            ..Default::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.store
            .delete(&req.input.bucket, &req.input.key)
            .map_err(|()| no_such_bucket(&req.input.bucket))?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max_keys = input.max_keys.unwrap_or(1000).clamp(1, 1000) as usize;
        let after = input
            .continuation_token
            .clone()
            .or(input.start_after.clone())
            .unwrap_or_default();
        let all = self
            .store
            .list(&input.bucket, &prefix)
            .map_err(|()| no_such_bucket(&input.bucket))?;
        let mut contents = Vec::new();
        let mut prefixes = std::collections::BTreeSet::new();
        let mut truncated = false;
        let mut last = None;
        for (key, object) in all.into_iter().filter(|(k, _)| k.as_str() > after.as_str()) {
            if contents.len() + prefixes.len() >= max_keys {
                truncated = true;
                break;
            }
            if let Some(delim) = input.delimiter.as_deref()
                && let Some(pos) = key[prefix.len()..].find(delim)
            {
                prefixes.insert(key[..prefix.len() + pos + delim.len()].to_owned());
                last = Some(key);
                continue;
            }
            contents.push(Object {
                key: Some(key.clone()),
                size: Some(object.data.len() as i64),
                e_tag: Some(ETag::Strong(object.etag)),
                last_modified: Some(Timestamp::from(object.last_modified)),
                storage_class: Some(ObjectStorageClass::from_static(
                    ObjectStorageClass::STANDARD,
                )),
                ..Default::default()
            });
            last = Some(key);
        }
        let key_count = (contents.len() + prefixes.len()) as i32;
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: input.prefix,
            delimiter: input.delimiter,
            max_keys: Some(max_keys as i32),
            key_count: Some(key_count),
            is_truncated: Some(truncated),
            continuation_token: input.continuation_token,
            next_continuation_token: if truncated { last } else { None },
            contents: Some(contents),
            common_prefixes: Some(
                prefixes
                    .into_iter()
                    .map(|p| CommonPrefix { prefix: Some(p) })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    async fn put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> S3Result<S3Response<PutBucketPolicyOutput>> {
        let input = req.input;
        let Ok(document) = serde_json::from_str::<serde_json::Value>(&input.policy) else {
            return Err(s3_error!(
                MalformedPolicy,
                "Policies must be valid JSON and the first byte must be '{{'"
            ));
        };
        if !self.store.bucket_exists(&input.bucket) {
            return Err(no_such_bucket(&input.bucket));
        }
        self.check_policy(&input.bucket, &document)?;
        // What S3 keeps, the access hook and the domains evaluate: it must read in their
        // grammar (the sandbox's evaluator refuses what it cannot evaluate rather than guess).
        if let Err(e) = crate::policy_eval::Policy::from_value(&document, true) {
            return Err(s3_error!(MalformedPolicy, "{}", e));
        }
        let mut buckets = self.store.buckets.lock().expect("s3 lock");
        let b = buckets
            .get_mut(&input.bucket)
            .ok_or_else(|| no_such_bucket(&input.bucket))?;
        b.policy = Some(input.policy);
        Ok(S3Response::with_status(
            PutBucketPolicyOutput::default(),
            http::StatusCode::NO_CONTENT,
        ))
    }

    async fn put_bucket_encryption(
        &self,
        req: S3Request<PutBucketEncryptionInput>,
    ) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
        let input = req.input;
        let mut buckets = self.store.buckets.lock().expect("s3 lock");
        let b = buckets
            .get_mut(&input.bucket)
            .ok_or_else(|| no_such_bucket(&input.bucket))?;
        b.encryption = Some(input.server_side_encryption_configuration);
        Ok(S3Response::new(PutBucketEncryptionOutput::default()))
    }

    async fn get_bucket_encryption(
        &self,
        req: S3Request<GetBucketEncryptionInput>,
    ) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
        let buckets = self.store.buckets.lock().expect("s3 lock");
        let b = buckets
            .get(&req.input.bucket)
            .ok_or_else(|| no_such_bucket(&req.input.bucket))?;
        Ok(S3Response::new(GetBucketEncryptionOutput {
            server_side_encryption_configuration: b.encryption.clone(),
        }))
    }

    async fn get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        match self.store.policy(&req.input.bucket) {
            None => Err(no_such_bucket(&req.input.bucket)),
            Some(None) => Err(s3_error!(
                NoSuchBucketPolicy,
                "The bucket policy does not exist"
            )),
            Some(Some(policy)) => Ok(S3Response::new(GetBucketPolicyOutput {
                policy: Some(policy),
            })),
        }
    }

    async fn delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
        let mut buckets = self.store.buckets.lock().expect("s3 lock");
        let b = buckets
            .get_mut(&req.input.bucket)
            .ok_or_else(|| no_such_bucket(&req.input.bucket))?;
        b.policy = None;
        Ok(S3Response::with_status(
            DeleteBucketPolicyOutput::default(),
            http::StatusCode::NO_CONTENT,
        ))
    }
}

/// Names an S3 request for the log and fault rules: (operation, bucket, mutating).
pub fn classify(
    method: &http::Method,
    path: &str,
    query: Option<&str>,
) -> (&'static str, Option<String>, bool) {
    let trimmed = path.trim_start_matches('/');
    let (bucket, key) = match trimmed.split_once('/') {
        Some((b, k)) => (b, k),
        None => (trimmed, ""),
    };
    let bucket = (!bucket.is_empty()).then(|| {
        percent_encoding::percent_decode_str(bucket)
            .decode_utf8_lossy()
            .into_owned()
    });
    let has =
        |p: &str| query.is_some_and(|q| q.split('&').any(|kv| kv.split('=').next() == Some(p)));
    use http::Method as M;
    let (op, mutating) = match (method, bucket.is_some(), !key.is_empty()) {
        (&M::GET, false, _) => ("ListBuckets", false),
        (&M::PUT, true, false) if has("policy") => ("PutBucketPolicy", true),
        (&M::GET, true, false) if has("policy") => ("GetBucketPolicy", false),
        (&M::DELETE, true, false) if has("policy") => ("DeleteBucketPolicy", true),
        (&M::PUT, true, false) => ("CreateBucket", true),
        (&M::HEAD, true, false) => ("HeadBucket", false),
        (&M::DELETE, true, false) => ("DeleteBucket", true),
        (&M::GET, true, false) => ("ListObjectsV2", false),
        (&M::POST, true, false) if has("delete") => ("DeleteObjects", true),
        (&M::PUT, true, true) => ("PutObject", true),
        (&M::GET, true, true) => ("GetObject", false),
        (&M::HEAD, true, true) => ("HeadObject", false),
        (&M::DELETE, true, true) => ("DeleteObject", true),
        _ => ("Unknown", false),
    };
    (op, bucket, mutating)
}

/// Where a domain writes its snapshots: the sandbox's own S3 or an external one.
#[derive(Debug, Clone)]
pub enum BlobStore {
    Local(Arc<S3Store>),
    External(aws_sdk_s3::Client),
}

/// A failed S3 call made by a domain, in words for the OpenSearch error it becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum BlobError {
    NoSuchBucket,
    Other(String),
}

impl BlobStore {
    /// The owner account and Region of a bucket of the sandbox's own S3 (`None` for an external
    /// S3, whose buckets the sandbox cannot place).
    pub fn bucket_home(&self, bucket: &str) -> Option<(String, String)> {
        match self {
            Self::Local(s) => Some((s.owner(bucket)?, s.region(bucket)?)),
            Self::External(_) => None,
        }
    }

    pub async fn bucket_exists(&self, bucket: &str) -> Result<bool, BlobError> {
        match self {
            Self::Local(s) => Ok(s.bucket_exists(bucket)),
            Self::External(c) => match c.head_bucket().bucket(bucket).send().await {
                Ok(_) => Ok(true),
                Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(false),
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(false),
                Err(e) => Err(BlobError::Other(format!(
                    "{}",
                    aws_sdk_s3::error::DisplayErrorContext(e)
                ))),
            },
        }
    }

    /// The bucket policy, `None` when the bucket has none.
    pub async fn bucket_policy(&self, bucket: &str) -> Result<Option<String>, BlobError> {
        match self {
            Self::Local(s) => s.policy(bucket).ok_or(BlobError::NoSuchBucket),
            Self::External(c) => match c.get_bucket_policy().bucket(bucket).send().await {
                Ok(out) => Ok(out.policy),
                Err(e) => {
                    let code = e
                        .as_service_error()
                        .and_then(|s| s.meta().code().map(str::to_owned));
                    match code.as_deref() {
                        Some("NoSuchBucketPolicy") => Ok(None),
                        Some("NoSuchBucket") => Err(BlobError::NoSuchBucket),
                        _ => Err(BlobError::Other(format!(
                            "{}",
                            aws_sdk_s3::error::DisplayErrorContext(e)
                        ))),
                    }
                }
            },
        }
    }

    pub async fn put(&self, bucket: &str, key: &str, data: Bytes) -> Result<(), BlobError> {
        match self {
            Self::Local(s) => s
                .put(bucket, key, data, Some("application/json".into()), false)
                .map(|_| ())
                .map_err(|()| BlobError::NoSuchBucket),
            Self::External(c) => c
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(data.into())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    BlobError::Other(format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)))
                }),
        }
    }

    pub async fn get(&self, bucket: &str, key: &str) -> Result<Option<Bytes>, BlobError> {
        match self {
            Self::Local(s) => s
                .get(bucket, key)
                .map(|o| o.map(|o| o.data))
                .map_err(|()| BlobError::NoSuchBucket),
            Self::External(c) => match c.get_object().bucket(bucket).key(key).send().await {
                Ok(out) => out
                    .body
                    .collect()
                    .await
                    .map(|b| Some(b.into_bytes()))
                    .map_err(|e| BlobError::Other(e.to_string())),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
                Err(e) => Err(BlobError::Other(format!(
                    "{}",
                    aws_sdk_s3::error::DisplayErrorContext(e)
                ))),
            },
        }
    }

    pub async fn delete(&self, bucket: &str, key: &str) -> Result<(), BlobError> {
        match self {
            Self::Local(s) => s.delete(bucket, key).map_err(|()| BlobError::NoSuchBucket),
            Self::External(c) => c
                .delete_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    BlobError::Other(format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)))
                }),
        }
    }

    /// Keys under a prefix.
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, BlobError> {
        match self {
            Self::Local(s) => s
                .list(bucket, prefix)
                .map(|v| v.into_iter().map(|(k, _)| k).collect())
                .map_err(|()| BlobError::NoSuchBucket),
            Self::External(c) => {
                let mut keys = Vec::new();
                let mut pages = c
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(prefix)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| {
                        BlobError::Other(format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)))
                    })?;
                    keys.extend(
                        page.contents()
                            .iter()
                            .filter_map(|o| o.key().map(str::to_owned)),
                    );
                }
                Ok(keys)
            }
        }
    }
}
