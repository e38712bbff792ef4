//! Finding a local image from what a user typed, the way Docker's `GetImage` does: a full ID
//! (`sha256:<hex>` or 64 hex), then a reference (`name[:tag]`, `name@digest`) looked up in the
//! tag index, then a unique ID prefix (`1d79`, `sha256:1d79`).

use super::digest::Digest;
use super::index;
use super::reference::{Reference, ReferenceError};
use super::store::Repositories;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LookupError {
    /// Docker's `ErrImageDoesNotExist`, with the reference as Docker prints it.
    #[error("No such image: {0}")]
    NotFound(String),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// True when `input` names the image by (a prefix of) its ID rather than by a reference.
pub fn is_id_prefix(id: &Digest, input: &str) -> bool {
    let hex = input.strip_prefix("sha256:").unwrap_or(input);
    is_hex(hex) && id.hex().starts_with(hex)
}

/// The image ID `input` names in `repos` (loaded through [`index::load`]).
pub fn resolve(repos: &Repositories, input: &str) -> Result<Digest, LookupError> {
    let images = index::summaries(repos);
    // A full ID.
    let full = if input.len() == 64 && is_hex(input) {
        Some(format!("sha256:{input}"))
    } else if input.starts_with("sha256:") && input.len() == 71 {
        Some(input.to_string())
    } else {
        None
    };
    if let Some(full) = full {
        let digest = Digest::parse(&full).map_err(|_| LookupError::NotFound(input.into()))?;
        return if images.contains_key(&digest) {
            Ok(digest)
        } else {
            Err(LookupError::NotFound(full))
        };
    }
    let reference = Reference::parse(input)?;
    if let Some(digest) = &reference.digest {
        let wanted = format!("{}@{}", reference.repository(), digest);
        if let Some((id, _)) = images
            .iter()
            .find(|(_, s)| s.repo_digests.contains(&wanted))
        {
            return Ok(id.clone());
        }
    } else if let Some(id) = repos.tags.get(&reference.to_string())
        && images.contains_key(id)
    {
        return Ok(id.clone());
    }
    // A unique ID prefix.
    let hex = input.strip_prefix("sha256:").unwrap_or(input);
    if is_hex(hex) {
        let mut found = images.keys().filter(|id| id.hex().starts_with(hex));
        if let (Some(id), None) = (found.next(), found.next()) {
            return Ok(id.clone());
        }
    }
    Err(LookupError::NotFound(reference.familiar()))
}

/// Every reference naming `id`, canonical (`docker.io/library/busybox:latest`, then
/// `…@sha256:…`): tags sorted, then digests.
pub fn references_of(repos: &Repositories, id: &Digest) -> (Vec<String>, Vec<String>) {
    let tags = repos.tags_of(id);
    let digests = index::summaries(repos)
        .get(id)
        .map(|s| s.repo_digests.clone())
        .unwrap_or_default();
    (tags, digests)
}

/// `docker.io/library/busybox:latest` → `busybox:latest` (and digests likewise).
pub fn familiar(canonical: &str) -> String {
    Reference::parse_named(canonical)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| canonical.to_string())
}
