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

use super::attach::{self, ERROR, EXIT, RESIZE, STARTED, STDERR, STDIN, STDIN_EOF, STDOUT};
use super::record::{ContainerRecord, State, Status};
use super::store::ContainerDir;
use crate::network;
use crate::runtime::{self, SpawnOptions, Stdio, tty};
use crate::sys;

/// Per-client output kept while a client reads slowly; beyond it, that client misses output
/// (the log has everything). The container itself never waits for a reader.
const CLIENT_BUFFER: usize = 4 << 20;

pub struct MonitorSetup {
    pub store_root: PathBuf,
    pub dir: ContainerDir,
    pub record: ContainerRecord,
    pub spec: Spec,
}

/// Runs in the forked monitor process; never returns.
pub fn run(setup: MonitorSetup, listener: UnixListener, first: UnixStream) -> ! {
    detach_from_terminal(&[listener.as_raw_fd(), first.as_raw_fd()]);
    let code = match monitor(&setup, listener, first) {
        Ok(()) => 0,
        Err(_) => 1,
    };
    // SAFETY: leaving the forked process without running the parent's atexit handlers.
    unsafe { libc::_exit(code) }
}

fn detach_from_terminal(keep: &[RawFd]) {
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
    // Nothing of the CLI's (a lock file, a terminal) may stay open in a long-lived process.
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        let fds: Vec<RawFd> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter(|fd| *fd > 2 && !keep.contains(fd))
            .collect();
        for fd in fds {
            // SAFETY: closing descriptors this process will never use.
            unsafe { libc::close(fd) };
        }
    }
}

struct Client {
    stream: UnixStream,
    inbuf: Vec<u8>,
    outbuf: VecDeque<u8>,
    closed: bool,
}

impl Client {
    fn new(stream: UnixStream) -> Client {
        let _ = stream.set_nonblocking(true);
        Client {
            stream,
            inbuf: Vec::new(),
            outbuf: VecDeque::new(),
            closed: false,
        }
    }

    fn queue(&mut self, frame: &[u8]) {
        if self.outbuf.len() + frame.len() <= CLIENT_BUFFER {
            self.outbuf.extend(frame);
        }
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

struct Log {
    file: Option<File>,
}

impl Log {
    /// Docker's json-file format: one JSON object per line of output.
    fn write(&mut self, stream: &str, line: &[u8]) {
        if let Some(file) = &mut self.file {
            let entry = serde_json::json!({
                "log": String::from_utf8_lossy(line),
                "stream": stream,
                "time": sys::now_rfc3339(),
            });
            let mut text = entry.to_string();
            text.push('\n');
            let _ = file.write_all(text.as_bytes());
        }
    }
}

fn monitor(setup: &MonitorSetup, listener: UnixListener, first: UnixStream) -> io::Result<()> {
    let record = &setup.record;
    let mut clients = vec![Client::new(first)];
    let (stdio, stdin_w, outputs_plan) = container_stdio(record)?;
    let reservations = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let options = SpawnOptions {
        stdio,
        cache_dir: setup.store_root.join("cache"),
        init: record.init,
        prestart: network_prestart(setup, reservations.clone()),
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
            finish_cleanup(setup, None);
            let mut payload = e.exit_code().to_be_bytes().to_vec();
            payload.extend_from_slice(e.to_string().as_bytes());
            for c in &mut clients {
                let _ = c.stream.set_nonblocking(false);
                let _ = attach::write_frame(&mut c.stream, ERROR, &payload);
            }
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
        monitor_start: sys::process_start_time(std::process::id() as i32).unwrap_or(0),
        exit_code: None,
        started_at: Some(sys::now_rfc3339()),
        finished_at: None,
        error: None,
    };
    let _ = setup.dir.write_state(&state);
    let started = attach::encode(STARTED, &pid.to_be_bytes());
    for c in &mut clients {
        c.queue(&started);
        c.flush();
    }

    let master = spawned.pty_master;
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
    let mut stdin_w = match &master {
        Some(m) => Some(m.try_clone()?),
        None => stdin_w,
    };
    let mut log = Log {
        file: OpenOptions::new()
            .create(true)
            .append(true)
            .open(setup.dir.log_path())
            .ok(),
    };
    let pidfd = pidfd_open(pid)?;
    listener.set_nonblocking(true)?;
    let mut exit_code: Option<i32> = None;
    let mut exited_at: Option<Instant> = None;
    let mut buf = vec![0u8; 64 * 1024];

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
        for o in &outputs {
            fds.push(pfd(
                if o.open { o.fd.as_raw_fd() } else { -1 },
                libc::POLLIN,
            ));
        }
        let client_base = fds.len();
        for c in &clients {
            let mut events = libc::POLLIN;
            if !c.outbuf.is_empty() {
                events |= libc::POLLOUT;
            }
            fds.push(pfd(c.stream.as_raw_fd(), events));
        }
        let timeout = if exited_at.is_some() { 100 } else { -1 };
        // SAFETY: fds is a valid array of pollfd for its length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
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
                clients.push(Client::new(stream));
            }
        }
        for (i, o) in outputs.iter_mut().enumerate() {
            let revents = fds[2 + i].revents;
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
        for (i, c) in clients.iter_mut().enumerate() {
            let revents = fds.get(client_base + i).map(|p| p.revents).unwrap_or(0);
            if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                read_client(c, &mut stdin_w, master.as_ref(), &mut buf);
            }
            c.flush();
        }
        clients.retain(|c| !c.closed);
    }

    // The container is gone: release its resources before anyone is told, so `run --rm`
    // returns only once nothing is left.
    let code = exit_code.unwrap_or(255);
    state.status = Status::Exited;
    state.exit_code = Some(code);
    state.finished_at = Some(sys::now_rfc3339());
    for o in outputs.iter_mut() {
        if !o.partial.is_empty() {
            log.write(o.stream, &std::mem::take(&mut o.partial));
        }
    }
    drop(log);
    if !setup.record.auto_remove {
        let _ = setup.dir.write_state(&state);
    }
    sys::trace("monitor-outputs-closed");
    finish_cleanup(setup, Some(pid));
    drop(reservations);
    sys::trace("monitor-cleaned");
    let exit = attach::encode(EXIT, &code.to_be_bytes());
    for c in clients.iter_mut() {
        let _ = c.stream.set_nonblocking(false);
        let _ = c.stream.set_write_timeout(Some(Duration::from_secs(2)));
        let pending: Vec<u8> = c.outbuf.drain(..).collect();
        let _ = c.stream.write_all(&pending);
        let _ = c.stream.write_all(&exit);
    }
    Ok(())
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
    let hosts = setup.dir.path.join("hosts");
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
/// start failed), the runtime directory, and with `--rm` the container and its anonymous
/// volumes.
fn finish_cleanup(setup: &MonitorSetup, pid: Option<i32>) {
    let _ = runtime::cleanup(&setup.spec);
    let _ = network::disconnect(&setup.record.id, pid);
    if setup.record.auto_remove {
        super::lifecycle::remove_files(&setup.store_root, &setup.dir, &setup.record, true);
    } else {
        let _ = std::fs::remove_dir_all(setup.dir.runtime_dir());
    }
}

fn read_client(
    c: &mut Client,
    stdin_w: &mut Option<OwnedFd>,
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
                if let Some(fd) = stdin_w.as_ref() {
                    let _ = write_all_fd(fd.as_raw_fd(), &data);
                }
            }
            Ok(Some((STDIN_EOF, _))) => {
                // A pty has no end of input to pass on; pipes get closed.
                if master.is_none() {
                    *stdin_w = None;
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

fn write_all_fd(fd: RawFd, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        // SAFETY: writing from a valid buffer.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        data = &data[n as usize..];
    }
    Ok(())
}
