//! Finding a stored image from what a user typed: `name[:tag]`, `name@digest`, a full or
//! short image ID, or `sha256:…` — in Docker's order.

use super::digest::Digest;
use super::reference::Reference;
use super::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("short image ID {0} is ambiguous")]
    Ambiguous(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The image ID `input` names in `store`.
pub fn find_image(store: &Store, input: &str) -> Result<Digest, LookupError> {
    let hex = input.strip_prefix("sha256:").unwrap_or(input);
    let looks_like_id = !hex.is_empty()
        && hex.len() <= 64
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if input.starts_with("sha256:") || (looks_like_id && hex.len() == 64) {
        return find_by_id_prefix(store, hex, input);
    }
    if let Ok(reference) = Reference::parse(input) {
        if let Some(digest) = &reference.digest {
            let wanted = format!("{}@{}", reference.repository(), digest);
            for id in store.image_ids()? {
                if let Some(record) = store.image(&id)?
                    && record.repo_digests.contains(&wanted)
                {
                    return Ok(id);
                }
            }
        } else if let Some(id) = store.repositories()?.tags.get(&reference.to_string()) {
            return Ok(id.clone());
        }
    }
    if looks_like_id {
        return find_by_id_prefix(store, hex, input);
    }
    Err(LookupError::NotFound(input.to_string()))
}

fn find_by_id_prefix(store: &Store, hex: &str, input: &str) -> Result<Digest, LookupError> {
    let mut matches = store
        .image_ids()?
        .into_iter()
        .filter(|id| id.hex().starts_with(hex));
    match (matches.next(), matches.next()) {
        (Some(id), None) => Ok(id),
        (Some(_), Some(_)) => Err(LookupError::Ambiguous(hex.to_string())),
        _ => Err(LookupError::NotFound(input.to_string())),
    }
}
