//! Starting containers (through their monitor), telling what state they are really in, and
//! removing them.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use oci_spec::runtime::Spec;

use super::ContainerError;
use super::attach::{self, StartReply};
use super::create::CreateOptions;
use super::monitor::{self, MonitorSetup};
use super::record::{ContainerRecord, State, Status};
use super::removal;
use super::spec;
use super::store::{ContainerDir, ContainerStore};
use crate::image::store::Store;
use crate::sys;

/// A started container: its init's pid, and the stream to its monitor (the first attach
/// client; drop it to detach).
pub struct Started {
    pub pid: i32,
    pub stream: UnixStream,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct StartOptions {
    /// The caller stays attached and must get every byte of output.
    pub foreground: bool,
    /// The caller's terminal size (rows, cols), given to the container's pty before its
    /// command starts.
    pub console_size: Option<(u16, u16)>,
}

/// Starts a created or exited container under a new monitor. Fails with the runtime's error
/// (and Docker's exit code) when the container cannot start.
pub fn start(
    store_root: &Path,
    dir: &ContainerDir,
    options: StartOptions,
) -> Result<Started, ContainerError> {
    let _lock = dir.lock()?;
    ensure_startable(dir, false)?;
    let record = dir.record()?;
    let mut spec = load_spec(dir)?;
    apply_console_size(&mut spec, &record, options)?;
    let listener = prepare(dir, &record)?;
    let socket = dir.attach_socket();
    let (ours, theirs) = UnixStream::pair().map_err(|source| ContainerError::Io {
        path: socket.clone(),
        source,
    })?;
    let (netns_cli, netns_monitor) = crate::runtime::wants_new_network_namespace(&spec)
        .then(netns_channel)
        .flatten()
        .unzip();
    let systemd_slice = systemd_slice(&spec);
    let setup = MonitorSetup {
        store_root: store_root.to_path_buf(),
        foreground: options.foreground,
        dir: dir.clone(),
        record,
        spec,
        network_namespace_from: netns_monitor,
        cgroup_from_cli: false,
    };
    let (monitor_pid, channel) = spawn_monitor(setup, listener, theirs, netns_cli)?;
    if let Some(channel) = channel {
        send_network_namespace(&channel, false);
    }
    if let Some(slice) = systemd_slice {
        move_monitor(monitor_pid, &slice, &dir.id);
    }
    let mut stream = ours;
    read_reply(&mut stream, &socket).map(|pid| Started { pid, stream })
}

/// `run`: creates a container and starts it under a new monitor, which is forked first and
/// creates the container itself. Meanwhile this process makes the container's network
/// namespace and cgroup, kernel work (≈ 0.8 ms here) that would otherwise follow the
/// creation instead of overlapping it. Returns the new container's ID and the started
/// container; a failure to create or to start comes back as the error it was in the monitor.
pub fn create_and_start(
    images: &Store,
    containers: &ContainerStore,
    options: &CreateOptions,
    start: StartOptions,
) -> Result<(String, Started), ContainerError> {
    let id = super::create::new_id()?;
    let options = CreateOptions {
        id: Some(id.clone()),
        ..options.clone()
    };
    let pair_failed = |source| ContainerError::Io {
        path: containers.dir_of(&id).path,
        source,
    };
    sys::trace(&format!("run-id {id}"));
    let (mut ours, theirs) = UnixStream::pair().map_err(pair_failed)?;
    let (netns_cli, netns_monitor) = spec::has_own_network(&options.network)
        .then(netns_channel)
        .flatten()
        .unzip();
    // SAFETY: the CLI is single-threaded here, so the child may go on running our code.
    match unsafe { libc::fork() } {
        -1 => Err(pair_failed(std::io::Error::last_os_error())),
        0 => {
            // SAFETY: setsid in the new child, which leads no group yet (see spawn_monitor).
            unsafe { libc::setsid() };
            drop(ours);
            drop(netns_cli);
            sys::trace("monitor-forked");
            let mut keep = vec![theirs.as_raw_fd()];
            keep.extend(netns_monitor.as_ref().map(|c| c.as_raw_fd()));
            monitor::detach(&keep);
            create_in_monitor(images, containers, &options, start, theirs, netns_monitor)
        }
        monitor_pid => {
            drop(theirs);
            drop(netns_monitor);
            let mut cgroup = None;
            let systemd = options.spec.systemd_cgroup;
            if let Some(channel) = netns_cli {
                // Made before the namespace is handed over: the monitor waits for the
                // message (or for this process to be gone) before it touches the cgroup,
                // and makes it itself only if the message does not say it is made.
                let path = spec::cgroup_path(&id, systemd);
                let made = crate::runtime::make_cgroup(&path).is_ok();
                cgroup = made.then_some(path);
                sys::trace("cli-cgroup-made");
                send_network_namespace(&channel, made);
                sys::trace("cli-netns-sent");
            }
            if systemd {
                move_monitor(monitor_pid, crate::config::SYSTEMD_SLICE, &id);
            }
            let dir = containers.dir_of(&id);
            match read_reply(&mut ours, &dir.attach_socket()) {
                Ok(pid) => Ok((id, Started { pid, stream: ours })),
                Err(e) => {
                    // The cgroup made here goes unless the container runs after all: one
                    // that could not be created never reached it, one that failed to start
                    // has had it removed, but a monitor that died without a word may have
                    // left its container running, and another `start` may have started it
                    // (the monitor then reports it as already running). A dead monitor's
                    // stopped --rm container is removed here, as its monitor would have.
                    let reported = matches!(e, ContainerError::Start { .. });
                    let record = dir.record().ok();
                    let stopped = record.is_none()
                        || current_state(&dir).is_ok_and(|s| !s.status.is_running());
                    if stopped && let Some(path) = cgroup {
                        let _ = crate::runtime::remove_cgroup(&path);
                    }
                    if !reported
                        && stopped
                        && options.auto_remove
                        && let Some(record) = record
                    {
                        // What failed is the error to report; a container that cannot be
                        // removed either stays listed, stopped.
                        let _ = removal::remove_files(images.root(), &dir, &record, true);
                    }
                    Err(e)
                }
            }
        }
    }
}

/// The monitor's side of [`create_and_start`]: creates the container, prepares its start
/// and serves it; a failure goes back to the CLI as an error frame. Never returns.
fn create_in_monitor(
    images: &Store,
    containers: &ContainerStore,
    options: &CreateOptions,
    start: StartOptions,
    mut stream: UnixStream,
    netns: Option<OwnedFd>,
) -> ! {
    let prepared = (|| {
        let created = super::create::create(images, containers, options)?;
        sys::trace("created");
        let mut spec = created.spec;
        let ready = created.dir.lock().and_then(|lock| {
            // Between the creation and the lock, another command may have found the
            // container by its name: removed it, or started it.
            ensure_startable(&created.dir, true)?;
            apply_console_size(&mut spec, &created.record, start)?;
            Ok((prepare(&created.dir, &created.record)?, lock))
        });
        match ready {
            Ok((listener, lock)) => Ok((
                MonitorSetup {
                    store_root: images.root().to_path_buf(),
                    foreground: start.foreground,
                    dir: created.dir,
                    record: created.record,
                    spec,
                    network_namespace_from: netns,
                    cgroup_from_cli: true,
                },
                listener,
                lock,
            )),
            Err(e) => {
                // As Docker: a container that failed to start stays created, unless --rm;
                // one that another command started meanwhile is left to it.
                if options.auto_remove && !matches!(e, ContainerError::AlreadyRunning(_)) {
                    // The start's failure is what is reported; a container that cannot be
                    // removed either stays listed, stopped.
                    let _ =
                        removal::remove_files(images.root(), &created.dir, &created.record, true);
                }
                Err(e)
            }
        }
    })();
    match prepared {
        Ok((setup, listener, lock)) => monitor::serve(setup, listener, stream, Some(lock)),
        Err(e) => {
            use std::io::Write;
            let _ = stream.write_all(&attach::start_failure(e.exit_code(), &e.to_string()));
            // SAFETY: leaving the forked process without running the parent's atexit handlers.
            unsafe { libc::_exit(0) }
        }
    }
}

/// Under the container's lock: the container still exists (it may have been removed while
/// the caller waited for the lock) and is not running. `fresh`: created by this very `run`,
/// so it never ran and has no exit left aside to look for.
fn ensure_startable(dir: &ContainerDir, fresh: bool) -> Result<(), ContainerError> {
    if !dir.record_path().exists() {
        return Err(ContainerError::NotFound(dir.id.clone()));
    }
    // The last run's exit, if it had to be left aside, is recorded before a new run
    // replaces the state: a failed start leaves the container as it was.
    if !fresh {
        let _ = dir.record_pending_exit();
    }
    if current_state(dir)?.status.is_running() {
        return Err(ContainerError::AlreadyRunning(dir.id.clone()));
    }
    Ok(())
}

/// Docker gives a tty container the client's terminal size before its command starts.
fn apply_console_size(
    spec: &mut Spec,
    record: &ContainerRecord,
    options: StartOptions,
) -> Result<(), ContainerError> {
    if let (Some((rows, cols)), Some(process)) = (options.console_size, spec.process_mut())
        && record.tty
    {
        let size = oci_spec::runtime::BoxBuilder::default()
            .height(u32::from(rows))
            .width(u32::from(cols))
            .build()
            .map_err(|e| ContainerError::InvalidFlag(format!("console size: {e}")))?;
        process.set_console_size(Some(size));
    }
    Ok(())
}

/// What a start needs on disk before its monitor takes over: the runtime directory with the
/// generated /etc files, and the attach socket, bound.
fn prepare(dir: &ContainerDir, record: &ContainerRecord) -> Result<UnixListener, ContainerError> {
    let runtime_dir = dir.runtime_dir();
    super::store::private_runtime_dir().map_err(|source| ContainerError::Io {
        path: super::store::RUNTIME_DIR.into(),
        source,
    })?;
    std::fs::create_dir_all(&runtime_dir).map_err(|source| ContainerError::Io {
        path: runtime_dir.clone(),
        source,
    })?;
    write_etc_files(dir, record)?;
    let socket = dir.attach_socket();
    let _ = std::fs::remove_file(&socket);
    UnixListener::bind(&socket).map_err(|source| ContainerError::Io {
        path: socket.clone(),
        source,
    })
}

/// The monitor's first word on the stream: the container's init pid, or why it failed.
fn read_reply(stream: &mut UnixStream, socket: &Path) -> Result<i32, ContainerError> {
    match attach::read_start_reply(stream) {
        Ok(StartReply::Started(pid)) => Ok(pid),
        Ok(StartReply::Failed { code, message }) => Err(ContainerError::Start { code, message }),
        Err(source) => Err(ContainerError::Io {
            path: socket.to_path_buf(),
            source,
        }),
    }
}

/// Forks the monitor into a session of its own, so it survives the CLI (which it outlives as
/// an orphan adopted by init or the nearest subreaper) and the user's terminal session.
/// Returns `netns_cli` to the CLI (the monitor closes its copy).
/// The slice of the container's scope when `spec` puts it in one (the systemd driver).
fn systemd_slice(spec: &Spec) -> Option<String> {
    let path = spec.linux().as_ref()?.cgroups_path().as_ref()?;
    Some(crate::runtime::cgroups::systemd::parse(path)?.ok()?.slice)
}

/// Under the systemd driver: moves the monitor (`pid`) out of this command's cgroup, which
/// belongs to the caller's unit (a service, a login session), into a scope of its own in
/// `slice`, as Podman does for conmon: stopping the caller's unit then stops neither the
/// monitor nor its container, and the monitor lives to record the container's exit. Done
/// here, in parallel with the monitor's work, and after the fork: this process forks no
/// more, and the D-Bus client leaves nothing behind (runtime's cgroups/systemd.rs). A
/// failure leaves the container tied to the caller's unit, with a warning.
fn move_monitor(pid: i32, slice: &str, id: &str) {
    sys::trace("cli-monitor-scope");
    let scope = spec::monitor_scope(id);
    if let Err(e) = crate::runtime::cgroups::systemd::move_to_scope(
        nix::unistd::Pid::from_raw(pid),
        slice,
        &scope,
    ) && !monitor_gone(pid)
    {
        eprintln!("WARNING: the container's monitor stays in this command's cgroup ({scope}: {e})");
    }
    sys::trace("cli-monitor-scope-done");
}

/// The monitor has exited already (a short-lived container under heavy load): there was
/// nothing left to move.
fn monitor_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat.get(i + 2..i + 3))
            .is_some_and(|state| state == "Z" || state == "X"),
        Err(_) => true,
    }
}

fn spawn_monitor(
    setup: MonitorSetup,
    listener: UnixListener,
    theirs: UnixStream,
    netns_cli: Option<OwnedFd>,
) -> Result<(i32, Option<OwnedFd>), ContainerError> {
    // SAFETY: the CLI is single-threaded here, so the child may go on running our code.
    match unsafe { libc::fork() } {
        -1 => Err(ContainerError::Io {
            path: setup.dir.path.clone(),
            source: std::io::Error::last_os_error(),
        }),
        0 => {
            // A session of its own: the user's terminal closing or a ctrl-c in it does not
            // reach the monitor. One fork, not the daemon's two: the monitor never opens a
            // terminal that could become its controlling one (the container's pty is opened
            // by the container's own session leader), and when this CLI exits the kernel
            // hands it to init like any orphan.
            // SAFETY: setsid in the new child, which leads no group yet.
            unsafe { libc::setsid() };
            drop(netns_cli);
            monitor::run(setup, listener, theirs)
        }
        pid => {
            drop(theirs);
            drop(listener);
            Ok((pid, netns_cli))
        }
    }
}

/// The CLI's and the monitor's ends of the channel the container's network namespace is
/// handed over on (see `send_network_namespace`).
fn netns_channel() -> Option<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ok()
}

/// Makes the container's network namespace here in the CLI while the monitor prepares the
/// rest, and hands it to the monitor: one message, with the namespace's fd when making it
/// worked (without, or if the CLI is gone, the monitor's clone makes one), and a byte
/// saying whether the CLI made every directory of the container's cgroup (then the monitor
/// only applies the limits).
fn send_network_namespace(channel: &OwnedFd, cgroup_made: bool) {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    use std::os::fd::AsRawFd;
    let made = crate::runtime::make_network_namespace().ok();
    let fds: Vec<_> = made.iter().map(|fd| fd.as_raw_fd()).collect();
    let cmsgs: Vec<ControlMessage<'_>> = if fds.is_empty() {
        Vec::new()
    } else {
        vec![ControlMessage::ScmRights(&fds)]
    };
    let iov = [std::io::IoSlice::new(if cgroup_made {
        &[monitor::HANDED_OVER_WITH_CGROUP]
    } else {
        &[monitor::HANDED_OVER]
    })];
    // The monitor may have stopped waiting: no SIGPIPE for that.
    let _ = sendmsg::<()>(
        channel.as_raw_fd(),
        &iov,
        &cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    );
}

/// Writes the container's /etc/hostname, /etc/hosts and /etc/resolv.conf into its runtime
/// directory, where the spec bind-mounts them from; afresh at each start, as Docker does
/// (a bridged container's address is added to hosts once it has one). On tmpfs: three files
/// per start cost no inodes on the store's file system.
fn write_etc_files(dir: &ContainerDir, record: &ContainerRecord) -> Result<(), ContainerError> {
    use crate::network::dns;
    let texts = [
        format!("{}\n", record.hostname),
        dns::hosts_file(
            &record.network_mode,
            &record.hostname,
            None,
            &record.net.dns,
        ),
        dns::resolv_conf(&record.network_mode, &record.net.dns),
    ];
    for (name, text) in super::spec::ETC_FILES.iter().zip(texts) {
        let path = dir.runtime_dir().join(name);
        std::fs::write(&path, text).map_err(|source| ContainerError::Io { path, source })?;
    }
    Ok(())
}

pub fn load_spec(dir: &ContainerDir) -> Result<Spec, ContainerError> {
    let path = dir.spec_path();
    let bytes = std::fs::read(&path).map_err(|source| ContainerError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| ContainerError::Corrupt { path, source })
}

/// The container's state as the kernel sees it: a recorded pid whose start time no longer
/// matches, or a vanished runtime directory after a reboot, means the container has exited.
///
/// An exit the monitor had to leave aside (the store was full or read-only when the container
/// exited) is what the state says, and is written into `state.json` here when the container
/// is not locked by anyone: the first command after space returns records it.
pub fn current_state(dir: &ContainerDir) -> Result<State, ContainerError> {
    Ok(as_of_now(dir, dir.state()?))
}

/// [`current_state`] of a container whose recorded state has been read already.
pub fn as_of_now(dir: &ContainerDir, recorded: State) -> State {
    let mut state = recorded;
    if state.status.is_running() {
        let alive = state.pid > 0 && sys::process_start_time(state.pid) == Some(state.pid_start);
        if !alive && let Some(exited) = dir.pending_exit(&state) {
            if let Ok(Some(_lock)) = dir.try_lock() {
                // Still no room: it stays aside, and the next command tries again.
                let _ = dir.record_pending_exit();
            }
            return exited;
        }
        if !alive {
            state.status = Status::Exited;
            if state.exit_code.is_none() {
                state.exit_code = Some(255);
            }
        }
    }
    state
}
