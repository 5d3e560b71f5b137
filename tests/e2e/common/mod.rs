//! The harness of the end-to-end tests: a sandbox started in-process (its own runtime, so it
//! keeps serving while the test blocks on the real `snapferry` binary), a temporary directory
//! for plans and state, and direct data-plane access to count what a run really restored.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use serde_json::json;
use snapferry_aws::domain_http::{DomainHttp, DomainHttpConfig, ProxyChoice};
use snapferry_aws::opensearch::OpenSearch;
use snapferry_sandbox::{
    LoggedRequest, Sandbox, SandboxConfig, SandboxHandle, SeedDomain, SeedIndex,
};

pub struct World {
    pub rt: tokio::runtime::Runtime,
    pub sandbox: Option<SandboxHandle>,
    pub dir: tempfile::TempDir,
    credentials: SharedCredentialsProvider,
}

pub fn index(name: &str, generate: u64) -> SeedIndex {
    SeedIndex {
        name: name.to_owned(),
        documents: Vec::new(),
        generate,
        settings: None,
        mappings: None,
    }
}

pub fn source_domain(name: &str, indices: Vec<SeedIndex>) -> SeedDomain {
    SeedDomain {
        name: name.to_owned(),
        engine_version: "OpenSearch_2.11".into(),
        ready: true,
        indices,
        kibana: true,
        vpc: false,
    }
}

impl World {
    /// A sandbox with these domains (and buckets), and an empty working directory.
    pub fn start(domains: Vec<SeedDomain>, buckets: Vec<String>) -> World {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let config = SandboxConfig {
            domains,
            buckets,
            ..SandboxConfig::default()
        };
        let credentials = SharedCredentialsProvider::new(Credentials::new(
            config.credentials.access_key_id.clone(),
            config.credentials.secret_access_key.clone(),
            None,
            None,
            "e2e",
        ));
        let sandbox = rt.block_on(Sandbox::start(config)).unwrap();
        World {
            rt,
            sandbox: Some(sandbox),
            dir: tempfile::tempdir().unwrap(),
            credentials,
        }
    }

    pub fn sandbox(&self) -> &SandboxHandle {
        self.sandbox.as_ref().unwrap()
    }

    /// Writes a plan into the working directory and returns its path.
    pub fn plan(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The `snapferry` command pointed at the sandbox, with a clean AWS environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_snapferry"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .env("HOME", self.dir.path())
            .env("NO_COLOR", "1")
            .env("SNAPFERRY_POLL_SCALE", "0.02")
            // The sandbox compresses time; requests may be as dense (tests that check the
            // limiter set their own rate).
            .env("SNAPFERRY_MAX_RATE", "1000");
        for key in snapferry_tests::SCRUBBED_ENV {
            cmd.env_remove(key);
        }
        for (key, value) in self.sandbox().env() {
            cmd.env(key, value);
        }
        cmd
    }

    /// The `snapferry` command signing as the configured identity with this access key.
    pub fn command_as(&self, access_key_id: &str, args: &[&str]) -> Command {
        let mut cmd = self.command(args);
        let env = self
            .sandbox()
            .identity_env(access_key_id)
            .unwrap_or_else(|| panic!("the sandbox has no identity with key {access_key_id}"));
        cmd.env_remove("AWS_SESSION_TOKEN");
        for (key, value) in env {
            cmd.env(key, value);
        }
        cmd
    }

    /// Runs `snapferry` and returns what it did.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs `snapferry`, asserting it exits with `code`; returns stdout + stderr.
    pub fn run_ok(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let text = output_text(&out);
        assert_eq!(out.status.code(), Some(code), "snapferry {args:?}:\n{text}");
        text
    }

    /// A data-plane client of a domain, straight to its port (no proxy).
    pub fn domain(&self, name: &str) -> OpenSearch {
        let endpoint = self
            .sandbox()
            .domain_endpoint(name)
            .unwrap_or_else(|| panic!("domain {name} has no endpoint"));
        let endpoint = endpoint.replace(&format!("vpc-{name}.sandbox.internal"), "127.0.0.1");
        let mut config = DomainHttpConfig::new(name, &endpoint, "us-east-1");
        config.proxy = ProxyChoice::Direct;
        config.ca_bundle = Some(self.sandbox().ca_bundle_path().to_owned());
        OpenSearch::new(DomainHttp::new(&config, self.credentials.clone()).unwrap())
    }

    /// Every index of a domain with its document count, sorted.
    pub fn counts(&self, domain: &str) -> Vec<(String, u64)> {
        let client = self.domain(domain);
        self.rt.block_on(async {
            let mut out = Vec::new();
            for i in client.cat_indices().await.unwrap() {
                let n = client.count(&i.index).await.unwrap();
                out.push((i.index, n));
            }
            out.sort();
            out
        })
    }

    /// Adds `n` documents to an index of a domain.
    pub fn add_documents(&self, domain: &str, index: &str, first_id: u64, n: u64) {
        let client = self.domain(domain);
        self.rt.block_on(async {
            for id in first_id..first_id + n {
                client
                    .http()
                    .send(
                        http::Method::PUT,
                        &format!("/{index}/_doc/{id}"),
                        Some(&json!({"n": id, "title": format!("added {id}")})),
                    )
                    .await
                    .unwrap();
            }
        });
    }

    /// An S3 client of the sandbox (for arranging buckets before a run).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let options = snapferry_aws::clients::AwsOptions {
            endpoint_url: Some(self.sandbox().endpoint_url()),
            credentials: Some(self.credentials.clone()),
            fallback_region: Some("us-east-1".into()),
            ..Default::default()
        };
        self.rt.block_on(async {
            snapferry_aws::clients::AwsContext::load(options)
                .await
                .unwrap()
                .clients("us-east-1", None)
                .await
                .unwrap()
                .s3
        })
    }

    /// The requests that changed something since the log was last reset.
    pub fn mutating_calls(&self) -> Vec<LoggedRequest> {
        self.sandbox()
            .request_log()
            .into_iter()
            .filter(|r| r.mutating)
            .collect()
    }

    pub fn state(&self, relative: &str) -> serde_json::Value {
        let path: &Path = &self.dir.path().join(relative);
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(sandbox) = self.sandbox.take() {
            self.rt.block_on(sandbox.shutdown());
        }
    }
}

impl World {
    /// A sandbox started from a full configuration (faults, latencies, credentials), and an
    /// empty working directory. The harness's own data-plane client signs with the
    /// configured credentials, session token included.
    pub fn start_with(config: SandboxConfig) -> World {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let credentials = SharedCredentialsProvider::new(Credentials::new(
            config.credentials.access_key_id.clone(),
            config.credentials.secret_access_key.clone(),
            config.credentials.session_token.clone(),
            None,
            "e2e",
        ));
        let sandbox = rt.block_on(Sandbox::start(config)).unwrap();
        World {
            rt,
            sandbox: Some(sandbox),
            dir: tempfile::tempdir().unwrap(),
            credentials,
        }
    }
}

impl World {
    /// The sandbox's AWS clients (IAM, S3, OpenSearch control plane) in us-east-1, for
    /// checking what a run left behind.
    pub fn aws(&self) -> snapferry_aws::clients::ServiceClients {
        let options = snapferry_aws::clients::AwsOptions {
            endpoint_url: Some(self.sandbox().endpoint_url()),
            credentials: Some(self.credentials.clone()),
            fallback_region: Some("us-east-1".into()),
            ..Default::default()
        };
        self.rt.block_on(async {
            snapferry_aws::clients::AwsContext::load(options)
                .await
                .unwrap()
                .clients("us-east-1", None)
                .await
                .unwrap()
        })
    }

    /// Creates a role someone else owns (e.g. one a foreign bucket-policy statement names), then
    /// lets simulated time pass beyond IAM's default propagation window, as for a role that has
    /// long existed: S3 refuses a policy naming a role it cannot resolve yet, as real S3 does.
    pub fn existing_role(&self, name: &str) -> String {
        let iam = self.aws().iam;
        let trust = json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]});
        let arn = self.rt.block_on(async {
            iam.create_role()
                .role_name(name)
                .assume_role_policy_document(trust.to_string())
                .send()
                .await
                .unwrap()
                .role
                .unwrap()
                .arn
        });
        self.sandbox().advance_clock(
            snapferry_sandbox::SandboxConfig::default()
                .latencies
                .iam_propagation_secs,
        );
        arn
    }

    /// The keys of every object in a bucket.
    pub fn bucket_keys(&self, bucket: &str) -> Vec<String> {
        let s3 = self.s3();
        self.rt.block_on(async {
            let out = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned))
                .collect()
        })
    }

    /// A bucket's policy, `None` when it has none.
    pub fn bucket_policy(&self, bucket: &str) -> Option<serde_json::Value> {
        let s3 = self.s3();
        self.rt.block_on(async {
            match s3.get_bucket_policy().bucket(bucket).send().await {
                Ok(out) => out.policy().map(|p| serde_json::from_str(p).unwrap()),
                Err(e) => {
                    let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e);
                    assert_eq!(code, Some("NoSuchBucketPolicy"), "{e:?}");
                    None
                }
            }
        })
    }
}

impl World {
    /// An S3 client (us-east-1) signing as the configured identity with `access_key_id`.
    pub fn s3_as(&self, access_key_id: &str) -> aws_sdk_s3::Client {
        let env: std::collections::HashMap<String, String> = self
            .sandbox()
            .identity_env(access_key_id)
            .expect("a configured identity")
            .into_iter()
            .collect();
        let credentials = SharedCredentialsProvider::new(Credentials::new(
            env["AWS_ACCESS_KEY_ID"].clone(),
            env["AWS_SECRET_ACCESS_KEY"].clone(),
            env.get("AWS_SESSION_TOKEN").cloned(),
            None,
            "e2e",
        ));
        let options = snapferry_aws::clients::AwsOptions {
            endpoint_url: Some(self.sandbox().endpoint_url()),
            credentials: Some(credentials),
            fallback_region: Some("us-east-1".into()),
            ..Default::default()
        };
        self.rt.block_on(async {
            snapferry_aws::clients::AwsContext::load(options)
                .await
                .unwrap()
                .clients("us-east-1", None)
                .await
                .unwrap()
                .s3
        })
    }

    /// A bucket's policy read as the identity with `access_key_id` (a bucket of another account
    /// than the default one), `None` when it has none.
    pub fn bucket_policy_as(&self, access_key_id: &str, bucket: &str) -> Option<serde_json::Value> {
        let s3 = self.s3_as(access_key_id);
        self.rt.block_on(async {
            match s3.get_bucket_policy().bucket(bucket).send().await {
                Ok(out) => out.policy().map(|p| serde_json::from_str(p).unwrap()),
                Err(e) => {
                    let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e);
                    assert_eq!(code, Some("NoSuchBucketPolicy"), "{e:?}");
                    None
                }
            }
        })
    }
}

/// A run's stdout followed by its stderr.
/// A sandbox for an example plan: its domains (with these indices) and buckets live in the
/// plan's `region`, as they would on AWS (an example in eu-west-3 reads eu-west-3).
pub fn example_world(plan: &str, domains: &[(&str, &[&str])], buckets: &[&str]) -> World {
    let region = plan
        .lines()
        .find_map(|l| l.strip_prefix("region:"))
        .map(|r| r.trim().to_owned());
    let mut config = SandboxConfig {
        domains: domains
            .iter()
            .map(|(d, indices)| source_domain(d, indices.iter().map(|i| index(i, 50)).collect()))
            .collect(),
        buckets: buckets.iter().map(|b| (*b).to_owned()).collect(),
        ..SandboxConfig::default()
    };
    if let Some(region) = region {
        config.region = region;
    }
    World::start_with(config)
}

pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The words of a message on one line: miette wraps long errors behind `|`.
pub fn flat(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| *w != "|")
        .collect::<Vec<_>>()
        .join(" ")
}

/// The indices of a `counts` list that are not system (`.`-prefixed) indices.
pub fn user_indices(counts: &[(String, u64)]) -> Vec<(String, u64)> {
    counts
        .iter()
        .filter(|(name, _)| !name.starts_with('.'))
        .cloned()
        .collect()
}

/// A fault that fires once, on the first `operation` call (of `service`, when given).
pub fn fault_once(
    kind: snapferry_sandbox::FaultKind,
    service: Option<&str>,
    operation: &str,
) -> snapferry_sandbox::FaultRule {
    snapferry_sandbox::FaultRule {
        kind,
        service: service.map(str::to_owned),
        operation: Some(operation.to_owned()),
        target: None,
        rate: None,
        nth: Some(1),
        times: None,
        status: None,
        delay_secs: None,
    }
}
