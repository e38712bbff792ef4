//! The registry client: Docker Registry HTTP API v2 over ureq.
//!
//! It owns talking to one registry: the `/v2/` ping, authentication (anonymous or credentialed
//! Bearer tokens cached per scope, Basic), retries with backoff on connection errors, 5xx and
//! 429 (honouring `Retry-After`), size limits on documents, and resumable blob streams
//! ([`blob::BlobReader`]). Redirects are followed, but `Authorization` is only ever sent to the
//! registry's own host (blob GETs are commonly redirected to a CDN).

pub mod auth;
pub mod blob;
pub mod login;
pub mod upload;

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;

use self::auth::{Challenge, Credentials};
use crate::config::Config;
use crate::image::reference::DOCKER_HUB;

/// Manifests and configs larger than this are refused (Docker uses the same bound).
pub const MAX_DOCUMENT_BYTES: u64 = 4 << 20;
pub const MAX_TOKEN_BYTES: u64 = 1 << 20;
const MAX_TRIES: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("Get \"{url}\": {message}")]
    Transport { url: String, message: String },
    /// The registry answered with an error document (`{"errors":[…]}`) or a bare status.
    #[error("{}", describe_status(*status, errors))]
    Status {
        status: u16,
        url: String,
        errors: Vec<ErrorDetail>,
    },
    #[error("Get \"{url}\": no basic auth credentials")]
    NoBasicCredentials { url: String },
    #[error("unauthorized: authentication required")]
    Unauthorized {
        url: String,
        errors: Vec<ErrorDetail>,
    },
    #[error("{what} from {url} exceeds the {limit}-byte limit")]
    TooLarge {
        what: &'static str,
        url: String,
        limit: u64,
    },
    #[error("malformed {what} from {url}: {message}")]
    Malformed {
        what: &'static str,
        url: String,
        message: String,
    },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
}

impl RegistryError {
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Status { status, .. } => Some(*status),
            RegistryError::Unauthorized { .. } => Some(401),
            _ => None,
        }
    }

    pub fn has_code(&self, code: &str) -> bool {
        match self {
            RegistryError::Status { errors, .. } | RegistryError::Unauthorized { errors, .. } => {
                errors.iter().any(|e| e.code == code)
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorDetail>,
}

fn describe_status(status: u16, errors: &[ErrorDetail]) -> String {
    if errors.is_empty() {
        return format!("unexpected status from registry: {status}");
    }
    errors
        .iter()
        .map(|e| {
            let code = e.code.to_ascii_lowercase().replace('_', " ");
            if e.message.is_empty() {
                code
            } else {
                format!("{code}: {}", e.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A client bound to one registry domain (as written in references: `docker.io`,
/// `127.0.0.1:5000`).
pub struct Registry {
    agent: ureq::Agent,
    base: String,
    credentials: Option<Credentials>,
    challenge: Mutex<Option<Option<Challenge>>>,
    tokens: Mutex<HashMap<String, String>>,
}

pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    pub docker_digest: Option<String>,
    pub content_length: Option<u64>,
    pub content_range: Option<String>,
    pub body: Box<dyn Read + Send + Sync>,
    pub url: String,
}

impl Response {
    /// The whole body, refusing more than `limit` bytes.
    pub fn read_limited(self, what: &'static str, limit: u64) -> Result<Vec<u8>, RegistryError> {
        if self.content_length.is_some_and(|n| n > limit) {
            return Err(RegistryError::TooLarge {
                what,
                url: self.url,
                limit,
            });
        }
        let mut bytes = Vec::new();
        let url = self.url;
        self.body
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| RegistryError::Transport {
                url: url.clone(),
                message: e.to_string(),
            })?;
        if bytes.len() as u64 > limit {
            return Err(RegistryError::TooLarge { what, url, limit });
        }
        Ok(bytes)
    }
}

impl Registry {
    pub fn new(domain: &str, config: &Config) -> Registry {
        Self::with_credentials(domain, config, auth::stored_credentials(domain))
    }

    pub fn with_credentials(
        domain: &str,
        config: &Config,
        credentials: Option<Credentials>,
    ) -> Registry {
        let base = if domain == DOCKER_HUB {
            config
                .registry_mirrors
                .first()
                .map(|m| m.trim_end_matches('/').to_string())
                .unwrap_or_else(|| "https://registry-1.docker.io".to_string())
        } else if config.is_insecure(domain) {
            format!("http://{domain}")
        } else {
            format!("https://{domain}")
        };
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(30))
            .timeout_read(Duration::from_secs(60))
            .redirects(10)
            .redirect_auth_headers(ureq::RedirectAuthHeaders::SameHost)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build();
        Registry {
            agent,
            base,
            credentials,
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /v2/`: learns how the registry wants to be authenticated.
    pub fn ping(&self) -> Result<Option<Challenge>, RegistryError> {
        if let Some(known) = self.challenge.lock().expect("challenge lock").clone() {
            return Ok(known);
        }
        let url = format!("{}/v2/", self.base);
        let response = self.send_with_retries("GET", &url, &[], None)?;
        let challenge = match response {
            Ok(_) => None,
            Err((401, challenge, _)) => challenge,
            Err((status, _, errors)) => {
                return Err(RegistryError::Status {
                    status,
                    url,
                    errors,
                });
            }
        };
        *self.challenge.lock().expect("challenge lock") = Some(challenge.clone());
        Ok(challenge)
    }

    /// Checks the credentials by asking for a token (Bearer) or pinging with them (Basic).
    pub fn login(&self) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base);
        match self.ping()? {
            None => Ok(()),
            Some(Challenge::Basic) => {
                match self.send_with_retries("GET", &url, &[], self.basic_header().as_deref())? {
                    Ok(_) => Ok(()),
                    Err((401, _, errors)) => Err(RegistryError::Unauthorized { url, errors }),
                    Err((status, _, errors)) => Err(RegistryError::Status {
                        status,
                        url,
                        errors,
                    }),
                }
            }
            Some(Challenge::Bearer { realm, service }) => self
                .fetch_token(&realm, service.as_deref(), None)
                .map(|_| ()),
        }
    }

    fn basic_header(&self) -> Option<String> {
        self.credentials.as_ref().map(Credentials::basic_header)
    }

    /// A GET (or HEAD) on a repository-scoped path, authenticated for `scope`.
    pub fn get(
        &self,
        path: &str,
        scope: &str,
        headers: &[(&str, String)],
    ) -> Result<Response, RegistryError> {
        self.request("GET", path, scope, headers)
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        scope: &str,
        headers: &[(&str, String)],
    ) -> Result<Response, RegistryError> {
        let url = format!("{}{}", self.base, path);
        let challenge = self.ping()?;
        if challenge == Some(Challenge::Basic) && self.credentials.is_none() {
            return Err(RegistryError::NoBasicCredentials { url });
        }
        let mut authorization = self.authorization(&challenge, scope, false)?;
        let mut refreshed = false;
        loop {
            match self.send_with_retries(method, &url, headers, authorization.as_deref())? {
                Ok(response) => return Ok(response),
                Err((401, Some(Challenge::Bearer { .. }), _))
                    if !refreshed && matches!(challenge, Some(Challenge::Bearer { .. })) =>
                {
                    // The cached token may have expired or lack this scope: fetch a fresh one once.
                    refreshed = true;
                    authorization = self.authorization(&challenge, scope, true)?;
                }
                Err((401, _, errors)) => return Err(RegistryError::Unauthorized { url, errors }),
                Err((status, _, errors)) => {
                    return Err(RegistryError::Status {
                        status,
                        url,
                        errors,
                    });
                }
            }
        }
    }

    fn authorization(
        &self,
        challenge: &Option<Challenge>,
        scope: &str,
        refresh: bool,
    ) -> Result<Option<String>, RegistryError> {
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.basic_header()),
            Some(Challenge::Bearer { realm, service }) => {
                if !refresh && let Some(token) = self.tokens.lock().expect("tokens").get(scope) {
                    return Ok(Some(format!("Bearer {token}")));
                }
                let token = self.fetch_token(realm, service.as_deref(), Some(scope))?;
                self.tokens
                    .lock()
                    .expect("tokens")
                    .insert(scope.to_string(), token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<String, RegistryError> {
        let mut url = url::Url::parse(realm).map_err(|e| RegistryError::Malformed {
            what: "token realm",
            url: realm.to_string(),
            message: e.to_string(),
        })?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            if let Some(scope) = scope {
                query.append_pair("scope", scope);
            }
            if let Some(credentials) = &self.credentials {
                query.append_pair("account", &credentials.username);
            }
        }
        let url = url.to_string();
        let response =
            match self.send_with_retries("GET", &url, &[], self.basic_header().as_deref())? {
                Ok(response) => response,
                Err((401, _, errors)) | Err((403, _, errors)) => {
                    return Err(RegistryError::Unauthorized { url, errors });
                }
                Err((status, _, errors)) => {
                    return Err(RegistryError::Status {
                        status,
                        url,
                        errors,
                    });
                }
            };
        let bytes = response.read_limited("token", MAX_TOKEN_BYTES)?;
        #[derive(Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let token: Token =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::Malformed {
                what: "token response",
                url: url.clone(),
                message: e.to_string(),
            })?;
        token
            .token
            .or(token.access_token)
            .filter(|t| !t.is_empty())
            .ok_or(RegistryError::Malformed {
                what: "token response",
                url,
                message: "no token".into(),
            })
    }

    /// Sends one request, retrying connection failures, 5xx and 429 with backoff. A final
    /// non-2xx answer is returned as `Err((status, challenge, errors))` for the caller to judge.
    #[allow(clippy::type_complexity)]
    fn send_with_retries(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        authorization: Option<&str>,
    ) -> Result<Result<Response, (u16, Option<Challenge>, Vec<ErrorDetail>)>, RegistryError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self.agent.request(method, url);
            for (name, value) in headers {
                request = request.set(name, value);
            }
            if let Some(authorization) = authorization {
                request = request.set("Authorization", authorization);
            }
            let delay = match request.call() {
                Ok(response) => return Ok(Ok(into_response(response))),
                Err(ureq::Error::Status(status, response))
                    if (status == 429 || status >= 500) && attempt < MAX_TRIES =>
                {
                    retry_after(&response).unwrap_or_else(|| backoff(attempt))
                }
                Err(ureq::Error::Status(status, response)) => {
                    let (challenge, errors) = refusal(response);
                    return Ok(Err((status, challenge, errors)));
                }
                Err(ureq::Error::Transport(transport)) => {
                    if attempt >= MAX_TRIES {
                        return Err(RegistryError::Transport {
                            url: url.to_string(),
                            message: transport_message(url, &transport),
                        });
                    }
                    backoff(attempt)
                }
            };
            std::thread::sleep(delay);
        }
    }
}

/// What a refusing registry said: its authentication challenge and its error document.
pub(crate) fn refusal(response: ureq::Response) -> (Option<Challenge>, Vec<ErrorDetail>) {
    let challenge = response
        .header("www-authenticate")
        .and_then(Challenge::parse);
    let errors = response
        .into_string()
        .ok()
        .and_then(|body| serde_json::from_str::<ErrorBody>(&body).ok())
        .map(|b| b.errors)
        .unwrap_or_default();
    (challenge, errors)
}

/// ureq's transport error without the URL it repeats (callers name the URL themselves).
pub(crate) fn transport_message(url: &str, transport: &ureq::Transport) -> String {
    let text = transport.to_string();
    text.strip_prefix(&format!("{url}: "))
        .unwrap_or(&text)
        .to_string()
}

pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 << attempt.min(5))
}

fn retry_after(response: &ureq::Response) -> Option<Duration> {
    let secs: u64 = response.header("retry-after")?.trim().parse().ok()?;
    Some(Duration::from_secs(secs.min(30)))
}

fn into_response(response: ureq::Response) -> Response {
    let header = |name: &str| response.header(name).map(str::to_string);
    Response {
        status: response.status(),
        content_type: header("content-type"),
        docker_digest: header("docker-content-digest"),
        content_length: header("content-length").and_then(|v| v.parse().ok()),
        content_range: header("content-range"),
        url: response.get_url().to_string(),
        body: response.into_reader(),
    }
}
