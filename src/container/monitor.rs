//! The per-container monitor: a small process (forked from the CLI, detached into its own
//! session) that starts the container and outlives the command that asked for it. It owns the
//! container's pty master or stdio pipes, writes the json-lines log, serves attach clients on a
//! unix socket, waits for the exit, records it in `state.json`, removes the cgroup, and does the
//! `--rm` cleanup — then tells attached clients the exit code and goes away.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use oci_spec::runtime::Spec;

use super::attach::{self, EXIT, RESIZE, STARTED, STDERR, STDIN, STDIN_EOF, STDOUT};
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
    let mut drop: Vec<(usize, usize)> = Vec::new();
    if let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") {
        // (range, droppable) of the mapping whose fields are being read.
        let mut current: Option<(usize, usize, bool)> = None;
        for line in smaps.lines() {
            let mut fields = line.split_whitespace();
            let Some(first) = fields.next() else {
                continue;
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
            closed &= unsafe { libc::syscall(libc::SYS_close_range, from, fd - 1, 0) } == 0;
        }
        from = fd + 1;
    }
    // SAFETY: as above.
    closed &= unsafe { libc::syscall(libc::SYS_close_range, from, libc::c_uint::MAX, 0) } == 0;
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

/// The json-file log, created at the first line of output: a container that prints
/// nothing costs no file (`logs` reads a missing log as empty).
struct Log {
    path: PathBuf,
    file: Option<std::io::BufWriter<File>>,
    failed: bool,
}

impl Log {
    /// Docker's json-file format: one JSON object per line of output. Buffered, and flushed
    /// once per round of the event loop.
    fn write(&mut self, stream: &str, line: &[u8]) {
        if self.file.is_none() && !self.failed {
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .ok()
                .map(|f| std::io::BufWriter::with_capacity(64 * 1024, f));
            self.failed = self.file.is_none();
        }
        if let Some(file) = &mut self.file {
            let entry = serde_json::json!({
                "log": String::from_utf8_lossy(line),
                "stream": stream,
                "time": crate::time::Timestamp::now().rfc3339_nano(),
            });
            let _ = serde_json::to_writer(&mut *file, &entry);
            let _ = file.write_all(b"\n");
        }
    }

    fn flush(&mut self) {
        if let Some(file) = &mut self.file {
            let _ = file.flush();
        }
    }
}

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
    let reservations = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let options = SpawnOptions {
        stdio,
        cache_dir: setup.store_root.join("cache"),
        init: record.init,
        prestart: network_prestart(setup, reservations.clone()),
        network_namespace,
        cgroup_made_with_namespace: setup.cgroup_from_cli,
    };
    sys::trace("monitor-spawn");
    let spawned = match runtime::spawn(&setup.dir.path, &setup.spec, options) {
        Ok(s) => s,
        Err(e) => {
            let mut state = setup.dir.state().unwrap_or_default();
            state.error = Some(e.to_string());
            if state.status != Status::Exited {
                state.exit_code = Some(e.exit_code());
            }
            let _ = setup.dir.write_state(&state);
            let trash = finish_cleanup(setup, None);
            let failure = attach::start_failure(e.exit_code(), &e.to_string());
            for c in &mut clients {
                let _ = c.stream.set_nonblocking(false);
                let _ = c.stream.write_all(&failure);
            }
            drop(clients);
            delete(trash);
            return Ok(());
        }
    };
    let pid = spawned.pid.as_raw();
    sys::trace("monitor-spawned");
    let mut state = State {
        status: Status::Running,
        pid,
        pid_start: sys::process_start_time(pid).unwrap_or(0),
        monitor_pid: std::process::id() as i32,
        monitor_start: sys::own_start_time().unwrap_or(0),
        exit_code: None,
        started_at: Some(crate::time::Timestamp::now().rfc3339_nano()),
        finished_at: None,
        error: None,
    };
    let _ = setup.dir.write_state(&state);
    let started = attach::encode(STARTED, &pid.to_be_bytes());
    for c in &mut clients {
        c.queue(&started);
        c.flush();
    }
    drop(start_lock);

    let master = spawned.pty_master;
    // The mount namespace pins the container's network namespace (through its /sys), and
    // a bridged container's veth must vanish with its exit, not after the report: only a
    // container without host-visible networking keeps its teardown for after the report.
    let mount_ns = spawned
        .mount_ns
        .filter(|_| setup.record.network_mode != "bridge");
    let mut outputs: Vec<Output> = match (&master, outputs_plan) {
        (Some(m), _) => vec![Output {
            fd: m.try_clone()?,
            stream: "stdout",
            kind: STDOUT,
            open: true,
            partial: Vec::new(),
        }],
        (None, plan) => plan,
    };
    let mut stdin = match &master {
        Some(m) => Some(m.try_clone()?),
        None => stdin_w,
    }
    .map(StdinSink::new);
    let mut log = Log {
        path: setup.dir.log_path(),
        file: None,
        failed: false,
    };
    let pidfd = pidfd_open(pid)?;
    listener.set_nonblocking(true)?;
    let mut exit_code: Option<i32> = None;
    let mut exited_at: Option<Instant> = None;
    let mut buf = vec![0u8; 64 * 1024];
    // Something happened since the last shed_memory: shed after a quiet second (not at
    // once: a short-lived container would wait for it to see its exit handled). The first
    // time, when most of what the CLI left behind is still mapped, after a quiet 100 ms.
    let mut touched = true;
    let mut quiet_ms = 100;

    loop {
        let outputs_open = outputs.iter().any(|o| o.open);
        if let Some(at) = exited_at
            && (!outputs_open || at.elapsed() > Duration::from_secs(2))
        {
            break;
        }
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let pfd = |fd: RawFd, events: i16| libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        fds.push(pfd(
            if exit_code.is_none() {
                pidfd.as_raw_fd()
            } else {
                -1
            },
            libc::POLLIN,
        ));
        fds.push(pfd(listener.as_raw_fd(), libc::POLLIN));
        fds.push(match &stdin {
            Some(sink) if !sink.pending.is_empty() => pfd(sink.fd.as_raw_fd(), libc::POLLOUT),
            _ => pfd(-1, 0),
        });
        let held_back = clients.iter().any(Client::holds_back_output);
        let input_full = stdin
            .as_ref()
            .is_some_and(|sink| sink.pending.len() > STDIN_BUFFER);
        for o in &outputs {
            fds.push(pfd(
                if o.open && !held_back {
                    o.fd.as_raw_fd()
                } else {
                    -1
                },
                libc::POLLIN,
            ));
        }
        let client_base = fds.len();
        for c in &clients {
            let mut events = if input_full { 0 } else { libc::POLLIN };
            if !c.outbuf.is_empty() {
                events |= libc::POLLOUT;
            }
            fds.push(pfd(c.stream.as_raw_fd(), events));
        }
        let timeout = match (exited_at, touched) {
            (Some(_), _) => 100,
            (None, true) => quiet_ms,
            (None, false) => -1,
        };
        // SAFETY: fds is a valid array of pollfd for its length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n == 0 && exited_at.is_none() {
            shed_memory(&mut buf);
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
        if fds[0].revents != 0 && exit_code.is_none() {
            exit_code = reap(pid);
            sys::trace("monitor-reaped");
            if exit_code.is_some() {
                exited_at = Some(Instant::now());
            }
        }
        if fds[1].revents & libc::POLLIN != 0 {
            while let Ok((stream, _)) = listener.accept() {
                clients.push(Client::new(stream, false));
            }
        }
        for (i, o) in outputs.iter_mut().enumerate() {
            let revents = fds[3 + i].revents;
            if !o.open || revents == 0 {
                continue;
            }
            match read_fd(o.fd.as_raw_fd(), &mut buf) {
                Ok(0) | Err(_) => {
                    o.open = false;
                    if !o.partial.is_empty() {
                        log.write(o.stream, &std::mem::take(&mut o.partial));
                    }
                }
                Ok(n) => {
                    let data = &buf[..n];
                    let frame = attach::encode(o.kind, data);
                    for c in clients.iter_mut() {
                        c.queue(&frame);
                    }
                    o.partial.extend_from_slice(data);
                    while let Some(pos) = o.partial.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = o.partial.drain(..=pos).collect();
                        log.write(o.stream, &line);
                    }
                    if o.partial.len() > 16 * 1024 {
                        log.write(o.stream, &std::mem::take(&mut o.partial));
                    }
                }
            }
        }
        log.flush();
        for (i, c) in clients.iter_mut().enumerate() {
            let revents = fds.get(client_base + i).map(|p| p.revents).unwrap_or(0);
            if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                read_client(c, &mut stdin, master.as_ref(), &mut buf);
            }
            c.flush();
        }
        clients.retain(|c| !c.closed);
        if let Some(sink) = stdin.as_mut()
            && !sink.drain()
        {
            stdin = None;
        }
    }

    // The container is gone: release its resources before anyone is told, so `run --rm`
    // returns only once nothing is left.
    let code = exit_code.unwrap_or(255);
    state.status = Status::Exited;
    state.exit_code = Some(code);
    state.finished_at = Some(crate::time::Timestamp::now().rfc3339_nano());
    for o in outputs.iter_mut() {
        if !o.partial.is_empty() {
            log.write(o.stream, &std::mem::take(&mut o.partial));
        }
    }
    log.flush();
    drop(log);
    if !setup.record.auto_remove {
        let _ = setup.dir.write_state(&state);
    }
    sys::trace("monitor-outputs-closed");
    let trash = finish_cleanup(setup, Some(pid));
    drop(reservations);
    sys::trace("monitor-cleaned");
    let exit = attach::encode(EXIT, &code.to_be_bytes());
    for c in clients.iter_mut() {
        let _ = c.stream.set_nonblocking(false);
        // The foreground CLI gets everything; a stuck later client cannot hold the exit.
        if !c.foreground {
            let _ = c.stream.set_write_timeout(Some(Duration::from_secs(2)));
        }
        let pending: Vec<u8> = c.outbuf.drain(..).collect();
        let _ = c.stream.write_all(&pending);
        let _ = c.stream.write_all(&exit);
    }
    drop(clients);
    drop(mount_ns);
    delete(trash);
    Ok(())
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
    reservations: std::sync::Arc<std::sync::Mutex<network::Reservations>>,
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
/// anonymous volumes out of sight and returns what is left to delete.
fn finish_cleanup(setup: &MonitorSetup, pid: Option<i32>) -> Vec<PathBuf> {
    let _ = runtime::cleanup(&setup.spec);
    sys::trace("monitor-cgroup-removed");
    let _ = network::disconnect(&setup.record.id, pid);
    if setup.record.auto_remove {
        super::removal::detach_files(&setup.store_root, &setup.dir, &setup.record, true)
    } else {
        let _ = std::fs::remove_dir_all(setup.dir.runtime_dir());
        Vec::new()
    }
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

fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
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
