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

/// `If-Match` on PutObject and DeleteObject (the S3 state lock's renewal, takeover and unlock):
/// the current ETag succeeds, a stale one gets 412 and changes nothing, and a key with no
/// object gets 404 `NoSuchKey` — S3's answers, so a lock test here means what it means there.
#[tokio::test]
async fn if_match_puts_and_deletes_only_the_object_they_read() {
    let mut config = fast_config();
    config.buckets = vec!["state".into()];
    let h = start(config).await;
    let s3 = s3(&h).await;
    let put = |body: &'static str, if_match: Option<&str>| {
        s3.put_object()
            .bucket("state")
            .key("lock")
            .set_if_match(if_match.map(str::to_owned))
            .body(body.as_bytes().to_vec().into())
            .send()
    };
    fn code<E: aws_sdk_s3::error::ProvideErrorMetadata>(
        e: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> (Option<u16>, Option<String>) {
        (
            e.raw_response().map(|r| r.status().as_u16()),
            aws_sdk_s3::error::ProvideErrorMetadata::code(e).map(str::to_owned),
        )
    }
    let absent = put("first", Some("\"0123\"")).await.unwrap_err();
    assert_eq!(code(&absent), (Some(404), Some("NoSuchKey".into())));

    let first = put("first", None).await.expect("plain put");
    let first_tag = first.e_tag().expect("etag").to_owned();
    let second = put("second", Some(&first_tag))
        .await
        .expect("put with the current etag");
    let second_tag = second.e_tag().expect("etag").to_owned();

    let stale = put("third", Some(&first_tag)).await.unwrap_err();
    assert_eq!(code(&stale), (Some(412), Some("PreconditionFailed".into())));
    let stale_delete = s3
        .delete_object()
        .bucket("state")
        .key("lock")
        .if_match(&first_tag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&stale_delete),
        (Some(412), Some("PreconditionFailed".into()))
    );
    let kept = s3
        .get_object()
        .bucket("state")
        .key("lock")
        .send()
        .await
        .expect("the object is still there")
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes();
    assert_eq!(kept.as_ref(), b"second");

    s3.delete_object()
        .bucket("state")
        .key("lock")
        .if_match(&second_tag)
        .send()
        .await
        .expect("delete with the current etag");
    let gone = s3
        .get_object()
        .bucket("state")
        .key("lock")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&gone).1.as_deref(), Some("NoSuchKey"));
    h.shutdown().await;
}
