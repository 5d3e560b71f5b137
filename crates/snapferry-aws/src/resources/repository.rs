//! `repository`: the `s3` snapshot repository registered on a domain (the source writes into
//! it; the target's registration is read-only). Another registration under the same name is
//! an update shown field by field; the AWS-managed `cs-automated*` repositories are refused.
//! OpenSearch keeps a repository registered when its verification fails, so a registration is
//! done only once verified: by this run's `PUT`, or else by `POST _snapshot/<repo>/_verify`
//! in `wait`; a role IAM has not yet propagated is waited for in both, when this run created or
//! changed it (a role given by ARN whose trust policy refuses OpenSearch stops the run at once).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use serde_json::{Value, json};
use snapferry_engine::{
    Change, Context, FieldChange, FieldValue, Inputs, NodeId, Observed, Outputs, Progress,
    Resource, ResourceError,
};
use snapferry_plan::{BucketEncryption, RepositoryNode, RepositorySide};

use super::iam_propagation::{PROPAGATION_WAIT, retry_until_propagated, trust_refusal};
use super::role::role_arn;
use super::{Env, created, fail, fail_domain, outputs};
use crate::domain_http::DomainHttpError;
use crate::opensearch::RepositoryDefinition;
use crate::policy;

pub(crate) struct RepositoryResource {
    id: NodeId,
    fingerprint: String,
    spec: RepositoryNode,
    env: Arc<Env>,
    /// Set when this run's `PUT` verified the registration, so `wait` need not verify again.
    verified_by_put: AtomicBool,
}

impl RepositoryResource {
    pub(crate) fn new(
        id: NodeId,
        fingerprint: String,
        spec: &RepositoryNode,
        env: &Arc<Env>,
    ) -> Self {
        RepositoryResource {
            id,
            fingerprint,
            spec: spec.clone(),
            env: env.clone(),
            verified_by_put: AtomicBool::new(false),
        }
    }

    fn name(&self) -> &str {
        &self.spec.repository.name
    }

    async fn desired(&self) -> Result<RepositoryDefinition, ResourceError> {
        let role = role_arn(&self.env, &self.spec.role)
            .await
            .map_err(|e| fail(&self.id, e))?;
        let mut settings = self.spec.repository.settings.clone();
        if matches!(self.spec.bucket.encryption, Some(BucketEncryption::Aes256)) {
            settings
                .entry("server_side_encryption".into())
                .or_insert(json!(true));
        }
        let definition = RepositoryDefinition::s3(
            &self.spec.bucket.name,
            &self.spec.bucket.region,
            &self.spec.domain.region,
            &role,
            Some(&self.spec.repository.base_path),
            &settings,
        );
        Ok(if self.spec.readonly {
            definition.read_only()
        } else {
            definition
        })
    }

    /// Why the domain cannot register the repository with its role: `iam:PassRole` never
    /// reaches a role of another account, so a domain's repository role must be in the
    /// domain's own account (AWS's cross-account set-up gives the target a role of its own,
    /// which the bucket policy lets read). `None` when the accounts agree.
    async fn role_of_another_account(&self) -> Result<Option<String>, ResourceError> {
        let role = role_arn(&self.env, &self.spec.role)
            .await
            .map_err(|e| fail(&self.id, e))?;
        let Some(role_account) = role.split(':').nth(4).filter(|a| !a.is_empty()) else {
            return Ok(None);
        };
        let account = self
            .env
            .account_of(&self.spec.domain)
            .await
            .map_err(|e| fail(&self.id, e))?;
        if account == role_account {
            return Ok(None);
        }
        let fix = match self.spec.side {
            RepositorySide::Target => format!(
                "set `target.snapshot_role_arn` to a role of account {account} that es.amazonaws.com may assume and whose policy lets it read bucket {}; the bucket policy then grants it read access",
                self.spec.bucket.name
            ),
            RepositorySide::Source => format!(
                "set `role.arn` to a role of account {account} (or leave `role.arn` out and snapferry creates the role there)"
            ),
        };
        Ok(Some(format!(
            "domain {} is in account {account} and cannot register repository {} with role {role} of account {role_account}: a domain can pass (iam:PassRole) only a role of its own account; {fix}",
            self.spec.domain.name,
            self.name(),
        )))
    }

    /// `POST _snapshot/<repo>/_verify`, waiting out a role IAM has not yet propagated.
    async fn verify(&self, cx: &Context) -> Result<(), ResourceError> {
        let client = self
            .env
            .require_data_plane(&self.id, &self.spec.domain)
            .await?;
        let role = role_arn(&self.env, &self.spec.role)
            .await
            .map_err(|e| fail(&self.id, e))?;
        let name = self.name().to_owned();
        let verified = match client.verify_repository(&name).await {
            Err(e) if cannot_assume_role(&e) => {
                self.refuse_wrong_trust(&role).await?;
                retry_until_propagated(cx, &role, PROPAGATION_WAIT, cannot_assume_role, || {
                    client.verify_repository(&name)
                })
                .await?
            }
            other => other,
        };
        verified.map(drop).map_err(|e| self.unverified(&role, e))
    }

    /// Stops at once when OpenSearch Service cannot assume a role this run neither created nor
    /// changed and whose trust policy does not let it: IAM's propagation would not change
    /// that, so the three-minute wait is only for a role this run touched. A trust policy that
    /// cannot be read (another account's role) or that looks right is waited for as usual.
    async fn refuse_wrong_trust(&self, role: &str) -> Result<(), ResourceError> {
        if self.env.role_changed(role) {
            return Ok(());
        }
        let name = role.rsplit('/').next().unwrap_or(role);
        let Ok(clients) = self.env.home().await else {
            return Ok(());
        };
        let Ok(found) = clients.iam.get_role().role_name(name).send().await else {
            return Ok(());
        };
        let Some(document) = found.role().and_then(|r| r.assume_role_policy_document()) else {
            return Ok(());
        };
        let Ok(trust) = policy::parse_policy_document(&format!("role {name}"), document) else {
            return Ok(());
        };
        let account = self
            .env
            .account_of(&self.spec.domain)
            .await
            .map_err(|e| fail(&self.id, e))?;
        let domain_arn = format!(
            "arn:{}:es:{}:{account}:domain/{}",
            self.env.partition().as_str(),
            self.spec.domain.region,
            self.spec.domain.name
        );
        match trust_refusal(&trust, &account, &domain_arn) {
            None => Ok(()),
            Some(why) => Err(ResourceError::permanent(
                &self.id,
                format!(
                    "{}: OpenSearch Service cannot assume role {role}: {why}. This run did not \
                     create or change the role, so waiting for IAM to propagate would not help: \
                     let `es.amazonaws.com` call sts:AssumeRole in the role's trust policy (if \
                     it has aws:SourceAccount/aws:SourceArn conditions, they must name account \
                     {account} and {domain_arn}); snapferry does not change a role given by \
                     ARN. Then run `snapferry apply` again",
                    self.what()
                ),
            )),
        }
    }

    /// The error of a registration that could not be verified, naming the role, the cause
    /// and the fix when OpenSearch Service could not assume the role.
    fn unverified(&self, role: &str, e: DomainHttpError) -> ResourceError {
        if cannot_assume_role(&e) {
            ResourceError::permanent(
                &self.id,
                format!(
                    "{}: {e}. OpenSearch Service still cannot assume role {role} after {} s: check \
                     that its trust policy allows `es.amazonaws.com` to call sts:AssumeRole \
                     (and any aws:SourceAccount/aws:SourceArn condition names this domain's \
                     account and ARN); a role created moments ago can take longer to \
                     propagate, so run `snapferry apply` again",
                    self.what(),
                    PROPAGATION_WAIT.as_secs()
                ),
            )
        } else if s3_access_denied(&e) {
            let account = role.split(':').nth(4).unwrap_or("?");
            ResourceError::permanent(
                &self.id,
                format!(
                    "{}: {e}. Role {role} of account {account} may not use bucket {}: the \
                         bucket policy must grant this role {} on the snapshot location \
                         (snapferry writes that statement for the snapshot role and each \
                         `target.snapshot_role_arn`; an explicit Deny written by someone else \
                         wins over it) and the role's own policy must allow the same; fix the \
                         bucket policy or the role and run `snapferry apply` again",
                    self.what(),
                    self.spec.bucket.name,
                    if self.spec.readonly {
                        "s3:ListBucket and s3:GetObject"
                    } else {
                        "s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject"
                    }
                ),
            )
        } else {
            fail_domain(&self.id, &self.what(), e)
        }
    }

    fn what(&self) -> String {
        format!(
            "repository {} on domain {}",
            self.name(),
            self.spec.domain.name
        )
    }
}

#[async_trait]
impl Resource for RepositoryResource {
    fn id(&self) -> &NodeId {
        &self.id
    }

    fn kind(&self) -> &'static str {
        super::REPOSITORY.name
    }

    fn desired_fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    async fn read(&self, _cx: &Context, _inputs: &Inputs) -> Result<Observed, ResourceError> {
        if let Some(reason) = self.role_of_another_account().await? {
            return Ok(Observed {
                value: json!({"missing": reason}),
                ..Observed::absent()
            });
        }
        let desired = self.desired().await?;
        let desired_value = json!(desired.settings_as_strings());
        let Some(client) = self
            .env
            .data_plane(&self.spec.domain)
            .await
            .map_err(|e| fail(&self.id, e))?
        else {
            if self.spec.side == RepositorySide::Source {
                // Shown as blocked by `plan` (with everything else), refused by `apply`.
                return Ok(Observed {
                    value: json!({"missing": super::missing_source(&self.spec.domain)}),
                    ..Observed::absent()
                });
            }
            return Ok(Observed {
                value: json!({"desired": desired_value, "domain_exists": false}),
                ..Observed::absent()
            });
        };
        let live = match client.get_repository(self.name()).await {
            Ok(live) => live,
            // The security plugin refuses the identity: known after the steps before it (the
            // `security` step) when they are to change, else blocked with the fix.
            Err(e) if super::refused_by_security(&e) => {
                let error = fail_domain(&self.id, &self.what(), e);
                return self.env.unless_refused(&[&self.spec.domain], Err(error));
            }
            Err(e) => return Err(fail_domain(&self.id, &self.what(), e)),
        };
        let outputs = outputs([
            ("repository", json!(self.name())),
            ("domain", json!(self.spec.domain.name)),
        ]);
        Ok(match live {
            None => Observed {
                value: json!({"desired": desired_value, "domain_exists": true}),
                ..Observed::absent()
            },
            Some(live) => Observed::present(json!({
                "desired": desired_value,
                "type": live.kind,
                "settings": live.settings_as_strings(),
            }))
            .with_outputs(outputs),
        })
    }

    fn diff(&self, inputs: &Inputs, observed: &Observed) -> Change {
        if let Some(change) = super::refused_change(inputs, observed) {
            return change;
        }
        if self.name().starts_with("cs-automated") {
            return Change::Blocked {
                reason: format!(
                    "{} is a repository AWS manages for automated snapshots; it cannot be \
                     registered or restored into by hand: choose another `repository.name`",
                    self.name()
                ),
            };
        }
        if let Some(missing) = observed.value["missing"].as_str() {
            return Change::Blocked {
                reason: missing.to_owned(),
            };
        }
        let desired: BTreeMap<String, String> =
            serde_json::from_value(observed.value["desired"].clone()).unwrap_or_default();
        if !observed.exists {
            let mut fields = vec![created("type", json!("s3"))];
            fields.extend(
                desired
                    .iter()
                    .map(|(k, v)| created(&format!("settings.{k}"), json!(v))),
            );
            return Change::Create { fields };
        }
        if observed.value["type"] != json!("s3") {
            return Change::Blocked {
                reason: format!(
                    "{} is already registered with type {}; snapferry only replaces s3 \
                     registrations: choose another `repository.name`",
                    self.what(),
                    observed.value["type"]
                ),
            };
        }
        let live: BTreeMap<String, String> =
            serde_json::from_value(observed.value["settings"].clone()).unwrap_or_default();
        let mut fields = Vec::new();
        for (key, want) in &desired {
            if live.get(key) != Some(want) {
                fields.push(FieldChange {
                    path: format!("settings.{key}"),
                    before: live.get(key).map(|v| FieldValue::known(v.clone())),
                    after: FieldValue::known(want.clone()),
                });
            }
        }
        // Settings registered that the plan does not give: PUT replaces the registration,
        // so they would go; show it.
        for (key, was) in &live {
            if !desired.contains_key(key) && key != "compress" {
                fields.push(FieldChange {
                    path: format!("settings.{key}"),
                    before: Some(FieldValue::known(was.clone())),
                    after: FieldValue::Known(Value::Null),
                });
            }
        }
        if fields.is_empty() {
            Change::NoOp
        } else {
            Change::Update { fields }
        }
    }

    async fn apply(
        &self,
        cx: &Context,
        _inputs: &Inputs,
        _change: &Change,
    ) -> Result<(), ResourceError> {
        let client = self
            .env
            .require_data_plane(&self.id, &self.spec.domain)
            .await?;
        let desired = self.desired().await?;
        let role = role_arn(&self.env, &self.spec.role)
            .await
            .map_err(|e| fail(&self.id, e))?;
        // A failed verification leaves the repository registered on the domain; putting it
        // again verifies it again, so the retry converges on a verified registration.
        let put = match client.put_repository(self.name(), &desired).await {
            Err(e) if cannot_assume_role(&e) => {
                self.refuse_wrong_trust(&role).await?;
                retry_until_propagated(cx, &role, PROPAGATION_WAIT, cannot_assume_role, || {
                    client.put_repository(self.name(), &desired)
                })
                .await?
            }
            other => other,
        };
        match put {
            Ok(()) => {
                self.verified_by_put.store(true, Ordering::SeqCst);
                Ok(())
            }
            Err(e) => Err(self.unverified(&role, e)),
        }
    }

    async fn wait(
        &self,
        cx: &Context,
        _inputs: &Inputs,
        _progress: &Progress,
    ) -> Result<Outputs, ResourceError> {
        // A registration found in place may be one whose verification failed: OpenSearch keeps
        // a repository registered when it cannot reach the bucket (a run stopped right after
        // such a PUT, a role whose trust policy changed). Only a verified repository is done.
        if !self.verified_by_put.swap(false, Ordering::SeqCst) {
            self.verify(cx).await?;
        }
        Ok(outputs([
            ("repository", json!(self.name())),
            ("domain", json!(self.spec.domain.name)),
        ]))
    }

    /// Unregisters the repository from its domain. The snapshots' files in the bucket stay
    /// (OpenSearch never deletes them on unregistering). A domain that is gone or has no
    /// endpoint, or a repository already unregistered, leaves nothing to do (idempotent).
    /// The AWS-managed `cs-automated*` repositories are never touched.
    async fn destroy(&self, _cx: &Context, _inputs: &Inputs) -> Result<(), ResourceError> {
        if self.name().starts_with("cs-automated") {
            return Ok(());
        }
        let Some(client) = self
            .env
            .data_plane(&self.spec.domain)
            .await
            .map_err(|e| fail(&self.id, e))?
        else {
            return Ok(());
        };
        client
            .delete_repository(self.name())
            .await
            .map_err(|e| fail_domain(&self.id, &self.what(), e))
    }
}

/// The domain assumed the role but S3 refused it the bucket (the verification's `caused_by`).
fn s3_access_denied(error: &DomainHttpError) -> bool {
    error.status() == Some(500)
        && error
            .cause()
            .is_some_and(|c| c.contains("amazon_s3_exception") && c.contains("Access Denied"))
}

/// OpenSearch Service could not assume the repository's role. The verification's top level
/// names only the path ("[repo] path [...] is not accessible on master node"); STS's refusal
/// is in `caused_by`, so the whole chain is read.
fn cannot_assume_role(error: &DomainHttpError) -> bool {
    // "assumed-role/..." in a caller's ARN must not match: that is someone being refused.
    let says = |text: &str| {
        let text = text.to_lowercase();
        text.contains("sts:assumerole") || text.contains("assume role")
    };
    error.status() == Some(500) && (error.cause().is_some_and(says) || says(&error.to_string()))
}

#[cfg(test)]
mod tests {
    use http::Method;

    use super::*;

    fn status(status: u16, error_type: &str, reason: &str, cause: Option<&str>) -> DomainHttpError {
        DomainHttpError::Status {
            domain: "d".into(),
            method: Method::PUT,
            path: "/_snapshot/r".into(),
            status,
            error_type: Some(error_type.into()),
            reason: Some(reason.into()),
            cause: cause.map(str::to_owned),
            retry_after: None,
        }
    }

    #[test]
    fn only_a_role_not_yet_assumable_is_waited_for() {
        let unpropagated = status(
            500,
            "repository_verification_exception",
            "[r] path [p] is not accessible on master node",
            Some(
                "a_w_s_security_token_service_exception: User: arn:aws:sts::1:assumed-role/cp-sts-grant-role/x \
                 is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::1:role/snap",
            ),
        );
        assert!(cannot_assume_role(&unpropagated));
        let denied = status(
            403,
            "security_exception",
            "no permissions for [cluster:admin/repository/put] and User [name=arn:aws:sts::1:assumed-role/op/s]",
            None,
        );
        assert!(!cannot_assume_role(&denied));
        let s3_denied = status(
            500,
            "repository_verification_exception",
            "[r] path [p] is not accessible on master node",
            Some("amazon_s3_exception: Access Denied (Service: Amazon S3; Status Code: 403)"),
        );
        assert!(!cannot_assume_role(&s3_denied));
    }
}
