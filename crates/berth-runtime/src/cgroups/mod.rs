//! One cgroup per container, on cgroup v1 (one directory per controller hierarchy) or
//! v2 (one directory in the unified tree), behind one small trait: the cgroupfs driver,
//! which makes the directories itself. The systemd driver (`systemd.rs`, v2 only) has
//! systemd make the container's cgroup as a transient scope unit, and is chosen by the form
//! of the cgroupsPath (`slice:prefix:name`, runc's).

pub mod devices_bpf;
pub mod oom;
pub mod stats;
pub mod systemd;
pub(crate) mod v1;
pub(crate) mod v2;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use super::RuntimeError;

pub use v1::V1;
pub use v2::V2;

/// What the runtime needs from a container's cgroup.
pub trait Cgroup: Send {
    /// The container's path relative to the hierarchy roots (e.g. `/berth/<id>`).
    fn path(&self) -> &Path;
    /// Creates the directories (idempotent).
    fn create(&self) -> Result<(), RuntimeError>;
    /// Writes the limits from `linux.resources`.
    fn apply(&self, resources: &LinuxResources) -> Result<(), RuntimeError>;
    /// Moves `pid` into the cgroup.
    fn add_pid(&self, pid: Pid) -> Result<(), RuntimeError>;
    /// Whether the cgroup can only be made with its first process in it (a systemd scope):
    /// then `start` replaces `create`, `apply` and `add_pid` for the container's init.
    fn needs_first_pid(&self) -> bool {
        false
    }
    /// Makes the cgroup with `pid` in it and applies `resources` (see `needs_first_pid`).
    fn start(&self, pid: Pid, resources: Option<&LinuxResources>) -> Result<(), RuntimeError> {
        self.create()?;
        if let Some(r) = resources {
            self.apply(r)?;
        }
        self.add_pid(pid)
    }
    /// Files a new single-threaded process writes "0" to, to move itself in, instead of
    /// being moved by `add_pid`; empty when the layout has none. On v1 these are the
    /// per-thread `tasks` files: a thread moving itself skips the kernel's global
    /// threadgroup lock, whose writer waits for an RCU grace period (up to 20 ms here)
    /// whenever no other migration happened just before.
    fn self_join_files(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    /// Freezes (`true`) or thaws (`false`) every process in the cgroup.
    fn freeze(&self, frozen: bool) -> Result<(), RuntimeError>;
    /// Whether the cgroup is frozen (a missing cgroup or freezer: not frozen).
    fn frozen(&self) -> bool;
    /// The pids currently in the cgroup.
    fn pids(&self) -> Result<Vec<Pid>, RuntimeError>;
    /// How many processes of the cgroup (and its descendants) the kernel's OOM killer has
    /// killed since it was made: the `oom_kill` counter of `memory.events` (v2) or
    /// `memory.oom_control` (v1, kernel 4.13+). 0 without a memory controller or counter.
    fn oom_kills(&self) -> u64;
    /// The container's resource usage (cpu, memory, pids, block I/O).
    fn stats(&self) -> stats::Stats;
    /// A watch on the cgroup's OOM events; `None` without a memory controller.
    fn oom_watch(&self) -> Result<Option<oom::OomWatch>, RuntimeError>;
    /// Kills what is left and removes the directories; a missing cgroup is not an error.
    fn destroy(&self) -> Result<(), RuntimeError>;
}

/// `resources` with the device rules every container gets whatever its spec says (as runc
/// adds them): mknod of anything; read, write and mknod of /dev/null, zero, full, random,
/// urandom, tty, console, ptmx, the ptys and /dev/net/tun. Docker's specs rely on them (its
/// `-t` opens /dev/ptmx); a spec that lists them all, as berth's does, is used as it is.
pub fn with_default_devices(resources: &LinuxResources) -> std::borrow::Cow<'_, LinuxResources> {
    use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
    let Some(rules) = resources.devices() else {
        return std::borrow::Cow::Borrowed(resources);
    };
    let rule = |typ, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_typ(Some(typ));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(access.to_string()));
        r
    };
    use LinuxDeviceType::{B, C};
    let defaults = [
        rule(C, None, None, "m"),
        rule(B, None, None, "m"),
        rule(C, Some(1), Some(3), "rwm"),
        rule(C, Some(1), Some(8), "rwm"),
        rule(C, Some(1), Some(7), "rwm"),
        rule(C, Some(5), Some(0), "rwm"),
        rule(C, Some(1), Some(5), "rwm"),
        rule(C, Some(1), Some(9), "rwm"),
        rule(C, Some(5), Some(1), "rwm"),
        rule(C, Some(136), None, "rwm"),
        rule(C, Some(5), Some(2), "rwm"),
        rule(C, Some(10), Some(200), "rwm"),
    ];
    let missing: Vec<LinuxDeviceCgroup> = defaults
        .into_iter()
        .filter(|d| !rules.contains(d))
        .collect();
    if missing.is_empty() {
        return std::borrow::Cow::Borrowed(resources);
    }
    let mut r = resources.clone();
    let mut all = rules.clone();
    all.extend(missing);
    r.set_devices(Some(all));
    std::borrow::Cow::Owned(r)
}

/// The range of v1 `cpu.shares` the kernel keeps as written (it clamps anything else
/// silently); runc refuses values outside it, and so does the v2 conversion.
const MIN_SHARES: u64 = 2;
const MAX_SHARES: u64 = 262_144;

/// Refuses what the cgroup files would not take as given, before anything is written.
pub(crate) fn check_resources(r: &LinuxResources) -> Result<(), RuntimeError> {
    if let Some(shares) = r
        .cpu()
        .as_ref()
        .and_then(|c| c.shares())
        .filter(|s| *s != 0)
    {
        if shares < MIN_SHARES {
            return Err(RuntimeError::CgroupConfig(format!(
                "the minimum allowed cpu-shares is {MIN_SHARES}"
            )));
        }
        if shares > MAX_SHARES {
            return Err(RuntimeError::CgroupConfig(format!(
                "the maximum allowed cpu-shares is {MAX_SHARES}"
            )));
        }
    }
    if let Some(w) = r
        .block_io()
        .as_ref()
        .and_then(|b| b.weight())
        .filter(|w| *w != 0)
        && !(10..=1000).contains(&w)
    {
        return Err(RuntimeError::CgroupConfig(format!(
            "blkio weight {w} is out of range (10-1000)"
        )));
    }
    Ok(())
}

/// runc's conversion of v1 cpu shares (2..262144) to a v2 cpu.weight (1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    1 + ((shares.clamp(MIN_SHARES, MAX_SHARES) - MIN_SHARES) * 9999) / (MAX_SHARES - MIN_SHARES)
}

/// runc's conversion of a blkio weight (10..1000) to a v2 io.weight (1..10000).
pub fn blkio_to_io_weight(weight: u16) -> u64 {
    1 + (u64::from(weight.clamp(10, 1000)) - 10) * 9999 / 990
}

/// What the host's cgroups can do with the resource flags Docker checks before it creates a
/// container (its `sysinfo`): a flag the host cannot honour is discarded with a warning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSupport {
    /// `cpu.shares` (v1) or the cpu controller (v2).
    pub cpu_shares: bool,
    /// The cpus and memory nodes a cpuset may use (`0-3`, `0`), when there is a cpuset
    /// controller.
    pub cpuset: Option<(String, String)>,
    /// `blkio.weight`/`blkio.bfq.weight` (v1) or the io controller (v2).
    pub blkio_weight: bool,
}

/// Measured from the hierarchies' roots (v1) or the unified root's controllers (v2).
pub fn host_support() -> HostSupport {
    let read = |p: &Path| {
        fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let online =
        |file: &str, default: &str| read(Path::new(file)).unwrap_or_else(|| default.to_string());
    if is_v2() {
        let root = Path::new(v2::ROOT);
        let ctrls = read(&root.join("cgroup.controllers")).unwrap_or_default();
        let has = |c: &str| ctrls.split_whitespace().any(|x| x == c);
        HostSupport {
            cpu_shares: has("cpu"),
            cpuset: has("cpuset").then(|| {
                (
                    read(&root.join("cpuset.cpus.effective"))
                        .unwrap_or_else(|| online("/sys/devices/system/cpu/online", "0")),
                    read(&root.join("cpuset.mems.effective"))
                        .unwrap_or_else(|| online("/sys/devices/system/node/online", "0")),
                )
            }),
            blkio_weight: has("io"),
        }
    } else {
        let hierarchies = v1::hierarchies().unwrap_or_default();
        let mount = |name: &str| {
            hierarchies
                .iter()
                .find(|(c, _)| c.iter().any(|x| x == name))
                .map(|(_, m)| m.clone())
        };
        HostSupport {
            cpu_shares: mount("cpu").is_some_and(|m| m.join("cpu.shares").exists()),
            cpuset: mount("cpuset").map(|m| {
                (
                    read(&m.join("cpuset.cpus"))
                        .unwrap_or_else(|| online("/sys/devices/system/cpu/online", "0")),
                    read(&m.join("cpuset.mems"))
                        .unwrap_or_else(|| online("/sys/devices/system/node/online", "0")),
                )
            }),
            blkio_weight: mount("blkio").is_some_and(|m| {
                m.join("blkio.weight").exists() || m.join("blkio.bfq.weight").exists()
            }),
        }
    }
}

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// The cgroup manager for `path`: a systemd scope when it is in the form `slice:prefix:name`
/// (`systemd.rs`); else the cgroupfs driver for this host's layout, v2 when /sys/fs/cgroup is
/// the unified hierarchy, else v1 (including the "hybrid" layout, whose v2 part has no
/// controllers).
pub fn for_path(path: &Path) -> Result<Box<dyn Cgroup>, RuntimeError> {
    if let Some(unit) = systemd::parse(path) {
        return Ok(Box::new(systemd::Systemd::new(unit?)?));
    }
    let rel = normalize(path)?;
    if is_v2() {
        Ok(Box::new(V2::new(rel)))
    } else {
        Ok(Box::new(V1::new(rel)?))
    }
}

/// True when the host uses the unified (v2-only) layout. Asked once per process: a start
/// asks three times, and the layout does not change under a running berth.
pub fn is_v2() -> bool {
    static V2: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V2.get_or_init(|| {
        nix::sys::statfs::statfs("/sys/fs/cgroup")
            .map(|s| {
                // The magic's type differs between targets (i64 on x86_64 glibc).
                #[allow(clippy::unnecessary_cast)]
                let t = s.filesystem_type().0 as i64;
                t == CGROUP2_SUPER_MAGIC
            })
            .unwrap_or(false)
    })
}

fn normalize(path: &Path) -> Result<PathBuf, RuntimeError> {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::RootDir | std::path::Component::CurDir => {}
            _ => {
                return Err(RuntimeError::InvalidSpec(format!(
                    "cgroupsPath {} must not contain '..'",
                    path.display()
                )));
            }
        }
    }
    if out == Path::new("/") {
        return Err(RuntimeError::InvalidSpec(
            "cgroupsPath must name a cgroup below the root".into(),
        ));
    }
    Ok(out)
}

pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<(), RuntimeError> {
    let p = dir.join(file);
    fs::write(&p, value).map_err(|e| RuntimeError::Cgroup {
        op: "write",
        path: p,
        source: e,
    })
}

/// The value of the line `key N` in a cgroup's flat-keyed file (`memory.events`,
/// `memory.oom_control`); `None` when the file or the key is missing.
pub(crate) fn read_key(file: &Path, key: &str) -> Option<u64> {
    let text = fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

pub(crate) fn read_pids(file: &Path) -> Result<Vec<Pid>, RuntimeError> {
    match fs::read_to_string(file) {
        Ok(s) => Ok(s
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .map(Pid::from_raw)
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(RuntimeError::Cgroup {
            op: "read",
            path: file.to_path_buf(),
            source: e,
        }),
    }
}

/// rmdir that treats "already gone" as success and retries while the kernel still
/// counts exiting tasks (EBUSY right after SIGKILL).
pub(crate) fn remove_dir(dir: &Path, procs: &Path) -> Result<(), RuntimeError> {
    for attempt in 0..200 {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 199 => {
                for pid in read_pids(procs)? {
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => {
                return Err(RuntimeError::Cgroup {
                    op: "rmdir",
                    path: dir.to_path_buf(),
                    source: e,
                });
            }
        }
    }
    Ok(())
}
