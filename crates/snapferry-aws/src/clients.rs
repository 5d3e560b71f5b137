//! The AWS SDK clients (IAM, S3, OpenSearch control plane, STS, Secrets Manager), built once from the standard
//! credential chain and cached per region and per assumed role.
//!
//! Everything a user already configured for the AWS CLI must work unchanged: profiles, SSO, web
//! identity (CI with OIDC), `AWS_REGION`, `AWS_PROFILE`, `AWS_ENDPOINT_URL` and its per-service
//! variants (`AWS_ENDPOINT_URL_S3`, `_IAM`, `_OPENSEARCH`, `_STS`, `_SECRETS_MANAGER`), which `aws-config` resolves
//! itself — this module only adds what the Rust SDK does not do:
//! - `AWS_CA_BUNDLE`: the Rust SDK ignores it, so when it is set the SDK gets an HTTPS client
//!   whose trust store is the system roots plus that bundle (proxy variables still honoured);
//! - path-style S3 addressing when an endpoint is overridden (local stand-ins have no
//!   per-bucket DNS names);
//! - one client set per region (a copy may cross regions) and per role to assume (a copy may
//!   cross accounts), through `aws-config`'s `AssumeRoleProvider`;
//! - the caller's account id (STS `GetCallerIdentity`), for the confused-deputy condition;
//! - a credential chain that fails fast and clearly (`credentials.rs`): instance metadata is
//!   asked with short timeouts, the answer is remembered, and the region comes from the
//!   environment, the profile or the plan before instance metadata is ever asked for one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::environment::region::EnvironmentVariableRegionProvider;
use aws_config::imds::region::ImdsRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::region::ProfileFileRegionProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use tokio::sync::Mutex;

use crate::credentials::{
    ChainSettings, IMDS_ATTEMPTS, IMDS_CONNECT_TIMEOUT, IMDS_READ_TIMEOUT, RememberedChain,
};
use crate::error::AwsError;

/// `tracing` filter directives to append to any filter the CLI builds: the SDK's signer
/// (`aws-sigv4`) traces canonical requests, which hold the session token, so its target is
/// switched off whatever the verbosity (tested in `tests/sdk_secrets.rs`). A more specific
/// directive (`aws_sigv4::http_request=trace`) still wins over it in an `EnvFilter`, so a
/// subscriber must also drop [`traces_secrets`] targets in a filter no directive reaches.
pub const SECRET_SAFE_LOG_DIRECTIVES: &str = "aws_sigv4=off";

/// The crates whose traces hold secrets (the signer: canonical requests with the session
/// token, strings to sign); every directive of [`SECRET_SAFE_LOG_DIRECTIVES`] names one.
pub const SECRET_TRACING_CRATES: &[&str] = &["aws_sigv4"];

/// Whether events and spans of this `tracing` target may hold secrets and must never be
/// recorded, whatever the log filter asks for.
pub fn traces_secrets(target: &str) -> bool {
    SECRET_TRACING_CRATES.iter().any(|krate| {
        target
            .strip_prefix(krate)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// What to load the AWS configuration with; `from_env` reads the standard variables and
/// everything else is left to `aws-config`'s default chain.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// PEM bundle of extra CAs for every HTTPS call (`AWS_CA_BUNDLE`).
    pub ca_bundle: Option<PathBuf>,
    /// Profile to use instead of `AWS_PROFILE`/`default`.
    pub profile: Option<String>,
    /// Region to use when the chain has none (the plan's source region).
    pub fallback_region: Option<String>,
    /// Endpoint for every service, overriding `AWS_ENDPOINT_URL` (used by tests and the demo).
    pub endpoint_url: Option<String>,
    /// Credentials to use instead of the chain (used by tests and the demo).
    pub credentials: Option<SharedCredentialsProvider>,
}

impl AwsOptions {
    /// Options from the environment: `AWS_CA_BUNDLE`; the rest comes from the SDK's chain.
    pub fn from_env() -> Self {
        AwsOptions {
            ca_bundle: std::env::var_os("AWS_CA_BUNDLE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            ..AwsOptions::default()
        }
    }
}

/// The clients for one region (and one identity).
#[derive(Debug, Clone)]
pub struct ServiceClients {
    /// Region these clients call.
    pub region: String,
    /// IAM (global, but signed for this region's partition).
    pub iam: aws_sdk_iam::Client,
    /// S3 (path-style when an endpoint is overridden).
    pub s3: aws_sdk_s3::Client,
    /// OpenSearch Service control plane.
    pub opensearch: aws_sdk_opensearch::Client,
    /// STS.
    pub sts: aws_sdk_sts::Client,
    /// Secrets Manager: an internal master user's password, read only to be sent.
    pub secretsmanager: aws_sdk_secretsmanager::Client,
    /// The credentials these clients sign with; the domain HTTP client signs with them too.
    pub credentials: SharedCredentialsProvider,
}

/// (region, role to assume, external id).
type CacheKey = (String, Option<String>, Option<String>);

/// The loaded AWS configuration and the client sets made from it.
#[derive(Debug, Clone)]
pub struct AwsContext {
    base: SdkConfig,
    path_style: bool,
    cache: Arc<Mutex<HashMap<CacheKey, ServiceClients>>>,
    accounts: Arc<Mutex<HashMap<CacheKey, String>>>,
}

/// An SDK HTTPS client trusting the system roots plus the PEM certificates in `path`, with the
/// proxy variables honoured as the SDK's default client does.
pub fn https_client_with_ca_bundle(path: &Path) -> Result<SharedHttpClient, AwsError> {
    let pem = read_ca_bundle(path)?;
    let trust = tls::TrustStore::default().with_pem_certificate(pem);
    let context = tls::TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| AwsError::Config {
            problem: format!("cannot use the CA bundle {}", path.display()),
            source: Some(Box::new(e)),
        })?;
    Ok(
        aws_smithy_http_client::Builder::new().build_with_connector_fn(
            move |settings, components| {
                let mut builder = aws_smithy_http_client::ConnectorBuilder::default()
                    .tls_provider(tls::Provider::Rustls(
                        tls::rustls_provider::CryptoMode::AwsLc,
                    ))
                    .tls_context(context.clone());
                builder.set_connector_settings(settings.cloned());
                if let Some(components) = components {
                    builder.set_sleep_impl(components.sleep_impl());
                }
                builder
                    .set_proxy_config(Some(aws_smithy_http_client::proxy::ProxyConfig::from_env()));
                builder.build()
            },
        ),
    )
}

/// Reads and checks a PEM bundle: at least one certificate, every one parseable (the SDK's TLS
/// layer would panic on a bad one, so it is refused here with the file's name).
fn read_ca_bundle(path: &Path) -> Result<Vec<u8>, AwsError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let config_error =
        |problem: String, source: Option<Box<dyn std::error::Error + Send + Sync>>| {
            AwsError::Config { problem, source }
        };
    let pem = std::fs::read(path).map_err(|e| {
        config_error(
            format!(
                "cannot read the CA bundle {} (AWS_CA_BUNDLE)",
                path.display()
            ),
            Some(Box::new(e)),
        )
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            config_error(
                format!(
                    "the CA bundle {} (AWS_CA_BUNDLE) is not valid PEM",
                    path.display()
                ),
                Some(Box::new(e)),
            )
        })?;
    if certs.is_empty() {
        return Err(config_error(
            format!(
                "the CA bundle {} (AWS_CA_BUNDLE) holds no PEM certificate",
                path.display()
            ),
            None,
        ));
    }
    let mut store = rustls::RootCertStore::empty();
    for cert in certs {
        store.add(cert).map_err(|e| {
            config_error(
                format!(
                    "the CA bundle {} (AWS_CA_BUNDLE) holds a certificate that can't be parsed",
                    path.display()
                ),
                Some(Box::new(e)),
            )
        })?;
    }
    Ok(pem)
}

/// The endpoint S3 will be called at when one is configured, resolved exactly as
/// `aws_sdk_s3::Config::from(&SdkConfig)` does: a programmatic override, else `AWS_ENDPOINT_URL_S3`
/// / the profile's S3 `endpoint_url`, else the global `AWS_ENDPOINT_URL` / profile `endpoint_url`.
/// When there is one, S3 must be addressed path-style.
pub fn s3_endpoint_override(config: &SdkConfig) -> Option<String> {
    if config.get_origin("endpoint_url").is_client_config() {
        return config.endpoint_url().map(str::to_owned);
    }
    let key = aws_types::service_config::ServiceConfigKey::builder()
        .service_id("S3")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok()?;
    config
        .service_config()
        .and_then(|service| service.load_config(key))
        .or_else(|| config.endpoint_url().map(str::to_owned))
        .filter(|url| !url.trim().is_empty())
}

impl AwsContext {
    /// Loads the configuration through `aws-config`'s default chain, with `options` on top.
    pub async fn load(options: AwsOptions) -> Result<Self, AwsError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        let mut provider_config = ProviderConfig::default();
        if let Some(path) = &options.ca_bundle {
            let client = https_client_with_ca_bundle(path)?;
            provider_config = provider_config.with_http_client(client.clone());
            loader = loader.http_client(client);
        }
        if let Some(profile) = &options.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(endpoint) = &options.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        // Instance metadata is the last resort for both the region and the credentials: asked
        // with short timeouts, and for a region only when neither the environment, the profile
        // nor the plan gives one.
        let imds = aws_config::imds::Client::builder()
            .configure(&provider_config)
            .connect_timeout(IMDS_CONNECT_TIMEOUT)
            .read_timeout(IMDS_READ_TIMEOUT)
            .max_attempts(IMDS_ATTEMPTS)
            .build();
        let mut profile_region = ProfileFileRegionProvider::builder().configure(&provider_config);
        if let Some(profile) = &options.profile {
            profile_region = profile_region.profile_name(profile);
        }
        let region = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
            .or_else(profile_region.build())
            .or_else(options.fallback_region.clone().map(Region::new))
            .or_else(
                ImdsRegionProvider::builder()
                    .configure(&provider_config)
                    .imds_client(imds.clone())
                    .build(),
            )
            .region()
            .await;
        loader = loader.region(region.clone());
        match options.credentials.clone() {
            Some(credentials) => loader = loader.credentials_provider(credentials),
            None => {
                let mut chain = DefaultCredentialsChain::builder()
                    .configure(provider_config.with_region(region.clone()))
                    .imds_client(imds);
                if let Some(profile) = &options.profile {
                    chain = chain.profile_name(profile);
                }
                chain.set_region(region);
                let settings = ChainSettings {
                    profile: options.profile.clone(),
                };
                loader = loader
                    .credentials_provider(RememberedChain::new(chain.build().await, settings));
            }
        }
        let base = loader.load().await;
        let path_style = s3_endpoint_override(&base).is_some();
        Ok(AwsContext {
            base,
            path_style,
            cache: Arc::default(),
            accounts: Arc::default(),
        })
    }

    /// Asks the credential chain now, so that no credentials (or a profile that does not exist)
    /// stop a command before it reads anything, with what to do instead of the first AWS
    /// call's failure. The answer is remembered: the calls that follow do not ask again.
    pub async fn check_credentials(&self) -> Result<(), AwsError> {
        let Some(provider) = self.base.credentials_provider() else {
            return Err(AwsError::Credentials {
                problem: crate::credentials::CredentialsProblem::Failed {
                    message: "the AWS configuration has no credential provider".to_owned(),
                },
            });
        };
        provider
            .provide_credentials()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::credentials(&e))
    }

    /// The region the chain resolved (`AWS_REGION`, profile), if any.
    pub fn default_region(&self) -> Option<&str> {
        self.base.region().map(|r| r.as_ref())
    }

    /// Whether S3 is addressed path-style (an endpoint override is in force for S3).
    pub fn s3_path_style(&self) -> bool {
        self.path_style
    }

    /// The clients for `region`, signing as the chain's identity or, with `assume_role_arn`, as
    /// that role (cross-account copies), assumed with `external_id` when the role's trust
    /// policy asks for one (`sts:ExternalId`). Built once per (region, role, external id) and
    /// cached.
    pub async fn clients_as(
        &self,
        region: &str,
        assume_role_arn: Option<&str>,
        external_id: Option<&str>,
    ) -> Result<ServiceClients, AwsError> {
        let key = (
            region.to_owned(),
            assume_role_arn.map(str::to_owned),
            external_id.map(str::to_owned),
        );
        let mut cache = self.cache.lock().await;
        if let Some(found) = cache.get(&key) {
            return Ok(found.clone());
        }
        let regional = self
            .base
            .to_builder()
            .region(Region::new(region.to_owned()))
            .build();
        let config = match assume_role_arn {
            None => regional,
            Some(role_arn) => {
                let mut builder = aws_config::sts::AssumeRoleProvider::builder(role_arn)
                    .session_name("snapferry")
                    .region(Region::new(region.to_owned()))
                    .configure(&regional);
                if let Some(id) = external_id {
                    builder = builder.external_id(id);
                }
                let provider = builder.build().await;
                // Remembered too: the domain client asks for credentials on every request, and
                // each ask would otherwise be an STS AssumeRole call.
                let provider = RememberedChain::for_role(
                    provider,
                    ChainSettings::default(),
                    role_arn,
                    external_id.is_some(),
                );
                regional
                    .into_builder()
                    .credentials_provider(SharedCredentialsProvider::new(provider))
                    .build()
            }
        };
        let credentials = config
            .credentials_provider()
            .ok_or_else(|| AwsError::Config {
                problem: "no AWS credentials found (set AWS_PROFILE, run `aws sso login`, or \
                          export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
                    .to_owned(),
                source: None,
            })?;
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(self.path_style)
            .build();
        let clients = ServiceClients {
            region: region.to_owned(),
            iam: aws_sdk_iam::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            opensearch: aws_sdk_opensearch::Client::new(&config),
            sts: aws_sdk_sts::Client::new(&config),
            secretsmanager: aws_sdk_secretsmanager::Client::new(&config),
            credentials,
        };
        cache.insert(key, clients.clone());
        Ok(clients)
    }

    /// [`AwsContext::clients_as`] without an external id.
    pub async fn clients(
        &self,
        region: &str,
        assume_role_arn: Option<&str>,
    ) -> Result<ServiceClients, AwsError> {
        self.clients_as(region, assume_role_arn, None).await
    }

    /// [`AwsContext::account_id_as`] without an external id.
    pub async fn account_id(
        &self,
        region: &str,
        assume_role_arn: Option<&str>,
    ) -> Result<String, AwsError> {
        self.account_id_as(region, assume_role_arn, None).await
    }

    /// The account id of the identity used in `region` (with `assume_role_arn`, the role's
    /// account), from STS `GetCallerIdentity`; cached.
    pub async fn account_id_as(
        &self,
        region: &str,
        assume_role_arn: Option<&str>,
        external_id: Option<&str>,
    ) -> Result<String, AwsError> {
        let key = (
            region.to_owned(),
            assume_role_arn.map(str::to_owned),
            external_id.map(str::to_owned),
        );
        if let Some(found) = self.accounts.lock().await.get(&key) {
            return Ok(found.clone());
        }
        let clients = self
            .clients_as(region, assume_role_arn, external_id)
            .await?;
        let identity = clients
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("caller identity", "sts", "GetCallerIdentity", e))?;
        let account = identity
            .account()
            .map(str::to_owned)
            .ok_or_else(|| AwsError::Config {
                problem: "STS GetCallerIdentity returned no account id".to_owned(),
                source: None,
            })?;
        self.accounts.lock().await.insert(key, account.clone());
        Ok(account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

    /// Stands in for the environment and profile: answers one service's key.
    #[derive(Debug)]
    struct Configured {
        service: &'static str,
        value: &'static str,
    }

    impl LoadServiceConfig for Configured {
        fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
            (key.service_id() == self.service && key.profile() == "endpoint_url")
                .then(|| self.value.to_owned())
        }
    }

    fn config_with(service: &'static str, value: &'static str) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .service_config(Configured { service, value })
            .build()
    }

    #[test]
    fn an_s3_endpoint_from_the_environment_or_profile_means_path_style() {
        assert_eq!(
            s3_endpoint_override(&config_with("S3", "http://127.0.0.1:9000")).as_deref(),
            Some("http://127.0.0.1:9000")
        );
        // An endpoint for another service alone leaves S3 on AWS's virtual-hosted names.
        assert_eq!(
            s3_endpoint_override(&config_with("IAM", "http://127.0.0.1:1")),
            None
        );
        assert_eq!(s3_endpoint_override(&SdkConfig::builder().build()), None);
    }

    #[test]
    fn the_signer_and_its_modules_trace_secrets_and_its_neighbours_do_not() {
        for target in [
            "aws_sigv4",
            "aws_sigv4::http_request",
            "aws_sigv4::sign::v4",
        ] {
            assert!(traces_secrets(target), "{target}");
        }
        for target in [
            "aws_sigv4a",
            "aws_smithy_runtime",
            "snapferry_aws::aws_sigv4",
        ] {
            assert!(!traces_secrets(target), "{target}");
        }
        for krate in SECRET_TRACING_CRATES {
            assert!(
                SECRET_SAFE_LOG_DIRECTIVES
                    .split(',')
                    .any(|d| d == format!("{krate}=off")),
                "{krate} is not switched off by the directives"
            );
        }
    }

    #[test]
    fn a_global_endpoint_applies_to_s3_too() {
        let config = SdkConfig::builder()
            .endpoint_url("https://localhost:4566")
            .service_config(Configured {
                service: "IAM",
                value: "http://127.0.0.1:1",
            })
            .build();
        assert_eq!(
            s3_endpoint_override(&config).as_deref(),
            Some("https://localhost:4566")
        );
    }
}
