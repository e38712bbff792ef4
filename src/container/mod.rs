//! Containers: records and state files, create, the per-container monitor and attach
//! protocol, lifecycle (start, state, removal). The OCI spec written at create is the contract
//! with `runtime/`.

pub mod attach;
pub mod commit;
pub mod create;
pub mod devices;
pub mod exec;
pub mod export;
pub mod filter;
pub mod flags;
pub mod in_use;
pub mod lifecycle;
pub mod list;
pub mod log_file;
pub mod log_opts;
pub mod logs;
pub mod monitor;
pub mod names;
pub mod ops;
pub mod policy;
pub mod record;
pub mod removal;
pub mod seccomp_profile;
pub mod spec;
pub mod store;
pub mod top;
pub mod tty;
pub mod update;
pub mod user;

use std::io;
use std::path::PathBuf;

use crate::image::store::StoreError;
use crate::runtime::RuntimeError;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("container file {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A store write of `rm` failed: Docker's words for it.
    #[error("unable to remove filesystem for {id}: {path}: {source}")]
    Remove {
        id: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("No such container: {0}")]
    NotFound(String),
    #[error("multiple containers found with provided prefix: {0}")]
    Ambiguous(String),
    #[error("No such image: {0}")]
    NoSuchImage(String),
    #[error("No command specified")]
    NoCommand,
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    #[error(
        "Invalid container name ({0}): names longer than {max} characters are not supported",
        max = names::MAX_NAME_LEN
    )]
    NameTooLong(String),
    #[error(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    )]
    NameConflict { name: String, id: String },
    #[error("{0}")]
    InvalidFlag(String),
    #[error("configured logging driver does not support reading")]
    LogsUnsupported,
    #[error("container {0} is already running")]
    AlreadyRunning(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error(
        "You cannot remove a running container {0}. Stop the container before attempting removal or force remove"
    )]
    RemoveRunning(String),
    #[error("Container {0} is already paused")]
    AlreadyPaused(String),
    #[error("Container {0} is not paused")]
    NotPaused(String),
    /// `exec` into a paused container; Docker names the container as it was given.
    #[error("Container {0} is paused, unpause the container before exec")]
    ExecPaused(String),
    /// The runtime could not start the container; `code` is Docker's 125/126/127.
    #[error("{message}")]
    Start { code: i32, message: String },
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    SeccompProfile(#[from] seccomp_profile::ProfileError),
    #[error(transparent)]
    User(#[from] user::UserError),
    #[error(transparent)]
    Tty(#[from] tty::TtyError),
    #[error(transparent)]
    Image(#[from] StoreError),
    /// `update` could not apply a value (Docker's words).
    #[error("Cannot update container {id}: {message}")]
    CannotUpdate { id: String, message: String },
    /// A `--device` that names no device.
    #[error(transparent)]
    Device(#[from] devices::DeviceError),
}

impl ContainerError {
    /// Docker's exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            ContainerError::Start { code, .. } => *code,
            ContainerError::Runtime(e) => e.exit_code(),
            // Docker's client reads "no such file or directory" as a missing command.
            ContainerError::Device(e) if e.not_found => 127,
            _ => 125,
        }
    }
}
