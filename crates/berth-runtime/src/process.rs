//! The parent's side of starting a process in a container: plan, cgroup, clone, the
//! prestart hook, release, and the wait until the process has exec'd (or parked, for OCI
//! create). The child's side is in `spawn.rs`; the operations built on this are in
//! `container.rs`.

use std::ffi::CString;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{Process, Spec};

use crate::spawn::{self, ChildPlan, ChildStdio, Namespaces, ProcPlan};
use crate::{RuntimeError, SpawnOptions, Spawned, Stdio, cgroups, rootfs};

pub(crate) fn cgroup_of(spec: &Spec) -> Result<Option<Box<dyn cgroups::Cgroup>>, RuntimeError> {
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
/// and execs `spec.process.args`. Returns once the user's command has been exec'd — or,
/// with `park` (an `O_PATH` fd of an exec FIFO), once the process waits on the FIFO before
/// its exec — or the failure as an error (`exit_code()` gives 125/126/127).
/// `meanwhile` runs once the child is released, while it sets itself up.
pub(crate) fn launch(
    bundle: &Path,
    spec: &Spec,
    opts: SpawnOptions,
    park: Option<RawFd>,
    meanwhile: &mut dyn FnMut(Pid),
) -> Result<Spawned, RuntimeError> {
    crate::spec::validate(spec)?;
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
    proc_.park = park;
    proc_.preserve_fds = opts.preserve_fds;
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
    let resources = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .map(cgroups::with_default_devices);
    // A systemd scope is made with the init in it, after the clone.
    let first_pid = cg.as_ref().is_some_and(|cg| cg.needs_first_pid());
    if let Some(cg) = cg.as_ref().filter(|_| !first_pid) {
        if !cgroup_made {
            cg.create()?;
        }
        let applied = match &resources {
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
    // A child in a user namespace of its own is moved in by the parent (`add_pid`) rather
    // than by itself: its writes would be judged against a namespace it has no maps in yet.
    let cgroup_tasks = if ns.user_maps.is_some() {
        Vec::new()
    } else {
        self_join_files(cg.as_deref()).map_err(fail_cg)?
    };
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
    let (sync_w, err_r) = pipes.parent_ends();

    let placed = match &ns.user_maps {
        Some((uid_map, gid_map)) => write_id_maps(pid, uid_map, gid_map),
        None => Ok(()),
    };
    let placed = placed.and_then(|()| match &cg {
        Some(cg) if first_pid => cg.start(pid, resources.as_deref()),
        Some(cg) if cgroup_tasks.is_empty() => cg.add_pid(pid),
        _ => Ok(()),
    });
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
    match spawn::release_and_wait(sync_w, err_r, &mut || meanwhile(pid)) {
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

/// The new user namespace's maps, written by this (privileged, host-namespace) parent while
/// the child waits, as runc does for a root host: the child never acts unmapped. No
/// `setgroups deny` is needed: the writer holds CAP_SETGID over the parent namespace.
fn write_id_maps(pid: Pid, uid_map: &str, gid_map: &str) -> Result<(), RuntimeError> {
    for (file, map) in [("uid_map", uid_map), ("gid_map", gid_map)] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, map).map_err(|e| RuntimeError::io("write", &path, e))?;
    }
    Ok(())
}

/// Runs `process` inside the running container whose init has host pid `container_pid`:
/// joins its namespaces and cgroup and applies the process's user, capabilities, rlimits
/// and the spec's seccomp profile. `opts.init` is ignored.
pub(crate) fn exec(
    container_pid: Pid,
    spec: &Spec,
    process: &Process,
    opts: SpawnOptions,
) -> Result<Spawned, RuntimeError> {
    let ns = Namespaces::for_exec(container_pid)?;
    let mut proc_ = ProcPlan::new(process, spec, &opts.cache_dir, false)?;
    proc_.preserve_fds = opts.preserve_fds;
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
    let (sync_w, err_r) = pipes.parent_ends();
    if let Some(cg) = &cg
        && cgroup_tasks.is_empty()
        && let Err(e) = cg.add_pid(pid)
    {
        reap(pid);
        return Err(e);
    }
    match spawn::release_and_wait(sync_w, err_r, &mut || {}) {
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
pub(crate) fn cleanup(spec: &Spec) -> Result<(), RuntimeError> {
    match cgroup_of(spec)? {
        Some(cg) => cg.destroy(),
        None => Ok(()),
    }
}
