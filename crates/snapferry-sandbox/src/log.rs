//! The request log: one entry per request the sandbox answered (or dropped), so tests can assert
//! which AWS calls the tool made, in which order, and that a resumed run did not repeat mutations.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One answered request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedRequest {
    /// Position in the log, from 1.
    pub seq: u64,
    /// `iam`, `sts`, `s3`, `secretsmanager`, `es` (control plane), `es-data` (domain endpoint)
    /// or `sandbox`.
    pub service: String,
    /// AWS operation name (`CreateRole`, `PutObject`, `CreateDomain`, `CreateSnapshot`, ...).
    pub operation: String,
    /// Whether the operation changes state.
    pub mutating: bool,
    /// Domain, bucket or role the request was about, when there is one.
    pub target: Option<String>,
    /// HTTP status sent; 0 when the connection was dropped.
    pub status: u16,
    /// Wall-clock time (RFC 3339).
    pub time: String,
    /// The injected fault, if one fired.
    pub fault: Option<String>,
    /// The HTTP method of the request line.
    #[serde(default)]
    pub method: String,
    /// The request target exactly as sent (path and query, still percent-encoded), so a test can
    /// check every request line against the server's 4 KB limit.
    #[serde(default)]
    pub path: String,
}

tokio::task_local! {
    /// Method and target of the request a task is answering, set where the request is accepted,
    /// so every service's log entry carries its request line without threading it through.
    static LINE: (String, String);
}

/// Runs `f` (the answering of one request) with its request line known to [`RequestLog::record`].
pub async fn with_line<F: std::future::Future>(method: String, path: String, f: F) -> F::Output {
    LINE.scope((method, path), f).await
}

#[derive(Debug, Default)]
pub struct RequestLog {
    entries: Mutex<Vec<LoggedRequest>>,
}

impl RequestLog {
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        service: &str,
        operation: &str,
        mutating: bool,
        target: Option<String>,
        status: u16,
        fault: Option<String>,
    ) {
        let mut entries = self.entries.lock().expect("log lock");
        let seq = entries.len() as u64 + 1;
        entries.push(LoggedRequest {
            seq,
            service: service.to_owned(),
            operation: operation.to_owned(),
            mutating,
            target,
            status,
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            fault,
            method: LINE.try_with(|l| l.0.clone()).unwrap_or_default(),
            path: LINE.try_with(|l| l.1.clone()).unwrap_or_default(),
        });
    }

    pub fn entries(&self) -> Vec<LoggedRequest> {
        self.entries.lock().expect("log lock").clone()
    }

    pub fn clear(&self) {
        self.entries.lock().expect("log lock").clear();
    }
}
