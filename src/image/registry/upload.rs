//! What `push` (and `import URL`) need from the registry client beyond GETs: requests with a
//! body, replayed on retry; the `Location` header of upload sessions; plain HTTP GETs of
//! arbitrary URLs through the same agent, retries and error mapping.

use std::io::{self, Read};

use super::auth::Challenge;
use super::{MAX_DOCUMENT_BYTES, Registry, RegistryError, Retries};
use crate::config::Config;

/// Produces a fresh body for each attempt.
pub type BodyFn<'a, 'b> = &'a dyn Fn() -> io::Result<Box<dyn Read + 'b>>;

/// The parts of an answer push looks at.
#[derive(Debug)]
pub struct Sent {
    pub status: u16,
    pub location: Option<String>,
    pub docker_digest: Option<String>,
    pub body: Vec<u8>,
}

enum Attempt {
    Done(Sent),
    Failed(u16, Option<Challenge>, Vec<super::ErrorDetail>),
}

impl Registry {
    /// Resolves a `Location` header (absolute, or relative to the registry) to a URL.
    pub fn resolve_url(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else if let Ok(base) = url::Url::parse(&self.base)
            && let Ok(joined) = base.join(location)
        {
            joined.to_string()
        } else {
            format!("{}{}", self.base, location)
        }
    }

    /// Sends `method` to `path_or_url` with the authorization `scope` calls for and an optional
    /// body (with its length). 2xx answers are returned; anything else is an error.
    pub fn send(
        &self,
        method: &str,
        path_or_url: &str,
        scope: &str,
        headers: &[(&str, String)],
        body: Option<(BodyFn<'_, '_>, u64)>,
    ) -> Result<Sent, RegistryError> {
        let url = if path_or_url.starts_with('/') {
            format!("{}{}", self.base, path_or_url)
        } else {
            path_or_url.to_string()
        };
        let challenge = self.ping()?;
        if challenge == Some(Challenge::Basic) && self.credentials.is_none() {
            return Err(RegistryError::NoBasicCredentials { url });
        }
        let mut authorization = self.authorization(&challenge, scope, false, &|_| {})?;
        let mut refreshed = false;
        // Uploads of any size: no deadline; the attempts are shared by a token refresh.
        let mut retries = Retries::stream(&|_| {});
        loop {
            match self.attempt(
                method,
                &url,
                headers,
                authorization.as_deref(),
                body,
                &mut retries,
            )? {
                Attempt::Done(sent) => return Ok(sent),
                Attempt::Failed(401, Some(Challenge::Bearer { .. }), _)
                    if !refreshed && matches!(challenge, Some(Challenge::Bearer { .. })) =>
                {
                    refreshed = true;
                    authorization = self.authorization(&challenge, scope, true, &|_| {})?;
                }
                Attempt::Failed(401, _, errors) => {
                    return Err(RegistryError::Unauthorized { url, errors });
                }
                Attempt::Failed(status, _, errors) => {
                    return Err(RegistryError::Status {
                        status,
                        url,
                        errors,
                    });
                }
            }
        }
    }

    /// One request (retried through [`Retries`], as every other request is): its answer, or
    /// the refusal it ended with.
    fn attempt(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        authorization: Option<&str>,
        body: Option<(BodyFn<'_, '_>, u64)>,
        retries: &mut Retries<'_>,
    ) -> Result<Attempt, RegistryError> {
        match self.send_body_with_retries(method, url, headers, authorization, body, retries)? {
            Ok(response) => {
                let mut bytes = Vec::new();
                let _ = response
                    .body
                    .take(MAX_DOCUMENT_BYTES)
                    .read_to_end(&mut bytes);
                Ok(Attempt::Done(Sent {
                    status: response.status,
                    location: response.location,
                    docker_digest: response.docker_digest,
                    body: bytes,
                }))
            }
            Err((status, challenge, errors)) => Ok(Attempt::Failed(status, challenge, errors)),
        }
    }
}

/// A GET of any http(s) URL through the registry client's agent (retries, redirects, TLS with
/// the system roots). A non-2xx answer is an error naming the status.
pub fn http_get(url: &str) -> Result<Box<dyn Read + Send + Sync>, RegistryError> {
    let parsed = url::Url::parse(url).map_err(|e| RegistryError::Transport {
        url: url.to_string(),
        message: e.to_string(),
    })?;
    let host = parsed.host_str().unwrap_or("localhost").to_string();
    let registry = Registry::with_credentials(&host, &Config::default(), None);
    // A download of any size: limited by stalls, not by a deadline.
    let mut retries = Retries::stream(&|_| {});
    match registry.send_with_retries("GET", url, &[], None, &mut retries)? {
        Ok(response) => Ok(response.body),
        Err((status, _, _)) => Err(RegistryError::Transport {
            url: url.to_string(),
            message: format!("unexpected HTTP status {status} {}", reason(status)),
        }),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "",
    }
}
