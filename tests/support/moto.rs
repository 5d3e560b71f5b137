//! moto, the Python AWS mock, as an independent second implementation of IAM and S3.
//!
//! The end-to-end replication runs once with IAM and S3 served by moto instead of the
//! sandbox's own, so that the tool and the sandbox cannot agree on a mistake. moto comes
//! from PyPI, at a pinned version, into a virtualenv under the target directory: the only
//! prerequisite is `python3` with its `venv` module. A missing prerequisite is a test
//! failure that says how to get it — never a silent skip.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The moto release the suite is pinned to; bump it deliberately.
pub const MOTO_VERSION: &str = "5.2.5";

/// A running `moto_server` on 127.0.0.1, stopped when dropped.
pub struct MotoServer {
    child: Child,
    port: u16,
}

impl MotoServer {
    /// Starts a fresh moto server (installing moto first if this machine has none yet).
    pub fn start() -> MotoServer {
        let python = moto_python();
        let port = free_port();
        let child = Command::new(python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "could not start moto's server from {}: {e}",
                    python.display()
                )
            });
        let server = MotoServer { child, port };
        server.wait_ready();
        server
    }

    /// The endpoint to give the tool (or the sandbox) as its IAM and S3 endpoint.
    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if http_get(self.port, "/moto-api/data.json").is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "moto's server did not answer on 127.0.0.1:{} within 30 s",
            self.port
        );
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The virtualenv's python with the pinned moto installed, for tests that start moto
/// themselves.
pub fn python() -> &'static Path {
    moto_python()
}

/// The virtualenv's python with moto installed, created once per machine (and per
/// moto version) under `target/test-tools/`.
fn moto_python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        crate::pytool::PyTool {
            dir: format!("moto-{MOTO_VERSION}"),
            requirement: format!("moto[server]=={MOTO_VERSION}"),
            import: "moto.server",
            needed_for: "the IAM/S3 cross-check",
        }
        .install()
        .join("bin")
        .join("python")
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// A minimal HTTP/1.0 GET, enough to see that a local server answers.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.starts_with("HTTP/1").then_some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moto_installs_starts_and_answers() {
        let moto = MotoServer::start();
        let body = http_get(moto.port, "/moto-api/data.json").expect("moto answers");
        assert!(
            body.contains("200"),
            "moto's data endpoint answered: {body}"
        );
        assert!(moto.endpoint_url().starts_with("http://127.0.0.1:"));
    }
}
