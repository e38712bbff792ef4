//! A blob download as a `Read` stream that verifies itself and survives broken connections.
//!
//! Every byte is counted and hashed on the way through. When the connection drops, ends early
//! or stalls (nothing for the stall timeout, or less than [`STALL_BYTES`] in it), the stream
//! re-requests the rest with `Range: bytes=N-`; a server that ignores Range answers 200 and the
//! first N bytes are skipped. The requests and resumes of one blob share one budget of attempts,
//! which a connection that brought at least [`STALL_BYTES`] before it broke renews (the budget
//! is for a download that stopped making progress), and each wait before the next is reported (Docker's `Retrying in N seconds`). More bytes than
//! the descriptor's size, or a final digest that differs, fail the stream: the caller never
//! names unverified content.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{
    Registry, RegistryError, Retries, RetryReport, STALL_BYTES, STALL_TIMEOUT_ENV, is_timeout, show,
};
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
    /// The offset the open body started at: one that brought `STALL_BYTES` before it broke
    /// resets the attempts.
    opened_at: u64,
    /// Since when, and from which offset, the open body has to bring `STALL_BYTES`.
    progress_mark: (Instant, u64),
    retries: Retries<'a>,
    slot: ErrorSlot,
    progress: &'a (dyn Fn(u64) + Sync),
    verified: bool,
    /// Once failed, every later read fails the same way (no second request, no new verdict).
    failed: Option<String>,
}

/// Why an open body was given up.
enum Interrupted {
    /// The connection failed or ended early: what the read said.
    Broken(Option<io::Error>),
    /// Nothing came for the stall timeout.
    Silent,
    /// Less than `STALL_BYTES` came in the stall timeout.
    Trickling,
}

impl<'a> BlobReader<'a> {
    /// `progress` hears the byte count after each read; `retrying` the seconds left before each
    /// new attempt.
    pub fn new(
        registry: &'a Registry,
        repository_path: &str,
        digest: &Digest,
        size: u64,
        progress: &'a (dyn Fn(u64) + Sync),
        retrying: RetryReport<'a>,
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
            progress_mark: (Instant::now(), 0),
            opened_at: 0,
            retries: Retries::stream(retrying),
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

    fn url(&self) -> String {
        format!("{}{}", self.registry.base(), self.path)
    }

    /// Requests the blob from the current offset. `Err(Ok(e))`: the request failed for good
    /// (its attempts are spent, or the registry refused); `Err(Err(i))`: the answer broke while
    /// skipping to the offset, which may be retried.
    fn open(&mut self) -> Result<(), Result<RegistryError, Interrupted>> {
        let headers = if self.offset > 0 {
            vec![("Range", format!("bytes={}-", self.offset))]
        } else {
            Vec::new()
        };
        let response = self
            .registry
            .request("GET", &self.path, &self.scope, &headers, &mut self.retries)
            .map_err(Ok)?;
        let mut body = response.body;
        if self.offset > 0 && response.status != 206 {
            // The server ignored Range: skip what we already have.
            match io::copy(&mut (&mut body).take(self.offset), &mut io::sink()) {
                Ok(skipped) if skipped == self.offset => {}
                Ok(_) => return Err(Err(Interrupted::Broken(None))),
                Err(e) if is_timeout(&e) => return Err(Err(Interrupted::Silent)),
                Err(e) => return Err(Err(Interrupted::Broken(Some(e)))),
            }
        }
        self.body = Some(body);
        self.opened_at = self.offset;
        self.progress_mark = (Instant::now(), self.offset);
        Ok(())
    }

    /// Whether the open body has brought less than `STALL_BYTES` for the stall timeout.
    fn trickling(&self) -> bool {
        let (since, from) = self.progress_mark;
        self.offset - from < STALL_BYTES
            && since.elapsed() >= self.registry.timeouts().stall
            && self.offset < self.size
    }

    /// Gives up the open body; waits before the next attempt, or fails the stream when no
    /// attempt is left.
    fn interrupted(&mut self, why: Interrupted) -> io::Result<()> {
        self.body = None;
        if self.offset - self.opened_at >= STALL_BYTES {
            self.retries.progressed();
        }
        if let Some(delay) = self.retries.next_delay(None) {
            self.retries.wait(delay);
            return Ok(());
        }
        let stall = show(self.registry.timeouts().stall);
        let message = match why {
            Interrupted::Broken(Some(e)) => e.to_string(),
            Interrupted::Broken(None) => "unexpected EOF".to_string(),
            Interrupted::Silent => format!("stalled: no data for {stall} ({STALL_TIMEOUT_ENV})"),
            Interrupted::Trickling => {
                format!("stalled: less than {STALL_BYTES} bytes in {stall} ({STALL_TIMEOUT_ENV})")
            }
        };
        let url = self.url();
        Err(self.fail(RegistryError::Transport {
            url,
            message: format!("{message} after {} of {} bytes", self.offset, self.size),
        }))
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
            if self.body.is_none() {
                match self.open() {
                    Ok(()) => {}
                    Err(Ok(e)) => return Err(self.fail(e)),
                    Err(Err(why)) => {
                        self.interrupted(why)?;
                        continue;
                    }
                }
            }
            if self.trickling() {
                self.interrupted(Interrupted::Trickling)?;
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
                    if self.offset - self.progress_mark.1 >= STALL_BYTES {
                        self.progress_mark = (Instant::now(), self.offset);
                    }
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
                // Nothing for the stall timeout (the socket's read timeout).
                Err(e) if is_timeout(&e) => self.interrupted(Interrupted::Silent)?,
                // Ended early, or the connection broke: resume from where we are.
                Ok(_) => self.interrupted(Interrupted::Broken(None))?,
                Err(e) => self.interrupted(Interrupted::Broken(Some(e)))?,
            }
        }
    }
}
