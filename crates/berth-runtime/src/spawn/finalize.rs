//! The common tail of `spawn` and `exec` in the cloned child, inside the container's mount
//! namespace: working directory, limits, identity, privileges, fds and signal state, then
//! execve of the user's command (or `--init`). No allocation here.

use std::ffi::c_char;
use std::os::fd::RawFd;

use berth_sys::syscall::{self as sys, KernelSigaction};
use nix::errno::Errno;

use super::plan::{ExecPlan, ProcPlan, ProcessTitle};
use super::protocol::{Fail, Step};
use crate::{caps, seccomp};

impl ExecPlan {
    /// Only returns on failure.
    pub(crate) fn exec(&self) -> Fail {
        if !self.search {
            let Some(path) = self.candidates.first() else {
                return Fail::new(Step::ExecNotFound, libc::ENOENT, 0);
            };
            // SAFETY: NUL-terminated arrays of C strings that outlive the call.
            unsafe {
                libc::execve(
                    path.as_ptr(),
                    self.argv_ptrs.as_ptr(),
                    self.envp_ptrs.as_ptr(),
                )
            };
            return Fail::errno(Step::Exec, 0);
        }
        for c in &self.candidates {
            // SAFETY: struct stat is plain data, for which all-zero bytes are a valid value.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: a NUL-terminated path and a live buffer for stat to fill.
            if unsafe { libc::stat(c.as_ptr(), &mut st) } != 0 {
                continue;
            }
            if st.st_mode & libc::S_IFMT == libc::S_IFDIR || st.st_mode & 0o111 == 0 {
                continue;
            }
            // SAFETY: as above.
            unsafe { libc::execve(c.as_ptr(), self.argv_ptrs.as_ptr(), self.envp_ptrs.as_ptr()) };
            return Fail::errno(Step::Exec, 0);
        }
        Fail::new(Step::ExecNotFound, libc::ENOENT, 0)
    }
}

/// `mkdir -p` inside the container's root (after pivot_root, so every path resolves there),
/// without allocating: the cloned child must not.
fn mkdir_all(path: &std::ffi::CStr) {
    let bytes = path.to_bytes();
    let mut buf = [0u8; 4096];
    if bytes.len() >= buf.len() {
        return;
    }
    buf[..bytes.len()].copy_from_slice(bytes);
    for i in 1..=bytes.len() {
        if i == bytes.len() || buf[i] == b'/' {
            let saved = buf[i];
            buf[i] = 0;
            // SAFETY: buf holds a NUL-terminated prefix of the path.
            unsafe { libc::mkdir(buf.as_ptr().cast(), 0o755) };
            buf[i] = saved;
        }
    }
}

impl ProcessTitle {
    fn apply(&self) {
        // SAFETY: [at, at + len) is this process's argument area (found by the kernel's own
        // account, /proc/self/stat), writable stack memory that nothing here reads again;
        // PR_SET_NAME copies at most 16 bytes of a NUL-terminated string.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.bytes.as_ptr(),
                self.at as *mut u8,
                self.bytes.len(),
            );
            libc::prctl(libc::PR_SET_NAME, c"berth-init".as_ptr(), 0, 0, 0);
        }
    }
}

impl ProcPlan {
    /// `--init`'s PID 1 never execs, so without this the container's `ps` would show the
    /// host's berth command line (store paths, flags) as PID 1's.
    pub(crate) fn set_init_title(&self) {
        if let Some(title) = &self.init_title {
            title.apply();
        }
    }

    /// The common tail of spawn and exec, in the child, inside the container's mount
    /// namespace: working directory, limits, identity, privileges, fds, then execve.
    pub(crate) fn finalize(&self, err_fd: RawFd) -> Fail {
        match self.prepare(err_fd) {
            Ok(()) => {}
            Err(f) => return f,
        }
        if let Some(fifo) = self.park
            && let Err(f) = park(err_fd, fifo)
        {
            return f;
        }
        if self.init {
            return crate::init::run(self, err_fd);
        }
        self.exec.exec()
    }

    fn prepare(&self, err_fd: RawFd) -> Result<(), Fail> {
        // SAFETY: all calls below are plain syscalls on prepared data.
        unsafe {
            // First try as root: the user may lack search permission on the path.
            let mut chdir_later = false;
            if libc::chdir(self.cwd.as_ptr()) < 0
                && Errno::last() == Errno::ENOENT
                && self.create_cwd
            {
                mkdir_all(&self.cwd);
            }
            if libc::chdir(self.cwd.as_ptr()) < 0 {
                if Errno::last() != Errno::EACCES {
                    return Err(Fail::errno(Step::Chdir, 0));
                }
                chdir_later = true;
            }
            if let Some(p) = self.personality {
                sys::personality(p).map_err(|e| Fail::new(Step::Personality, e, 0))?;
            }
            for (i, (res, lim, _)) in self.rlimits.iter().enumerate() {
                sys::set_rlimit(*res, lim).map_err(|e| Fail::new(Step::Rlimit, e, i))?;
            }
            libc::umask(self.umask);
            // Before any seccomp filter: a spec's profile need not allow close_range
            // (runtime-tools' default profile does not), and nothing later needs them.
            close_fds_except(err_fd, self.park, self.preserve_fds)?;
            // --preserve-fds: the caller's descriptors reach the program as they would
            // through a plain exec, whatever close-on-exec flag the caller left on them.
            for fd in 3..3 + self.preserve_fds {
                sys::clear_cloexec(fd as RawFd).map_err(|e| Fail::new(Step::CloseFds, e, 1))?;
            }
            if self.no_new_privs && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 {
                return Err(Fail::errno(Step::NoNewPrivs, 0));
            }
            // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN, which is
            // about to go: install it now (the profile must then allow the remaining
            // setup syscalls, which Docker's does).
            if let Some(s) = &self.seccomp
                && !self.no_new_privs
            {
                seccomp::install(s).map_err(|e| Fail::new(Step::Seccomp, e as i32, 0))?;
            }
            caps::drop_bounding(&self.caps).map_err(|e| Fail::new(Step::CapBounding, e, 0))?;
            if libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 {
                return Err(Fail::errno(Step::SetUser, 0));
            }
            // Raw syscalls, not glibc's wrappers: those broadcast the change to every
            // thread glibc believes exists (nptl "setxid"), and in this single-threaded
            // copy of a multi-threaded process they wait forever for threads that are
            // not there.
            sys::setgroups(&self.groups).map_err(|e| Fail::new(Step::SetUser, e, 0))?;
            sys::setresgid(self.gid).map_err(|e| Fail::new(Step::SetUser, e, 1))?;
            sys::setresuid(self.uid).map_err(|e| Fail::new(Step::SetUser, e, 2))?;
            if libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0 {
                return Err(Fail::errno(Step::SetUser, 0));
            }
            caps::apply(&self.caps).map_err(|(_, e)| Fail::new(Step::Capset, e, 0))?;
            if chdir_later && libc::chdir(self.cwd.as_ptr()) < 0 {
                return Err(Fail::errno(Step::Chdir, 0));
            }
            verify_cwd()?;
            if let Some(s) = &self.seccomp
                && self.no_new_privs
            {
                seccomp::install(s).map_err(|e| Fail::new(Step::Seccomp, e as i32, 0))?;
            }
            reset_signals();
            libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0);
        }
        Ok(())
    }
}

/// CVE-2024-21626: if cwd were a leaked fd's directory outside the container, getcwd
/// reports it as "(unreachable)/..." (or ENOENT); refuse to run there.
fn verify_cwd() -> Result<(), Fail> {
    let mut buf = [0u8; 4096];
    // SAFETY: buffer of the given size.
    let p = unsafe { libc::getcwd(buf.as_mut_ptr() as *mut c_char, buf.len()) };
    if p.is_null() {
        let e = Errno::last_raw();
        if e == libc::ENOENT {
            return Err(Fail::new(Step::CwdOutside, libc::ENOENT, 0));
        }
        return Err(Fail::new(Step::Chdir, e, 0));
    }
    if buf[0] != b'/' {
        return Err(Fail::new(Step::CwdOutside, libc::EPERM, 0));
    }
    Ok(())
}

/// Closes every fd from 3 up but `keep`, `also` and the `preserve` fds 3 .. 3+preserve-1.
pub(super) fn close_fds_except(
    keep: RawFd,
    also: Option<RawFd>,
    preserve: u32,
) -> Result<(), Fail> {
    let close_range = |lo: u32, hi: u32| {
        // SAFETY: the child owns every inherited descriptor but the kept ones and stdio,
        // and never uses or closes one of them again: it execs or exits.
        unsafe { sys::close_range(lo, hi) }.map_err(|e| Fail::new(Step::CloseFds, e, 0))
    };
    // Everything from 3 up goes but the kept fds: close the gaps between them (sorted).
    let mut keep = [keep as u32, also.unwrap_or(keep) as u32];
    keep.sort_unstable();
    let mut lo = 3u32.saturating_add(preserve);
    for k in keep {
        if k >= lo {
            if k > lo {
                close_range(lo, k - 1)?;
            }
            lo = k + 1;
        }
    }
    close_range(lo, u32::MAX)
}

/// OCI create's waiting point, in the child, once everything but the exec is done: tells
/// the creator it is set up (which lets `create` return), closes the err socket (nobody
/// reads it any more: a failure after this shows as the container's exit status), then
/// blocks opening the exec FIFO for writing until `start` opens it for reading. Reached
/// through /proc/self/fd because the FIFO's path is outside the container's root.
fn park(err_fd: RawFd, fifo: RawFd) -> Result<(), Fail> {
    let mut path = *b"/proc/self/fd/\0\0\0\0\0\0\0\0\0\0\0\0";
    let mut digits = [0u8; 10];
    let (mut n, mut len) = (fifo as u32, 0);
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        path[14 + i] = digits[len - 1 - i];
    }
    // SAFETY: a one-byte write from a live buffer; err_fd is ours and not used again but
    // by `report`, whose write to a closed descriptor fails harmlessly.
    unsafe {
        if libc::write(err_fd, [super::protocol::PARKED_MSG].as_ptr().cast(), 1) != 1 {
            return Err(Fail::errno(Step::Park, 0));
        }
        libc::close(err_fd);
    }
    // SAFETY: `path` is NUL-terminated: at most 10 digits follow the 14-byte prefix.
    let fd = unsafe { libc::open(path.as_ptr().cast(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Fail::errno(Step::Park, 1));
    }
    // SAFETY: a one-byte write from a static buffer, then closing our own descriptors.
    unsafe {
        let wrote = libc::write(fd, b"0".as_ptr().cast(), 1);
        libc::close(fd);
        libc::close(fifo);
        if wrote != 1 {
            return Err(Fail::errno(Step::Park, 2));
        }
    }
    Ok(())
}

/// The user's command starts with default dispositions and an empty mask, whatever berth
/// had (Rust ignores SIGPIPE; the caller may block or handle signals).
pub(crate) fn reset_signals() {
    let default = KernelSigaction::default();
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let _ = sys::rt_sigaction(sig, Some(&default), None);
    }
    // SAFETY: sigprocmask with a stack set (a plain syscall in both libcs).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}
