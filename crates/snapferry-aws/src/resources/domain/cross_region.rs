//! The cross-Region rule of the domain clone: KMS keys, subnets and security groups are
//! regional, so a target in another Region than its source can use none of the source's. The
//! clone copies them only within a Region; across Regions the plan must name the target's own
//! (`target.overrides`), or `plan` blocks naming the setting and the fix. A KMS key ARN of
//! another Region is refused in an explicit configuration too, as `CreateDomain` refuses it, and
//! so is a subnet or security group the plan names that is the source's own (of the source's
//! Region). A subnet id says nothing of its Region otherwise: one of another Region or account
//! is refused by `CreateDomain` as not existing, and [`vpc_not_found`] adds the fix to that.

use snapferry_plan::{DomainConfig, DomainCreation};

use super::DomainShape;

/// Why the target cannot be created with `shape` in `target_region` (copied from a source in
/// `source_region` under `creation`), or `None`. Called from `DomainResource::desired` once
/// the shape is built (a `Some` shows the domain step blocked).
pub(super) fn regional_settings_problem(
    domain: &str,
    source_region: &str,
    target_region: &str,
    creation: &DomainCreation,
    shape: &DomainShape,
    source_vpc_ids: &[String],
) -> Option<String> {
    let key_region = |key: &str| key.split(':').nth(3).map(str::to_owned);
    if let Some(key) = &shape.kms_key_id
        && shape.encryption_at_rest == Some(true)
        && let Some(region) = key_region(key)
        && region != target_region
    {
        return Some(format!(
            "target domain {domain} is in {target_region} but its configuration uses KMS key \
             {key} of {region} (encryption_at_rest.kms_key_id): KMS keys are regional and \
             CreateDomain refuses a key of another Region; set \
             `target.{}.encryption_at_rest.kms_key_id` to a key in {target_region}, or \
             `encryption_at_rest: {{enabled: true}}` without a key for the AWS-managed key",
            section(creation)
        ));
    }
    if source_region != target_region
        && let Some(id) = shape
            .subnet_ids
            .iter()
            .chain(&shape.security_group_ids)
            .flatten()
            .find(|id| source_vpc_ids.contains(id))
        && !matches!(creation, DomainCreation::FromSource { overrides } if overrides.vpc.is_none())
    {
        return Some(format!(
            "target domain {domain} is in {target_region} but its `vpc` names {id}, which the \
             source domain uses in {source_region}: subnets and security groups are regional, \
             so CreateDomain would answer that it does not exist; set \
             `target.{}.vpc.subnet_ids` and `security_group_ids` to ones in {target_region}",
            section(creation)
        ));
    }
    let DomainCreation::FromSource { overrides } = creation else {
        return None;
    };
    if source_region == target_region {
        return None;
    }
    // An overridden setting is the plan's own; a copied one is the source Region's.
    let copied_key = !overrides_key(overrides) && shape.kms_key_id.is_some();
    if copied_key && shape.encryption_at_rest == Some(true) {
        return Some(format!(
            "target domain {domain} is in {target_region} but would copy the KMS key of source \
             Region {source_region} (encryption_at_rest.kms_key_id {}): KMS keys are regional; \
             set `target.overrides.encryption_at_rest.kms_key_id` to a key in {target_region}, \
             or `target.overrides.encryption_at_rest: {{enabled: true}}` for the AWS-managed key",
            shape.kms_key_id.as_deref().unwrap_or_default()
        ));
    }
    if overrides.vpc.is_none()
        && let Some(subnets) = shape.subnet_ids.as_ref().filter(|s| !s.is_empty())
    {
        return Some(format!(
            "target domain {domain} is in {target_region} but would copy the VPC subnets {} \
             (and security groups {}) of source Region {source_region} (vpc): subnets and \
             security groups are regional; set `target.overrides.vpc.subnet_ids` and \
             `security_group_ids` to ones in {target_region}",
            subnets.join(", "),
            shape
                .security_group_ids
                .as_deref()
                .unwrap_or_default()
                .join(", ")
        ));
    }
    None
}

/// CreateDomain's or UpdateDomainConfig's refusal of a subnet or security group it cannot find
/// (`message`, AWS's text), with where it looked and the fix; `None` for any other refusal.
pub(super) fn vpc_not_found(
    message: &str,
    domain: &str,
    account: &str,
    region: &str,
    creation: &DomainCreation,
) -> Option<String> {
    let vpc_id = message.contains("The subnet ID '") || message.contains("The security group '");
    (vpc_id && message.contains("does not exist")).then(|| {
        format!(
            "{message}. Domain {domain} is created in account {account}, {region}, and a \
             subnet or security group exists only in its own account and Region; set \
             `target.{}.vpc.subnet_ids` and `security_group_ids` to ones of account {account} \
             in {region}",
            section(creation)
        )
    })
}

fn overrides_key(overrides: &DomainConfig) -> bool {
    overrides.encryption_at_rest.is_some()
}

fn section(creation: &DomainCreation) -> &'static str {
    match creation {
        DomainCreation::FromSource { .. } => "overrides",
        DomainCreation::Explicit { .. } => "configuration",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encrypted(key: &str) -> DomainShape {
        DomainShape {
            encryption_at_rest: Some(true),
            kms_key_id: Some(key.into()),
            ..DomainShape::default()
        }
    }

    fn from_source(overrides: DomainConfig) -> DomainCreation {
        DomainCreation::FromSource { overrides }
    }

    const KEY: &str = "arn:aws:kms:us-east-1:111111111111:key/k";

    #[test]
    fn a_copied_key_of_the_source_region_blocks_naming_the_setting_and_the_fix() {
        let why = regional_settings_problem(
            "staging",
            "us-east-1",
            "eu-west-1",
            &from_source(DomainConfig::default()),
            &encrypted(KEY),
            &[],
        )
        .expect("blocked");
        assert!(why.contains("KMS key arn:aws:kms:us-east-1:111111111111:key/k of us-east-1"));
        assert!(
            why.contains("`target.overrides.encryption_at_rest.kms_key_id` to a key in eu-west-1")
        );
    }

    #[test]
    fn within_a_region_or_with_the_plans_own_settings_nothing_blocks() {
        assert_eq!(
            regional_settings_problem(
                "staging",
                "us-east-1",
                "us-east-1",
                &from_source(DomainConfig::default()),
                &encrypted(KEY),
                &[],
            ),
            None
        );
        let own = "arn:aws:kms:eu-west-1:222222222222:key/mine";
        let overrides: DomainConfig = DomainConfig {
            encryption_at_rest: Some(snapferry_plan::raw::EncryptionAtRest {
                enabled: true,
                kms_key_id: Some(own.into()),
            }),
            ..DomainConfig::default()
        };
        assert_eq!(
            regional_settings_problem(
                "staging",
                "us-east-1",
                "eu-west-1",
                &from_source(overrides),
                &encrypted(own),
                &[],
            ),
            None
        );
    }

    #[test]
    fn copied_subnets_block_across_regions() {
        let shape = DomainShape {
            subnet_ids: Some(vec!["subnet-1".into()]),
            security_group_ids: Some(vec!["sg-1".into()]),
            ..DomainShape::default()
        };
        let why = regional_settings_problem(
            "staging",
            "us-east-1",
            "eu-west-1",
            &from_source(DomainConfig::default()),
            &shape,
            &[],
        )
        .expect("blocked");
        assert!(
            why.contains("subnets subnet-1 (and security groups sg-1)"),
            "{why}"
        );
        assert!(why.contains("`target.overrides.vpc.subnet_ids`"), "{why}");
    }

    #[test]
    fn the_sources_own_subnet_named_for_a_target_in_another_region_blocks() {
        let shape = DomainShape {
            subnet_ids: Some(vec!["subnet-east".into()]),
            security_group_ids: Some(vec!["sg-west".into()]),
            ..DomainShape::default()
        };
        let overrides = DomainConfig {
            vpc: Some(snapferry_plan::raw::VpcConfig {
                subnet_ids: vec!["subnet-east".into()],
                security_group_ids: vec!["sg-west".into()],
            }),
            ..DomainConfig::default()
        };
        let source_vpc = ["subnet-east".to_owned(), "sg-east".to_owned()];
        let why = regional_settings_problem(
            "staging",
            "us-east-1",
            "eu-west-1",
            &from_source(overrides.clone()),
            &shape,
            &source_vpc,
        )
        .expect("blocked");
        assert!(
            why.contains("its `vpc` names subnet-east, which the source domain uses in us-east-1"),
            "{why}"
        );
        assert!(why.contains("`target.overrides.vpc.subnet_ids`"), "{why}");
        // Within one Region the source's subnets are the target's to use.
        assert_eq!(
            regional_settings_problem(
                "staging",
                "eu-west-1",
                "eu-west-1",
                &from_source(overrides),
                &shape,
                &source_vpc,
            ),
            None
        );
    }

    #[test]
    fn a_subnet_aws_cannot_find_gets_where_it_looked_and_the_fix() {
        let why = vpc_not_found(
            "ValidationException: The subnet ID 'subnet-9' does not exist",
            "staging",
            "222222222222",
            "eu-west-1",
            &from_source(DomainConfig::default()),
        )
        .expect("explained");
        assert!(
            why.ends_with(
                "set `target.overrides.vpc.subnet_ids` and `security_group_ids` to ones of \
                 account 222222222222 in eu-west-1"
            ),
            "{why}"
        );
        assert_eq!(
            vpc_not_found(
                "ValidationException: You must specify exactly one subnet.",
                "staging",
                "222222222222",
                "eu-west-1",
                &from_source(DomainConfig::default()),
            ),
            None
        );
    }
}
