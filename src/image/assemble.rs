//! Making images locally (commit, import, load): a layer tar stream is hashed (its diffID),
//! gzip-compressed into a blob (so the layer can be pushed and saved like a pulled one), and
//! unpacked into an overlay-ready directory — all in one pass, all under `tmp/` until
//! [`StagedLayer::commit`]. Then the config, a Docker v2 manifest, the image record and the tag.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;

use flate2::Compression as GzLevel;
use flate2::write::GzEncoder;

use super::ImageError;
use super::digest::{Digest, Hasher, HashingReader};
use super::index;
use super::manifest::{DOCKER_CONFIG, DOCKER_MANIFEST, Descriptor, ImageManifest};
use super::reference::Reference;
use super::store::{CompressedBlob, ImageRecord, LayerRecord, Store, TempDir};
use crate::archive::ArchiveError;
use crate::archive::compression::{self, LimitedReader};
use crate::archive::unpack::{self, max_layer_bytes};

pub const GZIP_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// A layer unpacked and compressed under `tmp/`, not yet visible in the store.
pub struct StagedLayer {
    pub record: LayerRecord,
    work: Option<TempDir>,
    blob_temp: PathBuf,
}

impl Drop for StagedLayer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.blob_temp);
    }
}

/// Counts and hashes what is written through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    count: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Feeds every byte read to a gzip encoder as well.
struct Compressing<'a, R, W: Write> {
    inner: R,
    encoder: &'a mut GzEncoder<W>,
}

impl<R: Read, W: Write> Read for Compressing<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.encoder.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Stages one layer from a tar stream (plain, gzip or zstd: detected by its first bytes).
/// Unsafe entries (escaping paths, …) are refused by the unpacker. `expected` is the diffID the
/// stream must have (load checks it against the image config).
pub fn stage_layer<R: Read>(
    store: &Store,
    reader: R,
    expected: Option<&Digest>,
) -> Result<StagedLayer, ImageError> {
    let work = store.temp_dir("layer")?;
    let diff_dir = work.path().join("diff");
    std::fs::create_dir(&diff_dir).map_err(|e| ArchiveError::io(&diff_dir, e))?;
    let blob_temp = store.blob_temp_path("layer-blob");
    let file = File::create(&blob_temp).map_err(|e| ArchiveError::io(&blob_temp, e))?;
    let mut staged = StagedLayer {
        record: LayerRecord {
            diff_id: Digest::of_bytes(b""),
            size: 0,
            compressed: None,
        },
        work: Some(work),
        blob_temp,
    };
    let mut encoder = GzEncoder::new(
        HashingWriter {
            inner: BufWriter::new(file),
            hasher: Hasher::default(),
            count: 0,
        },
        GzLevel::fast(),
    );
    let decoded = compression::decompress(reader)?;
    let mut hashed = HashingReader::new(LimitedReader::new(decoded, max_layer_bytes()));
    let stats = {
        let tee = Compressing {
            inner: &mut hashed,
            encoder: &mut encoder,
        };
        unpack::unpack_layer(tee, &diff_dir)?
    };
    // The tar's trailing zero blocks belong to the diffID (and to the blob).
    let mut rest = Vec::new();
    hashed
        .read_to_end(&mut rest)
        .map_err(|e| ArchiveError::Tar(e.to_string()))?;
    encoder
        .write_all(&rest)
        .map_err(|e| ArchiveError::io(&staged.blob_temp, e))?;
    let (diff_id, _) = hashed.finish().map_err(ArchiveError::Stream)?;
    if let Some(expected) = expected
        && expected != &diff_id
    {
        return Err(ImageError::LayerMismatch {
            expected: expected.to_string(),
            actual: diff_id.to_string(),
        });
    }
    let mut writer = encoder
        .finish()
        .map_err(|e| ArchiveError::io(&staged.blob_temp, e))?;
    writer
        .flush()
        .map_err(|e| ArchiveError::io(&staged.blob_temp, e))?;
    let compressed = writer.hasher.clone().digest();
    staged.record = LayerRecord {
        diff_id,
        size: stats.file_bytes,
        compressed: Some(CompressedBlob {
            digest: compressed,
            media_type: GZIP_LAYER.to_string(),
            size: writer.count,
        }),
    };
    Ok(staged)
}

impl StagedLayer {
    /// Names the layer and its blob. A layer already in the store wins (same diffID, same
    /// content); its record is returned.
    pub fn commit(mut self, store: &Store) -> Result<LayerRecord, ImageError> {
        let _lock = store.object_lock(&self.record.diff_id)?;
        let record = self.record.clone();
        let existing = store.layer(&record.diff_id)?;
        if let Some(c) = &record.compressed
            && !store.has_blob(&c.digest)
        {
            store.commit_blob_file(&self.blob_temp, &c.digest)?;
        }
        if let Some(existing) = existing {
            // Same diffID, same content: keep the unpacked copy containers may be using.
            return Ok(LayerRecord {
                compressed: existing.compressed.or(record.compressed),
                ..existing
            });
        }
        if let Some(work) = self.work.take() {
            store.commit_layer(work, &record)?;
        }
        Ok(record)
    }
}

/// A Docker v2 manifest for `config` and `layers` (their stored gzip blobs).
pub fn manifest_for(config: &[u8], layers: &[LayerRecord]) -> Result<Vec<u8>, ImageError> {
    let mut descriptors = Vec::new();
    for layer in layers {
        let c = layer.compressed.as_ref().ok_or_else(|| {
            ImageError::InvalidConfig(format!("layer {} has no stored blob", layer.diff_id))
        })?;
        descriptors.push(Descriptor {
            media_type: c.media_type.clone(),
            digest: c.digest.clone(),
            size: c.size,
            platform: None,
            annotations: None,
        });
    }
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(DOCKER_MANIFEST.to_string()),
        config: Descriptor {
            media_type: DOCKER_CONFIG.to_string(),
            digest: Digest::of_bytes(config),
            size: config.len() as u64,
            platform: None,
            annotations: None,
        },
        layers: descriptors,
    };
    serde_json::to_vec_pretty(&manifest).map_err(|e| ImageError::InvalidManifest(e.to_string()))
}

/// Stores the config and a manifest, writes the image record, and points `tags` at it.
/// Returns the image ID and the tags that moved away from another image.
pub fn write_image(
    store: &Store,
    config: &[u8],
    layers: Vec<LayerRecord>,
    tags: &[Reference],
    parent: Option<&Digest>,
) -> Result<Digest, ImageError> {
    let id = Digest::of_bytes(config);
    #[derive(serde::Deserialize)]
    struct Created {
        created: Option<String>,
    }
    let created = serde_json::from_slice::<Created>(config)
        .ok()
        .and_then(|c| c.created);
    let manifest = manifest_for(config, &layers)?;
    let manifest_digest = Digest::of_bytes(&manifest);
    // Under the store lock, as pull writes them: `image prune` sweeps config and manifest
    // blobs no record names under that lock, and must not take these before the record is.
    let lock = store.lock()?;
    store.write_blob(&id, config)?;
    store.write_blob(&manifest_digest, &manifest)?;
    let mut repos = index::load_locked(store, &lock)?;
    let record = match store.image(&id)? {
        Some(existing) => existing,
        None => {
            let record = ImageRecord {
                id: id.clone(),
                size: layers.iter().map(|l| l.size).sum(),
                layers,
                created,
                manifest: Some(manifest_digest),
                repo_digests: Vec::new(),
            };
            store.write_image(&record)?;
            record
        }
    };
    for tag in tags {
        repos.tags.insert(tag.to_string(), id.clone());
    }
    record_written(store, &mut repos, &record, parent, !tags.is_empty());
    store.write_repositories(&lock, &repos)?;
    Ok(id)
}

/// The one place image records made or changed by the transfer commands reach the listing
/// index (`repositories.json`), under the store lock, just before it is written: the image's
/// summary, its local parent (the image a commit was made from; kept across later updates),
/// and the tag time when a tag was just pointed at it.
pub fn record_written(
    store: &Store,
    repos: &mut super::store::Repositories,
    record: &ImageRecord,
    parent: Option<&Digest>,
    tagged: bool,
) {
    let old_parent = index::summaries(repos)
        .get(&record.id)
        .and_then(|s| s.parent.clone());
    index::put(store, repos, record);
    if let Some(summary) = repos.images.as_mut().and_then(|i| i.get_mut(&record.id)) {
        summary.parent = parent.cloned().or(old_parent);
    }
    if tagged {
        index::tagged_now(repos, &record.id);
    }
}

/// The current time as Docker writes it in configs (RFC 3339, nanoseconds, UTC).
pub fn now() -> String {
    crate::time::Timestamp::now().rfc3339_nano()
}
