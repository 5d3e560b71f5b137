//! A token bucket shared by every caller of one API, so a wide graph cannot exceed the
//! service's request rate and trip throttling in the first place. Uses tokio's clock.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Allows `burst` requests at once and `per_second` on average.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

impl RateLimiter {
    /// # Panics
    /// When `per_second` is not positive or `burst` is zero: such a limiter would never allow
    /// a request.
    pub fn new(per_second: f64, burst: u32) -> Self {
        assert!(per_second > 0.0, "rate must be positive");
        assert!(burst > 0, "burst must be at least one");
        RateLimiter {
            per_second,
            burst: f64::from(burst),
            bucket: Mutex::new(Bucket {
                tokens: f64::from(burst),
                refilled_at: Instant::now(),
            }),
        }
    }

    /// Waits until a request may be made, then takes one token.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut b = self.bucket.lock().expect("rate limiter poisoned");
                let now = Instant::now();
                let gained = now.duration_since(b.refilled_at).as_secs_f64() * self.per_second;
                b.tokens = (b.tokens + gained).min(self.burst);
                b.refilled_at = now;
                if b.tokens >= 1.0 {
                    b.tokens -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - b.tokens) / self.per_second)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_steady_rate() {
        let limiter = RateLimiter::new(10.0, 5);
        let start = Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        for _ in 0..20 {
            limiter.acquire().await;
        }
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(1990), "{elapsed:?}");
        assert!(elapsed <= Duration::from_millis(2100), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn shared_between_tasks() {
        let limiter = Arc::new(RateLimiter::new(2.0, 1));
        let start = Instant::now();
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let l = limiter.clone();
                tokio::spawn(async move { l.acquire().await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // One at once, then five more at two per second.
        assert!(
            start.elapsed() >= Duration::from_millis(2490),
            "{:?}",
            start.elapsed()
        );
    }
}
