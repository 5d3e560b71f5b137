//! The S3 state store against the sandbox's S3 (and the lock against moto's, a second
//! implementation of conditional writes): round trip, refusal of broken documents, the
//! create-only lock object and its holder, and errors that name the bucket.

use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use snapferry_aws::clients::{AwsContext, AwsOptions};
use snapferry_aws::state_store::S3Store;
use snapferry_engine::NodeId;
use snapferry_engine::state::{NodeStatus, StateDoc};
use snapferry_engine::store::{LockGuard, LockInfo, StateStore, StoreError};
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
    let store = S3Store::new(s3.clone(), BUCKET, KEY);
    assert_eq!(store.lock_holder().await.unwrap(), None);
    let alice = holder("alice", "ci-1", 4242);
    store
        .try_lock(&alice)
        .await
        .expect("the first lock is taken");
    let lock: LockInfo = serde_json::from_slice(
        &get_raw(&s3, &format!("{KEY}.lock"))
            .await
            .expect("the lock object"),
    )
    .unwrap();
    assert_eq!(lock, alice);

    let bob = holder("bob", "laptop", 7);
    let err = store.try_lock(&bob).await.unwrap_err();
    match &err {
        StoreError::LockHeld { location, holder } => {
            assert_eq!(location, &format!("s3://{BUCKET}/{KEY}"));
            assert_eq!(**holder, alice);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("locked by alice@ci-1 (pid 4242)"),
        "{err}"
    );

    // Bob cannot unlock Alice's lock; it stays.
    match store.unlock(&bob).await {
        Err(StoreError::LockNotOurs { holder, .. }) => assert_eq!(*holder, alice),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.lock_holder().await.unwrap(), Some(alice.clone()));

    // `snapferry unlock` removes it and says whose it was; then Bob gets it and releases it.
    assert_eq!(store.force_unlock().await.unwrap(), Some(alice));
    assert_eq!(store.lock_holder().await.unwrap(), None);
    store.try_lock(&bob).await.expect("free again");
    store.unlock(&bob).await.unwrap();
    assert_eq!(get_raw(&s3, &format!("{KEY}.lock")).await, None);
    assert_eq!(store.force_unlock().await.unwrap(), None);
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

#[tokio::test]
async fn the_lock_works_the_same_against_moto() {
    let moto = snapferry_tests::moto::MotoServer::start();
    let aws = context(moto.endpoint_url(), "AKIAMOTO", "moto-secret").await;
    let s3 = aws.clients(REGION, None).await.expect("clients").s3;
    s3.create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("CreateBucket in moto");
    lock_story(s3).await;
}

#[tokio::test(start_paused = true)]
async fn a_lock_guard_waits_for_the_holder_within_its_timeout() {
    let h = sandbox().await;
    let s3 = sandbox_s3(&h).await;
    let store: Arc<dyn StateStore> = Arc::new(S3Store::new(s3, BUCKET, KEY));
    let first = holder("alice", "ci-1", 1);
    store.try_lock(&first).await.unwrap();

    // Without a timeout the second run is refused at once.
    let refused = LockGuard::acquire(store.clone(), holder("bob", "b", 2), Duration::ZERO)
        .await
        .err()
        .expect("refused");
    assert!(matches!(refused, StoreError::LockHeld { .. }), "{refused}");

    let releaser = store.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        releaser.unlock(&first).await.unwrap();
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
