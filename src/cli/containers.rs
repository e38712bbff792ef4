//! Commands on existing containers: `ps`/`container ls`, `logs`, `stop`, `restart`, `kill`,
//! `wait`, `pause`, `unpause`, `rename`, `top`, `attach`, `exec`, `rm`, `container prune`.

use std::io::Write;
use std::time::Duration;

use clap::Args;

use super::format::{ellipsis, human_duration, human_size, seconds_since, table, table_min_width};
use super::template::{self, Format};
use super::{CliResult, Context, Failure, Verb};
use crate::container::ContainerError;
use crate::container::attach::{self, PumpOptions};
use crate::container::exec::{self, ExecOptions};
use crate::container::filter::PruneFilters;
use crate::container::flags::{FlagError, UpdateFlags, update_options};
use crate::container::lifecycle::{self, current_state};
use crate::container::list::{self, Listed, Pruned, Selection};
use crate::container::logs::{self, LogOptions};
use crate::container::ops;
use crate::container::record::{State, Status};
use crate::container::store::{ContainerDir, ContainerStore};
use crate::container::top;
use crate::container::update;

/// Runs `op` on every named container, printing each name on success (Docker's way), each
/// error on stderr, and failing with exit 1 if any failed.
fn each(
    store: &ContainerStore,
    names: &[String],
    mut op: impl FnMut(&ContainerDir) -> Result<Option<String>, ContainerError>,
) -> CliResult {
    let mut failed = false;
    for name in names {
        match store
            .find(name)
            .and_then(|dir| op(&dir))
            .map_err(|e| as_named(e, name))
        {
            Ok(Some(line)) => println!("{line}"),
            Ok(None) => println!("{name}"),
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// A container found and then removed by another command before this one got to it is "No
/// such container" under the name the user gave.
fn as_named(e: ContainerError, name: &str) -> ContainerError {
    match e {
        ContainerError::NotFound(_) => ContainerError::NotFound(name.to_string()),
        e => e,
    }
}

// ---- ps ----

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    pub latest: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last")]
    pub last: Option<usize>,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Filter output based on conditions provided
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
}

pub(crate) fn status_text(state: &State) -> String {
    match state.status {
        Status::Created => "Created".into(),
        Status::Running => format!(
            "Up {}",
            human_duration(seconds_since(state.started_at.as_deref().unwrap_or("")))
        ),
        Status::Paused => format!(
            "Up {} (Paused)",
            human_duration(seconds_since(state.started_at.as_deref().unwrap_or("")))
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            state.exit_code.unwrap_or(0),
            human_duration(seconds_since(state.finished_at.as_deref().unwrap_or("")))
        ),
    }
}

/// Docker's COMMAND: arguments with spaces in single quotes, joined by spaces.
pub(crate) fn command_text(path: &str, args: &[String]) -> String {
    let mut cmd = path.to_string();
    for a in args {
        cmd.push(' ');
        if a.contains(' ') {
            cmd.push('\'');
            cmd.push_str(a);
            cmd.push('\'');
        } else {
            cmd.push_str(a);
        }
    }
    cmd
}

/// Go's `strconv.Quote` for the characters commands contain.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Verb for PsArgs {
    fn run(self, context: &Context) -> CliResult {
        let filters = self
            .filter
            .iter()
            .map(|f| f.parse())
            .collect::<Result<_, _>>()
            .map_err(Failure::berth)?;
        let store = context.containers()?;
        let selection = Selection {
            all: self.all,
            latest: self.latest,
            last: self.last,
            filters,
        };
        let rows = list::select(&store, &selection).map_err(Failure::berth)?;
        if self.quiet {
            // One write: stdout is line-buffered, a line each would be a write each.
            let mut out = String::with_capacity(rows.len() * 65);
            for row in &rows {
                out.push_str(&ps_id(row, self.no_trunc));
                out.push('\n');
            }
            super::print(&out);
            return Ok(0);
        }
        if let Some(format) = &self.format {
            let format = Format::parse(format).map_err(Failure::berth)?;
            let values: Vec<_> = rows
                .iter()
                .map(|row| {
                    let fields: serde_json::Map<String, serde_json::Value> =
                        ps_fields(row, self.no_trunc)
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v)))
                            .collect();
                    template::from_json(&serde_json::Value::Object(fields))
                })
                .collect();
            let out = format.render(&values, PS_HEADERS).map_err(Failure::berth)?;
            print!("{out}");
            return Ok(0);
        }
        let mut table_rows = vec![vec![
            "CONTAINER ID".to_string(),
            "IMAGE".into(),
            "COMMAND".into(),
            "CREATED".into(),
            "STATUS".into(),
            "PORTS".into(),
            "NAMES".into(),
        ]];
        if self.size {
            table_rows[0].push("SIZE".into());
        }
        for row in &rows {
            let mut cells = ps_cells(row, self.no_trunc);
            if self.size {
                cells.push(human_size(row.size(), 3));
            }
            table_rows.push(cells);
        }
        super::print(&table(&table_rows));
        Ok(0)
    }
}

fn ps_fields(row: &Listed, no_trunc: bool) -> std::collections::BTreeMap<&'static str, String> {
    let mut f = std::collections::BTreeMap::new();
    f.insert("ID", ps_id(row, no_trunc));
    f.insert("Image", row.record.image.clone());
    f.insert("Command", ps_command(row, no_trunc));
    f.insert("CreatedAt", row.record.created.clone());
    f.insert("RunningFor", ps_running_for(row));
    f.insert("Status", status_text(&row.state));
    f.insert("State", row.state.status.as_str().to_string());
    f.insert("Names", row.record.name.clone());
    f.insert("Ports", ps_port_text(row));
    f.insert(
        "Labels",
        row.record
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    );
    f
}

/// The cells of `ps`'s default table for one row: the columns of [`ps_fields`] it shows,
/// made directly (a thousand rows are a thousand maps otherwise).
fn ps_cells(row: &Listed, no_trunc: bool) -> Vec<String> {
    vec![
        ps_id(row, no_trunc),
        row.record.image.clone(),
        ps_command(row, no_trunc),
        ps_running_for(row) + " ago",
        status_text(&row.state),
        ps_port_text(row),
        row.record.name.clone(),
    ]
}

fn ps_id(row: &Listed, no_trunc: bool) -> String {
    if no_trunc {
        row.record.id.clone()
    } else {
        row.record.id[..12].to_string()
    }
}

fn ps_command(row: &Listed, no_trunc: bool) -> String {
    let cmd = command_text(&row.record.path, &row.record.args);
    go_quote(&if no_trunc { cmd } else { ellipsis(&cmd, 20) })
}

fn ps_running_for(row: &Listed) -> String {
    human_duration(seconds_since(&row.record.created))
}

/// Only a running container has a network endpoint to read.
fn ps_port_text(row: &Listed) -> String {
    if row.state.status.is_running() {
        super::network::ps_ports(&row.record.id, &row.record.net.exposed)
    } else {
        String::new()
    }
}

/// Column headers of `ps --format 'table …'`, as Docker names them.
const PS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Status", "STATUS"),
    ("State", "STATE"),
    ("Ports", "PORTS"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
];

// ---- logs ----

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show logs since timestamp or relative (e.g. 42m)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative (e.g. 42m)
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

impl Verb for LogsArgs {
    fn run(self, context: &Context) -> CliResult {
        let store = context.containers()?;
        let dir = store.find(&self.container).map_err(Failure::daemon)?;
        let tail = match self.tail.as_str() {
            "all" | "-1" => None,
            n => Some(
                n.parse()
                    .map_err(|_| Failure::berth(format!("invalid value for --tail: {n}")))?,
            ),
        };
        let bound = |v: &Option<String>, flag: &str| -> Result<Option<i64>, Failure> {
            v.as_deref()
                .map(|s| {
                    logs::parse_time_bound(s)
                        .ok_or_else(|| Failure::berth(format!("invalid value for {flag}: {s}")))
                })
                .transpose()
        };
        let options = LogOptions {
            follow: self.follow,
            timestamps: self.timestamps,
            tail,
            since: bound(&self.since, "--since")?,
            until: bound(&self.until, "--until")?,
        };
        let stdout = std::io::stdout();
        let stderr = std::io::stderr();
        logs::write_logs(&dir, &options, &mut stdout.lock(), &mut stderr.lock())
            .map_err(Failure::daemon)?;
        Ok(0)
    }
}

// ---- stop / restart / kill / wait / pause / rename / rm ----

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait for stop before killing it
    #[arg(short, long, default_value_t = 10)]
    pub time: u64,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

impl Verb for StopArgs {
    fn run(self, context: &Context) -> CliResult {
        let store = context.containers()?;
        each(&store, &self.containers, |dir| {
            ops::stop(dir, Duration::from_secs(self.time)).map(|_| None)
        })
    }
}

// `restart` takes `stop`'s flags. (A `///` comment here would replace the verb's help line.)
#[derive(Args, Debug)]
pub struct RestartArgs {
    #[command(flatten)]
    pub stop: StopArgs,
}

impl Verb for RestartArgs {
    fn run(self, context: &Context) -> CliResult {
        let store = context.containers()?;
        each(&store, &self.stop.containers, |dir| {
            ops::stop(dir, Duration::from_secs(self.stop.time))?;
            lifecycle::start(&context.root, dir, Default::default()).map(|_| None)
        })
    }
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

impl Verb for KillArgs {
    fn run(self, context: &Context) -> CliResult {
        let store = context.containers()?;
        let signal = ops::parse_signal(&self.signal).map_err(Failure::daemon)?;
        each(&store, &self.containers, |dir| {
            ops::kill(dir, signal).map(|_| None)
        })
    }
}

#[derive(Args, Debug)]
pub struct WaitArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

impl Verb for WaitArgs {
    fn run(self, context: &Context) -> CliResult {
        let store = context.containers()?;
        each(&store, &self.containers, |dir| {
            ops::wait(dir).map(|code| Some(code.to_string()))
        })
    }
}

#[derive(Args, Debug)]
pub struct PauseArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

impl Verb for PauseArgs {
    fn run(self, context: &Context) -> CliResult {
        pause(context, &self.containers, true)
    }
}

#[derive(Args, Debug)]
pub struct UnpauseArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

impl Verb for UnpauseArgs {
    fn run(self, context: &Context) -> CliResult {
        pause(context, &self.containers, false)
    }
}

fn pause(context: &Context, containers: &[String], frozen: bool) -> CliResult {
    let store = context.containers()?;
    each(&store, containers, |dir| {
        ops::pause(dir, frozen).map(|_| None)
    })
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

impl Verb for RenameArgs {
    fn run(self, context: &Context) -> CliResult {
        let store = context.containers()?;
        let dir = store.find(&self.container).map_err(Failure::daemon)?;
        ops::rename(&store, &dir, &self.new_name)
            .map_err(|e| Failure::daemon(as_named(e, &self.container)))?;
        Ok(0)
    }
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    /// Remove the specified link
    #[arg(short, long)]
    pub link: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

impl Verb for RmArgs {
    fn run(self, context: &Context) -> CliResult {
        if self.link {
            return Err(Failure::daemon(
                "berth has no legacy container links, so there is no link to remove",
            ));
        }
        let store = context.containers()?;
        each(&store, &self.containers, |dir| {
            let kept = ops::remove(&context.root, dir, self.force, self.volumes)?;
            // The container is gone: a volume that stayed is a warning (Docker's daemon logs
            // it), not a failed removal.
            for e in kept {
                eprintln!("WARNING: {e}");
            }
            Ok(None)
        })
    }
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. 'until=<timestamp>', 'label=<key>=<value>')
    #[arg(long)]
    pub filter: Vec<String>,
}

impl Verb for PruneArgs {
    fn run(self, context: &Context) -> CliResult {
        if !self.force
            && !confirm(
                "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ",
            )
        {
            return Ok(0);
        }
        let store = context.containers()?;
        let filters = PruneFilters::parse(&self.filter).map_err(Failure::berth)?;
        let Pruned {
            deleted,
            reclaimed,
            failed,
        } = list::prune(&context.root, &store, &filters).map_err(Failure::berth)?;
        if !deleted.is_empty() {
            println!("Deleted Containers:");
            for id in &deleted {
                println!("{id}");
            }
            println!();
        }
        println!("Total reclaimed space: {}", human_size(reclaimed, 3));
        for e in &failed {
            eprintln!("Error response from daemon: {e}");
        }
        Ok(if failed.is_empty() { 0 } else { 1 })
    }
}

fn confirm(prompt: &str) -> bool {
    print!("{prompt}");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes" | "YES")
}

// ---- top ----

#[derive(Args, Debug)]
pub struct TopArgs {
    pub container: String,
    /// ps options
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

impl Verb for TopArgs {
    fn run(self, context: &Context) -> CliResult {
        let store = context.containers()?;
        let dir = store.find(&self.container).map_err(Failure::daemon)?;
        let rows = top::top(&dir, &self.ps_args).map_err(Failure::daemon)?;
        // Docker's client lays `top` out with a minimum column width of 20.
        print!("{}", table_min_width(&rows, 20));
        Ok(0)
    }
}

// ---- update ----

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight", allow_hyphen_values = true)]
    pub blkio_weight: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", allow_hyphen_values = true)]
    pub cpu_shares: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

impl Verb for UpdateArgs {
    fn run(self, context: &Context) -> CliResult {
        let flags = UpdateFlags {
            memory: self.memory,
            memory_swap: self.memory_swap,
            cpus: self.cpus,
            cpu_shares: self.cpu_shares,
            cpuset_cpus: self.cpuset_cpus,
            cpuset_mems: self.cpuset_mems,
            blkio_weight: self.blkio_weight,
            pids_limit: self.pids_limit,
        };
        let given = flags.memory.is_some()
            || flags.memory_swap.is_some()
            || flags.cpus.is_some()
            || flags.cpu_shares.is_some()
            || flags.cpuset_cpus.is_some()
            || flags.cpuset_mems.is_some()
            || flags.blkio_weight.is_some()
            || flags.pids_limit.is_some();
        if !given {
            return Err(Failure::client(
                "you must provide one or more flags when using this command",
            ));
        }
        // Docker's client prints the daemon's warnings on stderr as they are.
        let options = update_options(&flags, |w| eprintln!("{w}")).map_err(|e| match e {
            FlagError::Invalid { .. } => Failure::berth(e),
            _ => Failure::daemon(
                e.to_string()
                    .trim_start_matches("Error response from daemon: "),
            ),
        })?;
        let store = context.containers()?;
        each(&store, &self.containers, |dir| {
            update::update(&store, dir, &options).map(|_| None)
        })
    }
}

// ---- attach / exec ----

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", default_value = "true", action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: String,
    pub container: String,
}

impl Verb for AttachArgs {
    fn run(self, context: &Context) -> CliResult {
        let store = context.containers()?;
        let dir = store.find(&self.container).map_err(Failure::daemon)?;
        let record = dir.record().map_err(Failure::daemon)?;
        let state = current_state(&dir).map_err(Failure::daemon)?;
        if state.status != Status::Running {
            return Err(Failure::daemon(
                "You cannot attach to a stopped container, start it first",
            ));
        }
        let detach_keys = attach::parse_detach_keys(&self.detach_keys).map_err(Failure::berth)?;
        let stream = std::os::unix::net::UnixStream::connect(dir.attach_socket())
            .map_err(|e| Failure::daemon(format!("attach to {}: {e}", record.name)))?;
        let code = attach::pump(
            stream,
            PumpOptions {
                stdin: !self.no_stdin && record.open_stdin,
                tty: record.tty,
                proxy_signals_to: (self.sig_proxy && !record.tty).then_some(state.pid),
                detach_keys: Some(detach_keys),
            },
        )
        .map_err(Failure::berth)?;
        match code {
            Some(code) => Ok(code),
            // Detached with the key sequence: the container keeps running; Docker says so and
            // exits 1.
            None => Err(Failure {
                code: 1,
                message: "read escape sequence".into(),
            }),
        }
    }
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    pub container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

impl Verb for ExecArgs {
    fn run(self, context: &Context) -> CliResult {
        let store = context.containers()?;
        let dir = store.find(&self.container).map_err(Failure::daemon)?;
        let options = ExecOptions {
            args: self.command,
            env: self.env,
            workdir: self.workdir,
            user: self.user,
            tty: self.tty,
            interactive: self.interactive,
            privileged: self.privileged,
            detach: self.detach,
        };
        match exec::exec(&context.root, &dir, &self.container, &options) {
            Ok(code) => Ok(code),
            Err(e @ (ContainerError::NotRunning(_) | ContainerError::ExecPaused(_))) => {
                Err(Failure::daemon(e))
            }
            // Docker: a user exec cannot run as is the runtime's refusal to invoke, 126.
            Err(e @ ContainerError::User(_)) => Err(Failure {
                code: 126,
                message: format!("OCI runtime exec failed: {e}"),
            }),
            Err(e) => Err(Failure {
                code: e.exit_code(),
                message: format!("OCI runtime exec failed: {e}"),
            }),
        }
    }
}
