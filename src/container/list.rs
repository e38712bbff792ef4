//! The containers `ps` shows and `container prune` removes.

use std::path::Path;

use super::ContainerError;
use super::filter::{Filter, PruneFilters};
use super::in_use;
use super::lifecycle;
use super::ops;
use super::record::{RecordSummary, State};
use super::store::{ContainerDir, ContainerStore};

/// A container with what listing needs of its record, and its state as of now.
pub struct Listed {
    pub dir: ContainerDir,
    pub record: RecordSummary,
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
    list_where(store, |_| true)
}

/// [`list`] of the containers whose state `keep` accepts. The state is read first, and the
/// record only of a container that is kept: `ps` reads no record of a stopped container.
/// Two small files per container and nothing else: listing a store of a thousand
/// containers must not cost a thousand of anything more (its spec, its network endpoint,
/// a process of its own).
fn list_where(
    store: &ContainerStore,
    keep: impl Fn(&State) -> bool,
) -> Result<Vec<Listed>, ContainerError> {
    let mut reader = store.reader()?;
    let mut listed = Vec::new();
    for id in store.ids()? {
        let Ok(recorded) = reader.state(&id) else {
            continue;
        };
        let dir = store.dir_of(&id);
        let state = lifecycle::as_of_now(&dir, recorded);
        if !keep(&state) {
            continue;
        }
        let Ok(record) = reader.summary(&id) else {
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
    let mut listed = list_where(store, |state| show_all || state.status.is_running())?;
    listed.retain(|l| {
        selection
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
    // Directories abandoned by creations that crashed before berth built new containers in
    // the store's tmp/ (swept by every command): only an old store can have them.
    store.sweep();
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
