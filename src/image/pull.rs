//! `pull`: resolve a reference to a platform manifest, fetch its config, and stream each
//! missing layer (download → hash → decompress → hash → unpack) straight into the store, several
//! layers at once. Nothing is named until its digest and diffID have been verified.

use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::ImageError;
use super::digest::{Digest, HashingReader};
use super::manifest::{self, ConfigSummary, Descriptor, Document, ImageManifest, Platform};
use super::reference::Reference;
use super::registry::blob::BlobReader;
use super::registry::{MAX_DOCUMENT_BYTES, Registry, RegistryError, RetryReport};
use super::store::{CompressedBlob, ImageRecord, LayerRecord, Store};
use crate::archive::ArchiveError;
use crate::archive::compression::{self, LimitedReader, TooLarge};
use crate::archive::unpack::{self, max_layer_bytes};

/// Layers downloaded at the same time (Docker's default is 3).
pub const PARALLEL_DOWNLOADS: usize = 3;

/// Progress of one layer, keyed by the short form of its compressed digest like Docker's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerStatus {
    AlreadyExists,
    PullingFsLayer,
    Waiting,
    Downloading {
        current: u64,
        total: u64,
    },
    VerifyingChecksum,
    DownloadComplete,
    PullComplete,
    /// A request failed and is tried again in this many seconds (counted down a second at a
    /// time, as Docker does). Also reported for the manifest and config, under the id of the
    /// `Pulling from` line.
    Retrying {
        seconds: u64,
    },
}

#[derive(Debug, Clone)]
pub enum PullEvent {
    /// `latest: Pulling from library/busybox`
    Pulling {
        what: String,
        from: String,
    },
    Layer {
        id: String,
        status: LayerStatus,
    },
    /// The request whose retries were reported under `id` went through: the `Retrying in N
    /// seconds` shown for it is over.
    RetriesOver {
        id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullStatus {
    Downloaded,
    UpToDate,
}

#[derive(Debug, Clone)]
pub struct Pulled {
    pub id: Digest,
    /// The digest of the document the reference resolved to (the index for multi-arch).
    pub digest: Digest,
    pub status: PullStatus,
}

pub struct PullOptions {
    pub platform: Option<Platform>,
}

type Progress<'a> = &'a (dyn Fn(PullEvent) + Sync);

/// Pulls one tag or digest into the store and points the tag at it.
pub fn pull(
    store: &Store,
    registry: &Registry,
    reference: &Reference,
    options: &PullOptions,
    progress: Progress<'_>,
) -> Result<Pulled, ImageError> {
    let platform = options.platform.clone().unwrap_or_else(Platform::host);
    let scope = format!("repository:{}:pull", reference.path);
    let what = match &reference.digest {
        Some(d) => d.to_string(),
        None => reference.manifest_reference(),
    };
    // Retries of the manifest and config show on the line that says what is pulled.
    let retrying = |seconds| {
        progress(PullEvent::Layer {
            id: what.clone(),
            status: LayerStatus::Retrying { seconds },
        })
    };
    let (top_digest, manifest, manifest_digest, manifest_bytes) =
        resolve(registry, reference, &scope, &platform, &retrying)?;
    progress(PullEvent::Pulling {
        what: what.clone(),
        from: reference.path.clone(),
    });

    for layer in &manifest.layers {
        if !compression::is_layer_media_type(&layer.media_type) {
            return Err(ArchiveError::UnsupportedMediaType(layer.media_type.clone()).into());
        }
    }

    // Config: small, verified, kept as a blob (its digest is the image ID).
    let config_bytes = if store.has_blob(&manifest.config.digest) {
        store.read_blob(&manifest.config.digest)?
    } else {
        let path = format!("/v2/{}/blobs/{}", reference.path, manifest.config.digest);
        let retried = std::sync::atomic::AtomicBool::new(false);
        let config_retrying = |seconds| {
            retried.store(true, std::sync::atomic::Ordering::Relaxed);
            retrying(seconds)
        };
        let bytes = registry
            .get_reporting(&path, &scope, &[], &config_retrying)?
            .read_limited("image config", MAX_DOCUMENT_BYTES)?;
        verify_bytes("image config", &manifest.config.digest, &bytes)?;
        // Its retries showed on the line of what is pulled, after "Pulling from": that
        // line goes now, or it would stay saying "Retrying in 1 second" after the pull.
        if retried.load(std::sync::atomic::Ordering::Relaxed) {
            progress(PullEvent::RetriesOver { id: what.clone() });
        }
        bytes
    };
    let config: ConfigSummary = serde_json::from_slice(&config_bytes)
        .map_err(|e| ImageError::InvalidConfig(e.to_string()))?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(ImageError::InvalidConfig(format!(
            "{} layers in the manifest but {} diff_ids in the config",
            manifest.layers.len(),
            config.rootfs.diff_ids.len()
        )));
    }

    let mut layers = fetch_layers(store, registry, reference, &manifest, &config, progress)?;
    // An `rmi` (which deletes layers only under the store lock) may have removed a layer found
    // present above: check again under the lock, and fetch what went missing.
    let mut tries = 0;
    let lock = loop {
        let lock = store.lock()?;
        if super::remove::layers_present(store, &layers) {
            break lock;
        }
        drop(lock);
        tries += 1;
        if tries > 3 {
            return Err(ImageError::InvalidManifest(
                "layers kept disappearing while pulling".into(),
            ));
        }
        layers = fetch_layers(store, registry, reference, &manifest, &config, progress)?;
    };
    store.write_blob(&manifest.config.digest, &config_bytes)?;
    store.write_blob(&manifest_digest, &manifest_bytes)?;
    let id = manifest.config.digest.clone();
    let repo_digest = format!("{}@{}", reference.repository(), top_digest);

    let mut record = store.image(&id)?.unwrap_or_else(|| ImageRecord {
        id: id.clone(),
        size: layers.iter().map(|l| l.size).sum(),
        layers: layers.clone(),
        created: config.created.clone(),
        manifest: Some(manifest_digest.clone()),
        repo_digests: Vec::new(),
    });
    let mut changed = false;
    if !record.repo_digests.contains(&repo_digest) {
        // Like Docker, every manifest digest this image was pulled by stays a reference to it.
        record.repo_digests.push(repo_digest);
        changed = true;
    }
    if changed || store.image(&id)?.is_none() {
        store.write_image(&record)?;
    }
    let mut repos = super::index::load_locked(store, &lock)?;
    let indexed = super::index::put(store, &mut repos, &record);
    if indexed && reference.tag.is_none() {
        store.write_repositories(&lock, &repos)?;
    }
    let status = match &reference.tag {
        Some(tag) => {
            let key = reference.with_tag(tag).to_string();
            let previous = repos.tags.insert(key, id.clone());
            super::index::tagged_now(&mut repos, &id);
            store.write_repositories(&lock, &repos)?;
            if previous.as_ref() == Some(&id) {
                PullStatus::UpToDate
            } else {
                PullStatus::Downloaded
            }
        }
        None if changed => PullStatus::Downloaded,
        None => PullStatus::UpToDate,
    };
    Ok(Pulled {
        id,
        digest: top_digest,
        status,
    })
}

/// Lists a repository's tags (`pull -a`).
pub fn list_tags(registry: &Registry, reference: &Reference) -> Result<Vec<String>, ImageError> {
    #[derive(serde::Deserialize)]
    struct Tags {
        #[serde(default)]
        tags: Option<Vec<String>>,
    }
    let scope = format!("repository:{}:pull", reference.path);
    let bytes = registry
        .get(&format!("/v2/{}/tags/list", reference.path), &scope, &[])?
        .read_limited("tag list", MAX_DOCUMENT_BYTES)?;
    let tags: Tags = serde_json::from_slice(&bytes).map_err(|e| {
        ImageError::Registry(RegistryError::Malformed {
            what: "tag list",
            url: reference.repository(),
            message: e.to_string(),
        })
    })?;
    let mut tags = tags.tags.unwrap_or_default();
    tags.sort();
    Ok(tags)
}

/// Fetches the manifest (following one index level) for `platform`. Returns the top-level
/// digest, the image manifest, and that manifest's digest and bytes.
fn resolve(
    registry: &Registry,
    reference: &Reference,
    scope: &str,
    platform: &Platform,
    retrying: RetryReport<'_>,
) -> Result<(Digest, ImageManifest, Digest, Vec<u8>), ImageError> {
    let (bytes, content_type) = fetch_manifest(
        registry,
        reference,
        scope,
        &reference.manifest_reference(),
        retrying,
    )?;
    let top_digest = Digest::of_bytes(&bytes);
    if let Some(wanted) = &reference.digest {
        verify_bytes("manifest", wanted, &bytes)?;
    }
    match manifest::parse(&bytes, content_type.as_deref())? {
        Document::Manifest(m) => Ok((top_digest.clone(), m, top_digest, bytes)),
        Document::Index(entries) => {
            let entry: &Descriptor = manifest::select_platform(&entries, platform)?;
            let (inner, inner_type) =
                fetch_manifest(registry, reference, scope, entry.digest.as_str(), retrying)?;
            verify_bytes("manifest", &entry.digest, &inner)?;
            match manifest::parse(&inner, inner_type.as_deref())? {
                Document::Manifest(m) => Ok((top_digest, m, entry.digest.clone(), inner)),
                Document::Index(_) => Err(ImageError::InvalidManifest(
                    "an index entry points at another index".into(),
                )),
            }
        }
    }
}

fn fetch_manifest(
    registry: &Registry,
    reference: &Reference,
    scope: &str,
    tag_or_digest: &str,
    retrying: RetryReport<'_>,
) -> Result<(Vec<u8>, Option<String>), ImageError> {
    let path = format!("/v2/{}/manifests/{}", reference.path, tag_or_digest);
    let response = registry
        .get_reporting(
            &path,
            scope,
            &[("Accept", manifest::ACCEPT.to_string())],
            retrying,
        )
        .map_err(|e| ImageError::from_manifest_fetch(e, reference))?;
    let content_type = response.content_type.clone();
    let bytes = response.read_limited("manifest", MAX_DOCUMENT_BYTES)?;
    Ok((bytes, content_type))
}

fn verify_bytes(what: &str, expected: &Digest, bytes: &[u8]) -> Result<(), ImageError> {
    let actual = Digest::of_bytes(bytes);
    if &actual != expected {
        return Err(ImageError::Registry(RegistryError::DigestMismatch {
            what: what.to_string(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        }));
    }
    Ok(())
}

/// Brings every layer of `manifest` into the store, `PARALLEL_DOWNLOADS` at a time.
fn fetch_layers(
    store: &Store,
    registry: &Registry,
    reference: &Reference,
    manifest: &ImageManifest,
    config: &ConfigSummary,
    progress: Progress<'_>,
) -> Result<Vec<LayerRecord>, ImageError> {
    let count = manifest.layers.len();
    let results: Mutex<Vec<Option<Result<LayerRecord, ImageError>>>> =
        Mutex::new((0..count).map(|_| None).collect());
    let mut missing = Vec::new();
    for (i, (layer, diff_id)) in manifest
        .layers
        .iter()
        .zip(&config.rootfs.diff_ids)
        .enumerate()
    {
        let id = layer.digest.short().to_string();
        match store.layer(diff_id)? {
            Some(record) => {
                progress(PullEvent::Layer {
                    id,
                    status: LayerStatus::AlreadyExists,
                });
                results.lock().expect("results")[i] = Some(Ok(record));
            }
            None => {
                progress(PullEvent::Layer {
                    id,
                    status: LayerStatus::PullingFsLayer,
                });
                missing.push(i);
            }
        }
    }
    for &i in missing.iter().skip(PARALLEL_DOWNLOADS) {
        progress(PullEvent::Layer {
            id: manifest.layers[i].digest.short().to_string(),
            status: LayerStatus::Waiting,
        });
    }
    let next = AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_DOWNLOADS.min(missing.len()) {
            scope.spawn(|| {
                loop {
                    if failed.load(Ordering::Relaxed) {
                        return;
                    }
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = missing.get(n) else { return };
                    let result = fetch_layer(
                        store,
                        registry,
                        reference,
                        &manifest.layers[i],
                        &config.rootfs.diff_ids[i],
                        progress,
                    );
                    if result.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    results.lock().expect("results")[i] = Some(result);
                }
            });
        }
    });
    let mut layers = Vec::with_capacity(count);
    for result in results.into_inner().expect("results") {
        match result {
            Some(Ok(record)) => layers.push(record),
            Some(Err(e)) => return Err(e),
            // Skipped after another layer failed; that failure is reported instead.
            None => continue,
        }
    }
    if layers.len() != count {
        return Err(ImageError::InvalidManifest("layer download aborted".into()));
    }
    Ok(layers)
}

/// Copies everything read through it into a file as well (the compressed blob, kept for push
/// and save).
struct Tee<'a, R> {
    inner: R,
    file: &'a mut File,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.file.write_all(&buf[..n])?;
        Ok(n)
    }
}

fn fetch_layer(
    store: &Store,
    registry: &Registry,
    reference: &Reference,
    layer: &Descriptor,
    diff_id: &Digest,
    progress: Progress<'_>,
) -> Result<LayerRecord, ImageError> {
    let id = layer.digest.short().to_string();
    // Two pulls sharing a layer: the second waits here, then finds it done.
    let _layer_lock = store.object_lock(diff_id)?;
    if let Some(record) = store.layer(diff_id)? {
        progress(PullEvent::Layer {
            id,
            status: LayerStatus::AlreadyExists,
        });
        return Ok(record);
    }
    let work = store.temp_dir("layer")?;
    let diff_dir = work.path().join("diff");
    std::fs::create_dir(&diff_dir).map_err(|e| ArchiveError::io(&diff_dir, e))?;
    let blob_temp = store.blob_temp_path(layer.digest.hex());
    let mut blob_file = File::create(&blob_temp).map_err(|e| ArchiveError::io(&blob_temp, e))?;
    let remove_temp = scopeguard(&blob_temp);

    let total = layer.size;
    let report = |current: u64| {
        progress(PullEvent::Layer {
            id: id.clone(),
            status: LayerStatus::Downloading { current, total },
        })
    };
    let retrying = |seconds| {
        progress(PullEvent::Layer {
            id: id.clone(),
            status: LayerStatus::Retrying { seconds },
        })
    };
    let mut blob = BlobReader::new(
        registry,
        &reference.path,
        &layer.digest,
        layer.size,
        &report,
        &retrying,
    );
    let slot = blob.error_slot();
    let mut tee = Tee {
        inner: &mut blob,
        file: &mut blob_file,
    };
    let outcome = (|| -> Result<(Digest, u64, u64), ArchiveError> {
        let decoded = compression::decompress(&mut tee)?;
        let mut hashed = HashingReader::new(LimitedReader::new(decoded, max_layer_bytes()));
        let stats = unpack::unpack_layer(&mut hashed, &diff_dir)?;
        let (digest, size) = hashed.finish().map_err(ArchiveError::Stream)?;
        Ok((digest, size, stats.file_bytes))
    })();
    // Decoders stop at their format's end; the blob digest covers every byte.
    let drained = io::copy(&mut tee, &mut io::sink());
    let (actual_diff_id, _tar_size, file_bytes) = match outcome {
        Ok(v) => v,
        Err(e) => return Err(classify_stream_error(e, &slot)),
    };
    if let Err(e) = drained {
        return Err(classify_stream_error(ArchiveError::Stream(e), &slot));
    }
    if !blob.verified() {
        return Err(ImageError::Registry(RegistryError::SizeMismatch {
            what: layer.digest.to_string(),
            expected: layer.size,
            actual: 0,
        }));
    }
    progress(PullEvent::Layer {
        id: id.clone(),
        status: LayerStatus::VerifyingChecksum,
    });
    if &actual_diff_id != diff_id {
        return Err(ImageError::Registry(RegistryError::DigestMismatch {
            what: format!("layer {} (diffID)", layer.digest),
            expected: diff_id.to_string(),
            actual: actual_diff_id.to_string(),
        }));
    }
    progress(PullEvent::Layer {
        id: id.clone(),
        status: LayerStatus::DownloadComplete,
    });
    blob_file
        .flush()
        .map_err(|e| ArchiveError::io(&blob_temp, e))?;
    drop(blob_file);
    store.commit_blob_file(&blob_temp, &layer.digest)?;
    std::mem::forget(remove_temp);
    let record = LayerRecord {
        diff_id: diff_id.clone(),
        size: file_bytes,
        compressed: Some(CompressedBlob {
            digest: layer.digest.clone(),
            media_type: layer.media_type.clone(),
            size: layer.size,
        }),
    };
    store.commit_layer(work, &record)?;
    progress(PullEvent::Layer {
        id,
        status: LayerStatus::PullComplete,
    });
    Ok(record)
}

/// A failure deep in the decoder stack is reported as what caused it: the registry stream's own
/// typed error when there is one, else the archive error.
fn classify_stream_error(e: ArchiveError, slot: &super::registry::blob::ErrorSlot) -> ImageError {
    if let Some(registry_error) = slot.lock().expect("error slot").take() {
        return ImageError::Registry(registry_error);
    }
    if let ArchiveError::Stream(io) = &e
        && let Some(too_large) = io.get_ref().and_then(|r| r.downcast_ref::<TooLarge>())
    {
        return ArchiveError::TooLarge(too_large.0).into();
    }
    e.into()
}

struct RemoveOnDrop<'a>(&'a std::path::Path);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

fn scopeguard(path: &std::path::Path) -> RemoveOnDrop<'_> {
    RemoveOnDrop(path)
}
