//! Pulled images seen as trees: their layer directories, a read-only overlay of them, and the
//! check of the `multilayer` fixture image's overlaid tree (tests/fixtures/multilayer*.expected).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::TestRoot;

/// The layer diff directories of an image, topmost first (overlayfs lowerdir order).
pub fn layer_dirs(root: &TestRoot, id: &str) -> Vec<PathBuf> {
    let hex = id.strip_prefix("sha256:").unwrap();
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.path.join(format!("images/{hex}.json"))).unwrap(),
    )
    .unwrap();
    let mut dirs: Vec<PathBuf> = record["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let diff = l["diff_id"]
                .as_str()
                .unwrap()
                .strip_prefix("sha256:")
                .unwrap();
            root.path.join("layers").join(diff).join("diff")
        })
        .collect();
    dirs.reverse();
    dirs
}

/// A read-only overlay of an image's layers, unmounted on drop.
pub struct Overlay {
    pub target: PathBuf,
}

impl Overlay {
    pub fn mount(root: &TestRoot, id: &str, name: &str) -> Overlay {
        let target = root.path.join(format!("mnt-{name}"));
        std::fs::create_dir_all(&target).unwrap();
        let lower: Vec<String> = layer_dirs(root, id)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let mut lower = lower.join(":");
        if !lower.contains(':') {
            // overlayfs needs two lower layers without an upper one; add an empty one.
            let empty = root.dir.join(format!("empty-{name}"));
            std::fs::create_dir_all(&empty).unwrap();
            lower = format!("{lower}:{}", empty.display());
        }
        let status = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o"])
            .arg(format!("lowerdir={lower}"))
            .arg(&target)
            .status()
            .unwrap();
        assert!(status.success(), "mount overlay");
        Overlay { target }
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.target).status();
    }
}

/// `PATH TYPE MODE UID:GID [-> TARGET]` lines for the tree under `base/rel`.
pub fn listing(base: &Path, rel: &str) -> Vec<String> {
    let mut out = Vec::new();
    walk(base, Path::new(rel), &mut out);
    out.sort();
    out
}

pub fn walk(base: &Path, rel: &Path, out: &mut Vec<String>) {
    let path = base.join(rel.strip_prefix("/").unwrap());
    let meta = std::fs::symlink_metadata(&path).unwrap();
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        "d"
    } else if ft.is_symlink() {
        "l"
    } else if ft.is_fifo() {
        "p"
    } else if ft.is_char_device() {
        "c"
    } else {
        "f"
    };
    let mode = if ft.is_symlink() {
        0o777
    } else {
        meta.mode() & 0o7777
    };
    let mut line = format!(
        "{} {kind} {mode:04o} {}:{}",
        rel.display(),
        meta.uid(),
        meta.gid()
    );
    if ft.is_symlink() {
        line.push_str(&format!(
            " -> {}",
            std::fs::read_link(&path).unwrap().display()
        ));
    }
    out.push(line);
    if ft.is_dir() {
        for entry in std::fs::read_dir(&path).unwrap() {
            walk(base, &rel.join(entry.unwrap().file_name()), out);
        }
    }
}

pub fn fixture_file(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

/// Checks the overlaid multilayer tree against tests/fixtures/multilayer*.expected.
pub fn assert_multilayer_tree(mount: &Path) {
    let expected_text = fixture_file("multilayer.expected");
    let expected: Vec<String> = expected_text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect();
    assert_eq!(listing(mount, "/ml"), expected, "overlaid /ml tree");
    let file = |p: &str| mount.join(p.trim_start_matches('/'));
    for line in expected_text.lines() {
        if let Some(rest) = line.strip_prefix("#mtime ") {
            let (path, secs) = rest.split_once(' ').unwrap();
            let meta = std::fs::symlink_metadata(file(path)).unwrap();
            assert_eq!(meta.mtime().to_string(), secs, "mtime of {path}");
        } else if let Some(rest) = line.strip_prefix("#content ") {
            let (path, text) = rest.split_once(' ').unwrap();
            let want = format!("{}\n", text.replace("\\n", "\n"));
            assert_eq!(
                std::fs::read_to_string(file(path)).unwrap(),
                want,
                "content of {path}"
            );
        }
    }
    for line in fixture_file("multilayer-hardlinks.expected").lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let metas: Vec<_> = line
            .split_whitespace()
            .map(|p| std::fs::metadata(file(p)).unwrap())
            .collect();
        for m in &metas {
            assert_eq!(
                (m.dev(), m.ino(), m.nlink()),
                (metas[0].dev(), metas[0].ino(), metas.len() as u64),
                "hardlinks {line}"
            );
        }
    }
}
