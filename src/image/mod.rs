//! Images: reference grammar, digests, the registry client, manifests, pull, and the local
//! content-addressed store.

pub mod acquire;
pub mod assemble;
pub mod changes;
pub mod config;
pub mod digest;
pub mod docker_archive;
pub mod history;
pub mod import;
pub mod index;
pub mod inspect;
pub mod list;
pub mod manifest;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registry;
pub mod remove;
pub mod resolve;
pub mod search;
pub mod store;
pub mod summary;
pub mod usage;
pub mod users;

use self::manifest::ManifestError;
use self::reference::{Reference, ReferenceError};
use self::registry::RegistryError;
use self::store::StoreError;
use crate::archive::ArchiveError;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("manifest for {reference} not found: manifest unknown: manifest unknown")]
    ManifestUnknown { reference: String },
    #[error(
        "pull access denied for {repository}, repository does not exist or may require 'docker login': denied: requested access to the resource is denied"
    )]
    PullAccessDenied { repository: String },
    #[error("invalid manifest: {0}")]
    InvalidManifest(String),
    #[error("invalid image config: {0}")]
    InvalidConfig(String),
    #[error("layer diffID mismatch: expected {expected}, got {actual}")]
    LayerMismatch { expected: String, actual: String },
    #[error(transparent)]
    Change(#[from] changes::ChangeError),
}

impl ImageError {
    /// Turns a failed manifest GET into the message Docker gives for the same answer.
    pub fn from_manifest_fetch(e: RegistryError, reference: &Reference) -> ImageError {
        let denied = matches!(e, RegistryError::Unauthorized { .. })
            || e.status() == Some(403)
            || e.has_code("NAME_UNKNOWN")
            || e.has_code("DENIED");
        if denied {
            return ImageError::PullAccessDenied {
                repository: reference.familiar_repository(),
            };
        }
        if e.status() == Some(404) {
            return ImageError::ManifestUnknown {
                reference: reference.familiar(),
            };
        }
        ImageError::Registry(e)
    }
}
