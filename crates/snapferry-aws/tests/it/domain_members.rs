//! No silent drop: every member of AWS's `DomainStatus` and `DomainConfig` (read from the
//! vendored botocore model, not retyped) is decided by the clone's table — copied into a
//! `DomainShape` field, describing the source, or not copied with a reason — and a member the
//! source uses but the copy will not get is what `plan` lists.

use std::collections::BTreeSet;

use aws_sdk_opensearch::types as os;
use serde_json::Value;
use snapferry_aws::resources::DomainShape;
use snapferry_aws::resources::members::{self, Handling};

fn model() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../snapferry-sandbox/models/opensearch-2021-01-01.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("the vendored model"))
        .expect("the model is JSON")
}

/// The dotted paths of every leaf member under `shape` (structures are walked, lists, maps
/// and scalars are leaves).
fn walk(shapes: &Value, shape: &str, prefix: &str, out: &mut BTreeSet<String>) {
    let s = &shapes[shape];
    if s["type"] != "structure" || prefix.matches('.').count() > 4 {
        out.insert(prefix.to_owned());
        return;
    }
    for (name, member) in s["members"].as_object().expect("members") {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        walk(shapes, member["shape"].as_str().expect("shape"), &path, out);
    }
}

fn every_member() -> BTreeSet<String> {
    let model = model();
    let shapes = &model["shapes"];
    let mut out = BTreeSet::new();
    walk(shapes, "DomainStatus", "", &mut out);
    // DomainConfig wraps each block as `{Options, Status}`: the options are what a domain has.
    for (name, member) in shapes["DomainConfig"]["members"].as_object().unwrap() {
        let wrapper = &shapes[member["shape"].as_str().unwrap()];
        match wrapper["members"]["Options"]["shape"].as_str() {
            Some(options) => walk(shapes, options, name, &mut out),
            None => walk(shapes, member["shape"].as_str().unwrap(), name, &mut out),
        }
    }
    out
}

#[test]
fn every_member_of_the_models_domain_shapes_is_copied_status_or_listed_with_a_reason() {
    let all = every_member();
    assert!(
        all.len() > 100,
        "the walk found the model's members: {all:?}"
    );
    for needle in [
        "CognitoOptions.UserPoolId",
        "LogPublishingOptions",
        "AdvancedSecurityOptions.SAMLOptions.Idp.EntityId",
    ] {
        assert!(all.contains(needle), "{needle} is in the walk");
    }
    let unhandled: Vec<&String> = all
        .iter()
        .filter(|p| members::handling(p).is_none())
        .collect();
    assert!(
        unhandled.is_empty(),
        "members the clone neither copies nor lists (decide each in resources/domain/members.rs): {unhandled:?}"
    );
    // A reason is one line, and every listed path is a member of the model.
    for (path, handling, _) in members::MEMBERS {
        assert!(
            all.iter()
                .any(|m| m == path || m.starts_with(&format!("{path}."))),
            "{path} is not a member of the model"
        );
        if let Handling::NotCopied(reason) = handling {
            assert!(
                !reason.is_empty() && !reason.contains('\n'),
                "{path}: {reason:?}"
            );
        }
    }
}

#[test]
fn every_copied_member_names_a_field_of_the_domain_shape() {
    let shape = DomainShape {
        fine_grained_access_control: Some(true),
        internal_user_database: Some(true),
        ..DomainShape::default()
    };
    let fields: BTreeSet<String> = serde_json::to_value(shape)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for (path, handling, _) in members::MEMBERS {
        if let Handling::Copied(field) = handling {
            assert!(
                fields.contains(*field),
                "{path} → {field} is not a DomainShape field"
            );
        }
    }
}

#[test]
fn what_the_source_uses_and_the_copy_does_not_get_is_listed_with_its_reason() {
    let status = |cognito: bool, custom: bool| {
        os::DomainStatus::builder()
            .domain_id("123456789012/shop-prod")
            .domain_name("shop-prod")
            .arn("arn:aws:es:us-east-1:123456789012:domain/shop-prod")
            .cluster_config(os::ClusterConfig::builder().build())
            .cognito_options(os::CognitoOptions::builder().enabled(cognito).build())
            .domain_endpoint_options(
                os::DomainEndpointOptions::builder()
                    .custom_endpoint_enabled(custom)
                    .build(),
            )
            .build()
            .unwrap()
    };
    assert_eq!(members::not_copied_in_use(&status(false, false)), vec![]);
    let listed = members::not_copied_in_use(&status(true, true));
    let paths: Vec<&str> = listed.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "CognitoOptions",
            "DomainEndpointOptions.CustomEndpointEnabled"
        ]
    );
    assert!(listed[0].1.contains("Cognito"), "{}", listed[0].1);
}
