//! The flags of `run` and `create`, as typed, checked and turned into [`CreateOptions`]: the
//! files they name (`--env-file`, `--security-opt seccomp=FILE`) read, sizes and limits parsed,
//! the network mode and network flags checked. Every failure names the flag value or file at
//! fault; the CLI words it as Docker does.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use super::create::CreateOptions;
use super::devices;
use super::log_opts::{self, LogConfig, LogOptsError};
use super::spec::{SpecOptions, Ulimit};
use super::update::UpdateOptions;
use crate::network::{DnsOptions, NetworkError, NetworkOptions, dns, ports};
use crate::runtime;

#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    #[error("{}", env_file_message(path, source))]
    EnvFile { path: PathBuf, source: io::Error },
    #[error("opening seccomp profile ({}) failed: {source}", path.display())]
    SeccompProfile { path: PathBuf, source: io::Error },
    #[error("invalid argument \"{value}\" for \"{flag}\" flag: {reason}")]
    Invalid {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("Invalid --security-opt: \"{0}\"")]
    SecurityOpt(String),
    /// A `--network` other than the built-in ones: berth has no user-defined networks.
    #[error("network {0} not found")]
    NetworkNotFound(String),
    /// A `-p` or `--expose` value.
    #[error(transparent)]
    Port(#[from] NetworkError),
    #[error(
        "invalid argument \"{value}\" for \"--add-host\" flag: invalid IP address in add-host: \"{ip}\""
    )]
    AddHost { value: String, ip: String },
    #[error("invalid argument \"{0}\" for \"--dns\" flag: {0} is not an ip address")]
    Dns(String),
    /// `--log-driver`/`--log-opt`, or the configuration's defaults they were merged with.
    #[error(transparent)]
    LogOpts(#[from] LogOptsError),
    /// A limit Docker's daemon refuses when it creates the container (memory below 6MB, more
    /// CPUs than the host has, …), in its words.
    #[error("{0}")]
    Refused(String),
    /// What Docker's client refuses before asking the daemon (`--device`, `--cgroupns`).
    #[error("{0}")]
    Client(String),
    /// What Docker's daemon refuses at create (cpuset and blkio checks against the host).
    #[error("Error response from daemon: {0}")]
    Daemon(String),
}

/// Docker's wording, which differs by why the file could not be read.
fn env_file_message(path: &std::path::Path, source: &io::Error) -> String {
    let path = path.display();
    match source.kind() {
        io::ErrorKind::NotFound => format!("open {path}: no such file or directory"),
        io::ErrorKind::IsADirectory => {
            format!("invalid env file ({path}): read {path}: is a directory")
        }
        _ => format!("invalid env file ({path}): {source}"),
    }
}

/// The values of `run`/`create`'s flags, as typed (`args` is IMAGE [COMMAND] [ARG...]).
/// `Default` is every flag left out, with no network and no arguments: the tests and the
/// `flags` fuzz target set what they need over it, so a new flag does not break them.
#[derive(Debug, Default)]
pub struct Flags {
    pub interactive: bool,
    pub tty: bool,
    pub rm: bool,
    pub name: Option<String>,
    pub env: Vec<String>,
    pub env_file: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub entrypoint: Option<String>,
    pub hostname: Option<String>,
    pub volume: Vec<String>,
    pub read_only: bool,
    pub tmpfs: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub security_opt: Vec<String>,
    pub memory: Option<String>,
    pub memory_swap: Option<String>,
    pub cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub ulimit: Vec<String>,
    pub init: bool,
    pub network: String,
    pub publish: Vec<String>,
    pub publish_all: bool,
    pub expose: Vec<String>,
    pub add_host: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_option: Vec<String>,
    pub label: Vec<String>,
    pub log_driver: Option<String>,
    pub log_opt: Vec<String>,
    pub cpu_shares: Option<String>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub blkio_weight: Option<String>,
    pub device: Vec<String>,
    pub cgroupns: Option<String>,
    pub args: Vec<String>,
}

/// The options of a new container from its flags, `image_id` left for the caller to resolve
/// (as with Docker's client, a bad flag value fails before anything is pulled). `bip` is the
/// configuration's, kept in the record, and `log_default` its logging driver and options;
/// `warn` gets what Docker prints as a `WARNING:` line.
pub fn create_options(
    flags: Flags,
    bip: Option<String>,
    log_default: &LogConfig,
    warn: impl Fn(&str),
) -> Result<CreateOptions, FlagError> {
    let log_config = log_opts::resolve(flags.log_driver.as_deref(), &flags.log_opt, log_default)?;
    let mut env = read_env_files(&flags.env_file)?;
    env.extend(flags.env.iter().cloned());
    let mut spec = spec_options(&flags)?;
    // The host's controllers are read only when a flag needs them (a run without them
    // should not pay for the reads).
    let host = if flags.cpu_shares.is_some()
        || flags.cpuset_cpus.is_some()
        || flags.cpuset_mems.is_some()
        || flags.blkio_weight.is_some()
    {
        runtime::cgroups::host_support()
    } else {
        runtime::cgroups::HostSupport::default()
    };
    resource_options(&flags, &mut spec, &host, &warn)?;
    let network = match flags.network.as_str() {
        "none" | "host" | "bridge" => flags.network.clone(),
        "default" => "bridge".to_string(),
        other => return Err(FlagError::NetworkNotFound(other.to_string())),
    };
    let net = network_options(&flags, bip, &warn)?;
    // What Docker's daemon checks comes after everything its client checks.
    check_limits(&spec, false)?;
    warn_clamped_ulimits(&spec.ulimits, &warn);
    let mut labels = BTreeMap::new();
    for l in &flags.label {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let mut args = flags.args.into_iter();
    Ok(CreateOptions {
        id: None,
        image: args.next().unwrap_or_default(),
        image_id: None,
        name: flags.name,
        command: args.collect(),
        entrypoint: flags.entrypoint,
        env,
        working_dir: flags.workdir,
        user: flags.user,
        hostname: flags.hostname,
        volumes: flags.volume,
        tty: flags.tty,
        interactive: flags.interactive,
        auto_remove: flags.rm,
        network,
        net,
        init: flags.init,
        labels,
        spec,
        log_config,
    })
}

/// The variables of the `--env-file` files, in order: a line each, blank lines and `#`
/// comments skipped.
fn read_env_files(files: &[String]) -> Result<Vec<String>, FlagError> {
    let mut env = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|source| FlagError::EnvFile {
            path: PathBuf::from(file),
            source,
        })?;
        env.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    Ok(env)
}

/// `-m, --memory` as Docker's client reads it (no -1: that is only swap's "unlimited"); 0
/// is Docker's "no limit".
fn memory_flag(value: Option<&str>) -> Result<Option<i64>, FlagError> {
    Ok(value
        .map(|m| parse_bytes(m).map_err(|e| invalid("-m, --memory", m, e)))
        .transpose()?
        .filter(|m| *m != 0))
}

/// `--memory-swap`: a size, or -1 for unlimited; 0 is Docker's "no limit".
fn memory_swap_flag(value: Option<&str>) -> Result<Option<i64>, FlagError> {
    Ok(value
        .map(|m| {
            if m == "-1" {
                Ok(-1)
            } else {
                parse_bytes(m).map_err(|e| invalid("--memory-swap", m, e))
            }
        })
        .transpose()?
        .filter(|m| *m != 0))
}

/// `--cpus`, in billionths; 0 is Docker's "no limit".
fn cpus_flag(value: Option<&str>) -> Result<Option<i64>, FlagError> {
    Ok(value
        .map(|c| parse_nano_cpus(c).map_err(|e| invalid("--cpus", c, e)))
        .transpose()?
        .filter(|n| *n != 0))
}

fn invalid(flag: &'static str, value: &str, reason: impl std::fmt::Display) -> FlagError {
    FlagError::Invalid {
        flag,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// Limits, capabilities, mounts and security options → the runtime spec's options.
fn spec_options(flags: &Flags) -> Result<SpecOptions, FlagError> {
    let mut spec = SpecOptions {
        // 0 is Docker's "no limit", for memory and swap alike.
        memory: memory_flag(flags.memory.as_deref())?,
        memory_swap: memory_swap_flag(flags.memory_swap.as_deref())?,
        nano_cpus: cpus_flag(flags.cpus.as_deref())?,
        // 0 and negative values are Docker's "no limit".
        pids_limit: flags.pids_limit.filter(|p| *p > 0),
        cap_add: flags.cap_add.clone(),
        cap_drop: flags.cap_drop.clone(),
        privileged: flags.privileged,
        read_only: flags.read_only,
        ..SpecOptions::default()
    };
    for u in &flags.ulimit {
        spec.ulimits
            .push(parse_ulimit(u).map_err(|e| invalid("--ulimit", u, e))?);
    }
    for t in &flags.tmpfs {
        let (path, opts) = t.split_once(':').unwrap_or((t, ""));
        if !path.starts_with('/') {
            return Err(invalid("--tmpfs", t, "mount path must be absolute"));
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
                let profile =
                    std::fs::read_to_string(file).map_err(|source| FlagError::SeccompProfile {
                        path: PathBuf::from(file),
                        source,
                    })?;
                spec.seccomp = Some(Some(profile));
            }
            _ => return Err(FlagError::SecurityOpt(opt.clone())),
        }
    }
    Ok(spec)
}

/// Docker's smallest memory limit (its daemon's `linuxMinMemory`).
const MIN_MEMORY: i64 = 6 << 20;

/// The limits Docker's daemon refuses (`verifyPlatformContainerResources`), in its order and
/// words; `updating`: for `update`, which may change swap alone.
fn check_limits(spec: &SpecOptions, updating: bool) -> Result<(), FlagError> {
    let refuse = |why: String| Err(FlagError::Refused(why));
    if spec.memory.is_some_and(|m| m < MIN_MEMORY) {
        return refuse("Minimum memory limit allowed is 6MB".into());
    }
    match (spec.memory, spec.memory_swap) {
        (Some(memory), Some(swap)) if swap > 0 && swap < memory => {
            return refuse(
                "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
            );
        }
        (None, Some(swap)) if swap > 0 && !updating => {
            return refuse(
                "You should always set the Memory limit when using Memoryswap limit, see usage"
                    .into(),
            );
        }
        _ => {}
    }
    if let Some(nano) = spec.nano_cpus {
        let cpus = host_cpus();
        if nano < 0 || nano as i128 > cpus as i128 * 1_000_000_000 {
            return refuse(format!(
                "Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
            ));
        }
    }
    Ok(())
}

/// The CPUs this process may run on, counted as Docker's daemon counts them (`sysinfo.NumCPU`:
/// the affinity mask, else every online CPU).
fn host_cpus() -> i64 {
    use nix::sched::{CpuSet, sched_getaffinity};
    if let Ok(set) = sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        let n = (0..CpuSet::count())
            .filter(|&i| set.is_set(i).unwrap_or(false))
            .count();
        if n > 0 {
            return n as i64;
        }
    }
    std::thread::available_parallelism().map_or(1, |n| n.get() as i64)
}

/// A `--ulimit` above what berth can grant (it lacks CAP_SYS_RESOURCE to raise a hard limit
/// past its own) is clamped when the spec is written; say so, as the runtime does for a
/// bundle's limits.
fn warn_clamped_ulimits(ulimits: &[Ulimit], warn: impl Fn(&str)) {
    let clamped: Vec<String> = ulimits
        .iter()
        .filter_map(|u| {
            let ceiling = super::spec::ulimit_ceiling(&u.name)?;
            (u.hard > ceiling).then(|| format!("{} {} > {ceiling}", u.name, u.hard))
        })
        .collect();
    if !clamped.is_empty() {
        warn(&format!(
            "cannot raise hard rlimits without CAP_SYS_RESOURCE, clamped to the host's limit: {}",
            clamped.join(", ")
        ));
    }
}

/// Docker's `--cpus` (`opts.NanoCPUs`): a rational number — decimal (`1.5`, `.5`, `2e-1`) or a
/// fraction (`3/2`) — in billionths of a CPU, which must come out whole. A value too large to
/// count comes out as `i64::MAX` (or `MIN`), which `check_limits` refuses as out of range.
fn parse_nano_cpus(s: &str) -> Result<i64, String> {
    let unparsable = || format!("failed to parse {s} as a rational number");
    // Optional sign, then ASCII digits only.
    let integer = |t: &str| -> Option<(bool, String)> {
        let (negative, digits) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| (negative, digits.to_string()))
    };
    // The value as ±digits × 10^scale ÷ denominator.
    let (negative, digits, scale, denominator) = match s.split_once('/') {
        Some((n, d)) => {
            // The denominator takes no sign, as Go's `big.Rat` reads it.
            let (Some((negative, digits)), Some((false, d_digits))) = (integer(n), integer(d))
            else {
                return Err(unparsable());
            };
            let d_digits = d_digits.trim_start_matches('0');
            if d_digits.is_empty() {
                return Err(unparsable());
            }
            if d_digits.len() > 30 {
                // Absurd; exact for 0, and no whole number of billionths otherwise in practice.
                return if digits.trim_start_matches('0').is_empty() {
                    Ok(0)
                } else {
                    Err("value is too precise".into())
                };
            }
            (
                negative,
                digits,
                0i64,
                d_digits.parse().map_err(|_| unparsable())?,
            )
        }
        None => {
            let (mantissa, exponent) = match s.split_once(['e', 'E']) {
                Some((m, e)) => (m, e.parse::<i64>().map_err(|_| unparsable())?),
                None => (s, 0),
            };
            if matches!(mantissa.trim_start_matches(['+', '-']), "" | ".") {
                return Err(unparsable());
            }
            let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
            if fraction.starts_with(['+', '-']) {
                return Err(unparsable());
            }
            let whole = if whole.is_empty() || whole == "-" || whole == "+" {
                format!("{whole}0")
            } else {
                whole.to_string()
            };
            let Some((negative, digits)) = integer(&format!("{whole}{fraction}")) else {
                return Err(unparsable());
            };
            // Saturating: an exponent near i64's ends is a value far out of range (too
            // large, or too precise), not an overflow.
            (
                negative,
                digits,
                exponent.saturating_sub(fraction.len() as i64),
                1,
            )
        }
    };
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(0);
    }
    let saturated = if negative { i64::MIN } else { i64::MAX };
    // In billionths: × 10^(scale + 9).
    let scale = scale.saturating_add(9);
    let (mut numerator, divisor): (u128, u128) = if scale >= 0 {
        if (digits.len() as i64).saturating_add(scale) > 30 {
            return Ok(saturated);
        }
        (
            digits.parse::<u128>().map_err(|_| unparsable())? * 10u128.pow(scale as u32),
            denominator,
        )
    } else {
        // Dropping trailing zeros first keeps 1.5000000000 exact without huge powers.
        let trimmed = digits.trim_end_matches('0');
        let dropped = (digits.len() - trimmed.len()) as i64;
        let scale = scale.saturating_add(dropped);
        if scale >= 0 {
            (
                trimmed.parse::<u128>().map_err(|_| unparsable())? * 10u128.pow(scale as u32),
                denominator,
            )
        } else if scale < -30 || trimmed.len() > 30 {
            return Err("value is too precise".into());
        } else {
            (
                trimmed.parse::<u128>().map_err(|_| unparsable())?,
                denominator * 10u128.pow((-scale) as u32),
            )
        }
    };
    if numerator % divisor != 0 {
        return Err("value is too precise".into());
    }
    numerator /= divisor;
    Ok(match i64::try_from(numerator) {
        Ok(n) if negative => -n,
        Ok(n) => n,
        Err(_) => saturated,
    })
}

/// `--cpu-shares`, `--cpuset-cpus`, `--cpuset-mems`, `--blkio-weight`, `--device` and
/// `--cgroupns`, checked as Docker's client and then its daemon check them: values the host
/// cannot honour (no such controller) are discarded with Docker's warning, values outside
/// what it has are refused with Docker's words.
fn resource_options(
    flags: &Flags,
    spec: &mut SpecOptions,
    host: &runtime::cgroups::HostSupport,
    warn: &impl Fn(&str),
) -> Result<(), FlagError> {
    // Client side first: the values' syntax.
    for d in &flags.device {
        spec.devices
            .push(devices::parse(d).map_err(FlagError::Client)?);
    }
    spec.cgroupns_host = match flags.cgroupns.as_deref() {
        Some("host") => true,
        Some("private") => false,
        // Docker's daemon default: private where the host has cgroup v2 only.
        None | Some("") => !runtime::cgroups::is_v2(),
        Some(_) => {
            return Err(FlagError::Client(
                "--cgroupns: invalid CGROUP mode".to_string(),
            ));
        }
    };
    let cpu = cpu_io_flags(
        flags.cpu_shares.as_deref(),
        flags.cpuset_cpus.as_deref(),
        flags.cpuset_mems.as_deref(),
        flags.blkio_weight.as_deref(),
        host,
        warn,
    )?;
    spec.cpu_shares = cpu.shares;
    spec.cpuset_cpus = cpu.cpus;
    spec.cpuset_mems = cpu.mems;
    spec.blkio_weight = cpu.blkio_weight;
    Ok(())
}

/// `--cpu-shares`, `--cpuset-cpus`, `--cpuset-mems` and `--blkio-weight` as checked (0 and
/// `None` for unset or discarded).
#[derive(Debug, Default)]
struct CpuIo {
    shares: u64,
    cpus: Option<String>,
    mems: Option<String>,
    blkio_weight: u16,
}

/// The checks `run`, `create` and `update` share: the values' syntax as Docker's client
/// parses them, then its daemon's checks against the host.
fn cpu_io_flags(
    shares: Option<&str>,
    cpus: Option<&str>,
    mems: Option<&str>,
    weight: Option<&str>,
    host: &runtime::cgroups::HostSupport,
    warn: &impl Fn(&str),
) -> Result<CpuIo, FlagError> {
    let mut out = CpuIo::default();
    let shares = shares
        .map(|v| go_parse_int(v).map_err(|e| invalid("-c, --cpu-shares", v, e)))
        .transpose()?
        .unwrap_or(0);
    let weight = weight
        .map(|v| go_parse_u16(v).map_err(|e| invalid("--blkio-weight", v, e)))
        .transpose()?
        .unwrap_or(0);
    if shares < 0 {
        return Err(FlagError::Daemon("shares: invalid argument".into()));
    }
    if shares > 0 && !host.cpu_shares {
        warn(
            "Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.",
        );
    } else {
        out.shares = shares as u64;
    }
    let cpus = cpus.filter(|c| !c.is_empty()).map(str::to_string);
    let mems = mems.filter(|m| !m.is_empty()).map(str::to_string);
    if cpus.is_some() || mems.is_some() {
        match &host.cpuset {
            None => warn(
                "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.",
            ),
            Some((host_cpus, host_mems)) => {
                for (value, available, what, unavailable) in [
                    (&cpus, host_cpus, "cpus", "CPUs"),
                    (&mems, host_mems, "mems", "memory nodes"),
                ] {
                    let Some(value) = value else {
                        continue;
                    };
                    let have = parse_uint_list(available, None).unwrap_or_default();
                    // Docker's bound (CVE-2018-20699): the normal maximum number of CPUs on
                    // Linux, or the host's highest if it has more.
                    let maximum = have
                        .iter()
                        .map(|&(_, hi)| hi)
                        .fold(DEFAULT_MAX_CPUS, i64::max);
                    let asked = parse_uint_list(value, Some(maximum)).map_err(|e| {
                        FlagError::Daemon(format!("Invalid value {value} for cpuset {what}: {e}"))
                    })?;
                    let available_has = |n: i64| have.iter().any(|&(lo, hi)| lo <= n && n <= hi);
                    if !asked.iter().all(|&(lo, hi)| (lo..=hi).all(available_has)) {
                        return Err(FlagError::Daemon(format!(
                            "Requested {unavailable} are not available - requested {value}, available: {available}"
                        )));
                    }
                }
                out.cpus = cpus;
                out.mems = mems;
            }
        }
    }
    if weight > 0 && !host.blkio_weight {
        warn(
            "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
        );
    } else if weight > 0 && !(10..=1000).contains(&weight) {
        return Err(FlagError::Daemon(
            "Range of blkio weight is from 10 to 1000".into(),
        ));
    } else {
        out.blkio_weight = weight;
    }
    Ok(out)
}

/// The values of `update`'s flags, as typed.
#[derive(Debug, Default)]
pub struct UpdateFlags {
    pub memory: Option<String>,
    pub memory_swap: Option<String>,
    pub cpus: Option<String>,
    pub cpu_shares: Option<String>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub blkio_weight: Option<String>,
    pub pids_limit: Option<i64>,
}

/// `update`'s flags, checked as `run`'s are; `warn` gets Docker's warnings. As in Docker,
/// a zero or empty value leaves the setting as it is.
pub fn update_options(
    flags: &UpdateFlags,
    warn: impl Fn(&str),
) -> Result<UpdateOptions, FlagError> {
    // The client's parsing first, as Docker's client does before asking its daemon.
    let memory = memory_flag(flags.memory.as_deref())?;
    let memory_swap = memory_swap_flag(flags.memory_swap.as_deref())?;
    let nano_cpus = cpus_flag(flags.cpus.as_deref())?;
    let cpu = cpu_io_flags(
        flags.cpu_shares.as_deref(),
        flags.cpuset_cpus.as_deref(),
        flags.cpuset_mems.as_deref(),
        flags.blkio_weight.as_deref(),
        &runtime::cgroups::host_support(),
        &warn,
    )?;
    // Docker's daemon checks the new limits as it checks a new container's.
    check_limits(
        &SpecOptions {
            memory,
            memory_swap,
            nano_cpus,
            ..SpecOptions::default()
        },
        true,
    )?;
    Ok(UpdateOptions {
        memory,
        memory_swap,
        nano_cpus,
        cpu_shares: (cpu.shares != 0).then_some(cpu.shares),
        cpuset_cpus: cpu.cpus,
        cpuset_mems: cpu.mems,
        blkio_weight: (cpu.blkio_weight != 0).then_some(cpu.blkio_weight),
        pids_limit: flags.pids_limit,
    })
}

/// Go's `strconv.ParseInt(v, 10, 64)`, with its error text (Docker's client quotes it).
fn go_parse_int(v: &str) -> Result<i64, String> {
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseInt: parsing {v:?}: invalid syntax"));
    }
    v.parse()
        .map_err(|_| format!("strconv.ParseInt: parsing {v:?}: value out of range"))
}

/// Go's `strconv.ParseUint(v, 10, 16)`, with its error text.
fn go_parse_u16(v: &str) -> Result<u16, String> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseUint: parsing {v:?}: invalid syntax"));
    }
    v.parse()
        .map_err(|_| format!("strconv.ParseUint: parsing {v:?}: value out of range"))
}

/// Docker's `defaultMaxCPUs`: the normal maximum number of CPUs on Linux.
const DEFAULT_MAX_CPUS: i64 = 8192;

/// A cpuset list (`0-2,5`) as Docker's `parseUintList` reads it, as inclusive ranges: never
/// expanded, so `0-4000000000` costs two numbers, not 16 GB. A number above `maximum` is
/// refused with Docker's words (sic: "of out range").
fn parse_uint_list(v: &str, maximum: Option<i64>) -> Result<Vec<(i64, i64)>, String> {
    let mut out = Vec::new();
    if v.is_empty() {
        return Ok(out);
    }
    let invalid = || format!("invalid format: {v}");
    let number = |s: &str| s.parse::<i64>().map_err(|_| invalid());
    for part in v.split(',') {
        let (lo, hi) = match part.split_once('-') {
            None => {
                let n = number(part)?;
                (n, n)
            }
            Some((lo, hi)) => {
                let (lo, hi) = (number(lo)?, number(hi)?);
                if hi < lo {
                    return Err(invalid());
                }
                (lo, hi)
            }
        };
        if let Some(maximum) = maximum
            && hi > maximum
        {
            return Err(format!("value of out range, maximum is {maximum}"));
        }
        out.push((lo, hi));
    }
    Ok(out)
}

/// `-p`, `-P`, `--expose`, `--add-host`, `--dns*` → the record's network options.
fn network_options(
    flags: &Flags,
    bip: Option<String>,
    warn: impl Fn(&str),
) -> Result<NetworkOptions, FlagError> {
    let mut publish = Vec::new();
    for p in &flags.publish {
        publish.extend(ports::parse_publish(p)?);
    }
    if !publish.is_empty() && flags.network == "host" {
        warn("Published ports are discarded when using host network mode");
    }
    let mut exposed = Vec::new();
    // A set beside the list: `--expose 1-65535` checked each port against every one before
    // it, billions of comparisons (found by the `flags` fuzz target).
    let mut seen = std::collections::HashSet::new();
    for e in &flags.expose {
        for (port, proto) in ports::parse_expose(e)? {
            let key = format!("{port}/{proto}");
            if seen.insert(key.clone()) {
                exposed.push(key);
            }
        }
    }
    for h in &flags.add_host {
        if dns::parse_add_host(h).is_none() {
            return Err(FlagError::AddHost {
                value: h.clone(),
                ip: h.split_once(':').map(|x| x.1).unwrap_or("").to_string(),
            });
        }
    }
    for d in &flags.dns {
        if d.parse::<std::net::IpAddr>().is_err() {
            return Err(FlagError::Dns(d.clone()));
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
        bip,
    })
}

/// Docker's `RAMInBytes`: a number with an optional b/k/m/g/t/p unit (binary multiples).
fn parse_bytes(s: &str) -> Result<i64, String> {
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

    /// What Docker 28's client makes of `--cpus` values (checked against it).
    #[test]
    fn cpus_as_docker_reads_them() {
        for (value, nano) in [
            ("1", 1_000_000_000),
            ("1.5", 1_500_000_000),
            (".5", 500_000_000),
            ("5.", 5_000_000_000),
            ("+1", 1_000_000_000),
            ("-1", -1_000_000_000),
            ("-0", 0),
            ("0", 0),
            ("0.01", 10_000_000),
            ("1e0", 1_000_000_000),
            ("2E-1", 200_000_000),
            ("1/2", 500_000_000),
            ("3/2", 1_500_000_000),
            ("-3/2", -1_500_000_000),
            ("1.5000000000000", 1_500_000_000),
            ("0.000000001", 1),
            ("1e30", i64::MAX),
            ("-1e30", i64::MIN),
            // Exponents at i64's ends saturate rather than overflow.
            ("1e9223372036854775807", i64::MAX),
            ("-1.5e9223372036854775807", i64::MIN),
            ("0e9223372036854775807", 0),
        ] {
            assert_eq!(parse_nano_cpus(value), Ok(nano), "{value}");
        }
        for value in [
            "0.0000000001",
            "2.0000000001",
            "1/3",
            "1e-10",
            "1e-9223372036854775808",
            "1.5e-9223372036854775808",
        ] {
            assert_eq!(
                parse_nano_cpus(value),
                Err("value is too precise".to_string()),
                "{value}"
            );
        }
        for value in ["lots", "", ".", "1/0", "1/-2", "1e", "1.2.3", "--1", "1 "] {
            assert_eq!(
                parse_nano_cpus(value),
                Err(format!("failed to parse {value} as a rational number")),
                "{value}"
            );
        }
    }

    #[test]
    fn limits_refused_as_docker_refuses_them() {
        let refused = |spec: SpecOptions| match check_limits(&spec, false) {
            Err(FlagError::Refused(why)) => why,
            other => panic!("{other:?}"),
        };
        let memory = |m: i64, swap: Option<i64>| SpecOptions {
            memory: Some(m),
            memory_swap: swap,
            ..SpecOptions::default()
        };
        assert_eq!(
            refused(memory(1024, None)),
            "Minimum memory limit allowed is 6MB"
        );
        assert!(check_limits(&memory(6 << 20, None), false).is_ok());
        assert!(check_limits(&memory(10 << 20, Some(-1)), false).is_ok());
        assert!(check_limits(&memory(10 << 20, Some(10 << 20)), false).is_ok());
        assert_eq!(
            refused(memory(10 << 20, Some(5 << 20))),
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        );
        assert_eq!(
            refused(SpecOptions {
                memory_swap: Some(10 << 20),
                ..SpecOptions::default()
            }),
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        );
        let cpus = host_cpus();
        let nano = |n: i64| SpecOptions {
            nano_cpus: Some(n),
            ..SpecOptions::default()
        };
        assert!(check_limits(&nano(cpus * 1_000_000_000), false).is_ok());
        let range = format!(
            "Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
        );
        assert_eq!(refused(nano(cpus * 1_000_000_000 + 1)), range);
        assert_eq!(refused(nano(-1)), range);
        assert_eq!(refused(nano(i64::MAX)), range);
    }

    /// `update` checks its new limits as `create` does (swap alone aside), with `--cpus`
    /// read as `create` reads it, and -1 only for `--memory-swap`.
    #[test]
    fn update_limits_are_checked_as_create_checks_them() {
        let update = |memory: Option<&str>, swap: Option<&str>, cpus: Option<&str>| {
            update_options(
                &UpdateFlags {
                    memory: memory.map(str::to_string),
                    memory_swap: swap.map(str::to_string),
                    cpus: cpus.map(str::to_string),
                    ..UpdateFlags::default()
                },
                |_| {},
            )
        };
        let refused = |r: Result<UpdateOptions, FlagError>| match r {
            Err(FlagError::Refused(why)) => why,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            refused(update(Some("1k"), None, None)),
            "Minimum memory limit allowed is 6MB"
        );
        assert_eq!(
            refused(update(Some("10m"), Some("5m"), None)),
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        );
        let cpus = host_cpus();
        assert_eq!(
            refused(update(None, None, Some(&(cpus + 1).to_string()))),
            format!(
                "Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
            )
        );
        assert!(matches!(
            update(Some("-1"), None, None),
            Err(FlagError::Invalid {
                flag: "-m, --memory",
                ..
            })
        ));
        // `--cpus` as create parses it: a fraction, and an exact decimal.
        assert_eq!(
            update(None, None, Some("1/2")).unwrap().nano_cpus,
            Some(500_000_000)
        );
        assert!(matches!(
            update(None, None, Some("0.0000000001")),
            Err(FlagError::Invalid { flag: "--cpus", .. })
        ));
        // Swap alone may change, unlimited included; memory with enough swap.
        assert_eq!(
            update(None, Some("-1"), None).unwrap().memory_swap,
            Some(-1)
        );
        assert_eq!(
            update(None, Some("20m"), None).unwrap().memory_swap,
            Some(20 << 20)
        );
        let both = update(Some("10m"), Some("20m"), None).unwrap();
        assert_eq!(
            (both.memory, both.memory_swap),
            (Some(10 << 20), Some(20 << 20))
        );
    }

    fn flags() -> Flags {
        Flags {
            network: "none".into(),
            args: vec!["busybox".into()],
            ..Flags::default()
        }
    }

    /// Found by the `flags` fuzz target: every exposed port was checked against each one
    /// before it, which took minutes for all of them. Run on a thread: a failure, not a hang.
    #[test]
    fn exposing_every_port_is_quick() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let f = Flags {
                expose: vec!["1-65535".into(), "1-65535/udp".into(), "80".into()],
                ..flags()
            };
            let _ = tx.send(network_options(&f, None, |_| {}).map(|n| n.exposed));
        });
        let exposed = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("exposing every port did not finish in 10 s")
            .unwrap();
        assert_eq!(exposed.len(), 2 * 65535);
        assert_eq!(exposed[0], "1/tcp");
        assert_eq!(exposed[65535], "1/udp");
    }

    /// Docker's checks and words, against a made-up host: two cpus, one memory node.
    #[test]
    fn resource_flags_are_checked_as_docker_checks_them() {
        let host = runtime::cgroups::HostSupport {
            cpu_shares: true,
            cpuset: Some(("0-1".into(), "0".into())),
            blkio_weight: true,
        };
        let check = |f: Flags, host: &runtime::cgroups::HostSupport| {
            let warnings = std::cell::RefCell::new(Vec::new());
            let mut spec = SpecOptions::default();
            resource_options(&f, &mut spec, host, &|w: &str| {
                warnings.borrow_mut().push(w.to_string())
            })
            .map(|()| (spec, warnings.into_inner()))
            .map_err(|e| e.to_string())
        };
        let (spec, warnings) = check(
            Flags {
                cpu_shares: Some("512".into()),
                cpuset_cpus: Some("0,1".into()),
                cpuset_mems: Some("0".into()),
                blkio_weight: Some("300".into()),
                device: vec!["/dev/null:/dev/n:r".into()],
                cgroupns: Some("private".into()),
                ..flags()
            },
            &host,
        )
        .unwrap();
        assert!(warnings.is_empty());
        assert_eq!(spec.cpu_shares, 512);
        assert_eq!(spec.cpuset_cpus.as_deref(), Some("0,1"));
        assert_eq!(spec.blkio_weight, 300);
        assert_eq!(spec.devices[0].path_in_container, "/dev/n");
        assert!(!spec.cgroupns_host);
        let err = |f: Flags| check(f, &host).unwrap_err();
        assert_eq!(
            err(Flags {
                cpuset_cpus: Some("5".into()),
                ..flags()
            }),
            "Error response from daemon: Requested CPUs are not available - requested 5, available: 0-1"
        );
        assert_eq!(
            err(Flags {
                cpuset_cpus: Some("abc".into()),
                ..flags()
            }),
            "Error response from daemon: Invalid value abc for cpuset cpus: invalid format: abc"
        );
        // A huge range is refused against Docker's bound, not expanded (that aborted on a
        // 16 GB allocation).
        assert_eq!(
            err(Flags {
                cpuset_cpus: Some("0-4000000000".into()),
                ..flags()
            }),
            "Error response from daemon: Invalid value 0-4000000000 for cpuset cpus: value of out range, maximum is 8192"
        );
        assert_eq!(
            err(Flags {
                cpuset_mems: Some("0-9223372036854775807".into()),
                ..flags()
            }),
            "Error response from daemon: Invalid value 0-9223372036854775807 for cpuset mems: value of out range, maximum is 8192"
        );
        assert_eq!(
            err(Flags {
                cpuset_cpus: Some("1-8192".into()),
                ..flags()
            }),
            "Error response from daemon: Requested CPUs are not available - requested 1-8192, available: 0-1"
        );
        // Found by the `flags` fuzz target: this range was expanded, 900 million numbers.
        assert_eq!(
            err(Flags {
                cpuset_cpus: Some("0-907690760".into()),
                ..flags()
            }),
            "Error response from daemon: Invalid value 0-907690760 for cpuset cpus: value of out range, maximum is 8192"
        );
        assert_eq!(
            err(Flags {
                cpuset_mems: Some("1".into()),
                ..flags()
            }),
            "Error response from daemon: Requested memory nodes are not available - requested 1, available: 0"
        );
        assert_eq!(
            err(Flags {
                blkio_weight: Some("5".into()),
                ..flags()
            }),
            "Error response from daemon: Range of blkio weight is from 10 to 1000"
        );
        assert_eq!(
            err(Flags {
                blkio_weight: Some("abc".into()),
                ..flags()
            }),
            "invalid argument \"abc\" for \"--blkio-weight\" flag: strconv.ParseUint: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            err(Flags {
                cpu_shares: Some("abc".into()),
                ..flags()
            }),
            "invalid argument \"abc\" for \"-c, --cpu-shares\" flag: strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            err(Flags {
                cpu_shares: Some("-5".into()),
                ..flags()
            }),
            "Error response from daemon: shares: invalid argument"
        );
        assert_eq!(
            err(Flags {
                cgroupns: Some("foo".into()),
                ..flags()
            }),
            "--cgroupns: invalid CGROUP mode"
        );
        assert_eq!(
            err(Flags {
                device: vec!["/dev/null:/x:rwx".into()],
                ..flags()
            }),
            "bad mode specified: rwx"
        );
        // A host without the controllers: the values go, with Docker's warnings.
        let (spec, warnings) = check(
            Flags {
                cpu_shares: Some("512".into()),
                cpuset_cpus: Some("7".into()),
                blkio_weight: Some("5".into()),
                ..flags()
            },
            &runtime::cgroups::HostSupport::default(),
        )
        .unwrap();
        assert_eq!((spec.cpu_shares, spec.blkio_weight), (0, 0));
        assert_eq!(spec.cpuset_cpus, None);
        assert_eq!(
            warnings,
            [
                "Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.",
                "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.",
                "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
            ]
        );
    }
}
