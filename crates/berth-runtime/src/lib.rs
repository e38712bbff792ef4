//! The runtime: turns an OCI runtime bundle (config.json + rootfs) into a running,
//! isolated process.
//!
//! It owns namespaces, the container's root file system (overlay, mounts, /dev,
//! pivot_root, masked and read-only paths), capabilities, seccomp, cgroups, the pty, user
//! resolution and the optional `--init`. It does not own container records, waiting for
//! the process, pumping stdio or networking: the caller gets a pid (a child of the calling
//! process) and does those.
//!
//! The defaults every container starts from live in `runtime-specs/` as data.
//!
//! ```no_run
//! use berth_runtime::{self as runtime, SpawnOptions, Stdio};
//! use nix::sys::wait::waitpid;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bundle = std::path::Path::new("/var/lib/berth/containers/abc");
//! let mut spec = runtime::load_spec(bundle)?;
//! // ... image config and flags: args, env, user, mounts, cgroupsPath, overlay annotations
//! let (r, w) = nix::unistd::pipe()?;
//! let opts = SpawnOptions::new(
//!     Stdio::Fds { stdin: None, stdout: w.try_clone()?, stderr: w },
//!     "/var/lib/berth/cache",
//! );
//! let started = match runtime::spawn(bundle, &spec, opts) {
//!     Ok(s) => s,
//!     Err(e) => {
//!         eprintln!("docker: Error response from daemon: {e}.");
//!         std::process::exit(e.exit_code());
//!     }
//! };
//! let status = waitpid(started.pid, None)?; // the caller owns waiting and the pipes
//! runtime::cleanup(&spec)?;
//! # let _ = (r, status, &mut spec); Ok(()) }
//! ```

pub mod caps;
pub mod cgroups;
mod error;
mod init;
pub mod rootfs;
pub mod seccomp;
mod seccomp_table;
mod spawn;
pub mod spec;

// The Docker-format profile berth ships is the most thorough input the seccomp tests have;
// its converter lives on berth's side (a Docker concern), so the tests borrow its file.
#[cfg(test)]
#[path = "../../../src/container/seccomp_profile.rs"]
#[allow(dead_code)]
mod docker_profile;

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{Process, Spec};

pub use error::RuntimeError;
pub use spec::load_spec;

use spawn::{ChildPlan, ChildStdio, Namespaces, ProcPlan};

/// How the container's stdio is wired.
pub enum Stdio {
    /// A new pty from the container's own devpts (`tty` prints /dev/pts/0, as under
    /// Docker); it is the controlling terminal, fds 0-2 and /dev/console. The master is
    /// returned in `Spawned::pty_master`; `process.consoleSize` sets its initial size.
    Pty,
    /// Given pipes/files; `stdin: None` → /dev/null.
    Fds {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
}

pub struct SpawnOptions {
    pub stdio: Stdio,
    /// Where compiled seccomp filters are cached (created if missing).
    pub cache_dir: PathBuf,
    /// Run berth's minimal init as PID 1 (`--init`).
    pub init: bool,
    /// Called with the container's pid once it is in its namespaces and cgroup, before
    /// anything in the container runs (e.g. to move a veth into its network namespace
    /// via /proc/PID/ns/net). An error aborts the start.
    pub prestart: Option<Prestart>,
    /// When the spec asks for a new network namespace: called just before the clone for
    /// one made ahead by another process (see `make_network_namespace`), which the child
    /// joins instead of creating its own in the clone. `None` from it: the clone creates it.
    pub network_namespace: Option<NetworkNamespaceSource>,
    /// The process that makes the network namespace also makes the container's cgroup
    /// directories, before it hands the namespace over (`run`): the namespace is then
    /// awaited before the cgroup is created here, which finds it made. Otherwise the
    /// cgroup is created first and the namespace awaited just before the clone.
    pub cgroup_made_with_namespace: bool,
}

/// See `SpawnOptions::network_namespace`. `None`: nothing was handed over.
pub type NetworkNamespaceSource = Box<dyn FnOnce() -> Option<HandedOver> + Send>;

/// What the process making the network namespace hands over.
pub struct HandedOver {
    /// The namespace (`None`: it could not make one, and the clone will).
    pub namespace: Option<OwnedFd>,
    /// With `SpawnOptions::cgroup_made_with_namespace`: the cgroup's directories were all
    /// made, so `spawn` only applies the limits.
    pub cgroup_made: bool,
}

/// See `SpawnOptions::prestart`.
pub type Prestart =
    Box<dyn FnOnce(Pid) -> Result<(), Box<dyn std::error::Error + Send + Sync>> + Send>;

impl SpawnOptions {
    pub fn new(stdio: Stdio, cache_dir: impl Into<PathBuf>) -> Self {
        SpawnOptions {
            stdio,
            cache_dir: cache_dir.into(),
            init: false,
            prestart: None,
            network_namespace: None,
            cgroup_made_with_namespace: false,
        }
    }
}

/// Whether `spec` asks for a network namespace of its own (`--network none` or `bridge`).
pub fn wants_new_network_namespace(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|nss| {
            nss.iter().any(|ns| {
                ns.typ() == oci_spec::runtime::LinuxNamespaceType::Network && ns.path().is_none()
            })
        })
}

/// Makes a new network namespace, its loopback up, for a container about to start, and
/// returns it; the calling thread is back in its own namespace afterwards. Made in another
/// process than the one that clones the container (the CLI, while its monitor plans the
/// container and creates its cgroup), it takes the kernel's ≈ 0.4 ms for a network
/// namespace off the path to the container's start. (On a second thread of the cloning
/// process it costs more than it saves: see docs/ARCHITECTURE.md.)
pub fn make_network_namespace() -> Result<OwnedFd, RuntimeError> {
    spawn::new_network_namespace()
}

/// A started container process (or exec'd process).
#[derive(Debug)]
pub struct Spawned {
    /// Host pid; a child of the calling process, which must wait for it.
    pub pid: Pid,
    pub pty_master: Option<OwnedFd>,
    /// The cgroup path (relative to the hierarchy roots) the process was put in.
    pub cgroup_path: Option<PathBuf>,
    /// The container's mount namespace, held open (spawn only). The kernel tears a mount
    /// namespace down, which waits for an RCU grace period, inside the exit of its last
    /// process, before the parent can see the exit: holding it moves that cost to whenever
    /// the caller drops this, e.g. after it has reported the exit.
    pub mount_ns: Option<OwnedFd>,
}

fn cgroup_of(spec: &Spec) -> Result<Option<Box<dyn cgroups::Cgroup>>, RuntimeError> {
    match spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
    {
        Some(p) => Ok(Some(cgroups::for_path(p)?)),
        None => Ok(None),
    }
}

fn self_join_files(cg: Option<&dyn cgroups::Cgroup>) -> Result<Vec<CString>, RuntimeError> {
    cg.map(|c| c.self_join_files())
        .unwrap_or_default()
        .iter()
        .map(|p| rootfs::cstr(p.as_os_str().as_bytes(), "cgroup tasks file"))
        .collect()
}

fn child_stdio(stdio: Stdio, console_size: Option<(u16, u16)>) -> Result<ChildStdio, RuntimeError> {
    Ok(match stdio {
        Stdio::Pty => ChildStdio::Pty(console_size),
        Stdio::Fds {
            stdin,
            stdout,
            stderr,
        } => {
            let stdin = match stdin {
                Some(fd) => fd,
                None => spawn::dev_null()?,
            };
            ChildStdio::Fds {
                stdin,
                stdout,
                stderr,
            }
        }
    })
}

/// Phase timings of `spawn`, printed to stderr when BERTH_TRACE_SPAWN is set.
struct Trace {
    on: bool,
    last: std::time::Instant,
    marks: Vec<(&'static str, std::time::Duration)>,
}

impl Trace {
    fn new() -> Self {
        Trace {
            on: std::env::var_os("BERTH_TRACE_SPAWN").is_some(),
            last: std::time::Instant::now(),
            marks: Vec::new(),
        }
    }

    fn mark(&mut self, what: &'static str) {
        berth_sys::trace(what);
        if self.on {
            let now = std::time::Instant::now();
            self.marks.push((what, now - self.last));
            self.last = now;
        }
    }

    fn print(&self) {
        if self.on {
            let parts: Vec<String> = self
                .marks
                .iter()
                .map(|(w, d)| format!("{w} {}µs", d.as_micros()))
                .collect();
            eprintln!("berth: spawn: {}", parts.join(", "));
        }
    }
}

pub(crate) fn reap(pid: Pid) {
    let _ = kill(pid, Signal::SIGKILL);
    let _ = waitpid(pid, None);
}

/// Creates the cgroup, clones the init process into its namespaces, sets up the rootfs
/// and execs `spec.process.args`. Returns once the user's command has been exec'd, or
/// the failure as an error (`exit_code()` gives Docker's 125/126/127).
pub fn spawn(bundle: &Path, spec: &Spec, opts: SpawnOptions) -> Result<Spawned, RuntimeError> {
    spec::validate(spec)?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| RuntimeError::InvalidSpec("process is missing".into()))?;
    let mut trace = Trace::new();
    let mut ns = Namespaces::from_spec(spec)?;
    let size = process
        .console_size()
        .as_ref()
        .map(|b| (b.height() as u16, b.width() as u16));
    let stdio = child_stdio(opts.stdio, size)?;
    let rootfs = rootfs::plan(bundle, spec)?;
    let mut proc_ = ProcPlan::new(process, spec, &opts.cache_dir, opts.init)?;
    proc_.create_cwd = true;
    let hostname = match spec.hostname() {
        Some(h) if ns.new_uts && !h.is_empty() => Some(rootfs::cstr(h, "hostname")?),
        _ => None,
    };
    trace.mark("plan");
    let mut network_namespace = opts.network_namespace.filter(|_| ns.new_net);
    let mut cgroup_made = false;
    if opts.cgroup_made_with_namespace
        && let Some(fetch) = network_namespace.take()
        && let Some(handed) = fetch()
    {
        cgroup_made = handed.cgroup_made;
        if let Some(fd) = handed.namespace {
            ns.join_network_namespace(fd);
        }
    }
    let cg = cgroup_of(spec)?;
    if let Some(cg) = &cg {
        if !cgroup_made {
            cg.create()?;
        }
        let applied = match spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
            Some(r) => cg.apply(r),
            None => Ok(()),
        };
        if let Err(e) = applied {
            let _ = cg.destroy();
            return Err(e);
        }
    }
    let fail_cg = |e: RuntimeError| {
        if let Some(cg) = &cg {
            let _ = cg.destroy();
        }
        e
    };
    let cgroup_tasks = self_join_files(cg.as_deref()).map_err(fail_cg)?;
    let pipes = spawn::pipes().map_err(fail_cg)?;
    trace.mark("cgroup create+apply");
    if let Some(fetch) = network_namespace
        && let Some(fd) = fetch().and_then(|h| h.namespace)
    {
        ns.join_network_namespace(fd);
    }
    trace.mark("network namespace");
    let child = ChildPlan {
        ns: &ns,
        rootfs: Some(&rootfs),
        hostname,
        proc_: &proc_,
        stdio,
        cgroup_tasks: &cgroup_tasks,
    };
    let pid = spawn::start_child(&child, &pipes).map_err(fail_cg)?;
    trace.mark("clone");
    // Our copies of the child's ends (pty slave, stdio, pipe ends) must go, or EOF on
    // the pipes and the pty would never come.
    drop(child);
    let spawn::Pipes {
        sync_r,
        sync_w,
        err_r,
        err_w,
    } = pipes;
    drop(sync_r);
    drop(err_w);

    let placed = match &cg {
        Some(cg) if cgroup_tasks.is_empty() => cg.add_pid(pid),
        _ => Ok(()),
    };
    let placed = placed.and_then(|()| match process.oom_score_adj() {
        Some(adj) => std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
            .map_err(|e| RuntimeError::io("write", format!("/proc/{pid}/oom_score_adj"), e)),
        None => Ok(()),
    });
    let placed = placed.and_then(|()| match opts.prestart {
        Some(hook) => hook(pid).map_err(RuntimeError::Prestart),
        None => Ok(()),
    });
    if let Err(e) = placed {
        reap(pid);
        return Err(fail_cg(e));
    }
    // Opened while the child waits for us, so it cannot be gone yet.
    let mount_ns = std::fs::File::open(format!("/proc/{pid}/ns/mnt"))
        .ok()
        .map(OwnedFd::from);
    trace.mark("cgroup join");
    match spawn::release_and_wait(sync_w, err_r) {
        Ok(pty_master) => {
            trace.mark("child setup until execve");
            trace.print();
            Ok(Spawned {
                pid,
                pty_master,
                cgroup_path: cg.as_ref().map(|c| c.path().to_path_buf()),
                mount_ns,
            })
        }
        Err(f) => {
            reap(pid);
            let e = match f {
                Some(f) => spawn::describe(f, &proc_, Some(&rootfs), &ns, &cgroup_tasks),
                None => RuntimeError::ContainerSetup {
                    step: "start",
                    object: "container init".into(),
                    source: std::io::Error::other("the container process exited during setup"),
                },
            };
            Err(fail_cg(e))
        }
    }
}

/// Runs `process` inside the running container whose init has host pid `container_pid`:
/// joins its namespaces and cgroup and applies the process's user, capabilities, rlimits
/// and the spec's seccomp profile. `opts.init` is ignored.
pub fn exec(
    container_pid: Pid,
    spec: &Spec,
    process: &Process,
    opts: SpawnOptions,
) -> Result<Spawned, RuntimeError> {
    let ns = Namespaces::for_exec(container_pid)?;
    let proc_ = ProcPlan::new(process, spec, &opts.cache_dir, false)?;
    let cg = cgroup_of(spec)?;
    let size = process
        .console_size()
        .as_ref()
        .map(|b| (b.height() as u16, b.width() as u16));
    let stdio = child_stdio(opts.stdio, size)?;
    let cgroup_tasks = self_join_files(cg.as_deref())?;
    let pipes = spawn::pipes()?;
    let child = ChildPlan {
        ns: &ns,
        rootfs: None,
        hostname: None,
        proc_: &proc_,
        stdio,
        cgroup_tasks: &cgroup_tasks,
    };
    let pid = spawn::start_child(&child, &pipes)?;
    drop(child);
    let spawn::Pipes {
        sync_r,
        sync_w,
        err_r,
        err_w,
    } = pipes;
    drop(sync_r);
    drop(err_w);
    if let Some(cg) = &cg
        && cgroup_tasks.is_empty()
        && let Err(e) = cg.add_pid(pid)
    {
        reap(pid);
        return Err(e);
    }
    match spawn::release_and_wait(sync_w, err_r) {
        Ok(pty_master) => Ok(Spawned {
            pid,
            pty_master,
            cgroup_path: cg.as_ref().map(|c| c.path().to_path_buf()),
            mount_ns: None,
        }),
        Err(f) => {
            reap(pid);
            Err(match f {
                Some(f) => spawn::describe(f, &proc_, None, &ns, &cgroup_tasks),
                None => RuntimeError::ContainerSetup {
                    step: "exec",
                    object: format!("in container {container_pid}"),
                    source: std::io::Error::other("the process exited during setup"),
                },
            })
        }
    }
}

/// Removes the container's cgroup after it exited (kills leftovers first). Idempotent.
pub fn cleanup(spec: &Spec) -> Result<(), RuntimeError> {
    match cgroup_of(spec)? {
        Some(cg) => cg.destroy(),
        None => Ok(()),
    }
}

/// Freezes or thaws every process of the container (`pause`/`unpause`).
pub fn freeze(spec: &Spec, frozen: bool) -> Result<(), RuntimeError> {
    match cgroup_of(spec)? {
        Some(cg) => cg.freeze(frozen),
        None => Err(RuntimeError::InvalidSpec(
            "container has no cgroupsPath".into(),
        )),
    }
}
