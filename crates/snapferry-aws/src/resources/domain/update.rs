//! What it takes to bring an existing domain to the desired shape, field by field. Every field
//! of [`DomainShape`] is destructured by name (omicron's `has_changes()` style), so adding a
//! field does not compile until someone decides its fate: sent in one block of
//! `UpdateDomainConfig` (`ClusterConfig`, `EBSOptions`, `VPCOptions`, `EncryptionAtRestOptions`,
//! `NodeToNodeEncryptionOptions`, `DomainEndpointOptions`, `AdvancedOptions`,
//! `AccessPolicies`), added with `AddTags`, or refused because AWS cannot change it in place
//! (the engine version, encryption at rest or node-to-node encryption once enabled, the KMS
//! key, a public domain into a VPC). A shown change is therefore always a change that is made,
//! or one shown blocked with the reason.
//!
//! `UpdateDomainConfig` merges what it is sent into the live configuration, block by block;
//! each block sent is filled from the desired shape (and, for the advanced options, the live
//! options the plan does not name), so sending a block never unsets a field.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_opensearch::operation::update_domain_config::builders::UpdateDomainConfigFluentBuilder;
use aws_sdk_opensearch::types as os;
use serde::Serialize;
use serde_json::{Value, json};
use snapferry_engine::{FieldChange, FieldValue};

use super::{DomainShape, OWNER_TAG, cluster_config, ebs_options};

/// A block of `UpdateDomainConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Block {
    ClusterConfig,
    EbsOptions,
    VpcOptions,
    EncryptionAtRestOptions,
    NodeToNodeEncryptionOptions,
    DomainEndpointOptions,
    AdvancedOptions,
    AccessPolicies,
}

/// Where a differing field goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Sent in this block of `UpdateDomainConfig`.
    Send(Block),
    /// Set with `AddTags`.
    Tag,
    /// AWS cannot change it in place; the reason says what to do instead.
    Blocked(String),
}

/// One field that differs, as the plan shows it, and its fate.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDiff {
    pub change: FieldChange,
    pub fate: Fate,
}

/// Everything that differs between a live domain and its desired shape.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DomainUpdate {
    pub fields: Vec<FieldDiff>,
}

impl DomainUpdate {
    /// The fields of `desired` that `live` does not have yet. A setting the plan does not fix
    /// (`None` in the desired shape) and tags or advanced options it does not name are left
    /// alone; the ownership tag goes only on a domain snapferry creates (an adopted domain
    /// must never look created by snapferry: `destroy --include-target-domain` trusts it).
    pub fn between(domain: &str, live: &DomainShape, desired: &DomainShape) -> DomainUpdate {
        let DomainShape {
            engine_version,
            instance_type,
            instance_count,
            dedicated_master_enabled,
            dedicated_master_type,
            dedicated_master_count,
            zone_awareness_enabled,
            availability_zone_count,
            ebs_enabled,
            volume_type,
            volume_size,
            iops,
            throughput,
            subnet_ids,
            security_group_ids,
            encryption_at_rest,
            kms_key_id,
            node_to_node_encryption,
            enforce_https,
            tls_security_policy,
            advanced_options,
            access_policy,
            tags,
            fine_grained_access_control,
            internal_user_database,
            // AWS never shows the master user: it is only sent when creating.
            master_user: _,
            master_user_password_from: _,
        } = desired;
        let mut u = DomainUpdate::default();
        let send = Fate::Send;

        u.option(
            "engine_version",
            &live.engine_version,
            engine_version,
            || {
                Fate::Blocked(format!(
                    "domain {domain} runs {} and AWS changes an engine only by upgrading it \
                 (UpgradeDomain, one major version at a time): upgrade it, or change the plan's \
                 `engine_version`",
                    live.engine_version
                        .as_deref()
                        .unwrap_or("an unknown engine")
                ))
            },
        );

        let cluster = || send(Block::ClusterConfig);
        u.option("instance_type", &live.instance_type, instance_type, cluster);
        u.option(
            "instance_count",
            &live.instance_count,
            instance_count,
            cluster,
        );
        u.option(
            "dedicated_master_enabled",
            &live.dedicated_master_enabled,
            dedicated_master_enabled,
            cluster,
        );
        u.option(
            "dedicated_master_type",
            &live.dedicated_master_type,
            dedicated_master_type,
            cluster,
        );
        u.option(
            "dedicated_master_count",
            &live.dedicated_master_count,
            dedicated_master_count,
            cluster,
        );
        u.option(
            "zone_awareness_enabled",
            &live.zone_awareness_enabled,
            zone_awareness_enabled,
            cluster,
        );
        u.option(
            "availability_zone_count",
            &live.availability_zone_count,
            availability_zone_count,
            cluster,
        );

        let ebs = || send(Block::EbsOptions);
        u.option("ebs_enabled", &live.ebs_enabled, ebs_enabled, ebs);
        u.option("volume_type", &live.volume_type, volume_type, ebs);
        u.option("volume_size", &live.volume_size, volume_size, ebs);
        u.option("iops", &live.iops, iops, ebs);
        u.option("throughput", &live.throughput, throughput, ebs);

        let public = live.subnet_ids.is_none();
        let vpc = || {
            if public {
                Fate::Blocked(format!(
                    "domain {domain} has public access and AWS cannot move a domain into a VPC: \
                     create a new domain (another `target.domain`), or leave `vpc` out"
                ))
            } else {
                send(Block::VpcOptions)
            }
        };
        u.option("subnet_ids", &live.subnet_ids, subnet_ids, vpc);
        u.option(
            "security_group_ids",
            &live.security_group_ids,
            security_group_ids,
            vpc,
        );

        let encrypted = live.encryption_at_rest == Some(true);
        let at_rest = || {
            if encrypted {
                Fate::Blocked(format!(
                    "domain {domain} is encrypted at rest, and AWS fixes encryption at rest and \
                     its KMS key once enabled: create a new domain, or change the plan's \
                     `encryption_at_rest` to what the domain has"
                ))
            } else {
                send(Block::EncryptionAtRestOptions)
            }
        };
        u.option(
            "encryption_at_rest",
            &live.encryption_at_rest,
            encryption_at_rest,
            at_rest,
        );
        u.option("kms_key_id", &live.kms_key_id, kms_key_id, at_rest);

        let node_to_node = || {
            if live.node_to_node_encryption == Some(true) {
                Fate::Blocked(format!(
                    "domain {domain} has node-to-node encryption, which AWS cannot turn off once \
                     enabled: create a new domain, or set `node_to_node_encryption: true`"
                ))
            } else {
                send(Block::NodeToNodeEncryptionOptions)
            }
        };
        u.option(
            "node_to_node_encryption",
            &live.node_to_node_encryption,
            node_to_node_encryption,
            node_to_node,
        );

        let endpoint = || send(Block::DomainEndpointOptions);
        u.option(
            "enforce_https",
            &live.enforce_https,
            enforce_https,
            endpoint,
        );
        u.option(
            "tls_security_policy",
            &live.tls_security_policy,
            tls_security_policy,
            endpoint,
        );

        u.map(
            "advanced_options",
            &live.advanced_options,
            advanced_options,
            |_| send(Block::AdvancedOptions),
        );
        u.option("access_policy", &live.access_policy, access_policy, || {
            send(Block::AccessPolicies)
        });
        let security = || {
            Fate::Blocked(if live.fine_grained_access_control == Some(true) {
                format!(
                    "domain {domain} has fine-grained access control, which AWS cannot turn off \
                     or move to another user database once enabled: create a new domain, or \
                     leave `fine_grained_access_control` as the domain has it"
                )
            } else {
                format!(
                    "domain {domain} has no fine-grained access control; turning it on in place \
                     needs its master user and a blue/green deployment snapferry leaves to you: \
                     `aws opensearch update-domain-config --domain-name {domain} \
                     --advanced-security-options Enabled=true,MasterUserOptions={{...}}`, or \
                     create a new domain (another `target.domain`)"
                )
            })
        };
        u.option(
            "fine_grained_access_control",
            &live.fine_grained_access_control,
            fine_grained_access_control,
            security,
        );
        u.option(
            "internal_user_database",
            &live.internal_user_database,
            internal_user_database,
            security,
        );
        let owned: BTreeMap<String, String> = tags
            .iter()
            .filter(|(k, _)| k.as_str() != OWNER_TAG)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        u.map("tags", &live.tags, &owned, |_| Fate::Tag);
        u
    }

    fn option<T: Serialize + PartialEq>(
        &mut self,
        path: &str,
        live: &Option<T>,
        desired: &Option<T>,
        fate: impl FnOnce() -> Fate,
    ) {
        let Some(want) = desired else {
            return;
        };
        if live.as_ref() == Some(want) {
            return;
        }
        self.fields.push(FieldDiff {
            change: FieldChange {
                path: path.to_owned(),
                before: live.as_ref().map(|v| FieldValue::Known(json!(v))),
                after: FieldValue::Known(json!(want)),
            },
            fate: fate(),
        });
    }

    fn map(
        &mut self,
        prefix: &str,
        live: &BTreeMap<String, String>,
        desired: &BTreeMap<String, String>,
        fate: impl Fn(&str) -> Fate,
    ) {
        for (key, want) in desired {
            if live.get(key) == Some(want) {
                continue;
            }
            self.fields.push(FieldDiff {
                change: FieldChange {
                    path: format!("{prefix}.{key}"),
                    before: live.get(key).map(|v| FieldValue::known(v.clone())),
                    after: FieldValue::known(want.clone()),
                },
                fate: fate(key),
            });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The field changes, as the plan shows them.
    pub fn changes(&self) -> Vec<FieldChange> {
        self.fields.iter().map(|f| f.change.clone()).collect()
    }

    /// Why the update cannot be made in place, one clause per blocked field; `None` when it can.
    pub fn blocked(&self) -> Option<String> {
        let reasons: Vec<String> = self
            .fields
            .iter()
            .filter_map(|f| match &f.fate {
                Fate::Blocked(reason) => Some(format!(
                    "{}: {} → {} cannot be made in place: {reason}",
                    f.change.path,
                    f.change
                        .before
                        .as_ref()
                        .map_or_else(|| "(unset)".to_owned(), ToString::to_string),
                    f.change.after
                )),
                Fate::Send(_) | Fate::Tag => None,
            })
            .collect();
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }

    /// The `UpdateDomainConfig` blocks to send.
    pub fn blocks(&self) -> BTreeSet<Block> {
        self.fields
            .iter()
            .filter_map(|f| match f.fate {
                Fate::Send(block) => Some(block),
                Fate::Tag | Fate::Blocked(_) => None,
            })
            .collect()
    }

    /// The tags to add (empty: no `AddTags` call).
    pub fn tags(&self, desired: &DomainShape) -> Vec<os::Tag> {
        self.fields
            .iter()
            .filter(|f| f.fate == Fate::Tag)
            .filter_map(|f| f.change.path.strip_prefix("tags."))
            .filter_map(|key| {
                let value = desired.tags.get(key)?;
                os::Tag::builder().key(key).value(value).build().ok()
            })
            .collect()
    }

    /// Fills `request` with every block this update sends, from the desired shape laid over
    /// the live one (a block sent carries the live value of every field the plan does not
    /// fix); `None` when no block is to be sent (only tags, or nothing).
    pub fn request(
        &self,
        request: UpdateDomainConfigFluentBuilder,
        live: &DomainShape,
        desired: &DomainShape,
    ) -> Option<UpdateDomainConfigFluentBuilder> {
        let blocks = self.blocks();
        if blocks.is_empty() {
            return None;
        }
        let shape = overlaid(desired, live);
        let mut request = request;
        for block in blocks {
            request = match block {
                Block::ClusterConfig => request.cluster_config(cluster_config(&shape)),
                Block::EbsOptions => request.ebs_options(ebs_options(&shape)),
                Block::VpcOptions => request.vpc_options(
                    os::VpcOptions::builder()
                        .set_subnet_ids(shape.subnet_ids.clone())
                        .set_security_group_ids(shape.security_group_ids.clone())
                        .build(),
                ),
                Block::EncryptionAtRestOptions => request.encryption_at_rest_options(
                    os::EncryptionAtRestOptions::builder()
                        .set_enabled(shape.encryption_at_rest)
                        .set_kms_key_id(shape.kms_key_id.clone())
                        .build(),
                ),
                Block::NodeToNodeEncryptionOptions => request.node_to_node_encryption_options(
                    os::NodeToNodeEncryptionOptions::builder()
                        .set_enabled(shape.node_to_node_encryption)
                        .build(),
                ),
                Block::DomainEndpointOptions => request.domain_endpoint_options(
                    os::DomainEndpointOptions::builder()
                        .set_enforce_https(shape.enforce_https)
                        .set_tls_security_policy(
                            shape
                                .tls_security_policy
                                .as_deref()
                                .map(os::TlsSecurityPolicy::from),
                        )
                        .build(),
                ),
                Block::AdvancedOptions => request.set_advanced_options(Some(
                    shape.advanced_options.clone().into_iter().collect(),
                )),
                Block::AccessPolicies => {
                    request.set_access_policies(shape.access_policy.as_ref().map(Value::to_string))
                }
            };
        }
        Some(request)
    }
}

/// The desired shape laid over the live one: each setting the plan fixes, else the live value;
/// advanced options and tags merged (the plan's win).
fn overlaid(desired: &DomainShape, live: &DomainShape) -> DomainShape {
    let DomainShape {
        engine_version,
        instance_type,
        instance_count,
        dedicated_master_enabled,
        dedicated_master_type,
        dedicated_master_count,
        zone_awareness_enabled,
        availability_zone_count,
        ebs_enabled,
        volume_type,
        volume_size,
        iops,
        throughput,
        subnet_ids,
        security_group_ids,
        encryption_at_rest,
        kms_key_id,
        node_to_node_encryption,
        enforce_https,
        tls_security_policy,
        advanced_options,
        access_policy,
        tags,
        fine_grained_access_control,
        internal_user_database,
        master_user,
        master_user_password_from,
    } = desired.clone();
    let mut merged_options = live.advanced_options.clone();
    merged_options.extend(advanced_options);
    let mut merged_tags = live.tags.clone();
    merged_tags.extend(tags);
    DomainShape {
        engine_version: engine_version.or_else(|| live.engine_version.clone()),
        instance_type: instance_type.or_else(|| live.instance_type.clone()),
        instance_count: instance_count.or(live.instance_count),
        dedicated_master_enabled: dedicated_master_enabled.or(live.dedicated_master_enabled),
        dedicated_master_type: dedicated_master_type.or_else(|| live.dedicated_master_type.clone()),
        dedicated_master_count: dedicated_master_count.or(live.dedicated_master_count),
        zone_awareness_enabled: zone_awareness_enabled.or(live.zone_awareness_enabled),
        availability_zone_count: availability_zone_count.or(live.availability_zone_count),
        ebs_enabled: ebs_enabled.or(live.ebs_enabled),
        volume_type: volume_type.or_else(|| live.volume_type.clone()),
        volume_size: volume_size.or(live.volume_size),
        iops: iops.or(live.iops),
        throughput: throughput.or(live.throughput),
        subnet_ids: subnet_ids.or_else(|| live.subnet_ids.clone()),
        security_group_ids: security_group_ids.or_else(|| live.security_group_ids.clone()),
        encryption_at_rest: encryption_at_rest.or(live.encryption_at_rest),
        kms_key_id: kms_key_id.or_else(|| live.kms_key_id.clone()),
        node_to_node_encryption: node_to_node_encryption.or(live.node_to_node_encryption),
        enforce_https: enforce_https.or(live.enforce_https),
        tls_security_policy: tls_security_policy.or_else(|| live.tls_security_policy.clone()),
        advanced_options: merged_options,
        access_policy: access_policy.or_else(|| live.access_policy.clone()),
        tags: merged_tags,
        fine_grained_access_control: fine_grained_access_control
            .or(live.fine_grained_access_control),
        internal_user_database: internal_user_database.or(live.internal_user_database),
        master_user,
        master_user_password_from,
    }
}
