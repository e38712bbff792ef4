//! The runtime's one error type. Every variant names the object it failed on so the CLI
//! can print a single useful line, and maps to Docker's exit codes via `exit_code`.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The spec is unusable as given (missing field, bad value, unsupported feature).
    #[error("invalid runtime spec: {0}")]
    InvalidSpec(String),

    /// An embedded or user-supplied JSON document could not be parsed.
    #[error("parsing {what}: {source}")]
    Parse {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    /// A file-system operation in the parent failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A syscall in the parent failed.
    #[error("{call} ({object}): {source}")]
    Syscall {
        call: &'static str,
        object: String,
        #[source]
        source: io::Error,
    },

    /// A cgroup file could not be created, written or removed.
    #[error("cgroup {path}: {op}: {source}")]
    Cgroup {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A resource value the cgroup cannot take (runc's words, e.g. "the minimum allowed
    /// cpu-shares is 2").
    #[error("error setting cgroup config: {0}")]
    CgroupConfig(String),

    /// The seccomp profile cannot be turned into a filter.
    #[error("seccomp: {0}")]
    Seccomp(String),

    /// A setup step inside the new container process failed (reported back over the
    /// sync pipe before the user's command was executed).
    #[error("unable to start container process: {step} {object}: {source}")]
    ContainerSetup {
        step: &'static str,
        object: String,
        #[source]
        source: io::Error,
    },

    /// The command is not in $PATH (Docker: exit 127).
    #[error("unable to start container process: exec: \"{0}\": executable file not found in $PATH")]
    CommandNotFound(String),

    /// The command names a path that does not exist (Docker: exit 127).
    #[error(
        "unable to start container process: exec: \"{0}\": stat {0}: no such file or directory"
    )]
    NoSuchFile(String),

    /// The command exists but cannot be executed (Docker: exit 126).
    #[error("unable to start container process: exec: \"{cmd}\": {reason}")]
    CannotExecute { cmd: String, reason: String },

    /// The caller's prestart hook (e.g. network setup) failed.
    #[error("prestart: {0}")]
    Prestart(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// One of the spec's hooks failed or timed out.
    #[error("error running {point} hook {path}: {why}")]
    Hook {
        point: &'static str,
        path: std::path::PathBuf,
        why: String,
    },

    /// No container of this id under the runtime's root.
    #[error("container {0} does not exist")]
    NotFound(String),

    /// The id is taken by a container under the runtime's root.
    #[error("container with id {0} already exists")]
    Exists(String),

    /// An id the runtime cannot use as a directory name.
    #[error(
        "invalid container id {0:?}: it must match [A-Za-z0-9][A-Za-z0-9_.+-]* (at most 1024 bytes)"
    )]
    InvalidId(String),

    /// The operation is not allowed in the container's current status.
    #[error("cannot {op} container {id}: it is {status}")]
    WrongStatus {
        op: &'static str,
        id: String,
        status: crate::Status,
    },
}

impl RuntimeError {
    /// Docker's exit code for this failure: 127 command not found, 126 command cannot be
    /// invoked, 125 for everything that is berth's (or the spec's) fault.
    pub fn exit_code(&self) -> i32 {
        match self {
            RuntimeError::CommandNotFound(_) | RuntimeError::NoSuchFile(_) => 127,
            RuntimeError::CannotExecute { .. } => 126,
            _ => 125,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        RuntimeError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sys(call: &'static str, object: impl Into<String>, err: nix::Error) -> Self {
        RuntimeError::Syscall {
            call,
            object: object.into(),
            source: io::Error::from_raw_os_error(err as i32),
        }
    }
}
