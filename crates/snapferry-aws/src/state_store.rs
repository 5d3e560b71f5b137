//! The state document in S3 (`state: { s3: { bucket, key } }`), so a team or a CI runner that has
//! no shared disk can resume each other's runs.
//!
//! The document is one object, `s3://bucket/key`, replaced whole by each `PutObject`: a PUT is
//! atomic for readers, and since December 2020 S3 is strongly consistent read-after-write, so a
//! `GetObject` after a save returns that save. Nothing is encrypted by this code: the object gets
//! the bucket's default encryption (SSE-S3 at least, for every object since January 2023), and
//! asking for SSE-S3 explicitly would be refused by a bucket whose policy requires SSE-KMS.
//!
//! The lock is a second object, `s3://bucket/key.lock`, holding the holder's [`LockInfo`] as
//! JSON and created with a conditional write (`If-None-Match: *`, supported by S3 since August
//! 2024): of two runs that race for it exactly one PUT succeeds, the other gets `412
//! PreconditionFailed` (or `409 ConditionalRequestConflict` while the winner's write is still in
//! flight) and is told who holds it. A separate object, rather than a field of the state, is what
//! makes this possible: it leaves the state itself writable by a plain PUT.
//!
//! Nothing can tell a crashed run from a slow one across machines, so the lock is a *lease*: it
//! records `expires_at` (the holder's clock) and `lease_seconds` (the plan's
//! `state.s3.lock_lease_seconds`, default [`DEFAULT_LEASE`]). The running apply rewrites it every
//! third of the lease with `If-Match: <the ETag it last wrote>` ([`LockGuard`] does this in the
//! background), so a renewal never resurrects a lock another run took. Once `expires_at` plus
//! [`CLOCK_TOLERANCE`] has passed on our clock, a run takes the lease over with a PUT
//! `If-Match: <the expired lock's ETag>` (S3, November 2024): of two runs that both saw it expire,
//! only the first PUT matches, the second gets 412 and is told who holds it now. Releasing and
//! `snapferry unlock` delete with `If-Match` too, so they remove exactly the lock they looked
//! at, never one another run wrote in between.
//!
//! [`LockGuard`]: snapferry_engine::store::LockGuard
//! [`CLOCK_TOLERANCE`]: snapferry_engine::store::CLOCK_TOLERANCE
//!
//! Credentials need `s3:GetObject`, `s3:PutObject` and `s3:DeleteObject` on both objects, and
//! `s3:ListBucket` on the bucket so that a missing state reads as "none yet" (without it S3
//! answers `AccessDenied` for a key that does not exist).

use std::error::Error as StdError;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use snapferry_engine::state::StateDoc;
use snapferry_engine::store::{
    Acquired, LockInfo, LockRecord, StateStore, StoreError, Takeover, decode_state, encode_state,
    held_by_lease, held_unknown,
};

use crate::error::AwsError;

/// How many times `try_lock` starts over when the lock changed between two of its requests
/// (released, or taken by another run): after that it is reported held by whoever holds it.
const LOCK_RACE_ATTEMPTS: usize = 3;

/// The lease of the S3 lock unless the plan sets `state.s3.lock_lease_seconds`: renewed every
/// 20 s, taken over about a minute after its holder died.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// A plan's state at `s3://bucket/key` and its lock at `s3://bucket/key.lock`.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    lock_key: String,
    lease: Duration,
}

impl S3Store {
    /// The client must be for the bucket's region (and path-style when the endpoint is
    /// overridden, as [`crate::clients::AwsContext`] makes it).
    pub fn new(
        client: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        key: impl Into<String>,
    ) -> Self {
        let key = key.into();
        S3Store {
            client,
            bucket: bucket.into(),
            lock_key: format!("{key}.lock"),
            key,
            lease: DEFAULT_LEASE,
        }
    }

    /// The same store with a lease of `length` for the locks it takes.
    pub fn with_lease(mut self, length: Duration) -> Self {
        self.lease = length;
        self
    }

    /// The bucket holding the state and its lock.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The state object's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The lock object's key (`key` + `.lock`).
    pub fn lock_key(&self) -> &str {
        &self.lock_key
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// Which object an error is about, in words.
    fn object(&self, key: &str) -> String {
        if key == self.lock_key {
            format!("lock object {}", self.url(key))
        } else {
            "state object".to_owned()
        }
    }

    /// The object's bytes, `None` when there is no such key.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.code() == Some("NoSuchKey") => return Ok(None),
            Err(e) => return Err(self.sdk_error(key, "GetObject", e)),
        };
        let body = out.body.collect().await.map_err(|e| StoreError::Backend {
            location: self.location(),
            message: format!(
                "{}: s3 GetObject failed while reading the body: {e}",
                self.object(key)
            ),
        })?;
        Ok(Some(body.into_bytes().to_vec()))
    }

    /// The lock object and its ETag.
    async fn read_lock_object(&self) -> Result<Option<LockRecord>, StoreError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&self.lock_key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.code() == Some("NoSuchKey") => return Ok(None),
            Err(e) => return Err(self.sdk_error(&self.lock_key, "GetObject", e)),
        };
        let version = out.e_tag().unwrap_or_default().to_owned();
        let body = out.body.collect().await.map_err(|e| StoreError::Backend {
            location: self.location(),
            message: format!(
                "{}: s3 GetObject failed while reading the body: {e}",
                self.object(&self.lock_key)
            ),
        })?;
        Ok(Some(LockRecord {
            info: serde_json::from_slice(&body.into_bytes())
                .unwrap_or_else(|_| LockInfo::unreadable("lock object")),
            version,
        }))
    }

    /// Writes the lock object with `info` leased from now, on a condition: `None` creates it
    /// only if absent, `Some(etag)` replaces only that version. `Ok(None)` when the condition
    /// did not hold (or the object to replace is gone).
    async fn put_lock(
        &self,
        info: &LockInfo,
        replacing: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let body =
            serde_json::to_vec_pretty(&info.leased_for(self.lease)).expect("lock info serializes");
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&self.lock_key)
            .content_type("application/json")
            .body(body.into());
        let request = match replacing {
            None => request.if_none_match("*"),
            Some(etag) => request.if_match(etag),
        };
        match request.send().await {
            Ok(out) => out
                .e_tag()
                .map(|e| Some(e.to_owned()))
                .ok_or_else(|| StoreError::Backend {
                    location: self.location(),
                    message: format!(
                        "{}: s3 PutObject answered without an ETag",
                        self.object(&self.lock_key)
                    ),
                }),
            Err(e)
                if is_condition_refusal(
                    e.code(),
                    e.raw_response().map(|r| r.status().as_u16()),
                ) || (replacing.is_some() && e.code() == Some("NoSuchKey")) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.sdk_error(&self.lock_key, "PutObject", e)),
        }
    }

    /// Deletes the lock object only at version `etag`: `Ok(false)` when it is another version
    /// now or gone.
    async fn delete_lock(&self, etag: &str) -> Result<bool, StoreError> {
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&self.lock_key)
            .if_match(etag)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if is_condition_refusal(
                    e.code(),
                    e.raw_response().map(|r| r.status().as_u16()),
                ) || e.code() == Some("NoSuchKey") =>
            {
                Ok(false)
            }
            Err(e) => Err(self.sdk_error(&self.lock_key, "DeleteObject", e)),
        }
    }

    /// Replaces the lease `expired` (seen expired) with ours: `Ok(None)` if another run
    /// changed it first.
    pub async fn take_over(
        &self,
        expired: &LockRecord,
        info: &LockInfo,
    ) -> Result<Option<Acquired>, StoreError> {
        let Some(version) = self.put_lock(info, Some(&expired.version)).await? else {
            return Ok(None);
        };
        let reason = format!(
            "its lease expired at {}",
            expired
                .info
                .expires_at
                .map_or_else(|| "an unknown time".to_owned(), |at| at.to_rfc3339())
        );
        tracing::warn!(previous = %expired.info, %reason, "took over an expired lock");
        Ok(Some(Acquired {
            version,
            took_over: Some(Takeover {
                location: self.location(),
                previous: expired.info.clone(),
                reason,
            }),
        }))
    }

    fn held(&self, holder: LockInfo) -> StoreError {
        let detail = match holder.expires_at {
            Some(at) => held_by_lease(at),
            None => held_unknown(
                "the lock has no lease (it was written by an older snapferry or by hand)",
            ),
        };
        StoreError::LockHeld {
            location: self.location(),
            holder: Box::new(holder),
            detail,
        }
    }

    /// A failed S3 call as a store error: AWS's code and message (through
    /// [`AwsError::from_sdk`]), and what to do for the failures a user can fix.
    fn sdk_error<E>(
        &self,
        key: &str,
        operation: &'static str,
        error: SdkError<E, HttpResponse>,
    ) -> StoreError
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let context = DisplayErrorContext(&error).to_string();
        let status = error.raw_response().map(|r| r.status().as_u16());
        let mapped = AwsError::from_sdk(self.object(key), "s3", operation, error);
        let mut message = mapped.to_string();
        if matches!(mapped, AwsError::Sdk { code: None, .. }) {
            // No answer from S3 (connection refused, timeout, ...): the SDK's chain says why.
            message = format!("{message}: {context}");
        }
        message.push_str(&self.hint(mapped.code(), status, key, operation));
        StoreError::Backend {
            location: self.location(),
            message,
        }
    }

    fn hint(&self, code: Option<&str>, status: Option<u16>, key: &str, operation: &str) -> String {
        let bucket = &self.bucket;
        let denied = matches!(code, Some("AccessDenied" | "AllAccessDisabled"))
            || (code.is_none() && status == Some(403));
        if denied {
            return format!(
                "; the credentials in use are not allowed s3:{operation} on \
                 arn:aws:s3:::{bucket}/{key}. The S3 state needs s3:GetObject, s3:PutObject and \
                 s3:DeleteObject on arn:aws:s3:::{bucket}/{} and arn:aws:s3:::{bucket}/{}, and \
                 s3:ListBucket on arn:aws:s3:::{bucket} (without it S3 answers AccessDenied for a \
                 state that does not exist yet)",
                self.key, self.lock_key
            );
        }
        match code {
            Some("NoSuchBucket") => format!(
                "; the bucket {bucket} does not exist: create it, or point the plan's \
                 state.s3.bucket at an existing one"
            ),
            Some("PermanentRedirect" | "AuthorizationHeaderMalformed") => format!(
                "; the bucket {bucket} is in another region: set the plan's state.s3.region to \
                 the bucket's region"
            ),
            _ => String::new(),
        }
    }
}

/// Whether a refused conditional create means "the object exists (or is being created)":
/// 412 `PreconditionFailed`, or 409 `ConditionalRequestConflict` while another conditional
/// write of the same key is in flight. Other 409s (e.g. `OperationAborted`) are real failures.
fn is_condition_refusal(code: Option<&str>, status: Option<u16>) -> bool {
    match code {
        Some(code) => matches!(code, "PreconditionFailed" | "ConditionalRequestConflict"),
        None => status == Some(412),
    }
}

#[async_trait]
impl StateStore for S3Store {
    fn location(&self) -> String {
        self.url(&self.key)
    }

    async fn load(&self) -> Result<Option<StateDoc>, StoreError> {
        self.get(&self.key)
            .await?
            .map(|bytes| decode_state(&self.location(), &bytes))
            .transpose()
    }

    async fn save(&self, doc: &StateDoc) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .content_type("application/json")
            .body(encode_state(doc).into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.sdk_error(&self.key, "PutObject", e))
    }

    fn lease(&self) -> Option<Duration> {
        Some(self.lease)
    }

    async fn try_lock(&self, info: &LockInfo) -> Result<Acquired, StoreError> {
        let mut last_seen = None;
        for _ in 0..LOCK_RACE_ATTEMPTS {
            if let Some(version) = self.put_lock(info, None).await? {
                return Ok(Acquired {
                    version,
                    took_over: None,
                });
            }
            // Released between our PUT and this read: try again.
            let Some(held) = self.read_lock_object().await? else {
                continue;
            };
            if !held.info.lease_expired(chrono::Utc::now()) {
                return Err(self.held(held.info));
            }
            if let Some(acquired) = self.take_over(&held, info).await? {
                return Ok(acquired);
            }
            // Another run took it over (or released it) first: look again.
            last_seen = Some(held.info);
        }
        Err(self.held(match self.read_lock_object().await? {
            Some(held) => held.info,
            None => last_seen.unwrap_or_else(|| LockInfo::unreadable("lock object")),
        }))
    }

    async fn renew(&self, info: &LockInfo, version: &str) -> Result<String, StoreError> {
        if let Some(version) = self.put_lock(info, Some(version)).await? {
            return Ok(version);
        }
        let reason = match self.read_lock_object().await? {
            Some(held) if held.info.id == info.id && held.version == version => {
                // 409: a conflicting write is in flight; the lease is still ours, retry.
                return Err(StoreError::Backend {
                    location: self.location(),
                    message: format!(
                        "{}: s3 PutObject met a conflicting write; retrying",
                        self.object(&self.lock_key)
                    ),
                });
            }
            Some(held) => format!("another run took it over: {}", held.info),
            None => format!("{} was removed", self.url(&self.lock_key)),
        };
        Err(StoreError::LeaseLost {
            location: self.location(),
            reason,
        })
    }

    async fn read_lock(&self) -> Result<Option<LockRecord>, StoreError> {
        self.read_lock_object().await
    }

    async fn unlock(&self, info: &LockInfo, version: &str) -> Result<(), StoreError> {
        if self.delete_lock(version).await? {
            return Ok(());
        }
        // Not that version any more: a renewal whose answer we lost may have rewritten it.
        match self.read_lock_object().await? {
            Some(held) if held.info.id == info.id => {
                self.delete_lock(&held.version).await?;
                Ok(())
            }
            Some(held) => Err(StoreError::LockNotOurs {
                location: self.location(),
                holder: Box::new(held.info),
            }),
            None => Ok(()),
        }
    }

    async fn remove_lock(&self, seen: &LockRecord) -> Result<bool, StoreError> {
        if self.delete_lock(&seen.version).await? {
            return Ok(true);
        }
        match self.read_lock_object().await? {
            None => Ok(false),
            Some(now) => Err(StoreError::LockChanged {
                location: self.location(),
                now: if now.info.id == seen.info.id {
                    format!(
                        "its holder renewed it, so that run is still going: {}",
                        now.info
                    )
                } else {
                    format!("now held by {}", now.info)
                },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_condition_failures_mean_the_lock_exists() {
        assert!(is_condition_refusal(Some("PreconditionFailed"), Some(412)));
        assert!(is_condition_refusal(
            Some("ConditionalRequestConflict"),
            Some(409)
        ));
        assert!(is_condition_refusal(None, Some(412)));
        assert!(!is_condition_refusal(Some("OperationAborted"), Some(409)));
        assert!(!is_condition_refusal(Some("AccessDenied"), Some(403)));
        assert!(!is_condition_refusal(None, Some(409)));
    }

    use aws_sdk_s3::operation::get_object::GetObjectError;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn store() -> S3Store {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .build();
        S3Store::new(
            aws_sdk_s3::Client::from_conf(conf),
            "team-state",
            "snapferry/prod.json",
        )
    }

    fn service_error(
        code: &str,
        message: &str,
        status: u16,
    ) -> SdkError<GetObjectError, HttpResponse> {
        let err =
            GetObjectError::generic(ErrorMetadata::builder().code(code).message(message).build());
        SdkError::service_error(
            err,
            HttpResponse::new(status.try_into().unwrap(), SdkBody::empty()),
        )
    }

    fn message(e: StoreError) -> (String, String) {
        match e {
            StoreError::Backend { location, message } => (location, message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn access_denied_names_the_object_and_the_permissions_needed() {
        let s = store();
        let (location, msg) = message(s.sdk_error(
            "snapferry/prod.json.lock",
            "GetObject",
            service_error("AccessDenied", "Access Denied", 403),
        ));
        assert_eq!(location, "s3://team-state/snapferry/prod.json");
        assert!(
            msg.starts_with(
                "lock object s3://team-state/snapferry/prod.json.lock: s3 GetObject failed: \
                 AccessDenied: Access Denied; the credentials in use are not allowed s3:GetObject \
                 on arn:aws:s3:::team-state/snapferry/prod.json.lock."
            ),
            "{msg}"
        );
        for needed in [
            "s3:GetObject, s3:PutObject and s3:DeleteObject on arn:aws:s3:::team-state/snapferry/prod.json and arn:aws:s3:::team-state/snapferry/prod.json.lock",
            "s3:ListBucket on arn:aws:s3:::team-state",
        ] {
            assert!(msg.contains(needed), "{msg}");
        }
    }

    #[test]
    fn other_service_errors_keep_aws_code_and_message() {
        let (_, msg) = message(store().sdk_error(
            "snapferry/prod.json",
            "GetObject",
            service_error("InvalidObjectState", "The operation is not valid", 403),
        ));
        assert!(
            msg.starts_with(
                "state object: s3 GetObject failed: InvalidObjectState: The operation is not valid"
            ),
            "{msg}"
        );
        let (_, msg) = message(store().sdk_error(
            "snapferry/prod.json",
            "GetObject",
            service_error("PermanentRedirect", "use the right endpoint", 301),
        ));
        assert!(
            msg.ends_with("set the plan's state.s3.region to the bucket's region"),
            "{msg}"
        );
    }
}
