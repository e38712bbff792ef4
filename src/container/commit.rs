//! `commit`: a new image from a container's changes. The upper directory becomes one layer
//! (overlay whiteouts and opaque directories written back as `.wh.` entries, the runtime's
//! mountpoint stubs left out), the base image's config gets the container's settings, the
//! `-c` changes, the new diffID and a history entry. A running container is frozen meanwhile.

use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use serde_json::{Map, Value, json};

use super::ContainerError;
use super::lifecycle::current_state;
use super::ops;
use super::record::Status;
use super::store::{ContainerDir, ContainerStore};
use crate::archive::ArchiveError;
use crate::archive::diff::StubFilter;
use crate::archive::tarwrite::{self, Decision, WalkOptions};
use crate::image::ImageError;
use crate::image::assemble;
use crate::image::changes::{self, ChangeError};
use crate::image::digest::Digest;
use crate::image::reference::Reference;
use crate::image::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid image config of {0}")]
    Config(String),
}

pub struct CommitOptions {
    pub author: Option<String>,
    pub message: Option<String>,
    pub changes: Vec<String>,
    pub pause: bool,
    pub tag: Option<Reference>,
}

/// Commits container `name` and returns the new image ID.
pub fn commit(
    root: &Path,
    store: &Store,
    name: &str,
    options: &CommitOptions,
) -> Result<Digest, CommitError> {
    let containers = ContainerStore::open(root)?;
    let dir = containers.find(name)?;
    // An `rm` of the container meanwhile (its directory renamed away, mid-walk or before)
    // fails what comes next on a path of the store; Docker says the container is gone.
    commit_dir(store, &dir, options).map_err(|e| {
        if dir.record_path().exists() {
            e
        } else {
            CommitError::Container(ContainerError::NotFound(name.to_string()))
        }
    })
}

fn commit_dir(
    store: &Store,
    dir: &ContainerDir,
    options: &CommitOptions,
) -> Result<Digest, CommitError> {
    let record = dir.record()?;
    // Validate the changes before doing any work.
    changes::apply(&mut Map::new(), &options.changes)?;
    let base: Value = serde_json::from_slice(&store.image_config(&record.image_id)?)
        .map_err(|_| CommitError::Config(record.image_id.to_string()))?;

    let state = current_state(dir)?;
    let paused_here = options.pause && state.status == Status::Running && {
        ops::pause(dir, true)?;
        true
    };
    let staged = (|| -> Result<_, CommitError> {
        let upper = dir.path.join("upper");
        let work = store.temp_dir("commit")?;
        let tar_path = work.path().join("layer.tar");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tar_path)
            .map_err(|e| ArchiveError::io(&tar_path, e))?;
        let stubs = StubFilter::new(&upper);
        let filter = |path: &Path, meta: &std::fs::Metadata| {
            if stubs.hidden(path, meta) {
                Decision::Skip
            } else {
                Decision::Include
            }
        };
        let walk = WalkOptions {
            layer: true,
            filter: &filter,
            synthetic: Default::default(),
            synthetic_mtime: 0,
        };
        let writer = tarwrite::write_tree(&upper, BufWriter::new(file), &walk)?;
        let mut file = writer
            .into_inner()
            .map_err(|e| ArchiveError::io(&tar_path, e.into_error()))?;
        file.flush().map_err(|e| ArchiveError::io(&tar_path, e))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| ArchiveError::io(&tar_path, e))?;
        let staged = assemble::stage_layer(store, file, None)?;
        Ok((staged, work))
    })();
    // A container left frozen (its state could not be written back) is the user's to know.
    let resumed = if paused_here {
        ops::pause(dir, false)
    } else {
        Ok(())
    };
    let (staged, _work) = staged?;
    resumed?;
    // The walk skips files gone since their directory was listed (a running container's):
    // all of them, if `rm` took the container away meanwhile, which is no layer to commit.
    if !dir.record_path().exists() {
        return Err(ContainerError::NotFound(dir.id.clone()).into());
    }

    let diff_id = staged.record.diff_id.clone();
    let mut config = base;
    let created = assemble::now();
    let Some(top) = config.as_object_mut() else {
        return Err(CommitError::Config(record.image_id.to_string()));
    };
    let mut run = top
        .get("config")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    // The container's settings, as Docker commits its Config.
    let image_env: Vec<String> = run
        .get("Env")
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .unwrap_or_default();
    let env: Vec<&String> = record
        .env
        .iter()
        .filter(|e| {
            !e.starts_with("HOSTNAME=")
                && (!e.starts_with("HOME=") || image_env.iter().any(|i| i.starts_with("HOME=")))
        })
        .collect();
    if !env.is_empty() {
        run.insert("Env".into(), json!(env));
    }
    let entrypoint: Vec<String> = run
        .get("Entrypoint")
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .unwrap_or_default();
    let mut full = vec![record.path.clone()];
    full.extend(record.args.iter().cloned());
    let cmd: Vec<String> = if !entrypoint.is_empty() && full.starts_with(&entrypoint) {
        full[entrypoint.len()..].to_vec()
    } else {
        full.clone()
    };
    if !cmd.is_empty() || entrypoint.is_empty() {
        run.insert("Cmd".into(), json!(cmd));
    }
    if !record.working_dir.is_empty() {
        run.insert("WorkingDir".into(), json!(record.working_dir));
    }
    if !record.user.is_empty() {
        run.insert("User".into(), json!(record.user));
    }
    if !record.labels.is_empty() {
        run.insert("Labels".into(), json!(record.labels));
    }
    changes::apply(&mut run, &options.changes)?;
    top.insert("config".into(), Value::Object(run));
    top.insert("created".into(), json!(created));
    top.insert("container".into(), json!(record.id));
    match &options.author {
        Some(a) => {
            top.insert("author".into(), json!(a));
        }
        None => {
            top.remove("author");
        }
    }
    if let Some(m) = &options.message {
        top.insert("comment".into(), json!(m));
    } else {
        top.remove("comment");
    }
    let rootfs = top
        .entry("rootfs")
        .or_insert_with(|| json!({"type": "layers"}));
    if let Some(rootfs) = rootfs.as_object_mut() {
        let ids = rootfs.entry("diff_ids").or_insert_with(|| json!([]));
        if let Some(ids) = ids.as_array_mut() {
            ids.push(json!(diff_id));
        }
    }
    let mut entry = Map::new();
    entry.insert("created".into(), json!(created));
    if let Some(a) = &options.author {
        entry.insert("author".into(), json!(a));
    }
    entry.insert("created_by".into(), json!(cmd.join(" ")));
    if let Some(m) = &options.message {
        entry.insert("comment".into(), json!(m));
    }
    let history = top.entry("history").or_insert_with(|| json!([]));
    if let Some(history) = history.as_array_mut() {
        history.push(Value::Object(entry));
    }
    let config_bytes =
        serde_json::to_vec(&config).map_err(|e| ImageError::InvalidConfig(e.to_string()))?;

    let base_record = store
        .image(&record.image_id)?
        .ok_or_else(|| ImageError::Store(StoreError::ImageNotFound(record.image.clone())))?;
    let layer = staged.commit(store)?;
    let mut layers = base_record.layers;
    layers.push(layer);
    let tags: Vec<Reference> = options.tag.iter().cloned().collect();
    Ok(assemble::write_image(
        store,
        &config_bytes,
        layers,
        &tags,
        Some(&record.image_id),
    )?)
}
