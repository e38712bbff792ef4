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

/// The container's cgroup directories that exist (v1: one per controller; v2: one, berth's
/// own or, with the systemd driver, its scope in berth.slice).
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut out = Vec::new();
    let unified = base.join("berth").join(id);
    if unified.is_dir() {
        out.push(unified);
    }
    let scope = base.join(format!("berth.slice/berth-{id}.scope"));
    if scope.is_dir() {
        out.push(scope);
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

/// Runs `cmd` (its output thrown away) and returns its exit code and its peak resident
/// memory in kB, as the kernel accounts it for that one process (`wait4`'s `ru_maxrss`), so
/// tests bound memory rather than time. Killed after `timeout`.
pub fn peak_rss_kb(mut cmd: std::process::Command, timeout: std::time::Duration) -> (i32, u64) {
    use std::process::Stdio;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = cmd.spawn().expect("spawn");
    let pid = child.id() as i32;
    let deadline = std::time::Instant::now() + timeout;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut killed = false;
    loop {
        // SAFETY: polling our own child with valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        assert_eq!(r, 0, "wait4: {}", std::io::Error::last_os_error());
        if !killed && std::time::Instant::now() >= deadline {
            // SAFETY: the child is not reaped yet, so the pid is still its own.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    drop(child);
    assert!(!killed, "{cmd:?} did not finish within {timeout:?}");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    (code, usage.ru_maxrss as u64)
}
