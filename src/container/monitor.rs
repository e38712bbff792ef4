//! The per-container monitor: a small process (forked from the CLI, detached into its own
//! session) that starts the container and outlives the command that asked for it. It owns the
//! container's pty master or stdio pipes, writes the json-file log (rotating it as Docker does:
//! `log_file.rs`), serves attach clients on a unix socket, waits for the exit, records it in
//! `state.json`, removes the cgroup, and does the `--rm` cleanup — then tells attached clients
//! the exit code and goes away.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oci_spec::runtime::Spec;

use super::attach::{self, EXIT, RESIZE, STARTED, STDERR, STDIN, STDIN_EOF, STDOUT};
use super::log_file::LogWriter;
use super::record::{ContainerRecord, State, Status};
use super::store::ContainerDir;
use super::tty;
use crate::network;
use crate::runtime::{self, SpawnOptions, Stdio};
use crate::sys;

/// Output kept for a slow client. Beyond it, a client that attached later misses output (the
/// log has everything, and the container never waits for it); the CLI that started the
/// container in the foreground instead holds the container back, as a pipe would.
const CLIENT_BUFFER: usize = 4 << 20;
/// Input from clients waiting for the container to read it; beyond it, clients are not read.
const STDIN_BUFFER: usize = 1 << 20;

pub struct MonitorSetup {
    pub store_root: PathBuf,
    /// The starting CLI stays attached (`run` without -d, `start -a`): it gets every byte of
    /// output, at the container's pace.
    pub foreground: bool,
    pub dir: ContainerDir,
    pub record: ContainerRecord,
    pub spec: Spec,
    /// Where the starting CLI sends the container's network namespace, which it makes while
    /// the monitor prepares the rest (see `lifecycle.rs`).
    pub network_namespace_from: Option<OwnedFd>,
    /// The CLI makes the container's cgroup directories before it sends the namespace
    /// (`run`): the monitor then waits for the message for as long as the CLI lives, since
    /// a cgroup made by a CLI that had been given up on could outlive the container.
    pub cgroup_from_cli: bool,
}

/// Runs in the forked monitor process; never returns.
pub fn run(setup: MonitorSetup, listener: UnixListener, first: UnixStream) -> ! {
    let mut keep = vec![listener.as_raw_fd(), first.as_raw_fd()];
    keep.extend(setup.network_namespace_from.as_ref().map(|c| c.as_raw_fd()));
    detach(&keep);
    serve(setup, listener, first, None)
}

/// Starts the container and serves it until it has exited; never returns. The monitor must
/// have detached already. `start_lock`, the container's lock when the monitor took it itself
/// (`run`, whose monitor creates the container), is held until the start is reported.
pub fn serve(
    mut setup: MonitorSetup,
    listener: UnixListener,
    first: UnixStream,
    start_lock: Option<sys::FileLock>,
) -> ! {
    let netns_channel = setup.network_namespace_from.take();
    let code = match monitor(&setup, listener, first, netns_channel, start_lock) {
        Ok(()) => 0,
        Err(_) => 1,
    };
    // SAFETY: leaving the forked process without running the parent's atexit handlers.
    unsafe { libc::_exit(code) }
}

/// Gives back the memory the monitor does not need while it waits. It is a fork of the CLI
/// and starts out holding every page the CLI touched (the code for parsing, pulling, building
/// specs), and it lives as long as its container; it calls this whenever its container has
/// been quiet for a second. Dropped: pages mapped read-only from files,
/// code and constant data, which fault in again from the page cache on the paths that need
/// them (never a mapping holding private copies, such as relocated RELRO data: dropping those
/// would revert them to the file's bytes); the stack below what is in use; the scratch
/// buffer; free heap.
fn shed_memory(scratch: &mut [u8]) {
    const PAGE: usize = 4096;
    let here = 0u8;
    // Everything deeper than this is unused; the margin covers the calls made from here.
    let stack_in_use = (std::ptr::addr_of!(here) as usize - 32 * 1024) & !(PAGE - 1);
    let mut drop: Vec<(usize, usize)> = Vec::with_capacity(64);
    // (range, droppable) of the mapping whose fields are being read.
    let mut current: Option<(usize, usize, bool)> = None;
    let mut on_line = |line: &str| {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else {
            return;
        };
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            )
        {
            if let Some((s, e, true)) = current.take() {
                drop.push((s, e));
            }
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            current = if path == "[stack]" {
                // Only the stack we are running on, below the frames in use.
                if (start..end).contains(&stack_in_use) {
                    drop.push((start, stack_in_use));
                }
                None
            } else {
                let file_read_only =
                    path.starts_with('/') && perms.as_bytes().get(1) == Some(&b'-');
                Some((start, end, file_read_only))
            };
        } else if matches!(first, "Anonymous:" | "Swap:")
            && fields.next() != Some("0")
            && let Some(m) = current.as_mut()
        {
            // Private copies in memory or swapped out (relocated RELRO, say): dropping
            // them would bring back the file's bytes.
            m.2 = false;
        }
    };
    // Read through the scratch buffer, a line at a time: the whole of smaps (tens of
    // kilobytes) read onto the heap would leave its pages behind, freed but in use,
    // in the middle of the heap where trimming does not reach.
    if let Ok(mut smaps) = std::fs::File::open("/proc/self/smaps") {
        let mut filled = 0;
        loop {
            let n = match smaps.read(&mut scratch[filled..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            filled += n;
            let complete = scratch[..filled]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            for line in scratch[..complete].split(|&b| b == b'\n') {
                on_line(std::str::from_utf8(line).unwrap_or(""));
            }
            scratch.copy_within(complete..filled, 0);
            filled -= complete;
            if filled == scratch.len() {
                // A line longer than the buffer: not one smaps writes.
                break;
            }
        }
        if let Some((s, e, true)) = current {
            drop.push((s, e));
        }
    }
    let buf_start = (scratch.as_ptr() as usize).next_multiple_of(PAGE);
    let buf_end = (scratch.as_ptr() as usize + scratch.len()) & !(PAGE - 1);
    if buf_end > buf_start {
        drop.push((buf_start, buf_end));
    }
    for (start, end) in drop {
        if end > start {
            // SAFETY: each range is a clean file mapping (re-read on access), stack below the
            // deepest frame in use, or whole pages of the scratch buffer, whose contents are
            // never read before being written. MADV_RANDOM keeps a later fault from reading
            // ahead.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_RANDOM);
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
            }
        }
    }
    crate::alloc::trim();
}

/// Detaches the forked monitor from the CLI's terminal, signals and descriptors, keeping
/// only `keep` open.
pub fn detach(keep: &[RawFd]) {
    // SAFETY: plain signal disposition changes and fd juggling in a single-threaded child.
    unsafe {
        for sig in [
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGTSTP,
            libc::SIGTTIN,
            libc::SIGTTOU,
            libc::SIGPIPE,
        ] {
            libc::signal(sig, libc::SIG_IGN);
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            libc::close(null);
        }
    }
    // Nothing of the CLI's (a lock file, a terminal) may stay open in a long-lived process:
    // close every range between the descriptors we keep.
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|fd| *fd > 2).collect();
    keep.sort_unstable();
    let mut from: libc::c_uint = 3;
    let mut closed = true;
    for fd in keep.iter().map(|fd| *fd as libc::c_uint) {
        if fd > from {
            // SAFETY: closing descriptors this process will never use.
            closed &= unsafe { crate::sys::syscall::close_range(from, fd - 1) }.is_ok();
        }
        from = fd + 1;
    }
    // SAFETY: as above.
    closed &= unsafe { crate::sys::syscall::close_range(from, libc::c_uint::MAX) }.is_ok();
    if closed {
        return;
    }
    // No close_range (an old kernel, a seccomp filter): one by one.
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        let fds: Vec<RawFd> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter(|fd| *fd > 2 && !keep.contains(fd))
            .collect();
        for fd in fds {
            // SAFETY: as above.
            unsafe { libc::close(fd) };
        }
    }
}

struct Client {
    stream: UnixStream,
    inbuf: Vec<u8>,
    outbuf: VecDeque<u8>,
    closed: bool,
    /// The CLI that started the container attached (`run`, `start -a`): it gets every byte.
    foreground: bool,
}

impl Client {
    fn new(stream: UnixStream, foreground: bool) -> Client {
        let _ = stream.set_nonblocking(true);
        Client {
            stream,
            inbuf: Vec::new(),
            outbuf: VecDeque::new(),
            closed: false,
            foreground,
        }
    }

    fn queue(&mut self, frame: &[u8]) {
        if self.foreground || self.outbuf.len() + frame.len() <= CLIENT_BUFFER {
            self.outbuf.extend(frame);
        }
    }

    fn holds_back_output(&self) -> bool {
        self.foreground && self.outbuf.len() > CLIENT_BUFFER
    }

    fn flush(&mut self) {
        while !self.outbuf.is_empty() {
            let (a, _) = self.outbuf.as_slices();
            match self.stream.write(a) {
                Ok(0) => {
                    self.closed = true;
                    return;
                }
                Ok(n) => {
                    self.outbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.closed = true;
                    return;
                }
            }
        }
    }
}

/// The container's output side, split by stream for the log.
struct Output {
    fd: OwnedFd,
    stream: &'static str,
    kind: u8,
    open: bool,
    partial: Vec<u8>,
}

/// Input for the container (its stdin pipe or the pty master), written without blocking.
struct StdinSink {
    fd: OwnedFd,
    pending: VecDeque<u8>,
    /// The client ended its input: close once everything pending is written.
    eof: bool,
}

impl StdinSink {
    fn new(fd: OwnedFd) -> StdinSink {
        set_nonblocking(fd.as_raw_fd());
        StdinSink {
            fd,
            pending: VecDeque::new(),
            eof: false,
        }
    }

    /// Writes what the container will take now; false once the sink should be closed.
    fn drain(&mut self) -> bool {
        while !self.pending.is_empty() {
            let (a, _) = self.pending.as_slices();
            // SAFETY: writing from a valid buffer to a descriptor we own.
            let n = unsafe { libc::write(self.fd.as_raw_fd(), a.as_ptr().cast(), a.len()) };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => return true,
                    // The container closed its stdin: nothing more can be delivered.
                    _ => return false,
                }
            }
            self.pending.drain(..n as usize);
        }
        !self.eof
    }
}

/// The monitor's life, one step each: spawn the container (or report why it could not
/// start), report the start, serve its stdio and clients until it has exited, then release
/// its resources and report the exit.
fn monitor(
    setup: &MonitorSetup,
    listener: UnixListener,
    first: UnixStream,
    netns_channel: Option<OwnedFd>,
    start_lock: Option<sys::FileLock>,
) -> io::Result<()> {
    let record = &setup.record;
    let give_up = !setup.cgroup_from_cli;
    let network_namespace = netns_channel.map(|c| receive_network_namespace(c, give_up));
    let mut clients = vec![Client::new(first, setup.foreground)];
    let (stdio, stdin_w, outputs_plan) = container_stdio(record)?;
    let reservations = Arc::new(Mutex::new(Vec::new()));
    let options = SpawnOptions {
        stdio,
        cache_dir: setup.store_root.join("cache"),
        init: record.init,
        prestart: network_prestart(setup, reservations.clone()),
        network_namespace,
        cgroup_made_with_namespace: setup.cgroup_from_cli,
        preserve_fds: 0,
    };
    sys::trace("monitor-spawn");
    let oci = super::store::oci_runtime();
    // A record left by a monitor that was killed: its process is gone (this start holds
    // the container's start lock), so only the record and the cgroup remain.
    if let Ok(stale) = oci.load(&record.id) {
        let _ = stale.delete(false);
    }
    let (container, spawned) = match oci.run(&record.id, &setup.dir.path, &setup.spec, options) {
        Ok(started) => started,
        Err(e) => {
            report_start_failure(setup, e.exit_code(), e.to_string(), clients);
            return Ok(());
        }
    };
    let pid = spawned.pid.as_raw();
    sys::trace("monitor-spawned");
    let state = match report_started(setup, pid, &mut clients) {
        Ok(state) => state,
        Err(e) => {
            // A container whose start cannot be recorded (a full or read-only store) must not
            // run: nothing could find it to stop it, and `rm` would take its files away under
            // it. It goes with its cgroup, and the start fails with the store's error.
            let _ = container.delete(true);
            report_start_failure(setup, 125, e.to_string(), clients);
            return Ok(());
        }
    };
    drop(start_lock);

    // The mount namespace pins the container's network namespace (through its /sys), and
    // a bridged container's veth must vanish with its exit, not after the report: only a
    // container without host-visible networking keeps its teardown for after the report.
    let mount_ns = spawned
        .mount_ns
        .filter(|_| setup.record.network_mode != "bridge");
    let mut serving = Serving::new(
        setup,
        pid,
        spawned.pty_master,
        stdin_w,
        outputs_plan,
        listener,
        clients,
    )?;
    serving.run()?;
    if let Some(exited) = report_exit(setup, state, serving, reservations, mount_ns, container) {
        keep_recording(&setup.dir, &exited);
    }
    Ok(())
}

/// Neither the store nor /run had room for the exit: the monitor stays (its container is gone,
/// and so is everything else of it) and tries again, less and less often, until the exit is
/// written, the container is removed, or it has been started again.
fn keep_recording(dir: &ContainerDir, exited: &State) {
    let mut delay = Duration::from_millis(100);
    loop {
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(30));
        let _lock = match dir.try_lock() {
            Ok(Some(lock)) => lock,
            Ok(None) => continue,
            Err(super::ContainerError::NotFound(_)) => return,
            Err(_) => continue,
        };
        match dir.state() {
            Ok(s)
                if s.status.is_running()
                    && s.pid == exited.pid
                    && s.pid_start == exited.pid_start => {}
            // Removed, started again, or recorded by another command.
            _ => return,
        }
        if dir.write_state(exited).is_ok() || dir.write_pending_exit(exited).is_ok() {
            return;
        }
    }
}

/// The runtime could not start the container: the error goes into its state and to every
/// client, and what was prepared for it is released.
fn report_start_failure(
    setup: &MonitorSetup,
    code: i32,
    message: String,
    mut clients: Vec<Client>,
) {
    let mut state = setup.dir.state().unwrap_or_default();
    state.error = Some(message.clone());
    if state.status != Status::Exited {
        state.exit_code = Some(code);
    }
    let _ = setup.dir.write_state(&state);
    // The start's failure is what is reported: a --rm container that cannot be removed
    // either stays listed, stopped.
    let (trash, _, _) = finish_cleanup(setup, None, None);
    let failure = attach::start_failure(code, &message);
    for c in &mut clients {
        let _ = c.stream.set_nonblocking(false);
        let _ = c.stream.write_all(&failure);
    }
    drop(clients);
    delete(trash);
}

/// Records the container as running with its init `pid` and tells the clients; returns the
/// state, which the exit completes.
fn report_started(
    setup: &MonitorSetup,
    pid: i32,
    clients: &mut [Client],
) -> Result<State, super::ContainerError> {
    let state = State {
        status: Status::Running,
        pid,
        pid_start: sys::process_start_time(pid).unwrap_or(0),
        monitor_pid: std::process::id() as i32,
        monitor_start: sys::own_start_time().unwrap_or(0),
        exit_code: None,
        started_at: Some(crate::time::Timestamp::now().rfc3339_nano()),
        finished_at: None,
        error: None,
        oom_killed: false,
    };
    setup.dir.write_state(&state)?;
    let started = attach::encode(STARTED, &pid.to_be_bytes());
    for c in clients {
        c.queue(&started);
        c.flush();
    }
    Ok(state)
}

/// A running container as the monitor serves it: its init, its stdio, the log and the
/// attached clients. One `poll` per round of the event loop covers all of them.
struct Serving {
    pid: i32,
    pidfd: OwnedFd,
    listener: UnixListener,
    clients: Vec<Client>,
    outputs: Vec<Output>,
    stdin: Option<StdinSink>,
    /// The pty master with `-t` (clients' resizes go to it).
    master: Option<OwnedFd>,
    /// The json-file log (`log_file.rs`); none with `--log-driver none`.
    log: Option<LogWriter>,
    /// The init's exit status once reaped, and when.
    exit_code: Option<i32>,
    exited_at: Option<Instant>,
    /// Scratch for reads from the container and clients; `shed_memory` gives its pages back.
    buf: Vec<u8>,
    /// Under the systemd driver, the scope's `memory.events`, watched while the container
    /// runs: systemd removes an emptied scope (and its counters) on its own, as soon as the
    /// container's last process is gone, so the OOM killer's count is taken as it changes,
    /// not only after the exit.
    oom_events: Option<std::fs::File>,
    /// The OOM killer killed a process of the container (seen through `oom_events`).
    oom_killed: bool,
}

/// Slots of the poll set before the outputs and clients. Slot 2, the container's stdin, only
/// wakes the loop: pending input is written every round. Slot 3 is the scope's
/// memory.events under the systemd driver (fd -1 otherwise).
const POLL_INIT: usize = 0;
const POLL_LISTENER: usize = 1;
const POLL_OOM: usize = 3;
const POLL_OUTPUTS: usize = 4;

impl Serving {
    /// Takes the container's stdio: the pty master (for output and input alike) with `-t`,
    /// otherwise the pipes `container_stdio` made.
    fn new(
        setup: &MonitorSetup,
        pid: i32,
        master: Option<OwnedFd>,
        stdin_w: Option<OwnedFd>,
        outputs_plan: Vec<Output>,
        listener: UnixListener,
        clients: Vec<Client>,
    ) -> io::Result<Serving> {
        let outputs: Vec<Output> = match (&master, outputs_plan) {
            (Some(m), _) => vec![Output {
                fd: m.try_clone()?,
                stream: "stdout",
                kind: STDOUT,
                open: true,
                partial: Vec::new(),
            }],
            (None, plan) => plan,
        };
        let stdin = match &master {
            Some(m) => Some(m.try_clone()?),
            None => stdin_w,
        }
        .map(StdinSink::new);
        let log_config = &setup.record.log_config;
        let log = log_config.readable().then(|| {
            LogWriter::new(
                setup.dir.log_path(),
                Some(setup.dir.legacy_log_path()),
                log_config.rotation().unwrap_or_default(),
            )
        });
        let pidfd = crate::sys::syscall::pidfd_open(pid)?;
        listener.set_nonblocking(true)?;
        let oom_events = setup
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
            .and_then(|p| runtime::cgroups::systemd::parse(p)?.ok())
            .and_then(|unit| {
                let rel = unit.path.strip_prefix("/").ok()?.to_path_buf();
                std::fs::File::open(
                    std::path::Path::new("/sys/fs/cgroup")
                        .join(rel)
                        .join("memory.events"),
                )
                .ok()
            });
        Ok(Serving {
            pid,
            pidfd,
            listener,
            clients,
            outputs,
            stdin,
            master,
            log,
            exit_code: None,
            exited_at: None,
            buf: vec![0u8; 64 * 1024],
            oom_events,
            oom_killed: false,
        })
    }

    /// Reads the OOM killer's count from `oom_events` (which also rearms its poll); a file
    /// whose cgroup is gone is dropped.
    fn check_oom(&mut self) {
        use std::os::unix::fs::FileExt;
        let Some(file) = &self.oom_events else {
            return;
        };
        let mut text = [0u8; 512];
        match file.read_at(&mut text, 0) {
            Ok(n) if n > 0 => {
                let killed = String::from_utf8_lossy(&text[..n]).lines().any(|l| {
                    l.strip_prefix("oom_kill ")
                        .is_some_and(|v| v.trim().parse::<u64>().is_ok_and(|v| v > 0))
                });
                self.oom_killed |= killed;
            }
            _ => self.oom_events = None,
        }
    }

    /// The event loop: until the container has exited and its output is drained (or has
    /// stayed open, held by a child of the container, for two seconds after the exit).
    fn run(&mut self) -> io::Result<()> {
        // Something happened since the last shed_memory: shed after a quiet second (not at
        // once: a short-lived container would wait for it to see its exit handled). The first
        // time, when most of what the CLI left behind is still mapped, after a quiet 100 ms.
        let mut touched = true;
        let mut quiet_ms = 100;
        loop {
            let outputs_open = self.outputs.iter().any(|o| o.open);
            if let Some(at) = self.exited_at
                && (!outputs_open || at.elapsed() > Duration::from_secs(2))
            {
                return Ok(());
            }
            let mut fds = self.poll_set();
            let timeout = match (self.exited_at, touched) {
                (Some(_), _) => 100,
                (None, true) => quiet_ms,
                (None, false) => -1,
            };
            // SAFETY: fds is a valid array of pollfd for its length.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if n == 0 && self.exited_at.is_none() {
                shed_memory(&mut self.buf);
                quiet_ms = 1000;
                touched = false;
                continue;
            }
            touched = true;
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.handle(&fds);
        }
    }

    /// What to wait for: the init's exit (until reaped), new clients, room in the
    /// container's stdin for pending input, output (unless the foreground client is behind),
    /// and each client (its input unless the container's stdin is full, room for its output).
    /// Slots that wait for nothing hold fd -1, so the layout stays fixed.
    fn poll_set(&self) -> Vec<libc::pollfd> {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let pfd = |fd: RawFd, events: i16| libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        fds.push(pfd(
            if self.exit_code.is_none() {
                self.pidfd.as_raw_fd()
            } else {
                -1
            },
            libc::POLLIN,
        ));
        fds.push(pfd(self.listener.as_raw_fd(), libc::POLLIN));
        fds.push(match &self.stdin {
            Some(sink) if !sink.pending.is_empty() => pfd(sink.fd.as_raw_fd(), libc::POLLOUT),
            _ => pfd(-1, 0),
        });
        // A cgroup file polls as changed (POLLPRI, with POLLERR) once written to.
        fds.push(match &self.oom_events {
            Some(f) if self.exit_code.is_none() => pfd(f.as_raw_fd(), libc::POLLPRI),
            _ => pfd(-1, 0),
        });
        let held_back = self.clients.iter().any(Client::holds_back_output);
        let input_full = self
            .stdin
            .as_ref()
            .is_some_and(|sink| sink.pending.len() > STDIN_BUFFER);
        for o in &self.outputs {
            fds.push(pfd(
                if o.open && !held_back {
                    o.fd.as_raw_fd()
                } else {
                    -1
                },
                libc::POLLIN,
            ));
        }
        for c in &self.clients {
            let mut events = if input_full { 0 } else { libc::POLLIN };
            if !c.outbuf.is_empty() {
                events |= libc::POLLOUT;
            }
            fds.push(pfd(c.stream.as_raw_fd(), events));
        }
        fds
    }

    /// One round's work after `poll` reported `fds` (laid out by `poll_set`).
    fn handle(&mut self, fds: &[libc::pollfd]) {
        if fds[POLL_OOM].revents != 0 {
            self.check_oom();
        }
        if fds[POLL_INIT].revents != 0 && self.exit_code.is_none() {
            self.check_oom();
            self.exit_code = reap(self.pid);
            sys::trace("monitor-reaped");
            if self.exit_code.is_some() {
                self.exited_at = Some(Instant::now());
            }
        }
        if fds[POLL_LISTENER].revents & libc::POLLIN != 0 {
            while let Ok((stream, _)) = self.listener.accept() {
                self.clients.push(Client::new(stream, false));
            }
        }
        let client_base = POLL_OUTPUTS + self.outputs.len();
        self.forward_output(&fds[POLL_OUTPUTS..client_base]);
        if let Some(log) = self.log.as_mut() {
            log.flush();
        }
        self.serve_clients(&fds[client_base..]);
        if let Some(sink) = self.stdin.as_mut()
            && !sink.drain()
        {
            self.stdin = None;
        }
    }

    /// Reads the outputs `fds` reported ready and passes what they had to every client and,
    /// line by line, to the log.
    fn forward_output(&mut self, fds: &[libc::pollfd]) {
        for (o, p) in self.outputs.iter_mut().zip(fds) {
            if !o.open || p.revents == 0 {
                continue;
            }
            match read_fd(o.fd.as_raw_fd(), &mut self.buf) {
                Ok(0) | Err(_) => {
                    o.open = false;
                    if !o.partial.is_empty() {
                        let line = std::mem::take(&mut o.partial);
                        if let Some(log) = self.log.as_mut() {
                            log.write(o.stream, &line);
                        }
                    }
                }
                Ok(n) => {
                    let data = &self.buf[..n];
                    let frame = attach::encode(o.kind, data);
                    for c in self.clients.iter_mut() {
                        c.queue(&frame);
                    }
                    let Some(log) = self.log.as_mut() else {
                        continue;
                    };
                    // Whole lines straight from the read; only a line's unfinished end waits
                    // in `partial` for the rest.
                    let mut rest = data;
                    while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
                        let (line, after) = rest.split_at(pos + 1);
                        if o.partial.is_empty() {
                            log.write(o.stream, line);
                        } else {
                            o.partial.extend_from_slice(line);
                            log.write(o.stream, &std::mem::take(&mut o.partial));
                        }
                        rest = after;
                    }
                    o.partial.extend_from_slice(rest);
                    if o.partial.len() > 16 * 1024 {
                        log.write(o.stream, &std::mem::take(&mut o.partial));
                    }
                }
            }
        }
    }

    /// Reads from the clients `fds` reported (clients accepted this round have no slot yet),
    /// sends each what is queued for it, and forgets those that went away.
    fn serve_clients(&mut self, fds: &[libc::pollfd]) {
        for (i, c) in self.clients.iter_mut().enumerate() {
            let revents = fds.get(i).map(|p| p.revents).unwrap_or(0);
            if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                read_client(c, &mut self.stdin, self.master.as_ref(), &mut self.buf);
            }
            c.flush();
        }
        self.clients.retain(|c| !c.closed);
    }
}

/// The container is gone: release its resources before anyone is told, so `run --rm`
/// returns only once nothing is left; then send every client what is queued for it and the
/// exit status. The port `reservations` are held until the endpoint is gone, the mount
/// namespace until the exit is reported.
///
/// An exit the store has no room for (full, or read-only) is left aside in the runtime
/// directory on /run, where the next command finds it and records it once there is room
/// (`ContainerDir::pending_exit`). Returns the exit when it could be written nowhere.
/// `--rm` that cannot remove the container records its exit instead, and tells the
/// clients why the container is still there.
fn report_exit(
    setup: &MonitorSetup,
    mut state: State,
    mut serving: Serving,
    reservations: Arc<Mutex<network::Reservations>>,
    mount_ns: Option<OwnedFd>,
    container: runtime::Container,
) -> Option<State> {
    let code = serving.exit_code.unwrap_or(255);
    state.status = Status::Exited;
    state.exit_code = Some(code);
    // Read now: the cleanup below removes the cgroup and its counters.
    state.oom_killed = serving.oom_killed || container.oom_killed();
    state.finished_at = Some(crate::time::Timestamp::now().rfc3339_nano());
    let mut compressing = None;
    if let Some(mut log) = serving.log.take() {
        for o in serving.outputs.iter_mut() {
            if !o.partial.is_empty() {
                log.write(o.stream, &std::mem::take(&mut o.partial));
            }
        }
        // A rotated file's gzip still under way is waited for after the exit is reported.
        compressing = log.close();
    }
    let mut recorded = if setup.record.auto_remove {
        Ok(())
    } else {
        setup.dir.write_state(&state)
    };
    sys::trace("monitor-outputs-closed");
    let (trash, kept, volumes_kept) = finish_cleanup(setup, Some(serving.pid), Some(container));
    drop(reservations);
    sys::trace("monitor-cleaned");
    // Docker's daemon only logs a volume it could not remove; berth has no daemon log, so
    // the clients hear of it, as a warning: the container is gone and its exit stands.
    for e in &volumes_kept {
        let line = format!("WARNING: {e}\n");
        for c in serving.clients.iter_mut() {
            c.queue(&attach::encode(STDERR, line.as_bytes()));
        }
    }
    if let Some(why) = &kept {
        recorded = setup.dir.write_state(&state);
        let line = format!("Error response from daemon: {why}\n");
        for c in serving.clients.iter_mut() {
            c.queue(&attach::encode(STDERR, line.as_bytes()));
        }
    }
    let unrecorded = match recorded {
        Ok(()) => false,
        // Removed meanwhile: nobody is left to ask for its exit.
        Err(_) if !setup.dir.path.exists() => false,
        Err(_) => setup.dir.write_pending_exit(&state).is_err(),
    };
    let exit = attach::encode(EXIT, &code.to_be_bytes());
    for c in serving.clients.iter_mut() {
        let _ = c.stream.set_nonblocking(false);
        // The foreground CLI gets everything; a stuck later client cannot hold the exit.
        if !c.foreground {
            let _ = c.stream.set_write_timeout(Some(Duration::from_secs(2)));
        }
        let pending: Vec<u8> = c.outbuf.drain(..).collect();
        let _ = c.stream.write_all(&pending);
        let _ = c.stream.write_all(&exit);
    }
    drop(serving.clients);
    drop(mount_ns);
    // Before the trash goes: with --rm the gzip writes into the container's moved directory.
    if let Some(handle) = compressing {
        let _ = handle.join();
    }
    delete(trash);
    unrecorded.then_some(state)
}

/// The byte that comes with the network namespace the CLI hands to the monitor (sent by
/// `lifecycle.rs`; defined here, on the receiving side, so the monitor needs nothing of it).
pub(crate) const HANDED_OVER: u8 = b'n';
/// The same, from `run`'s CLI once it has made every directory of the container's cgroup.
pub(crate) const HANDED_OVER_WITH_CGROUP: u8 = b'c';

/// How long the monitor of `start` waits for the CLI's network namespace before making one
/// itself (a CLI stopped by ^Z at that moment must not hold the container back).
const NETNS_WAIT_MS: libc::c_int = 500;

/// Receives, when the runtime asks for it, the network namespace the starting CLI made
/// meanwhile. The CLI gone, without a namespace to give or, with `give_up`, slow: `None`,
/// and the clone makes one. The channel closes after this one message, so a namespace sent
/// too late is not kept alive in it.
fn receive_network_namespace(channel: OwnedFd, give_up: bool) -> runtime::NetworkNamespaceSource {
    Box::new(move || {
        use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
        let mut ready = libc::pollfd {
            fd: channel.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let timeout = if give_up { NETNS_WAIT_MS } else { -1 };
        loop {
            // SAFETY: one valid pollfd.
            match unsafe { libc::poll(&mut ready, 1, timeout) } {
                1 => break,
                -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
                _ => return None,
            }
        }
        let mut byte = [0u8; 1];
        let mut iov = [io::IoSliceMut::new(&mut byte)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = recvmsg::<()>(
            channel.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
        )
        .ok()?;
        let received = msg.cmsgs().ok()?.find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().map(|&fd| {
                // SAFETY: the kernel just installed this fd for us; nothing else owns it.
                unsafe { OwnedFd::from_raw_fd(fd) }
            }),
            _ => None,
        });
        if received.is_some() {
            sys::trace("monitor-netns-received");
        }
        Some(runtime::HandedOver {
            namespace: received,
            cgroup_made: byte[0] == HANDED_OVER_WITH_CGROUP,
        })
    })
}

/// Deletes what `--rm` took out of sight, after the exit was reported.
fn delete(trash: Vec<PathBuf>) {
    for path in trash {
        let _ = sys::remove_tree(&path);
    }
}

/// With `--network bridge`: connects the container (veth, address, published ports) from the
/// runtime's prestart hook, once its init is in its own network namespace and before anything
/// of the container runs, and writes its address into its /etc/hosts. The host ports stay
/// reserved by sockets this monitor holds in `reservations` while the container runs.
fn network_prestart(
    setup: &MonitorSetup,
    reservations: Arc<Mutex<network::Reservations>>,
) -> Option<runtime::Prestart> {
    let record = &setup.record;
    if record.network_mode != "bridge" {
        return None;
    }
    let id = record.id.clone();
    let name = record.name.clone();
    let options = record.net.clone();
    let hostname = record.hostname.clone();
    let hosts = setup.dir.runtime_dir().join("hosts");
    Some(Box::new(move |pid| {
        sys::trace("monitor-net-start");
        let request = network::ConnectRequest {
            id: &id,
            pid: pid.as_raw(),
            bip: options.bip.as_deref(),
            options: &options,
        };
        let (endpoint, fds) = network::connect(&request).map_err(|e| {
            format!(
                "driver failed programming external connectivity on endpoint {name} ({id}): {e}"
            )
        })?;
        if let Ok(mut slot) = reservations.lock() {
            slot.extend(fds);
        }
        let text =
            network::dns::hosts_file("bridge", &hostname, Some(endpoint.address), &options.dns);
        std::fs::write(&hosts, text)?;
        sys::trace("monitor-net-done");
        Ok(())
    }))
}

/// Removes the cgroup, the network endpoint (of the run whose init was `pid`; `None`: the
/// start failed) and the runtime directory; with `--rm` it takes the container and its
/// anonymous volumes out of sight and returns what is left to delete, why the store kept
/// the container, and the anonymous volumes it kept (the container gone all the same). The runtime's record is deleted through the handle `run` returned (`None`:
/// the start failed, and only a cgroup made ahead may be left), not read back from disk on
/// the exit's path.
fn finish_cleanup(
    setup: &MonitorSetup,
    pid: Option<i32>,
    container: Option<runtime::Container>,
) -> (
    Vec<PathBuf>,
    Option<super::ContainerError>,
    Vec<super::ContainerError>,
) {
    let _ = match container {
        Some(c) => c.delete(true),
        None => super::store::release_runtime(&setup.record.id, &setup.spec),
    };
    sys::trace("monitor-cgroup-removed");
    let _ = network::disconnect(&setup.record.id, pid);
    if setup.record.auto_remove {
        match super::removal::detach_files(&setup.store_root, &setup.dir, &setup.record, true) {
            // The container is gone: what was moved is deleted whatever else failed.
            Ok(detached) => {
                return (
                    detached.trash,
                    detached.released.err(),
                    detached.volumes_kept,
                );
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(setup.dir.runtime_dir());
                return (Vec::new(), Some(e), Vec::new());
            }
        }
    }
    let _ = std::fs::remove_dir_all(setup.dir.runtime_dir());
    (Vec::new(), None, Vec::new())
}

fn read_client(
    c: &mut Client,
    stdin: &mut Option<StdinSink>,
    master: Option<&OwnedFd>,
    buf: &mut [u8],
) {
    loop {
        match c.stream.read(buf) {
            Ok(0) => {
                c.closed = true;
                break;
            }
            Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                c.closed = true;
                break;
            }
        }
    }
    let mut cursor = io::Cursor::new(std::mem::take(&mut c.inbuf));
    loop {
        let start = cursor.position() as usize;
        match attach::read_frame(&mut cursor) {
            Ok(Some((STDIN, data))) => {
                if let Some(sink) = stdin.as_mut()
                    && !sink.eof
                {
                    sink.pending.extend(data);
                }
            }
            Ok(Some((STDIN_EOF, _))) => {
                // A pty has no end of input to pass on; a pipe is closed once drained.
                if master.is_none()
                    && let Some(sink) = stdin.as_mut()
                {
                    sink.eof = true;
                }
            }
            Ok(Some((RESIZE, p))) if p.len() == 4 => {
                if let Some(m) = master {
                    let rows = u16::from_be_bytes([p[0], p[1]]);
                    let cols = u16::from_be_bytes([p[2], p[3]]);
                    let _ = tty::set_window_size(m.as_fd(), rows, cols);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                let rest = cursor.into_inner();
                c.inbuf = rest[start..].to_vec();
                break;
            }
        }
    }
}

type StdioPlan = (Stdio, Option<OwnedFd>, Vec<Output>);

/// Pipes (or a pty request) for the container's stdio; the monitor keeps the other ends.
fn container_stdio(record: &ContainerRecord) -> io::Result<StdioPlan> {
    if record.tty {
        return Ok((Stdio::Pty, None, Vec::new()));
    }
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (stdin, stdin_w) = if record.open_stdin {
        let (r, w) = pipe()?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    let outputs = vec![
        Output {
            fd: out_r,
            stream: "stdout",
            kind: STDOUT,
            open: true,
            partial: Vec::new(),
        },
        Output {
            fd: err_r,
            stream: "stderr",
            kind: STDERR,
            open: true,
            partial: Vec::new(),
        },
    ];
    Ok((
        Stdio::Fds {
            stdin,
            stdout: out_w,
            stderr: err_w,
        },
        stdin_w,
        outputs,
    ))
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both were just created.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The exit code Docker reports: the status, or 128 + the signal.
fn reap(pid: i32) -> Option<i32> {
    let mut status = 0;
    // SAFETY: waitpid on our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    if r != pid {
        return None;
    }
    if libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Some(128 + libc::WTERMSIG(status))
    } else {
        None
    }
}

fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: reading into a buffer of the given length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
}
