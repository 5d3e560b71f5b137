//! End to end: the operator policy `docs/aws-setup.md` documents is exactly what snapferry needs.
//!
//! The policy is read from the page itself (the fenced JSON block after the
//! `<!-- least-privilege: operator-policy -->` marker, plus the `delete-target-domain` statement),
//! and the sandbox holds the operator to it as IAM would. *Sufficient*: every scenario (a
//! replication and `destroy --include-target-domain`; a new bucket with encryption; a target
//! with a customer-managed KMS key; a VPC domain through a bastion's proxy; a fresh account's
//! first domain; a second apply that repairs a drifted role and resizes and tags the target; a
//! target whose internal master's password is kept in Secrets Manager) runs to the end with
//! exactly that policy. *Necessary*: for each action of the policy, a fresh sandbox runs
//! the scenario that needs it with that one action removed, and the run must stop (exit 1) with
//! a message naming the action. An action the docs list that no scenario needs fails the test:
//! either snapferry never needs it (remove it from the docs) or a scenario is missing.

use std::sync::Mutex;

use crate::common;

use common::{World, flat, index, output_text, source_domain, user_indices};
use serde_json::{Value, json};
use snapferry_sandbox::{
    IdentityConfig, LatencyConfig, SandboxConfig, SeedDomainSecurity, SeedFgac,
};

/// The example values of `docs/aws-setup.md`, so its policy is used as written.
const ACCOUNT: &str = "111111111111";
const REGION: &str = "eu-west-1";
const OPERATOR_KEY: &str = "AKIAOPERATOREXAMPLE1";
const OPERATOR_ARN: &str = "arn:aws:iam::111111111111:user/snapferry-operator";
const KEY_ARN: &str = "arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// The JSON block that follows `<!-- least-privilege: <name> -->` in the AWS set-up page.
fn documented(name: &str) -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/aws-setup.md");
    let page = std::fs::read_to_string(path).expect("docs/aws-setup.md is readable");
    let marker = format!("<!-- least-privilege: {name} -->");
    let after = page
        .split_once(&marker)
        .unwrap_or_else(|| panic!("docs/aws-setup.md has no {marker}"))
        .1;
    let body = after
        .trim_start()
        .strip_prefix("```json")
        .unwrap_or_else(|| panic!("{marker} is not followed by a ```json block"));
    let json = &body[..body.find("```").expect("the block is closed")];
    serde_json::from_str(json).unwrap_or_else(|e| panic!("the {name} block is not JSON: {e}"))
}

/// The operator's whole policy: the main document plus the statement for deleting the target.
fn operator_policy() -> Value {
    let mut policy = documented("operator-policy");
    let delete = documented("delete-target-domain");
    policy["Statement"].as_array_mut().unwrap().push(delete);
    policy
}

fn action_list(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn actions(policy: &Value) -> Vec<String> {
    let mut all: Vec<String> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(action_list)
        .collect();
    all.dedup();
    all
}

/// The policy with one action taken out of every statement (a statement left with none goes).
fn without(policy: &Value, action: &str) -> Value {
    let statements: Vec<Value> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| {
            let rest: Vec<String> = action_list(s).into_iter().filter(|a| a != action).collect();
            if rest.is_empty() {
                return None;
            }
            let mut s = s.clone();
            s["Action"] = json!(rest);
            Some(s)
        })
        .collect();
    json!({"Version": policy["Version"], "Statement": statements})
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Replicate, then `destroy --include-target-domain`; remote state in S3.
    Replicate,
    /// `bucket.create: true` with `sse: AES256`.
    NewBucket,
    /// A target encrypted with a customer-managed KMS key.
    CustomerManagedKey,
    /// A VPC source copied into a VPC target, the domains reached through a SOCKS proxy.
    Vpc,
    /// The account's first domain: OpenSearch Service creates its service-linked role.
    FreshAccount,
    /// An applied replication whose role's trust policy drifted, applied again with
    /// `--reconcile-drift` and a larger, newly tagged target.
    Drift,
    /// Source and target with fine-grained access control, the operator their master: the
    /// `security` step maps the snapshot role and the operator, and `destroy` unmaps them. (The
    /// seeded source is encrypted with a key of its own; the target uses the documented one.)
    Fgac,
    /// A target whose internal master's password is kept in AWS Secrets Manager: the apply
    /// reads it (`secretsmanager:GetSecretValue` on that secret) to create the target and to
    /// call its security API as that master.
    MasterSecret,
}

const SCENARIOS: [Scenario; 8] = [
    Scenario::Fgac,
    Scenario::MasterSecret,
    Scenario::Replicate,
    Scenario::NewBucket,
    Scenario::CustomerManagedKey,
    Scenario::Vpc,
    Scenario::FreshAccount,
    Scenario::Drift,
];

/// Where each documented action is needed (and so where removing it must stop the run).
fn needed_in(action: &str) -> Option<Scenario> {
    use Scenario as S;
    Some(match action {
        "iam:CreateRole"
        | "iam:GetRole"
        | "iam:PutRolePolicy"
        | "iam:TagRole"
        | "iam:DeleteRolePolicy"
        | "iam:DeleteRole"
        | "iam:PassRole" => S::Replicate,
        // Read only once the role exists: on the run after the one that created it.
        "iam:GetRolePolicy" | "iam:UpdateAssumeRolePolicy" => S::Drift,
        "iam:CreateServiceLinkedRole" => S::FreshAccount,
        "s3:GetBucketPolicy"
        | "s3:PutBucketPolicy"
        | "s3:DeleteBucketPolicy"
        | "s3:ListBucket"
        | "s3:GetObject"
        | "s3:PutObject"
        | "s3:DeleteObject" => S::Replicate,
        "s3:CreateBucket" | "s3:PutEncryptionConfiguration" => S::NewBucket,
        "es:ESHttpGet" | "es:ESHttpPut" | "es:ESHttpPost" | "es:ESHttpDelete" => S::Replicate,
        // The security step's JSON-patch calls to the security plugin's REST API.
        "es:ESHttpPatch" => S::Fgac,
        "secretsmanager:GetSecretValue" => S::MasterSecret,
        "es:CreateDomain" | "es:DescribeDomain" | "es:ListTags" | "es:DeleteDomain" => S::Replicate,
        // CreateDomain carries its tags; AddTags is for changing those of an existing target.
        "es:UpdateDomainConfig" | "es:AddTags" => S::Drift,
        "kms:DescribeKey" | "kms:CreateGrant" => S::CustomerManagedKey,
        "ec2:DescribeVpcs" | "ec2:DescribeSubnets" | "ec2:DescribeSecurityGroups" => S::Vpc,
        _ => return None,
    })
}

fn plan(scenario: Scenario, proxy: Option<&str>) -> String {
    let mut plan = format!(
        "version: 1\nname: orders\nregion: {REGION}\n\
         state:\n  s3:\n    bucket: acme-snapferry-state\n    key: orders.json\n"
    );
    plan.push_str("bucket:\n  name: acme-orders-snapshots\n");
    if scenario == Scenario::NewBucket {
        plan.push_str("  create: true\n  sse: AES256\n");
    }
    plan.push_str("source:\n  domain: orders-prod\n");
    if let Some(proxy) = proxy {
        plan.push_str(&format!("  proxy: {proxy}\n"));
    }
    plan.push_str("target:\n  domain: orders-copy\n");
    if let Some(proxy) = proxy {
        plan.push_str(&format!("  proxy: {proxy}\n"));
    }
    if scenario == Scenario::Fgac {
        plan.push_str(&format!(
            "  overrides:\n    fine_grained_access_control:\n      master_user_arn: {OPERATOR_ARN}\n\
             \x20   encryption_at_rest:\n      enabled: true\n      kms_key_id: {KEY_ARN}\n"
        ));
    }
    if scenario == Scenario::MasterSecret {
        plan.push_str(&format!(
            "  overrides:\n    fine_grained_access_control:\n      master_user_name: admin\n\
             \x20     master_user_password: {{ secrets_manager: orders/master, key: password }}\n\
             \x20   encryption_at_rest:\n      enabled: true\n      kms_key_id: {KEY_ARN}\n"
        ));
    }
    if scenario == Scenario::CustomerManagedKey {
        plan.push_str(&format!(
            "  overrides:\n    encryption_at_rest:\n      enabled: true\n      kms_key_id: {KEY_ARN}\n"
        ));
    }
    plan
}

/// The drifted scenario's second plan: the same, with a larger, newly tagged target.
fn resized(plan: &str) -> String {
    format!(
        "{plan}  overrides:\n    cluster_config:\n      instance_count: 2\n    tags:\n      team: search\n"
    )
}

fn start(scenario: Scenario, policy: &Value) -> World {
    // No replicas: the drift scenario gives the target a second node, which would allocate them,
    // and snapferry does not yet tell a replica's PEER recovery from a restore it must redo
    // (`replication::a_target_given_a_second_node_after_the_restore_is_not_restored_again`).
    // This test is about permissions; that gap fails where it is shown.
    let no_replicas = |mut i: snapferry_sandbox::SeedIndex| {
        i.settings = Some(json!({"index": {"number_of_replicas": 0}}));
        i
    };
    let mut source = source_domain(
        "orders-prod",
        vec![
            no_replicas(index("orders", 300)),
            no_replicas(index("customers", 120)),
        ],
    );
    source.vpc = scenario == Scenario::Vpc;
    let mut buckets = vec!["acme-snapferry-state".to_owned()];
    if scenario != Scenario::NewBucket {
        buckets.push("acme-orders-snapshots".to_owned());
    }
    let mut domain_security = std::collections::BTreeMap::new();
    if matches!(scenario, Scenario::Fgac | Scenario::MasterSecret) {
        // The internal master calls with HTTP basic auth, unsigned: a domain with FGAC and an
        // internal master is reached through an open policy (which the target copies), as AWS
        // recommends; the security plugin does the authorizing.
        let open = (scenario == Scenario::MasterSecret).then(|| {
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"AWS": "*"}, "Action": "es:ESHttp*",
                "Resource": format!("arn:aws:es:{REGION}:{ACCOUNT}:domain/orders-prod/*")}]})
        });
        domain_security.insert(
            "orders-prod".to_owned(),
            SeedDomainSecurity {
                access_policy: open,
                fine_grained_access_control: Some(SeedFgac {
                    master_user_arn: Some(OPERATOR_ARN.into()),
                    ..SeedFgac::default()
                }),
            },
        );
    }
    World::start_with(SandboxConfig {
        account_id: ACCOUNT.into(),
        domain_security,
        region: REGION.into(),
        domains: vec![source],
        buckets,
        secrets: vec![snapferry_sandbox::SeedSecret {
            name: "orders/master".into(),
            secret_string: Some(
                r#"{"username": "admin", "password": "Orders-Master-Passw0rd!"}"#.into(),
            ),
            ..Default::default()
        }],
        service_linked_role: Some(scenario != Scenario::FreshAccount),
        identities: vec![IdentityConfig {
            access_key_id: OPERATOR_KEY.into(),
            secret_access_key: "operator/secret/example".into(),
            session_token: None,
            arn: OPERATOR_ARN.into(),
            policies: Some(vec![policy.clone()]),
        }],
        // This test is about permissions, so the only refusals may be permission refusals. IAM's
        // propagation delay is another matter: snapferry does not yet retry S3's MalformedPolicy
        // for the role it has just created (`replication::the_bucket_policy_waits_for_the_role_
        // it_just_created_to_propagate`), and at time_scale 0.001 a run that reaches
        // PutBucketPolicy within 10 ms of CreateRole would stop on it here.
        latencies: LatencyConfig {
            iam_propagation_secs: 0.0,
            ..LatencyConfig::default()
        },
        ..SandboxConfig::default()
    })
}

/// A step that stopped the scenario: which command, its exit code and its output.
struct Stopped {
    step: String,
    code: Option<i32>,
    text: String,
}

fn as_operator(world: &World, args: &[&str]) -> Result<String, Stopped> {
    let out = world.command_as(OPERATOR_KEY, args).output().unwrap();
    let text = output_text(&out);
    if out.status.success() {
        Ok(text)
    } else {
        Err(Stopped {
            step: format!("snapferry {}", args.join(" ")),
            code: out.status.code(),
            text,
        })
    }
}

/// Runs a scenario as the operator; `Ok` holds what the sufficiency check looks at.
fn run(scenario: Scenario, policy: &Value) -> Result<(), Stopped> {
    let world = start(scenario, policy);
    let socks = (scenario == Scenario::Vpc).then(|| {
        snapferry_tests::socks::SocksServer::start(|host| {
            host.ends_with(".sandbox.internal")
                .then_some(std::net::IpAddr::from([127, 0, 0, 1]))
        })
    });
    let text = plan(scenario, socks.as_ref().map(|s| s.url()).as_deref());
    world.plan("snapferry.yaml", &text);
    let apply = ["apply", "--auto-approve"];
    match scenario {
        Scenario::Drift => {
            // Applied by an administrator; then someone edits the role's trust policy.
            world.run_ok(&apply, 0);
            let iam = world.aws().iam;
            world.rt.block_on(async {
                iam.update_assume_role_policy()
                    .role_name("orders-snapshot-role")
                    .policy_document(
                        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                            "Principal": {"Service": "es.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
                        .to_string(),
                    )
                    .send()
                    .await
                    .unwrap();
            });
            world.plan("snapferry.yaml", &resized(&text));
            as_operator(&world, &["apply", "--auto-approve", "--reconcile-drift"])?;
        }
        Scenario::Fgac | Scenario::MasterSecret => {
            // Only the operator is mapped on these domains, so the counts are the ones the
            // apply's `verify` step compared (it fails the run when they differ).
            let text = as_operator(&world, &apply)?;
            assert!(text.contains("verify/orders: done"), "{text}");
            as_operator(
                &world,
                &["destroy", "--auto-approve", "--include-target-domain"],
            )?;
        }
        Scenario::Replicate => {
            as_operator(&world, &apply)?;
            assert_eq!(
                user_indices(&world.counts("orders-copy")),
                vec![("customers".to_owned(), 120), ("orders".to_owned(), 300)]
            );
            as_operator(
                &world,
                &["destroy", "--auto-approve", "--include-target-domain"],
            )?;
        }
        _ => {
            as_operator(&world, &apply)?;
            assert_eq!(
                user_indices(&world.counts("orders-copy")).len(),
                2,
                "{scenario:?}: both indices restored"
            );
        }
    }
    Ok(())
}

#[test]
fn the_documented_operator_policy_is_sufficient_and_every_action_in_it_is_necessary() {
    let policy = operator_policy();
    let actions = actions(&policy);
    let unexplained: Vec<&String> = actions.iter().filter(|a| needed_in(a).is_none()).collect();
    assert!(
        unexplained.is_empty(),
        "docs/aws-setup.md grants {unexplained:?}, which no scenario of this test needs: \
         remove them from the operator policy, or add the scenario that needs them"
    );

    // Sufficient: every scenario runs to the end with exactly the documented policy.
    for scenario in SCENARIOS {
        if let Err(stopped) = run(scenario, &policy) {
            panic!(
                "{scenario:?} with the documented policy: {} exited {:?}:\n{}",
                stopped.step, stopped.code, stopped.text
            );
        }
    }

    // Necessary: without any one action, the scenario that needs it stops and names it.
    let queue = Mutex::new(actions.clone());
    let problems = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                loop {
                    let Some(action) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let scenario = needed_in(&action).unwrap();
                    let problem = match run(scenario, &without(&policy, &action)) {
                        Ok(()) => Some(format!(
                            "{action}: {scenario:?} ran to the end without it (not needed?)"
                        )),
                        Err(s) if s.code != Some(1) => Some(format!(
                            "{action}: {} exited {:?}, not 1:\n{}",
                            s.step, s.code, s.text
                        )),
                        Err(s) if !flat(&s.text).contains(&action) => Some(format!(
                            "{action}: {} stopped without naming it:\n{}",
                            s.step, s.text
                        )),
                        Err(_) => None,
                    };
                    problems.lock().unwrap().extend(problem);
                }
            });
        }
    });
    let problems = problems.into_inner().unwrap();
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
