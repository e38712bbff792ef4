//! Notification of a container's out-of-memory events, as runc's `events` gets them: on v1
//! an eventfd registered on `memory.oom_control` through `cgroup.event_control` (signalled
//! at each OOM, and once more when the cgroup is removed); on v2 inotify on `memory.events`
//! (whose `oom`/`oom_kill` counters grow) and `cgroup.events` (`populated 0`: the cgroup's
//! processes are all gone).

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::read_key;
use crate::RuntimeError;

/// What a wake-up of the watch's descriptor meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OomNews {
    /// This many new OOM events.
    Oom(u64),
    /// The cgroup is gone (v1) or empty (v2): no more events will come.
    Gone,
    /// Nothing that concerns OOM (another counter of the file changed).
    Nothing,
}

pub enum OomWatch {
    V1 {
        eventfd: OwnedFd,
        /// Held open: the registration lasts as long as the file it names.
        _control: File,
        dir: PathBuf,
    },
    V2 {
        inotify: OwnedFd,
        events_wd: i32,
        dir: PathBuf,
        seen: u64,
    },
}

fn cpath(p: &Path) -> Result<CString, RuntimeError> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| RuntimeError::InvalidSpec(format!("path {} holds a NUL", p.display())))
}

fn cg_err(op: &'static str, path: &Path, source: io::Error) -> RuntimeError {
    RuntimeError::Cgroup {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// v2 counts OOM events (`oom`) and the kills they led to (`oom_kill`); the first covers
/// a cgroup whose OOM killer found nothing to kill.
fn v2_count(dir: &Path) -> u64 {
    let file = dir.join("memory.events");
    read_key(&file, "oom").unwrap_or(0)
}

impl OomWatch {
    /// `dir`: the container's directory in the memory hierarchy.
    pub(crate) fn v1(dir: &Path) -> Result<Self, RuntimeError> {
        let control_path = dir.join("memory.oom_control");
        let control = File::open(&control_path).map_err(|e| cg_err("open", &control_path, e))?;
        let eventfd =
            berth_sys::syscall::eventfd().map_err(|e| cg_err("eventfd for", &control_path, e))?;
        let register = dir.join("cgroup.event_control");
        let line = format!("{} {}", eventfd.as_raw_fd(), control.as_raw_fd());
        std::fs::write(&register, line).map_err(|e| cg_err("write", &register, e))?;
        Ok(OomWatch::V1 {
            eventfd,
            _control: control,
            dir: dir.to_path_buf(),
        })
    }

    /// `dir`: the container's directory in the unified hierarchy.
    pub(crate) fn v2(dir: &Path) -> Result<Self, RuntimeError> {
        let inotify =
            berth_sys::syscall::inotify_init().map_err(|e| cg_err("inotify_init for", dir, e))?;
        let watch = |file: &str| {
            let p = dir.join(file);
            berth_sys::syscall::inotify_add_watch(inotify.as_raw_fd(), &cpath(&p)?, libc::IN_MODIFY)
                .map_err(|e| cg_err("inotify_add_watch", &p, e))
        };
        let events_wd = watch("memory.events")?;
        watch("cgroup.events")?;
        Ok(OomWatch::V2 {
            inotify,
            events_wd,
            dir: dir.to_path_buf(),
            seen: v2_count(dir),
        })
    }

    /// What to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        match self {
            OomWatch::V1 { eventfd, .. } => eventfd.as_fd(),
            OomWatch::V2 { inotify, .. } => inotify.as_fd(),
        }
    }

    /// Reads what woke the descriptor (blocks until something does).
    pub fn read(&mut self) -> Result<OomNews, RuntimeError> {
        match self {
            OomWatch::V1 { eventfd, dir, .. } => {
                let mut count = [0u8; 8];
                File::from(eventfd.try_clone().map_err(|e| cg_err("dup", dir, e))?)
                    .read_exact(&mut count)
                    .map_err(|e| cg_err("read eventfd of", dir, e))?;
                // The kernel signals the eventfd once more as it removes the cgroup.
                if !dir.join("cgroup.event_control").exists() {
                    return Ok(OomNews::Gone);
                }
                Ok(OomNews::Oom(u64::from_ne_bytes(count)))
            }
            OomWatch::V2 {
                inotify,
                events_wd,
                dir,
                seen,
            } => {
                let mut buf = [0u8; 4096];
                let n = File::from(inotify.try_clone().map_err(|e| cg_err("dup", dir, e))?)
                    .read(&mut buf)
                    .map_err(|e| cg_err("read inotify of", dir, e))?;
                // struct inotify_event: wd (i32), mask, cookie, len (u32), then the name.
                let (mut at, mut events, mut cgroup) = (0, false, false);
                while at + 16 <= n {
                    let wd = i32::from_ne_bytes(buf[at..at + 4].try_into().unwrap_or_default());
                    let len =
                        u32::from_ne_bytes(buf[at + 12..at + 16].try_into().unwrap_or_default());
                    if wd == *events_wd {
                        events = true;
                    } else {
                        cgroup = true;
                    }
                    at += 16 + len as usize;
                }
                if events {
                    let now = v2_count(dir);
                    if now > *seen {
                        let new = now - *seen;
                        *seen = now;
                        return Ok(OomNews::Oom(new));
                    }
                }
                if cgroup && read_key(&dir.join("cgroup.events"), "populated").unwrap_or(0) == 0 {
                    return Ok(OomNews::Gone);
                }
                Ok(OomNews::Nothing)
            }
        }
    }
}
