//! berth: a daemonless, Docker-compatible container runtime.
//!
//! The binary (`src/main.rs`) is a thin shell over this library: `cli` parses and prints,
//! every other module owns one noun (see docs/ARCHITECTURE.md).

pub mod alloc;
pub mod archive;
pub mod cli;
pub mod config;
pub mod container;
pub mod image;
pub mod network;
pub mod runtime;
pub mod sys;
pub mod time;
