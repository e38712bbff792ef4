//! Image references (`ubuntu`, `user/app:1.0`, `host:5000/a/b@sha256:…`) parsed and normalised
//! exactly as Docker's `reference.ParseNormalizedNamed` does, so the same string names the same
//! image in docker and in berth.

use std::fmt;

use super::digest::Digest;

/// Docker Hub's canonical domain; `index.docker.io` is an alias of it.
pub const DOCKER_HUB: &str = "docker.io";
const DEFAULT_TAG: &str = "latest";
const NAME_MAX: usize = 255;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    Format,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    #[error("invalid reference format: repository name (must be at most 255 characters)")]
    NameTooLong,
    #[error("invalid reference format: {0}")]
    Digest(String),
}

/// A fully normalised reference: `domain/path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses a user-typed reference, adding `docker.io`, `library/` and `:latest` like Docker.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let mut reference = Self::parse_named(input)?;
        if reference.tag.is_none() && reference.digest.is_none() {
            reference.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(reference)
    }

    /// Parses without defaulting the tag (for `pull -a` and filters that take a bare repository).
    pub fn parse_named(input: &str) -> Result<Reference, ReferenceError> {
        if is_full_hex_id(input) {
            return Err(ReferenceError::HexName(input.to_string()));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => (
                rest,
                Some(Digest::parse(digest).map_err(|e| ReferenceError::Digest(e.to_string()))?),
            ),
            None => (input, None),
        };
        // A tag is the part after the last ':' unless that ':' belongs to a domain's port
        // (it is followed by a '/').
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(tag) = tag
            && !is_valid_tag(tag)
        {
            return Err(ReferenceError::Format);
        }
        let (domain, path) = split_domain(name);
        if path.to_lowercase() != path {
            let shown = if domain == DOCKER_HUB && !path.contains('/') {
                format!("library/{path}")
            } else {
                path.to_string()
            };
            return Err(ReferenceError::Uppercase(shown));
        }
        if !is_valid_domain(&domain) || !is_valid_path(path) {
            return Err(ReferenceError::Format);
        }
        let path = if domain == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        if domain.len() + 1 + path.len() > NAME_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        Ok(Reference {
            domain,
            path,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// `docker.io/library/busybox`
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The repository as Docker shows it to people: `busybox`, `user/app`, `host:5000/x`.
    pub fn familiar_repository(&self) -> String {
        if self.domain == DOCKER_HUB {
            self.path
                .strip_prefix("library/")
                .filter(|rest| !rest.contains('/'))
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.repository()
        }
    }

    /// `busybox:latest` or `busybox@sha256:…`: what Docker prints in status lines.
    pub fn familiar(&self) -> String {
        let mut out = self.familiar_repository();
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest.as_str());
        }
        out
    }

    /// The tag or digest a registry's manifest endpoint takes.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        }
    }

    pub fn with_digest(&self, digest: &Digest) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest.clone()),
        }
    }
}

impl fmt::Display for Reference {
    /// The canonical form `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repository())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Docker's `splitDockerDomain`: the first component is a registry host only if it looks like
/// one (has a '.' or ':', is `localhost`, or has uppercase letters).
fn split_domain(name: &str) -> (String, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            let domain = if first == "index.docker.io" {
                DOCKER_HUB
            } else {
                first
            };
            (domain.to_string(), rest)
        }
        _ => (DOCKER_HUB.to_string(), name),
    }
}

fn is_full_hex_id(input: &str) -> bool {
    input.len() == 64
        && input
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `host[:port]` where host is dot-separated labels or a bracketed IPv6 address.
fn is_valid_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        match rest.split_once(']') {
            Some((addr, after)) => {
                if addr.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                match after {
                    "" => return true,
                    _ => match after.strip_prefix(':') {
                        Some(port) => ("", Some(port)),
                        None => return false,
                    },
                }
            }
            None => return false,
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    host.is_empty() && domain.starts_with('[')
        || host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        })
}

/// Path components: `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
fn is_valid_path(path: &str) -> bool {
    !path.is_empty() && path.split('/').all(is_valid_path_component)
}

fn is_valid_path_component(component: &str) -> bool {
    let b = component.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(input: &str) -> String {
        Reference::parse(input).unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(canon("ubuntu"), "docker.io/library/ubuntu:latest");
        assert_eq!(canon("ubuntu:18.04"), "docker.io/library/ubuntu:18.04");
        assert_eq!(canon("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            canon("index.docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(canon("localhost/a"), "localhost/a:latest");
        assert_eq!(canon("host:5000/a/b:tag"), "host:5000/a/b:tag");
        assert_eq!(
            canon("127.0.0.1:5000/busybox"),
            "127.0.0.1:5000/busybox:latest"
        );
        assert_eq!(canon("[::1]:5000/x:y"), "[::1]:5000/x:y");
        let hex = "a".repeat(64);
        assert_eq!(
            canon(&format!("busybox@sha256:{hex}")),
            format!("docker.io/library/busybox@sha256:{hex}")
        );
        assert_eq!(
            canon(&format!("busybox:1@sha256:{hex}")),
            format!("docker.io/library/busybox:1@sha256:{hex}")
        );
        assert_eq!(
            canon("a__b-c---d/e.f_g"),
            "docker.io/a__b-c---d/e.f_g:latest"
        );
    }

    #[test]
    fn familiar_forms() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.familiar(), "busybox:latest");
        let r = Reference::parse("docker.io/library/a/b").unwrap();
        assert_eq!(r.familiar(), "library/a/b:latest");
        let r = Reference::parse("127.0.0.1:5000/x:1").unwrap();
        assert_eq!(r.familiar(), "127.0.0.1:5000/x:1");
    }

    #[test]
    fn rejects_like_docker() {
        use ReferenceError::*;
        let err = |s: &str| Reference::parse(s).unwrap_err();
        assert_eq!(err("UPPER"), Uppercase("library/UPPER".into()));
        assert_eq!(err("user/App"), Uppercase("user/App".into()));
        assert_eq!(err(""), Format);
        assert_eq!(err("a:"), Format);
        assert_eq!(err("a:-x"), Format);
        assert_eq!(err("a..b"), Format);
        assert_eq!(err("-a"), Format);
        assert_eq!(err("a/"), Format);
        assert_eq!(err("a b"), Format);
        assert_eq!(err("host:port/x"), Format);
        assert!(matches!(err("a@sha256:abc"), Digest(_)));
        assert!(matches!(err(&"a".repeat(64)), HexName(_)));
        assert_eq!(err(&format!("{}:1", "a".repeat(300))), NameTooLong);
        // Uppercase in the first component makes it a (valid-looking) domain, as in Docker.
        assert_eq!(canon("Host/x"), "Host/x:latest");
    }
}
