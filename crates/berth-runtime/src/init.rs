//! `--init`: PID 1 is berth's own minimal init (still in the cloned child, no exec): it
//! forks the user's command, forwards every catchable signal to it, reaps every zombie
//! re-parented to it, and exits with the command's status (128+N when killed by signal N).
//!
//! Signals sent to a PID-namespace init are dropped unless it has a handler, so each
//! catchable signal gets a (never-run) handler and is then blocked and collected with
//! sigwaitinfo: no async handler code, no allocation.
//!
//! Having never exec'd, it would show berth's host command line to `ps` in the container
//! (store paths, every flag): it writes `berth-init -- CMD ARGS` over its argument strings
//! and names itself `berth-init`, as Docker's PID 1 shows `/sbin/docker-init -- CMD ARGS`.
//!
//! Unlike the user's command, this process never execs: its /proc/1/exe is the host's
//! berth binary for the container's whole life. It stays non-dumpable (set before the
//! clone), so container processes without CAP_SYS_PTRACE cannot open /proc/1/exe or
//! /proc/1/mem at all, and while it runs the binary is busy (writes fail with ETXTBSY).
//! That is the CVE-2019-5736 exposure of `--init`; with `--cap-add SYS_PTRACE` a
//! container can still read (not write) the berth binary through it.

use std::os::fd::RawFd;

use berth_sys::syscall::{self as sys, KernelSigaction};

use super::spawn::{self, Fail, ProcPlan, Step};

extern "C" fn noop(_: libc::c_int) {}

pub(crate) fn run(p: &ProcPlan, err_fd: RawFd) -> Fail {
    p.set_init_title();
    // SAFETY: signal-mask and sigaction calls on stack structs.
    let all = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
        for sig in 1..libc::SIGRTMAX() {
            if matches!(sig, libc::SIGKILL | libc::SIGSTOP | libc::SIGABRT) {
                continue;
            }
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = noop as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
        // musl's sigaction locks for SIGABRT (see spawn/mod.rs, note 2): give it SIGHUP's
        // action, just installed with libc's signal-return trampoline, through the kernel.
        let mut hup = KernelSigaction::default();
        let _ = sys::rt_sigaction(libc::SIGHUP, None, Some(&mut hup));
        let _ = sys::rt_sigaction(libc::SIGABRT, Some(&hup), None);
        all
    };
    let child = match spawn::clone_raw(nix::sched::CloneFlags::empty()) {
        Ok(pid) => pid,
        Err(e) => return Fail::new(Step::Fork, e as i32, 0),
    };
    if child == 0 {
        // Own process group, in the foreground of the terminal if there is one: ^C on
        // the pty then reaches the command once (from the kernel), not a second time
        // through init's forwarding. Signals are still blocked here, so taking the
        // foreground cannot stop us with SIGTTOU.
        // SAFETY: setpgid/getpid/ioctl on our own fds.
        unsafe {
            libc::setpgid(0, 0);
            let me = libc::getpid();
            libc::ioctl(0, libc::TIOCSPGRP, &me);
        }
        spawn::reset_signals();
        let f = p.exec.exec();
        spawn::report(err_fd, f);
    }
    // Only the command's exec should hold the error pipe open.
    // SAFETY: closing our copy.
    unsafe { libc::close(err_fd) };
    loop {
        // SAFETY: siginfo_t is plain data, for which all-zero bytes are a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are to live locals; sigwaitinfo only fills `info`.
        let sig = unsafe { libc::sigwaitinfo(&all, &mut info) };
        if sig < 0 {
            continue;
        }
        if sig != libc::SIGCHLD {
            // SAFETY: kill with a pid we created.
            unsafe { libc::kill(child, sig) };
            continue;
        }
        let mut main_status = None;
        loop {
            let mut status = 0;
            // SAFETY: waitpid with a stack int.
            let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if r <= 0 {
                break;
            }
            if r == child {
                main_status = Some(status);
            }
        }
        if let Some(st) = main_status {
            let code = if libc::WIFEXITED(st) {
                libc::WEXITSTATUS(st)
            } else if libc::WIFSIGNALED(st) {
                128 + libc::WTERMSIG(st)
            } else {
                1
            };
            // SAFETY: terminate without running any of berth's exit machinery.
            unsafe { libc::_exit(code) };
        }
    }
}
