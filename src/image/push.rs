//! `push`: uploads an image's blobs and manifest to its registry. Each layer is first checked
//! with HEAD (`Layer already exists`), then mounted from another repository of the same
//! registry the image came from when possible (`Mounted from …`), else uploaded — in one PUT
//! when small, in PATCH chunks when large. The manifest the image was pulled with is pushed
//! byte for byte when all its blobs are here, so the digest survives a pull/push round trip.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::ImageError;
use super::assemble;
use super::digest::Digest;
use super::manifest::{self, DOCKER_MANIFEST, Document};
use super::reference::Reference;
use super::registry::{Registry, RegistryError};
use super::store::Store;

/// Blobs up to this size go up in one PUT; larger ones in chunks of this size.
pub const CHUNK_BYTES: u64 = 16 << 20;
/// Layers uploaded at the same time (Docker's default is 5).
pub const PARALLEL_UPLOADS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("An image does not exist locally with the tag: {0}")]
    NoSuchImage(String),
    #[error("{0}")]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Store(#[from] super::store::StoreError),
    #[error("reading {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("registry did not say where to upload {0} (no Location header)")]
    NoLocation(String),
    #[error("denied: requested access to the resource is denied")]
    Denied,
    #[error("no basic auth credentials")]
    NoBasicAuth,
}

/// Docker's words for a refused push: the registry itself turning our token or credentials
/// away is `denied`; a Basic-auth registry and no stored credentials is `no basic auth
/// credentials`; a token server refusing the credentials stays `unauthorized`.
fn refused(e: PushError, registry: &Registry) -> PushError {
    match e {
        PushError::Registry(RegistryError::NoBasicCredentials { .. }) => PushError::NoBasicAuth,
        PushError::Registry(RegistryError::Unauthorized { ref url, .. })
            if url.starts_with(registry.base()) =>
        {
            PushError::Denied
        }
        PushError::Registry(ref r) if r.status() == Some(403) || r.has_code("DENIED") => {
            PushError::Denied
        }
        other => other,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerStatus {
    Preparing,
    Waiting,
    Pushing { current: u64, total: u64 },
    Pushed,
    AlreadyExists,
    MountedFrom(String),
}

#[derive(Debug, Clone)]
pub enum PushEvent {
    Layer { id: String, status: LayerStatus },
}

pub struct Pushed {
    pub tag: String,
    pub digest: Digest,
    pub size: usize,
}

/// The tagged references of `repository` (all local tags, for `push -a`).
pub fn local_tags(store: &Store, named: &Reference) -> Result<Vec<Reference>, PushError> {
    let prefix = format!("{}:", named.repository());
    Ok(store
        .repositories()?
        .tags
        .keys()
        .filter_map(|k| k.strip_prefix(&prefix).map(|t| named.with_tag(t)))
        .collect())
}

pub fn push(
    store: &Store,
    registry: &Registry,
    reference: &Reference,
    progress: &(dyn Fn(PushEvent) + Sync),
) -> Result<Pushed, PushError> {
    push_inner(store, registry, reference, progress).map_err(|e| refused(e, registry))
}

fn push_inner(
    store: &Store,
    registry: &Registry,
    reference: &Reference,
    progress: &(dyn Fn(PushEvent) + Sync),
) -> Result<Pushed, PushError> {
    let tag = reference.tag.clone().unwrap_or_else(|| "latest".into());
    let reference = reference.with_tag(&tag);
    let id = store
        .repositories()?
        .tags
        .get(&reference.to_string())
        .cloned()
        .ok_or_else(|| PushError::NoSuchImage(reference.familiar_repository()))?;
    let record = store
        .image(&id)?
        .ok_or_else(|| PushError::NoSuchImage(reference.familiar_repository()))?;
    let path = reference.path.clone();
    let scope = format!("repository:{path}:pull,push");

    // The manifest: the original one when every blob it names is here.
    let original = record
        .manifest
        .as_ref()
        .filter(|d| store.has_blob(d))
        .and_then(|d| store.read_blob(d).ok())
        .and_then(|bytes| match manifest::parse(&bytes, None) {
            Ok(Document::Manifest(m))
                if m.config.digest == id
                    && m.layers.len() == record.layers.len()
                    && m.layers.iter().all(|l| store.has_blob(&l.digest)) =>
            {
                Some((bytes, m))
            }
            _ => None,
        });
    let (manifest_bytes, manifest) = match original {
        Some(found) => found,
        None => {
            let config = store.image_config(&id)?;
            let bytes = assemble::manifest_for(&config, &record.layers)?;
            let Document::Manifest(m) = manifest::parse(&bytes, None).map_err(ImageError::from)?
            else {
                return Err(ImageError::InvalidManifest("built manifest".into()).into());
            };
            (bytes, m)
        }
    };
    // Repositories of this registry each layer is known in (from the images holding it):
    // candidates for a cross-repository mount.
    let domain_prefix = format!("{}/", reference.domain);
    let mut mount_sources: std::collections::HashMap<Digest, Vec<String>> = Default::default();
    for other in store.image_ids()? {
        let Some(other) = store.image(&other)? else {
            continue;
        };
        let repos: Vec<String> = other
            .repo_digests
            .iter()
            .filter_map(|rd| rd.split_once('@').map(|(repo, _)| repo))
            .filter_map(|repo| repo.strip_prefix(&domain_prefix))
            .filter(|p| *p != path)
            .map(str::to_string)
            .collect();
        for layer in &other.layers {
            let entry = mount_sources.entry(layer.diff_id.clone()).or_default();
            for r in &repos {
                if !entry.contains(r) {
                    entry.push(r.clone());
                }
            }
        }
    }
    let ids: Vec<String> = record
        .layers
        .iter()
        .map(|l| l.diff_id.short().to_string())
        .collect();
    for id in ids.iter().rev() {
        progress(PushEvent::Layer {
            id: id.clone(),
            status: LayerStatus::Preparing,
        });
    }
    // Layers go up PARALLEL_UPLOADS at a time, topmost first, as Docker's do.
    let jobs: Vec<usize> = (0..manifest.layers.len()).rev().collect();
    for &i in jobs.iter().skip(PARALLEL_UPLOADS) {
        progress(PushEvent::Layer {
            id: ids[i].clone(),
            status: LayerStatus::Waiting,
        });
    }
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<PushError>> = Mutex::new(None);
    std::thread::scope(|threads| {
        for _ in 0..PARALLEL_UPLOADS.min(jobs.len()) {
            threads.spawn(|| {
                loop {
                    if failure.lock().map(|f| f.is_some()).unwrap_or(true) {
                        return;
                    }
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = jobs.get(n) else { return };
                    let (layer, id, local) = (&manifest.layers[i], &ids[i], &record.layers[i]);
                    let sources = mount_sources
                        .get(&local.diff_id)
                        .map(Vec::as_slice)
                        .unwrap_or(&[]);
                    let report = |s| {
                        progress(PushEvent::Layer {
                            id: id.clone(),
                            status: s,
                        })
                    };
                    match push_blob(
                        store,
                        registry,
                        &path,
                        &scope,
                        &layer.digest,
                        layer.size,
                        sources,
                        &report,
                    ) {
                        Ok(status) => report(status),
                        Err(e) => {
                            if let Ok(mut f) = failure.lock() {
                                f.get_or_insert(e);
                            }
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    push_blob(
        store,
        registry,
        &path,
        &scope,
        &manifest.config.digest,
        manifest.config.size,
        &[],
        &|_| {},
    )?;
    let media_type = manifest
        .media_type
        .clone()
        .unwrap_or_else(|| DOCKER_MANIFEST.to_string());
    let body = manifest_bytes.clone();
    let make = move || -> io::Result<Box<dyn Read>> { Ok(Box::new(io::Cursor::new(body.clone()))) };
    registry.send(
        "PUT",
        &format!("/v2/{path}/manifests/{tag}"),
        &scope,
        &[("Content-Type", media_type)],
        Some((&make, manifest_bytes.len() as u64)),
    )?;
    let digest = Digest::of_bytes(&manifest_bytes);

    // Like Docker, remember the digest the image now has in this repository.
    let repo_digest = format!("{}@{}", reference.repository(), digest);
    let lock = store.lock()?;
    if let Some(mut record) = store.image(&id)?
        && !record.repo_digests.contains(&repo_digest)
    {
        let prefix = format!("{}@", reference.repository());
        record.repo_digests.retain(|d| !d.starts_with(&prefix));
        record.repo_digests.push(repo_digest);
        store.write_image(&record)?;
        let mut repos = super::index::load_locked(store, &lock)?;
        assemble::record_written(store, &mut repos, &record, None, false);
        store.write_repositories(&lock, &repos)?;
    }
    Ok(Pushed {
        tag,
        digest,
        size: manifest_bytes.len(),
    })
}

#[allow(clippy::too_many_arguments)]
fn push_blob(
    store: &Store,
    registry: &Registry,
    path: &str,
    scope: &str,
    digest: &Digest,
    size: u64,
    mount_sources: &[String],
    progress: &dyn Fn(LayerStatus),
) -> Result<LayerStatus, PushError> {
    match registry.send(
        "HEAD",
        &format!("/v2/{path}/blobs/{digest}"),
        scope,
        &[],
        None,
    ) {
        Ok(_) => return Ok(LayerStatus::AlreadyExists),
        Err(e) if e.status() == Some(404) => {}
        Err(e) => return Err(e.into()),
    }
    let mut location = None;
    if let Some(from) = mount_sources.first() {
        let sent = registry.send(
            "POST",
            &format!("/v2/{path}/blobs/uploads/?mount={digest}&from={from}"),
            scope,
            &[],
            Some((&|| Ok(Box::new(io::empty()) as Box<dyn Read>), 0)),
        )?;
        if sent.status == 201 {
            return Ok(LayerStatus::MountedFrom(from.clone()));
        }
        // 202: the registry started an ordinary upload instead.
        location = sent.location;
    }
    let location = match location {
        Some(l) => l,
        None => registry
            .send(
                "POST",
                &format!("/v2/{path}/blobs/uploads/"),
                scope,
                &[],
                Some((&|| Ok(Box::new(io::empty()) as Box<dyn Read>), 0)),
            )?
            .location
            .ok_or_else(|| PushError::NoLocation(digest.to_string()))?,
    };
    progress(LayerStatus::Pushing {
        current: 0,
        total: size,
    });
    let blob_path = store.blob_path(digest);
    let shown = blob_path.display().to_string();
    let open_at = |offset: u64, len: u64| {
        let shown = shown.clone();
        let blob_path = blob_path.clone();
        move || -> io::Result<Box<dyn Read + '_>> {
            let mut file = File::open(&blob_path)
                .map_err(|e| io::Error::new(e.kind(), format!("{shown}: {e}")))?;
            file.seek(SeekFrom::Start(offset))?;
            Ok(Box::new(Counting {
                inner: file.take(len),
                done: offset,
                total: size,
                report: progress,
            }))
        }
    };
    if !blob_path.exists() {
        return Err(PushError::Io {
            path: shown,
            source: io::Error::from(io::ErrorKind::NotFound),
        });
    }
    let octet = || ("Content-Type", "application/octet-stream".to_string());
    let mut location = registry.resolve_url(&location);
    if size > CHUNK_BYTES {
        let mut offset = 0;
        while offset < size {
            let len = CHUNK_BYTES.min(size - offset);
            let make = open_at(offset, len);
            let sent = registry.send(
                "PATCH",
                &location,
                scope,
                &[
                    octet(),
                    ("Content-Range", format!("{}-{}", offset, offset + len - 1)),
                ],
                Some((&make, len)),
            )?;
            location = registry.resolve_url(
                &sent
                    .location
                    .ok_or_else(|| PushError::NoLocation(digest.to_string()))?,
            );
            offset += len;
        }
        let url = with_digest(&location, digest);
        registry.send(
            "PUT",
            &url,
            scope,
            &[octet()],
            Some((&|| Ok(Box::new(io::empty()) as Box<dyn Read>), 0)),
        )?;
    } else {
        let make = open_at(0, size);
        let url = with_digest(&location, digest);
        registry.send("PUT", &url, scope, &[octet()], Some((&make, size)))?;
    }
    Ok(LayerStatus::Pushed)
}

/// Reports the bytes of a blob sent so far.
struct Counting<'a, R> {
    inner: R,
    done: u64,
    total: u64,
    report: &'a dyn Fn(LayerStatus),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.report)(LayerStatus::Pushing {
            current: self.done,
            total: self.total,
        });
        Ok(n)
    }
}

fn with_digest(location: &str, digest: &Digest) -> String {
    match url::Url::parse(location) {
        Ok(mut u) => {
            u.query_pairs_mut().append_pair("digest", digest.as_str());
            u.to_string()
        }
        Err(_) => {
            let sep = if location.contains('?') { '&' } else { '?' };
            format!("{location}{sep}digest={digest}")
        }
    }
}
