//! Writing a directory tree as a tar stream, the way Docker's `pkg/archive` does: entries in
//! lexical order per directory (parents before children), directories named with a trailing
//! `/`, hardlinks detected by inode, owners, modes, mtimes and xattrs kept, long names and link
//! targets as PAX records.
//!
//! Two uses: `export` (a merged root filesystem, as is) and layer diffs for `commit` (an overlay
//! upper directory, where 0/0 character devices become `.wh.NAME` entries and
//! `trusted.overlay.opaque=y` directories get a `.wh..wh..opq` marker).

use std::collections::{BTreeMap, HashMap};
use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::ArchiveError;

pub const WHITEOUT_PREFIX: &str = ".wh.";
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// An entry the tree does not hold but the archive should (Docker's init layer in `export`).
#[derive(Debug, Clone)]
pub enum Synthetic {
    Dir { mode: u32 },
    File { mode: u32 },
    Symlink { target: String },
}

/// How a walked entry is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Include,
    /// Leave the entry (and everything below it) out.
    Skip,
}

pub struct WalkOptions<'a> {
    /// Convert overlay whiteouts and opaque directories into `.wh.` entries.
    pub layer: bool,
    /// Called with every path ("/etc/hosts") before it is written.
    pub filter: &'a dyn Fn(&Path, &fs::Metadata) -> Decision,
    /// Entries to add (or to replace a real entry of the same path with), keyed by full path.
    pub synthetic: BTreeMap<PathBuf, Synthetic>,
    /// mtime (seconds) for synthetic entries.
    pub synthetic_mtime: u64,
}

/// Writes `root` as a tar stream into `out`; returns `out` once the archive is finished.
pub fn write_tree<W: Write>(
    root: &Path,
    out: W,
    options: &WalkOptions<'_>,
) -> Result<W, ArchiveError> {
    let mut writer = TreeWriter {
        builder: tar::Builder::new(out),
        root: root.to_path_buf(),
        inodes: HashMap::new(),
        options,
    };
    writer.dir(Path::new("/"))?;
    writer
        .builder
        .into_inner()
        .map_err(|e| ArchiveError::io(root, e))
}

struct TreeWriter<'a, W: Write> {
    builder: tar::Builder<W>,
    root: PathBuf,
    inodes: HashMap<(u64, u64), Vec<u8>>,
    options: &'a WalkOptions<'a>,
}

enum Child {
    Real(OsString),
    Virtual(OsString, Synthetic),
}

impl<W: Write> TreeWriter<'_, W> {
    fn host(&self, path: &Path) -> PathBuf {
        self.root.join(path.strip_prefix("/").unwrap_or(path))
    }

    /// Writes the children of directory `dir` (an absolute in-archive path), recursively.
    fn dir(&mut self, dir: &Path) -> Result<(), ArchiveError> {
        let host = self.host(dir);
        let mut names: BTreeMap<Vec<u8>, Child> = BTreeMap::new();
        match fs::read_dir(&host) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(|e| ArchiveError::io(&host, e))?;
                    let name = entry.file_name();
                    names.insert(name.as_bytes().to_vec(), Child::Real(name));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(ArchiveError::io(&host, e)),
        }
        for (path, synthetic) in &self.options.synthetic {
            if path.parent() == Some(dir)
                && let Some(name) = path.file_name()
            {
                names.insert(
                    name.as_bytes().to_vec(),
                    Child::Virtual(name.to_os_string(), synthetic.clone()),
                );
            }
        }
        for (_, child) in names {
            match child {
                Child::Real(name) => self.real(&dir.join(&name), &name)?,
                Child::Virtual(name, synthetic) => {
                    let path = dir.join(&name);
                    self.synthetic(&path, &synthetic)?;
                    if matches!(synthetic, Synthetic::Dir { .. }) {
                        self.dir(&path)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn real(&mut self, path: &Path, name: &OsStr) -> Result<(), ArchiveError> {
        let host = self.host(path);
        let meta = match fs::symlink_metadata(&host) {
            Ok(m) => m,
            // Gone since the directory was listed (a running container).
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(ArchiveError::io(&host, e)),
        };
        if (self.options.filter)(path, &meta) == Decision::Skip {
            return Ok(());
        }
        let ft = meta.file_type();
        let rel = rel_name(path);
        if self.options.layer && ft.is_char_device() && meta.rdev() == 0 {
            let mut whiteout = rel_name(path.parent().unwrap_or(Path::new("/")));
            if !whiteout.is_empty() {
                whiteout.push(b'/');
            }
            whiteout.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
            whiteout.extend_from_slice(name.as_bytes());
            let mut header = base_header(&meta);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o600);
            header.set_size(0);
            return self.append(header, &whiteout, None, &[], io::empty(), &host);
        }
        let xattrs = read_xattrs(&host).map_err(|e| ArchiveError::io(&host, e))?;
        let mut header = base_header(&meta);
        if ft.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            let mut dir_name = rel.clone();
            dir_name.push(b'/');
            self.append(header, &dir_name, None, &xattrs, io::empty(), &host)?;
            if self.options.layer && is_opaque(&host) {
                let mut marker = dir_name.clone();
                marker.extend_from_slice(OPAQUE_MARKER.as_bytes());
                let mut h = base_header(&meta);
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o600);
                h.set_size(0);
                self.append(h, &marker, None, &[], io::empty(), &host)?;
            }
            return self.dir(path);
        }
        if !ft.is_dir() && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.inodes.get(&key).cloned() {
                header.set_entry_type(tar::EntryType::Link);
                header.set_size(0);
                return self.append(header, &rel, Some(&first), &xattrs, io::empty(), &host);
            }
            self.inodes.insert(key, rel.clone());
        }
        if ft.is_symlink() {
            let target = fs::read_link(&host).map_err(|e| ArchiveError::io(&host, e))?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            let target = target.as_os_str().as_bytes().to_vec();
            return self.append(header, &rel, Some(&target), &xattrs, io::empty(), &host);
        }
        if ft.is_file() {
            header.set_entry_type(tar::EntryType::Regular);
            let size = meta.len();
            header.set_size(size);
            let file = match fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&host)
            {
                Ok(f) => f,
                Err(e) => return Err(ArchiveError::io(&host, e)),
            };
            return self.append(
                header,
                &rel,
                None,
                &xattrs,
                ExactSize::new(file, size),
                &host,
            );
        }
        let kind = if ft.is_char_device() {
            tar::EntryType::Char
        } else if ft.is_block_device() {
            tar::EntryType::Block
        } else if ft.is_fifo() {
            tar::EntryType::Fifo
        } else {
            // Sockets are not archived (Docker skips them too).
            return Ok(());
        };
        header.set_entry_type(kind);
        header.set_size(0);
        let rdev = meta.rdev();
        let _ = header.set_device_major(libc::major(rdev));
        let _ = header.set_device_minor(libc::minor(rdev));
        self.append(header, &rel, None, &xattrs, io::empty(), &host)
    }

    fn synthetic(&mut self, path: &Path, synthetic: &Synthetic) -> Result<(), ArchiveError> {
        let mut header = tar::Header::new_ustar();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(self.options.synthetic_mtime);
        let _ = header.set_username("root");
        let _ = header.set_groupname("root");
        let mut rel = rel_name(path);
        let mut link = None;
        match synthetic {
            Synthetic::Dir { mode } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                rel.push(b'/');
            }
            Synthetic::File { mode } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
            }
            Synthetic::Symlink { target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                link = Some(target.as_bytes().to_vec());
            }
        }
        header.set_size(0);
        let host = self.host(path);
        self.append(header, &rel, link.as_deref(), &[], io::empty(), &host)
    }

    fn append(
        &mut self,
        mut header: tar::Header,
        name: &[u8],
        link: Option<&[u8]>,
        xattrs: &[(String, Vec<u8>)],
        data: impl Read,
        host: &Path,
    ) -> Result<(), ArchiveError> {
        // Go's archive/tar (so Docker) keeps the file type bits in the mode field, except on
        // whiteout markers.
        let perm = header.mode().unwrap_or(0) & 0o7777;
        let is_marker = name
            .rsplit(|b| *b == b'/')
            .next()
            .is_some_and(|base| base.starts_with(WHITEOUT_PREFIX.as_bytes()));
        let type_bits = match header.entry_type() {
            _ if is_marker => 0,
            tar::EntryType::Directory => 0o040000,
            tar::EntryType::Symlink => 0o120000,
            tar::EntryType::Char => 0o020000,
            tar::EntryType::Block => 0o060000,
            tar::EntryType::Fifo => 0o010000,
            _ => 0o100000,
        };
        header.set_mode(perm | type_bits);
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        if !set_field(&mut header.as_old_mut().name, name) {
            pax.push(("path".into(), name.to_vec()));
        }
        if let Some(link) = link
            && !set_field(&mut header.as_old_mut().linkname, link)
        {
            pax.push(("linkpath".into(), link.to_vec()));
        }
        for (key, value) in xattrs {
            pax.push((format!("SCHILY.xattr.{key}"), value.clone()));
        }
        let io_err = |e| ArchiveError::io(host, e);
        if !pax.is_empty() {
            self.builder
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(io_err)?;
        }
        header.set_cksum();
        self.builder.append(&header, data).map_err(io_err)
    }
}

/// The in-archive name: no leading `/`.
fn rel_name(path: &Path) -> Vec<u8> {
    let bytes = path.as_os_str().as_bytes();
    let trimmed = bytes.strip_prefix(b"/").unwrap_or(bytes);
    trimmed.to_vec()
}

/// Copies `value` into a fixed header field, or truncates it and returns false (a PAX record
/// carries the whole value then).
fn set_field(field: &mut [u8], value: &[u8]) -> bool {
    field.fill(0);
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
    value.len() <= field.len()
}

fn base_header(meta: &fs::Metadata) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_size(0);
    header.set_mode(meta.mode() & 0o7777);
    header.set_uid(meta.uid() as u64);
    header.set_gid(meta.gid() as u64);
    header.set_mtime(meta.mtime().max(0) as u64);
    if let Some(name) = user_name(meta.uid()) {
        let _ = header.set_username(&name);
    }
    if let Some(name) = group_name(meta.gid()) {
        let _ = header.set_groupname(&name);
    }
    header
}

/// Docker fills uname/gname from the host's databases; only root is certain on every host.
fn user_name(uid: u32) -> Option<String> {
    (uid == 0).then(|| "root".to_string())
}

fn group_name(gid: u32) -> Option<String> {
    (gid == 0).then(|| "root".to_string())
}

/// A regular file read as exactly `size` bytes: a file that shrank while being archived is
/// padded with zeros, one that grew is cut (the header is already written).
struct ExactSize<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> ExactSize<R> {
    fn new(inner: R, size: u64) -> Self {
        ExactSize {
            inner,
            remaining: size,
        }
    }
}

impl<R: Read> Read for ExactSize<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.remaining as usize);
        let mut n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            buf[..want].fill(0);
            n = want;
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

pub fn is_opaque(path: &Path) -> bool {
    get_xattr(path, "trusted.overlay.opaque").as_deref() == Some(b"y".as_slice())
}

fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).ok()?;
    let n = CString::new(name).ok()?;
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and a buffer of the given length.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if len < 0 {
        return None;
    }
    buf.truncate(len as usize);
    Some(buf)
}

/// Every xattr of `path` except overlayfs' own.
fn read_xattrs(path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    let p = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: a null buffer asks for the size.
    let size = unsafe { libc::llistxattr(p.as_ptr(), std::ptr::null_mut(), 0) };
    if size < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOTSUP) => Ok(Vec::new()),
            _ => Err(e),
        };
    }
    if size == 0 {
        return Ok(Vec::new());
    }
    let mut list = vec![0u8; size as usize];
    // SAFETY: buffer of the given length.
    let size = unsafe { libc::llistxattr(p.as_ptr(), list.as_mut_ptr().cast(), list.len()) };
    if size < 0 {
        return Err(io::Error::last_os_error());
    }
    list.truncate(size as usize);
    let mut out = Vec::new();
    for name in list.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        if name.starts_with("trusted.overlay.") {
            continue;
        }
        let Ok(n) = CString::new(name) else { continue };
        // SAFETY: size query.
        let len = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), std::ptr::null_mut(), 0) };
        if len < 0 {
            continue;
        }
        let mut value = vec![0u8; len as usize];
        // SAFETY: buffer of the given length.
        let len = unsafe {
            libc::lgetxattr(
                p.as_ptr(),
                n.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if len < 0 {
            continue;
        }
        value.truncate(len as usize);
        out.push((name.to_string(), value));
    }
    Ok(out)
}
