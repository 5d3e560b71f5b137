//! `snapferry demo`: the whole replication, on this machine, with nothing but the binary. It
//! starts the sandbox in-process with a seeded source domain (several indices, thousands of
//! documents, a `.kibana` index), applies the example `plans/demo.yaml` (embedded in the
//! binary) in a temporary directory, plans again to show nothing is left to do, shows the
//! documents on both sides, and shuts the sandbox down.

use std::process::ExitCode;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use miette::{IntoDiagnostic, WrapErr};
use snapferry_aws::clients::AwsOptions;
use snapferry_aws::domain_http::{DomainHttp, DomainHttpConfig, ProxyChoice};
use snapferry_aws::opensearch::OpenSearch;
use snapferry_sandbox::{Sandbox, SandboxConfig, SeedDomain, SeedIndex};

use super::render;
use super::session::{AwsArgs, Session, runtime};

/// The example plan the demo applies.
pub const DEMO_PLAN: &str = include_str!("../../../../plans/demo.yaml");

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the demo's state and plan in this directory instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

fn seeded_config() -> SandboxConfig {
    let index = |name: &str, generate: u64| SeedIndex {
        name: name.to_owned(),
        documents: Vec::new(),
        generate,
        settings: None,
        mappings: None,
    };
    let mut config = SandboxConfig::default();
    config.domains.push(SeedDomain {
        name: "demo-source".into(),
        engine_version: "OpenSearch_2.11".into(),
        ready: true,
        indices: vec![
            index("products", 2_000),
            index("orders-2026-10", 3_000),
            index("orders-2026-11", 4_000),
        ],
        kibana: true,
        vpc: false,
    });
    config
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    runtime()?.block_on(async {
        let temp = tempfile::tempdir().into_diagnostic()?;
        let dir = args.dir.clone().unwrap_or_else(|| temp.path().to_owned());
        std::fs::create_dir_all(&dir)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot create {}", dir.display()))?;
        let plan_file = dir.join("demo.yaml");
        std::fs::write(&plan_file, DEMO_PLAN)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot write {}", plan_file.display()))?;
        let plan = super::validate::load_plan(&plan_file)?;

        let config = seeded_config();
        let credentials = config.credentials.clone();
        let sandbox = Sandbox::start(config)
            .await
            .map_err(|e| miette::miette!("cannot start the sandbox: {e}"))?;
        println!(
            "Sandbox (IAM, S3, OpenSearch Service) on {}; source domain demo-source seeded.\n",
            sandbox.endpoint_url()
        );
        let provider = SharedCredentialsProvider::new(Credentials::new(
            credentials.access_key_id.clone(),
            credentials.secret_access_key.clone(),
            credentials.session_token.clone(),
            None,
            "snapferry-demo",
        ));
        let options = AwsOptions {
            ca_bundle: Some(sandbox.ca_bundle_path().to_owned()),
            profile: None,
            fallback_region: Some(plan.region.clone()),
            endpoint_url: Some(sandbox.endpoint_url()),
            credentials: Some(provider.clone()),
        };
        // The sandbox compresses time a thousandfold; poll to match.
        let aws = AwsArgs {
            profile: None,
            now: None,
            poll_scale: Some(0.05),
            targets: Vec::new(),
            // The sandbox runs a thousand times faster than AWS; so may the requests.
            max_rate: 1000.0,
        };
        let session = Session::open_with(&plan_file, plan, options, &aws).await?;
        let apply = super::apply::Args {
            saved_plan: None,
            plan: super::PlanArg {
                file: plan_file.clone(),
            },
            aws: aws.clone(),
            auto_approve: true,
            lock_timeout: None,
            parallelism: 10,
            reconcile_drift: false,
            json: false,
        };
        let code = super::apply::execute(&session, &apply, false).await?;
        if code != ExitCode::SUCCESS {
            sandbox.shutdown().await;
            return Ok(code);
        }

        println!("\nPlanning again: a second apply would change nothing.\n");
        let (proposal, _) = super::plan::propose(&session).await?;
        print!(
            "{}",
            render::text(&proposal, &super::plan::heading(&session))
        );

        println!("\nDocuments per index:");
        let client = |name: &str| -> miette::Result<OpenSearch> {
            let endpoint = sandbox
                .domain_endpoint(name)
                .ok_or_else(|| miette::miette!("domain {name} has no endpoint"))?;
            let mut config = DomainHttpConfig::new(name, &endpoint, &session.plan.region);
            config.proxy = ProxyChoice::Direct;
            config.ca_bundle = Some(sandbox.ca_bundle_path().to_owned());
            Ok(OpenSearch::new(
                DomainHttp::new(&config, provider.clone()).into_diagnostic()?,
            ))
        };
        let (source, target) = (client("demo-source")?, client("demo-target")?);
        let mut all_match = true;
        for index in source.cat_indices().await.into_diagnostic()? {
            let name = index.index;
            let on_source = source.count(&name).await.into_diagnostic()?;
            let on_target = match target.count(&name).await {
                Ok(n) => n.to_string(),
                Err(_) => "-".to_owned(),
            };
            let note = if name.starts_with('.') {
                "system index, not copied"
            } else if on_target == on_source.to_string() {
                "copied"
            } else {
                all_match = false;
                "MISMATCH"
            };
            println!("  {name:<20} source {on_source:>6}   target {on_target:>6}   {note}");
        }
        let log = sandbox.request_log();
        let mutating = log.iter().filter(|r| r.mutating).count();
        println!(
            "\n{} AWS calls were made ({mutating} of them changed something).",
            log.len()
        );
        match &args.dir {
            Some(dir) => println!(
                "Kept in {}: demo.yaml and its state ({}).",
                dir.display(),
                session.store.location()
            ),
            None => println!(
                "The plan and its state were in a temporary directory, removed now; \
                 `snapferry demo --dir DIR` keeps them."
            ),
        }
        sandbox.shutdown().await;
        if all_match {
            println!("Demo complete: demo-source was replicated into demo-target.");
            Ok(ExitCode::SUCCESS)
        } else {
            println!("Demo failed: the document counts differ.");
            Ok(ExitCode::from(1))
        }
    })
}
