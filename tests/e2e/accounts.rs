//! End to end across accounts and Regions: production in account A (us-east-1) is copied to
//! staging in account B (eu-west-1) through a bucket in A, by an operator in a third account C
//! who assumes a role in A and one in B, each with its `ExternalId`. What AWS's cross-account
//! set-up needs is what the sandbox enforces: the snapshot role and the bucket policy are made
//! in A (by A's role), the target reads with a role of B's own (a domain passes only roles of
//! its account), which A's bucket policy grants. Each misconfiguration stops with a message
//! naming the account, the role and the fix.

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use snapferry_aws::domain_http::{DomainHttp, DomainHttpConfig, ProxyChoice};
use snapferry_aws::opensearch::OpenSearch;
use snapferry_sandbox::SandboxConfig;

use crate::common::*;

const A: &str = "111111111111";
const B: &str = "222222222222";
const C: &str = "333333333333";
const A_OPERATOR: &str = "arn:aws:iam::111111111111:role/snapferry-operator";
const B_OPERATOR: &str = "arn:aws:iam::222222222222:role/snapferry-operator";
const B_READER: &str = "arn:aws:iam::222222222222:role/opensearch-snapshots-reader";

/// The three accounts: C holds the operator (the default credentials), A the source domain
/// and the bucket, B nothing but its roles until the target is created there.
fn config() -> SandboxConfig {
    config_at("time_scale: 0.001")
}

/// [`config`] with its time settings (`time_scale:` and `latencies:` lines).
fn config_at(time: &str) -> SandboxConfig {
    let yaml = format!(
        r#"
{time}
account_id: '{C}'
identities:
  - {{access_key_id: AKIAADMINA, secret_access_key: admin-a-secret, arn: 'arn:aws:iam::{A}:user/admin'}}
  - {{access_key_id: AKIAADMINB, secret_access_key: admin-b-secret, arn: 'arn:aws:iam::{B}:user/admin'}}
roles:
  - arn: {A_OPERATOR}
    trust_policy: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Principal: {{AWS: 'arn:aws:iam::{C}:root'}}, Action: 'sts:AssumeRole', Condition: {{StringEquals: {{'sts:ExternalId': prod-handover-7f3a}}}}}}]}}
    policies:
      admin: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Action: '*', Resource: '*'}}]}}
  - arn: {B_OPERATOR}
    trust_policy: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Principal: {{AWS: 'arn:aws:iam::{C}:root'}}, Action: 'sts:AssumeRole', Condition: {{StringEquals: {{'sts:ExternalId': staging-handover-9c1e}}}}}}]}}
    policies:
      admin: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Action: '*', Resource: '*'}}]}}
  - arn: {B_READER}
    trust_policy: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Principal: {{Service: es.amazonaws.com}}, Action: 'sts:AssumeRole'}}]}}
    policies:
      read-snapshots: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Action: ['s3:ListBucket', 's3:GetObject'], Resource: ['arn:aws:s3:::prod-snaps', 'arn:aws:s3:::prod-snaps/*']}}]}}
domains:
  - name: production
    engine_version: OpenSearch_2.11
    indices: [{{name: orders, generate: 120}}, {{name: customers, generate: 40}}]
domain_homes:
  production: {{account: '{A}', region: us-east-1}}
buckets: [prod-snaps]
bucket_homes:
  prod-snaps: {{account: '{A}', region: us-east-1}}
"#
    );
    SandboxConfig::from_yaml_str(&yaml).expect("valid config")
}

/// The plan of the hand-over; `target_extra` adds lines to `target:` (indented by four).
fn plan(source_external_id: &str, target_extra: &str) -> String {
    format!(
        r#"version: 1
name: handover
region: us-east-1
bucket:
  name: prod-snaps
  base_path: handover
source:
  domain: production
  assume_role_arn: {A_OPERATOR}
  external_id: {source_external_id}
target:
  domain: staging
  region: eu-west-1
  assume_role_arn: {B_OPERATOR}
  external_id: staging-handover-9c1e
{target_extra}restore:
  on_conflict: fail
"#
    )
}

fn good_plan() -> String {
    plan(
        "prod-handover-7f3a",
        &format!("  snapshot_role_arn: {B_READER}\n"),
    )
}

/// A data-plane client of `domain` in `account`/`region`, signing as that account's admin.
fn domain_in(world: &World, account: &str, region: &str, domain: &str) -> Option<OpenSearch> {
    let endpoint = world
        .sandbox()
        .domain_endpoint_in(account, region, domain)?;
    let key = if account == A {
        "AKIAADMINA"
    } else {
        "AKIAADMINB"
    };
    let secret = if account == A {
        "admin-a-secret"
    } else {
        "admin-b-secret"
    };
    // A VPC domain's name resolves only inside its VPC; the test reaches its port directly.
    let endpoint = endpoint.replace(&format!("vpc-{domain}.sandbox.internal"), "127.0.0.1");
    let mut config = DomainHttpConfig::new(domain, &endpoint, region);
    config.proxy = ProxyChoice::Direct;
    config.ca_bundle = Some(world.sandbox().ca_bundle_path().to_owned());
    let credentials =
        SharedCredentialsProvider::new(Credentials::new(key, secret, None, None, "e2e"));
    Some(OpenSearch::new(
        DomainHttp::new(&config, credentials).unwrap(),
    ))
}

/// The user indices of a domain with their document counts, sorted.
fn counts_in(world: &World, account: &str, region: &str, domain: &str) -> Vec<(String, u64)> {
    let client = domain_in(world, account, region, domain)
        .unwrap_or_else(|| panic!("{domain} has no endpoint in {account}/{region}"));
    let all = world.rt.block_on(async {
        let mut out = Vec::new();
        for i in client.cat_indices().await.unwrap() {
            let n = client.count(&i.index).await.unwrap();
            out.push((i.index, n));
        }
        out.sort();
        out
    });
    user_indices(&all)
}

fn assume_role_calls(world: &World) -> usize {
    world
        .sandbox()
        .request_log()
        .iter()
        .filter(|r| r.service == "sts" && r.operation == "AssumeRole")
        .count()
}

#[test]
fn production_in_account_a_is_copied_to_staging_in_account_b_and_destroy_cleans_both() {
    let world = World::start_with(config());
    world.plan("snapferry.yaml", &good_plan());

    let planned = world.run_ok(&["plan"], 0);
    assert!(
        planned.contains("+ domain/staging"),
        "the target is created in B: {planned}"
    );
    assert!(world.mutating_calls().is_empty(), "plan changed nothing");

    let out = world.run_ok(&["apply", "--auto-approve"], 0);
    let source = counts_in(&world, A, "us-east-1", "production");
    let target = counts_in(&world, B, "eu-west-1", "staging");
    assert_eq!(
        source,
        vec![("customers".into(), 40), ("orders".into(), 120)],
        "{out}"
    );
    assert_eq!(target, source, "counts equal across accounts: {out}");

    // Everything landed in the account it belongs to: the target in B's eu-west-1 only, the
    // snapshot role in A (the bucket's and the source's account), the bucket policy granting
    // A's role and B's reader.
    assert!(
        world
            .sandbox()
            .domain_endpoint_in(C, "eu-west-1", "staging")
            .is_none()
    );
    let policy = world
        .bucket_policy_as("AKIAADMINA", "prod-snaps")
        .expect("a bucket policy");
    let text = policy.to_string();
    assert!(
        text.contains(&format!("arn:aws:iam::{A}:role/handover-snapshot-role")),
        "{text}"
    );
    assert!(text.contains(B_READER), "{text}");
    assert!(role_exists_as(
        &world,
        "AKIAADMINA",
        "handover-snapshot-role"
    ));

    // A one-hour session lasts 3.6 s of this sandbox's time: the run outlived several, and
    // each was renewed before it expired (no step failed on ExpiredToken).
    assert!(assume_role_calls(&world) > 2, "sessions renewed");
    assert!(!out.contains("ExpiredToken"), "{out}");

    // A second apply changes nothing.
    world.sandbox().reset_log();
    let again = world.run_ok(&["plan", "--detailed-exitcode"], 0);
    assert!(again.contains("8 unchanged"), "{again}");

    // destroy cleans both accounts and leaves the source alone.
    let out = world.run_ok(&["destroy", "--include-target-domain", "--auto-approve"], 0);
    assert!(out.contains("Destroy complete"), "{out}");
    let policy = world.bucket_policy_as("AKIAADMINA", "prod-snaps");
    assert!(
        policy
            .as_ref()
            .is_none_or(|p| !p.to_string().contains("handover")),
        "{policy:?}"
    );
    assert_eq!(
        counts_in(&world, A, "us-east-1", "production"),
        source,
        "the source is untouched"
    );
    // In A the snapshot role snapferry made is gone and the source has no repository of ours.
    assert!(
        !role_exists_as(&world, "AKIAADMINA", "handover-snapshot-role"),
        "the snapshot role is deleted from A"
    );
    let production = domain_in(&world, A, "us-east-1", "production").unwrap();
    let repositories = world.rt.block_on(async {
        let r = production
            .http()
            .send(http::Method::GET, "/_snapshot", None)
            .await
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()
    });
    assert!(
        repositories.get("snapferry-handover").is_none(),
        "{repositories}"
    );
    world.sandbox().advance_clock(3600.0);
    assert!(
        world
            .sandbox()
            .domain_endpoint_in(B, "eu-west-1", "staging")
            .is_none(),
        "the target is gone from B"
    );
}

/// Whether IAM role `name` exists in the account of the configured identity `access_key_id`.
fn role_exists_as(world: &World, access_key_id: &str, name: &str) -> bool {
    let env: std::collections::HashMap<String, String> = world
        .sandbox()
        .identity_env(access_key_id)
        .expect("a configured identity")
        .into_iter()
        .collect();
    let credentials = SharedCredentialsProvider::new(Credentials::new(
        env["AWS_ACCESS_KEY_ID"].clone(),
        env["AWS_SECRET_ACCESS_KEY"].clone(),
        None,
        None,
        "e2e",
    ));
    let options = snapferry_aws::clients::AwsOptions {
        endpoint_url: Some(world.sandbox().endpoint_url()),
        credentials: Some(credentials),
        fallback_region: Some("us-east-1".into()),
        ..Default::default()
    };
    world.rt.block_on(async {
        let iam = snapferry_aws::clients::AwsContext::load(options)
            .await
            .unwrap()
            .clients("us-east-1", None)
            .await
            .unwrap()
            .iam;
        match iam.get_role().role_name(name).send().await {
            Ok(_) => true,
            Err(e) => {
                let e = e.into_service_error();
                assert!(e.is_no_such_entity_exception(), "{e:?}");
                false
            }
        }
    })
}

#[test]
fn a_wrong_external_id_stops_plan_naming_the_role_and_the_fix() {
    let world = World::start_with(config());
    world.plan(
        "snapferry.yaml",
        &plan("wrong-id", &format!("  snapshot_role_arn: {B_READER}\n")),
    );
    let out = flat(&world.run_ok(&["plan"], 1));
    assert!(
        out.contains(&format!(
            "could not assume role {A_OPERATOR} of account {A}: User: \
             arn:aws:iam::{C}:user/sandbox is not authorized to perform: sts:AssumeRole on \
             resource: {A_OPERATOR}"
        )),
        "{out}"
    );
    assert!(
        out.contains(
            "the plan's `external_id` must equal the `sts:ExternalId` its trust policy asks for"
        ),
        "{out}"
    );
    assert!(world.mutating_calls().is_empty());
}

#[test]
fn a_role_passed_across_accounts_blocks_the_plan_naming_both_accounts_and_the_fix() {
    let world = World::start_with(config());
    // No role of B's own: the target would have to pass A's snapshot role.
    world.plan("snapferry.yaml", &plan("prod-handover-7f3a", ""));
    let out = flat(&world.run_ok(&["plan"], 1));
    assert!(
        out.contains(&format!(
            "domain staging is in account {B} and cannot register repository snapferry-handover \
             with role arn:aws:iam::{A}:role/handover-snapshot-role of account {A}"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "set `target.snapshot_role_arn` to a role of account {B}"
        )),
        "{out}"
    );
    let refused = flat(&world.run_ok(&["apply", "--auto-approve"], 1));
    assert!(refused.contains("cannot register repository"), "{refused}");
    assert!(world.mutating_calls().is_empty(), "nothing half-applied");
}

#[test]
fn each_assumed_role_is_assumed_once_however_many_requests_it_signs() {
    // Slower time, so a one-hour session outlives the run (180 s) by more than the tool's
    // two-minute renewal margin; the slow operations are shortened to match.
    let world = World::start_with(config_at(
        "time_scale: 0.05\nlatencies: {domain_creation_secs: 40, domain_deletion_secs: 20, \
         dns_propagation_secs: 4, iam_propagation_secs: 4, snapshot_secs: 10, restore_secs: 10}",
    ));
    world.plan("snapferry.yaml", &good_plan());
    let out = world.run_ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        counts_in(&world, B, "eu-west-1", "staging"),
        counts_in(&world, A, "us-east-1", "production"),
        "{out}"
    );
    let log = world.sandbox().request_log();
    let signed = log
        .iter()
        .filter(|r| r.service == "es-data" || r.service == "es" || r.service == "iam")
        .count();
    assert!(signed > 30, "{signed} requests signed by assumed roles");
    let mut assumed: Vec<_> = log
        .iter()
        .filter(|r| r.service == "sts" && r.operation == "AssumeRole")
        .filter_map(|r| r.target.clone())
        .collect();
    assumed.sort();
    assert_eq!(
        assumed,
        vec![A_OPERATOR.to_owned(), B_OPERATOR.to_owned()],
        "one AssumeRole per role for {signed} signed requests"
    );
}

#[test]
fn a_source_region_kms_key_for_the_target_blocks_the_plan_until_the_plan_names_its_own() {
    let mut config = config();
    let key = format!("arn:aws:kms:us-east-1:{A}:key/1234abcd-12ab-34cd-56ef-1234567890ab");
    config.domain_config.insert(
        "production".into(),
        serde_json::from_value(serde_json::json!({
            "EncryptionAtRestOptions": {"Enabled": true, "KmsKeyId": key},
            "NodeToNodeEncryptionOptions": {"Enabled": true},
            "DomainEndpointOptions": {"EnforceHTTPS": true}
        }))
        .unwrap(),
    );
    let world = World::start_with(config);
    world.plan("snapferry.yaml", &good_plan());
    let out = flat(&world.run_ok(&["plan"], 1));
    assert!(
        out.contains(&format!(
            "target domain staging is in eu-west-1 but its configuration uses KMS key {key} of \
             us-east-1 (encryption_at_rest.kms_key_id)"
        )),
        "{out}"
    );
    assert!(
        out.contains("set `target.overrides.encryption_at_rest.kms_key_id` to a key in eu-west-1"),
        "{out}"
    );
    assert!(world.mutating_calls().is_empty());

    // The plan names the target Region's own key: the domain is created with it.
    let own = format!("arn:aws:kms:eu-west-1:{B}:key/staging");
    world.plan(
        "snapferry.yaml",
        &plan(
            "prod-handover-7f3a",
            &format!(
                "  snapshot_role_arn: {B_READER}\n  overrides:\n    encryption_at_rest: \
                 {{enabled: true, kms_key_id: '{own}'}}\n"
            ),
        ),
    );
    let out = world.run_ok(&["plan"], 0);
    assert!(out.contains(&own), "{out}");
}

/// The sandbox `plans/cross-account.yaml` was written for: the operator in the source's account
/// (111111111111, us-west-2), which holds the bucket (and the plan's S3 state), the snapshot
/// role the platform team made and the `billing` domain; the target's account (222222222222)
/// with its operator role and the reader role.
pub(crate) fn cross_account_example() -> World {
    let a = "111111111111";
    let b = "222222222222";
    let yaml = format!(
        r#"
time_scale: 0.001
account_id: '{a}'
region: us-west-2
identities:
  - {{access_key_id: AKIAADMINA, secret_access_key: admin-a-secret, arn: 'arn:aws:iam::{a}:user/admin'}}
  - {{access_key_id: AKIAADMINB, secret_access_key: admin-b-secret, arn: 'arn:aws:iam::{b}:user/admin'}}
roles:
  - arn: arn:aws:iam::{a}:role/snapferry-operator
    trust_policy: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Principal: {{AWS: 'arn:aws:iam::{a}:root'}}, Action: 'sts:AssumeRole', Condition: {{StringEquals: {{'sts:ExternalId': billing-handover-a}}}}}}]}}
    policies:
      admin: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Action: '*', Resource: '*'}}]}}
  - arn: arn:aws:iam::{b}:role/snapferry-operator
    trust_policy: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Principal: {{AWS: 'arn:aws:iam::{a}:root'}}, Action: 'sts:AssumeRole', Condition: {{StringEquals: {{'sts:ExternalId': billing-handover-b}}}}}}]}}
    policies:
      admin: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Action: '*', Resource: '*'}}]}}
  - arn: arn:aws:iam::{a}:role/opensearch-snapshots
    trust_policy: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Principal: {{Service: es.amazonaws.com}}, Action: 'sts:AssumeRole'}}]}}
    policies:
      snapshots: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Action: ['s3:ListBucket', 's3:GetObject', 's3:PutObject', 's3:DeleteObject'], Resource: ['arn:aws:s3:::acme-billing-handover', 'arn:aws:s3:::acme-billing-handover/*']}}]}}
  - arn: arn:aws:iam::{b}:role/opensearch-snapshots-reader
    trust_policy: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Principal: {{Service: es.amazonaws.com}}, Action: 'sts:AssumeRole'}}]}}
    policies:
      read: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Action: ['s3:ListBucket', 's3:GetObject'], Resource: ['arn:aws:s3:::acme-billing-handover', 'arn:aws:s3:::acme-billing-handover/*']}}]}}
domains:
  - name: billing
    engine_version: OpenSearch_2.11
    indices: [{{name: invoices, generate: 50}}, {{name: payments, generate: 30}}]
buckets: [acme-billing-handover]
"#
    );
    World::start_with(SandboxConfig::from_yaml_str(&yaml).expect("valid config"))
}

/// `plans/cross-account.yaml` as shipped.
pub(crate) fn example(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../plans/{name}.yaml")),
    )
    .unwrap()
}

#[test]
fn the_cross_account_example_runs_end_to_end() {
    let world = cross_account_example();
    world.plan("snapferry.yaml", &example("cross-account"));
    let out = world.run_ok(&["apply", "--auto-approve"], 0);
    let source = counts_in(&world, A, "us-west-2", "billing");
    assert_eq!(
        source,
        vec![("invoices".into(), 50), ("payments".into(), 30)],
        "{out}"
    );
    assert_eq!(
        counts_in(&world, B, "us-west-2", "billing-copy"),
        source,
        "{out}"
    );
    // (A second plan is not checked here: on this three-node target the restore's primaries
    // relocate, which main's restore step still reads as a restore undone — the known
    // `replication::a_target_given_a_second_node_after_the_restore_is_not_restored_again`.)
}

#[test]
fn a_bucket_policy_that_keeps_b_out_stops_apply_naming_the_role_its_account_and_the_fix() {
    let world = World::start_with(config());
    // A guardrail of account A's own: B's reader may not read the bucket, whatever else says.
    let deny = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "guardrail-no-staging-reads", "Effect": "Deny",
        "Principal": {"AWS": B_READER}, "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::prod-snaps/*"}]});
    let s3 = world.s3_as("AKIAADMINA");
    world.rt.block_on(async {
        s3.put_bucket_policy()
            .bucket("prod-snaps")
            .policy(deny.to_string())
            .send()
            .await
            .unwrap()
    });
    world.plan("snapferry.yaml", &good_plan());
    let out = flat(&world.run_ok(&["apply", "--auto-approve"], 1));
    assert!(
        out.contains(&format!(
            "Role {B_READER} of account {B} may not use bucket prod-snaps: the bucket policy \
             must grant this role s3:ListBucket and s3:GetObject on the snapshot location"
        )),
        "{out}"
    );
    assert!(
        out.contains("an explicit Deny written by someone else wins over it"),
        "{out}"
    );
    // The guardrail is still there: snapferry never drops a foreign statement.
    let policy = world.bucket_policy_as("AKIAADMINA", "prod-snaps").unwrap();
    assert!(policy.to_string().contains("guardrail-no-staging-reads"));
}

/// The sandbox `plans/cross-region.yaml` was written for: one account (A, the operator's),
/// the `catalog` domain (Elasticsearch 7.10) in us-east-1 and nothing in eu-central-1.
fn cross_region_example() -> World {
    let yaml = format!(
        r#"
time_scale: 0.001
account_id: '{A}'
region: us-east-1
identities:
  - {{access_key_id: AKIAADMINA, secret_access_key: admin-a-secret, arn: 'arn:aws:iam::{A}:user/admin'}}
domains:
  - name: catalog
    engine_version: Elasticsearch_7.10
    indices: [{{name: items, generate: 70}}, {{name: prices, generate: 25}}]
"#
    );
    World::start_with(SandboxConfig::from_yaml_str(&yaml).expect("valid config"))
}

#[test]
fn the_cross_region_example_runs_end_to_end_and_destroy_leaves_the_source() {
    let world = cross_region_example();
    world.plan("snapferry.yaml", &example("cross-region"));
    let out = world.run_ok(&["apply", "--auto-approve"], 0);
    let source = counts_in(&world, A, "us-east-1", "catalog");
    assert_eq!(
        source,
        vec![("items".into(), 70), ("prices".into(), 25)],
        "{out}"
    );
    assert_eq!(
        counts_in(&world, A, "eu-central-1", "catalog-eu"),
        source,
        "counts equal in the other Region: {out}"
    );
    assert!(
        world
            .sandbox()
            .domain_endpoint_in(A, "us-east-1", "catalog-eu")
            .is_none(),
        "the target is in eu-central-1 only"
    );

    // The bucket is in the source's Region: a us-east-1 client reaches it (S3 answers a bucket
    // of another Region with 301 PermanentRedirect).
    let s3 = world.s3_as("AKIAADMINA");
    world.rt.block_on(async {
        s3.head_bucket()
            .bucket("acme-catalog-snapshots")
            .send()
            .await
            .expect("the bucket answers in us-east-1")
    });
    // The target's repository reaches it across Regions as AWS documents: by the global
    // endpoint, not by a `region` of another Region than the domain's.
    let target = domain_in(&world, A, "eu-central-1", "catalog-eu").unwrap();
    let response = world.rt.block_on(async {
        target
            .http()
            .send(http::Method::GET, "/_snapshot/snapferry-catalog-eu", None)
            .await
            .unwrap()
    });
    let repositories: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    let settings = &repositories["snapferry-catalog-eu"]["settings"];
    assert_eq!(settings["endpoint"], "s3.amazonaws.com", "{repositories}");
    assert!(settings.get("region").is_none(), "{repositories}");

    // destroy cleans up and leaves the source alone.
    let out = world.run_ok(&["destroy", "--include-target-domain", "--auto-approve"], 0);
    assert!(out.contains("Destroy complete"), "{out}");
    assert_eq!(
        counts_in(&world, A, "us-east-1", "catalog"),
        source,
        "the source is untouched"
    );
    let policy = world.bucket_policy_as("AKIAADMINA", "acme-catalog-snapshots");
    assert!(
        policy
            .as_ref()
            .is_none_or(|p| !p.to_string().contains("catalog-eu-snapshot-role")),
        "{policy:?}"
    );
    world.sandbox().advance_clock(3600.0);
    assert!(
        world
            .sandbox()
            .domain_endpoint_in(A, "eu-central-1", "catalog-eu")
            .is_none(),
        "the target is gone from eu-central-1"
    );
}

/// [`config`] with production in A's VPC in us-east-1 (subnet `subnet-0a11…`, group `sg-0a11…`),
/// another subnet of A's there, and B's own subnet and group in eu-west-1.
fn vpc_config() -> SandboxConfig {
    let mut config = config();
    config.domain_config.insert(
        "production".into(),
        serde_json::from_value(serde_json::json!({
            "VPCOptions": {"SubnetIds": ["subnet-0a11a11a11a11a11a"],
                           "SecurityGroupIds": ["sg-0a11a11a11a11a11a"]}
        }))
        .unwrap(),
    );
    for (id, account, region) in [
        ("subnet-0a22a22a22a22a22a", A, "us-east-1"),
        ("subnet-0b22b22b22b22b22b", B, "eu-west-1"),
        ("sg-0b22b22b22b22b22b", B, "eu-west-1"),
    ] {
        config.vpc_homes.insert(
            id.into(),
            snapferry_sandbox::Home {
                account: Some(account.into()),
                region: Some(region.into()),
            },
        );
    }
    config
}

/// The hand-over plan for VPC domains (both reached through `proxy`), the target in `vpc`.
fn vpc_plan(proxy: &str, vpc: Option<(&str, &str)>) -> String {
    let overrides = vpc.map_or_else(String::new, |(subnet, group)| {
        format!(
            "  overrides:\n    vpc: {{subnet_ids: [{subnet}], security_group_ids: [{group}]}}\n"
        )
    });
    plan(
        "prod-handover-7f3a",
        &format!("  snapshot_role_arn: {B_READER}\n  proxy: {proxy}\n{overrides}"),
    )
    .replace(
        "  external_id: prod-handover-7f3a\n",
        &format!("  external_id: prod-handover-7f3a\n  proxy: {proxy}\n"),
    )
}

#[test]
fn a_subnet_of_another_region_or_account_stops_plan_or_apply_naming_it_and_the_fix() {
    let world = World::start_with(vpc_config());
    let socks = snapferry_tests::socks::SocksServer::start(|host| {
        host.ends_with(".sandbox.internal")
            .then_some(std::net::IpAddr::from([127, 0, 0, 1]))
    });
    let proxy = socks.url();

    // Copied from the source: the source's subnets are us-east-1's.
    world.plan("snapferry.yaml", &vpc_plan(&proxy, None));
    let out = flat(&world.run_ok(&["plan"], 1));
    assert!(
        out.contains(
            "target domain staging is in eu-west-1 but would copy the VPC subnets \
             subnet-0a11a11a11a11a11a (and security groups sg-0a11a11a11a11a11a) of source \
             Region us-east-1 (vpc)"
        ),
        "{out}"
    );
    // Named in the plan, but the source's own: `plan` knows where it is.
    world.plan(
        "snapferry.yaml",
        &vpc_plan(
            &proxy,
            Some(("subnet-0a11a11a11a11a11a", "sg-0b22b22b22b22b22b")),
        ),
    );
    let out = flat(&world.run_ok(&["plan"], 1));
    assert!(
        out.contains(
            "target domain staging is in eu-west-1 but its `vpc` names subnet-0a11a11a11a11a11a, \
             which the source domain uses in us-east-1"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "set `target.overrides.vpc.subnet_ids` and `security_group_ids` to ones in eu-west-1"
        ),
        "{out}"
    );
    assert!(world.mutating_calls().is_empty(), "plan changed nothing");

    // Another subnet of A's us-east-1 VPC: nothing in the plan tells its Region, so `plan`
    // passes and CreateDomain refuses it, as AWS does, with the fix added.
    world.plan(
        "snapferry.yaml",
        &vpc_plan(
            &proxy,
            Some(("subnet-0a22a22a22a22a22a", "sg-0b22b22b22b22b22b")),
        ),
    );
    let planned = world.run_ok(&["plan"], 0);
    assert!(planned.contains("+ domain/staging"), "{planned}");
    let out = flat(&world.run_ok(&["apply", "--auto-approve"], 1));
    assert!(
        out.contains(&format!(
            "The subnet ID 'subnet-0a22a22a22a22a22a' does not exist. Domain staging is created \
             in account {B}, eu-west-1, and a subnet or security group exists only in its own \
             account and Region; set `target.overrides.vpc.subnet_ids` and \
             `security_group_ids` to ones of account {B} in eu-west-1"
        )),
        "{out}"
    );
    let refused = world
        .sandbox()
        .request_log()
        .into_iter()
        .filter(|r| r.operation == "CreateDomain")
        .map(|r| r.status)
        .collect::<Vec<_>>();
    assert_eq!(refused, vec![400], "one refused CreateDomain, not retried");
    assert!(
        world
            .sandbox()
            .domain_endpoint_in(B, "eu-west-1", "staging")
            .is_none()
    );

    // B's own subnet and group in eu-west-1: the copy goes through.
    world.plan(
        "snapferry.yaml",
        &vpc_plan(
            &proxy,
            Some(("subnet-0b22b22b22b22b22b", "sg-0b22b22b22b22b22b")),
        ),
    );
    let out = world.run_ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        counts_in(&world, B, "eu-west-1", "staging"),
        counts_in(&world, A, "us-east-1", "production"),
        "{out}"
    );
}
