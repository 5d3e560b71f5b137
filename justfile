# Developer shortcuts. Every recipe is a plain cargo command, so nothing here is
# needed to build or test: the README's two commands work without `just`.

# The whole test suite: exactly what CI runs after fmt and clippy.
test:
    cargo test --workspace

# The full replication against the local sandbox.
demo:
    cargo run -- demo

# Formatting and lints as CI checks them.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

fmt:
    cargo fmt --all

# CI, locally.
ci:
    bash .ci/run

# Issue #8's and #19's figures (docs/performance.md): the real binary against the sandbox with scaled
# latencies, printed as one table (about 40 s after the release build). The engine, plan and
# sandbox micro-benchmarks: `cargo bench --workspace`.
bench:
    cargo bench -p snapferry-cli --bench replication

# Crash at every checkpoint and inside every wait, faults, secrets, broken state: prints the
# figures recorded in docs/reliability.md.
reliability:
    cargo test -p snapferry-cli --test e2e reliability -- --nocapture

# Issue #18's figure (docs/performance.md): how long `plan` and `apply` take to fail with no AWS
# credentials, instance metadata silent or refusing (target: within 3 s).
no-credentials:
    cargo test -p snapferry-cli --test e2e credentials:: -- --nocapture --test-threads 1 2>&1 | grep -o 'figure:.*'
