//! The errors of reading and checking a plan. Each broken rule is a [`Problem`]
//! (what is wrong, with the names involved); a [`PlanDiagnostic`] places it in
//! the file (line, column, snippet) and says what to do; [`PlanErrors`] carries
//! all of them at once, so the user fixes a plan in one pass.

use std::path::PathBuf;
use std::sync::Arc;

use miette::{Diagnostic, NamedSource, SourceSpan};

use crate::location::{ByteSpan, line_col};

/// One broken rule of the plan file, with the names involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("{message}")]
    Syntax { message: String },
    #[error("unknown key `{key}` in {}", if parent.is_empty() { "the top level".to_owned() } else { format!("`{parent}`") })]
    UnknownKey {
        key: String,
        parent: String,
        suggestion: Option<String>,
        allowed: Vec<String>,
    },
    #[error("plan file version {found} is not supported")]
    UnsupportedVersion { found: u32 },
    #[error("invalid plan or replication name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("invalid domain name {name:?}: {reason}")]
    InvalidDomainName { name: String, reason: String },
    #[error("invalid bucket name {name:?}: {reason}")]
    InvalidBucketName { name: String, reason: String },
    #[error("invalid snapshot name {name:?}: {reason}")]
    InvalidSnapshotName { name: String, reason: String },
    #[error("invalid repository name {name:?}: {reason}")]
    InvalidRepositoryName { name: String, reason: String },
    #[error("invalid role name {name:?}: {reason}")]
    InvalidRoleName { name: String, reason: String },
    #[error("invalid role path {path:?}: {reason}")]
    InvalidRolePath { path: String, reason: String },
    #[error("invalid role ARN {arn:?}: {reason}")]
    InvalidRoleArn { arn: String, reason: String },
    #[error("invalid policy ARN {arn:?}: {reason}")]
    InvalidPolicyArn { arn: String, reason: String },
    #[error("invalid trusted service {service:?}")]
    InvalidTrustedService { service: String },
    #[error("invalid region {region:?}: {reason}")]
    InvalidRegion { region: String, reason: String },
    #[error("invalid index pattern {pattern:?}: {reason}")]
    InvalidIndexPattern { pattern: String, reason: String },
    #[error("empty `{field}` list")]
    EmptyList { field: String },
    #[error("{reason}")]
    InvalidEngineVersion { version: String, reason: String },
    #[error("a snapshot of {source_version} cannot be restored on {target_version}")]
    EngineIncompatible {
        source_version: String,
        target_version: String,
    },
    #[error("invalid snapshot name template {template:?}: {reason}")]
    InvalidTemplate { template: String, reason: String },
    #[error("invalid rename_pattern {pattern:?}: {reason}")]
    InvalidRenamePattern { pattern: String, reason: String },
    #[error("rename_replacement is set without rename_pattern")]
    ReplacementWithoutPattern,
    #[error("on_conflict: rename needs rename_pattern and rename_replacement")]
    RenameWithoutPattern,
    #[error("source and target are the same domain {domain:?}")]
    SameSourceAndTarget { domain: String },
    #[error("replication name {name:?} is used twice")]
    DuplicateReplicationName { name: String },
    #[error("target domain {domain:?} is the target of two replications")]
    DuplicateTargetDomain { domain: String },
    #[error(
        "domain {domain:?} is the target of replication {target_of:?} and the source of {source_of:?}"
    )]
    TargetIsSource {
        domain: String,
        target_of: String,
        source_of: String,
    },
    #[error(
        "repository {repository:?} on domain {domain:?} is registered twice with different settings"
    )]
    RepositoryConflict { domain: String, repository: String },
    #[error(
        "snapshot name template {template:?} gives the same names as replication {other:?} in the same repository"
    )]
    SnapshotNameCollision { template: String, other: String },
    #[error("repository setting `{key}` is set by snapferry")]
    ReservedRepositorySetting { key: String },
    #[error("role `arn` cannot be combined with `{field}`")]
    ArnWithRoleFields { field: String },
    #[error("the plan has no replication")]
    NoReplication,
    #[error("`{field}` cannot be used together with `replications`")]
    MixedLayout { field: String },
    #[error("missing `{field}`")]
    MissingField { field: String },
    #[error("{} must be {expected}, found {found}", if path.is_empty() { "the plan file".to_owned() } else { format!("`{path}`") })]
    WrongValue {
        path: String,
        expected: String,
        found: String,
    },
    #[error("`{field}` conflicts with `from_source: {from_source}`")]
    TargetConfigConflict { field: String, from_source: bool },
    #[error("kms_key_id is set but sse is not aws:kms")]
    KmsKeyWithoutKms,
    #[error("kms_key_id {key:?} is an alias; IAM grants the use of a key by its key ARN")]
    KmsKeyAlias { key: String },
    #[error("state sets {count} locations; exactly one of `local` or `s3` is needed")]
    StateLocationCount { count: usize },
    #[error("invalid proxy {proxy:?}: {reason}")]
    InvalidProxy { proxy: String, reason: String },
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
}

impl Problem {
    /// What the user should do about it.
    pub fn help(&self) -> String {
        use Problem::*;
        match self {
            Syntax { message } => syntax_help(message).into(),
            UnknownKey { suggestion: Some(near), allowed, .. } => {
                format!("did you mean `{near}`? Keys allowed here: {}", allowed.join(", "))
            }
            UnknownKey { suggestion: None, allowed, .. } => {
                format!("remove it or use one of the keys allowed here: {}", allowed.join(", "))
            }
            UnsupportedVersion { .. } => "set `version: 1`, the only plan format this snapferry reads".into(),
            InvalidName { .. } => "use 1-40 characters: lowercase letters, digits, `-`, `_` and `.`, starting with a letter or digit".into(),
            InvalidDomainName { .. } => "use 3-28 characters: a lowercase letter, then lowercase letters, digits or `-`".into(),
            InvalidBucketName { .. } => "use 3-63 characters of a-z, 0-9, `.` and `-`, starting and ending with a letter or digit, not an IP address, without AWS's reserved prefixes (xn--, sthree-, amzn-s3-demo-) and suffixes (-s3alias, --ol-s3, .mrap, --x-s3, --table-s3)".into(),
            InvalidSnapshotName { .. } => "snapshot names are lowercase, do not start with `_` and contain none of \\ / * ? \" < > | , # or space".into(),
            InvalidRepositoryName { .. } => "repository names are not empty and contain none of \\ / * ? \" < > | , # or space".into(),
            InvalidRoleName { .. } => "use 1-64 characters: letters, digits and +=,.@_-".into(),
            InvalidRolePath { .. } => "write a path such as `/` or `/snapferry/`".into(),
            InvalidRoleArn { .. } => "write the role ARN as arn:aws:iam::<12-digit account>:role/<name> (or arn:aws-cn / arn:aws-us-gov)".into(),
            InvalidPolicyArn { .. } => "write the policy ARN as arn:aws:iam::<12-digit account>:policy/<name>".into(),
            InvalidTrustedService { .. } => "name a service principal such as `opensearchservice.amazonaws.com`".into(),
            InvalidRegion { .. } => "write a region code such as `us-east-1` or `eu-west-3`".into(),
            InvalidIndexPattern { .. } => "write an index name or pattern such as `logs-*`; prefix with `-` to exclude".into(),
            EmptyList { .. } => "list at least one pattern, or remove the key to use the default".into(),
            InvalidEngineVersion { .. } => "write the engine version as OpenSearch_X.Y or Elasticsearch_X.Y, e.g. OpenSearch_2.11".into(),
            EngineIncompatible { .. } => "choose a target engine version that is the same as or newer than the source and can read its indices (Elasticsearch 7 → OpenSearch 1/2, OpenSearch 1 → 2)".into(),
            InvalidTemplate { .. } => "use only the placeholders {name}, {date} and {datetime}".into(),
            InvalidRenamePattern { .. } => "write a valid regular expression, e.g. `(.+)` with rename_replacement `restored-$1`".into(),
            ReplacementWithoutPattern => "add rename_pattern, or remove rename_replacement".into(),
            RenameWithoutPattern => "add rename_pattern and rename_replacement, or choose another on_conflict".into(),
            SameSourceAndTarget { .. } => "give the target a new domain name; snapferry never restores onto its own source".into(),
            DuplicateReplicationName { .. } => "give each replication its own name".into(),
            DuplicateTargetDomain { .. } => "give each replication its own target domain".into(),
            TargetIsSource { .. } => "a domain cannot be both written to and copied from in one plan; split the plan or rename the target".into(),
            RepositoryConflict { .. } => "use one repository name per settings, or give the replication its own `repository.name`".into(),
            SnapshotNameCollision { .. } => "put {name} in the template, so replications of one source domain name their snapshots apart".into(),
            ReservedRepositorySetting { .. } => "remove it: snapferry fills `bucket`, `region` and `role_arn` from the plan's bucket and role so they cannot disagree".into(),
            ArnWithRoleFields { .. } => "either give `arn` of an existing role, or the fields of a role to create, not both".into(),
            NoReplication => "add `source` and `target` at the top level, or a `replications` list".into(),
            MixedLayout { .. } => "move it into each item of `replications`, or drop `replications` for a single replication".into(),
            MissingField { field } => format!("add `{field}`"),
            WrongValue { expected, .. } => format!("write {expected} here (`snapferry schema` describes every key)"),
            TargetConfigConflict { from_source: true, .. } => "with `from_source: true` (the default) write changes under `overrides`; for a full configuration set `from_source: false` and use `configuration`".into(),
            TargetConfigConflict { from_source: false, .. } => "with `from_source: false` write the full domain under `configuration`".into(),
            KmsKeyWithoutKms => "add `sse: aws:kms`, or remove kms_key_id".into(),
            KmsKeyAlias { .. } => "give the key id (1234abcd-...) or key ARN; `aws kms describe-key --key-id <alias>` shows them".into(),
            StateLocationCount { .. } => "write `state: { local: { path: ... } }` or `state: { s3: { bucket: ..., key: ... } }`".into(),
            InvalidProxy { .. } => "write a proxy URL such as socks5h://localhost:1080 or http://proxy:3128".into(),
            InvalidEndpoint { .. } => "write the endpoint as https://host[:port]".into(),
        }
    }

    /// Short text under the snippet.
    fn label(&self) -> &'static str {
        match self {
            Problem::Syntax { .. } => "here",
            Problem::MissingField { .. } | Problem::NoReplication => "here",
            _ => "this value",
        }
    }
}

/// Help for a YAML or type error, from serde_yaml's message.
fn syntax_help(message: &str) -> &'static str {
    if message.contains("unknown field") {
        "check the spelling: the keys allowed here are listed above (a misspelt key is never ignored)"
    } else if message.contains("missing field") {
        "add the missing key to this mapping (`snapferry schema` lists every key)"
    } else if message.contains("duplicate") {
        "remove one of the two entries with this key"
    } else if message.contains("unknown variant") {
        "use one of the values listed above"
    } else if message.contains("invalid type") || message.contains("invalid value") {
        "write a value of the expected type here (`snapferry schema` describes every key)"
    } else if message.contains("cannot start any token") {
        "YAML does not allow tabs for indentation or this character at the start of a value: indent with spaces, quote the value"
    } else {
        "fix the YAML syntax here (indentation, quotes, brackets)"
    }
}

/// One problem placed in the plan file.
#[derive(Debug, Clone, thiserror::Error, Diagnostic)]
#[error("{problem}")]
pub struct PlanDiagnostic {
    /// What is wrong.
    pub problem: Problem,
    /// Dotted path of the offending value, e.g. `replications[1].target.domain`.
    pub path: String,
    /// 1-based line of the offending value.
    pub line: usize,
    /// 1-based column (in characters) of the offending value.
    pub column: usize,
    #[source_code]
    src: NamedSource<Arc<str>>,
    #[label("{label}")]
    span: SourceSpan,
    label: &'static str,
    #[help]
    help: String,
}

impl PlanDiagnostic {
    /// Places `problem` at `span`; `at_key` when the span is a key (the key's presence is the problem).
    pub(crate) fn new(
        at_key: bool,
        problem: Problem,
        path: String,
        span: ByteSpan,
        file: &str,
        text: &Arc<str>,
    ) -> Self {
        let (line, column) = line_col(text, span.offset);
        PlanDiagnostic {
            help: problem.help(),
            label: if at_key { "this key" } else { problem.label() },
            problem,
            path,
            line,
            column,
            src: NamedSource::new(file, Arc::clone(text)),
            span: SourceSpan::new(span.offset.into(), span.len),
        }
    }

    /// What the user should do.
    pub fn help_text(&self) -> &str {
        &self.help
    }

    /// The byte span of the offending text.
    pub fn span(&self) -> SourceSpan {
        self.span
    }
}

/// Every problem found in one plan file.
#[derive(Debug, Clone, thiserror::Error, Diagnostic)]
#[error("{file}: the plan has {}", count(errors.len()))]
#[diagnostic(help("fix the problems below and run `snapferry validate` again"))]
pub struct PlanErrors {
    /// The plan file as named by the user.
    pub file: String,
    #[related]
    pub errors: Vec<PlanDiagnostic>,
}

/// `1 problem`, `2 problems`.
fn count(n: usize) -> String {
    if n == 1 {
        "1 problem".to_owned()
    } else {
        format!("{n} problems")
    }
}

/// Why a plan file could not be loaded.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum LoadError {
    #[error("cannot read plan file {path}")]
    #[diagnostic(help("check the path, or pass the plan with -f PLAN"))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(#[from] PlanErrors),
}
