//! The S3 state store against the sandbox's S3 (and the lock against moto's, a second
//! implementation of conditional writes): round trip, refusal of broken documents, the
//! create-only lock object and its holder, the lease renewed in the background and taken over
//! once expired, and errors that name the bucket. The steps that rest on `If-Match` (a
//! takeover race, a renewal or unlock after the lock changed hands) run against moto only:
//! the sandbox's S3 ignores `If-Match` on PutObject and DeleteObject.

use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use snapferry_aws::clients::{AwsContext, AwsOptions};
use snapferry_aws::state_store::S3Store;
use snapferry_engine::NodeId;
use snapferry_engine::state::{NodeStatus, StateDoc};
use snapferry_engine::store::{LockGuard, LockInfo, LockRecord, StateStore, StoreError};
use snapferry_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

const BUCKET: &str = "team-state";
const KEY: &str = "snapferry/prod-copy.state.json";
const REGION: &str = "us-east-1";

async fn sandbox() -> SandboxHandle {
    Sandbox::start(SandboxConfig {
        buckets: vec![BUCKET.to_owned()],
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

/// snapferry's own context (path-style S3 under the endpoint override) for an endpoint.
async fn context(endpoint: String, key_id: &str, secret: &str) -> AwsContext {
    AwsContext::load(AwsOptions {
        endpoint_url: Some(endpoint),
        credentials: Some(SharedCredentialsProvider::new(Credentials::new(
            key_id, secret, None, None, "test",
        ))),
        fallback_region: Some(REGION.to_owned()),
        ..AwsOptions::default()
    })
    .await
    .expect("AWS context")
}

async fn sandbox_s3(h: &SandboxHandle) -> aws_sdk_s3::Client {
    let env: std::collections::BTreeMap<String, String> = h.env().into_iter().collect();
    let aws = context(
        h.endpoint_url(),
        &env["AWS_ACCESS_KEY_ID"],
        &env["AWS_SECRET_ACCESS_KEY"],
    )
    .await;
    aws.clients(REGION, None).await.expect("clients").s3
}

fn doc() -> StateDoc {
    let mut d = StateDoc::new("prod-copy", "fp1", "0.1.0");
    let n = NodeId::new("role", "snap");
    d.transition(&n, NodeStatus::Applying).unwrap();
    d.transition(&n, NodeStatus::Done).unwrap();
    d
}

fn holder(user: &str, host: &str, pid: u32) -> LockInfo {
    LockInfo {
        user: user.to_owned(),
        host: host.to_owned(),
        pid,
        ..LockInfo::for_this_process(&format!("snapferry apply ({user})"))
    }
}

async fn put_raw(s3: &aws_sdk_s3::Client, key: &str, bytes: &[u8]) {
    s3.put_object()
        .bucket(BUCKET)
        .key(key)
        .body(bytes.to_vec().into())
        .send()
        .await
        .expect("PutObject");
}

async fn get_raw(s3: &aws_sdk_s3::Client, key: &str) -> Option<Vec<u8>> {
    match s3.get_object().bucket(BUCKET).key(key).send().await {
        Ok(out) => Some(out.body.collect().await.unwrap().into_bytes().to_vec()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => None,
        Err(e) => panic!("{}", aws_sdk_s3::error::DisplayErrorContext(e)),
    }
}

#[tokio::test]
async fn nothing_loads_as_none_and_a_save_loads_back() {
    let h = sandbox().await;
    let s3 = sandbox_s3(&h).await;
    let store = S3Store::new(s3.clone(), BUCKET, KEY);
    assert_eq!(store.location(), format!("s3://{BUCKET}/{KEY}"));
    assert_eq!(store.load().await.unwrap(), None);

    let saved = doc();
    store.save(&saved).await.unwrap();
    assert_eq!(store.load().await.unwrap(), Some(saved.clone()));
    let stored: serde_json::Value =
        serde_json::from_slice(&get_raw(&s3, KEY).await.expect("the state object")).unwrap();
    assert_eq!(stored["plan_name"], "prod-copy");

    // A second save replaces the document whole.
    let mut next = saved;
    next.plan_fingerprint = "fp2".into();
    store.save(&next).await.unwrap();
    assert_eq!(store.load().await.unwrap(), Some(next));
    h.shutdown().await;
}

#[tokio::test]
async fn corrupt_and_newer_documents_are_refused_naming_the_object_and_left_alone() {
    let h = sandbox().await;
    let s3 = sandbox_s3(&h).await;
    let store = S3Store::new(s3.clone(), BUCKET, KEY);
    let torn = b"{\"format_version\": 1, \"plan_na";
    put_raw(&s3, KEY, torn).await;
    let err = store.load().await.unwrap_err();
    match &err {
        StoreError::Corrupt { location, .. } => {
            assert_eq!(location, &format!("s3://{BUCKET}/{KEY}"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().starts_with(&format!(
            "the state at s3://{BUCKET}/{KEY} is corrupted (not valid JSON at line 1 column 30)"
        )),
        "{err}"
    );
    assert_eq!(get_raw(&s3, KEY).await.as_deref(), Some(&torn[..]));

    put_raw(&s3, KEY, br#"{"format_version": 9}"#).await;
    assert!(matches!(
        store.load().await,
        Err(StoreError::UnsupportedVersion { found: 9, .. })
    ));
    h.shutdown().await;
}

/// The lock story every S3 implementation must tell the same way.
async fn lock_story(s3: aws_sdk_s3::Client) {
    let store = S3Store::new(s3.clone(), BUCKET, KEY).with_lease(Duration::from_secs(90));
    assert_eq!(store.lock_holder().await.unwrap(), None);
    let alice = holder("alice", "ci-1", 4242);
    let acquired = store
        .try_lock(&alice)
        .await
        .expect("the first lock is taken");
    assert_eq!(acquired.took_over, None);
    let lock: LockInfo = serde_json::from_slice(
        &get_raw(&s3, &format!("{KEY}.lock"))
            .await
            .expect("the lock object"),
    )
    .unwrap();
    assert_eq!(lock.id, alice.id);
    assert_eq!(lock.lease_seconds, Some(90));
    let expires = lock.expires_at.expect("a lease records its expiry");
    let left = expires - chrono::Utc::now();
    assert!(
        left > chrono::Duration::seconds(60) && left <= chrono::Duration::seconds(90),
        "{left}"
    );

    let bob = holder("bob", "laptop", 7);
    let err = store.try_lock(&bob).await.unwrap_err();
    match &err {
        StoreError::LockHeld {
            location, holder, ..
        } => {
            assert_eq!(location, &format!("s3://{BUCKET}/{KEY}"));
            assert_eq!(**holder, lock);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "the state at s3://{BUCKET}/{KEY} is locked by {lock}; its lease runs until {} \
             unless that run renews it: wait for it to finish (`--lock-timeout SECONDS` waits; \
             the lease of a run that is gone is taken over once it expires)",
            expires.to_rfc3339()
        )
    );
    let seen = store.read_lock().await.unwrap().expect("locked");
    assert_eq!(seen.version, acquired.version, "the version is the ETag");

    // `snapferry unlock` removes the lock it showed; then Bob gets it and releases it.
    assert!(store.remove_lock(&seen).await.unwrap());
    assert_eq!(store.lock_holder().await.unwrap(), None);
    let bobs = store.try_lock(&bob).await.expect("free again");
    store.unlock(&bob, &bobs.version).await.unwrap();
    assert_eq!(get_raw(&s3, &format!("{KEY}.lock")).await, None);
}

#[tokio::test]
async fn the_lock_is_a_create_only_object_naming_its_holder() {
    let h = sandbox().await;
    let s3 = sandbox_s3(&h).await;
    lock_story(s3).await;
    // The refusal was S3's conditional write, not a read-then-write.
    assert!(
        h.request_log()
            .iter()
            .any(|e| e.operation == "PutObject" && e.status == 412),
        "{:?}",
        h.request_log()
    );
    h.shutdown().await;
}

async fn moto_s3(moto: &snapferry_tests::moto::MotoServer) -> aws_sdk_s3::Client {
    let aws = context(moto.endpoint_url(), "AKIAMOTO", "moto-secret").await;
    let s3 = aws.clients(REGION, None).await.expect("clients").s3;
    s3.create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("CreateBucket in moto");
    s3
}

#[tokio::test]
async fn the_lock_works_the_same_against_moto() {
    let moto = snapferry_tests::moto::MotoServer::start();
    lock_story(moto_s3(&moto).await).await;
}

/// A lock object a run wrote with a lease that ran out `ago` seconds ago.
async fn put_expired_lock(s3: &aws_sdk_s3::Client, who: &LockInfo, ago: i64) -> LockInfo {
    let mut expired = who.leased_for(Duration::from_secs(60));
    expired.expires_at = Some(chrono::Utc::now() - chrono::Duration::seconds(ago));
    put_raw(
        s3,
        &format!("{KEY}.lock"),
        &serde_json::to_vec(&expired).unwrap(),
    )
    .await;
    expired
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_naming_its_holder() {
    let h = sandbox().await;
    let s3 = sandbox_s3(&h).await;
    let store = S3Store::new(s3.clone(), BUCKET, KEY);
    // Expired, but within the clock tolerance: still held.
    put_expired_lock(&s3, &holder("carol", "ci-3", 31), 2).await;
    assert!(matches!(
        store.try_lock(&holder("dave", "ci-4", 41)).await,
        Err(StoreError::LockHeld { .. })
    ));
    let carol = put_expired_lock(&s3, &holder("carol", "ci-3", 31), 30).await;
    let dave = holder("dave", "ci-4", 41);
    let guard = LockGuard::acquire(Arc::new(store.clone()), dave.clone(), Duration::ZERO)
        .await
        .expect("the expired lease is taken over");
    let takeover = guard.took_over().expect("a takeover").clone();
    assert_eq!(takeover.previous, carol);
    assert_eq!(
        takeover.to_string(),
        format!(
            "the state at s3://{BUCKET}/{KEY} was locked by {carol}; its lease expired at {}, so \
             this run took the lock over",
            carol.expires_at.unwrap().to_rfc3339()
        )
    );
    assert_eq!(store.lock_holder().await.unwrap().unwrap().id, dave.id);
    guard.release().await.unwrap();
    assert_eq!(store.lock_holder().await.unwrap(), None);
    h.shutdown().await;
}

#[tokio::test]
async fn a_held_lease_is_renewed_in_the_background_until_released() {
    let h = sandbox().await;
    let s3 = sandbox_s3(&h).await;
    let store: Arc<dyn StateStore> =
        Arc::new(S3Store::new(s3.clone(), BUCKET, KEY).with_lease(Duration::from_secs(3)));
    let guard = LockGuard::acquire(store.clone(), holder("alice", "ci-1", 1), Duration::ZERO)
        .await
        .unwrap();
    let first = store.read_lock().await.unwrap().unwrap();
    // Three renewals' worth of real time, past the first lease's end.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let later = store.read_lock().await.unwrap().unwrap();
    assert_ne!(later.version, first.version, "rewritten");
    assert_eq!(later.info.id, first.info.id);
    assert!(later.info.expires_at > first.info.expires_at);
    assert!(later.info.expires_at.unwrap() > chrono::Utc::now());
    guard.check().expect("still held");
    assert!(matches!(
        store.try_lock(&holder("bob", "b", 2)).await,
        Err(StoreError::LockHeld { .. })
    ));
    let renewals = h
        .request_log()
        .iter()
        .filter(|e| e.operation == "PutObject" && e.status == 200)
        .count();
    assert!(renewals >= 3, "{renewals} lock writes");
    guard.release().await.unwrap();
    assert_eq!(store.lock_holder().await.unwrap(), None);
    h.shutdown().await;
}

#[tokio::test]
async fn takeovers_renewals_and_unlocks_are_conditional_on_the_etag_moto() {
    let moto = snapferry_tests::moto::MotoServer::start();
    let s3 = moto_s3(&moto).await;
    let first = S3Store::new(s3.clone(), BUCKET, KEY);
    let second = S3Store::new(s3.clone(), BUCKET, KEY);

    // Two runners both see Carol's lease expired; only the first takeover PUT matches.
    let carol = put_expired_lock(&s3, &holder("carol", "ci-3", 31), 30).await;
    let seen_by_first = first.read_lock().await.unwrap().unwrap();
    let seen_by_second = second.read_lock().await.unwrap().unwrap();
    assert_eq!(seen_by_first, seen_by_second);
    assert_eq!(seen_by_first.info, carol);
    let dave = holder("dave", "ci-4", 41);
    let erin = holder("erin", "ci-5", 51);
    let won = first
        .take_over(&seen_by_first, &dave)
        .await
        .unwrap()
        .expect("the first takeover wins");
    assert_eq!(won.took_over.unwrap().previous, carol);
    assert_eq!(
        second.take_over(&seen_by_second, &erin).await.unwrap(),
        None,
        "the second takeover lost the race"
    );
    assert_eq!(first.lock_holder().await.unwrap().unwrap().id, dave.id);
    // Erin's run, starting over, finds Dave's live lease.
    match second.try_lock(&erin).await {
        Err(StoreError::LockHeld { holder, .. }) => assert_eq!(holder.id, dave.id),
        other => panic!("{other:?}"),
    }

    // Carol's run, if it were still alive, cannot renew what Dave now holds.
    match first.renew(&carol, &seen_by_first.version).await {
        Err(StoreError::LeaseLost { reason, .. }) => {
            assert!(
                reason.starts_with("another run took it over: dave@ci-4 (pid 41)"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }

    // Dave renews; an unlock of the lock as shown before the renewal removes nothing.
    let shown = first.read_lock().await.unwrap().unwrap();
    let renewed = first.renew(&dave, &won.version).await.unwrap();
    assert_ne!(renewed, won.version);
    let err = second.remove_lock(&shown).await.unwrap_err();
    assert!(
        err.to_string().contains(
            "changed since it was shown (its holder renewed it, so that run is still going: \
             dave@ci-4 (pid 41)"
        ),
        "{err}"
    );
    // Nor does someone else's release.
    assert!(matches!(
        second.unlock(&erin, &shown.version).await,
        Err(StoreError::LockNotOurs { .. })
    ));
    assert_eq!(first.lock_holder().await.unwrap().unwrap().id, dave.id);

    // Dave releases with a version that a lost renewal answer left stale: still his, removed.
    first.unlock(&dave, &won.version).await.unwrap();
    assert_eq!(first.lock_holder().await.unwrap(), None);
    let gone = LockRecord {
        info: dave,
        version: renewed,
    };
    assert!(!first.remove_lock(&gone).await.unwrap(), "already gone");
}

#[tokio::test(start_paused = true)]
async fn a_lock_guard_waits_for_the_holder_within_its_timeout() {
    let h = sandbox().await;
    let s3 = sandbox_s3(&h).await;
    let store: Arc<dyn StateStore> = Arc::new(S3Store::new(s3, BUCKET, KEY));
    let first = holder("alice", "ci-1", 1);
    let acquired = store.try_lock(&first).await.unwrap();

    // Without a timeout the second run is refused at once.
    let refused = LockGuard::acquire(store.clone(), holder("bob", "b", 2), Duration::ZERO)
        .await
        .err()
        .expect("refused");
    assert!(matches!(refused, StoreError::LockHeld { .. }), "{refused}");

    let releaser = store.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        releaser.unlock(&first, &acquired.version).await.unwrap();
    });
    let started = tokio::time::Instant::now();
    let guard = LockGuard::acquire(
        store.clone(),
        holder("bob", "b", 2),
        Duration::from_secs(30),
    )
    .await
    .expect("taken once the holder released it");
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(guard.info().user, "bob");
    guard.release().await.unwrap();
    assert_eq!(store.lock_holder().await.unwrap(), None);
    h.shutdown().await;
}

#[tokio::test]
async fn a_missing_bucket_is_a_backend_error_naming_the_bucket() {
    let h = sandbox().await;
    let s3 = sandbox_s3(&h).await;
    let store = S3Store::new(s3, "no-such-bucket", KEY);
    assert_eq!(
        store.load().await.unwrap_err().to_string(),
        format!(
            "the state store at s3://no-such-bucket/{KEY} failed: state object: s3 GetObject \
             failed: NoSuchBucket: The specified bucket does not exist: no-such-bucket; the \
             bucket no-such-bucket does not exist: create it, or point the plan's \
             state.s3.bucket at an existing one"
        )
    );
    for err in [
        store.load().await.unwrap_err(),
        store.try_lock(&holder("a", "b", 1)).await.unwrap_err(),
    ] {
        match &err {
            StoreError::Backend { location, message } => {
                assert_eq!(location, &format!("s3://no-such-bucket/{KEY}"));
                assert!(message.contains("NoSuchBucket"), "{message}");
                assert!(
                    message.contains("the bucket no-such-bucket does not exist"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    h.shutdown().await;
}

#[tokio::test]
async fn the_account_id_comes_from_the_sandbox_sts() {
    let h = sandbox().await;
    let env: std::collections::BTreeMap<String, String> = h.env().into_iter().collect();
    let aws = context(
        h.endpoint_url(),
        &env["AWS_ACCESS_KEY_ID"],
        &env["AWS_SECRET_ACCESS_KEY"],
    )
    .await;
    assert_eq!(
        aws.account_id(REGION, None)
            .await
            .expect("GetCallerIdentity"),
        "123456789012"
    );
    h.shutdown().await;
}
