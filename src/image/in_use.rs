//! Which images containers use, so `rmi`, `image prune` and `system df` can respect them.
//! Reads the container store (`<root>/containers/<id>/container.json` `image_id`, and the
//! state as re-derived from the kernel by `container::lifecycle::current_state`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::digest::Digest;
use crate::container::lifecycle;
use crate::container::record::{ContainerRecord, State};
use crate::container::store::ContainerStore;

/// One container that uses an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerUse {
    pub container_id: String,
    /// Running or paused: Docker's "running container" conflict, which `-f` cannot override.
    pub running: bool,
}

/// Every image used by at least one container, with those containers (running ones first).
pub fn images_in_use(root: &Path) -> HashMap<Digest, Vec<ContainerUse>> {
    let mut used: HashMap<Digest, Vec<ContainerUse>> = HashMap::new();
    if !root.join("containers").is_dir() {
        return used;
    }
    let Ok(store) = ContainerStore::open(root) else {
        return used;
    };
    for dir in store.list().unwrap_or_default() {
        let Ok(record) = dir.record() else { continue };
        let running = lifecycle::current_state(&dir).is_ok_and(|s| s.status.is_running());
        used.entry(record.image_id).or_default().push(ContainerUse {
            container_id: record.id,
            running,
        });
    }
    for list in used.values_mut() {
        list.sort_by_key(|c| !c.running);
    }
    used
}

/// What the container store holds, as far as images care: which images and which layer
/// directories containers use, and the containers' sizes for `system df`.
#[derive(Debug, Clone, Default)]
pub struct ContainerUsage {
    pub images: HashMap<Digest, Vec<ContainerUse>>,
    /// Overlay lower directories of every container (`layers/<diffid>/diff`): kept even when
    /// `rmi -f` deletes the image a stopped container was created from, as Docker keeps them.
    pub layer_dirs: HashSet<PathBuf>,
    pub total: usize,
    pub running: usize,
    /// Bytes in the containers' writable layers, and in those of stopped ones.
    pub size: u64,
    pub reclaimable: u64,
    /// Each container with its state and writable-layer size (filled when sizes are asked).
    pub containers: Vec<(ContainerRecord, State, u64)>,
}

/// Like [`images_in_use`], plus layers and sizes (walks the writable layers only if `sizes`).
pub fn container_usage(root: &Path, sizes: bool) -> ContainerUsage {
    let mut usage = ContainerUsage::default();
    if !root.join("containers").is_dir() {
        return usage;
    }
    let Ok(store) = ContainerStore::open(root) else {
        return usage;
    };
    for dir in store.list().unwrap_or_default() {
        let Ok(record) = dir.record() else { continue };
        let state = lifecycle::current_state(&dir).unwrap_or_default();
        let running = state.status.is_running();
        usage.total += 1;
        let size = if sizes {
            dir_size(&dir.path.join("upper"))
        } else {
            0
        };
        usage.size += size;
        if running {
            usage.running += 1;
        } else {
            usage.reclaimable += size;
        }
        usage.layer_dirs.extend(record.layers.iter().cloned());
        usage
            .images
            .entry(record.image_id.clone())
            .or_default()
            .push(ContainerUse {
                container_id: record.id.clone(),
                running,
            });
        if sizes {
            usage.containers.push((record, state, size));
        }
    }
    // Newest first, as Docker lists them.
    usage
        .containers
        .sort_by(|a, b| b.0.created.cmp(&a.0.created));
    usage
}

/// Docker's `directory.Size`: bytes of every non-directory entry, hard links counted once.
pub fn dir_size(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.size() > 0 && seen.insert(meta.ino()) {
                total += meta.size();
            }
        }
    }
    total
}
