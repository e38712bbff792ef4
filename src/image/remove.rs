//! `rmi`, `image prune` and `tag`: changes to which images exist, with Docker's rules and
//! messages (`ImageService.ImageDelete`, `ImagesPrune`, `TagImage`).
//!
//! Crash and concurrency safety: everything happens under the store lock. The index (tags and
//! the image's summary) is rewritten first, then the image record and its config/manifest blobs
//! are deleted, then each layer no remaining image uses, each under its object lock (the lock
//! `pull` holds while creating that layer). A crash part-way leaves an image record or layers
//! nothing references: garbage that `image prune` sweeps, never a listed image with missing
//! parts. `pull` re-checks its layers under the store lock before recording an image, so a
//! layer deleted under its feet is fetched again rather than referenced.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use sha2::Digest as _;

use super::digest::Digest;
use super::index;
use super::list::{Filters, ListError, created_of};
use super::reference::{Reference, ReferenceError};
use super::resolve::{self as lookup, LookupError};
use super::store::{LayerRecord, Repositories, Store, StoreError};
use super::users::{ContainerUse, ImageUsers};
use crate::sys::{self, FileLock};
use crate::time::{self, Timestamp};

#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Filter(#[from] ListError),
    /// Docker's image delete conflicts, worded like Docker.
    #[error("{0}")]
    Conflict(String),
    #[error("Error parsing reference: \"{input}\" is not a valid repository/tag: {source}")]
    BadTarget {
        input: String,
        source: ReferenceError,
    },
    #[error("refusing to create a tag with a digest reference")]
    DigestTag,
    #[error("invalid filter 'until={0}'")]
    BadUntil(String),
    /// The containers' use of images could not be read: nothing is removed, as any image
    /// might be one a container uses.
    #[error("{0}")]
    Users(String),
}

impl RemoveError {
    /// Docker's CLI keeps going (and `-f` exits 0) when an image simply does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RemoveError::Lookup(LookupError::NotFound(_)))
    }
}

/// One line of `rmi` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    Untagged(String),
    Deleted(String),
}

/// True when every layer is still in the store (checked by `pull` under the store lock).
pub fn layers_present(store: &Store, layers: &[LayerRecord]) -> bool {
    layers
        .iter()
        .all(|l| store.layer_dir(&l.diff_id).join("layer.json").exists())
}

/// The store lock and the index, loaded under it.
struct Session<'a> {
    store: &'a Store,
    /// Dropped before `trash` (fields drop in declaration order): the layer trees are
    /// deleted once the lock is released, so `run` and `create` do not wait for that.
    lock: FileLock,
    repos: Repositories,
    containers: HashMap<Digest, Vec<ContainerUse>>,
    /// Layer directories containers run on (never deleted under them).
    container_layers: HashSet<PathBuf>,
    /// Bytes of layers deleted so far.
    freed: u64,
    /// Deleting an image deletes its untagged, childless parent too (`rmi --no-prune` not).
    prune_parents: bool,
    /// Layers renamed into `tmp/` under the lock; last field, see `lock`.
    trash: Trash,
}

/// Layer trees taken out of the store, deleted on drop (on every path, errors included).
#[derive(Default)]
struct Trash(Vec<PathBuf>);

impl Trash {
    /// Takes a layer out of the store now; its tree is deleted after the lock is released.
    fn detach(&mut self, store: &Store, diff_id: &Digest) -> Result<(), StoreError> {
        if let Some(doomed) = store.detach_layer(diff_id)? {
            self.0.push(doomed);
        }
        Ok(())
    }
}

impl Drop for Trash {
    fn drop(&mut self) {
        for path in self.0.drain(..) {
            // Best effort: what is left is abandoned temp work the next command sweeps.
            let _ = sys::remove_tree(&path);
        }
    }
}

struct Conflict {
    message: String,
    hard: bool,
    used: bool,
}

impl<'a> Session<'a> {
    /// `users` is asked only once the lock is held, so containers created before the lock
    /// are seen.
    fn open(
        store: &'a Store,
        users: impl FnOnce() -> Result<ImageUsers, String>,
    ) -> Result<Session<'a>, RemoveError> {
        let lock = store.lock()?;
        let repos = index::load_locked(store, &lock)?;
        let users = users().map_err(RemoveError::Users)?;
        Ok(Session {
            store,
            lock,
            repos,
            containers: users.images,
            container_layers: users.layer_dirs,
            freed: 0,
            prune_parents: true,
            trash: Trash::default(),
        })
    }

    /// Canonical tag and digest references of an image.
    fn refs(&self, id: &Digest) -> Vec<String> {
        let (mut tags, digests) = lookup::references_of(&self.repos, id);
        tags.extend(digests);
        tags
    }

    fn has_children(&self, id: &Digest) -> bool {
        index::summaries(&self.repos)
            .values()
            .any(|s| s.parent.as_ref() == Some(id))
    }

    fn remove_ref(&mut self, canonical: &str) -> Result<(), RemoveError> {
        if self.repos.tags.remove(canonical).is_some() {
            return Ok(());
        }
        let mut owners = Vec::new();
        if let Some(images) = self.repos.images.as_mut() {
            for (id, summary) in images.iter_mut() {
                if summary.repo_digests.iter().any(|d| d == canonical) {
                    summary.repo_digests.retain(|d| d != canonical);
                    owners.push(id.clone());
                }
            }
        }
        // The image record keeps its repo digests too (the index is rebuilt from records in
        // stores that predate it): drop it there as well.
        for id in owners {
            if let Some(mut record) = self.store.image(&id)? {
                record.repo_digests.retain(|d| d != canonical);
                self.store.write_image(&record)?;
            }
        }
        Ok(())
    }

    fn save(&self) -> Result<(), RemoveError> {
        Ok(self.store.write_repositories(&self.lock, &self.repos)?)
    }

    fn conflict(&self, id: &Digest, hard_only: bool, active_refs: bool) -> Option<Conflict> {
        let short = id.short();
        let make = |hard: bool, used: bool, message: String| Conflict {
            message: format!(
                "conflict: unable to delete {short} ({}) - {message}",
                if hard {
                    "cannot be forced"
                } else {
                    "must be forced"
                }
            ),
            hard,
            used,
        };
        if self.has_children(id) {
            return Some(make(true, false, "image has dependent child images".into()));
        }
        let users = self.containers.get(id).map(Vec::as_slice).unwrap_or(&[]);
        if let Some(c) = users.iter().find(|c| c.running) {
            return Some(make(
                true,
                true,
                format!(
                    "image is being used by running container {}",
                    truncate_id(&c.container_id)
                ),
            ));
        }
        if hard_only {
            return None;
        }
        if active_refs && !self.refs(id).is_empty() {
            return Some(make(
                false,
                false,
                "image is referenced in multiple repositories".into(),
            ));
        }
        if let Some(c) = users.iter().find(|c| !c.running) {
            return Some(make(
                false,
                true,
                format!(
                    "image is being used by stopped container {}",
                    truncate_id(&c.container_id)
                ),
            ));
        }
        None
    }

    /// Docker's `ImageDelete` for one argument.
    fn delete(
        &mut self,
        input: &str,
        force: bool,
        records: &mut Vec<Deletion>,
    ) -> Result<(), RemoveError> {
        let id = lookup::resolve(&self.repos, input)?;
        let mut refs = self.refs(&id);
        let mut quiet = false;
        if !lookup::is_id_prefix(&id, input) {
            if !force
                && is_single_reference(&refs)
                && let Some(c) = self.containers.get(&id).and_then(|u| u.first())
            {
                return Err(RemoveError::Conflict(format!(
                    "conflict: unable to remove repository reference \"{input}\" (must force) - container {} is using its referenced image {}",
                    truncate_id(&c.container_id),
                    id.short()
                )));
            }
            let parsed = Reference::parse(input).map_err(LookupError::from)?;
            let canonical = match &parsed.digest {
                Some(d) => format!("{}@{}", parsed.repository(), d),
                None => parsed.to_string(),
            };
            if !refs.contains(&canonical) {
                return Err(LookupError::NotFound(parsed.familiar()).into());
            }
            self.remove_ref(&canonical)?;
            records.push(Deletion::Untagged(lookup::familiar(&canonical)));
            refs = self.refs(&id);
            if parsed.digest.is_none() {
                let repo = parsed.repository();
                let same_repo = |r: &str| repository_of(r).as_deref() == Some(repo.as_str());
                let tag_left = refs.iter().any(|r| !r.contains('@') && same_repo(r));
                if !tag_left {
                    let doomed: Vec<String> = refs
                        .iter()
                        .filter(|r| r.contains('@') && same_repo(r))
                        .cloned()
                        .collect();
                    for r in doomed {
                        self.remove_ref(&r)?;
                        records.push(Deletion::Untagged(lookup::familiar(&r)));
                    }
                    refs = self.refs(&id);
                }
            }
            if !refs.is_empty() {
                self.save()?;
                return Ok(());
            }
            quiet = true;
        } else if is_single_reference(&refs) {
            if let Some(c) = self.conflict(&id, force, false) {
                return Err(RemoveError::Conflict(c.message));
            }
            for r in refs {
                self.remove_ref(&r)?;
                records.push(Deletion::Untagged(lookup::familiar(&r)));
            }
        }
        self.delete_image(&id, force, quiet, records)
    }

    /// Docker's `imageDeleteHelper`: conflicts, remaining references, then the image itself.
    fn delete_image(
        &mut self,
        id: &Digest,
        force: bool,
        quiet: bool,
        records: &mut Vec<Deletion>,
    ) -> Result<(), RemoveError> {
        if let Some(c) = self.conflict(id, force, true) {
            let dangling = self.refs(id).is_empty() && !self.has_children(id);
            // Save whatever was untagged already.
            self.save()?;
            if quiet && (!dangling || c.used) {
                return Ok(());
            }
            let _ = c.hard;
            return Err(RemoveError::Conflict(c.message));
        }
        for r in self.refs(id) {
            self.remove_ref(&r)?;
            records.push(Deletion::Untagged(lookup::familiar(&r)));
        }
        let summary = self
            .repos
            .images
            .as_mut()
            .and_then(|images| images.remove(id))
            .unwrap_or_default();
        // 1. The index: the image is gone for every reader from here on.
        self.save()?;
        // 2. The record and its own blobs.
        let record = self.store.image(id)?;
        self.store.remove_image(id)?;
        self.store.remove_blob(id)?;
        if let Some(manifest) = record.as_ref().and_then(|r| r.manifest.clone()) {
            self.store.remove_blob(&manifest)?;
        }
        records.push(Deletion::Deleted(id.to_string()));
        // 3. Layers no remaining image uses, top first (Docker prints their chain IDs).
        let layers = if summary.layers.is_empty() {
            record
                .as_ref()
                .map(|r| r.layers.iter().map(|l| l.diff_id.clone()).collect())
                .unwrap_or_default()
        } else {
            summary.layers.clone()
        };
        let used: HashSet<&Digest> = index::summaries(&self.repos)
            .values()
            .flat_map(|s| s.layers.iter())
            .collect();
        let chain = chain_ids(&layers);
        let mut deleted_layers = Vec::new();
        for (i, diff_id) in layers.iter().enumerate().rev() {
            if used.contains(diff_id)
                || deleted_layers.contains(diff_id)
                || self
                    .container_layers
                    .contains(&self.store.layer_diff(diff_id))
            {
                continue;
            }
            let _object = self.store.object_lock(diff_id)?;
            let layer = self.store.layer(diff_id)?;
            self.trash.detach(self.store, diff_id)?;
            if let Some(layer) = layer {
                self.freed += layer.size;
                if let Some(blob) = &layer.compressed {
                    self.store.remove_blob(&blob.digest)?;
                }
            }
            deleted_layers.push(diff_id.clone());
            records.push(Deletion::Deleted(chain[i].to_string()));
        }
        // Docker's prune of parents: the parent (a commit's base) goes too once nothing
        // names it and it has no other child, quietly kept if a container uses it. Without
        // this `image prune -a` left a chain of commits' untagged bases behind.
        if self.prune_parents
            && let Some(parent) = summary.parent.clone()
            && index::summaries(&self.repos).contains_key(&parent)
            && self.refs(&parent).is_empty()
            && !self.has_children(&parent)
        {
            return self.delete_image(&parent, false, true, records);
        }
        Ok(())
    }
}

impl Session<'_> {
    /// Layers no image and no container uses (left by a crash mid-`rmi`, or kept for a
    /// container that is gone now) are deleted, each under its object lock.
    fn sweep_orphan_layers(&mut self) -> Result<(), RemoveError> {
        let used: HashSet<String> = index::summaries(&self.repos)
            .values()
            .flat_map(|s| s.layers.iter().map(|d| d.hex().to_string()))
            .collect();
        let dir = self.store.root().join("layers");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(diff_id) = Digest::parse(&format!("sha256:{name}")) else {
                continue;
            };
            if used.contains(&name)
                || self
                    .container_layers
                    .contains(&self.store.layer_diff(&diff_id))
            {
                continue;
            }
            let _object = self.store.object_lock(&diff_id)?;
            // A layer a pull has just committed is not indexed until that pull takes the store
            // lock (held here); that pull re-checks its layers under the lock and fetches
            // again whatever was swept.
            if let Some(layer) = self.store.layer(&diff_id)? {
                self.freed += layer.size;
                if let Some(blob) = &layer.compressed {
                    self.store.remove_blob(&blob.digest)?;
                }
            }
            self.trash.detach(self.store, &diff_id)?;
        }
        Ok(())
    }

    /// Config and manifest blobs no image record names: a pull, commit, import or load
    /// killed after writing them and before recording its image leaves them behind. Those
    /// blobs are written only under the store lock (held here), so none of them is in flight.
    /// Compressed layer blobs are not swept here: they are written under their layer's object
    /// lock before the layer is recorded, and go with their layer.
    fn sweep_orphan_json_blobs(&mut self) -> Result<(), RemoveError> {
        let mut owned: HashSet<String> = HashSet::new();
        for id in self.store.image_ids()? {
            owned.insert(id.hex().to_string());
            if let Some(record) = self.store.image(&id)? {
                owned.extend(record.manifest.iter().map(|m| m.hex().to_string()));
                owned.extend(
                    record
                        .layers
                        .iter()
                        .filter_map(|l| l.compressed.as_ref())
                        .map(|c| c.digest.hex().to_string()),
                );
            }
        }
        let dir = self.store.root().join("blobs/sha256");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if owned.contains(&name) {
                continue;
            }
            let Ok(digest) = Digest::parse(&format!("sha256:{name}")) else {
                continue;
            };
            // Only JSON documents (configs, manifests): a layer's blob never parses as one.
            // Their first byte is `{` in practice (berth's and registries' alike; one that
            // starts with blank space is merely kept); a layer's compressed blob never
            // starts so (gzip 1f 8b, zstd 28 b5 2f fd): one byte read rules a layer out
            // without reading megabytes of it under the store lock.
            let small = entry.metadata().is_ok_and(|m| m.len() <= 4 << 20);
            let is_json = small
                && starts_with_brace(&entry.path())
                && std::fs::read(entry.path()).is_ok_and(|bytes| {
                    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
                        .is_ok()
                });
            if is_json {
                self.store.remove_blob(&digest)?;
            }
        }
        Ok(())
    }
}

/// True when the file's first byte is `{`.
fn starts_with_brace(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut first = [0u8; 1];
    std::fs::File::open(path).is_ok_and(|mut f| f.read_exact(&mut first).is_ok())
        && first[0] == b'{'
}

/// Prune skips an image Docker would refuse to delete (in use, gone meanwhile); a store that
/// fails to delete it fails the prune.
fn skip_refused(result: Result<(), RemoveError>) -> Result<(), RemoveError> {
    match result {
        Err(RemoveError::Conflict(_)) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

/// Docker's `isSingleReference`: one tag (and maybe digests of that same repository), or
/// digests of only one repository.
fn is_single_reference(refs: &[String]) -> bool {
    if refs.len() <= 1 {
        return refs.len() == 1;
    }
    let mut single: Option<&String> = None;
    let mut canonical_repos = HashSet::new();
    for r in refs {
        if r.contains('@') {
            if let Some(repo) = repository_of(r) {
                canonical_repos.insert(repo);
            }
        } else if single.is_none() {
            single = Some(r);
        } else {
            return false;
        }
    }
    let single = single.unwrap_or(&refs[0]);
    canonical_repos.len() == 1
        && repository_of(single).is_some_and(|r| canonical_repos.contains(&r))
}

fn repository_of(canonical: &str) -> Option<String> {
    Reference::parse_named(canonical)
        .ok()
        .map(|r| r.repository())
}

fn truncate_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.get(..12).unwrap_or(id)
}

/// Docker's layer chain IDs: the first is the diffID, each next one is
/// `sha256(parent_chain + " " + diffID)`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => {
                let hash = sha2::Sha256::digest(format!("{parent} {d}").as_bytes());
                Digest::parse(&format!("sha256:{}", hex::encode(hash))).unwrap_or(d.clone())
            }
        };
        out.push(next);
    }
    out
}

/// `rmi` of one argument: what was untagged and deleted, in Docker's order. `users` reports
/// which containers use which images (`container::in_use`), read under the store lock.
pub fn remove(
    store: &Store,
    input: &str,
    force: bool,
    prune_parents: bool,
    users: impl FnOnce() -> Result<ImageUsers, String>,
) -> Result<Vec<Deletion>, RemoveError> {
    let mut session = Session::open(store, users)?;
    session.prune_parents = prune_parents;
    let mut records = Vec::new();
    session.delete(input, force, &mut records)?;
    Ok(records)
}

/// `tag SOURCE TARGET`: points TARGET at SOURCE's image (moving it if it named another).
pub fn tag(store: &Store, source: &str, target: &str) -> Result<(), RemoveError> {
    let parsed = Reference::parse(target).map_err(|source| RemoveError::BadTarget {
        input: target.to_string(),
        source,
    })?;
    if parsed.digest.is_some() {
        return Err(RemoveError::DigestTag);
    }
    let lock = store.lock()?;
    let mut repos = index::load_locked(store, &lock)?;
    let id = lookup::resolve(&repos, source)?;
    index::tagged_now(&mut repos, &id);
    repos.tags.insert(parsed.to_string(), id);
    store.write_repositories(&lock, &repos)?;
    Ok(())
}

pub struct PruneReport {
    pub deleted: Vec<Deletion>,
    pub reclaimed: u64,
}

pub const PRUNE_FILTERS: &[&str] = &["dangling", "label", "label!", "until"];

/// `image prune`: dangling images (every image no container uses with `all`), filtered by
/// `until=` and `label=`/`label!=`; images in use are skipped silently like Docker. `users` as
/// for [`remove`].
pub fn prune(
    store: &Store,
    all: bool,
    filters: &Filters,
    users: impl FnOnce() -> Result<ImageUsers, String>,
) -> Result<PruneReport, RemoveError> {
    filters.validate(PRUNE_FILTERS)?;
    let dangling_only = filters.dangling()?.unwrap_or(true) && !all;
    let mut until = None;
    for v in filters.get("until") {
        until = Some(
            time::parse_until(v, Timestamp::now())
                .ok_or_else(|| RemoveError::BadUntil(v.to_string()))?,
        );
    }
    let mut session = Session::open(store, users)?;
    let mut deleted = Vec::new();
    let candidates: Vec<(Digest, Vec<String>)> = index::summaries(&session.repos)
        .iter()
        .filter(|(id, s)| {
            let refs = session.refs(id);
            if refs.is_empty() && session.has_children(id) {
                return false;
            }
            if until.is_some_and(|u| created_of(s) > u) {
                return false;
            }
            if !filters.match_labels("label", &s.labels) {
                return false;
            }
            if filters.contains("label!") && filters.match_labels("label!", &s.labels) {
                return false;
            }
            true
        })
        .map(|(id, _)| (id.clone(), session.refs(id)))
        .collect();
    for (id, refs) in candidates {
        if refs.is_empty() {
            skip_refused(session.delete(id.hex(), false, &mut deleted))?;
            continue;
        }
        let has_tag = refs.iter().any(|r| !r.contains('@'));
        if dangling_only && has_tag {
            continue;
        }
        if session.containers.contains_key(&id) {
            continue;
        }
        for r in refs {
            let mut records = Vec::new();
            match session.delete(&r, false, &mut records) {
                Ok(()) => deleted.extend(records),
                refused => skip_refused(refused)?,
            }
        }
    }
    // Records nothing indexes any more (left by a crash mid-rmi) are swept too.
    let indexed = index::summaries(&session.repos);
    let orphans: Vec<Digest> = store
        .image_ids()?
        .into_iter()
        .filter(|id| !indexed.contains_key(id))
        .collect();
    for id in orphans {
        let mut orphan = Vec::new();
        session
            .repos
            .images
            .get_or_insert_with(Default::default)
            .insert(id.clone(), Default::default());
        skip_refused(session.delete_image(&id, false, false, &mut orphan))?;
    }
    session.sweep_orphan_layers()?;
    session.sweep_orphan_json_blobs()?;
    Ok(PruneReport {
        deleted,
        reclaimed: session.freed,
    })
}
