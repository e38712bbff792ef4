//! What the child will do, computed in the parent before the clone: argv/envp and the
//! executable's candidate paths, the process's limits, identity, capabilities and seccomp
//! filter, its stdio, and the bundle of plans the child is handed.

use std::ffi::{CString, c_char};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use oci_spec::runtime::{LinuxPersonalityDomain, Process, Spec};

use super::namespaces::Namespaces;
use crate::RuntimeError;
use crate::caps::{self, CapSets};
use crate::rootfs::{RootfsPlan, cstr};
use crate::seccomp::{self, Compiled};

/// argv/envp and the candidate paths for the executable, all prepared in the parent.
pub(crate) struct ExecPlan {
    pub(super) arg0: String,
    _argv: Vec<CString>,
    pub(super) argv_ptrs: Vec<*const c_char>,
    _envp: Vec<CString>,
    pub(super) envp_ptrs: Vec<*const c_char>,
    /// With `search`, the $PATH candidates in order; else the one path to execute.
    pub(super) candidates: Vec<CString>,
    pub(super) search: bool,
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
}

/// Everything about the process itself (shared by `spawn` and `exec`).
pub(crate) struct ProcPlan {
    pub exec: ExecPlan,
    pub(super) cwd: CString,
    pub(super) rlimits: Vec<(berth_sys::RlimitResource, libc::rlimit, String)>,
    pub(super) no_new_privs: bool,
    pub(super) uid: libc::uid_t,
    pub(super) gid: libc::gid_t,
    pub(super) groups: Vec<libc::gid_t>,
    pub(super) umask: libc::mode_t,
    pub(super) caps: CapSets,
    pub(super) seccomp: Option<Compiled>,
    pub init: bool,
    /// With `init`: what `ps` in the container shows for PID 1.
    pub(super) init_title: Option<ProcessTitle>,
    /// Create a missing working directory (a container's first process, as Docker does);
    /// `exec` leaves it an error.
    pub create_cwd: bool,
    /// OCI create: an `O_PATH` fd of the container's exec FIFO. Once set up, the process
    /// says so on the err socket and waits (opening the FIFO for writing) until `start`
    /// opens it for reading; only then does it exec the user's program.
    pub park: Option<std::os::fd::RawFd>,
    /// `SpawnOptions::preserve_fds`: fds 3 .. 3+N-1 stay open and lose close-on-exec.
    pub preserve_fds: u32,
    /// `linux.personality`: the execution domain (PER_LINUX, PER_LINUX32) to set.
    pub(super) personality: Option<libc::c_ulong>,
}

/// A command line written over the process's own argument strings (what /proc/PID/cmdline
/// reads), for a process that does not exec: `berth-init -- CMD ARGS` as Docker's PID 1
/// shows `/sbin/docker-init -- CMD ARGS`. Cut to the length of the original strings.
pub(super) struct ProcessTitle {
    pub(super) at: usize,
    pub(super) bytes: Vec<u8>,
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
        // (u32)-1 is "leave unchanged" to setresuid/setresgid: such an id would keep the
        // process root. Ids above 2^31-1 are refused, as runc and Docker refuse them.
        let ids = [user.uid(), user.gid()]
            .into_iter()
            .chain(user.additional_gids().iter().flatten().copied());
        for id in ids {
            if id > i32::MAX as u32 {
                return Err(RuntimeError::InvalidSpec(format!(
                    "uid or gid {id} out of range 0-2147483647"
                )));
            }
        }
        let mut groups: Vec<libc::gid_t> = user.additional_gids().clone().unwrap_or_default();
        if groups.is_empty() {
            groups.push(user.gid());
        }
        let caps = caps::from_spec(process.capabilities().as_ref())?;
        let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(s) => Some(seccomp::load_or_compile(s, cache_dir)?),
            None => None,
        };
        let personality = match spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
            Some(p) => {
                if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
                    return Err(RuntimeError::InvalidSpec(
                        "personality flags are not supported".into(),
                    ));
                }
                Some(match p.domain() {
                    LinuxPersonalityDomain::PerLinux => 0x0000,
                    LinuxPersonalityDomain::PerLinux32 => 0x0008,
                })
            }
            None => None,
        };
        Ok(ProcPlan {
            personality,
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
            preserve_fds: 0,
        })
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

/// Opens /dev/null for a missing stdin (in the parent: the child must not allocate or
/// depend on the host's /dev after it changed root).
pub(crate) fn dev_null() -> Result<OwnedFd, RuntimeError> {
    let f = File::open("/dev/null").map_err(|e| RuntimeError::io("open", "/dev/null", e))?;
    Ok(OwnedFd::from(f))
}
