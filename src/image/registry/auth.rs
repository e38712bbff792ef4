//! Registry credentials and authentication challenges: Docker's `config.json` `auths` (shared
//! with the docker CLI), and parsing of `WWW-Authenticate`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use serde::Deserialize;

use crate::image::reference::DOCKER_HUB;

/// The key Docker stores Docker Hub credentials under.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Where Docker keeps its client configuration: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
pub fn docker_config_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return PathBuf::from(dir).join("config.json");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".docker/config.json")
}

#[derive(Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// The stored credentials for a registry domain, if any. An unreadable or malformed config
/// file means no credentials, as for Docker.
pub fn stored_credentials(domain: &str) -> Option<Credentials> {
    let bytes = std::fs::read(docker_config_path()).ok()?;
    let config: DockerConfig = serde_json::from_slice(&bytes).ok()?;
    config
        .auths
        .iter()
        .find(|(key, _)| auth_key_matches(key, domain))
        .and_then(|(_, entry)| decode_entry(entry))
}

/// The key `login` writes for a domain.
pub fn auth_key(domain: &str) -> String {
    if domain == DOCKER_HUB {
        DOCKER_HUB_AUTH_KEY.to_string()
    } else {
        domain.to_string()
    }
}

fn auth_key_matches(key: &str, domain: &str) -> bool {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host);
    if domain == DOCKER_HUB {
        matches!(
            host,
            "index.docker.io" | "docker.io" | "registry-1.docker.io"
        )
    } else {
        host == domain
    }
}

fn decode_entry(entry: &AuthEntry) -> Option<Credentials> {
    if let Some(auth) = &entry.auth
        && !auth.is_empty()
    {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (username, password) = raw.split_once(':')?;
        return Some(Credentials {
            username: username.to_string(),
            password: password.to_string(),
        });
    }
    Some(Credentials {
        username: entry.username.clone()?,
        password: entry.password.clone()?,
    })
}

/// What a registry asked for in its `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

impl Challenge {
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => Some(Challenge::Basic),
            "bearer" => {
                let params = parse_params(params);
                let realm = params.get("realm")?.clone();
                Some(Challenge::Bearer {
                    realm,
                    service: params.get("service").cloned(),
                })
            }
            _ => None,
        }
    }
}

/// `key="value",key2=value2` with quoted commas allowed.
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        rest = &rest[eq + 1..];
        let value;
        if let Some(stripped) = rest.strip_prefix('"') {
            let end = stripped.find('"').unwrap_or(stripped.len());
            value = stripped[..end].to_string();
            rest = stripped.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        rest = rest.trim_start().trim_start_matches(',').trim_start();
        out.insert(key, value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/a:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate"), None);
    }

    #[test]
    fn matches_auth_keys() {
        assert!(auth_key_matches("https://index.docker.io/v1/", "docker.io"));
        assert!(auth_key_matches("127.0.0.1:5001", "127.0.0.1:5001"));
        assert!(auth_key_matches(
            "http://127.0.0.1:5001/v2/",
            "127.0.0.1:5001"
        ));
        assert!(!auth_key_matches("127.0.0.1:5001", "127.0.0.1:5002"));
        let entry = AuthEntry {
            auth: Some("dXNlcjpwYTpzcw==".into()),
            ..AuthEntry::default()
        };
        assert_eq!(
            decode_entry(&entry),
            Some(Credentials {
                username: "user".into(),
                password: "pa:ss".into()
            })
        );
    }
}
