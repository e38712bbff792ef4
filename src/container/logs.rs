//! Reading a container's log: the monitor's json-lines file (Docker's json-file format), with
//! Docker's `--tail`, `--since`, `--until`, `-t` and `-f`.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::time::Duration;

use serde::Deserialize;

use super::ContainerError;
use super::lifecycle::current_state;
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

/// Writes the log to `out`/`err` (stdout and stderr lines kept apart).
pub fn write_logs(
    dir: &ContainerDir,
    options: &LogOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), ContainerError> {
    let path = dir.log_path();
    let file = match File::open(&path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => return Err(ContainerError::Io { path, source }),
    };
    let mut reader = file.map(BufReader::new);
    let mut lines: Vec<String> = Vec::new();
    if let Some(r) = reader.as_mut() {
        for line in (&mut *r).lines() {
            let line = line.map_err(|source| ContainerError::Io {
                path: path.clone(),
                source,
            })?;
            lines.push(line);
        }
    }
    let skip = options
        .tail
        .map(|n| lines.len().saturating_sub(n))
        .unwrap_or(0);
    for line in &lines[skip..] {
        emit(line, options, out, err);
    }
    if !options.follow {
        return Ok(());
    }
    // Follow: new lines until the container is no longer running and nothing more arrives.
    loop {
        let running = current_state(dir)?.status.is_running();
        let mut got = false;
        if reader.is_none() {
            reader = File::open(&path).ok().map(BufReader::new);
        }
        if let Some(r) = reader.as_mut() {
            let mut line = String::new();
            loop {
                line.clear();
                let pos = r.stream_position().unwrap_or(0);
                match r.read_line(&mut line) {
                    Ok(0) => break,
                    Ok(_) if !line.ends_with('\n') => {
                        // A line still being written: read it again whole next time.
                        let _ = r.seek(SeekFrom::Start(pos));
                        break;
                    }
                    Ok(_) => {
                        got = true;
                        emit(line.trim_end_matches('\n'), options, out, err);
                    }
                    Err(_) => break,
                }
            }
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

fn emit(line: &str, options: &LogOptions, out: &mut dyn Write, err: &mut dyn Write) {
    let Ok(entry) = serde_json::from_str::<Entry>(line) else {
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
