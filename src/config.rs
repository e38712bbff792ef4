//! berth's own configuration: `/etc/berth/config.json`, which uses the key names of Docker's
//! `daemon.json` (`data-root`, `insecure-registries`, `registry-mirrors`, `bip`, `log-driver`,
//! `log-opts`) so an existing Docker setup translates by copying keys. `--config FILE` reads
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
}

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
}
