//! Driving a command in a real pseudo-terminal: the command gets the pty slave as its
//! controlling terminal and stdio (as in an interactive shell session), the test reads and
//! writes the master, resizes it, and inspects the slave's termios.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::pty::{Winsize, openpty};
use nix::sys::termios::{Termios, tcgetattr};

/// Everything read from the master so far, shared with the reader thread.
#[derive(Default)]
struct Output {
    bytes: Vec<u8>,
    closed: bool,
}

pub struct PtySession {
    master: std::fs::File,
    /// Kept open by the test so the terminal's settings can be read at any time (and so the
    /// master never sees EOF while the test runs).
    slave: OwnedFd,
    output: Arc<(Mutex<Output>, Condvar)>,
    /// Where the next `expect` starts looking.
    cursor: usize,
    pub child: Child,
    /// The terminal's settings before the command started.
    pub initial: TermState,
}

/// The terminal settings that raw mode changes (`stty -g` compares the same fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermState {
    pub input: u64,
    pub output: u64,
    pub control: u64,
    pub local: u64,
    pub chars: Vec<u8>,
}

impl From<Termios> for TermState {
    fn from(t: Termios) -> TermState {
        TermState {
            input: t.input_flags.bits() as u64,
            output: t.output_flags.bits() as u64,
            control: t.control_flags.bits() as u64,
            local: t.local_flags.bits() as u64,
            // The kernel's termios holds 19 control characters (NCCS in
            // <asm-generic/termbits.h>); the C library's struct has room for 32, and musl's
            // tcgetattr leaves the rest as whatever was in memory.
            chars: t.control_chars[..19].to_vec(),
        }
    }
}

/// Opens a pty of `rows`×`cols` and returns it without a child yet.
fn open(rows: u16, cols: u16) -> (OwnedFd, OwnedFd) {
    let ws = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pair = openpty(Some(&ws), None).expect("openpty");
    (pair.master, pair.slave)
}

impl PtySession {
    /// Starts `cmd` in a new session whose controlling terminal is a fresh `rows`×`cols` pty.
    pub fn spawn(mut cmd: Command, rows: u16, cols: u16) -> PtySession {
        let (master, slave) = open(rows, cols);
        let initial: TermState = tcgetattr(slave.as_fd()).expect("tcgetattr").into();
        let io = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup pty slave"));
        cmd.stdin(io(&slave)).stdout(io(&slave)).stderr(io(&slave));
        // SAFETY: setsid and ioctl are async-signal-safe; they run in the forked child only.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn under pty");
        let master = std::fs::File::from(master);
        let output: Arc<(Mutex<Output>, Condvar)> = Arc::default();
        let mut reader = master.try_clone().expect("dup pty master");
        let shared = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) | Err(_) => 0,
                    Ok(n) => n,
                };
                let (lock, cv) = &*shared;
                let mut out = lock.lock().unwrap_or_else(|e| e.into_inner());
                if n == 0 {
                    out.closed = true;
                    cv.notify_all();
                    return;
                }
                out.bytes.extend_from_slice(&buf[..n]);
                cv.notify_all();
            }
        });
        PtySession {
            master,
            slave,
            output,
            cursor: 0,
            child,
            initial,
        }
    }

    /// The pty's current settings, read through the slave.
    pub fn termios(&self) -> TermState {
        tcgetattr(self.slave.as_fd()).expect("tcgetattr").into()
    }

    /// Types `text` into the terminal.
    pub fn send(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).expect("write pty");
        self.master.flush().unwrap();
    }

    /// Waits until `needle` appears after the cursor; returns what came before it (since the
    /// cursor) and moves the cursor past it. Panics with the whole transcript on timeout.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.output;
        let mut out = lock.lock().unwrap();
        loop {
            let hay = &out.bytes[self.cursor.min(out.bytes.len())..];
            if let Some(pos) = find(hay, needle.as_bytes()) {
                let before = String::from_utf8_lossy(&hay[..pos]).into_owned();
                self.cursor += pos + needle.len();
                return before;
            }
            let now = Instant::now();
            if now >= deadline || out.closed {
                let message = format!(
                    "pty: {needle:?} did not appear within {timeout:?} (closed: {})\ntranscript:\n{}",
                    out.closed,
                    String::from_utf8_lossy(&out.bytes)
                );
                drop(out);
                panic!("{message}");
            }
            out = cv.wait_timeout(out, deadline - now).unwrap().0;
        }
    }

    /// The whole transcript so far.
    pub fn transcript(&self) -> String {
        String::from_utf8_lossy(&self.output.0.lock().unwrap().bytes).into_owned()
    }

    /// Sets the terminal size (as a terminal emulator does when its window changes) and sends
    /// SIGWINCH to the child explicitly as well.
    pub fn resize(&self, rows: u16, cols: u16) {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ with a valid winsize on our master fd.
        let r = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        assert_eq!(r, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGWINCH) };
    }

    /// Waits for the child to exit; its exit code (128+N when killed by signal N).
    pub fn wait(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                use std::os::unix::process::ExitStatusExt;
                return status
                    .code()
                    .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "pty child did not exit within {timeout:?}\ntranscript:\n{}",
                    self.transcript()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PtySession {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}
