//! Deleting a container's files, shared by `rm` and by `run --rm`'s monitor.

use std::path::{Path, PathBuf};

use super::record::ContainerRecord;
use super::store::{ContainerDir, ContainerStore};
use crate::sys;

/// Deletes a stopped container's files: its directory, runtime directory and, when asked,
/// its anonymous volumes. Best effort, idempotent.
pub fn remove_files(
    store_root: &Path,
    dir: &ContainerDir,
    record: &ContainerRecord,
    anonymous_volumes: bool,
) {
    for trash in detach_files(store_root, dir, record, anonymous_volumes) {
        let _ = sys::remove_tree(&trash);
    }
}

/// Takes a stopped container's files out of sight at once (renamed into the store's `tmp/`,
/// so nothing of the container is listed or found any more) and returns what is left to
/// delete. `run --rm`'s monitor reports the exit in between: deleting the files is the slow
/// part, and nobody needs to wait for it. Whatever a crash leaves in `tmp/` is swept.
pub fn detach_files(
    store_root: &Path,
    dir: &ContainerDir,
    record: &ContainerRecord,
    anonymous_volumes: bool,
) -> Vec<PathBuf> {
    let trash_dir = store_root.join("tmp");
    let mut trash = Vec::new();
    let mut take = |path: &Path| {
        let to = trash_dir.join(sys::temp_name("removed"));
        match std::fs::rename(path, &to) {
            Ok(()) => trash.push(to),
            // Another filesystem, or no tmp/: delete in place.
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                let _ = sys::remove_tree(path);
            }
            Err(_) => {}
        }
    };
    if anonymous_volumes {
        for mount in record.mounts.iter().filter(|m| m.anonymous) {
            if let Some(volume_dir) = mount.source.parent() {
                take(volume_dir);
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir.runtime_dir());
    take(&dir.path);
    // Gone from the listing: its name is free again.
    if let Ok(store) = ContainerStore::open(store_root)
        && let Ok(_lock) = store.lock()
    {
        let _ = store.release_name(&record.name, &dir.id);
    }
    trash
}
