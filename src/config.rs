//! berth's own configuration: `/etc/berth/config.json`, which uses the key names of Docker's
//! `daemon.json` (`data-root`, `insecure-registries`, `registry-mirrors`, `bip`, `log-driver`,
//! `log-opts`, `exec-opts`) so an existing Docker setup translates by copying keys; and
//! `cgroup-driver`, berth's own key for what Docker's `native.cgroupdriver` exec-opt says. `--config FILE` reads
//! another file (the tests' way).

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/berth/config.json";
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/berth";
pub const DEFAULT_RUN_ROOT: &str = "/run/berth";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("invalid configuration {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Config {
    #[serde(default)]
    pub data_root: Option<PathBuf>,
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    #[serde(default)]
    pub registry_mirrors: Vec<String>,
    #[serde(default)]
    pub bip: Option<String>,
    /// New containers' logging driver (default json-file) and its options (`max-size`,
    /// `max-file`, `compress`), each the default of the `--log-opt` of that key; checked
    /// where a container is created (`container/log_opts.rs`).
    #[serde(default)]
    pub log_driver: Option<String>,
    #[serde(default)]
    pub log_opts: BTreeMap<String, String>,
    /// `cgroupfs` or `systemd` (see [`Config::cgroup_driver`]).
    #[serde(default)]
    pub cgroup_driver: Option<String>,
    /// Docker's daemon options: berth reads `native.cgroupdriver=cgroupfs|systemd`.
    #[serde(default)]
    pub exec_opts: Vec<String>,
}

/// Who makes containers' cgroups: berth itself in the cgroup file system, or systemd, as a
/// transient scope unit per container under `berth.slice` (see
/// `crates/berth-runtime/src/cgroups/systemd.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupDriver {
    Cgroupfs,
    Systemd,
}

/// The slice berth's scopes go into under the systemd driver.
pub const SYSTEMD_SLICE: &str = "berth.slice";

impl Config {
    /// Reads the file at `path`; a missing file means all defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| ConfigError::Parse {
                path: path.to_path_buf(),
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The cgroup driver: `cgroup-driver`, else the `native.cgroupdriver` of `exec-opts`, else
    /// chosen for the host as Docker and Podman do: systemd where systemd is init and the
    /// cgroup hierarchy is the unified one (v2), cgroupfs otherwise. The systemd driver works
    /// on v2 only; asked for on a host without systemd or v2, it is an error.
    pub fn cgroup_driver(&self) -> Result<CgroupDriver, String> {
        let mut chosen = None;
        for opt in &self.exec_opts {
            let Some((key, value)) = opt.split_once('=') else {
                return Err(format!(
                    "invalid exec-opt ({opt}): must be formatted 'opt=value'"
                ));
            };
            if key.trim() == "native.cgroupdriver" {
                chosen = Some(value.trim().to_string());
            } else {
                return Err(format!("unknown exec-opt: {}", key.trim()));
            }
        }
        if let Some(driver) = &self.cgroup_driver {
            if chosen.as_ref().is_some_and(|c| c != driver) {
                return Err(format!(
                    "cgroup-driver {driver} and exec-opts native.cgroupdriver={} disagree",
                    chosen.unwrap_or_default()
                ));
            }
            chosen = Some(driver.clone());
        }
        let systemd_host = systemd_host();
        match chosen.as_deref() {
            None | Some("") => Ok(if systemd_host {
                CgroupDriver::Systemd
            } else {
                CgroupDriver::Cgroupfs
            }),
            Some("cgroupfs") => Ok(CgroupDriver::Cgroupfs),
            Some("systemd") if systemd_host => Ok(CgroupDriver::Systemd),
            Some("systemd") => Err(
                "the systemd cgroup driver needs systemd as init and cgroup v2 (the unified \
                 hierarchy): use cgroupfs on this host"
                    .to_string(),
            ),
            Some(other) => Err(format!(
                "native.cgroupdriver option {other} not supported: systemd or cgroupfs"
            )),
        }
    }

    /// Whether `host[:port]` may be spoken to over plain HTTP: loopback always (as Docker), plus
    /// the configured insecure registries (host names or CIDRs).
    pub fn is_insecure(&self, domain: &str) -> bool {
        let host = host_of(domain);
        if host == "localhost" {
            return true;
        }
        let ip = host.parse::<IpAddr>().ok();
        if ip.is_some_and(|ip| ip.is_loopback()) {
            return true;
        }
        self.insecure_registries.iter().any(|entry| {
            let entry = entry
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .trim_end_matches('/');
            if entry == domain || entry == host {
                return true;
            }
            match (ip, entry.split_once('/')) {
                (Some(ip), Some((net, bits))) => cidr_contains(net, bits, ip),
                _ => false,
            }
        })
    }
}

/// Whether systemd is init (sd_booted(3): it made /run/systemd/system) and /sys/fs/cgroup is
/// the unified hierarchy. Measured once per process.
fn systemd_host() -> bool {
    static HOST: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HOST.get_or_init(|| {
        const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
        let v2 = nix::sys::statfs::statfs("/sys/fs/cgroup").is_ok_and(|s| {
            // The magic's type differs between targets (i64 on x86_64 glibc).
            #[allow(clippy::unnecessary_cast)]
            let t = s.filesystem_type().0 as i64;
            t == CGROUP2_SUPER_MAGIC
        });
        v2 && Path::new("/run/systemd/system").is_dir()
    })
}

/// The host part of `host[:port]` or `[v6]:port`.
pub fn host_of(domain: &str) -> &str {
    if let Some(rest) = domain.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    domain.split(':').next().unwrap_or(domain)
}

fn cidr_contains(net: &str, bits: &str, ip: IpAddr) -> bool {
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_rules() {
        let config = Config {
            insecure_registries: vec!["10.1.0.0/16".into(), "reg.lan:5000".into()],
            ..Config::default()
        };
        assert!(config.is_insecure("127.0.0.1:5000"));
        assert!(config.is_insecure("localhost:5000"));
        assert!(config.is_insecure("[::1]:5000"));
        assert!(config.is_insecure("10.1.2.3:80"));
        assert!(config.is_insecure("reg.lan:5000"));
        assert!(!config.is_insecure("10.2.0.1"));
        assert!(!config.is_insecure("docker.io"));
    }

    #[test]
    fn cgroup_driver_keys() {
        let with = |driver: Option<&str>, opts: &[&str]| Config {
            cgroup_driver: driver.map(String::from),
            exec_opts: opts.iter().map(|s| s.to_string()).collect(),
            ..Config::default()
        };
        assert_eq!(
            with(Some("cgroupfs"), &[]).cgroup_driver(),
            Ok(CgroupDriver::Cgroupfs)
        );
        assert_eq!(
            with(None, &["native.cgroupdriver=cgroupfs"]).cgroup_driver(),
            Ok(CgroupDriver::Cgroupfs)
        );
        assert!(
            with(None, &["native.cgroupdriver=lxc"])
                .cgroup_driver()
                .is_err()
        );
        assert!(with(None, &["nonsense"]).cgroup_driver().is_err());
        assert!(
            with(Some("cgroupfs"), &["native.cgroupdriver=systemd"])
                .cgroup_driver()
                .is_err()
        );
        let auto = with(None, &[]).cgroup_driver().unwrap();
        assert_eq!(auto == CgroupDriver::Systemd, systemd_host());
    }
}
