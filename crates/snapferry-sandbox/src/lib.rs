//! A local stand-in for IAM, S3 and Amazon OpenSearch Service (control plane and each domain's
//! HTTPS data plane), so snapferry can be tested, demonstrated and rehearsed without AWS.
//!
//! One listener on 127.0.0.1 answers IAM, STS (`GetCallerIdentity`), S3, Secrets Manager
//! (`GetSecretValue`) and the OpenSearch Service control plane, routed by the service in each request's SigV4 credential scope, so a client only
//! needs the standard `AWS_ENDPOINT_URL`. Every domain gets its own HTTPS listener whose
//! certificate is signed by a CA written to a file (`AWS_CA_BUNDLE`). The sandbox shares no code
//! with the tool's AWS crate, so a misunderstanding of the wire cannot hide on both sides.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod access_policy;
mod auth;
mod clock;
mod config;
mod control_plane;
mod data_plane;
mod faults;
mod http;
mod iam;
mod identity;
mod log;
pub mod model;
mod policy_eval;
mod router;
mod s3;
mod secretsmanager;
mod security_options;
mod sts;
mod tls;

pub use config::{
    AutomatedSnapshots, CredentialsConfig, ExternalConfig, FaultsConfig, Home, IdentityConfig,
    LatencyConfig, SandboxConfig, SeedData, SeedDataStream, SeedDomain, SeedDomainSecurity,
    SeedFgac, SeedIndex, SeedRole, SeedSecret, SeedWriter,
};
pub use faults::{FaultKind, FaultRule};
pub use log::LoggedRequest;

/// Why the sandbox could not start or be configured.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot read sandbox config {path}")]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sandbox config {path} is not valid YAML for the sandbox")]
    ParseConfig {
        path: String,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("invalid sandbox config: {0}")]
    InvalidConfig(String),
    #[error("cannot listen on 127.0.0.1:{port}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the CA bundle to {path}")]
    WriteCa {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the TLS certificates")]
    Tls(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// State every handler shares.
pub(crate) struct Shared {
    pub config: SandboxConfig,
    pub clock: Arc<clock::Clock>,
    pub log: log::RequestLog,
    pub faults: faults::Faults,
    pub iam: Arc<iam::IamStore>,
    pub identities: Arc<identity::Identities>,
    pub roles: iam::RoleDirectory,
    pub blobs: s3::BlobStore,
    pub s3_service: s3s::service::S3Service,
    pub tls: tls::Authority,
    pub domains: control_plane::Domains,
    pub secrets: secretsmanager::SecretStore,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// Entry point: [`Sandbox::start`].
pub struct Sandbox;

impl Sandbox {
    /// Starts the listener, the seeded domains and their data; returns once everything is ready.
    pub async fn start(config: SandboxConfig) -> Result<SandboxHandle, SandboxError> {
        config.check()?;
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let (state_dir, temp_dir) = match &config.state_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| SandboxError::WriteCa {
                    path: dir.clone(),
                    source,
                })?;
                (dir.clone(), None)
            }
            None => {
                let dir = tempfile::tempdir().map_err(|source| SandboxError::WriteCa {
                    path: std::env::temp_dir(),
                    source,
                })?;
                (dir.path().to_path_buf(), Some(dir))
            }
        };
        let tls = tls::Authority::create(&state_dir)?;
        let clock = Arc::new(clock::Clock::default());
        let iam = Arc::new(iam::IamStore::new(
            clock.clone(),
            config.scaled(config.latencies.iam_propagation_secs),
        ));
        let s3 = Arc::new(s3::S3Store::default());
        for bucket in &config.buckets {
            let (account, region) = config.bucket_home(bucket);
            s3.create_bucket(bucket, &region, &account);
            iam.serve_account(&account);
        }
        let (roles, blobs) = external_clients(&config, &iam, &s3);
        let identities = Arc::new(identity::Identities::from_config(&config)?);
        for account in identities.accounts() {
            iam.serve_account(&account);
        }
        for seed in &config.domains {
            iam.serve_account(&config.domain_home(&seed.name).0);
        }
        for role in &config.roles {
            iam.insert_seeded_role(role);
        }
        let mut builder = s3s::service::S3ServiceBuilder::new(s3::SandboxS3 {
            store: s3.clone(),
            identities: identities.clone(),
            // Principals in bucket policies are resolved against the sandbox's IAM when it
            // serves IAM itself; an external IAM's roles are not checked.
            iam: config.external.iam_endpoint.is_none().then(|| iam.clone()),
        });
        builder.set_auth(identity::S3Auth {
            identities: identities.clone(),
        });
        builder.set_access(identity::S3Access {
            identities: identities.clone(),
            store: s3.clone(),
            clock: clock.clone(),
        });
        for account in identities.service_linked_role_accounts() {
            iam.insert_service_linked_role(
                &account,
                identity::SERVICE_LINKED_ROLE,
                "opensearchservice.amazonaws.com",
            );
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
            .await
            .map_err(|source| SandboxError::Bind {
                port: config.port,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SandboxError::Bind {
            port: config.port,
            source,
        })?;
        let secrets = secretsmanager::SecretStore::default();
        for seed in &config.secrets {
            secrets.insert_seed(
                seed,
                seed.account.as_deref().unwrap_or(&config.account_id),
                seed.region.as_deref().unwrap_or(&config.region),
            );
        }
        let shared = Arc::new(Shared {
            secrets,
            faults: faults::Faults::new(config.faults.seed, config.faults.rules.clone()),
            clock,
            log: log::RequestLog::default(),
            iam,
            identities,
            roles,
            blobs,
            s3_service: builder.build(),
            tls,
            domains: control_plane::Domains::default(),
            shutdown,
            config,
        });
        control_plane::seed(&shared).await?;
        tokio::spawn(router::serve(shared.clone(), listener));
        Ok(SandboxHandle {
            shared,
            addr,
            stop,
            _temp_dir: temp_dir,
        })
    }
}

fn external_clients(
    config: &SandboxConfig,
    iam: &Arc<iam::IamStore>,
    s3: &Arc<s3::S3Store>,
) -> (iam::RoleDirectory, s3::BlobStore) {
    let creds = aws_sdk_s3::config::Credentials::new(
        config.credentials.access_key_id.clone(),
        config.credentials.secret_access_key.clone(),
        config.credentials.session_token.clone(),
        None,
        "snapferry-sandbox",
    );
    let region = aws_sdk_s3::config::Region::new(config.region.clone());
    let roles = match &config.external.iam_endpoint {
        Some(url) => iam::RoleDirectory::External(aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::Config::builder()
                .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
                .credentials_provider(creds.clone())
                .region(region.clone())
                .endpoint_url(url)
                .build(),
        )),
        None => iam::RoleDirectory::Local(iam.clone()),
    };
    let blobs = match &config.external.s3_endpoint {
        Some(url) => s3::BlobStore::External(aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .credentials_provider(creds)
                .region(region)
                .endpoint_url(url)
                .force_path_style(true)
                .build(),
        )),
        None => s3::BlobStore::Local(s3.clone()),
    };
    (roles, blobs)
}

/// A running sandbox. Dropping it without [`SandboxHandle::shutdown`] leaves the tasks running
/// until the runtime ends.
pub struct SandboxHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    _temp_dir: Option<tempfile::TempDir>,
}

impl SandboxHandle {
    /// The ARN of the seeded secret `name` in the default account and Region (its suffix is
    /// random, as on AWS).
    pub fn secret_arn(&self, name: &str) -> Option<String> {
        let config = &self.shared.config;
        self.secret_arn_in(&config.account_id, &config.region, name)
    }

    /// The ARN of the seeded secret `name` in `account` and `region`.
    pub fn secret_arn_in(&self, account: &str, region: &str, name: &str) -> Option<String> {
        self.shared.secrets.arn(account, region, name)
    }

    /// `http://127.0.0.1:<port>`: the value for `AWS_ENDPOINT_URL`.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// PEM of the CA that signed the domains' certificates: the value for `AWS_CA_BUNDLE`.
    pub fn ca_bundle_path(&self) -> &Path {
        self.shared.tls.ca_path()
    }

    /// The environment a client needs to talk to this sandbox.
    pub fn env(&self) -> Vec<(String, String)> {
        let c = &self.shared.config;
        let mut env = vec![
            ("AWS_ENDPOINT_URL".to_owned(), self.endpoint_url()),
            (
                "AWS_CA_BUNDLE".to_owned(),
                self.ca_bundle_path().display().to_string(),
            ),
            (
                "AWS_ACCESS_KEY_ID".to_owned(),
                c.credentials.access_key_id.clone(),
            ),
            (
                "AWS_SECRET_ACCESS_KEY".to_owned(),
                c.credentials.secret_access_key.clone(),
            ),
            ("AWS_REGION".to_owned(), c.region.clone()),
            // The AWS CLI v1 and older SDKs read only this one.
            ("AWS_DEFAULT_REGION".to_owned(), c.region.clone()),
        ];
        if let Some(token) = &c.credentials.session_token {
            env.push(("AWS_SESSION_TOKEN".to_owned(), token.clone()));
        }
        env
    }

    /// The environment a client needs to call this sandbox as the configured identity whose
    /// access key this is (`None` for a key no identity has).
    pub fn identity_env(&self, access_key_id: &str) -> Option<Vec<(String, String)>> {
        let identity = self.shared.identities.get(access_key_id)?;
        let mut env: Vec<(String, String)> = self
            .env()
            .into_iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" | "AWS_SESSION_TOKEN"
                )
            })
            .collect();
        let c = &identity.credentials;
        env.push(("AWS_ACCESS_KEY_ID".to_owned(), c.access_key_id.clone()));
        env.push((
            "AWS_SECRET_ACCESS_KEY".to_owned(),
            c.secret_access_key.clone(),
        ));
        if let Some(token) = &c.session_token {
            env.push(("AWS_SESSION_TOKEN".to_owned(), token.clone()));
        }
        Some(env)
    }

    /// Every request answered so far, in order.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.shared.log.entries()
    }

    /// Forgets the request log (as `POST /_sandbox/reset-log` does).
    pub fn reset_log(&self) {
        self.shared.log.clear();
    }

    /// A ready domain's `host:port` as DescribeDomain gives it: `127.0.0.1:<port>`, or a VPC
    /// domain's `vpc-<name>.sandbox.internal:<port>`, which only a proxy that maps it reaches.
    pub fn domain_endpoint(&self, domain: &str) -> Option<String> {
        self.shared.domains.endpoint(&self.shared, domain)
    }

    /// A ready domain's `host:port` in `account` and `region` (domains of one name may live in
    /// several accounts and Regions).
    pub fn domain_endpoint_in(&self, account: &str, region: &str, domain: &str) -> Option<String> {
        self.shared.domains.endpoint_at(
            &self.shared,
            &control_plane::DomainKey {
                account: account.to_owned(),
                region: region.to_owned(),
                name: domain.to_owned(),
            },
        )
    }

    /// The sandbox's DNS for the names it hands out (a VPC domain's `vpc-<name>.sandbox.internal`):
    /// the address, or `None` (NXDOMAIN) for an unknown name, a domain not ready, or a fresh
    /// domain whose record has not propagated yet (`latencies.dns_propagation_secs`). A proxy
    /// standing in for a bastion resolves through it (also `GET /_sandbox/resolve?name=HOST`).
    pub fn resolve(&self, host: &str) -> Option<std::net::IpAddr> {
        self.shared.domains.resolve(&self.shared, host)
    }

    /// [`SandboxHandle::resolve`] as a function that outlives this borrow: the DNS of a proxy
    /// the test runs on its own thread (a bastion's resolver, which sees the same records).
    pub fn resolver(&self) -> impl Fn(&str) -> Option<std::net::IpAddr> + Send + Sync + 'static {
        let shared = self.shared.clone();
        move |host| shared.domains.resolve(&shared, host)
    }

    /// Moves simulated time forward (as `POST /_sandbox/clock?advance_secs=N` does): domains,
    /// snapshots, IAM propagation and DNS windows all see the later time.
    pub fn advance_clock(&self, simulated_secs: f64) {
        self.shared
            .clock
            .advance(self.shared.config.scaled(simulated_secs.max(0.0)));
    }

    /// Replaces the fault rules (as `POST /_sandbox/faults` does).
    pub fn set_faults(&self, seed: u64, rules: Vec<FaultRule>) {
        self.shared.faults.replace(seed, rules);
    }

    /// Stops every listener.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        tokio::task::yield_now().await;
    }
}
