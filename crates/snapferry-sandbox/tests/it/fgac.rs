//! Fine-grained access control: domains created or seeded with `AdvancedSecurityOptions` run the
//! security plugin. Its REST API (role mappings, roles, internal users) answers with the
//! plugin's shapes, checked against the vendored OpenSearch specification; the built-in roles
//! grant what the plugin's own configuration grants; a refused transport action is a 403
//! `security_exception` naming the action and the user.

use crate::access_policies::Unsigned;
use crate::common;

use aws_sdk_opensearch::error::ProvideErrorMetadata;
use aws_sdk_opensearch::types::{
    AdvancedSecurityOptionsInput, DomainEndpointOptions, EncryptionAtRestOptions,
    MasterUserOptions, NodeToNodeEncryptionOptions,
};
use common::*;
use serde_json::{Value, json};
use snapferry_sandbox::{SandboxConfig, SandboxHandle};

const ACCOUNT: &str = "123456789012";
const SANDBOX_USER: &str = "arn:aws:iam::123456789012:user/sandbox";
const MASTER: (&str, &str) = ("admin", "Sandbox-Passw0rd!");
const API: &str = "/_plugins/_security/api";

fn open_policy_yaml(domain: &str) -> String {
    format!(
        "{{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Principal: {{AWS: \"*\"}}, Action: \"es:ESHttp*\", Resource: \"arn:aws:es:us-east-1:{ACCOUNT}:domain/{domain}/*\"}}]}}"
    )
}

/// One FGAC domain `secure` with an open policy and an internal master user, as AWS recommends.
fn internal_master(engine: &str) -> SandboxConfig {
    let yaml = format!(
        r#"
time_scale: 0.00001
domains:
  - name: secure
    engine_version: {engine}
    indices: [{{name: movies, generate: 10}}, {{name: logs-1, generate: 3}}]
domain_security:
  secure:
    access_policy: {}
    fine_grained_access_control: {{master_user_name: {}, master_user_password: "{}"}}
"#,
        open_policy_yaml("secure"),
        MASTER.0,
        MASTER.1
    );
    SandboxConfig::from_yaml_str(&yaml).expect("config")
}

struct Fgac {
    h: SandboxHandle,
    http: Unsigned,
    spec: Spec,
}

impl Fgac {
    async fn start(config: SandboxConfig) -> Self {
        let h = start(config).await;
        let endpoint = h.domain_endpoint("secure").expect("ready");
        Self {
            http: Unsigned::new(&h, &endpoint),
            h,
            spec: Spec::load(),
        }
    }

    async fn master(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.as_user(MASTER, method, path, body).await
    }

    async fn as_user(
        &self,
        user: (&str, &str),
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, _, body) = self.http.send(method, path, Some(user), body).await;
        (status, body)
    }
}

fn security_exception(actions: &str, user: &str, backend_roles: &str) -> String {
    format!(
        "no permissions for [{actions}] and User [name={user}, backend_roles=[{backend_roles}], requestedTenant=null]"
    )
}

#[tokio::test]
async fn the_master_manages_role_mappings_roles_and_users_through_the_security_api() {
    let t = Fgac::start(internal_master("OpenSearch_2.11")).await;

    // Who the caller is: no credentials or a wrong password is a 401 with a basic-auth challenge.
    let (status, headers, body) = t.http.send("GET", "/", None, None).await;
    assert_eq!((status, body), (401, json!("Unauthorized")));
    assert_eq!(
        headers["www-authenticate"],
        "Basic realm=\"OpenSearch Security\""
    );
    let (status, _) = t.as_user(("admin", "wrong"), "GET", "/", None).await;
    assert_eq!(status, 401);
    let (status, info) = t.master("GET", "/", None).await;
    assert_eq!(status, 200, "{info}");

    // The master is mapped to all_access and security_manager.
    let (status, mappings) = t.master("GET", &format!("{API}/rolesmapping"), None).await;
    assert_eq!(status, 200);
    t.spec
        .response("security", "security.get_role_mappings@200", &mappings);
    assert_eq!(mappings["all_access"]["users"], json!(["admin"]));
    assert_eq!(mappings["security_manager"]["users"], json!(["admin"]));

    // Create, replace, patch and delete a mapping of a built-in role.
    let path = format!("{API}/rolesmapping/manage_snapshots");
    let (status, body) = t
        .master(
            "PUT",
            &path,
            Some(json!({"backend_roles": ["snapshots"], "users": [SANDBOX_USER]})),
        )
        .await;
    assert_eq!(
        (status, &body),
        (
            201,
            &json!({"status": "CREATED", "message": "'manage_snapshots' created."})
        )
    );
    t.spec
        .response("security", "security.create_role_mapping@201", &body);
    let (status, body) = t
        .master("PUT", &path, Some(json!({"backend_roles": ["snapshots"]})))
        .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"status": "OK", "message": "'manage_snapshots' updated."})
        )
    );
    let (status, body) = t
        .master(
            "PATCH",
            &path,
            Some(json!([{"op": "add", "path": "/users", "value": ["snapper"]}])),
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (200, Some("'manage_snapshots' updated."))
    );
    t.spec
        .response("security", "security.patch_role_mapping@200", &body);
    let (_, got) = t.master("GET", &path, None).await;
    t.spec
        .response("security", "security.get_role_mapping@200", &got);
    assert_eq!(
        got,
        json!({"manage_snapshots": {"hosts": [], "users": ["snapper"], "reserved": false, "hidden": false,
            "backend_roles": ["snapshots"], "and_backend_roles": []}})
    );
    let (status, body) = t
        .master(
            "PATCH",
            &format!("{API}/rolesmapping"),
            Some(json!([{"op": "add", "path": "/readall", "value": {"users": ["reader"]}}])),
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (200, Some("Resource updated."))
    );
    let (status, body) = t
        .master(
            "PATCH",
            &path,
            Some(json!([{"op": "move", "from": "/users", "path": "/hosts"}])),
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (
            400,
            Some("Unsupported patch operation: move. Supported are: add,replace,remove")
        )
    );

    // What the plugin refuses.
    let (status, body) = t
        .master(
            "PUT",
            &format!("{API}/rolesmapping/nope"),
            Some(json!({"users": ["x"]})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"status": "NOT_FOUND", "message": "role 'nope' not found."})
        )
    );
    let (status, body) = t
        .master(
            "PUT",
            &format!("{API}/rolesmapping/readall"),
            Some(json!({"description": "d"})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"status": "error", "reason": "Invalid configuration",
                   "specify_one_of": {"keys": "and_backend_roles,backend_roles,hosts,users"}})
        )
    );
    let (status, body) = t
        .master(
            "PUT",
            &format!("{API}/rolesmapping/readall"),
            Some(json!({"users": "x"})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"status": "error", "reason": "Wrong datatype", "users": "Array expected"})
        )
    );
    for (role, why) in [
        ("all_access", "static"),
        ("manage_snapshots", "static"),
        ("security_manager", "reserved"),
    ] {
        let (status, body) = t
            .master(
                "PUT",
                &format!("{API}/roles/{role}"),
                Some(json!({"cluster_permissions": ["*"]})),
            )
            .await;
        assert_eq!(
            (status, body),
            (
                403,
                json!({"status": "FORBIDDEN", "message": format!("Resource '{role}' is {why}.")})
            )
        );
    }
    let (status, _) = t
        .master("DELETE", &format!("{API}/roles/readall"), None)
        .await;
    assert_eq!(status, 403);

    // Built-in roles carry the plugin's permissions; custom roles can be added.
    let (status, role) = t
        .master("GET", &format!("{API}/roles/manage_snapshots"), None)
        .await;
    assert_eq!(status, 200);
    t.spec.response("security", "security.get_role@200", &role);
    let r = &role["manage_snapshots"];
    assert_eq!(r["cluster_permissions"], json!(["manage_snapshots"]));
    assert_eq!(
        r["index_permissions"][0]["allowed_actions"],
        json!(["indices:admin/create", "indices:data/write/index"])
    );
    assert_eq!(
        (r["reserved"].as_bool(), r["static"].as_bool()),
        (Some(true), Some(true))
    );
    let (_, all) = t.master("GET", &format!("{API}/roles"), None).await;
    t.spec.response("security", "security.get_roles@200", &all);
    for builtin in [
        "all_access",
        "manage_snapshots",
        "readall",
        "security_manager",
    ] {
        assert!(all.get(builtin).is_some(), "{builtin} in {all}");
    }
    let (status, body) = t
        .master(
            "PUT",
            &format!("{API}/roles/snapferry"),
            Some(json!({"cluster_permissions": ["manage_snapshots", "cluster_monitor"],
                "index_permissions": [{"index_patterns": ["*"], "allowed_actions": ["indices_monitor", "read"]}]})),
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (201, Some("'snapferry' created."))
    );
    t.spec
        .response("security", "security.create_role@201", &body);

    // Internal users: the password rule, and no hash ever shown.
    let (status, body) = t
        .master(
            "PUT",
            &format!("{API}/internalusers/snapper"),
            Some(json!({"password": "password1"})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"status": "error", "reason": "Password must be at least 8 characters long and contain at least one uppercase letter, one lowercase letter, one digit, and one special character."})
        )
    );
    let (status, _) = t
        .master(
            "PUT",
            &format!("{API}/internalusers/snapper"),
            Some(json!({"password": "Snapper-Passw0rd!", "backend_roles": ["snapshots"]})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, users) = t.master("GET", &format!("{API}/internalusers"), None).await;
    assert_eq!(status, 200);
    t.spec
        .response("security", "security.get_users@200", &users);
    assert_eq!(users["admin"]["hash"], "");
    assert_eq!(users["snapper"]["backend_roles"], json!(["snapshots"]));
    assert!(!users.to_string().contains("Passw0rd"));

    let (status, body) = t.master("DELETE", &path, None).await;
    assert_eq!(
        (status, &body),
        (
            200,
            &json!({"status": "OK", "message": "'manage_snapshots' deleted."})
        )
    );
    t.spec
        .response("security", "security.delete_role_mapping@200", &body);
    let (status, body) = t.master("DELETE", &path, None).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (404, Some("rolesmapping 'manage_snapshots' not found."))
    );

    let log = t.h.request_log();
    let puts: Vec<_> = log
        .iter()
        .filter(|e| e.operation == "PutRoleMapping")
        .map(|e| (e.target.as_deref(), e.mutating, e.status))
        .collect();
    assert_eq!(
        puts,
        vec![
            (Some("manage_snapshots"), true, 201),
            (Some("manage_snapshots"), true, 200),
            (Some("nope"), true, 404),
            (Some("readall"), true, 400),
            (Some("readall"), true, 400),
        ]
    );
    t.h.shutdown().await;
}

#[tokio::test]
async fn manage_snapshots_alone_cannot_list_or_count_what_it_snapshots() {
    let t = Fgac::start(internal_master("OpenSearch_2.11")).await;
    let snapper = ("snapper", "Snapper-Passw0rd!");
    let (status, _) = t
        .master(
            "PUT",
            &format!("{API}/internalusers/snapper"),
            Some(json!({"password": snapper.1, "backend_roles": ["snapshots"]})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = t
        .master(
            "PUT",
            &format!("{API}/rolesmapping/manage_snapshots"),
            Some(json!({"backend_roles": ["snapshots"]})),
        )
        .await;
    assert_eq!(status, 201);

    let refused = |actions: &str| security_exception(actions, "snapper", "snapshots");
    for (method, path, action) in [
        (
            "GET",
            "/_cat/indices?format=json",
            "indices:monitor/settings/get",
        ),
        ("GET", "/movies/_count", "indices:data/read/search"),
        ("GET", "/", "cluster:monitor/main"),
        ("GET", "/_cluster/health", "cluster:monitor/health"),
        ("DELETE", "/movies", "indices:admin/delete"),
    ] {
        let (status, body) = t.as_user(snapper, method, path, None).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert_eq!(body["error"]["type"], "security_exception");
        assert_eq!(body["error"]["reason"], refused(action), "{method} {path}");
        assert_eq!(body["error"]["root_cause"][0]["reason"], refused(action));
        t.spec.error(&body);
    }
    // What the role does allow: snapshot management, and creating indices.
    let (status, body) = t.as_user(snapper, "GET", "/_snapshot", None).await;
    assert_eq!((status, body), (200, json!({})));
    let (status, _) = t.as_user(snapper, "PUT", "/fresh", None).await;
    assert_eq!(status, 200);

    // The security API is for all_access and security_manager only.
    let (status, body) = t
        .as_user(snapper, "GET", &format!("{API}/rolesmapping"), None)
        .await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"status": "FORBIDDEN", "message": "No permission to access REST API: User snapper with Security roles [manage_snapshots] does not have any role privileged for admin access. No ssl info found in request."})
        )
    );

    // readall adds reads, not the monitoring `_cat/indices` needs; a role with cluster_monitor and
    // indices_monitor does.
    let (status, _) = t
        .master(
            "PUT",
            &format!("{API}/rolesmapping/readall"),
            Some(json!({"backend_roles": ["snapshots"]})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = t.as_user(snapper, "GET", "/movies/_count", None).await;
    assert_eq!((status, body["count"].as_u64()), (200, Some(10)));
    let (status, body) = t
        .as_user(snapper, "GET", "/_cat/indices?format=json", None)
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"]["reason"],
        refused("indices:monitor/settings/get")
    );
    let (status, _) = t
        .master(
            "PUT",
            &format!("{API}/roles/monitor"),
            Some(json!({"cluster_permissions": ["cluster_monitor"],
                "index_permissions": [{"index_patterns": ["*"], "allowed_actions": ["indices_monitor"]}]})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = t
        .as_user(snapper, "GET", "/_cat/indices?format=json", None)
        .await;
    assert_eq!(status, 403, "the role exists but is not mapped yet: {body}");
    let (status, _) = t
        .master(
            "PUT",
            &format!("{API}/rolesmapping/monitor"),
            Some(json!({"users": ["snap*"]})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = t
        .as_user(snapper, "GET", "/_cat/indices?format=json", None)
        .await;
    assert_eq!(status, 200, "{body}");
    t.spec.response("cat", "cat.indices@200", &body);
    t.h.shutdown().await;
}

#[tokio::test]
async fn an_iam_master_signs_and_other_signers_need_a_mapping() {
    let yaml = format!(
        r#"
time_scale: 0.00001
domains:
  - name: secure
    indices: [{{name: movies, generate: 4}}]
  - name: theirs
domain_security:
  secure:
    access_policy: {}
    fine_grained_access_control: {{master_user_arn: "{SANDBOX_USER}"}}
  theirs:
    access_policy: {}
    fine_grained_access_control: {{master_user_arn: "arn:aws:iam::{ACCOUNT}:role/admins"}}
"#,
        open_policy_yaml("secure"),
        open_policy_yaml("theirs")
    );
    let h = start(SandboxConfig::from_yaml_str(&yaml).expect("config")).await;
    let status = opensearch(&h)
        .await
        .describe_domain()
        .domain_name("secure")
        .send()
        .await
        .expect("DescribeDomain")
        .domain_status
        .expect("status");
    let aso = status.advanced_security_options().expect("described");
    assert_eq!(
        (aso.enabled(), aso.internal_user_database_enabled()),
        (Some(true), Some(false))
    );

    let secure = DomainClient::new(&h, &h.domain_endpoint("secure").expect("ready"));
    let (status, body) = secure.call("GET", "/movies/_count", None).await;
    assert_eq!((status, body["count"].as_u64()), (200, Some(4)));
    let (status, mappings) = secure
        .call("GET", &format!("{API}/rolesmapping/all_access"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(mappings["all_access"]["users"], json!([SANDBOX_USER]));

    // Basic auth is off without the internal user database.
    let (status, _, body) = Unsigned::new(&h, &h.domain_endpoint("secure").expect("ready"))
        .send("GET", "/", Some(MASTER), None)
        .await;
    assert_eq!(
        (status, body),
        (401, json!("Authentication finally failed"))
    );

    // On a domain whose master is another IAM role, the sandbox's signer has no role at all.
    let theirs = DomainClient::new(&h, &h.domain_endpoint("theirs").expect("ready"));
    let (status, body) = theirs.call("GET", "/", None).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"]["reason"],
        security_exception("cluster:monitor/main", SANDBOX_USER, "")
    );
    let (status, body) = theirs
        .call("GET", &format!("{API}/rolesmapping"), None)
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        body["message"],
        format!(
            "No permission to access REST API: User {SANDBOX_USER} with Security roles [] does not have any role privileged for admin access. No ssl info found in request."
        )
    );
    h.shutdown().await;
}

fn fgac_request(
    internal_db: bool,
    master: MasterUserOptions,
) -> (
    AdvancedSecurityOptionsInput,
    EncryptionAtRestOptions,
    NodeToNodeEncryptionOptions,
    DomainEndpointOptions,
) {
    (
        AdvancedSecurityOptionsInput::builder()
            .enabled(true)
            .internal_user_database_enabled(internal_db)
            .master_user_options(master)
            .build(),
        EncryptionAtRestOptions::builder().enabled(true).build(),
        NodeToNodeEncryptionOptions::builder().enabled(true).build(),
        DomainEndpointOptions::builder().enforce_https(true).build(),
    )
}

#[tokio::test]
async fn create_and_update_domain_turn_fgac_on_and_never_show_the_password() {
    let mut c = fast_config();
    c.latencies.domain_creation_secs = 0.0;
    c.latencies.domain_update_secs = 0.0;
    let h = start(c).await;
    let os = opensearch(&h).await;
    let internal = MasterUserOptions::builder()
        .master_user_name(MASTER.0)
        .master_user_password(MASTER.1)
        .build();
    let (aso, at_rest, n2n, https) = fgac_request(true, internal.clone());
    let open = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
        "Action": "es:ESHttp*", "Resource": format!("arn:aws:es:us-east-1:{ACCOUNT}:domain/secure/*")}]});

    // Each prerequisite, and the master the user database needs.
    let err = os
        .create_domain()
        .domain_name("secure")
        .advanced_security_options(aso.clone())
        .encryption_at_rest_options(at_rest.clone())
        .node_to_node_encryption_options(n2n.clone())
        .send()
        .await
        .expect_err("refused")
        .into_service_error();
    assert!(err.is_validation_exception());
    assert_eq!(
        err.message(),
        Some(
            "You must enable EnforceHTTPS in the domain endpoint options to use advanced security."
        )
    );
    let (arn_with_db, ..) = fgac_request(
        true,
        MasterUserOptions::builder()
            .master_user_arn(SANDBOX_USER)
            .build(),
    );
    let err = os
        .create_domain()
        .domain_name("secure")
        .advanced_security_options(arn_with_db)
        .encryption_at_rest_options(at_rest.clone())
        .node_to_node_encryption_options(n2n.clone())
        .domain_endpoint_options(https.clone())
        .send()
        .await
        .expect_err("refused")
        .into_service_error();
    assert_eq!(
        err.message(),
        Some(
            "You must provide a master username and password when the internal user database is enabled."
        )
    );

    // An open policy is fine with FGAC.
    let created = os
        .create_domain()
        .domain_name("secure")
        .engine_version("OpenSearch_2.11")
        .access_policies(open.to_string())
        .advanced_security_options(aso)
        .encryption_at_rest_options(at_rest.clone())
        .node_to_node_encryption_options(n2n.clone())
        .domain_endpoint_options(https.clone())
        .send()
        .await
        .expect("CreateDomain")
        .domain_status
        .expect("status");
    let described = created.advanced_security_options().expect("block");
    assert_eq!(
        (
            described.enabled(),
            described.internal_user_database_enabled()
        ),
        (Some(true), Some(true))
    );

    // The raw answers of DescribeDomain and DescribeDomainConfig never carry the password.
    let mut control = DomainClient::new(&h, "unused");
    control.base = h.endpoint_url();
    for path in [
        "/2021-01-01/opensearch/domain/secure",
        "/2021-01-01/opensearch/domain/secure/config",
    ] {
        let (status, body) = control.call("GET", path, None).await;
        assert_eq!(status, 200, "{body}");
        let text = body.to_string();
        assert!(
            !text.contains(MASTER.1) && !text.contains("MasterUser"),
            "{text}"
        );
    }
    let (_, config) = control
        .call("GET", "/2021-01-01/opensearch/domain/secure/config", None)
        .await;
    assert_eq!(
        config["DomainConfig"]["AdvancedSecurityOptions"]["Options"],
        json!({"Enabled": true, "InternalUserDatabaseEnabled": true, "AnonymousAuthEnabled": false})
    );

    let endpoint = h.domain_endpoint("secure").expect("ready");
    let (status, _, _) = Unsigned::new(&h, &endpoint)
        .send("GET", "/", Some(MASTER), None)
        .await;
    assert_eq!(status, 200);
    let (status, body) = DomainClient::new(&h, &endpoint)
        .call("GET", "/", None)
        .await;
    assert_eq!(status, 403, "the signer is not the master: {body}");

    // FGAC cannot be turned off; a new IAM master is added beside the old one.
    let err = os
        .update_domain_config()
        .domain_name("secure")
        .advanced_security_options(
            AdvancedSecurityOptionsInput::builder()
                .enabled(false)
                .build(),
        )
        .send()
        .await
        .expect_err("refused")
        .into_service_error();
    assert!(err.is_validation_exception(), "{err:?}");
    os.update_domain_config()
        .domain_name("secure")
        .advanced_security_options(
            AdvancedSecurityOptionsInput::builder()
                .enabled(true)
                .internal_user_database_enabled(true)
                .master_user_options(
                    MasterUserOptions::builder()
                        .master_user_name("second")
                        .master_user_password("Second-Passw0rd!")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("a new master");
    let (_, _, mappings) = Unsigned::new(&h, &endpoint)
        .send(
            "GET",
            &format!("{API}/rolesmapping/all_access"),
            Some(MASTER),
            None,
        )
        .await;
    assert_eq!(mappings["all_access"]["users"], json!(["admin", "second"]));

    // Turning FGAC on for an existing domain: the signer becomes its master.
    os.create_domain()
        .domain_name("plain")
        .engine_version("OpenSearch_2.11")
        .send()
        .await
        .expect("CreateDomain");
    let plain = DomainClient::new(&h, &h.domain_endpoint("plain").expect("ready"));
    let (status, _) = plain
        .call("GET", &format!("{API}/rolesmapping"), None)
        .await;
    assert_eq!(status, 400, "no security plugin without FGAC");
    let (iam_master, ..) = fgac_request(
        false,
        MasterUserOptions::builder()
            .master_user_arn(SANDBOX_USER)
            .build(),
    );
    let err = os
        .update_domain_config()
        .domain_name("plain")
        .advanced_security_options(iam_master.clone())
        .send()
        .await
        .expect_err("prerequisites missing")
        .into_service_error();
    assert!(
        err.message().is_some_and(|m| m.contains("EnforceHTTPS")),
        "{err:?}"
    );
    os.update_domain_config()
        .domain_name("plain")
        .advanced_security_options(iam_master)
        .encryption_at_rest_options(at_rest)
        .node_to_node_encryption_options(n2n)
        .domain_endpoint_options(https)
        .send()
        .await
        .expect("FGAC on");
    let (status, body) = plain
        .call("GET", &format!("{API}/rolesmapping/security_manager"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["security_manager"]["users"], json!([SANDBOX_USER]));
    h.shutdown().await;
}

#[tokio::test]
async fn elasticsearch_domains_serve_only_the_opendistro_path() {
    let t = Fgac::start(internal_master("Elasticsearch_7.10")).await;
    let (status, body) = t
        .master(
            "GET",
            "/_opendistro/_security/api/rolesmapping/all_access",
            None,
        )
        .await;
    assert_eq!(
        (status, &body["all_access"]["users"]),
        (200, &json!(["admin"]))
    );
    let (status, body) = t
        .master(
            "GET",
            "/_plugins/_security/api/rolesmapping/all_access",
            None,
        )
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "no handler found for uri [/_plugins/_security/api/rolesmapping/all_access] and method [GET]"})
        )
    );
    let (_, headers, _) = t.http.send("GET", "/", None, None).await;
    assert_eq!(
        headers["www-authenticate"],
        "Basic realm=\"Open Distro Security\""
    );
    t.h.shutdown().await;

    let t = Fgac::start(internal_master("OpenSearch_2.11")).await;
    let (status, _) = t
        .master(
            "GET",
            "/_opendistro/_security/api/rolesmapping/all_access",
            None,
        )
        .await;
    assert_eq!(status, 200, "OpenSearch still serves the deprecated path");
    t.h.shutdown().await;
}

#[tokio::test]
async fn bulk_items_for_a_forbidden_index_fail_and_the_others_are_written() {
    let t = Fgac::start(internal_master("OpenSearch_2.11")).await;
    let writer = ("writer", "Writer-Passw0rd!");
    for (path, body) in [
        (
            format!("{API}/roles/logs_writer"),
            json!({"cluster_permissions": ["indices:data/write/bulk"],
                   "index_permissions": [{"index_patterns": ["logs-*"], "allowed_actions": ["write", "create_index"]}]}),
        ),
        (
            format!("{API}/internalusers/writer"),
            json!({"password": writer.1}),
        ),
        (
            format!("{API}/rolesmapping/logs_writer"),
            json!({"users": ["writer"]}),
        ),
    ] {
        let (status, b) = t.master("PUT", &path, Some(body)).await;
        assert_eq!(status, 201, "{path}: {b}");
    }
    let lines = [
        json!({"index": {"_index": "logs-1", "_id": "a"}}),
        json!({"n": 1}),
        json!({"index": {"_index": "movies", "_id": "b"}}),
        json!({"n": 2}),
        json!({"index": {"_index": "logs-2", "_id": "c"}}),
        json!({"n": 3}),
    ];
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let resp = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(t.h.ca_bundle_path()).expect("CA"))
                .expect("PEM"),
        )
        .build()
        .expect("client")
        .post(format!(
            "https://{}/_bulk",
            t.h.domain_endpoint("secure").expect("ready")
        ))
        .basic_auth(writer.0, Some(writer.1))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .expect("answers");
    assert_eq!(resp.status().as_u16(), 200);
    let bulk: Value = resp.json().await.expect("JSON");
    t.spec.response("_core", "bulk@200", &bulk);
    assert_eq!(bulk["errors"], true);
    let items = bulk["items"].as_array().expect("items");
    assert_eq!(
        items
            .iter()
            .map(|i| (i["index"]["_index"].as_str(), i["index"]["status"].as_u64()))
            .collect::<Vec<_>>(),
        vec![
            (Some("logs-1"), Some(201)),
            (Some("movies"), Some(403)),
            (Some("logs-2"), Some(201)),
        ]
    );
    assert_eq!(
        items[1]["index"]["error"],
        json!({"type": "security_exception",
               "reason": security_exception("indices:data/write/bulk[s], indices:data/write/index", "writer", "")})
    );
    for (index, expected) in [("logs-1", 4), ("movies", 10), ("logs-2", 1)] {
        let (_, count) = t.master("GET", &format!("/{index}/_count"), None).await;
        assert_eq!(count["count"], expected, "{index}");
    }
    t.h.shutdown().await;
}

#[tokio::test]
async fn a_restore_needs_write_privileges_on_the_indices_it_creates() {
    let yaml = format!(
        r#"
time_scale: 0.00001
domains:
  - name: secure
    indices: [{{name: movies, generate: 5}}]
domain_security:
  secure:
    access_policy: {}
    fine_grained_access_control: {{master_user_name: {}, master_user_password: "{}"}}
"#,
        open_policy_yaml("secure"),
        MASTER.0,
        MASTER.1
    );
    let mut config = SandboxConfig::from_yaml_str(&yaml).expect("config");
    config.latencies.snapshot_secs = 0.0;
    config.latencies.snapshot_secs_per_kib = 0.0;
    let t = Fgac::start(config).await;
    let endpoint = t.h.domain_endpoint("secure").expect("ready");
    // The repository is registered by an IAM identity (PassRole), mapped to manage_snapshots.
    let (status, _) = t
        .master(
            "PUT",
            &format!("{API}/rolesmapping/manage_snapshots"),
            Some(json!({"users": [SANDBOX_USER]})),
        )
        .await;
    assert_eq!(status, 201);
    let signed = DomainClient::new(&t.h, &endpoint);
    repository(&t.h, &signed, "repo", "snapshots-bucket").await;
    let (status, body) = signed
        .call(
            "PUT",
            "/_snapshot/repo/snap?wait_for_completion=true",
            Some(json!({"indices": "movies"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for _ in 0..200 {
        let (_, s) = signed.call("GET", "/_snapshot/repo/snap", None).await;
        if s["snapshots"][0]["state"] == "SUCCESS" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    let restorer = ("restorer", "Restorer-Passw0rd!");
    for (path, body) in [
        (
            format!("{API}/roles/restorer"),
            json!({"cluster_permissions": ["manage_snapshots"],
                   "index_permissions": [{"index_patterns": ["restored-*"], "allowed_actions": ["indices:admin/create", "indices:data/write/index"]}]}),
        ),
        (
            format!("{API}/internalusers/restorer"),
            json!({"password": restorer.1}),
        ),
        (
            format!("{API}/rolesmapping/restorer"),
            json!({"users": ["restorer"]}),
        ),
    ] {
        let (status, b) = t.master("PUT", &path, Some(body)).await;
        assert_eq!(status, 201, "{path}: {b}");
    }
    let restore = "/_snapshot/repo/snap/_restore";
    let (status, body) = t
        .as_user(
            restorer,
            "POST",
            restore,
            Some(json!({"indices": "movies"})),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"]["reason"],
        security_exception(
            "indices:data/write/index, indices:admin/create",
            "restorer",
            ""
        )
    );
    let (status, body) = t
        .as_user(
            restorer,
            "POST",
            restore,
            Some(json!({"indices": "movies", "include_global_state": true,
                        "rename_pattern": "(.+)", "rename_replacement": "restored-$1"})),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"]["reason"],
        security_exception("cluster:admin/snapshot/restore", "restorer", "")
    );
    let (status, body) = t
        .as_user(
            restorer,
            "POST",
            restore,
            Some(json!({"indices": "movies", "rename_pattern": "(.+)", "rename_replacement": "restored-$1"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        t.h.request_log()
            .iter()
            .any(|e| e.operation == "RestoreSnapshot" && e.status == 200)
    );
    let (status, _) = t.master("HEAD", "/restored-movies", None).await;
    assert_eq!(status, 200, "the renamed index exists");
    t.h.shutdown().await;
}

#[tokio::test]
async fn domains_without_fgac_have_no_security_api() {
    let h = start(fast_config()).await;
    let d = ready_domain(&h, "plain").await;
    let (status, body) = d.call("GET", &format!("{API}/rolesmapping"), None).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "no handler found for uri [/_plugins/_security/api/rolesmapping] and method [GET]"})
        )
    );
    let err = opensearch(&h)
        .await
        .update_domain_config()
        .domain_name("plain")
        .advanced_security_options(
            AdvancedSecurityOptionsInput::builder()
                .enabled(true)
                .build(),
        )
        .send()
        .await
        .expect_err("refused")
        .into_service_error();
    assert_eq!(err.code(), Some("ValidationException"));
    h.shutdown().await;
}

#[test]
fn seeded_security_settings_are_checked_with_the_domain_named() {
    let err = |yaml: &str| {
        SandboxConfig::from_yaml_str(yaml)
            .expect_err("refused")
            .to_string()
    };
    assert_eq!(
        err("domains: [{name: one}]\ndomain_security:\n  two: {}\n"),
        "invalid sandbox config: domain_security names \"two\", which is not a seeded domain"
    );
    assert_eq!(
        err(
            "domains: [{name: one}]\ndomain_security:\n  one: {fine_grained_access_control: {master_user_arn: a, master_user_name: b}}\n"
        ),
        "invalid sandbox config: domain_security.one: fine_grained_access_control needs either master_user_arn, or master_user_name and master_user_password"
    );
    assert!(
        err("domains: [{name: one}]\ndomain_security:\n  one: {fine_grained_access_control: {master_user_name: a, master_user_password: password}}\n")
            .contains("domain_security.one: master_user_password: Password must be at least 8 characters long")
    );
    assert!(
        err("domains: [{name: one, engine_version: Elasticsearch_6.5}]\ndomain_security:\n  one: {fine_grained_access_control: {master_user_arn: \"arn:aws:iam::123456789012:user/x\"}}\n")
            .contains("6.7 or later, not Elasticsearch_6.5")
    );
    assert!(
        err("domains: [{name: one}]\ndomain_security:\n  one: {access_policy: \"[1]\"}\n")
            .contains("domain_security.one: access_policy is not a policy document")
    );
}

/// `domain_security` is a shorthand folded into the seed's CreateDomain-shaped `domain_config`:
/// FGAC written as CreateDomain writes it turns the security plugin on just the same, and a block
/// said in both is refused naming both.
#[tokio::test]
async fn fgac_seeded_through_domain_config_runs_the_security_plugin() {
    let yaml = format!(
        r#"
time_scale: 0.00001
domains:
  - name: secure
    indices: [{{name: movies, generate: 3}}]
domain_config:
  secure:
    AccessPolicies: '{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"*"}},"Action":"es:ESHttp*","Resource":"arn:aws:es:us-east-1:{ACCOUNT}:domain/secure/*"}}]}}'
    EncryptionAtRestOptions: {{Enabled: true}}
    NodeToNodeEncryptionOptions: {{Enabled: true}}
    DomainEndpointOptions: {{EnforceHTTPS: true}}
    AdvancedSecurityOptions:
      Enabled: true
      InternalUserDatabaseEnabled: true
      MasterUserOptions: {{MasterUserName: {}, MasterUserPassword: "{}"}}
"#,
        MASTER.0, MASTER.1
    );
    let t = Fgac::start(SandboxConfig::from_yaml_str(&yaml).expect("config")).await;
    let (status, _, _) = t.http.send("GET", "/_cat/indices", None, None).await;
    assert_eq!(status, 401, "the plugin asks who the caller is");
    let (status, count) = t.master("GET", "/movies/_count", None).await;
    assert_eq!((status, &count["count"]), (200, &json!(3)), "{count}");
    let (_, mappings) = t.master("GET", &format!("{API}/rolesmapping"), None).await;
    assert_eq!(mappings["all_access"]["users"], json!(["admin"]));
    let (_, _, described) =
        crate::aws_models::control_plane(&t.h, "GET", "/2021-01-01/opensearch/domain/secure", None)
            .await;
    assert_eq!(
        described["DomainStatus"]["AdvancedSecurityOptions"],
        json!({"Enabled": true, "InternalUserDatabaseEnabled": true, "AnonymousAuthEnabled": false})
    );
    assert!(!described.to_string().contains(MASTER.1));
    t.h.shutdown().await;

    let twice = SandboxConfig::from_yaml_str(&format!(
        "domains: [{{name: one}}]\ndomain_config:\n  one: {{AccessPolicies: \"\"}}\ndomain_security:\n  one: {{access_policy: {}}}\n",
        open_policy_yaml("one")
    ))
    .expect_err("said twice")
    .to_string();
    assert_eq!(
        twice,
        "invalid sandbox config: domain_security.one and domain_config.one both set AccessPolicies; say it in one of them"
    );
    // The shorthand's FGAC meets the restrictive-policy rule like CreateDomain: an open policy on
    // a public domain without FGAC is refused, naming the seed.
    let open = SandboxConfig::from_yaml_str(&format!(
        "domains: [{{name: one}}]\ndomain_security:\n  one: {{access_policy: {}}}\n",
        open_policy_yaml("one")
    ))
    .expect_err("open and public")
    .to_string();
    assert_eq!(
        open,
        "invalid sandbox config: seeded domain one: Enable fine-grained access control or apply a restrictive access policy to your domain"
    );
}

/// One caller from the gateway to the plugin: an identity that is an IAM role (with a path)
/// signs; the gateway lets it in through its identity policy (the domain's policy names only
/// the account), and the security plugin sees its role session as the user and the role's ARN,
/// path included, as its backend role — which a mapping then grants.
#[tokio::test]
async fn a_role_identity_is_mapped_by_its_role_arn_as_backend_role() {
    const ROLE: &str = "arn:aws:iam::123456789012:role/team/snapshots";
    const SESSION: &str = "arn:aws:sts::123456789012:assumed-role/snapshots/sandbox-session";
    let yaml = format!(
        r#"
time_scale: 0.00001
domains:
  - name: secure
    indices: [{{name: movies, generate: 4}}]
domain_security:
  secure:
    access_policy: {{Version: "2012-10-17", Statement: [{{Effect: Allow, Principal: {{AWS: "arn:aws:iam::{ACCOUNT}:root"}}, Action: "es:*", Resource: "arn:aws:es:us-east-1:{ACCOUNT}:domain/secure/*"}}]}}
    fine_grained_access_control: {{master_user_arn: "{SANDBOX_USER}"}}
identities:
  - access_key_id: AKIAROLEEXAMPLE00001
    secret_access_key: role/secret
    arn: "{ROLE}"
    policies:
      - {{Version: "2012-10-17", Statement: [{{Effect: Allow, Action: ["es:ESHttpGet", "es:ESHttpPost"], Resource: "arn:aws:es:us-east-1:{ACCOUNT}:domain/secure/*"}}]}}
"#
    );
    let h = start(SandboxConfig::from_yaml_str(&yaml).expect("config")).await;
    let endpoint = h.domain_endpoint("secure").expect("ready");
    let role = DomainClient::new_as(
        &h,
        &endpoint,
        aws_credential_types::Credentials::new(
            "AKIAROLEEXAMPLE00001",
            "role/secret",
            None,
            None,
            "role",
        ),
    );
    // The gateway: allowed by the identity policy, refused where it allows nothing.
    let (status, body) = role.call("DELETE", "/movies", None).await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"Message": format!("User: {SESSION} is not authorized to perform: es:ESHttpDelete because no identity-based policy allows the es:ESHttpDelete action")})
    );
    // The plugin: the session is the user, the role (with its path) the backend role.
    let (status, body) = role.call("GET", "/movies/_count", None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["reason"],
        security_exception("indices:data/read/search", SESSION, ROLE)
    );
    let master = DomainClient::new(&h, &endpoint);
    let (status, body) = master
        .call(
            "PUT",
            &format!("{API}/rolesmapping/readall"),
            Some(json!({"backend_roles": [ROLE]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = role.call("GET", "/movies/_count", None).await;
    assert_eq!((status, &body["count"]), (200, &json!(4)), "{body}");
    h.shutdown().await;
}

/// `_msearch` (how snapferry counts) needs `indices:data/read/msearch` as a cluster permission,
/// then each item is the `_search` it runs: a refused index fails its entry alone.
#[tokio::test]
async fn msearch_needs_its_cluster_permission_and_each_item_its_search() {
    let t = Fgac::start(internal_master("OpenSearch_2.11")).await;
    let reader = ("reader", "Reader-Passw0rd!");
    let role = |cluster: Value| {
        json!({"cluster_permissions": cluster,
               "index_permissions": [{"index_patterns": ["logs-*"], "allowed_actions": ["read"]}]})
    };
    for (path, body) in [
        (format!("{API}/roles/logs_reader"), role(json!([]))),
        (
            format!("{API}/internalusers/reader"),
            json!({"password": reader.1}),
        ),
        (
            format!("{API}/rolesmapping/logs_reader"),
            json!({"users": ["reader"]}),
        ),
    ] {
        let (status, b) = t.master("PUT", &path, Some(body)).await;
        assert_eq!(status, 201, "{path}: {b}");
    }
    let (status, _) = t
        .master("PUT", "/logs-1/_doc/a?refresh=true", Some(json!({"n": 1})))
        .await;
    assert_eq!(status, 201);
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(t.h.ca_bundle_path()).expect("CA"))
                .expect("PEM"),
        )
        .build()
        .expect("client");
    let search = json!({"size": 0, "track_total_hits": true});
    let body = format!("{{\"index\":\"logs-1\"}}\n{search}\n{{\"index\":\"movies\"}}\n{search}\n");
    let msearch = || async {
        let resp = client
            .get(format!(
                "https://{}/_msearch",
                t.h.domain_endpoint("secure").expect("ready")
            ))
            .basic_auth(reader.0, Some(reader.1))
            .header("content-type", "application/x-ndjson")
            .body(body.clone())
            .send()
            .await
            .expect("answers");
        (
            resp.status().as_u16(),
            resp.json::<Value>().await.expect("JSON"),
        )
    };

    let (status, refused) = msearch().await;
    assert_eq!(
        (status, refused["error"]["reason"].as_str()),
        (
            403,
            Some(security_exception("indices:data/read/msearch", "reader", "").as_str())
        )
    );

    let (status, b) = t
        .master(
            "PUT",
            &format!("{API}/roles/logs_reader"),
            Some(role(json!(["indices:data/read/msearch"]))),
        )
        .await;
    assert_eq!(status, 200, "{b}");
    let (status, answered) = msearch().await;
    assert_eq!(status, 200, "{answered}");
    t.spec.response("_core", "msearch@200", &answered);
    let r = &answered["responses"];
    assert_eq!(
        (&r[0]["hits"]["total"]["value"], &r[0]["status"]),
        (&json!(4), &json!(200)),
        "the seeded three and the one written"
    );
    assert_eq!(
        (r[1]["error"]["reason"].as_str(), &r[1]["status"]),
        (
            Some(security_exception("indices:data/read/search", "reader", "").as_str()),
            &json!(403)
        )
    );
    t.h.shutdown().await;
}
