//! One image as the listing index (`repositories.json`, see `index.rs`) records it. Its own
//! file because both the store, which reads and writes that file, and the index, which fills
//! it, need the type, and the index is built on the store.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::digest::Digest;

/// What listing needs to know about one image.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageSummary {
    /// The config's `created`, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Sum of the layers' unpacked sizes (Docker's image size).
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The image this one was committed or built on (Docker's local `Parent`); none for pulls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Digest>,
    /// Layer diffIDs, bottom first.
    #[serde(default)]
    pub layers: Vec<Digest>,
    /// Per-layer unpacked sizes, in `layers` order.
    #[serde(default)]
    pub layer_sizes: Vec<u64>,
    /// `domain/path@sha256:…` references that name this image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repo_digests: Vec<String>,
    /// When a tag was last pointed at this image (Docker's `Metadata.LastTagTime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tag_time: Option<String>,
}
