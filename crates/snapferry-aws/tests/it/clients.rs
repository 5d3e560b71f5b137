//! The SDK clients against a local TLS server: the CA bundle is what makes the server trusted
//! (and nothing else does), S3 is addressed path-style under an endpoint override, STS gives the
//! account id, and clients are cached per region.

use crate::support;

use std::sync::Arc;

use snapferry_aws::clients::{AwsContext, AwsOptions};
use snapferry_aws::error::AwsError;
use support::*;

const CALLER_IDENTITY: &str = r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:iam::123456789012:user/ci</Arn>
    <UserId>AIDATEST</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>"#;

const BUCKET_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Theirs","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::snaps/*"}]}"#;

fn answer() -> Handler {
    Arc::new(|seen: &Seen| {
        if seen.path_and_query.contains("policy") {
            (200, vec![], BUCKET_POLICY.to_owned())
        } else {
            (
                200,
                vec![("content-type", "text/xml".to_owned())],
                CALLER_IDENTITY.to_owned(),
            )
        }
    })
}

async fn context(endpoint: String, ca_bundle: Option<std::path::PathBuf>) -> AwsContext {
    AwsContext::load(AwsOptions {
        ca_bundle,
        profile: None,
        fallback_region: Some(REGION.to_owned()),
        endpoint_url: Some(endpoint),
        credentials: Some(provider()),
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_ca_bundle_makes_the_sdk_trust_the_server_and_s3_is_path_style() {
    let (server, ca_pem) = tls_server(answer()).await;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ca.pem");
    // Two certificates in one bundle: an unrelated one first, as real bundles have many.
    let (_other, other_pem) = tls_server(answer()).await;
    std::fs::write(&bundle, format!("{other_pem}{ca_pem}")).unwrap();
    let endpoint = format!("https://localhost:{}", server.addr.port());
    let aws = context(endpoint, Some(bundle)).await;
    assert!(aws.s3_path_style());

    assert_eq!(aws.account_id(REGION, None).await.unwrap(), "123456789012");
    let clients = aws.clients(REGION, None).await.unwrap();
    let policy = clients
        .s3
        .get_bucket_policy()
        .bucket("snaps")
        .send()
        .await
        .unwrap();
    assert_eq!(policy.policy(), Some(BUCKET_POLICY));

    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].method, "POST");
    assert!(String::from_utf8_lossy(&seen[0].body).contains("Action=GetCallerIdentity"));
    // Path-style: the bucket is in the path, the host is the endpoint's.
    assert!(
        seen[1].path_and_query.starts_with("/snaps/?policy"),
        "{}",
        seen[1].path_and_query
    );
    assert_eq!(
        seen[1].headers["host"],
        format!("localhost:{}", server.addr.port())
    );
    let auth = &seen[1].headers["authorization"];
    assert!(
        auth.contains(&format!("/{REGION}/s3/aws4_request")),
        "{auth}"
    );

    // Cached: same region gives the same clients without loading again; another region differs.
    let other = aws.clients("us-east-1", None).await.unwrap();
    assert_eq!(other.region, "us-east-1");
    assert_eq!(aws.account_id(REGION, None).await.unwrap(), "123456789012");
    assert_eq!(server.seen.lock().unwrap().len(), 2, "account id is cached");
}

#[tokio::test]
async fn without_the_ca_bundle_the_server_is_not_trusted() {
    let (server, _ca_pem) = tls_server(answer()).await;
    let endpoint = format!("https://localhost:{}", server.addr.port());
    let aws = context(endpoint, None).await;
    let err = aws.account_id(REGION, None).await.unwrap_err();
    assert!(
        !err.is_transient(),
        "an untrusted certificate is not worth retrying"
    );
    let text = chain(&err);
    assert!(
        text.starts_with("caller identity: sts GetCallerIdentity failed"),
        "{text}"
    );
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert!(server.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_bad_ca_bundle_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let err = AwsContext::load(AwsOptions {
        ca_bundle: Some(empty.clone()),
        ..AwsOptions::default()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, AwsError::Config { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "AWS configuration: the CA bundle {} (AWS_CA_BUNDLE) holds no PEM certificate",
            empty.display()
        )
    );
    let missing = dir.path().join("missing.pem");
    let err = AwsContext::load(AwsOptions {
        ca_bundle: Some(missing.clone()),
        ..AwsOptions::default()
    })
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "AWS configuration: cannot read the CA bundle {} (AWS_CA_BUNDLE)",
            missing.display()
        )
    );
}

const ASSUMED: &str = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::210987654321:assumed-role/copier/snapferry</Arn>
      <AssumedRoleId>AROATEST:snapferry</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAASSUMEDROLE</AccessKeyId>
      <SecretAccessKey>assumed-secret</SecretAccessKey>
      <SessionToken>assumed-token</SessionToken>
      <Expiration>2099-01-01T00:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>r-2</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#;

#[tokio::test]
async fn an_assumed_role_signs_its_own_clients_and_reports_its_account() {
    let handler: Handler = Arc::new(|seen: &Seen| {
        let body = String::from_utf8_lossy(&seen.body);
        if body.contains("Action=AssumeRole") {
            return (200, vec![], ASSUMED.to_owned());
        }
        let auth = seen
            .headers
            .get("authorization")
            .cloned()
            .unwrap_or_default();
        let identity = if auth.contains("Credential=ASIAASSUMEDROLE/") {
            CALLER_IDENTITY.replace("123456789012", "210987654321")
        } else {
            CALLER_IDENTITY.to_owned()
        };
        (200, vec![], identity)
    });
    let (server, ca_pem) = tls_server(handler).await;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ca.pem");
    std::fs::write(&bundle, ca_pem).unwrap();
    let aws = context(
        format!("https://localhost:{}", server.addr.port()),
        Some(bundle),
    )
    .await;

    let role = "arn:aws:iam::210987654321:role/copier";
    assert_eq!(
        aws.account_id(REGION, Some(role)).await.unwrap(),
        "210987654321"
    );
    assert_eq!(aws.account_id(REGION, None).await.unwrap(), "123456789012");

    let seen = server.seen.lock().unwrap().clone();
    let assume = seen
        .iter()
        .find(|s| String::from_utf8_lossy(&s.body).contains("Action=AssumeRole"))
        .expect("AssumeRole was called");
    let body = String::from_utf8_lossy(&assume.body);
    assert!(
        body.contains("RoleArn=arn%3Aaws%3Aiam%3A%3A210987654321%3Arole%2Fcopier"),
        "{body}"
    );
    assert!(body.contains("RoleSessionName=snapferry"), "{body}");
    // AssumeRole itself is signed with the caller's own credentials.
    assert!(assume.headers["authorization"].contains(&format!("Credential={ACCESS_KEY}/")));
}

/// A credential source that counts how often it is asked and always fails the same way.
#[derive(Debug)]
struct Failing {
    asked: Arc<std::sync::atomic::AtomicUsize>,
    not_loaded: bool,
}

impl aws_credential_types::provider::ProvideCredentials for Failing {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        use aws_credential_types::provider::error::CredentialsError;
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let error = if self.not_loaded {
            CredentialsError::not_loaded("no providers in chain provided credentials")
        } else {
            CredentialsError::provider_error(
                "the SSO session associated with this profile has expired",
            )
        };
        aws_credential_types::provider::future::ProvideCredentials::ready(Err(error))
    }
}

fn remembered(not_loaded: bool) -> (AwsOptions, Arc<std::sync::atomic::AtomicUsize>) {
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let chain = snapferry_aws::credentials::RememberedChain::new(
        Failing {
            asked: asked.clone(),
            not_loaded,
        },
        snapferry_aws::credentials::ChainSettings::default(),
    );
    let options = AwsOptions {
        fallback_region: Some(REGION.to_owned()),
        credentials: Some(aws_credential_types::provider::SharedCredentialsProvider::new(chain)),
        ..AwsOptions::default()
    };
    (options, asked)
}

/// Debug forms of the SDK's errors that must never reach a user.
const SDK_DEBUG: &[&str] = &[
    "DispatchFailure",
    "dispatch failure",
    "ConnectorError",
    "Some(",
    "CredentialsNotLoaded",
];

#[tokio::test]
async fn no_credentials_fail_every_call_with_one_lookup_and_no_sdk_debug_text() {
    let (mut options, asked) = remembered(true);
    let server = http_server(answer()).await;
    options.endpoint_url = Some(format!("http://{}", server.addr));
    let aws = AwsContext::load(options).await.unwrap();
    let err = aws.check_credentials().await.unwrap_err();
    let AwsError::Credentials { problem } = &err else {
        panic!("not a credentials error: {err:?}");
    };
    assert!(
        problem.message().starts_with("no AWS credentials found: "),
        "{problem}"
    );
    // The SDK call fails with the same problem, found inside its dispatch failure, and is not
    // worth retrying.
    let err = aws.account_id(REGION, None).await.unwrap_err();
    assert!(matches!(err, AwsError::Credentials { .. }), "{err:?}");
    assert!(!err.is_transient());
    let text = chain(&err);
    assert!(text.starts_with("no AWS credentials found: "), "{text}");
    for debug in SDK_DEBUG {
        assert!(!text.contains(debug), "{debug} in {text}");
    }
    // Many callers at once (a plan's parallel reads): the chain was asked once in all.
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let aws = aws.clone();
        calls.spawn(async move { aws.account_id(REGION, None).await });
    }
    for result in calls.join_all().await {
        assert!(matches!(result, Err(AwsError::Credentials { .. })));
    }
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(server.seen.lock().unwrap().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_failing_source_is_asked_again_and_its_words_are_kept() {
    let (options, asked) = remembered(false);
    let aws = AwsContext::load(options).await.unwrap();
    for _ in 0..2 {
        let err = aws.check_credentials().await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "could not get AWS credentials: an error occurred while loading credentials: the SSO \
             session associated with this profile has expired"
        );
    }
    // An SSO refresh or an STS call may succeed later: not remembered.
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 2);
}
