//! The operations of the OCI runtime spec on containers kept under one root directory:
//! create (the process set up and parked before the user's program), start, state, kill,
//! pause/resume, exec and delete; and `run`, create and start in one step for a caller
//! that waits for the process itself.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use oci_spec::runtime::{Process, Spec};

use crate::hooks::{self, Point};
use crate::state::{EXEC_FIFO, Record, STATE_FILE};
use crate::{RuntimeError, SpawnOptions, Spawned, State, Status, process};

/// The runtime spec version the state reports follow.
pub const OCI_VERSION: &str = "1.2.0";

/// Containers under one state directory (e.g. `/run/berth-runc`): one subdirectory per
/// container id, which the runtime owns.
#[derive(Debug, Clone)]
pub struct Runtime {
    root: PathBuf,
}

/// A container known to a [`Runtime`]: its record, read when it was loaded.
#[derive(Debug)]
pub struct Container {
    dir: PathBuf,
    record: Record,
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Runtime { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// OCI `create`: sets the container up from `spec` (its `root.path` relative to
    /// `bundle`) — namespaces, cgroup, root file system, identity, privileges — and leaves
    /// its process waiting before the user's program until [`Container::start`]. The
    /// process is a child of the caller; when the caller exits first it is reparented
    /// (to the nearest subreaper, as under containerd's shim).
    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        spec: &Spec,
        opts: SpawnOptions,
    ) -> Result<(Container, Spawned), RuntimeError> {
        let (claim, opts) = self.begin(id, bundle, spec, opts)?;
        let dir = claim.dir.clone();
        let made = (|| {
            let fifo = make_exec_fifo(&dir)?;
            let spawned = process::launch(bundle, spec, opts, Some(fifo.as_raw_fd()), &mut |_| {})?;
            drop(fifo);
            match Record::new(id, bundle, spec, spawned.pid).and_then(|r| {
                r.write(&dir)?;
                Ok(r)
            }) {
                Ok(record) => Ok((
                    Container {
                        dir: dir.clone(),
                        record,
                    },
                    spawned,
                )),
                Err(e) => {
                    process::reap(spawned.pid);
                    let _ = process::cleanup(spec);
                    Err(e)
                }
            }
        })();
        if made.is_err() {
            claim.release();
        }
        made
    }

    /// Create and start in one step, without the exec FIFO: returns once the user's
    /// program has been exec'd. The process is a child of the caller, which waits for it
    /// and then calls [`Container::delete`]. The state record is written while the new
    /// process sets itself up, off the path to its start.
    pub fn run(
        &self,
        id: &str,
        bundle: &Path,
        spec: &Spec,
        opts: SpawnOptions,
    ) -> Result<(Container, Spawned), RuntimeError> {
        let (claim, opts) = self.begin(id, bundle, spec, opts)?;
        let dir = claim.dir.clone();
        let mut written: Option<Result<Record, RuntimeError>> = None;
        let launched = process::launch(bundle, spec, opts, None, &mut |pid| {
            written = Some(Record::new(id, bundle, spec, pid).and_then(|r| {
                r.write(&dir)?;
                Ok(r)
            }));
        });
        let spawned = match launched {
            Ok(s) => s,
            Err(e) => {
                claim.release();
                return Err(e);
            }
        };
        match written {
            Some(Ok(record)) => {
                let container = Container { dir, record };
                container.poststart(spec);
                Ok((container, spawned))
            }
            Some(Err(e)) => {
                process::reap(spawned.pid);
                let _ = process::cleanup(spec);
                claim.release();
                Err(e)
            }
            None => unreachable!("launch returned a process without releasing it"),
        }
    }

    /// The container `id`, as its record says.
    pub fn load(&self, id: &str) -> Result<Container, RuntimeError> {
        let dir = self.dir_of(id)?;
        let record = Record::read(&dir, id)?;
        Ok(Container { dir, record })
    }

    /// Every container under the root, in id order. A directory without a record (a
    /// create in progress, or one that failed half-way) is left out.
    pub fn list(&self) -> Result<Vec<Container>, RuntimeError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RuntimeError::io("read", &self.root, e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids.iter().filter_map(|id| self.load(id).ok()).collect())
    }

    fn dir_of(&self, id: &str) -> Result<PathBuf, RuntimeError> {
        let valid = !id.is_empty()
            && id.len() <= 1024
            && id.as_bytes()[0].is_ascii_alphanumeric()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.+-".contains(&b));
        if !valid {
            return Err(RuntimeError::InvalidId(id.to_string()));
        }
        Ok(self.root.join(id))
    }

    /// What create and run do first: refuse hooks berth cannot run, add the spec's own
    /// prestart hooks to the caller's, take the id.
    fn begin(
        &self,
        id: &str,
        bundle: &Path,
        spec: &Spec,
        opts: SpawnOptions,
    ) -> Result<(Claim, SpawnOptions), RuntimeError> {
        hooks::check(spec)?;
        let opts = with_spec_hooks(opts, id, bundle, spec);
        Ok((self.claim(id)?, opts))
    }

    /// Makes the container's directory; its existence is what makes an id taken. A
    /// directory the caller made for the container ahead (berth keeps its attach socket
    /// there) is taken once it holds a record.
    fn claim(&self, id: &str) -> Result<Claim, RuntimeError> {
        let dir = self.dir_of(id)?;
        std::fs::create_dir_all(&self.root)
            .map_err(|e| RuntimeError::io("create", &self.root, e))?;
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(Claim { dir, made: true }),
            Err(e)
                if e.kind() == std::io::ErrorKind::AlreadyExists
                    && !dir.join(STATE_FILE).exists()
                    && !dir.join(EXEC_FIFO).exists() =>
            {
                Ok(Claim { dir, made: false })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(RuntimeError::Exists(id.to_string()))
            }
            Err(e) => Err(RuntimeError::io("create", &dir, e)),
        }
    }
}

/// `opts` with the spec's `prestart` and `createRuntime` hooks run after the caller's own
/// prestart hook, at the same point: the container's namespaces exist, nothing of it runs.
fn with_spec_hooks(mut opts: SpawnOptions, id: &str, bundle: &Path, spec: &Spec) -> SpawnOptions {
    if !hooks::any(spec, Point::Prestart) && !hooks::any(spec, Point::CreateRuntime) {
        return opts;
    }
    let callers = opts.prestart.take();
    let (spec, id, bundle) = (spec.clone(), id.to_string(), bundle.to_path_buf());
    opts.prestart = Some(Box::new(move |pid: Pid| {
        if let Some(hook) = callers {
            hook(pid)?;
        }
        let state = State {
            oci_version: OCI_VERSION.to_string(),
            id,
            status: Status::Creating,
            pid: Some(pid.as_raw()),
            bundle,
            annotations: spec
                .annotations()
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        hooks::run(&spec, Point::Prestart, &state)?;
        hooks::run(&spec, Point::CreateRuntime, &state)?;
        Ok(())
    }));
    opts
}

/// A container's directory, and whether the runtime made it (and so may remove it whole).
struct Claim {
    dir: PathBuf,
    made: bool,
}

impl Claim {
    /// Undoes a claim whose create failed.
    fn release(&self) {
        if self.made {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            let _ = remove_record(&self.dir);
        }
    }
}

/// Removes the runtime's files from a container's directory, and the directory once empty
/// (one its caller made ahead keeps the caller's files). The record must go: a failure to
/// remove it is an error; the rest may already be gone.
fn remove_record(dir: &Path) -> Result<(), RuntimeError> {
    let _ = std::fs::remove_file(dir.join(EXEC_FIFO));
    let state = dir.join(STATE_FILE);
    match std::fs::remove_file(&state) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(RuntimeError::io("remove", &state, e)),
    }
    let _ = std::fs::remove_dir(dir);
    Ok(())
}

/// The FIFO a created container's process opens for writing before its exec: the open
/// blocks until `start` opens it for reading. Writable by all (0622), as the process may
/// already run as another user when it opens it.
fn make_exec_fifo(dir: &Path) -> Result<OwnedFd, RuntimeError> {
    let path = dir.join(EXEC_FIFO);
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| RuntimeError::sys("mkfifo", path.display().to_string(), e))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o622))
        .map_err(|e| RuntimeError::io("chmod", &path, e))?;
    // openat2 and not std's open: in the static musl build the open reached the kernel
    // without O_PATH (strace), and a FIFO opened for reading blocks until a writer comes —
    // the parked process this very descriptor is for: `create` hung.
    let cpath = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| RuntimeError::InvalidSpec(format!("path {}", path.display())))?;
    berth_sys::syscall::openat2(libc::AT_FDCWD, &cpath, libc::O_PATH, 0)
        .map_err(|e| RuntimeError::io("open", &path, std::io::Error::from_raw_os_error(e)))
}

impl Record {
    fn new(id: &str, bundle: &Path, spec: &Spec, pid: Pid) -> Result<Self, RuntimeError> {
        // The caller's child, which may have run its command to the end already.
        let start_time = berth_sys::child_start_time(pid.as_raw()).ok_or_else(|| {
            RuntimeError::ContainerSetup {
                step: "record",
                object: format!("container init {pid}"),
                source: std::io::Error::other("the process exited during setup"),
            }
        })?;
        let annotations: BTreeMap<String, String> = spec
            .annotations()
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Record {
            id: id.to_string(),
            bundle: bundle.to_path_buf(),
            rootfs: spec
                .root()
                .as_ref()
                .map(|r| bundle.join(r.path()))
                .unwrap_or_default(),
            pid: pid.as_raw(),
            start_time,
            cgroups_path: spec.linux().as_ref().and_then(|l| l.cgroups_path().clone()),
            created: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
            annotations,
            hooks: hooks::any(spec, Point::Poststart) || hooks::any(spec, Point::Poststop),
        })
    }
}

impl Container {
    pub fn id(&self) -> &str {
        &self.record.id
    }

    pub fn bundle(&self) -> &Path {
        &self.record.bundle
    }

    /// The root file system the container was created on.
    pub fn rootfs(&self) -> &Path {
        &self.record.rootfs
    }

    /// The init's host pid (it may have exited: see [`Container::status`]).
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.record.pid)
    }

    /// When create finished.
    pub fn created(&self) -> SystemTime {
        let nanos = u64::try_from(self.record.created).unwrap_or(u64::MAX);
        SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos)
    }

    /// The status, measured now: the init alive (the same process, by its start time),
    /// still parked on the exec FIFO, frozen.
    pub fn status(&self) -> Status {
        if berth_sys::process_start_time(self.record.pid) != Some(self.record.start_time) {
            return Status::Stopped;
        }
        if self.dir.join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        match self.cgroup() {
            Ok(Some(cg)) if cg.frozen() => Status::Paused,
            _ => Status::Running,
        }
    }

    /// OCI `state`.
    pub fn state(&self) -> State {
        let status = self.status();
        State {
            oci_version: OCI_VERSION.to_string(),
            id: self.record.id.clone(),
            status,
            pid: (status != Status::Stopped).then_some(self.record.pid),
            bundle: self.record.bundle.clone(),
            annotations: self.record.annotations.clone(),
        }
    }

    /// OCI `start`: lets the parked process exec the user's program. Returns once it has
    /// left the FIFO (its exec follows at once).
    pub fn start(&self) -> Result<(), RuntimeError> {
        let _lock = berth_sys::FileLock::exclusive_dir(&self.dir)
            .map_err(|e| RuntimeError::io("lock", &self.dir, e))?;
        self.expect_status("start", &[Status::Created])?;
        let path = self.dir.join(EXEC_FIFO);
        // Non-blocking: a blocking open for reading would wait for ever if the process
        // died before it opened its end.
        let mut fifo = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| RuntimeError::io("open", &path, e))?;
        let mut byte = [0u8; 1];
        loop {
            match fifo.read(&mut byte) {
                Ok(1) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(RuntimeError::io("read", &path, e)),
            }
            if self.status() == Status::Stopped {
                return Err(RuntimeError::WrongStatus {
                    op: "start",
                    id: self.record.id.clone(),
                    status: Status::Stopped,
                });
            }
            wait_readable(&fifo, Duration::from_millis(100));
        }
        std::fs::remove_file(&path).map_err(|e| RuntimeError::io("remove", &path, e))?;
        if self.record.hooks {
            self.poststart(&crate::load_spec(&self.record.bundle)?);
        }
        Ok(())
    }

    /// The spec's `poststart` hooks. The program runs already: a failure is a warning.
    fn poststart(&self, spec: &Spec) {
        if let Err(e) = hooks::run(spec, Point::Poststart, &self.state()) {
            eprintln!("berth: warning: {e}");
        }
    }

    /// OCI `kill`: sends `signal` to the init, or with `all` to every process of the
    /// container's cgroup. A paused container is thawed after a SIGKILL, which a frozen
    /// process would otherwise not act on. With `all`, a stopped container is no error, as
    /// with runc: its init has exited but processes it left in the cgroup (it shared a PID
    /// namespace, so they did not die with it) get the signal; containerd's shim kills a
    /// container's leftovers that way after every exit (the CRI plugin's `WithProcessKill`).
    pub fn kill(&self, signal: Signal, all: bool) -> Result<(), RuntimeError> {
        let allowed: &[Status] = if all {
            &[
                Status::Created,
                Status::Running,
                Status::Paused,
                Status::Stopped,
            ]
        } else {
            &[Status::Created, Status::Running, Status::Paused]
        };
        let status = self.expect_status("kill", allowed)?;
        let pids = match (all, self.cgroup()?) {
            (true, Some(cg)) => cg.pids()?,
            // The init's pid may be another process's by now.
            (true, None) if status == Status::Stopped => Vec::new(),
            _ => vec![self.pid()],
        };
        for pid in pids {
            match kill(pid, signal) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => return Err(RuntimeError::sys("kill", format!("process {pid}"), e)),
            }
        }
        if status == Status::Paused && signal == Signal::SIGKILL {
            self.freeze(false)?;
        }
        Ok(())
    }

    /// Freezes every process of the container (`pause`).
    pub fn pause(&self) -> Result<(), RuntimeError> {
        self.expect_status("pause", &[Status::Running, Status::Created])?;
        self.freeze(true)
    }

    /// Thaws a paused container (`resume`).
    pub fn resume(&self) -> Result<(), RuntimeError> {
        self.expect_status("resume", &[Status::Paused])?;
        self.freeze(false)
    }

    /// Runs `process` in the container's namespaces and cgroup, with the container's
    /// seccomp profile from `spec` (its bundle's config.json, which the caller may hold
    /// already). Returns once `process.args` has been exec'd; the caller waits for it.
    /// The caller checks the status first (a process joining a frozen cgroup would wait
    /// until it is thawed): berth knows it from its own record, so the runtime does not
    /// measure it a second time on exec's path.
    pub fn exec(
        &self,
        spec: &Spec,
        process: &Process,
        opts: SpawnOptions,
    ) -> Result<Spawned, RuntimeError> {
        process::exec(self.pid(), spec, process, opts)
    }

    /// Applies new resource limits to the container's cgroup (`update`).
    pub fn update(
        &self,
        resources: &oci_spec::runtime::LinuxResources,
    ) -> Result<(), RuntimeError> {
        self.expect_status(
            "update",
            &[Status::Created, Status::Running, Status::Paused],
        )?;
        match self.cgroup()? {
            Some(cg) => cg.apply(resources),
            None => Err(RuntimeError::InvalidSpec(
                "container has no cgroupsPath".into(),
            )),
        }
    }

    /// Whether the kernel's OOM killer killed any process of the container (its cgroup's
    /// `oom_kill` counter). Asked before `delete`, which removes the cgroup and its counters.
    pub fn oom_killed(&self) -> bool {
        self.cgroup()
            .ok()
            .flatten()
            .is_some_and(|cg| cg.oom_kills() > 0)
    }

    /// The container's resource usage, from its cgroup (runc's `events --stats`).
    pub fn stats(&self) -> Result<crate::cgroups::stats::Stats, RuntimeError> {
        match self.cgroup()? {
            Some(cg) => Ok(cg.stats()),
            None => Err(RuntimeError::InvalidSpec(
                "container has no cgroupsPath".into(),
            )),
        }
    }

    /// A watch on the container's OOM events (runc's `events`); `None` when its cgroup has
    /// no memory controller.
    pub fn oom_watch(&self) -> Result<Option<crate::cgroups::oom::OomWatch>, RuntimeError> {
        match self.cgroup()? {
            Some(cg) => cg.oom_watch(),
            None => Ok(None),
        }
    }

    /// The pids in the container's cgroup.
    pub fn processes(&self) -> Result<Vec<Pid>, RuntimeError> {
        match self.cgroup()? {
            Some(cg) => cg.pids(),
            None if self.status() != Status::Stopped => Ok(vec![self.pid()]),
            None => Ok(Vec::new()),
        }
    }

    /// OCI `delete`: removes the cgroup (killing what is left in it) and the record. A
    /// container that has not stopped is refused unless `force`, which kills it first.
    pub fn delete(self, force: bool) -> Result<(), RuntimeError> {
        if self.status() != Status::Stopped {
            if !force {
                return Err(RuntimeError::WrongStatus {
                    op: "delete",
                    id: self.record.id.clone(),
                    status: self.status(),
                });
            }
            self.kill(Signal::SIGKILL, true)?;
        }
        if let Some(cg) = self.cgroup()? {
            cg.destroy()?;
        }
        // The container is gone whatever its poststop hooks do: their failures are warnings.
        if self.record.hooks
            && let Err(e) = crate::load_spec(&self.record.bundle)
                .and_then(|spec| hooks::run(&spec, Point::Poststop, &self.state()))
        {
            eprintln!("berth: warning: {e}");
        }
        remove_record(&self.dir)
    }

    fn cgroup(&self) -> Result<Option<Box<dyn crate::cgroups::Cgroup>>, RuntimeError> {
        self.record
            .cgroups_path
            .as_deref()
            .map(crate::cgroups::for_path)
            .transpose()
    }

    fn freeze(&self, frozen: bool) -> Result<(), RuntimeError> {
        match self.cgroup()? {
            Some(cg) => cg.freeze(frozen),
            None => Err(RuntimeError::InvalidSpec(
                "container has no cgroupsPath".into(),
            )),
        }
    }

    /// The status, when it is one of `allowed`; otherwise the error for `op`.
    pub fn expect_status(
        &self,
        op: &'static str,
        allowed: &[Status],
    ) -> Result<Status, RuntimeError> {
        let status = self.status();
        if allowed.contains(&status) {
            Ok(status)
        } else {
            Err(RuntimeError::WrongStatus {
                op,
                id: self.record.id.clone(),
                status,
            })
        }
    }
}

fn wait_readable(f: &File, timeout: Duration) {
    let mut pfd = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(f),
        nix::poll::PollFlags::POLLIN,
    )];
    let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    let _ = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(ms));
}
