//! The systemd cgroup driver (cgroup v2 only): a container's cgroup is a transient scope unit
//! that systemd creates over D-Bus, with the container's init in it and `Delegate=yes`, as
//! runc's `--systemd-cgroup` makes it. Everything else — the limits systemd has no property
//! for, the device filter, freezing, killing, reading pids and counters — is the v2 driver's
//! work on the scope's directory, which the delegation makes ours to write.
//!
//! A cgroupsPath names such a unit in runc's form `slice:prefix:name`: the scope
//! `<prefix>-<name>.scope` in the slice `slice` (`system.slice` when empty; `-` dashes in a
//! slice name nest it, `a-b.slice` is `/a.slice/a-b.slice`). The form is what selects this
//! driver ([`parse`]): berth writes it into specs when its configuration picks the systemd
//! driver, and berth-runc under `--systemd-cgroup`.
//!
//! Why systemd has to make the scope: on a systemd host the cgroup tree is systemd's, and a
//! cgroup made behind its back is reorganised or emptied when systemd next realises its units
//! (a `daemon-reload`, a unit started in the same slice). A scope is a unit of its own, so
//! stopping whatever unit started the container does not stop it. systemd reapplies a unit's
//! properties on `daemon-reload` and `daemon-reexec`, so every limit berth writes to the
//! scope's files is given to systemd as a property too ([`properties`]), and would be written
//! back unchanged.
//!
//! # D-Bus and fork
//!
//! Each operation ([`bus`]) connects to the system bus on a tokio runtime of the calling
//! thread, makes its calls, and drops the connection and the runtime before it returns: no
//! thread, task or socket of the D-Bus client outlives the call. berth forks (the monitor) and
//! clones (containers) without exec, and a child that inherited a half-used client (a lock
//! held by a reader thread that the fork left behind) would hang on it; here a process that
//! forks after a call has nothing of it left, and the code runs only for units, so the
//! cgroupfs driver never loads any of it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use super::{Cgroup, V2};
use crate::RuntimeError;

/// A scope unit of systemd's, named by a `slice:prefix:name` cgroupsPath.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The slice the scope goes into (`berth.slice`).
    pub slice: String,
    /// The unit's name (`berth-<id>.scope`).
    pub name: String,
    /// The scope's cgroup, relative to the v2 root (`/berth.slice/berth-<id>.scope`).
    pub path: PathBuf,
}

/// The unit a cgroupsPath names when it is in runc's systemd form `slice:prefix:name` (no
/// `/`, exactly two colons); `None` for a path of the cgroupfs driver. As runc: an empty slice
/// is `system.slice`, the unit is `<prefix>-<name>.scope`, and a slice name must end in
/// `.slice` with no empty dash-separated part. A `name` ending in `.slice` (runc then makes a
/// slice unit) is refused: berth only makes scopes.
pub fn parse(cgroups_path: &Path) -> Option<Result<Unit, RuntimeError>> {
    let s = cgroups_path.to_str()?;
    if s.contains('/') {
        return None;
    }
    let parts: Vec<&str> = s.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return None;
    };
    Some(unit(slice, prefix, name))
}

fn unit(slice: &str, prefix: &str, name: &str) -> Result<Unit, RuntimeError> {
    let bad = |what: String| RuntimeError::InvalidSpec(format!("cgroupsPath: {what}"));
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let slice_path =
        expand_slice(slice).ok_or_else(|| bad(format!("invalid slice name {slice}")))?;
    if name.is_empty() {
        return Err(bad("the unit's name is empty".into()));
    }
    if name.ends_with(".slice") {
        return Err(bad(format!(
            "{name}: a container's unit is a scope; slice units are not made"
        )));
    }
    let unit = format!("{prefix}-{name}.scope");
    if !unit
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
    {
        return Err(bad(format!("invalid unit name {unit}")));
    }
    Ok(Unit {
        slice: slice.to_string(),
        path: slice_path.join(&unit),
        name: unit,
    })
}

/// systemd's cgroup path of a slice: `a-b.slice` → `/a.slice/a-b.slice`, `-.slice` → `/`.
pub fn expand_slice(slice: &str) -> Option<PathBuf> {
    let base = slice.strip_suffix(".slice")?;
    if slice.contains('/') || base.is_empty() {
        return None;
    }
    let mut path = PathBuf::from("/");
    if base == "-" {
        return Some(path);
    }
    let mut prefix = String::new();
    for part in base.split('-') {
        if part.is_empty() {
            return None;
        }
        path.push(format!("{prefix}{part}.slice"));
        prefix.push_str(part);
        prefix.push('-');
    }
    Some(path)
}

/// Whether this host can use the driver: cgroup v2 and systemd as init (sd_booted(3): the
/// directory systemd makes at boot exists).
pub fn available() -> bool {
    super::is_v2() && Path::new("/run/systemd/system").is_dir()
}

/// A container's cgroup as a systemd scope.
pub struct Systemd {
    unit: Unit,
    fs: V2,
}

impl Systemd {
    pub fn new(unit: Unit) -> Result<Systemd, RuntimeError> {
        if !super::is_v2() {
            return Err(RuntimeError::CgroupConfig(format!(
                "{}: the systemd cgroup driver needs the unified cgroup hierarchy (cgroup v2)",
                unit.name
            )));
        }
        Ok(Systemd {
            fs: V2::new(unit.path.clone()),
            unit,
        })
    }

    fn dir(&self) -> PathBuf {
        Path::new(super::v2::ROOT).join(self.unit.path.strip_prefix("/").unwrap_or(&self.unit.path))
    }
}

impl Cgroup for Systemd {
    fn path(&self) -> &Path {
        &self.unit.path
    }

    /// Nothing: systemd makes a scope together with its first process ([`Cgroup::start`]).
    fn create(&self) -> Result<(), RuntimeError> {
        Ok(())
    }

    fn needs_first_pid(&self) -> bool {
        true
    }

    fn start(&self, pid: Pid, resources: Option<&LinuxResources>) -> Result<(), RuntimeError> {
        let mut fs_resources = resources.cloned();
        let props = match &mut fs_resources {
            Some(r) => {
                super::check_resources(r)?;
                properties(r)
            }
            None => Vec::new(),
        };
        let mut all = vec![
            Prop::Str("Description", format!("berth container {}", self.unit.name)),
            Prop::Str("Slice", self.unit.slice.clone()),
            Prop::Bool("Delegate", true),
            Prop::Pids(vec![pid.as_raw() as u32]),
            Prop::Bool("MemoryAccounting", true),
            Prop::Bool("CPUAccounting", true),
            Prop::Bool("IOAccounting", true),
            Prop::Bool("TasksAccounting", true),
            Prop::Bool("DefaultDependencies", false),
        ];
        // No process limit unless the spec sets one, as with the cgroupfs driver (systemd
        // would give the scope its DefaultTasksMax).
        if !props.iter().any(|p| p.name() == "TasksMax") {
            all.push(Prop::U64("TasksMax", u64::MAX));
        }
        all.extend(props);
        start_scope(&self.unit.name, all, true)?;
        if let Some(r) = &mut fs_resources {
            round_quota(r);
            // On failure the caller destroys the cgroup (the unit with it).
            self.fs.apply(r)?;
        }
        Ok(())
    }

    /// `update`: systemd's properties first (or its next reload would undo the files), then
    /// the files.
    fn apply(&self, resources: &LinuxResources) -> Result<(), RuntimeError> {
        super::check_resources(resources)?;
        let props = properties(resources);
        if !props.is_empty() {
            let name = self.unit.name.clone();
            bus(move |b| Box::pin(async move { b.set_properties(&name, props).await }))?;
        }
        let mut r = resources.clone();
        round_quota(&mut r);
        self.fs.apply(&r)
    }

    fn add_pid(&self, pid: Pid) -> Result<(), RuntimeError> {
        self.fs.add_pid(pid)
    }

    fn freeze(&self, frozen: bool) -> Result<(), RuntimeError> {
        self.fs.freeze(frozen)
    }

    fn frozen(&self) -> bool {
        self.fs.frozen()
    }

    fn pids(&self) -> Result<Vec<Pid>, RuntimeError> {
        self.fs.pids()
    }

    fn oom_kills(&self) -> u64 {
        self.fs.oom_kills()
    }

    /// The scope's cgroup is a v2 directory like any other: its files give the statistics.
    fn stats(&self) -> super::stats::Stats {
        self.fs.stats()
    }

    fn oom_watch(&self) -> Result<Option<super::oom::OomWatch>, RuntimeError> {
        self.fs.oom_watch()
    }

    /// Kills what is left (through the cgroup: at once, and without waiting for systemd),
    /// then has systemd stop the unit and forget it (a scope whose process was killed by the
    /// kernel's OOM killer stays loaded as failed). A unit systemd has already collected is
    /// not an error; nor is a bus that cannot be reached once the cgroup is gone (the
    /// directories are then removed here, as the cgroupfs driver would).
    fn destroy(&self) -> Result<(), RuntimeError> {
        let dir = self.dir();
        if dir.exists() {
            let _ = super::write(&dir, "cgroup.freeze", "0");
            let _ = super::write(&dir, "cgroup.kill", "1");
        }
        let name = self.unit.name.clone();
        let stopped = bus(move |b| Box::pin(async move { b.stop(&name).await }));
        // What systemd left (sub-cgroups the container made: systemd before 240 left them
        // behind), or everything when systemd could not be asked.
        let removed = self.fs.destroy();
        match stopped {
            Err(e) if dir.exists() => Err(e),
            _ => removed,
        }
    }
}

/// OCI resources → systemd's properties of the same limits (runc's table for v2); the
/// device rules are left to berth's own BPF filter, which systemd leaves attached.
fn properties(r: &LinuxResources) -> Vec<Prop> {
    let mut p = Vec::new();
    let infinity = u64::MAX;
    if let Some(m) = r.memory() {
        let limit = m.limit();
        match limit {
            Some(l) if l > 0 => p.push(Prop::U64("MemoryMax", l as u64)),
            Some(l) if l < 0 => p.push(Prop::U64("MemoryMax", infinity)),
            _ => {}
        }
        if let Some(res) = m.reservation().filter(|r| *r > 0) {
            p.push(Prop::U64("MemoryLow", res as u64));
        }
        // OCI's swap is memory+swap; MemorySwapMax is the swap alone (as memory.swap.max).
        if let (Some(swap), Some(limit)) = (m.swap(), limit) {
            let v = if swap < 0 {
                infinity
            } else {
                (swap - limit.max(0)).max(0) as u64
            };
            p.push(Prop::U64("MemorySwapMax", v));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(shares) = c.shares().filter(|s| *s != 0) {
            p.push(Prop::U64("CPUWeight", super::shares_to_weight(shares)));
        }
        if c.quota().is_some() || c.period().is_some() {
            let period = c.period().filter(|p| *p > 0).unwrap_or(100_000);
            p.push(Prop::U64("CPUQuotaPeriodUSec", period));
            let per_sec = match c.quota() {
                Some(q) if q > 0 => round_up_10ms(q as u64 * 1_000_000 / period),
                _ => infinity,
            };
            p.push(Prop::U64("CPUQuotaPerSecUSec", per_sec));
        }
        if let Some(bits) = c.cpus().as_deref().and_then(cpu_bits) {
            p.push(Prop::Bytes("AllowedCPUs", bits));
        }
        if let Some(bits) = c.mems().as_deref().and_then(cpu_bits) {
            p.push(Prop::Bytes("AllowedMemoryNodes", bits));
        }
    }
    if let Some(w) = r
        .block_io()
        .as_ref()
        .and_then(|b| b.weight())
        .filter(|w| *w != 0)
    {
        p.push(Prop::U64("IOWeight", super::blkio_to_io_weight(w)));
    }
    if let Some(pids) = r.pids() {
        // systemd takes no 0: as runc, 1.
        let v = match pids.limit() {
            l if l > 0 => l as u64,
            0 => 1,
            _ => infinity,
        };
        p.push(Prop::U64("TasksMax", v));
    }
    p
}

/// systemd keeps CPUQuota as whole percents (10 ms per second): runc rounds the quota up to
/// that, and writes the rounded value to cpu.max too, so that systemd's next write agrees.
fn round_up_10ms(per_sec: u64) -> u64 {
    per_sec.div_ceil(10_000) * 10_000
}

fn round_quota(r: &mut LinuxResources) {
    let Some(cpu) = r.cpu().clone() else { return };
    let (Some(q), period) = (
        cpu.quota(),
        cpu.period().filter(|p| *p > 0).unwrap_or(100_000),
    ) else {
        return;
    };
    if q <= 0 {
        return;
    }
    let rounded = round_up_10ms(q as u64 * 1_000_000 / period) * period / 1_000_000;
    if rounded as i64 > q {
        let mut cpu = cpu;
        cpu.set_quota(Some(rounded as i64));
        r.set_cpu(Some(cpu));
    }
}

/// A cpuset list (`0-3,6`) as systemd's bit mask: bit N of byte N/8 for CPU (or node) N.
fn cpu_bits(list: &str) -> Option<Vec<u8>> {
    let mut bits = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<usize>().ok()?,
                b.trim().parse::<usize>().ok()?,
            ),
            None => {
                let n = part.parse::<usize>().ok()?;
                (n, n)
            }
        };
        if a > b || b > 8191 {
            return None;
        }
        for n in a..=b {
            if bits.len() <= n / 8 {
                bits.resize(n / 8 + 1, 0);
            }
            bits[n / 8] |= 1 << (n % 8);
        }
    }
    (!bits.is_empty()).then_some(bits)
}

/// Moves `pid` (berth's monitor) into a scope of its own, `name` in `slice`, which it shares
/// with nothing: the unit that started it can then be stopped without taking it along (as
/// Podman does for conmon). The scope goes away by itself once the process has exited.
pub fn move_to_scope(pid: Pid, slice: &str, name: &str) -> Result<(), RuntimeError> {
    let props = vec![
        Prop::Str("Description", format!("berth monitor {name}")),
        Prop::Str("Slice", slice.to_string()),
        Prop::Pids(vec![pid.as_raw() as u32]),
        Prop::Bool("DefaultDependencies", false),
    ];
    start_scope(name, props, false)
}

/// Starts the transient scope `name` and waits for systemd to have made it. A unit of that
/// name left over (failed, or not yet collected) is reset and the start tried again, once.
fn start_scope(name: &str, props: Vec<Prop>, oom_policy: bool) -> Result<(), RuntimeError> {
    let name = name.to_string();
    bus(move |b| {
        Box::pin(async move {
            let mut props = props;
            // systemd 253 reads OOMPolicy for scopes too, and its default stops the whole
            // scope when the kernel kills one process; a container's other processes live on,
            // as under the cgroupfs driver (Docker reports OOMKilled either way).
            if oom_policy && b.version().await.is_some_and(|v| v >= 253) {
                props.push(Prop::Str("OOMPolicy", "continue".into()));
            }
            match b.start_transient(&name, &props).await {
                Err(e) if e.is_unit_exists() => {
                    b.stop(&name).await?;
                    b.start_transient(&name, &props).await
                }
                other => other,
            }
        })
    })
}

/// A unit property, with the D-Bus type systemd expects for it.
#[derive(Debug, Clone)]
enum Prop {
    Str(&'static str, String),
    Bool(&'static str, bool),
    U64(&'static str, u64),
    Bytes(&'static str, Vec<u8>),
    Pids(Vec<u32>),
}

impl Prop {
    fn name(&self) -> &'static str {
        match self {
            Prop::Str(n, _) | Prop::Bool(n, _) | Prop::U64(n, _) | Prop::Bytes(n, _) => n,
            Prop::Pids(_) => "PIDs",
        }
    }

    fn value(&self) -> zbus::zvariant::Value<'_> {
        use zbus::zvariant::Value;
        match self {
            Prop::Str(_, s) => Value::from(s.as_str()),
            Prop::Bool(_, b) => Value::from(*b),
            Prop::U64(_, v) => Value::from(*v),
            Prop::Bytes(_, b) => Value::from(b.clone()),
            Prop::Pids(p) => Value::from(p.clone()),
        }
    }
}

/// How long systemd may take to carry out a job (runc waits 30 s).
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// A D-Bus error, or the job that systemd did not finish as "done".
#[derive(Debug)]
enum BusError {
    Bus(zbus::Error),
    Job { unit: String, result: String },
    Timeout(String),
}

impl BusError {
    fn is_unit_exists(&self) -> bool {
        self.error_name() == Some("org.freedesktop.systemd1.UnitExists")
    }

    fn is_no_such_unit(&self) -> bool {
        matches!(
            self.error_name(),
            Some("org.freedesktop.systemd1.NoSuchUnit" | "org.freedesktop.systemd1.LoadFailed")
        )
    }

    fn error_name(&self) -> Option<&str> {
        match self {
            BusError::Bus(zbus::Error::MethodError(name, _, _)) => Some(name.as_str()),
            _ => None,
        }
    }
}

impl From<zbus::Error> for BusError {
    fn from(e: zbus::Error) -> Self {
        BusError::Bus(e)
    }
}

impl std::fmt::Display for BusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BusError::Bus(e) => write!(f, "{e}"),
            BusError::Job { unit, result } => write!(f, "systemd's job for {unit}: {result}"),
            BusError::Timeout(unit) => {
                write!(
                    f,
                    "systemd did not finish the job for {unit} within {JOB_TIMEOUT:?}"
                )
            }
        }
    }
}

type BusFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, BusError>> + 'a>>;

/// Runs `f` with a new connection to the system bus on a runtime of this thread, and drops
/// both before returning (see the module's note on fork).
fn bus<T>(f: impl for<'a> FnOnce(&'a Bus) -> BusFuture<'a, T>) -> Result<T, RuntimeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(1)
        .build()
        .map_err(|e| RuntimeError::io("start", "the D-Bus client's runtime", e))?;
    let out = runtime.block_on(async move {
        let conn = zbus::connection::Builder::system()?
            .method_timeout(JOB_TIMEOUT)
            .build()
            .await?;
        let bus = Bus { conn };
        let out = f(&bus).await;
        let _ = bus.conn.close().await;
        out
    });
    drop(runtime);
    out.map_err(|e| RuntimeError::CgroupConfig(format!("systemd: {e}")))
}

/// The system bus, spoken to systemd's manager.
struct Bus {
    conn: zbus::Connection,
}

const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

impl Bus {
    async fn call<B>(&self, method: &str, body: &B) -> Result<zbus::Message, BusError>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        Ok(self
            .conn
            .call_method(Some(SYSTEMD), MANAGER_PATH, Some(MANAGER), method, body)
            .await?)
    }

    /// The manager's version (`252.30-1~deb12u2` → 252).
    async fn version(&self) -> Option<u32> {
        let reply = self
            .conn
            .call_method(
                Some(SYSTEMD),
                MANAGER_PATH,
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &(MANAGER, "Version"),
            )
            .await
            .ok()?;
        let v: zbus::zvariant::OwnedValue = reply.body().deserialize().ok()?;
        let s: String = v.try_into().ok()?;
        s.trim_start_matches('v')
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    }

    /// Calls `method` (which returns a job's path) and waits for the job to be removed,
    /// succeeding when its result is "done".
    async fn job<B>(&self, unit: &str, method: &str, body: &B) -> Result<(), BusError>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        use futures_util_lite::next;
        // The match goes in before the call, so that the signal cannot come first.
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .sender(SYSTEMD)?
            .path(MANAGER_PATH)?
            .interface(MANAGER)?
            .member("JobRemoved")?
            .build();
        let mut signals = zbus::MessageStream::for_match_rule(rule, &self.conn, Some(64)).await?;
        let reply = self.call(method, body).await?;
        let job: zbus::zvariant::OwnedObjectPath = reply.body().deserialize()?;
        let wait = async {
            while let Some(msg) = next(&mut signals).await {
                let Ok(msg) = msg else { continue };
                let Ok((_, path, _, result)) =
                    msg.body()
                        .deserialize::<(u32, zbus::zvariant::OwnedObjectPath, String, String)>()
                else {
                    continue;
                };
                if path == job {
                    return if result == "done" {
                        Ok(())
                    } else {
                        Err(BusError::Job {
                            unit: unit.to_string(),
                            result,
                        })
                    };
                }
            }
            Err(BusError::Timeout(unit.to_string()))
        };
        match tokio::time::timeout(JOB_TIMEOUT, wait).await {
            Ok(r) => r,
            Err(_) => Err(BusError::Timeout(unit.to_string())),
        }
    }

    async fn start_transient(&self, name: &str, props: &[Prop]) -> Result<(), BusError> {
        let props: Vec<(&str, zbus::zvariant::Value<'_>)> =
            props.iter().map(|p| (p.name(), p.value())).collect();
        let aux: Vec<(&str, Vec<(&str, zbus::zvariant::Value<'_>)>)> = Vec::new();
        let started = self
            .job(name, "StartTransientUnit", &(name, "replace", props, aux))
            .await;
        if started.is_err() {
            // A scope that failed to start stays loaded as failed; forget it.
            let _ = self.call("ResetFailedUnit", &(name,)).await;
        }
        started
    }

    async fn set_properties(&self, name: &str, props: Vec<Prop>) -> Result<(), BusError> {
        let props: Vec<(&str, zbus::zvariant::Value<'_>)> =
            props.iter().map(|p| (p.name(), p.value())).collect();
        self.call("SetUnitProperties", &(name, true, props)).await?;
        Ok(())
    }

    /// Stops the unit and resets it if it failed; a unit systemd does not know is stopped.
    async fn stop(&self, name: &str) -> Result<(), BusError> {
        match self.job(name, "StopUnit", &(name, "replace")).await {
            Ok(()) => {}
            Err(e) if e.is_no_such_unit() => {}
            // "canceled" and the like: the unit went another way, which the reset settles.
            Err(BusError::Job { .. }) => {}
            Err(e) => return Err(e),
        }
        match self.call("ResetFailedUnit", &(name,)).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_no_such_unit() => Ok(()),
            // Not failed: nothing to reset.
            Err(BusError::Bus(zbus::Error::MethodError(..))) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// `StreamExt::next` without the futures crate: the next item of a stream.
mod futures_util_lite {
    use std::future::poll_fn;
    use std::pin::Pin;

    pub async fn next<S: futures_core::Stream + Unpin>(s: &mut S) -> Option<S::Item> {
        poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_forms() {
        let u = parse(Path::new("berth.slice:berth:abc")).unwrap().unwrap();
        assert_eq!(u.name, "berth-abc.scope");
        assert_eq!(u.slice, "berth.slice");
        assert_eq!(u.path, Path::new("/berth.slice/berth-abc.scope"));
        let u = parse(Path::new(":runc:x")).unwrap().unwrap();
        assert_eq!(u.path, Path::new("/system.slice/runc-x.scope"));
        let u = parse(Path::new("a-b.slice:p:n")).unwrap().unwrap();
        assert_eq!(u.path, Path::new("/a.slice/a-b.slice/p-n.scope"));
        let u = parse(Path::new("-.slice:p:n")).unwrap().unwrap();
        assert_eq!(u.path, Path::new("/p-n.scope"));
        assert!(parse(Path::new("/berth/abc")).is_none());
        assert!(parse(Path::new("a:b")).is_none());
        assert!(parse(Path::new("bad:p:n")).unwrap().is_err());
        assert!(parse(Path::new("a--b.slice:p:n")).unwrap().is_err());
        assert!(parse(Path::new("x.slice:p:")).unwrap().is_err());
    }

    #[test]
    fn cpu_masks() {
        assert_eq!(cpu_bits("0-3"), Some(vec![0x0f]));
        assert_eq!(cpu_bits("1,8"), Some(vec![0x02, 0x01]));
        assert_eq!(cpu_bits("x"), None);
    }

    #[test]
    fn quota_rounds_to_whole_percents() {
        assert_eq!(round_up_10ms(500_000), 500_000);
        assert_eq!(round_up_10ms(333_333), 340_000);
    }
}
