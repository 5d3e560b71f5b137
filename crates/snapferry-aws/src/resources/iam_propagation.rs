//! Waiting out IAM's eventual consistency. A role created seconds ago is not yet known
//! everywhere: S3 refuses a bucket policy naming it (`MalformedPolicy` "Invalid principal in
//! policy") and OpenSearch Service cannot assume it yet (a repository's verification fails
//! with STS's `AccessDenied`, three causes down). AWS documents that IAM changes take time to
//! become visible (IAM User Guide, "Changes that I make are not always immediately visible"),
//! so these answers are retried for a bounded time, with backoff, before they are reported.
//!
//! Only a role this run created or changed is waited for. A role given by ARN whose trust
//! policy does not let OpenSearch Service assume it will not start to in three minutes: its
//! trust policy is read ([`trust_refusal`]) and the run stops at once naming the role.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;
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

/// The service names a domain assumes a snapshot role as.
const DOMAIN_SERVICES: &[&str] = &["es.amazonaws.com", "opensearchservice.amazonaws.com"];

fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn glob(pattern: &str, text: &str) -> bool {
    crate::opensearch::wildcard_match(pattern, text)
}

/// Whether a statement's conditions hold for the domain `domain_arn` of `account`. Only the
/// confused-deputy keys (`aws:SourceAccount`, `aws:SourceArn`) under the string and ARN
/// operators are judged; any other condition is given the benefit of the doubt.
fn conditions_hold(condition: &Value, account: &str, domain_arn: &str) -> bool {
    let Some(operators) = condition.as_object() else {
        return true;
    };
    operators.iter().all(|(operator, keys)| {
        let operator = operator.strip_suffix("IfExists").unwrap_or(operator);
        let like = match operator {
            "StringEquals" | "ArnEquals" => false,
            "StringLike" | "ArnLike" => true,
            _ => return true,
        };
        keys.as_object().into_iter().flatten().all(|(key, wanted)| {
            let actual = match key.to_ascii_lowercase().as_str() {
                "aws:sourceaccount" => account,
                "aws:sourcearn" => domain_arn,
                _ => return true,
            };
            strings(wanted)
                .iter()
                .any(|w| if like { glob(w, actual) } else { *w == actual })
        })
    })
}

/// Why the trust policy `trust` does not let OpenSearch Service assume its role for the domain
/// `domain_arn` in `account`; `None` when an `Allow` statement lets it.
pub(crate) fn trust_refusal(trust: &Value, account: &str, domain_arn: &str) -> Option<String> {
    let statements: Vec<&Value> = match &trust["Statement"] {
        Value::Array(a) => a.iter().collect(),
        Value::Null => Vec::new(),
        one => vec![one],
    };
    let for_opensearch: Vec<&&Value> = statements
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .filter(|s| {
            strings(&s["Principal"]["Service"])
                .iter()
                .any(|p| DOMAIN_SERVICES.contains(p))
        })
        .collect();
    if for_opensearch.is_empty() {
        return Some(format!(
            "its trust policy has no Allow statement for the service principal {}",
            DOMAIN_SERVICES[0]
        ));
    }
    let assuming: Vec<&&&Value> = for_opensearch
        .iter()
        .filter(|s| {
            strings(&s["Action"])
                .iter()
                .any(|a| glob(&a.to_ascii_lowercase(), "sts:assumerole"))
        })
        .collect();
    if assuming.is_empty() {
        return Some(format!(
            "its trust policy lets {} do {}, not sts:AssumeRole",
            DOMAIN_SERVICES[0],
            for_opensearch
                .iter()
                .flat_map(|s| strings(&s["Action"]))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if assuming
        .iter()
        .any(|s| conditions_hold(&s["Condition"], account, domain_arn))
    {
        return None;
    }
    Some(format!(
        "its trust policy lets {} assume it only under {}, which domain {domain_arn} of account \
         {account} does not meet",
        DOMAIN_SERVICES[0],
        assuming
            .iter()
            .map(|s| s["Condition"].to_string())
            .collect::<Vec<_>>()
            .join(" or ")
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use snapferry_engine::NodeId;

    use super::*;

    fn context() -> Context {
        Context::detached(NodeId::new("bucket_policy", "b"))
    }

    #[test]
    fn a_trust_policy_is_judged_for_the_domain_that_assumes_the_role() {
        let domain = "arn:aws:es:us-east-1:111122223333:domain/copy";
        let statement = |principal: &str, action: &str, condition: Value| {
            serde_json::json!({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": principal},
                "Action": action,
                "Condition": condition,
            }]})
        };
        let ours = statement(
            "es.amazonaws.com",
            "sts:AssumeRole",
            serde_json::json!({"StringEquals": {"aws:SourceAccount": "111122223333"},
                               "ArnLike": {"aws:SourceArn": "arn:aws:es:*:111122223333:domain/*"}}),
        );
        assert_eq!(trust_refusal(&ours, "111122223333", domain), None);
        let open = statement("es.amazonaws.com", "sts:*", Value::Null);
        assert_eq!(trust_refusal(&open, "111122223333", domain), None);
        assert_eq!(
            trust_refusal(
                &statement("ec2.amazonaws.com", "sts:AssumeRole", Value::Null),
                "111122223333",
                domain
            )
            .as_deref(),
            Some(
                "its trust policy has no Allow statement for the service principal es.amazonaws.com"
            )
        );
        assert_eq!(
            trust_refusal(
                &statement("es.amazonaws.com", "sts:TagSession", Value::Null),
                "111122223333",
                domain
            )
            .as_deref(),
            Some("its trust policy lets es.amazonaws.com do sts:TagSession, not sts:AssumeRole")
        );
        let elsewhere = statement(
            "es.amazonaws.com",
            "sts:AssumeRole",
            serde_json::json!({"StringEquals": {"aws:SourceAccount": "999999999999"}}),
        );
        assert_eq!(
            trust_refusal(&elsewhere, "111122223333", domain).as_deref(),
            Some(
                "its trust policy lets es.amazonaws.com assume it only under \
                 {\"StringEquals\":{\"aws:SourceAccount\":\"999999999999\"}}, which domain \
                 arn:aws:es:us-east-1:111122223333:domain/copy of account 111122223333 does not meet"
            )
        );
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
