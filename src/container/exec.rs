//! `exec`: a new process inside a running container — its namespaces, cgroup, user,
//! capabilities and seccomp (unless `--privileged`) — run as a child of the CLI, which pumps its
//! terminal or hands it our stdio directly.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use serde_json::json;

use super::ContainerError;
use super::lifecycle::{current_state, load_spec};
use super::record::Status;
use super::store::ContainerDir;
use super::tty;
use crate::runtime::{SpawnOptions, Stdio};

#[derive(Debug, Default, Clone)]
pub struct ExecOptions {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub privileged: bool,
    pub detach: bool,
}

/// Runs the command; returns its exit code (0 at once with `detach`). `name` is the
/// container as the user gave it (Docker's message for a paused container repeats it).
pub fn exec(
    store_root: &Path,
    dir: &ContainerDir,
    name: &str,
    options: &ExecOptions,
) -> Result<i32, ContainerError> {
    let state = current_state(dir)?;
    match state.status {
        Status::Running => {}
        Status::Paused => return Err(ContainerError::ExecPaused(name.to_string())),
        Status::Created | Status::Exited => {
            return Err(ContainerError::NotRunning(dir.id.clone()));
        }
    }
    let spec = load_spec(dir)?;
    let record = dir.record()?;
    let mut process = serde_json::to_value(
        spec.process()
            .as_ref()
            .ok_or_else(|| ContainerError::InvalidFlag("container spec has no process".into()))?,
    )
    .expect("process serialises");

    let mut env = record.env.clone();
    for e in &options.env {
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    process["args"] = json!(options.args);
    process["env"] = json!(env);
    process["terminal"] = json!(options.tty);
    if let Some(w) = &options.workdir {
        process["cwd"] = json!(w);
    }
    if let Some(user) = &options.user {
        // The container's own /etc/passwd, seen through its root.
        let root = PathBuf::from(format!("/proc/{}/root", state.pid));
        let resolved = super::user::resolve_user(&root, user)?;
        process["user"] = json!({
            "uid": resolved.uid,
            "gid": resolved.gid,
            "additionalGids": resolved.additional_gids,
        });
    }
    let mut spec = spec;
    if options.privileged {
        let all: Vec<String> = caps::read(None, caps::CapSet::Bounding)
            .map(|s| s.iter().map(|c| c.to_string()).collect())
            .unwrap_or_default();
        for set in ["bounding", "effective", "permitted"] {
            process["capabilities"][set] = json!(all);
        }
        if let Some(linux) = spec.linux_mut() {
            linux.set_seccomp(None);
        }
    }
    let process: oci_spec::runtime::Process = serde_json::from_value(process)
        .map_err(|e| ContainerError::InvalidFlag(format!("exec process: {e}")))?;

    let stdio = if options.tty {
        Stdio::Pty
    } else {
        let dup = |fd: BorrowedFd<'_>| {
            fd.try_clone_to_owned()
                .map_err(|source| ContainerError::Io {
                    path: PathBuf::from("/dev/stdin"),
                    source,
                })
        };
        Stdio::Fds {
            stdin: if options.interactive {
                Some(dup(io::stdin().as_fd())?)
            } else {
                None
            },
            stdout: dup(io::stdout().as_fd())?,
            stderr: dup(io::stderr().as_fd())?,
        }
    };
    let spawned = super::store::oci_runtime().load(&dir.id)?.exec(
        &spec,
        &process,
        SpawnOptions {
            stdio,
            cache_dir: store_root.join("cache"),
            init: false,
            prestart: None,
            network_namespace: None,
            cgroup_made_with_namespace: false,
            preserve_fds: 0,
        },
    )?;
    if options.detach {
        return Ok(0);
    }
    if let Some(master) = spawned.pty_master {
        pump_terminal(&master, options.interactive);
    }
    Ok(wait_child(spawned.pid.as_raw()))
}

/// Copies our stdin to the pty and the pty to our stdout until the process's side closes.
fn pump_terminal(master: &OwnedFd, forward_stdin: bool) {
    let stdin = io::stdin();
    let stdin_fd = stdin.as_fd();
    let _raw = (forward_stdin && tty::is_terminal(stdin_fd))
        .then(|| {
            if let Ok(owned) = stdin_fd.try_clone_to_owned() {
                super::attach::restore_terminal_on_signals(&owned);
            }
            tty::RawModeGuard::new(stdin_fd).ok()
        })
        .flatten();
    let winch = if tty::is_terminal(stdin_fd) {
        let _ = tty::copy_window_size(stdin_fd, master.as_fd());
        tty::sigwinch_flag().ok()
    } else {
        None
    };
    let mut buf = [0u8; 32 * 1024];
    let mut stdin_open = forward_stdin;
    loop {
        if let Some(flag) = &winch
            && flag.swap(false, Ordering::Relaxed)
        {
            let _ = tty::copy_window_size(stdin_fd, master.as_fd());
        }
        let mut fds = [
            libc::pollfd {
                fd: master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if stdin_open { stdin_fd.as_raw_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, 200) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if fds[0].revents != 0 {
            match read(master.as_raw_fd(), &mut buf) {
                Some(data) if !data.is_empty() => write_all(1, data),
                // EIO: every process holding the slave has gone.
                _ => return,
            }
        }
        if fds[1].revents != 0 {
            match read(stdin_fd.as_raw_fd(), &mut buf) {
                Some(data) if !data.is_empty() => write_all(master.as_raw_fd(), data),
                _ => stdin_open = false,
            }
        }
    }
}

fn read(fd: i32, buf: &mut [u8]) -> Option<&[u8]> {
    loop {
        // SAFETY: reading into a valid buffer.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Some(&buf[..n as usize]);
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return None;
        }
    }
}

fn write_all(fd: i32, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: writing from a valid buffer.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        data = &data[n as usize..];
    }
}

fn wait_child(pid: i32) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return 126;
        }
    }
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        0
    }
}
