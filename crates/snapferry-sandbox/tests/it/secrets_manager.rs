//! Secrets Manager's `GetSecretValue` through the real SDK client: a seeded secret read by its
//! ARN (with AWS's random suffix) and by its name, JSON and binary values as stored, a secret
//! that does not exist (AWS's `ResourceNotFoundException` and words), one the caller's IAM
//! policy does not allow (`AccessDeniedException`, naming the action and the ARN) and another
//! account's or Region's; every call in the request log.

use aws_credential_types::Credentials;
use snapferry_sandbox::{IdentityConfig, SandboxConfig, SandboxHandle, SeedSecret};

use crate::common::*;

const ACCOUNT: &str = "123456789012";

fn config() -> SandboxConfig {
    let allowed = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:search/master-*")}]});
    SandboxConfig {
        secrets: vec![
            SeedSecret {
                name: "search/master".into(),
                secret_string: Some("Plain-Passw0rd!".into()),
                ..SeedSecret::default()
            },
            SeedSecret {
                name: "search/json".into(),
                secret_string: Some(r#"{"username":"admin","password":"Json-Passw0rd!"}"#.into()),
                ..SeedSecret::default()
            },
            SeedSecret {
                name: "search/binary".into(),
                secret_binary: Some("AAEC".into()),
                ..SeedSecret::default()
            },
            SeedSecret {
                name: "search/elsewhere".into(),
                secret_string: Some("x".into()),
                account: Some("222222222222".into()),
                region: Some("eu-west-1".into()),
                ..SeedSecret::default()
            },
        ],
        identities: vec![IdentityConfig {
            access_key_id: "AKIAREADER".into(),
            secret_access_key: "reader-secret".into(),
            session_token: None,
            arn: format!("arn:aws:iam::{ACCOUNT}:user/reader"),
            policies: Some(vec![allowed]),
        }],
        ..fast_config()
    }
}

async fn client(
    h: &SandboxHandle,
    creds: Option<Credentials>,
    region: &str,
) -> aws_sdk_secretsmanager::Client {
    let mut conf = sdk_config(h)
        .await
        .into_builder()
        .region(aws_config::Region::new(region.to_owned()));
    if let Some(creds) = creds {
        conf = conf.credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(creds),
        );
    }
    aws_sdk_secretsmanager::Client::new(&conf.build())
}

fn reader() -> Credentials {
    Credentials::new("AKIAREADER", "reader-secret", None, None, "t")
}

async fn get(
    c: &aws_sdk_secretsmanager::Client,
    id: &str,
) -> Result<
    aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput,
    (String, String),
> {
    c.get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| {
            let e = e.into_service_error();
            use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
            (
                e.code().unwrap_or_default().to_owned(),
                e.message().unwrap_or_default().to_owned(),
            )
        })
}

#[tokio::test]
async fn a_secret_is_read_by_arn_or_name_and_refused_as_aws_refuses_it() {
    let h = start(config()).await;
    let arn = h.secret_arn("search/master").expect("seeded");
    let prefix = format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:search/master-");
    let suffix = arn.strip_prefix(&prefix).expect(&arn);
    assert_eq!(suffix.len(), 6, "{arn}");
    assert!(suffix.bytes().all(|b| b.is_ascii_alphanumeric()), "{arn}");

    let admin = client(&h, None, "us-east-1").await;
    // Found, by ARN and by name: the same secret.
    let by_arn = get(&admin, &arn).await.unwrap();
    assert_eq!(by_arn.secret_string(), Some("Plain-Passw0rd!"));
    assert_eq!(by_arn.arn(), Some(arn.as_str()));
    assert_eq!(by_arn.name(), Some("search/master"));
    assert_eq!(by_arn.version_stages(), ["AWSCURRENT".to_owned()]);
    let by_name = get(&admin, "search/master").await.unwrap();
    assert_eq!(by_name.arn(), Some(arn.as_str()));
    assert_eq!(
        get(&admin, "search/json").await.unwrap().secret_string(),
        Some(r#"{"username":"admin","password":"Json-Passw0rd!"}"#)
    );
    let binary = get(&admin, "search/binary").await.unwrap();
    assert_eq!(binary.secret_string(), None);
    assert_eq!(
        binary.secret_binary().map(|b| b.as_ref().to_vec()),
        Some(vec![0, 1, 2])
    );

    // Not found: a name nobody made, a partial ARN, a secret of another Region.
    let not_found = (
        "ResourceNotFoundException".to_owned(),
        "Secrets Manager can't find the specified secret.".to_owned(),
    );
    assert_eq!(get(&admin, "search/nothing").await.unwrap_err(), not_found);
    assert_eq!(
        get(&admin, prefix.trim_end_matches('-')).await.unwrap_err(),
        not_found
    );
    assert_eq!(
        get(&admin, "search/elsewhere").await.unwrap_err(),
        not_found
    );

    // Denied: the reader may read search/master-* only, and the refusal names action and ARN.
    let reader_client = client(&h, Some(reader()), "us-east-1").await;
    assert_eq!(
        get(&reader_client, "search/master")
            .await
            .unwrap()
            .secret_string(),
        Some("Plain-Passw0rd!")
    );
    let json_arn = h.secret_arn("search/json").unwrap();
    assert_eq!(
        get(&reader_client, "search/json").await.unwrap_err(),
        (
            "AccessDeniedException".to_owned(),
            format!(
                "User: arn:aws:iam::{ACCOUNT}:user/reader is not authorized to perform: \
                 secretsmanager:GetSecretValue on resource: {json_arn} because no \
                 identity-based policy allows the secretsmanager:GetSecretValue action"
            )
        )
    );
    // A refused caller learns nothing of what does not exist either.
    assert_eq!(
        get(&reader_client, "other/nothing").await.unwrap_err().0,
        "AccessDeniedException"
    );

    // Another account's secret, by ARN in its Region: no resource policy lets the caller in.
    let elsewhere = h
        .secret_arn_in("222222222222", "eu-west-1", "search/elsewhere")
        .unwrap();
    let eu = client(&h, None, "eu-west-1").await;
    assert_eq!(
        get(&eu, &elsewhere).await.unwrap_err().0,
        "AccessDeniedException"
    );

    let log: Vec<(String, String, u16)> = h
        .request_log()
        .into_iter()
        .filter(|r| r.service == "secretsmanager")
        .map(|r| (r.operation, r.target.unwrap_or_default(), r.status))
        .collect();
    let statuses: Vec<u16> = log.iter().map(|(_, _, s)| *s).collect();
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 400, 400, 400, 200, 400, 400, 400],
        "{log:?}"
    );
    assert!(
        log.iter().all(|(op, _, _)| op == "GetSecretValue"),
        "{log:?}"
    );
    assert_eq!(log[0].1, arn);
    assert_eq!(log[1].1, "search/master");
}

#[test]
fn a_seeded_secret_is_checked() {
    let err = |yaml: &str| SandboxConfig::from_yaml_str(yaml).unwrap_err().to_string();
    assert_eq!(
        err("secrets: [{name: a}]"),
        "invalid sandbox config: secrets[0]: give exactly one of secret_string or secret_binary"
    );
    assert_eq!(
        err("secrets: [{name: 'a b', secret_string: x}]"),
        "invalid sandbox config: secrets[0]: \"a b\" is not a secret name (1 to 512 of A-Z a-z 0-9 /_+=.@-)"
    );
    assert_eq!(
        err("secrets: [{name: a, secret_string: x, region: mars}]"),
        "invalid sandbox config: secrets[0]: region \"mars\" is not a Region name like eu-west-1"
    );
}
