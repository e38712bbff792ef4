//! Safe unpacking of an image layer tar into an overlay-ready directory.
//!
//! Every path is resolved beneath the layer directory with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)`, and entries are created with `*at` calls relative to their parent's
//! descriptor, so no entry (`..`, absolute names, a symlink planted as a parent, a hardlink to an
//! outside file) can touch anything outside the layer. Whiteouts are converted to overlayfs form:
//! `.wh.NAME` becomes a 0/0 character device, `.wh..wh..opq` the `trusted.overlay.opaque=y`
//! xattr on its directory (wherever the marker sits in the tar).

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::ArchiveError;

/// Long names, link targets and pax records larger than this are rejected instead of buffered.
pub const MAX_HEADER_BYTES: u64 = 1 << 20;
/// Decompressed bytes one layer may expand to (a zip-bomb guard).
pub const MAX_LAYER_BYTES: u64 = 256 << 30;
/// Lowers (or raises) [`MAX_LAYER_BYTES`]: a number of bytes. The tests' decompression bombs
/// use it to meet the limit without expanding 256 GiB.
pub const MAX_LAYER_BYTES_ENV: &str = "BERTH_MAX_LAYER_BYTES";

/// The expansion limit of one layer: `BERTH_MAX_LAYER_BYTES` when set to a number, else
/// [`MAX_LAYER_BYTES`].
pub fn max_layer_bytes() -> u64 {
    std::env::var(MAX_LAYER_BYTES_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(MAX_LAYER_BYTES)
}

/// Parent directory descriptors kept open at once (far below the usual 1024-file limit).
const MAX_CACHED_PARENTS: usize = 64;

const OPAQUE_MARKER: &str = ".wh..wh..opq";
const WHITEOUT_PREFIX: &str = ".wh.";
const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";

#[derive(Debug, Default, Clone, Copy)]
pub struct UnpackStats {
    pub entries: u64,
    pub file_bytes: u64,
}

/// Unpacks the tar stream `reader` into the (existing, empty) directory `dest`.
pub fn unpack_layer<R: Read>(reader: R, dest: &Path) -> Result<UnpackStats, ArchiveError> {
    let root = open_dir(dest).map_err(|e| ArchiveError::io(dest, e))?;
    let mut unpacker = Unpacker {
        root,
        dest: dest.to_path_buf(),
        parents: HashMap::new(),
        dirs: Vec::new(),
        stats: UnpackStats::default(),
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| ArchiveError::Tar(e.to_string()))?
        .raw(true);
    let mut pending = PendingHeaders::default();
    for entry in entries {
        let mut entry = entry.map_err(|e| ArchiveError::Tar(e.to_string()))?;
        let kind = entry.header().entry_type();
        if kind.is_gnu_longname() {
            pending.path = Some(read_small(&mut entry)?);
            trim_nul(pending.path.as_mut());
            continue;
        }
        if kind.is_gnu_longlink() {
            pending.link = Some(read_small(&mut entry)?);
            trim_nul(pending.link.as_mut());
            continue;
        }
        if kind.is_pax_local_extensions() {
            let data = read_small(&mut entry)?;
            pending.pax = parse_pax(&data)?;
            continue;
        }
        if kind.is_pax_global_extensions() {
            read_small(&mut entry)?;
            continue;
        }
        let headers = std::mem::take(&mut pending);
        unpacker.entry(&mut entry, headers)?;
    }
    unpacker.finish()
}

#[derive(Default)]
struct PendingHeaders {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    pax: Vec<(String, Vec<u8>)>,
}

impl PendingHeaders {
    fn pax(&self, key: &str) -> Option<&[u8]> {
        self.pax
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    fn pax_number(&self, key: &str) -> Result<Option<u64>, ArchiveError> {
        match self.pax(key) {
            None => Ok(None),
            Some(v) => {
                let s = std::str::from_utf8(v).map_err(|_| bad_pax(key))?;
                // mtimes may carry a fraction; whole seconds are what we keep.
                let whole = s.split('.').next().unwrap_or("");
                whole.parse().map(Some).map_err(|_| bad_pax(key))
            }
        }
    }
}

fn bad_pax(key: &str) -> ArchiveError {
    ArchiveError::Tar(format!("invalid pax header {key}"))
}

fn read_small<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Vec<u8>, ArchiveError> {
    let size = entry
        .header()
        .entry_size()
        .map_err(|e| ArchiveError::Tar(e.to_string()))?;
    if size > MAX_HEADER_BYTES {
        return Err(ArchiveError::HeaderTooLarge(size));
    }
    let mut data = Vec::with_capacity(size as usize);
    entry
        .read_to_end(&mut data)
        .map_err(|e| ArchiveError::Tar(e.to_string()))?;
    Ok(data)
}

fn trim_nul(bytes: Option<&mut Vec<u8>>) {
    if let Some(bytes) = bytes {
        while bytes.last() == Some(&0) {
            bytes.pop();
        }
    }
}

/// Pax records: `"<len> <key>=<value>\n"`.
fn parse_pax(mut data: &[u8]) -> Result<Vec<(String, Vec<u8>)>, ArchiveError> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let space = data
            .iter()
            .position(|b| *b == b' ')
            .ok_or_else(|| ArchiveError::Tar("malformed pax record".into()))?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|len| *len > space + 1 && *len <= data.len())
            .ok_or_else(|| ArchiveError::Tar("malformed pax record".into()))?;
        let record = &data[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        let eq = record
            .iter()
            .position(|b| *b == b'=')
            .ok_or_else(|| ArchiveError::Tar("malformed pax record".into()))?;
        let key = String::from_utf8_lossy(&record[..eq]).into_owned();
        out.push((key, record[eq + 1..].to_vec()));
        data = &data[len..];
    }
    Ok(out)
}

/// A path inside the layer, checked: relative, no `..`, no empty or `.` components.
fn clean_path(raw: &[u8]) -> Result<Vec<&[u8]>, ArchiveError> {
    let shown = || String::from_utf8_lossy(raw).into_owned();
    if raw.first() == Some(&b'/') {
        return Err(ArchiveError::UnsafePath {
            path: shown(),
            reason: "absolute path",
        });
    }
    let mut parts = Vec::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                return Err(ArchiveError::UnsafePath {
                    path: shown(),
                    reason: "path contains '..'",
                });
            }
            _ => parts.push(part),
        }
    }
    Ok(parts)
}

struct DirTimes {
    path: Vec<u8>,
    mtime: u64,
}

struct Unpacker {
    root: OwnedFd,
    dest: PathBuf,
    /// Open parent directories by relative path; cleared whenever something is removed, and
    /// when it holds `MAX_CACHED_PARENTS`.
    parents: HashMap<Vec<u8>, Rc<OwnedFd>>,
    dirs: Vec<DirTimes>,
    stats: UnpackStats,
}

impl Unpacker {
    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        headers: PendingHeaders,
    ) -> Result<(), ArchiveError> {
        let header = entry.header().clone();
        let tar_err = |e: io::Error| ArchiveError::Tar(e.to_string());
        let raw_path: Vec<u8> = match (headers.pax("path"), &headers.path) {
            (Some(p), _) => p.to_vec(),
            (None, Some(p)) => p.clone(),
            (None, None) => header.path_bytes().into_owned(),
        };
        let parts = clean_path(&raw_path)?;
        let Some((name, parent_parts)) = parts.split_last() else {
            // The layer root itself ("./"): its metadata belongs to the image's `/`, which the
            // overlay takes from the lowest layer; nothing to create.
            return Ok(());
        };
        let name = *name;
        let parent_rel = parent_parts.join(&b'/');
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        self.stats.entries += 1;

        if let Some(size) = headers.pax_number("size")?
            && size != header.entry_size().map_err(tar_err)?
        {
            return Err(ArchiveError::Tar(format!(
                "{shown}: pax size records are not supported"
            )));
        }
        let uid = headers
            .pax_number("uid")?
            .map_or_else(|| header.uid(), Ok)
            .map_err(tar_err)? as u32;
        let gid = headers
            .pax_number("gid")?
            .map_or_else(|| header.gid(), Ok)
            .map_err(tar_err)? as u32;
        let mtime = headers
            .pax_number("mtime")?
            .map_or_else(|| header.mtime(), Ok)
            .map_err(tar_err)?;
        let mode = header.mode().map_err(tar_err)? & 0o7777;

        // Whiteouts.
        if name == OPAQUE_MARKER.as_bytes() {
            let parent = self.parent(&parent_rel, &shown)?;
            set_xattr_fd(parent.as_raw_fd(), "trusted.overlay.opaque", b"y")
                .map_err(|e| ArchiveError::io(&self.dest.join(bytes_path(&parent_rel)), e))?;
            return Ok(());
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            if hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) {
                // Other AUFS metadata (`.wh..wh.plnk`, …) means nothing to overlayfs.
                return Ok(());
            }
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(ArchiveError::UnsafePath {
                    path: shown,
                    reason: "bare whiteout name",
                });
            }
            let parent = self.parent(&parent_rel, &shown)?;
            let parent_fd = parent.as_raw_fd();
            self.remove_existing(parent_fd, hidden, &shown)?;
            mknodat(parent_fd, hidden, libc::S_IFCHR, 0)
                .map_err(|e| self.io_at(&parent_rel, hidden, e))?;
            return Ok(());
        }

        let kind = header.entry_type();
        let parent = self.parent(&parent_rel, &shown)?;
        let pfd = parent.as_raw_fd();
        let cname = cstr(name)?;
        use tar::EntryType as T;
        match kind {
            T::Directory => {
                match fstatat_nofollow(pfd, &cname) {
                    Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {}
                    Ok(_) => {
                        self.remove_existing(pfd, name, &shown)?;
                        mkdirat(pfd, &cname).map_err(|e| self.io_at(&parent_rel, name, e))?;
                    }
                    Err(_) => mkdirat(pfd, &cname).map_err(|e| self.io_at(&parent_rel, name, e))?,
                }
                chown_chmod_at(pfd, &cname, uid, gid, mode)
                    .map_err(|e| self.io_at(&parent_rel, name, e))?;
                let dir = openat(
                    pfd,
                    &cname,
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                )
                .map_err(|e| self.io_at(&parent_rel, name, e))?;
                self.apply_xattrs(dir.as_raw_fd(), &headers, &parent_rel, name)?;
                let mut path = parent_rel.clone();
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(name);
                self.dirs.push(DirTimes { path, mtime });
            }
            T::Regular | T::Continuous => {
                self.remove_existing(pfd, name, &shown)?;
                let fd = openat(
                    pfd,
                    &cname,
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                )
                .map_err(|e| self.io_at(&parent_rel, name, e))?;
                let mut file = File::from(fd);
                let n = io::copy(entry, &mut file).map_err(ArchiveError::Stream)?;
                self.stats.file_bytes += n;
                let fd = file.as_raw_fd();
                // chown first: it clears setuid/setgid bits that the chmod then restores.
                // SAFETY: fchown of the descriptor of the file just written, which `file` keeps open.
                check(unsafe { libc::fchown(fd, uid, gid) })
                    // SAFETY: as above; fchmod takes integers only.
                    .and_then(|_| check(unsafe { libc::fchmod(fd, mode) }))
                    .map_err(|e| self.io_at(&parent_rel, name, e))?;
                self.apply_xattrs(fd, &headers, &parent_rel, name)?;
                set_times_fd(fd, mtime).map_err(|e| self.io_at(&parent_rel, name, e))?;
            }
            T::Symlink => {
                let target = match (headers.pax("linkpath"), &headers.link) {
                    (Some(l), _) => l.to_vec(),
                    (None, Some(l)) => l.clone(),
                    (None, None) => header.link_name_bytes().unwrap_or_default().into_owned(),
                };
                self.remove_existing(pfd, name, &shown)?;
                let ctarget = cstr(&target)?;
                // SAFETY: NUL-terminated target and name, the name relative to the open parent `pfd`; only read.
                check(unsafe { libc::symlinkat(ctarget.as_ptr(), pfd, cname.as_ptr()) })
                    .map_err(|e| self.io_at(&parent_rel, name, e))?;
                // Docker's layer size counts a symlink's own size (its target's length) too.
                self.stats.file_bytes += target.len() as u64;
                // SAFETY: a NUL-terminated name relative to an open directory descriptor; only read.
                check(unsafe {
                    libc::fchownat(pfd, cname.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW)
                })
                .and_then(|_| set_times_at(pfd, &cname, mtime))
                .map_err(|e| self.io_at(&parent_rel, name, e))?;
            }
            T::Link => {
                let target = match (headers.pax("linkpath"), &headers.link) {
                    (Some(l), _) => l.to_vec(),
                    (None, Some(l)) => l.clone(),
                    (None, None) => header.link_name_bytes().unwrap_or_default().into_owned(),
                };
                let target_parts = clean_path(&target).map_err(|_| ArchiveError::UnsafePath {
                    path: shown.clone(),
                    reason: "hardlink points outside the layer",
                })?;
                let Some((target_name, target_parent)) = target_parts.split_last() else {
                    return Err(ArchiveError::UnsafePath {
                        path: shown,
                        reason: "hardlink to the layer root",
                    });
                };
                let target_parent_rel = target_parent.join(&b'/');
                let tparent = self.parent(&target_parent_rel, &shown)?;
                let ctarget = cstr(target_name)?;
                // The target must be an entry of this layer, never a symlink leading elsewhere.
                match fstatat_nofollow(tparent.as_raw_fd(), &ctarget) {
                    Ok(st) if st.st_mode & libc::S_IFMT != libc::S_IFDIR => {}
                    _ => {
                        return Err(ArchiveError::UnsafePath {
                            path: shown,
                            reason: "hardlink target is missing from the layer",
                        });
                    }
                }
                self.remove_existing(pfd, name, &shown)?;
                // SAFETY: NUL-terminated names relative to two open directory descriptors; only read.
                check(unsafe {
                    libc::linkat(
                        tparent.as_raw_fd(),
                        ctarget.as_ptr(),
                        pfd,
                        cname.as_ptr(),
                        0,
                    )
                })
                .map_err(|e| self.io_at(&parent_rel, name, e))?;
            }
            T::Char | T::Block | T::Fifo => {
                let fmt = match kind {
                    T::Char => libc::S_IFCHR,
                    T::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                self.remove_existing(pfd, name, &shown)?;
                mknodat(pfd, name, fmt | mode, libc::makedev(major, minor))
                    .map_err(|e| self.io_at(&parent_rel, name, e))?;
                chown_chmod_at(pfd, &cname, uid, gid, mode)
                    .and_then(|_| set_times_at(pfd, &cname, mtime))
                    .map_err(|e| self.io_at(&parent_rel, name, e))?;
            }
            other => {
                return Err(ArchiveError::Tar(format!(
                    "{shown}: unsupported tar entry type {:?}",
                    other.as_byte() as char
                )));
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<UnpackStats, ArchiveError> {
        // Directory mtimes last: creating their children changed them.
        for dir in self.dirs.iter().rev() {
            let parts: Vec<&[u8]> = dir.path.split(|b| *b == b'/').collect();
            let Some((name, parent)) = parts.split_last() else {
                continue;
            };
            let parent_rel = parent.join(&b'/');
            if let Ok(pfd) = open_beneath(self.root.as_raw_fd(), &parent_rel)
                && let Ok(cname) = cstr(name)
            {
                let _ = set_times_at(pfd.as_raw_fd(), &cname, dir.mtime);
            }
        }
        Ok(self.stats)
    }

    /// The descriptor of `rel`'s directory, creating missing directories like `mkdir -p` (tars
    /// may omit parents). Symlinks anywhere on the way are refused.
    fn parent(&mut self, rel: &[u8], shown: &str) -> Result<Rc<OwnedFd>, ArchiveError> {
        if !self.parents.contains_key(rel) {
            // A layer can have more directories than a process may hold open files.
            if self.parents.len() >= MAX_CACHED_PARENTS {
                self.parents.clear();
            }
            let fd = match open_beneath(self.root.as_raw_fd(), rel) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => self.mkdir_all(rel, shown)?,
                Err(e) => return Err(self.parent_error(e, shown)),
            };
            self.parents.insert(rel.to_vec(), Rc::new(fd));
        }
        Ok(self.parents[rel].clone())
    }

    fn mkdir_all(&mut self, rel: &[u8], shown: &str) -> Result<OwnedFd, ArchiveError> {
        let mut current = open_beneath(self.root.as_raw_fd(), b"")
            .map_err(|e| ArchiveError::io(&self.dest, e))?;
        for part in rel.split(|b| *b == b'/').filter(|p| !p.is_empty()) {
            let cpart = cstr(part)?;
            match mkdirat(current.as_raw_fd(), &cpart) {
                Ok(()) => {
                    // SAFETY: a NUL-terminated name relative to an open directory descriptor; only read.
                    let _ = check(unsafe {
                        libc::fchmodat(current.as_raw_fd(), cpart.as_ptr(), 0o755, 0)
                    });
                }
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(self.parent_error(e, shown)),
            }
            current =
                open_beneath(current.as_raw_fd(), part).map_err(|e| self.parent_error(e, shown))?;
        }
        Ok(current)
    }

    fn parent_error(&self, e: io::Error, shown: &str) -> ArchiveError {
        match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::EXDEV) => ArchiveError::UnsafePath {
                path: shown.to_string(),
                reason: "a parent directory is a symlink",
            },
            Some(libc::ENOTDIR) => ArchiveError::UnsafePath {
                path: shown.to_string(),
                reason: "a parent is not a directory",
            },
            _ => ArchiveError::io(&self.dest.join(shown), e),
        }
    }

    fn remove_existing(
        &mut self,
        pfd: RawFd,
        name: &[u8],
        shown: &str,
    ) -> Result<(), ArchiveError> {
        let cname = cstr(name)?;
        let st = match fstatat_nofollow(pfd, &cname) {
            Ok(st) => st,
            Err(_) => return Ok(()),
        };
        self.parents.clear();
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            let dir = openat(
                pfd,
                &cname,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            )
            .map_err(|e| ArchiveError::io(&self.dest.join(shown), e))?;
            remove_dir_contents(dir.as_raw_fd())
                .map_err(|e| ArchiveError::io(&self.dest.join(shown), e))?;
            // SAFETY: a NUL-terminated name relative to an open directory descriptor; only read.
            check(unsafe { libc::unlinkat(pfd, cname.as_ptr(), libc::AT_REMOVEDIR) })
                .map_err(|e| ArchiveError::io(&self.dest.join(shown), e))
        } else {
            // SAFETY: a NUL-terminated name relative to an open directory descriptor; only read.
            check(unsafe { libc::unlinkat(pfd, cname.as_ptr(), 0) })
                .map_err(|e| ArchiveError::io(&self.dest.join(shown), e))
        }
    }

    fn apply_xattrs(
        &self,
        fd: RawFd,
        headers: &PendingHeaders,
        parent_rel: &[u8],
        name: &[u8],
    ) -> Result<(), ArchiveError> {
        for (key, value) in &headers.pax {
            let Some(attr) = key.strip_prefix("SCHILY.xattr.") else {
                continue;
            };
            // A layer must not forge overlayfs metadata; only whiteout conversion sets it.
            if attr.starts_with(OVERLAY_XATTR_PREFIX) {
                continue;
            }
            set_xattr_fd(fd, attr, value).map_err(|e| self.io_at(parent_rel, name, e))?;
        }
        Ok(())
    }

    fn io_at(&self, parent_rel: &[u8], name: &[u8], e: io::Error) -> ArchiveError {
        let path = self
            .dest
            .join(bytes_path(parent_rel))
            .join(bytes_path(name));
        ArchiveError::io(&path, e)
    }
}

fn bytes_path(b: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(b))
}

fn cstr(b: &[u8]) -> Result<CString, ArchiveError> {
    CString::new(b).map_err(|_| ArchiveError::UnsafePath {
        path: String::from_utf8_lossy(b).into_owned(),
        reason: "name contains a NUL byte",
    })
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: a NUL-terminated path; open only reads it.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: open just returned this descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `openat2(dirfd, rel, O_DIRECTORY, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`.
pub(crate) fn open_beneath(dirfd: RawFd, rel: &[u8]) -> io::Result<OwnedFd> {
    let rel = if rel.is_empty() { &b"."[..] } else { rel };
    let c = CString::new(rel).map_err(|_| io::ErrorKind::InvalidInput)?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY;
    let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    loop {
        match crate::sys::syscall::openat2(dirfd, &c, flags, resolve) {
            Ok(fd) => return Ok(fd),
            Err(libc::EAGAIN | libc::EINTR) => {}
            Err(e) => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

fn openat(dirfd: RawFd, name: &CString, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated name relative to an open directory descriptor; only read.
    let fd = unsafe { libc::openat(dirfd, name.as_ptr(), flags | libc::O_CLOEXEC, 0o600) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openat just returned this descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn mkdirat(dirfd: RawFd, name: &CString) -> io::Result<()> {
    // SAFETY: a NUL-terminated name relative to an open directory descriptor; only read.
    check(unsafe { libc::mkdirat(dirfd, name.as_ptr(), 0o700) })
}

fn mknodat(dirfd: RawFd, name: &[u8], mode: libc::mode_t, dev: libc::dev_t) -> io::Result<()> {
    let c = CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: a NUL-terminated name relative to an open directory descriptor; only read.
    check(unsafe { libc::mknodat(dirfd, c.as_ptr(), mode, dev) })
}

fn fstatat_nofollow(dirfd: RawFd, name: &CString) -> io::Result<libc::stat> {
    // SAFETY: struct stat is plain data, for which all-zero bytes are a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated name and a live buffer for fstatat to fill.
    check(unsafe { libc::fstatat(dirfd, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

fn chown_chmod_at(dirfd: RawFd, name: &CString, uid: u32, gid: u32, mode: u32) -> io::Result<()> {
    // SAFETY: a NUL-terminated name relative to an open directory descriptor; only read.
    check(unsafe { libc::fchownat(dirfd, name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) })?;
    // SAFETY: a NUL-terminated name relative to an open directory descriptor; only read.
    check(unsafe { libc::fchmodat(dirfd, name.as_ptr(), mode, 0) })
}

fn timespecs(mtime: u64) -> [libc::timespec; 2] {
    let t = libc::timespec {
        tv_sec: mtime as _,
        tv_nsec: 0,
    };
    [t, t]
}

fn set_times_fd(fd: RawFd, mtime: u64) -> io::Result<()> {
    let ts = timespecs(mtime);
    // SAFETY: `ts` is a live array of the two timespecs futimens reads.
    check(unsafe { libc::futimens(fd, ts.as_ptr()) })
}

fn set_times_at(dirfd: RawFd, name: &CString, mtime: u64) -> io::Result<()> {
    let ts = timespecs(mtime);
    // SAFETY: a NUL-terminated name and a live array of the two timespecs utimensat reads.
    check(unsafe { libc::utimensat(dirfd, name.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })
}

fn set_xattr_fd(fd: RawFd, name: &str, value: &[u8]) -> io::Result<()> {
    let c = CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: a NUL-terminated name, and a pointer and length that describe the live `value`.
    check(unsafe {
        libc::fsetxattr(
            fd,
            c.as_ptr(),
            value.as_ptr() as *const libc::c_void,
            value.len(),
            0,
        )
    })
}

/// Empties a directory through descriptors only (never following symlinks).
fn remove_dir_contents(dirfd: RawFd) -> io::Result<()> {
    // SAFETY: dup takes an integer and creates a descriptor we then own.
    let dup = unsafe { libc::dup(dirfd) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` is ours; on success the DIR stream owns it and closedir closes it.
    let dir = unsafe { libc::fdopendir(dup) };
    if dir.is_null() {
        // SAFETY: fdopendir failed, so `dup` is still ours to close, once.
        unsafe { libc::close(dup) };
        return Err(io::Error::last_os_error());
    }
    let mut names = Vec::new();
    loop {
        // SAFETY: `dir` is the live stream opened above, not yet closed.
        let ent = unsafe { libc::readdir(dir) };
        if ent.is_null() {
            break;
        }
        // SAFETY: readdir returned a non-null entry whose NUL-terminated d_name stays valid
        // until the next readdir on `dir`; it is copied before that.
        let name = unsafe { std::ffi::CStr::from_ptr((*ent).d_name.as_ptr()) };
        let bytes = name.to_bytes();
        if bytes != b"." && bytes != b".." {
            names.push(name.to_owned());
        }
    }
    // SAFETY: `dir` is live and closed once here, with the descriptor it owns.
    unsafe { libc::closedir(dir) };
    for name in names {
        let st = fstatat_nofollow(dirfd, &name)?;
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            let sub = openat(
                dirfd,
                &name,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            )?;
            remove_dir_contents(sub.as_raw_fd())?;
            // SAFETY: a NUL-terminated name relative to an open directory descriptor; only read.
            check(unsafe { libc::unlinkat(dirfd, name.as_ptr(), libc::AT_REMOVEDIR) })?;
        } else {
            // SAFETY: a NUL-terminated name relative to an open directory descriptor; only read.
            check(unsafe { libc::unlinkat(dirfd, name.as_ptr(), 0) })?;
        }
    }
    Ok(())
}
