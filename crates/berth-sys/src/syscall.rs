//! Every raw system call berth makes, written once: the ones libc has no wrapper for, and the
//! ones whose libc wrapper berth must not use.
//!
//! *Child-safe* wrappers are legal in the child a multi-threaded process clones without
//! exec (berth-runtime's spawn module): one system call, no allocation, no libc lock, no
//! thread broadcast (glibc's set*id and setgroups wait for every thread glibc knows of, and
//! those threads do not exist in the copy). They return the raw errno, which the child
//! reports to its parent as a number. The others return `io::Result`.

use std::ffi::CStr;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::RlimitResource;

/// errno of the call that just failed. Reading it allocates nothing.
#[inline]
fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[inline]
fn check(r: libc::c_long) -> Result<libc::c_long, i32> {
    if r < 0 { Err(errno()) } else { Ok(r) }
}

#[inline]
fn new_fd(r: libc::c_long) -> Result<OwnedFd, i32> {
    let fd = check(r)?;
    // SAFETY: the kernel just returned this descriptor to us, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// The kernel's `struct open_how`: libc's is non-exhaustive, so it cannot be built whole.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// openat2(2) with `resolve` (`libc::RESOLVE_*`), always O_CLOEXEC and without a mode:
/// nothing opened this way is created. Child-safe.
#[inline]
pub fn openat2(
    dirfd: RawFd,
    path: &CStr,
    flags: libc::c_int,
    resolve: u64,
) -> Result<OwnedFd, i32> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    // SAFETY: `path` is NUL-terminated and `how` is a live open_how whose size is passed
    // alongside; the kernel only reads both.
    new_fd(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    })
}

/// openat(2), always O_CLOEXEC and without a mode: nothing opened this way is created.
/// musl's `open` follows every O_CLOEXEC open with an fcntl (for kernels before 2.6.23);
/// this is the one system call.
#[inline]
pub fn openat(dirfd: RawFd, path: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: `path` is NUL-terminated; the kernel only reads it.
    new_fd(unsafe {
        libc::syscall(
            libc::SYS_openat,
            dirfd,
            path.as_ptr(),
            flags | libc::O_CLOEXEC,
            0,
        )
    })
    .map_err(io::Error::from_raw_os_error)
}

/// open_tree(2): with OPEN_TREE_CLONE, a detached copy of the mount at `path`.
#[inline]
pub fn open_tree(dirfd: RawFd, path: &CStr, flags: libc::c_uint) -> io::Result<OwnedFd> {
    // SAFETY: `path` is NUL-terminated; the kernel only reads it.
    new_fd(unsafe { libc::syscall(libc::SYS_open_tree, dirfd, path.as_ptr(), flags) })
        .map_err(io::Error::from_raw_os_error)
}

/// pidfd_open(2): a descriptor that refers to `pid` for as long as it is held, even after
/// the pid is recycled.
#[inline]
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only.
    new_fd(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })
        .map_err(io::Error::from_raw_os_error)
}

/// close_range(2) of `first..=last`, no flags. Child-safe.
///
/// # Safety
/// Nothing that will use or close a descriptor in the range afterwards may own it (an
/// `OwnedFd`, a `File`): it would act on a closed or reused number.
#[inline]
pub unsafe fn close_range(first: libc::c_uint, last: libc::c_uint) -> Result<(), i32> {
    // SAFETY: integer arguments only; ownership of the descriptors is the caller's contract.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) }).map(drop)
}

/// Clears close-on-exec on `fd` (fcntl F_SETFD 0), so it survives execve. Child-safe.
#[inline]
pub fn clear_cloexec(fd: RawFd) -> Result<(), i32> {
    // SAFETY: integer arguments only; the descriptor's flags are all that changes.
    check(unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_SETFD, 0) }).map(drop)
}

/// Whether `fd` is an open descriptor of this process (fcntl F_GETFD succeeds).
#[inline]
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: integer arguments only; F_GETFD reads the descriptor's flags.
    check(unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFD) }).is_ok()
}

/// eventfd2(2), close-on-exec: a counter the kernel signals (cgroup v1 memory events).
#[inline]
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only.
    new_fd(unsafe { libc::syscall(libc::SYS_eventfd2, 0, libc::EFD_CLOEXEC) })
        .map_err(io::Error::from_raw_os_error)
}

/// inotify_init1(2), close-on-exec.
#[inline]
pub fn inotify_init() -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only.
    new_fd(unsafe { libc::syscall(libc::SYS_inotify_init1, libc::IN_CLOEXEC) })
        .map_err(io::Error::from_raw_os_error)
}

/// inotify_add_watch(2): the watch descriptor for `path` on the inotify instance `fd`.
#[inline]
pub fn inotify_add_watch(fd: RawFd, path: &CStr, mask: u32) -> io::Result<i32> {
    // SAFETY: `path` is NUL-terminated; the kernel only reads it.
    check(unsafe { libc::syscall(libc::SYS_inotify_add_watch, fd, path.as_ptr(), mask) })
        .map(|wd| wd as i32)
        .map_err(io::Error::from_raw_os_error)
}

/// personality(2): sets the calling process's execution domain. Child-safe.
#[inline]
pub fn personality(persona: libc::c_ulong) -> Result<(), i32> {
    // SAFETY: an integer argument only.
    check(unsafe { libc::syscall(libc::SYS_personality, persona) }).map(drop)
}

/// prlimit64(2) on the calling process, setting `limit` (musl's setrlimit broadcasts to
/// every thread). Child-safe.
#[inline]
pub fn set_rlimit(resource: RlimitResource, limit: &libc::rlimit) -> Result<(), i32> {
    let none: *mut libc::rlimit = std::ptr::null_mut();
    // SAFETY: `limit` points at a live rlimit the kernel only reads; the old-limit pointer
    // is null, so nothing is written.
    check(unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            0,
            resource,
            limit as *const libc::rlimit,
            none,
        )
    })
    .map(drop)
}

/// setgroups(2). Child-safe.
#[inline]
pub fn setgroups(groups: &[libc::gid_t]) -> Result<(), i32> {
    // SAFETY: the pointer and length describe a live slice the kernel only reads.
    check(unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) }).map(drop)
}

/// setresgid(2) with one gid for all three. Child-safe.
#[inline]
pub fn setresgid(gid: libc::gid_t) -> Result<(), i32> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) }).map(drop)
}

/// setresuid(2) with one uid for all three. Child-safe.
#[inline]
pub fn setresuid(uid: libc::uid_t) -> Result<(), i32> {
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) }).map(drop)
}

/// The kernel's `struct sigaction` (what rt_sigaction takes, unlike libc's).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct KernelSigaction {
    pub handler: usize,
    pub flags: libc::c_ulong,
    pub restorer: usize,
    pub mask: u64,
}

/// rt_sigaction(2) itself: musl's sigaction takes a lock for SIGABRT. Child-safe.
#[inline]
pub fn rt_sigaction(
    sig: libc::c_int,
    new: Option<&KernelSigaction>,
    old: Option<&mut KernelSigaction>,
) -> Result<(), i32> {
    let new = new.map_or(std::ptr::null(), |n| n as *const KernelSigaction);
    let old = old.map_or(std::ptr::null_mut(), |o| o as *mut KernelSigaction);
    // SAFETY: both pointers are null or point at live structs of the kernel's layout, the
    // size of whose mask (8 bytes) is passed.
    check(unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, new, old, 8usize) }).map(drop)
}

/// fork-like clone(2) with `flags` (namespaces, the exit signal): no new stack and no
/// CLONE_VM, so the child continues on a copy of the caller's. Returns 0 in the child.
///
/// # Safety
/// As for fork(2) in a multi-threaded process: until it execs or exits, the child may call
/// only async-signal-safe code (no allocation, no lock another thread may hold), and
/// nothing relies on atfork handlers having run.
#[inline]
pub unsafe fn clone(flags: libc::c_ulong) -> Result<libc::pid_t, i32> {
    // SAFETY: the caller upholds the contract above; with a null stack the kernel copies
    // ours, and the null tid and tls pointers are not used without the flags naming them.
    check(unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) })
        .map(|pid| pid as libc::pid_t)
}

/// The kernel's `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// The kernel's `struct __user_cap_data_struct`; version 3 takes two, low and high words.
#[repr(C)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// capset(2) of the calling thread, one bit per capability number. Child-safe.
#[inline]
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<(), i32> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: a version-3 header and the two data structs that version reads.
    check(unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) })
        .map(drop)
}

/// seccomp(SECCOMP_SET_MODE_FILTER) of `filter` on the calling thread. Child-safe.
#[inline]
pub fn seccomp_set_mode_filter(
    flags: libc::c_ulong,
    filter: &[libc::sock_filter],
) -> Result<(), i32> {
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at a live instruction array of at least the length it states
    // (a longer filter is cut, never overrun); the kernel copies it and writes nothing.
    check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    })
    .map(drop)
}

/// bpf(2) with a zero-padded `union bpf_attr`.
///
/// # Safety
/// Every pointer `attr` holds (instructions, license, log buffer, ...) must be valid for
/// what `cmd` reads and writes through it.
#[inline]
pub unsafe fn bpf(cmd: libc::c_long, attr: &mut [u8; 128]) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is live for its 128 bytes, whose length is passed; the pointers inside
    // it are the caller's to vouch for.
    check(unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) })
        .map_err(io::Error::from_raw_os_error)
}

/// The kernel's `struct statfs` on 64-bit targets: libc's hides `f_flags`.
#[repr(C)]
#[derive(Default)]
pub struct Statfs {
    pub f_type: i64,
    pub f_bsize: i64,
    pub f_blocks: u64,
    pub f_bfree: u64,
    pub f_bavail: u64,
    pub f_files: u64,
    pub f_ffree: u64,
    pub f_fsid: [i32; 2],
    pub f_namelen: i64,
    pub f_frsize: i64,
    pub f_flags: i64,
    pub f_spare: [i64; 4],
}

/// statfs(2) itself: glibc's statvfs may fall back to parsing /proc/mounts (malloc).
/// Child-safe.
#[inline]
pub fn statfs(path: &CStr) -> Result<Statfs, i32> {
    let mut st = Statfs::default();
    // SAFETY: `path` is NUL-terminated and `st` has the kernel's struct statfs layout.
    check(unsafe { libc::syscall(libc::SYS_statfs, path.as_ptr(), &mut st as *mut Statfs) })?;
    Ok(st)
}

/// pivot_root(2). Child-safe.
#[inline]
pub fn pivot_root(new_root: &CStr, put_old: &CStr) -> Result<(), i32> {
    // SAFETY: both paths are NUL-terminated; the kernel only reads them.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) })
        .map(drop)
}
