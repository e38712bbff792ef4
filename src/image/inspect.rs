//! `image inspect`: Docker's `ImageInspect` document, built from the image config blob and the
//! index, with Docker's field order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::digest::Digest;
use super::index;
use super::resolve::{self as lookup, LookupError};
use super::store::{Repositories, Store, StoreError};
use crate::time::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("image config of {id} is not valid JSON: {message}")]
    Config { id: Digest, message: String },
}

/// Docker's `container.Config`, in its field order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub domainname: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub attach_stdin: bool,
    #[serde(default)]
    pub attach_stdout: bool,
    #[serde(default)]
    pub attach_stderr: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub open_stdin: bool,
    #[serde(default)]
    pub stdin_once: bool,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub args_escaped: bool,
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub working_dir: String,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub network_disabled: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
    #[serde(default)]
    pub on_build: Option<Vec<String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

/// The parts of an OCI/Docker image config inspect shows.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub author: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, rename = "os.version")]
    pub os_version: String,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub container: String,
    #[serde(default)]
    pub docker_version: String,
    #[serde(default)]
    pub config: Option<ContainerConfig>,
    #[serde(default)]
    pub container_config: Option<ContainerConfig>,
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    #[serde(default)]
    pub rootfs: Option<RootFs>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HistoryEntry {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub empty_layer: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RootFs {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    pub data: BTreeMap<String, String>,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectRootFs {
    #[serde(rename = "Type")]
    pub kind: String,
    pub layers: Vec<Digest>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Metadata {
    pub last_tag_time: String,
}

/// Docker's `types.ImageInspect`, field for field.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    pub created: String,
    pub container: String,
    pub container_config: ContainerConfig,
    pub docker_version: String,
    pub author: String,
    pub config: ContainerConfig,
    pub architecture: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub variant: String,
    pub os: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub os_version: String,
    pub size: u64,
    pub virtual_size: u64,
    #[serde(rename = "GraphDriver")]
    pub graph_driver: GraphDriver,
    #[serde(rename = "RootFS")]
    pub root_fs: InspectRootFs,
    pub metadata: Metadata,
}

/// Reads and parses an image's config blob.
pub fn image_config(store: &Store, id: &Digest) -> Result<ImageConfig, InspectError> {
    let bytes = store.image_config(id)?;
    serde_json::from_slice(&bytes).map_err(|e| InspectError::Config {
        id: id.clone(),
        message: e.to_string(),
    })
}

/// Docker prints `Created` re-encoded as RFC 3339 with nanoseconds in UTC.
pub fn docker_time(created: Option<&str>) -> String {
    match created.and_then(Timestamp::parse_rfc3339) {
        Some(t) => t.rfc3339_nano(),
        None => "0001-01-01T00:00:00Z".into(),
    }
}

/// The inspect document of the image `input` names.
pub fn inspect(
    store: &Store,
    repos: &Repositories,
    input: &str,
) -> Result<ImageInspect, InspectError> {
    let id = lookup::resolve(repos, input)?;
    let config = image_config(store, &id)?;
    let summary = index::summaries(repos)
        .get(&id)
        .cloned()
        .unwrap_or_default();
    let (tags, digests) = lookup::references_of(repos, &id);
    let layers: Vec<Digest> = config
        .rootfs
        .as_ref()
        .map(|r| r.diff_ids.clone())
        .unwrap_or_else(|| summary.layers.clone());
    let diff = |d: &Digest| store.layer_diff(d).to_string_lossy().into_owned();
    let mut data = BTreeMap::new();
    if let Some(top) = layers.last() {
        let lower: Vec<String> = layers.iter().rev().skip(1).map(diff).collect();
        if !lower.is_empty() {
            data.insert("LowerDir".to_string(), lower.join(":"));
        }
        data.insert("UpperDir".to_string(), diff(top));
    }
    Ok(ImageInspect {
        id: id.to_string(),
        repo_tags: tags.iter().map(|t| lookup::familiar(t)).collect(),
        repo_digests: digests.iter().map(|d| lookup::familiar(d)).collect(),
        parent: summary
            .parent
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        // Docker falls back to the last history entry's comment.
        comment: if config.comment.is_empty() {
            config
                .history
                .last()
                .map(|h| h.comment.clone())
                .unwrap_or_default()
        } else {
            config.comment.clone()
        },
        created: docker_time(config.created.as_deref()),
        container: config.container.clone(),
        container_config: config.container_config.clone().unwrap_or_default(),
        docker_version: config.docker_version.clone(),
        author: config.author.clone(),
        config: config.config.clone().unwrap_or_default(),
        architecture: config.architecture.clone(),
        variant: config.variant.clone(),
        os: config.os.clone(),
        os_version: config.os_version.clone(),
        size: summary.size,
        virtual_size: summary.size,
        graph_driver: GraphDriver {
            data,
            name: "overlay".into(),
        },
        root_fs: InspectRootFs {
            kind: config
                .rootfs
                .as_ref()
                .map(|r| r.kind.clone())
                .unwrap_or_else(|| "layers".into()),
            layers,
        },
        metadata: Metadata {
            last_tag_time: summary
                .last_tag_time
                .clone()
                .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        },
    })
}

/// Go's `json.MarshalIndent(v, "", "    ")` as Docker prints inspect output (HTML characters
/// escaped like Go's encoder).
pub fn to_docker_json<T: Serialize>(value: &T) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    if value.serialize(&mut ser).is_err() {
        return "null".into();
    }
    go_escape(&String::from_utf8_lossy(&out))
}

/// Go's JSON encoder escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings; in JSON text
/// they can only occur inside strings, so replacing them everywhere is exact.
pub fn go_escape(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}
