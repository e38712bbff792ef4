//! The containers `ps` shows and `container prune` removes.

use std::path::Path;

use super::ContainerError;
use super::filter::{Filter, PruneFilters};
use super::in_use;
use super::lifecycle::current_state;
use super::ops;
use super::record::{ContainerRecord, State};
use super::store::{ContainerDir, ContainerStore};

/// A container with its record and its state as of now.
pub struct Listed {
    pub dir: ContainerDir,
    pub record: ContainerRecord,
    pub state: State,
}

impl Listed {
    /// Bytes the container wrote over its image (`ps --size`, what prune reclaims).
    pub fn size(&self) -> u64 {
        in_use::dir_size(&self.dir.path.join("upper"))
    }
}

/// Every container whose record and state can be read, newest first. A container being
/// created or removed at this moment has no readable pair and is not shown.
pub fn list(store: &ContainerStore) -> Result<Vec<Listed>, ContainerError> {
    let mut listed = Vec::new();
    for dir in store.list()? {
        let (Ok(record), Ok(state)) = (dir.record(), current_state(&dir)) else {
            continue;
        };
        listed.push(Listed { dir, record, state });
    }
    listed.sort_by(|a, b| b.record.created.cmp(&a.record.created));
    Ok(listed)
}

/// What `ps` asks for.
pub struct Selection {
    /// Stopped containers too.
    pub all: bool,
    /// Only the newest (of any state).
    pub latest: bool,
    /// Only the `n` newest (of any state).
    pub last: Option<usize>,
    pub filters: Vec<Filter>,
}

/// The containers `selection` keeps, newest first.
pub fn select(
    store: &ContainerStore,
    selection: &Selection,
) -> Result<Vec<Listed>, ContainerError> {
    let show_all = selection.all || selection.latest || selection.last.is_some();
    let mut listed = list(store)?;
    listed.retain(|l| {
        (show_all || l.state.status.is_running())
            && selection
                .filters
                .iter()
                .all(|f| f.matches(&l.record, &l.state))
    });
    if selection.latest {
        listed.truncate(1);
    }
    if let Some(n) = selection.last {
        listed.truncate(n);
    }
    Ok(listed)
}

/// What `container prune` removed.
pub struct Pruned {
    /// IDs, newest first.
    pub deleted: Vec<String>,
    pub reclaimed: u64,
    /// The containers whose files could not be removed (a read-only or broken store).
    pub failed: Vec<ContainerError>,
}

/// Removes every stopped container `filters` keeps. One that cannot be removed because it
/// started or went meanwhile is left alone, as Docker does; one the store cannot remove is
/// reported in `failed`.
pub fn prune(
    root: &Path,
    store: &ContainerStore,
    filters: &PruneFilters,
) -> Result<Pruned, ContainerError> {
    let mut pruned = Pruned {
        deleted: Vec::new(),
        reclaimed: 0,
        failed: Vec::new(),
    };
    for listed in list(store)? {
        if listed.state.status.is_running() || !filters.matches(&listed.record) {
            continue;
        }
        let size = listed.size();
        match ops::remove(root, &listed.dir, false, false) {
            // No volumes asked: none kept.
            Ok(_) => {
                pruned.reclaimed += size;
                pruned.deleted.push(listed.record.id);
            }
            Err(ContainerError::RemoveRunning(_) | ContainerError::NotFound(_)) => {}
            Err(e) => pruned.failed.push(e),
        }
    }
    Ok(pruned)
}
