//! A container's changes, read from its overlay upper directory, as `docker diff` reports them
//! (Docker's overlay2 uses its "naive" diff on kernels with redirect_dir, Debian's included):
//! a 0/0 character device is a deletion; an entry no lower layer has is an addition; one a lower
//! layer has is a modification when Docker's `statDifferent` says so (mode, owner, device, and
//! for non-directories size and mtime); every directory holding a change is a modification; an
//! opaque directory over a lower one hides the lower entries, which are deletions unless
//! re-created.
//!
//! The runtime creates mountpoints (`/proc`, `/etc/hostname`, …) in the upper directory where
//! Docker puts them in a separate init layer; those stubs, and directories that hold nothing
//! else, are invisible here and in commits.

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::ArchiveError;
use super::tarwrite::is_opaque;

/// What Docker's init layer holds: mountpoints the runtime needs in every container.
pub const INIT_PATHS: &[&str] = &[
    "/.dockerenv",
    "/dev",
    "/dev/console",
    "/dev/pts",
    "/dev/shm",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/mtab",
    "/etc/resolv.conf",
    "/proc",
    "/sys",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modify,
    Add,
    Delete,
}

impl ChangeKind {
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Modify => 'C',
            ChangeKind::Add => 'A',
            ChangeKind::Delete => 'D',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub path: PathBuf,
}

/// True for a runtime-created mountpoint stub: an init path that is an empty file, an empty
/// directory or a symlink.
pub fn is_stub(path: &Path, meta: &fs::Metadata) -> bool {
    if !INIT_PATHS.iter().any(|p| Path::new(p) == path) {
        return false;
    }
    let ft = meta.file_type();
    (ft.is_file() && meta.len() == 0) || ft.is_symlink() || ft.is_dir()
}

/// Decides which upper-directory entries are the runtime's and not the container's.
pub struct StubFilter {
    upper: PathBuf,
}

impl StubFilter {
    pub fn new(upper: &Path) -> StubFilter {
        StubFilter {
            upper: upper.to_path_buf(),
        }
    }

    /// `path` is absolute inside the container ("/etc").
    pub fn hidden(&self, path: &Path, meta: &fs::Metadata) -> bool {
        if is_stub(path, meta) && (!meta.is_dir() || self.stub_only(path, true)) {
            return true;
        }
        meta.is_dir() && self.stub_only(path, false)
    }

    /// A directory whose upper contents are all stubs (at least one, unless `allow_empty`).
    fn stub_only(&self, dir: &Path, allow_empty: bool) -> bool {
        let host = self.upper.join(dir.strip_prefix("/").unwrap_or(dir));
        let Ok(entries) = fs::read_dir(&host) else {
            return false;
        };
        let mut any = false;
        for entry in entries.flatten() {
            any = true;
            let child = dir.join(entry.file_name());
            let Ok(meta) = entry.metadata() else {
                return false;
            };
            if !self.hidden(&child, &meta) {
                return false;
            }
        }
        any || allow_empty
    }
}

/// The changes recorded in `upper` over `lowers` (topmost first), in walk order: lexical, each
/// parent before its children.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>, ArchiveError> {
    let filter = StubFilter::new(upper);
    let mut out = Vec::new();
    let mut changed_dirs = HashSet::new();
    walk(
        upper,
        lowers,
        Path::new("/"),
        &filter,
        &mut out,
        &mut changed_dirs,
        &BTreeSet::new(),
    )?;
    Ok(out)
}

/// The names `dir` has in the merged lower layers (topmost first): a whiteout or an opaque
/// directory in a higher layer hides what lies below it.
fn lower_names(lowers: &[PathBuf], dir: &Path) -> BTreeSet<OsString> {
    let rel = dir.strip_prefix("/").unwrap_or(dir);
    let mut seen: BTreeSet<OsString> = BTreeSet::new();
    let mut present = BTreeSet::new();
    for layer in lowers {
        let host = layer.join(rel);
        let Ok(entries) = fs::read_dir(&host) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !seen.insert(name.clone()) {
                continue;
            }
            let whiteout = entry
                .metadata()
                .map(|m| m.file_type().is_char_device() && m.rdev() == 0)
                .unwrap_or(false);
            if !whiteout {
                present.insert(name);
            }
        }
        if is_opaque(&host) {
            break;
        }
    }
    present
}

/// Records `change`, preceded by a `C` for every ancestor directory not yet reported (Docker
/// reports each directory that holds a change).
fn emit(out: &mut Vec<Change>, reported: &mut HashSet<PathBuf>, change: Change) {
    let mut ancestors: Vec<&Path> = change
        .path
        .ancestors()
        .skip(1)
        .filter(|a| *a != Path::new("/") && !a.as_os_str().is_empty())
        .collect();
    ancestors.reverse();
    for ancestor in ancestors {
        if reported.insert(ancestor.to_path_buf()) {
            out.push(Change {
                kind: ChangeKind::Modify,
                path: ancestor.to_path_buf(),
            });
        }
    }
    if reported.insert(change.path.clone()) {
        out.push(change);
    }
}

/// Docker's `statDifferent`: mode (with type), owner and device always; size and mtime only
/// for non-directories.
fn stat_different(old: &fs::Metadata, new: &fs::Metadata) -> bool {
    old.mode() != new.mode()
        || old.uid() != new.uid()
        || old.gid() != new.gid()
        || old.rdev() != new.rdev()
        || (!old.is_dir()
            && (old.mtime() != new.mtime()
                || old.mtime_nsec() != new.mtime_nsec()
                || old.len() != new.len()))
}

fn walk(
    upper: &Path,
    lowers: &[PathBuf],
    dir: &Path,
    filter: &StubFilter,
    out: &mut Vec<Change>,
    reported: &mut HashSet<PathBuf>,
    hidden_lower: &BTreeSet<OsString>,
) -> Result<(), ArchiveError> {
    let host_dir = upper.join(dir.strip_prefix("/").unwrap_or(dir));
    let mut names: BTreeSet<OsString> = match fs::read_dir(&host_dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ArchiveError::io(&host_dir, e)),
    };
    names.extend(hidden_lower.iter().cloned());
    let mut names: Vec<OsString> = names.into_iter().collect();
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let path = dir.join(&name);
        let host = host_dir.join(&name);
        let meta = match fs::symlink_metadata(&host) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if hidden_lower.contains(&name) {
                    // Below an opaque directory and not re-created: deleted.
                    emit(
                        out,
                        reported,
                        Change {
                            kind: ChangeKind::Delete,
                            path,
                        },
                    );
                }
                continue;
            }
            Err(e) => return Err(ArchiveError::io(&host, e)),
        };
        if filter.hidden(&path, &meta) {
            continue;
        }
        let rel = path.strip_prefix("/").unwrap_or(&path);
        let lower = lowers
            .iter()
            .find_map(|layer| fs::symlink_metadata(layer.join(rel)).ok());
        let opaque = meta.is_dir() && is_opaque(&host);
        let kind = if meta.file_type().is_char_device() && meta.rdev() == 0 {
            Some(ChangeKind::Delete)
        } else {
            match &lower {
                None => Some(ChangeKind::Add),
                Some(lower) => stat_different(lower, &meta).then_some(ChangeKind::Modify),
            }
        };
        if let Some(kind) = kind {
            emit(
                out,
                reported,
                Change {
                    kind,
                    path: path.clone(),
                },
            );
        }
        if meta.is_dir() {
            // An opaque directory over a lower one hides the lower entries: those not
            // re-created are deletions.
            let hidden = if opaque && lower.is_some() {
                lower_names(lowers, &path)
            } else {
                BTreeSet::new()
            };
            walk(upper, lowers, &path, filter, out, reported, &hidden)?;
        }
    }
    Ok(())
}
