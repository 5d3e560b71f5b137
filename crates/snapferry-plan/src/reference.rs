//! The plan reference (`docs/plan-reference.md`), generated from the plan's
//! JSON Schema so that it cannot drift from the model: a field added to
//! [`crate::raw`] appears in the reference with its doc comment, and the test
//! `tests/reference.rs` fails until the committed file is regenerated and the
//! field has an example in [`EXAMPLES`].
//!
//! The output is deterministic: sections follow the order in which the schema
//! first reaches each definition (root first, properties in the schema's order),
//! and nothing depends on hash order or the clock.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

/// One example value per field, keyed by `<definition>.<field>` (the root is
/// `RawPlan`), written as a one-line YAML value. Kept here rather than in the
/// schema because the schema is what editors load: it stays lean. The test
/// checks that every field has one and that each one has the field's type.
pub const EXAMPLES: &[(&str, &str)] = &[
    ("RawPlan.version", "1"),
    ("RawPlan.name", "orders-copy"),
    ("RawPlan.region", "eu-west-1"),
    ("RawPlan.role", "{ name: orders-snapshot-role }"),
    (
        "RawPlan.bucket",
        "{ name: acme-orders-snapshots, create: true }",
    ),
    (
        "RawPlan.state",
        "{ s3: { bucket: acme-snapferry-state, key: orders.json } }",
    ),
    ("RawPlan.repository", "{ name: snapferry-orders }"),
    ("RawPlan.source", "{ domain: orders-prod }"),
    ("RawPlan.target", "{ domain: orders-copy }"),
    ("RawPlan.snapshot", "{ name: \"{name}-{date}\" }"),
    ("RawPlan.restore", "{ on_conflict: fail }"),
    ("RawPlan.verify", "false"),
    ("RawPlan.metadata", "true"),
    ("RawPlan.dashboards", "{ tenants: [global, analysts] }"),
    ("RawPlan.security", "true"),
    (
        "RawPlan.replications",
        "[{ name: logs, source: { domain: logs-prod }, target: { domain: logs-next } }]",
    ),
    (
        "RawRole.arn",
        "arn:aws:iam::111111111111:role/opensearch-snapshots",
    ),
    ("RawRole.name", "orders-snapshot-role"),
    ("RawRole.path", "/snapferry/"),
    (
        "RawRole.trusted_services",
        "[opensearchservice.amazonaws.com]",
    ),
    (
        "RawRole.permissions_boundary",
        "arn:aws:iam::111111111111:policy/platform-boundary",
    ),
    ("RawRole.tags", "{ team: search }"),
    ("RawBucket.name", "acme-orders-snapshots"),
    ("RawBucket.region", "us-east-1"),
    ("RawBucket.base_path", "snapferry"),
    ("RawBucket.create", "true"),
    ("RawBucket.sse", "aws:kms"),
    ("RawBucket.kms_key_id", "alias/snapferry"),
    ("RawState.local", "{ path: state/orders.state.json }"),
    (
        "RawState.s3",
        "{ bucket: acme-snapferry-state, key: orders.json }",
    ),
    ("RawLocalState.path", ".snapferry/orders.state.json"),
    ("RawS3State.bucket", "acme-snapferry-state"),
    ("RawS3State.key", "state/orders.json"),
    ("RawS3State.region", "us-east-1"),
    ("RawS3State.lock_lease_seconds", "120"),
    ("RawRepository.name", "snapferry-orders"),
    (
        "RawRepository.settings",
        "{ max_snapshot_bytes_per_sec: 200mb }",
    ),
    ("RawDomainRef.domain", "orders-prod"),
    ("RawDomainRef.endpoint", "https://localhost:9200"),
    ("RawDomainRef.proxy", "socks5h://localhost:1080"),
    ("RawDomainRef.region", "us-east-1"),
    (
        "RawDomainRef.assume_role_arn",
        "arn:aws:iam::111111111111:role/snapferry-operator",
    ),
    ("RawDomainRef.external_id", "prod-handover-7f3a"),
    ("RawDomainRef.engine_version", "OpenSearch_2.11"),
    ("RawTarget.domain", "orders-copy"),
    ("RawTarget.endpoint", "https://localhost:9201"),
    ("RawTarget.proxy", "socks5h://localhost:1080"),
    ("RawTarget.region", "eu-central-1"),
    (
        "RawTarget.assume_role_arn",
        "arn:aws:iam::222222222222:role/snapferry-operator",
    ),
    ("RawTarget.external_id", "staging-handover-9c1e"),
    (
        "RawTarget.snapshot_role_arn",
        "arn:aws:iam::222222222222:role/opensearch-snapshots-reader",
    ),
    ("RawTarget.from_source", "false"),
    ("RawTarget.overrides", "{ engine_version: OpenSearch_2.13 }"),
    (
        "RawTarget.configuration",
        "{ engine_version: OpenSearch_2.11, cluster_config: { instance_type: m6g.large.search, instance_count: 3 } }",
    ),
    ("RawDomainConfig.engine_version", "OpenSearch_2.13"),
    (
        "RawDomainConfig.cluster_config",
        "{ instance_type: r6g.large.search, instance_count: 2 }",
    ),
    (
        "RawDomainConfig.ebs",
        "{ enabled: true, volume_type: gp3, volume_size: 100 }",
    ),
    (
        "RawDomainConfig.access_policy",
        "{ Version: \"2012-10-17\", Statement: [{ Effect: Allow, Principal: { AWS: \"arn:aws:iam::222222222222:root\" }, Action: \"es:*\", Resource: \"arn:aws:es:us-west-2:222222222222:domain/billing-copy/*\" }] }",
    ),
    (
        "RawDomainConfig.vpc",
        "{ subnet_ids: [subnet-0a1b2c3d], security_group_ids: [sg-0a1b2c3d] }",
    ),
    ("RawDomainConfig.encryption_at_rest", "{ enabled: true }"),
    ("RawDomainConfig.node_to_node_encryption", "true"),
    ("RawDomainConfig.enforce_https", "true"),
    (
        "RawDomainConfig.advanced_options",
        "{ rest.action.multi.allow_explicit_index: \"true\" }",
    ),
    ("RawDomainConfig.tags", "{ purpose: copy-of-orders-prod }"),
    (
        "RawDomainConfig.fine_grained_access_control",
        "{ master_user_arn: \"arn:aws:iam::111111111111:role/search-admin\" }",
    ),
    ("RawFineGrainedAccessControl.enabled", "true"),
    (
        "RawFineGrainedAccessControl.master_user_arn",
        "arn:aws:iam::111111111111:role/search-admin",
    ),
    ("RawFineGrainedAccessControl.master_user_name", "admin"),
    (
        "RawFineGrainedAccessControl.master_user_password",
        "{ env: SNAPFERRY_MASTER_PASSWORD }",
    ),
    ("RawSecretSource.env", "SNAPFERRY_MASTER_PASSWORD"),
    (
        "RawSecretSource.secrets_manager",
        "arn:aws:secretsmanager:eu-west-1:111111111111:secret:search/master-AbCdEf",
    ),
    ("RawSecretSource.key", "password"),
    ("ClusterConfig.instance_type", "r6g.large.search"),
    ("ClusterConfig.instance_count", "3"),
    ("ClusterConfig.dedicated_master_enabled", "true"),
    ("ClusterConfig.dedicated_master_type", "m6g.large.search"),
    ("ClusterConfig.dedicated_master_count", "3"),
    ("ClusterConfig.zone_awareness_enabled", "true"),
    ("ClusterConfig.availability_zone_count", "3"),
    ("EbsConfig.enabled", "true"),
    ("EbsConfig.volume_type", "gp3"),
    ("EbsConfig.volume_size", "200"),
    ("EbsConfig.iops", "3000"),
    ("EbsConfig.throughput", "125"),
    ("VpcConfig.subnet_ids", "[subnet-0a1b2c3d, subnet-4e5f6a7b]"),
    ("VpcConfig.security_group_ids", "[sg-0a1b2c3d]"),
    ("EncryptionAtRest.enabled", "true"),
    (
        "EncryptionAtRest.kms_key_id",
        "arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    ),
    ("RawSnapshot.name", "\"{name}-{date}\""),
    ("RawSnapshot.indices", "[\"orders-*\", \"-orders-tmp-*\"]"),
    ("RawSnapshot.include_system_indices", "true"),
    ("RawSnapshot.include_global_state", "true"),
    ("RawSnapshot.partial", "true"),
    ("RawSnapshot.keep", "4"),
    ("RawRestore.indices", "[\"logs-2026-*\"]"),
    ("RawRestore.rename_pattern", "\"(.+)\""),
    ("RawRestore.rename_replacement", "\"restored-$1\""),
    (
        "RawRestore.index_settings",
        "{ index.number_of_replicas: 0 }",
    ),
    (
        "RawRestore.ignore_index_settings",
        "[index.routing.allocation.require.box_type]",
    ),
    ("RawRestore.on_conflict", "replace"),
    ("RawRestore.strategy", "alias_swap"),
    ("RawRestore.skip_unchanged", "false"),
    ("RawVerifyOptions.enabled", "false"),
    ("RawReplication.name", "logs"),
    ("RawReplication.source", "{ domain: logs-prod }"),
    ("RawReplication.target", "{ domain: logs-next }"),
    ("RawReplication.repository", "{ name: snapferry-logs }"),
    ("RawReplication.snapshot", "{ indices: [\"logs-2025-*\"] }"),
    (
        "RawReplication.restore",
        "{ on_conflict: rename, rename_pattern: \"(.+)\", rename_replacement: \"restored-$1\" }",
    ),
    ("RawReplication.verify", "{ enabled: false }"),
    (
        "RawReplication.metadata",
        "{ ism_policies: [\"-experimental-*\"], prune: true }",
    ),
    ("RawReplication.dashboards", "true"),
    ("RawReplication.security", "{ enabled: false }"),
    ("RawSecurityOptions.enabled", "false"),
    ("RawMetadataOptions.enabled", "true"),
    (
        "RawMetadataOptions.index_templates",
        "[\"logs-*\", \"-logs-debug\"]",
    ),
    ("RawMetadataOptions.component_templates", "[\"base-*\"]"),
    ("RawMetadataOptions.legacy_templates", "[]"),
    ("RawMetadataOptions.pipelines", "[\"*\"]"),
    ("RawMetadataOptions.ism_policies", "[rollover-daily]"),
    ("RawMetadataOptions.scripts", "[\"search-*\"]"),
    ("RawMetadataOptions.prune", "true"),
    ("RawDashboardsOptions.enabled", "true"),
    ("RawDashboardsOptions.tenants", "[global, analysts]"),
    ("RawDashboardsOptions.overwrite", "false"),
    (
        "RawDashboardsOptions.types",
        "[index-pattern, visualization, dashboard]",
    ),
];

/// The name the reference gives the schema's root.
pub const ROOT: &str = "RawPlan";

const INTRO: &str = "\
<!-- Generated from the plan's JSON Schema by `snapferry_plan::reference::markdown_reference`.
     Do not edit: run `SNAPFERRY_UPDATE_REFERENCE=1 cargo test -p snapferry-plan --test it reference`. -->

# Plan file reference

A plan is one YAML file that names a replication (or several) of an Amazon OpenSearch Service
domain into a new domain through a manual snapshot in S3. Only `version`, `name`, `region`,
`bucket` and either `source` + `target` or a `replications` list are required; everything else has
a default that snapferry derives from `name`, so most plans are a dozen lines. Every key below is
checked: an unknown or misspelt key is an error naming its file, line and column. The same
definitions are in [`docs/plan.schema.json`](plan.schema.json), which editors load through the
`# yaml-language-server: $schema=../docs/plan.schema.json` first line of a plan. Worked examples
are in [`plans/`](../plans/): [`demo.yaml`](../plans/demo.yaml) (the smallest plan),
[`fleet.yaml`](../plans/fleet.yaml) (several replications), [`cross-account.yaml`](../plans/cross-account.yaml),
[`cross-region.yaml`](../plans/cross-region.yaml), [`vpc-socks.yaml`](../plans/vpc-socks.yaml) and
[`staging-refresh.yaml`](../plans/staging-refresh.yaml). [AWS set-up](aws-setup.md) explains the
permissions each field implies.

In the tables, *Default* is what snapferry uses when the key is absent; \"required\" keys have
none, and \"unset\" means the key has no default of its own: the feature is off, or AWS (or, for a
target with `from_source: true`, the source domain) decides.
";

/// The plan reference as Markdown, generated from `schema` (the value of
/// [`crate::json_schema`]).
pub fn markdown_reference(schema: &Value) -> String {
    let defs = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let sections = sections(schema, &defs);
    let ctx = Ctx {
        titles: sections
            .iter()
            .map(|s| (s.def.clone(), s.title()))
            .collect(),
        defs,
    };
    let mut out = String::from(INTRO);
    out.push_str("\n## Contents\n\n");
    for s in &sections {
        let _ = writeln!(out, "- [{}](#{})", s.title(), anchor(&s.title()));
    }
    for s in &sections {
        out.push('\n');
        render_section(&mut out, s, &ctx);
    }
    out
}

/// A definition of the schema and every plan path that reaches it.
struct Section {
    def: String,
    schema: Value,
    paths: Vec<String>,
}

impl Section {
    fn title(&self) -> String {
        if self.def == ROOT {
            "Top level".to_owned()
        } else {
            format!("{} ({})", self.paths[0], self.def)
        }
    }
}

/// Definitions in the order the root first reaches them, each with all its paths.
fn sections(root: &Value, defs: &serde_json::Map<String, Value>) -> Vec<Section> {
    let mut order: Vec<String> = vec![ROOT.to_owned()];
    let mut paths: BTreeMap<String, Vec<String>> = BTreeMap::new();
    paths.insert(ROOT.to_owned(), vec![String::new()]);
    // Breadth-first over definitions; a definition's paths are all prefixes
    // reaching it, which terminates because each path grows and the model has
    // no recursion (a recursive model would be visited once per definition).
    let mut queue = vec![(ROOT.to_owned(), root.clone(), String::new())];
    let mut head = 0;
    while head < queue.len() {
        let (_, schema, prefix) = queue[head].clone();
        head += 1;
        // A definition's own union (`verify: false` or a mapping) reaches
        // definitions at the same path; its properties reach them one key deeper.
        let mut reached_defs: Vec<(String, String)> = refs(&schema)
            .into_iter()
            .map(|(def, suffix)| (def, format!("{prefix}{suffix}")))
            .collect();
        for (key, prop) in properties(&schema) {
            let path = join(&prefix, &key);
            reached_defs.extend(
                refs(prop)
                    .into_iter()
                    .map(|(def, suffix)| (def, format!("{path}{suffix}"))),
            );
        }
        {
            for (def, reached) in reached_defs {
                let seen = paths.entry(def.clone()).or_default();
                if seen.contains(&reached) || seen.len() > 16 {
                    continue;
                }
                seen.push(reached.clone());
                if !order.contains(&def) {
                    order.push(def.clone());
                }
                if let Some(d) = defs.get(&def) {
                    queue.push((def, d.clone(), reached));
                }
            }
        }
    }
    order
        .into_iter()
        .filter_map(|def| {
            let schema = if def == ROOT {
                root.clone()
            } else {
                defs.get(&def)?.clone()
            };
            Some(Section {
                paths: paths.remove(&def).unwrap_or_default(),
                def,
                schema,
            })
        })
        .collect()
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Properties of an object schema, in the schema's order.
fn properties(schema: &Value) -> Vec<(String, &Value)> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.iter().map(|(k, v)| (k.clone(), v)).collect())
        .unwrap_or_default()
}

/// Definitions a property refers to, with the path suffix (`[]` for list items).
fn refs(schema: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(name) = ref_name(schema) {
        out.push((name, String::new()));
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        for branch in schema
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.extend(refs(branch));
        }
    }
    if let Some(items) = schema.get("items") {
        out.extend(refs(items).into_iter().map(|(d, s)| (d, format!("[]{s}"))));
    }
    out
}

fn ref_name(schema: &Value) -> Option<String> {
    let r = schema.get("$ref")?.as_str()?;
    Some(r.rsplit('/').next()?.to_owned())
}

/// GitHub's heading anchor: lowercase, spaces to `-`, punctuation but `-`/`_` dropped.
fn anchor(title: &str) -> String {
    title
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// What rendering needs besides the section at hand.
struct Ctx {
    defs: serde_json::Map<String, Value>,
    /// Section title of each definition, for links from a type to its section.
    titles: BTreeMap<String, String>,
}

fn render_section(out: &mut String, s: &Section, ctx: &Ctx) {
    let _ = writeln!(out, "## {}\n", s.title());
    if s.def != ROOT {
        let at: Vec<String> = s.paths.iter().map(|p| format!("`{p}`")).collect();
        let _ = writeln!(out, "At: {}.\n", at.join(", "));
    }
    if let Some(d) = description(&s.schema) {
        let _ = writeln!(out, "{}\n", one_line(d));
    }
    let props = properties(&s.schema);
    if props.is_empty() {
        render_values(out, &s.schema, ctx);
        return;
    }
    let required = required(&s.schema);
    out.push_str("| Key | Type | Default | Description | Example |\n");
    out.push_str("| --- | --- | --- | --- | --- |\n");
    for (key, prop) in props {
        let is_required = required.contains(&key);
        let text = description(prop).map(one_line).unwrap_or_default();
        let (default, text) = if is_required {
            ("required".to_owned(), text)
        } else {
            split_default(prop, &text)
        };
        let example = example(&s.def, &key)
            .map(|v| format!("`{key}: {v}`"))
            .unwrap_or_else(|| "—".to_owned());
        let _ = writeln!(
            out,
            "| `{key}` | {} | {} | {} | {} |",
            cell(&type_of(prop, ctx)),
            cell(&default),
            cell(&text),
            cell(&example)
        );
    }
    // A definition that is also a scalar (`verify: false`) says so below its keys.
    if s.schema.get("anyOf").is_some() || s.schema.get("oneOf").is_some() {
        out.push('\n');
        render_values(out, &s.schema, ctx);
    }
}

/// The values of an enum or of an untagged union, one line each.
fn render_values(out: &mut String, schema: &Value, ctx: &Ctx) {
    out.push_str("| Value | Meaning |\n| --- | --- |\n");
    let branches = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for b in branches {
        let value = match b.get("const") {
            Some(c) => format!("`{}`", scalar(c)),
            None => type_of(&b, ctx),
        };
        let meaning = description(&b).map(one_line).unwrap_or_default();
        let _ = writeln!(out, "| {} | {} |", cell(&value), cell(&meaning));
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        for v in values {
            let _ = writeln!(out, "| `{}` | |", cell(&scalar(v)));
        }
    }
}

fn required(schema: &Value) -> Vec<String> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn description(schema: &Value) -> Option<&str> {
    schema.get("description").and_then(Value::as_str)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text safe inside a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn example(def: &str, key: &str) -> Option<&'static str> {
    let wanted = format!("{def}.{key}");
    EXAMPLES.iter().find(|(k, _)| *k == wanted).map(|(_, v)| *v)
}

/// The human type of a property: scalars, lists, maps and links to sections.
fn type_of(schema: &Value, ctx: &Ctx) -> String {
    if let Some(def) = ref_name(schema) {
        return match ctx.defs.get(&def) {
            Some(d) if d.get("properties").is_none() => enum_type(d, ctx),
            _ => {
                let title = ctx.titles.get(&def).cloned().unwrap_or_else(|| def.clone());
                format!("mapping, see [{def}](#{})", anchor(&title))
            }
        };
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(branches) = schema.get(key).and_then(Value::as_array) {
            let parts: Vec<String> = branches
                .iter()
                .filter(|b| b.get("type") != Some(&Value::from("null")))
                .map(|b| type_of(b, ctx))
                .collect();
            return parts.join(" or ");
        }
    }
    if let Some(c) = schema.get("const") {
        return format!("`{}`", scalar(c));
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let types: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
    match types.as_slice() {
        [] => "any (a YAML mapping, or the same as a JSON string)".to_owned(),
        ["array"] => match schema.get("items") {
            Some(items) => format!("list of {}", type_of(items, ctx)),
            None => "list".to_owned(),
        },
        ["object"] => match schema.get("additionalProperties") {
            Some(Value::Bool(false)) | None => "mapping".to_owned(),
            Some(Value::Bool(true)) => "map of string to any value".to_owned(),
            Some(v) => format!("map of string to {}", type_of(v, ctx)),
        },
        ["integer"] => match schema.get("minimum").and_then(Value::as_i64) {
            Some(0) => "integer ≥ 0".to_owned(),
            _ => "integer".to_owned(),
        },
        [t] => (*t).to_owned(),
        many => many.join(" or "),
    }
}

fn enum_type(def: &Value, ctx: &Ctx) -> String {
    let branches = def
        .get("oneOf")
        .or_else(|| def.get("anyOf"))
        .and_then(Value::as_array);
    match branches {
        Some(bs) => {
            let all_consts = bs.iter().all(|b| b.get("const").is_some());
            bs.iter()
                .map(|b| type_of(b, ctx))
                .collect::<Vec<_>>()
                .join(if all_consts { ", " } else { " or " })
        }
        None => type_of(def, ctx),
    }
}

static DEFAULT_SENTENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:^|\s)Default:?\s+([^.]*(?:\.[^\s.][^.]*)*)\.?\s*$").unwrap());
static DEFAULT_PAREN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\(default:?\s+([^)]*)\)").unwrap());
static DEFAULT_AFTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(`[^`]+`) \(default\)").unwrap());

/// The default of an optional property and its description without the
/// sentence that stated it: from the schema's `default`, or from the
/// `Default …` wording of the doc comment.
fn split_default(schema: &Value, text: &str) -> (String, String) {
    if let Some(d) = schema.get("default") {
        return (format!("`{}`", scalar(d)), text.to_owned());
    }
    if let Some(c) = DEFAULT_SENTENCE.captures(text) {
        let whole = c.get(0).expect("match");
        let rest = text[..whole.start()].trim_end().to_owned();
        return (c[1].trim().to_owned(), rest);
    }
    if let Some(c) = DEFAULT_PAREN.captures(text) {
        return (c[1].trim().to_owned(), text.to_owned());
    }
    if let Some(c) = DEFAULT_AFTER.captures(text) {
        return (c[1].to_owned(), text.to_owned());
    }
    ("unset".to_owned(), text.to_owned())
}
