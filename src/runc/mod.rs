//! `berth-runc`: the berth binary under that name speaks runc's command line, so that
//! containerd (`io.containerd.runc.v2` with `BinaryName`), `ctr run --runc-binary`, dockerd
//! (`--add-runtime`) and Kubernetes (a RuntimeClass handler) start containers through
//! berth's runtime library. Parses and prints; the operations are `berth_runtime`'s.
//! Errors go to `--log` (text or JSON lines, as runc's logrus writes them; stderr without
//! `--log`) and exit 1, as runc's do.

mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod log;
mod pause;
mod ps;
mod spec;
mod state;
mod update;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::runtime::{Container, Runtime, RuntimeError};

pub use crate::runtime::OCI_VERSION;

/// Where runc keeps its state by default is /run/runc; berth-runc keeps its own.
const DEFAULT_ROOT: &str = "/run/berth-runc";

#[derive(Parser, Debug)]
#[command(
    name = "berth-runc",
    about = "berth's OCI runtime, with runc's command line",
    disable_version_flag = true
)]
struct Cli {
    /// Root directory for storage of container state
    #[arg(long, default_value = DEFAULT_ROOT)]
    root: PathBuf,
    /// Log file to write errors to (stderr without it)
    #[arg(long)]
    log: Option<PathBuf>,
    /// Log format: text or json
    #[arg(long = "log-format", default_value = "text")]
    log_format: log::Format,
    /// Also log debug messages
    #[arg(long)]
    debug: bool,
    /// Use systemd's cgroup path syntax (slice:prefix:name) for cgroupsPath
    #[arg(long = "systemd-cgroup")]
    systemd_cgroup: bool,
    /// Path to criu (accepted; checkpoint/restore is not supported)
    #[arg(long)]
    criu: Option<PathBuf>,
    /// Rootless mode: true, false or auto (on a root host, auto and false behave alike)
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    /// Print the version
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a container, its process parked before the user's program
    Create(create::CreateArgs),
    /// Start the user's program of a created container
    Start(IdArg),
    /// Output the state of a container
    State(IdArg),
    /// Send a signal to the container's init (or to all its processes)
    Kill(kill::KillArgs),
    /// Delete a stopped container (or any, with --force)
    Delete(delete::DeleteArgs),
    /// Create and start a container
    Run(create::RunArgs),
    /// Execute a new process inside a container
    Exec(exec::ExecArgs),
    /// List the processes of a container
    Ps(ps::PsArgs),
    /// List containers
    #[command(alias = "ls")]
    List(list::ListArgs),
    /// Freeze every process of a container
    Pause(IdArg),
    /// Thaw a paused container
    Resume(IdArg),
    /// Change a container's resource limits
    Update(update::UpdateArgs),
    /// Display the container's resource usage and OOM notifications
    Events(events::EventsArgs),
    /// Show what this runtime supports
    Features,
    /// Write a new config.json
    Spec(spec::SpecArgs),
}

#[derive(clap::Args, Debug)]
struct IdArg {
    id: String,
}

/// Everything a verb needs from the global flags.
struct Context {
    runtime: Runtime,
    systemd_cgroup: bool,
}

impl Context {
    fn load(&self, id: &str) -> Result<Container, RuncError> {
        Ok(self.runtime.load(id)?)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuncError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
}

impl RuncError {
    fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RuncError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Whether the binary was started under runc's name.
pub fn invoked_as_runc(argv0: &std::ffi::OsStr) -> bool {
    std::path::Path::new(argv0)
        .file_name()
        .is_some_and(|n| n.to_string_lossy().ends_with("runc"))
}

/// Runs the command line; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let logger = log::Logger::new(cli.log.clone(), cli.log_format, cli.debug);
    if cli.version {
        println!(
            "berth-runc version {}\nspec: {OCI_VERSION}",
            env!("CARGO_PKG_VERSION")
        );
        return 0;
    }
    let Some(command) = cli.command else {
        logger.error("no command given: see berth-runc --help");
        return 1;
    };
    if cli.criu.is_some() {
        logger.debug("--criu is accepted but checkpoint/restore is not supported");
    }
    if cli.rootless.as_deref() == Some("true") && !nix::unistd::geteuid().is_root() {
        logger.error("rootless containers are not supported yet");
        return 1;
    }
    let context = Context {
        runtime: Runtime::new(&cli.root),
        systemd_cgroup: cli.systemd_cgroup,
    };
    logger.debug(&format!("{command:?}"));
    let result = match command {
        Command::Create(a) => create::create(&context, a),
        Command::Start(a) => context.load(&a.id).and_then(|c| Ok(c.start()?)).map(|()| 0),
        Command::State(a) => state::state(&context, &a.id),
        Command::Kill(a) => kill::kill(&context, a),
        Command::Delete(a) => delete::delete(&context, a),
        Command::Run(a) => create::run(&context, a),
        Command::Exec(a) => exec::exec(&context, a),
        Command::Ps(a) => ps::ps(&context, a),
        Command::List(a) => list::list(&context, a),
        Command::Pause(a) => pause::pause(&context, &a.id, true),
        Command::Resume(a) => pause::pause(&context, &a.id, false),
        Command::Update(a) => update::update(&context, a),
        Command::Events(a) => events::events(&context, a),
        Command::Features => features::features(),
        Command::Spec(a) => spec::spec(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            logger.error(&e.to_string());
            1
        }
    }
}

/// `data` to `path`, whole or not at all (pid files are read by containerd's shim).
fn write_file_atomic(path: &std::path::Path, data: &[u8]) -> Result<(), RuncError> {
    crate::sys::replace_file(path, data, 0o644).map_err(|e| RuncError::io("write", path, e))
}
