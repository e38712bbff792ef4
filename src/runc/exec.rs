//! `exec`: a new process in a running container, described by `--process FILE` (an OCI
//! `process` object) or by the arguments on top of the container's own process settings.

use std::path::PathBuf;

use oci_spec::runtime::Process;

use super::create::{check_preserved_fds, own_stdio, send_console, wait_exit};
use super::{Context, RuncError, write_file_atomic};
use crate::runtime::{SpawnOptions, Status, Stdio, load_spec};

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// JSON file holding the process (instead of the arguments)
    #[arg(short, long)]
    process: Option<PathBuf>,
    /// Allocate a pty (its master goes to --console-socket)
    #[arg(short, long)]
    tty: bool,
    /// Unix socket to send the pty master to
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// File to write the process's pid to
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Return once the process runs
    #[arg(short, long)]
    detach: bool,
    /// Working directory in the container
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// KEY=VALUE to add to the environment
    #[arg(short, long)]
    env: Vec<String>,
    /// UID[:GID] to run as
    #[arg(short, long)]
    user: Option<String>,
    /// Additional groups
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// Capabilities to add
    #[arg(short, long)]
    cap: Vec<String>,
    /// Set no_new_privileges
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// Pass N more file descriptors to the process
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn exec(context: &Context, args: ExecArgs) -> Result<i32, RuncError> {
    check_preserved_fds(args.preserve_fds)?;
    let container = context.load(&args.id)?;
    container.expect_status("exec in", &[Status::Created, Status::Running])?;
    let spec = load_spec(container.bundle())?;
    let process = match &args.process {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| RuncError::io("read", path, e))?;
            serde_json::from_str::<Process>(&text)
                .map_err(|e| RuncError::Usage(format!("parsing process {}: {e}", path.display())))?
        }
        None => from_args(spec.process().clone().unwrap_or_default(), &args)?,
    };
    let terminal = process.terminal().unwrap_or(false);
    let stdio = match (terminal, &args.console_socket) {
        (true, Some(_)) => Stdio::Pty,
        (true, None) => {
            return Err(RuncError::Usage(
                "cannot allocate tty without --console-socket".into(),
            ));
        }
        (false, _) => own_stdio()?,
    };
    let mut opts = SpawnOptions::new(stdio, context.runtime.root().join(".seccomp-cache"));
    opts.preserve_fds = args.preserve_fds;
    let spawned = container.exec(&spec, &process, opts)?;
    if let (Some(socket), Some(master)) = (&args.console_socket, &spawned.pty_master) {
        send_console(socket, master)?;
    }
    if let Some(path) = &args.pid_file {
        write_file_atomic(path, spawned.pid.as_raw().to_string().as_bytes())?;
    }
    if args.detach {
        return Ok(0);
    }
    Ok(wait_exit(&spawned))
}

/// The container's process settings with the command line's changes.
fn from_args(mut p: Process, args: &ExecArgs) -> Result<Process, RuncError> {
    if args.args.is_empty() {
        return Err(RuncError::Usage(
            "exec: the process (--process FILE) or its arguments are required".into(),
        ));
    }
    p.set_args(Some(args.args.clone()));
    p.set_terminal(Some(args.tty));
    if let Some(cwd) = &args.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(args.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(user) = &args.user {
        let (uid, gid) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        let id = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| RuncError::Usage(format!("invalid user {user:?}: uid[:gid] expected")))
        };
        let mut u = p.user().clone();
        u.set_uid(id(uid)?);
        u.set_gid(gid.map(id).transpose()?.unwrap_or(0));
        p.set_user(u);
    }
    if !args.additional_gids.is_empty() {
        let mut u = p.user().clone();
        u.set_additional_gids(Some(args.additional_gids.clone()));
        p.set_user(u);
    }
    if !args.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &args.cap {
            let cap: oci_spec::runtime::Capability = name
                .parse()
                .map_err(|_| RuncError::Usage(format!("unknown capability {name:?}")))?;
            let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
        }
        p.set_capabilities(Some(caps));
    }
    if args.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}
