//! cgroup v1: the container gets the same relative path in every mounted hierarchy.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use nix::unistd::Pid;
use oci_spec::runtime::{LinuxDeviceType, LinuxResources};

use super::{Cgroup, read_key, read_pids, remove_dir, write};
use crate::RuntimeError;

pub struct V1 {
    rel: PathBuf,
    /// (controller names of the hierarchy, its mount point)
    hierarchies: Vec<(Vec<String>, PathBuf)>,
}

/// The v1 hierarchies mounted on this host: (super options naming the controllers,
/// mount point). Read from mountinfo, not guessed from directory names; once per process
/// (the kernel formats mountinfo at ~50 µs a read, and starting a container asks thrice).
pub fn hierarchies() -> Result<Vec<(Vec<String>, PathBuf)>, RuntimeError> {
    static CACHE: std::sync::OnceLock<Vec<(Vec<String>, PathBuf)>> = std::sync::OnceLock::new();
    if let Some(h) = CACHE.get() {
        return Ok(h.clone());
    }
    let h = read_hierarchies()?;
    Ok(CACHE.get_or_init(|| h).clone())
}

fn read_hierarchies() -> Result<Vec<(Vec<String>, PathBuf)>, RuntimeError> {
    let info = berth_sys::read_kernel_file(Path::new("/proc/self/mountinfo"))
        .map_err(|e| RuntimeError::io("read", "/proc/self/mountinfo", e))?;
    Ok(parse_hierarchies(&info))
}

/// The v1 hierarchies mounted directly under /sys/fs/cgroup, each once. The same hierarchy
/// is often mounted elsewhere too — a chroot being built (debootstrap, schroot) or another
/// runtime's container with the host's /sys bound in — and a container must get each
/// hierarchy once: mounting one twice on the same directory fails with EBUSY.
fn parse_hierarchies(mountinfo: &str) -> Vec<(Vec<String>, PathBuf)> {
    let mut out: Vec<(Vec<String>, PathBuf)> = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split(' ');
        if post.next() != Some("cgroup") {
            continue;
        }
        let opts = post.nth(1).unwrap_or("");
        let Some(mnt) = pre.split(' ').nth(4) else {
            continue;
        };
        let mnt = PathBuf::from(mnt);
        if mnt.parent() != Some(Path::new("/sys/fs/cgroup")) || out.iter().any(|(_, m)| *m == mnt) {
            continue;
        }
        let ctrls = opts
            .split(',')
            .filter(|o| !matches!(*o, "rw" | "ro"))
            .map(str::to_string)
            .collect::<Vec<_>>();
        out.push((ctrls, mnt));
    }
    out
}

impl V1 {
    pub fn new(rel: PathBuf) -> Result<Self, RuntimeError> {
        Ok(V1 {
            rel,
            hierarchies: hierarchies()?,
        })
    }

    fn dir(&self, mnt: &Path) -> PathBuf {
        mnt.join(self.rel.strip_prefix("/").unwrap_or(&self.rel))
    }

    fn controller(&self, name: &str) -> Option<PathBuf> {
        self.hierarchies
            .iter()
            .find(|(c, _)| c.iter().any(|x| x == name))
            .map(|(_, m)| self.dir(m))
    }
}

fn is_cpuset(ctrls: &[String]) -> bool {
    ctrls.iter().any(|c| c == "cpuset")
}

/// A new cpuset cgroup starts with empty cpus/mems and refuses tasks, unless its parent has
/// `cgroup.clone_children` set, in which case the kernel copies the parent's. berth sets that
/// flag on the levels it creates below the hierarchy's root, so a container's cpuset
/// normally arrives ready and costs one read to check. A level found empty gets its
/// parent's values, the parent first made ready the same way (it may be a level another
/// berth has just created and not filled in yet), and, below the root, the flag for next
/// time; the host's root cpuset is never changed.
fn init_cpuset(root: &Path, dir: &Path) -> Result<(), RuntimeError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    let cpus = fs::read_to_string(dir.join("cpuset.cpus")).unwrap_or_default();
    if !cpus.trim().is_empty() || dir == root || !dir.starts_with(root) {
        return Ok(());
    }
    init_cpuset(root, parent)?;
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let cur = fs::read_to_string(dir.join(f)).unwrap_or_default();
        if cur.trim().is_empty() {
            let v = fs::read_to_string(parent.join(f)).unwrap_or_default();
            write(dir, f, v.trim())?;
        }
    }
    if parent != root {
        // Best effort: only saves the next container the copying above.
        let _ = fs::write(parent.join("cgroup.clone_children"), "1");
    }
    Ok(())
}

impl Cgroup for V1 {
    fn path(&self) -> &Path {
        &self.rel
    }

    fn create(&self) -> Result<(), RuntimeError> {
        for (ctrls, mnt) in &self.hierarchies {
            let target = self.dir(mnt);
            if is_cpuset(ctrls) {
                // Create level by level so every new level gets cpus/mems.
                let mut cur = mnt.clone();
                let mut levels = self.rel.components().skip(1).peekable();
                while let Some(comp) = levels.next() {
                    cur.push(comp);
                    // A level that already existed was set up by whoever made it, except
                    // that it may still be on its way: the container's own level, always
                    // new, checks its ancestors when it is found empty.
                    let created = mkdir(&cur)?;
                    let leaf = levels.peek().is_none();
                    if created || leaf {
                        init_cpuset(mnt, &cur)?;
                    }
                    if created && !leaf {
                        let _ = fs::write(cur.join("cgroup.clone_children"), "1");
                    }
                }
            } else {
                fs::create_dir_all(&target).map_err(|e| RuntimeError::Cgroup {
                    op: "mkdir",
                    path: target.clone(),
                    source: e,
                })?;
            }
        }
        Ok(())
    }

    fn apply(&self, r: &LinuxResources) -> Result<(), RuntimeError> {
        super::check_resources(r)?;
        if let (Some(m), Some(dir)) = (r.memory(), self.controller("memory")) {
            // memsw exists only with swap accounting; without it there is no swap to limit.
            let swap = m
                .swap()
                .filter(|_| dir.join("memory.memsw.limit_in_bytes").exists());
            // The kernel keeps memory+swap at or above the limit at every step: when the
            // new memory+swap is above the current limit (or unlimited), it goes first
            // (runc's order), else the limit does. Only an update can find either set.
            let current_limit = fs::read_to_string(dir.join("memory.limit_in_bytes"))
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(u64::MAX);
            let swap_first = swap.is_some_and(|s| s == -1 || (s as u64) > current_limit);
            if swap_first && let Some(swap) = swap {
                write(&dir, "memory.memsw.limit_in_bytes", &swap.to_string())?;
            }
            if let Some(limit) = m.limit() {
                write(&dir, "memory.limit_in_bytes", &limit.to_string())?;
            }
            if !swap_first && let Some(swap) = swap {
                write(&dir, "memory.memsw.limit_in_bytes", &swap.to_string())?;
            }
            if let Some(res) = m.reservation() {
                write(&dir, "memory.soft_limit_in_bytes", &res.to_string())?;
            }
            if let Some(sw) = m.swappiness() {
                write(&dir, "memory.swappiness", &sw.to_string())?;
            }
            if m.disable_oom_killer() == Some(true) {
                write(&dir, "memory.oom_control", "1")?;
            }
        }
        if let (Some(c), Some(dir)) = (r.cpu(), self.controller("cpu")) {
            if let Some(shares) = c.shares().filter(|s| *s != 0) {
                write(&dir, "cpu.shares", &shares.to_string())?;
            }
            if let Some(period) = c.period() {
                write(&dir, "cpu.cfs_period_us", &period.to_string())?;
            }
            if let Some(quota) = c.quota() {
                write(&dir, "cpu.cfs_quota_us", &quota.to_string())?;
            }
        }
        if let (Some(c), Some(dir)) = (r.cpu(), self.controller("cpuset")) {
            if let Some(cpus) = c.cpus() {
                write(&dir, "cpuset.cpus", cpus)?;
            }
            if let Some(mems) = c.mems() {
                write(&dir, "cpuset.mems", mems)?;
            }
        }
        if let (Some(w), Some(dir)) = (
            r.block_io()
                .as_ref()
                .and_then(|b| b.weight())
                .filter(|w| *w != 0),
            self.controller("blkio"),
        ) {
            // CFQ's blkio.weight where the kernel has it, else BFQ's (as runc chooses).
            let file = if dir.join("blkio.weight").exists() {
                "blkio.weight"
            } else {
                "blkio.bfq.weight"
            };
            write(&dir, file, &w.to_string())?;
        }
        if let (Some(p), Some(dir)) = (r.pids(), self.controller("pids")) {
            let v = if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".to_string()
            };
            write(&dir, "pids.max", &v)?;
        }
        if let (Some(devs), Some(dir)) = (r.devices(), self.controller("devices")) {
            // One rule per write(2), but the files stay open across the rules.
            let mut allow: Option<fs::File> = None;
            let mut deny: Option<fs::File> = None;
            for d in devs {
                let typ = match d.typ() {
                    Some(LinuxDeviceType::A) | None => "a",
                    Some(LinuxDeviceType::B) => "b",
                    Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => "c",
                    Some(LinuxDeviceType::P) => "p",
                };
                let num = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
                let access = d.access().clone().unwrap_or_else(|| "rwm".into());
                let rule = if typ == "a" && d.major().is_none() && d.minor().is_none() {
                    "a".to_string()
                } else {
                    format!("{typ} {}:{} {access}", num(d.major()), num(d.minor()))
                };
                let (name, slot) = if d.allow() {
                    ("devices.allow", &mut allow)
                } else {
                    ("devices.deny", &mut deny)
                };
                let path = dir.join(name);
                let fail = |e: io::Error| RuntimeError::Cgroup {
                    op: "write",
                    path: path.clone(),
                    source: e,
                };
                if slot.is_none() {
                    *slot = Some(
                        fs::OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .map_err(fail)?,
                    );
                }
                if let Some(file) = slot.as_mut() {
                    file.write_all(rule.as_bytes()).map_err(fail)?;
                }
            }
        }
        Ok(())
    }

    fn add_pid(&self, pid: Pid) -> Result<(), RuntimeError> {
        for (_, mnt) in &self.hierarchies {
            write(&self.dir(mnt), "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    fn self_join_files(&self) -> Vec<PathBuf> {
        self.hierarchies
            .iter()
            .map(|(_, mnt)| self.dir(mnt).join("tasks"))
            .collect()
    }

    fn freeze(&self, frozen: bool) -> Result<(), RuntimeError> {
        let Some(dir) = self.controller("freezer") else {
            return Err(RuntimeError::Cgroup {
                op: "freeze",
                path: self.rel.clone(),
                source: io::Error::from_raw_os_error(libc::ENOTSUP),
            });
        };
        let want = if frozen { "FROZEN" } else { "THAWED" };
        write(&dir, "freezer.state", want)?;
        // FREEZING → FROZEN is asynchronous; callers expect a settled state.
        for _ in 0..1000 {
            let s = fs::read_to_string(dir.join("freezer.state")).unwrap_or_default();
            if s.trim() == want {
                return Ok(());
            }
            write(&dir, "freezer.state", want)?;
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Ok(())
    }

    fn frozen(&self) -> bool {
        self.controller("freezer").is_some_and(|dir| {
            fs::read_to_string(dir.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
        })
    }

    fn pids(&self) -> Result<Vec<Pid>, RuntimeError> {
        match self
            .controller("pids")
            .or_else(|| self.hierarchies.first().map(|(_, m)| self.dir(m)))
        {
            Some(dir) => read_pids(&dir.join("cgroup.procs")),
            None => Ok(Vec::new()),
        }
    }

    fn stats(&self) -> super::stats::Stats {
        super::stats::v1(&|c| self.controller(c))
    }

    fn oom_watch(&self) -> Result<Option<super::oom::OomWatch>, RuntimeError> {
        self.controller("memory")
            .map(|d| super::oom::OomWatch::v1(&d))
            .transpose()
    }

    fn oom_kills(&self) -> u64 {
        self.controller("memory")
            .and_then(|dir| read_key(&dir.join("memory.oom_control"), "oom_kill"))
            .unwrap_or(0)
    }

    fn destroy(&self) -> Result<(), RuntimeError> {
        // Usually every process is gone already (the container's init took its pid
        // namespace down): try the plain rmdirs first and only look for survivors, thaw and
        // kill them where a directory is still busy.
        let mut busy = false;
        for (_, mnt) in &self.hierarchies {
            match fs::remove_dir(self.dir(mnt)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                // EBUSY, or anything the careful pass below should report.
                Err(_) => busy = true,
            }
        }
        if !busy {
            return Ok(());
        }
        // A frozen task cannot die: thaw first.
        if let Some(dir) = self.controller("freezer")
            && dir.exists()
        {
            let _ = write(&dir, "freezer.state", "THAWED");
        }
        for (_, mnt) in &self.hierarchies {
            let dir = self.dir(mnt);
            let procs = dir.join("cgroup.procs");
            for pid in read_pids(&procs)? {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
            remove_dir(&dir, &procs)?;
        }
        Ok(())
    }
}

/// Creates `p` unless it exists; true when it was created here.
fn mkdir(p: &Path) -> Result<bool, RuntimeError> {
    match fs::create_dir(p) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(RuntimeError::Cgroup {
            op: "mkdir",
            path: p.to_path_buf(),
            source: e,
        }),
    }
}

#[cfg(test)]
mod hierarchy_tests {
    use super::*;

    #[test]
    fn only_the_hosts_hierarchies_each_once() {
        let info = "\
35 25 0:30 / /sys/fs/cgroup/cpu rw,relatime shared:11 - cgroup cgroup rw,cpu
36 25 0:31 / /sys/fs/cgroup/net_cls,net_prio rw,relatime shared:12 - cgroup cgroup rw,net_cls,net_prio
37 25 0:32 / /sys/fs/cgroup/unified rw,relatime shared:13 - cgroup2 cgroup2 rw
38 25 0:33 / /sys/fs/cgroup/systemd rw,relatime shared:14 - cgroup cgroup rw,xattr,name=systemd
90 80 0:30 / /var/cache/vm/root/sys/fs/cgroup/cpu rw,relatime shared:11 - cgroup cgroup rw,cpu
91 80 0:30 / /sys/fs/cgroup/cpu rw,relatime shared:11 - cgroup cgroup rw,cpu
";
        let h = parse_hierarchies(info);
        let names: Vec<_> = h.iter().map(|(c, m)| (c.join(","), m.clone())).collect();
        assert_eq!(
            names,
            vec![
                ("cpu".to_string(), PathBuf::from("/sys/fs/cgroup/cpu")),
                (
                    "net_cls,net_prio".to_string(),
                    PathBuf::from("/sys/fs/cgroup/net_cls,net_prio")
                ),
                (
                    "xattr,name=systemd".to_string(),
                    PathBuf::from("/sys/fs/cgroup/systemd")
                ),
            ]
        );
    }
}
