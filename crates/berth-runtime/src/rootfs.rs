//! The container's file-system view: overlay (or bind) root, `spec.mounts`, /dev,
//! pivot_root, masked and read-only paths.
//!
//! Everything that allocates (option parsing, path strings, overlay data) happens in the
//! parent when the plan is built; the `child_*` functions run after clone() in a copy of a
//! possibly multi-threaded process, where another thread may have held the allocator lock,
//! so they only use syscalls, stack buffers and the prepared plan.
//!
//! Mount destinations are resolved with openat2(RESOLVE_IN_ROOT) against an fd of the
//! rootfs and the mount is made on `/proc/self/fd/N`: an image whose `/proc` (or any path
//! component) is a symlink to an absolute host path is resolved inside the rootfs and can
//! never redirect a mount onto the host.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use berth_sys::syscall as sys;
use nix::errno::Errno;
use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxDeviceType, Spec};

use super::RuntimeError;
use super::spawn::{Fail, Step};

pub(crate) const ANN_LOWER: &str = "org.berth.overlay.lowerdir";
pub(crate) const ANN_UPPER: &str = "org.berth.overlay.upperdir";
pub(crate) const ANN_WORK: &str = "org.berth.overlay.workdir";

pub(crate) enum MountKind {
    /// An ordinary file-system mount (proc, tmpfs, devpts, sysfs, mqueue, ...).
    Fs,
    /// A bind mount of a host path; `file` when the source is not a directory.
    Bind { file: bool },
    /// `type: cgroup` on a v1 host: a tmpfs with one v1 hierarchy per sub-directory.
    /// A combined hierarchy such as `cpu,cpuacct` also appears as `cpu` and `cpuacct`, as
    /// on the host.
    CgroupV1 { subs: Vec<CgroupV1Sub> },
    /// `type: cgroup` on a v2 host; `bind` as for a v1 hierarchy.
    Cgroup2 { bind: Option<CString> },
}

pub(crate) struct CgroupV1Sub {
    /// The directory under the mount point, named as the host's.
    name: CString,
    /// The hierarchy's mount options (its controllers).
    options: CString,
    /// Symlinks to the directory.
    aliases: Vec<CString>,
    /// Without a cgroup namespace, the host directory of the container's own cgroup in
    /// this hierarchy, bind-mounted instead of the whole hierarchy (as runc does), so the
    /// container sees its limits at the usual paths and nothing of the host's tree.
    bind: Option<CString>,
}

pub(crate) struct MountOp {
    /// Destination relative to the rootfs, without the leading '/'.
    pub dest: CString,
    pub source: Option<CString>,
    pub fstype: Option<CString>,
    pub flags: MsFlags,
    pub data: Option<CString>,
    pub propagation: MsFlags,
    pub kind: MountKind,
    /// For error messages.
    pub display: String,
}

pub(crate) struct Overlay {
    /// (short link name, layer dir) so the mount data stays far below a page even with
    /// 128 layers whose paths are long. Empty when the full paths fit: `data` names them.
    pub links: Vec<(CString, CString)>,
    pub data: CString,
}

pub(crate) struct DeviceOp {
    pub parent: CString,
    pub name: CString,
    pub mode: libc::mode_t,
    pub dev: libc::dev_t,
    pub uid: u32,
    pub gid: u32,
    pub host: CString,
    pub display: String,
}

pub(crate) struct RootfsPlan {
    pub rootfs: CString,
    pub rootfs_display: PathBuf,
    pub overlay: Option<Overlay>,
    pub propagation: MsFlags,
    pub mounts: Vec<MountOp>,
    pub dev_tmpfs: bool,
    /// The host has /proc/kcore, so /dev/core -> /proc/kcore is created.
    pub dev_core: bool,
    pub devices: Vec<DeviceOp>,
    pub masked: Vec<CString>,
    pub readonly: Vec<CString>,
    pub readonly_root: bool,
    /// In a user namespace (new or joined): once the root is bound and open, the child
    /// becomes that namespace's root (setresuid/setresgid 0), as runc's init does. Until
    /// then it is still the host's root, which may traverse a private bundle directory;
    /// after, the files and mount points it makes in file systems mounted inside the
    /// namespace have an owner mapped there (the host's root is not: EOVERFLOW).
    pub userns_root: bool,
    /// (/proc/sys/... path, value) from `linux.sysctl`.
    pub sysctls: Vec<(CString, CString)>,
}

/// The devices the runtime spec requires every container to have (/dev/null, zero, full,
/// random, urandom, tty) that the spec does not list itself.
fn default_devices(linux: &oci_spec::runtime::Linux) -> Vec<oci_spec::runtime::LinuxDevice> {
    const DEFAULTS: [(&str, i64, i64); 6] = [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ];
    let listed: Vec<&Path> = linux
        .devices()
        .iter()
        .flatten()
        .map(|d| d.path().as_path())
        .collect();
    DEFAULTS
        .iter()
        .filter(|(path, _, _)| !listed.contains(&Path::new(path)))
        .map(|&(path, major, minor)| {
            let mut d = oci_spec::runtime::LinuxDevice::default();
            d.set_path(PathBuf::from(path));
            d.set_typ(LinuxDeviceType::C);
            d.set_major(major);
            d.set_minor(minor);
            d.set_file_mode(Some(0o666));
            d.set_uid(Some(0));
            d.set_gid(Some(0));
            d
        })
        .collect()
}

pub(crate) fn cstr(s: impl AsRef<[u8]>, what: &str) -> Result<CString, RuntimeError> {
    CString::new(s.as_ref().to_vec())
        .map_err(|_| RuntimeError::InvalidSpec(format!("{what} contains a NUL byte")))
}

fn rel_dest(p: &Path) -> Result<CString, RuntimeError> {
    if !p.is_absolute() {
        return Err(RuntimeError::InvalidSpec(format!(
            "mount destination {} is not absolute",
            p.display()
        )));
    }
    let s = p.as_os_str().as_bytes();
    let trimmed = s.trim_ascii_start().strip_prefix(b"/").unwrap_or(s);
    let trimmed: &[u8] = {
        let mut t = trimmed;
        while let Some(r) = t.strip_prefix(b"/") {
            t = r;
        }
        t
    };
    if trimmed.is_empty() {
        return Err(RuntimeError::InvalidSpec("cannot mount over /".into()));
    }
    cstr(trimmed, "mount destination")
}

/// Splits mount options into flags, propagation flags and file-system data, as runc does.
pub(crate) fn parse_options(opts: &[String]) -> (MsFlags, MsFlags, Vec<String>) {
    let mut flags = MsFlags::empty();
    let mut prop = MsFlags::empty();
    let mut data = Vec::new();
    for o in opts {
        let (set, clear) = match o.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "defaults" | "tmpcopyup" => (MsFlags::empty(), MsFlags::empty()),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                prop |= propagation_flag(o).unwrap_or(MsFlags::empty());
                continue;
            }
            _ => {
                data.push(o.clone());
                continue;
            }
        };
        flags |= set;
        flags &= !clear;
    }
    (flags, prop, data)
}

fn propagation_flag(s: &str) -> Option<MsFlags> {
    Some(match s {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// The rootfs path: `root.path` absolute, or relative to the bundle.
pub fn rootfs_path(bundle: &Path, spec: &Spec) -> Result<PathBuf, RuntimeError> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| RuntimeError::InvalidSpec("root is missing".into()))?;
    let p = root.path();
    Ok(if p.is_absolute() {
        p.clone()
    } else {
        bundle.join(p)
    })
}

pub(crate) fn plan(bundle: &Path, spec: &Spec) -> Result<RootfsPlan, RuntimeError> {
    let rootfs = rootfs_path(bundle, spec)?;
    let rootfs =
        std::fs::canonicalize(&rootfs).map_err(|e| RuntimeError::io("open rootfs", &rootfs, e))?;
    let ann = spec.annotations().clone().unwrap_or_default();
    let overlay = match (ann.get(ANN_LOWER), ann.get(ANN_UPPER), ann.get(ANN_WORK)) {
        (Some(lower), upper, work) => Some(overlay_plan(lower, upper, work)?),
        (None, None, None) => None,
        _ => {
            return Err(RuntimeError::InvalidSpec(format!(
                "{ANN_UPPER}/{ANN_WORK} given without {ANN_LOWER}"
            )));
        }
    };
    let no_linux = oci_spec::runtime::Linux::default();
    let linux = spec.linux().as_ref().unwrap_or(&no_linux);
    let propagation = match linux.rootfs_propagation().as_deref() {
        None | Some("") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some(p) => propagation_flag(p)
            .ok_or_else(|| RuntimeError::InvalidSpec(format!("unknown rootfsPropagation {p}")))?,
    };

    let mut mounts = Vec::new();
    let mut dev_tmpfs = false;
    for m in spec.mounts().iter().flatten() {
        let opts = m.options().clone().unwrap_or_default();
        let (flags, prop, data) = parse_options(&opts);
        let typ = m.typ().clone().unwrap_or_default();
        let dest = rel_dest(m.destination())?;
        let display = m.destination().display().to_string();
        let is_bind = flags.contains(MsFlags::MS_BIND) || typ == "bind";
        let kind = if is_bind {
            let src = m.source().clone().ok_or_else(|| {
                RuntimeError::InvalidSpec(format!("bind mount {display} has no source"))
            })?;
            let meta = std::fs::metadata(&src)
                .map_err(|e| RuntimeError::io("stat bind source", &src, e))?;
            MountKind::Bind {
                file: !meta.is_dir(),
            }
        } else if typ == "cgroup" {
            // The container's cgroup relative to the hierarchies' roots, when it has no
            // cgroup namespace of its own (Docker's --cgroupns host).
            let own_ns = linux
                .namespaces()
                .iter()
                .flatten()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Cgroup);
            let host_rel = match linux.cgroups_path() {
                Some(p) if !own_ns => {
                    let cg = super::cgroups::for_path(p)?;
                    let rel = cg.path();
                    Some(rel.strip_prefix("/").unwrap_or(rel).to_path_buf())
                }
                _ => None,
            };
            if super::cgroups::is_v2() {
                MountKind::Cgroup2 {
                    bind: host_rel
                        .map(|rel| {
                            let dir = Path::new(super::cgroups::v2::ROOT).join(rel);
                            cstr(dir.as_os_str().as_bytes(), "cgroup directory")
                        })
                        .transpose()?,
                }
            } else {
                let mut subs = Vec::new();
                for (ctrls, mnt) in super::cgroups::v1::hierarchies()? {
                    let Some(name) = mnt.file_name() else {
                        continue;
                    };
                    let mut o = ctrls.join(",");
                    if ctrls.iter().all(|c| c.starts_with("name=") || c == "xattr") {
                        o = format!("none,{o}");
                    }
                    let dir = name.to_string_lossy();
                    let aliases = ctrls
                        .iter()
                        .filter(|c| {
                            ctrls.len() > 1 && !c.contains('=') && **c != dir && *c != "xattr"
                        })
                        .map(|c| cstr(c.as_bytes(), "cgroup controller"))
                        .collect::<Result<Vec<_>, _>>()?;
                    let bind = host_rel
                        .as_ref()
                        .map(|rel| {
                            let dir = mnt.join(rel);
                            cstr(dir.as_os_str().as_bytes(), "cgroup directory")
                        })
                        .transpose()?;
                    subs.push(CgroupV1Sub {
                        name: cstr(name.as_bytes(), "cgroup name")?,
                        options: cstr(o, "cgroup options")?,
                        aliases,
                        bind,
                    });
                }
                MountKind::CgroupV1 { subs }
            }
        } else {
            if display == "/dev" && typ == "tmpfs" {
                dev_tmpfs = true;
            }
            MountKind::Fs
        };
        let source = match m.source() {
            Some(s) => Some(cstr(s.as_os_str().as_bytes(), "mount source")?),
            None => Some(cstr(typ.as_bytes(), "mount source")?),
        };
        mounts.push(MountOp {
            dest,
            source,
            fstype: if typ.is_empty() || is_bind {
                None
            } else {
                Some(cstr(typ.as_bytes(), "mount type")?)
            },
            flags: flags & !MsFlags::MS_REMOUNT,
            data: if data.is_empty() {
                None
            } else {
                Some(cstr(data.join(","), "mount options")?)
            },
            propagation: prop,
            kind,
            display,
        });
    }

    let mut devices = Vec::new();
    for d in linux
        .devices()
        .iter()
        .flatten()
        .chain(&default_devices(linux))
    {
        let path = d.path();
        // /dev/ptmx is a link into the container's own devpts (made below, as runc replaces
        // a listed ptmx with it): the host's node would hand out the host's ptys.
        if path == Path::new("/dev/ptmx") {
            continue;
        }
        let rel = rel_dest(path)?;
        let rel_path = Path::new(std::ffi::OsStr::from_bytes(rel.as_bytes()));
        let parent = rel_path.parent().unwrap_or(Path::new(""));
        let name = rel_path
            .file_name()
            .ok_or_else(|| RuntimeError::InvalidSpec(format!("device path {}", path.display())))?;
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(RuntimeError::InvalidSpec(format!(
                    "device {} has type a",
                    path.display()
                )));
            }
        };
        devices.push(DeviceOp {
            parent: cstr(parent.as_os_str().as_bytes(), "device path")?,
            name: cstr(name.as_bytes(), "device path")?,
            mode: kind | (d.file_mode().unwrap_or(0o666) & 0o7777),
            dev: libc::makedev(d.major() as u32, d.minor() as u32),
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
            host: cstr(path.as_os_str().as_bytes(), "device path")?,
            display: path.display().to_string(),
        });
    }
    let mut sysctls = Vec::new();
    let mut keys: Vec<_> = linux.sysctl().iter().flatten().collect();
    keys.sort();
    for (k, v) in keys {
        if k.is_empty() || k.contains("..") || k.contains('/') || k.contains('\0') {
            return Err(RuntimeError::InvalidSpec(format!("invalid sysctl {k}")));
        }
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        sysctls.push((cstr(path, "sysctl")?, cstr(v, "sysctl value")?));
    }
    let abs = |v: &Option<Vec<String>>| -> Result<Vec<CString>, RuntimeError> {
        v.iter()
            .flatten()
            .map(|p| cstr(p.as_bytes(), "path"))
            .collect()
    };
    Ok(RootfsPlan {
        rootfs: cstr(rootfs.as_os_str().as_bytes(), "rootfs")?,
        rootfs_display: rootfs,
        overlay,
        propagation,
        mounts,
        dev_tmpfs,
        dev_core: Path::new("/proc/kcore").exists(),
        userns_root: linux
            .namespaces()
            .iter()
            .flatten()
            .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User),
        devices,
        masked: abs(linux.masked_paths())?,
        readonly: abs(linux.readonly_paths())?,
        readonly_root: spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false),
        sysctls,
    })
}

fn overlay_plan(
    lower: &str,
    upper: Option<&String>,
    work: Option<&String>,
) -> Result<Overlay, RuntimeError> {
    let lowers: Vec<&str> = lower.split(':').filter(|l| !l.is_empty()).collect();
    if let Some(l) = lowers.iter().find(|l| !l.starts_with('/')) {
        return Err(RuntimeError::InvalidSpec(format!(
            "overlay lowerdir {l} is not absolute"
        )));
    }
    if lowers.is_empty() {
        return Err(RuntimeError::InvalidSpec(
            "overlay lowerdir is empty".into(),
        ));
    }
    let upper_work = match (upper, work) {
        (Some(u), Some(w)) => Some((u.as_str(), w.as_str())),
        (None, None) => None,
        _ => {
            return Err(RuntimeError::InvalidSpec(
                "overlay upperdir and workdir must be given together".into(),
            ));
        }
    };
    // Docker's overlay2 options: no inode index (layers are shared between many mounts).
    let data = |lowers: &[&str], upper_work: Option<(&str, &str)>| {
        let mut d = format!("lowerdir={}", lowers.join(":"));
        if let Some((u, w)) = upper_work {
            d.push_str(&format!(",upperdir={u},workdir={w}"));
        }
        d.push_str(",index=off");
        d
    };
    // The kernel takes one page of mount data. When the real paths fit, and hold none of
    // the characters the option parser splits on, name them directly and save the scratch
    // mount the short links need.
    let direct = data(&lowers, upper_work);
    let all = lowers
        .iter()
        .copied()
        .chain(upper_work.into_iter().flat_map(|(u, w)| [u, w]));
    if direct.len() < 3072 && !all.clone().any(|p| p.contains([',', ':', '\\'])) {
        return Ok(Overlay {
            links: Vec::new(),
            data: cstr(direct, "overlay data")?,
        });
    }
    let names: Vec<String> = (0..lowers.len()).map(|i| i.to_string()).collect();
    let short: Vec<&str> = names.iter().map(String::as_str).collect();
    let links = short
        .iter()
        .copied()
        .chain(upper_work.map(|_| ["u", "w"]).into_iter().flatten())
        .zip(all)
        .map(|(name, dir)| Ok((cstr(name, "overlay")?, cstr(dir, "overlay directory")?)))
        .collect::<Result<Vec<_>, RuntimeError>>()?;
    Ok(Overlay {
        links,
        data: cstr(data(&short, upper_work.map(|_| ("u", "w"))), "overlay data")?,
    })
}

// ---------------------------------------------------------------------------------------
// Child side: no allocation below this line.

/// statfs's relatime bit (<sys/statvfs.h>), which the libc crate only names for glibc.
const ST_RELATIME: u64 = 0x1000;

/// openat2(root, path, RESOLVE_IN_ROOT): symlinks and ".." resolve as if `root` were "/".
pub fn openat2_in_root(root: &OwnedFd, path: &CStr, flags: i32) -> Result<OwnedFd, Errno> {
    openat2_raw(root.as_raw_fd(), path, flags)
}

fn openat2_raw(root: RawFd, path: &CStr, flags: i32) -> Result<OwnedFd, Errno> {
    let resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    sys::openat2(root, path, flags, resolve).map_err(Errno::from_raw)
}

/// "/proc/self/fd/N" in a stack buffer.
pub(crate) struct FdPath {
    buf: [u8; 32],
}

impl FdPath {
    pub(crate) fn new(fd: RawFd) -> Self {
        let mut buf = [0u8; 32];
        let prefix = b"/proc/self/fd/";
        buf[..prefix.len()].copy_from_slice(prefix);
        let mut digits = [0u8; 12];
        let mut n = fd.max(0) as u32;
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for i in 0..len {
            buf[prefix.len() + i] = digits[len - 1 - i];
        }
        FdPath { buf }
    }

    pub(crate) fn as_cstr(&self) -> &CStr {
        // The buffer always holds a NUL after the digits.
        CStr::from_bytes_until_nul(&self.buf).unwrap_or(c"/")
    }
}

/// Opens `rel` inside the rootfs, creating missing directories (and, if `file`, an empty
/// final file) along the way, each creation relative to an already-resolved parent. A
/// dangling symlink on the way gets its target created inside the rootfs, as runc does
/// (an image's `/proc -> /somewhere` gets `<rootfs>/somewhere`, never the host's).
pub(crate) fn ensure_in_root(root: &OwnedFd, rel: &CStr, file: bool) -> Result<OwnedFd, Errno> {
    ensure_bytes(root, rel.to_bytes(), file, 0)
}

fn ensure_bytes(root: &OwnedFd, rel: &[u8], file: bool, depth: u32) -> Result<OwnedFd, Errno> {
    if depth > 8 {
        return Err(Errno::ELOOP);
    }
    let n = rel.len();
    if n >= 4096 {
        return Err(Errno::ENAMETOOLONG);
    }
    let mut buf = [0u8; 4096];
    buf[..n].copy_from_slice(rel);
    let full = CStr::from_bytes_until_nul(&buf[..=n]).map_err(|_| Errno::EINVAL)?;
    match openat2_in_root(root, full, libc::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let mut parent: Option<OwnedFd> = None;
    let mut start = 0;
    let mut i = 0;
    while i <= n {
        if i == n || buf[i] == b'/' {
            let comp_len = i - start;
            if comp_len > 0 && !(comp_len == 1 && buf[start] == b'.') {
                let last = i == n;
                let saved = buf[i];
                buf[i] = 0;
                let fd = match openat2_in_root(root, cstr_at(&buf, 0, i)?, libc::O_PATH) {
                    Ok(fd) => fd,
                    Err(Errno::ENOENT) => {
                        let dirfd = parent.as_ref().map_or(root.as_raw_fd(), |p| p.as_raw_fd());
                        create_component(root, dirfd, &buf, start, i, last && file, depth)?;
                        openat2_in_root(root, cstr_at(&buf, 0, i)?, libc::O_PATH)?
                    }
                    Err(e) => return Err(e),
                };
                buf[i] = saved;
                parent = Some(fd);
            }
            start = i + 1;
        }
        i += 1;
    }
    parent.ok_or(Errno::EINVAL)
}

/// `buf[from..to]` as a C string; `buf[to]` must already be NUL.
fn cstr_at(buf: &[u8], from: usize, to: usize) -> Result<&CStr, Errno> {
    CStr::from_bytes_until_nul(&buf[from..=to]).map_err(|_| Errno::EINVAL)
}

/// Creates the component `buf[start..end]` (NUL at `end`) in `dirfd`; if a dangling
/// symlink is in the way, creates its target (resolved inside the rootfs) instead.
fn create_component(
    root: &OwnedFd,
    dirfd: RawFd,
    buf: &[u8],
    start: usize,
    end: usize,
    file: bool,
    depth: u32,
) -> Result<(), Errno> {
    let name = cstr_at(buf, start, end)?;
    // SAFETY: valid fds and C strings.
    let r = unsafe {
        if file {
            let f = libc::openat(
                dirfd,
                name.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_WRONLY | libc::O_CLOEXEC,
                0o644,
            );
            if f >= 0 {
                libc::close(f);
            }
            f
        } else {
            libc::mkdirat(dirfd, name.as_ptr(), 0o755)
        }
    };
    if r >= 0 {
        return Ok(());
    }
    if Errno::last() != Errno::EEXIST {
        return Err(Errno::last());
    }
    let mut target = [0u8; 4096];
    // SAFETY: buffer of the given size.
    let len = unsafe {
        libc::readlinkat(
            dirfd,
            name.as_ptr(),
            target.as_mut_ptr() as *mut libc::c_char,
            target.len(),
        )
    };
    if len < 0 {
        // Exists and is not a symlink: the caller's re-open reports what is wrong.
        return Ok(());
    }
    let len = len as usize;
    let mut path = [0u8; 4096];
    let mut plen = 0;
    if target.first() != Some(&b'/') {
        // Relative to the directory holding the link.
        path[..start].copy_from_slice(&buf[..start]);
        plen = start;
    }
    let t = &target[..len];
    if plen + t.len() >= path.len() {
        return Err(Errno::ENAMETOOLONG);
    }
    path[plen..plen + t.len()].copy_from_slice(t);
    plen += t.len();
    let mut p: &[u8] = &path[..plen];
    while let Some(rest) = p.strip_prefix(b"/") {
        p = rest;
    }
    if p.is_empty() {
        return Err(Errno::EEXIST);
    }
    ensure_bytes(root, p, file, depth + 1).map(drop)
}

fn mount_raw(
    src: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: MsFlags,
    data: Option<&CStr>,
) -> Result<(), Errno> {
    // SAFETY: all pointers are NUL-terminated strings or null.
    let r = unsafe {
        libc::mount(
            src.map_or(std::ptr::null(), |s| s.as_ptr()),
            target.as_ptr(),
            fstype.map_or(std::ptr::null(), |s| s.as_ptr()),
            flags.bits(),
            data.map_or(std::ptr::null(), |s| s.as_ptr() as *const libc::c_void),
        )
    };
    if r < 0 { Err(Errno::last()) } else { Ok(()) }
}

fn fail(step: Step, idx: usize) -> impl Fn(Errno) -> Fail {
    move |e| Fail::new(step, e as i32, idx)
}

/// Bind-remounts the mount at `target` with `flags` (ro, nosuid, ...) on top of the flags
/// it already has, so remounting never clears nosuid/nodev/noexec by accident.
fn remount_bind(target: &CStr, flags: MsFlags) -> Result<(), Errno> {
    let mut have = MsFlags::empty();
    if let Ok(st) = sys::statfs(target) {
        for (st_bit, ms) in [
            (libc::ST_NOSUID, MsFlags::MS_NOSUID),
            (libc::ST_NODEV, MsFlags::MS_NODEV),
            (libc::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (libc::ST_NOATIME, MsFlags::MS_NOATIME),
            (libc::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (ST_RELATIME, MsFlags::MS_RELATIME),
        ] {
            if st.f_flags as u64 & st_bit != 0 {
                have |= ms;
            }
        }
    }
    let keep = flags
        & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)
        & !(MsFlags::MS_PRIVATE | MsFlags::MS_SHARED | MsFlags::MS_SLAVE | MsFlags::MS_UNBINDABLE);
    mount_raw(
        None,
        target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | keep | have,
        None,
    )
}

/// Root propagations set after pivot_root (see child_prepare).
const AFTER_PIVOT: MsFlags = MsFlags::MS_SHARED.union(MsFlags::MS_UNBINDABLE);

/// Runs in the child, inside its new mount namespace, before pivot_root.
pub(crate) fn child_prepare(p: &RootfsPlan) -> Result<(), Fail> {
    // pivot_root refuses a shared new root and an unbindable one cannot be bound (both
    // EINVAL): such a rootfsPropagation is applied after the pivot (child_pivot), from a
    // slave copy, so the container's mounts still never reach the host's.
    let before_pivot = if p.propagation.intersects(AFTER_PIVOT) {
        MsFlags::MS_SLAVE | MsFlags::MS_REC
    } else {
        p.propagation
    };
    mount_raw(None, c"/", None, before_pivot, None).map_err(fail(Step::Propagation, 0))?;
    if let Some(ov) = &p.overlay {
        if !ov.links.is_empty() {
            scratch_links(p, ov)?;
        }
        let r = mount_raw(
            Some(c"overlay"),
            &p.rootfs,
            Some(c"overlay"),
            MsFlags::empty(),
            Some(&ov.data),
        );
        // SAFETY: chdir to a constant path.
        unsafe { libc::chdir(c"/".as_ptr()) };
        r.map_err(fail(Step::OverlayMount, 0))?;
    } else {
        // pivot_root needs the new root to be a mount point.
        mount_raw(
            Some(&p.rootfs),
            &p.rootfs,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )
        .map_err(fail(Step::RootBind, 0))?;
    }
    let root = open_dir(&p.rootfs).map_err(fail(Step::OpenRoot, 0))?;
    if p.userns_root {
        berth_sys::syscall::setresgid(0).map_err(|e| Fail::new(Step::UserNsRoot, e, 0))?;
        berth_sys::syscall::setresuid(0).map_err(|e| Fail::new(Step::UserNsRoot, e, 1))?;
        // The mounts below reach their targets through /proc/self/fd, whose directory a
        // non-dumpable process's host root owns, out of reach of the namespace's root:
        // dumpable until the root file system is done (child.rs undoes it before anything
        // of the container runs), as runc's init is while it mounts.
        // SAFETY: an integer-only prctl on this process.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) } < 0 {
            return Err(Fail::errno(Step::Dumpable, 1));
        }
    }
    for (i, m) in p.mounts.iter().enumerate() {
        mount_one(&root, m).map_err(fail(Step::Mount, i))?;
    }
    if p.dev_tmpfs {
        setup_dev(&root, p)?;
    }
    Ok(())
}

/// Leaves the cwd in a directory of short symlinks to the overlay's directories, for mount
/// data that would not fit a page with the full paths.
fn scratch_links(p: &RootfsPlan, ov: &Overlay) -> Result<(), Fail> {
    // A private scratch tmpfs, detached before use, holds the short symlinks: the overlay
    // resolves them at mount time relative to our cwd, nothing stays behind.
    mount_raw(
        Some(c"tmpfs"),
        &p.rootfs,
        Some(c"tmpfs"),
        MsFlags::empty(),
        Some(c"mode=700,size=1m"),
    )
    .map_err(fail(Step::OverlayPrep, 0))?;
    // SAFETY: plain syscalls on prepared strings.
    unsafe {
        if libc::chdir(p.rootfs.as_ptr()) < 0 {
            return Err(Fail::new(Step::OverlayPrep, Errno::last_raw(), 0));
        }
        for (name, target) in &ov.links {
            if libc::symlink(target.as_ptr(), name.as_ptr()) < 0 {
                return Err(Fail::new(Step::OverlayPrep, Errno::last_raw(), 0));
            }
        }
        if libc::umount2(p.rootfs.as_ptr(), libc::MNT_DETACH) < 0 {
            return Err(Fail::new(Step::OverlayPrep, Errno::last_raw(), 0));
        }
    }
    Ok(())
}

fn open_dir(path: &CStr) -> Result<OwnedFd, Errno> {
    // SAFETY: valid C string.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn mount_one(root: &OwnedFd, m: &MountOp) -> Result<(), Errno> {
    let file = matches!(m.kind, MountKind::Bind { file: true });
    let dest = ensure_in_root(root, &m.dest, file)?;
    let target = FdPath::new(dest.as_raw_fd());
    let t = target.as_cstr();
    match &m.kind {
        MountKind::Bind { .. } => {
            let rec = m.flags & MsFlags::MS_REC;
            mount_raw(m.source.as_deref(), t, None, MsFlags::MS_BIND | rec, None)?;
            let extra = m.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
            if !extra.is_empty() {
                let now = openat2_in_root(root, &m.dest, libc::O_PATH)?;
                remount_bind(FdPath::new(now.as_raw_fd()).as_cstr(), extra)?;
            }
        }
        MountKind::Fs => {
            // A ro flag on a shared superblock (sysfs without a new net namespace) would
            // make the host's mount ro too: mount rw, then make only our mount ro.
            let ro = m.flags & MsFlags::MS_RDONLY;
            mount_raw(
                m.source.as_deref(),
                t,
                m.fstype.as_deref(),
                m.flags & !ro,
                m.data.as_deref(),
            )?;
            if !ro.is_empty() {
                let now = openat2_in_root(root, &m.dest, libc::O_PATH)?;
                remount_bind(FdPath::new(now.as_raw_fd()).as_cstr(), m.flags)?;
            }
        }
        MountKind::Cgroup2 { bind } => {
            let ro = m.flags & MsFlags::MS_RDONLY;
            match bind {
                Some(dir) => {
                    mount_raw(Some(dir), t, None, MsFlags::MS_BIND, None)?;
                    let now = openat2_in_root(root, &m.dest, libc::O_PATH)?;
                    remount_bind(FdPath::new(now.as_raw_fd()).as_cstr(), m.flags)?;
                }
                None => {
                    mount_raw(Some(c"cgroup2"), t, Some(c"cgroup2"), m.flags & !ro, None)?;
                    if !ro.is_empty() {
                        let now = openat2_in_root(root, &m.dest, libc::O_PATH)?;
                        remount_bind(FdPath::new(now.as_raw_fd()).as_cstr(), m.flags)?;
                    }
                }
            }
        }
        MountKind::CgroupV1 { subs } => {
            let base = m.flags & !MsFlags::MS_RDONLY;
            mount_raw(Some(c"tmpfs"), t, Some(c"tmpfs"), base, Some(c"mode=755"))?;
            let now = openat2_in_root(root, &m.dest, libc::O_PATH)?;
            for CgroupV1Sub {
                name,
                options,
                aliases,
                bind,
            } in subs
            {
                for alias in aliases {
                    // SAFETY: valid fd and names.
                    let r =
                        unsafe { libc::symlinkat(name.as_ptr(), now.as_raw_fd(), alias.as_ptr()) };
                    if r < 0 && Errno::last() != Errno::EEXIST {
                        return Err(Errno::last());
                    }
                }
                // SAFETY: valid fd and names.
                let r = unsafe { libc::mkdirat(now.as_raw_fd(), name.as_ptr(), 0o755) };
                if r < 0 && Errno::last() != Errno::EEXIST {
                    return Err(Errno::last());
                }
                let sub = openat2_raw(now.as_raw_fd(), name, libc::O_PATH)?;
                let sp = FdPath::new(sub.as_raw_fd());
                match bind {
                    Some(dir) => {
                        mount_raw(Some(dir), sp.as_cstr(), None, MsFlags::MS_BIND, None)?;
                        let mounted = openat2_raw(now.as_raw_fd(), name, libc::O_PATH)?;
                        remount_bind(FdPath::new(mounted.as_raw_fd()).as_cstr(), m.flags)?;
                    }
                    // A v1 hierarchy's superblock is shared with the host's mount:
                    // MS_RDONLY here only makes this mount read-only (the super options
                    // stay rw), so no separate remount is needed.
                    None => mount_raw(
                        Some(c"cgroup"),
                        sp.as_cstr(),
                        Some(c"cgroup"),
                        m.flags,
                        Some(options),
                    )?,
                }
            }
            if m.flags.contains(MsFlags::MS_RDONLY) {
                let fp = FdPath::new(now.as_raw_fd());
                mount_raw(
                    None,
                    fp.as_cstr(),
                    None,
                    MsFlags::MS_REMOUNT | m.flags,
                    Some(c"mode=755"),
                )?;
            }
        }
    }
    if !m.propagation.is_empty() {
        let now = openat2_in_root(root, &m.dest, libc::O_PATH)?;
        mount_raw(
            None,
            FdPath::new(now.as_raw_fd()).as_cstr(),
            None,
            m.propagation,
            None,
        )?;
    }
    Ok(())
}

fn setup_dev(root: &OwnedFd, p: &RootfsPlan) -> Result<(), Fail> {
    for (i, d) in p.devices.iter().enumerate() {
        let dir = ensure_in_root(root, &d.parent, false).map_err(fail(Step::Device, i))?;
        // SAFETY: valid fd and strings.
        let r = unsafe { libc::mknodat(dir.as_raw_fd(), d.name.as_ptr(), d.mode, d.dev) };
        if r < 0 {
            match Errno::last() {
                Errno::EEXIST => continue,
                // Without CAP_MKNOD (or in a user namespace) bind the host's node instead.
                Errno::EPERM => {
                    // SAFETY: as above.
                    let f = unsafe {
                        libc::openat(
                            dir.as_raw_fd(),
                            d.name.as_ptr(),
                            libc::O_CREAT | libc::O_NOFOLLOW | libc::O_WRONLY | libc::O_CLOEXEC,
                            0o644,
                        )
                    };
                    if f < 0 {
                        return Err(Fail::new(Step::Device, Errno::last_raw(), i));
                    }
                    // SAFETY: fresh fd.
                    unsafe { libc::close(f) };
                    let node = openat2_raw(dir.as_raw_fd(), &d.name, libc::O_PATH)
                        .map_err(fail(Step::Device, i))?;
                    mount_raw(
                        Some(&d.host),
                        FdPath::new(node.as_raw_fd()).as_cstr(),
                        None,
                        MsFlags::MS_BIND,
                        None,
                    )
                    .map_err(fail(Step::Device, i))?;
                    continue;
                }
                e => return Err(Fail::new(Step::Device, e as i32, i)),
            }
        }
        // mknod applies the umask; the spec's mode is meant literally.
        // SAFETY: as above.
        unsafe {
            libc::fchmodat(dir.as_raw_fd(), d.name.as_ptr(), d.mode & 0o7777, 0);
            if libc::fchownat(
                dir.as_raw_fd(),
                d.name.as_ptr(),
                d.uid,
                d.gid,
                libc::AT_SYMLINK_NOFOLLOW,
            ) < 0
            {
                return Err(Fail::new(Step::Device, Errno::last_raw(), i));
            }
        }
    }
    let dev = ensure_in_root(root, c"dev", false).map_err(fail(Step::DevSymlinks, 0))?;
    let links: [(&CStr, &CStr); 6] = [
        (c"/proc/self/fd", c"fd"),
        (c"/proc/self/fd/0", c"stdin"),
        (c"/proc/self/fd/1", c"stdout"),
        (c"/proc/self/fd/2", c"stderr"),
        (c"pts/ptmx", c"ptmx"),
        // As runc: only where the kernel has /proc/kcore (which is masked anyway).
        (c"/proc/kcore", c"core"),
    ];
    for (target, name) in links {
        if name == c"core" && !p.dev_core {
            continue;
        }
        // SAFETY: valid fd and strings.
        let r = unsafe { libc::symlinkat(target.as_ptr(), dev.as_raw_fd(), name.as_ptr()) };
        if r < 0 && Errno::last() != Errno::EEXIST {
            return Err(Fail::new(Step::DevSymlinks, Errno::last_raw(), 0));
        }
    }
    Ok(())
}

/// pivot_root into the rootfs without a temporary directory (runc's trick: pivot onto
/// "." and unmount the old root from under ourselves).
pub(crate) fn child_pivot(p: &RootfsPlan) -> Result<(), Fail> {
    let step = |_| Fail::new(Step::PivotRoot, Errno::last_raw(), 0);
    let old = open_dir(c"/").map_err(fail(Step::PivotRoot, 0))?;
    let new = open_dir(&p.rootfs).map_err(fail(Step::PivotRoot, 0))?;
    // SAFETY: plain syscalls.
    unsafe {
        if libc::fchdir(new.as_raw_fd()) < 0 {
            return Err(step(()));
        }
        if sys::pivot_root(c".", c".").is_err() {
            return Err(step(()));
        }
        if libc::fchdir(old.as_raw_fd()) < 0 {
            return Err(step(()));
        }
    }
    // Make sure unmounting the old root cannot propagate to the host.
    mount_raw(None, c".", None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None)
        .map_err(fail(Step::PivotRoot, 0))?;
    // SAFETY: plain syscalls.
    unsafe {
        if libc::umount2(c".".as_ptr(), libc::MNT_DETACH) < 0 {
            return Err(step(()));
        }
        if libc::chdir(c"/".as_ptr()) < 0 {
            return Err(step(()));
        }
    }
    if p.propagation.intersects(AFTER_PIVOT) {
        mount_raw(None, c"/", None, p.propagation, None).map_err(fail(Step::Propagation, 0))?;
    }
    Ok(())
}

/// After pivot_root: sysctls (while /proc/sys is still writable), masked paths,
/// read-only paths, read-only root.
pub(crate) fn child_finish(p: &RootfsPlan) -> Result<(), Fail> {
    for (i, (path, value)) in p.sysctls.iter().enumerate() {
        // SAFETY: open/write/close on prepared strings.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(Fail::new(Step::Sysctl, Errno::last_raw(), i));
            }
            let b = value.as_bytes();
            let r = libc::write(fd, b.as_ptr() as *const libc::c_void, b.len());
            let e = Errno::last_raw();
            libc::close(fd);
            if r < 0 {
                return Err(Fail::new(Step::Sysctl, e, i));
            }
        }
    }
    for (i, path) in p.masked.iter().enumerate() {
        // SAFETY: stat into a zeroed buffer.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid path.
        if unsafe { libc::stat(path.as_ptr(), &mut st) } < 0 {
            if Errno::last() == Errno::ENOENT {
                continue;
            }
            return Err(Fail::new(Step::Masked, Errno::last_raw(), i));
        }
        let r = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            mount_raw(
                Some(c"tmpfs"),
                path,
                Some(c"tmpfs"),
                MsFlags::MS_RDONLY,
                Some(c"size=0"),
            )
        } else {
            mount_raw(Some(c"/dev/null"), path, None, MsFlags::MS_BIND, None)
        };
        r.map_err(fail(Step::Masked, i))?;
    }
    for (i, path) in p.readonly.iter().enumerate() {
        match mount_raw(
            Some(path),
            path,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        ) {
            Ok(()) => {}
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(Fail::new(Step::Readonly, e as i32, i)),
        }
        remount_bind(path, MsFlags::MS_RDONLY | MsFlags::MS_REC)
            .map_err(fail(Step::Readonly, i))?;
    }
    if p.readonly_root {
        remount_bind(c"/", MsFlags::MS_RDONLY).map_err(fail(Step::RootReadonly, 0))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_data_names_directories_directly_when_they_fit_a_page() {
        let (u, w) = ("/s/c/upper".to_string(), "/s/c/work".to_string());
        let ov = overlay_plan("/s/init:/s/l1", Some(&u), Some(&w)).unwrap();
        assert!(ov.links.is_empty());
        assert_eq!(
            ov.data.to_str().unwrap(),
            "lowerdir=/s/init:/s/l1,upperdir=/s/c/upper,workdir=/s/c/work,index=off"
        );

        // 128 long layer paths would overflow the page: short names, linked.
        let long: Vec<String> = (0..128)
            .map(|i| format!("/{}/{i}", "x".repeat(60)))
            .collect();
        let ov = overlay_plan(&long.join(":"), Some(&u), Some(&w)).unwrap();
        assert_eq!(ov.links.len(), 130);
        assert_eq!(ov.links[5].1.to_str().unwrap(), long[5]);
        assert_eq!(ov.links[128].1.to_str().unwrap(), u);
        let data = ov.data.to_str().unwrap();
        assert!(
            data.starts_with("lowerdir=0:1:2:")
                && data.ends_with(",upperdir=u,workdir=w,index=off")
        );

        // A comma in a path would split the options: links too.
        let ov = overlay_plan("/s/a,b", None, None).unwrap();
        assert_eq!(ov.links.len(), 1);
        assert_eq!(ov.data.to_str().unwrap(), "lowerdir=0,index=off");

        assert!(overlay_plan("rel", None, None).is_err());
        assert!(overlay_plan("/a", Some(&u), None).is_err());
    }
}
