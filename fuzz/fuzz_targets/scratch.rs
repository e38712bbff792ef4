//! The scratch directory of the `unpack` and `load` targets and the checks that nothing was
//! written outside the directory given to berth.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where the seeds' absolute symlinks point: it must stay empty.
pub const ESCAPE_DIR: &str = "/tmp/berth-fuzz-escape";
const CANARY: &[u8] = b"canary\n";

pub struct Scratch {
    dir: PathBuf,
    canary: PathBuf,
}

impl Scratch {
    pub fn get() -> &'static Scratch {
        static S: OnceLock<Scratch> = OnceLock::new();
        S.get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("berth-fuzz-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("scratch directory");
            let canary = dir.join("canary");
            std::fs::write(&canary, CANARY).expect("canary");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&canary, std::fs::Permissions::from_mode(0o644))
                .expect("canary mode");
            std::fs::create_dir_all(ESCAPE_DIR).expect("escape directory");
            Scratch { dir, canary }
        })
    }

    /// An empty directory `name` in the scratch directory.
    pub fn fresh(&self, name: &str) -> PathBuf {
        let path = self.dir.join(name);
        if path.symlink_metadata().is_ok() {
            make_removable(&path);
            std::fs::remove_dir_all(&path).expect("remove the last run's directory");
        }
        std::fs::create_dir(&path).expect("fresh directory");
        path
    }

    /// Panics if anything beside `expected` and the canary is in the scratch directory, the
    /// canary changed, or anything is in [`ESCAPE_DIR`].
    pub fn check(&self, expected: &[&str]) {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .expect("read the scratch directory")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "canary")
            .collect();
        names.sort();
        assert_eq!(names, expected, "written beside the root");
        let meta = self.canary.symlink_metadata().expect("the canary is there");
        assert!(meta.is_file(), "canary replaced");
        assert_eq!(meta.nlink(), 1, "canary hard-linked from inside the root");
        assert_eq!(meta.mode() & 0o7777, 0o644, "canary's mode changed");
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "canary's owner changed");
        assert_eq!(
            std::fs::read(&self.canary).unwrap(),
            CANARY,
            "canary written"
        );
        let escaped: Vec<_> = std::fs::read_dir(ESCAPE_DIR)
            .expect("read the escape directory")
            .map(|e| e.unwrap().path())
            .collect();
        assert!(escaped.is_empty(), "written outside the root: {escaped:?}");
    }
}

/// Directories without write or search permission (an image may have them) must not stop the
/// next run's removal; root ignores modes, but not the immutable attribute (never set by
/// berth), so this only matters when the targets run unprivileged.
fn make_removable(path: &Path) {
    if nix_is_root() {
        return;
    }
    for entry in walk(path) {
        use std::os::unix::fs::PermissionsExt;
        if entry.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            let _ = std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o700));
        }
    }
}

fn walk(path: &Path) -> Vec<PathBuf> {
    let mut out = vec![path.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if out[i].symlink_metadata().is_ok_and(|m| m.is_dir())
            && let Ok(rd) = std::fs::read_dir(&out[i])
        {
            out.extend(rd.flatten().map(|e| e.path()));
        }
        i += 1;
    }
    out
}

fn nix_is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
