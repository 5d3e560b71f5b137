//! Waiting out IAM's eventual consistency. A role created seconds ago is not yet known
//! everywhere: S3 refuses a bucket policy naming it (`MalformedPolicy` "Invalid principal in
//! policy") and OpenSearch Service cannot assume it yet (a repository's verification fails
//! with STS's `AccessDenied`, three causes down). AWS documents that IAM changes take time to
//! become visible (IAM User Guide, "Changes that I make are not always immediately visible"),
//! so these answers are retried for a bounded time, with backoff, before they are reported.

use std::future::Future;
use std::time::Duration;

use snapferry_engine::{Context, Event, ResourceError};
use tokio::time::Instant;

/// How long a role may take to become usable before snapferry gives up. IAM usually
/// propagates within seconds; minutes happen.
pub(crate) const PROPAGATION_WAIT: Duration = Duration::from_secs(180);

/// Runs `op` until it succeeds, fails in a way `unpropagated` does not recognise, `wait`
/// runs out (the last error is returned, for the caller to explain), or the run is cancelled.
/// Each wait is reported as progress naming `role`, so a quiet minute is explained.
pub(crate) async fn retry_until_propagated<T, E, F, Fut>(
    cx: &Context,
    role: &str,
    wait: Duration,
    unpropagated: impl Fn(&E) -> bool,
    mut op: F,
) -> Result<Result<T, E>, ResourceError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + wait;
    let mut delay = Duration::from_millis(250);
    loop {
        match op().await {
            Err(error) if unpropagated(&error) && Instant::now() + delay < deadline => {
                cx.events().emit(Event::Progress {
                    node: cx.node().clone(),
                    done: 0,
                    total: 0,
                    message: format!("waiting for IAM to propagate role {role}"),
                });
                tracing::debug!(role, ?delay, "role not yet propagated; retrying");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = cx.cancellation().cancelled() => {
                        return Err(ResourceError::interrupted(cx.node()));
                    }
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            other => return Ok(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use snapferry_engine::NodeId;

    use super::*;

    fn context() -> Context {
        Context::detached(NodeId::new("bucket_policy", "b"))
    }

    #[tokio::test(start_paused = true)]
    async fn an_unpropagated_role_is_retried_until_it_works() {
        let calls = AtomicU32::new(0);
        let result = retry_until_propagated(
            &context(),
            "arn:aws:iam::1:role/r",
            PROPAGATION_WAIT,
            |e: &&str| *e == "Invalid principal in policy",
            || async {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                if n < 4 {
                    Err("Invalid principal in policy")
                } else {
                    Ok(n)
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(result, Ok(4));
    }

    #[tokio::test(start_paused = true)]
    async fn other_errors_return_at_once_and_the_wait_is_bounded() {
        let calls = AtomicU32::new(0);
        let result: Result<(), &str> = retry_until_propagated(
            &context(),
            "r",
            PROPAGATION_WAIT,
            |e: &&str| *e == "unpropagated",
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("AccessDenied")
            },
        )
        .await
        .unwrap();
        assert_eq!(result, Err("AccessDenied"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let result: Result<(), &str> = retry_until_propagated(
            &context(),
            "r",
            Duration::from_secs(60),
            |e: &&str| *e == "unpropagated",
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("unpropagated")
            },
        )
        .await
        .unwrap();
        assert_eq!(result, Err("unpropagated"));
        assert!(started.elapsed() <= Duration::from_secs(60));
        assert!(calls.load(Ordering::SeqCst) > 3);
    }
}
