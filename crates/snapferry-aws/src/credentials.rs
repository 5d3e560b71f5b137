//! The standard AWS credential chain, made to fail fast and say what to do.
//!
//! snapferry keeps the chain every AWS tool uses (environment keys, the shared config and
//! credentials files with SSO and assumed-role profiles, a web identity token, container
//! credentials, then EC2 instance metadata), and adds three things around it:
//! - instance metadata is asked with short timeouts ([`IMDS_CONNECT_TIMEOUT`],
//!   [`IMDS_READ_TIMEOUT`]), so a laptop or a CI runner that has none is told within a second or
//!   two, not after the SDK's defaults and the engine's retries have added up to half a minute;
//! - the answer is remembered ([`RememberedChain`]): one lookup at a time, credentials reused
//!   until shortly before they expire, and "there are none" (or a broken profile) remembered for
//!   the run, so a plan's parallel reads and every signed domain request do not each probe the
//!   chain again (which also spared the domain client an STS call per request with assumed roles);
//! - a failure becomes a [`CredentialsProblem`]: "no AWS credentials found" with the ways to
//!   provide them, or the profile that does not exist named, in the tool's words — never the
//!   SDK's debug dump. `error.rs` finds it inside any SDK error that carries it.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials, SharedCredentialsProvider, future};
use tokio::sync::Mutex;

/// How long instance metadata may take to accept a connection. IMDS is a link-local service
/// that answers in milliseconds where it exists; where it does not, this is the whole wait.
pub const IMDS_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long instance metadata may take to answer once connected (a port that accepts and
/// never answers costs this, once).
pub const IMDS_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// Attempts per instance-metadata call. The SDK retries only 5xx and 401 answers from a real
/// IMDS (never a timeout or a refused connection), so this costs nothing where there is none.
pub const IMDS_ATTEMPTS: u32 = 2;

/// Credentials closer than this to their expiry are fetched again.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(120);

/// Why the credential chain gave no credentials, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialsProblem {
    /// Nothing in the chain had credentials.
    NotFound {
        /// The profile that was looked at (`default` unless one was chosen).
        profile: String,
        /// What instance metadata was (`http://169.254.169.254`, or that it is disabled).
        metadata: String,
    },
    /// The profile chosen with `--profile` or `AWS_PROFILE` is in neither shared file.
    UnknownProfile {
        /// The profile's name.
        name: String,
        /// `--profile` or `AWS_PROFILE`.
        chosen_by: &'static str,
        /// The config file looked in (`~/.aws/config` or `AWS_CONFIG_FILE`).
        config_file: String,
        /// The credentials file looked in (`~/.aws/credentials` or `AWS_SHARED_CREDENTIALS_FILE`).
        credentials_file: String,
        /// The profiles the files do define.
        known: Vec<String>,
    },
    /// A source that is configured failed (an expired SSO session, a web identity token STS
    /// refused, a broken profile): its own words, without the SDK's debug structure.
    Failed {
        /// What the provider said, causes joined with `: `.
        message: String,
    },
    /// STS refused to let the identity assume a plan's `assume_role_arn` (its trust policy,
    /// the `ExternalId` it asks for, or across accounts the caller's own policy).
    AssumeRole {
        /// The role's ARN.
        role_arn: String,
        /// Whether the plan gave an `external_id` for it.
        with_external_id: bool,
        /// What STS said.
        message: String,
    },
}

impl CredentialsProblem {
    /// The error line.
    pub fn message(&self) -> String {
        match self {
            CredentialsProblem::NotFound { profile, metadata } => format!(
                "no AWS credentials found: none in the environment (AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY), in profile `{profile}` (~/.aws/config, \
                 ~/.aws/credentials), from a web identity token (AWS_ROLE_ARN with \
                 AWS_WEB_IDENTITY_TOKEN_FILE), or from a container or instance role ({metadata})"
            ),
            CredentialsProblem::UnknownProfile {
                name,
                chosen_by,
                config_file,
                credentials_file,
                known,
            } => {
                let there = if known.is_empty() {
                    "they define no profile".to_owned()
                } else {
                    format!("they define {}", known.join(", "))
                };
                format!(
                    "profile `{name}` (from {chosen_by}) is not in {config_file} or \
                     {credentials_file}; {there}"
                )
            }
            CredentialsProblem::Failed { message } => {
                format!("could not get AWS credentials: {message}")
            }
            CredentialsProblem::AssumeRole {
                role_arn,
                with_external_id,
                message,
            } => {
                let account = role_arn.split(':').nth(4).unwrap_or("?");
                let external_id = if *with_external_id {
                    "the plan's `external_id` must equal the `sts:ExternalId` its trust policy \
                     asks for"
                } else {
                    "if its trust policy asks for an `sts:ExternalId`, set `external_id` beside \
                     `assume_role_arn` in the plan"
                };
                format!(
                    "could not assume role {role_arn} of account {account}: {message}; the \
                     role's trust policy must let this identity (or its account) call \
                     sts:AssumeRole, {external_id}, and from another account this identity's \
                     own policy must allow sts:AssumeRole on the role"
                )
            }
        }
    }

    /// What to do about it.
    pub fn help(&self) -> String {
        match self {
            CredentialsProblem::NotFound { .. } => {
                "give snapferry AWS credentials one of these ways:\n\
                 - a profile: `export AWS_PROFILE=<name>` or `--profile <name>` (for an SSO \
                 profile, run `aws sso login --profile <name>` first)\n\
                 - keys: `export AWS_ACCESS_KEY_ID=<id> AWS_SECRET_ACCESS_KEY=<secret>` (and \
                 AWS_SESSION_TOKEN with temporary keys)\n\
                 - in CI: a web identity (OIDC) token with AWS_ROLE_ARN and \
                 AWS_WEB_IDENTITY_TOKEN_FILE, or keys from aws-actions/configure-aws-credentials \
                 (docs/ci.md)\n\
                 - on EC2, ECS or EKS: an instance profile, task role or pod identity"
                    .to_owned()
            }
            CredentialsProblem::UnknownProfile {
                name, chosen_by, ..
            } => format!(
                "check the name given by {chosen_by}, or create the profile: `aws configure \
                 --profile {name}` (keys) or `aws configure sso --profile {name}` (IAM Identity \
                 Center)"
            ),
            CredentialsProblem::Failed { .. } => "for an SSO profile whose session expired, run \
                 `aws sso login --profile <name>`; for a web identity token, check AWS_ROLE_ARN \
                 and that the role trusts the token's subject; `-vv` shows each source tried"
                .to_owned(),
            CredentialsProblem::AssumeRole { role_arn, .. } => format!(
                "compare the plan's `assume_role_arn`/`external_id` with the trust policy of \
                 {role_arn} (`aws iam get-role --role-name {}`); docs/aws-setup.md shows the \
                 trust policy each account needs",
                role_arn.rsplit('/').next().unwrap_or(role_arn)
            ),
        }
    }

    /// Whether asking the chain again in this run could give another answer: a missing
    /// profile or nothing anywhere stays so; a failed STS call or SSO refresh may not.
    fn is_settled(&self) -> bool {
        !matches!(self, CredentialsProblem::Failed { .. })
    }

    fn to_error(&self) -> CredentialsError {
        match self {
            CredentialsProblem::Failed { .. } | CredentialsProblem::AssumeRole { .. } => {
                CredentialsError::provider_error(self.clone())
            }
            _ => CredentialsError::not_loaded(self.clone()),
        }
    }
}

impl fmt::Display for CredentialsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())?;
        match self {
            CredentialsProblem::NotFound { .. } => f.write_str(
                " (set AWS_PROFILE, run `aws sso login`, export AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY, or give a web identity token in CI)",
            ),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for CredentialsProblem {}

/// Finds a [`CredentialsProblem`] anywhere in an error's chain of causes (the SDK wraps the
/// credential provider's error in its dispatch failure).
pub fn problem_in<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a CredentialsProblem> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(problem) = e.downcast_ref::<CredentialsProblem>() {
            return Some(problem);
        }
        next = e.source();
    }
    None
}

/// What a failure is described with: the profile asked for on the command line (the
/// environment's `AWS_PROFILE` and metadata settings are read when a failure is described).
#[derive(Debug, Clone, Default)]
pub struct ChainSettings {
    /// `--profile`, when given (else `AWS_PROFILE` is read).
    pub profile: Option<String>,
}

/// A credential provider that asks the chain once at a time and remembers the answer (see the
/// module prose). Both the SDK clients and the domain data-plane client sign through it.
#[derive(Debug)]
pub struct RememberedChain {
    chain: SharedCredentialsProvider,
    settings: ChainSettings,
    last: Mutex<Option<Remembered>>,
    /// For an assumed role: its ARN and whether an external id is sent, so STS's refusal is
    /// described as a refused `AssumeRole` with its fix.
    role: Option<(String, bool)>,
}

#[derive(Debug, Clone)]
enum Remembered {
    Credentials(Credentials),
    Problem(CredentialsProblem),
}

impl RememberedChain {
    /// Wraps `chain` (the standard chain, or an assumed-role provider built on it).
    pub fn new(chain: impl ProvideCredentials + 'static, settings: ChainSettings) -> Self {
        RememberedChain {
            chain: SharedCredentialsProvider::new(chain),
            settings,
            last: Mutex::new(None),
            role: None,
        }
    }

    /// Wraps an assumed-role provider for `role_arn`: a refusal names the role, its account
    /// and what to check (the trust policy, the `ExternalId`).
    pub fn for_role(
        provider: impl ProvideCredentials + 'static,
        settings: ChainSettings,
        role_arn: &str,
        with_external_id: bool,
    ) -> Self {
        RememberedChain {
            role: Some((role_arn.to_owned(), with_external_id)),
            ..RememberedChain::new(provider, settings)
        }
    }

    async fn credentials(&self) -> provider::Result {
        let mut last = self.last.lock().await;
        match &*last {
            Some(Remembered::Credentials(c)) if fresh(c, SystemTime::now()) => {
                return Ok(c.clone());
            }
            Some(Remembered::Problem(problem)) => return Err(problem.to_error()),
            _ => {}
        }
        match self.chain.provide_credentials().await {
            Ok(credentials) => {
                *last = Some(Remembered::Credentials(credentials.clone()));
                Ok(credentials)
            }
            // Already ours (an assumed-role provider built on a remembered chain).
            Err(e) if problem_in(&e).is_some() => {
                let problem = problem_in(&e).cloned().expect("just found");
                if problem.is_settled() {
                    *last = Some(Remembered::Problem(problem));
                }
                Err(e)
            }
            Err(e) if self.role.is_some() && words(&e).contains("AccessDenied") => {
                let (role_arn, with_external_id) = self.role.clone().expect("just checked");
                // STS's own words, without the SDK's wrapping ("service error: unhandled error").
                let full = words(&e);
                let message = full
                    .rfind("AccessDenied: ")
                    .map_or(full.as_str(), |at| &full[at + "AccessDenied: ".len()..])
                    .to_owned();
                let problem = CredentialsProblem::AssumeRole {
                    role_arn,
                    with_external_id,
                    message,
                };
                // A refusal stays one for the run: STS is not asked again for every request.
                *last = Some(Remembered::Problem(problem.clone()));
                Err(problem.to_error())
            }
            Err(e) => {
                let settled_by_sdk = matches!(
                    e,
                    CredentialsError::CredentialsNotLoaded(_)
                        | CredentialsError::InvalidConfiguration(_)
                );
                let problem = diagnose(&self.settings, &e).await;
                if settled_by_sdk || problem.is_settled() {
                    *last = Some(Remembered::Problem(problem.clone()));
                }
                tracing::debug!(error = %words(&e), "the credential chain failed");
                Err(problem.to_error())
            }
        }
    }
}

impl ProvideCredentials for RememberedChain {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.credentials())
    }

    fn fallback_on_interrupt(&self) -> Option<Credentials> {
        self.chain.fallback_on_interrupt()
    }
}

/// Whether credentials may still be used at `now` (no expiry, or not about to expire).
fn fresh(credentials: &Credentials, now: SystemTime) -> bool {
    credentials
        .expiry()
        .is_none_or(|expiry| expiry > now + REFRESH_BEFORE_EXPIRY)
}

/// Turns the chain's error into a problem a user can act on.
async fn diagnose(settings: &ChainSettings, error: &CredentialsError) -> CredentialsProblem {
    let env = |key: &str| std::env::var(key).ok().filter(|v| !v.trim().is_empty());
    let chosen = settings
        .profile
        .clone()
        .map(|p| (p, "--profile"))
        .or_else(|| env("AWS_PROFILE").map(|p| (p, "AWS_PROFILE")));
    if let Some((name, chosen_by)) = &chosen
        && let Some(known) = defined_profiles().await
        && !known.iter().any(|k| k == name)
    {
        return CredentialsProblem::UnknownProfile {
            name: name.clone(),
            chosen_by,
            config_file: shared_file("AWS_CONFIG_FILE", "config"),
            credentials_file: shared_file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
            known,
        };
    }
    match error {
        CredentialsError::CredentialsNotLoaded(_) => CredentialsProblem::NotFound {
            profile: chosen.map_or_else(|| "default".to_owned(), |(p, _)| p),
            metadata: if env("AWS_EC2_METADATA_DISABLED")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            {
                "instance metadata is disabled by AWS_EC2_METADATA_DISABLED".to_owned()
            } else {
                format!(
                    "instance metadata at {} gave none, asked with a {} s timeout",
                    env("AWS_EC2_METADATA_SERVICE_ENDPOINT")
                        .unwrap_or_else(|| "http://169.254.169.254".to_owned()),
                    IMDS_READ_TIMEOUT.as_secs()
                )
            },
        },
        other => CredentialsProblem::Failed {
            message: words(other),
        },
    }
}

/// An error and its causes on one line, as `resources::chain` does, except that AWS's error
/// metadata (which displays as `Error { code: .., message: .., aws_request_id: .. }`) is given
/// as `code: message`.
pub fn words(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = match e.downcast_ref::<aws_smithy_types::error::ErrorMetadata>() {
            Some(meta) => match (meta.code(), meta.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(only), None) | (None, Some(only)) => only.to_owned(),
                (None, None) => String::new(),
            },
            None => e.to_string(),
        };
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// The profiles the shared config and credentials files define, or `None` when they cannot be
/// read (the SDK's own error then says why).
async fn defined_profiles() -> Option<Vec<String>> {
    use aws_types::os_shim_internal::{Env, Fs};
    #[allow(deprecated)] // the alias aws-config's `load` still takes
    let files = aws_config::profile::profile_file::ProfileFiles::default();
    let set = aws_config::profile::load(&Fs::real(), &Env::real(), &files, None)
        .await
        .ok()?;
    let mut names: Vec<String> = set.profiles().map(str::to_owned).collect();
    names.sort();
    Some(names)
}

/// A shared file's name as a user would write it: the variable's value, or `~/.aws/<name>`.
fn shared_file(variable: &str, name: &str) -> String {
    std::env::var_os(variable)
        .filter(|v| !v.is_empty())
        .map(|v| PathBuf::from(v).display().to_string())
        .unwrap_or_else(|| format!("~/.aws/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_reused_until_shortly_before_they_expire() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let lasting = Credentials::new("a", "b", None, None, "t");
        assert!(fresh(&lasting, now));
        let hour = Credentials::new("a", "b", None, Some(now + Duration::from_secs(3600)), "t");
        assert!(fresh(&hour, now));
        let minute = Credentials::new("a", "b", None, Some(now + Duration::from_secs(60)), "t");
        assert!(!fresh(&minute, now));
    }

    #[test]
    fn the_problems_say_what_to_do_in_plain_words() {
        let none = CredentialsProblem::NotFound {
            profile: "default".into(),
            metadata: "instance metadata at http://169.254.169.254 gave none within 2 s".into(),
        };
        assert!(none.message().starts_with("no AWS credentials found: "));
        for way in [
            "AWS_PROFILE",
            "aws sso login",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
        ] {
            assert!(none.help().contains(way), "{way} in {}", none.help());
        }
        let unknown = CredentialsProblem::UnknownProfile {
            name: "x".into(),
            chosen_by: "AWS_PROFILE",
            config_file: "~/.aws/config".into(),
            credentials_file: "~/.aws/credentials".into(),
            known: vec!["default".into(), "prod".into()],
        };
        assert_eq!(
            unknown.to_string(),
            "profile `x` (from AWS_PROFILE) is not in ~/.aws/config or ~/.aws/credentials; \
             they define default, prod"
        );
    }

    #[test]
    fn aws_error_metadata_is_told_as_code_and_message() {
        let meta = aws_smithy_types::error::ErrorMetadata::builder()
            .code("AccessDenied")
            .message("not authorized to perform: sts:AssumeRole")
            .custom("aws_request_id", "r-1")
            .build();
        let error = CredentialsError::provider_error(meta);
        assert_eq!(
            words(&error),
            "an error occurred while loading credentials: AccessDenied: not authorized to \
             perform: sts:AssumeRole"
        );
    }

    #[test]
    fn a_problem_is_found_through_the_causes_that_wrap_it() {
        let problem = CredentialsProblem::Failed {
            message: "boom".into(),
        };
        let wrapped = problem.to_error();
        assert_eq!(problem_in(&wrapped), Some(&problem));
        assert_eq!(problem_in(&std::io::Error::other("unrelated")), None);
    }
}
