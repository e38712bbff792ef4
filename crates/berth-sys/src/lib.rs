//! Small host-OS primitives every store in berth relies on: atomic file replacement, advisory
//! locks, and process identity (pid + start time) so a recorded pid is never confused with a
//! recycled one. Every raw system call lives in [`syscall`].

pub mod syscall;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicU64, Ordering};

/// The type of setrlimit's resource argument: glibc gives it its own name, musl an int.
#[cfg(target_env = "gnu")]
pub type RlimitResource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
pub type RlimitResource = libc::c_int;

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
    let start = own_start_time().unwrap_or(0);
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

/// /proc/`who`/stat from field 3 (the state) on: the command name before it may contain
/// spaces and parentheses, so the fields resume after the last ')'.
fn stat_from_state(who: &str) -> Option<String> {
    // The kernel formats the whole line on every read() of this file, so read it in one call
    // (a stat line is a few hundred bytes) rather than in the growing chunks of
    // read_to_string.
    let mut file = File::open(format!("/proc/{who}/stat")).ok()?;
    let mut buf = vec![0u8; 1024];
    let mut len = 0;
    loop {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if len == buf.len() {
                    buf.resize(buf.len() * 2, 0);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    buf.truncate(len);
    let stat = String::from_utf8(buf).ok()?;
    let state_at = stat.rfind(')')? + 2;
    Some(stat[state_at.min(stat.len())..].to_string())
}

/// The start time (clock ticks since boot, field 22 of /proc/PID/stat) of a live process.
/// A process that has died but not been reaped yet (state Z or X) is not live: some inits reap
/// late, and a dead pid must not pass for a running container.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = stat_from_state(&pid.to_string())?;
    let mut fields = stat.split(' ');
    if matches!(fields.next(), Some("Z" | "X")) {
        return None;
    }
    fields.nth(22 - 4)?.parse().ok()
}

/// The start time of `pid` whether it runs or is a zombie: for a parent about to record its
/// own child, which cannot be reaped (so its pid not reused) before the parent waits.
pub fn child_start_time(pid: i32) -> Option<u64> {
    let stat = stat_from_state(&pid.to_string())?;
    stat.split(' ').nth(22 - 3)?.parse().ok()
}

/// This process's start time, read once per process: a forked child (the monitor) has a pid
/// of its own, so the cached value is kept with the pid it belongs to.
pub fn own_start_time() -> Option<u64> {
    use std::sync::Mutex;
    static CACHED: Mutex<Option<(u32, u64)>> = Mutex::new(None);
    let pid = std::process::id();
    let mut cached = CACHED.lock().unwrap_or_else(|e| e.into_inner());
    match *cached {
        Some((p, start)) if p == pid => Some(start),
        _ => {
            let start = process_start_time(pid as i32)?;
            *cached = Some((pid, start));
            Some(start)
        }
    }
}

/// The kernel's USER_HZ, the unit of /proc's and cgroup v1's tick counts (100 where it
/// cannot be asked).
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf only reads a constant of the C library.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// Where this process's argument strings lie in its memory (/proc/self/stat fields 48 and
/// 49): what `ps` shows as its command line.
pub fn own_argv_region() -> Option<(usize, usize)> {
    let stat = stat_from_state("self")?;
    let mut fields = stat.split(' ').skip(48 - 3);
    let start: usize = fields.next()?.parse().ok()?;
    let end: usize = fields.next()?.parse().ok()?;
    (end > start).then_some((start, end))
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

    /// Locks a directory itself (flock works on a directory's descriptor): no lock file
    /// to create, which costs an inode allocation on every container start.
    pub fn exclusive_dir(path: &Path) -> io::Result<FileLock> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(path)?;
        Self::flock(file, path, libc::LOCK_EX)
    }

    /// [`FileLock::exclusive_dir`] without waiting: `None` while another holder has it
    /// (this process included, through another descriptor).
    pub fn try_exclusive_dir(path: &Path) -> io::Result<Option<FileLock>> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(path)?;
        match Self::flock(file, path, libc::LOCK_EX | libc::LOCK_NB) {
            Ok(lock) => Ok(Some(lock)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn take(path: &Path, how: libc::c_int) -> io::Result<FileLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        Self::flock(file, path, how)
    }

    fn flock(file: File, path: &Path, how: libc::c_int) -> io::Result<FileLock> {
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

/// Reads a file the kernel generates (procfs, sysfs), whose size `stat` does not tell, in
/// one read() when it fits 16 KiB: `fs::read_to_string` starts with 32 bytes and doubles,
/// which is eight system calls for a 2 KiB mountinfo.
pub fn read_kernel_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(len * 2, 0);
        }
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// A directory held open, whose files are read by paths relative to it (openat): reading
/// `<id>/state.json` and `<id>/container.json` for each of a thousand containers walks two
/// path components per file instead of the store's whole path.
pub struct Dir {
    fd: std::os::fd::OwnedFd,
}

impl Dir {
    pub fn open(path: &Path) -> io::Result<Dir> {
        let path = path_cstring(path)?;
        let fd = syscall::openat(libc::AT_FDCWD, &path, libc::O_RDONLY | libc::O_DIRECTORY)?;
        Ok(Dir { fd })
    }

    /// The whole of the regular file at `name` (relative to the directory), read into `buf`
    /// (whose earlier contents go): open, read, close, and nothing else: no `stat` for a
    /// size hint as `fs::read` makes, and no read that finds the end, since a read of a
    /// regular file returns less than asked only at its end (POSIX). Not for files the
    /// kernel generates (procfs), nor for a file that another process appends to. `buf` is
    /// meant to be reused from file to file.
    pub fn read<'b>(&self, name: &Path, buf: &'b mut Vec<u8>) -> io::Result<&'b [u8]> {
        let name = path_cstring(name)?;
        let file = File::from(syscall::openat(self.fd.as_raw_fd(), &name, libc::O_RDONLY)?);
        if buf.len() < 4096 {
            buf.resize(4096, 0);
        }
        let mut len = 0;
        loop {
            if len == buf.len() {
                buf.resize(len * 2, 0);
            }
            let room = buf.len() - len;
            match (&file).read(&mut buf[len..]) {
                Ok(n) => {
                    len += n;
                    if n < room {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(&buf[..len])
    }
}

fn path_cstring(path: &Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// 32 random bytes as hex: container and volume IDs.
pub fn random_hex_id() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex::encode(bytes))
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

/// The seconds since the epoch `t` in the host's local time zone (what `ps` shows).
pub fn local_time(t: i64) -> libc::tm {
    // SAFETY: an all-zero tm is a valid value (its zone pointer is null until filled in).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // `t` is passed as an i64, not cast to libc::time_t: the libc crate marks musl's time_t
    // deprecated (its width is to change), and on the 64-bit targets berth builds for it is i64.
    // SAFETY: localtime_r writes into the tm we own and reads only `t` and the zone data.
    unsafe { libc::localtime_r(&t, &mut tm) };
    tm
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
        let (start, end) = own_argv_region().unwrap();
        let first = std::env::args().next().unwrap();
        // SAFETY: reading our own argument strings, which live until exit.
        let argv0 = unsafe { std::ffi::CStr::from_ptr(start as *const libc::c_char) };
        assert_eq!(argv0.to_str().unwrap(), first);
        assert!(end - start > first.len());
    }

    #[test]
    fn a_dir_reads_whole_files_by_relative_path() {
        let root = std::env::temp_dir().join(temp_name("dir-read"));
        fs::create_dir_all(root.join("sub")).unwrap();
        // 8192: the size of the buffer after one doubling, so the read that fills it is
        // not the last.
        let big: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
        fs::write(root.join("sub/big"), &big).unwrap();
        fs::write(root.join("small"), b"{}").unwrap();
        let dir = Dir::open(&root).unwrap();
        let mut buf = Vec::new();
        assert_eq!(dir.read(Path::new("sub/big"), &mut buf).unwrap(), &big[..]);
        // The buffer is reused: what the last file left in it is not part of the next.
        assert_eq!(dir.read(Path::new("small"), &mut buf).unwrap(), b"{}");
        let odd: Vec<u8> = (0..20_000u32).map(|i| (i % 13) as u8).collect();
        fs::write(root.join("sub/odd"), &odd).unwrap();
        assert_eq!(dir.read(Path::new("sub/odd"), &mut buf).unwrap(), &odd[..]);
        let missing = dir.read(Path::new("sub/none"), &mut buf).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        fs::remove_dir_all(&root).unwrap();
    }
}
