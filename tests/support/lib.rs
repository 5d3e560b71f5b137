//! Shared helpers for the workspace-level end-to-end tests: where the `snapferry`
//! binary and the target directory are, and the external services (moto) a test
//! may need. Each helper fails loudly with what to do; none skips.

use std::path::PathBuf;

pub mod moto;
pub mod socks;

/// The cargo target directory this test binary was built into.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    // <target>/<profile>/deps/<test binary>
    let exe = std::env::current_exe().expect("the test binary knows its path");
    exe.ancestors()
        .nth(3)
        .map(PathBuf::from)
        .expect("test binary lives under <target>/<profile>/deps")
}
