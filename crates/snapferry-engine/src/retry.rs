//! Retrying transient failures: capped exponential backoff with FULL jitter (a uniformly
//! random delay between zero and the capped exponential), so many clients throttled at once
//! spread out instead of retrying in lockstep. A service's `Retry-After` is a floor.
//! Permanent errors are never retried.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use snapferry_plan::NodeId;
use tokio_util::sync::CancellationToken;

use crate::error::ResourceError;
use crate::events::{Event, EventSink};

/// How often and how long to retry one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included. `1` means never retry.
    pub max_attempts: u32,
    /// The exponential's base: the delay cap before attempt `n + 1` is `base * 2^n`.
    pub base: Duration,
    /// No single delay is longer than this (a `Retry-After` may exceed it, up to `max_retry_after`).
    pub cap: Duration,
    /// A `Retry-After` longer than this is clamped, so a broken header cannot stall a run for hours.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// Never retries.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The largest delay full jitter may pick after failed attempt `attempt` (0-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay after failed attempt `attempt` (0-based) that failed with `error`.
    pub fn delay(&self, attempt: u32, error: &ResourceError, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(attempt);
        let jittered = Duration::from_nanos(
            rng.random_range(0..=u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX)),
        );
        match error.retry_after() {
            Some(after) => jittered.max(after.min(self.max_retry_after)),
            None => jittered,
        }
    }

    /// Runs `op` until it succeeds, fails permanently, runs out of attempts, or `cancel`
    /// fires during a delay (which returns an `Interrupted` error). Each retry is reported.
    pub async fn run<T, F, Fut>(
        &self,
        node: &NodeId,
        events: &dyn EventSink,
        cancel: &CancellationToken,
        mut op: F,
    ) -> Result<T, ResourceError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ResourceError>>,
    {
        let mut attempt = 0u32;
        loop {
            if cancel.is_cancelled() {
                return Err(ResourceError::interrupted(node));
            }
            match op().await {
                Ok(value) => return Ok(value),
                Err(error) if !error.is_transient() => return Err(error),
                Err(error) if attempt + 1 >= self.max_attempts => return Err(error),
                Err(error) => {
                    let delay = self.delay(attempt, &error, &mut rand::rng());
                    attempt += 1;
                    tracing::debug!(%node, attempt, ?delay, %error, "retrying");
                    events.emit(Event::Retrying {
                        node: node.clone(),
                        attempt,
                        delay,
                        error,
                    });
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = cancel.cancelled() => return Err(ResourceError::interrupted(node)),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::events::CollectingSink;

    fn node() -> NodeId {
        NodeId::new("role", "r")
    }

    #[test]
    fn full_jitter_stays_within_the_capped_exponential() {
        let policy = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(7);
        let error = ResourceError::transient(&node(), "throttled");
        let mut saw_small = false;
        for attempt in 0..40 {
            for _ in 0..50 {
                let d = policy.delay(attempt, &error, &mut rng);
                assert!(d <= policy.ceiling(attempt), "{d:?} > ceiling at {attempt}");
                assert!(d <= policy.cap);
                saw_small |= attempt > 5 && d < policy.ceiling(attempt) / 4;
            }
        }
        assert!(saw_small, "full jitter must sometimes pick small delays");
        assert_eq!(policy.ceiling(0), Duration::from_millis(500));
        assert_eq!(policy.ceiling(3), Duration::from_secs(4));
        assert_eq!(policy.ceiling(30), Duration::from_secs(20));
    }

    #[test]
    fn retry_after_is_a_floor_but_clamped() {
        let policy = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(1);
        let e = ResourceError::transient_after(&node(), Duration::from_secs(7), "slow down");
        for _ in 0..100 {
            assert!(policy.delay(0, &e, &mut rng) >= Duration::from_secs(7));
        }
        let e = ResourceError::transient_after(&node(), Duration::from_secs(3600), "x");
        assert_eq!(policy.delay(0, &e, &mut rng), policy.max_retry_after);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_retry_up_to_max_attempts_then_fail() {
        let policy = RetryPolicy::default();
        let calls = AtomicU32::new(0);
        let sink = CollectingSink::default();
        let started = tokio::time::Instant::now();
        let result: Result<(), _> = policy
            .run(&node(), &sink, &CancellationToken::new(), || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(ResourceError::transient(&node(), "503"))
            })
            .await;
        assert_eq!(result.unwrap_err().message, "503");
        assert_eq!(calls.load(Ordering::SeqCst), policy.max_attempts);
        assert_eq!(sink.events().len(), 7);
        let max_total: Duration = (0..7).map(|a| policy.ceiling(a)).sum();
        assert!(started.elapsed() <= max_total);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_fail_at_once() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = RetryPolicy::default()
            .run(
                &node(),
                &CollectingSink::default(),
                &CancellationToken::new(),
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(ResourceError::permanent(&node(), "AccessDenied"))
                },
            )
            .await;
        assert_eq!(result.unwrap_err().message, "AccessDenied");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn success_after_transient_failures() {
        let calls = AtomicU32::new(0);
        let value = RetryPolicy::default()
            .run(
                &node(),
                &CollectingSink::default(),
                &CancellationToken::new(),
                || async {
                    if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                        Err(ResourceError::transient(&node(), "reset"))
                    } else {
                        Ok(42)
                    }
                },
            )
            .await
            .unwrap();
        assert_eq!(value, 42);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_interrupts_the_backoff_sleep() {
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            c2.cancel();
        });
        let policy = RetryPolicy {
            base: Duration::from_secs(60),
            cap: Duration::from_secs(60),
            ..RetryPolicy::default()
        };
        let err = policy
            .run(&node(), &CollectingSink::default(), &cancel, || async {
                Err::<(), _>(ResourceError::transient_after(
                    &node(),
                    Duration::from_secs(60),
                    "x",
                ))
            })
            .await
            .unwrap_err();
        assert!(err.is_interrupted());
    }
}
