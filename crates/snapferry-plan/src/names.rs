//! Offline checks of the names AWS and OpenSearch will later judge: domains,
//! buckets, snapshots, repositories, ARNs, regions and index patterns. Each
//! check returns the reason in words so the diagnostic can say what is wrong.
//! The rules follow the services' own (documented) checks, no stricter: a plan
//! must not be refused for something OpenSearch accepts.

use std::net::Ipv4Addr;
use std::sync::LazyLock;

use regex::Regex;

/// Characters OpenSearch refuses in snapshot and repository names.
pub const FORBIDDEN_NAME_CHARS: &[char] = &['\\', '/', '*', '?', '"', '<', '>', '|', ',', '#', ' '];

/// The system indices a snapshot leaves out unless `include_system_indices` is set.
pub const SYSTEM_INDEX_EXCLUSIONS: &[&str] = &[
    "-.kibana*",
    "-.opendistro*",
    "-.plugins*",
    "-.opensearch*",
    "-.tasks",
];

static ROLE_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:role/([\x21-\x7e]+/)*[\w+=,.@-]{1,64}$")
        .expect("valid regex")
});
static POLICY_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^arn:aws(-cn|-us-gov)?:iam::(\d{12}|aws):policy/([\x21-\x7e]+/)*[\w+=,.@-]{1,128}$",
    )
    .expect("valid regex")
});
static REGION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$").expect("valid regex")
});

/// A domain name as OpenSearch Service accepts it: 3-28 characters, `[a-z][a-z0-9-]*`.
pub fn check_domain_name(name: &str) -> Result<(), String> {
    let len = name.chars().count();
    if !(3..=28).contains(&len) {
        return Err(format!(
            "it has {len} character(s); a domain name has 3 to 28"
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("it must start with a lowercase letter".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "it contains {c:?}; only a-z, 0-9 and - are allowed"
        ));
    }
    Ok(())
}

/// An S3 bucket name under the general-purpose bucket rules.
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    let len = name.len();
    if !(3..=63).contains(&len) {
        return Err(format!(
            "it has {len} character(s); a bucket name has 3 to 63"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        return Err(format!(
            "it contains {c:?}; only a-z, 0-9, . and - are allowed"
        ));
    }
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !name.starts_with(alnum) || !name.ends_with(alnum) {
        return Err("it must start and end with a letter or digit".into());
    }
    if name.contains("..") {
        return Err("it contains two adjacent periods".into());
    }
    if name.parse::<Ipv4Addr>().is_ok() {
        return Err("it is formatted as an IP address".into());
    }
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if name.starts_with(prefix) {
            return Err(format!("the prefix {prefix:?} is reserved by AWS"));
        }
    }
    for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
        if name.ends_with(suffix) {
            return Err(format!("the suffix {suffix:?} is reserved by AWS"));
        }
    }
    Ok(())
}

/// A snapshot name as OpenSearch checks it.
pub fn check_snapshot_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.starts_with('_') {
        return Err("it starts with `_`".into());
    }
    check_snapshot_chars(name)
}

/// The character rules of snapshot names alone (used on a template's literal parts).
pub fn check_snapshot_chars(text: &str) -> Result<(), String> {
    if let Some(c) = text.chars().find(|c| FORBIDDEN_NAME_CHARS.contains(c)) {
        return Err(format!("it contains {c:?}, which OpenSearch refuses"));
    }
    if text.chars().any(|c| c.is_uppercase()) {
        return Err("it contains uppercase letters; snapshot names must be lowercase".into());
    }
    Ok(())
}

/// A repository name as OpenSearch checks it (no lowercase rule).
pub fn check_repository_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if let Some(c) = name.chars().find(|c| FORBIDDEN_NAME_CHARS.contains(c)) {
        return Err(format!("it contains {c:?}, which OpenSearch refuses"));
    }
    // Amazon OpenSearch Service refuses to register these ("managedomains-snapshots").
    if name.starts_with("cs-") {
        return Err(
            "it starts with `cs-`, which Amazon OpenSearch Service reserves for its automated \
             snapshots"
                .into(),
        );
    }
    Ok(())
}

/// An IAM role ARN: `arn:aws[-cn|-us-gov]:iam::<12 digits>:role/[path/]name`.
pub fn check_role_arn(arn: &str) -> Result<(), String> {
    if ROLE_ARN.is_match(arn) {
        Ok(())
    } else {
        Err("it is not an IAM role ARN".into())
    }
}

/// An IAM managed policy ARN (permissions boundaries).
pub fn check_policy_arn(arn: &str) -> Result<(), String> {
    if POLICY_ARN.is_match(arn) {
        Ok(())
    } else {
        Err("it is not an IAM policy ARN".into())
    }
}

/// The role name in a role ARN (after the last `/`).
pub fn role_name_of_arn(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// An IAM role name: 1-64 characters of `A-Za-z0-9+=,.@_-`.
pub fn check_role_name(name: &str) -> Result<(), String> {
    let len = name.chars().count();
    if !(1..=64).contains(&len) {
        return Err(format!(
            "it has {len} character(s); a role name has 1 to 64"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+=,.@_-".contains(*c)))
    {
        return Err(format!(
            "it contains {c:?}; only letters, digits and +=,.@_- are allowed"
        ));
    }
    Ok(())
}

/// An IAM path: `/` or `/segment/.../`.
pub fn check_role_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') || !path.ends_with('/') {
        return Err("it must start and end with `/`".into());
    }
    if path.len() > 512 {
        return Err("it is longer than 512 characters".into());
    }
    if path.contains("//") {
        return Err("it contains an empty segment `//`".into());
    }
    Ok(())
}

/// An AWS region code such as `us-east-1` or `us-gov-west-1`.
pub fn check_region(region: &str) -> Result<(), String> {
    if REGION.is_match(region) {
        Ok(())
    } else {
        Err("it is not an AWS region code".into())
    }
}

/// The name of a plan or replication: it becomes part of role, repository and
/// snapshot names, so it must be valid in all of them.
pub fn check_plan_name(name: &str) -> Result<(), String> {
    let len = name.chars().count();
    if !(1..=40).contains(&len) {
        return Err(format!("it has {len} character(s); a name has 1 to 40"));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err("it must start with a lowercase letter or a digit".into());
    }
    if let Some(c) = name.chars().find(|c| {
        !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_' || *c == '.')
    }) {
        return Err(format!(
            "it contains {c:?}; only a-z, 0-9, -, _ and . are allowed"
        ));
    }
    Ok(())
}

/// One index pattern of an `indices` list; a leading `-` excludes.
pub fn check_index_pattern(pattern: &str) -> Result<(), String> {
    let body = pattern.strip_prefix('-').unwrap_or(pattern);
    if body.is_empty() {
        return Err("it is empty".into());
    }
    if let Some(c) = body
        .chars()
        .find(|c| *c != '*' && FORBIDDEN_NAME_CHARS.contains(c))
    {
        return Err(format!(
            "it contains {c:?}, which index names cannot contain"
        ));
    }
    if body.chars().any(|c| c.is_uppercase()) {
        return Err("it contains uppercase letters; index names are lowercase".into());
    }
    if body.starts_with('_') && body != "_all" {
        return Err("it starts with `_`".into());
    }
    Ok(())
}

/// An STS `ExternalId` as `AssumeRole` accepts it (STS's model: 2–1224 characters of
/// `[\w+=,.@:/-]`), so a typo is caught before STS refuses it with a generic denial.
pub fn check_external_id(id: &str) -> Result<(), String> {
    let length = id.chars().count();
    if !(2..=1224).contains(&length) {
        return Err(format!("it has {length} characters; STS accepts 2 to 1224"));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(*c)))
    {
        return Err(format!(
            "{bad:?} is not allowed; STS accepts letters, digits and _+=,.@:/- only"
        ));
    }
    Ok(())
}

/// A proxy URL the HTTP client understands.
pub fn check_proxy(proxy: &str) -> Result<(), String> {
    let Some((scheme, rest)) = proxy.split_once("://") else {
        return Err("it has no scheme such as socks5h://".into());
    };
    if !["http", "https", "socks5", "socks5h"].contains(&scheme) {
        return Err(format!(
            "the scheme {scheme:?} is not one of http, https, socks5, socks5h"
        ));
    }
    if rest.is_empty() {
        return Err("it has no host".into());
    }
    Ok(())
}

/// An endpoint override: an http(s) URL.
pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
    match endpoint.split_once("://") {
        Some(("http" | "https", rest)) if !rest.is_empty() => Ok(()),
        _ => Err("it is not an http:// or https:// URL".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names() {
        assert!(check_domain_name("prod-logs").is_ok());
        assert_eq!(
            check_domain_name("ab").unwrap_err(),
            "it has 2 character(s); a domain name has 3 to 28"
        );
        assert!(check_domain_name("1abc").is_err());
        assert!(check_domain_name("abc_d").is_err());
        assert!(check_domain_name(&"a".repeat(28)).is_ok());
        assert!(check_domain_name(&"a".repeat(29)).is_err());
    }

    #[test]
    fn bucket_names() {
        assert!(check_bucket_name("my.snap-bucket1").is_ok());
        for bad in [
            "ab",
            "Upper",
            "-abc",
            "abc-",
            "a..b",
            "192.168.1.1",
            "xn--abc",
            "sthree-x",
            "amzn-s3-demo-x",
            "abc-s3alias",
            "abc--ol-s3",
            "abc.mrap",
            "abc--x-s3",
            "abc--table-s3",
            "a_b",
        ] {
            assert!(check_bucket_name(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn snapshot_and_repository_names() {
        assert!(check_snapshot_name("nightly-2026-01-01").is_ok());
        assert!(check_snapshot_name("").is_err());
        assert!(check_snapshot_name("_x").is_err());
        assert!(check_snapshot_name("Big").is_err());
        for c in FORBIDDEN_NAME_CHARS {
            assert!(check_snapshot_name(&format!("a{c}b")).is_err());
            assert!(check_repository_name(&format!("a{c}b")).is_err());
        }
        assert!(
            check_repository_name("MyRepo").is_ok(),
            "no lowercase rule for repositories"
        );
        assert!(check_repository_name("").is_err());
        assert!(check_repository_name("cs-automated").is_err());
        assert!(check_repository_name("cs-mine").is_err());
        assert!(check_repository_name("my-cs-repo").is_ok());
    }

    #[test]
    fn arns_and_regions() {
        assert!(check_role_arn("arn:aws:iam::123456789012:role/snap").is_ok());
        assert!(check_role_arn("arn:aws-cn:iam::123456789012:role/path/snap").is_ok());
        assert!(check_role_arn("arn:aws-us-gov:iam::123456789012:role/snap").is_ok());
        assert!(check_role_arn("arn:aws:iam::12345678901:role/snap").is_err());
        assert!(check_role_arn("arn:aws:iam::123456789012:user/snap").is_err());
        assert!(check_role_arn("arn:aws-eu:iam::123456789012:role/snap").is_err());
        assert_eq!(role_name_of_arn("arn:aws:iam::123456789012:role/a/b"), "b");
        assert!(check_region("eu-west-3").is_ok());
        assert!(check_region("us-gov-west-1").is_ok());
        assert!(check_region("useast1").is_err());
        assert!(check_region("US-EAST-1").is_err());
    }

    #[test]
    fn index_patterns() {
        assert!(check_index_pattern("logs-*").is_ok());
        assert!(check_index_pattern("-.kibana*").is_ok());
        assert!(check_index_pattern("-").is_err());
        assert!(check_index_pattern("a,b").is_err());
        assert!(check_index_pattern("Logs").is_err());
        assert!(check_index_pattern("_x").is_err());
    }
}
