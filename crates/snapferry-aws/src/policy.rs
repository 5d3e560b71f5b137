//! The IAM and S3 policy documents snapferry writes, built and compared without any I/O.
//!
//! Three documents matter for a manual snapshot: the role's trust policy (who may assume it),
//! the role's inline permissions (what it may do in the bucket) and the bucket policy (what the
//! bucket lets the role do). They are pure functions of the plan so they can be unit-tested and
//! shown in `plan` before anything is called.
//!
//! Bucket policies are shared with other owners, so snapferry only ever touches statements whose
//! `Sid` starts with its own prefix ([`merge_owned_statements`], [`remove_owned_statements`]).
//! IAM returns documents rewritten (URL-encoded, one-element arrays collapsed, keys reordered),
//! so every comparison goes through [`normalize`] — a textual comparison would report drift
//! that isn't there and rewrite policies on every run.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

/// The policy language version every document is written in.
pub const POLICY_VERSION: &str = "2012-10-17";

/// The service principal Amazon OpenSearch Service assumes snapshot roles as.
pub const OPENSEARCH_SERVICE_PRINCIPAL: &str = "es.amazonaws.com";

/// Errors reading a policy document someone else wrote.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The document is not JSON (after URL-decoding, when it came URL-encoded).
    #[error("policy document of {owner} is not valid JSON")]
    NotJson {
        /// What the document belongs to (a bucket, a role).
        owner: String,
        /// The JSON parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A KMS key given by alias: IAM grants key use by key ARN, so an alias can't be used.
    #[error(
        "the bucket's KMS key {key} is an alias; give its key id or key ARN (IAM grants the use \
         of a key by its key ARN, not by alias)"
    )]
    KmsAlias {
        /// The key as given in the plan.
        key: String,
    },
    /// The document is JSON but not a policy (`Statement` missing or not an object/array).
    #[error("policy document of {owner} has no `Statement` object or array")]
    NoStatements {
        /// What the document belongs to.
        owner: String,
    },
}

/// The AWS partition an ARN lives in, derived from a region so cross-region copies into China
/// or GovCloud get the right ARNs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Partition {
    /// Commercial regions: `arn:aws:`.
    Aws,
    /// China regions (`cn-*`): `arn:aws-cn:`.
    AwsCn,
    /// GovCloud regions (`us-gov-*`): `arn:aws-us-gov:`.
    AwsUsGov,
}

impl Partition {
    /// The partition a region belongs to.
    pub fn from_region(region: &str) -> Self {
        if region.starts_with("cn-") {
            Partition::AwsCn
        } else if region.starts_with("us-gov-") {
            Partition::AwsUsGov
        } else {
            Partition::Aws
        }
    }

    /// The partition as it appears in ARNs.
    pub fn as_str(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::AwsCn => "aws-cn",
            Partition::AwsUsGov => "aws-us-gov",
        }
    }
}

/// Where snapshots live: the bucket, its partition and the optional key prefix (`base_path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotLocation {
    /// Partition of the bucket's region.
    pub partition: Partition,
    /// Bucket name.
    pub bucket: String,
    /// Key prefix without leading or trailing `/`; `None` for the whole bucket.
    pub base_path: Option<String>,
}

impl SnapshotLocation {
    /// A location; `base_path` is trimmed of `/` and an empty one means the whole bucket.
    pub fn new(partition: Partition, bucket: impl Into<String>, base_path: Option<&str>) -> Self {
        let base_path = base_path
            .map(|p| p.trim_matches('/').to_owned())
            .filter(|p| !p.is_empty());
        SnapshotLocation {
            partition,
            bucket: bucket.into(),
            base_path,
        }
    }

    /// `arn:<partition>:s3:::<bucket>`, the resource of `s3:ListBucket`.
    pub fn bucket_arn(&self) -> String {
        format!("arn:{}:s3:::{}", self.partition.as_str(), self.bucket)
    }

    /// `arn:<partition>:s3:::<bucket>/<base_path>/*`, the resource of the object actions.
    pub fn objects_arn(&self) -> String {
        match &self.base_path {
            Some(base) => format!("{}/{base}/*", self.bucket_arn()),
            None => format!("{}/*", self.bucket_arn()),
        }
    }

    /// The `s3:prefix` condition that limits listing to the base path, if there is one.
    fn list_condition(&self) -> Option<Value> {
        self.base_path.as_ref().map(
            |base| json!({"StringLike": {"s3:prefix": [format!("{base}/"), format!("{base}/*")]}}),
        )
    }
}

/// `arn:<partition>:iam::<account>:role/<name>` (`path` like `/service-role/`, default `/`).
pub fn role_arn(partition: Partition, account_id: &str, path: Option<&str>, name: &str) -> String {
    let path = path.unwrap_or("/");
    format!(
        "arn:{}:iam::{account_id}:role{path}{name}",
        partition.as_str()
    )
}

/// The ARN of the bucket's KMS key, for the role's `kms:` statement: a key ARN is kept, a bare
/// key id (`1234abcd-...`, `mrk-...`) becomes `arn:<partition>:kms:<region>:<account>:key/<id>`;
/// an alias is refused because IAM evaluates key use against the key ARN.
pub fn kms_key_arn(
    partition: Partition,
    region: &str,
    account_id: &str,
    key: &str,
) -> Result<String, PolicyError> {
    let alias = || PolicyError::KmsAlias {
        key: key.to_owned(),
    };
    if key.starts_with("alias/") || (key.starts_with("arn:") && key.contains(":alias/")) {
        return Err(alias());
    }
    if key.starts_with("arn:") {
        return Ok(key.to_owned());
    }
    Ok(format!(
        "arn:{}:kms:{region}:{account_id}:key/{key}",
        partition.as_str()
    ))
}

/// The trust policy of the snapshot role: `es.amazonaws.com` (plus `extra_services`) may assume
/// it, but only on behalf of `account_id` — the confused-deputy guard AWS recommends.
pub fn trust_policy(account_id: &str, extra_services: &[String]) -> Value {
    let mut services: Vec<&str> = vec![OPENSEARCH_SERVICE_PRINCIPAL];
    for extra in extra_services {
        if !services.contains(&extra.as_str()) {
            services.push(extra);
        }
    }
    let service = if services.len() == 1 {
        json!(services[0])
    } else {
        json!(services)
    };
    json!({
        "Version": POLICY_VERSION,
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}}
        }]
    })
}

/// The snapshot role's inline policy: list the bucket (under the base path), read/write/delete
/// objects under the base path, and use the bucket's KMS key when it is SSE-KMS. Never `s3:*`.
pub fn role_inline_policy(location: &SnapshotLocation, kms_key_arn: Option<&str>) -> Value {
    let mut list = json!({
        "Sid": "ListSnapshotBucket",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": location.bucket_arn()
    });
    if let Some(condition) = location.list_condition() {
        list["Condition"] = condition;
    }
    let mut statements = vec![
        list,
        json!({
            "Sid": "ReadWriteSnapshotObjects",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": location.objects_arn()
        }),
    ];
    if let Some(key) = kms_key_arn {
        statements.push(json!({
            "Sid": "UseSnapshotBucketKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": key
        }));
    }
    json!({"Version": POLICY_VERSION, "Statement": statements})
}

/// The `Sid` prefix that marks a bucket-policy statement as snapferry's, per plan name, so two
/// plans sharing a bucket never touch each other's statements.
pub fn owned_sid_prefix(plan_name: &str) -> String {
    format!("snapferry-{plan_name}-")
}

/// The bucket-policy statements that let the snapshot roles (`role_arns`, usually one, two for a
/// cross-account target) use the snapshot location. Their `Sid`s start with `sid_prefix`.
pub fn bucket_policy_statements(
    sid_prefix: &str,
    location: &SnapshotLocation,
    role_arns: &[String],
) -> Vec<Value> {
    let principal = if role_arns.len() == 1 {
        json!({"AWS": role_arns[0]})
    } else {
        json!({"AWS": role_arns})
    };
    let mut list = json!({
        "Sid": format!("{sid_prefix}list"),
        "Effect": "Allow",
        "Principal": principal.clone(),
        "Action": "s3:ListBucket",
        "Resource": location.bucket_arn()
    });
    if let Some(condition) = location.list_condition() {
        list["Condition"] = condition;
    }
    let objects = json!({
        "Sid": format!("{sid_prefix}objects"),
        "Effect": "Allow",
        "Principal": principal,
        "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        "Resource": location.objects_arn()
    });
    vec![list, objects]
}

/// What a merge or removal did to a bucket policy, by `Sid`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatementDiff {
    /// Our statements that were not there.
    pub added: Vec<String>,
    /// Our statements that were there with other content.
    pub changed: Vec<String>,
    /// Our statements already there as wanted.
    pub unchanged: Vec<String>,
    /// Statements with our prefix that are no longer wanted (or, on destroy, all of ours).
    pub removed: Vec<String>,
}

impl StatementDiff {
    /// Whether the policy must be written.
    pub fn has_changes(&self) -> bool {
        let StatementDiff {
            added,
            changed,
            unchanged: _,
            removed,
        } = self;
        !(added.is_empty() && changed.is_empty() && removed.is_empty())
    }
}

/// The result of merging our statements into a bucket policy.
#[derive(Debug, Clone, PartialEq)]
pub struct MergedPolicy {
    /// The full policy to put (foreign statements untouched, in their order).
    pub policy: Value,
    /// What changed, by `Sid`.
    pub diff: StatementDiff,
}

/// What to do with a bucket policy after removing our statements.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyAfterRemoval {
    /// Nothing of ours was there: leave the policy alone.
    Unchanged,
    /// Put this policy (foreign statements remain).
    Put(Value),
    /// Only our statements were there: delete the bucket policy (an empty one can't be put).
    Delete,
}

/// Parses a policy document as IAM or S3 returns it: plain JSON, or URL-encoded JSON (IAM's
/// `GetRole`/`GetRolePolicy`).
pub fn parse_policy_document(owner: &str, text: &str) -> Result<Value, PolicyError> {
    let trimmed = text.trim_start();
    let decoded;
    let json_text = if trimmed.starts_with('{') {
        trimmed
    } else {
        decoded = percent_encoding::percent_decode_str(trimmed)
            .decode_utf8_lossy()
            .into_owned();
        decoded.as_str()
    };
    serde_json::from_str(json_text).map_err(|source| PolicyError::NotJson {
        owner: owner.to_owned(),
        source,
    })
}

fn statements_of(owner: &str, policy: &Value) -> Result<Vec<Value>, PolicyError> {
    match policy.get("Statement") {
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(single @ Value::Object(_)) => Ok(vec![single.clone()]),
        _ => Err(PolicyError::NoStatements {
            owner: owner.to_owned(),
        }),
    }
}

fn sid_of(statement: &Value) -> Option<&str> {
    statement.get("Sid").and_then(Value::as_str)
}

/// Merges `ours` (statements whose `Sid`s start with `sid_prefix`) into the bucket's `existing`
/// policy (`None` when the bucket has none). Foreign statements are kept as they are, in their
/// order; ours replace same-`Sid` statements in place; new ones are appended; statements with our
/// prefix that are not in `ours` are removed. An unchanged statement keeps its existing text.
pub fn merge_owned_statements(
    owner: &str,
    existing: Option<&Value>,
    sid_prefix: &str,
    ours: &[Value],
) -> Result<MergedPolicy, PolicyError> {
    let mut diff = StatementDiff::default();
    let (mut base, current) = match existing {
        Some(policy) => (policy.clone(), statements_of(owner, policy)?),
        None => (json!({"Version": POLICY_VERSION}), Vec::new()),
    };
    let wanted: BTreeMap<&str, &Value> = ours
        .iter()
        .filter_map(|s| sid_of(s).map(|sid| (sid, s)))
        .collect();
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut statements = Vec::with_capacity(current.len() + ours.len());
    for statement in current {
        let Some(sid) = sid_of(&statement).filter(|sid| sid.starts_with(sid_prefix)) else {
            statements.push(statement);
            continue;
        };
        match wanted.get_key_value(sid) {
            Some((&key, want)) if !placed.contains(key) => {
                placed.insert(key);
                if normalize(&statement) == normalize(want) {
                    diff.unchanged.push(key.to_owned());
                    statements.push(statement);
                } else {
                    diff.changed.push(key.to_owned());
                    statements.push((*want).clone());
                }
            }
            _ => diff.removed.push(sid.to_owned()),
        }
    }
    for statement in ours {
        let sid = sid_of(statement).unwrap_or_default();
        if !placed.contains(sid) {
            diff.added.push(sid.to_owned());
            statements.push(statement.clone());
        }
    }
    if let Value::Object(map) = &mut base {
        map.insert("Statement".to_owned(), Value::Array(statements));
    }
    Ok(MergedPolicy { policy: base, diff })
}

/// Removes every statement whose `Sid` starts with `sid_prefix` (destroy). Says whether to put
/// the rest, delete the policy (nothing left) or leave it alone.
pub fn remove_owned_statements(
    owner: &str,
    existing: Option<&Value>,
    sid_prefix: &str,
) -> Result<(PolicyAfterRemoval, StatementDiff), PolicyError> {
    let mut diff = StatementDiff::default();
    let Some(policy) = existing else {
        return Ok((PolicyAfterRemoval::Unchanged, diff));
    };
    let mut kept = Vec::new();
    for statement in statements_of(owner, policy)? {
        match sid_of(&statement).filter(|sid| sid.starts_with(sid_prefix)) {
            Some(sid) => diff.removed.push(sid.to_owned()),
            None => kept.push(statement),
        }
    }
    let after = if diff.removed.is_empty() {
        PolicyAfterRemoval::Unchanged
    } else if kept.is_empty() {
        PolicyAfterRemoval::Delete
    } else {
        let mut rest = policy.clone();
        rest["Statement"] = Value::Array(kept);
        PolicyAfterRemoval::Put(rest)
    };
    Ok((after, diff))
}

/// The canonical form of a policy (or any part of one) for comparison, the way IAM treats it:
/// object key order is irrelevant, a one-element array equals its element, arrays of values are
/// sets (order and duplicates irrelevant), and scalars compare as strings (`true` = `"true"`).
/// The `Statement` list becomes a sorted array too (statement order has no meaning).
pub fn normalize(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut sorted: BTreeMap<String, Value> = BTreeMap::new();
            for (key, item) in map {
                let item = if key == "Statement" && item.is_object() {
                    Value::Array(vec![item.clone()])
                } else {
                    item.clone()
                };
                sorted.insert(key.clone(), normalize(&item));
            }
            Value::Object(sorted.into_iter().collect::<Map<String, Value>>())
        }
        Value::Array(items) => {
            let mut set: BTreeMap<String, Value> = BTreeMap::new();
            for item in items {
                let item = normalize(item);
                set.insert(item.to_string(), item);
            }
            if set.len() == 1 && !items.iter().any(Value::is_object) {
                set.into_values().next().unwrap_or(Value::Null)
            } else {
                Value::Array(set.into_values().collect())
            }
        }
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Number(n) => Value::String(n.to_string()),
        other => other.clone(),
    }
}

/// Whether two policy documents mean the same thing (see [`normalize`]).
pub fn same_policy(a: &Value, b: &Value) -> bool {
    normalize(a) == normalize(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(base: Option<&str>) -> SnapshotLocation {
        SnapshotLocation::new(Partition::Aws, "snaps", base)
    }

    #[test]
    fn partitions_follow_the_region() {
        assert_eq!(Partition::from_region("eu-west-1").as_str(), "aws");
        assert_eq!(Partition::from_region("cn-north-1").as_str(), "aws-cn");
        assert_eq!(
            Partition::from_region("us-gov-west-1").as_str(),
            "aws-us-gov"
        );
        let cn = SnapshotLocation::new(Partition::from_region("cn-northwest-1"), "b", Some("/x/"));
        assert_eq!(cn.bucket_arn(), "arn:aws-cn:s3:::b");
        assert_eq!(cn.objects_arn(), "arn:aws-cn:s3:::b/x/*");
        assert_eq!(
            role_arn(Partition::AwsUsGov, "123456789012", None, "snap"),
            "arn:aws-us-gov:iam::123456789012:role/snap"
        );
        assert_eq!(
            role_arn(Partition::Aws, "1", Some("/service-role/"), "r"),
            "arn:aws:iam::1:role/service-role/r"
        );
    }

    #[test]
    fn kms_keys_become_key_arns_and_aliases_are_refused() {
        assert_eq!(
            kms_key_arn(Partition::Aws, "eu-west-1", "123456789012", "1234abcd-12ab").unwrap(),
            "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab"
        );
        assert_eq!(
            kms_key_arn(Partition::AwsCn, "cn-north-1", "1", "mrk-1").unwrap(),
            "arn:aws-cn:kms:cn-north-1:1:key/mrk-1"
        );
        let arn = "arn:aws:kms:us-east-1:9:key/k";
        assert_eq!(
            kms_key_arn(Partition::Aws, "eu-west-1", "1", arn).unwrap(),
            arn
        );
        for alias in ["alias/snaps", "arn:aws:kms:us-east-1:9:alias/snaps"] {
            let err = kms_key_arn(Partition::Aws, "us-east-1", "9", alias).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "the bucket's KMS key {alias} is an alias; give its key id or key ARN (IAM \
                     grants the use of a key by its key ARN, not by alias)"
                )
            );
        }
    }

    #[test]
    fn trust_policy_names_the_service_and_the_source_account() {
        let doc = trust_policy("123456789012", &[]);
        assert_eq!(
            doc,
            json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Service": "es.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}
                }]
            })
        );
        let more = trust_policy(
            "1",
            &[
                "opensearchservice.amazonaws.com".into(),
                "es.amazonaws.com".into(),
            ],
        );
        assert_eq!(
            more["Statement"][0]["Principal"]["Service"],
            json!(["es.amazonaws.com", "opensearchservice.amazonaws.com"])
        );
    }

    #[test]
    fn inline_policy_is_scoped_to_the_base_path_and_never_wildcards_s3() {
        let doc = role_inline_policy(&location(Some("/prod/snaps/")), None);
        assert_eq!(
            doc["Statement"],
            json!([
                {
                    "Sid": "ListSnapshotBucket",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": "arn:aws:s3:::snaps",
                    "Condition": {"StringLike": {"s3:prefix": ["prod/snaps/", "prod/snaps/*"]}}
                },
                {
                    "Sid": "ReadWriteSnapshotObjects",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    "Resource": "arn:aws:s3:::snaps/prod/snaps/*"
                }
            ])
        );
        let text = doc.to_string();
        assert!(!text.contains("s3:*"), "{text}");
        assert!(!text.contains("kms"), "{text}");
    }

    #[test]
    fn inline_policy_without_base_path_or_with_kms() {
        let key = "arn:aws:kms:eu-west-1:1:key/abc";
        let doc = role_inline_policy(&location(Some("/")), Some(key));
        assert!(doc["Statement"][0].get("Condition").is_none());
        assert_eq!(doc["Statement"][1]["Resource"], "arn:aws:s3:::snaps/*");
        assert_eq!(
            doc["Statement"][2],
            json!({
                "Sid": "UseSnapshotBucketKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": key
            })
        );
    }

    fn ours(prefix: &str) -> Vec<Value> {
        bucket_policy_statements(
            prefix,
            &location(Some("base")),
            &["arn:aws:iam::1:role/snap".to_owned()],
        )
    }

    #[test]
    fn bucket_statements_carry_owned_sids_and_the_role() {
        let prefix = owned_sid_prefix("weekly");
        let statements = ours(&prefix);
        assert_eq!(statements[0]["Sid"], "snapferry-weekly-list");
        assert_eq!(statements[1]["Sid"], "snapferry-weekly-objects");
        assert_eq!(
            statements[1]["Principal"],
            json!({"AWS": "arn:aws:iam::1:role/snap"})
        );
        assert_eq!(statements[1]["Resource"], "arn:aws:s3:::snaps/base/*");
        let two = bucket_policy_statements(
            &prefix,
            &location(None),
            &["arn:a".to_owned(), "arn:b".to_owned()],
        );
        assert_eq!(two[0]["Principal"], json!({"AWS": ["arn:a", "arn:b"]}));
    }

    #[test]
    fn merge_into_no_policy_creates_one() {
        let prefix = owned_sid_prefix("p");
        let merged = merge_owned_statements("bucket snaps", None, &prefix, &ours(&prefix)).unwrap();
        assert_eq!(merged.policy["Version"], "2012-10-17");
        assert_eq!(merged.policy["Statement"], Value::Array(ours(&prefix)));
        assert_eq!(
            merged.diff.added,
            vec!["snapferry-p-list", "snapferry-p-objects"]
        );
        assert!(merged.diff.has_changes());
    }

    #[test]
    fn merge_keeps_foreign_statements_in_order_and_replaces_ours_in_place() {
        let prefix = owned_sid_prefix("p");
        let foreign_a = json!({"Sid": "DenyHttp", "Effect": "Deny", "Principal": "*",
            "Action": "s3:*", "Resource": "arn:aws:s3:::snaps/*",
            "Condition": {"Bool": {"aws:SecureTransport": false}}});
        let foreign_b = json!({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::9:root"},
            "Action": "s3:GetObject", "Resource": "arn:aws:s3:::snaps/public/*"});
        let mut stale_objects = ours(&prefix)[1].clone();
        stale_objects["Resource"] = json!("arn:aws:s3:::snaps/old/*");
        let existing = json!({
            "Version": "2012-10-17",
            "Id": "keep-me",
            "Statement": [
                foreign_a.clone(),
                stale_objects,
                json!({"Sid": "snapferry-p-gone", "Effect": "Allow", "Principal": "*",
                    "Action": "s3:GetObject", "Resource": "arn:aws:s3:::snaps/x"}),
                foreign_b.clone(),
            ]
        });
        let merged =
            merge_owned_statements("bucket snaps", Some(&existing), &prefix, &ours(&prefix))
                .unwrap();
        assert_eq!(merged.policy["Id"], "keep-me");
        assert_eq!(
            merged.policy["Statement"],
            json!([foreign_a, ours(&prefix)[1], foreign_b, ours(&prefix)[0]])
        );
        assert_eq!(
            merged.diff,
            StatementDiff {
                added: vec!["snapferry-p-list".into()],
                changed: vec!["snapferry-p-objects".into()],
                unchanged: vec![],
                removed: vec!["snapferry-p-gone".into()],
            }
        );
        // Another plan's statements are foreign to this one.
        let other = merge_owned_statements(
            "bucket snaps",
            Some(&merged.policy),
            &owned_sid_prefix("q"),
            &[],
        )
        .unwrap();
        assert!(!other.diff.has_changes());
        assert_eq!(other.policy, merged.policy);
    }

    #[test]
    fn merge_is_a_no_op_when_our_statements_are_there_in_aws_normalised_form() {
        let prefix = owned_sid_prefix("p");
        // As S3 returns it: keys reordered, one-element arrays collapsed, actions reordered.
        let as_returned = json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Resource": "arn:aws:s3:::snaps", "Action": ["s3:ListBucket"],
                 "Principal": {"AWS": ["arn:aws:iam::1:role/snap"]}, "Effect": "Allow",
                 "Sid": "snapferry-p-list",
                 "Condition": {"StringLike": {"s3:prefix": ["base/*", "base/"]}}},
                {"Sid": "snapferry-p-objects", "Effect": "Allow",
                 "Principal": {"AWS": "arn:aws:iam::1:role/snap"},
                 "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                 "Resource": ["arn:aws:s3:::snaps/base/*"]}
            ]
        });
        let merged =
            merge_owned_statements("bucket snaps", Some(&as_returned), &prefix, &ours(&prefix))
                .unwrap();
        assert!(!merged.diff.has_changes(), "{:?}", merged.diff);
        assert_eq!(
            merged.diff.unchanged,
            vec!["snapferry-p-list", "snapferry-p-objects"]
        );
        assert_eq!(merged.policy, as_returned);
    }

    #[test]
    fn merge_accepts_a_single_statement_object_and_rejects_non_policies() {
        let prefix = owned_sid_prefix("p");
        let single = json!({"Version": "2012-10-17", "Statement": {"Sid": "Theirs",
            "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "x"}});
        let merged =
            merge_owned_statements("bucket b", Some(&single), &prefix, &ours(&prefix)).unwrap();
        assert_eq!(merged.policy["Statement"][0]["Sid"], "Theirs");
        assert_eq!(merged.policy["Statement"].as_array().unwrap().len(), 3);
        let err = merge_owned_statements("bucket b", Some(&json!({"Version": "x"})), &prefix, &[])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "policy document of bucket b has no `Statement` object or array"
        );
    }

    #[test]
    fn removal_keeps_foreign_statements_or_deletes_an_emptied_policy() {
        let prefix = owned_sid_prefix("p");
        let foreign = json!({"Sid": "Theirs", "Effect": "Allow", "Principal": "*",
            "Action": "s3:GetObject", "Resource": "x"});
        let mut statements = ours(&prefix);
        statements.insert(1, foreign.clone());
        let mixed = json!({"Version": "2012-10-17", "Statement": statements});
        let (after, diff) = remove_owned_statements("bucket b", Some(&mixed), &prefix).unwrap();
        assert_eq!(
            after,
            PolicyAfterRemoval::Put(json!({"Version": "2012-10-17", "Statement": [foreign]}))
        );
        assert_eq!(
            diff.removed,
            vec!["snapferry-p-list", "snapferry-p-objects"]
        );

        let only_ours = json!({"Version": "2012-10-17", "Statement": ours(&prefix)});
        let (after, _) = remove_owned_statements("bucket b", Some(&only_ours), &prefix).unwrap();
        assert_eq!(after, PolicyAfterRemoval::Delete);

        let (after, diff) =
            remove_owned_statements("bucket b", Some(&only_ours), &owned_sid_prefix("other"))
                .unwrap();
        assert_eq!(after, PolicyAfterRemoval::Unchanged);
        assert!(!diff.has_changes());
        let (after, _) = remove_owned_statements("bucket b", None, &prefix).unwrap();
        assert_eq!(after, PolicyAfterRemoval::Unchanged);
    }

    #[test]
    fn normaliser_treats_iam_rewrites_as_equal() {
        let written = trust_policy("123456789012", &[]);
        let returned = json!({
            "Statement": {"Condition": {"StringEquals": {"aws:SourceAccount": ["123456789012"]}},
                "Action": ["sts:AssumeRole"], "Principal": {"Service": ["es.amazonaws.com"]},
                "Effect": "Allow"},
            "Version": "2012-10-17"
        });
        assert!(same_policy(&written, &returned));
        assert!(same_policy(
            &json!({"Condition": {"Bool": {"aws:SecureTransport": false}}}),
            &json!({"Condition": {"Bool": {"aws:SecureTransport": "false"}}})
        ));
        assert!(same_policy(
            &json!({"Action": ["a", "b", "a"]}),
            &json!({"Action": ["b", "a"]})
        ));
    }

    #[test]
    fn normaliser_still_sees_real_differences() {
        let written = trust_policy("123456789012", &[]);
        assert!(!same_policy(&written, &trust_policy("210987654321", &[])));
        assert!(!same_policy(
            &written,
            &trust_policy("123456789012", &["ec2.amazonaws.com".into()])
        ));
        assert!(!same_policy(
            &json!({"Action": ["a", "b"]}),
            &json!({"Action": "a"})
        ));
        let mut no_condition = written.clone();
        no_condition["Statement"][0]
            .as_object_mut()
            .unwrap()
            .remove("Condition");
        assert!(!same_policy(&written, &no_condition));
    }

    #[test]
    fn url_encoded_documents_from_get_role_are_decoded() {
        let written = trust_policy("123456789012", &[]);
        let encoded: String = percent_encoding::utf8_percent_encode(
            &written.to_string(),
            percent_encoding::NON_ALPHANUMERIC,
        )
        .to_string();
        assert!(encoded.starts_with("%7B"));
        let parsed = parse_policy_document("role snap", &encoded).unwrap();
        assert!(same_policy(&parsed, &written));
        assert_eq!(
            parse_policy_document("role snap", &written.to_string()).unwrap(),
            written
        );
        let err = parse_policy_document("role snap", "%7Bnot").unwrap_err();
        assert_eq!(
            err.to_string(),
            "policy document of role snap is not valid JSON"
        );
    }
}
