//! `bucket_policy`: the snapshot bucket (created when the plan says `create: true`) and
//! snapferry's statements in its policy. Statements are identified by `Sid` with the plan's
//! prefix; every other statement is kept exactly as it is, and a bucket without a policy
//! gets one.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use snapferry_engine::{
    Change, Context, FieldChange, FieldValue, Inputs, NodeId, Observed, Outputs, Progress,
    Resource, ResourceError,
};
use snapferry_plan::{BucketEncryption, BucketPolicyNode};

use super::iam_propagation::{PROPAGATION_WAIT, retry_until_propagated};
use super::role::role_arn;
use super::{Env, created, fail, outputs};
use crate::error::AwsError;
use crate::policy::{self, SnapshotLocation};

pub(crate) struct BucketPolicyResource {
    id: NodeId,
    fingerprint: String,
    spec: BucketPolicyNode,
    env: Arc<Env>,
}

impl BucketPolicyResource {
    pub(crate) fn new(
        id: NodeId,
        fingerprint: String,
        spec: &BucketPolicyNode,
        env: &Arc<Env>,
    ) -> Self {
        BucketPolicyResource {
            id,
            fingerprint,
            spec: spec.clone(),
            env: env.clone(),
        }
    }

    fn location(&self) -> SnapshotLocation {
        SnapshotLocation::new(
            policy::Partition::from_region(&self.spec.bucket.region),
            &self.spec.bucket.name,
            self.spec.bucket.base_path.as_deref(),
        )
    }

    /// The bucket's policy, `None` when it has none (or the bucket is gone).
    async fn current_policy(
        &self,
        s3: &aws_sdk_s3::Client,
    ) -> Result<Option<Value>, ResourceError> {
        let bucket = &self.spec.bucket.name;
        let what = format!("bucket {bucket}");
        match s3.get_bucket_policy().bucket(bucket).send().await {
            Ok(out) => out
                .policy()
                .map(|text| policy::parse_policy_document(&what, text))
                .transpose()
                .map_err(|e| ResourceError::permanent(&self.id, e.to_string())),
            Err(e) => {
                let e = AwsError::from_sdk(&what, "s3", "GetBucketPolicy", e);
                if e.is_not_found() {
                    Ok(None)
                } else {
                    Err(fail(&self.id, e))
                }
            }
        }
    }

    /// `existing` with `ours` merged in (foreign statements untouched).
    fn merged(
        &self,
        existing: Option<&Value>,
        ours: &[Value],
    ) -> Result<policy::MergedPolicy, ResourceError> {
        let what = format!("bucket {}", self.spec.bucket.name);
        policy::merge_owned_statements(&what, existing, &self.prefix(), ours)
            .map_err(|e| ResourceError::permanent(&self.id, e.to_string()))
    }

    fn prefix(&self) -> String {
        policy::owned_sid_prefix(&self.env.plan_name)
    }

    /// Our statements: the snapshot role reads and writes; cross-account restore roles read.
    async fn statements(&self) -> Result<Vec<Value>, ResourceError> {
        let arn = role_arn(&self.env, &self.spec.role)
            .await
            .map_err(|e| fail(&self.id, e))?;
        let location = self.location();
        let mut ours = policy::bucket_policy_statements(&self.prefix(), &location, &[arn]);
        if !self.spec.readers.is_empty() {
            let principal = if self.spec.readers.len() == 1 {
                json!({"AWS": self.spec.readers[0]})
            } else {
                json!({"AWS": self.spec.readers})
            };
            ours.push(json!({
                "Sid": format!("{}readers", self.prefix()),
                "Effect": "Allow",
                "Principal": principal,
                "Action": ["s3:ListBucket", "s3:GetObject"],
                "Resource": [location.bucket_arn(), location.objects_arn()],
            }));
        }
        Ok(ours)
    }
}

#[async_trait]
impl Resource for BucketPolicyResource {
    fn id(&self) -> &NodeId {
        &self.id
    }

    fn kind(&self) -> &'static str {
        super::BUCKET_POLICY.name
    }

    fn desired_fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    async fn read(&self, _cx: &Context, _inputs: &Inputs) -> Result<Observed, ResourceError> {
        let s3 = self
            .env
            .bucket_s3(&self.spec.bucket.region)
            .await
            .map_err(|e| fail(&self.id, e))?;
        let bucket = &self.spec.bucket.name;
        let what = format!("bucket {bucket}");
        if let Err(e) = s3.head_bucket().bucket(bucket).send().await {
            let e = AwsError::from_sdk(&what, "s3", "HeadBucket", e);
            if e.is_not_found() {
                let ours = self.statements().await?;
                return Ok(Observed {
                    value: json!({"bucket_exists": false, "ours": ours}),
                    ..Observed::absent()
                });
            }
            return Err(fail(&self.id, e));
        }
        let existing = self.current_policy(&s3).await?;
        let ours = self.statements().await?;
        let merged = self.merged(existing.as_ref(), &ours)?;
        let value = json!({
            "bucket_exists": true,
            "existing": existing,
            "merged": merged.policy,
            "added": merged.diff.added,
            "changed": merged.diff.changed,
            "removed": merged.diff.removed,
            "ours": ours,
        });
        let observed = Observed::present(value).with_outputs(outputs([
            ("bucket", json!(bucket)),
            ("sid_prefix", json!(self.prefix())),
        ]));
        Ok(observed)
    }

    fn diff(&self, _inputs: &Inputs, observed: &Observed) -> Change {
        let value = &observed.value;
        let bucket = &self.spec.bucket.name;
        if value["bucket_exists"] == json!(false) {
            if !self.spec.bucket.create {
                return Change::Blocked {
                    reason: format!(
                        "bucket {bucket} does not exist (or is not visible to these credentials); \
                         create it, or set `bucket.create: true` to let snapferry create it"
                    ),
                };
            }
            let mut fields = vec![
                created("bucket", json!(bucket)),
                created("region", json!(self.spec.bucket.region)),
            ];
            for statement in value["ours"].as_array().into_iter().flatten() {
                fields.push(created(
                    &format!("policy.{}", statement["Sid"].as_str().unwrap_or_default()),
                    statement.clone(),
                ));
            }
            return Change::Create { fields };
        }
        let statement = |sid: &str, source: &Value| {
            source["Statement"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| s["Sid"] == sid)
                .cloned()
        };
        let mut fields = Vec::new();
        let sids = |key: &str| -> Vec<String> {
            value[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        };
        for sid in sids("added") {
            if let Some(s) = statement(&sid, &value["merged"]) {
                fields.push(created(&format!("policy.{sid}"), s));
            }
        }
        for sid in sids("changed") {
            fields.push(FieldChange {
                path: format!("policy.{sid}"),
                before: statement(&sid, &value["existing"]).map(FieldValue::Known),
                after: statement(&sid, &value["merged"])
                    .map_or(FieldValue::Known(Value::Null), FieldValue::Known),
            });
        }
        for sid in sids("removed") {
            fields.push(FieldChange {
                path: format!("policy.{sid}"),
                before: statement(&sid, &value["existing"]).map(FieldValue::Known),
                after: FieldValue::Known(Value::Null),
            });
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
        change: &Change,
    ) -> Result<(), ResourceError> {
        let s3 = self
            .env
            .bucket_s3(&self.spec.bucket.region)
            .await
            .map_err(|e| fail(&self.id, e))?;
        let bucket = &self.spec.bucket.name;
        let what = format!("bucket {bucket}");
        if matches!(change, Change::Create { .. }) {
            let mut request = s3.create_bucket().bucket(bucket);
            if self.spec.bucket.region != "us-east-1" {
                request = request.create_bucket_configuration(
                    aws_sdk_s3::types::CreateBucketConfiguration::builder()
                        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                            self.spec.bucket.region.as_str(),
                        ))
                        .build(),
                );
            }
            if let Err(e) = request.send().await {
                let e = AwsError::from_sdk(&what, "s3", "CreateBucket", e);
                // Ours already (a crash after CreateBucket): carry on. Anyone else's: stop.
                if e.code() != Some("BucketAlreadyOwnedByYou") {
                    return Err(fail(&self.id, e));
                }
            }
            if let Some(encryption) = &self.spec.bucket.encryption {
                let rule = match encryption {
                    BucketEncryption::Aes256 => {
                        aws_sdk_s3::types::ServerSideEncryptionByDefault::builder()
                            .sse_algorithm(aws_sdk_s3::types::ServerSideEncryption::Aes256)
                    }
                    BucketEncryption::Kms { key_id } => {
                        aws_sdk_s3::types::ServerSideEncryptionByDefault::builder()
                            .sse_algorithm(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
                            .set_kms_master_key_id(key_id.clone())
                    }
                };
                let rule = rule
                    .build()
                    .map_err(|e| ResourceError::permanent(&self.id, e.to_string()))?;
                let config = aws_sdk_s3::types::ServerSideEncryptionConfiguration::builder()
                    .rules(
                        aws_sdk_s3::types::ServerSideEncryptionRule::builder()
                            .apply_server_side_encryption_by_default(rule)
                            .build(),
                    )
                    .build()
                    .map_err(|e| ResourceError::permanent(&self.id, e.to_string()))?;
                s3.put_bucket_encryption()
                    .bucket(bucket)
                    .server_side_encryption_configuration(config)
                    .send()
                    .await
                    .map_err(|e| {
                        fail(
                            &self.id,
                            AwsError::from_sdk(&what, "s3", "PutBucketEncryption", e),
                        )
                    })?;
            }
        }
        // Read the policy again right before writing it, so a statement someone added
        // since the plan was read is kept too.
        let existing = self.current_policy(&s3).await?;
        let ours = self.statements().await?;
        let merged = self.merged(existing.as_ref(), &ours)?;
        if !merged.diff.has_changes() {
            return Ok(());
        }
        let role = role_arn(&self.env, &self.spec.role)
            .await
            .map_err(|e| fail(&self.id, e))?;
        let document = merged.policy.to_string();
        let put = retry_until_propagated(
            cx,
            &role,
            PROPAGATION_WAIT,
            is_unknown_principal,
            || async {
                s3.put_bucket_policy()
                    .bucket(bucket)
                    .policy(document.clone())
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(&what, "s3", "PutBucketPolicy", e))
            },
        )
        .await?;
        match put {
            Ok(_) => Ok(()),
            Err(e) if is_unknown_principal(&e) => Err(ResourceError::permanent(
                &self.id,
                format!(
                    "{e}. S3 still does not know a principal the policy names after {} s: \
                     check that role {role}{} exists; a role created moments ago can take \
                     longer to propagate, so run `snapferry apply` again",
                    PROPAGATION_WAIT.as_secs(),
                    if self.spec.readers.is_empty() {
                        String::new()
                    } else {
                        format!(" and the readers {} exist", self.spec.readers.join(", "))
                    }
                ),
            )),
            Err(e) => Err(fail(&self.id, e)),
        }
    }

    async fn wait(
        &self,
        _cx: &Context,
        _inputs: &Inputs,
        _progress: &Progress,
    ) -> Result<Outputs, ResourceError> {
        Ok(outputs([
            ("bucket", json!(self.spec.bucket.name)),
            ("sid_prefix", json!(self.prefix())),
        ]))
    }

    /// Removes the statements whose `Sid` starts with this plan's prefix and nothing else: the
    /// rest of the policy is put back as it is (or the policy deleted when only ours were
    /// there). The bucket itself stays, even one snapferry created: it may hold snapshots.
    /// A missing bucket or policy, or one without our statements, is left alone (idempotent).
    async fn destroy(&self, _cx: &Context, _inputs: &Inputs) -> Result<(), ResourceError> {
        let s3 = self
            .env
            .bucket_s3(&self.spec.bucket.region)
            .await
            .map_err(|e| fail(&self.id, e))?;
        let bucket = &self.spec.bucket.name;
        let what = format!("bucket {bucket}");
        let existing = self.current_policy(&s3).await?;
        let (after, _) = policy::remove_owned_statements(&what, existing.as_ref(), &self.prefix())
            .map_err(|e| ResourceError::permanent(&self.id, e.to_string()))?;
        match after {
            policy::PolicyAfterRemoval::Unchanged => Ok(()),
            policy::PolicyAfterRemoval::Put(rest) => s3
                .put_bucket_policy()
                .bucket(bucket)
                .policy(rest.to_string())
                .send()
                .await
                .map(drop)
                .map_err(|e| {
                    fail(
                        &self.id,
                        AwsError::from_sdk(&what, "s3", "PutBucketPolicy", e),
                    )
                }),
            policy::PolicyAfterRemoval::Delete => {
                match s3.delete_bucket_policy().bucket(bucket).send().await {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        let e = AwsError::from_sdk(&what, "s3", "DeleteBucketPolicy", e);
                        if e.is_not_found() {
                            Ok(())
                        } else {
                            Err(fail(&self.id, e))
                        }
                    }
                }
            }
        }
    }
}

/// S3's answer to a policy naming a principal it cannot resolve: a role that does not exist,
/// or one IAM has not yet propagated to S3.
fn is_unknown_principal(error: &AwsError) -> bool {
    error.code() == Some("MalformedPolicy")
        && error.to_string().contains("Invalid principal in policy")
}
