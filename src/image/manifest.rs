//! Image manifests, indexes and configs as registries serve them: Docker schema 2, OCI
//! manifests, Docker manifest lists and OCI indexes, with platform selection.

use serde::{Deserialize, Serialize};

use super::digest::Digest;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// What `Accept` says when asking for a manifest.
pub const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("invalid manifest: {0}")]
    Malformed(String),
    #[error(
        "unsupported manifest format: Docker Image manifest version 2, schema 1 is no longer supported; the image must be rebuilt or pushed again in a newer format"
    )]
    Schema1,
    #[error("invalid manifest: the document is both a manifest and an index")]
    Ambiguous,
    #[error("unsupported manifest media type {0}")]
    UnsupportedMediaType(String),
    #[error("no matching manifest for {0} in the manifest list entries")]
    NoMatchingPlatform(String),
    #[error("invalid platform {0:?}: expected os/arch[/variant]")]
    BadPlatform(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform berth runs on, in Go's GOOS/GOARCH words.
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: variant.map(str::to_string),
        }
    }

    /// A `--platform` flag's value, if given.
    pub fn parse_flag(flag: Option<&str>) -> Result<Option<Platform>, ManifestError> {
        flag.map(Platform::parse).transpose()
    }

    pub fn parse(s: &str) -> Result<Platform, ManifestError> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || ManifestError::BadPlatform(s.to_string());
        match parts.as_slice() {
            // As containerd's platforms.Parse: an OS alone takes the host's architecture, an
            // architecture alone the host's OS.
            [one] if KNOWN_OS.contains(&one.to_ascii_lowercase().as_str()) => Ok(Platform {
                os: one.to_ascii_lowercase(),
                ..Platform::host()
            }),
            [one] if KNOWN_ARCH.contains(&normalise_arch(one).as_str()) => Ok(Platform {
                architecture: normalise_arch(one),
                variant: None,
                ..Platform::host()
            }),
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_ascii_lowercase(),
                architecture: normalise_arch(arch),
                variant: None,
            }),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                Ok(Platform {
                    os: os.to_ascii_lowercase(),
                    architecture: normalise_arch(arch),
                    variant: Some(variant.to_ascii_lowercase()),
                })
            }
            _ => Err(bad()),
        }
    }

    /// Whether an index entry (or an image) serves this (wanted) platform. A wanted variant
    /// must match; the host's implied variant (arm64/v8) also accepts entries with no variant.
    pub fn accepts(&self, entry: &Platform) -> bool {
        self.os == entry.os
            && self.architecture == normalise_arch(&entry.architecture)
            && match (&self.variant, &entry.variant) {
                (None, _) | (_, None) => true,
                (Some(a), Some(b)) => a == b,
            }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// GOOS values containerd recognises in a one-word platform.
const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "windows",
    "zos",
];

/// GOARCH values containerd recognises in a one-word platform.
const KNOWN_ARCH: &[&str] = &[
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "armbe",
    "arm64",
    "arm64be",
    "ppc64",
    "ppc64le",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "ppc",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];

fn normalise_arch(arch: &str) -> String {
    match arch.to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        other => other.into(),
    }
}

/// A parsed manifest document.
#[derive(Debug, Clone)]
pub enum Document {
    Manifest(ImageManifest),
    Index(Vec<Descriptor>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageManifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct RawDocument {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<u32>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    config: Option<serde_json::Value>,
    layers: Option<serde_json::Value>,
    manifests: Option<Vec<Descriptor>>,
    #[serde(rename = "fsLayers")]
    fs_layers: Option<serde_json::Value>,
}

/// Parses a manifest body; `content_type` is the registry's Content-Type header.
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Document, ManifestError> {
    let content_type = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
        .filter(|c| !c.is_empty());
    if matches!(
        content_type.as_deref(),
        Some(DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED)
    ) {
        return Err(ManifestError::Schema1);
    }
    let raw: RawDocument =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed(e.to_string()))?;
    if raw.schema_version == Some(1) || raw.fs_layers.is_some() {
        return Err(ManifestError::Schema1);
    }
    if raw.schema_version != Some(2) {
        return Err(ManifestError::Malformed("schemaVersion must be 2".into()));
    }
    let is_manifest = raw.config.is_some() || raw.layers.is_some();
    if is_manifest && raw.manifests.is_some() {
        return Err(ManifestError::Ambiguous);
    }
    let media_type = raw.media_type.clone().or(content_type.clone());
    if let (Some(field), Some(header)) = (&raw.media_type, &content_type)
        && field != header
        && header != "application/json"
        && header != "application/octet-stream"
    {
        return Err(ManifestError::Malformed(format!(
            "mediaType {field} does not match Content-Type {header}"
        )));
    }
    if let Some(manifests) = raw.manifests {
        match media_type.as_deref() {
            None | Some(DOCKER_MANIFEST_LIST) | Some(OCI_INDEX) => {}
            Some(other) => return Err(ManifestError::UnsupportedMediaType(other.into())),
        }
        return Ok(Document::Index(manifests));
    }
    match media_type.as_deref() {
        None | Some(DOCKER_MANIFEST) | Some(OCI_MANIFEST) => {}
        Some(other) => return Err(ManifestError::UnsupportedMediaType(other.into())),
    }
    let manifest: ImageManifest =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed(e.to_string()))?;
    Ok(Document::Manifest(manifest))
}

/// The index entry for `wanted`, as Docker chooses it.
pub fn select_platform<'a>(
    entries: &'a [Descriptor],
    wanted: &Platform,
) -> Result<&'a Descriptor, ManifestError> {
    entries
        .iter()
        .filter(|d| d.media_type != "application/vnd.oci.image.layer.v1.tar")
        .find(|d| d.platform.as_ref().is_some_and(|p| wanted.accepts(p)))
        .ok_or_else(|| {
            let shown = Platform {
                variant: None,
                ..wanted.clone()
            };
            ManifestError::NoMatchingPlatform(shown.to_string())
        })
}

/// The parts of an image config berth reads (the full document is kept as a blob).
#[derive(Debug, Clone, Deserialize)]
pub struct ConfigSummary {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
    pub rootfs: RootFs,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn rejects_schema1_and_ambiguous() {
        let s1 = br#"{"schemaVersion":1,"fsLayers":[]}"#;
        assert!(matches!(parse(s1, None), Err(ManifestError::Schema1)));
        assert!(matches!(
            parse(b"{}", Some(DOCKER_SCHEMA1_SIGNED)),
            Err(ManifestError::Schema1)
        ));
        let both = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"{D}","size":1}},"layers":[],"manifests":[]}}"#
        );
        assert!(matches!(
            parse(both.as_bytes(), None),
            Err(ManifestError::Ambiguous)
        ));
        assert!(matches!(
            parse(b"not json", None),
            Err(ManifestError::Malformed(_))
        ));
    }

    #[test]
    fn one_word_platforms_fill_in_the_host() {
        let host = Platform::host();
        let os_only = Platform::parse("linux").unwrap();
        assert_eq!(
            (os_only.os.as_str(), &os_only.architecture),
            ("linux", &host.architecture)
        );
        let arch_only = Platform::parse("s390x").unwrap();
        assert_eq!(
            (arch_only.os.as_str(), arch_only.architecture.as_str()),
            ("linux", "s390x")
        );
        assert_eq!(Platform::parse("x86_64").unwrap().architecture, "amd64");
        assert!(Platform::parse("bogus").is_err());
        assert!(Platform::parse("linux/").is_err());
    }

    #[test]
    fn selects_platform() {
        let entry = |arch: &str, variant: Option<&str>| Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: Digest::parse(D).unwrap(),
            size: 1,
            platform: Some(Platform {
                os: "linux".into(),
                architecture: arch.into(),
                variant: variant.map(str::to_string),
            }),
            annotations: None,
        };
        let entries = vec![entry("arm64", Some("v8")), entry("amd64", None)];
        let amd = Platform::parse("linux/amd64").unwrap();
        assert_eq!(
            select_platform(&entries, &amd)
                .unwrap()
                .platform
                .as_ref()
                .unwrap()
                .architecture,
            "amd64"
        );
        let arm = Platform::parse("linux/arm64").unwrap();
        assert!(select_platform(&entries, &arm).is_ok());
        let s390 = Platform::parse("linux/s390x").unwrap();
        assert_eq!(
            select_platform(&entries, &s390).unwrap_err().to_string(),
            "no matching manifest for linux/s390x in the manifest list entries"
        );
        assert!(Platform::parse("linux/").is_err());
    }
}
