//! berth's container runtime, as a library: the operations of the OCI runtime spec on a
//! runtime spec (`oci-spec` types) and a root file system.
//!
//! [`Runtime::create`] sets a container up — namespaces, cgroup, the root file system
//! (overlay, mounts, /dev, pivot_root, masked and read-only paths), rlimits, user,
//! capabilities, seccomp — and parks its process before the user's program;
//! [`Container::start`] lets it exec; [`Container::state`], [`Container::kill`],
//! [`Container::pause`]/[`Container::resume`], [`Container::exec`] and
//! [`Container::delete`] follow the spec's lifecycle. [`Runtime::run`] creates and starts
//! in one step for a caller that waits for the process itself (berth's per-container
//! monitor). Each container's state record lives under the root directory the caller
//! chooses, written atomically.
//!
//! The runtime knows nothing of images, registries, Docker's profile formats or user
//! names: its caller turns those into the spec. It does not wait for the process, pump its
//! stdio or set up networking beyond the namespace; [`SpawnOptions::prestart`] is the hook
//! for the latter.
//!
//! ```no_run
//! use berth_runtime::{Runtime, SpawnOptions, Status, Stdio, load_spec};
//! use nix::sys::signal::Signal;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A bundle: config.json and the root file system it names (e.g. from `runc spec`).
//! let bundle = std::path::Path::new("/tmp/bundle");
//! let spec = load_spec(bundle)?;
//! let runtime = Runtime::new("/run/example-runtime");
//! let (w, _) = (std::fs::File::create("/tmp/out")?, ());
//! let stdio = Stdio::Fds { stdin: None, stdout: w.try_clone()?.into(), stderr: w.into() };
//! let (container, _process) =
//!     runtime.create("demo", bundle, &spec, SpawnOptions::new(stdio, "/tmp/seccomp-cache"))?;
//! assert_eq!(container.state().status, Status::Created);
//! container.start()?;
//! assert_eq!(runtime.load("demo")?.state().status, Status::Running);
//! container.kill(Signal::SIGKILL, true)?;
//! // ... once the process has exited (wait for it, or poll the status):
//! runtime.load("demo")?.delete(false)?;
//! # Ok(()) }
//! ```
//!
//! berth's `tests/runtime.rs` (`oci_create_start_state_kill_delete`) runs the same steps
//! against a real bundle directory.

pub mod caps;
pub mod cgroups;
mod container;
mod error;
mod hooks;
mod init;
mod process;
pub mod rootfs;
pub mod seccomp;
mod seccomp_table;
mod spawn;
pub mod spec;
mod state;

// The Docker-format profile berth ships is the most thorough input the seccomp tests have;
// its converter lives on berth's side (a Docker concern), so the tests borrow its file.
#[cfg(test)]
#[path = "../../../src/container/seccomp_profile.rs"]
#[allow(dead_code)]
mod docker_profile;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;
use oci_spec::runtime::Spec;

pub use container::{Container, OCI_VERSION, Runtime};
pub use error::RuntimeError;
pub use spec::load_spec;
pub use state::{State, Status};

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
    /// runc's `--preserve-fds N`: the caller's fds 3 .. 3+N-1 reach the process at the same
    /// numbers, close-on-exec cleared (everything else above 2 is closed). The caller must
    /// hold every one of them open from before it calls the runtime, so that nothing the
    /// runtime opens can take one of those numbers.
    pub preserve_fds: u32,
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
            preserve_fds: 0,
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

/// Makes the cgroup a spec's `linux.cgroupsPath` names, ahead of the start (by a process
/// working in parallel with the one that starts the container, as `make_network_namespace`).
pub fn make_cgroup(cgroups_path: &Path) -> Result<(), RuntimeError> {
    cgroups::for_path(cgroups_path)?.create()
}

/// Removes a cgroup made by [`make_cgroup`] for a container that never got a state record
/// (its start failed, or its starter died first), killing anything left in it. Idempotent.
pub fn remove_cgroup(cgroups_path: &Path) -> Result<(), RuntimeError> {
    cgroups::for_path(cgroups_path)?.destroy()
}

/// Whether the kernel's OOM killer has killed a process in the cgroup a spec's
/// `linux.cgroupsPath` names (for a caller that has no state record to load, as
/// [`remove_cgroup`]); false when the cgroup is gone.
pub fn cgroup_oom_killed(cgroups_path: &Path) -> bool {
    cgroups::for_path(cgroups_path).is_ok_and(|cg| cg.oom_kills() > 0)
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
