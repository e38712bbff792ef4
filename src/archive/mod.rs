//! Tar in and out: safe layer unpacking (with overlay whiteouts) and the stream decoders for
//! compressed layers.

pub mod compression;
pub mod diff;
pub mod export;
pub mod tarwrite;
pub mod unpack;

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("invalid tar archive: {0}")]
    Tar(String),
    #[error("reading layer: {0}")]
    Stream(io::Error),
    #[error("refusing unsafe tar entry {path:?}: {reason}")]
    UnsafePath { path: String, reason: &'static str },
    #[error("tar header of {0} bytes exceeds the limit")]
    HeaderTooLarge(u64),
    #[error("layer expands beyond {0} bytes")]
    TooLarge(u64),
    #[error("unsupported layer media type {0}")]
    UnsupportedMediaType(String),
}

impl ArchiveError {
    pub fn io(path: &Path, source: io::Error) -> ArchiveError {
        ArchiveError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
