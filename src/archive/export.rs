//! `export`: a tar of a container's whole filesystem as the container sees it, without its
//! volumes and kernel filesystems, the way `docker export` writes it: the image layers, Docker's
//! init layer (`/.dockerenv`, `/dev/console`, `/etc/hosts`, … as empty stubs) and the
//! container's own changes.
//!
//! The merged view comes from a read-only overlay (lowerdir = upper:layers…, no upperdir)
//! mounted in a private mount namespace of this process, so nothing is left mounted on the host
//! whatever happens to the process. A running container is read through a detached clone of its
//! own root mount instead ([`export_running`]): overlayfs calls a second mount over a live upper
//! directory undefined behaviour.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

use super::ArchiveError;
use super::diff::INIT_PATHS;
use super::tarwrite::{self, Decision, Synthetic, WalkOptions};

/// Docker's init layer, as `export` shows it.
pub fn init_layer() -> BTreeMap<PathBuf, Synthetic> {
    let mut out = BTreeMap::new();
    for path in INIT_PATHS {
        let entry = match *path {
            "/etc/mtab" => Synthetic::Symlink {
                target: "/proc/mounts".into(),
            },
            "/dev" | "/dev/pts" | "/dev/shm" | "/proc" | "/sys" => Synthetic::Dir { mode: 0o755 },
            _ => Synthetic::File { mode: 0o755 },
        };
        out.insert(PathBuf::from(path), entry);
    }
    out
}

/// A mounted read-only overlay; unmounted on drop.
struct Merged {
    target: PathBuf,
}

impl Drop for Merged {
    fn drop(&mut self) {
        let _ = umount2(&self.target, MntFlags::MNT_DETACH);
    }
}

/// Writes the filesystem of a running container to `out`, read through its own root mount:
/// `pid`'s mount namespace is entered just long enough to clone that mount (without the
/// mounts on top of it: /proc, /dev, volumes, …) with `open_tree(OPEN_TREE_CLONE)`. Returns
/// `Ok(None)` with `out` untouched when that is not possible, so the caller can fall back to
/// [`export`].
pub fn export_running<W: Write>(
    pid: i32,
    created: u64,
    out: W,
) -> Result<Result<W, W>, ArchiveError> {
    let Some(tree) = clone_root_of(pid) else {
        return Ok(Err(out));
    };
    let root = PathBuf::from(format!("/proc/self/fd/{}", tree.as_raw_fd()));
    let include = |_: &Path, _: &std::fs::Metadata| Decision::Include;
    let options = WalkOptions {
        layer: false,
        filter: &include,
        synthetic: init_layer(),
        synthetic_mtime: created,
    };
    tarwrite::write_tree(&root, out, &options).map(Ok)
}

/// A detached copy of the root mount of `pid`'s mount namespace.
fn clone_root_of(pid: i32) -> Option<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let ours = File::open("/proc/self/ns/mnt").ok()?;
    let theirs = File::open(format!("/proc/{pid}/ns/mnt")).ok()?;
    // setns resets the working directory: keep ours to come back to.
    let cwd = File::open(".").ok()?;
    setns(&theirs, CloneFlags::CLONE_NEWNS).ok()?;
    let tree = crate::sys::syscall::open_tree(
        libc::AT_FDCWD,
        c"/",
        OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
    );
    let back = setns(&ours, CloneFlags::CLONE_NEWNS);
    // SAFETY: fchdir on a directory descriptor we own.
    let restored = unsafe { libc::fchdir(cwd.as_raw_fd()) } == 0;
    if !restored {
        return None;
    }
    let tree = tree.ok()?;
    // Not back in our own namespace: paths would resolve in the container's. Give up.
    back.ok()?;
    Some(tree)
}

/// Writes the filesystem of a container (`upper` over `lowers`, topmost first) to `out`.
/// `scratch` is an empty directory this function may use (mountpoint, short layer names).
pub fn export<W: Write>(
    upper: &Path,
    lowers: &[PathBuf],
    scratch: &Path,
    created: u64,
    out: W,
) -> Result<W, ArchiveError> {
    let merged = mount_merged(upper, lowers, scratch)?;
    let include = |_: &Path, _: &std::fs::Metadata| Decision::Include;
    let options = WalkOptions {
        layer: false,
        filter: &include,
        synthetic: init_layer(),
        synthetic_mtime: created,
    };
    let result = tarwrite::write_tree(&merged.target, out, &options);
    drop(merged);
    result
}

fn mount_merged(upper: &Path, lowers: &[PathBuf], scratch: &Path) -> Result<Merged, ArchiveError> {
    let sys_err = |what: &str, e: nix::Error| {
        ArchiveError::io(scratch, std::io::Error::other(format!("{what}: {e}")))
    };
    // A mount namespace of our own: the overlay vanishes with this process.
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| sys_err("unshare(CLONE_NEWNS)", e))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| sys_err("making / private", e))?;
    // Short relative names keep the mount options under a page whatever the layer count.
    let mut names = Vec::new();
    for (i, dir) in std::iter::once(upper)
        .chain(lowers.iter().map(PathBuf::as_path))
        .enumerate()
    {
        let link = scratch.join(format!("l{i}"));
        symlink(dir, &link).map_err(|e| ArchiveError::io(&link, e))?;
        names.push(format!("l{i}"));
    }
    let target = scratch.join("m");
    std::fs::create_dir(&target).map_err(|e| ArchiveError::io(&target, e))?;
    let previous = std::env::current_dir().ok();
    std::env::set_current_dir(scratch).map_err(|e| ArchiveError::io(scratch, e))?;
    let data = if names.len() == 1 {
        // overlay needs two lower layers without an upper; an empty one does.
        let empty = scratch.join("empty");
        std::fs::create_dir(&empty).map_err(|e| ArchiveError::io(&empty, e))?;
        format!("lowerdir={}:empty", names[0])
    } else {
        format!("lowerdir={}", names.join(":"))
    };
    let mounted = mount(
        Some("overlay"),
        "m",
        Some("overlay"),
        MsFlags::MS_RDONLY,
        Some(data.as_str()),
    );
    if let Some(previous) = previous {
        let _ = std::env::set_current_dir(previous);
    }
    mounted.map_err(|e| sys_err("mounting the container's filesystem", e))?;
    Ok(Merged { target })
}
