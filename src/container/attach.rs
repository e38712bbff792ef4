//! The attach protocol between a container's monitor and the CLIs attached to it, over a unix
//! stream socket: length-prefixed frames (`[kind: u8][len: u32 BE][payload]`), and the
//! CLI side that pumps a terminal or stdio through it.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use super::tty;

pub const STDIN: u8 = 0x01;
pub const STDIN_EOF: u8 = 0x02;
pub const RESIZE: u8 = 0x03;
pub const STDOUT: u8 = 0x11;
pub const STDERR: u8 = 0x12;
pub const EXIT: u8 = 0x13;
pub const STARTED: u8 = 0x14;
pub const ERROR: u8 = 0x15;

/// Frames bigger than this are a protocol error, not an allocation.
const MAX_FRAME: u32 = 1 << 20;

pub fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + payload.len());
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    w.write_all(&encode(kind, payload))
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head[..1]) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    r.read_exact(&mut head[1..])?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "oversized attach frame",
        ));
    }
    let mut payload = vec![0; len as usize];
    r.read_exact(&mut payload)?;
    Ok(Some((head[0], payload)))
}

/// What the monitor said first: the container is running (with its pid), or it failed to start.
pub enum StartReply {
    Started(i32),
    Failed { code: i32, message: String },
}

/// The frame that tells a starting client why the container could not start: Docker's exit
/// code, then the message (what [`read_start_reply`] reads as `Failed`).
pub fn start_failure(code: i32, message: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(message.as_bytes());
    encode(ERROR, &payload)
}

pub fn read_start_reply(stream: &mut UnixStream) -> io::Result<StartReply> {
    match read_frame(stream)? {
        Some((STARTED, p)) if p.len() == 4 => Ok(StartReply::Started(i32::from_be_bytes([
            p[0], p[1], p[2], p[3],
        ]))),
        Some((ERROR, p)) if p.len() >= 4 => Ok(StartReply::Failed {
            code: i32::from_be_bytes([p[0], p[1], p[2], p[3]]),
            message: String::from_utf8_lossy(&p[4..]).into_owned(),
        }),
        _ => Err(io::Error::other(
            "the container monitor exited before starting the container",
        )),
    }
}

pub struct PumpOptions {
    /// Forward our stdin to the container.
    pub stdin: bool,
    /// The container has a terminal: put ours in raw mode and keep the sizes in step.
    pub tty: bool,
    /// Forward signals we receive to this pid (Docker's sig-proxy, for non-tty containers).
    pub proxy_signals_to: Option<i32>,
    /// Typing this sequence detaches (the container keeps running).
    pub detach_keys: Option<Vec<u8>>,
}

/// Docker's `--detach-keys` syntax: comma-separated `ctrl-<letter>`, `ctrl-@`, `ctrl-[`, … or
/// single characters.
pub fn parse_detach_keys(spec: &str) -> Result<Vec<u8>, String> {
    let mut keys = Vec::new();
    for part in spec.split(',') {
        let key = if let Some(c) = part.strip_prefix("ctrl-") {
            match c.as_bytes() {
                [b] if b.is_ascii_lowercase() => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(format!("Unknown character: '{c}'")),
            }
        } else if part.len() == 1 {
            part.as_bytes()[0]
        } else {
            return Err(format!("Unknown character: '{part}'"));
        };
        keys.push(key);
    }
    Ok(keys)
}

/// Streams between our stdio and the monitor until the container exits; returns its exit code
/// (`None` if the monitor went away without saying).
pub fn pump(stream: UnixStream, options: PumpOptions) -> io::Result<Option<i32>> {
    let stdin_fd = io::stdin().as_fd().try_clone_to_owned()?;
    let raw_guard = if options.tty && tty::is_terminal(&stdin_fd) {
        restore_terminal_on_signals(&stdin_fd);
        tty::RawModeGuard::new(stdin_fd.as_fd()).ok()
    } else {
        None
    };
    let done = Arc::new(AtomicBool::new(false));
    let mut writer = stream.try_clone()?;
    if options.tty && tty::is_terminal(&stdin_fd) {
        send_size(&mut writer, &stdin_fd);
        if let Ok(flag) = tty::sigwinch_flag() {
            let mut w = stream.try_clone()?;
            let fd = stdin_fd.try_clone()?;
            let done = done.clone();
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    if flag.swap(false, Ordering::Relaxed) {
                        send_size(&mut w, &fd);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            });
        }
    }
    if let Some(pid) = options.proxy_signals_to {
        proxy_signals(pid);
    }
    if options.stdin {
        let fd = stdin_fd.try_clone()?;
        let keys = options.detach_keys.clone().unwrap_or_default();
        std::thread::spawn(move || forward_stdin(fd, writer, keys));
    } else {
        drop(writer);
    }
    let code = read_output(stream);
    done.store(true, Ordering::Relaxed);
    drop(raw_guard);
    code
}

fn send_size(w: &mut UnixStream, fd: &OwnedFd) {
    if let Ok((rows, cols)) = tty::window_size(fd.as_fd()) {
        let mut payload = rows.to_be_bytes().to_vec();
        payload.extend_from_slice(&cols.to_be_bytes());
        let _ = write_frame(w, RESIZE, &payload);
    }
}

fn forward_stdin(fd: OwnedFd, mut w: UnixStream, detach_keys: Vec<u8>) {
    let mut file = std::fs::File::from(fd);
    let mut buf = [0u8; 8192];
    let mut matched = 0;
    loop {
        match file.read(&mut buf) {
            Ok(0) => {
                let _ = write_frame(&mut w, STDIN_EOF, &[]);
                return;
            }
            Ok(n) => {
                let mut out = Vec::with_capacity(n);
                for &b in &buf[..n] {
                    if !detach_keys.is_empty() && b == detach_keys[matched] {
                        matched += 1;
                        if matched == detach_keys.len() {
                            // Detach: the monitor sees this client leave; the container runs on.
                            let _ = write_frame(&mut w, STDIN, &out);
                            let _ = w.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                        continue;
                    }
                    out.extend_from_slice(&detach_keys[..matched]);
                    matched = 0;
                    out.push(b);
                }
                if !out.is_empty() && write_frame(&mut w, STDIN, &out).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}

fn read_output(mut stream: UnixStream) -> io::Result<Option<i32>> {
    let stdout = io::stdout();
    let stderr = io::stderr();
    loop {
        match read_frame(&mut stream) {
            Ok(Some((STDOUT, data))) => {
                let mut out = stdout.lock();
                let _ = out.write_all(&data);
                let _ = out.flush();
            }
            Ok(Some((STDERR, data))) => {
                let mut err = stderr.lock();
                let _ = err.write_all(&data);
                let _ = err.flush();
            }
            Ok(Some((EXIT, p))) if p.len() == 4 => {
                return Ok(Some(i32::from_be_bytes([p[0], p[1], p[2], p[3]])));
            }
            Ok(Some(_)) => {}
            Ok(None) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}

/// Puts the terminal back as it is now if berth is killed by SIGTERM, SIGHUP or SIGQUIT while
/// it is raw (Drop guards do not run then), and then dies of that signal as it would have.
pub fn restore_terminal_on_signals(fd: &OwnedFd) {
    use signal_hook::consts::{SIGHUP, SIGQUIT, SIGTERM};
    let Ok(saved) = nix::sys::termios::tcgetattr(fd) else {
        return;
    };
    let Ok(fd) = fd.try_clone() else {
        return;
    };
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGQUIT]) else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let _ = nix::sys::termios::tcsetattr(&fd, nix::sys::termios::SetArg::TCSANOW, &saved);
            let _ = signal_hook::low_level::emulate_default_handler(signal);
        }
    });
}

/// Forwards the signals a user can send to a foreground `berth run` to the container, the way
/// Docker's sig-proxy does (SIGCHLD, SIGWINCH and SIGPIPE stay ours). The handlers call
/// kill(2) themselves (async-signal-safe), so no thread has to be started for this.
fn proxy_signals(pid: i32) {
    use signal_hook::consts::*;
    static TARGET: AtomicI32 = AtomicI32::new(0);
    TARGET.store(pid, Ordering::Relaxed);
    let signals = [
        SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGCONT, SIGTSTP, SIGTTIN,
        SIGTTOU, SIGURG, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGIO, SIGSYS,
    ];
    for signal in signals {
        // SAFETY: the action only loads an atomic and calls kill(2), both async-signal-safe;
        // failure of kill only means the container is gone.
        let _ = unsafe {
            signal_hook::low_level::register(signal, move || {
                libc::kill(TARGET.load(Ordering::Relaxed), signal);
            })
        };
    }
}
