//! Deleting a container's files, shared by `rm` and by `run --rm`'s monitor.

use std::io;
use std::path::{Path, PathBuf};

use super::ContainerError;
use super::record::ContainerRecord;
use super::store::{ContainerDir, ContainerStore};
use crate::sys::{self, FileLock};

/// Deletes a stopped container's files: its directory, runtime directory and, when asked,
/// its anonymous volumes. Idempotent. Fails when the container could not be taken away (a
/// read-only or broken store): nothing is removed then. Once the container is gone, an
/// anonymous volume that could not be taken away does not fail the removal (Docker's daemon
/// only logs it): it is returned, for the caller to warn about. Deleting what was taken away
/// is best effort: a leftover sits in the store's `tmp/` under a temporary name, swept by
/// the next berth command.
pub fn remove_files(
    store_root: &Path,
    dir: &ContainerDir,
    record: &ContainerRecord,
    anonymous_volumes: bool,
) -> Result<Vec<ContainerError>, ContainerError> {
    let detached = detach_files(store_root, dir, record, anonymous_volumes)?;
    for trash in &detached.trash {
        let _ = sys::remove_tree(trash);
    }
    detached.released.map(|()| detached.volumes_kept)
}

/// What [`detach_files`] took away, and what it could not, once the container itself was
/// taken: whatever failed after that, `trash` is to be deleted.
pub struct Detached {
    /// Moved into the store's `tmp/`: left to delete.
    pub trash: Vec<PathBuf>,
    /// The container's name released, or why not.
    pub released: Result<(), ContainerError>,
    /// Anonymous volumes that could not be taken away.
    pub volumes_kept: Vec<ContainerError>,
}

/// Takes a stopped container's files out of sight at once (renamed into the store's `tmp/`,
/// so nothing of the container is listed or found any more) and returns what is left to
/// delete. `run --rm`'s monitor reports the exit in between: deleting the files is the slow
/// part, and nobody needs to wait for it. Whatever a crash leaves in `tmp/` is swept.
///
/// Under the store lock, so that the name released is the one the record holds when the
/// container goes (a `rename` changes the record and the index under that lock too). The
/// lock is taken first: a store where it cannot be taken (read-only) fails before anything
/// changed.
pub fn detach_files(
    store_root: &Path,
    dir: &ContainerDir,
    record: &ContainerRecord,
    anonymous_volumes: bool,
) -> Result<Detached, ContainerError> {
    let unable = |e| unable_to_remove(dir, e);
    let (store, _lock) = writable(store_root, dir)?;
    let trash_dir = store_root.join("tmp");
    let mut trash = Vec::new();
    let mut take = |path: &Path| -> Result<Option<PathBuf>, ContainerError> {
        let to = trash_dir.join(sys::temp_name("removed"));
        let failed = |source| ContainerError::Remove {
            id: dir.id.clone(),
            path: path.to_path_buf(),
            source,
        };
        match std::fs::rename(path, &to) {
            Ok(()) => {
                trash.push(to.clone());
                Ok(Some(to))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && !path.exists() => Ok(None),
            // Another file system (a volume on another mount), or no tmp/: delete in place.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EXDEV | libc::ENOENT)) => {
                sys::remove_tree(path).map_err(failed)?;
                Ok(None)
            }
            Err(e) => Err(failed(e)),
        }
    };
    // The container itself first: once it is gone it is removed, whatever follows.
    let moved = take(&dir.path)?;
    // The name is read from the record as it was when the container went: it may have
    // been renamed since `record` was read.
    let name = moved
        .map(|to| ContainerDir {
            id: dir.id.clone(),
            path: to,
        })
        .and_then(|d| d.record().ok())
        .map_or_else(|| record.name.clone(), |r| r.name);
    // Gone from the listing: its name is free again.
    let released = store.release_name(&name, &dir.id).map_err(unable);
    let _ = std::fs::remove_dir_all(dir.runtime_dir());
    let mut volumes_kept = Vec::new();
    if anonymous_volumes {
        for mount in record.mounts.iter().filter(|m| m.anonymous) {
            if let Some(volume_dir) = mount.source.parent()
                && let Err(e) = take(volume_dir)
            {
                volumes_kept.push(e);
            }
        }
    }
    Ok(Detached {
        trash,
        released,
        volumes_kept,
    })
}

/// The container store and its lock, which only a writable store gives: what a removal
/// needs before it changes anything.
pub fn writable(
    store_root: &Path,
    dir: &ContainerDir,
) -> Result<(ContainerStore, FileLock), ContainerError> {
    let store = ContainerStore::open(store_root).map_err(|e| unable_to_remove(dir, e))?;
    let lock = store.lock().map_err(|e| unable_to_remove(dir, e))?;
    Ok((store, lock))
}

fn unable_to_remove(dir: &ContainerDir, e: ContainerError) -> ContainerError {
    match e {
        ContainerError::Io { path, source } => ContainerError::Remove {
            id: dir.id.clone(),
            path,
            source,
        },
        e => e,
    }
}
