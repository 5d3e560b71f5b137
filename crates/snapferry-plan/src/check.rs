//! From the plan as written to the checked [`Plan`]: defaults applied, names
//! derived from `name`, every rule checked. Problems are collected, never
//! returned at the first one, each with the dotted path of the value at fault
//! so the caller can place it in the file.

use std::collections::{BTreeMap, HashMap};

use chrono::{TimeZone, Utc};

use crate::engine_version::{EngineVersion, can_restore};
use crate::error::Problem;
use crate::names::{self, SYSTEM_INDEX_EXCLUSIONS};
use crate::plan::*;
use crate::raw::*;
use crate::template::{Part, Template};

/// A problem and the path of the value at fault; `key` marks problems about a
/// key being present (pointing at the key reads better than at its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub problem: Problem,
    pub path: String,
    pub key: bool,
}

#[derive(Default)]
struct Checker {
    found: Vec<Found>,
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

impl Checker {
    fn at(&mut self, path: impl Into<String>, problem: Problem) {
        self.found.push(Found {
            problem,
            path: path.into(),
            key: false,
        });
    }

    fn at_key(&mut self, path: impl Into<String>, problem: Problem) {
        self.found.push(Found {
            problem,
            path: path.into(),
            key: true,
        });
    }

    fn rule(
        &mut self,
        path: &str,
        result: Result<(), String>,
        problem: impl FnOnce(String) -> Problem,
    ) -> bool {
        match result {
            Ok(()) => true,
            Err(reason) => {
                self.at(path, problem(reason));
                false
            }
        }
    }

    fn region(&mut self, path: &str, region: Option<&String>, default: &str) -> String {
        match region {
            Some(r) => {
                self.rule(path, names::check_region(r), |reason| {
                    Problem::InvalidRegion {
                        region: r.clone(),
                        reason,
                    }
                });
                r.clone()
            }
            None => default.to_owned(),
        }
    }

    fn engine_version(&mut self, path: &str, text: Option<&String>) -> Option<EngineVersion> {
        let text = text?;
        match EngineVersion::parse(text) {
            Ok(v) => Some(v),
            Err(e) => {
                self.at(
                    path,
                    Problem::InvalidEngineVersion {
                        version: text.clone(),
                        reason: e.to_string(),
                    },
                );
                None
            }
        }
    }

    fn access(
        &mut self,
        prefix: &str,
        endpoint: Option<&String>,
        proxy: Option<&String>,
        assume: Option<&String>,
        external_id: Option<&String>,
    ) {
        if let Some(id) = external_id {
            let path = join(prefix, "external_id");
            if assume.is_none() {
                self.at_key(path.clone(), Problem::ExternalIdWithoutRole);
            }
            self.rule(&path, names::check_external_id(id), |reason| {
                Problem::InvalidExternalId { reason }
            });
        }
        if let Some(e) = endpoint {
            self.rule(
                &join(prefix, "endpoint"),
                names::check_endpoint(e),
                |reason| Problem::InvalidEndpoint {
                    endpoint: e.clone(),
                    reason,
                },
            );
        }
        if let Some(p) = proxy {
            self.rule(&join(prefix, "proxy"), names::check_proxy(p), |reason| {
                Problem::InvalidProxy {
                    proxy: p.clone(),
                    reason,
                }
            });
        }
        if let Some(a) = assume {
            self.rule(
                &join(prefix, "assume_role_arn"),
                names::check_role_arn(a),
                |reason| Problem::InvalidRoleArn {
                    arn: a.clone(),
                    reason,
                },
            );
        }
    }

    fn domain_name(&mut self, path: &str, name: &str) {
        self.rule(path, names::check_domain_name(name), |reason| {
            Problem::InvalidDomainName {
                name: name.to_owned(),
                reason,
            }
        });
    }

    fn indices(
        &mut self,
        path: &str,
        written: Option<&Vec<String>>,
        exclude_system: bool,
    ) -> Vec<String> {
        let mut out = match written {
            None => vec!["*".to_owned()],
            Some(list) if list.is_empty() => {
                self.at(
                    path,
                    Problem::EmptyList {
                        field: path.rsplit('.').next().unwrap_or(path).to_owned(),
                    },
                );
                vec!["*".to_owned()]
            }
            Some(list) => {
                for (i, pattern) in list.iter().enumerate() {
                    self.rule(
                        &format!("{path}[{i}]"),
                        names::check_index_pattern(pattern),
                        |reason| Problem::InvalidIndexPattern {
                            pattern: pattern.clone(),
                            reason,
                        },
                    );
                }
                list.clone()
            }
        };
        if exclude_system {
            for exclusion in SYSTEM_INDEX_EXCLUSIONS {
                if !out.iter().any(|p| p == exclusion) {
                    out.push((*exclusion).to_owned());
                }
            }
        }
        out
    }

    fn role(&mut self, plan_name: &str, raw: Option<&RawRole>) -> RoleSpec {
        let default = RawRole::default();
        let raw = raw.unwrap_or(&default);
        if let Some(arn) = &raw.arn {
            let others = [
                ("name", raw.name.is_some()),
                ("path", raw.path.is_some()),
                ("trusted_services", raw.trusted_services.is_some()),
                ("permissions_boundary", raw.permissions_boundary.is_some()),
                ("tags", raw.tags.is_some()),
            ];
            for (field, set) in others {
                if set {
                    self.at_key(
                        format!("role.{field}"),
                        Problem::ArnWithRoleFields {
                            field: field.to_owned(),
                        },
                    );
                }
            }
            self.rule("role.arn", names::check_role_arn(arn), |reason| {
                Problem::InvalidRoleArn {
                    arn: arn.clone(),
                    reason,
                }
            });
            return RoleSpec::Existing {
                arn: arn.clone(),
                name: names::role_name_of_arn(arn).to_owned(),
            };
        }
        let name = raw
            .name
            .clone()
            .unwrap_or_else(|| format!("{plan_name}-snapshot-role"));
        if raw.name.is_some() {
            self.rule("role.name", names::check_role_name(&name), |reason| {
                Problem::InvalidRoleName {
                    name: name.clone(),
                    reason,
                }
            });
        }
        let path = raw.path.clone().unwrap_or_else(|| "/".to_owned());
        self.rule("role.path", names::check_role_path(&path), |reason| {
            Problem::InvalidRolePath {
                path: path.clone(),
                reason,
            }
        });
        let mut trusted = vec!["es.amazonaws.com".to_owned()];
        for (i, service) in raw.trusted_services.iter().flatten().enumerate() {
            let ok = service.strip_suffix(".amazonaws.com").is_some_and(|head| {
                !head.is_empty()
                    && head.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'
                    })
            });
            if !ok {
                self.at(
                    format!("role.trusted_services[{i}]"),
                    Problem::InvalidTrustedService {
                        service: service.clone(),
                    },
                );
            }
            trusted.push(service.clone());
        }
        trusted.sort();
        trusted.dedup();
        if let Some(boundary) = &raw.permissions_boundary {
            self.rule(
                "role.permissions_boundary",
                names::check_policy_arn(boundary),
                |reason| Problem::InvalidPolicyArn {
                    arn: boundary.clone(),
                    reason,
                },
            );
        }
        RoleSpec::Managed {
            name,
            path,
            trusted_services: trusted,
            permissions_boundary: raw.permissions_boundary.clone(),
            tags: raw.tags.clone().unwrap_or_default(),
        }
    }

    fn bucket(&mut self, region: &str, raw: &RawBucket) -> BucketSpec {
        self.rule(
            "bucket.name",
            names::check_bucket_name(&raw.name),
            |reason| Problem::InvalidBucketName {
                name: raw.name.clone(),
                reason,
            },
        );
        let bucket_region = self.region("bucket.region", raw.region.as_ref(), region);
        let base_path = raw
            .base_path
            .as_deref()
            .map(|p| p.trim_matches('/').to_owned())
            .filter(|p| !p.is_empty());
        let encryption = match raw.sse {
            None => None,
            Some(RawSse::Aes256) => Some(BucketEncryption::Aes256),
            Some(RawSse::AwsKms) => Some(BucketEncryption::Kms {
                key_id: raw.kms_key_id.clone(),
            }),
        };
        if raw.kms_key_id.is_some() && raw.sse != Some(RawSse::AwsKms) {
            self.at_key("bucket.kms_key_id", Problem::KmsKeyWithoutKms);
        } else if let Some(key) = raw
            .kms_key_id
            .as_ref()
            .filter(|k| k.starts_with("alias/") || k.contains(":alias/"))
        {
            // The role's inline policy must name the key ARN (see snapferry-aws's policy.rs).
            self.at(
                "bucket.kms_key_id",
                Problem::KmsKeyAlias { key: key.clone() },
            );
        }
        BucketSpec {
            name: raw.name.clone(),
            region: bucket_region,
            base_path,
            create: raw.create.unwrap_or(false),
            encryption,
        }
    }

    fn state(&mut self, plan_name: &str, region: &str, raw: Option<&RawState>) -> StateLocation {
        let default = StateLocation::Local {
            path: format!(".snapferry/{plan_name}.state.json"),
        };
        let Some(raw) = raw else { return default };
        let count = usize::from(raw.local.is_some()) + usize::from(raw.s3.is_some());
        if count != 1 {
            self.at("state", Problem::StateLocationCount { count });
            return default;
        }
        if let Some(local) = &raw.local {
            if local.path.trim().is_empty() {
                self.at(
                    "state.local.path",
                    Problem::MissingField {
                        field: "state.local.path".into(),
                    },
                );
            }
            return StateLocation::Local {
                path: local.path.clone(),
            };
        }
        let s3 = raw.s3.as_ref().expect("count is 1");
        self.rule(
            "state.s3.bucket",
            names::check_bucket_name(&s3.bucket),
            |reason| Problem::InvalidBucketName {
                name: s3.bucket.clone(),
                reason,
            },
        );
        if s3.key.trim().is_empty() {
            self.at(
                "state.s3.key",
                Problem::MissingField {
                    field: "state.s3.key".into(),
                },
            );
        }
        let region = self.region("state.s3.region", s3.region.as_ref(), region);
        let lease = s3
            .lock_lease_seconds
            .unwrap_or(crate::plan::DEFAULT_LOCK_LEASE_SECONDS);
        if !crate::plan::LOCK_LEASE_SECONDS.contains(&lease) {
            self.at(
                "state.s3.lock_lease_seconds",
                Problem::WrongValue {
                    path: "state.s3.lock_lease_seconds".into(),
                    expected: format!(
                        "a number of seconds from {} to {}",
                        crate::plan::LOCK_LEASE_SECONDS.start(),
                        crate::plan::LOCK_LEASE_SECONDS.end()
                    ),
                    found: lease.to_string(),
                },
            );
        }
        StateLocation::S3 {
            bucket: s3.bucket.clone(),
            key: s3.key.clone(),
            region,
            lock_lease_seconds: lease,
        }
    }

    fn repository(
        &mut self,
        path: &str,
        plan_name: &str,
        raw: Option<&RawRepository>,
        bucket: &BucketSpec,
        source: &str,
    ) -> RepositorySpec {
        let name = raw
            .and_then(|r| r.name.clone())
            .unwrap_or_else(|| format!("snapferry-{plan_name}"));
        if raw.is_some_and(|r| r.name.is_some()) {
            self.rule(
                &join(path, "name"),
                names::check_repository_name(&name),
                |reason| Problem::InvalidRepositoryName {
                    name: name.clone(),
                    reason,
                },
            );
        }
        let settings = raw.and_then(|r| r.settings.clone()).unwrap_or_default();
        for key in ["bucket", "region", "role_arn"] {
            if settings.contains_key(key) {
                self.at_key(
                    format!("{}.{key}", join(path, "settings")),
                    Problem::ReservedRepositorySetting {
                        key: key.to_owned(),
                    },
                );
            }
        }
        let base_path = match settings.get("base_path").and_then(|v| v.as_str()) {
            Some(written) => written.trim_matches('/').to_owned(),
            None => match &bucket.base_path {
                Some(base) => format!("{base}/{source}"),
                None => source.to_owned(),
            },
        };
        let settings = settings
            .into_iter()
            .filter(|(k, _)| k != "base_path")
            .collect();
        RepositorySpec {
            name,
            base_path,
            settings,
        }
    }

    fn snapshot(&mut self, prefix: &str, name: &str, raw: Option<&RawSnapshot>) -> SnapshotSpec {
        let default = RawSnapshot::default();
        let raw = raw.unwrap_or(&default);
        let path = join(prefix, "snapshot.name");
        let text = raw
            .name
            .clone()
            .unwrap_or_else(|| "{name}-{date}".to_owned());
        let template = match Template::parse(&text) {
            Ok(t) => {
                let mut literal_ok = true;
                for part in t.parts() {
                    if let Part::Literal(lit) = part {
                        literal_ok &=
                            self.rule(&path, names::check_snapshot_chars(lit), |reason| {
                                Problem::InvalidSnapshotName {
                                    name: text.clone(),
                                    reason,
                                }
                            });
                    }
                }
                // The default template gives a valid name for every valid replication
                // name, and an invalid one is reported where it is written.
                if literal_ok && raw.name.is_some() {
                    let sample = t.resolve(name, sample_time());
                    self.rule(&path, names::check_snapshot_name(&sample), |reason| {
                        Problem::InvalidSnapshotName {
                            name: sample.clone(),
                            reason,
                        }
                    });
                }
                t
            }
            Err(e) => {
                self.at(
                    &path,
                    Problem::InvalidTemplate {
                        template: text.clone(),
                        reason: e.to_string(),
                    },
                );
                Template::parse("{name}-{date}").expect("default template parses")
            }
        };
        if raw.keep == Some(0) {
            self.at(join(prefix, "snapshot.keep"), Problem::KeepZero);
        }
        let exclude_system = !raw.include_system_indices.unwrap_or(false);
        SnapshotSpec {
            template,
            indices: self.indices(
                &join(prefix, "snapshot.indices"),
                raw.indices.as_ref(),
                exclude_system,
            ),
            include_global_state: raw.include_global_state.unwrap_or(false),
            partial: raw.partial.unwrap_or(false),
            keep: raw.keep,
        }
    }

    fn restore(
        &mut self,
        prefix: &str,
        raw: Option<&RawRestore>,
        exclude_system: bool,
    ) -> RestoreSpec {
        let default = RawRestore::default();
        let raw = raw.unwrap_or(&default);
        let on_conflict = raw.on_conflict.unwrap_or_default();
        if let Some(pattern) = &raw.rename_pattern
            && let Err(e) = regex::Regex::new(pattern)
        {
            let reason = e
                .to_string()
                .lines()
                .last()
                .unwrap_or("invalid")
                .trim()
                .trim_start_matches("error: ")
                .to_owned();
            self.at(
                join(prefix, "restore.rename_pattern"),
                Problem::InvalidRenamePattern {
                    pattern: pattern.clone(),
                    reason,
                },
            );
        }
        if raw.rename_replacement.is_some() && raw.rename_pattern.is_none() {
            self.at_key(
                join(prefix, "restore.rename_replacement"),
                Problem::ReplacementWithoutPattern,
            );
        }
        if on_conflict == OnConflict::Rename
            && (raw.rename_pattern.is_none() || raw.rename_replacement.is_none())
        {
            self.at(
                join(prefix, "restore.on_conflict"),
                Problem::RenameWithoutPattern,
            );
        }
        let strategy = raw.strategy.unwrap_or_default();
        if strategy == RestoreStrategy::AliasSwap && on_conflict == OnConflict::Rename {
            self.at(
                join(prefix, "restore.on_conflict"),
                Problem::RenameWithAliasSwap,
            );
        }
        if strategy == RestoreStrategy::InPlace && raw.skip_unchanged == Some(true) {
            self.at(
                join(prefix, "restore.skip_unchanged"),
                Problem::SkipUnchangedInPlace,
            );
        }
        let rename = match (&raw.rename_pattern, &raw.rename_replacement) {
            (Some(pattern), replacement) => Some(Rename {
                pattern: pattern.clone(),
                replacement: replacement.clone().unwrap_or_else(|| "$0".to_owned()),
            }),
            _ => None,
        };
        RestoreSpec {
            indices: self.indices(
                &join(prefix, "restore.indices"),
                raw.indices.as_ref(),
                exclude_system,
            ),
            rename,
            index_settings: raw.index_settings.clone().unwrap_or_default(),
            ignore_index_settings: raw.ignore_index_settings.clone().unwrap_or_default(),
            on_conflict,
            strategy,
            skip_unchanged: strategy == RestoreStrategy::AliasSwap
                && raw.skip_unchanged.unwrap_or(true),
        }
    }

    fn domain_config(&mut self, path: &str, raw: Option<&RawDomainConfig>) -> DomainConfig {
        let Some(raw) = raw else {
            return DomainConfig::default();
        };
        DomainConfig {
            engine_version: self
                .engine_version(&join(path, "engine_version"), raw.engine_version.as_ref()),
            cluster_config: raw.cluster_config.clone(),
            ebs: raw.ebs.clone(),
            access_policy: raw.access_policy.clone(),
            vpc: raw.vpc.clone(),
            encryption_at_rest: raw.encryption_at_rest.clone(),
            node_to_node_encryption: raw.node_to_node_encryption,
            enforce_https: raw.enforce_https,
            advanced_options: raw.advanced_options.clone().unwrap_or_default(),
            tags: raw.tags.clone().unwrap_or_default(),
            fine_grained_access_control: raw.fine_grained_access_control.as_ref().map(|f| {
                self.fine_grained_access_control(&join(path, "fine_grained_access_control"), f)
            }),
        }
    }

    /// The master user: exactly one of an ARN or an internal user with a password source.
    fn fine_grained_access_control(
        &mut self,
        path: &str,
        raw: &RawFineGrainedAccessControl,
    ) -> FineGrainedAccessControl {
        let problem = |this: &mut Self, key: &str, reason: &str| {
            this.at(
                join(path, key),
                Problem::InvalidMasterUser {
                    reason: reason.to_owned(),
                },
            );
        };
        let password = raw
            .master_user_password
            .as_ref()
            .and_then(|source| self.secret_source(&join(path, "master_user_password"), source));
        let master = match (&raw.master_user_arn, &raw.master_user_name, password) {
            (None, None, None) => None,
            (Some(arn), None, None) => {
                if !(arn.starts_with("arn:") && arn.contains(":iam::")) {
                    problem(
                        self,
                        "master_user_arn",
                        "an IAM user or role ARN is needed (arn:aws:iam::<account>:role/<name>)",
                    );
                }
                Some(MasterUser::Arn(arn.clone()))
            }
            (None, Some(name), Some(password)) => Some(MasterUser::Internal {
                name: name.clone(),
                password,
            }),
            (None, Some(_), None) => {
                if raw.master_user_password.is_none() {
                    problem(
                        self,
                        "master_user_name",
                        "an internal master user needs `master_user_password: { env: VAR }` \
                         or `master_user_password: { secrets_manager: <secret ARN or name> }`",
                    );
                }
                None
            }
            (None, None, Some(_)) => {
                problem(
                    self,
                    "master_user_password",
                    "a password belongs to an internal master user: add `master_user_name`",
                );
                None
            }
            (Some(_), Some(_), _) | (Some(_), None, Some(_)) => {
                problem(
                    self,
                    "master_user_arn",
                    "the master is either an IAM ARN or an internal user, not both",
                );
                None
            }
        };
        if raw.enabled == Some(false) && master.is_some() {
            problem(
                self,
                "enabled",
                "a master user is only for fine-grained access control that is enabled",
            );
        }
        FineGrainedAccessControl {
            enabled: raw.enabled,
            master,
        }
    }

    /// Where the master password comes from: exactly one of `env` or `secrets_manager`, `key`
    /// only with `secrets_manager`. `None` (with a problem at `path`) when the shape is wrong.
    fn secret_source(&mut self, path: &str, raw: &RawSecretSource) -> Option<SecretSource> {
        let mut problem = |key: Option<&str>, reason: &str| {
            let at = key.map_or_else(|| path.to_owned(), |key| join(path, key));
            self.at(
                at,
                Problem::InvalidMasterUser {
                    reason: reason.to_owned(),
                },
            );
            None
        };
        let blank = |v: &Option<String>| v.as_deref().is_some_and(|v| v.trim().is_empty());
        match (&raw.env, &raw.secrets_manager, &raw.key) {
            (Some(_), Some(_), _) => problem(
                Some("secrets_manager"),
                "`master_user_password` takes either `env` or `secrets_manager`, not both",
            ),
            (None, None, None) => problem(
                None,
                "`master_user_password` needs `env: VAR` or `secrets_manager: <secret ARN or name>`",
            ),
            (_, None, Some(_)) => problem(
                Some("key"),
                "`key` names a key of the JSON in a Secrets Manager secret: it goes with \
                 `secrets_manager`, not `env`",
            ),
            (Some(_), None, None) if blank(&raw.env) => problem(
                Some("env"),
                "name the environment variable that holds the password (`env: VAR`)",
            ),
            (Some(env), None, None) => Some(SecretSource::Env(env.clone())),
            (None, Some(_), _) if blank(&raw.secrets_manager) => problem(
                Some("secrets_manager"),
                "name the secret that holds the password (`secrets_manager: <secret ARN or name>`)",
            ),
            (None, Some(_), Some(_)) if blank(&raw.key) => problem(
                Some("key"),
                "name the key of the secret's JSON that holds the password, or leave `key` out \
                 to use the whole secret string",
            ),
            (None, Some(id), _)
                if id.starts_with("arn:")
                    && !(id.split(':').nth(2) == Some("secretsmanager")
                        && id.split(':').nth(5) == Some("secret")
                        && id.split(':').nth(3).is_some_and(|r| !r.is_empty())
                        && id.split(':').nth(4).is_some_and(|a| !a.is_empty())) =>
            {
                problem(
                    Some("secrets_manager"),
                    "a secret ARN is written arn:aws:secretsmanager:<region>:<account>:secret:<name>",
                )
            }
            (None, Some(id), key) => Some(SecretSource::SecretsManager {
                secret_id: id.clone(),
                key: key.clone(),
            }),
        }
    }

    fn target(&mut self, prefix: &str, region: &str, raw: &RawTarget) -> TargetSpec {
        let path = join(prefix, "target");
        self.domain_name(&join(&path, "domain"), &raw.domain);
        self.access(
            &path,
            raw.endpoint.as_ref(),
            raw.proxy.as_ref(),
            raw.assume_role_arn.as_ref(),
            raw.external_id.as_ref(),
        );
        let domain_region = self.region(&join(&path, "region"), raw.region.as_ref(), region);
        let from_source = raw.from_source.unwrap_or(true);
        let creation = if from_source {
            if raw.configuration.is_some() {
                self.at_key(
                    join(&path, "configuration"),
                    Problem::TargetConfigConflict {
                        field: "configuration".into(),
                        from_source,
                    },
                );
            }
            DomainCreation::FromSource {
                overrides: self.domain_config(&join(&path, "overrides"), raw.overrides.as_ref()),
            }
        } else {
            if raw.overrides.is_some() {
                self.at_key(
                    join(&path, "overrides"),
                    Problem::TargetConfigConflict {
                        field: "overrides".into(),
                        from_source,
                    },
                );
            }
            if raw.configuration.is_none() {
                self.at(
                    join(&path, "from_source"),
                    Problem::MissingField {
                        field: join(&path, "configuration"),
                    },
                );
            }
            DomainCreation::Explicit {
                configuration: self
                    .domain_config(&join(&path, "configuration"), raw.configuration.as_ref()),
            }
        };
        let domain = DomainRef {
            name: raw.domain.clone(),
            region: domain_region,
            endpoint: raw.endpoint.clone(),
            proxy: raw.proxy.clone(),
            assume_role_arn: raw.assume_role_arn.clone(),
            external_id: raw.external_id.clone(),
            engine_version: creation.config().engine_version,
        };
        if let Some(arn) = &raw.snapshot_role_arn {
            self.rule(
                &join(&path, "snapshot_role_arn"),
                names::check_role_arn(arn),
                |reason| Problem::InvalidRoleArn {
                    arn: arn.clone(),
                    reason,
                },
            );
        }
        TargetSpec {
            domain,
            creation,
            snapshot_role_arn: raw.snapshot_role_arn.clone(),
        }
    }

    fn source(&mut self, prefix: &str, region: &str, raw: &RawDomainRef) -> DomainRef {
        let path = join(prefix, "source");
        self.domain_name(&join(&path, "domain"), &raw.domain);
        self.access(
            &path,
            raw.endpoint.as_ref(),
            raw.proxy.as_ref(),
            raw.assume_role_arn.as_ref(),
            raw.external_id.as_ref(),
        );
        DomainRef {
            name: raw.domain.clone(),
            region: self.region(&join(&path, "region"), raw.region.as_ref(), region),
            endpoint: raw.endpoint.clone(),
            proxy: raw.proxy.clone(),
            assume_role_arn: raw.assume_role_arn.clone(),
            external_id: raw.external_id.clone(),
            engine_version: self
                .engine_version(&join(&path, "engine_version"), raw.engine_version.as_ref()),
        }
    }
}

/// The fixed time at which templates are resolved to check the result.
fn sample_time() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date")
}

/// The parts of one replication as written, wherever they were written.
struct RawParts<'a> {
    prefix: String,
    name: &'a str,
    source: &'a RawDomainRef,
    target: &'a RawTarget,
    repository: Option<&'a RawRepository>,
    repository_path: String,
    snapshot: Option<&'a RawSnapshot>,
    restore: Option<&'a RawRestore>,
    verify: Option<&'a RawVerify>,
    metadata: Option<&'a RawMetadata>,
    dashboards: Option<&'a RawDashboards>,
    security: Option<&'a RawSecurity>,
}

/// Checks a raw plan. Returns the plan, or every problem found.
pub fn check(raw: &RawPlan) -> Result<Plan, Vec<Found>> {
    let mut c = Checker::default();
    if raw.version != 1 {
        c.at(
            "version",
            Problem::UnsupportedVersion { found: raw.version },
        );
    }
    c.rule("name", names::check_plan_name(&raw.name), |reason| {
        Problem::InvalidName {
            name: raw.name.clone(),
            reason,
        }
    });
    c.rule("region", names::check_region(&raw.region), |reason| {
        Problem::InvalidRegion {
            region: raw.region.clone(),
            reason,
        }
    });
    let role = c.role(&raw.name, raw.role.as_ref());
    let bucket = c.bucket(&raw.region, &raw.bucket);
    let state = c.state(&raw.name, &raw.region, raw.state.as_ref());

    let mut parts = Vec::new();
    match &raw.replications {
        Some(list) => {
            let top = [
                ("source", raw.source.is_some()),
                ("target", raw.target.is_some()),
                ("snapshot", raw.snapshot.is_some()),
                ("restore", raw.restore.is_some()),
                ("verify", raw.verify.is_some()),
                ("metadata", raw.metadata.is_some()),
                ("dashboards", raw.dashboards.is_some()),
                ("security", raw.security.is_some()),
            ];
            for (field, set) in top {
                if set {
                    c.at_key(
                        field,
                        Problem::MixedLayout {
                            field: field.to_owned(),
                        },
                    );
                }
            }
            if list.is_empty() {
                c.at("replications", Problem::NoReplication);
            }
            for (i, r) in list.iter().enumerate() {
                let prefix = format!("replications[{i}]");
                c.rule(
                    &join(&prefix, "name"),
                    names::check_plan_name(&r.name),
                    |reason| Problem::InvalidName {
                        name: r.name.clone(),
                        reason,
                    },
                );
                let (repository, repository_path) = match &r.repository {
                    Some(own) => (Some(own), join(&prefix, "repository")),
                    None => (raw.repository.as_ref(), "repository".to_owned()),
                };
                parts.push(RawParts {
                    name: &r.name,
                    source: &r.source,
                    target: &r.target,
                    repository,
                    repository_path,
                    snapshot: r.snapshot.as_ref(),
                    restore: r.restore.as_ref(),
                    verify: r.verify.as_ref(),
                    metadata: r.metadata.as_ref(),
                    dashboards: r.dashboards.as_ref(),
                    security: r.security.as_ref(),
                    prefix,
                });
            }
        }
        None => match (&raw.source, &raw.target) {
            (Some(source), Some(target)) => parts.push(RawParts {
                prefix: String::new(),
                name: &raw.name,
                source,
                target,
                repository: raw.repository.as_ref(),
                repository_path: "repository".into(),
                snapshot: raw.snapshot.as_ref(),
                restore: raw.restore.as_ref(),
                verify: raw.verify.as_ref(),
                metadata: raw.metadata.as_ref(),
                dashboards: raw.dashboards.as_ref(),
                security: raw.security.as_ref(),
            }),
            (None, None) => c.at("", Problem::NoReplication),
            (None, Some(_)) => c.at(
                "",
                Problem::MissingField {
                    field: "source".into(),
                },
            ),
            (Some(_), None) => c.at(
                "",
                Problem::MissingField {
                    field: "target".into(),
                },
            ),
        },
    }

    let mut replications = Vec::new();
    let mut names_seen: HashMap<&str, ()> = HashMap::new();
    let mut targets_seen: HashMap<String, String> = HashMap::new();
    for p in &parts {
        if names_seen.insert(p.name, ()).is_some() {
            c.at(
                join(&p.prefix, "name"),
                Problem::DuplicateReplicationName {
                    name: p.name.to_owned(),
                },
            );
        }
        let source = c.source(&p.prefix, &raw.region, p.source);
        let target = c.target(&p.prefix, &raw.region, p.target);
        if source.name == target.domain.name {
            c.at(
                join(&p.prefix, "target.domain"),
                Problem::SameSourceAndTarget {
                    domain: source.name.clone(),
                },
            );
        } else if targets_seen
            .insert(target.domain.name.clone(), p.name.to_owned())
            .is_some()
        {
            c.at(
                join(&p.prefix, "target.domain"),
                Problem::DuplicateTargetDomain {
                    domain: target.domain.name.clone(),
                },
            );
        }
        if let (Some(from), Some(to)) = (source.engine_version, target.domain.engine_version)
            && !can_restore(from, to)
        {
            let which = match target.creation {
                DomainCreation::FromSource { .. } => "overrides",
                DomainCreation::Explicit { .. } => "configuration",
            };
            c.at(
                join(&p.prefix, &format!("target.{which}.engine_version")),
                Problem::EngineIncompatible {
                    source_version: from.to_string(),
                    target_version: to.to_string(),
                },
            );
        }
        let repository = c.repository(
            &p.repository_path,
            &raw.name,
            p.repository,
            &bucket,
            &source.name,
        );
        let snapshot = c.snapshot(&p.prefix, p.name, p.snapshot);
        let exclude_system = snapshot
            .indices
            .iter()
            .any(|i| i == SYSTEM_INDEX_EXCLUSIONS[0]);
        let restore = c.restore(&p.prefix, p.restore, exclude_system);
        let verify = VerifySpec {
            enabled: p.verify.and_then(RawVerify::enabled).unwrap_or(true),
        };
        let (metadata, found) = crate::copies::metadata(&p.prefix, p.metadata);
        let (dashboards, more) = crate::copies::dashboards(&p.prefix, p.dashboards);
        for (path, problem) in found.into_iter().chain(more) {
            c.at(path, problem);
        }
        // The step is there when the plan asks for it, or when the target's FGAC master is
        // named (a target with fine-grained access control needs the mappings).
        let names_master = target
            .creation
            .config()
            .fine_grained_access_control
            .as_ref()
            .is_some_and(|f| f.master.is_some() && f.enabled != Some(false));
        let security = match p.security.map(|s| s.enabled().unwrap_or(true)) {
            Some(manage) => Some(SecuritySpec { manage }),
            None if names_master => Some(SecuritySpec { manage: true }),
            None => None,
        };
        replications.push(Replication {
            name: p.name.to_owned(),
            security,
            source,
            target,
            repository,
            snapshot,
            restore,
            verify,
            metadata,
            dashboards,
        });
    }

    // Rules across replications.
    let targets: HashMap<&str, &str> = replications
        .iter()
        .map(|r| (r.target.domain.name.as_str(), r.name.as_str()))
        .collect();
    let mut repositories: BTreeMap<(String, String), &RepositorySpec> = BTreeMap::new();
    let mut snapshot_names: BTreeMap<((String, String), String), String> = BTreeMap::new();
    for (p, r) in parts.iter().zip(&replications) {
        if let Some(target_of) = targets.get(r.source.name.as_str())
            && *target_of != r.name
        {
            c.at(
                join(&p.prefix, "source.domain"),
                Problem::TargetIsSource {
                    domain: r.source.name.clone(),
                    target_of: (*target_of).to_owned(),
                    source_of: r.name.clone(),
                },
            );
        }
        let key = (r.source.name.clone(), r.repository.name.clone());
        match repositories.get(&key) {
            Some(seen) if **seen != r.repository => c.at(
                join(&p.repository_path, "name"),
                Problem::RepositoryConflict {
                    domain: r.source.name.clone(),
                    repository: r.repository.name.clone(),
                },
            ),
            Some(_) => {}
            None => {
                repositories.insert(key.clone(), &r.repository);
            }
        }
        // Two snapshots of one repository must never get the same name.
        let sample = r.snapshot.template.resolve(&r.name, sample_time());
        if let Some(other) = snapshot_names.insert((key, sample.clone()), r.name.clone()) {
            c.at(
                join(&p.prefix, "snapshot.name"),
                Problem::SnapshotNameCollision {
                    template: r.snapshot.template.as_str().to_owned(),
                    other,
                },
            );
        }
    }

    if c.found.is_empty() {
        Ok(Plan {
            name: raw.name.clone(),
            region: raw.region.clone(),
            role,
            bucket,
            state,
            replications,
        })
    } else {
        Err(c.found)
    }
}
