//! `run`, `create`, `start`: the flags of a new container and the run path.

use std::io::IsTerminal;

use clap::Args;

use super::progress::PullPrinter;
use super::{CliResult, Context, Failure, Verb};
use crate::container::ContainerError;
use crate::container::attach::{self, PumpOptions};
use crate::container::create::{self, CreateOptions};
use crate::container::flags::{self, FlagError};
use crate::container::lifecycle::{self, StartOptions};
use crate::container::log_opts::{self, LogConfig, LogOptsError};
use crate::container::store::ContainerStore;
use crate::image::acquire::{self, AcquireError, Progress, PullPolicy};
use crate::image::digest::Digest;
use crate::image::manifest::Platform;
use crate::image::pull::PullStatus;
use crate::image::store::Store;

#[derive(Args, Debug, Clone)]
pub struct CreateFlags {
    /// Print help (-h is --hostname, as in Docker)
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Bind mount a volume
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Mount a tmpfs directory
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Security Options
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    // The numeric flags take a value that starts with '-' (`--pids-limit -1`), as Docker's do;
    // what it means is for `container::flags` (and Docker) to judge.
    /// Memory limit
    #[arg(short, long, allow_negative_numbers = true)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", allow_negative_numbers = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long, allow_negative_numbers = true)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", allow_hyphen_values = true)]
    pub cpu_shares: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight", allow_hyphen_values = true)]
    pub blkio_weight: Option<String>,
    /// Add a host device to the container
    #[arg(long, value_name = "HOST[:CONTAINER][:PERMISSIONS]")]
    pub device: Vec<String>,
    /// Cgroup namespace to use (host|private); default: private on cgroup v2, host on v1
    #[arg(long)]
    pub cgroupns: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Ulimit options
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Connect a container to a network
    #[arg(long, alias = "net", default_value = "bridge")]
    pub network: String,
    /// Publish a container's port(s) to the host
    #[arg(
        short = 'p',
        long = "publish",
        value_name = "[IP:][HOSTPORT:]PORT[/PROTO]"
    )]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long)]
    pub expose: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Set meta data on a container
    #[arg(short, long = "label")]
    pub label: Vec<String>,
    /// Logging driver for the container (json-file or none)
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Log driver options (max-size, max-file, compress)
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(required = true, trailing_var_arg = true, num_args = 1..)]
    pub args: Vec<String>,
}

impl CreateFlags {
    /// The flags' values for `container::flags`, which checks them.
    fn values(&self) -> flags::Flags {
        flags::Flags {
            interactive: self.interactive,
            tty: self.tty,
            rm: self.rm,
            name: self.name.clone(),
            env: self.env.clone(),
            env_file: self.env_file.clone(),
            workdir: self.workdir.clone(),
            user: self.user.clone(),
            entrypoint: self.entrypoint.clone(),
            hostname: self.hostname.clone(),
            volume: self.volume.clone(),
            read_only: self.read_only,
            tmpfs: self.tmpfs.clone(),
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            privileged: self.privileged,
            security_opt: self.security_opt.clone(),
            memory: self.memory.clone(),
            memory_swap: self.memory_swap.clone(),
            cpus: self.cpus.clone(),
            pids_limit: self.pids_limit,
            ulimit: self.ulimit.clone(),
            init: self.init,
            network: self.network.clone(),
            publish: self.publish.clone(),
            publish_all: self.publish_all,
            expose: self.expose.clone(),
            add_host: self.add_host.clone(),
            dns: self.dns.clone(),
            dns_search: self.dns_search.clone(),
            dns_option: self.dns_option.clone(),
            label: self.label.clone(),
            log_driver: self.log_driver.clone(),
            log_opt: self.log_opt.clone(),
            cpu_shares: self.cpu_shares.clone(),
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            blkio_weight: self.blkio_weight.clone(),
            device: self.device.clone(),
            cgroupns: self.cgroupns.clone(),
            args: self.args.clone(),
        }
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    #[command(flatten)]
    pub flags: CreateFlags,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

impl Verb for RunArgs {
    fn run(self, context: &Context) -> CliResult {
        let flags = &self.flags;
        let stdin_tty = std::io::stdin().is_terminal();
        if flags.tty && flags.interactive && !stdin_tty && !self.detach {
            return Err(Failure {
                code: 1,
                message: "the input device is not a TTY".into(),
            });
        }
        let (images, containers) = open_stores(context)?;
        let options = create_options(context, &images, flags, Creating::Run)?;
        let (id, started) = lifecycle::create_and_start(
            &images,
            &containers,
            &options,
            StartOptions {
                foreground: !self.detach,
                console_size: terminal_size(flags.tty),
            },
        )
        .map_err(run_failure)?;
        crate::sys::trace("started");
        if self.detach {
            println!("{id}");
            return Ok(0);
        }
        let code = attach::pump(
            started.stream,
            PumpOptions {
                stdin: flags.interactive,
                tty: flags.tty,
                proxy_signals_to: (!flags.tty).then_some(started.pid),
                detach_keys: flags.tty.then(|| vec![0x10, 0x11]),
            },
        )
        .map_err(Failure::berth)?;
        Ok(code.unwrap_or(125))
    }
}

impl Verb for CreateFlags {
    fn run(self, context: &Context) -> CliResult {
        let (images, containers) = open_stores(context)?;
        let options = create_options(context, &images, &self, Creating::Create)?;
        let created = create::create(&images, &containers, &options).map_err(|e| match e {
            // A daemon's refusal (its message says so): exit 1, as Docker's `create`.
            ContainerError::Device(_) => Failure {
                code: 1,
                message: e.to_string(),
            },
            e => run_failure(e),
        })?;
        println!("{}", created.record.id);
        Ok(0)
    }
}

impl Verb for StartArgs {
    fn run(self, context: &Context) -> CliResult {
        let containers = ContainerStore::open(&context.root).map_err(Failure::berth)?;
        let attach = self.attach || self.interactive;
        if attach && self.containers.len() > 1 {
            return Err(Failure::berth(
                "you cannot start and attach multiple containers at once",
            ));
        }
        let mut failed = None;
        for name in &self.containers {
            let result = containers.find(name).and_then(|dir| {
                let record = dir.record()?;
                let options = StartOptions {
                    foreground: attach,
                    console_size: terminal_size(attach && record.tty),
                };
                lifecycle::start(&context.root, &dir, options).map(|s| (s, record))
            });
            match result {
                Ok((started, record)) if attach => {
                    let code = attach::pump(
                        started.stream,
                        PumpOptions {
                            stdin: self.interactive && record.open_stdin,
                            tty: record.tty,
                            proxy_signals_to: (!record.tty).then_some(started.pid),
                            detach_keys: record.tty.then(|| vec![0x10, 0x11]),
                        },
                    )
                    .map_err(Failure::berth)?;
                    return Ok(code.unwrap_or(125));
                }
                Ok(_) => println!("{name}"),
                // Docker: starting a running container is not an error.
                Err(crate::container::ContainerError::AlreadyRunning(_)) if !attach => {
                    println!("{name}")
                }
                Err(e) => {
                    eprintln!("Error response from daemon: {e}");
                    failed = Some(e.exit_code());
                }
            }
        }
        match failed {
            Some(_) => Err(Failure {
                code: 1,
                message: "Error: failed to start containers: ".to_string()
                    + &self.containers.join(", "),
            }),
            None => Ok(0),
        }
    }
}

/// Our terminal's size, for a container that gets a pty of its own.
fn terminal_size(tty: bool) -> Option<(u16, u16)> {
    use std::os::fd::AsFd;
    if !tty {
        return None;
    }
    let stdin = std::io::stdin();
    crate::container::tty::window_size(stdin.as_fd()).ok()
}

fn open_stores(context: &Context) -> Result<(Store, ContainerStore), Failure> {
    let images = Store::open(&context.root).map_err(Failure::berth)?;
    let containers = ContainerStore::open(&context.root).map_err(Failure::berth)?;
    Ok((images, containers))
}

fn run_failure(e: crate::container::ContainerError) -> Failure {
    Failure {
        code: e.exit_code(),
        message: format!("berth: {e}"),
    }
}

/// Which command is creating the container: Docker words a refusal of its daemon differently
/// for each (`docker: Error response from daemon: …`, 125 for `run`; `Error response from
/// daemon: …`, 1 for `create`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Creating {
    Run,
    Create,
}

/// Turns the flags into `CreateOptions`, then finds the image or pulls it (always, with
/// `--pull always`): the flags are checked first, so a bad value fails before anything is
/// pulled, as with Docker's client.
fn create_options(
    context: &Context,
    images: &Store,
    flags: &CreateFlags,
    creating: Creating,
) -> Result<CreateOptions, Failure> {
    let warn = |warning: &str| eprintln!("WARNING: {warning}");
    let log_default = log_default(context);
    let mut options = flags::create_options(
        flags.values(),
        context.config.bip.clone(),
        &log_default,
        warn,
    )
    .map_err(|e| match e {
        FlagError::LogOpts(e) => log_opts_failure(context, flags, &e, creating),
        // Docker's `create` prints its daemon's refusals as they are and exits 1; the
        // 125/127 mapping is `run`'s alone.
        FlagError::Refused(_) | FlagError::NetworkNotFound(_) if creating == Creating::Create => {
            Failure::daemon(e)
        }
        // Its message says "Error response from daemon" already.
        FlagError::Daemon(_) if creating == Creating::Create => Failure {
            code: 1,
            message: e.to_string(),
        },
        FlagError::NetworkNotFound(_) | FlagError::Refused(_) => {
            Failure::berth(format!("berth: Error response from daemon: {e}"))
        }
        FlagError::Port(_)
        | FlagError::AddHost { .. }
        | FlagError::Dns(_)
        | FlagError::Client(_)
        | FlagError::Daemon(_) => Failure::berth(format!("berth: {e}")),
        FlagError::EnvFile { .. }
        | FlagError::SeccompProfile { .. }
        | FlagError::Invalid { .. }
        | FlagError::SecurityOpt(_) => Failure::berth(e),
    })?;
    options.spec.systemd_cgroup = context.config.cgroup_driver().map_err(|e| {
        Failure::berth(format!(
            "berth: invalid configuration {}: {e}",
            context.config_path.display()
        ))
    })? == crate::config::CgroupDriver::Systemd;
    options.image_id = Some(resolve_image(context, images, &options.image, flags)?);
    Ok(options)
}

/// The configuration's `log-driver` and `log-opts`: new containers' defaults.
fn log_default(context: &Context) -> LogConfig {
    let config = &context.config;
    LogConfig {
        driver: config
            .log_driver
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| log_opts::JSON_FILE.to_string()),
        config: config.log_opts.clone(),
    }
}

/// Docker's words for a refused logging option; one that only the configuration's defaults
/// bring in names the configuration file.
fn log_opts_failure(
    context: &Context,
    flags: &CreateFlags,
    e: &LogOptsError,
    creating: Creating,
) -> Failure {
    // `create` prints a daemon's refusal without `run`'s prefix, and exits 1.
    let (mut message, code) = match (e.from_daemon(), creating) {
        (true, Creating::Create) => (format!("Error response from daemon: {e}"), 1),
        (true, Creating::Run) => (format!("berth: Error response from daemon: {e}"), 125),
        (false, _) => (format!("berth: {e}"), 125),
    };
    let without_defaults = log_opts::resolve(
        flags.log_driver.as_deref(),
        &flags.log_opt,
        &LogConfig::default(),
    );
    if without_defaults.is_ok() {
        message += &format!(
            " (log-driver/log-opts in {})",
            context.config_path.display()
        );
    }
    Failure { code, message }
}

/// The image's ID, found or pulled as `--pull` says; the pull reports on stderr, keeping
/// stdout for the container.
fn resolve_image(
    context: &Context,
    images: &Store,
    image: &str,
    flags: &CreateFlags,
) -> Result<Digest, Failure> {
    let policy: PullPolicy = flags.pull.parse().map_err(Failure::berth)?;
    let platform = Platform::parse_flag(flags.platform.as_deref()).map_err(Failure::berth)?;
    let printer = PullPrinter::with_target(false, std::io::stderr().is_terminal(), true);
    let on_progress = |progress: Progress| match progress {
        Progress::NotFoundLocally(reference) => {
            eprintln!("Unable to find image '{}' locally", reference.familiar())
        }
        Progress::Pull(event) => printer.event(event),
        Progress::Pulled { reference, pulled } => {
            printer.finish();
            printer.line(&format!("Digest: {}", pulled.digest));
            // `--pull always` or a platform mismatch can find the image already there.
            printer.line(&if pulled.status == PullStatus::Downloaded {
                format!(
                    "Status: Downloaded newer image for {}",
                    reference.familiar()
                )
            } else {
                format!("Status: Image is up to date for {}", reference.familiar())
            });
        }
    };
    let acquired = acquire::acquire(
        images,
        &context.config,
        image,
        policy,
        platform.as_ref(),
        &on_progress,
    );
    // A failed pull leaves its bars finished on screen, as a completed one does.
    printer.finish();
    acquired.map_err(|e| match e {
        AcquireError::PlatformMismatch { .. } | AcquireError::NotFound(_) => {
            Failure::berth(format!("berth: Error response from daemon: {e}"))
        }
        AcquireError::Reference(_) | AcquireError::Pull(_) => Failure::berth(format!("berth: {e}")),
        AcquireError::Policy(_) | AcquireError::Lookup(_) | AcquireError::Store(_) => {
            Failure::berth(e)
        }
    })
}
