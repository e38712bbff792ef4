//! The local, content-addressed image store: verified blobs, one unpacked copy of each layer,
//! image records, and the `repositories.json` tag index.
//!
//! Layout under the store root (see docs/ARCHITECTURE.md):
//! `blobs/sha256/<hex>`, `layers/<diffid-hex>/{diff/,layer.json}`, `images/<config-hex>.json`,
//! `repositories.json`, `tmp/` (work in progress), `locks/`.
//!
//! Nothing is named by a digest before it is complete and verified: work happens under `tmp/`
//! and is renamed into place. Index writes happen under the store lock and replace the file
//! atomically, so a crash at any point leaves only unreferenced garbage, swept by the next writer.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::summary::ImageSummary;
use crate::sys::{self, FileLock};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("store file {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("digest mismatch for {expected}: got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("No such image: {0}")]
    ImageNotFound(String),
    #[error("store root {0} is not a directory")]
    RootNotADirectory(PathBuf),
}

/// Refuses a store root that exists as something else than a directory (`--root FILE`),
/// before anything tries to make directories under it.
pub fn check_root(root: &Path) -> Result<(), StoreError> {
    match fs::metadata(root) {
        Ok(meta) if !meta.is_dir() => Err(StoreError::RootNotADirectory(root.to_path_buf())),
        _ => Ok(()),
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where a layer came from, kept so it can be pushed or saved without recompressing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CompressedBlob {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerRecord {
    pub diff_id: Digest,
    /// Bytes of the uncompressed tar stream.
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compressed: Option<CompressedBlob>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The config digest: Docker's image ID.
    pub id: Digest,
    pub layers: Vec<LayerRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Sum of the layers' uncompressed sizes.
    pub size: u64,
    /// The manifest this image was pulled or loaded with (kept for push and save).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Digest>,
    /// `docker.io/library/busybox@sha256:…`, as Docker's RepoDigests.
    #[serde(default)]
    pub repo_digests: Vec<String>,
}

/// The only mutable index: canonical `name:tag` → image ID.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Repositories {
    #[serde(default)]
    pub tags: BTreeMap<String, Digest>,
    /// Per-image summaries for listing without opening every image (see `image/index.rs`);
    /// absent in stores written before it existed, and then rebuilt on first use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<BTreeMap<Digest, ImageSummary>>,
}

impl Repositories {
    pub fn tags_of(&self, id: &Digest) -> Vec<String> {
        self.tags
            .iter()
            .filter(|(_, v)| *v == id)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

/// A work directory under `tmp/`, removed on drop unless it was committed.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = sys::remove_tree(&self.path);
    }
}

pub struct Store {
    root: PathBuf,
    /// Set once [`Store::lock`] has swept the blob directory's temp files: a command that
    /// takes the lock again does not scan it again.
    blobs_swept: std::sync::OnceLock<()>,
}

/// [`Store::sweep`] of the store at `root`, for a command that does not open the image store.
pub fn sweep_work(root: &Path) {
    sys::sweep_temps(&root.join("tmp"));
}

impl Store {
    /// Opens (creating if needed) the store at `root`, mode 0700 like Docker's data root.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let store = Store {
            root: root.to_path_buf(),
            blobs_swept: std::sync::OnceLock::new(),
        };
        // `locks` is made last: its presence means the whole layout exists, even when an
        // earlier open was killed half-way through creating it.
        if !root.join("locks").is_dir() {
            check_root(root)?;
            let mut builder = fs::DirBuilder::new();
            builder.recursive(true).mode(0o700);
            for dir in ["", "blobs/sha256", "layers", "images", "tmp", "locks"] {
                let path = root.join(dir);
                builder.create(&path).map_err(io_err(&path))?;
            }
            fs::set_permissions(root, fs::Permissions::from_mode(0o700)).map_err(io_err(root))?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store-wide writer lock, for a command that writes the store: the first time this
    /// store handle takes it, the small temp files killed writers left beside the blobs are
    /// swept (`tmp/` is swept by the CLI as a command starts, see [`sweep_work`]).
    pub fn lock(&self) -> Result<FileLock, StoreError> {
        let lock = self.hold()?;
        self.blobs_swept
            .get_or_init(|| sys::sweep_temps(&self.root.join("blobs/sha256")));
        Ok(lock)
    }

    /// The same lock without any sweeping, for `create`, which only needs the image's layers
    /// to stay put until its container is named: `run` neither scans the blob directory nor
    /// waits for anything but the lock itself (`rmi` deletes layer trees after releasing it).
    pub fn hold(&self) -> Result<FileLock, StoreError> {
        let path = self.root.join("lock");
        FileLock::exclusive(&path).map_err(io_err(&path))
    }

    /// Deletes the work that killed commands left in `tmp/`: a pull's or a commit's layer and
    /// blob, a load's archive, an export's scratch, a removed container's files. Every
    /// berth command that opens the store does this first. An entry is named after the
    /// process writing it (pid and start time, `sys::temp_name`), so what a running command
    /// is still writing is never touched. Best effort: a read-only store keeps its leftovers.
    pub fn sweep(&self) {
        sweep_work(&self.root);
    }

    /// Serialises work on one object (a layer being unpacked, say) across processes.
    pub fn object_lock(&self, digest: &Digest) -> Result<FileLock, StoreError> {
        let path = self.root.join("locks").join(digest.hex());
        FileLock::exclusive(&path).map_err(io_err(&path))
    }

    pub fn temp_dir(&self, what: &str) -> Result<TempDir, StoreError> {
        let path = self.root.join("tmp").join(sys::temp_name(what));
        fs::create_dir(&path).map_err(io_err(&path))?;
        Ok(TempDir { path })
    }

    // ---- blobs ----

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).exists()
    }

    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(digest);
        fs::read(&path).map_err(io_err(&path))
    }

    /// Stores a small blob after checking it hashes to `digest`.
    pub fn write_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        let actual = Digest::of_bytes(bytes);
        if &actual != digest {
            return Err(StoreError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        let path = self.blob_path(digest);
        if path.exists() {
            return Ok(());
        }
        sys::write_atomic(&path, bytes, 0o600).map_err(io_err(&path))
    }

    /// A temp path for streaming a large blob in, under `tmp/` (swept by every command, where
    /// the blobs directory is swept only under the store lock); name it with
    /// [`Store::commit_blob_file`] once its digest has been verified.
    pub fn blob_temp_path(&self, what: &str) -> PathBuf {
        self.root.join("tmp").join(sys::temp_name(what))
    }

    pub fn commit_blob_file(&self, temp: &Path, digest: &Digest) -> Result<(), StoreError> {
        let path = self.blob_path(digest);
        fs::rename(temp, &path).map_err(io_err(&path))
    }

    // ---- layers ----

    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    /// The overlay-ready directory of an unpacked layer.
    pub fn layer_diff(&self, diff_id: &Digest) -> PathBuf {
        self.layer_dir(diff_id).join("diff")
    }

    pub fn layer(&self, diff_id: &Digest) -> Result<Option<LayerRecord>, StoreError> {
        self.read_json_opt(&self.layer_dir(diff_id).join("layer.json"))
    }

    /// Names a fully unpacked layer: `work` must hold `diff/`; its record is written inside it
    /// and the whole directory renamed into place, so a layer exists completely or not at all.
    pub fn commit_layer(&self, work: TempDir, record: &LayerRecord) -> Result<(), StoreError> {
        let record_path = work.path().join("layer.json");
        let bytes = serde_json::to_vec_pretty(record).expect("layer record serialises");
        sys::write_atomic(&record_path, &bytes, 0o600).map_err(io_err(&record_path))?;
        let dest = self.layer_dir(&record.diff_id);
        match fs::rename(work.path(), &dest) {
            Ok(()) => Ok(()),
            // Another writer finished the same layer first; ours is dropped with `work`.
            Err(e) if dest.join("layer.json").exists() => {
                let _ = e;
                Ok(())
            }
            Err(source) => Err(StoreError::Io { path: dest, source }),
        }
    }

    // ---- images ----

    fn image_path(&self, id: &Digest) -> PathBuf {
        self.root.join("images").join(format!("{}.json", id.hex()))
    }

    pub fn image(&self, id: &Digest) -> Result<Option<ImageRecord>, StoreError> {
        self.read_json_opt(&self.image_path(id))
    }

    pub fn write_image(&self, record: &ImageRecord) -> Result<(), StoreError> {
        let path = self.image_path(&record.id);
        let bytes = serde_json::to_vec_pretty(record).expect("image record serialises");
        sys::write_atomic(&path, &bytes, 0o600).map_err(io_err(&path))
    }

    pub fn image_ids(&self) -> Result<Vec<Digest>, StoreError> {
        let dir = self.root.join("images");
        let mut ids = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let name = entry.file_name();
            let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if let Ok(id) = Digest::parse(&format!("sha256:{hex}")) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// The image config JSON of an image.
    pub fn image_config(&self, id: &Digest) -> Result<Vec<u8>, StoreError> {
        self.read_blob(id)
    }

    // ---- index ----

    pub fn repositories(&self) -> Result<Repositories, StoreError> {
        Ok(self
            .read_json_opt(&self.root.join("repositories.json"))?
            .unwrap_or_default())
    }

    /// Read-modify-write of the tag index under the store lock (the caller holds it).
    pub fn write_repositories(
        &self,
        _lock: &FileLock,
        repos: &Repositories,
    ) -> Result<(), StoreError> {
        let path = self.root.join("repositories.json");
        let bytes = serde_json::to_vec_pretty(repos).expect("index serialises");
        sys::write_atomic(&path, &bytes, 0o600).map_err(io_err(&path))
    }

    /// Removes an image record (the caller holds the store lock and has already dropped the
    /// image from the index).
    pub fn remove_image(&self, id: &Digest) -> Result<(), StoreError> {
        let path = self.image_path(id);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(StoreError::Io { path, source: e })
            }
            _ => Ok(()),
        }
    }

    /// Removes a blob if present.
    pub fn remove_blob(&self, digest: &Digest) -> Result<(), StoreError> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(StoreError::Io { path, source: e })
            }
            _ => Ok(()),
        }
    }

    /// Takes an unpacked layer out of the store: renamed under `tmp/` (atomic: the layer
    /// exists whole or not at all), where it is returned for the caller to delete, after
    /// releasing the store lock: deleting a layer's tree takes long, and `run` waits for the
    /// lock. A crash before the deletion leaves only sweepable temp garbage. `None` when the
    /// layer was not there. The caller holds the layer's object lock.
    pub fn detach_layer(&self, diff_id: &Digest) -> Result<Option<PathBuf>, StoreError> {
        let dir = self.layer_dir(diff_id);
        let doomed = self
            .root
            .join("tmp")
            .join(sys::temp_name(&format!("rm-{}", diff_id.hex())));
        match fs::rename(&dir, &doomed) {
            Ok(()) => Ok(Some(doomed)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io { path: dir, source }),
        }
    }

    fn read_json_opt<T: for<'de> Deserialize<'de>>(
        &self,
        path: &Path,
    ) -> Result<Option<T>, StoreError> {
        match fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|source| StoreError::Corrupt {
                        path: path.to_path_buf(),
                        source,
                    })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }
}
