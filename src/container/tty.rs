//! Terminals: the pty pair for `-t`, and helpers the caller uses while pumping it
//! (raw mode on the host terminal, window-size propagation, SIGWINCH notification).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use nix::pty::Winsize;
use nix::sys::termios::{self, SetArg, Termios};

/// A terminal operation that failed: which call, and why.
#[derive(Debug, thiserror::Error)]
#[error("{call} on {object}: {source}")]
pub struct TtyError {
    call: &'static str,
    object: &'static str,
    source: std::io::Error,
}

fn fail(call: &'static str, object: &'static str, e: impl Into<std::io::Error>) -> TtyError {
    TtyError {
        call,
        object,
        source: e.into(),
    }
}

/// Puts a terminal in raw mode and restores the saved settings when dropped, whatever
/// path the caller leaves by (error, panic unwinding, normal exit).
pub struct RawModeGuard {
    fd: OwnedFd,
    saved: Termios,
}

impl RawModeGuard {
    /// Switches `fd` (usually stdin) to raw mode. Fails if it is not a terminal.
    pub fn new(fd: BorrowedFd<'_>) -> Result<Self, TtyError> {
        let fd = fd
            .try_clone_to_owned()
            .map_err(|e| fail("dup", "terminal", e))?;
        let saved = termios::tcgetattr(&fd).map_err(|e| fail("tcgetattr", "terminal", e))?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&fd, SetArg::TCSANOW, &raw)
            .map_err(|e| fail("tcsetattr", "terminal", e))?;
        Ok(RawModeGuard { fd, saved })
    }
}

impl Drop for RawModeGuard {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(&self.fd, SetArg::TCSANOW, &self.saved);
    }
}

/// The window size of a terminal, as (rows, cols).
pub fn window_size(fd: BorrowedFd<'_>) -> Result<(u16, u16), TtyError> {
    let mut ws = Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one struct winsize.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    if r < 0 {
        return Err(fail("ioctl(TIOCGWINSZ)", "terminal", nix::Error::last()));
    }
    Ok((ws.ws_row, ws.ws_col))
}

/// Sets the window size of the pty behind `master`; the kernel sends SIGWINCH to the
/// container's foreground process group.
pub fn set_window_size(master: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<(), TtyError> {
    let ws = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one struct winsize.
    let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if r < 0 {
        return Err(fail("ioctl(TIOCSWINSZ)", "pty", nix::Error::last()));
    }
    Ok(())
}

/// Copies the host terminal's size to the pty (call at start and on every SIGWINCH).
pub fn copy_window_size(host: BorrowedFd<'_>, master: BorrowedFd<'_>) -> Result<(), TtyError> {
    let (rows, cols) = window_size(host)?;
    set_window_size(master, rows, cols)
}

/// A flag set whenever SIGWINCH arrives; the pump loop checks (and clears) it and then
/// calls `copy_window_size`. The flag is the signal-safe half; the loop does the ioctls.
pub fn sigwinch_flag() -> Result<Arc<AtomicBool>, TtyError> {
    let flag = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGWINCH, Arc::clone(&flag))
        .map_err(|e| fail("sigaction", "SIGWINCH", e))?;
    Ok(flag)
}

/// True when `fd` is a terminal.
pub fn is_terminal(fd: impl AsFd) -> bool {
    nix::unistd::isatty(fd).unwrap_or(false)
}
