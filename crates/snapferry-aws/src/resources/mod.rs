//! The resource kinds on the engine's [`Resource`] contract, and their registry: the one place
//! that knows every kind — its name, whether its live state is volatile, how its resource is
//! built from a node of the plan's step graph, and what `destroy` does with it. A new kind is a
//! new `NodeSpec` variant in the plan crate, its own file here, and its entries in this file;
//! the matches below are exhaustive, so forgetting one does not compile.
//!
//! Every resource holds its node's complete desired configuration (from the plan) and an
//! [`Env`]: the SDK clients, the domain data-plane clients (found through `DescribeDomain`,
//! cached), the caller's account and the clock used to resolve snapshot-name templates.
//! `read` never mutates; `diff` is pure and, where it needs more than the live object
//! (the configuration of the source domain, the indices a selection matches), `read` puts
//! that into the observed value so `diff` stays a function of its arguments — and a recorded
//! live state can be planned from without a network (`tests/it/planner_golden.rs`).

mod alias_swap;
mod bucket_policy;
mod compat;
mod dashboards;
mod domain;
mod env;
mod iam_propagation;
mod ism_attach;
mod metadata;
mod repository;
mod restore;
mod retention;
mod role;
mod security;
mod snapshot;
mod verify;

use std::sync::Arc;

use snapferry_engine::{DestroyAction, ExecGraph, GraphError, Inputs, NodeId, Resource};
use snapferry_plan::{NodeSpec, Plan, RoleSpec};

pub use domain::{Block, DomainShape, DomainUpdate, Fate, FieldDiff, members};
pub use env::{DEFAULT_RATE_PER_SECOND, Env, chain, endpoint_of, fail, fail_domain};
pub(crate) use env::{
    changed, created, created_unknown, missing_source, outputs, refused_by_security, refused_change,
};
pub use security::{ROLE_NAME as SECURITY_ROLE, role_body as security_role_body};

/// What snapferry knows about a kind besides its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// The kind part of its node ids (`role/...`), in the state and in every message.
    pub name: &'static str,
    /// Its live state moves on its own (document counts of a source in use): a fresh read at
    /// apply time is not compared field by field with the approved plan.
    pub volatile: bool,
}

pub const ROLE: Kind = Kind {
    name: "role",
    volatile: false,
};
pub const BUCKET_POLICY: Kind = Kind {
    name: "bucket_policy",
    volatile: false,
};
pub const REPOSITORY: Kind = Kind {
    name: "repository",
    volatile: false,
};
pub const SNAPSHOT: Kind = Kind {
    name: "snapshot",
    volatile: false,
};
pub const DOMAIN: Kind = Kind {
    name: "domain",
    volatile: false,
};
pub const RESTORE: Kind = Kind {
    name: "restore",
    volatile: false,
};
pub const VERIFY: Kind = Kind {
    name: "verify",
    volatile: true,
};
pub const METADATA: Kind = Kind {
    name: "metadata",
    volatile: false,
};
pub const ISM_ATTACH: Kind = Kind {
    name: "ism_attach",
    volatile: false,
};
pub const DASHBOARDS: Kind = Kind {
    name: "dashboards",
    volatile: false,
};
pub const SECURITY: Kind = Kind {
    name: "security",
    volatile: false,
};

/// Every kind, in graph order.
pub const KINDS: [Kind; 11] = [
    ROLE,
    BUCKET_POLICY,
    SECURITY,
    REPOSITORY,
    SNAPSHOT,
    DOMAIN,
    METADATA,
    RESTORE,
    VERIFY,
    ISM_ATTACH,
    DASHBOARDS,
];

/// The kind of a node of the plan's step graph.
pub fn kind_of(spec: &NodeSpec) -> Kind {
    match spec {
        NodeSpec::Role(_) => ROLE,
        NodeSpec::BucketPolicy(_) => BUCKET_POLICY,
        NodeSpec::Repository(_) => REPOSITORY,
        NodeSpec::Snapshot(_) => SNAPSHOT,
        NodeSpec::Domain(_) => DOMAIN,
        NodeSpec::Restore(_) => RESTORE,
        NodeSpec::Verify(_) => VERIFY,
        NodeSpec::Metadata(_) => METADATA,
        NodeSpec::IsmAttach(_) => ISM_ATTACH,
        NodeSpec::Dashboards(_) => DASHBOARDS,
        NodeSpec::Security(_) => SECURITY,
    }
}

/// The live resource of one node.
fn resource(id: NodeId, fingerprint: String, spec: &NodeSpec, env: &Arc<Env>) -> Arc<dyn Resource> {
    match spec {
        NodeSpec::Role(spec) => Arc::new(role::RoleResource::new(id, fingerprint, spec, env)),
        NodeSpec::BucketPolicy(spec) => Arc::new(bucket_policy::BucketPolicyResource::new(
            id,
            fingerprint,
            spec,
            env,
        )),
        NodeSpec::Repository(spec) => Arc::new(repository::RepositoryResource::new(
            id,
            fingerprint,
            spec,
            env,
        )),
        NodeSpec::Snapshot(spec) => {
            Arc::new(snapshot::SnapshotResource::new(id, fingerprint, spec, env))
        }
        NodeSpec::Domain(spec) => Arc::new(domain::DomainResource::new(id, fingerprint, spec, env)),
        NodeSpec::Restore(spec) => {
            Arc::new(restore::RestoreResource::new(id, fingerprint, spec, env))
        }
        NodeSpec::Verify(spec) => Arc::new(verify::VerifyResource::new(id, fingerprint, spec, env)),
        NodeSpec::Metadata(spec) => {
            Arc::new(metadata::MetadataResource::new(id, fingerprint, spec, env))
        }
        NodeSpec::IsmAttach(spec) => Arc::new(ism_attach::IsmAttachResource::new(
            id,
            fingerprint,
            spec,
            env,
        )),
        NodeSpec::Dashboards(spec) => Arc::new(dashboards::DashboardsResource::new(
            id,
            fingerprint,
            spec,
            env,
        )),
        NodeSpec::Security(spec) => {
            Arc::new(security::SecurityResource::new(id, fingerprint, spec, env))
        }
    }
}

/// Turns the plan's step graph into the engine's graph of live resources.
pub fn build_graph(plan: &Plan, env: Arc<Env>) -> Result<ExecGraph, GraphError> {
    let steps = plan.graph();
    let mut builder = ExecGraph::builder();
    for node in steps.nodes() {
        builder.add(resource(
            node.id.clone(),
            node.fingerprint(),
            &node.spec,
            &env,
        ));
    }
    for (from, to) in steps.edges() {
        builder.depend(&to, &from);
    }
    builder.build()
}

/// The choices `snapferry destroy` offers on top of each kind's policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DestroyFlags {
    /// `--keep-snapshot`: the snapshot stays in the bucket.
    pub keep_snapshot: bool,
    /// `--include-target-domain`: the target domain goes too.
    pub include_target_domain: bool,
}

/// What `destroy` does with a node the state records, and the line that says so (empty for
/// [`DestroyAction::Forget`]). `recorded` holds, under the node's own id, the outputs and pins
/// the state recorded for it (the snapshot's name cannot be resolved again). Each kind's
/// resource checks ownership again when it destroys (tags, `Sid` prefix): this only decides.
pub fn destroy_policy(
    plan: &Plan,
    id: &NodeId,
    spec: &NodeSpec,
    recorded: &Inputs,
    flags: DestroyFlags,
) -> (DestroyAction, String) {
    match spec {
        NodeSpec::Role(spec) => match &spec.role {
            RoleSpec::Managed { name, .. } => (
                DestroyAction::Destroy,
                format!(
                    "inline policy {} and role {name} (only while tagged managed-by: snapferry, \
                     snapferry-plan: {})",
                    role::INLINE_POLICY_NAME,
                    plan.name
                ),
            ),
            RoleSpec::Existing { arn, .. } => (
                DestroyAction::Release,
                format!("role {arn} was given by ARN; snapferry did not create it"),
            ),
        },
        NodeSpec::BucketPolicy(spec) => (
            DestroyAction::Destroy,
            format!(
                "the statements with Sid {}* in the policy of bucket {}; the bucket and its \
                 other statements stay",
                crate::policy::owned_sid_prefix(&plan.name),
                spec.bucket.name
            ),
        ),
        NodeSpec::Repository(spec) => (
            DestroyAction::Destroy,
            format!(
                "registration of repository {} on domain {} (the files in the bucket stay)",
                spec.repository.name, spec.domain.name
            ),
        ),
        NodeSpec::Snapshot(spec) => {
            let name = recorded
                .get(id, "name")
                .and_then(|v| v.as_known().and_then(|v| v.as_str().map(str::to_owned)));
            match name {
                None => (DestroyAction::Forget, String::new()),
                Some(name) if flags.keep_snapshot => (
                    DestroyAction::Release,
                    format!(
                        "--keep-snapshot: snapshot {name} stays in bucket {}",
                        plan.bucket.name
                    ),
                ),
                Some(name) => (
                    DestroyAction::Destroy,
                    format!(
                        "snapshot {name} in repository {} on domain {}",
                        spec.repository, spec.domain.name
                    ),
                ),
            }
        }
        NodeSpec::Domain(spec) if flags.include_target_domain => (
            DestroyAction::Destroy,
            format!(
                "target domain {} in {}, with every index in it (AWS takes minutes to delete \
                 it; this does not wait)",
                spec.domain.name, spec.domain.region
            ),
        ),
        NodeSpec::Domain(spec) => (
            DestroyAction::Keep,
            format!(
                "target domain {} stays; --include-target-domain deletes it",
                spec.domain.name
            ),
        ),
        NodeSpec::Restore(_) | NodeSpec::Verify(_) | NodeSpec::IsmAttach(_) => {
            (DestroyAction::Forget, String::new())
        }
        NodeSpec::Metadata(spec) => (
            DestroyAction::Release,
            format!(
                "the templates, pipelines, ISM policies and scripts copied to domain {} stay in it (they go with the domain)",
                spec.target.name
            ),
        ),
        NodeSpec::Dashboards(spec) => (
            DestroyAction::Release,
            format!(
                "the saved objects copied to domain {} stay in it (they go with the domain)",
                spec.target.name
            ),
        ),
        NodeSpec::Security(spec) => (
            DestroyAction::Destroy,
            format!(
                "the entries snapferry added to security mapping {role} on domain {} (and role \
                 {role} if it created it and nobody else is mapped); entries that were there \
                 before stay",
                spec.domain.name,
                role = security::ROLE_NAME
            ),
        ),
    }
}
