//! Host processes and cgroups, as /proc and /sys/fs/cgroup show them.

use std::path::{Path, PathBuf};

/// The start time (field 22 of /proc/PID/stat), as berth records it.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(19)?.parse().ok()
}

/// The process state letter of /proc/PID/stat (`R`, `S`, `Z`, …).
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

/// Alive and not a zombie.
pub fn alive(pid: i32) -> bool {
    pid > 0 && !matches!(proc_state(pid), None | Some('Z') | Some('X'))
}

/// Gone entirely (reaped), not just dead.
pub fn reaped(pid: i32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// The container's cgroup directories that exist (v1: one per controller; v2: one).
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut out = Vec::new();
    let unified = base.join("berth").join(id);
    if unified.is_dir() {
        out.push(unified);
    }
    if let Ok(rd) = std::fs::read_dir(base) {
        for e in rd.flatten() {
            let d = e.path().join("berth").join(id);
            if d.is_dir() && !out.contains(&d) {
                out.push(d);
            }
        }
    }
    out
}

/// The pids in a cgroup directory's `cgroup.procs`.
pub fn cgroup_procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}
