//! The copy is never less protected than its source (issue #14): a source with fine-grained
//! access control (FGAC) and the open access policy AWS recommends with it gives a target with
//! FGAC, its master named in the plan — or a plan blocked with the fix; never a target AWS
//! would refuse, nor one more open than the source. Public and VPC sources alike. An internal
//! master's password comes from an environment variable, reaches CreateDomain and nowhere
//! else (output, state, saved plan).

use crate::common;

use common::{World, index, source_domain};
use snapferry_sandbox::SandboxConfig;

/// The identity the e2e runs sign with (the sandbox's administrator credentials).
const OPERATOR: &str = "arn:aws:iam::123456789012:user/sandbox";
const PASSWORD: &str = "Fgac-Test-Passw0rd!DoNotLeak";

fn open_policy(domain: &str) -> String {
    format!(
        "{{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Principal: {{AWS: \"*\"}}, \
         Action: \"es:ESHttp*\", Resource: \"arn:aws:es:us-east-1:123456789012:domain/{domain}/*\"}}]}}"
    )
}

/// `shop-prod` with FGAC (master: the operator) and an open policy; public or in a VPC.
fn fgac_source(vpc: bool) -> SandboxConfig {
    let yaml = format!(
        "domains:\n  - {{name: shop-prod, vpc: {vpc}, indices: [{{name: products, generate: 30}}, {{name: orders, generate: 20}}]}}\n\
         domain_security:\n  shop-prod:\n    access_policy: {}\n    fine_grained_access_control: {{master_user_arn: \"{OPERATOR}\"}}\n",
        open_policy("shop-prod")
    );
    SandboxConfig::from_yaml_str(&yaml).expect("config")
}

fn plan(target: &str) -> String {
    format!(
        "version: 1\nname: shop\nregion: us-east-1\nbucket:\n  name: shop-snapshots\n  create: true\n\
         source:\n  domain: shop-prod\ntarget:\n  domain: shop-copy\n{target}"
    )
}

/// The target's `AdvancedSecurityOptions` as DescribeDomain shows them.
fn target_security(world: &World) -> (bool, bool) {
    let clients = world.aws();
    world.rt.block_on(async {
        let status = clients
            .opensearch
            .describe_domain()
            .domain_name("shop-copy")
            .send()
            .await
            .expect("DescribeDomain shop-copy")
            .domain_status
            .expect("a status");
        let a = status
            .advanced_security_options()
            .expect("security options");
        (
            a.enabled() == Some(true),
            a.internal_user_database_enabled() == Some(true),
        )
    })
}

fn creates(world: &World) -> usize {
    world
        .mutating_calls()
        .iter()
        .filter(|r| r.operation == "CreateDomain")
        .count()
}

#[test]
fn a_public_fgac_source_without_a_master_in_the_plan_blocks_the_plan_with_the_fix() {
    let world = World::start_with(fgac_source(false));
    world.plan("snapferry.yaml", &plan(""));
    let text = common::flat(&world.run_ok(&["plan"], 1));
    assert!(text.contains("! domain/shop-copy (blocked)"), "{text}");
    assert!(
        text.contains(
            "source domain shop-prod has fine-grained access control, so target domain \
             shop-copy gets it too and needs a master user, which AWS never shows: name it in \
             the target's `overrides.fine_grained_access_control`"
        ),
        "{text}"
    );
    // Asking for a copy without FGAC is refused too.
    world.plan(
        "snapferry.yaml",
        &plan("  overrides:\n    fine_grained_access_control: { enabled: false }\n"),
    );
    let text = common::flat(&world.run_ok(&["plan"], 1));
    assert!(
        text.contains("snapferry never makes a copy less protected than its source"),
        "{text}"
    );
    assert_eq!(creates(&world), 0);
}

#[test]
fn a_public_fgac_source_with_an_open_policy_replicates_into_a_target_with_fgac() {
    let world = World::start_with(fgac_source(false));
    world.plan(
        "snapferry.yaml",
        &plan(&format!(
            "  overrides:\n    fine_grained_access_control: {{ master_user_arn: \"{OPERATOR}\" }}\n"
        )),
    );
    let text = world.run_ok(&["plan"], 0);
    assert!(text.contains("fine_grained_access_control: true"), "{text}");
    assert!(
        text.contains(&format!("master_user: \"{OPERATOR}\"")),
        "{text}"
    );
    world.run_ok(&["apply", "--auto-approve"], 0);
    assert_eq!(target_security(&world), (true, false));
    // The open policy was copied, rewritten to the target (FGAC is what protects it).
    let clients = world.aws();
    let policy = world.rt.block_on(async {
        clients
            .opensearch
            .describe_domain()
            .domain_name("shop-copy")
            .send()
            .await
            .unwrap()
            .domain_status
            .unwrap()
            .access_policies
            .unwrap_or_default()
    });
    assert!(policy.contains("domain/shop-copy/*"), "{policy}");
    assert!(!policy.contains("shop-prod"), "{policy}");
    assert_eq!(
        common::user_indices(&world.counts("shop-copy")),
        common::user_indices(&world.counts("shop-prod"))
    );
    world.run_ok(&["plan", "--detailed-exitcode"], 0);
    // The master is needed only to create the target: an existing one keeps its own, so a plan
    // that no longer names it is not blocked and changes nothing.
    world.plan("snapferry.yaml", &plan(""));
    world.run_ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn an_internal_master_password_comes_from_the_environment_and_is_never_shown_or_kept() {
    let world = World::start_with(fgac_source(false));
    world.plan(
        "snapferry.yaml",
        &plan(
            "  overrides:\n    fine_grained_access_control:\n      master_user_name: admin\n      \
             master_user_password: { env: SHOP_MASTER_PASSWORD }\n",
        ),
    );
    // Without the variable the plan is blocked, naming it.
    let text = common::flat(&world.run_ok(&["plan"], 1));
    assert!(
        text.contains(
            "the master user's password is to come from environment variable \
             SHOP_MASTER_PASSWORD, which is not set"
        ),
        "{text}"
    );
    let run = |args: &[&str], code: i32| {
        let out = world
            .command(args)
            .env("SHOP_MASTER_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        let text = common::output_text(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {text}");
        assert!(
            !text.contains(PASSWORD),
            "{args:?} printed the password: {text}"
        );
        text
    };
    // Only the domain: the operator is not mapped on a target whose master is internal.
    let text = run(
        &["plan", "-o", "saved.plan", "--target", "domain/shop-copy"],
        0,
    );
    assert!(text.contains("master_user: \"admin\""), "{text}");
    assert!(text.contains("master_user_password: (sensitive)"), "{text}");
    assert!(
        text.contains("master_user_password_from: \"environment variable SHOP_MASTER_PASSWORD\""),
        "{text}"
    );
    run(&["apply", "saved.plan"], 0);
    assert_eq!(target_security(&world), (true, true));
    for entry in walk(world.dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(PASSWORD),
            "{} holds the password",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn a_vpc_fgac_source_with_an_open_policy_gives_a_target_with_fgac_or_a_blocked_plan() {
    let world = World::start_with(fgac_source(true));
    world.plan("snapferry.yaml", &plan(""));
    let text = common::flat(&world.run_ok(&["plan", "--target", "domain/shop-copy"], 1));
    assert!(
        text.contains("gets it too and needs a master user"),
        "{text}"
    );
    world.plan(
        "snapferry.yaml",
        &plan(&format!(
            "  overrides:\n    fine_grained_access_control: {{ master_user_arn: \"{OPERATOR}\" }}\n"
        )),
    );
    let text = world.run_ok(&["plan", "--target", "domain/shop-copy"], 0);
    assert!(text.contains("fine_grained_access_control: true"), "{text}");
    assert!(text.contains("subnet_ids:"), "{text}");
    world.run_ok(
        &["apply", "--auto-approve", "--target", "domain/shop-copy"],
        0,
    );
    // Never a VPC target without FGAC and with an open policy.
    assert_eq!(target_security(&world), (true, false));
}

#[test]
fn a_public_target_with_an_open_policy_and_no_fgac_is_blocked_in_plan() {
    let world = World::start_with(SandboxConfig {
        domains: vec![source_domain("shop-prod", vec![index("products", 3)])],
        ..SandboxConfig::default()
    });
    world.plan(
        "snapferry.yaml",
        &plan(&format!(
            "  overrides:\n    access_policy: {}\n",
            open_policy("shop-copy")
        )),
    );
    let text = common::flat(&world.run_ok(&["plan"], 1));
    assert!(
        text.contains(
            "target domain shop-copy would be public, with an access policy open to anyone and \
             no fine-grained access control: AWS refuses such a domain and snapferry never \
             creates one"
        ),
        "{text}"
    );
    assert_eq!(creates(&world), 0);
}

// ---- The `security` step (issue #14 item 3) ----

const TARGET_PASSWORD: &str = "Copy-Master-Passw0rd!DoNotLeak";
const OTHER_TEAM: &str = "arn:aws:iam::123456789012:role/other-team";
const SNAPSHOT_ROLE: &str = "arn:aws:iam::123456789012:role/shop-snapshot-role";

/// A plan whose target's master is an internal user (password from the environment): snapferry
/// signs every data call as the operator, who is mapped on the target only by the step.
fn internal_target_plan(extra: &str) -> String {
    plan(&format!(
        "  overrides:\n    fine_grained_access_control:\n      master_user_name: admin\n      \
         master_user_password: {{ env: SHOP_MASTER_PASSWORD }}\n{extra}"
    ))
}

/// `snapferry` with the target master's password in its environment.
fn run_with_password(world: &World, args: &[&str], code: i32) -> String {
    let out = world
        .command(args)
        .env("SHOP_MASTER_PASSWORD", TARGET_PASSWORD)
        .output()
        .unwrap();
    let text = common::output_text(&out);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {text}");
    assert!(
        !text.contains(TARGET_PASSWORD),
        "{args:?} printed the password: {text}"
    );
    text
}

/// A security API call on a domain: signed as the sandbox's administrator, or as an internal
/// user with basic auth. Returns (status, body).
fn security_api(
    world: &World,
    domain: &str,
    basic: Option<(&str, &str)>,
    method: http::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let client = world.domain(domain);
    let mut http = client.http().clone();
    if let Some((user, password)) = basic {
        http = http.with_basic_auth(user, password);
    }
    world.rt.block_on(async {
        match http.send(method, path, body.as_ref()).await {
            Ok(r) => (
                r.status,
                serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null),
            ),
            Err(e) => (e.status().unwrap_or(0), serde_json::json!(e.to_string())),
        }
    })
}

fn mapping(world: &World, domain: &str, basic: Option<(&str, &str)>) -> Option<serde_json::Value> {
    let (status, body) = security_api(
        world,
        domain,
        basic,
        http::Method::GET,
        "/_plugins/_security/api/rolesmapping/snapferry",
        None,
    );
    match status {
        200 => Some(body["snapferry"].clone()),
        404 => None,
        other => panic!("GET rolesmapping/snapferry on {domain}: {other} {body}"),
    }
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn the_security_step_maps_snapferry_on_both_fgac_domains_and_destroy_leaves_every_other_mapping() {
    let world = World::start_with(fgac_source(false));
    // Someone already maps another team to a `snapferry` role on the source.
    let role =
        snapferry_aws::resources::security_role_body(snapferry_plan::RepositorySide::Source, false);
    let (status, body) = security_api(
        &world,
        "shop-prod",
        None,
        http::Method::PUT,
        "/_plugins/_security/api/roles/snapferry",
        Some(role),
    );
    assert_eq!(status, 201, "{body}");
    let seeded =
        serde_json::json!({"backend_roles": [OTHER_TEAM], "hosts": ["10.0.0.7"], "users": []});
    let (status, body) = security_api(
        &world,
        "shop-prod",
        None,
        http::Method::PUT,
        "/_plugins/_security/api/rolesmapping/snapferry",
        Some(seeded),
    );
    assert_eq!(status, 201, "{body}");
    let before = mapping(&world, "shop-prod", None).expect("the seeded mapping");

    world.plan("snapferry.yaml", &internal_target_plan(""));
    let text = run_with_password(&world, &["plan"], 0);
    assert!(text.contains("security/shop-prod"), "{text}");
    assert!(text.contains("security/shop-copy"), "{text}");
    assert!(text.contains(SNAPSHOT_ROLE), "{text}");
    run_with_password(&world, &["apply", "--auto-approve"], 0);

    // The target's documents are there: the operator was let in by the step's mapping alone.
    assert_eq!(
        common::user_indices(&world.counts("shop-copy")),
        common::user_indices(&world.counts("shop-prod"))
    );
    let admin = Some(("admin", TARGET_PASSWORD));
    let target = mapping(&world, "shop-copy", admin).expect("the target's mapping");
    assert_eq!(
        strings(&target["backend_roles"]),
        vec![SNAPSHOT_ROLE.to_owned()]
    );
    assert_eq!(strings(&target["users"]), vec![OPERATOR.to_owned()]);
    // Merged on the source: the other team's entries are all still there.
    let source = mapping(&world, "shop-prod", None).expect("the source's mapping");
    assert_eq!(
        strings(&source["backend_roles"]),
        vec![OTHER_TEAM.to_owned(), SNAPSHOT_ROLE.to_owned()]
    );
    assert_eq!(strings(&source["hosts"]), vec!["10.0.0.7".to_owned()]);
    assert_eq!(strings(&source["users"]), vec![OPERATOR.to_owned()]);
    // Idempotent: nothing left to do.
    run_with_password(&world, &["plan", "--detailed-exitcode"], 0);

    run_with_password(&world, &["destroy", "--auto-approve"], 0);
    // What was there before is there, exactly; what snapferry made on the target is gone.
    assert_eq!(mapping(&world, "shop-prod", None), Some(before));
    let (status, _) = security_api(
        &world,
        "shop-prod",
        None,
        http::Method::GET,
        "/_plugins/_security/api/roles/snapferry",
        None,
    );
    assert_eq!(
        status, 200,
        "the source's role was not snapferry's to delete"
    );
    assert_eq!(mapping(&world, "shop-copy", admin), None);
    let (status, _) = security_api(
        &world,
        "shop-copy",
        admin,
        http::Method::GET,
        "/_plugins/_security/api/roles/snapferry",
        None,
    );
    assert_eq!(status, 404, "the role snapferry created on the target goes");
}

#[test]
fn without_the_security_step_plan_shows_the_mapping_to_make_by_hand() {
    let world = World::start_with(fgac_source(false));
    world.plan("snapferry.yaml", &internal_target_plan("security: false\n"));
    let text = common::flat(&run_with_password(&world, &["plan"], 1));
    assert!(text.contains("! security/shop-prod (blocked)"), "{text}");
    assert!(
        text.contains(
            "`security: false`: domain shop-prod has fine-grained access control and lacks the \
             mapping snapferry needs; as domain shop-prod's master user, make the mapping by hand: \
             `PUT _plugins/_security/api/roles/snapferry`"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "`PATCH _plugins/_security/api/rolesmapping/snapferry` with \
             [{{\"op\":\"add\",\"path\":\"/backend_roles/-\",\"value\":\"{SNAPSHOT_ROLE}\"}},\
             {{\"op\":\"add\",\"path\":\"/users/-\",\"value\":\"{OPERATOR}\"}}]"
        )),
        "{text}"
    );
    // The copy does not exist yet: its check waits for it (the source's blocks the apply).
    assert!(
        text.contains(
            "~ security/shop-copy (update) live state: \"`security: false`: checked once domain \
             shop-copy exists"
        ),
        "{text}"
    );
    assert_eq!(creates(&world), 0);
}

/// `security: false` with a copy to create: apply creates it and stops at its check with the
/// calls to make as its master; made by hand, the next apply finishes the copy.
#[test]
fn without_the_security_step_a_new_copy_is_created_then_checked_once_it_exists() {
    let world = World::start_with(fgac_source(false));
    // The source's mapping made by hand, as its master (the operator).
    let mapped = serde_json::json!({"backend_roles": [SNAPSHOT_ROLE], "users": [OPERATOR]});
    for (path, body) in [
        (
            "/_plugins/_security/api/roles/snapferry",
            snapferry_aws::resources::security_role_body(
                snapferry_plan::RepositorySide::Source,
                false,
            ),
        ),
        (
            "/_plugins/_security/api/rolesmapping/snapferry",
            mapped.clone(),
        ),
    ] {
        let (status, body) = security_api(
            &world,
            "shop-prod",
            None,
            http::Method::PUT,
            path,
            Some(body),
        );
        assert_eq!(status, 201, "{path}: {body}");
    }
    world.plan("snapferry.yaml", &internal_target_plan("security: false\n"));
    let first = common::flat(&run_with_password(&world, &["apply", "--auto-approve"], 1));
    assert_eq!(creates(&world), 1, "{first}");
    assert!(
        first.contains(
            "domain shop-copy has fine-grained access control and lacks the mapping snapferry \
             needs; as domain shop-copy's master user, make the mapping by hand"
        ),
        "{first}"
    );
    let admin = Some(("admin", TARGET_PASSWORD));
    for (path, body) in [
        (
            "/_plugins/_security/api/roles/snapferry",
            snapferry_aws::resources::security_role_body(
                snapferry_plan::RepositorySide::Target,
                false,
            ),
        ),
        ("/_plugins/_security/api/rolesmapping/snapferry", mapped),
    ] {
        let (status, body) = security_api(
            &world,
            "shop-copy",
            admin,
            http::Method::PUT,
            path,
            Some(body),
        );
        assert_eq!(status, 201, "{path}: {body}");
    }
    run_with_password(&world, &["apply", "--auto-approve"], 0);
    assert_eq!(creates(&world), 1);
    let counts = world.counts("shop-copy");
    assert_eq!(
        common::user_indices(&counts),
        vec![("orders".to_owned(), 20), ("products".to_owned(), 30)]
    );
    run_with_password(&world, &["plan", "--detailed-exitcode"], 0);
}

#[test]
fn a_source_whose_master_snapferry_cannot_act_as_is_blocked_with_the_mapping_to_make() {
    let yaml = format!(
        "domains:\n  - {{name: shop-prod, indices: [{{name: products, generate: 5}}]}}\n\
         domain_security:\n  shop-prod:\n    access_policy: {}\n    fine_grained_access_control: \
         {{master_user_name: root, master_user_password: \"Source-Passw0rd!\"}}\n",
        open_policy("shop-prod")
    );
    let world = World::start_with(SandboxConfig::from_yaml_str(&yaml).expect("config"));
    world.plan("snapferry.yaml", &internal_target_plan(""));
    let text = common::flat(&run_with_password(&world, &["plan"], 1));
    assert!(text.contains("! security/shop-prod (blocked)"), "{text}");
    assert!(
        text.contains(
            "domain shop-prod has fine-grained access control and snapferry cannot make its \
             mapping (the security API of domain shop-prod refused the identity snapferry signs \
             with:"
        ),
        "{text}"
    );
    assert!(text.contains("make the mapping by hand"), "{text}");
    assert_eq!(creates(&world), 0);
}

// ---- The master password from AWS Secrets Manager ----

/// A target whose internal master's password is in Secrets Manager, by name: created with it
/// (the security plugin lets the master in with it); a secret that does not exist, a JSON key
/// it does not have and a binary secret stop the apply naming the secret, never a value.
#[test]
fn an_internal_master_password_comes_from_secrets_manager() {
    const SECRET_PASSWORD: &str = "Secret-Master-Passw0rd!DoNotLeak";
    let mut config = fgac_source(false);
    config.secrets = vec![
        snapferry_sandbox::SeedSecret {
            name: "shop/master".into(),
            secret_string: Some(SECRET_PASSWORD.into()),
            ..Default::default()
        },
        snapferry_sandbox::SeedSecret {
            name: "shop/json".into(),
            secret_string: Some(format!(
                "{{\"user\": \"admin\", \"pw\": \"{SECRET_PASSWORD}\"}}"
            )),
            ..Default::default()
        },
        snapferry_sandbox::SeedSecret {
            name: "shop/binary".into(),
            secret_binary: Some("AAEC".into()),
            ..Default::default()
        },
    ];
    let world = World::start_with(config);
    let with = |source: &str| {
        plan(&format!(
            "  overrides:\n    fine_grained_access_control:\n      master_user_name: admin\n      \
             master_user_password: {source}\n"
        ))
    };
    let refused = |source: &str| {
        world.plan("snapferry.yaml", &with(source));
        // `plan` reads no secret: it is not blocked, it says where the password comes from.
        world.run_ok(&["plan", "--target", "domain/shop-copy"], 0);
        let text = world.run_ok(
            &["apply", "--auto-approve", "--target", "domain/shop-copy"],
            1,
        );
        assert!(!text.contains(SECRET_PASSWORD), "{text}");
        common::flat(&text)
    };
    let text = refused("{ secrets_manager: shop/missing }");
    assert!(
        text.contains(
            "secret shop/missing not found in us-east-1 (account 123456789012): Secrets Manager \
             said \"Secrets Manager can't find the specified secret.\"; create it or fix \
             `master_user_password.secrets_manager`"
        ),
        "{text}"
    );
    let text = refused("{ secrets_manager: shop/json, key: password }");
    assert!(
        text.contains(
            "secret shop/json has no key password (its keys: pw, user): fix \
             `master_user_password.key` or add the key to the secret"
        ),
        "{text}"
    );
    let text = refused("{ secrets_manager: shop/master, key: password }");
    assert!(
        text.contains(
            "secret shop/master is not a JSON object, so its key password cannot be read"
        ),
        "{text}"
    );
    let text = refused("{ secrets_manager: shop/binary }");
    assert!(
        text.contains("secret shop/binary holds binary data (SecretBinary), not a secret string"),
        "{text}"
    );
    assert_eq!(creates(&world), 0);

    world.plan("snapferry.yaml", &with("{ secrets_manager: shop/master }"));
    let text = world.run_ok(
        &["apply", "--auto-approve", "--target", "domain/shop-copy"],
        0,
    );
    assert!(!text.contains(SECRET_PASSWORD), "{text}");
    assert_eq!(target_security(&world), (true, true));
    // The target's master is the secret's password: the security plugin lets it in with it,
    // and with nothing else.
    let (status, _) = security_api(
        &world,
        "shop-copy",
        Some(("admin", SECRET_PASSWORD)),
        http::Method::GET,
        "/_plugins/_security/api/roles/all_access",
        None,
    );
    assert_eq!(status, 200);
    let (status, _) = security_api(
        &world,
        "shop-copy",
        Some(("admin", "not-the-password")),
        http::Method::GET,
        "/_plugins/_security/api/roles/all_access",
        None,
    );
    assert_eq!(status, 401);
    for entry in walk(world.dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SECRET_PASSWORD),
            "{} holds the password",
            entry.display()
        );
    }
}
