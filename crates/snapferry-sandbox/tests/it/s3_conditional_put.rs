//! `PutObject` with `If-None-Match: *` (S3's create-only write, which snapferry's S3 state lock is
//! built on): of many concurrent creators exactly one wins, the others get 412
//! `PreconditionFailed`, and the winner's object is the one stored.

use crate::common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_create_only_puts_have_exactly_one_winner() {
    let mut config = fast_config();
    config.buckets = vec!["state".into()];
    let h = start(config).await;
    let s3 = s3(&h).await;
    let attempts = (0..16).map(|i| {
        let s3 = s3.clone();
        tokio::spawn(async move {
            let body = format!("holder-{i}");
            let result = s3
                .put_object()
                .bucket("state")
                .key("p.state.json.lock")
                .if_none_match("*")
                .body(body.clone().into_bytes().into())
                .send()
                .await;
            (body, result)
        })
    });
    let mut winners = Vec::new();
    let mut refused = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        let (body, result) = attempt.await.expect("task");
        match result {
            Ok(_) => winners.push(body),
            Err(e) => {
                assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(412));
                assert_eq!(
                    aws_sdk_s3::error::ProvideErrorMetadata::code(&e),
                    Some("PreconditionFailed")
                );
                refused += 1;
            }
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(refused, 15);
    let stored = s3
        .get_object()
        .bucket("state")
        .key("p.state.json.lock")
        .send()
        .await
        .expect("GetObject")
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes();
    assert_eq!(stored, winners[0].as_bytes());

    // Once the lock object is deleted, a create-only put succeeds again.
    s3.delete_object()
        .bucket("state")
        .key("p.state.json.lock")
        .send()
        .await
        .expect("DeleteObject");
    s3.put_object()
        .bucket("state")
        .key("p.state.json.lock")
        .if_none_match("*")
        .body(b"again".to_vec().into())
        .send()
        .await
        .expect("create-only put of a deleted key");
    h.shutdown().await;
}
