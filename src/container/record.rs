//! What is kept about a container: `container.json` (what the user asked for, written once at
//! create and on rename) and `state.json` (what happened to it, rewritten atomically on every
//! transition). Both live in `<root>/containers/<id>/`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::image::digest::Digest;

/// The options given to `create`/`run` that shape the container (Docker's HostConfig and
/// Config, flattened to what berth supports).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    /// RFC 3339 with nanoseconds, UTC.
    pub created: String,
    /// The image as the user named it (`busybox`, `127.0.0.1:5000/debian:bookworm`).
    pub image: String,
    pub image_id: Digest,
    /// The command the container runs: entrypoint + cmd, resolved at create.
    pub path: String,
    pub args: Vec<String>,
    /// The entrypoint and command that `path` and `args` were made of (Docker's
    /// Config.Entrypoint and Config.Cmd: the flags', else the image's); `None` when empty.
    /// Records from before these fields have neither.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    pub hostname: String,
    pub user: String,
    pub env: Vec<String>,
    pub working_dir: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub auto_remove: bool,
    pub network_mode: String,
    pub stop_signal: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub init: bool,
    pub mounts: Vec<MountRecord>,
    /// Overlay lower directories, topmost first.
    pub layers: Vec<PathBuf>,
    /// Published ports, exposed ports and DNS flags (`network/`).
    #[serde(default)]
    pub net: crate::network::NetworkOptions,
    /// The logging driver and its options, the configuration's defaults merged in
    /// (`log_opts.rs`); json-file without options for a record from before them.
    #[serde(default)]
    pub log_config: super::log_opts::LogConfig,
    /// Resource, device and privilege flags, as inspect's HostConfig shows them.
    #[serde(default)]
    pub host_config: HostConfig,
}

/// The fields of `container.json` that listing reads (`ps`, its filters and columns,
/// `container prune`). Parsing only these passes over the rest of a record (environment,
/// mounts, layers, resource options) without building it: `ps -a` over a thousand
/// containers parses a thousand records.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordSummary {
    pub id: String,
    pub name: String,
    pub created: String,
    pub image: String,
    pub image_id: Digest,
    pub path: String,
    pub args: Vec<String>,
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub net: NetSummary,
}

/// Of a record's network options, what `ps` shows: the exposed ports.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NetSummary {
    #[serde(default)]
    pub exposed: Vec<String>,
}

/// The flags of `create`/`run` that shape the container's cgroup, devices and privileges,
/// under Docker's HostConfig names (kept for `inspect`; the spec holds what is applied).
/// Records from before it read as all unset.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "PascalCase")]
pub struct HostConfig {
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    /// Bytes; 0 for no limit.
    pub memory: i64,
    /// Memory plus swap in bytes (-1 unlimited, 0 unset).
    pub memory_swap: i64,
    pub nano_cpus: i64,
    pub pids_limit: Option<i64>,
    pub cpu_shares: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub blkio_weight: u16,
    pub devices: Vec<super::devices::DeviceMapping>,
    /// `host` or `private`.
    pub cgroupns_mode: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountRecord {
    /// `bind`, `volume` or `tmpfs`.
    pub kind: String,
    /// Volume name for volumes, host path for binds, empty for tmpfs.
    pub name: String,
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
    /// Anonymous volumes go away with `run --rm` and `rm -v`.
    pub anonymous: bool,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Exited,
}

impl Status {
    /// A paused container still runs as far as start, stop, rm and ps are concerned.
    pub fn is_running(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Exited => "exited",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    /// Host pid of the container's init, and its start time (to spot a recycled pid).
    #[serde(default)]
    pub pid: i32,
    #[serde(default)]
    pub pid_start: u64,
    /// The monitor that waits for the container.
    #[serde(default)]
    pub monitor_pid: i32,
    #[serde(default)]
    pub monitor_start: u64,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    /// The kernel's OOM killer killed a process of the container during its last run (its
    /// memory cgroup's `oom_kill` counter, read by the monitor before the cgroup went).
    #[serde(default)]
    pub oom_killed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ps` reads records through [`RecordSummary`]: a field renamed in [`ContainerRecord`]
    /// and not in the summary would make every container vanish from `ps`.
    #[test]
    fn a_summary_reads_a_record_as_berth_writes_it() {
        let record: ContainerRecord = serde_json::from_value(serde_json::json!({
            "id": "c0ffee", "name": "n", "created": "2026-12-07T23:00:00.000000001Z",
            "image": "busybox", "image_id": format!("sha256:{}", "0".repeat(64)),
            "path": "sh", "args": ["-c", "sleep 1"], "hostname": "h", "user": "",
            "env": ["A=1"], "working_dir": "/", "tty": false, "open_stdin": false,
            "auto_remove": false, "network_mode": "bridge", "stop_signal": null,
            "labels": {"a": "1"}, "init": false, "mounts": [], "layers": ["/l"],
            "net": {"exposed": ["80/tcp"]}
        }))
        .unwrap();
        let written = serde_json::to_vec_pretty(&record).unwrap();
        let summary: RecordSummary = serde_json::from_slice(&written).unwrap();
        assert_eq!(summary.id, record.id);
        assert_eq!(summary.name, record.name);
        assert_eq!(summary.created, record.created);
        assert_eq!(summary.image, record.image);
        assert_eq!(summary.image_id, record.image_id);
        assert_eq!(summary.path, record.path);
        assert_eq!(summary.args, record.args);
        assert_eq!(summary.labels, record.labels);
        assert_eq!(summary.net.exposed, record.net.exposed);
    }
}
