//! `save` and `load`: the docker-archive format as Docker 25+ writes it — an OCI image layout
//! (`oci-layout`, `index.json`, `blobs/sha256/…` with uncompressed layer tars) that also carries
//! Docker's `manifest.json` and `repositories` — so both `docker load` (any version) and OCI
//! tools read it. `load` reads that, the legacy layout (`<id>/layer.tar`, symlinked duplicate
//! layers) and OCI archives (skopeo/podman `oci-archive:`, compressed layers).
//!
//! Loading extracts the archive with the safe layer unpacker into `tmp/`, verifies every layer
//! against the config's diffIDs (and, for OCI, every blob against its descriptor), and only then
//! names anything: a bad archive leaves the store as it was.

use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ImageError;
use super::assemble::{self, StagedLayer};
use super::digest::{Digest, HashingReader};
use super::index;
use super::manifest::{self, Document};
use super::reference::{DOCKER_HUB, Reference};
use super::resolve::{self, LookupError};
use super::store::{LayerRecord, Store, StoreError};
use crate::archive::ArchiveError;
use crate::archive::compression;
use crate::archive::unpack;

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error("invalid archive: {0}")]
    Invalid(String),
    #[error("writing archive: {0}")]
    Write(io::Error),
}

fn invalid(message: impl Into<String>) -> TransferError {
    TransferError::Invalid(message.into())
}

#[derive(Debug, Serialize, Deserialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// One image to save: its ID and the references to record for it.
pub struct SaveItem {
    pub id: Digest,
    pub tags: Vec<Reference>,
}

/// Resolves `save` arguments: a name (all its tags when given without one, like Docker), or
/// an image ID.
pub fn resolve_save_items(store: &Store, names: &[String]) -> Result<Vec<SaveItem>, TransferError> {
    let mut items: Vec<SaveItem> = Vec::new();
    let repos = index::load(store)?;
    for name in names {
        let id = resolve::resolve(&repos, name)?;
        let mut tags = Vec::new();
        // Named by ID: saved without tags, like Docker.
        let by_id = resolve::is_id_prefix(&id, name);
        if !by_id
            && let Ok(named) = Reference::parse_named(name)
            && named.digest.is_none()
        {
            match &named.tag {
                Some(_) => tags.push(named.clone()),
                None => {
                    let prefix = format!("{}:", named.repository());
                    for (key, tagged) in &repos.tags {
                        if let Some(tag) = key.strip_prefix(&prefix)
                            && tagged == &id
                        {
                            tags.push(named.with_tag(tag));
                        }
                    }
                    if tags.is_empty() {
                        tags.push(named.with_tag("latest"));
                    }
                }
            }
        }
        match items.iter_mut().find(|i| i.id == id) {
            Some(item) => {
                for t in tags {
                    if !item.tags.contains(&t) {
                        item.tags.push(t);
                    }
                }
            }
            None => items.push(SaveItem { id, tags }),
        }
    }
    Ok(items)
}

/// Writes `items` as one archive; layers shared between images are written once.
pub fn save<W: Write>(store: &Store, items: &[SaveItem], out: W) -> Result<W, TransferError> {
    let mut builder = tar::Builder::new(out);
    let mut written: HashMap<Digest, u64> = HashMap::new();
    let mut manifest_json = Vec::new();
    let mut index = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mtime = 0;
    append_dir(&mut builder, "blobs/", mtime)?;
    append_dir(&mut builder, "blobs/sha256/", mtime)?;
    for item in items {
        let record = store
            .image(&item.id)?
            .ok_or_else(|| StoreError::ImageNotFound(item.id.to_string()))?;
        let config = store.image_config(&item.id)?;
        let mut layer_paths = Vec::new();
        let mut layer_descriptors = Vec::new();
        for layer in &record.layers {
            let size = match written.get(&layer.diff_id) {
                Some(size) => *size,
                None => {
                    let size = append_layer(&mut builder, store, layer, mtime)?;
                    written.insert(layer.diff_id.clone(), size);
                    size
                }
            };
            layer_paths.push(format!("blobs/sha256/{}", layer.diff_id.hex()));
            layer_descriptors.push(json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer.diff_id,
                "size": size,
            }));
        }
        if written
            .insert(item.id.clone(), config.len() as u64)
            .is_none()
        {
            append_file(
                &mut builder,
                &format!("blobs/sha256/{}", item.id.hex()),
                &config,
                mtime,
            )?;
        }
        let oci_manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_MANIFEST,
            "config": {
                "mediaType": manifest::OCI_CONFIG,
                "digest": item.id,
                "size": config.len(),
            },
            "layers": layer_descriptors,
        }))
        .map_err(|e| invalid(e.to_string()))?;
        let manifest_digest = Digest::of_bytes(&oci_manifest);
        if written
            .insert(manifest_digest.clone(), oci_manifest.len() as u64)
            .is_none()
        {
            append_file(
                &mut builder,
                &format!("blobs/sha256/{}", manifest_digest.hex()),
                &oci_manifest,
                mtime,
            )?;
        }
        let descriptor = |annotations: Option<serde_json::Value>| {
            let mut d = json!({
                "mediaType": manifest::OCI_MANIFEST,
                "digest": manifest_digest,
                "size": oci_manifest.len(),
            });
            if let Some(a) = annotations {
                d["annotations"] = a;
            }
            d
        };
        if item.tags.is_empty() {
            index.push(descriptor(None));
        }
        for tag in &item.tags {
            let t = tag.tag.clone().unwrap_or_else(|| "latest".into());
            index.push(descriptor(Some(json!({
                "io.containerd.image.name": tag.to_string(),
                "org.opencontainers.image.ref.name": t,
            }))));
            if let Some(top) = record.layers.last() {
                repositories
                    .entry(tag.familiar_repository())
                    .or_default()
                    .insert(t, top.diff_id.hex().to_string());
            }
        }
        let repo_tags: Vec<String> = item.tags.iter().map(Reference::familiar).collect();
        manifest_json.push(ManifestEntry {
            config: format!("blobs/sha256/{}", item.id.hex()),
            repo_tags: (!repo_tags.is_empty()).then_some(repo_tags),
            layers: layer_paths,
        });
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_INDEX,
        "manifests": index,
    });
    append_file(&mut builder, "index.json", &json_bytes(&index), mtime)?;
    append_file(
        &mut builder,
        "manifest.json",
        &json_bytes(&manifest_json),
        mtime,
    )?;
    append_file(
        &mut builder,
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
        mtime,
    )?;
    if !repositories.is_empty() {
        append_file(
            &mut builder,
            "repositories",
            &json_bytes(&repositories),
            mtime,
        )?;
    }
    builder.into_inner().map_err(TransferError::Write)
}

/// A JSON document of the archive, compact like Docker's.
fn json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn append_dir<W: Write>(
    b: &mut tar::Builder<W>,
    name: &str,
    mtime: u64,
) -> Result<(), TransferError> {
    let mut h = header(tar::EntryType::Directory, 0o755, 0, mtime);
    b.append_data(&mut h, name, io::empty())
        .map_err(TransferError::Write)
}

fn append_file<W: Write>(
    b: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
    mtime: u64,
) -> Result<(), TransferError> {
    let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64, mtime);
    b.append_data(&mut h, name, data)
        .map_err(TransferError::Write)
}

/// Appends a layer as its uncompressed tar (what its diffID names), decompressed from the
/// stored blob. A first pass measures and verifies it, so a damaged blob fails before any of
/// its bytes are written.
fn append_layer<W: Write>(
    b: &mut tar::Builder<W>,
    store: &Store,
    layer: &LayerRecord,
    mtime: u64,
) -> Result<u64, TransferError> {
    let blob = layer.compressed.as_ref().ok_or_else(|| {
        invalid(format!(
            "layer {} has no stored blob to save",
            layer.diff_id
        ))
    })?;
    let path = store.blob_path(&blob.digest);
    let open = || -> Result<Box<dyn Read>, TransferError> {
        let file = File::open(&path).map_err(|e| ArchiveError::io(&path, e))?;
        Ok(compression::decompress(file)?)
    };
    let mut hashed = HashingReader::new(open()?);
    io::copy(&mut hashed, &mut io::sink()).map_err(|e| ArchiveError::io(&path, e))?;
    let (digest, size) = hashed.finish().map_err(|e| ArchiveError::io(&path, e))?;
    if digest != layer.diff_id {
        return Err(ImageError::LayerMismatch {
            expected: layer.diff_id.to_string(),
            actual: digest.to_string(),
        }
        .into());
    }
    let mut h = header(tar::EntryType::Regular, 0o644, size, mtime);
    b.append_data(
        &mut h,
        format!("blobs/sha256/{}", layer.diff_id.hex()),
        open()?.take(size),
    )
    .map_err(TransferError::Write)?;
    Ok(size)
}

// ---------------------------------------------------------------- load

/// What `load` made: the image and the references now pointing at it.
pub struct Loaded {
    pub id: Digest,
    pub tags: Vec<Reference>,
    /// Tags that pointed at another image before (Docker says it renames that one).
    pub replaced: Vec<(Reference, Digest)>,
}

/// Bytes of one layer read so far (`Loading layer`), keyed like Docker by the short chain ID.
#[derive(Debug, Clone)]
pub struct LoadProgress {
    pub id: String,
    pub current: u64,
    pub total: u64,
}

pub fn load<R: Read>(
    store: &Store,
    reader: R,
    progress: &dyn Fn(LoadProgress),
) -> Result<Vec<Loaded>, TransferError> {
    let work = store.temp_dir("load")?;
    let root = work.path().join("archive");
    std::fs::create_dir(&root).map_err(|e| ArchiveError::io(&root, e))?;
    let decoded = compression::decompress(reader)?;
    // The same expansion bound as one layer: a compressed archive is no way around it.
    let limited = compression::LimitedReader::new(decoded, unpack::max_layer_bytes());
    unpack::unpack_layer(limited, &root)?;
    let dir = open_dir(&root).map_err(|e| ArchiveError::io(&root, e))?;
    let dirfd = std::os::fd::AsRawFd::as_raw_fd(&dir);

    let mut loader = Loader {
        store,
        dirfd,
        staged: HashMap::new(),
        images: Vec::new(),
        progress,
    };
    if exists_in(dirfd, "manifest.json") {
        loader.docker_archive()?;
    } else if exists_in(dirfd, "index.json") {
        loader.oci_layout()?;
    } else {
        return Err(invalid(
            "no manifest.json or index.json (not a docker-archive or OCI archive)",
        ));
    }
    if loader.images.is_empty() {
        return Err(invalid("the archive holds no images"));
    }
    // Everything is verified: name it.
    let mut committed: HashMap<Digest, LayerRecord> = HashMap::new();
    for (diff_id, staged) in loader.staged.drain() {
        let record = staged.commit(store)?;
        committed.insert(diff_id, record);
    }
    let mut out = Vec::new();
    for image in loader.images {
        let mut layers = Vec::new();
        for diff_id in &image.diff_ids {
            match committed.get(diff_id) {
                Some(r) => layers.push(r.clone()),
                None => layers.push(existing_layer(store, diff_id)?),
            }
        }
        let new_id = Digest::of_bytes(&image.config);
        let before = store.repositories()?;
        let replaced = image
            .tags
            .iter()
            .filter_map(|t| {
                before
                    .tags
                    .get(&t.to_string())
                    .filter(|old| **old != new_id)
                    .map(|old| (t.clone(), old.clone()))
            })
            .collect();
        let id = assemble::write_image(store, &image.config, layers, &image.tags, None)?;
        out.push(Loaded {
            id,
            tags: image.tags,
            replaced,
        });
    }
    drop(work);
    Ok(out)
}

fn existing_layer(store: &Store, diff_id: &Digest) -> Result<LayerRecord, TransferError> {
    store
        .layer(diff_id)?
        .ok_or_else(|| invalid(format!("layer {diff_id} is missing")))
}

struct PendingImage {
    config: Vec<u8>,
    diff_ids: Vec<Digest>,
    tags: Vec<Reference>,
}

struct Loader<'a> {
    store: &'a Store,
    dirfd: RawFd,
    staged: HashMap<Digest, StagedLayer>,
    images: Vec<PendingImage>,
    progress: &'a dyn Fn(LoadProgress),
}

/// Docker's chain IDs: the first layer's diffID, then sha256("<parent chain> <diffID>").
fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::new();
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => Digest::of_bytes(format!("{parent} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// Reports how much of a layer file has been read.
struct Counting<'a, R> {
    inner: R,
    id: String,
    done: u64,
    total: u64,
    report: &'a dyn Fn(LoadProgress),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.report)(LoadProgress {
            id: self.id.clone(),
            current: self.done,
            total: self.total,
        });
        Ok(n)
    }
}

#[derive(Deserialize)]
struct RootFsOnly {
    rootfs: manifest::RootFs,
}

impl Loader<'_> {
    fn read(&self, name: &str, limit: u64) -> Result<Vec<u8>, TransferError> {
        let file = open_in_root(self.dirfd, name)
            .map_err(|e| invalid(format!("{name} named in the archive: {e}")))?;
        let mut bytes = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| invalid(format!("{name}: {e}")))?;
        if bytes.len() as u64 > limit {
            return Err(invalid(format!("{name} is too large")));
        }
        Ok(bytes)
    }

    fn diff_ids(config: &[u8], what: &str) -> Result<Vec<Digest>, TransferError> {
        let parsed: RootFsOnly = serde_json::from_slice(config)
            .map_err(|e| invalid(format!("image config {what}: {e}")))?;
        Ok(parsed.rootfs.diff_ids)
    }

    /// Stages one layer (once per diffID), checking it against `diff_id` and, when given,
    /// the stream's own digest.
    fn layer(
        &mut self,
        name: &str,
        diff_id: &Digest,
        chain_id: &Digest,
        blob_digest: Option<&Digest>,
    ) -> Result<(), TransferError> {
        if self.staged.contains_key(diff_id) {
            return Ok(());
        }
        let file = open_in_root(self.dirfd, name)
            .map_err(|e| invalid(format!("layer {name} named in the archive: {e}")))?;
        if blob_digest.is_none()
            && let Some(existing) = self.store.layer(diff_id)?
            && existing
                .compressed
                .as_ref()
                .is_some_and(|c| self.store.has_blob(&c.digest))
        {
            return Ok(());
        }
        let total = file.metadata().map(|m| m.len()).unwrap_or(0);
        let counted = Counting {
            inner: file,
            id: chain_id.short().to_string(),
            done: 0,
            total,
            report: self.progress,
        };
        let mut hashed = HashingReader::new(counted);
        let staged = assemble::stage_layer(self.store, &mut hashed, Some(diff_id))?;
        let (digest, _) = hashed.finish().map_err(ArchiveError::Stream)?;
        if let Some(expected) = blob_digest
            && &digest != expected
        {
            return Err(invalid(format!(
                "blob {name}: digest mismatch: expected {expected}, got {digest}"
            )));
        }
        self.staged.insert(diff_id.clone(), staged);
        Ok(())
    }

    fn docker_archive(&mut self) -> Result<(), TransferError> {
        let bytes = self.read("manifest.json", 64 << 20)?;
        let entries: Vec<ManifestEntry> =
            serde_json::from_slice(&bytes).map_err(|e| invalid(format!("manifest.json: {e}")))?;
        for entry in entries {
            let config = self.read(&entry.config, 8 << 20)?;
            let diff_ids = Self::diff_ids(&config, &entry.config)?;
            if diff_ids.len() != entry.layers.len() {
                return Err(invalid(format!(
                    "{} layers listed but the config has {} diffIDs",
                    entry.layers.len(),
                    diff_ids.len()
                )));
            }
            let chains = chain_ids(&diff_ids);
            for ((name, diff_id), chain) in entry.layers.iter().zip(&diff_ids).zip(&chains) {
                self.layer(name, diff_id, chain, None)?;
            }
            let mut tags = Vec::new();
            for tag in entry.repo_tags.unwrap_or_default() {
                let r = Reference::parse(&tag)
                    .map_err(|e| invalid(format!("RepoTags {tag:?}: {e}")))?;
                tags.push(r);
            }
            self.images.push(PendingImage {
                config,
                diff_ids,
                tags,
            });
        }
        Ok(())
    }

    fn blob(&self, digest: &Digest) -> Result<Vec<u8>, TransferError> {
        let name = format!("blobs/sha256/{}", digest.hex());
        let bytes = self.read(&name, 8 << 20)?;
        let actual = Digest::of_bytes(&bytes);
        if &actual != digest {
            return Err(invalid(format!(
                "blob {name}: digest mismatch: got {actual}"
            )));
        }
        Ok(bytes)
    }

    fn oci_layout(&mut self) -> Result<(), TransferError> {
        let bytes = self.read("index.json", 8 << 20)?;
        let Document::Index(entries) =
            manifest::parse(&bytes, None).map_err(|e| invalid(format!("index.json: {e}")))?
        else {
            return Err(invalid("index.json is not an image index"));
        };
        let mut by_manifest: Vec<(Digest, Vec<Reference>)> = Vec::new();
        for entry in &entries {
            let tag = tag_of(entry.annotations.as_ref());
            let digest = self.image_manifest_of(&entry.digest)?;
            match by_manifest.iter_mut().find(|(d, _)| d == &digest) {
                Some((_, tags)) => tags.extend(tag),
                None => by_manifest.push((digest, tag.into_iter().collect())),
            }
        }
        for (digest, tags) in by_manifest {
            let bytes = self.blob(&digest)?;
            let Document::Manifest(m) = manifest::parse(&bytes, None)
                .map_err(|e| invalid(format!("manifest {digest}: {e}")))?
            else {
                return Err(invalid(format!("{digest} is not an image manifest")));
            };
            let config = self.blob(&m.config.digest)?;
            let diff_ids = Self::diff_ids(&config, m.config.digest.as_str())?;
            if diff_ids.len() != m.layers.len() {
                return Err(invalid(format!(
                    "manifest {digest} lists {} layers but its config has {} diffIDs",
                    m.layers.len(),
                    diff_ids.len()
                )));
            }
            let chains = chain_ids(&diff_ids);
            for ((layer, diff_id), chain) in m.layers.iter().zip(&diff_ids).zip(&chains) {
                if !compression::is_layer_media_type(&layer.media_type) {
                    return Err(ArchiveError::UnsupportedMediaType(layer.media_type.clone()).into());
                }
                let name = format!("blobs/sha256/{}", layer.digest.hex());
                self.layer(&name, diff_id, chain, Some(&layer.digest))?;
            }
            self.images.push(PendingImage {
                config,
                diff_ids,
                tags,
            });
        }
        Ok(())
    }

    /// Follows an index entry to the image manifest for this host (nested indexes allowed once).
    fn image_manifest_of(&self, digest: &Digest) -> Result<Digest, TransferError> {
        let bytes = self.blob(digest)?;
        match manifest::parse(&bytes, None).map_err(|e| invalid(format!("{digest}: {e}")))? {
            Document::Manifest(_) => Ok(digest.clone()),
            Document::Index(entries) => {
                let entry = manifest::select_platform(&entries, &manifest::Platform::host())
                    .map_err(|e| invalid(e.to_string()))?;
                Ok(entry.digest.clone())
            }
        }
    }
}

/// The reference an OCI index entry names: containerd's full name, or a `ref.name` that is a
/// whole reference (skopeo writes `busybox:latest`); a bare tag names nothing.
fn tag_of(annotations: Option<&serde_json::Map<String, serde_json::Value>>) -> Option<Reference> {
    let annotations = annotations?;
    if let Some(name) = annotations
        .get("io.containerd.image.name")
        .and_then(|v| v.as_str())
        && let Ok(r) = Reference::parse(name)
    {
        return Some(r);
    }
    let name = annotations
        .get("org.opencontainers.image.ref.name")
        .and_then(|v| v.as_str())?;
    if !(name.contains(':') || name.contains('/')) {
        return None;
    }
    let r = Reference::parse(name).ok()?;
    (r.tag.is_some() && (r.domain != DOCKER_HUB || name.contains(':'))).then_some(r)
}

fn exists_in(dirfd: RawFd, name: &str) -> bool {
    open_in_root(dirfd, name).is_ok()
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let file = File::open(path)?;
    Ok(OwnedFd::from(file))
}

/// Opens a regular file of the extracted archive; symlinks resolve inside it (legacy archives
/// link duplicate layers), never outside.
fn open_in_root(dirfd: RawFd, name: &str) -> io::Result<File> {
    let c = CString::new(Path::new(name).as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    loop {
        match crate::sys::syscall::openat2(dirfd, &c, libc::O_RDONLY, resolve) {
            Ok(fd) => {
                let file = File::from(fd);
                if !file.metadata()?.is_file() {
                    return Err(io::Error::other("not a regular file"));
                }
                return Ok(file);
            }
            Err(libc::EAGAIN | libc::EINTR) => {}
            Err(e) => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}
