//! The clone itself: signals blocked, the parent made non-dumpable and switched into the
//! namespaces the child must be born in, then clone(2); the child runs child.rs and never
//! returns.

use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

use super::child::child_run;
use super::namespaces::{NET_NS, NsSwitch, PID_NS};
use super::plan::ChildPlan;
use super::protocol::{Pipes, report};
use crate::RuntimeError;

/// fork-like clone(2): the child continues on a copy of our stack.
pub(crate) fn clone_raw(flags: CloneFlags) -> Result<libc::pid_t, Errno> {
    let flags = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: both children (the container's process, `--init`'s command) run only
    // prepared, allocation-free code until they exec or _exit (see the module note), and
    // nothing of berth relies on atfork handlers.
    unsafe { berth_sys::syscall::clone(flags) }.map_err(Errno::from_raw)
}

/// Clones the child (blocking signals around it so no handler of ours runs in the copy)
/// and returns its pid. The child never returns from here.
pub(crate) fn start_child(c: &ChildPlan<'_>, p: &Pipes) -> Result<Pid, RuntimeError> {
    // SAFETY: sigset_t is plain data, for which all-zero bytes are a valid value.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: sigset operations on live locals; blocking signals has no memory effect.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    // SAFETY: restore the mask saved above.
    let unblock = || unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    };
    // Joining a pid namespace only affects children: switch this thread's
    // pid_for_children around the clone, then switch back. Likewise a network namespace
    // made ahead, which the child is then born in.
    let pid_ns = match c
        .ns
        .join_pid
        .as_ref()
        .map(|fd| NsSwitch::enter(fd, PID_NS))
        .transpose()
    {
        Ok(switch) => switch,
        Err(e) => {
            unblock();
            return Err(e);
        }
    };
    let net_ns = match (c.ns.net_at_clone.as_ref())
        .map(|fd| NsSwitch::enter(fd, NET_NS))
        .transpose()
    {
        Ok(switch) => switch,
        Err(e) => {
            if let Some(switch) = pid_ns {
                let _ = switch.leave();
            }
            unblock();
            return Err(e);
        }
    };
    // Non-dumpable before the clone, not just first thing in the child: the child copies
    // the flag, so it is never visible dumpable in a namespace it joins (exec).
    // SAFETY: integer-only prctl calls on a process attribute.
    let was_dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let r = clone_raw(c.ns.clone_flags);
    if let Ok(0) = r {
        // Child.
        // SAFETY: closing the parent's ends, which we never use.
        unsafe {
            libc::close(p.sync_w.as_raw_fd());
            libc::close(p.err_r.as_raw_fd());
        }
        let f = child_run(c, p.sync_r.as_raw_fd(), p.err_w.as_raw_fd());
        report(p.err_w.as_raw_fd(), f);
    }
    if was_dumpable > 0 {
        // SAFETY: as above.
        unsafe {
            libc::prctl(
                libc::PR_SET_DUMPABLE,
                was_dumpable as libc::c_ulong,
                0,
                0,
                0,
            )
        };
    }
    if let Some(switch) = pid_ns {
        let _ = switch.leave();
    }
    let left_net_ns = net_ns.map_or(Ok(()), NsSwitch::leave);
    unblock();
    let pid = r.map_err(|e| RuntimeError::sys("clone", "container init", e))?;
    if let Err(e) = left_net_ns {
        // Staying in the container's namespace would put the caller's later network work
        // (a bridge's veth) in the wrong place: give up the start instead.
        crate::process::reap(Pid::from_raw(pid));
        return Err(RuntimeError::sys(
            "setns",
            "the caller's network namespace",
            e,
        ));
    }
    Ok(Pid::from_raw(pid))
}
