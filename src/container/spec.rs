//! Builds a container's OCI runtime spec (`config.json`): the defaults in
//! `runtime-specs/` (through `policy::default_spec`), then the image config, then the flags.
//! This document is the whole contract between `container/` and `runtime/`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci_spec::runtime::{
    Capabilities, Capability, LinuxCpu, LinuxDevice, LinuxDeviceCgroup, LinuxMemory,
    LinuxNamespaceType, LinuxPids, Mount, PosixRlimit, PosixRlimitBuilder, PosixRlimitType, Root,
    Spec, User,
};
use serde_json::Value;

use super::ContainerError;
use super::devices::{self, DeviceMapping};
use super::record::{ContainerRecord, HostConfig};
use super::store::ContainerDir;
use super::user::ResolvedUser;
use crate::runtime;

/// Resource and security options that exist only to shape the spec.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SpecOptions {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub pids_limit: Option<i64>,
    pub ulimits: Vec<Ulimit>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub no_new_privileges: bool,
    /// `None`: the default profile; `Some(None)`: unconfined; `Some(Some(json))`: a profile.
    pub seccomp: Option<Option<String>>,
    pub read_only: bool,
    pub tmpfs: Vec<(String, String)>,
    /// `--cpu-shares` (0: unset).
    pub cpu_shares: u64,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// `--blkio-weight` (0: unset).
    pub blkio_weight: u16,
    pub devices: Vec<DeviceMapping>,
    /// `--cgroupns host`: no cgroup namespace (the flags decide the default by the host's
    /// cgroup version, as Docker: host on v1, private on v2).
    pub cgroupns_host: bool,
    /// The configuration's cgroup driver is systemd: the container's cgroup is a scope that
    /// systemd makes (`cgroup_path`).
    #[serde(default)]
    pub systemd_cgroup: bool,
}

impl SpecOptions {
    /// What inspect's HostConfig shows of these options.
    pub fn host_config(&self) -> HostConfig {
        // Docker's daemon keeps capabilities normalised: CAP_SYS_ADMIN for sys_admin.
        let listed = |v: &Vec<String>| {
            (!v.is_empty()).then(|| {
                v.iter()
                    .map(|c| {
                        let upper = c.to_ascii_uppercase();
                        if upper == "ALL" || upper.starts_with("CAP_") {
                            upper
                        } else {
                            format!("CAP_{upper}")
                        }
                    })
                    .collect()
            })
        };
        let memory = self.memory.unwrap_or(0);
        HostConfig {
            privileged: self.privileged,
            readonly_rootfs: self.read_only,
            cap_add: listed(&self.cap_add),
            cap_drop: listed(&self.cap_drop),
            memory,
            // As the spec gets it: twice the memory unless --memory-swap says otherwise.
            memory_swap: match (self.memory, self.memory_swap) {
                (Some(_), Some(swap)) => swap,
                (Some(m), None) => m * 2,
                (None, swap) => swap.unwrap_or(0),
            },
            nano_cpus: self.nano_cpus.unwrap_or(0),
            pids_limit: self.pids_limit,
            cpu_shares: self.cpu_shares as i64,
            cpuset_cpus: self.cpuset_cpus.clone().unwrap_or_default(),
            cpuset_mems: self.cpuset_mems.clone().unwrap_or_default(),
            blkio_weight: self.blkio_weight,
            devices: self.devices.clone(),
            cgroupns_mode: if self.cgroupns_host {
                "host"
            } else {
                "private"
            }
            .to_string(),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Ulimit {
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// The capability names berth knows, `CAP_`-prefixed, for `--cap-add ALL` and validation.
fn all_capabilities() -> Vec<String> {
    caps::all().iter().map(|c| c.to_string()).collect()
}

/// `CAP_`-prefixed and upper-case; `list` ("CapAdd" or "CapDrop") names the flag in Docker's
/// error.
fn normalise_cap(name: &str, list: &str) -> Result<String, ContainerError> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    caps::Capability::from_str(&full)
        .map(|c| c.to_string())
        .map_err(|_| {
            ContainerError::InvalidFlag(format!("invalid {list}: unknown capability: \"{full}\""))
        })
}

/// The capabilities this host lets berth hand out (`--privileged` gets all of them; this VM,
/// for one, lacks CAP_SYS_RESOURCE in its bounding set).
///
/// Read as the CapBnd mask of /proc/self/status: one read, where asking the kernel about
/// each capability (`caps::read`) is forty-one system calls on every container's creation.
fn host_capabilities() -> Vec<String> {
    let bounding = crate::sys::read_kernel_file(Path::new("/proc/self/status"))
        .ok()
        .and_then(|status| {
            let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
            u64::from_str_radix(hex.trim(), 16).ok()
        });
    match bounding {
        Some(mask) => caps::all()
            .into_iter()
            .filter(|c| c.index() < 64 && mask & (1u64 << c.index()) != 0)
            .map(|c| c.to_string())
            .collect(),
        None => caps::read(None, caps::CapSet::Bounding)
            .map(|set| set.iter().map(|c| c.to_string()).collect())
            .unwrap_or_else(|_| all_capabilities()),
    }
}

/// The container's cgroupsPath: under the cgroupfs driver `/berth/<id>`, below berth's own
/// cgroup in every hierarchy; under the systemd driver `berth.slice:berth:<id>`, runc's form
/// for the scope `berth-<id>.scope` in `berth.slice` (/sys/fs/cgroup/berth.slice/…).
pub fn cgroup_path(id: &str, systemd: bool) -> PathBuf {
    if systemd {
        PathBuf::from(format!("{}:berth:{id}", crate::config::SYSTEMD_SLICE))
    } else {
        PathBuf::from(format!("/berth/{id}"))
    }
}

/// The scope berth's monitor of container `id` is moved into under the systemd driver.
pub fn monitor_scope(id: &str) -> String {
    format!("berth-monitor-{id}.scope")
}

/// Whether a container of this network mode gets a network namespace of its own (all but
/// `--network host`, which Docker shares with the host together with its UTS namespace).
pub fn has_own_network(network_mode: &str) -> bool {
    network_mode != "host"
}

/// The files of the container's /etc that berth writes and bind-mounts.
pub const ETC_FILES: [&str; 3] = ["hostname", "hosts", "resolv.conf"];

pub fn build(
    record: &ContainerRecord,
    dir: &ContainerDir,
    user: &ResolvedUser,
    options: &SpecOptions,
    init_layer: &Path,
) -> Result<Spec, ContainerError> {
    // Edited in its typed form: a round trip through JSON values cost a third of `create`.
    let mut spec = super::policy::default_spec()?;
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        ContainerError::InvalidFlag(format!("runtime spec: {what}: {e}"))
    };

    // Process.
    let process = spec
        .process_mut()
        .as_mut()
        .ok_or_else(|| invalid("process", &"missing from the template"))?;
    let mut args = Vec::with_capacity(record.args.len() + 1);
    args.push(record.path.clone());
    args.extend(record.args.iter().cloned());
    process.set_args(Some(args));
    process.set_env(Some(record.env.clone()));
    process.set_cwd(PathBuf::from(&record.working_dir));
    process.set_terminal(Some(record.tty));
    let mut process_user = User::default();
    process_user.set_uid(user.uid);
    process_user.set_gid(user.gid);
    process_user.set_additional_gids(Some(user.additional_gids.clone()));
    process.set_user(process_user);
    process.set_no_new_privileges(Some(options.no_new_privileges));

    let default_caps: Vec<String> = process
        .capabilities()
        .as_ref()
        .and_then(|c| c.bounding().as_ref())
        .map(runtime::caps::names)
        .unwrap_or_default();
    let caps = effective_caps(&default_caps, options)?;
    let cap_set = caps
        .iter()
        .map(|name| {
            serde_json::from_value::<Capability>(Value::String(name.clone()))
                .map_err(|e| invalid(name, &e))
        })
        .collect::<Result<Capabilities, _>>()?;
    let mut capabilities = process.capabilities().clone().unwrap_or_default();
    capabilities.set_bounding(Some(cap_set.clone()));
    capabilities.set_effective(Some(cap_set.clone()));
    capabilities.set_permitted(Some(cap_set));
    process.set_capabilities(Some(capabilities));

    let mut rlimits = process.rlimits().clone().unwrap_or_default();
    for ulimit in &options.ulimits {
        let name = format!("RLIMIT_{}", ulimit.name.to_ascii_uppercase());
        let kind = serde_json::from_value::<PosixRlimitType>(Value::String(name.clone()))
            .map_err(|e| invalid(&name, &e))?;
        rlimits.retain(|r| r.typ() != kind);
        rlimits.push(rlimit(kind, ulimit.soft, ulimit.hard)?);
    }
    process.set_rlimits(Some(clamp_rlimits(rlimits)?));

    // Root file system: an overlay of the image's layers, mounted by the runtime inside the
    // container's mount namespace.
    let mut root = Root::default();
    root.set_path(dir.rootfs());
    root.set_readonly(Some(options.read_only));
    spec.set_root(Some(root));
    // Topmost first: the shared init layer (mountpoints), then the image's layers.
    let lower: Vec<String> = std::iter::once(init_layer)
        .chain(record.layers.iter().map(PathBuf::as_path))
        .map(|p| p.display().to_string())
        .collect();
    let path_text = |p: PathBuf| p.display().to_string();
    spec.set_annotations(Some(HashMap::from([
        ("org.berth.overlay.lowerdir".to_string(), lower.join(":")),
        (
            "org.berth.overlay.upperdir".to_string(),
            path_text(dir.path.join("upper")),
        ),
        (
            "org.berth.overlay.workdir".to_string(),
            path_text(dir.path.join("work")),
        ),
        ("org.berth.container.id".to_string(), record.id.clone()),
    ])));
    spec.set_hostname(Some(record.hostname.clone()));

    // Mounts: defaults, then the generated /etc files, volumes and tmpfs.
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    if options.privileged {
        for m in mounts.iter_mut() {
            let dest = m.destination().as_path();
            if (dest == Path::new("/sys") || dest == Path::new("/sys/fs/cgroup"))
                && let Some(opts) = m.options_mut()
            {
                opts.retain(|o| o != "ro");
            }
        }
    }
    let mount = |destination: PathBuf, typ: &str, source: PathBuf, opts: Vec<String>| {
        let mut m = Mount::default();
        m.set_destination(destination);
        m.set_typ(Some(typ.to_string()));
        m.set_source(Some(source));
        m.set_options(Some(opts));
        m
    };
    let strings = |opts: &[&str]| opts.iter().map(|o| o.to_string()).collect::<Vec<_>>();
    // Generated at each start in the runtime directory (see `lifecycle::write_etc_files`).
    for file in ETC_FILES {
        mounts.push(mount(
            PathBuf::from(format!("/etc/{file}")),
            "bind",
            dir.runtime_dir().join(file),
            strings(&["rbind", "rprivate"]),
        ));
    }
    for m in record.mounts.iter().filter(|m| m.kind != "tmpfs") {
        let mut opts = strings(&["rbind", "rprivate"]);
        if m.read_only {
            opts.push("ro".into());
        }
        mounts.push(mount(
            PathBuf::from(&m.destination),
            "bind",
            m.source.clone(),
            opts,
        ));
    }
    for (destination, extra) in &options.tmpfs {
        let mut opts = strings(&["nosuid", "nodev", "noexec"]);
        opts.extend(
            extra
                .split(',')
                .filter(|o| !o.is_empty())
                .map(str::to_string),
        );
        mounts.push(mount(
            PathBuf::from(destination),
            "tmpfs",
            PathBuf::from("tmpfs"),
            opts,
        ));
    }
    spec.set_mounts(Some(mounts));

    // Linux: namespaces, cgroup, resources, security.
    let seccomp = match (&options.seccomp, options.privileged) {
        (_, true) | (Some(None), _) => None,
        (Some(Some(profile)), _) => Some(super::seccomp_profile::docker_profile_to_oci(
            profile,
            &caps.iter().cloned().collect::<Vec<_>>(),
        )?),
        (None, false) => {
            if caps.iter().eq(default_caps.iter().collect::<BTreeSet<_>>()) {
                spec.linux_mut()
                    .as_mut()
                    .and_then(|l| l.seccomp_mut().take())
            } else {
                // Extra capabilities open up the syscalls Docker's profile ties to them.
                Some(super::seccomp_profile::default_seccomp(
                    &caps.iter().cloned().collect::<Vec<_>>(),
                )?)
            }
        }
    };
    let linux = spec
        .linux_mut()
        .as_mut()
        .ok_or_else(|| invalid("linux", &"missing from the template"))?;
    linux.set_seccomp(seccomp);
    linux.set_cgroups_path(Some(cgroup_path(&record.id, options.systemd_cgroup)));
    if options.cgroupns_host
        && let Some(namespaces) = linux.namespaces_mut()
    {
        // The runtime then binds the container's own cgroup directories at /sys/fs/cgroup.
        namespaces.retain(|n| n.typ() != LinuxNamespaceType::Cgroup);
    }
    if !has_own_network(&record.network_mode)
        && let Some(namespaces) = linux.namespaces_mut()
    {
        // Docker shares the host's network and UTS namespaces with --network host.
        namespaces.retain(|n| {
            !matches!(
                n.typ(),
                LinuxNamespaceType::Network | LinuxNamespaceType::Uts
            )
        });
    }
    if options.privileged {
        linux.set_masked_paths(Some(Vec::new()));
        linux.set_readonly_paths(Some(Vec::new()));
    }
    let mut resources = linux.resources().clone().unwrap_or_default();
    if let Some(memory) = options.memory {
        // Docker: without --memory-swap, swap may use as much again as memory.
        let swap = options.memory_swap.unwrap_or(memory * 2);
        let mut limits = LinuxMemory::default();
        limits.set_limit(Some(memory));
        limits.set_swap(Some(swap));
        resources.set_memory(Some(limits));
    }
    let mut cpu = resources.cpu().clone().unwrap_or_default();
    if let Some(nano) = options.nano_cpus {
        let period: i64 = 100_000;
        cpu.set_quota(Some(nano * period / 1_000_000_000));
        cpu.set_period(Some(period as u64));
    }
    if options.cpu_shares != 0 {
        cpu.set_shares(Some(options.cpu_shares));
    }
    if options.cpuset_cpus.is_some() {
        cpu.set_cpus(options.cpuset_cpus.clone());
    }
    if options.cpuset_mems.is_some() {
        cpu.set_mems(options.cpuset_mems.clone());
    }
    if cpu != LinuxCpu::default() {
        resources.set_cpu(Some(cpu));
    }
    if options.blkio_weight != 0 {
        let mut blkio = resources.block_io().clone().unwrap_or_default();
        blkio.set_weight(Some(options.blkio_weight));
        resources.set_block_io(Some(blkio));
    }
    if let Some(limit) = options.pids_limit {
        let mut pids = LinuxPids::default();
        pids.set_limit(limit);
        resources.set_pids(Some(pids));
    }
    // Devices: with --privileged every host device and a rule that allows all (Docker's),
    // then each --device with a rule for its permissions. A node listed twice keeps the
    // later entry.
    let mut nodes: Vec<LinuxDevice> = linux.devices().clone().unwrap_or_default();
    let add_node = |nodes: &mut Vec<LinuxDevice>, d: LinuxDevice| {
        nodes.retain(|n| n.path() != d.path());
        nodes.push(d);
    };
    if options.privileged {
        for d in devices::host_devices() {
            add_node(&mut nodes, d);
        }
        let mut all = LinuxDeviceCgroup::default();
        all.set_allow(true);
        all.set_access(Some("rwm".into()));
        resources.set_devices(Some(vec![all]));
    }
    let mut rules = resources.devices().clone().unwrap_or_default();
    for mapping in &options.devices {
        for (d, rule) in devices::resolve(mapping)? {
            add_node(&mut nodes, d);
            rules.extend(rule);
        }
    }
    if !rules.is_empty() || resources.devices().is_some() {
        resources.set_devices(Some(rules));
    }
    linux.set_devices(Some(nodes));
    linux.set_resources(Some(resources));
    Ok(spec)
}

/// Without CAP_SYS_RESOURCE (this VM's bounding set lacks it) a hard limit cannot be raised
/// above the current one: such limits are clamped here, once, rather than failing or warning
/// inside every container. runtime-specs/README.md says so too. (A `--ulimit` that gets clamped
/// is warned about when the flags are read: `ulimit_ceiling`.)
fn clamp_rlimits(rlimits: Vec<PosixRlimit>) -> Result<Vec<PosixRlimit>, ContainerError> {
    if can_raise_rlimits() {
        return Ok(rlimits);
    }
    rlimits
        .into_iter()
        .map(|r| match hard_limit(r.typ()) {
            Some(max) => rlimit(r.typ(), r.soft().min(max), r.hard().min(max)),
            None => Ok(r),
        })
        .collect()
}

/// The highest limit a container can get for `--ulimit NAME=…` (`nofile`, `nproc`, …): the
/// host's hard limit when berth lacks CAP_SYS_RESOURCE to raise it, else None (no ceiling, or
/// an unknown name).
pub fn ulimit_ceiling(name: &str) -> Option<u64> {
    let kind = serde_json::from_value::<PosixRlimitType>(Value::String(format!(
        "RLIMIT_{}",
        name.to_ascii_uppercase()
    )))
    .ok()?;
    if can_raise_rlimits() {
        return None;
    }
    hard_limit(kind)
}

fn can_raise_rlimits() -> bool {
    caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false)
}

/// berth's own hard limit of `kind`.
fn hard_limit(kind: PosixRlimitType) -> Option<u64> {
    let resource = rlimit_resource(kind)?;
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we pass.
    (unsafe { libc::getrlimit(resource, &mut current) } == 0).then_some(current.rlim_max)
}

fn rlimit(kind: PosixRlimitType, soft: u64, hard: u64) -> Result<PosixRlimit, ContainerError> {
    PosixRlimitBuilder::default()
        .typ(kind)
        .soft(soft)
        .hard(hard)
        .build()
        .map_err(|e| ContainerError::InvalidFlag(format!("runtime spec: {kind}: {e}")))
}

fn rlimit_resource(kind: PosixRlimitType) -> Option<crate::sys::RlimitResource> {
    Some(match kind {
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
    })
}

fn effective_caps(
    defaults: &[String],
    options: &SpecOptions,
) -> Result<BTreeSet<String>, ContainerError> {
    if options.privileged {
        return Ok(host_capabilities().into_iter().collect());
    }
    let mut set: BTreeSet<String> = defaults.iter().cloned().collect();
    for cap in &options.cap_add {
        if cap.eq_ignore_ascii_case("all") {
            set.extend(host_capabilities());
        } else {
            set.insert(normalise_cap(cap, "CapAdd")?);
        }
    }
    for cap in &options.cap_drop {
        if cap.eq_ignore_ascii_case("all") {
            set.clear();
        } else {
            set.remove(&normalise_cap(cap, "CapDrop")?);
        }
    }
    // Only what the host has can be granted.
    let host: BTreeSet<String> = host_capabilities().into_iter().collect();
    Ok(set.intersection(&host).cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(network_mode: &str) -> ContainerRecord {
        serde_json::from_value(serde_json::json!({
            "id": "c0ffee", "name": "n", "created": "", "image": "i",
            "image_id": format!("sha256:{}", "0".repeat(64)),
            "path": "sh", "args": ["-c", "true"], "hostname": "h", "user": "",
            "env": ["A=1"], "working_dir": "/w", "tty": true, "open_stdin": false,
            "auto_remove": false, "network_mode": network_mode, "stop_signal": null,
            "labels": {}, "init": false,
            "mounts": [
                {"kind": "bind", "name": "", "source": "/src", "destination": "/dst",
                 "read_only": true, "anonymous": false},
                {"kind": "tmpfs", "name": "", "source": "", "destination": "/skipped",
                 "read_only": false, "anonymous": false}
            ],
            "layers": ["/store/layers/a/diff"]
        }))
        .unwrap()
    }

    fn build_with(network_mode: &str, options: &SpecOptions) -> Spec {
        let dir = ContainerDir {
            id: "c0ffee".into(),
            path: PathBuf::from("/store/containers/c0ffee"),
        };
        let user = ResolvedUser {
            uid: 7,
            gid: 8,
            additional_gids: vec![8, 9],
            home: PathBuf::from("/home/u"),
        };
        build(
            &record(network_mode),
            &dir,
            &user,
            options,
            Path::new("/store/init"),
        )
        .unwrap()
    }

    fn mount_options(spec: &Spec, destination: &str) -> Vec<String> {
        spec.mounts()
            .iter()
            .flatten()
            .find(|m| m.destination() == Path::new(destination))
            .and_then(|m| m.options().clone())
            .unwrap_or_default()
    }

    #[test]
    fn the_record_and_flags_shape_the_template() {
        let options = SpecOptions {
            memory: Some(64 << 20),
            nano_cpus: Some(1_500_000_000),
            pids_limit: Some(20),
            ulimits: vec![Ulimit {
                name: "nproc".into(),
                soft: 10,
                hard: 20,
            }],
            cap_add: vec!["sys_admin".into()],
            cap_drop: vec!["CAP_NET_RAW".into()],
            tmpfs: vec![("/run".into(), "size=1m".into())],
            read_only: true,
            ..Default::default()
        };
        let spec = build_with("none", &options);
        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.args().as_ref().unwrap(), &["sh", "-c", "true"]);
        assert_eq!(process.cwd(), Path::new("/w"));
        assert_eq!(process.user().additional_gids().as_ref().unwrap(), &[8, 9]);
        let bounding = runtime::caps::names(
            process
                .capabilities()
                .as_ref()
                .unwrap()
                .bounding()
                .as_ref()
                .unwrap(),
        );
        assert!(bounding.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(!bounding.contains(&"CAP_NET_RAW".to_string()));
        let nproc: Vec<_> = process
            .rlimits()
            .iter()
            .flatten()
            .filter(|r| r.typ() == PosixRlimitType::RlimitNproc)
            .collect();
        assert_eq!(nproc.len(), 1);
        assert!(nproc[0].soft() <= 10 && nproc[0].hard() <= 20);
        assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
        let annotations = spec.annotations().as_ref().unwrap();
        assert_eq!(
            annotations["org.berth.overlay.lowerdir"],
            "/store/init:/store/layers/a/diff"
        );
        assert_eq!(mount_options(&spec, "/dst"), ["rbind", "rprivate", "ro"]);
        assert!(mount_options(&spec, "/skipped").is_empty());
        assert!(mount_options(&spec, "/run").contains(&"size=1m".to_string()));
        assert!(mount_options(&spec, "/sys").contains(&"ro".to_string()));
        let linux = spec.linux().as_ref().unwrap();
        let resources = linux.resources().as_ref().unwrap();
        assert_eq!(resources.memory().unwrap().swap(), Some(128 << 20));
        assert_eq!(resources.cpu().as_ref().unwrap().quota(), Some(150_000));
        assert_eq!(resources.pids().unwrap().limit(), 20);
        // --cap-add SYS_ADMIN opens the syscalls Docker's profile ties to it.
        let names: Vec<&String> = linux
            .seccomp()
            .as_ref()
            .unwrap()
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|s| s.names())
            .collect();
        assert!(names.iter().any(|n| *n == "mount"));
        assert_eq!(linux.namespaces().as_ref().unwrap().len(), 6);
    }

    #[test]
    fn cgroup_and_device_flags_shape_resources_and_namespaces() {
        let options = SpecOptions {
            cpu_shares: 512,
            cpuset_cpus: Some("0".into()),
            cpuset_mems: Some("0".into()),
            blkio_weight: 300,
            nano_cpus: Some(500_000_000),
            devices: vec![DeviceMapping {
                path_on_host: "/dev/null".into(),
                path_in_container: "/dev/mynull".into(),
                cgroup_permissions: "r".into(),
            }],
            cgroupns_host: true,
            ..Default::default()
        };
        let spec = build_with("none", &options);
        let linux = spec.linux().as_ref().unwrap();
        assert!(
            linux
                .namespaces()
                .as_ref()
                .unwrap()
                .iter()
                .all(|n| n.typ() != LinuxNamespaceType::Cgroup)
        );
        let resources = linux.resources().as_ref().unwrap();
        let cpu = resources.cpu().as_ref().unwrap();
        assert_eq!(cpu.shares(), Some(512));
        assert_eq!(cpu.quota(), Some(50_000));
        assert_eq!(cpu.cpus().as_deref(), Some("0"));
        assert_eq!(cpu.mems().as_deref(), Some("0"));
        assert_eq!(resources.block_io().as_ref().unwrap().weight(), Some(300));
        let node = linux
            .devices()
            .iter()
            .flatten()
            .find(|d| d.path() == Path::new("/dev/mynull"))
            .unwrap();
        assert_eq!((node.major(), node.minor()), (1, 3));
        // After the default rules, so it wins; only read.
        let last = resources.devices().as_ref().unwrap().last().unwrap();
        assert!(last.allow() && last.access().as_deref() == Some("r"));
        assert_eq!((last.major(), last.minor()), (Some(1), Some(3)));
        // The default: a cgroup namespace of its own.
        let spec = build_with("none", &SpecOptions::default());
        let namespaces = spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
        assert!(
            namespaces
                .iter()
                .any(|n| n.typ() == LinuxNamespaceType::Cgroup)
        );
    }

    #[test]
    fn host_capabilities_are_the_bounding_set() {
        let mut from_status = host_capabilities();
        from_status.sort();
        let mut asked: Vec<String> = caps::read(None, caps::CapSet::Bounding)
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        asked.sort();
        assert_eq!(from_status, asked);
    }

    #[test]
    fn privileged_and_host_network_drop_confinement() {
        let options = SpecOptions {
            privileged: true,
            ..Default::default()
        };
        let spec = build_with("host", &options);
        assert!(!mount_options(&spec, "/sys").contains(&"ro".to_string()));
        assert!(!mount_options(&spec, "/sys/fs/cgroup").contains(&"ro".to_string()));
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_none());
        assert!(linux.masked_paths().as_ref().unwrap().is_empty());
        let devices = linux
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .as_ref()
            .unwrap();
        assert!(devices.len() == 1 && devices[0].allow());
        assert!(
            linux
                .namespaces()
                .as_ref()
                .unwrap()
                .iter()
                .all(|n| !matches!(
                    n.typ(),
                    LinuxNamespaceType::Network | LinuxNamespaceType::Uts
                ))
        );
    }
}
