//! `import`: a one-layer image from a root filesystem tar (plain, gzip or zstd) read from a
//! file, stdin, or an http(s) URL fetched through the registry client's HTTP stack.

use std::fs::File;
use std::io::Read;

use serde_json::{Map, Value, json};

use super::ImageError;
use super::assemble;
use super::changes;
use super::digest::Digest;
use super::manifest::Platform;
use super::reference::Reference;
use super::registry::upload;
use super::store::Store;
use crate::archive::ArchiveError;

pub struct ImportOptions {
    pub changes: Vec<String>,
    pub message: Option<String>,
    pub platform: Option<Platform>,
    pub tag: Option<Reference>,
}

/// Where the tar comes from, as typed: `-`, a URL, or a path.
pub fn open_source(source: &str) -> Result<Box<dyn Read>, ImageError> {
    if source == "-" {
        return Ok(Box::new(std::io::stdin().lock()));
    }
    if source.starts_with("http://") || source.starts_with("https://") {
        return Ok(upload::http_get(source)?);
    }
    let path = std::path::Path::new(source);
    let file = File::open(path).map_err(|e| ArchiveError::io(path, e))?;
    Ok(Box::new(file))
}

pub fn import(store: &Store, source: &str, options: &ImportOptions) -> Result<Digest, ImageError> {
    let mut run = Map::new();
    changes::apply(&mut run, &options.changes)?;
    let reader = open_source(source)?;
    let staged = assemble::stage_layer(store, reader, None)?;
    let platform = options.platform.clone().unwrap_or_else(Platform::host);
    let created = assemble::now();
    let message = options
        .message
        .clone()
        .unwrap_or_else(|| format!("Imported from {source}"));
    let mut config = Map::new();
    config.insert("architecture".into(), json!(platform.architecture));
    if let Some(variant) = &platform.variant {
        config.insert("variant".into(), json!(variant));
    }
    config.insert("comment".into(), json!(message));
    config.insert("config".into(), Value::Object(run));
    config.insert("created".into(), json!(created));
    config.insert(
        "history".into(),
        json!([{ "created": created, "comment": message }]),
    );
    config.insert("os".into(), json!(platform.os));
    config.insert(
        "rootfs".into(),
        json!({ "type": "layers", "diff_ids": [staged.record.diff_id] }),
    );
    let bytes =
        serde_json::to_vec(&config).map_err(|e| ImageError::InvalidConfig(e.to_string()))?;
    let layer = staged.commit(store)?;
    let tags: Vec<Reference> = options.tag.iter().cloned().collect();
    assemble::write_image(store, &bytes, vec![layer], &tags, None)
}
