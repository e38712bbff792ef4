//! `--user` resolution against the container's own /etc/passwd and /etc/group, with
//! runc/Docker semantics: `name|uid[:group|gid]`, numeric ids need no entry, names must
//! exist, and the supplementary groups are the primary group plus every group that lists
//! the user as a member.

use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A user or group that cannot be resolved, or /etc files that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// `--user` names a user or group the container's /etc files do not have.
    #[error("unable to find {what} {name}: no matching entries in {file} file")]
    NoSuchUser {
        what: &'static str,
        name: String,
        file: &'static str,
    },
    /// A uid or gid above 2^31-1: (u32)-1 means "unchanged" to setresuid, so 4294967295
    /// would leave the process root (CVE-2024-40635's class); Docker refuses them too.
    #[error("uids and gids must be in range 0-2147483647")]
    OutOfRange,
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The ids a process runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Primary group first, then the groups listing the user as a member.
    pub additional_gids: Vec<u32>,
    pub home: PathBuf,
}

/// Resolves `spec_user` against `rootfs/etc/passwd` and `rootfs/etc/group`.
pub fn resolve_user(rootfs: &Path, spec_user: &str) -> Result<ResolvedUser, UserError> {
    resolve_user_in_layers(&[rootfs], spec_user)
}

/// Same, for an image that is not mounted yet: each file is read from the topmost layer
/// directory that has it (whiteouts are not honoured).
pub fn resolve_user_in_layers<P: AsRef<Path>>(
    layers: &[P],
    spec_user: &str,
) -> Result<ResolvedUser, UserError> {
    let passwd = read_first(layers, "etc/passwd")?;
    let group = read_first(layers, "etc/group")?;
    resolve_from(passwd.as_deref(), group.as_deref(), spec_user)
}

/// Reads `rel` inside the first root that has it, resolving symlinks as if that root were
/// `/` so an image's `etc/passwd -> /etc/shadow` cannot reach the host.
fn read_first<P: AsRef<Path>>(roots: &[P], rel: &str) -> Result<Option<String>, UserError> {
    for root in roots {
        let root = root.as_ref();
        let Ok(rootc) = CString::new(root.as_os_str().as_bytes()) else {
            continue;
        };
        // SAFETY: valid C string; the fd is owned below.
        let rfd = unsafe {
            libc::open(
                rootc.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if rfd < 0 {
            continue;
        }
        // SAFETY: rfd was just opened and is owned by nobody else.
        let rfd = unsafe { OwnedFd::from_raw_fd(rfd) };
        let relc = CString::new(rel).map_err(|_| UserError::Io {
            op: "open",
            path: root.join(rel),
            source: std::io::ErrorKind::InvalidInput.into(),
        })?;
        match berth_runtime::rootfs::openat2_in_root(&rfd, &relc, libc::O_RDONLY | libc::O_CLOEXEC)
        {
            Ok(fd) => {
                let mut s = String::new();
                File::from(fd)
                    .read_to_string(&mut s)
                    .map_err(|e| UserError::Io {
                        op: "read",
                        path: root.join(rel),
                        source: e,
                    })?;
                return Ok(Some(s));
            }
            Err(nix::errno::Errno::ENOENT) | Err(nix::errno::Errno::ENOTDIR) => continue,
            // An overlay whiteout (0/0 character device): deleted in this layer.
            Err(nix::errno::Errno::ENXIO) => return Ok(None),
            Err(e) => {
                return Err(UserError::Io {
                    op: "open",
                    path: root.join(rel),
                    source: std::io::Error::from_raw_os_error(e as i32),
                });
            }
        }
    }
    Ok(None)
}

struct PwEnt<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(s: &str) -> impl Iterator<Item = PwEnt<'_>> {
    s.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 7 {
            return None;
        }
        Some(PwEnt {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5],
        })
    })
}

struct GrEnt<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn group_entries(s: &str) -> impl Iterator<Item = GrEnt<'_>> {
    s.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 {
            return None;
        }
        Some(GrEnt {
            name: f[0],
            gid: f[2].parse().ok()?,
            members: f[3].split(',').filter(|m| !m.is_empty()).collect(),
        })
    })
}

/// The largest uid or gid a container may have.
const MAX_ID: u32 = i32::MAX as u32;

pub(crate) fn resolve_from(
    passwd: Option<&str>,
    group: Option<&str>,
    spec_user: &str,
) -> Result<ResolvedUser, UserError> {
    let (user_part, group_part) = match spec_user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec_user, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let numeric_uid = user_part.parse::<u32>().ok();
    let pw = passwd_entries(passwd.unwrap_or("")).find(|e| match numeric_uid {
        Some(n) => e.uid == n,
        None => e.name == user_part,
    });
    let (uid, mut gid, home, name) = match (&pw, numeric_uid) {
        (Some(e), _) => (e.uid, e.gid, e.home.to_string(), Some(e.name)),
        (None, Some(n)) => (n, 0, "/".to_string(), None),
        (None, None) => {
            return Err(UserError::NoSuchUser {
                what: "user",
                name: user_part.into(),
                file: "passwd",
            });
        }
    };
    let groups = group.unwrap_or("");
    if let Some(g) = group_part.filter(|g| !g.is_empty()) {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                group_entries(groups)
                    .find(|e| e.name == g)
                    .ok_or_else(|| UserError::NoSuchUser {
                        what: "group",
                        name: g.into(),
                        file: "group",
                    })?
                    .gid
            }
        };
    }
    if uid > MAX_ID || gid > MAX_ID {
        return Err(UserError::OutOfRange);
    }
    let mut additional = vec![gid];
    // An explicit group replaces the member groups, as in Docker.
    if group_part.is_none()
        && let Some(n) = name
    {
        for e in group_entries(groups) {
            // A group of the image's own /etc/group is held to the same range (found by the
            // `passwd` fuzz target): 4294967295 is -1 to setgroups.
            if e.members.contains(&n) && e.gid > MAX_ID {
                return Err(UserError::OutOfRange);
            }
            if e.members.contains(&n) && !additional.contains(&e.gid) {
                additional.push(e.gid);
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids: additional,
        home: PathBuf::from(if home.is_empty() { "/" } else { &home }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_groups_above_2_31_are_refused() {
        let passwd = "u:x:1000:1000::/home/u:/bin/sh\n";
        let group = "ok:x:50:u\nbad:x:4294967295:u\n";
        assert!(matches!(
            resolve_from(Some(passwd), Some(group), "u"),
            Err(UserError::OutOfRange)
        ));
        let group = "ok:x:50:u\nbad:x:4294967295:other\n";
        assert_eq!(
            resolve_from(Some(passwd), Some(group), "u")
                .unwrap()
                .additional_gids,
            [1000, 50]
        );
    }

    #[test]
    fn ids_above_2_31_are_refused() {
        for user in ["4294967295", "0:4294967295", "2147483648"] {
            assert!(
                matches!(resolve_from(None, None, user), Err(UserError::OutOfRange)),
                "{user}"
            );
        }
        assert_eq!(
            resolve_from(None, None, "2147483647").unwrap().uid,
            2147483647
        );
    }

    const PW: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nwww:x:33:33::/var/www:/bin/sh\n";
    const GR: &str =
        "root:x:0:\nwheel:x:10:root\nwww-data:x:33:\nnogroup:x:65534:\nstaff:x:50:www,root\n";

    #[test]
    fn names_and_numbers() {
        let r = resolve_from(Some(PW), Some(GR), "").unwrap();
        assert_eq!(
            (r.uid, r.gid, r.additional_gids.clone()),
            (0, 0, vec![0, 10, 50])
        );
        assert_eq!(r.home, PathBuf::from("/root"));
        let r = resolve_from(Some(PW), Some(GR), "www").unwrap();
        assert_eq!((r.uid, r.gid, r.additional_gids), (33, 33, vec![33, 50]));
        let r = resolve_from(Some(PW), Some(GR), "1234:www-data").unwrap();
        assert_eq!((r.uid, r.gid, r.additional_gids), (1234, 33, vec![33]));
        let r = resolve_from(Some(PW), Some(GR), "nobody:77").unwrap();
        assert_eq!((r.uid, r.gid), (65534, 77));
        assert!(resolve_from(Some(PW), Some(GR), "nope").is_err());
        let e = resolve_from(Some(PW), Some(GR), "root:nope").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to find group nope: no matching entries in group file"
        );
        let r = resolve_from(None, None, "1000").unwrap();
        assert_eq!((r.uid, r.gid, r.home), (1000, 0, PathBuf::from("/")));
    }
}
