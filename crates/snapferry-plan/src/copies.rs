//! The `metadata` and `dashboards` sections of a replication: what of the cluster around the
//! indices the target gets (templates, ingest pipelines, ISM policies, stored scripts; the
//! Dashboards saved objects). A restore with `include_global_state: false` brings none of it.
//!
//! Both sections are off unless the plan writes them (`metadata: true` or a mapping), so a plan
//! written before they existed plans the same steps, and no permission it was not given is
//! needed. Each checker returns the checked section and the problems it found, each at the
//! dotted path of the value at fault; `check.rs` places them.

use crate::error::Problem;
use crate::plan::{DashboardsSpec, MetadataSpec};
use crate::raw::{RawDashboards, RawMetadata};

/// The name patterns of an object family: `*` matches any run of characters, a leading `-`
/// excludes. Names are the server's (template names, pipeline ids, policy ids), so only what can
/// never be part of a name is refused.
pub fn check_name_pattern(pattern: &str) -> Result<(), String> {
    let body = pattern.strip_prefix('-').unwrap_or(pattern);
    if body.is_empty() {
        return Err("it is empty".into());
    }
    if let Some(c) = body.chars().find(|c| c.is_whitespace() || *c == ',') {
        return Err(format!("it contains {c:?}, which no object name contains"));
    }
    Ok(())
}

fn patterns(
    path: &str,
    written: Option<&Vec<String>>,
    found: &mut Vec<(String, Problem)>,
) -> Vec<String> {
    let Some(list) = written else {
        return vec!["*".to_owned()];
    };
    for (i, pattern) in list.iter().enumerate() {
        if let Err(reason) = check_name_pattern(pattern) {
            found.push((
                format!("{path}[{i}]"),
                Problem::InvalidNamePattern {
                    pattern: pattern.clone(),
                    reason,
                },
            ));
        }
    }
    list.clone()
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

/// The checked `metadata` section (`None` when off) and its problems.
pub fn metadata(
    prefix: &str,
    raw: Option<&RawMetadata>,
) -> (Option<MetadataSpec>, Vec<(String, Problem)>) {
    let mut found = Vec::new();
    let options = match raw {
        None | Some(RawMetadata::Enabled(false)) => return (None, found),
        Some(RawMetadata::Enabled(true)) => Default::default(),
        Some(RawMetadata::Options(o)) if o.enabled == Some(false) => return (None, found),
        Some(RawMetadata::Options(o)) => o.clone(),
    };
    let path = join(prefix, "metadata");
    let mut family =
        |key: &str, written: Option<&Vec<String>>| patterns(&join(&path, key), written, &mut found);
    let spec = MetadataSpec {
        index_templates: family("index_templates", options.index_templates.as_ref()),
        component_templates: family("component_templates", options.component_templates.as_ref()),
        legacy_templates: family("legacy_templates", options.legacy_templates.as_ref()),
        pipelines: family("pipelines", options.pipelines.as_ref()),
        ism_policies: family("ism_policies", options.ism_policies.as_ref()),
        scripts: family("scripts", options.scripts.as_ref()),
        prune: options.prune.unwrap_or(false),
    };
    (Some(spec), found)
}

/// The checked `dashboards` section (`None` when off) and its problems.
pub fn dashboards(
    prefix: &str,
    raw: Option<&RawDashboards>,
) -> (Option<DashboardsSpec>, Vec<(String, Problem)>) {
    let mut found = Vec::new();
    let options = match raw {
        None | Some(RawDashboards::Enabled(false)) => return (None, found),
        Some(RawDashboards::Enabled(true)) => Default::default(),
        Some(RawDashboards::Options(o)) if o.enabled == Some(false) => return (None, found),
        Some(RawDashboards::Options(o)) => o.clone(),
    };
    let path = join(prefix, "dashboards");
    let mut names = |key: &str, written: Option<&Vec<String>>| -> Option<Vec<String>> {
        let list = written?;
        let at = join(&path, key);
        if list.is_empty() {
            found.push((
                at.clone(),
                Problem::EmptyList {
                    field: key.to_owned(),
                },
            ));
        }
        for (i, name) in list.iter().enumerate() {
            if let Err(reason) = check_name_pattern(name).and_then(|()| {
                if name.contains('*') || name.starts_with('-') {
                    Err("it is a pattern; name each one".into())
                } else {
                    Ok(())
                }
            }) {
                found.push((
                    format!("{at}[{i}]"),
                    Problem::InvalidNamePattern {
                        pattern: name.clone(),
                        reason,
                    },
                ));
            }
        }
        let mut list = list.clone();
        list.dedup();
        Some(list)
    };
    let tenants =
        names("tenants", options.tenants.as_ref()).unwrap_or_else(|| vec!["global".into()]);
    let types = names("types", options.types.as_ref());
    let spec = DashboardsSpec {
        tenants,
        overwrite: options.overwrite.unwrap_or(true),
        types,
    };
    (Some(spec), found)
}
