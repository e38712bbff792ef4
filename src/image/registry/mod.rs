//! The registry client: Docker Registry HTTP API v2 over ureq.
//!
//! It owns talking to one registry: the `/v2/` ping, authentication (anonymous or credentialed
//! Bearer tokens cached per scope, Basic), retries with backoff on connection errors, 5xx and
//! 429 (honouring `Retry-After`), size limits on documents, time limits ([`Timeouts`]), and
//! resumable blob streams ([`blob::BlobReader`]). Redirects are followed, but `Authorization`
//! is only ever sent to the registry's own host (blob GETs are commonly redirected to a CDN).

pub mod auth;
pub mod blob;
pub mod login;
pub mod upload;

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use self::auth::{Challenge, Credentials};
use crate::config::Config;
use crate::image::reference::DOCKER_HUB;

/// Manifests and configs larger than this are refused (Docker uses the same bound).
pub const MAX_DOCUMENT_BYTES: u64 = 4 << 20;
pub const MAX_TOKEN_BYTES: u64 = 1 << 20;
/// Attempts at one request (a blob's resumes included) before giving up, as Docker's
/// `max-download-attempts` default.
const MAX_TRIES: u32 = 5;

/// Environment variables that set [`Timeouts`]: seconds (`30`), or with a unit (`500ms`, `30s`,
/// `2m`).
pub const CONNECT_TIMEOUT_ENV: &str = "BERTH_REGISTRY_CONNECT_TIMEOUT";
pub const REQUEST_TIMEOUT_ENV: &str = "BERTH_REGISTRY_REQUEST_TIMEOUT";
pub const STALL_TIMEOUT_ENV: &str = "BERTH_REGISTRY_STALL_TIMEOUT";

/// A blob stream must bring at least this much per stall timeout: a server trickling a byte a
/// second is as stuck as one that sends nothing.
pub const STALL_BYTES: u64 = 1024;

/// How long the registry client waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To open a connection (TCP and TLS); Docker's dialer allows 30 s.
    pub connect: Duration,
    /// For the whole of a small request — ping, token, manifest, config, tag list — every
    /// attempt and wait between them included, to the last byte of the answer.
    pub request: Duration,
    /// For a response to bring anything (headers, or the next bytes of a body), and for a blob
    /// body to bring [`STALL_BYTES`]; a stalled blob is resumed, like a dropped connection.
    pub stall: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(30),
            request: Duration::from_secs(60),
            stall: Duration::from_secs(60),
        }
    }
}

impl Timeouts {
    /// The defaults, as the `BERTH_REGISTRY_*_TIMEOUT` variables change them.
    pub fn from_env() -> Result<Timeouts, RegistryError> {
        let mut timeouts = Timeouts::default();
        for (name, slot) in [
            (CONNECT_TIMEOUT_ENV, &mut timeouts.connect),
            (REQUEST_TIMEOUT_ENV, &mut timeouts.request),
            (STALL_TIMEOUT_ENV, &mut timeouts.stall),
        ] {
            let Some(value) = std::env::var_os(name) else {
                continue;
            };
            let value = value.to_string_lossy().into_owned();
            *slot = parse_duration(&value).ok_or(RegistryError::Setting { name, value })?;
        }
        Ok(timeouts)
    }
}

/// `30`, `30s`, `500ms`, `2m`, `1.5s`: a positive duration (bare numbers are seconds).
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let seconds_per_unit = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    let value: f64 = number.parse().ok()?;
    let seconds = value * seconds_per_unit;
    (seconds.is_finite() && seconds > 0.0 && seconds < 1e9)
        .then(|| Duration::from_secs_f64(seconds))
}

/// A duration as a person reads it: `2s`, `1.5s`, `500ms`.
pub(crate) fn show(duration: Duration) -> String {
    if duration.subsec_millis() == 0 && duration.as_secs() > 0 {
        format!("{}s", duration.as_secs())
    } else if duration.as_secs() == 0 {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{}s", duration.as_secs_f64())
    }
}

/// Told, once a second while berth waits to try again, how many seconds are left
/// (Docker's `Retrying in N seconds`).
pub type RetryReport<'a> = &'a (dyn Fn(u64) + Sync);

/// How one request is retried: its attempts (a blob's resumes share them), its deadline, and
/// who hears of the waits.
pub struct Retries<'a> {
    /// When everything must be done: small requests have one, blob streams none.
    deadline: Option<Instant>,
    /// The request limit the deadline came from, for the message when it passes.
    limit: Duration,
    attempts: u32,
    report: RetryReport<'a>,
}

impl<'a> Retries<'a> {
    /// A small request: every attempt within `Timeouts::request` of now.
    pub fn document(timeouts: &Timeouts, report: RetryReport<'a>) -> Retries<'a> {
        Retries {
            deadline: Some(Instant::now() + timeouts.request),
            limit: timeouts.request,
            attempts: 0,
            report,
        }
    }

    /// A blob stream: no overall limit (a big layer takes what it takes), only stalls.
    pub fn stream(report: RetryReport<'a>) -> Retries<'a> {
        Retries {
            deadline: None,
            limit: Duration::ZERO,
            attempts: 0,
            report,
        }
    }

    /// A blob's connection brought data before it broke: the attempts count afresh from
    /// there (the budget is for a download that stopped making progress, not for the
    /// resumes of one that goes on).
    fn progressed(&mut self) {
        self.attempts = 0;
    }

    /// The wait before the next attempt, if one is allowed: attempts left, and time left for
    /// it before the deadline.
    fn next_delay(&self, retry_after: Option<Duration>) -> Option<Duration> {
        if self.attempts >= MAX_TRIES {
            return None;
        }
        let delay = retry_after.unwrap_or_else(|| backoff(self.attempts));
        match self.deadline {
            Some(deadline) if Instant::now() + delay >= deadline => None,
            _ => Some(delay),
        }
    }

    /// Sleeps `delay`, reporting the seconds left once a second.
    fn wait(&self, delay: Duration) {
        let end = Instant::now() + delay;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let seconds = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            (self.report)(seconds);
            std::thread::sleep(left - Duration::from_secs(seconds - 1));
        }
    }

    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// Whether an I/O failure is a time limit running out (a socket timeout or ureq's deadline).
pub(crate) fn is_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            )
        {
            return true;
        }
        next = error.source();
    }
    false
}

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
    #[error("invalid {name} \"{value}\": expected a duration such as 30, 30s or 500ms")]
    Setting { name: &'static str, value: String },
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
    timeouts: Timeouts,
    /// A `BERTH_REGISTRY_*_TIMEOUT` that could not be read: every request fails with it.
    bad_setting: Option<(&'static str, String)>,
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
    /// Where an upload session goes on (push).
    pub location: Option<String>,
    pub body: Box<dyn Read + Send + Sync>,
    pub url: String,
    /// The limit on the whole request, when it has one: a body read it cuts short says so.
    pub limit: Option<Duration>,
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
        let request_limit = self.limit;
        self.body
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| RegistryError::Transport {
                url: url.clone(),
                message: match request_limit {
                    Some(request_limit) if is_timeout(&e) => request_timed_out(request_limit),
                    _ => e.to_string(),
                },
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
        let (timeouts, bad_setting) = match Timeouts::from_env() {
            Ok(timeouts) => (timeouts, None),
            Err(RegistryError::Setting { name, value }) => {
                (Timeouts::default(), Some((name, value)))
            }
            Err(_) => (Timeouts::default(), None),
        };
        // Small requests are given a deadline each (`Retries::document`), which ureq applies
        // to every read in place of the stall timeout set here.
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(timeouts.connect)
            .timeout_read(timeouts.stall)
            .timeout_write(timeouts.stall)
            .redirects(10)
            .redirect_auth_headers(ureq::RedirectAuthHeaders::SameHost)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build();
        Registry {
            agent,
            timeouts,
            bad_setting,
            base,
            credentials,
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// A `BERTH_REGISTRY_*_TIMEOUT` that could not be read, as the error every request fails
    /// with.
    fn check_settings(&self) -> Result<(), RegistryError> {
        match &self.bad_setting {
            Some((name, value)) => Err(RegistryError::Setting {
                name,
                value: value.clone(),
            }),
            None => Ok(()),
        }
    }

    /// `GET /v2/`: learns how the registry wants to be authenticated.
    pub fn ping(&self) -> Result<Option<Challenge>, RegistryError> {
        self.ping_reporting(&|_| {})
    }

    fn ping_reporting(&self, report: RetryReport<'_>) -> Result<Option<Challenge>, RegistryError> {
        if let Some(known) = self.challenge.lock().expect("challenge lock").clone() {
            return Ok(known);
        }
        let url = format!("{}/v2/", self.base);
        let mut retries = Retries::document(&self.timeouts, report);
        let response = self.send_with_retries("GET", &url, &[], None, &mut retries)?;
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
                let mut retries = Retries::document(&self.timeouts, &|_| {});
                let basic = self.basic_header();
                match self.send_with_retries("GET", &url, &[], basic.as_deref(), &mut retries)? {
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
                .fetch_token(&realm, service.as_deref(), None, &|_| {})
                .map(|_| ()),
        }
    }

    fn basic_header(&self) -> Option<String> {
        self.credentials.as_ref().map(Credentials::basic_header)
    }

    /// A GET of a small document on a repository-scoped path, authenticated for `scope`.
    pub fn get(
        &self,
        path: &str,
        scope: &str,
        headers: &[(&str, String)],
    ) -> Result<Response, RegistryError> {
        self.get_reporting(path, scope, headers, &|_| {})
    }

    /// [`Registry::get`], telling `report` of each wait before a retry.
    pub fn get_reporting(
        &self,
        path: &str,
        scope: &str,
        headers: &[(&str, String)],
        report: RetryReport<'_>,
    ) -> Result<Response, RegistryError> {
        let mut retries = Retries::document(&self.timeouts, report);
        self.request("GET", path, scope, headers, &mut retries)
    }

    /// A request on a repository-scoped path, authenticated for `scope` (the ping and token
    /// requests on the way get limits of their own and report to the same place).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        scope: &str,
        headers: &[(&str, String)],
        retries: &mut Retries<'_>,
    ) -> Result<Response, RegistryError> {
        let url = format!("{}{}", self.base, path);
        let challenge = self.ping_reporting(retries.report)?;
        if challenge == Some(Challenge::Basic) && self.credentials.is_none() {
            return Err(RegistryError::NoBasicCredentials { url });
        }
        let mut authorization = self.authorization(&challenge, scope, false, retries.report)?;
        let mut refreshed = false;
        loop {
            match self.send_with_retries(
                method,
                &url,
                headers,
                authorization.as_deref(),
                retries,
            )? {
                Ok(response) => return Ok(response),
                Err((401, Some(Challenge::Bearer { .. }), _))
                    if !refreshed && matches!(challenge, Some(Challenge::Bearer { .. })) =>
                {
                    // The cached token may have expired or lack this scope: fetch a fresh one once.
                    refreshed = true;
                    authorization = self.authorization(&challenge, scope, true, retries.report)?;
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
        report: RetryReport<'_>,
    ) -> Result<Option<String>, RegistryError> {
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.basic_header()),
            Some(Challenge::Bearer { realm, service }) => {
                if !refresh && let Some(token) = self.tokens.lock().expect("tokens").get(scope) {
                    return Ok(Some(format!("Bearer {token}")));
                }
                let token = self.fetch_token(realm, service.as_deref(), Some(scope), report)?;
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
        report: RetryReport<'_>,
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
        let mut retries = Retries::document(&self.timeouts, report);
        let basic = self.basic_header();
        let response =
            match self.send_with_retries("GET", &url, &[], basic.as_deref(), &mut retries)? {
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

    /// Sends one request, retrying connection failures, timeouts, 5xx and 429 with backoff
    /// as `retries` allows. A final non-2xx answer is returned as
    /// `Err((status, challenge, errors))` for the caller to judge.
    fn send_with_retries(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        authorization: Option<&str>,
        retries: &mut Retries<'_>,
    ) -> Result<Result<Response, Refusal>, RegistryError> {
        self.send_body_with_retries(method, url, headers, authorization, None, retries)
    }

    /// [`Registry::send_with_retries`] with a body (and its length), made afresh for each
    /// attempt: push's uploads go through the same retries as every other request.
    fn send_body_with_retries(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        authorization: Option<&str>,
        body: Option<(upload::BodyFn<'_, '_>, u64)>,
        retries: &mut Retries<'_>,
    ) -> Result<Result<Response, Refusal>, RegistryError> {
        self.check_settings()?;
        loop {
            retries.attempts += 1;
            let mut request = self.agent.request(method, url);
            if let Some(deadline) = retries.deadline {
                request = request.timeout(deadline.saturating_duration_since(Instant::now()));
            }
            for (name, value) in headers {
                request = request.set(name, value);
            }
            if let Some(authorization) = authorization {
                request = request.set("Authorization", authorization);
            }
            let result = match body {
                Some((make, len)) => {
                    let reader = make().map_err(|e| RegistryError::Transport {
                        url: url.to_string(),
                        message: e.to_string(),
                    })?;
                    request.set("Content-Length", &len.to_string()).send(reader)
                }
                None => request.call(),
            };
            let delay = match result {
                Ok(response) => {
                    let limit = retries.deadline.map(|_| retries.limit);
                    return Ok(Ok(into_response(response, limit)));
                }
                Err(ureq::Error::Status(status, response)) if status == 429 || status >= 500 => {
                    match retries.next_delay(retry_after(&response)) {
                        Some(delay) => delay,
                        None => {
                            let (challenge, errors) = refusal(response);
                            return Ok(Err((status, challenge, errors)));
                        }
                    }
                }
                Err(ureq::Error::Status(status, response)) => {
                    let (challenge, errors) = refusal(response);
                    return Ok(Err((status, challenge, errors)));
                }
                Err(ureq::Error::Transport(transport)) => match retries.next_delay(None) {
                    Some(delay) => delay,
                    None => {
                        return Err(RegistryError::Transport {
                            url: url.to_string(),
                            message: self.transport_failure(url, &transport, retries),
                        });
                    }
                },
            };
            retries.wait(delay);
        }
    }

    /// Why an attempt failed to get an answer: ureq's words, or which time limit ran out.
    fn transport_failure(
        &self,
        url: &str,
        transport: &ureq::Transport,
        retries: &Retries<'_>,
    ) -> String {
        if !std::error::Error::source(transport).is_some_and(is_timeout) {
            return transport_message(url, transport);
        }
        if retries.past_deadline() {
            request_timed_out(retries.limit)
        } else if transport.kind() == ureq::ErrorKind::ConnectionFailed {
            format!(
                "timed out connecting after {} ({CONNECT_TIMEOUT_ENV})",
                show(self.timeouts.connect)
            )
        } else {
            format!(
                "no answer within {} ({STALL_TIMEOUT_ENV})",
                show(self.timeouts.stall)
            )
        }
    }
}

/// The failure of a small request that outlived its limit.
fn request_timed_out(limit: Duration) -> String {
    format!(
        "request timed out after {} ({REQUEST_TIMEOUT_ENV})",
        show(limit)
    )
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

/// A final non-2xx answer: its status, the challenge it carried, Docker's error details.
type Refusal = (u16, Option<Challenge>, Vec<ErrorDetail>);

fn into_response(response: ureq::Response, limit: Option<Duration>) -> Response {
    let header = |name: &str| response.header(name).map(str::to_string);
    Response {
        status: response.status(),
        content_type: header("content-type"),
        docker_digest: header("docker-content-digest"),
        content_length: header("content-length").and_then(|v| v.parse().ok()),
        content_range: header("content-range"),
        location: header("location"),
        url: response.get_url().to_string(),
        limit,
        body: response.into_reader(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_the_variables_take_them() {
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Some(Duration::from_millis(1500)));
        for bad in ["", "0", "-1", "soon", "5x", "nan", "inf", "1e99"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(show(Duration::from_secs(2)), "2s");
        assert_eq!(show(Duration::from_millis(500)), "500ms");
        assert_eq!(show(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn a_wait_is_counted_down_a_second_at_a_time() {
        let heard = Mutex::new(Vec::new());
        let report = |seconds| heard.lock().unwrap().push(seconds);
        let retries = Retries::stream(&report);
        let started = Instant::now();
        retries.wait(Duration::from_millis(2100));
        assert!(started.elapsed() >= Duration::from_millis(2100));
        // [3, 2, 1] on time; a slow machine may overshoot a sleep and skip a second, but the
        // count never goes up, repeats, or reaches 0, and it starts at most at 3.
        let heard = heard.into_inner().unwrap();
        assert!(
            !heard.is_empty()
                && heard[0] <= 3
                && heard.windows(2).all(|w| w[0] > w[1])
                && heard.iter().all(|&s| s >= 1),
            "{heard:?}"
        );
    }

    #[test]
    fn attempts_stop_at_five_and_before_the_deadline() {
        let mut retries = Retries::stream(&|_| {});
        for _ in 1..MAX_TRIES {
            retries.attempts += 1;
            assert!(retries.next_delay(None).is_some());
        }
        retries.attempts += 1;
        assert_eq!(retries.next_delay(None), None);

        let timeouts = Timeouts {
            request: Duration::from_secs(2),
            ..Timeouts::default()
        };
        let mut retries = Retries::document(&timeouts, &|_| {});
        retries.attempts = 1;
        assert_eq!(retries.next_delay(None), Some(Duration::from_millis(200)));
        // A wait that would end past the deadline is not started.
        assert_eq!(retries.next_delay(Some(Duration::from_secs(3))), None);
    }
}
