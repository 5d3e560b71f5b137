//! The crate's error type and the mapping of AWS SDK errors onto it.
//!
//! Every SDK call fails the same few ways (throttled, a 5xx, a dropped connection, access denied,
//! a bad document, an expired token); the engine only needs to know which resource failed, what
//! AWS said, and whether trying again can help. [`AwsError::from_sdk`] turns any service's
//! `SdkError` into that, so the six resources never match on SDK error shapes themselves.

use std::error::Error as StdError;

use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

use crate::credentials::{CredentialsProblem, problem_in};
use crate::domain_http::DomainHttpError;
use crate::policy::PolicyError;

/// Whether a failed call may succeed if repeated later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Throttling, 5xx, timeouts, dropped connections: back off and retry.
    Transient,
    /// Access denied, validation, bad documents, expired credentials: retrying won't help.
    Permanent,
}

/// Error codes AWS services use for throttling and server-side trouble.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "InternalException",
    "InternalServerError",
    "InternalServiceError",
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
    "IDPCommunicationError",
];

/// Error codes meaning the caller's credentials have expired.
const EXPIRED_CODES: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "TokenRefreshRequired",
];

/// Error codes meaning the thing read does not exist (a normal answer to a `read`).
const NOT_FOUND_CODES: &[&str] = &[
    "NoSuchEntity",
    "NoSuchBucket",
    "NoSuchBucketPolicy",
    "NoSuchKey",
    "NotFound",
    "ResourceNotFoundException",
];

/// Failures of the AWS side. Each names the resource (e.g. `role/snapshots`, `bucket snaps`).
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// An AWS API call failed.
    #[error("{resource}: {service} {operation} failed{}", describe(.code, .message))]
    Sdk {
        /// What the call was for.
        resource: String,
        /// `iam`, `s3`, `opensearch`, `sts`.
        service: &'static str,
        /// The API operation, e.g. `PutRolePolicy`.
        operation: &'static str,
        /// AWS's error code, when the service answered.
        code: Option<String>,
        /// AWS's error message, when the service answered.
        message: Option<String>,
        /// HTTP status, when there was a response.
        status: Option<u16>,
        /// Retry decision.
        retry: Retry,
        /// The SDK error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The credentials in use have expired.
    #[error(
        "{resource}: {service} {operation} failed: the AWS credentials have expired; refresh \
         them (e.g. `aws sso login`, or new temporary credentials) and run again"
    )]
    ExpiredCredentials {
        /// What the call was for.
        resource: String,
        /// Service.
        service: &'static str,
        /// Operation.
        operation: &'static str,
        /// The SDK error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// No credentials to sign with, or the chain failed to give them: the problem says which
    /// and what to do (a missing identity is about the run, not the resource, so it is not
    /// prefixed with one).
    #[error("{problem}")]
    Credentials {
        /// What is wrong, in the tool's words.
        problem: CredentialsProblem,
    },
    /// A call to a domain's REST API failed.
    #[error("{resource}: domain request failed")]
    Domain {
        /// What the call was for.
        resource: String,
        /// The data-plane error (carries domain, method, path, status, OpenSearch error type).
        #[source]
        source: Box<DomainHttpError>,
    },
    /// A policy document AWS returned could not be read.
    #[error("{resource}: cannot read its policy")]
    Policy {
        /// What the policy belongs to.
        resource: String,
        /// Cause.
        #[source]
        source: PolicyError,
    },
    /// The AWS configuration (region, CA bundle, profile) is unusable.
    #[error("AWS configuration: {problem}")]
    Config {
        /// What is wrong and what to do.
        problem: String,
        /// Cause, when there is one.
        #[source]
        source: Option<Box<dyn StdError + Send + Sync>>,
    },
}

/// OpenSearch Service's answer when the account's service-linked role is missing names no
/// permission; this says which one lets the service create it.
const SERVICE_LINKED_ROLE_HINT: &str = " (the identity running snapferry needs \
    iam:CreateServiceLinkedRole so that OpenSearch Service can create \
    AWSServiceRoleForAmazonOpenSearchService for the account's first domain; or create it once: \
    aws iam create-service-linked-role --aws-service-name opensearchservice.amazonaws.com)";

fn describe(code: &Option<String>, message: &Option<String>) -> String {
    match (code, message) {
        (Some(c), Some(m)) if m.contains("you must enable a service-linked role") => {
            format!(": {c}: {m}{SERVICE_LINKED_ROLE_HINT}")
        }
        (Some(c), Some(m)) => format!(": {c}: {m}"),
        (Some(c), None) => format!(": {c}"),
        (None, Some(m)) => format!(": {m}"),
        (None, None) => String::new(),
    }
}

impl AwsError {
    /// Maps any SDK operation error onto the crate error, classifying it for retries.
    pub fn from_sdk<E>(
        resource: impl Into<String>,
        service: &'static str,
        operation: &'static str,
        error: SdkError<E, HttpResponse>,
    ) -> AwsError
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        // The SDK reports a credential failure as a dispatch failure wrapping the provider's
        // error: say what the provider found, never the dispatch failure's debug form.
        if let Some(problem) = problem_in(&error) {
            return AwsError::Credentials {
                problem: problem.clone(),
            };
        }
        let resource = resource.into();
        let mut code = error.code().map(str::to_owned);
        let mut message = error.message().map(str::to_owned);
        let status = error.raw_response().map(|r| r.status().as_u16());
        // S3 answers a refused HEAD with a bare 403: no code, no message naming the permission.
        let head_permission = match operation {
            "HeadBucket" => Some("s3:ListBucket"),
            "HeadObject" => Some("s3:GetObject"),
            _ => None,
        };
        if let (Some(permission), None, Some(403)) = (head_permission, &code, status) {
            code = Some("AccessDenied".to_owned());
            message = Some(format!(
                "403 Forbidden (a {operation} answer has no body; S3 checks {permission} for it)"
            ));
        }
        // Any other response without an error document (some gateways) would otherwise be
        // described by the SDK's debug form of its empty metadata: say what the status means.
        if message.is_none() {
            message = match (&error, &code, status) {
                (SdkError::ServiceError(_), None, Some(403)) => Some(
                    "HTTP 403 with no error details: access denied, or the credentials expired"
                        .to_owned(),
                ),
                (SdkError::ServiceError(_), None, Some(status)) => {
                    Some(format!("HTTP {status} with no error details"))
                }
                _ => None,
            };
        }
        if code.as_deref().is_some_and(|c| EXPIRED_CODES.contains(&c)) {
            return AwsError::ExpiredCredentials {
                resource,
                service,
                operation,
                source: Box::new(error),
            };
        }
        let retry = match &error {
            SdkError::TimeoutError(_) => Retry::Transient,
            SdkError::DispatchFailure(failure) => {
                if failure.is_user()
                    || failure
                        .as_connector_error()
                        .is_some_and(|c| is_tls_rejection(c))
                {
                    Retry::Permanent
                } else {
                    Retry::Transient
                }
            }
            SdkError::ResponseError(_) => Retry::Transient,
            SdkError::ServiceError(_) => classify_code(code.as_deref(), status),
            _ => Retry::Permanent,
        };
        AwsError::Sdk {
            resource,
            service,
            operation,
            code,
            message,
            status,
            retry,
            source: Box::new(error),
        }
    }

    /// A credential provider's failure, described as a [`CredentialsProblem`].
    pub fn credentials(error: &(dyn StdError + 'static)) -> AwsError {
        let problem = problem_in(error)
            .cloned()
            .unwrap_or_else(|| CredentialsProblem::Failed {
                message: crate::credentials::words(error),
            });
        AwsError::Credentials { problem }
    }

    /// Wraps a domain data-plane error with the resource it was for (a request that could not be
    /// signed for want of credentials becomes [`AwsError::Credentials`]).
    pub fn domain(resource: impl Into<String>, source: DomainHttpError) -> AwsError {
        if let Some(problem) = problem_in(&source) {
            return AwsError::Credentials {
                problem: problem.clone(),
            };
        }
        AwsError::Domain {
            resource: resource.into(),
            source: Box::new(source),
        }
    }

    /// Whether retrying later may help.
    pub fn retry(&self) -> Retry {
        match self {
            AwsError::Sdk { retry, .. } => *retry,
            AwsError::Domain { source, .. } if source.is_transient() => Retry::Transient,
            _ => Retry::Permanent,
        }
    }

    /// Whether retrying later may help.
    pub fn is_transient(&self) -> bool {
        self.retry() == Retry::Transient
    }

    /// The server's `Retry-After`, when it sent one.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            AwsError::Domain { source, .. } => source.retry_after(),
            _ => None,
        }
    }

    /// AWS's error code (`NoSuchEntity`, `AccessDenied`, ...) or OpenSearch's error type.
    pub fn code(&self) -> Option<&str> {
        match self {
            AwsError::Sdk { code, .. } => code.as_deref(),
            AwsError::Domain { source, .. } => source.error_type(),
            _ => None,
        }
    }

    /// Whether the error says the thing asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            AwsError::Sdk { code, status, .. } => {
                code.as_deref()
                    .is_some_and(|c| NOT_FOUND_CODES.contains(&c))
                    || (code.is_none() && *status == Some(404))
            }
            AwsError::Domain { source, .. } => source.status() == Some(404),
            _ => false,
        }
    }
}

/// Whether a dispatch failure is TLS refusing the server's certificate (rustls reports it as an
/// `InvalidData` I/O error): retrying can't fix that, trusting the CA (`AWS_CA_BUNDLE`) can.
fn is_tls_rejection(error: &(dyn StdError + 'static)) -> bool {
    let mut source: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(err) = source {
        if is_certificate_error(err) {
            return true;
        }
        // I/O errors wrap their cause without exposing it as `source()`: open them up.
        let mut io = err.downcast_ref::<std::io::Error>();
        while let Some(wrapper) = io {
            let inner = wrapper.get_ref().map(|e| e as &(dyn StdError + 'static));
            if inner.is_some_and(is_certificate_error) {
                return true;
            }
            io = inner.and_then(|e| e.downcast_ref::<std::io::Error>());
        }
        source = err.source();
    }
    false
}

fn is_certificate_error(error: &(dyn StdError + 'static)) -> bool {
    matches!(
        error.downcast_ref::<rustls::Error>(),
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
    )
}

/// Classifies a service error by its code, falling back on the HTTP status.
pub fn classify_code(code: Option<&str>, status: Option<u16>) -> Retry {
    if code.is_some_and(|c| TRANSIENT_CODES.contains(&c)) {
        return Retry::Transient;
    }
    match status {
        Some(429) | Some(500..=599) => Retry::Transient,
        _ => Retry::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::operation::get_role::GetRoleError;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    #[test]
    fn a_missing_service_linked_role_is_explained_by_the_permission_that_creates_it() {
        let text = describe(
            &Some("ValidationException".into()),
            &Some("Before you can proceed, you must enable a service-linked role to give Amazon OpenSearch Service permissions to access your VPC.".into()),
        );
        assert!(
            text.starts_with(": ValidationException: Before you can proceed")
                && text.contains("needs iam:CreateServiceLinkedRole"),
            "{text}"
        );
        assert_eq!(
            describe(&Some("AccessDenied".into()), &Some("m".into())),
            ": AccessDenied: m"
        );
    }

    fn service_error(
        code: &str,
        message: &str,
        status: u16,
    ) -> SdkError<GetRoleError, HttpResponse> {
        let err =
            GetRoleError::generic(ErrorMetadata::builder().code(code).message(message).build());
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        SdkError::service_error(err, raw)
    }

    fn mapped(code: &str, status: u16) -> AwsError {
        AwsError::from_sdk(
            "role/snap",
            "iam",
            "GetRole",
            service_error(code, "m", status),
        )
    }

    #[test]
    fn throttling_and_server_errors_are_transient() {
        for (code, status) in [
            ("Throttling", 400),
            ("ThrottlingException", 400),
            ("RequestLimitExceeded", 503),
            ("SlowDown", 503),
            ("InternalError", 500),
            ("SomethingNew", 502),
            ("SomethingNew", 429),
        ] {
            assert_eq!(
                mapped(code, status).retry(),
                Retry::Transient,
                "{code} {status}"
            );
        }
    }

    #[test]
    fn client_errors_are_permanent_and_carry_code_and_message() {
        for code in [
            "AccessDenied",
            "ValidationException",
            "MalformedPolicyDocument",
        ] {
            assert_eq!(mapped(code, 400).retry(), Retry::Permanent, "{code}");
        }
        let err = AwsError::from_sdk(
            "role/snap",
            "iam",
            "PutRolePolicy",
            service_error("MalformedPolicyDocument", "Syntax errors in policy.", 400),
        );
        assert_eq!(
            err.to_string(),
            "role/snap: iam PutRolePolicy failed: MalformedPolicyDocument: Syntax errors in policy."
        );
        assert_eq!(err.code(), Some("MalformedPolicyDocument"));
        assert!(!err.is_not_found());
        assert!(mapped("NoSuchEntity", 404).is_not_found());
    }

    #[test]
    fn a_response_without_error_details_is_described_by_its_status_not_the_sdk_debug_form() {
        let err = GetRoleError::generic(ErrorMetadata::builder().build());
        let raw = HttpResponse::new(403.try_into().unwrap(), SdkBody::empty());
        let err = AwsError::from_sdk(
            "bucket b",
            "s3",
            "GetBucketPolicy",
            SdkError::service_error(err, raw),
        );
        assert_eq!(
            err.to_string(),
            "bucket b: s3 GetBucketPolicy failed: HTTP 403 with no error details: access denied, \
             or the credentials expired"
        );
        assert!(!err.is_transient());
        let err = GetRoleError::generic(ErrorMetadata::builder().build());
        let raw = HttpResponse::new(404.try_into().unwrap(), SdkBody::empty());
        let err = AwsError::from_sdk(
            "bucket b",
            "s3",
            "HeadBucket",
            SdkError::service_error(err, raw),
        );
        assert!(err.is_not_found());
        assert_eq!(
            err.to_string(),
            "bucket b: s3 HeadBucket failed: HTTP 404 with no error details"
        );
    }

    #[test]
    fn expired_credentials_say_to_refresh_them() {
        for code in ["ExpiredToken", "ExpiredTokenException"] {
            let err = mapped(code, 403);
            assert_eq!(err.retry(), Retry::Permanent);
            assert_eq!(
                err.to_string(),
                "role/snap: iam GetRole failed: the AWS credentials have expired; refresh them \
                 (e.g. `aws sso login`, or new temporary credentials) and run again"
            );
        }
    }

    #[test]
    fn timeouts_and_dispatch_failures_are_transient() {
        let timeout: SdkError<GetRoleError, HttpResponse> =
            SdkError::timeout_error(Box::new(std::io::Error::other("slow")));
        let err = AwsError::from_sdk("bucket b", "s3", "GetBucketPolicy", timeout);
        assert_eq!(err.retry(), Retry::Transient);
        assert_eq!(err.to_string(), "bucket b: s3 GetBucketPolicy failed");

        let reset: SdkError<GetRoleError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io(Box::new(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset,
            ))));
        assert!(AwsError::from_sdk("r", "iam", "GetRole", reset).is_transient());

        let user: SdkError<GetRoleError, HttpResponse> = SdkError::dispatch_failure(
            ConnectorError::user(Box::new(std::io::Error::other("bad"))),
        );
        assert!(!AwsError::from_sdk("r", "iam", "GetRole", user).is_transient());
    }
}
