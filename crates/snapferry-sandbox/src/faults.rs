//! Fault injection. Rules from the configuration (or replaced at run time through
//! `POST /_sandbox/faults`) are matched against every request by service, operation and target;
//! a rule fires either by rate (from a seeded RNG, so a run is reproducible) or on the Nth matching
//! call. Transport faults (throttling, 5xx, dropped connection, slowness) are acted on by the
//! router, before the call is carried out; lost answers (a 504 or a dropped connection) after it,
//! so a retry meets the work already done; outcome faults (a PARTIAL/FAILED snapshot, a failed
//! domain creation) by the handler.

use std::sync::Mutex;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// What an injected fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// 429 / ThrottlingException (Throttling for IAM, SlowDown for S3).
    Throttle,
    /// A 5xx (`status`, default 500) in the protocol's error shape.
    ServerError,
    /// The connection is closed without a response.
    DropConnection,
    /// The response is delayed by `delay_secs` (simulated seconds).
    Slow,
    /// A CreateSnapshot whose snapshot ends `PARTIAL`.
    SnapshotPartial,
    /// A CreateSnapshot whose snapshot ends `FAILED`.
    SnapshotFailed,
    /// A CreateDomain whose domain never becomes active (it ends without an endpoint).
    DomainCreationFailed,
    /// 403 `ExpiredToken`: the caller's temporary credentials have expired.
    ExpiredToken,
    /// The call is carried out, then its answer is lost: after `delay_secs` (default 60, the load
    /// balancer's idle timeout) the client gets the gateway's 504 instead of the service's answer.
    LostAnswer,
    /// The call is carried out, then the connection drops before the answer is sent.
    LostConnection,
}

impl FaultKind {
    /// Faults that change what the operation does rather than how the transport behaves.
    pub fn is_outcome(self) -> bool {
        matches!(
            self,
            Self::SnapshotPartial | Self::SnapshotFailed | Self::DomainCreationFailed
        )
    }
}

/// One injection rule. `service` is `iam`, `s3`, `es` (control plane) or `es-data` (a domain's
/// HTTPS endpoint); `operation` the name shown in the request log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    pub kind: FaultKind,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub operation: Option<String>,
    /// Domain, bucket or role name.
    #[serde(default)]
    pub target: Option<String>,
    /// Probability per matching call, in `0..=1`.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Fires on the Nth matching call (1-based) ...
    #[serde(default)]
    pub nth: Option<u64>,
    /// ... and on the `times - 1` calls after it (default 1).
    #[serde(default)]
    pub times: Option<u64>,
    /// For `server_error`.
    #[serde(default)]
    pub status: Option<u16>,
    /// For `slow` and `lost_answer`, simulated seconds.
    #[serde(default)]
    pub delay_secs: Option<f64>,
}

impl FaultRule {
    pub(crate) fn check(&self) -> Result<(), String> {
        match (self.rate, self.nth) {
            (Some(_), Some(_)) => return Err("a fault rule takes `rate` or `nth`, not both".into()),
            (None, None) => return Err("a fault rule needs `rate` or `nth`".into()),
            (Some(r), None) if !(0.0..=1.0).contains(&r) => {
                return Err(format!("fault rate must be within 0..=1, got {r}"));
            }
            (None, Some(0)) => return Err("fault `nth` counts from 1".into()),
            _ => {}
        }
        if let Some(s) = self.status
            && !(500..=599).contains(&s)
        {
            return Err(format!("server_error status must be 5xx, got {s}"));
        }
        Ok(())
    }

    fn matches(&self, service: &str, operation: &str, target: Option<&str>) -> bool {
        self.service.as_deref().is_none_or(|s| s == service)
            && self.operation.as_deref().is_none_or(|o| o == operation)
            && self.target.as_deref().is_none_or(|t| Some(t) == target)
    }
}

/// A fault that fired for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct FiredFault {
    pub kind: FaultKind,
    pub status: u16,
    pub delay_secs: Option<f64>,
}

impl FiredFault {
    /// The rule's `delay_secs`, or the kind's default.
    pub fn delay_secs_or(&self, default: f64) -> f64 {
        self.delay_secs.unwrap_or(default)
    }
}

/// The rule set with its counters and RNG.
#[derive(Debug)]
pub struct Faults {
    inner: Mutex<State>,
}

#[derive(Debug)]
struct State {
    rules: Vec<FaultRule>,
    counts: Vec<u64>,
    rng: ChaCha8Rng,
}

impl Faults {
    pub fn new(seed: u64, rules: Vec<FaultRule>) -> Self {
        let counts = vec![0; rules.len()];
        Self {
            inner: Mutex::new(State {
                rules,
                counts,
                rng: ChaCha8Rng::seed_from_u64(seed),
            }),
        }
    }

    /// Replaces the rules and resets counters and RNG.
    pub fn replace(&self, seed: u64, rules: Vec<FaultRule>) {
        let mut state = self.inner.lock().expect("faults lock");
        state.counts = vec![0; rules.len()];
        state.rules = rules;
        state.rng = ChaCha8Rng::seed_from_u64(seed);
    }

    pub fn rules(&self) -> Vec<FaultRule> {
        self.inner.lock().expect("faults lock").rules.clone()
    }

    /// Decides whether a fault fires for this call. `outcome` selects which family is asked
    /// for, so a transport rule and an outcome rule on the same operation count independently.
    pub fn fire(
        &self,
        service: &str,
        operation: &str,
        target: Option<&str>,
        outcome: bool,
    ) -> Option<FiredFault> {
        let mut state = self.inner.lock().expect("faults lock");
        let State { rules, counts, rng } = &mut *state;
        for (rule, count) in rules.iter().zip(counts.iter_mut()) {
            if rule.kind.is_outcome() != outcome || !rule.matches(service, operation, target) {
                continue;
            }
            *count += 1;
            let fires = match (rule.rate, rule.nth) {
                (Some(rate), _) => rng.random::<f64>() < rate,
                (None, Some(nth)) => {
                    let times = rule.times.unwrap_or(1).max(1);
                    *count >= nth && *count < nth + times
                }
                (None, None) => false,
            };
            if fires {
                return Some(FiredFault {
                    kind: rule.kind,
                    status: rule.status.unwrap_or(500),
                    delay_secs: rule.delay_secs,
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: FaultKind) -> FaultRule {
        FaultRule {
            kind,
            service: Some("es".into()),
            operation: Some("CreateDomain".into()),
            target: None,
            rate: None,
            nth: Some(2),
            times: Some(2),
            status: None,
            delay_secs: None,
        }
    }

    #[test]
    fn nth_rule_fires_on_the_nth_call_for_times_calls() {
        let faults = Faults::new(1, vec![rule(FaultKind::Throttle)]);
        let fired: Vec<bool> = (0..5)
            .map(|_| faults.fire("es", "CreateDomain", None, false).is_some())
            .collect();
        assert_eq!(fired, [false, true, true, false, false]);
        assert!(faults.fire("iam", "CreateDomain", None, false).is_none());
    }

    #[test]
    fn rate_rule_is_reproducible_with_the_same_seed() {
        let mut r = rule(FaultKind::ServerError);
        r.nth = None;
        r.rate = Some(0.5);
        let run = || {
            let faults = Faults::new(7, vec![r.clone()]);
            (0..64)
                .map(|_| faults.fire("es", "CreateDomain", None, false).is_some())
                .collect::<Vec<_>>()
        };
        let first = run();
        assert_eq!(first, run());
        let hits = first.iter().filter(|b| **b).count();
        assert!((16..=48).contains(&hits), "{hits} of 64 at rate 0.5");
    }

    #[test]
    fn outcome_rules_are_not_transport_rules() {
        let faults = Faults::new(1, vec![rule(FaultKind::DomainCreationFailed)]);
        assert!(faults.fire("es", "CreateDomain", None, false).is_none());
        assert!(faults.fire("es", "CreateDomain", None, true).is_none());
        assert!(faults.fire("es", "CreateDomain", None, true).is_some());
    }

    #[test]
    fn rules_are_checked() {
        let mut r = rule(FaultKind::Throttle);
        r.rate = Some(0.1);
        assert!(r.check().unwrap_err().contains("not both"));
        r.nth = None;
        r.rate = Some(2.0);
        assert!(r.check().unwrap_err().contains("0..=1"));
    }
}
