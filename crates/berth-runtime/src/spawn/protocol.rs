//! The parent/child protocol of a container start: the two pipes, the fixed-size failure
//! record the child sends when a setup step fails (or the pty master it hands over), and the
//! parent's side that releases the child and turns a failure back into a typed error.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use super::namespaces::Namespaces;
use super::plan::ProcPlan;
use crate::RuntimeError;
use crate::rootfs::RootfsPlan;

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
    UnshareNs,
    TimeNs,
    Personality,
    UserNsRoot,
);

/// The fixed-size failure record the child sends over the err pipe.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fail {
    step: u32,
    pub(super) errno: i32,
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

    pub(crate) fn errno(step: Step, idx: usize) -> Self {
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

impl Pipes {
    /// The parent's ends (sync write, err read) once the child is cloned; the child's ends
    /// close here, or EOF on them would never come.
    pub(crate) fn parent_ends(self) -> (OwnedFd, OwnedFd) {
        (self.sync_w, self.err_r)
    }
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

pub(super) fn send_fd(sock: RawFd, fd: RawFd) -> Result<(), Fail> {
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
pub(super) const PARKED_MSG: u8 = b'W';

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
        Step::TimeNs => (
            match idx {
                0 => "unshare",
                1 => "write offsets of",
                _ => "enter",
            },
            "time namespace".into(),
        ),
        Step::Personality => ("set", "personality".into()),
        Step::UserNsRoot => (
            "become root of",
            "the user namespace (container uid and gid 0 must be mapped)".into(),
        ),
        Step::UnshareNs => (
            "unshare",
            format!("{:?} in the joined user namespace", ns.unshare_after_join),
        ),
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
        Step::Park => ("wait for start on", "the exec FIFO".into()),
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
