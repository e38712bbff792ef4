//! Builds a container's OCI runtime spec (`config.json`): the defaults in
//! `runtime-specs/` (through `runtime::default_spec`), then the image config, then the flags.
//! This document is the whole contract between `container/` and `runtime/`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci_spec::runtime::Spec;
use serde_json::{Value, json};

use super::ContainerError;
use super::record::ContainerRecord;
use super::store::ContainerDir;
use crate::runtime::{self, ResolvedUser};

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

fn normalise_cap(name: &str) -> Result<String, ContainerError> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    caps::Capability::from_str(&full)
        .map(|c| c.to_string())
        .map_err(|_| ContainerError::InvalidFlag(format!("invalid capability: {name}")))
}

/// The capabilities this host lets berth hand out (`--privileged` gets all of them; this VM,
/// for one, lacks CAP_SYS_RESOURCE in its bounding set).
fn host_capabilities() -> Vec<String> {
    caps::read(None, caps::CapSet::Bounding)
        .map(|set| set.iter().map(|c| c.to_string()).collect())
        .unwrap_or_else(|_| all_capabilities())
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
    let mut template = runtime::default_spec()?;
    // The seccomp section (hundreds of syscall names) stays typed: only the rest of the
    // template goes through JSON values to be edited.
    let default_profile = template
        .linux_mut()
        .as_mut()
        .and_then(|l| l.seccomp_mut().take());
    let mut spec = serde_json::to_value(&template).expect("spec serialises");

    // Process.
    let process = &mut spec["process"];
    let mut args = vec![record.path.clone()];
    args.extend(record.args.iter().cloned());
    process["args"] = json!(args);
    process["env"] = json!(record.env);
    process["cwd"] = json!(record.working_dir);
    process["terminal"] = json!(record.tty);
    process["user"] = json!({
        "uid": user.uid,
        "gid": user.gid,
        "additionalGids": user.additional_gids,
    });
    process["noNewPrivileges"] = json!(options.no_new_privileges);

    let default_caps: Vec<String> = process["capabilities"]["bounding"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let caps = effective_caps(&default_caps, options)?;
    let cap_json = json!(caps.iter().collect::<Vec<_>>());
    for set in ["bounding", "effective", "permitted"] {
        process["capabilities"][set] = cap_json.clone();
    }

    let mut rlimits: Vec<Value> = process["rlimits"].as_array().cloned().unwrap_or_default();
    for ulimit in &options.ulimits {
        let kind = format!("RLIMIT_{}", ulimit.name.to_ascii_uppercase());
        rlimits.retain(|r| r["type"] != json!(kind));
        rlimits.push(json!({"type": kind, "soft": ulimit.soft, "hard": ulimit.hard}));
    }
    clamp_rlimits(&mut rlimits);
    process["rlimits"] = json!(rlimits);

    // Root file system: an overlay of the image's layers, mounted by the runtime inside the
    // container's mount namespace.
    spec["root"] = json!({"path": dir.rootfs(), "readonly": options.read_only});
    // Topmost first: the shared init layer (mountpoints), then the image's layers.
    let lower: Vec<String> = std::iter::once(init_layer)
        .chain(record.layers.iter().map(PathBuf::as_path))
        .map(|p| p.display().to_string())
        .collect();
    spec["annotations"] = json!({
        "org.berth.overlay.lowerdir": lower.join(":"),
        "org.berth.overlay.upperdir": dir.path.join("upper"),
        "org.berth.overlay.workdir": dir.path.join("work"),
        "org.berth.container.id": record.id,
    });
    spec["hostname"] = json!(record.hostname);

    // Mounts: defaults, then the generated /etc files, volumes and tmpfs.
    let mut mounts: Vec<Value> = spec["mounts"].as_array().cloned().unwrap_or_default();
    if options.privileged {
        for m in mounts.iter_mut() {
            if m["destination"] == json!("/sys") || m["destination"] == json!("/sys/fs/cgroup") {
                let opts: Vec<Value> = m["options"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|o| o != "ro")
                    .collect();
                m["options"] = json!(opts);
            }
        }
    }
    // Generated at each start in the runtime directory (see `lifecycle::write_etc_files`).
    for file in ETC_FILES {
        mounts.push(json!({
            "destination": format!("/etc/{file}"),
            "type": "bind",
            "source": dir.runtime_dir().join(file),
            "options": ["rbind", "rprivate"],
        }));
    }
    for mount in &record.mounts {
        let mut opts = vec!["rbind", "rprivate"];
        if mount.read_only {
            opts.push("ro");
        }
        if mount.kind == "tmpfs" {
            continue;
        }
        mounts.push(json!({
            "destination": mount.destination,
            "type": "bind",
            "source": mount.source,
            "options": opts,
        }));
    }
    for (destination, extra) in &options.tmpfs {
        let mut opts: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
        opts.extend(
            extra
                .split(',')
                .filter(|o| !o.is_empty())
                .map(str::to_string),
        );
        mounts.push(json!({
            "destination": destination,
            "type": "tmpfs",
            "source": "tmpfs",
            "options": opts,
        }));
    }
    spec["mounts"] = json!(mounts);

    // Linux: namespaces, cgroup, resources, security.
    let linux = &mut spec["linux"];
    linux["cgroupsPath"] = json!(format!("/berth/{}", record.id));
    if record.network_mode == "host" {
        // Docker shares the host's network and UTS namespaces with --network host.
        let namespaces: Vec<Value> = linux["namespaces"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n["type"] != json!("network") && n["type"] != json!("uts"))
            .collect();
        linux["namespaces"] = json!(namespaces);
    }
    if options.privileged {
        linux["maskedPaths"] = json!([]);
        linux["readonlyPaths"] = json!([]);
    }
    let resources = &mut linux["resources"];
    if let Some(memory) = options.memory {
        // Docker: without --memory-swap, swap may use as much again as memory.
        let swap = options.memory_swap.unwrap_or(memory * 2);
        resources["memory"] = json!({"limit": memory, "swap": swap});
    }
    if let Some(nano) = options.nano_cpus {
        let period: i64 = 100_000;
        resources["cpu"] = json!({"quota": nano * period / 1_000_000_000, "period": period});
    }
    if let Some(pids) = options.pids_limit {
        resources["pids"] = json!({"limit": pids});
    }
    if options.privileged {
        resources["devices"] = json!([{"allow": true, "access": "rwm"}]);
    }
    let seccomp = match (&options.seccomp, options.privileged) {
        (_, true) | (Some(None), _) => None,
        (Some(Some(profile)), _) => Some(runtime::docker_profile_to_oci(
            profile,
            &caps.iter().cloned().collect::<Vec<_>>(),
        )?),
        (None, false) => {
            if caps.iter().eq(default_caps.iter().collect::<BTreeSet<_>>()) {
                default_profile
            } else {
                // Extra capabilities open up the syscalls Docker's profile ties to them.
                Some(runtime::default_seccomp(
                    &caps.iter().cloned().collect::<Vec<_>>(),
                )?)
            }
        }
    };

    let mut spec: Spec = serde_json::from_value(spec)
        .map_err(|e| ContainerError::InvalidFlag(format!("runtime spec: {e}")))?;
    if let Some(linux) = spec.linux_mut() {
        linux.set_seccomp(seccomp);
    }
    Ok(spec)
}

/// Without CAP_SYS_RESOURCE (this VM's bounding set lacks it) a hard limit cannot be raised
/// above the current one: such limits are clamped here, once, rather than failing or warning
/// inside every container. runtime-specs/README.md says so too.
fn clamp_rlimits(rlimits: &mut [Value]) {
    let can_raise = caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false);
    if can_raise {
        return;
    }
    for r in rlimits.iter_mut() {
        let Some(resource) = r["type"].as_str().and_then(rlimit_resource) else {
            continue;
        };
        let mut current = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit fills the struct we pass.
        if unsafe { libc::getrlimit(resource, &mut current) } != 0 {
            continue;
        }
        let max = current.rlim_max;
        for key in ["hard", "soft"] {
            if r[key].as_u64().is_some_and(|v| v > max) {
                r[key] = json!(max);
            }
        }
    }
}

fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        _ => return None,
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
            set.insert(normalise_cap(cap)?);
        }
    }
    for cap in &options.cap_drop {
        if cap.eq_ignore_ascii_case("all") {
            set.clear();
        } else {
            set.remove(&normalise_cap(cap)?);
        }
    }
    // Only what the host has can be granted.
    let host: BTreeSet<String> = host_capabilities().into_iter().collect();
    Ok(set.intersection(&host).cloned().collect())
}
