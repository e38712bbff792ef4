//! Which images containers use, so `rmi`, `image prune` and `system df` can respect them.
//! Reads the container store (`<root>/containers/<id>/container.json` `image_id`, and the
//! state as re-derived from the kernel by `lifecycle::current_state`) and hands `image/` the
//! result as data ([`ImageUsers`]), since `image/` may not read containers itself.

use std::collections::HashSet;
use std::path::Path;

use super::record::{ContainerRecord, State};
use super::store::ContainerStore;
use super::{ContainerError, lifecycle};
use crate::image::users::{ContainerUse, ImageUsers};

/// What the container store holds, as far as images care: which images and which layer
/// directories containers use, and the containers' sizes for `system df`.
#[derive(Debug, Clone, Default)]
pub struct ContainerUsage {
    pub users: ImageUsers,
    pub total: usize,
    pub running: usize,
    /// Bytes in the containers' writable layers, and in those of stopped ones.
    pub size: u64,
    pub reclaimable: u64,
    /// Each container with its state and writable-layer size (filled when sizes are asked).
    pub containers: Vec<(ContainerRecord, State, u64)>,
}

/// The images and layer directories containers use, for `rmi` and `image prune`: unlike
/// [`container_usage`] (`system df`, where a container it cannot read is one left out of a
/// count), a container store or record that cannot be read is an error, as the image it
/// does not show might be one a container uses. A container removed while the store is
/// read is no user.
pub fn image_users(root: &Path) -> Result<ImageUsers, ContainerError> {
    let mut users = ImageUsers::default();
    if !root.join("containers").is_dir() {
        return Ok(users);
    }
    let store = ContainerStore::open(root)?;
    for dir in store.list()? {
        let record = match dir.record() {
            Ok(record) => record,
            Err(_) if !dir.record_path().exists() => continue,
            Err(e) => return Err(e),
        };
        let running = match lifecycle::current_state(&dir) {
            Ok(state) => state.status.is_running(),
            Err(_) if !dir.record_path().exists() => continue,
            Err(e) => return Err(e),
        };
        users.layer_dirs.extend(record.layers.iter().cloned());
        users
            .images
            .entry(record.image_id.clone())
            .or_default()
            .push(ContainerUse {
                container_id: record.id.clone(),
                running,
            });
    }
    Ok(users)
}

/// The images and layers containers use, and their sizes (walks the writable layers only if
/// `sizes`).
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
        usage.users.layer_dirs.extend(record.layers.iter().cloned());
        usage
            .users
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
