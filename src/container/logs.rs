//! Reading a container's log: the monitor's json-lines files (Docker's json-file format and
//! rotation, `log_file.rs`), with Docker's `--tail`, `--since`, `--until`, `-t` and `-f`.

use std::io::Write;
use std::time::Duration;

use serde::Deserialize;

use super::ContainerError;
use super::lifecycle::current_state;
use super::log_file::{self, Follower, Skip};
use super::store::ContainerDir;
use crate::time::{self, Timestamp};

#[derive(Debug, Default, Clone)]
pub struct LogOptions {
    pub follow: bool,
    pub timestamps: bool,
    /// Last N lines only.
    pub tail: Option<usize>,
    /// Seconds since the epoch (inclusive / exclusive bounds).
    pub since: Option<i64>,
    pub until: Option<i64>,
}

#[derive(Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

/// Writes the log to `out`/`err` (stdout and stderr lines kept apart), reading its files
/// oldest first; `--tail` starts from the end of the newest ones, so neither time nor memory
/// grows with the log's size. A container whose driver keeps no log (`none`) has none to read.
pub fn write_logs(
    dir: &ContainerDir,
    options: &LogOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), ContainerError> {
    let log_config = dir.record()?.log_config;
    if !log_config.readable() {
        return Err(ContainerError::LogsUnsupported);
    }
    let max_files = log_config.rotation().map(|r| r.max_files).unwrap_or(1);
    let base = dir.readable_log_path();
    let io_error = |source| ContainerError::Io {
        path: base.clone(),
        source,
    };
    let mut follower = None;
    let mut read_some = false;
    if let Some(mut set) = log_file::open_new(&base, max_files).map_err(io_error)? {
        let start = match options.tail {
            Some(n) => log_file::tail_start(&mut set, n as u64).map_err(io_error)?,
            None => (0, Skip::Bytes(0)),
        };
        read_some = true;
        follower = log_file::read_forward(set, start, &mut |line| emit(line, options, out, err))
            .map_err(io_error)?;
    }
    if !options.follow {
        return Ok(());
    }
    // Follow: new lines until the container is no longer running and nothing more arrives.
    // A log that had no file yet is read from its oldest file once one appears.
    loop {
        let running = current_state(dir)?.status.is_running();
        let mut got = false;
        let mut emit_line = |line: &[u8]| {
            got = true;
            emit(line, options, out, err)
        };
        if follower.is_none() {
            if read_some {
                // Everything read so far came from rotated files: the current file from its
                // start.
                follower = Follower::current(&base).map_err(io_error)?;
            } else if let Some(set) = log_file::open_new(&base, max_files).map_err(io_error)? {
                read_some = true;
                follower = log_file::read_forward(set, (0, Skip::Bytes(0)), &mut emit_line)
                    .map_err(io_error)?;
            }
        }
        if let Some(f) = follower.as_mut() {
            f.drain(&base, max_files, &mut emit_line)
                .map_err(io_error)?;
        }
        let _ = out.flush();
        let _ = err.flush();
        if !running && !got {
            return Ok(());
        }
        if !got {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

pub(crate) fn emit(line: &[u8], options: &LogOptions, out: &mut dyn Write, err: &mut dyn Write) {
    let Ok(entry) = serde_json::from_slice::<Entry>(line) else {
        return;
    };
    let secs = Timestamp::parse_rfc3339(&entry.time)
        .map(|t| t.secs)
        .unwrap_or(0);
    if options.since.is_some_and(|since| secs < since) {
        return;
    }
    if options.until.is_some_and(|until| secs >= until) {
        return;
    }
    let target: &mut dyn Write = if entry.stream == "stderr" { err } else { out };
    if options.timestamps {
        let _ = write!(target, "{} ", entry.time);
    }
    let _ = target.write_all(entry.log.as_bytes());
}

/// Docker's `--since`/`--until` values (RFC 3339, unix seconds, or a duration back from now
/// such as `10m`), as seconds since the epoch.
pub fn parse_time_bound(s: &str) -> Option<i64> {
    time::parse_until(s, Timestamp::now()).map(|t| t.secs)
}
