//! `ism_attach`: after the restore, each restored index whose source index an ISM policy
//! manages is attached to that policy on the target. The plugin keeps its managed-index records
//! in a system index that no snapshot restores, so without this step the copy's indices would
//! never roll over or be deleted.
//!
//! Only policies the metadata step copies count (its `ism_policies` patterns). `read` asks both
//! sides' `explain` (the source for the restored indices' sources, the target for the restored
//! indices); `diff` shows each index to attach as `indices.<index>: before → policy`. Until the
//! restore has run, which indices it brings is known after apply. Under `restore.strategy:
//! alias_swap` the index attached is the generation behind each alias (`<index>~<snapshot>`),
//! the one a swap later removes with its managed-index record. An index the target manages
//! with another policy is moved to the source's (`remove`, then `add`: `change_policy` only
//! switches at the next state transition, so the plan could not see it done).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use snapferry_engine::{
    Change, Context, FieldChange, FieldValue, Inputs, NodeId, Observed, Outputs, Progress,
    Resource, ResourceError,
};
use snapferry_plan::{DomainRef, EngineVersion, IsmAttachNode};

use super::{Env, fail, fail_domain, outputs};
use crate::cluster_meta::{Capabilities, selected};

pub(crate) struct IsmAttachResource {
    id: NodeId,
    fingerprint: String,
    spec: IsmAttachNode,
    env: Arc<Env>,
}

/// Per restored index on the target: (the policy managing its source, the policy managing it
/// on the target).
type Attachments = BTreeMap<String, (String, Option<String>)>;

impl IsmAttachResource {
    pub(crate) fn new(
        id: NodeId,
        fingerprint: String,
        spec: &IsmAttachNode,
        env: &Arc<Env>,
    ) -> Self {
        IsmAttachResource {
            id,
            fingerprint,
            spec: spec.clone(),
            env: env.clone(),
        }
    }

    /// The restored indices, source → target, from the restore node. Under `alias_swap` the
    /// restore maps each source index to its alias; ISM manages indices, not aliases, so the
    /// target is the generation the alias holds (`generations` output).
    fn mapping(&self, inputs: &Inputs) -> Option<BTreeMap<String, String>> {
        let value = inputs.get(&self.spec.restore, "indices")?;
        let mut mapping: BTreeMap<String, String> =
            serde_json::from_value(value.as_known()?.clone()).ok()?;
        if let Some(generations) = inputs.get(&self.spec.restore, "generations")
            && let Some(generations) = generations.as_known()
        {
            for target in mapping.values_mut() {
                if let Some(generation) = generations[target.as_str()]["generation"].as_str() {
                    *target = generation.to_owned();
                }
            }
        }
        Some(mapping)
    }

    async fn version(&self, domain: &DomainRef) -> Result<Option<EngineVersion>, ResourceError> {
        Ok(self
            .env
            .describe_domain(domain)
            .await
            .map_err(|e| fail(&self.id, e))?
            .and_then(|s| s.engine_version().and_then(|v| v.parse().ok())))
    }

    /// What both sides' ISM says about the restored indices.
    async fn observe(&self, mapping: &BTreeMap<String, String>) -> Result<Observed, ResourceError> {
        let source = self
            .env
            .require_data_plane(&self.id, &self.spec.source)
            .await?;
        let target = self
            .env
            .require_data_plane(&self.id, &self.spec.target)
            .await?;
        let (Some(source_version), Some(target_version)) = (
            self.version(&self.spec.source).await?,
            self.version(&self.spec.target).await?,
        ) else {
            return Ok(Observed::absent());
        };
        let sources: Vec<String> = mapping.keys().cloned().collect();
        let managed = source
            .ism_managed(&Capabilities::of(source_version), &sources)
            .await
            .map_err(|e| {
                fail_domain(
                    &self.id,
                    &format!("ISM explain on domain {}", self.spec.source.name),
                    e,
                )
            })?;
        let wanted: BTreeMap<&String, &String> = mapping
            .iter()
            .filter_map(|(from, to)| {
                let policy = managed.get(from)?.as_ref()?;
                selected(policy, &self.spec.policies).then_some((to, policy))
            })
            .collect();
        let targets: Vec<String> = wanted.keys().map(|t| (*t).clone()).collect();
        let on_target = if targets.is_empty() {
            BTreeMap::new()
        } else {
            target
                .ism_managed(&Capabilities::of(target_version), &targets)
                .await
                .map_err(|e| {
                    fail_domain(
                        &self.id,
                        &format!("ISM explain on domain {}", self.spec.target.name),
                        e,
                    )
                })?
        };
        let attachments: Attachments = wanted
            .into_iter()
            .filter(|(to, _)| on_target.contains_key(*to))
            .map(|(to, policy)| (to.clone(), (policy.clone(), on_target[to].clone())))
            .collect();
        Ok(Observed::present(json!({
            "target_engine": target_version.to_string(),
            "indices": attachments,
        })))
    }

    fn attachments(observed: &Observed) -> Attachments {
        serde_json::from_value(observed.value["indices"].clone()).unwrap_or_default()
    }

    fn outputs(observed: &Observed) -> Outputs {
        outputs([("indices", json!(Self::attachments(observed).len()))])
    }
}

impl IsmAttachResource {
    /// What `read` sees, before a refusal by the security plugin is kept for `diff`
    /// ([`super::Env::unless_refused`]).
    async fn read_live(&self, _cx: &Context, inputs: &Inputs) -> Result<Observed, ResourceError> {
        match self.mapping(inputs) {
            Some(mapping) => {
                let observed = self.observe(&mapping).await?;
                let outputs = Self::outputs(&observed);
                Ok(observed.with_outputs(outputs))
            }
            None => Ok(Observed::absent()),
        }
    }
}

#[async_trait]
impl Resource for IsmAttachResource {
    fn id(&self) -> &NodeId {
        &self.id
    }

    fn kind(&self) -> &'static str {
        super::ISM_ATTACH.name
    }

    fn desired_fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    async fn read(&self, cx: &Context, inputs: &Inputs) -> Result<Observed, ResourceError> {
        let read = self.read_live(cx, inputs).await;
        self.env
            .unless_refused(&[&self.spec.target, &self.spec.source], read)
    }

    fn diff(&self, inputs: &Inputs, observed: &Observed) -> Change {
        if let Some(change) = super::refused_change(inputs, observed) {
            return change;
        }
        let restored = matches!(
            inputs.get(&self.spec.restore, "indices"),
            Some(FieldValue::Known(Value::Object(_)))
        );
        if !restored || observed.value.is_null() {
            // The restore runs (again) first: which of its indices to attach is known after it,
            // and they come unmanaged (a create; see below).
            return Change::Create {
                fields: vec![super::created_unknown("indices")],
            };
        }
        let fields: Vec<FieldChange> = Self::attachments(observed)
            .into_iter()
            .filter(|(_, (want, have))| have.as_ref() != Some(want))
            .map(|(index, (want, have))| FieldChange {
                path: format!("indices.{index}"),
                before: have.map(FieldValue::known),
                after: FieldValue::known(want),
            })
            .collect();
        if fields.is_empty() {
            return Change::NoOp;
        }
        let target = observed.value["target_engine"]
            .as_str()
            .and_then(|v| v.parse::<EngineVersion>().ok());
        if let Some(target) = target
            && Capabilities::of(target).ism_prefix().is_none()
        {
            return Change::Blocked {
                reason: format!(
                    "the target {} runs {target}, which has no Index State Management; \
                     exclude its policies under `metadata.ism_policies`",
                    self.spec.target.name
                ),
            };
        }
        // A create while every index to attach is unmanaged (as a restore leaves them).
        if fields.iter().all(|f| f.before.is_none()) {
            Change::Create { fields }
        } else {
            Change::Update { fields }
        }
    }

    async fn apply(
        &self,
        cx: &Context,
        inputs: &Inputs,
        _change: &Change,
    ) -> Result<(), ResourceError> {
        let Some(mapping) = self.mapping(inputs) else {
            return Err(ResourceError::permanent(
                &self.id,
                "the restored indices are not known; apply the restore first",
            ));
        };
        // Read again and attach only what is still unattached: safe to repeat.
        let observed = self.observe(&mapping).await?;
        let Some(version) = observed.value["target_engine"]
            .as_str()
            .and_then(|v| v.parse::<EngineVersion>().ok())
        else {
            return Ok(());
        };
        let caps = Capabilities::of(version);
        let target = self
            .env
            .require_data_plane(&self.id, &self.spec.target)
            .await?;
        for (index, (policy, have)) in Self::attachments(&observed) {
            if have.as_ref() == Some(&policy) {
                continue;
            }
            let what = format!(
                "ISM policy {policy} for index {index} on domain {}",
                self.spec.target.name
            );
            let steps: &[Option<&str>] = if have.is_some() {
                &[None, Some(policy.as_str())]
            } else {
                &[Some(policy.as_str())]
            };
            for step in steps {
                let refused = cx
                    .retry(|| async {
                        target
                            .ism_set(&caps, &index, *step)
                            .await
                            .map_err(|e| fail_domain(&self.id, &what, e))
                    })
                    .await?;
                if let Some(reason) = refused {
                    return Err(ResourceError::permanent(
                        &self.id,
                        format!("domain {}: {reason}", self.spec.target.name),
                    ));
                }
            }
        }
        Ok(())
    }

    async fn wait(
        &self,
        _cx: &Context,
        inputs: &Inputs,
        _progress: &Progress,
    ) -> Result<Outputs, ResourceError> {
        match self.mapping(inputs) {
            Some(mapping) => Ok(Self::outputs(&self.observe(&mapping).await?)),
            None => Ok(outputs([("indices", json!(0))])),
        }
    }
}
