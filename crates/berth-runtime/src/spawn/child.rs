//! What runs in the cloned child, in order: joining the cgroup, waiting for the parent,
//! joining namespaces, stdio (or the pty), the root file system, the hostname, then the
//! process's own tail (finalize.rs). See the module note in mod.rs for what the child must
//! not do.

use std::ffi::CString;
use std::os::fd::{AsRawFd, RawFd};

use nix::errno::Errno;

use super::finalize::close_fds_except;
use super::namespaces::loopback_up;
use super::plan::{ChildPlan, ChildStdio};
use super::protocol::{Fail, Step, send_fd};
use crate::rootfs;

fn setup_stdio(s: &ChildStdio) -> Result<(), Fail> {
    let ChildStdio::Fds {
        stdin,
        stdout,
        stderr,
    } = s
    else {
        return Ok(());
    };
    // SAFETY: fd syscalls on fds we own.
    unsafe {
        if libc::setsid() < 0 {
            return Err(Fail::errno(Step::Setsid, 0));
        }
        // Move all three above 2 first so dup2 cannot clobber one with another.
        let mut high = [0; 3];
        for (i, fd) in [stdin, stdout, stderr].iter().enumerate() {
            high[i] = libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3);
            if high[i] < 0 {
                return Err(Fail::errno(Step::Stdio, i));
            }
        }
        for (t, fd) in high.iter().enumerate() {
            if libc::dup2(*fd, t as i32) < 0 {
                return Err(Fail::errno(Step::Stdio, t));
            }
            libc::close(*fd);
        }
    }
    Ok(())
}

/// In the container's mount namespace (after pivot_root, or after joining it for exec):
/// a new pty from its /dev/ptmx becomes the controlling terminal and fds 0-2, and
/// /dev/console; the master goes to the parent with SCM_RIGHTS.
fn setup_pty(size: Option<(u16, u16)>, err_fd: RawFd, console: bool) -> Result<(), Fail> {
    // SAFETY: fd syscalls on fds we open here, and a stack-built msghdr.
    unsafe {
        let master = libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if master < 0 {
            return Err(Fail::errno(Step::Pty, 0));
        }
        let unlock: libc::c_int = 0;
        if libc::ioctl(master, libc::TIOCSPTLCK, &unlock) < 0 {
            return Err(Fail::errno(Step::Pty, 1));
        }
        if let Some((rows, cols)) = size {
            let ws = libc::winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            libc::ioctl(master, libc::TIOCSWINSZ, &ws);
        }
        // TIOCGPTPEER opens the slave through the master: no path lookup to race.
        let slave = libc::ioctl(master, libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY);
        if slave < 0 {
            return Err(Fail::errno(Step::Pty, 2));
        }
        if libc::setsid() < 0 {
            return Err(Fail::errno(Step::Setsid, 0));
        }
        if libc::ioctl(slave, libc::TIOCSCTTY, 0) < 0 {
            return Err(Fail::errno(Step::Ctty, 0));
        }
        for t in 0..3 {
            if libc::dup2(slave, t) < 0 {
                return Err(Fail::errno(Step::Stdio, t as usize));
            }
        }
        libc::close(slave);
        if console {
            let f = libc::open(
                c"/dev/console".as_ptr(),
                libc::O_CREAT | libc::O_NOFOLLOW | libc::O_WRONLY | libc::O_CLOEXEC,
                0o600,
            );
            if f < 0 {
                return Err(Fail::errno(Step::Console, 0));
            }
            libc::close(f);
            if libc::mount(
                c"/proc/self/fd/0".as_ptr(),
                c"/dev/console".as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ) < 0
            {
                return Err(Fail::errno(Step::Console, 1));
            }
        }
        send_fd(err_fd, master)?;
        libc::close(master);
    }
    Ok(())
}

/// Moves the calling (single-threaded) process into its cgroup, one hierarchy at a time.
fn join_cgroup(tasks: &[CString]) -> Result<(), Fail> {
    for (i, path) in tasks.iter().enumerate() {
        // SAFETY: open/write/close on a prepared path and a static buffer.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(Fail::errno(Step::CgroupJoin, i));
            }
            let written = libc::write(fd, c"0".as_ptr() as *const libc::c_void, 1);
            let e = Errno::last_raw();
            libc::close(fd);
            if written != 1 {
                return Err(Fail::new(Step::CgroupJoin, e, i));
            }
        }
    }
    Ok(())
}

/// unshare(CLONE_NEWTIME) only prepares the namespace for children; its offsets are
/// written while nobody is inside, then this (single-threaded) process enters it itself.
fn enter_new_time_namespace(offsets: &std::ffi::CStr) -> Result<(), Fail> {
    // SAFETY: plain syscalls on constant paths, a prepared buffer and fds we open here.
    unsafe {
        if libc::unshare(libc::CLONE_NEWTIME) < 0 {
            return Err(Fail::errno(Step::TimeNs, 0));
        }
        let text = offsets.to_bytes();
        if !text.is_empty() {
            let fd = libc::open(
                c"/proc/self/timens_offsets".as_ptr(),
                libc::O_WRONLY | libc::O_CLOEXEC,
            );
            if fd < 0 {
                return Err(Fail::errno(Step::TimeNs, 1));
            }
            let n = libc::write(fd, text.as_ptr().cast(), text.len());
            let e = Errno::last_raw();
            libc::close(fd);
            if n != text.len() as isize {
                return Err(Fail::new(Step::TimeNs, e, 1));
            }
        }
        let fd = libc::open(
            c"/proc/self/ns/time_for_children".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return Err(Fail::errno(Step::TimeNs, 2));
        }
        let r = libc::setns(fd, libc::CLONE_NEWTIME);
        let e = Errno::last_raw();
        libc::close(fd);
        if r < 0 {
            return Err(Fail::new(Step::TimeNs, e, 2));
        }
    }
    Ok(())
}

pub(super) fn child_run(c: &ChildPlan<'_>, sync_fd: RawFd, err_fd: RawFd) -> Fail {
    // SAFETY: plain syscalls; no allocation anywhere on this path.
    unsafe {
        if libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 {
            return Fail::errno(Step::Dumpable, 0);
        }
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
    }
    // While the parent finishes its side; before joining namespaces, while the host's
    // cgroup mounts are still in view (exec joins the container's mount namespace).
    let joined = join_cgroup(c.cgroup_tasks);
    // SAFETY: plain syscalls on our own fds.
    unsafe {
        let mut b = [0u8; 1];
        if libc::read(sync_fd, b.as_mut_ptr() as *mut libc::c_void, 1) != 1 {
            // The parent gave up (or died): nothing to report to.
            libc::_exit(1);
        }
        libc::close(sync_fd);
    }
    // Reported only now: the parent reads failures once it has released us (before, it
    // would find a dead child and only a generic error).
    if let Err(f) = joined {
        return f;
    }
    for (i, (fd, flag, _)) in c.ns.join.iter().enumerate() {
        // SAFETY: setns on an fd we hold.
        if unsafe { libc::setns(fd.as_raw_fd(), flag.bits()) } < 0 {
            return Fail::errno(Step::JoinNs, i);
        }
    }
    if !c.ns.unshare_after_join.is_empty() {
        // SAFETY: unshare with flags computed in the parent.
        if unsafe { libc::unshare(c.ns.unshare_after_join.bits()) } < 0 {
            return Fail::errno(Step::UnshareNs, 0);
        }
    }
    if let Some(offsets) = &c.ns.time_offsets
        && let Err(f) = enter_new_time_namespace(offsets)
    {
        return f;
    }
    // The cgroup namespace is created only now, after the parent moved us into the
    // container's cgroup, so the container sees its own cgroup as the root.
    // SAFETY: unshare with a constant flag.
    if c.ns.cgroup_ns && unsafe { libc::unshare(libc::CLONE_NEWCGROUP) } < 0 {
        return Fail::errno(Step::CgroupNs, 0);
    }
    if let Err(f) = setup_stdio(&c.stdio) {
        return f;
    }
    // Everything else inherited from the caller (other containers' pipes, store files)
    // goes now rather than at exec, so no setup step can use or leak it.
    if let Err(f) = close_fds_except(err_fd, c.proc_.park, c.proc_.preserve_fds) {
        return f;
    }
    if c.ns.new_net
        && let Err(f) = loopback_up()
    {
        return f;
    }
    if let Some(r) = c.rootfs {
        if let Err(f) = rootfs::child_prepare(r) {
            return f;
        }
        if let Err(f) = rootfs::child_pivot(r) {
            return f;
        }
    }
    if let ChildStdio::Pty(size) = &c.stdio
        && let Err(f) = setup_pty(*size, err_fd, c.rootfs.is_some_and(|r| r.dev_tmpfs))
    {
        return f;
    }
    if let Some(h) = &c.hostname {
        // SAFETY: valid buffer and length.
        if unsafe { libc::sethostname(h.as_ptr(), h.as_bytes().len()) } < 0 {
            return Fail::errno(Step::Hostname, 0);
        }
    }
    if let Some(r) = c.rootfs
        && let Err(f) = rootfs::child_finish(r)
    {
        return f;
    }
    if c.rootfs.is_some_and(|r| r.userns_root) {
        // SAFETY: an integer-only prctl on this process.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } < 0 {
            return Fail::errno(Step::Dumpable, 0);
        }
    }
    c.proc_.finalize(err_fd)
}
