//! The documentation that describes the plan file stays true to the model:
//! `docs/plan-reference.md` is generated from the plan's JSON Schema and every
//! field carries an example of its own type (regenerate with
//! `SNAPFERRY_UPDATE_REFERENCE=1 cargo test -p snapferry-plan --test it reference`);
//! every plan snippet of `docs/aws-setup.md` validates and its policy documents
//! are JSON, the operator's granting every action snapferry calls.

use std::path::PathBuf;

use serde_json::Value;
use snapferry_plan::reference::{EXAMPLES, ROOT, markdown_reference};

#[test]
fn committed_reference_is_up_to_date() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/plan-reference.md");
    let fresh = markdown_reference(&snapferry_plan::json_schema());
    if std::env::var_os("SNAPFERRY_UPDATE_REFERENCE").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "docs/plan-reference.md is out of date: run SNAPFERRY_UPDATE_REFERENCE=1 cargo test -p snapferry-plan --test it reference"
    );
}

/// Every `(definition, field, schema)` of the plan, the root named [`ROOT`].
fn fields(schema: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    let mut objects = vec![(ROOT.to_owned(), schema.clone())];
    for (name, def) in schema["$defs"].as_object().unwrap() {
        objects.push((name.clone(), def.clone()));
    }
    for (name, object) in objects {
        for (key, prop) in object["properties"].as_object().into_iter().flatten() {
            out.push((name.clone(), key.clone(), prop.clone()));
        }
    }
    out
}

/// Whether `value` has the shape `schema` describes (the subset of JSON Schema
/// that schemars emits for the plan: types, consts, refs, unions, items, keys).
fn conforms(value: &Value, schema: &Value, root: &Value) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap();
        return conforms(value, &root["$defs"][name], root);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(branches) = schema.get(key).and_then(Value::as_array) {
            let errors: Vec<String> = branches
                .iter()
                .filter_map(|b| conforms(value, b, root).err())
                .collect();
            if errors.len() == branches.len() {
                return Err(format!("{value} matches no branch: {errors:?}"));
            }
            if schema.get("properties").is_none() {
                return Ok(());
            }
        }
    }
    if let Some(c) = schema.get("const")
        && c != value
    {
        return Err(format!("{value} is not {c}"));
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if !types.is_empty() && !types.contains(&actual) {
        return Err(format!("{value} is {actual}, not {types:?}"));
    }
    if let (Some(items), Value::Array(values)) = (schema.get("items"), value) {
        for v in values {
            conforms(v, items, root)?;
        }
    }
    if let Value::Object(map) = value {
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, v) in map {
            match props.and_then(|p| p.get(k)) {
                Some(p) => conforms(v, p, root)?,
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!("unknown key `{k}`"));
                }
                None => {
                    if let Some(extra) =
                        schema.get("additionalProperties").filter(|a| a.is_object())
                    {
                        conforms(v, extra, root)?;
                    }
                }
            }
        }
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !map.contains_key(r.as_str().unwrap()) {
                return Err(format!("missing required key {r}"));
            }
        }
    }
    Ok(())
}

#[test]
fn every_field_has_one_example_of_its_own_type() {
    let schema = snapferry_plan::json_schema();
    let fields = fields(&schema);
    let mut problems = Vec::new();
    for (def, key, prop) in &fields {
        let wanted = format!("{def}.{key}");
        let found: Vec<&str> = EXAMPLES
            .iter()
            .filter(|(k, _)| *k == wanted)
            .map(|(_, v)| *v)
            .collect();
        match found.as_slice() {
            [] => problems.push(format!("{wanted}: no example in reference::EXAMPLES")),
            [yaml] => {
                let value: Value = serde_yaml::from_str(yaml)
                    .unwrap_or_else(|e| panic!("{wanted}: example `{yaml}` is not YAML: {e}"));
                if value.is_null() {
                    problems.push(format!("{wanted}: example `{yaml}` is null"));
                } else if let Err(e) = conforms(&value, prop, &schema) {
                    problems.push(format!("{wanted}: example `{yaml}`: {e}"));
                }
            }
            _ => problems.push(format!("{wanted}: {} examples", found.len())),
        }
    }
    for (k, _) in EXAMPLES {
        if !fields.iter().any(|(d, f, _)| format!("{d}.{f}") == *k) {
            problems.push(format!("{k}: example of a field the schema does not have"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_checker_refuses_a_wrong_example() {
    // The example test above is only as good as `conforms`: make sure it can fail.
    let schema = snapferry_plan::json_schema();
    let bucket = &schema["properties"]["bucket"];
    assert!(
        conforms(
            &serde_json::json!({"name": "b", "create": true}),
            bucket,
            &schema
        )
        .is_ok()
    );
    assert!(
        conforms(
            &serde_json::json!({"name": "b", "create": "yes"}),
            bucket,
            &schema
        )
        .is_err()
    );
    assert!(
        conforms(
            &serde_json::json!({"name": "b", "sse": "KMS"}),
            bucket,
            &schema
        )
        .is_err()
    );
    assert!(conforms(&serde_json::json!({"nmae": "b"}), bucket, &schema).is_err());
    assert!(conforms(&serde_json::json!({"create": true}), bucket, &schema).is_err());
}

#[test]
fn reference_states_types_defaults_and_links_to_sections() {
    let md = markdown_reference(&snapferry_plan::json_schema());
    let expect = [
        "| `version` | integer ≥ 0 | required | Version of the plan file format. Only `1` exists. | `version: 1` |",
        "| `create` | boolean | false: the bucket must exist | Create the bucket if it is missing. | `create: true` |",
        "| `on_conflict` | `fail`, `skip`, `rename`, `replace` | `fail` |",
        "| `name` | string | `{name}-{date}` |",
        "| `security_group_ids` | list of string | `[]` | Security groups. |",
        "| `bucket` | mapping, see [RawBucket](#bucket-rawbucket) | required |",
        "## bucket (RawBucket)",
        "`replications[].target.overrides`",
        "| `verify` | boolean or mapping, see [RawVerifyOptions](#verify-rawverifyoptions) | unset |",
        "## Top level",
        "[`plans/`](../plans/)",
    ];
    for line in expect {
        assert!(md.contains(line), "missing {line:?} in:\n{md}");
    }
    assert!(!md.contains("| — |"), "a field without an example:\n{md}");
    assert_eq!(
        md,
        markdown_reference(&snapferry_plan::json_schema()),
        "deterministic"
    );
}

/// The bodies of the fenced blocks of `language` in a Markdown document.
fn fenced_blocks(markdown: &str, language: &str) -> Vec<String> {
    let opening = format!("```{language}");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line == opening => current = Some(String::new()),
            Some(_) if line == "```" => blocks.push(current.take().unwrap()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

#[test]
fn every_plan_snippet_of_the_aws_setup_validates_inside_a_minimal_plan() {
    // The snippets are parts of a plan: each one's top-level keys replace those of a minimal
    // valid plan, and the result must pass every check of `snapferry validate`.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/aws-setup.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let blocks = fenced_blocks(&doc, "yaml");
    assert!(
        blocks.len() >= 4,
        "expected the VPC, cross-region, cross-account and KMS snippets, found {}",
        blocks.len()
    );
    for block in blocks {
        let mut plan: serde_yaml::Mapping = serde_yaml::from_str(
            "version: 1\nname: docs\nregion: us-east-1\nbucket: { name: acme-docs-snapshots }\n\
             source: { domain: docs-source }\ntarget: { domain: docs-target }\n",
        )
        .unwrap();
        let snippet: serde_yaml::Mapping = serde_yaml::from_str(&block)
            .unwrap_or_else(|e| panic!("snippet is not a YAML mapping: {e}\n{block}"));
        for (k, v) in snippet {
            plan.insert(k, v);
        }
        let text = serde_yaml::to_string(&plan).unwrap();
        if let Err(e) = snapferry_plan::parse("docs/aws-setup.md", &text) {
            panic!(
                "a snippet of docs/aws-setup.md does not validate:\n{block}\n{:?}",
                miette::Report::new(e)
            );
        }
    }
}

#[test]
fn a_snippet_with_a_made_up_key_is_refused() {
    // Guards the test above: a key the model does not have must fail the same way.
    let text = "version: 1\nname: docs\nregion: us-east-1\nbucket: { name: acme-docs-snapshots }\n\
                source: { domain: docs-source, bastion: jump }\ntarget: { domain: docs-target }\n";
    assert!(snapferry_plan::parse("x.yaml", text).is_err());
    assert_eq!(
        fenced_blocks("a\n```yaml\nk: v\n```\n```json\n{}\n```\n", "yaml"),
        ["k: v\n"]
    );
}

#[test]
fn every_policy_document_of_the_aws_setup_is_json_and_the_operator_policy_is_complete() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/aws-setup.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let documents = fenced_blocks(&doc, "json");
    assert!(
        documents.len() >= 6,
        "found {} json blocks",
        documents.len()
    );
    let parsed: Vec<Value> = documents
        .iter()
        .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("not JSON ({e}):\n{d}")))
        .collect();
    // The first document is the operator's policy: it grants every action snapferry calls
    // (that it grants nothing more, and each is needed, is `tests/e2e/least_privilege.rs`).
    let actions: Vec<&str> = parsed[0]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| match &s["Action"] {
            Value::String(a) => vec![a.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        })
        .collect();
    for wanted in [
        "iam:CreateRole",
        "iam:GetRole",
        "iam:UpdateAssumeRolePolicy",
        "iam:PutRolePolicy",
        "iam:GetRolePolicy",
        "iam:DeleteRolePolicy",
        "iam:TagRole",
        "iam:DeleteRole",
        "iam:PassRole",
        "s3:GetBucketPolicy",
        "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy",
        "s3:CreateBucket",
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",
        "es:ESHttpGet",
        "es:ESHttpPut",
        "es:ESHttpPost",
        "es:ESHttpDelete",
        "es:CreateDomain",
        "es:DescribeDomain",
        "es:AddTags",
        "es:ListTags",
        "es:UpdateDomainConfig",
        "iam:CreateServiceLinkedRole",
        "kms:DescribeKey",
        "kms:CreateGrant",
        "ec2:DescribeVpcs",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
    ] {
        assert!(
            actions.contains(&wanted),
            "the operator policy lacks {wanted}"
        );
    }
    let pass_role = parsed[0]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Action"] == "iam:PassRole")
        .unwrap();
    assert_eq!(
        pass_role["Condition"]["StringEquals"]["iam:PassedToService"],
        "es.amazonaws.com"
    );
    assert!(
        !actions.contains(&"es:DeleteDomain"),
        "DeleteDomain is granted separately, only for destroy --include-target-domain"
    );
}
