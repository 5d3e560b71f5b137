//! How often to poll a long operation. All timing goes through tokio's clock.
//!
//! Without an expectation the schedule is fast at first (most waits on a ready resource end in
//! one or two polls), slower as the wait grows, capped: at most `cap` between polls for the
//! first `long_after`, then at most `long_share` of the time waited so far (within
//! `cap ..= long_cap`), so a long wait of unknown length (a snapshot, a restore) overshoots
//! its operation by at most 7.5 % (≤ 45 s at 10 minutes) and a 30-minute one costs 56 polls.
//!
//! A fixed schedule cannot make a 30-minute domain creation both cheap (≤ 60 describe calls)
//! and noticed quickly (≤ 15 s): 30 min / 15 s is already 120 calls. So a resource that knows
//! how long its operation usually takes says so ([`Expected`], through
//! `Context::poll_until_expecting`), and the schedule spends its calls where completion is
//! likely:
//!
//! - **before the window** (`elapsed < earliest`): completion is improbable, so the delay
//!   starts at `cap` and grows by `factor` up to `sparse_cap`, never past `earliest` (one poll
//!   lands on the window's start);
//! - **inside the window** (`earliest ≤ elapsed < latest`): the delay is `window_share` of
//!   the time left until `latest`, kept within `cap ..= sparse_cap`. For a completion time
//!   spread over the window, the chance of finishing in the next minute (given not finished
//!   yet) grows as `latest` nears, so the polls get denser toward the end: `cap` (15 s) for
//!   the last `cap / window_share` (5 min);
//! - **late** (`elapsed ≥ latest`): the estimate was wrong; back off from `cap` by `factor`
//!   to `long_cap`, as a long wait without an expectation does.
//!
//! With the defaults and a 15–30 minute window, a creation that finishes at 15, 20, 25 or 30
//! minutes costs 12, 20, 34 or 54 describe calls; it is noticed within 45 s early in the
//! window (15–20 min), 31 s in its middle (20–25 min) and 15 s in its last five minutes. One
//! that finishes at 45 minutes costs 70 calls and is noticed within 60 s; one that finishes
//! before 15 minutes, within the sparse interval (≤ 2 min). The tests below pin these
//! figures; docs/performance.md explains them.

use std::time::Duration;

/// How long an operation usually takes: it rarely finishes before `earliest` and usually by
/// `latest` (an AWS domain creation: 15 to 30 minutes). Given in real (AWS) time; the
/// schedule's `time_scale` converts it for a sandbox that compresses time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub earliest: Duration,
    pub latest: Duration,
}

impl Expected {
    /// An expected window; `latest` below `earliest` is taken as `earliest`.
    pub fn between(earliest: Duration, latest: Duration) -> Self {
        Expected {
            earliest,
            latest: latest.max(earliest),
        }
    }
}

/// The adaptive polling schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct PollSchedule {
    /// The first delay.
    pub first: Duration,
    /// Each delay is the previous one times this.
    pub factor: f64,
    /// The longest delay while the operation is young; the shortest once an expected operation
    /// is inside its window (the notice delay there).
    pub cap: Duration,
    /// When the wait has lasted this long, the operation counts as long.
    pub long_after: Duration,
    /// The longest delay for a long operation, and for one later than expected.
    pub long_cap: Duration,
    /// Once long, the delay is at most this share of the time waited so far (and at least
    /// `cap`): the notice delay stays a bounded fraction of the operation's own duration.
    pub long_share: f64,
    /// The longest delay while an expected operation is before or early in its window: it
    /// also bounds how late a resumed wait (whose operation started before this run) notices.
    pub sparse_cap: Duration,
    /// Inside the expected window, the delay is this share of the time left until `latest`.
    pub window_share: f64,
    /// Real seconds per AWS second (1 against AWS; the sandbox's compression in tests):
    /// applied to an [`Expected`] window, which resources give in AWS time.
    pub time_scale: f64,
    /// The expected duration of the operation being polled, already scaled; `None` for the
    /// plain schedule.
    pub expected: Option<Expected>,
}

impl Default for PollSchedule {
    fn default() -> Self {
        PollSchedule {
            first: Duration::from_secs(1),
            factor: 1.6,
            cap: Duration::from_secs(15),
            long_after: Duration::from_secs(5 * 60),
            long_cap: Duration::from_secs(60),
            long_share: 0.075,
            sparse_cap: Duration::from_secs(2 * 60),
            window_share: 0.05,
            time_scale: 1.0,
            expected: None,
        }
    }
}

/// What a wait costs when the operation finishes at a given time (see
/// [`PollSchedule::cost_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitCost {
    /// Polls made, the immediate first one included: describe calls for a domain.
    pub calls: u32,
    /// From the operation finishing to the poll that sees it.
    pub notice_delay: Duration,
}

impl PollSchedule {
    /// The same schedule with every duration multiplied by `factor`, for a sandbox that
    /// compresses time (`SNAPFERRY_POLL_SCALE`). Expectations set later are scaled too.
    #[must_use]
    pub fn scaled(&self, factor: f64) -> PollSchedule {
        let scale = |d: Duration| d.mul_f64(factor);
        PollSchedule {
            first: scale(self.first),
            cap: scale(self.cap),
            long_after: scale(self.long_after),
            long_cap: scale(self.long_cap),
            sparse_cap: scale(self.sparse_cap),
            time_scale: self.time_scale * factor,
            expected: self.expected.map(|e| Expected {
                earliest: scale(e.earliest),
                latest: scale(e.latest),
            }),
            ..self.clone()
        }
    }

    /// This schedule for an operation expected to take `expected` (AWS time).
    #[must_use]
    pub fn expecting(&self, expected: Expected) -> PollSchedule {
        PollSchedule {
            expected: Some(Expected {
                earliest: expected.earliest.mul_f64(self.time_scale),
                latest: expected.latest.mul_f64(self.time_scale),
            }),
            ..self.clone()
        }
    }

    /// The delay to sleep before the next poll, given the previous delay (`None` before the
    /// first) and how long the wait has lasted.
    pub fn next_delay(&self, previous: Option<Duration>, elapsed: Duration) -> Duration {
        let Some(expected) = self.expected else {
            let cap = if elapsed >= self.long_after {
                elapsed
                    .mul_f64(self.long_share)
                    .min(self.long_cap)
                    .max(self.cap)
            } else {
                self.cap
            };
            return self.grow(previous, self.first, cap);
        };
        if elapsed < expected.earliest {
            let d = self.grow(previous, self.cap, self.sparse_cap.max(self.cap));
            d.min(expected.earliest - elapsed)
        } else if elapsed < expected.latest {
            (expected.latest - elapsed)
                .mul_f64(self.window_share)
                .clamp(self.cap, self.sparse_cap.max(self.cap))
        } else {
            self.grow(previous, self.cap, self.long_cap.max(self.cap))
        }
    }

    /// `previous × factor`, at least `floor` (also the first delay), at most `cap`.
    fn grow(&self, previous: Option<Duration>, floor: Duration, cap: Duration) -> Duration {
        match previous {
            None => floor.min(cap),
            Some(prev) => prev.mul_f64(self.factor).max(floor).min(cap),
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

    /// The cost of a wait whose operation finishes `finished` after the wait began, as
    /// `Context::poll_until` runs it: a poll at once, then one after each delay, until a
    /// poll at or after `finished` (the time the calls themselves take is not counted).
    pub fn cost_of(&self, finished: Duration) -> WaitCost {
        let mut elapsed = Duration::ZERO;
        let mut previous = None;
        let mut calls = 1;
        while elapsed < finished {
            let d = self.next_delay(previous, elapsed);
            elapsed += d;
            previous = Some(d);
            calls += 1;
        }
        WaitCost {
            calls,
            notice_delay: elapsed - finished,
        }
    }

    /// The longest notice delay for an operation finishing anywhere in `from ..= to`
    /// (sampled every `step`): the poll interval in effect there.
    pub fn worst_notice_delay(&self, from: Duration, to: Duration, step: Duration) -> Duration {
        let mut worst = Duration::ZERO;
        let mut t = from;
        while t <= to {
            worst = worst.max(self.cost_of(t).notice_delay);
            t += step;
        }
        worst
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

    #[test]
    fn a_long_wait_of_unknown_length_overshoots_by_a_bounded_share() {
        let s = PollSchedule::default();
        let mut t = Duration::from_secs(5 * 60);
        while t <= Duration::from_secs(30 * 60) {
            let notice = s.cost_of(t).notice_delay;
            let bound = t.mul_f64(s.long_share).clamp(s.cap, s.long_cap);
            assert!(notice <= bound, "{t:?}: {notice:?} > {bound:?}");
            t += Duration::from_secs(1);
        }
        // A 10-minute restore is seen within 45 s; 30 minutes of waiting cost 56 polls.
        assert!(
            s.worst_notice_delay(
                Duration::from_secs(9 * 60),
                Duration::from_secs(10 * 60),
                Duration::from_secs(1)
            ) <= Duration::from_secs(45)
        );
        assert_eq!(s.cost_of(Duration::from_secs(30 * 60)).calls, 56);
    }

    const MIN: u64 = 60;

    fn domain_creation() -> PollSchedule {
        PollSchedule::default().expecting(Expected::between(
            Duration::from_secs(15 * MIN),
            Duration::from_secs(30 * MIN),
        ))
    }

    fn mins(m: u64) -> Duration {
        Duration::from_secs(m * MIN)
    }

    #[test]
    fn the_plain_schedule_is_fixed_so_it_cannot_meet_both_targets_over_thirty_minutes() {
        // Why expectations exist: the plain schedule's 30-minute cost is fine, but its
        // interval at 30 minutes is its long cap (60 s), not 15 s; a 15 s interval all the way
        // would cost 120 calls.
        let s = PollSchedule::default();
        let cost = s.cost_of(mins(30));
        assert!(cost.calls <= 60, "{cost:?}");
        let worst = s.worst_notice_delay(mins(29), mins(30), Duration::from_secs(1));
        assert!(worst > Duration::from_secs(45), "{worst:?}");
    }

    #[test]
    fn an_expected_domain_creation_costs_at_most_sixty_calls_inside_its_window() {
        let s = domain_creation();
        let calls: Vec<(u64, u32)> = [15, 20, 25, 30, 45]
            .into_iter()
            .map(|m| (m, s.cost_of(mins(m)).calls))
            .collect();
        assert_eq!(
            calls,
            vec![(15, 12), (20, 20), (25, 34), (30, 54), (45, 70)],
            "describe calls for a creation finishing at these minutes"
        );
        // Every completion time inside the window stays within the budget.
        let mut t = mins(15);
        while t <= mins(30) {
            assert!(s.cost_of(t).calls <= 60, "{t:?}: {:?}", s.cost_of(t));
            t += Duration::from_secs(1);
        }
    }

    #[test]
    fn an_expected_domain_creation_is_noticed_within_fifteen_seconds_late_in_its_window() {
        let s = domain_creation();
        let second = Duration::from_secs(1);
        let worst = |from: u64, to: u64| s.worst_notice_delay(mins(from), mins(to), second);
        // The last five minutes (where a 30-minute creation ends): one poll interval, 15 s.
        assert!(
            worst(25, 30) <= Duration::from_secs(15),
            "{:?}",
            worst(25, 30)
        );
        // Earlier in the window completion is less likely; the interval is longer.
        assert!(
            worst(20, 25) <= Duration::from_secs(31),
            "{:?}",
            worst(20, 25)
        );
        assert!(
            worst(15, 20) <= Duration::from_secs(45),
            "{:?}",
            worst(15, 20)
        );
        // Late (past 30 minutes): the long cap.
        assert!(
            worst(31, 60) <= Duration::from_secs(60),
            "{:?}",
            worst(31, 60)
        );
    }

    #[test]
    fn before_its_window_an_expected_wait_polls_sparsely_and_lands_on_the_window() {
        let s = domain_creation();
        // The first delay is `cap`, not one second: completion is improbable this early.
        assert_eq!(s.next_delay(None, Duration::ZERO), Duration::from_secs(15));
        let mut prev = None;
        let mut elapsed = Duration::ZERO;
        let mut landed = false;
        while elapsed < mins(15) {
            let d = s.next_delay(prev, elapsed);
            assert!(d <= s.sparse_cap, "{d:?} at {elapsed:?}");
            elapsed += d;
            prev = Some(d);
            landed |= elapsed == mins(15);
        }
        assert!(landed, "no poll on the window's start");
        assert!(s.cost_of(mins(14)).calls <= 12);
    }

    #[test]
    fn a_wait_resumed_near_its_end_is_noticed_within_the_sparse_cap() {
        // A resumed wait starts counting at zero: an operation that finishes early on this
        // schedule is seen at most one sparse interval late.
        let s = domain_creation();
        let worst = s.worst_notice_delay(Duration::ZERO, mins(15), Duration::from_secs(1));
        assert!(worst <= s.sparse_cap, "{worst:?}");
    }

    #[test]
    fn scaling_scales_the_expectation_too() {
        let scaled = PollSchedule::default().scaled(0.05);
        assert_eq!(scaled.cap, Duration::from_millis(750));
        let expected = Expected::between(mins(15), mins(30));
        let s = scaled.expecting(expected);
        assert_eq!(s.expected.unwrap().latest, Duration::from_secs(90));
        // The same number of calls as unscaled, for the same (scaled) completion time.
        assert_eq!(
            s.cost_of(Duration::from_secs(90)).calls,
            PollSchedule::default()
                .expecting(expected)
                .cost_of(mins(30))
                .calls
        );
        // Scaling after the expectation was set gives the same schedule.
        assert_eq!(PollSchedule::default().expecting(expected).scaled(0.05), s);
    }
}

#[cfg(test)]
mod through_context {
    use std::sync::atomic::{AtomicU32, Ordering};

    use snapferry_plan::NodeId;
    use tokio::time::Instant;

    use super::*;
    use crate::resource::{Context, PollStatus};

    /// Runs `Context::poll_until_expecting` on tokio's paused clock against an operation that
    /// finishes `finished` after the wait began; returns the calls and the notice delay.
    async fn wait_for(finished: Duration) -> (u32, Duration) {
        let cx = Context::detached(NodeId::new("domain", "target"));
        let started = Instant::now();
        let calls = AtomicU32::new(0);
        let expected = Expected::between(Duration::from_secs(15 * 60), Duration::from_secs(1800));
        let noticed = cx
            .poll_until_expecting(expected, || {
                calls.fetch_add(1, Ordering::Relaxed);
                let ready = started.elapsed() >= finished;
                async move {
                    Ok::<_, crate::ResourceError>(if ready {
                        PollStatus::Ready(started.elapsed())
                    } else {
                        PollStatus::Pending {
                            done: 0,
                            total: 0,
                            message: "processing".into(),
                        }
                    })
                }
            })
            .await
            .unwrap();
        (calls.load(Ordering::Relaxed), noticed - finished)
    }

    #[tokio::test(start_paused = true)]
    async fn a_thirty_minute_creation_costs_what_the_schedule_says_through_the_context() {
        for minutes in [15, 20, 25, 30, 45] {
            let finished = Duration::from_secs(minutes * 60);
            let (calls, notice) = wait_for(finished).await;
            let planned = PollSchedule::default()
                .expecting(Expected::between(
                    Duration::from_secs(15 * 60),
                    Duration::from_secs(1800),
                ))
                .cost_of(finished);
            assert_eq!(calls, planned.calls, "{minutes} min");
            // The paused clock advances by each sleep rounded up to tokio's 1 ms tick.
            let tick = Duration::from_millis(u64::from(calls));
            assert!(
                notice >= planned.notice_delay && notice <= planned.notice_delay + tick,
                "{minutes} min: {notice:?} vs {:?}",
                planned.notice_delay
            );
        }
        let (calls, notice) = wait_for(Duration::from_secs(1800)).await;
        assert!(calls <= 60, "{calls}");
        assert!(notice <= Duration::from_secs(15), "{notice:?}");
    }
}
