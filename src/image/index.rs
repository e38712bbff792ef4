//! The listing index: a summary of every image (created, size, labels, parent, layers, repo
//! digests) kept in `repositories.json` beside the tags, so `images`, filters, `rmi` and
//! `system df` read one file instead of every image record and config.
//!
//! Every writer of image records updates the summary in the same index write, under the store
//! lock. Stores written before the summaries existed carry no `images` key; the first reader
//! builds it from the image records once (under the lock) and writes it back.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::digest::Digest;
use super::store::{ImageRecord, Repositories, Store, StoreError};
use super::summary::ImageSummary;
use crate::sys::FileLock;

#[derive(Deserialize, Default)]
struct LabelsOnly {
    #[serde(default)]
    config: Option<LabelsConfig>,
}

#[derive(Deserialize, Default)]
struct LabelsConfig {
    #[serde(default, rename = "Labels")]
    labels: Option<BTreeMap<String, String>>,
}

/// The summary of an image record (reads its config blob for the labels).
pub fn summarize(store: &Store, record: &ImageRecord) -> ImageSummary {
    let labels = store
        .image_config(&record.id)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<LabelsOnly>(&bytes).ok())
        .and_then(|c| c.config)
        .and_then(|c| c.labels)
        .unwrap_or_default();
    ImageSummary {
        created: record.created.clone(),
        size: record.size,
        labels,
        parent: None,
        layers: record.layers.iter().map(|l| l.diff_id.clone()).collect(),
        layer_sizes: record.layers.iter().map(|l| l.size).collect(),
        repo_digests: record.repo_digests.clone(),
        last_tag_time: None,
    }
}

/// Records `record` in the index (caller holds the store lock and writes `repos` afterwards).
/// Returns whether the summary changed.
pub fn put(store: &Store, repos: &mut Repositories, record: &ImageRecord) -> bool {
    let mut summary = summarize(store, record);
    let images = repos.images.get_or_insert_with(BTreeMap::new);
    if let Some(old) = images.get(&record.id) {
        summary.last_tag_time = old.last_tag_time.clone();
    }
    if images.get(&record.id) == Some(&summary) {
        return false;
    }
    images.insert(record.id.clone(), summary);
    true
}

/// The index, with its summaries built first if this store predates them.
pub fn load(store: &Store) -> Result<Repositories, StoreError> {
    let repos = store.repositories()?;
    if repos.images.is_some() {
        return Ok(repos);
    }
    let lock = store.lock()?;
    let mut repos = store.repositories()?;
    if repos.images.is_none() {
        rebuild(store, &lock, &mut repos)?;
    }
    Ok(repos)
}

/// Builds every summary from the image records (a one-time migration).
fn rebuild(store: &Store, lock: &FileLock, repos: &mut Repositories) -> Result<(), StoreError> {
    let mut images = BTreeMap::new();
    for id in store.image_ids()? {
        if let Some(record) = store.image(&id)? {
            images.insert(id, summarize(store, &record));
        }
    }
    repos.images = Some(images);
    store.write_repositories(lock, repos)
}

/// The summaries of an index that went through [`load`] (empty if it did not).
pub fn summaries(repos: &Repositories) -> &BTreeMap<Digest, ImageSummary> {
    static EMPTY: BTreeMap<Digest, ImageSummary> = BTreeMap::new();
    repos.images.as_ref().unwrap_or(&EMPTY)
}

/// [`load`] for a caller that already holds the store lock.
pub fn load_locked(store: &Store, lock: &FileLock) -> Result<Repositories, StoreError> {
    let mut repos = store.repositories()?;
    if repos.images.is_none() {
        rebuild(store, lock, &mut repos)?;
    }
    Ok(repos)
}

/// Records that a tag was just pointed at `id` (the caller writes the index).
pub fn tagged_now(repos: &mut Repositories, id: &Digest) {
    if let Some(summary) = repos.images.as_mut().and_then(|i| i.get_mut(id)) {
        summary.last_tag_time = Some(crate::time::Timestamp::now().rfc3339_nano());
    }
}
