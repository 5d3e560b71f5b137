//! The request log: one entry per request the sandbox answered (or dropped), so tests can assert
//! which AWS calls the tool made, in which order, and that a resumed run did not repeat mutations.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One answered request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedRequest {
    /// Position in the log, from 1.
    pub seq: u64,
    /// `iam`, `sts`, `s3`, `es` (control plane), `es-data` (domain endpoint) or `sandbox`.
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
        });
    }

    pub fn entries(&self) -> Vec<LoggedRequest> {
        self.entries.lock().expect("log lock").clone()
    }

    pub fn clear(&self) {
        self.entries.lock().expect("log lock").clear();
    }
}
