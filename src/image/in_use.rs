//! Which images containers use, so `rmi`, `image prune` and `system df` can respect them.
//! Reads the container store (`<root>/containers/<id>/container.json` `image_id`, and the
//! state as re-derived from the kernel by `container::lifecycle::current_state`).

use std::collections::HashMap;
use std::path::Path;

use super::digest::Digest;
use crate::container::lifecycle;
use crate::container::record::Status;
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
        let running = lifecycle::current_state(&dir)
            .is_ok_and(|s| matches!(s.status, Status::Running | Status::Paused));
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
