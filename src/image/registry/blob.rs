//! A blob download as a `Read` stream that verifies itself and survives broken connections.
//!
//! Every byte is counted and hashed on the way through. When the connection drops (or ends
//! early), the stream re-requests the rest with `Range: bytes=N-`; a server that ignores Range
//! answers 200 and the first N bytes are skipped. More bytes than the descriptor's size, or a
//! final digest that differs, fail the stream: the caller never names unverified content.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use super::{MAX_TRIES, Registry, RegistryError, backoff};
use crate::image::digest::{Digest, Hasher};

/// Where a failing `BlobReader` leaves its typed error, since `Read` can only return `io::Error`
/// and decoders above it may rewrap that.
pub type ErrorSlot = Arc<Mutex<Option<RegistryError>>>;

pub struct BlobReader<'a> {
    registry: &'a Registry,
    path: String,
    scope: String,
    digest: Digest,
    size: u64,
    offset: u64,
    hasher: Hasher,
    body: Option<Box<dyn Read + Send + Sync>>,
    failures: u32,
    slot: ErrorSlot,
    progress: &'a (dyn Fn(u64) + Sync),
    verified: bool,
    /// Once failed, every later read fails the same way (no second request, no new verdict).
    failed: Option<String>,
}

impl<'a> BlobReader<'a> {
    pub fn new(
        registry: &'a Registry,
        repository_path: &str,
        digest: &Digest,
        size: u64,
        progress: &'a (dyn Fn(u64) + Sync),
    ) -> BlobReader<'a> {
        BlobReader {
            registry,
            path: format!("/v2/{repository_path}/blobs/{digest}"),
            scope: format!("repository:{repository_path}:pull"),
            digest: digest.clone(),
            size,
            offset: 0,
            hasher: Hasher::default(),
            body: None,
            failures: 0,
            slot: Arc::new(Mutex::new(None)),
            progress,
            verified: false,
            failed: None,
        }
    }

    pub fn error_slot(&self) -> ErrorSlot {
        self.slot.clone()
    }

    /// True once the whole blob has come through and matched its digest.
    pub fn verified(&self) -> bool {
        self.verified
    }

    fn fail(&mut self, error: RegistryError) -> io::Error {
        let message = error.to_string();
        *self.slot.lock().expect("error slot") = Some(error);
        self.failed = Some(message.clone());
        io::Error::other(message)
    }

    fn open(&mut self) -> Result<(), RegistryError> {
        let headers = if self.offset > 0 {
            vec![("Range", format!("bytes={}-", self.offset))]
        } else {
            Vec::new()
        };
        let response = self.registry.get(&self.path, &self.scope, &headers)?;
        let mut body = response.body;
        if self.offset > 0 && response.status != 206 {
            // The server ignored Range: skip what we already have.
            let skipped =
                io::copy(&mut (&mut body).take(self.offset), &mut io::sink()).map_err(|e| {
                    RegistryError::Transport {
                        url: response.url.clone(),
                        message: e.to_string(),
                    }
                })?;
            if skipped < self.offset {
                return Err(RegistryError::Transport {
                    url: response.url,
                    message: "connection closed while skipping to the resume offset".into(),
                });
            }
        }
        self.body = Some(body);
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        let actual = self.hasher.clone().digest();
        if actual != self.digest {
            return Err(self.fail(RegistryError::DigestMismatch {
                what: self.digest.to_string(),
                expected: self.digest.to_string(),
                actual: actual.to_string(),
            }));
        }
        self.verified = true;
        Ok(())
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(message) = &self.failed {
            return Err(io::Error::other(message.clone()));
        }
        if self.verified || buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.body.is_none()
                && let Err(e) = self.open()
            {
                let retryable = matches!(e, RegistryError::Transport { .. });
                self.failures += 1;
                if !retryable || self.failures >= MAX_TRIES {
                    return Err(self.fail(e));
                }
                std::thread::sleep(backoff(self.failures));
                continue;
            }
            let body = self.body.as_mut().expect("opened above");
            let result = body.read(buf);
            match result {
                // All bytes are here; a server that promised more (a wrong Content-Length)
                // ends with an error we need not resume from.
                Ok(0) | Err(_) if self.offset == self.size => {
                    self.finish()?;
                    return Ok(0);
                }
                Ok(n) if n > 0 && self.offset + n as u64 <= self.size => {
                    self.hasher.update(&buf[..n]);
                    self.offset += n as u64;
                    (self.progress)(self.offset);
                    return Ok(n);
                }
                Ok(n) if n > 0 => {
                    return Err(self.fail(RegistryError::SizeMismatch {
                        what: self.digest.to_string(),
                        expected: self.size,
                        actual: self.offset + n as u64,
                    }));
                }
                // Ended early, or the connection broke: resume from where we are.
                Ok(_) | Err(_) => {
                    self.body = None;
                    self.failures += 1;
                    if self.failures >= MAX_TRIES {
                        let message = match result {
                            Err(e) => e.to_string(),
                            Ok(_) => "unexpected EOF".to_string(),
                        };
                        return Err(self.fail(RegistryError::Transport {
                            url: format!("{}{}", self.registry.base(), self.path),
                            message: format!(
                                "{message} after {} of {} bytes",
                                self.offset, self.size
                            ),
                        }));
                    }
                    std::thread::sleep(backoff(self.failures));
                }
            }
        }
    }
}
