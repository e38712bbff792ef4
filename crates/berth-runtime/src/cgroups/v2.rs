//! cgroup v2: one directory in the unified hierarchy at /sys/fs/cgroup.
//!
//! v2 has no devices.allow: the device rules are enforced by a BPF program
//! (`devices_bpf`), else CAP_MKNOD would let a container open the host's disks.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use super::{Cgroup, read_key, read_pids, remove_dir, write};
use crate::RuntimeError;

pub(crate) const ROOT: &str = "/sys/fs/cgroup";

pub struct V2 {
    root: PathBuf,
    rel: PathBuf,
}

impl V2 {
    pub fn new(rel: PathBuf) -> Self {
        V2 {
            root: PathBuf::from(ROOT),
            rel,
        }
    }

    /// A v2 hierarchy mounted elsewhere (e.g. /sys/fs/cgroup/unified in the hybrid
    /// layout); `rel` must be below the root.
    pub fn with_root(root: impl Into<PathBuf>, rel: impl Into<PathBuf>) -> Self {
        V2 {
            root: root.into(),
            rel: rel.into(),
        }
    }

    fn dir(&self) -> PathBuf {
        self.root
            .join(self.rel.strip_prefix("/").unwrap_or(&self.rel))
    }
}

/// The cgroup the processes of a namespace's root are moved to, the name Docker-in-Docker's
/// entrypoint uses for the same move.
const ROOT_PROCESSES: &str = "init";

/// Enables `enable` in the subtree_control of the hierarchy's root as berth sees it. The
/// host's root cgroup may hold processes and enable controllers at once; the root of a cgroup
/// namespace (berth inside a container, a CI job) is an ordinary cgroup, which refuses to while
/// it holds processes (EBUSY: "no internal processes"). Those processes are then moved into a
/// child, `init`, as Docker-in-Docker does, and the write tried again: a process forked in the
/// meantime lands in the root and is moved on the next round.
fn enable_at_root(root: &Path, enable: &str) -> Result<(), RuntimeError> {
    let control = root.join("cgroup.subtree_control");
    let mut tries = 0;
    loop {
        match fs::write(&control, enable) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 10 => tries += 1,
            Err(e) => {
                return Err(RuntimeError::Cgroup {
                    op: "write",
                    path: control,
                    source: e,
                });
            }
        }
        let init = root.join(ROOT_PROCESSES);
        match fs::create_dir(&init) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(RuntimeError::Cgroup {
                    op: "mkdir",
                    path: init,
                    source: e,
                });
            }
        }
        for pid in read_pids(&root.join("cgroup.procs"))? {
            match write(&init, "cgroup.procs", &pid.to_string()) {
                Ok(()) => {}
                // Exited since the list was read.
                Err(RuntimeError::Cgroup { source, .. })
                    if source.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Cgroup for V2 {
    fn path(&self) -> &Path {
        &self.rel
    }

    fn create(&self) -> Result<(), RuntimeError> {
        let mut cur = self.root.clone();
        let avail = fs::read_to_string(cur.join("cgroup.controllers")).unwrap_or_default();
        let enable = avail
            .split_whitespace()
            .filter(|c| matches!(*c, "cpu" | "cpuset" | "memory" | "pids" | "io" | "hugetlb"))
            .map(|c| format!("+{c}"))
            .collect::<Vec<_>>()
            .join(" ");
        // Controllers must be enabled in every ancestor's subtree_control, top down.
        for comp in self.rel.components().skip(1) {
            if !enable.is_empty() {
                if cur == self.root {
                    enable_at_root(&cur, &enable)?;
                } else {
                    write(&cur, "cgroup.subtree_control", &enable)?;
                }
            }
            cur.push(comp);
            match fs::create_dir(&cur) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(RuntimeError::Cgroup {
                        op: "mkdir",
                        path: cur,
                        source: e,
                    });
                }
            }
        }
        Ok(())
    }

    fn apply(&self, r: &LinuxResources) -> Result<(), RuntimeError> {
        super::check_resources(r)?;
        let dir = self.dir();
        if let Some(m) = r.memory() {
            if let Some(limit) = m.limit() {
                let v = if limit < 0 {
                    "max".to_string()
                } else {
                    limit.to_string()
                };
                write(&dir, "memory.max", &v)?;
                // OCI's swap is memory+swap; v2's swap.max counts swap alone.
                if let Some(swap) = m.swap()
                    && dir.join("memory.swap.max").exists()
                {
                    let v = if swap < 0 {
                        "max".to_string()
                    } else {
                        (swap - limit.max(0)).max(0).to_string()
                    };
                    write(&dir, "memory.swap.max", &v)?;
                }
            }
            if let Some(res) = m.reservation() {
                write(&dir, "memory.low", &res.to_string())?;
            }
        }
        if let Some(c) = r.cpu() {
            if c.quota().is_some() || c.period().is_some() {
                let quota = match c.quota() {
                    Some(q) if q > 0 => q.to_string(),
                    _ => "max".to_string(),
                };
                let period = c.period().unwrap_or(100_000);
                write(&dir, "cpu.max", &format!("{quota} {period}"))?;
            }
            if let Some(shares) = c.shares().filter(|s| *s != 0) {
                write(
                    &dir,
                    "cpu.weight",
                    &super::shares_to_weight(shares).to_string(),
                )?;
            }
            if let Some(cpus) = c.cpus() {
                write(&dir, "cpuset.cpus", cpus)?;
            }
            if let Some(mems) = c.mems() {
                write(&dir, "cpuset.mems", mems)?;
            }
        }
        if let Some(w) = r
            .block_io()
            .as_ref()
            .and_then(|b| b.weight())
            .filter(|w| *w != 0)
        {
            // BFQ's weight (same scale as v1's) where the scheduler has it, else the io
            // controller's io.weight on its 1..10000 scale (runc's choice and conversion).
            if dir.join("io.bfq.weight").exists() {
                write(&dir, "io.bfq.weight", &w.to_string())?;
            } else {
                let v = super::blkio_to_io_weight(w);
                write(&dir, "io.weight", &v.to_string())?;
            }
        }
        if let Some(p) = r.pids() {
            let v = if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".to_string()
            };
            write(&dir, "pids.max", &v)?;
        }
        if let Some(devs) = r.devices() {
            super::devices_bpf::attach(&dir, devs)?;
        }
        Ok(())
    }

    fn add_pid(&self, pid: Pid) -> Result<(), RuntimeError> {
        write(&self.dir(), "cgroup.procs", &pid.to_string())
    }

    fn freeze(&self, frozen: bool) -> Result<(), RuntimeError> {
        let dir = self.dir();
        write(&dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
        let want = if frozen { "frozen 1" } else { "frozen 0" };
        for _ in 0..1000 {
            let ev = fs::read_to_string(dir.join("cgroup.events")).unwrap_or_default();
            if ev.lines().any(|l| l == want) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Ok(())
    }

    fn frozen(&self) -> bool {
        fs::read_to_string(self.dir().join("cgroup.events"))
            .is_ok_and(|ev| ev.lines().any(|l| l == "frozen 1"))
    }

    fn pids(&self) -> Result<Vec<Pid>, RuntimeError> {
        read_pids(&self.dir().join("cgroup.procs"))
    }

    fn stats(&self) -> super::stats::Stats {
        super::stats::v2(&self.dir())
    }

    fn oom_watch(&self) -> Result<Option<super::oom::OomWatch>, RuntimeError> {
        let dir = self.dir();
        if !dir.join("memory.events").exists() {
            return Ok(None);
        }
        super::oom::OomWatch::v2(&dir).map(Some)
    }

    fn oom_kills(&self) -> u64 {
        read_key(&self.dir().join("memory.events"), "oom_kill").unwrap_or(0)
    }

    fn destroy(&self) -> Result<(), RuntimeError> {
        let dir = self.dir();
        if !dir.exists() {
            return Ok(());
        }
        // cgroup.kill (5.14+) kills atomically, even tasks forked meanwhile.
        if write(&dir, "cgroup.kill", "1").is_err() {
            let _ = write(&dir, "cgroup.freeze", "0");
            for pid in self.pids()? {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        remove_dir(&dir, &dir.join("cgroup.procs"))
    }
}
