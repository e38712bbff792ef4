//! `create`: resolve the image, claim a name, lay out the container's directory (overlay
//! upper/work dirs, generated /etc files, volumes) and write its record and runtime spec. A
//! container directory appears under its ID only once complete.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::record::{ContainerRecord, MountRecord};
use super::spec::{self, SpecOptions};
use super::store::{ContainerDir, ContainerStore};
use super::{ContainerError, names};
use crate::image::config::ImageConfig;
use crate::image::digest::Digest;
use crate::image::store::Store;
use crate::sys;

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything `create`/`run` was asked for, already parsed.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The container's ID when the caller chose it ahead (`run` makes the container's cgroup
    /// while its monitor creates the container); a random one otherwise.
    pub id: Option<String>,
    /// The image as typed, and the ID it resolved to.
    pub image: String,
    pub image_id: Option<Digest>,
    pub name: Option<String>,
    pub command: Vec<String>,
    /// `Some("")` clears the image's entrypoint, as in Docker.
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub volumes: Vec<String>,
    pub tty: bool,
    pub interactive: bool,
    pub auto_remove: bool,
    pub network: String,
    /// Ports and DNS flags; `exposed` is completed with the image's `ExposedPorts` at create.
    pub net: crate::network::NetworkOptions,
    pub init: bool,
    pub labels: BTreeMap<String, String>,
    pub spec: SpecOptions,
    /// The logging driver and options, checked and merged with the configuration's.
    pub log_config: super::log_opts::LogConfig,
}

/// A new container ID: 64 random hex digits.
pub fn new_id() -> Result<String, ContainerError> {
    sys::random_hex_id().map_err(|source| ContainerError::Io {
        path: PathBuf::from("/dev/urandom"),
        source,
    })
}

pub struct Created {
    pub dir: ContainerDir,
    pub record: ContainerRecord,
    /// The runtime spec just written to `config.json`, so `run` need not read it back.
    pub spec: oci_spec::runtime::Spec,
}

pub fn create(
    images: &Store,
    containers: &ContainerStore,
    options: &CreateOptions,
) -> Result<Created, ContainerError> {
    let image_id = options
        .image_id
        .clone()
        .ok_or_else(|| ContainerError::NoSuchImage(options.image.clone()))?;
    let image_record = images
        .image(&image_id)?
        .ok_or_else(|| ContainerError::NoSuchImage(options.image.clone()))?;
    let image_config = ImageConfig::load(images, &image_id)?.config;

    // Command: --entrypoint replaces the image's entrypoint and drops its CMD (Docker's rule).
    let entrypoint: Vec<String> = match &options.entrypoint {
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) => vec![e.clone()],
        None => image_config.entrypoint.clone().unwrap_or_default(),
    };
    let cmd: Vec<String> = if !options.command.is_empty() {
        options.command.clone()
    } else if options.entrypoint.is_some() {
        Vec::new()
    } else {
        image_config.cmd.clone().unwrap_or_default()
    };
    let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let (config_entrypoint, config_cmd) = (non_empty(&entrypoint), non_empty(&cmd));
    let mut argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        return Err(ContainerError::NoCommand);
    }
    let path = argv.remove(0);

    let id = match &options.id {
        Some(id) => id.clone(),
        None => new_id()?,
    };
    let hostname = options
        .hostname
        .clone()
        .unwrap_or_else(|| id[..12].to_string());
    let user = options
        .user
        .clone()
        .or(image_config.user.clone())
        .unwrap_or_default();
    // Topmost first. A layer can appear twice in an image (committing an unchanged
    // container adds the empty layer again), but overlayfs refuses the same directory twice
    // in lowerdir (ELOOP): only its topmost occurrence is kept, which gives the same tree, as
    // everything a lower copy provides the upper one provides again above it.
    let mut layers: Vec<PathBuf> = Vec::with_capacity(image_record.layers.len());
    for l in image_record.layers.iter().rev() {
        let dir = images.layer_diff(&l.diff_id);
        if !layers.contains(&dir) {
            layers.push(dir);
        }
    }
    let resolved =
        super::user::resolve_user_in_layers(&layers, if user.is_empty() { "0" } else { &user })?;

    let mut env = merge_env(image_config.env.as_deref().unwrap_or(&[]), &options.env);
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.insert(1.min(env.len()), format!("HOSTNAME={hostname}"));
    }
    if options.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", resolved.home.display()));
    }
    let working_dir = options
        .working_dir
        .clone()
        .or(image_config.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    if !working_dir.starts_with('/') {
        return Err(ContainerError::InvalidFlag(format!(
            "the working directory '{working_dir}' is invalid, it needs to be an absolute path"
        )));
    }

    let store_root = images.root();
    let mut mounts = Vec::new();
    for spec in &options.volumes {
        mounts.push(parse_volume(store_root, spec)?);
    }
    for path in image_config.volumes.iter().flat_map(|v| v.keys()) {
        if mounts.iter().any(|m: &MountRecord| &m.destination == path) {
            continue;
        }
        let name = sys::random_hex_id().map_err(|source| ContainerError::Io {
            path: PathBuf::from("/dev/urandom"),
            source,
        })?;
        mounts.push(MountRecord {
            kind: "volume".into(),
            source: volume_data(store_root, &name),
            name,
            destination: path.clone(),
            read_only: false,
            anonymous: true,
        });
    }

    let mut net = options.net.clone();
    for port in image_config.exposed_ports.iter().flat_map(|p| p.keys()) {
        let port = if port.contains('/') {
            port.clone()
        } else {
            format!("{port}/tcp")
        };
        if !net.exposed.contains(&port) {
            net.exposed.push(port);
        }
    }
    for p in &net.publish {
        let port = format!("{}/{}", p.container_port, p.proto);
        if !net.exposed.contains(&port) {
            net.exposed.push(port);
        }
    }
    if options.network != "bridge" {
        // Docker ignores published ports without a bridge.
        net.publish.clear();
        net.publish_all = false;
    }

    let mut labels = image_config.labels.clone().unwrap_or_default();
    labels.extend(options.labels.clone());
    let record = ContainerRecord {
        id: id.clone(),
        name: String::new(),
        created: crate::time::Timestamp::now().rfc3339_nano(),
        image: options.image.clone(),
        image_id,
        path,
        args: argv,
        entrypoint: config_entrypoint,
        cmd: config_cmd,
        hostname: hostname.clone(),
        user,
        env,
        working_dir,
        tty: options.tty,
        open_stdin: options.interactive,
        auto_remove: options.auto_remove,
        network_mode: options.network.clone(),
        stop_signal: image_config.stop_signal.clone(),
        labels,
        init: options.init,
        mounts,
        layers,
        net,
        log_config: options.log_config.clone(),
        host_config: options.spec.host_config(),
    };

    let init_layer = ensure_init_layer(images)?;
    // Everything is built under a temporary name in the store's tmp/ (which every command
    // sweeps of abandoned work), then renamed to the ID under the store lock together with
    // the name check, so no half container is ever listed. Not among the containers: finding
    // what a crash left there would take reading the whole store's directory on every
    // command.
    let work = ContainerDir {
        id: id.clone(),
        path: images.root().join("tmp").join(sys::temp_name(&id)),
    };
    let dir = containers.dir_of(&id);
    let spec = match lay_out(&work, &dir, &record, &resolved, options, &init_layer) {
        Ok(spec) => spec,
        Err(e) => {
            let _ = sys::remove_tree(&work.path);
            return Err(e);
        }
    };
    let _lock = containers.lock()?;
    // The image store lock too (after the containers lock; nothing takes them the other way
    // round), until the container is named: `rmi`/`image prune` delete layers under it, after
    // listing the containers that use them. Without it an image removed since it was resolved
    // above took its layers from under this container, which then never started ("mount
    // overlay: No such file or directory"). Once named, the container is seen and its layers
    // are kept. Held without sweeping (`hold`): nothing on run's path scans the store.
    let _images_lock = images.hold()?;
    if !crate::image::remove::layers_present(images, &image_record.layers) {
        let _ = sys::remove_tree(&work.path);
        return Err(ContainerError::NoSuchImage(options.image.clone()));
    }
    let mut record = record;
    record.name = match &options.name {
        Some(name) => {
            if let Err(e) = names::check(name) {
                let _ = sys::remove_tree(&work.path);
                return Err(e);
            }
            if let Some(owner) = containers.name_owner(name)? {
                let _ = sys::remove_tree(&work.path);
                return Err(ContainerError::NameConflict {
                    name: name.clone(),
                    id: owner,
                });
            }
            name.clone()
        }
        None => {
            let seed = u64::from_str_radix(&id[..16], 16).unwrap_or(0) ^ std::process::id() as u64;
            let mut failed = None;
            let mut attempt = 0u64;
            let picked = names::pick_free(
                seed,
                |candidate| match containers.name_owner(candidate) {
                    Ok(owner) => owner.is_some(),
                    Err(e) => {
                        failed.get_or_insert(e);
                        false
                    }
                },
                || {
                    sys::random_hex_id()
                        .ok()
                        .and_then(|h| u64::from_str_radix(&h[..16], 16).ok())
                        .unwrap_or_else(|| {
                            // No /dev/urandom: still a different draw each attempt.
                            attempt += 1;
                            seed ^ attempt.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                        })
                },
            );
            if let Some(e) = failed {
                let _ = sys::remove_tree(&work.path);
                return Err(e);
            }
            match picked {
                Some(name) => name,
                None => {
                    let _ = sys::remove_tree(&work.path);
                    return Err(ContainerError::InvalidFlag(
                        "no free generated container name after 1000 attempts: give one with --name"
                            .into(),
                    ));
                }
            }
        }
    };
    let finish = (|| {
        let bytes = serde_json::to_vec_pretty(&record).expect("container record serialises");
        write_private(&work.record_path(), &bytes)?;
        containers.claim_name(&record.name, &id)?;
        fs::rename(&work.path, &dir.path).map_err(|source| ContainerError::Io {
            path: dir.path.clone(),
            source,
        })
    })();
    if let Err(e) = finish {
        let _ = containers.release_name(&record.name, &id);
        let _ = sys::remove_tree(&work.path);
        return Err(e);
    }
    Ok(Created { dir, record, spec })
}

/// Lays out the container's files in `dir`, a directory of its own that is renamed to
/// `final_dir` once complete.
fn lay_out(
    dir: &ContainerDir,
    final_dir: &ContainerDir,
    record: &ContainerRecord,
    user: &super::user::ResolvedUser,
    options: &CreateOptions,
    init_layer: &Path,
) -> Result<oci_spec::runtime::Spec, ContainerError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ContainerError::Io { path, source }
    };
    for sub in ["", "upper", "work", "merged"] {
        let p = dir.path.join(sub);
        fs::create_dir(&p).map_err(io(&p))?;
    }
    for mount in &record.mounts {
        if mount.kind == "volume" {
            fs::create_dir_all(&mount.source).map_err(io(&mount.source))?;
        }
    }
    // The spec is written with the final directory path.
    let spec = spec::build(record, final_dir, user, &options.spec, init_layer)?;
    // Compact, as containerd writes it: a third of the pretty form's bytes.
    let bytes = serde_json::to_vec(&spec).expect("spec serialises");
    write_private(&dir.spec_path(), &bytes)?;
    Ok(spec)
}

/// Writes a new file into the container's directory while it is still private (it is
/// renamed into place whole): no temp file and rename needed.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ContainerError> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|source| ContainerError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// The mountpoints the runtime needs in every container (`/etc/hostname`, `/etc/hosts`,
/// `/etc/resolv.conf`, `/proc`, `/sys`, `/dev`), as one read-only layer shared by all
/// containers and placed above the image's layers, like Docker's per-container init layer.
/// Without it each start would create them in the container's upper directory: four new
/// inodes and a copy-up of `/etc` per container. Built once per store, atomically; the name
/// carries a version, so a berth that lays it out differently builds its own.
pub fn ensure_init_layer(images: &Store) -> Result<PathBuf, ContainerError> {
    let layer = images.root().join("init-layer-v1");
    if layer.is_dir() {
        return Ok(layer);
    }
    // Removed on drop: whatever fails, or loses the race, leaves nothing behind.
    let work = images.temp_dir("init-layer")?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ContainerError::Io { path, source }
    };
    for d in ["", "etc", "proc", "sys", "dev"] {
        let p = work.path().join(d);
        fs::create_dir_all(&p).map_err(io(&p))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).map_err(io(&p))?;
    }
    for f in ["etc/hostname", "etc/hosts", "etc/resolv.conf"] {
        let p = work.path().join(f);
        fs::write(&p, b"").map_err(io(&p))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).map_err(io(&p))?;
    }
    match fs::rename(work.path(), &layer) {
        Ok(()) => Ok(layer),
        // Another berth built it first.
        Err(_) if layer.is_dir() => Ok(layer),
        Err(e) => Err(io(&layer)(e)),
    }
}

/// Later `-e` entries override the image's by key; `-e KEY` takes the value from berth's own
/// environment (and is dropped when unset there), as in Docker.
fn merge_env(image: &[String], flags: &[String]) -> Vec<String> {
    let mut env: Vec<String> = image.to_vec();
    for flag in flags {
        let entry = if flag.contains('=') {
            flag.clone()
        } else {
            match std::env::var(flag) {
                Ok(v) => format!("{flag}={v}"),
                Err(_) => continue,
            }
        };
        let key = entry.split('=').next().unwrap_or("").to_string();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(entry);
    }
    env
}

pub fn volume_data(store_root: &Path, name: &str) -> PathBuf {
    store_root.join("volumes").join(name).join("_data")
}

/// `-v /host:/ctr[:ro|rw]` (bind) or `-v name:/ctr[:ro]` (named volume) or `-v /ctr`
/// (anonymous volume).
pub(crate) fn parse_volume(store_root: &Path, spec: &str) -> Result<MountRecord, ContainerError> {
    let invalid = || ContainerError::InvalidFlag(format!("invalid volume specification: '{spec}'"));
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, destination, mode) = match parts.as_slice() {
        [dest] => ("", *dest, ""),
        [src, dest] => (*src, *dest, ""),
        [src, dest, mode] => (*src, *dest, *mode),
        _ => return Err(invalid()),
    };
    let read_only = match mode {
        "" | "rw" => false,
        "ro" => true,
        _ => return Err(invalid()),
    };
    if !destination.starts_with('/') || destination == "/" {
        return Err(ContainerError::InvalidFlag(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"volume\": invalid mount path: '{destination}' mount path must be absolute"
        )));
    }
    if source.is_empty() {
        let name = sys::random_hex_id().map_err(|source| ContainerError::Io {
            path: PathBuf::from("/dev/urandom"),
            source,
        })?;
        return Ok(MountRecord {
            kind: "volume".into(),
            source: volume_data(store_root, &name),
            name,
            destination: destination.into(),
            read_only,
            anonymous: true,
        });
    }
    if source.starts_with('/') {
        let path = PathBuf::from(source);
        if !path.exists() {
            return Err(ContainerError::InvalidFlag(format!(
                "invalid mount config for type \"bind\": bind source path does not exist: {source}"
            )));
        }
        return Ok(MountRecord {
            kind: "bind".into(),
            name: String::new(),
            source: path,
            destination: destination.into(),
            read_only,
            anonymous: false,
        });
    }
    if !names::is_valid(source) {
        return Err(ContainerError::InvalidFlag(format!(
            "{source} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    Ok(MountRecord {
        kind: "volume".into(),
        name: source.into(),
        source: volume_data(store_root, source),
        destination: destination.into(),
        read_only,
        anonymous: false,
    })
}
