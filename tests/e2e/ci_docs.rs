//! docs/ci.md works as written (issue #18). Its workflow files — every YAML block whose first
//! line is `# check: github-workflow` or `# check: gitlab-ci` — are checked against GitHub's and
//! GitLab's published schemas with PyPI's `check-jsonschema`; the subject each job's OIDC token
//! presents is worked out from its triggers and `environment` and matched against the documented
//! trust policy of the role it assumes (and the trust lists nothing no job presents); session
//! lengths fit the roles and the jobs; the read-only policy for `plan` is compared, both ways,
//! with the calls `plan` really makes against the sandbox; and the `snapferry` commands of the
//! jobs are run as written against the sandbox: plan and save, apply the saved plan, the
//! scheduled apply.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

use crate::common::{World, index, source_domain};

const REPO: &str = "acme/search-infra";
const GITHUB_OIDC: &str = "token.actions.githubusercontent.com";
const GITLAB_OIDC: &str = "gitlab.com";
/// A merge request's source branch, as the plan job on GitLab would see one.
const FEATURE_BRANCH: &str = "feature/new-index";

fn doc() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ci.md")).unwrap()
}

/// A fenced block of the page: its language, its text (indentation of the fence removed) and
/// the last non-blank line before it (where `<!-- check: ... -->` markers go).
#[derive(Debug, Clone)]
struct Fence {
    lang: String,
    body: String,
    before: String,
}

fn fences(doc: &str) -> Vec<Fence> {
    let mut out = Vec::new();
    let mut before = String::new();
    let mut open: Option<(usize, String, String, Vec<String>)> = None;
    for line in doc.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &mut open {
            None => {
                if let Some(lang) = trimmed.strip_prefix("```") {
                    open = Some((indent, lang.to_owned(), before.clone(), Vec::new()));
                } else if !trimmed.is_empty() {
                    before = trimmed.to_owned();
                }
            }
            Some((fence_indent, lang, marker, lines)) => {
                if trimmed == "```" {
                    out.push(Fence {
                        lang: lang.clone(),
                        body: lines.join("\n") + "\n",
                        before: marker.clone(),
                    });
                    open = None;
                    before.clear();
                } else {
                    lines.push(line.get(*fence_indent..).unwrap_or("").to_owned());
                }
            }
        }
    }
    assert!(open.is_none(), "an unclosed fence in docs/ci.md");
    out
}

/// The workflow files of the page: (kind, text).
fn workflows() -> Vec<(String, String)> {
    fences(&doc())
        .into_iter()
        .filter(|f| f.lang == "yaml")
        .filter_map(|f| {
            let kind = f.body.lines().next()?.strip_prefix("# check: ")?.to_owned();
            Some((kind, f.body))
        })
        .collect()
}

fn github_workflows() -> Vec<Yaml> {
    workflows()
        .into_iter()
        .filter(|(k, _)| k == "github-workflow")
        .map(|(_, text)| serde_yaml::from_str(&text).unwrap())
        .collect()
}

fn gitlab_ci() -> Yaml {
    let all: Vec<_> = workflows()
        .into_iter()
        .filter(|(k, _)| k == "gitlab-ci")
        .collect();
    assert_eq!(all.len(), 1, "one .gitlab-ci.yml");
    serde_yaml::from_str(&all[0].1).unwrap()
}

/// The JSON block after `<!-- check: <what> -->`.
fn marked_json(what: &str) -> Json {
    let marker = format!("<!-- check: {what} -->");
    let found: Vec<Fence> = fences(&doc())
        .into_iter()
        .filter(|f| f.before == marker)
        .collect();
    assert_eq!(found.len(), 1, "one block marked {marker}");
    assert_eq!(found[0].lang, "json", "{marker}");
    serde_json::from_str(&found[0].body).unwrap_or_else(|e| panic!("{marker}: {e}"))
}

#[test]
fn every_workflow_passes_the_github_or_gitlab_schema() {
    let all = workflows();
    let count = |kind: &str| all.iter().filter(|(k, _)| k == kind).count();
    assert!(
        count("github-workflow") >= 2,
        "the workflow and the scheduled one"
    );
    assert_eq!(count("gitlab-ci"), 1);
    assert_eq!(
        all.len(),
        count("github-workflow") + count("gitlab-ci"),
        "{all:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    for (schema, kind) in [
        ("vendor.github-workflows", "github-workflow"),
        ("vendor.gitlab-ci", "gitlab-ci"),
    ] {
        let files: Vec<PathBuf> = all
            .iter()
            .enumerate()
            .filter(|(_, (k, _))| k == kind)
            .map(|(i, (_, text))| {
                let path = dir.path().join(format!("{i}-{kind}.yml"));
                std::fs::write(&path, text).unwrap();
                path
            })
            .collect();
        let out = snapferry_tests::check_jsonschema::check(schema, &files);
        assert!(
            out.status.success(),
            "docs/ci.md's {kind} files fail {schema}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_schema_check_refuses_a_broken_workflow() {
    // The check above would pass vacuously if the validator accepted anything.
    let dir = tempfile::tempdir().unwrap();
    let (_, github) = workflows()
        .into_iter()
        .find(|(k, _)| k == "github-workflow")
        .unwrap();
    let broken = dir.path().join("broken-github.yml");
    std::fs::write(&broken, github.replacen("runs-on:", "runs_on:", 1)).unwrap();
    let out = snapferry_tests::check_jsonschema::check("vendor.github-workflows", &[broken]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("runs_on"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (_, gitlab) = workflows()
        .into_iter()
        .find(|(k, _)| k == "gitlab-ci")
        .unwrap();
    let broken = dir.path().join("broken-gitlab.yml");
    std::fs::write(&broken, gitlab.replacen("timeout: 4h", "timeout: [4h]", 1)).unwrap();
    let out = snapferry_tests::check_jsonschema::check("vendor.gitlab-ci", &[broken]);
    assert!(!out.status.success());
}

#[test]
fn every_yaml_block_that_is_a_workflow_is_marked_for_the_check() {
    for fence in fences(&doc()).into_iter().filter(|f| f.lang == "yaml") {
        let is_workflow = fence
            .body
            .lines()
            .any(|l| l.starts_with("jobs:") || l.starts_with("stages:"));
        assert_eq!(
            is_workflow,
            fence.body.starts_with("# check: "),
            "a workflow not checked, or a check marker on something else:\n{}",
            fence.body
        );
    }
}

/// What a trust policy accepts for the OIDC provider `provider`: its `aud` values and its `sub`
/// patterns (exact for `StringEquals`, globs for `StringLike`).
struct Trust {
    aud: BTreeSet<String>,
    sub_equals: BTreeSet<String>,
    sub_like: BTreeSet<String>,
}

fn strings(v: &Json) -> Vec<String> {
    match v {
        Json::String(s) => vec![s.clone()],
        Json::Array(a) => a.iter().map(|s| s.as_str().unwrap().to_owned()).collect(),
        other => panic!("not a string or list: {other}"),
    }
}

fn trust(ci: &str, role: &str, provider: &str) -> Trust {
    let policy = marked_json(&format!("trust-policy {ci} {role}"));
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1, "{policy}");
    let s = &statements[0];
    assert_eq!(s["Effect"], "Allow");
    assert_eq!(s["Action"], "sts:AssumeRoleWithWebIdentity");
    assert_eq!(
        s["Principal"]["Federated"],
        format!("arn:aws:iam::111111111111:oidc-provider/{provider}")
    );
    let condition = &s["Condition"];
    let get = |op: &str, key: &str| -> Vec<String> {
        condition[op]
            .get(format!("{provider}:{key}"))
            .map(strings)
            .unwrap_or_default()
    };
    for op in condition.as_object().unwrap().keys() {
        assert!(
            op == "StringEquals" || op == "StringLike",
            "{ci} {role}: condition operator {op}"
        );
    }
    Trust {
        aud: get("StringEquals", "aud").into_iter().collect(),
        sub_equals: get("StringEquals", "sub").into_iter().collect(),
        sub_like: get("StringLike", "sub").into_iter().collect(),
    }
}

/// IAM's `StringLike`: `*` any run of characters, `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

impl Trust {
    fn accepts(&self, sub: &str) -> bool {
        self.sub_equals.contains(sub) || self.sub_like.iter().any(|p| glob(p, sub))
    }

    /// Every pattern, for checking that each is needed by some job.
    fn patterns(&self) -> Vec<String> {
        self.sub_equals
            .iter()
            .chain(&self.sub_like)
            .cloned()
            .collect()
    }
}

fn role_name(arn: &str) -> String {
    arn.rsplit('/').next().unwrap().to_owned()
}

/// One job that assumes a role: which role, the subjects its token can present, its session
/// and its timeout.
#[derive(Debug)]
struct Assumes {
    job: String,
    role: String,
    subjects: BTreeSet<String>,
    session_secs: u64,
    timeout_secs: Option<u64>,
}

fn github_jobs() -> Vec<Assumes> {
    let mut out = Vec::new();
    for workflow in github_workflows() {
        let on = workflow["on"].as_mapping().unwrap();
        for (name, job) in workflow["jobs"].as_mapping().unwrap() {
            let name = name.as_str().unwrap().to_owned();
            let Some(creds) = job["steps"].as_sequence().unwrap().iter().find(|s| {
                s["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("aws-actions/configure-aws-credentials@"))
            }) else {
                continue;
            };
            let role = role_name(creds["with"]["role-to-assume"].as_str().unwrap());
            let session_secs = creds["with"]["role-duration-seconds"]
                .as_u64()
                .unwrap_or(3600);
            let timeout_secs = job["timeout-minutes"].as_u64().map(|m| m * 60);
            let condition = job["if"].as_str().unwrap_or("");
            let mut subjects = BTreeSet::new();
            if let Some(env) = job["environment"]
                .as_str()
                .or_else(|| job["environment"]["name"].as_str())
            {
                subjects.insert(format!("repo:{REPO}:environment:{env}"));
            } else {
                for (event, settings) in on {
                    let event = event.as_str().unwrap();
                    if condition.contains("github.event_name ==")
                        && !condition.contains(&format!("github.event_name == '{event}'"))
                    {
                        continue;
                    }
                    match event {
                        "pull_request" => {
                            subjects.insert(format!("repo:{REPO}:pull_request"));
                        }
                        "push" => {
                            for branch in settings["branches"].as_sequence().unwrap() {
                                subjects.insert(format!(
                                    "repo:{REPO}:ref:refs/heads/{}",
                                    branch.as_str().unwrap()
                                ));
                            }
                        }
                        // Scheduled runs use the default branch.
                        "schedule" | "workflow_dispatch" => {
                            subjects.insert(format!("repo:{REPO}:ref:refs/heads/main"));
                        }
                        other => panic!("a trigger this test does not know: {other}"),
                    }
                }
            }
            out.push(Assumes {
                job: name,
                role,
                subjects,
                session_secs,
                timeout_secs,
            });
        }
    }
    out
}

/// The GitLab jobs with `extends` merged in (one level, as the page uses it).
fn gitlab_jobs_resolved() -> BTreeMap<String, Yaml> {
    let ci = gitlab_ci();
    let top = ci.as_mapping().unwrap();
    let mut jobs = BTreeMap::new();
    for (name, job) in top {
        let name = name.as_str().unwrap();
        if name.starts_with('.') || ["stages", "workflow", "variables", "default"].contains(&name) {
            continue;
        }
        let mut merged = match job["extends"].as_str() {
            Some(template) => top[template].as_mapping().unwrap().clone(),
            None => serde_yaml::Mapping::new(),
        };
        for (k, v) in job.as_mapping().unwrap() {
            merged.insert(k.clone(), v.clone());
        }
        jobs.insert(name.to_owned(), Yaml::Mapping(merged));
    }
    jobs
}

fn gitlab_jobs() -> Vec<Assumes> {
    let mut out = Vec::new();
    for (name, job) in gitlab_jobs_resolved() {
        let Some(role) = job["variables"]["AWS_ROLE_ARN"].as_str() else {
            continue;
        };
        assert_eq!(
            job["id_tokens"]["AWS_OIDC_TOKEN"]["aud"].as_str(),
            Some("sts.amazonaws.com"),
            "{name}: the ID token's audience"
        );
        let before: Vec<&str> = job["before_script"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert!(
            before
                .iter()
                .any(|l| l.contains("export AWS_WEB_IDENTITY_TOKEN_FILE=")),
            "{name}: the token file is named for the credential chain"
        );
        let mut subjects = BTreeSet::new();
        for rule in job["rules"].as_sequence().unwrap() {
            let condition = rule["if"].as_str().unwrap();
            let branch = if condition.contains("merge_request_event") {
                FEATURE_BRANCH
            } else if condition.contains("$CI_DEFAULT_BRANCH") || condition.contains("\"schedule\"")
            {
                "main"
            } else {
                panic!("{name}: a rule this test does not know: {condition}")
            };
            subjects.insert(format!("project_path:{REPO}:ref_type:branch:ref:{branch}"));
        }
        out.push(Assumes {
            job: name,
            role: role_name(role),
            subjects,
            session_secs: 3600,
            timeout_secs: None,
        });
    }
    out
}

#[test]
fn each_role_trusts_exactly_the_subjects_its_jobs_present() {
    for (ci, provider, jobs) in [
        ("github", GITHUB_OIDC, github_jobs()),
        ("gitlab", GITLAB_OIDC, gitlab_jobs()),
    ] {
        let roles: BTreeSet<&str> = jobs.iter().map(|j| j.role.as_str()).collect();
        assert_eq!(
            roles,
            BTreeSet::from(["snapferry-apply", "snapferry-plan"]),
            "{ci}: {jobs:?}"
        );
        for role in roles {
            let trust = trust(ci, role, provider);
            assert_eq!(
                trust.aud,
                BTreeSet::from(["sts.amazonaws.com".to_owned()]),
                "{ci} {role}"
            );
            let presented: BTreeSet<&String> = jobs
                .iter()
                .filter(|j| j.role == role)
                .flat_map(|j| &j.subjects)
                .collect();
            for job in jobs.iter().filter(|j| j.role == role) {
                for sub in &job.subjects {
                    assert!(
                        trust.accepts(sub),
                        "{ci}: job {} presents {sub}, which the trust of {role} refuses",
                        job.job
                    );
                }
            }
            for pattern in trust.patterns() {
                assert!(
                    presented
                        .iter()
                        .any(|s| *s == &pattern || glob(&pattern, s)),
                    "{ci}: the trust of {role} lists {pattern}, which no job presents"
                );
            }
        }
        // What only the plan role may accept: a pull request, a feature branch.
        let apply = trust(ci, "snapferry-apply", provider);
        for sub in [
            format!("repo:{REPO}:pull_request"),
            format!("repo:{REPO}:ref:refs/heads/{FEATURE_BRANCH}"),
            format!("project_path:{REPO}:ref_type:branch:ref:{FEATURE_BRANCH}"),
        ] {
            assert!(!apply.accepts(&sub), "{ci}: the apply role accepts {sub}");
        }
    }
    // GitHub's subject for a job with an environment is the environment, not the branch.
    let apply = github_jobs()
        .into_iter()
        .find(|j| j.role == "snapferry-apply")
        .unwrap();
    assert_eq!(
        apply.subjects,
        BTreeSet::from([format!("repo:{REPO}:environment:production")])
    );
}

#[test]
fn sessions_fit_the_roles_maximum_and_outlive_the_jobs() {
    let doc = doc();
    let raised: BTreeMap<String, u64> = doc
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("aws iam update-role --role-name ")?;
            let (role, rest) = rest.split_once(' ')?;
            let secs = rest.strip_prefix("--max-session-duration ")?.trim();
            Some((role.to_owned(), secs.parse().unwrap()))
        })
        .collect();
    assert!(raised.contains_key("snapferry-apply"), "the page raises it");
    for job in github_jobs() {
        let max = raised.get(&job.role).copied().unwrap_or(3600);
        assert!(max <= 43_200, "IAM allows at most 12 hours");
        assert!(
            job.session_secs <= max,
            "{}: role-duration-seconds {} over {}'s MaxSessionDuration {max}",
            job.job,
            job.session_secs,
            job.role
        );
        let timeout = job
            .timeout_secs
            .unwrap_or_else(|| panic!("{}: no timeout-minutes", job.job));
        assert!(
            timeout < job.session_secs,
            "{}: the job ({timeout} s) may outlive its session ({} s)",
            job.job,
            job.session_secs
        );
    }
}

#[test]
fn the_saved_plan_goes_from_the_plan_job_to_the_approved_apply_job() {
    let workflows = github_workflows();
    let main = &workflows[0]["jobs"];
    let plan_steps = main["plan"]["steps"].as_sequence().unwrap();
    let run = |steps: &[Yaml]| -> String {
        steps
            .iter()
            .filter_map(|s| s["run"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(run(plan_steps).contains("-o orders.plan"));
    let upload = plan_steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        })
        .unwrap();
    assert_eq!(upload["with"]["path"], "orders.plan");
    assert!(upload["with"]["retention-days"].as_u64().unwrap() <= 7);
    let apply = &main["apply"];
    assert_eq!(apply["needs"], "plan");
    assert_eq!(apply["environment"], "production");
    let apply_steps = apply["steps"].as_sequence().unwrap();
    let download = apply_steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/download-artifact@"))
        })
        .unwrap();
    assert_eq!(download["with"]["name"], upload["with"]["name"]);
    assert!(run(apply_steps).contains("snapferry apply orders.plan"));
    // The scheduled workflow and the apply job never run at once.
    assert_eq!(
        workflows[1]["jobs"]["apply"]["concurrency"]["group"],
        apply["concurrency"]["group"]
    );
    assert!(
        workflows[1]["on"]["schedule"][0]["cron"].as_str().is_some(),
        "a schedule"
    );
    let gitlab = gitlab_jobs_resolved();
    assert_eq!(
        gitlab["snapferry-apply"]["resource_group"],
        gitlab["snapferry-scheduled-apply"]["resource_group"]
    );
}

#[test]
fn the_readme_links_the_page() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    assert!(readme.contains("(docs/ci.md)"), "README links docs/ci.md");
}

/// The IAM action a call the sandbox logged needs (`None`: no permission needed).
fn action_for(service: &str, operation: &str) -> Option<&'static str> {
    match (service, operation) {
        ("sts", "GetCallerIdentity") => None,
        ("iam", "GetRole") => Some("iam:GetRole"),
        ("iam", "GetRolePolicy") => Some("iam:GetRolePolicy"),
        ("s3", "HeadBucket") => Some("s3:ListBucket"),
        ("s3", "GetBucketPolicy") => Some("s3:GetBucketPolicy"),
        ("s3", "GetObject") => Some("s3:GetObject"),
        ("es", "DescribeDomain") => Some("es:DescribeDomain"),
        ("es", "ListTags") => Some("es:ListTags"),
        (
            "es-data",
            "Info"
            | "ClusterHealth"
            | "CatIndices"
            | "Recovery"
            | "Count"
            | "GetRepository"
            | "GetSnapshot"
            | "SnapshotStatus"
            | "RunningSnapshotStatus"
            | "GetIndex"
            | "GetSettings"
            | "GetDataStream",
        ) => Some("es:ESHttpGet"),
        ("es-data", "IndexExists") => Some("es:ESHttpHead"),
        (service, operation) => panic!(
            "plan made a call this test does not know, {service} {operation}: add what it needs \
             to docs/ci.md's read-only policy and to this table"
        ),
    }
}

/// A plan like the page's, for the sandbox (its region, its account).
const ORDERS: &str = "version: 1
name: orders
region: us-east-1
state:
  s3:
    bucket: acme-snapferry-state
    key: orders.json
bucket:
  name: acme-orders-snapshots
  create: true
source:
  domain: orders-prod
target:
  domain: orders-copy
snapshot:
  name: \"{name}-{date}\"
restore:
  on_conflict: replace
";

fn orders_world() -> World {
    let world = World::start(
        vec![source_domain(
            "orders-prod",
            vec![index("orders", 200), index("customers", 50)],
        )],
        vec!["acme-snapferry-state".to_owned()],
    );
    std::fs::create_dir(world.dir.path().join("snapferry")).unwrap();
    world.plan("snapferry/orders.yaml", ORDERS);
    world
}

#[test]
fn the_plan_policy_allows_exactly_what_plan_calls() {
    let documented: BTreeSet<String> = marked_json("plan-policy")["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|s| assert_eq!(s["Effect"], "Allow", "{s}"))
        .flat_map(|s| strings(&s["Action"]))
        .collect();
    let world = orders_world();
    let mut needed = BTreeSet::new();
    // Before anything exists (no state yet), then after an apply (every step there to read).
    for round in 0..2 {
        world.sandbox().reset_log();
        world.run_ok(&["plan", "-f", "snapferry/orders.yaml"], 0);
        let log = world.sandbox().request_log();
        assert!(log.iter().all(|r| !r.mutating), "plan changed something");
        needed.extend(
            log.iter()
                .filter_map(|r| action_for(&r.service, &r.operation))
                .map(str::to_owned),
        );
        if round == 0 {
            world.run_ok(
                &["apply", "-f", "snapferry/orders.yaml", "--auto-approve"],
                0,
            );
        }
    }
    assert_eq!(
        documented, needed,
        "docs/ci.md's read-only policy (left) against what plan calls (right)"
    );
}

/// `bash` running a job's script in the world's directory, with the world's AWS environment,
/// `snapferry` on the PATH and `PLAN` set as the workflows set it.
fn job_shell(world: &World, script: &str, extra: &[(&str, &Path)]) -> std::process::Output {
    let reference = world.command(&[]);
    let mut cmd = Command::new("bash");
    cmd.args(["-e", "-o", "pipefail", "-c", script])
        .current_dir(world.dir.path())
        .env_clear();
    for (key, value) in reference.get_envs() {
        if let Some(value) = value {
            cmd.env(key, value);
        }
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_snapferry")).parent().unwrap();
    cmd.env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("PLAN", "snapferry/orders.yaml");
    for (key, value) in extra {
        cmd.env(key, value);
    }
    cmd.output().unwrap()
}

fn step_run<'a>(job: &'a Yaml, contains: &str) -> &'a str {
    job["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str())
        .find(|r| r.contains(contains))
        .unwrap_or_else(|| panic!("no step runs {contains}"))
}

fn last_summary(world: &World, file: &str) -> Json {
    let text = std::fs::read_to_string(world.dir.path().join(file)).unwrap();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

#[test]
fn the_github_jobs_commands_work_as_written() {
    let workflows = github_workflows();
    let world = orders_world();
    let output = world.dir.path().join("github-output");
    std::fs::write(&output, "").unwrap();

    // The plan job after a merge: a Markdown plan, saved, exit code 2 recorded.
    let plan = step_run(&workflows[0]["jobs"]["plan"], "snapferry plan");
    let out = job_shell(&world, plan, &[("GITHUB_OUTPUT", &output)]);
    let text = crate::common::output_text(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "exitcode=2\n");
    let md = std::fs::read_to_string(world.dir.path().join("plan.md")).unwrap();
    assert!(md.starts_with("<!-- snapferry-plan: orders -->\n"), "{md}");
    assert!(md.contains("| `snapshot/orders` | `+` create |"), "{md}");
    assert!(world.dir.path().join("orders.plan").exists());
    assert!(world.mutating_calls().is_empty());

    // The apply job: the saved plan, exactly.
    let apply = step_run(&workflows[0]["jobs"]["apply"], "snapferry apply");
    let out = job_shell(&world, apply, &[]);
    assert!(
        out.status.success(),
        "{}{}",
        crate::common::output_text(&out),
        std::fs::read_to_string(world.dir.path().join("apply.jsonl")).unwrap_or_default()
    );
    assert_eq!(last_summary(&world, "apply.jsonl")["outcome"], "complete");
    assert_eq!(
        crate::common::user_indices(&world.counts("orders-copy")),
        vec![("customers".to_owned(), 50), ("orders".to_owned(), 200)]
    );

    // The scheduled apply, the same day: nothing to do, and nothing done.
    world.sandbox().reset_log();
    let scheduled = step_run(&workflows[1]["jobs"]["apply"], "snapferry apply");
    let out = job_shell(&world, scheduled, &[]);
    assert!(out.status.success(), "{}", crate::common::output_text(&out));
    assert_eq!(last_summary(&world, "apply.jsonl")["outcome"], "up_to_date");
    assert!(world.mutating_calls().is_empty());

    // The saved plan holds no secret: neither the key nor the session token it was made with.
    let saved = std::fs::read_to_string(world.dir.path().join("orders.plan")).unwrap();
    let env = world.command(&[]);
    for key in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        if let Some(Some(secret)) = env
            .get_envs()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.map(|v| v.to_string_lossy().into_owned()))
        {
            assert!(!saved.contains(&secret), "{key} is in the saved plan");
        }
    }

    // The same saved plan again, once applied: moving forward is not staleness, so it is
    // accepted and finds nothing left to do — it writes only its lock and state.
    // Calls that change something other than the lock and state in the state bucket.
    let changes = || -> Vec<String> {
        world
            .mutating_calls()
            .iter()
            .filter(|r| r.target.as_deref() != Some("acme-snapferry-state"))
            .map(|r| format!("{} {} {:?}", r.service, r.operation, r.target))
            .collect()
    };
    world.sandbox().reset_log();
    let out = job_shell(&world, apply, &[]);
    assert!(out.status.success(), "{}", crate::common::output_text(&out));
    assert_eq!(
        changes(),
        Vec::<String>::new(),
        "{}",
        crate::common::output_text(&out)
    );

    // A saved plan the plan file has moved away from is refused, and nothing is changed.
    world.sandbox().reset_log();
    world.plan(
        "snapferry/orders.yaml",
        &ORDERS.replace("on_conflict: replace", "on_conflict: fail"),
    );
    let out = job_shell(&world, apply, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        crate::common::flat(&String::from_utf8_lossy(&out.stderr)).contains("is stale"),
        "{}",
        crate::common::output_text(&out)
    );
    assert_eq!(changes(), Vec::<String>::new());
}

#[test]
fn the_gitlab_jobs_scripts_work_as_written() {
    let jobs = gitlab_jobs_resolved();
    let script = |job: &str| -> String {
        jobs[job]["script"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let world = orders_world();
    let out = job_shell(&world, &script("snapferry-plan"), &[]);
    assert!(out.status.success(), "{}", crate::common::output_text(&out));
    assert!(
        std::fs::read_to_string(world.dir.path().join("plan.md"))
            .unwrap()
            .starts_with("<!-- snapferry-plan: orders -->")
    );
    let out = job_shell(&world, &script("snapferry-apply"), &[]);
    assert!(out.status.success(), "{}", crate::common::output_text(&out));
    assert_eq!(last_summary(&world, "apply.jsonl")["outcome"], "complete");
    let out = job_shell(&world, &script("snapferry-scheduled-apply"), &[]);
    assert!(out.status.success(), "{}", crate::common::output_text(&out));
    assert_eq!(last_summary(&world, "apply.jsonl")["outcome"], "up_to_date");
    // A blocked plan fails the plan job (but still writes the comment's Markdown).
    std::fs::write(
        world.dir.path().join("snapferry/orders.yaml"),
        ORDERS.replace("orders-prod", "orders-gone"),
    )
    .unwrap();
    let out = job_shell(&world, &script("snapferry-plan"), &[]);
    assert!(
        !out.status.success(),
        "{}",
        crate::common::output_text(&out)
    );
    assert!(
        std::fs::read_to_string(world.dir.path().join("plan.md"))
            .unwrap()
            .contains("**Blocked steps**")
    );
}
