//! Every change the plan shows for an existing domain is one apply makes. The walk changes
//! each `DomainShape` field alone and checks the plan's line (path, before → after) and what
//! apply sends: the one `UpdateDomainConfig` block that carries the field (read back from the
//! request the SDK would send), `AddTags` for a tag, or the field shown blocked with the reason
//! when AWS cannot change it in place. A field added to `DomainShape` without a case here fails
//! the walk. `a_changed_source_setting_is_carried_to_the_target_by_one_apply` then does it for
//! real against the sandbox: each setting changed on the source shows as one `~` line, one
//! apply makes it, and the next plan shows no change.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use snapferry_aws::resources::{Block, DomainShape, DomainUpdate, Fate};
use snapferry_engine::FieldValue;

/// A VPC domain, not encrypted at rest, without node-to-node encryption: every field set.
fn base() -> DomainShape {
    DomainShape {
        engine_version: Some("OpenSearch_2.11".into()),
        instance_type: Some("r6g.large.search".into()),
        instance_count: Some(2),
        dedicated_master_enabled: Some(true),
        dedicated_master_type: Some("m6g.large.search".into()),
        dedicated_master_count: Some(3),
        zone_awareness_enabled: Some(true),
        availability_zone_count: Some(2),
        ebs_enabled: Some(true),
        volume_type: Some("gp3".into()),
        volume_size: Some(100),
        iops: Some(3000),
        throughput: Some(125),
        subnet_ids: Some(vec!["subnet-a".into(), "subnet-b".into()]),
        security_group_ids: Some(vec!["sg-a".into()]),
        encryption_at_rest: Some(false),
        kms_key_id: Some("arn:aws:kms:us-east-1:123456789012:key/aws-owned".into()),
        node_to_node_encryption: Some(false),
        enforce_https: Some(false),
        tls_security_policy: Some("Policy-Min-TLS-1-0-2019-07".into()),
        advanced_options: BTreeMap::from([(
            "rest.action.multi.allow_explicit_index".into(),
            "true".into(),
        )]),
        access_policy: Some(json!({"Version": "2012-10-17", "Statement": []})),
        tags: BTreeMap::from([("team".into(), "search".into())]),
        fine_grained_access_control: Some(false),
        internal_user_database: Some(false),
        master_user: Some("arn:aws:iam::123456789012:role/search-admin".into()),
        master_user_password_from: Some("environment variable SNAPFERRY_MASTER_PASSWORD".into()),
    }
}

/// Where a changed field must go.
#[derive(Debug)]
enum Expect {
    Send(Block, &'static str),
    Tag(&'static str),
    Blocked(&'static str),
    /// Never compared: AWS does not show it back (the master user is only sent on creation).
    NotCompared,
}

struct Case {
    field: &'static str,
    path: &'static str,
    change: fn(&mut DomainShape),
    expect: Expect,
}

/// One case per field of `DomainShape`. The destructure makes a new field a compile error here
/// until it has a case.
fn cases() -> Vec<Case> {
    let DomainShape {
        engine_version: _,
        instance_type: _,
        instance_count: _,
        dedicated_master_enabled: _,
        dedicated_master_type: _,
        dedicated_master_count: _,
        zone_awareness_enabled: _,
        availability_zone_count: _,
        ebs_enabled: _,
        volume_type: _,
        volume_size: _,
        iops: _,
        throughput: _,
        subnet_ids: _,
        security_group_ids: _,
        encryption_at_rest: _,
        kms_key_id: _,
        node_to_node_encryption: _,
        enforce_https: _,
        tls_security_policy: _,
        advanced_options: _,
        access_policy: _,
        tags: _,
        fine_grained_access_control: _,
        internal_user_database: _,
        master_user: _,
        master_user_password_from: _,
    } = base();
    use Block::*;
    use Expect::{Blocked, NotCompared, Send, Tag};
    let case = |field, path, change, expect| Case {
        field,
        path,
        change,
        expect,
    };
    vec![
        case(
            "engine_version",
            "engine_version",
            |s| s.engine_version = Some("OpenSearch_2.13".into()),
            Blocked("runs OpenSearch_2.11 and AWS changes an engine only by upgrading it"),
        ),
        case(
            "instance_type",
            "instance_type",
            |s| s.instance_type = Some("r6g.xlarge.search".into()),
            Send(ClusterConfig, "R6gXlargeSearch"),
        ),
        case(
            "instance_count",
            "instance_count",
            |s| s.instance_count = Some(4),
            Send(ClusterConfig, "instance_count: Some(4)"),
        ),
        case(
            "dedicated_master_enabled",
            "dedicated_master_enabled",
            |s| s.dedicated_master_enabled = Some(false),
            Send(ClusterConfig, "dedicated_master_enabled: Some(false)"),
        ),
        case(
            "dedicated_master_type",
            "dedicated_master_type",
            |s| s.dedicated_master_type = Some("m6g.xlarge.search".into()),
            Send(ClusterConfig, "M6gXlargeSearch"),
        ),
        case(
            "dedicated_master_count",
            "dedicated_master_count",
            |s| s.dedicated_master_count = Some(5),
            Send(ClusterConfig, "dedicated_master_count: Some(5)"),
        ),
        case(
            "zone_awareness_enabled",
            "zone_awareness_enabled",
            |s| s.zone_awareness_enabled = Some(false),
            Send(ClusterConfig, "zone_awareness_enabled: Some(false)"),
        ),
        case(
            "availability_zone_count",
            "availability_zone_count",
            |s| s.availability_zone_count = Some(3),
            Send(ClusterConfig, "availability_zone_count: Some(3)"),
        ),
        case(
            "ebs_enabled",
            "ebs_enabled",
            |s| s.ebs_enabled = Some(false),
            Send(EbsOptions, "ebs_enabled: Some(false)"),
        ),
        case(
            "volume_type",
            "volume_type",
            |s| s.volume_type = Some("io1".into()),
            Send(EbsOptions, "Io1"),
        ),
        case(
            "volume_size",
            "volume_size",
            |s| s.volume_size = Some(200),
            Send(EbsOptions, "volume_size: Some(200)"),
        ),
        case(
            "iops",
            "iops",
            |s| s.iops = Some(6000),
            Send(EbsOptions, "iops: Some(6000)"),
        ),
        case(
            "throughput",
            "throughput",
            |s| s.throughput = Some(250),
            Send(EbsOptions, "throughput: Some(250)"),
        ),
        case(
            "subnet_ids",
            "subnet_ids",
            |s| s.subnet_ids = Some(vec!["subnet-c".into(), "subnet-d".into()]),
            Send(VpcOptions, "\"subnet-c\", \"subnet-d\""),
        ),
        case(
            "security_group_ids",
            "security_group_ids",
            |s| s.security_group_ids = Some(vec!["sg-b".into()]),
            Send(VpcOptions, "\"sg-b\""),
        ),
        case(
            "encryption_at_rest",
            "encryption_at_rest",
            |s| s.encryption_at_rest = Some(true),
            Send(EncryptionAtRestOptions, "enabled: Some(true)"),
        ),
        case(
            "kms_key_id",
            "kms_key_id",
            |s| s.kms_key_id = Some("arn:aws:kms:us-east-1:123456789012:key/k1".into()),
            Send(EncryptionAtRestOptions, "key/k1"),
        ),
        case(
            "node_to_node_encryption",
            "node_to_node_encryption",
            |s| s.node_to_node_encryption = Some(true),
            Send(NodeToNodeEncryptionOptions, "enabled: Some(true)"),
        ),
        case(
            "enforce_https",
            "enforce_https",
            |s| s.enforce_https = Some(true),
            Send(DomainEndpointOptions, "enforce_https: Some(true)"),
        ),
        case(
            "tls_security_policy",
            "tls_security_policy",
            |s| s.tls_security_policy = Some("Policy-Min-TLS-1-2-2019-07".into()),
            Send(DomainEndpointOptions, "PolicyMinTls12201907"),
        ),
        case(
            "advanced_options",
            "advanced_options.indices.fielddata.cache.size",
            |s| {
                s.advanced_options
                    .insert("indices.fielddata.cache.size".into(), "40".into());
            },
            Send(AdvancedOptions, "\"indices.fielddata.cache.size\": \"40\""),
        ),
        case(
            "access_policy",
            "access_policy",
            |s| {
                s.access_policy = Some(json!({
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                                   "Action": "es:ESHttpGet", "Resource": "*"}]
                }));
            },
            Send(AccessPolicies, "es:ESHttpGet"),
        ),
        case(
            "fine_grained_access_control",
            "fine_grained_access_control",
            |s| s.fine_grained_access_control = Some(true),
            Blocked(
                "has no fine-grained access control; turning it on in place needs its master user",
            ),
        ),
        case(
            "internal_user_database",
            "internal_user_database",
            |s| s.internal_user_database = Some(true),
            Blocked("--advanced-security-options Enabled=true"),
        ),
        case(
            "master_user",
            "master_user",
            |s| s.master_user = Some("admin".into()),
            NotCompared,
        ),
        case(
            "master_user_password_from",
            "master_user_password_from",
            |s| s.master_user_password_from = Some("environment variable OTHER".into()),
            NotCompared,
        ),
        case(
            "tags",
            "tags.env",
            |s| {
                s.tags.insert("env".into(), "copy".into());
            },
            Tag("env"),
        ),
    ]
}

fn client() -> aws_sdk_opensearch::Client {
    let config = aws_sdk_opensearch::Config::builder()
        .behavior_version(aws_sdk_opensearch::config::BehaviorVersion::latest())
        .region(aws_sdk_opensearch::config::Region::new("us-east-1"))
        .build();
    aws_sdk_opensearch::Client::from_conf(config)
}

/// The blocks an `UpdateDomainConfig` request carries, each as its debug text.
fn sent(
    update: &DomainUpdate,
    live: &DomainShape,
    desired: &DomainShape,
) -> BTreeMap<Block, String> {
    let request = client().update_domain_config().domain_name("shop-copy");
    let Some(request) = update.request(request, live, desired) else {
        return BTreeMap::new();
    };
    let input = request.as_input();
    let mut blocks = BTreeMap::new();
    let mut put = |block: Block, text: Option<String>| {
        if let Some(text) = text {
            blocks.insert(block, text);
        }
    };
    put(
        Block::ClusterConfig,
        input
            .get_cluster_config()
            .as_ref()
            .map(|v| format!("{v:?}")),
    );
    put(
        Block::EbsOptions,
        input.get_ebs_options().as_ref().map(|v| format!("{v:?}")),
    );
    put(
        Block::VpcOptions,
        input.get_vpc_options().as_ref().map(|v| format!("{v:?}")),
    );
    put(
        Block::EncryptionAtRestOptions,
        input
            .get_encryption_at_rest_options()
            .as_ref()
            .map(|v| format!("{v:?}")),
    );
    put(
        Block::NodeToNodeEncryptionOptions,
        input
            .get_node_to_node_encryption_options()
            .as_ref()
            .map(|v| format!("{v:?}")),
    );
    put(
        Block::DomainEndpointOptions,
        input
            .get_domain_endpoint_options()
            .as_ref()
            .map(|v| format!("{v:?}")),
    );
    put(
        Block::AdvancedOptions,
        input.get_advanced_options().as_ref().map(|v| {
            let sorted: BTreeMap<_, _> = v.iter().collect();
            format!("{sorted:?}")
        }),
    );
    put(Block::AccessPolicies, input.get_access_policies().clone());
    // Nothing else that UpdateDomainConfig takes is ever sent.
    assert!(input.get_snapshot_options().is_none());
    assert!(input.get_advanced_security_options().is_none());
    assert!(input.get_log_publishing_options().is_none());
    blocks
}

#[test]
fn every_domain_field_changed_alone_is_one_line_and_one_block_or_blocked() {
    let cases = cases();
    // Every serialized field has a case (the destructure in `cases` catches new fields at
    // compile time; this catches a case forgotten in the list).
    let fields: BTreeSet<String> = serde_json::to_value(base())
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let covered: BTreeSet<String> = cases.iter().map(|c| c.field.to_owned()).collect();
    assert_eq!(covered, fields, "a DomainShape field without a case");

    let live = base();
    for case in &cases {
        let mut desired = base();
        (case.change)(&mut desired);
        let update = DomainUpdate::between("shop-copy", &live, &desired);
        let changes = update.changes();
        if matches!(case.expect, Expect::NotCompared) {
            assert!(update.is_empty(), "{}: {changes:?}", case.field);
            assert!(sent(&update, &live, &desired).is_empty(), "{}", case.field);
            continue;
        }
        assert_eq!(changes.len(), 1, "{}: {changes:?}", case.field);
        let line = &changes[0];
        assert_eq!(line.path, case.path, "{}", case.field);
        let json_of = |shape: &DomainShape| -> Value {
            let v = serde_json::to_value(shape).unwrap();
            match case.path.split_once('.') {
                Some((map, key)) => v[map][key].clone(),
                None => v[case.path].clone(),
            }
        };
        let before = json_of(&live);
        assert_eq!(
            line.before,
            (!before.is_null()).then_some(FieldValue::Known(before)),
            "{}",
            case.field
        );
        assert_eq!(
            line.after,
            FieldValue::Known(json_of(&desired)),
            "{}",
            case.field
        );
        let blocks = sent(&update, &live, &desired);
        match &case.expect {
            Expect::Send(block, carries) => {
                assert_eq!(update.fields[0].fate, Fate::Send(*block), "{}", case.field);
                assert!(update.blocked().is_none(), "{}", case.field);
                assert_eq!(
                    blocks.keys().collect::<Vec<_>>(),
                    [block],
                    "{}: exactly its block is sent",
                    case.field
                );
                assert!(
                    blocks[block].contains(carries),
                    "{}: {block:?} does not carry {carries:?}: {}",
                    case.field,
                    blocks[block]
                );
                assert!(update.tags(&desired).is_empty(), "{}", case.field);
            }
            Expect::Tag(key) => {
                assert_eq!(update.fields[0].fate, Fate::Tag, "{}", case.field);
                assert!(blocks.is_empty(), "{}: no UpdateDomainConfig", case.field);
                let tags = update.tags(&desired);
                assert_eq!(tags.len(), 1);
                assert_eq!(tags[0].key(), *key);
            }
            Expect::NotCompared => unreachable!("handled above"),
            Expect::Blocked(reason) => {
                let blocked = update.blocked().unwrap_or_default();
                assert!(
                    blocked.contains(reason),
                    "{}: blocked for {blocked:?}",
                    case.field
                );
                assert!(matches!(update.fields[0].fate, Fate::Blocked(_)));
                assert!(blocks.is_empty(), "{}: nothing is sent", case.field);
            }
        }
    }
}

#[test]
fn what_aws_cannot_change_in_place_is_blocked_with_the_reason() {
    let mut public = base();
    public.subnet_ids = None;
    public.security_group_ids = None;
    let update = DomainUpdate::between("shop-copy", &public, &base());
    assert_eq!(
        update.blocked().unwrap(),
        "subnet_ids: (unset) → [\"subnet-a\",\"subnet-b\"] cannot be made in place: domain \
         shop-copy has public access and AWS cannot move a domain into a VPC: create a new domain \
         (another `target.domain`), or leave `vpc` out; security_group_ids: (unset) → [\"sg-a\"] \
         cannot be made in place: domain shop-copy has public access and AWS cannot move a domain \
         into a VPC: create a new domain (another `target.domain`), or leave `vpc` out"
    );

    let mut encrypted = base();
    encrypted.encryption_at_rest = Some(true);
    let mut off = encrypted.clone();
    off.encryption_at_rest = Some(false);
    let blocked = DomainUpdate::between("shop-copy", &encrypted, &off)
        .blocked()
        .unwrap();
    assert!(
        blocked.starts_with(
            "encryption_at_rest: true → false cannot be made in place: domain \
             shop-copy is encrypted at rest, and AWS fixes encryption at rest and its KMS key once \
             enabled"
        ),
        "{blocked}"
    );
    let mut other_key = encrypted.clone();
    other_key.kms_key_id = Some("arn:aws:kms:us-east-1:123456789012:key/other".into());
    assert!(
        DomainUpdate::between("shop-copy", &encrypted, &other_key)
            .blocked()
            .unwrap()
            .starts_with("kms_key_id: ")
    );

    let mut n2n = base();
    n2n.node_to_node_encryption = Some(true);
    let blocked = DomainUpdate::between("shop-copy", &n2n, &base())
        .blocked()
        .unwrap();
    assert!(
        blocked.contains("node-to-node encryption, which AWS cannot turn off once enabled"),
        "{blocked}"
    );
}

#[test]
fn unset_settings_and_the_ownership_tag_are_left_alone() {
    let live = base();
    let mut desired = DomainShape::default();
    desired.tags.insert("snapferry-plan".into(), "shop".into());
    let update = DomainUpdate::between("shop-copy", &live, &desired);
    assert!(update.is_empty(), "{update:?}");

    // A block sent carries the live value of every field the plan does not fix.
    let mut desired = DomainShape {
        instance_count: Some(4),
        ..DomainShape::default()
    };
    desired.advanced_options.insert("a".into(), "1".into());
    let update = DomainUpdate::between("shop-copy", &live, &desired);
    let blocks = sent(&update, &live, &desired);
    assert!(
        blocks[&Block::ClusterConfig].contains("R6gLargeSearch"),
        "{blocks:?}"
    );
    assert!(
        blocks[&Block::AdvancedOptions]
            .contains("\"rest.action.multi.allow_explicit_index\": \"true\""),
        "live advanced options are kept: {blocks:?}"
    );
}

mod against_the_sandbox {
    //! Each setting changed alone on the source shows as one `~` line for the target, one
    //! apply makes it (the sandbox logs the call), and the next plan shows no change.

    use std::sync::Arc;

    use aws_credential_types::Credentials;
    use aws_credential_types::provider::SharedCredentialsProvider;
    use snapferry_aws::clients::{AwsContext, AwsOptions};
    use snapferry_aws::resources::{DomainShape, DomainUpdate, Env, build_graph};
    use snapferry_engine::{
        ApplyOptions, Change, ExecGraph, Executor, MemoryStore, NodeId, Outcome, PlanOptions,
        PollSchedule, StateStore, plan,
    };
    use snapferry_sandbox::{Sandbox, SandboxConfig, SandboxHandle, SeedDomain};

    const PLAN: &str = "
version: 1
name: shop
region: us-east-1
bucket:
  name: shop-snapshots
  create: true
source:
  domain: shop-prod
target:
  domain: shop-copy
";

    struct Rig {
        sandbox: SandboxHandle,
        aws: AwsContext,
        graph: Arc<ExecGraph>,
        store: Arc<MemoryStore>,
    }

    impl Rig {
        async fn start() -> Rig {
            let mut config = SandboxConfig {
                domains: vec![SeedDomain {
                    name: "shop-prod".into(),
                    engine_version: "OpenSearch_2.11".into(),
                    ready: true,
                    indices: vec![],
                    kibana: true,
                    vpc: true,
                }],
                ..SandboxConfig::default()
            };
            config.latencies.domain_update_secs = 5.0;
            config.latencies.domain_creation_secs = 60.0;
            let sandbox = Sandbox::start(config).await.expect("sandbox");
            let env: std::collections::BTreeMap<String, String> =
                sandbox.env().into_iter().collect();
            let aws = AwsContext::load(AwsOptions {
                endpoint_url: Some(sandbox.endpoint_url()),
                credentials: Some(SharedCredentialsProvider::new(Credentials::new(
                    env["AWS_ACCESS_KEY_ID"].clone(),
                    env["AWS_SECRET_ACCESS_KEY"].clone(),
                    None,
                    None,
                    "walk",
                ))),
                fallback_region: Some("us-east-1".into()),
                ca_bundle: Some(sandbox.ca_bundle_path().to_owned()),
                ..AwsOptions::default()
            })
            .await
            .expect("AWS context");
            let plan = snapferry_plan::parse("walk.yaml", PLAN).expect("plan");
            let env = Env::new(aws.clone(), &plan, chrono::Utc::now(), None).with_rate(1000.0);
            let graph = build_graph(&plan, Arc::new(env))
                .expect("graph")
                .restricted_to(&[NodeId::new("domain", "shop-copy")])
                .expect("the domain step");
            Rig {
                sandbox,
                aws,
                graph: Arc::new(graph),
                store: Arc::new(MemoryStore::new()),
            }
        }

        async fn propose(&self) -> snapferry_engine::Proposal {
            let state = self.store.load().await.unwrap();
            plan(&self.graph, state.as_ref(), &PlanOptions::new("fp"))
                .await
                .expect("plan")
        }

        async fn apply(&self, proposal: &snapferry_engine::Proposal) {
            let options = ApplyOptions {
                poll: PollSchedule::default().scaled(0.0002),
                ..ApplyOptions::new("shop")
            };
            let summary = Executor::new(self.graph.clone(), self.store.clone())
                .apply(proposal, &options)
                .await
                .expect("apply");
            assert_eq!(summary.outcome, Outcome::Complete, "{summary:?}");
        }

        fn domain_change(proposal: &snapferry_engine::Proposal) -> Change {
            proposal.nodes[&NodeId::new("domain", "shop-copy")]
                .change
                .clone()
        }

        /// The source's live shape.
        async fn source(&self) -> (DomainShape, String) {
            let opensearch = self
                .aws
                .clients("us-east-1", None)
                .await
                .unwrap()
                .opensearch;
            let status = opensearch
                .describe_domain()
                .domain_name("shop-prod")
                .send()
                .await
                .unwrap()
                .domain_status()
                .cloned()
                .unwrap();
            let tags = opensearch
                .list_tags()
                .arn(status.arn())
                .send()
                .await
                .unwrap()
                .tag_list()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect();
            (
                DomainShape::from_status(&status, tags),
                status.arn().to_owned(),
            )
        }

        /// Changes the source as `change` says, with the same calls apply makes.
        async fn change_source(&self, change: fn(&mut DomainShape)) {
            let (live, arn) = self.source().await;
            let mut desired = live.clone();
            change(&mut desired);
            let update = DomainUpdate::between("shop-prod", &live, &desired);
            let opensearch = self
                .aws
                .clients("us-east-1", None)
                .await
                .unwrap()
                .opensearch;
            let request = opensearch.update_domain_config().domain_name("shop-prod");
            if let Some(request) = update.request(request, &live, &desired) {
                request
                    .send()
                    .await
                    .expect("UpdateDomainConfig on the source");
            }
            let tags = update.tags(&desired);
            if !tags.is_empty() {
                opensearch
                    .add_tags()
                    .arn(arn)
                    .set_tag_list(Some(tags))
                    .send()
                    .await
                    .expect("AddTags on the source");
            }
        }

        fn calls(&self, operation: &str) -> usize {
            self.sandbox
                .request_log()
                .iter()
                .filter(|r| r.operation == operation && r.target.as_deref() != Some("shop-prod"))
                .filter(|r| (200..300).contains(&r.status))
                .count()
        }
    }

    struct Step {
        /// What the plan shows for the target (a change AWS only takes together with another,
        /// such as the zone count with as many subnets, is one step of several fields).
        paths: &'static [&'static str],
        change: fn(&mut DomainShape),
        call: &'static str,
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_changed_source_setting_is_carried_to_the_target_by_one_apply() {
        let rig = Rig::start().await;
        let created = rig.propose().await;
        assert_eq!(Rig::domain_change(&created).verb(), "create");
        rig.apply(&created).await;
        assert_eq!(Rig::domain_change(&rig.propose().await), Change::NoOp);

        let update = "UpdateDomainConfig";
        let steps = [
            Step {
                paths: &["instance_type"],
                change: |s| s.instance_type = Some("r6g.xlarge.search".into()),
                call: update,
            },
            Step {
                paths: &["instance_count"],
                change: |s| s.instance_count = Some(3),
                call: update,
            },
            Step {
                paths: &["dedicated_master_enabled"],
                change: |s| s.dedicated_master_enabled = Some(true),
                call: update,
            },
            Step {
                paths: &["dedicated_master_type"],
                change: |s| s.dedicated_master_type = Some("m6g.large.search".into()),
                call: update,
            },
            Step {
                paths: &["dedicated_master_count"],
                change: |s| s.dedicated_master_count = Some(3),
                call: update,
            },
            // A VPC domain has one subnet per zone: AWS refuses zone awareness without a
            // second subnet ("You must specify exactly two subnets because you've set zone
            // count to two."), so the source changes both at once, as an operator must.
            Step {
                paths: &[
                    "zone_awareness_enabled",
                    "availability_zone_count",
                    "subnet_ids",
                ],
                change: |s| {
                    s.zone_awareness_enabled = Some(true);
                    s.availability_zone_count = Some(2);
                    s.subnet_ids = Some(vec!["subnet-za".into(), "subnet-zb".into()]);
                },
                call: update,
            },
            Step {
                paths: &["availability_zone_count", "subnet_ids"],
                change: |s| {
                    s.availability_zone_count = Some(3);
                    s.subnet_ids = Some(vec![
                        "subnet-za".into(),
                        "subnet-zb".into(),
                        "subnet-zc".into(),
                    ]);
                },
                call: update,
            },
            Step {
                paths: &["volume_type"],
                change: |s| s.volume_type = Some("io1".into()),
                call: update,
            },
            Step {
                paths: &["volume_size"],
                change: |s| s.volume_size = Some(50),
                call: update,
            },
            Step {
                paths: &["iops"],
                change: |s| s.iops = Some(4000),
                call: update,
            },
            Step {
                paths: &["throughput"],
                change: |s| s.throughput = Some(250),
                call: update,
            },
            Step {
                paths: &["ebs_enabled"],
                change: |s| s.ebs_enabled = Some(false),
                call: update,
            },
            Step {
                paths: &["subnet_ids"],
                change: |s| {
                    s.subnet_ids = Some(vec![
                        "subnet-0a".into(),
                        "subnet-0b".into(),
                        "subnet-0c".into(),
                    ]);
                },
                call: update,
            },
            Step {
                paths: &["security_group_ids"],
                change: |s| s.security_group_ids = Some(vec!["sg-0b".into()]),
                call: update,
            },
            Step {
                // Turned on, AWS names the key it uses (the AWS managed key): copied too.
                paths: &["encryption_at_rest", "kms_key_id"],
                change: |s| s.encryption_at_rest = Some(true),
                call: update,
            },
            Step {
                paths: &["node_to_node_encryption"],
                change: |s| s.node_to_node_encryption = Some(true),
                call: update,
            },
            Step {
                paths: &["enforce_https"],
                change: |s| s.enforce_https = Some(true),
                call: update,
            },
            Step {
                paths: &["tls_security_policy"],
                change: |s| s.tls_security_policy = Some("Policy-Min-TLS-1-2-PFS-2023-10".into()),
                call: update,
            },
            Step {
                paths: &["advanced_options.indices.fielddata.cache.size"],
                change: |s| {
                    s.advanced_options
                        .insert("indices.fielddata.cache.size".into(), "40".into());
                },
                call: update,
            },
            Step {
                paths: &["access_policy"],
                change: |s| {
                    s.access_policy = Some(serde_json::json!({
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                                       "Action": "es:ESHttp*", "Resource": "arn:aws:es:us-east-1:123456789012:domain/shop-prod/*"}]
                    }));
                },
                call: update,
            },
            Step {
                paths: &["tags.team"],
                change: |s| {
                    s.tags.insert("team".into(), "search".into());
                },
                call: "AddTags",
            },
        ];
        for step in &steps {
            rig.change_source(step.change).await;
            let proposal = rig.propose().await;
            let Change::Update { fields } = Rig::domain_change(&proposal) else {
                panic!("{:?}: {:?}", step.paths, Rig::domain_change(&proposal));
            };
            let paths: Vec<&str> = fields.iter().map(|f| f.path.as_str()).collect();
            assert_eq!(
                paths, step.paths,
                "{:?}: the plan shows exactly it",
                step.paths
            );
            let before = rig.calls(step.call);
            rig.apply(&proposal).await;
            assert_eq!(
                rig.calls(step.call),
                before + 1,
                "{:?}: one {} call",
                step.paths,
                step.call
            );
            assert_eq!(
                Rig::domain_change(&rig.propose().await),
                Change::NoOp,
                "{:?}: made by one apply",
                step.paths
            );
        }
        // The target's access policy names the target, not the source.
        let policy = rig.propose().await;
        let observed = policy
            .observed(&NodeId::new("domain", "shop-copy"))
            .unwrap();
        assert!(
            observed.value["live"]["access_policy"]
                .to_string()
                .contains("domain/shop-copy/*"),
            "{}",
            observed.value["live"]["access_policy"]
        );

        // A source that turns fine-grained access control on gives a target that must have it
        // too; AWS turns it on in place only with a master user and a blue/green deployment,
        // so the existing target is shown blocked with the command to run. (Turning
        // encryption at rest off on the source, as this step once did, AWS refuses.)
        let opensearch = rig.aws.clients("us-east-1", None).await.unwrap().opensearch;
        opensearch
            .update_domain_config()
            .domain_name("shop-prod")
            .advanced_security_options(
                aws_sdk_opensearch::types::AdvancedSecurityOptionsInput::builder()
                    .enabled(true)
                    .master_user_options(
                        aws_sdk_opensearch::types::MasterUserOptions::builder()
                            .master_user_arn("arn:aws:iam::123456789012:role/search-admin")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("UpdateDomainConfig on the source");
        let proposal = rig.propose().await;
        let Change::Blocked { reason } = Rig::domain_change(&proposal) else {
            panic!("{:?}", Rig::domain_change(&proposal));
        };
        assert!(
            reason.starts_with(
                "fine_grained_access_control: false → true cannot be made in place: domain \
                 shop-copy has no fine-grained access control; turning it on in place needs \
                 its master user"
            ),
            "{reason}"
        );
        rig.sandbox.shutdown().await;
    }
}
