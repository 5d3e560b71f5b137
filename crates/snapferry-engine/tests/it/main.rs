//! The integration tests of this crate, one module per topic, linked into one test binary
//! (a binary per file would link the whole dependency tree once per file).

mod approval;
mod crash;
mod cycles;
mod destroy;
mod executor;
mod locks;
mod support;
