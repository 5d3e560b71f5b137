//! Where `tracing` output goes, and why no log filter can make a secret appear.
//!
//! `-v`/`-vv`/`-vvv` choose a level; `SNAPFERRY_LOG` takes a full `tracing` filter instead.
//! The SDK's signer (`aws-sigv4`) traces each canonical request, session token included.
//! Appending `aws_sigv4=off` to the filter is not enough: in an `EnvFilter` the most specific
//! directive wins, so `SNAPFERRY_LOG=trace,aws_sigv4::http_request=trace` turned the signer
//! back on. Two layers close that, each sufficient for what it covers:
//!
//! 1. **A filter no directive reaches.** Beside the user's `EnvFilter`, a second global filter
//!    drops every span and event of the crates that trace secrets
//!    ([`snapferry_aws::clients::traces_secrets`]). Global filters are combined with *and*, so
//!    whatever the user's filter enables, those callsites stay disabled and their fields are
//!    never even formatted. This is the fix at the source.
//! 2. **A redacting writer.** Every log line is scrubbed before it reaches stderr: the values
//!    of the secret variables this process was given (`AWS_SECRET_ACCESS_KEY`,
//!    `AWS_SESSION_TOKEN`), any `X-Amz-Security-Token` value and any SigV4 `Signature=`. It
//!    is the backstop for a crate that starts tracing headers in a future release, which no
//!    list of targets can foresee. Only log lines pass through it, never a command's output.
//!
//! `tests/e2e/secrets.rs` runs every command under filters written to defeat each layer.

use std::io::Write;
use std::sync::{Arc, LazyLock};

use regex::Regex;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

use snapferry_aws::clients::{SECRET_SAFE_LOG_DIRECTIVES, traces_secrets};

use super::LogFormat;

/// Variables whose values are secrets wherever they appear.
const SECRET_VARIABLES: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
];

/// Sends `tracing` output to stderr at the chosen verbosity, or as `SNAPFERRY_LOG` says,
/// never with a secret in it (see the module documentation).
pub fn init_logging(verbose: u8, format: LogFormat) {
    let level = match verbose {
        0 => "error",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let base = std::env::var("SNAPFERRY_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| level.to_owned());
    let filter = EnvFilter::try_new(format!("{base},{SECRET_SAFE_LOG_DIRECTIVES}"))
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},{SECRET_SAFE_LOG_DIRECTIVES}")));
    let never_secrets = filter_fn(|metadata| !traces_secrets(metadata.target()));
    let writer = RedactingStderr(Arc::new(Redactor::from_env()));
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(never_secrets);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false);
    let _ = match format {
        LogFormat::Text => registry.with(layer).try_init(),
        LogFormat::Json => registry.with(layer.json()).try_init(),
    };
}

/// What a log line must never show.
#[derive(Debug, Default)]
struct Redactor {
    /// Values known to be secret (from [`SECRET_VARIABLES`]).
    values: Vec<String>,
}

/// Header and query forms of a session token and a request signature, in text and JSON log
/// lines (`x-amz-security-token:…`, `X-Amz-Security-Token=…`, `"signature":"…"`).
static SECRET_FORMS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)((?:x-amz-security-token|x-amz-signature|signature)"?\s*[:=]\s*"?)[^\s&,;"\\]+"#,
    )
    .expect("a valid regular expression")
});

const REDACTED: &str = "[redacted]";

impl Redactor {
    fn from_env() -> Self {
        Redactor {
            values: SECRET_VARIABLES
                .iter()
                .filter_map(|v| std::env::var(v).ok())
                // A value this short would redact ordinary words; no real secret is.
                .filter(|v| v.len() >= 8)
                .collect(),
        }
    }

    fn redact(&self, line: &str) -> String {
        let mut clean = SECRET_FORMS
            .replace_all(line, |c: &regex::Captures<'_>| {
                format!("{}{REDACTED}", &c[1])
            })
            .into_owned();
        for value in &self.values {
            if clean.contains(value.as_str()) {
                clean = clean.replace(value.as_str(), REDACTED);
            }
        }
        clean
    }
}

/// Stderr behind a [`Redactor`]. The fmt layer writes each formatted event with one call,
/// so a secret is never split across two writes.
#[derive(Clone)]
struct RedactingStderr(Arc<Redactor>);

struct RedactingWriter(Arc<Redactor>);

impl<'a> MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter(Arc::clone(&self.0))
    }
}

impl Write for RedactingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let clean = self.0.redact(&String::from_utf8_lossy(buf));
        std::io::stderr().lock().write_all(clean.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor() -> Redactor {
        Redactor {
            values: vec!["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into()],
        }
    }

    #[test]
    fn header_and_query_forms_of_tokens_and_signatures_are_redacted() {
        let r = redactor();
        let signature = "f".repeat(64);
        for (line, gone) in [
            (
                "canonical_request=POST\nx-amz-security-token:IQoJb3JpZ2luX2VjEJr+/tok==\nhost:x"
                    .to_owned(),
                "IQoJb3JpZ2luX2VjEJr+/tok==",
            ),
            (
                "GET /?X-Amz-Security-Token=IQoJb3JpZ%2Ftok&X-Amz-Signature=abc123def".to_owned(),
                "IQoJb3JpZ%2Ftok",
            ),
            (
                format!(
                    "authorization: AWS4-HMAC-SHA256 Credential=AKIA/x, SignedHeaders=host, Signature={signature}"
                ),
                signature.as_str(),
            ),
            (
                format!(
                    r#"{{"fields":{{"signature":"{signature}","x-amz-security-token":"tok\nen"}}}}"#
                ),
                signature.as_str(),
            ),
            (
                "secret=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY in a field".to_owned(),
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
        ] {
            let clean = r.redact(&line);
            assert!(!clean.contains(gone), "{gone} kept in {clean}");
            assert!(clean.contains(REDACTED), "{clean}");
        }
    }

    #[test]
    fn ordinary_lines_pass_unchanged() {
        let r = redactor();
        for line in [
            "2026-11-01T03:00:00Z  INFO node{node=snapshot/shop}: snapshot shop-2026-11-01 started",
            "DEBUG aws_smithy_runtime::client::orchestrator: sending request",
            "plan fingerprint sha256:0123456789abcdef",
        ] {
            assert_eq!(r.redact(line), line);
        }
    }
}
