//! `run`, `create`, `start`: the flags of a new container and the run path.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use clap::Args;

use super::progress::PullPrinter;
use super::{CliResult, Context, Failure, Verb};
use crate::container::attach::{self, PumpOptions};
use crate::container::create::{self, CreateOptions};
use crate::container::lifecycle::{self, StartOptions};
use crate::container::spec::{SpecOptions, Ulimit};
use crate::container::store::ContainerStore;
use crate::image::acquire::{self, AcquireError, Progress, PullPolicy};
use crate::image::digest::Digest;
use crate::image::manifest::Platform;
use crate::image::pull::PullStatus;
use crate::image::store::Store;
use crate::network::{DnsOptions, NetworkOptions, dns, ports};

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
    /// Memory limit
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit")]
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
    /// IMAGE [COMMAND] [ARG...]
    #[arg(required = true, trailing_var_arg = true, num_args = 1..)]
    pub args: Vec<String>,
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
        let options = create_options(context, &images, flags)?;
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
        let options = create_options(context, &images, &self)?;
        let created = create::create(&images, &containers, &options).map_err(run_failure)?;
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
    containers.sweep();
    Ok((images, containers))
}

fn run_failure(e: crate::container::ContainerError) -> Failure {
    Failure {
        code: e.exit_code(),
        message: format!("berth: {e}"),
    }
}

fn flag_error(flag: &str, value: &str, why: impl std::fmt::Display) -> Failure {
    Failure::berth(format!(
        "invalid argument \"{value}\" for \"{flag}\" flag: {why}"
    ))
}

/// Turns the flags into `CreateOptions`, pulling the image when it is missing (or always,
/// with `--pull always`) once the flags have been checked: as with Docker's client, a bad
/// flag value fails before anything is pulled.
fn create_options(
    context: &Context,
    images: &Store,
    flags: &CreateFlags,
) -> Result<CreateOptions, Failure> {
    let image = flags.args[0].clone();
    let command = flags.args[1..].to_vec();

    let mut env = Vec::new();
    for file in &flags.env_file {
        let text = std::fs::read_to_string(file).map_err(|e| {
            Failure::berth(match e.kind() {
                std::io::ErrorKind::NotFound => format!("open {file}: no such file or directory"),
                std::io::ErrorKind::IsADirectory => {
                    format!("invalid env file ({file}): read {file}: is a directory")
                }
                _ => format!("invalid env file ({file}): {e}"),
            })
        })?;
        env.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    env.extend(flags.env.iter().cloned());

    let mut spec = SpecOptions {
        memory: flags
            .memory
            .as_deref()
            .map(|m| parse_bytes(m).map_err(|e| flag_error("-m, --memory", m, e)))
            .transpose()?,
        memory_swap: flags
            .memory_swap
            .as_deref()
            .map(|m| {
                if m == "-1" {
                    Ok(-1)
                } else {
                    parse_bytes(m).map_err(|e| flag_error("--memory-swap", m, e))
                }
            })
            .transpose()?,
        nano_cpus: flags
            .cpus
            .as_deref()
            .map(|c| {
                c.parse::<f64>()
                    .ok()
                    .filter(|v| *v > 0.0 && v.is_finite())
                    .map(|v| (v * 1e9) as i64)
                    .ok_or_else(|| flag_error("--cpus", c, "failed to parse as a rational number"))
            })
            .transpose()?,
        pids_limit: flags.pids_limit.filter(|p| *p > 0),
        cap_add: flags.cap_add.clone(),
        cap_drop: flags.cap_drop.clone(),
        privileged: flags.privileged,
        read_only: flags.read_only,
        ..SpecOptions::default()
    };
    for u in &flags.ulimit {
        spec.ulimits
            .push(parse_ulimit(u).map_err(|e| flag_error("--ulimit", u, e))?);
    }
    for t in &flags.tmpfs {
        let (path, opts) = t.split_once(':').unwrap_or((t, ""));
        if !path.starts_with('/') {
            return Err(flag_error("--tmpfs", t, "mount path must be absolute"));
        }
        spec.tmpfs.push((path.to_string(), opts.to_string()));
    }
    for opt in &flags.security_opt {
        let (key, value) = opt
            .split_once(['=', ':'])
            .map(|(k, v)| (k, Some(v)))
            .unwrap_or((opt.as_str(), None));
        match (key, value) {
            ("no-new-privileges", None | Some("true")) => spec.no_new_privileges = true,
            ("no-new-privileges", Some("false")) => spec.no_new_privileges = false,
            ("seccomp", Some("unconfined")) => spec.seccomp = Some(None),
            ("seccomp", Some(file)) => {
                let profile = std::fs::read_to_string(file).map_err(|e| {
                    Failure::berth(format!("opening seccomp profile ({file}) failed: {e}"))
                })?;
                spec.seccomp = Some(Some(profile));
            }
            _ => {
                return Err(Failure::berth(format!("Invalid --security-opt: \"{opt}\"")));
            }
        }
    }
    let network = match flags.network.as_str() {
        "none" | "host" | "bridge" => flags.network.clone(),
        "default" => "bridge".to_string(),
        other => {
            return Err(Failure::berth(format!(
                "berth: Error response from daemon: network {other} not found"
            )));
        }
    };
    let net = network_options(context, flags)?;
    let mut labels = BTreeMap::new();
    for l in &flags.label {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let image_id = resolve_image(context, images, &image, flags)?;
    Ok(CreateOptions {
        id: None,
        image,
        image_id: Some(image_id),
        name: flags.name.clone(),
        command,
        entrypoint: flags.entrypoint.clone(),
        env,
        working_dir: flags.workdir.clone(),
        user: flags.user.clone(),
        hostname: flags.hostname.clone(),
        volumes: flags.volume.clone(),
        tty: flags.tty,
        interactive: flags.interactive,
        auto_remove: flags.rm,
        network,
        net,
        init: flags.init,
        labels,
        spec,
    })
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

/// `-p`, `-P`, `--expose`, `--add-host`, `--dns*` → the record's network options.
fn network_options(context: &Context, flags: &CreateFlags) -> Result<NetworkOptions, Failure> {
    let mut publish = Vec::new();
    for p in &flags.publish {
        publish.extend(ports::parse_publish(p).map_err(|e| Failure::berth(format!("berth: {e}")))?);
    }
    if !publish.is_empty() && flags.network == "host" {
        eprintln!("WARNING: Published ports are discarded when using host network mode");
    }
    let mut exposed = Vec::new();
    for e in &flags.expose {
        for (port, proto) in
            ports::parse_expose(e).map_err(|e| Failure::berth(format!("berth: {e}")))?
        {
            let key = format!("{port}/{proto}");
            if !exposed.contains(&key) {
                exposed.push(key);
            }
        }
    }
    for h in &flags.add_host {
        if dns::parse_add_host(h).is_none() {
            return Err(Failure::berth(format!(
                "berth: invalid argument \"{h}\" for \"--add-host\" flag: invalid IP address in add-host: \"{}\"",
                h.split_once(':').map(|x| x.1).unwrap_or("")
            )));
        }
    }
    for d in &flags.dns {
        if d.parse::<std::net::IpAddr>().is_err() {
            return Err(Failure::berth(format!(
                "berth: invalid argument \"{d}\" for \"--dns\" flag: {d} is not an ip address"
            )));
        }
    }
    Ok(NetworkOptions {
        publish,
        publish_all: flags.publish_all,
        exposed,
        dns: DnsOptions {
            add_hosts: flags.add_host.clone(),
            servers: flags.dns.clone(),
            search: flags.dns_search.clone(),
            options: flags.dns_option.clone(),
        },
        bip: context.config.bip.clone(),
    })
}

/// Docker's `RAMInBytes`: a number with an optional b/k/m/g/t/p unit (binary multiples).
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    let lower = s.trim().to_ascii_lowercase();
    let trimmed = lower.strip_suffix('b').unwrap_or(&lower);
    let (digits, mult) = match trimmed.chars().last() {
        Some('k') => (&trimmed[..trimmed.len() - 1], 1i64 << 10),
        Some('m') => (&trimmed[..trimmed.len() - 1], 1 << 20),
        Some('g') => (&trimmed[..trimmed.len() - 1], 1 << 30),
        Some('t') => (&trimmed[..trimmed.len() - 1], 1 << 40),
        Some('p') => (&trimmed[..trimmed.len() - 1], 1 << 50),
        _ => (trimmed, 1),
    };
    let value: f64 = digits
        .parse()
        .ok()
        .filter(|v: &f64| *v >= 0.0 && v.is_finite())
        .ok_or_else(|| format!("invalid size: '{s}'"))?;
    Ok((value * mult as f64) as i64)
}

fn parse_ulimit(s: &str) -> Result<Ulimit, String> {
    let (name, values) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid ulimit argument: {s}"))?;
    const KNOWN: &[&str] = &[
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
        "as",
    ];
    if !KNOWN.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let parse = |v: &str| -> Result<u64, String> {
        if v == "-1" || v == "unlimited" {
            return Ok(u64::MAX);
        }
        v.parse()
            .map_err(|_| format!("invalid ulimit argument: {s}"))
    };
    let (soft, hard) = match values.split_once(':') {
        Some((soft, hard)) => (parse(soft)?, parse(hard)?),
        None => {
            let v = parse(values)?;
            (v, v)
        }
    };
    if soft > hard {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ulimits() {
        assert_eq!(parse_bytes("64m"), Ok(64 << 20));
        assert_eq!(parse_bytes("1g"), Ok(1 << 30));
        assert_eq!(parse_bytes("512kb"), Ok(512 << 10));
        assert_eq!(parse_bytes("100"), Ok(100));
        assert!(parse_bytes("10x").is_err());
        assert_eq!(
            parse_ulimit("nofile=1024:2048"),
            Ok(Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048
            })
        );
        assert!(parse_ulimit("bogus=1").is_err());
        assert!(parse_ulimit("nofile=2:1").is_err());
    }
}
