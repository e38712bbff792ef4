//! Host devices in a container: `--device HOST[:CONTAINER][:PERMISSIONS]` and the whole of
//! the host's /dev for `--privileged`, as Docker finds them (runc's `DeviceFromPath` and
//! `HostDevices`), turned into the spec's `linux.devices` and device-cgroup rules.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};
use serde::{Deserialize, Serialize};

/// One `--device`, as Docker's HostConfig.Devices shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

/// A device that could not be added, in the words of Docker's daemon, which finds devices
/// as it builds the spec (a missing one exits 127 through Docker's client, which reads "no
/// such file or directory" as a missing command).
#[derive(Debug, thiserror::Error)]
#[error(
    "Error response from daemon: error gathering device information while adding custom device \"{path}\": {reason}"
)]
pub struct DeviceError {
    pub path: String,
    pub reason: String,
    pub not_found: bool,
}

/// `r`, `w` and `m`, each at most once.
fn valid_mode(mode: &str) -> bool {
    let mut seen = [false; 3];
    !mode.is_empty()
        && mode.chars().all(|c| {
            let i = match c {
                'r' => 0,
                'w' => 1,
                'm' => 2,
                _ => return false,
            };
            !std::mem::replace(&mut seen[i], true)
        })
}

/// Docker's client-side checks and split of a `--device` value: `HOST`, `HOST:CONTAINER`,
/// `HOST:PERMISSIONS` or `HOST:CONTAINER:PERMISSIONS`. The error is Docker's message.
pub fn parse(value: &str) -> Result<DeviceMapping, String> {
    let parts: Vec<&str> = value.split(':').collect();
    if parts.len() > 3 || parts[0].is_empty() {
        return Err(format!("bad format for path: {value}"));
    }
    let (host, container, permissions) = match parts[..] {
        [host] => (host, host, "rwm"),
        [host, mode] if valid_mode(mode) => (host, host, mode),
        [host, container] => (host, container, "rwm"),
        [host, container, mode] => {
            if !valid_mode(mode) {
                return Err(format!("bad mode specified: {mode}"));
            }
            (host, container, mode)
        }
        _ => return Err(format!("bad format for path: {value}")),
    };
    if !container.starts_with('/') {
        return Err(format!("{container} is not an absolute path"));
    }
    Ok(DeviceMapping {
        path_on_host: host.to_string(),
        path_in_container: container.to_string(),
        cgroup_permissions: permissions.to_string(),
    })
}

/// A Go-style error text ("no such file or directory"), as Docker's messages carry.
fn go_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The node at `path` (not following a final symlink) as a spec device placed at `at`:
/// its type, numbers, mode and owner. `None` for anything that is not a device node.
fn device_at(path: &Path, at: &Path) -> std::io::Result<Option<LinuxDevice>> {
    let meta = std::fs::symlink_metadata(path)?;
    let ft = meta.file_type();
    let typ = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else if ft.is_fifo() {
        LinuxDeviceType::P
    } else {
        return Ok(None);
    };
    let rdev = meta.rdev() as libc::dev_t;
    let mut d = LinuxDevice::default();
    d.set_path(at.to_path_buf());
    d.set_typ(typ);
    d.set_major(i64::from(libc::major(rdev)));
    d.set_minor(i64::from(libc::minor(rdev)));
    d.set_file_mode(Some(meta.mode() & 0o7777));
    d.set_uid(Some(meta.uid()));
    d.set_gid(Some(meta.gid()));
    Ok(Some(d))
}

/// The device-cgroup rule that lets the container use `d` with `permissions` (a FIFO needs
/// none: the device cgroup governs block and character devices only).
fn rule(d: &LinuxDevice, permissions: &str) -> Option<LinuxDeviceCgroup> {
    if d.typ() == LinuxDeviceType::P {
        return None;
    }
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(true);
    r.set_typ(Some(d.typ()));
    r.set_major(Some(d.major()));
    r.set_minor(Some(d.minor()));
    r.set_access(Some(permissions.to_string()));
    Some(r)
}

/// The devices of one `--device`, with their cgroup rules: the node itself (a symlink is
/// followed, as Docker follows `/dev/disk/by-id/…`), or every device under a directory,
/// placed under the container path.
pub fn resolve(
    m: &DeviceMapping,
) -> Result<Vec<(LinuxDevice, Option<LinuxDeviceCgroup>)>, DeviceError> {
    let fail = |reason: String, not_found: bool| DeviceError {
        path: m.path_on_host.clone(),
        reason,
        not_found,
    };
    let mut host = PathBuf::from(&m.path_on_host);
    if std::fs::symlink_metadata(&host).is_ok_and(|meta| meta.file_type().is_symlink())
        && let Ok(target) = std::fs::canonicalize(&host)
    {
        host = target;
    }
    let container = Path::new(&m.path_in_container);
    match device_at(&host, container) {
        Ok(Some(d)) => {
            let r = rule(&d, &m.cgroup_permissions);
            return Ok(vec![(d, r)]);
        }
        Ok(None) => {}
        Err(e) => {
            return Err(fail(go_error(&e), e.kind() == std::io::ErrorKind::NotFound));
        }
    }
    let mut found = Vec::new();
    if host.is_dir() {
        walk(&host, &mut |path| {
            let Ok(rel) = path.strip_prefix(&host) else {
                return;
            };
            if let Ok(Some(d)) = device_at(path, &container.join(rel)) {
                let r = rule(&d, &m.cgroup_permissions);
                found.push((d, r));
            }
        });
    }
    if found.is_empty() {
        return Err(fail("not a device node".into(), false));
    }
    Ok(found)
}

/// Calls `f` on every entry below `dir`, depth first in name order, without following
/// symlinks.
fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        f(&path);
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&path, f);
        }
    }
}

/// Every device node under the host's /dev, for `--privileged` (runc's `HostDevices`): the
/// pty, shm, fd and mqueue directories and the console are left out, as are symlinks and
/// FIFOs; so is /dev/ptmx, which the runtime links to the container's own devpts.
pub fn host_devices() -> Vec<LinuxDevice> {
    let mut out = Vec::new();
    collect_host(Path::new("/dev"), &mut out);
    out
}

fn collect_host(dir: &Path, out: &mut Vec<LinuxDevice>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let path = e.path();
        let Ok(ft) = e.file_type() else {
            continue;
        };
        if ft.is_dir() {
            if !matches!(
                name.to_str(),
                Some("pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev")
            ) {
                collect_host(&path, out);
            }
            continue;
        }
        if name == "console" || path == Path::new("/dev/ptmx") {
            continue;
        }
        if let Ok(Some(d)) = device_at(&path, &path)
            && d.typ() != LinuxDeviceType::P
        {
            out.push(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(host: &str, container: &str, perms: &str) -> DeviceMapping {
        DeviceMapping {
            path_on_host: host.into(),
            path_in_container: container.into(),
            cgroup_permissions: perms.into(),
        }
    }

    #[test]
    fn device_flags_parse_as_dockers_client_does() {
        assert_eq!(
            parse("/dev/null"),
            Ok(mapping("/dev/null", "/dev/null", "rwm"))
        );
        assert_eq!(
            parse("/dev/null:r"),
            Ok(mapping("/dev/null", "/dev/null", "r"))
        );
        assert_eq!(
            parse("/dev/null:/dev/n"),
            Ok(mapping("/dev/null", "/dev/n", "rwm"))
        );
        assert_eq!(
            parse("/dev/null:/dev/n:mw"),
            Ok(mapping("/dev/null", "/dev/n", "mw"))
        );
        assert_eq!(
            parse("/dev/null:/x:rwx"),
            Err("bad mode specified: rwx".into())
        );
        assert_eq!(
            parse("/dev/null:/x:rr"),
            Err("bad mode specified: rr".into())
        );
        assert_eq!(
            parse("/dev/null:rel"),
            Err("rel is not an absolute path".into())
        );
        assert_eq!(parse("null"), Err("null is not an absolute path".into()));
        assert_eq!(parse(":/x"), Err("bad format for path: :/x".into()));
        assert_eq!(
            parse("/a:/b:r:x"),
            Err("bad format for path: /a:/b:r:x".into())
        );
    }

    #[test]
    fn host_nodes_resolve_with_their_numbers_and_rules() {
        let found = resolve(&mapping("/dev/null", "/dev/mynull", "r")).unwrap();
        assert_eq!(found.len(), 1);
        let (d, r) = &found[0];
        assert_eq!(d.path(), Path::new("/dev/mynull"));
        assert_eq!((d.typ(), d.major(), d.minor()), (LinuxDeviceType::C, 1, 3));
        let r = r.as_ref().unwrap();
        assert_eq!(r.access().as_deref(), Some("r"));
        assert_eq!((r.major(), r.minor()), (Some(1), Some(3)));
        let e = resolve(&mapping("/dev/nonexistent-berth", "/x", "rwm")).unwrap_err();
        assert!(e.not_found);
        assert_eq!(
            e.to_string(),
            "Error response from daemon: error gathering device information while adding custom device \"/dev/nonexistent-berth\": no such file or directory"
        );
        let e = resolve(&mapping("/etc/hostname", "/x", "rwm")).unwrap_err();
        assert!(!e.not_found);
        assert!(e.to_string().ends_with(": not a device node"), "{e}");
        let all = host_devices();
        assert!(all.iter().any(|d| d.path() == Path::new("/dev/null")));
        assert!(!all.iter().any(|d| d.path() == Path::new("/dev/ptmx")));
        assert!(!all.iter().any(|d| d.path().starts_with("/dev/pts")));
    }
}
