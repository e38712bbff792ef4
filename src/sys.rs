//! Small host-OS primitives every store in berth relies on: atomic file replacement, advisory
//! locks, and process identity (pid + start time) so a recorded pid is never confused with a
//! recycled one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` so that readers see either the old file or the whole new one, and a
/// crash leaves at worst a stray temp file next to it (named `.tmp-*`, swept by the stores).
/// Durable: the data and the rename are fsynced, for the store's indexes and blobs.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    replace(path, bytes, mode, true)
}

/// Like [`write_atomic`] but without fsync: readers and a crash of this process still see the
/// old or the new file whole; only a power loss can lose the update. For per-container files
/// on the hot path of `run`, where an fsync would cost more than the whole container start.
pub fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    replace(path, bytes, mode, false)
}

fn replace(path: &Path, bytes: &[u8], mode: u32, durable: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(temp_name(
        path.file_name().and_then(|n| n.to_str()).unwrap_or("f"),
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if durable {
            sync_dir(dir)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A name for a temporary sibling that identifies its creator, so sweepers can tell abandoned
/// temp files (creator dead) from ones still being written.
pub fn temp_name(base: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let pid = std::process::id();
    let start = process_start_time(pid as i32).unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(".tmp-{pid}-{start}-{n}-{base}")
}

/// True when a name made by [`temp_name`] belongs to a process that no longer exists.
pub fn temp_is_abandoned(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(".tmp-") else {
        return false;
    };
    let mut parts = rest.splitn(3, '-');
    let (Some(pid), Some(start)) = (parts.next(), parts.next()) else {
        return true;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<i32>(), start.parse::<u64>()) else {
        return true;
    };
    process_start_time(pid) != Some(start)
}

/// Removes abandoned temp entries (files or directories) directly inside `dir`.
pub fn sweep_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if let Some(name) = name.to_str()
            && temp_is_abandoned(name)
        {
            let path = entry.path();
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                let _ = remove_tree(&path);
            } else {
                let _ = fs::remove_file(&path);
            }
        }
    }
}

/// `rm -rf` that copes with read-only directories left by layer contents.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The start time (clock ticks since boot, field 22 of /proc/PID/stat) of a live process.
/// A process that has died but not been reaped yet (state Z or X) is not live: some inits reap
/// late, and a dead pid must not pass for a running container.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses; fields resume after the last ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    let mut fields = after.split(' ');
    if matches!(fields.next(), Some("Z" | "X")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// An exclusive `flock` held until dropped. Locks die with their process, so a `kill -9`
/// never leaves a store locked.
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    pub fn exclusive(path: &Path) -> io::Result<FileLock> {
        Self::take(path, libc::LOCK_EX)
    }

    pub fn shared(path: &Path) -> io::Result<FileLock> {
        Self::take(path, libc::LOCK_SH)
    }

    fn take(path: &Path, how: libc::c_int) -> io::Result<FileLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        loop {
            // SAFETY: flock on a descriptor we own.
            let rc = unsafe { libc::flock(file.as_raw_fd(), how) };
            if rc == 0 {
                break;
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
        Ok(FileLock {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self) -> &File {
        &self.file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_know_their_owner() {
        let name = temp_name("x");
        assert!(!temp_is_abandoned(&name));
        assert!(temp_is_abandoned(".tmp-999999999-1-0-x"));
        assert!(!temp_is_abandoned("regular"));
        assert!(process_start_time(std::process::id() as i32).is_some());
    }
}

/// `2026-11-23T05:35:17.123456789Z`: Docker's timestamp form (UTC, nanoseconds).
pub fn rfc3339(time: std::time::SystemTime) -> String {
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_nanos()
    )
}

pub fn now_rfc3339() -> String {
    rfc3339(std::time::SystemTime::now())
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` into seconds and nanoseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let mut text = frac[..digits].to_string();
        text.truncate(9);
        while text.len() < 9 {
            text.push('0');
        }
        nanos = text.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    let days = days_from_civil(y, mo, d);
    Some((days * 86_400 + h * 3600 + mi * 60 + se - offset, nanos))
}

// Howard Hinnant's civil calendar algorithms.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// 32 random bytes as hex: container and volume IDs.
pub fn random_hex_id() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod time_tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 5);
        let s = rfc3339(t);
        assert_eq!(s, "2023-11-14T22:13:20.000000005Z");
        assert_eq!(parse_rfc3339(&s), Some((1_700_000_000, 5)));
        assert_eq!(
            parse_rfc3339("2001-01-01T00:00:00Z"),
            Some((978_307_200, 0))
        );
        assert_eq!(
            parse_rfc3339("2001-01-01T01:00:00+01:00"),
            Some((978_307_200, 0))
        );
    }
}

/// With `BERTH_TRACE=FILE` set, appends `pid step microseconds` lines to FILE: where the time
/// of a command goes, across the CLI, the monitor and the container setup.
pub fn trace(step: &str) {
    use std::sync::OnceLock;
    static TARGET: OnceLock<Option<PathBuf>> = OnceLock::new();
    let Some(path) = TARGET.get_or_init(|| std::env::var_os("BERTH_TRACE").map(PathBuf::from))
    else {
        return;
    };
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{} {step} {micros}", std::process::id());
    }
}
