//! berth: a daemonless, Docker-compatible container runtime.
//!
//! The binary (`src/main.rs`) is a thin shell over this library: `cli` parses and
//! prints, every other module owns one noun (see docs/ARCHITECTURE.md).
pub mod runtime;
