//! Which containers use which images, as image removal and `system df` need to know it.
//!
//! The container store lives on the floor above `image/`, so `image/` does not read it: the
//! caller (who may import both) collects this with `container::in_use` and passes it in.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::digest::Digest;

/// One container that uses an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerUse {
    pub container_id: String,
    /// Running or paused: Docker's "running container" conflict, which `-f` cannot override.
    pub running: bool,
}

/// The images and layer directories containers use.
#[derive(Debug, Clone, Default)]
pub struct ImageUsers {
    /// Every image used by at least one container, with those containers.
    pub images: HashMap<Digest, Vec<ContainerUse>>,
    /// Overlay lower directories of every container (`layers/<diffid>/diff`): kept even when
    /// `rmi -f` deletes the image a stopped container was created from, as Docker keeps them.
    pub layer_dirs: HashSet<PathBuf>,
}
