//! The runtime's own record of each container, one directory per container under the root
//! the caller chose: `state.json` (written whole or not at all, by rename) and, between
//! create and start, the `exec.fifo` the parked process waits on.
//!
//! The record keeps the init's start time beside its pid, so a recycled pid is never taken
//! for the container's process: the status is measured from the process, the FIFO and the
//! cgroup each time it is asked for, never stored.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::RuntimeError;

/// A container's status, as the OCI runtime spec names them (plus runc's `paused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being set up: what `prestart` and `createRuntime` hooks are told.
    Creating,
    /// Set up, its process waiting before the user's program until `start`.
    Created,
    /// The user's program runs.
    Running,
    /// Every process of the container is frozen.
    Paused,
    /// The container's init process has exited.
    Stopped,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// The state of a container, in the runtime spec's `state` schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The runtime spec version the state follows.
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    /// The init's host pid while it lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// The bundle directory the container was created from.
    pub bundle: PathBuf,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// What `state.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub id: String,
    pub bundle: PathBuf,
    /// The root file system, `root.path` resolved against the bundle.
    #[serde(default)]
    pub rootfs: PathBuf,
    pub pid: i32,
    /// /proc/PID/stat's start time of `pid`: tells it from a later process with its number.
    pub start_time: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups_path: Option<PathBuf>,
    /// When create finished, in nanoseconds since the Unix epoch.
    pub created: u128,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The spec has poststart or poststop hooks (then start and delete read it again).
    #[serde(default)]
    pub hooks: bool,
}

pub(crate) const STATE_FILE: &str = "state.json";
pub(crate) const EXEC_FIFO: &str = "exec.fifo";

impl Record {
    pub(crate) fn write(&self, dir: &Path) -> Result<(), RuntimeError> {
        let path = dir.join(STATE_FILE);
        let bytes = serde_json::to_vec(self).map_err(|e| RuntimeError::Parse {
            what: path.display().to_string(),
            source: e,
        })?;
        // A state record describes a live process: it has no use after a reboot, so
        // losing it to a power cut costs nothing, and an fsync would cost more than the
        // container's whole start.
        berth_sys::replace_file(&path, &bytes, 0o600)
            .map_err(|e| RuntimeError::io("write", &path, e))
    }

    pub(crate) fn read(dir: &Path, id: &str) -> Result<Self, RuntimeError> {
        let path = dir.join(STATE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RuntimeError::NotFound(id.to_string()));
            }
            Err(e) => return Err(RuntimeError::io("read", &path, e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| RuntimeError::Parse {
            what: path.display().to_string(),
            source: e,
        })
    }
}
