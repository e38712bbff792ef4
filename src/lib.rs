//! berth: a daemonless, Docker-compatible container runtime.
//!
//! The binary (`src/main.rs`) is a thin shell over this library: `cli` parses and prints,
//! every other module owns one noun (see docs/ARCHITECTURE.md).

pub mod alloc;
pub mod archive;
pub mod cli;
pub mod config;
pub mod container;
#[doc(hidden)]
pub mod fuzzing;
pub mod image;
pub mod network;
pub mod runc;
pub mod time;

// The two lower crates under the names the rest of berth uses for their floors.
pub use berth_runtime as runtime;
pub use berth_sys as sys;
