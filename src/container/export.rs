//! `export`: a container's whole filesystem as a tar (the writing itself is
//! `archive::export`'s), read the way the container's state allows.

use std::io::Write;

use super::ContainerError;
use super::lifecycle::current_state;
use super::store::ContainerDir;
use crate::archive::{self, ArchiveError};
use crate::image::store::{Store, StoreError};
use crate::time::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// The scratch directory for the overlay, made in the image store's `tmp/`.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

/// Writes the filesystem of the container in `dir` to `out` and returns `out`.
pub fn export<W: Write>(dir: &ContainerDir, store: &Store, out: W) -> Result<W, ExportError> {
    let record = dir.record()?;
    let scratch = store.temp_dir("export")?;
    // Docker's init layer stubs carry the container's creation time.
    let created = Timestamp::parse_rfc3339(&record.created)
        .map(|t| t.secs.max(0) as u64)
        .unwrap_or(0);
    let state = current_state(dir)?;
    // A running container is read through its own root mount: overlayfs leaves a second
    // mount over a live upper directory undefined. A stopped one (or a running one whose
    // root cannot be cloned) is read through a read-only overlay of its layers.
    let out = if state.status.is_running() {
        archive::export::export_running(state.pid, created, out)?
    } else {
        Err(out)
    };
    match out {
        Ok(out) => Ok(out),
        Err(out) => Ok(archive::export::export(
            &dir.path.join("upper"),
            &record.layers,
            scratch.path(),
            created,
            out,
        )?),
    }
}
