//! Simulated time. Every "slow" AWS behaviour (domain creation, snapshot, recovery) is a deadline
//! on this clock, computed from configured simulated durations times `time_scale`. The clock is
//! tokio's (so tests under `start_paused` run instantly) plus an offset that tests can push
//! forward through `POST /_sandbox/clock`.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Default)]
pub struct Clock {
    offset: Mutex<Duration>,
}

impl Clock {
    pub fn now(&self) -> Instant {
        Instant::now() + *self.offset.lock().expect("clock lock")
    }

    /// Moves simulated time forward by a real duration.
    pub fn advance(&self, by: Duration) {
        *self.offset.lock().expect("clock lock") += by;
    }

    /// Waits until the clock reaches `deadline` (returns early if the clock is advanced).
    pub async fn sleep_until(&self, deadline: Instant) {
        loop {
            let now = self.now();
            if now >= deadline {
                return;
            }
            tokio::time::sleep((deadline - now).min(Duration::from_millis(250))).await;
        }
    }

    /// Fraction of `[start, end]` elapsed, in `0..=1`.
    pub fn progress(&self, start: Instant, end: Instant) -> f64 {
        let now = self.now();
        if now >= end || end <= start {
            return 1.0;
        }
        if now <= start {
            return 0.0;
        }
        (now - start).as_secs_f64() / (end - start).as_secs_f64()
    }
}
