//! `role`: the IAM role OpenSearch Service assumes to reach the bucket. A managed role is
//! created or brought to the plan (trust policy with the confused-deputy condition, an inline
//! policy on exactly the bucket and base path, boundary, tags); an existing role given by ARN
//! is only checked.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use snapferry_engine::{
    Change, Context, Inputs, NodeId, Observed, Outputs, Progress, Resource, ResourceError,
};
use snapferry_plan::{BucketEncryption, RoleNode, RoleSpec};

use super::{Env, changed, created, fail, outputs};
use crate::error::AwsError;
use crate::policy::{self, SnapshotLocation};

/// Tags that mark a role snapferry created (and may therefore delete).
const OWNERSHIP_TAGS: &[&str] = &["managed-by", "snapferry-plan"];

/// The name of the inline policy snapferry owns on a managed role.
pub const INLINE_POLICY_NAME: &str = "snapferry-snapshots";

pub(crate) struct RoleResource {
    id: NodeId,
    fingerprint: String,
    spec: RoleNode,
    env: Arc<Env>,
}

/// The ARN of the snapshot role: given for an existing role, derived for a managed one (so a
/// dependent can know it before the role exists).
pub(crate) async fn role_arn(env: &Env, role: &RoleSpec) -> Result<String, AwsError> {
    match role {
        RoleSpec::Existing { arn, .. } => Ok(arn.clone()),
        RoleSpec::Managed { name, path, .. } => Ok(policy::role_arn(
            env.partition(),
            &env.account_id().await?,
            Some(path),
            name,
        )),
    }
}

impl RoleResource {
    pub(crate) fn new(id: NodeId, fingerprint: String, spec: &RoleNode, env: &Arc<Env>) -> Self {
        RoleResource {
            id,
            fingerprint,
            spec: spec.clone(),
            env: env.clone(),
        }
    }

    /// The documents the role must carry.
    async fn desired(&self) -> Result<Value, ResourceError> {
        let RoleSpec::Managed {
            trusted_services,
            permissions_boundary,
            tags,
            ..
        } = &self.spec.role
        else {
            return Ok(Value::Null);
        };
        let account = self.env.account_id().await.map_err(|e| fail(&self.id, e))?;
        let bucket = &self.spec.bucket;
        let location = SnapshotLocation::new(
            policy::Partition::from_region(&bucket.region),
            &bucket.name,
            bucket.base_path.as_deref(),
        );
        let kms = match &bucket.encryption {
            Some(BucketEncryption::Kms { key_id: Some(key) }) => Some(
                policy::kms_key_arn(self.env.partition(), &bucket.region, &account, key).map_err(
                    |e| ResourceError::permanent(&self.id, format!("bucket.kms_key_id: {e}")),
                )?,
            ),
            _ => None,
        };
        let mut tags = tags.clone();
        tags.entry("managed-by".into())
            .or_insert_with(|| "snapferry".into());
        tags.entry("snapferry-plan".into())
            .or_insert_with(|| self.env.plan_name.clone());
        Ok(json!({
            "trust_policy": policy::trust_policy(&account, trusted_services),
            "inline_policy": policy::role_inline_policy(&location, kms.as_deref()),
            "permissions_boundary": permissions_boundary,
            "tags": tags,
        }))
    }
}

/// Maps an IAM SDK failure of `operation` on role `name`.
fn iam_fail<E>(
    id: &NodeId,
    name: &str,
    operation: &'static str,
) -> impl FnOnce(
    aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> ResourceError
where
    E: aws_sdk_iam::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (id, name) = (id.clone(), name.to_owned());
    move |e| {
        fail(
            &id,
            AwsError::from_sdk(format!("role {name}"), "iam", operation, e),
        )
    }
}

fn tags_of(role: &aws_sdk_iam::types::Role) -> BTreeMap<String, String> {
    role.tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

#[async_trait]
impl Resource for RoleResource {
    fn id(&self) -> &NodeId {
        &self.id
    }

    fn kind(&self) -> &'static str {
        super::ROLE.name
    }

    fn desired_fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    async fn read(&self, _cx: &Context, _inputs: &Inputs) -> Result<Observed, ResourceError> {
        let iam = self.env.home().await.map_err(|e| fail(&self.id, e))?.iam;
        let name = self.spec.role.name();
        let role = match iam.get_role().role_name(name).send().await {
            Ok(out) => out.role().cloned(),
            Err(e) => {
                let e = AwsError::from_sdk(format!("role {name}"), "iam", "GetRole", e);
                if e.is_not_found() {
                    None
                } else {
                    return Err(fail(&self.id, e));
                }
            }
        };
        let desired = self.desired().await?;
        let Some(role) = role else {
            return Ok(Observed {
                value: json!({"desired": desired}),
                ..Observed::absent()
            });
        };
        let trust = role
            .assume_role_policy_document()
            .map(|d| policy::parse_policy_document(&format!("role {name}"), d))
            .transpose()
            .map_err(|e| ResourceError::permanent(&self.id, e.to_string()))?;
        let inline = if matches!(self.spec.role, RoleSpec::Managed { .. }) {
            match iam
                .get_role_policy()
                .role_name(name)
                .policy_name(INLINE_POLICY_NAME)
                .send()
                .await
            {
                Ok(out) => Some(
                    policy::parse_policy_document(
                        &format!("role {name} policy {INLINE_POLICY_NAME}"),
                        out.policy_document(),
                    )
                    .map_err(|e| ResourceError::permanent(&self.id, e.to_string()))?,
                ),
                Err(e) => {
                    let e = AwsError::from_sdk(format!("role {name}"), "iam", "GetRolePolicy", e);
                    if !e.is_not_found() {
                        return Err(fail(&self.id, e));
                    }
                    None
                }
            }
        } else {
            None
        };
        let live = json!({
            "arn": role.arn(),
            "path": role.path(),
            "trust_policy": trust,
            "inline_policy": inline,
            "permissions_boundary": role.permissions_boundary()
                .and_then(|b| b.permissions_boundary_arn()),
            "tags": tags_of(&role),
        });
        Ok(Observed::present(json!({"live": live, "desired": desired}))
            .with_outputs(outputs([("arn", json!(role.arn()))])))
    }

    fn diff(&self, _inputs: &Inputs, observed: &Observed) -> Change {
        let desired = &observed.value["desired"];
        match &self.spec.role {
            RoleSpec::Existing { arn, name } => {
                if !observed.exists {
                    return Change::Blocked {
                        reason: format!(
                            "role {arn} does not exist; create it, or let snapferry manage a role \
                             by giving `role.name` instead of `role.arn`"
                        ),
                    };
                }
                let live = &observed.value["live"];
                let trusts_opensearch = live["trust_policy"]["Statement"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|s| {
                        let service = &s["Principal"]["Service"];
                        service == policy::OPENSEARCH_SERVICE_PRINCIPAL
                            || service.as_array().is_some_and(|a| {
                                a.iter().any(|v| v == policy::OPENSEARCH_SERVICE_PRINCIPAL)
                            })
                    });
                if !trusts_opensearch {
                    return Change::Blocked {
                        reason: format!(
                            "role {name} does not let {} assume it; add it to the role's trust \
                             policy (snapferry does not change a role given by ARN)",
                            policy::OPENSEARCH_SERVICE_PRINCIPAL
                        ),
                    };
                }
                Change::NoOp
            }
            RoleSpec::Managed { name, path, .. } => {
                if !observed.exists {
                    let mut fields = vec![
                        created("name", json!(name)),
                        created("path", json!(path)),
                        created("trust_policy", desired["trust_policy"].clone()),
                        created(
                            &format!("inline_policy.{INLINE_POLICY_NAME}"),
                            desired["inline_policy"].clone(),
                        ),
                    ];
                    if !desired["permissions_boundary"].is_null() {
                        fields.push(created(
                            "permissions_boundary",
                            desired["permissions_boundary"].clone(),
                        ));
                    }
                    fields.push(created("tags", desired["tags"].clone()));
                    return Change::Create { fields };
                }
                let live = &observed.value["live"];
                let mut fields = Vec::new();
                if live["path"] != json!(path) {
                    return Change::Blocked {
                        reason: format!(
                            "role {name} exists with path {} but the plan says {path}; IAM cannot \
                             move a role: change `role.path` or remove the role",
                            live["path"]
                        ),
                    };
                }
                for key in ["trust_policy", "inline_policy"] {
                    let same =
                        !live[key].is_null() && policy::same_policy(&live[key], &desired[key]);
                    if !same {
                        let path = match key {
                            "inline_policy" => format!("inline_policy.{INLINE_POLICY_NAME}"),
                            _ => key.to_owned(),
                        };
                        fields.push(changed(&path, live[key].clone(), desired[key].clone()));
                    }
                }
                if !desired["permissions_boundary"].is_null()
                    && live["permissions_boundary"] != desired["permissions_boundary"]
                {
                    fields.push(changed(
                        "permissions_boundary",
                        live["permissions_boundary"].clone(),
                        desired["permissions_boundary"].clone(),
                    ));
                }
                // Tags snapferry sets must be there; other tags on the role are left alone.
                let missing: serde_json::Map<String, Value> = desired["tags"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    // Ownership tags go only on a role snapferry creates: `destroy` deletes a
                    // role only when it carries them, so an adopted role must never get them.
                    .filter(|(k, _)| !OWNERSHIP_TAGS.contains(&k.as_str()))
                    .filter(|(k, v)| live["tags"].get(k.as_str()) != Some(v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if !missing.is_empty() {
                    let before: serde_json::Map<String, Value> = missing
                        .keys()
                        .filter_map(|k| live["tags"].get(k).map(|v| (k.clone(), v.clone())))
                        .collect();
                    fields.push(changed(
                        "tags",
                        Value::Object(before),
                        Value::Object(missing),
                    ));
                }
                if fields.is_empty() {
                    Change::NoOp
                } else {
                    Change::Update { fields }
                }
            }
        }
    }

    async fn apply(
        &self,
        _cx: &Context,
        _inputs: &Inputs,
        change: &Change,
    ) -> Result<(), ResourceError> {
        let RoleSpec::Managed {
            name,
            path,
            permissions_boundary,
            ..
        } = &self.spec.role
        else {
            return Ok(());
        };
        // Whatever this call does to the role, IAM may take a while to show it everywhere.
        let arn = role_arn(&self.env, &self.spec.role)
            .await
            .map_err(|e| fail(&self.id, e))?;
        self.env.note_role_changed(&arn);
        let iam = self.env.home().await.map_err(|e| fail(&self.id, e))?.iam;
        let desired = self.desired().await?;
        let tags: Vec<aws_sdk_iam::types::Tag> = desired["tags"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| {
                aws_sdk_iam::types::Tag::builder()
                    .key(k)
                    .value(v.as_str().unwrap_or_default())
                    .build()
                    .ok()
            })
            .collect();
        let fields = match change {
            Change::Create { .. } => {
                let created = iam
                    .create_role()
                    .role_name(name)
                    .path(path)
                    .description(format!(
                        "Lets OpenSearch Service write and read snapshots for snapferry plan {}",
                        self.env.plan_name
                    ))
                    .assume_role_policy_document(desired["trust_policy"].to_string())
                    .set_permissions_boundary(permissions_boundary.clone())
                    .set_tags(Some(tags.clone()))
                    .send()
                    .await;
                match created {
                    Ok(_) => {}
                    // A crash between CreateRole and the checkpoint: the role is there; the
                    // documents below bring it to the plan either way.
                    Err(e) => {
                        let e = AwsError::from_sdk(format!("role {name}"), "iam", "CreateRole", e);
                        if e.code() != Some("EntityAlreadyExists") {
                            return Err(fail(&self.id, e));
                        }
                    }
                }
                vec!["inline_policy".to_owned()]
            }
            Change::Update { fields } => fields.iter().map(|f| f.path.clone()).collect(),
            _ => return Ok(()),
        };
        for field in &fields {
            match field.split('.').next().unwrap_or_default() {
                "trust_policy" => {
                    iam.update_assume_role_policy()
                        .role_name(name)
                        .policy_document(desired["trust_policy"].to_string())
                        .send()
                        .await
                        .map_err(iam_fail(&self.id, name, "UpdateAssumeRolePolicy"))?;
                }
                "inline_policy" => {
                    iam.put_role_policy()
                        .role_name(name)
                        .policy_name(INLINE_POLICY_NAME)
                        .policy_document(desired["inline_policy"].to_string())
                        .send()
                        .await
                        .map_err(iam_fail(&self.id, name, "PutRolePolicy"))?;
                }
                "permissions_boundary" => {
                    iam.put_role_permissions_boundary()
                        .role_name(name)
                        .set_permissions_boundary(permissions_boundary.clone())
                        .send()
                        .await
                        .map_err(iam_fail(&self.id, name, "PutRolePermissionsBoundary"))?;
                }
                "tags" => {
                    let plan_tags: Vec<aws_sdk_iam::types::Tag> = tags
                        .iter()
                        .filter(|t| !OWNERSHIP_TAGS.contains(&t.key()))
                        .cloned()
                        .collect();
                    iam.tag_role()
                        .role_name(name)
                        .set_tags(Some(plan_tags))
                        .send()
                        .await
                        .map_err(iam_fail(&self.id, name, "TagRole"))?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn wait(
        &self,
        _cx: &Context,
        _inputs: &Inputs,
        _progress: &Progress,
    ) -> Result<Outputs, ResourceError> {
        let arn = role_arn(&self.env, &self.spec.role)
            .await
            .map_err(|e| fail(&self.id, e))?;
        Ok(outputs([("arn", json!(arn))]))
    }

    /// Deletes a managed role: its inline policy `snapferry-snapshots`, then the role. Only a
    /// role tagged `managed-by: snapferry` and `snapferry-plan: <this plan>` is touched; a role
    /// given by ARN is never snapferry's and is left alone. Other inline or attached policies
    /// are not ours either, so IAM's `DeleteConflict` for them is reported, not worked around.
    /// A role already gone is fine (idempotent).
    async fn destroy(&self, _cx: &Context, _inputs: &Inputs) -> Result<(), ResourceError> {
        let RoleSpec::Managed { name, .. } = &self.spec.role else {
            return Ok(());
        };
        let iam = self.env.home().await.map_err(|e| fail(&self.id, e))?.iam;
        let role = match iam.get_role().role_name(name).send().await {
            Ok(out) => out.role().cloned(),
            Err(e) => {
                let e = AwsError::from_sdk(format!("role {name}"), "iam", "GetRole", e);
                if e.is_not_found() {
                    return Ok(());
                }
                return Err(fail(&self.id, e));
            }
        };
        let Some(role) = role else {
            return Ok(());
        };
        let tags = tags_of(&role);
        let ours = tags.get("managed-by").map(String::as_str) == Some("snapferry")
            && tags.get("snapferry-plan") == Some(&self.env.plan_name);
        if !ours {
            return Err(ResourceError::permanent(
                &self.id,
                format!(
                    "role {name} is not tagged managed-by: snapferry and snapferry-plan: {}; \
                     snapferry did not create it and leaves it in place",
                    self.env.plan_name
                ),
            ));
        }
        if let Err(e) = iam
            .delete_role_policy()
            .role_name(name)
            .policy_name(INLINE_POLICY_NAME)
            .send()
            .await
        {
            let e = AwsError::from_sdk(format!("role {name}"), "iam", "DeleteRolePolicy", e);
            if !e.is_not_found() {
                return Err(fail(&self.id, e));
            }
        }
        if let Err(e) = iam.delete_role().role_name(name).send().await {
            let e = AwsError::from_sdk(format!("role {name}"), "iam", "DeleteRole", e);
            if !e.is_not_found() {
                return Err(fail(&self.id, e));
            }
        }
        Ok(())
    }
}
