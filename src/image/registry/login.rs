//! `login` / `logout`: check credentials against a registry, then keep them in Docker's client
//! `config.json` (`auths.<server>.auth` = base64 `user:password`, file mode 0600, every other key
//! of the file preserved), so docker and berth share logins.

use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::auth::{self, Challenge, Credentials, DOCKER_HUB_AUTH_KEY};
use super::{Registry, RegistryError};
use crate::config::Config;
use crate::image::reference::DOCKER_HUB;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Docker's wording for a Basic-auth registry refusing the credentials.
    #[error("login attempt to {url} failed with status: 401 Unauthorized")]
    BasicRefused { url: String },
    /// Docker's wording for a token server refusing them.
    #[error("Get \"{url}\": unauthorized: {message}")]
    TokenRefused { url: String, message: String },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not a valid Docker config file: {message}")]
    Corrupt { path: PathBuf, message: String },
}

/// A server argument as Docker keys it: Docker Hub's `https://index.docker.io/v1/`, else the
/// address as typed.
pub fn server_key(server: Option<&str>) -> String {
    match server {
        None | Some("") | Some("docker.io") | Some("index.docker.io") => {
            DOCKER_HUB_AUTH_KEY.to_string()
        }
        Some(s) => s.to_string(),
    }
}

/// Docker's `ConvertToHostname`: `https://host:5000/v2/` → `host:5000`.
pub fn hostname(server: &str) -> String {
    let s = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    s.split('/').next().unwrap_or(s).to_string()
}

fn domain_of(key: &str) -> String {
    if key == DOCKER_HUB_AUTH_KEY {
        return DOCKER_HUB.to_string();
    }
    let host = hostname(key);
    if host == "index.docker.io" || host == "registry-1.docker.io" {
        DOCKER_HUB.to_string()
    } else {
        host
    }
}

/// Verifies `credentials` with the registry behind `key` (Basic, or the Bearer token flow).
pub fn verify(config: &Config, key: &str, credentials: &Credentials) -> Result<(), LoginError> {
    let domain = domain_of(key);
    let registry = Registry::with_credentials(&domain, config, Some(credentials.clone()));
    let url = format!("{}/v2/", registry.base());
    let challenge = registry.ping()?;
    match registry.login() {
        Ok(()) => Ok(()),
        Err(RegistryError::Unauthorized { errors, .. }) => match challenge {
            Some(Challenge::Bearer { .. }) => {
                let message = errors
                    .iter()
                    .map(|e| e.message.clone())
                    .filter(|m| !m.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ");
                Err(LoginError::TokenRefused {
                    url,
                    message: if message.is_empty() {
                        "authentication required".into()
                    } else {
                        message
                    },
                })
            }
            _ => Err(LoginError::BasicRefused { url }),
        },
        Err(e) => Err(e.into()),
    }
}

fn read_config(path: &Path) -> Result<Map<String, Value>, LoginError> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(LoginError::Corrupt {
                path: path.into(),
                message: "not a JSON object".into(),
            }),
            Err(e) => Err(LoginError::Corrupt {
                path: path.into(),
                message: e.to_string(),
            }),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Map::new()),
        Err(source) => Err(LoginError::Io {
            path: path.into(),
            source,
        }),
    }
}

/// Go's `json.MarshalIndent(cfg, "", "\t")`, the way docker writes the file.
fn write_config(path: &Path, config: &Map<String, Value>) -> Result<(), LoginError> {
    let io_err = |source| LoginError::Io {
        path: path.into(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_err)?;
    }
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(config, &mut ser).map_err(|e| LoginError::Corrupt {
        path: path.into(),
        message: e.to_string(),
    })?;
    crate::sys::write_atomic(path, &out, 0o600).map_err(io_err)
}

/// Stores credentials for `key` in the Docker config file; returns the file's path.
pub fn store(key: &str, credentials: &Credentials) -> Result<PathBuf, LoginError> {
    let path = auth::docker_config_path();
    let mut config = read_config(&path)?;
    let auths = config
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", credentials.username, credentials.password));
    if let Value::Object(auths) = auths {
        let mut entry = Map::new();
        entry.insert("auth".into(), Value::String(encoded));
        auths.insert(key.to_string(), Value::Object(entry));
    }
    write_config(&path, &config)?;
    Ok(path)
}

/// Removes the credentials of `key` (and of its `http://`/`https://` spellings, as Docker
/// does). Returns whether any entry was removed.
pub fn erase(key: &str) -> Result<bool, LoginError> {
    let path = auth::docker_config_path();
    let mut config = read_config(&path)?;
    let mut removed = false;
    if let Some(Value::Object(auths)) = config.get_mut("auths") {
        let mut keys = vec![key.to_string()];
        if key != DOCKER_HUB_AUTH_KEY {
            let host = hostname(key);
            keys.extend([
                host.clone(),
                format!("http://{host}"),
                format!("https://{host}"),
            ]);
        }
        for k in keys {
            removed |= auths.remove(&k).is_some();
        }
    }
    if removed {
        write_config(&path, &config)?;
    }
    Ok(removed)
}

/// The username stored for `key`, if any (what `login` offers when no `-u` is given).
pub fn stored_username(key: &str) -> Option<String> {
    auth::stored_credentials(&domain_of(key)).map(|c| c.username)
}
