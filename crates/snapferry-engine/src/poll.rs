//! How often to poll a long operation. Fast at first (most waits on a ready resource end in
//! one or two polls), slower as the wait grows, capped: at most `cap` between polls for the
//! first `long_after`, then at most `long_cap`, so a 30-minute domain creation costs about
//! fifty calls, not hundreds. All timing goes through tokio's clock.

use std::time::Duration;

/// The adaptive polling schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct PollSchedule {
    /// The first delay.
    pub first: Duration,
    /// Each delay is the previous one times this.
    pub factor: f64,
    /// The longest delay while the operation is young.
    pub cap: Duration,
    /// When the wait has lasted this long, the operation counts as long.
    pub long_after: Duration,
    /// The longest delay for a long operation.
    pub long_cap: Duration,
}

impl Default for PollSchedule {
    fn default() -> Self {
        PollSchedule {
            first: Duration::from_secs(1),
            factor: 1.6,
            cap: Duration::from_secs(15),
            long_after: Duration::from_secs(5 * 60),
            long_cap: Duration::from_secs(60),
        }
    }
}

impl PollSchedule {
    /// The delay to sleep before the next poll, given the previous delay (`None` before the
    /// first) and how long the wait has lasted.
    pub fn next_delay(&self, previous: Option<Duration>, elapsed: Duration) -> Duration {
        let cap = if elapsed >= self.long_after {
            self.long_cap
        } else {
            self.cap
        };
        match previous {
            None => self.first.min(cap),
            Some(prev) => prev.mul_f64(self.factor).max(self.first).min(cap),
        }
    }

    /// How many polls a wait of `total` costs (for tests and for documentation).
    pub fn polls_for(&self, total: Duration) -> u32 {
        let mut elapsed = Duration::ZERO;
        let mut previous = None;
        let mut polls = 0;
        while elapsed < total {
            let d = self.next_delay(previous, elapsed);
            elapsed += d;
            previous = Some(d);
            polls += 1;
        }
        polls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_fast_and_stays_capped() {
        let s = PollSchedule::default();
        assert_eq!(s.next_delay(None, Duration::ZERO), Duration::from_secs(1));
        let mut prev = None;
        let mut elapsed = Duration::ZERO;
        for _ in 0..200 {
            let d = s.next_delay(prev, elapsed);
            if elapsed < s.long_after {
                assert!(d <= Duration::from_secs(15), "{d:?} at {elapsed:?}");
            }
            assert!(d <= s.long_cap);
            elapsed += d;
            prev = Some(d);
        }
        // The first two polls happen within three seconds.
        assert!(
            s.next_delay(Some(Duration::from_secs(1)), Duration::from_secs(1))
                < Duration::from_secs(2)
        );
    }

    #[test]
    fn a_thirty_minute_wait_costs_at_most_sixty_polls() {
        let polls = PollSchedule::default().polls_for(Duration::from_secs(30 * 60));
        assert!(polls <= 60, "{polls} polls");
        assert!(
            polls >= 20,
            "{polls} polls: too few, the wait would overshoot"
        );
    }

    #[test]
    fn a_short_wait_is_noticed_quickly() {
        // An operation done after 3 s is seen by the third poll at the latest.
        assert!(PollSchedule::default().polls_for(Duration::from_secs(3)) <= 3);
    }
}
