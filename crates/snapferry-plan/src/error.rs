//! The errors of reading and checking a plan. Each broken rule is a [`Problem`]
//! (what is wrong, with the names involved); a [`PlanDiagnostic`] places it in
//! the file (line, column, snippet) and says what to do; [`PlanErrors`] carries
//! all of them at once, so the user fixes a plan in one pass.

use std::path::PathBuf;
use std::sync::Arc;

use miette::{Diagnostic, NamedSource, SourceSpan};

use crate::location::{ByteSpan, LineIndex};

/// One broken rule of the plan file, with the names involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("{message}")]
    Syntax { message: String },
    #[error("the plan is not UTF-8 text: byte {bytes}")]
    InvalidUtf8 { bytes: String },
    #[error("control character U+{code:04X}{} in the plan", control_name(*code).map(|n| format!(" ({n})")).unwrap_or_default())]
    ControlCharacter { code: u32 },
    #[error("values are nested more than {limit} levels deep")]
    TooDeep { limit: usize },
    #[error("aliases copy more than {} values into the plan", thousands(*limit))]
    AliasExpansion { limit: usize },
    #[error("an alias refers to the mapping or list that contains it")]
    RecursiveAlias,
    #[error("`{key}` is written twice in this mapping (first on line {first_line})")]
    DuplicateKey { key: String, first_line: usize },
    #[error("a key must be a name, not a list or mapping")]
    ComplexKey,
    #[error("a YAML tag (`{tag}`) has no meaning in a plan")]
    Tag { tag: String },
    #[error("a plan file holds one YAML document; a second one starts here")]
    SecondDocument,
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
    #[error("fine-grained access control: {reason}")]
    InvalidMasterUser { reason: String },
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
    #[error("invalid name pattern {pattern:?}: {reason}")]
    InvalidNamePattern { pattern: String, reason: String },
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
    #[error("on_conflict: rename cannot be used with strategy: alias_swap")]
    RenameWithAliasSwap,
    #[error("skip_unchanged needs strategy: alias_swap")]
    SkipUnchangedInPlace,
    #[error("snapshot.keep must be at least 1")]
    KeepZero,
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
    #[error("invalid external_id: {reason}")]
    InvalidExternalId { reason: String },
    #[error("`external_id` is sent only with `assume_role_arn`, which is not set here")]
    ExternalIdWithoutRole,
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
}

impl Problem {
    /// What the user should do about it.
    pub fn help(&self) -> String {
        use Problem::*;
        match self {
            Syntax { message } => syntax_help(message).into(),
            InvalidUtf8 { .. } => "save the plan as UTF-8 (it looks like another encoding, such as Latin-1, or a binary file)".into(),
            ControlCharacter { .. } => "delete it: an invisible character, often pasted from a terminal; YAML allows no control character but tab and line breaks".into(),
            TooDeep { .. } => "a plan nests a few levels; look for brackets opened and never closed, or a generated value gone wrong".into(),
            AliasExpansion { .. } => "write the repeated values out, or alias smaller blocks: aliases that multiply like this are refused".into(),
            RecursiveAlias => "point the alias at an anchor outside the value it is in".into(),
            DuplicateKey { .. } => "keep one of the two: YAML does not allow a key twice, and snapferry will not guess which one you meant".into(),
            ComplexKey => "write the key as a plain name, such as `domain:`".into(),
            Tag { .. } => "remove the tag and write the value itself (quote it to make it a string)".into(),
            SecondDocument => "remove the `---` and what follows it, or put each plan in its own file".into(),
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
            InvalidRepositoryName { .. } => "repository names are not empty, do not start with `cs-` (reserved by AWS) and contain none of \\ / * ? \" < > | , # or space".into(),
            InvalidRoleName { .. } => "use 1-64 characters: letters, digits and +=,.@_-".into(),
            InvalidRolePath { .. } => "write a path such as `/` or `/snapferry/`".into(),
            InvalidMasterUser { .. } => "write `fine_grained_access_control: { master_user_arn: arn:aws:iam::<account>:role/<name> }` or `{ master_user_name: admin, master_user_password: { env: SNAPFERRY_MASTER_PASSWORD } }` (or `{ secrets_manager: <secret ARN or name>, key: password }`)".into(),
            InvalidRoleArn { .. } => "write the role ARN as arn:aws:iam::<12-digit account>:role/<name> (or arn:aws-cn / arn:aws-us-gov)".into(),
            InvalidPolicyArn { .. } => "write the policy ARN as arn:aws:iam::<12-digit account>:policy/<name>".into(),
            InvalidTrustedService { .. } => "name a service principal such as `opensearchservice.amazonaws.com`".into(),
            InvalidRegion { .. } => "write a region code such as `us-east-1` or `eu-west-3`".into(),
            InvalidIndexPattern { .. } => "write an index name or pattern such as `logs-*`; prefix with `-` to exclude".into(),
            EmptyList { .. } => "list at least one pattern, or remove the key to use the default".into(),
            InvalidNamePattern { .. } => "write a name or a pattern such as `logs-*` (`*` matches any run of characters); prefix with `-` to exclude".into(),
            InvalidEngineVersion { .. } => "write the engine version as OpenSearch_X.Y or Elasticsearch_X.Y, e.g. OpenSearch_2.11".into(),
            EngineIncompatible { .. } => "choose a target engine version that is the same as or newer than the source and can read its indices (Elasticsearch 7 → OpenSearch 1/2, OpenSearch 1 → 2)".into(),
            InvalidTemplate { .. } => "use only the placeholders {name}, {date} and {datetime}".into(),
            InvalidRenamePattern { .. } => "write a valid regular expression, e.g. `(.+)` with rename_replacement `restored-$1`".into(),
            ReplacementWithoutPattern => "add rename_pattern, or remove rename_replacement".into(),
            RenameWithoutPattern => "add rename_pattern and rename_replacement, or choose another on_conflict".into(),
            RenameWithAliasSwap => "with alias_swap each alias takes its index's name and generations get their own names; use `replace` to migrate a plain index in the way, `skip` or `fail`".into(),
            SkipUnchangedInPlace => "set `restore.strategy: alias_swap`, or remove `skip_unchanged`: an in-place restore keeps no generation to leave in place".into(),
            KeepZero => "keep at least the snapshot just restored (1), or remove `keep` to keep every snapshot".into(),
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
            InvalidExternalId { .. } => "write the ExternalId the role's trust policy asks for: 2-1224 characters, letters, digits and _+=,.@:/-".into(),
            ExternalIdWithoutRole => "add the `assume_role_arn` whose trust policy asks for this ExternalId, or remove `external_id`".into(),
            InvalidEndpoint { .. } => "write the endpoint as https://host[:port]".into(),
        }
    }

    /// Whether the rule compares this value with others, or reads a value derived from
    /// others (a snapshot name from the replication's name). Such findings are only trusted
    /// when every value of the plan had the right shape: one removed for a wrong type (and
    /// replaced by a neutral stand-in) would make them say something the plan does not.
    pub fn involves_other_values(&self) -> bool {
        use Problem::*;
        match self {
            SameSourceAndTarget { .. }
            | DuplicateReplicationName { .. }
            | DuplicateTargetDomain { .. }
            | TargetIsSource { .. }
            | RepositoryConflict { .. }
            | SnapshotNameCollision { .. }
            | EngineIncompatible { .. }
            | InvalidSnapshotName { .. }
            | RenameWithoutPattern
            | ReplacementWithoutPattern
            | RenameWithAliasSwap
            | SkipUnchangedInPlace
            | TargetConfigConflict { .. }
            | KmsKeyWithoutKms
            | StateLocationCount { .. }
            | MixedLayout { .. }
            | NoReplication
            | ArnWithRoleFields { .. }
            | InvalidMasterUser { .. }
            | ExternalIdWithoutRole
            | MissingField { .. } => true,
            Syntax { .. }
            | InvalidUtf8 { .. }
            | ControlCharacter { .. }
            | TooDeep { .. }
            | AliasExpansion { .. }
            | RecursiveAlias
            | DuplicateKey { .. }
            | ComplexKey
            | Tag { .. }
            | SecondDocument
            | UnknownKey { .. }
            | UnsupportedVersion { .. }
            | InvalidName { .. }
            | InvalidDomainName { .. }
            | InvalidBucketName { .. }
            | InvalidRepositoryName { .. }
            | InvalidRoleName { .. }
            | InvalidRolePath { .. }
            | InvalidRoleArn { .. }
            | KeepZero
            | InvalidPolicyArn { .. }
            | InvalidTrustedService { .. }
            | InvalidRegion { .. }
            | InvalidIndexPattern { .. }
            | EmptyList { .. }
            | InvalidNamePattern { .. }
            | InvalidEngineVersion { .. }
            | InvalidTemplate { .. }
            | InvalidRenamePattern { .. }
            | ReservedRepositorySetting { .. }
            | WrongValue { .. }
            | KmsKeyAlias { .. }
            | InvalidProxy { .. }
            | InvalidExternalId { .. }
            | InvalidEndpoint { .. } => false,
        }
    }

    /// Short text under the snippet.
    fn label(&self) -> &'static str {
        match self {
            Problem::DuplicateKey { .. } => "written again here",
            Problem::Syntax { .. }
            | Problem::InvalidUtf8 { .. }
            | Problem::ControlCharacter { .. }
            | Problem::TooDeep { .. }
            | Problem::AliasExpansion { .. }
            | Problem::RecursiveAlias
            | Problem::Tag { .. }
            | Problem::SecondDocument => "here",
            Problem::MissingField { .. } | Problem::NoReplication => "here",
            _ => "this value",
        }
    }
}

/// Help for a YAML syntax error, from the parser's message.
fn syntax_help(message: &str) -> &'static str {
    if message.contains("tab") {
        "indent with spaces: YAML does not allow tabs for indentation"
    } else if message.contains("quoted scalar") {
        "close the quote: a quoted value ends with the same quote it starts with"
    } else if message.contains("flow mapping") || message.contains("flow sequence") {
        "close the bracket: every `{` needs a `}` and every `[` a `]`"
    } else if message.contains("anchor") || message.contains("alias") {
        "define the anchor (`&name`) before the alias (`*name`) that uses it"
    } else if message.contains("indentation") || message.contains("mapping values are not allowed")
    {
        "line the keys of one mapping up at the same indentation, with spaces"
    } else if message.contains("cannot start any token") || message.contains("character") {
        "quote the value: this character cannot start an unquoted value"
    } else {
        "fix the YAML syntax here (indentation, quotes, brackets)"
    }
}

/// The short name of a C0 control character or DEL.
fn control_name(code: u32) -> Option<&'static str> {
    const C0: [&str; 32] = [
        "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "TAB", "LF", "VT", "FF",
        "CR", "SO", "SI", "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM",
        "SUB", "ESC", "FS", "GS", "RS", "US",
    ];
    match code {
        0..=31 => Some(C0[code as usize]),
        0x7F => Some("DEL"),
        _ => None,
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
        lines: &LineIndex<'_>,
    ) -> Self {
        let (line, column) = lines.line_col(span.offset);
        PlanDiagnostic {
            help: problem.help(),
            label: match (&problem, at_key) {
                (Problem::DuplicateKey { .. }, _) => problem.label(),
                (_, true) => "this key",
                _ => problem.label(),
            },
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

/// Most problems one report lists; the rest are counted. A plan with thousands of problems is
/// not a plan with a typo, and listing them all would bury the first ones and take time.
pub const MAX_REPORTED: usize = 20;

/// Every problem found in one plan file: the first [`MAX_REPORTED`] in the file's order, and
/// how many more there are.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}: the plan has {}", count(self.errors.len() + self.omitted))]
pub struct PlanErrors {
    /// The plan file as named by the user.
    pub file: String,
    /// The problems listed, in the file's order.
    pub errors: Vec<PlanDiagnostic>,
    /// Problems found but not listed.
    pub omitted: usize,
    more: Option<MoreProblems>,
}

impl PlanErrors {
    /// The report of `errors` (already capped) and `omitted` more.
    pub fn new(file: String, errors: Vec<PlanDiagnostic>, omitted: usize) -> Self {
        PlanErrors {
            file,
            errors,
            omitted,
            more: (omitted > 0).then_some(MoreProblems {
                omitted,
                listed: MAX_REPORTED,
            }),
        }
    }
}

impl Diagnostic for PlanErrors {
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(
            "fix the problems below and run `snapferry validate` again",
        ))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        let listed = self.errors.iter().map(|d| d as &dyn Diagnostic);
        let more = self.more.iter().map(|m| m as &dyn Diagnostic);
        Some(Box::new(listed.chain(more)))
    }
}

/// The last line of a capped report.
#[derive(Debug, Clone, thiserror::Error, Diagnostic)]
#[error("… and {} more", thousands(*omitted))]
#[diagnostic(help(
    "the first {listed} are listed; fix them and run `snapferry validate` again to see the rest"
))]
struct MoreProblems {
    omitted: usize,
    listed: usize,
}

/// `1 problem`, `2 problems`, `100,000 problems`.
fn count(n: usize) -> String {
    if n == 1 {
        "1 problem".to_owned()
    } else {
        format!("{} problems", thousands(n))
    }
}

/// `99980` as `99,980`.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// What was found before it is placed: a problem ready to show, or an unknown key whose
/// suggestion is only worked out if it is among the problems listed.
#[derive(Debug, Clone)]
pub(crate) enum Finding {
    Ready(Problem),
    UnknownKey {
        key: String,
        parent: String,
        allowed: std::sync::Arc<[String]>,
    },
}

/// A finding, the dotted path of what it is about and its span in the text; `at_key` when
/// the key's presence is the problem.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    pub finding: Finding,
    pub path: String,
    pub span: ByteSpan,
    pub at_key: bool,
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
