//! The namespaces a container is created in or joins, and the parent's brief stays in
//! another namespace around the clone (a pid namespace to join, a network namespace made
//! ahead).

use std::ffi::{CString, c_char};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::protocol::{Fail, Step};
use crate::RuntimeError;

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
    /// A new user namespace: the clone makes it, and the parent writes its maps
    /// (/proc/PID/uid_map, gid_map: `inside outside count` lines) before releasing the child.
    pub user_maps: Option<(String, String)>,
    /// With a user namespace joined by path: the namespaces to make, unshared by the child
    /// once it is in that user namespace so that they belong to it (made by the clone, they
    /// would belong to the host's, where the child has no privilege once it has joined).
    pub unshare_after_join: CloneFlags,
    /// A new time namespace with these offsets (`/proc/self/timens_offsets` lines, maybe
    /// none): the child unshares it, writes them, then enters it itself, since clone(2)
    /// cannot make one and offsets can only be set before any process is inside.
    pub time_offsets: Option<CString>,
}

/// clone(2)'s flag for a time namespace, which nix does not name.
pub(crate) const CLONE_NEWTIME: CloneFlags = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);

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
            user_maps: None,
            unshare_after_join: CloneFlags::empty(),
            time_offsets: None,
        };
        let mut have_mount = false;
        let mut join_user = false;
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
                LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
                LinuxNamespaceType::Time => CLONE_NEWTIME,
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
                        join_user |= flag == CloneFlags::CLONE_NEWUSER;
                        n.join.push((fd, flag, p.display().to_string()));
                    }
                }
                None if flag == CloneFlags::CLONE_NEWCGROUP => n.cgroup_ns = true,
                None if flag == CLONE_NEWTIME => {
                    let mut lines = String::new();
                    let offsets = spec
                        .linux()
                        .as_ref()
                        .and_then(|l| l.time_offsets().as_ref());
                    for (clock, o) in offsets.into_iter().flatten() {
                        if clock != "monotonic" && clock != "boottime" {
                            return Err(RuntimeError::InvalidSpec(format!(
                                "timeOffsets: unknown clock {clock:?} (monotonic or boottime)"
                            )));
                        }
                        let (secs, nanos) = (o.secs().unwrap_or(0), o.nanosecs().unwrap_or(0));
                        lines.push_str(&format!("{clock} {secs} {nanos}\n"));
                    }
                    n.time_offsets = Some(crate::rootfs::cstr(lines, "timeOffsets")?);
                }
                None if flag == CloneFlags::CLONE_NEWUSER => {
                    n.clone_flags |= flag;
                    let linux = spec.linux().as_ref();
                    let map = |m: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| {
                        m.into_iter()
                            .flatten()
                            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
                            .collect::<String>()
                    };
                    n.user_maps = Some((
                        map(linux.and_then(|l| l.uid_mappings().as_ref())),
                        map(linux.and_then(|l| l.gid_mappings().as_ref())),
                    ));
                }
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
        // Join the user namespace first (the others may belong to it, and joining it grants
        // the privilege to join them), the mount namespace last: its root replaces ours.
        n.join.sort_by_key(|(_, f, _)| match *f {
            CloneFlags::CLONE_NEWUSER => 0,
            CloneFlags::CLONE_NEWNS => 2,
            _ => 1,
        });
        if join_user {
            if n.clone_flags.contains(CloneFlags::CLONE_NEWPID) {
                return Err(RuntimeError::InvalidSpec(
                    "a new pid namespace inside a user namespace joined by path is not supported"
                        .into(),
                ));
            }
            n.unshare_after_join = n.clone_flags;
            n.clone_flags = CloneFlags::empty();
        }
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
            user_maps: None,
            unshare_after_join: CloneFlags::empty(),
            time_offsets: None,
        };
        for (name, flag) in [
            ("user", CloneFlags::CLONE_NEWUSER),
            ("time", CLONE_NEWTIME),
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
pub(super) struct NsSwitch {
    own: OwnedFd,
    flag: libc::c_int,
}

/// A namespace kind: its name in /proc/PID/ns/ and its clone flag.
pub(super) type NsKind = (&'static str, libc::c_int);
pub(super) const PID_NS: NsKind = ("pid", libc::CLONE_NEWPID);
pub(super) const NET_NS: NsKind = ("net", libc::CLONE_NEWNET);

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

    pub(super) fn enter(target: &OwnedFd, kind: NsKind) -> Result<Self, RuntimeError> {
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

    pub(super) fn leave(self) -> Result<(), Errno> {
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

pub(super) fn loopback_up() -> Result<(), Fail> {
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
