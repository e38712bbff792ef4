//! Layer stream decoding: which media types are layers, and a decompressor chosen by the
//! stream's magic bytes (Docker does the same: registries mislabel compression often enough).

use std::io::{self, BufRead, BufReader, Read};

use super::ArchiveError;

/// Media types berth accepts as layers.
pub fn is_layer_media_type(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Wraps `reader` in the decoder its first bytes call for. Gzip is decoded multi-member, as
/// some layer producers concatenate members.
pub fn decompress<'a, R: Read + 'a>(reader: R) -> Result<Box<dyn Read + 'a>, ArchiveError> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let kind = detect(&mut buffered).map_err(ArchiveError::Stream)?;
    Ok(match kind {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(buffered).map_err(ArchiveError::Stream)?,
        ),
        Compression::None => Box::new(buffered),
    })
}

pub fn detect<R: BufRead>(reader: &mut R) -> io::Result<Compression> {
    let head = reader.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    })
}

/// Fails the stream once more than `limit` bytes came through (decompression bombs).
pub struct LimitedReader<R> {
    inner: R,
    remaining: u64,
    limit: u64,
}

impl<R> LimitedReader<R> {
    pub fn new(inner: R, limit: u64) -> Self {
        LimitedReader {
            inner,
            remaining: limit,
            limit,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("layer expands beyond {0} bytes")]
pub struct TooLarge(pub u64);

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.remaining {
            return Err(io::Error::other(TooLarge(self.limit)));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}
