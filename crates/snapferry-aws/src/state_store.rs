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
//! makes this possible: creating an object only if absent is the one compare-and-swap S3 offers
//! on every bucket, and it leaves the state itself writable by a plain PUT. A run that crashes
//! leaves its lock behind on purpose (nothing can tell a crashed run from a slow one); `snapferry
//! unlock` shows the holder and removes it after confirmation ([`StateStore::force_unlock`]).
//!
//! Credentials need `s3:GetObject`, `s3:PutObject` and `s3:DeleteObject` on both objects, and
//! `s3:ListBucket` on the bucket so that a missing state reads as "none yet" (without it S3
//! answers `AccessDenied` for a key that does not exist).

use std::error::Error as StdError;

use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use snapferry_engine::state::StateDoc;
use snapferry_engine::store::{LockInfo, StateStore, StoreError, decode_state, encode_state};

use crate::error::AwsError;

/// How many times `try_lock` re-tries a refused create whose holder vanished before it could be
/// read (the holder released in between): after that the lock is reported held by "unknown".
const LOCK_RACE_ATTEMPTS: usize = 3;

/// A plan's state at `s3://bucket/key` and its lock at `s3://bucket/key.lock`.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    lock_key: String,
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
        }
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

    async fn read_lock(&self) -> Result<Option<LockInfo>, StoreError> {
        Ok(self
            .get(&self.lock_key)
            .await?
            .map(|bytes| serde_json::from_slice(&bytes).unwrap_or_else(|_| unreadable_lock())))
    }

    async fn delete_lock(&self) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&self.lock_key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.sdk_error(&self.lock_key, "DeleteObject", e))
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

/// A lock object whose body is not a `LockInfo` (written by something else): still a lock.
fn unreadable_lock() -> LockInfo {
    LockInfo {
        id: String::new(),
        user: "unknown".to_owned(),
        host: "unknown".to_owned(),
        pid: 0,
        created_at: chrono::DateTime::UNIX_EPOCH,
        command: "(unreadable lock object)".to_owned(),
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

    async fn try_lock(&self, info: &LockInfo) -> Result<(), StoreError> {
        let body = serde_json::to_vec_pretty(info).expect("lock info serializes");
        for _ in 0..LOCK_RACE_ATTEMPTS {
            match self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(&self.lock_key)
                .if_none_match("*")
                .content_type("application/json")
                .body(body.clone().into())
                .send()
                .await
            {
                Ok(_) => return Ok(()),
                Err(e)
                    if is_condition_refusal(
                        e.code(),
                        e.raw_response().map(|r| r.status().as_u16()),
                    ) => {}
                Err(e) => return Err(self.sdk_error(&self.lock_key, "PutObject", e)),
            }
            // Released between our PUT and this read (or still being written): try again.
            if let Some(holder) = self.read_lock().await? {
                return Err(StoreError::LockHeld {
                    location: self.location(),
                    holder: Box::new(holder),
                });
            }
        }
        Err(StoreError::LockHeld {
            location: self.location(),
            holder: Box::new(unreadable_lock()),
        })
    }

    async fn lock_holder(&self) -> Result<Option<LockInfo>, StoreError> {
        self.read_lock().await
    }

    async fn unlock(&self, info: &LockInfo) -> Result<(), StoreError> {
        match self.read_lock().await? {
            Some(holder) if holder.id == info.id => self.delete_lock().await,
            Some(holder) => Err(StoreError::LockNotOurs {
                location: self.location(),
                holder: Box::new(holder),
            }),
            None => Ok(()),
        }
    }

    async fn force_unlock(&self) -> Result<Option<LockInfo>, StoreError> {
        let holder = self.read_lock().await?;
        self.delete_lock().await?;
        Ok(holder)
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
