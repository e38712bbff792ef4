//! `create` and `run`. The container's stdio is this process's own (containerd's shim hands
//! it pipes or FIFOs), or with `--console-socket` a new pty whose master is sent over that
//! socket. After `create` exits its container's init belongs to the caller's subreaper.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use nix::sys::wait::{WaitStatus, waitpid};
use oci_spec::runtime::Spec;

use super::{Context, RuncError, write_file_atomic};
use crate::runtime::{SpawnOptions, Spawned, Stdio, load_spec};

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Path to the bundle (config.json and the root file system)
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Unix socket to send the pty master to (for `process.terminal`)
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// File to write the container init's pid to
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Accepted: berth always pivots (pivot_root keeps no path to the host's root)
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Accepted: berth does not create session keyrings
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass N more file descriptors (3 .. 3+N-1) to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    id: String,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    create: CreateArgs,
    /// Detach: return once the container runs
    #[arg(short, long)]
    detach: bool,
}

pub fn create(context: &Context, args: CreateArgs) -> Result<i32, RuncError> {
    let (spec, bundle, opts) = prepare(context, &args)?;
    let (_container, spawned) = context.runtime.create(&args.id, &bundle, &spec, opts)?;
    hand_over(&args, &spawned)?;
    Ok(0)
}

pub fn run(context: &Context, args: RunArgs) -> Result<i32, RuncError> {
    let (spec, bundle, opts) = prepare(context, &args.create)?;
    let (container, spawned) = context.runtime.run(&args.create.id, &bundle, &spec, opts)?;
    hand_over(&args.create, &spawned)?;
    if args.detach {
        return Ok(0);
    }
    let code = wait_exit(&spawned);
    container.delete(true)?;
    Ok(code)
}

/// The exit status of a child, in the shell's terms (128 + signal).
pub(super) fn wait_exit(spawned: &Spawned) -> i32 {
    loop {
        match waitpid(spawned.pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Err(nix::errno::Errno::EINTR) | Ok(_) => {}
            Err(_) => return 255,
        }
    }
}

fn prepare(
    context: &Context,
    args: &CreateArgs,
) -> Result<(Spec, PathBuf, SpawnOptions), RuncError> {
    // First, before this process opens anything that could take a free number among them.
    check_preserved_fds(args.preserve_fds)?;
    let bundle =
        std::path::absolute(&args.bundle).map_err(|e| RuncError::io("resolve", &args.bundle, e))?;
    let mut spec = load_spec(&bundle)?;
    if context.systemd_cgroup {
        systemd_cgroup_path(&mut spec, &args.id)?;
    } else {
        plain_cgroup_path(&mut spec);
    }
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let stdio = match (terminal, &args.console_socket) {
        (true, Some(_)) => Stdio::Pty,
        (true, None) => {
            return Err(RuncError::Usage(
                "cannot allocate tty if runc will detach without setting console socket".into(),
            ));
        }
        (false, Some(_)) => {
            return Err(RuncError::Usage(
                "cannot use console socket if runc will not detach or allocate tty".into(),
            ));
        }
        (false, None) => own_stdio()?,
    };
    let mut opts = SpawnOptions::new(stdio, context.runtime.root().join(".seccomp-cache"));
    opts.preserve_fds = args.preserve_fds;
    Ok((spec, bundle, opts))
}

/// `--preserve-fds N` passes fds 3 .. 3+N-1 on: each must be open (runc's exec fails on a
/// closed one alike), which also keeps every descriptor opened from here on above them.
pub(super) fn check_preserved_fds(n: u32) -> Result<(), RuncError> {
    let last = 3u32
        .checked_add(n)
        .filter(|l| *l <= i32::MAX as u32)
        .ok_or_else(|| RuncError::Usage(format!("--preserve-fds {n} is out of range")))?;
    match (3..last).find(|fd| !crate::sys::syscall::fd_is_open(*fd as i32)) {
        Some(fd) => Err(RuncError::Usage(format!(
            "--preserve-fds {n}: file descriptor {fd} is not open"
        ))),
        None => Ok(()),
    }
}

/// This process's stdin, stdout and stderr, for the container's init.
pub(super) fn own_stdio() -> Result<Stdio, RuncError> {
    let dup = |fd: std::os::fd::BorrowedFd<'_>, name: &str| -> Result<OwnedFd, RuncError> {
        fd.try_clone_to_owned()
            .map_err(|e| RuncError::io("dup", format!("/dev/{name}"), e))
    };
    Ok(Stdio::Fds {
        stdin: Some(dup(std::io::stdin().as_fd(), "stdin")?),
        stdout: dup(std::io::stdout().as_fd(), "stdout")?,
        stderr: dup(std::io::stderr().as_fd(), "stderr")?,
    })
}

/// The pty master to the console socket, the pid to the pid file.
fn hand_over(args: &CreateArgs, spawned: &Spawned) -> Result<(), RuncError> {
    if let (Some(socket), Some(master)) = (&args.console_socket, &spawned.pty_master) {
        send_console(socket, master)?;
    }
    if let Some(path) = &args.pid_file {
        write_file_atomic(path, spawned.pid.as_raw().to_string().as_bytes())?;
    }
    Ok(())
}

/// Sends the pty master over the unix socket at `path` (SCM_RIGHTS), with the terminal's
/// name as the message, as runc does.
pub(super) fn send_console(path: &Path, master: &OwnedFd) -> Result<(), RuncError> {
    let stream = UnixStream::connect(path).map_err(|e| RuncError::io("connect", path, e))?;
    let name = b"/dev/ptmx";
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(name)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| RuncError::io("send the console to", path, e.into()))?;
    Ok(())
}

/// `--systemd-cgroup` takes cgroupsPath as `slice:prefix:name` (runc's checks and defaults:
/// empty is `:runc:<id>`, an empty slice is `system.slice`); the runtime then has systemd make
/// the scope `<prefix>-<name>.scope` in that slice, with the container's init in it
/// (crates/berth-runtime/src/cgroups/systemd.rs).
fn systemd_cgroup_path(spec: &mut Spec, id: &str) -> Result<(), RuncError> {
    let Some(linux) = spec.linux_mut() else {
        return Ok(());
    };
    let given = linux
        .cgroups_path()
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = if given.is_empty() {
        format!(":runc:{id}")
    } else if given.contains('/') || given.split(':').count() != 3 {
        return Err(RuncError::Usage(format!(
            "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {given:?} instead"
        )));
    } else {
        given
    };
    if let Some(Err(e)) = crate::runtime::cgroups::systemd::parse(Path::new(&path)) {
        return Err(RuncError::Usage(e.to_string()));
    }
    linux.set_cgroups_path(Some(PathBuf::from(path)));
    Ok(())
}

/// Without `--systemd-cgroup` a cgroupsPath is a cgroupfs path, as runc reads it, even one
/// that looks like the systemd form (which the runtime would take for a unit): it is made
/// absolute.
fn plain_cgroup_path(spec: &mut Spec) {
    let Some(linux) = spec.linux_mut() else {
        return;
    };
    if let Some(path) = linux.cgroups_path().clone()
        && crate::runtime::cgroups::systemd::parse(&path).is_some()
    {
        linux.set_cgroups_path(Some(Path::new("/").join(path)));
    }
}
