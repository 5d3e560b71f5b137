//! What `plan`, `apply`, `status` and `unlock` share: the checked plan, the AWS clients, the
//! engine graph of live resources and the state store the plan names (a local file beside
//! the plan, or an S3 object). Built once per command from the plan file and the standard
//! AWS environment, or from explicit settings when the demo runs against its own sandbox.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use miette::{IntoDiagnostic, WrapErr};
use snapferry_aws::clients::{AwsContext, AwsOptions};
use snapferry_aws::resources::{Env, build_graph};
use snapferry_aws::state_store::S3Store;
use snapferry_engine::{ExecGraph, FileStore, PollSchedule, StateDoc, StateStore};
use snapferry_plan::{Plan, StateLocation};

/// Settings every AWS-touching command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct AwsArgs {
    /// AWS profile to use instead of `AWS_PROFILE`/`default`.
    #[arg(long, value_name = "NAME", global = true)]
    pub profile: Option<String>,
    /// Resolve snapshot-name templates as of this time (RFC 3339) instead of now. For
    /// rehearsing a scheduled refresh, and for tests.
    #[arg(
        long,
        value_name = "TIME",
        env = "SNAPFERRY_NOW",
        hide = true,
        global = true
    )]
    pub now: Option<DateTime<Utc>>,
    /// Multiply the waiting intervals by this factor (the sandbox compresses time; its
    /// users poll faster to match).
    #[arg(
        long,
        value_name = "FACTOR",
        env = "SNAPFERRY_POLL_SCALE",
        hide = true,
        global = true
    )]
    pub poll_scale: Option<f64>,
    /// Requests per second allowed per API (the OpenSearch control plane of each region, each
    /// domain's REST API), so a fleet stays under AWS's limits; throttling is still retried.
    #[arg(long, value_name = "N", env = "SNAPFERRY_MAX_RATE", global = true,
          default_value_t = snapferry_aws::resources::DEFAULT_RATE_PER_SECOND)]
    pub max_rate: f64,
    /// Only this step and what it depends on (repeatable), e.g. `--target domain/shop-copy`.
    #[arg(long = "target", value_name = "NODE", global = true)]
    pub targets: Vec<String>,
}

/// Everything a command needs to talk about one plan.
pub struct Session {
    pub plan_file: PathBuf,
    pub plan: Plan,
    pub graph: Arc<ExecGraph>,
    pub store: Arc<dyn StateStore>,
    pub poll: PollSchedule,
    /// The time snapshot-name templates resolve against in this session.
    pub now: DateTime<Utc>,
}

impl Session {
    /// Loads and checks the plan, then sets up AWS from the environment, asking for
    /// credentials first: none stops the command here, saying how to provide them.
    pub async fn open(plan_file: &Path, aws: &AwsArgs) -> miette::Result<Session> {
        Session::open_from_env(plan_file, aws, true).await
    }

    /// [`Session::open`] without asking for credentials up front, for `status` and `unlock`,
    /// which need none with a local state (with an S3 state, the first S3 call reports the
    /// same problem).
    pub async fn open_unchecked(plan_file: &Path, aws: &AwsArgs) -> miette::Result<Session> {
        Session::open_from_env(plan_file, aws, false).await
    }

    async fn open_from_env(
        plan_file: &Path,
        aws: &AwsArgs,
        check_credentials: bool,
    ) -> miette::Result<Session> {
        let plan = super::validate::load_plan(plan_file)?;
        let mut options = AwsOptions::from_env();
        options.profile.clone_from(&aws.profile);
        options.fallback_region = Some(plan.region.clone());
        Session::open_checking(plan_file, plan, options, aws, check_credentials).await
    }

    /// Sets up a session for a checked plan with explicit AWS options.
    pub async fn open_with(
        plan_file: &Path,
        plan: Plan,
        options: AwsOptions,
        aws: &AwsArgs,
    ) -> miette::Result<Session> {
        Session::open_checking(plan_file, plan, options, aws, true).await
    }

    async fn open_checking(
        plan_file: &Path,
        plan: Plan,
        options: AwsOptions,
        aws: &AwsArgs,
        check_credentials: bool,
    ) -> miette::Result<Session> {
        let ca_bundle = options.ca_bundle.clone();
        let context = AwsContext::load(options)
            .await
            .map_err(|e| miette::miette!("{}", snapferry_aws::resources::chain(&e)))
            .wrap_err("cannot set up the AWS clients")?;
        // Credentials first: none (or a profile that is not there) stops here, within the
        // instance-metadata timeouts, saying how to provide them.
        if check_credentials {
            context.check_credentials().await.map_err(|e| match e {
                snapferry_aws::error::AwsError::Credentials { problem } => {
                    miette::miette!(help = problem.help(), "{}", problem.message())
                }
                other => miette::miette!("{}", snapferry_aws::resources::chain(&other)),
            })?;
        }
        let now = aws.now.unwrap_or_else(Utc::now);
        let store: Arc<dyn StateStore> = match &plan.state {
            StateLocation::Local { .. } => {
                let path = plan
                    .state
                    .local_path(plan_file)
                    .expect("a local state has a path");
                Arc::new(FileStore::new(path))
            }
            StateLocation::S3 {
                bucket,
                key,
                region,
                lock_lease_seconds,
            } => {
                let clients = context
                    .clients(region, None)
                    .await
                    .map_err(|e| miette::miette!("{}", snapferry_aws::resources::chain(&e)))?;
                Arc::new(
                    S3Store::new(clients.s3, bucket.clone(), key.clone())
                        .with_lease(Duration::from_secs(*lock_lease_seconds)),
                )
            }
        };
        // Inert unless SNAPFERRY_TEST_ABORT_AFTER_WRITES is set (the crash tests).
        let store = super::crash_hook::wrap(store);
        let env = Arc::new(Env::new(context, &plan, now, ca_bundle).with_rate(aws.max_rate));
        let mut graph = build_graph(&plan, env)
            .into_diagnostic()
            .wrap_err("the plan's step graph is invalid (a bug: please report it)")?;
        if !aws.targets.is_empty() {
            let targets: Vec<snapferry_engine::NodeId> = aws
                .targets
                .iter()
                .map(|t| match t.split_once('/') {
                    Some((kind, name)) => Ok(snapferry_engine::NodeId::new(kind, name)),
                    None => Err(miette::miette!(
                        help = "steps are named <kind>/<name>, e.g. domain/shop-copy; `snapferry graph` lists them",
                        "--target {t} is not a step name"
                    )),
                })
                .collect::<miette::Result<_>>()?;
            graph = graph
                .restricted_to(&targets)
                .map_err(|e| miette::miette!("{e}"))?;
        }
        let mut poll = PollSchedule::default();
        if let Some(scale) = aws.poll_scale.filter(|s| s.is_finite() && *s > 0.0) {
            // Scales the expected durations resources give (a domain's 15-30 min) as well.
            poll = poll.scaled(scale);
        }
        Ok(Session {
            plan_file: plan_file.to_owned(),
            plan,
            graph: Arc::new(graph),
            store,
            poll,
            now,
        })
    }

    /// The recorded state, if any (a broken one is an error that names it).
    pub async fn load_state(&self) -> miette::Result<Option<StateDoc>> {
        self.store
            .load()
            .await
            .map_err(|e| miette::miette!("{}", snapferry_aws::resources::chain(&e)))
    }

    /// How long to wait for another run's lock.
    pub fn lock_timeout(seconds: Option<u64>) -> Duration {
        Duration::from_secs(seconds.unwrap_or(0))
    }
}

/// A multi-threaded runtime for one command.
pub fn runtime() -> miette::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new()
        .into_diagnostic()
        .wrap_err("cannot start the async runtime")
}
