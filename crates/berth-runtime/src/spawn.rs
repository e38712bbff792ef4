//! Process creation: one clone() into the new namespaces, parent/child synchronisation,
//! and the child's path from "copy of berth" to execve of the user's command.
//!
//! Protocol. Two CLOEXEC pipes. `sync`: the child blocks reading it until the parent has
//! put it in its cgroup (everything it does from then on is accounted and limited).
//! `err`: the child writes a fixed-size `Fail` record if a step fails; a successful
//! execve closes the write end, so the parent seeing EOF means "the command is running".
//!
//! No re-exec: the child is a copy of berth until execve. Three things follow.
//! 1. It must not allocate: clone() copies the address space of a possibly multi-threaded
//!    process, and another thread may hold the allocator lock forever in the copy. All
//!    strings, paths and pointer arrays are prepared in the parent (`ProcPlan`,
//!    `RootfsPlan`); the child only makes syscalls.
//! 2. Nor may it call libc functions that coordinate threads or take libc's own locks:
//!    glibc's set*id/setgroups and musl's setrlimit signal every thread libc believes
//!    exists and wait for them, and musl's sigaction takes a lock for SIGABRT that its
//!    posix_spawn holds while another thread spawns a command (a child cloned meanwhile
//!    waited on it forever). Raw syscalls instead.
//! 3. CVE-2019-5736: a container process that can open /proc/PID/exe of a process that is
//!    still berth could write to the host's berth binary. The parent makes itself
//!    non-dumpable right before clone() (restoring it after), so the child is never
//!    dumpable, not even for an instant in a namespace it joined (`exec`): /proc/PID/exe,
//!    /mem, /fd etc. are then unreachable for container processes lacking CAP_SYS_PTRACE.
//!    execve of the user's binary replaces the image, so after it /proc/PID/exe is the
//!    container's own file; nothing in the container runs while the image is berth's,
//!    except the `--init` PID 1 (see init.rs).

use std::ffi::{CString, c_char};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use super::RuntimeError;
use super::caps::{self, CapSets};
use super::rootfs::{self, RootfsPlan, cstr};
use super::seccomp::{self, Compiled};

/// Declares `Step` and its decoding from the number the child sends over the pipe, from one
/// list, so the two cannot drift apart.
macro_rules! steps {
    ($first:ident $(, $rest:ident)* $(,)?) => {
        /// Which step failed in the child; the parent turns it back into a message.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u32)]
        pub(crate) enum Step {
            $first = 1,
            $($rest,)*
        }

        impl Step {
            fn from_u32(v: u32) -> Option<Step> {
                [Step::$first $(, Step::$rest)*]
                    .into_iter()
                    .find(|s| *s as u32 == v)
            }
        }
    };
}

steps!(
    Sync,
    Stdio,
    Setsid,
    Ctty,
    JoinNs,
    CgroupNs,
    Loopback,
    Propagation,
    OverlayPrep,
    OverlayMount,
    RootBind,
    OpenRoot,
    Mount,
    Device,
    DevSymlinks,
    Console,
    PivotRoot,
    Masked,
    Readonly,
    RootReadonly,
    Hostname,
    Chdir,
    CwdOutside,
    Rlimit,
    NoNewPrivs,
    CapBounding,
    SetUser,
    Capset,
    Seccomp,
    CloseFds,
    ExecNotFound,
    Exec,
    Fork,
    Dumpable,
    Pty,
    Sysctl,
    CgroupJoin,
    Park,
);

/// The fixed-size failure record the child sends over the err pipe.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fail {
    step: u32,
    errno: i32,
    idx: u32,
}

impl Fail {
    pub(crate) fn new(step: Step, errno: i32, idx: usize) -> Self {
        Fail {
            step: step as u32,
            errno,
            idx: idx as u32,
        }
    }

    fn errno(step: Step, idx: usize) -> Self {
        Fail::new(step, Errno::last_raw(), idx)
    }

    fn to_bytes(self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&self.step.to_ne_bytes());
        b[4..8].copy_from_slice(&self.errno.to_ne_bytes());
        b[8..].copy_from_slice(&self.idx.to_ne_bytes());
        b
    }

    fn from_bytes(b: &[u8; 12]) -> Self {
        Fail {
            step: u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            errno: i32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            idx: u32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
        }
    }
}

/// argv/envp and the candidate paths for the executable, all prepared in the parent.
pub(crate) struct ExecPlan {
    arg0: String,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const c_char>,
    /// With `search`, the $PATH candidates in order; else the one path to execute.
    candidates: Vec<CString>,
    search: bool,
}

impl ExecPlan {
    fn new(args: &[String], env: &[String]) -> Result<Self, RuntimeError> {
        let arg0 = args
            .first()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| RuntimeError::InvalidSpec("process.args is empty".into()))?
            .clone();
        let argv = args
            .iter()
            .map(|a| cstr(a, "process.args"))
            .collect::<Result<Vec<_>, _>>()?;
        let envp = env
            .iter()
            .map(|e| cstr(e, "process.env"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut argv_ptrs: Vec<*const c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut envp_ptrs: Vec<*const c_char> = envp.iter().map(|a| a.as_ptr()).collect();
        envp_ptrs.push(std::ptr::null());
        let search = !arg0.contains('/');
        let candidates = if search {
            // Docker (Go's exec.LookPath inside runc init) searches the container's own
            // $PATH; an empty entry means the current directory.
            let path = env
                .iter()
                .rev()
                .find_map(|e| e.strip_prefix("PATH="))
                .unwrap_or("");
            let mut v = Vec::new();
            if !path.is_empty() {
                for dir in path.split(':') {
                    let dir = if dir.is_empty() { "." } else { dir };
                    v.push(cstr(format!("{dir}/{arg0}"), "PATH entry")?);
                }
            }
            v
        } else {
            vec![cstr(&arg0, "process.args")?]
        };
        Ok(ExecPlan {
            arg0,
            _argv: argv,
            argv_ptrs,
            _envp: envp,
            envp_ptrs,
            candidates,
            search,
        })
    }

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
            // SAFETY: zeroed stat buffer, valid path.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
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

/// Everything about the process itself (shared by `spawn` and `exec`).
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

pub(crate) struct ProcPlan {
    pub exec: ExecPlan,
    cwd: CString,
    rlimits: Vec<(berth_sys::RlimitResource, libc::rlimit, String)>,
    no_new_privs: bool,
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: Vec<libc::gid_t>,
    umask: libc::mode_t,
    caps: CapSets,
    seccomp: Option<Compiled>,
    pub init: bool,
    /// With `init`: what `ps` in the container shows for PID 1.
    init_title: Option<ProcessTitle>,
    /// Create a missing working directory (a container's first process, as Docker does);
    /// `exec` leaves it an error.
    pub create_cwd: bool,
    /// OCI create: an `O_PATH` fd of the container's exec FIFO. Once set up, the process
    /// says so on the err socket and waits (opening the FIFO for writing) until `start`
    /// opens it for reading; only then does it exec the user's program.
    pub park: Option<RawFd>,
}

/// A command line written over the process's own argument strings (what /proc/PID/cmdline
/// reads), for a process that does not exec: `berth-init -- CMD ARGS` as Docker's PID 1
/// shows `/sbin/docker-init -- CMD ARGS`. Cut to the length of the original strings.
struct ProcessTitle {
    at: usize,
    bytes: Vec<u8>,
}

impl ProcessTitle {
    fn for_init(args: &[String]) -> Option<Self> {
        // Found in the parent: the child is a copy of it, at the same addresses.
        let (start, end) = berth_sys::own_argv_region()?;
        let mut bytes = Vec::with_capacity(end - start);
        for arg in ["berth-init", "--"]
            .into_iter()
            .chain(args.iter().map(String::as_str))
        {
            bytes.extend_from_slice(arg.as_bytes());
            bytes.push(0);
        }
        bytes.resize(end - start, 0);
        if let Some(last) = bytes.last_mut() {
            *last = 0;
        }
        Some(ProcessTitle { at: start, bytes })
    }

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

fn rlimit_resource(name: &str) -> Option<berth_sys::RlimitResource> {
    Some(match name {
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        _ => return None,
    })
}

impl ProcPlan {
    pub(crate) fn new(
        process: &Process,
        spec: &Spec,
        cache_dir: &Path,
        init: bool,
    ) -> Result<Self, RuntimeError> {
        let args = process.args().clone().unwrap_or_default();
        let env = process.env().clone().unwrap_or_default();
        let exec = ExecPlan::new(&args, &env)?;
        let cwd = cstr(process.cwd().as_os_str().as_bytes(), "process.cwd")?;
        if !process.cwd().is_absolute() {
            return Err(RuntimeError::InvalidSpec(format!(
                "process.cwd {} is not absolute",
                process.cwd().display()
            )));
        }

        // Raising a hard limit needs CAP_SYS_RESOURCE, which the host may not grant us
        // (e.g. a VM whose bounding set lacks it). Docker's 1048576 NOFILE default would
        // then make every container fail; clamp to what we have and say so once.
        let can_raise = caps::has_sys_resource();
        let mut warned = Vec::new();
        let mut rlimits = Vec::new();
        for r in process.rlimits().iter().flatten() {
            let name = serde_json::to_value(r.typ())
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let res = rlimit_resource(&name)
                .ok_or_else(|| RuntimeError::InvalidSpec(format!("unknown rlimit {name}")))?;
            let (mut soft, mut hard) = (r.soft(), r.hard());
            if !can_raise {
                let mut cur = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                // SAFETY: getrlimit fills one struct.
                if unsafe { libc::getrlimit(res, &mut cur) } == 0 && hard > cur.rlim_max {
                    warned.push(format!("{name} {hard} > {}", cur.rlim_max));
                    hard = cur.rlim_max;
                    soft = soft.min(hard);
                }
            }
            rlimits.push((
                res,
                libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                },
                name,
            ));
        }
        if !warned.is_empty() {
            eprintln!(
                "berth: warning: cannot raise hard rlimits without CAP_SYS_RESOURCE, clamped to the host's limit: {}",
                warned.join(", ")
            );
        }

        let user = process.user();
        let mut groups: Vec<libc::gid_t> = user.additional_gids().clone().unwrap_or_default();
        if groups.is_empty() {
            groups.push(user.gid());
        }
        let caps = caps::from_spec(process.capabilities().as_ref())?;
        let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(s) => Some(seccomp::load_or_compile(s, cache_dir)?),
            None => None,
        };
        Ok(ProcPlan {
            exec,
            cwd,
            rlimits,
            no_new_privs: process.no_new_privileges().unwrap_or(false),
            uid: user.uid(),
            gid: user.gid(),
            groups,
            umask: user.umask().unwrap_or(0o022),
            caps,
            seccomp,
            init,
            init_title: if init {
                ProcessTitle::for_init(&args)
            } else {
                None
            },
            create_cwd: false,
            park: None,
        })
    }

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
            return super::init::run(self, err_fd);
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
            for (i, (res, lim, _)) in self.rlimits.iter().enumerate() {
                let none: *mut libc::rlimit = std::ptr::null_mut();
                if libc::syscall(
                    libc::SYS_prlimit64,
                    0,
                    *res,
                    lim as *const libc::rlimit,
                    none,
                ) < 0
                {
                    return Err(Fail::errno(Step::Rlimit, i));
                }
            }
            libc::umask(self.umask);
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
            if libc::syscall(libc::SYS_setgroups, self.groups.len(), self.groups.as_ptr()) < 0 {
                return Err(Fail::errno(Step::SetUser, 0));
            }
            if libc::syscall(libc::SYS_setresgid, self.gid, self.gid, self.gid) < 0 {
                return Err(Fail::errno(Step::SetUser, 1));
            }
            if libc::syscall(libc::SYS_setresuid, self.uid, self.uid, self.uid) < 0 {
                return Err(Fail::errno(Step::SetUser, 2));
            }
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
            close_fds_except(err_fd, self.park)?;
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

fn close_fds_except(keep: RawFd, also: Option<RawFd>) -> Result<(), Fail> {
    let close_range = |lo: u32, hi: u32| {
        // SAFETY: close_range on a numeric range.
        unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0u32) }
    };
    // Close everything from 3 up but the kept fds, in the gaps between them (sorted).
    let mut keep = [keep as u32, also.map_or(keep, |fd| fd) as u32];
    keep.sort_unstable();
    let mut lo = 3u32;
    for k in keep {
        if k >= lo {
            if k > lo && close_range(lo, k - 1) < 0 {
                return Err(Fail::errno(Step::CloseFds, 0));
            }
            lo = k + 1;
        }
    }
    if close_range(lo, u32::MAX) < 0 {
        return Err(Fail::errno(Step::CloseFds, 0));
    }
    Ok(())
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
    // SAFETY: write of a one-byte stack buffer; close of our own fd.
    unsafe {
        if libc::write(err_fd, [PARKED_MSG].as_ptr().cast(), 1) != 1 {
            return Err(Fail::errno(Step::Park, 0));
        }
        libc::close(err_fd);
    }
    // SAFETY: path is NUL-terminated (at most 10 digits follow the 14-byte prefix).
    let fd = unsafe { libc::open(path.as_ptr().cast(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Fail::errno(Step::Park, 1));
    }
    // SAFETY: one byte from a static buffer; then our fds are closed.
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

/// The kernel's `struct sigaction` (what rt_sigaction takes, unlike libc's).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct KernelSigaction {
    pub handler: usize,
    pub flags: libc::c_ulong,
    pub restorer: usize,
    pub mask: u64,
}

/// rt_sigaction(2) itself: libc's wrapper may take a lock (see the module's note 2).
pub(crate) fn kernel_sigaction(
    sig: libc::c_int,
    new: Option<&KernelSigaction>,
    old: Option<&mut KernelSigaction>,
) -> libc::c_long {
    let new = new.map_or(std::ptr::null(), |n| n as *const KernelSigaction);
    let old = old.map_or(std::ptr::null_mut(), |o| o as *mut KernelSigaction);
    // SAFETY: both pointers are null or point at live structs of the kernel's layout.
    unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, new, old, 8usize) }
}

/// The user's command starts with default dispositions and an empty mask, whatever berth
/// had (Rust ignores SIGPIPE; the caller may block or handle signals).
pub(crate) fn reset_signals() {
    let default = KernelSigaction::default();
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        kernel_sigaction(sig, Some(&default), None);
    }
    // SAFETY: sigprocmask with a stack set (a plain syscall in both libcs).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// How the child's fds 0-2 are set up.
pub(crate) enum ChildStdio {
    /// Allocate a pty in the container's own devpts (so `tty` says /dev/pts/0, as under
    /// Docker) and send the master back over the err socket. (rows, cols) if known.
    Pty(Option<(u16, u16)>),
    Fds {
        stdin: OwnedFd,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
}

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

fn send_fd(sock: RawFd, fd: RawFd) -> Result<(), Fail> {
    // u64 words keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 8];
    let mut byte = [PTY_MSG];
    // SAFETY: the msghdr points at live stack buffers; CMSG_* compute within them.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr() as *mut libc::c_void,
            iov_len: 1,
        };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut RawFd, fd);
        if libc::sendmsg(sock, &msg, 0) < 0 {
            return Err(Fail::errno(Step::Pty, 3));
        }
    }
    Ok(())
}

const PTY_MSG: u8 = b'P';
/// The child is set up and waits for `start` (OCI create).
const PARKED_MSG: u8 = b'W';

/// Namespaces to create (clone flags) and to join (pre-opened fds).
pub(crate) struct Namespaces {
    pub clone_flags: CloneFlags,
    pub cgroup_ns: bool,
    pub join: Vec<(OwnedFd, CloneFlags, String)>,
    pub join_pid: Option<OwnedFd>,
    /// A network namespace the child is born in (the parent enters it around the clone), as
    /// it would be in one the clone created: a prestart hook finds it at /proc/PID/ns/net.
    pub net_at_clone: Option<OwnedFd>,
    pub new_mount: bool,
    pub new_net: bool,
    pub new_uts: bool,
}

impl Namespaces {
    pub(crate) fn from_spec(spec: &Spec) -> Result<Self, RuntimeError> {
        let mut n = Namespaces {
            clone_flags: CloneFlags::empty(),
            cgroup_ns: false,
            join: Vec::new(),
            join_pid: None,
            net_at_clone: None,
            new_mount: false,
            new_net: false,
            new_uts: false,
        };
        let mut have_mount = false;
        let nss = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        for ns in nss {
            let flag = match ns.typ() {
                LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
                LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
                LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
                LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
                LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
                LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
                other => {
                    return Err(RuntimeError::InvalidSpec(format!(
                        "{other:?} namespaces are not supported"
                    )));
                }
            };
            if flag == CloneFlags::CLONE_NEWNS {
                have_mount = true;
            }
            match ns.path() {
                Some(p) => {
                    let f = File::open(p).map_err(|e| RuntimeError::io("open namespace", p, e))?;
                    let fd = OwnedFd::from(f);
                    if flag == CloneFlags::CLONE_NEWPID {
                        n.join_pid = Some(fd);
                    } else {
                        n.join.push((fd, flag, p.display().to_string()));
                    }
                }
                None if flag == CloneFlags::CLONE_NEWCGROUP => n.cgroup_ns = true,
                None => {
                    n.clone_flags |= flag;
                    n.new_mount |= flag == CloneFlags::CLONE_NEWNS;
                    n.new_net |= flag == CloneFlags::CLONE_NEWNET;
                    n.new_uts |= flag == CloneFlags::CLONE_NEWUTS;
                }
            }
        }
        if !have_mount {
            return Err(RuntimeError::InvalidSpec(
                "a mount namespace is required (pivot_root would change the host's root)".into(),
            ));
        }
        // Join the mount namespace last: its root replaces ours.
        n.join
            .sort_by_key(|(_, f, _)| *f == CloneFlags::CLONE_NEWNS);
        Ok(n)
    }

    /// The namespaces of a running container's init, for `exec`. Namespaces it shares
    /// with us (e.g. the host network) are left alone.
    pub(crate) fn for_exec(pid: Pid) -> Result<Self, RuntimeError> {
        use std::os::unix::fs::MetadataExt;
        let mut n = Namespaces {
            clone_flags: CloneFlags::empty(),
            cgroup_ns: false,
            join: Vec::new(),
            join_pid: None,
            net_at_clone: None,
            new_mount: false,
            new_net: false,
            new_uts: false,
        };
        for (name, flag) in [
            ("ipc", CloneFlags::CLONE_NEWIPC),
            ("uts", CloneFlags::CLONE_NEWUTS),
            ("net", CloneFlags::CLONE_NEWNET),
            ("cgroup", CloneFlags::CLONE_NEWCGROUP),
            ("pid", CloneFlags::CLONE_NEWPID),
            ("mnt", CloneFlags::CLONE_NEWNS),
        ] {
            let theirs = format!("/proc/{pid}/ns/{name}");
            let f =
                File::open(&theirs).map_err(|e| RuntimeError::io("open namespace", &theirs, e))?;
            let meta = f
                .metadata()
                .map_err(|e| RuntimeError::io("stat", &theirs, e))?;
            if let Ok(ours) = std::fs::metadata(format!("/proc/self/ns/{name}"))
                && ours.ino() == meta.ino()
                && ours.dev() == meta.dev()
            {
                continue;
            }
            if flag == CloneFlags::CLONE_NEWPID {
                n.join_pid = Some(OwnedFd::from(f));
            } else {
                n.join.push((OwnedFd::from(f), flag, theirs));
            }
        }
        Ok(n)
    }
}

impl Namespaces {
    /// Joins `fd`, a fresh network namespace made ahead (loopback up), instead of creating
    /// one in the clone.
    pub(crate) fn join_network_namespace(&mut self, fd: OwnedFd) {
        self.clone_flags.remove(CloneFlags::CLONE_NEWNET);
        self.new_net = false;
        self.net_at_clone = Some(fd);
    }
}

/// This thread's stay in another namespace of one kind, to be left again for the one it was
/// in before.
struct NsSwitch {
    own: OwnedFd,
    flag: libc::c_int,
}

/// A namespace kind: its name in /proc/PID/ns/ and its clone flag.
type NsKind = (&'static str, libc::c_int);
const PID_NS: NsKind = ("pid", libc::CLONE_NEWPID);
const NET_NS: NsKind = ("net", libc::CLONE_NEWNET);

impl NsSwitch {
    /// Remembers where this thread is, to come back to.
    fn here((kind, flag): NsKind) -> Result<Self, RuntimeError> {
        let path = format!("/proc/thread-self/ns/{kind}");
        let own = File::open(&path).map_err(|e| RuntimeError::io("open", &path, e))?;
        Ok(NsSwitch {
            own: OwnedFd::from(own),
            flag,
        })
    }

    fn enter(target: &OwnedFd, kind: NsKind) -> Result<Self, RuntimeError> {
        let switch = NsSwitch::here(kind)?;
        // SAFETY: setns on an fd we hold.
        if unsafe { libc::setns(target.as_raw_fd(), switch.flag) } < 0 {
            return Err(RuntimeError::sys(
                "setns",
                format!("{} namespace", kind.0),
                Errno::last(),
            ));
        }
        Ok(switch)
    }

    fn leave(self) -> Result<(), Errno> {
        // SAFETY: setns on an fd we hold, back where this thread was.
        if unsafe { libc::setns(self.own.as_raw_fd(), self.flag) } < 0 {
            return Err(Errno::last());
        }
        Ok(())
    }
}

/// See `runtime::make_network_namespace`.
pub(crate) fn new_network_namespace() -> Result<OwnedFd, RuntimeError> {
    let back = NsSwitch::here(NET_NS)?;
    // SAFETY: unshare with a constant flag; it moves only this thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } < 0 {
        return Err(RuntimeError::sys(
            "unshare",
            "network namespace",
            Errno::last(),
        ));
    }
    let own_path = "/proc/thread-self/ns/net";
    let made = loopback_up()
        .map_err(|f| RuntimeError::sys("bring up", "lo", Errno::from_raw(f.errno)))
        .and_then(|()| {
            File::open(own_path)
                .map(OwnedFd::from)
                .map_err(|e| RuntimeError::io("open", own_path, e))
        });
    if let Err(e) = back.leave() {
        // Going on would fork later monitors (`start a b`) into this namespace, and a host-
        // network container after them would get it: nothing can safely continue.
        eprintln!("berth: cannot return to the host's network namespace: {e}");
        std::process::exit(125);
    }
    made
}

/// Everything the child needs, owned by the parent until clone.
pub(crate) struct ChildPlan<'a> {
    pub ns: &'a Namespaces,
    pub rootfs: Option<&'a RootfsPlan>,
    pub hostname: Option<CString>,
    pub proc_: &'a ProcPlan,
    pub stdio: ChildStdio,
    /// The cgroup files the child writes "0" to (see `Cgroup::self_join_files`).
    pub cgroup_tasks: &'a [CString],
}

fn loopback_up() -> Result<(), Fail> {
    // SAFETY: socket + ioctl with a zeroed ifreq.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return Err(Fail::errno(Step::Loopback, 0));
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        ifr.ifr_name[0] = b'l' as c_char;
        ifr.ifr_name[1] = b'o' as c_char;
        let r = if libc::ioctl(s, libc::SIOCGIFFLAGS as _, &mut ifr) < 0 {
            -1
        } else {
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(s, libc::SIOCSIFFLAGS as _, &ifr)
        };
        let e = Errno::last_raw();
        libc::close(s);
        if r < 0 {
            return Err(Fail::new(Step::Loopback, e, 0));
        }
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

fn child_run(c: &ChildPlan<'_>, sync_fd: RawFd, err_fd: RawFd) -> Fail {
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
    if let Err(f) = close_fds_except(err_fd, c.proc_.park) {
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
    c.proc_.finalize(err_fd)
}

/// fork-like clone(2): the child continues on a copy of our stack.
pub(crate) fn clone_raw(flags: CloneFlags) -> Result<libc::pid_t, Errno> {
    let flags = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: no new stack and no CLONE_VM: the kernel gives the child a copy of ours,
    // exactly like fork(); we never return into code that relies on atfork handlers.
    let r = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(r as libc::pid_t)
}

pub(crate) fn report(err_fd: RawFd, f: Fail) -> ! {
    let b = f.to_bytes();
    // SAFETY: write of a stack buffer, then _exit (no destructors, no atexit).
    unsafe {
        libc::write(err_fd, b.as_ptr() as *const libc::c_void, b.len());
        libc::_exit(if f.step == Step::ExecNotFound as u32 {
            127
        } else {
            126
        })
    }
}

pub(crate) struct Pipes {
    pub sync_r: OwnedFd,
    pub sync_w: OwnedFd,
    pub err_r: OwnedFd,
    pub err_w: OwnedFd,
}

pub(crate) fn pipes() -> Result<Pipes, RuntimeError> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    let (sync_r, sync_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| RuntimeError::sys("pipe2", "sync", e))?;
    // A seqpacket socket, not a pipe: it also carries the pty master (SCM_RIGHTS), and
    // still reads EOF once every copy of the child's end is closed by execve.
    let (err_r, err_w) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| RuntimeError::sys("socketpair", "sync", e))?;
    Ok(Pipes {
        sync_r: above_stdio(sync_r)?,
        sync_w: above_stdio(sync_w)?,
        err_r: above_stdio(err_r)?,
        err_w: above_stdio(err_w)?,
    })
}

/// A caller that closed its stdio (a detached supervisor) gets fds 0-2 for new pipes;
/// the child would overwrite those with the container's stdio. Move them up.
fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, RuntimeError> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    let new = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))
        .map_err(|e| RuntimeError::sys("fcntl", "sync pipe", e))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Clones the child (blocking signals around it so no handler of ours runs in the copy)
/// and returns its pid. The child never returns from here.
pub(crate) fn start_child(c: &ChildPlan<'_>, p: &Pipes) -> Result<Pid, RuntimeError> {
    // SAFETY: sigset manipulation on stack structs.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
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
    // SAFETY: prctl get/set of the dumpable flag.
    let was_dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
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

/// Parent side after clone: release the child, then read the err socket until EOF
/// (the command was exec'd) or a failure record. Returns the pty master if the child
/// allocated one.
pub(crate) fn release_and_wait(
    sync_w: OwnedFd,
    err_r: OwnedFd,
    meanwhile: &mut dyn FnMut(),
) -> Result<Option<OwnedFd>, Option<Fail>> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut sync = File::from(sync_w);
    if std::io::Write::write_all(&mut sync, &[0]).is_err() {
        return Err(None);
    }
    drop(sync);
    meanwhile();
    let mut master = None;
    loop {
        let mut buf = [0u8; 12];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let (n, fd) = {
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            let msg = match recvmsg::<()>(
                err_r.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(m) => m,
                Err(Errno::EINTR) => continue,
                Err(_) => return Err(None),
            };
            let mut fd = None;
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    if let ControlMessageOwned::ScmRights(fds) = c {
                        // SAFETY: the kernel installed these fds for us.
                        fd = fds.first().map(|f| unsafe { OwnedFd::from_raw_fd(*f) });
                    }
                }
            }
            (msg.bytes, fd)
        };
        match n {
            0 => return Ok(master),
            1 if buf[0] == PTY_MSG && fd.is_some() => master = fd,
            1 if buf[0] == PARKED_MSG => return Ok(master),
            12 => return Err(Some(Fail::from_bytes(&buf))),
            _ => return Err(None),
        }
    }
}

/// Turns a child failure into a typed error with the object it was about.
pub(crate) fn describe(
    f: Fail,
    proc_: &ProcPlan,
    rootfs: Option<&RootfsPlan>,
    ns: &Namespaces,
    cgroup_tasks: &[CString],
) -> RuntimeError {
    let Some(step) = Step::from_u32(f.step) else {
        return RuntimeError::ContainerSetup {
            step: "unknown step",
            object: String::new(),
            source: std::io::Error::from_raw_os_error(f.errno),
        };
    };
    let idx = f.idx as usize;
    let errno = Errno::from_raw(f.errno);
    let arg0 = proc_.exec.arg0.clone();
    match step {
        Step::ExecNotFound => return RuntimeError::CommandNotFound(arg0),
        Step::Exec if errno == Errno::ENOENT => return RuntimeError::NoSuchFile(arg0),
        Step::Exec => {
            // Docker's wording: "permission denied", "exec format error".
            let mut chars = errno.desc().chars();
            let reason = chars
                .next()
                .map(|c| c.to_lowercase().chain(chars).collect())
                .unwrap_or_default();
            return RuntimeError::CannotExecute { cmd: arg0, reason };
        }
        _ => {}
    }
    let r = rootfs;
    let (what, object): (&'static str, String) = match step {
        Step::Mount => (
            "mount",
            r.and_then(|r| r.mounts.get(idx))
                .map(|m| m.display.clone())
                .unwrap_or_default(),
        ),
        Step::Device => (
            "create device",
            r.and_then(|r| r.devices.get(idx))
                .map(|d| d.display.clone())
                .unwrap_or_default(),
        ),
        Step::Masked => (
            "mask path",
            r.and_then(|r| r.masked.get(idx))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
        Step::Readonly => (
            "make read-only",
            r.and_then(|r| r.readonly.get(idx))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
        Step::JoinNs => (
            "setns",
            ns.join.get(idx).map(|j| j.2.clone()).unwrap_or_default(),
        ),
        Step::Rlimit => (
            "setrlimit",
            proc_
                .rlimits
                .get(idx)
                .map(|r| r.2.clone())
                .unwrap_or_default(),
        ),
        Step::Chdir => (
            "chdir to cwd",
            format!("{:?} set in config.json", proc_.cwd),
        ),
        Step::CwdOutside => (
            "cwd",
            format!("{:?} is outside the container root", proc_.cwd),
        ),
        Step::OverlayPrep
        | Step::OverlayMount
        | Step::RootBind
        | Step::OpenRoot
        | Step::PivotRoot => (
            match step {
                Step::OverlayPrep => "prepare overlay",
                Step::OverlayMount => "mount overlay on",
                Step::RootBind => "bind rootfs",
                Step::OpenRoot => "open rootfs",
                _ => "pivot_root to",
            },
            r.map(|r| r.rootfs_display.display().to_string())
                .unwrap_or_default(),
        ),
        Step::Sync => ("sync with parent", String::new()),
        Step::Stdio => ("set up stdio fd", idx.to_string()),
        Step::Setsid => ("setsid", String::new()),
        Step::Ctty => ("set controlling terminal", String::new()),
        Step::CgroupNs => ("unshare", "cgroup namespace".into()),
        Step::Loopback => ("bring up", "lo".into()),
        Step::Propagation => ("set propagation of", "/".into()),
        Step::DevSymlinks => ("create symlinks in", "/dev".into()),
        Step::Console => ("bind console", "/dev/console".into()),
        Step::RootReadonly => ("make read-only", "/".into()),
        Step::Hostname => ("sethostname", String::new()),
        Step::NoNewPrivs => ("prctl", "PR_SET_NO_NEW_PRIVS".into()),
        Step::CapBounding => ("drop", "bounding capabilities".into()),
        Step::SetUser => (
            "set user",
            format!(
                "uid={} gid={} groups={:?}",
                proc_.uid, proc_.gid, proc_.groups
            ),
        ),
        Step::Capset => ("capset", "capabilities".into()),
        Step::Seccomp => ("install", "seccomp filter".into()),
        Step::CloseFds => ("close_range", String::new()),
        Step::Fork => ("fork", "init child".into()),
        Step::Dumpable => ("prctl", "PR_SET_DUMPABLE".into()),
        Step::Pty => ("allocate pty", "/dev/ptmx".into()),
        Step::Sysctl => (
            "write sysctl",
            r.and_then(|r| r.sysctls.get(idx))
                .map(|s| s.0.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
        Step::CgroupJoin => (
            "join cgroup through",
            cgroup_tasks
                .get(idx)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
        Step::Park => ("wait for start on", "the exec FIFO".into()),
        Step::ExecNotFound | Step::Exec => unreachable_step(),
    };
    RuntimeError::ContainerSetup {
        step: what,
        object,
        source: std::io::Error::from_raw_os_error(f.errno),
    }
}

// Handled by the early return above; kept as a function so the match stays exhaustive
// without a panic path.
fn unreachable_step() -> (&'static str, String) {
    ("exec", String::new())
}

/// Opens /dev/null for a missing stdin (in the parent: the child must not allocate or
/// depend on the host's /dev after it changed root).
pub(crate) fn dev_null() -> Result<OwnedFd, RuntimeError> {
    let f = File::open("/dev/null").map_err(|e| RuntimeError::io("open", "/dev/null", e))?;
    Ok(OwnedFd::from(f))
}
